/*
 * fuzz_tls.c - what a hostile server can answer to ringfetch's ClientHello: arbitrary
 * bytes, cut into recv-sized pieces at points the input chooses, through tls_input(),
 * tls_handshake() and tls_read() as the connection state machines call them. Every piece
 * must be taken whole before the next is lent (its ring buffer goes back), a failure must
 * say why, a flight is sent whole, and the session frees cleanly (LeakSanitizer).
 *
 * Input: byte 0 seeds the cut points; the rest is the server's byte stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/tls.h"

static struct tls_ctx *ctx;

/* Send whatever the client wrote, in one go, as a completed send would. */
static void drain(struct tls_conn *t)
{
    uint32_t len;
    const char *p;

    while ((p = tls_take_flight(t, &len)) != NULL)
        ENSURE(tls_flight_sent(t, len, &len) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char plain[16384];
    struct tls_conn t = {0};
    unsigned seed;
    char why[200];
    size_t off = 1;

    if (!ctx) {
        /* No certificate checks: hostile bytes get as deep into the handshake as they can. */
        struct tls_opts o = {.insecure = 1};

        ENSURE(tls_ctx_new(&ctx, &o, why, sizeof(why)) == 0);
    }
    if (size < 1)
        return 0;
    seed = data[0];
    ENSURE(tls_start(ctx, &t, "fuzz.example", NULL) == 0);
    drain(&t);
    while (off < size) {
        uint32_t n = 1 + (uint32_t)((seed = seed * 1103515245u + 12345u) >> 16) % 2048;
        int r;

        if (n > size - off)
            n = (uint32_t)(size - off);
        tls_input(&t, (const char *)data + off, n);
        off += n;
        if (t.state == TLS_HANDSHAKE) {
            r = tls_handshake(&t);
            if (r < 0) {
                ENSURE(r == TLS_ERR || r == TLS_ERR_VERIFY || r == TLS_CLOSED);
                ENSURE(tls_error(&t, why, sizeof(why))[0] != '\0');
                break;
            }
            if (r == TLS_AGAIN)
                ENSURE(t.in_len == 0);
        }
        if (t.state == TLS_OPEN) {
            while ((r = tls_read(&t, plain, sizeof(plain))) > 0)
                ENSURE(r <= (int)sizeof(plain));
            if (r != TLS_AGAIN)
                break;
            ENSURE(t.in_len == 0);
        }
        drain(&t);
    }
    tls_free(&t);
    return 0;
}
