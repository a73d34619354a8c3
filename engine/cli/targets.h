/* targets.h - the bench --targets file: one request per line. */
#ifndef RF_CLI_TARGETS_H
#define RF_CLI_TARGETS_H

#include <stddef.h>
#include <stdio.h>

#include "ringfetch.h"

struct target_strings; /* what a target's pointers point into */

struct targets {
    rf_bench_target *t;
    struct target_strings *own;
    size_t n;
};

/*
 * Lines are `METHOD URL [@BODYFILE] [| Name: value]...`: fields separated by blanks,
 * headers after '|' separators; blank lines and lines starting with '#' are skipped.
 * `extra` headers (the command line's -H) are added to every target, and must outlive
 * the targets. Returns 0 with at least one target, or -1 with a message in err that
 * names the line. Free with targets_free() either way.
 */
int targets_parse(FILE *f, const char *const *extra, size_t n_extra, struct targets *out,
                  char *err, size_t errlen);
void targets_free(struct targets *ts);

#endif
