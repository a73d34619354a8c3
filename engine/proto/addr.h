/* addr.h - socket addresses as the engine keeps them, and shared lists of a host's addresses. */
#ifndef RF_ADDR_H
#define RF_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address with its port: 28 bytes, not sockaddr_storage's 128. */
struct rf_sockaddr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
    socklen_t len;
};

/*
 * The addresses of a host (port 0), in the order connections try them: families
 * interleaved, IPv6 first (RFC 8305 4, RFC 6724). Shared by reference between the resolver's
 * cache and the connections using them; one ring thread owns both, so the count is plain.
 */
struct rf_addrs {
    uint32_t refs;
    uint32_t n;
    struct rf_sockaddr a[];
};

#define RF_ADDRS_MAX 16 /* a host's addresses beyond these are not tried */

/* A list with room for n addresses and one reference, or NULL. */
struct rf_addrs *addrs_new(uint32_t n);
static inline const struct rf_addrs *addrs_hold(const struct rf_addrs *l)
{
    ((struct rf_addrs *)l)->refs++;
    return l;
}
void addrs_release(const struct rf_addrs *l);
/* Reorder l->a in place: IPv6 and IPv4 alternating, IPv6 first, each family's order kept. */
void addrs_interleave(struct rf_addrs *l);

/* Parse an IPv4 or IPv6 literal (NUL-terminated, IPv6 without brackets); port 0. 0 or -1. */
int addr_parse(const char *s, struct rf_sockaddr *out);
void addr_set_port(struct rf_sockaddr *a, uint16_t port);
/* The address as text ("127.0.0.1", "::1") into buf; returns buf, or "" if it does not fit. */
const char *addr_text(const struct rf_sockaddr *a, char *buf, size_t len);

#endif
