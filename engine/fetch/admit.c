/*
 * admit.c - a request enters the window: everything the engine keeps of it is copied into
 * its entry (the caller may reuse its memory at once), and its URL is made into the one
 * that goes on the wire. What makes it fail (a bad URL, method or header) is recorded now
 * and delivered without a slot.
 */
#include <stdlib.h>
#include <string.h>

#include "fetch/fetch.h"

/* The URL as submitted, without "user:password@": what results and logs show. */
static int keep_url(struct request *r, const char *url, size_t len, const struct url_userinfo *ui)
{
    size_t cut = ui->len ? ui->len + 1 : 0;
    char *p = request_reserve(r, (uint32_t)len);

    if (!p)
        return -RF_ERR_NOMEM;
    memcpy(p, url, ui->off ? ui->off : len);
    if (cut)
        memcpy(p + ui->off, url + ui->off + cut, len - ui->off - cut);
    r->url_len = (uint32_t)(len - cut);
    r->url = request_commit(r, r->url_len);
    return 0;
}

/*
 * The URL as sent (normalised, in the engine's scratch first: admission runs under the
 * lock), and the Authorization line its userinfo asks for.
 */
static int wire_url(rf_engine *e, struct request *r, const char *url, size_t len)
{
    struct url_userinfo ui;
    int n = url_normalize(url, len, e->cfg.default_scheme, e->scratch, ADMIT_SCRATCH, &ui);

    if (n < 0) {
        /* Not even that: keep it as given, for the row, and fail it. */
        memset(&ui, 0, sizeof(ui));
        r->err = RF_ERR_INVALID_URL;
        n = 0;
    }
    r->wire_len = (uint32_t)n;
    r->wire = request_append(r, e->scratch, r->wire_len);
    if (r->wire == W_NONE)
        return -RF_ERR_NOMEM;
    if (!ui.len && (size_t)n == len && memcmp(r->str + r->wire, url, len) == 0) {
        r->url = r->wire; /* sent as given: one copy serves both */
        r->url_len = r->wire_len;
    } else if (keep_url(r, url, len, &ui)) {
        return -RF_ERR_NOMEM;
    }
    if (ui.len) {
        char *a = request_reserve(r, 4 * ui.len / 3 + 64);
        int al = a ? url_basic_auth(url + ui.off, ui.len, a, 4 * ui.len / 3 + 64) : -1;

        if (!a)
            return -RF_ERR_NOMEM;
        if (al < 0) {
            r->err = RF_ERR_INVALID_URL; /* credentials too long to be real */
            al = 0;
        }
        r->auth_len = (uint32_t)al;
        r->auth = request_commit(r, r->auth_len);
    }
    return 0;
}

static int keep_head(struct request *r, const rf_request *req)
{
    const char *m = req->method ? req->method : req->body ? "POST" : "GET";
    size_t nh = req->headers ? req->n_headers : 0;
    unsigned has;
    int n;

    if (!http1_valid_method(m)) {
        r->err = RF_ERR_INVALID_ARG;
        m = "GET";
    }
    r->method = request_append(r, m, (uint32_t)strlen(m));
    n = http1_header_block(req->headers, nh, NULL, 0, &has);
    if (n < 0) {
        r->err = RF_ERR_INVALID_ARG;
        n = 0;
    }
    if (r->method == W_NONE || !request_reserve(r, (uint32_t)n))
        return -RF_ERR_NOMEM;
    http1_header_block(req->headers, n ? nh : 0, r->str + r->str_len, (size_t)n + 1, &has);
    r->hdr_has = (uint8_t)has;
    r->hdrs_len = (uint32_t)n;
    r->hdrs = request_commit(r, r->hdrs_len);
    return 0;
}

int request_admit(rf_engine *e, struct request *r, const rf_request *req, size_t req_size)
{
    const rf_config *cfg = &e->cfg;
    size_t len = strlen(req->url);
    int ret;

    request_clear(r);
    request_reset_response(r);
    r->url = r->wire = r->method = r->hdrs = r->auth = W_NONE;
    r->hdrs_len = r->auth_len = 0;
    r->userdata = req->userdata;
    if (len > RF_URL_MAX) { /* refused unread, and not copied: a row shows its start */
        r->err = RF_ERR_INVALID_URL;
        len = 256;
    }
    ret = wire_url(e, r, req->url, len);
    if (ret == 0)
        ret = keep_head(r, req);
    if (ret)
        return ret;
    /* Fields past what the caller's struct has (an older header) read as 0: the defaults. */
    if (req_size >= offsetof(rf_request, keep_body) + sizeof(req->keep_body)) {
        r->timeout_ms = req->timeout_ms;
        r->connect_timeout_ms = req->connect_timeout_ms;
        r->max_body = req->max_body;
        r->keep_body = req->keep_body;
    } else {
        r->timeout_ms = r->connect_timeout_ms = 0;
        r->max_body = 0;
        r->keep_body = 0;
    }
    r->timeout_ms = r->timeout_ms ? r->timeout_ms : cfg->timeout_ms;
    r->connect_timeout_ms = r->connect_timeout_ms ? r->connect_timeout_ms : cfg->connect_timeout_ms;
    r->max_body = r->max_body ? r->max_body : cfg->max_body;
    r->keep_body = r->keep_body ? r->keep_body : cfg->keep_body;
    r->body = req->body;
    r->body_len = req->body ? req->body_len : 0;
    if (r->body_len && !(req->flags & RF_REQ_STATIC)) {
        r->body_copy = malloc(r->body_len);
        if (!r->body_copy)
            return -RF_ERR_NOMEM;
        memcpy(r->body_copy, req->body, r->body_len);
        r->body = r->body_copy;
    }
    r->state = W_PENDING;
    return 0;
}
