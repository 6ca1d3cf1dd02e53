/*
 * Parent-side startup (post_config, as root, before mod_ssl's post_config
 * and mod_watchdog's): shared memory, the state directories handed to the
 * child user, the issuers' CA bundles copied into them, and for each
 * managed certificate the stored bundle (key + chain in one file) or,
 * before the first issuance, a self-signed placeholder, copied into a
 * root-only runtime directory and handed to mod_ssl through
 * ssl_add_cert_files, so mod_ssl's own checks pass and the vhost serves at
 * once (ssl_add_fallback_cert_files would make mod_ssl answer 503 for
 * good).  The stored bundle is also put into shared memory.  A vhost's
 * own SSLCertificateFile is the bridge instead of the placeholder
 * (acme_auto_add_cert_files).
 *
 * What the children do with it (cert callback, parsed certificates) is in
 * acme_auto_ssl.c.
 */
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "unixd.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_cert.h"
#include "acme_job_store.h"
#include "acme_key.h"
#include "acme_sched.h"
#include "acme_store.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

#define PLACEHOLDER_FILE    "fallback.pem"
#define RUNTIME_SUBDIR      "acme_auto"     /* below DefaultRuntimeDir */
#define CA_COPY_FILE        "trusted-ca.pem"
#define PLACEHOLDER_DAYS    30

/*
 * A certificate served from shared memory only (the store refused its
 * bundle: disk full, read-only, EIO) survives a graceful restart: before
 * the old generation's pconf (and with it the segment) goes, the parent
 * copies each slot that has a certificate; the next prepare_cert serves
 * the copy of one with a store_error when it is newer than what is
 * stored, and the new driving child writes it again (job_sync_from_disk).
 * Without this the restart served the old stored certificate and ordered
 * again.  The copy of one without a store_error is served only when the
 * store's entry is gone (its directory deleted: the operator wants a new
 * certificate), with a renew request (acme_control.h) so the driver
 * orders at once while it is served.
 */
typedef struct carried_s {
    struct carried_s        *next;
    char                    *id;
    char                    *pem;
    size_t                   len;
    acme_auto_slot_status_t  st;
    acme_control_kind_t      control;   /* a renew / revoke asked for and
                                           not answered: asked again */
    int                      reason;
} carried_t;

/* The list lives in the process pool's userdata: a restart unloads and
 * loads the module again (its statics start over), the process pool stays. */
#define CARRIED_KEY  "mod_acme_auto:carried"

static apr_pool_t  *proc_pool;

static carried_t *
carried_get(void)
{
    void *v = NULL;

    if (proc_pool != NULL) {
        (void) apr_pool_userdata_get(&v, CARRIED_KEY, proc_pool);
    }
    return v;
}

static void
carried_set(carried_t *head)
{
    if (proc_pool != NULL) {
        (void) apr_pool_userdata_setn(head, CARRIED_KEY, NULL, proc_pool);
    }
}

static void
carried_free(carried_t *k)
{
    acme_bundle_free(k->pem, k->len);
    free(k->id);
    free(k);
}

/* pconf cleanup, registered after the segment was made: runs before the
 * segment's own cleanup */
static apr_status_t
carry_unsaved(void *data)
{
    acme_auto_slot_status_t  st;
    acme_auto_cert_t        *c;
    apr_array_header_t      *certs = data;
    apr_uint32_t             gen;
    apr_size_t               len;
    carried_t               *k;
    char                    *pem;
    int                      i;

    for (i = 0; certs != NULL && i < certs->nelts; i++) {
        c = APR_ARRAY_IDX(certs, i, acme_auto_cert_t *);
        if (acme_auto_shm_get_status(c->slot, &st) != 0 || !st.have_cert
            || acme_auto_shm_get_bundle(c->slot, &pem, &len, &gen) != 1)
        {
            continue;
        }
        k = calloc(1, sizeof(*k));
        if (k == NULL || (k->id = strdup(c->id)) == NULL) {
            free(k);
            acme_bundle_free(pem, len);
            continue;
        }
        k->pem = pem;
        k->len = len;
        k->st = st;
        /* asked and not taken, or taken by an order this restart cuts
         * short: the old child's put_back comes after this copy */
        k->control = acme_auto_shm_control_carry(c->slot, &k->reason);
        k->next = carried_get();
        carried_set(k);
    }
    return APR_SUCCESS;
}

/* The carried copy becomes what is served: its bundle (the caller's now)
 * and its status, no order running.  Returns 1 (a bundle to serve). */
static int
carried_serve(carried_t *k, char **pem, size_t *len,
    acme_auto_slot_status_t *st)
{
    *pem = k->pem;
    *len = k->len;
    k->pem = NULL;
    k->len = 0;
    *st = k->st;
    st->renewing = 0;
    st->step[0] = '\0';
    return 1;
}

/* The copy of id carried over the restart, if any (the caller's). */
static carried_t *
carried_take(const char *id)
{
    carried_t *head, **kp, *k;

    head = carried_get();
    for (kp = &head; *kp != NULL; kp = &(*kp)->next) {
        if (strcmp((*kp)->id, id) == 0) {
            k = *kp;
            *kp = k->next;
            carried_set(head);
            return k;
        }
    }
    return NULL;
}

int
acme_auto_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
    server_rec *s)
{
    int        n;
    carried_t *k;

    (void) plog;
    proc_pool = s->process->pool;
    n = acme_auto_g.certs ? acme_auto_g.certs->nelts : 0;
    if (acme_auto_shm_create(s, pconf, n) != APR_SUCCESS) {
        return !OK;
    }
    if (n == 0) {
        return OK;
    }
    if (acme_auto_prepare_certs(s, pconf, ptemp) != OK) {
        return !OK;
    }
    /* what was not taken (a certificate no longer configured) goes */
    while ((k = carried_get()) != NULL) {
        carried_set(k->next);
        carried_free(k);
    }
    apr_pool_cleanup_register(pconf, acme_auto_g.certs, carry_unsaved,
                              apr_pool_cleanup_null);
    return acme_auto_jobs_register(s, pconf);
}

/* After mod_ssl: a managed vhost whose SSL_CTX we never saw has no
 * "SSLEngine on"; its certificate would be obtained but never served. */
int
acme_auto_post_config_after_ssl(apr_pool_t *pconf, apr_pool_t *plog,
    apr_pool_t *ptemp, server_rec *s)
{
    server_rec           *vs;
    acme_auto_srv_conf_t *sc;

    (void) pconf;
    (void) plog;
    (void) ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;      /* said once, in the real configuration pass */
    }
    for (vs = s; vs != NULL; vs = vs->next) {
        sc = ap_get_module_config(vs->module_config, &acme_auto_module);
        if (sc->managed != NULL && !sc->ssl_seen) {
            acme_auto_warn_no_ssl(vs);
        }
    }
    return OK;
}

/* -- parent: state dirs, stored bundles, placeholders ---------------------- */

/*
 * The placeholder's key kind: the certificate's (so the issued one replaces
 * it in the child's SSL_CTX), except with tls-alpn-01: mod_ssl installs the
 * P-256 challenge certificate (acme_alpn.c) beside what the connection has,
 * after the cert callback in TLS 1.2, so an RSA placeholder would stay
 * beside it and a CA preferring RSA would be shown the placeholder; a P-256
 * placeholder is replaced by it.
 */
static acme_key_type_t
placeholder_kind(const acme_auto_cert_t *c)
{
    size_t i;

    for (i = 0; i < c->n_challenges; i++) {
        if (strcmp(c->challenges[i], "tls-alpn-01") == 0) {
            return ACME_KEY_EC_P256;
        }
    }
    return c->key_type;
}

/* One key per placeholder kind (acme_key_placeholder_type) for every
 * certificate, made when first needed and kept for the parent's life:
 * an RSA key for each RSA certificate would cost its generation at every
 * start before the first issuance. */
static EVP_PKEY *
placeholder_key(acme_key_type_t type)
{
    static EVP_PKEY *keys[2];
    int              rsa;

    type = acme_key_placeholder_type(type);
    rsa = type == ACME_KEY_RSA_2048;
    if (keys[rsa] == NULL) {
        keys[rsa] = acme_key_generate(type);
    }
    return keys[rsa];
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
    if (acme_store_dir_open_root(rd, iss->conf.state_dir, uid, gid, 1, warn,
                                 sizeof(warn), err, sizeof(err)) != 0)
    {
        int rofs = (errno == EROFS);

        apr_cpystrn(store_err, err, len);
        if (log_warn) {
            ap_log_error(APLOG_MARK, rofs ? APLOG_WARNING : APLOG_ERR, 0, s,
                         "mod_acme_auto: <AcmeIssuer %s>: AcmeStateDir %s "
                         "is not usable, certificates are served as if "
                         "nothing were stored: %s", iss->conf.name, iss->conf.state_dir,
                         err);
        }
        return;
    }
    if (log_warn && warn[0]) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: "
                     "<AcmeIssuer %s>: AcmeStateDir: %s", iss->conf.name, warn);
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
                     iss->conf.name, iss->trusted_ca, rc == 0 ? "missing" : err);
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
                     "store, the children use %s: %s", iss->conf.name,
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
        st->revoked = cs.revoked != 0;
        apr_cpystrn(st->issued_by, cs.issuer, sizeof(st->issued_by));
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

/* Another configured certificate of c's store has this id. */
static int
id_in_use(const char *id, void *ctx)
{
    acme_auto_cert_t *c = ctx, *o;
    int               i;

    for (i = 0; i < acme_auto_g.certs->nelts; i++) {
        o = APR_ARRAY_IDX(acme_auto_g.certs, i, acme_auto_cert_t *);
        if (strcmp(o->id, id) == 0
            && strcmp(o->issuer->conf.state_dir, c->issuer->conf.state_dir)
               == 0)
        {
            return 1;
        }
    }
    return 0;
}

static int
prepare_cert(server_rec *s, acme_auto_cert_t *c, apr_pool_t *pconf,
    acme_store_dir_t *rt, uid_t uid, gid_t gid)
{
    acme_auto_slot_status_t st;
    char                    err[ACME_ERRLEN], *pem = NULL, *self;
    char                   *next = NULL, next_pin[ACME_SPKI_PIN_LEN];
    size_t                  len = 0, klen = 0, slen = 0, next_len = 0;
    long long               at = 0;
    EVP_PKEY               *key;
    char                   *kpem, *blob;
    int                     rc;
    acme_store_dir_t        rd, cd = ACME_STORE_DIR_INIT;
    carried_t              *k;
    int                     store_ok, deleted = 0, reason;
    acme_control_kind_t     ask;

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
    store_ok = cd.fd >= 0;
    next_pin[0] = '\0';
    if (cd.fd >= 0 && c->issuer->key_rollover) {
        /* AcmeKeyRollover pinned: the next key's pin (next.key) */
        acme_job_store_next_pin(&cd, c->key_type, next_pin, sizeof(next_pin));
    }
    if (cd.fd >= 0) {
        load_state_into(&cd, &st);
        /* a stored certificate not valid yet waits (previous.pem served);
         * the driving child holds it until then (job_sync_from_disk) */
        rc = acme_job_store_load_served(&cd, (long long) time(NULL),
                                        c->issuer->conf.clock_skew, &pem,
                                        &len, &next, &next_len, &at, NULL,
                                        err, sizeof(err));
        acme_store_dir_close(&cd);
        acme_bundle_free(next, next_len);
        if (rc == 0) {
            char       *from = NULL;
            const char *why = NULL;

            /* a changed key type or first name (a new id): the
             * certificate it replaces is served */
            if (acme_job_store_load_replaced(c->issuer->conf.state_dir, uid,
                                             gid, c->id, c->key_type,
                                             c->names, (size_t) c->n_names,
                                             id_in_use, c,
                                             (long long) time(NULL), &pem,
                                             &len, &from, &why) == 1)
            {
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "mod_acme_auto: "
                             "%s: %s: the certificate of %s is served until "
                             "this one (key type %s) is issued", c->id, why,
                             from, acme_key_type_name(c->key_type));
                free(from);
                rc = 1;
            }
        }
    }
    k = carried_take(c->id);
    ask = k != NULL ? k->control : ACME_CONTROL_NONE;
    reason = k != NULL ? k->reason : -1;
    if (k != NULL && k->st.store_error[0] == '\0') {
        if (rc == 0 && store_ok) {
            /* served before the restart, no longer in the store */
            rc = carried_serve(k, &pem, &len, &st);
            deleted = 1;
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "mod_acme_auto: "
                         "%s: no longer in the store (deleted?): ordering a "
                         "new one now; the current one (serial %s) is served "
                         "until then", c->id, st.serial);
        }
        carried_free(k);
    }
    else if (k != NULL) {
        acme_auto_slot_status_t  stored;

        memset(&stored, 0, sizeof(stored));
        if (rc != 1 || acme_auto_status_from_pem(pem, len, &stored) != 0
            || k->st.not_after > stored.not_after)
        {
            /* the newer one, only in memory: served, written again by
             * the driving child */
            if (rc == 1) {
                acme_bundle_free(pem, len);
            }
            rc = carried_serve(k, &pem, &len, &st);
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: "
                         "%s: the certificate served from memory (serial %s)"
                         " is still not stored, kept across the restart: %s",
                         c->id, st.serial, st.store_error);
        }
        carried_free(k);
    }
    acme_job_status_set_next_pin(&st, next_pin);
    if (rc == 1) {
        if (len <= ACME_AUTO_BUNDLE_MAX
            && acme_bundle_parse(pem, len, NULL, NULL, NULL, err,
                                 sizeof(err)) == 0
            && acme_auto_status_from_pem(pem, len, &st) == 0)
        {
            /* until the driving child computes it with its own jitter */
            long long at = acme_sched_renew_at(st.not_before, st.not_after,
                                               c->issuer->conf.renew_percent / 100.0, 0);
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
            if (deleted && ask == ACME_CONTROL_NONE) {
                ask = ACME_CONTROL_RENEW;
            }
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

    if (ask != ACME_CONTROL_NONE) {
        /* asked for before the restart (or the store's entry deleted) */
        (void) acme_auto_shm_control_ask(c->slot, ask, reason);
    }

    if (c->placeholder == NULL) {
        /* self-signed placeholder of the certificate's key kind until the
         * first issuance (so the issued one replaces it in the child's
         * SSL_CTX, acme_auto_ssl.c) */
        key = placeholder_key(placeholder_kind(c));
        self = key ? acme_selfsigned_pem(key, c->names, c->n_names,
                                         PLACEHOLDER_DAYS, &slen) : NULL;
        kpem = key ? acme_key_to_pem(key, &klen) : NULL;
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
        int used = 0, k;
        /* a certificate's issuer, or one of its fallbacks (fallback=):
         * its store root (the account) and CA copy are needed */
        for (j = 0; j < acme_auto_g.certs->nelts; j++) {
            acme_auto_cert_t *c = APR_ARRAY_IDX(acme_auto_g.certs, j,
                                                acme_auto_cert_t *);
            for (k = 0; k < c->n_issuers; k++) {
                if (c->issuers[k] == iss) {
                    used = 1;
                }
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

/*
 * The vhost's own SSLCertificateFile (e.g. certbot's) next to
 * AcmeCertificate is the bridge: while none of its managed certificates
 * is stored, mod_ssl loads only those files (no placeholder), so the
 * certificate the vhost had is served until the first issuance, which the
 * cert callback (acme_auto_ssl.c) installs over it.  Once one is stored,
 * the files are dropped and never served again.
 */
static void
note_bridge(server_rec *s, apr_pool_t *p, apr_array_header_t *all,
    const char *file)
{
    acme_job_bridge_t *b;
    acme_auto_cert_t  *c;
    char               err[ACME_ERRLEN];
    int                i;

    b = apr_pcalloc(p, sizeof(*b));
    if (acme_job_bridge_load(b, file, err, sizeof(err)) != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: "
                     "SSLCertificateFile of %s: %s", s->server_hostname, err);
    }
    for (i = 0; i < all->nelts; i++) {
        c = APR_ARRAY_IDX(all, i, acme_auto_cert_t *);
        if (c->bridge == NULL) {
            c->bridge = b;
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "mod_acme_auto: %s: "
                     "nothing issued yet, the vhost's SSLCertificateFile %s "
                     "(serial %s) is served until it is", c->id, file,
                     b->serial[0] ? b->serial : "unknown");
    }
}

int
acme_auto_add_cert_files(server_rec *s, apr_pool_t *p,
    apr_array_header_t *cert_files, apr_array_header_t *key_files)
{
    apr_array_header_t *all = acme_auto_certs_for_server(s);
    acme_auto_cert_t   *c;
    int                 i, added = 0, stored = 0;

    acme_auto_inventory_note(s, p, cert_files);
    if (all == NULL || all->nelts == 0) {
        return DECLINED;
    }
    for (i = 0; i < all->nelts; i++) {
        c = APR_ARRAY_IDX(all, i, acme_auto_cert_t *);
        stored |= (c->placeholder != NULL && c->startup_gen != 0);
    }
    if (cert_files->nelts > 0) {
        if (!stored) {
            note_bridge(s, p, all, APR_ARRAY_IDX(cert_files, 0,
                                                 const char *));
            return DECLINED;
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "mod_acme_auto: %s: the "
                     "managed certificate is served, not the vhost's "
                     "SSLCertificateFile %s", s->server_hostname,
                     APR_ARRAY_IDX(cert_files, 0, const char *));
        apr_array_clear(cert_files);
        apr_array_clear(key_files);
    }
    for (i = 0; i < all->nelts; i++) {
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
