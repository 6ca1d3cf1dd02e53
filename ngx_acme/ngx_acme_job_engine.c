/*
 * An ACME job's engine loop, on the event loop: ngx_acme_job_run takes the
 * engine's next actions until one waits for an event (an HTTP response, a
 * timer, a thread task) and carries each out: requests through
 * ngx_acme_http, http-01 / tls-alpn-01 tokens into the zone, dns-01
 * records through a thread task (ngx_acme_job_dns.c), the account URL to
 * the waiting jobs and the store, an issued chain to the store task, an
 * error to ngx_acme_job_fail.  Nothing here blocks.
 */

#include "ngx_acme.h"
#include "ngx_acme_job_local.h"


static void ngx_acme_job_http_done(ngx_acme_http_t *h, void *data);
static const char *ngx_acme_job_account_error(ngx_acme_job_t *job,
    const char *msg, char *buf, size_t len);


/* The engine loop: returns whenever the job waits for an event. */
void
ngx_acme_job_run(ngx_acme_job_t *job)
{
    long long         now, now_ms;
    ngx_int_t         rc;
    ngx_time_t       *tp;
    ngx_msec_t        delay;
    acme_action_t     act;
    acme_chal_type_t  type;
    const char       *chain;
    char              errbuf[ACME_ERRLEN];

    for ( ;; ) {

        if (job->aborted) {
            return;
        }

        if (ngx_exiting || ngx_quit || ngx_terminate) {
            ngx_acme_job_abort(job->amcf, job->cert);
            return;
        }

        if (ngx_acme_job_fenced(job)) {
            return;
        }

        tp = ngx_timeofday();
        now = (long long) tp->sec;
        now_ms = now * 1000 + tp->msec;

        ngx_memzero(&act, sizeof(acme_action_t));
        acme_engine_next_ms(job->engine, now_ms, &act);

        if (!job->ari) {
            ngx_acme_job_set_step(job, acme_engine_step(job->engine));
        }

        switch (act.kind) {

        case ACME_ACT_HTTP:

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, job->log, 0,
                           "acme: %s %s", act.request.method,
                           act.request.url);

            job->http = ngx_acme_http_start(&job->issuer->http,
                                            &job->keep, &act.request,
                                            job->log,
                                            ngx_acme_job_http_done, job);
            if (job->http == NULL) {
                acme_engine_on_transport_error(job->engine,
                                               "cannot start the request");
                continue;
            }

            return;

        case ACME_ACT_SLEEP:

            if (act.note) {
                ngx_log_error(NGX_LOG_WARN, job->log, 0,
                              "acme: certificate \"%V\": %s",
                              &job->cert->id, act.note);
            }

            /* polls without Retry-After start at 50 ms */
            delay = (act.wake_at_ms > now_ms)
                    ? (ngx_msec_t) (act.wake_at_ms - now_ms) : 1;
            ngx_add_timer(&job->sleep, delay);
            return;

        case ACME_ACT_PUBLISH:

            if (act.challenge_type
                && ngx_strcmp(act.challenge_type, "dns-01") == 0)
            {
                if (ngx_acme_job_dns_post(job, &act, NGX_ACME_TASK_DNS_ADD)
                    != NGX_OK)
                {
                    ngx_acme_job_fail(job, "dns-01: cannot start publishing "
                                      "the TXT record", 0);
                }

                /* the engine goes on once the record is visible */
                return;
            }

            type = (act.challenge_type
                    && ngx_strcmp(act.challenge_type, "tls-alpn-01") == 0)
                   ? ACME_CHAL_TLS_ALPN_01 : ACME_CHAL_HTTP_01;

            rc = ngx_acme_shm_token_add(job->amcf, job->cert->slot,
                                        job->fence, type, act.identifier,
                                        act.token, act.key_authz);
            if (rc == NGX_BUSY) {
                /* lost the lease since the check above */
                (void) ngx_acme_job_fenced(job);
                return;
            }

            if (rc != NGX_OK) {
                ngx_log_error(NGX_LOG_ERR, job->log, 0,
                              "acme: certificate \"%V\": cannot publish "
                              "%s token \"%s\" (%s)", &job->cert->id,
                              type == ACME_CHAL_TLS_ALPN_01
                              ? "tls-alpn-01" : "http-01", act.token,
                              rc == NGX_DECLINED ? "malformed" : "zone full");

            } else if (type == ACME_CHAL_TLS_ALPN_01) {
                ngx_log_error(NGX_LOG_INFO, job->log, 0,
                              "acme: certificate \"%V\": tls-alpn-01 "
                              "pending for \"%s\"", &job->cert->id,
                              act.identifier);
            }

            if (rc == NGX_OK && job->fleet == ACME_FLEET_ORDER) {
                /* acme_store: every node answers it (ngx_acme_job_fleet.c) */
                if (ngx_acme_job_chal_post(job, &act, NGX_ACME_TASK_CHAL_PUT)
                    != NGX_OK)
                {
                    acme_engine_publish_failed(job->engine, "cannot post "
                                               "the shared store's task");
                    continue;
                }

                return;
            }

            /* the CA's validation then fails and tells the engine */
            continue;

        case ACME_ACT_UNPUBLISH:

            if (act.challenge_type
                && ngx_strcmp(act.challenge_type, "dns-01") == 0)
            {
                /* off the loop; the engine goes on after the removal */
                if (ngx_acme_job_dns_post(job, &act, NGX_ACME_TASK_DNS_REMOVE)
                    != NGX_OK)
                {
                    ngx_acme_job_fail(job, "dns-01: cannot start removing "
                                      "the TXT record", 0);
                }

                return;
            }

            ngx_acme_shm_token_del(job->amcf, act.token, job->fence);

            if (job->fleet == ACME_FLEET_ORDER
                && ngx_acme_job_chal_post(job, &act, NGX_ACME_TASK_CHAL_DEL)
                   == NGX_OK)
            {
                return;
            }

            continue;

        case ACME_ACT_ACCOUNT:

            if (act.account_refused) {
                ngx_log_error(NGX_LOG_WARN, job->log, 0,
                              "acme: certificate \"%V\": the CA refused the "
                              "stored account (%s); the account key's "
                              "account is %s", &job->cert->id,
                              act.account_refused, act.account_url);

            } else {
                ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                              "acme: acme_issuer \"%V\": account %s",
                              &job->issuer->name, act.account_url);
            }

            /* the jobs waiting for it go on with it */
            (void) acme_account_gate_set(&job->issuer->account_gate,
                                         job->account_key, act.account_url);

            free(job->account_url);
            job->account_url = acme_strdup(act.account_url);

            if (job->account_url == NULL) {
                continue;
            }

            if (ngx_acme_job_post(job, NGX_ACME_TASK_ACCOUNT) != NGX_OK) {
                continue;
            }

            return;

        case ACME_ACT_REVOKED:

            if (ngx_acme_control_revoked(job) == NGX_OK) {
                /* state.json written first; the task's end resumes */
                return;
            }

            continue;

        case ACME_ACT_DONE:

            if (job->ari) {
                ngx_acme_job_ari_done(job, 1);
                return;
            }

            chain = acme_engine_certificate(job->engine, &job->chain_len);
            job->chain = acme_strndup(chain, job->chain_len);

            if (acme_engine_chain_note(job->engine) != NULL) {
                ngx_log_error(NGX_LOG_INFO, job->log, 0,
                              "acme: certificate \"%V\": preferred_chain: %s",
                              &job->cert->id,
                              acme_engine_chain_note(job->engine));
            }

            if (job->chain == NULL) {
                ngx_acme_job_fail(job, "out of memory", 0);
                return;
            }

            ngx_acme_shm_lock(job->amcf);
            job->st = job->cert->slot->st;
            ngx_acme_shm_unlock(job->amcf);

            acme_job_succeeded(&job->st, (long long) now, job->directory,
                               (char *) job->issuer->name.data);

            ngx_acme_job_set_step(job, "store");

            if (ngx_acme_job_post(job, NGX_ACME_TASK_FINISH) != NGX_OK) {
                ngx_acme_job_fail(job, "cannot post the store task", 0);
            }

            return;

        case ACME_ACT_ERROR:

            if (job->ari) {
                ngx_acme_job_ari_done(job, 0);
                return;
            }

            ngx_acme_job_fail(job,
                              ngx_acme_job_account_error(job,
                                  acme_engine_error(job->engine),
                                  errbuf, sizeof(errbuf)),
                              acme_engine_retry_after(job->engine));
            return;

        default:

            ngx_acme_job_fail(job, "unexpected engine action", 0);
            return;
        }
    }
}


static void
ngx_acme_job_http_done(ngx_acme_http_t *h, void *data)
{
    ngx_acme_job_t  *job = data;

    const char                  *msg;
    const acme_http_response_t  *resp;

    resp = ngx_acme_http_response(h);

    if (resp) {
        acme_engine_on_response(job->engine, resp);

    } else {
        msg = ngx_acme_http_error(h);
        acme_engine_on_transport_error(job->engine,
                                       msg ? msg : "request failed");
    }

    ngx_acme_http_free(h);
    job->http = NULL;

    ngx_acme_job_run(job);
}


/*
 * A refused new-account is a configuration matter of the acme_issuer (no
 * or a wrong External Account Binding): say which issuer and what to do,
 * in the error log and the status' last_error alike.  Other errors pass.
 */
static const char *
ngx_acme_job_account_error(ngx_acme_job_t *job, const char *msg, char *buf,
    size_t len)
{
    u_char             *p;
    ngx_acme_issuer_t  *issuer;
    u_char              name[NGX_MAX_CONF_ERRSTR];

    issuer = job->issuer;

    p = ngx_snprintf(name, sizeof(name) - 1, "acme_issuer \"%V\"",
                     &issuer->name);
    *p = '\0';

    return acme_job_eab_hint(msg, (char *) name, "external_account_key",
                             issuer->conf.eab.kid, buf, len);
}
