/* lines.h - the fetch command's input: the next non-blank, trimmed line, in bounded memory. */
#ifndef RF_LINES_H
#define RF_LINES_H

#include <stddef.h>
#include <stdio.h>

#define LINE_MAX_BYTES 65536 /* longer input lines become invalid_url rows */

/*
 * The next non-blank line of `in`, trimmed of white space at both ends, in `buf` of
 * `cap` + 2 bytes (`cap` is LINE_MAX_BYTES outside tests). A line longer than `cap` is
 * cut to `cap` + 1 bytes and the rest skipped, so one hostile line cannot take unbounded
 * memory; it comes back untrimmed, and url_parse() (RF_URL_MAX = LINE_MAX_BYTES) rejects
 * it by length. A NUL byte comes back as 0x1a, which url_parse() rejects too, so a line
 * is never cut short to a valid URL. NULL at the end of input.
 */
char *lines_next(FILE *in, char *buf, size_t cap);

#endif
