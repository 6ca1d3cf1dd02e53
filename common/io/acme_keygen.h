/*
 * CPU-heavy work before an order at the lowest scheduling priority: RSA key
 * generation (RSA-4096: from a few hundred ms to seconds) and the CSR's
 * signature run in a short-lived helper thread that lowers its own
 * priority only (SCHED_IDLE on Linux; nice 19 where SCHED_IDLE is refused),
 * so that the server's own threads, an nginx worker's event loop or
 * Apache's request threads, always run first, even on the same CPU
 * (worker_cpu_affinity pins a worker's thread pool to the worker's CPU).
 * The helper is a new thread each time because an unprivileged thread
 * cannot raise its priority again: the caller's thread (a pool thread that
 * may serve "aio threads" next) keeps its own.  The caller waits; threads
 * only, never an event loop.
 */
#ifndef ACME_KEYGEN_H
#define ACME_KEYGEN_H

#include <stddef.h>
#include <openssl/evp.h>

#include "acme_job_prep.h"

/*
 * fn(arg) in a new thread named "acme-keygen", all signals blocked, at
 * SCHED_IDLE (else nice 19); the caller waits for it.  Returns 0; 1 when
 * no thread could be made and fn ran in the caller's thread (at its
 * priority).
 */
int acme_lowprio_run(void (*fn)(void *), void *arg);

/*
 * acme_job_cert_key() (a fresh key of c->cert_key_type; with pem non-NULL
 * its PKCS#8 PEM) and, with csr_b64 non-NULL, the order's CSR for
 * c->names and c->csr_cn signed with that key, base64url DER for
 * acme_order_config_t.csr_b64 (*csr_b64 malloc'd), both at the lowest
 * priority (acme_lowprio_run).  With next non-NULL (zeroed here) and
 * c->key_rollover: the key is the stored next.key when acme_job_next_key
 * says so (next->used; else fresh, next->warn why when it should have
 * been), and next gets the key of the next certificate, made here too
 * (stored by acme_job_store_issued; the caller frees it with
 * acme_job_next_free).  0, or -1 with err (nothing returned).
 */
int acme_job_cert_key_csr(const acme_job_conf_t *c, EVP_PKEY **key,
    char **pem, size_t *pem_len, char **csr_b64, acme_job_next_t *next,
    char *err, size_t errlen);

#endif
