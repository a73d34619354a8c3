/* http1.c - HTTP/1.1 on the wire: the request writer and the one response path. */
#include "proto/http1.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

struct wbuf {
    char *p;
    uint32_t len, cap;
    int overflow;
};

static void put(struct wbuf *b, const char *s, size_t n)
{
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += (uint32_t)n;
}

static void puts_(struct wbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_u64(struct wbuf *b, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, tmp + i, sizeof(tmp) - (size_t)i);
}

int http1_valid_method(const char *method)
{
    if (!*method)
        return 0;
    for (const char *m = method; *m; m++)
        if (!((*m >= 'A' && *m <= 'Z') || (*m >= 'a' && *m <= 'z') || (*m >= '0' && *m <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *m)))
            return 0;
    return 1;
}

static unsigned header_flag(const char *h, size_t name_len)
{
    static const struct {
        const char *name;
        unsigned flag;
    } ours[] = {
        {"host", HTTP1_HAS_HOST}, {"user-agent", HTTP1_HAS_UA}, {"accept", HTTP1_HAS_ACCEPT},
        {"connection", HTTP1_HAS_CONNECTION}, {"content-length", HTTP1_HAS_CLEN},
        {"authorization", HTTP1_HAS_AUTH},
    };

    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        if (strlen(ours[i].name) == name_len && strncasecmp(h, ours[i].name, name_len) == 0)
            return ours[i].flag;
    return 0;
}

int http1_header_block(const char *const *headers, size_t n, char *out, size_t cap,
                       unsigned *has)
{
    size_t len = 0;

    *has = 0;
    for (size_t i = 0; i < n; i++) {
        const char *h = headers[i], *colon = h ? strchr(h, ':') : NULL;
        size_t hl;

        if (!colon || colon == h || strpbrk(h, "\r\n"))
            return -RF_ERR_INVALID_ARG;
        *has |= header_flag(h, (size_t)(colon - h));
        hl = strlen(h);
        if (hl + 2 > UINT32_MAX / 4 || len + hl + 2 > (out ? cap : UINT32_MAX / 2))
            return -RF_ERR_TOO_LARGE;
        if (out) {
            memcpy(out + len, h, hl);
            memcpy(out + len + hl, "\r\n", 2);
        }
        len += hl + 2;
    }
    return (int)len;
}

/* Plain copies, no formatting: Host, User-Agent and Accept are ours unless the caller set them. */
int http1_format_request(char *buf, uint32_t cap, const struct http1_req *r)
{
    struct wbuf b = {buf, 0, cap, 0};
    const struct rf_url *u = r->u;

    puts_(&b, r->method);
    put(&b, " ", 1);
    if (u->target_len == 0 || u->target_needs_slash)
        put(&b, "/", 1);
    put(&b, r->url + u->target_off, u->target_len);
    put(&b, " HTTP/1.1\r\n", 11);
    if (!(r->has & HTTP1_HAS_HOST)) {
        put(&b, "Host: ", 6);
        put(&b, r->url + u->authority_off, u->authority_len);
        put(&b, "\r\n", 2);
    }
    if (r->ua_len && !(r->has & HTTP1_HAS_UA))
        put(&b, r->ua_line, r->ua_len);
    if (!(r->has & HTTP1_HAS_ACCEPT))
        put(&b, "Accept: */*\r\n", 13);
    if (r->close && !(r->has & HTTP1_HAS_CONNECTION))
        put(&b, "Connection: close\r\n", 19);
    if (r->auth_len && !(r->has & HTTP1_HAS_AUTH))
        put(&b, r->auth, r->auth_len);
    put(&b, r->hdrs, r->hdrs_len);
    if (r->has_body && !(r->has & HTTP1_HAS_CLEN)) {
        put(&b, "Content-Length: ", 16);
        put_u64(&b, r->body_len);
        put(&b, "\r\n", 2);
    }
    put(&b, "\r\n", 2);
    return b.overflow ? -RF_ERR_TOO_LARGE : (int)b.len;
}

/* ---- responses ---- */

static struct http1_resp *resp_of(llhttp_t *p) { return p->data; }

static int failed(struct http1_resp *r, rf_error err)
{
    r->fail = (uint8_t)err;
    return -1;
}

/* Header bytes are capped so a hostile server cannot make anything grow without bound. */
static int count_header_bytes(struct http1_resp *r, size_t len)
{
    r->hdr_bytes += (uint32_t)(len < UINT32_MAX / 2 ? len : UINT32_MAX / 2);
    return r->hdr_bytes > r->max_hdr ? failed(r, RF_ERR_TOO_LARGE) : 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return count_header_bytes(resp_of(p), len);
}

static int piece(llhttp_t *p, enum http1_piece kind, const char *at, size_t len)
{
    struct http1_resp *r = resp_of(p);
    rf_error err;

    /* ": " and CRLF are counted once per line, at its end, however the line was split. */
    if (count_header_bytes(r, kind == HTTP1_END ? 4 : len))
        return -1;
    if (r->sink && (err = r->sink->piece(r->ctx, kind, at, len)) != RF_OK)
        return failed(r, err);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    return piece(p, HTTP1_NAME, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    return piece(p, HTTP1_VALUE, at, len);
}

static int on_header_value_complete(llhttp_t *p) { return piece(p, HTTP1_END, NULL, 0); }

static int on_headers_complete(llhttp_t *p)
{
    struct http1_resp *r = resp_of(p);
    rf_error err;

    /* llhttp takes any 1-3 digits and any 64-bit length; a status under 100 would read as
     * "no status" and a length over INT64_MAX as negative, so both are protocol errors. */
    if (p->status_code < 100 ||
        ((p->flags & F_CONTENT_LENGTH) && p->content_length > (uint64_t)INT64_MAX))
        return failed(r, RF_ERR_PROTOCOL);
    if (r->sink && (err = r->sink->headers_done(r->ctx, r)) != RF_OK)
        return failed(r, err);
    /* 1: no body whatever the headers say (RFC 9112 6.3): the response to HEAD, and 1xx,
     * 204 and 304 (a 304 may carry the Content-Length of the representation). */
    if (r->is_head || p->status_code / 100 == 1 || p->status_code == 204 ||
        p->status_code == 304)
        return 1;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http1_resp *r = resp_of(p);
    rf_error err;

    if (r->sink && (err = r->sink->body(r->ctx, at, len)) != RF_OK)
        return failed(r, err);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http1_resp *r = resp_of(p);

    /* An interim 1xx response (except 101, which is final) is followed by the real one. */
    if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) {
        if (r->sink)
            r->sink->restart(r->ctx);
        r->hdr_bytes = 0;
        return 0;
    }
    r->done = 1;
    return HPE_PAUSED;
}

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void settings_init(void)
{
    llhttp_settings_init(&settings);
    settings.on_status = on_status;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_header_value_complete = on_header_value_complete;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
}

void http1_resp_init(struct http1_resp *r, const struct http1_sink *sink, void *ctx,
                     uint32_t max_hdr)
{
    pthread_once(&settings_once, settings_init);
    llhttp_init(&r->parser, HTTP_RESPONSE, &settings);
    /*
     * RFC 9112 2.2: a recipient may take a bare LF as a line terminator in the start line
     * and the header fields; curl and aiohttp do. llhttp 8 takes it in header lines only
     * with lenient header values (which also lets control bytes through in values: they
     * are escaped wherever a value is shown).
     */
    llhttp_set_lenient_headers(&r->parser, 1);
    r->parser.data = r;
    r->sink = sink;
    r->ctx = ctx;
    r->max_hdr = max_hdr;
    r->hdr_bytes = 0;
    r->done = r->is_head = 0;
    r->fail = RF_OK;
}

void http1_resp_next(struct http1_resp *r, int is_head)
{
    if (r->done)
        llhttp_resume(&r->parser);
    r->is_head = (uint8_t)is_head;
    r->hdr_bytes = 0;
    r->done = 0;
    r->fail = RF_OK;
}

int http1_resp_feed(struct http1_resp *r, const char *p, size_t n, size_t *used)
{
    llhttp_errno_t err = llhttp_execute(&r->parser, p, n);

    if (err == HPE_OK) {
        *used = n;
        return HTTP1_MORE;
    }
    if (err == HPE_PAUSED && r->done) {
        *used = (size_t)(llhttp_get_error_pos(&r->parser) - p);
        return HTTP1_DONE;
    }
    if (r->fail == RF_OK)
        r->fail = RF_ERR_PROTOCOL;
    return HTTP1_ERROR;
}

int http1_resp_eof(struct http1_resp *r)
{
    if (!r->done)
        llhttp_finish(&r->parser); /* completes a body delimited by the close */
    if (r->done)
        return HTTP1_DONE;
    if (r->fail == RF_OK)
        r->fail = RF_ERR_CLOSED;
    return HTTP1_ERROR;
}
