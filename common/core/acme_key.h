/*
 * Private keys: ECDSA P-256 (default) / P-384 / P-521, RSA 2048/3072/4096.
 * Keys are plain OpenSSL EVP_PKEY objects; the caller owns what it gets.
 */
#ifndef ACME_KEY_H
#define ACME_KEY_H

#include <stddef.h>
#include <openssl/evp.h>

typedef enum {
    ACME_KEY_EC_P256 = 0,
    ACME_KEY_EC_P384,
    ACME_KEY_RSA_2048,
    ACME_KEY_RSA_3072,
    ACME_KEY_RSA_4096,
    ACME_KEY_EC_P521            /* last: the values before keep theirs */
} acme_key_type_t;

#define ACME_KEY_DEFAULT ACME_KEY_EC_P256

/*
 * Parses "ecdsa:256", "ecdsa:384", "ecdsa:521", "rsa:2048", "rsa:3072", "rsa:4096"
 * (also "ecdsa" = ecdsa:256, "rsa" = rsa:2048).  len is the length of spec.
 * Returns 0 on success, -1 if the spec is unknown.
 */
int acme_key_type_parse(const char *spec, size_t len, acme_key_type_t *out);

/*
 * Why acme_key_type_parse() refused spec, worded as nginx-acme does:
 * "unsupported curve" (ecdsa:N), "unsupported key size" (rsa:N), else
 * "unsupported key type".  A static string.
 */
const char *acme_key_type_unsupported(const char *spec, size_t len);

/* Canonical spec string, e.g. "ecdsa:256". */
const char *acme_key_type_name(acme_key_type_t t);

/*
 * The key type of a self-signed placeholder served for a certificate of
 * type t until it is issued: RSA-2048 for any RSA type, else EC P-256.
 * OpenSSL keeps one certificate per key kind in a context (RSA, EC, ...)
 * and an issued certificate replaces only the one of its kind, so the
 * placeholder must be of the certificate's kind to be replaced; the size
 * does not matter, and 2048 is quick to generate.
 */
acme_key_type_t acme_key_placeholder_type(acme_key_type_t t);

/* Slow for RSA (seconds for 4096): never call on an event loop. NULL on error. */
EVP_PKEY *acme_key_generate(acme_key_type_t t);

/* PEM (PKCS#8 or traditional) -> key; NULL on error. */
EVP_PKEY *acme_key_from_pem(const char *pem, size_t len);

/*
 * A PKCS#8 PrivateKeyInfo (the DER of a "PRIVATE KEY" PEM block), decoded
 * for its own algorithm only: OpenSSL 3 builds a decoder context per call,
 * which for every key type it knows costs about 1 ms, for the one type
 * (EC, RSA, RSA-PSS, Ed25519, Ed448) a quarter of that.  NULL when it does
 * not decode.
 */
EVP_PKEY *acme_key_from_pkcs8_der(const unsigned char *der, size_t len);

/* Unencrypted PKCS#8 PEM, NUL-terminated, malloc'd; *len excludes the NUL. */
char *acme_key_to_pem(EVP_PKEY *key, size_t *len);

/*
 * The SPKI pin of key's public half (RFC 7469 section 2.4): standard
 * base64 of the SHA-256 of the DER SubjectPublicKeyInfo, 44 characters,
 * into out (at least ACME_SPKI_PIN_LEN bytes, NUL-terminated).  0, or -1
 * (out "").  The same for a certificate's key with X509_get0_pubkey().
 */
#define ACME_SPKI_PIN_LEN  48
int acme_key_spki_pin(EVP_PKEY *key, char *out, size_t len);

/*
 * The same pin from the DER SubjectPublicKeyInfo itself (der, n bytes),
 * e.g. a parsed certificate's (i2d_X509_PUBKEY of X509_get_X509_PUBKEY):
 * re-encoding the certificate's SPKI as it was read costs nothing, while
 * i2d_PUBKEY of an EVP_PKEY builds an OpenSSL 3 encoder context (about
 * 0.3 ms).  0, or -1 (out "").
 */
int acme_spki_pin_der(const unsigned char *der, size_t n, char *out,
    size_t len);

/* Type of an existing key; -1 if it is none of the supported types. */
int acme_key_type_of(EVP_PKEY *key, acme_key_type_t *out);

/*
 * A name for any public key, into buf (returned): acme_key_type_name() for
 * a supported type, else "rsa:BITS", "ecdsa:BITS", "ed25519", "ed448",
 * "dsa:BITS", or "unknown" (also for NULL).  For the inventory of
 * certificates the module does not manage (acme_inventory.h).
 */
const char *acme_key_desc(EVP_PKEY *key, char *buf, size_t len);

#endif
