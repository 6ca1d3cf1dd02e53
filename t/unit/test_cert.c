#include <stdlib.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "unit.h"
#include "acme_cert.h"
#include "acme_key.h"
#include "acme_util.h"

static const char *const site_names[] = {
    "example.com", "192.0.2.7", "2001:DB8:0:0::1", "www.example.com",
};

static char *
concat(const char *a, const char *b, const char *c)
{
    return acme_sprintf("%s%s%s", a, b ? b : "", c ? c : "");
}

static X509 *
pem_x509(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

    BIO_free(bio);
    return x;
}

UNIT_TEST(cert_selfsigned_info)
{
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P256);
    acme_cert_info_t info;
    char err[ACME_ERRLEN] = "";
    char *pem;
    size_t len = 0, i;
    long long t0, t1;
    X509 *x;

    t0 = (long long) time(NULL);
    pem = acme_selfsigned_pem(key, site_names, 4, 30, &len);
    t1 = (long long) time(NULL);
    CHECK(pem != NULL);
    if (pem == NULL) {
        EVP_PKEY_free(key);
        return;
    }
    CHECK_INT(strlen(pem), len);

    CHECK_INT(acme_cert_info_from_pem(pem, len, &info, err, sizeof(err)), 0);
    CHECK_STR(err, "");

    /* 127-bit random serial, top bit set: 16 octets, 32 uppercase digits */
    CHECK_INT(strlen(info.serial), 32);
    for (i = 0; info.serial[i]; i++) {
        CHECK((info.serial[i] >= '0' && info.serial[i] <= '9')
              || (info.serial[i] >= 'A' && info.serial[i] <= 'F'));
    }

    CHECK(info.not_before >= t0 - 3600 && info.not_before <= t1 - 3600);
    CHECK_INT(info.not_after - info.not_before, 30LL * 86400);
    CHECK_STR(info.subject, "CN=example.com");
    CHECK_STR(info.issuer, "CN=example.com");
    /* the pin of the certificate's key, once, when parsed */
    {
        char pin[ACME_SPKI_PIN_LEN];

        CHECK_INT(acme_key_spki_pin(key, pin, sizeof(pin)), 0);
        CHECK_INT(strlen(info.spki_pin), 44);
        CHECK_STR(info.spki_pin, pin);
    }

    CHECK_INT(info.n_names, 4);
    if (info.n_names == 4) {
        CHECK_STR(info.names[0], "example.com");
        CHECK_STR(info.names[1], "192.0.2.7");
        CHECK_STR(info.names[2], "2001:db8::1");     /* canonical text */
        CHECK_STR(info.names[3], "www.example.com");
    }
    CHECK_INT(acme_cert_info_names_equal(&info, site_names, 4), 1);
    acme_cert_info_free(&info);
    CHECK(info.names == NULL && info.n_names == 0);
    acme_cert_info_free(&info);                     /* idempotent */

    /* the same through an X509, and the certificate verifies with its key */
    x = pem_x509(pem);
    CHECK(x != NULL);
    CHECK_INT(X509_verify(x, key), 1);
    CHECK_INT(X509_check_host(x, "www.example.com", 0, 0, NULL), 1);
    CHECK_INT(X509_check_ip_asc(x, "2001:db8::1", 0), 1);
    CHECK_INT(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
    CHECK_INT(acme_cert_info_from_x509(x, &info), 0);
    CHECK_INT(info.n_names, 4);
    acme_cert_info_free(&info);
    X509_free(x);

    free(pem);
    EVP_PKEY_free(key);
}

UNIT_TEST(cert_selfsigned_rsa_and_long_cn)
{
    char longname[100];
    const char *names[2];
    EVP_PKEY *key = acme_key_generate(ACME_KEY_RSA_2048);
    acme_cert_info_t info;
    char *pem, *expect;
    X509 *x;

    memset(longname, 'a', 70);
    strcpy(longname + 70, ".example.net");
    names[0] = longname;
    names[1] = "b.example.net";

    pem = acme_selfsigned_pem(key, names, 2, 1, NULL);
    CHECK(pem != NULL);
    if (pem != NULL) {
        CHECK_INT(acme_cert_info_from_pem(pem, strlen(pem), &info, NULL, 0), 0);
        expect = acme_sprintf("CN=%.64s", longname);
        CHECK_STR(info.subject, expect);
        free(expect);
        CHECK_INT(acme_cert_info_names_equal(&info, names, 2), 1);
        CHECK_INT(info.not_after - info.not_before, 86400);
        {
            /* the pin read from the certificate's SPKI is the key's */
            char pin[ACME_SPKI_PIN_LEN];

            CHECK_INT(acme_key_spki_pin(key, pin, sizeof(pin)), 0);
            CHECK_STR(info.spki_pin, pin);
        }
        acme_cert_info_free(&info);

        x = pem_x509(pem);
        CHECK(x != NULL && X509_verify(x, key) == 1);
        X509_free(x);
    }
    free(pem);

    CHECK(acme_selfsigned_pem(key, names, 0, 1, NULL) == NULL);
    CHECK(acme_selfsigned_pem(key, names, 2, 0, NULL) == NULL);
    CHECK(acme_selfsigned_pem(NULL, names, 2, 1, NULL) == NULL);
    /* names go through the CSR's name checks: no spaces */
    names[0] = "Test Intermediate";
    CHECK(acme_selfsigned_pem(key, names, 1, 1, NULL) == NULL);
    EVP_PKEY_free(key);
}

UNIT_TEST(cert_serials_differ)
{
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P256);
    acme_cert_info_t a, b;
    char *p1 = acme_selfsigned_pem(key, site_names, 1, 1, NULL);
    char *p2 = acme_selfsigned_pem(key, site_names, 1, 1, NULL);

    CHECK(p1 && p2);
    if (p1 && p2) {
        CHECK_INT(acme_cert_info_from_pem(p1, strlen(p1), &a, NULL, 0), 0);
        CHECK_INT(acme_cert_info_from_pem(p2, strlen(p2), &b, NULL, 0), 0);
        CHECK(strcmp(a.serial, b.serial) != 0);
        acme_cert_info_free(&a);
        acme_cert_info_free(&b);
    }
    free(p1);
    free(p2);
    EVP_PKEY_free(key);
}

UNIT_TEST(cert_names_equal)
{
    static char n0[] = "example.com", n1[] = "192.0.2.7", n2[] = "2001:db8::1";
    char *names[] = { n0, n1, n2 };
    acme_cert_info_t info;
    const char *same[] = { "2001:0DB8::0:1", "EXAMPLE.com", "192.0.2.7" };
    const char *dup[] = { "example.com", "192.0.2.7", "example.com", "2001:db8::1" };
    const char *missing[] = { "example.com", "192.0.2.7" };
    const char *extra[] = { "example.com", "192.0.2.7", "2001:db8::1", "a.example.com" };
    const char *other[] = { "example.com", "192.0.2.8", "2001:db8::1" };
    const char *v4as6[] = { "example.com", "::ffff:192.0.2.7", "2001:db8::1" };

    memset(&info, 0, sizeof(info));
    info.names = names;
    info.n_names = 3;

    CHECK_INT(acme_cert_info_names_equal(&info, same, 3), 1);
    CHECK_INT(acme_cert_info_names_equal(&info, dup, 4), 1);
    CHECK_INT(acme_cert_info_names_equal(&info, missing, 2), 0);
    CHECK_INT(acme_cert_info_names_equal(&info, extra, 4), 0);
    CHECK_INT(acme_cert_info_names_equal(&info, other, 3), 0);
    CHECK_INT(acme_cert_info_names_equal(&info, v4as6, 3), 0);
    CHECK_INT(acme_cert_info_names_equal(&info, NULL, 0), 0);

    info.n_names = 0;
    CHECK_INT(acme_cert_info_names_equal(&info, NULL, 0), 1);
    CHECK_INT(acme_cert_info_names_equal(&info, missing, 1), 0);
}

/* A key, its self-signed certificate, and an unrelated "intermediate". */
typedef struct {
    EVP_PKEY *key;
    char     *key_pem;
    char     *cert_pem;
    char     *ca_pem;
    EVP_PKEY *other;
    char     *other_pem;
} fixture_t;

static void
fixture_init(fixture_t *f)
{
    f->key = acme_key_generate(ACME_KEY_EC_P256);
    f->key_pem = acme_key_to_pem(f->key, NULL);
    f->cert_pem = acme_selfsigned_pem(f->key, site_names, 4, 10, NULL);
    f->other = acme_key_generate(ACME_KEY_EC_P384);
    f->other_pem = acme_key_to_pem(f->other, NULL);
    f->ca_pem = acme_selfsigned_pem(f->other, site_names, 1, 10, NULL);
    CHECK(f->key_pem && f->cert_pem && f->other_pem && f->ca_pem);
}

static void
fixture_free(fixture_t *f)
{
    EVP_PKEY_free(f->key);
    EVP_PKEY_free(f->other);
    free(f->key_pem);
    free(f->cert_pem);
    free(f->ca_pem);
    free(f->other_pem);
}

static int
parse(const char *pem, EVP_PKEY **key, X509 **leaf, STACK_OF(X509) **chain, char *err)
{
    err[0] = '\0';
    return acme_bundle_parse(pem, strlen(pem), key, leaf, chain, err, ACME_ERRLEN);
}

UNIT_TEST(bundle_parse_good)
{
    fixture_t f;
    EVP_PKEY *key;
    X509 *leaf, *expect_leaf, *expect_ca;
    STACK_OF(X509) *chain;
    char err[ACME_ERRLEN];
    char *b, *b2;
    acme_cert_info_t info;

    fixture_init(&f);
    expect_leaf = pem_x509(f.cert_pem);
    expect_ca = pem_x509(f.ca_pem);

    /* the store's format: key, leaf, chain */
    b2 = concat(f.cert_pem, f.ca_pem, NULL);
    b = concat(f.key_pem, b2, NULL);
    free(b2);
    CHECK_INT(parse(b, &key, &leaf, &chain, err), 0);
    CHECK_STR(err, "");
    CHECK(key != NULL && EVP_PKEY_eq(key, f.key) == 1);
    CHECK(leaf != NULL && X509_cmp(leaf, expect_leaf) == 0);
    CHECK(chain != NULL && sk_X509_num(chain) == 1
          && X509_cmp(sk_X509_value(chain, 0), expect_ca) == 0);
    EVP_PKEY_free(key);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);

    /* info of a bundle describes the leaf, skipping the key block */
    CHECK_INT(acme_cert_info_from_pem(b, strlen(b), &info, err, sizeof(err)), 0);
    CHECK_INT(info.n_names, 4);
    acme_cert_info_free(&info);

    /* all outputs optional */
    CHECK_INT(parse(b, NULL, NULL, NULL, err), 0);
    free(b);

    /* key between certificates; the first certificate is the leaf */
    b = concat(f.cert_pem, f.key_pem, f.ca_pem);
    CHECK_INT(parse(b, &key, &leaf, &chain, err), 0);
    CHECK(leaf != NULL && X509_cmp(leaf, expect_leaf) == 0);
    CHECK(chain != NULL && sk_X509_num(chain) == 1);
    EVP_PKEY_free(key);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    free(b);

    /* certificate only: no key, empty chain */
    CHECK_INT(parse(f.cert_pem, &key, &leaf, &chain, err), 0);
    CHECK(key == NULL && leaf != NULL);
    CHECK(chain != NULL && sk_X509_num(chain) == 0);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);

    X509_free(expect_leaf);
    X509_free(expect_ca);
    fixture_free(&f);
}

/* Two bundles of one CA: with a cache the intermediate is one shared X509
 * (the leaf never is), equal to what a parse without it gives; a leaf that
 * is another bundle's intermediate is still parsed as a leaf. */
UNIT_TEST(bundle_parse_cached_chain)
{
    fixture_t           f;
    acme_x509_cache_t  *cache;
    EVP_PKEY           *k1, *k2;
    X509               *l1, *l2, *l3, *expect_ca;
    STACK_OF(X509)     *c1, *c2, *c3;
    char                err[ACME_ERRLEN], *b, *b2;

    fixture_init(&f);
    expect_ca = pem_x509(f.ca_pem);
    b2 = concat(f.cert_pem, f.ca_pem, NULL);
    b = concat(f.key_pem, b2, NULL);
    free(b2);
    cache = acme_x509_cache_new();
    CHECK(cache != NULL);

    CHECK_INT(acme_bundle_parse_cached(b, strlen(b), cache, &k1, &l1, &c1, err,
                                       sizeof(err)), 0);
    CHECK_INT(acme_bundle_parse_cached(b, strlen(b), cache, &k2, &l2, &c2, err,
                                       sizeof(err)), 0);
    CHECK(c1 != NULL && c2 != NULL && sk_X509_num(c1) == 1
          && sk_X509_num(c2) == 1);
    if (c1 != NULL && c2 != NULL && sk_X509_num(c1) == 1
        && sk_X509_num(c2) == 1)
    {
        CHECK(sk_X509_value(c1, 0) == sk_X509_value(c2, 0));
        CHECK_INT(X509_cmp(sk_X509_value(c1, 0), expect_ca), 0);
    }
    CHECK(l1 != NULL && l2 != NULL && l1 != l2 && X509_cmp(l1, l2) == 0);
    CHECK(k1 != NULL && k2 != NULL && EVP_PKEY_eq(k1, f.key) == 1);

    /* the CA's certificate as a leaf: parsed on its own */
    CHECK_INT(acme_bundle_parse_cached(f.ca_pem, strlen(f.ca_pem), cache,
                                       NULL, &l3, &c3, err, sizeof(err)), 0);
    CHECK(l3 != NULL && c1 != NULL && l3 != sk_X509_value(c1, 0));
    X509_free(l3);
    sk_X509_pop_free(c3, X509_free);

    /* the references outlive the cache */
    acme_x509_cache_free(cache);
    if (c1 != NULL && sk_X509_num(c1) == 1) {
        CHECK_INT(X509_cmp(sk_X509_value(c1, 0), expect_ca), 0);
    }

    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    X509_free(l1);
    X509_free(l2);
    sk_X509_pop_free(c1, X509_free);
    sk_X509_pop_free(c2, X509_free);
    X509_free(expect_ca);
    free(b);
    fixture_free(&f);
}

UNIT_TEST(bundle_parse_traditional_key_and_params)
{
    static const char params[] =
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
    fixture_t f;
    BIO *bio;
    char *trad, *data, *b;
    long n;
    EVP_PKEY *key;
    char err[ACME_ERRLEN];

    fixture_init(&f);
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey_traditional(bio, f.key, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &data);
    trad = acme_strndup(data, (size_t) n);
    BIO_free(bio);

    /* what "openssl ecparam -genkey" writes, followed by the certificate */
    b = concat(params, trad, f.cert_pem);
    CHECK_INT(parse(b, &key, NULL, NULL, err), 0);
    CHECK_STR(err, "");
    CHECK(key != NULL && EVP_PKEY_eq(key, f.key) == 1);
    EVP_PKEY_free(key);

    free(b);
    free(trad);
    fixture_free(&f);
}

UNIT_TEST(bundle_parse_errors)
{
    fixture_t f;
    EVP_PKEY *key = (EVP_PKEY *) 1;
    X509 *leaf = (X509 *) 1;
    STACK_OF(X509) *chain = (STACK_OF(X509) *) 1;
    char err[ACME_ERRLEN];
    char *b, *cut;
    BIO *bio;
    char *data;
    long n;

    fixture_init(&f);

    /* key of another certificate */
    b = concat(f.other_pem, f.cert_pem, NULL);
    CHECK_INT(parse(b, &key, &leaf, &chain, err), -1);
    CHECK(strstr(err, "does not match") != NULL);
    CHECK(key == NULL && leaf == NULL && chain == NULL);
    free(b);

    /* the matching certificate second: the first one is the leaf */
    b = concat(f.key_pem, f.ca_pem, f.cert_pem);
    CHECK_INT(parse(b, &key, &leaf, &chain, err), -1);
    CHECK(strstr(err, "does not match") != NULL);
    free(b);

    CHECK_INT(parse("garbage\n", &key, &leaf, &chain, err), -1);
    CHECK(err[0] != '\0');
    CHECK_INT(parse("", &key, &leaf, &chain, err), -1);
    CHECK(err[0] != '\0');
    CHECK_INT(acme_bundle_parse(NULL, 0, &key, &leaf, &chain, err, sizeof(err)), -1);

    CHECK_INT(parse(f.key_pem, &key, &leaf, &chain, err), -1);
    CHECK(strstr(err, "no certificate") != NULL);

    /* a certificate block cut short */
    b = concat(f.key_pem, f.cert_pem, NULL);
    cut = acme_strndup(b, strlen(b) - 40);
    CHECK_INT(parse(cut, &key, &leaf, &chain, err), -1);
    CHECK(err[0] != '\0');
    free(cut);
    free(b);

    /* a certificate block with a corrupted body */
    b = acme_strdup(f.cert_pem);
    b[100] = b[100] == 'A' ? 'B' : 'A';
    b[101] = b[101] == 'A' ? 'B' : 'A';
    CHECK_INT(parse(b, &key, &leaf, &chain, err), -1);
    CHECK(err[0] != '\0');
    free(b);

    /* a PEM block that is not a key where a key belongs */
    b = concat("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
               f.cert_pem, NULL);
    CHECK_INT(parse(b, &key, &leaf, &chain, err), -1);
    CHECK(strstr(err, "private key") != NULL);
    free(b);

    /* two keys */
    b = concat(f.key_pem, f.key_pem, f.cert_pem);
    CHECK_INT(parse(b, &key, &leaf, &chain, err), -1);
    CHECK(strstr(err, "more than one") != NULL);
    free(b);

    /* encrypted key */
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PKCS8PrivateKey(bio, f.key, EVP_aes_128_cbc(), "pw", 2, NULL, NULL);
    n = BIO_get_mem_data(bio, &data);
    b = acme_sprintf("%.*s%s", (int) n, data, f.cert_pem);
    BIO_free(bio);
    CHECK_INT(parse(b, &key, &leaf, &chain, err), -1);
    CHECK(strstr(err, "encrypted") != NULL);
    free(b);

    CHECK_INT(acme_cert_info_from_pem("garbage", 7, (acme_cert_info_t[1]){{ .n_names = 0 }},
                                      err, sizeof(err)), -1);
    CHECK(err[0] != '\0');

    fixture_free(&f);
}

/* acme_cert_check_issued: what a CA hands back before it is stored */
UNIT_TEST(cert_check_issued)
{
    EVP_PKEY          *key, *other;
    char               err[ACME_ERRLEN];
    char              *pem, *bad;
    size_t             len = 0;
    long long          now;
    X509              *x;
    long long          nb, na;
    acme_cert_info_t   info;
    static const char *const mixed_case[] = {
        "EXAMPLE.com", "192.0.2.7", "2001:db8::1", "WWW.Example.Com",
    };
    static const char *const more_dns[] = { "example.com", "c.example.com" };
    static const char *const more_ip[] = { "example.com", "192.0.2.8" };
    static const char *const ip_as_dns[] = { "www.example.com", "192.0.2.7" };
    static const char *const wild[] = { "*.example.com" };
    static const char *const under_wild[] = { "a.example.com" };

    key = acme_key_generate(ACME_KEY_EC_P256);
    other = acme_key_generate(ACME_KEY_EC_P256);
    now = (long long) time(NULL);
    pem = acme_selfsigned_pem(key, site_names, 4, 30, &len);
    CHECK(pem != NULL && key != NULL && other != NULL);
    if (pem == NULL || key == NULL || other == NULL) {
        EVP_PKEY_free(key);
        EVP_PKEY_free(other);
        free(pem);
        return;
    }
    nb = na = 0;
    x = pem_x509(pem);
    if (x && acme_cert_info_from_x509(x, &info) == 0) {
        nb = info.not_before;
        na = info.not_after;
        acme_cert_info_free(&info);
    }
    X509_free(x);

    /* good: every name (case, IPv6 spelling aside), the key, the time */
    err[0] = '\0';
    CHECK_INT(acme_cert_check_issued(pem, len, key, site_names, 4, now,
                                     err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(acme_cert_check_issued(pem, len, key, mixed_case, 4, now,
                                     err, sizeof(err)), 0);
    /* a subset is fine: the CA may add names, it must not drop any */
    CHECK_INT(acme_cert_check_issued(pem, len, key, site_names, 1, now,
                                     err, sizeof(err)), 0);

    /* another key */
    CHECK_INT(acme_cert_check_issued(pem, len, other, site_names, 4, now,
                                     err, sizeof(err)), -1);
    CHECK_STR(err, "its public key is not the key of the CSR");

    /* a DNS name, an IP address missing */
    CHECK_INT(acme_cert_check_issued(pem, len, key, more_dns, 2, now,
                                     err, sizeof(err)), -1);
    CHECK_STR(err, "it lacks the ordered identifier \"c.example.com\" in "
              "its subjectAltName");
    CHECK_INT(acme_cert_check_issued(pem, len, key, more_ip, 2, now,
                                     err, sizeof(err)), -1);
    CHECK_STR(err, "it lacks the ordered identifier \"192.0.2.8\" in "
              "its subjectAltName");
    /* IP identifiers are found as iPAddress SANs */
    CHECK_INT(acme_cert_check_issued(pem, len, key, ip_as_dns, 2, now,
                                     err, sizeof(err)), 0);

    /* expired, not yet valid (beyond the allowed clock skew), at the edges */
    CHECK(na > nb && nb > 0);
    CHECK_INT(acme_cert_check_issued(pem, len, key, site_names, 4, na,
                                     err, sizeof(err)), -1);
    CHECK(strncmp(err, "it expired at 20", 16) == 0);
    CHECK_INT(acme_cert_check_issued(pem, len, key, site_names, 4, na - 1,
                                     err, sizeof(err)), 0);
    /* not valid yet, even by hours: accepted, the host serves it later
     * (acme_job_activate_at; issue 16) */
    CHECK_INT(acme_cert_check_issued(pem, len, key, site_names, 4,
                                     nb - 7200, err, sizeof(err)), 0);
    CHECK_INT(acme_cert_check_issued(pem, len, key, site_names, 4,
                                     nb - 301, err, sizeof(err)), 0);

    /* the chain: garbage after the leaf */
    bad = concat(pem, "-----BEGIN CERTIFICATE-----\nTEFBRg==\n"
                 "-----END CERTIFICATE-----\n", NULL);
    CHECK_INT(acme_cert_check_issued(bad, strlen(bad), key, site_names, 4,
                                     now, err, sizeof(err)), -1);
    CHECK_STR(err, "certificate 2 of the chain does not parse");
    free(bad);

    bad = concat(pem, "-----BEGIN CERTIFICATE-----\nMIIB", NULL);
    CHECK_INT(acme_cert_check_issued(bad, strlen(bad), key, site_names, 4,
                                     now, err, sizeof(err)), -1);
    CHECK_STR(err, "PEM block 2 of the chain is malformed");
    free(bad);

    bad = concat(pem, "-----BEGIN PRIVATE KEY-----\nTEFBRg==\n"
                 "-----END PRIVATE KEY-----\n", NULL);
    CHECK_INT(acme_cert_check_issued(bad, strlen(bad), key, site_names, 4,
                                     now, err, sizeof(err)), -1);
    CHECK_STR(err, "PEM block 2 of the chain is \"PRIVATE KEY\", not a "
              "certificate");
    free(bad);

    /* text around the blocks is allowed (RFC 7468 section 2) */
    bad = concat("issued by a test\n", pem, "\nthe end\n");
    CHECK_INT(acme_cert_check_issued(bad, strlen(bad), key, site_names, 4,
                                     now, err, sizeof(err)), 0);
    free(bad);

    CHECK_INT(acme_cert_check_issued("hello\n", 6, key, site_names, 4, now,
                                     err, sizeof(err)), -1);
    CHECK_STR(err, "the chain holds no certificate");
    CHECK_INT(acme_cert_check_issued("", 0, key, site_names, 4, now,
                                     err, sizeof(err)), -1);
    CHECK_STR(err, "the chain is empty");
    free(pem);

    /* a wildcard matches only itself, literally */
    pem = acme_selfsigned_pem(key, wild, 1, 30, &len);
    CHECK(pem != NULL);
    if (pem) {
        CHECK_INT(acme_cert_check_issued(pem, len, key, wild, 1, now,
                                         err, sizeof(err)), 0);
        CHECK_INT(acme_cert_check_issued(pem, len, key, under_wild, 1, now,
                                         err, sizeof(err)), -1);
        CHECK_STR(err, "it lacks the ordered identifier \"a.example.com\" in "
                  "its subjectAltName");
        free(pem);
    }

    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}
