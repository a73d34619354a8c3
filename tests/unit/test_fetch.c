/*
 * test_fetch.c - fetch/request.c: a request's life on a fetch connection of a real engine,
 * with tests/unit/drive.h playing the kernel. The request goes out linked on the connect;
 * responses arrive as recv completions (whole, split at every byte, byte by byte, randomly,
 * and through a guard page) and become results: status, Location/Content-Type/Server
 * captured however their values were split (the first of repeated headers wins), the kept
 * body, max_body, the keep-alive decision and the reuse of a kept-alive connection.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "drive.h"

/* A literal address: no resolver, and nothing is ever sent to it (see drive.h). */
#define URL "http://127.0.0.1:1/p?q=1"

static rf_engine *eng;
static struct worker *wk;

/* A copy of the one result a case delivers. */
struct got {
    int n;
    rf_error err;
    int status;
    uint64_t body_bytes;
    int64_t clen;
    char loc[256], ctype[64], server[64], body[256], ip[64], url[64];
    int has_loc, has_ctype, has_server, has_body, has_ip;
    size_t body_len;
    int reused;
    unsigned tried;
    uint32_t connect_us;
};

static void copy_str(char *dst, size_t cap, int *has, const char *s)
{
    if (has)
        *has = s != NULL;
    snprintf(dst, cap, "%s", s ? s : "");
}

static void on_result(void *userp, const rf_result *r)
{
    struct got *g = userp;

    g->n++;
    g->err = r->error;
    g->status = r->status;
    g->body_bytes = r->body_bytes;
    g->clen = r->content_length;
    g->reused = r->reused;
    g->tried = r->addresses_tried;
    g->connect_us = r->connect_us;
    copy_str(g->loc, sizeof(g->loc), &g->has_loc, r->location);
    copy_str(g->ctype, sizeof(g->ctype), &g->has_ctype, r->content_type);
    copy_str(g->server, sizeof(g->server), &g->has_server, r->server);
    copy_str(g->ip, sizeof(g->ip), &g->has_ip, r->ip);
    copy_str(g->url, sizeof(g->url), NULL, r->url);
    g->has_body = r->body != NULL;
    g->body_len = r->body_len;
    if (r->body && r->body_len < sizeof(g->body))
        memcpy(g->body, r->body, r->body_len);
}

static rf_request request(const char *method)
{
    rf_request req = RF_REQUEST_INIT;

    req.url = URL;
    req.method = method;
    return req;
}

/* Deliver the case's result and free its connection. Returns the state before that. */
static int settle(struct fconn *f, uint64_t job, struct got *g)
{
    uint64_t emitted;

    memset(g, 0, sizeof(*g));
    return drive_settle(wk, f, job, on_result, g, &emitted);
}

/* ---------------------------------------------------------------- responses */

struct rcase {
    const char *name;
    const char *method;   /* NULL: GET */
    const char *resp;
    int eof;              /* the server closes after the bytes */
    uint32_t max_header;  /* 0: the default */
    uint64_t max_body;
    size_t keep_body;
    int no_keepalive;     /* the engine is configured without keep-alive */
    /* expected */
    rf_error err;
    int status;
    uint64_t body_bytes;
    int64_t clen;
    const char *loc, *ctype, *server, *kept; /* NULL: absent */
    int idle;             /* the connection is kept for reuse */
};

#define CL11 "HTTP/1.1 200 OK\r\nContent-Length: "

static const struct rcase cases[] = {
    {"content-length", NULL,
     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: t/1\r\nContent-Length: 5\r\n\r\n"
     "hello",
     0, 0, 0, 64, 0, RF_OK, 200, 5, 5, NULL, "text/plain", "t/1", "hello", 1},
    {"keep-body cap", NULL, CL11 "11\r\n\r\nhello world", 0, 0, 0, 3, 0, RF_OK, 200, 11, 11,
     NULL, NULL, NULL, "hel", 1},
    {"count only", NULL, CL11 "11\r\n\r\nhello world", 0, 0, 0, 0, 0, RF_OK, 200, 11, 11, NULL,
     NULL, NULL, NULL, 1},
    {"empty body", NULL, CL11 "0\r\n\r\n", 0, 0, 0, 64, 0, RF_OK, 200, 0, 0, NULL, NULL, NULL,
     NULL, 1},
    {"chunked, extensions and trailers", NULL,
     "HTTP/1.1 200 OK\r\nServer: early\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;name=value\r\nhello\r\n6;a;b=\"c d\"\r\n world\r\nA\r\n0123456789\r\n"
     "0;last\r\nX-Trailer: 1\r\nServer: late\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 200, 21, -1, NULL, NULL, "early", "hello world0123456789", 1},
    {"chunked, kept body cut", NULL,
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 0, 0,
     0, 4, 0, RF_OK, 200, 6, -1, NULL, NULL, NULL, "abcd", 1},
    {"close-delimited", NULL, "HTTP/1.1 200 OK\r\nContent-Type: a/b\r\n\r\nsome body", 1, 0, 0,
     64, 0, RF_OK, 200, 9, -1, NULL, "a/b", NULL, "some body", 0},
    {"close-delimited, empty", NULL, "HTTP/1.1 200 OK\r\n\r\n", 1, 0, 0, 64, 0, RF_OK, 200, 0,
     -1, NULL, NULL, NULL, NULL, 0},
    {"HEAD", "HEAD", CL11 "1234\r\nContent-Type: text/html\r\n\r\n", 0, 0, 0, 64, 0, RF_OK, 200,
     0, 1234, NULL, "text/html", NULL, NULL, 1},
    {"HEAD, chunked", "HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 0,
     64, 0, RF_OK, 200, 0, -1, NULL, NULL, NULL, NULL, 1},
    {"1xx first", NULL,
     "HTTP/1.1 100 Continue\r\nServer: interim\r\n\r\n"
     "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nLocation: /early\r\n\r\n"
     "HTTP/1.1 201 Created\r\nLocation: /new\r\nContent-Length: 2\r\n\r\nok",
     0, 0, 0, 64, 0, RF_OK, 201, 2, 2, "/new", NULL, NULL, "ok", 1},
    {"204", NULL, "HTTP/1.1 204 No Content\r\nContent-Type: x/y\r\n\r\n", 0, 0, 0, 64, 0, RF_OK,
     204, 0, -1, NULL, "x/y", NULL, NULL, 1},
    {"204 with Content-Length", NULL, "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 204, 0, 3, NULL, NULL, NULL, NULL, 1},
    {"1xx with Content-Length", NULL,
     "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n"
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!",
     0, 0, 0, 64, 0, RF_OK, 200, 1, 1, NULL, NULL, NULL, "!", 1},
    {"304 with Content-Length", NULL, "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 304, 0, 100, NULL, NULL, NULL, NULL, 1},
    /* After a 101 the connection speaks another protocol: never kept for a request. */
    {"101 is final, not reused", NULL,
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 0,
     0, 0, 64, 0, RF_OK, 101, 0, -1, NULL, NULL, NULL, NULL, 0},
    {"captured names in any case", NULL,
     "HTTP/1.1 301 Moved\r\nLOCATION: http://x/y\r\ncontent-TYPE: a/b; charset=utf-8\r\n"
     "sErVeR: s s\r\ncontent-length: 0\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 301, 0, 0, "http://x/y", "a/b; charset=utf-8", "s s", NULL, 1},
    {"first of repeated headers", NULL,
     "HTTP/1.1 302 Found\r\nLocation: /one\r\nServer: a\r\nLocation: /two\r\nServer: b\r\n"
     "Content-Length: 0\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 302, 0, 0, "/one", NULL, "a", NULL, 1},
    {"an empty value is a value: the first", NULL,
     "HTTP/1.1 302 Found\r\nLocation:\r\nLocation: /two\r\nContent-Length: 0\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 302, 0, 0, "", NULL, NULL, NULL, 1},
    {"similar names are not captured", NULL,
     "HTTP/1.1 200 OK\r\nLocations: /a\r\nServer-Timing: x\r\nX-Location: /b\r\n"
     "Content-Type-Options: y\r\nX-A-Header-Name-Longer-Than-32-Bytes-Location: /c\r\n"
     "Content-Length: 0\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 200, 0, 0, NULL, NULL, NULL, NULL, 1},
    {"long captured value", NULL,
     "HTTP/1.1 307 Temporary\r\nLocation: http://a-rather-long-host-name.example/"
     "with/a/path/that/goes/on/and/on?and=a&query=string&of=some&length=1\r\n"
     "Content-Length: 0\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 307, 0, 0,
     "http://a-rather-long-host-name.example/with/a/path/that/goes/on/and/on?and=a&query=string"
     "&of=some&length=1",
     NULL, NULL, NULL, 1},
    /* Header bytes: reason phrase, then name + 4 + value per field: 2 + 13 + 19 = 34. */
    {"headers at the cap", NULL, "HTTP/1.1 200 OK\r\nServer: abc\r\nContent-Length: 0\r\n\r\n", 0,
     34, 0, 64, 0, RF_OK, 200, 0, 0, NULL, NULL, "abc", NULL, 1},
    {"headers over the cap", NULL, "HTTP/1.1 200 OK\r\nServer: abc\r\nContent-Length: 0\r\n\r\n",
     0, 33, 0, 64, 0, RF_ERR_TOO_LARGE, 0, 0, -1, NULL, NULL, "abc", NULL, 0},
    /* The cap starts over for the final response after a 1xx: 8 + 9 + 6 and 4 + 18 + 1. */
    {"headers at the cap after 1xx", NULL,
     "HTTP/1.1 100 Continue\r\nX-Pad: 123456\r\n\r\nHTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\n",
     0, 23, 0, 64, 0, RF_OK, 200, 0, 0, NULL, NULL, NULL, NULL, 1},
    {"body at max_body", NULL, CL11 "10\r\n\r\n0123456789", 0, 0, 10, 64, 0, RF_OK, 200, 10, 10,
     NULL, NULL, NULL, "0123456789", 1},
    {"body over max_body", NULL, CL11 "10\r\n\r\n0123456789", 0, 0, 9, 64, 0, RF_ERR_TOO_LARGE,
     200, 10, 10, NULL, NULL, NULL, "0123456789", 0},
    {"chunked over max_body", NULL,
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n", 0,
     0, 5, 0, 0, RF_ERR_TOO_LARGE, 200, 8, -1, NULL, NULL, NULL, NULL, 0},
    {"status under 100", NULL, "HTTP/1.1 020 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, 64, 0,
     RF_ERR_PROTOCOL, 0, 0, -1, NULL, NULL, NULL, NULL, 0},
    {"Content-Length over INT64_MAX", NULL, CL11 "9223372036854775808\r\n\r\n", 0, 0, 0, 64, 0,
     RF_ERR_PROTOCOL, 0, 0, -1, NULL, NULL, NULL, NULL, 0},
    {"garbage", NULL, "HTXP/1.1 200 OK\r\n\r\n", 0, 0, 0, 64, 0, RF_ERR_PROTOCOL, 0, 0, -1, NULL,
     NULL, NULL, NULL, 0},
    {"bad status", NULL, "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, 64, 0,
     RF_ERR_PROTOCOL, 0, 0, -1, NULL, NULL, NULL, NULL, 0},
    {"bad chunk size", NULL,
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 0, 0, 0, 64, 0,
     RF_ERR_PROTOCOL, 200, 0, -1, NULL, NULL, NULL, NULL, 0},
    {"truncated body then close", NULL, CL11 "10\r\n\r\n01234", 1, 0, 0, 64, 0, RF_ERR_CLOSED, 200,
     5, 10, NULL, NULL, NULL, "01234", 0},
    {"close before any byte", NULL, "", 1, 0, 0, 64, 0, RF_ERR_CLOSED, 0, 0, -1, NULL, NULL, NULL,
     NULL, 0},
    {"truncated body, no close", NULL, CL11 "10\r\n\r\n01234", 0, 0, 0, 64, 0, RF_ERR_TIMEOUT, 200,
     5, 10, NULL, NULL, NULL, "01234", 0},
    {"bytes after the response", NULL, CL11 "2\r\n\r\nokHTTP/1.1 200 OK\r\n", 0, 0, 0, 64, 0,
     RF_OK, 200, 2, 2, NULL, NULL, NULL, "ok", 0},
    {"Connection: close", NULL,
     "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 0, 0, 0, 64, 0,
     RF_OK, 200, 2, 2, NULL, NULL, NULL, "ok", 0},
    {"HTTP/1.0", NULL, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 0, 0, 64, 0, RF_OK,
     200, 2, 2, NULL, NULL, NULL, "ok", 0},
    {"HTTP/1.0 keep-alive", NULL,
     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 0, 0, 0, 64, 0,
     RF_OK, 200, 2, 2, NULL, NULL, NULL, "ok", 1},
    {"keep-alive off", NULL, CL11 "2\r\n\r\nok", 0, 0, 0, 64, 1, RF_OK, 200, 2, 2, NULL, NULL,
     NULL, "ok", 0},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* The engine's settings a case asks for; admission copies them into the request. */
static void configure(const struct rcase *k)
{
    eng->cfg.max_header_bytes = k->max_header ? k->max_header : 65536;
    eng->cfg.max_body = k->max_body;
    eng->cfg.keep_body = k->keep_body;
    eng->cfg.keepalive = !k->no_keepalive;
}

static int check_result(const struct rcase *k, const struct got *g, int state)
{
    int before = check_failures();

    CHECK_INT(g->n, 1);
    CHECK_INT(g->err, k->err);
    CHECK_INT(g->status, k->status);
    if (k->err == RF_ERR_TOO_LARGE && k->max_body) {
        /* Counted up to the read that crossed the cap: where that is depends on the reads. */
        CHECK(g->body_bytes > k->max_body);
        CHECK(g->body_bytes <= k->body_bytes);
    } else {
        CHECK_UINT(g->body_bytes, k->body_bytes);
    }
    CHECK_INT(g->clen, k->clen);
    CHECK_INT(g->has_loc, k->loc != NULL);
    CHECK_STR(g->loc, k->loc ? k->loc : "");
    CHECK_INT(g->has_ctype, k->ctype != NULL);
    CHECK_STR(g->ctype, k->ctype ? k->ctype : "");
    CHECK_INT(g->has_server, k->server != NULL);
    CHECK_STR(g->server, k->server ? k->server : "");
    CHECK_INT(g->has_body, k->kept != NULL);
    CHECK_MEM(g->body, g->has_body ? g->body_len : 0, k->kept ? k->kept : "",
              k->kept ? strlen(k->kept) : 0);
    CHECK_INT(g->reused, 0);
    CHECK_STR(g->ip, "127.0.0.1");
    CHECK_UINT(g->tried, 1);
    CHECK_STR(g->url, URL);
    CHECK_INT(state, k->idle ? FC_IDLE : FC_FREE);
    CHECK_UINT(wk->busy, 0);
    return check_failures() != before;
}

/* Feed the response cut at `cuts` (ascending offsets inside it); report the first mismatch. */
static int run_split(const struct rcase *k, const size_t *cuts, size_t ncuts, const char *how)
{
    size_t len = strlen(k->resp), from = 0;
    rf_request req = request(k->method);
    struct got g;
    uint64_t job;
    uint32_t gen;
    struct fconn *f;
    int state;

    configure(k);
    f = drive_start(wk, &req, &job, &gen);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;

        /* A provided buffer holds at most buf_size bytes: the kernel splits the same way.
         * Bytes after the end go on coming (to an idle connection, or stale ones). */
        while (to > from) {
            size_t n = to - from < wk->ring.buf_size ? to - from : wk->ring.buf_size;

            drive_recv(wk, f, gen, k->resp + from, n);
            from += n;
        }
    }
    if (k->eof)
        drive_eof(wk, f, gen);
    state = settle(f, job, &g);
    if (check_result(k, &g, state)) {
        fprintf(stderr, "  case \"%s\", %s, cuts:", k->name, how);
        for (size_t i = 0; i < ncuts && i < 16; i++)
            fprintf(stderr, " %zu", cuts[i]);
        fputc('\n', stderr);
        return -1;
    }
    return 0;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_responses(void)
{
    static size_t cuts[1 << 16];

    for (size_t i = 0; i < NCASES; i++) {
        const struct rcase *k = &cases[i];
        size_t len = strlen(k->resp);

        if (run_split(k, NULL, 0, "whole"))
            continue;
        /* Two pieces, cut at every offset. */
        for (size_t at = 1; at < len; at++) {
            cuts[0] = at;
            if (run_split(k, cuts, 1, "two pieces"))
                break;
        }
        /* One byte per completion. */
        for (size_t at = 1; at < len; at++)
            cuts[at - 1] = at;
        if (len > 1 && run_split(k, cuts, len - 1, "byte by byte"))
            continue;
        /* Random pieces of 1..16 bytes. */
        for (int round = 0; round < 20; round++) {
            size_t n = 0, at = 0;

            for (;;) {
                at += 1 + rnd() % 16;
                if (at >= len)
                    break;
                cuts[n++] = at;
            }
            if (run_split(k, cuts, n, "random"))
                break;
        }
    }
}

/* A body larger than one provided buffer, over several completions. */
static void test_large_body(void)
{
    static char resp[100000];
    struct rcase k;
    size_t cuts[3];
    int n;

    n = snprintf(resp, sizeof(resp), CL11 "80000\r\n\r\n");
    memset(resp + n, 'x', 80000);
    resp[n + 80000] = '\0';
    memset(&k, 0, sizeof(k));
    k.name = "80000-byte body";
    k.resp = resp;
    k.err = RF_OK;
    k.status = 200;
    k.body_bytes = 80000;
    k.clen = 80000;
    k.idle = 1;
    run_split(&k, NULL, 0, "whole");
    cuts[0] = 10;
    cuts[1] = (size_t)n + 1;
    cuts[2] = (size_t)n + 40000;
    run_split(&k, cuts, 3, "three pieces");
    k.max_body = 79999;
    k.err = RF_ERR_TOO_LARGE;
    k.idle = 0;
    run_split(&k, NULL, 0, "whole");
}

/*
 * The capture against a guard page: each piece goes to the connection's data() callback
 * (what the connection layer calls with a provided buffer) so that its last byte sits just
 * before an unreadable page; nothing may read past it.
 */
static void test_guard_page(void)
{
    for (size_t i = 0; i < NCASES; i++) {
        const struct rcase *k = &cases[i];
        size_t len = strlen(k->resp);
        int before = check_failures();

        for (int bytewise = 0; bytewise < 2; bytewise++) {
            size_t step = bytewise ? 1 : len;
            rf_request req = request(k->method);
            struct got g;
            uint64_t job;
            uint32_t gen;
            struct fconn *f;
            int state;

            configure(k);
            f = drive_start(wk, &req, &job, &gen);
            /* As the connection layer does: bytes go to data() while its socket lives. */
            for (size_t off = 0; off < len && f->c.state == CONN_OPEN && f->c.gen == gen;
                 off += step) {
                size_t n = len - off < step ? len - off : step;
                char *p = guard_copy(k->resp + off, n);

                wk->conns.ops->data(&f->c, p, n);
                guard_free(p, n);
            }
            if (k->eof)
                drive_eof(wk, f, gen);
            state = settle(f, job, &g);
            check_result(k, &g, state);
        }
        if (check_failures() != before)
            fprintf(stderr, "  guard page, case \"%s\"\n", k->name);
    }
}

/* ---------------------------------------------------------------- requests */

/* The request rides linked on the connect, from the connection's buffer: the head and a
 * small body in one send. */
static void test_request_on_the_wire(void)
{
    static const char *const hdrs[] = {"X-Req: 1"};
    static const char want_get[] = "GET /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"
                                   "User-Agent: rf-unit/1\r\nAccept: */*\r\nX-Req: 1\r\n\r\n";
    static const char want_post[] = "POST /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"
                                    "User-Agent: rf-unit/1\r\nAccept: */*\r\n"
                                    "Content-Length: 4\r\n\r\nbody";
    rf_request req = request(NULL);
    struct got g;
    uint64_t job;
    struct fconn *f;

    eng->cfg.keepalive = 1;
    req.headers = hdrs;
    req.n_headers = 1;
    f = drive_admit(wk, &req, &job);
    if (!CHECK(f != NULL))
        return;
    CHECK_INT(f->state, FC_BUSY);
    CHECK_INT(f->c.state, CONN_CONNECTING);
    CHECK_INT(f->resp.is_head, 0);
    drive_drain(wk);
    if (CHECK_UINT(drive_nsqe, 3)) {
        CHECK_UINT(drive_sqe[0].opcode, IORING_OP_SOCKET);
        CHECK_UINT(drive_sqe[1].opcode, IORING_OP_CONNECT);
        CHECK(drive_sqe[1].flags & IOSQE_IO_LINK);
        CHECK_UINT(drive_sqe[2].opcode, IORING_OP_SEND);
        CHECK_UINT(drive_sqe[2].addr, (uint64_t)(uintptr_t)f->sbuf);
        CHECK_MEM(f->sbuf, drive_sqe[2].len, want_get, sizeof(want_get) - 1);
    }
    settle(f, job, &g);
    CHECK_INT(g.err, RF_ERR_TIMEOUT);

    req = request("POST");
    req.body = "body";
    req.body_len = 4;
    f = drive_admit(wk, &req, &job);
    drive_drain(wk);
    if (CHECK(f != NULL) && CHECK_UINT(drive_nsqe, 3))
        CHECK_MEM(f->sbuf, drive_sqe[2].len, want_post, sizeof(want_post) - 1);
    if (f)
        settle(f, job, &g);

    /* HEAD: the response path expects no body. */
    req = request("HEAD");
    f = drive_admit(wk, &req, &job);
    if (CHECK(f != NULL)) {
        CHECK_INT(f->resp.is_head, 1);
        settle(f, job, &g);
    }
}

/* A head that does not fit the connection's buffer fails the request before any I/O. */
static void test_request_too_large(void)
{
    static char big[FC_SBUF];
    const char *hdr[1] = {big};
    rf_request req = request(NULL);
    struct got g;
    uint64_t job;
    struct fconn *f;

    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'b', sizeof(big) - 8);
    big[sizeof(big) - 1] = '\0';
    req.headers = hdr;
    req.n_headers = 1;
    f = drive_admit(wk, &req, &job);
    if (!CHECK(f != NULL))
        return;
    drive_drain(wk);
    CHECK_UINT(drive_nsqe, 0); /* no socket was asked for */
    CHECK_INT(f->state, FC_FREE);
    CHECK_INT(settle(f, job, &g), FC_FREE);
    CHECK_INT(g.n, 1);
    CHECK_INT(g.err, RF_ERR_TOO_LARGE);
    CHECK_UINT(g.tried, 0);
    CHECK_INT(g.has_ip, 0);
    CHECK_UINT(wk->busy, 0);
}

/* ---------------------------------------------------------------- reuse */

#define OK2 CL11 "2\r\n\r\nok"

/*
 * A kept-alive connection serves the next request to its origin: the request is a plain
 * send on the open socket (no connect), and its result says reused, with no connect time
 * and no address tried. Another origin gets another connection.
 */
static void test_reuse(void)
{
    static const char again[] = "HTTP/1.1 200 OK\r\nServer: again\r\nContent-Length: 3\r\n\r\nyes";
    struct rcase k;
    rf_request req = request(NULL), other = request(NULL);
    struct got g;
    uint64_t job;
    uint32_t gen;
    struct fconn *f, *f2;

    memset(&k, 0, sizeof(k));
    k.keep_body = 64;
    configure(&k);
    f = drive_start(wk, &req, &job, &gen);
    drive_recv(wk, f, gen, OK2, strlen(OK2));
    memset(&g, 0, sizeof(g));
    CHECK_UINT(window_emit(&eng->win, on_result, &g), 1);
    CHECK_INT(g.err, RF_OK);
    CHECK_INT(f->state, FC_IDLE);
    CHECK_INT(f->c.state, CONN_OPEN);
    drive_drain(wk);

    /* The same origin: the same connection, the same socket generation. */
    f2 = drive_admit(wk, &req, &job);
    CHECK(f2 == f);
    CHECK_INT(f->reused, 1);
    CHECK_INT(f->state, FC_BUSY);
    CHECK_UINT(f->c.gen, gen);
    drive_drain(wk);
    if (CHECK_UINT(drive_nsqe, 1)) {
        CHECK_UINT(drive_sqe[0].opcode, IORING_OP_SEND);
        CHECK_INT(drive_sqe[0].fd, f->c.fidx);
        CHECK_UINT(drive_sqe[0].flags, IOSQE_FIXED_FILE);
        CHECK_UINT(drive_sqe[0].user_data, ud_pack(OP_SEND, gen, f->c.idx));
        CHECK_UINT(drive_sqe[0].addr, (uint64_t)(uintptr_t)f->sbuf);
    }
    drive_recv(wk, f, gen, again, sizeof(again) - 1);
    CHECK_INT(settle(f, job, &g), FC_IDLE);
    CHECK_INT(g.n, 1);
    CHECK_INT(g.err, RF_OK);
    CHECK_INT(g.reused, 1);
    CHECK_UINT(g.tried, 1); /* what opening the connection took, reused or not */
    CHECK_UINT(g.connect_us, 0);
    CHECK_STR(g.server, "again");
    CHECK_MEM(g.body, g.body_len, "yes", 3);
    CHECK_STR(g.ip, "127.0.0.1");

    /* A request to another port while f is idle: a connection of its own. */
    f = drive_start(wk, &req, &job, &gen);
    drive_recv(wk, f, gen, OK2, strlen(OK2));
    CHECK_UINT(window_emit(&eng->win, on_result, &g), 1);
    other.url = "http://127.0.0.1:2/";
    f2 = drive_admit(wk, &other, &job);
    CHECK(f2 != NULL && f2 != f);
    CHECK_INT(f->state, FC_IDLE);
    if (f2)
        settle(f2, job, &g);
    CHECK_INT(g.err, RF_ERR_TIMEOUT);
    fconn_close(wk, f);
    drive_drain(wk);
    CHECK_UINT(wk->busy, 0);
}

/*
 * A kept-alive connection the server had closed meanwhile: the request that found it
 * closed before any byte runs once more on a new connection. Once bytes came, it is not
 * retried.
 */
static void test_stale_keepalive_retry(void)
{
    struct rcase k;
    rf_request req = request(NULL);
    struct got g;
    uint64_t job;
    uint32_t gen;
    struct fconn *f;

    memset(&k, 0, sizeof(k));
    configure(&k);
    f = drive_start(wk, &req, &job, &gen);
    drive_recv(wk, f, gen, OK2, strlen(OK2));
    window_emit(&eng->win, on_result, &g);
    drive_admit(wk, &req, &job);
    CHECK_INT(f->reused, 1);
    drive_eof(wk, f, gen);
    /* A new connection is on its way, carrying the request. */
    CHECK_INT(f->state, FC_BUSY);
    CHECK_INT(f->reused, 0);
    CHECK_INT(f->c.state, CONN_CONNECTING);
    drive_drain(wk);
    /* The request on the old socket, its teardown, then socket, connect and the request. */
    if (CHECK_UINT(drive_nsqe, 6)) {
        static const uint8_t want[6] = {IORING_OP_SEND,   IORING_OP_ASYNC_CANCEL,
                                        IORING_OP_CLOSE,  IORING_OP_SOCKET,
                                        IORING_OP_CONNECT, IORING_OP_SEND};

        for (unsigned i = 0; i < 6; i++)
            CHECK_UINT(drive_sqe[i].opcode, want[i]);
        CHECK(drive_sqe[4].flags & IOSQE_IO_LINK);
    }
    gen = drive_connect(wk, f);
    drive_recv(wk, f, gen, OK2, strlen(OK2));
    CHECK_INT(settle(f, job, &g), FC_IDLE);
    CHECK_INT(g.n, 1);
    CHECK_INT(g.err, RF_OK);
    CHECK_INT(g.reused, 0);
    CHECK_UINT(g.tried, 1);

    /* Bytes then the close: no retry, the response is cut short. */
    f = drive_start(wk, &req, &job, &gen);
    drive_recv(wk, f, gen, OK2, strlen(OK2));
    window_emit(&eng->win, on_result, &g);
    drive_admit(wk, &req, &job);
    drive_recv(wk, f, gen, "HTTP/1.1 200", 12);
    drive_eof(wk, f, gen);
    CHECK_INT(settle(f, job, &g), FC_FREE);
    CHECK_INT(g.err, RF_ERR_CLOSED);
    CHECK_INT(g.reused, 1);
}

/* Bytes on an idle connection (nobody asked): the connection is closed, not kept. */
static void test_bytes_on_idle_connection(void)
{
    struct rcase k;
    rf_request req = request(NULL);
    struct got g;
    uint64_t job;
    uint32_t gen;
    struct fconn *f;

    memset(&k, 0, sizeof(k));
    configure(&k);
    f = drive_start(wk, &req, &job, &gen);
    drive_recv(wk, f, gen, OK2, strlen(OK2));
    window_emit(&eng->win, on_result, &g);
    CHECK_INT(f->state, FC_IDLE);
    drive_recv(wk, f, gen, "HTTP/1.1 200", 12);
    CHECK_INT(f->state, FC_FREE);
    CHECK_INT(f->c.state, CONN_DOWN);
    drive_drain(wk);
    CHECK_UINT(wk->busy, 0);
}

/* The connect refused: the result names the address and the one attempt. */
static void test_connect_refused(void)
{
    rf_request req = request(NULL);
    struct got g;
    uint64_t job;
    struct fconn *f = drive_admit(wk, &req, &job);

    if (!CHECK(f != NULL))
        return;
    drive_complete(wk, ud_pack(OP_CONNECT, f->c.att[0].gen, f->c.idx), -ECONNREFUSED, 0);
    CHECK_INT(settle(f, job, &g), FC_FREE);
    CHECK_INT(g.n, 1);
    CHECK_INT(g.err, RF_ERR_REFUSED);
    CHECK_STR(g.ip, "127.0.0.1");
    CHECK_UINT(g.tried, 1);
    CHECK_INT(g.status, 0);
}

int main(void)
{
    rf_config cfg;
    rf_error err;

    rf_config_init(&cfg);
    cfg.concurrency = 2;
    cfg.threads = 1;
    cfg.window = 4;
    cfg.user_agent = "rf-unit/1";
    cfg.hosts_file = "/dev/null";
    cfg.on_result = on_result;
    err = rf_engine_create(&eng, &cfg);
    if (err == RF_ERR_SYSTEM)
        return check_skip("test_fetch", "io_uring is not available");
    if (!CHECK_INT(err, RF_OK))
        return check_finish("test_fetch");
    wk = &eng->workers[0];
    drive_drain(wk);

    test_request_on_the_wire();
    test_request_too_large();
    test_responses();
    test_large_body();
    test_guard_page();
    test_reuse();
    test_stale_keepalive_retry();
    test_bytes_on_idle_connection();
    test_connect_refused();

    drive_drain(wk);
    rf_engine_destroy(eng);
    return check_finish("test_fetch");
}
