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
#define FC_HNAME 32   /* header names we capture are shorter than this */

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
    uint8_t hcap;          /* enum capture for the header being read */
    uint8_t hname_len;
    uint8_t hval_open;     /* the captured header value continues in the next piece */
    uint16_t port;
    uint8_t host_len;
    char host[RF_HOST_MAX + 1]; /* lower-cased, NUL-terminated */
    char hname[FC_HNAME];
    uint32_t origin_hash;
    uint64_t req;          /* window index of the request while serving one */
    char *sbuf;            /* FC_SBUF bytes from the worker's slab */
    uint32_t slen;         /* request head (and small body) length */
    size_t body_off;       /* request body bytes handed to sends */
    uint64_t t_admit, t_connected, t_first, t_tls_done;
    struct tls_conn *tls;  /* https: the session memory, allocated on first use */
    struct http1_resp resp;
    struct list pool;      /* free list, or idle bucket of its origin */
    struct list lru;       /* idle connections, oldest first (eviction order) */
    struct dq_node deadline; /* the request's, from admission */
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
    char *sbuf_slab;
    struct tls_cache sessions;
    struct list free_list;
    struct list idle_lru;
    struct list *idle_buckets;
    uint32_t bucket_mask;
    struct dq deadlines;      /* requests by deadline: one delay for all keeps it sorted */
    struct dq backoffs;
    uint64_t busy;            /* connections serving a request (read by others: atomics) */
    int cancelling;
    int wake_fd;              /* written to end this worker's wait (cancel, new work) */
    uint64_t wake_buf;
    pthread_t thread;
    int started;
    int hungry;               /* free slots but no work: wake me when work comes */
    rf_stats stats;           /* submitted/errors/connects of this worker */
};

struct rf_engine {
    rf_config cfg;
    char **owned;             /* copies of the configuration's strings */
    size_t n_owned;
    struct worker *workers;   /* workers[0] runs in the thread calling rf_step() */
    unsigned nworkers;
    char ua_line[128];
    uint32_t ua_len;
    /* https: one context for every worker, made when the first https request starts. */
    pthread_mutex_t tls_lock;
    struct tls_ctx *tls;
    int tls_tried;
    char tls_err[256];
    /* Shared by the workers, under `lock`: the window's admission side and the input. */
    pthread_mutex_t lock;
    struct rf_window win;
    struct submitted *q_head, *q_tail;
    int input_done;
    int in_callback;          /* a callback runs, on thread cb_thread */
    pthread_t cb_thread;
    int stopping;             /* destroy: worker threads leave */
    int fatal;                /* a worker thread's error (-rf_error): rf_step() returns it */
    volatile sig_atomic_t cancel_requested;
    uint64_t delivered;
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

/* pool.c: free connections and kept-alive ones by origin */
int pool_init(struct worker *w);
void pool_free(struct worker *w);
uint32_t origin_hash(uint8_t scheme, const char *host, uint32_t len, uint16_t port);
struct fconn *pool_take(struct worker *w, uint8_t scheme, const char *host, uint32_t len,
                        uint16_t port, uint32_t hash);
void pool_put_idle(struct worker *w, struct fconn *f);
void pool_put_free(struct worker *w, struct fconn *f);

/* api.c */
void worker_wake(struct worker *w);
void engine_request_done(struct worker *w, struct request *r, uint64_t index);
struct tls_ctx *engine_tls(rf_engine *e, const char **why);

#endif
