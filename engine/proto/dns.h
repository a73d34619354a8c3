/* dns.h - name resolution that never blocks a ring thread: literals, --resolve, hosts, c-ares. */
#ifndef RF_DNS_H
#define RF_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

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
 * Called once per pending lookup, from dns_handle_cqe() or dns_tick(): err is 0 and
 * sa/salen hold the address with the lookup's port set, or err is -RF_ERR_DNS.
 */
typedef void (*dns_done_fn)(void *ctx, uint64_t cookie, int err, const struct sockaddr *sa,
                            socklen_t salen);

/* Returns 0, -RF_ERR_INVALID_ARG (a bad --resolve or server string) or -RF_ERR_NOMEM. */
int dns_create(struct rf_dns **out, struct rf_ring *ring, const struct rf_dns_config *cfg,
               dns_done_fn done, void *ctx);
void dns_destroy(struct rf_dns *d);

/*
 * Resolve `host` (len bytes, not NUL-terminated; an IPv6 literal without brackets) for
 * `port`. Returns 0 with *out filled when the answer is known at once (IP literal,
 * --resolve, hosts file, cache), 1 when a query is under way (done() will be called
 * with `cookie`), or -RF_ERR_DNS.
 */
int dns_lookup(struct rf_dns *d, const char *host, size_t len, uint16_t port,
               struct sockaddr_storage *out, socklen_t *outlen, uint64_t cookie);

/* Handle a completion whose user_data carries OP_DNS_POLL. */
void dns_handle_cqe(struct rf_dns *d, const struct io_uring_cqe *cqe);

/* Milliseconds until c-ares needs dns_tick() (retransmit/timeout), or -1 when idle. */
int dns_timeout_ms(struct rf_dns *d);
void dns_tick(struct rf_dns *d);

#endif
