/* tls.c - wolfSSL client sessions over memory buffers (see tls.h). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "proto/tls.h"

struct tls_ctx {
    WOLFSSL_CTX *ctx;
    int insecure;
};

static const char alpn_http11[] = "http/1.1";
static const int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1};

/* ---- the memory I/O wolfSSL sees instead of a socket ---- */

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    struct tls_conn *t = arg;
    uint32_t n = t->in_len < (uint32_t)sz ? t->in_len : (uint32_t)sz;

    (void)ssl;
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    memcpy(buf, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

static int buf_reserve(struct tls_buf *b, uint32_t more)
{
    uint32_t cap = b->cap ? b->cap : 1024; /* a ClientHello, a request: most flights */
    char *p;

    if (b->len + more <= b->cap)
        return 0;
    while (cap < b->len + more)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Everything is accepted: `out` is never in flight, so it may grow. */
static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    struct tls_conn *t = arg;

    (void)ssl;
    if (buf_reserve(&t->out, (uint32_t)sz))
        return WOLFSSL_CBIO_ERR_GENERAL;
    memcpy(t->out.p + t->out.len, buf, (size_t)sz);
    t->out.len += (uint32_t)sz;
    return sz;
}

/* ---- the shared context ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_ret;

static void library_init(void) { init_ret = wolfSSL_Init(); }

int tls_ctx_new(struct tls_ctx **out, const struct tls_opts *o, char *err, size_t errlen)
{
    const char *ca = o->ca_file ? o->ca_file : TLS_DEFAULT_CA_FILE;
    struct tls_ctx *c;
    int r;

    pthread_once(&init_once, library_init);
    if (init_ret != WOLFSSL_SUCCESS) {
        snprintf(err, errlen, "wolfSSL_Init failed (%d)", init_ret);
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (!c || !(c->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method()))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->insecure = o->insecure;
    wolfSSL_CTX_SetMinVersion(c->ctx, WOLFSSL_TLSV1_2);
    /*
     * X25519 first: the TLS 1.3 key share is made for the first group, and X25519 costs
     * the server (and us) less than wolfSSL's default P-256: at one nginx core, 375 ->
     * 275 us of server CPU per resumed handshake. A library without it keeps its default.
     */
    wolfSSL_CTX_set_groups(c->ctx, (int *)groups, sizeof(groups) / sizeof(groups[0]));
    /*
     * TLS 1.2 resumption by ticket (RFC 5077) needs the extension in the ClientHello:
     * servers without a session cache (nginx: tickets on, cache off) resume no other way.
     * TLS 1.3 tickets need nothing more.
     */
    wolfSSL_CTX_UseSessionTicket(c->ctx);
    wolfSSL_CTX_SetIORecv(c->ctx, io_recv);
    wolfSSL_CTX_SetIOSend(c->ctx, io_send);
    if (o->insecure) {
        wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_NONE, NULL);
    } else {
        r = wolfSSL_CTX_load_verify_locations(c->ctx, ca, NULL);
        if (r != WOLFSSL_SUCCESS) {
            snprintf(err, errlen, "cannot load CA certificates from %s: %s", ca,
                     wolfSSL_ERR_reason_error_string((unsigned long)r));
            tls_ctx_free(c);
            return -1;
        }
        wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER, NULL);
    }
    *out = c;
    return 0;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (!ctx)
        return;
    wolfSSL_CTX_free(ctx->ctx);
    free(ctx);
}

/* ---- connections ---- */

/*
 * The name wolfSSL compares with the certificate: a host name as is; an IP address in the
 * text form wolfSSL gives subjectAltName addresses (dotted decimal; IPv6 as eight groups
 * of four upper-case hex digits), so that any spelling of the address matches. Returns
 * 1 for an IP address (which SNI must not carry), else 0.
 */
static int cert_name(const char *host, char *out, size_t len)
{
    unsigned char a[16];

    if (inet_pton(AF_INET, host, a) == 1) {
        snprintf(out, len, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        return 1;
    }
    if (inet_pton(AF_INET6, host, a) == 1) {
        for (int i = 0; i < 8; i++)
            snprintf(out + i * 5, len - (size_t)i * 5, "%02X%02X%s", a[2 * i], a[2 * i + 1],
                     i < 7 ? ":" : "");
        return 1;
    }
    snprintf(out, len, "%s", host);
    return 0;
}

int tls_start(struct tls_ctx *ctx, struct tls_conn *t, const char *host, tls_session *sess)
{
    char name[256];
    int is_ip = cert_name(host, name, sizeof(name));

    tls_reset(t);
    t->ssl = wolfSSL_new(ctx->ctx);
    if (!t->ssl)
        return -1;
    wolfSSL_SetIOReadCtx(t->ssl, t);
    wolfSSL_SetIOWriteCtx(t->ssl, t);
    /* RFC 6066: no IP literal in server_name. */
    if (!is_ip &&
        wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, host, (unsigned short)strlen(host)) !=
            WOLFSSL_SUCCESS)
        return -1;
    if (wolfSSL_UseALPN(t->ssl, (char *)alpn_http11, sizeof(alpn_http11) - 1,
                        WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS)
        return -1;
    if (!ctx->insecure && wolfSSL_check_domain_name(t->ssl, name) != WOLFSSL_SUCCESS)
        return -1;
    if (sess)
        wolfSSL_set_session(t->ssl, sess); /* a stale session just means a full handshake */
    t->state = TLS_HANDSHAKE;
    /* With no input yet, the first step writes the ClientHello and waits. */
    return tls_handshake(t) == TLS_AGAIN && t->out.len ? 0 : -1;
}

void tls_reset(struct tls_conn *t)
{
    if (t->ssl)
        wolfSSL_free(t->ssl);
    t->ssl = NULL;
    t->in = NULL;
    t->in_len = 0;
    t->out.len = 0;
    t->state = TLS_NONE;
    t->resumed = 0;
    t->err = 0;
    /*
     * A send of the old flight may still be queued on the closed socket; its buffer is
     * reused, never freed here, so such a send reads valid memory of ours.
     */
    t->in_flight = 0;
    t->flight.len = t->flight_off = 0;
}

void tls_free(struct tls_conn *t)
{
    tls_reset(t);
    free(t->out.p);
    free(t->flight.p);
    memset(t, 0, sizeof(*t));
}

static int is_verify_error(int e)
{
    switch (e) {
    case ASN_NO_SIGNER_E:
    case ASN_SELF_SIGNED_E:
    case ASN_AFTER_DATE_E:
    case ASN_BEFORE_DATE_E:
    case ASN_SIG_CONFIRM_E:
    case ASN_PATHLEN_SIZE_E:
    case ASN_PATHLEN_INV_E:
    case DOMAIN_NAME_MISMATCH:
    case IPADDR_MISMATCH:
    case VERIFY_CERT_ERROR:
        return 1;
    default:
        return 0;
    }
}

int tls_handshake(struct tls_conn *t)
{
    int r = wolfSSL_connect(t->ssl);

    if (r == WOLFSSL_SUCCESS) {
        t->state = TLS_OPEN;
        t->resumed = wolfSSL_session_reused(t->ssl) == 1;
        return 1;
    }
    t->err = wolfSSL_get_error(t->ssl, r);
    if (t->err == WOLFSSL_ERROR_WANT_READ || t->err == WOLFSSL_ERROR_WANT_WRITE)
        return TLS_AGAIN;
    if (t->err == WOLFSSL_ERROR_ZERO_RETURN)
        return TLS_CLOSED;
    return is_verify_error(t->err) ? TLS_ERR_VERIFY : TLS_ERR;
}

int tls_read(struct tls_conn *t, char *buf, uint32_t cap)
{
    int r = wolfSSL_read(t->ssl, buf, (int)cap);

    if (r > 0)
        return r;
    t->err = wolfSSL_get_error(t->ssl, r);
    if (t->err == WOLFSSL_ERROR_WANT_READ || t->err == WOLFSSL_ERROR_WANT_WRITE)
        return TLS_AGAIN;
    return t->err == WOLFSSL_ERROR_ZERO_RETURN ? TLS_CLOSED : TLS_ERR;
}

int tls_write(struct tls_conn *t, const void *p, uint32_t n)
{
    if (n == 0)
        return 0;
    return wolfSSL_write(t->ssl, p, (int)n) == (int)n ? 0 : -1;
}

const char *tls_error(struct tls_conn *t, char *buf, size_t len)
{
    const char *why = wolfSSL_ERR_reason_error_string((unsigned long)t->err);

    snprintf(buf, len, "%s%s (%d)", is_verify_error(t->err) ? "certificate rejected: " : "",
             why ? why : "unknown error", t->err);
    return buf;
}

const char *tls_version(struct tls_conn *t) { return t->ssl ? wolfSSL_get_version(t->ssl) : NULL; }

tls_session *tls_get_session(struct tls_conn *t)
{
    return t->ssl ? wolfSSL_get1_session(t->ssl) : NULL;
}

void tls_session_free(tls_session *s)
{
    if (s)
        wolfSSL_SESSION_free(s);
}

const char *tls_take_flight(struct tls_conn *t, uint32_t *len)
{
    struct tls_buf b;

    if (t->in_flight || !t->out.len)
        return NULL;
    b = t->flight;
    t->flight = t->out;
    t->out = b;
    t->out.len = 0;
    t->flight_off = 0;
    t->in_flight = 1;
    *len = t->flight.len;
    return t->flight.p;
}

const char *tls_flight_sent(struct tls_conn *t, uint32_t n, uint32_t *len)
{
    t->flight_off += n;
    if (t->flight_off < t->flight.len) {
        *len = t->flight.len - t->flight_off;
        return t->flight.p + t->flight_off;
    }
    t->flight.len = t->flight_off = 0;
    t->in_flight = 0;
    return NULL;
}

/* ---- sessions by origin ---- */

int tls_cache_init(struct tls_cache *c, uint32_t n)
{
    c->slot = calloc(n, sizeof(*c->slot));
    c->mask = n - 1;
    return c->slot ? 0 : -1;
}

void tls_cache_free(struct tls_cache *c)
{
    if (!c->slot)
        return;
    for (uint32_t i = 0; i <= c->mask; i++) {
        free(c->slot[i].host);
        tls_session_free(c->slot[i].sess);
    }
    free(c->slot);
    c->slot = NULL;
}

tls_session *tls_cache_get(struct tls_cache *c, uint32_t hash, const char *host, uint16_t port)
{
    struct tls_cache_slot *s = &c->slot[hash & c->mask];

    if (s->sess && s->hash == hash && s->port == port && strcmp(s->host, host) == 0)
        return s->sess;
    return NULL;
}

void tls_cache_put(struct tls_cache *c, uint32_t hash, const char *host, uint16_t port,
                   tls_session *sess)
{
    struct tls_cache_slot *s = &c->slot[hash & c->mask];
    char *copy = strdup(host);

    if (!copy) {
        tls_session_free(sess);
        return;
    }
    free(s->host);
    tls_session_free(s->sess);
    s->hash = hash;
    s->port = port;
    s->host = copy;
    s->sess = sess;
}

/* RF_WOLFSSL_BUILD comes from the Makefile: which wolfSSL was linked (WOLFSSL=). */
const char *tls_library(void) { return "wolfSSL " LIBWOLFSSL_VERSION_STRING " " RF_WOLFSSL_BUILD; }
