/*
 * CSRs for ACME finalize (RFC 8555 section 7.4): the names go into a
 * subjectAltName extension; the CA takes the names from there, so the
 * subject stays empty unless a CN is explicitly wanted.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_csr.h"
#include "acme_key.h"
#include "acme_util.h"

#define CN_MAX 64       /* ub-common-name (RFC 5280) */
#define DNS_MAX 253

/*
 * inet_pton rather than OpenSSL's a2i_IPADDRESS: it accepts exactly the
 * textual forms and nothing with trailing characters such as
 * "192.0.2.1.example.com", which must stay a DNS name.
 */
static GENERAL_NAME *
name_to_general_name(const char *name, char *err, size_t errlen)
{
    GENERAL_NAME      *gn;
    ASN1_OCTET_STRING *ip;
    ASN1_IA5STRING    *dns;
    unsigned char      addr[16];
    size_t             i, n;
    int                alen;

    n = strlen(name);
    if (n == 0) {
        acme_err(err, errlen, "empty name");
        return NULL;
    }

    alen = 0;
    if (inet_pton(AF_INET, name, addr) == 1) {
        alen = 4;
    } else if (inet_pton(AF_INET6, name, addr) == 1) {
        alen = 16;
    }

    gn = GENERAL_NAME_new();
    if (gn == NULL) {
        acme_err(err, errlen, "out of memory");
        return NULL;
    }

    if (alen) {
        ip = ASN1_OCTET_STRING_new();
        if (ip == NULL || !ASN1_OCTET_STRING_set(ip, addr, alen)) {
            ASN1_OCTET_STRING_free(ip);
            GENERAL_NAME_free(gn);
            acme_err(err, errlen, "out of memory");
            return NULL;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
        return gn;
    }

    if (n > DNS_MAX) {
        GENERAL_NAME_free(gn);
        acme_err(err, errlen, "name too long: %.64s...", name);
        return NULL;
    }

    for (i = 0; i < n; i++) {
        if ((unsigned char) name[i] <= 0x20 || (unsigned char) name[i] >= 0x7f
            || name[i] == ',' || name[i] == '/')
        {
            GENERAL_NAME_free(gn);
            acme_err(err, errlen, "invalid character in name \"%s\"", name);
            return NULL;
        }
    }

    dns = ASN1_IA5STRING_new();
    if (dns == NULL || !ASN1_STRING_set(dns, name, (int) n)) {
        ASN1_IA5STRING_free(dns);
        GENERAL_NAME_free(gn);
        acme_err(err, errlen, "out of memory");
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
    return gn;
}

X509_EXTENSION *
acme_san_extension(const char *const *names, size_t n_names, char *err,
    size_t errlen)
{
    GENERAL_NAMES  *gens;
    GENERAL_NAME   *gn;
    X509_EXTENSION *ext;
    size_t          i;

    gens = GENERAL_NAMES_new();
    if (gens == NULL) {
        acme_err(err, errlen, "out of memory");
        return NULL;
    }

    for (i = 0; i < n_names; i++) {
        if (names[i] == NULL) {
            acme_err(err, errlen, "NULL name");
            goto failed;
        }
        gn = name_to_general_name(names[i], err, errlen);
        if (gn == NULL) {
            goto failed;
        }
        if (!sk_GENERAL_NAME_push(gens, gn)) {
            GENERAL_NAME_free(gn);
            acme_err(err, errlen, "out of memory");
            goto failed;
        }
    }

    ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
    GENERAL_NAMES_free(gens);
    if (ext == NULL) {
        acme_err(err, errlen, "cannot encode subjectAltName");
    }
    return ext;

failed:

    GENERAL_NAMES_free(gens);
    return NULL;
}

/* The digest the CSR is signed with: SHA-384 goes with P-384, SHA-512
 * with P-521. */
static const EVP_MD *
csr_digest(EVP_PKEY *key)
{
    acme_key_type_t t;

    if (acme_key_type_of(key, &t) == 0 && t == ACME_KEY_EC_P384) {
        return EVP_sha384();
    }

    if (acme_key_type_of(key, &t) == 0 && t == ACME_KEY_EC_P521) {
        return EVP_sha512();
    }

    /* Ed25519/Ed448 sign without a separate digest */
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) {
        return NULL;
    }

    return EVP_sha256();
}

int
acme_csr_build(EVP_PKEY *key, const char *const *names, size_t n_names,
    int with_cn, unsigned char **der, size_t *der_len, char *err, size_t errlen)
{
    X509_REQ                 *req;
    X509_NAME                *subj;
    X509_EXTENSION           *ext;
    STACK_OF(X509_EXTENSION) *exts;
    unsigned char            *buf, *p;
    int                       n, rc;

    if (key == NULL || names == NULL || n_names == 0 || der == NULL
        || der_len == NULL)
    {
        return acme_err(err, errlen, "CSR needs a key and at least one name");
    }

    rc = -1;
    exts = NULL;
    ext = NULL;

    req = X509_REQ_new();
    if (req == NULL) {
        acme_err(err, errlen, "out of memory");
        goto done;
    }

    if (!X509_REQ_set_version(req, X509_REQ_VERSION_1)) {
        acme_err(err, errlen, "cannot set CSR version");
        goto done;
    }

    /*
     * A CN longer than the X.520 limit cannot be encoded; the name is in
     * the SAN anyway, so the CN is left out rather than truncated (a
     * truncated CN would be a name the CA refuses to certify).
     */
    if (with_cn && names[0] != NULL && strlen(names[0]) <= CN_MAX) {
        subj = X509_REQ_get_subject_name(req);
        if (!X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
                                        (const unsigned char *) names[0],
                                        -1, -1, 0))
        {
            acme_err(err, errlen, "cannot set CSR subject");
            goto done;
        }
    }

    ext = acme_san_extension(names, n_names, err, errlen);
    if (ext == NULL) {
        goto done;
    }

    exts = sk_X509_EXTENSION_new_null();
    if (exts == NULL || !sk_X509_EXTENSION_push(exts, ext)) {
        acme_err(err, errlen, "out of memory");
        goto done;
    }
    ext = NULL;     /* owned by exts now */

    if (!X509_REQ_add_extensions(req, exts)) {
        acme_err(err, errlen, "cannot add CSR extensions");
        goto done;
    }

    if (!X509_REQ_set_pubkey(req, key)) {
        acme_err(err, errlen, "cannot set CSR public key");
        goto done;
    }

    if (X509_REQ_sign(req, key, csr_digest(key)) <= 0) {
        acme_err(err, errlen, "cannot sign CSR");
        goto done;
    }

    n = i2d_X509_REQ(req, NULL);
    if (n <= 0) {
        acme_err(err, errlen, "cannot encode CSR");
        goto done;
    }

    buf = malloc((size_t) n);
    if (buf == NULL) {
        acme_err(err, errlen, "out of memory");
        goto done;
    }

    p = buf;
    if (i2d_X509_REQ(req, &p) != n) {
        free(buf);
        acme_err(err, errlen, "cannot encode CSR");
        goto done;
    }

    *der = buf;
    *der_len = (size_t) n;
    rc = 0;

done:

    X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    ERR_clear_error();
    return rc;
}
