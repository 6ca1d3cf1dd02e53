/*
 * The inventory's files (acme_inventory_file.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "acme_inventory.h"
#include "acme_inventory_file.h"
#include "acme_store.h"
#include "acme_util.h"

#define INVENTORY_FILE_MAX  (1024 * 1024)

int
acme_inventory_add_file(acme_inventory_t *inv, const char *file,
    const char *user)
{
    acme_inventory_cert_t  *c;
    char                   *pem = NULL, e[ACME_ERRLEN], msg[ACME_ERRLEN + 64];
    size_t                  len = 0;
    int                     rc;

    rc = acme_inventory_get(inv, file, &c);
    if (rc < 0) {
        return -1;
    }

    if (rc == 1) {
        rc = acme_store_read(file, &pem, &len, INVENTORY_FILE_MAX, e,
                             sizeof(e));
        if (rc == 1) {
            rc = acme_inventory_set_pem(c, pem, len);
            OPENSSL_cleanse(pem, len);
            free(pem);
            if (rc != 0 && c->error == NULL) {
                return -1;
            }

        } else {
            snprintf(msg, sizeof(msg), "cannot read the certificate: %s",
                     rc == 0 ? "no such file" : e);
            if (acme_inventory_set_error(c, msg) != 0) {
                return -1;
            }
        }
    }

    return acme_inventory_use(c, user);
}
