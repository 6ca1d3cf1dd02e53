/*
 * External Account Binding (RFC 8555 section 7.3.4): the inner JWS a CA
 * that requires it (pebble with externalAccountBindingRequired, ZeroSSL,
 * Google, ...) wants as "externalAccountBinding" in the newAccount payload.
 *
 * The MAC key is a secret: nothing here ever copies it into an error
 * message, and buffers holding it are cleansed before being freed.
 */
#ifndef ACME_EAB_H
#define ACME_EAB_H

#include <stddef.h>
#include <openssl/evp.h>

/*
 * The JWS object text for "externalAccountBinding":
 *
 *     {"protected":b64url({"alg":ALG,"kid":KID,"url":NEW_ACCOUNT_URL}),
 *      "payload":b64url(acme_jwk_json(account_key)),
 *      "signature":b64url(HMAC(mac_key, protected "." payload))}
 *
 * alg: "HS256" (default when NULL), "HS384" or "HS512".  The caller parses
 * the returned text into its newAccount payload (json_loads).  malloc'd;
 * NULL with err set on bad input (no kid, empty key, unknown alg, account
 * key that has no JWK).
 */
char *acme_eab_jws(EVP_PKEY *account_key, const char *kid,
    const unsigned char *mac_key, size_t mac_key_len, const char *alg,
    const char *new_account_url, char *err, size_t errlen);

/*
 * Decodes a MAC key as CAs hand it out: base64url, padding optional;
 * standard base64 ('+', '/') is accepted too.  Leading and trailing
 * whitespace is ignored.  Returns a malloc'd key (free it with
 * acme_eab_mac_key_free) and sets *len; NULL with err on invalid input.
 */
unsigned char *acme_eab_mac_key_decode(const char *text, size_t *len,
    char *err, size_t errlen);

/*
 * The value rules of external_account_key / AcmeExternalAccountBinding that
 * need no key: kid is 1-256 printable ASCII characters without '"' or '\\';
 * alg is HS256, HS384 or HS512 in any case, NULL meaning HS256.  0 with
 * *alg_out the canonical (static) spelling, or -1 with err (the caller adds
 * the directive and file:line).
 */
int acme_eab_conf(const char *kid, const char *alg, const char **alg_out,
    char *err, size_t errlen);

/* Cleanses and frees a key from the functions above (NULL-safe). */
void acme_eab_mac_key_free(unsigned char *key, size_t len);

/*
 * external_account_key / AcmeExternalAccountBinding of an issuer block
 * (acme_issuer_conf_t.eab), filled by acme_eab_conf_load()
 * (io/acme_eab_file.h).  All zero: none.
 */
typedef struct {
    const char     *kid;            /* NULL: none; borrowed */
    unsigned char  *key;            /* the decoded MAC key, malloc'd */
    size_t          key_len;
    const char     *alg;            /* "HS256", "HS384", "HS512" (static) */
} acme_eab_conf_t;

/* Cleanses and frees the key; e is all zero again. */
void acme_eab_conf_clear(acme_eab_conf_t *e);

#endif
