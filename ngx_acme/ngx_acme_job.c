/*
 * One ACME order for one certificate, run by the lease holder.
 *
 *   begin (thread pool):   state.json records the attempt (see
 *                          acme_sched_attempt_begin), so a worker dying
 *                          during the order counts as a failure
 *   prepare (thread pool): account key (load, or create it exclusively:
 *                          concurrent jobs end up with one key), the stored
 *                          account URL of that key, a fresh certificate key
 *   account (event loop):  with no stored URL, one job per issuer looks the
 *                          account up or creates it while the others wait
 *                          (acme_account_gate) and then use its URL
 *   engine (event loop):   acme_engine with ngx_acme_http for requests,
 *                          timers for SLEEP, the zone for PUBLISH/UNPUBLISH
 *   dns-01 (thread pool):  a PUBLISH sets the TXT record (RFC 2136 or the
 *                          hook, common/io/acme_dns_publish.h) and waits until
 *                          it is visible; only then does the engine go on.
 *                          An UNPUBLISH removes it in a task too.  The
 *                          engine is the list of what is published: an
 *                          aborted or failed job aborts it and runs its
 *                          UNPUBLISH actions in a thread (no list here)
 *   finish (thread pool):  bundle.pem / account.json / state.json writes
 *   result (event loop):   the zone's bundle and status, generations, logs
 *
 * A certificate the store refuses (read-only file system, disk full) is
 * installed all the same and marked unsaved in its slot; the lease holder
 * writes it again later from the zone (ngx_acme_job_resave, a job with
 * only a thread task) at the times of acme_sched_unsaved_retry.
 *
 * Everything slow or blocking (key generation, fsync) stays off the event
 * loop.  A thread task cannot be cancelled: an aborted job whose task is
 * still running is freed by the task's completion handler.
 *
 * Fencing (acme_fence.h): a job carries the lease generation it started
 * under.  Its tokens and the slot's marks carry it too, and every change of
 * the zone checks it under the zone's lock: a job of a worker that lost the
 * lease (paused past its expiry, say) stops without touching the entries
 * of the new holder, and removes only its own.
 */

/*
 * This file: the job's lifecycle, on the event loop (create, start, the
 * thread tasks posted and their completion, keys prepared -> engine, the
 * sleep timer, fail, abort, free).  The engine's actions are in
 * ngx_acme_job_engine.c, an issued bundle and its resave in
 * ngx_acme_job_issued.c, dns-01 in ngx_acme_job_dns.c, every task's
 * blocking work in ngx_acme_job_thread.c (ngx_acme_job_local.h).
 * ngx_acme_job_conf is pure (configuration only): the key task calls it in
 * the thread too.
 */

#include "ngx_acme.h"
#include "ngx_acme_job_local.h"


/* a job waiting for another job's account re-checks this often, this long */
#define NGX_ACME_ACCOUNT_WAIT_MS    250
#define NGX_ACME_ACCOUNT_WAIT_MAX                                           \
    (ACME_ACCOUNT_WAIT_SEC * 1000 / NGX_ACME_ACCOUNT_WAIT_MS)


static void ngx_acme_job_task_done(ngx_event_t *ev);
static void ngx_acme_job_prepared(ngx_acme_job_t *job);
static void ngx_acme_job_wake(ngx_event_t *ev);
static ngx_int_t ngx_acme_job_revoke_der(ngx_acme_job_t *job);


ngx_acme_job_t *
ngx_acme_job_create(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    ngx_log_t *log)
{
    ngx_pool_t      *pool;
    ngx_acme_job_t  *job;

    pool = ngx_create_pool(4096, log);
    if (pool == NULL) {
        return NULL;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_acme_job_t));
    if (job == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    job->amcf = amcf;
    job->cert = cert;
    job->issuer = cert->issuer;
    job->pool = pool;
    job->log = log;
    job->fence = amcf->lease_gen;
    job->root = (char *) cert->issuer->conf.state_dir;
    job->id = (char *) cert->id.data;

    return job;
}


/*
 * Persists st (an unfinished attempt counted by the lease holder) in the
 * thread pool; cert->job is set meanwhile, so no order starts before.
 */
ngx_int_t
ngx_acme_job_save_state(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    acme_cert_state_t *st, ngx_log_t *log)
{
    ngx_acme_job_t  *job;

    job = ngx_acme_job_create(amcf, cert, log);
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->st = *st;
    cert->job = job;

    if (ngx_acme_job_post(job, NGX_ACME_TASK_FAIL) != NGX_OK) {
        cert->job = NULL;
        ngx_acme_job_free(job);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * An order is due.  With acme_store the shared store is asked first
 * (ngx_acme_job_claim): the order runs only when this node holds the
 * certificate's lock (or the store is unreachable and the certificate
 * about to expire).
 */
ngx_int_t
ngx_acme_job_start(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    const char *reason, ngx_log_t *log)
{
    if (amcf->fleet) {
        return ngx_acme_job_claim(amcf, cert, 1, reason, log);
    }

    return ngx_acme_job_order(amcf, cert, reason, log, ACME_FLEET_IDLE, NULL,
                              0);
}


/* The order itself; fleet, node, rev: what the store's claim decided. */
ngx_int_t
ngx_acme_job_order(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    const char *reason, ngx_log_t *log, acme_fleet_action_t fleet,
    acme_fleet_node_t *node, int64_t rev)
{
    int                  code;
    ngx_uint_t           ok;
    ngx_acme_job_t      *job;
    acme_control_kind_t  kind;

    job = ngx_acme_job_create(amcf, cert, log);
    if (job == NULL) {
        if (fleet == ACME_FLEET_ORDER) {
            ngx_acme_fleet_release(amcf, node, (char *) cert->id.data, 0);
        }

        return NGX_ERROR;
    }

    job->fleet = fleet;
    job->fnode = node;
    job->fleet_rev = rev;

    kind = ACME_CONTROL_NONE;
    code = -1;

    job->sleep.handler = ngx_acme_job_wake;
    job->sleep.data = job;
    job->sleep.log = log;
    job->sleep.cancelable = 1;

    /* the attempt is recorded before anything else happens */

    ngx_acme_shm_lock(amcf);

    ok = ngx_acme_shm_fence_ok_locked(amcf, job->fence);

    if (ok) {
        cert->slot->fence = job->fence;
        acme_job_status_begin(&cert->slot->status,
                              acme_job_challenge(cert->challenges,
                                                 cert->n_challenges,
                                                 cert->slot->st.failures),
                              NULL);
        acme_sched_attempt_begin(&cert->slot->st, (long long) ngx_time(),
                                 (long) ngx_pid);
        job->st = cert->slot->st;
        /* the CA of this attempt (fallback=: by the failures so far) */
        job->issuer = ngx_acme_cert_issuer(cert, job->st.failures);
        /* this order answers every renew / revoke asked so far */
        kind = acme_control_take(&cert->slot->control, &code);
    }

    ngx_acme_shm_unlock(amcf);

    if (!ok) {
        ngx_acme_job_fleet_abort(job);
        ngx_acme_job_free(job);
        return NGX_DECLINED;
    }

    job->control = kind;
    job->revoke_reason = code;

    if (kind == ACME_CONTROL_REVOKE) {
        /* the leaf this worker serves (parsed: the tick waits for that) */
        if (ngx_acme_job_revoke_der(job) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "acme: certificate \"%V\": no certificate to "
                          "revoke is loaded; ordering a new one only",
                          &cert->id);
        }
    }

    cert->job = job;
    job->directory = (char *) job->issuer->conf.directory;

    if (job->issuer != cert->issuer) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "acme: certificate \"%V\": starting an order with "
                      "the fallback acme_issuer \"%V\" after %ud "
                      "consecutive failures (%s)", &cert->id,
                      &job->issuer->name, job->st.failures, reason);

    } else {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "acme: certificate \"%V\": starting an order with "
                      "acme_issuer \"%V\" (%s)", &cert->id,
                      &cert->issuer->name, reason);
    }

    ngx_acme_job_set_step(job, "keys");

    if (ngx_acme_job_post(job, NGX_ACME_TASK_BEGIN) != NGX_OK) {
        ngx_acme_job_fail(job, "cannot post the state task", 0);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A renewalInfo fetch (ARI, RFC 9773) for the served certificate: the
 * engine's ari_only run through the same non-blocking client as an order;
 * cert->job is set meanwhile, so no order starts before it ends
 * (ngx_acme_job_ari_done).
 */
ngx_int_t
ngx_acme_job_ari_start(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    ngx_log_t *log)
{
    char                 err[ACME_ERRLEN];
    ngx_acme_job_t      *job;
    acme_order_config_t  oc;

    job = ngx_acme_job_create(amcf, cert, log);
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->ari = 1;
    job->directory = (char *) cert->issuer->conf.directory;

    job->sleep.handler = ngx_acme_job_wake;
    job->sleep.data = job;
    job->sleep.log = log;
    job->sleep.cancelable = 1;

    ngx_memzero(&oc, sizeof(acme_order_config_t));
    oc.directory_url = job->directory;
    oc.ari_only = 1;
    oc.ari_id = cert->ari_id;

    err[0] = '\0';

    job->engine = acme_engine_new(&oc, err, sizeof(err));
    if (job->engine == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "acme: certificate \"%V\": renewal information "
                      "(ARI): %s", &cert->id, err);
        ngx_acme_job_free(job);
        return NGX_ERROR;
    }

    cert->job = job;

    ngx_acme_job_run(job);

    return NGX_OK;
}


/*
 * The renewalInfo fetch ended (done: the engine's DONE, else ERROR): the
 * answer, the error or "no renewalInfo" into the slot's state (the common
 * policy, acme_ari.h) and the status; state.json is written in the thread
 * pool (the task frees the job).  An error is logged and asked again
 * later; the lifetime rule decides meanwhile.
 */
void
ngx_acme_job_ari_done(ngx_acme_job_t *job, ngx_uint_t done)
{
    int                level;
    char               msg[2 * ACME_ERRLEN];
    ngx_acme_cert_t   *cert;
    ngx_acme_slot_t   *slot;
    acme_cert_state_t  st;

    cert = job->cert;
    slot = cert->slot;

    ngx_acme_shm_lock(job->amcf);
    st = slot->st;
    ngx_acme_shm_unlock(job->amcf);

    level = acme_ari_fetched(&st, cert->ari_id, job->engine, done ? 1 : 0,
                             (long long) ngx_time(),
                             cert->issuer->conf.ari_poll, cert->rnd, msg,
                             sizeof(msg));

    /* syslog's levels, nginx's are one more */
    ngx_log_error((ngx_uint_t) level + 1, job->log, 0,
                  "acme: certificate \"%V\": %s", &cert->id, msg);

    ngx_acme_shm_lock(job->amcf);

    if (!ngx_acme_shm_fence_ok_locked(job->amcf, job->fence)) {
        ngx_acme_shm_unlock(job->amcf);
        ngx_acme_job_abort(job->amcf, cert);
        return;
    }

    slot->st = st;
    acme_job_status_ari(&slot->status, &st, cert->ari_id);

    ngx_acme_shm_unlock(job->amcf);

    job->st = st;

    if (ngx_acme_job_post(job, NGX_ACME_TASK_FAIL) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, job->log, 0,
                      "acme: certificate \"%V\": cannot post the state "
                      "task", &cert->id);
        cert->job = NULL;
        ngx_acme_job_free(job);
    }
}


/* The DER of the leaf this worker serves for the certificate, to revoke. */
static ngx_int_t
ngx_acme_job_revoke_der(ngx_acme_job_t *job)
{
    int             len;
    unsigned char  *der;

    if (job->cert->leaf == NULL) {
        return NGX_DECLINED;
    }

    der = NULL;
    len = i2d_X509(job->cert->leaf, &der);

    if (len <= 0 || der == NULL) {
        return NGX_ERROR;
    }

    job->revoke_der = malloc((size_t) len);

    if (job->revoke_der == NULL) {
        OPENSSL_free(der);
        return NGX_ERROR;
    }

    ngx_memcpy(job->revoke_der, der, (size_t) len);
    job->revoke_der_len = (size_t) len;
    OPENSSL_free(der);

    return NGX_OK;
}


/*
 * Whether the job lost the lease (its fence is stale): then it is aborted,
 * touching only its own entries, and 1 is returned.
 */
ngx_uint_t
ngx_acme_job_fenced(ngx_acme_job_t *job)
{
    ngx_uint_t  ok;

    ngx_acme_shm_lock(job->amcf);
    ok = ngx_acme_shm_fence_ok_locked(job->amcf, job->fence);
    ngx_acme_shm_unlock(job->amcf);

    if (ok) {
        return 0;
    }

    ngx_log_error(NGX_LOG_WARN, job->log, 0,
                  "acme: certificate \"%V\": this worker lost the ACME lease "
                  "during the order (lease generation %uL): stopping it, the "
                  "new holder's challenges stay", &job->cert->id,
                  (uint64_t) job->fence);

    ngx_acme_job_abort(job->amcf, job->cert);

    return 1;
}


/* Stops a job at once (worker exit, lost lease). */
void
ngx_acme_job_abort(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert)
{
    char               err[ACME_ERRLEN];
    ngx_log_t         *log;
    ngx_uint_t         ended;
    ngx_acme_job_t    *job;
    acme_cert_state_t  st;

    job = cert->job;
    if (job == NULL) {
        return;
    }

    cert->job = NULL;
    job->aborted = 1;

    /* acme_store: the lock of the order goes (the next holder orders) */
    ngx_acme_job_fleet_abort(job);

    if (job->task_kind != NGX_ACME_TASK_RESAVE && !job->ari
        && !job->claiming && !job->fleet_install && !job->fleet_publish)
    {
        ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                      "acme: certificate \"%V\": order aborted", &cert->id);
    }

    if (job->http) {
        ngx_acme_http_free(job->http);
        job->http = NULL;
    }

    ngx_acme_http_keep_close(&job->keep);

    if (job->sleep.timer_set) {
        ngx_del_timer(&job->sleep);
    }

    /*
     * Only its own tokens; the marks only while it still holds the lease
     * (an exiting worker): then the attempt ends without being counted as
     * a failure.  A job that lost the lease leaves the rest to the new
     * holder.
     */

    ended = 0;
    log = job->log;

    ngx_acme_shm_lock(amcf);

    ngx_acme_shm_tokens_drop_locked(amcf, cert->slot, job->fence);

    /* renew / revoke asked for: the next order answers them */
    acme_control_put_back(&cert->slot->control, job->control,
                          job->revoke_reason, job->revoked);

    if (ngx_acme_shm_fence_ok_locked(amcf, job->fence)
        && cert->slot->fence == job->fence)
    {
        cert->slot->status.renewing = 0;
        cert->slot->status.step[0] = '\0';

        if (cert->slot->st.attempt_started
            && cert->slot->st.attempt_pid == (long) ngx_pid)
        {
            acme_sched_attempt_end(&cert->slot->st);
            st = cert->slot->st;
            ended = 1;
        }
    }

    ngx_acme_shm_unlock(amcf);

    if (job->busy) {
        /* the completion handler frees it (and removes its records) */

    } else if (ngx_acme_job_dns_abort(job) && !amcf->exiting
               && ngx_acme_job_post(job, NGX_ACME_TASK_DNS_CLEANUP)
                  == NGX_OK)
    {
        /* a graceful exit still runs it: the pool finishes queued tasks */

    } else {
        ngx_acme_job_free(job);
    }

    if (!ended) {
        return;
    }

    /*
     * state.json loses the attempt record too, so a stop is not counted as
     * a crash at the next start: in the thread pool while the worker runs;
     * in exit_process (amcf->exiting: no pool, no connections left to
     * serve) directly.
     */

    if (!amcf->exiting) {
        if (ngx_acme_job_save_state(amcf, cert, &st, log) != NGX_OK) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "acme: certificate \"%V\": cannot post the state "
                          "task", &cert->id);
        }

        return;
    }

    if (cert->issuer->conf.state_dir != NULL
        && acme_store_save_state((char *) cert->issuer->conf.state_dir,
                                 (char *) cert->id.data, &st, err,
                                 sizeof(err))
           != 0)
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "acme: certificate \"%V\": cannot store the state: %s",
                      &cert->id, err);
    }
}


ngx_int_t
ngx_acme_job_post(ngx_acme_job_t *job, ngx_acme_task_kind_e kind)
{
    ngx_thread_task_t  *task;

    task = ngx_thread_task_alloc(job->pool, sizeof(ngx_acme_job_t *));
    if (task == NULL) {
        return NGX_ERROR;
    }

    *(ngx_acme_job_t **) task->ctx = job;

    task->handler = ngx_acme_job_thread;
    task->event.handler = ngx_acme_job_task_done;
    task->event.data = job;

    job->task_kind = kind;
    job->task_rc = 0;
    job->task_err[0] = '\0';
    job->store_rc = 0;

    if (ngx_thread_task_post(job->amcf->thread_pool, task) != NGX_OK) {
        return NGX_ERROR;
    }

    job->busy = 1;

    return NGX_OK;
}


static void
ngx_acme_job_task_done(ngx_event_t *ev)
{
    ngx_acme_job_t  *job = ev->data;

    job->busy = 0;

    ngx_acme_job_dns_log(job);

    if (job->aborted) {
        /* acme_store: a lock its task took goes back */
        ngx_acme_job_fleet_abort(job);

        /* records set before the abort go (bounded: DNS and hook timeouts) */
        if (job->task_kind != NGX_ACME_TASK_DNS_CLEANUP
            && ngx_acme_job_dns_abort(job)
            && ngx_acme_job_post(job, NGX_ACME_TASK_DNS_CLEANUP) == NGX_OK)
        {
            return;
        }

        ngx_acme_job_free(job);
        return;
    }

    if (job->task_kind != NGX_ACME_TASK_FAIL && ngx_acme_job_fenced(job)) {
        return;
    }

    if (job->store_rc != 0 && job->cert->slot) {
        /* the store's condition for the status: cleared by a good write;
         * an ARI record that could not be saved does not hide an earlier
         * condition (e.g. a certificate served but not stored) */
        ngx_acme_shm_lock(job->amcf);

        if (!job->ari || job->cert->slot->status.store_error[0] == '\0') {
            ngx_cpystrn((u_char *) job->cert->slot->status.store_error,
                        (u_char *) job->task_err,
                        sizeof(job->cert->slot->status.store_error));
        }

        ngx_acme_shm_unlock(job->amcf);
    }

    switch (job->task_kind) {

    case NGX_ACME_TASK_BEGIN:

        if (job->task_rc != 0) {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "acme: certificate \"%V\": cannot record the "
                          "attempt: %s", &job->cert->id, job->task_err);
        }

        if (ngx_acme_job_post(job, NGX_ACME_TASK_PREPARE) != NGX_OK) {
            ngx_acme_job_fail(job, "cannot post the key generation task", 0);
        }

        return;

    case NGX_ACME_TASK_DNS_CLEANUP:

        /* only posted for aborted jobs, handled above */
        ngx_acme_job_free(job);
        return;

    case NGX_ACME_TASK_DNS_ADD:

        if (job->task_rc != 0) {
            /* the engine fails the order and unpublishes (this one too) */
            acme_engine_publish_failed(job->engine, job->task_err);
        }

        ngx_acme_job_run(job);
        return;

    case NGX_ACME_TASK_DNS_REMOVE:

        if (job->task_rc != 0) {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "acme: certificate \"%V\": cannot remove the "
                          "dns-01 TXT record of \"%s\": %s", &job->cert->id,
                          job->dns_ident, job->task_err);
        }

        ngx_acme_job_run(job);
        return;

    case NGX_ACME_TASK_PREPARE:

        if (job->task_rc != 0) {
            ngx_acme_job_fail(job, job->task_err, 0);
            return;
        }

        if (job->next.warn[0]) {
            /* key_rollover: next.key was not usable */
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "acme: certificate \"%V\": %s", &job->cert->id,
                          job->next.warn);
            job->next.warn[0] = '\0';
        }

        ngx_acme_job_prepared(job);
        return;

    case NGX_ACME_TASK_ACCOUNT:

        if (job->task_rc != 0) {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "acme: certificate \"%V\": cannot store the "
                          "account URL: %s; kept in memory, the next order "
                          "writes it again", &job->cert->id, job->task_err);
        }

        acme_account_gate_stored(&job->issuer->account_gate,
                                 job->account_url, job->task_rc == 0);

        ngx_acme_job_run(job);
        return;

    case NGX_ACME_TASK_FINISH:

        if (job->task_rc == -1 && job->fleet_install) {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "acme: certificate \"%V\": the shared store's "
                          "certificate is not usable: %s", &job->cert->id,
                          job->task_err);
            job->cert->job = NULL;
            ngx_acme_job_free(job);
            return;
        }

        if (job->task_rc == -1) {
            ngx_acme_job_fail(job, job->task_err, 0);
            return;
        }

        ngx_acme_job_finished(job);
        return;

    case NGX_ACME_TASK_CLAIM:

        ngx_acme_job_claimed(job);
        return;

    case NGX_ACME_TASK_CHAL_PUT:
    case NGX_ACME_TASK_CHAL_DEL:

        ngx_acme_job_chal_done(job);
        return;

    case NGX_ACME_TASK_PUBLISH:

        ngx_acme_job_published(job);
        return;

    case NGX_ACME_TASK_RESAVE:

        ngx_acme_job_resaved(job);
        return;

    case NGX_ACME_TASK_REVOKED:

        if (job->task_rc != 0) {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "acme: certificate \"%V\": cannot record the "
                          "revocation: %s", &job->cert->id, job->task_err);
        }

        ngx_acme_job_run(job);
        return;

    case NGX_ACME_TASK_FAIL:

        if (job->task_rc != 0) {
            ngx_log_error(NGX_LOG_ERR, job->log, 0,
                          "acme: certificate \"%V\": cannot store the "
                          "state: %s", &job->cert->id, job->task_err);
        }

        job->cert->job = NULL;
        ngx_acme_job_free(job);
        return;
    }
}


static void
ngx_acme_job_prepared(ngx_acme_job_t *job)
{
    int                   rc, unsaved;
    char                  err[ACME_ERRLEN], *url;
    const char           *type;
    ngx_acme_cert_t      *cert;
    ngx_acme_issuer_t    *issuer;
    acme_job_conf_t       conf;
    acme_order_config_t   oc;

    cert = job->cert;
    issuer = job->issuer;
    unsaved = 0;

    if (job->task_err[0] != '\0') {
        /* from the key task: a stored account.json that could not be used */
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "acme: certificate \"%V\": %s", &cert->id,
                      job->task_err);
        job->task_err[0] = '\0';
    }

    /*
     * No stored URL for this key: one job of the issuer looks the account
     * up or creates it, the others wait for its URL; when that job fails
     * before it has one, the next waiting job takes over.
     */

    if (job->account_url == NULL) {

        rc = acme_account_gate_enter(&issuer->account_gate, job->account_key,
                                     job, &url);

        if (rc == ACME_GATE_USE) {
            job->account_url = url;
            /* the store refused it: this order writes it again */
            unsaved = acme_account_gate_unsaved(&issuer->account_gate);

        } else if (rc == ACME_GATE_WAIT
                   && job->account_waits++ < NGX_ACME_ACCOUNT_WAIT_MAX)
        {
            if (job->account_waits == 1) {
                ngx_log_error(NGX_LOG_INFO, job->log, 0,
                              "acme: certificate \"%V\": waiting for the "
                              "account of acme_issuer \"%V\" another order "
                              "is establishing", &cert->id, &issuer->name);
                ngx_acme_job_set_step(job, "account-wait");
            }

            ngx_add_timer(&job->sleep, NGX_ACME_ACCOUNT_WAIT_MS);
            return;
        }

        /* LEAD, or waited long enough: on its own (-1: out of memory, the
         * same) */
    }

    /* a challenge list: after N consecutive failures, type[N % n] */

    ngx_acme_shm_lock(job->amcf);
    type = acme_job_challenge(cert->challenges, cert->n_challenges,
                              cert->slot->st.failures);

    if (ngx_acme_shm_fence_ok_locked(job->amcf, job->fence)) {
        ngx_cpystrn((u_char *) cert->slot->status.challenge, (u_char *) type,
                    sizeof(cert->slot->status.challenge));
    }

    ngx_acme_shm_unlock(job->amcf);

    ngx_acme_job_conf(job, &conf);
    acme_job_order_config(&oc, &conf, type,
                          job->account_key, job->account_url, job->cert_key);
    oc.account_unsaved = unsaved;
    oc.csr_b64 = job->csr_b64;
    /* RFC 9773: the served certificate is the one replaced (not one of
     * another CA, nor a revoked one: the CA knows nothing of it) */
    if (cert->leaf != NULL && job->control != ACME_CONTROL_REVOKE
        && !job->st.revoked
        && !acme_job_issuer_changed(&job->st, issuer->conf.directory))
    {
        oc.ari_id = cert->ari_id;
    }
    /* "revoke": the served certificate first (acme_control.h) */
    oc.revoke_der = job->revoke_der;
    oc.revoke_der_len = job->revoke_der_len;
    oc.revoke_reason = job->revoke_reason;

    err[0] = '\0';

    job->engine = acme_engine_new(&oc, err, sizeof(err));
    if (job->engine == NULL) {
        ngx_acme_job_fail(job, err, 0);
        return;
    }

    ngx_acme_job_run(job);
}


/* The issuer's and the certificate's settings, as common/ takes them. */
void
ngx_acme_job_conf(ngx_acme_job_t *job, acme_job_conf_t *c)
{
    ngx_acme_cert_t    *cert;
    ngx_acme_issuer_t  *issuer;

    cert = job->cert;
    issuer = job->issuer;

    ngx_memzero(c, sizeof(acme_job_conf_t));

    c->directory_url = (char *) issuer->conf.directory;
    c->state_dir = (char *) issuer->conf.state_dir;
    c->account_key_type = (acme_key_type_t) issuer->conf.account_key;

    if (issuer->account_key_pem.len) {
        c->account_key_pem = (const char *) issuer->account_key_pem.data;
        c->account_key_pem_len = issuer->account_key_pem.len;
    }
    c->contacts = (const char *const *) issuer->contacts.elts;
    c->n_contacts = issuer->contacts.nelts;
    c->terms_agreed = issuer->tos ? 1 : 0;

    c->eab = &issuer->conf.eab;
    c->names = (const char *const *) cert->names.elts;
    c->n_names = cert->names.nelts;
    c->cert_key_type = cert->key_type;
    c->csr_cn = (issuer->common_name_in_csr == 1);
    c->preferred_chain = issuer->conf.preferred_chain;
    c->cert_id = (const char *) cert->id.data;
    /* stored under the primary's state_path (fallback=) */
    c->cert_root = (const char *) cert->issuer->conf.state_dir;
    c->key_reuse = (cert->issuer->key_reuse == 1);
    c->key_rollover = (cert->issuer->key_rollover == 1);
    /* replacing a certificate revoked on request: never its key */
    c->fresh_key = (job->control == ACME_CONTROL_REVOKE);
    c->profile = issuer->conf.profile;
    c->profile_require = issuer->conf.profile_require;
}


static void
ngx_acme_job_wake(ngx_event_t *ev)
{
    ngx_acme_job_t  *job = ev->data;

    if (job->engine == NULL) {
        /* waiting for another job's account */
        if (ngx_exiting || ngx_quit || ngx_terminate) {
            ngx_acme_job_abort(job->amcf, job->cert);
            return;
        }

        if (ngx_acme_job_fenced(job)) {
            return;
        }

        ngx_acme_job_prepared(job);
        return;
    }

    ngx_acme_job_run(job);
}


/* A failed attempt: back off, keep the old certificate, persist. */
void
ngx_acme_job_fail(ngx_acme_job_t *job, const char *msg, long long retry_after)
{
    time_t             now;
    char               buf[ACME_ERRLEN + 64];
    const char        *type;
    ngx_uint_t         emit;
    ngx_acme_cert_t   *cert;
    ngx_acme_slot_t   *slot;
    acme_job_status_t  rec;

    cert = job->cert;
    slot = cert->slot;
    now = ngx_time();

    if (msg == NULL || *msg == '\0') {
        msg = "unknown error";
    }

    if (job->http) {
        ngx_acme_http_free(job->http);
        job->http = NULL;
    }

    if (job->sleep.timer_set) {
        ngx_del_timer(&job->sleep);
    }

    ngx_acme_shm_lock(job->amcf);

    if (!ngx_acme_shm_fence_ok_locked(job->amcf, job->fence)) {
        /* the new lease holder owns the slot now: record nothing */
        ngx_acme_shm_unlock(job->amcf);

        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "acme: certificate \"%V\": order of a lost ACME "
                      "lease (generation %uL) failed: %s; not recorded",
                      &cert->id, (uint64_t) job->fence, msg);

        ngx_acme_job_abort(job->amcf, cert);
        return;
    }

    job->st = slot->st;

    /* the type this attempt used leads the error: the next may differ */

    type = acme_job_challenge(cert->challenges, cert->n_challenges,
                              job->st.failures);

    acme_job_failed(&job->st, type, msg, (long long) now, retry_after,
                    cert->issuer->conf.retry_delay, cert->rnd);

    if (acme_job_issuer_pause(job->issuer->paused_until, retry_after, now)
        != job->issuer->paused_until)
    {
        job->issuer->paused_until = (time_t) retry_after;

        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "acme: acme_issuer \"%V\": the CA asks to wait: no "
                      "new order for %T s", &job->issuer->name,
                      (time_t) retry_after - now);
    }

    slot->st = job->st;
    acme_job_status_ordered(&slot->status, 0, 0);
    acme_job_status_end(&slot->status, &job->st, job->st.next_attempt);

    /* "failed", at most one an hour (acme_event.h) */
    emit = acme_event_failed(&slot->events, (long long) now);
    rec = slot->status;

    /* the engine unpublishes on ERROR, not on a host-side failure */
    ngx_acme_shm_tokens_drop_locked(job->amcf, slot, job->fence);

    ngx_acme_shm_unlock(job->amcf);

    /*
     * acme_store: the lock stays this node's until its next attempt, so
     * the fleet backs off as one server would (the other nodes wait)
     */
    ngx_acme_job_fleet_end(job, job->st.next_attempt);

    ngx_log_error(NGX_LOG_ERR, job->log, 0,
                  "acme: certificate \"%V\": order failed: %s", &cert->id,
                  acme_job_failure_text(&job->st, buf, sizeof(buf)));

    if (emit) {
        ngx_acme_event_emit_slot(job->amcf, cert, "failed", &rec, job->log);
    }

    if (ngx_acme_job_post(job, NGX_ACME_TASK_FAIL) != NGX_OK) {
        cert->job = NULL;
        ngx_acme_job_free(job);
    }
}


void
ngx_acme_job_set_step(ngx_acme_job_t *job, const char *step)
{
    ngx_acme_slot_t  *slot;

    if (step == NULL) {
        return;
    }

    slot = job->cert->slot;

    ngx_acme_shm_lock(job->amcf);

    if (ngx_acme_shm_fence_ok_locked(job->amcf, job->fence)
        && slot->fence == job->fence)
    {
        ngx_cpystrn((u_char *) slot->status.step, (u_char *) step, sizeof(slot->status.step));
    }

    ngx_acme_shm_unlock(job->amcf);
}


void
ngx_acme_job_free(ngx_acme_job_t *job)
{
    /* a leader that ends without an account lets the next job try */
    acme_account_gate_leave(&job->cert->issuer->account_gate, job);

    free(job->dns_ident);
    free(job->dns_ka);
    free(job->dns_log);
    free(job->dns_rm_err);
    free(job->chal_type);
    free(job->chal_token);
    free(job->fleet_by);

    if (job->claiming) {
        acme_fleet_claim_free(&job->claim);
    }

    if (job->http) {
        ngx_acme_http_free(job->http);
        job->http = NULL;
    }

    ngx_acme_http_keep_close(&job->keep);

    if (job->sleep.timer_set) {
        ngx_del_timer(&job->sleep);
    }

    if (job->engine) {
        acme_engine_free(job->engine);
    }

    EVP_PKEY_free(job->account_key);
    EVP_PKEY_free(job->cert_key);
    free(job->account_url);
    free(job->csr_b64);

    if (job->key_pem) {
        OPENSSL_cleanse(job->key_pem, job->key_pem_len);
        free(job->key_pem);
    }

    acme_job_next_free(&job->next);

    free(job->chain);
    free(job->revoke_der);

    if (job->info_ok) {
        acme_cert_info_free(&job->info);
    }

    ngx_destroy_pool(job->pool);
}
