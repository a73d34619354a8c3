/* api.c - the fetch engine's public API: creation, admission, the batched loop turn,
 * in-order delivery. */
#include <ares_version.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fetch/fetch.h"

struct submitted {
    struct submitted *next;
    rf_request req;
    char url[]; /* the copy req.url points to */
};

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
    struct rf_url u;
    int ret;

    if (!req)
        return RF_ERR_INVALID_ARG;
    if (!http1_valid_request(req->method ? req->method : "GET", req->headers,
                             req->headers ? req->n_headers : 0))
        return RF_ERR_INVALID_ARG;
    if (!req->url)
        return RF_OK;
    ret = url_parse(req->url, strlen(req->url), &u);
    return ret ? (rf_error)-ret : RF_OK;
}

void rf_config_init(rf_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->concurrency = 100;
    cfg->threads = 1;
    cfg->connect_timeout_ms = 10000;
    cfg->timeout_ms = 30000;
    cfg->max_header_bytes = 65536;
    cfg->keepalive = 1;
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

    e->cfg = *cfg;
    e->owned = calloc(cfg->n_resolve + 5, sizeof(char *));
    if (!e->owned)
        return -RF_ERR_NOMEM;
    if (cfg->n_resolve) {
        resolve = calloc(cfg->n_resolve, sizeof(*resolve));
        if (!resolve)
            return -RF_ERR_NOMEM;
        e->owned[e->n_owned++] = (char *)resolve;
        for (size_t i = 0; i < cfg->n_resolve; i++) {
            resolve[i] = cfg->resolve[i];
            if (own(e, &resolve[i]))
                return -RF_ERR_NOMEM;
        }
    }
    e->cfg.resolve = resolve;
    if (own(e, &e->cfg.dns_server) || own(e, &e->cfg.hosts_file) ||
        own(e, &e->cfg.user_agent) || own(e, &e->cfg.ca_file))
        return -RF_ERR_NOMEM;
    return 0;
}

static int set_user_agent(rf_engine *e)
{
    const char *ua = e->cfg.user_agent ? e->cfg.user_agent : "ringfetch/" RINGFETCH_VERSION_STR;
    size_t n = strlen(ua);

    if (n == 0)
        return 0;
    if (n + 16 > sizeof(e->ua_line))
        return -RF_ERR_INVALID_ARG;
    memcpy(e->ua_line, "User-Agent: ", 12);
    memcpy(e->ua_line + 12, ua, n);
    memcpy(e->ua_line + 12 + n, "\r\n", 2);
    e->ua_len = (uint32_t)(n + 14);
    return 0;
}

static void arm_wake(struct worker *w)
{
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);

    io_uring_prep_read(sqe, w->wake_fd, &w->wake_buf, sizeof(w->wake_buf), 0);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_WAKE, 0, 0));
}

static void on_wake(void *ctx, struct io_uring_cqe *cqe)
{
    (void)cqe;
    arm_wake(ctx); /* stay wakeable; the flags say why we were woken */
}

/* End the worker's ring wait: a write to the eventfd its armed read waits on.
 * Async-signal-safe. */
void worker_wake(struct worker *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->wake_fd, &one, sizeof(one));

    (void)r;
}

static unsigned pow2_at_least(unsigned v, unsigned lo, unsigned hi)
{
    unsigned n = lo;

    while (n < v && n < hi)
        n <<= 1;
    return n;
}

static int worker_init(rf_engine *eng, struct worker *w, unsigned id, unsigned nslots)
{
    struct rf_dns_config dcfg;
    unsigned room = ring_max_files() / 2;
    int ret;

    w->eng = eng;
    w->id = id;
    w->wake_fd = -1;
    /*
     * Twice as many connections as slots: a request to an origin whose connections are
     * all busy opens a spare instead of closing another origin's idle one, which would
     * only move the shortage on (with every slot in use, one refused host makes the pool
     * churn through a new connection per request). Each connection can hold two direct
     * descriptors at once (Happy Eyeballs, or a socket still closing), so the open-file
     * limit caps the count.
     */
    w->nconns = nslots * 2 < room / 2 ? nslots * 2 : room / 2;
    w->max_busy = nslots < w->nconns ? nslots : w->nconns;
    w->fc = calloc(w->nconns, sizeof(*w->fc));
    w->sbuf_slab = malloc((size_t)w->nconns * FC_SBUF);
    if (!w->fc || !w->sbuf_slab)
        return -RF_ERR_NOMEM;
    for (unsigned i = 0; i < w->nconns; i++) {
        conn_init(&w->fc[i].c, i);
        w->fc[i].wk = w;
        w->fc[i].sbuf = w->sbuf_slab + (size_t)i * FC_SBUF;
    }
    ret = pool_init(w);
    if (ret)
        return ret;
    ret = ring_init(&w->ring, pow2_at_least(w->nconns * 2, 256, 4096), w->nconns * 2,
                    pow2_at_least(w->max_busy, 256, 2048), 16384, id ? RING_LATER_THREAD : 0);
    if (ret)
        return ret == -ENOMEM ? -RF_ERR_NOMEM : -RF_ERR_SYSTEM;
    ret = fetch_worker_init(w);
    if (ret)
        return ret;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.server = eng->cfg.dns_server;
    dcfg.resolve = eng->cfg.resolve;
    dcfg.n_resolve = eng->cfg.n_resolve;
    dcfg.hosts_file = eng->cfg.hosts_file;
    ret = dns_create(&w->dns, &w->ring, &dcfg, fetch_dns_done, w);
    if (ret)
        return ret;
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->wake_fd < 0)
        return -RF_ERR_SYSTEM;
    ring_on(&w->ring, OP_WAKE, on_wake, w);
    arm_wake(w);
    return 0;
}

static void worker_free(struct worker *w)
{
    for (uint32_t i = 0; w->fc && i < w->nconns; i++) {
        if (w->fc[i].tls) {
            tls_free(w->fc[i].tls);
            free(w->fc[i].tls);
        }
    }
    tls_cache_free(&w->sessions);
    if (w->dns)
        dns_destroy(w->dns);
    conn_set_free(&w->conns);
    if (w->ring.uring.ring_fd > 0)
        ring_exit(&w->ring);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    pool_free(w);
    free(w->sbuf_slab);
    free(w->fc);
}

rf_error rf_engine_create(rf_engine **out, const rf_config *cfg)
{
    rf_engine *e;
    unsigned nw, window;
    int ret;

    *out = NULL;
    if (!cfg || !cfg->on_result || cfg->concurrency == 0 || cfg->concurrency > 1000000 ||
        cfg->threads > 256 || cfg->timeout_ms == 0 || cfg->connect_timeout_ms == 0 ||
        cfg->max_header_bytes == 0)
        return RF_ERR_INVALID_ARG;
    e = calloc(1, sizeof(*e));
    if (!e)
        return RF_ERR_NOMEM;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->tls_lock, NULL);
    ret = copy_config(e, cfg);
    if (ret)
        goto fail;
    ret = set_user_agent(e);
    if (ret)
        goto fail;
    window = cfg->window ? cfg->window
                         : (cfg->concurrency * 64 > 4096 ? cfg->concurrency * 64 : 4096);
    ret = window_init(&e->win, window);
    if (ret)
        goto fail;
    nw = cfg->threads ? cfg->threads : 1;
    if (nw > cfg->concurrency)
        nw = cfg->concurrency;
    e->workers = calloc(nw, sizeof(*e->workers));
    ret = -RF_ERR_NOMEM;
    if (!e->workers)
        goto fail;
    e->nworkers = nw;
    for (unsigned i = 0; i < nw; i++) {
        /* Spread the slots evenly; the first workers take the remainder. */
        ret = worker_init(e, &e->workers[i], i,
                          cfg->concurrency / nw + (i < cfg->concurrency % nw));
        if (ret)
            goto fail;
    }
    *out = e;
    return RF_OK;
fail:
    rf_engine_destroy(e);
    return (rf_error)-ret;
}

void rf_engine_destroy(rf_engine *e)
{
    struct submitted *s;

    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    pthread_mutex_unlock(&e->lock);
    for (unsigned i = 0; i < e->nworkers; i++) {
        if (e->workers[i].started) {
            worker_wake(&e->workers[i]);
            pthread_join(e->workers[i].thread, NULL);
        }
    }
    for (unsigned i = 0; i < e->nworkers; i++)
        worker_free(&e->workers[i]);
    free(e->workers);
    while ((s = e->q_head)) {
        e->q_head = s->next;
        free(s);
    }
    window_free(&e->win);
    for (size_t i = 0; i < e->n_owned; i++)
        free(e->owned[i]);
    free(e->owned);
    tls_ctx_free(e->tls);
    pthread_mutex_destroy(&e->tls_lock);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

/* Is the calling thread inside one of this engine's callbacks? */
static int in_own_callback(const rf_engine *e)
{
    return e->in_callback && pthread_equal(e->cb_thread, pthread_self());
}

/* Wake the other workers that ran out of work, so they look again. */
static void wake_hungry(rf_engine *e)
{
    for (unsigned i = 1; i < e->nworkers; i++)
        if (__atomic_exchange_n(&e->workers[i].hungry, 0, __ATOMIC_ACQ_REL))
            worker_wake(&e->workers[i]);
}

rf_error rf_submit(rf_engine *e, const rf_request *req)
{
    struct submitted *s;
    size_t len;

    if (!e || !req || !req->url)
        return RF_ERR_INVALID_ARG;
    if (in_own_callback(e))
        return RF_ERR_RECURSIVE;
    len = strlen(req->url);
    s = malloc(sizeof(*s) + len + 1);
    if (!s)
        return RF_ERR_NOMEM;
    memcpy(s->url, req->url, len + 1);
    s->req = *req;
    s->req.url = s->url;
    s->next = NULL;
    pthread_mutex_lock(&e->lock);
    if (e->q_tail)
        e->q_tail->next = s;
    else
        e->q_head = s;
    e->q_tail = s;
    pthread_mutex_unlock(&e->lock);
    wake_hungry(e);
    return RF_OK;
}

void rf_cancel(rf_engine *e)
{
    e->cancel_requested = 1;
    for (unsigned i = 0; i < e->nworkers; i++)
        worker_wake(&e->workers[i]);
}

void rf_get_stats(const rf_engine *e, rf_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (unsigned i = 0; i < e->nworkers; i++) {
        const struct worker *w = &e->workers[i];

        st->submitted += __atomic_load_n(&w->stats.submitted, __ATOMIC_RELAXED);
        st->errors += __atomic_load_n(&w->stats.errors, __ATOMIC_RELAXED);
        st->connects += __atomic_load_n(&w->stats.connects, __ATOMIC_RELAXED);
        st->in_flight += __atomic_load_n(&w->busy, __ATOMIC_RELAXED);
        st->slots += w->max_busy;
    }
    st->completed = __atomic_load_n(&e->delivered, __ATOMIC_RELAXED);
}

/*
 * A request's result is complete. The store publishes the entry's fields to the thread that
 * delivers; that thread is woken only when this was the entry it waits on.
 */
void engine_request_done(struct worker *w, struct request *ent, uint64_t index)
{
    __atomic_store_n(&ent->state, W_DONE, __ATOMIC_SEQ_CST);
    if (w->id != 0 && __atomic_load_n(&w->eng->win.head, __ATOMIC_SEQ_CST) == index)
        worker_wake(&w->eng->workers[0]);
}

/*
 * The TLS context every worker shares, made by the first https job (loading the CA
 * bundle costs milliseconds an http-only run need not pay). NULL with *why set when it
 * cannot be made: each https job then fails with that reason.
 */
struct tls_ctx *engine_tls(rf_engine *e, const char **why)
{
    struct tls_ctx *t = __atomic_load_n(&e->tls, __ATOMIC_ACQUIRE);

    if (t)
        return t;
    pthread_mutex_lock(&e->tls_lock);
    if (!e->tls_tried) {
        struct tls_opts o = {.ca_file = e->cfg.ca_file, .insecure = e->cfg.insecure};

        e->tls_tried = 1;
        if (tls_ctx_new(&t, &o, e->tls_err, sizeof(e->tls_err)) == 0)
            __atomic_store_n(&e->tls, t, __ATOMIC_RELEASE);
    }
    t = e->tls;
    pthread_mutex_unlock(&e->tls_lock);
    *why = e->tls_err;
    return t;
}

/* Start a request admitted into the window: parse, find a connection, resolve or reuse. */
static void start_request(struct worker *w, uint64_t i)
{
    rf_engine *e = w->eng;
    struct request *ent = window_at(&e->win, i);
    char host[RF_HOST_MAX + 1];
    struct rf_url u;
    struct fconn *f;
    uint32_t hash;
    int ret;

    w->stats.submitted++;
    if (e->cancel_requested) {
        ent->err = RF_ERR_CANCELLED;
        w->stats.errors++;
        return engine_request_done(w, ent, i);
    }
    ret = url_parse(ent->str, ent->url_len, &u);
    if (ret == 0 && !http1_valid_request(ent->method, ent->headers, ent->n_headers))
        ret = -RF_ERR_INVALID_ARG;
    if (ret) {
        /* A bad URL (or method or header) needs no slot: its result is ready now. */
        ent->err = (rf_error)-ret;
        w->stats.errors++;
        return engine_request_done(w, ent, i);
    }
    for (uint32_t k = 0; k < u.host_len; k++) {
        char ch = ent->str[u.host_off + k];

        host[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    hash = origin_hash(u.scheme, host, u.host_len, u.port);
    f = pool_take(w, u.scheme, host, u.host_len, u.port, hash);
    fetch_start(w, f, i, &u, host, hash); /* admission guaranteed a free slot */
}

/* The next request from the queue or the pull callback, under the lock. 0: none now. */
static int next_request(rf_engine *e, rf_request *req, struct submitted **owned)
{
    struct submitted *s = e->q_head;

    *owned = NULL;
    if (s) {
        e->q_head = s->next;
        if (!e->q_head)
            e->q_tail = NULL;
        *req = s->req;
        *owned = s;
        return 1;
    }
    if (!e->cfg.pull || e->input_done || e->cancel_requested)
        return 0;
    memset(req, 0, sizeof(*req));
    e->in_callback = 1;
    e->cb_thread = pthread_self();
    if (e->cfg.pull(e->cfg.pull_userp, req) <= 0 || !req->url)
        e->input_done = 1;
    e->in_callback = 0;
    return !e->input_done;
}

/*
 * Admit as many requests as this worker has free slots and the window has room: take
 * them into the window under the lock (contiguous indexes), then start them outside it.
 * Not reading further is the back-pressure.
 */
static int admit(struct worker *w)
{
    rf_engine *e = w->eng;
    uint64_t first = 0, n = 0;
    int ret = 0;

    if (w->busy >= w->max_busy)
        return 0;
    pthread_mutex_lock(&e->lock);
    first = e->win.next;
    while (w->busy + n < w->max_busy && window_has_room(&e->win)) {
        struct submitted *s;
        rf_request req;
        uint64_t idx;

        if (!next_request(e, &req, &s))
            break;
        ret = window_admit(&e->win, &req, &idx);
        free(s);
        if (ret)
            break;
        n++;
    }
    if (w->busy + n < w->max_busy && w->id != 0)
        __atomic_store_n(&w->hungry, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&e->lock);
    for (uint64_t i = 0; i < n; i++)
        start_request(w, first + i);
    return ret;
}

/* Everything a worker's turn does besides waiting: completions, timers, admission. */
static int worker_turn(struct worker *w)
{
    ring_dispatch(&w->ring);
    if (w->eng->cancel_requested && !w->cancelling) {
        w->cancelling = 1;
        fetch_cancel_all(w);
    }
    return admit(w);
}

/* Wait for a completion, the earliest deadline or at most max_us; -1 means no bound. */
static int worker_wait(struct worker *w, int64_t max_us)
{
    return ring_wait(&w->ring, 1, max_us) ? -RF_ERR_SYSTEM : 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int ret = ring_adopt(&w->ring) ? -RF_ERR_SYSTEM : 0;

    while (!ret && !__atomic_load_n(&w->eng->stopping, __ATOMIC_ACQUIRE))
        ret = worker_turn(w) ? -RF_ERR_SYSTEM : worker_wait(w, -1);
    if (ret) {
        /* Its jobs can no longer finish: the rf_step() thread reports it, never waits on. */
        __atomic_store_n(&w->eng->fatal, ret, __ATOMIC_RELEASE);
        worker_wake(&w->eng->workers[0]);
    }
    return NULL;
}

/* Deliver what is ready in order; the lock keeps admission from reusing entries meanwhile. */
static void emit(rf_engine *e)
{
    uint64_t n;

    pthread_mutex_lock(&e->lock);
    e->in_callback = 1;
    e->cb_thread = pthread_self();
    n = window_emit(&e->win, e->cfg.on_result, e->cfg.result_userp);
    e->in_callback = 0;
    pthread_mutex_unlock(&e->lock);
    if (n) {
        __atomic_fetch_add(&e->delivered, n, __ATOMIC_RELAXED);
        wake_hungry(e); /* window room for workers that were waiting on it */
    }
}

static int finished(rf_engine *e)
{
    int done;

    pthread_mutex_lock(&e->lock);
    done = !e->q_head && (!e->cfg.pull || e->input_done || e->cancel_requested) &&
           e->win.head == e->win.next;
    pthread_mutex_unlock(&e->lock);
    return done;
}

static int start_threads(rf_engine *e)
{
    for (unsigned i = 1; i < e->nworkers; i++) {
        if (e->workers[i].started)
            continue;
        if (pthread_create(&e->workers[i].thread, NULL, worker_main, &e->workers[i]))
            return -RF_ERR_SYSTEM;
        e->workers[i].started = 1;
    }
    return 0;
}

int rf_step(rf_engine *e, int timeout_ms)
{
    struct worker *w = &e->workers[0];
    int ret;

    if (in_own_callback(e))
        return -RF_ERR_RECURSIVE;
    ret = start_threads(e);
    if (ret)
        return ret;
    ret = __atomic_load_n(&e->fatal, __ATOMIC_ACQUIRE);
    if (ret)
        return ret;
    ret = worker_turn(w);
    emit(e);
    if (ret)
        return ret;
    if (finished(e)) {
        io_uring_submit(&w->ring.uring); /* closes still queued */
        return 0;
    }
    ret = worker_wait(w, timeout_ms < 0 ? 1000000 : (int64_t)timeout_ms * 1000);
    if (ret)
        return ret;
    ret = worker_turn(w);
    emit(e);
    if (ret)
        return ret;
    if (finished(e)) {
        io_uring_submit(&w->ring.uring);
        return 0;
    }
    return 1;
}

rf_error rf_run(rf_engine *e)
{
    int ret;

    while ((ret = rf_step(e, -1)) > 0)
        ;
    return ret < 0 ? (rf_error)-ret : RF_OK;
}
