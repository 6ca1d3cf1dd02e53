#include <stdlib.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "unit.h"
#include "acme_csr.h"
#include "acme_key.h"
#include "acme_util.h"

static X509_REQ *
build(EVP_PKEY *key, const char *const *names, size_t n, int with_cn)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    char err[ACME_ERRLEN] = "";
    X509_REQ *req = NULL;
    EVP_PKEY *pub;

    CHECK_INT(acme_csr_build(key, names, n, with_cn, &der, &len, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    if (der == NULL) {
        return NULL;
    }

    p = der;
    req = d2i_X509_REQ(NULL, &p, (long) len);
    CHECK(req != NULL);
    CHECK(p == der + len);
    free(der);
    if (req == NULL) {
        return NULL;
    }

    /* signed by the key it carries */
    pub = X509_REQ_get0_pubkey(req);
    CHECK(pub != NULL && EVP_PKEY_eq(pub, key) == 1);
    CHECK_INT(X509_REQ_verify(req, key), 1);
    CHECK_INT(X509_REQ_get_version(req), X509_REQ_VERSION_1);
    return req;
}

static GENERAL_NAMES *
req_sans(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);

    CHECK_INT(sk_X509_EXTENSION_num(exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    CHECK(gens != NULL);
    return gens;
}

static int
gen_is_dns(const GENERAL_NAME *gn, const char *name)
{
    return gn->type == GEN_DNS
           && ASN1_STRING_length(gn->d.dNSName) == (int) strlen(name)
           && memcmp(ASN1_STRING_get0_data(gn->d.dNSName), name, strlen(name)) == 0;
}

static int
gen_is_ip(const GENERAL_NAME *gn, const unsigned char *addr, int len)
{
    return gn->type == GEN_IPADD
           && ASN1_STRING_length(gn->d.iPAddress) == len
           && memcmp(ASN1_STRING_get0_data(gn->d.iPAddress), addr, (size_t) len) == 0;
}

UNIT_TEST(csr_p256_sans_no_subject)
{
    static const char *names[] = {
        "example.com", "*.example.com", "192.0.2.1", "2001:db8::1", "192.0.2.1.nip.io",
    };
    static const unsigned char v4[4] = { 192, 0, 2, 1 };
    static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0, 0, 0, 1 };
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P256);
    X509_REQ *req = build(key, names, 5, 0);
    GENERAL_NAMES *gens;

    if (req != NULL) {
        CHECK_INT(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
        CHECK_INT(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA256);

        gens = req_sans(req);
        CHECK_INT(sk_GENERAL_NAME_num(gens), 5);
        if (sk_GENERAL_NAME_num(gens) == 5) {
            CHECK(gen_is_dns(sk_GENERAL_NAME_value(gens, 0), "example.com"));
            CHECK(gen_is_dns(sk_GENERAL_NAME_value(gens, 1), "*.example.com"));
            CHECK(gen_is_ip(sk_GENERAL_NAME_value(gens, 2), v4, 4));
            CHECK(gen_is_ip(sk_GENERAL_NAME_value(gens, 3), v6, 16));
            /* looks like an address at the start, but is a DNS name */
            CHECK(gen_is_dns(sk_GENERAL_NAME_value(gens, 4), "192.0.2.1.nip.io"));
        }
        GENERAL_NAMES_free(gens);
    }

    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

UNIT_TEST(csr_with_cn)
{
    static const char *names[] = { "www.example.org", "example.org" };
    char cn[128];
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P384);
    X509_REQ *req = build(key, names, 2, 1);
    X509_NAME *subj;
    GENERAL_NAMES *gens;

    if (req != NULL) {
        subj = X509_REQ_get_subject_name(req);
        CHECK_INT(X509_NAME_entry_count(subj), 1);
        CHECK(X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn)) > 0);
        CHECK_STR(cn, "www.example.org");
        /* P-384 keys sign with SHA-384 */
        CHECK_INT(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA384);
        gens = req_sans(req);
        CHECK_INT(sk_GENERAL_NAME_num(gens), 2);
        GENERAL_NAMES_free(gens);
    }

    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

UNIT_TEST(csr_long_first_name_has_no_cn)
{
    char longname[100];
    const char *names[1];
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P256);
    X509_REQ *req;
    GENERAL_NAMES *gens;

    memset(longname, 'a', 70);
    strcpy(longname + 70, ".example.net");
    names[0] = longname;

    req = build(key, names, 1, 1);
    if (req != NULL) {
        CHECK_INT(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
        gens = req_sans(req);
        CHECK(sk_GENERAL_NAME_num(gens) == 1
              && gen_is_dns(sk_GENERAL_NAME_value(gens, 0), longname));
        GENERAL_NAMES_free(gens);
    }

    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

UNIT_TEST(csr_rsa)
{
    static const char *names[] = { "rsa.example.com" };
    EVP_PKEY *key = acme_key_generate(ACME_KEY_RSA_2048);
    X509_REQ *req = build(key, names, 1, 0);

    if (req != NULL) {
        CHECK_INT(X509_REQ_get_signature_nid(req), NID_sha256WithRSAEncryption);
    }
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

UNIT_TEST(csr_bad_input)
{
    static const char *bad[][1] = {
        { "" }, { "exa mple.com" }, { "a,b.com" }, { "tab\t.com" }, { "caf\xc3\xa9.com" },
    };
    static const char *ok[] = { "example.com" };
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P256);
    unsigned char *der = NULL;
    size_t len = 0, i;
    char err[ACME_ERRLEN];
    char huge[300];
    const char *hn[1] = { huge };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(acme_csr_build(key, bad[i], 1, 0, &der, &len, err, sizeof(err)), -1);
        CHECK(err[0] != '\0');
        CHECK(der == NULL);
    }

    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    CHECK_INT(acme_csr_build(key, hn, 1, 0, &der, &len, err, sizeof(err)), -1);

    err[0] = '\0';
    CHECK_INT(acme_csr_build(key, ok, 0, 0, &der, &len, err, sizeof(err)), -1);
    CHECK(err[0] != '\0');
    CHECK_INT(acme_csr_build(NULL, ok, 1, 0, &der, &len, err, sizeof(err)), -1);
    /* a NULL error buffer is allowed */
    CHECK_INT(acme_csr_build(key, bad[1], 1, 0, &der, &len, NULL, 0), -1);
    CHECK(der == NULL);

    EVP_PKEY_free(key);
}
