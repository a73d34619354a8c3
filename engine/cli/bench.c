/* bench.c - `ringfetch bench URL`: options, the live line, and the wrk-like or JSON report. */
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cli.h"
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
          "  -p, --pipeline N        requests outstanding per connection (default 1)\n"
          "  -X, --request METHOD    request method (default GET, POST with a body)\n"
          "  -H, --header 'N: v'     extra request header (repeatable)\n"
          "      --data DATA         request body; @FILE reads it from FILE\n"
          "      --body-file FILE    request body from FILE\n"
          "      --targets FILE      requests used round-robin, one per line:\n"
          "                          METHOD URL [@BODYFILE] [| Name: value]... (one origin)\n"
          "      --timeout TIME      a request not answered in TIME is a timeout (default 10s)\n"
          "      --connect-timeout TIME  (default 10s)\n"
          "      --reqs-per-conn N   reconnect after N requests on a connection\n"
          "      --no-keepalive      a new connection per request\n"
          "      --latency           print the latency percentiles\n"
          "      --json              the report as one JSON object on stdout\n"
          "      --hdr-log FILE      the latency distribution in HdrHistogram's text format\n"
          "      --source-addrs A-B  bind connections to these local addresses in turn\n"
          "                          (a range 127.0.0.2-127.0.0.40 or a list a,b,c), for\n"
          "                          more connections than one address has ports\n"
          "      --resolve H:P:ADDR  use ADDR for host H port P\n"
          "      --dns-server A[:P]  DNS server instead of /etc/resolv.conf\n"
          "      --cacert FILE       https: trust the CA certificates in FILE (PEM)\n"
          "  -k, --insecure          https: no certificate or host name checks\n"
          "      --no-tls-resume     https: a full handshake on every connection (by\n"
          "                          default reconnections resume the session)\n",
          f);
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "ringfetch bench: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fputs("Try 'ringfetch bench --help'.\n", stderr);
    return 2;
}

/*
 * "127.0.0.2-127.0.0.40" (an IPv4 range) or "a,b,c" (IPv4 or IPv6): local addresses with
 * port 0. Returns how many, or -1.
 */
static int parse_sources(const char *arg, struct sockaddr_storage *out, int max)
{
    char buf[256], *save, *tok;
    int n = 0;

    if (strlen(arg) >= sizeof(buf))
        return -1;
    strcpy(buf, arg);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        struct in_addr lo, hi;

        memset(&out[n], 0, sizeof(out[n]));
        if (dash) {
            *dash = '\0';
            if (inet_pton(AF_INET, tok, &lo) != 1 || inet_pton(AF_INET, dash + 1, &hi) != 1 ||
                ntohl(hi.s_addr) < ntohl(lo.s_addr))
                return -1;
            for (uint32_t a = ntohl(lo.s_addr); a <= ntohl(hi.s_addr); a++) {
                struct sockaddr_in *sin = (struct sockaddr_in *)&out[n];

                if (n == max)
                    return -1;
                memset(&out[n], 0, sizeof(out[n]));
                sin->sin_family = AF_INET;
                sin->sin_addr.s_addr = htonl(a);
                n++;
            }
        } else if (n < max && inet_pton(AF_INET, tok, &((struct sockaddr_in *)&out[n])->sin_addr) == 1) {
            out[n++].ss_family = AF_INET;
        } else if (n < max &&
                   inet_pton(AF_INET6, tok, &((struct sockaddr_in6 *)&out[n])->sin6_addr) == 1) {
            out[n++].ss_family = AF_INET6;
        } else {
            return -1;
        }
    }
    return n ? n : -1;
}

static void live(void *userp, double elapsed, uint64_t requests, uint64_t errors)
{
    (void)userp;
    fprintf(stderr, "\r\033[K  %4.0fs  %llu requests  %.0f/s  %llu errors", elapsed,
            (unsigned long long)requests, elapsed > 0 ? requests / elapsed : 0.0,
            (unsigned long long)errors);
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

static void report_text(const struct bench_config *cfg, const struct bench_report *r,
                        int latency)
{
    const struct bench_totals *t = &r->t;
    double secs = r->duration_s > 0 ? r->duration_s : 1e-9;

    printf("  %u threads and %u connections\n", r->threads, r->connections);
    printf("  Latency  avg");
    put_us(stdout, hist_mean(&r->lat));
    printf("  stdev");
    put_us(stdout, hist_stdev(&r->lat));
    printf("  max");
    put_us(stdout, (double)hist_max(&r->lat));
    printf("\n");
    if (latency) {
        printf("  Latency Distribution%s\n",
               cfg->rate ? " (from each request's due time)" : "");
        for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
            printf("  %7g%%", pcts[i]);
            put_us(stdout, (double)hist_percentile(&r->lat, pcts[i]));
            printf("\n");
        }
    }
    printf("  %llu requests in %.2fs, ", (unsigned long long)t->requests, r->duration_s);
    put_bytes(stdout, (double)t->bytes);
    printf(" read\n");
    printf("  Connections: %llu established, %llu held at the end (peak %llu), "
           "%llu attempts (%.1f/s)\n",
           (unsigned long long)t->established, (unsigned long long)r->open_at_end,
           (unsigned long long)r->peak_open, (unsigned long long)t->connects,
           t->connects / secs);
    printf("  Status:");
    for (int code = 0; code < BENCH_STATUS_MAX; code++)
        if (t->status[code])
            printf(" %d x %llu", code, (unsigned long long)t->status[code]);
    printf("\n");
    if (t->tls_full || t->tls_resumed || r->tls_error[0])
        printf("  TLS handshakes: %llu full, %llu resumed\n", (unsigned long long)t->tls_full,
               (unsigned long long)t->tls_resumed);
    printf("  Errors: connect %llu, read %llu, write %llu, timeout %llu, non-2xx/3xx %llu\n",
           (unsigned long long)t->err_connect, (unsigned long long)t->err_read,
           (unsigned long long)t->err_write, (unsigned long long)t->err_timeout,
           (unsigned long long)t->non_2xx_3xx);
    if (r->tls_error[0])
        printf("  TLS: the first failed handshake: %s\n", r->tls_error);
    printf("Requests/sec: %.2f\n", t->requests / secs);
    if (cfg->rate)
        printf("Requested rate: %llu/s, achieved %.2f/s\n", (unsigned long long)cfg->rate,
               t->requests / secs);
    printf("Transfer/sec: ");
    put_bytes(stdout, t->bytes / secs);
    printf("\n");
}

static void report_json(const struct bench_config *cfg, const struct bench_report *r)
{
    const struct bench_totals *t = &r->t;
    const struct hist *h = &r->lat;
    double secs = r->duration_s > 0 ? r->duration_s : 1e-9;
    int first = 1;

    printf("{\"url\":");
    json_str(stdout, cfg->targets[0].url);
    printf(",\"targets\":%zu", cfg->n_targets);
    printf(",\"threads\":%u,\"connections\":%u,\"duration_s\":%.6f,\"requests\":%llu,"
           "\"rps\":%.2f,\"bytes\":%llu,\"bytes_per_s\":%.0f",
           r->threads, r->connections, r->duration_s, (unsigned long long)t->requests,
           t->requests / secs, (unsigned long long)t->bytes, t->bytes / secs);
    printf(",\"connects\":%llu,\"established\":%llu,\"open_at_end\":%llu,\"peak_open\":%llu",
           (unsigned long long)t->connects, (unsigned long long)t->established,
           (unsigned long long)r->open_at_end, (unsigned long long)r->peak_open);
    printf(",\"errors\":{\"connect\":%llu,\"read\":%llu,\"write\":%llu,\"timeout\":%llu,"
           "\"non_2xx_3xx\":%llu}",
           (unsigned long long)t->err_connect, (unsigned long long)t->err_read,
           (unsigned long long)t->err_write, (unsigned long long)t->err_timeout,
           (unsigned long long)t->non_2xx_3xx);
    printf(",\"status\":{");
    for (int code = 0; code < BENCH_STATUS_MAX; code++) {
        if (!t->status[code])
            continue;
        printf("%s\"%d\":%llu", first ? "" : ",", code, (unsigned long long)t->status[code]);
        first = 0;
    }
    printf("},\"latency_us\":{\"min\":%llu,\"mean\":%.2f,\"stdev\":%.2f,\"p50\":%llu,"
           "\"p75\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"p9999\":%llu,\"max\":%llu}",
           (unsigned long long)hist_min(h), hist_mean(h), hist_stdev(h),
           (unsigned long long)hist_percentile(h, 50), (unsigned long long)hist_percentile(h, 75),
           (unsigned long long)hist_percentile(h, 90), (unsigned long long)hist_percentile(h, 99),
           (unsigned long long)hist_percentile(h, 99.9),
           (unsigned long long)hist_percentile(h, 99.99), (unsigned long long)hist_max(h));
    if (cfg->rate)
        printf(",\"rate\":{\"requested\":%llu,\"achieved\":%.2f}", (unsigned long long)cfg->rate,
               t->requests / secs);
    printf(",\"tls_full\":%llu,\"tls_resumed\":%llu", (unsigned long long)t->tls_full,
           (unsigned long long)t->tls_resumed);
    if (r->tls_error[0]) {
        printf(",\"tls_error\":");
        json_str(stdout, r->tls_error);
    }
    printf("}\n");
}

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connections", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'},
        {"duration", required_argument, 0, 'd'},
        {"requests", required_argument, 0, 'n'},
        {"rate", required_argument, 0, 'R'},
        {"pipeline", required_argument, 0, 'p'},
        {"request", required_argument, 0, 'X'},
        {"header", required_argument, 0, 'H'},
        {"data", required_argument, 0, 'D'},
        {"body-file", required_argument, 0, 'B'},
        {"timeout", required_argument, 0, 'T'},
        {"connect-timeout", required_argument, 0, 'C'},
        {"reqs-per-conn", required_argument, 0, 'r'},
        {"no-keepalive", no_argument, 0, 'K'},
        {"latency", no_argument, 0, 'L'},
        {"json", no_argument, 0, 'J'},
        {"hdr-log", required_argument, 0, 'G'},
        {"resolve", required_argument, 0, 'S'},
        {"dns-server", required_argument, 0, 'N'},
        {"source-addrs", required_argument, 0, 'A'},
        {"targets", required_argument, 0, 'F'},
        {"cacert", required_argument, 0, OPT_CACERT},
        {"insecure", no_argument, 0, 'k'},
        {"no-tls-resume", no_argument, 0, 'Z'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct bench_config cfg = {
        .connections = 10, .threads = 1, .duration_ms = 10000, .timeout_ms = 10000,
        .connect_timeout_ms = 10000, .pipeline = 1,
    };
    const char *headers[MAX_HEADERS], *resolve[MAX_HEADERS], *hdr_log = NULL;
    const char *targets_file = NULL, *method = NULL;
    size_t n_headers = 0;
    struct targets file_targets = {0};
    struct bench_target one = {0};
    static struct sockaddr_storage sources[MAX_SOURCES];
    struct bench_report *rep;
    struct sigaction sa;
    char *body = NULL;
    size_t body_len = 0;
    int opt, latency = 0, json = 0, dur_set = 0, ret;
    uint64_t v;
    unsigned u;

    while ((opt = getopt_long(argc, argv, "c:t:d:n:R:p:X:H:kh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
        case 't':
        case 'p':
            if (parse_uint(optarg, opt == 'c' ? 10000000 : 1024, &u))
                return usage_error("bad number", optarg);
            *(opt == 'c' ? &cfg.connections : opt == 't' ? &cfg.threads : &cfg.pipeline) = u;
            break;
        case 'd':
            if (parse_duration_ms(optarg, &v) || v == 0)
                return usage_error("bad duration", optarg);
            cfg.duration_ms = v;
            dur_set = 1;
            break;
        case 'n':
        case 'R':
        case 'r':
            if (parse_size(optarg, &v) || v == 0)
                return usage_error("bad number", optarg);
            *(opt == 'n' ? &cfg.requests : opt == 'R' ? &cfg.rate : &cfg.reqs_per_conn) = v;
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
                return usage_error("bad timeout", optarg);
            *(opt == 'T' ? &cfg.timeout_ms : &cfg.connect_timeout_ms) = v;
            break;
        case 'L':
            latency = 1;
            break;
        case 'J':
            json = 1;
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
            int n = parse_sources(optarg, sources, MAX_SOURCES);

            if (n < 0)
                return usage_error("bad --source-addrs (a range A-B or a list a,b,c)", optarg);
            cfg.source = sources;
            cfg.n_source = (size_t)n;
            break;
        }
        case OPT_CACERT:
        case 'k':
            if (tls_option(opt, optarg, &cfg.ca_file, &cfg.insecure))
                return usage_error("cannot read the CA file", optarg);
            break;
        case 'Z':
            cfg.no_tls_resume = 1;
            break;
        case 'h':
            bench_usage(stdout);
            return 0;
        default:
            return usage_error("unknown option", NULL);
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
        char err[512];
        FILE *tf = fopen(targets_file, "r");
        int bad = !tf || targets_parse(tf, headers, n_headers, &file_targets, err,
                                       sizeof(err));

        if (tf)
            fclose(tf);
        if (bad) {
            fprintf(stderr, "ringfetch bench: %s: %s\n", targets_file,
                    tf ? err : "cannot open");
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
    if (isatty(STDERR_FILENO) && !json)
        cfg.tick = live;
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
    rep = malloc(sizeof(*rep));
    if (!rep)
        return 1;
    ret = bench_run(&cfg, rep);
    if (cfg.tick)
        fputs("\r\033[K", stderr);
    if (ret) {
        if (ret == -RF_ERR_INVALID_ARG && cfg.n_targets > 1)
            fprintf(stderr, "ringfetch bench: %s: every request must go to the same scheme, "
                            "host and port (invalid_argument)\n", targets_file);
        else
            fprintf(stderr, "ringfetch bench: %s: %s%s%s\n", cfg.targets[0].url,
                    rf_strerror((rf_error)-ret), rep->tls_error[0] ? ": " : "", rep->tls_error);
        targets_free(&file_targets);
        free(rep);
        free(body);
        return 1;
    }
    if (json)
        report_json(&cfg, rep);
    else
        report_text(&cfg, rep, latency);
    if (hdr_log) {
        FILE *f = fopen(hdr_log, "w");

        if (!f || hist_write_hdr_percentiles(&rep->lat, f, 1000.0) || fclose(f)) {
            fprintf(stderr, "ringfetch bench: cannot write %s\n", hdr_log);
            ret = 1;
        }
    }
    free(rep);
    free(body);
    targets_free(&file_targets);
    return ret ? 1 : 0;
}
