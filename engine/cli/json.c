/* json.c - the JSON reader behind report, bench-merge and merge: strict, bounded, no globals. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Values and unescaped strings are carved from chunks freed all at once with the document. */
struct json_arena {
    struct json_arena *prev;
    size_t used, cap;
    max_align_t data[];
};

#define ARENA_CHUNK 8192

struct parser {
    const unsigned char *p, *start, *end;
    unsigned depth, max_depth;
    struct json_arena *arena;
    struct json_error *err;
};

static int fail_at(struct parser *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *ps, const unsigned char *at, const char *fmt, ...)
{
    va_list ap;

    ps->err->offset = (size_t)(at - ps->start);
    va_start(ap, fmt);
    vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

static void *arena_alloc(struct parser *ps, size_t n)
{
    struct json_arena *a = ps->arena;
    size_t align = sizeof(max_align_t);

    n = (n + align - 1) / align * align;
    if (!a || a->cap - a->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;

        a = malloc(sizeof(*a) + cap);
        if (!a)
            return NULL;
        a->prev = ps->arena;
        a->used = 0;
        a->cap = cap;
        ps->arena = a;
    }
    a->used += n;
    return (char *)a->data + a->used - n;
}

static struct json_value *new_value(struct parser *ps, enum json_type t)
{
    struct json_value *v = arena_alloc(ps, sizeof(*v));

    if (!v) {
        fail_at(ps, ps->p, "out of memory");
        return NULL;
    }
    memset(v, 0, sizeof(*v));
    v->type = t;
    return v;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned c = s[i];

        if (c >= '0' && c <= '9')
            c -= '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            c = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | c;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0.
 */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
    unsigned c = s[0], need, cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        need = 2, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 3, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - s) <= need)
        return 0;
    for (unsigned i = 1; i <= need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need + 1;
}

/* A string at ps->p (on its opening quote) into arena memory, unescaped and NUL-ended. */
static int parse_string(struct parser *ps, const char **out, size_t *out_len)
{
    const unsigned char *open = ps->p, *s = ps->p + 1;
    unsigned char *buf, *o;

    /* Unescaping only shrinks, so the raw length up to the closing quote is enough room. */
    while (s < ps->end && *s != '"')
        s += *s == '\\' && s + 1 < ps->end ? 2 : 1;
    if (s >= ps->end)
        return fail_at(ps, open, "unterminated string");
    buf = arena_alloc(ps, (size_t)(s - open));
    if (!buf)
        return fail_at(ps, open, "out of memory");
    o = buf;
    for (s = open + 1; *s != '"';) {
        unsigned cp, lo;
        size_t n;

        if (*s < 0x20)
            return fail_at(ps, s, "control character 0x%02x in a string", *s);
        if (*s != '\\') {
            n = utf8_len(s, ps->end);
            if (!n)
                return fail_at(ps, s, "invalid UTF-8 in a string");
            memcpy(o, s, n);
            o += n;
            s += n;
            continue;
        }
        switch (s[1]) {
        case '"': case '\\': case '/': *o++ = s[1]; s += 2; continue;
        case 'b': *o++ = '\b'; s += 2; continue;
        case 'f': *o++ = '\f'; s += 2; continue;
        case 'n': *o++ = '\n'; s += 2; continue;
        case 'r': *o++ = '\r'; s += 2; continue;
        case 't': *o++ = '\t'; s += 2; continue;
        case 'u': break;
        default: return fail_at(ps, s, "invalid escape in a string");
        }
        if (ps->end - s < 6 || hex4(s + 2, &cp))
            return fail_at(ps, s, "invalid \\u escape");
        s += 6;
        /* A UTF-16 surrogate is only valid as a high one followed by an escaped low one. */
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return fail_at(ps, s - 6, "lone low surrogate");
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (ps->end - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &lo) ||
                lo < 0xdc00 || lo > 0xdfff)
                return fail_at(ps, s - 6, "high surrogate without a low one");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            s += 6;
        }
        o += put_utf8(o, cp);
    }
    *o = '\0';
    ps->p = s + 1;
    *out = (const char *)buf;
    *out_len = (size_t)(o - buf);
    return 0;
}

/* RFC 8259's number grammar checked by hand; strtod() alone would take hex, inf, nan, "1.". */
static int parse_number(struct parser *ps, struct json_value *v)
{
    const unsigned char *s = ps->p;
    int plain = 1, overflow = 0;
    uint64_t u = 0;
    char tmp[64], *dup = tmp, *endp;
    size_t n;

    if (*s == '-')
        s++, plain = 0;
    if (s >= ps->end || *s < '0' || *s > '9')
        return fail_at(ps, ps->p, "invalid number");
    if (*s == '0' && s + 1 < ps->end && s[1] >= '0' && s[1] <= '9')
        return fail_at(ps, ps->p, "leading zero in a number");
    while (s < ps->end && *s >= '0' && *s <= '9') {
        unsigned d = *s++ - '0';

        overflow |= u > (UINT64_MAX - d) / 10;
        u = u * 10 + d;
    }
    if (s < ps->end && *s == '.') {
        plain = 0;
        if (++s >= ps->end || *s < '0' || *s > '9')
            return fail_at(ps, s, "digit expected after '.'");
        while (s < ps->end && *s >= '0' && *s <= '9')
            s++;
    }
    if (s < ps->end && (*s == 'e' || *s == 'E')) {
        plain = 0;
        if (++s < ps->end && (*s == '+' || *s == '-'))
            s++;
        if (s >= ps->end || *s < '0' || *s > '9')
            return fail_at(ps, s, "digit expected in an exponent");
        while (s < ps->end && *s >= '0' && *s <= '9')
            s++;
    }
    /* strtod needs a NUL-terminated copy: the text is a buffer, not a C string. */
    n = (size_t)(s - ps->p);
    if (n >= sizeof(tmp) && !(dup = malloc(n + 1)))
        return fail_at(ps, ps->p, "out of memory");
    memcpy(dup, ps->p, n);
    dup[n] = '\0';
    errno = 0;
    v->num = strtod(dup, &endp);
    if (dup != tmp)
        free(dup);
    if (errno == ERANGE && isinf(v->num))
        return fail_at(ps, ps->p, "number out of range");
    if (plain && !overflow) {
        v->is_uint = 1;
        v->u64 = u;
    } else if (!plain && v->num >= 0 && v->num <= 9007199254740992.0 &&
               v->num == floor(v->num)) {
        /* 1e3 or 2.0 is integral too; up to 2^53 the double is the exact value */
        v->is_uint = 1;
        v->u64 = (uint64_t)v->num;
    }
    ps->p = s;
    return 0;
}

static int cmp_keys(const void *a, const void *b)
{
    const struct json_value *x = *(const struct json_value *const *)a;
    const struct json_value *y = *(const struct json_value *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);

    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Sorting a copy finds a repeated key in O(n log n): a hostile object may have a million. */
static int check_duplicates(struct parser *ps, const struct json_value *obj,
                            const unsigned char *at)
{
    const struct json_value **keys;
    size_t i = 0;
    int ret = 0;

    if (obj->n < 2)
        return 0;
    keys = malloc(obj->n * sizeof(*keys));
    if (!keys)
        return fail_at(ps, at, "out of memory");
    for (const struct json_value *m = obj->child; m; m = m->next)
        keys[i++] = m;
    qsort(keys, obj->n, sizeof(*keys), cmp_keys);
    for (i = 1; i < obj->n; i++) {
        if (cmp_keys(&keys[i - 1], &keys[i]) == 0) {
            ret = fail_at(ps, at, "duplicate key \"%.40s\" in an object", keys[i]->key);
            break;
        }
    }
    free(keys);
    return ret;
}

static int parse_value(struct parser *ps, struct json_value **out);

/* An array or object at ps->p; members are appended in order through a tail pointer. */
static int parse_container(struct parser *ps, struct json_value *v)
{
    const unsigned char *open = ps->p;
    int is_obj = *open == '{';
    char close = is_obj ? '}' : ']';
    struct json_value **tail = &v->child;

    if (++ps->depth > ps->max_depth)
        return fail_at(ps, open, "nesting deeper than %u", ps->max_depth);
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        struct json_value *item;

        skip_ws(ps);
        if (is_obj) {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail_at(ps, ps->p, "object key (a string) expected");
            if (parse_string(ps, &key, &key_len))
                return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail_at(ps, ps->p, "':' expected after an object key");
            ps->p++;
            skip_ws(ps);
        }
        if (parse_value(ps, &item))
            return -1;
        item->key = key;
        item->key_len = key_len;
        *tail = item;
        tail = &item->next;
        v->n++;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail_at(ps, ps->p, "unexpected end: '%c' or ',' expected", close);
        if (*ps->p == close)
            break;
        if (*ps->p != ',')
            return fail_at(ps, ps->p, "'%c' or ',' expected", close);
        ps->p++;
    }
    ps->p++;
    ps->depth--;
    return is_obj ? check_duplicates(ps, v, open) : 0;
}

static int parse_literal(struct parser *ps, const char *word, struct json_value **out,
                         enum json_type t)
{
    size_t n = strlen(word);

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail_at(ps, ps->p, "invalid literal");
    if (!(*out = new_value(ps, t)))
        return -1;
    ps->p += n;
    return 0;
}

static int parse_value(struct parser *ps, struct json_value **out)
{
    struct json_value *v;

    if (ps->p >= ps->end)
        return fail_at(ps, ps->p, "unexpected end: a value expected");
    switch (*ps->p) {
    case 'n': return parse_literal(ps, "null", out, JSON_NULL);
    case 't': return parse_literal(ps, "true", out, JSON_TRUE);
    case 'f': return parse_literal(ps, "false", out, JSON_FALSE);
    case '"':
        if (!(v = new_value(ps, JSON_STRING)) || parse_string(ps, &v->str, &v->len))
            return -1;
        break;
    case '[':
    case '{':
        if (!(v = new_value(ps, *ps->p == '[' ? JSON_ARRAY : JSON_OBJECT)) ||
            parse_container(ps, v))
            return -1;
        break;
    default:
        if (*ps->p != '-' && (*ps->p < '0' || *ps->p > '9')) {
            if (*ps->p > 0x20 && *ps->p < 0x7f)
                return fail_at(ps, ps->p, "unexpected character '%c'", *ps->p);
            return fail_at(ps, ps->p, "unexpected byte 0x%02x", *ps->p);
        }
        if (!(v = new_value(ps, JSON_NUMBER)) || parse_number(ps, v))
            return -1;
        break;
    }
    *out = v;
    return 0;
}

static void arena_free(struct json_arena *a)
{
    while (a) {
        struct json_arena *prev = a->prev;

        free(a);
        a = prev;
    }
}

int json_parse(const char *text, size_t len, unsigned max_depth, struct json_doc *doc,
               struct json_error *err)
{
    struct parser ps = {.p = (const unsigned char *)text,
                        .start = (const unsigned char *)text,
                        .end = (const unsigned char *)text + len,
                        .max_depth = max_depth ? max_depth : JSON_DEFAULT_DEPTH,
                        .err = err};

    doc->root = NULL;
    doc->arena = NULL;
    err->offset = 0;
    err->msg[0] = '\0';
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        fail_at(&ps, ps.p, "byte order mark before the value");
        goto fail;
    }
    skip_ws(&ps);
    if (ps.p == ps.end) {
        fail_at(&ps, ps.p, "empty input");
        goto fail;
    }
    if (parse_value(&ps, &doc->root))
        goto fail;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        fail_at(&ps, ps.p, "garbage after the value");
        goto fail;
    }
    doc->arena = ps.arena;
    return 0;
fail:
    arena_free(ps.arena);
    doc->root = NULL;
    return -1;
}

int json_parse_file(const char *path, struct json_doc *doc, struct json_error *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int ret = -1;

    doc->root = NULL;
    doc->arena = NULL;
    err->offset = JSON_IO_ERROR;
    if (!f) {
        snprintf(err->msg, sizeof(err->msg), "cannot open: %s", strerror(errno));
        return -1;
    }
    /* Grown by doubling: reports come from pipes as well as from files. */
    for (;;) {
        size_t got;

        if (cap - len < 65536) {
            char *nb = cap >= ((size_t)1 << 30) ? NULL : realloc(buf, cap ? cap * 2 : 65536);

            if (!nb) {
                snprintf(err->msg, sizeof(err->msg), "too large (over 1 GiB) or out of memory");
                goto fail;
            }
            buf = nb;
            cap = cap ? cap * 2 : 65536;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err->msg, sizeof(err->msg), "read error: %s", strerror(errno));
        goto fail;
    }
    ret = json_parse(buf, len, 0, doc, err);
fail:
    free(buf);
    fclose(f);
    return ret;
}

void json_free(struct json_doc *doc)
{
    arena_free(doc->arena);
    doc->arena = NULL;
    doc->root = NULL;
}

const struct json_value *json_get(const struct json_value *v, const char *key)
{
    size_t n = strlen(key);

    if (!v || v->type != JSON_OBJECT)
        return NULL;
    for (const struct json_value *m = v->child; m; m = m->next)
        if (m->key_len == n && memcmp(m->key, key, n) == 0)
            return m;
    return NULL;
}

const char *json_string(const struct json_value *v)
{
    return v && v->type == JSON_STRING ? v->str : NULL;
}

int json_uint(const struct json_value *v, uint64_t *out)
{
    if (!v || v->type != JSON_NUMBER || !v->is_uint)
        return -1;
    *out = v->u64;
    return 0;
}

int json_double(const struct json_value *v, double *out)
{
    if (!v || v->type != JSON_NUMBER)
        return -1;
    *out = v->num;
    return 0;
}

static void write_string(FILE *f, const char *s, size_t len)
{
    putc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        /* The reader validated the UTF-8, so only quotes and controls need escaping. */
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            putc(c, f);
    }
    putc('"', f);
}

void json_write(FILE *f, const struct json_value *v)
{
    switch (v->type) {
    case JSON_NULL: fputs("null", f); return;
    case JSON_FALSE: fputs("false", f); return;
    case JSON_TRUE: fputs("true", f); return;
    case JSON_NUMBER:
        if (v->is_uint)
            fprintf(f, "%llu", (unsigned long long)v->u64);
        else
            fprintf(f, "%.17g", v->num);
        return;
    case JSON_STRING: write_string(f, v->str, v->len); return;
    case JSON_ARRAY:
    case JSON_OBJECT:
        putc(v->type == JSON_ARRAY ? '[' : '{', f);
        for (const struct json_value *m = v->child; m; m = m->next) {
            if (m != v->child)
                putc(',', f);
            if (v->type == JSON_OBJECT) {
                write_string(f, m->key, m->key_len);
                putc(':', f);
            }
            json_write(f, m);
        }
        putc(v->type == JSON_ARRAY ? ']' : '}', f);
        return;
    }
}

int json_equal(const struct json_value *a, const struct json_value *b)
{
    const struct json_value *x, *y;

    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case JSON_NULL:
    case JSON_FALSE:
    case JSON_TRUE: return 1;
    case JSON_NUMBER: return a->is_uint == b->is_uint && a->u64 == b->u64 && a->num == b->num;
    case JSON_STRING: return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case JSON_ARRAY:
    case JSON_OBJECT:
        if (a->n != b->n)
            return 0;
        for (x = a->child, y = b->child; x && y; x = x->next, y = y->next) {
            if (a->type == JSON_OBJECT &&
                (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0))
                return 0;
            if (!json_equal(x, y))
                return 0;
        }
        return 1;
    }
    return 0;
}
