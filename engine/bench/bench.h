/*
 * bench.h - the load generator's private state: one run (run.c) and its share-nothing
 * threads (loop.c), each with its ring, connections and histograms.
 */
#ifndef RF_BENCH_H
#define RF_BENCH_H

#include <pthread.h>
#include <stdint.h>

#include "bench/hist.h"
#include "conn/conn.h"
#include "proto/addr.h"
#include "proto/http1.h"
#include "proto/tls.h"
#include "proto/url.h"
#include "ring/dq.h"
#include "ring/list.h"
#include "ring/ring.h"
#include "ringfetch.h"

/* Counters of one thread, added up at the end. */
struct bench_totals {
    uint64_t requests, bytes, connects, established;
    uint64_t err_connect, err_read, err_write, err_timeout, non_2xx_3xx;
    uint64_t tls_full, tls_resumed;
    uint64_t status[RF_BENCH_STATUS_MAX];
};

/* One interval of one thread, published to the run's watcher (a ring of IV_SLOTS). */
#define IV_SLOTS 64
struct iv_slot {
    uint64_t requests, errors, bytes;
    uint64_t end_us;         /* monotonic: when the interval ended */
    struct hist lat;
};

/* What every thread of a run reads and none writes after the start. */
struct bench {
    const rf_bench_config *cfg;
    const struct rf_addrs *addrs;
    uint16_t port;
    char host[RF_HOST_MAX + 1]; /* lower-cased: the name the certificate must carry */
    /*
     * The requests, serialised once: seq holds targets 0..n-1 and then again 0.. for
     * pipeline-1 more, back to back, so k requests from target t on are the bytes
     * seq[off[t] .. off[t + k]). close_seq holds each target with Connection: close,
     * for the last request on a connection with reqs_per_conn (pipeline 1).
     */
    char *seq, *close_seq;
    uint32_t *off, *close_off;
    uint8_t *is_head;        /* per target */
    unsigned ntargets;
    unsigned pipeline;
    unsigned refill;         /* free pipeline places before a connection is topped up */
    int quiet_sends;         /* sends post no completion unless they fail (small requests) */
    struct tls_ctx *tls;     /* https: shared by every thread; NULL for http */
    struct rf_sockaddr *sources;
    size_t nsources;
    uint64_t interval_us;
    /* Set by the run before `go`: the monotonic µs the measured part starts and ends. */
    uint64_t t_measure, t_end;
    unsigned ready;          /* threads set up (or failed), before the start */
    int go;                  /* set once every thread is ready: the clock starts */
    int abort;
};

struct bthread;

/* A bench connection: a connection of the connection layer and its requests in flight. */
struct bconn {
    struct conn c;
    struct bthread *t;
    uint8_t server_closes;   /* the last response said Connection: close */
    uint8_t want_session;    /* a full handshake: keep its session once a response came */
    uint8_t open;            /* counted as held open */
    uint32_t outstanding;    /* requests sent or being sent, not yet answered */
    uint32_t ohead;          /* t_due index of the oldest outstanding request */
    uint64_t reqs;           /* requests issued on this connection */
    uint64_t *t_due;         /* per outstanding request: when it was due (latency origin) */
    const struct rf_sockaddr *src; /* bind address, or NULL */
    struct http1_resp resp;
    struct list ready;       /* open loop: can take a request now */
    struct dq_node timer;    /* the oldest request's timeout, or the reconnect pause */
};

/* One thread of a run: shares nothing with the others. */
struct bthread {
    struct bench *b;
    unsigned id;
    struct rf_ring ring;
    struct conn_set conns;
    struct bconn *bc;
    uint32_t nconns;
    struct rf_addrs *addrs;           /* this thread's copy: references are not atomic */
    uint64_t *due_slab;
    struct tls_conn *tls_slab;        /* https: one session per connection */
    tls_session *sess;                /* https: the session new connections resume */
    struct hist lat;                  /* the whole measured part */
    struct hist iv_lat;               /* the interval under way */
    struct bench_totals t, iv_start;  /* totals, and what they were when the interval began */
    struct iv_slot *iv;               /* IV_SLOTS published intervals */
    uint64_t iv_done;                 /* intervals published (read by the watcher) */
    uint64_t iv_end;                  /* when the interval under way ends */
    uint64_t t0;                      /* monotonic µs: the start (warm-up included) */
    uint64_t last_progress;           /* a response or a connect completed */
    uint64_t stall_us;                /* -n alone: end when nothing progresses this long */
    uint64_t quota, issued, inflight; /* quota 0: no request limit */
    double due_step_us;               /* open loop: time between requests; 0 = closed loop */
    uint64_t **unstamped;             /* closed loop: due slots of requests issued this turn */
    uint32_t nunstamped;
    uint64_t stamped, answers;        /* responses timed by the kernel, and all of them */
    uint64_t scheduled;               /* open loop: requests whose due time has been used */
    uint64_t wake_at;                 /* open loop: when the wait under way should end */
    uint32_t late_us;                 /* open loop: how late the ring's timer wakes us (EWMA) */
    uint64_t open, peak_open;
    struct dq timeouts, pauses;
    struct list ready;
    char tls_error[200];              /* the first handshake failure, in words */
    pthread_t thread;
    int err;
    int done;
};

/* loop.c */
void *bench_thread_main(void *arg);
void bench_thread_free(struct bthread *t);

#endif
