/* fetch.h - what the files of `ringfetch fetch` share: the input reader, the rows, resuming. */
#ifndef RF_CLI_FETCH_H
#define RF_CLI_FETCH_H

#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "lines.h"
#include "ringfetch.h"

/* ---- input.c: URL arguments and files, read only when poll() says so ---- */

struct source {
    const char *arg; /* the URL, or the file's path ("-": standard input) */
    int is_file;
    int fd;
    int eof;
};

/* What a request line handed to the engine becomes in its row. */
struct pending {
    uint64_t line, index;
};

struct input {
    pthread_mutex_t mu; /* the pull callback may run on any ring thread */
    struct source *src;
    size_t n_src, cur;
    char *raw; /* bytes read and not yet taken into lines */
    size_t pos, len;
    struct lines ls;
    uint64_t line;     /* lines taken so far, of all sources: the last one's number */
    uint64_t requests; /* request lines so far: the next one's index */
    /* which request lines make requests */
    uint64_t shard_k, shard_n; /* line L when (L - 1) mod N = K; N 0: every line */
    uint64_t done_line;        /* --resume: lines up to this one have their rows */
    uint64_t done_index;       /* and the row of that line has this index */
    int resuming;
    /* the requests given to the engine whose rows are still to come, oldest first */
    struct pending *q;
    size_t q_cap, q_head, q_len;
    int ended; /* no more requests: the input's end, or an error */
    int err;   /* errno of a read error, or -1 for a resume mismatch */
    const char *err_path;
    char why[256]; /* the message for err */
};

/* Take the sources (their arg and is_file set) and open the files. 0, or -1 said (exit 2). */
int input_open(struct input *in, struct source *src, size_t n);
void input_close(struct input *in);
/* The descriptor to poll for reading now, or -1 (no file to read, or bytes still unread). */
int input_poll_fd(struct input *in);
/* One read() of the current file, which poll() found readable. */
void input_read(struct input *in);
/* The rf_config.pull callback: the next request line, RF_PULL_AGAIN, or 0 at the end. */
int input_pull(void *userp, rf_request *req);
/* The row numbers of the oldest request whose result is due. 0, or -1 when none is known. */
int input_pop(struct input *in, void *userdata, struct pending *p);
/* Lines read so far. */
uint64_t input_lines(struct input *in);

/* ---- rows.c: one row per result, JSONL or CSV ---- */

enum row_format { ROWS_JSONL, ROWS_CSV };

/* The CSV header line (with its newline); the body column only with keep_body. */
const char *rows_csv_header(int keep_body);
/* The column numbers of `line` and `index` in that header. */
#define CSV_COL_INDEX 0
#define CSV_COL_LINE 15
void rows_format(struct buf *b, enum row_format fmt, int keep_body, const rf_result *r,
                 const struct pending *p);

/* ---- resume.c: what an earlier run left in the output file ---- */

struct resume {
    int has_row;          /* a complete row is there */
    uint64_t line, index; /* the last complete row's */
    int has_header;       /* CSV: the header is there */
    uint64_t cut;         /* bytes of a torn last row taken off */
};

/*
 * Read the rows already in the output file (open on fd for reading and writing), drop a
 * torn last row (truncate the file after the last complete one) and report the last row.
 * 0, or -1 with the reason in why (not a file of this format, another CSV header).
 */
int resume_scan(int fd, enum row_format fmt, const char *header, struct resume *rs, char *why,
                size_t why_len);

/* ---- fetchopts.c: the options, and messages naming option and value ---- */

enum {
    O_TIMEOUT = 0x101,
    O_CONNECT_TIMEOUT,
    O_MAX_BODY,
    O_FORMAT,
    O_RESOLVE,
    O_DNS_SERVER,
    O_WINDOW,
    O_NO_KEEPALIVE,
    O_KEEP_BODY,
    O_DEFAULT_SCHEME,
    O_MAX_REDIRS,
    O_RETRIES,
    O_RETRY_ON,
    O_RETRY_DELAY,
    O_PER_HOST,
    O_HOST_RATE,
    O_FSYNC_EVERY,
    O_RESUME,
    O_SHARD,
    O_SHARDS,
};

extern const struct option fetch_opts[];

void fetch_usage(FILE *f);
/* "Try 'ringfetch fetch --help'." Returns 2, the exit status of a usage error. */
int try_help(void);
/* "ringfetch fetch: MSG". Returns 2. */
int usage_error(const char *msg);
/* "ringfetch fetch: OPT: bad value 'VALUE' (WHAT)". Returns 2. */
int bad_value(const char *opt, const char *value, const char *what);
/* The option as written: "--timeout" (li, getopt_long()'s long index) or "-c". */
const char *opt_name(int li, int opt, char *buf, size_t len);
/* What getopt_long() refused (opterr 0: it said nothing): ':' or '?'. Returns 2. */
int option_error(int opt, char **argv, int optind_now);
/* Why rf_engine_create() refused cfg (why: its errbuf), in our option names. */
void say_engine_error(const rf_config *cfg, const char *why, rf_error err);
/* "K/N" with 0 <= K < N. 0 or -1. */
int parse_shard(const char *s, uint64_t *k, uint64_t *n);
/* The shard of an indexed batch job, without --shard: 0 (none: *n stays 0), or 2 said. */
int shard_from_env(unsigned shards, uint64_t *k, uint64_t *n, const char **from);

#endif
