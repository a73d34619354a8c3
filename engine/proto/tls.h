/*
 * tls.h - TLS on memory buffers: wolfSSL never touches a socket.
 *
 * Ciphertext from a recv completion is lent to the connection with tls_input() and
 * consumed by tls_handshake()/tls_read(); what wolfSSL writes collects in `out` and
 * goes to the kernel through ring sends (tls_take_flight()/tls_flight_sent()). Two
 * output buffers, because the kernel may read the one in flight until its send
 * completes: wolfSSL writes into the other meanwhile, and neither moves while sent.
 */
#ifndef RF_TLS_H
#define RF_TLS_H

#include <stddef.h>
#include <stdint.h>

struct tls_ctx; /* settings and trust shared by every connection of an engine or a run */

struct tls_opts {
    const char *ca_file;     /* PEM bundle; NULL: TLS_DEFAULT_CA_FILE */
    int insecure;            /* no certificate or host name check */
};

/* The TLS library and how it was built, for version strings. */
const char *tls_library(void);

#define TLS_DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* Create the shared context. Returns 0, or -1 with a message in err. */
int tls_ctx_new(struct tls_ctx **out, const struct tls_opts *o, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);

struct tls_buf {
    char *p;
    uint32_t len, cap;
};

enum tls_state { TLS_NONE, TLS_HANDSHAKE, TLS_OPEN };

/* A session to resume: an opaque wolfSSL session, reference-counted by wolfSSL. */
typedef struct WOLFSSL_SESSION tls_session;

/*
 * Sessions by origin (host and port), for resumption on the origin's next connection:
 * direct-mapped on the origin's hash, a newer session replacing whatever was there.
 */
struct tls_cache_slot {
    uint32_t hash;
    uint16_t port;
    char *host;
    tls_session *sess;
};

struct tls_cache {
    struct tls_cache_slot *slot;
    uint32_t mask;
};

int tls_cache_init(struct tls_cache *c, uint32_t n); /* n a power of two; 0 or -1 */
void tls_cache_free(struct tls_cache *c);
/* The origin's session (still owned by the cache), or NULL. */
tls_session *tls_cache_get(struct tls_cache *c, uint32_t hash, const char *host, uint16_t port);
/* Keep `sess` (the cache takes the reference) for the origin. */
void tls_cache_put(struct tls_cache *c, uint32_t hash, const char *host, uint16_t port,
                   tls_session *sess);

struct tls_conn {
    struct WOLFSSL *ssl;
    const char *in;          /* lent ciphertext not yet taken by wolfSSL */
    uint32_t in_len;
    uint8_t state;           /* enum tls_state */
    uint8_t in_flight;       /* `flight` is being sent */
    uint8_t resumed;         /* the handshake resumed a session */
    int err;                 /* wolfSSL's code for the last failure */
    struct tls_buf out;      /* written by wolfSSL, not yet handed to a send */
    struct tls_buf flight;   /* handed to a send: untouchable until it completes */
    uint32_t flight_off;
};

/* Results of tls_handshake() and tls_read() besides a byte count. */
#define TLS_AGAIN 0          /* every lent byte is taken: wait for the next recv */
#define TLS_ERR (-1)         /* the handshake failed: tls_error() says why */
#define TLS_ERR_VERIFY (-2)  /* the peer's certificate was rejected */
#define TLS_CLOSED (-3)      /* the peer ended the session (close_notify, or EOF) */

/*
 * Begin a client handshake for `host` (SNI unless an IP literal, the name checked
 * against the certificate unless insecure, ALPN http/1.1), resuming `sess` if given.
 * The ClientHello is in `out` on return. Returns 0 or -1 (out of memory).
 */
int tls_start(struct tls_ctx *ctx, struct tls_conn *t, const char *host, tls_session *sess);
/* End the session (no close_notify) and forget lent input; keeps the buffers. */
void tls_reset(struct tls_conn *t);
/* tls_reset() and free the buffers. */
void tls_free(struct tls_conn *t);

/* Lend n ciphertext bytes; they must stay valid until tls_handshake/tls_read return. */
static inline void tls_input(struct tls_conn *t, const char *p, uint32_t n)
{
    t->in = p;
    t->in_len = n;
}

/* Drive the handshake: 1 done, TLS_AGAIN, TLS_ERR, TLS_ERR_VERIFY or TLS_CLOSED. */
int tls_handshake(struct tls_conn *t);
/* Decrypt into buf: bytes (> 0), TLS_AGAIN, TLS_CLOSED or TLS_ERR. */
int tls_read(struct tls_conn *t, char *buf, uint32_t cap);
/* Encrypt n bytes into `out`. Returns 0 or -1. */
int tls_write(struct tls_conn *t, const void *p, uint32_t n);
/* The reason of the last failure, for result rows ("certificate: ASN no signer ..."). */
const char *tls_error(struct tls_conn *t, char *buf, size_t len);
/* "TLSv1.3", "TLSv1.2", ... (a static string). */
const char *tls_version(struct tls_conn *t);
/* A reference to the connection's session for later resumption, or NULL. */
tls_session *tls_get_session(struct tls_conn *t);
void tls_session_free(tls_session *s);

/*
 * The next bytes to send: when nothing is in flight and `out` has bytes, they become the
 * flight and are returned (*len set); else NULL. After a send of the flight completes
 * with n bytes, tls_flight_sent() returns the rest to send again (*len set) after a
 * short send, or NULL when the flight is done.
 */
const char *tls_take_flight(struct tls_conn *t, uint32_t *len);
const char *tls_flight_sent(struct tls_conn *t, uint32_t n, uint32_t *len);

#endif
