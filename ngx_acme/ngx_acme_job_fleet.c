/*
 * An ACME job's steps with the shared store (acme_store, issue 15;
 * common/io/acme_fleet_node.h), on the event loop; their blocking calls
 * run in the thread pool (ngx_acme_job_fleet_thread):
 *
 *   claim:     before an order, the store says what to do
 *              (acme_fleet_node_claim): INSTALL its newer certificate, ORDER
 *              under its lock, WAIT for the node that holds the lock (looked
 *              at again at next_check, not a failure), IDLE, or ORDER_ALONE
 *              (store unreachable, certificate about to expire)
 *   install:   a certificate of the store written to the local store and
 *              served, exactly as an issued one (ngx_acme_job_finished)
 *   challenge: an http-01 / tls-alpn-01 answer published to the store after
 *              the zone, and the wait until the other nodes mirror it; its
 *              removal
 *   publish:   the record written after the local store (FINISH task,
 *              fenced by the lock), or later for one ordered alone
 *   release:   the lock of an order that failed or was aborted
 */

#include "ngx_acme.h"
#include "ngx_acme_job_local.h"


#define NGX_ACME_FLEET_POLL     5       /* s: a claim's look-again period */


static int ngx_acme_job_fleet_stop(void *data);
static ngx_int_t ngx_acme_job_fleet_split(ngx_acme_job_t *job,
    const char *bundle, size_t len);
static ngx_acme_issuer_t *ngx_acme_job_fleet_issuer(ngx_acme_cert_t *cert,
    const char *name);
static void ngx_acme_job_fleet_mark(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, acme_fleet_action_t action, const char *holder);


/* Asks the store what to do for cert; cert->job is set meanwhile. */
ngx_int_t
ngx_acme_job_claim(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    ngx_uint_t due, const char *reason, ngx_log_t *log)
{
    ngx_acme_job_t     *job;
    acme_fleet_node_t  *node;

    /* no round with the store yet: the next tick asks */
    node = ngx_acme_fleet_node(amcf);

    if (node == NULL) {
        return NGX_DECLINED;
    }

    job = ngx_acme_job_create(amcf, cert, log);
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->claiming = 1;
    job->claim_due = due;
    job->reason = reason;
    job->fnode = node;

    job->facts.now = (long long) ngx_time();
    job->facts.due = due ? 1 : 0;
    job->facts.local_unpublished = cert->fleet_unpublished ? 1 : 0;
    job->facts.store_reachable = ngx_acme_fleet_reachable(amcf) ? 1 : 0;
    job->facts.poll = NGX_ACME_FLEET_POLL;

    ngx_acme_shm_lock(amcf);

    if (cert->slot->bundle) {
        job->facts.local_not_before = cert->slot->status.not_before;
        job->facts.local_not_after = cert->slot->status.not_after;
    }

    ngx_acme_shm_unlock(amcf);

    cert->job = job;

    if (ngx_acme_job_post(job, NGX_ACME_TASK_CLAIM) != NGX_OK) {
        cert->job = NULL;
        ngx_acme_job_free(job);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* The store's answer, on the event loop. */
void
ngx_acme_job_claimed(ngx_acme_job_t *job)
{
    char                   buf[21];
    const char            *reason, *holder;
    ngx_log_t             *log;
    ngx_uint_t             have_cert;
    ngx_acme_cert_t       *cert;
    acme_fleet_node_t     *node;
    acme_fleet_claim_t    *c;
    acme_fleet_action_t    action;
    ngx_acme_main_conf_t  *amcf;

    cert = job->cert;
    have_cert = job->facts.local_not_after != 0;
    amcf = job->amcf;
    log = job->log;
    c = &job->claim;
    action = c->action;
    reason = job->reason;
    node = job->fnode;

    if (c->err[0] && action != ACME_FLEET_ORDER_ALONE) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "acme: certificate \"%V\": acme_store: %s", &cert->id,
                      c->err);
    }

    if (c->record_revision) {
        cert->fleet_rev = c->record_revision;
    }

    cert->fleet_next = (time_t) c->next_check;
    holder = (action == ACME_FLEET_WAIT && c->holder[0]) ? c->holder : NULL;

    ngx_acme_job_fleet_mark(amcf, cert, action, holder);

    switch (action) {

    case ACME_FLEET_INSTALL:

        cert->job = NULL;
        cert->fleet_next = 0;

        if (ngx_acme_job_install(amcf, cert, c->bundle, c->bundle_len,
                                 c->holder[0] ? c->holder : NULL, NULL, log)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "acme: certificate \"%V\": cannot install the "
                          "shared store's certificate", &cert->id);
        }

        ngx_acme_job_free(job);
        return;

    case ACME_FLEET_ORDER:
    case ACME_FLEET_ORDER_ALONE:

        cert->job = NULL;
        cert->fleet_next = 0;
        ngx_acme_job_free(job);

        if (action == ACME_FLEET_ORDER_ALONE) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "acme: certificate \"%V\": the shared store is "
                          "unreachable and %s: ordering without the "
                          "store's lock; published when the store is back",
                          &cert->id, have_cert
                          ? "the certificate is in the last tenth of its "
                            "lifetime"
                          : "no certificate is served yet");
        }

        (void) ngx_acme_job_order(amcf, cert, reason, log, action, node,
                                  cert->fleet_rev);
        return;

    case ACME_FLEET_WAIT:

        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "acme: certificate \"%V\": node \"%s\" of the fleet "
                      "orders it; looking again at %s", &cert->id,
                      c->holder[0] ? c->holder : "?",
                      acme_time_rfc3339(c->next_check, buf, sizeof(buf)));
        break;

    case ACME_FLEET_PUBLISH:

        /* after the next round (ngx_acme_fleet.c) */
        cert->fleet_unpublished = 1;
        break;

    default:
        break;
    }

    cert->job = NULL;
    ngx_acme_job_free(job);
}


/*
 * A certificate of the store (key PEM + chain PEM) installed as if issued
 * here: the local store written in the thread pool (FINISH), then the zone
 * and every worker (ngx_acme_job_finished).  by: the node that ordered
 * it; issuer: its issuer block name (NULL: the primary).
 */
ngx_int_t
ngx_acme_job_install(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    const char *bundle, size_t len, const char *by, const char *issuer,
    ngx_log_t *log)
{
    ngx_acme_job_t  *job;

    if (cert->job || bundle == NULL) {
        return NGX_DECLINED;
    }

    job = ngx_acme_job_create(amcf, cert, log);
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->fleet_install = 1;
    job->fleet_by = acme_strdup(by ? by : "another node");

    /* one ordered alone is not published over the store's newer one */
    cert->fleet_unpublished = 0;
    job->issuer = ngx_acme_job_fleet_issuer(cert, issuer);
    job->directory = (char *) job->issuer->conf.directory;

    if (job->fleet_by == NULL
        || ngx_acme_job_fleet_split(job, bundle, len) != NGX_OK)
    {
        ngx_acme_job_free(job);
        return NGX_ERROR;
    }

    ngx_acme_shm_lock(amcf);
    job->st = cert->slot->st;
    ngx_acme_shm_unlock(amcf);

    /* the renewal state as after an order of this node */
    acme_job_succeeded(&job->st, (long long) ngx_time(), job->directory,
                       (char *) job->issuer->name.data);

    cert->job = job;

    if (ngx_acme_job_post(job, NGX_ACME_TASK_FINISH) != NGX_OK) {
        cert->job = NULL;
        ngx_acme_job_free(job);
        return NGX_ERROR;
    }

    ngx_acme_job_fleet_mark(amcf, cert, ACME_FLEET_INSTALL, NULL);

    return NGX_OK;
}


/* A certificate ordered alone (store unreachable) into the store now. */
ngx_int_t
ngx_acme_job_publish(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    ngx_log_t *log)
{
    u_char          *bundle;
    size_t           len;
    ngx_acme_job_t  *job;

    if (cert->job || amcf->fleet == NULL) {
        return NGX_DECLINED;
    }

    job = ngx_acme_job_create(amcf, cert, log);
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->fleet_publish = 1;
    job->fleet = ACME_FLEET_ORDER_ALONE;
    job->fnode = ngx_acme_fleet_node(amcf);
    job->fleet_rev = cert->fleet_rev;
    job->issuer = cert->issuer;
    job->directory = (char *) cert->issuer->conf.directory;

    bundle = NULL;
    len = 0;

    ngx_acme_shm_lock(amcf);

    if (cert->slot->bundle) {
        bundle = malloc(cert->slot->bundle_len);

        if (bundle) {
            len = cert->slot->bundle_len;
            ngx_memcpy(bundle, cert->slot->bundle, len);
        }

        job->issuer = ngx_acme_job_fleet_issuer(cert,
                                              cert->slot->status.issued_by);
        job->directory = (char *) job->issuer->conf.directory;
    }

    ngx_acme_shm_unlock(amcf);

    if (job->fnode == NULL || bundle == NULL
        || ngx_acme_job_fleet_split(job, (char *) bundle, len) != NGX_OK)
    {
        acme_bundle_free((char *) bundle, len);
        ngx_acme_job_free(job);
        return NGX_DECLINED;
    }

    acme_bundle_free((char *) bundle, len);

    cert->job = job;

    if (ngx_acme_job_post(job, NGX_ACME_TASK_PUBLISH) != NGX_OK) {
        cert->job = NULL;
        ngx_acme_job_free(job);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_acme_job_published(ngx_acme_job_t *job)
{
    ngx_acme_job_fleet_result(job);

    if (job->fleet_rc != ACME_KV_UNAVAILABLE) {
        ngx_acme_job_fleet_mark(job->amcf, job->cert, ACME_FLEET_PUBLISH,
                                NULL);
    }

    job->cert->job = NULL;
    ngx_acme_job_free(job);
}


/*
 * The publication's outcome (FINISH of an order, or PUBLISH): logged; the
 * certificate stays unpublished while the store is unreachable.
 */
void
ngx_acme_job_fleet_result(ngx_acme_job_t *job)
{
    ngx_acme_cert_t  *cert;

    cert = job->cert;

    if (job->fleet_install
        || (job->fleet != ACME_FLEET_ORDER
            && job->fleet != ACME_FLEET_ORDER_ALONE))
    {
        return;
    }

    /* the lock went with the publication */
    job->fleet = ACME_FLEET_IDLE;

    switch (job->fleet_rc) {

    case ACME_KV_OK:
        cert->fleet_unpublished = 0;
        ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                      "acme: certificate \"%V\": published to the shared "
                      "store", &cert->id);
        return;

    case ACME_KV_FENCED:
    case ACME_KV_CONFLICT:
        cert->fleet_unpublished = 0;
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "acme: certificate \"%V\": not published to the "
                      "shared store (%s%s%s): it holds another node's; that "
                      "one is installed if newer", &cert->id,
                      acme_kv_status_name((acme_kv_status_t) job->fleet_rc),
                      job->fleet_err[0] ? ": " : "", job->fleet_err);
        return;

    default:
        cert->fleet_unpublished = 1;
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "acme: certificate \"%V\": not published to the "
                      "shared store (%s); published when it is reachable",
                      &cert->id,
                      job->fleet_err[0] ? job->fleet_err : "unreachable");
        return;
    }
}


/*
 * An http-01 / tls-alpn-01 PUBLISH (after the zone) or UNPUBLISH of an
 * order under the store's lock, in a thread; the engine waits.
 */
ngx_int_t
ngx_acme_job_chal_post(ngx_acme_job_t *job, acme_action_t *act,
    ngx_acme_task_kind_e kind)
{
    free(job->dns_ident);
    free(job->dns_ka);
    free(job->chal_type);
    free(job->chal_token);

    job->dns_ident = acme_strdup(act->identifier ? act->identifier : "");
    job->dns_ka = acme_strdup(act->key_authz ? act->key_authz : "");
    job->chal_type = acme_strdup(act->challenge_type ? act->challenge_type
                                                     : "http-01");
    job->chal_token = acme_strdup(act->token ? act->token : "");

    if (job->dns_ident == NULL || job->dns_ka == NULL
        || job->chal_type == NULL || job->chal_token == NULL)
    {
        return NGX_ERROR;
    }

    if (kind == NGX_ACME_TASK_CHAL_PUT) {
        ngx_acme_job_set_step(job, "store publish");
    }

    return ngx_acme_job_post(job, kind);
}


void
ngx_acme_job_chal_done(ngx_acme_job_t *job)
{
    if (job->task_kind == NGX_ACME_TASK_CHAL_PUT) {

        if (job->task_rc != 0) {
            /* the engine fails the order and unpublishes */
            acme_engine_publish_failed(job->engine, job->task_err);

        } else if (job->fleet_missing) {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "acme: certificate \"%V\": %uz node(s) of the "
                          "fleet had not mirrored the %s challenge of \"%s\" "
                          "after %d ms; going on (a validation that lands "
                          "there fails and is retried)", &job->cert->id,
                          job->fleet_missing, job->chal_type, job->dns_ident,
                          ACME_FLEET_BARRIER_MS);
        }
    }

    ngx_acme_job_run(job);
}


/*
 * The order's lock goes back: a failed or aborted order, or a claim that
 * took the lock and was aborted (lost ACME lease, exit) before its order
 * started.  Not while a task runs (its completion calls this again).
 */
void
ngx_acme_job_fleet_abort(ngx_acme_job_t *job)
{
    ngx_acme_job_fleet_end(job, 0);
}


/* An order under the lock ended without a result: the lock goes now
 * (retry_at 0) or stays this node's until its next attempt. */
void
ngx_acme_job_fleet_end(ngx_acme_job_t *job, time_t retry_at)
{
    if (job->claiming && job->claim.action == ACME_FLEET_ORDER
        && !job->busy)
    {
        job->claim.action = ACME_FLEET_IDLE;
        job->fleet = ACME_FLEET_ORDER;
    }

    if (job->fleet != ACME_FLEET_ORDER || job->fnode == NULL
        || job->fleet_install || job->busy)
    {
        return;
    }

    job->fleet = ACME_FLEET_IDLE;

    if (job->amcf->exiting) {
        /* the node's leases go with it (ngx_acme_fleet_exit_process) */
        return;
    }

    ngx_acme_fleet_release(job->amcf, job->fnode, job->id, retry_at);
}


/*
 * Thread: the store's blocking calls (acme_fleet_node.h); the result in
 * the job.  FINISH: the record after the local store (fleet_rc).
 */
int
ngx_acme_job_fleet_thread(ngx_acme_job_t *job)
{
    int                   rc;
    char                 *key;
    size_t                missing;
    acme_fleet_record_t   rec;

    switch (job->task_kind) {

    case NGX_ACME_TASK_CLAIM:

        (void) acme_fleet_node_claim(job->fnode, job->id, &job->facts,
                                     &job->claim);
        return 0;

    case NGX_ACME_TASK_CHAL_PUT:

        missing = 0;
        rc = acme_fleet_node_challenge_put(job->fnode, job->id,
                                           job->chal_type, job->dns_ident,
                                           job->chal_token, job->dns_ka,
                                           ngx_acme_job_fleet_stop, job,
                                           &missing, job->task_err,
                                           sizeof(job->task_err));
        job->fleet_missing = missing;
        return rc;

    case NGX_ACME_TASK_CHAL_DEL:

        acme_fleet_node_challenge_delete(job->fnode, job->chal_token);
        return 0;

    case NGX_ACME_TASK_FINISH:
    case NGX_ACME_TASK_PUBLISH:
        break;

    default:
        return 0;
    }

    if (job->fleet_install || job->fnode == NULL
        || (job->fleet != ACME_FLEET_ORDER
            && job->fleet != ACME_FLEET_ORDER_ALONE))
    {
        return 0;
    }

    /* the record: the chain in clear, the key sealed (acme_fleet.h) */
    key = acme_strndup(job->key_pem, job->key_pem_len);

    if (key == NULL) {
        job->fleet_rc = ACME_KV_ERROR;
        ngx_cpystrn((u_char *) job->fleet_err, (u_char *) "out of memory",
                    sizeof(job->fleet_err));
        return 0;
    }

    ngx_memzero(&rec, sizeof(acme_fleet_record_t));
    rec.chain_pem = job->chain;
    rec.key_pem = key;
    rec.node = acme_fleet_node_name(job->fnode);
    rec.issuer = (const char *) job->issuer->name.data;
    rec.directory = job->directory;
    rec.issued_at = (long long) time(NULL);

    job->fleet_err[0] = '\0';
    job->fleet_rc = acme_fleet_node_publish(job->fnode, job->id, &rec,
                                            job->fleet == ACME_FLEET_ORDER
                                            ? 0 : job->fleet_rev,
                                            job->fleet_err,
                                            sizeof(job->fleet_err));

    OPENSSL_cleanse(key, job->key_pem_len);
    free(key);

    return 0;
}


/* Thread: the challenge barrier ends early for an aborted job or exit. */
static int
ngx_acme_job_fleet_stop(void *data)
{
    ngx_acme_job_t  *job = data;

    return job->aborted || ngx_exiting || ngx_quit || ngx_terminate;
}


/* key_pem and chain of the job from a bundle (key PEM + chain PEM). */
static ngx_int_t
ngx_acme_job_fleet_split(ngx_acme_job_t *job, const char *bundle, size_t len)
{
    size_t  at;

    at = acme_bundle_split(bundle, len);

    if (at == 0) {
        return NGX_ERROR;
    }

    job->key_pem = acme_strndup(bundle, at);
    job->key_pem_len = at;
    job->chain = acme_strndup(bundle + at, len - at);
    job->chain_len = len - at;

    if (job->key_pem == NULL || job->chain == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* The certificate's issuer block of that name, else its primary. */
static ngx_acme_issuer_t *
ngx_acme_job_fleet_issuer(ngx_acme_cert_t *cert, const char *name)
{
    size_t  k;

    if (name == NULL || name[0] == '\0') {
        return cert->issuer;
    }

    k = acme_failover_find(cert->issuer_names, cert->n_issuers, name);

    return cert->issuers[k];
}


/* The status' "fleet" of the certificate. */
static void
ngx_acme_job_fleet_mark(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    acme_fleet_action_t action, const char *holder)
{
    ngx_acme_shm_lock(amcf);

    if (ngx_acme_shm_fence_ok_locked(amcf, amcf->lease_gen)) {
        acme_job_status_fleet(&cert->slot->status,
                              acme_fleet_action_name(action), holder);
    }

    ngx_acme_shm_unlock(amcf);
}
