/* fetch.c - `ringfetch fetch`: URLs in, one JSONL/CSV row per non-blank line out, in order. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "lines.h"
#include "ringfetch.h"

#define MAX_HEADERS 64
#define MAX_RESOLVE 256

enum fmt { FMT_JSONL, FMT_CSV };

struct fetch {
    /* input */
    char **args; /* URLs given on the command line */
    int nargs, next_arg;
    FILE *in;
    char line[LINE_MAX_BYTES + 2];
    /* the request every URL shares */
    const char *method;
    const char *headers[MAX_HEADERS];
    size_t nheaders;
    char *body;
    size_t body_len;
    /* output */
    FILE *out;
    enum fmt fmt;
    int quiet, progress;
    uint64_t total; /* lines to do when known, else 0 */
    uint64_t status_class[6];
    uint64_t errors[RF_ERR__LAST];
    uint64_t rows;
    double t0, last_progress;
};

static rf_engine *volatile g_engine; /* for the signal handler only */
static volatile sig_atomic_t g_signal;

static void on_signal(int sig)
{
    g_signal = sig;
    if (g_engine)
        rf_cancel(g_engine);
}

static void fetch_usage(FILE *f)
{
    fputs("usage: ringfetch fetch [options] [URL...]\n"
          "  -i, --input FILE        read URLs from FILE, one per line ('-' = stdin)\n"
          "  -c, --concurrency N     requests at once (default 100)\n"
          "  -t, --threads N         ring threads sharing them (default 1)\n"
          "      --timeout SEC       whole-request deadline incl. DNS and body (default 30)\n"
          "      --connect-timeout SEC  connect deadline (default 10)\n"
          "  -X, --request METHOD    request method (default GET, POST with --data)\n"
          "  -H, --header 'N: v'     extra request header (repeatable)\n"
          "  -d, --data DATA         request body; @FILE reads it from FILE\n"
          "      --max-body SIZE     fail a response with a larger body (too_large)\n"
          "  -o, --output FILE       write rows to FILE instead of stdout\n"
          "      --format jsonl|csv  row format (default jsonl)\n"
          "      --resolve H:P:ADDR  use ADDR for host H port P (repeatable)\n"
          "      --dns-server A[:P]  DNS server instead of /etc/resolv.conf\n"
          "      --window N          ordered-result window (default 64 x concurrency)\n"
          "      --no-keepalive      one connection per request\n"
          "      --keep-body SIZE    add the first SIZE body bytes to each row (\"body\")\n"
          "      --cacert FILE       trust the CA certificates in FILE (PEM) for https,\n"
          "                          instead of /etc/ssl/certs/ca-certificates.crt\n"
          "  -k, --insecure          https without certificate or host name checks\n"
          "  -q, --quiet             no progress line and no summary\n",
          f);
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "ringfetch fetch: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fputs("Try 'ringfetch fetch --help'.\n", stderr);
    return 2;
}

static int pull(void *userp, rf_request *req)
{
    struct fetch *f = userp;
    const char *url;

    if (f->next_arg < f->nargs)
        url = f->args[f->next_arg++];
    else if (f->in)
        url = lines_next(f->in, f->line, LINE_MAX_BYTES);
    else
        url = NULL;
    if (!url)
        return 0;
    req->url = url;
    req->method = f->method;
    req->headers = f->headers;
    req->n_headers = f->nheaders;
    req->body = f->body;
    req->body_len = f->body_len;
    return 1;
}

static void write_ms(FILE *o, uint32_t us) { fprintf(o, "%.3f", us / 1000.0); }

static void row_jsonl(FILE *o, const rf_result *r)
{
    fprintf(o, "{\"index\":%llu,\"url\":", (unsigned long long)r->index);
    json_str(o, r->url);
    if (r->status)
        fprintf(o, ",\"status\":%d", r->status);
    else
        fputs(",\"status\":null", o);
    if (r->error == RF_OK)
        fputs(",\"error\":null", o);
    else
        fprintf(o, ",\"error\":\"%s\"", rf_strerror(r->error));
    if (r->error_detail) {
        fputs(",\"error_detail\":", o);
        json_str(o, r->error_detail);
    }
    fprintf(o, ",\"bytes\":%llu,\"connect_ms\":", (unsigned long long)r->body_bytes);
    write_ms(o, r->connect_us);
    fputs(",\"ttfb_ms\":", o);
    write_ms(o, r->ttfb_us);
    fputs(",\"total_ms\":", o);
    write_ms(o, r->total_us);
    fputs(",\"ip\":", o);
    if (r->ip)
        json_str(o, r->ip);
    else
        fputs("null", o);
    if (r->tls_version) {
        fputs(",\"tls_version\":", o);
        json_str(o, r->tls_version);
        fputs(",\"tls_ms\":", o);
        write_ms(o, r->tls_us);
        fprintf(o, ",\"tls_resumed\":%s", r->tls_resumed ? "true" : "false");
    }
    if (r->location) {
        fputs(",\"location\":", o);
        json_str(o, r->location);
    }
    if (r->content_type) {
        fputs(",\"content_type\":", o);
        json_str(o, r->content_type);
    }
    if (r->body) {
        fputs(",\"body\":", o);
        json_mem(o, r->body, r->body_len);
    }
    fputs("}\n", o);
}

static void row_csv(FILE *o, const rf_result *r)
{
    fprintf(o, "%llu,", (unsigned long long)r->index);
    csv_str(o, r->url);
    if (r->status)
        fprintf(o, ",%d,", r->status);
    else
        fputs(",,", o);
    fprintf(o, "%s,%llu,", r->error == RF_OK ? "" : rf_strerror(r->error),
            (unsigned long long)r->body_bytes);
    write_ms(o, r->connect_us);
    putc(',', o);
    write_ms(o, r->ttfb_us);
    putc(',', o);
    write_ms(o, r->total_us);
    putc(',', o);
    csv_str(o, r->ip ? r->ip : "");
    putc(',', o);
    csv_str(o, r->location ? r->location : "");
    putc(',', o);
    csv_str(o, r->content_type ? r->content_type : "");
    putc(',', o);
    if (r->tls_version) {
        csv_str(o, r->tls_version);
        putc(',', o);
        write_ms(o, r->tls_us);
        fputs(r->tls_resumed ? ",1," : ",0,", o);
    } else {
        fputs(",,,", o);
    }
    csv_str(o, r->error_detail ? r->error_detail : "");
    putc('\n', o);
}

static void on_result(void *userp, const rf_result *r)
{
    struct fetch *f = userp;

    if (f->fmt == FMT_CSV)
        row_csv(f->out, r);
    else
        row_jsonl(f->out, r);
    f->rows++;
    f->errors[r->error]++;
    if (r->error == RF_OK && r->status >= 100 && r->status < 600)
        f->status_class[r->status / 100]++;
}

static void show_progress(struct fetch *f, rf_engine *eng, int final)
{
    rf_stats st;
    double now = mono_seconds(), el = now - f->t0;

    if (!f->progress || (!final && now - f->last_progress < 0.25))
        return;
    f->last_progress = now;
    rf_get_stats(eng, &st);
    fprintf(stderr, "\r\033[K%llu", (unsigned long long)f->rows);
    if (f->total)
        fprintf(stderr, "/%llu", (unsigned long long)f->total);
    fprintf(stderr, " done, %.0f/s, %llu in flight, %llu errors", el > 0 ? f->rows / el : 0.0,
            (unsigned long long)st.in_flight, (unsigned long long)st.errors);
    if (final)
        fputc('\n', stderr);
}

static void summary(const struct fetch *f, const rf_stats *st, double wall)
{
    uint64_t errs = 0;

    fprintf(stderr, "%llu results in %.3f s (%.0f/s), %llu connections opened\n",
            (unsigned long long)f->rows, wall, wall > 0 ? f->rows / wall : 0.0,
            (unsigned long long)st->connects);
    fprintf(stderr, "status: 1xx %llu, 2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu\n",
            (unsigned long long)f->status_class[1], (unsigned long long)f->status_class[2],
            (unsigned long long)f->status_class[3], (unsigned long long)f->status_class[4],
            (unsigned long long)f->status_class[5]);
    for (int i = 1; i < RF_ERR__LAST; i++)
        errs += f->errors[i];
    fprintf(stderr, "errors: %llu", (unsigned long long)errs);
    for (int i = 1, first = 1; i < RF_ERR__LAST; i++) {
        if (!f->errors[i])
            continue;
        fprintf(stderr, "%s%s %llu", first ? " (" : ", ", rf_strerror((rf_error)i),
                (unsigned long long)f->errors[i]);
        first = 0;
    }
    fputs(errs ? ")\n" : "\n", stderr);
}

/* Count lines of a regular file ahead of time, for the progress line's total. */
static uint64_t count_lines(const char *path)
{
    char buf[65536];
    uint64_t n = 0;
    size_t r;
    FILE *fp = fopen(path, "rb");

    if (!fp)
        return 0;
    while ((r = fread(buf, 1, sizeof(buf), fp)) > 0)
        for (size_t i = 0; i < r; i++)
            n += buf[i] == '\n';
    fclose(fp);
    return n;
}

int cmd_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"input", required_argument, 0, 'i'},
        {"concurrency", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'},
        {"timeout", required_argument, 0, 'T'},
        {"connect-timeout", required_argument, 0, 'C'},
        {"request", required_argument, 0, 'X'},
        {"header", required_argument, 0, 'H'},
        {"data", required_argument, 0, 'd'},
        {"max-body", required_argument, 0, 'M'},
        {"output", required_argument, 0, 'o'},
        {"format", required_argument, 0, 'F'},
        {"resolve", required_argument, 0, 'R'},
        {"dns-server", required_argument, 0, 'D'},
        {"window", required_argument, 0, 'W'},
        {"no-keepalive", no_argument, 0, 'K'},
        {"keep-body", required_argument, 0, 'B'},
        {"cacert", required_argument, 0, OPT_CACERT},
        {"insecure", no_argument, 0, 'k'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    static struct fetch f; /* the input line buffer is large: keep it off the stack */
    const char *resolve[MAX_RESOLVE];
    const char *input = NULL, *output = NULL;
    struct sigaction sa;
    rf_config cfg;
    rf_engine *eng;
    rf_stats stats;
    int write_errno = 0;
    uint64_t v;
    rf_error err;
    int opt, ret;

    memset(&f, 0, sizeof(f));
    rf_config_init(&cfg);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "i:c:t:X:H:d:o:kqh", opts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            input = optarg;
            break;
        case 'c':
            if (parse_uint(optarg, 1000000, &cfg.concurrency))
                return usage_error("bad concurrency", optarg);
            break;
        case 't':
            if (parse_uint(optarg, 256, &cfg.threads))
                return usage_error("bad thread count", optarg);
            break;
        case 'T':
        case 'C':
            if (parse_duration_ms(optarg, &v) || v == 0 || v > UINT32_MAX)
                return usage_error("bad timeout", optarg);
            *(opt == 'T' ? &cfg.timeout_ms : &cfg.connect_timeout_ms) = (unsigned)v;
            break;
        case 'X':
            if (!valid_method(optarg))
                return usage_error("a method is a token such as GET or PURGE", optarg);
            f.method = optarg;
            break;
        case 'H':
            if (f.nheaders == MAX_HEADERS)
                return usage_error("too many headers", NULL);
            if (!valid_header(optarg))
                return usage_error("a header is 'Name: value'", optarg);
            f.headers[f.nheaders++] = optarg;
            break;
        case 'd':
            free(f.body);
            if (load_data(optarg, &f.body, &f.body_len))
                return usage_error("cannot read the request body", optarg);
            break;
        case 'M':
            if (parse_size(optarg, &cfg.max_body) || cfg.max_body == 0)
                return usage_error("bad size", optarg);
            break;
        case 'o':
            output = optarg;
            break;
        case 'F':
            if (strcmp(optarg, "jsonl") == 0)
                f.fmt = FMT_JSONL;
            else if (strcmp(optarg, "csv") == 0)
                f.fmt = FMT_CSV;
            else
                return usage_error("format is jsonl or csv", optarg);
            break;
        case 'R':
            if (cfg.n_resolve == MAX_RESOLVE)
                return usage_error("too many --resolve entries", NULL);
            resolve[cfg.n_resolve++] = optarg;
            break;
        case 'D':
            cfg.dns_server = optarg;
            break;
        case 'W':
            if (parse_uint(optarg, 1u << 24, &cfg.window))
                return usage_error("bad window", optarg);
            break;
        case 'K':
            cfg.keepalive = 0;
            break;
        case 'B':
            if (parse_size(optarg, &v) || v > (1u << 30))
                return usage_error("bad size", optarg);
            cfg.keep_body = (size_t)v;
            break;
        case OPT_CACERT:
        case 'k':
            if (tls_option(opt, optarg, &cfg.ca_file, &cfg.insecure))
                return usage_error("cannot read the CA file", optarg);
            break;
        case 'q':
            f.quiet = 1;
            break;
        case 'h':
            fetch_usage(stdout);
            return 0;
        default:
            fputs("Try 'ringfetch fetch --help'.\n", stderr);
            return 2;
        }
    }
    f.args = argv + optind;
    f.nargs = argc - optind;
    if (!input && f.nargs == 0)
        return usage_error("no URLs: give them as arguments or with -i FILE (-i - for stdin)",
                           NULL);
    if (f.body && !f.method)
        f.method = "POST";
    if (input) {
        struct stat st;

        f.in = strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
        if (!f.in) {
            fprintf(stderr, "ringfetch fetch: cannot open %s: %s\n", input, strerror(errno));
            return 2;
        }
        f.progress = !f.quiet && isatty(2);
        if (f.progress && f.in != stdin && stat(input, &st) == 0 && S_ISREG(st.st_mode))
            f.total = count_lines(input) + (uint64_t)f.nargs;
    } else {
        f.progress = !f.quiet && isatty(2);
        f.total = (uint64_t)f.nargs;
    }
    f.out = output ? fopen(output, "w") : stdout;
    if (!f.out) {
        fprintf(stderr, "ringfetch fetch: cannot write %s: %s\n", output, strerror(errno));
        return 2;
    }
    if (f.fmt == FMT_CSV)
        fputs("index,url,status,error,bytes,connect_ms,ttfb_ms,total_ms,ip,location,"
              "content_type,tls_version,tls_ms,tls_resumed,error_detail\n",
              f.out);
    cfg.resolve = resolve;
    cfg.pull = pull;
    cfg.pull_userp = &f;
    cfg.on_result = on_result;
    cfg.result_userp = &f;
    err = rf_engine_create(&eng, &cfg);
    if (err == RF_ERR_INVALID_ARG && (cfg.dns_server || cfg.n_resolve))
        return usage_error("bad --dns-server or --resolve value (invalid_argument)", NULL);
    if (err != RF_OK) {
        fprintf(stderr, "ringfetch fetch: cannot start the engine: %s\n", rf_strerror(err));
        return err == RF_ERR_INVALID_ARG ? 2 : 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: the ring wait returns at once */
    sigemptyset(&sa.sa_mask);
    g_engine = eng;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    f.t0 = mono_seconds();
    while ((ret = rf_step(eng, f.progress ? 250 : 1000)) > 0) {
        /* Rows of this turn go out now: head and tail -f see them. */
        if (fflush(f.out) && !write_errno) {
            /* A full disk: stop fetching what could not be written down. */
            write_errno = errno ? errno : EIO;
            rf_cancel(eng);
        }
        show_progress(&f, eng, 0);
    }
    if ((fflush(f.out) || ferror(f.out)) && !write_errno)
        write_errno = errno ? errno : EIO;
    show_progress(&f, eng, 1);
    rf_get_stats(eng, &stats);
    g_engine = NULL;
    rf_engine_destroy(eng);
    if (!f.quiet)
        summary(&f, &stats, mono_seconds() - f.t0);
    if (output && fclose(f.out) && !write_errno)
        write_errno = errno ? errno : EIO;
    if (f.in && f.in != stdin)
        fclose(f.in);
    free(f.body);
    if (write_errno) {
        fprintf(stderr, "ringfetch fetch: cannot write the rows to %s: %s\n",
                output ? output : "standard output", strerror(write_errno));
        return 1;
    }
    if (ret < 0) {
        fprintf(stderr, "ringfetch fetch: engine error: %s\n", rf_strerror((rf_error)-ret));
        return 1;
    }
    if (g_signal) {
        fprintf(stderr, "ringfetch fetch: interrupted; in-flight requests reported as cancelled\n");
        return 128 + g_signal;
    }
    return 0;
}
