/* http1.c - HTTP/1.1 on the wire: the request writer and the llhttp response callbacks. */
#include <string.h>
#include <strings.h>

#include "fetch/internal.h"

static struct wentry *job_entry(struct conn *c)
{
    return window_at(&c->wk->eng->win, c->job);
}



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

static int has_header(const struct http1_req *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strncasecmp(r->headers[i], name, len) == 0 && r->headers[i][len] == ':')
            return 1;
    return 0;
}

int http1_valid_request(const char *method, const char *const *headers, size_t n_headers)
{
    if (!*method)
        return 0;
    for (const char *m = method; *m; m++)
        if (!((*m >= 'A' && *m <= 'Z') || (*m >= 'a' && *m <= 'z') || (*m >= '0' && *m <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *m)))
            return 0;
    for (size_t i = 0; i < n_headers; i++) {
        const char *colon = strchr(headers[i], ':');

        if (!colon || colon == headers[i] || strpbrk(headers[i], "\r\n"))
            return 0;
    }
    return 1;
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
    if (!has_header(r, "Host", 4)) {
        put(&b, "Host: ", 6);
        put(&b, r->url + u->authority_off, u->authority_len);
        put(&b, "\r\n", 2);
    }
    if (r->ua_len && !has_header(r, "User-Agent", 10))
        put(&b, r->ua_line, r->ua_len);
    if (!has_header(r, "Accept", 6))
        put(&b, "Accept: */*\r\n", 13);
    if (r->close && !has_header(r, "Connection", 10))
        put(&b, "Connection: close\r\n", 19);
    for (size_t i = 0; i < r->n_headers; i++) {
        puts_(&b, r->headers[i]);
        put(&b, "\r\n", 2);
    }
    if (r->has_body && !has_header(r, "Content-Length", 14)) {
        put(&b, "Content-Length: ", 16);
        put_u64(&b, r->body_len);
        put(&b, "\r\n", 2);
    }
    put(&b, "\r\n", 2);
    return b.overflow ? -RF_ERR_TOO_LARGE : (int)b.len;
}

/* The job's request head, written into the slot's send buffer. */
int http1_write_request(struct worker *e, struct conn *c, const struct wentry *w,
                        const struct rf_url *u, const char *url)
{
    struct http1_req r = {
        .method = w->method, .url = url, .u = u,
        .headers = w->headers, .n_headers = w->n_headers,
        .has_body = w->body != NULL, .body_len = w->body_len,
        .ua_line = e->eng->ua_line, .ua_len = e->eng->ua_len,
        .close = !e->eng->cfg.keepalive,
    };
    int len = http1_format_request(c->sbuf, CONN_SBUF, &r);

    if (len < 0)
        return len;
    c->slen = (uint32_t)len;
    c->soff = 0;
    c->body_off = 0;
    c->is_head = strcmp(w->method, "HEAD") == 0;
    return 0;
}

void http1_begin_response(struct worker *e, struct conn *c)
{
    llhttp_init(&c->parser, HTTP_RESPONSE, &e->eng->settings);
    c->parser.data = c;
    c->hdr_bytes = 0;
    c->hname_len = 0;
    c->hcap = H_NONE;
    c->hval_open = 0;
    c->msg_done = 0;
    c->fail = RF_OK;
}

static struct conn *conn_of(llhttp_t *p) { return p->data; }

/* Header bytes are capped so a hostile server cannot grow anything without bound. */
static int count_header_bytes(struct conn *c, size_t len)
{
    c->hdr_bytes += (uint32_t)len;
    if (c->hdr_bytes > c->wk->eng->cfg.max_header_bytes || len > UINT32_MAX / 2) {
        c->fail = RF_ERR_TOO_LARGE;
        return -1;
    }
    return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return count_header_bytes(conn_of(p), len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = conn_of(p);

    if (count_header_bytes(c, len)) /* ": " and CRLF are counted once, at its end */
        return -1;
    if (len < (size_t)(CONN_HNAME - c->hname_len)) {
        memcpy(c->hname + c->hname_len, at, len);
        c->hname_len += (uint8_t)len;
    } else {
        c->hname_len = CONN_HNAME; /* too long to be one we capture */
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    static const struct {
        const char *name;
        uint8_t len, cap;
    } wanted[] = {
        {"location", 8, H_LOCATION},
        {"content-type", 12, H_CTYPE},
        {"server", 6, H_SERVER},
    };
    struct conn *c = conn_of(p);

    if (count_header_bytes(c, 4)) /* ": " and CRLF, once however the name was split */
        return -1;
    c->hcap = H_NONE;
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
        if (c->hname_len == wanted[i].len && strncasecmp(c->hname, wanted[i].name, c->hname_len) == 0)
            c->hcap = wanted[i].cap;
    c->hname_len = 0;
    c->hval_open = 0;
    return 0;
}

static uint32_t *capture_slot(struct wentry *w, uint8_t cap)
{
    switch ((enum hdr_capture)cap) {
    case H_LOCATION:
        return &w->loc;
    case H_CTYPE:
        return &w->ctype;
    case H_SERVER:
        return &w->server;
    case H_CLEN:
    case H_NONE:
        break;
    }
    return NULL;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = conn_of(p);
    uint32_t *off;

    if (count_header_bytes(c, len))
        return -1;
    off = capture_slot(job_entry(c), c->hcap);
    if (!off)
        return 0;
    if (c->hval_open) {
        wentry_extend(job_entry(c), at, (uint32_t)len);
    } else if (*off == W_NONE) { /* the first of repeated headers wins */
        *off = wentry_append(job_entry(c), at, (uint32_t)len);
        c->hval_open = 1;
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    conn_of(p)->hval_open = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct conn *c = conn_of(p);
    struct wentry *w = job_entry(c);

    w->status = p->status_code;
    /* llhttp takes any 1-3 digits and any 64-bit length; a status under 100 would read as
     * "no status" and a length over INT64_MAX as negative, so both are protocol errors. */
    if (p->status_code < 100 ||
        ((p->flags & F_CONTENT_LENGTH) && p->content_length > (uint64_t)INT64_MAX)) {
        c->fail = RF_ERR_PROTOCOL;
        return -1;
    }
    if (p->flags & F_CONTENT_LENGTH)
        w->content_length = (int64_t)p->content_length;
    /* 1: no body whatever the headers say (RFC 9112 6.3): the response to HEAD, and 1xx,
     * 204 and 304 (a 304 may carry the Content-Length of the representation). */
    if (c->is_head || p->status_code / 100 == 1 || p->status_code == 204 ||
        p->status_code == 304)
        return 1;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = conn_of(p);
    struct wentry *w = job_entry(c);
    const rf_config *cfg = &c->wk->eng->cfg;

    w->body_bytes += len;
    /* Keep before the cap check: the kept bytes are the first min(body_bytes, keep_body)
     * even when this piece ends the request, whatever the read sizes were. */
    if (w->kept_len < cfg->keep_body) {
        uint32_t n = (uint32_t)(len < cfg->keep_body - w->kept_len ? len : cfg->keep_body - w->kept_len);

        if (w->kept == W_NONE)
            w->kept = wentry_append(w, at, n);
        else
            wentry_extend(w, at, n);
        if (w->kept != W_NONE)
            w->kept_len += n;
    }
    if (cfg->max_body && w->body_bytes > cfg->max_body) {
        c->fail = RF_ERR_TOO_LARGE;
        return -1;
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = conn_of(p);

    /* An interim 1xx response (except 101) is followed by the real one: start over. */
    if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) {
        wentry_reset_response(job_entry(c));
        c->hdr_bytes = 0;
        return 0;
    }
    c->msg_done = 1;
    return HPE_PAUSED;
}

void http1_settings(llhttp_settings_t *s)
{
    llhttp_settings_init(s);
    s->on_status = on_status;
    s->on_header_field = on_header_field;
    s->on_header_field_complete = on_header_field_complete;
    s->on_header_value = on_header_value;
    s->on_header_value_complete = on_header_value_complete;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
}
