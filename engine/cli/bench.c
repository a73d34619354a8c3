/* bench.c - `ringfetch bench URL`: options, the interval lines, and the wrk-like or JSON
 * report. A thin client of rf_bench_run(). */
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "reports.h"
#include "ringfetch.h"
#include "targets.h"

#define MAX_HEADERS 64
#define MAX_SOURCES 1024

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void bench_usage(FILE *f)
{
    fputs("usage: ringfetch bench [options] URL\n"
          "       ringfetch bench [options] --targets FILE\n"
          "  -c, --connections N     connections to hold open (default 10)\n"
          "  -t, --threads N         ring threads (default 1; more when -c needs them)\n"
          "  -d, --duration TIME     run for TIME: 10s, 1m (default 10s)\n"
          "  -n, --requests N        stop after N requests instead\n"
          "  -R, --rate N            open loop: N requests/s in total; latency from the\n"
          "                          time each request was due (no coordinated omission)\n"
          "      --slack US          open loop: requests due within US microseconds of\n"
          "                          each other leave together (0-50, default 50);\n"
          "                          0 also stops the closed loop batching answers\n"
          "  -p, --pipeline N        requests outstanding per connection (default 1)\n"
          "  -X, --request METHOD    request method (default GET, POST with a body)\n"
          "  -H, --header 'N: v'     extra request header (repeatable)\n"
          "      --data DATA         request body; @FILE reads it from FILE\n"
          "      --body-file FILE    request body from FILE\n"
          "      --targets FILE      requests used round-robin, one per line:\n"
          "                          METHOD URL [@BODYFILE] [| Name: value]... (one origin)\n"
          "      --warmup TIME       run TIME first, excluded from every figure\n"
          "      --interval TIME     one line per TIME while running (default 1s)\n"
          "      --start-at EPOCH    start at this wall-clock time (seconds since 1970),\n"
          "                          so generators on several hosts start together\n"
          "      --timeout TIME      a request not answered in TIME is a timeout (default 10s)\n"
          "      --connect-timeout TIME  connect and TLS handshake (default 10s)\n"
          "      --reqs-per-conn N   reconnect after N requests on a connection\n"
          "      --no-keepalive      a new connection per request\n"
          "      --latency           print the latency percentiles\n"
          "      --json              the report as one JSON object on stdout\n"
          "      --html FILE         the report as one self-contained HTML page: latency\n"
          "                          spectrum, requests/s, errors and p50/p99 over time\n"
          "      --no-timestamps     time responses by the clock per batch of completions\n"
          "                          instead of kernel receive timestamps\n"
          "      --hdr-log FILE      the latency distribution in HdrHistogram's text format\n"
          "      --source-addrs A-B  bind connections to these local addresses in turn\n"
          "                          (a range 127.0.0.2-127.0.0.40 or a list a,b,c), for\n"
          "                          more connections than one address has ports\n"
          "      --resolve H:P:ADDR  use ADDR for host H port P\n"
          "      --dns-server A[:P]  DNS server instead of /etc/resolv.conf\n"
          "      --cacert FILE       https: trust the CA certificates in FILE (PEM)\n"
          "  -k, --insecure          https: no certificate or host name checks\n"
          "      --no-tls-resume     https: a full handshake on every connection (by\n"
          "                          default reconnections resume the session)\n"
          "  -q, --quiet             no interval lines\n",
          f);
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "ringfetch bench: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fputs("Try 'ringfetch bench --help'.\n", stderr);
    return 2;
}

/*
 * "127.0.0.2-127.0.0.40" (an IPv4 range) or "a,b,c" (IPv4 or IPv6): local addresses as
 * text into out[] (storage in buf). Returns how many, or -1.
 */
static int parse_sources(const char *arg, char (*buf)[INET6_ADDRSTRLEN], const char **out,
                         int max)
{
    char copy[256], *save, *tok;
    int n = 0;

    if (strlen(arg) >= sizeof(copy))
        return -1;
    strcpy(copy, arg);
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        struct in_addr lo, hi;
        unsigned char any[16];

        if (!dash) {
            if (n == max || (inet_pton(AF_INET, tok, any) != 1 &&
                             inet_pton(AF_INET6, tok, any) != 1))
                return -1;
            snprintf(buf[n], sizeof(buf[n]), "%s", tok);
            out[n] = buf[n];
            n++;
            continue;
        }
        *dash = '\0';
        if (inet_pton(AF_INET, tok, &lo) != 1 || inet_pton(AF_INET, dash + 1, &hi) != 1 ||
            ntohl(hi.s_addr) < ntohl(lo.s_addr))
            return -1;
        for (uint32_t a = ntohl(lo.s_addr); a <= ntohl(hi.s_addr); a++) {
            struct in_addr x = {htonl(a)};

            if (n == max)
                return -1;
            inet_ntop(AF_INET, &x, buf[n], sizeof(buf[n]));
            out[n] = buf[n];
            n++;
        }
    }
    return n ? n : -1;
}

/* One line per interval, on stderr so that stdout stays the report. */
static void on_interval(void *userp, const rf_bench_interval *iv)
{
    (void)userp;
    fprintf(stderr, "  %7.1fs  %10llu requests  %10.0f/s  %6llu errors  p50 %8.3fms  p99 %8.3fms\n",
            iv->t_s, (unsigned long long)iv->requests,
            iv->length_s > 0 ? (double)iv->requests / iv->length_s : 0.0,
            (unsigned long long)iv->errors, (double)iv->p50_us / 1e3, (double)iv->p99_us / 1e3);
}

/* A duration in µs the way wrk prints it: us, ms or s with two decimals. */
static void put_us(FILE *f, double us)
{
    if (us < 1000)
        fprintf(f, "%8.2fus", us);
    else if (us < 1e6)
        fprintf(f, "%8.2fms", us / 1e3);
    else
        fprintf(f, "%8.2fs ", us / 1e6);
}

static void put_bytes(FILE *f, double b)
{
    const char *unit[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;

    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    fprintf(f, "%.2f%s", b, unit[i]);
}

static const double pcts[] = {50, 75, 90, 99, 99.9, 99.99};

static void report_text(const rf_bench_config *cfg, const rf_bench_report *r, int latency)
{
    const rf_hist *h = r->latency;
    double secs = r->duration_s > 0 ? r->duration_s : 1e-9;

    printf("  %u threads and %u connections\n", r->threads, r->connections);
    printf("  Latency  avg");
    put_us(stdout, rf_hist_mean(h));
    printf("  stdev");
    put_us(stdout, rf_hist_stdev(h));
    printf("  max");
    put_us(stdout, (double)rf_hist_max(h));
    printf("\n");
    if (latency) {
        printf("  Latency Distribution%s (%s)\n",
               cfg->rate > 0 ? " from each request's due time" : "", r->latency_method);
        for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
            printf("  %7g%%", pcts[i]);
            put_us(stdout, (double)rf_hist_percentile(h, pcts[i]));
            printf("\n");
        }
    }
    printf("  %llu requests in %.2fs, ", (unsigned long long)r->requests, r->duration_s);
    put_bytes(stdout, (double)r->bytes);
    printf(" read\n");
    printf("  Connections: %llu established, %llu held at the end (peak %llu), "
           "%llu attempts (%.1f/s)\n",
           (unsigned long long)r->established, (unsigned long long)r->open_at_end,
           (unsigned long long)r->peak_open, (unsigned long long)r->connects,
           r->connects / secs);
    printf("  Status:");
    for (int code = 0; code < RF_BENCH_STATUS_MAX; code++)
        if (r->status[code])
            printf(" %d x %llu", code, (unsigned long long)r->status[code]);
    printf("\n");
    if (r->tls_full || r->tls_resumed || r->error[0])
        printf("  TLS handshakes: %llu full, %llu resumed\n", (unsigned long long)r->tls_full,
               (unsigned long long)r->tls_resumed);
    printf("  Errors: connect %llu, read %llu, write %llu, timeout %llu, non-2xx/3xx %llu\n",
           (unsigned long long)r->err_connect, (unsigned long long)r->err_read,
           (unsigned long long)r->err_write, (unsigned long long)r->err_timeout,
           (unsigned long long)r->non_2xx_3xx);
    if (r->error[0])
        printf("  TLS: the first failed handshake: %s\n", r->error);
    if (r->threads > 1) {
        printf("  Per thread:");
        for (unsigned i = 0; i < r->threads; i++)
            printf(" %llu", (unsigned long long)r->thread_requests[i]);
        printf(" requests\n");
    }
    printf("Requests/sec: %.2f\n", r->requests / secs);
    if (cfg->rate > 0)
        printf("Requested rate: %.0f/s, achieved %.2f/s\n", cfg->rate, r->requests / secs);
    printf("Transfer/sec: ");
    put_bytes(stdout, r->bytes / secs);
    printf("\n");
}

static void json_u64(FILE *f, const char *name, uint64_t v, int comma)
{
    fprintf(f, "%s\"%s\":%llu", comma ? "," : "", name, (unsigned long long)v);
}

/* The "histogram" member: every non-empty bucket by index, and the exact moments. */
static void json_histogram(FILE *f, const rf_hist *h)
{
    rf_hist_moments m;
    size_t it = 0;
    uint32_t idx;
    uint64_t lo, hi, n;
    int first = 1;

    rf_hist_get_moments(h, &m);
    fprintf(f, ",\"histogram\":{\"layout\":\"ringfetch-loglinear-v1\"");
    json_u64(f, "count", rf_hist_count(h), 1);
    json_u64(f, "min", rf_hist_min(h), 1);
    json_u64(f, "max", rf_hist_max(h), 1);
    fprintf(f, ",\"sum\":%.17g,\"sumsq\":%.17g,\"buckets\":[", m.sum, m.sumsq);
    while (rf_hist_bucket(h, &it, &idx, &lo, &hi, &n)) {
        fprintf(f, "%s[%u,%llu]", first ? "" : ",", idx, (unsigned long long)n);
        first = 0;
    }
    fputs("]}", f);
}

static void report_json(FILE *f, const rf_bench_config *cfg, const rf_bench_report *r)
{
    const rf_hist *h = r->latency;
    double secs = r->duration_s > 0 ? r->duration_s : 1e-9;
    const rf_bench_target *t = &cfg->targets[0];
    int first = 1;

    fprintf(f, "{\"format\":\"ringfetch-bench/1\",\"url\":");
    json_str(f, t->url);
    fprintf(f, ",\"targets\":%zu,\"threads\":%u,\"connections\":%u,\"pipeline\":%u",
            cfg->n_targets, r->threads, r->connections, cfg->pipeline ? cfg->pipeline : 1);
    fprintf(f, ",\"start_epoch_s\":%.6f", r->start_epoch_s);
    if (cfg->start_at > 0)
        fprintf(f, ",\"start_offset_us\":%.0f", r->start_offset_us);
    fprintf(f, ",\"warmup_s\":%.3f,\"duration_s\":%.6f,\"interval_s\":%.3f", r->warmup_s,
            r->duration_s, (double)cfg->interval_ms / 1e3);
    json_u64(f, "requests", r->requests, 1);
    fprintf(f, ",\"rps\":%.2f", r->requests / secs);
    json_u64(f, "bytes", r->bytes, 1);
    fprintf(f, ",\"bytes_per_s\":%.0f", r->bytes / secs);
    json_u64(f, "connects", r->connects, 1);
    json_u64(f, "established", r->established, 1);
    json_u64(f, "open_at_end", r->open_at_end, 1);
    json_u64(f, "peak_open", r->peak_open, 1);
    fprintf(f, ",\"errors\":{");
    json_u64(f, "connect", r->err_connect, 0);
    json_u64(f, "read", r->err_read, 1);
    json_u64(f, "write", r->err_write, 1);
    json_u64(f, "timeout", r->err_timeout, 1);
    json_u64(f, "non_2xx_3xx", r->non_2xx_3xx, 1);
    fprintf(f, "},\"status\":{");
    for (int code = 0; code < RF_BENCH_STATUS_MAX; code++) {
        if (!r->status[code])
            continue;
        fprintf(f, "%s\"%d\":%llu", first ? "" : ",", code, (unsigned long long)r->status[code]);
        first = 0;
    }
    fputc('}', f);
    if (cfg->rate > 0)
        fprintf(f, ",\"rate\":{\"requested\":%.2f,\"achieved\":%.2f}", cfg->rate,
                r->requests / secs);
    fprintf(f, ",\"latency_method\":\"%s\"", r->latency_method ? r->latency_method : "");
    fprintf(f, ",\"latency_us\":{\"min\":%llu,\"mean\":%.2f,\"stdev\":%.2f",
            (unsigned long long)rf_hist_min(h), rf_hist_mean(h), rf_hist_stdev(h));
    json_u64(f, "p50", rf_hist_percentile(h, 50), 1);
    json_u64(f, "p75", rf_hist_percentile(h, 75), 1);
    json_u64(f, "p90", rf_hist_percentile(h, 90), 1);
    json_u64(f, "p99", rf_hist_percentile(h, 99), 1);
    json_u64(f, "p999", rf_hist_percentile(h, 99.9), 1);
    json_u64(f, "p9999", rf_hist_percentile(h, 99.99), 1);
    json_u64(f, "max", rf_hist_max(h), 1);
    fputc('}', f);
    json_histogram(f, h);
    fprintf(f, ",\"intervals\":[");
    for (size_t i = 0; i < r->n_intervals; i++) {
        const rf_bench_interval *iv = &r->intervals[i];

        fprintf(f, "%s{\"t_s\":%.6f,\"length_s\":%.6f", i ? "," : "", iv->t_s, iv->length_s);
        json_u64(f, "requests", iv->requests, 1);
        json_u64(f, "errors", iv->errors, 1);
        json_u64(f, "bytes", iv->bytes, 1);
        fprintf(f, ",\"rps\":%.2f", iv->length_s > 0 ? (double)iv->requests / iv->length_s : 0.0);
        json_u64(f, "p50_us", iv->p50_us, 1);
        json_u64(f, "p99_us", iv->p99_us, 1);
        json_u64(f, "max_us", iv->max_us, 1);
        fputc('}', f);
    }
    fprintf(f, "],\"per_thread\":[");
    for (unsigned i = 0; i < r->threads; i++)
        fprintf(f, "%s{\"requests\":%llu,\"rps\":%.2f}", i ? "," : "",
                (unsigned long long)r->thread_requests[i], r->thread_requests[i] / secs);
    fputc(']', f);
    json_u64(f, "tls_full", r->tls_full, 1);
    json_u64(f, "tls_resumed", r->tls_resumed, 1);
    if (r->error[0]) {
        fprintf(f, ",\"tls_error\":");
        json_str(f, r->error);
    }
    fprintf(f, ",\"config\":{\"method\":");
    json_str(f, t->method ? t->method : t->body ? "POST" : "GET");
    json_u64(f, "duration_ms", cfg->duration_ms, 1);
    json_u64(f, "requests", cfg->requests, 1);
    fprintf(f, ",\"rate\":%.2f", cfg->rate);
    json_u64(f, "timeout_ms", cfg->timeout_ms, 1);
    json_u64(f, "connect_timeout_ms", cfg->connect_timeout_ms, 1);
    json_u64(f, "warmup_ms", cfg->warmup_ms, 1);
    json_u64(f, "interval_ms", cfg->interval_ms, 1);
    json_u64(f, "reqs_per_conn", cfg->reqs_per_conn, 1);
    json_u64(f, "slack_us", cfg->slack_us, 1);
    fprintf(f, ",\"version\":\"%s\"}}\n", rf_version());
}

/* The page is drawn from the JSON report, so the two never disagree. */
static int write_html(const char *path, const rf_bench_config *cfg, const rf_bench_report *rep)
{
    char *text = NULL, title[512];
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int ret = -1;

    if (mem) {
        report_json(mem, cfg, rep);
        if (fclose(mem) == 0) {
            snprintf(title, sizeof(title), "ringfetch bench %s", cfg->targets[0].url);
            ret = report_write_html(path, path, text, len, title, "bench");
        }
    }
    free(text);
    return ret;
}

int cmd_bench(int argc, char **argv)
{
    enum { O_SLACK = 0x200, O_WARMUP, O_INTERVAL, O_START_AT, O_HTML, O_NO_TS };
    static const struct option opts[] = {
        {"connections", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'},
        {"duration", required_argument, 0, 'd'},
        {"requests", required_argument, 0, 'n'},
        {"rate", required_argument, 0, 'R'},
        {"slack", required_argument, 0, O_SLACK},
        {"pipeline", required_argument, 0, 'p'},
        {"request", required_argument, 0, 'X'},
        {"header", required_argument, 0, 'H'},
        {"data", required_argument, 0, 'D'},
        {"body-file", required_argument, 0, 'B'},
        {"warmup", required_argument, 0, O_WARMUP},
        {"interval", required_argument, 0, O_INTERVAL},
        {"start-at", required_argument, 0, O_START_AT},
        {"timeout", required_argument, 0, 'T'},
        {"connect-timeout", required_argument, 0, 'C'},
        {"reqs-per-conn", required_argument, 0, 'r'},
        {"no-keepalive", no_argument, 0, 'K'},
        {"latency", no_argument, 0, 'L'},
        {"json", no_argument, 0, 'J'},
        {"html", required_argument, 0, O_HTML},
        {"no-timestamps", no_argument, 0, O_NO_TS},
        {"hdr-log", required_argument, 0, 'G'},
        {"resolve", required_argument, 0, 'S'},
        {"dns-server", required_argument, 0, 'N'},
        {"source-addrs", required_argument, 0, 'A'},
        {"targets", required_argument, 0, 'F'},
        {"cacert", required_argument, 0, OPT_CACERT},
        {"insecure", no_argument, 0, 'k'},
        {"no-tls-resume", no_argument, 0, 'Z'},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    static char source_buf[MAX_SOURCES][INET6_ADDRSTRLEN];
    static const char *sources[MAX_SOURCES];
    const char *headers[MAX_HEADERS], *resolve[MAX_HEADERS], *hdr_log = NULL, *html = NULL;
    const char *targets_file = NULL, *method = NULL;
    size_t n_headers = 0;
    struct targets file_targets = {0};
    rf_bench_target one = {0};
    rf_bench_report rep = {.size = sizeof(rep)};
    rf_bench_config cfg;
    struct sigaction sa;
    char *body = NULL, *end;
    size_t body_len = 0;
    int opt, latency = 0, json = 0, quiet = 0, dur_set = 0, ret;
    rf_error err;
    uint64_t v;
    unsigned u;

    rf_bench_config_init(&cfg);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:t:d:n:R:p:X:H:kqh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
        case 't':
        case 'p':
            if (parse_uint(optarg, opt == 'c' ? 10000000 : 1024, &u))
                return usage_error(opt == 'c' ? "bad --connections" : opt == 't'
                                   ? "bad --threads" : "bad --pipeline", optarg);
            *(opt == 'c' ? &cfg.connections : opt == 't' ? &cfg.threads : &cfg.pipeline) = u;
            break;
        case 'd':
            if (parse_duration_ms(optarg, &v) || v == 0)
                return usage_error("bad --duration", optarg);
            cfg.duration_ms = v;
            dur_set = 1;
            break;
        case 'n':
        case 'r':
            if (parse_size(optarg, &v) || v == 0)
                return usage_error(opt == 'n' ? "bad --requests" : "bad --reqs-per-conn", optarg);
            *(opt == 'n' ? &cfg.requests : &cfg.reqs_per_conn) = v;
            break;
        case 'R':
            cfg.rate = strtod(optarg, &end);
            if (end == optarg || *end || !(cfg.rate > 0) || cfg.rate > 1e9)
                return usage_error("bad --rate", optarg);
            break;
        case O_SLACK:
            if (parse_size(optarg, &v) || v > 50)
                return usage_error("bad --slack (0 to 50 microseconds)", optarg);
            cfg.slack_us = (unsigned)v;
            break;
        case O_WARMUP:
        case O_INTERVAL:
            if (parse_duration_ms(optarg, &v) || (opt == O_INTERVAL && v < 100))
                return usage_error(opt == O_WARMUP ? "bad --warmup"
                                                   : "bad --interval (at least 100ms)", optarg);
            *(opt == O_WARMUP ? &cfg.warmup_ms : &cfg.interval_ms) = v;
            break;
        case O_START_AT:
            cfg.start_at = strtod(optarg, &end);
            if (end == optarg || *end || !(cfg.start_at > 0))
                return usage_error("bad --start-at (seconds since 1970)", optarg);
            break;
        case 'K':
            cfg.reqs_per_conn = 1;
            break;
        case 'X':
            if (!valid_method(optarg))
                return usage_error("a method is a token such as GET or PURGE", optarg);
            method = optarg;
            break;
        case 'H':
            if (n_headers == MAX_HEADERS || !valid_header(optarg))
                return usage_error("a header is 'Name: value' (at most 64)", optarg);
            headers[n_headers++] = optarg;
            break;
        case 'D':
        case 'B': {
            char arg[4096];

            snprintf(arg, sizeof(arg), "%s%s", opt == 'B' ? "@" : "", optarg);
            free(body);
            if (load_data(arg, &body, &body_len))
                return usage_error("cannot read the request body", optarg);
            break;
        }
        case 'T':
        case 'C':
            if (parse_duration_ms(optarg, &v) || v == 0)
                return usage_error(opt == 'T' ? "bad --timeout" : "bad --connect-timeout", optarg);
            *(opt == 'T' ? &cfg.timeout_ms : &cfg.connect_timeout_ms) = v;
            break;
        case 'L':
            latency = 1;
            break;
        case 'J':
            json = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case O_HTML:
            html = optarg;
            break;
        case O_NO_TS:
            cfg.rx_timestamps = 0;
            break;
        case 'G':
            hdr_log = optarg;
            break;
        case 'S':
            if (cfg.n_resolve == MAX_HEADERS)
                return usage_error("too many --resolve", optarg);
            resolve[cfg.n_resolve++] = optarg;
            break;
        case 'N':
            cfg.dns_server = optarg;
            break;
        case 'F':
            targets_file = optarg;
            break;
        case 'A': {
            int n = parse_sources(optarg, source_buf, sources, MAX_SOURCES);

            if (n < 0)
                return usage_error("bad --source-addrs (a range A-B or a list a,b,c)", optarg);
            cfg.source_addrs = sources;
            cfg.n_source_addrs = (size_t)n;
            break;
        }
        case OPT_CACERT:
        case 'k':
            if (tls_option(opt, optarg, &cfg.ca_file, &cfg.insecure))
                return usage_error("cannot read the CA file", optarg);
            break;
        case 'Z':
            cfg.tls_resume = 0;
            break;
        case 'h':
            bench_usage(stdout);
            return 0;
        default:
            return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind != argc - (targets_file ? 0 : 1))
        return usage_error(targets_file ? "--targets replaces the URL" : "give exactly one URL",
                           NULL);
    if (cfg.reqs_per_conn && cfg.pipeline > 1)
        return usage_error("--reqs-per-conn and --no-keepalive need -p 1", NULL);
    if (cfg.requests && !dur_set)
        cfg.duration_ms = 0; /* -n alone runs until the requests are done */
    if (targets_file) {
        char why[512];
        FILE *tf = fopen(targets_file, "r");
        int bad = !tf || targets_parse(tf, headers, n_headers, &file_targets, why, sizeof(why));

        if (tf)
            fclose(tf);
        if (bad) {
            fprintf(stderr, "ringfetch bench: %s: %s\n", targets_file, tf ? why : "cannot open");
            targets_free(&file_targets);
            free(body);
            return 2;
        }
        cfg.targets = file_targets.t;
        cfg.n_targets = file_targets.n;
    } else {
        one.url = argv[optind];
        one.method = method;
        one.headers = headers;
        one.n_headers = n_headers;
        one.body = body;
        one.body_len = body_len;
        cfg.targets = &one;
        cfg.n_targets = 1;
    }
    cfg.resolve = resolve;
    cfg.stop = &g_stop;
    if (!quiet)
        cfg.on_interval = on_interval;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!json) {
        if (cfg.requests)
            printf("Running %llu requests @ %s\n", (unsigned long long)cfg.requests,
                   cfg.targets[0].url);
        else
            printf("Running %.3gs test @ %s\n", cfg.duration_ms / 1000.0, cfg.targets[0].url);
        if (cfg.n_targets > 1)
            printf("  %zu requests round-robin from %s\n", cfg.n_targets, targets_file);
        fflush(stdout);
    }
    err = rf_bench_run(&cfg, &rep);
    ret = 0;
    if (err != RF_OK) {
        fprintf(stderr, "ringfetch bench: %s: %s%s%s\n",
                cfg.n_targets > 1 ? targets_file : cfg.targets[0].url, rf_strerror(err),
                rep.error[0] && strcmp(rep.error, rf_strerror(err)) ? ": " : "",
                rep.error[0] && strcmp(rep.error, rf_strerror(err)) ? rep.error : "");
        ret = 1;
    } else if (json) {
        report_json(stdout, &cfg, &rep);
    } else {
        report_text(&cfg, &rep, latency);
    }
    if (!ret && html && write_html(html, &cfg, &rep))
        ret = 1;
    if (!ret && hdr_log) {
        FILE *f = fopen(hdr_log, "w");

        if (!f || rf_hist_write_percentiles(rep.latency, f, 1000.0) || fclose(f)) {
            fprintf(stderr, "ringfetch bench: cannot write %s\n", hdr_log);
            ret = 1;
        }
    }
    rf_bench_report_free(&rep);
    free(body);
    targets_free(&file_targets);
    return ret;
}
