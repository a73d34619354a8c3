/*
 * delayserver: an HTTP/1.1 keep-alive server on loopback that answers every request exactly
 * D microseconds after the request's last byte arrived, for measuring a client's own latency
 * against a known server time.
 *
 *     delayserver --delay-us 2000 [--port 0] [--host 127.0.0.1|::1] [--spin-us 50]
 *                 [--stamp kernel|read] [--lifetime SECONDS]
 *
 * Every answer is "HTTP/1.1 200 OK", "Content-Length: 12", body "hello world\n" (a HEAD gets
 * the head only; "Connection: close" is honoured and echoed). Pipelined requests are each
 * answered D after their own arrival, in order; Content-Length request bodies are read and
 * dropped (a Transfer-Encoding request gets 501 and a close, a head over 16 KiB 431).
 *
 * Arrival: the kernel's receive timestamp (SO_TIMESTAMPNS, the skb that completed the read),
 * moved from CLOCK_REALTIME to CLOCK_MONOTONIC; "--stamp read" (or a missing or implausible
 * stamp) takes clock_gettime() right after recvmsg() instead. When one read holds several
 * requests they share that read's stamp. Sending: one timerfd (timer slack set to 1 ns)
 * armed before the earliest due answer by spin-us plus how late the timer has been waking
 * (a running mean of the measured lateness, about 100 us on a busy VM), then a busy wait on
 * the clock for the rest. --spin-us 0 never spins and never leads (for load tests where the
 * CPU matters more than the last 100 us).
 *
 * Single thread, epoll, non-blocking; pin it with taskset. Prints {"port": N} once
 * listening, exits on SIGTERM, SIGINT, end of stdin (when stdin is a pipe, socket or tty) or
 * after --lifetime (6 h), and then prints one JSON line of statistics to stderr: requests,
 * which stamp each used, and how late the answers went out ("late_us", measured at the
 * write) and how late the timer woke ("timer_late_us"), as p50/p99/max.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP (16 * 1024)  /* the longest request head; more gets 431 */
#define OUT_MAX (16u << 20) /* unsent answers a client may leave unread before we close */
#define MAX_CONNS 65536
#define MAX_PENDING (4u << 20) /* scheduled answers in all; a connection beyond it is closed */
#define HIST_US 10000          /* histogram buckets of 1 us; later goes in the last one */
#define EVENTS 256
#define WAKE_MAX 500000LL /* the largest timer lateness the lead follows, ns */
#define NS 1000000000LL

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

#define TAG_LISTEN ((uint64_t)1 << 32)
#define TAG_TIMER ((uint64_t)2 << 32)
#define TAG_SIGNAL ((uint64_t)3 << 32)
#define TAG_STDIN ((uint64_t)4 << 32)

enum answer { ANS_OK, ANS_HEAD, ANS_400, ANS_431, ANS_501 };

struct conn {
    bool used;
    bool eof;     /* the client half-closed: answer what is pending, then close */
    bool closing; /* no more requests are taken (Connection: close, or an error) */
    bool close_after_flush;
    bool dirty;    /* has answers appended since the last flush */
    bool want_out; /* EPOLLOUT is on: the socket buffer was full */
    bool cur_head; /* the request whose body is being read */
    bool cur_close;
    uint32_t gen;
    uint32_t pending;
    uint64_t body_left;
    int64_t last_due;
    char *in;
    size_t in_len;
    char *out;
    size_t out_len, out_off, out_cap;
};

struct due {
    int64_t at; /* CLOCK_MONOTONIC ns */
    uint64_t seq;
    int fd;
    uint32_t gen;
    uint8_t answer;
    bool close;
};

struct hist {
    uint64_t n, max;
    uint32_t b[HIST_US];
};

struct server {
    int ep, lfd, tfd, sfd;
    int64_t delay_ns, spin_ns, armed;
    int64_t wake_ns; /* how late the timer wakes, a running mean; the timer leads by it */
    bool kernel_stamps;
    struct conn *conns;
    int nconns;
    struct due *heap;
    size_t heap_len, heap_cap;
    uint64_t seq;
    int dirty[EVENTS * 4];
    int ndirty;
    bool dirty_overflow;
    uint64_t requests, answered, stamp_kernel, stamp_read, accepted, open, max_open;
    struct hist late, timer_late;
};

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static void hist_add(struct hist *h, int64_t ns)
{
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;

    h->b[us < HIST_US ? us : HIST_US - 1]++;
    h->n++;
    if (us > h->max)
        h->max = us;
}

static uint64_t hist_pct(const struct hist *h, double p)
{
    uint64_t want = (uint64_t)(p * (double)h->n), seen = 0;

    for (uint64_t i = 0; i < HIST_US; i++) {
        seen += h->b[i];
        if (seen > want)
            return i;
    }
    return h->max;
}

/* ------------------------------------------------------------------- the due heap */

static bool due_before(const struct due *a, const struct due *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static int heap_push(struct server *s, struct due d)
{
    size_t i;

    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 1024;
        struct due *h;

        if (cap > MAX_PENDING)
            return -ENOMEM;
        h = realloc(s->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        s->heap = h;
        s->heap_cap = cap;
    }
    i = s->heap_len++;
    for (; i > 0; i = (i - 1) / 2) {
        struct due *parent = &s->heap[(i - 1) / 2];

        if (!due_before(&d, parent))
            break;
        s->heap[i] = *parent;
    }
    s->heap[i] = d;
    return 0;
}

static struct due heap_pop(struct server *s)
{
    struct due top = s->heap[0], last = s->heap[--s->heap_len];
    size_t i = 0, n = s->heap_len;

    for (size_t kid = 1; kid < n; kid = 2 * i + 1) {
        if (kid + 1 < n && due_before(&s->heap[kid + 1], &s->heap[kid]))
            kid++;
        if (!due_before(&s->heap[kid], &last))
            break;
        s->heap[i] = s->heap[kid];
        i = kid;
    }
    if (n)
        s->heap[i] = last;
    return top;
}

/* ------------------------------------------------------------------- connections */

static void conn_close(struct server *s, int fd)
{
    struct conn *c = &s->conns[fd];

    close(fd); /* also leaves the epoll set */
    free(c->in);
    free(c->out);
    uint32_t gen = c->gen + 1; /* answers still in the heap for this fd are dropped */
    memset(c, 0, sizeof(*c));
    c->gen = gen;
    s->open--;
}

/* Closes after the last answer. Unread request bytes would make close() send an RST,
 * and the client would lose the answer still in its buffer: what is already here is
 * drained first (a lingering close without the linger). */
static void conn_end(struct server *s, int fd)
{
    char buf[16384];

    for (int i = 0; i < 64 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
        ;
    shutdown(fd, SHUT_WR);
    conn_close(s, fd);
}

static void conn_events(struct server *s, int fd)
{
    struct conn *c = &s->conns[fd];
    struct epoll_event ev = {.data.u64 = (uint64_t)fd};

    /* Level-triggered: after EOF EPOLLIN would fire forever, so it goes off. */
    ev.events = (c->eof || c->closing ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
    epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &ev);
}

static void mark_dirty(struct server *s, int fd)
{
    struct conn *c = &s->conns[fd];

    if (c->dirty)
        return;
    c->dirty = true;
    if (s->ndirty < (int)(sizeof(s->dirty) / sizeof(s->dirty[0])))
        s->dirty[s->ndirty++] = fd;
    else
        s->dirty_overflow = true; /* flush_all() walks the table instead */
}

/* Writes what is buffered; closes the connection when it is done with. Returns false if
 * the connection was closed. */
static bool conn_flush(struct server *s, int fd)
{
    struct conn *c = &s->conns[fd];
    bool want = false;

    c->dirty = false;
    for (int i = 0; i < 64 && c->out_off < c->out_len; i++) {
        ssize_t n = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            want = true;
            break;
        }
        if (n <= 0) {
            conn_close(s, fd);
            return false;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    else
        want = true;
    if (!want && (c->close_after_flush || (c->eof && c->pending == 0))) {
        conn_end(s, fd);
        return false;
    }
    if (want != c->want_out) {
        c->want_out = want;
        conn_events(s, fd);
    }
    return true;
}

static int out_append(struct conn *c, const char *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        char *o;

        if (c->out_off) { /* drop what was sent before growing */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        while (cap < c->out_len + n)
            cap *= 2;
        if (cap > OUT_MAX)
            return -ENOBUFS;
        if (cap != c->out_cap) {
            o = realloc(c->out, cap);
            if (!o)
                return -ENOMEM;
            c->out = o;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

#define HELLO_HEAD "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n"

static int append_answer(struct conn *c, enum answer a, bool close)
{
    static const char ok[] = HELLO_HEAD "\r\nhello world\n";
    static const char ok_close[] = HELLO_HEAD "Connection: close\r\n\r\nhello world\n";
    static const char head[] = HELLO_HEAD "\r\n";
    static const char head_close[] = HELLO_HEAD "Connection: close\r\n\r\n";
    static const char e400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
    static const char e431[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
    static const char e501[] = "HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";

    switch (a) {
    case ANS_OK:
        return close ? out_append(c, ok_close, sizeof(ok_close) - 1)
                     : out_append(c, ok, sizeof(ok) - 1);
    case ANS_HEAD:
        return close ? out_append(c, head_close, sizeof(head_close) - 1)
                     : out_append(c, head, sizeof(head) - 1);
    case ANS_400:
        return out_append(c, e400, sizeof(e400) - 1);
    case ANS_431:
        return out_append(c, e431, sizeof(e431) - 1);
    case ANS_501:
        return out_append(c, e501, sizeof(e501) - 1);
    }
    return -EINVAL;
}

static int schedule(struct server *s, int fd, int64_t arrived, enum answer a, bool close)
{
    struct conn *c = &s->conns[fd];
    struct due d = {.at = arrived + s->delay_ns,
                    .seq = s->seq++,
                    .fd = fd,
                    .gen = c->gen,
                    .answer = (uint8_t)a,
                    .close = close};

    if (d.at < c->last_due)
        d.at = c->last_due; /* a stamp never runs backwards, but answers stay in order */
    c->last_due = d.at;
    if (heap_push(s, d) < 0)
        return -ENOMEM;
    c->pending++;
    s->requests++;
    if (close)
        c->closing = true;
    return 0;
}

/* ------------------------------------------------------------------- parsing */

static bool token_in(const char *v, size_t n, const char *tok)
{
    size_t t = strlen(tok);

    for (size_t i = 0; i + t <= n; i++) {
        bool start = i == 0 || v[i - 1] == ',' || v[i - 1] == ' ' || v[i - 1] == '\t';
        bool end = i + t == n || v[i + t] == ',' || v[i + t] == ' ' || v[i + t] == '\t';

        if (start && end && strncasecmp(v + i, tok, t) == 0)
            return true;
    }
    return false;
}

/* Parses one request head of n bytes (its final CRLF CRLF included). Returns the answer
 * kind; *body and *close tell the rest. */
static enum answer parse_head(const char *p, size_t n, uint64_t *body, bool *close)
{
    const char *end = p + n - 2, *eol = memchr(p, '\n', n);
    const char *sp1, *sp2;
    bool v10, keep_alive = false, has_cl = false;

    *body = 0;
    *close = false;
    if (!eol || eol == p || eol[-1] != '\r')
        return ANS_400;
    sp1 = memchr(p, ' ', (size_t)(eol - p));
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1 || eol - 1 - (sp2 + 1) != 8 ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return ANS_400;
    v10 = sp2[8] == '0';
    bool is_head = sp1 - p == 4 && strncmp(p, "HEAD", 4) == 0;

    for (const char *line = eol + 1; line < end;) {
        const char *le = memchr(line, '\n', (size_t)(end - line + 2));
        const char *colon, *v, *ve;

        if (!le || le[-1] != '\r')
            return ANS_400;
        colon = memchr(line, ':', (size_t)(le - line));
        if (!colon || colon == line)
            return ANS_400;
        v = colon + 1;
        ve = le - 1;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t nl = (size_t)(colon - line), vl = (size_t)(ve - v);

        if (nl == 14 && strncasecmp(line, "content-length", 14) == 0) {
            uint64_t x = 0;

            if (vl == 0 || vl > 18)
                return ANS_400;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return ANS_400;
                x = x * 10 + (uint64_t)(v[i] - '0');
            }
            if (has_cl && x != *body)
                return ANS_400;
            has_cl = true;
            *body = x;
        } else if (nl == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
            return ANS_501;
        } else if (nl == 10 && strncasecmp(line, "connection", 10) == 0) {
            if (token_in(v, vl, "close"))
                *close = true;
            if (token_in(v, vl, "keep-alive"))
                keep_alive = true;
        }
        line = le + 1;
    }
    if (v10 && !keep_alive)
        *close = true;
    return is_head ? ANS_HEAD : ANS_OK;
}

static const char *find_head_end(const char *p, size_t n)
{
    const char *m = memmem(p, n, "\r\n\r\n", 4);

    return m ? m + 4 : NULL;
}

/* Takes every complete request out of c->in; each arrived at `arrived`. */
static int consume(struct server *s, int fd, int64_t arrived)
{
    struct conn *c = &s->conns[fd];
    size_t off = 0;

    for (int i = 0; i < IN_CAP && !c->closing; i++) {
        if (c->body_left) {
            size_t k = c->in_len - off;

            if (k > c->body_left)
                k = (size_t)c->body_left;
            off += k;
            c->body_left -= k;
            if (c->body_left)
                break;
            if (schedule(s, fd, arrived, c->cur_head ? ANS_HEAD : ANS_OK, c->cur_close) < 0)
                return -ENOMEM;
            continue;
        }
        /* RFC 9112 2.2: empty lines before a request line are ignored. */
        while (off + 2 <= c->in_len && c->in[off] == '\r' && c->in[off + 1] == '\n')
            off += 2;
        const char *e = find_head_end(c->in + off, c->in_len - off);
        if (!e) {
            if (c->in_len - off == IN_CAP && schedule(s, fd, arrived, ANS_431, true) < 0)
                return -ENOMEM;
            break;
        }
        uint64_t body;
        bool close;
        enum answer a = parse_head(c->in + off, (size_t)(e - (c->in + off)), &body, &close);

        off = (size_t)(e - c->in);
        if (a != ANS_OK && a != ANS_HEAD) {
            if (schedule(s, fd, arrived, a, true) < 0)
                return -ENOMEM;
            break;
        }
        c->body_left = body;
        c->cur_head = a == ANS_HEAD;
        c->cur_close = close;
        if (!body && schedule(s, fd, arrived, a, close) < 0)
            return -ENOMEM;
    }
    if (c->closing)
        off = c->in_len; /* whatever follows a last request is dropped */
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

/* recvmsg() with the kernel's receive stamp; *arrived is CLOCK_MONOTONIC ns. */
static ssize_t read_stamped(struct server *s, int fd, char *buf, size_t len, int64_t *arrived)
{
    char ctl[CMSG_SPACE(sizeof(struct timespec)) * 2];
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl,
                        .msg_controllen = s->kernel_stamps ? sizeof(ctl) : 0};
    ssize_t n = recvmsg(fd, &mh, 0);
    /* REALTIME first: the instant between the two reads then makes an arrival late, never
     * early, and no answer goes out before its time. */
    int64_t real = clock_ns(CLOCK_REALTIME), mono = mono_ns();

    *arrived = mono;
    if (n <= 0 || !s->kernel_stamps)
        goto read_time;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            int64_t age;

            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            age = real - ((int64_t)ts.tv_sec * NS + ts.tv_nsec);
            /* The stamp is CLOCK_REALTIME; one that is in the future or older than a
             * second is a clock step or no stamp at all, not an arrival. */
            if (age < -1000000 || age > NS)
                break;
            *arrived = mono - (age > 0 ? age : 0);
            s->stamp_kernel++;
            return n;
        }
    }
read_time:
    if (n > 0)
        s->stamp_read++;
    return n;
}

static void conn_read(struct server *s, int fd)
{
    struct conn *c = &s->conns[fd];

    for (int i = 0; i < 16 && !c->eof && !c->closing; i++) {
        size_t room = IN_CAP - c->in_len; /* never 0: consume() leaves a partial head only */
        int64_t arrived;
        ssize_t n = read_stamped(s, fd, c->in + c->in_len, room, &arrived);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            conn_close(s, fd);
            return;
        }
        if (n == 0) {
            c->eof = true;
            if (c->pending == 0 && c->out_len == c->out_off) {
                conn_close(s, fd);
                return;
            }
            conn_events(s, fd);
            return;
        }
        c->in_len += (size_t)n;
        if (consume(s, fd, arrived) < 0) {
            conn_close(s, fd);
            return;
        }
        if (c->closing) {
            conn_events(s, fd);
            return;
        }
        if ((size_t)n < room) /* a short read drained the socket */
            return;
    }
}

static void do_accept(struct server *s)
{
    for (int i = 0; i < 1024; i++) {
        int one = 1, fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN};
        struct conn *c;

        if (fd < 0)
            return;
        if (fd >= s->nconns) {
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
        c = &s->conns[fd];
        c->in = malloc(IN_CAP);
        if (!c->in) {
            close(fd);
            continue;
        }
        c->used = true;
        ev.data.u64 = (uint64_t)fd;
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c->in);
            c->in = NULL;
            c->used = false;
            close(fd);
            continue;
        }
        s->accepted++;
        if (++s->open > s->max_open)
            s->max_open = s->open;
    }
}

/* ------------------------------------------------------------------- answering */

static void flush_dirty(struct server *s)
{
    for (int i = 0; i < s->ndirty; i++)
        if (s->conns[s->dirty[i]].used && s->conns[s->dirty[i]].dirty)
            conn_flush(s, s->dirty[i]);
    s->ndirty = 0;
    if (s->dirty_overflow) {
        for (int fd = 0; fd < s->nconns; fd++)
            if (s->conns[fd].used && s->conns[fd].dirty)
                conn_flush(s, fd);
        s->dirty_overflow = false;
    }
}

/* How long before an answer is due the timer fires; the rest is spun. */
static int64_t lead_ns(const struct server *s)
{
    return s->spin_ns ? s->spin_ns + s->wake_ns : 0;
}

static void arm_timer(struct server *s)
{
    struct itimerspec it = {{0, 0}, {0, 0}};
    int64_t at = 0;

    if (s->heap_len) {
        at = s->heap[0].at - lead_ns(s);
        if (at <= 0)
            at = 1; /* an all-zero value would disarm it */
    }
    if (at == s->armed)
        return;
    it.it_value.tv_sec = at / NS;
    it.it_value.tv_nsec = at % NS;
    timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &it, NULL);
    s->armed = at;
}

/* Sends every answer that is due, spinning for those due within spin_ns. */
static void run_due(struct server *s)
{
    int64_t now = mono_ns();

    for (int round = 0; round < 4096 && s->heap_len; round++) {
        int64_t at = s->heap[0].at;

        if (at > now) {
            if (at - now > lead_ns(s))
                break;
            flush_dirty(s); /* nothing already due waits behind the spin */
            for (long i = 0; i < 100000000L && (now = mono_ns()) < at; i++)
                cpu_relax();
        }
        for (int k = 0; k < 65536 && s->heap_len && s->heap[0].at <= now; k++) {
            struct due d = heap_pop(s);
            struct conn *c = &s->conns[d.fd];

            if (!c->used || c->gen != d.gen)
                continue;
            c->pending--;
            if (append_answer(c, (enum answer)d.answer, d.close) < 0) {
                conn_close(s, d.fd);
                continue;
            }
            if (d.close)
                c->close_after_flush = true;
            hist_add(&s->late, now - d.at);
            s->answered++;
            mark_dirty(s, d.fd);
        }
        now = mono_ns();
    }
    flush_dirty(s);
    arm_timer(s);
}

/* ------------------------------------------------------------------- setup */

static int listen_on(const char *host, int port)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    int fd, one = 1;

    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
            return -EADDRNOTAVAIL;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
            return -EADDRNOTAVAIL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        len = sizeof(*a6);
    } else {
        return -EINVAL;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* On the listener too: turning stamps on enables them for every received packet, so
     * a request that lands before accept() already carries one. */
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
        int e = -errno;

        close(fd);
        return e;
    }
    return fd;
}

static int add_fd(int ep, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void print_hist(const char *name, const struct hist *h)
{
    fprintf(stderr, "\"%s\": {\"n\": %llu, \"p50\": %llu, \"p99\": %llu, \"max\": %llu}", name,
            (unsigned long long)h->n, (unsigned long long)hist_pct(h, 0.5),
            (unsigned long long)hist_pct(h, 0.99), (unsigned long long)h->max);
}

static void print_stats(const struct server *s)
{
    fprintf(stderr,
            "{\"requests\": %llu, \"answered\": %llu, \"stamp_kernel\": %llu, "
            "\"stamp_read\": %llu, \"accepted\": %llu, \"max_open\": %llu, "
            "\"delay_us\": %lld, \"spin_us\": %lld, \"lead_us\": %lld, ",
            (unsigned long long)s->requests, (unsigned long long)s->answered,
            (unsigned long long)s->stamp_kernel, (unsigned long long)s->stamp_read,
            (unsigned long long)s->accepted, (unsigned long long)s->max_open,
            (long long)(s->delay_ns / 1000), (long long)(s->spin_ns / 1000),
            (long long)(lead_ns(s) / 1000));
    print_hist("late_us", &s->late);
    fprintf(stderr, ", ");
    print_hist("timer_late_us", &s->timer_late);
    fprintf(stderr, "}\n");
}

static void usage(void)
{
    fprintf(stderr, "usage: delayserver --delay-us D [--port P] [--host 127.0.0.1|::1] "
                    "[--spin-us S] [--stamp kernel|read] [--lifetime SECONDS]\n");
}

static bool parse_num(const char *arg, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    if (!arg)
        return false;
    errno = 0;
    v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int serve(struct server *s, int64_t deadline, bool watch_stdin)
{
    struct epoll_event evs[EVENTS];

    for (uint64_t iter = 0; iter < UINT64_MAX; iter++) {
        int64_t left = deadline - mono_ns();
        int n;

        if (left <= 0)
            return 0;
        n = epoll_wait(s->ep, evs, EVENTS, left > 1000 * 1000000LL ? 1000 : (int)(left / 1000000));
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;

            if (tag == TAG_LISTEN) {
                do_accept(s);
            } else if (tag == TAG_TIMER) {
                uint64_t ticks;
                int64_t now = mono_ns();

                if (read(s->tfd, &ticks, sizeof(ticks)) > 0 && s->armed > 1) {
                    int64_t late = now - s->armed;

                    hist_add(&s->timer_late, late);
                    if (late > WAKE_MAX)
                        late = WAKE_MAX; /* a preemption says nothing about the timer */
                    s->wake_ns += (late - s->wake_ns) / 8;
                }
                s->armed = 0;
            } else if (tag == TAG_SIGNAL) {
                return 0;
            } else if (tag == TAG_STDIN) {
                char buf[256];
                ssize_t k = read(0, buf, sizeof(buf));

                if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                    if (watch_stdin)
                        return 0;
                }
            } else {
                int fd = (int)tag;
                struct conn *c = &s->conns[fd];

                if (!c->used)
                    continue;
                if ((evs[i].events & (EPOLLERR | EPOLLHUP)) && !(evs[i].events & EPOLLIN)) {
                    conn_close(s, fd);
                    continue;
                }
                if ((evs[i].events & EPOLLOUT) && !conn_flush(s, fd))
                    continue;
                if (evs[i].events & EPOLLIN)
                    conn_read(s, fd);
            }
        }
        run_due(s);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct server s = {.ep = -1, .lfd = -1, .tfd = -1, .sfd = -1, .kernel_stamps = true};
    const char *host = "127.0.0.1";
    long long delay = -1, port = 0, spin = 50, lifetime = 6 * 3600, v;
    bool watch_stdin;
    sigset_t sigs;
    struct rlimit rl;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int rc = 1, err;

    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--delay-us") == 0 && parse_num(val, 0, 60000000, &v))
            delay = v;
        else if (strcmp(a, "--port") == 0 && parse_num(val, 0, 65535, &v))
            port = v;
        else if (strcmp(a, "--spin-us") == 0 && parse_num(val, 0, 10000, &v))
            spin = v;
        else if (strcmp(a, "--lifetime") == 0 && parse_num(val, 1, 7 * 86400, &v))
            lifetime = v;
        else if (strcmp(a, "--host") == 0 && val)
            host = val;
        else if (strcmp(a, "--stamp") == 0 && val &&
                 (strcmp(val, "kernel") == 0 || strcmp(val, "read") == 0))
            s.kernel_stamps = strcmp(val, "kernel") == 0;
        else {
            usage();
            return 2;
        }
    }
    if (delay < 0) {
        usage();
        return 2;
    }
    s.delay_ns = delay * 1000;
    s.spin_ns = delay ? spin * 1000 : 0;

    /* The default 50 us timer slack would be as large as the spin itself. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    s.nconns = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < MAX_CONNS ? (int)rl.rlim_cur
                                                                             : MAX_CONNS;
    s.conns = calloc((size_t)s.nconns, sizeof(*s.conns));
    if (!s.conns) {
        fprintf(stderr, "delayserver: out of memory\n");
        goto fail;
    }

    s.lfd = listen_on(host, (int)port);
    if (s.lfd < 0) {
        fprintf(stderr, "delayserver: cannot listen on %s port %lld: %s\n", host, port,
                strerror(-s.lfd));
        goto fail;
    }
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    s.sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    s.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if (s.sfd < 0 || s.tfd < 0 || s.ep < 0) {
        fprintf(stderr, "delayserver: setup: %s\n", strerror(errno));
        goto fail;
    }
    err = add_fd(s.ep, s.lfd, TAG_LISTEN);
    if (!err)
        err = add_fd(s.ep, s.tfd, TAG_TIMER);
    if (!err)
        err = add_fd(s.ep, s.sfd, TAG_SIGNAL);
    if (err) {
        fprintf(stderr, "delayserver: epoll_ctl: %s\n", strerror(-err));
        goto fail;
    }
    /* epoll refuses regular files and /dev/null (EPERM): such a stdin is not watched. */
    watch_stdin = add_fd(s.ep, 0, TAG_STDIN) == 0;

    if (getsockname(s.lfd, (struct sockaddr *)&ss, &len) < 0) {
        fprintf(stderr, "delayserver: getsockname: %s\n", strerror(errno));
        goto fail;
    }
    printf("{\"port\": %d}\n",
           ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port));
    fflush(stdout);

    err = serve(&s, mono_ns() + lifetime * NS, watch_stdin);
    if (err)
        fprintf(stderr, "delayserver: epoll_wait: %s\n", strerror(-err));
    print_stats(&s);
    rc = err ? 1 : 0;
fail:
    for (int fd = 0; s.conns && fd < s.nconns; fd++)
        if (s.conns[fd].used)
            conn_close(&s, fd);
    free(s.conns);
    free(s.heap);
    if (s.ep >= 0)
        close(s.ep);
    if (s.tfd >= 0)
        close(s.tfd);
    if (s.sfd >= 0)
        close(s.sfd);
    if (s.lfd >= 0)
        close(s.lfd);
    return rc;
}
