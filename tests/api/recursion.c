/*
 * recursion: calls into the engine from inside its own callbacks (result, pull, on_header,
 * on_body) are refused with RF_ERR_RECURSIVE and change nothing - rf_engine_destroy()
 * included, after which the run completes normally - while rf_cancel() works from any of
 * them. The informational calls (rf_get_stats, rf_engine_fd, rf_engine_timeout_ms,
 * rf_engine_last_error) answer without blocking.
 *
 *   recursion THREADS OK_URL HANG_URL
 *
 * OK_URL answers 200 with a body at once; HANG_URL never answers. Prints "ok".
 */
#include "api.h"

#define N_OK 40

static rf_engine *eng;
static int eng_fd;
static const char *ok_url, *hang_url;
static const char *where = "start"; /* the last place entered: atomics, several threads */

static void enter(const char *place) { __atomic_store_n(&where, place, __ATOMIC_RELAXED); }

enum { IN_RESULT, IN_PULL, IN_HEADER, IN_BODY, N_PLACES };
static const char *const place_name[N_PLACES] = {"on_result", "pull", "on_header", "on_body"};
static unsigned long probes[N_PLACES]; /* atomics: several ring threads may probe */

/* A watchdog thread, not SIGALRM: a thread stuck in a mutex gets no signal under TSan. */
static int finished_all;

static void *watchdog(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300 && !__atomic_load_n(&finished_all, __ATOMIC_ACQUIRE); i++)
        sleep_us(100000);
    if (__atomic_load_n(&finished_all, __ATOMIC_ACQUIRE))
        return NULL;
    fprintf(stderr, "FAIL recursion.c: no progress for 30 s (a deadlock?) in %s\n",
            __atomic_load_n(&where, __ATOMIC_RELAXED));
    _exit(1);
}

/* Every call a callback might make, with what each must answer there. */
static void probe(int place)
{
    rf_request req = RF_REQUEST_INIT;
    rf_stats st;

    enter(place_name[place]);
    req.url = ok_url;
    CHECK_ERR(rf_submit(eng, &req), RF_ERR_RECURSIVE);
    CHECK_INT(rf_step(eng, 0), -RF_ERR_RECURSIVE);
    CHECK_INT(rf_step(eng, -1), -RF_ERR_RECURSIVE); /* refused, so never waits */
    CHECK_ERR(rf_run(eng), RF_ERR_RECURSIVE);
    CHECK_ERR(rf_resume(eng), RF_ERR_RECURSIVE);
    CHECK_ERR(rf_engine_destroy(eng), RF_ERR_RECURSIVE);
    enter("rf_get_stats");
    rf_get_stats(eng, &st);
    CHECK_INT(st.size, sizeof(st));
    CHECK_INT(rf_engine_fd(eng), eng_fd);
    enter("rf_engine_timeout_ms");
    CHECK(rf_engine_timeout_ms(eng) >= -1);
    enter("rf_engine_last_error");
    CHECK(rf_engine_last_error(eng) != NULL);
    enter(place_name[place]);
    __atomic_add_fetch(&probes[place], 1, __ATOMIC_RELAXED);
}

/* ---- phase 1: refusals everywhere; the run is not disturbed ---- */

static unsigned long pulled, delivered;

static int pull_ok(void *userp, rf_request *req)
{
    (void)userp;
    probe(IN_PULL);
    if (pulled == N_OK)
        return 0;
    req->url = ok_url;
    req->userdata = (void *)(uintptr_t)pulled++;
    return 1;
}

static int on_header(void *userp, uint64_t index, void *userdata, const char *name,
                     size_t name_len, const char *value, size_t value_len)
{
    (void)userp, (void)index, (void)userdata, (void)name, (void)name_len, (void)value;
    (void)value_len;
    probe(IN_HEADER);
    return 0;
}

static int on_body(void *userp, uint64_t index, void *userdata, const void *data, size_t len)
{
    (void)userp, (void)index, (void)userdata, (void)data, (void)len;
    probe(IN_BODY);
    return 0;
}

static void on_result_ok(void *userp, const rf_result *r)
{
    (void)userp;
    probe(IN_RESULT);
    CHECK_INT(r->index, delivered);
    CHECK_INT((uintptr_t)r->userdata, delivered);
    CHECK_ERR(r->error, RF_OK);
    CHECK_INT(r->status, 200);
    CHECK_INT(r->body_bytes, 12);
    delivered++;
}

static void phase_refusals(unsigned threads)
{
    rf_config cfg;
    rf_stats st;

    rf_config_init(&cfg);
    cfg.threads = threads;
    cfg.concurrency = 8;
    cfg.pull = pull_ok;
    cfg.on_result = on_result_ok;
    cfg.on_header = on_header;
    cfg.on_body = on_body;
    eng = make_engine(&cfg);
    eng_fd = rf_engine_fd(eng);
    enter("rf_run (refusals)");
    CHECK_ERR(rf_run(eng), RF_OK);
    CHECK_INT(delivered, N_OK);
    rf_get_stats(eng, &st);
    CHECK_INT(st.submitted, N_OK); /* the refused rf_submit()s added nothing */
    CHECK_INT(st.completed, N_OK);
    CHECK_INT(st.errors, 0);
    for (int p = 0; p < N_PLACES; p++) {
        unsigned long n = __atomic_load_n(&probes[p], __ATOMIC_RELAXED);

        if (n == 0)
            fprintf(stderr, "FAIL: %s was never called\n", place_name[p]);
        CHECK(n > 0);
    }
    CHECK_INT(__atomic_load_n(&probes[IN_RESULT], __ATOMIC_RELAXED), N_OK);
    CHECK_INT(rf_step(eng, 0), 0); /* still usable, and done */
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
}

/* ---- phase 2: rf_cancel() from inside callbacks ---- */

static int cancel_at = -1; /* the result index at which on_result cancels, or -1 */
static int cancel_in_body = 0;
static unsigned long n_ok, n_cancelled, cancel_pulls;

static void on_result_cancel(void *userp, const rf_result *r)
{
    (void)userp;
    CHECK_INT(r->index, delivered);
    delivered++;
    if (r->error == RF_OK)
        n_ok++;
    else if (r->error == RF_ERR_CANCELLED)
        n_cancelled++;
    else
        fprintf(stderr, "FAIL: result %" PRIu64 ": %s\n", r->index, rf_strerror(r->error));
    CHECK(r->error == RF_OK || r->error == RF_ERR_CANCELLED);
    if ((long)r->index == cancel_at)
        rf_cancel(eng);
}

static int on_body_cancel(void *userp, uint64_t index, void *userdata, const void *data,
                          size_t len)
{
    (void)userp, (void)userdata, (void)data, (void)len;
    if (cancel_in_body && index == 0)
        rf_cancel(eng);
    return 0;
}

/* Pull: five requests that hang; on the sixth call cancel, and still hand one over. */
static int pull_cancel(void *userp, rf_request *req)
{
    (void)userp;
    cancel_pulls++;
    if (cancel_pulls == 6)
        rf_cancel(eng);
    if (cancel_pulls > 6)
        return 0;
    req->url = hang_url;
    return 1;
}

static void run_cancel_case(unsigned threads, const char *name, int n_ok_urls, int n_hang,
                            int use_pull, unsigned long want_ok, unsigned long want_cancelled)
{
    rf_config cfg;
    uint64_t t0;

    rf_config_init(&cfg);
    cfg.threads = threads;
    cfg.concurrency = 40;
    cfg.timeout_ms = 20000;
    cfg.on_result = on_result_cancel;
    cfg.on_body = on_body_cancel;
    if (use_pull)
        cfg.pull = pull_cancel;
    eng = make_engine(&cfg);
    delivered = n_ok = n_cancelled = cancel_pulls = 0;
    for (int i = 0; i < n_ok_urls + n_hang; i++) {
        rf_request req = RF_REQUEST_INIT;

        req.url = i < n_ok_urls ? ok_url : hang_url;
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
    }
    enter(name);
    t0 = mono_us();
    CHECK_ERR(rf_run(eng), RF_OK);
    if (n_ok != want_ok || n_cancelled != want_cancelled)
        fprintf(stderr, "FAIL: %s: %lu ok, %lu cancelled\n", name, n_ok, n_cancelled);
    CHECK_INT(n_ok, want_ok);
    CHECK_INT(n_cancelled, want_cancelled);
    CHECK(mono_us() - t0 < 10000000); /* ended by the cancel, not by the 20 s timeout */
    if (use_pull)
        CHECK_INT(cancel_pulls, 6); /* not asked again once cancelled */
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
}

int main(int argc, char **argv)
{
    unsigned threads;
    pthread_t dog;

    if (argc != 4) {
        fprintf(stderr, "usage: recursion THREADS OK_URL HANG_URL\n");
        return 2;
    }
    threads = (unsigned)arg_num(argv[1]);
    ok_url = argv[2];
    hang_url = argv[3];
    CHECK_INT(pthread_create(&dog, NULL, watchdog, NULL), 0);
    phase_refusals(threads);

    /* From the result callback of the last fast request: the hanging ones end cancelled. */
    cancel_at = 9;
    run_cancel_case(threads, "rf_cancel in on_result", 10, 20, 0, 10, 20);
    cancel_at = -1;
    /* From on_body of request 0: it completes, the hanging ones are cancelled. */
    cancel_in_body = 1;
    run_cancel_case(threads, "rf_cancel in on_body", 1, 20, 0, 1, 20);
    cancel_in_body = 0;
    /* From the pull callback: its request and the five before it are cancelled. */
    run_cancel_case(threads, "rf_cancel in pull", 0, 0, 1, 0, 6);
    __atomic_store_n(&finished_all, 1, __ATOMIC_RELEASE);
    CHECK_INT(pthread_join(dog, NULL), 0);
    printf("ok\n");
    return 0;
}
