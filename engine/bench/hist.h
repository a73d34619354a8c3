/* hist.h - a fixed-size log-linear latency histogram in microseconds, recorded in O(1). */
#ifndef RF_HIST_H
#define RF_HIST_H

#include <stdint.h>
#include <stdio.h>

#include "ringfetch.h"

/*
 * Layout (HdrHistogram's, with 2 significant digits): values 0..255 have a counter each;
 * above that every power of two [2^k, 2^(k+1)) is cut into 128 equal sub-buckets, so a
 * bucket is never wider than 1/128 of its lowest value (<0.79% relative error). 19 such
 * ranges reach HIST_HIGHEST_US (2^26 - 1 us, 67.1 s); larger values are recorded as
 * HIST_HIGHEST_US and counted by hist_overflow(). Count, min, max, mean and stdev come
 * from exact running values, not from the buckets.
 */
#define HIST_SUB_BITS 7 /* 128 sub-buckets per power of two */
#define HIST_SUB_HALF (1u << HIST_SUB_BITS)
#define HIST_BUCKETS 19                                   /* powers of two above the linear part */
#define HIST_COUNTS ((HIST_BUCKETS + 1) << HIST_SUB_BITS) /* 2560 counters, 20 KiB */
#define HIST_HIGHEST_US ((UINT64_C(1) << (HIST_BUCKETS + HIST_SUB_BITS)) - 1)

__extension__ typedef unsigned __int128 hist_u128;

/*
 * One thread owns one histogram; threads merge theirs with hist_merge() after joining.
 * The struct is plain data (no pointers): embed it or allocate it once, then hist_init().
 */
struct hist {
    uint64_t counts[HIST_COUNTS];
    hist_u128 sum;   /* of recorded values, before clamping */
    hist_u128 sumsq; /* of their squares: exact while us * us * count < 2^128 */
    uint64_t total;
    uint64_t min; /* UINT64_MAX while empty */
    uint64_t max;
    uint64_t overflow; /* values above HIST_HIGHEST_US */
};

/* The public rf_hist is this histogram behind an opaque name. */
struct rf_hist {
    struct hist h;
};

/* The counter index of a value in [0, HIST_HIGHEST_US]. */
static inline unsigned hist_index(uint64_t us)
{
    /*
     * The OR makes everything below 256 look like 255, so the linear part shares the
     * shift of 0 with the first power of two; above it the shift keeps 8 significant bits.
     */
    unsigned lz = (unsigned)__builtin_clzll(us | (2 * HIST_SUB_HALF - 1));
    unsigned shift = 64 - (HIST_SUB_BITS + 1) - lz;

    return (shift << HIST_SUB_BITS) + (unsigned)(us >> shift);
}

/* The lowest and highest value counted by counter `idx` (idx < HIST_COUNTS). */
uint64_t hist_bucket_lowest(unsigned idx);
uint64_t hist_bucket_highest(unsigned idx);

/* Empty the histogram; hist_init() and hist_reset() are the same operation. */
void hist_init(struct hist *h);
void hist_reset(struct hist *h);

/* Record `count` occurrences of `us`. Branch-free apart from the index computation. */
static inline void hist_record_n(struct hist *h, uint64_t us, uint64_t count)
{
    uint64_t v = us < HIST_HIGHEST_US ? us : HIST_HIGHEST_US;

    h->counts[hist_index(v)] += count;
    h->overflow += us > HIST_HIGHEST_US ? count : 0;
    h->total += count;
    h->sum += (hist_u128)us * count;
    h->sumsq += (hist_u128)us * us * count;
    /* count 0 must leave min and max alone, so both conditions are part of the select */
    h->min = count && us < h->min ? us : h->min;
    h->max = count && us > h->max ? us : h->max;
}

static inline void hist_record(struct hist *h, uint64_t us)
{
    hist_record_n(h, us, 1);
}

/*
 * Record `us`, then, when it exceeds `interval_us` (the expected time between samples),
 * also us - interval, us - 2 * interval, ... down to the last value >= interval_us: the
 * samples a stalled closed-loop sender never took (coordinated omission). interval_us 0
 * records `us` alone. Costs O(buckets touched), not O(us / interval_us).
 */
void hist_record_corrected(struct hist *h, uint64_t us, uint64_t interval_us);

/* Add src's samples to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

uint64_t hist_count(const struct hist *h);
uint64_t hist_overflow(const struct hist *h); /* how many of hist_count() were clamped */
uint64_t hist_min(const struct hist *h);      /* exact; 0 when empty */
uint64_t hist_max(const struct hist *h);      /* exact, even above HIST_HIGHEST_US; 0 when empty */
double hist_mean(const struct hist *h);       /* exact; 0 when empty */
double hist_stdev(const struct hist *h);      /* population standard deviation; 0 when empty */

/*
 * The value at percentile p (0..100, clamped) by nearest rank: with n samples sorted, the
 * rank is max(1, ceil(p * n / 100)). Returned is the highest value of that sample's bucket,
 * capped at hist_max(): never below the exact value and at most 1/128 above it (for
 * samples above HIST_HIGHEST_US, exact for the clamped value). 0 when empty.
 */
uint64_t hist_percentile(const struct hist *h, double p);

/*
 * Write the percentile distribution in HdrHistogram's plain-text format (the
 * outputPercentileDistribution layout, 5 ticks per half distance), which its plotters
 * read. Values are divided by unit_scale: 1000.0 writes milliseconds. Returns 0 or -EIO.
 */
int hist_write_hdr_percentiles(const struct hist *h, FILE *out, double unit_scale);

#endif
