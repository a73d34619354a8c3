/* http1.h - the HTTP/1.1 request head, shared by fetch jobs and bench templates. */
#ifndef RF_HTTP1_H
#define RF_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "url.h"

struct http1_req {
    const char *method;
    const char *url;             /* the string u's offsets index */
    const struct rf_url *u;
    const char *const *headers;  /* "Name: value" lines without CRLF */
    size_t n_headers;
    int has_body;
    size_t body_len;
    const char *ua_line;         /* "User-Agent: ...\r\n", or ua_len 0 for none */
    size_t ua_len;
    int close;                   /* add Connection: close */
};

/* Write the head into buf; returns its length or -RF_ERR_TOO_LARGE when cap is short. */
int http1_format_request(char *buf, uint32_t cap, const struct http1_req *r);

#endif
