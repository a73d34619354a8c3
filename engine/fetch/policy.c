/*
 * policy.c - a request's life across sends: its deadline, redirects (RFC 9110 15.4),
 * retries with back-off, per-host limits, and its end. A request holds a slot only while a
 * send is under way: a waiting retry or a request parked behind its host holds none, and
 * waits on the worker's `ready` list once only a slot is missing.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fetch/fetch.h"
#include "ring/hash.h"
#include "ring/clock.h"

#define RETRY_CAP_US 30000000ull  /* the back-off never waits longer than 30 s */
#define HOST_BUCKETS 1024
#define HOSTS_IDLE_MAX 4096        /* hosts kept without requests, for their rate history */

/* A host's limits: what is in flight, when the next send may start, who waits. */
struct host {
    struct host *next;        /* hash chain */
    struct list idle;         /* on the idle list while nothing uses it */
    struct list parked;       /* requests waiting for this host, oldest first */
    struct dq_node timer;     /* the rate limit holds the parked head until timer.at */
    uint32_t inflight;
    uint32_t users;           /* requests holding or waiting for it */
    uint64_t next_start;
    uint32_t hash;
    char name[];
};

struct hosts {
    struct host *bucket[HOST_BUCKETS];
    struct list idle;
    unsigned nidle;
    unsigned per_host;
    uint64_t step_us;         /* 1e6 / host_rate: the token bucket's refill, burst 1 */
};

#define ENTRY(ptr, member) ((struct request *)((char *)(ptr) - offsetof(struct request, member)))

/* ---- the end ---- */

void request_complete(struct worker *w, struct request *r)
{
    dq_del(&r->deadline);
    list_del(&r->wait.link);
    r->outcome = 0;
    if (r->err != RF_OK)
        count(&w->stats.errors);
    engine_request_done(w, r, r->index);
}

/* ---- per-host limits ---- */


static void host_unlink(struct hosts *hs, struct host *h)
{
    struct host **pp = &hs->bucket[h->hash & (HOST_BUCKETS - 1)];

    while (*pp != h)
        pp = &(*pp)->next;
    *pp = h->next;
    list_del(&h->idle);
    hs->nidle--;
    free(h);
}

static struct host *host_get(struct worker *w, const char *name, size_t n)
{
    struct hosts *hs = w->hosts;
    uint32_t hash = fnv1a(FNV1A_INIT, name, n);
    struct host *h;

    for (h = hs->bucket[hash & (HOST_BUCKETS - 1)]; h; h = h->next)
        if (h->hash == hash && strlen(h->name) == n && memcmp(h->name, name, n) == 0)
            break;
    if (!h) {
        /* Forget idle hosts whose rate history no longer matters, oldest first. */
        while (hs->nidle > HOSTS_IDLE_MAX) {
            struct host *old = list_entry(hs->idle.next, struct host, idle);

            if (old->next_start > w->ring.now)
                break;
            host_unlink(hs, old);
        }
        h = calloc(1, sizeof(*h) + n + 1);
        if (!h)
            return NULL;
        memcpy(h->name, name, n);
        h->hash = hash;
        list_init(&h->parked);
        list_init(&h->idle);
        dq_node_init(&h->timer);
        h->next = hs->bucket[hash & (HOST_BUCKETS - 1)];
        hs->bucket[hash & (HOST_BUCKETS - 1)] = h;
        list_add_tail(&hs->idle, &h->idle);
        hs->nidle++;
    }
    return h;
}

static void host_use(struct hosts *hs, struct host *h, struct request *r)
{
    if (h->users++ == 0) {
        list_del(&h->idle);
        hs->nidle--;
    }
    r->host = h;
}

static void host_unuse(struct worker *w, struct request *r)
{
    struct host *h = r->host;

    r->host = NULL;
    if (--h->users == 0) {
        list_add_tail(&w->hosts->idle, &h->idle);
        w->hosts->nidle++;
    }
}

/* A send to h may start now: count it, and take the rate limit's token. */
static void host_hold(struct worker *w, struct host *h, struct request *r)
{
    h->inflight++;
    h->next_start = (h->next_start > w->ring.now ? h->next_start : w->ring.now) +
                    w->hosts->step_us;
    r->host_held = 1;
}

static int host_open(const struct worker *w, const struct host *h)
{
    return (!w->hosts->per_host || h->inflight < w->hosts->per_host) &&
           (!w->hosts->step_us || h->next_start <= w->ring.now);
}

/* Hand h's parked requests to the ready list while its limits allow. */
static void host_wake(struct worker *w, struct host *h)
{
    while (!list_empty(&h->parked)) {
        struct request *r = ENTRY(h->parked.next, wait.link);

        if (!host_open(w, h)) {
            if (w->hosts->step_us && h->next_start > w->ring.now &&
                (!w->hosts->per_host || h->inflight < w->hosts->per_host))
                dq_add_at(&w->host_timers, &h->timer, h->next_start);
            return;
        }
        list_del(&r->wait.link);
        host_hold(w, h, r);
        list_add_tail(&w->ready, &r->wait.link);
    }
}

/* Before a send: 1 when it may go now (the host is held), 0 when r was parked. */
static int host_take(struct worker *w, struct request *r, const char *name, size_t n)
{
    struct host *h = host_get(w, name, n);

    if (!h)
        return 1; /* out of memory: no limit rather than no request */
    host_use(w->hosts, h, r);
    if (list_empty(&h->parked) && host_open(w, h)) {
        host_hold(w, h, r);
        return 1;
    }
    list_add_tail(&h->parked, &r->wait.link);
    host_wake(w, h); /* arms the rate timer if that is what holds it */
    return 0;
}

/* The send is over (or never started): the host's count drops, a parked one may go. */
static void host_release(struct worker *w, struct request *r)
{
    struct host *h = r->host;

    if (!h)
        return;
    if (r->host_held) {
        h->inflight--;
        r->host_held = 0;
    }
    host_unuse(w, r);
    host_wake(w, h);
}

/* ---- running a send ---- */

void request_begin(struct worker *w, struct request *r)
{
    r->t_admit = w->ring.now;
    r->attempts = r->redirects = 0;
    r->chain = W_NONE;
    r->fc = NULL;
    r->host = NULL;
    r->host_held = r->outcome = 0;
    dq_add_at(&w->deadlines, &r->deadline, r->t_admit + (uint64_t)r->timeout_ms * 1000);
    request_run(w, r);
}

/* Send the request's current URL: on a kept-alive or new connection, or park it. */
void request_run(struct worker *w, struct request *r)
{
    char host[RF_HOST_MAX + 1];
    struct rf_url u;
    struct fconn *f;
    uint32_t hash;

    if (url_parse(r->str + r->wire, r->wire_len, &u)) {
        r->err = RF_ERR_INVALID_URL;
        return request_complete(w, r);
    }
    for (uint32_t k = 0; k < u.host_len; k++) {
        char ch = r->str[r->wire + u.host_off + k];

        host[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    if (w->hosts && !r->host_held && !host_take(w, r, host, u.host_len))
        return; /* parked: no slot held while its host is busy */
    if (r->outcome) { /* a retry starts: what it gets replaces the last outcome */
        request_reset_response(r);
        r->outcome = 0;
    }
    r->attempts++;
    hash = origin_hash(u.scheme, host, u.host_len, u.port);
    f = pool_take(w, u.scheme, host, u.host_len, u.port, hash);
    fetch_start(w, f, r->index, &u, host, hash); /* a slot is free: so is a connection */
}

/* The ready list, while slots are free. Returns how many started. */
int policy_start_ready(struct worker *w)
{
    int n = 0;

    while (!list_empty(&w->ready) && w->busy < w->max_busy) {
        struct request *r = ENTRY(w->ready.next, wait.link);

        list_del(&r->wait.link);
        request_run(w, r);
        n++;
    }
    return n;
}

/* ---- retries ---- */

static int retryable(const rf_engine *e, const struct request *r)
{
    if (r->err != RF_OK)
        return (e->retry_on >> r->err) & 1;
    return r->status > 0 && r->status < 600 && e->retry_status[r->status];
}

static uint64_t next_random(struct worker *w)
{
    /* xorshift64*: jitter needs spread, not secrecy */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ull;
}

/* Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date. -1 when absent or bad. */
static int64_t retry_after_us(const struct request *r)
{
    const char *v = request_str(r, r->retry_after);
    struct tm tm;
    char *end;
    unsigned long long secs;

    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v >= '0' && *v <= '9') {
        secs = strtoull(v, &end, 10);
        return secs > 86400 * 365 ? -1 : (int64_t)secs * 1000000;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end) {
        return -1;
    } else {
        struct timespec now;
        int64_t at = (int64_t)timegm(&tm);

        clock_gettime(CLOCK_REALTIME, &now);
        return at > now.tv_sec ? (at - now.tv_sec) * 1000000 - now.tv_nsec / 1000 : 0;
    }
}

/*
 * Wait, then send again: Retry-After when the server gave one, else exponential back-off
 * with full jitter (a uniform wait in [0, min(cap, base * 2^(attempt-1))]). A retry that
 * could not start before the deadline is not scheduled: the last outcome stands.
 */
static int schedule_retry(struct worker *w, struct request *r)
{
    uint64_t base = (uint64_t)w->eng->cfg.retry_delay_ms * 1000, cap = base;
    int64_t after = retry_after_us(r);
    uint64_t delay;

    for (unsigned i = 1; i < r->attempts && cap < RETRY_CAP_US; i++)
        cap *= 2;
    if (cap > RETRY_CAP_US)
        cap = RETRY_CAP_US;
    delay = after >= 0 ? (uint64_t)after : next_random(w) % (cap + 1);
    if (w->ring.now + delay >= r->deadline.at)
        return 0;
    r->outcome = 1;
    dq_add_at(&w->retries, &r->wait, w->ring.now + delay);
    return 1;
}

/* ---- redirects ---- */

static int is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* A hop record in str: the status, then the URL, which is already in str at `url` (an
 * offset: the reserve may move str). */
static uint32_t chain_add(struct request *r, int status, uint32_t url, uint32_t len)
{
    char *p = request_reserve(r, (uint32_t)sizeof(uint32_t) * 2 + len);
    uint32_t rec[2] = {r->chain, (uint32_t)status};

    if (!p)
        return W_NONE;
    memcpy(p, rec, sizeof(rec));
    memcpy(p + sizeof(rec), r->str + url, len);
    return request_commit(r, (uint32_t)sizeof(rec) + len);
}

static int same_origin(const char *a, size_t alen, const char *b, size_t blen)
{
    struct rf_url ua, ub;

    return url_parse(a, alen, &ua) == 0 && url_parse(b, blen, &ub) == 0 &&
           ua.scheme == ub.scheme && ua.port == ub.port && ua.host_len == ub.host_len &&
           strncasecmp(a + ua.host_off, b + ub.host_off, ua.host_len) == 0;
}

/* Is `url` the request's URL or one of its hops already? */
static int seen(const struct request *r, const char *url, size_t len)
{
    const char *cur = r->str + r->wire;

    if (r->wire_len == len && memcmp(cur, url, len) == 0)
        return 1;
    for (uint32_t off = r->chain; off != W_NONE;) {
        uint32_t rec[2];
        const char *u;

        memcpy(rec, r->str + off, sizeof(rec));
        u = r->str + off + sizeof(rec);
        if (strlen(u) == len && memcmp(u, url, len) == 0)
            return 1;
        off = rec[0];
    }
    return 0;
}

/*
 * Follow the Location: resolved against the URL it answered (RFC 3986 5.2), made into a
 * URL to send (as a submitted one is), refused when it loops or goes one hop too far.
 * 301/302 turn a POST into a GET and 303 anything but HEAD; 307/308 keep the method and
 * body. Credentials from userinfo never go to another origin.
 */
static void redirect(struct worker *w, struct request *r)
{
    const rf_config *cfg = &w->eng->cfg;
    const char *loc = r->str + r->loc;
    size_t loclen = strlen(loc), cap = 3 * (loclen + r->wire_len) + 1024;
    char *abs = malloc(cap), *wire = malloc(cap);
    struct url_userinfo ui;
    int alen, wlen;
    uint32_t hop, off;

    if (!abs || !wire)
        goto nomem;
    alen = url_resolve(r->str + r->wire, r->wire_len, loc, loclen, abs, cap);
    wlen = alen < 0 ? -1 : url_normalize(abs, (size_t)alen, NULL, wire, cap, &ui);
    if (wlen < 0 || ui.len) {
        free(abs);
        free(wire);
        return request_complete(w, r); /* a Location we cannot follow: the 3xx stands */
    }
    if (r->redirects >= cfg->max_redirects || seen(r, wire, (size_t)wlen)) {
        r->err = r->redirects >= cfg->max_redirects ? RF_ERR_TOO_MANY_REDIRECTS
                                                    : RF_ERR_REDIRECT_LOOP;
        free(abs);
        free(wire);
        return request_complete(w, r);
    }
    /* The hop that just ended: the submitted URL first, then what Location said. */
    hop = r->redirects ? chain_add(r, r->status, r->wire, r->wire_len)
                       : chain_add(r, r->status, r->url, r->url_len);
    off = request_append(r, wire, (uint32_t)wlen);
    if (hop == W_NONE || off == W_NONE)
        goto nomem;
    if (r->auth_len && !same_origin(r->str + r->wire, r->wire_len, wire, (size_t)wlen))
        r->auth_len = 0;
    r->chain = hop;
    r->wire = off;
    r->wire_len = (uint32_t)wlen;
    if (r->status == 303 ? strcmp(r->str + r->method, "HEAD") != 0
                         : (r->status == 301 || r->status == 302) &&
                               strcmp(r->str + r->method, "POST") == 0) {
        r->method = request_append(r, "GET", 3);
        r->body = NULL;
        r->body_len = 0;
    }
    r->redirects++;
    r->attempts = 0;
    free(abs);
    free(wire);
    request_reset_response(r);
    return request_run(w, r);
nomem:
    free(abs);
    free(wire);
    r->err = RF_ERR_NOMEM;
    request_complete(w, r);
}

/* ---- after each send ---- */

void request_next(struct worker *w, struct request *r)
{
    const rf_engine *e = w->eng;

    host_release(w, r);
    if (__atomic_load_n(&e->cancelled, __ATOMIC_ACQUIRE))
        return request_complete(w, r);
    if (r->err == RF_OK && e->cfg.follow_redirects && is_redirect(r->status) &&
        r->loc != W_NONE)
        return redirect(w, r);
    if (retryable(e, r) && r->attempts <= e->cfg.retries && schedule_retry(w, r))
        return;
    request_complete(w, r);
}

/* ---- timers ---- */

/* Its deadline passed while it waited for a retry, a host or a slot. */
static void waiting_ends(struct worker *w, struct request *r, rf_error err)
{
    list_del(&r->wait.link);
    if (r->host)
        host_release(w, r);
    if (!r->outcome) /* no earlier answer to stand: it never got to be sent */
        r->err = err;
    request_complete(w, r);
}

static void deadline_passed(void *ctx, struct dq_node *n)
{
    struct request *r = ENTRY(n, deadline);

    if (r->fc)
        fetch_finish(ctx, r->fc, RF_ERR_TIMEOUT);
    else
        waiting_ends(ctx, r, RF_ERR_TIMEOUT);
}

/* A retry's back-off is over: now it waits only for a slot. */
static void retry_due(void *ctx, struct dq_node *n)
{
    struct worker *w = ctx;

    list_add_tail(&w->ready, &n->link);
}

static void host_due(void *ctx, struct dq_node *n)
{
    host_wake(ctx, (struct host *)((char *)n - offsetof(struct host, timer)));
}

void policy_cancel_waiting(struct worker *w)
{
    struct list *lists[] = {&w->ready, &w->retries.head};

    /* Hosts first: a parked request let go moves to the ready list, drained next. */
    for (unsigned b = 0; w->hosts && b < HOST_BUCKETS; b++)
        for (struct host *h = w->hosts->bucket[b]; h; h = h->next)
            while (!list_empty(&h->parked))
                waiting_ends(w, ENTRY(h->parked.next, wait.link), RF_ERR_CANCELLED);
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        while (!list_empty(lists[i]))
            waiting_ends(w, ENTRY(lists[i]->next, wait.link), RF_ERR_CANCELLED);
}

int policy_init(struct worker *w)
{
    const rf_config *cfg = &w->eng->cfg;

    dq_init(&w->deadlines, (uint64_t)cfg->timeout_ms * 1000);
    dq_init(&w->retries, 0);
    dq_init(&w->host_timers, 0);
    list_init(&w->ready);
    w->rng = now_us() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)w;
    w->rng = w->rng ? w->rng : 1;
    if (cfg->per_host || cfg->host_rate > 0) {
        w->hosts = calloc(1, sizeof(*w->hosts));
        if (!w->hosts)
            return -RF_ERR_NOMEM;
        list_init(&w->hosts->idle);
        w->hosts->per_host = cfg->per_host;
        w->hosts->step_us = cfg->host_rate > 0 ? (uint64_t)(1e6 / cfg->host_rate) : 0;
    }
    ring_add_queue(&w->ring, &w->deadlines, deadline_passed, w);
    ring_add_queue(&w->ring, &w->retries, retry_due, w);
    ring_add_queue(&w->ring, &w->host_timers, host_due, w);
    return 0;
}

void policy_free(struct worker *w)
{
    for (unsigned b = 0; w->hosts && b < HOST_BUCKETS; b++) {
        while (w->hosts->bucket[b]) {
            struct host *h = w->hosts->bucket[b];

            w->hosts->bucket[b] = h->next;
            free(h);
        }
    }
    free(w->hosts);
    w->hosts = NULL;
}
