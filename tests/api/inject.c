/*
 * inject: nothing a caller passes can add a line to a request. A user_agent with CR or LF
 * (or another control character) fails rf_engine_create() with RF_ERR_INVALID_ARG and a
 * message in cfg.errbuf; a method or header with CR or LF (or a header that is not one
 * "Name: value" line) gives that request the result invalid_argument without sending it,
 * from rf_submit() and from the pull callback alike, and rf_check_request() says so first.
 *
 *   inject BASE      (BASE: the logging nginx's /id/inject)
 *
 * Good requests go to BASE?k=I with X-Id: good-I (I counts on across both runs); bad ones to
 * BASE-bad?k=I. The test reads the log: the good ones arrived, nothing else did. Prints
 * "ok GOOD BAD".
 */
#include "api.h"

struct probe {
    const char *method;
    const char *hdr[3]; /* the X-Id line is added as the first header */
    int bad;
};

static const struct probe probes[] = {
    {NULL, {NULL}, 0},
    {"GET /id/inject-bad HTTP/1.1\r\nX-Id: injected\r\nX-Pad:", {NULL}, 1},
    {"PO\r\nST", {NULL}, 1},
    {"PO\nST", {NULL}, 1},
    {"PO\rST", {NULL}, 1},
    {"GET ", {NULL}, 1},
    {"", {NULL}, 1},
    {"PUT", {"X-A: 1"}, 0},
    {NULL, {"X-A: 1\r\nX-Id: injected"}, 1},
    {NULL, {"X-A: 1\nX-Id: injected"}, 1},
    {NULL, {"X-A: 1\rX-Id: injected"}, 1},
    {NULL, {"X-A: 1\r\n"}, 1},
    {NULL, {"\r\nX-Id: injected"}, 1},
    {NULL, {"X-Id injected"}, 1},        /* no colon: not a header line */
    {NULL, {": injected"}, 1},           /* no name */
    {NULL, {"X-A: 1", "X-B: 2\r\nX-Id: injected", "X-C: 3"}, 1},
    {"PATCH", {"X-A: 1", "X-B: 2", "X-C: 3"}, 0},
    {"M-SEARCH", {NULL}, 0},
};
#define N_PROBES (sizeof(probes) / sizeof(probes[0]))

static const char *base;
static unsigned long k_first, delivered, good, bad;
static char urls[N_PROBES][512], xids[N_PROBES][64];
static const char *hdrs[N_PROBES][4];

/* Request i of the table as an rf_request; its URL and X-Id carry k = k_first + i. */
static void fill(size_t i, rf_request *req)
{
    const struct probe *p = &probes[i];
    size_t n = 0;

    snprintf(urls[i], sizeof(urls[i]), "%s%s?k=%lu", base, p->bad ? "-bad" : "",
             k_first + i);
    snprintf(xids[i], sizeof(xids[i]), "X-Id: %s-%lu", p->bad ? "bad" : "good", k_first + i);
    hdrs[i][n++] = xids[i];
    for (size_t h = 0; h < 3 && p->hdr[h]; h++)
        hdrs[i][n++] = p->hdr[h];
    req->url = urls[i];
    req->method = p->method;
    req->headers = hdrs[i];
    req->n_headers = n;
    req->userdata = (void *)(uintptr_t)i;
    CHECK_ERR(rf_check_request(req), p->bad ? RF_ERR_INVALID_ARG : RF_OK);
}

static void on_result(void *userp, const rf_result *r)
{
    size_t i = (uintptr_t)r->userdata;

    (void)userp;
    CHECK_INT(r->index, delivered);
    CHECK_INT(i, delivered);
    delivered++;
    if (probes[i].bad) {
        if (r->error != RF_ERR_INVALID_ARG)
            fprintf(stderr, "FAIL: probe %zu sent: %s %d\n", i, rf_strerror(r->error),
                    r->status);
        CHECK_ERR(r->error, RF_ERR_INVALID_ARG);
        CHECK_INT(r->status, 0);
        CHECK(r->ip == NULL); /* never connected */
        bad++;
    } else {
        CHECK_ERR(r->error, RF_OK);
        CHECK_INT(r->status, 204);
        good++;
    }
}

static size_t next_pull;

static int pull(void *userp, rf_request *req)
{
    (void)userp;
    if (next_pull == N_PROBES)
        return 0;
    fill(next_pull++, req);
    return 1;
}

static void user_agents(void)
{
    static const char *const uas[] = {
        "probe\r\nX-Id: injected", "probe\nX-Id: injected", "probe\rX-Id: injected",
        "probe\r\n", "probe\x01", "probe\x7f",
    };

    for (size_t i = 0; i < sizeof(uas) / sizeof(uas[0]); i++) {
        rf_engine *eng = (rf_engine *)&eng; /* must come back NULL */
        char err[256] = "";
        rf_config cfg;

        rf_config_init(&cfg);
        cfg.on_result = on_result;
        cfg.user_agent = uas[i];
        cfg.errbuf = err;
        cfg.errbuf_size = sizeof(err);
        CHECK_ERR(rf_engine_create(&eng, &cfg), RF_ERR_INVALID_ARG);
        CHECK(eng == NULL);
        if (!strstr(err, "user_agent"))
            fprintf(stderr, "FAIL: errbuf \"%s\" does not name user_agent\n", err);
        CHECK(strstr(err, "user_agent") != NULL);
    }
}

int main(int argc, char **argv)
{
    rf_config cfg;
    rf_engine *eng;

    if (argc != 2) {
        fprintf(stderr, "usage: inject BASE\n");
        return 2;
    }
    base = argv[1];
    user_agents();

    /* rf_submit(): the buffers are rewritten by the next fill() of the same slot only. */
    rf_config_init(&cfg);
    cfg.concurrency = 4;
    cfg.on_result = on_result;
    cfg.user_agent = "probe/1";
    eng = make_engine(&cfg);
    for (size_t i = 0; i < N_PROBES; i++) {
        rf_request req = RF_REQUEST_INIT;

        fill(i, &req);
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
    }
    CHECK_ERR(rf_run(eng), RF_OK);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);

    /* The same table from a pull callback. */
    k_first = N_PROBES;
    delivered = 0;
    cfg.pull = pull;
    eng = make_engine(&cfg);
    CHECK_ERR(rf_run(eng), RF_OK);
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
    printf("ok %lu %lu\n", good, bad);
    return 0;
}
