/* bench.h - the load generator behind `ringfetch bench`: share-nothing ring threads. */
#ifndef RF_BENCH_H
#define RF_BENCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bench/hist.h"

#define BENCH_STATUS_MAX 600

/* One request of the run. All targets of a run share scheme, host and port. */
struct bench_target {
    const char *url;
    const char *method;              /* NULL: GET, or POST with a body */
    const char *const *headers;      /* "Name: value" */
    size_t n_headers;
    const void *body;
    size_t body_len;
};

struct bench_config {
    const struct bench_target *targets; /* used round-robin on every connection */
    size_t n_targets;
    unsigned connections;            /* over all threads */
    unsigned threads;                /* rings; raised when connections need more tables */
    unsigned pipeline;               /* requests outstanding per connection; 0 = 1 */
    uint64_t duration_ms;            /* run length; 0 with `requests` set */
    uint64_t requests;               /* total requests; 0 = until duration */
    uint64_t timeout_ms;             /* a request older than this is a timeout error */
    uint64_t connect_timeout_ms;
    uint64_t rate;                   /* requests/s over all threads (open loop); 0 = closed */
    uint64_t reqs_per_conn;          /* close and reconnect after this many; 0 = never */
    const char *const *resolve;      /* curl-style host:port:addr */
    size_t n_resolve;
    const char *dns_server;
    /* https: trust (NULL: the system bundle) or no checks at all; resumption is on unless
     * no_tls_resume is set (every reconnection resumes the worker's latest session). */
    const char *ca_file;
    int insecure;
    int no_tls_resume;
    /* Local addresses (port 0) connections are bound to, round-robin; n_source 0: none. */
    const struct sockaddr_storage *source;
    size_t n_source;
    volatile sig_atomic_t *stop;     /* set by a signal handler to end the run early */
    /* Called about once a second from the calling thread while the run lasts. */
    void (*tick)(void *userp, double elapsed_s, uint64_t requests, uint64_t errors);
    void *tick_userp;
};

struct bench_totals {
    uint64_t requests;               /* complete responses */
    uint64_t bytes;                  /* bytes read, headers and bodies */
    uint64_t connects;               /* connection attempts */
    uint64_t established;            /* attempts that connected */
    uint64_t err_connect, err_read, err_write, err_timeout;
    uint64_t non_2xx_3xx;
    uint64_t tls_full, tls_resumed;  /* completed handshakes (https) */
    uint64_t status[BENCH_STATUS_MAX]; /* responses by status code */
};

struct bench_report {
    struct bench_totals t;
    struct hist lat;                 /* µs; from intended send time with a rate */
    double duration_s;
    unsigned threads, connections;
    uint64_t open_at_end;            /* connections established and held at the end */
    uint64_t peak_open;              /* the most held at once (sum of per-thread peaks) */
    char tls_error[200];             /* https: why the first failed handshake failed, or "" */
};

/*
 * Run the benchmark to its end (duration, request count or *stop) and fill `out`.
 * Returns 0, or -RF_ERR_INVALID_URL / -RF_ERR_UNSUPPORTED_SCHEME / -RF_ERR_DNS /
 * -RF_ERR_INVALID_ARG / -RF_ERR_NOMEM / -RF_ERR_SYSTEM / -RF_ERR_TLS (the CA file could
 * not be loaded: out->tls_error says why) before any traffic.
 */
int bench_run(const struct bench_config *cfg, struct bench_report *out);

#endif
