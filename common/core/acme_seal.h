/*
 * Private keys kept in a shared store are sealed: AES-256-GCM (NIST SP
 * 800-38D) under a 32-byte key that each node reads from a file of its own
 * (acme_store etcd ... key_file=) and that never enters the store.
 *
 * A sealed value is text:
 *
 *     "acme-seal-v1:" base64url(nonce[12] || ciphertext || tag[16])
 *
 * with a fresh random 96-bit nonce per seal, and the value's name (the
 * store key it is written under) as additional authenticated data: a
 * sealed key copied under another certificate's name does not open.
 */
#ifndef ACME_SEAL_H
#define ACME_SEAL_H

#include <stddef.h>

#define ACME_SEAL_KEY_LEN  32
#define ACME_SEAL_PREFIX   "acme-seal-v1:"

/*
 * Seals len bytes of plain under key, bound to name.  Returns the sealed
 * text (malloc'd, NUL-terminated), or NULL with err.
 */
char *acme_seal(const unsigned char key[ACME_SEAL_KEY_LEN], const char *name,
    const void *plain, size_t len, char *err, size_t errlen);

/*
 * Opens sealed (slen bytes) bound to name: the plain bytes (malloc'd, *len
 * bytes plus a NUL; the caller cleanses and frees them), or NULL with err:
 * not sealed text, another key, another name, or altered.
 */
unsigned char *acme_seal_open(const unsigned char key[ACME_SEAL_KEY_LEN],
    const char *name, const char *sealed, size_t slen, size_t *len,
    char *err, size_t errlen);

/* 1 when data starts as a sealed value does, else 0. */
int acme_seal_is_sealed(const void *data, size_t len);

/*
 * The key from the text of a key file: 32 bytes written as base64 (as
 * `openssl rand -base64 32` prints them; surrounding whitespace ignored),
 * or the 32 raw bytes.  0 with key filled, or -1 with err (which never
 * shows the file's content).
 */
int acme_seal_key_parse(const void *text, size_t len,
    unsigned char key[ACME_SEAL_KEY_LEN], char *err, size_t errlen);

#endif
