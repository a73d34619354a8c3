/*
 * fetch.h - the fetch engine's private state: the engine (api.c), its workers (worker.c)
 * and the fetch connections they serve requests on (request.c, pool.c).
 */
#ifndef RF_FETCH_H
#define RF_FETCH_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "conn/conn.h"
#include "fetch/window.h"
#include "proto/dns.h"
#include "proto/http1.h"
#include "proto/tls.h"
#include "proto/url.h"
#include "ring/dq.h"
#include "ring/list.h"
#include "ring/ring.h"
#include "ringfetch.h"

/* A fetch connection's states. Every change goes through fconn_set_state() (request.c). */
enum fconn_state {
    FC_FREE,       /* no socket, no request: on the free list */
    FC_IDLE,       /* a kept-alive connection without a request: in the idle pool */
    FC_RESOLVING,  /* serving a request, waiting for the resolver */
    FC_BACKOFF,    /* serving a request, waiting to retry after EMFILE/EADDRNOTAVAIL */
    FC_BUSY,       /* serving a request on the connection: connecting, sending, reading */
};

#define FC_SBUF 16384 /* request head bytes per connection; a longer head is too_large */

struct worker;

/*
 * A fetch connection: a connection of the connection layer, the origin it is for, and the
 * request it serves. A worker has twice as many as it has slots (see worker.c).
 */
struct fconn {
    struct conn c;
    struct worker *wk;
    uint8_t state;         /* enum fconn_state */
    uint8_t reused;        /* the request runs on a kept-alive connection */
    uint8_t retried;       /* the request already retried once after a stale keep-alive */
    uint8_t got_bytes;     /* any response byte arrived for this request */
    uint8_t extra;         /* bytes followed the response: the connection is not reusable */
    uint8_t tries;         /* resource back-off attempts */
    uint8_t body_in_sbuf;  /* the request body was small enough to follow the head */
    uint8_t scheme;
    uint8_t tls_saved;     /* this connection's session is in the origin cache */
    uint8_t hval_open;     /* the header line under way has a value (request.c) */
    uint16_t port;
    uint8_t host_len;
    char host[RF_HOST_MAX + 1]; /* lower-cased, NUL-terminated */
    uint32_t origin_hash;
    uint32_t hline;        /* where the header line under way starts in the request's str */
    uint64_t req;          /* window index of the request while serving one */
    char *sbuf;            /* FC_SBUF bytes from the worker's slab */
    uint32_t slen;         /* request head (and small body) length */
    size_t body_off;       /* request body bytes handed to sends */
    uint64_t t_start, t_connected, t_first, t_tls_done; /* this send's */
    struct tls_conn *tls;  /* https: the session memory, allocated on first use */
    struct http1_resp resp;
    struct list pool;      /* free list, or idle bucket of its origin */
    struct list lru;       /* idle connections, oldest first (eviction order) */
    struct dq_node backoff;  /* FC_BACKOFF: when to try again */
};

struct submitted; /* a request queued by rf_submit() */

/*
 * One ring thread's world: its ring, connections, buffers, resolver, pools and deadline
 * queues. Nothing in it is touched by another thread, except the counters read for stats.
 */
struct worker {
    struct rf_engine *eng;
    unsigned id;
    struct rf_ring ring;
    struct conn_set conns;
    struct rf_dns *dns;
    struct fconn *fc;
    uint32_t nconns;          /* connections: slots plus as many kept-alive spares */
    uint32_t max_busy;        /* the slot limiter: at most this many requests at once */
    uint32_t admit_max;       /* requests one turn starts, or 0 for no bound (worker 0's
                                 turns run inside rf_step(): they stay short) */
    char *sbuf_slab;
    struct tls_cache sessions;
    struct list free_list;
    struct list idle_lru;
    struct list *idle_buckets;
    uint32_t bucket_mask;
    struct dq deadlines;      /* requests by deadline (policy.c) */
    struct dq retries;        /* retries waiting out their back-off */
    struct dq host_timers;    /* hosts whose rate limit holds a parked request */
    struct list ready;        /* requests waiting only for a slot */
    struct hosts *hosts;      /* per-host limits (policy.c), or NULL when off */
    uint64_t rng;             /* back-off jitter */
    struct dq backoffs;
    uint64_t busy;            /* connections serving a request (read by others: atomics) */
    unsigned cancel_seen;     /* the engine's cancel epoch this worker has acted on */
    int wake_fd;              /* written to end this worker's wait (cancel, new work) */
    uint64_t wake_buf;
    pthread_t thread;
    int started;
    int hungry;               /* free slots but no work: wake me when work comes */
    rf_stats stats;           /* submitted/errors/connects of this worker (count()) */
};

struct rf_engine {
    rf_config cfg;
    char **owned;             /* copies of the configuration's strings */
    size_t n_owned;
    struct worker *workers;   /* workers[0] runs in the thread calling rf_step() */
    unsigned nworkers;
    char ua_line[1024];
    uint32_t ua_len;
    uint32_t retry_on;        /* bit per rf_error, and: */
    uint8_t retry_status[600];/* statuses to retry */
    struct tls_ctx *tls;      /* https: one context for every worker, made at creation */
    char tls_err[256];        /* why it could not be made (https requests fail with it) */
    /* Shared by the workers, under `lock`: the window's admission side and the input. */
    pthread_mutex_t lock;
    char *scratch;            /* ADMIT_SCRATCH bytes: a URL being normalised */
    struct rf_window win;
    struct submitted *q_head, *q_tail;
    int input_done;
    int pull_again;           /* the pull callback had nothing now: ask at the next step */
    /* Atomics: */
    int stopping;             /* destroy: worker threads leave */
    int fatal;                /* a worker thread's error (-rf_error): rf_step() returns it */
    int cancelled;            /* rf_cancel() until rf_resume() */
    unsigned cancel_epoch;    /* bumped by every rf_cancel(): workers end what they hold */
    uint64_t delivered;
    char last_error[256];
};

/* request.c: a request's life on a fetch connection */
void fconn_set_state(struct worker *w, struct fconn *f, enum fconn_state s);
void fconn_close(struct worker *w, struct fconn *f);
void fetch_start(struct worker *w, struct fconn *f, uint64_t req, const struct rf_url *u,
                 const char *host_lc, uint32_t hash);
void fetch_finish(struct worker *w, struct fconn *f, rf_error err);
void fetch_dns_done(void *ctx, uint64_t cookie, int err, const struct rf_addrs *addrs);
void fetch_cancel_all(struct worker *w);
int fetch_worker_init(struct worker *w);
extern const struct conn_ops fetch_conn_ops;

/* policy.c: a request's life across sends: redirects, retries, per-host limits, its end */
int policy_init(struct worker *w);
void policy_free(struct worker *w);
void request_begin(struct worker *w, struct request *r);
void request_run(struct worker *w, struct request *r);
void request_next(struct worker *w, struct request *r);
void request_complete(struct worker *w, struct request *r);
int policy_start_ready(struct worker *w);
void policy_cancel_waiting(struct worker *w);

/* pool.c: free connections and kept-alive ones by origin */
int pool_init(struct worker *w);
void pool_free(struct worker *w);
uint32_t origin_hash(uint8_t scheme, const char *host, uint32_t len, uint16_t port);
struct fconn *pool_take(struct worker *w, uint8_t scheme, const char *host, uint32_t len,
                        uint16_t port, uint32_t hash);
void pool_put_idle(struct worker *w, struct fconn *f);
void pool_put_free(struct worker *w, struct fconn *f);

/* admit.c: copy a request into its window entry (under the lock). 0 or -RF_ERR_NOMEM */
#define ADMIT_SCRATCH (3 * RF_URL_MAX + 1024) /* url_normalize()'s most, and a scheme */
int request_admit(rf_engine *e, struct request *r, const rf_request *req, size_t req_size);

/* worker.c */
int worker_init(rf_engine *e, struct worker *w, unsigned id, unsigned nslots);
void worker_free(struct worker *w);
void worker_wake(struct worker *w);
void wake_hungry(rf_engine *e);
int worker_turn(struct worker *w, unsigned max);
int start_threads(rf_engine *e);
void engine_request_done(struct worker *w, struct request *r, uint64_t index);
void queue_free(rf_engine *e);
struct submitted *submitted_copy(const rf_request *req, size_t req_size);
void queue_append(rf_engine *e, struct submitted *s);

/* api.c: the callbacks, and whether this thread is inside one of e's */
extern __thread const rf_engine *rf_in_callback;
static inline int in_callback(const rf_engine *e) { return rf_in_callback == e; }

/* A counter other threads read (rf_get_stats()): one writer, so a plain store suffices. */
static inline void count(uint64_t *c)
{
    __atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

#endif
