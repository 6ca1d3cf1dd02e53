/* An order's end in the store (thread only): see acme_job_store.h. */
#include <string.h>

#include "acme_job_store.h"
#include "acme_util.h"

int
acme_job_store_issued(const char *root, const char *id, const char *key_pem,
    size_t key_len, const char *chain, size_t chain_len,
    const acme_cert_state_t *st, acme_cert_info_t *info, char *err,
    size_t errlen)
{
    if (acme_cert_info_from_pem(chain, chain_len, info, err, errlen) != 0) {
        return -1;
    }
    if (acme_store_save_bundle(root, id, key_pem, key_len, chain, chain_len,
                               err, errlen) != 0)
    {
        if (err != NULL && errlen && err[0] == '\0') {
            acme_err(err, errlen, "unknown error");
        }
        return ACME_JOB_BUNDLE_UNSAVED;
    }
    if (acme_store_save_state(root, id, st, err, errlen) != 0) {
        if (err != NULL && errlen && err[0] == '\0') {
            acme_err(err, errlen, "unknown error");
        }
        return ACME_JOB_STATE_UNSAVED;
    }
    return ACME_JOB_STORED;
}

int
acme_job_store_resave(const char *root, const char *id, const char *pem,
    size_t len, const acme_cert_state_t *st, char *err, size_t errlen)
{
    if (acme_store_save_bundle_pem(root, id, pem, len, err, errlen) != 0
        || acme_store_save_state(root, id, st, err, errlen) != 0)
    {
        return -1;
    }
    return 0;
}
