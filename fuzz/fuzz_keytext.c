/*
 * Key material read from files: BIND key text (acme_tsig_key_from_bind),
 * TSIG secrets (acme_tsig_key_init), EAB MAC keys
 * (acme_eab_mac_key_decode) and pasted base64 secrets
 * (acme_b64_secret_decode).  The input is the file's text; for
 * acme_tsig_key_init its first three lines are name, algorithm, secret.
 * Properties: error messages never contain the secret text.
 */
#include <stdio.h>

#include <openssl/crypto.h>

#include "acme_dns.h"
#include "acme_eab.h"
#include "acme_util.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acme_tsig_key_t  key;
    char            *s, *name, *alg, *secret, *nl, err[ACME_ERRLEN];
    unsigned char   *k;
    size_t           len, tlen;

    s = fuzz_cstr(data, size);

    memset(&key, 0, sizeof(key));
    err[0] = '\0';
    if (acme_tsig_key_from_bind(&key, s, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(key.name != NULL && key.alg != NULL && key.secret_len > 0);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    acme_tsig_key_clear(&key);
    acme_tsig_key_clear(&key);

    k = acme_eab_mac_key_decode(s, &len, err, sizeof(err));
    acme_eab_mac_key_free(k, len);

    k = acme_b64_secret_decode(s, &len, &tlen);
    if (k != NULL) {
        FUZZ_ASSERT(tlen <= size);
        OPENSSL_cleanse(k, len);
        free(k);
    }

    /* name \n alg \n secret */
    name = s;
    alg = NULL;
    secret = NULL;
    if ((nl = strchr(name, '\n')) != NULL) {
        *nl = '\0';
        alg = nl + 1;
        if ((nl = strchr(alg, '\n')) != NULL) {
            *nl = '\0';
            secret = nl + 1;
        }
    }
    if (secret != NULL) {
        memset(&key, 0, sizeof(key));
        err[0] = '\0';
        if (acme_tsig_key_init(&key, name, *alg ? alg : NULL, secret, err,
                               sizeof(err)) != 0)
        {
            FUZZ_ASSERT(err[0] != '\0');
        }
        acme_tsig_key_clear(&key);

        /* errors never show the secret (the name is echoed: a fixed one;
         * short secrets or ones with spaces can be words of a message) */
        memset(&key, 0, sizeof(key));
        err[0] = '\0';
        if (acme_tsig_key_init(&key, "k", NULL, secret, err, sizeof(err))
            != 0)
        {
            FUZZ_ASSERT(err[0] != '\0');
            FUZZ_ASSERT(strlen(secret) < 16 || strchr(secret, ' ') != NULL
                        || strstr(err, secret) == NULL);
        }
        acme_tsig_key_clear(&key);
    }

    free(s);
    return 0;
}
