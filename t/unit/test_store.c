#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "acme_jws.h"
#include "acme_store.h"
#include "acme_util.h"

/* A fresh directory under /tmp, removed (recursively) by rm_tree. */
static void
rm_tree(const char *path)
{
    DIR            *d;
    struct dirent  *de;
    struct stat     st;
    char           *p;

    if (lstat(path, &st) != 0) {
        return;
    }
    if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
                continue;
            }
            p = acme_sprintf("%s/%s", path, de->d_name);
            rm_tree(p);
            free(p);
        }
        closedir(d);
        rmdir(path);
        return;
    }
    unlink(path);
}

static int
count_entries(const char *dir)
{
    DIR            *d;
    struct dirent  *de;
    int             n = 0;

    d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static int
mode_of(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (int) (st.st_mode & 07777) : -1;
}

UNIT_TEST(store_atomic_write_modes_overwrite)
{
    char    err[ACME_ERRLEN], *root, *path, *data;
    size_t  len;
    mode_t  old;

    root = unit_tmpdir();
    CHECK(root != NULL);
    path = acme_sprintf("%s/file", root);

    /* a permissive umask must not widen the mode */
    old = umask(0);
    CHECK_INT(acme_store_write_atomic(path, "one", 3, 0600, err, sizeof(err)), 0);
    umask(old);
    CHECK_INT(mode_of(path), 0600);
    CHECK_INT(count_entries(root), 1);           /* no temporary left behind */

    CHECK_INT(acme_store_write_atomic(path, "second", 6, 0644, err, sizeof(err)), 0);
    CHECK_INT(mode_of(path), 0644);
    CHECK_INT(count_entries(root), 1);
    CHECK_INT(acme_store_read(path, &data, &len, 100, err, sizeof(err)), 1);
    CHECK_STR(data, "second");
    CHECK_INT(len, 6);
    free(data);

    /* empty content is fine, and reading is bounded */
    CHECK_INT(acme_store_write_atomic(path, "", 0, 0600, err, sizeof(err)), 0);
    CHECK_INT(acme_store_read(path, &data, &len, 100, err, sizeof(err)), 1);
    CHECK_INT(len, 0);
    free(data);
    CHECK_INT(acme_store_write_atomic(path, "0123456789", 10, 0600, err,
                                      sizeof(err)), 0);
    CHECK_INT(acme_store_read(path, &data, &len, 9, err, sizeof(err)), -1);
    CHECK(data == NULL);

    free(path);

    /* missing file -> 0; write into a missing directory fails cleanly */
    path = acme_sprintf("%s/nope", root);
    CHECK_INT(acme_store_read(path, &data, &len, 100, err, sizeof(err)), 0);
    free(path);
    path = acme_sprintf("%s/nodir/file", root);
    CHECK_INT(acme_store_write_atomic(path, "x", 1, 0600, err, sizeof(err)), -1);
    CHECK(strstr(err, "nodir") != NULL);
    CHECK_INT(count_entries(root), 1);
    free(path);

    rm_tree(root);
    free(root);
}

UNIT_TEST(store_check_writable)
{
    char    err[ACME_ERRLEN], *root, *p;

    root = unit_tmpdir();

    /* a file in the way is an error */
    p = acme_sprintf("%s/file", root);
    CHECK_INT(acme_store_write_atomic(p, "x", 1, 0600, err, sizeof(err)), 0);
    free(p);
    p = acme_sprintf("%s/file/sub", root);
    CHECK_INT(acme_store_check_writable(p, err, sizeof(err)), -1);

    /* writable checks the nearest existing ancestor and creates nothing */
    free(p);
    p = acme_sprintf("%s/x/y/z", root);
    CHECK_INT(acme_store_check_writable(p, err, sizeof(err)), 0);
    free(p);
    p = acme_sprintf("%s/x", root);
    CHECK(access(p, F_OK) != 0);
    free(p);
    if (geteuid() != 0) {
        CHECK_INT(acme_store_check_writable("/proc/1/acme/x", err, sizeof(err)), -1);
    }

    /* the store itself as a symlink: refused at config test already */
    p = acme_sprintf("%s/x", root);
    CHECK_INT(mkdir(p, 0700), 0);
    free(p);
    p = acme_sprintf("%s/link", root);
    CHECK_INT(symlink("x", p), 0);
    CHECK_INT(acme_store_check_writable(p, err, sizeof(err)), -1);
    CHECK(strstr(err, "symbolic link") != NULL);
    free(p);

    rm_tree(root);
    free(root);
}


/* A symlink above the store owned by another user redirects where root
 * creates the store: refused; one owned by root (or the caller) is fine. */
UNIT_TEST(store_ancestor_symlink_owner)
{
    char              err[ACME_ERRLEN], *base, *target, *link, *root;
    acme_store_dir_t  rd = ACME_STORE_DIR_INIT;
    struct stat       sb;
    const uid_t       other = 54321;

    base = unit_tmpdir();
    target = acme_sprintf("%s/victim", base);
    link = acme_sprintf("%s/sym", base);
    root = acme_sprintf("%s/sym/state", base);
    CHECK_INT(mkdir(target, 0700), 0);
    CHECK_INT(symlink(target, link), 0);

    /* the caller's own link is trusted */
    CHECK_INT(acme_store_dir_open_root(&rd, root, (uid_t) -1, (gid_t) -1, 1,
                                       NULL, 0, err, sizeof(err)), 0);
    acme_store_dir_close(&rd);
    CHECK_INT(acme_store_check_writable(root, err, sizeof(err)), 0);

    if (geteuid() == 0) {
        free(root);
        root = acme_sprintf("%s/sym/state2", base);
        CHECK_INT(lchown(link, other, other), 0);
        CHECK_INT(acme_store_dir_open_root(&rd, root, (uid_t) -1, (gid_t) -1,
                                           1, NULL, 0, err, sizeof(err)), -1);
        CHECK(strstr(err, "symbolic link owned by uid 54321") != NULL);
        CHECK_INT(acme_store_check_writable(root, err, sizeof(err)), -1);
        free(link);
        link = acme_sprintf("%s/state2", target);
        CHECK(stat(link, &sb) != 0);        /* nothing created through it */
    } else {
        fprintf(stderr, "  (not root: the foreign-owner case needs root)\n");
    }

    rm_tree(base);
    free(base);
    free(target);
    free(link);
    free(root);
}

UNIT_TEST(store_cert_id_issuer)
{
    char        *id, *a, *b;
    int          need[5];
    const char  *ids[5] = { "a.test_ecdsa-256", "a.test_ecdsa-256",
                            "a.test_rsa-2048", "b.test_ecdsa-256",
                            "a.test_ecdsa-256" };
    size_t       iss[5] = { 2, 0, 1, 1, 3 };

    id = acme_store_cert_id_issuer("a.test_ecdsa-256", "chain1");
    CHECK_STR(id, "a.test_ecdsa-256@chain1");
    free(id);

    /* nothing leaves certs/, '@' and '%' are escaped: no two issuers
     * share an id */
    id = acme_store_cert_id_issuer("a.test_ecdsa-256", "../x/@%");
    CHECK_STR(id, "a.test_ecdsa-256@%2E.%2Fx%2F%40%25");
    free(id);
    a = acme_store_cert_id_issuer("x_ecdsa-256", "a@b");
    b = acme_store_cert_id_issuer("x_ecdsa-256", "a%40b");
    CHECK(a && b && strcmp(a, b) != 0);
    free(a);
    free(b);
    CHECK(acme_store_cert_id_issuer("x", "") == NULL);
    CHECK(acme_store_cert_id_issuer("", "x") == NULL);

    /* the first issuer block of those sharing an id keeps it plain; an
     * id of one issuer only, or another key type, stays plain */
    acme_store_cert_ids_by_issuer(ids, iss, 5, need);
    CHECK_INT(need[0], 1);
    CHECK_INT(need[1], 0);
    CHECK_INT(need[2], 0);
    CHECK_INT(need[3], 0);
    CHECK_INT(need[4], 1);
    acme_store_cert_ids_by_issuer(ids, iss, 1, need);
    CHECK_INT(need[0], 0);
}

UNIT_TEST(store_cert_id_sanitised)
{
    char *id;

    id = acme_store_cert_id("example.com", ACME_KEY_EC_P256);
    CHECK_STR(id, "example.com_ecdsa-256");
    free(id);

    id = acme_store_cert_id("*.Example.COM", ACME_KEY_RSA_2048);
    CHECK_STR(id, "_wildcard_.example.com_rsa-2048");
    free(id);

    id = acme_store_cert_id("::1", ACME_KEY_EC_P384);
    CHECK_STR(id, "--1_ecdsa-384");
    free(id);

    /* nothing can escape certs/: no '/', no leading '.', no ".." component */
    id = acme_store_cert_id("../../etc/passwd", ACME_KEY_EC_P256);
    CHECK(id != NULL && strchr(id, '/') == NULL && id[0] != '.');
    free(id);
    id = acme_store_cert_id("..", ACME_KEY_EC_P256);
    CHECK(id != NULL && strchr(id, '/') == NULL && id[0] != '.');
    free(id);

    /* escaping keeps different names apart */
    {
        char *a = acme_store_cert_id("a/b", ACME_KEY_EC_P256);
        char *b = acme_store_cert_id("a_b", ACME_KEY_EC_P256);
        char *c = acme_store_cert_id("a%2Fb", ACME_KEY_EC_P256);

        CHECK(a && b && c && strcmp(a, b) != 0 && strcmp(a, c) != 0
              && strcmp(b, c) != 0);
        free(a);
        free(b);
        free(c);
    }

    CHECK(acme_store_cert_id("", ACME_KEY_EC_P256) == NULL);
    CHECK(acme_store_cert_id(NULL, ACME_KEY_EC_P256) == NULL);

    /* path helpers refuse ids that are not one plain component */
    CHECK(acme_store_cert_dir("/r", "../x") == NULL);
    CHECK(acme_store_bundle_path("/r", "a/b") == NULL);
    CHECK(acme_store_state_path("/r", "..") == NULL);
    CHECK(acme_store_state_path("/r", "") == NULL);
    id = acme_store_bundle_path("/r", "a.example_ecdsa-256");
    CHECK_STR(id, "/r/certs/a.example_ecdsa-256/bundle.pem");
    free(id);
}

#define OLD_ACCOUNT_JSON \
    "{\"directory\":\"https://ca/dir\",\"url\":\"https://ca/acct/1\"}"

UNIT_TEST(store_account_roundtrip)
{
    char      err[ACME_ERRLEN], *root, *url, *p;
    EVP_PKEY *k1, *k2;

    root = unit_tmpdir();
    k1 = acme_key_generate(ACME_KEY_EC_P256);
    k2 = acme_key_generate(ACME_KEY_EC_P256);

    CHECK_INT(acme_store_load_account(root, "https://ca/dir", k1, &url, err,
                                      sizeof(err)), 0);
    CHECK(url == NULL);

    CHECK_INT(acme_store_save_account(root, "https://ca/dir", k1,
                                      "https://ca/acct/1", err, sizeof(err)), 0);
    CHECK_INT(acme_store_load_account(root, "https://ca/dir", k1, &url, err,
                                      sizeof(err)), 1);
    CHECK_STR(url, "https://ca/acct/1");
    free(url);

    /* another CA's directory: no account for it */
    CHECK_INT(acme_store_load_account(root, "https://other/dir", k1, &url, err,
                                      sizeof(err)), 0);
    CHECK(url == NULL);

    /* another key: the URL is not its account */
    CHECK_INT(acme_store_load_account(root, "https://ca/dir", k2, &url, err,
                                      sizeof(err)), 0);
    CHECK(url == NULL);

    p = acme_store_account_json_path(root);
    CHECK_INT(mode_of(p), 0600);

    /* written by an older version (no "key"): unknown, looked up again */
    CHECK_INT(acme_store_write_atomic(p, OLD_ACCOUNT_JSON,
                                      strlen(OLD_ACCOUNT_JSON), 0600, err,
                                      sizeof(err)), 0);
    CHECK_INT(acme_store_load_account(root, "https://ca/dir", k1, &url, err,
                                      sizeof(err)), 0);
    CHECK(url == NULL);

    /* corrupt -> error, file kept */
    CHECK_INT(acme_store_write_atomic(p, "{\"directory\":", 13, 0600, err,
                                      sizeof(err)), 0);
    CHECK_INT(acme_store_load_account(root, "https://ca/dir", k1, &url, err,
                                      sizeof(err)), -1);
    CHECK(strstr(err, "account.json") != NULL);
    CHECK(access(p, F_OK) == 0);
    free(p);

    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    rm_tree(root);
    free(root);
}

UNIT_TEST(store_create_exclusive)
{
    char              err[ACME_ERRLEN], *root, *data;
    size_t            len;
    acme_store_dir_t  d = ACME_STORE_DIR_INIT;

    root = unit_tmpdir();
    CHECK_INT(acme_store_dir_open_root(&d, root, (uid_t) -1, (gid_t) -1, 0,
                                       NULL, 0, err, sizeof(err)), 0);

    CHECK_INT(acme_store_dir_create(&d, "f", "one", 3, 0600, err,
                                    sizeof(err)), 1);
    CHECK_INT(acme_store_dir_create(&d, "f", "two", 3, 0600, err,
                                    sizeof(err)), 0);
    CHECK_INT(acme_store_dir_read(&d, "f", &data, &len, 100, err,
                                  sizeof(err)), 1);
    CHECK_STR(data, "one");
    free(data);
    /* no temporary file left behind, win or lose */
    CHECK_INT(count_entries(root), 1);

    acme_store_dir_close(&d);
    rm_tree(root);
    free(root);
}

typedef struct {
    const char  *root;
    EVP_PKEY    *key;
    int          created;
    int          rc;
} key_race_t;

static void *
key_race(void *arg)
{
    key_race_t  *r = arg;
    char         err[ACME_ERRLEN];

    r->rc = acme_store_account_key(r->root, NULL, ACME_KEY_EC_P256, &r->key,
                                   &r->created, err, sizeof(err));
    return NULL;
}

UNIT_TEST(store_account_key_one_winner)
{
    enum { N = 8 };
    char        err[ACME_ERRLEN], *root, *sub, *t0, *t;
    pthread_t   th[N];
    key_race_t  r[N];
    EVP_PKEY   *k;
    int         i, created, n_created;
    pid_t       pid[N];

    /* threads: all start before any key exists, all end with one key */
    root = unit_tmpdir();
    sub = acme_sprintf("%s/state/pebble", root);
    memset(r, 0, sizeof(r));
    for (i = 0; i < N; i++) {
        r[i].root = sub;
        CHECK_INT(pthread_create(&th[i], NULL, key_race, &r[i]), 0);
    }
    n_created = 0;
    for (i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(r[i].rc, 0);
        n_created += r[i].created;
    }
    CHECK_INT(n_created, 1);
    t0 = acme_jwk_thumbprint(r[0].key);
    for (i = 0; i < N; i++) {
        t = acme_jwk_thumbprint(r[i].key);
        CHECK_STR(t, t0);
        free(t);
        EVP_PKEY_free(r[i].key);
    }

    /* and the stored key is that one */
    CHECK_INT(acme_store_account_key(sub, NULL, ACME_KEY_RSA_2048, &k, &created,
                                     err, sizeof(err)), 0);
    CHECK_INT(created, 0);
    t = acme_jwk_thumbprint(k);
    CHECK_STR(t, t0);
    free(t);
    free(t0);
    EVP_PKEY_free(k);
    t = acme_store_account_key_path(sub);
    CHECK_INT(mode_of(t), 0600);
    free(t);
    CHECK_INT(count_entries(sub), 1);
    rm_tree(root);
    free(root);
    free(sub);

    /* processes (nginx workers, Apache children) alike */
    root = unit_tmpdir();
    for (i = 0; i < N; i++) {
        pid[i] = fork();
        if (pid[i] == 0) {
            k = NULL;
            created = 0;
            i = acme_store_account_key(root, NULL, ACME_KEY_EC_P256, &k, &created,
                                       err, sizeof(err));
            _exit(i != 0 ? 2 : created ? 1 : 0);
        }
    }
    n_created = 0;
    for (i = 0; i < N; i++) {
        int st = 0;

        CHECK(pid[i] > 0 && waitpid(pid[i], &st, 0) == pid[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) != 2);
        n_created += WIFEXITED(st) && WEXITSTATUS(st) == 1;
    }
    CHECK_INT(n_created, 1);
    CHECK_INT(count_entries(root), 1);
    rm_tree(root);
    free(root);
}

UNIT_TEST(store_bundle_roundtrip)
{
    static const char key[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
    static const char chain[] = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";
    char    err[ACME_ERRLEN], *root, *pem, *p;
    size_t  len;

    root = unit_tmpdir();

    CHECK_INT(acme_store_load_bundle(root, "a.test_ecdsa-256", &pem, &len,
                                     err, sizeof(err)), 0);

    CHECK_INT(acme_store_save_bundle(root, "a.test_ecdsa-256", key,
                                     strlen(key), chain, strlen(chain), err,
                                     sizeof(err)), 0);
    CHECK_INT(acme_store_load_bundle(root, "a.test_ecdsa-256", &pem, &len,
                                     err, sizeof(err)), 1);
    /* the key lacked its final newline: one is inserted */
    p = acme_sprintf("%s\n%s", key, chain);
    CHECK_STR(pem, p);
    CHECK_INT(len, strlen(p));
    free(p);
    free(pem);

    p = acme_store_bundle_path(root, "a.test_ecdsa-256");
    CHECK_INT(mode_of(p), 0600);
    free(p);
    p = acme_store_cert_dir(root, "a.test_ecdsa-256");
    CHECK_INT(mode_of(p), 0700);
    CHECK_INT(count_entries(p), 1);
    free(p);
    p = acme_sprintf("%s/certs", root);
    CHECK_INT(mode_of(p), 0700);
    free(p);

    /* overwrite */
    CHECK_INT(acme_store_save_bundle(root, "a.test_ecdsa-256", "K\n", 2,
                                     "C\n", 2, err, sizeof(err)), 0);
    CHECK_INT(acme_store_load_bundle(root, "a.test_ecdsa-256", &pem, &len,
                                     err, sizeof(err)), 1);
    CHECK_STR(pem, "K\nC\n");
    free(pem);

    CHECK_INT(acme_store_save_bundle(root, "../evil", "K\n", 2, "C\n", 2,
                                     err, sizeof(err)), -1);
    CHECK_INT(acme_store_save_bundle(root, "x", "", 0, "C\n", 2, err,
                                     sizeof(err)), -1);

    rm_tree(root);
    free(root);
}

/* A bundle kept in memory after a refused write is written as served. */
UNIT_TEST(store_bundle_pem_as_served)
{
    static const char pem1[] = "K1\nC1\n";
    char    err[ACME_ERRLEN], *root, *pem, *file;
    size_t  len;

    root = unit_tmpdir();

    CHECK_INT(acme_store_save_bundle_pem(root, "a.test_rsa-2048", pem1,
                                         strlen(pem1), err, sizeof(err)), 0);
    CHECK_INT(acme_store_load_bundle(root, "a.test_rsa-2048", &pem, &len,
                                     err, sizeof(err)), 1);
    CHECK_STR(pem, pem1);
    free(pem);

    file = acme_store_bundle_path(root, "a.test_rsa-2048");
    CHECK_INT(mode_of(file), 0600);
    free(file);

    CHECK_INT(acme_store_save_bundle_pem(root, "a.test_rsa-2048", "", 0, err,
                                         sizeof(err)), -1);
    CHECK_INT(acme_store_save_bundle_pem(root, "../evil", pem1, strlen(pem1),
                                         err, sizeof(err)), -1);

    /* the store cannot be written (certs is not a directory): the error
     * names what failed, the old bundle stays */
    rm_tree(root);
    CHECK_INT(mkdir(root, 0700), 0);
    file = acme_sprintf("%s/certs", root);
    fclose(fopen(file, "w"));
    err[0] = '\0';
    CHECK_INT(acme_store_save_bundle_pem(root, "a.test_rsa-2048", pem1,
                                         strlen(pem1), err, sizeof(err)), -1);
    CHECK(strstr(err, "certs") != NULL);
    free(file);

    rm_tree(root);
    free(root);
}

UNIT_TEST(store_state_roundtrip_and_corrupt)
{
    char                err[ACME_ERRLEN], *root, *p;
    acme_cert_state_t   st, in;

    root = unit_tmpdir();

    memset(&st, 0x55, sizeof(st));
    CHECK_INT(acme_store_load_state(root, "s_ecdsa-256", &st, err,
                                    sizeof(err)), 0);
    CHECK_INT(st.failures, 0);
    CHECK_INT(st.next_attempt, 0);
    CHECK_STR(st.last_error, "");

    memset(&in, 0, sizeof(in));
    in.failures = 3;
    in.next_attempt = 1795000000LL;
    in.last_attempt = 1794990000LL;
    in.last_success = 1790000000LL;
    in.attempt_started = 1794999000LL;
    in.attempt_pid = 31337;
    snprintf(in.issuer, sizeof(in.issuer), "second");
    snprintf(in.last_error, sizeof(in.last_error),
             "new-order: urn:ietf:params:acme:error:rateLimited: \"slow\" \xc3\xa9");
    CHECK_INT(acme_store_save_state(root, "s_ecdsa-256", &in, err,
                                    sizeof(err)), 0);
    CHECK_INT(acme_store_load_state(root, "s_ecdsa-256", &st, err,
                                    sizeof(err)), 1);
    CHECK_INT(st.failures, 3);
    CHECK_INT(st.next_attempt, 1795000000LL);
    CHECK_INT(st.last_attempt, 1794990000LL);
    CHECK_INT(st.last_success, 1790000000LL);
    CHECK_INT(st.attempt_started, 1794999000LL);
    CHECK_INT(st.attempt_pid, 31337);
    CHECK_STR(st.issuer, "second");
    CHECK_STR(st.last_error, in.last_error);

    p = acme_store_state_path(root, "s_ecdsa-256");
    CHECK_INT(mode_of(p), 0600);

    /* invalid UTF-8 and an unterminated buffer still produce a valid file */
    memset(in.last_error, 'x', sizeof(in.last_error));
    in.last_error[10] = (char) 0xff;
    in.last_error[sizeof(in.last_error) - 2] = (char) 0xc3;
    CHECK_INT(acme_store_save_state(root, "s_ecdsa-256", &in, err,
                                    sizeof(err)), 0);
    CHECK_INT(acme_store_load_state(root, "s_ecdsa-256", &st, err,
                                    sizeof(err)), 1);
    CHECK_INT(strlen(st.last_error), sizeof(st.last_error) - 1);
    CHECK_INT(st.last_error[10], '?');

    /* corrupt: an error, state zeroed, nothing deleted */
    CHECK_INT(acme_store_write_atomic(p, "{\"failures\": 2,", 15, 0600, err,
                                      sizeof(err)), 0);
    st.failures = 9;
    CHECK_INT(acme_store_load_state(root, "s_ecdsa-256", &st, err,
                                    sizeof(err)), -1);
    CHECK_INT(st.failures, 0);
    CHECK(strstr(err, "state.json") != NULL);
    CHECK(access(p, F_OK) == 0);

    CHECK_INT(acme_store_write_atomic(p, "[1]", 3, 0600, err, sizeof(err)), 0);
    CHECK_INT(acme_store_load_state(root, "s_ecdsa-256", &st, err,
                                    sizeof(err)), -1);
    free(p);

    rm_tree(root);
    free(root);
}

/* ARI (RFC 9773): the renewalInfo record survives a restart */
UNIT_TEST(store_state_ari_roundtrip)
{
    char                err[ACME_ERRLEN], *root;
    acme_cert_state_t   st, in;

    root = unit_tmpdir();

    memset(&in, 0, sizeof(in));
    in.failures = 1;
    snprintf(in.ari_id, sizeof(in.ari_id), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    in.ari_start = 1795000000LL;
    in.ari_end = 1795086400LL;
    in.ari_at = 1795040000LL;
    in.ari_next_poll = 1794921600LL;
    in.ari_last_poll = 1794900000LL;
    in.ari_failures = 2;
    snprintf(in.ari_explanation, sizeof(in.ari_explanation),
             "https://ca.test/why");
    snprintf(in.ari_error, sizeof(in.ari_error), "renewal-info: HTTP 500");
    CHECK_INT(acme_store_save_state(root, "s_ecdsa-256", &in, err,
                                    sizeof(err)), 0);
    memset(&st, 0x55, sizeof(st));
    CHECK_INT(acme_store_load_state(root, "s_ecdsa-256", &st, err,
                                    sizeof(err)), 1);
    CHECK_STR(st.ari_id, in.ari_id);
    CHECK_INT(st.ari_start, in.ari_start);
    CHECK_INT(st.ari_end, in.ari_end);
    CHECK_INT(st.ari_at, in.ari_at);
    CHECK_INT(st.ari_next_poll, in.ari_next_poll);
    CHECK_INT(st.ari_last_poll, in.ari_last_poll);
    CHECK_INT(st.ari_failures, 2);
    CHECK_INT(st.ari_unsupported, 0);
    CHECK_STR(st.ari_explanation, "https://ca.test/why");
    CHECK_STR(st.ari_error, "renewal-info: HTTP 500");
    CHECK_INT(st.failures, 1);

    /* none: no "ari" written, none read */
    memset(&in, 0, sizeof(in));
    CHECK_INT(acme_store_save_state(root, "s_ecdsa-256", &in, err,
                                    sizeof(err)), 0);
    CHECK_INT(acme_store_load_state(root, "s_ecdsa-256", &st, err,
                                    sizeof(err)), 1);
    CHECK_STR(st.ari_id, "");
    CHECK_INT(st.ari_next_poll, 0);

    rm_tree(root);
    free(root);
}

/* -- root-safe access (acme_store_dir_t) ----------------------------------- */

static void
put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static char *
slurp(const char *path)
{
    char   *data = NULL, err[ACME_ERRLEN];
    size_t  len;

    return acme_store_read(path, &data, &len, 4096, err, sizeof(err)) == 1
           ? data : NULL;
}

UNIT_TEST(store_dir_create_modes_and_ancestors)
{
    char              err[ACME_ERRLEN], warn[ACME_ERRLEN], *base, *root, *p;
    acme_store_dir_t  rd = ACME_STORE_DIR_INIT, cd = ACME_STORE_DIR_INIT;
    mode_t            old;

    base = unit_tmpdir();
    CHECK(base != NULL);
    root = acme_sprintf("%s/a/b/store/", base);

    old = umask(0);
    CHECK_INT(acme_store_dir_open_root(&rd, root, (uid_t) -1, (gid_t) -1, 1,
                                       warn, sizeof(warn), err, sizeof(err)),
              0);
    CHECK_STR(warn, "");
    CHECK_INT(acme_store_dir_open_cert(&cd, &rd, "x.test_ecdsa-256", 1, err,
                                       sizeof(err)), 0);
    umask(old);

    /* ancestors 0755 for the caller, the store and below 0700 */
    p = acme_sprintf("%s/a", base);
    CHECK_INT(mode_of(p), 0755);
    free(p);
    p = acme_sprintf("%s/a/b/store", base);
    CHECK_INT(mode_of(p), 0700);
    CHECK_STR(rd.path, p);
    free(p);
    p = acme_sprintf("%s/a/b/store/certs/x.test_ecdsa-256", base);
    CHECK_INT(mode_of(p), 0700);
    CHECK_STR(cd.path, p);
    free(p);
    CHECK_INT(acme_store_dir_read_only(&rd), 0);

    /* write and read back relative to the descriptor */
    CHECK_INT(acme_store_dir_write(&cd, "state.json", "{}", 2, 0600, err,
                                   sizeof(err)), 0);
    CHECK_INT(count_entries(cd.path), 1);
    acme_store_dir_close(&cd);
    acme_store_dir_close(&rd);
    CHECK(rd.fd == -1 && rd.path == NULL);

    /* a group/other-writable ancestor without the sticky bit is named */
    p = acme_sprintf("%s/a/b", base);
    chmod(p, 0777);
    CHECK_INT(acme_store_dir_open_root(&rd, root, (uid_t) -1, (gid_t) -1, 0,
                                       warn, sizeof(warn), err, sizeof(err)),
              0);
    CHECK(strstr(warn, p) != NULL && strstr(warn, "writable") != NULL);
    acme_store_dir_close(&rd);
    chmod(p, 01777);        /* as /tmp: fine */
    CHECK_INT(acme_store_dir_open_root(&rd, root, (uid_t) -1, (gid_t) -1, 0,
                                       warn, sizeof(warn), err, sizeof(err)),
              0);
    CHECK_STR(warn, "");
    acme_store_dir_close(&rd);
    free(p);

    /* missing without create: ENOENT; a file in the way is refused */
    p = acme_sprintf("%s/none", base);
    CHECK_INT(acme_store_dir_open_root(&rd, p, (uid_t) -1, (gid_t) -1, 0,
                                       NULL, 0, err, sizeof(err)), -1);
    CHECK_INT(errno, ENOENT);
    free(p);
    p = acme_sprintf("%s/afile", base);
    put_file(p, "x");
    CHECK_INT(acme_store_dir_open_root(&rd, p, (uid_t) -1, (gid_t) -1, 1,
                                       NULL, 0, err, sizeof(err)), -1);
    CHECK(strstr(err, "afile") != NULL && strstr(err, "refused") != NULL);
    free(p);

    rm_tree(base);
    free(base);
    free(root);
}

UNIT_TEST(store_dir_refuses_symlinks_links_and_types)
{
    char              err[ACME_ERRLEN], *base, *root, *secret, *sdir, *p, *q,
                     *data;
    size_t            len;
    acme_store_dir_t  rd = ACME_STORE_DIR_INIT, cd = ACME_STORE_DIR_INIT;
    acme_cert_state_t st;
    struct stat       sb;

    base = unit_tmpdir();
    CHECK(base != NULL);
    root = acme_sprintf("%s/store", base);
    secret = acme_sprintf("%s/secret.pem", base);
    sdir = acme_sprintf("%s/secretdir", base);
    put_file(secret, "SECRET KEY\n");
    mkdir(sdir, 0700);
    p = acme_sprintf("%s/state.json", sdir);
    put_file(p, "{\"failures\": 7}");
    free(p);

    CHECK_INT(acme_store_dir_open_root(&rd, root, (uid_t) -1, (gid_t) -1, 1,
                                       NULL, 0, err, sizeof(err)), 0);
    CHECK_INT(acme_store_dir_open(&cd, &rd, "certs", 1, err, sizeof(err)), 0);
    acme_store_dir_close(&cd);

    /* certs/<id> a symlink to another directory: not opened, not created */
    p = acme_sprintf("%s/certs/x_ecdsa-256", root);
    CHECK_INT(symlink(sdir, p), 0);
    CHECK_INT(acme_store_dir_open_cert(&cd, &rd, "x_ecdsa-256", 1, err,
                                       sizeof(err)), -1);
    CHECK_INT(errno, ELOOP);
    CHECK(strstr(err, p) != NULL && strstr(err, "symbolic link") != NULL);
    CHECK_INT(acme_store_load_state(root, "x_ecdsa-256", &st, err,
                                    sizeof(err)), -1);
    CHECK_INT(st.failures, 0);
    CHECK_INT(acme_store_save_state(root, "x_ecdsa-256", &st, err,
                                    sizeof(err)), -1);
    CHECK_INT(count_entries(sdir), 1);      /* nothing written there */
    unlink(p);
    free(p);

    /* files: symlink, hard link, directory, FIFO are refused, never read */
    CHECK_INT(acme_store_dir_open_cert(&cd, &rd, "x_ecdsa-256", 1, err,
                                       sizeof(err)), 0);
    p = acme_sprintf("%s/bundle.pem", cd.path);

    CHECK_INT(symlink(secret, p), 0);
    CHECK_INT(acme_store_load_bundle_at(&cd, &data, &len, err, sizeof(err)),
              -1);
    CHECK(data == NULL);
    CHECK(strstr(err, p) != NULL && strstr(err, "symbolic link") != NULL);
    CHECK_INT(acme_store_load_bundle(root, "x_ecdsa-256", &data, &len, err,
                                     sizeof(err)), -1);
    unlink(p);

    CHECK_INT(link(secret, p), 0);
    CHECK_INT(acme_store_load_bundle_at(&cd, &data, &len, err, sizeof(err)),
              -1);
    CHECK(data == NULL);
    CHECK(strstr(err, p) != NULL && strstr(err, "hard links") != NULL);
    unlink(p);

    CHECK_INT(mkdir(p, 0700), 0);
    CHECK_INT(acme_store_load_bundle_at(&cd, &data, &len, err, sizeof(err)),
              -1);
    CHECK(strstr(err, "not a regular file") != NULL);
    rmdir(p);

    CHECK_INT(mkfifo(p, 0600), 0);
    CHECK_INT(acme_store_load_bundle_at(&cd, &data, &len, err, sizeof(err)),
              -1);
    CHECK(strstr(err, "not a regular file") != NULL);
    unlink(p);

    /* a write replaces a planted symlink itself, not its target */
    CHECK_INT(symlink(secret, p), 0);
    CHECK_INT(acme_store_dir_write(&cd, "bundle.pem", "NEW\n", 4, 0600, err,
                                   sizeof(err)), 0);
    CHECK(lstat(p, &sb) == 0 && S_ISREG(sb.st_mode));
    q = slurp(secret);
    CHECK_STR(q, "SECRET KEY\n");
    free(q);
    CHECK_INT(acme_store_load_bundle_at(&cd, &data, &len, err, sizeof(err)),
              1);
    CHECK_STR(data, "NEW\n");
    free(data);
    CHECK_INT(count_entries(cd.path), 1);   /* no temporary left */
    free(p);
    acme_store_dir_close(&cd);

    /* account.key: the same rules through the path-based calls */
    p = acme_sprintf("%s/account.key", root);
    CHECK_INT(symlink(secret, p), 0);
    CHECK_INT(acme_store_load_account_key(root, &data, &len, err,
                                          sizeof(err)), -1);
    CHECK(data == NULL && strstr(err, "symbolic link") != NULL);
    unlink(p);
    CHECK_INT(acme_store_save_account_key(root, "KEY", 3, err, sizeof(err)),
              0);
    CHECK_INT(mode_of(p), 0600);
    CHECK_INT(acme_store_load_account_key(root, &data, &len, err,
                                          sizeof(err)), 1);
    CHECK_STR(data, "KEY");
    free(data);
    free(p);

    /* the store root itself must not be a symlink */
    p = acme_sprintf("%s/link", base);
    CHECK_INT(symlink(sdir, p), 0);
    CHECK_INT(acme_store_dir_open_root(&cd, p, (uid_t) -1, (gid_t) -1, 1,
                                       NULL, 0, err, sizeof(err)), -1);
    CHECK(strstr(err, "symbolic link") != NULL);
    free(p);

    acme_store_dir_close(&rd);
    q = slurp(secret);
    CHECK_STR(q, "SECRET KEY\n");
    free(q);
    CHECK_INT(count_entries(sdir), 1);

    rm_tree(base);
    free(base);
    free(root);
    free(secret);
    free(sdir);
}

/* As root: the store is handed to another user through descriptors; files
 * of a third user are refused. */
UNIT_TEST(store_dir_owner_as_root)
{
    char              err[ACME_ERRLEN], *base, *root, *p, *data;
    size_t            len;
    acme_store_dir_t  rd = ACME_STORE_DIR_INIT, cd = ACME_STORE_DIR_INIT;
    struct stat       sb;
    const uid_t       worker = 65534, other = 54321;

    if (geteuid() != 0) {
        fprintf(stderr, "  (not root: ownership cases need root, checked "
                "only that the store is the caller's)\n");
        base = unit_tmpdir();
        CHECK_INT(acme_store_dir_open_root(&rd, base, (uid_t) -1, (gid_t) -1,
                                           0, NULL, 0, err, sizeof(err)), 0);
        CHECK(rd.uid == geteuid() && !rd.give);
        acme_store_dir_close(&rd);
        rm_tree(base);
        free(base);
        return;
    }

    base = unit_tmpdir();
    CHECK(base != NULL);
    root = acme_sprintf("%s/store", base);
    mkdir(root, 0700);      /* exists, owned by root: handed over */

    CHECK_INT(acme_store_dir_open_root(&rd, root, worker, worker, 1, NULL, 0,
                                       err, sizeof(err)), 0);
    CHECK(stat(root, &sb) == 0 && sb.st_uid == worker && sb.st_gid == worker);
    CHECK_INT(acme_store_dir_open_cert(&cd, &rd, "y_ecdsa-256", 1, err,
                                       sizeof(err)), 0);
    CHECK(stat(cd.path, &sb) == 0 && sb.st_uid == worker);
    CHECK_INT(acme_store_dir_write(&cd, "fallback.pem", "X", 1, 0600, err,
                                   sizeof(err)), 0);
    p = acme_sprintf("%s/fallback.pem", cd.path);
    CHECK(stat(p, &sb) == 0 && sb.st_uid == worker && sb.st_gid == worker
          && (sb.st_mode & 07777) == 0600);

    /* the worker's file and a root-owned one are read, a third user's not */
    CHECK_INT(acme_store_dir_read(&cd, "fallback.pem", &data, &len, 10, err,
                                  sizeof(err)), 1);
    free(data);
    CHECK_INT(chown(p, 0, 0), 0);
    CHECK_INT(acme_store_dir_read(&cd, "fallback.pem", &data, &len, 10, err,
                                  sizeof(err)), 1);
    free(data);
    CHECK_INT(chown(p, other, other), 0);
    CHECK_INT(acme_store_dir_read(&cd, "fallback.pem", &data, &len, 10, err,
                                  sizeof(err)), -1);
    CHECK(data == NULL && strstr(err, "owned by uid 54321") != NULL);
    free(p);
    acme_store_dir_close(&cd);

    /* a directory of a third user below the root is refused, not chown'd */
    p = acme_sprintf("%s/certs/z_ecdsa-256", root);
    mkdir(p, 0700);
    CHECK_INT(chown(p, other, other), 0);
    CHECK_INT(acme_store_dir_open_cert(&cd, &rd, "z_ecdsa-256", 1, err,
                                       sizeof(err)), -1);
    CHECK(strstr(err, "owned by uid 54321") != NULL);
    CHECK(stat(p, &sb) == 0 && sb.st_uid == other);
    free(p);

    acme_store_dir_close(&rd);
    rm_tree(base);
    free(base);
    free(root);
}

/* issue 10: one account per CA; a store's root account (older versions,
 * or the first CA) stays its CA's, another CA gets accounts/<name>/ */
UNIT_TEST(store_account_per_directory)
{
    char        err[ACME_ERRLEN], *root, *url = NULL, *name, *p;
    EVP_PKEY   *ka = NULL, *kb = NULL, *k = NULL;
    int         created;
    acme_cert_state_t st, st2;
    struct stat sb;

    root = unit_tmpdir();
    /* CA A first: the root's account (the layout of older versions) */
    CHECK_INT(acme_store_account_key(root, "https://a.test/dir",
                                     ACME_KEY_EC_P256, &ka, &created, err,
                                     sizeof(err)), 0);
    CHECK_INT(created, 1);
    CHECK_INT(acme_store_save_account(root, "https://a.test/dir", ka,
                                      "https://a.test/acct/1", err,
                                      sizeof(err)), 0);

    /* CA B: its own key and account, A's kept */
    CHECK_INT(acme_store_load_account(root, "https://b.test/dir", NULL, &url,
                                      err, sizeof(err)), 0);
    CHECK_INT(acme_store_account_key(root, "https://b.test/dir",
                                     ACME_KEY_EC_P256, &kb, &created, err,
                                     sizeof(err)), 0);
    CHECK_INT(created, 1);
    CHECK(EVP_PKEY_eq(ka, kb) != 1);
    CHECK_INT(acme_store_save_account(root, "https://b.test/dir", kb,
                                      "https://b.test/acct/7", err,
                                      sizeof(err)), 0);
    name = acme_store_account_name("https://b.test/dir");
    CHECK(name != NULL && strncmp(name, "b.test_dir-", 11) == 0);
    p = acme_sprintf("%s/accounts/%s/account.json", root, name);
    CHECK_INT(stat(p, &sb), 0);
    free(p);
    free(name);

    /* both accounts are used for their CA */
    CHECK_INT(acme_store_load_account(root, "https://a.test/dir", ka, &url,
                                      err, sizeof(err)), 1);
    CHECK_STR(url, "https://a.test/acct/1");
    free(url);
    CHECK_INT(acme_store_load_account(root, "https://b.test/dir", kb, &url,
                                      err, sizeof(err)), 1);
    CHECK_STR(url, "https://b.test/acct/7");
    free(url);
    /* back to A: A's key, no new account */
    CHECK_INT(acme_store_account_key(root, "https://a.test/dir",
                                     ACME_KEY_EC_P256, &k, &created, err,
                                     sizeof(err)), 0);
    CHECK_INT(created, 0);
    CHECK(EVP_PKEY_eq(ka, k) == 1);
    EVP_PKEY_free(k);
    CHECK_INT(acme_store_account_key(root, "https://b.test/dir",
                                     ACME_KEY_EC_P256, &k, &created, err,
                                     sizeof(err)), 0);
    CHECK_INT(created, 0);
    CHECK(EVP_PKEY_eq(kb, k) == 1);
    EVP_PKEY_free(k);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);

    /* the directory that issued a certificate survives state.json */
    memset(&st, 0, sizeof(st));
    snprintf(st.directory, sizeof(st.directory), "https://b.test/dir");
    CHECK_INT(acme_store_save_state(root, "x.test_ecdsa-256", &st, err,
                                    sizeof(err)), 0);
    CHECK_INT(acme_store_load_state(root, "x.test_ecdsa-256", &st2, err,
                                    sizeof(err)), 1);
    CHECK_STR(st2.directory, "https://b.test/dir");

    rm_tree(root);
    free(root);
}


/* The store as the worker / child user sees it, by the mode bits (the
 * caller is root checking for another uid): the component that blocks is
 * named; a store the user cannot write is 1 (a warning). */
UNIT_TEST(store_check_user)
{
    char               err[ACME_ERRLEN], *base, *p, *want;
    acme_store_user_t  u;
    const uid_t        other = 54321;

    base = unit_tmpdir();
    CHECK_INT(chmod(base, 0755), 0);
    acme_store_user_init(&u, "tester", other, (gid_t) other);
    u.n_groups = 0;

    /* below a 0700 directory of another owner: not searchable */
    p = acme_sprintf("%s/priv", base);
    CHECK_INT(mkdir(p, 0700), 0);
    free(p);
    p = acme_sprintf("%s/priv/acme/state", base);
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), -1);
    CHECK_INT(errno, EACCES);
    want = acme_sprintf("\"%s/priv\" is not searchable by user \"tester\"",
                        base);
    CHECK_STR(err, want);
    free(want);

    /* the group's x bit counts for the primary group and for the
     * supplementary ones, the others' bit for everybody */
    free(p);
    p = acme_sprintf("%s/priv", base);
    CHECK_INT(chmod(p, 0710), 0);
    free(p);
    p = acme_sprintf("%s/priv/acme/state", base);
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), -1);
    u.gid = getegid();
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), 0);
    u.gid = (gid_t) other;
    u.groups[0] = getegid();
    u.n_groups = 1;
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), 0);
    u.n_groups = 0;
    free(p);
    p = acme_sprintf("%s/priv", base);
    CHECK_INT(chmod(p, 0701), 0);
    free(p);
    p = acme_sprintf("%s/priv/acme/state", base);
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), 0);
    /* its owner */
    free(p);
    p = acme_sprintf("%s/priv", base);
    CHECK_INT(chmod(p, 0700), 0);
    free(p);
    p = acme_sprintf("%s/priv/acme/state", base);
    u.uid = geteuid();
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), 0);
    u.uid = other;
    /* uid 0 passes everything; a relative path is not judged */
    u.uid = 0;
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), 0);
    u.uid = other;
    CHECK_INT(acme_store_check_user("rel/state", &u, 1, err, sizeof(err)), 0);

    /* a symlink that leads through the 0700 directory: named there */
    free(p);
    p = acme_sprintf("%s/priv/target", base);
    CHECK_INT(mkdir(p, 0755), 0);
    free(p);
    p = acme_sprintf("%s/link", base);
    want = acme_sprintf("%s/priv/target", base);
    CHECK_INT(symlink(want, p), 0);
    free(want);
    free(p);
    p = acme_sprintf("%s/link/state", base);
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), -1);
    want = acme_sprintf("\"%s/priv\" is not searchable", base);
    CHECK(strstr(err, want) != NULL);
    free(want);

    /* an existing store: root gives it to the user (give), so the owner's
     * bits count; without w for it a warning (1), without x an error */
    free(p);
    p = acme_sprintf("%s/store", base);
    CHECK_INT(mkdir(p, 0700), 0);
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), 0);
    CHECK_INT(acme_store_check_user(p, &u, 0, err, sizeof(err)), -1);
    CHECK(strstr(err, "is not searchable by user \"tester\"") != NULL);
    CHECK_INT(chmod(p, 0555), 0);
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), 1);
    want = acme_sprintf("\"%s\" is not writable by user \"tester\" (mode "
                        "0555)", p);
    CHECK_STR(err, want);
    free(want);
    /* a trailing slash is the same store */
    free(p);
    p = acme_sprintf("%s/store/", base);
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), 1);
    /* a missing store below a searchable directory: root creates it */
    free(p);
    p = acme_sprintf("%s/new/store", base);
    CHECK_INT(acme_store_check_user(p, &u, 1, err, sizeof(err)), 0);
    free(p);
    p = acme_sprintf("%s/new", base);
    CHECK(access(p, F_OK) != 0);        /* nothing created */

    free(p);
    rm_tree(base);
    free(base);
}
