/*
 * worker.c - a fetch worker: one ring and its connections, admission from the shared input
 * into the window (the slot limiter is `busy < max_busy`), and the loop of the workers that
 * run in threads of their own.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fetch/fetch.h"

/* A request queued by rf_submit(): a deep copy, so the caller's memory is free at return. */
struct submitted {
    struct submitted *next;
    rf_request req;
    const char *hdr[];      /* the headers' pointers, then the strings and the body */
};

static void arm_wake(struct worker *w)
{
    struct io_uring_sqe *sqe = ring_sqe(&w->ring);

    io_uring_prep_read(sqe, w->wake_fd, &w->wake_buf, sizeof(w->wake_buf), 0);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_WAKE, 0, 0));
}

static void on_wake(void *ctx, struct io_uring_cqe *cqe)
{
    (void)cqe;
    arm_wake(ctx); /* stay wakeable; the engine's flags say why we were woken */
}

/* End the worker's ring wait: a write to the eventfd its armed read waits on.
 * Async-signal-safe. */
void worker_wake(struct worker *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->wake_fd, &one, sizeof(one));

    (void)r;
}

/* Wake the other workers that ran out of work, so they look again. */
void wake_hungry(rf_engine *e)
{
    for (unsigned i = 1; i < e->nworkers; i++)
        if (__atomic_exchange_n(&e->workers[i].hungry, 0, __ATOMIC_ACQ_REL))
            worker_wake(&e->workers[i]);
}

static unsigned pow2_at_least(unsigned v, unsigned lo, unsigned hi)
{
    unsigned n = lo;

    while (n < v && n < hi)
        n <<= 1;
    return n;
}

int worker_init(rf_engine *e, struct worker *w, unsigned id, unsigned nslots)
{
    struct rf_dns_config dcfg;
    unsigned room = ring_max_files() / 2;
    int ret;

    w->eng = e;
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
    /* A connect costs the submitting thread some 20-40 us in the kernel: worker 0 starts
     * a few dozen per turn, so an rf_step() hands its caller back within its budget. */
    w->admit_max = id == 0 ? 16 : 0;
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
    /*
     * Worker 0 runs in whatever thread calls rf_step(), one at a time but not always the
     * same one (a thread pool): its ring cannot be single-issuer. The others are driven by
     * their own thread only, which adopts the ring it was made for.
     */
    ret = ring_init(&w->ring, pow2_at_least(w->nconns * 2, 256, 4096), w->nconns * 2,
                    pow2_at_least(w->max_busy, 256, 2048), 16384,
                    id ? RING_LATER_THREAD : RING_ANY_THREAD);
    if (ret)
        return ret == -ENOMEM ? -RF_ERR_NOMEM : -RF_ERR_SYSTEM;
    ret = fetch_worker_init(w);
    if (ret)
        return ret;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.server = e->cfg.dns_server;
    dcfg.resolve = e->cfg.resolve;
    dcfg.n_resolve = e->cfg.n_resolve;
    dcfg.hosts_file = e->cfg.hosts_file;
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

void worker_free(struct worker *w)
{
    for (uint32_t i = 0; w->fc && i < w->nconns; i++) {
        if (w->fc[i].tls) {
            tls_free(w->fc[i].tls);
            free(w->fc[i].tls);
        }
    }
    tls_cache_free(&w->sessions);
    policy_free(w);
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

/* ---- admission ---- */

/*
 * A request's result is complete. The store publishes the entry's fields to the thread
 * that delivers; that thread is woken only when this was the entry it waits on.
 */
void engine_request_done(struct worker *w, struct request *r, uint64_t index)
{
    request_end(r);
    __atomic_store_n(&r->state, W_DONE, __ATOMIC_SEQ_CST);
    if (w->id != 0 && __atomic_load_n(&w->eng->win.head, __ATOMIC_SEQ_CST) == index)
        worker_wake(&w->eng->workers[0]);
}

/* A request that ends before any I/O: it takes no slot, its result is ready now. */
static int needs_slot(const rf_engine *e, const struct request *r)
{
    return r->err == RF_OK && !__atomic_load_n(&e->cancelled, __ATOMIC_ACQUIRE);
}

/* Start a request admitted into the window, or deliver at once what cannot start. */
static void start_request(struct worker *w, uint64_t i)
{
    rf_engine *e = w->eng;
    struct request *r = window_at(&e->win, i);
    struct rf_url u;

    r->index = i;
    if (r->err == RF_OK && __atomic_load_n(&e->cancelled, __ATOMIC_ACQUIRE))
        r->err = RF_ERR_CANCELLED;
    if (r->err == RF_OK) {
        int ret = url_parse(r->str + r->wire, r->wire_len, &u);

        r->err = (rf_error)-ret;
    }
    if (r->err != RF_OK) {
        count(&w->stats.errors);
        return engine_request_done(w, r, i);
    }
    request_begin(w, r); /* admission guaranteed a free slot */
}

static struct submitted *dequeue(rf_engine *e)
{
    struct submitted *s = e->q_head;

    if (s) {
        e->q_head = s->next;
        if (!e->q_head)
            e->q_tail = NULL;
    }
    return s;
}

void queue_free(rf_engine *e)
{
    struct submitted *s;

    while ((s = dequeue(e)))
        free(s);
}

/* The pull callback's next request, under the lock. 1: one, 0: none (now or ever). */
static int pull(rf_engine *e, rf_request *req)
{
    int ret;

    if (!e->cfg.pull || e->input_done || e->pull_again ||
        __atomic_load_n(&e->cancelled, __ATOMIC_ACQUIRE))
        return 0;
    memset(req, 0, sizeof(*req));
    req->size = sizeof(*req);
    rf_in_callback = e;
    ret = e->cfg.pull(e->cfg.pull_userp, req);
    rf_in_callback = NULL;
    if (ret == RF_PULL_AGAIN) {
        e->pull_again = 1;
        return 0;
    }
    if (ret <= 0 || !req->url)
        e->input_done = 1;
    return !e->input_done;
}

/*
 * Admit as many requests as this worker has free slots and the window has room: take
 * them into the window under the lock (contiguous indexes), then start them outside it.
 * Requests that fail before any I/O take no slot, so a run of bad lines goes through in
 * one pass. Not reading further is the back-pressure. Returns how many were admitted,
 * or -RF_ERR_NOMEM.
 */
static int admit(struct worker *w)
{
    rf_engine *e = w->eng;
    uint64_t first, n = 0, slots = 0;
    int ret = 0;

    policy_start_ready(w); /* retries that are due and requests their host let go: first */
    if (w->busy >= w->max_busy)
        return 0;
    pthread_mutex_lock(&e->lock);
    first = e->win.next;
    while (w->busy + slots < w->max_busy && window_has_room(&e->win) &&
           (!w->admit_max || slots < w->admit_max)) {
        struct submitted *s = dequeue(e);
        struct request *r;
        rf_request req;
        uint64_t idx;

        if (!s && !pull(e, &req))
            break;
        if ((ret = window_take(&e->win, &idx)) != 0) {
            free(s); /* out of memory for the window page: the request is lost, say so */
            break;
        }
        r = window_at(&e->win, idx);
        if (request_admit(e, r, s ? &s->req : &req, s ? s->req.size : sizeof(req))) {
            r->err = RF_ERR_NOMEM; /* it still gets its result */
            r->state = W_PENDING;
        }
        free(s);
        n++;
        count(&w->stats.submitted);
        slots += needs_slot(e, r);
    }
    if (w->busy + slots < w->max_busy && w->id != 0)
        __atomic_store_n(&w->hungry, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&e->lock);
    for (uint64_t i = 0; i < n; i++)
        start_request(w, first + i);
    return ret && !n ? ret : (int)n;
}

/*
 * Everything a worker's turn does besides waiting: completions (at most max: the rest
 * stay ready for the next turn), timers, admission.
 */
int worker_turn(struct worker *w, unsigned max)
{
    unsigned epoch = __atomic_load_n(&w->eng->cancel_epoch, __ATOMIC_ACQUIRE);

    ring_dispatch(&w->ring, max);
    if (epoch != w->cancel_seen) {
        w->cancel_seen = epoch;
        fetch_cancel_all(w);
    }
    return admit(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    rf_engine *e = w->eng;
    int ret = ring_adopt(&w->ring) ? -RF_ERR_SYSTEM : 0;

    while (ret >= 0 && !__atomic_load_n(&e->stopping, __ATOMIC_ACQUIRE)) {
        ret = worker_turn(w, UINT_MAX);
        /* Admitted something and slots are left: more may be waiting. */
        if (ret > 0 && w->busy < w->max_busy)
            continue;
        if (ret >= 0)
            ret = ring_wait(&w->ring, 1, -1) ? -RF_ERR_SYSTEM : 0;
    }
    if (ret < 0) {
        /* Its requests can no longer finish: the rf_step() thread reports it. */
        __atomic_store_n(&e->fatal, ret, __ATOMIC_RELEASE);
        worker_wake(&e->workers[0]);
    }
    return NULL;
}

int start_threads(rf_engine *e)
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

/* ---- rf_submit()'s queue ---- */

/* A deep copy of req: the URL, method, headers and (unless RF_REQ_STATIC) the body. */
struct submitted *submitted_copy(const rf_request *req, size_t req_size)
{
    size_t nh = req->headers ? req->n_headers : 0, strs = strlen(req->url) + 1;
    size_t body = req->body && !(req->flags & RF_REQ_STATIC) ? req->body_len : 0;
    struct submitted *s;
    char *p;

    if (req->method)
        strs += strlen(req->method) + 1;
    for (size_t i = 0; i < nh; i++)
        strs += req->headers[i] ? strlen(req->headers[i]) + 1 : 0;
    s = malloc(sizeof(*s) + nh * sizeof(s->hdr[0]) + strs + body);
    if (!s)
        return NULL;
    memset(&s->req, 0, sizeof(s->req));
    memcpy(&s->req, req, req_size < sizeof(s->req) ? req_size : sizeof(s->req));
    s->req.size = sizeof(s->req);
    s->next = NULL;
    p = (char *)&s->hdr[nh];
    s->req.url = strcpy(p, req->url);
    p += strlen(p) + 1;
    if (req->method) {
        s->req.method = strcpy(p, req->method);
        p += strlen(p) + 1;
    }
    for (size_t i = 0; i < nh; i++) {
        s->hdr[i] = req->headers[i] ? strcpy(p, req->headers[i]) : NULL;
        p += req->headers[i] ? strlen(p) + 1 : 0;
    }
    s->req.headers = nh ? s->hdr : NULL;
    if (body)
        s->req.body = memcpy(p, req->body, body);
    return s;
}

void queue_append(rf_engine *e, struct submitted *s)
{
    pthread_mutex_lock(&e->lock);
    if (e->q_tail)
        e->q_tail->next = s;
    else
        e->q_head = s;
    e->q_tail = s;
    pthread_mutex_unlock(&e->lock);
}
