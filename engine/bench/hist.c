/* hist.c - the histogram's queries, merging, coordinated-omission back-fill and HDR text output. */
#include "bench/hist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define HDR_TICKS_PER_HALF 5

static unsigned bucket_shift(unsigned idx)
{
    unsigned range = idx >> HIST_SUB_BITS;

    /* counters 0..255 (ranges 0 and 1) are both one unit wide */
    return range ? range - 1 : 0;
}

uint64_t hist_bucket_lowest(unsigned idx)
{
    unsigned shift = bucket_shift(idx);

    return (uint64_t)(idx - (shift << HIST_SUB_BITS)) << shift;
}

uint64_t hist_bucket_highest(unsigned idx)
{
    return hist_bucket_lowest(idx) + (UINT64_C(1) << bucket_shift(idx)) - 1;
}

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void hist_reset(struct hist *h)
{
    hist_init(h);
}

/*
 * x * y * z / d for d in {2, 6} where the quotient is an integer: dividing a factor first
 * keeps the result exact modulo 2^128, like the running sums it is added to.
 */
static hist_u128 div_product(uint64_t x, uint64_t y, uint64_t z, unsigned d)
{
    uint64_t f[3] = {x, y, z};

    for (unsigned p = 2; p <= 3; p++) {
        if (d % p)
            continue;
        for (int i = 0; i < 3; i++) {
            if (f[i] % p == 0) {
                f[i] /= p;
                break;
            }
        }
    }
    return (hist_u128)f[0] * f[1] * f[2];
}

void hist_record_corrected(struct hist *h, uint64_t us, uint64_t interval_us)
{
    uint64_t d = interval_us;
    uint64_t v;

    hist_record(h, us);
    if (d == 0 || us <= d || us - d < d)
        return;
    /*
     * The missing samples us - d, us - 2d, ... >= d are an arithmetic sequence: walk it
     * one counter at a time, adding every term that falls in that counter at once and
     * their sums in closed form, so a 60 s stall at a 1 us interval costs ~2560 steps.
     */
    v = us - d;
    for (;;) {
        unsigned idx = hist_index(v < HIST_HIGHEST_US ? v : HIST_HIGHEST_US);
        uint64_t lo = hist_bucket_lowest(idx);
        uint64_t n, last;

        if (lo < d)
            lo = d;
        n = (v - lo) / d + 1;
        last = v - (n - 1) * d;
        if (v > HIST_HIGHEST_US) {
            uint64_t top = HIST_HIGHEST_US + 1 > lo ? HIST_HIGHEST_US + 1 : lo;

            h->overflow += (v - top) / d + 1;
        }
        h->counts[idx] += n;
        h->total += n;
        /* sum of v - j*d for j < n, and of its square */
        h->sum += (hist_u128)n * v - (hist_u128)d * div_product(n, n - 1, 1, 2);
        h->sumsq += (hist_u128)n * v * v - (hist_u128)d * v * n * (n - 1) +
                    (hist_u128)d * d * div_product(n - 1, n, 2 * n - 1, 6);
        h->min = last < h->min ? last : h->min;
        if (last - d < d)
            break;
        v = last - d;
    }
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    for (unsigned i = 0; i < HIST_COUNTS; i++)
        dst->counts[i] += src->counts[i];
    dst->sum += src->sum;
    dst->sumsq += src->sumsq;
    dst->total += src->total;
    dst->overflow += src->overflow;
    dst->min = src->min < dst->min ? src->min : dst->min;
    dst->max = src->max > dst->max ? src->max : dst->max;
}

uint64_t hist_count(const struct hist *h)
{
    return h->total;
}

uint64_t hist_overflow(const struct hist *h)
{
    return h->overflow;
}

uint64_t hist_min(const struct hist *h)
{
    return h->total ? h->min : 0;
}

uint64_t hist_max(const struct hist *h)
{
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->total ? (double)h->sum / (double)h->total : 0.0;
}

/* Newton's method from above; the library links without libm, so no sqrt(). */
static double square_root(double x)
{
    double r;

    if (!(x > 0))
        return 0.0;
    r = x < 1 ? 1 : x;
    /* the iterates fall monotonically to the root; the bound only stops an infinity */
    for (int i = 0; i < 2100; i++) {
        double next = 0.5 * (r + x / r);

        if (!(next < r))
            break;
        r = next;
    }
    return r;
}

double hist_stdev(const struct hist *h)
{
    hist_u128 n = h->total, a, b;
    double var;

    if (n == 0)
        return 0.0;
    /*
     * n * sumsq - sum^2 is an exact integer, so a constant series gives exactly 0; the
     * double formula cancels catastrophically when stdev is small against the mean.
     */
    if (!__builtin_mul_overflow(h->sumsq, n, &a) && !__builtin_mul_overflow(h->sum, h->sum, &b)) {
        var = a > b ? (double)(a - b) / ((double)n * (double)n) : 0.0;
    } else {
        double mean = (double)h->sum / (double)n;

        var = (double)h->sumsq / (double)n - mean * mean;
    }
    return square_root(var);
}

/* The highest value of counter idx, but never above the exact maximum. */
static uint64_t reported_value(const struct hist *h, unsigned idx)
{
    uint64_t v = hist_bucket_highest(idx);

    return v < h->max ? v : h->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    uint64_t rank, cum = 0;
    double x;

    if (h->total == 0)
        return 0;
    if (!(p > 0))
        p = 0; /* also NaN */
    if (p > 100)
        p = 100;
    x = p * (double)h->total / 100.0;
    rank = (uint64_t)x;
    /*
     * A decimal p is inexact in binary: 16.1 * 1000 / 100 comes out 161.00000000000003.
     * A fraction at rounding-noise level is that noise, not a request for the next rank.
     */
    if (x - (double)rank > x * 1e-12)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->total)
        rank = h->total;
    for (unsigned i = 0; i < HIST_COUNTS; i++) {
        cum += h->counts[i];
        if (cum >= rank)
            return reported_value(h, i);
    }
    return reported_value(h, HIST_COUNTS - 1); /* not reached: the counts sum to total */
}

/*
 * The next reporting level after `pct`, as HdrHistogram's percentile iterator steps:
 * each halving of the distance to 100% gets HDR_TICKS_PER_HALF rows, so the tail is
 * reported as finely as the body.
 */
static double next_level(double pct)
{
    double ratio = 100.0 / (100.0 - pct);
    unsigned k = 0;

    while (k < 62 && (double)(UINT64_C(2) << k) <= ratio)
        k++; /* k = floor(log2(ratio)) */
    return pct + 100.0 / ((double)HDR_TICKS_PER_HALF * (double)(UINT64_C(2) << k));
}

int hist_write_hdr_percentiles(const struct hist *h, FILE *out, double unit_scale)
{
    /* 3 decimals keep microseconds visible when writing milliseconds */
    static const char row[] = "%12.3f %2.12f %10" PRIu64 " %14.2f\n";
    static const char last_row[] = "%12.3f %2.12f %10" PRIu64 "\n";
    double level = 0.0;
    uint64_t cum = 0;
    unsigned last = 0;

    if (fprintf(out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
                "1/(1-Percentile)") < 0)
        return -EIO;
    for (unsigned i = 0; i < HIST_COUNTS && cum < h->total; i++) {
        double reached, value;

        if (h->counts[i] == 0)
            continue;
        cum += h->counts[i];
        last = i;
        reached = 100.0 * (double)cum / (double)h->total;
        value = (double)reported_value(h, i) / unit_scale;
        /* the counter that completes the total gets one row; the 100% row follows */
        while (level <= reached) {
            if (fprintf(out, row, value, level / 100.0, cum, 1.0 / (1.0 - level / 100.0)) < 0)
                return -EIO;
            level = next_level(level);
            if (cum == h->total)
                break;
        }
    }
    if (h->total &&
        fprintf(out, last_row, (double)reported_value(h, last) / unit_scale, 1.0, h->total) < 0)
        return -EIO;
    if (fprintf(out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", hist_mean(h) / unit_scale,
                hist_stdev(h) / unit_scale) < 0 ||
        fprintf(out, "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n",
                (double)hist_max(h) / unit_scale, h->total) < 0 ||
        fprintf(out, "#[Buckets = %12d, SubBuckets     = %12d]\n", HIST_BUCKETS,
                (int)(2 * HIST_SUB_HALF)) < 0)
        return -EIO;
    return ferror(out) ? -EIO : 0;
}

/* ---- the public rf_hist API: the same histogram behind an opaque handle ---- */

rf_hist *rf_hist_create(void)
{
    rf_hist *h = malloc(sizeof(*h));

    if (h)
        hist_init(&h->h);
    return h;
}

void rf_hist_destroy(rf_hist *h) { free(h); }

void rf_hist_record(rf_hist *h, uint64_t us, uint64_t count) { hist_record_n(&h->h, us, count); }

void rf_hist_merge(rf_hist *dst, const rf_hist *src) { hist_merge(&dst->h, &src->h); }

uint64_t rf_hist_count(const rf_hist *h) { return hist_count(&h->h); }

uint64_t rf_hist_min(const rf_hist *h) { return hist_min(&h->h); }

uint64_t rf_hist_max(const rf_hist *h) { return hist_max(&h->h); }

double rf_hist_mean(const rf_hist *h) { return hist_mean(&h->h); }

double rf_hist_stdev(const rf_hist *h) { return hist_stdev(&h->h); }

uint64_t rf_hist_percentile(const rf_hist *h, double p) { return hist_percentile(&h->h, p); }

int rf_hist_bucket(const rf_hist *h, size_t *iter, uint32_t *index, uint64_t *lowest_us,
                   uint64_t *highest_us, uint64_t *count)
{
    for (size_t i = *iter; i < HIST_COUNTS; i++) {
        if (!h->h.counts[i])
            continue;
        *iter = i + 1;
        *index = (uint32_t)i;
        *lowest_us = hist_bucket_lowest((unsigned)i);
        *highest_us = hist_bucket_highest((unsigned)i);
        *count = h->h.counts[i];
        return 1;
    }
    *iter = HIST_COUNTS;
    return 0;
}

rf_error rf_hist_add_bucket(rf_hist *h, uint32_t index, uint64_t count)
{
    if (index >= HIST_COUNTS)
        return RF_ERR_INVALID_ARG;
    h->h.counts[index] += count;
    h->h.total += count;
    return RF_OK;
}

void rf_hist_get_moments(const rf_hist *h, rf_hist_moments *m)
{
    m->min = h->h.min;
    m->max = h->h.max;
    m->sum = (double)h->h.sum;
    m->sumsq = (double)h->h.sumsq;
}

void rf_hist_add_moments(rf_hist *h, const rf_hist_moments *m)
{
    h->h.min = m->min < h->h.min ? m->min : h->h.min;
    h->h.max = m->max > h->h.max ? m->max : h->h.max;
    h->h.sum += (hist_u128)(m->sum > 0 ? m->sum : 0);
    h->h.sumsq += (hist_u128)(m->sumsq > 0 ? m->sumsq : 0);
}

int rf_hist_write_percentiles(const rf_hist *h, FILE *out, double unit_scale)
{
    return hist_write_hdr_percentiles(&h->h, out, unit_scale);
}
