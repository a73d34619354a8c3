/* addr.c - address parsing, text, and the shared address lists of addr.h. */
#include "proto/addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

struct rf_addrs *addrs_new(uint32_t n)
{
    struct rf_addrs *l = calloc(1, sizeof(*l) + n * sizeof(l->a[0]));

    if (l)
        l->refs = 1;
    return l;
}

void addrs_release(const struct rf_addrs *l)
{
    struct rf_addrs *m = (struct rf_addrs *)l;

    if (m && --m->refs == 0)
        free(m);
}

void addrs_interleave(struct rf_addrs *l)
{
    struct rf_sockaddr tmp[RF_ADDRS_MAX];
    uint32_t n6 = 0, n4 = 0, k = 0, i6 = 0, i4 = 0;
    uint32_t n = l->n < RF_ADDRS_MAX ? l->n : RF_ADDRS_MAX;
    struct rf_sockaddr v6[RF_ADDRS_MAX], v4[RF_ADDRS_MAX];

    for (uint32_t i = 0; i < n; i++) {
        if (l->a[i].u.sa.sa_family == AF_INET6)
            v6[n6++] = l->a[i];
        else
            v4[n4++] = l->a[i];
    }
    while (i6 < n6 || i4 < n4) {
        if (i6 < n6)
            tmp[k++] = v6[i6++];
        if (i4 < n4)
            tmp[k++] = v4[i4++];
    }
    memcpy(l->a, tmp, k * sizeof(tmp[0]));
    l->n = k;
}

int addr_parse(const char *s, struct rf_sockaddr *out)
{
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, &out->u.in.sin_addr) == 1) {
        out->u.in.sin_family = AF_INET;
        out->len = sizeof(out->u.in);
        return 0;
    }
    if (inet_pton(AF_INET6, s, &out->u.in6.sin6_addr) == 1) {
        out->u.in6.sin6_family = AF_INET6;
        out->len = sizeof(out->u.in6);
        return 0;
    }
    return -1;
}

void addr_set_port(struct rf_sockaddr *a, uint16_t port)
{
    /* sin_port and sin6_port share their offset, but say which is meant. */
    if (a->u.sa.sa_family == AF_INET6)
        a->u.in6.sin6_port = htons(port);
    else
        a->u.in.sin_port = htons(port);
}

const char *addr_text(const struct rf_sockaddr *a, char *buf, size_t len)
{
    const void *p = a->u.sa.sa_family == AF_INET6 ? (const void *)&a->u.in6.sin6_addr
                                                   : (const void *)&a->u.in.sin_addr;

    if (!inet_ntop(a->u.sa.sa_family, p, buf, (socklen_t)len) && len)
        buf[0] = '\0';
    return buf;
}
