/* benchmerge.c - `ringfetch bench-merge`: the reports of several load generators as one report. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "benchrun.h"
#include "outfile.h"
#include "reports.h"

/* An interval further than this many intervals from the common start is a broken report. */
#define MAX_BINS 10000000

/* One interval of the merged report: the generators' intervals that start in it, added up. */
struct bin {
    double length_s, rps;
    uint64_t requests, errors, bytes, p50_max, p99_max, max_us;
    unsigned generators;
};

struct merge {
    struct bench_run *runs;
    size_t n;
    double start, latest, end; /* the earliest and latest start, the latest end (epoch s) */
    double interval_s;
    struct bin *bins;
    size_t n_bins;
};

static const char *const usage_text =
    "usage: ringfetch bench-merge A.json B.json ... [-o MERGED.json] [--html FILE]\n";

static uint64_t sum_u64(const struct merge *m, const char *key)
{
    uint64_t s = 0;

    for (size_t i = 0; i < m->n; i++)
        s += bench_u64(m->runs[i].root, key, 0);
    return s;
}

static double sum_num(const struct merge *m, const char *key)
{
    double s = 0;

    for (size_t i = 0; i < m->n; i++)
        s += bench_num(m->runs[i].root, key, 0);
    return s;
}

/* The inputs must be reports of the same kind of run: said once, naming the file. */
static int check_inputs(struct merge *m)
{
    m->start = m->latest = NAN;
    m->end = -INFINITY;
    for (size_t i = 0; i < m->n; i++) {
        const struct bench_run *r = &m->runs[i];

        if (!r->has_start) {
            fprintf(stderr, "ringfetch bench-merge: %s: no \"start_epoch_s\": the reports "
                            "cannot be aligned in time\n", r->path);
            return -1;
        }
        if (r->n_iv && !(r->interval_s > 0)) {
            fprintf(stderr, "ringfetch bench-merge: %s: intervals without \"interval_s\"\n",
                    r->path);
            return -1;
        }
        if (r->n_iv && m->interval_s > 0 && fabs(r->interval_s - m->interval_s) > 1e-9) {
            fprintf(stderr, "ringfetch bench-merge: %s: interval_s %g differs from %g of the "
                            "reports before it\n", r->path, r->interval_s, m->interval_s);
            return -1;
        }
        if (r->n_iv)
            m->interval_s = r->interval_s;
        /* fmin/fmax take the number when the other one is NAN, the first time here */
        m->start = fmin(m->start, r->start_epoch_s);
        m->latest = fmax(m->latest, r->start_epoch_s);
        m->end = fmax(m->end, r->start_epoch_s + r->duration_s);
    }
    return 0;
}

/*
 * Each generator's intervals placed on the common time line: an interval belongs to the
 * bin its start is nearest to, so start times that differ by less than half an interval
 * still line up, and a last, shorter interval goes into the bin after the full ones.
 */
static int bin_intervals(struct merge *m)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct bench_run *r = &m->runs[i];

        for (size_t j = 0; j < r->n_iv; j++) {
            const struct bench_interval *iv = &r->iv[j];
            double at = (r->start_epoch_s - m->start + iv->t_s - iv->length_s) / m->interval_s;
            long long b = llround(at);
            struct bin *x;

            if (!(at > -1.0 && at < MAX_BINS)) {
                fprintf(stderr, "ringfetch bench-merge: %s: interval %zu (t_s %g) is outside "
                                "the run\n", r->path, j, iv->t_s);
                return -1;
            }
            b = b < 0 ? 0 : b;
            if ((size_t)b >= m->n_bins) {
                size_t nb = (size_t)b + 1 > 2 * m->n_bins ? (size_t)b + 1 : 2 * m->n_bins;
                struct bin *g = realloc(m->bins, nb * sizeof(*g));

                if (!g)
                    return -1;
                memset(g + m->n_bins, 0, (nb - m->n_bins) * sizeof(*g));
                m->bins = g;
                m->n_bins = nb;
            }
            x = &m->bins[b];
            x->length_s = fmax(x->length_s, iv->length_s);
            x->rps += iv->rps;
            x->requests += iv->requests;
            x->errors += iv->errors;
            x->bytes += iv->bytes;
            /* percentiles of different generators do not add: keep the largest, named so */
            x->p50_max = iv->p50_us > x->p50_max ? iv->p50_us : x->p50_max;
            x->p99_max = iv->p99_us > x->p99_max ? iv->p99_us : x->p99_max;
            x->max_us = iv->max_us > x->max_us ? iv->max_us : x->max_us;
            x->generators++;
        }
    }
    return 0;
}

/* An object of counters ("errors", "status"): the union of the keys, each summed. */
static void write_summed(FILE *f, const struct merge *m, const char *name)
{
    int first = 1;

    fprintf(f, ",\"%s\":{", name);
    for (size_t i = 0; i < m->n; i++) {
        const struct json_value *o = json_get(m->runs[i].root, name);

        for (const struct json_value *k = o ? o->child : NULL; k; k = k->next) {
            uint64_t s = 0;
            size_t seen = 0;

            /* written where the key first appears */
            while (seen < i && !json_get(json_get(m->runs[seen].root, name), k->key))
                seen++;
            if (seen < i)
                continue;
            for (size_t j = i; j < m->n; j++)
                s += bench_u64(json_get(m->runs[j].root, name), k->key, 0);
            fprintf(f, "%s", first ? "" : ",");
            json_write(f, &(struct json_value){.type = JSON_STRING, .str = k->key,
                                                .len = k->key_len});
            fprintf(f, ":%llu", (unsigned long long)s);
            first = 0;
        }
    }
    fputc('}', f);
}

/* Where a value is looked up in one report: a top-level key or a "config" key. */
typedef const struct json_value *(*lookup_fn)(const struct bench_run *r, const char *key);

/* A key of the inputs that is the same in all of them, or else NULL. */
static const struct json_value *common(const struct merge *m, lookup_fn get, const char *key)
{
    const struct json_value *v = get(&m->runs[0], key);

    for (size_t i = 1; v && i < m->n; i++) {
        const struct json_value *w = get(&m->runs[i], key);

        if (!w || !json_equal(v, w))
            return NULL;
    }
    return v;
}

static const struct json_value *top_key(const struct bench_run *r, const char *key)
{
    return json_get(r->root, key);
}

static const struct json_value *config_key(const struct bench_run *r, const char *key)
{
    return json_get(json_get(r->root, "config"), key);
}

/* Settings all generators share are kept; one that differs says so (per_generator has it). */
static void write_config(FILE *f, const struct merge *m)
{
    int first = 1;

    fputs(",\"config\":{", f);
    for (size_t i = 0; i < m->n; i++) {
        const struct json_value *c = json_get(m->runs[i].root, "config");

        for (const struct json_value *k = c ? c->child : NULL; k; k = k->next) {
            const struct json_value *v = common(m, config_key, k->key);
            size_t seen = 0;

            while (seen < i && !config_key(&m->runs[seen], k->key))
                seen++;
            if (seen < i)
                continue;
            fputs(first ? "" : ",", f);
            json_write(f, &(struct json_value){.type = JSON_STRING, .str = k->key,
                                                .len = k->key_len});
            fputc(':', f);
            if (v)
                json_write(f, v);
            else
                fputs("\"differs between generators (see per_generator)\"", f);
            first = 0;
        }
    }
    fputc('}', f);
}

static void write_latency(FILE *f, const rf_hist *h)
{
    static const struct {
        const char *name;
        double p;
    } pcts[] = {{"p50", 50}, {"p75", 75}, {"p90", 90}, {"p99", 99}, {"p999", 99.9},
                {"p9999", 99.99}};
    rf_hist_moments mo;
    uint32_t idx;
    uint64_t lo, hi, count;
    size_t it = 0;
    int first = 1;

    fprintf(f, ",\"latency_us\":{\"min\":%llu,\"mean\":%.2f,\"stdev\":%.2f",
            (unsigned long long)rf_hist_min(h), rf_hist_mean(h), rf_hist_stdev(h));
    /* every percentile from the merged histogram: percentiles are never averaged */
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
        fprintf(f, ",\"%s\":%llu", pcts[i].name,
                (unsigned long long)rf_hist_percentile(h, pcts[i].p));
    rf_hist_get_moments(h, &mo);
    fprintf(f, ",\"max\":%llu}", (unsigned long long)rf_hist_max(h));
    fprintf(f, ",\"histogram\":{\"layout\":\"%s\",\"count\":%llu,\"min\":%llu,\"max\":%llu,"
               "\"sum\":%.17g,\"sumsq\":%.17g,\"buckets\":[",
            BENCH_HIST_LAYOUT, (unsigned long long)rf_hist_count(h),
            (unsigned long long)rf_hist_min(h), (unsigned long long)rf_hist_max(h), mo.sum,
            mo.sumsq);
    while (rf_hist_bucket(h, &it, &idx, &lo, &hi, &count)) {
        fprintf(f, "%s[%u,%llu]", first ? "" : ",", idx, (unsigned long long)count);
        first = 0;
    }
    fputs("]}", f);
}

static void write_intervals(FILE *f, const struct merge *m)
{
    int first = 1;

    fputs(",\"intervals\":[", f);
    for (size_t b = 0; b < m->n_bins; b++) {
        const struct bin *x = &m->bins[b];

        if (!x->generators)
            continue;
        fprintf(f, "%s{\"t_s\":%.6f,\"length_s\":%.6f,\"requests\":%llu,\"errors\":%llu,"
                   "\"bytes\":%llu,\"rps\":%.2f,\"p50_us_max\":%llu,\"p99_us_max\":%llu,"
                   "\"max_us\":%llu,\"generators\":%u}",
                first ? "" : ",", (double)b * m->interval_s + x->length_s, x->length_s,
                (unsigned long long)x->requests, (unsigned long long)x->errors,
                (unsigned long long)x->bytes, x->rps, (unsigned long long)x->p50_max,
                (unsigned long long)x->p99_max, (unsigned long long)x->max_us, x->generators);
        first = 0;
    }
    fputc(']', f);
}

static void write_generators(FILE *f, const struct merge *m)
{
    uint64_t gens = 0;

    fputs(",\"per_generator\":[", f);
    for (size_t i = 0; i < m->n; i++) {
        const struct bench_run *r = &m->runs[i];
        const struct json_value *c = json_get(r->root, "config");

        gens += r->generators;
        fprintf(f, "%s{\"file\":", i ? "," : "");
        json_write(f, &(struct json_value){.type = JSON_STRING, .str = r->path,
                                            .len = strlen(r->path)});
        fprintf(f, ",\"start_epoch_s\":%.6f,\"start_offset_s\":%.6f,\"duration_s\":%.6f,"
                   "\"requests\":%llu,\"rps\":%.2f,\"errors\":%llu,\"generators\":%llu",
                r->start_epoch_s, r->start_epoch_s - m->start, r->duration_s,
                (unsigned long long)r->requests, r->rps, (unsigned long long)r->errors,
                (unsigned long long)r->generators);
        if (json_get(r->root, "latency_method")) {
            fputs(",\"latency_method\":", f);
            json_write(f, json_get(r->root, "latency_method"));
        }
        if (c) {
            fputs(",\"config\":", f);
            json_write(f, c);
        }
        fputc('}', f);
    }
    fprintf(f, "],\"generators\":%llu,\"inputs\":[", (unsigned long long)gens);
    for (size_t i = 0; i < m->n; i++) {
        fputs(i ? "," : "", f);
        json_write(f, &(struct json_value){.type = JSON_STRING, .str = m->runs[i].path,
                                            .len = strlen(m->runs[i].path)});
    }
    fputc(']', f);
}

/* The merged report, in the same format as one generator's, so `report` reads it. */
static int write_merged(FILE *f, const struct merge *m, const rf_hist *h)
{
    const struct json_value *url = common(m, top_key, "url");
    const struct json_value *method = common(m, top_key, "latency_method");
    double warmup = 0;
    uint64_t targets = 0, rate_gens = 0;

    for (size_t i = 0; i < m->n; i++) {
        const struct bench_run *r = &m->runs[i];

        warmup = fmax(warmup, bench_num(r->root, "warmup_s", 0));
        targets = bench_u64(r->root, "targets", 1) > targets ? bench_u64(r->root, "targets", 1)
                                                              : targets;
        rate_gens += json_get(r->root, "rate") ? r->generators : 0;
    }
    fprintf(f, "{\"format\":\"%s\",\"url\":", BENCH_FORMAT);
    json_write(f, url ? url : json_get(m->runs[0].root, "url"));
    if (!url) {
        fputs(",\"urls\":[", f);
        for (size_t i = 0; i < m->n; i++) {
            fputs(i ? "," : "", f);
            json_write(f, json_get(m->runs[i].root, "url"));
        }
        fputc(']', f);
    }
    fprintf(f, ",\"targets\":%llu,\"threads\":%llu,\"connections\":%llu,\"pipeline\":%llu",
            (unsigned long long)targets, (unsigned long long)sum_u64(m, "threads"),
            (unsigned long long)sum_u64(m, "connections"),
            (unsigned long long)bench_u64(m->runs[0].root, "pipeline", 1));
    /* the span from the first start to the last end; start_spread_s: how far apart they began */
    fprintf(f, ",\"start_epoch_s\":%.6f,\"start_spread_s\":%.6f,\"warmup_s\":%.6f,"
               "\"duration_s\":%.6f",
            m->start, m->latest - m->start, warmup, m->end - m->start);
    if (m->interval_s > 0)
        fprintf(f, ",\"interval_s\":%.6f", m->interval_s);
    fprintf(f, ",\"requests\":%llu,\"rps\":%.2f,\"bytes\":%llu,\"bytes_per_s\":%.1f",
            (unsigned long long)sum_u64(m, "requests"), sum_num(m, "rps"),
            (unsigned long long)sum_u64(m, "bytes"), sum_num(m, "bytes_per_s"));
    fprintf(f, ",\"connects\":%llu,\"established\":%llu,\"open_at_end\":%llu,\"peak_open\":%llu",
            (unsigned long long)sum_u64(m, "connects"),
            (unsigned long long)sum_u64(m, "established"),
            (unsigned long long)sum_u64(m, "open_at_end"),
            (unsigned long long)sum_u64(m, "peak_open"));
    write_summed(f, m, "errors");
    write_summed(f, m, "status");
    if (rate_gens) {
        double requested = 0, achieved = 0;

        for (size_t i = 0; i < m->n; i++) {
            const struct json_value *rate = json_get(m->runs[i].root, "rate");

            requested += bench_num(rate, "requested", 0);
            achieved += bench_num(rate, "achieved", 0);
        }
        fprintf(f, ",\"rate\":{\"requested\":%.17g,\"achieved\":%.2f,"
                   "\"total_over_generators\":%llu}",
                requested, achieved, (unsigned long long)rate_gens);
    }
    fputs(",\"latency_method\":", f);
    if (method)
        json_write(f, method);
    else
        fputs("\"mixed (see per_generator)\"", f);
    write_latency(f, h);
    write_intervals(f, m);
    write_generators(f, m);
    fprintf(f, ",\"tls_full\":%llu,\"tls_resumed\":%llu",
            (unsigned long long)sum_u64(m, "tls_full"),
            (unsigned long long)sum_u64(m, "tls_resumed"));
    write_config(f, m);
    fputs("}\n", f);
    return ferror(f) ? -1 : 0;
}


int cmd_bench_merge(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"html", required_argument, 0, 'H'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = "-", *html = NULL;
    struct merge m = {0};
    struct outfile of;
    rf_hist *h = NULL;
    char *text = NULL, why[512], title[128];
    size_t len = 0;
    FILE *mem;
    int opt, ret = 1;

    while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'o': out = optarg; break;
        case 'H': html = optarg; break;
        case 'h':
            fputs(usage_text, stdout);
            fputs("Adds up bench --json reports of generators that ran at the same time into one\n"
                  "report of the same format (stdout unless -o); --html also draws it.\n",
                  stdout);
            return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "ringfetch bench-merge: no report given\n%s", usage_text);
        return 2;
    }
    m.runs = calloc((size_t)(argc - optind), sizeof(*m.runs));
    if (!m.runs || !(h = rf_hist_create()))
        goto fail;
    for (int i = optind; i < argc; i++) {
        if (bench_run_load(&m.runs[m.n++], argv[i], why, sizeof(why))) {
            fprintf(stderr, "ringfetch bench-merge: %s\n", why);
            goto fail;
        }
        rf_hist_merge(h, m.runs[m.n - 1].hist);
    }
    if (check_inputs(&m) || bin_intervals(&m))
        goto fail;
    /* written to memory first: the file and the HTML page get the same bytes */
    mem = open_memstream(&text, &len);
    if (!mem)
        goto fail;
    if ((write_merged(mem, &m, h) | fclose(mem)) != 0)
        goto fail;
    if (outfile_open(&of, out)) {
        fprintf(stderr, "ringfetch bench-merge: cannot write %s: %s\n", out, strerror(errno));
        goto fail;
    }
    if (fwrite(text, 1, len, of.f) != len || outfile_commit(&of)) {
        fprintf(stderr, "ringfetch bench-merge: writing %s failed: %s\n", out, strerror(errno));
        outfile_abort(&of);
        goto fail;
    }
    /* the page names the run after the merged file, when there is one */
    snprintf(title, sizeof(title), "ringfetch bench-merge of %zu reports", m.n);
    if (html && report_write_html(html, strcmp(out, "-") ? out : "merged", text, len, title,
                                  "bench-merge"))
        goto fail;
    ret = 0;
fail:
    for (size_t i = 0; i < m.n; i++)
        bench_run_free(&m.runs[i]);
    free(m.runs);
    free(m.bins);
    free(text);
    if (h)
        rf_hist_destroy(h);
    return ret;
}
