/* targets.c - parse the bench --targets file into requests, each owning its strings. */
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>

#include "cli.h"
#include "targets.h"

#define TARGET_LINE_MAX 65536 /* a longer line is an error (the file is the user's own) */
#define TARGET_HEADERS_MAX 64

/* A target's method, url and headers point into its line copy; the body is its own. */
struct target_strings {
    char *line;
    const char **headers;
    char *body;
};

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* Fill t from o->line (which it cuts up). Returns 0, or -1 with the reason in err. */
static int parse_line(struct target_strings *o, const char *const *extra, size_t n_extra,
                      rf_bench_target *t, char *err, size_t errlen)
{
    char *bar = strchr(o->line, '|'), *save, *method, *url, *bodyf;
    size_t nh = 0;

    if (bar)
        *bar++ = '\0';
    method = strtok_r(o->line, " \t", &save);
    url = strtok_r(NULL, " \t", &save);
    bodyf = strtok_r(NULL, " \t", &save);
    if (!method || !url || (bodyf && (bodyf[0] != '@' || strtok_r(NULL, " \t", &save)))) {
        snprintf(err, errlen, "expected 'METHOD URL [@BODYFILE] [| Name: value]...'");
        return -1;
    }
    if (!valid_method(method)) {
        snprintf(err, errlen, "bad method '%.40s'", method);
        return -1;
    }
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
            snprintf(err, errlen, "the URL holds a control or non-ASCII byte");
            return -1;
        }
    }
    o->headers = calloc(TARGET_HEADERS_MAX + n_extra + 1, sizeof(*o->headers));
    if (!o->headers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (char *next; bar; bar = next) {
        char *h;

        next = strchr(bar, '|');
        if (next)
            *next++ = '\0';
        h = trim(bar);
        if (!valid_header(h) || nh == TARGET_HEADERS_MAX) {
            snprintf(err, errlen, "bad header '%.80s' (at most %d per line)", h,
                     TARGET_HEADERS_MAX);
            return -1;
        }
        o->headers[nh++] = h;
    }
    for (size_t i = 0; i < n_extra; i++)
        o->headers[nh++] = extra[i];
    if (bodyf && load_data(bodyf, &o->body, &t->body_len)) {
        snprintf(err, errlen, "cannot read the body file %.200s", bodyf + 1);
        return -1;
    }
    t->method = method;
    t->url = url;
    t->headers = o->headers;
    t->n_headers = nh;
    t->body = o->body;
    return 0;
}

static int grow(struct targets *ts)
{
    rf_bench_target *t = realloc(ts->t, (ts->n + 1) * sizeof(*t));
    struct target_strings *o;

    if (t)
        ts->t = t;
    o = t ? realloc(ts->own, (ts->n + 1) * sizeof(*o)) : NULL;
    if (!o)
        return -1;
    ts->own = o;
    memset(&ts->t[ts->n], 0, sizeof(ts->t[ts->n]));
    memset(&ts->own[ts->n], 0, sizeof(ts->own[ts->n]));
    ts->n++;
    return 0;
}

int targets_parse(FILE *f, const char *const *extra, size_t n_extra, struct targets *out,
                  char *err, size_t errlen)
{
    char *buf = NULL, why[256];
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;

    memset(out, 0, sizeof(*out));
    while ((len = getline(&buf, &cap, f)) >= 0) {
        char *line;

        lineno++;
        if (len > TARGET_LINE_MAX) {
            snprintf(err, errlen, "line %d: longer than %d bytes", lineno, TARGET_LINE_MAX);
            goto fail;
        }
        /* A NUL would end the line early without a word: the rest would be lost. */
        if (memchr(buf, '\0', (size_t)len)) {
            snprintf(err, errlen, "line %d: contains a NUL byte", lineno);
            goto fail;
        }
        line = trim(buf);
        if (!*line || *line == '#')
            continue;
        if (grow(out) || !(out->own[out->n - 1].line = strdup(line))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (parse_line(&out->own[out->n - 1], extra, n_extra, &out->t[out->n - 1], why,
                       sizeof(why))) {
            snprintf(err, errlen, "line %d: %s", lineno, why);
            goto fail;
        }
    }
    free(buf);
    if (out->n == 0) {
        snprintf(err, errlen, "no requests in the file");
        return -1;
    }
    return 0;
fail:
    free(buf);
    return -1;
}

void targets_free(struct targets *ts)
{
    for (size_t i = 0; ts->own && i < ts->n; i++) {
        free(ts->own[i].line);
        free(ts->own[i].headers);
        free(ts->own[i].body);
    }
    free(ts->own);
    free(ts->t);
    memset(ts, 0, sizeof(*ts));
}
