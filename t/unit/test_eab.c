#include <stdlib.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "unit.h"
#include "acme_eab.h"
#include "acme_eab_file.h"
#include "acme_jws.h"
#include "acme_key.h"
#include "acme_util.h"

/* pebble's sample EAB key (base64url, 48 bytes) */
static const char sample_key64[] =
    "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

static char *
member(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);

    return json_is_string(v) ? acme_strdup(json_string_value(v)) : NULL;
}

static char *
b64_text(const char *s)
{
    size_t n;

    return (char *) acme_b64url_decode(s, strlen(s), &n);
}

/* Checks one EAB object independently: structure, header, payload and the
 * HMAC recomputed with OpenSSL's one-shot HMAC(). */
static void
check_eab(const char *text, EVP_PKEY *key, const char *kid,
    const unsigned char *mac_key, size_t mac_len, const char *alg,
    const EVP_MD *md, const char *url)
{
    json_t *o, *hdr;
    json_error_t jerr;
    char *p64, *pl64, *s64, *hdr_text, *payload, *jwk, *input, *expect;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    o = json_loads(text, 0, &jerr);
    CHECK(o != NULL);
    if (o == NULL) {
        return;
    }
    CHECK_INT(json_object_size(o), 3);
    p64 = member(o, "protected");
    pl64 = member(o, "payload");
    s64 = member(o, "signature");
    CHECK(p64 && pl64 && s64);

    hdr_text = p64 ? b64_text(p64) : NULL;
    hdr = hdr_text ? json_loads(hdr_text, 0, &jerr) : NULL;
    CHECK(hdr != NULL);
    if (hdr) {
        char *a = member(hdr, "alg"), *k = member(hdr, "kid"),
             *u = member(hdr, "url");
        CHECK_STR(a, alg);
        CHECK_STR(k, kid);
        CHECK_STR(u, url);
        /* no nonce, no jwk in the inner JWS (RFC 8555 section 7.3.4) */
        CHECK(json_object_get(hdr, "nonce") == NULL);
        CHECK(json_object_get(hdr, "jwk") == NULL);
        CHECK_INT(json_object_size(hdr), 3);
        free(a); free(k); free(u);
    }

    payload = pl64 ? b64_text(pl64) : NULL;
    jwk = acme_jwk_json(key);
    CHECK_STR(payload, jwk);

    input = (p64 && pl64) ? acme_sprintf("%s.%s", p64, pl64) : NULL;
    CHECK(HMAC(md, mac_key, (int) mac_len, (unsigned char *) input,
               input ? strlen(input) : 0, mac, &maclen) != NULL);
    CHECK_INT(maclen, EVP_MD_get_size(md));
    expect = acme_b64url_encode(mac, maclen);
    CHECK_STR(s64, expect);

    json_decref(hdr);
    json_decref(o);
    free(p64); free(pl64); free(s64); free(hdr_text); free(payload);
    free(jwk); free(input); free(expect);
}

UNIT_TEST(eab_jws_hs256_default)
{
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P256);
    unsigned char *mk;
    size_t ml = 0;
    char err[ACME_ERRLEN] = "";
    char *j;

    mk = acme_eab_mac_key_decode(sample_key64, &ml, err, sizeof(err));
    CHECK(mk != NULL);
    CHECK_INT(ml, 48);

    j = acme_eab_jws(key, "kid-1", mk, ml, NULL,
                     "https://127.0.0.1:14000/sign-me-up", err, sizeof(err));
    CHECK(j != NULL);
    if (j) {
        check_eab(j, key, "kid-1", mk, ml, "HS256", EVP_sha256(),
                  "https://127.0.0.1:14000/sign-me-up");
    }

    /* deterministic: same inputs, same bytes (HMAC, no nonce) */
    {
        char *j2 = acme_eab_jws(key, "kid-1", mk, ml, "HS256",
                                "https://127.0.0.1:14000/sign-me-up",
                                err, sizeof(err));
        CHECK_STR(j, j2);
        free(j2);
    }

    free(j);
    acme_eab_mac_key_free(mk, ml);
    EVP_PKEY_free(key);
}

UNIT_TEST(eab_jws_hs384_hs512_rsa_and_escaping)
{
    EVP_PKEY *ec = acme_key_generate(ACME_KEY_EC_P384);
    EVP_PKEY *rsa = acme_key_generate(ACME_KEY_RSA_2048);
    const unsigned char mk[] = "0123456789abcdef0123456789abcdef";
    char err[ACME_ERRLEN] = "";
    /* a kid needing JSON escaping still round-trips exactly */
    const char *kid = "kid \"quoted\" \\ slash";
    char *j;

    j = acme_eab_jws(ec, kid, mk, 32, "HS384", "https://ca/new-acct",
                     err, sizeof(err));
    CHECK(j != NULL);
    if (j) {
        check_eab(j, ec, kid, mk, 32, "HS384", EVP_sha384(),
                  "https://ca/new-acct");
    }
    free(j);

    j = acme_eab_jws(rsa, "k", mk, 32, "HS512", "https://ca/new-acct",
                     err, sizeof(err));
    CHECK(j != NULL);
    if (j) {
        check_eab(j, rsa, "k", mk, 32, "HS512", EVP_sha512(),
                  "https://ca/new-acct");
    }
    free(j);

    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

UNIT_TEST(eab_jws_bad_inputs)
{
    EVP_PKEY *key = acme_key_generate(ACME_KEY_EC_P256);
    const unsigned char mk[] = "secret-secret-secret";
    char err[ACME_ERRLEN];

    err[0] = '\0';
    CHECK(acme_eab_jws(key, "k", mk, 20, "RS256", "u", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "unsupported MAC algorithm \"RS256\"") != NULL);

    err[0] = '\0';
    CHECK(acme_eab_jws(key, NULL, mk, 20, NULL, "u", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "kid") != NULL);

    err[0] = '\0';
    CHECK(acme_eab_jws(key, "", mk, 20, NULL, "u", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "kid") != NULL);

    err[0] = '\0';
    CHECK(acme_eab_jws(key, "k", mk, 0, NULL, "u", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "empty MAC key") != NULL);

    err[0] = '\0';
    CHECK(acme_eab_jws(key, "k", mk, 20, NULL, NULL, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "newAccount URL") != NULL);

    err[0] = '\0';
    CHECK(acme_eab_jws(NULL, "k", mk, 20, NULL, "u", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "account key") != NULL);

    /* err may be NULL */
    CHECK(acme_eab_jws(key, "k", mk, 20, "none", "u", NULL, 0) == NULL);

    EVP_PKEY_free(key);
}

UNIT_TEST(eab_mac_key_decode_forms)
{
    unsigned char *a, *b, *c;
    size_t la = 0, lb = 0, lc = 0;
    char err[ACME_ERRLEN] = "";

    /* bytes fb ff bf: base64url "-_-_", standard base64 "+/+/" */
    a = acme_eab_mac_key_decode("-_-_", &la, err, sizeof(err));
    b = acme_eab_mac_key_decode(" \t+/+/\r\n", &lb, err, sizeof(err));
    c = acme_eab_mac_key_decode("YWJjZA==\n", &lc, err, sizeof(err));
    CHECK(a && b && c);
    CHECK_INT(la, 3);
    CHECK_INT(lb, 3);
    CHECK(a && b && memcmp(a, b, 3) == 0);
    CHECK(a && a[0] == 0xfb && a[1] == 0xff && a[2] == 0xbf);
    CHECK_INT(lc, 4);
    CHECK(c && memcmp(c, "abcd", 4) == 0);
    acme_eab_mac_key_free(a, la);
    acme_eab_mac_key_free(b, lb);
    acme_eab_mac_key_free(c, lc);
    acme_eab_mac_key_free(NULL, 0);
}

UNIT_TEST(eab_mac_key_decode_errors_hide_key)
{
    size_t l;
    char err[ACME_ERRLEN];

    err[0] = '\0';
    CHECK(acme_eab_mac_key_decode("  \n", &l, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "empty MAC key") != NULL);

    err[0] = '\0';
    CHECK(acme_eab_mac_key_decode(NULL, &l, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "no MAC key") != NULL);

    /* invalid characters: the message gives the length, never the key */
    err[0] = '\0';
    CHECK(acme_eab_mac_key_decode("SeCrEt!!zz", &l, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "not valid base64url") != NULL);
    CHECK(strstr(err, "10 characters") != NULL);
    CHECK(strstr(err, "SeCrEt") == NULL);

    /* impossible length (4n+1) */
    err[0] = '\0';
    CHECK(acme_eab_mac_key_decode("abcde", &l, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "not valid base64url") != NULL);
}

UNIT_TEST(eab_mac_key_read_file)
{
    char path[] = "/tmp/acme-eab-test-XXXXXX";
    char err[ACME_ERRLEN] = "";
    unsigned char *k;
    size_t l = 0;
    int fd;
    FILE *f;

    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) {
        return;
    }
    f = fdopen(fd, "w");
    fprintf(f, "%s\n", sample_key64);
    fclose(f);

    k = acme_eab_mac_key_read_file(path, &l, err, sizeof(err));
    CHECK(k != NULL);
    CHECK_INT(l, 48);
    acme_eab_mac_key_free(k, l);

    /* invalid content: the error names the file, not the content */
    f = fopen(path, "w");
    fprintf(f, "not*base64*secretvalue\n");
    fclose(f);
    err[0] = '\0';
    CHECK(acme_eab_mac_key_read_file(path, &l, err, sizeof(err)) == NULL);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "not valid base64url") != NULL);
    CHECK(strstr(err, "secretvalue") == NULL);

    /* too large */
    f = fopen(path, "w");
    for (int i = 0; i < 5000; i++) {
        fputc('A', f);
    }
    fclose(f);
    err[0] = '\0';
    CHECK(acme_eab_mac_key_read_file(path, &l, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "larger than") != NULL);

    unlink(path);

    err[0] = '\0';
    CHECK(acme_eab_mac_key_read_file(path, &l, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "cannot open") != NULL);
    CHECK(strstr(err, path) != NULL);
}

/* external_account_key / AcmeExternalAccountBinding values (acme_eab_conf,
 * acme_eab_conf_load): kid, alg in any case, key inline or from a file;
 * errors name the kid and file, never the key. */
UNIT_TEST(eab_conf_values)
{
    char path[] = "/tmp/acme-eab-conf-XXXXXX";
    char err[ACME_ERRLEN] = "";
    const char *alg = NULL;
    acme_eab_conf_t e;
    int fd;
    FILE *f;

    CHECK_INT(acme_eab_conf("kid-1", NULL, &alg, err, sizeof(err)), 0);
    CHECK_STR(alg, "HS256");
    CHECK_INT(acme_eab_conf("kid-1", "hs512", &alg, err, sizeof(err)), 0);
    CHECK_STR(alg, "HS512");
    CHECK_INT(acme_eab_conf("kid-1", "HS384", &alg, err, sizeof(err)), 0);
    CHECK_STR(alg, "HS384");

    CHECK_INT(acme_eab_conf("kid-1", "RS256", &alg, err, sizeof(err)), -1);
    CHECK(strstr(err, "'RS256'") != NULL);
    CHECK_INT(acme_eab_conf("", NULL, &alg, err, sizeof(err)), -1);
    CHECK(strstr(err, "empty key identifier") != NULL);
    CHECK_INT(acme_eab_conf("a b", NULL, &alg, err, sizeof(err)), -1);
    CHECK(strstr(err, "invalid key identifier") != NULL);
    CHECK_INT(acme_eab_conf("a\"b", NULL, &alg, err, sizeof(err)), -1);
    CHECK_INT(acme_eab_conf("a\\b", NULL, &alg, err, sizeof(err)), -1);

    /* inline */
    CHECK_INT(acme_eab_conf_load("kid-1", sample_key64, 0, "hs384", &e,
                                 err, sizeof(err)), 0);
    CHECK(e.key != NULL);
    CHECK_INT(e.key_len, 48);
    CHECK_STR(e.alg, "HS384");
    CHECK_STR(e.kid, "kid-1");
    acme_eab_conf_clear(&e);
    CHECK(e.key == NULL && e.kid == NULL && e.key_len == 0);

    err[0] = '\0';
    CHECK_INT(acme_eab_conf_load("kid-1", "not*base64*secretvalue", 0, NULL,
                                 &e, err, sizeof(err)), -1);
    CHECK(e.key == NULL && e.kid == NULL);
    CHECK(strstr(err, "kid-1") != NULL);
    CHECK(strstr(err, "MAC key") != NULL);
    CHECK(strstr(err, "(inline)") != NULL);
    CHECK(strstr(err, "secretvalue") == NULL);

    /* the alg is checked before the key is looked at */
    err[0] = '\0';
    CHECK_INT(acme_eab_conf_load("kid-1", sample_key64, 0, "HS1", &e,
                                 err, sizeof(err)), -1);
    CHECK(strstr(err, "'HS1'") != NULL);

    /* from a file */
    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) {
        return;
    }
    f = fdopen(fd, "w");
    fprintf(f, "%s\n", sample_key64);
    fclose(f);
    CHECK_INT(acme_eab_conf_load("kid-1", path, 1, NULL, &e, err,
                                 sizeof(err)), 0);
    CHECK_INT(e.key_len, 48);
    CHECK_STR(e.alg, "HS256");
    acme_eab_conf_clear(&e);

    unlink(path);
    err[0] = '\0';
    CHECK_INT(acme_eab_conf_load("kid-1", path, 1, NULL, &e, err,
                                 sizeof(err)), -1);
    CHECK(strstr(err, "kid-1") != NULL);
    CHECK(strstr(err, path) != NULL);
}
