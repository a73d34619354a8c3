/*
 * stream: the on_header and on_body callbacks.
 *
 *   stream headers FOLLOW URL
 *       prints "H INDEX NAME: VALUE" for every header on_header sees, in order (FOLLOW 1:
 *       redirects followed, so every hop's), then "R INDEX ERROR STATUS CONTENT_TYPE SERVER".
 *   stream bodies THREADS URL...
 *       on_body's pieces put together must be the body: as many bytes as body_bytes, the
 *       same bytes the result keeps (keep_body 2 MiB). Prints "B INDEX STATUS BYTES FNV1A".
 *   stream abort THREADS URL
 *       six requests for URL (a large body): request 1's on_body returns 1 on its first
 *       piece, request 3's on_header on Content-Type, request 5's on_body after 300000
 *       bytes. Those three end cancelled, the callbacks never called for them again; the
 *       others complete. Prints "A INDEX ERROR BYTES".
 */
#include "api.h"

#define MAX_REQ 64
#define KEEP (2u << 20)

struct seen {
    unsigned char *data;     /* the streamed body */
    size_t len, cap;
    unsigned long headers;
    int aborted;             /* a callback returned nonzero */
    unsigned long after;     /* callbacks after that: must stay 0 */
};

static struct seen seen[MAX_REQ];
static const char *mode;

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* Requests are handled by one ring thread at a time each: per-request state needs no lock. */
static int on_header(void *userp, uint64_t index, void *userdata, const char *name,
                     size_t name_len, const char *value, size_t value_len)
{
    struct seen *s = &seen[index];

    (void)userp;
    CHECK(index < MAX_REQ);
    CHECK_INT((uintptr_t)userdata, index);
    CHECK(name_len > 0 && memchr(name, ':', name_len) == NULL);
    CHECK(memchr(value, '\r', value_len) == NULL && memchr(value, '\n', value_len) == NULL);
    if (s->aborted) {
        s->after++;
        return 1;
    }
    s->headers++;
    if (strcmp(mode, "headers") == 0)
        printf("H %" PRIu64 " %.*s: %.*s\n", index, (int)name_len, name, (int)value_len, value);
    if (strcmp(mode, "abort") == 0 && index == 3 && name_len == 12 &&
        strncasecmp(name, "content-type", 12) == 0) {
        s->aborted = 1;
        return 1;
    }
    return 0;
}

static int on_body(void *userp, uint64_t index, void *userdata, const void *data, size_t len)
{
    struct seen *s = &seen[index];

    (void)userp;
    CHECK(index < MAX_REQ);
    CHECK_INT((uintptr_t)userdata, index);
    CHECK(len > 0);
    if (s->aborted) {
        s->after++;
        return 1;
    }
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2;
        s->data = realloc(s->data, s->cap);
        CHECK(s->data);
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    if (strcmp(mode, "abort") == 0 && ((index == 1) || (index == 5 && s->len > 300000))) {
        s->aborted = 1;
        return 1;
    }
    return 0;
}

static unsigned long delivered;

static void on_result(void *userp, const rf_result *r)
{
    struct seen *s = &seen[r->index];

    (void)userp;
    CHECK_INT(r->index, delivered);
    delivered++;
    if (strcmp(mode, "headers") == 0) {
        printf("R %" PRIu64 " %s %d %s %s\n", r->index, rf_strerror(r->error), r->status,
               r->content_type ? r->content_type : "-", r->server ? r->server : "-");
        return;
    }
    if (strcmp(mode, "abort") == 0) {
        CHECK_INT(s->after, 0);
        CHECK_ERR(r->error, s->aborted ? RF_ERR_CANCELLED : RF_OK);
        printf("A %" PRIu64 " %s %" PRIu64 "\n", r->index, rf_strerror(r->error), r->body_bytes);
        return;
    }
    CHECK_ERR(r->error, RF_OK);
    CHECK_INT(s->len, r->body_bytes);
    CHECK_INT(r->body_len, r->body_bytes < KEEP ? r->body_bytes : KEEP);
    CHECK(r->body_len == 0 || memcmp(r->body, s->data, r->body_len) == 0);
    printf("B %" PRIu64 " %d %zu %016" PRIx64 "\n", r->index, r->status, s->len,
           fnv1a(s->data, s->len));
}

int main(int argc, char **argv)
{
    rf_config cfg;
    rf_engine *eng;
    int first_url, n_urls;

    if (argc < 4) {
        fprintf(stderr, "usage: stream headers FOLLOW URL | bodies THREADS URL... | abort "
                        "THREADS URL\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* written from the callbacks (tests/valgrind.supp) */
    mode = argv[1];
    first_url = 3;
    n_urls = argc - first_url;
    rf_config_init(&cfg);
    cfg.on_result = on_result;
    cfg.on_header = on_header;
    cfg.on_body = on_body;
    cfg.concurrency = 8;
    if (strcmp(mode, "headers") == 0) {
        cfg.follow_redirects = (int)arg_num(argv[2]);
    } else {
        cfg.threads = (unsigned)arg_num(argv[2]);
        cfg.keep_body = KEEP;
    }
    if (strcmp(mode, "abort") == 0)
        n_urls = 6;
    CHECK(n_urls <= MAX_REQ);
    eng = make_engine(&cfg);
    for (int i = 0; i < n_urls; i++) {
        rf_request req = RF_REQUEST_INIT;

        req.url = argv[strcmp(mode, "abort") == 0 ? first_url : first_url + i];
        req.userdata = (void *)(uintptr_t)i;
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
    }
    CHECK_ERR(rf_run(eng), RF_OK);
    CHECK_INT(delivered, n_urls);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
    for (int i = 0; i < MAX_REQ; i++)
        free(seen[i].data);
    return 0;
}
