/*
 * test_dns.c - dns.c: literals, --resolve (address lists too), the hosts file, bad
 * configuration, the references answers are handed out with, and real queries driven
 * through the ring (ring_wait + ring_dispatch) against a responder on a loopback UDP socket.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "proto/addr.h"
#include "proto/dns.h"
#include "ring/ring.h"
#include "ringfetch.h"

#define MAX_CALLS 16
#define DNS_TEST_LONG 253 /* the longest name dns.c takes */

/* One done() call. The test keeps the reference it was handed and releases it itself. */
struct call {
    uint64_t cookie;
    int err;
    const struct rf_addrs *addrs;
};

static struct call calls[MAX_CALLS];
static unsigned ncalls;

static void on_done(void *ctx, uint64_t cookie, int err, const struct rf_addrs *addrs)
{
    (void)ctx;
    if (ncalls == MAX_CALLS) {
        addrs_release(addrs);
        return;
    }
    calls[ncalls].cookie = cookie;
    calls[ncalls].err = err;
    calls[ncalls].addrs = addrs;
    ncalls++;
}

/* Release what the recorded calls hold and forget them. */
static void forget_calls(void)
{
    for (unsigned i = 0; i < ncalls; i++)
        addrs_release(calls[i].addrs);
    memset(calls, 0, sizeof(calls));
    ncalls = 0;
}

/*
 * A list as text, in order: "192.0.2.13,[2001:db8::2]". Answers carry port 0 (the
 * connection sets the port), so a nonzero port shows as ":PORT" and fails the comparison.
 */
static const char *addrs_str(const struct rf_addrs *l)
{
    static char buf[RF_ADDRS_MAX * (INET6_ADDRSTRLEN + 10)];
    size_t off = 0;

    buf[0] = '\0';
    if (!l)
        return "(null)";
    for (uint32_t i = 0; i < l->n && off < sizeof(buf); i++) {
        const struct rf_sockaddr *a = &l->a[i];
        char ip[INET6_ADDRSTRLEN];
        int v6 = a->u.sa.sa_family == AF_INET6;
        unsigned port = ntohs(v6 ? a->u.in6.sin6_port : a->u.in.sin_port);

        if ((v6 && a->len != sizeof(struct sockaddr_in6)) ||
            (!v6 && (a->u.sa.sa_family != AF_INET || a->len != sizeof(struct sockaddr_in)))) {
            off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%sfamily %d len %u",
                                    i ? "," : "", a->u.sa.sa_family, (unsigned)a->len);
            continue;
        }
        addr_text(a, ip, sizeof(ip));
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, v6 ? "%s[%s]" : "%s%s",
                                i ? "," : "", ip);
        if (port && off < sizeof(buf))
            off += (size_t)snprintf(buf + off, sizeof(buf) - off, ":%u", port);
    }
    return buf;
}

/* dns_lookup of a NUL-terminated name; on 0, the answer as addrs_str() text in *txt. */
static int lookup(struct rf_dns *d, const char *name, uint16_t port, const char **txt)
{
    const struct rf_addrs *l = (const struct rf_addrs *)&l; /* must not leak through */
    int ret;

    ret = dns_lookup(d, name, strlen(name), port, &l, 0);
    *txt = ret == 0 ? addrs_str(l) : "";
    if (ret == 0)
        addrs_release(l);
    return ret;
}

#define CHECK_ANSWER(d, name, port, want)                                                          \
    do {                                                                                           \
        const char *txt_;                                                                          \
        if (CHECK_INT(lookup((d), (name), (port), &txt_), 0))                                      \
            CHECK_STR(txt_, (want));                                                               \
    } while (0)

/* ---- an authoritative responder on the test's own UDP socket ---- */

/* The zone: each name's A and AAAA records in the order the answer lists them. */
struct zone_name {
    const char *name;
    const char *a[4];
    const char *aaaa[4];
};

static const struct zone_name zone[] = {
    {"fresh.test", {"127.0.0.9"}, {NULL}},
    /* more IPv4 than IPv6: the answer lists every A first, then every AAAA */
    {"multi.test", {"127.0.0.11", "127.0.0.12", "127.0.0.13"}, {"2001:db8::a", "2001:db8::b"}},
    /* more IPv6 than IPv4 */
    {"wide6.test", {"127.0.0.21"}, {"2001:db8::1:1", "2001:db8::1:2", "2001:db8::1:3"}},
    {"six-only.test", {NULL}, {"2001:db8::c"}},
};

/* Append the records of one family for the question at q (a name pointer to offset 12). */
static size_t add_records(unsigned char *r, size_t rlen, size_t cap, const char *const *addrs,
                          int family, unsigned *count)
{
    for (int i = 0; i < 4 && addrs[i]; i++) {
        unsigned char ip[16];
        size_t iplen = family == AF_INET ? 4 : 16;

        if (rlen + 12 + iplen > cap || inet_pton(family, addrs[i], ip) != 1)
            break;
        r[rlen++] = 0xc0; /* the name: a pointer to the question's */
        r[rlen++] = 0x0c;
        r[rlen++] = 0;
        r[rlen++] = family == AF_INET ? 1 : 28;
        r[rlen++] = 0; /* class IN */
        r[rlen++] = 1;
        r[rlen++] = 0; /* TTL 60 */
        r[rlen++] = 0;
        r[rlen++] = 0;
        r[rlen++] = 60;
        r[rlen++] = 0;
        r[rlen++] = (unsigned char)iplen;
        memcpy(r + rlen, ip, iplen);
        rlen += iplen;
        (*count)++;
    }
    return rlen;
}

/*
 * Read every query waiting on fd; when `answer`, reply from the zone above (TTL 60);
 * every other name is NXDOMAIN. Returns how many of the queries asked for `count`
 * (resolv.conf's search list may add other names).
 */
static int serve_queries(int fd, int answer, const char *count)
{
    unsigned char q[512], r[1024];
    int n = 0;

    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t len = recvfrom(fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
        const struct zone_name *z = NULL;
        char name[256];
        size_t off = 12, nl = 0, rlen;
        unsigned qtype, nans = 0;

        if (len < 0)
            break;
        if (len < 12)
            continue;
        while (off < (size_t)len && q[off] && q[off] < 64 && off + 1 + q[off] <= (size_t)len &&
               nl + q[off] + 1 < sizeof(name)) {
            if (nl)
                name[nl++] = '.';
            memcpy(name + nl, q + off + 1, q[off]);
            nl += q[off];
            off += 1 + (size_t)q[off];
        }
        name[nl] = '\0';
        n += count && strcasecmp(name, count) == 0;
        if (!answer || off + 5 > (size_t)len)
            continue;
        for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++)
            if (strcasecmp(name, zone[i].name) == 0)
                z = &zone[i];
        qtype = (unsigned)q[off + 1] << 8 | q[off + 2];
        rlen = off + 5; /* header and question; an EDNS record in the query is dropped */
        memcpy(r, q, rlen);
        r[2] = (unsigned char)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
        r[3] = 0;
        memset(r + 4, 0, 8);
        r[5] = 1;
        if (!z)
            r[3] = 3; /* NXDOMAIN */
        else if (qtype == 1)
            rlen = add_records(r, rlen, sizeof(r), z->a, AF_INET, &nans);
        else if (qtype == 28)
            rlen = add_records(r, rlen, sizeof(r), z->aaaa, AF_INET6, &nans);
        r[7] = (unsigned char)nans;
        sendto(fd, r, rlen, 0, (struct sockaddr *)&from, flen);
    }
    return n;
}

/*
 * Run the ring as a loop turn does (ring_wait, then ring_dispatch: the resolver's polls
 * and its timer) and the responder, until `want` done() calls arrived or ~5 s passed.
 */
static int pump(struct rf_ring *r, int fd, int answer, unsigned want, const char *count)
{
    int queries = 0;

    for (int i = 0; i < 500 && ncalls < want; i++) {
        queries += serve_queries(fd, answer, count);
        if (ring_wait(r, 1, 10000) != 0)
            break;
        ring_dispatch(r, UINT_MAX);
    }
    return queries + serve_queries(fd, 0, count);
}

/* ---- cases ---- */

static const char *const good_resolve[] = {
    "exact.test:8080:192.0.2.10",
    "any.test:*:192.0.2.11",
    "v6.test:443:[2001:db8::2]",
    "+plus.test:80:192.0.2.12",
    "list.test:80:192.0.2.13,192.0.2.14",
    "exact.test:9090:192.0.2.15",
    "bare6.test:80:2001:db8::3",
    /* a list keeps the order given (no interleaving), bare and bracketed IPv6 alike */
    "mixed.test:443:192.0.2.16,[2001:db8::5],2001:db8::6,192.0.2.17",
    "anylist.test:*:[2001:db8::7],192.0.2.18",
    /* RF_ADDRS_MAX addresses: the most a list takes */
    "many.test:80:10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,10.0.0.6,10.0.0.7,10.0.0.8,"
    "10.0.0.9,10.0.0.10,10.0.0.11,10.0.0.12,10.0.0.13,10.0.0.14,10.0.0.15,10.0.0.16",
};

static void test_synchronous(struct rf_dns *d)
{
    char longname[DNS_TEST_LONG + 2];
    const char *txt;

    /* IP literals; every answer has port 0, whatever the lookup's port */
    CHECK_ANSWER(d, "192.0.2.7", 8080, "192.0.2.7");
    CHECK_ANSWER(d, "2001:db8::1", 443, "[2001:db8::1]");
    CHECK_ANSWER(d, "::1", 1, "[::1]");
    /* --resolve: exact port, any port, case, bracketed and bare IPv6, "+host" */
    CHECK_ANSWER(d, "exact.test", 8080, "192.0.2.10");
    CHECK_ANSWER(d, "exact.test", 9090, "192.0.2.15");
    CHECK_ANSWER(d, "EXACT.Test", 8080, "192.0.2.10");
    CHECK_ANSWER(d, "exact.test", 7070, "192.0.2.50"); /* no override: the hosts file */
    CHECK_ANSWER(d, "any.test", 1, "192.0.2.11");
    CHECK_ANSWER(d, "any.test", 65535, "192.0.2.11");
    CHECK_ANSWER(d, "v6.test", 443, "[2001:db8::2]");
    CHECK_ANSWER(d, "bare6.test", 80, "[2001:db8::3]");
    CHECK_ANSWER(d, "plus.test", 80, "192.0.2.12");
    /* --resolve with several addresses: all of them, in the order given */
    CHECK_ANSWER(d, "list.test", 80, "192.0.2.13,192.0.2.14");
    CHECK_ANSWER(d, "mixed.test", 443, "192.0.2.16,[2001:db8::5],[2001:db8::6],192.0.2.17");
    CHECK_ANSWER(d, "anylist.test", 8443, "[2001:db8::7],192.0.2.18");
    CHECK_ANSWER(d, "many.test", 80,
                 "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,10.0.0.6,10.0.0.7,10.0.0.8,"
                 "10.0.0.9,10.0.0.10,10.0.0.11,10.0.0.12,10.0.0.13,10.0.0.14,10.0.0.15,"
                 "10.0.0.16");
    /* the hosts file: first line wins, any case, aliases, tabs, IPv6, comments */
    CHECK_ANSWER(d, "first.test", 80, "192.0.2.20");
    CHECK_ANSWER(d, "FIRST.TEST", 81, "192.0.2.20");
    CHECK_ANSWER(d, "alias.test", 82, "192.0.2.20");
    CHECK_ANSWER(d, "tabbed.test", 83, "192.0.2.22");
    CHECK_ANSWER(d, "six.test", 84, "[2001:db8::20]");
    CHECK_ANSWER(d, "after.comment.test", 85, "192.0.2.24");
    /* localhost is loopback although the file does not name it */
    CHECK_ANSWER(d, "localhost", 8000, "127.0.0.1");
    CHECK_ANSWER(d, "LocalHost", 8001, "127.0.0.1");
    /* the name is len bytes, not NUL-terminated */
    {
        const struct rf_addrs *l;

        if (CHECK_INT(dns_lookup(d, "first.test.example", 10, 80, &l, 0), 0)) {
            CHECK_STR(addrs_str(l), "192.0.2.20");
            addrs_release(l);
        }
        if (CHECK_INT(dns_lookup(d, "192.0.2.30:99", 10, 99, &l, 0), 0)) {
            CHECK_STR(addrs_str(l), "192.0.2.30");
            addrs_release(l);
        }
    }
    /* 253 bytes is the longest name (one in the hosts file); 254 and 0 fail at once */
    memset(longname, 'a', sizeof(longname));
    longname[DNS_TEST_LONG] = '\0';
    CHECK_ANSWER(d, longname, 80, "192.0.2.40");
    longname[DNS_TEST_LONG] = 'a';
    longname[DNS_TEST_LONG + 1] = '\0';
    CHECK_INT(lookup(d, longname, 80, &txt), -RF_ERR_DNS);
    CHECK_INT(lookup(d, "", 80, &txt), -RF_ERR_DNS);
    CHECK_INT(ncalls, 0);
}

/*
 * An answer known at once is a reference the caller holds: the same list for every
 * lookup of the name (a literal is cached, an override and a hosts line are kept), one
 * more reference each, back to the owner's one when released.
 */
static void test_references(struct rf_dns *d)
{
    const char *names[] = {"192.0.2.99", "list.test", "first.test"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct rf_addrs *a = NULL, *b = NULL;
        int before = check_failures();

        if (!CHECK_INT(dns_lookup(d, names[i], strlen(names[i]), 80, &a, 0), 0))
            continue;
        CHECK_UINT(a->refs, 2); /* the cache's (or override's) and ours */
        if (CHECK_INT(dns_lookup(d, names[i], strlen(names[i]), 80, &b, 0), 0)) {
            CHECK(b == a);
            CHECK_UINT(a->refs, 3);
            addrs_release(b);
        }
        CHECK_UINT(a->refs, 2);
        addrs_release(a);
        CHECK_UINT(a->refs, 1); /* still the owner's: the list lives on */
        if (check_failures() != before)
            fprintf(stderr, "  references of \"%s\"\n", names[i]);
    }
}

/*
 * Lookups that go to the responder: shared waiters, the cache, NXDOMAIN, the negative
 * cache, and answers with several addresses of both families.
 */
static void test_queries(struct rf_dns *d, struct rf_ring *r, int fd)
{
    const struct rf_addrs *l = NULL;
    const char *txt;
    int queries;

    forget_calls();
    CHECK_INT(ring_next_due(r), -1); /* no query, no timer */
    CHECK_INT(dns_lookup(d, "fresh.test", 10, 80, &l, 1), 1);
    CHECK_INT(dns_lookup(d, "Fresh.Test", 10, 8080, &l, 2), 1); /* waits on the first */
    CHECK(ring_next_due(r) > (int64_t)r->now);
    queries = pump(r, fd, 1, 2, "fresh.test");
    CHECK_INT(queries, 2); /* one A, one AAAA */
    if (CHECK_INT(ncalls, 2)) {
        CHECK_UINT(calls[0].cookie, 1);
        CHECK_INT(calls[0].err, 0);
        CHECK_STR(addrs_str(calls[0].addrs), "127.0.0.9");
        CHECK_UINT(calls[1].cookie, 2);
        CHECK_INT(calls[1].err, 0);
        /* one list, shared: the cache's reference and one per waiter */
        CHECK(calls[1].addrs == calls[0].addrs);
        if (calls[0].addrs)
            CHECK_UINT(calls[0].addrs->refs, 3);
    }
    forget_calls();
    if (CHECK_INT(dns_lookup(d, "fresh.test", 10, 443, &l, 3), 0)) { /* from the cache */
        CHECK_STR(addrs_str(l), "127.0.0.9");
        CHECK_UINT(l->refs, 2);
        addrs_release(l);
    }
    CHECK_INT(ring_next_due(r), -1);
    CHECK_INT(ncalls, 0);

    /* Every A and AAAA address, IPv6 first, the families interleaved, each family's order
     * kept; whichever family has more addresses ends the list. */
    CHECK_INT(dns_lookup(d, "multi.test", 10, 80, &l, 4), 1);
    CHECK_INT(dns_lookup(d, "wide6.test", 10, 80, &l, 5), 1);
    CHECK_INT(dns_lookup(d, "six-only.test", 13, 80, &l, 6), 1);
    queries = pump(r, fd, 1, 3, NULL);
    if (CHECK_INT(ncalls, 3)) {
        for (unsigned i = 0; i < 3; i++) {
            CHECK_INT(calls[i].err, 0);
            if (calls[i].cookie == 4)
                CHECK_STR(addrs_str(calls[i].addrs),
                          "[2001:db8::a],127.0.0.11,[2001:db8::b],127.0.0.12,127.0.0.13");
            else if (calls[i].cookie == 5)
                CHECK_STR(addrs_str(calls[i].addrs),
                          "[2001:db8::1:1],127.0.0.21,[2001:db8::1:2],[2001:db8::1:3]");
            else if (CHECK_UINT(calls[i].cookie, 6))
                CHECK_STR(addrs_str(calls[i].addrs), "[2001:db8::c]");
        }
    }
    forget_calls();
    CHECK_ANSWER(d, "MULTI.test", 1,
                 "[2001:db8::a],127.0.0.11,[2001:db8::b],127.0.0.12,127.0.0.13");

    /* Names the hosts file has only in a comment or after a bad address are asked. */
    CHECK_INT(dns_lookup(d, "commented.test", 14, 80, &l, 3), 1);
    CHECK_INT(dns_lookup(d, "bogus.test", 10, 80, &l, 4), 1);
    queries = pump(r, fd, 1, 2, "bogus.test");
    CHECK_INT(queries, 2);
    if (CHECK_INT(ncalls, 2)) {
        CHECK_INT(calls[0].err + calls[1].err, 2 * -RF_ERR_DNS);
        CHECK_UINT(calls[0].cookie + calls[1].cookie, 7);
        CHECK(calls[0].addrs == NULL && calls[1].addrs == NULL);
    }
    CHECK_INT(lookup(d, "commented.test", 80, &txt), -RF_ERR_DNS); /* negative cache */
    CHECK_INT(serve_queries(fd, 0, "commented.test"), 0);
    forget_calls();

    /* An override is for its port: list.test on another one is asked (and is NXDOMAIN),
     * and the failure cached for the name leaves the override's port alone. */
    CHECK_INT(dns_lookup(d, "list.test", 9, 81, &l, 11), 1);
    queries = pump(r, fd, 1, 1, "list.test");
    CHECK_INT(queries, 2);
    if (CHECK_INT(ncalls, 1)) {
        CHECK_UINT(calls[0].cookie, 11);
        CHECK_INT(calls[0].err, -RF_ERR_DNS);
    }
    CHECK_INT(lookup(d, "list.test", 81, &txt), -RF_ERR_DNS);
    CHECK_ANSWER(d, "list.test", 80, "192.0.2.13,192.0.2.14");
    forget_calls();
}

/* An unanswered query: retried once (c-ares doubles the timeout), then a dns error. */
static void test_timeout(int fd, const char *server)
{
    struct rf_dns_config cfg = {
        .server = server, .hosts_file = "/nonexistent", .query_timeout_ms = 100};
    struct rf_dns *d;
    struct rf_ring ring;
    const struct rf_addrs *l;
    int queries;
    int64_t due;

    /* A ring of its own: the resolver's timer and polls stay registered on it. */
    if (!CHECK_INT(ring_init(&ring, 64, 0, 0, 0, 0), 0))
        return;
    if (!CHECK_INT(dns_create(&d, &ring, &cfg, on_done, NULL), 0)) {
        ring_exit(&ring);
        return;
    }
    forget_calls();
    CHECK_INT(dns_lookup(d, "silent.test", 11, 80, &l, 9), 1);
    due = ring_next_due(&ring) - (int64_t)ring.now;
    CHECK(due > 0 && due <= 100000);
    queries = pump(&ring, fd, 0, 1, "silent.test");
    CHECK_INT(queries, 4); /* A and AAAA, two tries each */
    if (CHECK_INT(ncalls, 1)) {
        CHECK_UINT(calls[0].cookie, 9);
        CHECK_INT(calls[0].err, -RF_ERR_DNS);
        CHECK(calls[0].addrs == NULL);
    }
    /* Destroying with a query in flight calls nobody back and leaks nothing. */
    forget_calls();
    CHECK_INT(dns_lookup(d, "inflight.test", 13, 80, &l, 10), 1);
    dns_destroy(d);
    CHECK_INT(ncalls, 0);
    serve_queries(fd, 0, NULL);
    ring_exit(&ring); /* never dispatched again: its resolver is gone */
}

static void test_bad_config(struct rf_ring *r, const char *server)
{
    static const char *const bad_resolve[] = {
        "nocolon",          "h:80",          ":80:192.0.2.1",
        "+:80:192.0.2.1",   "h:0:192.0.2.1", "h:65536:192.0.2.1",
        "h:8x:192.0.2.1",   "h::192.0.2.1",  "h:80:",
        "h:80:999.1.1.1",   "h:80:[::1",     "h:80:[]",
        "h:80:example.com",
        /* address lists: an empty entry anywhere, a name, more than RF_ADDRS_MAX */
        "h:80:192.0.2.1,", "h:80:,192.0.2.1", "h:80:192.0.2.1,,192.0.2.2",
        "h:80:192.0.2.1,example.com", "h:80:192.0.2.1,[::1",
        "h:80:1.0.0.1,1.0.0.2,1.0.0.3,1.0.0.4,1.0.0.5,1.0.0.6,1.0.0.7,1.0.0.8,1.0.0.9,"
        "1.0.0.10,1.0.0.11,1.0.0.12,1.0.0.13,1.0.0.14,1.0.0.15,1.0.0.16,1.0.0.17",
    };
    static const char *const bad_server[] = {
        "",
        "nonsense",
        "127.0.0.1:",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:99999",
        "127.0.0.1:5x",
        "1.2.3.4,",
        ",1.2.3.4",
        "[::1]x",
        "[::1",
        "1.2.3.4 5.6.7.8",
        "300.1.1.1",
    };
    static const char *const good_server[] = {
        "127.0.0.1",  "127.0.0.1:53", "127.0.0.1:65535",
        "[::1]:5353", "::1",          "127.0.0.1,127.0.0.2:54",
    };
    struct rf_dns_config cfg = {.server = server, .hosts_file = "/nonexistent"};
    struct rf_dns *d;

    for (size_t i = 0; i < sizeof(bad_resolve) / sizeof(bad_resolve[0]); i++) {
        /* A good entry first, so the unwinding frees what was already parsed. */
        const char *list[] = {"ok.test:80:192.0.2.1", bad_resolve[i]};
        int before = check_failures();

        cfg.resolve = list;
        cfg.n_resolve = 2;
        d = (struct rf_dns *)&cfg; /* must be reset to NULL on failure */
        CHECK_INT(dns_create(&d, r, &cfg, on_done, NULL), -RF_ERR_INVALID_ARG);
        CHECK(d == NULL);
        if (check_failures() != before)
            fprintf(stderr, "  with --resolve '%s'\n", bad_resolve[i]);
        if (d && d != (struct rf_dns *)&cfg)
            dns_destroy(d);
    }
    cfg.resolve = NULL;
    cfg.n_resolve = 0;
    for (size_t i = 0; i < sizeof(bad_server) / sizeof(bad_server[0]); i++) {
        int before = check_failures();

        cfg.server = bad_server[i];
        d = NULL;
        CHECK_INT(dns_create(&d, r, &cfg, on_done, NULL), -RF_ERR_INVALID_ARG);
        CHECK(d == NULL);
        if (check_failures() != before)
            fprintf(stderr, "  with server '%s'\n", bad_server[i]);
        dns_destroy(d);
    }
    for (size_t i = 0; i < sizeof(good_server) / sizeof(good_server[0]); i++) {
        int before = check_failures();

        cfg.server = good_server[i];
        d = NULL;
        CHECK_INT(dns_create(&d, r, &cfg, on_done, NULL), 0);
        if (check_failures() != before)
            fprintf(stderr, "  with server '%s'\n", good_server[i]);
        dns_destroy(d);
    }
}

static int write_hosts(const char *path)
{
    FILE *f = fopen(path, "w");
    char longname[DNS_TEST_LONG + 1];

    if (!f)
        return -1;
    memset(longname, 'a', DNS_TEST_LONG);
    longname[DNS_TEST_LONG] = '\0';
    fprintf(f,
            "# a comment line\n"
            "192.0.2.20   first.test  Alias.Test   # trailing comment\n"
            "192.0.2.21   first.test\n"
            "2001:db8::20 six.test\n"
            "   192.0.2.22\ttabbed.test\r\n"
            "#192.0.2.23 commented.test\n"
            "192.0.2.24 after.comment.test#commented.test\n"
            "not-an-ip    bogus.test\n"
            "192.0.2.50 exact.test plus.test\n"
            "192.0.2.40 %s\n",
            longname);
    return fclose(f);
}

int main(void)
{
    char dir[] = "/tmp/rf-test-dns-XXXXXX", hosts[64], server[32];
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    struct rf_dns_config cfg = {.resolve = good_resolve,
                                .n_resolve = sizeof(good_resolve) / sizeof(good_resolve[0])};
    struct rf_dns *d = NULL;
    struct rf_ring ring, bad_ring;
    int fd, ret;

    ret = ring_init(&ring, 64, 0, 0, 0, 0);
    if (ret)
        return check_skip("test_dns", "no io_uring here");
    /* The responder: a UDP socket on loopback that c-ares is pointed at. */
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
        getsockname(fd, (struct sockaddr *)&sin, &slen)) {
        perror("test_dns: udp socket");
        return 1;
    }
    snprintf(server, sizeof(server), "127.0.0.1:%u", ntohs(sin.sin_port));
    if (!mkdtemp(dir)) {
        perror("test_dns: mkdtemp");
        return 1;
    }
    snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
    if (write_hosts(hosts)) {
        perror("test_dns: hosts file");
        return 1;
    }
    cfg.server = server;
    cfg.hosts_file = hosts;
    if (CHECK_INT(dns_create(&d, &ring, &cfg, on_done, NULL), 0)) {
        test_synchronous(d);
        test_references(d);
        test_queries(d, &ring, fd);
        dns_destroy(d);
    }
    ring_exit(&ring);
    test_timeout(fd, server);
    /* Resolvers that fail to be created leave their registration on the ring they were
     * given: a ring that is never dispatched. */
    if (CHECK_INT(ring_init(&bad_ring, 64, 0, 0, 0, 0), 0)) {
        test_bad_config(&bad_ring, server);
        ring_exit(&bad_ring);
    }

    unlink(hosts);
    rmdir(dir);
    close(fd);
    forget_calls();
    return check_finish("test_dns");
}
