/*
 * loop.c - one thread of a load test: its connections, the closed or open loop that feeds
 * them requests, and the latencies of the answers.
 *
 * The requests are serialised once (run.c) and every send points into that buffer, so the
 * hot path is: recv completion -> the response path -> record the latency -> one send for
 * every response answered in the batch, submitted with everything else in the turn's one
 * io_uring_enter().
 */
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "ring/clock.h"

#define RETRY_US 10000     /* pause before reconnecting after a failed connect */
#define BATCH_WAIT_US 100  /* longest wait for a batch of completions (closed loop) */
#define IDLE_WAIT_US 100000

static struct bconn *bc_of(struct conn *c) { return (struct bconn *)c; }

/* Time since a request was due; never wraps, whatever the clock reads between turns. */
static uint64_t since(uint64_t now, uint64_t due) { return now > due ? now - due : 0; }

static uint64_t errors_of(const struct bench_totals *t)
{
    return t->err_connect + t->err_read + t->err_write + t->err_timeout;
}

static int running(const struct bthread *t)
{
    return !t->b->abort && !*t->b->cfg->stop && t->ring.now < t->b->t_end &&
           (!t->quota || t->issued < t->quota);
}

/* ---- requests ---- */

/* How many of `want` requests the run still allows on this connection. */
static uint32_t allowed(struct bthread *t, struct bconn *c, uint32_t want)
{
    const rf_bench_config *cfg = t->b->cfg;

    if (t->quota && want > t->quota - t->issued)
        want = (uint32_t)(t->quota - t->issued);
    if (cfg->reqs_per_conn && want > cfg->reqs_per_conn - c->reqs)
        want = (uint32_t)(cfg->reqs_per_conn - c->reqs);
    if (want > t->b->pipeline - c->outstanding)
        want = t->b->pipeline - c->outstanding;
    return want;
}

/* The next n requests of c, each due at `due`: their bytes in *len bytes at the return. */
static const char *take(struct bthread *t, struct bconn *c, uint32_t n, uint64_t due,
                        uint32_t *len)
{
    const struct bench *b = t->b;
    int last = b->cfg->reqs_per_conn && c->reqs + n == b->cfg->reqs_per_conn;
    uint32_t k = (uint32_t)((c->c.idx + c->reqs) % b->ntargets);

    for (uint32_t i = 0; i < n; i++) {
        uint64_t *slot = &c->t_due[(c->ohead + c->outstanding + i) % b->pipeline];

        *slot = due;
        /* Closed loop: a request's latency counts from its send, which is the turn's
         * submit, after this batch is handled: stamped then (stamp_sends()). */
        if (t->due_step_us == 0)
            t->unstamped[t->nunstamped++] = slot;
    }
    if (!c->outstanding)
        dq_add(&t->timeouts, &c->timer, t->ring.now);
    c->outstanding += n;
    c->reqs += n;
    t->issued += n;
    t->inflight += n;
    /* With a per-connection limit the pipeline is 1, so `last` covers the whole send. */
    *len = last ? b->close_off[k + 1] - b->close_off[k] : b->off[k + n] - b->off[k];
    return last ? b->close_seq + b->close_off[k] : b->seq + b->off[k];
}

static void reconnect(struct bthread *t, struct bconn *c, int pause);

/* Send n requests in one send (n <= allowed()), each due at `due`. */
static void issue(struct bthread *t, struct bconn *c, uint32_t n, uint64_t due)
{
    uint32_t len;
    const char *p = take(t, c, n, due, &len);

    /* https: encrypted per connection; out of memory fails the connection like a reset. */
    if (conn_send(&t->conns, &c->c, p, len, t->b->quiet_sends ? CONN_SEND_QUIET : 0)) {
        t->t.err_write++;
        reconnect(t, c, 0);
    }
}

static void make_ready(struct bthread *t, struct bconn *c)
{
    if (t->due_step_us > 0 && c->c.state == CONN_OPEN && !c->c.sending &&
        c->outstanding < t->b->pipeline && !list_linked(&c->ready))
        list_add_tail(&t->ready, &c->ready);
}

/* ---- connections ---- */

static void connect_bconn(struct bthread *t, struct bconn *c)
{
    const struct bench *b = t->b;
    const char *first = NULL;
    uint32_t n, len = 0;
    int ret;

    c->reqs = c->outstanding = c->ohead = 0;
    c->server_closes = c->open = 0;
    /* Closed loop over http: the first requests ride on the connect, linked. */
    n = t->due_step_us > 0 || b->tls ? 0 : allowed(t, c, b->pipeline);
    t->t.connects++;
    http1_resp_init(&c->resp, NULL, NULL, 65536);
    http1_resp_next(&c->resp, b->is_head[c->c.idx % b->ntargets]);
    if (n)
        first = take(t, c, n, t->ring.now, &len);
    c->c.src = c->src ? &c->src->u.sa : NULL;
    c->c.srclen = c->src ? c->src->len : 0;
    ret = conn_open(&t->conns, &c->c, t->addrs, b->port, b->host,
                    b->cfg->tls_resume ? t->sess : NULL, first, len,
                    b->quiet_sends ? CONN_SEND_QUIET : 0, 0);
    if (ret) {
        t->t.err_connect++;
        t->issued -= c->outstanding;
        t->inflight -= c->outstanding;
        c->outstanding = 0;
        dq_add(&t->pauses, &c->timer, t->ring.now);
    }
}

/* Close the socket; reconnect unless the run is ending. Outstanding requests are gone. */
static void reconnect(struct bthread *t, struct bconn *c, int pause)
{
    if (c->c.state == CONN_CONNECTING)
        t->issued -= c->outstanding; /* linked to a connect that failed: never sent */
    conn_close(&t->conns, &c->c);
    if (c->open) {
        c->open = 0;
        t->open--;
    }
    t->inflight -= c->outstanding;
    c->outstanding = 0;
    list_del(&c->ready);
    dq_del(&c->timer);
    if (!running(t))
        return;
    if (pause)
        dq_add(&t->pauses, &c->timer, t->ring.now);
    else
        connect_bconn(t, c);
}

/* Requests that got no answer in time: counted as timeouts and kept in the latencies.
 * The timer was armed when the batch began, a little before the closed loop's send stamp:
 * a request whose stamp is younger than the timeout waits out the rest. */
static void time_out(struct bthread *t, struct bconn *c)
{
    uint64_t until = c->t_due[c->ohead] + t->timeouts.delay;

    if (until > t->ring.now) {
        dq_add_at(&t->timeouts, &c->timer, until);
        return;
    }
    for (uint32_t i = 0; i < c->outstanding; i++) {
        uint64_t due = c->t_due[(c->ohead + i) % t->b->pipeline];

        hist_record(&t->lat, since(t->ring.now, due));
        hist_record(&t->iv_lat, since(t->ring.now, due));
        t->t.err_timeout++;
    }
    reconnect(t, c, 0);
}

/* The oldest outstanding request has its answer, which arrived at c->c.rx_us when the
 * kernel says so, else when this batch began. */
static void answered(struct bthread *t, struct bconn *c)
{
    int status = c->resp.parser.status_code;
    uint64_t at = c->c.rx_us ? c->c.rx_us : t->ring.now;
    uint64_t lat = since(at, c->t_due[c->ohead]);

    hist_record(&t->lat, lat);
    hist_record(&t->iv_lat, lat);
    t->stamped += c->c.rx_us != 0;
    t->answers++;
    t->last_progress = t->ring.now;
    c->ohead = (c->ohead + 1) % t->b->pipeline;
    c->outstanding--;
    t->inflight--;
    t->t.requests++;
    t->t.status[status < RF_BENCH_STATUS_MAX ? status : 0]++;
    if (status >= 400)
        t->t.non_2xx_3xx++;
    if (!http1_resp_keepalive(&c->resp.parser))
        c->server_closes = 1;
    if (c->outstanding)
        dq_add(&t->timeouts, &c->timer, t->ring.now);
    else
        dq_del(&c->timer);
}

static void after_progress(struct bthread *t, struct bconn *c)
{
    const rf_bench_config *cfg = t->b->cfg;
    uint32_t n;

    if (c->server_closes) {
        /*
         * The server ends the connection after this response (not an error). Requests
         * pipelined behind it were never read by the server: they go out again on the
         * next connection.
         */
        t->issued -= c->outstanding;
        return reconnect(t, c, 0);
    }
    if (cfg->reqs_per_conn && c->reqs >= cfg->reqs_per_conn) {
        if (!c->outstanding && !c->c.sending)
            reconnect(t, c, 0);
        return;
    }
    if (c->c.sending || c->c.state != CONN_OPEN)
        return;
    if (t->due_step_us > 0)
        return make_ready(t, c);
    /*
     * A pipelined connection is topped up once half its depth is free: fewer, bigger
     * sends, which the server reads in one go (at -p 16: 106k -> 129k req/s on loopback
     * in one measurement, against h2load -m 16's 121k).
     */
    if (c->outstanding && t->b->pipeline - c->outstanding < t->b->refill)
        return;
    if (running(t) && (n = allowed(t, c, t->b->pipeline)) > 0)
        issue(t, c, n, t->ring.now);
}

/* ---- the connection layer's callbacks ---- */

static void on_connected(struct conn *cn)
{
    struct bconn *c = bc_of(cn);

    c->t->t.established++;
    c->t->last_progress = c->t->ring.now;
}

/* Connected (and for https, the handshake done): held open and ready for requests. */
static void on_opened(struct conn *cn)
{
    struct bconn *c = bc_of(cn);
    struct bthread *t = c->t;

    if (c->c.tls) {
        if (c->c.tls->resumed) {
            t->t.tls_resumed++;
        } else {
            t->t.tls_full++;
            c->want_session = t->b->cfg->tls_resume != 0;
        }
        t->last_progress = t->ring.now;
    }
    c->open = 1;
    if (++t->open > t->peak_open)
        t->peak_open = t->open;
    after_progress(t, c);
}

static int on_data(struct conn *cn, const char *p, size_t n)
{
    struct bconn *c = bc_of(cn);
    struct bthread *t = c->t;
    uint32_t gen = cn->gen;
    size_t used;

    t->t.bytes += n;
    for (;;) {
        int r = http1_resp_feed(&c->resp, p, n, &used);

        if (r == HTTP1_MORE)
            break;
        if (r == HTTP1_ERROR || !c->outstanding) { /* broken, or an answer nobody asked for */
            t->t.err_read++;
            reconnect(t, c, 0);
            return 1;
        }
        answered(t, c);
        p += used;
        n -= used;
        http1_resp_next(&c->resp, t->b->is_head[(c->c.idx + c->reqs - c->outstanding) %
                                                t->b->ntargets]);
        if (!n)
            break;
    }
    if (c->want_session && c->reqs > c->outstanding) {
        /* A response came, so the session ticket before it did too (TLS 1.3). */
        tls_session_free(t->sess);
        t->sess = conn_session(&c->c);
        c->want_session = 0;
    }
    after_progress(t, c);
    return cn->gen != gen;
}

static void on_sent(struct conn *cn)
{
    after_progress(bc_of(cn)->t, bc_of(cn));
}

static void on_closed(struct conn *cn, rf_error err, const char *detail)
{
    struct bconn *c = bc_of(cn);
    struct bthread *t = c->t;

    if (!c->open) {
        /* Never ready: a connect error (refused, timed out, a failed handshake), paused. */
        t->t.err_connect++;
        if ((err == RF_ERR_TLS || err == RF_ERR_TLS_VERIFY) && !t->tls_error[0])
            strncpy(t->tls_error, detail ? detail : rf_strerror(err), sizeof(t->tls_error) - 1);
        return reconnect(t, c, 1);
    }
    if (c->server_closes) /* it said Connection: close; requests behind it go out again */
        t->issued -= c->outstanding;
    else if (c->outstanding) /* the server closed or reset while it owed an answer */
        *(cn->failed_op == OP_SEND ? &t->t.err_write : &t->t.err_read) += 1;
    reconnect(t, c, 0);
}

static const struct conn_ops ops = {.connected = on_connected, .opened = on_opened,
                                     .data = on_data, .sent = on_sent, .closed = on_closed};

/* ---- timers ---- */

static void timed_out(void *ctx, struct dq_node *n)
{
    time_out(ctx, (struct bconn *)((char *)n - offsetof(struct bconn, timer)));
}

static void pause_over(void *ctx, struct dq_node *n)
{
    connect_bconn(ctx, (struct bconn *)((char *)n - offsetof(struct bconn, timer)));
}

/* ---- the loop ---- */

static uint64_t next_due(const struct bthread *t)
{
    return t->t0 + (uint64_t)((double)t->scheduled * t->due_step_us);
}

/*
 * Open loop: hand every request that is due, or due within the slack, to a connection
 * that can take it: they leave in this turn's one submit. Each keeps its own due time.
 */
static void schedule(struct bthread *t)
{
    uint64_t horizon = t->ring.now + t->b->cfg->slack_us;

    for (;;) {
        uint64_t due = next_due(t);
        struct bconn *c;

        if (due > horizon || list_empty(&t->ready) || !running(t))
            return;
        c = list_entry(t->ready.next, struct bconn, ready);
        list_del(&c->ready);
        if (!allowed(t, c, 1))
            continue;
        issue(t, c, 1, due);
        t->scheduled++;
    }
}

/*
 * How many completions to wait for. In the closed loop, waking for every response costs
 * a wake-up per request; waiting until half the busy connections have answered (for at
 * most BATCH_WAIT_US) handles them in one turn and sends their next requests together,
 * which also gives the server more work per wake-up (slack 0 turns this off). Measured on loopback at -c 64:
 * client CPU per request 10.7 -> 6.1 us and more requests/s, same p99 (at -p 16,
 * waiting for every busy connection: 149k -> 156k req/s). Kernel timestamps keep the
 * latencies exact however long a batch waits.
 *
 * The open loop sleeps until the next due time less the slack: with kernel timestamps a
 * response needs no wake-up of its own, so it waits for completions only when no
 * connection is free to send on. Without them it wakes for each (the batch wait bounded).
 */
static unsigned batch_size(const struct bthread *t, int64_t *wait)
{
    uint64_t busy = t->inflight / t->b->pipeline;

    if (t->due_step_us > 0) {
        if (!t->conns.timestamps || list_empty(&t->ready))
            return 1;
        return (unsigned)(t->nconns * t->b->pipeline + 1); /* the timeout ends the wait */
    }
    if (busy < 4 || t->b->cfg->slack_us == 0) /* --slack 0: a wake-up for each response */
        return 1;
    if (*wait > BATCH_WAIT_US)
        *wait = BATCH_WAIT_US;
    /* Pipelined connections each answer in bursts: wait for all of them. */
    return (unsigned)(t->b->pipeline > 1 ? busy : busy / 2);
}

/* The requests issued this turn leave with the submit that follows: their send time. */
static void stamp_sends(struct bthread *t)
{
    uint64_t now;

    if (!t->nunstamped)
        return;
    now = now_us();
    for (uint32_t i = 0; i < t->nunstamped; i++)
        *t->unstamped[i] = now;
    t->nunstamped = 0;
}

/* Close the intervals that have ended: their counts and latencies go to the watcher. */
static void publish_intervals(struct bthread *t)
{
    while (t->iv_end != UINT64_MAX && t->ring.now >= t->iv_end) {
        struct iv_slot *s = &t->iv[t->iv_done % IV_SLOTS];

        s->requests = t->t.requests - t->iv_start.requests;
        s->errors = errors_of(&t->t) - errors_of(&t->iv_start);
        s->bytes = t->t.bytes - t->iv_start.bytes;
        s->end_us = t->iv_end < t->b->t_end ? t->iv_end : t->b->t_end;
        s->lat = t->iv_lat;
        hist_reset(&t->iv_lat);
        t->iv_start = t->t;
        __atomic_store_n(&t->iv_done, t->iv_done + 1, __ATOMIC_RELEASE);
        t->iv_end = t->iv_end >= t->b->t_end ? UINT64_MAX : t->iv_end + t->b->interval_us;
    }
}

/* The warm-up is over: everything counted so far is forgotten. */
static void start_measuring(struct bthread *t)
{
    memset(&t->t, 0, sizeof(t->t));
    t->iv_start = t->t;
    hist_reset(&t->lat);
    hist_reset(&t->iv_lat);
    t->peak_open = t->open;
    t->iv_end = t->b->t_measure + t->b->interval_us;
}

static int setup(struct bthread *t)
{
    unsigned nb = 256, ne = 256;
    unsigned bufsz = t->nconns > 1024 ? 4096 : 16384;
    int ret;

    while (nb < t->nconns * 2 && nb < 4096)
        nb <<= 1;
    while (ne < t->nconns * 2 && ne < 4096)
        ne <<= 1;
    if (ring_init(&t->ring, ne, t->nconns * 2, nb, bufsz, 0))
        return -RF_ERR_SYSTEM;
    ret = conn_set_init(&t->conns, &t->ring, t->bc, sizeof(*t->bc), t->nconns, &ops,
                        t->b->cfg->connect_timeout_ms * 1000);
    if (ret)
        return ret;
    if (t->b->cfg->rx_timestamps)
        conn_set_timestamps(&t->conns);
    t->unstamped = malloc((size_t)t->nconns * t->b->pipeline * sizeof(*t->unstamped));
    if (!t->unstamped)
        return -RF_ERR_NOMEM;
    t->conns.tls = t->b->tls;
    dq_init(&t->timeouts, t->b->cfg->timeout_ms * 1000);
    dq_init(&t->pauses, RETRY_US);
    ring_add_queue(&t->ring, &t->timeouts, timed_out, t);
    ring_add_queue(&t->ring, &t->pauses, pause_over, t);
    for (uint32_t i = 0; i < t->nconns; i++)
        t->bc[i].c.tls = t->tls_slab ? &t->tls_slab[i] : NULL;
    hist_init(&t->lat);
    hist_init(&t->iv_lat);
    list_init(&t->ready);
    return 0;
}

void *bench_thread_main(void *arg)
{
    struct bthread *t = arg;
    const struct bench *b = t->b;
    int measuring = 0;

    t->err = setup(t);
    if (t->err)
        __atomic_store_n(&t->b->abort, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&t->b->ready, 1, __ATOMIC_ACQ_REL);
    while (!__atomic_load_n(&t->b->go, __ATOMIC_ACQUIRE))
        nanosleep(&(struct timespec){0, 200000}, NULL);
    if (__atomic_load_n(&t->b->abort, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
        return NULL;
    }
    t->ring.now = t->t0 = t->last_progress = b->t_measure - b->cfg->warmup_ms * 1000;
    if (!b->cfg->duration_ms)
        t->stall_us = 1000 * (b->cfg->timeout_ms > b->cfg->connect_timeout_ms
                                  ? b->cfg->timeout_ms : b->cfg->connect_timeout_ms) + 100000;
    if (t->ring.now >= b->t_measure) { /* no warm-up: the first connects count */
        start_measuring(t);
        measuring = 1;
    }
    for (uint32_t i = 0; i < t->nconns; i++)
        connect_bconn(t, &t->bc[i]);
    for (;;) {
        int64_t wait = IDLE_WAIT_US;
        unsigned want;

        if (!measuring && t->ring.now >= b->t_measure) {
            start_measuring(t);
            measuring = 1;
        }
        if (measuring)
            publish_intervals(t);
        if (b->abort || *b->cfg->stop || t->ring.now >= b->t_end)
            break; /* requests still out are neither answers nor errors, as in wrk */
        if (t->quota && t->issued >= t->quota && !t->inflight)
            break;
        if (t->stall_us && t->ring.now - t->last_progress > t->stall_us)
            break; /* -n without -d against a server that never answers: not forever */
        t->wake_at = 0;
        if (t->due_step_us > 0 && !list_empty(&t->ready)) {
            uint64_t due = next_due(t), lead = b->cfg->slack_us;

            /* A timer here wakes us some tens of µs late (virtual machines: 50-80): wake
             * that much before the due time, so the request leaves close to it, when that
             * is more than the slack. Woken early, wait again: the slack bounds how early
             * a request leaves, and the second wait ends at the due time less the slack. */
            if (t->late_us > lead && due > t->ring.now + t->late_us)
                lead = t->late_us;
            wait = due > t->ring.now + lead ? (int64_t)(due - lead - t->ring.now) : 0;
            if (wait > 0)
                t->wake_at = t->ring.now + (uint64_t)wait;
        }
        if (!measuring && (int64_t)(b->t_measure - t->ring.now) < wait)
            wait = (int64_t)(b->t_measure - t->ring.now);
        else if (measuring && (int64_t)(t->iv_end - t->ring.now) < wait)
            wait = (int64_t)(t->iv_end - t->ring.now);
        if (b->t_end != UINT64_MAX && (int64_t)(b->t_end - t->ring.now) < wait)
            wait = (int64_t)(b->t_end - t->ring.now);
        if (wait < 0)
            wait = 0;
        want = batch_size(t, &wait);
        stamp_sends(t);
        if (ring_wait(&t->ring, want, wait)) {
            t->err = -RF_ERR_SYSTEM;
            break;
        }
        ring_dispatch(&t->ring, UINT_MAX); /* reads the clock first: ring.now is the wake */
        if (t->wake_at && t->ring.now >= t->wake_at) /* ended by the timer: how late */
            t->late_us = (uint32_t)((7 * (uint64_t)t->late_us + t->ring.now - t->wake_at) / 8);
        if (t->due_step_us > 0)
            schedule(t);
    }
    if (!measuring)
        start_measuring(t); /* ended in the warm-up: nothing was measured */
    if (t->iv_end != UINT64_MAX) { /* the last, partial interval */
        t->iv_end = t->ring.now > b->t_measure ? t->ring.now : b->t_measure;
        publish_intervals(t);
    }
    __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

void bench_thread_free(struct bthread *t)
{
    conn_set_free(&t->conns);
    if (t->ring.uring.ring_fd > 0)
        ring_exit(&t->ring);
    for (uint32_t k = 0; t->tls_slab && k < t->nconns; k++)
        tls_free(&t->tls_slab[k]);
    free(t->tls_slab);
    tls_session_free(t->sess);
    free(t->bc);
    free(t->due_slab);
    free(t->iv);
    free(t->unstamped);
    addrs_release(t->addrs);
}
