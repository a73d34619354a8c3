/* hash.h - FNV-1a, the one hash of names and origins for the engine's hash tables. */
#ifndef RF_HASH_H
#define RF_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_INIT 2166136261u

/* Continue hash h over n bytes (start with FNV1A_INIT). */
static inline uint32_t fnv1a(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

#endif
