/*
 * test_results.c - the ordered result window (fetch/window.c) and what admission puts in
 * an entry (fetch/admit.c): the admission bound, in-order delivery, wrap-around, pages made
 * on first use, each request's string area (inline, then the heap until delivery), and
 * every field of an entry reaching its result.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fetch/fetch.h"
#include "ringfetch.h"

#define PAGE (1u << W_PAGE_SHIFT)

/* What the delivery callback saw, in call order. */
struct seen {
    uint64_t n;
    uint64_t index[64];
    int status[64];
    char url[64][48];
    struct rf_window *w; /* the window being emitted, to look at it from inside the callback */
    int entry_done_in_cb;
    int head_at_entry_in_cb;
};

static void collect(void *userp, const rf_result *r)
{
    struct seen *s = userp;

    if (s->w) {
        s->entry_done_in_cb += window_at(s->w, r->index)->state == W_DONE;
        s->head_at_entry_in_cb += s->w->head == r->index;
    }
    if (s->n < 64) {
        s->index[s->n] = r->index;
        s->status[s->n] = r->status;
        snprintf(s->url[s->n], sizeof(s->url[0]), "%s", r->url ? r->url : "(null)");
    }
    s->n++;
}

static void finish_entry(struct rf_window *w, uint64_t i, int status)
{
    struct request *e = window_at(w, i);

    e->status = status;
    e->state = W_DONE;
}

/* Take the next index and give its entry a URL, as admission would (without parsing). */
static int take_url(struct rf_window *w, const char *url, uint64_t *idx)
{
    struct request *e;
    int ret = window_take(w, idx);

    if (ret)
        return ret;
    e = window_at(w, *idx);
    request_clear(e);
    request_reset_response(e);
    e->url = request_append(e, url, (uint32_t)strlen(url));
    e->state = W_PENDING;
    return e->url == W_NONE ? -RF_ERR_NOMEM : 0;
}

/* The window is whole pages of PAGE entries; a page is made when the window first reaches it. */
static void test_size_and_pages(void)
{
    struct rf_window w;
    uint64_t idx;

    CHECK_INT(window_init(&w, 5), 0);
    CHECK_UINT(w.size, PAGE);
    CHECK_UINT(w.mask, PAGE - 1);
    CHECK_UINT(w.head, 0);
    CHECK_UINT(w.next, 0);
    CHECK(w.page[0] != NULL); /* made at once: the first step does not fault it in */
    window_free(&w);
    CHECK(w.page == NULL);
    window_free(&w); /* twice is harmless */

    CHECK_INT(window_init(&w, PAGE), 0);
    CHECK_UINT(w.size, PAGE);
    window_free(&w);
    CHECK_INT(window_init(&w, PAGE + 1), 0);
    CHECK_UINT(w.size, 2 * PAGE);
    CHECK(w.page[0] != NULL && w.page[1] == NULL);
    CHECK_INT(window_take(&w, &idx), 0);
    CHECK_UINT(idx, 0);
    CHECK(w.page[0] != NULL);
    CHECK(w.page[1] == NULL);
    /* a fresh entry's string area is its inline buffer, empty */
    CHECK(window_at(&w, 0)->str == window_at(&w, 0)->inl);
    CHECK_UINT(window_at(&w, 0)->str_len, 0);
    CHECK_INT(window_at(&w, 0)->state, W_FREE);
    while (w.next < PAGE)
        CHECK_INT(window_take(&w, &idx), 0);
    CHECK(w.page[1] == NULL);
    CHECK_INT(window_take(&w, &idx), 0);
    CHECK_UINT(idx, PAGE);
    CHECK(w.page[1] != NULL);
    CHECK(window_at(&w, PAGE) == &w.page[1][0]);
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
        CHECK_INT(take_url(&w, url, &idx), 0);
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
        /* delivered: free again, its string area cleared */
        CHECK_INT(window_at(&w, i)->state, W_FREE);
        CHECK_UINT(window_at(&w, i)->str_len, 0);
    }
    /* While the callback ran, the entry (whose strings the result points into) was still
     * done and the head on it; both move on after the callback. */
    CHECK_INT(s.entry_done_in_cb, 8);
    CHECK_INT(s.head_at_entry_in_cb, 8);
    CHECK_UINT(window_emit(&w, collect, &s), 0);
    window_free(&w);
}

/* A full window admits nothing until its head is delivered, then exactly that many more. */
static void test_backpressure(void)
{
    struct rf_window w;
    struct seen s;
    uint64_t idx;

    memset(&s, 0, sizeof(s));
    CHECK_INT(window_init(&w, PAGE), 0);
    for (unsigned i = 0; i < PAGE; i++) {
        if (!CHECK(window_has_room(&w)))
            break;
        CHECK_INT(take_url(&w, "http://h/", &idx), 0);
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
    CHECK_INT(take_url(&w, "http://h/p", &idx), 0);
    CHECK_UINT(idx, PAGE);
    CHECK_INT(take_url(&w, "http://h/p1", &idx), 0);
    CHECK_UINT(idx, PAGE + 1);
    CHECK(!window_has_room(&w));
    /* Index PAGE landed in the entry index 0 left, and carries its own URL. */
    CHECK(window_at(&w, PAGE) == &w.page[0][0]);
    CHECK_STR(request_str(window_at(&w, PAGE), window_at(&w, PAGE)->url), "http://h/p");
    window_free(&w);
}

/* Many times round the window with a varying number in flight: order never breaks. */
static void test_wrap_around(void)
{
    static uint64_t pending[PAGE];
    struct rf_window w;
    struct seen s;
    uint64_t idx, total = 0, rng = 0x9e3779b97f4a7c15ull;
    unsigned npending = 0;
    char url[40];
    int order_ok = 1, url_ok = 1;

    memset(&s, 0, sizeof(s));
    CHECK_INT(window_init(&w, PAGE), 0);
    while (total < 8 * PAGE) {
        /* Admit a random number that fits, finish a random one of those in flight. */
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        for (unsigned k = (unsigned)(rng % 4); k > 0 && window_has_room(&w); k--) {
            snprintf(url, sizeof(url), "http://h/%llu", (unsigned long long)w.next);
            if (take_url(&w, url, &idx) != 0) {
                CHECK(0);
                break;
            }
            pending[npending++] = idx;
        }
        if (npending) {
            unsigned pick = (unsigned)((rng >> 8) % npending);
            struct request *e = window_at(&w, pending[pick]);

            snprintf(url, sizeof(url), "http://h/%llu", (unsigned long long)pending[pick]);
            url_ok &= strcmp(request_str(e, e->url), url) == 0;
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
    CHECK(w.head >= 8 * PAGE);
    window_free(&w);
}

/*
 * Offsets, NUL termination, growth from the inline buffer to the heap (offsets survive,
 * pointers need not), extension, reservations, and what a reset and a delivery keep.
 */
static void test_string_area(void)
{
    struct rf_window w;
    struct request *e;
    char big[3000];
    uint64_t idx;
    uint32_t a, b, c;
    char *p;

    CHECK_INT(window_init(&w, 2), 0);
    CHECK_INT(take_url(&w, "http://example.com/x", &idx), 0);
    e = window_at(&w, idx);
    CHECK_UINT(e->url, 0);
    CHECK_UINT(e->str_len, 21);
    CHECK_STR(request_str(e, e->url), "http://example.com/x");
    CHECK(request_str(e, W_NONE) == NULL);
    CHECK_UINT(e->loc, W_NONE);
    CHECK_UINT(e->ctype, W_NONE);
    CHECK_UINT(e->server, W_NONE);
    CHECK_UINT(e->ip, W_NONE);
    CHECK_UINT(e->kept, W_NONE);
    CHECK_UINT(e->detail, W_NONE);
    CHECK_INT(e->content_length, -1);

    a = request_append(e, "text/html", 9);
    CHECK_UINT(a, 21);
    b = request_append(e, "", 0);
    CHECK_UINT(b, 31);
    c = request_append(e, "nginx", 3); /* only len bytes are taken */
    CHECK_UINT(c, 32);
    CHECK_STR(e->str + a, "text/html");
    CHECK_STR(e->str + b, "");
    CHECK_STR(e->str + c, "ngi");
    CHECK_INT(request_extend(e, "nx/1", 4), 0);
    CHECK_STR(e->str + c, "nginx/1");
    CHECK_UINT(e->str_len, 40);
    CHECK_INT(request_extend(e, "", 0), 0);
    CHECK_STR(e->str + c, "nginx/1");
    CHECK(e->str == e->inl); /* 40 bytes: still inline */

    /* A reservation is written in place, then committed as one string. */
    p = request_reserve(e, 5);
    if (CHECK(p == e->str + 40)) {
        memcpy(p, "abcde", 5);
        CHECK_UINT(request_commit(e, 3), 40); /* fewer than reserved is fine */
        CHECK_STR(e->str + 40, "abc");
        CHECK_UINT(e->str_len, 44);
    }

    /* Growth past the inline buffer moves to the heap and keeps the earlier strings. */
    memset(big, 'b', sizeof(big));
    c = request_append(e, big, sizeof(big));
    CHECK_UINT(c, 44);
    CHECK(e->str != e->inl);
    CHECK(e->str_cap >= e->str_len);
    CHECK_UINT(e->str_len, 44 + sizeof(big) + 1);
    CHECK_STR(request_str(e, e->url), "http://example.com/x");
    CHECK_STR(e->str + a, "text/html");
    CHECK_UINT(strlen(e->str + c), sizeof(big));
    CHECK_INT(request_extend(e, "XY", 2), 0);
    CHECK_UINT(strlen(e->str + c), sizeof(big) + 2);
    CHECK_MEM(e->str + c + sizeof(big), 3, "XY", 3);

    /* A retry forgets the response (offsets, counters), not the bytes or the memory. */
    e->status = 503;
    e->body_bytes = 7;
    e->content_length = 7;
    e->loc = a;
    e->kept = c;
    e->kept_len = 9;
    e->reused = 1;
    e->addresses_tried = 2;
    e->err = RF_ERR_CLOSED;
    p = e->str;
    request_reset_response(e);
    CHECK(e->str == p);
    CHECK_STR(request_str(e, e->url), "http://example.com/x");
    CHECK_INT(e->status, 0);
    CHECK_UINT(e->body_bytes, 0);
    CHECK_INT(e->content_length, -1);
    CHECK_UINT(e->loc, W_NONE);
    CHECK_UINT(e->kept, W_NONE);
    CHECK_UINT(e->kept_len, 0);
    CHECK_INT(e->reused, 0);
    CHECK_UINT(e->addresses_tried, 0);
    CHECK_INT(e->err, RF_OK);

    /* An append that cannot be represented fails instead of wrapping, and changes nothing. */
    {
        uint32_t len = e->str_len;

        CHECK_UINT(request_append(e, "x", UINT32_MAX / 2), W_NONE);
        CHECK_INT(request_extend(e, "x", UINT32_MAX / 2), -1);
        CHECK(request_reserve(e, UINT32_MAX / 2) == NULL);
        CHECK_UINT(e->str_len, len);
    }

    /* Delivered: the heap area goes back, the entry is empty and inline again. */
    e->state = W_DONE;
    {
        struct seen s;

        memset(&s, 0, sizeof(s));
        CHECK_UINT(window_emit(&w, collect, &s), 1);
        CHECK_STR(s.url[0], "http://example.com/x");
    }
    CHECK(e->str == e->inl);
    CHECK_UINT(e->str_len, 0);
    CHECK_UINT(e->str_cap, REQ_INLINE);
    CHECK_INT(take_url(&w, "http://c/", &idx), 0);
    CHECK_UINT(idx, 1);
    window_free(&w);
}

/* ---- admission into an entry ---- */

static struct rf_engine eng;
static char scratch[ADMIT_SCRATCH];

static void engine_defaults(void)
{
    memset(&eng, 0, sizeof(eng));
    rf_config_init(&eng.cfg);
    eng.scratch = scratch; /* what rf_engine_create() allocates for admission */
}

/* Every field of the entry reaches the result, absent strings as NULL. */
static rf_result last_copy;
static const rf_result *last;
static char last_strs[7][48];

static void keep_last(void *userp, const rf_result *r)
{
    const char *p[7] = {r->url,  r->location, r->content_type, r->server,
                        r->ip,   r->body,     r->error_detail};

    (void)userp;
    last_copy = *r;
    last = &last_copy;
    for (int i = 0; i < 7; i++)
        snprintf(last_strs[i], sizeof(last_strs[i]), "%s", p[i] ? p[i] : "(null)");
}

static void test_emit_fields(void)
{
    static const char *const hdrs[] = {"X-A: 1", "X-B: 2"};
    static int token;
    struct rf_window w;
    struct request *e;
    rf_request req = RF_REQUEST_INIT;
    uint64_t idx;

    engine_defaults();
    CHECK_INT(window_init(&w, 4), 0);
    req.url = "http://h/r";
    req.method = "POST";
    req.headers = hdrs;
    req.n_headers = 2;
    req.body = "abc";
    req.body_len = 3;
    req.userdata = &token;
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK_INT(e->state, W_PENDING);
    CHECK_INT(e->err, RF_OK);
    CHECK_STR(request_str(e, e->method), "POST");
    CHECK_MEM(request_str(e, e->hdrs), e->hdrs_len, "X-A: 1\r\nX-B: 2\r\n", 16);
    CHECK_UINT(e->body_len, 3);
    e->status = 302;
    e->err = RF_OK;
    e->body_bytes = 5;
    e->content_length = 5;
    e->loc = request_append(e, "/next", 5);
    e->server = request_append(e, "srv", 3);
    e->ip = request_append(e, "127.0.0.1", 9);
    e->kept = request_append(e, "hello", 5);
    e->kept_len = 5;
    e->connect_us = 11;
    e->ttfb_us = 22;
    e->total_us = 33;
    e->reused = 1;
    e->addresses_tried = 2;
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
        CHECK_STR(last_strs[6], "(null)");
        CHECK_UINT(last->body_len, 5);
        CHECK_UINT(last->connect_us, 11);
        CHECK_UINT(last->ttfb_us, 22);
        CHECK_UINT(last->total_us, 33);
        CHECK_INT(last->reused, 1);
        CHECK_UINT(last->addresses_tried, 2);
        CHECK_UINT(last->attempts, 1);
        CHECK(last->userdata == &token);
    }

    /* headers without n_headers and body_len without body are ignored; no method is GET. */
    req.headers = NULL;
    req.body = NULL;
    req.method = NULL;
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK_UINT(idx, 1);
    CHECK_STR(request_str(e, e->method), "GET");
    CHECK_UINT(e->hdrs_len, 0);
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

/*
 * Admission copies what the engine keeps: the caller's memory is free at return, unless
 * RF_REQ_STATIC says it outlives the result; bad methods and headers are recorded, not
 * refused; userinfo leaves the URL for an Authorization line; defaults are filled in.
 */
static void test_admit(void)
{
    static const char *const bad_hdr[] = {"X-A: 1\r\nX-Evil: 2"};
    static const char *const own[] = {"Host: other", "Accept: a/b"};
    char body[4] = "xyz";
    struct rf_window w;
    struct request *e;
    rf_request req = RF_REQUEST_INIT;
    uint64_t idx;

    engine_defaults();
    CHECK_INT(window_init(&w, 8), 0);

    /* The body is copied; with RF_REQ_STATIC it is the caller's. */
    req.url = "http://h/a";
    req.body = body;
    req.body_len = 3;
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK(e->body != body);
    CHECK_MEM(e->body, e->body_len, "xyz", 3);
    CHECK_STR(request_str(e, e->method), "POST"); /* a body and no method */
    request_end(e);
    CHECK(e->body_copy == NULL);
    req.flags = RF_REQ_STATIC;
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK(e->body == body);
    CHECK(e->body_copy == NULL);
    req.flags = 0;
    req.body = NULL;

    /* Per-request limits, else the engine's. */
    eng.cfg.keep_body = 64;
    eng.cfg.max_body = 1000;
    req.timeout_ms = 5;
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK_UINT(e->timeout_ms, 5);
    CHECK_UINT(e->connect_timeout_ms, 10000);
    CHECK_UINT(e->max_body, 1000);
    CHECK_UINT(e->keep_body, 64);
    /* A caller whose struct ends before the per-request fields gets the defaults. */
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, offsetof(rf_request, timeout_ms)), 0);
    CHECK_UINT(e->timeout_ms, 30000);
    req.timeout_ms = 0;

    /* A method that is not a token, a header that would add a line: recorded as invalid. */
    req.method = "GET /x";
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK_INT(e->err, RF_ERR_INVALID_ARG);
    req.method = NULL;
    req.headers = bad_hdr;
    req.n_headers = 1;
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK_INT(e->err, RF_ERR_INVALID_ARG);
    CHECK_UINT(e->hdrs_len, 0);

    /* The caller's own Host and Accept are flagged for the writer. */
    req.headers = own;
    req.n_headers = 2;
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK_INT(e->err, RF_OK);
    CHECK_UINT(e->hdr_has, HTTP1_HAS_HOST | HTTP1_HAS_ACCEPT);
    req.headers = NULL;
    req.n_headers = 0;

    /* user:password@ goes from the URL shown into an Authorization line. */
    req.url = "http://u:p@h/r";
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK_INT(e->err, RF_OK);
    CHECK_STR(request_str(e, e->url), "http://h/r");
    CHECK_STR(request_str(e, e->wire), "http://h/r");
    CHECK_MEM(request_str(e, e->auth), e->auth_len, "Authorization: Basic dTpw\r\n", 27);
    /* A bare host takes the default scheme on the wire, and is shown as given. */
    req.url = "example.com/x";
    CHECK_INT(window_take(&w, &idx), 0);
    e = window_at(&w, idx);
    CHECK_INT(request_admit(&eng, e, &req, sizeof(req)), 0);
    CHECK_STR(request_str(e, e->url), "example.com/x");
    CHECK_STR(request_str(e, e->wire), "http://example.com/x");
    CHECK_UINT(w.next, 9);
    for (uint64_t i = 0; i < w.next; i++)
        request_end(window_at(&w, i));
    window_free(&w);
}

int main(void)
{
    test_size_and_pages();
    test_out_of_order();
    test_backpressure();
    test_wrap_around();
    test_string_area();
    test_emit_fields();
    test_admit();
    return check_finish("test_results");
}
