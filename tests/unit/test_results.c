/* test_results.c - the ordered window: admission bound, in-order delivery, wrap, string areas. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fetch/results.h"
#include "ringfetch.h"

/* What the delivery callback saw, in call order. */
struct seen {
    uint64_t n;
    uint64_t index[64];
    int status[64];
    char url[64][48];
    struct rf_window *w; /* the window being emitted, to look at it from inside the callback */
    int entry_free_in_cb;
    int head_moved_in_cb;
};

static void collect(void *userp, const rf_result *r)
{
    struct seen *s = userp;

    if (s->w) {
        s->entry_free_in_cb += window_at(s->w, r->index)->state == W_FREE;
        s->head_moved_in_cb += s->w->head == r->index + 1;
    }
    if (s->n < 64) {
        s->index[s->n] = r->index;
        s->status[s->n] = r->status;
        snprintf(s->url[s->n], sizeof(s->url[0]), "%s", r->url);
    }
    s->n++;
}

static void finish_entry(struct rf_window *w, uint64_t i, int status)
{
    struct wentry *e = window_at(w, i);

    e->status = status;
    e->state = W_DONE;
}

static int admit_url(struct rf_window *w, const char *url, uint64_t *idx)
{
    rf_request req;

    memset(&req, 0, sizeof(req));
    req.url = url;
    return window_admit(w, &req, idx);
}

static void test_size_rounding(void)
{
    struct rf_window w;

    CHECK_INT(window_init(&w, 5), 0);
    CHECK_UINT(w.size, 8);
    CHECK_UINT(w.mask, 7);
    CHECK_UINT(w.head, 0);
    CHECK_UINT(w.next, 0);
    window_free(&w);
    CHECK(w.e == NULL);
    window_free(&w); /* twice is harmless */

    CHECK_INT(window_init(&w, 1), 0);
    CHECK_UINT(w.size, 1);
    window_free(&w);
    CHECK_INT(window_init(&w, 64), 0);
    CHECK_UINT(w.size, 64);
    window_free(&w);
}

/* Entries completing out of order are delivered only once every earlier one is done. */
static void test_out_of_order(void)
{
    static const unsigned order[8] = {3, 1, 7, 0, 2, 6, 5, 4};
    /* How many results are out after finishing order[k]. */
    static const uint64_t out_after[8] = {0, 0, 0, 2, 4, 4, 4, 8};
    struct rf_window w;
    struct seen s;
    char url[32];
    uint64_t idx;

    memset(&s, 0, sizeof(s));
    CHECK_INT(window_init(&w, 8), 0);
    s.w = &w;
    for (unsigned i = 0; i < 8; i++) {
        snprintf(url, sizeof(url), "http://h/%u", i);
        CHECK_INT(admit_url(&w, url, &idx), 0);
        CHECK_UINT(idx, i);
        CHECK_INT(window_at(&w, idx)->state, W_PENDING);
    }
    CHECK_UINT(window_emit(&w, collect, &s), 0);
    for (unsigned k = 0; k < 8; k++) {
        uint64_t before = s.n;

        finish_entry(&w, order[k], 200 + (int)order[k]);
        CHECK_UINT(window_emit(&w, collect, &s), out_after[k] - before);
        CHECK_UINT(s.n, out_after[k]);
        CHECK_UINT(w.head, out_after[k]);
    }
    for (unsigned i = 0; i < 8; i++) {
        char want[32];

        snprintf(want, sizeof(want), "http://h/%u", i);
        CHECK_UINT(s.index[i], i);
        CHECK_INT(s.status[i], 200 + (int)i);
        CHECK_STR(s.url[i], want);
    }
    /* The entry was free and the head past it while the callback ran. */
    CHECK_INT(s.entry_free_in_cb, 8);
    CHECK_INT(s.head_moved_in_cb, 8);
    CHECK_UINT(window_emit(&w, collect, &s), 0);
    window_free(&w);
}

/* A full window admits nothing until its head is delivered, then exactly one more. */
static void test_backpressure(void)
{
    struct rf_window w;
    struct seen s;
    uint64_t idx;

    memset(&s, 0, sizeof(s));
    CHECK_INT(window_init(&w, 4), 0);
    for (unsigned i = 0; i < 4; i++) {
        CHECK(window_has_room(&w));
        CHECK_INT(admit_url(&w, "http://h/", &idx), 0);
    }
    CHECK(!window_has_room(&w));
    /* Done but not at the head: still full. */
    finish_entry(&w, 1, 200);
    finish_entry(&w, 3, 200);
    CHECK_UINT(window_emit(&w, collect, &s), 0);
    CHECK(!window_has_room(&w));
    finish_entry(&w, 0, 200);
    CHECK_UINT(window_emit(&w, collect, &s), 2);
    CHECK(window_has_room(&w));
    CHECK_INT(admit_url(&w, "http://h/4", &idx), 0);
    CHECK_UINT(idx, 4);
    CHECK_INT(admit_url(&w, "http://h/5", &idx), 0);
    CHECK_UINT(idx, 5);
    CHECK(!window_has_room(&w));
    /* Index 4 landed in the entry index 0 left, and carries its own URL. */
    CHECK(window_at(&w, 4) == &w.e[0]);
    CHECK_STR(window_at(&w, 4)->str, "http://h/4");
    window_free(&w);
}

/* Many times round a small window with a varying number in flight: order never breaks. */
static void test_wrap_around(void)
{
    struct rf_window w;
    struct seen s;
    uint64_t pending[8], idx, total = 0, rng = 0x9e3779b97f4a7c15ull;
    unsigned npending = 0;
    char url[40];
    int order_ok = 1, url_ok = 1;

    memset(&s, 0, sizeof(s));
    CHECK_INT(window_init(&w, 8), 0);
    while (total < 8 * 1000) {
        /* Admit a random number that fits, finish a random one of those in flight. */
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        for (unsigned k = (unsigned)(rng % 4); k > 0 && window_has_room(&w); k--) {
            snprintf(url, sizeof(url), "http://h/%llu", (unsigned long long)w.next);
            if (admit_url(&w, url, &idx) != 0) {
                CHECK(0);
                break;
            }
            pending[npending++] = idx;
        }
        if (npending) {
            unsigned pick = (unsigned)((rng >> 8) % npending);
            struct wentry *e = window_at(&w, pending[pick]);

            snprintf(url, sizeof(url), "http://h/%llu", (unsigned long long)pending[pick]);
            url_ok &= strcmp(e->str, url) == 0;
            e->status = (int)(pending[pick] % 1000);
            e->state = W_DONE;
            pending[pick] = pending[--npending];
        }
        s.n = 0;
        {
            uint64_t head = w.head, n = window_emit(&w, collect, &s);

            for (uint64_t i = 0; i < n && i < 64; i++)
                order_ok &= s.index[i] == head + i && s.status[i] == (int)((head + i) % 1000);
            total += n;
        }
        CHECK(w.next - w.head <= w.size);
    }
    CHECK(order_ok);
    CHECK(url_ok);
    CHECK(w.head >= 8 * 1000);
    window_free(&w);
}

/* Offsets, NUL termination, growth, extension, and the reset a retry or a reuse does. */
static void test_string_area(void)
{
    struct rf_window w;
    struct wentry *e;
    char big[3000];
    uint64_t idx;
    uint32_t a, b, c;
    char *area;

    CHECK_INT(window_init(&w, 2), 0);
    CHECK_INT(admit_url(&w, "http://example.com/x", &idx), 0);
    e = window_at(&w, idx);
    CHECK_UINT(e->url_len, 20);
    CHECK_UINT(e->str_len, 21);
    CHECK_STR(e->str, "http://example.com/x");
    CHECK_UINT(e->loc, W_NONE);
    CHECK_UINT(e->ctype, W_NONE);
    CHECK_UINT(e->server, W_NONE);
    CHECK_UINT(e->ip, W_NONE);
    CHECK_UINT(e->kept, W_NONE);
    CHECK_INT(e->content_length, -1);
    CHECK_STR(e->method, "GET");
    CHECK(e->headers == NULL);
    CHECK_UINT(e->n_headers, 0);
    CHECK(e->body == NULL);
    CHECK_UINT(e->body_len, 0);

    a = wentry_append(e, "text/html", 9);
    CHECK_UINT(a, 21);
    b = wentry_append(e, "", 0);
    CHECK_UINT(b, 31);
    c = wentry_append(e, "nginx", 3); /* only len bytes are taken */
    CHECK_UINT(c, 32);
    CHECK_STR(e->str + a, "text/html");
    CHECK_STR(e->str + b, "");
    CHECK_STR(e->str + c, "ngi");
    CHECK_INT(wentry_extend(e, "nx/1", 4), 0);
    CHECK_STR(e->str + c, "nginx/1");
    CHECK_UINT(e->str_len, 40);
    CHECK_INT(wentry_extend(e, "", 0), 0);
    CHECK_STR(e->str + c, "nginx/1");

    /* Growth past the first allocation keeps the earlier strings. */
    memset(big, 'b', sizeof(big));
    c = wentry_append(e, big, sizeof(big));
    CHECK_UINT(c, 40);
    CHECK(e->str_cap >= e->str_len);
    CHECK_UINT(e->str_len, 40 + sizeof(big) + 1);
    CHECK_STR(e->str, "http://example.com/x");
    CHECK_STR(e->str + a, "text/html");
    CHECK_UINT(strlen(e->str + c), sizeof(big));
    CHECK_INT(wentry_extend(e, "XY", 2), 0);
    CHECK_UINT(strlen(e->str + c), sizeof(big) + 2);
    CHECK_MEM(e->str + c + sizeof(big), 3, "XY", 3);

    /* A retry forgets the response but keeps the URL and the memory. */
    e->status = 503;
    e->body_bytes = 7;
    e->content_length = 7;
    e->loc = a;
    e->kept = c;
    e->kept_len = 9;
    e->reused = 1;
    e->err = RF_ERR_CLOSED;
    area = e->str;
    wentry_reset_response(e);
    CHECK_UINT(e->str_len, 21);
    CHECK_STR(e->str, "http://example.com/x");
    CHECK(e->str == area);
    CHECK_INT(e->status, 0);
    CHECK_UINT(e->body_bytes, 0);
    CHECK_INT(e->content_length, -1);
    CHECK_UINT(e->loc, W_NONE);
    CHECK_UINT(e->kept, W_NONE);
    CHECK_UINT(e->kept_len, 0);
    CHECK_INT(e->reused, 0);
    CHECK_INT(e->err, RF_OK);
    CHECK_UINT(wentry_append(e, "again", 5), 21);

    /* The next job in the same entry starts from an empty area in the same memory. */
    e->state = W_DONE;
    {
        struct seen s;

        memset(&s, 0, sizeof(s));
        CHECK_UINT(window_emit(&w, collect, &s), 1);
    }
    CHECK_INT(admit_url(&w, "http://b/", &idx), 0); /* entry 1 */
    CHECK_INT(admit_url(&w, "http://c/", &idx), 0); /* entry 0 again */
    CHECK_UINT(idx, 2);
    CHECK(window_at(&w, idx) == e);
    CHECK(e->str == area);
    CHECK_UINT(e->str_len, 10);
    CHECK_STR(e->str, "http://c/");
    CHECK_UINT(e->loc, W_NONE);
    CHECK_UINT(e->kept, W_NONE);
    CHECK_UINT(wentry_append(e, "x", 1), 10);

    /* An append that cannot be represented fails instead of wrapping. */
    CHECK_UINT(wentry_append(e, "x", UINT32_MAX / 2), W_NONE);
    CHECK_INT(wentry_extend(e, "x", UINT32_MAX / 2), -1);
    CHECK_UINT(e->str_len, 12);
    CHECK_STR(e->str + 10, "x");
    window_free(&w);
}

/* Every field of the entry reaches the result, absent strings as NULL. */
static const rf_result *last;
static rf_result last_copy;
static char last_strs[6][32];

static void keep_last(void *userp, const rf_result *r)
{
    const char *p[6] = {r->url, r->location, r->content_type, r->server, r->ip, r->body};

    (void)userp;
    last_copy = *r;
    last = &last_copy;
    for (int i = 0; i < 6; i++)
        snprintf(last_strs[i], sizeof(last_strs[i]), "%s", p[i] ? p[i] : "(null)");
}

static void test_emit_fields(void)
{
    static const char *const hdrs[] = {"X-A: 1", "X-B: 2"};
    static int token;
    struct rf_window w;
    struct wentry *e;
    rf_request req;
    uint64_t idx;

    CHECK_INT(window_init(&w, 4), 0);
    memset(&req, 0, sizeof(req));
    req.url = "http://h/r";
    req.method = "POST";
    req.headers = hdrs;
    req.n_headers = 2;
    req.body = "abc";
    req.body_len = 3;
    req.userdata = &token;
    CHECK_INT(window_admit(&w, &req, &idx), 0);
    e = window_at(&w, idx);
    CHECK_STR(e->method, "POST");
    CHECK(e->headers == hdrs);
    CHECK_UINT(e->n_headers, 2);
    CHECK_UINT(e->body_len, 3);
    e->status = 302;
    e->err = RF_OK;
    e->body_bytes = 5;
    e->content_length = 5;
    e->loc = wentry_append(e, "/next", 5);
    e->server = wentry_append(e, "srv", 3);
    e->ip = wentry_append(e, "127.0.0.1", 9);
    e->kept = wentry_append(e, "hello", 5);
    e->kept_len = 5;
    e->connect_us = 11;
    e->ttfb_us = 22;
    e->total_us = 33;
    e->reused = 1;
    e->state = W_DONE;
    last = NULL;
    CHECK_UINT(window_emit(&w, keep_last, NULL), 1);
    if (CHECK(last != NULL)) {
        CHECK_UINT(last->index, 0);
        CHECK_INT(last->status, 302);
        CHECK_INT(last->error, RF_OK);
        CHECK_UINT(last->body_bytes, 5);
        CHECK_INT(last->content_length, 5);
        CHECK_STR(last_strs[0], "http://h/r");
        CHECK_STR(last_strs[1], "/next");
        CHECK_STR(last_strs[2], "(null)");
        CHECK_STR(last_strs[3], "srv");
        CHECK_STR(last_strs[4], "127.0.0.1");
        CHECK_STR(last_strs[5], "hello");
        CHECK_UINT(last->body_len, 5);
        CHECK_UINT(last->connect_us, 11);
        CHECK_UINT(last->ttfb_us, 22);
        CHECK_UINT(last->total_us, 33);
        CHECK_INT(last->reused, 1);
        CHECK(last->userdata == &token);
    }

    /* headers without n_headers and body_len without body are ignored. */
    req.headers = NULL;
    req.body = NULL;
    req.method = NULL;
    CHECK_INT(window_admit(&w, &req, &idx), 0);
    e = window_at(&w, idx);
    CHECK_UINT(idx, 1);
    CHECK_STR(e->method, "GET");
    CHECK_UINT(e->n_headers, 0);
    CHECK_UINT(e->body_len, 0);
    e->err = RF_ERR_DNS;
    e->state = W_DONE;
    CHECK_UINT(window_emit(&w, keep_last, NULL), 1);
    CHECK_INT(last->error, RF_ERR_DNS);
    CHECK_INT(last->status, 0);
    CHECK_INT(last->content_length, -1);
    CHECK_STR(last_strs[1], "(null)");
    CHECK_STR(last_strs[5], "(null)");
    CHECK_UINT(last->body_len, 0);
    window_free(&w);
}

int main(void)
{
    test_size_rounding();
    test_out_of_order();
    test_backpressure();
    test_wrap_around();
    test_string_area();
    test_emit_fields();
    return check_finish("test_results");
}
