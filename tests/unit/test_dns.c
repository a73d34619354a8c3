/* test_dns.c - dns.c: literals, --resolve, the hosts file, bad configuration, and real
 * queries driven through the ring against a responder on a loopback UDP socket. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "proto/dns.h"
#include "ring/ring.h"
#include "ringfetch.h"
#include "ring/udata.h"

#define MAX_CALLS 16
#define DNS_TEST_LONG 253 /* the longest name dns.c takes */

struct call {
    uint64_t cookie;
    int err;
    struct sockaddr_storage sa;
    socklen_t salen;
};

static struct call calls[MAX_CALLS];
static unsigned ncalls;

static void on_done(void *ctx, uint64_t cookie, int err, const struct sockaddr *sa, socklen_t salen)
{
    (void)ctx;
    if (ncalls == MAX_CALLS)
        return;
    calls[ncalls].cookie = cookie;
    calls[ncalls].err = err;
    calls[ncalls].salen = salen;
    if (sa && salen <= sizeof(calls[ncalls].sa))
        memcpy(&calls[ncalls].sa, sa, salen);
    ncalls++;
}

/* The address of a result as text with its port, "1.2.3.4:80" or "[::1]:443". */
static const char *addr_str(const struct sockaddr_storage *sa, socklen_t len)
{
    static char buf[INET6_ADDRSTRLEN + 16];
    char ip[INET6_ADDRSTRLEN];

    if (sa->ss_family == AF_INET && len == sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        snprintf(buf, sizeof(buf), "%s:%u", ip, ntohs(v4->sin_port));
    } else if (sa->ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, sizeof(buf), "[%s]:%u", ip, ntohs(v6->sin6_port));
    } else {
        snprintf(buf, sizeof(buf), "family %d len %u", sa->ss_family, (unsigned)len);
    }
    return buf;
}

/* dns_lookup of a NUL-terminated name; on 0, the answer as addr_str() text in *txt. */
static int lookup(struct rf_dns *d, const char *name, uint16_t port, const char **txt)
{
    struct sockaddr_storage sa;
    socklen_t len = 0;
    int ret;

    memset(&sa, 0xa5, sizeof(sa)); /* whatever the caller had there must not leak through */
    ret = dns_lookup(d, name, strlen(name), port, &sa, &len, 0);
    *txt = ret == 0 ? addr_str(&sa, len) : "";
    return ret;
}

#define CHECK_ANSWER(d, name, port, want)                                                          \
    do {                                                                                           \
        const char *txt_;                                                                          \
        if (CHECK_INT(lookup((d), (name), (port), &txt_), 0))                                      \
            CHECK_STR(txt_, (want));                                                               \
    } while (0)

/* ---- an authoritative responder on the test's own UDP socket ---- */

/*
 * Read every query waiting on fd; when `answer`, reply: fresh.test has the A record
 * 127.0.0.9 (TTL 60) and no AAAA, every other name is NXDOMAIN. Returns how many of the
 * queries asked for `count` (resolv.conf's search list may add other names).
 */
static int serve_queries(int fd, int answer, const char *count)
{
    unsigned char q[512], r[600];
    int n = 0;

    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t len = recvfrom(fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
        char name[256];
        size_t off = 12, nl = 0, rlen;
        unsigned qtype;

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
        qtype = (unsigned)q[off + 1] << 8 | q[off + 2];
        rlen = off + 5; /* header and question; an EDNS record in the query is dropped */
        memcpy(r, q, rlen);
        r[2] = (unsigned char)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
        r[3] = 0;
        memset(r + 4, 0, 8);
        r[5] = 1;
        if (strcasecmp(name, "fresh.test") != 0) {
            r[3] = 3; /* NXDOMAIN */
        } else if (qtype == 1) {
            static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0,   1, 0, 0,
                                               0,    60,   0, 4, 127, 0, 0, 9};

            r[7] = 1;
            memcpy(r + rlen, rr, sizeof(rr));
            rlen += sizeof(rr);
        }
        sendto(fd, r, rlen, 0, (struct sockaddr *)&from, flen);
    }
    return n;
}

/* Run the ring (and the responder) until `want` done() calls arrived or ~5 s passed. */
static int pump(struct rf_dns *d, struct rf_ring *r, int fd, int answer, unsigned want,
                const char *count)
{
    int queries = 0;

    for (int i = 0; i < 500 && ncalls < want; i++) {
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000};
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;

        queries += serve_queries(fd, answer, count);
        io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts, NULL);
        io_uring_for_each_cqe(&r->uring, head, cqe)
        {
            n++;
            if (ud_op(io_uring_cqe_get_data64(cqe)) == OP_DNS_POLL)
                dns_handle_cqe(d, cqe);
        }
        io_uring_cq_advance(&r->uring, n);
        if (dns_timeout_ms(d) == 0)
            dns_tick(d);
    }
    return queries + serve_queries(fd, 0, count);
}

/* ---- cases ---- */

static const char *const good_resolve[] = {
    "exact.test:8080:192.0.2.10",         "any.test:*:192.0.2.11",
    "v6.test:443:[2001:db8::2]",          "+plus.test:80:192.0.2.12",
    "list.test:80:192.0.2.13,192.0.2.14", "exact.test:9090:192.0.2.15",
    "bare6.test:80:2001:db8::3",
};

static void test_synchronous(struct rf_dns *d)
{
    char longname[DNS_TEST_LONG + 2];
    const char *txt;

    /* IP literals, with the port of the lookup */
    CHECK_ANSWER(d, "192.0.2.7", 8080, "192.0.2.7:8080");
    CHECK_ANSWER(d, "2001:db8::1", 443, "[2001:db8::1]:443");
    CHECK_ANSWER(d, "::1", 1, "[::1]:1");
    /* --resolve: exact port, any port, case, bracketed and bare IPv6, "+host", a list */
    CHECK_ANSWER(d, "exact.test", 8080, "192.0.2.10:8080");
    CHECK_ANSWER(d, "exact.test", 9090, "192.0.2.15:9090");
    CHECK_ANSWER(d, "EXACT.Test", 8080, "192.0.2.10:8080");
    CHECK_ANSWER(d, "exact.test", 7070, "192.0.2.50:7070"); /* no override: the hosts file */
    CHECK_ANSWER(d, "any.test", 1, "192.0.2.11:1");
    CHECK_ANSWER(d, "any.test", 65535, "192.0.2.11:65535");
    CHECK_ANSWER(d, "v6.test", 443, "[2001:db8::2]:443");
    CHECK_ANSWER(d, "bare6.test", 80, "[2001:db8::3]:80");
    CHECK_ANSWER(d, "plus.test", 80, "192.0.2.12:80");
    CHECK_ANSWER(d, "list.test", 80, "192.0.2.13:80");
    /* the hosts file: first line wins, any case, aliases, tabs, IPv6, comments */
    CHECK_ANSWER(d, "first.test", 80, "192.0.2.20:80");
    CHECK_ANSWER(d, "FIRST.TEST", 81, "192.0.2.20:81");
    CHECK_ANSWER(d, "alias.test", 82, "192.0.2.20:82");
    CHECK_ANSWER(d, "tabbed.test", 83, "192.0.2.22:83");
    CHECK_ANSWER(d, "six.test", 84, "[2001:db8::20]:84");
    CHECK_ANSWER(d, "after.comment.test", 85, "192.0.2.24:85");
    /* localhost is loopback although the file does not name it */
    CHECK_ANSWER(d, "localhost", 8000, "127.0.0.1:8000");
    CHECK_ANSWER(d, "LocalHost", 8001, "127.0.0.1:8001");
    /* the name is len bytes, not NUL-terminated */
    {
        struct sockaddr_storage sa;
        socklen_t len = 0;

        if (CHECK_INT(dns_lookup(d, "first.test.example", 10, 80, &sa, &len, 0), 0))
            CHECK_STR(addr_str(&sa, len), "192.0.2.20:80");
        if (CHECK_INT(dns_lookup(d, "192.0.2.30:99", 10, 99, &sa, &len, 0), 0))
            CHECK_STR(addr_str(&sa, len), "192.0.2.30:99");
    }
    /* 253 bytes is the longest name (one in the hosts file); 254 and 0 fail at once */
    memset(longname, 'a', sizeof(longname));
    longname[DNS_TEST_LONG] = '\0';
    CHECK_ANSWER(d, longname, 80, "192.0.2.40:80");
    longname[DNS_TEST_LONG] = 'a';
    longname[DNS_TEST_LONG + 1] = '\0';
    CHECK_INT(lookup(d, longname, 80, &txt), -RF_ERR_DNS);
    CHECK_INT(lookup(d, "", 80, &txt), -RF_ERR_DNS);
    CHECK_INT(ncalls, 0);
}

/* Lookups that go to the responder: shared waiters, the cache, NXDOMAIN, the negative cache. */
static void test_queries(struct rf_dns *d, struct rf_ring *r, int fd)
{
    struct sockaddr_storage sa;
    socklen_t len;
    const char *txt;
    int queries;

    CHECK_INT(dns_timeout_ms(d), -1);
    CHECK_INT(dns_lookup(d, "fresh.test", 10, 80, &sa, &len, 1), 1);
    CHECK_INT(dns_lookup(d, "Fresh.Test", 10, 8080, &sa, &len, 2), 1); /* waits on the first */
    CHECK(dns_timeout_ms(d) > 0);
    queries = pump(d, r, fd, 1, 2, "fresh.test");
    CHECK_INT(queries, 2); /* one A, one AAAA */
    if (CHECK_INT(ncalls, 2)) {
        CHECK_UINT(calls[0].cookie, 1);
        CHECK_INT(calls[0].err, 0);
        CHECK_STR(addr_str(&calls[0].sa, calls[0].salen), "127.0.0.9:80");
        CHECK_UINT(calls[1].cookie, 2);
        CHECK_INT(calls[1].err, 0);
        CHECK_STR(addr_str(&calls[1].sa, calls[1].salen), "127.0.0.9:8080");
    }
    CHECK_ANSWER(d, "fresh.test", 443, "127.0.0.9:443"); /* from the cache */
    CHECK_INT(dns_timeout_ms(d), -1);

    /* Names the hosts file has only in a comment or after a bad address are asked. */
    ncalls = 0;
    CHECK_INT(dns_lookup(d, "commented.test", 14, 80, &sa, &len, 3), 1);
    CHECK_INT(dns_lookup(d, "bogus.test", 10, 80, &sa, &len, 4), 1);
    queries = pump(d, r, fd, 1, 2, "bogus.test");
    CHECK_INT(queries, 2);
    if (CHECK_INT(ncalls, 2)) {
        CHECK_INT(calls[0].err + calls[1].err, 2 * -RF_ERR_DNS);
        CHECK_UINT(calls[0].cookie + calls[1].cookie, 7);
    }
    CHECK_INT(lookup(d, "commented.test", 80, &txt), -RF_ERR_DNS); /* negative cache */
    CHECK_INT(serve_queries(fd, 0, "commented.test"), 0);
    ncalls = 0;
}

/* An unanswered query: retried once (c-ares doubles the timeout), then a dns error. */
static void test_timeout(struct rf_ring *r, int fd, const char *server)
{
    struct rf_dns_config cfg = {
        .server = server, .hosts_file = "/nonexistent", .query_timeout_ms = 100};
    struct rf_dns *d;
    struct sockaddr_storage sa;
    socklen_t len;
    int queries, ms;

    if (!CHECK_INT(dns_create(&d, r, &cfg, on_done, NULL), 0))
        return;
    ncalls = 0;
    CHECK_INT(dns_lookup(d, "silent.test", 11, 80, &sa, &len, 9), 1);
    ms = dns_timeout_ms(d);
    CHECK(ms > 0 && ms <= 100);
    queries = pump(d, r, fd, 0, 1, "silent.test");
    CHECK_INT(queries, 4); /* A and AAAA, two tries each */
    if (CHECK_INT(ncalls, 1)) {
        CHECK_UINT(calls[0].cookie, 9);
        CHECK_INT(calls[0].err, -RF_ERR_DNS);
    }
    /* Destroying with a query in flight calls nobody back and leaks nothing. */
    ncalls = 0;
    CHECK_INT(dns_lookup(d, "inflight.test", 13, 80, &sa, &len, 10), 1);
    dns_destroy(d);
    CHECK_INT(ncalls, 0);
    serve_queries(fd, 0, NULL);
}

static void test_bad_config(struct rf_ring *r, const char *server)
{
    static const char *const bad_resolve[] = {
        "nocolon",          "h:80",          ":80:192.0.2.1",
        "+:80:192.0.2.1",   "h:0:192.0.2.1", "h:65536:192.0.2.1",
        "h:8x:192.0.2.1",   "h::192.0.2.1",  "h:80:",
        "h:80:999.1.1.1",   "h:80:[::1",     "h:80:[]",
        "h:80:example.com",
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
    struct rf_ring ring;
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
        test_queries(d, &ring, fd);
        dns_destroy(d);
    }
    test_timeout(&ring, fd, server);
    test_bad_config(&ring, server);

    unlink(hosts);
    rmdir(dir);
    close(fd);
    ring_exit(&ring);
    return check_finish("test_dns");
}
