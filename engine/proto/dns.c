/*
 * dns.c - name resolution that never blocks a ring thread.
 *
 * Order of lookup: IP literal, --resolve overrides, the hosts file (read once at start),
 * the per-host cache, then c-ares. c-ares tells us which sockets it wants watched through
 * its socket-state callback; each becomes a one-shot ring poll whose completion drives
 * ares_process_fd(). Lookups of a host already being queried wait on that query.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proto/dns.h"
#include "ring/hash.h"
#include "ring/list.h"
#include "ringfetch.h"
#include "ring/udata.h"

#define DNS_BUCKETS 4096      /* power of two */
#define DNS_CACHE_MAX 16384   /* resolved entries kept; the oldest go first */
#define DNS_TTL_MAX_S 300     /* cap on a positive answer's TTL */
#define DNS_NEG_TTL_S 5       /* how long a failure is remembered */
#define DNS_NAME_MAX 253

enum entry_state { E_PENDING, E_OK, E_FAILED };

struct waiter {
    uint64_t cookie;
    uint16_t port;
};

struct entry {
    struct entry *next;         /* hash chain */
    struct list age;            /* resolved, evictable entries, oldest first */
    struct rf_dns *dns;
    uint8_t state;
    uint8_t permanent;          /* from the hosts file: never expires or evicted */
    uint64_t expires_ms;
    struct rf_addrs *addrs;     /* E_OK: the answer (the entry holds a reference) */
    struct waiter *waiters;     /* lookups waiting for the query, while E_PENDING */
    uint32_t nwaiters, capwaiters;
    char name[];
};

struct override {
    char *host;
    uint16_t port;              /* 0 matches any port */
    struct rf_addrs *addrs;
};

/* A socket c-ares asked us to watch, and the ring poll watching it. */
struct tracker {
    int fd;                     /* -1 when unused */
    uint32_t gen;
    short events;               /* POLLIN/POLLOUT c-ares wants */
    uint8_t armed;
};

struct rf_dns {
    struct rf_ring *ring;
    ares_channel channel;
    dns_done_fn done;
    void *ctx;
    int destroying;
    int registered;             /* its poll handler and timer are on the ring */
    unsigned queries;           /* c-ares queries in flight */
    struct entry *buckets[DNS_BUCKETS];
    unsigned ncached;           /* entries on the age list */
    struct list age;
    struct override *overrides;
    size_t noverrides;
    struct tracker *trackers;
    unsigned ntrackers;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t name_hash(const char *s, size_t len) { return fnv1a(FNV1A_INIT, s, len); }

/* ---- cache ---- */

static struct entry *cache_find(struct rf_dns *d, const char *name, size_t len, uint32_t h)
{
    for (struct entry *e = d->buckets[h & (DNS_BUCKETS - 1)]; e; e = e->next)
        if (strlen(e->name) == len && memcmp(e->name, name, len) == 0)
            return e;
    return NULL;
}

static void cache_remove(struct rf_dns *d, struct entry *victim)
{
    struct entry **pp = &d->buckets[name_hash(victim->name, strlen(victim->name)) &
                                     (DNS_BUCKETS - 1)];

    while (*pp != victim)
        pp = &(*pp)->next;
    *pp = victim->next;
    if (list_linked(&victim->age)) {
        list_del(&victim->age);
        d->ncached--;
    }
    free(victim->waiters);
    addrs_release(victim->addrs);
    free(victim);
}

static struct entry *cache_insert(struct rf_dns *d, const char *name, size_t len, uint32_t h)
{
    struct entry *e;

    while (d->ncached >= DNS_CACHE_MAX)
        cache_remove(d, list_entry(d->age.next, struct entry, age));
    e = calloc(1, sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    memcpy(e->name, name, len);
    e->dns = d;
    list_init(&e->age);
    e->next = d->buckets[h & (DNS_BUCKETS - 1)];
    d->buckets[h & (DNS_BUCKETS - 1)] = e;
    return e;
}

/* ---- c-ares socket watching ---- */

static void tracker_arm(struct rf_dns *d, unsigned i)
{
    struct tracker *t = &d->trackers[i];
    struct io_uring_sqe *sqe = ring_sqe(d->ring);

    io_uring_prep_poll_add(sqe, t->fd, (unsigned)t->events);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_DNS_POLL, t->gen, i));
    t->armed = 1;
}

static void tracker_disarm(struct rf_dns *d, unsigned i)
{
    struct tracker *t = &d->trackers[i];
    struct io_uring_sqe *sqe;

    if (!t->armed)
        return;
    sqe = ring_sqe(d->ring);
    io_uring_prep_poll_remove(sqe, ud_pack(OP_DNS_POLL, t->gen, i));
    io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, 0, 0));
    t->armed = 0;
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct rf_dns *d = data;
    short events = (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
    unsigned i, free_i = d->ntrackers;

    for (i = 0; i < d->ntrackers; i++) {
        if (d->trackers[i].fd == fd)
            break;
        if (d->trackers[i].fd < 0 && free_i == d->ntrackers)
            free_i = i;
    }
    if (i == d->ntrackers) {
        if (!events)
            return;
        if (free_i == d->ntrackers) {
            struct tracker *grown = realloc(d->trackers, (d->ntrackers + 4) * sizeof(*grown));

            if (!grown)
                return; /* the query will time out in c-ares and fail as dns */
            d->trackers = grown;
            for (unsigned k = d->ntrackers; k < d->ntrackers + 4; k++)
                d->trackers[k] = (struct tracker){ .fd = -1 };
            d->ntrackers += 4;
        }
        i = free_i;
        d->trackers[i].fd = fd;
    } else if (d->trackers[i].events == events) {
        return;
    }
    /* A new generation for every change: the old poll's completion is then stale. */
    if (!d->destroying)
        tracker_disarm(d, i);
    d->trackers[i].gen++;
    d->trackers[i].events = events;
    if (!events)
        d->trackers[i].fd = -1;
    else if (!d->destroying)
        tracker_arm(d, i);
}

static void on_poll(void *ctx, struct io_uring_cqe *cqe)
{
    struct rf_dns *d = ctx;
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    unsigned i = ud_idx(ud);
    struct tracker *t;
    int rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

    if (i >= d->ntrackers)
        return;
    t = &d->trackers[i];
    if (t->fd < 0 || (t->gen & UD_GEN_MASK) != ud_gen(ud))
        return; /* the socket went or c-ares changed its mind since this poll was armed */
    t->armed = 0;
    if (cqe->res > 0) {
        if (cqe->res & (POLLIN | POLLERR | POLLHUP))
            rfd = t->fd;
        if (cqe->res & POLLOUT)
            wfd = t->fd;
        ares_process_fd(d->channel, rfd, wfd);
    }
    t = &d->trackers[i]; /* the callbacks above may have grown the array */
    if (t->fd >= 0 && (t->gen & UD_GEN_MASK) == ud_gen(ud) && !t->armed)
        tracker_arm(d, i);
}

/* The ring timer: c-ares's next retransmit or timeout, as an absolute ring time. */
static int64_t timer_next(void *ctx)
{
    struct rf_dns *d = ctx;
    struct timeval tv, *tvp;

    if (!d->queries)
        return -1;
    tvp = ares_timeout(d->channel, NULL, &tv);
    if (!tvp)
        return -1;
    return (int64_t)d->ring->now + (int64_t)tvp->tv_sec * 1000000 + tvp->tv_usec;
}

static void timer_fire(void *ctx, uint64_t now)
{
    struct rf_dns *d = ctx;

    (void)now;
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

/* ---- queries ---- */

/* Every address of the answer, families interleaved (addrs.h), or NULL. */
static struct rf_addrs *answer_list(const struct ares_addrinfo *res, uint64_t *ttl_s)
{
    const struct ares_addrinfo_node *n;
    struct rf_addrs *l;
    uint32_t k = 0;
    int ttl = -1;

    for (n = res ? res->nodes : NULL; n; n = n->ai_next)
        k++;
    if (!k || !(l = addrs_new(k < RF_ADDRS_MAX ? k : RF_ADDRS_MAX)))
        return NULL;
    for (n = res->nodes; n && l->n < RF_ADDRS_MAX; n = n->ai_next) {
        struct rf_sockaddr *a = &l->a[l->n];

        if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
            n->ai_addrlen > sizeof(a->u))
            continue;
        memcpy(&a->u, n->ai_addr, n->ai_addrlen);
        a->len = n->ai_addrlen;
        addr_set_port(a, 0);
        l->n++;
        if (ttl < 0 || n->ai_ttl < ttl)
            ttl = n->ai_ttl;
    }
    if (!l->n) {
        addrs_release(l);
        return NULL;
    }
    addrs_interleave(l);
    *ttl_s = ttl > 0 ? (uint64_t)ttl : 1;
    return l;
}

static void deliver(struct rf_dns *d, struct entry *e)
{
    struct waiter *w = e->waiters;
    uint32_t n = e->nwaiters;
    const struct rf_addrs *l = e->state == E_OK ? addrs_hold(e->addrs) : NULL;

    /* Detach first: a done() callback may start a lookup of this very host, or evict it. */
    e->waiters = NULL;
    e->nwaiters = e->capwaiters = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (l)
            d->done(d->ctx, w[k].cookie, 0, addrs_hold(l));
        else
            d->done(d->ctx, w[k].cookie, -RF_ERR_DNS, NULL);
    }
    addrs_release(l);
    free(w);
}

static void query_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct entry *e = arg;
    struct rf_dns *d = e->dns;
    uint64_t ttl_s = DNS_NEG_TTL_S;

    (void)timeouts;
    d->queries--;
    e->addrs = status == ARES_SUCCESS ? answer_list(res, &ttl_s) : NULL;
    e->state = e->addrs ? E_OK : E_FAILED;
    if (ttl_s > DNS_TTL_MAX_S)
        ttl_s = DNS_TTL_MAX_S;
    if (res)
        ares_freeaddrinfo(res);
    e->expires_ms = now_ms() + ttl_s * 1000;
    list_add_tail(&d->age, &e->age);
    d->ncached++;
    if (!d->destroying)
        deliver(d, e);
}

static int add_waiter(struct entry *e, uint64_t cookie, uint16_t port)
{
    if (e->nwaiters == e->capwaiters) {
        uint32_t cap = e->capwaiters ? e->capwaiters * 2 : 4;
        struct waiter *w = realloc(e->waiters, cap * sizeof(*w));

        if (!w)
            return -RF_ERR_DNS;
        e->waiters = w;
        e->capwaiters = cap;
    }
    e->waiters[e->nwaiters++] = (struct waiter){ cookie, port };
    return 1;
}

static int answer(const struct entry *e, const struct rf_addrs **out)
{
    if (e->state != E_OK)
        return -RF_ERR_DNS;
    *out = addrs_hold(e->addrs);
    return 0;
}

/* An IP literal is its own answer, cached like one so repeats allocate nothing. */
static int literal(struct rf_dns *d, const char *name, size_t len, uint32_t h,
                   const struct rf_sockaddr *sa, const struct rf_addrs **out)
{
    struct entry *e = cache_insert(d, name, len, h);

    if (!e || !(e->addrs = addrs_new(1)))
        return -RF_ERR_DNS;
    e->addrs->a[0] = *sa;
    e->addrs->n = 1;
    e->state = E_OK;
    e->expires_ms = UINT64_MAX;
    list_add_tail(&d->age, &e->age);
    d->ncached++;
    return answer(e, out);
}

int dns_lookup(struct rf_dns *d, const char *host, size_t len, uint16_t port,
               const struct rf_addrs **out, uint64_t cookie)
{
    char name[DNS_NAME_MAX + 1];
    struct ares_addrinfo_hints hints;
    struct rf_sockaddr sa;
    struct entry *e;
    uint32_t h;

    if (len == 0 || len > DNS_NAME_MAX)
        return -RF_ERR_DNS;
    /* Names are case-insensitive: the hosts file entries and the cache keys are lower-case. */
    for (size_t i = 0; i < len; i++)
        name[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + 32 : host[i]);
    name[len] = '\0';
    for (size_t i = 0; i < d->noverrides; i++) {
        const struct override *o = &d->overrides[i];

        if ((o->port == 0 || o->port == port) && strcasecmp(o->host, name) == 0) {
            *out = addrs_hold(o->addrs);
            return 0;
        }
    }
    h = name_hash(name, len);
    e = cache_find(d, name, len, h);
    if (!e && addr_parse(name, &sa) == 0)
        return literal(d, name, len, h, &sa, out);
    if (e && e->state != E_PENDING && !e->permanent && e->expires_ms <= now_ms()) {
        cache_remove(d, e);
        e = NULL;
    }
    if (e) {
        if (e->state == E_PENDING)
            return add_waiter(e, cookie, port);
        return answer(e, out);
    }
    e = cache_insert(d, name, len, h);
    if (!e)
        return -RF_ERR_DNS;
    e->state = E_PENDING;
    d->queries++;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(d->channel, name, NULL, &hints, query_done, e);
    /* c-ares may have answered (or failed) already, inside the call. */
    if (e->state == E_PENDING)
        return add_waiter(e, cookie, port);
    return answer(e, out);
}

/* ---- setup ---- */

/*
 * "host:port:addr[,addr...]" as curl's --resolve; each addr may be bracketed. The addresses
 * are tried in the order given.
 */
static int parse_override(const char *s, struct override *o)
{
    const char *c1, *c2;
    char addr[INET6_ADDRSTRLEN + 2], *end;
    size_t alen;
    long port;
    uint32_t n = 1;

    s = s[0] == '+' ? s + 1 : s; /* curl's "+host" (time-limited entry) means the same here */
    c1 = strchr(s, ':');
    c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || c1 == s)
        return -1;
    if (c2 - c1 == 2 && c1[1] == '*') {
        port = 0;
    } else {
        port = strtol(c1 + 1, &end, 10);
        if (end != c2 || port < 1 || port > 65535)
            return -1;
    }
    for (const char *p = ++c2; *p; p++)
        n += *p == ',';
    if (n > RF_ADDRS_MAX || !(o->addrs = addrs_new(n)))
        return -1;
    for (;;) {
        const char *a = c2;

        alen = strcspn(c2, ",");
        if (alen >= 2 && a[0] == '[' && a[alen - 1] == ']') {
            a++;
            alen -= 2;
        }
        if (alen == 0 || alen >= sizeof(addr))
            return -1;
        memcpy(addr, a, alen);
        addr[alen] = '\0';
        if (addr_parse(addr, &o->addrs->a[o->addrs->n++]))
            return -1;
        c2 += strcspn(c2, ",");
        if (!*c2++)
            break;
    }
    o->host = strndup(s, (size_t)(c1 - s));
    o->port = (uint16_t)port;
    return o->host ? 0 : -1;
}

/*
 * "ADDR[:PORT]" or "[ADDR]:PORT", a comma-separated list of them as c-ares takes. Checked
 * here because c-ares 1.18 accepts an empty string (keeping resolv.conf's servers) and cuts
 * a port past 65535 to 16 bits.
 */
static int check_servers(const char *s)
{
    char addr[INET6_ADDRSTRLEN + 2];
    struct rf_sockaddr sa;

    for (;;) {
        size_t n = strcspn(s, ","), alen = n;
        const char *a = s, *port = NULL, *colon = memchr(s, ':', n);

        if (s[0] == '[') {
            const char *close = memchr(s, ']', n);

            if (!close || (close + 1 < s + n && close[1] != ':'))
                return -1;
            a = s + 1;
            alen = (size_t)(close - a);
            port = close + 1 < s + n ? close + 2 : NULL;
        } else if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) {
            alen = (size_t)(colon - s); /* one colon: IPv4 with a port; more: bare IPv6 */
            port = colon + 1;
        }
        if (alen == 0 || alen >= sizeof(addr))
            return -1;
        memcpy(addr, a, alen);
        addr[alen] = '\0';
        if (addr_parse(addr, &sa))
            return -1;
        if (port) {
            size_t plen = (size_t)(s + n - port);
            long v = 0;

            if (plen < 1 || plen > 5 || strspn(port, "0123456789") < plen)
                return -1;
            for (size_t i = 0; i < plen; i++)
                v = v * 10 + (port[i] - '0');
            if (v < 1 || v > 65535)
                return -1;
        }
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

static void add_host(struct rf_dns *d, const char *name, const struct rf_sockaddr *sa)
{
    size_t len = strlen(name);
    char lc[DNS_NAME_MAX + 1];
    struct entry *e;
    uint32_t h;

    if (len == 0 || len > DNS_NAME_MAX)
        return;
    for (size_t i = 0; i <= len; i++)
        lc[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    h = name_hash(lc, len);
    if (cache_find(d, lc, len, h))
        return; /* the first line naming a host wins, as in glibc */
    e = calloc(1, sizeof(*e) + len + 1);
    if (!e || !(e->addrs = addrs_new(1))) {
        free(e);
        return;
    }
    memcpy(e->name, lc, len);
    e->dns = d;
    e->state = E_OK;
    e->permanent = 1;
    list_init(&e->age);
    e->addrs->a[0] = *sa;
    e->addrs->n = 1;
    e->next = d->buckets[h & (DNS_BUCKETS - 1)];
    d->buckets[h & (DNS_BUCKETS - 1)] = e;
}

static void load_hosts(struct rf_dns *d, const char *path)
{
    FILE *f = fopen(path, "re");
    char line[1024], *save, *tok;
    struct rf_sockaddr sa;

    if (f) {
        while (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "#\n")] = '\0';
            tok = strtok_r(line, " \t\r", &save);
            if (!tok || addr_parse(tok, &sa))
                continue;
            while ((tok = strtok_r(NULL, " \t\r", &save)))
                add_host(d, tok, &sa);
        }
        fclose(f);
    }
    /* RFC 6761: localhost is loopback even when the hosts file forgets it. */
    addr_parse("127.0.0.1", &sa);
    add_host(d, "localhost", &sa);
}

int dns_create(struct rf_dns **out, struct rf_ring *ring, const struct rf_dns_config *cfg,
               dns_done_fn done, void *ctx)
{
    struct rf_dns *d = calloc(1, sizeof(*d));
    struct ares_options opts;
    int ret = -RF_ERR_NOMEM;

    *out = NULL;
    if (!d)
        return -RF_ERR_NOMEM;
    d->ring = ring;
    d->done = done;
    d->ctx = ctx;
    list_init(&d->age);
    if (cfg->n_resolve) {
        d->overrides = calloc(cfg->n_resolve, sizeof(*d->overrides));
        if (!d->overrides)
            goto fail;
        for (size_t i = 0; i < cfg->n_resolve; i++) {
            d->noverrides++; /* counted first: dns_destroy() frees a half-parsed one */
            if (parse_override(cfg->resolve[i], &d->overrides[i])) {
                ret = -RF_ERR_INVALID_ARG;
                goto fail;
            }
        }
    }
    load_hosts(d, cfg->hosts_file ? cfg->hosts_file : "/etc/hosts");

    memset(&opts, 0, sizeof(opts));
    opts.sock_state_cb = sock_state_cb;
    opts.sock_state_cb_data = d;
    opts.timeout = cfg->query_timeout_ms ? (int)cfg->query_timeout_ms : 2000;
    opts.tries = 2;
    opts.lookups = (char *)"b"; /* the hosts file is ours (above); c-ares asks DNS only */
    if (ares_init_options(&d->channel, &opts,
                          ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                              ARES_OPT_LOOKUPS) != ARES_SUCCESS) {
        d->channel = NULL;
        goto fail;
    }
    if (cfg->server && (check_servers(cfg->server) ||
                        ares_set_servers_ports_csv(d->channel, cfg->server) != ARES_SUCCESS)) {
        ret = -RF_ERR_INVALID_ARG;
        goto fail;
    }
    /* Last: a resolver that failed to set up leaves nothing registered behind. */
    if (ring_add_timer(ring, &(struct ring_timer){timer_next, timer_fire, d}))
        goto fail;
    ring_on(ring, OP_DNS_POLL, on_poll, d);
    d->registered = 1;
    *out = d;
    return 0;
fail:
    dns_destroy(d);
    return ret;
}

void dns_destroy(struct rf_dns *d)
{
    if (!d)
        return;
    d->destroying = 1;
    if (d->registered) {
        ring_off(d->ring, OP_DNS_POLL);
        ring_del_timer(d->ring, d);
    }
    if (d->channel)
        ares_destroy(d->channel); /* runs pending callbacks with ARES_EDESTRUCTION */
    for (unsigned b = 0; b < DNS_BUCKETS; b++) {
        while (d->buckets[b]) {
            struct entry *e = d->buckets[b];

            d->buckets[b] = e->next;
            addrs_release(e->addrs);
            free(e->waiters);
            free(e);
        }
    }
    for (size_t i = 0; i < d->noverrides; i++) {
        free(d->overrides[i].host);
        addrs_release(d->overrides[i].addrs);
    }
    free(d->overrides);
    free(d->trackers);
    free(d);
}
