/*
 * threads: an engine is created in one thread and driven from others, one at a time; it
 * is cancelled and destroyed from other threads while its ring threads run. Run it under
 * ThreadSanitizer: a race report fails it (TSAN_OPTIONS=halt_on_error=1).
 *
 *   threads other   OK_URL N THREADS       created here, rf_run() in another thread
 *   threads pool    OK_URL N THREADS POOL  POOL threads take turns at rf_step()
 *   threads cancel  OK_URL HANG_URL N THREADS   rf_cancel() from another thread
 *   threads signal  OK_URL HANG_URL N THREADS   rf_cancel() from a signal handler
 *   threads destroy OK_URL HANG_URL N THREADS   rf_engine_destroy() while rings run
 *
 * Prints "ok" and, for pool, how many threads drove the engine and delivered results.
 */
#include "api.h"

#include <signal.h>
#include <sys/time.h>

static rf_engine *eng;
static const char *ok_url, *hang_url;
static unsigned long n_req, delivered, n_ok, n_cancelled;
static pthread_t expect_thread;
static int check_thread;

/* Which request is which: every fourth one hangs in the cancel cases. */
static int hangs(unsigned long i, int mixed) { return mixed && i % 4 == 3; }

static void on_result(void *userp, const rf_result *r)
{
    int mixed = userp != NULL;

    CHECK_INT(r->index, delivered);
    CHECK_INT((uintptr_t)r->userdata, delivered);
    if (check_thread)
        CHECK(pthread_equal(pthread_self(), expect_thread));
    if (r->error == RF_OK) {
        CHECK(!hangs(delivered, mixed));
        CHECK_INT(r->status, 200);
        CHECK_INT(r->body_bytes, 12);
        n_ok++;
    } else {
        if (r->error != RF_ERR_CANCELLED || !mixed)
            fprintf(stderr, "FAIL: result %lu: %s\n", delivered, rf_strerror(r->error));
        CHECK_ERR(r->error, RF_ERR_CANCELLED);
        CHECK(mixed);
        n_cancelled++;
    }
    delivered++;
}

static rf_engine *engine(unsigned threads, unsigned concurrency, int mixed)
{
    rf_config cfg;
    rf_engine *e;

    rf_config_init(&cfg);
    cfg.threads = threads;
    cfg.concurrency = concurrency;
    cfg.timeout_ms = 30000;
    cfg.on_result = on_result;
    cfg.result_userp = mixed ? &cfg : NULL; /* only compared with NULL */
    e = make_engine(&cfg);
    for (unsigned long i = 0; i < n_req; i++) {
        rf_request req = RF_REQUEST_INIT;

        req.url = hangs(i, mixed) ? hang_url : ok_url;
        req.userdata = (void *)(uintptr_t)i;
        CHECK_ERR(rf_submit(e, &req), RF_OK);
    }
    return e;
}

/* ---- other: created here, driven there ---- */

static void *run_thread(void *arg)
{
    (void)arg;
    expect_thread = pthread_self();
    check_thread = 1;
    CHECK_ERR(rf_run(eng), RF_OK);
    return NULL;
}

static void case_other(unsigned threads)
{
    pthread_t t;

    eng = engine(threads, 50, 0);
    CHECK_INT(pthread_create(&t, NULL, run_thread, NULL), 0);
    CHECK_INT(pthread_join(t, NULL), 0);
    check_thread = 0;
    CHECK_INT(delivered, n_req);
    CHECK_INT(n_ok, n_req);
    /* Results come on the thread that drives, so back here for the last word. */
    CHECK_INT(rf_step(eng, 0), 0);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
}

/* ---- pool: threads take turns, a mutex and a turn number passing the engine on ---- */

#define POOL_MAX 16
static pthread_mutex_t turn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cond = PTHREAD_COND_INITIALIZER;
static unsigned pool_n, turn, finished;
static unsigned long turns_of[POOL_MAX], results_by[POOL_MAX];
static unsigned long results_before;

static void *pool_thread(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;

    pthread_mutex_lock(&turn_lock);
    for (long k = 0; k < 10000000L && !finished; k++) {
        if (turn != me) {
            pthread_cond_wait(&turn_cond, &turn_lock);
            continue;
        }
        /* Our turn: one step while holding the engine, then pass it on. */
        turns_of[me]++;
        {
            int ret;

            results_before = delivered;
            ret = rf_step(eng, 2);
            results_by[me] += delivered - results_before;
            CHECK(ret >= 0);
            if (ret == 0)
                finished = 1;
        }
        turn = (turn + 1) % pool_n;
        pthread_cond_broadcast(&turn_cond);
    }
    pthread_mutex_unlock(&turn_lock);
    return NULL;
}

static void case_pool(unsigned threads, unsigned pool)
{
    pthread_t t[POOL_MAX];
    unsigned drove = 0, delivering = 0;

    CHECK(pool >= 2 && pool <= POOL_MAX);
    pool_n = pool;
    eng = engine(threads, 50, 0);
    for (unsigned i = 0; i < pool; i++)
        CHECK_INT(pthread_create(&t[i], NULL, pool_thread, (void *)(uintptr_t)i), 0);
    for (unsigned i = 0; i < pool; i++)
        CHECK_INT(pthread_join(t[i], NULL), 0);
    CHECK_INT(finished, 1);
    CHECK_INT(delivered, n_req);
    CHECK_INT(n_ok, n_req);
    for (unsigned i = 0; i < pool; i++) {
        drove += turns_of[i] > 0;
        delivering += results_by[i] > 0;
    }
    CHECK_INT(drove, pool);
    CHECK(delivering >= 2);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
    printf("pool %u drove %u delivered %u\n", pool, drove, delivering);
}

/* ---- cancel from another thread, or from a signal handler ---- */

static void *cancel_thread(void *arg)
{
    (void)arg;
    sleep_us(200000); /* the fast requests are done, the hanging ones hold slots */
    rf_cancel(eng);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    rf_cancel(eng);
}

static void case_cancel(unsigned threads, int by_signal)
{
    pthread_t t;
    uint64_t t0;

    eng = engine(threads, 40, 1);
    if (by_signal) {
        struct itimerval it = {{0, 0}, {0, 200000}};

        signal(SIGALRM, on_alarm);
        CHECK_INT(setitimer(ITIMER_REAL, &it, NULL), 0);
    } else {
        CHECK_INT(pthread_create(&t, NULL, cancel_thread, NULL), 0);
    }
    t0 = mono_us();
    CHECK_ERR(rf_run(eng), RF_OK);
    if (!by_signal)
        CHECK_INT(pthread_join(t, NULL), 0);
    CHECK(mono_us() - t0 < 15000000); /* ended by the cancel, not the 30 s timeout */
    CHECK_INT(delivered, n_req);
    CHECK(n_cancelled >= n_req / 4); /* every hanging request, and what was queued */
    CHECK(n_ok > 0);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
}

/* ---- destroy while the ring threads run ---- */

static void case_destroy(unsigned threads)
{
    /* Busy rings: fast requests completing on every thread, and hanging ones held. */
    for (int round = 0; round < 3; round++) {
        delivered = n_ok = n_cancelled = 0;
        eng = engine(threads, 40, 1);
        for (int s = 0; s < round * 2 + 1; s++)
            CHECK(rf_step(eng, round) >= 0);
        CHECK_ERR(rf_engine_destroy(eng), RF_OK);
    }
    /* Destroyed before any rf_step(): no thread was ever started. */
    eng = engine(threads, 40, 1);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int two_urls = strcmp(mode, "cancel") == 0 || strcmp(mode, "signal") == 0 ||
                   strcmp(mode, "destroy") == 0;
    int base = two_urls ? 4 : 3;

    if (argc < base + 2) {
        fprintf(stderr, "usage: threads MODE OK_URL [HANG_URL] N THREADS [POOL]\n");
        return 2;
    }
    ok_url = argv[2];
    hang_url = two_urls ? argv[3] : NULL;
    n_req = arg_num(argv[base]);
    if (strcmp(mode, "other") == 0)
        case_other((unsigned)arg_num(argv[base + 1]));
    else if (strcmp(mode, "pool") == 0 && argc == base + 3)
        case_pool((unsigned)arg_num(argv[base + 1]), (unsigned)arg_num(argv[base + 2]));
    else if (strcmp(mode, "cancel") == 0 || strcmp(mode, "signal") == 0)
        case_cancel((unsigned)arg_num(argv[base + 1]), strcmp(mode, "signal") == 0);
    else if (strcmp(mode, "destroy") == 0)
        case_destroy((unsigned)arg_num(argv[base + 1]));
    else
        return 2;
    printf("ok\n");
    return 0;
}
