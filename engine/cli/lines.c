/* lines.c - the fetch command's input lines: a byte order mark and blanks dropped, kinds told. */
#include "lines.h"

/* A NUL cannot go on in a C string: this control byte, which no URL may hold, stands for it. */
#define LINE_NUL '\x1a'

enum { IN_MARK, IN_LEAD, IN_TEXT };

static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};

/* isspace() of the C locale, whatever the locale: merge.c reads lines the same way. */
static int blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static void restart(struct lines *ls)
{
    ls->len = 0;
    ls->bom = 0;
    ls->phase = IN_MARK;
    ls->over = 0;
    ls->any = 0;
    ls->ended = 0;
}

void lines_init(struct lines *ls, char *buf, size_t cap)
{
    ls->buf = buf;
    ls->cap = cap;
    restart(ls);
}

static void keep(struct lines *ls, unsigned char c)
{
    /* One byte past the cap is kept: the length itself then says "too long". */
    if (ls->len <= ls->cap)
        ls->buf[ls->len++] = c ? (char)c : LINE_NUL;
    else if (!blank(c))
        ls->over = 1;
}

/* The bytes of a mark begun but not finished are text (no byte of it is white space). */
static void mark_is_text(struct lines *ls)
{
    for (unsigned i = 0; i < ls->bom; i++)
        keep(ls, bom[i]);
    ls->bom = 0;
    ls->phase = IN_TEXT;
}

static void step(struct lines *ls, unsigned char c)
{
    ls->any = 1;
    if (ls->phase == IN_MARK) {
        if (c == bom[ls->bom]) {
            if (++ls->bom == 3) {
                ls->bom = 0;
                ls->phase = IN_LEAD;
            }
            return;
        }
        if (ls->bom)
            mark_is_text(ls);
        else
            ls->phase = IN_LEAD;
    }
    if (ls->phase == IN_LEAD) {
        if (blank(c))
            return;
        ls->phase = IN_TEXT;
    }
    keep(ls, c);
}

static enum line_kind finish(struct lines *ls)
{
    enum line_kind kind;

    if (ls->phase == IN_MARK && ls->bom)
        mark_is_text(ls);
    /* Trailing blanks go unless text came after the kept part: then the line is too long
     * and keeps cap + 1 bytes, exactly its first cap + 1 once trimmed. */
    if (!ls->over)
        while (ls->len && blank((unsigned char)ls->buf[ls->len - 1]))
            ls->len--;
    ls->buf[ls->len] = '\0';
    kind = !ls->len ? LINE_BLANK : ls->buf[0] == '#' ? LINE_COMMENT : LINE_REQUEST;
    ls->ended = 1; /* the text stays until the next byte starts a line */
    return kind;
}

size_t lines_feed(struct lines *ls, const char *p, size_t n, enum line_kind *kind)
{
    *kind = LINE_NONE;
    for (size_t i = 0; i < n; i++) {
        if (ls->ended)
            restart(ls);
        if (p[i] == '\n') {
            *kind = finish(ls);
            return i + 1;
        }
        step(ls, (unsigned char)p[i]);
    }
    return n;
}

enum line_kind lines_end(struct lines *ls)
{
    if (ls->ended)
        restart(ls);
    return ls->any ? finish(ls) : LINE_NONE;
}

enum line_kind lines_one(struct lines *ls, const char *s, size_t n)
{
    restart(ls);
    for (size_t i = 0; i < n; i++)
        step(ls, (unsigned char)s[i]);
    return finish(ls);
}

const char *lines_text(const struct lines *ls, size_t *len)
{
    *len = ls->len;
    return ls->buf;
}
