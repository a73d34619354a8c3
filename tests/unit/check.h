/* check.h - the assertions, counters and guard-page buffers shared by the unit tests. */
#ifndef RF_CHECK_H
#define RF_CHECK_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A test that cannot run here (no io_uring, no network) exits with this. */
#define CHECK_SKIP 77

/* Counters live in each test binary; a test is one translation unit plus the library. */
static int check_total_ __attribute__((unused));
static int check_failed_ __attribute__((unused));

static inline void check_fail_(const char *file, int line)
{
    check_failed_++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
}

/* Bytes printed escaped and capped, so a binary or huge mismatch stays one readable line. */
static inline void check_put_mem_(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t shown = n < 96 ? n : 96;

    if (!p) {
        fputs("(null)", stderr);
        return;
    }
    fputc('"', stderr);
    for (size_t i = 0; i < shown; i++) {
        if (b[i] == '"' || b[i] == '\\')
            fprintf(stderr, "\\%c", b[i]);
        else if (b[i] >= 0x20 && b[i] < 0x7f)
            fputc(b[i], stderr);
        else
            fprintf(stderr, "\\x%02x", b[i]);
    }
    fputc('"', stderr);
    if (shown < n)
        fprintf(stderr, "...(%zu bytes)", n);
}

static inline int check_true_(int ok, const char *expr, const char *file, int line)
{
    check_total_++;
    if (!ok) {
        check_fail_(file, line);
        fprintf(stderr, "%s\n", expr);
    }
    return ok;
}

static inline int check_int_(long long a, long long b, const char *ea, const char *eb,
                             const char *file, int line)
{
    check_total_++;
    if (a == b)
        return 1;
    check_fail_(file, line);
    fprintf(stderr, "%s == %s (%lld vs %lld)\n", ea, eb, a, b);
    return 0;
}

static inline int check_uint_(unsigned long long a, unsigned long long b, const char *ea,
                              const char *eb, const char *file, int line)
{
    check_total_++;
    if (a == b)
        return 1;
    check_fail_(file, line);
    fprintf(stderr, "%s == %s (%llu vs %llu)\n", ea, eb, a, b);
    return 0;
}

static inline int check_mem_(const void *a, size_t alen, const void *b, size_t blen,
                             const char *ea, const char *eb, const char *file, int line)
{
    int ok;

    check_total_++;
    if (!a || !b)
        ok = a == b && alen == blen;
    else
        ok = alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
    if (ok)
        return 1;
    check_fail_(file, line);
    fprintf(stderr, "%s == %s (", ea, eb);
    check_put_mem_(a, alen);
    fputs(" vs ", stderr);
    check_put_mem_(b, blen);
    fputs(")\n", stderr);
    return 0;
}

static inline int check_str_(const char *a, const char *b, const char *ea, const char *eb,
                             const char *file, int line)
{
    return check_mem_(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0, ea, eb, file, line);
}

/* Each macro evaluates its arguments once and yields 1 on success, 0 on failure. */
#define CHECK(cond) check_true_(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_INT(a, b) check_int_((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_UINT(a, b)                                                                      \
    check_uint_((unsigned long long)(a), (unsigned long long)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR(a, b) check_str_((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_MEM(a, alen, b, blen)                                                           \
    check_mem_((a), (size_t)(alen), (b), (size_t)(blen), #a, #b, __FILE__, __LINE__)

/* Failures so far: a table-driven test compares it around a case to name the case. */
static inline int check_failures(void)
{
    return check_failed_;
}

/* Print the summary line; the return value is the test's exit status. */
static inline int check_finish(const char *name)
{
    fprintf(stderr, "%s: %d checks, %d failed\n", name, check_total_, check_failed_);
    return check_failed_ ? 1 : 0;
}

/* Report why the test did not run; return the result from main(). */
static inline int check_skip(const char *name, const char *why)
{
    fprintf(stderr, "%s: skipped: %s\n", name, why);
    return CHECK_SKIP;
}

static inline size_t guard_page_size_(void)
{
    long ps = sysconf(_SC_PAGESIZE);

    return ps > 0 ? (size_t)ps : 4096;
}

/*
 * Copy n bytes so that the last one sits just before a PROT_NONE page: a parser that
 * reads one byte past the end faults instead of reading stale memory. A failed mmap
 * aborts, since a test that silently loses its guard proves nothing.
 */
static inline void *guard_copy(const void *p, size_t n)
{
    size_t ps = guard_page_size_();
    size_t data_pages = (n + ps - 1) / ps;
    unsigned char *base;

    base = mmap(NULL, (data_pages + 1) * ps, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED || mprotect(base + data_pages * ps, ps, PROT_NONE) != 0) {
        perror("guard_copy");
        abort();
    }
    if (n)
        memcpy(base + data_pages * ps - n, p, n);
    return base + data_pages * ps - n;
}

/* Unmap a guard_copy() of the same n bytes. */
static inline void guard_free(void *p, size_t n)
{
    size_t ps = guard_page_size_();
    size_t data_pages = (n + ps - 1) / ps;

    if (p)
        munmap((unsigned char *)p + n - data_pages * ps, (data_pages + 1) * ps);
}

#endif
