/* lines.h - the fetch command's input lines: bytes in pieces of any size, classified lines out. */
#ifndef RF_LINES_H
#define RF_LINES_H

#include <stddef.h>

#define LINE_MAX_BYTES 65536 /* longer input lines become invalid_url rows */

/*
 * The rule, shared with `ringfetch merge --input` (merge.c, is_request()): a line ends at
 * '\n'; a UTF-8 byte order mark at its start is dropped, then white space (space, \t, \r,
 * \v, \f) at both ends. Nothing left: a blank line; a first byte '#': a comment; else a
 * request line, whose text is what is left. A last line without '\n' is a line too.
 *
 * Memory is bounded whatever the input: of a request line longer than `cap` (LINE_MAX_BYTES
 * outside tests) only the first cap + 1 bytes are kept, and url_parse() (RF_URL_MAX =
 * LINE_MAX_BYTES) rejects that length, so one hostile line cannot take unbounded memory or
 * come back cut short to a valid URL. A NUL byte is kept as 0x1a, which no URL may hold,
 * for the same reason: the line is never cut at the NUL.
 */
enum line_kind { LINE_NONE, LINE_BLANK, LINE_COMMENT, LINE_REQUEST };

struct lines {
    char *buf; /* cap + 2 bytes, the caller's */
    size_t cap;
    size_t len;   /* bytes kept of the line so far */
    unsigned bom; /* byte order mark bytes matched at the line's start */
    int phase;    /* in the mark, in leading white space, or in the text */
    int over;     /* a non-blank byte came after the first cap + 1 */
    int any;      /* the line has a byte: the end of input ends it */
    int ended;    /* the line was handed out: the next byte starts another */
};

void lines_init(struct lines *ls, char *buf, size_t cap);

/*
 * Take bytes of the input until a line ends: returns how many of the n were used and sets
 * *kind to the kind of the line that ended with the last of them (LINE_NONE when none did:
 * all n were used). The text of a request line is then lines_text()'s until the next call.
 */
size_t lines_feed(struct lines *ls, const char *p, size_t n, enum line_kind *kind);

/* The end of the input: the kind of its last line when it had no '\n', else LINE_NONE. */
enum line_kind lines_end(struct lines *ls);

/* A whole string as one line (a URL given as an argument): '\n' in it is white space. */
enum line_kind lines_one(struct lines *ls, const char *s, size_t n);

/* The request line that just ended, NUL-terminated; *len is its length. */
const char *lines_text(const struct lines *ls, size_t *len);

#endif
