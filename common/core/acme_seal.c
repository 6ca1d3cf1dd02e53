/*
 * AES-256-GCM sealing of private keys for a shared store (acme_seal.h).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "acme_seal.h"
#include "acme_util.h"

#define NONCE_LEN  12
#define TAG_LEN    16


char *
acme_seal(const unsigned char key[ACME_SEAL_KEY_LEN], const char *name,
    const void *plain, size_t len, char *err, size_t errlen)
{
    EVP_CIPHER_CTX  *ctx;
    unsigned char   *buf;
    char            *b, *out;
    int              n, m, ok;

    if (len > (size_t) 0x7fffffff - NONCE_LEN - TAG_LEN) {
        acme_err(err, errlen, "seal: %zu bytes is too much", len);
        return NULL;
    }

    buf = malloc(NONCE_LEN + len + TAG_LEN);
    ctx = EVP_CIPHER_CTX_new();
    if (buf == NULL || ctx == NULL) {
        free(buf);
        EVP_CIPHER_CTX_free(ctx);
        acme_err(err, errlen, "out of memory");
        return NULL;
    }

    ok = RAND_bytes(buf, NONCE_LEN) == 1
         && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL)
            == 1
         && EVP_EncryptInit_ex(ctx, NULL, NULL, key, buf) == 1
         && EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *) name,
                              (int) strlen(name)) == 1
         && EVP_EncryptUpdate(ctx, buf + NONCE_LEN, &n, plain, (int) len)
            == 1
         && EVP_EncryptFinal_ex(ctx, buf + NONCE_LEN + n, &m) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
                                buf + NONCE_LEN + n + m) == 1;
    EVP_CIPHER_CTX_free(ctx);

    if (!ok) {
        OPENSSL_cleanse(buf, NONCE_LEN + len + TAG_LEN);
        free(buf);
        acme_err(err, errlen, "seal: AES-256-GCM failed");
        return NULL;
    }

    b = acme_b64url_encode(buf, NONCE_LEN + len + TAG_LEN);
    free(buf);
    if (b == NULL) {
        acme_err(err, errlen, "out of memory");
        return NULL;
    }
    out = acme_sprintf("%s%s", ACME_SEAL_PREFIX, b);
    free(b);
    if (out == NULL) {
        acme_err(err, errlen, "out of memory");
    }
    return out;
}


int
acme_seal_is_sealed(const void *data, size_t len)
{
    size_t  n = sizeof(ACME_SEAL_PREFIX) - 1;

    return data != NULL && len >= n && memcmp(data, ACME_SEAL_PREFIX, n) == 0;
}


unsigned char *
acme_seal_open(const unsigned char key[ACME_SEAL_KEY_LEN], const char *name,
    const char *sealed, size_t slen, size_t *len, char *err, size_t errlen)
{
    EVP_CIPHER_CTX  *ctx;
    unsigned char   *buf, *out;
    size_t           blen, clen, pre;
    int              n, m, ok;

    *len = 0;
    pre = sizeof(ACME_SEAL_PREFIX) - 1;

    if (!acme_seal_is_sealed(sealed, slen)) {
        acme_err(err, errlen, "\"%s\" is not sealed (no \"%s\")", name,
                 ACME_SEAL_PREFIX);
        return NULL;
    }

    buf = acme_b64url_decode(sealed + pre, slen - pre, &blen);
    if (buf == NULL || blen < NONCE_LEN + TAG_LEN) {
        free(buf);
        acme_err(err, errlen, "\"%s\": a malformed sealed value", name);
        return NULL;
    }
    clen = blen - NONCE_LEN - TAG_LEN;

    out = malloc(clen + 1);
    ctx = EVP_CIPHER_CTX_new();
    if (out == NULL || ctx == NULL) {
        free(buf);
        free(out);
        EVP_CIPHER_CTX_free(ctx);
        acme_err(err, errlen, "out of memory");
        return NULL;
    }

    m = 0;
    ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL)
            == 1
         && EVP_DecryptInit_ex(ctx, NULL, NULL, key, buf) == 1
         && EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *) name,
                              (int) strlen(name)) == 1
         && EVP_DecryptUpdate(ctx, out, &n, buf + NONCE_LEN, (int) clen) == 1
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
                                buf + NONCE_LEN + clen) == 1
         && EVP_DecryptFinal_ex(ctx, out + n, &m) == 1;
    EVP_CIPHER_CTX_free(ctx);
    free(buf);

    if (!ok) {
        OPENSSL_cleanse(out, clen + 1);
        free(out);
        acme_err(err, errlen, "\"%s\" does not open with this key file "
                 "(another key, another name, or altered)", name);
        return NULL;
    }

    out[n + m] = '\0';
    *len = (size_t) (n + m);
    return out;
}


int
acme_seal_key_parse(const void *text, size_t len,
    unsigned char key[ACME_SEAL_KEY_LEN], char *err, size_t errlen)
{
    char           *s;
    unsigned char  *k;
    size_t          klen;

    if (len == ACME_SEAL_KEY_LEN && memchr(text, '\0', len) != NULL) {
        memcpy(key, text, ACME_SEAL_KEY_LEN);
        return 0;
    }

    s = acme_strndup(text, len);
    if (s == NULL) {
        return acme_err(err, errlen, "out of memory");
    }
    k = acme_b64_secret_decode(s, &klen, NULL);
    OPENSSL_cleanse(s, len);
    free(s);

    if (k != NULL && klen == ACME_SEAL_KEY_LEN) {
        memcpy(key, k, ACME_SEAL_KEY_LEN);
        OPENSSL_cleanse(k, klen);
        free(k);
        return 0;
    }

    if (k != NULL) {
        OPENSSL_cleanse(k, klen);
        free(k);
    }

    if (len == ACME_SEAL_KEY_LEN) {
        memcpy(key, text, ACME_SEAL_KEY_LEN);
        return 0;
    }

    return acme_err(err, errlen, "not a 256-bit key: %zu bytes that are "
                    "neither 32 raw bytes nor 32 bytes in base64 (make one "
                    "with \"openssl rand -base64 32\")", len);
}
