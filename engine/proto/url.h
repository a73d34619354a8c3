/* url.h - absolute http(s) URL parsing by offsets into the caller's string, no allocation. */
#ifndef RF_URL_H
#define RF_URL_H

#include <stddef.h>
#include <stdint.h>

enum rf_scheme { RF_SCHEME_HTTP = 1, RF_SCHEME_HTTPS = 2 };

/*
 * Offsets and lengths index the string given to url_parse(). The host excludes the
 * brackets of an IPv6 literal; the authority ("host[:port]" exactly as written, with
 * brackets, without userinfo) is what goes in the Host header; the target is the path
 * and query ("/" when the URL has no path: target_len is then 0), without fragment.
 */
struct rf_url {
    uint8_t scheme;      /* enum rf_scheme */
    uint8_t host_is_ip6; /* host was a bracketed IPv6 literal */
    uint8_t target_needs_slash;
    uint16_t port;       /* explicit or the scheme's default */
    uint32_t host_off, host_len;
    uint32_t authority_off, authority_len;
    uint32_t target_off, target_len;
};

#define RF_URL_MAX 65536 /* longer URLs are invalid */
#define RF_HOST_MAX 255

/*
 * Parse an absolute URL of `len` bytes. Accepts http and https (case-insensitive
 * scheme), optional userinfo (ignored), reg-name, IPv4 or bracketed IPv6 hosts,
 * an optional port 1-65535, and any path/query of visible ASCII. Leading and trailing
 * blanks are not accepted (callers trim lines). Returns 0, -RF_ERR_INVALID_URL or
 * -RF_ERR_UNSUPPORTED_SCHEME (a well-formed URL whose scheme is neither).
 */
int url_parse(const char *s, size_t len, struct rf_url *u);

#endif
