/*
 * step0: rf_step(eng, 0) never waits. Each URL is fetched alone by calling rf_step(eng, 0)
 * every 100 us until it is done, timing every call: the first https request (connect,
 * the whole TLS handshake, certificate check), a plain one, one by host name.
 *
 *   step0 CA_FILE URL...
 *
 * Prints "URL ERROR STATUS" (from the result callback) and "steps N max_us N" per URL,
 * then "max_step_us N".
 */
#include "api.h"

static unsigned long delivered;

static void on_result(void *userp, const rf_result *r)
{
    (void)userp;
    printf("%s %s %d\n", r->url, rf_strerror(r->error), r->status);
    delivered++;
}

int main(int argc, char **argv)
{
    uint64_t worst = 0;
    rf_config cfg;
    rf_engine *eng;

    if (argc < 3) {
        fprintf(stderr, "usage: step0 CA_FILE URL...\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    rf_config_init(&cfg);
    cfg.ca_file = argv[1];
    cfg.timeout_ms = 10000;
    cfg.on_result = on_result;
    eng = make_engine(&cfg);
    for (int i = 2; i < argc; i++) {
        rf_request req = RF_REQUEST_INIT;
        uint64_t most = 0;
        long steps = 0;
        int ret = 1;

        req.url = argv[i];
        CHECK_ERR(rf_submit(eng, &req), RF_OK);
        for (; steps < 200000 && ret > 0; steps++) {
            uint64_t t0 = mono_us(), dt;

            ret = rf_step(eng, 0);
            dt = mono_us() - t0;
            most = dt > most ? dt : most;
            if (ret > 0)
                sleep_us(100);
        }
        CHECK_INT(ret, 0);
        CHECK_INT(delivered, i - 1);
        printf("steps %ld max_us %" PRIu64 "\n", steps, most);
        worst = most > worst ? most : worst;
    }
    CHECK_ERR(rf_engine_destroy(eng), RF_OK);
    printf("max_step_us %" PRIu64 "\n", worst);
    return 0;
}
