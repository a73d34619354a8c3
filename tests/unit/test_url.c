/* test_url.c - url_parse() against exact expected offsets, guard pages and every truncation. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ringfetch.h"
#include "proto/url.h"

#define BAD (-RF_ERR_INVALID_URL)
#define UNSUP (-RF_ERR_UNSUPPORTED_SCHEME)
#define HTTP RF_SCHEME_HTTP
#define HTTPS RF_SCHEME_HTTPS

/*
 * One case. For ret != 0 only `in` (and `len` when it holds a NUL) matter. For ret == 0
 * host, authority and target are the exact substrings expected ("" for an empty target).
 */
struct want {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int ret;
    int scheme;
    unsigned port;
    const char *host;
    const char *authority;
    const char *target;
    int ip6;
    int slash;
};

static const struct want cases[] = {
    /* default and explicit ports */
    {"http://example.com", 0, 0, HTTP, 80, "example.com", "example.com", "", 0, 0},
    {"https://example.com/", 0, 0, HTTPS, 443, "example.com", "example.com", "/", 0, 0},
    {"http://example.com:8080/a/b?c=d", 0, 0, HTTP, 8080, "example.com", "example.com:8080",
     "/a/b?c=d", 0, 0},
    {"https://example.com:8443", 0, 0, HTTPS, 8443, "example.com", "example.com:8443", "", 0, 0},
    {"https://h:80/", 0, 0, HTTPS, 80, "h", "h:80", "/", 0, 0},
    {"http://h:65535/", 0, 0, HTTP, 65535, "h", "h:65535", "/", 0, 0},
    {"http://h:1", 0, 0, HTTP, 1, "h", "h:1", "", 0, 0},
    {"http://h:00080/", 0, 0, HTTP, 80, "h", "h:00080", "/", 0, 0},
    /* an empty port means the default, and the bare ":" leaves the authority */
    {"http://h:/x", 0, 0, HTTP, 80, "h", "h", "/x", 0, 0},
    {"https://h:", 0, 0, HTTPS, 443, "h", "h", "", 0, 0},
    /* scheme case; host case is kept as written */
    {"HTTP://Example.COM", 0, 0, HTTP, 80, "Example.COM", "Example.COM", "", 0, 0},
    {"HtTpS://Example.COM/Path", 0, 0, HTTPS, 443, "Example.COM", "Example.COM", "/Path", 0, 0},
    /* userinfo is skipped; "@" after the authority is not userinfo */
    {"http://user:pass@example.com/x", 0, 0, HTTP, 80, "example.com", "example.com", "/x", 0, 0},
    {"http://user@example.com:81", 0, 0, HTTP, 81, "example.com", "example.com:81", "", 0, 0},
    {"http://user:p%40ss@h", 0, 0, HTTP, 80, "h", "h", "", 0, 0},
    {"http://a@b@c/", 0, 0, HTTP, 80, "c", "c", "/", 0, 0},
    {"http://@h/", 0, 0, HTTP, 80, "h", "h", "/", 0, 0},
    {"http://example.com/a@b", 0, 0, HTTP, 80, "example.com", "example.com", "/a@b", 0, 0},
    {"http://u@h/p@q?r@s", 0, 0, HTTP, 80, "h", "h", "/p@q?r@s", 0, 0},
    {"http://example.com?x=1@y", 0, 0, HTTP, 80, "example.com", "example.com", "?x=1@y", 0, 1},
    {"http://h#a@b", 0, 0, HTTP, 80, "h", "h", "", 0, 0},
    {"http://user@/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://u\x01@h/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* IPv4 */
    {"http://192.168.0.1/", 0, 0, HTTP, 80, "192.168.0.1", "192.168.0.1", "/", 0, 0},
    {"http://127.0.0.1:3000", 0, 0, HTTP, 3000, "127.0.0.1", "127.0.0.1:3000", "", 0, 0},
    {"http://1.2.3.4x/", 0, 0, HTTP, 80, "1.2.3.4x", "1.2.3.4x", "/", 0, 0},
    {"http://256.0.0.1/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://1.2.3/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://1.2.3.4.5/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://1.2.3.4./", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://2130706433/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* IPv6 */
    {"http://[::1]:8080/x", 0, 0, HTTP, 8080, "::1", "[::1]:8080", "/x", 1, 0},
    {"http://[2001:db8::1]", 0, 0, HTTP, 80, "2001:db8::1", "[2001:db8::1]", "", 1, 0},
    {"https://u:p@[::ffff:1.2.3.4]?q", 0, 0, HTTPS, 443, "::ffff:1.2.3.4", "[::ffff:1.2.3.4]",
     "?q", 1, 1},
    {"http://[::1]:/", 0, 0, HTTP, 80, "::1", "[::1]", "/", 1, 0},
    {"http://[::1/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://[::1", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://[::g]/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://[]/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://[::1]x/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://[::1]]/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://[1.2.3.4]/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://[1:2:3:4:5:6:7:8:9]/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://[fe80::1%25eth0]/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://[0000:0000:0000:0000:0000:0000:0000:0000:0]/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://::1/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h[::1]/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* bad ports */
    {"http://h:0/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h:000", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h:65536/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h:99999999999999999999999/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h:8a/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h:http/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h:-1/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h:+80/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h:80:81/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* missing host */
    {"http://", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http:///x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://:80/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://?x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://#f", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* not "scheme://" */
    {"http:/x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http:x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http//x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"mailto:x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"example.com/x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"://x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"1http://x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"ht tp://x", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* well-formed but unsupported schemes */
    {"ftp://x", 0, UNSUP, 0, 0, NULL, NULL, NULL, 0, 0},
    {"FTP://example.com/file", 0, UNSUP, 0, 0, NULL, NULL, NULL, 0, 0},
    {"file:///etc/passwd", 0, UNSUP, 0, 0, NULL, NULL, NULL, 0, 0},
    {"ws://h/", 0, UNSUP, 0, 0, NULL, NULL, NULL, 0, 0},
    {"httpx://h/", 0, UNSUP, 0, 0, NULL, NULL, NULL, 0, 0},
    {"htt://h/", 0, UNSUP, 0, 0, NULL, NULL, NULL, 0, 0},
    {"git+ssh://h/", 0, UNSUP, 0, 0, NULL, NULL, NULL, 0, 0},
    /* blanks */
    {"http://exa mple.com/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h/a b", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h/a?b c", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {" http://h/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h/ ", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h ", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h/\t", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* controls, DEL and NUL */
    {"http://h/\x01", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h\r\n/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h/x\r\nHost: evil", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h/\x7f", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h/\0x", 11, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h\0/", 10, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* UTF-8 and other 8-bit bytes */
    {"http://h/caf\xc3\xa9", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://ex\xc3\xa4mple.com/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://u\xc3\xa9@h/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h/#\xff", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"\xc8ttp://h/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* the fragment is excluded from the target, but must still be clean */
    {"http://h/p?q#frag", 0, 0, HTTP, 80, "h", "h", "/p?q", 0, 0},
    {"http://h#frag", 0, 0, HTTP, 80, "h", "h", "", 0, 0},
    {"http://h:81#", 0, 0, HTTP, 81, "h", "h:81", "", 0, 0},
    {"http://h/#a#b?c", 0, 0, HTTP, 80, "h", "h", "/", 0, 0},
    {"http://h?#", 0, 0, HTTP, 80, "h", "h", "?", 0, 1},
    {"http://h/#a b", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* query without a path */
    {"http://h?x=1", 0, 0, HTTP, 80, "h", "h", "?x=1", 0, 1},
    {"https://h:444?x", 0, 0, HTTPS, 444, "h", "h:444", "?x", 0, 1},
    {"http://h?", 0, 0, HTTP, 80, "h", "h", "?", 0, 1},
    {"http://h/?x=1", 0, 0, HTTP, 80, "h", "h", "/?x=1", 0, 0},
    /* paths are kept as written */
    {"http://h//x", 0, 0, HTTP, 80, "h", "h", "//x", 0, 0},
    {"http://h/a/../b/%zz?<>\"{}|^`\\", 0, 0, HTTP, 80, "h", "h", "/a/../b/%zz?<>\"{}|^`\\", 0,
     0},
    {"http://h/path?", 0, 0, HTTP, 80, "h", "h", "/path?", 0, 0},
    /* reg-name characters and percent-encoding */
    {"http://a-b_c~d.e!$&'()*+,;=/", 0, 0, HTTP, 80, "a-b_c~d.e!$&'()*+,;=",
     "a-b_c~d.e!$&'()*+,;=", "/", 0, 0},
    {"http://ex%41mple.com/", 0, 0, HTTP, 80, "ex%41mple.com", "ex%41mple.com", "/", 0, 0},
    {"http://localhost", 0, 0, HTTP, 80, "localhost", "localhost", "", 0, 0},
    {"http://x/", 0, 0, HTTP, 80, "x", "x", "/", 0, 0},
    {"http://ex%4/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://ex%4", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://ex%/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://ex%zz/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h^/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h\\x/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h<x>/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    {"http://h\"/", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
    /* empty */
    {"", 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0},
};

static int all_zero(const struct rf_url *u)
{
    static const struct rf_url zero;

    return memcmp(u, &zero, sizeof(*u)) == 0;
}

/* The properties any input must have, whatever it is: a known code and sane offsets. */
static int sane(const char *s, size_t n, int ret, const struct rf_url *u)
{
    if (ret == BAD || ret == UNSUP)
        return all_zero(u);
    if (ret != 0)
        return 0;
    return (u->scheme == HTTP || u->scheme == HTTPS) && u->port != 0 && u->host_len >= 1 &&
           u->host_len <= RF_HOST_MAX && (size_t)u->host_off + u->host_len <= n &&
           u->authority_off <= u->host_off &&
           (size_t)u->authority_off + u->authority_len <= n &&
           u->host_off + u->host_len <= u->authority_off + u->authority_len &&
           (size_t)u->target_off + u->target_len <= n &&
           (u->target_len == 0 || s[u->target_off] == '/' || s[u->target_off] == '?') &&
           u->target_needs_slash == (u->target_len > 0 && s[u->target_off] == '?');
}

/* Parse every truncation from a guard copy of its own: none may crash or read past it. */
static void check_prefixes(const char *in, size_t len)
{
    for (size_t n = 0; n <= len; n++) {
        char *g = guard_copy(in, n);
        struct rf_url a, b;
        int ra = url_parse(g, n, &a);
        int rb = url_parse(g, n, &b);

        if (!CHECK(ra == rb && memcmp(&a, &b, sizeof(a)) == 0 && sane(g, n, ra, &a)))
            fprintf(stderr, "  prefix of %zu bytes, ret %d\n", n, ra);
        guard_free(g, n);
    }
}

static void check_one(const char *in, size_t len, const struct want *w, int prefixes)
{
    int before = check_failures();
    char *g = guard_copy(in, len);
    char *junk = malloc(len + 8);
    struct rf_url u, uj;
    int ret;

    /* Bytes after `len` must not matter: follow the input with URL-looking junk. */
    CHECK(junk != NULL);
    memcpy(junk, in, len);
    memcpy(junk + len, ":9/@x# ", 8);
    ret = url_parse(g, len, &u);
    CHECK_INT(ret, w->ret);
    CHECK_INT(url_parse(junk, len, &uj), ret);
    CHECK(memcmp(&u, &uj, sizeof(u)) == 0);
    CHECK(sane(g, len, ret, &u));
    if (ret == 0 && w->ret == 0) {
        CHECK_INT(u.scheme, w->scheme);
        CHECK_UINT(u.port, w->port);
        CHECK_MEM(g + u.host_off, u.host_len, w->host, strlen(w->host));
        CHECK_MEM(g + u.authority_off, u.authority_len, w->authority, strlen(w->authority));
        CHECK_MEM(g + u.target_off, u.target_len, w->target, strlen(w->target));
        CHECK_INT(u.host_is_ip6, w->ip6);
        CHECK_INT(u.target_needs_slash, w->slash);
    }
    if (prefixes)
        check_prefixes(in, len);
    if (check_failures() != before) {
        fprintf(stderr, "  in case ");
        check_put_mem_(in, len);
        fprintf(stderr, " (%zu bytes)\n", len);
    }
    free(junk);
    guard_free(g, len);
}

/* Build "http://h/aaa..." of exactly n bytes. */
static char *long_url(size_t n)
{
    char *s = malloc(n);

    if (!s)
        abort();
    memset(s, 'a', n);
    memcpy(s, "http://h/", 9);
    return s;
}

static void check_lengths(void)
{
    char host[RF_HOST_MAX + 1 + 16];
    char want_host[RF_HOST_MAX + 2];
    char *s, *g;
    struct rf_url u;
    struct want w = {NULL, 0, 0, HTTP, 80, NULL, NULL, NULL, 0, 0};
    struct want bad = {NULL, 0, BAD, 0, 0, NULL, NULL, NULL, 0, 0};

    /* A host of RF_HOST_MAX bytes fits the engine's host buffer; one more does not. */
    memset(want_host, 'a', sizeof(want_host));
    want_host[RF_HOST_MAX] = '\0';
    memcpy(host, "http://", 7);
    memcpy(host + 7, want_host, RF_HOST_MAX);
    w.host = w.authority = want_host;
    w.target = "";
    check_one(host, 7 + RF_HOST_MAX, &w, 1);
    host[7 + RF_HOST_MAX] = 'a';
    check_one(host, 7 + RF_HOST_MAX + 1, &bad, 1);

    /* RF_URL_MAX bytes is the longest URL accepted. Prefixes are too slow at this size. */
    s = long_url(RF_URL_MAX + 1);
    g = guard_copy(s, RF_URL_MAX);
    CHECK_INT(url_parse(g, RF_URL_MAX, &u), 0);
    CHECK_UINT(u.host_len, 1);
    CHECK_UINT(u.target_off, 8);
    CHECK_UINT(u.target_len, RF_URL_MAX - 8);
    guard_free(g, RF_URL_MAX);
    check_one(s, RF_URL_MAX + 1, &bad, 0);
    free(s);
}

int main(void)
{
    struct rf_url u;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct want *w = &cases[i];

        check_one(w->in, w->len ? w->len : strlen(w->in), w, 1);
    }
    check_lengths();

    CHECK_INT(url_parse(NULL, 0, &u), BAD);
    CHECK(all_zero(&u));
    /* A failed parse clears what an earlier success left in the struct. */
    CHECK_INT(url_parse("http://h/", 9, &u), 0);
    CHECK_INT(url_parse("http://h:0/", 11, &u), BAD);
    CHECK(all_zero(&u));
    return check_finish("test_url");
}
