/*
 * aesgcm_speed.c - AES-128-GCM throughput of the wolfSSL it is linked with: 16 KiB records
 * (a full TLS record) encrypted for about a second, as `openssl speed -evp aes-128-gcm`
 * does. Prints "MB/s". Built and run by scripts/bench-crypto.sh.
 */
#include <stdio.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    static unsigned char in[16384], out[16384];
    unsigned char key[16] = {1}, iv[12] = {2}, tag[16], aad[13] = {3};
    double t0, t;
    long n = 0;
    Aes aes;

    if (wc_AesInit(&aes, NULL, -2) || wc_AesGcmSetKey(&aes, key, sizeof(key)))
        return 1;
    t0 = now();
    do {
        for (int i = 0; i < 64; i++, n++) {
            iv[11] = (unsigned char)n; /* a fresh nonce per record, as TLS uses */
            if (wc_AesGcmEncrypt(&aes, out, in, sizeof(in), iv, sizeof(iv), tag, sizeof(tag),
                                 aad, sizeof(aad)))
                return 1;
        }
        t = now() - t0;
    } while (t < 1.0);
    printf("%.0f\n", (double)n * sizeof(in) / t / 1e6);
    wc_AesFree(&aes);
    return 0;
}
