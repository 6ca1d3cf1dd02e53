/*
 * What an order's end writes to the store, the same for both servers:
 * an issued certificate as bundle.pem, then state.json; a bundle served
 * from memory (the store refused it) written again.  Both block (disk,
 * fsync): thread only, never on an event loop.  What their result changes
 * for the host (write schedule, status, log line) is acme_job.h's
 * acme_job_issued_saved / acme_job_resaved, pure.
 */
#ifndef ACME_JOB_STORE_H
#define ACME_JOB_STORE_H

#include <stddef.h>

#include "acme_cert.h"
#include "acme_job.h"
#include "acme_job_prep.h"
#include "acme_store.h"

/*
 * Thread only.  The certificate an order issued (key_pem: its key, chain:
 * the CA's chain, leaf first) and st (as acme_job_succeeded left it):
 * the leaf's facts into info (the caller frees them with
 * acme_cert_info_free), bundle.pem (the key followed by the chain), then
 * state.json; the state only once the bundle is stored, so a stored state
 * never describes a bundle that is not there.  next (key_rollover; NULL or
 * no pem: none): written as next.key right after the bundle (never when
 * the bundle is not stored: next.key stays), and when it cannot be
 * (next->warn says so), next->pin becomes what next.key still holds: the
 * key certified now when next->used, else none.  root NULL: no next key (next->pin "").
 * -1 with err when the chain does not parse (nothing written, info
 * untouched); else ACME_JOB_STORED, or ACME_JOB_STATE_UNSAVED /
 * ACME_JOB_BUNDLE_UNSAVED with err the store's message.  root NULL (an
 * issuer without a store, "state_path off"): the facts only, STORED.
 */
int acme_job_store_issued(const char *root, const char *id,
    const char *key_pem, size_t key_len, const char *chain,
    size_t chain_len, const acme_cert_state_t *st, acme_job_next_t *next,
    acme_cert_info_t *info, char *err, size_t errlen);

/*
 * Startup and reload (nginx's master, Apache's parent): the SPKI pin of the
 * next.key in an opened certs/<id> directory into pin (ACME_SPKI_PIN_LEN),
 * "" when there is none or it is no usable key of type kt (the next order
 * then makes a fresh key, acme_job_next_key).  The key is cleansed.
 */
void acme_job_store_next_pin(const acme_store_dir_t *cert_dir,
    acme_key_type_t kt, char *pin, size_t len);
/* The same by store root and id (a thread of Apache's child). */
void acme_job_store_next_pin_id(const char *root, const char *id,
    acme_key_type_t kt, char *pin, size_t len);

/*
 * Thread only.  Writes again what is served from memory: pem (the bundle
 * as served: key PEM followed by the chain), then st.  0, or -1 with err
 * naming the file the store refused.  root NULL: nothing, 0.
 */
int acme_job_store_resave(const char *root, const char *id, const char *pem,
    size_t len, const acme_cert_state_t *st, char *err, size_t errlen);

/*
 * Startup (nginx's master, Apache's parent): the stored bundle to serve
 * from an opened certs/<id> directory.  bundle.pem (*pem, *len), unless
 * its certificate is not to be served yet by acme_job_activate_at (skew,
 * now) while previous.pem (see acme_store.h) holds a usable certificate
 * that is still valid: then *pem is previous.pem, *next bundle.pem, *at
 * the time it is to be served and *next_info (unless NULL; the caller
 * frees it) its facts.  *next NULL otherwise.  Returns as
 * acme_store_load_bundle_at (1, 0 missing, -1 with err); the caller frees
 * both (acme_bundle_free) and checks *pem as any stored bundle.
 */
int acme_job_store_load_served(const acme_store_dir_t *cert_dir,
    long long now, long long skew, char **pem, size_t *len, char **next,
    size_t *next_len, long long *at, acme_cert_info_t *next_info, char *err,
    size_t errlen);

/*
 * Startup (nginx's master, Apache's parent), for a certificate with no
 * stored bundle because its id (acme_store_cert_id: "<first name>_<key
 * type>") changed with the configuration: its key type changed
 * (key=ecdsa:256 to key=ecdsa:384) or its first name did (names "a b" to
 * "b a2", or a name added in front).  The stored certificate of the id it
 * replaces is served until the new one is installed (acme_job_due orders
 * at once: its key is of another type, or its names are not the
 * configured ones).  The candidates are every other id of the store
 * (<root>/certs/<id>) that in_use(id, ctx) does not claim: a certificate
 * another configured certificate of the store owns is never taken.  Of
 * those whose bundle is usable (key and leaf match), whose leaf has one of
 * names among its names (case ignored) and is not expired at now, taken
 * is one of key type kt if any, then the one with the latest notAfter.
 * id must end with kt's suffix, before "@<issuer>" if any (else 0).  root is opened as
 * acme_store_dir_open_root (uid, gid; never created), every entry below
 * it through descriptors.  1 with *pem, *len (acme_bundle_free), *from
 * (its id, malloc'd) and *why (unless why is NULL; static): "key type
 * changed" when its key type is not kt, else "names changed" (what
 * acme_job_change will say), or "first name changed" when its names are
 * names in another order (nothing is due: it is renewed under the new id
 * in its window); 0 none (an unusable candidate is skipped).
 */
int acme_job_store_load_replaced(const char *root, uid_t uid, gid_t gid,
    const char *id, acme_key_type_t kt, const char *const *names,
    size_t n_names, int (*in_use)(const char *id, void *ctx), void *ctx,
    long long now, char **pem, size_t *len, char **from, const char **why);

/*
 * Configuration time (nginx's configuration, Apache's parent): the bridge
 * certificate's facts (acme_job.h) from the file path names, which may
 * also hold its private key (cleansed after reading).  "data:<PEM>"
 * (nginx) is the PEM itself.  0, or -1 with err (b then names path).
 */
int acme_job_bridge_load(acme_job_bridge_t *b, const char *path, char *err,
    size_t errlen);

#endif
