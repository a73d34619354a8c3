/* values.c - what the commands share: option value parsers, JSON/CSV quoting, bodies. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ringfetch.h"

int parse_duration_ms(const char *s, uint64_t *ms)
{
    char *end;
    double v, mult = 1000.0;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        mult = 1.0;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60000.0;
    else if (strcmp(end, "h") == 0)
        mult = 3600000.0;
    else if (*end && strcmp(end, "s") != 0)
        return -1;
    if (v * mult > 1e12)
        return -1;
    *ms = (uint64_t)(v * mult + 0.5);
    return 0;
}

int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    errno = 0;
    if (*s == '-')
        return -1;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    if (*s == '-')
        return -1;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int parse_count(const char *s, unsigned max, unsigned *out)
{
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    return parse_uint(s, max, out);
}

int parse_positive(const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

/* ---- growing buffers: a row is made whole before it is written ---- */

static int buf_room(struct buf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->oom)
        return -1;
    if (n <= b->cap - b->len)
        return 0;
    cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            goto fail;
        cap *= 2;
    }
    if (!(p = realloc(b->p, cap)))
        goto fail;
    b->p = p;
    b->cap = cap;
    return 0;
fail:
    b->oom = 1; /* the writer sees it and says so: a row is never written cut */
    return -1;
}

void buf_put(struct buf *b, const void *p, size_t n)
{
    if (n && buf_room(b, n) == 0) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
    }
}

void buf_puts(struct buf *b, const char *s) { buf_put(b, s, strlen(s)); }

void buf_putc(struct buf *b, char c) { buf_put(b, &c, 1); }

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_room(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/*
 * The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when p[0] does not begin one.
 */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0; /* overlong */
    else if (c == 0xed)
        hi = 0x9f; /* surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* overlong */
    else if (c == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

void buf_json(struct buf *b, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    size_t i = 0, run;

    buf_putc(b, '"');
    while (i < len) {
        /* Plain printable ASCII and valid UTF-8 go as they are, in one piece. */
        for (run = i; run < len;) {
            size_t u = p[run] >= 0x80 ? utf8_len(p + run, len - run) : 1;

            if (!u || p[run] < 0x20 || p[run] == 0x7f || p[run] == '"' || p[run] == '\\')
                break;
            run += u;
        }
        buf_put(b, p + i, run - i);
        if ((i = run) >= len)
            break;
        if (p[i] == '"' || p[i] == '\\') {
            char esc[2] = {'\\', (char)p[i]};

            buf_put(b, esc, 2);
        } else if (p[i] == '\n') {
            buf_put(b, "\\n", 2);
        } else if (p[i] == '\t') {
            buf_put(b, "\\t", 2);
        } else if (p[i] == '\r') {
            buf_put(b, "\\r", 2);
        } else if (p[i] < 0x20 || p[i] == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[p[i] >> 4], hex[p[i] & 15]};

            buf_put(b, esc, 6);
        } else {
            /* Bytes from the network or the input need not be UTF-8: each byte that does
             * not begin a valid sequence becomes U+FFFD, so every row is valid JSON. */
            buf_put(b, REPLACEMENT, 3);
        }
        i++;
    }
    buf_putc(b, '"');
}

void buf_csv(struct buf *b, const void *data, size_t len)
{
    const unsigned char *p = data;
    int quote = 0;

    for (size_t i = 0; i < len && !quote; i++)
        quote = p[i] == ',' || p[i] == '"' || p[i] == '\r' || p[i] == '\n';
    if (quote)
        buf_putc(b, '"');
    for (size_t i = 0; i < len;) {
        size_t u = utf8_len(p + i, len - i);

        if (!u) {
            buf_put(b, REPLACEMENT, 3); /* the same rule as JSON: the file is UTF-8 */
            i++;
            continue;
        }
        if (p[i] == '"')
            buf_putc(b, '"');
        buf_put(b, p + i, u);
        i += u;
    }
    if (quote)
        buf_putc(b, '"');
}

void json_mem(FILE *f, const void *data, size_t len)
{
    struct buf b = {0};

    buf_json(&b, data, len);
    if (!b.oom)
        fwrite(b.p, 1, b.len, f);
    buf_free(&b);
}

void json_str(FILE *f, const char *s) { json_mem(f, s, strlen(s)); }

double mono_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int load_data(const char *arg, char **data, size_t *len)
{
    FILE *f;
    long n;

    *data = NULL;
    *len = 0;
    if (arg[0] != '@') {
        *data = strdup(arg);
        *len = strlen(arg);
        return *data ? 0 : -1;
    }
    f = fopen(arg + 1, "rb");
    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        if (f)
            fclose(f);
        return -1;
    }
    *data = malloc((size_t)n + 1);
    if (!*data || fread(*data, 1, (size_t)n, f) != (size_t)n) {
        free(*data);
        *data = NULL;
        fclose(f);
        return -1;
    }
    fclose(f);
    *len = (size_t)n;
    return 0;
}

int valid_header(const char *h)
{
    rf_request r = {.headers = &h, .n_headers = 1};

    return rf_check_request(&r) == RF_OK;
}

int valid_method(const char *m)
{
    rf_request r = {.method = m};

    return rf_check_request(&r) == RF_OK;
}

int tls_option(int opt, const char *arg, const char **ca_file, int *insecure)
{
    if (opt == 'k') {
        *insecure = 1;
        return 0;
    }
    /* Checked now, not at the first https URL: a typo is a usage error, not 10,000 rows. */
    if (access(arg, R_OK))
        return -1;
    *ca_file = arg;
    return 0;
}
