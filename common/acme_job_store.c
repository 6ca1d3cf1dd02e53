/* An order's end in the store, and the memory-only fallback: see
 * acme_job_store.h. */
#include <stdio.h>
#include <string.h>

#include "acme_job_store.h"
#include "acme_sched.h"
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

static void
unsaved_error(acme_job_status_t *rec, int stored, const char *err)
{
    snprintf(rec->store_error, sizeof(rec->store_error), "%s: %s",
             stored == ACME_JOB_BUNDLE_UNSAVED
             ? "issued certificate not stored, served from memory only"
             : "renewal state not stored, kept in memory",
             err ? err : "unknown error");
}

int
acme_job_issued_saved(int stored, const char *err, const char *root,
    const char *id, long long now, unsigned *tries, long long *at,
    acme_job_status_t *rec, char *msg, size_t msglen)
{
    msg[0] = '\0';
    if (stored == ACME_JOB_STORED) {
        /* whatever was wrong with the store is not any more */
        *tries = 0;
        *at = 0;
        rec->store_error[0] = '\0';
        return ACME_JOB_LOG_NOTICE;
    }
    *tries = 1;
    *at = acme_sched_unsaved_retry(1, now);
    unsaved_error(rec, stored, err);
    if (stored == ACME_JOB_BUNDLE_UNSAVED) {
        snprintf(msg, msglen, "issued, but cannot store it in %s/certs/%s: "
                 "%s; served from memory only, the write is retried", root,
                 id, err ? err : "unknown error");
        return ACME_JOB_LOG_ERR;
    }
    snprintf(msg, msglen, "cannot store the renewal state: %s; kept in "
             "memory, the write is retried", err ? err : "unknown error");
    return ACME_JOB_LOG_WARN;
}

int
acme_job_resaved(int rc, const char *err, const char *root, const char *id,
    long long now, unsigned *tries, long long *at, acme_job_status_t *rec,
    char *msg, size_t msglen)
{
    char  t[32];

    if (rc == 0) {
        *tries = 0;
        *at = 0;
        rec->store_error[0] = '\0';
        snprintf(msg, msglen, "the certificate served from memory is stored "
                 "now in %s/certs/%s", root, id);
        return ACME_JOB_LOG_NOTICE;
    }
    (*tries)++;
    *at = acme_sched_unsaved_retry(*tries, now);
    unsaved_error(rec, ACME_JOB_BUNDLE_UNSAVED, err);
    snprintf(msg, msglen, "still cannot store the issued certificate in "
             "%s/certs/%s: %s; served from memory only, next write at %s",
             root, id, err ? err : "unknown error",
             acme_time_rfc3339(*at, t, sizeof(t)));
    return ACME_JOB_LOG_WARN;
}

const char *
acme_job_failure_text(const acme_cert_state_t *st, char *buf, size_t len)
{
    char  t[32];

    snprintf(buf, len, "%s; %u consecutive failure(s), next attempt at %s",
             st->last_error, st->failures,
             acme_time_rfc3339(st->next_attempt, t, sizeof(t)));
    return buf;
}
