/*
 * fuzz_lines.c - the fetch command's input reader, lines_next(), on arbitrary bytes read
 * through fmemopen(), checked against a plain model of what it must return: one row per
 * non-blank line, trimmed, in order; a line longer than the cap never comes back as a URL
 * the engine would accept, and neither does a line holding a NUL byte.
 *
 * Input: one byte choosing the cap (0: LINE_MAX_BYTES, else that many bytes, so short
 * inputs reach the over-long path), then the file. The line buffer is allocated at exactly
 * cap + 2 bytes so AddressSanitizer sees any write past it. Any broken invariant traps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lines.h"
#include "ringfetch.h"
#include "proto/url.h"

/* An over-long line is marked by its length alone: the engine must refuse that length. */
_Static_assert(LINE_MAX_BYTES == RF_URL_MAX, "lines.h and url.h disagree on the cap");

static int space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int engine_accepts(const char *s)
{
    struct rf_url u;

    return url_parse(s, strlen(s), &u) == 0;
}

/* Check the row lines_next() gave for raw line [p, p + n) of the input. */
static void check_row(const char *row, const uint8_t *p, size_t n, size_t cap)
{
    size_t a = 0, b = n, len = strlen(row);

    if (n > cap) {
        /* Over-long: cut, and marked by a length no URL within the cap can have. */
        ENSURE(len > cap && len <= cap + 1);
        if (cap == LINE_MAX_BYTES)
            ENSURE(!engine_accepts(row));
        if (!memchr(p, 0, cap + 1))
            ENSURE(memcmp(row, p, len) == 0);
        return;
    }
    while (b > a && space(p[b - 1]))
        b--;
    while (a < b && space(p[a]))
        a++;
    ENSURE(b > a); /* a blank line gives no row */
    if (memchr(p, 0, n)) {
        /* A NUL cannot be passed on in a C string: the row must say the line is bad. */
        ENSURE(len >= 1 && len <= b - a);
        ENSURE(!engine_accepts(row));
        return;
    }
    ENSURE(len == b - a && memcmp(row, p + a, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap, off = 0;
    char *copy, *buf, *row;
    FILE *in;

    if (size < 1)
        return 0;
    cap = data[0] ? data[0] : LINE_MAX_BYTES;
    data++;
    size--;
    /* fmemopen() wants a writable buffer and refuses an empty one on older C libraries. */
    copy = malloc(size ? size : 1);
    buf = malloc(cap + 2);
    ENSURE(copy && buf);
    if (size)
        memcpy(copy, data, size);
    in = fmemopen(copy, size ? size : 1, "r");
    ENSURE(in);
    if (!size)
        getc(in); /* the one byte stands for an empty file: consume it */

    while (off < size) {
        const uint8_t *p = data + off, *nl = memchr(p, '\n', size - off);
        size_t n = nl ? (size_t)(nl - p) : size - off;
        size_t a = 0, b = n;

        off += n + (nl != NULL);
        while (b > a && space(p[b - 1]))
            b--;
        while (a < b && space(p[a]))
            a++;
        if (n <= cap && a == b)
            continue; /* blank: skipped without a row */
        row = lines_next(in, buf, cap);
        ENSURE(row != NULL);
        ENSURE(row >= buf && row + strlen(row) < buf + cap + 2);
        check_row(row, p, n, cap);
    }
    /* Every line is accounted for: the end, and it stays the end. */
    ENSURE(lines_next(in, buf, cap) == NULL);
    ENSURE(lines_next(in, buf, cap) == NULL);
    fclose(in);
    free(buf);
    free(copy);
    return 0;
}
