/* conn.c - the connection state machine: every slot's life as ring operations and completions. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ring/clock.h"
#include "fetch/internal.h"
#include "ring/udata.h"

#define BACKOFF_US 50000 /* wait before retrying after EMFILE/ENFILE/EADDRNOTAVAIL */
#define BACKOFF_TRIES 5
#define PLAIN_CAP 16384  /* a TLS record's plaintext at most */
#define TLS_BODY_STEP 65536 /* request body bytes encrypted at a time (bounds `out`) */
#define TLS_SESSIONS 256 /* origins whose sessions a worker keeps */

static int has_job(enum conn_state s) { return s >= C_RESOLVING; }

/* The slot's session (c->tls) is set up before an https connection's first op. */
static int is_https(const struct conn *c) { return c->scheme == RF_SCHEME_HTTPS; }

static struct wentry *job_entry(struct worker *e, struct conn *c) { return window_at(&e->eng->win, c->job); }

/* Direct descriptor of the slot's live socket: two per slot, alternating, so the close of an
 * old socket can never land on its successor however the kernel orders the two. */
static unsigned file_index(const struct conn *c) { return c->idx * 2 + c->parity; }

void conn_set_state(struct worker *e, struct conn *c, enum conn_state s)
{
    enum conn_state old = (enum conn_state)c->state;

    if (has_job(old) && !has_job(s)) {
        e->busy--;
        list_del(&c->timer);
    } else if (!has_job(old) && has_job(s)) {
        e->busy++;
    }
    if (old == C_CONNECTING || old == C_BACKOFF)
        list_del(&c->ctimer);
    c->state = (uint8_t)s;
    switch (s) {
    case C_FREE:
        pool_put_free(e, c);
        break;
    case C_IDLE:
        pool_put_idle(e, c);
        break;
    case C_RESOLVING:
    case C_ACTIVE:
        break;
    case C_BACKOFF:
        c->conn_deadline = e->now + BACKOFF_US;
        list_add_tail(&e->backoffs, &c->ctimer);
        break;
    case C_CONNECTING:
        c->conn_deadline = e->now + (uint64_t)e->eng->cfg.connect_timeout_ms * 1000;
        list_add_tail(&e->conn_deadlines, &c->ctimer);
        break;
    }
}

static void drop_socket(struct worker *e, struct conn *c)
{
    if (c->has_socket) {
        ring_close_direct(&e->ring, file_index(c));
        c->parity ^= 1;
        c->has_socket = 0;
        c->recv_armed = 0;
    }
    if (c->tls) {
        tls_reset(c->tls);
        c->tls_saved = 0;
    }
    c->gen = (c->gen + 1) & UD_GEN_MASK; /* completions still in flight are now stale */
}

void conn_close(struct worker *e, struct conn *c)
{
    drop_socket(e, c);
    conn_set_state(e, c, C_FREE);
}

static void arm_recv(struct worker *e, struct conn *c)
{
    ring_recv_multishot(&e->ring, file_index(c), ud_pack(OP_RECV, c->gen, c->idx));
    c->recv_armed = 1;
}

/* Queue the next piece of the request: the rest of the head, then the body. */
static void send_next(struct worker *e, struct conn *c, unsigned sqe_flags)
{
    struct wentry *w = job_entry(e, c);
    uint64_t ud = ud_pack(OP_SEND, c->gen, c->idx);

    if (c->soff < c->slen)
        ring_send(&e->ring, file_index(c), c->sbuf + c->soff, c->slen - c->soff, ud,
                  sqe_flags);
    else
        ring_send(&e->ring, file_index(c), (const char *)w->body + c->body_off,
                  w->body_len - c->body_off, ud, sqe_flags);
}

static int send_done(struct worker *e, struct conn *c)
{
    return c->soff == c->slen && c->body_off == job_entry(e, c)->body_len;
}

/* ---- https: the session between the socket ops and the parser ---- */

/* Hand what wolfSSL wrote to a send, unless one is still in flight. */
static void tls_flush(struct worker *e, struct conn *c)
{
    uint32_t len;
    const char *p = tls_take_flight(c->tls, &len);

    if (p)
        ring_send(&e->ring, file_index(c), p, len, ud_pack(OP_SEND, c->gen, c->idx), 0);
}

/* Encrypt the request: the head (with a small body) at once, a larger body a step at a
 * time as the sends drain, so `out` stays small. */
static int tls_write_request(struct worker *e, struct conn *c)
{
    struct wentry *w = job_entry(e, c);

    if (c->soff < c->slen) {
        if (tls_write(c->tls, c->sbuf, c->slen))
            return -1;
        c->soff = c->slen;
    }
    if (c->body_off < w->body_len && !c->tls->out.len) {
        size_t n = w->body_len - c->body_off;

        if (n > TLS_BODY_STEP)
            n = TLS_BODY_STEP;
        if (tls_write(c->tls, (const char *)w->body + c->body_off, (uint32_t)n))
            return -1;
        c->body_off += n;
    }
    return 0;
}

static void tls_fail(struct worker *e, struct conn *c, int r)
{
    char why[200];

    if (r == TLS_CLOSED)
        return conn_fail(e, c, RF_ERR_TLS, "the server ended the session during the handshake");
    conn_fail(e, c, r == TLS_ERR_VERIFY ? RF_ERR_TLS_VERIFY : RF_ERR_TLS,
              tls_error(c->tls, why, sizeof(why)));
}

/* Set up the slot's session for a new connection; the ClientHello waits in `out`. */
static int tls_begin(struct worker *e, struct conn *c)
{
    const char *why = NULL;
    struct tls_ctx *ctx = engine_tls(e->eng, &why);

    if (!ctx) {
        conn_fail(e, c, RF_ERR_TLS, why);
        return -1;
    }
    if (!e->plain && (e->plain = malloc(PLAIN_CAP)) == NULL)
        goto nomem;
    if (!e->sessions.slot && tls_cache_init(&e->sessions, TLS_SESSIONS))
        goto nomem;
    if (!c->tls && (c->tls = calloc(1, sizeof(*c->tls))) == NULL)
        goto nomem;
    if (tls_start(ctx, c->tls, c->host,
                  tls_cache_get(&e->sessions, c->origin_hash, c->host, c->port)) == 0)
        return 0;
nomem:
    conn_fail(e, c, RF_ERR_TLS, "cannot set up a TLS session (out of memory)");
    return -1;
}

static void tls_record_result(struct worker *e, struct conn *c, struct wentry *w, rf_error err)
{
    struct tls_conn *t = c->tls;

    if (!t || t->state != TLS_OPEN)
        return;
    w->tls_version = tls_version(t);
    w->tls_resumed = t->resumed;
    w->tls_us = c->reused ? 0 : (uint32_t)(c->t_tls_done - c->t_connected);
    if (err == RF_OK && !c->tls_saved) {
        tls_session *s = tls_get_session(t);

        if (s)
            tls_cache_put(&e->sessions, c->origin_hash, c->host, c->port, s);
        c->tls_saved = 1;
    }
}

/*
 * socket -> connect -> send as one linked chain: a new connection costs one submission.
 * The send is the request, or for https the ClientHello (the request follows the
 * handshake).
 */
static void conn_connect(struct worker *e, struct conn *c)
{
    int https = is_https(c);

    if (https && tls_begin(e, c))
        return;
    ring_reserve(&e->ring, 3);
    ring_socket_connect(&e->ring, file_index(c), (struct sockaddr *)&c->addr, c->addrlen, NULL,
                        0, ud_pack(OP_SOCKET, c->gen, c->idx),
                        ud_pack(OP_CONNECT, c->gen, c->idx), 1);
    c->soff = 0;
    c->body_off = c->body_in_sbuf ? job_entry(e, c)->body_len : 0;
    if (https)
        tls_flush(e, c);
    else
        send_next(e, c, 0);
    c->has_socket = 1;
    c->t_conn_start = e->now;
    e->stats.connects++;
    http1_begin_response(e, c);
    conn_set_state(e, c, C_CONNECTING);
}

static void set_origin(struct conn *c, const struct rf_url *u, const char *host_lc, uint32_t hash)
{
    c->scheme = u->scheme;
    c->port = u->port;
    c->host_len = (uint8_t)u->host_len;
    memcpy(c->host, host_lc, u->host_len);
    c->host[u->host_len] = '\0';
    c->origin_hash = hash;
}

void conn_start_job(struct worker *e, struct conn *c, uint64_t job, const struct rf_url *u,
                    const char *host_lc, uint32_t hash)
{
    struct wentry *w = window_at(&e->eng->win, job);
    enum conn_state prev = (enum conn_state)c->state;
    int ret;

    c->job = job;
    c->t_admit = e->now;
    c->t_connected = c->t_first = 0;
    c->deadline = e->now + (uint64_t)e->eng->cfg.timeout_ms * 1000;
    c->retried = c->got_bytes = c->tries = c->extra = 0;
    list_add_tail(&e->deadlines, &c->timer);
    ret = http1_write_request(e, c, w, u, w->str);
    if (ret == 0 && w->body_len <= CONN_SBUF - c->slen) {
        if (w->body_len)
            memcpy(c->sbuf + c->slen, w->body, w->body_len);
        c->slen += (uint32_t)w->body_len;
        c->body_in_sbuf = 1;
    } else {
        c->body_in_sbuf = 0;
    }
    if (prev == C_IDLE) {
        /* Kept-alive connection to this origin: its multishot recv is still armed. */
        c->reused = 1;
        c->t_conn_start = c->t_connected = e->now;
        conn_set_state(e, c, C_ACTIVE);
        if (ret)
            return conn_finish(e, c, (rf_error)-ret);
        c->soff = 0;
        c->body_off = c->body_in_sbuf ? w->body_len : 0;
        http1_begin_response(e, c);
        if (!is_https(c)) {
            send_next(e, c, 0);
        } else if (tls_write_request(e, c) == 0) {
            tls_flush(e, c);
        } else {
            conn_fail(e, c, RF_ERR_TLS, "cannot encrypt the request (out of memory)");
        }
        return;
    }
    c->reused = 0;
    set_origin(c, u, host_lc, hash);
    conn_set_state(e, c, C_RESOLVING);
    if (ret)
        return conn_finish(e, c, (rf_error)-ret);
    ret = dns_lookup(e->dns, host_lc, u->host_len, u->port, &c->addr, &c->addrlen,
                     (uint64_t)c->idx << 40 | (job & 0xffffffffffull));
    if (ret < 0)
        return conn_finish(e, c, RF_ERR_DNS);
    if (ret == 0)
        conn_connect(e, c);
}

void conn_dns_done(void *ctx, uint64_t cookie, int err, const struct sockaddr *sa,
                   socklen_t salen)
{
    struct worker *e = ctx;
    uint32_t idx = (uint32_t)(cookie >> 40);
    struct conn *c;

    if (idx >= e->nconns)
        return;
    c = &e->conns[idx];
    /* The job may have timed out or been cancelled while the query ran. */
    if (c->state != C_RESOLVING || (c->job & 0xffffffffffull) != (cookie & 0xffffffffffull))
        return;
    if (err || salen > sizeof(c->addr))
        return conn_finish(e, c, RF_ERR_DNS);
    memcpy(&c->addr, sa, salen);
    c->addrlen = salen;
    conn_connect(e, c);
}

static void set_ip(struct wentry *w, const struct conn *c)
{
    char buf[INET6_ADDRSTRLEN];
    const void *a;

    if (!c->addrlen)
        return;
    if (c->addr.ss_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)&c->addr)->sin6_addr;
    else
        a = &((const struct sockaddr_in *)&c->addr)->sin_addr;
    if (inet_ntop(c->addr.ss_family, a, buf, sizeof(buf)))
        w->ip = wentry_append(w, buf, (uint32_t)strlen(buf));
}

static uint32_t since_admit(const struct conn *c, uint64_t t)
{
    uint64_t d = t ? t - c->t_admit : 0;

    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* The job on `c` has its result: record it, then keep the connection or close it. */
void conn_finish(struct worker *e, struct conn *c, rf_error err)
{
    struct wentry *w = job_entry(e, c);
    int keep;

    w->err = err;
    w->reused = c->reused;
    w->connect_us = c->reused ? 0 : since_admit(c, c->t_connected);
    w->ttfb_us = since_admit(c, c->t_first);
    w->total_us = since_admit(c, e->now);
    set_ip(w, c);
    tls_record_result(e, c, w, err);
    if (err != RF_OK)
        e->stats.errors++;
    engine_job_done(e, w, c->job);
    keep = err == RF_OK && e->eng->cfg.keepalive && !e->cancelling && !c->extra &&
           c->has_socket && llhttp_should_keep_alive(&c->parser);
    if (keep)
        conn_set_state(e, c, C_IDLE);
    else
        conn_close(e, c);
}

/* conn_finish() with the reason in words, for the result's error_detail. */
void conn_fail(struct worker *e, struct conn *c, rf_error err, const char *detail)
{
    struct wentry *w = job_entry(e, c);

    w->detail = wentry_append(w, detail, (uint32_t)strlen(detail));
    conn_finish(e, c, err);
}

/* A kept-alive connection the server had already closed: run the job once more on a new one. */
static int retry_stale(struct worker *e, struct conn *c)
{
    if (!c->reused || c->got_bytes || c->retried)
        return 0;
    drop_socket(e, c);
    wentry_reset_response(job_entry(e, c));
    c->reused = 0;
    c->retried = 1;
    conn_connect(e, c);
    return 1;
}

static int resource_error(int res)
{
    return res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM ||
           res == -EADDRNOTAVAIL || res == -EAGAIN;
}

static rf_error connect_error(int res)
{
    switch (-res) {
    case ECONNREFUSED:
        return RF_ERR_REFUSED;
    case ETIMEDOUT:
        return RF_ERR_CONNECT_TIMEOUT;
    case ECONNRESET:
        return RF_ERR_RESET;
    default:
        return RF_ERR_UNREACHABLE;
    }
}

static void connect_failed(struct worker *e, struct conn *c, int res)
{
    if (resource_error(res)) {
        drop_socket(e, c);
        if (++c->tries < BACKOFF_TRIES) {
            conn_set_state(e, c, C_BACKOFF);
            return;
        }
        return conn_finish(e, c, RF_ERR_RESOURCE);
    }
    conn_finish(e, c, connect_error(res));
}

static void on_send(struct worker *e, struct conn *c, int res)
{
    if (res < 0) {
        if (c->state == C_CONNECTING && res == -ECANCELED)
            return; /* the connect before it failed and says why */
        if (c->state == C_IDLE)
            return conn_close(e, c);
        if (!retry_stale(e, c))
            conn_finish(e, c, res == -ECANCELED ? RF_ERR_CLOSED : RF_ERR_RESET);
        return;
    }
    if (is_https(c)) {
        uint32_t len;
        const char *rest = tls_flight_sent(c->tls, (uint32_t)res, &len);

        if (rest) /* a short send */
            return ring_send(&e->ring, file_index(c), rest, len,
                             ud_pack(OP_SEND, c->gen, c->idx), 0);
        if (c->state == C_ACTIVE && c->tls->state == TLS_OPEN && tls_write_request(e, c))
            return conn_fail(e, c, RF_ERR_TLS, "cannot encrypt the request (out of memory)");
        return tls_flush(e, c);
    }
    if (c->soff < c->slen)
        c->soff += (uint32_t)res;
    else
        c->body_off += (size_t)res;
    if (!send_done(e, c))
        send_next(e, c, 0); /* a short send: the socket buffer was full */
}

/* Feed response bytes to llhttp; finish the job when the response is complete or broken. */
static void on_data(struct worker *e, struct conn *c, const char *p, size_t n)
{
    llhttp_errno_t err;

    if (!c->got_bytes) {
        c->got_bytes = 1;
        c->t_first = e->now;
    }
    err = llhttp_execute(&c->parser, p, n);
    if (err == HPE_OK)
        return;
    if (err == HPE_PAUSED && c->msg_done) {
        /* Anything after the response we asked for means we lost track of the stream. */
        c->extra = llhttp_get_error_pos(&c->parser) != p + n;
        return conn_finish(e, c, RF_OK);
    }
    conn_finish(e, c, c->fail ? (rf_error)c->fail : RF_ERR_PROTOCOL);
}

static void on_eof(struct worker *e, struct conn *c)
{
    if (c->state == C_IDLE)
        return conn_close(e, c);
    if (is_https(c) && c->tls->state == TLS_HANDSHAKE)
        return tls_fail(e, c, TLS_CLOSED);
    if (retry_stale(e, c))
        return;
    /* A body delimited by the close is complete only now: llhttp_finish() says so. */
    if (c->got_bytes)
        llhttp_finish(&c->parser);
    conn_finish(e, c, c->msg_done ? RF_OK : c->fail ? (rf_error)c->fail : RF_ERR_CLOSED);
}

/*
 * Ciphertext arrived: run the handshake, then decrypt record by record into the parser.
 * Every lent byte is taken before returning (the buffer goes back to the ring).
 */
static void on_tls_data(struct worker *e, struct conn *c, const char *p, uint32_t n)
{
    struct tls_conn *t = c->tls;
    uint32_t gen = c->gen;
    int r;

    tls_input(t, p, n);
    if (t->state == TLS_HANDSHAKE) {
        r = tls_handshake(t);
        if (r < 0)
            return tls_fail(e, c, r);
        if (r == TLS_AGAIN)
            return tls_flush(e, c);
        c->t_tls_done = now_us(); /* after the handshake's crypto, not before the batch */
        if (tls_write_request(e, c))
            return conn_fail(e, c, RF_ERR_TLS, "cannot encrypt the request (out of memory)");
    }
    while ((r = tls_read(t, e->plain, PLAIN_CAP)) > 0) {
        if (c->state != C_ACTIVE) /* bytes nobody asked for on an idle connection */
            return conn_close(e, c);
        on_data(e, c, e->plain, (size_t)r);
        if (c->gen != gen)
            return; /* the connection ended with the job */
    }
    if (r == TLS_CLOSED)
        return on_eof(e, c);
    if (r == TLS_ERR) {
        char why[200];

        if (c->state != C_ACTIVE)
            return conn_close(e, c);
        return conn_fail(e, c, RF_ERR_TLS, tls_error(t, why, sizeof(why)));
    }
    tls_flush(e, c); /* the request, or what the session owes the server */
}

static void on_recv(struct worker *e, struct conn *c, struct io_uring_cqe *cqe)
{
    int res = cqe->res;

    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->recv_armed = 0;
    if (res > 0) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

        if (is_https(c))
            on_tls_data(e, c, ring_buf(&e->ring, bid), (uint32_t)res);
        else if (c->state == C_IDLE) /* bytes nobody asked for on an idle connection */
            conn_close(e, c);
        else
            on_data(e, c, ring_buf(&e->ring, bid), (size_t)res);
        ring_buf_return(&e->ring, bid);
    } else if (res == 0) {
        return on_eof(e, c);
    } else if (res == -ENOBUFS) {
        /* The buffer ring ran dry for a moment: buffers come back this turn, re-arm. */
    } else if (c->state == C_IDLE) {
        return conn_close(e, c);
    } else if (!retry_stale(e, c)) {
        return conn_finish(e, c, res == -ECONNRESET || res == -EPIPE ? RF_ERR_RESET
                                                                     : RF_ERR_CLOSED);
    }
    if (c->has_socket && !c->recv_armed && (c->state == C_ACTIVE || c->state == C_IDLE))
        arm_recv(e, c);
}

void conn_handle_cqe(struct worker *e, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    uint32_t idx = ud_idx(ud);
    struct conn *c = idx < e->nconns ? &e->conns[idx] : NULL;

    if (!c || ud_gen(ud) != c->gen) {
        /* Stale: the slot moved on. A buffer it carries still goes back to the ring. */
        if (cqe->flags & IORING_CQE_F_BUFFER)
            ring_buf_return(&e->ring, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        return;
    }
    switch (ud_op(ud)) {
    case OP_SOCKET:
        if (cqe->res < 0)
            connect_failed(e, c, cqe->res);
        break;
    case OP_CONNECT:
        if (cqe->res == -ECANCELED)
            break; /* the socket before it failed and said why */
        if (cqe->res < 0)
            return connect_failed(e, c, cqe->res);
        c->t_connected = e->now;
        conn_set_state(e, c, C_ACTIVE);
        arm_recv(e, c);
        break;
    case OP_SEND:
        on_send(e, c, cqe->res);
        break;
    case OP_RECV:
        on_recv(e, c, cqe);
        break;
    case OP_IGNORE:
    case OP_DNS_POLL:
    case OP_WAKE:
        break;
    }
}

/* Deadlines are queued in the order they were set and share one length: the heads are
 * the earliest, so expiry never scans. */
void conn_expire(struct worker *e)
{
    while (!list_empty(&e->conn_deadlines)) {
        struct conn *c = list_entry(e->conn_deadlines.next, struct conn, ctimer);

        if (c->conn_deadline > e->now)
            break;
        conn_finish(e, c, RF_ERR_CONNECT_TIMEOUT);
    }
    while (!list_empty(&e->deadlines)) {
        struct conn *c = list_entry(e->deadlines.next, struct conn, timer);

        if (c->deadline > e->now)
            break;
        conn_finish(e, c, RF_ERR_TIMEOUT);
    }
    while (!list_empty(&e->backoffs)) {
        struct conn *c = list_entry(e->backoffs.next, struct conn, ctimer);

        if (c->conn_deadline > e->now)
            break;
        conn_connect(e, c);
    }
}

int64_t conn_next_deadline(const struct worker *e)
{
    int64_t t = -1;
    const struct list *heads[] = {&e->deadlines, &e->conn_deadlines, &e->backoffs};

    for (size_t i = 0; i < 3; i++) {
        const struct conn *c;
        uint64_t d;

        if (list_empty(heads[i]))
            continue;
        c = i == 0 ? list_entry(heads[i]->next, struct conn, timer)
                   : list_entry(heads[i]->next, struct conn, ctimer);
        d = i == 0 ? c->deadline : c->conn_deadline;
        if (t < 0 || (int64_t)d < t)
            t = (int64_t)d;
    }
    return t;
}

void conn_cancel_all(struct worker *e)
{
    for (uint32_t i = 0; i < e->nconns; i++)
        if (has_job((enum conn_state)e->conns[i].state))
            conn_finish(e, &e->conns[i], RF_ERR_CANCELLED);
}
