/*
 * The inventory's files (acme_inventory.h): configuration time only (nginx's
 * master, Apache's parent): it reads the file system.
 */
#ifndef ACME_INVENTORY_FILE_H
#define ACME_INVENTORY_FILE_H

#include "acme_inventory.h"

/*
 * user (a server name, a vhost) presents the certificate in file (the path
 * the server opens, e.g. an absolute ssl_certificate / SSLCertificateFile):
 * the first time a file is seen it is read and parsed (a plain read of the
 * operator's configured file, which the server reads itself, at most 1 MiB,
 * the content cleansed: it may hold the private key), a file that cannot be
 * read or parsed gets an entry with its error; then user is added to the
 * entry's used_by.  0, or -1 out of memory.
 */
int acme_inventory_add_file(acme_inventory_t *inv, const char *file,
    const char *user);

#endif
