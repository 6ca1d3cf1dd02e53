/*
 * JWK, JWK thumbprints and flattened JWS for ACME requests.
 *
 * The JWK text is built by hand rather than through jansson: RFC 7638 fixes
 * its exact bytes (required members only, lexicographic order, no
 * whitespace), and the same text serves as the "jwk" header member.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "acme_jws.h"
#include "acme_key.h"
#include "acme_util.h"

typedef struct {
    const char    *alg;
    const char    *crv;         /* NULL for RSA */
    const EVP_MD  *md;
    size_t         width;       /* EC field size in bytes: r, s, x, y */
} jws_params_t;

static int
jws_params(EVP_PKEY *key, jws_params_t *p)
{
    acme_key_type_t t;

    if (key == NULL) {
        return -1;
    }

    /* RS256 works for RSA keys of any size, e.g. an imported account key */
    if (EVP_PKEY_is_a(key, "RSA")) {
        p->alg = "RS256";
        p->crv = NULL;
        p->md = EVP_sha256();
        p->width = 0;
        return 0;
    }

    if (acme_key_type_of(key, &t) != 0) {
        return -1;
    }

    if (t == ACME_KEY_EC_P256) {
        p->alg = "ES256";
        p->crv = "P-256";
        p->md = EVP_sha256();
        p->width = 32;
        return 0;
    }

    if (t == ACME_KEY_EC_P384) {
        p->alg = "ES384";
        p->crv = "P-384";
        p->md = EVP_sha384();
        p->width = 48;
        return 0;
    }

    if (t == ACME_KEY_EC_P521) {
        p->alg = "ES512";
        p->crv = "P-521";
        p->md = EVP_sha512();
        p->width = 66;
        return 0;
    }

    return -1;
}

const char *
acme_jws_alg(EVP_PKEY *key)
{
    jws_params_t p;

    return jws_params(key, &p) == 0 ? p.alg : NULL;
}

/*
 * base64url of a key parameter: zero-padded to width when width > 0
 * (EC coordinates, RFC 7518 section 6.2.1.2), else minimal big-endian
 * (RSA n and e, section 6.3.1).
 */
static char *
bn_param_b64(EVP_PKEY *key, const char *name, size_t width)
{
    BIGNUM        *bn;
    unsigned char *buf;
    char          *out;
    int            n;

    bn = NULL;
    if (!EVP_PKEY_get_bn_param(key, name, &bn)) {
        ERR_clear_error();
        return NULL;
    }

    out = NULL;
    n = width ? (int) width : BN_num_bytes(bn);
    if (n <= 0) {
        /* a zero value still encodes as one zero octet */
        n = 1;
    }

    buf = malloc((size_t) n);
    if (buf != NULL) {
        if (BN_bn2binpad(bn, buf, n) == n) {
            out = acme_b64url_encode(buf, (size_t) n);
        }
        free(buf);
    }

    BN_free(bn);
    return out;
}

char *
acme_jwk_json(EVP_PKEY *key)
{
    jws_params_t  p;
    char         *a, *b, *out;

    if (jws_params(key, &p) != 0) {
        return NULL;
    }

    out = NULL;

    if (p.crv != NULL) {
        a = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, p.width);
        b = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, p.width);
        if (a != NULL && b != NULL) {
            out = acme_sprintf("{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\","
                               "\"y\":\"%s\"}", p.crv, a, b);
        }

    } else {
        a = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, 0);
        b = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, 0);
        if (a != NULL && b != NULL) {
            out = acme_sprintf("{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
                               a, b);
        }
    }

    free(a);
    free(b);
    return out;
}

char *
acme_jwk_thumbprint(EVP_PKEY *key)
{
    unsigned char  md[EVP_MAX_MD_SIZE];
    unsigned int   mdlen;
    char          *jwk, *out;

    jwk = acme_jwk_json(key);
    if (jwk == NULL) {
        return NULL;
    }

    out = NULL;
    if (EVP_Digest(jwk, strlen(jwk), md, &mdlen, EVP_sha256(), NULL)) {
        out = acme_b64url_encode(md, mdlen);
    }

    free(jwk);
    return out;
}

char *
acme_key_authorization(const char *token, EVP_PKEY *account_key)
{
    char *tp, *out;

    if (token == NULL) {
        return NULL;
    }

    tp = acme_jwk_thumbprint(account_key);
    if (tp == NULL) {
        return NULL;
    }

    out = acme_sprintf("%s.%s", token, tp);
    free(tp);
    return out;
}

/*
 * JSON text of a jansson value into a plain malloc'd string.  json_dumpb
 * writes into our buffer, so this stays correct even if someone installs
 * other allocators with json_set_alloc_funcs.
 */
static char *
json_text(json_t *v)
{
    size_t  n;
    char   *out;

    n = json_dumpb(v, NULL, 0, JSON_COMPACT);
    if (n == 0) {
        return NULL;
    }

    out = malloc(n + 1);
    if (out == NULL) {
        return NULL;
    }

    if (json_dumpb(v, out, n, JSON_COMPACT) != n) {
        free(out);
        return NULL;
    }

    out[n] = '\0';
    return out;
}

static char *
protected_header(EVP_PKEY *key, const jws_params_t *p, const char *kid,
    const char *nonce, const char *url)
{
    json_t       *hdr, *jwk;
    json_error_t  jerr;
    char         *jwk_text, *out;
    int           rc;

    hdr = json_object();
    if (hdr == NULL) {
        return NULL;
    }

    rc = json_object_set_new(hdr, "alg", json_string(p->alg));

    if (kid != NULL) {
        rc |= json_object_set_new(hdr, "kid", json_string(kid));

    } else {
        jwk_text = acme_jwk_json(key);
        jwk = jwk_text ? json_loads(jwk_text, 0, &jerr) : NULL;
        free(jwk_text);
        rc |= json_object_set_new(hdr, "jwk", jwk);
    }

    /* a JWS without a nonce (e.g. an inner EAB-style object) omits it */
    if (nonce != NULL) {
        rc |= json_object_set_new(hdr, "nonce", json_string(nonce));
    }

    rc |= json_object_set_new(hdr, "url", json_string(url));

    out = rc == 0 ? json_text(hdr) : NULL;
    json_decref(hdr);
    return out;
}

/*
 * JWS ECDSA signatures are r || s, each left-padded to the field size
 * (RFC 7518 section 3.4); OpenSSL produces a DER ECDSA-Sig-Value.
 */
static unsigned char *
ecdsa_der_to_raw(const unsigned char *der, size_t der_len, size_t width)
{
    ECDSA_SIG       *sig;
    const BIGNUM    *r, *s;
    const unsigned char *pp;
    unsigned char   *raw;

    if (der_len > LONG_MAX) {
        return NULL;
    }

    pp = der;
    sig = d2i_ECDSA_SIG(NULL, &pp, (long) der_len);
    if (sig == NULL) {
        ERR_clear_error();
        return NULL;
    }

    raw = malloc(2 * width);
    if (raw != NULL) {
        ECDSA_SIG_get0(sig, &r, &s);
        if (BN_bn2binpad(r, raw, (int) width) != (int) width
            || BN_bn2binpad(s, raw + width, (int) width) != (int) width)
        {
            free(raw);
            raw = NULL;
        }
    }

    ECDSA_SIG_free(sig);
    return raw;
}

char *
acme_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce,
    const char *url, const char *payload)
{
    jws_params_t    p;
    EVP_MD_CTX     *ctx;
    char           *hdr, *hdr64, *pay64, *input, *sig64, *out;
    unsigned char  *sig, *raw;
    size_t          siglen;

    if (url == NULL || jws_params(key, &p) != 0) {
        return NULL;
    }

    hdr = NULL;
    hdr64 = NULL;
    pay64 = NULL;
    input = NULL;
    sig = NULL;
    sig64 = NULL;
    out = NULL;
    ctx = NULL;

    hdr = protected_header(key, &p, kid, nonce, url);
    if (hdr == NULL) {
        goto done;
    }

    hdr64 = acme_b64url_encode((const unsigned char *) hdr, strlen(hdr));
    /* POST-as-GET (RFC 8555 section 6.3) signs an empty payload */
    pay64 = payload ? acme_b64url_encode((const unsigned char *) payload,
                                         strlen(payload))
                    : acme_strdup("");
    if (hdr64 == NULL || pay64 == NULL) {
        goto done;
    }

    input = acme_sprintf("%s.%s", hdr64, pay64);
    if (input == NULL) {
        goto done;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL
        || EVP_DigestSignInit(ctx, NULL, p.md, NULL, key) != 1
        || EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *) input,
                          strlen(input)) != 1)
    {
        goto done;
    }

    sig = malloc(siglen);
    if (sig == NULL
        || EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *) input,
                          strlen(input)) != 1)
    {
        goto done;
    }

    if (p.crv != NULL) {
        raw = ecdsa_der_to_raw(sig, siglen, p.width);
        if (raw == NULL) {
            goto done;
        }
        sig64 = acme_b64url_encode(raw, 2 * p.width);
        free(raw);

    } else {
        sig64 = acme_b64url_encode(sig, siglen);
    }

    if (sig64 == NULL) {
        goto done;
    }

    /* every member is base64url text: nothing needs JSON escaping */
    out = acme_sprintf("{\"protected\":\"%s\",\"payload\":\"%s\","
                       "\"signature\":\"%s\"}", hdr64, pay64, sig64);

done:

    if (out == NULL) {
        ERR_clear_error();
    }

    EVP_MD_CTX_free(ctx);
    free(hdr);
    free(hdr64);
    free(pay64);
    free(input);
    free(sig);
    free(sig64);
    return out;
}
