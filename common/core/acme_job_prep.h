/*
 * What an order needs before the engine starts, the same for every host:
 * the issuer's account key and stored account URL, a fresh certificate
 * key, the engine's order configuration, and, when the order fails at
 * new-account, the operator's hint about External Account Binding.
 *
 * Each host fills one acme_job_conf_t from its configuration (plain values,
 * borrowed for the duration of the calls) and calls, in its worker thread
 * (both may block: disk, fsync, RSA key generation; never on an event
 * loop):
 *
 *     acme_job_account_key()   account.key (loaded, or created once:
 *                              acme_store_account_key) + account.json's URL
 *                              (io/acme_job_account.h)
 *     acme_job_cert_key()      a fresh key of the certificate's key= type
 *
 * then, with no stored URL, the per-issuer gate of acme_account.h, then
 * acme_job_order_config() and acme_engine_new().  After an ERROR,
 * acme_job_eab_hint() words the engine's message for the operator.
 */
#ifndef ACME_JOB_PREP_H
#define ACME_JOB_PREP_H

#include <stddef.h>
#include <openssl/evp.h>

#include "acme_eab.h"
#include "acme_engine.h"
#include "acme_key.h"
#include "acme_util.h"

typedef struct {
    /* the issuer */
    const char           *directory_url;
    const char           *state_dir;        /* the issuer's store root;
                                               NULL: none (account_key_pem
                                               then holds the key) */
    acme_key_type_t       account_key_type; /* for a new account key */
    const char           *account_key_pem;  /* NULL, or the account key
                                               (nginx-acme's "account_key
                                               FILE", read at configuration
                                               time): used instead of the
                                               store's, never written */
    size_t                account_key_pem_len;
    const char *const    *contacts;         /* "mailto:..." */
    size_t                n_contacts;
    int                   terms_agreed;
    const acme_eab_conf_t *eab;             /* NULL, or no kid or key: none */

    /* the certificate */
    const char *const    *names;
    size_t                n_names;
    acme_key_type_t       cert_key_type;    /* acme_certificate key= */
    int                   csr_cn;           /* CN = names[0] in the CSR */
    const char           *preferred_chain;  /* the issuer's, or NULL */
    const char           *cert_id;          /* its store id (certs/<id>
                                               below cert_root), or NULL */
    const char           *cert_root;        /* the certificate's store
                                               root (the primary issuer's
                                               with fallback=,
                                               acme_failover.h); NULL:
                                               state_dir */
    int                   key_reuse;        /* key_reuse / AcmeKeyReuse on:
                                               a renewal keeps the stored
                                               key (acme_job_reuse_key) */
    int                   fresh_key;        /* a fresh key whatever
                                               key_reuse or key_rollover
                                               say: the order replaces a
                                               certificate revoked on
                                               request */
    int                   key_rollover;     /* key_rollover pinned /
                                               AcmeKeyRollover pinned: the
                                               order certifies the stored
                                               next.key and makes the next
                                               one (acme_job_next_t);
                                               never with key_reuse */
    const char           *profile;          /* the issuer's, or NULL */
    int                   profile_require;
} acme_job_conf_t;

/*
 * A fresh certificate key of c->cert_key_type; with pem non-NULL also its
 * PKCS#8 PEM (*pem malloc'd, NUL-terminated; the caller cleanses and frees
 * it).  0, or -1 with err.
 */
int acme_job_cert_key(const acme_job_conf_t *c, EVP_PKEY **key, char **pem,
    size_t *pem_len, char *err, size_t errlen);

/*
 * The one place that decides whether an order keeps the stored certificate
 * key: the key at the start of stored (the certificate's bundle as stored,
 * key PEM then chain; NULL: none stored) when c->key_reuse is set,
 * c->fresh_key is not, and that key is of c->cert_key_type (a key type
 * change makes a new key).  The key (the caller frees it), or NULL: make a
 * fresh one.  The first issuance has no stored bundle: fresh.
 */
EVP_PKEY *acme_job_reuse_key(const acme_job_conf_t *c, const char *stored,
    size_t stored_len);

/*
 * key_rollover (pin-friendly rollover): each order certifies the key made
 * and stored as next.key (acme_store.h) by the order before, whose SPKI pin
 * the status has published since as "next_spki_pin", and makes the key of
 * the next certificate, stored as next.key once the certificate is
 * (acme_job_store_issued).  A failed order leaves next.key as it was: its
 * retry certifies the same key.
 */
typedef struct {
    char        *pem;       /* the next key made for the next order (PKCS#8
                               PEM, malloc'd; acme_job_next_free), stored as
                               next.key with the certificate; NULL: none */
    size_t       pem_len;
    char         pin[ACME_SPKI_PIN_LEN];   /* its SPKI pin; "" none */
    int          used;      /* this order's key is the stored next.key */
    char         warn[ACME_ERRLEN];        /* for the log: why a stored
                                               next.key was not used, or
                                               why the new one was not
                                               stored; "" */
} acme_job_next_t;

/* Cleanses and frees n->pem; n zeroed. */
void acme_job_next_free(acme_job_next_t *n);

/*
 * The one place that decides whether an order certifies the stored
 * next.key: next (its PEM as stored; NULL: none) when c->key_rollover is
 * set, c->fresh_key is not, and it is a key of c->cert_key_type.  The key
 * (the caller frees it), or NULL: a fresh key, with *why NULL (nothing to
 * say: rollover off, a revoked certificate's replacement, the first
 * issuance: renewal 0 and none stored) or the reason to warn about
 * ("missing", "unreadable", "of another key type").  renewal: a
 * certificate is stored (its next.key should be there).
 */
EVP_PKEY *acme_job_next_key(const acme_job_conf_t *c, const char *next,
    size_t next_len, int renewal, const char **why);

/*
 * acme_job_cert_key(), except that the key is acme_job_reuse_key(c,
 * stored, stored_len) when that gives one (*reused 1, else 0; reused may
 * be NULL).
 */
int acme_job_cert_key_stored(const acme_job_conf_t *c, const char *stored,
    size_t stored_len, EVP_PKEY **key, char **pem, size_t *pem_len,
    int *reused, char *err, size_t errlen);

/*
 * The engine's configuration for one order: c's issuer and certificate,
 * the challenge type of this attempt, the keys and the account URL (NULL
 * when none).  Everything is borrowed: keep it until acme_engine_new().
 * EAB is set only when both a kid and a key are configured.
 */
void acme_job_order_config(acme_order_config_t *oc, const acme_job_conf_t *c,
    const char *challenge_type, EVP_PKEY *account_key,
    const char *account_url, EVP_PKEY *cert_key);

/*
 * An engine error of the new-account step in the operator's terms: an
 * account that needs External Account Binding is a matter of the issuer's
 * configuration, which may serve several certificates, so the message
 * names the issuer block and the directive, in the host's words:
 *
 *   issuer     how the host names the block: "acme_issuer \"pebble\"",
 *              "<AcmeIssuer pebble>"
 *   directive  its EAB directive: "external_account_key",
 *              "AcmeExternalAccountBinding"
 *   eab_kid    the configured kid, NULL or "" when none
 *
 * No EAB configured and the CA asks for it ("externalAccountRequired" or
 * "External Account Binding" in msg, any case):
 *   <issuer> requires External Account Binding: add "<directive> KID KEY"
 *   to it (<msg>)
 * EAB configured, any new-account error:
 *   <issuer> with "<directive> <kid>": <msg>
 * Otherwise msg itself.  Returns msg or buf (NUL-terminated, truncated to
 * len); msg NULL is "unknown error".
 */
const char *acme_job_eab_hint(const char *msg, const char *issuer,
    const char *directive, const char *eab_kid, char *buf, size_t len);

#endif
