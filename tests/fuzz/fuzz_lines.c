/*
 * fuzz_lines.c - the fetch command's input lines (engine/cli/lines.c) on arbitrary bytes,
 * fed whole, byte by byte and in pieces of 7, and checked against a plain model of the
 * rule: one line per '\n' (and a last one without it, if it has a byte), a UTF-8 byte order
 * mark at the start dropped, blanks trimmed at both ends, then blank, comment ('#') or a
 * request whose text is what is left, a NUL kept as 0x1a; a line longer than the cap keeps
 * its first cap + 1 bytes, a length the engine refuses. lines_one() takes the whole input
 * as one line. The line buffer is exactly cap + 2 bytes, so AddressSanitizer sees any
 * write past it.
 *
 * Input: one byte choosing the cap (0: LINE_MAX_BYTES, else that many bytes, so short
 * inputs reach the over-long path), then the text. Any broken invariant traps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lines.h"
#include "proto/url.h"
#include "ringfetch.h"

/* An over-long line is marked by its length alone: the engine must refuse that length. */
_Static_assert(LINE_MAX_BYTES == RF_URL_MAX, "lines.h and url.h disagree on the cap");

static int blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The model: what raw line [p, p + n) must come out as, its kind and its text. */
static enum line_kind model(const uint8_t *p, size_t n, size_t cap, uint8_t *out, size_t *len)
{
    size_t a = 0, b = n;

    if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
        a = 3;
    while (a < b && blank(p[a]))
        a++;
    while (b > a && blank(p[b - 1]))
        b--;
    *len = b - a > cap + 1 ? cap + 1 : b - a;
    for (size_t i = 0; i < *len; i++)
        out[i] = p[a + i] ? p[a + i] : 0x1a;
    if (!*len)
        return LINE_BLANK;
    return out[0] == '#' ? LINE_COMMENT : LINE_REQUEST;
}

static void check_line(const struct lines *ls, enum line_kind kind, const uint8_t *p, size_t n,
                       size_t cap, uint8_t *want)
{
    size_t len, wlen;
    const char *text;

    ENSURE(kind == model(p, n, cap, want, &wlen));
    text = lines_text(ls, &len);
    ENSURE(text == ls->buf && len <= cap + 1 && text[len] == '\0');
    ENSURE(len == wlen && memcmp(text, want, len) == 0);
    if (kind == LINE_REQUEST && len > cap && cap == LINE_MAX_BYTES) {
        struct rf_url u;

        ENSURE(url_parse(text, len, &u) != 0);
    }
}

/* Feed everything in pieces of `piece` bytes; every line must match the model, in order. */
static void run(const uint8_t *data, size_t size, size_t cap, size_t piece, char *buf,
                uint8_t *want)
{
    struct lines ls;
    size_t pos = 0, line = 0; /* where the raw line under way starts */
    enum line_kind kind;

    lines_init(&ls, buf, cap);
    while (pos < size) {
        size_t n = size - pos < piece ? size - pos : piece;
        size_t used = lines_feed(&ls, (const char *)data + pos, n, &kind);

        ENSURE(used >= 1 && used <= n);
        pos += used;
        if (kind == LINE_NONE) {
            ENSURE(used == n);
            continue;
        }
        /* A line ends exactly at a '\n', the first after `line`. */
        ENSURE(data[pos - 1] == '\n' && !memchr(data + line, '\n', pos - 1 - line));
        check_line(&ls, kind, data + line, pos - 1 - line, cap, want);
        line = pos;
    }
    kind = lines_end(&ls);
    if (line == size) {
        ENSURE(kind == LINE_NONE);
    } else {
        check_line(&ls, kind, data + line, size - line, cap, want);
        ENSURE(lines_end(&ls) == LINE_NONE); /* and the end stays the end */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[] = {SIZE_MAX, 1, 7};
    size_t cap, wlen;
    char *buf;
    uint8_t *want;
    struct lines ls;
    enum line_kind kind;

    if (size < 1)
        return 0;
    cap = data[0] ? data[0] : LINE_MAX_BYTES;
    data++;
    size--;
    buf = malloc(cap + 2);
    want = malloc(cap + 2);
    ENSURE(buf && want);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
        run(data, size, cap, pieces[i], buf, want);
    /* One line of the whole input: a '\n' in it is just white space. */
    lines_init(&ls, buf, cap);
    kind = lines_one(&ls, (const char *)data, size);
    {
        size_t len;
        const char *text = lines_text(&ls, &len);

        ENSURE(kind == model(data, size, cap, want, &wlen));
        ENSURE(len == wlen && memcmp(text, want, len) == 0 && text[len] == '\0');
    }
    free(want);
    free(buf);
    return 0;
}
