/*
 * api.h - what the C API test programs share: checks that print file:line and exit 1, the
 * clock, and an engine configured the way most of them want. The programs see nothing
 * of the library but include/ringfetch.h, as a user's program would.
 */
#ifndef RF_API_TEST_H
#define RF_API_TEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <ringfetch.h>

/* Every failed check ends the program at once: one failure is one line, with its place. */
#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define CHECK_INT(a, b)                                                               \
    do {                                                                              \
        long long a_ = (long long)(a), b_ = (long long)(b);                           \
        if (a_ != b_) {                                                               \
            fprintf(stderr, "FAIL %s:%d: %s == %s (%lld vs %lld)\n", __FILE__,        \
                    __LINE__, #a, #b, a_, b_);                                        \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* An rf_error compared by name, so a failure says "timeout vs ok", not "7 vs 0". */
#define CHECK_ERR(a, b)                                                               \
    do {                                                                              \
        rf_error a_ = (rf_error)(a), b_ = (rf_error)(b);                              \
        if (a_ != b_) {                                                               \
            fprintf(stderr, "FAIL %s:%d: %s == %s (%s vs %s)\n", __FILE__, __LINE__, \
                    #a, #b, rf_strerror(a_), rf_strerror(b_));                        \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define CHECK_STR(a, b)                                                               \
    do {                                                                              \
        const char *a_ = (a), *b_ = (b);                                              \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                      \
            fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,    \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");        \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

static inline uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000};

    nanosleep(&ts, NULL);
}

/*
 * The peak resident set of this program in KiB: VmHWM, the high-water mark of its own
 * memory. Not getrusage()'s ru_maxrss, which also counts the image the process had before
 * exec: a child that a large parent (the test runner) vforks inherits the parent's peak.
 */
static inline long max_rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");

    for (int i = 0; f && i < 200 && fgets(line, sizeof(line), f); i++)
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* getrusage()'s ru_maxrss in KiB (see max_rss_kb()). */
static inline long ru_maxrss_kb(void)
{
    struct rusage ru;

    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static inline unsigned long arg_num(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    CHECK(*s && *end == '\0');
    return v;
}

/* Create an engine or fail with the reason rf_engine_create() wrote. */
static inline rf_engine *make_engine(rf_config *cfg)
{
    char err[256] = "";
    rf_engine *eng = NULL;
    rf_error rc;

    cfg->errbuf = err;
    cfg->errbuf_size = sizeof(err);
    rc = rf_engine_create(&eng, cfg);
    if (rc != RF_OK) {
        fprintf(stderr, "FAIL rf_engine_create: %s: %s\n", rf_strerror(rc), err);
        exit(1);
    }
    cfg->errbuf = NULL;
    cfg->errbuf_size = 0;
    return eng;
}

/* rf_step() until it returns 0, at most `limit_s` seconds; the last return value. */
static inline int drive(rf_engine *eng, int step_ms, double limit_s)
{
    uint64_t end = mono_us() + (uint64_t)(limit_s * 1e6);
    int ret = 1;

    for (long i = 0; i < 100000000L && ret > 0 && mono_us() < end; i++)
        ret = rf_step(eng, step_ms);
    return ret;
}

/* The bytes nginx's /static/ files hold: byte i is i & 0xff. */
static inline int static_pattern_ok(const void *p, size_t n, size_t from)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)((from + i) & 0xff))
            return 0;
    return 1;
}

#endif
