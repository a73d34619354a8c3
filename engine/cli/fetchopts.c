/* fetchopts.c - fetch's options: the table, the help, and messages that name option and value. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

void fetch_usage(FILE *f)
{
    fputs("usage: ringfetch fetch [options] [URL...]\n"
          "URLs come from the arguments and -i files, in the order given, else from\n"
          "standard input. One row per request line; blank and '#' lines make none.\n"
          "  -i, --input FILE        read URLs from FILE, one per line ('-' = stdin)\n"
          "  -c, --concurrency N     requests at once (default 100, at most 1000000)\n"
          "  -t, --threads N         ring threads sharing them (default 1)\n"
          "      --timeout SEC       whole-request deadline incl. DNS and body (default 30)\n"
          "      --connect-timeout SEC  connect deadline, per address (default 10)\n"
          "  -X, --request METHOD    request method (default GET, POST with --data)\n"
          "  -H, --header 'N: v'     extra request header (repeatable)\n"
          "  -d, --data DATA         request body; @FILE reads it from FILE\n"
          "      --max-body SIZE     fail a response with a larger body (too_large)\n"
          "      --default-scheme S  for lines without scheme:// (default http)\n"
          "  -L, --location          follow redirects\n"
          "      --max-redirs N      at most N of them (default 10)\n"
          "      --retries N         retry a failure of --retry-on N times (default 0)\n"
          "      --retry-on LIST     errors and statuses to retry (default dns,refused,\n"
          "                          unreachable,connect_timeout,timeout,reset,closed,\n"
          "                          429,502,503,504)\n"
          "      --retry-delay TIME  backoff base, doubled per retry (default 0.5s)\n"
          "      --per-host N        at most N requests in flight per host\n"
          "      --host-rate R       at most R requests started per second per host\n"
          "  -o, --output FILE       write rows to FILE instead of stdout\n"
          "      --format jsonl|csv  row format (default jsonl)\n"
          "      --keep-body SIZE    add the first SIZE body bytes to each row (\"body\")\n"
          "      --fsync-every N     fsync the output every N rows\n"
          "      --resume FILE       with -o FILE: keep its rows, go on after the last\n"
          "      --shard K/N         only input lines L with (L-1) mod N = K (0 <= K < N)\n"
          "      --shards N          K from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID\n"
          "      --resolve H:P:A[,A...]  use these addresses for host H port P (repeatable)\n"
          "      --dns-server A[:P]  DNS server instead of /etc/resolv.conf\n"
          "      --window N          ordered-result window (default 64 x concurrency)\n"
          "      --no-keepalive      one connection per request\n"
          "      --cacert FILE       trust the CA certificates in FILE (PEM) for https,\n"
          "                          instead of /etc/ssl/certs/ca-certificates.crt\n"
          "  -k, --insecure          https without certificate or host name checks\n"
          "  -q, --quiet             no progress line and no summary\n",
          f);
}

int try_help(void)
{
    fputs("Try 'ringfetch fetch --help'.\n", stderr);
    return 2;
}

int usage_error(const char *msg)
{
    fprintf(stderr, "ringfetch fetch: %s\n", msg);
    return try_help();
}

/* "ringfetch fetch: --timeout: bad value '0' (a duration above 0, e.g. 1.5, 250ms, 2s)" */
int bad_value(const char *opt, const char *value, const char *what)
{
    fprintf(stderr, "ringfetch fetch: %s: bad value '", opt);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        /* a CR or an escape sequence in the value must not rewrite the terminal */
        if (*p == '\r' || *p == '\n')
            fputs(*p == '\r' ? "\\r" : "\\n", stderr);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(stderr, "\\x%02x", *p);
        else
            fputc(*p, stderr);
    }
    fprintf(stderr, "' (%s)\n", what);
    return try_help();
}

/* ---- options ---- */

const struct option fetch_opts[] = {
    {"input", required_argument, 0, 'i'},
    {"concurrency", required_argument, 0, 'c'},
    {"threads", required_argument, 0, 't'},
    {"timeout", required_argument, 0, O_TIMEOUT},
    {"connect-timeout", required_argument, 0, O_CONNECT_TIMEOUT},
    {"request", required_argument, 0, 'X'},
    {"header", required_argument, 0, 'H'},
    {"data", required_argument, 0, 'd'},
    {"max-body", required_argument, 0, O_MAX_BODY},
    {"output", required_argument, 0, 'o'},
    {"format", required_argument, 0, O_FORMAT},
    {"resolve", required_argument, 0, O_RESOLVE},
    {"dns-server", required_argument, 0, O_DNS_SERVER},
    {"window", required_argument, 0, O_WINDOW},
    {"no-keepalive", no_argument, 0, O_NO_KEEPALIVE},
    {"keep-body", required_argument, 0, O_KEEP_BODY},
    {"cacert", required_argument, 0, OPT_CACERT},
    {"insecure", no_argument, 0, 'k'},
    {"default-scheme", required_argument, 0, O_DEFAULT_SCHEME},
    {"location", no_argument, 0, 'L'},
    {"max-redirs", required_argument, 0, O_MAX_REDIRS},
    {"retries", required_argument, 0, O_RETRIES},
    {"retry-on", required_argument, 0, O_RETRY_ON},
    {"retry-delay", required_argument, 0, O_RETRY_DELAY},
    {"per-host", required_argument, 0, O_PER_HOST},
    {"host-rate", required_argument, 0, O_HOST_RATE},
    {"fsync-every", required_argument, 0, O_FSYNC_EVERY},
    {"resume", required_argument, 0, O_RESUME},
    {"shard", required_argument, 0, O_SHARD},
    {"shards", required_argument, 0, O_SHARDS},
    {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

/* The option as written: "--timeout" or "-c". */
const char *opt_name(int li, int opt, char *buf, size_t len)
{
    if (li >= 0)
        snprintf(buf, len, "--%s", fetch_opts[li].name);
    else
        snprintf(buf, len, "-%c", opt);
    return buf;
}

/* What getopt_long() refused (opterr is 0, so it said nothing). */
int option_error(int opt, char **argv, int optind_now)
{
    const char *el = optind_now > 0 ? argv[optind_now - 1] : "";
    char name[64];
    size_t n;

    if (strncmp(el, "--", 2) != 0) {
        if (opt == ':')
            fprintf(stderr, "ringfetch fetch: option '-%c' needs a value\n", optopt);
        else
            fprintf(stderr, "ringfetch fetch: unknown option '-%c'\n", optopt);
        return try_help();
    }
    n = strcspn(el, "=");
    snprintf(name, sizeof(name), "%.*s", (int)(n < 60 ? n : 60), el);
    if (opt == ':') {
        fprintf(stderr, "ringfetch fetch: option '%s' needs a value\n", name);
    } else if (optopt) {
        fprintf(stderr, "ringfetch fetch: option '%s' takes no value\n", name);
    } else {
        char list[512] = "";
        int matches = 0;

        for (const struct option *o = fetch_opts; o->name; o++) {
            if (strncmp(o->name, name + 2, n - 2) != 0)
                continue;
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s--%s",
                     matches++ ? ", " : " (", o->name);
        }
        fprintf(stderr, "ringfetch fetch: %s option '%s'%s\n",
                matches > 1 ? "ambiguous" : "unknown", name, matches > 1 ? strcat(list, ")") : "");
    }
    return try_help();
}

static void no_result(void *userp, const rf_result *r)
{
    (void)userp;
    (void)r;
}

/* 1 when an engine with this one string of the configuration set is refused. */
static int refused(const char *dns_server, const char *resolve, char *why, size_t len)
{
    rf_config c;
    rf_engine *e;

    rf_config_init(&c);
    c.concurrency = 1;
    c.on_result = no_result;
    c.dns_server = dns_server;
    c.resolve = &resolve;
    c.n_resolve = resolve != NULL;
    c.errbuf = why;
    c.errbuf_size = len;
    why[0] = '\0';
    if (rf_engine_create(&e, &c) != RF_OK)
        return 1;
    rf_engine_destroy(e);
    return 0;
}

/*
 * The engine's reason for refusing the configuration, with our option names. When it
 * does not say which --resolve or --dns-server value it refused, each is tried alone.
 */
void say_engine_error(const rf_config *cfg, const char *why, rf_error err)
{
    static const char *const names[][2] = {
        {"ca_file", "--cacert"},
        {"retry_on", "--retry-on"},
        {"resolve", "--resolve"},
        {"dns_server", "--dns-server"},
        {"default_scheme", "--default-scheme"},
        {"concurrency", "-c"},
        {"window", "--window"},
        {"user_agent", "-H 'User-Agent: ...'"},
    };
    char alone[256];

    if (err == RF_ERR_INVALID_ARG && (strstr(why, "resolve") || strstr(why, "dns_server"))) {
        if (cfg->dns_server && refused(cfg->dns_server, NULL, alone, sizeof(alone))) {
            bad_value("--dns-server", cfg->dns_server,
                      "an address and an optional port: 10.0.0.2, 10.0.0.2:5353, [::1]:53");
            return;
        }
        for (size_t i = 0; i < cfg->n_resolve; i++) {
            if (refused(NULL, cfg->resolve[i], alone, sizeof(alone))) {
                bad_value("--resolve", cfg->resolve[i],
                          "HOST:PORT:ADDR[,ADDR...], PORT a number or *, addresses IPv4 or IPv6");
                return;
            }
        }
    }
    if (!*why) {
        fprintf(stderr, "ringfetch fetch: cannot start the engine: %s\n", rf_strerror(err));
        return;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i][0]);

        if (strncmp(why, names[i][0], n) == 0 && (why[n] == ':' || why[n] == ' ')) {
            if (strcmp(names[i][0], "retry_on") == 0 && cfg->retry_on)
                fprintf(stderr, "ringfetch fetch: --retry-on: bad value '%s' (%s)\n", cfg->retry_on,
                        why + n + 2);
            else
                fprintf(stderr, "ringfetch fetch: %s%s\n", names[i][1], why + n);
            return;
        }
    }
    fprintf(stderr, "ringfetch fetch: cannot start the engine: %s\n", why);
}

/* ---- sharding ---- */

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    *out = strtoull(s, &end, 10);
    return errno || *end ? -1 : 0;
}

/* "K/N" with 0 <= K < N. */
int parse_shard(const char *s, uint64_t *k, uint64_t *n)
{
    const char *slash = strchr(s, '/');
    char kb[32];

    if (!slash || (size_t)(slash - s) >= sizeof(kb))
        return -1;
    memcpy(kb, s, (size_t)(slash - s));
    kb[slash - s] = '\0';
    return parse_u64(kb, k) || parse_u64(slash + 1, n) || *n == 0 || *k >= *n ? -1 : 0;
}

/*
 * Without --shard: the shard of an indexed batch job. Kubernetes (Indexed Job) sets
 * JOB_COMPLETION_INDEX (0-based) but not the count: --shards N gives it. Slurm job arrays
 * set SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT. 0, or 2 said.
 */
int shard_from_env(unsigned shards, uint64_t *k, uint64_t *n, const char **from)
{
    const char *job = getenv("JOB_COMPLETION_INDEX"), *id = getenv("SLURM_ARRAY_TASK_ID");
    const char *count = getenv("SLURM_ARRAY_TASK_COUNT"), *min = getenv("SLURM_ARRAY_TASK_MIN");
    uint64_t lo = 0;
    char what[128];

    if (job && shards) {
        *from = "JOB_COMPLETION_INDEX";
        *n = shards;
        if (parse_u64(job, k) || *k >= *n) {
            snprintf(what, sizeof(what), "a shard number from 0 to %u for --shards %u", shards - 1,
                     shards);
            return bad_value("JOB_COMPLETION_INDEX", job, what);
        }
        return 0;
    }
    if (id && (shards || count)) {
        *from = "SLURM_ARRAY_TASK_ID";
        if (shards)
            *n = shards;
        else if (parse_u64(count, n) || *n == 0)
            return bad_value("SLURM_ARRAY_TASK_COUNT", count, "a whole number above 0");
        if (min && parse_u64(min, &lo))
            return bad_value("SLURM_ARRAY_TASK_MIN", min, "a whole number");
        if (parse_u64(id, k) || *k < lo || *k - lo >= *n) {
            snprintf(what, sizeof(what), "from %llu to %llu: SLURM_ARRAY_TASK_MIN + 0..N-1",
                     (unsigned long long)lo, (unsigned long long)(lo + *n - 1));
            return bad_value("SLURM_ARRAY_TASK_ID", id, what);
        }
        *k -= lo; /* an array 1-4 has shards 0..3 as one of 0-3 has */
        return 0;
    }
    if (shards)
        return usage_error("--shards N takes the shard number from JOB_COMPLETION_INDEX or "
                           "SLURM_ARRAY_TASK_ID, and neither is set (or give --shard K/N)");
    return 0;
}
