/*
 * memory: what an engine holds follows its concurrency and window, never the input's size
 * or the kept bodies already delivered. COUNT requests for a 64 KiB file, each body kept
 * whole (keep_body 65536) and checked byte by byte, CONCURRENCY at a time with the default
 * window, from a pull callback.
 *
 *   memory URL COUNT CONCURRENCY
 *
 * Prints "ok COUNT", "maxrss_kb N", the peak resident set (VmHWM; "ru_maxrss_kb N" is
 * getrusage()'s figure, which includes what the parent had when it vforked us), and
 * "most_waiting N slowest_ms N": the most finished results that waited for delivery behind
 * a slower one at once (each holds its kept body), and the slowest request.
 */
#include "api.h"

static const char *url;
static unsigned long count, pulled, delivered;
static rf_engine *eng;
static uint64_t most_waiting, slowest_us;

static int pull(void *userp, rf_request *req)
{
    (void)userp;
    if (pulled == count)
        return 0;
    req->url = url;
    req->userdata = (void *)(uintptr_t)pulled++;
    return 1;
}

static void on_result(void *userp, const rf_result *r)
{
    (void)userp;
    if (r->error != RF_OK)
        fprintf(stderr, "FAIL: result %" PRIu64 ": %s\n", r->index, rf_strerror(r->error));
    CHECK_INT(r->index, delivered);
    CHECK_ERR(r->error, RF_OK);
    CHECK_INT(r->status, 200);
    CHECK_INT(r->body_bytes, 65536);
    CHECK_INT(r->body_len, 65536);
    CHECK(static_pattern_ok(r->body, r->body_len, 0));
    delivered++;
    {
        rf_stats st;
        uint64_t waiting;

        rf_get_stats(eng, &st); /* it only reads: allowed in a callback */
        waiting = st.submitted - st.completed - st.in_flight;
        most_waiting = waiting > most_waiting ? waiting : most_waiting;
        slowest_us = r->total_us > slowest_us ? r->total_us : slowest_us;
    }
}

int main(int argc, char **argv)
{
    rf_config cfg;

    if (argc != 4) {
        fprintf(stderr, "usage: memory URL COUNT CONCURRENCY\n");
        return 2;
    }
    url = argv[1];
    count = arg_num(argv[2]);
    rf_config_init(&cfg);
    cfg.concurrency = (unsigned)arg_num(argv[3]);
    cfg.keep_body = 65536;
    cfg.pull = pull;
    cfg.on_result = on_result;
    eng = make_engine(&cfg);
    CHECK_ERR(rf_run(eng), RF_OK);
    CHECK_INT(delivered, count);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
    printf("ok %lu\nmaxrss_kb %ld\nru_maxrss_kb %ld\nmost_waiting %" PRIu64
           " slowest_ms %" PRIu64 "\n",
           delivered, max_rss_kb(), ru_maxrss_kb(), most_waiting, slowest_us / 1000);
    return 0;
}
