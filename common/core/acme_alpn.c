/*
 * tls-alpn-01 helpers (RFC 8737, RFC 8738 for IP identifiers): the
 * challenge certificate, the SNI -> identifier mapping and the ALPN offer
 * check.  Sans-I/O: the server modules call these from their handshake
 * callbacks, so nothing here blocks beyond a P-256 key generation.
 */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include "acme_alpn.h"
#include "acme_key.h"
#include "acme_util.h"

#define ACME_IDENTIFIER_OID  "1.3.6.1.5.5.7.1.31"

/* RFC 5280 ub-common-name */
#define CN_MAX  64

/* The challenge certificate lives only while the authorization is pending;
 * a week covers any validation retries with room for clock skew. */
#define CHALLENGE_DAYS  7

/* 1 and the binary address in ip/iplen when s is an IPv4 or IPv6 literal. */
static int
parse_ip(const char *s, unsigned char *ip, int *iplen)
{
    if (inet_pton(AF_INET, s, ip) == 1) {
        *iplen = 4;
        return 1;
    }
    if (inet_pton(AF_INET6, s, ip) == 1) {
        *iplen = 16;
        return 1;
    }
    return 0;
}

/* subjectAltName with exactly the one identifier. */
static int
add_san(X509 *x, const char *identifier)
{
    GENERAL_NAMES     *gens;
    GENERAL_NAME      *gen;
    ASN1_OCTET_STRING *ipstr;
    ASN1_IA5STRING    *dns;
    unsigned char      ip[16];
    int                iplen, ok;

    gens = GENERAL_NAMES_new();
    gen = GENERAL_NAME_new();
    if (gens == NULL || gen == NULL) {
        GENERAL_NAMES_free(gens);
        GENERAL_NAME_free(gen);
        return -1;
    }

    if (parse_ip(identifier, ip, &iplen)) {
        ipstr = ASN1_OCTET_STRING_new();
        if (ipstr == NULL || !ASN1_OCTET_STRING_set(ipstr, ip, iplen)) {
            ASN1_OCTET_STRING_free(ipstr);
            GENERAL_NAME_free(gen);
            GENERAL_NAMES_free(gens);
            return -1;
        }
        GENERAL_NAME_set0_value(gen, GEN_IPADD, ipstr);

    } else {
        dns = ASN1_IA5STRING_new();
        if (dns == NULL
            || !ASN1_STRING_set(dns, identifier, (int) strlen(identifier)))
        {
            ASN1_IA5STRING_free(dns);
            GENERAL_NAME_free(gen);
            GENERAL_NAMES_free(gens);
            return -1;
        }
        GENERAL_NAME_set0_value(gen, GEN_DNS, dns);
    }

    if (!sk_GENERAL_NAME_push(gens, gen)) {
        GENERAL_NAME_free(gen);
        GENERAL_NAMES_free(gens);
        return -1;
    }

    ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
                           X509V3_ADD_DEFAULT);
    GENERAL_NAMES_free(gens);
    return ok == 1 ? 0 : -1;
}

/* The critical acmeIdentifier extension: its extnValue is the DER encoding
 * of an OCTET STRING holding SHA-256(key authorization) (RFC 8737 3). */
static int
add_acme_identifier(X509 *x, const char *key_authz)
{
    unsigned char      der[2 + SHA256_DIGEST_LENGTH];
    ASN1_OBJECT       *obj;
    ASN1_OCTET_STRING *value;
    X509_EXTENSION    *ext;
    int                ok;

    der[0] = V_ASN1_OCTET_STRING;
    der[1] = SHA256_DIGEST_LENGTH;
    if (SHA256((const unsigned char *) key_authz, strlen(key_authz), der + 2)
        == NULL)
    {
        return -1;
    }

    obj = OBJ_txt2obj(ACME_IDENTIFIER_OID, 1);
    value = ASN1_OCTET_STRING_new();
    if (obj == NULL || value == NULL
        || !ASN1_OCTET_STRING_set(value, der, (int) sizeof(der)))
    {
        ASN1_OBJECT_free(obj);
        ASN1_OCTET_STRING_free(value);
        return -1;
    }

    ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, value);
    ASN1_OBJECT_free(obj);
    ASN1_OCTET_STRING_free(value);
    if (ext == NULL) {
        return -1;
    }

    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

int
acme_alpn_challenge_cert(const char *identifier, const char *key_authz,
    X509 **cert, EVP_PKEY **key, char *err, size_t errlen)
{
    X509      *x;
    X509_NAME *subj;
    EVP_PKEY  *k;
    BIGNUM    *serial;
    size_t     idlen;

    if (cert == NULL || key == NULL) {
        return acme_err(err, errlen, "tls-alpn-01: no output given");
    }
    *cert = NULL;
    *key = NULL;

    if (identifier == NULL || identifier[0] == '\0') {
        return acme_err(err, errlen, "tls-alpn-01: empty identifier");
    }
    if (key_authz == NULL || key_authz[0] == '\0') {
        return acme_err(err, errlen,
                        "tls-alpn-01: empty key authorization for \"%s\"",
                        identifier);
    }
    idlen = strlen(identifier);
    if (idlen > 253 + 2) {
        return acme_err(err, errlen, "tls-alpn-01: identifier too long");
    }

    k = acme_key_generate(ACME_KEY_EC_P256);
    if (k == NULL) {
        ERR_clear_error();
        return acme_err(err, errlen, "tls-alpn-01: key generation failed");
    }

    serial = NULL;
    x = X509_new();
    if (x == NULL || !X509_set_version(x, X509_VERSION_3)) {
        goto failed;
    }

    serial = BN_new();
    if (serial == NULL
        || !BN_rand(serial, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)
        || BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL)
    {
        goto failed;
    }

    /* an hour back tolerates a validation server whose clock runs behind */
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), CHALLENGE_DAYS, 0, NULL)
           == NULL)
    {
        goto failed;
    }

    /* the CA only looks at the SAN and acmeIdentifier; a CN helps humans
     * reading a capture, when it fits */
    subj = X509_get_subject_name(x);
    if (idlen <= CN_MAX
        && !X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
                                       (const unsigned char *) identifier,
                                       (int) idlen, -1, 0))
    {
        goto failed;
    }

    if (!X509_set_issuer_name(x, subj)
        || !X509_set_pubkey(x, k)
        || add_san(x, identifier) != 0
        || add_acme_identifier(x, key_authz) != 0
        || X509_sign(x, k, EVP_sha256()) <= 0)
    {
        goto failed;
    }

    BN_free(serial);
    *cert = x;
    *key = k;
    return 0;

failed:

    ERR_clear_error();
    BN_free(serial);
    X509_free(x);
    EVP_PKEY_free(k);
    return acme_err(err, errlen,
                    "tls-alpn-01: cannot build the challenge certificate "
                    "for \"%s\"", identifier);
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* "4.3.2.1" (the part before ".in-addr.arpa") -> "1.2.3.4".  Labels are
 * canonical decimals 0..255: "01" is not a reverse name anyone sends. */
static const char *
reverse_v4(const char *s, size_t n, char *buf, size_t len)
{
    unsigned       octet[4];
    unsigned char  addr[4];
    size_t         i, digits;
    int            k;

    k = 0;
    i = 0;
    while (k < 4) {
        octet[k] = 0;
        digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (digits == 3) {
                return NULL;
            }
            if (digits == 1 && octet[k] == 0) {
                return NULL;
            }
            octet[k] = octet[k] * 10 + (unsigned) (s[i] - '0');
            digits++;
            i++;
        }
        if (digits == 0 || octet[k] > 255) {
            return NULL;
        }
        k++;
        if (k < 4) {
            if (i >= n || s[i] != '.') {
                return NULL;
            }
            i++;
        }
    }
    if (i != n) {
        return NULL;
    }

    for (k = 0; k < 4; k++) {
        addr[k] = (unsigned char) octet[3 - k];
    }
    return inet_ntop(AF_INET, addr, buf, (socklen_t) len);
}

/* "b.a.9.8. ... .0" (32 nibbles, before ".ip6.arpa") -> canonical IPv6
 * text (RFC 5952, as inet_ntop writes it). */
static const char *
reverse_v6(const char *s, size_t n, char *buf, size_t len)
{
    unsigned char addr[16];
    int           k, v;

    if (n != 32 * 2 - 1) {
        return NULL;
    }

    memset(addr, 0, sizeof(addr));
    for (k = 0; k < 32; k++) {
        v = hexval(s[k * 2]);
        if (v < 0 || (k < 31 && s[k * 2 + 1] != '.')) {
            return NULL;
        }
        /* the first label is the lowest nibble of the last byte */
        addr[15 - k / 2] |= (unsigned char) (k % 2 ? v << 4 : v);
    }
    return inet_ntop(AF_INET6, addr, buf, (socklen_t) len);
}

static int
ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);

    return n > m && memcmp(s + n - m, suffix, m) == 0;
}

const char *
acme_alpn_sni_identifier(const char *sni, char *buf, size_t len)
{
    char   name[256];
    size_t n, i, label;
    char   c;

    if (sni == NULL || buf == NULL || len == 0) {
        return NULL;
    }

    n = strlen(sni);
    if (n == 0 || n > 253) {
        return NULL;
    }

    /* lowered, letters/digits/hyphen/underscore in non-empty labels of at
     * most 63 characters; anything else is no name the CA would validate */
    label = 0;
    for (i = 0; i < n; i++) {
        c = sni[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char) (c - 'A' + 'a');
        }
        if (c == '.') {
            if (label == 0) {
                return NULL;
            }
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                   || c == '-' || c == '_')
        {
            if (++label > 63) {
                return NULL;
            }
        } else {
            return NULL;
        }
        name[i] = c;
    }
    if (label == 0) {
        return NULL;
    }
    name[n] = '\0';

    if (ends_with(name, n, ".in-addr.arpa")) {
        return reverse_v4(name, n - sizeof(".in-addr.arpa") + 1, buf, len);
    }
    if (ends_with(name, n, ".ip6.arpa")) {
        return reverse_v6(name, n - sizeof(".ip6.arpa") + 1, buf, len);
    }

    if (n + 1 > len) {
        return NULL;
    }
    memcpy(buf, name, n + 1);
    return buf;
}

int
acme_alpn_offered(const unsigned char *in, size_t inlen)
{
    size_t i, plen;
    int    found, others;

    if (in == NULL || inlen == 0) {
        return 0;
    }

    /* a malformed list (an empty entry, or one running past the end) is
     * rejected as a whole, wherever "acme-tls/1" appears in it */
    found = 0;
    others = 0;
    i = 0;
    while (i < inlen) {
        plen = in[i++];
        if (plen == 0 || plen > inlen - i) {
            return 0;
        }
        if (plen == ACME_ALPN_PROTO_LEN
            && memcmp(in + i, ACME_ALPN_PROTO, ACME_ALPN_PROTO_LEN) == 0)
        {
            found = 1;
        }
        else {
            others = 1;
        }
        i += plen;
    }

    return found ? (others ? 1 : 2) : 0;
}
