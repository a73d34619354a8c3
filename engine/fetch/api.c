/* api.c - the fetch engine's public API: creation, submission, the loop turn, in-order
 * delivery, cancellation and event-loop integration. */
#include <ares_version.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch/fetch.h"
#include "ring/clock.h"

/* rf_request as 0.3.0 defined it: what a request with size 0 is read as. */
#define REQUEST_SIZE_0_3 (offsetof(rf_request, keep_body) + sizeof(size_t))

#define STEP_TURNS 64     /* admission rounds one rf_step() runs while bad input fails fast */
#define STEP_CQES 256     /* completions one round handles: the rest wait for the next */
#define STEP_BUDGET_US 1000 /* an rf_step() returns after about this much work, so an event
                               loop around it serves its other descriptors in time */

__thread const rf_engine *rf_in_callback;

const char *rf_strerror(rf_error err)
{
    /* No default: the compiler flags a new code that has no string. */
    switch (err) {
    case RF_OK: return "ok";
    case RF_ERR_INVALID_URL: return "invalid_url";
    case RF_ERR_UNSUPPORTED_SCHEME: return "unsupported_scheme";
    case RF_ERR_DNS: return "dns";
    case RF_ERR_REFUSED: return "refused";
    case RF_ERR_UNREACHABLE: return "unreachable";
    case RF_ERR_CONNECT_TIMEOUT: return "connect_timeout";
    case RF_ERR_TIMEOUT: return "timeout";
    case RF_ERR_RESET: return "reset";
    case RF_ERR_CLOSED: return "closed";
    case RF_ERR_PROTOCOL: return "protocol";
    case RF_ERR_TOO_LARGE: return "too_large";
    case RF_ERR_CANCELLED: return "cancelled";
    case RF_ERR_RESOURCE: return "resource";
    case RF_ERR_INVALID_ARG: return "invalid_argument";
    case RF_ERR_NOMEM: return "out_of_memory";
    case RF_ERR_RECURSIVE: return "recursive_call";
    case RF_ERR_SYSTEM: return "system";
    case RF_ERR_TLS: return "tls";
    case RF_ERR_TLS_VERIFY: return "tls_verify";
    case RF_ERR_REDIRECT_LOOP: return "redirect_loop";
    case RF_ERR_TOO_MANY_REDIRECTS: return "too_many_redirects";
    case RF_ERR__LAST: break;
    }
    return "unknown";
}

const char *rf_version(void) { return RINGFETCH_VERSION_STR; }

#define STR_(x) #x
#define STR(x) STR_(x)
static char details[192];
static pthread_once_t details_once = PTHREAD_ONCE_INIT;

static void details_init(void)
{
    snprintf(details, sizeof(details),
             "llhttp " STR(LLHTTP_VERSION_MAJOR) "." STR(LLHTTP_VERSION_MINOR) "."
             STR(LLHTTP_VERSION_PATCH) ", liburing, c-ares " ARES_VERSION_STR ", %s",
             tls_library());
}

const char *rf_version_details(void)
{
    pthread_once(&details_once, details_init);
    return details;
}

rf_error rf_check_request(const rf_request *req)
{
    unsigned has;
    struct rf_url u;
    struct url_userinfo ui;
    char *wire;
    size_t len;
    int n;

    if (!req || !http1_valid_method(req->method ? req->method : "GET") ||
        http1_header_block(req->headers, req->headers ? req->n_headers : 0, NULL, 0, &has) < 0)
        return RF_ERR_INVALID_ARG;
    if (!req->url)
        return RF_OK;
    len = strlen(req->url);
    if (len > RF_URL_MAX)
        return RF_ERR_INVALID_URL;
    wire = malloc(3 * len + 1024);
    if (!wire)
        return RF_ERR_NOMEM;
    n = url_normalize(req->url, len, "http", wire, 3 * len + 1024, &ui);
    n = n < 0 ? n : url_parse(wire, (size_t)n, &u);
    free(wire);
    return n ? (rf_error)-n : RF_OK;
}

void rf_config_init_size(rf_config *cfg, size_t size)
{
    rf_config d = {
        .concurrency = 100, .threads = 1, .keepalive = 1, .default_scheme = "http",
        .connect_timeout_ms = 10000, .timeout_ms = 30000, .max_header_bytes = 65536,
        .max_redirects = 10, .retry_delay_ms = 500,
    };

    /* A caller built against an older header has a smaller struct: fill what it has. */
    d.size = size < sizeof(d) ? size : sizeof(d);
    memcpy(cfg, &d, d.size);
}

/* ---- creation ---- */

static rf_error fail(const rf_config *cfg, rf_error err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rf_error fail(const rf_config *cfg, rf_error err, const char *fmt, ...)
{
    va_list ap;

    if (cfg && cfg->size >= offsetof(rf_config, errbuf_size) + sizeof(size_t) && cfg->errbuf &&
        cfg->errbuf_size) {
        va_start(ap, fmt);
        vsnprintf(cfg->errbuf, cfg->errbuf_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* Keep our own copy of a configuration string; NULL stays NULL. */
static int own(rf_engine *e, const char **s)
{
    char *copy;

    if (!*s)
        return 0;
    copy = strdup(*s);
    if (!copy)
        return -1;
    e->owned[e->n_owned++] = copy;
    *s = copy;
    return 0;
}

static int copy_config(rf_engine *e, const rf_config *cfg)
{
    const char **resolve = NULL;

    memset(&e->cfg, 0, sizeof(e->cfg));
    rf_config_init(&e->cfg);
    /* Fields the caller's (older) struct lacks keep their defaults. */
    memcpy(&e->cfg, cfg, cfg->size < sizeof(e->cfg) ? cfg->size : sizeof(e->cfg));
    e->cfg.size = sizeof(e->cfg);
    e->owned = calloc(cfg->n_resolve + 8, sizeof(char *));
    if (!e->owned)
        return -RF_ERR_NOMEM;
    if (cfg->n_resolve) {
        resolve = calloc(cfg->n_resolve, sizeof(*resolve));
        if (!resolve)
            return -RF_ERR_NOMEM;
        e->owned[e->n_owned++] = (char *)resolve;
        for (size_t i = 0; i < cfg->n_resolve; i++) {
            resolve[i] = cfg->resolve[i];
            if (!resolve[i] || own(e, &resolve[i]))
                return resolve[i] ? -RF_ERR_NOMEM : -RF_ERR_INVALID_ARG;
        }
    }
    e->cfg.resolve = resolve;
    if (own(e, &e->cfg.dns_server) || own(e, &e->cfg.hosts_file) ||
        own(e, &e->cfg.user_agent) || own(e, &e->cfg.ca_file) ||
        own(e, &e->cfg.default_scheme) || own(e, &e->cfg.retry_on))
        return -RF_ERR_NOMEM;
    e->cfg.errbuf = NULL;
    return 0;
}

/* "User-Agent: ...\r\n", once; nothing a caller passes may add a line to a request. */
static int set_user_agent(rf_engine *e)
{
    const char *ua = e->cfg.user_agent ? e->cfg.user_agent : "ringfetch/" RINGFETCH_VERSION_STR;
    size_t n = strlen(ua);

    if (n == 0)
        return 0;
    if (n + 16 > sizeof(e->ua_line))
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ua[i] < 0x20 || ua[i] == 0x7f)
            return -1;
    memcpy(e->ua_line, "User-Agent: ", 12);
    memcpy(e->ua_line + 12, ua, n);
    memcpy(e->ua_line + 12 + n, "\r\n", 2);
    e->ua_len = (uint32_t)(n + 14);
    return 0;
}

/* retry_on: error names and statuses, comma-separated. */
static int set_retry_on(rf_engine *e)
{
    const char *s = e->cfg.retry_on ? e->cfg.retry_on
                                    : "dns,refused,unreachable,connect_timeout,timeout,reset,"
                                      "closed,429,502,503,504";

    while (*s) {
        size_t n = strcspn(s, ",");
        int found = 0;

        if (n == 3 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
            s[2] <= '9') {
            e->retry_status[(s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0')] = 1;
            found = 1;
        }
        for (int k = 1; k < RF_ERR__LAST && !found; k++) {
            const char *name = rf_strerror((rf_error)k);

            if (strlen(name) == n && strncmp(name, s, n) == 0) {
                e->retry_on |= 1u << k;
                found = 1;
            }
        }
        if (!found)
            return -1;
        s += n + (s[n] == ',');
    }
    return 0;
}

/*
 * The TLS context every worker shares, made now so that no ring thread ever loads the CA
 * bundle. A ca_file the caller named must load; the default bundle may be missing on a
 * machine that never talks https: then https requests fail with the reason.
 */
static int make_tls(rf_engine *e)
{
    struct tls_opts o = {.ca_file = e->cfg.ca_file, .insecure = e->cfg.insecure};

    if (tls_ctx_new(&e->tls, &o, e->tls_err, sizeof(e->tls_err)) == 0)
        return 0;
    e->tls = NULL;
    return e->cfg.ca_file ? -1 : 0;
}

/* 64 rows per slot; 256 with retries, whose back-off (seconds) holds a row's place while
 * the rows behind it go on finishing: a smaller window would stop admission meanwhile.
 * Entries are made as the window fills, so memory follows use. cfg is the engine's copy,
 * whole whatever layout the caller had. */
static unsigned default_window(const rf_config *cfg)
{
    uint64_t w = (uint64_t)cfg->concurrency * (cfg->retries ? 256 : 64);

    return w < 4096 ? 4096 : w > (1u << 20) ? 1u << 20 : (unsigned)w;
}

rf_error rf_engine_create(rf_engine **out, const rf_config *cfg)
{
    rf_engine *e;
    unsigned nw;
    int ret;

    if (!out)
        return RF_ERR_INVALID_ARG;
    *out = NULL;
    if (!cfg || cfg->size < offsetof(rf_config, on_header))
        return fail(cfg, RF_ERR_INVALID_ARG, "cfg was not set up with rf_config_init()");
    if (!cfg->on_result)
        return fail(cfg, RF_ERR_INVALID_ARG, "on_result is required");
    if (cfg->concurrency == 0 || cfg->concurrency > RF_MAX_CONCURRENCY)
        return fail(cfg, RF_ERR_INVALID_ARG, "concurrency %u: 1 to %u", cfg->concurrency,
                    RF_MAX_CONCURRENCY);
    if (cfg->window > RF_MAX_WINDOW)
        return fail(cfg, RF_ERR_INVALID_ARG, "window %u: at most %u", cfg->window, RF_MAX_WINDOW);
    if (cfg->threads > 256 || cfg->timeout_ms == 0 || cfg->connect_timeout_ms == 0 ||
        cfg->max_header_bytes == 0)
        return fail(cfg, RF_ERR_INVALID_ARG,
                    "threads 0-256, and timeouts and max_header_bytes above 0");
    e = calloc(1, sizeof(*e));
    if (!e)
        return RF_ERR_NOMEM;
    pthread_mutex_init(&e->lock, NULL);
    ret = copy_config(e, cfg);
    if (ret) {
        rf_engine_destroy(e);
        return fail(cfg, (rf_error)-ret, "%s", ret == -RF_ERR_NOMEM ? "out of memory"
                                                                      : "a NULL resolve entry");
    }
    if (set_user_agent(e)) {
        rf_engine_destroy(e);
        return fail(cfg, RF_ERR_INVALID_ARG, "user_agent: control characters or too long");
    }
    if (set_retry_on(e)) {
        rf_engine_destroy(e);
        return fail(cfg, RF_ERR_INVALID_ARG,
                    "retry_on: error names (dns, timeout, ...) and statuses (503), by commas");
    }
    if (make_tls(e)) {
        ret = fail(cfg, RF_ERR_INVALID_ARG, "ca_file: %s", e->tls_err);
        rf_engine_destroy(e);
        return (rf_error)ret;
    }
    if (window_init(&e->win, e->cfg.window ? e->cfg.window : default_window(&e->cfg)) ||
        !(e->scratch = malloc(ADMIT_SCRATCH)))
        goto nomem;
    nw = cfg->threads ? cfg->threads : 1;
    if (nw > cfg->concurrency)
        nw = cfg->concurrency;
    /* Per-host limits are one table: they run on one ring (see docs/api.md). */
    if (e->cfg.per_host || e->cfg.host_rate > 0)
        nw = 1;
    e->workers = calloc(nw, sizeof(*e->workers));
    if (!e->workers)
        goto nomem;
    e->nworkers = nw;
    for (unsigned i = 0; i < nw; i++) {
        /* Spread the slots evenly; the first workers take the remainder. */
        ret = worker_init(e, &e->workers[i], i,
                          cfg->concurrency / nw + (i < cfg->concurrency % nw));
        if (ret) {
            rf_engine_destroy(e);
            if (ret == -RF_ERR_INVALID_ARG)
                return fail(cfg, RF_ERR_INVALID_ARG, "bad dns_server or resolve entry");
            return fail(cfg, (rf_error)-ret, "%s", ret == -RF_ERR_NOMEM ? "out of memory"
                                                  : "io_uring could not be set up");
        }
        e->workers[i].conns.tls = e->tls;
    }
    *out = e;
    return RF_OK;
nomem:
    rf_engine_destroy(e);
    return fail(cfg, RF_ERR_NOMEM, "out of memory");
}

rf_error rf_engine_destroy(rf_engine *e)
{
    if (!e)
        return RF_OK;
    if (in_callback(e))
        return RF_ERR_RECURSIVE;
    __atomic_store_n(&e->stopping, 1, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < e->nworkers; i++) {
        if (e->workers[i].started) {
            worker_wake(&e->workers[i]);
            pthread_join(e->workers[i].thread, NULL);
        }
    }
    for (unsigned i = 0; i < e->nworkers; i++)
        worker_free(&e->workers[i]);
    free(e->workers);
    queue_free(e);
    window_free(&e->win);
    free(e->scratch);
    for (size_t i = 0; i < e->n_owned; i++)
        free(e->owned[i]);
    free(e->owned);
    tls_ctx_free(e->tls);
    pthread_mutex_destroy(&e->lock);
    free(e);
    return RF_OK;
}

/* ---- requests in, cancel, resume ---- */

rf_error rf_submit(rf_engine *e, const rf_request *req)
{
    struct submitted *s;

    if (!e || !req || !req->url)
        return RF_ERR_INVALID_ARG;
    if (in_callback(e))
        return RF_ERR_RECURSIVE;
    /* size 0: a caller that did not use RF_REQUEST_INIT; read what 0.3.0 defined, never a
     * field appended since, which such a caller's struct does not have. */
    s = submitted_copy(req, req->size ? req->size : REQUEST_SIZE_0_3);
    if (!s)
        return RF_ERR_NOMEM;
    queue_append(e, s);
    wake_hungry(e);
    return RF_OK;
}

void rf_cancel(rf_engine *e)
{
    /* Atomics and write(): async-signal-safe. */
    __atomic_store_n(&e->cancelled, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&e->cancel_epoch, 1, __ATOMIC_ACQ_REL);
    for (unsigned i = 0; i < e->nworkers; i++)
        worker_wake(&e->workers[i]);
}

rf_error rf_resume(rf_engine *e)
{
    if (in_callback(e))
        return RF_ERR_RECURSIVE;
    __atomic_store_n(&e->cancelled, 0, __ATOMIC_RELEASE);
    wake_hungry(e);
    return RF_OK;
}

void rf_get_stats_size(const rf_engine *e, rf_stats *st, size_t size)
{
    rf_stats s;

    memset(&s, 0, sizeof(s));
    s.size = size < sizeof(s) ? size : sizeof(s);
    for (unsigned i = 0; i < e->nworkers; i++) {
        const struct worker *w = &e->workers[i];

        s.submitted += __atomic_load_n(&w->stats.submitted, __ATOMIC_RELAXED);
        s.errors += __atomic_load_n(&w->stats.errors, __ATOMIC_RELAXED);
        s.connects += __atomic_load_n(&w->stats.connects, __ATOMIC_RELAXED);
        s.in_flight += __atomic_load_n(&w->busy, __ATOMIC_RELAXED);
        s.slots += w->max_busy;
    }
    s.completed = __atomic_load_n(&e->delivered, __ATOMIC_RELAXED);
    memcpy(st, &s, s.size);
}

/* ---- the loop turn ---- */

/* Deliver what is ready in order; the lock keeps admission from reusing entries meanwhile. */
static uint64_t emit(rf_engine *e)
{
    uint64_t n;

    pthread_mutex_lock(&e->lock);
    rf_in_callback = e;
    n = window_emit(&e->win, e->cfg.on_result, e->cfg.result_userp);
    rf_in_callback = NULL;
    pthread_mutex_unlock(&e->lock);
    if (n) {
        __atomic_fetch_add(&e->delivered, n, __ATOMIC_RELAXED);
        wake_hungry(e); /* window room for workers that were waiting on it */
    }
    return n;
}

/* Nothing queued, the input over (or cancelled), every result delivered. */
static int finished(rf_engine *e)
{
    int done;

    pthread_mutex_lock(&e->lock);
    done = !e->q_head && (!e->cfg.pull || e->input_done ||
                          __atomic_load_n(&e->cancelled, __ATOMIC_ACQUIRE)) &&
           e->win.head == e->win.next;
    pthread_mutex_unlock(&e->lock);
    return done;
}

/*
 * Completions, timers, admission and delivery, repeated while requests fail before any
 * I/O (their slots free at once, so more can be admitted now), a bounded number of times.
 */
static int turns(rf_engine *e)
{
    struct worker *w = &e->workers[0];
    uint64_t start = now_us();
    int ret = 0;

    for (int i = 0; i < STEP_TURNS; i++) {
        uint64_t delivered;

        ret = worker_turn(w, STEP_CQES);
        if (io_uring_sq_ready(&w->ring.uring))
            io_uring_submit(&w->ring.uring); /* this turn's sends and connects: now */
        delivered = emit(e);
        if (ret < 0 || (ret == 0 && !delivered && !io_uring_cq_ready(&w->ring.uring)) ||
            now_us() - start > STEP_BUDGET_US)
            break;
    }
    return ret < 0 ? ret : 0;
}

static int step_end(rf_engine *e, int ret)
{
    if (ret < 0) {
        snprintf(e->last_error, sizeof(e->last_error), "%s", rf_strerror((rf_error)-ret));
        return ret;
    }
    if (finished(e)) {
        io_uring_submit(&e->workers[0].ring.uring); /* closes still queued */
        return 0;
    }
    return 1;
}

int rf_step(rf_engine *e, int timeout_ms)
{
    struct worker *w = &e->workers[0];
    int ret;

    if (in_callback(e))
        return -RF_ERR_RECURSIVE;
    ret = start_threads(e);
    if (ret == 0)
        ret = __atomic_load_n(&e->fatal, __ATOMIC_ACQUIRE);
    if (ret)
        return step_end(e, ret);
    pthread_mutex_lock(&e->lock);
    e->pull_again = 0; /* the caller may have more input now */
    pthread_mutex_unlock(&e->lock);
    wake_hungry(e);
    ret = turns(e);
    if (ret || (ret = step_end(e, 0)) <= 0)
        return ret;
    ret = ring_wait(&w->ring, 1, timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000)
              ? -RF_ERR_SYSTEM : turns(e);
    return step_end(e, ret);
}

rf_error rf_run(rf_engine *e)
{
    int ret;

    while ((ret = rf_step(e, -1)) > 0)
        ;
    return ret < 0 ? (rf_error)-ret : RF_OK;
}

/* ---- event-loop integration ---- */

int rf_engine_fd(rf_engine *e)
{
    /* Worker 0's ring: readable (POLLIN) whenever completions wait in it; the other
     * workers and rf_cancel() reach it through its eventfd read. */
    return e->workers[0].ring.uring.ring_fd;
}

int rf_engine_timeout_ms(rf_engine *e)
{
    struct worker *w = &e->workers[0];
    int64_t due;
    int now_work;

    /* Inside a callback the lock is held, and the turn that called it has work: now. */
    if (in_callback(e) || io_uring_sq_ready(&w->ring.uring) || io_uring_cq_ready(&w->ring.uring))
        return 0;
    pthread_mutex_lock(&e->lock);
    now_work = (e->win.head < e->win.next &&
                __atomic_load_n(&window_at(&e->win, e->win.head)->state, __ATOMIC_ACQUIRE) ==
                    W_DONE) ||
               ((e->q_head || (e->cfg.pull && !e->input_done && !e->pull_again &&
                               !__atomic_load_n(&e->cancelled, __ATOMIC_ACQUIRE))) &&
                w->busy < w->max_busy && window_has_room(&e->win));
    pthread_mutex_unlock(&e->lock);
    if (now_work)
        return 0;
    due = ring_next_due(&w->ring);
    if (due < 0)
        return -1;
    due -= (int64_t)now_us();
    return due <= 0 ? 0 : (int)((due + 999) / 1000);
}

const char *rf_engine_last_error(const rf_engine *e) { return e->last_error; }
