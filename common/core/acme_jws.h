/*
 * JWS (RFC 7515) in the flattened JSON serialization as ACME requires,
 * JWK (RFC 7517) and JWK thumbprints (RFC 7638).
 */
#ifndef ACME_JWS_H
#define ACME_JWS_H

#include <openssl/evp.h>

/* "ES256" (P-256), "ES384" (P-384), "ES512" (P-521), "RS256" (RSA); NULL for other keys. */
const char *acme_jws_alg(EVP_PKEY *key);

/* Public JWK with only the required members in lexicographic order and no
 * whitespace, i.e. exactly the RFC 7638 thumbprint input. malloc'd. */
char *acme_jwk_json(EVP_PKEY *key);

/* base64url(SHA-256(acme_jwk_json(key))). malloc'd. */
char *acme_jwk_thumbprint(EVP_PKEY *key);

/* token "." thumbprint (RFC 8555 section 8.1). malloc'd. */
char *acme_key_authorization(const char *token, EVP_PKEY *account_key);

/*
 * Signs payload for url.  The protected header carries alg, nonce, url and
 * either "kid" (when kid != NULL) or "jwk".  payload == NULL means
 * POST-as-GET (empty payload).  Returns the JWS JSON text, malloc'd.
 */
char *acme_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce,
    const char *url, const char *payload);

#endif
