/*
 * run.c - rf_bench_run(): check the configuration, resolve the origin once, serialise the
 * requests, start the threads together, gather their intervals while they run, and merge
 * their results into the report.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bench/bench.h"
#include "proto/dns.h"
#include "ring/clock.h"

#define WATCH_NS 20000000 /* how often the run looks at its threads' intervals: 20 ms */

/* What the report points to while the run fills it; rf_bench_report_free() frees it. */
struct report_mem {
    rf_hist *latency;
    rf_bench_interval *intervals;
    uint64_t *thread_requests;
};

void rf_bench_config_init_size(rf_bench_config *cfg, size_t size)
{
    rf_bench_config d = {
        .connections = 10, .threads = 1, .pipeline = 1, .duration_ms = 10000,
        .interval_ms = 1000, .timeout_ms = 10000, .connect_timeout_ms = 10000,
        .tls_resume = 1, .slack_us = 50, .rx_timestamps = 1,
    };

    /* A caller built against an older header has a smaller struct: fill what it has. */
    d.size = size < sizeof(d) ? size : sizeof(d);
    memcpy(cfg, &d, d.size);
}

static rf_error fail(rf_bench_report *rep, rf_error err, const char *why)
{
    if (!rep->error[0])
        snprintf(rep->error, sizeof(rep->error), "%s", why);
    return err;
}

/* ---- the origin's addresses, once, before any thread starts ---- */

struct lookup {
    int done, err;
    const struct rf_addrs *addrs;
};

static void lookup_done(void *ctx, uint64_t cookie, int err, const struct rf_addrs *addrs)
{
    struct lookup *l = ctx;

    (void)cookie;
    l->done = 1;
    l->err = err;
    l->addrs = addrs;
}

/* The resolver on a ring of its own, driven until it answers (bounded by its timeouts). */
static int resolve(struct bench *b, const char *host, uint32_t len)
{
    struct rf_dns_config dc = {
        .server = b->cfg->dns_server, .resolve = b->cfg->resolve, .n_resolve = b->cfg->n_resolve,
    };
    struct lookup l = {0};
    struct rf_ring ring;
    struct rf_dns *dns;
    int ret;

    if (ring_init(&ring, 64, 0, 0, 0, 0))
        return -RF_ERR_SYSTEM;
    ret = dns_create(&dns, &ring, &dc, lookup_done, &l);
    if (ret == 0) {
        ret = dns_lookup(dns, host, len, b->port, &l.addrs, 0);
        for (int turns = 0; ret == 1 && !l.done && turns < 1000; turns++) {
            ring_wait(&ring, 1, 10000);
            ring_dispatch(&ring, UINT_MAX);
        }
        if (ret == 1)
            ret = l.done && !l.err ? 0 : -RF_ERR_DNS;
        dns_destroy(dns);
    }
    ring_exit(&ring);
    if (ret)
        return ret;
    b->addrs = l.addrs;
    return 0;
}

/* ---- the requests, serialised once ---- */

/* Append target t's request (head and body) to *buf. 0 or -rf_error. */
static int append_request(const rf_bench_target *t, int close, char **buf, size_t *len)
{
    static const char ua[] = "User-Agent: ringfetch-bench/" RINGFETCH_VERSION_STR "\r\n";
    char head[16384], hdrs[16384];
    struct rf_url u;
    struct http1_req r = {
        .method = t->method ? t->method : t->body ? "POST" : "GET",
        .url = t->url, .u = &u, .hdrs = hdrs,
        .has_body = t->body != NULL, .body_len = t->body_len,
        .ua_line = ua, .ua_len = sizeof(ua) - 1, .close = close,
    };
    int hlen = http1_header_block(t->headers, t->headers ? t->n_headers : 0, hdrs,
                                  sizeof(hdrs), &r.has);
    char *grown;

    if (url_parse(t->url, strlen(t->url), &u))
        return -RF_ERR_INVALID_URL;
    if (hlen < 0 || !http1_valid_method(r.method))
        return -RF_ERR_INVALID_ARG;
    r.hdrs_len = (size_t)hlen;
    hlen = http1_format_request(head, sizeof(head), &r);
    if (hlen < 0 || t->body_len > UINT32_MAX / 2 - (size_t)hlen - *len)
        return -RF_ERR_INVALID_ARG;
    grown = realloc(*buf, *len + (size_t)hlen + t->body_len);
    if (!grown)
        return -RF_ERR_NOMEM;
    *buf = grown;
    memcpy(*buf + *len, head, (size_t)hlen);
    if (t->body_len)
        memcpy(*buf + *len + hlen, t->body, t->body_len);
    *len += (size_t)hlen + t->body_len;
    return 0;
}

/* seq/off and close_seq/close_off (see struct bench), and which targets are HEAD. */
static int build_templates(struct bench *b)
{
    const rf_bench_config *cfg = b->cfg;
    size_t n = b->ntargets, len = 0;
    int ret;

    b->off = calloc(n + b->pipeline, sizeof(*b->off));
    b->close_off = calloc(n + 1, sizeof(*b->close_off));
    b->is_head = calloc(n, 1);
    if (!b->off || !b->close_off || !b->is_head)
        return -RF_ERR_NOMEM;
    for (size_t i = 0; i < n + b->pipeline - 1; i++) {
        b->off[i] = (uint32_t)len;
        ret = append_request(&cfg->targets[i % n], 0, &b->seq, &len);
        if (ret)
            return ret;
    }
    b->off[n + b->pipeline - 1] = (uint32_t)len;
    len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *m = cfg->targets[i].method;

        b->close_off[i] = (uint32_t)len;
        ret = append_request(&cfg->targets[i], 1, &b->close_seq, &len);
        if (ret)
            return ret;
        b->is_head[i] = m && strcmp(m, "HEAD") == 0;
    }
    b->close_off[n] = (uint32_t)len;
    /*
     * A send of at most a few KiB completes in full (MSG_WAITALL) long before the next
     * one on its connection, which waits for a response: its completion says nothing
     * we need, so only a failed send posts one. That is one CQE less per request.
     */
    b->quiet_sends = !b->tls; /* a TLS flight's buffer is free again only at its completion */
    for (unsigned t = 0; t < b->ntargets; t++)
        b->quiet_sends &= b->off[t + b->pipeline] - b->off[t] <= 4096;
    return 0;
}

/* Every target must go to the first one's origin: the connections are shared. */
static int same_origin(const rf_bench_config *cfg, struct rf_url *first)
{
    for (size_t i = 0; i < cfg->n_targets; i++) {
        const char *s = cfg->targets[i].url;
        struct rf_url u;
        int ret;

        if (!s)
            return -RF_ERR_INVALID_ARG;
        ret = url_parse(s, strlen(s), &u);
        if (ret)
            return ret;
        if (i == 0) {
            *first = u;
        } else if (u.scheme != first->scheme || u.port != first->port ||
                   u.host_len != first->host_len ||
                   strncasecmp(s + u.host_off, cfg->targets[0].url + first->host_off,
                               u.host_len) != 0) {
            return -RF_ERR_INVALID_ARG;
        }
    }
    return 0;
}

static int parse_sources(struct bench *b)
{
    const rf_bench_config *cfg = b->cfg;

    if (!cfg->n_source_addrs)
        return 0;
    b->sources = calloc(cfg->n_source_addrs, sizeof(*b->sources));
    if (!b->sources)
        return -RF_ERR_NOMEM;
    for (size_t i = 0; i < cfg->n_source_addrs; i++)
        if (addr_parse(cfg->source_addrs[i], &b->sources[i]))
            return -RF_ERR_INVALID_ARG;
    b->nsources = cfg->n_source_addrs;
    return 0;
}

/* ---- threads ---- */

static int make_threads(struct bench *b, struct bthread **out, unsigned *count)
{
    const rf_bench_config *cfg = b->cfg;
    unsigned cap = ring_max_files() / 2, nw = cfg->threads ? cfg->threads : 1, first = 0;
    struct bthread *ts;

    /* Enough rings that no registered table goes over the open-file limit. */
    if (nw < (cfg->connections + cap - 1) / cap)
        nw = (cfg->connections + cap - 1) / cap;
    if (nw > cfg->connections)
        nw = cfg->connections;
    ts = calloc(nw, sizeof(*ts));
    if (!ts)
        return -RF_ERR_NOMEM;
    *out = ts;
    *count = nw;
    for (unsigned i = 0; i < nw; i++) {
        struct bthread *t = &ts[i];

        t->b = b;
        t->id = i;
        t->nconns = cfg->connections / nw + (i < cfg->connections % nw);
        if (cfg->requests)
            t->quota = cfg->requests / nw + (i < cfg->requests % nw);
        if (cfg->rate > 0)
            t->due_step_us = 1e6 * nw / cfg->rate;
        t->addrs = addrs_new(b->addrs->n);
        if (!t->addrs)
            return -RF_ERR_NOMEM;
        memcpy(t->addrs->a, b->addrs->a, b->addrs->n * sizeof(b->addrs->a[0]));
        t->addrs->n = b->addrs->n;
        t->bc = calloc(t->nconns, sizeof(*t->bc));
        t->due_slab = calloc((size_t)t->nconns * b->pipeline, sizeof(uint64_t));
        t->iv = calloc(IV_SLOTS, sizeof(*t->iv));
        if (b->tls)
            t->tls_slab = calloc(t->nconns, sizeof(*t->tls_slab));
        if (!t->bc || !t->due_slab || !t->iv || (b->tls && !t->tls_slab))
            return -RF_ERR_NOMEM;
        for (uint32_t k = 0; k < t->nconns; k++) {
            struct bconn *c = &t->bc[k];

            conn_init(&c->c, k);
            c->t = t;
            c->t_due = t->due_slab + (size_t)k * b->pipeline;
            if (b->nsources)
                c->src = &b->sources[(first + k) % b->nsources];
            list_init(&c->ready);
            dq_node_init(&c->timer);
        }
        first += t->nconns;
    }
    return 0;
}

/* Wait until the wall clock reads start_at (CLOCK_REALTIME, absolute). */
static void wait_until(double start_at)
{
    struct timespec ts = {(time_t)start_at, (long)((start_at - (double)(time_t)start_at) * 1e9)};

    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static double wall_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Merge interval k of every thread into one interval of the series. */
static int gather_interval(struct bench *b, struct bthread *ts, unsigned nw, uint64_t k,
                           uint64_t *prev_end, struct hist *h, rf_bench_report *rep,
                           struct report_mem *mem, size_t *cap)
{
    rf_bench_interval iv;
    uint64_t end = 0;

    memset(&iv, 0, sizeof(iv));
    hist_reset(h);
    for (unsigned i = 0; i < nw; i++) {
        const struct iv_slot *s = &ts[i].iv[k % IV_SLOTS];

        iv.requests += s->requests;
        iv.errors += s->errors;
        iv.bytes += s->bytes;
        hist_merge(h, &s->lat);
        end = s->end_us > end ? s->end_us : end;
    }
    iv.t_s = (double)(end - b->t_measure) / 1e6;
    iv.length_s = (double)(end - *prev_end) / 1e6;
    *prev_end = end;
    iv.p50_us = hist_percentile(h, 50);
    iv.p99_us = hist_percentile(h, 99);
    iv.max_us = hist_max(h);
    if (rep->n_intervals == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        rf_bench_interval *p = realloc(mem->intervals, ncap * sizeof(*p));

        if (!p)
            return -RF_ERR_NOMEM;
        mem->intervals = p;
        *cap = ncap;
    }
    mem->intervals[rep->n_intervals++] = iv;
    if (b->cfg->on_interval)
        b->cfg->on_interval(b->cfg->userp, &iv);
    return 0;
}

/* Until every thread is done: take each interval once all threads have closed it. */
static int watch(struct bench *b, struct bthread *ts, unsigned nw, rf_bench_report *rep,
                 struct report_mem *mem)
{
    struct hist *h = malloc(sizeof(*h));
    uint64_t k = 0, prev_end = b->t_measure;
    size_t cap = 0;
    int ret = 0, all_done = 0;

    if (!h)
        return -RF_ERR_NOMEM;
    while (!ret) {
        unsigned done = 0;
        uint64_t ready = UINT64_MAX;

        for (unsigned i = 0; i < nw; i++) {
            uint64_t d = __atomic_load_n(&ts[i].iv_done, __ATOMIC_ACQUIRE);

            ready = d < ready ? d : ready;
            done += __atomic_load_n(&ts[i].done, __ATOMIC_ACQUIRE) != 0;
        }
        for (; k < ready && !ret; k++)
            ret = gather_interval(b, ts, nw, k, &prev_end, h, rep, mem, &cap);
        if (all_done)
            break;
        all_done = done == nw; /* one more pass takes what they published last */
        if (!all_done)
            nanosleep(&(struct timespec){0, WATCH_NS}, NULL);
    }
    free(h);
    return ret;
}

static void merge(rf_bench_report *rep, struct hist *lat, const struct bthread *t)
{
    const struct bench_totals *s = &t->t;

    rep->requests += s->requests;
    rep->bytes += s->bytes;
    rep->connects += s->connects;
    rep->established += s->established;
    rep->err_connect += s->err_connect;
    rep->err_read += s->err_read;
    rep->err_write += s->err_write;
    rep->err_timeout += s->err_timeout;
    rep->non_2xx_3xx += s->non_2xx_3xx;
    rep->tls_full += s->tls_full;
    rep->tls_resumed += s->tls_resumed;
    for (unsigned i = 0; i < RF_BENCH_STATUS_MAX; i++)
        rep->status[i] += s->status[i];
    if (!rep->error[0] && t->tls_error[0])
        snprintf(rep->error, sizeof(rep->error), "%s", t->tls_error);
    hist_merge(lat, &t->lat);
    rep->open_at_end += t->open;
    rep->peak_open += t->peak_open;
}

static int check_config(const rf_bench_config *cfg)
{
    if (cfg->size < offsetof(rf_bench_config, stop) || !cfg->connections || !cfg->n_targets || !cfg->targets ||
        (!cfg->duration_ms && !cfg->requests) || cfg->slack_us > 50 || cfg->rate < 0 ||
        (cfg->interval_ms && cfg->interval_ms < 100))
        return -RF_ERR_INVALID_ARG;
    /* A closing request must be the last one on the wire. */
    if (cfg->reqs_per_conn && cfg->pipeline > 1)
        return -RF_ERR_INVALID_ARG;
    return 0;
}

/* A report from a program built against an older header: its struct ends sooner. */
#define REPORT_MIN offsetof(rf_bench_report, latency_method)

static rf_error run(const rf_bench_config *config, rf_bench_report *rep);

rf_error rf_bench_run(const rf_bench_config *config, rf_bench_report *out)
{
    rf_bench_report rep;
    rf_error err;

    if (!out || out->size < REPORT_MIN)
        return RF_ERR_INVALID_ARG;
    rep.size = sizeof(rep);
    err = run(config, &rep);
    /* Only what the caller's struct has: a newer library must not write past it. */
    rep.size = out->size < sizeof(rep) ? out->size : sizeof(rep);
    memcpy(out, &rep, rep.size);
    return err;
}

static rf_error run(const rf_bench_config *config, rf_bench_report *rep)
{
    static const volatile sig_atomic_t never;
    rf_bench_config cfg;
    struct bench b;
    struct bthread *ts = NULL;
    struct report_mem mem;
    struct rf_url u = {0};
    unsigned nw = 0, started = 0;
    uint64_t start, stamped = 0, answers = 0;
    int ret;

    memset(rep, 0, sizeof(*rep));
    rep->size = sizeof(*rep);
    memset(&mem, 0, sizeof(mem));
    if (!(mem.latency = rf_hist_create()))
        return fail(rep, RF_ERR_NOMEM, "out of memory");
    rep->latency = mem.latency;
    if (!config || check_config(config) != 0)
        return fail(rep, RF_ERR_INVALID_ARG, "invalid configuration");
    /* Fields an older caller's struct lacks keep their defaults. */
    rf_bench_config_init(&cfg);
    memcpy(&cfg, config, config->size < sizeof(cfg) ? config->size : sizeof(cfg));
    if (!cfg.stop)
        cfg.stop = (volatile sig_atomic_t *)&never;
    if (!cfg.interval_ms)
        cfg.interval_ms = 1000;
    memset(&b, 0, sizeof(b));
    b.cfg = &cfg;
    b.pipeline = cfg.pipeline ? cfg.pipeline : 1;
    b.refill = b.pipeline >= 2 ? b.pipeline / 2 : 1;
    b.ntargets = (unsigned)cfg.n_targets;
    b.interval_us = cfg.interval_ms * 1000;
    ret = same_origin(&cfg, &u);
    if (ret == -RF_ERR_INVALID_ARG)
        fail(rep, RF_ERR_INVALID_ARG, "every request must go to the same scheme, host and port");
    if (ret == 0) {
        const char *url = cfg.targets[0].url;

        b.port = u.port;
        for (uint32_t i = 0; i < u.host_len; i++)
            b.host[i] = (char)(url[u.host_off + i] >= 'A' && url[u.host_off + i] <= 'Z'
                                   ? url[u.host_off + i] + 32 : url[u.host_off + i]);
        ret = resolve(&b, b.host, u.host_len);
    }
    if (ret == 0 && u.scheme == RF_SCHEME_HTTPS) {
        struct tls_opts o = {.ca_file = cfg.ca_file, .insecure = cfg.insecure};

        if (tls_ctx_new(&b.tls, &o, rep->error, sizeof(rep->error)))
            ret = -RF_ERR_TLS;
    }
    if (ret == 0)
        ret = build_templates(&b);
    if (ret == 0)
        ret = parse_sources(&b);
    if (ret == 0)
        ret = make_threads(&b, &ts, &nw);
    if (ret)
        goto out;
    for (; started < nw; started++) {
        if (pthread_create(&ts[started].thread, NULL, bench_thread_main, &ts[started])) {
            __atomic_store_n(&b.abort, 1, __ATOMIC_RELEASE);
            break;
        }
    }
    /* Every ring is set up before the clock starts, so setup is not part of the run. */
    while (__atomic_load_n(&b.ready, __ATOMIC_ACQUIRE) < started)
        nanosleep(&(struct timespec){0, 200000}, NULL);
    if (cfg.start_at > 0) {
        wait_until(cfg.start_at);
        rep->start_offset_us = (wall_seconds() - cfg.start_at) * 1e6;
    }
    start = now_us();
    b.t_measure = start + cfg.warmup_ms * 1000;
    b.t_end = cfg.duration_ms ? b.t_measure + cfg.duration_ms * 1000 : UINT64_MAX;
    rep->start_epoch_s = wall_seconds() + (double)cfg.warmup_ms / 1e3;
    __atomic_store_n(&b.go, 1, __ATOMIC_RELEASE);
    if (!b.abort)
        ret = watch(&b, ts, nw, rep, &mem);
    for (unsigned i = 0; i < started; i++)
        pthread_join(ts[i].thread, NULL);
    rep->duration_s = (double)(now_us() - b.t_measure) / 1e6;
    if (b.t_end != UINT64_MAX && now_us() > b.t_end)
        rep->duration_s = (double)cfg.duration_ms / 1e3;
    rep->warmup_s = (double)cfg.warmup_ms / 1e3;
    if (b.abort && !ret)
        ret = -RF_ERR_SYSTEM;
    mem.thread_requests = calloc(nw, sizeof(uint64_t));
    for (unsigned i = 0; i < nw; i++) {
        if (ts[i].err)
            ret = ts[i].err;
        merge(rep, &mem.latency->h, &ts[i]);
        stamped += ts[i].stamped;
        answers += ts[i].answers;
        if (mem.thread_requests)
            mem.thread_requests[i] = ts[i].t.requests;
    }
    rep->thread_requests = mem.thread_requests;
    rep->threads = nw;
    rep->connections = cfg.connections;
    rep->rate_achieved = rep->duration_s > 0 ? (double)rep->requests / rep->duration_s : 0;
    /* Kernel timestamps are the method when (nearly) every response had one. */
    rep->timestamped = answers ? (double)stamped / (double)answers : 0;
    rep->latency_method = answers && rep->timestamped >= 0.99 ? "kernel-timestamp"
                                                               : "clock-per-batch";
out:
    rep->intervals = mem.intervals;
    for (unsigned i = 0; ts && i < nw; i++)
        bench_thread_free(&ts[i]);
    free(ts);
    free(b.seq);
    free(b.close_seq);
    free(b.off);
    free(b.close_off);
    free(b.is_head);
    free(b.sources);
    addrs_release(b.addrs);
    tls_ctx_free(b.tls);
    if (ret && !rep->error[0])
        snprintf(rep->error, sizeof(rep->error), "%s", rf_strerror((rf_error)-ret));
    return ret ? (rf_error)-ret : RF_OK;
}

void rf_bench_report_free(rf_bench_report *rep)
{
    if (!rep || rep->size < REPORT_MIN)
        return;
    rf_hist_destroy((rf_hist *)rep->latency);
    free((void *)rep->intervals);
    free((void *)rep->thread_requests);
    rep->latency = NULL;
    rep->intervals = NULL;
    rep->thread_requests = NULL;
    rep->n_intervals = 0;
}
