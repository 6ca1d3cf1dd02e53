/*
 * ngx_http_acme_module: the master's init_module (also on reload, not under
 * "nginx -t"): the store directories for the worker user, and the stored
 * certificates and states put into the shared zone.
 */

#include "ngx_acme.h"
#include "acme_job_store.h"


static void ngx_acme_init_store(ngx_cycle_t *cycle, ngx_acme_cert_t *cert,
    uid_t uid, gid_t gid, acme_store_dir_t *cd, u_char *store_err,
    size_t len);
static int ngx_acme_init_id_in_use(const char *id, void *ctx);
static void ngx_acme_init_cleanup(void *data);
static void ngx_acme_init_deleted(ngx_cycle_t *cycle,
    ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert, acme_store_dir_t *cd);


typedef struct {
    ngx_acme_main_conf_t     *amcf;
    ngx_acme_cert_t          *cert;
} ngx_acme_init_ctx_t;


/*
 * Master (also on reload), not under "nginx -t": creates the store
 * directories for the worker user and puts stored certificates into the
 * zone so that workers serve them from their first handshake.
 *
 * The master runs as root and the store belongs to the worker user, who
 * may have put symlinks or hard links anywhere below state_path: the store
 * is only reached through directory descriptors (acme_store_dir_t), and an
 * entry that is refused leaves the certificate as if nothing were stored.
 */
/*
 * The store roots of the certificate's fallback issuers (fallback=): only
 * their accounts live there (the certificate stays in the primary's), made
 * by the master like the primary's so that the workers can write them.
 */
static void
ngx_acme_init_fallback_roots(ngx_cycle_t *cycle, ngx_acme_cert_t *cert,
    uid_t uid, gid_t gid)
{
    char                err[ACME_ERRLEN], warn[ACME_ERRLEN];
    ngx_uint_t          k;
    acme_store_dir_t    rd;
    ngx_acme_issuer_t  *fb;

    for (k = 1; k < cert->n_issuers; k++) {
        fb = cert->issuers[k];

        if (fb->conf.state_dir == NULL) {
            continue;
        }

        if (acme_store_dir_open_root(&rd, (char *) fb->conf.state_dir, uid,
                                     gid, 1, warn, sizeof(warn),
                                     err, sizeof(err))
            != 0)
        {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "acme: state_path of \"acme_issuer %V\" (a "
                          "fallback of certificate \"%V\") not usable: %s",
                          &fb->name, &cert->id, err);
            continue;
        }

        acme_store_dir_close(&rd);
    }
}


static void
ngx_acme_init_store(ngx_cycle_t *cycle, ngx_acme_cert_t *cert, uid_t uid,
    gid_t gid, acme_store_dir_t *cd, u_char *store_err, size_t len)
{
    int               e;
    char              err[ACME_ERRLEN], warn[ACME_ERRLEN];
    ngx_uint_t        level;
    acme_store_dir_t  rd;

    *cd = (acme_store_dir_t) ACME_STORE_DIR_INIT;
    *store_err = '\0';

    ngx_acme_init_fallback_roots(cycle, cert, uid, gid);

    if (cert->issuer->conf.state_dir == NULL) {
        return;                 /* "state_path off": no store */
    }

    if (acme_store_dir_open_root(&rd, (char *) cert->issuer->conf.state_dir,
                                 uid, gid, 1, warn, sizeof(warn),
                                 err, sizeof(err))
        != 0)
    {
        e = errno;
        goto failed;
    }

    if (warn[0]) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "acme: state_path of \"acme_issuer %V\": %s",
                      &cert->issuer->name, warn);
    }

    if (acme_store_dir_open_cert(cd, &rd, (char *) cert->id.data, 1,
                                 err, sizeof(err))
        != 0)
    {
        e = errno;
        acme_store_dir_close(&rd);
        goto failed;
    }

    acme_store_dir_close(&rd);

    if (acme_store_dir_read_only(cd)) {
        ngx_snprintf(store_err, len - 1, "read-only file system: \"%s\"%Z",
                     cd->path);
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "acme: certificate \"%V\": the store is on a "
                      "read-only file system (%s): stored certificates are "
                      "served, new ones cannot be stored until it is "
                      "writable", &cert->id, cd->path);
    }

    return;

failed:

    ngx_snprintf(store_err, len - 1, "%s%Z", err);

    level = (e == EROFS) ? NGX_LOG_WARN
            : (e == ELOOP || e == EPERM) ? NGX_LOG_ERR : NGX_LOG_ALERT;

    ngx_log_error(level, cycle->log, 0,
                  "acme: certificate \"%V\": store not usable, served as "
                  "if nothing were stored: %s", &cert->id, err);
}


/* The cycle ends: the objects parsed for it (ngx_acme_ssl_free is
 * idempotent: a worker already freed its own at exit_process). */
static void
ngx_acme_init_cleanup(void *data)
{
    ngx_acme_ssl_free(data);
}


/*
 * A reload finds a certificate served from the zone whose bundle is gone
 * from the store (its directory deleted, recreated empty by
 * ngx_acme_init_store): the operator wants a new one.  It is asked for as
 * at the status location (acme_control_renew: the lease holder orders at
 * once, window and backoff ignored); the zone's certificate is served
 * until the new one is installed.  A bundle the store refused (served
 * from memory, written again later) is not a deleted one.
 */
static void
ngx_acme_init_deleted(ngx_cycle_t *cycle, ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, acme_store_dir_t *cd)
{
    int         rc;
    char        err[ACME_ERRLEN], *pem;
    size_t      len;
    ngx_uint_t  served;

    ngx_acme_shm_lock(amcf);
    served = (cert->slot->bundle != NULL && !cert->slot->unsaved_at
              && cert->slot->next_bundle == NULL);
    ngx_acme_shm_unlock(amcf);

    if (!served) {
        return;
    }

    pem = NULL;
    len = 0;

    rc = acme_store_load_bundle_at(cd, &pem, &len, err, sizeof(err));
    acme_bundle_free(pem, len);

    if (rc != 0) {
        return;
    }

    ngx_acme_shm_lock(amcf);
    acme_control_renew(&cert->slot->control);
    ngx_acme_shm_unlock(amcf);

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "acme: certificate \"%V\": no longer in the store (%s "
                  "deleted?): ordering a new one now; the current one is "
                  "served until then", &cert->id, cd->path);
}


/* Another configured certificate of cert's store has this id. */
static int
ngx_acme_init_id_in_use(const char *id, void *ctx)
{
    ngx_acme_init_ctx_t  *ic = ctx;

    ngx_uint_t        i;
    ngx_acme_cert_t **certs;

    certs = ic->amcf->certs.elts;

    for (i = 0; i < ic->amcf->certs.nelts; i++) {
        if (ngx_strcmp(certs[i]->id.data, id) == 0
            && certs[i]->issuer->conf.state_dir != NULL
            && ngx_strcmp(certs[i]->issuer->conf.state_dir,
                          ic->cert->issuer->conf.state_dir) == 0)
        {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_acme_init_module(ngx_cycle_t *cycle)
{
    char                   err[ACME_ERRLEN], *pem, *next, *from;
    const char            *why;
    size_t                 len, next_len;
    long long              at;
    uid_t                  uid;
    gid_t                  gid;
    u_char                 store_err[256];
    char                   next_pin[ACME_SPKI_PIN_LEN];
    ngx_int_t              rc;
    ngx_uint_t             i, created, parsed;
    ngx_pool_cleanup_t    *cln;
    ngx_core_conf_t       *ccf;
    ngx_acme_cert_t      **certs, *cert;
    ngx_acme_slot_t       *slot;
    ngx_acme_issuer_t    **issuers;
    acme_store_dir_t       cd;
    acme_cert_info_t       info, next_info;
    acme_cert_state_t      st;
    ngx_acme_init_ctx_t    ic;
    ngx_acme_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_acme_module);

    if (amcf == NULL || amcf->shm_zone == NULL || ngx_test_config) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    uid = (uid_t) -1;
    gid = (gid_t) -1;

    if (geteuid() == 0 && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        uid = ccf->user;
        gid = ccf->group;
    }

    issuers = amcf->issuers.elts;

    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (issuers[i]->conf.no_store) {
            ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                          "acme: \"acme_issuer %V\" keeps nothing on disk "
                          "(\"state_path off\"): its account key and "
                          "certificates are in memory only, a restart "
                          "orders new ones", &issuers[i]->name);
        }
    }

    /* what the master parses below goes with this cycle */
    cln = ngx_pool_cleanup_add(cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_acme_init_cleanup;
    cln->data = amcf;

    certs = amcf->certs.elts;

    for (i = 0; i < amcf->certs.nelts; i++) {
        cert = certs[i];

        /* opens (creates) <root>, <root>/certs and <root>/certs/<id> */

        ngx_acme_init_store(cycle, cert, uid, gid, &cd, store_err,
                            sizeof(store_err));

        ngx_acme_shm_lock(amcf);
        slot = ngx_acme_shm_slot(amcf, &cert->id, &created);

        if (slot && (store_err[0] || !slot->unsaved_at)) {
            /* a reload keeps why a served certificate is not stored */
            ngx_memcpy(slot->status.store_error, store_err,
                       ngx_min(sizeof(slot->status.store_error), sizeof(store_err)));
            slot->status.store_error[sizeof(slot->status.store_error) - 1] = '\0';
        }

        ngx_acme_shm_unlock(amcf);

        if (slot == NULL) {
            acme_store_dir_close(&cd);
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "acme: no room for certificate \"%V\" in the "
                          "shared zone \"%V\"", &cert->id, &amcf->zone_name);
            return NGX_ERROR;
        }

        cert->slot = slot;

        /* key_rollover: the next key's pin, also after a reload that
         * turned it on or off */
        next_pin[0] = '\0';

        if (cert->issuer->key_rollover == 1 && cd.fd >= 0) {
            acme_job_store_next_pin(&cd, cert->key_type, next_pin,
                                    sizeof(next_pin));
        }

        ngx_acme_shm_lock(amcf);
        acme_job_status_set_next_pin(&slot->status, next_pin);
        ngx_acme_shm_unlock(amcf);

        if (!created && cd.fd >= 0) {
            /* reload: the zone already has it, unless the store's entry
             * was deleted: then a new one is ordered at once */
            ngx_acme_init_deleted(cycle, amcf, cert, &cd);
        }

        if (!created || cd.fd < 0) {
            /* reload: the zone already has it; or no usable store */
            acme_store_dir_close(&cd);
            continue;
        }

        rc = acme_store_load_state_at(&cd, &st, err, sizeof(err));
        if (rc == -1) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "acme: certificate \"%V\": state ignored: %s",
                          &cert->id, err);
        }

        pem = NULL;
        len = 0;
        next = NULL;
        next_len = 0;

        /* a stored certificate not valid yet waits (previous.pem served) */
        rc = acme_job_store_load_served(&cd, (long long) ngx_time(),
                                        cert->issuer->conf.clock_skew, &pem,
                                        &len, &next, &next_len, &at,
                                        &next_info, err, sizeof(err));
        if (rc == -1) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                          "acme: certificate \"%V\": stored bundle "
                          "ignored: %s", &cert->id, err);
        }

        acme_store_dir_close(&cd);

        if (rc == 0) {
            /* a changed key type or first name (a new id): the
             * certificate it replaces is served */
            ic.amcf = amcf;
            ic.cert = cert;

            if (acme_job_store_load_replaced(cert->issuer->conf.state_dir,
                                             uid, gid,
                                             (char *) cert->id.data,
                                             cert->key_type,
                                             cert->names.elts,
                                             cert->names.nelts,
                                             ngx_acme_init_id_in_use, &ic,
                                             (long long) ngx_time(),
                                             &pem, &len, &from, &why)
                == 1)
            {
                ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                              "acme: certificate \"%V\": %s: the "
                              "certificate of \"%s\" is served until this "
                              "one (key type %s) is issued", &cert->id, why,
                              from, acme_key_type_name(cert->key_type));
                free(from);
                rc = 1;
            }
        }

        ngx_acme_shm_lock(amcf);

        slot->st = st;
        acme_job_status_end(&slot->status, &st, slot->status.next_renewal);

        if (rc == -1) {
            /* e.g. a refused symlink: the status says why nothing is served */
            ngx_cpystrn((u_char *) slot->status.store_error, (u_char *) err,
                        sizeof(slot->status.store_error));
        }

        ngx_acme_shm_unlock(amcf);

        /*
         * Parsed here, once, with the details taken from the same parse:
         * the workers inherit the objects (no parse in each worker before
         * it serves); freed with the cycle.  No worker exists yet: the
         * slot, just created, gets its next generation below.
         */
        if (rc == 1 && pem) {
            parsed = slot->generation + 1;

            if (ngx_acme_ssl_parse(amcf, cert, (u_char *) pem, len, parsed,
                                   &info, cycle->log)
                != NGX_OK)
            {
                parsed = 0;
            }

            ngx_acme_shm_lock(amcf);

            if (parsed
                && ngx_acme_shm_set_bundle_locked(amcf, slot, pem, len, 1)
                   == NGX_OK)
            {
                ngx_acme_shm_set_info_locked(slot, &info);

                /* it waits for the lease holder, as when issued */
                if (next
                    && ngx_acme_shm_hold_locked(amcf, slot, next, next_len,
                                                &next_info, at)
                       == NGX_OK)
                {
                    ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                                  "acme: certificate \"%V\": %s",
                                  &cert->id,
                                  acme_job_pending_text(next_info.serial,
                                      next_info.not_before,
                                      (long long) ngx_time(), at, err,
                                      sizeof(err)));
                }

            } else {
                /* not in the zone: nothing parsed, nothing to promote */
                cert->generation = slot->generation;
                cert->next_gen = 0;
            }

            ngx_acme_shm_unlock(amcf);

            if (parsed) {
                acme_cert_info_free(&info);
            }
        }

        acme_bundle_free(pem, len);

        if (next) {
            acme_bundle_free(next, next_len);
            acme_cert_info_free(&next_info);
        }
    }

    ngx_acme_ssl_master_install(amcf, cycle->log);

    return NGX_OK;
}
