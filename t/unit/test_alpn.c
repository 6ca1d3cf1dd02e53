#include <stdlib.h>
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include "unit.h"
#include "acme_alpn.h"
#include "acme_util.h"

/* Returns the acmeIdentifier extension of x (or NULL), checking there is
 * exactly one. */
static X509_EXTENSION *
acme_ext(X509 *x)
{
    ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    int          i = X509_get_ext_by_OBJ(x, obj, -1);

    CHECK(i >= 0);
    CHECK(X509_get_ext_by_OBJ(x, obj, i) < 0);
    ASN1_OBJECT_free(obj);
    return i >= 0 ? X509_get_ext(x, i) : NULL;
}

/* Round-trips the certificate through DER (as the CA sees it) and checks
 * the extension, the single SAN and the key. */
static void
check_cert(const char *identifier, const char *key_authz, int gen_type,
    const unsigned char *want, size_t want_len)
{
    X509                    *x, *y;
    EVP_PKEY                *k, *pub;
    X509_EXTENSION          *ext;
    const ASN1_OCTET_STRING *val;
    GENERAL_NAMES           *gens;
    GENERAL_NAME            *gen;
    unsigned char           *der, *p, expect[2 + SHA256_DIGEST_LENGTH];
    const unsigned char     *q;
    char                     err[ACME_ERRLEN];
    int                      n, crit;

    x = NULL;
    k = NULL;
    CHECK_INT(acme_alpn_challenge_cert(identifier, key_authz, &x, &k,
                                       err, sizeof(err)), 0);
    CHECK(x != NULL && k != NULL);
    if (x == NULL || k == NULL) {
        return;
    }

    n = i2d_X509(x, NULL);
    CHECK(n > 0);
    der = p = malloc((size_t) n);
    i2d_X509(x, &p);
    q = der;
    y = d2i_X509(NULL, &q, n);
    free(der);
    CHECK(y != NULL);
    if (y == NULL) {
        X509_free(x);
        EVP_PKEY_free(k);
        return;
    }

    /* fresh P-256 key, matching the certificate, self-signed */
    CHECK(EVP_PKEY_is_a(k, "EC"));
    CHECK_INT(EVP_PKEY_get_bits(k), 256);
    pub = X509_get0_pubkey(y);
    CHECK(pub != NULL && EVP_PKEY_eq(pub, k) == 1);
    CHECK_INT(X509_verify(y, k), 1);

    /* critical, extnValue = DER OCTET STRING of SHA-256(key authz) */
    ext = acme_ext(y);
    if (ext != NULL) {
        crit = X509_EXTENSION_get_critical(ext);
        CHECK_INT(crit, 1);
        val = X509_EXTENSION_get_data(ext);
        expect[0] = 0x04;
        expect[1] = 0x20;
        SHA256((const unsigned char *) key_authz, strlen(key_authz),
               expect + 2);
        CHECK_INT(ASN1_STRING_length(val), sizeof(expect));
        CHECK(ASN1_STRING_length(val) == (int) sizeof(expect)
              && memcmp(ASN1_STRING_get0_data(val), expect,
                        sizeof(expect)) == 0);
    }

    gens = X509_get_ext_d2i(y, NID_subject_alt_name, &crit, NULL);
    CHECK(gens != NULL);
    if (gens != NULL) {
        CHECK_INT(sk_GENERAL_NAME_num(gens), 1);
        gen = sk_GENERAL_NAME_value(gens, 0);
        CHECK_INT(gen->type, gen_type);
        if (gen->type == GEN_DNS) {
            CHECK_INT(ASN1_STRING_length(gen->d.dNSName), want_len);
            CHECK(memcmp(ASN1_STRING_get0_data(gen->d.dNSName), want,
                         want_len) == 0);
        } else if (gen->type == GEN_IPADD) {
            CHECK_INT(ASN1_STRING_length(gen->d.iPAddress), want_len);
            CHECK(memcmp(ASN1_STRING_get0_data(gen->d.iPAddress), want,
                         want_len) == 0);
        }
        GENERAL_NAMES_free(gens);
    }

    X509_free(y);
    X509_free(x);
    EVP_PKEY_free(k);
}

UNIT_TEST(alpn_cert_dns)
{
    check_cert("www.example.org", "tok123.thumbprintABC", GEN_DNS,
               (const unsigned char *) "www.example.org", 15);
}

UNIT_TEST(alpn_cert_ip)
{
    unsigned char v4[4], v6[16];

    inet_pton(AF_INET, "127.0.0.1", v4);
    inet_pton(AF_INET6, "2001:db8::1", v6);
    check_cert("127.0.0.1", "a.b", GEN_IPADD, v4, 4);
    check_cert("2001:db8::1", "a.b", GEN_IPADD, v6, 16);
}

UNIT_TEST(alpn_cert_fresh_key_each_time)
{
    X509     *x1 = NULL, *x2 = NULL;
    EVP_PKEY *k1 = NULL, *k2 = NULL;

    CHECK_INT(acme_alpn_challenge_cert("a.test", "t.k", &x1, &k1, NULL, 0), 0);
    CHECK_INT(acme_alpn_challenge_cert("a.test", "t.k", &x2, &k2, NULL, 0), 0);
    CHECK(k1 && k2 && EVP_PKEY_eq(k1, k2) != 1);
    CHECK(x1 && x2 && ASN1_INTEGER_cmp(X509_get0_serialNumber(x1),
                                       X509_get0_serialNumber(x2)) != 0);
    X509_free(x1); X509_free(x2);
    EVP_PKEY_free(k1); EVP_PKEY_free(k2);
}

UNIT_TEST(alpn_cert_bad_input)
{
    X509     *x = (X509 *) 1;
    EVP_PKEY *k = (EVP_PKEY *) 1;
    char      err[ACME_ERRLEN];

    err[0] = '\0';
    CHECK_INT(acme_alpn_challenge_cert("", "t.k", &x, &k, err, sizeof(err)),
              -1);
    CHECK(x == NULL && k == NULL);
    CHECK(strstr(err, "identifier") != NULL);
    CHECK_INT(acme_alpn_challenge_cert("a.test", "", &x, &k, err,
                                       sizeof(err)), -1);
    CHECK_INT(acme_alpn_challenge_cert(NULL, "t.k", &x, &k, NULL, 0), -1);
}

UNIT_TEST(alpn_sni_dns)
{
    char buf[256];

    CHECK_STR(acme_alpn_sni_identifier("WWW.Example.ORG", buf, sizeof(buf)),
              "www.example.org");
    CHECK_STR(acme_alpn_sni_identifier("localhost", buf, sizeof(buf)),
              "localhost");
    CHECK(acme_alpn_sni_identifier("", buf, sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier("a..b", buf, sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier(".a", buf, sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier("a.b.", buf, sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier("a b.c", buf, sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier("a/b", buf, sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier(NULL, buf, sizeof(buf)) == NULL);
    /* does not fit */
    CHECK(acme_alpn_sni_identifier("example.org", buf, 5) == NULL);
}

UNIT_TEST(alpn_sni_reverse_v4)
{
    char buf[64];

    CHECK_STR(acme_alpn_sni_identifier("1.0.0.127.in-addr.arpa", buf,
                                       sizeof(buf)), "127.0.0.1");
    CHECK_STR(acme_alpn_sni_identifier("4.3.2.1.IN-ADDR.ARPA", buf,
                                       sizeof(buf)), "1.2.3.4");
    CHECK_STR(acme_alpn_sni_identifier("255.0.168.192.in-addr.arpa", buf,
                                       sizeof(buf)), "192.168.0.255");
    CHECK(acme_alpn_sni_identifier("3.2.1.in-addr.arpa", buf,
                                   sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier("5.4.3.2.1.in-addr.arpa", buf,
                                   sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier("256.3.2.1.in-addr.arpa", buf,
                                   sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier("04.3.2.1.in-addr.arpa", buf,
                                   sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier("a.3.2.1.in-addr.arpa", buf,
                                   sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier("x.in-addr.arpa", buf, sizeof(buf)) == NULL);
}

UNIT_TEST(alpn_sni_reverse_v6)
{
    char buf[64];
    const char *loop =
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
        ".ip6.arpa";
    const char *doc =
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4"
        ".IP6.ARPA";
    const char *short_ =
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
        ".ip6.arpa";
    const char *badhex =
        "g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
        ".ip6.arpa";
    const char *twonib =
        "10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
        ".ip6.arpa";

    /* RFC 3596 section 2.5's example, and ::1 */
    CHECK_STR(acme_alpn_sni_identifier(loop, buf, sizeof(buf)), "::1");
    CHECK_STR(acme_alpn_sni_identifier(doc, buf, sizeof(buf)),
              "4321:0:1:2:3:4:567:89ab");
    CHECK(acme_alpn_sni_identifier(short_, buf, sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier(badhex, buf, sizeof(buf)) == NULL);
    CHECK(acme_alpn_sni_identifier(twonib, buf, sizeof(buf)) == NULL);
    /* too small for the literal */
    CHECK(acme_alpn_sni_identifier(doc, buf, 8) == NULL);
}

UNIT_TEST(alpn_offered)
{
    static const unsigned char only[] = "\x0a" "acme-tls/1";
    static const unsigned char mixed[] = "\x02h2\x08http/1.1\x0a" "acme-tls/1";
    static const unsigned char first[] = "\x0a" "acme-tls/1\x08http/1.1";
    static const unsigned char twice[] = "\x0a" "acme-tls/1\x0a" "acme-tls/1";
    static const unsigned char none[] = "\x02h2\x08http/1.1";
    static const unsigned char prefix[] = "\x09" "acme-tls/";
    static const unsigned char longer[] = "\x0b" "acme-tls/1x";
    static const unsigned char overrun[] = "\x0a" "acme-tls/1\x05h2";
    static const unsigned char empty_entry[] = "\x0a" "acme-tls/1\x00";
    static const unsigned char truncated[] = "\x0b" "acme-tls/1";

    /* alone (a CA validating) or among others (an ordinary client) */
    CHECK_INT(acme_alpn_offered(only, sizeof(only) - 1), 2);
    CHECK_INT(acme_alpn_offered(twice, sizeof(twice) - 1), 2);
    CHECK_INT(acme_alpn_offered(mixed, sizeof(mixed) - 1), 1);
    CHECK_INT(acme_alpn_offered(first, sizeof(first) - 1), 1);
    CHECK(!acme_alpn_offered(none, sizeof(none) - 1));
    CHECK(!acme_alpn_offered(prefix, sizeof(prefix) - 1));
    CHECK(!acme_alpn_offered(longer, sizeof(longer) - 1));
    CHECK(!acme_alpn_offered(overrun, sizeof(overrun) - 1));
    CHECK(!acme_alpn_offered(empty_entry, sizeof(empty_entry)));
    CHECK(!acme_alpn_offered(truncated, sizeof(truncated) - 1));
    CHECK(!acme_alpn_offered(only, 0));
    CHECK(!acme_alpn_offered(NULL, 5));
}
