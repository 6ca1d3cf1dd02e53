/*
 * dns-01 of an ACME job, the event loop's side: a PUBLISH or UNPUBLISH
 * becomes a thread task (ngx_acme_job_dns_post; the work is
 * ngx_acme_dns_publish / ngx_acme_dns_remove in ngx_acme_job_thread.c),
 * an order given up aborts the engine to learn whether records are left
 * (ngx_acme_job_dns_abort), and a task's hook output and removal errors
 * go to the error log (ngx_acme_job_dns_log).  Nothing here blocks.
 */

#include "ngx_acme.h"
#include "ngx_acme_job_local.h"


/* A dns-01 PUBLISH or UNPUBLISH: done in a thread, the engine waits. */
ngx_int_t
ngx_acme_job_dns_post(ngx_acme_job_t *job, acme_action_t *act,
    ngx_acme_task_kind_e kind)
{
    free(job->dns_ident);
    free(job->dns_ka);

    job->dns_ident = acme_strdup(act->identifier);
    job->dns_ka = acme_strdup(act->key_authz);

    if (job->dns_ident == NULL || job->dns_ka == NULL) {
        return NGX_ERROR;
    }

    job->dns_used = 1;

    if (kind == NGX_ACME_TASK_DNS_ADD) {
        ngx_log_error(NGX_LOG_INFO, job->log, 0,
                      "acme: certificate \"%V\": dns-01 for \"%s\": setting "
                      "its TXT record via %s", &job->cert->id,
                      job->dns_ident,
                      job->cert->issuer->conf.dns.hook ? "dns_hook"
                                                       : "dns_update");

        ngx_acme_job_set_step(job, "dns-01 publish");
    }

    return ngx_acme_job_post(job, kind);
}


/*
 * An order given up by the host: the engine emits an UNPUBLISH for each
 * published challenge.  Non-zero when dns-01 records are among them (a
 * thread task removes them; tokens leave the zone with the job's fence).
 */
ngx_uint_t
ngx_acme_job_dns_abort(ngx_acme_job_t *job)
{
    if (job->engine == NULL) {
        return 0;
    }

    return acme_engine_abort(job->engine, "order aborted") && job->dns_used;
}


/* Event loop: the hook's stderr lines and removal errors to the log. */
void
ngx_acme_job_dns_log(ngx_acme_job_t *job)
{
    ngx_acme_thread_log_flush(&job->dns_log, (char *) job->cert->id.data,
                              job->log);

    if (job->dns_rm_err) {
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "acme: certificate \"%V\": cannot remove the dns-01 "
                      "TXT record(s): %s", &job->cert->id, job->dns_rm_err);
        free(job->dns_rm_err);
        job->dns_rm_err = NULL;
    }
}
