/* fuzz.h - what every libFuzzer target shares: the entry point and a check that traps. */
#ifndef RF_FUZZ_H
#define RF_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* A broken invariant is a crash, so libFuzzer saves the input that broke it. */
#define ENSURE(cond)                                                                          \
    do {                                                                                      \
        if (!(cond))                                                                          \
            __builtin_trap();                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
