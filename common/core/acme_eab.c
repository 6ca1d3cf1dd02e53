/*
 * External Account Binding JWS (RFC 8555 section 7.3.4) and MAC key decoding
 * (reading the key from a file: io/acme_eab_file.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "acme_eab.h"
#include "acme_jws.h"
#include "acme_util.h"

static const struct {
    const char  *jws;
    const char  *digest;
} eab_algs[] = {
    { "HS256", "SHA256" },
    { "HS384", "SHA384" },
    { "HS512", "SHA512" },
};

static const char *
eab_digest(const char *alg)
{
    size_t  i;

    for (i = 0; i < sizeof(eab_algs) / sizeof(eab_algs[0]); i++) {
        if (strcmp(alg, eab_algs[i].jws) == 0) {
            return eab_algs[i].digest;
        }
    }
    return NULL;
}

/* HMAC through EVP_MAC (OpenSSL 3); out must hold EVP_MAX_MD_SIZE bytes. */
static int
eab_hmac(const char *digest, const unsigned char *key, size_t keylen,
    const unsigned char *data, size_t len, unsigned char *out, size_t *outlen)
{
    EVP_MAC      *mac;
    EVP_MAC_CTX  *ctx;
    OSSL_PARAM    params[2];
    int           ok;

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) digest, 0);
    params[1] = OSSL_PARAM_construct_end();

    ok = ctx != NULL
         && EVP_MAC_init(ctx, key, keylen, params) == 1
         && EVP_MAC_update(ctx, data, len) == 1
         && EVP_MAC_final(ctx, out, outlen, EVP_MAX_MD_SIZE) == 1;

    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (!ok) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

char *
acme_eab_jws(EVP_PKEY *account_key, const char *kid,
    const unsigned char *mac_key, size_t mac_key_len, const char *alg,
    const char *new_account_url, char *err, size_t errlen)
{
    json_t         *hdr;
    const char     *digest;
    char           *hdr_text, *jwk, *hdr64, *pay64, *input, *sig64, *out;
    unsigned char   mac[EVP_MAX_MD_SIZE];
    size_t          maclen;
    int             rc;

    if (alg == NULL) {
        alg = "HS256";
    }

    digest = eab_digest(alg);
    if (digest == NULL) {
        acme_err(err, errlen, "external account binding: unsupported MAC "
                 "algorithm \"%s\" (HS256, HS384 or HS512)", alg);
        return NULL;
    }
    if (kid == NULL || kid[0] == '\0') {
        acme_err(err, errlen, "external account binding: no key identifier "
                 "(kid) given");
        return NULL;
    }
    if (mac_key == NULL || mac_key_len == 0) {
        acme_err(err, errlen, "external account binding: empty MAC key");
        return NULL;
    }
    if (new_account_url == NULL || new_account_url[0] == '\0') {
        acme_err(err, errlen, "external account binding: no newAccount URL");
        return NULL;
    }

    jwk = account_key ? acme_jwk_json(account_key) : NULL;
    if (jwk == NULL) {
        acme_err(err, errlen, "external account binding: the account key "
                 "has no JWK form (EC P-256/P-384 or RSA expected)");
        return NULL;
    }

    out = NULL;
    hdr_text = hdr64 = pay64 = input = sig64 = NULL;

    /* jansson escapes kid and url, which come from configuration */
    hdr = json_object();
    rc = hdr ? 0 : -1;
    if (hdr != NULL) {
        rc |= json_object_set_new(hdr, "alg", json_string(alg));
        rc |= json_object_set_new(hdr, "kid", json_string(kid));
        rc |= json_object_set_new(hdr, "url", json_string(new_account_url));
    }
    if (rc == 0) {
        hdr_text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    json_decref(hdr);
    if (hdr_text == NULL) {
        acme_err(err, errlen, "external account binding: kid or URL is not "
                 "valid UTF-8, or out of memory");
        goto done;
    }

    hdr64 = acme_b64url_encode((const unsigned char *) hdr_text,
                               strlen(hdr_text));
    pay64 = acme_b64url_encode((const unsigned char *) jwk, strlen(jwk));
    input = (hdr64 && pay64) ? acme_sprintf("%s.%s", hdr64, pay64) : NULL;
    if (input == NULL) {
        acme_err(err, errlen, "external account binding: out of memory");
        goto done;
    }

    if (eab_hmac(digest, mac_key, mac_key_len, (unsigned char *) input,
                 strlen(input), mac, &maclen) != 0)
    {
        acme_err(err, errlen, "external account binding: HMAC-%s failed",
                 digest);
        goto done;
    }

    sig64 = acme_b64url_encode(mac, maclen);
    OPENSSL_cleanse(mac, sizeof(mac));
    if (sig64 == NULL) {
        acme_err(err, errlen, "external account binding: out of memory");
        goto done;
    }

    /* all members are base64url: nothing to escape */
    out = acme_sprintf("{\"protected\":\"%s\",\"payload\":\"%s\","
                       "\"signature\":\"%s\"}", hdr64, pay64, sig64);
    if (out == NULL) {
        acme_err(err, errlen, "external account binding: out of memory");
    }

done:

    free(jwk);
    free(hdr_text);
    free(hdr64);
    free(pay64);
    free(input);
    free(sig64);
    return out;
}

unsigned char *
acme_eab_mac_key_decode(const char *text, size_t *len, char *err,
    size_t errlen)
{
    unsigned char  *key;
    size_t          n;

    if (text == NULL) {
        acme_err(err, errlen, "external account binding: no MAC key given");
        return NULL;
    }

    key = acme_b64_secret_decode(text, len, &n);

    if (n == 0) {
        acme_eab_mac_key_free(key, key ? *len : 0);
        acme_err(err, errlen, "external account binding: empty MAC key");
        return NULL;
    }

    if (key == NULL) {
        /* the key itself is never echoed, only its length */
        acme_err(err, errlen, "external account binding: the MAC key (%zu "
                 "characters) is not valid base64url", n);
        return NULL;
    }

    if (*len == 0) {
        acme_eab_mac_key_free(key, 0);
        acme_err(err, errlen, "external account binding: empty MAC key");
        return NULL;
    }

    return key;
}

int
acme_eab_conf(const char *kid, const char *alg, const char **alg_out,
    char *err, size_t errlen)
{
    size_t  i, n;

    n = kid ? strlen(kid) : 0;
    if (n == 0) {
        return acme_err(err, errlen, "empty key identifier (kid)");
    }
    for (i = 0; i < n; i++) {
        if (kid[i] < 0x21 || kid[i] > 0x7e || kid[i] == '"'
            || kid[i] == '\\')
        {
            break;
        }
    }
    if (i < n || n > 256) {
        return acme_err(err, errlen, "invalid key identifier (kid) \"%.64s\" "
                        "(printable ASCII without quotes or backslashes)",
                        i < n ? "..." : kid);
    }

    if (alg == NULL) {
        alg = "HS256";
    }
    for (i = 0; i < sizeof(eab_algs) / sizeof(eab_algs[0]); i++) {
        if (strcasecmp(alg, eab_algs[i].jws) == 0) {
            *alg_out = eab_algs[i].jws;
            return 0;
        }
    }
    return acme_err(err, errlen, "unknown MAC algorithm '%.64s' (HS256, "
                    "HS384 or HS512)", alg);
}

void
acme_eab_mac_key_free(unsigned char *key, size_t len)
{
    if (key != NULL) {
        OPENSSL_cleanse(key, len);
        free(key);
    }
}


void
acme_eab_conf_clear(acme_eab_conf_t *e)
{
    acme_eab_mac_key_free(e->key, e->key_len);
    memset(e, 0, sizeof(*e));
}
