/*
 * test_http1.c - HTTP/1.1 on the wire: responses fed to a slot as recv completions (whole,
 * split at every byte, byte by byte, randomly split, and against a guard page), and the
 * request writer's exact bytes.
 *
 * A real engine supplies the worker, its ring and its buffer ring; the test plays the
 * kernel: it writes the response into provided buffers and hands conn_handle_cqe() the
 * completions a multishot recv would post. Nothing is connected: the operations the
 * engine queues (cancel, close, recv on an empty descriptor slot) fail harmlessly and
 * are drained.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "drive.h"

#define URL "http://Origin.Test:8080/p?q=1"

static rf_engine *eng;
static struct worker *wk;

/* A copy of the one result a case delivers. */
struct got {
    int n;
    rf_error err;
    int status;
    uint64_t body_bytes;
    int64_t clen;
    char loc[256], ctype[64], server[64], body[256];
    int has_loc, has_ctype, has_server, has_body;
    size_t body_len;
    int reused;
};

static void copy_str(char *dst, size_t cap, int *has, const char *s)
{
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
    copy_str(g->loc, sizeof(g->loc), &g->has_loc, r->location);
    copy_str(g->ctype, sizeof(g->ctype), &g->has_ctype, r->content_type);
    copy_str(g->server, sizeof(g->server), &g->has_server, r->server);
    g->has_body = r->body != NULL;
    g->body_len = r->body_len;
    if (r->body && r->body_len < sizeof(g->body))
        memcpy(g->body, r->body, r->body_len);
}

static struct conn *start(const rf_request *req, uint64_t *job, uint32_t *gen)
{
    return drive_start(wk, req, job, gen);
}

static void drain(void)
{
    drive_drain(wk);
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
    {"captured names in any case", NULL,
     "HTTP/1.1 301 Moved\r\nLOCATION: http://x/y\r\ncontent-TYPE: a/b; charset=utf-8\r\n"
     "sErVeR: s s\r\ncontent-length: 0\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 301, 0, 0, "http://x/y", "a/b; charset=utf-8", "s s", NULL, 1},
    {"first of repeated headers", NULL,
     "HTTP/1.1 302 Found\r\nLocation: /one\r\nServer: a\r\nLocation: /two\r\nServer: b\r\n"
     "Content-Length: 0\r\n\r\n",
     0, 0, 0, 64, 0, RF_OK, 302, 0, 0, "/one", NULL, "a", NULL, 1},
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

static void configure(const struct rcase *k)
{
    eng->cfg.max_header_bytes = k->max_header ? k->max_header : 65536;
    eng->cfg.max_body = k->max_body;
    eng->cfg.keep_body = k->keep_body;
    eng->cfg.keepalive = !k->no_keepalive;
}

/* Deliver the case's result and free its slot. Returns the slot's state before that. */
static int settle(struct conn *c, uint64_t job, struct got *g)
{
    uint64_t emitted;

    memset(g, 0, sizeof(*g));
    return drive_settle(wk, c, job, on_result, g, &emitted);
}

/* Feed the response cut at `cuts` (ascending offsets inside it); report the first mismatch. */
static int run_split(const struct rcase *k, const size_t *cuts, size_t ncuts, const char *how)
{
    size_t len = strlen(k->resp), from = 0;
    rf_request req;
    struct got g;
    uint64_t job;
    uint32_t gen;
    struct conn *c;
    int before = check_failures(), state;

    configure(k);
    memset(&req, 0, sizeof(req));
    req.url = URL;
    req.method = k->method;
    c = start(&req, &job, &gen);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;

        /* A provided buffer holds at most buf_size bytes: the kernel splits the same way. */
        while (to > from) {
            size_t n = to - from < wk->ring.buf_size ? to - from : wk->ring.buf_size;

            drive_recv(wk, c, gen, k->resp + from, n);
            from += n;
        }
    }
    if (k->eof)
        drive_eof(wk, c, gen);
    state = settle(c, job, &g);

    CHECK_INT(g.n, 1);
    CHECK_INT(g.err, k->err);
    CHECK_INT(g.status, k->status);
    if (k->err == RF_ERR_TOO_LARGE && k->max_body) {
        /* Counted up to the read that crossed the cap: where that is depends on the reads. */
        CHECK(g.body_bytes > k->max_body);
        CHECK(g.body_bytes <= k->body_bytes);
    } else {
        CHECK_UINT(g.body_bytes, k->body_bytes);
    }
    CHECK_INT(g.clen, k->clen);
    CHECK_INT(g.has_loc, k->loc != NULL);
    CHECK_STR(g.loc, k->loc ? k->loc : "");
    CHECK_INT(g.has_ctype, k->ctype != NULL);
    CHECK_STR(g.ctype, k->ctype ? k->ctype : "");
    CHECK_INT(g.has_server, k->server != NULL);
    CHECK_STR(g.server, k->server ? k->server : "");
    CHECK_INT(g.has_body, k->kept != NULL);
    CHECK_MEM(g.body, g.has_body ? g.body_len : 0, k->kept ? k->kept : "",
              k->kept ? strlen(k->kept) : 0);
    CHECK_INT(g.reused, 0);
    CHECK_INT(state, k->idle ? C_IDLE : C_FREE);
    CHECK_UINT(wk->busy, 0);
    if (check_failures() != before) {
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
        for (int round = 0; round < 50; round++) {
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
    k.keep_body = 0;
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
 * The callbacks against a guard page: each piece is given to the slot's parser so that
 * its last byte sits just before an unreadable page, and nothing may read past it.
 */
static void test_guard_page(void)
{
    for (size_t i = 0; i < NCASES; i++) {
        const struct rcase *k = &cases[i];
        size_t len = strlen(k->resp);
        int before = check_failures();

        for (int bytewise = 0; bytewise < 2; bytewise++) {
            size_t step = bytewise ? 1 : len;
            rf_request req;
            struct got g;
            uint64_t job;
            uint32_t gen;
            struct conn *c;
            llhttp_errno_t err = HPE_OK;

            configure(k);
            memset(&req, 0, sizeof(req));
            req.url = URL;
            req.method = k->method;
            c = start(&req, &job, &gen);
            c->got_bytes = len > 0;
            for (size_t off = 0; off < len && err == HPE_OK; off += step) {
                size_t n = len - off < step ? len - off : step;
                char *p = guard_copy(k->resp + off, n);

                err = llhttp_execute(&c->parser, p, n);
                guard_free(p, n);
            }
            if (err == HPE_PAUSED && c->msg_done)
                conn_finish(wk, c, RF_OK);
            else if (err != HPE_OK)
                conn_finish(wk, c, c->fail ? (rf_error)c->fail : RF_ERR_PROTOCOL);
            else if (k->eof)
                drive_eof(wk, c, gen);
            settle(c, job, &g);
            CHECK_INT(g.err, k->err);
            CHECK_INT(g.status, k->status);
            if (!(k->err == RF_ERR_TOO_LARGE && k->max_body))
                CHECK_UINT(g.body_bytes, k->body_bytes);
            CHECK_STR(g.loc, k->loc ? k->loc : "");
            CHECK_STR(g.server, k->server ? k->server : "");
        }
        if (check_failures() != before)
            fprintf(stderr, "  guard page, case \"%s\"\n", k->name);
    }
}

/* ---------------------------------------------------------------- requests */

struct qcase {
    const char *name;
    const char *url;
    const char *method;
    const char *const *headers;
    size_t n_headers;
    const char *body;
    int keepalive;
    int no_ua;
    const char *want; /* the exact head, NULL when too large */
    int is_head;
};

static const char *const h_custom[] = {"X-Req: 1", "Accept-Encoding: gzip"};
static const char *const h_own[] = {"host: other.example", "user-agent: mine/2",
                                    "ACCEPT: text/html", "Connection: keep-alive"};
static const char *const h_clen[] = {"Content-Length: 3"};
static const char *const h_hostname[] = {"Hostname: not-the-host"};

static const struct qcase qcases[] = {
    {"plain GET", "http://example.com/a/b?c=d", NULL, NULL, 0, NULL, 1, 0,
     "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: rf-unit/1\r\n"
     "Accept: */*\r\n\r\n", 0},
    {"no path", "http://example.com", NULL, NULL, 0, NULL, 1, 0,
     "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n\r\n", 0},
    {"query without path", "http://example.com?x=1", NULL, NULL, 0, NULL, 1, 0,
     "GET /?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: rf-unit/1\r\n"
     "Accept: */*\r\n\r\n", 0},
    {"port in Host", "http://u:p@Example.com:8080/x#frag", NULL, NULL, 0, NULL, 1, 0,
     "GET /x HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: rf-unit/1\r\n"
     "Accept: */*\r\n\r\n", 0},
    {"IPv6 Host", "http://[::1]:81/", NULL, NULL, 0, NULL, 1, 0,
     "GET / HTTP/1.1\r\nHost: [::1]:81\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n\r\n", 0},
    {"no keep-alive", "http://h/", NULL, NULL, 0, NULL, 0, 0,
     "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n"
     "Connection: close\r\n\r\n", 0},
    {"no User-Agent", "http://h/", NULL, NULL, 0, NULL, 1, 1,
     "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n", 0},
    {"custom headers after ours", "http://h/", "DELETE", h_custom, 2, NULL, 1, 0,
     "DELETE / HTTP/1.1\r\nHost: h\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n"
     "X-Req: 1\r\nAccept-Encoding: gzip\r\n\r\n", 0},
    {"caller's own Host, User-Agent, Accept, Connection", "http://h/", NULL, h_own, 4, NULL, 0, 0,
     "GET / HTTP/1.1\r\nhost: other.example\r\nuser-agent: mine/2\r\nACCEPT: text/html\r\n"
     "Connection: keep-alive\r\n\r\n", 0},
    {"a longer name is not Host", "http://h/", NULL, h_hostname, 1, NULL, 1, 0,
     "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n"
     "Hostname: not-the-host\r\n\r\n", 0},
    {"body", "http://h/up", "POST", NULL, 0, "abc", 1, 0,
     "POST /up HTTP/1.1\r\nHost: h\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n"
     "Content-Length: 3\r\n\r\n", 0},
    {"empty body", "http://h/up", "PUT", NULL, 0, "", 1, 0,
     "PUT /up HTTP/1.1\r\nHost: h\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n"
     "Content-Length: 0\r\n\r\n", 0},
    {"caller's Content-Length", "http://h/up", "POST", h_clen, 1, "abc", 1, 0,
     "POST /up HTTP/1.1\r\nHost: h\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n"
     "Content-Length: 3\r\n\r\n", 0},
    {"HEAD", "http://h/", "HEAD", NULL, 0, NULL, 1, 0,
     "HEAD / HTTP/1.1\r\nHost: h\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n\r\n", 1},
};

static void check_request(const struct qcase *q)
{
    struct rf_url u;
    struct wentry *w;
    struct conn *c;
    rf_request req;
    uint64_t job;
    uint32_t ua_len = eng->ua_len;
    int ret, before = check_failures();

    memset(&req, 0, sizeof(req));
    req.url = q->url;
    req.method = q->method;
    req.headers = q->headers;
    req.n_headers = q->n_headers;
    req.body = q->body;
    req.body_len = q->body ? strlen(q->body) : 0;
    CHECK_INT(window_admit(&eng->win, &req, &job), 0);
    w = window_at(&eng->win, job);
    CHECK_INT(url_parse(w->str, w->url_len, &u), 0);
    c = pool_take(wk, u.scheme, "x", 1, u.port, 0);
    eng->cfg.keepalive = q->keepalive;
    if (q->no_ua)
        eng->ua_len = 0;
    c->is_head = !q->is_head;
    ret = http1_write_request(wk, c, w, &u, w->str);
    eng->ua_len = ua_len;
    if (q->want) {
        CHECK_INT(ret, 0);
        CHECK_MEM(c->sbuf, c->slen, q->want, strlen(q->want));
        CHECK_UINT(c->soff, 0);
        CHECK_UINT(c->body_off, 0);
        CHECK_INT(c->is_head, q->is_head);
    } else {
        CHECK_INT(ret, -RF_ERR_TOO_LARGE);
    }
    if (check_failures() != before)
        fprintf(stderr, "  request \"%s\"\n", q->name);
    pool_put_free(wk, c);
    w->state = W_DONE;
    {
        struct got g;

        memset(&g, 0, sizeof(g));
        CHECK_UINT(window_emit(&eng->win, on_result, &g), 1);
    }
}

static void test_requests(void)
{
    static char big[CONN_SBUF];
    const char *hdr[1] = {big};
    struct qcase q;

    for (size_t i = 0; i < sizeof(qcases) / sizeof(qcases[0]); i++)
        check_request(&qcases[i]);

    /* A head that does not fit the slot's buffer is refused, not truncated. */
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'b', sizeof(big) - 8);
    big[sizeof(big) - 1] = '\0';
    memset(&q, 0, sizeof(q));
    q.name = "too large";
    q.url = "http://h/";
    q.headers = hdr;
    q.n_headers = 1;
    q.keepalive = 1;
    check_request(&q);
    /* One that fits exactly: 16384 bytes in all. */
    {
        static char want[CONN_SBUF + 1];
        const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: rf-unit/1\r\nAccept: */*\r\n";
        size_t fixed = strlen(pre) + 4; /* the header's CRLF and the blank line */
        size_t hlen = CONN_SBUF - fixed;

        big[hlen] = '\0';
        memcpy(want, pre, strlen(pre));
        memcpy(want + strlen(pre), big, hlen);
        memcpy(want + strlen(pre) + hlen, "\r\n\r\n", 5);
        q.name = "exactly full";
        q.want = want;
        check_request(&q);
        CHECK_UINT(strlen(want), CONN_SBUF);
    }
}

/* What a caller passes can never add a line to the request. */
static void test_request_validation(void)
{
    const char *good[] = {"X-A: 1", "Accept:*/*"};
    const char *crlf[] = {"X-A: 1\r\nX-B: 2"};
    const char *lf[] = {"X-A: 1\n"};
    const char *nocolon[] = {"X-A 1"};
    const char *empty_name[] = {": v"};

    CHECK(http1_valid_request("GET", good, 2));
    CHECK(http1_valid_request("M-SEARCH", NULL, 0));
    CHECK(http1_valid_request("PURGE~!", NULL, 0));
    CHECK(!http1_valid_request("", NULL, 0));
    CHECK(!http1_valid_request("GET /x", NULL, 0));
    CHECK(!http1_valid_request("GET\r\nX:", NULL, 0));
    CHECK(!http1_valid_request("G(T", NULL, 0));
    CHECK(!http1_valid_request("GET", crlf, 1));
    CHECK(!http1_valid_request("GET", lf, 1));
    CHECK(!http1_valid_request("GET", nocolon, 1));
    CHECK(!http1_valid_request("GET", empty_name, 1));
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
        return check_skip("test_http1", "io_uring is not available");
    if (!CHECK_INT(err, RF_OK))
        return check_finish("test_http1");
    wk = &eng->workers[0];
    drain();

    test_request_validation();
    test_requests();
    test_responses();
    test_large_body();
    test_guard_page();

    rf_engine_destroy(eng);
    return check_finish("test_http1");
}
