/*
 * Certificates: inspection (status, renewal decisions), parsing of the
 * stored key + chain bundle for installation, and self-signed fallbacks.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_cert.h"
#include "acme_csr.h"
#include "acme_key.h"
#include "acme_util.h"

#define CN_MAX 64       /* ub-common-name (RFC 5280) */

static BIO *
mem_bio(const char *pem, size_t len)
{
    if (pem == NULL || len == 0 || len > INT_MAX) {
        return NULL;
    }
    return BIO_new_mem_buf(pem, (int) len);
}

/* Seconds since the epoch of an ASN1_TIME, without timegm() (not C11). */
static long long
asn1_time_unix(const ASN1_TIME *t)
{
    ASN1_TIME *epoch;
    int        days, secs;
    long long  r;

    epoch = ASN1_TIME_set(NULL, 0);
    if (epoch == NULL) {
        return 0;
    }

    r = 0;
    if (ASN1_TIME_diff(&days, &secs, epoch, t)) {
        r = (long long) days * 86400 + secs;
    }

    ASN1_TIME_free(epoch);
    return r;
}

static void
name_oneline(const X509_NAME *name, char *buf, size_t size)
{
    BIO  *bio;
    char *data;
    long  n;

    buf[0] = '\0';

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return;
    }

    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_get_mem_data(bio, &data);
        if (n > 0) {
            if ((size_t) n >= size) {
                n = (long) size - 1;
            }
            memcpy(buf, data, (size_t) n);
            buf[n] = '\0';
        }
    }

    BIO_free(bio);
}

/* subjectAltName DNS names and IP addresses (IPv6 as RFC 5952 text). */
static int
san_names(X509 *x, char ***out, size_t *n_out)
{
    GENERAL_NAMES       *gens;
    const GENERAL_NAME  *gn;
    const unsigned char *d;
    char                 ip[INET6_ADDRSTRLEN];
    char               **names, *s;
    int                  i, n, len;

    *out = NULL;
    *n_out = 0;

    gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (gens == NULL) {
        return 0;
    }

    n = sk_GENERAL_NAME_num(gens);
    names = calloc((size_t) n + 1, sizeof(char *));
    if (names == NULL) {
        GENERAL_NAMES_free(gens);
        return -1;
    }

    for (i = 0; i < n; i++) {
        gn = sk_GENERAL_NAME_value(gens, i);
        s = NULL;

        if (gn->type == GEN_DNS) {
            d = ASN1_STRING_get0_data(gn->d.dNSName);
            len = ASN1_STRING_length(gn->d.dNSName);
            /* a name with an embedded NUL would compare wrongly: skip it */
            if (len <= 0 || memchr(d, '\0', (size_t) len) != NULL) {
                continue;
            }
            s = acme_strndup((const char *) d, (size_t) len);

        } else if (gn->type == GEN_IPADD) {
            d = ASN1_STRING_get0_data(gn->d.iPAddress);
            len = ASN1_STRING_length(gn->d.iPAddress);
            if (len == 4) {
                s = acme_strdup(inet_ntop(AF_INET, d, ip, sizeof(ip)));
            } else if (len == 16) {
                s = acme_strdup(inet_ntop(AF_INET6, d, ip, sizeof(ip)));
            } else {
                continue;
            }

        } else {
            continue;
        }

        if (s == NULL) {
            goto failed;
        }
        names[(*n_out)++] = s;
    }

    GENERAL_NAMES_free(gens);
    *out = names;
    return 0;

failed:

    while (*n_out) {
        free(names[--*n_out]);
    }
    free(names);
    GENERAL_NAMES_free(gens);
    return -1;
}

/* acme_key_spki_pin of the certificate's key, from its SPKI as read */
static int
cert_spki_pin(X509 *x, char *out, size_t len)
{
    unsigned char  *der = NULL;
    int             n, rc;

    n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (n <= 0 || der == NULL) {
        return acme_key_spki_pin(X509_get0_pubkey(x), out, len);
    }
    rc = acme_spki_pin_der(der, (size_t) n, out, len);
    OPENSSL_free(der);
    return rc;
}

int
acme_cert_info_from_x509(X509 *x, acme_cert_info_t *out)
{
    BIGNUM          *bn;
    char            *hex;
    acme_key_type_t  kt;

    memset(out, 0, sizeof(*out));

    if (x == NULL) {
        return -1;
    }

    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;      /* uppercase, whole octets */
    BN_free(bn);
    if (hex == NULL) {
        ERR_clear_error();
        return -1;
    }
    snprintf(out->serial, sizeof(out->serial), "%s", hex);
    OPENSSL_free(hex);

    out->not_before = asn1_time_unix(X509_get0_notBefore(x));
    out->not_after = asn1_time_unix(X509_get0_notAfter(x));
    name_oneline(X509_get_issuer_name(x), out->issuer, sizeof(out->issuer));
    name_oneline(X509_get_subject_name(x), out->subject, sizeof(out->subject));

    if (san_names(x, &out->names, &out->n_names) != 0) {
        ERR_clear_error();
        return -1;
    }

    out->key_type = acme_key_type_of(X509_get0_pubkey(x), &kt) == 0
                    ? (int) kt : -1;
    acme_key_desc(X509_get0_pubkey(x), out->key_name, sizeof(out->key_name));
    (void) cert_spki_pin(x, out->spki_pin, sizeof(out->spki_pin));

    ERR_clear_error();
    return 0;
}

int
acme_cert_info_from_pem(const char *pem, size_t len, acme_cert_info_t *out,
    char *err, size_t errlen)
{
    BIO  *bio;
    X509 *x;
    int   rc;

    memset(out, 0, sizeof(*out));

    bio = mem_bio(pem, len);
    if (bio == NULL) {
        return acme_err(err, errlen, "empty PEM");
    }

    /* skips other blocks, e.g. the private key heading a stored bundle */
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();

    if (x == NULL) {
        return acme_err(err, errlen, "no certificate in PEM");
    }

    rc = acme_cert_info_from_x509(x, out);
    X509_free(x);

    if (rc != 0) {
        return acme_err(err, errlen, "cannot inspect certificate");
    }
    return 0;
}

int
acme_cert_info_key_other(const acme_cert_info_t *info, acme_key_type_t want)
{
    return info != NULL && info->key_type >= 0
           && info->key_type != (int) want;
}

void
acme_cert_info_free(acme_cert_info_t *info)
{
    size_t i;

    if (info == NULL) {
        return;
    }

    for (i = 0; i < info->n_names; i++) {
        free(info->names[i]);
    }
    free(info->names);
    info->names = NULL;
    info->n_names = 0;
}

/*
 * IP literals compare by address, so "2001:DB8:0::1" equals the
 * certificate's "2001:db8::1"; DNS names compare case-insensitively.
 */
static int
name_eq(const char *a, const char *b)
{
    unsigned char x[16], y[16];

    if (inet_pton(AF_INET, a, x) == 1) {
        return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
    }

    if (inet_pton(AF_INET6, a, x) == 1) {
        return inet_pton(AF_INET6, b, y) == 1 && memcmp(x, y, 16) == 0;
    }

    return strcasecmp(a, b) == 0;
}

static int
name_in(const char *name, const char *const *set, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (set[i] != NULL && name_eq(name, set[i])) {
            return 1;
        }
    }
    return 0;
}

int
acme_cert_info_names_equal(const acme_cert_info_t *info,
    const char *const *names, size_t n_names)
{
    size_t i;

    if (info == NULL || (names == NULL && n_names > 0)) {
        return 0;
    }

    /* set equality: duplicates on either side do not matter */
    for (i = 0; i < info->n_names; i++) {
        if (!name_in(info->names[i], names, n_names)) {
            return 0;
        }
    }

    for (i = 0; i < n_names; i++) {
        if (names[i] == NULL
            || !name_in(names[i], (const char *const *) info->names,
                        info->n_names))
        {
            return 0;
        }
    }

    return 1;
}

static int
is_key_block(const char *name)
{
    size_t n = strlen(name);

    /* "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED ..." */
    return n >= 11 && strcmp(name + n - 11, "PRIVATE KEY") == 0;
}

static EVP_PKEY *
key_from_block(const char *name, const char *header, const unsigned char *data,
    long dlen, char *err, size_t errlen)
{
    BIO      *bio;
    EVP_PKEY *key;
    char     *text;
    long      n;

    if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0 || header[0] != '\0') {
        acme_err(err, errlen, "encrypted private keys are not supported");
        return NULL;
    }

    /* PKCS#8, what the store writes: decoded directly (fast) */
    if (strcmp(name, "PRIVATE KEY") == 0) {
        key = acme_key_from_pkcs8_der(data, (size_t) dlen);
        if (key != NULL) {
            return key;
        }
    }

    /* re-armour the block: acme_key_from_pem knows every key format */
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        acme_err(err, errlen, "out of memory");
        return NULL;
    }

    key = NULL;
    if (PEM_write_bio(bio, name, header, data, dlen) > 0) {
        n = BIO_get_mem_data(bio, &text);
        if (n > 0) {
            key = acme_key_from_pem(text, (size_t) n);
        }
    }

    n = BIO_get_mem_data(bio, &text);
    if (n > 0) {
        OPENSSL_cleanse(text, (size_t) n);
    }
    BIO_free(bio);

    if (key == NULL) {
        acme_err(err, errlen, "invalid private key (%s)", name);
    }
    return key;
}

size_t
acme_bundle_split(const char *bundle, size_t len)
{
    static const char  begin[] = "-----BEGIN CERTIFICATE-----";
    size_t             i, n;

    n = sizeof(begin) - 1;
    if (bundle == NULL) {
        return 0;
    }
    for (i = 0; i + n <= len; i++) {
        if ((i == 0 || bundle[i - 1] == '\n')
            && memcmp(bundle + i, begin, n) == 0)
        {
            return i;
        }
    }
    return 0;
}

char *
acme_bundle_join(const char *key_pem, size_t key_len, const char *chain_pem,
    size_t chain_len, size_t *len)
{
    char    *buf;
    size_t   n;

    if (key_pem == NULL || key_len == 0 || chain_pem == NULL
        || chain_len == 0 || key_len > (size_t) -1 / 2
        || chain_len > (size_t) -1 / 2)
    {
        return NULL;
    }

    buf = malloc(key_len + chain_len + 2);
    if (buf == NULL) {
        return NULL;
    }

    memcpy(buf, key_pem, key_len);
    n = key_len;
    if (key_pem[key_len - 1] != '\n') {
        buf[n++] = '\n';
    }
    memcpy(buf + n, chain_pem, chain_len);
    n += chain_len;
    buf[n] = '\0';

    if (len != NULL) {
        *len = n;
    }
    return buf;
}

void
acme_bundle_free(char *bundle, size_t len)
{
    if (bundle != NULL) {
        OPENSSL_cleanse(bundle, len);
        free(bundle);
    }
}

struct acme_x509_cache_s {
    size_t           n;
    unsigned char   *der[ACME_X509_CACHE_MAX];
    long             len[ACME_X509_CACHE_MAX];
    X509            *x[ACME_X509_CACHE_MAX];
};

acme_x509_cache_t *
acme_x509_cache_new(void)
{
    return calloc(1, sizeof(acme_x509_cache_t));
}

void
acme_x509_cache_free(acme_x509_cache_t *cache)
{
    size_t  i;

    if (cache == NULL) {
        return;
    }

    for (i = 0; i < cache->n; i++) {
        free(cache->der[i]);
        X509_free(cache->x[i]);
    }

    free(cache);
}

/* A new reference to the cached X509 of this DER, or NULL. */
static X509 *
cache_get(acme_x509_cache_t *cache, const unsigned char *der, long len)
{
    size_t  i;

    for (i = 0; cache != NULL && i < cache->n; i++) {
        if (cache->len[i] == len && memcmp(cache->der[i], der, (size_t) len) == 0) {
            return X509_up_ref(cache->x[i]) ? cache->x[i] : NULL;
        }
    }

    return NULL;
}

static void
cache_put(acme_x509_cache_t *cache, const unsigned char *der, long len,
    X509 *x)
{
    unsigned char  *copy;

    if (cache == NULL || cache->n == ACME_X509_CACHE_MAX || !X509_up_ref(x)) {
        return;
    }

    copy = malloc((size_t) len);
    if (copy == NULL) {
        X509_free(x);
        return;
    }

    memcpy(copy, der, (size_t) len);
    cache->der[cache->n] = copy;
    cache->len[cache->n] = len;
    cache->x[cache->n] = x;
    cache->n++;
}

int
acme_bundle_parse(const char *pem, size_t len, EVP_PKEY **key, X509 **leaf,
    STACK_OF(X509) **chain, char *err, size_t errlen)
{
    return acme_bundle_parse_cached(pem, len, NULL, key, leaf, chain, err,
                                    errlen);
}

int
acme_bundle_parse_cached(const char *pem, size_t len,
    acme_x509_cache_t *cache, EVP_PKEY **key, X509 **leaf,
    STACK_OF(X509) **chain, char *err, size_t errlen)
{
    BIO                 *bio;
    char                *name, *header;
    unsigned char       *data;
    const unsigned char *p;
    long                 dlen;
    unsigned long        e;
    EVP_PKEY            *k;
    X509                *x, *first;
    STACK_OF(X509)      *rest;
    int                  rc;

    if (key) *key = NULL;
    if (leaf) *leaf = NULL;
    if (chain) *chain = NULL;

    bio = mem_bio(pem, len);
    if (bio == NULL) {
        return acme_err(err, errlen, "empty bundle");
    }

    rc = -1;
    k = NULL;
    first = NULL;
    rest = sk_X509_new_null();
    if (rest == NULL) {
        acme_err(err, errlen, "out of memory");
        goto done;
    }

    for ( ;; ) {
        name = NULL;
        header = NULL;
        data = NULL;

        if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
            e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM
                && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
            {
                break;      /* no more blocks */
            }
            acme_err(err, errlen, "malformed PEM block");
            goto done;
        }

        if (is_key_block(name)) {
            if (k != NULL) {
                OPENSSL_cleanse(data, (size_t) dlen);
                acme_err(err, errlen, "more than one private key in bundle");
                goto block_failed;
            }

            k = key_from_block(name, header, data, dlen, err, errlen);
            OPENSSL_cleanse(data, (size_t) dlen);
            if (k == NULL) {
                goto block_failed;
            }

        } else if (strcmp(name, PEM_STRING_X509) == 0
                   || strcmp(name, PEM_STRING_X509_OLD) == 0)
        {
            /* a chain certificate another bundle had: shared */
            x = (first != NULL) ? cache_get(cache, data, dlen) : NULL;

            if (x == NULL) {
                p = data;
                x = d2i_X509(NULL, &p, dlen);
                if (x == NULL || p != data + dlen) {
                    X509_free(x);
                    acme_err(err, errlen, "invalid certificate in bundle");
                    goto block_failed;
                }

                if (first != NULL) {
                    cache_put(cache, data, dlen, x);
                }
            }

            if (first == NULL) {
                first = x;
            } else if (!sk_X509_push(rest, x)) {
                X509_free(x);
                acme_err(err, errlen, "out of memory");
                goto block_failed;
            }
        }
        /* other blocks (e.g. "EC PARAMETERS") carry nothing we need */

        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        continue;

    block_failed:

        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        goto done;
    }

    if (first == NULL) {
        acme_err(err, errlen, "no certificate in bundle");
        goto done;
    }

    if (k != NULL && EVP_PKEY_eq(X509_get0_pubkey(first), k) != 1) {
        acme_err(err, errlen, "private key does not match the certificate");
        goto done;
    }

    if (key) {
        *key = k;
        k = NULL;
    }
    if (leaf) {
        *leaf = first;
        first = NULL;
    }
    if (chain) {
        *chain = rest;
        rest = NULL;
    }
    rc = 0;

done:

    BIO_free(bio);
    EVP_PKEY_free(k);
    X509_free(first);
    sk_X509_pop_free(rest, X509_free);
    ERR_clear_error();
    return rc;
}

/* Is the identifier (a DNS name or an IP literal) in the SANs? */
static int
san_has(const GENERAL_NAMES *gens, const char *name)
{
    const GENERAL_NAME  *gn;
    const unsigned char *d;
    unsigned char        ip[16];
    size_t               iplen, nlen;
    int                  i, len;

    if (inet_pton(AF_INET, name, ip) == 1) {
        iplen = 4;
    } else if (inet_pton(AF_INET6, name, ip) == 1) {
        iplen = 16;
    } else {
        iplen = 0;
    }

    nlen = strlen(name);

    for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        gn = sk_GENERAL_NAME_value(gens, i);

        if (iplen && gn->type == GEN_IPADD) {
            d = ASN1_STRING_get0_data(gn->d.iPAddress);
            len = ASN1_STRING_length(gn->d.iPAddress);
            if ((size_t) len == iplen && memcmp(d, ip, iplen) == 0) {
                return 1;
            }

        } else if (!iplen && gn->type == GEN_DNS) {
            d = ASN1_STRING_get0_data(gn->d.dNSName);
            len = ASN1_STRING_length(gn->d.dNSName);
            if ((size_t) len == nlen
                && strncasecmp((const char *) d, name, nlen) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}

/* The leaf of an issued chain, after checking that every block parses. */
static X509 *
issued_leaf(const char *pem, size_t len, char *err, size_t errlen)
{
    BIO                 *bio;
    char                *name, *header;
    unsigned char       *data;
    const unsigned char *p;
    long                 dlen;
    unsigned long        e;
    X509                *x, *leaf;
    int                  n;

    bio = mem_bio(pem, len);
    if (bio == NULL) {
        acme_err(err, errlen, "the chain is empty");
        return NULL;
    }

    leaf = NULL;

    for (n = 1; ; n++) {
        if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
            e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM
                && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
            {
                break;
            }
            acme_err(err, errlen, "PEM block %d of the chain is malformed",
                     n);
            goto failed;
        }

        x = NULL;
        if (strcmp(name, PEM_STRING_X509) == 0) {
            p = data;
            x = d2i_X509(NULL, &p, dlen);
            if (x != NULL && p != data + dlen) {
                X509_free(x);
                x = NULL;
            }
            if (x == NULL) {
                acme_err(err, errlen, "certificate %d of the chain does not "
                         "parse", n);
            }

        } else {
            acme_err(err, errlen, "PEM block %d of the chain is \"%.40s\", "
                     "not a certificate", n, name);
        }

        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);

        if (x == NULL) {
            goto failed;
        }

        if (leaf == NULL) {
            leaf = x;
        } else {
            X509_free(x);
        }
    }

    if (leaf == NULL) {
        acme_err(err, errlen, "the chain holds no certificate");
    }

    BIO_free(bio);
    ERR_clear_error();
    return leaf;

failed:

    X509_free(leaf);
    BIO_free(bio);
    ERR_clear_error();
    return NULL;
}

int
acme_cert_check_issued(const char *pem, size_t len, EVP_PKEY *key,
    const char *const *names, size_t n_names, long long now,
    char *err, size_t errlen)
{
    X509           *leaf;
    EVP_PKEY       *pub;
    GENERAL_NAMES  *gens;
    long long       nb, na;
    size_t          i;
    int             rc;
    char            buf[32];

    leaf = issued_leaf(pem, len, err, errlen);
    if (leaf == NULL) {
        return -1;
    }

    rc = -1;
    gens = NULL;

    pub = X509_get0_pubkey(leaf);
    if (pub == NULL || key == NULL || EVP_PKEY_eq(pub, key) != 1) {
        acme_err(err, errlen, "its public key is not the key of the CSR");
        goto done;
    }

    gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);

    for (i = 0; i < n_names; i++) {
        if (gens == NULL || !san_has(gens, names[i])) {
            acme_err(err, errlen, "it lacks the ordered identifier \"%s\" "
                     "in its subjectAltName", names[i]);
            goto done;
        }
    }

    nb = asn1_time_unix(X509_get0_notBefore(leaf));
    na = asn1_time_unix(X509_get0_notAfter(leaf));

    /* a notBefore ahead of our clock is no reason to refuse it: the host
     * serves it from then on (acme_job_activate_at, issue 16) */
    if (na <= nb) {
        acme_err(err, errlen, "its validity ends (%s) before it begins",
                 acme_time_rfc3339(na, buf, sizeof(buf)));
        goto done;
    }

    if (na <= now) {
        acme_err(err, errlen, "it expired at %s",
                 acme_time_rfc3339(na, buf, sizeof(buf)));
        goto done;
    }

    rc = 0;

done:

    GENERAL_NAMES_free(gens);
    X509_free(leaf);
    ERR_clear_error();
    return rc;
}

/* The subjectAltName acme_csr_build makes for names, so that a self-signed
 * certificate and a CSR handle names identically (built directly: no CSR
 * signed and parsed back per placeholder). */
static int
add_san(X509 *x, const char *const *names, size_t n_names)
{
    X509_EXTENSION  *ext;
    int              ok;

    ext = acme_san_extension(names, n_names, NULL, 0);
    if (ext == NULL) {
        return -1;
    }

    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int
add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX      ctx;
    X509_EXTENSION *ext;
    int             ok;

    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return -1;
    }

    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

X509 *
acme_selfsigned_x509(EVP_PKEY *key, const char *const *names,
    size_t n_names, int days)
{
    X509           *x;
    X509_NAME      *subj;
    BIGNUM         *serial;
    const EVP_MD   *md;
    acme_key_type_t t;
    size_t          cnlen;
    int             ok;

    if (key == NULL || names == NULL || n_names == 0 || names[0] == NULL
        || days <= 0)
    {
        return NULL;
    }

    ok = 0;
    serial = NULL;

    x = X509_new();
    if (x == NULL || !X509_set_version(x, X509_VERSION_3)) {
        goto done;
    }

    /* random positive 127-bit serial: no two fallbacks share one */
    serial = BN_new();
    if (serial == NULL
        || !BN_rand(serial, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)
        || BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL)
    {
        goto done;
    }

    /* an hour back tolerates clients whose clocks run a little slow */
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), days, -3600, NULL) == NULL)
    {
        goto done;
    }

    cnlen = strlen(names[0]);
    if (cnlen > CN_MAX) {
        cnlen = CN_MAX;
    }

    subj = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_NID(subj, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *) names[0],
                                    (int) cnlen, -1, 0)
        || !X509_set_issuer_name(x, subj)
        || !X509_set_pubkey(x, key))
    {
        goto done;
    }

    if (add_san(x, names, n_names) != 0
        || add_ext(x, NID_basic_constraints, "critical,CA:FALSE") != 0
        || add_ext(x, NID_key_usage, EVP_PKEY_is_a(key, "RSA")
                   ? "critical,digitalSignature,keyEncipherment"
                   : "critical,digitalSignature") != 0
        || add_ext(x, NID_ext_key_usage, "serverAuth") != 0
        || add_ext(x, NID_subject_key_identifier, "hash") != 0)
    {
        goto done;
    }

    md = EVP_sha256();
    if (acme_key_type_of(key, &t) == 0 && t == ACME_KEY_EC_P384) {
        md = EVP_sha384();
    } else if (acme_key_type_of(key, &t) == 0 && t == ACME_KEY_EC_P521) {
        md = EVP_sha512();
    } else if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) {
        md = NULL;
    }

    ok = X509_sign(x, key, md) > 0;

done:

    BN_free(serial);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    ERR_clear_error();
    return x;
}


char *
acme_selfsigned_pem(EVP_PKEY *key, const char *const *names,
    size_t n_names, int days, size_t *len)
{
    X509   *x;
    BIO    *bio;
    char   *out, *data;
    long    n;

    x = acme_selfsigned_x509(key, names, n_names, days);
    if (x == NULL) {
        return NULL;
    }

    out = NULL;
    bio = BIO_new(BIO_s_mem());
    if (bio != NULL && PEM_write_bio_X509(bio, x)) {
        n = BIO_get_mem_data(bio, &data);
        if (n > 0) {
            out = acme_strndup(data, (size_t) n);
            if (out != NULL && len != NULL) {
                *len = (size_t) n;
            }
        }
    }

    BIO_free(bio);
    X509_free(x);
    ERR_clear_error();
    return out;
}


int
acme_cert_chain_issued_by(const char *pem, size_t len, const char *cn)
{
    BIO              *bio;
    X509             *x, *top;
    X509_NAME        *issuer;
    X509_NAME_ENTRY  *ent;
    ASN1_STRING      *d;
    int               i, found;
    size_t            cl;

    if (pem == NULL || cn == NULL || len > INT_MAX) {
        return 0;
    }
    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        return 0;
    }
    top = NULL;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_free(top);
        top = x;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (top == NULL) {
        return 0;
    }

    found = 0;
    cl = strlen(cn);
    issuer = X509_get_issuer_name(top);
    for (i = -1; !found; ) {
        i = X509_NAME_get_index_by_NID(issuer, NID_commonName, i);
        if (i < 0) {
            break;
        }
        ent = X509_NAME_get_entry(issuer, i);
        d = ent ? X509_NAME_ENTRY_get_data(ent) : NULL;
        /* the bytes as encoded, as nginx-acme compares them */
        found = d != NULL && (size_t) ASN1_STRING_length(d) == cl
                && memcmp(ASN1_STRING_get0_data(d), cn, cl) == 0;
    }
    X509_free(top);
    return found;
}
