/*
 * Before an order (acme_job_prep.h): account key and stored URL, the
 * certificate key, the engine configuration, the External Account Binding
 * hint; and the bundle a new certificate becomes (acme_bundle_join).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme_cert.h"
#include "acme_job_account.h"
#include "acme_job_prep.h"
#include "acme_jws.h"
#include "acme_store.h"
#include "acme_util.h"
#include "unit.h"

static void
rm_root(char *root)
{
    char  *p;

    /* only what these tests create */
    p = acme_sprintf("%s/account.key", root);
    unlink(p);
    free(p);
    p = acme_sprintf("%s/account.json", root);
    unlink(p);
    free(p);
    rmdir(root);
    free(root);
}

/* one first order of many at once: all load-or-create the account key */
typedef struct {
    const acme_job_conf_t  *conf;
    pthread_barrier_t      *go;
    EVP_PKEY               *key;
    char                    err[ACME_ERRLEN];
} key_racer_t;

static void *
key_racer(void *arg)
{
    key_racer_t  *r = arg;
    char         *url = NULL;

    pthread_barrier_wait(r->go);
    if (acme_job_account_key(r->conf, &r->key, &url, NULL, 0, r->err,
                             sizeof(r->err)) != 0)
    {
        r->key = NULL;
    }
    free(url);
    return NULL;
}

static int
same_key(EVP_PKEY *a, EVP_PKEY *b)
{
    char  *ta = acme_jwk_thumbprint(a), *tb = acme_jwk_thumbprint(b);
    int    same = ta != NULL && tb != NULL && strcmp(ta, tb) == 0;

    free(ta);
    free(tb);
    return same;
}


UNIT_TEST(job_prep_account_key)
{
    acme_job_conf_t   c;
    EVP_PKEY         *k1 = NULL, *k2 = NULL, *k3 = NULL;
    acme_key_type_t   t;
    char             *root, *url = NULL, *p, warn[ACME_ERRLEN];
    char              err[ACME_ERRLEN];
    struct stat       st;
    FILE             *f;

    root = unit_tmpdir();
    CHECK(root != NULL);
    if (root == NULL) {
        return;
    }

    memset(&c, 0, sizeof(c));
    c.directory_url = "https://ca.example/dir";
    c.state_dir = root;
    c.account_key_type = ACME_KEY_EC_P384;

    /* none stored: made (of the issuer's type), stored 0600, no URL */
    CHECK_INT(acme_job_account_key(&c, &k1, &url, warn, sizeof(warn), err,
                                   sizeof(err)), 0);
    CHECK(k1 != NULL && url == NULL);
    CHECK_STR(warn, "");
    CHECK(k1 != NULL && acme_key_type_of(k1, &t) == 0
          && t == ACME_KEY_EC_P384);
    p = acme_sprintf("%s/account.key", root);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
    free(p);

    /* stored: the same key, and the URL recorded for it */
    CHECK_INT(acme_store_save_account(root, c.directory_url, k1,
                                      "https://ca.example/acct/7", err,
                                      sizeof(err)), 0);
    c.account_key_type = ACME_KEY_RSA_2048;     /* only for a new key */
    CHECK_INT(acme_job_account_key(&c, &k2, &url, warn, sizeof(warn), err,
                                   sizeof(err)), 0);
    CHECK(k2 != NULL && same_key(k1, k2));
    CHECK_STR(url, "https://ca.example/acct/7");
    CHECK_STR(warn, "");
    free(url);
    url = NULL;

    /* another directory's URL is not this one's */
    c.directory_url = "https://other.example/dir";
    CHECK_INT(acme_job_account_key(&c, &k3, &url, NULL, 0, err, sizeof(err)),
              0);
    CHECK(url == NULL);
    EVP_PKEY_free(k3);
    k3 = NULL;
    c.directory_url = "https://ca.example/dir";

    /* a broken account.json: no URL, a warning, no failure (the same
     * buffer for warn and err, as nginx's thread task uses it) */
    p = acme_sprintf("%s/account.json", root);
    f = fopen(p, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("{not json", f);
        fclose(f);
    }
    free(p);
    CHECK_INT(acme_job_account_key(&c, &k3, &url, err, sizeof(err), err,
                                   sizeof(err)), 0);
    CHECK(k3 != NULL && same_key(k1, k3) && url == NULL);
    CHECK(strncmp(err, "ignoring the stored account: ",
                  strlen("ignoring the stored account: ")) == 0);
    EVP_PKEY_free(k3);
    k3 = NULL;

    /* an unusable account.key: an error naming it, no key */
    p = acme_sprintf("%s/account.key", root);
    unlink(p);
    CHECK_INT(symlink("/etc/hostname", p), 0);
    free(p);
    CHECK_INT(acme_job_account_key(&c, &k3, &url, warn, sizeof(warn), err,
                                   sizeof(err)), -1);
    CHECK(k3 == NULL && url == NULL);
    CHECK(strncmp(err, "account key: ", 13) == 0);
    CHECK(strstr(err, "account.key") != NULL);

    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    rm_root(root);
}


UNIT_TEST(job_prep_cert_key)
{
    acme_job_conf_t   c;
    EVP_PKEY         *k = NULL, *back;
    acme_key_type_t   t;
    char             *pem = NULL, err[ACME_ERRLEN];
    size_t            len = 0;

    memset(&c, 0, sizeof(c));

    /* key= of the certificate */
    c.cert_key_type = ACME_KEY_EC_P384;
    CHECK_INT(acme_job_cert_key(&c, &k, &pem, &len, err, sizeof(err)), 0);
    CHECK(k != NULL && acme_key_type_of(k, &t) == 0 && t == ACME_KEY_EC_P384);
    CHECK(pem != NULL && len == strlen(pem));
    back = pem ? acme_key_from_pem(pem, len) : NULL;
    CHECK(back != NULL && EVP_PKEY_eq(back, k) == 1);
    EVP_PKEY_free(back);
    OPENSSL_cleanse(pem, len);
    free(pem);
    EVP_PKEY_free(k);

    /* a fresh one each time; the PEM only when asked for */
    c.cert_key_type = ACME_KEY_EC_P256;
    CHECK_INT(acme_job_cert_key(&c, &k, NULL, NULL, err, sizeof(err)), 0);
    CHECK_INT(acme_job_cert_key(&c, &back, NULL, NULL, err, sizeof(err)), 0);
    CHECK(k != NULL && back != NULL && EVP_PKEY_eq(k, back) != 1);
    CHECK(acme_key_type_of(k, &t) == 0 && t == ACME_KEY_EC_P256);
    EVP_PKEY_free(k);
    EVP_PKEY_free(back);
}


/* No store ("state_path off"): the key in memory, no URL; without one a
 * clear error, never a path of NULL. */
UNIT_TEST(job_prep_account_key_no_store)
{
    char             err[ACME_ERRLEN], warn[ACME_ERRLEN], *pem, *url;
    size_t           len;
    EVP_PKEY        *k, *got;
    acme_job_conf_t  c;

    k = acme_key_generate(ACME_KEY_EC_P256);
    pem = k ? acme_key_to_pem(k, &len) : NULL;
    CHECK(pem != NULL);
    if (pem == NULL) {
        EVP_PKEY_free(k);
        return;
    }
    memset(&c, 0, sizeof(c));
    c.directory_url = "https://ca.example/dir";
    c.account_key_pem = pem;
    c.account_key_pem_len = len;
    got = NULL;
    url = (char *) "x";
    CHECK_INT(acme_job_account_key(&c, &got, &url, warn, sizeof(warn), err,
                                   sizeof(err)), 0);
    CHECK(got != NULL && same_key(k, got) && url == NULL);
    CHECK_STR(warn, "");
    EVP_PKEY_free(got);

    c.account_key_pem = NULL;
    got = NULL;
    CHECK_INT(acme_job_account_key(&c, &got, &url, NULL, 0, err,
                                   sizeof(err)), -1);
    CHECK(got == NULL && url == NULL);
    CHECK_STR(err, "account key: no store and no key in memory");
    free(pem);
    EVP_PKEY_free(k);
}


UNIT_TEST(job_prep_order_config)
{
    static const char *const  contacts[] = { "mailto:a@example.test" };
    static const char *const  names[] = { "a.example.test", "b.example.test" };
    static unsigned char       mac[] = { 1, 2, 3 };
    acme_job_conf_t           c;
    acme_eab_conf_t           eab;
    acme_order_config_t       oc;
    EVP_PKEY                 *ak, *ck;

    ak = acme_key_generate(ACME_KEY_EC_P256);
    ck = acme_key_generate(ACME_KEY_EC_P256);

    memset(&c, 0, sizeof(c));
    c.directory_url = "https://ca.example/dir";
    c.contacts = contacts;
    c.n_contacts = 1;
    c.terms_agreed = 2;
    c.names = names;
    c.n_names = 2;
    eab.kid = "kid-1";
    eab.key = mac;
    eab.key_len = sizeof(mac);
    eab.alg = "HS384";
    c.eab = &eab;

    memset(&oc, 0x5a, sizeof(oc));
    acme_job_order_config(&oc, &c, "dns-01", ak, "https://ca.example/acct/1",
                          ck);
    CHECK_STR(oc.directory_url, "https://ca.example/dir");
    CHECK(oc.account_key == ak && oc.cert_key == ck);
    CHECK_STR(oc.account_url, "https://ca.example/acct/1");
    CHECK(oc.contacts == contacts && oc.n_contacts == 1);
    CHECK_INT(oc.terms_agreed, 1);
    CHECK(oc.names == names && oc.n_names == 2);
    CHECK_STR(oc.challenge_type, "dns-01");
    CHECK_INT(oc.deadline, 0);
    CHECK_INT(oc.max_bad_nonce, 0);
    CHECK_STR(oc.eab_kid, "kid-1");
    CHECK(oc.eab_key == mac && oc.eab_key_len == sizeof(mac));
    CHECK_STR(oc.eab_alg, "HS384");

    /* EAB needs both a kid and a key; none without */
    eab.kid = "";
    acme_job_order_config(&oc, &c, NULL, ak, NULL, ck);
    CHECK(oc.eab_kid == NULL && oc.eab_key == NULL && oc.eab_alg == NULL);
    CHECK(oc.account_url == NULL && oc.challenge_type == NULL);
    eab.kid = "kid-1";
    eab.key = NULL;
    acme_job_order_config(&oc, &c, NULL, ak, NULL, ck);
    CHECK(oc.eab_kid == NULL && oc.eab_key_len == 0);
    c.terms_agreed = 0;
    acme_job_order_config(&oc, &c, NULL, ak, NULL, ck);
    CHECK_INT(oc.terms_agreed, 0);

    /* the engine takes it */
    {
        char            err[ACME_ERRLEN];
        acme_engine_t  *e;

        acme_job_order_config(&oc, &c, "http-01", ak, NULL, ck);
        e = acme_engine_new(&oc, err, sizeof(err));
        CHECK(e != NULL);
        acme_engine_free(e);
    }

    EVP_PKEY_free(ak);
    EVP_PKEY_free(ck);
}


#define NGX_ISSUER  "acme_issuer \"pebble\""
#define NGX_EAB     "external_account_key"
#define AP_ISSUER   "<AcmeIssuer pebble>"
#define AP_EAB      "AcmeExternalAccountBinding"

UNIT_TEST(job_prep_eab_hint)
{
    const char  *r, *missing, *refused;
    char         buf[ACME_ERRLEN];

    missing = "new-account: the CA requires External Account Binding "
              "(meta.externalAccountRequired), and no EAB kid and MAC key "
              "are configured";
    refused = "new-account: urn:ietf:params:acme:error:unauthorized: bad "
              "MAC; the CA rejected the External Account Binding (check the "
              "EAB kid \"kid-1\" and MAC key)";

    /* none configured, the CA wants it: the block and its directive, in
     * each server's words, one logic */
    r = acme_job_eab_hint(missing, NGX_ISSUER, NGX_EAB, NULL, buf,
                          sizeof(buf));
    CHECK(r == buf);
    CHECK(strncmp(r, NGX_ISSUER " requires External Account Binding: add \""
                  NGX_EAB " KID KEY\" to it (new-account: ",
                  strlen(NGX_ISSUER " requires External Account Binding: "
                         "add \"" NGX_EAB " KID KEY\" to it (new-account: "))
          == 0);
    CHECK(r[strlen(r) - 1] == ')');
    r = acme_job_eab_hint(missing, AP_ISSUER, AP_EAB, "", buf, sizeof(buf));
    CHECK(strncmp(r, AP_ISSUER " requires External Account Binding: add \""
                  AP_EAB " KID KEY\" to it (", strlen(AP_ISSUER " requires "
                  "External Account Binding: add \"" AP_EAB " KID KEY\" to "
                  "it (")) == 0);

    /* a CA's problem type, in any case (nginx matched case-insensitively,
     * Apache not) */
    r = acme_job_eab_hint("new-account: urn:ietf:params:acme:error:"
                          "EXTERNALACCOUNTREQUIRED: no", AP_ISSUER, AP_EAB,
                          NULL, buf, sizeof(buf));
    CHECK(r == buf && strstr(r, AP_EAB " KID KEY") != NULL);
    r = acme_job_eab_hint("new-account: external account binding missing",
                          NGX_ISSUER, NGX_EAB, NULL, buf, sizeof(buf));
    CHECK(r == buf);

    /* only new-account concerns it (Apache hinted at any step) */
    r = acme_job_eab_hint("new-order: External Account Binding odd",
                          AP_ISSUER, AP_EAB, NULL, buf, sizeof(buf));
    CHECK_STR(r, "new-order: External Account Binding odd");
    r = acme_job_eab_hint("new-account: HTTP 500", NGX_ISSUER, NGX_EAB, NULL,
                          buf, sizeof(buf));
    CHECK_STR(r, "new-account: HTTP 500");

    /* configured: any new-account error names the block and the kid */
    r = acme_job_eab_hint(refused, NGX_ISSUER, NGX_EAB, "kid-1", buf,
                          sizeof(buf));
    CHECK(strncmp(r, NGX_ISSUER " with \"" NGX_EAB " kid-1\": new-account: ",
                  strlen(NGX_ISSUER " with \"" NGX_EAB " kid-1\": "
                         "new-account: ")) == 0);
    r = acme_job_eab_hint("new-account: HTTP 500", AP_ISSUER, AP_EAB,
                          "kid-1", buf, sizeof(buf));
    CHECK_STR(r, AP_ISSUER " with \"" AP_EAB " kid-1\": new-account: HTTP 500");
    r = acme_job_eab_hint("finalize: badCSR", AP_ISSUER, AP_EAB, "kid-1", buf,
                          sizeof(buf));
    CHECK_STR(r, "finalize: badCSR");

    /* no message; a short buffer truncates */
    CHECK_STR(acme_job_eab_hint(NULL, AP_ISSUER, AP_EAB, NULL, buf,
                                sizeof(buf)), "unknown error");
    r = acme_job_eab_hint(refused, NGX_ISSUER, NGX_EAB, "kid-1", buf, 8);
    CHECK_STR(r, "acme_is");
}


UNIT_TEST(bundle_join)
{
    char    *b;
    size_t   len = 0;

    b = acme_bundle_join("KEY\n", 4, "CHAIN\n", 6, &len);
    CHECK_STR(b, "KEY\nCHAIN\n");
    CHECK_INT(len, 10);
    acme_bundle_free(b, len);

    /* a key PEM without its final newline stays valid PEM */
    b = acme_bundle_join("KEY", 3, "CHAIN\n", 6, &len);
    CHECK_STR(b, "KEY\nCHAIN\n");
    CHECK_INT(len, 10);
    acme_bundle_free(b, len);

    /* lengths, not NULs, delimit the parts */
    b = acme_bundle_join("KEY\nxx", 4, "CHAIN\nyy", 6, &len);
    CHECK_STR(b, "KEY\nCHAIN\n");
    acme_bundle_free(b, len);

    CHECK(acme_bundle_join("", 0, "CHAIN\n", 6, &len) == NULL);
    CHECK(acme_bundle_join("KEY\n", 4, NULL, 0, &len) == NULL);
    acme_bundle_free(NULL, 0);
}


/*
 * Jobs making the first account key at once: every one gets the one key
 * stored; none sees the new file with two links for a moment (a reader
 * refuses a hard-linked key: the creation must not leave one behind, not
 * even briefly).
 */
#define RACERS  6
#define ROUNDS  150

UNIT_TEST(job_prep_account_key_concurrent_first)
{
    acme_job_conf_t     c;
    pthread_barrier_t   go;
    pthread_t           tid[RACERS];
    key_racer_t         r[RACERS];
    char               *root;
    int                 round, i, failed = 0;

    for (round = 0; round < ROUNDS && !failed; round++) {
        root = unit_tmpdir();
        CHECK(root != NULL);
        if (root == NULL) {
            return;
        }
        memset(&c, 0, sizeof(c));
        c.directory_url = "https://ca.example/dir";
        c.state_dir = root;
        c.account_key_type = ACME_KEY_EC_P256;

        pthread_barrier_init(&go, NULL, RACERS);
        for (i = 0; i < RACERS; i++) {
            memset(&r[i], 0, sizeof(r[i]));
            r[i].conf = &c;
            r[i].go = &go;
            pthread_create(&tid[i], NULL, key_racer, &r[i]);
        }
        for (i = 0; i < RACERS; i++) {
            pthread_join(tid[i], NULL);
        }
        pthread_barrier_destroy(&go);

        for (i = 0; i < RACERS; i++) {
            if (r[i].key == NULL || !same_key(r[i].key, r[0].key)) {
                fprintf(stderr, "round %d racer %d: %s\n", round, i,
                        r[i].key ? "another key" : r[i].err);
                failed = 1;
            }
        }
        for (i = 0; i < RACERS; i++) {
            EVP_PKEY_free(r[i].key);
        }
        rm_root(root);
    }
    CHECK(!failed);
}


/*
 * key_reuse: the stored bundle's key when on, of the same type, and not a
 * revoked certificate's replacement; a fresh key otherwise (also the
 * first issuance: nothing stored).
 */
UNIT_TEST(job_prep_key_reuse)
{
    acme_job_conf_t   c;
    EVP_PKEY         *stored_key, *k, *other;
    char             *pem, *bundle, err[ACME_ERRLEN];
    size_t            len, blen;
    int               reused;
    static const char chain[] =
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    memset(&c, 0, sizeof(c));
    c.cert_key_type = ACME_KEY_EC_P256;
    stored_key = acme_key_generate(ACME_KEY_EC_P256);
    CHECK(stored_key != NULL);
    pem = acme_key_to_pem(stored_key, &len);
    CHECK(pem != NULL);
    /* as bundle.pem: the key, then the chain */
    blen = len + sizeof(chain) - 1;
    bundle = malloc(blen + 1);
    CHECK(bundle != NULL);
    memcpy(bundle, pem, len);
    memcpy(bundle + len, chain, sizeof(chain));

    /* off (the default): never the stored key */
    CHECK(acme_job_reuse_key(&c, bundle, blen) == NULL);
    CHECK_INT(acme_job_cert_key_stored(&c, bundle, blen, &k, NULL, NULL,
                                       &reused, err, sizeof(err)), 0);
    CHECK(reused == 0 && k != NULL && EVP_PKEY_eq(k, stored_key) != 1);
    EVP_PKEY_free(k);

    /* on: the stored key */
    c.key_reuse = 1;
    k = acme_job_reuse_key(&c, bundle, blen);
    CHECK(k != NULL && EVP_PKEY_eq(k, stored_key) == 1);
    EVP_PKEY_free(k);
    CHECK_INT(acme_job_cert_key_stored(&c, bundle, blen, &k, NULL, NULL,
                                       &reused, err, sizeof(err)), 0);
    CHECK(reused == 1 && k != NULL && EVP_PKEY_eq(k, stored_key) == 1);
    EVP_PKEY_free(k);

    /* on, nothing stored (the first issuance): fresh */
    CHECK(acme_job_reuse_key(&c, NULL, 0) == NULL);
    CHECK_INT(acme_job_cert_key_stored(&c, NULL, 0, &k, NULL, NULL,
                                       &reused, err, sizeof(err)), 0);
    CHECK(reused == 0 && k != NULL);
    EVP_PKEY_free(k);

    /* on, a key type change: fresh, of the new type */
    c.cert_key_type = ACME_KEY_EC_P384;
    CHECK(acme_job_reuse_key(&c, bundle, blen) == NULL);
    CHECK_INT(acme_job_cert_key_stored(&c, bundle, blen, &other, NULL, NULL,
                                       &reused, err, sizeof(err)), 0);
    CHECK(reused == 0 && other != NULL);
    EVP_PKEY_free(other);
    c.cert_key_type = ACME_KEY_EC_P256;

    /* on, replacing a certificate revoked on request: fresh */
    c.fresh_key = 1;
    CHECK(acme_job_reuse_key(&c, bundle, blen) == NULL);
    c.fresh_key = 0;

    /* on, an unreadable bundle: fresh */
    CHECK(acme_job_reuse_key(&c, chain, sizeof(chain) - 1) == NULL);

    OPENSSL_cleanse(bundle, blen);
    free(bundle);
    OPENSSL_cleanse(pem, len);
    free(pem);
    EVP_PKEY_free(stored_key);
}


/*
 * key_rollover: the stored next.key when on, of the configured type, not a
 * revoked certificate's replacement; else fresh, with a reason to warn
 * only where a renewal should have found a usable one.
 */
UNIT_TEST(job_prep_next_key)
{
    acme_job_conf_t   c;
    EVP_PKEY         *next_key, *k;
    char             *pem;
    size_t            len;
    const char       *why;

    memset(&c, 0, sizeof(c));
    c.cert_key_type = ACME_KEY_EC_P256;
    next_key = acme_key_generate(ACME_KEY_EC_P256);
    CHECK(next_key != NULL);
    pem = acme_key_to_pem(next_key, &len);
    CHECK(pem != NULL);

    /* off: never, nothing to say */
    CHECK(acme_job_next_key(&c, pem, len, 1, &why) == NULL && why == NULL);

    /* on: the stored next key */
    c.key_rollover = 1;
    k = acme_job_next_key(&c, pem, len, 1, &why);
    CHECK(k != NULL && EVP_PKEY_eq(k, next_key) == 1 && why == NULL);
    EVP_PKEY_free(k);

    /* the first issuance: none stored, nothing to say; a renewal: warn */
    CHECK(acme_job_next_key(&c, NULL, 0, 0, &why) == NULL && why == NULL);
    CHECK(acme_job_next_key(&c, NULL, 0, 1, &why) == NULL);
    CHECK_STR(why, "missing");

    /* corrupt */
    CHECK(acme_job_next_key(&c, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                            "-----END PRIVATE KEY-----\n", 60, 1, &why)
          == NULL);
    CHECK_STR(why, "unreadable");

    /* a key type change: a fresh key of the new type */
    c.cert_key_type = ACME_KEY_EC_P384;
    CHECK(acme_job_next_key(&c, pem, len, 1, &why) == NULL);
    CHECK_STR(why, "of another key type");
    c.cert_key_type = ACME_KEY_EC_P256;

    /* replacing a certificate revoked on request: fresh, no warning */
    c.fresh_key = 1;
    CHECK(acme_job_next_key(&c, pem, len, 1, &why) == NULL && why == NULL);

    OPENSSL_cleanse(pem, len);
    free(pem);
    EVP_PKEY_free(next_key);
}


/* the inverse (a certificate record of the shared store into key + chain) */
UNIT_TEST(bundle_split)
{
    static const char  b[] = "-----BEGIN PRIVATE KEY-----\nK\n"
                             "-----END PRIVATE KEY-----\n"
                             "-----BEGIN CERTIFICATE-----\nL\n"
                             "-----END CERTIFICATE-----\n";
    size_t             at;

    at = acme_bundle_split(b, sizeof(b) - 1);
    CHECK_INT(at, 56);
    CHECK(strncmp(b + at, "-----BEGIN CERTIFICATE-----", 27) == 0);
    /* no key before the chain, no chain, nothing */
    CHECK_INT(acme_bundle_split(b + at, sizeof(b) - 1 - at), 0);
    CHECK_INT(acme_bundle_split(b, 40), 0);
    CHECK_INT(acme_bundle_split(NULL, 10), 0);
}
