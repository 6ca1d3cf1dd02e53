/*
 * An issued certificate, on the event loop, after the thread pool wrote it
 * (or the store refused it): ngx_acme_job_finished puts the bundle into
 * the zone for every worker (or keeps it there until its notBefore, see
 * acme_job_activate_at, for ngx_acme_job_activate) and schedules a later
 * write of a bundle served from memory only; ngx_acme_job_resave is that write (a job with only a
 * thread task: the RESAVE of ngx_acme_job_thread.c) and
 * ngx_acme_job_resaved records its outcome.
 */

#include "ngx_acme.h"
#include "ngx_acme_job_local.h"


/*
 * The new bundle is on disk (or refused by the store: then it is served
 * from the zone and written again later): publish it to every worker.
 */
void
ngx_acme_job_finished(ngx_acme_job_t *job)
{
    u_char                *bundle;
    size_t                 len;
    char                   buf[21], msg[2 * ACME_ERRLEN];
    long long              at, now, activate_at, due;
    unsigned               tries;
    acme_job_facts_t       f;
    ngx_int_t              rc;
    ngx_uint_t             level, first;
    const char            *event;
    ngx_log_t             *log;
    ngx_acme_cert_t       *cert;
    ngx_acme_slot_t       *slot;
    ngx_acme_main_conf_t  *amcf;

    cert = job->cert;
    slot = cert->slot;

    /* acme_store: the record's publication (FINISH task) logged */
    ngx_acme_job_fleet_result(job);

    if (job->next.warn[0]) {
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "acme: certificate \"%V\": %s", &cert->id,
                      job->next.warn);
    }

    bundle = (u_char *) acme_bundle_join(job->key_pem, job->key_pem_len,
                                         job->chain, job->chain_len, &len);

    if (bundle == NULL && job->task_rc != ACME_JOB_STORED) {
        ngx_acme_job_fail(job, "out of memory", 0);
        return;
    }

    if (bundle == NULL) {
        /* on disk already: the next restart serves it */
        ngx_acme_shm_lock(job->amcf);

        if (ngx_acme_shm_fence_ok_locked(job->amcf, job->fence)) {
            slot->st = job->st;
            slot->status.store_error[0] = '\0';

            if (cert->issuer->key_rollover == 1) {
                acme_job_status_set_next_pin(&slot->status, job->next.pin);
            }
            acme_job_status_ordered(&slot->status, 1, 0);
            acme_job_status_end(&slot->status, &job->st,
                                slot->status.next_renewal);
        }

        ngx_acme_shm_unlock(job->amcf);

        cert->job = NULL;
        ngx_acme_job_free(job);
        return;
    }

    ngx_acme_shm_lock(job->amcf);

    if (!ngx_acme_shm_fence_ok_locked(job->amcf, job->fence)) {
        /* stored, but the new holder owns the zone: it orders anew */
        ngx_acme_shm_unlock(job->amcf);
        acme_bundle_free((char *) bundle, len);

        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "acme: certificate \"%V\": issued under a lost ACME "
                      "lease (generation %uL); left to the new holder",
                      &cert->id, (uint64_t) job->fence);

        ngx_acme_job_abort(job->amcf, cert);
        return;
    }

    now = (long long) ngx_time();
    first = (slot->bundle == NULL);     /* the bridge or the placeholder */

    if (cert->issuer->key_rollover == 1 && !job->fleet_install) {
        /* key_rollover: what next.key holds now */
        acme_job_status_set_next_pin(&slot->status, job->next.pin);
    }

    if (!job->fleet_install) {
        /* an order of this server (not a certificate of the store) */
        acme_job_status_ordered(&slot->status, 1, !first);
    }

    /* a certificate not valid yet waits while the served one is valid */
    activate_at = acme_job_activate_at(job->info.not_before,
                                       slot->bundle != NULL
                                       && slot->status.have_cert,
                                       slot->status.not_after, now,
                                       cert->issuer->conf.clock_skew);

    if (activate_at) {
        rc = ngx_acme_shm_hold_locked(job->amcf, slot, (char *) bundle, len,
                                      &job->info, activate_at);

    } else {
        rc = ngx_acme_shm_set_bundle_locked(job->amcf, slot, (char *) bundle,
                                            len, 0);
    }

    /* store_error and the write schedule (NGX_LOG_* = syslog's + 1) */
    level = acme_job_issued_saved(job->task_rc, job->task_err, job->root,
                                  job->id, now, &tries, &at, &slot->status,
                                  msg, sizeof(msg)) + 1;

    if (rc == NGX_OK && activate_at) {
        /* written again once it is served (ngx_acme_job_activate) */
        slot->next_unsaved = (at != 0);

    } else if (rc == NGX_OK) {
        ngx_acme_shm_set_info_locked(slot, &job->info);
        cert->ordered_gen = slot->generation;

        /* the lease holder writes it again from the zone */
        slot->unsaved_tries = tries;
        slot->unsaved_at = at;
        slot->unsaved_gen = slot->generation;
    }

    slot->st = job->st;
    due = slot->status.next_renewal;

    if (rc == NGX_OK && !activate_at) {
        /*
         * served within milliseconds (ngx_acme_shm_activate): its next
         * renewal is shown at once, not from the next tick (as on Apache)
         */
        ngx_memzero(&f, sizeof(acme_job_facts_t));
        f.have_cert = 1;
        f.loaded = 1;
        f.names_ok = 1;
        f.not_before = job->info.not_before;
        f.not_after = job->info.not_after;
        f.renew_fraction = cert->issuer->conf.renew_percent / 100.0;
        f.seed = cert->rnd;
        f.directory = cert->issuer->conf.directory;
        f.fallback_dirs = cert->fallback_dirs;
        f.n_fallback_dirs = cert->n_issuers - 1;

        (void) acme_job_due(&f, &job->st, &due);
    }

    acme_job_status_end(&slot->status, &job->st, due);

    /* "issued" (the first of the id) or "renewed" (acme_event.h) */
    event = (rc == NGX_OK) ? acme_event_issued(&slot->events, !first) : NULL;

    ngx_acme_shm_unlock(job->amcf);

    acme_bundle_free((char *) bundle, len);

    if (msg[0] != '\0') {
        ngx_log_error(level, job->log, 0, "acme: certificate \"%V\": %s",
                      &cert->id, msg);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, job->log, 0,
                      "acme: certificate \"%V\": issued and stored, but the "
                      "shared zone \"%V\" is full; it is served after a "
                      "restart", &cert->id, &job->amcf->zone_name);

    } else if (job->fleet_install) {
        ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                      "acme: certificate \"%V\" installed from the shared "
                      "store (ordered by node %s): serial %s, valid until %s",
                      &cert->id, job->fleet_by, job->info.serial,
                      acme_time_rfc3339(job->info.not_after, buf,
                                        sizeof(buf)));

    } else {
        ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                      "acme: certificate \"%V\" issued: serial %s, "
                      "valid until %s", &cert->id, job->info.serial,
                      acme_time_rfc3339(job->info.not_after, buf,
                                        sizeof(buf)));
    }

    if (rc == NGX_OK && !activate_at && first) {
        ngx_acme_bridge_retired(cert, job->info.serial, job->log);
    }

    if (event) {
        ngx_acme_event_emit(job->amcf, cert, event, job->info.serial,
                            job->info.not_after, NULL, job->log);
    }

    if (rc == NGX_OK && activate_at) {
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "acme: certificate \"%V\": %s", &cert->id,
                      acme_job_pending_text(job->info.serial,
                                            job->info.not_before, now,
                                            activate_at, msg, sizeof(msg)));
    }

    amcf = job->amcf;
    log = job->log;

    cert->job = NULL;
    ngx_acme_job_free(job);

    /* installed in this worker now, the others follow on their pickup */
    ngx_acme_ssl_refresh(amcf, log);
}


/*
 * The lease holder writes a bundle the store refused (and the renewal
 * state) again, from the zone, in the thread pool.  cert->job is set
 * meanwhile, so no order starts before it ends.
 */
ngx_int_t
ngx_acme_job_resave(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    ngx_log_t *log)
{
    ngx_uint_t        ok;
    ngx_acme_job_t   *job;
    ngx_acme_slot_t  *slot;

    job = ngx_acme_job_create(amcf, cert, log);
    if (job == NULL) {
        return NGX_ERROR;
    }

    slot = cert->slot;
    ok = 0;

    ngx_acme_shm_lock(amcf);

    if (ngx_acme_shm_fence_ok_locked(amcf, job->fence)
        && slot->unsaved_at && slot->bundle
        && slot->generation == slot->unsaved_gen)
    {
        job->key_pem = malloc(slot->bundle_len);

        if (job->key_pem) {
            ngx_memcpy(job->key_pem, slot->bundle, slot->bundle_len);
            job->key_pem_len = slot->bundle_len;
            job->resave_gen = slot->generation;
            job->st = slot->st;
            ok = 1;
        }

    } else if (slot->generation != slot->unsaved_gen) {
        /* a newer bundle replaced it */
        slot->unsaved_at = 0;
    }

    ngx_acme_shm_unlock(amcf);

    if (!ok) {
        ngx_acme_job_free(job);
        return NGX_DECLINED;
    }

    cert->job = job;

    if (ngx_acme_job_post(job, NGX_ACME_TASK_RESAVE) != NGX_OK) {
        cert->job = NULL;
        ngx_acme_job_free(job);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_acme_job_resaved(ngx_acme_job_t *job)
{
    char              msg[2 * ACME_ERRLEN];
    ngx_uint_t        current, level;
    ngx_acme_cert_t  *cert;
    ngx_acme_slot_t  *slot;

    cert = job->cert;
    slot = cert->slot;
    level = 0;

    ngx_acme_shm_lock(job->amcf);

    current = (slot->unsaved_at && slot->generation == job->resave_gen);

    if (current) {
        /* NGX_LOG_* = syslog's + 1 */
        level = acme_job_resaved(job->task_rc, job->task_err, job->root,
                                 job->id, (long long) ngx_time(),
                                 &slot->unsaved_tries, &slot->unsaved_at,
                                 &slot->status, msg, sizeof(msg)) + 1;
    }

    ngx_acme_shm_unlock(job->amcf);

    if (current) {
        ngx_log_error(level, job->log, 0, "acme: certificate \"%V\": %s",
                      &cert->id, msg);
    }

    cert->job = NULL;
    ngx_acme_job_free(job);
}


/*
 * The lease holder's timer: a bundle kept until its activation time
 * (acme_job_activate_at) becomes the one served; every worker parses it
 * and ngx_acme_shm_activate switches them together, as for a new one.
 */
void
ngx_acme_job_activate(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    ngx_log_t *log)
{
    ngx_int_t         rc;
    ngx_acme_slot_t  *slot;

    slot = cert->slot;
    rc = NGX_DECLINED;

    ngx_acme_shm_lock(amcf);

    if (slot->next_bundle && slot->status.pending_at
        && slot->status.pending_at <= (long long) ngx_time()
        && ngx_acme_shm_fence_ok_locked(amcf, amcf->lease_gen))
    {
        /* a copy (the waiting one is freed); no room: the next tick */
        rc = ngx_acme_shm_set_bundle_locked(amcf, slot,
                                            (char *) slot->next_bundle,
                                            slot->next_bundle_len, 0);
    }

    if (rc == NGX_OK) {
        acme_job_status_activate(&slot->status);
        cert->ordered_gen = slot->generation;

        /* the store refused it: written again from the zone now */
        slot->unsaved_tries = slot->next_unsaved;
        slot->unsaved_at = slot->next_unsaved ? (long long) ngx_time() : 0;
        slot->unsaved_gen = slot->generation;
        slot->next_unsaved = 0;
    }

    ngx_acme_shm_unlock(amcf);

    if (rc == NGX_OK) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0, "acme: certificate \"%V\": "
                      "the certificate that waited for its notBefore is "
                      "served now", &cert->id);
    }
}
