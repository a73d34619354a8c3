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

/* Where url_normalize() found "user:password" in its input (len 0: none). */
struct url_userinfo {
    uint32_t off, len;
};

/*
 * A URL as people write it, made into one for url_parse(), written to out (cap bytes):
 * without "scheme://" default_scheme is put in front (NULL: refused); the scheme is
 * lower-cased; userinfo is cut out (*ui says where it was); a host with non-ASCII bytes
 * becomes punycode (IDNA2008, UTS 46 mapping, through libidn2); "." and ".." segments
 * leave the path (RFC 3986 5.2.4); spaces and bytes >= 0x80 in the path, query and
 * fragment are percent-encoded as browsers do. Control bytes stay, for
 * url_parse() to refuse. out needs at most 3 * len + strlen(default_scheme) + 1024 bytes.
 * Returns the length written or -RF_ERR_INVALID_URL.
 */
int url_normalize(const char *in, size_t len, const char *default_scheme, char *out,
                  size_t cap, struct url_userinfo *ui);

/*
 * RFC 3986 5.2: the reference `ref` (a Location header's value) resolved against the
 * absolute URL `base`, into out (cap bytes), fragment dropped. Returns the length or -1.
 */
int url_resolve(const char *base, size_t blen, const char *ref, size_t rlen, char *out,
                size_t cap);

/* "Authorization: Basic ...\r\n" for a URL's userinfo (percent-escapes decoded) into out.
 * Returns its length, or -1 when it does not fit. */
int url_basic_auth(const char *userinfo, size_t len, char *out, size_t cap);

#endif
