/*
 * An in-memory, scripted ACME CA for engine tests.  It answers the engine's
 * requests directly (no sockets) and checks each JWS: content type, the
 * signature against the test's account key, the protected header (nonce
 * issued by it and unused, url equal to the request URL, jwk for newAccount
 * and kid = the registered account URL otherwise) and the payloads.
 * Protocol violations are counted in `violations` (the last one is in
 * `violation`), so a test ends with CHECK_INT(ca->violations, 0).
 *
 * URLs live under https://ca.test: /dir, /new-nonce, /new-account,
 * /new-order, /acct/N, /order/1, /authz/I, /chal/I, /finalize/1, /cert/1.
 * Authorizations offer dns-01, http-01 and tls-alpn-01; only the type in
 * validate_type is served at /chal/I and validated.  A wildcard's
 * authorization names its base domain with "wildcard": true.
 */
#ifndef FAKE_CA_H
#define FAKE_CA_H

#include <openssl/evp.h>

#include "acme_http.h"

#define FAKE_CA_DIR  "https://ca.test/dir"

/* The certificate issued at finalize is a real one: the CSR's key and the
 * order's identifiers (DNS or IP SANs), valid 2020-01-01 .. 2040-01-01,
 * signed by a per-CA throwaway key, followed by that CA's certificate. */
#define FAKE_CA_CERT_OTHER_KEY  1   /* the leaf carries another key */
#define FAKE_CA_CERT_LACKS_NAME 2   /* its SAN lacks the last identifier */

/* Alternate chains (RFC 8555 section 7.4.2): with alt_chains N, /cert/1
 * answers with "Link: <https://ca.test/cert/1/alt/I>;rel="alternate"" for
 * I = 1..N (one header value, comma-joined, as the HTTP parser hands them
 * over), and /cert/1/alt/I is the same leaf followed by a "fake CA"
 * certificate issued by "fake alt root I" (the default chain's top one is
 * issued by "fake CA"). */
#define FAKE_CA_ALT_MAX  8

typedef struct fake_ca_s fake_ca_t;

struct fake_ca_s {
    /* script, set by the test before running */
    EVP_PKEY    *account_key;       /* verifies every signature */
    char        *account_url;       /* registered account (malloc'd), NULL = none */
    /* another key's account: a kid naming it gets foreign_type ("malformed"
     * when NULL) with pebble's "JWS verification error" detail */
    const char  *foreign_account_url;
    const char  *foreign_type;
    int          eab_required;
    int          terms_required;    /* newAccount needs termsOfServiceAgreed */
    int          bad_nonce_next;    /* answer the next N POSTs with badNonce */
    int          pending_polls;     /* authz polls still "pending" after the challenge */
    int          processing_polls;  /* order polls still "processing" after finalize */
    int          challenge_fails;   /* validation fails with an unauthorized error */
    int          authz_valid;       /* authorizations are valid from the start */
    int          sync_validation;   /* the challenge POST answers "valid" */
    const char  *poll_retry_after;  /* Retry-After on challenge/authz/order answers */
    const char  *validate_type;     /* the challenge type validated; NULL = http-01 */
    int          cert_mischief;     /* FAKE_CA_CERT_*: what is wrong with the
                                       issued certificate (0: nothing) */
    int          alt_chains;        /* alternate chains offered, at most
                                       FAKE_CA_ALT_MAX */
    const char  *cert_link;         /* Link value of /cert/1 verbatim
                                       (NULL: the alternates') */
    const char  *profiles;          /* JSON object of the directory's
                                       meta.profiles; NULL: none */
    /* ARI (RFC 9773): with ari set the directory has renewalInfo
     * (https://ca.test/renewal-info) and GET /renewal-info/<id> answers
     * ari_status (0: 200) with ari_body (JSON) and Retry-After ari_retry;
     * the next refuse_replaces newOrders carrying "replaces" get 409
     * alreadyReplaced */
    int          ari;
    int          ari_status;
    const char  *ari_body;
    const char  *ari_retry;
    int          refuse_replaces;

    /* External Account Binding the CA knows (eab_kid NULL: none; a binding
     * sent anyway is only recorded).  A wrong kid gets "unauthorized", a
     * wrong MAC "malformed", as pebble answers. */
    const char          *eab_kid;
    const unsigned char *eab_key;
    size_t               eab_key_len;

    /* one injected failure: requests whose path starts with fail_path get
     * fail_status/fail_ctype/fail_body (fail_times times; -1 = always);
     * with fail_pass the CA first does what they ask (a lost answer) */
    const char  *fail_path;
    int          fail_times;
    int          fail_pass;
    int          fail_status;
    const char  *fail_ctype;
    const char  *fail_body;
    const char  *fail_retry_after;

    /* what happened */
    int          n_requests;
    int          n_dir, n_nonce, n_account_lookup, n_account_create;
    int          n_new_order, n_challenge, n_finalize, n_cert;
    char        *last_csr;          /* the last finalize's "csr" (malloc'd) */
    int          n_bad_nonce;       /* badNonce answers (scripted or earned) */
    int          n_failed;          /* scripted failures answered */
    int          n_order_get;       /* POST-as-GET of the order */
    int          n_alt;             /* alternate chain fetches */
    int          n_revoke;          /* revokeCert requests */
    char        *revoked;           /* base64url DER of the last revoked
                                       certificate (kid-signed), or NULL */
    int          revoke_reason;     /* its "reason", -1 when absent */
    int          already_revoked;   /* answer revokeCert with alreadyRevoked */
    int          violations;
    char         violation[256];
    char        *contact;           /* JSON of the last newAccount contact */
    char        *identifiers;       /* JSON of the last newOrder identifiers */
    char        *profile;           /* the last newOrder's "profile", or
                                       NULL when it had none */
    char        *replaces;          /* the last newOrder's "replaces", or
                                       NULL when it had none */
    char        *ari_id;            /* the last renewalInfo GET's ID */
    int          n_ari;             /* renewalInfo GETs */
    int          terms_agreed;
    char        *eab;               /* JSON of the last newAccount's
                                       externalAccountBinding, or NULL */

    /* internal */
    char       **names;
    size_t       n_names;
    int         *authz_state;       /* 0 pending, 1 processing, 2 valid, 3 invalid */
    int         *authz_polls;
    int          order_created;
    int          finalized;
    char        *published_token;   /* what the host serves, for validation */
    char        *published_ka;
    unsigned     next_nonce;
    unsigned char *used_nonces;
    unsigned     next_acct;

    char        *r_location, *r_nonce, *r_body;
    EVP_PKEY    *ca_key;            /* signs issued certificates */
    char        *chain;             /* issued at finalize: leaf + CA, PEM */
    char        *alt_chain[FAKE_CA_ALT_MAX];
    char        *r_link;
};

fake_ca_t *fake_ca_new(EVP_PKEY *account_key);
void fake_ca_free(fake_ca_t *ca);

/* Answers one request; the response's strings stay valid until the next
 * call.  Returns -1 when the request should fail at the transport level
 * (never, currently), else 0. */
int fake_ca_handle(fake_ca_t *ca, const acme_http_request_t *req,
    acme_http_response_t *resp);

/* The host's http-01 responder as the CA sees it (NULL = unpublished). */
void fake_ca_publish(fake_ca_t *ca, const char *token, const char *key_authz);

#endif
