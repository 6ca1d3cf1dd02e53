/*
 * An order's end in the store (acme_job_store.h): bundle.pem then
 * state.json, the memory-only fallback when the store refuses them, its
 * write schedule, status text and log lines; in a scratch store.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "acme_cert.h"
#include "acme_job_store.h"
#include "acme_keygen.h"
#include "acme_key.h"
#include "acme_sched.h"
#include "acme_util.h"
#include "unit.h"

#define T0  1795000000LL
#define ID  "a.example.test_ecdsa-256"

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb; (void) flag; (void) ftw;
    return remove(path);
}

static void
rm_root(char *root)
{
    (void) nftw(root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(root);
}

/* A key PEM and a chain (a self-signed leaf) as an order ends with. */
typedef struct {
    char   *key_pem, *chain;
    size_t  key_len, chain_len;
} issued_t;

static int
issued_new(issued_t *is)
{
    const char *names[] = { "a.example.test" };
    EVP_PKEY   *k = acme_key_generate(ACME_KEY_EC_P256);

    memset(is, 0, sizeof(*is));
    if (k == NULL) {
        return -1;
    }
    is->key_pem = acme_key_to_pem(k, &is->key_len);
    is->chain = acme_selfsigned_pem(k, names, 1, 30, &is->chain_len);
    EVP_PKEY_free(k);
    return is->key_pem && is->chain ? 0 : -1;
}

static void
issued_free(issued_t *is)
{
    acme_bundle_free(is->key_pem, is->key_len);
    free(is->chain);
}

static acme_cert_state_t
succeeded_state(void)
{
    acme_cert_state_t st;

    memset(&st, 0, sizeof(st));
    st.failures = 2;
    acme_job_succeeded(&st, T0, NULL, NULL);
    return st;
}

UNIT_TEST(job_store_issued_writes_bundle_then_state)
{
    char              *root = unit_tmpdir(), err[ACME_ERRLEN], *pem, *joined;
    size_t             len, jlen;
    issued_t           is;
    acme_cert_info_t   info;
    acme_cert_state_t  st = succeeded_state(), back;

    CHECK(root != NULL);
    CHECK_INT(issued_new(&is), 0);
    memset(&info, 0, sizeof(info));
    err[0] = '\0';
    CHECK_INT(acme_job_store_issued(root, ID, is.key_pem, is.key_len,
                                    is.chain, is.chain_len, &st, NULL, &info, err,
                                    sizeof(err)), ACME_JOB_STORED);
    CHECK(info.serial[0] != '\0');
    CHECK(info.not_after > info.not_before);
    CHECK_INT(info.n_names, 1);
    acme_cert_info_free(&info);

    /* bundle.pem is the key followed by the chain, as served */
    CHECK_INT(acme_store_load_bundle(root, ID, &pem, &len, err, sizeof(err)),
              1);
    joined = acme_bundle_join(is.key_pem, is.key_len, is.chain, is.chain_len,
                              &jlen);
    CHECK(joined != NULL && len == jlen && memcmp(pem, joined, len) == 0);
    acme_bundle_free(joined, jlen);
    acme_bundle_free(pem, len);

    CHECK_INT(acme_store_load_state(root, ID, &back, err, sizeof(err)), 1);
    CHECK_INT(back.failures, 0);
    CHECK_INT(back.last_success, T0);

    /* a chain that does not parse: an error, nothing written */
    rm_root(root);
    root = unit_tmpdir();
    memset(&info, 0, sizeof(info));
    CHECK_INT(acme_job_store_issued(root, ID, is.key_pem, is.key_len,
                                    "garbage", 7, &st, NULL, &info, err,
                                    sizeof(err)), -1);
    CHECK(err[0] != '\0');
    CHECK_INT(acme_store_load_bundle(root, ID, &pem, &len, err, sizeof(err)),
              0);
    CHECK_INT(acme_store_load_state(root, ID, &back, err, sizeof(err)), 0);

    issued_free(&is);
    rm_root(root);
}

/* No store (root NULL, "state_path off"): the facts, nothing written. */
UNIT_TEST(job_store_issued_no_store)
{
    char               err[ACME_ERRLEN];
    issued_t           is;
    acme_cert_info_t   info;
    acme_cert_state_t  st = succeeded_state();

    CHECK_INT(issued_new(&is), 0);
    memset(&info, 0, sizeof(info));
    err[0] = '\0';
    CHECK_INT(acme_job_store_issued(NULL, ID, is.key_pem, is.key_len,
                                    is.chain, is.chain_len, &st, NULL, &info, err,
                                    sizeof(err)), ACME_JOB_STORED);
    CHECK(info.serial[0] != '\0' && info.n_names == 1);
    CHECK_STR(err, "");
    acme_cert_info_free(&info);
    CHECK_INT(acme_job_store_resave(NULL, ID, is.key_pem, is.key_len, &st,
                                    err, sizeof(err)), 0);
    issued_free(&is);
}

UNIT_TEST(job_store_issued_refused)
{
    char              *root = unit_tmpdir(), err[ACME_ERRLEN], *p, *pem;
    size_t             len;
    FILE              *f;
    issued_t           is;
    acme_cert_info_t   info;
    acme_cert_state_t  st = succeeded_state(), back;

    CHECK_INT(issued_new(&is), 0);

    /* the bundle refused (certs is not a directory): state.json is not
     * written either, the facts are known all the same */
    p = acme_sprintf("%s/certs", root);
    f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fclose(f);
    }
    memset(&info, 0, sizeof(info));
    err[0] = '\0';
    CHECK_INT(acme_job_store_issued(root, ID, is.key_pem, is.key_len,
                                    is.chain, is.chain_len, &st, NULL, &info, err,
                                    sizeof(err)), ACME_JOB_BUNDLE_UNSAVED);
    CHECK(strstr(err, "certs") != NULL);
    CHECK(info.serial[0] != '\0');
    acme_cert_info_free(&info);
    CHECK_INT(unlink(p), 0);
    free(p);

    /* the bundle stored, state.json refused (a directory in its place) */
    p = acme_sprintf("%s/certs/%s/state.json", root, ID);
    CHECK_INT(acme_store_save_bundle(root, ID, is.key_pem, is.key_len,
                                     is.chain, is.chain_len, err,
                                     sizeof(err)), 0);
    CHECK_INT(mkdir(p, 0700), 0);
    memset(&info, 0, sizeof(info));
    err[0] = '\0';
    CHECK_INT(acme_job_store_issued(root, ID, is.key_pem, is.key_len,
                                    is.chain, is.chain_len, &st, NULL, &info, err,
                                    sizeof(err)), ACME_JOB_STATE_UNSAVED);
    CHECK(err[0] != '\0');
    acme_cert_info_free(&info);
    CHECK_INT(acme_store_load_bundle(root, ID, &pem, &len, err, sizeof(err)),
              1);
    acme_bundle_free(pem, len);
    CHECK_INT(rmdir(p), 0);
    free(p);

    /* written again from memory: the bundle as served, then the state */
    pem = acme_bundle_join(is.key_pem, is.key_len, is.chain, is.chain_len,
                           &len);
    CHECK_INT(acme_job_store_resave(root, ID, pem, len, &st, err,
                                    sizeof(err)), 0);
    CHECK_INT(acme_store_load_state(root, ID, &back, err, sizeof(err)), 1);
    CHECK_INT(back.last_success, T0);

    /* and refused: -1 naming what failed */
    p = acme_sprintf("%s/certs/%s/bundle.pem", root, ID);
    CHECK_INT(unlink(p), 0);
    CHECK_INT(mkdir(p, 0700), 0);
    err[0] = '\0';
    CHECK_INT(acme_job_store_resave(root, ID, pem, len, &st, err,
                                    sizeof(err)), -1);
    CHECK(strstr(err, "bundle.pem") != NULL);
    free(p);
    acme_bundle_free(pem, len);

    issued_free(&is);
    rm_root(root);
}

UNIT_TEST(job_store_issued_saved_bookkeeping)
{
    char               msg[2 * ACME_ERRLEN];
    unsigned           tries = 7;
    long long          at = 5;
    acme_job_status_t  rec;

    memset(&rec, 0, sizeof(rec));

    /* the bundle refused: served from memory, the first retry */
    CHECK_INT(acme_job_issued_saved(ACME_JOB_BUNDLE_UNSAVED,
                                    "read-only file system", "/var/acme", ID,
                                    T0, &tries, &at, &rec, msg, sizeof(msg)),
              ACME_JOB_LOG_ERR);
    CHECK_INT(tries, 1);
    CHECK_INT(at, acme_sched_unsaved_retry(1, T0));
    CHECK_STR(rec.store_error, "issued certificate not stored, served from "
              "memory only: read-only file system");
    CHECK_STR(msg, "issued, but cannot store it in /var/acme/certs/" ID
              ": read-only file system; served from memory only, the write "
              "is retried");

    /* the state refused: kept in memory */
    CHECK_INT(acme_job_issued_saved(ACME_JOB_STATE_UNSAVED, "disk full",
                                    "/var/acme", ID, T0, &tries, &at, &rec,
                                    msg, sizeof(msg)), ACME_JOB_LOG_WARN);
    CHECK_INT(tries, 1);
    CHECK(at > T0);
    CHECK_STR(rec.store_error, "renewal state not stored, kept in memory: "
              "disk full");
    CHECK_STR(msg, "cannot store the renewal state: disk full; kept in "
              "memory, the write is retried");

    /* all stored: nothing unsaved, the store's error is gone, no line */
    CHECK_INT(acme_job_issued_saved(ACME_JOB_STORED, "", "/var/acme", ID, T0,
                                    &tries, &at, &rec, msg, sizeof(msg)),
              ACME_JOB_LOG_NOTICE);
    CHECK_INT(tries, 0);
    CHECK_INT(at, 0);
    CHECK_STR(rec.store_error, "");
    CHECK_STR(msg, "");
}

UNIT_TEST(job_store_resaved_bookkeeping)
{
    char               msg[2 * ACME_ERRLEN], t[32], want[512];
    unsigned           tries = 1;
    long long          at = T0;
    acme_job_status_t  rec;

    memset(&rec, 0, sizeof(rec));

    /* each failed write: one more try, a longer wait */
    CHECK_INT(acme_job_resaved(-1, "read-only file system", "/s", ID, T0,
                               &tries, &at, &rec, msg, sizeof(msg)),
              ACME_JOB_LOG_WARN);
    CHECK_INT(tries, 2);
    CHECK_INT(at, acme_sched_unsaved_retry(2, T0));
    CHECK_STR(rec.store_error, "issued certificate not stored, served from "
              "memory only: read-only file system");
    snprintf(want, sizeof(want), "still cannot store the issued certificate "
             "in /s/certs/" ID ": read-only file system; served from memory"
             " only, next write at %s", acme_time_rfc3339(at, t, sizeof(t)));
    CHECK_STR(msg, want);
    CHECK_INT(acme_job_resaved(-1, "x", "/s", ID, T0, &tries, &at, &rec, msg,
                               sizeof(msg)), ACME_JOB_LOG_WARN);
    CHECK_INT(tries, 3);
    CHECK_INT(at, acme_sched_unsaved_retry(3, T0));
    CHECK(acme_sched_unsaved_retry(3, T0) > acme_sched_unsaved_retry(2, T0));

    /* stored: the schedule ends, the status' error clears */
    CHECK_INT(acme_job_resaved(0, "", "/s", ID, T0, &tries, &at, &rec, msg,
                               sizeof(msg)), ACME_JOB_LOG_NOTICE);
    CHECK_INT(tries, 0);
    CHECK_INT(at, 0);
    CHECK_STR(rec.store_error, "");
    CHECK_STR(msg, "the certificate served from memory is stored now in "
              "/s/certs/" ID);
}

UNIT_TEST(job_store_failure_text)
{
    char              buf[ACME_ERRLEN + 64], t[32], want[256];
    acme_cert_state_t st;

    memset(&st, 0, sizeof(st));
    acme_job_failed(&st, "http-01", "connection refused", T0, 0, 60, 1);
    acme_job_failed(&st, "http-01", "connection refused", T0, 0, 60, 1);
    snprintf(want, sizeof(want), "http-01: connection refused; 2 consecutive"
             " failure(s), next attempt at %s",
             acme_time_rfc3339(st.next_attempt, t, sizeof(t)));
    CHECK_STR(acme_job_failure_text(&st, buf, sizeof(buf)), want);
}

/* A chain whose leaf is valid from now + ahead (a CA whose clock runs
 * ahead): a self-signed leaf, notBefore moved, signed again. */
static int
issued_ahead(issued_t *is, long ahead)
{
    BIO      *b;
    X509     *x;
    EVP_PKEY *k;
    BUF_MEM  *m;
    int       rc = -1;

    if (issued_new(is) != 0) {
        return -1;
    }
    b = BIO_new_mem_buf(is->chain, (int) is->chain_len);
    x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    b = BIO_new_mem_buf(is->key_pem, (int) is->key_len);
    k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    if (x && k && b && X509_gmtime_adj(X509_getm_notBefore(x), ahead)
        && X509_sign(x, k, EVP_sha256()) > 0 && PEM_write_bio_X509(b, x))
    {
        BIO_get_mem_ptr(b, &m);
        free(is->chain);
        is->chain = malloc(m->length + 1);
        if (is->chain) {
            memcpy(is->chain, m->data, m->length);
            is->chain[m->length] = '\0';
            is->chain_len = m->length;
            rc = 0;
        }
    }
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static int
load_served(const char *root, long long now, long long skew, char **pem,
    size_t *len, char **next, size_t *next_len, long long *at)
{
    acme_store_dir_t  rd = ACME_STORE_DIR_INIT, cd = ACME_STORE_DIR_INIT;
    char              err[ACME_ERRLEN];
    int               rc = -1;

    if (acme_store_dir_open_root(&rd, root, (uid_t) -1, (gid_t) -1, 0, NULL,
                                 0, err, sizeof(err)) == 0
        && acme_store_dir_open_cert(&cd, &rd, ID, 0, err, sizeof(err)) == 0)
    {
        rc = acme_job_store_load_served(&cd, now, skew, pem, len, next,
                                        next_len, at, NULL, err, sizeof(err));
    }
    acme_store_dir_close(&cd);
    acme_store_dir_close(&rd);
    return rc;
}

static int
same_bundle(const char *pem, size_t len, const issued_t *is)
{
    char   *j;
    size_t  jlen;
    int     same;

    j = acme_bundle_join(is->key_pem, is->key_len, is->chain, is->chain_len,
                         &jlen);
    same = j && pem && len == jlen && memcmp(pem, j, len) == 0;
    acme_bundle_free(j, jlen);
    return same;
}

/* issue 16: a stored certificate not valid yet keeps the one it replaced
 * (previous.pem), which a restart serves until the new one's time */
UNIT_TEST(job_store_not_yet_valid_keeps_previous)
{
    char              *root = unit_tmpdir(), err[ACME_ERRLEN], *pem, *next;
    size_t             len, next_len;
    long long          now = (long long) time(NULL), at, nb;
    issued_t           cur, ahead, later;
    acme_cert_info_t   info;
    acme_cert_state_t  st = succeeded_state();

    CHECK(root != NULL);
    CHECK_INT(issued_new(&cur), 0);
    CHECK_INT(issued_ahead(&ahead, 7200), 0);
    CHECK_INT(issued_new(&later), 0);

    memset(&info, 0, sizeof(info));
    CHECK_INT(acme_job_store_issued(root, ID, cur.key_pem, cur.key_len,
                                    cur.chain, cur.chain_len, &st, NULL, &info,
                                    err, sizeof(err)), ACME_JOB_STORED);
    acme_cert_info_free(&info);
    /* nothing kept: bundle.pem served as it is */
    CHECK_INT(load_served(root, now, 60, &pem, &len, &next, &next_len, &at),
              1);
    CHECK(same_bundle(pem, len, &cur) && next == NULL && at == 0);
    acme_bundle_free(pem, len);

    memset(&info, 0, sizeof(info));
    CHECK_INT(acme_job_store_issued(root, ID, ahead.key_pem, ahead.key_len,
                                    ahead.chain, ahead.chain_len, &st, NULL, &info,
                                    err, sizeof(err)), ACME_JOB_STORED);
    nb = info.not_before;
    CHECK(nb > now + 7000);
    acme_cert_info_free(&info);
    /* bundle.pem is the new one (nothing lost), previous.pem the old */
    CHECK_INT(acme_store_load_bundle(root, ID, &pem, &len, err, sizeof(err)),
              1);
    CHECK(same_bundle(pem, len, &ahead));
    acme_bundle_free(pem, len);
    /* a restart: the old one served, the new one from nb - skew */
    CHECK_INT(load_served(root, now, 60, &pem, &len, &next, &next_len, &at),
              1);
    CHECK(same_bundle(pem, len, &cur));
    CHECK(same_bundle(next, next_len, &ahead));
    CHECK_INT(at, nb - 60);
    acme_bundle_free(pem, len);
    acme_bundle_free(next, next_len);
    /* within the skew, or once its time has come: the new one */
    CHECK_INT(load_served(root, now, 7300, &pem, &len, &next, &next_len,
                          &at), 1);
    CHECK(same_bundle(pem, len, &ahead) && next == NULL && at == 0);
    acme_bundle_free(pem, len);
    CHECK_INT(load_served(root, nb, 60, &pem, &len, &next, &next_len, &at),
              1);
    CHECK(same_bundle(pem, len, &ahead) && next == NULL);
    acme_bundle_free(pem, len);

    /* the next certificate valid now: previous.pem goes */
    memset(&info, 0, sizeof(info));
    CHECK_INT(acme_job_store_issued(root, ID, later.key_pem, later.key_len,
                                    later.chain, later.chain_len, &st, NULL, &info,
                                    err, sizeof(err)), ACME_JOB_STORED);
    acme_cert_info_free(&info);
    pem = acme_sprintf("%s/certs/%s/previous.pem", root, ID);
    CHECK(pem != NULL && access(pem, F_OK) != 0);
    free(pem);

    issued_free(&cur);
    issued_free(&ahead);
    issued_free(&later);
    rm_root(root);
}

/* A bundle of key type kt for names, stored under id (valid days). */
static int
store_named(const char *root, const char *id, acme_key_type_t kt,
    const char *const *names, size_t n_names, int days, issued_t *is)
{
    EVP_PKEY   *k = acme_key_generate(kt);
    char        err[ACME_ERRLEN];

    memset(is, 0, sizeof(*is));
    if (k == NULL) {
        return -1;
    }
    is->key_pem = acme_key_to_pem(k, &is->key_len);
    is->chain = acme_selfsigned_pem(k, names, n_names, days, &is->chain_len);
    EVP_PKEY_free(k);
    if (is->key_pem == NULL || is->chain == NULL) {
        return -1;
    }
    return acme_store_save_bundle(root, id, is->key_pem, is->key_len,
                                  is->chain, is->chain_len, err, sizeof(err));
}

static int
store_typed(const char *root, const char *id, acme_key_type_t kt,
    const char *name, int days, issued_t *is)
{
    const char *names[1];

    names[0] = name;
    return store_named(root, id, kt, names, 1, days, is);
}

static int
in_use_list(const char *id, void *ctx)
{
    const char *const *l;

    for (l = ctx; *l; l++) {
        if (strcmp(*l, id) == 0) {
            return 1;
        }
    }
    return 0;
}

/* issue 10 item 1: a changed key type (a new id) serves the bundle of the
 * id it replaces until its own is stored; never one still configured,
 * another name's, or an expired one */
UNIT_TEST(job_store_load_replaced)
{
    char              *root = unit_tmpdir(), *pem, *from;
    const char        *why;
    const char        *names[] = { "a.example.test", "b.example.test" };
    const char        *none[] = { NULL };
    const char        *rsa_used[] = { "a.example.test_rsa-2048", NULL };
    size_t             len;
    long long          now = (long long) time(NULL);
    const char        *renamed[] = { "b.example.test", "a2.example.test" };
    const char        *swapped[] = { "b.example.test", "a.example.test" };
    const char        *ab_used[] = { "a.example.test_ecdsa-384", NULL };
    const char        *both_used[] = { "a.example.test_ecdsa-384",
                                       "x.example.test_rsa-2048", NULL };
    issued_t           p256, rsa, other, ab384, xb;

    CHECK(root != NULL);

    /* nothing stored */
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "a.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, names, 2,
                                           in_use_list, (void *) none, now,
                                           &pem, &len, &from, &why), 0);
    CHECK(pem == NULL && from == NULL);

    /* key=ecdsa:256 -> key=ecdsa:384: the P-256 bundle */
    CHECK_INT(store_typed(root, "a.example.test_ecdsa-256", ACME_KEY_EC_P256,
                          "a.example.test", 30, &p256), 0);
    /* another first name's: never */
    CHECK_INT(store_typed(root, "c.example.test_rsa-2048", ACME_KEY_RSA_2048,
                          "c.example.test", 60, &other), 0);
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "a.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, names, 2,
                                           in_use_list, (void *) none, now,
                                           &pem, &len, &from, &why), 1);
    CHECK_STR(from, "a.example.test_ecdsa-256");
    CHECK_STR(why, "key type changed");
    CHECK(same_bundle(pem, len, &p256));
    acme_bundle_free(pem, len);
    free(from);

    /* of two, the one valid longest; unless still configured */
    CHECK_INT(store_typed(root, "a.example.test_rsa-2048", ACME_KEY_RSA_2048,
                          "a.example.test", 60, &rsa), 0);
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "a.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, names, 2,
                                           in_use_list, (void *) none, now,
                                           &pem, &len, &from, &why), 1);
    CHECK_STR(from, "a.example.test_rsa-2048");
    CHECK(same_bundle(pem, len, &rsa));
    acme_bundle_free(pem, len);
    free(from);
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "a.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, names, 2,
                                           in_use_list, (void *) rsa_used,
                                           now, &pem, &len, &from, &why), 1);
    CHECK_STR(from, "a.example.test_ecdsa-256");
    acme_bundle_free(pem, len);
    free(from);

    /* expired by now: none; none of the names: none */
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "a.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, names, 2,
                                           in_use_list, (void *) none,
                                           now + 90 * 86400LL, &pem, &len,
                                           &from, &why), 0);
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "a.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, names + 1, 1,
                                           in_use_list, (void *) none, now,
                                           &pem, &len, &from, &why), 0);
    /* an id with its issuer ("<id>@<issuer>"): the same */
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "a.example.test_ecdsa-384@b",
                                           ACME_KEY_EC_P384, names, 2,
                                           in_use_list, (void *) rsa_used,
                                           now, &pem, &len, &from, &why), 1);
    CHECK_STR(from, "a.example.test_ecdsa-256");
    acme_bundle_free(pem, len);
    free(from);
    /* an id that is not of its key type: none */
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "a.example.test_ecdsa-384",
                                           ACME_KEY_EC_P256, names, 2,
                                           in_use_list, (void *) none, now,
                                           &pem, &len, &from, &why), 0);

    /* issue 10 item 1: the first name changed (names "a b" -> "b a2"): a
     * stored certificate of another id that names one of them; of the
     * configured key type first, then the one valid longest; never one a
     * configured certificate owns */
    CHECK_INT(store_named(root, "a.example.test_ecdsa-384", ACME_KEY_EC_P384,
                          names, 2, 20, &ab384), 0);
    CHECK_INT(store_typed(root, "x.example.test_rsa-2048", ACME_KEY_RSA_2048,
                          "b.example.test", 90, &xb), 0);
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "b.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, renamed, 2,
                                           in_use_list, (void *) none, now,
                                           &pem, &len, &from, &why), 1);
    CHECK_STR(from, "a.example.test_ecdsa-384");
    CHECK_STR(why, "names changed");
    CHECK(same_bundle(pem, len, &ab384));
    acme_bundle_free(pem, len);
    free(from);
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "b.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, renamed, 2,
                                           in_use_list, (void *) ab_used,
                                           now, &pem, &len, &from, &why), 1);
    CHECK_STR(from, "x.example.test_rsa-2048");
    CHECK_STR(why, "key type changed");
    CHECK(same_bundle(pem, len, &xb));
    acme_bundle_free(pem, len);
    free(from);
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "b.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, renamed, 2,
                                           in_use_list, (void *) both_used,
                                           now, &pem, &len, &from, &why), 0);
    CHECK(pem == NULL && from == NULL && why == NULL);
    /* a name only a2 (none of the stored ones): none */
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "a2.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, renamed + 1, 1,
                                           in_use_list, (void *) none, now,
                                           &pem, &len, &from, &why), 0);
    /* the same names in another order: served, nothing due */
    CHECK_INT(acme_job_store_load_replaced(root, (uid_t) -1, (gid_t) -1,
                                           "b.example.test_ecdsa-384",
                                           ACME_KEY_EC_P384, swapped, 2,
                                           in_use_list, (void *) none, now,
                                           &pem, &len, &from, &why), 1);
    CHECK_STR(from, "a.example.test_ecdsa-384");
    CHECK_STR(why, "first name changed");
    acme_bundle_free(pem, len);
    free(from);

    issued_free(&ab384);
    issued_free(&xb);
    issued_free(&p256);
    issued_free(&rsa);
    issued_free(&other);
    rm_root(root);
}

/* The bridge's facts from a file with its key (Apache's one-file form),
 * from nginx's "data:", and the errors name the file. */
UNIT_TEST(job_bridge_load)
{
    issued_t           is;
    acme_job_bridge_t  b;
    acme_cert_info_t   info;
    char              *root, *path, *blob, *data, err[ACME_ERRLEN];
    size_t             blob_len;
    FILE              *f;

    CHECK(issued_new(&is) == 0);
    root = unit_tmpdir();
    CHECK(root != NULL);
    if (root == NULL) {
        issued_free(&is);
        return;
    }
    CHECK(acme_cert_info_from_pem(is.chain, is.chain_len, &info, err,
                                  sizeof(err)) == 0);
    blob = acme_bundle_join(is.key_pem, is.key_len, is.chain, is.chain_len,
                            &blob_len);
    path = malloc(strlen(root) + 32);
    sprintf(path, "%s/bridge.pem", root);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fwrite(blob, 1, blob_len, f);
        fclose(f);
    }

    CHECK(acme_job_bridge_load(&b, path, err, sizeof(err)) == 0);
    CHECK_STR(b.file, path);
    CHECK_STR(b.serial, info.serial);
    CHECK_INT(b.not_before, info.not_before);
    CHECK_INT(b.not_after, info.not_after);

    data = malloc(is.chain_len + 6);
    memcpy(data, "data:", 5);
    memcpy(data + 5, is.chain, is.chain_len);
    data[is.chain_len + 5] = '\0';
    memset(&b, 0, sizeof(b));
    CHECK(acme_job_bridge_load(&b, data, err, sizeof(err)) == 0);
    CHECK_STR(b.file, "data:");
    CHECK_STR(b.serial, info.serial);

    /* a key only: no certificate, the file named */
    f = fopen(path, "w");
    if (f != NULL) {
        fwrite(is.key_pem, 1, is.key_len, f);
        fclose(f);
    }
    CHECK(acme_job_bridge_load(&b, path, err, sizeof(err)) == -1);
    CHECK(strstr(err, "bridge.pem") != NULL);
    CHECK(strstr(err, "no certificate") != NULL);
    CHECK_STR(b.serial, "");

    unlink(path);
    CHECK(acme_job_bridge_load(&b, path, err, sizeof(err)) == -1);
    CHECK(strstr(err, "no such file") != NULL);
    CHECK_STR(b.file, path);

    acme_cert_info_free(&info);
    acme_bundle_free(blob, blob_len);
    free(data);
    free(path);
    issued_free(&is);
    rm_root(root);
}

/*
 * key_rollover end to end in a scratch store: the first order makes a
 * fresh key and a next one, stored as next.key (0600) with the
 * certificate; the renewal certifies that key and makes a new next one; a
 * corrupt next.key at a renewal gives a fresh key and a warning.
 */
UNIT_TEST(job_store_key_rollover)
{
    static const char *const names[] = { "a.example.test" };
    char              *root = unit_tmpdir(), err[ACME_ERRLEN], *path;
    char              *chain, *key_pem, pin[ACME_SPKI_PIN_LEN];
    char               first_next[ACME_SPKI_PIN_LEN];
    size_t             chain_len, key_len;
    acme_job_conf_t    c;
    acme_job_next_t    next;
    acme_cert_info_t   info;
    acme_cert_state_t  st = succeeded_state();
    acme_store_dir_t   rd = ACME_STORE_DIR_INIT, cd = ACME_STORE_DIR_INIT;
    EVP_PKEY          *k = NULL;
    struct stat        sb;
    int                round;

    CHECK(root != NULL);
    memset(&c, 0, sizeof(c));
    c.names = names;
    c.n_names = 1;
    c.cert_key_type = ACME_KEY_EC_P256;
    c.state_dir = root;
    c.cert_id = ID;
    c.key_rollover = 1;
    first_next[0] = '\0';

    for (round = 0; round < 2; round++) {
        CHECK_INT(acme_job_cert_key_csr(&c, &k, NULL, NULL, NULL, &next, err,
                                        sizeof(err)), 0);
        CHECK(k != NULL && next.pem != NULL && next.pin[0] != '\0');
        CHECK_STR(next.warn, "");
        CHECK_INT(acme_key_spki_pin(k, pin, sizeof(pin)), 0);
        /* the first order: fresh; the renewal: the pinned next key */
        CHECK_INT(next.used, round);
        if (round == 1) {
            CHECK_STR(pin, first_next);
        }
        CHECK(strcmp(next.pin, pin) != 0);

        key_pem = acme_key_to_pem(k, &key_len);
        chain = acme_selfsigned_pem(k, names, 1, 30, &chain_len);
        memset(&info, 0, sizeof(info));
        CHECK_INT(acme_job_store_issued(root, ID, key_pem, key_len, chain,
                                        chain_len, &st, &next, &info, err,
                                        sizeof(err)), ACME_JOB_STORED);
        CHECK_STR(info.spki_pin, pin);
        acme_cert_info_free(&info);

        /* next.key: 0600, its pin the one published */
        path = acme_sprintf("%s/certs/%s/next.key", root, ID);
        CHECK(path != NULL && stat(path, &sb) == 0
              && (sb.st_mode & 0777) == 0600);
        free(path);
        CHECK_INT(acme_store_dir_open_root(&rd, root, (uid_t) -1, 0, 0, err,
                                           sizeof(err), err, sizeof(err)), 0);
        CHECK_INT(acme_store_dir_open_cert(&cd, &rd, ID, 0, err,
                                           sizeof(err)), 0);
        acme_job_store_next_pin(&cd, ACME_KEY_EC_P256, pin, sizeof(pin));
        CHECK_STR(pin, next.pin);
        /* another key type: no pin */
        acme_job_store_next_pin(&cd, ACME_KEY_EC_P384, pin, sizeof(pin));
        CHECK_STR(pin, "");
        acme_store_dir_close(&cd);
        acme_store_dir_close(&rd);
        snprintf(first_next, sizeof(first_next), "%s", next.pin);

        acme_bundle_free(key_pem, key_len);
        free(chain);
        EVP_PKEY_free(k);
        k = NULL;
        acme_job_next_free(&next);
    }

    /* a corrupt next.key at a renewal: a fresh key, a warning */
    CHECK_INT(acme_store_save_next_key(root, ID, "garbage\n", 8, err,
                                       sizeof(err)), 0);
    CHECK_INT(acme_job_cert_key_csr(&c, &k, NULL, NULL, NULL, &next, err,
                                    sizeof(err)), 0);
    CHECK(k != NULL && next.used == 0 && next.pem != NULL);
    CHECK(strstr(next.warn, "unreadable") != NULL);
    EVP_PKEY_free(k);
    acme_job_next_free(&next);

    /* off: no next key at all */
    c.key_rollover = 0;
    CHECK_INT(acme_job_cert_key_csr(&c, &k, NULL, NULL, NULL, &next, err,
                                    sizeof(err)), 0);
    CHECK(k != NULL && next.pem == NULL && next.pin[0] == '\0');
    EVP_PKEY_free(k);
    acme_job_next_free(&next);

    rm_root(root);
}
