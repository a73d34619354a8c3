/* report.c - `ringfetch report`: bench reports as one self-contained HTML page of SVG charts. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchrun.h"
#include "outfile.h"
#include "reports.h"
#include "svg.h"

/* Distinguishable in colour and in grey; past ten runs the colours repeat. */
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define COLOUR(i) palette[(i) % (sizeof(palette) / sizeof(palette[0]))]

/* Points per decade of 1/(1-p) in the percentile chart: the steps of the tail show. */
#define PCT_POINTS_PER_DECADE 48

static const char css[] =
    "body{font:14px/1.45 system-ui,sans-serif;color:#222;max-width:1000px;margin:20px auto;"
    "padding:0 14px}\n"
    "h1{font-size:21px;margin-bottom:4px}h2{font-size:16px;margin:26px 0 6px}\n"
    ".sub,.caption{color:#666;font-size:12px}\n"
    ".chart{width:100%;height:auto;display:block}\n"
    ".frame{fill:#fff;stroke:#999}.grid{stroke:#e6e6e6}.tick{font-size:11px;fill:#444}\n"
    ".axis{font-size:12px;fill:#222}.note{font-size:13px;fill:#888}\n"
    ".legend .key{display:inline-block;margin:2px 16px 2px 0;cursor:pointer}\n"
    ".legend .off{opacity:.35}\n"
    ".sw{display:inline-block;width:16px;height:4px;margin-right:6px;vertical-align:middle}\n"
    ".wide{overflow-x:auto}table{border-collapse:collapse;font-size:12px;margin:4px 0}\n"
    "th,td{border:1px solid #d4d4d4;padding:3px 7px;text-align:right;vertical-align:top}\n"
    "th{background:#f4f4f4}.l{text-align:left}\n";

/* The one script: a click on a legend entry hides or shows that run's lines. */
static const char script[] =
    "document.querySelectorAll('#legend .key').forEach(function (key) {\n"
    "  key.addEventListener('click', function () {\n"
    "    var off = key.classList.toggle('off');\n"
    "    var lines = document.querySelectorAll('svg .run-' + key.getAttribute('data-run'));\n"
    "    lines.forEach(function (e) { e.style.display = off ? 'none' : ''; });\n"
    "  });\n"
    "});\n";

/* Latencies are shown in ms once the largest reaches 10 ms, else in µs. */
static double latency_div(uint64_t max_us, const char **unit)
{
    *unit = max_us >= 10000 ? "ms" : "\xc2\xb5s";
    return max_us >= 10000 ? 1000.0 : 1.0;
}

static void chart_percentiles(FILE *f, const struct bench_run *runs, size_t n)
{
    uint64_t max_us = 0, max_count = 0;
    unsigned decades = 2;
    const char *unit;
    char label[64];
    struct plot p;
    double div, *xs, *ys;
    size_t points;

    for (size_t i = 0; i < n; i++) {
        max_us = rf_hist_max(runs[i].hist) > max_us ? rf_hist_max(runs[i].hist) : max_us;
        max_count = rf_hist_count(runs[i].hist) > max_count ? rf_hist_count(runs[i].hist)
                                                            : max_count;
    }
    /* as far into the tail as the largest run has samples: 1000 samples reach 99.9% */
    while (decades < 6 && pow(10, decades) < (double)max_count)
        decades++;
    div = latency_div(max_us, &unit);
    plot_begin(&p, f, "percentiles", "latency by percentile", 1, pow(10, decades), 1, 0,
               nice_ceil((double)max_us * 1.05));
    for (unsigned k = 0; k <= decades; k++) {
        /* 1/(1-p) = 10^k is the percentile 100 - 10^(2-k): 0%, 90%, 99%, 99.9% ... */
        snprintf(label, sizeof(label), "%.*f%%", k > 2 ? (int)k - 2 : 0,
                 100.0 - pow(10, 2.0 - k));
        plot_xtick(&p, pow(10, k), label);
    }
    plot_yticks(&p, div);
    points = (size_t)decades * PCT_POINTS_PER_DECADE + 1;
    xs = calloc(points, sizeof(*xs));
    ys = calloc(points, sizeof(*ys));
    for (size_t i = 0; xs && ys && i < n; i++) {
        if (!rf_hist_count(runs[i].hist))
            continue;
        /* each point asks the histogram; the percentiles are never computed here */
        for (size_t j = 0; j < points; j++) {
            xs[j] = pow(10, (double)decades * (double)j / (double)(points - 1));
            ys[j] = (double)rf_hist_percentile(runs[i].hist, 100.0 * (1.0 - 1.0 / xs[j]));
        }
        plot_line(&p, xs, ys, points, COLOUR(i), 0, (int)i, runs[i].path);
    }
    free(xs);
    free(ys);
    if (!max_count)
        plot_note(&p, "no latency samples in these reports");
    snprintf(label, sizeof(label), "latency (%s)", unit);
    plot_axis_labels(&p, "percentile (axis: 1/(1-p), logarithmic)", label);
    plot_end(&p);
}

/* What an over-time chart plots of an interval. */
enum series { S_RPS, S_ERRORS, S_P50, S_P99 };

static double series_value(const struct bench_interval *iv, enum series s)
{
    switch (s) {
    case S_RPS: return iv->rps;
    case S_ERRORS: return (double)iv->errors;
    case S_P50: return (double)iv->p50_us;
    case S_P99: return (double)iv->p99_us;
    }
    return 0;
}

/*
 * One chart over time: for every run a line of series `a`, and a dashed one of `b` when
 * b != a. y values are divided by `div` on the tick labels only.
 */
static void chart_time(FILE *f, const struct bench_run *runs, size_t n, const char *id,
                       const char *label, enum series a, enum series b, double div,
                       const char *ylabel)
{
    double tmax = 0, ymax = 0, step, *xs = NULL, *ys = NULL;
    size_t most = 0;
    char tick[32];
    struct plot p;

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < runs[i].n_iv; j++) {
            const struct bench_interval *iv = &runs[i].iv[j];

            tmax = iv->t_s > tmax ? iv->t_s : tmax;
            ymax = fmax(ymax, fmax(series_value(iv, a), series_value(iv, b)));
        }
        most = runs[i].n_iv > most ? runs[i].n_iv : most;
    }
    plot_begin(&p, f, id, label, 0, tmax > 0 ? tmax : 1, 0, 0,
               nice_ceil(ymax > 0 ? ymax * 1.05 : 1));
    step = nice_ceil((tmax > 0 ? tmax : 1) / 8);
    for (int k = 0; k <= 10 && k * step <= (tmax > 0 ? tmax : 1) * 1.000001; k++) {
        snprintf(tick, sizeof(tick), "%g", k * step);
        plot_xtick(&p, k * step, tick);
    }
    plot_yticks(&p, div);
    if (most) {
        xs = calloc(most, sizeof(*xs));
        ys = calloc(most, sizeof(*ys));
    }
    for (size_t i = 0; xs && ys && i < n; i++) {
        for (int pass = 0; pass < (a == b ? 1 : 2); pass++) {
            for (size_t j = 0; j < runs[i].n_iv; j++) {
                xs[j] = runs[i].iv[j].t_s;
                ys[j] = series_value(&runs[i].iv[j], pass ? b : a);
            }
            plot_line(&p, xs, ys, runs[i].n_iv, COLOUR(i), pass, (int)i, runs[i].path);
        }
    }
    free(xs);
    free(ys);
    if (!most)
        plot_note(&p, "no per-interval data in these reports");
    plot_axis_labels(&p, "time since the measured start (s)", ylabel);
    plot_end(&p);
}

/* A JSON value as table text: strings without their quotes, the rest as compact JSON. */
static void cell_value(FILE *f, const struct json_value *v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m;

    if (!v) {
        fputs("&ndash;", f);
        return;
    }
    if (v->type == JSON_STRING) {
        html_escape_mem(f, v->str, v->len);
        return;
    }
    m = open_memstream(&buf, &len);
    if (!m)
        return;
    if (v->type == JSON_NUMBER && !v->is_uint)
        fprintf(m, "%.10g", v->num);
    else
        json_write(m, v);
    fclose(m);
    html_escape_mem(f, buf, len);
    free(buf);
}

static void cell_time(FILE *f, const struct json_value *v)
{
    double t;
    time_t s;
    struct tm tm;
    char buf[64];

    if (json_double(v, &t) || !(t >= 0 && t < 1e11)) {
        cell_value(f, v);
        return;
    }
    s = (time_t)t;
    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(f, "%s.%03d UTC", buf, (int)((t - (double)s) * 1000));
}

static void legend_key(FILE *f, const struct bench_run *r, size_t i)
{
    fprintf(f, "<span class=\"sw\" style=\"background:%s\"></span>", COLOUR(i));
    html_escape(f, r->path);
}

static void summary_table(FILE *f, const struct bench_run *runs, size_t n)
{
    static const double pcts[] = {50, 90, 99, 99.9};

    fputs("<div class=\"wide\"><table id=\"summary\"><tr><th class=\"l\">run</th><th "
          "class=\"l\">url</th>"
          "<th>requests</th><th>duration (s)</th><th>requests/s</th><th>errors</th>"
          "<th>p50 (\xc2\xb5s)</th><th>p90 (\xc2\xb5s)</th><th>p99 (\xc2\xb5s)</th>"
          "<th>p99.9 (\xc2\xb5s)</th><th>max (\xc2\xb5s)</th><th>mean (\xc2\xb5s)</th>"
          "<th class=\"l\">latency method</th></tr>\n",
          f);
    for (size_t i = 0; i < n; i++) {
        const struct bench_run *r = &runs[i];

        fputs("<tr><td class=\"l\">", f);
        legend_key(f, r, i);
        fputs("</td><td class=\"l\">", f);
        html_escape(f, json_string(json_get(r->root, "url")));
        fprintf(f, "</td><td>%llu</td><td>%.3f</td><td>%.1f</td><td>%llu</td>",
                (unsigned long long)r->requests, r->duration_s, r->rps,
                (unsigned long long)r->errors);
        for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++)
            fprintf(f, "<td>%llu</td>", (unsigned long long)rf_hist_percentile(r->hist, pcts[k]));
        fprintf(f, "<td>%llu</td><td>%.1f</td><td class=\"l\">",
                (unsigned long long)rf_hist_max(r->hist), rf_hist_mean(r->hist));
        cell_value(f, json_get(r->root, "latency_method"));
        fputs("</td></tr>\n", f);
    }
    fputs(
        "</table></div>\n<p class=\"caption\">Percentiles from each run's histogram (nearest rank, "
        "the highest value of the sample's bucket: at most 0.8% above the exact value); "
        "errors: the sum over the error classes.</p>\n",
        f);
}

/* The report fields worth a row, then every "config" key any run has, runs side by side. */
static void config_table(FILE *f, const struct bench_run *runs, size_t n)
{
    static const char *const top[] = {
        "url", "targets", "threads", "connections", "pipeline", "generators", "inputs",
        "start_epoch_s", "start_spread_s", "start_offset_us", "warmup_s", "duration_s",
        "interval_s", "rate", "latency_method", "tls_full", "tls_resumed"};
    const char **keys = NULL;
    size_t nkeys = 0, cap = 0;

    fputs("<div class=\"wide\"><table id=\"config\"><tr><th class=\"l\">setting</th>", f);
    for (size_t i = 0; i < n; i++) {
        fputs("<th class=\"l\">", f);
        legend_key(f, &runs[i], i);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (size_t k = 0; k < sizeof(top) / sizeof(top[0]); k++) {
        int any = 0;

        for (size_t i = 0; i < n; i++)
            any |= json_get(runs[i].root, top[k]) != NULL;
        if (!any)
            continue;
        fprintf(f, "<tr><td class=\"l\">%s</td>", top[k]);
        for (size_t i = 0; i < n; i++) {
            fputs("<td class=\"l\">", f);
            if (strcmp(top[k], "start_epoch_s") == 0)
                cell_time(f, json_get(runs[i].root, top[k]));
            else
                cell_value(f, json_get(runs[i].root, top[k]));
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    /* the union of the config keys, in the order they first appear */
    for (size_t i = 0; i < n; i++) {
        const struct json_value *c = json_get(runs[i].root, "config");

        for (const struct json_value *m = c ? c->child : NULL; m; m = m->next) {
            size_t k = 0;

            while (k < nkeys && strcmp(keys[k], m->key) != 0)
                k++;
            if (k < nkeys)
                continue;
            if (nkeys == cap) {
                const char **nk = realloc(keys, (cap ? cap * 2 : 32) * sizeof(*keys));

                if (!nk)
                    break;
                keys = nk;
                cap = cap ? cap * 2 : 32;
            }
            keys[nkeys++] = m->key;
        }
    }
    for (size_t k = 0; k < nkeys; k++) {
        fputs("<tr><td class=\"l\">config.", f);
        html_escape(f, keys[k]);
        fputs("</td>", f);
        for (size_t i = 0; i < n; i++) {
            fputs("<td class=\"l\">", f);
            cell_value(f, json_get(json_get(runs[i].root, "config"), keys[k]));
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table></div>\n", f);
    free(keys);
}

int report_html(FILE *f, const struct bench_run *runs, size_t n, const char *title)
{
    uint64_t max_p99 = 0;
    int merged_p = 0;
    const char *unit;
    char ylabel[96];
    double div;

    for (size_t i = 0; i < n; i++) {
        merged_p |= runs[i].iv_p_is_max;
        for (size_t j = 0; j < runs[i].n_iv; j++)
            max_p99 = runs[i].iv[j].p99_us > max_p99 ? runs[i].iv[j].p99_us : max_p99;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    html_escape(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head><body>\n<h1>", css);
    html_escape(f, title);
    fprintf(f, "</h1>\n<p class=\"sub\">ringfetch %s, %zu report%s. Click a name to hide or "
               "show its lines.</p>\n<div id=\"legend\" class=\"legend\">",
            rf_version(), n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "<span class=\"key\" data-run=\"%zu\">", i);
        legend_key(f, &runs[i], i);
        fputs(" &mdash; ", f);
        html_escape(f, json_string(json_get(runs[i].root, "url")));
        if (runs[i].generators > 1)
            fprintf(f, " (%llu generators)", (unsigned long long)runs[i].generators);
        fputs("</span>\n", f);
    }
    fputs("</div>\n<h2>Latency by percentile</h2>\n", f);
    chart_percentiles(f, runs, n);
    fputs("<p class=\"caption\">Each run's whole histogram, plotted as HdrHistogram does: the "
          "x axis is 1/(1-p) on a log scale, so each step right is ten times further into the "
          "tail.</p>\n<h2>Requests per second</h2>\n",
          f);
    chart_time(f, runs, n, "rps", "requests per second over time", S_RPS, S_RPS, 1,
               "requests per second");
    fputs("<h2>Errors per interval</h2>\n", f);
    chart_time(f, runs, n, "errors", "errors per interval over time", S_ERRORS, S_ERRORS, 1,
               "errors per interval");
    fputs("<h2>Latency over time</h2>\n", f);
    div = latency_div(max_p99, &unit);
    snprintf(ylabel, sizeof(ylabel), "latency (%s): p50 solid, p99 dashed", unit);
    chart_time(f, runs, n, "latency", "p50 and p99 latency per interval", S_P50, S_P99, div,
               ylabel);
    if (merged_p)
        fputs("<p class=\"caption\">A merged report cannot know the percentiles of an interval "
              "across generators: its lines are the largest of the generators' p50 and p99 "
              "(p50_us_max, p99_us_max).</p>\n",
              f);
    fputs("<h2>Summary</h2>\n", f);
    summary_table(f, runs, n);
    fputs("<h2>Configuration</h2>\n", f);
    config_table(f, runs, n);
    fprintf(f, "<script>\n%s</script>\n</body></html>\n", script);
    return ferror(f) ? -1 : 0;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "ringfetch report: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fputs("usage: ringfetch report A.json [B.json ...] -o OUT.html [--title TITLE]\n", stderr);
    return 2;
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"title", required_argument, 0, 'T'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL, *title = NULL;
    struct bench_run *runs = NULL;
    struct outfile of = {0};
    char why[512], deftitle[512];
    size_t n = 0;
    int opt, ret = 1;

    while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'o': out = optarg; break;
        case 'T': title = optarg; break;
        case 'h':
            fputs("usage: ringfetch report A.json [B.json ...] -o OUT.html [--title TITLE]\n"
                  "One self-contained HTML page (inline SVG, no network) of bench --json\n"
                  "reports; with two or more it compares them.\n",
                  stdout);
            return 0;
        default: return usage_error("bad option", NULL);
        }
    }
    if (!out)
        return usage_error("-o OUT.html is required", NULL);
    if (optind >= argc)
        return usage_error("no report given", NULL);
    runs = calloc((size_t)(argc - optind), sizeof(*runs));
    if (!runs)
        goto fail;
    for (int i = optind; i < argc; i++, n++) {
        if (bench_run_load(&runs[n], argv[i], why, sizeof(why))) {
            fprintf(stderr, "ringfetch report: %s\n", why);
            n++;
            goto fail;
        }
    }
    if (!title) {
        if (n == 1)
            snprintf(deftitle, sizeof(deftitle), "ringfetch report: %s", runs[0].path);
        else
            snprintf(deftitle, sizeof(deftitle), "ringfetch comparison of %zu runs", n);
        title = deftitle;
    }
    if (outfile_open(&of, out)) {
        fprintf(stderr, "ringfetch report: cannot write %s: %s\n", out, strerror(errno));
        goto fail;
    }
    if (report_html(of.f, runs, n, title) || outfile_commit(&of)) {
        fprintf(stderr, "ringfetch report: writing %s failed: %s\n", out, strerror(errno));
        outfile_abort(&of);
        goto fail;
    }
    ret = 0;
fail:
    for (size_t i = 0; i < n; i++)
        bench_run_free(&runs[i]);
    free(runs);
    return ret;
}

/* A report's JSON text read back and drawn: what `bench --html` and `bench-merge --html`
 * write is the page of what they would have written as JSON. */
int report_write_html(const char *path, const char *name, const char *text, size_t len,
                      const char *title, const char *cmd)
{
    struct bench_run run;
    struct outfile of;
    char why[512];
    int ret = -1;

    if (bench_run_parse(&run, name, text, len, why, sizeof(why))) {
        fprintf(stderr, "ringfetch %s: the report does not read back: %s\n", cmd, why);
        goto fail;
    }
    if (outfile_open(&of, path)) {
        fprintf(stderr, "ringfetch %s: cannot write %s: %s\n", cmd, path, strerror(errno));
        goto fail;
    }
    if (report_html(of.f, &run, 1, title) || outfile_commit(&of)) {
        fprintf(stderr, "ringfetch %s: writing %s failed: %s\n", cmd, path, strerror(errno));
        outfile_abort(&of);
        goto fail;
    }
    ret = 0;
fail:
    bench_run_free(&run);
    return ret;
}
