/* Certificate inspection, parsing for installation, and self-signed fallbacks. */
#ifndef ACME_CERT_H
#define ACME_CERT_H

#include <stddef.h>
#include <time.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

#include "acme_key.h"

typedef struct {
    char        serial[80];     /* uppercase hex, no separators */
    long long   not_before;     /* unix time */
    long long   not_after;
    char        issuer[256];    /* RFC 2253 one-line */
    char        subject[256];
    char      **names;          /* subjectAltName DNS names and IP literals */
    size_t      n_names;
    int         key_type;       /* acme_key_type_t of the public key; -1
                                   none of the supported types */
    char        key_name[24];   /* acme_key_desc() of the public key, e.g.
                                   "ecdsa:256", also "rsa:1024" */
    char        spki_pin[ACME_SPKI_PIN_LEN];  /* acme_key_spki_pin() of
                                   the public key; "" unknown */
} acme_cert_info_t;

/* Inspects the first certificate of a PEM chain. 0, or -1 with err. */
int acme_cert_info_from_pem(const char *pem, size_t len, acme_cert_info_t *out,
    char *err, size_t errlen);
int acme_cert_info_from_x509(X509 *x, acme_cert_info_t *out);
void acme_cert_info_free(acme_cert_info_t *info);

/*
 * True (1) when the certificate's SANs are exactly the configured names
 * (order and case ignored), else 0.
 */
int acme_cert_info_names_equal(const acme_cert_info_t *info,
    const char *const *names, size_t n_names);

/*
 * True (1) when the certificate's key is of a supported type other than
 * want (a key type changed in the configuration); 0 when it is want or
 * of no supported type.
 */
int acme_cert_info_key_other(const acme_cert_info_t *info,
    acme_key_type_t want);

/*
 * Parses a PEM blob holding an optional private key and a certificate chain
 * (leaf first): the on-disk bundle format of acme_store.  Any of the out
 * pointers may be NULL.  The caller owns the results.  Checks that the key
 * matches the leaf when both are present.  0, or -1 with err.
 */
int acme_bundle_parse(const char *pem, size_t len, EVP_PKEY **key, X509 **leaf,
    STACK_OF(X509) **chain, char *err, size_t errlen);

/*
 * Chain certificates parsed once: the bundles of one CA share their
 * intermediates, and a certificate decode costs a fraction of a millisecond
 * (OpenSSL 3 builds a decoder for its public key) and a few KB.  A cache
 * holds up to ACME_X509_CACHE_MAX distinct chain certificates (then parses
 * the others as usual); one thread at a time.  acme_bundle_parse_cached()
 * is acme_bundle_parse() taking the chain certificates (never the leaf)
 * from cache (NULL: none), each a new reference to the shared X509.
 */
#define ACME_X509_CACHE_MAX  16

typedef struct acme_x509_cache_s acme_x509_cache_t;

acme_x509_cache_t *acme_x509_cache_new(void);
void acme_x509_cache_free(acme_x509_cache_t *cache);
int acme_bundle_parse_cached(const char *pem, size_t len,
    acme_x509_cache_t *cache, EVP_PKEY **key, X509 **leaf,
    STACK_OF(X509) **chain, char *err, size_t errlen);

/*
 * The bundle of a new certificate: its key PEM followed by the chain PEM
 * (leaf first), a newline between them when the key PEM lacks one, so the
 * result stays valid PEM.  malloc'd, NUL-terminated (*len excludes the
 * NUL); it holds the private key: the caller frees it with
 * acme_bundle_free().  NULL when out of memory or a part is empty.
 */
char *acme_bundle_join(const char *key_pem, size_t key_len,
    const char *chain_pem, size_t chain_len, size_t *len);

/*
 * The inverse of acme_bundle_join: where the chain starts in a bundle
 * (its first "-----BEGIN CERTIFICATE-----" line), so that key PEM =
 * bundle[0..at) and chain = bundle[at..len).  0 when there is no key
 * before a certificate or no certificate.
 */
size_t acme_bundle_split(const char *bundle, size_t len);

/* Cleanses and frees a bundle (NULL-safe). */
void acme_bundle_free(char *bundle, size_t len);

/*
 * Checks a certificate chain a CA issued for an order before it is stored
 * or installed (pem: application/pem-certificate-chain, leaf first):
 *   - every PEM block is a certificate that parses (text outside the blocks
 *     is allowed, RFC 7468 section 2); at least one;
 *   - the leaf's public key is key (the CSR's);
 *   - every ordered identifier is in the leaf's subjectAltName: DNS names
 *     case-insensitively as dNSName (a wildcard literally), IP literals by
 *     address bytes as iPAddress (RFC 8738);
 *   - notBefore < notAfter and now < notAfter; a notBefore ahead of now
 *     is accepted (a CA whose clock runs ahead): the host serves such a
 *     certificate from acme_job_activate_at (acme_job.h).
 * 0, or -1 with err saying what is wrong (no prefix).
 */

int acme_cert_check_issued(const char *pem, size_t len, EVP_PKEY *key,
    const char *const *names, size_t n_names, long long now,
    char *err, size_t errlen);

/*
 * nginx-acme's preferred_chain test: 1 when the last certificate of the
 * PEM chain (the top one the server sends) has an issuer commonName whose
 * bytes are exactly cn (case-sensitive, as nginx-acme compares them); 0
 * otherwise, and for a chain without a certificate.
 */
int acme_cert_chain_issued_by(const char *pem, size_t len, const char *cn);

/*
 * Self-signed certificate for names[0..n) with key, valid from now-1h for
 * days, used as the fallback before the first issuance; the caller frees
 * it (X509_free).  NULL on error.
 */
X509 *acme_selfsigned_x509(EVP_PKEY *key, const char *const *names,
    size_t n_names, int days);

/* The same as PEM, malloc'd (its length in *len). */
char *acme_selfsigned_pem(EVP_PKEY *key, const char *const *names,
    size_t n_names, int days, size_t *len);

#endif
