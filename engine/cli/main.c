/* main.c - the ringfetch command: subcommand dispatch and --version. */
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "reports.h"
#include "ringfetch.h"

static void usage(FILE *f)
{
    fputs("usage: ringfetch fetch [options] [URL...]   fetch many URLs, one result row each\n"
          "       ringfetch bench [options] URL        load-test one URL (wrk-like report)\n"
          "       ringfetch report A.json [B.json ...] -o OUT.html [--title T]\n"
          "                                            bench --json reports as an HTML page\n"
          "       ringfetch bench-merge A.json B.json ... [-o MERGED.json] [--html FILE]\n"
          "                                            add up the reports of several generators\n"
          "       ringfetch merge -o OUT [--allow-missing] [--input FILE] SHARD_FILE...\n"
          "                                            join fetch --shard outputs, checked\n"
          "       ringfetch --version\n"
          "Run 'ringfetch fetch --help' for the options.\n",
          f);
}

/* Connections are direct descriptors, but each ring's table is capped by the soft limit. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    raise_nofile();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("ringfetch %s (%s)\n", rf_version(), rf_version_details());
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "fetch") == 0)
        return cmd_fetch(argc - 1, argv + 1);
    if (strcmp(argv[1], "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(argv[1], "bench-merge") == 0)
        return cmd_bench_merge(argc - 1, argv + 1);
    if (strcmp(argv[1], "merge") == 0)
        return cmd_merge(argc - 1, argv + 1);
    fprintf(stderr, "ringfetch: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
