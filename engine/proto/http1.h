/*
 * http1.h - HTTP/1.1 on the wire for fetch and bench alike: the request head writer, and the
 * one response path (llhttp underneath) with the checks every response gets: header bytes
 * capped, a status under 100 or a Content-Length over INT64_MAX refused, interim 1xx
 * responses skipped (101 is final), no body after HEAD, 1xx, 204 and 304, and the
 * keep-alive decision.
 */
#ifndef RF_HTTP1_H
#define RF_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "llhttp.h"
#include "proto/url.h"
#include "ringfetch.h"

/* Which of the headers we add the caller's headers replace. */
#define HTTP1_HAS_HOST 1u
#define HTTP1_HAS_UA 2u
#define HTTP1_HAS_ACCEPT 4u
#define HTTP1_HAS_CONNECTION 8u
#define HTTP1_HAS_CLEN 16u
#define HTTP1_HAS_AUTH 32u

/* A method that is an RFC 9110 token. */
int http1_valid_method(const char *method);

/*
 * The caller's headers as one block, "Name: value\r\n" each, into out (cap bytes; out NULL
 * only checks and measures), checked so that what a caller passes can never add a line to
 * the request: each holds a colon after a non-empty name and no CR or LF. *has gets the
 * HTTP1_HAS_* flags. Returns the block's length, -RF_ERR_INVALID_ARG or -RF_ERR_TOO_LARGE.
 */
int http1_header_block(const char *const *headers, size_t n, char *out, size_t cap,
                       unsigned *has);

struct http1_req {
    const char *method;
    const char *url;             /* the string u's offsets index */
    const struct rf_url *u;
    const char *hdrs;            /* http1_header_block()'s block, and its flags */
    size_t hdrs_len;
    unsigned has;
    const char *auth;            /* "Authorization: ...\r\n" from userinfo, or auth_len 0 */
    size_t auth_len;
    int has_body;
    size_t body_len;
    const char *ua_line;         /* "User-Agent: ...\r\n", or ua_len 0 for none */
    size_t ua_len;
    int close;                   /* add Connection: close */
};

/* Write the head into buf; returns its length or -RF_ERR_TOO_LARGE when cap is short. */
int http1_format_request(char *buf, uint32_t cap, const struct http1_req *r);

/*
 * What an owner wants to see of a response beyond its status and end (fetch: captured
 * headers and the body; bench wants none of it and passes no sink). Each returns RF_OK or
 * an rf_error that fails the response. Header names and values may come in pieces (the
 * response is split wherever recvs split it): piece() is called with HTTP1_NAME and
 * HTTP1_VALUE pieces, then HTTP1_END once the header line is complete.
 */
enum http1_piece { HTTP1_NAME, HTTP1_VALUE, HTTP1_END };

struct http1_resp;

struct http1_sink {
    rf_error (*piece)(void *ctx, enum http1_piece kind, const char *at, size_t len);
    rf_error (*headers_done)(void *ctx, const struct http1_resp *r);
    rf_error (*body)(void *ctx, const char *at, size_t len);
    void (*restart)(void *ctx); /* an interim 1xx ended: forget what it captured */
};

struct http1_resp {
    llhttp_t parser;
    const struct http1_sink *sink; /* or NULL */
    void *ctx;
    uint32_t hdr_bytes;
    uint32_t max_hdr;
    uint8_t is_head;  /* the request was HEAD: the response has no body */
    uint8_t done;     /* a final response is complete; the parser is paused after it */
    uint8_t fail;     /* the rf_error a callback decided */
};

enum { HTTP1_MORE, HTTP1_DONE, HTTP1_ERROR };

/* A new connection's response stream. */
void http1_resp_init(struct http1_resp *r, const struct http1_sink *sink, void *ctx,
                     uint32_t max_hdr);
/* The next response on the stream is for a request with this method (HEAD or not). */
void http1_resp_next(struct http1_resp *r, int is_head);
/*
 * Feed n bytes. HTTP1_MORE: all taken, the response goes on. HTTP1_DONE: a final response
 * ended after *used bytes (the rest belongs to what follows, after http1_resp_next()).
 * HTTP1_ERROR: broken; r->fail says why (RF_ERR_PROTOCOL unless a check or the sink did).
 */
int http1_resp_feed(struct http1_resp *r, const char *p, size_t n, size_t *used);
/* The peer closed: a body delimited by the close is complete now. DONE or ERROR. */
int http1_resp_eof(struct http1_resp *r);

/* 101 Switching Protocols is final but leaves HTTP behind: never a connection to reuse. */
static inline int http1_resp_keepalive(llhttp_t *p)
{
    return p->status_code != 101 && llhttp_should_keep_alive(p);
}

#endif
