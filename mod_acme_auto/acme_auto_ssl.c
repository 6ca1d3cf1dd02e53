/*
 * Certificates into mod_ssl without restarts.
 *
 * Startup (parent, as root, before mod_ssl's post_config): for each managed
 * certificate the stored bundle (key + chain in one file) or, before the
 * first issuance, a self-signed placeholder written into the state
 * directory is handed to mod_ssl through ssl_add_cert_files, so mod_ssl's
 * own checks pass and the vhost serves at once (ssl_add_fallback_cert_files
 * would make mod_ssl answer 503 for good).  The stored bundle is also put
 * into shared memory.
 *
 * Runtime (every child): mod_ssl's optional hook ssl_init_server gives us
 * each managed vhost's SSL_CTX; we set an OpenSSL cert callback on it.  The
 * callback survives mod_ssl's SNI switch (SSL_set_SSL_CTX copies it) and
 * runs after the vhost is chosen.  A per-child thread checks the shared
 * generation counter once a second and parses a changed bundle once, off
 * the handshake path; the callback only installs already-parsed objects
 * (SSL_certs_clear + SSL_use_cert_and_key) under a read lock.  While the
 * child still has what mod_ssl loaded at startup it does nothing at all.
 */
#include <string.h>
#include <stdlib.h>
#include <pthread.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "unixd.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_cert.h"
#include "acme_key.h"
#include "acme_sched.h"
#include "acme_store.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

#define ACME_ALPN_PROTO     "acme-tls/1"
#define PLACEHOLDER_FILE    "fallback.pem"
#define RUNTIME_SUBDIR      "acme_auto"     /* below DefaultRuntimeDir */
#define CA_COPY_FILE        "trusted-ca.pem"
#define PLACEHOLDER_DAYS    30

/* -- parent: state dirs, stored bundles, placeholders ---------------------- */

int
acme_auto_status_from_pem(const char *pem, apr_size_t len,
    acme_auto_slot_status_t *st)
{
    acme_cert_info_t info;
    char             err[ACME_ERRLEN];

    memset(&info, 0, sizeof(info));
    if (acme_cert_info_from_pem(pem, len, &info, err, sizeof(err)) != 0) {
        return -1;
    }
    acme_job_status_set_cert(st, info.not_before, info.not_after,
                             info.serial, info.issuer);
    acme_cert_info_free(&info);
    return 0;
}

static void
child_ids(uid_t *uid, gid_t *gid)
{
    /* the parent runs as root and hands the store to the child user */
    if (geteuid() == 0) {
        *uid = ap_unixd_config.user_id;
        *gid = ap_unixd_config.group_id;
    }
    else {
        *uid = (uid_t) -1;
        *gid = (gid_t) -1;
    }
}

/*
 * The parent is root and the store belongs to the child user, who may have
 * put symlinks or hard links anywhere in it: the store is reached only
 * through directory descriptors (acme_store_dir_t), and what mod_ssl reads
 * by path after us (the stored bundle, the placeholder) is a copy in a
 * root-only directory below DefaultRuntimeDir, never a file in the store.
 */
static int
open_runtime_dir(server_rec *s, apr_pool_t *pconf, acme_store_dir_t *rt)
{
    const char *path = ap_runtime_dir_relative(pconf, RUNTIME_SUBDIR);
    char        err[ACME_ERRLEN], warn[ACME_ERRLEN];

    if (path == NULL
        || acme_store_dir_open_root(rt, path, (uid_t) -1, (gid_t) -1, 1,
                                    warn, sizeof(warn), err, sizeof(err))
           != 0)
    {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_acme_auto: cannot "
                     "create the directory for mod_ssl's certificate files: "
                     "%s", path ? err : "out of memory");
        return -1;
    }
    if (warn[0]) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: "
                     "DefaultRuntimeDir: %s", warn);
    }
    return 0;
}

/* Opens the issuer's store root for the child user; a failure is logged
 * (a read-only file system as a warning) and leaves rd->fd at -1. */
static void
open_store_root(server_rec *s, acme_auto_issuer_t *iss, uid_t uid, gid_t gid,
    int log_warn, acme_store_dir_t *rd, char *store_err, size_t len)
{
    char err[ACME_ERRLEN], warn[ACME_ERRLEN];

    store_err[0] = '\0';
    if (acme_store_dir_open_root(rd, iss->state_dir, uid, gid, 1, warn,
                                 sizeof(warn), err, sizeof(err)) != 0)
    {
        int rofs = (errno == EROFS);

        apr_cpystrn(store_err, err, len);
        if (log_warn) {
            ap_log_error(APLOG_MARK, rofs ? APLOG_WARNING : APLOG_ERR, 0, s,
                         "mod_acme_auto: <AcmeIssuer %s>: AcmeStateDir %s "
                         "is not usable, certificates are served as if "
                         "nothing were stored: %s", iss->name, iss->state_dir,
                         err);
        }
        return;
    }
    if (log_warn && warn[0]) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: "
                     "<AcmeIssuer %s>: AcmeStateDir: %s", iss->name, warn);
    }
}

/* The issuer's CA bundle is copied into the state directory: the children
 * (which run the ACME client) may not be able to read the original. */
static int
prepare_issuer(server_rec *s, acme_auto_issuer_t *iss, apr_pool_t *pconf,
    uid_t uid, gid_t gid)
{
    char              err[ACME_ERRLEN], store_err[256], *data = NULL;
    size_t            len = 0;
    int               rc;
    acme_store_dir_t  rd;

    open_store_root(s, iss, uid, gid, 1, &rd, store_err, sizeof(store_err));

    iss->ca_copy = NULL;
    if (iss->trusted_ca == NULL) {
        acme_store_dir_close(&rd);
        return 0;
    }
    rc = acme_store_read(iss->trusted_ca, &data, &len, 4 * 1024 * 1024,
                         err, sizeof(err));
    if (rc != 1) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_acme_auto: "
                     "<AcmeIssuer %s>: cannot read AcmeTrustedCA %s: %s",
                     iss->name, iss->trusted_ca, rc == 0 ? "missing" : err);
        acme_store_dir_close(&rd);
        return -1;
    }
    if (rd.fd >= 0
        && acme_store_dir_write(&rd, CA_COPY_FILE, data, len, 0644, err,
                                sizeof(err)) == 0)
    {
        iss->ca_copy = apr_pstrcat(pconf, rd.path, "/" CA_COPY_FILE, NULL);
    }
    else {
        /* the children try the original (readable for them or not) */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: "
                     "<AcmeIssuer %s>: cannot copy AcmeTrustedCA into the "
                     "store, the children use %s: %s", iss->name,
                     iss->trusted_ca, rd.fd >= 0 ? err : store_err);
        iss->ca_copy = iss->trusted_ca;
    }
    free(data);
    acme_store_dir_close(&rd);
    return 0;
}

static void
load_state_into(acme_store_dir_t *cd, acme_auto_slot_status_t *st)
{
    acme_cert_state_t cs;
    char              err[ACME_ERRLEN];

    if (acme_store_load_state_at(cd, &cs, err, sizeof(err)) == 1) {
        st->failures = cs.failures;
        st->last_success = cs.last_success;
        st->next_renewal = cs.next_attempt;
        apr_cpystrn(st->last_error, cs.last_error, sizeof(st->last_error));
    }
}

/* Writes what mod_ssl is to read for c into the runtime directory. */
static int
hand_to_mod_ssl(server_rec *s, acme_auto_cert_t *c, apr_pool_t *pconf,
    acme_store_dir_t *rt, const char *name, const char *pem, size_t len)
{
    char err[ACME_ERRLEN];

    if (acme_store_dir_write(rt, name, pem, len, 0600, err, sizeof(err))
        != 0)
    {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_acme_auto: %s: "
                     "cannot write the certificate file for mod_ssl: %s",
                     c->id, err);
        return -1;
    }
    c->placeholder = apr_pstrcat(pconf, rt->path, "/", name, NULL);
    return 0;
}

static int
prepare_cert(server_rec *s, acme_auto_cert_t *c, apr_pool_t *pconf,
    acme_store_dir_t *rt, uid_t uid, gid_t gid)
{
    acme_auto_slot_status_t st;
    char                    err[ACME_ERRLEN], *pem = NULL, *self;
    size_t                  len = 0, klen = 0, slen = 0;
    EVP_PKEY               *key;
    char                   *kpem, *blob;
    int                     rc;
    acme_store_dir_t        rd, cd = ACME_STORE_DIR_INIT;

    c->placeholder = NULL;
    c->startup_gen = 0;
    memset(&st, 0, sizeof(st));

    open_store_root(s, c->issuer, uid, gid, 0, &rd, st.store_error,
                    sizeof(st.store_error));
    if (rd.fd >= 0) {
        if (acme_store_dir_open_cert(&cd, &rd, c->id, 1, err, sizeof(err))
            != 0)
        {
            int rofs = (errno == EROFS);

            apr_cpystrn(st.store_error, err, sizeof(st.store_error));
            ap_log_error(APLOG_MARK, rofs ? APLOG_WARNING : APLOG_ERR, 0, s,
                         "mod_acme_auto: %s: the store is not usable, "
                         "served as if nothing were stored: %s", c->id, err);
        }
        else if (acme_store_dir_read_only(&cd)) {
            apr_snprintf(st.store_error, sizeof(st.store_error),
                         "read-only file system: \"%s\"", cd.path);
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: "
                         "%s: the store is on a read-only file system (%s): "
                         "the stored certificate is served, new ones cannot "
                         "be stored until it is writable", c->id, cd.path);
        }
        acme_store_dir_close(&rd);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: %s: "
                     "no usable store: %s", c->id, st.store_error);
    }

    rc = 0;
    if (cd.fd >= 0) {
        load_state_into(&cd, &st);
        rc = acme_store_load_bundle_at(&cd, &pem, &len, err, sizeof(err));
        acme_store_dir_close(&cd);
    }
    if (rc == 1) {
        if (len <= ACME_AUTO_BUNDLE_MAX
            && acme_bundle_parse(pem, len, NULL, NULL, NULL, err,
                                 sizeof(err)) == 0
            && acme_auto_status_from_pem(pem, len, &st) == 0)
        {
            /* until the driving child computes it with its own jitter */
            long long at = acme_sched_renew_at(st.not_before, st.not_after,
                                               c->issuer->renew_fraction, 0);
            if (at > st.next_renewal) {
                st.next_renewal = at;
            }
            if (hand_to_mod_ssl(s, c, pconf, rt,
                                apr_pstrcat(pconf, c->id, ".pem", NULL),
                                pem, len) != 0)
            {
                OPENSSL_cleanse(pem, len);
                free(pem);
                return -1;
            }
            acme_auto_shm_set_bundle(c->slot, pem, len, &st);
            c->startup_gen = acme_auto_shm_slot_gen(c->slot);
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "mod_acme_auto: %s: "
                         "serving the stored certificate (serial %s)", c->id,
                         st.serial);
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: %s:"
                         " ignoring the unusable stored bundle: %s", c->id,
                         err);
        }
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    else if (rc < 0) {
        /* e.g. a refused symlink: the status says why nothing is served */
        apr_cpystrn(st.store_error, err, sizeof(st.store_error));
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "mod_acme_auto: %s: "
                     "stored bundle ignored: %s", c->id, err);
    }

    if (c->placeholder == NULL) {
        /* self-signed P-256 placeholder until the first issuance */
        key = acme_key_generate(ACME_KEY_EC_P256);
        self = key ? acme_selfsigned_pem(key, c->names, c->n_names,
                                         PLACEHOLDER_DAYS, &slen) : NULL;
        kpem = key ? acme_key_to_pem(key, &klen) : NULL;
        EVP_PKEY_free(key);
        if (self == NULL || kpem == NULL) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_acme_auto: %s: "
                         "cannot make the self-signed placeholder", c->id);
            free(self);
            free(kpem);
            return -1;
        }
        blob = apr_pstrcat(pconf, kpem, self, NULL);
        rc = hand_to_mod_ssl(s, c, pconf, rt,
                             apr_pstrcat(pconf, c->id, "." PLACEHOLDER_FILE,
                                         NULL),
                             blob, strlen(blob));
        OPENSSL_cleanse(kpem, klen);
        free(self);
        free(kpem);
        if (rc != 0) {
            return -1;
        }
        acme_auto_shm_set_status(c->slot, &st);
    }
    return 0;
}

int
acme_auto_prepare_certs(server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    uid_t             uid;
    gid_t             gid;
    int               i, j, rc;
    acme_store_dir_t  rt;

    (void) ptemp;
    child_ids(&uid, &gid);
    for (i = 0; i < acme_auto_g.issuers->nelts; i++) {
        acme_auto_issuer_t *iss = APR_ARRAY_IDX(acme_auto_g.issuers, i,
                                                acme_auto_issuer_t *);
        int used = 0;
        for (j = 0; j < acme_auto_g.certs->nelts; j++) {
            if (APR_ARRAY_IDX(acme_auto_g.certs, j, acme_auto_cert_t *)->issuer
                == iss)
            {
                used = 1;
            }
        }
        if (used && prepare_issuer(s, iss, pconf, uid, gid) != 0) {
            return !OK;
        }
    }
    if (open_runtime_dir(s, pconf, &rt) != 0) {
        return !OK;
    }
    rc = OK;
    for (j = 0; rc == OK && j < acme_auto_g.certs->nelts; j++) {
        if (prepare_cert(s, APR_ARRAY_IDX(acme_auto_g.certs, j,
                                          acme_auto_cert_t *),
                         pconf, &rt, uid, gid) != 0)
        {
            rc = !OK;
        }
    }
    acme_store_dir_close(&rt);
    return rc;
}

int
acme_auto_add_cert_files(server_rec *s, apr_pool_t *p,
    apr_array_header_t *cert_files, apr_array_header_t *key_files)
{
    apr_array_header_t *all = acme_auto_certs_for_server(s);
    acme_auto_cert_t   *c;
    int                 i, added = 0;

    (void) p;
    for (i = 0; all != NULL && i < all->nelts; i++) {
        c = APR_ARRAY_IDX(all, i, acme_auto_cert_t *);
        if (c->placeholder == NULL) {
            continue;
        }
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "mod_acme_auto: %s for "
                     "mod_ssl: %s", c->id, c->placeholder);
        APR_ARRAY_PUSH(cert_files, const char *) = c->placeholder;
        APR_ARRAY_PUSH(key_files, const char *) = c->placeholder;
        added = 1;
    }
    return added ? OK : DECLINED;
}

/* -- children: parsed certificates and the cert callback ------------------- */

typedef struct {
    pthread_rwlock_t    lock;
    apr_uint32_t        gen;        /* generation parsed (or startup's) */
    EVP_PKEY           *key;        /* NULL: keep what mod_ssl loaded */
    X509               *leaf;
    STACK_OF(X509)     *chain;
} proc_cert_t;

static proc_cert_t     *proc_certs;
static int              n_proc_certs;
static apr_uint32_t     proc_gen;
static pthread_t        refresher;
static int              refresher_running;
static pthread_mutex_t  stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   stop_cv = PTHREAD_COND_INITIALIZER;
static int              stop_flag;

/* Installs the vhost's parsed certificates: one SSL_certs_clear (so no
 * placeholder lingers), then one SSL_use_cert_and_key per certificate, so
 * that with an ECDSA and an RSA one OpenSSL picks by the client's
 * signature algorithms. */
static int
cert_cb(SSL *ssl, void *arg)
{
    apr_array_header_t   *all = arg;
    acme_auto_cert_t     *c;
    proc_cert_t          *pc;
    const unsigned char  *alpn = NULL;
    unsigned int          alpn_len = 0;
    int                   i, cleared = 0, ok = 1;

    /* with TLS 1.3 ALPN is decided first: leave a tls-alpn-01 challenge
     * certificate alone */
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len == sizeof(ACME_ALPN_PROTO) - 1
        && memcmp(alpn, ACME_ALPN_PROTO, alpn_len) == 0)
    {
        return 1;
    }
    if (proc_certs == NULL) {
        return 1;
    }
    for (i = 0; ok && i < all->nelts; i++) {
        c = APR_ARRAY_IDX(all, i, acme_auto_cert_t *);
        if (c->slot >= n_proc_certs) {
            continue;
        }
        pc = &proc_certs[c->slot];
        if (pthread_rwlock_rdlock(&pc->lock) != 0) {
            continue;
        }
        if (pc->key != NULL && pc->leaf != NULL) {
            if (!cleared) {
                SSL_certs_clear(ssl);
                cleared = 1;
            }
            if (SSL_use_cert_and_key(ssl, pc->leaf, pc->key, pc->chain, 1)
                != 1)
            {
                ok = 0;
            }
        }
        pthread_rwlock_unlock(&pc->lock);
    }
    return ok;
}

int
acme_auto_ssl_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
    SSL_CTX *ctx)
{
    acme_auto_cert_t   *c = acme_auto_cert_for_server(s);
    apr_array_header_t *all = acme_auto_certs_for_server(s);

    (void) p;
    if (is_proxy || c == NULL || all == NULL || ctx == NULL) {
        return APR_SUCCESS;
    }
    ((acme_auto_srv_conf_t *) ap_get_module_config(s->module_config,
                                                   &acme_auto_module))->ssl_seen = 1;
    SSL_CTX_set_cert_cb(ctx, cert_cb, all);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "mod_acme_auto: cert "
                 "callback set for %s (%s)", s->server_hostname, c->id);
    return APR_SUCCESS;
}

/* Parses the slot's bundle when its generation moved; never called on the
 * handshake path. */
static void
refresh_slot(server_rec *s, acme_auto_cert_t *c)
{
    proc_cert_t     *pc = &proc_certs[c->slot];
    apr_uint32_t     gen;
    char            *pem = NULL, err[ACME_ERRLEN];
    apr_size_t       len = 0;
    EVP_PKEY        *key = NULL, *okey;
    X509            *leaf = NULL, *oleaf;
    STACK_OF(X509)  *chain = NULL, *ochain;

    gen = acme_auto_shm_slot_gen(c->slot);
    if (gen == pc->gen) {
        return;
    }
    if (pc->gen == 0 && gen == c->startup_gen && !c->with_others) {
        pc->gen = gen;      /* mod_ssl already serves this one */
        return;
    }
    if (acme_auto_shm_get_bundle(c->slot, &pem, &len, &gen) != 1) {
        return;
    }
    if (acme_bundle_parse(pem, len, &key, &leaf, &chain, err, sizeof(err))
        != 0)
    {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "mod_acme_auto: %s: "
                     "cannot parse the new bundle: %s", c->id, err);
        free(pem);
        pc->gen = gen;      /* do not retry a broken generation */
        return;
    }
    free(pem);

    pthread_rwlock_wrlock(&pc->lock);
    okey = pc->key;
    oleaf = pc->leaf;
    ochain = pc->chain;
    pc->key = key;
    pc->leaf = leaf;
    pc->chain = chain;
    pc->gen = gen;
    pthread_rwlock_unlock(&pc->lock);

    EVP_PKEY_free(okey);
    X509_free(oleaf);
    sk_X509_pop_free(ochain, X509_free);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "mod_acme_auto: %s: "
                 "generation %u installed in pid %ld", c->id, gen,
                 (long) getpid());
}

static void
refresh_all(server_rec *s)
{
    apr_uint32_t g = acme_auto_shm_generation();
    int          i;

    if (g == proc_gen) {
        return;
    }
    proc_gen = g;
    for (i = 0; i < acme_auto_g.certs->nelts; i++) {
        refresh_slot(s, APR_ARRAY_IDX(acme_auto_g.certs, i,
                                      acme_auto_cert_t *));
    }
}

static void *
refresher_main(void *arg)
{
    server_rec      *s = arg;
    struct timespec  ts;

    pthread_mutex_lock(&stop_mu);
    while (!stop_flag) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&stop_cv, &stop_mu, &ts);
        if (stop_flag) {
            break;
        }
        pthread_mutex_unlock(&stop_mu);
        refresh_all(s);
        pthread_mutex_lock(&stop_mu);
    }
    pthread_mutex_unlock(&stop_mu);
    return NULL;
}

static apr_status_t
refresher_stop(void *data)
{
    (void) data;
    if (refresher_running) {
        pthread_mutex_lock(&stop_mu);
        stop_flag = 1;
        pthread_cond_broadcast(&stop_cv);
        pthread_mutex_unlock(&stop_mu);
        pthread_join(refresher, NULL);
        refresher_running = 0;
    }
    return APR_SUCCESS;
}

void
acme_auto_ssl_child_init(apr_pool_t *pchild, server_rec *s)
{
    int i, n = acme_auto_g.certs ? acme_auto_g.certs->nelts : 0;

    if (n == 0 || !acme_auto_shm_ready()) {
        return;
    }
    proc_certs = calloc(n, sizeof(*proc_certs));
    if (proc_certs == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        pthread_rwlock_init(&proc_certs[i].lock, NULL);
    }
    n_proc_certs = n;
    proc_gen = (apr_uint32_t) -1;
    refresh_all(s);        /* before the child accepts connections */

    stop_flag = 0;
    if (acme_auto_thread_create(&refresher, refresher_main, s) == 0) {
        refresher_running = 1;
        apr_pool_cleanup_register(pchild, NULL, refresher_stop,
                                  apr_pool_cleanup_null);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "mod_acme_auto: cannot"
                     " start the certificate refresh thread");
    }
}
