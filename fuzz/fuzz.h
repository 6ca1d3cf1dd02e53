/*
 * Shared bits of the libFuzzer targets (fuzz/fuzz_*.c, see fuzz/README.md):
 * a fixed clock, fixed keys, and a NUL-terminated copy of the input.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_T0  1800000000LL      /* 2027-01-15T08:00:00Z */

/* Fixed P-256 keys made for the fuzz targets and their seeds only: the
 * engine's requests must not depend on a fresh key per run. */
#define FUZZ_ACCOUNT_KEY_PEM                                                \
    "-----BEGIN PRIVATE KEY-----\n"                                         \
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0UH//cCF4XTp/8p6\n"    \
    "oc29Cl5sRJ+3C5GPUBT4+M24+FyhRANCAAQpIeyo7miuyAsCcZfSwRy7zqtKQZNA\n"    \
    "xkzdG4Pk2t4dUb/V3/TfTqsmIZ4/AKx4IcAslC82EBT/NUSR/byqmmNG\n"            \
    "-----END PRIVATE KEY-----\n"

#define FUZZ_CERT_KEY_PEM                                                   \
    "-----BEGIN PRIVATE KEY-----\n"                                         \
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZxHvq0kLWC6sLlEU\n"    \
    "512UMOXHN3kIxTS71rVtQDqXzaWhRANCAAREAWr7WD9rl5jhJisvyRFeJ5tSLVJD\n"    \
    "IhlkNxldmgDe9BM2+R5aoRLJu21Kjkjk9RJ2JKy/c0MYEK1MK5Cl+xwC\n"            \
    "-----END PRIVATE KEY-----\n"

/* malloc'd copy of data with a NUL appended (the parsers under test take
 * C strings); aborts on allocation failure. */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL) {
        abort();
    }
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A property the target checks failed: crash so libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond)                                                   \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: FUZZ_ASSERT(%s)\n",         \
                                __FILE__, __LINE__, #cond); abort(); } }    \
    while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
