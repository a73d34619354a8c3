/*
 * lifetimes: what a request points to belongs to the caller again once rf_submit() or the
 * pull callback returns. Every request carries its number three ways (the URL's ?n=N, an
 * X-Id: N header, a body "n=N;..."), built in memory that is overwritten or freed at once:
 *
 *   reuse   the pull callback fills ONE static set of buffers, the same for every request
 *   free    the pull callback allocates each request and frees (after scribbling over it)
 *           the previous one's URL, method, header array, header strings and body
 *   submit  rf_submit() of requests freed, scribbled over, right after the call
 *   static  rf_submit() with RF_REQ_STATIC: the method, headers and body live until the
 *           result, and are scribbled over and freed in the result callback
 *
 *   lifetimes MODE BASE COUNT CONCURRENCY THREADS
 *
 * BASE is the logging nginx's /id/TAG (its access log shows the URL, X-Id, method and
 * body that arrived; the test compares them). Each result must be that request's, in
 * order; the program prints "ok COUNT".
 */
#include "api.h"

#define URL_MAX 512

static const char *mode, *base;
static unsigned long count, next_n, results;

/* The body of request n: its number, then a run whose length and letter depend on it. */
static size_t body_for(unsigned long n, char *out)
{
    size_t len = (size_t)sprintf(out, "n=%lu;", n);

    for (unsigned long i = 0; i < n % 61; i++)
        out[len++] = (char)('a' + n % 26);
    out[len] = '\0';
    return len;
}

/* One request's memory in the "free" and "submit" modes: every piece its own block. */
struct owned {
    char *url, *method, *hdr0, *hdr1, *body;
    const char **hdrs;
    size_t body_len;
};

static char *dup_str(const char *s)
{
    char *p = strdup(s);

    CHECK(p);
    return p;
}

static void make_owned(struct owned *o, unsigned long n)
{
    char url[URL_MAX], hdr[64], body[128];

    snprintf(url, sizeof(url), "%s?n=%lu", base, n);
    snprintf(hdr, sizeof(hdr), "X-Id: %lu", n);
    o->body_len = body_for(n, body);
    o->url = dup_str(url);
    o->method = dup_str("POST");
    o->hdr0 = dup_str(hdr);
    o->hdr1 = dup_str("X-Filler: lifetimes");
    o->body = dup_str(body);
    o->hdrs = malloc(2 * sizeof(*o->hdrs));
    CHECK(o->hdrs);
    o->hdrs[0] = o->hdr0;
    o->hdrs[1] = o->hdr1;
}

/* Scribble, then free: a stale pointer the engine kept reads garbage even without ASan. */
static void free_owned(struct owned *o)
{
    char *strs[] = {o->url, o->method, o->hdr0, o->hdr1, o->body};

    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (strs[i]) {
            memset(strs[i], 'Z', strlen(strs[i]));
            free(strs[i]);
        }
    }
    if (o->hdrs) {
        memset(o->hdrs, 0x5a, 2 * sizeof(*o->hdrs));
        free(o->hdrs);
    }
    memset(o, 0, sizeof(*o));
}

static void owned_request(const struct owned *o, unsigned long n, rf_request *req)
{
    req->url = o->url;
    req->method = o->method;
    req->headers = (const char *const *)o->hdrs;
    req->n_headers = 2;
    req->body = o->body;
    req->body_len = o->body_len;
    req->userdata = (void *)(uintptr_t)n;
}

/* reuse: one set of buffers, rewritten for every request. */
static struct {
    char url[URL_MAX], method[8], hdr[64], filler[32], body[128];
    const char *hdrs[2];
} one;

static struct owned prev;

static int pull(void *userp, rf_request *req)
{
    unsigned long n = next_n;

    (void)userp;
    CHECK(req->size == sizeof(*req) && req->url == NULL && req->headers == NULL);
    if (n == count)
        return 0;
    next_n++;
    if (strcmp(mode, "reuse") == 0) {
        snprintf(one.url, sizeof(one.url), "%s?n=%lu", base, n);
        snprintf(one.hdr, sizeof(one.hdr), "X-Id: %lu", n);
        /* Different every time, so a stale pointer cannot pass by luck. */
        snprintf(one.method, sizeof(one.method), "%s", n % 2 ? "POST" : "PUT");
        snprintf(one.filler, sizeof(one.filler), "X-Filler: %lu", n * 7);
        one.hdrs[0] = one.hdr;
        one.hdrs[1] = one.filler;
        req->url = one.url;
        req->method = one.method;
        req->headers = one.hdrs;
        req->n_headers = 2;
        req->body_len = body_for(n, one.body);
        req->body = one.body;
        req->userdata = (void *)(uintptr_t)n;
        return 1;
    }
    /* free: the previous request's memory goes now, this one's at the next call. */
    free_owned(&prev);
    make_owned(&prev, n);
    owned_request(&prev, n, req);
    return 1;
}

static struct owned *statics;

static void on_result(void *userp, const rf_result *r)
{
    unsigned long n = results++;
    char url[URL_MAX];

    (void)userp;
    snprintf(url, sizeof(url), "%s?n=%lu", base, n);
    if (r->error != RF_OK || r->status != 204)
        fprintf(stderr, "request %lu: %s status %d %s\n", n, rf_strerror(r->error), r->status,
                r->error_detail ? r->error_detail : "");
    CHECK_INT(r->index, n);
    CHECK_INT((uintptr_t)r->userdata, n);
    CHECK_STR(r->url, url);
    CHECK_ERR(r->error, RF_OK);
    CHECK_INT(r->status, 204); /* the logging nginx's sink answers 204 */
    if (statics)
        free_owned(&statics[n]); /* RF_REQ_STATIC: ours again only now */
}

int main(int argc, char **argv)
{
    rf_config cfg;
    rf_engine *eng;
    int use_pull;

    if (argc != 6) {
        fprintf(stderr, "usage: lifetimes reuse|free|submit|static BASE COUNT CONC THREADS\n");
        return 2;
    }
    mode = argv[1];
    base = argv[2];
    count = arg_num(argv[3]);
    use_pull = strcmp(mode, "reuse") == 0 || strcmp(mode, "free") == 0;
    CHECK(use_pull || strcmp(mode, "submit") == 0 || strcmp(mode, "static") == 0);

    rf_config_init(&cfg);
    cfg.concurrency = (unsigned)arg_num(argv[4]);
    cfg.threads = (unsigned)arg_num(argv[5]);
    cfg.timeout_ms = 20000;
    cfg.on_result = on_result;
    if (use_pull)
        cfg.pull = pull;
    eng = make_engine(&cfg);
    if (strcmp(mode, "static") == 0) {
        statics = calloc(count, sizeof(*statics));
        CHECK(statics || count == 0);
    }
    for (unsigned long n = 0; !use_pull && n < count; n++) {
        rf_request req = RF_REQUEST_INIT;
        struct owned o;

        make_owned(&o, n);
        owned_request(&o, n, &req);
        if (statics) {
            req.flags = RF_REQ_STATIC;
            statics[n] = o;
        }
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
        /* The URL is always copied; without RF_REQ_STATIC everything else is too. */
        if (statics) {
            memset(o.url, 'Z', strlen(o.url));
            free(o.url);
            statics[n].url = NULL;
        } else {
            free_owned(&o);
        }
    }
    CHECK_ERR(rf_run(eng), RF_OK);
    free_owned(&prev);
    CHECK_INT(results, count);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
    free(statics);
    printf("ok %lu\n", results);
    return 0;
}
