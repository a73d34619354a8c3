/* test_hist.c - the histogram against exact sorted samples, merging, back-fill and HDR text. */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "bench/hist.h"

#define N 100000
#define MAX_SAMPLES (8 * N)

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

/* splitmix64: a fixed seed, so a failure reproduces */
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rnd_range(uint64_t lo, uint64_t hi) /* inclusive */
{
    return lo + rnd() % (hi - lo + 1);
}

static double rnd_unit(void) /* (0, 1] */
{
    return (double)((rnd() >> 11) + 1) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

static int same_hist(const struct hist *a, const struct hist *b)
{
    return memcmp(a->counts, b->counts, sizeof(a->counts)) == 0 && a->sum == b->sum &&
           a->sumsq == b->sumsq && a->total == b->total && a->min == b->min && a->max == b->max &&
           a->overflow == b->overflow;
}

/* Percentiles as exact fractions, so the expected rank is computed without floating point. */
static const struct {
    double p;
    uint64_t num, den;
} pcts[] = {{0, 0, 1},     {50, 1, 2},        {75, 3, 4},           {90, 9, 10},
            {99, 99, 100}, {99.9, 999, 1000}, {99.99, 9999, 10000}, {100, 1, 1}};

/* The value may only exceed the exact one by its bucket's width: < 1/128, inside 1%. */
static int close_above(uint64_t got, uint64_t exact)
{
    return got >= exact && (got - exact) * 128 <= exact && (got - exact) * 100 <= exact;
}

static void check_percentile(const struct hist *h, const uint64_t *sorted, uint64_t n, double p,
                             uint64_t num, uint64_t den)
{
    hist_u128 r = ((hist_u128)num * n + den - 1) / den; /* ceil(p * n / 100) */
    uint64_t rank = r < 1 ? 1 : (uint64_t)r;
    uint64_t got = hist_percentile(h, p), exact = sorted[rank - 1];

    if (!CHECK(close_above(got, exact)))
        fprintf(stderr, "  p%g of %" PRIu64 ": %" PRIu64 " vs exact %" PRIu64 "\n", p, n, got,
                exact);
}

/* Record vals[0..n) and compare every statistic with the exact one. */
static void check_distribution(const char *name, const uint64_t *vals, uint64_t n)
{
    static struct hist h;
    static uint64_t sorted[MAX_SAMPLES];
    int failed = check_failures();
    hist_u128 sum = 0;
    uint64_t min = UINT64_MAX, max = 0, over = 0;
    long double mean, dev = 0;

    hist_init(&h);
    for (uint64_t i = 0; i < n; i++) {
        hist_record(&h, vals[i]);
        sum += vals[i];
        min = vals[i] < min ? vals[i] : min;
        max = vals[i] > max ? vals[i] : max;
        over += vals[i] > HIST_HIGHEST_US;
        /* the buckets hold clamped values: those are what percentiles are exact for */
        sorted[i] = vals[i] < HIST_HIGHEST_US ? vals[i] : HIST_HIGHEST_US;
    }
    qsort(sorted, n, sizeof(sorted[0]), cmp_u64);
    mean = (long double)sum / n;
    for (uint64_t i = 0; i < n; i++)
        dev += ((long double)vals[i] - mean) * ((long double)vals[i] - mean);
    dev = sqrtl(dev / n);

    CHECK_UINT(hist_count(&h), n);
    CHECK_UINT(hist_min(&h), min);
    CHECK_UINT(hist_max(&h), max);
    CHECK_UINT(hist_overflow(&h), over);
    CHECK(hist_mean(&h) == (double)sum / (double)n);
    CHECK(fabsl(hist_stdev(&h) - dev) <= 1e-9L * dev + 1e-6L);
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
        check_percentile(&h, sorted, n, pcts[i].p, pcts[i].num, pcts[i].den);
    /* a sweep in steps of 0.1: p = k / 10 exactly as a fraction */
    for (uint64_t k = 0; k <= 1000; k++)
        check_percentile(&h, sorted, n, (double)k / 10.0, k, 1000);
    CHECK_UINT(hist_percentile(&h, 100), sorted[n - 1]);
    CHECK_UINT(hist_percentile(&h, 250), sorted[n - 1]);
    CHECK(close_above(hist_percentile(&h, -3), sorted[0]));
    if (check_failures() != failed)
        fprintf(stderr, "  in distribution \"%s\"\n", name);
}

static void test_layout(void)
{
    int ok = 1;

    CHECK_UINT(HIST_COUNTS, 2560);
    CHECK(HIST_HIGHEST_US >= 60000000u);
    CHECK_UINT(hist_bucket_lowest(0), 0);
    CHECK_UINT(hist_bucket_highest(255), 255);
    CHECK_UINT(hist_bucket_highest(HIST_COUNTS - 1), HIST_HIGHEST_US);
    for (unsigned i = 0; i < HIST_COUNTS && ok; i++) {
        uint64_t lo = hist_bucket_lowest(i), hi = hist_bucket_highest(i);

        ok = CHECK_UINT(hist_index(lo), i) && CHECK_UINT(hist_index(hi), i) &&
             CHECK(i + 1 == HIST_COUNTS || hist_bucket_lowest(i + 1) == hi + 1) &&
             CHECK(i < 256 ? lo == hi : (hi - lo + 1) * 128 <= lo);
        if (!ok)
            fprintf(stderr, "  at counter %u\n", i);
    }
}

static void test_empty(void)
{
    static struct hist h, fresh;

    hist_init(&fresh);
    hist_init(&h);
    CHECK_UINT(hist_count(&h), 0);
    CHECK_UINT(hist_min(&h), 0);
    CHECK_UINT(hist_max(&h), 0);
    CHECK(hist_mean(&h) == 0.0 && hist_stdev(&h) == 0.0);
    CHECK_UINT(hist_percentile(&h, 50), 0);
    hist_record_n(&h, 77, 0); /* count 0 changes nothing */
    CHECK(same_hist(&h, &fresh));
    hist_record(&h, 1);
    hist_record(&h, 0); /* 0 counts, as the lowest */
    CHECK_UINT(hist_count(&h), 2);
    CHECK_UINT(hist_min(&h), 0);
    CHECK_UINT(hist_percentile(&h, 50), 0);
    CHECK_UINT(hist_percentile(&h, 51), 1);
    hist_record_n(&h, 70000000, 3);
    CHECK_UINT(hist_overflow(&h), 3);
    hist_reset(&h);
    CHECK(same_hist(&h, &fresh));
}

static uint64_t *gen_uniform(uint64_t *v, uint64_t lo, uint64_t hi)
{
    for (int i = 0; i < N; i++)
        v[i] = rnd_range(lo, hi);
    return v + N;
}

static void test_distributions(void)
{
    static uint64_t all[MAX_SAMPLES];
    uint64_t *p = all, *start;

    start = p;
    p = gen_uniform(p, 1, 60000000);
    check_distribution("uniform 1us..60s", start, N);

    start = p;
    p = gen_uniform(p, 0, 2000);
    check_distribution("uniform 0..2000us", start, N);

    start = p;
    for (int i = 0; i < N; i++)
        *p++ = (uint64_t)(-2000.0 * log(rnd_unit()));
    check_distribution("exponential, mean 2ms", start, N);

    /* Pareto, alpha 1.2 from 100 us: a long tail running past the top into overflow */
    start = p;
    for (int i = 0; i < N; i++)
        *p++ = (uint64_t)(100.0 * pow(rnd_unit(), -1.0 / 1.2));
    check_distribution("pareto", start, N);

    start = p;
    for (int i = 0; i < N; i++)
        *p++ = 12345;
    check_distribution("constant", start, N);

    /* the values on either side of each counter's edges */
    start = p;
    for (int i = 0; i < N; i++) {
        unsigned idx = (unsigned)rnd_range(1, HIST_COUNTS - 2);
        uint64_t edge[4] = {hist_bucket_lowest(idx), hist_bucket_highest(idx),
                            hist_bucket_lowest(idx) - 1, hist_bucket_highest(idx) + 1};

        *p++ = edge[rnd() & 3];
    }
    check_distribution("bucket edges", start, N);

    /* the ends of the range and beyond it */
    start = p;
    for (int i = 0; i < N; i++) {
        uint64_t far = rnd_range(HIST_HIGHEST_US + 1, UINT64_C(1) << 40);
        uint64_t ends[6] = {0, 1, 60000000, HIST_HIGHEST_US, HIST_HIGHEST_US + 1, far};

        *p++ = ends[rnd() % 6];
    }
    check_distribution("range ends and above", start, N);

    /*
     * 1000 values each 1.2% above the last: a neighbouring rank lies outside the allowed
     * error, so p * n / 100 landing a hair above an integer (16.1% of 1000 computes as
     * 161.00000000000003) must not move the answer to the next sample.
     */
    start = p;
    for (int i = 0; i < 1000; i++)
        *p++ = (uint64_t)(300.0 * pow(1.012, i));
    check_distribution("geometric, 1000 samples", start, 1000);

    check_distribution("all of them", all, (uint64_t)(p - all));
    check_distribution("one sample", all + 17, 1);
}

static void test_merge(void)
{
    static struct hist a, b, both, empty;

    hist_init(&a);
    hist_init(&b);
    hist_init(&both);
    hist_init(&empty);
    for (int i = 0; i < 2 * N; i++) {
        uint64_t v = (uint64_t)(500.0 * pow(rnd_unit(), -1.0 / 1.5));

        hist_record(rnd() & 1 ? &a : &b, v);
        hist_record(&both, v);
    }
    CHECK(hist_count(&a) > 0 && hist_count(&b) > 0);
    hist_merge(&a, &b);
    CHECK(same_hist(&a, &both));
    hist_merge(&a, &empty);
    CHECK(same_hist(&a, &both));
    hist_merge(&empty, &both);
    CHECK(same_hist(&empty, &both));
    CHECK(hist_stdev(&a) == hist_stdev(&both));
    CHECK_UINT(hist_percentile(&a, 99.9), hist_percentile(&both, 99.9));
}

/* The definition, one record per missing sample. */
static void corrected_by_loop(struct hist *h, uint64_t us, uint64_t d)
{
    hist_record(h, us);
    if (d == 0 || us <= d)
        return;
    for (uint64_t m = us - d; m >= d; m -= d)
        hist_record(h, m);
}

static void test_corrected(void)
{
    static const uint64_t cases[][2] = {
        {1000, 100},
        {1000, 1000},
        {999, 1000},
        {1001, 1000},
        {2000, 1000},
        {300, 0},
        {0, 0},
        {0, 5},
        {5000000, 7},
        {1234567, 1},
        {1000000000, 333333},
        {HIST_HIGHEST_US + 123457, 1000},
        {10000000000u, 100000000},
        {HIST_HIGHEST_US * 3, HIST_HIGHEST_US / 2},
    };
    static struct hist fast, slow;

    hist_init(&fast);
    hist_init(&slow);
    hist_record(&fast, 500); /* not empty: the first back-fill (down to 100) lowers min */
    hist_record(&slow, 500);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t us = cases[i][0], d = cases[i][1];
        uint64_t before = hist_count(&fast);
        int failed = check_failures();

        hist_record_corrected(&fast, us, d);
        corrected_by_loop(&slow, us, d);
        CHECK_UINT(hist_count(&fast) - before, d && us / d > 1 ? us / d : 1);
        CHECK(same_hist(&fast, &slow));
        if (check_failures() != failed)
            fprintf(stderr, "  correcting %" PRIu64 " us at interval %" PRIu64 "\n", us, d);
    }
    /* 10 samples at 1 ms; one stalled for 100 ms at a 1 ms interval adds 99 */
    hist_reset(&fast);
    for (int i = 0; i < 10; i++)
        hist_record_corrected(&fast, 1000, 1000);
    hist_record_corrected(&fast, 100000, 1000);
    CHECK_UINT(hist_count(&fast), 110);
    CHECK_UINT(hist_min(&fast), 1000);
    CHECK_UINT(hist_percentile(&fast, 50), 45055); /* rank 55 = 45 ms, bucket top 45055 */
    CHECK_UINT(hist_percentile(&fast, 100), 100000);
}

/* Everything written, as one string. */
static char *hdr_text(const struct hist *h, double scale)
{
    FILE *f = tmpfile();
    char *text;
    long len;

    if (!f)
        return NULL;
    CHECK_INT(hist_write_hdr_percentiles(h, f, scale), 0);
    len = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)len + 1);
    if (text && fread(text, 1, (size_t)len, f) != (size_t)len)
        text[0] = 0;
    fclose(f);
    return text;
}

#define HDR_HEAD "       Value     Percentile TotalCount 1/(1-Percentile)\n\n"

static void test_hdr_exact(void)
{
    static struct hist h;
    char *t;

    hist_init(&h);
    t = hdr_text(&h, 1000.0);
    CHECK_STR(t, HDR_HEAD "#[Mean    =        0.000, StdDeviation   =        0.000]\n"
                          "#[Max     =        0.000, Total count    =            0]\n"
                          "#[Buckets =           19, SubBuckets     =          256]\n");
    free(t);
    hist_record(&h, 5000);
    t = hdr_text(&h, 1000.0);
    CHECK_STR(t, HDR_HEAD "       5.000 0.000000000000          1           1.00\n"
                          "       5.000 1.000000000000          1\n"
                          "#[Mean    =        5.000, StdDeviation   =        0.000]\n"
                          "#[Max     =        5.000, Total count    =            1]\n"
                          "#[Buckets =           19, SubBuckets     =          256]\n");
    free(t);
}

/* A full distribution read back as a plotter would. */
static void test_hdr_parse(void)
{
    static const double first_levels[] = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6};
    static struct hist h;
    char *t, *line, *save = NULL;
    double prev_value = -1, prev_pct = -1, mean, sd, max;
    uint64_t prev_count = 0, total = 0;
    int rows = 0, last_seen = 0, buckets = 0, sub = 0, footer = 0;

    hist_init(&h);
    for (int i = 0; i < N; i++)
        hist_record(&h, (uint64_t)(300.0 - 3000.0 * log(rnd_unit())));
    t = hdr_text(&h, 1000.0);
    if (!CHECK(t && strncmp(t, HDR_HEAD, strlen(HDR_HEAD)) == 0))
        goto out;
    for (line = strtok_r(t + strlen(HDR_HEAD), "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        double value, pct, inv;
        uint64_t count;
        int n;

        if (line[0] == '#') {
            footer += sscanf(line, "#[Mean    = %lf, StdDeviation   = %lf]", &mean, &sd) == 2;
            footer +=
                sscanf(line, "#[Max     = %lf, Total count    = %" SCNu64 "]", &max, &total) == 2;
            footer += sscanf(line, "#[Buckets = %d, SubBuckets     = %d]", &buckets, &sub) == 2;
            continue;
        }
        n = sscanf(line, "%lf %lf %" SCNu64 " %lf", &value, &pct, &count, &inv);
        if (!CHECK(!last_seen && footer == 0 && (n == 4 || n == 3)))
            break;
        CHECK(pct > prev_pct && value >= prev_value && count >= prev_count);
        if (rows < (int)(sizeof(first_levels) / sizeof(first_levels[0])))
            CHECK(fabs(pct - first_levels[rows]) < 1e-12);
        if (n == 4)
            CHECK(fabs(inv - 1.0 / (1.0 - pct)) <= 0.005 + 1e-6 * inv);
        if (n == 3) {
            last_seen = 1;
            CHECK(pct == 1.0);
            CHECK_UINT(count, N);
            CHECK(fabs(value - (double)hist_max(&h) / 1000.0) < 0.0005);
        }
        prev_value = value, prev_pct = pct, prev_count = count, rows++;
    }
    CHECK(last_seen);
    CHECK(rows > 60);
    CHECK_INT(footer, 3);
    CHECK(fabs(mean - hist_mean(&h) / 1000.0) < 0.0005);
    CHECK(fabs(sd - hist_stdev(&h) / 1000.0) < 0.0005);
    CHECK(fabs(max - (double)hist_max(&h) / 1000.0) < 0.0005);
    CHECK_UINT(total, N);
    CHECK_INT(buckets, 19);
    CHECK_INT(sub, 256);
out:
    free(t);
}

int main(void)
{
    test_layout();
    test_empty();
    test_distributions();
    test_merge();
    test_corrected();
    test_hdr_exact();
    test_hdr_parse();
    return check_finish("test_hist");
}
