/* test_pool.c - fetch/pool.c: free list order, idle reuse by exact origin, LRU eviction. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fetch/fetch.h"
#include "ring/udata.h"

#define NSLOTS 4

/* A worker with fetch connections and pools but no ring: idle connections here hold no
 * socket, so closing one (the eviction) only bumps its generation and frees it. */
static struct worker wk;
static struct rf_engine eng;

static void setup(void)
{
    memset(&wk, 0, sizeof(wk));
    memset(&eng, 0, sizeof(eng));
    wk.eng = &eng;
    wk.nconns = NSLOTS;
    wk.fc = calloc(NSLOTS, sizeof(*wk.fc));
    if (!wk.fc)
        abort();
    for (uint32_t i = 0; i < NSLOTS; i++) {
        conn_init(&wk.fc[i].c, i);
        wk.fc[i].wk = &wk;
    }
    dq_init(&wk.deadlines, 1000000);
    dq_init(&wk.backoffs, 50000);
    CHECK_INT(pool_init(&wk), 0);
}

static void teardown(void)
{
    pool_free(&wk);
    free(wk.fc);
}

struct origin {
    uint8_t scheme;
    const char *host;
    uint16_t port;
};

static uint32_t hash_of(const struct origin *o)
{
    return origin_hash(o->scheme, o->host, (uint32_t)strlen(o->host), o->port);
}

static struct fconn *take(const struct origin *o)
{
    return pool_take(&wk, o->scheme, o->host, (uint32_t)strlen(o->host), o->port, hash_of(o));
}

/* What fetch_start() and the response path do to a connection, minus the socket. */
static void run_job(struct fconn *c, const struct origin *o)
{
    if (c->state != FC_IDLE) {
        c->scheme = o->scheme;
        c->port = o->port;
        c->host_len = (uint8_t)strlen(o->host);
        memcpy(c->host, o->host, c->host_len);
        c->origin_hash = hash_of(o);
    }
    fconn_set_state(&wk, c, FC_BUSY);
}

static size_t list_len(const struct list *l)
{
    size_t n = 0;

    for (const struct list *p = l->next; p != l; p = p->next)
        n++;
    return n;
}

static const struct origin A = {RF_SCHEME_HTTP, "a.example", 80};
static const struct origin B = {RF_SCHEME_HTTP, "b.example", 80};
static const struct origin C = {RF_SCHEME_HTTP, "c.example", 80};
static const struct origin D = {RF_SCHEME_HTTP, "d.example", 80};
static const struct origin E = {RF_SCHEME_HTTP, "e.example", 80};

static void test_hash(void)
{
    const struct origin a_port = {RF_SCHEME_HTTP, "a.example", 8080};
    const struct origin a_tls = {RF_SCHEME_HTTPS, "a.example", 80};
    const struct origin a_short = {RF_SCHEME_HTTP, "a.exampl", 80};
    /* Ports whose low and high bytes are swapped must not collide trivially. */
    const struct origin p1 = {RF_SCHEME_HTTP, "h", 0x0150};
    const struct origin p2 = {RF_SCHEME_HTTP, "h", 0x5001};

    CHECK_UINT(hash_of(&A), hash_of(&A));
    CHECK(hash_of(&A) != hash_of(&a_port));
    CHECK(hash_of(&A) != hash_of(&a_tls));
    CHECK(hash_of(&A) != hash_of(&a_short));
    CHECK(hash_of(&A) != hash_of(&B));
    CHECK(hash_of(&p1) != hash_of(&p2));
    /* FNV-1a: a pure function of its input bytes. */
    CHECK_UINT(origin_hash(RF_SCHEME_HTTP, "a.exampleXYZ", 9, 80), hash_of(&A));
}

static void test_free_list(void)
{
    struct fconn *got[NSLOTS];

    setup();
    CHECK_UINT(list_len(&wk.free_list), NSLOTS);
    CHECK(list_empty(&wk.idle_lru));
    /* Low slots first. */
    for (uint32_t i = 0; i < NSLOTS; i++) {
        got[i] = take(&A);
        if (!CHECK(got[i] != NULL))
            goto out;
        CHECK_UINT(got[i]->c.idx, i);
        run_job(got[i], &A);
    }
    CHECK_UINT(wk.busy, NSLOTS);
    CHECK(list_empty(&wk.free_list));
    /* Every slot has a job: nothing to give. */
    CHECK(take(&A) == NULL);
    CHECK(take(&B) == NULL);
    /* A freed slot goes to the back of the free list. */
    fconn_set_state(&wk, got[2], FC_FREE);
    fconn_set_state(&wk, got[0], FC_FREE);
    CHECK_UINT(wk.busy, NSLOTS - 2);
    CHECK(take(&B) == got[2]);
    CHECK(take(&B) == got[0]);
    CHECK(take(&B) == NULL);
out:
    teardown();
}

static void test_idle_by_origin(void)
{
    const struct origin a_port = {RF_SCHEME_HTTP, "a.example", 8080};
    const struct origin a_tls = {RF_SCHEME_HTTPS, "a.example", 80};
    const struct origin a_sub = {RF_SCHEME_HTTP, "a.exampl", 80};
    struct fconn *ca, *cb, *c;
    uint32_t gen;

    setup();
    ca = take(&A);
    run_job(ca, &A);
    cb = take(&B);
    run_job(cb, &B);
    fconn_set_state(&wk, ca, FC_IDLE);
    fconn_set_state(&wk, cb, FC_IDLE);
    CHECK_UINT(wk.busy, 0);
    CHECK_UINT(list_len(&wk.idle_lru), 2);
    CHECK_UINT(list_len(&wk.free_list), NSLOTS - 2);
    gen = ca->c.gen;

    /* Same origin: the idle connection itself, still FC_IDLE, out of both idle lists. */
    c = take(&A);
    CHECK(c == ca);
    CHECK_INT(c->state, FC_IDLE);
    CHECK_UINT(c->c.gen, gen);
    CHECK_UINT(list_len(&wk.idle_lru), 1);
    CHECK(!list_linked(&c->pool));
    CHECK(!list_linked(&c->lru));
    run_job(c, &A);
    fconn_set_state(&wk, c, FC_IDLE);

    /* Another port, scheme, or a host that is a prefix: a fresh slot, never ca. */
    c = take(&a_port);
    CHECK(c != ca && c != cb);
    CHECK_INT(c->state, FC_FREE);
    run_job(c, &a_port);
    c = take(&a_tls);
    CHECK(c != ca && c != cb);
    run_job(c, &a_tls);
    CHECK_UINT(list_len(&wk.free_list), 0);
    CHECK_UINT(list_len(&wk.idle_lru), 2);
    /* No free slot now: a prefix host must evict, not reuse, and the LRU one (cb, idle
     * longest since ca was reused) goes. */
    c = take(&a_sub);
    CHECK(c == cb);
    CHECK_INT(c->state, FC_FREE);
    CHECK_UINT(list_len(&wk.idle_lru), 1);
    run_job(c, &a_sub);

    /* ca is still there for its own origin. */
    CHECK(take(&A) == ca);
    run_job(ca, &A);
    CHECK(take(&A) == NULL);
    teardown();
}

/* Origins with the same hash share a bucket: only the exact origin matches, whichever
 * one part (scheme, port, host bytes, host length) differs. */
static void test_bucket_collision(void)
{
    static const struct origin near[] = {
        {RF_SCHEME_HTTPS, "a.example", 80},
        {RF_SCHEME_HTTP, "a.example", 81},
        {RF_SCHEME_HTTP, "b.example", 80},
        {RF_SCHEME_HTTP, "a.exampl", 80},
        {RF_SCHEME_HTTP, "a.examplee", 80},
    };
    struct fconn *ca, *c;
    uint32_t h = hash_of(&A);

    setup();
    ca = take(&A);
    run_job(ca, &A);
    fconn_set_state(&wk, ca, FC_IDLE);
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        const struct origin *o = &near[i];

        c = pool_take(&wk, o->scheme, o->host, (uint32_t)strlen(o->host), o->port, h);
        CHECK(c != ca);
        if (c && c != ca) {
            CHECK_INT(c->state, FC_FREE);
            pool_put_free(&wk, c); /* back, for the next one */
        }
    }
    /* Same bucket, another hash: not a match either, even for A's bytes. */
    c = pool_take(&wk, A.scheme, A.host, (uint32_t)strlen(A.host), A.port,
                  h + wk.bucket_mask + 1);
    CHECK(c != ca);
    CHECK(take(&A) == ca);
    teardown();
}

/* Eviction takes the idle connection unused longest; reuse moves one to the young end. */
static void test_lru(void)
{
    struct fconn *ca, *cb, *cc, *cd, *c;
    uint32_t gen;

    setup();
    ca = take(&A);
    run_job(ca, &A);
    cb = take(&B);
    run_job(cb, &B);
    cc = take(&C);
    run_job(cc, &C);
    cd = take(&D);
    run_job(cd, &D);
    fconn_set_state(&wk, ca, FC_IDLE);
    fconn_set_state(&wk, cb, FC_IDLE);
    fconn_set_state(&wk, cc, FC_IDLE);
    fconn_set_state(&wk, cd, FC_IDLE);
    CHECK_UINT(list_len(&wk.idle_lru), 4);
    CHECK(list_empty(&wk.free_list));

    /* Reuse a, then return it: order is now b, c, d, a. */
    CHECK(take(&A) == ca);
    run_job(ca, &A);
    fconn_set_state(&wk, ca, FC_IDLE);

    gen = cb->c.gen;
    c = take(&E);
    CHECK(c == cb);
    CHECK_UINT(cb->c.gen, (gen + 1) & UD_GEN_MASK); /* in-flight completions become stale */
    CHECK_INT(cb->state, FC_FREE);
    CHECK(!list_linked(&cb->lru));
    run_job(c, &E);
    /* b's origin is gone: another eviction (c), not b's slot. */
    c = take(&B);
    CHECK(c == cc);
    run_job(c, &B);
    /* A freed slot is preferred over evicting an idle one. */
    fconn_set_state(&wk, cb, FC_FREE);
    c = take(&C);
    CHECK(c == cb);
    run_job(c, &C);
    CHECK_UINT(list_len(&wk.idle_lru), 2);
    /* d then a. */
    CHECK(take(&E) == cd);
    run_job(cd, &E);
    CHECK(take(&E) == ca);
    run_job(ca, &E);
    CHECK(take(&E) == NULL);
    CHECK_UINT(wk.busy, NSLOTS);

    /* An idle connection that is closed (server went away) leaves both idle lists. */
    fconn_set_state(&wk, cc, FC_IDLE);
    fconn_set_state(&wk, cd, FC_IDLE);
    fconn_close(&wk, cc);
    CHECK_UINT(list_len(&wk.idle_lru), 1);
    CHECK(take(&B) == cc); /* from the free list, not a stale bucket entry */
    CHECK_INT(cc->state, FC_FREE);
    teardown();
}

int main(void)
{
    test_hash();
    test_free_list();
    test_idle_by_origin();
    test_bucket_collision();
    test_lru();
    return check_finish("test_pool");
}
