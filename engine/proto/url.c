/* url.c - splits an absolute http(s) URL into offsets of the caller's bytes, never copying it. */
#include "proto/url.h"

#include <arpa/inet.h>
#include <string.h>

#include "ringfetch.h"

#define BAD (-RF_ERR_INVALID_URL)

static int is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Everything after the scheme goes on the wire or into logs: no blanks, controls or 8-bit. */
static int is_visible(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

/* RFC 3986 reg-name: unreserved / sub-delims; pct-encoded is checked by the caller. */
static int is_regname(unsigned char c)
{
    if (is_alpha(c) || is_digit(c))
        return 1;
    switch (c) {
    case '-': case '.': case '_': case '~':
    case '!': case '$': case '&': case '\'': case '(': case ')':
    case '*': case '+': case ',': case ';': case '=':
        return 1;
    }
    return 0;
}

static int lower_eq(const char *s, size_t n, const char *lit)
{
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != lit[i])
            return 0;
    return lit[n] == '\0';
}

/*
 * inet_pton() wants a NUL-terminated string, and the input is not one: copy the
 * literal to the stack. Anything longer than the longest textual address is invalid.
 */
static int ip_literal_ok(int af, const char *s, size_t n)
{
    char buf[INET6_ADDRSTRLEN];
    unsigned char addr[16];

    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(af, buf, addr) == 1;
}

/*
 * Reg-name host [h, end). A host made only of digits and dots must be a dotted quad:
 * the short inet_aton forms ("127.1", "2130706433") mean different things to
 * different resolvers, so they are refused rather than guessed at.
 */
static int regname_ok(const char *s, size_t h, size_t end)
{
    int numeric = 1;

    if (end - h == 0 || end - h > RF_HOST_MAX)
        return 0;
    for (size_t i = h; i < end; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '%') {
            if (end - i < 3 || !is_hex((unsigned char)s[i + 1]) ||
                !is_hex((unsigned char)s[i + 2]))
                return 0;
            i += 2;
            numeric = 0;
        } else if (!is_regname(c)) {
            return 0;
        } else if (!is_digit(c) && c != '.') {
            numeric = 0;
        }
    }
    return !numeric || ip_literal_ok(AF_INET, s + h, end - h);
}

static int parse(const char *s, size_t len, struct rf_url *u)
{
    size_t i = 0, auth, end, h, hend, t, frag;
    unsigned port = 0;

    if (!s || len == 0 || len > RF_URL_MAX)
        return BAD;

    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://" (RFC 3986 3.1). */
    if (!is_alpha((unsigned char)s[0]))
        return BAD;
    while (i < len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) ||
                       s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (len - i < 3 || s[i] != ':' || s[i + 1] != '/' || s[i + 2] != '/')
        return BAD;
    /*
     * Another scheme with an authority ("ftp://", "file:///") is refused as such right
     * here: its grammar is not ours to check, and "unsupported" is the useful answer.
     */
    if (lower_eq(s, i, "http"))
        u->scheme = RF_SCHEME_HTTP;
    else if (lower_eq(s, i, "https"))
        u->scheme = RF_SCHEME_HTTPS;
    else
        return -RF_ERR_UNSUPPORTED_SCHEME;

    /* The authority runs to the first "/", "?" or "#" (RFC 3986 3.2). */
    auth = i + 3;
    end = auth;
    while (end < len && s[end] != '/' && s[end] != '?' && s[end] != '#')
        end++;

    /* Userinfo ends at the last "@" of the authority, so "@" in a path is never userinfo. */
    h = auth;
    for (size_t k = auth; k < end; k++) {
        if (!is_visible((unsigned char)s[k]))
            return BAD;
        if (s[k] == '@')
            h = k + 1;
    }

    if (h < end && s[h] == '[') {
        /* IP-literal: the brackets stay in the authority but not in the host. */
        hend = h + 1;
        while (hend < end && s[hend] != ']')
            hend++;
        if (hend == end)
            return BAD;
        /* inet_pton refuses zone ids ("%25eth0"): link-local targets are not supported. */
        if (!ip_literal_ok(AF_INET6, s + h + 1, hend - h - 1))
            return BAD;
        u->host_is_ip6 = 1;
        u->host_off = (uint32_t)(h + 1);
        u->host_len = (uint32_t)(hend - h - 1);
        hend++;
    } else {
        hend = h;
        while (hend < end && s[hend] != ':')
            hend++;
        if (!regname_ok(s, h, hend))
            return BAD;
        u->host_off = (uint32_t)h;
        u->host_len = (uint32_t)(hend - h);
    }
    u->authority_off = (uint32_t)h;
    u->authority_len = (uint32_t)(end - h);

    if (hend < end) {
        if (s[hend] != ':')
            return BAD; /* e.g. "[::1]x" */
        /*
         * An empty port ("http://h:/") means the default, as WHATWG and RFC 3986 6.2.3
         * have it; the bare ":" is then left out of the Host header.
         */
        if (hend + 1 == end)
            u->authority_len = (uint32_t)(hend - h);
        for (size_t k = hend + 1; k < end; k++) {
            if (!is_digit((unsigned char)s[k]))
                return BAD;
            port = port * 10 + (unsigned)(s[k] - '0');
            if (port > 65535)
                return BAD; /* checked per digit, so leading zeros cannot overflow */
        }
        if (hend + 1 < end && port == 0)
            return BAD;
    }
    if (port == 0)
        port = u->scheme == RF_SCHEME_HTTPS ? 443 : 80;
    u->port = (uint16_t)port;

    /* Target: path and query. The fragment is never sent, but must still be clean. */
    t = end;
    frag = t;
    while (frag < len && s[frag] != '#') {
        if (!is_visible((unsigned char)s[frag]))
            return BAD;
        frag++;
    }
    for (size_t k = frag; k < len; k++)
        if (!is_visible((unsigned char)s[k]))
            return BAD;
    u->target_off = (uint32_t)t;
    u->target_len = (uint32_t)(frag - t);
    /* "http://h?x=1" must go out as "GET /?x=1": the writer adds the slash. */
    u->target_needs_slash = u->target_len > 0 && s[t] == '?';
    return 0;
}

/* On failure *u is all zeros, never half-filled, so a caller cannot use stale offsets. */
int url_parse(const char *s, size_t len, struct rf_url *u)
{
    int ret;

    memset(u, 0, sizeof(*u));
    ret = parse(s, len, u);
    if (ret)
        memset(u, 0, sizeof(*u));
    return ret;
}
