/*
 * External Account Binding: the MAC key read from a file, for the
 * configuration parsers (startup only: it reads the file system).
 */
#ifndef ACME_EAB_FILE_H
#define ACME_EAB_FILE_H

#include <stddef.h>

/* acme_eab_mac_key_decode() on the text of a file (at most 4 KiB; a
 * trailing newline is fine).  Errors name the file, never its content.
 * Free the key with acme_eab_mac_key_free(). */
unsigned char *acme_eab_mac_key_read_file(const char *path, size_t *len,
    char *err, size_t errlen);

#endif
