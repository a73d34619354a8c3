/* dns.h - name resolution that never blocks a ring thread: literals, --resolve, hosts, c-ares. */
#ifndef RF_DNS_H
#define RF_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/addr.h"
#include "ring/ring.h"

struct rf_dns;

struct rf_dns_config {
    const char *server;          /* "ADDR[:PORT]" (IPv6 as "[ADDR]:PORT"), or NULL */
    const char *const *resolve;  /* "host:port:addr" entries, as curl's --resolve */
    size_t n_resolve;
    const char *hosts_file;      /* NULL means /etc/hosts */
    unsigned query_timeout_ms;   /* per-try c-ares timeout; 0 means 2000 */
};

/*
 * Called once per pending lookup, from the ring's completions or timers: err is 0 and
 * `addrs` the host's addresses (port 0; a reference the callee must addrs_release()), or
 * err is -RF_ERR_DNS and addrs NULL.
 */
typedef void (*dns_done_fn)(void *ctx, uint64_t cookie, int err, const struct rf_addrs *addrs);

/*
 * Registers its poll completions and its timer with the ring. Returns 0,
 * -RF_ERR_INVALID_ARG (a bad --resolve or server string) or -RF_ERR_NOMEM.
 */
int dns_create(struct rf_dns **out, struct rf_ring *ring, const struct rf_dns_config *cfg,
               dns_done_fn done, void *ctx);
void dns_destroy(struct rf_dns *d);

/*
 * Resolve `host` (len bytes, not NUL-terminated; an IPv6 literal without brackets) for
 * `port` (which only --resolve entries look at). Returns 0 with *out (a reference to
 * release) when the answer is known at once (IP literal, --resolve, hosts file, cache), 1
 * when a query is under way (done() will be called with `cookie`), or -RF_ERR_DNS.
 */
int dns_lookup(struct rf_dns *d, const char *host, size_t len, uint16_t port,
               const struct rf_addrs **out, uint64_t cookie);

#endif
