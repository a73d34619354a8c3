/* internal.h - the engine's private state: the slots (connections) and the engine itself. */
#ifndef RF_INTERNAL_H
#define RF_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>

#include "llhttp.h"

#include "proto/dns.h"
#include "proto/http1.h"
#include "ring/list.h"
#include "fetch/results.h"
#include "ring/ring.h"
#include "ringfetch.h"
#include "proto/tls.h"
#include "proto/url.h"

/* A slot's states. Every change goes through conn_set_state() in conn.c. */
enum conn_state {
    C_FREE,       /* no socket, no job: on the free list */
    C_IDLE,       /* a kept-alive connection without a job: in the idle pool */
    C_RESOLVING,  /* job admitted, waiting for the resolver */
    C_BACKOFF,    /* job admitted, waiting to retry after EMFILE/EADDRNOTAVAIL */
    C_CONNECTING, /* socket+connect(+send) chain submitted */
    C_ACTIVE,     /* connected: request being sent, response being read */
};

#define CONN_SBUF 16384 /* request head bytes per slot; a longer head is too_large */
#define CONN_HNAME 32   /* header names we capture are shorter than this */

enum hdr_capture { H_NONE, H_LOCATION, H_CTYPE, H_CLEN, H_SERVER };

struct conn {
    struct worker *wk;
    uint32_t idx;
    uint32_t gen;          /* bumped when the socket goes: older completions are stale */
    uint8_t state;
    uint8_t parity;        /* which of the slot's two direct-descriptor indexes is live */
    uint8_t has_socket;
    uint8_t recv_armed;
    uint8_t reused;        /* the job runs on a kept-alive connection */
    uint8_t retried;       /* the job already retried once after a stale keep-alive */
    uint8_t got_bytes;     /* any response byte arrived for this job */
    uint8_t msg_done;
    uint8_t is_head;
    uint8_t fail;          /* an error decided inside a parser callback */
    uint8_t hcap;          /* enum hdr_capture for the header being read */
    uint8_t hname_len;
    uint8_t hval_open;     /* the captured header value continues in the next callback */
    uint8_t tries;         /* resource back-off attempts */
    uint8_t body_in_sbuf;  /* the request body was small enough to follow the head */
    uint8_t extra;         /* bytes followed the response: the connection is not reusable */
    uint8_t scheme;
    uint8_t tls_saved;     /* this connection's session is in the origin cache */
    uint16_t port;
    uint8_t host_len;
    char host[RF_HOST_MAX + 1]; /* lower-cased, NUL-terminated: the origin with scheme, port */
    uint32_t origin_hash;
    uint64_t job;          /* window index of the job while state >= C_RESOLVING */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *sbuf;            /* CONN_SBUF bytes from the engine's slab */
    uint32_t slen, soff;   /* request head length and bytes sent */
    size_t body_off;       /* request body bytes sent */
    uint32_t hdr_bytes;    /* response header bytes so far */
    char hname[CONN_HNAME];
    uint64_t t_admit, t_conn_start, t_connected, t_first, deadline, conn_deadline;
    uint64_t t_tls_done;   /* handshake finished (https) */
    struct tls_conn *tls;  /* https: the session, allocated on the slot's first use */
    llhttp_t parser;
    struct list pool;      /* free list, or idle bucket of its origin */
    struct list lru;       /* idle connections, oldest first (eviction order) */
    struct list timer;     /* the job deadline queue (or the back-off queue) */
    struct list ctimer;    /* the connect deadline queue */
};

struct submitted; /* a request queued by rf_submit() */

/*
 * One ring thread's world: its ring, slots, buffers, resolver, pools and deadline queues.
 * Nothing in it is touched by another thread, except the counters read for statistics.
 */
struct worker {
    struct rf_engine *eng;
    unsigned id;
    struct rf_ring ring;
    struct rf_dns *dns;
    struct conn *conns;
    uint32_t nconns;          /* connection slots: jobs plus as many kept-alive spares */
    uint32_t max_busy;        /* the limiter: at most this many jobs at once */
    char *sbuf_slab;
    char *plain;              /* https: decrypted bytes on their way to the parser */
    struct tls_cache sessions;
    struct list free_list;
    struct list idle_lru;
    struct list *idle_buckets;
    uint32_t bucket_mask;
    struct list deadlines;    /* jobs by deadline; one timeout for all keeps it sorted */
    struct list conn_deadlines;
    struct list backoffs;
    uint64_t now;             /* monotonic µs, read once per batch of completions */
    uint64_t busy;            /* slots holding a job (read by other threads: atomics) */
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
    llhttp_settings_t settings;
    char ua_line[128];
    uint32_t ua_len;
    /* Shared by the workers, under `lock`: the window's admission side and the input. */
    pthread_mutex_t lock;
    struct rf_window win;
    struct submitted *q_head, *q_tail;
    int input_done;
    int in_callback;          /* a callback runs, on thread cb_thread */
    pthread_t cb_thread;
    int stopping;             /* destroy: worker threads leave */
    int fatal;                /* a worker thread's error (-rf_error): rf_step() returns it */
    /* https: one context for every worker, made when the first https job starts. */
    pthread_mutex_t tls_lock;
    struct tls_ctx *tls;
    int tls_tried;
    char tls_err[256];
    volatile sig_atomic_t cancel_requested;
    uint64_t delivered;
};

/* conn.c */
void conn_set_state(struct worker *e, struct conn *c, enum conn_state s);
void conn_start_job(struct worker *e, struct conn *c, uint64_t job, const struct rf_url *u,
                    const char *host_lc, uint32_t hash);
void conn_finish(struct worker *e, struct conn *c, rf_error err);
void conn_fail(struct worker *e, struct conn *c, rf_error err, const char *detail);
void conn_close(struct worker *e, struct conn *c);
void conn_handle_cqe(struct worker *e, struct io_uring_cqe *cqe);
void conn_dns_done(void *ctx, uint64_t cookie, int err, const struct sockaddr *sa,
                   socklen_t salen);
void conn_expire(struct worker *e);
int64_t conn_next_deadline(const struct worker *e);
void conn_cancel_all(struct worker *e);

/* pool.c */
int pool_init(struct worker *e);
void pool_free(struct worker *e);
uint32_t origin_hash(uint8_t scheme, const char *host, uint32_t len, uint16_t port);
struct conn *pool_take(struct worker *e, uint8_t scheme, const char *host, uint32_t len,
                       uint16_t port, uint32_t hash);
void pool_put_idle(struct worker *e, struct conn *c);
void pool_put_free(struct worker *e, struct conn *c);

/* http1.c */
void http1_settings(llhttp_settings_t *s);
int http1_write_request(struct worker *e, struct conn *c, const struct wentry *w,
                        const struct rf_url *u, const char *url);
void http1_begin_response(struct worker *e, struct conn *c);

/* engine.c */
void worker_wake(struct worker *w);
void engine_job_done(struct worker *e, struct wentry *w, uint64_t index);
struct tls_ctx *engine_tls(rf_engine *e, const char **why);

#endif
