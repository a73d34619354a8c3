/*
 * cancel: rf_cancel() ends what is in flight and what is queued at once, and rf_resume()
 * gives the same engine back for new work.
 *
 *   cancel drain  HANG_URL OK_URL COUNT THREADS
 *       COUNT requests that hang, 100 in flight; rf_cancel(), then rf_step() until done:
 *       every one cancelled, in order. Prints "drain_us N steps N first_step N" (how long
 *       from rf_cancel() to the end, how many rf_step() calls that took, how many results
 *       the first one delivered). Then rf_resume() and 50 requests to OK_URL: all 200.
 *   cancel pull   HANG_URL OK_URL COUNT THREADS
 *       a pull source: 100 hanging requests, cancel, drain; the pull callback is not asked
 *       while cancelled; rf_resume(), and the same source goes on with COUNT fast ones.
 */
#include "api.h"

static unsigned long delivered, n_ok, n_cancelled;

static void on_result(void *userp, const rf_result *r)
{
    (void)userp;
    CHECK_INT(r->index, delivered);
    delivered++;
    if (r->error == RF_OK) {
        CHECK_INT(r->status, 200);
        n_ok++;
    } else {
        CHECK_ERR(r->error, RF_ERR_CANCELLED);
        CHECK_INT(n_ok, 0); /* nothing after the cancel is cancelled */
        n_cancelled++;
    }
}

static const char *hang_url, *ok_url;
static unsigned long count;
/* Atomics: with threads > 1 the pull callback runs on the ring threads. */
static unsigned long pulled, pull_calls;
static int cancelled_now;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)

static int pull(void *userp, rf_request *req)
{
    unsigned long n = LOAD(pulled);

    (void)userp;
    STORE(pull_calls, LOAD(pull_calls) + 1);
    CHECK(!LOAD(cancelled_now));
    if (n == 100 + count)
        return 0;
    req->url = n < 100 ? hang_url : ok_url;
    STORE(pulled, n + 1);
    return 1;
}

/* Step until `in_flight` requests hold slots, at most 10 s. */
static void wait_in_flight(rf_engine *eng, uint64_t in_flight)
{
    rf_stats st;

    for (int i = 0; i < 10000; i++) {
        CHECK_INT(rf_step(eng, 1), 1);
        rf_get_stats(eng, &st);
        if (st.in_flight == in_flight)
            return;
    }
    fprintf(stderr, "FAIL: %" PRIu64 " in flight, not %" PRIu64 "\n", st.in_flight, in_flight);
    exit(1);
}

/* rf_cancel(), then rf_step() until it returns 0. */
static void cancel_and_drain(rf_engine *eng, unsigned long total)
{
    unsigned long steps = 0, first = 0, before = delivered;
    uint64_t t0 = mono_us(), dt;
    int ret = 1;

    rf_cancel(eng);
    for (; steps < 100000 && ret > 0; steps++) {
        ret = rf_step(eng, 1000);
        if (steps == 0)
            first = delivered - before;
    }
    dt = mono_us() - t0;
    CHECK_INT(ret, 0);
    CHECK_INT(delivered, total);
    CHECK_INT(n_cancelled, total);
    printf("drain_us %" PRIu64 " steps %lu first_step %lu\n", dt, steps, first);
}

static void drain(unsigned threads, unsigned long n)
{
    rf_config cfg;
    rf_engine *eng;
    rf_stats st;

    rf_config_init(&cfg);
    cfg.concurrency = 100;
    cfg.threads = threads;
    cfg.timeout_ms = 60000;
    cfg.on_result = on_result;
    eng = make_engine(&cfg);
    for (unsigned long i = 0; i < n; i++) {
        rf_request req = RF_REQUEST_INIT;

        req.url = hang_url;
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
    }
    wait_in_flight(eng, 100);
    CHECK_INT(delivered, 0);
    cancel_and_drain(eng, n);
    rf_get_stats(eng, &st);
    CHECK_INT(st.in_flight, 0);
    CHECK_INT(st.completed, n);

    /* Cancelled until resumed: a request submitted now is cancelled too. */
    {
        rf_request req = RF_REQUEST_INIT;

        req.url = ok_url;
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
        CHECK_INT(drive(eng, 100, 10.0), 0);
        CHECK_INT(n_cancelled, n + 1);
    }
    CHECK_ERR(rf_resume(eng), RF_OK);
    for (int i = 0; i < 50; i++) {
        rf_request req = RF_REQUEST_INIT;

        req.url = ok_url;
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
    }
    CHECK_ERR(rf_run(eng), RF_OK);
    CHECK_INT(n_ok, 50);
    CHECK_INT(delivered, n + 51);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
}

static void pull_source(unsigned threads, unsigned long n)
{
    rf_config cfg;
    rf_engine *eng;
    unsigned long calls;

    count = n;
    rf_config_init(&cfg);
    cfg.concurrency = 100;
    cfg.threads = threads;
    cfg.timeout_ms = 60000;
    cfg.pull = pull;
    cfg.on_result = on_result;
    eng = make_engine(&cfg);
    wait_in_flight(eng, 100);
    CHECK_INT(LOAD(pulled), 100);
    STORE(cancelled_now, 1); /* the pull callback must not be asked from here on */
    calls = LOAD(pull_calls);
    cancel_and_drain(eng, 100);
    CHECK_INT(LOAD(pull_calls), calls);
    CHECK_INT(rf_step(eng, 0), 0);
    STORE(cancelled_now, 0);
    CHECK_ERR(rf_resume(eng), RF_OK);
    CHECK_ERR(rf_run(eng), RF_OK);
    CHECK_INT(LOAD(pulled), 100 + n);
    CHECK_INT(n_ok, n);
    CHECK_INT(delivered, 100 + n);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: cancel drain|pull HANG_URL OK_URL COUNT THREADS\n");
        return 2;
    }
    hang_url = argv[2];
    ok_url = argv[3];
    if (strcmp(argv[1], "drain") == 0)
        drain((unsigned)arg_num(argv[5]), arg_num(argv[4]));
    else if (strcmp(argv[1], "pull") == 0)
        pull_source((unsigned)arg_num(argv[5]), arg_num(argv[4]));
    else
        return 2;
    printf("ok\n");
    return 0;
}
