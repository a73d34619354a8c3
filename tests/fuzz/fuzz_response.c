/*
 * fuzz_response.c - the response path on arbitrary bytes: http1_resp, the fetch capture and
 * a fetch connection's state machine, fed exactly as recv completions feed them
 * (tests/unit/drive.h plays the kernel for a real engine created once).
 *
 * Input: four option bytes, then `ncuts` chunk sizes, then the response bytes.
 *   [0] bit 0 HEAD, bit 1 the server closes after the bytes, bit 2 keep-alive off,
 *       bit 3 the bytes left after a kept-alive response go to a second request on the
 *       same connection, bits 4-7 ncuts
 *   [1] keep_body   [2] max_body (0: none)   [3] max_header_bytes (0: the default)
 *   [4 .. 4+ncuts) each a chunk of 1-256 bytes; the rest of the response is the last chunk
 * Every request must produce exactly one result, with an error a response can cause and counts
 * that agree with the limits; any broken invariant traps. ASan catches the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drive.h"
#include "fuzz.h"

#define URL "http://127.0.0.1:1/p" /* a literal: no resolver; nothing is ever sent */
#define MAX_JOBS 2

static rf_engine *eng;
static struct worker *wk;

struct run {
    uint64_t first;   /* window index of the first request */
    int is_head;
    int results;
    uint64_t sum;     /* touches every byte a result points at */
};

static void on_result(void *userp, const rf_result *r)
{
    struct run *run = userp;
    const rf_config *cfg = &eng->cfg;
    const char *strs[] = {r->location, r->content_type, r->server, r->ip};

    ENSURE(run->results < MAX_JOBS);
    ENSURE(r->index == run->first + (uint64_t)run->results);
    run->results++;
    ENSURE(r->url && strcmp(r->url, URL) == 0);
    switch (r->error) {
    case RF_OK:
        ENSURE(r->status >= 100 && r->status <= 999);
        break;
    case RF_ERR_TIMEOUT:
    case RF_ERR_RESET:
    case RF_ERR_CLOSED:
    case RF_ERR_PROTOCOL:
    case RF_ERR_TOO_LARGE:
        break;
    default:
        __builtin_trap(); /* nothing else can come of response bytes */
    }
    ENSURE(r->status >= 0 && r->status <= 999);
    ENSURE(r->content_length >= -1);
    ENSURE(r->status != 0 || r->body_bytes == 0);
    if (cfg->max_body && r->error != RF_ERR_TOO_LARGE)
        ENSURE(r->body_bytes <= cfg->max_body);
    /* The kept body is the first min(body_bytes, keep_body) bytes, however they arrived. */
    ENSURE(r->body_len <= cfg->keep_body);
    ENSURE(r->body_len == (r->body_bytes < cfg->keep_body ? r->body_bytes : cfg->keep_body));
    ENSURE((r->body != NULL) == (r->body_len > 0));
    for (size_t i = 0; i < r->body_len; i++)
        run->sum += ((const uint8_t *)r->body)[i];
    /* No body where RFC 9112 6.3 says there is none. */
    if (r->error == RF_OK && (run->is_head || r->status == 204 || r->status == 304))
        ENSURE(r->body_bytes == 0);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (strs[i])
            run->sum += strlen(strs[i]);
}

static void engine_once(void)
{
    rf_config cfg;

    if (eng)
        return;
    rf_config_init(&cfg);
    cfg.concurrency = 2;
    cfg.threads = 1;
    cfg.window = 4;
    cfg.user_agent = "rf-fuzz/1";
    cfg.hosts_file = "/dev/null";
    cfg.on_result = on_result;
    if (rf_engine_create(&eng, &cfg) != RF_OK) {
        fprintf(stderr, "fuzz_response: cannot create an engine (io_uring?)\n");
        abort();
    }
    wk = &eng->workers[0];
    drive_drain(wk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *cuts, *resp;
    size_t ncuts, len, from = 0;
    rf_request req;
    struct run run;
    uint64_t job, emitted;
    uint32_t gen;
    struct fconn *f;
    int jobs = 1, state;

    if (size < 4 || size - 4 < (size_t)(data[0] >> 4))
        return 0;
    engine_once();
    ncuts = data[0] >> 4;
    cuts = data + 4;
    resp = cuts + ncuts;
    len = size - 4 - ncuts;
    eng->cfg.keepalive = !(data[0] & 4);
    eng->cfg.keep_body = data[1];
    eng->cfg.max_body = data[2];
    eng->cfg.max_header_bytes = data[3] ? 16u + 4u * data[3] : 65536;

    memset(&req, 0, sizeof(req));
    req.size = sizeof(req);
    req.url = URL;
    req.method = data[0] & 1 ? "HEAD" : NULL;
    memset(&run, 0, sizeof(run));
    run.first = eng->win.next;
    run.is_head = data[0] & 1;
    f = drive_start(wk, &req, &job, &gen);

    for (size_t i = 0; i <= ncuts && from < len; i++) {
        size_t to = i < ncuts ? from + cuts[i] + 1u : len;

        if (to > len)
            to = len;
        /* A provided buffer holds at most buf_size bytes: the kernel splits the same way. */
        while (to > from) {
            size_t n = to - from < wk->ring.buf_size ? to - from : wk->ring.buf_size;

            drive_recv(wk, f, gen, (const char *)resp + from, n);
            from += n;
            if ((data[0] & 8) && jobs < MAX_JOBS && f->state == FC_IDLE &&
                window_at(&eng->win, job)->state == W_DONE) {
                /* The next request goes out on the kept-alive connection. */
                ENSURE(drive_admit(wk, &req, &job) == f && f->reused);
                gen = f->c.gen;
                jobs++;
            }
        }
    }
    if (data[0] & 2)
        drive_eof(wk, f, gen); /* stale when the connection is gone already: dropped */
    if (f->state == FC_BUSY && f->c.state == CONN_CONNECTING)
        gen = drive_connect(wk, f); /* a stale kept-alive connection: the request's retry */

    state = drive_settle(wk, f, job, on_result, &run, &emitted);
    ENSURE(emitted == (uint64_t)jobs && run.results == jobs);
    ENSURE(state != FC_IDLE || (eng->cfg.keepalive && !(data[0] & 2)));
    ENSURE(f->state == FC_FREE && wk->busy == 0);
    ENSURE(eng->win.head == eng->win.next);
    return 0;
}
