/*
 * fuzz_url.c - url_parse() on arbitrary bytes. The input is not NUL-terminated and sits in a
 * buffer of exactly its size, so AddressSanitizer catches any read past it. On success every
 * offset must stay inside the input and describe what the writer will send; on failure the
 * result must be all zeros. Then url_normalize() on the same bytes: what it writes fits the
 * bound its header gives, and normalising that again changes nothing. Any broken invariant
 * traps.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "ringfetch.h"
#include "proto/url.h"

static int visible(uint8_t c)
{
    return c >= 0x21 && c <= 0x7e;
}

static int in_input(uint32_t off, uint32_t len, size_t size)
{
    return (uint64_t)off + len <= size;
}

/* Everything url_parse() promised about a URL it accepted. */
static void check_ok(const uint8_t *s, size_t size, const struct rf_url *u)
{
    const char *c = (const char *)s;
    uint32_t host_end = u->host_off + u->host_len;
    uint32_t auth_end = u->authority_off + u->authority_len;
    size_t scheme_len = u->scheme == RF_SCHEME_HTTPS ? 5 : 4;

    ENSURE(size <= RF_URL_MAX);
    ENSURE(u->scheme == RF_SCHEME_HTTP || u->scheme == RF_SCHEME_HTTPS);
    ENSURE(u->port >= 1);
    ENSURE(u->host_len >= 1 && u->host_len <= RF_HOST_MAX);
    ENSURE(in_input(u->host_off, u->host_len, size));
    ENSURE(in_input(u->authority_off, u->authority_len, size));
    ENSURE(in_input(u->target_off, u->target_len, size));

    /* "scheme://" written in either case, and the authority right after it or a userinfo. */
    ENSURE(size > scheme_len + 3);
    for (size_t i = 0; i < scheme_len; i++)
        ENSURE((c[i] | 0x20) == "https"[i]);
    ENSURE(memcmp(c + scheme_len, "://", 3) == 0);
    ENSURE(u->authority_off >= scheme_len + 3);
    if (u->authority_off > scheme_len + 3)
        ENSURE(c[u->authority_off - 1] == '@');

    /* The authority covers the host; an IPv6 host sits between its brackets. */
    ENSURE(u->authority_off <= u->host_off && host_end <= auth_end);
    if (u->host_is_ip6) {
        ENSURE(u->host_off == u->authority_off + 1);
        ENSURE(c[u->authority_off] == '[' && host_end < size && c[host_end] == ']');
    } else {
        ENSURE(u->host_off == u->authority_off);
        for (uint32_t i = u->host_off; i < host_end; i++)
            ENSURE(visible(s[i]) && !strchr(":@/?#[]", c[i]));
    }
    /* After the host: nothing, or ":port" of digits. */
    if (auth_end > host_end + u->host_is_ip6) {
        uint32_t p = host_end + u->host_is_ip6;
        unsigned port = 0;

        ENSURE(c[p] == ':' && auth_end > p + 1);
        for (uint32_t i = p + 1; i < auth_end; i++) {
            ENSURE(c[i] >= '0' && c[i] <= '9');
            port = port * 10 + (unsigned)(c[i] - '0');
            ENSURE(port <= 65535);
        }
        ENSURE(port == u->port);
    } else {
        ENSURE(u->port == 80 || u->port == 443);
    }

    /* The target follows the authority (after a bare ':' of an empty port) and ends the
     * input or a '#'; it starts with '/' or '?' and only the latter needs a slash. */
    ENSURE(u->target_off == auth_end || (u->target_off == auth_end + 1 && c[auth_end] == ':'));
    ENSURE(u->target_off + u->target_len == size || c[u->target_off + u->target_len] == '#');
    if (u->target_len) {
        ENSURE(c[u->target_off] == '/' || c[u->target_off] == '?');
        ENSURE(u->target_needs_slash == (c[u->target_off] == '?'));
    } else {
        ENSURE(!u->target_needs_slash);
    }
    for (uint32_t i = u->target_off; i < u->target_off + u->target_len; i++)
        ENSURE(c[i] != '#');
    /* Everything after the scheme goes on the wire or into logs: visible ASCII only. */
    for (size_t i = scheme_len; i < size; i++)
        ENSURE(visible(s[i]));
}

/* What the request writer sends, "scheme://authority/target", parses to the same origin. */
static void check_reparse(const uint8_t *s, const struct rf_url *u)
{
    static char buf[RF_URL_MAX + 16];
    const char *c = (const char *)s;
    struct rf_url v;
    size_t n = 0;

    memcpy(buf, u->scheme == RF_SCHEME_HTTPS ? "https://" : "http://",
           u->scheme == RF_SCHEME_HTTPS ? 8 : 7);
    n = u->scheme == RF_SCHEME_HTTPS ? 8 : 7;
    memcpy(buf + n, c + u->authority_off, u->authority_len);
    n += u->authority_len;
    if (u->target_len == 0 || u->target_needs_slash)
        buf[n++] = '/';
    memcpy(buf + n, c + u->target_off, u->target_len);
    n += u->target_len;
    if (n > RF_URL_MAX)
        return;
    ENSURE(url_parse(buf, n, &v) == 0);
    ENSURE(v.scheme == u->scheme && v.port == u->port && v.host_is_ip6 == u->host_is_ip6);
    ENSURE(v.host_len == u->host_len);
    ENSURE(memcmp(buf + v.host_off, c + u->host_off, u->host_len) == 0);
    ENSURE(v.target_len >= 1 && buf[v.target_off] == '/');
}

/* url_normalize() stays within 3 * len + 1024 + the scheme, and is idempotent. */
static void check_normalize(const uint8_t *s, size_t size)
{
    static char once[3 * RF_URL_MAX + 1024 + 8], twice[sizeof(once)];
    struct url_userinfo ui;
    int n, m;

    if (size > RF_URL_MAX)
        return;
    n = url_normalize((const char *)s, size, "http", once, 3 * size + 1024 + 4, &ui);
    if (n < 0) {
        ENSURE(n == -RF_ERR_INVALID_URL);
        return;
    }
    ENSURE((size_t)n <= 3 * size + 1024 + 4);
    ENSURE((uint64_t)ui.off + ui.len <= size);
    m = url_normalize(once, (size_t)n, "http", twice, sizeof(twice), &ui);
    ENSURE(m == n && memcmp(once, twice, (size_t)n) == 0 && ui.len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rf_url u, again;
    int ret;

    check_normalize(data, size);

    memset(&u, 0xa5, sizeof(u));
    ret = url_parse((const char *)data, size, &u);
    if (ret != 0) {
        static const struct rf_url zero;

        ENSURE(ret == -RF_ERR_INVALID_URL || ret == -RF_ERR_UNSUPPORTED_SCHEME);
        ENSURE(memcmp(&u, &zero, sizeof(u)) == 0);
        return 0;
    }
    check_ok(data, size, &u);
    /* No hidden state: the same bytes give the same answer. */
    memset(&again, 0x5a, sizeof(again));
    ENSURE(url_parse((const char *)data, size, &again) == 0);
    ENSURE(memcmp(&u, &again, sizeof(u)) == 0);
    check_reparse(data, &u);
    return 0;
}
