/*
 * fuzz_targets.c - the bench --targets file parser on arbitrary bytes read through
 * fmemopen(). A parsed file must give at least one target, each with a method and a URL
 * (non-empty, no blanks), at most 64 + extra headers each holding a colon and no line
 * break, and the command line's extra headers last; a refused file must say which line.
 * Body files ('@PATH') are not fuzzed: '@' is replaced, so no input reads the filesystem.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "targets.h"

static const char *const extra[] = {"X-Extra: 1"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1), err[512];
    struct targets ts;
    FILE *f;
    int ret;

    if (!copy)
        return 0;
    for (size_t i = 0; i < size; i++)
        copy[i] = data[i] == '@' ? '%' : (char)data[i];
    f = fmemopen(copy, size ? size : 1, "r");
    if (!f) {
        free(copy);
        return 0;
    }
    err[0] = '\0';
    ret = targets_parse(f, extra, 1, &ts, err, sizeof(err));
    if (ret == 0) {
        ENSURE(ts.n >= 1);
        for (size_t i = 0; i < ts.n; i++) {
            const rf_bench_target *t = &ts.t[i];

            ENSURE(t->method && *t->method && !strpbrk(t->method, " \t\r\n"));
            ENSURE(t->url && *t->url && !strpbrk(t->url, " \t\r\n"));
            ENSURE(t->n_headers >= 1 && t->n_headers <= 65);
            ENSURE(strcmp(t->headers[t->n_headers - 1], extra[0]) == 0);
            for (size_t h = 0; h < t->n_headers; h++)
                ENSURE(strchr(t->headers[h], ':') && !strpbrk(t->headers[h], "\r\n"));
            ENSURE(!t->body && t->body_len == 0);
        }
    } else {
        ENSURE(ret == -1 && err[0]);
    }
    targets_free(&ts);
    fclose(f);
    free(copy);
    return 0;
}
