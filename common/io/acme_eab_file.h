/*
 * External Account Binding: the MAC key read from a file, for the
 * configuration parsers (startup only: it reads the file system).
 */
#ifndef ACME_EAB_FILE_H
#define ACME_EAB_FILE_H

#include <stddef.h>

#include "acme_eab.h"

/* acme_eab_mac_key_decode() on the text of a file (at most 4 KiB; a
 * trailing newline is fine).  Errors name the file, never its content.
 * Free the key with acme_eab_mac_key_free(). */
unsigned char *acme_eab_mac_key_read_file(const char *path, size_t *len,
    char *err, size_t errlen);

/*
 * external_account_key / AcmeExternalAccountBinding: acme_eab_conf() on kid
 * and alg, then the MAC key inline (key_is_file 0) or from the file key
 * (an absolute path).  0 with out filled (kid borrowed; free the key with
 * acme_eab_conf_clear), or -1 with err naming the kid and the file, never
 * the key.
 */
int acme_eab_conf_load(const char *kid, const char *key, int key_is_file,
    const char *alg, acme_eab_conf_t *out, char *err, size_t errlen);

#endif
