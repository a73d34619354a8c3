/* benchrun.h - one `bench --json` report ("ringfetch-bench/1") read back, histogram rebuilt. */
#ifndef RF_CLI_BENCHRUN_H
#define RF_CLI_BENCHRUN_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "ringfetch.h"

#define BENCH_FORMAT "ringfetch-bench/1"
#define BENCH_HIST_LAYOUT "ringfetch-loglinear-v1"

/* One entry of "intervals". */
struct bench_interval {
    double t_s;      /* end of the interval, seconds after the measured start */
    double length_s;
    double rps;
    uint64_t requests, errors, bytes;
    uint64_t p50_us, p99_us, max_us; /* in a merged report the maxima over the generators */
};

struct bench_run {
    const char *path; /* as named on the command line */
    struct json_doc doc;
    const struct json_value *root; /* the whole report, for fields read only for display */
    rf_hist *hist;                 /* rebuilt from "histogram": buckets and moments */
    struct bench_interval *iv;
    size_t n_iv;
    int iv_p_is_max; /* the intervals carry p50_us_max/p99_us_max (bench-merge wrote them) */
    int has_start;
    double start_epoch_s, duration_s, interval_s, rps;
    uint64_t requests, bytes, errors; /* errors: the sum over "errors" */
    uint64_t generators;              /* 1, or how many reports bench-merge added up */
};

/*
 * Parse `len` bytes of `text` as a report named `path` (kept by pointer). Returns 0, or -1
 * with a message in why[] that starts with the path. Free with bench_run_free() either way.
 */
int bench_run_parse(struct bench_run *r, const char *path, const char *text, size_t len,
                    char *why, size_t why_len);
/* The same for a file. */
int bench_run_load(struct bench_run *r, const char *path, char *why, size_t why_len);
void bench_run_free(struct bench_run *r);

/* A uint64 member of an object, or `dflt` when absent or not an unsigned integer. */
uint64_t bench_u64(const struct json_value *obj, const char *key, uint64_t dflt);
/* A number member, or `dflt`. */
double bench_num(const struct json_value *obj, const char *key, double dflt);

#endif
