/*
 * epoll: an engine driven from an epoll loop beside a timerfd that fires every 2 ms, with
 * rf_engine_fd() registered once and rf_engine_timeout_ms() as the wait: the descriptor
 * brings the completions, the timeout the deadlines. HANG_N requests to a server that
 * never answers, each with timeout_ms 300, must end as timeouts at ~0.3 s through the
 * timeout alone; COUNT requests to OK_URL (100 at a time) all get 200.
 *
 *   epoll OK_URL HANG_URL COUNT
 *
 * Prints "ok COUNT timeouts 5 ticks N max_gap_us N".
 */
#include "api.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>

#define HANG_N 5

static unsigned long delivered, n_ok, n_timeout;

static void on_result(void *userp, const rf_result *r)
{
    (void)userp;
    CHECK_INT(r->index, delivered);
    delivered++;
    if (r->index < HANG_N) {
        CHECK_ERR(r->error, RF_ERR_TIMEOUT);
        if (r->total_us < 280000 || r->total_us > 1500000)
            fprintf(stderr, "FAIL: timeout after %u us\n", r->total_us);
        CHECK(r->total_us >= 280000 && r->total_us <= 1500000);
        n_timeout++;
    } else {
        CHECK_ERR(r->error, RF_OK);
        CHECK_INT(r->status, 200);
        n_ok++;
    }
}

int main(int argc, char **argv)
{
    struct itimerspec every_2ms = {{0, 2000000}, {0, 2000000}};
    struct epoll_event ev = {.events = EPOLLIN};
    uint64_t last, max_gap = 0, ticks = 0, end;
    unsigned long count;
    rf_config cfg;
    rf_engine *eng;
    int ep, tfd, fd, more = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: epoll OK_URL HANG_URL COUNT\n");
        return 2;
    }
    count = arg_num(argv[3]);
    rf_config_init(&cfg);
    cfg.concurrency = 100;
    cfg.timeout_ms = 20000;
    cfg.on_result = on_result;
    eng = make_engine(&cfg);
    for (unsigned long i = 0; i < HANG_N + count; i++) {
        rf_request req = RF_REQUEST_INIT;

        req.url = i < HANG_N ? argv[2] : argv[1];
        req.timeout_ms = i < HANG_N ? 300 : 0;
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    CHECK(ep >= 0 && tfd >= 0);
    CHECK_INT(timerfd_settime(tfd, 0, &every_2ms, NULL), 0);
    fd = rf_engine_fd(eng);
    CHECK(fd >= 0);
    ev.data.fd = tfd;
    CHECK_INT(epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev), 0);
    ev.data.fd = fd;
    CHECK_INT(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
    last = mono_us();
    end = last + 30000000;
    for (long i = 0; i < 10000000L && more > 0 && mono_us() < end; i++) {
        struct epoll_event evs[4];
        int engine_ready = 0, n;

        n = epoll_wait(ep, evs, 4, rf_engine_timeout_ms(eng));
        CHECK(n >= 0 || errno == EINTR);
        for (int k = 0; k < n; k++) {
            if (evs[k].data.fd == tfd) {
                uint64_t now = mono_us(), fired;

                if (read(tfd, &fired, sizeof(fired)) == sizeof(fired))
                    ticks += fired;
                max_gap = now - last > max_gap ? now - last : max_gap;
                last = now;
            } else {
                engine_ready = 1;
            }
        }
        CHECK_INT(rf_engine_fd(eng), fd); /* one descriptor for the engine's life */
        if (engine_ready || rf_engine_timeout_ms(eng) == 0)
            more = rf_step(eng, 0);
    }
    CHECK_INT(more, 0);
    CHECK_INT(n_timeout, HANG_N);
    CHECK_INT(n_ok, count);
    CHECK(ticks > 0);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
    close(tfd);
    close(ep);
    printf("ok %lu timeouts %lu ticks %" PRIu64 " max_gap_us %" PRIu64 "\n", n_ok, n_timeout,
           ticks, max_gap);
    return 0;
}
