/*
 * abi: the structs carry their size, and a program built against an older header (whose
 * structs are prefixes of today's) still works: the library reads and writes no byte past
 * the size it is given. Each short struct ends right before a PROT_NONE guard page, so a
 * byte too far crashes in any build. Also: rf_engine_create() refuses a ca_file it cannot
 * load, naming the file.
 *
 *   abi OK_URL REDIRECT_URL REFUSED_URL CA_MISSING CA_GARBAGE CA_EMPTY
 *
 * REDIRECT_URL answers 301 (it must not be followed: an old config has no
 * follow_redirects, so the default 0 holds); REFUSED_URL refuses connections (no retries
 * by default). Prints "ok".
 *
 *   abi bench OK_URL
 *
 * The same for the load-test structs: rf_bench_run() with a config and a report that end
 * early (an older program's), each before a guard page. Prints "ok REQUESTS".
 */
#include "api.h"

#include <stddef.h>
#include <sys/mman.h>

/*
 * `size` bytes that end where a PROT_NONE page begins, poisoned with 0xa5. The start stays
 * 8-aligned, so a size that is not a multiple of 8 leaves up to 7 poisoned bytes before
 * the guard.
 */
static void *before_guard(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t room = (size + 7) & ~(size_t)7, span = (room + page - 1) / page * page;
    char *p = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);

    CHECK(p != MAP_FAILED);
    CHECK_INT(mprotect(p + span, page, PROT_NONE), 0);
    memset(p + span - room, 0xa5, room);
    return p + span - room;
}

static unsigned long delivered;
static const char *expect[3];
static const char *ok_url, *redirect_url, *refused_url;

static void on_result(void *userp, const rf_result *r)
{
    (void)userp;
    CHECK(r->index < 3);
    CHECK_STR(r->url, expect[r->index]);
    if (strcmp(r->url, ok_url) == 0) {
        CHECK_ERR(r->error, RF_OK);
        CHECK_INT(r->status, 200);
    } else if (strcmp(r->url, redirect_url) == 0) {
        CHECK_ERR(r->error, RF_OK);
        CHECK_INT(r->status, 301); /* follow_redirects: the default, 0 */
        CHECK_INT(r->redirects, 0);
    } else {
        CHECK_ERR(r->error, RF_ERR_REFUSED);
        CHECK_INT(r->attempts, 1); /* retries: the default, 0 */
    }
    delivered++;
}

/* An engine from a config of `size` bytes, then three requests in short rf_requests. */
static void run_old_program(size_t cfg_size, size_t req_size)
{
    rf_config *cfg = before_guard(cfg_size);
    const char *urls[3] = {ok_url, redirect_url, refused_url};
    rf_engine *eng = NULL;
    rf_stats *st;

    rf_config_init_size(cfg, cfg_size); /* would crash writing past the guard */
    CHECK_INT(cfg->size, cfg_size);
    CHECK_INT(cfg->concurrency, 100);
    CHECK_INT(cfg->timeout_ms, 30000);
    CHECK(cfg->on_result == NULL);
    cfg->concurrency = 4;
    cfg->on_result = on_result;
    CHECK_ERR(rf_engine_create(&eng, cfg), RF_OK);
    for (int i = 0; i < 3; i++) {
        rf_request *req = before_guard(req_size);

        memset(req, 0, req_size); /* the fields it has: 0 (RF_REQUEST_INIT) */
        req->size = req_size;
        req->url = urls[i];
        req->body = "old body"; /* a body: its copying reads the request's flags */
        req->body_len = 8;
        expect[i] = urls[i];
        CHECK_ERR(rf_submit(eng, req), RF_OK);
    }
    delivered = 0;
    CHECK_ERR(rf_run(eng), RF_OK);
    CHECK_INT(delivered, 3);
    st = before_guard(offsetof(rf_stats, in_flight));
    rf_get_stats_size(eng, st, offsetof(rf_stats, in_flight));
    CHECK_INT(st->size, offsetof(rf_stats, in_flight));
    CHECK_INT(st->submitted, 3);
    CHECK_INT(st->completed, 3);
    CHECK_INT(st->errors, 1);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
}

static void ca_file_refused(const char *path)
{
    rf_engine *eng = (rf_engine *)&eng;
    char err[512] = "";
    rf_config cfg;

    rf_config_init(&cfg);
    cfg.on_result = on_result;
    cfg.ca_file = path;
    cfg.errbuf = err;
    cfg.errbuf_size = sizeof(err);
    CHECK_ERR(rf_engine_create(&eng, &cfg), RF_ERR_INVALID_ARG);
    CHECK(eng == NULL);
    if (!strstr(err, path))
        fprintf(stderr, "FAIL: errbuf \"%s\" does not name %s\n", err, path);
    CHECK(strstr(err, path) != NULL);
}

/* An older program's load test: its config lacks what follows `stop`, its report what
 * follows `thread_requests`. */
static void bench_old_structs(const char *url)
{
    size_t cfg_size = offsetof(rf_bench_config, stop);
    size_t rep_size = offsetof(rf_bench_report, latency_method);
    rf_bench_config *cfg = before_guard(cfg_size);
    rf_bench_report *rep = before_guard(rep_size);
    rf_bench_target target = {.url = url};
    rf_error err;

    rf_bench_config_init_size(cfg, cfg_size);
    CHECK_INT(cfg->size, cfg_size);
    cfg->targets = &target;
    cfg->n_targets = 1;
    cfg->connections = 2;
    cfg->requests = 100;
    cfg->duration_ms = 0;
    memset(rep, 0, rep_size);
    rep->size = rep_size;
    err = rf_bench_run(cfg, rep);
    if (err != RF_OK)
        fprintf(stderr, "FAIL: rf_bench_run with a %zu-byte report (of %zu): %s\n", rep_size,
                sizeof(rf_bench_report), rf_strerror(err));
    CHECK_ERR(err, RF_OK);
    CHECK_INT(rep->size, rep_size);
    CHECK_INT(rep->requests, 100);
    CHECK_INT(rep->status[200], 100);
    CHECK(rep->latency != NULL && rf_hist_count(rep->latency) == 100);
    rf_bench_report_free(rep);
    printf("ok %" PRIu64 "\n", rep->requests);
}

int main(int argc, char **argv)
{
    rf_config cfg;
    rf_request req = RF_REQUEST_INIT;
    rf_bench_config bcfg;
    rf_stats st;
    rf_engine *eng = NULL;

    if (argc == 3 && strcmp(argv[1], "bench") == 0) {
        bench_old_structs(argv[2]);
        return 0;
    }
    if (argc != 7) {
        fprintf(stderr, "usage: abi OK_URL REDIRECT_URL REFUSED_URL CA_MISSING CA_GARBAGE "
                        "CA_EMPTY\n");
        return 2;
    }
    ok_url = argv[1];
    redirect_url = argv[2];
    refused_url = argv[3];

    /* The init functions and RF_REQUEST_INIT set `size`. */
    rf_config_init(&cfg);
    CHECK_INT(cfg.size, sizeof(rf_config));
    CHECK_INT(req.size, sizeof(rf_request));
    CHECK(req.url == NULL && req.flags == 0 && req.timeout_ms == 0 && req.keep_body == 0);
    rf_bench_config_init(&bcfg);
    CHECK_INT(bcfg.size, sizeof(rf_bench_config));
    cfg.on_result = on_result;
    eng = make_engine(&cfg);
    memset(&st, 0xa5, sizeof(st));
    rf_get_stats(eng, &st);
    CHECK_INT(st.size, sizeof(rf_stats));
    CHECK_INT(st.submitted, 0);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);

    /* Today's structs, then prefixes: one without the options after errbuf_size, and the
     * smallest the library takes (everything before on_header), with requests that end
     * before the per-request options (and so read as 0: the engine's settings). */
    run_old_program(sizeof(rf_config), sizeof(rf_request));
    run_old_program(offsetof(rf_config, default_scheme), offsetof(rf_request, timeout_ms));
    run_old_program(offsetof(rf_config, on_header), offsetof(rf_request, timeout_ms));

    /* Shorter than that (a 0.2 program, which has no size at all, must be rebuilt). */
    {
        size_t small = offsetof(rf_config, on_header) - sizeof(void *);
        rf_config *old = before_guard(small);

        rf_config_init_size(old, small);
        old->on_result = on_result; /* only the size is wrong */
        CHECK_INT(old->size, small);
        eng = (rf_engine *)&eng;
        CHECK_ERR(rf_engine_create(&eng, old), RF_ERR_INVALID_ARG);
        CHECK(eng == NULL);
    }
    {
        rf_bench_config *b = before_guard(offsetof(rf_bench_config, connections));

        rf_bench_config_init_size(b, offsetof(rf_bench_config, connections));
        CHECK_INT(b->size, offsetof(rf_bench_config, connections));
        CHECK(b->targets == NULL && b->n_targets == 0);
    }

    /* A CA bundle that is missing, not PEM, or empty. */
    ca_file_refused(argv[4]);
    ca_file_refused(argv[5]);
    ca_file_refused(argv[6]);
    printf("ok\n");
    return 0;
}
