/*
 * Before an order: the account key and URL from the issuer's store
 * (acme_job_account.h).  Threads only: disk, fsync, key generation.
 */
#include <stdlib.h>

#include "acme_job_account.h"
#include "acme_store.h"
#include "acme_util.h"


int
acme_job_account_key(const acme_job_conf_t *c, EVP_PKEY **key, char **url,
    char *warn, size_t warnlen, char *err, size_t errlen)
{
    char  why[ACME_ERRLEN];

    *key = NULL;
    *url = NULL;
    if (warn != NULL && warnlen > 0) {
        warn[0] = '\0';
    }

    if (c->account_key_pem != NULL) {
        *key = acme_key_from_pem(c->account_key_pem, c->account_key_pem_len);
        if (*key == NULL) {
            return acme_err(err, errlen, "account key: the configured key "
                            "does not parse");
        }

        goto url;
    }

    if (c->state_dir == NULL) {
        return acme_err(err, errlen, "account key: no store and no key in "
                        "memory");
    }

    why[0] = '\0';
    if (acme_store_account_key(c->state_dir, c->directory_url,
                               c->account_key_type, key, NULL,
                               why, sizeof(why))
        != 0)
    {
        *key = NULL;
        return acme_err(err, errlen, "account key: %s",
                        why[0] ? why : "unknown error");
    }

url:

    if (c->state_dir == NULL) {
        return 0;           /* no store: new-account finds the account */
    }

    why[0] = '\0';
    if (acme_store_load_account(c->state_dir, c->directory_url, *key, url,
                                why, sizeof(why))
        == -1)
    {
        /* a broken account.json only costs a new-account lookup */
        free(*url);
        *url = NULL;
        acme_err(warn, warnlen, "ignoring the stored account: %s",
                 why[0] ? why : "unknown error");
    }

    return 0;
}
