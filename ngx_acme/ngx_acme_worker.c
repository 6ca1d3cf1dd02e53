/*
 * ngx_http_acme_module: a worker's lifetime.  init_process starts two
 * timers: a short one (NGX_ACME_PICKUP) that picks up new certificates and
 * activates them once every worker has parsed them, and the one-second
 * tick that reports the worker alive, holds the ACME lease and, on the
 * lease holder, starts the orders that are due; exit_process (and a worker
 * leaving after a reload) aborts its orders and hands the lease on.
 */

#include "ngx_acme.h"


static void ngx_acme_tick(ngx_event_t *ev);
static void ngx_acme_pickup(ngx_event_t *ev);
static void ngx_acme_schedule(ngx_acme_main_conf_t *amcf, ngx_log_t *log);
static ngx_uint_t ngx_acme_alpn_busy(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert);
static ngx_uint_t ngx_acme_unfinished(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, acme_cert_state_t *st, ngx_log_t *log);
static void ngx_acme_abort_all(ngx_acme_main_conf_t *amcf);


ngx_int_t
ngx_acme_init_process(ngx_cycle_t *cycle)
{
    ngx_acme_main_conf_t  *amcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_acme_module);

    if (amcf == NULL || amcf->shm_zone == NULL || amcf->certs.nelts == 0) {
        return NGX_OK;
    }

    amcf->log = cycle->log;
    ngx_queue_init(&amcf->alpn_certs);

    amcf->timer.handler = ngx_acme_tick;
    amcf->timer.data = amcf;
    amcf->timer.log = cycle->log;
    amcf->timer.cancelable = 1;

    amcf->pickup.handler = ngx_acme_pickup;
    amcf->pickup.data = amcf;
    amcf->pickup.log = cycle->log;
    amcf->pickup.cancelable = 1;

    /* at once: serve stored certificates from the first handshake */

    ngx_acme_pickup(&amcf->pickup);
    ngx_acme_tick(&amcf->timer);

    /* acme_store: the lease holder's rounds with the shared store */
    ngx_acme_fleet_init_process(amcf, cycle->log);

    return NGX_OK;
}


void
ngx_acme_exit_process(ngx_cycle_t *cycle)
{
    ngx_acme_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_acme_module);

    if (amcf == NULL || amcf->shm_zone == NULL || amcf->certs.nelts == 0) {
        return;
    }

    amcf->exiting = 1;

    ngx_acme_abort_all(amcf);

    if (amcf->lease_held) {
        ngx_acme_shm_lease_release(amcf);
        amcf->lease_held = 0;

        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "acme: exiting worker process %P released the "
                      "ACME lease", ngx_pid);
    }

    if (amcf->timer.timer_set) {
        ngx_del_timer(&amcf->timer);
    }

    if (amcf->pickup.timer_set) {
        ngx_del_timer(&amcf->pickup);
    }

    ngx_acme_fleet_exit_process(amcf);

    ngx_acme_ssl_free(amcf);
    ngx_acme_alpn_free(amcf);
}


static void
ngx_acme_abort_all(ngx_acme_main_conf_t *amcf)
{
    ngx_uint_t         i;
    ngx_acme_cert_t  **certs;

    certs = amcf->certs.elts;

    for (i = 0; i < amcf->certs.nelts; i++) {
        if (certs[i]->job) {
            ngx_acme_job_abort(amcf, certs[i]);
        }
    }
}


static void
ngx_acme_tick(ngx_event_t *ev)
{
    ngx_acme_main_conf_t  *amcf = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        /* an old worker after a reload: hand ACME to the new ones */

        ngx_acme_abort_all(amcf);

        if (amcf->lease_held) {
            ngx_acme_shm_lease_release(amcf);
            amcf->lease_held = 0;

            ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                          "acme: exiting worker process %P released the "
                          "ACME lease", ngx_pid);
        }

        return;
    }

    ngx_acme_shm_heartbeat(amcf, amcf->generation);

    if (amcf->tls_alpn) {
        ngx_acme_alpn_expire(amcf);
    }

    if (ngx_acme_shm_lease(amcf, ev->log) == NGX_OK) {
        amcf->lease_held = 1;

        /* a worker that did not report in time holds nothing back */
        ngx_acme_shm_activate(amcf, ev->log);
        ngx_acme_ssl_refresh(amcf, ev->log);
        ngx_acme_schedule(amcf, ev->log);

    } else if (amcf->lease_held) {
        amcf->lease_held = 0;
        ngx_acme_abort_all(amcf);

        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "acme: worker process %P lost the ACME lease", ngx_pid);
    }

    ngx_add_timer(ev, NGX_ACME_TICK);
}


/*
 * A new bundle reaches every worker within a few NGX_ACME_PICKUP: each
 * worker parses it when the zone's generation moves (one read without the
 * lock when nothing changed), reports that, and checks the activation
 * itself, so the last worker to parse activates it for all; the others
 * promote it on their next run (amcf->waiting), within NGX_ACME_PICKUP,
 * installing it into the servers' SSL_CTX (ngx_acme_ssl.c).
 */
static void
ngx_acme_pickup(ngx_event_t *ev)
{
    ngx_acme_main_conf_t  *amcf = ev->data;

    ngx_acme_shctx_t      *sh;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    sh = ngx_acme_shm_ctx(amcf);

    if (sh->generation != amcf->reported) {
        ngx_acme_ssl_refresh(amcf, ev->log);
        ngx_acme_shm_heartbeat(amcf, amcf->generation);
        amcf->reported = amcf->generation;

        ngx_acme_shm_activate(amcf, ev->log);
        ngx_acme_ssl_refresh(amcf, ev->log);

    } else if (amcf->waiting) {
        ngx_acme_ssl_refresh(amcf, ev->log);
    }

    ngx_add_timer(ev, NGX_ACME_PICKUP);
}


/*
 * Starts the orders that are due (acme_job_due), at most max_orders of an
 * issuer in flight, the most urgent first (acme_job_pipeline); the others
 * wait for a later tick.  The lease holder only.
 */
static void
ngx_acme_schedule(ngx_acme_main_conf_t *amcf, ngx_log_t *log)
{
    time_t              now, unsaved;
    long long           due;
    ngx_uint_t          i;
    ngx_acme_cert_t   **certs, *cert;
    ngx_acme_slot_t    *slot;
    ngx_acme_issuer_t  *issuer;
    acme_job_pipe_t    *p;
    acme_job_facts_t    f;
    acme_job_reason_t  *whys;
    acme_cert_state_t   st;

    now = ngx_time();
    certs = amcf->certs.elts;

    if (amcf->pipe == NULL) {
        amcf->pipe = ngx_pcalloc(ngx_cycle->pool,
                                 amcf->certs.nelts * (sizeof(acme_job_pipe_t)
                                 + sizeof(acme_job_reason_t)));
        if (amcf->pipe == NULL) {
            return;
        }
    }

    whys = (acme_job_reason_t *) (amcf->pipe + amcf->certs.nelts);

    for (i = 0; i < amcf->certs.nelts; i++) {
        cert = certs[i];
        slot = cert->slot;
        p = &amcf->pipe[i];
        cert->ari_due = 0;

        /* the CA of the next (or running) attempt: fallback= moves on
         * after failures, its cap and pause count */
        issuer = cert->issuer;

        if (slot && cert->n_issuers > 1) {
            ngx_acme_shm_lock(amcf);
            issuer = ngx_acme_cert_issuer(cert, slot->st.failures);
            ngx_acme_shm_unlock(amcf);
        }

        ngx_memzero(p, sizeof(acme_job_pipe_t));
        p->issuer = issuer;
        p->max_orders = (unsigned) issuer->conf.max_orders;
        p->running = (cert->job != NULL);
        p->issuer_pause = issuer->paused_until;

        if (slot) {
            /* "expiring", once a day in the warning window */
            ngx_acme_event_tick(amcf, cert, log);
        }

        if (slot == NULL || cert->job) {
            continue;
        }

        /* a certificate that waited for its notBefore is served */
        ngx_acme_job_activate(amcf, cert, log);

        ngx_memzero(&f, sizeof(acme_job_facts_t));

        ngx_acme_shm_lock(amcf);

        st = slot->st;
        f.have_cert = (slot->bundle != NULL);
        f.not_before = slot->status.not_before;
        f.not_after = slot->status.not_after;

        if (slot->next_bundle && slot->status.pending_at) {
            f.pending_not_before = slot->status.pending_not_before;
            f.pending_not_after = slot->status.pending_not_after;
        }

        /* a bundle this worker has not parsed: its names are not known */
        f.loaded = (slot->generation == cert->generation);
        /* renew / revoke asked for at the status location */
        f.forced = (acme_control_pending(&slot->control)
                    != ACME_CONTROL_NONE);
        unsaved = slot->unsaved_at;

        ngx_acme_shm_unlock(amcf);

        if (st.attempt_started && ngx_acme_unfinished(amcf, cert, &st, log)) {
            p->running = 1;
            continue;
        }

        if (unsaved && unsaved <= now) {
            /* an issued bundle the store refused: written again first */
            if (ngx_acme_job_resave(amcf, cert, log) == NGX_OK) {
                p->running = 1;
                continue;
            }
        }

        if (cert->fleet_recheck) {
            /* acme_store: a newer record came while a job ran */
            cert->fleet_recheck = 0;

            if (ngx_acme_job_claim(amcf, cert, 0, "the shared store", log)
                == NGX_OK)
            {
                p->running = 1;
                continue;
            }
        }

        f.names_ok = cert->names_match;
        f.key_changed = cert->key_other;
        f.renew_fraction = cert->issuer->conf.renew_percent / 100.0;
        f.seed = cert->rnd;
        f.directory = cert->issuer->conf.directory;
        f.ari_id = cert->ari_id;
        f.fallback_dirs = cert->fallback_dirs;
        f.n_fallback_dirs = cert->n_issuers - 1;

        whys[i] = acme_job_due(&f, &st, &due);

        if (whys[i] == ACME_JOB_LOADING) {
            continue;
        }

        ngx_acme_shm_lock(amcf);
        slot->status.next_renewal = due;
        acme_job_status_set_reason(&slot->status, acme_job_change(&f, &st));
        acme_job_status_ari(&slot->status, &st, cert->ari_id);
        ngx_acme_shm_unlock(amcf);

        p->have_cert = f.have_cert;
        p->not_after = f.not_after;
        p->due = (due <= now && !ngx_acme_alpn_busy(amcf, cert));

        if (amcf->fleet && cert->fleet_next > now) {
            /* acme_store: another node orders it, or the store is
             * unreachable: the store is asked again at fleet_next */
            p->due = 0;
        }

        /* no order due: the renewal information (ARI) may be, within the
         * issuer's max_orders like an order */
        cert->ari_due = (due > now && f.have_cert && f.loaded
                         && acme_ari_poll_due(&st, cert->ari_id, now));
        if (cert->ari_due) {
            p->due = 1;
        }
    }

    if (acme_job_pipeline(amcf->pipe, amcf->certs.nelts, now) == 0) {
        return;
    }

    for (i = 0; i < amcf->certs.nelts; i++) {
        cert = certs[i];

        if (amcf->pipe[i].start && cert->job == NULL && cert->ari_due) {
            (void) ngx_acme_job_ari_start(amcf, cert, log);
            continue;
        }

        /* tls-alpn-01: one started above may share a name */
        if (amcf->pipe[i].start && cert->job == NULL
            && !ngx_acme_alpn_busy(amcf, cert))
        {
            (void) ngx_acme_job_start(amcf, cert,
                                      acme_job_reason_text(whys[i]), log);
        }
    }
}


/*
 * An attempt record in the slot and no job of ours for it: the worker that
 * ran the order died during it (or the whole server, when the record came
 * from state.json).  The common policy counts it as a failure with backoff;
 * the state is persisted in the thread pool.  Returns 1 when it counted one.
 */
static ngx_uint_t
ngx_acme_unfinished(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    acme_cert_state_t *st, ngx_log_t *log)
{
    char               buf[2 * ACME_ERRLEN];
    time_t             now;
    ngx_uint_t         alive, emit;
    acme_job_status_t  rec;

    now = ngx_time();

    alive = ((ngx_pid_t) st->attempt_pid != ngx_pid
             && acme_process_alive(st->attempt_pid));

    if (!acme_job_unfinished(st, cert->challenges, cert->n_challenges,
                             (long long) now, alive,
                             cert->issuer->conf.retry_delay, cert->rnd))
    {
        return 0;
    }

    ngx_acme_shm_lock(amcf);

    if (!ngx_acme_shm_fence_ok_locked(amcf, amcf->lease_gen)) {
        ngx_acme_shm_unlock(amcf);
        return 1;
    }

    cert->slot->st = *st;
    acme_job_status_end(&cert->slot->status, st, st->next_attempt);

    /* a failed order too: "failed", at most one an hour */
    emit = acme_event_failed(&cert->slot->events, (long long) now);
    rec = cert->slot->status;

    ngx_acme_shm_unlock(amcf);

    ngx_log_error(NGX_LOG_ERR, log, 0, "acme: certificate \"%V\": %s",
                  &cert->id, acme_job_failure_text(st, buf, sizeof(buf)));

    if (emit) {
        ngx_acme_event_emit_slot(amcf, cert, "failed", &rec, log);
    }

    if (ngx_acme_job_save_state(amcf, cert, st, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "acme: certificate \"%V\": cannot post the state "
                      "task", &cert->id);
    }

    return 1;
}


/*
 * tls-alpn-01 attempts sharing a name take turns (acme_job_alpn_conflict):
 * such an order waits for the running one; the next tick starts it.
 */
static ngx_uint_t
ngx_acme_alpn_busy(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert)
{
    ngx_uint_t          i, failures;
    const char         *type;
    ngx_acme_cert_t   **certs, *other;

    certs = amcf->certs.elts;

    type = acme_job_challenge(cert->challenges, cert->n_challenges,
                              cert->slot->st.failures);

    for (i = 0; i < amcf->certs.nelts; i++) {
        other = certs[i];

        if (other == cert || other->job == NULL || other->slot == NULL) {
            continue;
        }

        /* the running attempt's type: failures change when it ends */
        ngx_acme_shm_lock(amcf);
        failures = other->slot->st.failures;
        ngx_acme_shm_unlock(amcf);

        if (acme_job_alpn_conflict(type,
                  (const char *const *) cert->names.elts, cert->names.nelts,
                  acme_job_challenge(other->challenges, other->n_challenges,
                                     failures),
                  (const char *const *) other->names.elts,
                  other->names.nelts))
        {
            return 1;
        }
    }

    return 0;
}
