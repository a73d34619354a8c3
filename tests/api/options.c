/*
 * options: rf_request's own timeout_ms, connect_timeout_ms, max_body and keep_body apply to
 * that request only; 0 means the engine's setting. The engine: timeout 2000 ms, connect
 * timeout 3000 ms, no body cap, keep_body 0.
 *
 *   options HANG_URL FILE64K_URL BLACKHOLE_URL
 *
 * Prints one line per request: "INDEX ERROR STATUS total_ms N body_bytes N body_len N";
 * checks the kept bytes are the file's.
 */
#include "api.h"

struct opt {
    int url;                 /* 0 hang, 1 the 64 KiB file, 2 the black hole */
    unsigned timeout_ms, connect_timeout_ms;
    uint64_t max_body;
    size_t keep_body;
};

static const struct opt opts[] = {
    {0, 300, 0, 0, 0},       /* 0: its own timeout: ~0.3 s */
    {0, 0, 0, 0, 0},         /* 1: the engine's: ~2 s */
    {0, 800, 0, 0, 0},       /* 2: ~0.8 s */
    {1, 0, 0, 1000, 0},      /* 3: too_large for this one... */
    {1, 0, 0, 0, 0},         /* 4: ...not for the same file without a cap */
    {1, 0, 0, 0, 100},       /* 5: 100 bytes kept */
    {1, 0, 0, 65536, 65536}, /* 6: a cap it just fits, all of it kept */
    {2, 0, 250, 0, 0},       /* 7: connect_timeout after ~0.25 s */
    {2, 0, 600, 0, 0},       /* 8: ~0.6 s */
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static void on_result(void *userp, const rf_result *r)
{
    (void)userp;
    if (r->body_len)
        CHECK(static_pattern_ok(r->body, r->body_len, 0));
    printf("%" PRIu64 " %s %d total_ms %u body_bytes %" PRIu64 " body_len %zu\n", r->index,
           rf_strerror(r->error), r->status, r->total_us / 1000, r->body_bytes, r->body_len);
}

int main(int argc, char **argv)
{
    rf_config cfg;
    rf_engine *eng;

    if (argc != 4) {
        fprintf(stderr, "usage: options HANG_URL FILE64K_URL BLACKHOLE_URL\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* written from the callback (see tests/valgrind.supp) */
    rf_config_init(&cfg);
    cfg.timeout_ms = 2000;
    cfg.connect_timeout_ms = 3000;
    cfg.on_result = on_result;
    eng = make_engine(&cfg);
    for (size_t i = 0; i < N_OPTS; i++) {
        rf_request req = RF_REQUEST_INIT;

        req.url = argv[1 + opts[i].url];
        req.timeout_ms = opts[i].timeout_ms;
        req.connect_timeout_ms = opts[i].connect_timeout_ms;
        req.max_body = opts[i].max_body;
        req.keep_body = opts[i].keep_body;
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
    }
    CHECK_ERR(rf_run(eng), RF_OK);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
    return 0;
}
