/*
 * Private keys through the OpenSSL 3 EVP API only (no deprecated RSA_ /
 * EC_KEY_ calls), so every key type goes through the same code paths.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "acme_key.h"
#include "acme_util.h"

static const struct {
    const char      *spec;
    acme_key_type_t  type;
} key_specs[] = {
    { "ecdsa:256", ACME_KEY_EC_P256 },
    { "ecdsa:384", ACME_KEY_EC_P384 },
    { "ecdsa:521", ACME_KEY_EC_P521 },
    { "rsa:2048",  ACME_KEY_RSA_2048 },
    { "rsa:3072",  ACME_KEY_RSA_3072 },
    { "rsa:4096",  ACME_KEY_RSA_4096 },
    /* short forms, only accepted on input */
    { "ecdsa",     ACME_KEY_EC_P256 },
    { "rsa",       ACME_KEY_RSA_2048 },
};

int
acme_key_type_parse(const char *spec, size_t len, acme_key_type_t *out)
{
    size_t i;

    if (spec == NULL) {
        return -1;
    }

    for (i = 0; i < sizeof(key_specs) / sizeof(key_specs[0]); i++) {
        if (strlen(key_specs[i].spec) == len
            && memcmp(key_specs[i].spec, spec, len) == 0)
        {
            if (out != NULL) {
                *out = key_specs[i].type;
            }
            return 0;
        }
    }

    return -1;
}

const char *
acme_key_type_unsupported(const char *spec, size_t len)
{
    if (spec != NULL && len > 6 && memcmp(spec, "ecdsa:", 6) == 0) {
        return "unsupported curve";
    }
    if (spec != NULL && len > 4 && memcmp(spec, "rsa:", 4) == 0) {
        return "unsupported key size";
    }
    return "unsupported key type";
}

const char *
acme_key_type_name(acme_key_type_t t)
{
    size_t i;

    /* the canonical names come first in the table */
    for (i = 0; i < sizeof(key_specs) / sizeof(key_specs[0]); i++) {
        if (key_specs[i].type == t) {
            return key_specs[i].spec;
        }
    }

    return "unknown";
}

acme_key_type_t
acme_key_placeholder_type(acme_key_type_t t)
{
    return (t == ACME_KEY_RSA_2048 || t == ACME_KEY_RSA_3072
            || t == ACME_KEY_RSA_4096) ? ACME_KEY_RSA_2048 : ACME_KEY_EC_P256;
}

EVP_PKEY *
acme_key_generate(acme_key_type_t t)
{
    switch (t) {
    case ACME_KEY_EC_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case ACME_KEY_EC_P384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case ACME_KEY_EC_P521:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    case ACME_KEY_RSA_2048:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    case ACME_KEY_RSA_3072:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 3072);
    case ACME_KEY_RSA_4096:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 4096);
    }

    return NULL;
}

/*
 * Refuses any passphrase: without a callback OpenSSL would prompt on the
 * controlling terminal for an encrypted key, which a server must never do.
 */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) u;
    return -1;
}

EVP_PKEY *
acme_key_from_pkcs8_der(const unsigned char *der, size_t len)
{
    const unsigned char   *p;
    const char            *type;
    const ASN1_OBJECT     *alg;
    PKCS8_PRIV_KEY_INFO   *p8;
    OSSL_DECODER_CTX      *dctx;
    EVP_PKEY              *key;
    size_t                 left;

    if (der == NULL || len == 0 || len > LONG_MAX) {
        return NULL;
    }

    /* the algorithm names the one decoder to ask */
    p = der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long) len);
    if (p8 == NULL || !PKCS8_pkey_get0(&alg, NULL, NULL, NULL, p8)) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        ERR_clear_error();
        return NULL;
    }

    switch (OBJ_obj2nid(alg)) {
    case NID_X9_62_id_ecPublicKey:  type = "EC"; break;
    case NID_rsaEncryption:         type = "RSA"; break;
    case NID_rsassaPss:             type = "RSA-PSS"; break;
    case NID_ED25519:               type = "ED25519"; break;
    case NID_ED448:                 type = "ED448"; break;
    default:                        type = NULL; break;
    }

    PKCS8_PRIV_KEY_INFO_free(p8);

    key = NULL;
    dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "DER", "PrivateKeyInfo", type,
                                         EVP_PKEY_KEYPAIR, NULL, NULL);
    if (dctx != NULL) {
        p = der;
        left = len;
        if (!OSSL_DECODER_from_data(dctx, &p, &left)) {
            EVP_PKEY_free(key);
            key = NULL;
        }
        OSSL_DECODER_CTX_free(dctx);
    }

    ERR_clear_error();
    return key;
}

EVP_PKEY *
acme_key_from_pem(const char *pem, size_t len)
{
    BIO            *bio;
    EVP_PKEY       *key;
    char           *name, *header;
    unsigned char  *data;
    long            dlen;

    if (pem == NULL || len == 0 || len > INT_MAX) {
        return NULL;
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        return NULL;
    }

    /* the usual one block of PKCS#8 (what the store writes): fast */
    name = NULL;
    header = NULL;
    data = NULL;
    key = NULL;

    if (PEM_read_bio(bio, &name, &header, &data, &dlen)) {
        if (strcmp(name, "PRIVATE KEY") == 0 && header[0] == '\0') {
            key = acme_key_from_pkcs8_der(data, (size_t) dlen);
        }
        OPENSSL_cleanse(data, (size_t) dlen);
    }

    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);

    if (key != NULL) {
        BIO_free(bio);
        ERR_clear_error();
        return key;
    }

    /* anything else: every format OpenSSL knows */
    (void) BIO_reset(bio);
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);

    /* leave no stale errors behind for the next caller of ERR_get_error */
    ERR_clear_error();
    return key;
}

char *
acme_key_to_pem(EVP_PKEY *key, size_t *len)
{
    BIO   *bio;
    char  *data, *out;
    long   n;

    if (key == NULL) {
        return NULL;
    }

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return NULL;
    }

    out = NULL;
    if (PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
        n = BIO_get_mem_data(bio, &data);
        if (n > 0) {
            out = acme_strndup(data, (size_t) n);
            if (out != NULL && len != NULL) {
                *len = (size_t) n;
            }
        }
    }

    /* the PEM text holds the key: wipe the BIO's copy before freeing it */
    n = BIO_get_mem_data(bio, &data);
    if (n > 0) {
        OPENSSL_cleanse(data, (size_t) n);
    }
    BIO_free(bio);
    ERR_clear_error();
    return out;
}

int
acme_key_type_of(EVP_PKEY *key, acme_key_type_t *out)
{
    char             group[64];
    size_t           glen;
    int              nid;
    acme_key_type_t  t;

    if (key == NULL) {
        return -1;
    }

    if (EVP_PKEY_is_a(key, "EC")) {
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                            group, sizeof(group), &glen))
        {
            ERR_clear_error();
            return -1;
        }

        /* OpenSSL reports "prime256v1"; accept NIST names as well */
        nid = OBJ_sn2nid(group);
        if (nid == NID_undef) {
            nid = EC_curve_nist2nid(group);
        }

        if (nid == NID_X9_62_prime256v1) {
            t = ACME_KEY_EC_P256;
        } else if (nid == NID_secp384r1) {
            t = ACME_KEY_EC_P384;
        } else if (nid == NID_secp521r1) {
            t = ACME_KEY_EC_P521;
        } else {
            return -1;
        }

    } else if (EVP_PKEY_is_a(key, "RSA")) {
        switch (EVP_PKEY_get_bits(key)) {
        case 2048:
            t = ACME_KEY_RSA_2048;
            break;
        case 3072:
            t = ACME_KEY_RSA_3072;
            break;
        case 4096:
            t = ACME_KEY_RSA_4096;
            break;
        default:
            return -1;
        }

    } else {
        return -1;
    }

    if (out != NULL) {
        *out = t;
    }
    return 0;
}

const char *
acme_key_desc(EVP_PKEY *key, char *buf, size_t len)
{
    acme_key_type_t  t;
    const char      *kind;

    if (len == 0) {
        return buf;
    }

    if (key == NULL) {
        snprintf(buf, len, "unknown");
        return buf;
    }

    if (acme_key_type_of(key, &t) == 0) {
        snprintf(buf, len, "%s", acme_key_type_name(t));
        return buf;
    }

    if (EVP_PKEY_is_a(key, "ED25519")) {
        kind = "ed25519";
    } else if (EVP_PKEY_is_a(key, "ED448")) {
        kind = "ed448";
    } else if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS")) {
        kind = "rsa";
    } else if (EVP_PKEY_is_a(key, "EC")) {
        kind = "ecdsa";
    } else if (EVP_PKEY_is_a(key, "DSA")) {
        kind = "dsa";
    } else {
        kind = "unknown";
    }

    if (kind[0] == 'e' && kind[1] == 'd') {
        snprintf(buf, len, "%s", kind);
    } else if (kind[0] == 'u' || EVP_PKEY_get_bits(key) <= 0) {
        snprintf(buf, len, "%s", kind);
    } else {
        snprintf(buf, len, "%s:%d", kind, EVP_PKEY_get_bits(key));
    }

    ERR_clear_error();
    return buf;
}


int
acme_key_spki_pin(EVP_PKEY *key, char *out, size_t len)
{
    unsigned char  *der = NULL;
    int             n, rc;

    if (out == NULL || len < ACME_SPKI_PIN_LEN) {
        return -1;
    }
    out[0] = '\0';
    if (key == NULL) {
        return -1;
    }

    n = i2d_PUBKEY(key, &der);
    if (n <= 0 || der == NULL) {
        return -1;
    }
    rc = acme_spki_pin_der(der, (size_t) n, out, len);
    OPENSSL_free(der);
    return rc;
}

int
acme_spki_pin_der(const unsigned char *der, size_t n, char *out, size_t len)
{
    unsigned char  md[SHA256_DIGEST_LENGTH];

    if (out == NULL || len < ACME_SPKI_PIN_LEN) {
        return -1;
    }
    out[0] = '\0';
    if (der == NULL || n == 0) {
        return -1;
    }
    SHA256(der, n, md);

    /* 32 bytes -> 44 characters and a NUL */
    if (EVP_EncodeBlock((unsigned char *) out, md, (int) sizeof(md)) != 44) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}
