/*
 * What an order's end writes to the store, the same for both servers, and
 * what the host keeps when the store refuses it.
 *
 * An issued certificate is stored as bundle.pem, then state.json.  A
 * bundle the store refuses (read-only file system, disk full, EACCES) is
 * served from memory all the same and written again later, at the times
 * of acme_sched_unsaved_retry, with no new order; a state.json it refuses
 * is kept in memory and written again the same way.  The host keeps the
 * served bundle, the state, and the write schedule (tries, at) next to
 * its status record.
 *
 * acme_job_store_issued() and acme_job_store_resave() block (disk, fsync):
 * thread only, never on an event loop.  The other functions are pure:
 * they change the caller's records and word the log line, which the host
 * logs at the level returned (no logging here).
 */
#ifndef ACME_JOB_STORE_H
#define ACME_JOB_STORE_H

#include <stddef.h>

#include "acme_cert.h"
#include "acme_job.h"
#include "acme_store.h"

/* Log levels of the lines below: syslog's numbers, which are Apache's
 * APLOG_*; nginx's NGX_LOG_* are one more. */
#define ACME_JOB_LOG_ERR        3
#define ACME_JOB_LOG_WARN       4
#define ACME_JOB_LOG_NOTICE     5

/* What acme_job_store_issued wrote. */
#define ACME_JOB_STORED         0   /* bundle.pem and state.json */
#define ACME_JOB_STATE_UNSAVED  1   /* bundle.pem; state.json refused */
#define ACME_JOB_BUNDLE_UNSAVED 2   /* nothing: bundle.pem refused */

/*
 * Thread only.  The certificate an order issued (key_pem: its key, chain:
 * the CA's chain, leaf first) and st (as acme_job_succeeded left it):
 * the leaf's facts into info (the caller frees them with
 * acme_cert_info_free), bundle.pem (the key followed by the chain), then
 * state.json; the state only once the bundle is stored, so a stored state
 * never describes a bundle that is not there.
 * -1 with err when the chain does not parse (nothing written, info
 * untouched); else ACME_JOB_STORED, or ACME_JOB_STATE_UNSAVED /
 * ACME_JOB_BUNDLE_UNSAVED with err the store's message.
 */
int acme_job_store_issued(const char *root, const char *id,
    const char *key_pem, size_t key_len, const char *chain,
    size_t chain_len, const acme_cert_state_t *st, acme_cert_info_t *info,
    char *err, size_t errlen);

/*
 * Thread only.  Writes again what is served from memory: pem (the bundle
 * as served: key PEM followed by the chain), then st.  0, or -1 with err
 * naming the file the store refused.
 */
int acme_job_store_resave(const char *root, const char *id, const char *pem,
    size_t len, const acme_cert_state_t *st, char *err, size_t errlen);

/*
 * After acme_job_store_issued returned stored (ACME_JOB_*; err its
 * message) at now, for the certificate stored below root as id:
 *   *tries, *at        the write schedule: with something unsaved 1 and
 *                      acme_sched_unsaved_retry(1, now), else 0 and 0
 *                      (*at 0: nothing unsaved)
 *   rec->store_error   "" when all is stored, else "issued certificate
 *                      not stored, served from memory only: <err>" or
 *                      "renewal state not stored, kept in memory: <err>"
 *   msg                the line to log ("" none), at the level returned
 */
int acme_job_issued_saved(int stored, const char *err, const char *root,
    const char *id, long long now, unsigned *tries, long long *at,
    acme_job_status_t *rec, char *msg, size_t msglen);

/*
 * After acme_job_store_resave returned rc (err its message) at now: when
 * stored, *tries and *at 0 and rec->store_error ""; else one more try,
 * the next write at acme_sched_unsaved_retry(*tries, now) and the
 * store_error of an unsaved bundle.  msg the line to log at the level
 * returned.
 */
int acme_job_resaved(int rc, const char *err, const char *root,
    const char *id, long long now, unsigned *tries, long long *at,
    acme_job_status_t *rec, char *msg, size_t msglen);

/*
 * A counted failure (acme_job_failed, acme_job_unfinished) for the log:
 * "<last_error>; <N> consecutive failure(s), next attempt at <RFC 3339>".
 * Returns buf.
 */
const char *acme_job_failure_text(const acme_cert_state_t *st, char *buf,
    size_t len);

#endif
