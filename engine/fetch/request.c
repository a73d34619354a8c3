/*
 * request.c - a request's life on a fetch connection: resolve, open (or reuse a kept-alive
 * connection), send the request, read the response into the window, keep or close.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch/fetch.h"
#include "ring/clock.h"

#define BACKOFF_US 50000   /* wait before retrying after EMFILE/ENFILE/EADDRNOTAVAIL */
#define BACKOFF_TRIES 5
#define TLS_BODY_STEP 65536 /* request body bytes encrypted at a time (bounds `out`) */
#define TLS_SESSIONS 256   /* origins whose sessions a worker keeps */

static struct fconn *fc_of(struct conn *c) { return (struct fconn *)c; }

static struct request *req_of(struct fconn *f) { return window_at(&f->wk->eng->win, f->req); }

static int serving(enum fconn_state s) { return s >= FC_RESOLVING; }

void fconn_set_state(struct worker *w, struct fconn *f, enum fconn_state s)
{
    enum fconn_state old = (enum fconn_state)f->state;

    if (serving(old) && !serving(s))
        __atomic_store_n(&w->busy, w->busy - 1, __ATOMIC_RELAXED);
    else if (!serving(old) && serving(s))
        __atomic_store_n(&w->busy, w->busy + 1, __ATOMIC_RELAXED);
    if (old == FC_BACKOFF)
        dq_del(&f->backoff);
    f->state = (uint8_t)s;
    switch (s) {
    case FC_FREE:
        pool_put_free(w, f);
        break;
    case FC_IDLE:
        pool_put_idle(w, f);
        break;
    case FC_BACKOFF:
        dq_add(&w->backoffs, &f->backoff, w->ring.now);
        break;
    case FC_RESOLVING:
    case FC_BUSY:
        break;
    }
}

void fconn_close(struct worker *w, struct fconn *f)
{
    conn_close(&w->conns, &f->c);
    f->tls_saved = 0;
    fconn_set_state(w, f, FC_FREE);
}

/* ---- the request on the wire ---- */

static int is_https(const struct fconn *f) { return f->scheme == RF_SCHEME_HTTPS; }

static int write_request(struct worker *w, struct fconn *f, const struct request *r,
                         const struct rf_url *u)
{
    struct http1_req h = {
        .method = r->str + r->method, .url = r->str + r->wire, .u = u,
        .hdrs = r->str + r->hdrs, .hdrs_len = r->hdrs_len, .has = r->hdr_has,
        .auth = r->auth_len ? r->str + r->auth : NULL, .auth_len = r->auth_len,
        .has_body = r->body != NULL, .body_len = r->body_len,
        .ua_line = w->eng->ua_line, .ua_len = w->eng->ua_len,
        .close = !w->eng->cfg.keepalive,
    };
    int len = http1_format_request(f->sbuf, FC_SBUF, &h);

    if (len < 0)
        return len;
    f->slen = (uint32_t)len;
    f->body_in_sbuf = r->body_len <= FC_SBUF - f->slen;
    if (f->body_in_sbuf && r->body_len) {
        memcpy(f->sbuf + f->slen, r->body, r->body_len);
        f->slen += (uint32_t)r->body_len;
    }
    return 0;
}

/*
 * Hand the next piece of the request to the connection: the head (with a small body),
 * then the body; https takes the body a step at a time as sends drain, so the TLS output
 * stays small. Returns 0, or -1 when there is nothing more to send.
 */
static int send_next(struct worker *w, struct fconn *f)
{
    struct request *r = req_of(f);
    size_t n;

    if (f->body_off >= r->body_len)
        return -1;
    n = r->body_len - f->body_off;
    if (n > TLS_BODY_STEP && is_https(f))
        n = TLS_BODY_STEP;
    if (n > UINT32_MAX / 2)
        n = UINT32_MAX / 2;
    if (conn_send(&w->conns, &f->c, (const char *)r->body + f->body_off, (uint32_t)n, 0)) {
        fetch_finish(w, f, RF_ERR_TLS);
        return 0;
    }
    f->body_off += n;
    return 0;
}

static void send_request(struct worker *w, struct fconn *f)
{
    f->body_off = f->body_in_sbuf ? req_of(f)->body_len : 0;
    if (conn_send(&w->conns, &f->c, f->sbuf, f->slen, 0))
        fetch_finish(w, f, RF_ERR_TLS); /* out of memory for the encrypted request */
}

/* ---- the response into the window ---- */

/*
 * Response headers arrive in pieces, split wherever the recvs split them. Each line is put
 * together at the end of the request's string area: handed to the caller's on_header,
 * kept if it is one a result carries (the first of repeats wins), forgotten otherwise.
 */
static uint32_t *capture_slot(struct request *r, const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t len;
        size_t off;
    } wanted[] = {
        {"location", 8, offsetof(struct request, loc)},
        {"content-type", 12, offsetof(struct request, ctype)},
        {"server", 6, offsetof(struct request, server)},
        {"retry-after", 11, offsetof(struct request, retry_after)},
    };

    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
        if (len == wanted[i].len && strncasecmp(name, wanted[i].name, len) == 0)
            return (uint32_t *)((char *)r + wanted[i].off);
    return NULL;
}

static rf_error header_line(struct fconn *f, struct request *r)
{
    const rf_config *cfg = &f->wk->eng->cfg;
    const char *name = r->str + f->hline;
    size_t nlen = strlen(name);
    const char *value = f->hval_open ? name + nlen + 1 : "";
    size_t vlen = strlen(value);
    uint32_t *off = capture_slot(r, name, nlen);

    if (cfg->on_header) {
        int stop;

        rf_in_callback = f->wk->eng;
        stop = cfg->on_header(cfg->stream_userp, f->req, r->userdata, name, nlen, value, vlen);
        rf_in_callback = NULL;
        if (stop)
            return RF_ERR_CANCELLED;
    }
    if (off && *off == W_NONE && f->hval_open) {
        /* Keep the value: it moves down over its name. */
        memmove(r->str + f->hline, value, vlen + 1);
        *off = f->hline;
        r->str_len = f->hline + (uint32_t)vlen + 1;
    } else {
        r->str_len = f->hline;
    }
    return RF_OK;
}

static rf_error on_piece(void *ctx, enum http1_piece kind, const char *at, size_t len)
{
    struct fconn *f = ctx;
    struct request *r = req_of(f);
    uint32_t off;

    switch (kind) {
    case HTTP1_NAME:
    case HTTP1_VALUE:
        /* A piece continues the name or value under way, or starts the value. */
        if ((kind == HTTP1_NAME && f->hline != W_NONE) ||
            (kind == HTTP1_VALUE && f->hval_open)) {
            if (request_extend(r, at, (uint32_t)len))
                return RF_ERR_NOMEM;
            return RF_OK;
        }
        off = request_append(r, at, (uint32_t)len);
        if (off == W_NONE)
            return RF_ERR_NOMEM;
        if (kind == HTTP1_NAME)
            f->hline = off;
        else
            f->hval_open = 1;
        return RF_OK;
    case HTTP1_END: {
        rf_error err = f->hline == W_NONE ? RF_OK : header_line(f, r);

        f->hline = W_NONE;
        f->hval_open = 0;
        return err;
    }
    }
    return RF_OK;
}

static rf_error on_headers_done(void *ctx, const struct http1_resp *h)
{
    struct fconn *f = ctx;
    struct request *r = req_of(f);

    r->status = h->parser.status_code;
    if (h->parser.flags & F_CONTENT_LENGTH)
        r->content_length = (int64_t)h->parser.content_length;
    return RF_OK;
}

static rf_error on_body(void *ctx, const char *at, size_t len)
{
    struct fconn *f = ctx;
    struct request *r = req_of(f);
    const rf_config *cfg = &f->wk->eng->cfg;

    r->body_bytes += len;
    /* Keep before the cap check: the kept bytes are the first min(body_bytes, keep_body)
     * even when this piece ends the request, whatever the read sizes were. */
    if (r->kept_len < r->keep_body) {
        size_t room = r->keep_body - r->kept_len;
        uint32_t n = (uint32_t)(len < room ? len : room);

        if (r->kept == W_NONE)
            r->kept = request_append(r, at, n);
        else if (request_extend(r, at, n))
            n = 0;
        if (r->kept != W_NONE)
            r->kept_len += n;
    }
    if (r->max_body && r->body_bytes > r->max_body)
        return RF_ERR_TOO_LARGE;
    if (cfg->on_body) {
        int stop;

        rf_in_callback = f->wk->eng;
        stop = cfg->on_body(cfg->stream_userp, f->req, r->userdata, at, len);
        rf_in_callback = NULL;
        if (stop)
            return RF_ERR_CANCELLED;
    }
    return RF_OK;
}

static void on_restart(void *ctx)
{
    struct fconn *f = ctx;

    request_reset_response(req_of(f));
    f->hline = W_NONE;
    f->hval_open = 0;
}

static const struct http1_sink capture = {on_piece, on_headers_done, on_body, on_restart};

static void expect_response(struct fconn *f)
{
    struct request *r = req_of(f);

    f->hline = W_NONE;
    f->hval_open = 0;
    http1_resp_next(&f->resp, strcmp(r->str + r->method, "HEAD") == 0);
}

/* ---- opening ---- */

static void fail(struct worker *w, struct fconn *f, rf_error err, const char *detail);

static int tls_memory(struct worker *w, struct fconn *f)
{
    if (!w->conns.tls) { /* the default CA bundle could not be loaded at creation */
        fail(w, f, RF_ERR_TLS, w->eng->tls_err);
        return -1;
    }
    if (!w->sessions.slot && tls_cache_init(&w->sessions, TLS_SESSIONS))
        goto nomem;
    if (!f->tls && !(f->tls = calloc(1, sizeof(*f->tls))))
        goto nomem;
    return 0;
nomem:
    fail(w, f, RF_ERR_TLS, "cannot set up a TLS session (out of memory)");
    return -1;
}

/* Open a new connection for the request to the origin's addresses. */
static void open_conn(struct worker *w, struct fconn *f, const struct rf_addrs *addrs)
{
    int https = is_https(f), ret;

    if (https && tls_memory(w, f))
        return;
    f->c.tls = https ? f->tls : NULL;
    f->body_off = f->body_in_sbuf ? req_of(f)->body_len : 0;
    http1_resp_init(&f->resp, &capture, f, w->eng->cfg.max_header_bytes);
    expect_response(f);
    ret = conn_open(&w->conns, &f->c, addrs, f->port, f->host,
                    https ? tls_cache_get(&w->sessions, f->origin_hash, f->host, f->port) : NULL,
                    https ? NULL : f->sbuf, f->slen, 0,
                    (uint64_t)req_of(f)->connect_timeout_ms * 1000);
    if (ret == -RF_ERR_RESOURCE && ++f->tries < BACKOFF_TRIES)
        return fconn_set_state(w, f, FC_BACKOFF);
    if (ret)
        return fetch_finish(w, f, ret == -RF_ERR_TLS ? RF_ERR_TLS : RF_ERR_RESOURCE);
    count(&w->stats.connects);
    fconn_set_state(w, f, FC_BUSY);
}

static void resolve(struct worker *w, struct fconn *f)
{
    const struct rf_addrs *addrs;
    int ret = dns_lookup(w->dns, f->host, f->host_len, f->port, &addrs,
                         (uint64_t)f->c.idx << 40 | (f->req & 0xffffffffffull));

    if (ret < 0)
        return fetch_finish(w, f, RF_ERR_DNS);
    if (ret == 0) {
        open_conn(w, f, addrs);
        addrs_release(addrs);
    }
}

void fetch_dns_done(void *ctx, uint64_t cookie, int err, const struct rf_addrs *addrs)
{
    struct worker *w = ctx;
    uint32_t idx = (uint32_t)(cookie >> 40);
    struct fconn *f = idx < w->nconns ? &w->fc[idx] : NULL;

    /* The request may have timed out or been cancelled while the query ran. */
    if (f && f->state == FC_RESOLVING && (f->req & 0xffffffffffull) == (cookie & 0xffffffffffull)) {
        if (err)
            fetch_finish(w, f, RF_ERR_DNS);
        else
            open_conn(w, f, addrs);
    }
    addrs_release(addrs);
}

static void set_origin(struct fconn *f, const struct rf_url *u, const char *host_lc,
                       uint32_t hash)
{
    f->scheme = u->scheme;
    f->port = u->port;
    f->host_len = (uint8_t)u->host_len;
    memcpy(f->host, host_lc, u->host_len);
    f->host[u->host_len] = '\0';
    f->origin_hash = hash;
}

void fetch_start(struct worker *w, struct fconn *f, uint64_t req, const struct rf_url *u,
                 const char *host_lc, uint32_t hash)
{
    struct request *r = window_at(&w->eng->win, req);
    enum fconn_state prev = (enum fconn_state)f->state;
    int ret;

    f->req = req;
    r->fc = f;
    f->t_start = w->ring.now;
    f->t_connected = f->t_first = 0;
    f->retried = f->got_bytes = f->tries = f->extra = 0;
    ret = write_request(w, f, r, u);
    if (prev == FC_IDLE) {
        /* A kept-alive connection to this origin: its multishot recv is still armed. */
        f->reused = 1;
        f->t_connected = w->ring.now;
        fconn_set_state(w, f, FC_BUSY);
        if (ret)
            return fetch_finish(w, f, (rf_error)-ret);
        expect_response(f);
        return send_request(w, f);
    }
    f->reused = 0;
    f->c.peer.len = 0; /* a row names an address only if this request tried one */
    set_origin(f, u, host_lc, hash);
    fconn_set_state(w, f, FC_RESOLVING);
    if (ret)
        return fetch_finish(w, f, (rf_error)-ret);
    resolve(w, f);
}

/* ---- the end of a request ---- */

static uint32_t since(uint64_t from, uint64_t t)
{
    uint64_t d = t ? t - from : 0;

    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void record_tls(struct worker *w, struct fconn *f, struct request *r, rf_error err)
{
    struct tls_conn *t = f->c.tls;

    if (!t || t->state != TLS_OPEN)
        return;
    r->tls_version = tls_version(t);
    r->tls_resumed = t->resumed;
    r->tls_us = f->reused ? 0 : (uint32_t)(f->t_tls_done - f->t_connected);
    if (err == RF_OK && !f->tls_saved) {
        /* After a response: a TLS 1.3 ticket comes after the handshake, before it. */
        tls_session *s = conn_session(&f->c);

        if (s)
            tls_cache_put(&w->sessions, f->origin_hash, f->host, f->port, s);
        f->tls_saved = 1;
    }
}

/*
 * The request on f has the outcome of this send: record it, keep the connection or close
 * it, and let the request's policy decide what comes next (a redirect, a retry, its
 * result).
 */
void fetch_finish(struct worker *w, struct fconn *f, rf_error err)
{
    struct request *r = req_of(f);
    int keep;

    r->err = err;
    r->reused = f->reused;
    r->connect_us = f->reused ? 0 : since(f->t_start, f->t_connected);
    r->ttfb_us = since(f->t_start, f->t_first);
    r->total_us = since(r->t_admit, w->ring.now);
    if (f->c.peer.len && r->ip == W_NONE) {
        char buf[64];
        const char *ip = addr_text(&f->c.peer, buf, sizeof(buf));

        r->ip = request_append(r, ip, (uint32_t)strlen(ip));
    }
    /* What opening the serving connection took, reused or not: a row says the same
     * whichever connection it happened to get (a shard's rows equal a whole run's). */
    r->addresses_tried = f->c.tried;
    record_tls(w, f, r, err);
    r->fc = NULL;
    keep = err == RF_OK && w->eng->cfg.keepalive &&
           !__atomic_load_n(&w->eng->cancelled, __ATOMIC_ACQUIRE) && !f->extra &&
           f->c.state == CONN_OPEN && http1_resp_keepalive(&f->resp.parser);
    if (keep)
        fconn_set_state(w, f, FC_IDLE);
    else
        fconn_close(w, f);
    request_next(w, r);
}

static void fail(struct worker *w, struct fconn *f, rf_error err, const char *detail)
{
    struct request *r = req_of(f);

    if (detail)
        r->detail = request_append(r, detail, (uint32_t)strlen(detail));
    fetch_finish(w, f, err);
}

/* A kept-alive connection the server had already closed: run the request once more on a
 * new one. */
static int retry_stale(struct worker *w, struct fconn *f)
{
    if (!f->reused || f->got_bytes || f->retried)
        return 0;
    request_reset_response(req_of(f));
    f->reused = 0;
    f->retried = 1;
    fconn_set_state(w, f, FC_RESOLVING);
    resolve(w, f);
    return 1;
}

/* ---- the connection layer's callbacks ---- */

static void on_connected(struct conn *c)
{
    struct fconn *f = fc_of(c);

    f->t_connected = f->wk->ring.now;
}

static void on_opened(struct conn *c)
{
    struct fconn *f = fc_of(c);

    if (!is_https(f))
        return; /* the request went out with the connect */
    f->t_tls_done = now_us(); /* after the handshake's crypto, not before the batch */
    send_request(f->wk, f);
}

static void on_sent(struct conn *c)
{
    struct fconn *f = fc_of(c);

    if (f->state == FC_BUSY)
        send_next(f->wk, f);
}

static int on_data(struct conn *c, const char *p, size_t n)
{
    struct fconn *f = fc_of(c);
    struct worker *w = f->wk;
    uint32_t gen = c->gen;
    size_t used;

    if (f->state != FC_BUSY) { /* bytes nobody asked for on an idle connection */
        fconn_close(w, f);
        return 1;
    }
    if (!f->got_bytes) {
        f->got_bytes = 1;
        f->t_first = w->ring.now;
    }
    switch (http1_resp_feed(&f->resp, p, n, &used)) {
    case HTTP1_MORE:
        return 0;
    case HTTP1_DONE:
        /* Anything after the response we asked for means we lost track of the stream. */
        f->extra = used != n;
        fetch_finish(w, f, RF_OK);
        break;
    case HTTP1_ERROR:
        fetch_finish(w, f, (rf_error)f->resp.fail);
        break;
    }
    return c->gen != gen || f->state != FC_BUSY;
}

static void on_closed(struct conn *c, rf_error err, const char *detail)
{
    struct fconn *f = fc_of(c);
    struct worker *w = f->wk;

    f->tls_saved = 0;
    if (f->state == FC_IDLE)
        return fconn_set_state(w, f, FC_FREE);
    if (f->state != FC_BUSY)
        return;
    if (err == RF_ERR_RESOURCE && ++f->tries < BACKOFF_TRIES)
        return fconn_set_state(w, f, FC_BACKOFF);
    if ((err == RF_OK || err == RF_ERR_RESET || err == RF_ERR_CLOSED) && retry_stale(w, f))
        return;
    if (err == RF_OK) { /* an orderly close: complete only if the response says so */
        if (f->got_bytes && http1_resp_eof(&f->resp) == HTTP1_DONE)
            return fetch_finish(w, f, RF_OK);
        return fetch_finish(w, f, f->got_bytes && f->resp.fail ? (rf_error)f->resp.fail
                                                               : RF_ERR_CLOSED);
    }
    fail(w, f, err, detail);
}

const struct conn_ops fetch_conn_ops = {
    .connected = on_connected,
    .opened = on_opened,
    .data = on_data,
    .sent = on_sent,
    .closed = on_closed,
};

/* The back-off after EMFILE/EADDRNOTAVAIL is over: resolve (from the cache) and open. */
static void backoff_over(void *ctx, struct dq_node *n)
{
    struct fconn *f = (struct fconn *)((char *)n - offsetof(struct fconn, backoff));

    fconn_set_state(ctx, f, FC_RESOLVING);
    resolve(ctx, f);
}

int fetch_worker_init(struct worker *w)
{
    int ret;

    dq_init(&w->backoffs, BACKOFF_US);
    ring_add_queue(&w->ring, &w->backoffs, backoff_over, w);
    ret = conn_set_init(&w->conns, &w->ring, w->fc, sizeof(*w->fc), w->nconns,
                        &fetch_conn_ops, (uint64_t)w->eng->cfg.connect_timeout_ms * 1000);
    return ret ? ret : policy_init(w);
}

/* End what this worker holds: requests on connections, and those waiting for one. */
void fetch_cancel_all(struct worker *w)
{
    for (uint32_t i = 0; i < w->nconns; i++)
        if (serving((enum fconn_state)w->fc[i].state))
            fetch_finish(w, &w->fc[i], RF_ERR_CANCELLED);
    policy_cancel_waiting(w);
}
