/*
 * normalize.c - URLs as people write them, made into URLs as they go on the wire: a
 * default scheme, the scheme's case, userinfo taken out for an Authorization header, IDN
 * hosts in punycode, spaces and 8-bit bytes of the path percent-encoded.
 */
#include <idn2.h>
#include <stdlib.h>
#include <string.h>

#include "proto/url.h"
#include "ringfetch.h"

static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

static int is_scheme_char(unsigned char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

/* Bytes of "scheme" before "://", or 0 when the URL has none. */
static size_t scheme_len(const char *s, size_t len)
{
    size_t i = 0;

    if (!len || !is_alpha((unsigned char)s[0]))
        return 0;
    while (i < len && is_scheme_char((unsigned char)s[i]))
        i++;
    return len - i >= 3 && memcmp(s + i, "://", 3) == 0 ? i : 0;
}

struct out {
    char *p;
    size_t len, cap;
};

static int put(struct out *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        return -1;
    memmove(o->p + o->len, s, n); /* put_path() may read from what it writes over */
    o->len += n;
    return 0;
}

/* The host, in punycode when it holds non-ASCII (IDNA2008 with UTS 46 mapping). */
static int put_host(struct out *o, const char *h, size_t n)
{
    char name[RF_HOST_MAX * 4 + 1], *ascii = NULL;
    int ret;

    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] >= 0x80)
            goto idn;
    return put(o, h, n);
idn:
    if (n >= sizeof(name))
        return -1;
    memcpy(name, h, n);
    name[n] = '\0';
    ret = idn2_to_ascii_8z(name, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (ret != IDN2_OK) /* e.g. a symbol IDNA2008 forbids: the transitional rules map it */
        ret = idn2_to_ascii_8z(name, &ascii, IDN2_NFC_INPUT | IDN2_TRANSITIONAL);
    ret = ret == IDN2_OK ? put(o, ascii, strlen(ascii)) : -1;
    idn2_free(ascii);
    return ret;
}

/* Path, query and fragment as browsers write them: spaces and 8-bit bytes percent-encoded. */
static int put_target(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

        if (c == ' ' || c >= 0x80 ? put(o, esc, 3) : put(o, (const char *)&c, 1))
            return -1;
    }
    return 0;
}

static int starts(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);

    return n >= l && memcmp(p, lit, l) == 0;
}

/* Drop the output's last segment and its "/" (RFC 3986 5.2.4 C). */
static void drop_segment(struct out *o, size_t start)
{
    while (o->len > start && o->p[o->len - 1] != '/')
        o->len--;
    if (o->len > start)
        o->len--;
}

/* remove_dot_segments (RFC 3986 5.2.4) of path[0..n), appended to o. */
static int put_path(struct out *o, const char *p, size_t n)
{
    size_t start = o->len;

    while (n) {
        if (starts(p, n, "../") || starts(p, n, "./")) {          /* A */
            size_t k = p[0] == '.' && p[1] == '.' ? 3 : 2;

            p += k, n -= k;
        } else if (starts(p, n, "/./")) {                          /* B */
            p += 2, n -= 2;
        } else if (n == 2 && starts(p, n, "/.")) {
            return put(o, "/", 1);
        } else if (starts(p, n, "/../")) {                         /* C */
            p += 3, n -= 3;
            drop_segment(o, start);
        } else if (n == 3 && starts(p, n, "/..")) {
            drop_segment(o, start);
            return put(o, "/", 1);
        } else if ((n == 1 && p[0] == '.') || (n == 2 && starts(p, n, ".."))) { /* D */
            return 0;
        } else {                                                   /* E */
            size_t seg = 1;

            while (seg < n && p[seg] != '/')
                seg++;
            if (put(o, p, seg))
                return -1;
            p += seg, n -= seg;
        }
    }
    return 0;
}

int url_normalize(const char *in, size_t len, const char *default_scheme, char *out,
                  size_t cap, struct url_userinfo *ui)
{
    struct out o = {out, 0, cap};
    size_t sl = scheme_len(in, len), rest, end, h, hend, pend, at, n;

    ui->off = ui->len = 0;
    if (sl) {
        for (size_t i = 0; i < sl; i++) {
            char c = (char)(in[i] | 0x20); /* scheme characters are ASCII: letters fold */

            if (put(&o, is_alpha((unsigned char)in[i]) ? &c : &in[i], 1))
                return -RF_ERR_INVALID_URL;
        }
        rest = sl + 3;
    } else {
        /* "example.com/x": the default scheme in front (url_parse() judges the rest). */
        if (!default_scheme || !len)
            return -RF_ERR_INVALID_URL;
        if (put(&o, default_scheme, strlen(default_scheme)))
            return -RF_ERR_INVALID_URL;
        rest = 0;
    }
    if (put(&o, "://", 3))
        return -RF_ERR_INVALID_URL;
    end = rest;
    while (end < len && in[end] != '/' && in[end] != '?' && in[end] != '#')
        end++;
    /* Userinfo ends at the last "@" of the authority (as url_parse() reads it). */
    h = rest;
    for (size_t k = rest; k < end; k++)
        if (in[k] == '@')
            h = k + 1;
    if (h > rest) {
        ui->off = (uint32_t)rest;
        ui->len = (uint32_t)(h - 1 - rest);
    }
    if (h < end && in[h] == '[') {
        hend = h;
        while (hend < end && in[hend] != ']')
            hend++;
        hend = hend < end ? hend + 1 : end;
        if (put(&o, in + h, hend - h))
            return -RF_ERR_INVALID_URL;
    } else {
        hend = h;
        while (hend < end && in[hend] != ':')
            hend++;
        if (put_host(&o, in + h, hend - h))
            return -RF_ERR_INVALID_URL;
    }
    /* The port as written (url_parse() checks it), then the path without its dot segments
     * (as curl and browsers send it), query and fragment (kept, though never sent), all
     * encoded as browsers do. */
    pend = end;
    while (pend < len && in[pend] != '?' && in[pend] != '#')
        pend++;
    if (put(&o, in + hend, end - hend))
        return -RF_ERR_INVALID_URL;
    at = o.len;
    if (put_target(&o, in + end, pend - end))
        return -RF_ERR_INVALID_URL;
    n = o.len - at;
    o.len = at;
    if (put_path(&o, o.p + at, n) || put_target(&o, in + pend, len - pend))
        return -RF_ERR_INVALID_URL;
    return (int)o.len;
}

/* RFC 4648 base64, for Basic credentials. */
static size_t base64(const unsigned char *s, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);

        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    return o;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f'
                                                ? (c | 0x20) - 'a' + 10 : -1;
}

int url_basic_auth(const char *userinfo, size_t len, char *out, size_t cap)
{
    static const char pre[] = "Authorization: Basic ";
    unsigned char raw[768];
    size_t n = 0, b;

    if (len > sizeof(raw) || cap < sizeof(pre) - 1 + (len + 2) / 3 * 4 + 2)
        return -1;
    /* user:password as written, percent-escapes decoded (RFC 3986 3.2.1, as curl does). */
    for (size_t i = 0; i < len; i++) {
        if (userinfo[i] == '%' && i + 2 < len && hexval(userinfo[i + 1]) >= 0 &&
            hexval(userinfo[i + 2]) >= 0) {
            raw[n++] = (unsigned char)(hexval(userinfo[i + 1]) << 4 | hexval(userinfo[i + 2]));
            i += 2;
        } else {
            raw[n++] = (unsigned char)userinfo[i];
        }
    }
    memcpy(out, pre, sizeof(pre) - 1);
    b = base64(raw, n, out + sizeof(pre) - 1);
    memcpy(out + sizeof(pre) - 1 + b, "\r\n", 2);
    return (int)(sizeof(pre) - 1 + b + 2);
}

/* ---- RFC 3986 5.2: a reference (a Location) resolved against the URL it came from ---- */

int url_resolve(const char *base, size_t blen, const char *ref, size_t rlen, char *out,
                size_t cap)
{
    struct out o = {out, 0, cap};
    size_t bs = scheme_len(base, blen), ba, bpath, bq, rq, rf;

    if (!bs)
        return -1;
    if (scheme_len(ref, rlen)) /* absolute: as it is (url_normalize() removes its dots) */
        return put(&o, ref, rlen) ? -1 : (int)rlen;
    ba = bs + 3;
    bpath = ba;
    while (bpath < blen && base[bpath] != '/' && base[bpath] != '?' && base[bpath] != '#')
        bpath++;
    bq = bpath;
    while (bq < blen && base[bq] != '?' && base[bq] != '#')
        bq++;
    rf = 0;
    while (rf < rlen && ref[rf] != '#')
        rf++;
    rlen = rf; /* the reference's fragment is not sent */
    if (rlen >= 2 && ref[0] == '/' && ref[1] == '/') /* network-path: the base's scheme only */
        return put(&o, base, bs + 1) || put(&o, ref, rlen) ? -1 : (int)o.len;
    if (put(&o, base, bpath)) /* scheme://authority */
        return -1;
    rq = 0;
    while (rq < rlen && ref[rq] != '?')
        rq++;
    if (rq == 0) { /* empty path: the base's path, and the reference's query if it has one */
        size_t bend = bq;

        if (put(&o, base + bpath, bq - bpath))
            return -1;
        if (rlen)
            return put(&o, ref, rlen) ? -1 : (int)o.len;
        while (bend < blen && base[bend] != '#')
            bend++;
        return put(&o, base + bq, bend - bq) ? -1 : (int)o.len;
    }
    if (ref[0] == '/') {
        if (put_path(&o, ref, rq))
            return -1;
    } else {
        /* merge (5.2.3): the base path up to its last "/", then the reference */
        char tmp[RF_URL_MAX];
        size_t dir = bq, n;

        while (dir > bpath && base[dir - 1] != '/')
            dir--;
        n = dir > bpath ? dir - bpath : 0;
        if (n + 1 + rq > sizeof(tmp))
            return -1;
        if (n)
            memcpy(tmp, base + bpath, n);
        else
            tmp[n++] = '/';
        memcpy(tmp + n, ref, rq);
        if (put_path(&o, tmp, n + rq))
            return -1;
    }
    if (o.len == (size_t)(bpath) && put(&o, "/", 1))
        return -1;
    return put(&o, ref + rq, rlen - rq) ? -1 : (int)o.len;
}
