#include <stdlib.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include "unit.h"
#include "acme_jws.h"
#include "acme_key.h"
#include "acme_util.h"

/* RFC 7638 section 3.1 */
static const char rfc7638_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJEC"
    "PebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

static BIGNUM *
b64_bn(const char *s)
{
    size_t n;
    unsigned char *d = acme_b64url_decode(s, strlen(s), &n);
    BIGNUM *bn = d ? BN_bin2bn(d, (int) n, NULL) : NULL;

    free(d);
    return bn;
}

/* A public-only RSA key from base64url n and e. */
static EVP_PKEY *
rsa_from_jwk(const char *n64, const char *e64)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    BIGNUM *n = b64_bn(n64), *e = b64_bn(e64);

    if (bld && n && e
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)
        && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL
        && (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) != NULL
        && EVP_PKEY_fromdata_init(ctx) == 1)
    {
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return key;
}

/* A public-only EC key from a JWK's crv, x, y (x and y must be full width). */
static EVP_PKEY *
ec_from_jwk(const char *crv, const char *x64, const char *y64)
{
    unsigned char pt[1 + 2 * 66];
    unsigned char *x, *y;
    size_t xl = 0, yl = 0;
    const char *group = strcmp(crv, "P-256") == 0 ? "P-256"
                        : strcmp(crv, "P-384") == 0 ? "P-384" : "P-521";
    size_t w = strcmp(crv, "P-256") == 0 ? 32
               : strcmp(crv, "P-384") == 0 ? 48 : 66;
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx;
    EVP_PKEY *key = NULL;

    x = acme_b64url_decode(x64, strlen(x64), &xl);
    y = acme_b64url_decode(y64, strlen(y64), &yl);
    if (x && y && xl == w && yl == w) {
        pt[0] = 0x04;
        memcpy(pt + 1, x, w);
        memcpy(pt + 1 + w, y, w);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                     (char *) group, 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                      pt, 1 + 2 * w);
        params[2] = OSSL_PARAM_construct_end();
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (ctx && EVP_PKEY_fromdata_init(ctx) == 1) {
            EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
        }
        EVP_PKEY_CTX_free(ctx);
    }
    free(x);
    free(y);
    return key;
}

UNIT_TEST(jwk_thumbprint_rfc7638)
{
    EVP_PKEY *key = rsa_from_jwk(rfc7638_n, "AQAB");
    char *jwk, *tp, *ka;

    CHECK(key != NULL);
    jwk = acme_jwk_json(key);
    CHECK(jwk != NULL && strncmp(jwk, "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"", 29) == 0);
    CHECK(jwk != NULL && strstr(jwk, rfc7638_n) == jwk + 29);
    tp = acme_jwk_thumbprint(key);
    CHECK_STR(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    CHECK_STR(acme_jws_alg(key), "RS256");

    ka = acme_key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", key);
    CHECK_STR(ka, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                  "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    free(ka);
    free(tp);
    free(jwk);
    EVP_PKEY_free(key);
}

/* The JWK of key, parsed, must rebuild the same public key. */
static void
check_ec_jwk(EVP_PKEY *key, const char *crv, size_t coord_chars)
{
    char *jwk = acme_jwk_json(key);
    json_t *j;
    const char *x = NULL, *y = NULL, *c = NULL, *kty = NULL;
    EVP_PKEY *pub;
    char expect[512];

    CHECK(jwk != NULL);
    if (jwk == NULL) {
        return;
    }

    j = json_loads(jwk, 0, NULL);
    CHECK(j != NULL && json_object_size(j) == 4);
    CHECK(json_unpack(j, "{s:s, s:s, s:s, s:s}", "crv", &c, "kty", &kty,
                      "x", &x, "y", &y) == 0);
    CHECK_STR(c, crv);
    CHECK_STR(kty, "EC");
    CHECK(x != NULL && strlen(x) == coord_chars);
    CHECK(y != NULL && strlen(y) == coord_chars);

    /* exact canonical text: lexicographic members, no whitespace */
    snprintf(expect, sizeof(expect), "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
             crv, x ? x : "", y ? y : "");
    CHECK_STR(jwk, expect);

    pub = (x && y) ? ec_from_jwk(crv, x, y) : NULL;
    CHECK(pub != NULL && EVP_PKEY_eq(pub, key) == 1);

    EVP_PKEY_free(pub);
    json_decref(j);
    free(jwk);
}

UNIT_TEST(jwk_ec_canonical)
{
    EVP_PKEY *k256 = acme_key_generate(ACME_KEY_EC_P256);
    EVP_PKEY *k384 = acme_key_generate(ACME_KEY_EC_P384);
    char *tp;

    check_ec_jwk(k256, "P-256", 43);
    check_ec_jwk(k384, "P-384", 64);
    CHECK_STR(acme_jws_alg(k256), "ES256");
    CHECK_STR(acme_jws_alg(k384), "ES384");

    tp = acme_jwk_thumbprint(k256);
    CHECK(tp != NULL && strlen(tp) == 43);
    free(tp);

    EVP_PKEY_free(k256);
    EVP_PKEY_free(k384);
}

/*
 * A coordinate with a leading zero octet (about 1 key in 128) must still
 * encode as 32 octets.  The search is bounded; missing 4000 times in a row
 * has probability below 1e-13.
 */
UNIT_TEST(jwk_ec_zero_padding)
{
    EVP_PKEY *key = NULL;
    BIGNUM *x = NULL, *y = NULL;
    int i, found = 0;

    for (i = 0; i < 4000 && !found; i++) {
        key = acme_key_generate(ACME_KEY_EC_P256);
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x)
            && EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y)
            && (BN_num_bytes(x) < 32 || BN_num_bytes(y) < 32))
        {
            found = 1;
            check_ec_jwk(key, "P-256", 43);
        }
        BN_free(x);
        BN_free(y);
        x = y = NULL;
        EVP_PKEY_free(key);
    }
    CHECK(found);
}

/* Verifies jws as an ACME server would, returning the protected header. */
static json_t *
verify_jws(const char *jws, EVP_PKEY *key, const char *expect_payload)
{
    json_t *j, *hdr = NULL;
    const char *p64 = NULL, *pl64 = NULL, *s64 = NULL, *alg = NULL;
    unsigned char *hdrb = NULL, *plb = NULL, *sig = NULL, *der = NULL, *dp;
    size_t hl, pl, sl, w = 0;
    int dl, ok = 0;
    const EVP_MD *md;
    EVP_MD_CTX *ctx;
    char *input;
    ECDSA_SIG *es;

    j = json_loads(jws, JSON_REJECT_DUPLICATES, NULL);
    CHECK(j != NULL && json_object_size(j) == 3);
    if (json_unpack(j, "{s:s, s:s, s:s}", "protected", &p64, "payload", &pl64,
                    "signature", &s64) != 0)
    {
        CHECK(!"JWS members");
        json_decref(j);
        return NULL;
    }

    hdrb = acme_b64url_decode(p64, strlen(p64), &hl);
    plb = acme_b64url_decode(pl64, strlen(pl64), &pl);
    sig = acme_b64url_decode(s64, strlen(s64), &sl);
    CHECK(hdrb && plb && sig);
    CHECK(plb && pl == strlen(expect_payload) && memcmp(plb, expect_payload, pl) == 0);

    hdr = hdrb ? json_loadb((const char *) hdrb, hl, JSON_REJECT_DUPLICATES, NULL) : NULL;
    CHECK(hdr != NULL);
    if (hdr == NULL || json_unpack(hdr, "{s:s}", "alg", &alg) != 0) {
        goto done;
    }
    CHECK_STR(alg, acme_jws_alg(key));

    md = strcmp(alg, "ES384") == 0 ? EVP_sha384()
         : strcmp(alg, "ES512") == 0 ? EVP_sha512() : EVP_sha256();
    if (strcmp(alg, "ES256") == 0) w = 32;
    if (strcmp(alg, "ES384") == 0) w = 48;
    if (strcmp(alg, "ES512") == 0) w = 66;

    if (w) {
        /* fixed-width r || s back into DER for OpenSSL */
        CHECK_INT(sl, 2 * w);
        es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(sig, (int) w, NULL), BN_bin2bn(sig + w, (int) w, NULL));
        dl = i2d_ECDSA_SIG(es, NULL);
        der = malloc((size_t) dl);
        dp = der;
        i2d_ECDSA_SIG(es, &dp);
        ECDSA_SIG_free(es);
        free(sig);
        sig = der;
        sl = (size_t) dl;
    } else {
        CHECK_INT(sl, (size_t) EVP_PKEY_get_size(key));
    }

    input = acme_sprintf("%s.%s", p64, pl64);
    ctx = EVP_MD_CTX_new();
    ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1
         && EVP_DigestVerify(ctx, sig, sl, (unsigned char *) input, strlen(input)) == 1;
    CHECK(ok);
    EVP_MD_CTX_free(ctx);

    /* negative control: a changed signing input must not verify */
    input[strlen(input) - 1] ^= 1;
    ctx = EVP_MD_CTX_new();
    CHECK(EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1
          && EVP_DigestVerify(ctx, sig, sl, (unsigned char *) input, strlen(input)) != 1);
    EVP_MD_CTX_free(ctx);
    free(input);

done:
    free(hdrb);
    free(plb);
    free(sig);
    json_decref(j);
    if (!ok) {
        json_decref(hdr);
        return NULL;
    }
    return hdr;
}

static void
check_jws(EVP_PKEY *key)
{
    static const char url[] = "https://127.0.0.1:14000/my-account/1?x=\"q\"";
    const char *payload = "{\"termsOfServiceAgreed\":true}";
    json_t *hdr, *jwk_expect;
    char *jws, *jwk_text;
    const char *s;

    /* with jwk (newAccount) */
    jws = acme_jws_sign(key, NULL, "nonce-1", url, payload);
    CHECK(jws != NULL);
    hdr = jws ? verify_jws(jws, key, payload) : NULL;
    CHECK(hdr != NULL);
    if (hdr) {
        CHECK_INT(json_object_size(hdr), 4);
        CHECK_STR(json_string_value(json_object_get(hdr, "nonce")), "nonce-1");
        CHECK_STR(json_string_value(json_object_get(hdr, "url")), url);
        CHECK(json_object_get(hdr, "kid") == NULL);
        jwk_text = acme_jwk_json(key);
        jwk_expect = json_loads(jwk_text, 0, NULL);
        CHECK(json_equal(json_object_get(hdr, "jwk"), jwk_expect));
        json_decref(jwk_expect);
        free(jwk_text);
        json_decref(hdr);
    }
    free(jws);

    /* with kid, POST-as-GET */
    jws = acme_jws_sign(key, "https://127.0.0.1:14000/my-account/1", "nonce-2", url, NULL);
    CHECK(jws != NULL);
    CHECK(jws != NULL && strstr(jws, "\"payload\":\"\"") != NULL);
    hdr = jws ? verify_jws(jws, key, "") : NULL;
    CHECK(hdr != NULL);
    if (hdr) {
        CHECK_INT(json_object_size(hdr), 4);
        s = json_string_value(json_object_get(hdr, "kid"));
        CHECK_STR(s, "https://127.0.0.1:14000/my-account/1");
        CHECK_STR(json_string_value(json_object_get(hdr, "nonce")), "nonce-2");
        CHECK(json_object_get(hdr, "jwk") == NULL);
        json_decref(hdr);
    }
    free(jws);

    /* empty-object payload (e.g. challenge response) is not POST-as-GET */
    jws = acme_jws_sign(key, "kid", "n3", url, "{}");
    hdr = jws ? verify_jws(jws, key, "{}") : NULL;
    CHECK(hdr != NULL);
    json_decref(hdr);
    free(jws);
}

UNIT_TEST(jws_sign_es256)
{
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P256);
    int i;

    /* several signatures: r or s with leading zeros must keep full width */
    for (i = 0; i < 20; i++) {
        check_jws(key);
    }
    EVP_PKEY_free(key);
}

UNIT_TEST(jws_sign_es384)
{
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P384);

    check_jws(key);
    EVP_PKEY_free(key);
}

/* ES512 (P-521, nginx-acme's ecdsa:521): 66-octet r, s, x and y */
UNIT_TEST(jws_sign_es512)
{
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P521);
    acme_key_type_t t;
    int i;

    CHECK(key != NULL);
    CHECK(acme_key_type_parse("ecdsa:521", 9, &t) == 0 && t == ACME_KEY_EC_P521);
    CHECK_STR(acme_key_type_name(ACME_KEY_EC_P521), "ecdsa:521");
    CHECK(acme_key_type_of(key, &t) == 0 && t == ACME_KEY_EC_P521);
    CHECK_STR(acme_jws_alg(key), "ES512");
    check_ec_jwk(key, "P-521", 88);

    for (i = 0; i < 10; i++) {
        check_jws(key);
    }
    EVP_PKEY_free(key);
}

UNIT_TEST(jws_sign_rs256)
{
    EVP_PKEY *key = acme_key_generate(ACME_KEY_RSA_2048);

    check_jws(key);
    EVP_PKEY_free(key);
}

UNIT_TEST(jws_unsupported_key)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

    CHECK(acme_jws_alg(key) == NULL);
    CHECK(acme_jwk_json(key) == NULL);
    CHECK(acme_jwk_thumbprint(key) == NULL);
    CHECK(acme_jws_sign(key, NULL, "n", "https://x/", "{}") == NULL);
    CHECK(acme_jws_alg(NULL) == NULL);
    EVP_PKEY_free(key);
}
