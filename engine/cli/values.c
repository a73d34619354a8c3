/* values.c - what the commands share: option value parsers, JSON/CSV quoting, bodies. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ringfetch.h"

int parse_duration_ms(const char *s, uint64_t *ms)
{
    char *end;
    double v, mult = 1000.0;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        mult = 1.0;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60000.0;
    else if (strcmp(end, "h") == 0)
        mult = 3600000.0;
    else if (*end && strcmp(end, "s") != 0)
        return -1;
    if (v * mult > 1e12)
        return -1;
    *ms = (uint64_t)(v * mult + 0.5);
    return 0;
}

int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    errno = 0;
    if (*s == '-')
        return -1;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    if (*s == '-')
        return -1;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

void json_mem(FILE *f, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;

    putc('"', f);
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            putc('\\', f);
            putc(p[i], f);
        } else if (p[i] < 0x20 || p[i] >= 0x7f) {
            /* Bytes from the network or the input are not guaranteed UTF-8: escaping
             * them keeps every row valid JSON. */
            fputs("\\u00", f);
            putc(hex[p[i] >> 4], f);
            putc(hex[p[i] & 15], f);
        } else {
            putc(p[i], f);
        }
    }
    putc('"', f);
}

void json_str(FILE *f, const char *s) { json_mem(f, s, strlen(s)); }

void csv_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    putc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            putc('"', f);
        putc(*s, f);
    }
    putc('"', f);
}

double mono_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int load_data(const char *arg, char **data, size_t *len)
{
    FILE *f;
    long n;

    *data = NULL;
    *len = 0;
    if (arg[0] != '@') {
        *data = strdup(arg);
        *len = strlen(arg);
        return *data ? 0 : -1;
    }
    f = fopen(arg + 1, "rb");
    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        if (f)
            fclose(f);
        return -1;
    }
    *data = malloc((size_t)n + 1);
    if (!*data || fread(*data, 1, (size_t)n, f) != (size_t)n) {
        free(*data);
        *data = NULL;
        fclose(f);
        return -1;
    }
    fclose(f);
    *len = (size_t)n;
    return 0;
}

int valid_header(const char *h)
{
    rf_request r = {.headers = &h, .n_headers = 1};

    return rf_check_request(&r) == RF_OK;
}

int valid_method(const char *m)
{
    rf_request r = {.method = m};

    return rf_check_request(&r) == RF_OK;
}

int tls_option(int opt, const char *arg, const char **ca_file, int *insecure)
{
    if (opt == 'k') {
        *insecure = 1;
        return 0;
    }
    /* Checked now, not at the first https URL: a typo is a usage error, not 10,000 rows. */
    if (access(arg, R_OK))
        return -1;
    *ca_file = arg;
    return 0;
}
