/*
 * test_http1.c - proto/http1.c: the one response path (http1_resp with a recording sink)
 * fed whole, cut at every offset, byte by byte, randomly, and against a guard page; its
 * checks (status under 100, Content-Length over INT64_MAX, interim 1xx against the final
 * 101, no body after HEAD/204/304, the header byte cap, the keep-alive decision) and
 * pipelined responses one after another; then the request writer's exact bytes and what
 * it refuses. The fetch engine's use of the same path is test_fetch's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/http1.h"

/* ---------------------------------------------------------------- a recording sink */

/*
 * Everything the sink hears, as one trace: "name=value;" per header line (pieces joined),
 * "[STATUS]" or "[STATUS cl=N]" at the end of each head, "<restart>" when an interim
 * response ends. The body is kept apart.
 */
struct rec {
    char trace[2048];
    size_t tlen;
    char name[256], value[1024];
    size_t nlen, vlen;
    int in_value;        /* a VALUE piece came since the last NAME */
    char body[4096];
    size_t blen;
    uint64_t body_bytes;
    int restarts;
    int bad_order;       /* a NAME piece after a VALUE piece of the same line */
    rf_error body_err;   /* what body() returns (a sink may fail the response) */
    rf_error head_err;   /* what headers_done() returns */
};

static void trace(struct rec *r, const char *s, size_t n)
{
    if (n > sizeof(r->trace) - 1 - r->tlen)
        n = sizeof(r->trace) - 1 - r->tlen;
    memcpy(r->trace + r->tlen, s, n);
    r->tlen += n;
    r->trace[r->tlen] = '\0';
}

static rf_error on_piece(void *ctx, enum http1_piece kind, const char *at, size_t len)
{
    struct rec *r = ctx;

    switch (kind) {
    case HTTP1_NAME:
        r->bad_order |= r->in_value;
        if (len > sizeof(r->name) - r->nlen)
            len = sizeof(r->name) - r->nlen;
        memcpy(r->name + r->nlen, at, len);
        r->nlen += len;
        break;
    case HTTP1_VALUE:
        r->in_value = 1;
        if (len > sizeof(r->value) - r->vlen)
            len = sizeof(r->value) - r->vlen;
        memcpy(r->value + r->vlen, at, len);
        r->vlen += len;
        break;
    case HTTP1_END:
        for (size_t i = 0; i < r->nlen; i++) /* names in any case: compare lower-cased */
            if (r->name[i] >= 'A' && r->name[i] <= 'Z')
                r->name[i] = (char)(r->name[i] + 32);
        trace(r, r->name, r->nlen);
        trace(r, "=", 1);
        trace(r, r->value, r->vlen);
        trace(r, ";", 1);
        r->nlen = r->vlen = 0;
        r->in_value = 0;
        break;
    }
    return RF_OK;
}

static rf_error on_headers_done(void *ctx, const struct http1_resp *h)
{
    struct rec *r = ctx;
    char buf[64];

    if (h->parser.flags & F_CONTENT_LENGTH)
        snprintf(buf, sizeof(buf), "[%d cl=%llu]", h->parser.status_code,
                 (unsigned long long)h->parser.content_length);
    else
        snprintf(buf, sizeof(buf), "[%d]", h->parser.status_code);
    trace(r, buf, strlen(buf));
    return r->head_err;
}

static rf_error on_body(void *ctx, const char *at, size_t len)
{
    struct rec *r = ctx;
    size_t n = len < sizeof(r->body) - r->blen ? len : sizeof(r->body) - r->blen;

    memcpy(r->body + r->blen, at, n);
    r->blen += n;
    r->body_bytes += len;
    return r->body_err;
}

static void on_restart(void *ctx)
{
    struct rec *r = ctx;

    r->restarts++;
    trace(r, "<restart>", 9);
}

static const struct http1_sink sink = {on_piece, on_headers_done, on_body, on_restart};

/* ---------------------------------------------------------------- the cases */

struct rcase {
    const char *name;
    int head;             /* the request was HEAD */
    const char *resp;
    int eof;              /* the peer closes after the bytes */
    uint32_t max_hdr;     /* 0: 65536 */
    rf_error sink_body;   /* what the sink's body() returns */
    /* expected */
    int ret;              /* HTTP1_DONE, HTTP1_ERROR, or HTTP1_MORE (still waiting) */
    rf_error fail;        /* r->fail after HTTP1_ERROR */
    const char *trace;
    const char *body;
    size_t tail;          /* bytes after the response that http1_resp_feed() leaves */
    int keep;             /* http1_resp_keepalive() after HTTP1_DONE */
};

#define CL11 "HTTP/1.1 200 OK\r\nContent-Length: "
#define D HTTP1_DONE
#define E HTTP1_ERROR
#define M HTTP1_MORE

static const struct rcase cases[] = {
    {"content-length", 0,
     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: t/1\r\nContent-Length: 5\r\n\r\n"
     "hello", 0, 0, RF_OK,
     D, RF_OK, "content-type=text/plain;server=t/1;content-length=5;[200 cl=5]", "hello", 0, 1},
    {"empty body", 0, CL11 "0\r\n\r\n", 0, 0, RF_OK, D, RF_OK, "content-length=0;[200 cl=0]", "",
     0, 1},
    {"chunked, extensions and trailers", 0,
     "HTTP/1.1 200 OK\r\nServer: early\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;name=value\r\nhello\r\n6;a;b=\"c d\"\r\n world\r\nA\r\n0123456789\r\n"
     "0;last\r\nX-Trailer: 1\r\nServer: late\r\n\r\n", 0, 0, RF_OK,
     D, RF_OK, "server=early;transfer-encoding=chunked;[200]x-trailer=1;server=late;",
     "hello world0123456789", 0, 1},
    {"close-delimited", 0, "HTTP/1.1 200 OK\r\nContent-Type: a/b\r\n\r\nsome body", 1, 0, RF_OK,
     D, RF_OK, "content-type=a/b;[200]", "some body", 0, 0},
    {"close-delimited, empty", 0, "HTTP/1.1 200 OK\r\n\r\n", 1, 0, RF_OK, D, RF_OK, "[200]", "", 0,
     0},
    {"close-delimited, no close yet", 0, "HTTP/1.1 200 OK\r\n\r\nsome", 0, 0, RF_OK, M, RF_OK,
     "[200]", "some", 0, 0},
    /* No body where RFC 9112 6.3 says there is none, whatever the headers say: what
     * follows is the next response's. */
    {"HEAD", 1, CL11 "1234\r\nContent-Type: text/html\r\n\r\n", 0, 0, RF_OK, D, RF_OK,
     "content-length=1234;content-type=text/html;[200 cl=1234]", "", 0, 1},
    {"HEAD, chunked", 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, RF_OK, D,
     RF_OK, "transfer-encoding=chunked;[200]", "", 0, 1},
    {"HEAD, then bytes", 1, CL11 "3\r\n\r\nabc", 0, 0, RF_OK, D, RF_OK,
     "content-length=3;[200 cl=3]", "", 3, 1},
    {"204", 0, "HTTP/1.1 204 No Content\r\nContent-Type: x/y\r\n\r\n", 0, 0, RF_OK, D, RF_OK,
     "content-type=x/y;[204]", "", 0, 1},
    {"204 with Content-Length and bytes", 0,
     "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc", 0, 0, RF_OK, D, RF_OK,
     "content-length=3;[204 cl=3]", "", 3, 1},
    {"304 with Content-Length", 0, "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", 0,
     0, RF_OK, D, RF_OK, "content-length=100;[304 cl=100]", "", 0, 1},
    /* Interim responses are skipped (the sink hears a restart); 101 is final. */
    {"1xx first", 0,
     "HTTP/1.1 100 Continue\r\nServer: interim\r\n\r\n"
     "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nLocation: /early\r\n\r\n"
     "HTTP/1.1 201 Created\r\nLocation: /new\r\nContent-Length: 2\r\n\r\nok", 0, 0, RF_OK,
     D, RF_OK,
     "server=interim;[100]<restart>link=</s.css>; rel=preload;location=/early;[103]<restart>"
     "location=/new;content-length=2;[201 cl=2]", "ok", 0, 1},
    {"1xx with Content-Length", 0,
     "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n"
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!", 0, 0, RF_OK,
     D, RF_OK, "content-length=5;[100 cl=5]<restart>content-length=1;[200 cl=1]", "!", 0, 1},
    {"101 is final", 0,
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
     "\x81\x05hello", 0, 0, RF_OK,
     D, RF_OK, "upgrade=websocket;connection=Upgrade;[101]", "", 7, 0},
    /* The checks of on_headers_complete: a status under 100 reads as "no status", and a
     * length over INT64_MAX as a negative one. */
    {"status 020", 0, "HTTP/1.1 020 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, RF_OK, E,
     RF_ERR_PROTOCOL, "content-length=0;", "", 0, 0},
    {"status 099", 0, "HTTP/1.1 099 Low\r\n\r\n", 0, 0, RF_OK, E, RF_ERR_PROTOCOL, "", "", 0, 0},
    {"status 100 is interim, not refused", 0,
     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, RF_OK, D,
     RF_OK, "[100]<restart>content-length=0;[200 cl=0]", "", 0, 1},
    {"Content-Length INT64_MAX + 1", 0, CL11 "9223372036854775808\r\n\r\n", 0, 0, RF_OK, E,
     RF_ERR_PROTOCOL, "content-length=9223372036854775808;", "", 0, 0},
    {"Content-Length UINT64_MAX", 0, CL11 "18446744073709551615\r\n\r\n", 0, 0, RF_OK, E,
     RF_ERR_PROTOCOL, "content-length=18446744073709551615;", "", 0, 0},
    {"Content-Length past 64 bits", 0, CL11 "18446744073709551616\r\n\r\n", 0, 0, RF_OK, E,
     RF_ERR_PROTOCOL, "", "", 0, 0},
    {"Content-Length INT64_MAX, HEAD", 1, CL11 "9223372036854775807\r\n\r\n", 0, 0, RF_OK, D,
     RF_OK, "content-length=9223372036854775807;[200 cl=9223372036854775807]", "", 0, 1},
    /* Header bytes: reason phrase, then name + 4 + value per field: 2 + 13 + 19 = 34. */
    {"headers at the cap", 0, "HTTP/1.1 200 OK\r\nServer: abc\r\nContent-Length: 0\r\n\r\n", 0, 34,
     RF_OK, D, RF_OK, "server=abc;content-length=0;[200 cl=0]", "", 0, 1},
    {"headers over the cap", 0, "HTTP/1.1 200 OK\r\nServer: abc\r\nContent-Length: 0\r\n\r\n", 0,
     33, RF_OK, E, RF_ERR_TOO_LARGE, "server=abc;", "", 0, 0},
    /* The cap starts over for the final response after a 1xx: 8 + 9 + 6 and 4 + 18 + 1. */
    {"headers at the cap after 1xx", 0,
     "HTTP/1.1 100 Continue\r\nX-Pad: 123456\r\n\r\nHTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\n",
     0, 23, RF_OK, D, RF_OK, "x-pad=123456;[100]<restart>content-length=0;[200 cl=0]", "", 0,
     1},
    {"garbage", 0, "HTXP/1.1 200 OK\r\n\r\n", 0, 0, RF_OK, E, RF_ERR_PROTOCOL, "", "", 0, 0},
    {"bad status", 0, "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, RF_OK, E,
     RF_ERR_PROTOCOL, "", "", 0, 0},
    {"bad chunk size", 0,
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 0, 0, RF_OK, E,
     RF_ERR_PROTOCOL, "transfer-encoding=chunked;[200]", "", 0, 0},
    {"truncated body then close", 0, CL11 "10\r\n\r\n01234", 1, 0, RF_OK, E, RF_ERR_CLOSED,
     "content-length=10;[200 cl=10]", "01234", 0, 0},
    {"close before any byte", 0, "", 1, 0, RF_OK, E, RF_ERR_CLOSED, "", "", 0, 0},
    {"truncated body, no close", 0, CL11 "10\r\n\r\n01234", 0, 0, RF_OK, M, RF_OK,
     "content-length=10;[200 cl=10]", "01234", 0, 0},
    {"bytes after the response", 0, CL11 "2\r\n\r\nokHTTP/1.1 200 OK\r\n", 0, 0, RF_OK, D, RF_OK,
     "content-length=2;[200 cl=2]", "ok", 17, 1},
    /* A sink's error fails the response with that error. */
    {"the sink refuses the body", 0, CL11 "1\r\n\r\n!", 0, 0, RF_ERR_TOO_LARGE, E,
     RF_ERR_TOO_LARGE, "content-length=1;[200 cl=1]", "!", 0, 0},
    /* The keep-alive decision. */
    {"Connection: close", 0, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
     0, 0, RF_OK, D, RF_OK, "connection=close;content-length=2;[200 cl=2]", "ok", 0, 0},
    {"HTTP/1.0", 0, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 0, RF_OK, D, RF_OK,
     "content-length=2;[200 cl=2]", "ok", 0, 0},
    {"HTTP/1.0 keep-alive", 0,
     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 0, 0, RF_OK, D,
     RF_OK, "connection=keep-alive;content-length=2;[200 cl=2]", "ok", 0, 1},
    {"split values and names in any case", 0,
     "HTTP/1.1 301 Moved\r\nLOCATION: http://x/y\r\ncontent-TYPE: a/b; charset=utf-8\r\n"
     "X-Empty:\r\nsErVeR: s s\r\ncontent-length: 0\r\n\r\n", 0, 0, RF_OK, D, RF_OK,
     "location=http://x/y;content-type=a/b; charset=utf-8;x-empty=;server=s s;"
     "content-length=0;[301 cl=0]", "", 0, 1},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

struct outcome {
    int ret;
    size_t used;  /* bytes taken, up to the end of the response on HTTP1_DONE */
    int keep;
};

/* Feed the response cut at `cuts` (ascending offsets inside it), each piece through
 * `copy` (a guard page, or none), then the close if the case has one. */
static struct outcome feed(const struct rcase *k, struct http1_resp *h, const size_t *cuts,
                           size_t ncuts, int guard)
{
    size_t len = strlen(k->resp), from = 0;
    struct outcome o = {HTTP1_MORE, 0, -1};

    for (size_t i = 0; i <= ncuts && o.ret == HTTP1_MORE; i++) {
        size_t to = i < ncuts ? cuts[i] : len, used = 0;
        char *p;

        if (to == from)
            continue;
        p = guard ? guard_copy(k->resp + from, to - from) : (char *)k->resp + from;
        o.ret = http1_resp_feed(h, p, to - from, &used);
        if (guard)
            guard_free(p, to - from);
        if (o.ret == HTTP1_MORE)
            CHECK_UINT(used, to - from);
        o.used = from + (o.ret == HTTP1_ERROR ? 0 : used);
        from = to;
    }
    if (o.ret == HTTP1_MORE && k->eof)
        o.ret = http1_resp_eof(h);
    if (o.ret == HTTP1_DONE)
        o.keep = http1_resp_keepalive(&h->parser);
    return o;
}

static int run_split(const struct rcase *k, const size_t *cuts, size_t ncuts, int guard,
                     const char *how)
{
    struct http1_resp h;
    struct rec r;
    struct outcome o;
    size_t len = strlen(k->resp);
    int before = check_failures();

    memset(&r, 0, sizeof(r));
    r.body_err = k->sink_body;
    http1_resp_init(&h, &sink, &r, k->max_hdr ? k->max_hdr : 65536);
    http1_resp_next(&h, k->head);
    o = feed(k, &h, cuts, ncuts, guard);

    CHECK_INT(o.ret, k->ret);
    if (k->ret == HTTP1_ERROR)
        CHECK_INT(h.fail, k->fail);
    CHECK_STR(r.trace, k->trace);
    CHECK_MEM(r.body, r.blen, k->body, strlen(k->body));
    CHECK_UINT(r.body_bytes, strlen(k->body));
    CHECK_INT(r.bad_order, 0);
    if (k->ret == HTTP1_DONE) {
        CHECK_UINT(o.used, len - k->tail);
        if (k->keep >= 0)
            CHECK_INT(o.keep, k->keep);
        CHECK_INT(h.done, 1);
    }
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

/* Any split of the input gives the same result: whole, two pieces at every offset, byte by
 * byte, and random pieces. */
static void test_responses(void)
{
    static size_t cuts[1 << 16];

    for (size_t i = 0; i < NCASES; i++) {
        const struct rcase *k = &cases[i];
        size_t len = strlen(k->resp);

        if (run_split(k, NULL, 0, 0, "whole"))
            continue;
        for (size_t at = 1; at < len; at++) {
            cuts[0] = at;
            if (run_split(k, cuts, 1, 0, "two pieces"))
                break;
        }
        for (size_t at = 1; at < len; at++)
            cuts[at - 1] = at;
        if (len > 1 && run_split(k, cuts, len - 1, 0, "byte by byte"))
            continue;
        for (int round = 0; round < 50; round++) {
            size_t n = 0, at = 0;

            for (;;) {
                at += 1 + rnd() % 16;
                if (at >= len)
                    break;
                cuts[n++] = at;
            }
            if (run_split(k, cuts, n, 0, "random"))
                break;
        }
    }
}

/* Each piece placed so its last byte sits just before an unreadable page: nothing in the
 * path (llhttp, the checks, the sink's pointers) may read past what it was given. */
static void test_guard_page(void)
{
    static size_t cuts[1 << 16];

    for (size_t i = 0; i < NCASES; i++) {
        const struct rcase *k = &cases[i];
        size_t len = strlen(k->resp);

        if (run_split(k, NULL, 0, 1, "guard page, whole"))
            continue;
        for (size_t at = 1; at < len; at++)
            cuts[at - 1] = at;
        if (len > 1)
            run_split(k, cuts, len - 1, 1, "guard page, byte by byte");
    }
}

/* A body larger than any one read, over several reads. */
static void test_large_body(void)
{
    static char resp[100000];
    struct http1_resp h;
    struct rec r;
    size_t used = 0, n;

    n = (size_t)snprintf(resp, sizeof(resp), CL11 "80000\r\n\r\n");
    memset(resp + n, 'x', 80000);
    memset(&r, 0, sizeof(r));
    http1_resp_init(&h, &sink, &r, 65536);
    http1_resp_next(&h, 0);
    CHECK_INT(http1_resp_feed(&h, resp, 10, &used), HTTP1_MORE);
    CHECK_INT(http1_resp_feed(&h, resp + 10, n - 9, &used), HTTP1_MORE);
    CHECK_INT(http1_resp_feed(&h, resp + n + 1, 39999, &used), HTTP1_MORE);
    CHECK_UINT(r.body_bytes, 40000);
    CHECK_INT(http1_resp_feed(&h, resp + n + 40000, 40000, &used), HTTP1_DONE);
    CHECK_UINT(used, 40000);
    CHECK_UINT(r.body_bytes, 80000);
    CHECK_STR(r.trace, "content-length=80000;[200 cl=80000]");
    CHECK_INT(http1_resp_keepalive(&h.parser), 1);
}

/*
 * Responses back to back on one stream, each parsed after http1_resp_next() for its own
 * request (HEAD or not): the whole stream at once, and cut at every offset.
 */
static void test_pipelined(void)
{
    static const struct {
        int head;
        const char *resp, *trace, *body;
        int keep;
    } seq[] = {
        {0, CL11 "2\r\n\r\nok", "content-length=2;[200 cl=2]", "ok", 1},
        {0, "HTTP/1.1 204 No Content\r\n\r\n", "[204]", "", 1},
        {1, CL11 "1234\r\n\r\n", "content-length=1234;[200 cl=1234]", "", 1},
        {0, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n0\r\n\r\n",
         "[100]<restart>transfer-encoding=chunked;[200]", "abc", 1},
        {0, "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 1\r\n\r\n!",
         "connection=close;content-length=1;[404 cl=1]", "!", 0},
    };
    enum { N = sizeof(seq) / sizeof(seq[0]) };
    char stream[1024];
    size_t len = 0, ends[N];

    for (size_t i = 0; i < N; i++) {
        size_t l = strlen(seq[i].resp);

        memcpy(stream + len, seq[i].resp, l);
        len += l;
        ends[i] = len;
    }
    /* step 0: all at once; else pieces of `step` bytes, the last cut anywhere */
    for (size_t step = 0; step <= len; step++) {
        struct http1_resp h;
        struct rec r;
        size_t off = 0, k = 0, piece_end = step ? step : len;
        int before = check_failures();

        memset(&r, 0, sizeof(r));
        http1_resp_init(&h, &sink, &r, 65536);
        http1_resp_next(&h, seq[0].head);
        while (off < len && k < N) {
            size_t used = 0, n = (piece_end < len ? piece_end : len) - off;
            int ret = http1_resp_feed(&h, stream + off, n, &used);

            if (ret == HTTP1_ERROR) {
                CHECK(0);
                break;
            }
            off += used;
            if (ret == HTTP1_MORE) {
                piece_end += step ? step : len;
                continue;
            }
            /* one response done: it ended exactly where it should */
            CHECK_UINT(off, ends[k]);
            CHECK_STR(r.trace, seq[k].trace);
            CHECK_MEM(r.body, r.blen, seq[k].body, strlen(seq[k].body));
            CHECK_INT(http1_resp_keepalive(&h.parser), seq[k].keep);
            memset(&r, 0, sizeof(r));
            if (++k < N)
                http1_resp_next(&h, seq[k].head);
        }
        CHECK_UINT(k, N);
        CHECK_UINT(off, len);
        if (check_failures() != before) {
            fprintf(stderr, "  pipelined, pieces of %zu bytes\n", step);
            break;
        }
    }
}

/* Without a sink (bench) the same checks and decisions hold. */
static void test_no_sink(void)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nX: y\r\nContent-Length: 3\r\n\r\nabcHTTP";
    static const char big[] = CL11 "9223372036854775808\r\n\r\n";
    static const char cap[] = "HTTP/1.1 200 OK\r\nServer: abc\r\nContent-Length: 0\r\n\r\n";
    struct http1_resp h;
    size_t used = 0;

    http1_resp_init(&h, NULL, NULL, 65536);
    http1_resp_next(&h, 0);
    CHECK_INT(http1_resp_feed(&h, ok, sizeof(ok) - 1, &used), HTTP1_DONE);
    CHECK_UINT(used, sizeof(ok) - 1 - 4);
    CHECK_INT(h.parser.status_code, 200);
    CHECK_INT(http1_resp_keepalive(&h.parser), 1);

    http1_resp_init(&h, NULL, NULL, 65536);
    http1_resp_next(&h, 0);
    CHECK_INT(http1_resp_feed(&h, big, sizeof(big) - 1, &used), HTTP1_ERROR);
    CHECK_INT(h.fail, RF_ERR_PROTOCOL);

    http1_resp_init(&h, NULL, NULL, 33);
    http1_resp_next(&h, 0);
    CHECK_INT(http1_resp_feed(&h, cap, sizeof(cap) - 1, &used), HTTP1_ERROR);
    CHECK_INT(h.fail, RF_ERR_TOO_LARGE);
}

/* A sink that refuses the head fails the response with its error, before any body. */
static void test_sink_refuses_head(void)
{
    static const char resp[] = CL11 "2\r\n\r\nok";
    struct http1_resp h;
    struct rec r;
    size_t used;

    memset(&r, 0, sizeof(r));
    r.head_err = RF_ERR_TLS; /* any error: it is passed through */
    http1_resp_init(&h, &sink, &r, 65536);
    http1_resp_next(&h, 0);
    CHECK_INT(http1_resp_feed(&h, resp, sizeof(resp) - 1, &used), HTTP1_ERROR);
    CHECK_INT(h.fail, RF_ERR_TLS);
    CHECK_UINT(r.body_bytes, 0);
}

/* ---------------------------------------------------------------- requests */

#define REQ_CAP 16384 /* the fetch connection's request buffer (FC_SBUF) */

struct qcase {
    const char *name;
    const char *url;
    const char *method;
    const char *const *headers;
    size_t n_headers;
    const char *body;
    int keepalive;
    int no_ua;
    const char *auth;
    const char *want; /* the exact head */
};

static const char *const h_custom[] = {"X-Req: 1", "Accept-Encoding: gzip"};
static const char *const h_own[] = {"host: other.example", "user-agent: mine/2",
                                    "ACCEPT: text/html", "Connection: keep-alive"};
static const char *const h_clen[] = {"Content-Length: 3"};
static const char *const h_hostname[] = {"Hostname: not-the-host"};
static const char *const h_auth[] = {"authorization: Bearer x"};

#define UA "User-Agent: rf-unit/1\r\n"

static const struct qcase qcases[] = {
    {"plain GET", "http://example.com/a/b?c=d", "GET", NULL, 0, NULL, 1, 0, NULL,
     "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\n" UA "Accept: */*\r\n\r\n"},
    {"no path", "http://example.com", "GET", NULL, 0, NULL, 1, 0, NULL,
     "GET / HTTP/1.1\r\nHost: example.com\r\n" UA "Accept: */*\r\n\r\n"},
    {"query without path", "http://example.com?x=1", "GET", NULL, 0, NULL, 1, 0, NULL,
     "GET /?x=1 HTTP/1.1\r\nHost: example.com\r\n" UA "Accept: */*\r\n\r\n"},
    {"port in Host", "http://Example.com:8080/x#frag", "GET", NULL, 0, NULL, 1, 0, NULL,
     "GET /x HTTP/1.1\r\nHost: Example.com:8080\r\n" UA "Accept: */*\r\n\r\n"},
    {"IPv6 Host", "http://[::1]:81/", "GET", NULL, 0, NULL, 1, 0, NULL,
     "GET / HTTP/1.1\r\nHost: [::1]:81\r\n" UA "Accept: */*\r\n\r\n"},
    {"no keep-alive", "http://h/", "GET", NULL, 0, NULL, 0, 0, NULL,
     "GET / HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\nConnection: close\r\n\r\n"},
    {"no User-Agent", "http://h/", "GET", NULL, 0, NULL, 1, 1, NULL,
     "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"},
    {"custom headers after ours", "http://h/", "DELETE", h_custom, 2, NULL, 1, 0, NULL,
     "DELETE / HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\n"
     "X-Req: 1\r\nAccept-Encoding: gzip\r\n\r\n"},
    {"caller's own Host, User-Agent, Accept, Connection", "http://h/", "GET", h_own, 4, NULL, 0,
     0, NULL,
     "GET / HTTP/1.1\r\nhost: other.example\r\nuser-agent: mine/2\r\nACCEPT: text/html\r\n"
     "Connection: keep-alive\r\n\r\n"},
    {"a longer name is not Host", "http://h/", "GET", h_hostname, 1, NULL, 1, 0, NULL,
     "GET / HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\nHostname: not-the-host\r\n\r\n"},
    {"body", "http://h/up", "POST", NULL, 0, "abc", 1, 0, NULL,
     "POST /up HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\nContent-Length: 3\r\n\r\n"},
    {"empty body", "http://h/up", "PUT", NULL, 0, "", 1, 0, NULL,
     "PUT /up HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\nContent-Length: 0\r\n\r\n"},
    {"caller's Content-Length", "http://h/up", "POST", h_clen, 1, "abc", 1, 0, NULL,
     "POST /up HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\nContent-Length: 3\r\n\r\n"},
    {"HEAD", "http://h/", "HEAD", NULL, 0, NULL, 1, 0, NULL,
     "HEAD / HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\n\r\n"},
    {"Authorization from userinfo", "http://h/", "GET", NULL, 0, NULL, 1, 0,
     "Authorization: Basic dTpw\r\n",
     "GET / HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\nAuthorization: Basic dTpw\r\n\r\n"},
    {"the caller's Authorization wins", "http://h/", "GET", h_auth, 1, NULL, 1, 0,
     "Authorization: Basic dTpw\r\n",
     "GET / HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\nauthorization: Bearer x\r\n\r\n"},
};

/* Format q into a buffer of `cap` bytes that ends at a guard page. Returns the result. */
static int format(const struct qcase *q, uint32_t cap, char **out)
{
    static char hdrs[REQ_CAP * 2];
    struct http1_req h;
    struct rf_url u;
    unsigned has = 0;
    int n, ret;
    char *buf;

    memset(&h, 0, sizeof(h));
    if (!CHECK_INT(url_parse(q->url, strlen(q->url), &u), 0))
        return -1;
    n = http1_header_block(q->headers, q->n_headers, hdrs, sizeof(hdrs), &has);
    if (!CHECK(n >= 0))
        return -1;
    h.method = q->method;
    h.url = q->url;
    h.u = &u;
    h.hdrs = hdrs;
    h.hdrs_len = (size_t)n;
    h.has = has;
    h.auth = q->auth;
    h.auth_len = q->auth ? strlen(q->auth) : 0;
    h.has_body = q->body != NULL;
    h.body_len = q->body ? strlen(q->body) : 0;
    h.ua_line = UA;
    h.ua_len = q->no_ua ? 0 : strlen(UA);
    h.close = !q->keepalive;
    buf = guard_copy(hdrs, cap); /* any bytes: the writer must stay inside cap */
    ret = http1_format_request(buf, cap, &h);
    *out = buf;
    return ret;
}

static void check_request(const struct qcase *q)
{
    char *buf = NULL;
    int before = check_failures();
    int ret = format(q, REQ_CAP, &buf);

    if (CHECK_INT(ret, (int)strlen(q->want)))
        CHECK_MEM(buf, (size_t)ret, q->want, strlen(q->want));
    /* One byte short of the head: refused, not truncated. */
    guard_free(buf, REQ_CAP);
    ret = format(q, (uint32_t)strlen(q->want) - 1, &buf);
    CHECK_INT(ret, -RF_ERR_TOO_LARGE);
    guard_free(buf, strlen(q->want) - 1);
    if (check_failures() != before)
        fprintf(stderr, "  request \"%s\"\n", q->name);
}

static void test_requests(void)
{
    static char big[REQ_CAP];
    const char *hdr[1] = {big};
    struct qcase q;

    for (size_t i = 0; i < sizeof(qcases) / sizeof(qcases[0]); i++)
        check_request(&qcases[i]);

    /* A head that does not fit the buffer is refused, not truncated. */
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'b', sizeof(big) - 8);
    big[sizeof(big) - 1] = '\0';
    memset(&q, 0, sizeof(q));
    q.name = "too large";
    q.url = "http://h/";
    q.method = "GET";
    q.headers = hdr;
    q.n_headers = 1;
    q.keepalive = 1;
    {
        char *buf;

        CHECK_INT(format(&q, REQ_CAP, &buf), -RF_ERR_TOO_LARGE);
        guard_free(buf, REQ_CAP);
    }
    /* One that fits exactly: REQ_CAP bytes in all. */
    {
        static char want[REQ_CAP + 1];
        const char *pre = "GET / HTTP/1.1\r\nHost: h\r\n" UA "Accept: */*\r\n";
        size_t fixed = strlen(pre) + 4; /* the header's CRLF and the blank line */
        size_t hlen = REQ_CAP - fixed;

        big[hlen] = '\0';
        memcpy(want, pre, strlen(pre));
        memcpy(want + strlen(pre), big, hlen);
        memcpy(want + strlen(pre) + hlen, "\r\n\r\n", 5);
        q.name = "exactly full";
        q.want = want;
        check_request(&q);
        CHECK_UINT(strlen(want), REQ_CAP);
    }
}

/* What a caller passes can never add a line to the request. */
static void test_request_validation(void)
{
    const char *good[] = {"X-A: 1", "Accept:*/*"};
    const char *crlf[] = {"X-A: 1\r\nX-B: 2"};
    const char *lf[] = {"X-A: 1\n"};
    const char *cr[] = {"X-A: 1\r"};
    const char *nocolon[] = {"X-A 1"};
    const char *empty_name[] = {": v"};
    const char *second_bad[] = {"X-A: 1", "X-B 2"};
    const char *null_line[] = {NULL};
    const char *ours[] = {"HOST: a", "user-AGENT: b", "accept: c", "connection: d",
                          "Content-Length: 1", "Authorization: e", "X-Host: f"};
    char out[256];
    unsigned has = 99;

    CHECK(http1_valid_method("GET"));
    CHECK(http1_valid_method("M-SEARCH"));
    CHECK(http1_valid_method("PURGE~!"));
    CHECK(!http1_valid_method(""));
    CHECK(!http1_valid_method("GET /x"));
    CHECK(!http1_valid_method("GET\r\nX:"));
    CHECK(!http1_valid_method("G(T"));

    CHECK_INT(http1_header_block(good, 2, out, sizeof(out), &has), 20);
    CHECK_MEM(out, 20, "X-A: 1\r\nAccept:*/*\r\n", 20);
    CHECK_UINT(has, HTTP1_HAS_ACCEPT);
    CHECK_INT(http1_header_block(good, 2, NULL, 0, &has), 20); /* measure only */
    CHECK_INT(http1_header_block(NULL, 0, out, sizeof(out), &has), 0);
    CHECK_UINT(has, 0);
    CHECK_INT(http1_header_block(crlf, 1, out, sizeof(out), &has), -RF_ERR_INVALID_ARG);
    CHECK_INT(http1_header_block(lf, 1, out, sizeof(out), &has), -RF_ERR_INVALID_ARG);
    CHECK_INT(http1_header_block(cr, 1, out, sizeof(out), &has), -RF_ERR_INVALID_ARG);
    CHECK_INT(http1_header_block(nocolon, 1, out, sizeof(out), &has), -RF_ERR_INVALID_ARG);
    CHECK_INT(http1_header_block(empty_name, 1, out, sizeof(out), &has), -RF_ERR_INVALID_ARG);
    CHECK_INT(http1_header_block(second_bad, 2, out, sizeof(out), &has), -RF_ERR_INVALID_ARG);
    CHECK_INT(http1_header_block(null_line, 1, out, sizeof(out), &has), -RF_ERR_INVALID_ARG);
    CHECK_INT(http1_header_block(ours, 7, out, sizeof(out), &has), 98);
    CHECK_UINT(has, HTTP1_HAS_HOST | HTTP1_HAS_UA | HTTP1_HAS_ACCEPT | HTTP1_HAS_CONNECTION |
                        HTTP1_HAS_CLEN | HTTP1_HAS_AUTH);
    CHECK_INT(http1_header_block(good, 2, out, 19, &has), -RF_ERR_TOO_LARGE);
}

int main(void)
{
    test_request_validation();
    test_requests();
    test_responses();
    test_guard_page();
    test_large_body();
    test_pipelined();
    test_no_sink();
    test_sink_refuses_head();
    return check_finish("test_http1");
}
