/* merge.c - `ringfetch merge`: fetch --shard outputs joined in input order, and proven complete. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "outfile.h"
#include "reports.h"

/* Gaps beyond this many are counted, not each described (--allow-missing on a huge loss). */
#define MAX_GAP_MESSAGES 20
/* Missing input lines listed one by one per gap, with --input. */
#define MAX_LINES_LISTED 10

enum format { FMT_NONE, FMT_JSONL, FMT_CSV };

/* A row as read: its bytes with the newline, as they go to the output, and its numbers. */
struct row {
    char *buf;
    size_t len, cap;
    uint64_t at; /* the file line the row starts on */
    uint64_t line, index;
};

/*
 * One shard file. Two rows are in memory: the one to merge next, and the one after it,
 * read early so that rows out of order are reported as that rather than as a gap.
 */
struct shard {
    const char *path;
    FILE *f;
    struct row cur, ahead;
    int has_ahead;
    char *piece; /* getline()'s buffer: a CSV row may span lines */
    size_t piece_cap;
    uint64_t lines;     /* lines read from the file so far */
    uint64_t last_line; /* of the last row read, for the order check */
    int any;            /* a row has been read */
    uint64_t residue;   /* (line - 1) mod nshards of its first row, naming the shard */
    int has_residue;
};

/* The input file read alongside, to name the lines of missing rows. */
struct input {
    const char *path;
    FILE *f;
    char *buf;
    size_t cap;
    uint64_t line;     /* lines read */
    uint64_t requests; /* request lines among them */
};

struct merge {
    struct shard *sh;
    size_t n;
    struct shard **heap; /* shards with a row, the smallest `line` first */
    size_t n_heap;
    enum format fmt;
    char *header; /* the CSV header line, identical in every shard */
    size_t header_len;
    size_t line_col, index_col, n_cols;
    int allow_missing;
    struct input in;
    uint64_t missing, gaps, rows, torn;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("ringfetch merge: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Append a piece to a row's buffer. */
static int row_append(struct row *r, const char *p, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *b = realloc(r->buf, cap);

        if (!b)
            return -1;
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return 0;
}

/* 1 when nothing follows in the file: a bad last line is a torn write, not a bad row. */
static int at_end(FILE *f)
{
    int c = getc(f);

    if (c == EOF)
        return 1;
    ungetc(c, f);
    return 0;
}

/*
 * The shard's next record into r: one line, or for CSV as many as a quoted field spans.
 * 1 read, 0 end of file, -1 a read error, -2 a last record without its final newline.
 */
static int read_record(struct merge *m, struct shard *s, struct row *r)
{
    int quoted = 0;

    r->len = 0;
    r->at = s->lines + 1;
    for (;;) {
        ssize_t n = getline(&s->piece, &s->piece_cap, s->f);

        if (n < 0) {
            if (ferror(s->f))
                return -1;
            return r->len ? -2 : 0; /* EOF inside a quoted field: cut short */
        }
        s->lines++;
        if (row_append(r, s->piece, (size_t)n))
            return -1;
        if (s->piece[n - 1] != '\n')
            return -2;
        /* "" inside a quoted field toggles twice: counting quotes tracks the state */
        for (ssize_t i = 0; m->fmt == FMT_CSV && i < n; i++)
            quoted ^= s->piece[i] == '"';
        if (!quoted)
            return 1;
    }
}

static int parse_uint(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (!n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

/*
 * Walk the CSV record's fields (RFC 4180). With want != NULL the fields at line_col and
 * index_col are parsed as integers; always returns the field count, or -1 when a quote is
 * malformed. `why` says what was wrong.
 */
static long csv_walk(const struct merge *m, const char *r, size_t len, uint64_t *line,
                     uint64_t *index, const char **why)
{
    size_t i = 0, col = 0;

    while (len && (r[len - 1] == '\n' || r[len - 1] == '\r'))
        len--;
    for (;;) {
        const char *start = r + i;
        size_t flen;
        int q = i < len && r[i] == '"';

        if (q) {
            /* a quoted field ends at a quote not doubled, followed by ',' or the end */
            for (i++; i < len; i++) {
                if (r[i] == '"' && (i + 1 >= len || r[i + 1] != '"'))
                    break;
                if (r[i] == '"')
                    i++;
            }
            if (i >= len) {
                *why = "unterminated quoted field";
                return -1;
            }
            start++;
            flen = (size_t)(r + i - start);
            i++;
            if (i < len && r[i] != ',') {
                *why = "text after a quoted field";
                return -1;
            }
        } else {
            while (i < len && r[i] != ',')
                i++;
            flen = (size_t)(r + i - start);
        }
        if (line && col == m->line_col && parse_uint(start, flen, line)) {
            *why = "the line column is not a number";
            return -1;
        }
        if (index && col == m->index_col && parse_uint(start, flen, index)) {
            *why = "the index column is not a number";
            return -1;
        }
        col++;
        if (i >= len)
            return (long)col;
        i++; /* past the comma */
    }
}

/* The column of a header field, or SIZE_MAX. */
static size_t csv_column(const char *h, size_t len, const char *name)
{
    size_t col = 0, i = 0, n = strlen(name);

    while (len && (h[len - 1] == '\n' || h[len - 1] == '\r'))
        len--;
    for (;;) {
        size_t start = i;

        while (i < len && h[i] != ',')
            i++;
        if (i - start == n && memcmp(h + start, name, n) == 0)
            return col;
        if (i >= len)
            return SIZE_MAX;
        i++;
        col++;
    }
}

/* Find `line` and `index` in a JSONL row; the whole row must be one valid JSON object. */
static int jsonl_fields(struct row *r, const char **why, char *msg, size_t msg_len)
{
    struct json_doc doc;
    struct json_error err;
    int ret = -1;

    if (json_parse(r->buf, r->len, 0, &doc, &err)) {
        snprintf(msg, msg_len, "not JSON (byte %zu: %s)", err.offset, err.msg);
        *why = msg;
        return -1;
    }
    if (doc.root->type != JSON_OBJECT)
        *why = "not a JSON object";
    else if (json_uint(json_get(doc.root, "line"), &r->line))
        *why = "no integer \"line\" field (a row of fetch --shard carries one)";
    else if (json_uint(json_get(doc.root, "index"), &r->index))
        *why = "no integer \"index\" field";
    else
        ret = 0;
    json_free(&doc);
    return ret;
}

/*
 * Read the shard's next row into s->ahead, parsed and checked against the row before it.
 * 0 with has_ahead telling whether there was one (a torn last row that --allow-missing
 * drops is none), -1 an error (said).
 */
static int fill_ahead(struct merge *m, struct shard *s)
{
    struct row *a = &s->ahead;
    const char *why = NULL;
    char msg[160];
    int r = read_record(m, s, a);

    s->has_ahead = 0;
    if (r == 0)
        return 0;
    if (r == -1) {
        say("%s: read error: %s", s->path, strerror(errno ? errno : EIO));
        return -1;
    }
    if (r == -2) {
        why = "no final newline";
    } else if (m->fmt == FMT_CSV) {
        long cols = csv_walk(m, a->buf, a->len, &a->line, &a->index, &why);

        if (cols >= 0 && (size_t)cols != m->n_cols) {
            snprintf(msg, sizeof(msg), "%ld fields where the header has %zu", cols, m->n_cols);
            why = msg;
        }
    } else {
        jsonl_fields(a, &why, msg, sizeof(msg));
    }
    if (why && (r == -2 || at_end(s->f))) {
        /* what a crash leaves behind: the shard's last row, half written */
        if (!m->allow_missing) {
            say("%s:%llu: torn last row (%s): the shard's run ended mid-write; rerun the "
                "shard, or --allow-missing drops the row",
                s->path, (unsigned long long)a->at, why);
            return -1;
        }
        say("warning: %s:%llu: torn last row dropped (%s)", s->path,
            (unsigned long long)a->at, why);
        m->torn++;
        return 0;
    }
    if (why) {
        say("%s:%llu: bad row: %s", s->path, (unsigned long long)a->at, why);
        return -1;
    }
    if (s->any && a->line <= s->last_line) {
        say("%s:%llu: input line %llu %s input line %llu: a shard's rows must be in input "
            "order", s->path, (unsigned long long)a->at, (unsigned long long)a->line,
            a->line == s->last_line ? "repeats" : "comes after",
            (unsigned long long)s->last_line);
        return -1;
    }
    if (!s->has_residue) {
        s->residue = (a->line - 1) % m->n;
        s->has_residue = 1;
    }
    s->any = 1;
    s->last_line = a->line;
    s->has_ahead = 1;
    return 0;
}

/* Make the row read ahead the current one and read the next: 1, 0 at the end, -1 error. */
static int advance(struct merge *m, struct shard *s)
{
    struct row t;

    if (!s->has_ahead)
        return 0;
    t = s->cur;
    s->cur = s->ahead;
    s->ahead = t;
    return fill_ahead(m, s) ? -1 : 1;
}

/* ---- the heap: shards ordered by their current row's input line ---- */

static void heap_down(struct merge *m, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, small = i;
        struct shard *t;

        if (l < m->n_heap && m->heap[l]->cur.line < m->heap[small]->cur.line)
            small = l;
        if (l + 1 < m->n_heap && m->heap[l + 1]->cur.line < m->heap[small]->cur.line)
            small = l + 1;
        if (small == i)
            return;
        t = m->heap[i];
        m->heap[i] = m->heap[small];
        m->heap[small] = t;
        i = small;
    }
}

/* ---- the input, read alongside ---- */

/* A request line: not blank and not a # comment once a BOM and white space are stripped. */
static int is_request(const char *p, size_t n)
{
    if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3, n -= 3;
    while (n && isspace((unsigned char)*p))
        p++, n--;
    return n && *p != '#';
}

/* Read on to the request line with index `idx`: 1 with in->line its line, 0 past the end. */
static int input_seek(struct input *in, uint64_t idx)
{
    while (in->requests <= idx) {
        ssize_t n = getline(&in->buf, &in->cap, in->f);

        if (n < 0)
            return 0;
        in->line++;
        in->requests += is_request(in->buf, (size_t)n);
    }
    return in->requests == idx + 1;
}

/* "shard K/N (FILE)": the file whose rows have that residue, when one has. */
static void name_shard(const struct merge *m, uint64_t line, char *buf, size_t len)
{
    uint64_t k = (line - 1) % m->n;
    const char *file = "no file given holds its rows";

    for (size_t i = 0; i < m->n; i++)
        if (m->sh[i].has_residue && m->sh[i].residue == k)
            file = m->sh[i].path;
    snprintf(buf, len, "shard %llu/%zu by (L-1) mod %zu: %s", (unsigned long long)k, m->n,
             m->n, file);
}

/* "7" or "7..9" */
static const char *range(uint64_t a, uint64_t b, char buf[48])
{
    if (a == b)
        snprintf(buf, 48, "%llu", (unsigned long long)a);
    else
        snprintf(buf, 48, "%llu..%llu", (unsigned long long)a, (unsigned long long)b);
    return buf;
}

/*
 * Rows with index from..to-1 are missing. `after` is the shard of the row before them (or
 * NULL at the start), `next` the one after them (NULL at the end). Returns 0 when
 * --allow-missing lets the merge go on, else -1.
 */
static int gap(struct merge *m, uint64_t from, uint64_t to, uint64_t prev_line,
               const struct shard *next)
{
    int tell = m->gaps < MAX_GAP_MESSAGES || !m->allow_missing;
    const char *lead = m->allow_missing ? "warning: " : "";
    char where[512], r1[48], r2[48];

    m->gaps++;
    m->missing += to - from;
    if (tell && next)
        say("%s%s:%llu: %llu row(s) missing before this one (index %s): they must be on input "
            "lines %s", lead, next->path, (unsigned long long)next->cur.at,
            (unsigned long long)(to - from), range(from, to - 1, r1),
            range(prev_line + 1, next->cur.line - 1, r2));
    else if (tell)
        say("%s%llu row(s) missing at the end (index %s): %s has more request lines than the "
            "shards have rows", lead, (unsigned long long)(to - from), range(from, to - 1, r1),
            m->in.path);
    /* as many lines as missing rows: those lines are the missing ones, input or not */
    if (tell && !m->in.f && next && next->cur.line - 1 - prev_line == to - from) {
        for (uint64_t l = prev_line + 1; l < next->cur.line && l - prev_line <= MAX_LINES_LISTED;
             l++) {
            name_shard(m, l, where, sizeof(where));
            say("%s  missing: input line %llu (%s)", lead, (unsigned long long)l, where);
        }
    }
    /* with the input, the exact lines and the shard each belongs to */
    for (uint64_t i = from; tell && m->in.f && i < to; i++) {
        if (i - from == MAX_LINES_LISTED) {
            say("%s  ... and %llu more", lead, (unsigned long long)(to - i));
            break;
        }
        if (!input_seek(&m->in, i))
            break;
        name_shard(m, m->in.line, where, sizeof(where));
        say("%s  missing: index %llu, %s line %llu (%s)", lead, (unsigned long long)i,
            m->in.path, (unsigned long long)m->in.line, where);
    }
    return m->allow_missing ? 0 : -1;
}

/* With --input, each row's line must be the input's line for its index. */
static int check_against_input(struct merge *m, const struct shard *s)
{
    if (!m->in.f)
        return 0;
    if (!input_seek(&m->in, s->cur.index)) {
        say("%s:%llu: index %llu, but %s has only %llu request lines", s->path,
            (unsigned long long)s->cur.at, (unsigned long long)s->cur.index, m->in.path,
            (unsigned long long)m->in.requests);
        return -1;
    }
    if (m->in.line != s->cur.line) {
        say("%s:%llu: index %llu is input line %llu here, but line %llu in %s: not the "
            "input these shards were made from?", s->path, (unsigned long long)s->cur.at,
            (unsigned long long)s->cur.index, (unsigned long long)s->cur.line,
            (unsigned long long)m->in.line, m->in.path);
        return -1;
    }
    return 0;
}

/* The k-way merge: every row once, in input order, its index the next one expected. */
static int merge_rows(struct merge *m, FILE *out)
{
    uint64_t expect = 0, prev_line = 0;
    const char *prev_path = NULL;
    uint64_t prev_at = 0;

    while (m->n_heap) {
        struct shard *s = m->heap[0];
        int r;

        if (prev_path && s->cur.line == prev_line) {
            say("%s:%llu: input line %llu is also in %s:%llu: duplicate row", s->path,
                (unsigned long long)s->cur.at, (unsigned long long)s->cur.line, prev_path,
                (unsigned long long)prev_at);
            return -1;
        }
        if (s->cur.index < expect) {
            say("%s:%llu: index %llu (input line %llu) but index %llu was expected: a repeated "
                "or misnumbered row", s->path, (unsigned long long)s->cur.at,
                (unsigned long long)s->cur.index, (unsigned long long)s->cur.line,
                (unsigned long long)expect);
            return -1;
        }
        if (s->cur.line - prev_line < s->cur.index - expect + 1) {
            say("%s:%llu: index %llu on input line %llu: fewer lines than requests since "
                "line %llu", s->path, (unsigned long long)s->cur.at,
                (unsigned long long)s->cur.index, (unsigned long long)s->cur.line,
                (unsigned long long)prev_line);
            return -1;
        }
        if (s->cur.index > expect && gap(m, expect, s->cur.index, prev_line, s))
            return -1;
        if (check_against_input(m, s))
            return -1;
        /* the row goes out byte for byte */
        if (fwrite(s->cur.buf, 1, s->cur.len, out) != s->cur.len)
            return -1;
        m->rows++;
        expect = s->cur.index + 1;
        prev_line = s->cur.line;
        prev_path = s->path;
        prev_at = s->cur.at;
        r = advance(m, s);
        if (r < 0)
            return -1;
        if (r == 0)
            m->heap[0] = m->heap[--m->n_heap];
        heap_down(m, 0);
    }
    /* only the input knows how many rows there should have been in all */
    if (m->in.f) {
        uint64_t last;

        while (input_seek(&m->in, m->in.requests))
            ;
        last = m->in.requests;
        if (last > expect && gap(m, expect, last, prev_line, NULL))
            return -1;
    }
    return 0;
}

/* Open every shard, agree on the format and CSV header, read each first row. */
static int open_shards(struct merge *m)
{
    for (size_t i = 0; i < m->n; i++) {
        struct shard *s = &m->sh[i];
        enum format fmt;
        int c, r;

        if (!(s->f = fopen(s->path, "rb"))) {
            say("%s: cannot open: %s", s->path, strerror(errno));
            return -1;
        }
        if ((c = getc(s->f)) == EOF)
            continue; /* an empty shard has no rows (and, in CSV, no header yet) */
        ungetc(c, s->f);
        fmt = c == '{' ? FMT_JSONL : FMT_CSV;
        if (m->fmt != FMT_NONE && fmt != m->fmt) {
            say("%s: %s rows, but the shards before it are %s: all shards must have one "
                "format", s->path, fmt == FMT_CSV ? "CSV" : "JSONL",
                m->fmt == FMT_CSV ? "CSV" : "JSONL");
            return -1;
        }
        m->fmt = fmt;
        if (fmt == FMT_CSV) {
            struct row *h = &s->cur; /* the header passes through cur, then rows use it */
            const char *why = "";

            r = read_record(m, s, h);
            if (r != 1) {
                say("%s:1: %s CSV header", s->path, r == -2 ? "torn" : "unreadable");
                return -1;
            }
            if (!m->header) {
                long cols = csv_walk(m, h->buf, h->len, NULL, NULL, &why);

                m->line_col = csv_column(h->buf, h->len, "line");
                m->index_col = csv_column(h->buf, h->len, "index");
                if (cols < 0 || m->line_col == SIZE_MAX || m->index_col == SIZE_MAX) {
                    say("%s:1: the CSV header has no \"line\" and \"index\" columns (fetch "
                        "--shard writes them)", s->path);
                    return -1;
                }
                m->n_cols = (size_t)cols;
                m->header = strdup(h->buf);
                m->header_len = h->len;
                if (!m->header)
                    return -1;
            } else if (h->len != m->header_len || memcmp(h->buf, m->header, h->len) != 0) {
                say("%s:1: CSV header differs from %s's", s->path, m->sh[0].path);
                return -1;
            }
        }
        if (fill_ahead(m, s) || (r = advance(m, s)) < 0)
            return -1;
        if (r > 0)
            m->heap[m->n_heap++] = s;
    }
    for (size_t i = m->n_heap; i-- > 0;)
        heap_down(m, i);
    return 0;
}

static int usage_error(const char *msg)
{
    say("%s", msg);
    fputs("usage: ringfetch merge -o OUT [--allow-missing] [--input FILE] SHARD_FILE...\n",
          stderr);
    return 2;
}

int cmd_merge(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"allow-missing", no_argument, 0, 'A'},
                                         {"input", required_argument, 0, 'i'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct merge m = {0};
    struct outfile of = {0};
    const char *out = NULL;
    int opt, ret = 1;

    while ((opt = getopt_long(argc, argv, "o:i:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'o': out = optarg; break;
        case 'A': m.allow_missing = 1; break;
        case 'i': m.in.path = optarg; break;
        case 'h':
            fputs("usage: ringfetch merge -o OUT [--allow-missing] [--input FILE] SHARD_FILE...\n"
                  "Joins the outputs of fetch --shard K/N (JSONL or CSV) into input order and\n"
                  "checks that every request has exactly one row.\n",
                  stdout);
            return 0;
        default: return usage_error("bad option");
        }
    }
    if (!out)
        return usage_error("-o OUT is required");
    if (optind >= argc)
        return usage_error("no shard file given");
    m.n = (size_t)(argc - optind);
    m.sh = calloc(m.n, sizeof(*m.sh));
    m.heap = calloc(m.n, sizeof(*m.heap));
    if (!m.sh || !m.heap)
        goto fail;
    for (size_t i = 0; i < m.n; i++)
        m.sh[i].path = argv[optind + (int)i];
    if (m.in.path && !(m.in.f = fopen(m.in.path, "rb"))) {
        say("%s: cannot open: %s", m.in.path, strerror(errno));
        goto fail;
    }
    if (open_shards(&m))
        goto fail;
    if (outfile_open(&of, out)) {
        say("cannot write %s: %s", out, strerror(errno));
        goto fail;
    }
    if ((m.header && fwrite(m.header, 1, m.header_len, of.f) != m.header_len) ||
        merge_rows(&m, of.f)) {
        if (ferror(of.f))
            say("writing %s failed: %s", out, strerror(errno));
        outfile_abort(&of);
        goto fail;
    }
    if (outfile_commit(&of)) {
        say("writing %s failed: %s", out, strerror(errno));
        goto fail;
    }
    if (m.missing || m.torn)
        say("warning: %llu row(s) missing in %llu gap(s), %llu torn row(s) dropped; "
            "%s has %llu rows", (unsigned long long)m.missing, (unsigned long long)m.gaps,
            (unsigned long long)m.torn, out, (unsigned long long)m.rows);
    ret = 0;
fail:
    for (size_t i = 0; m.sh && i < m.n; i++) {
        if (m.sh[i].f)
            fclose(m.sh[i].f);
        free(m.sh[i].cur.buf);
        free(m.sh[i].ahead.buf);
        free(m.sh[i].piece);
    }
    if (m.in.f)
        fclose(m.in.f);
    free(m.in.buf);
    free(m.sh);
    free(m.heap);
    free(m.header);
    return ret;
}
