/*
 * test_tls.c - TLS over memory buffers against a wolfSSL server in the same process:
 * ciphertext cut into every size down to one byte, the two send buffers, host and
 * address checks, resumption and close_notify. The certificate is made with openssl.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "check.h"
#include "proto/tls.h"

/* The server's side of the "wire": what the client sent, and what the server writes. */
struct pipe {
    char buf[1 << 17];
    size_t len, off;
};

static struct pipe to_server, to_client;
static char dir[] = "/tmp/rf-test-tls-XXXXXX";
static char cert[64], key[64];

static int srv_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    size_t n = to_server.len - to_server.off;

    (void)ssl;
    (void)ctx;
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > (size_t)sz)
        n = (size_t)sz;
    memcpy(buf, to_server.buf + to_server.off, n);
    to_server.off += n;
    return (int)n;
}

static int srv_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)ctx;
    if (to_client.len + (size_t)sz > sizeof(to_client.buf))
        return WOLFSSL_CBIO_ERR_GENERAL;
    memcpy(to_client.buf + to_client.len, buf, (size_t)sz);
    to_client.len += (size_t)sz;
    return sz;
}

static int make_certificate(void)
{
    char cmd[1024];

    if (!mkdtemp(dir))
        return -1;
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    /* Self-signed and marked as a CA, so that it can be its own trust anchor. */
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1 "
             "-addext basicConstraints=critical,CA:TRUE -keyout %s -out %s 2>/dev/null",
             key, cert);
    return system(cmd) == 0 ? 0 : -1;
}

static WOLFSSL_CTX *server_ctx(void)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());

    if (!ctx || wolfSSL_CTX_use_certificate_file(ctx, cert, WOLFSSL_FILETYPE_PEM) != 1 ||
        wolfSSL_CTX_use_PrivateKey_file(ctx, key, WOLFSSL_FILETYPE_PEM) != 1)
        abort();
    wolfSSL_CTX_SetIORecv(ctx, srv_recv);
    wolfSSL_CTX_SetIOSend(ctx, srv_send);
    return ctx;
}

/* Move the client's pending flights to the server, completing each send in `step`-byte
 * pieces (short sends). */
static void client_to_server(struct tls_conn *t, uint32_t step)
{
    const char *p;
    uint32_t len;

    while ((p = tls_take_flight(t, &len)) != NULL) {
        while (p) {
            uint32_t n = len < step ? len : step;

            CHECK(to_server.len + n <= sizeof(to_server.buf));
            memcpy(to_server.buf + to_server.len, p, n);
            to_server.len += n;
            p = tls_flight_sent(t, n, &len);
        }
    }
}

/*
 * Hand the server's bytes to the client `step` bytes at a time, as recv completions
 * would: a handshake step per piece while it runs, then reads into `plain`.
 */
static int server_to_client(struct tls_conn *t, uint32_t step, char *plain, size_t *plen)
{
    while (to_client.off < to_client.len) {
        uint32_t n = (uint32_t)(to_client.len - to_client.off);
        int r;

        if (n > step)
            n = step;
        tls_input(t, to_client.buf + to_client.off, n);
        to_client.off += n;
        if (t->state == TLS_HANDSHAKE) {
            r = tls_handshake(t);
            if (r < 0)
                return r;
        }
        if (t->state != TLS_OPEN)
            continue;
        while ((r = tls_read(t, plain + *plen, 16384)) > 0)
            *plen += (size_t)r;
        if (r != TLS_AGAIN)
            return r;
        CHECK_UINT(t->in_len, 0); /* every lent byte taken */
    }
    return 0;
}

/* When set, exchange() runs on this connection and leaves it open (no close_notify). */
static struct tls_conn *keep_open;

static void reset_pipes(void)
{
    to_server.len = to_server.off = 0;
    to_client.len = to_client.off = 0;
}

/*
 * One connection: handshake, a request, a response of resp_len bytes, with both
 * directions cut into `step`-byte pieces. Returns the handshake's result (1 when done).
 */
static int exchange(struct tls_ctx *cctx, WOLFSSL_CTX *sctx, const char *host,
                    tls_session *sess, uint32_t step, size_t resp_len, tls_session **out_sess,
                    int *resumed)
{
    static char plain[1 << 17], big[1 << 16];
    static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    struct tls_conn own = {0}, *t = keep_open ? keep_open : &own;
    WOLFSSL *srv = wolfSSL_new(sctx);
    char got[256];
    size_t plen = 0;
    int r = 0, done = 0;

    reset_pipes();
    CHECK(tls_start(cctx, t, host, sess) == 0);
    for (int round = 0; round < 10 && !done; round++) {
        client_to_server(t, step);
        if (wolfSSL_accept(srv) != 1 &&
            wolfSSL_get_error(srv, 0) != WOLFSSL_ERROR_WANT_READ)
            break;
        r = server_to_client(t, step, plain, &plen);
        if (r < 0) {
            CHECK(tls_error(t, got, sizeof(got))[0] != '\0');
            goto out;
        }
        done = t->state == TLS_OPEN;
    }
    CHECK(done);
    if (!done)
        goto out;
    r = 1;
    *resumed = t->resumed;
    CHECK(tls_write(t, req, sizeof(req) - 1) == 0);
    client_to_server(t, step);
    CHECK_INT(wolfSSL_read(srv, got, sizeof(got)), (int)sizeof(req) - 1);
    CHECK_MEM(got, sizeof(req) - 1, req, sizeof(req) - 1);
    for (size_t i = 0; i < resp_len; i++)
        big[i] = (char)('a' + i % 26);
    CHECK_INT(wolfSSL_write(srv, big, (int)resp_len), (int)resp_len);
    /* The ticket (TLS 1.3) and the response, in pieces. */
    CHECK_INT(server_to_client(t, step, plain, &plen), 0);
    CHECK_MEM(plain, plen, big, resp_len);
    CHECK_STR(tls_version(t), "TLSv1.3");
    if (out_sess)
        *out_sess = tls_get_session(t);
    if (keep_open)
        goto out;
    /* close_notify reads as the end of the session. */
    wolfSSL_shutdown(srv);
    CHECK_INT(server_to_client(t, step, plain, &plen), TLS_CLOSED);
out:
    wolfSSL_free(srv);
    if (!keep_open)
        tls_free(t);
    return r;
}

static void test_pieces_of_every_size(struct tls_ctx *cctx, WOLFSSL_CTX *sctx)
{
    static const uint32_t steps[] = {1, 2, 7, 100, 1500, 16384, 1u << 20};
    int resumed;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        CHECK_INT(exchange(cctx, sctx, "localhost", NULL, steps[i], 40000, NULL, &resumed), 1);
}

static void test_flights_never_move(void)
{
    struct tls_conn t = {0};
    const char *p, *q;
    uint32_t len, len2;

    /* Fill `out` by hand the way the send callback does, as if wolfSSL wrote. */
    t.out.p = malloc(16);
    t.out.cap = 16;
    memcpy(t.out.p, "first", 5);
    t.out.len = 5;
    p = tls_take_flight(&t, &len);
    CHECK(p != NULL && len == 5 && memcmp(p, "first", 5) == 0);
    CHECK(tls_take_flight(&t, &len2) == NULL); /* one flight at a time */
    q = tls_flight_sent(&t, 2, &len2);
    CHECK(q == p + 2 && len2 == 3);
    CHECK(tls_flight_sent(&t, 3, &len2) == NULL);
    CHECK(tls_take_flight(&t, &len2) == NULL); /* nothing written meanwhile */
    tls_free(&t);
}

static void test_names_and_addresses(WOLFSSL_CTX *sctx)
{
    static const char *good[] = {"localhost", "127.0.0.1", "::1", "0:0:0:0:0:0:0:1",
                                 "0000::0001"};
    static const char *bad[] = {"example.com", "127.0.0.2", "::2", "localhost.example"};
    struct tls_opts o = {.ca_file = cert};
    struct tls_ctx *cctx;
    char err[256];
    int resumed;

    CHECK(tls_ctx_new(&cctx, &o, err, sizeof(err)) == 0);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK_INT(exchange(cctx, sctx, good[i], NULL, 4096, 10, NULL, &resumed), 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(exchange(cctx, sctx, bad[i], NULL, 4096, 10, NULL, &resumed),
                   TLS_ERR_VERIFY);
    tls_ctx_free(cctx);
    /* The system bundle does not know the test certificate; -k does not ask. */
    o.ca_file = NULL;
    CHECK(tls_ctx_new(&cctx, &o, err, sizeof(err)) == 0);
    CHECK_INT(exchange(cctx, sctx, "localhost", NULL, 4096, 10, NULL, &resumed),
               TLS_ERR_VERIFY);
    tls_ctx_free(cctx);
    o.insecure = 1;
    CHECK(tls_ctx_new(&cctx, &o, err, sizeof(err)) == 0);
    CHECK_INT(exchange(cctx, sctx, "example.com", NULL, 4096, 10, NULL, &resumed), 1);
    tls_ctx_free(cctx);
    /* A CA file that does not load is an error with a message. */
    o.insecure = 0;
    o.ca_file = "/nonexistent/ca.pem";
    CHECK(tls_ctx_new(&cctx, &o, err, sizeof(err)) == -1);
    CHECK(strstr(err, "/nonexistent/ca.pem") != NULL);
}

static void test_resumption(struct tls_ctx *cctx, WOLFSSL_CTX *sctx)
{
    tls_session *s = NULL;
    int resumed = -1;

    CHECK_INT(exchange(cctx, sctx, "localhost", NULL, 1500, 10, &s, &resumed), 1);
    CHECK_INT(resumed, 0);
    CHECK(s != NULL);
    CHECK_INT(exchange(cctx, sctx, "localhost", s, 1500, 10, NULL, &resumed), 1);
    CHECK_INT(resumed, 1);
    tls_session_free(s);
}

/*
 * Heap per open TLS connection, after its handshake and one request and response: the
 * session, wolfSSL's object and our two send buffers. (Zero under ASan, whose allocator
 * mallinfo2() does not see.)
 */
static void test_memory_per_connection(struct tls_ctx *cctx, WOLFSSL_CTX *sctx)
{
    enum { N = 64 };
    static struct tls_conn conns[N];
    struct mallinfo2 before, after;
    int resumed;
    size_t per;

    before = mallinfo2();
    for (int i = 0; i < N; i++) {
        keep_open = &conns[i];
        CHECK_INT(exchange(cctx, sctx, "localhost", NULL, 16384, 600, NULL, &resumed), 1);
    }
    keep_open = NULL;
    after = mallinfo2();
    per = (after.uordblks - before.uordblks) / N;
    fprintf(stderr, "heap per open TLS 1.3 connection: %zu bytes (wolfSSL: %s)\n", per,
            RF_WOLFSSL_BUILD);
    /* Debian's library is built with everything on and keeps far more (about 80 KB). */
    if (strstr(RF_WOLFSSL_BUILD, "source"))
        CHECK(per < 32768);
    for (int i = 0; i < N; i++)
        tls_free(&conns[i]);
}

static void test_session_cache(void)
{
    struct tls_cache c;

    CHECK(tls_cache_init(&c, 4) == 0);
    CHECK(tls_cache_get(&c, 5, "a.test", 443) == NULL);
    /* A NULL session is "none"; the slot's owner is checked by host and port. */
    tls_cache_put(&c, 5, "a.test", 443, NULL);
    CHECK(tls_cache_get(&c, 5, "a.test", 443) == NULL);
    tls_cache_free(&c);
}

int main(void)
{
    struct tls_opts o = {0};
    struct tls_ctx *cctx;
    WOLFSSL_CTX *sctx;
    char err[256], cmd[128];

    if (make_certificate())
        return check_skip("test_tls", "openssl cannot make a test certificate");
    o.ca_file = cert;
    CHECK(tls_ctx_new(&cctx, &o, err, sizeof(err)) == 0); /* also runs wolfSSL_Init */
    sctx = server_ctx();
    test_pieces_of_every_size(cctx, sctx);
    test_flights_never_move();
    test_names_and_addresses(sctx);
    test_resumption(cctx, sctx);
    test_memory_per_connection(cctx, sctx);
    test_session_cache();
    wolfSSL_CTX_free(sctx);
    tls_ctx_free(cctx);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return check_finish("test_tls");
}
