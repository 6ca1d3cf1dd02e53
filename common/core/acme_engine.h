/*
 * The sans-I/O ACME protocol engine (RFC 8555) for one order.
 *
 * The host creates an engine for one certificate and loops:
 *
 *     for (;;) {
 *         acme_engine_next_ms(e, now_ms, &act);
 *         switch (act.kind) {
 *         case ACME_ACT_HTTP:      send act.request, then
 *                                  acme_engine_on_response(e, &resp) or
 *                                  acme_engine_on_transport_error(e, msg);
 *         case ACME_ACT_SLEEP:     call next again at or after act.wake_at_ms;
 *         case ACME_ACT_PUBLISH:   make act.token -> act.key_authz answerable,
 *                                  or acme_engine_publish_failed(e, msg);
 *         case ACME_ACT_UNPUBLISH: stop answering act.token (act.key_authz
 *                                  is given again: a dns-01 TXT value);
 *         case ACME_ACT_ACCOUNT:   persist act.account_url (with the key);
 *         case ACME_ACT_REVOKED:   the certificate given to revoke is revoked
 *                                  (acme_order_config_t.revoke_der);
 *         case ACME_ACT_DONE:      acme_engine_certificate() is the chain;
 *         case ACME_ACT_ERROR:     acme_engine_error(), acme_engine_retry_after().
 *         }
 *     }
 *
 * Polls (an authorization after its challenge response, the order after
 * finalize) follow the CA's Retry-After (1 to 60 s); without one they
 * start 50 ms after the answer and double up to 5 s.  Every challenge of
 * the order is published and answered before the first poll, so the CA
 * validates them together; a finalize answered "valid" goes straight to
 * the download.  The deadline bounds every wait.
 *
 * An answer of unknown effect at the CA (HTTP 5xx, a transport error, a
 * 2xx that does not parse) to a step of the order does not fail it: after
 * the Retry-After (1 to 60 s) or a backoff of 1, 2, 4, ... s the engine
 * sends newOrder again (no order known yet), repeats a certificate
 * download, or reads the order back (POST-as-GET, RFC 8555 section 7.1.3)
 * and goes on from its state: valid -> download, processing -> poll,
 * ready -> finalize, pending -> authorizations, invalid -> ERROR.  At most
 * max_unclear such retries per order; then the answer fails the order as
 * any error does.  4xx problems are errors at once (badNonce excepted).
 *
 * With preferred_chain set and a default chain whose top certificate is
 * not issued by that name, the alternates the certificate URL names
 * (Link: <url>;rel="alternate", RFC 8555 section 7.4.2; at most
 * ACME_ENGINE_ALT_CHAINS) are fetched in order, POST-as-GET, until one is;
 * none (or a failure of any of them) leaves the default chain.
 *
 * DONE comes only for a chain acme_cert_check_issued() accepts (the leaf has
 * the CSR's key and every ordered identifier, every block parses, it is
 * within its validity); anything else is an ERROR naming the certificate
 * URL, so the host keeps its previous certificate.
 *
 * It never sleeps, touches sockets or the disk, and never generates keys:
 * both keys are given to it.  After DONE or ERROR every published challenge
 * has been unpublished (the engine emits UNPUBLISH before finishing).  The
 * engine is the one list of what is published: a host that gives up on the
 * order calls acme_engine_abort() and runs the UNPUBLISH actions that follow
 * until ERROR; it keeps no list of its own.
 */
#ifndef ACME_ENGINE_H
#define ACME_ENGINE_H

#include <stddef.h>
#include <openssl/evp.h>
#include "acme_http.h"

typedef struct acme_engine_s acme_engine_t;

#define ACME_ENGINE_ALT_CHAINS  8   /* alternate chains looked at, at most */

typedef struct {
    const char          *directory_url;
    EVP_PKEY            *account_key;       /* borrowed */
    const char          *account_url;       /* from the store, for this very
                                               key; NULL if none.  Refused by
                                               the CA (accountDoesNotExist,
                                               unauthorized, malformed "JWS
                                               verification"), it is looked up
                                               again by key once per order */
    int                  account_unsaved;   /* account_url is not in the
                                               store (it refused the write):
                                               emitted as ACME_ACT_ACCOUNT
                                               again before the order, so
                                               the host writes it again */
    const char *const   *contacts;          /* "mailto:..." */
    size_t               n_contacts;
    int                  terms_agreed;
    const char *const   *names;             /* identifiers: DNS names or IP literals */
    size_t               n_names;
    EVP_PKEY            *cert_key;          /* borrowed; the CSR's key */
    const char          *challenge_type;    /* "http-01" (default when NULL) */
    long long            deadline;          /* unix time the whole order must end by; 0 = now + 600 */
    int                  max_bad_nonce;     /* retries of one request on badNonce; 0 = 10 */
    int                  max_unclear;       /* retries after answers of unknown
                                               effect, per order; 0 = 5 */

    /* External Account Binding (RFC 8555 section 7.3.4), used when a new
     * account is created; eab_kid NULL = none.  The key is borrowed. */
    const char          *eab_kid;
    const unsigned char *eab_key;
    size_t               eab_key_len;
    const char          *eab_alg;           /* "HS256" (NULL), "HS384", "HS512" */

    int                  csr_cn;            /* the CSR's subject CN is
                                               names[0] (nginx-acme's
                                               common_name_in_csr); 0: an
                                               empty subject */

    const char          *csr_b64;           /* the CSR (base64url DER) the
                                               host built ahead for names,
                                               csr_cn and cert_key, off the
                                               event loop
                                               (acme_job_cert_key_csr); NULL:
                                               built when finalizing (an
                                               RSA-4096 signature: ms) */

    const char          *preferred_chain;   /* nginx-acme's preferred_chain:
                                               the issuer CN of the chain's
                                               top certificate (exact
                                               bytes); NULL = the default
                                               chain, no alternate looked at */

    /* ACME profiles (draft-ietf-acme-profiles; nginx-acme's "profile NAME
     * [require]"): when the directory's meta.profiles lists profile,
     * newOrder carries "profile": NAME.  When it does not (or the
     * directory has no meta.profiles): without profile_require the order
     * goes on without a profile and the engine gives a warning once (a
     * SLEEP of 1 ms with note); with profile_require the order
     * fails ("new-order: profile ... is required ...") before any
     * newOrder.  NULL = no profile. */
    const char          *profile;
    int                  profile_require;

    /* Revoke first (RFC 8555 section 7.6): with revoke_der set, once the
     * account is known the engine POSTs revokeCert (signed with the
     * account key, kid) with this certificate (DER, borrowed) and
     * revoke_reason (RFC 5280 code; < 0: none sent), emits
     * ACME_ACT_REVOKED, then orders as usual.  A CA answering
     * "alreadyRevoked" counts as revoked; any other refusal fails the
     * whole order ("revoke: ...") before anything is ordered. */
    const unsigned char *revoke_der;
    size_t               revoke_der_len;
    int                  revoke_reason;

    /* ARI (RFC 9773, acme_ari.h).  ari_id: the ARI identifier of the
     * certificate this order replaces (acme_ari_cert_id of the served
     * one; NULL: none); when the directory has "renewalInfo", newOrder
     * carries "replaces": ari_id.  A CA refusing it (alreadyReplaced, or
     * a problem naming "replaces": acme_ari_replaces_refused) gets the
     * newOrder again without it, once, with a warning (a SLEEP of 1 ms
     * with note).
     *
     * ari_only: no order at all; the engine reads the directory and GETs
     * (unauthenticated, section 4.2) renewalInfo "/" ari_id, then DONE
     * (acme_engine_ari: the answer; acme_engine_certificate NULL), or
     * ERROR for an answer other than 2xx or a transport error (no
     * retries: the host's next poll is the retry).  A directory without
     * renewalInfo is DONE with acme_engine_ari 0.  No key, account or
     * name is needed. */
    const char          *ari_id;
    int                  ari_only;
} acme_order_config_t;

typedef enum {
    ACME_ACT_HTTP = 1,
    ACME_ACT_SLEEP,
    ACME_ACT_PUBLISH,
    ACME_ACT_UNPUBLISH,
    ACME_ACT_ACCOUNT,
    ACME_ACT_DONE,
    ACME_ACT_ERROR,
    ACME_ACT_REVOKED            /* the certificate of revoke_der is revoked
                                   at the CA; call next again */
} acme_action_kind_t;

typedef struct {
    acme_action_kind_t   kind;
    acme_http_request_t  request;       /* HTTP */
    long long            wake_at;       /* SLEEP: unix time, s (rounded up) */
    long long            wake_at_ms;    /* SLEEP: unix time, ms */
    const char          *challenge_type;/* PUBLISH / UNPUBLISH: "http-01" */
    const char          *identifier;    /* PUBLISH / UNPUBLISH */
    const char          *token;         /* PUBLISH / UNPUBLISH */
    const char          *key_authz;     /* PUBLISH / UNPUBLISH */
    const char          *account_url;   /* ACCOUNT */
    const char          *account_refused;/* ACCOUNT: why the CA refused the
                                           host's URL (then looked up again
                                           by key), or NULL */
    const char          *note;          /* SLEEP: once per unclear answer
                                           and once for a profile the CA
                                           does not offer (then waking 1 ms
                                           later),
                                           what happened and what follows
                                           ("finalize: HTTP 503, the CA may
                                           have done it; reading the order
                                           back in 3000 ms (1 of at most
                                           5)"), for a warning in the log;
                                           else NULL */
} acme_action_t;

/* Copies what it needs from cfg (keys are up-ref'd). NULL on error. */
acme_engine_t *acme_engine_new(const acme_order_config_t *cfg, char *err, size_t errlen);
void acme_engine_free(acme_engine_t *e);

/* The next thing the host must do, now_ms the unix time in ms.  Pointers
 * in *act stay valid until the next call into the engine. */
void acme_engine_next_ms(acme_engine_t *e, long long now_ms, acme_action_t *act);

/* The same with the time in whole seconds (sub-second waits become 1 s). */
void acme_engine_next(acme_engine_t *e, long long now, acme_action_t *act);

/* Answers to an ACME_ACT_HTTP. */
void acme_engine_on_response(acme_engine_t *e, const acme_http_response_t *resp);
void acme_engine_on_transport_error(acme_engine_t *e, const char *msg);

/*
 * The challenge of the last ACME_ACT_PUBLISH could not be published (a DNS
 * update refused, a hook that failed, no room for a token).  The order
 * fails with msg as its error (msg names the step; retry_after 0); the
 * next calls emit an UNPUBLISH for every published challenge, this one
 * included (a half-done publication is undone all the same), then ERROR.
 * Ignored when the last action was no PUBLISH or the order already ended.
 */
void acme_engine_publish_failed(acme_engine_t *e, const char *msg);

/*
 * The host gives up on the order (shutdown, a lost lease, a failure of its
 * own): a request in flight is forgotten, the next calls of
 * acme_engine_next() emit an UNPUBLISH for every challenge still published
 * and then ERROR with msg (the first error stays when the order had already
 * failed; after DONE nothing changes).  Returns how many UNPUBLISH follow;
 * calling it again is harmless.
 */
size_t acme_engine_abort(acme_engine_t *e, const char *msg);

/* After DONE of an ari_only engine: 1 with the renewalInfo answer
 * (*body, *len, the Retry-After header value or NULL; owned by the
 * engine), 0 when the directory has no renewalInfo; -1 otherwise. */
int acme_engine_ari(const acme_engine_t *e, const char **body, size_t *len,
    const char **retry_after);

/* After DONE: the full chain PEM (leaf first), owned by the engine. */
const char *acme_engine_certificate(const acme_engine_t *e, size_t *len);

/* After DONE with preferred_chain set: which chain was taken and why
 * ("the alternate chain URL, issued by \"NAME\"", "the default chain: none
 * of the 2 alternate chains is issued by \"NAME\" (...)"), for the log;
 * NULL without preferred_chain. */
const char *acme_engine_chain_note(const acme_engine_t *e);

/* After ERROR: a one-line message; RFC 7807 problems are quoted verbatim
 * ("urn:ietf:params:acme:error:TYPE: detail"), with the step that failed. */
const char *acme_engine_error(const acme_engine_t *e);

/* After ERROR: Retry-After of the failing response as unix time, or 0. */
long long acme_engine_retry_after(const acme_engine_t *e);

/* The account URL in use (known after ACME_ACT_ACCOUNT), or NULL. */
const char *acme_engine_account_url(const acme_engine_t *e);

/* The order URL, once created (for logs). */
const char *acme_engine_order_url(const acme_engine_t *e);
/* The directory URL after the redirects the engine followed (at most
 * ACME_ENGINE_DIR_REDIRECTS 301/302/307/308, https only): the configured
 * one when there were none. */
#define ACME_ENGINE_DIR_REDIRECTS  5
const char *acme_engine_directory_url(const acme_engine_t *e);

/* Short name of the current step, for status output ("directory",
 * "new-account", "new-order", "authorization", "challenge", "finalize",
 * "certificate", "done", "error"; "revoke" while revoking;
 * "renewal-info" for an ari_only engine). */
const char *acme_engine_step(const acme_engine_t *e);

#endif
