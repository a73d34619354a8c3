/* reports.h - the commands that read back what fetch and bench wrote. */
#ifndef RF_CLI_REPORTS_H
#define RF_CLI_REPORTS_H

#include <stddef.h>
#include <stdio.h>

struct bench_run;

int cmd_report(int argc, char **argv);
int cmd_bench_merge(int argc, char **argv);
int cmd_merge(int argc, char **argv);

/*
 * The HTML page for n runs (a comparison when n > 1): charts as inline SVG, no network
 * at view time. `title` NULL picks one. Returns 0 or -1 when writing failed.
 */
int report_html(FILE *f, const struct bench_run *runs, size_t n, const char *title);
/* The page of one report given as its JSON text (len bytes, named `name`), written to
 * path whole or not at all; messages start "ringfetch CMD:". 0 or -1. */
int report_write_html(const char *path, const char *name, const char *text, size_t len,
                      const char *title, const char *cmd);

#endif
