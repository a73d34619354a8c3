/*
 * ringfetch.h - the public C API of libringfetch, an io_uring HTTP/1.1 fetch engine.
 *
 * An engine runs many HTTP requests at once on io_uring and hands their results back
 * strictly in submission order, one result per request, whatever happened to it.
 *
 * Threading: the library has no global state; several engines may live in one process.
 * An engine may be created in one thread and driven from others, one thread at a time
 * (a worker pool is fine). With cfg.threads > 1 the engine runs that many rings, one in
 * the thread calling rf_step() and the others in threads of its own; results are still
 * delivered only from the rf_step() thread, but the pull callback may then be called from
 * any of the engine's threads (one at a time), and the streaming callbacks from several.
 * rf_cancel() may be called from any thread or from a signal handler. Calls into the
 * engine from inside its own callbacks are refused with RF_ERR_RECURSIVE (except
 * rf_cancel()).
 */
#ifndef RINGFETCH_H
#define RINGFETCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RINGFETCH_VERSION_MAJOR 0
#define RINGFETCH_VERSION_MINOR 3
#define RINGFETCH_VERSION_PATCH 0
#define RINGFETCH_VERSION_STR "0.3.0"
#define RINGFETCH_VERSION_NUM 0x000300
#define RINGFETCH_AT_LEAST_VERSION(x, y, z) \
    (RINGFETCH_VERSION_NUM >= (((x) << 16) | ((y) << 8) | (z)))

#if defined(RF_BUILDING_LIBRARY)
#define RF_API __attribute__((visibility("default")))
#else
#define RF_API
#endif

/*
 * Result and API error codes. The strings returned by rf_strerror() ("dns", "timeout",
 * ...) are stable and appear in the command line tool's output.
 */
typedef enum rf_error {
    RF_OK = 0,
    RF_ERR_INVALID_URL,        /* the URL could not be parsed */
    RF_ERR_UNSUPPORTED_SCHEME, /* neither http:// nor https:// */
    RF_ERR_DNS,                /* the host name did not resolve */
    RF_ERR_REFUSED,            /* connect: ECONNREFUSED */
    RF_ERR_UNREACHABLE,        /* connect: network or host unreachable */
    RF_ERR_CONNECT_TIMEOUT,    /* connect did not finish within connect_timeout_ms */
    RF_ERR_TIMEOUT,            /* the request did not finish within timeout_ms */
    RF_ERR_RESET,              /* the peer reset the connection */
    RF_ERR_CLOSED,             /* the peer closed before a complete response */
    RF_ERR_PROTOCOL,           /* the response is not valid HTTP/1.x */
    RF_ERR_TOO_LARGE,          /* headers over max_header_bytes, or body over max_body */
    RF_ERR_CANCELLED,          /* rf_cancel() ended the request */
    RF_ERR_RESOURCE,           /* out of descriptors or local ports, after backing off */
    RF_ERR_INVALID_ARG,        /* API misuse: a bad argument or configuration */
    RF_ERR_NOMEM,              /* API: out of memory at creation */
    RF_ERR_RECURSIVE,          /* API: called from inside one of the engine's callbacks */
    RF_ERR_SYSTEM,             /* API: the kernel refused to set up io_uring */
    RF_ERR_TLS,                /* the TLS handshake or session failed (see error_detail) */
    RF_ERR_TLS_VERIFY,         /* the server's certificate was rejected (see error_detail) */
    RF_ERR_REDIRECT_LOOP,      /* a redirect led back to a URL already in the chain */
    RF_ERR_TOO_MANY_REDIRECTS, /* more redirects than max_redirects */
    RF_ERR__LAST               /* not an error: the number of codes */
} rf_error;

/* The stable short name of an error code ("ok", "invalid_url", "dns", ...). */
RF_API const char *rf_strerror(rf_error err);

/* The runtime library's version string, e.g. "0.3.0". */
RF_API const char *rf_version(void);

/* What the library was built with: "llhttp 8.1.0, liburing, c-ares 1.18.1, wolfSSL 5.5.4
 * source build with AES-NI" (a static string). */
RF_API const char *rf_version_details(void);

typedef struct rf_engine rf_engine;

/*
 * ABI: rf_config, rf_request, rf_stats and the bench structs carry their size, set by the
 * init functions (macros passing sizeof) and RF_REQUEST_INIT. Within 0.x releases after
 * 0.3.0 fields are only appended, so a program built against an older header keeps
 * working with a newer libringfetch.so.0 (see docs/api.md, "ABI").
 */

/* rf_request.flags */
#define RF_REQ_STATIC 1u /* method, headers and body outlive the result: not copied */

/*
 * One request. The engine copies what it keeps at admission: the URL always, and method,
 * headers and body too unless RF_REQ_STATIC is set (then they must stay valid until the
 * request's result has been delivered). After rf_submit() or the pull callback returns,
 * the caller may reuse or free everything it passed.
 */
typedef struct rf_request {
    size_t size;                 /* sizeof(rf_request): RF_REQUEST_INIT sets it */
    const char *url;             /* http://, https:// or (default_scheme) a bare host */
    const char *method;          /* NULL means "GET" */
    const char *const *headers;  /* "Name: value" lines without CRLF, or NULL */
    size_t n_headers;
    const void *body;            /* request body, or NULL */
    size_t body_len;
    void *userdata;              /* handed back in the result */
    unsigned flags;              /* RF_REQ_STATIC */
    /* Per request; 0 means the engine's setting. */
    unsigned timeout_ms;
    unsigned connect_timeout_ms;
    uint64_t max_body;
    size_t keep_body;
} rf_request;

#define RF_REQUEST_INIT {sizeof(rf_request), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* One hop of a redirect chain. */
typedef struct rf_redirect {
    const char *url;
    int status;
} rf_redirect;

/*
 * One result, delivered to the result callback in submission order. Every pointer in it
 * is valid only for the duration of the callback. Times are microseconds since the
 * request was admitted (its slot granted): connect includes name resolution and is the
 * admission-to-connected time (0 on a reused connection), ttfb is the first response
 * byte, total the end. With redirects or retries the times are those of the last
 * request sent, total_us the whole chain.
 */
typedef struct rf_result {
    uint64_t index;           /* 0-based submission position */
    const char *url;          /* as submitted, without any user:password@ */
    rf_error error;           /* RF_OK when a complete response arrived */
    int status;               /* HTTP status, 0 when none was received */
    uint64_t body_bytes;      /* body bytes received (after de-chunking) */
    int64_t content_length;   /* Content-Length header, -1 when absent */
    const char *location;     /* header values, NULL when absent */
    const char *content_type;
    const char *server;
    const char *ip;           /* the address that answered (or last failed), or NULL */
    const void *body;         /* the first min(body_bytes, keep_body) bytes */
    size_t body_len;
    uint32_t connect_us, ttfb_us, total_us;
    int reused;               /* 1 when the request ran on a kept-alive connection */
    void *userdata;
    const char *error_detail; /* why, in words, for some errors (tls, tls_verify); or NULL */
    /* https only (tls_version NULL otherwise): the protocol ("TLSv1.3"), the handshake's
     * time from connected to done (0 on a reused connection), and whether the handshake
     * resumed an earlier session of the origin. */
    const char *tls_version;
    uint32_t tls_us;
    int tls_resumed;
    /* 0.3.0 */
    unsigned addresses_tried; /* addresses its connection tried when opened (reused too) */
    unsigned attempts;        /* times the request was sent: 1 + retries */
    unsigned redirects;       /* redirects followed */
    const char *final_url;    /* the URL of the last response when redirects were followed */
    const rf_redirect *chain; /* the hops before the last, in order */
    size_t n_chain;
} rf_result;

/*
 * The pull callback supplies the next request: fill *req (already zeroed) and return 1;
 * return 0 when the input has ended, or RF_PULL_AGAIN when no request is ready now but
 * more may come (the engine asks again at the next rf_step()). The engine calls it only
 * while it has room for one more request (a free slot and window space), so input is
 * read lazily and memory stays bounded by the configuration, never by the input's size.
 * What *req points to may be reused or freed once the callback returns (see rf_request).
 */
#define RF_PULL_AGAIN 2
typedef int (*rf_pull_fn)(void *userp, rf_request *req);

/* Called once per request, in submission order. `res` is valid during the call only. */
typedef void (*rf_result_fn)(void *userp, const rf_result *res);

/*
 * Optional streaming callbacks, called while a response arrives, before its result: each
 * response header (name and value as received, not NUL-terminated, valid for the call),
 * in order, and each piece of the body (after de-chunking). A nonzero return aborts that
 * request with RF_ERR_CANCELLED. They run on the engine's ring threads: with threads > 1
 * on several threads at once (for different requests), so they must be thread-safe then.
 * For a redirect that is followed, the headers of every hop are seen; a retried request's
 * headers may be seen once per attempt.
 */
typedef int (*rf_header_fn)(void *userp, uint64_t index, void *userdata, const char *name,
                            size_t name_len, const char *value, size_t value_len);
typedef int (*rf_body_fn)(void *userp, uint64_t index, void *userdata, const void *data,
                          size_t len);

#define RF_MAX_CONCURRENCY 1000000u
#define RF_MAX_WINDOW (1u << 24)

typedef struct rf_config {
    size_t size;                 /* sizeof(rf_config): set by rf_config_init() */
    unsigned concurrency;        /* slots: requests at once, 1..RF_MAX_CONCURRENCY. 100 */
    unsigned threads;            /* ring threads sharing the slots and the window; 1 */
    unsigned window;             /* ordered-result window, up to RF_MAX_WINDOW; 0 =
                                    64 * concurrency (256 * with retries), at least
                                    4096, at most 1048576 */
    unsigned connect_timeout_ms; /* connect and TLS handshake, per address. 10000 */
    unsigned timeout_ms;         /* whole request, from admission to last byte. 30000 */
    uint64_t max_body;           /* body bytes read before RF_ERR_TOO_LARGE; 0 = no cap */
    uint32_t max_header_bytes;   /* response header bytes before RF_ERR_TOO_LARGE. 65536 */
    size_t keep_body;            /* body bytes kept in the result; default 0 (count only) */
    int keepalive;               /* reuse connections per origin; default 1 */
    const char *dns_server;      /* "ADDR[:PORT]" used instead of resolv.conf, or NULL */
    const char *const *resolve;  /* curl-style "host:port:addr[,addr...]" overrides */
    size_t n_resolve;
    const char *hosts_file;      /* default "/etc/hosts" */
    const char *user_agent;      /* default "ringfetch/VERSION"; "" sends none */
    /* https: certificates are checked against ca_file (default the system bundle,
     * /etc/ssl/certs/ca-certificates.crt) and the URL's host name or address, unless
     * insecure is set. Sessions are kept per origin and resumed on new connections. */
    const char *ca_file;
    int insecure;
    rf_pull_fn pull;             /* optional request source (see rf_pull_fn) */
    void *pull_userp;
    rf_result_fn on_result;      /* required */
    void *result_userp;
    /* 0.3.0 */
    rf_header_fn on_header;      /* optional, see rf_header_fn */
    rf_body_fn on_body;
    void *stream_userp;
    char *errbuf;                /* rf_engine_create() writes why it failed here, or NULL */
    size_t errbuf_size;
    const char *default_scheme;  /* for a URL without a scheme ("example.com/x"); "http" */
    int follow_redirects;        /* follow 3xx with Location; default 0 */
    unsigned max_redirects;      /* then at most this many; default 10 */
    unsigned retries;            /* retry an outcome in retry_on this many times; 0 */
    const char *retry_on;        /* comma-separated error names and statuses; NULL =
                                    "dns,refused,unreachable,connect_timeout,timeout,reset,
                                    closed,429,502,503,504" */
    unsigned retry_delay_ms;     /* base of the exponential backoff (full jitter); 500 */
    unsigned per_host;           /* at most this many requests in flight per host; 0 = any */
    double host_rate;            /* at most this many requests started per second per host;
                                    with either set, the engine runs one ring */
} rf_config;

/* Counters for progress displays, readable between calls to rf_step(). */
typedef struct rf_stats {
    size_t size;         /* set by rf_get_stats() */
    uint64_t submitted;  /* requests taken from rf_submit() or the pull callback */
    uint64_t completed;  /* results delivered */
    uint64_t errors;     /* results with error != RF_OK */
    uint64_t in_flight;  /* requests holding a slot */
    uint64_t connects;   /* connections opened */
    uint64_t slots;      /* concurrency in effect: the configured one, or less when the
                            open-file limit cannot hold its descriptor table */
} rf_stats;

/* Fill *cfg with the defaults above. Always call it before setting fields. */
#define rf_config_init(cfg) rf_config_init_size((cfg), sizeof(*(cfg)))
RF_API void rf_config_init_size(rf_config *cfg, size_t size);

/*
 * Check a request the way admission will: RF_OK, RF_ERR_INVALID_URL,
 * RF_ERR_UNSUPPORTED_SCHEME, or RF_ERR_INVALID_ARG for a method that is not an HTTP token
 * or a header that is not one "Name: value" line (nothing a caller passes can add a line
 * to the request). A NULL url is not checked, so method and headers can be checked alone.
 */
RF_API rf_error rf_check_request(const rf_request *req);

/*
 * Create an engine: checks every string of the configuration (user_agent, ca_file readable
 * and parsable when https is possible, dns_server, resolve entries, retry_on), loads the
 * CA bundle, sets up the rings, the connections and the result window. Returns RF_OK and
 * stores the engine in *out, or an error (nothing to free then) with the reason in
 * cfg->errbuf when one is given. The configuration's strings are copied; the callbacks
 * are kept. The engine may be driven from any thread, one at a time.
 */
RF_API rf_error rf_engine_create(rf_engine **out, const rf_config *cfg);

/*
 * Queue one request after those already queued. Queued requests are admitted before
 * the pull callback is asked for more. Everything is copied as rf_request says.
 * Returns RF_OK, RF_ERR_NOMEM, RF_ERR_INVALID_ARG (NULL url) or RF_ERR_RECURSIVE.
 */
RF_API rf_error rf_submit(rf_engine *eng, const rf_request *req);

/*
 * Run one loop turn: admit what fits, submit the queued ring operations in one call,
 * wait at most timeout_ms for completions (0: do not wait; negative: until something
 * happens, which a result, rf_cancel() or a deadline ends), handle them and deliver the
 * results that are now in order. Returns 1 while work remains, 0 when every queued or
 * pulled request has its result and the pull callback has reported the end of input, or
 * a negative rf_error on a fatal engine error (rf_engine_last_error() says more).
 */
RF_API int rf_step(rf_engine *eng, int timeout_ms);

/* rf_step() until it returns 0 or an error. Returns RF_OK or the error. */
RF_API rf_error rf_run(rf_engine *eng);

/*
 * Stop admitting requests, end those in flight with RF_ERR_CANCELLED and give every
 * queued one that result at once; the next rf_step() delivers them. The engine stays
 * cancelled (the pull callback is not asked again, rf_submit()ted requests are
 * cancelled) until rf_resume(). Async-signal-safe; callable from any thread, and from
 * inside callbacks.
 */
RF_API void rf_cancel(rf_engine *eng);

/*
 * After rf_cancel() and the rf_step() that delivered the cancelled results: take new
 * requests again (from rf_submit() and, if its input had not ended, the pull callback).
 * RF_OK, or RF_ERR_RECURSIVE inside a callback.
 */
RF_API rf_error rf_resume(rf_engine *eng);

#define rf_get_stats(eng, st) rf_get_stats_size((eng), (st), sizeof(*(st)))
RF_API void rf_get_stats_size(const rf_engine *eng, rf_stats *st, size_t size);

/*
 * Event-loop integration. rf_engine_fd() is a descriptor that becomes readable when
 * rf_step(eng, 0) has work (completions, results, a cancel); wait for it with poll(),
 * epoll or a loop library beside your own descriptors, and never read it yourself.
 * rf_engine_timeout_ms() is the longest the caller may wait before calling rf_step()
 * again (the next deadline; 0 when there is work now; -1 when only the descriptor can
 * bring work). Call rf_step(eng, 0) when either fires.
 */
RF_API int rf_engine_fd(rf_engine *eng);
RF_API int rf_engine_timeout_ms(rf_engine *eng);

/* Why the engine failed (the fatal error rf_step() returned), or "". */
RF_API const char *rf_engine_last_error(const rf_engine *eng);

/*
 * Free everything. Requests still in flight are dropped without results. Returns RF_OK,
 * or RF_ERR_RECURSIVE (and does nothing) when called from inside one of its callbacks.
 */
RF_API rf_error rf_engine_destroy(rf_engine *eng);

/* ---------------------------------------------------------------------------------------
 * Latency histograms: log-linear buckets in microseconds (every power of two cut into 128
 * equal buckets, values 0..255 exact), so any value is kept within 0.8%, recorded in O(1)
 * and merged by adding counts. A bench report owns one; programs that combine reports
 * (several load generators, several runs) make their own.
 * ------------------------------------------------------------------------------------- */
typedef struct rf_hist rf_hist;

/* A new empty histogram, or NULL when out of memory. */
RF_API rf_hist *rf_hist_create(void);
RF_API void rf_hist_destroy(rf_hist *h);
/* Record `count` samples of `us` (values past about 67 s are kept as that maximum). */
RF_API void rf_hist_record(rf_hist *h, uint64_t us, uint64_t count);
/* Add every sample of src to dst. */
RF_API void rf_hist_merge(rf_hist *dst, const rf_hist *src);
RF_API uint64_t rf_hist_count(const rf_hist *h);
RF_API uint64_t rf_hist_min(const rf_hist *h);     /* 0 when empty */
RF_API uint64_t rf_hist_max(const rf_hist *h);     /* 0 when empty */
RF_API double rf_hist_mean(const rf_hist *h);
RF_API double rf_hist_stdev(const rf_hist *h);
/*
 * The value at percentile p (0..100) by nearest rank: the highest value of the bucket the
 * rank falls in, capped at the maximum, so never below the true value and at most 0.8%
 * above it. 0 when empty.
 */
RF_API uint64_t rf_hist_percentile(const rf_hist *h, double p);
/*
 * The non-empty buckets in value order, for lossless export: start with *iter = 0; each
 * call that returns 1 fills the bucket's index, its lowest and highest value and its
 * count; 0 means there are no more. Indexes are stable across versions (the layout is
 * named "ringfetch-loglinear-v1"), so rf_hist_add_bucket() rebuilds the same histogram.
 */
RF_API int rf_hist_bucket(const rf_hist *h, size_t *iter, uint32_t *index, uint64_t *lowest_us,
                          uint64_t *highest_us, uint64_t *count);
/* Add `count` samples to bucket `index`. Returns RF_OK or RF_ERR_INVALID_ARG. */
RF_API rf_error rf_hist_add_bucket(rf_hist *h, uint32_t index, uint64_t count);
/*
 * The exact moments of the samples, to carry min, max, mean and standard deviation through
 * an export: rf_hist_moments() reads them; rf_hist_add_moments() adds an exported set to a
 * histogram whose buckets were filled with rf_hist_add_bucket() (min and max are combined,
 * sums added).
 */
typedef struct rf_hist_moments {
    uint64_t min, max;  /* min is UINT64_MAX when empty */
    double sum;         /* of the samples, in us */
    double sumsq;       /* of their squares */
} rf_hist_moments;
RF_API void rf_hist_get_moments(const rf_hist *h, rf_hist_moments *m);
RF_API void rf_hist_add_moments(rf_hist *h, const rf_hist_moments *m);
/*
 * Write the percentile distribution in HdrHistogram's plain-text format (what its
 * plotters read), values divided by unit_scale (1000.0 writes milliseconds). 0 or -EIO.
 */
RF_API int rf_hist_write_percentiles(const rf_hist *h, FILE *out, double unit_scale);

/* ---------------------------------------------------------------------------------------
 * Load generation: many connections to one origin, requests in a closed loop (each
 * connection sends its next request when the last is answered, or `pipeline` at a time)
 * or at a fixed rate (open loop: latency counts from each request's due time, so a slow
 * server cannot hide its queueing). Threads share nothing; their results are merged.
 * ------------------------------------------------------------------------------------- */

/* One request of a run. All targets of a run share scheme, host and port. */
typedef struct rf_bench_target {
    const char *url;
    const char *method;              /* NULL: GET, or POST with a body */
    const char *const *headers;      /* "Name: value" lines without CRLF, or NULL */
    size_t n_headers;
    const void *body;                /* or NULL */
    size_t body_len;
} rf_bench_target;

/* One interval of the time series (rf_bench_config.interval_ms), over all threads. */
typedef struct rf_bench_interval {
    double t_s;                      /* the interval's end, seconds from the measured start */
    double length_s;                 /* interval_ms, or less for the last one */
    uint64_t requests, errors, bytes;
    uint64_t p50_us, p99_us, max_us; /* latencies of the responses in this interval */
} rf_bench_interval;

typedef struct rf_bench_config {
    size_t size;                     /* sizeof(rf_bench_config): set by rf_bench_config_init() */
    const rf_bench_target *targets;  /* used round-robin on every connection */
    size_t n_targets;
    unsigned connections;            /* over all threads; default 10 */
    unsigned threads;                /* default 1; raised when the open-file limit needs it */
    unsigned pipeline;               /* requests outstanding per connection; default 1 */
    uint64_t duration_ms;            /* default 10000; 0 with `requests` set: until done */
    uint64_t requests;               /* total requests; 0 = for duration_ms */
    uint64_t warmup_ms;              /* run this long first, excluded from every figure */
    uint64_t interval_ms;            /* time series step; default 1000 (at least 100) */
    uint64_t timeout_ms;             /* a request unanswered this long is a timeout; 10000 */
    uint64_t connect_timeout_ms;     /* connect and TLS handshake; 10000; 0 = none */
    double rate;                     /* requests/s over all threads (open loop); 0 = closed */
    uint64_t reqs_per_conn;          /* reconnect after this many; 0 = never (1 = no keep-alive) */
    const char *const *resolve;      /* curl-style "host:port:addr[,addr...]" overrides */
    size_t n_resolve;
    const char *dns_server;          /* "ADDR[:PORT]" instead of resolv.conf, or NULL */
    const char *ca_file;             /* https: trust (NULL: the system bundle) */
    int insecure;                    /* https: no certificate or host name checks */
    int tls_resume;                  /* https: reconnections resume a session; default 1 */
    const char *const *source_addrs; /* local addresses connections bind to, in turn, or NULL */
    size_t n_source_addrs;
    double start_at;                 /* wall-clock epoch seconds to start at; 0 = at once */
    unsigned slack_us;               /* open loop: requests due this close together leave in
                                        one submit (at most 50; default 50; 0 = one by one);
                                        closed loop: 0 = no waiting for a batch of answers */
    int rx_timestamps;               /* response times from kernel receive timestamps where
                                        the kernel offers them (default 1); 0: the clock,
                                        read once per batch of completions */
    /* Set *stop nonzero (from a signal handler or any thread) to end the run early. */
    volatile sig_atomic_t *stop;
    /* Called from the rf_bench_run() thread at the end of each interval, or NULL. */
    void (*on_interval)(void *userp, const rf_bench_interval *iv);
    void *userp;
} rf_bench_config;

#define RF_BENCH_STATUS_MAX 600

typedef struct rf_bench_report {
    size_t size;                     /* set by the caller: sizeof(rf_bench_report) */
    uint64_t requests;               /* complete responses (after the warm-up) */
    uint64_t bytes;                  /* bytes read, headers and bodies */
    uint64_t connects;               /* connection attempts */
    uint64_t established;            /* attempts that connected */
    uint64_t open_at_end;            /* connections held at the end */
    uint64_t peak_open;              /* the most held at once (sum of per-thread peaks) */
    uint64_t err_connect, err_read, err_write, err_timeout;
    uint64_t non_2xx_3xx;            /* responses with status >= 400 */
    uint64_t tls_full, tls_resumed;  /* completed handshakes (https) */
    uint64_t status[RF_BENCH_STATUS_MAX]; /* responses by status code ([0]: other codes) */
    double duration_s;               /* the measured part */
    double warmup_s;
    double start_epoch_s;            /* wall clock at the measured start */
    double start_offset_us;          /* with start_at: actual start minus start_at */
    double rate_achieved;            /* requests / duration_s */
    unsigned threads, connections;
    const rf_hist *latency;          /* µs: from the due time (rate) or the send (closed) */
    const rf_bench_interval *intervals;
    size_t n_intervals;
    const uint64_t *thread_requests; /* requests answered per thread (threads entries) */
    const char *latency_method;      /* how response times were taken: "kernel-timestamp" or
                                        "clock-per-batch" (see docs/api.md) */
    double timestamped;              /* the share of responses timed by the kernel, 0..1 */
    char error[256];                 /* why the run failed, or the first failed handshake */
} rf_bench_report;

/* Fill *cfg with the defaults above. */
#define rf_bench_config_init(cfg) rf_bench_config_init_size((cfg), sizeof(*(cfg)))
RF_API void rf_bench_config_init_size(rf_bench_config *cfg, size_t size);

/*
 * Run a load test to its end (duration, request count or *stop) and fill *rep, whose
 * `size` the caller sets. Blocks the calling thread; the load runs in threads of its own.
 * Returns RF_OK, or before any traffic RF_ERR_INVALID_ARG (a bad configuration, or targets
 * on different origins), RF_ERR_INVALID_URL, RF_ERR_UNSUPPORTED_SCHEME, RF_ERR_DNS,
 * RF_ERR_TLS (the CA file cannot be loaded), RF_ERR_NOMEM or RF_ERR_SYSTEM, with the
 * reason in rep->error. Free what the report points to with rf_bench_report_free(), also
 * after a failure.
 */
RF_API rf_error rf_bench_run(const rf_bench_config *cfg, rf_bench_report *rep);
RF_API void rf_bench_report_free(rf_bench_report *rep);

#ifdef __cplusplus
}
#endif
#endif /* RINGFETCH_H */
