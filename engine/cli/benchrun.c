/* benchrun.c - reads a bench report back: the checks, the rebuilt histogram, the intervals. */
#include "benchrun.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int why_set(char *why, size_t why_len, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int why_set(char *why, size_t why_len, const char *path, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(why, why_len, "%s: ", path);

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < why_len)
        vsnprintf(why + n, why_len - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

uint64_t bench_u64(const struct json_value *obj, const char *key, uint64_t dflt)
{
    uint64_t v;

    return json_uint(json_get(obj, key), &v) == 0 ? v : dflt;
}

double bench_num(const struct json_value *obj, const char *key, double dflt)
{
    double v;

    return json_double(json_get(obj, key), &v) == 0 ? v : dflt;
}

/*
 * The buckets go in with rf_hist_add_bucket(), then the exact moments: without them the
 * histogram has no maximum, and every percentile is capped at the maximum.
 */
static int load_histogram(struct bench_run *r, char *why, size_t why_len)
{
    const struct json_value *h = json_get(r->root, "histogram");
    const struct json_value *b = json_get(h, "buckets");
    const char *layout = json_string(json_get(h, "layout"));
    rf_hist_moments m;
    uint64_t count, total = 0;
    size_t i = 0;

    if (!h)
        return why_set(why, why_len, r->path, "no \"histogram\" (bench --json writes one)");
    if (!layout || strcmp(layout, BENCH_HIST_LAYOUT) != 0)
        return why_set(why, why_len, r->path, "histogram layout \"%s\", expected \"%s\"",
                       layout ? layout : "(none)", BENCH_HIST_LAYOUT);
    if (!b || b->type != JSON_ARRAY)
        return why_set(why, why_len, r->path, "histogram has no \"buckets\" array");
    if (json_uint(json_get(h, "count"), &count) || json_uint(json_get(h, "min"), &m.min) ||
        json_uint(json_get(h, "max"), &m.max) || json_double(json_get(h, "sum"), &m.sum) ||
        json_double(json_get(h, "sumsq"), &m.sumsq))
        return why_set(why, why_len, r->path,
                       "histogram needs count, min, max (integers), sum and sumsq");
    r->hist = rf_hist_create();
    if (!r->hist)
        return why_set(why, why_len, r->path, "out of memory");
    for (const struct json_value *e = b->child; e; e = e->next, i++) {
        uint64_t idx, n;

        if (e->type != JSON_ARRAY || e->n != 2 || json_uint(e->child, &idx) ||
            json_uint(e->child->next, &n))
            return why_set(why, why_len, r->path,
                           "histogram bucket %zu is not [index, count]", i);
        if (idx > UINT32_MAX || rf_hist_add_bucket(r->hist, (uint32_t)idx, n) != RF_OK)
            return why_set(why, why_len, r->path,
                           "histogram bucket index %llu is outside the layout",
                           (unsigned long long)idx);
        if (__builtin_add_overflow(total, n, &total))
            return why_set(why, why_len, r->path, "histogram counts overflow");
    }
    if (total != count)
        return why_set(why, why_len, r->path, "histogram count %llu but its buckets hold %llu",
                       (unsigned long long)count, (unsigned long long)total);
    if (count && m.min > m.max)
        return why_set(why, why_len, r->path, "histogram min above its max");
    if (!count)
        m.min = UINT64_MAX, m.max = 0; /* the empty histogram's moments */
    rf_hist_add_moments(r->hist, &m);
    return 0;
}

static int load_intervals(struct bench_run *r, char *why, size_t why_len)
{
    const struct json_value *a = json_get(r->root, "intervals");
    size_t i = 0;

    if (!a)
        return 0; /* a run shorter than one interval has none: the charts say so */
    if (a->type != JSON_ARRAY)
        return why_set(why, why_len, r->path, "\"intervals\" is not an array");
    r->iv = calloc(a->n ? a->n : 1, sizeof(*r->iv));
    if (!r->iv)
        return why_set(why, why_len, r->path, "out of memory");
    for (const struct json_value *e = a->child; e; e = e->next, i++) {
        struct bench_interval *iv = &r->iv[i];

        if (e->type != JSON_OBJECT || json_double(json_get(e, "t_s"), &iv->t_s))
            return why_set(why, why_len, r->path, "interval %zu has no \"t_s\"", i);
        iv->length_s = bench_num(e, "length_s", r->interval_s);
        iv->requests = bench_u64(e, "requests", 0);
        iv->errors = bench_u64(e, "errors", 0);
        iv->bytes = bench_u64(e, "bytes", 0);
        iv->rps = bench_num(e, "rps", iv->length_s > 0 ? iv->requests / iv->length_s : 0);
        iv->max_us = bench_u64(e, "max_us", 0);
        /* A merged report cannot know per-interval percentiles; it names its maxima so. */
        if (json_get(e, "p99_us_max")) {
            r->iv_p_is_max = 1;
            iv->p50_us = bench_u64(e, "p50_us_max", 0);
            iv->p99_us = bench_u64(e, "p99_us_max", 0);
        } else {
            iv->p50_us = bench_u64(e, "p50_us", 0);
            iv->p99_us = bench_u64(e, "p99_us", 0);
        }
    }
    r->n_iv = i;
    return 0;
}

/* The checks and the fields every command needs, once the document is parsed. */
static int bench_run_read(struct bench_run *r, char *why, size_t why_len)
{
    const struct json_value *errs;
    const char *format;

    r->root = r->doc.root;
    format = json_string(json_get(r->root, "format"));
    if (!format || strcmp(format, BENCH_FORMAT) != 0)
        return why_set(why, why_len, r->path, "format \"%s\", expected \"%s\" (bench --json)",
                       format ? format : "(none)", BENCH_FORMAT);
    if (json_uint(json_get(r->root, "requests"), &r->requests) ||
        json_double(json_get(r->root, "duration_s"), &r->duration_s))
        return why_set(why, why_len, r->path, "\"requests\" or \"duration_s\" missing");
    r->has_start = json_double(json_get(r->root, "start_epoch_s"), &r->start_epoch_s) == 0;
    r->interval_s = bench_num(r->root, "interval_s", 0);
    r->rps = bench_num(r->root, "rps", r->duration_s > 0 ? r->requests / r->duration_s : 0);
    r->bytes = bench_u64(r->root, "bytes", 0);
    r->generators = bench_u64(r->root, "generators", 1);
    errs = json_get(r->root, "errors");
    for (const struct json_value *e = errs ? errs->child : NULL; e; e = e->next)
        r->errors += e->is_uint ? e->u64 : 0;
    if (load_histogram(r, why, why_len) || load_intervals(r, why, why_len))
        return -1;
    return 0;
}

static int json_failed(struct bench_run *r, const struct json_error *err, char *why,
                       size_t why_len)
{
    if (err->offset == JSON_IO_ERROR)
        return why_set(why, why_len, r->path, "%s", err->msg);
    return why_set(why, why_len, r->path, "not JSON: byte %zu: %s", err->offset, err->msg);
}

int bench_run_parse(struct bench_run *r, const char *path, const char *text, size_t len,
                    char *why, size_t why_len)
{
    struct json_error err;

    memset(r, 0, sizeof(*r));
    r->path = path;
    if (json_parse(text, len, 0, &r->doc, &err))
        return json_failed(r, &err, why, why_len);
    return bench_run_read(r, why, why_len);
}

int bench_run_load(struct bench_run *r, const char *path, char *why, size_t why_len)
{
    struct json_error err;

    memset(r, 0, sizeof(*r));
    r->path = path;
    if (json_parse_file(path, &r->doc, &err))
        return json_failed(r, &err, why, why_len);
    return bench_run_read(r, why, why_len);
}

void bench_run_free(struct bench_run *r)
{
    json_free(&r->doc);
    if (r->hist)
        rf_hist_destroy(r->hist);
    free(r->iv);
    memset(r, 0, sizeof(*r));
}
