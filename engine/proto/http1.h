/* http1.h - the HTTP/1.1 request head, shared by fetch jobs and bench templates. */
#ifndef RF_HTTP1_H
#define RF_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "proto/url.h"

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

/*
 * A method that is an RFC 9110 token and headers that each hold a colon and no CR or LF:
 * what a caller passes can then never add a line to the request.
 */
int http1_valid_request(const char *method, const char *const *headers, size_t n_headers);

/* Write the head into buf; returns its length or -RF_ERR_TOO_LARGE when cap is short. */
int http1_format_request(char *buf, uint32_t cap, const struct http1_req *r);

#endif
