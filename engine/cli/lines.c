/* lines.c - reads the fetch command's input lines: trimmed, blank ones skipped, length capped. */
#include "lines.h"

#include <ctype.h>
#include <string.h>

/* A NUL cannot go on in a C string: this control byte, which no URL may hold, stands for it. */
#define LINE_NUL '\x1a'

static char *trim(char *s, size_t *len)
{
    size_t n = *len;

    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/*
 * Read a byte at a time, so the line's length is known exactly: after fgets() only strlen()
 * tells it, which stops at a NUL byte and let the rest of a long line come back as a line
 * of its own.
 */
char *lines_next(FILE *in, char *buf, size_t cap)
{
    for (;;) {
        size_t len = 0;
        int ch;
        char *s;

        while ((ch = getc_unlocked(in)) != EOF && ch != '\n')
            if (len <= cap) /* one byte past the cap marks the line as too long */
                buf[len++] = ch ? (char)ch : LINE_NUL;
        if (ch == EOF && len == 0)
            return NULL;
        buf[len] = '\0';
        if (len > cap)
            return buf; /* cap + 1 bytes: url_parse rejects that by length */
        s = trim(buf, &len);
        if (len)
            return s;
        if (ch == EOF)
            return NULL;
    }
}
