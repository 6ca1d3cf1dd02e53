#include <stdlib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "unit.h"
#include "acme_key.h"

UNIT_TEST(key_type_parse_good)
{
    static const struct { const char *spec; acme_key_type_t t; } good[] = {
        { "ecdsa:256", ACME_KEY_EC_P256 }, { "ecdsa:384", ACME_KEY_EC_P384 },
        { "rsa:2048", ACME_KEY_RSA_2048 }, { "rsa:3072", ACME_KEY_RSA_3072 },
        { "rsa:4096", ACME_KEY_RSA_4096 }, { "ecdsa", ACME_KEY_EC_P256 },
        { "rsa", ACME_KEY_RSA_2048 },
    };
    acme_key_type_t t;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        t = (acme_key_type_t) -1;
        CHECK_INT(acme_key_type_parse(good[i].spec, strlen(good[i].spec), &t), 0);
        CHECK_INT(t, good[i].t);
    }

    /* len bounds the spec: a directive value need not be NUL-terminated */
    CHECK_INT(acme_key_type_parse("rsa:4096;junk", 8, &t), 0);
    CHECK_INT(t, ACME_KEY_RSA_4096);
    CHECK_INT(acme_key_type_parse("ecdsa:384", 5, &t), 0);
    CHECK_INT(t, ACME_KEY_EC_P256);

    /* canonical names round-trip */
    for (t = ACME_KEY_EC_P256; t <= ACME_KEY_RSA_4096; t++) {
        acme_key_type_t back;
        const char *name = acme_key_type_name(t);

        CHECK_INT(acme_key_type_parse(name, strlen(name), &back), 0);
        CHECK_INT(back, t);
    }
    CHECK_STR(acme_key_type_name(ACME_KEY_DEFAULT), "ecdsa:256");
    CHECK_STR(acme_key_type_name(ACME_KEY_RSA_3072), "rsa:3072");
}

UNIT_TEST(key_type_parse_bad)
{
    static const char *bad[] = {
        "", "ecdsa:", "ecdsa:512", "ecdsa:2560", "rsa:1024", "rsa:2048x",
        "rsa:", "dsa", "ed25519", " rsa", "rsa ", "ecdsa256", "ECDSA:256",
    };
    acme_key_type_t t = ACME_KEY_RSA_3072;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (acme_key_type_parse(bad[i], strlen(bad[i]), &t) != -1) {
            CHECK(!"bad spec accepted");
            fprintf(stderr, "  spec \"%s\"\n", bad[i]);
        }
    }
    CHECK_INT(t, ACME_KEY_RSA_3072);        /* untouched on failure */
    CHECK_INT(acme_key_type_parse(NULL, 0, &t), -1);
}

static void
check_generated(acme_key_type_t type)
{
    EVP_PKEY *key, *back;
    acme_key_type_t t;
    char *pem, *pem2;
    size_t len = 0, len2 = 0;

    key = acme_key_generate(type);
    CHECK(key != NULL);
    if (key == NULL) {
        return;
    }

    CHECK_INT(acme_key_type_of(key, &t), 0);
    CHECK_INT(t, type);

    pem = acme_key_to_pem(key, &len);
    CHECK(pem != NULL);
    if (pem != NULL) {
        CHECK_INT(strlen(pem), len);
        CHECK(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);

        back = acme_key_from_pem(pem, len);
        CHECK(back != NULL);
        CHECK_INT(EVP_PKEY_eq(key, back), 1);
        CHECK_INT(acme_key_type_of(back, &t), 0);
        CHECK_INT(t, type);

        /* PKCS#8 output is deterministic for the same key */
        pem2 = acme_key_to_pem(back, &len2);
        CHECK(pem2 != NULL && len2 == len && memcmp(pem, pem2, len) == 0);
        free(pem2);
        EVP_PKEY_free(back);
        free(pem);
    }

    EVP_PKEY_free(key);
}

/* a placeholder is of its certificate's kind (OpenSSL replaces a context's
 * certificate of the same kind only) and quick to make */
UNIT_TEST(key_placeholder_type)
{
    CHECK_INT(acme_key_placeholder_type(ACME_KEY_EC_P256), ACME_KEY_EC_P256);
    CHECK_INT(acme_key_placeholder_type(ACME_KEY_EC_P384), ACME_KEY_EC_P256);
    CHECK_INT(acme_key_placeholder_type(ACME_KEY_EC_P521), ACME_KEY_EC_P256);
    CHECK_INT(acme_key_placeholder_type(ACME_KEY_RSA_2048), ACME_KEY_RSA_2048);
    CHECK_INT(acme_key_placeholder_type(ACME_KEY_RSA_3072), ACME_KEY_RSA_2048);
    CHECK_INT(acme_key_placeholder_type(ACME_KEY_RSA_4096), ACME_KEY_RSA_2048);
}

UNIT_TEST(key_generate_ec_roundtrip)
{
    check_generated(ACME_KEY_EC_P256);
    check_generated(ACME_KEY_EC_P384);
}

UNIT_TEST(key_generate_rsa2048_roundtrip)
{
    check_generated(ACME_KEY_RSA_2048);
}

/* the one RSA-4096 generation of the test suite (takes seconds) */
UNIT_TEST(key_generate_rsa4096)
{
    check_generated(ACME_KEY_RSA_4096);
}

/* PEM text of key in the traditional ("EC PRIVATE KEY") format. */
static char *
traditional_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL)) {
        n = BIO_get_mem_data(bio, &data);
        out = strndup(data, (size_t) n);
    }
    BIO_free(bio);
    return out;
}

UNIT_TEST(key_from_pem_traditional_and_bundle)
{
    EVP_PKEY *key, *back;
    char *pem, *bundle;
    acme_key_type_t t;

    key = acme_key_generate(ACME_KEY_EC_P384);
    pem = traditional_pem(key);
    CHECK(pem != NULL && strstr(pem, "BEGIN EC PRIVATE KEY") != NULL);

    back = acme_key_from_pem(pem, strlen(pem));
    CHECK(back != NULL && EVP_PKEY_eq(key, back) == 1);
    CHECK(acme_key_type_of(back, &t) == 0 && t == ACME_KEY_EC_P384);
    EVP_PKEY_free(back);

    /* text around the block (as in a bundle) is skipped */
    bundle = malloc(strlen(pem) + 64);
    sprintf(bundle, "leading text\n%strailing text\n", pem);
    back = acme_key_from_pem(bundle, strlen(bundle));
    CHECK(back != NULL && EVP_PKEY_eq(key, back) == 1);
    EVP_PKEY_free(back);

    free(bundle);
    free(pem);
    EVP_PKEY_free(key);
}

UNIT_TEST(key_from_pem_bad)
{
    static const char garbage[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    static const char truncated_hdr[] = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEG\n";
    EVP_PKEY *key;
    BIO *bio;
    char *data, *pem;
    long n;

    CHECK(acme_key_from_pem(NULL, 0) == NULL);
    CHECK(acme_key_from_pem("", 0) == NULL);
    CHECK(acme_key_from_pem("hello", 5) == NULL);
    CHECK(acme_key_from_pem(garbage, strlen(garbage)) == NULL);
    CHECK(acme_key_from_pem(truncated_hdr, strlen(truncated_hdr)) == NULL);

    /* an encrypted key fails instead of prompting for a passphrase */
    key = acme_key_generate(ACME_KEY_EC_P256);
    bio = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_128_cbc(), "secret", 6,
                                        NULL, NULL) == 1);
    n = BIO_get_mem_data(bio, &data);
    CHECK(acme_key_from_pem(data, (size_t) n) == NULL);
    BIO_free(bio);

    /* a length shorter than the text cuts the block: no key */
    pem = acme_key_to_pem(key, NULL);
    CHECK(pem != NULL && acme_key_from_pem(pem, strlen(pem) - 30) == NULL);
    free(pem);

    EVP_PKEY_free(key);
    CHECK(acme_key_to_pem(NULL, NULL) == NULL);
}

UNIT_TEST(key_type_of_unsupported)
{
    EVP_PKEY *key;
    acme_key_type_t t = ACME_KEY_RSA_3072;

    CHECK_INT(acme_key_type_of(NULL, &t), -1);

    key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    CHECK(key != NULL);
    CHECK_INT(acme_key_type_of(key, &t), -1);
    EVP_PKEY_free(key);

    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    CHECK(key != NULL);
    CHECK_INT(acme_key_type_of(key, &t), -1);
    EVP_PKEY_free(key);

    key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
    CHECK(key != NULL);
    CHECK_INT(acme_key_type_of(key, &t), -1);
    EVP_PKEY_free(key);

    CHECK_INT(t, ACME_KEY_RSA_3072);
}

/* The DER of a PKCS#8 key, decoded with its algorithm's decoder only (and
 * any other algorithm with all of them): the same key back; bad DER none. */
static void
check_pkcs8_der(EVP_PKEY *key)
{
    unsigned char        *der = NULL;
    EVP_PKEY             *back;
    PKCS8_PRIV_KEY_INFO  *p8;
    int                   n;

    CHECK(key != NULL);
    if (key == NULL) {
        return;
    }
    p8 = EVP_PKEY2PKCS8(key);
    n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;
    PKCS8_PRIV_KEY_INFO_free(p8);
    CHECK(n > 0 && der != NULL);
    if (n <= 0 || der == NULL) {
        return;
    }
    back = acme_key_from_pkcs8_der(der, (size_t) n);
    CHECK(back != NULL && EVP_PKEY_eq(key, back) == 1);
    EVP_PKEY_free(back);

    /* truncated, or a byte changed in the key: nothing */
    CHECK(acme_key_from_pkcs8_der(der, (size_t) n - 1) == NULL);
    CHECK(acme_key_from_pkcs8_der(der, 0) == NULL);
    CHECK(acme_key_from_pkcs8_der(NULL, 10) == NULL);
    OPENSSL_free(der);
}

UNIT_TEST(key_from_pkcs8_der)
{
    EVP_PKEY  *key;

    key = acme_key_generate(ACME_KEY_EC_P256);
    check_pkcs8_der(key);
    EVP_PKEY_free(key);
    key = acme_key_generate(ACME_KEY_EC_P521);
    check_pkcs8_der(key);
    EVP_PKEY_free(key);
    key = acme_key_generate(ACME_KEY_RSA_2048);
    check_pkcs8_der(key);
    EVP_PKEY_free(key);
    key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    check_pkcs8_der(key);
    EVP_PKEY_free(key);
    /* no decoder of its own in the list: all of them */
    key = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    check_pkcs8_der(key);
    EVP_PKEY_free(key);
}


/*
 * The SPKI pin (RFC 7469 section 2.4) against a fixed vector, computed with
 *   openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary | base64
 */
UNIT_TEST(key_spki_pin)
{
    static const char pem[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgdVNXKDVZfe3/vhjp\n"
        "JLn/L6V68hUpyMjS4U0qRjx+GJ+hRANCAARvS9NMOQZLBKbvlNmrfmxND3cOw5M6\n"
        "DCfpWY4FhKmQZRr/D4JKrlfKPWgBeW75ucPyTLOYzbUXH02dHDSeA0Xa\n"
        "-----END PRIVATE KEY-----\n";
    EVP_PKEY  *k;
    char       pin[ACME_SPKI_PIN_LEN], small[8];

    k = acme_key_from_pem(pem, sizeof(pem) - 1);
    CHECK(k != NULL);
    CHECK_INT(acme_key_spki_pin(k, pin, sizeof(pin)), 0);
    CHECK_STR(pin, "nYz5bqNHLNnzSaTxmxN1p9ypfUdvI+c9/r5DW0JLmlM=");

    /* no key, or no room: -1 and "" */
    CHECK_INT(acme_key_spki_pin(NULL, pin, sizeof(pin)), -1);
    CHECK_STR(pin, "");
    CHECK_INT(acme_key_spki_pin(k, small, sizeof(small)), -1);
    EVP_PKEY_free(k);
}
