/*
 * fuzz.h - the libFuzzer entry point every tests/fuzz/fuzz_*.c defines.
 *
 * Each target is built twice: by `make fuzz` with clang and libFuzzer, and
 * by `make check` with the normal compiler and replay.c's main(), which
 * feeds it the checked-in corpus so every seed stays a regression test.
 */
#ifndef WR_TESTS_FUZZ_H
#define WR_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
