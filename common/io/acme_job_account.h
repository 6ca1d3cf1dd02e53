/*
 * Before an order (acme_job_prep.h): the issuer's account key and stored
 * account URL.  Threads only (disk, fsync, key generation), never an
 * event loop.
 */
#ifndef ACME_JOB_ACCOUNT_H
#define ACME_JOB_ACCOUNT_H

#include <stddef.h>
#include <openssl/evp.h>

#include "acme_job_prep.h"

/*
 * The account key: c->account_key_pem when set (a configured key file,
 * never written), else the issuer's store's (loaded, or generated and
 * stored exclusively, so concurrent first orders share one key) and the account
 * URL account.json records for that key and directory (*url malloc'd, NULL
 * when none).  An unreadable account.json is no failure: *url stays NULL
 * (the engine then finds the account by its key) and warn (may be NULL)
 * says why; else warn is "".  0, or -1 with err ("account key: ...").
 * With no store (c->state_dir NULL, "state_path off") only
 * c->account_key_pem is used (the host keeps a key in memory) and *url
 * stays NULL.
 */
int acme_job_account_key(const acme_job_conf_t *c, EVP_PKEY **key,
    char **url, char *warn, size_t warnlen, char *err, size_t errlen);

#endif
