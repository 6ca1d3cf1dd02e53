/*
 * PEM as read from the store and from configured files: certificate
 * bundles (acme_bundle_parse: key + chain, leaf first), private keys
 * (acme_key_from_pem) and certificate inspection
 * (acme_cert_info_from_pem).  The input is the file's text.  Properties:
 * a parsed bundle has a leaf, and its key matches it.
 */
#include <stdio.h>

#include <openssl/x509.h>

#include "acme_cert.h"
#include "acme_key.h"
#include "acme_util.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EVP_PKEY          *key;
    X509              *leaf;
    STACK_OF(X509)    *chain;
    acme_cert_info_t   info;
    acme_key_type_t    kt;
    char               err[ACME_ERRLEN];
    size_t             i;

    key = NULL;
    leaf = NULL;
    chain = NULL;
    err[0] = '\0';
    if (acme_bundle_parse((const char *) data, size, &key, &leaf, &chain, err,
                          sizeof(err)) == 0)
    {
        FUZZ_ASSERT(leaf != NULL);
        if (key != NULL) {
            FUZZ_ASSERT(X509_check_private_key(leaf, key) == 1);
        }
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    EVP_PKEY_free(key);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);

    key = acme_key_from_pem((const char *) data, size);
    if (key != NULL) {
        (void) acme_key_type_of(key, &kt);
        EVP_PKEY_free(key);
    }

    memset(&info, 0, sizeof(info));
    if (acme_cert_info_from_pem((const char *) data, size, &info, err,
                                sizeof(err)) == 0)
    {
        (void) strlen(info.serial);
        (void) strlen(info.issuer);
        (void) strlen(info.subject);
        for (i = 0; i < info.n_names; i++) {
            (void) strlen(info.names[i]);
        }
        acme_cert_info_free(&info);
    }
    return 0;
}
