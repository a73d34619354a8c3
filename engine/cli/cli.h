/* cli.h - what the command line tool's files share: option value parsing and the commands. */
#ifndef RF_CLI_H
#define RF_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int cmd_fetch(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* "1.5" seconds, or with a unit "250ms", "2s", "1m". Returns 0 or -1. */
int parse_duration_ms(const char *s, uint64_t *ms);
/* "1000", "64k", "1M", "2G" (powers of 1024). Returns 0 or -1. */
int parse_size(const char *s, uint64_t *out);
/* A positive integer no larger than max. Returns 0 or -1. */
int parse_uint(const char *s, unsigned max, unsigned *out);
/* The same, 0 allowed. */
int parse_count(const char *s, unsigned max, unsigned *out);
/* A number above 0 ("10", "0.5"). Returns 0 or -1. */
int parse_positive(const char *s, double *out);

/* A growing byte buffer. After a failed allocation `oom` is set and nothing more is added. */
struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

void buf_put(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);
/*
 * Bytes as a JSON string (with quotes) / a CSV field (RFC 4180 quoting when needed). Valid
 * UTF-8 is kept as it is; each byte that does not begin a well-formed UTF-8 sequence is
 * written as U+FFFD. JSON escapes '"', '\\' and the control characters (0x00-0x1f, 0x7f).
 */
void buf_json(struct buf *b, const void *data, size_t len);
void buf_csv(struct buf *b, const void *data, size_t len);

/* Write s as a JSON string (with quotes), by the rule of buf_json(). */
void json_str(FILE *f, const char *s);
void json_mem(FILE *f, const void *data, size_t len);

double mono_seconds(void);

/* A request body: the argument itself, or with "@FILE" the file's bytes. 0 or -1. */
int load_data(const char *arg, char **data, size_t *len);
/* "Name: value" on one line. */
int valid_header(const char *h);
/* A method is an HTTP token. */
int valid_method(const char *m);

/* The https options fetch and bench share: --cacert FILE (OPT_CACERT) and -k. */
#define OPT_CACERT 0x100
/* Take one of them into *ca_file / *insecure. -1 when the CA file cannot be read. */
int tls_option(int opt, const char *arg, const char **ca_file, int *insecure);

#endif
