/*
 * An ACME job's thread tasks: everything here runs in a thread of the
 * pool, never on the event loop, and may block (key generation, disk
 * writes with fsync, DNS updates and queries, a hook program).  No nginx
 * pools, no logging, no zone: results go back in the job (task_rc,
 * task_err, dns_log, ...) to ngx_acme_job_task_done on the event loop.
 */

#include "ngx_acme.h"
#include "ngx_acme_job_local.h"
#include "acme_job_store.h"
#include "acme_keygen.h"


static void ngx_acme_job_thread_run(void *data, ngx_log_t *log);
static void ngx_acme_job_dns_remove_all(ngx_acme_job_t *job);


/*
 * The task handler.  Each task ends with OPENSSL_thread_stop(): a pool
 * thread holds no OpenSSL thread state between tasks.  nginx 1.22 ends a
 * worker's pool threads with "*lock = 0; pthread_exit(0);"
 * (ngx_thread_pool_exit_handler): the worker goes on to exit() while the
 * last pool thread still runs its thread-specific-data destructors, and
 * OpenSSL's (the thread's error state and DRBGs) would race with the
 * OPENSSL_cleanup() that exit() runs: a double free (docs/host-notes.md).
 */
void
ngx_acme_job_thread(void *data, ngx_log_t *log)
{
    ngx_acme_job_thread_run(data, log);

    OPENSSL_thread_stop();
}


/* Runs in a thread of the pool: no nginx pools, no logging, no zone. */
static void
ngx_acme_job_thread_run(void *data, ngx_log_t *log)
{
    ngx_acme_job_t  *job = *(ngx_acme_job_t **) data;

    acme_job_conf_t      conf;

    if (job->task_kind == NGX_ACME_TASK_FINISH
        || job->task_kind == NGX_ACME_TASK_FAIL
        || job->task_kind == NGX_ACME_TASK_DNS_CLEANUP)
    {
        ngx_acme_job_dns_remove_all(job);
    }

    switch (job->task_kind) {

    case NGX_ACME_TASK_DNS_CLEANUP:

        job->task_rc = 0;
        return;

    case NGX_ACME_TASK_DNS_ADD:
    case NGX_ACME_TASK_DNS_REMOVE:

        if (job->task_kind == NGX_ACME_TASK_DNS_ADD) {
            job->task_rc = ngx_acme_dns_publish(job->cert->issuer,
                                                job->dns_ident, job->dns_ka,
                                                &job->dns_log, job->task_err,
                                                sizeof(job->task_err));

        } else {
            job->task_rc = ngx_acme_dns_remove(job->cert->issuer,
                                               job->dns_ident, job->dns_ka,
                                               &job->dns_log, job->task_err,
                                               sizeof(job->task_err));
        }

        /*
         * An exiting worker may never run this task's completion handler
         * (its event loop ends; the pool still finishes the task): the
         * records go now.
         */
        if (ngx_exiting || ngx_quit || ngx_terminate) {
            (void) acme_engine_abort(job->engine, "the worker is exiting");
            ngx_acme_job_dns_remove_all(job);
        }

        return;

    case NGX_ACME_TASK_PREPARE:

        ngx_acme_job_conf(job, &conf);

        if (acme_job_account_key(&conf, &job->account_key, &job->account_url,
                                 job->task_err, sizeof(job->task_err),
                                 job->task_err, sizeof(job->task_err))
            != 0)
        {
            job->store_rc = -1;
            job->task_rc = -1;
            return;
        }

        /* task_err: why a stored account was ignored (logged), or "" */
        job->store_rc = 0;

        /* RSA keygen and the CSR's signature: at the lowest priority */
        if (acme_job_cert_key_csr(&conf, &job->cert_key, &job->key_pem,
                                  &job->key_pem_len, &job->csr_b64,
                                  &job->next, job->task_err,
                                  sizeof(job->task_err))
            != 0)
        {
            job->task_rc = -1;
            return;
        }

        job->task_rc = 0;
        return;

    case NGX_ACME_TASK_ACCOUNT:

        if (job->root == NULL) {
            /* "state_path off": the account is found by its key */
            job->task_rc = 0;
            job->store_rc = 0;
            return;
        }

        job->task_rc = acme_store_save_account(job->root, job->directory,
                                               job->account_key,
                                               job->account_url,
                                               job->task_err,
                                               sizeof(job->task_err));
        job->store_rc = (job->task_rc != 0) ? -1 : 0;
        return;

    case NGX_ACME_TASK_FINISH:

        /* task_rc: ACME_JOB_STORED, or what is served from memory */
        job->task_rc = acme_job_store_issued(job->root, job->id,
                                             job->key_pem, job->key_pem_len,
                                             job->chain, job->chain_len,
                                             &job->st, &job->next,
                                             &job->info,
                                             job->task_err,
                                             sizeof(job->task_err));
        job->info_ok = (job->task_rc != -1);

        if (job->task_rc != -1) {
            /* acme_store: the record, after the local store */
            (void) ngx_acme_job_fleet_thread(job);
        }

        return;

    case NGX_ACME_TASK_CLAIM:
    case NGX_ACME_TASK_CHAL_PUT:
    case NGX_ACME_TASK_CHAL_DEL:
    case NGX_ACME_TASK_PUBLISH:

        job->task_rc = ngx_acme_job_fleet_thread(job);
        return;

    case NGX_ACME_TASK_BEGIN:
    case NGX_ACME_TASK_FAIL:
    case NGX_ACME_TASK_REVOKED:

        if (job->root != NULL
            && acme_store_save_state(job->root, job->id, &job->st,
                                  job->task_err, sizeof(job->task_err))
            != 0)
        {
            job->store_rc = -1;
            job->task_rc = -1;
            return;
        }

        job->task_rc = 0;
        return;

    case NGX_ACME_TASK_RESAVE:

        /* key_pem holds the bundle as served, st the zone's state */
        job->task_rc = acme_job_store_resave(job->root, job->id, job->key_pem,
                                             job->key_pem_len, &job->st,
                                             job->task_err,
                                             sizeof(job->task_err));
        return;
    }

    return;
}


/*
 * Thread: the engine's remaining UNPUBLISH actions (after an abort or a
 * host-side failure); dns-01 records are removed, tokens were dropped from
 * the zone by the event loop.  Bounded: one action per published
 * challenge, then DONE or ERROR.
 */
static void
ngx_acme_job_dns_remove_all(ngx_acme_job_t *job)
{
    char           *p;
    char            err[ACME_ERRLEN];
    acme_action_t   act;

    if (job->engine == NULL || !job->dns_used) {
        return;
    }

    (void) acme_engine_abort(job->engine, "order aborted");

    for ( ;; ) {
        acme_engine_next(job->engine, (long long) time(NULL), &act);

        if (act.kind != ACME_ACT_UNPUBLISH) {
            break;
        }

        if (act.challenge_type == NULL
            || ngx_strcmp(act.challenge_type, "dns-01") != 0)
        {
            continue;
        }

        err[0] = '\0';

        if (ngx_acme_dns_remove(job->cert->issuer, act.identifier,
                                act.key_authz, &job->dns_log, err,
                                sizeof(err))
            != 0)
        {
            p = acme_sprintf("%s%s%s", job->dns_rm_err ? job->dns_rm_err
                                                      : "",
                             job->dns_rm_err ? "; " : "", err);
            if (p) {
                free(job->dns_rm_err);
                job->dns_rm_err = p;
            }
        }
    }
}
