/*
 * fetch.c - `ringfetch fetch`: URLs in, one JSONL/CSV row per request line out, in input
 * order. The options, and the event loop: poll() over the input and the engine's
 * descriptor, so rows stream out while the input trickles in.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"

#define MAX_HEADERS 64
#define MAX_RESOLVE 256
#define PROGRESS_MS 250
#define FLUSH_BYTES (1u << 20) /* rows held before a write, within one loop turn */

struct fetch {
    struct input in;
    /* the request every line shares (RF_REQ_STATIC: alive all run long) */
    const char *method;
    const char *headers[MAX_HEADERS];
    size_t nheaders;
    char *body;
    size_t body_len;
    /* output: rows are made whole in `rows` and written whole */
    int out_fd;
    const char *out_name;
    enum row_format fmt;
    int keep_body;
    struct buf rows;
    unsigned fsync_every;
    uint64_t since_sync;
    int write_errno;
    int out_of_step; /* a result without its input line: a bug, said at the end */
    rf_engine *eng;
    /* standard error */
    int quiet, progress, same_tty, progress_shown;
    uint64_t total_lines; /* of the input, when known ahead (regular files only) */
    uint64_t status_class[6];
    uint64_t errors[RF_ERR__LAST];
    uint64_t rows_done;
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

static void flush_rows(struct fetch *f, int in_callback);

/* ---- the pull and result callbacks ---- */

static int pull(void *userp, rf_request *req)
{
    struct fetch *f = userp;
    int ret = input_pull(&f->in, req);

    if (ret == 1) {
        req->method = f->method;
        req->headers = f->headers;
        req->n_headers = f->nheaders;
        req->body = f->body;
        req->body_len = f->body_len;
        req->flags = RF_REQ_STATIC; /* one method, header set and body for every line */
    }
    return ret;
}

static void on_result(void *userp, const rf_result *r)
{
    struct fetch *f = userp;
    struct pending p;

    if (input_pop(&f->in, r->userdata, &p)) {
        f->out_of_step = 1;
        rf_cancel(f->eng);
        return;
    }
    rows_format(&f->rows, f->fmt, f->keep_body, r, &p);
    f->rows_done++;
    f->since_sync++;
    f->errors[r->error]++;
    if (r->error == RF_OK && r->status >= 100 && r->status < 600)
        f->status_class[r->status / 100]++;
    if ((f->fsync_every && f->since_sync >= f->fsync_every) || f->rows.len >= FLUSH_BYTES)
        flush_rows(f, 1); /* every N rows exactly: written and synced before the next */
}

/* ---- output ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void show_progress(struct fetch *f, int final);

/*
 * Write the rows made so far: whole rows in one write() (looping on a short one), so a
 * crash leaves at most the last row torn, which --resume cuts off. From inside the result
 * callback the progress line is left for the loop to redraw (the engine's counters are
 * not ours to read there).
 */
static void flush_rows(struct fetch *f, int in_callback)
{
    int err = 0, redraw = 0;

    if (!f->rows.len && !f->rows.oom)
        return;
    if (f->progress_shown && f->same_tty) {
        /* Rows and the progress line share the terminal: clear it first, redraw after. */
        write_all(2, "\r\033[K", 4);
        f->progress_shown = 0;
        redraw = 1;
    }
    if (f->rows.oom)
        err = ENOMEM;
    else if (!f->write_errno)
        err = write_all(f->out_fd, f->rows.p, f->rows.len);
    f->rows.len = 0;
    f->rows.oom = 0;
    if (!err && f->fsync_every && f->since_sync >= f->fsync_every) {
        if (fsync(f->out_fd) && errno != EINVAL && errno != EROFS)
            err = errno;
        f->since_sync = 0;
    }
    if (err && !f->write_errno) {
        /* A full disk: stop fetching what could not be written down. */
        f->write_errno = err;
        rf_cancel(f->eng);
    }
    if (redraw && !in_callback)
        show_progress(f, 0);
}

static void show_progress(struct fetch *f, int final)
{
    char line[256];
    rf_stats st;
    double now = mono_seconds(), el = now - f->t0;
    uint64_t lines;
    int n;

    if (!f->progress)
        return;
    if (!final && f->progress_shown && now - f->last_progress < PROGRESS_MS / 1000.0)
        return;
    f->last_progress = now;
    rf_get_stats(f->eng, &st);
    lines = input_lines(&f->in);
    n = snprintf(line, sizeof(line), "\r\033[K%llu rows, line %llu",
                 (unsigned long long)f->rows_done, (unsigned long long)lines);
    if (f->total_lines)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "/%llu",
                      (unsigned long long)f->total_lines);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ", %.0f/s, %llu in flight, %llu errors%s",
                  el > 0 ? f->rows_done / el : 0.0, (unsigned long long)st.in_flight,
                  (unsigned long long)st.errors, final ? "\n" : "");
    write_all(2, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    f->progress_shown = !final;
}

static void summary(const struct fetch *f, const rf_stats *st, double wall)
{
    uint64_t errs = 0;

    fprintf(stderr, "%llu results in %.3f s (%.0f/s), %llu connections opened\n",
            (unsigned long long)f->rows_done, wall, wall > 0 ? f->rows_done / wall : 0.0,
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

/* Lines of a regular file, counted ahead for the progress line's total. */
static uint64_t count_lines(const char *path)
{
    char buf[65536];
    uint64_t n = 0;
    size_t r;
    int last = '\n';
    FILE *fp = fopen(path, "rb");

    if (!fp)
        return 0;
    while ((r = fread(buf, 1, sizeof(buf), fp)) > 0) {
        for (size_t i = 0; i < r; i++)
            n += buf[i] == '\n';
        last = buf[r - 1];
    }
    fclose(fp);
    return n + (last != '\n');
}

/* 1 when standard output and standard error are the same terminal. */
static int same_terminal(void)
{
    struct stat a, b;

    return isatty(1) && isatty(2) && fstat(1, &a) == 0 && fstat(2, &b) == 0 &&
           a.st_rdev == b.st_rdev;
}

/* Open -o FILE (or --resume it), write the CSV header where one is due. 0, or 2 said. */
static int open_output(struct fetch *f, const char *output, const char *resume)
{
    const char *header = f->fmt == ROWS_CSV ? rows_csv_header(f->keep_body) : NULL;
    struct resume rs;
    char why[256];
    int err;

    f->out_name = output ? output : "standard output";
    if (!output) {
        f->out_fd = 1;
    } else {
        f->out_fd = open(
            output, O_CLOEXEC | (resume ? O_RDWR | O_CREAT : O_WRONLY | O_CREAT | O_TRUNC), 0666);
        if (f->out_fd < 0) {
            fprintf(stderr, "ringfetch fetch: cannot write %s: %s\n", output, strerror(errno));
            return 2;
        }
    }
    if (resume) {
        if (resume_scan(f->out_fd, f->fmt, header, &rs, why, sizeof(why))) {
            fprintf(stderr, "ringfetch fetch: --resume %s: %s\n", resume, why);
            return 2;
        }
        if (lseek(f->out_fd, 0, SEEK_END) < 0) {
            fprintf(stderr, "ringfetch fetch: --resume %s: %s\n", resume, strerror(errno));
            return 2;
        }
        if (rs.has_row && rs.line) {
            f->in.resuming = 1;
            f->in.done_line = rs.line;
            f->in.done_index = rs.index;
        }
        if (!f->quiet && (rs.has_row || rs.cut))
            fprintf(stderr, "ringfetch fetch: resuming %s after input line %llu (index %llu)%s\n",
                    resume, (unsigned long long)rs.line, (unsigned long long)rs.index,
                    rs.cut ? "; its torn last row was cut off" : "");
        if (rs.has_header)
            header = NULL;
    }
    if (header && (err = write_all(f->out_fd, header, strlen(header)))) {
        fprintf(stderr, "ringfetch fetch: cannot write %s: %s\n", f->out_name, strerror(err));
        return 2;
    }
    return 0;
}

/* The same file, by name or by inode. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;

    if (strcmp(a, b) == 0)
        return 1;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* ---- the event loop ---- */

static int run(struct fetch *f)
{
    int ret;

    for (;;) {
        struct pollfd pfd[2] = {{rf_engine_fd(f->eng), POLLIN, 0}, {-1, POLLIN, 0}};
        int n = 1, timeout = rf_engine_timeout_ms(f->eng);

        pfd[1].fd = input_poll_fd(&f->in);
        n += pfd[1].fd >= 0;
        if (f->progress && (timeout < 0 || timeout > PROGRESS_MS))
            timeout = PROGRESS_MS;
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            fprintf(stderr, "ringfetch fetch: poll: %s\n", strerror(errno));
            return -RF_ERR_SYSTEM;
        }
        if (n > 1 && pfd[1].revents)
            input_read(&f->in); /* readable, at its end, or failed: read() tells which */
        ret = rf_step(f->eng, 0);
        /* Rows of this turn go out now: head and tail -f see them. */
        flush_rows(f, 0);
        show_progress(f, 0);
        if (ret <= 0)
            return ret;
    }
}

int cmd_fetch(int argc, char **argv)
{
    static struct fetch f;
    const char *resolve[MAX_RESOLVE];
    const char *output = NULL, *resume = NULL, *shard_from = NULL;
    struct source *src;
    size_t n_src = 0;
    uint64_t shard_k = 0, shard_n = 0, v;
    unsigned shards = 0;
    int shard_given = 0, ret, rc = 0;
    struct sigaction sa;
    char errbuf[512] = "", name[64];
    rf_config cfg;
    rf_stats stats;
    rf_error err;
    int opt, li;

    memset(&f, 0, sizeof(f));
    rf_config_init(&cfg);
    src = calloc((size_t)argc + 1, sizeof(*src));
    if (!src)
        return 1;
    optind = 1;
    opterr = 0;
    /* '-': URL arguments come in order with the -i files; ':': missing values are ours. */
    for (;;) {
        const char *on;

        li = -1;
        if ((opt = getopt_long(argc, argv, "-:i:c:t:X:H:d:o:Lkqh", fetch_opts, &li)) == -1)
            break;
        on = opt_name(li, opt, name, sizeof(name));

        switch (opt) {
        case 1:
        case 'i':
            src[n_src].arg = optarg;
            src[n_src++].is_file = opt == 'i';
            break;
        case 'c':
            if (parse_uint(optarg, RF_MAX_CONCURRENCY, &cfg.concurrency))
                rc = bad_value(on, optarg, "requests at once: a whole number from 1 to 1000000");
            break;
        case 't':
            if (parse_uint(optarg, 256, &cfg.threads))
                rc = bad_value(on, optarg, "a whole number from 1 to 256");
            break;
        case O_TIMEOUT:
        case O_CONNECT_TIMEOUT:
            if (parse_duration_ms(optarg, &v) || v == 0 || v > UINT32_MAX)
                rc = bad_value(on, optarg, "a duration above 0, e.g. 1.5, 250ms, 2s");
            else
                *(opt == O_TIMEOUT ? &cfg.timeout_ms : &cfg.connect_timeout_ms) = (unsigned)v;
            break;
        case 'X':
            if (!valid_method(optarg))
                rc = bad_value(on, optarg, "a method is a token such as GET or PURGE");
            f.method = optarg;
            break;
        case 'H':
            if (f.nheaders == MAX_HEADERS)
                rc = bad_value(on, optarg, "at most 64 headers");
            else if (!valid_header(optarg))
                rc = bad_value(on, optarg, "a header is one 'Name: value' line");
            else
                f.headers[f.nheaders++] = optarg;
            break;
        case 'd':
            free(f.body);
            errno = 0;
            if (load_data(optarg, &f.body, &f.body_len)) {
                snprintf(errbuf, sizeof(errbuf), "the body, or @FILE to read it from: %s",
                         strerror(errno ? errno : ENOMEM));
                rc = bad_value(on, optarg, errbuf);
            }
            break;
        case O_MAX_BODY:
            if (parse_size(optarg, &cfg.max_body) || cfg.max_body == 0)
                rc = bad_value(on, optarg, "a size above 0, e.g. 1000, 64k, 1M");
            break;
        case 'o':
            output = optarg;
            break;
        case O_FORMAT:
            if (strcmp(optarg, "jsonl") == 0)
                f.fmt = ROWS_JSONL;
            else if (strcmp(optarg, "csv") == 0)
                f.fmt = ROWS_CSV;
            else
                rc = bad_value(on, optarg, "jsonl or csv");
            break;
        case O_RESOLVE:
            if (cfg.n_resolve == MAX_RESOLVE)
                rc = bad_value(on, optarg, "at most 256 of them");
            else
                resolve[cfg.n_resolve++] = optarg;
            break;
        case O_DNS_SERVER:
            cfg.dns_server = optarg;
            break;
        case O_WINDOW:
            if (parse_uint(optarg, RF_MAX_WINDOW, &cfg.window))
                rc = bad_value(on, optarg, "a whole number from 1 to 16777216");
            break;
        case O_NO_KEEPALIVE:
            cfg.keepalive = 0;
            break;
        case O_KEEP_BODY:
            if (parse_size(optarg, &v) || v > (1u << 30))
                rc = bad_value(on, optarg, "a size up to 1G, e.g. 200, 64k");
            else
                cfg.keep_body = (size_t)v;
            f.keep_body = cfg.keep_body > 0;
            break;
        case OPT_CACERT:
        case 'k':
            if (tls_option(opt, optarg, &cfg.ca_file, &cfg.insecure)) {
                snprintf(errbuf, sizeof(errbuf), "cannot read the CA file: %s", strerror(errno));
                rc = bad_value(on, optarg, errbuf);
            }
            break;
        case O_DEFAULT_SCHEME:
            if (strcasecmp(optarg, "http") && strcasecmp(optarg, "https"))
                rc = bad_value(on, optarg, "http or https");
            cfg.default_scheme = strcasecmp(optarg, "https") ? "http" : "https";
            break;
        case 'L':
            cfg.follow_redirects = 1;
            break;
        case O_MAX_REDIRS:
            if (parse_count(optarg, 1000, &cfg.max_redirects))
                rc = bad_value(on, optarg, "a whole number from 0 to 1000");
            break;
        case O_RETRIES:
            if (parse_count(optarg, 1000, &cfg.retries))
                rc = bad_value(on, optarg, "a whole number from 0 to 1000");
            break;
        case O_RETRY_ON:
            cfg.retry_on = optarg; /* the engine checks the names */
            break;
        case O_RETRY_DELAY:
            if (parse_duration_ms(optarg, &v) || v > 3600000)
                rc = bad_value(on, optarg, "a duration up to 1h, e.g. 0.5, 250ms, 2s");
            else
                cfg.retry_delay_ms = (unsigned)v;
            break;
        case O_PER_HOST:
            if (parse_uint(optarg, RF_MAX_CONCURRENCY, &cfg.per_host))
                rc = bad_value(on, optarg, "a whole number from 1 to 1000000");
            break;
        case O_HOST_RATE:
            if (parse_positive(optarg, &cfg.host_rate))
                rc = bad_value(on, optarg, "requests per second above 0, e.g. 10 or 0.5");
            break;
        case O_FSYNC_EVERY:
            if (parse_uint(optarg, UINT32_MAX, &f.fsync_every))
                rc = bad_value(on, optarg, "a number of rows above 0");
            break;
        case O_RESUME:
            resume = optarg;
            break;
        case O_SHARD:
            if (parse_shard(optarg, &shard_k, &shard_n))
                rc = bad_value(on, optarg, "K/N with 0 <= K < N, e.g. 0/4 ... 3/4");
            shard_given = 1;
            break;
        case O_SHARDS:
            if (parse_uint(optarg, UINT32_MAX, &shards))
                rc = bad_value(on, optarg, "a whole number above 0");
            break;
        case 'q':
            f.quiet = 1;
            break;
        case 'h':
            fetch_usage(stdout);
            goto out;
        default:
            rc = option_error(opt, argv, optind);
            break;
        }
        if (rc)
            goto out;
    }
    for (; optind < argc; optind++) { /* after "--" */
        src[n_src].arg = argv[optind];
        src[n_src++].is_file = 0;
    }
    if (n_src == 0) {
        /* Nothing named: standard input, unless somebody would have to type the URLs. */
        if (isatty(0)) {
            rc = usage_error("no URLs: give them as arguments, with -i FILE, or on standard "
                             "input (-i - reads a terminal too)");
            goto out;
        }
        src[n_src].arg = "-";
        src[n_src++].is_file = 1;
    }
    if (resume && (!output || !same_file(resume, output))) {
        rc = usage_error("--resume FILE goes with -o FILE, the same file: the rows there are "
                         "kept and the run goes on after them");
        goto out;
    }
    if (shard_given && shards) {
        rc = usage_error("--shard K/N and --shards N: give one of them");
        goto out;
    }
    if (!shard_given && (rc = shard_from_env(shards, &shard_k, &shard_n, &shard_from)))
        goto out;
    if (f.body && !f.method)
        f.method = "POST";
    if (input_open(&f.in, src, n_src)) {
        rc = 2;
        goto out_input;
    }
    f.in.shard_k = shard_k;
    f.in.shard_n = shard_n;
    if (shard_from && !f.quiet)
        fprintf(stderr, "ringfetch fetch: shard %llu/%llu (from %s)\n", (unsigned long long)shard_k,
                (unsigned long long)shard_n, shard_from);
    f.progress = !f.quiet && isatty(2);
    f.same_tty = same_terminal();
    for (size_t i = 0; f.progress && i < n_src; i++) {
        struct stat st;

        if (!src[i].is_file)
            f.total_lines++;
        else if (strcmp(src[i].arg, "-") && stat(src[i].arg, &st) == 0 && S_ISREG(st.st_mode))
            f.total_lines += count_lines(src[i].arg);
        else {
            f.total_lines = 0; /* a pipe: the total is not known */
            break;
        }
    }

    cfg.resolve = resolve;
    cfg.pull = pull;
    cfg.pull_userp = &f;
    cfg.on_result = on_result;
    cfg.result_userp = &f;
    cfg.errbuf = errbuf;
    cfg.errbuf_size = sizeof(errbuf);
    errbuf[0] = '\0';
    err = rf_engine_create(&f.eng, &cfg);
    if (err != RF_OK) {
        say_engine_error(&cfg, errbuf, err);
        rc = err == RF_ERR_INVALID_ARG || err == RF_ERR_TLS ? 2 : 1;
        goto out_input;
    }
    if ((rc = open_output(&f, output, resume)))
        goto out_engine;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns at once */
    sigemptyset(&sa.sa_mask);
    g_engine = f.eng;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    f.t0 = mono_seconds();
    ret = run(&f);
    flush_rows(&f, 0);
    if (f.fsync_every && !f.write_errno && fsync(f.out_fd) && errno != EINVAL && errno != EROFS)
        f.write_errno = errno;
    show_progress(&f, 1);
    rf_get_stats(f.eng, &stats);
    g_engine = NULL;
    rf_engine_destroy(f.eng);
    f.eng = NULL;
    if (!f.quiet)
        summary(&f, &stats, mono_seconds() - f.t0);
    if (output && close(f.out_fd) && !f.write_errno)
        f.write_errno = errno;
    if (f.write_errno) {
        fprintf(stderr, "ringfetch fetch: cannot write the rows to %s: %s\n", f.out_name,
                strerror(f.write_errno));
        rc = 1;
    } else if (f.out_of_step) {
        fputs("ringfetch fetch: internal error: a result without its input line\n", stderr);
        rc = 1;
    } else if (f.in.err) {
        fprintf(stderr, "ringfetch fetch: %s%s\n", f.in.err == -1 ? "--resume: " : "", f.in.why);
        /* A resume that does not match stops before its first request: a usage error. */
        rc = f.in.err == -1 ? 2 : 1;
    } else if (ret < 0) {
        fprintf(stderr, "ringfetch fetch: engine error: %s\n", rf_strerror((rf_error)-ret));
        rc = 1;
    } else if (g_signal) {
        fprintf(stderr, "ringfetch fetch: interrupted; in-flight requests reported as cancelled\n");
        rc = 128 + g_signal;
    }
    goto out_input;
out_engine:
    rf_engine_destroy(f.eng);
out_input:
    input_close(&f.in);
    buf_free(&f.rows);
out:
    free(f.body);
    free(src);
    return rc;
}
