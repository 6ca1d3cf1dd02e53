/*
 * Events (common/core/acme_event.h decides when and what): the directives
 *
 *   acme_event_command /path/prog [timeout=30s];   http{} or acme_issuer
 *   acme_expiry_warning TIME;                      http{} or acme_issuer
 *
 * (an issuer's own win: acme_issuer_events_inherit at postconfiguration),
 * and the program's runs.  The lease holder emits them (issued, renewed,
 * failed from its orders; installed, once a bundle is activated in every
 * worker, and expiring from its tick), so one certificate's events keep
 * their order.  A worker keeps a bounded queue (acme_event_queue_t, full:
 * the event is dropped with a warning) and runs one event at a time in a
 * task of the thread pool, with the dns-01 hook's clone() runner
 * (ngx_acme_runner, acme_event_run): never on the event loop, and at most
 * one thread of the pool per worker, so a hanging program (killed at its
 * timeout) never delays ACME work or traffic.  Its stderr lines and the
 * outcome are logged on the event loop when the task is done.
 */

#include "ngx_acme.h"
#include "acme_event_run.h"


struct ngx_acme_events_s {
    acme_event_queue_t        queue;
    acme_event_t              running;        /* the task's, while busy */
    char                     *out;            /* its stderr ("W|..." lines) */
    char                      err[ACME_ERRLEN];
    int                       rc;
    ngx_flag_t                busy;
    ngx_thread_task_t        *task;
    ngx_acme_main_conf_t     *amcf;
    ngx_log_t                *log;
};


static char *ngx_acme_event_parse(ngx_conf_t *cf, const char **prog,
    int *timeout_ms);
static char *ngx_acme_event_warning_parse(ngx_conf_t *cf,
    long long *seconds);
static void ngx_acme_event_kick(ngx_acme_events_t *evs);
static void ngx_acme_event_thread(void *data, ngx_log_t *log);
static void ngx_acme_event_done(ngx_event_t *ev);
static int ngx_acme_event_stopping(void *data);


/* ---- configuration ---- */


/* acme_event_command at http{} level */
char *
ngx_acme_event_command_main(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_main_conf_t  *amcf = conf;

    if (amcf->event_command) {
        return "is duplicate";
    }

    return ngx_acme_event_parse(cf, &amcf->event_command,
                                &amcf->event_timeout_ms);
}


/* acme_event_command in an acme_issuer block */
char *
ngx_acme_event_command_issuer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    if (issuer->conf.event_command) {
        return "is duplicate";
    }

    return ngx_acme_event_parse(cf, &issuer->conf.event_command,
                                &issuer->conf.event_timeout_ms);
}


char *
ngx_acme_event_warning_main(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_main_conf_t  *amcf = conf;

    if (amcf->expiry_warning) {
        return "is duplicate";
    }

    return ngx_acme_event_warning_parse(cf, &amcf->expiry_warning);
}


char *
ngx_acme_event_warning_issuer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    if (issuer->conf.expiry_warning) {
        return "is duplicate";
    }

    return ngx_acme_event_warning_parse(cf, &issuer->conf.expiry_warning);
}


/* /path/prog [timeout=TIME]: an absolute path to an executable file, the
 * timeout within the dns_hook's bounds (acme_dns_conf_timeout) */
static char *
ngx_acme_event_parse(ngx_conf_t *cf, const char **prog, int *timeout_ms)
{
    char        err[ACME_ERRLEN];
    ngx_int_t   n;
    ngx_str_t  *value, t;

    value = cf->args->elts;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "timeout=", 8) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"acme_event_command\" (expected "
                               "timeout=TIME)", &value[2]);
            return NGX_CONF_ERROR;
        }

        t.data = value[2].data + 8;
        t.len = value[2].len - 8;

        n = ngx_parse_time(&t, 0);

        if (n == NGX_ERROR) {
            ngx_cpystrn((u_char *) err, (u_char *) "not a time", sizeof(err));

        } else if (acme_dns_conf_timeout(n, err, sizeof(err)) == 0) {
            *timeout_ms = (int) n;
            err[0] = '\0';
        }

        if (err[0]) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid timeout \"%V\" in "
                               "\"acme_event_command\": %s", &value[2], err);
            return NGX_CONF_ERROR;
        }
    }

    /* no ngx_conf_full_name: a relative path is an error, not the prefix's */

    if (acme_run_check((char *) value[1].data, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"acme_event_command\": %s", err);
        return NGX_CONF_ERROR;
    }

    *prog = (char *) value[1].data;

    return NGX_CONF_OK;
}


static char *
ngx_acme_event_warning_parse(ngx_conf_t *cf, long long *seconds)
{
    ngx_int_t   n;
    ngx_str_t  *value;

    value = cf->args->elts;

    n = ngx_parse_time(&value[1], 1);

    if (n == NGX_ERROR || n <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"acme_expiry_warning\" \"%V\" (a time "
                           "above 0, e.g. 7d)", &value[1]);
        return NGX_CONF_ERROR;
    }

    *seconds = n;

    return NGX_CONF_OK;
}


/* ---- emitting (event loop) ---- */


void
ngx_acme_event_emit(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    const char *event, const char *serial, long long not_after,
    const char *last_error, ngx_log_t *log)
{
    acme_event_t        ev;
    ngx_acme_events_t  *evs;
    acme_issuer_conf_t *ic;

    ic = &cert->issuer->conf;

    if (ic->event_command == NULL || amcf->exiting) {
        return;
    }

    evs = amcf->events;

    if (evs == NULL) {
        /* per worker, for its life (a task may still use it at exit) */
        evs = ngx_calloc(sizeof(ngx_acme_events_t), log);
        if (evs == NULL) {
            return;
        }

        evs->task = ngx_thread_task_alloc(ngx_cycle->pool,
                                          sizeof(ngx_acme_events_t *));
        if (evs->task == NULL) {
            ngx_free(evs);
            return;
        }

        *(ngx_acme_events_t **) evs->task->ctx = evs;
        evs->task->handler = ngx_acme_event_thread;
        evs->task->event.handler = ngx_acme_event_done;
        evs->task->event.data = evs;
        evs->amcf = amcf;
        evs->log = amcf->log ? amcf->log : log;
        amcf->events = evs;
    }

    acme_event_make(&ev, ic->event_command, ic->event_timeout_ms, event,
                    (char *) cert->id.data,
                    (const char *const *) cert->names.elts,
                    cert->names.nelts, (char *) cert->issuer->name.data,
                    ic->directory, serial, not_after, last_error);

    if (acme_event_queue_push(&evs->queue, &ev) != 0) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "acme: certificate \"%V\": event \"%s\" dropped: %d "
                      "events are waiting for \"%s\"", &cert->id, event,
                      ACME_EVENT_QUEUE_MAX, ic->event_command);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "acme: certificate \"%V\": event \"%s\"", &cert->id,
                  event);

    ngx_acme_event_kick(evs);
}


/* The slot's served certificate: its facts from the status record. */
void
ngx_acme_event_emit_slot(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    const char *event, const acme_job_status_t *rec, ngx_log_t *log)
{
    ngx_acme_event_emit(amcf, cert, event, rec->serial, rec->not_after,
                        rec->last_error, log);
}


/*
 * The lease holder's tick: "installed" once a bundle was activated in
 * every worker (ngx_acme_shm_activate marks the slot), so that it follows
 * the "issued" / "renewed" this worker queued; "expiring" once a day while
 * the served certificate is inside its warning window
 * (acme_event_expiring), none while a renewed one waits for its notBefore.
 */
void
ngx_acme_event_tick(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    ngx_log_t *log)
{
    ngx_uint_t          emit, installed;
    ngx_acme_slot_t    *slot;
    acme_job_status_t   rec;

    slot = cert->slot;

    if (cert->issuer->conf.event_command == NULL) {
        return;
    }

    ngx_acme_shm_lock(amcf);

    installed = slot->event_installed;
    slot->event_installed = 0;

    emit = slot->bundle != NULL && slot->status.have_cert
           && slot->status.pending_at == 0
           && acme_event_expiring(&slot->events, slot->status.not_before,
                                  slot->status.not_after,
                                  cert->issuer->conf.expiry_warning,
                                  (long long) ngx_time());
    rec = slot->status;

    ngx_acme_shm_unlock(amcf);

    if (installed) {
        ngx_acme_event_emit_slot(amcf, cert, "installed", &rec, log);
    }

    if (emit) {
        ngx_acme_event_emit_slot(amcf, cert, "expiring", &rec, log);
    }
}


static void
ngx_acme_event_kick(ngx_acme_events_t *evs)
{
    if (evs->busy || !acme_event_queue_pop(&evs->queue, &evs->running)) {
        return;
    }

    evs->rc = 0;
    evs->err[0] = '\0';
    evs->out = NULL;

    if (ngx_thread_task_post(evs->amcf->thread_pool, evs->task) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, evs->log, 0,
                      "acme: certificate \"%s\": event \"%s\" dropped: "
                      "cannot post to the thread pool", evs->running.id,
                      evs->running.event);
        return;
    }

    evs->busy = 1;
}


/* Thread pool: the run itself (no nginx pools, no logging). */
static void
ngx_acme_event_thread(void *data, ngx_log_t *log)
{
    ngx_acme_events_t  *evs = *(ngx_acme_events_t **) data;

    acme_run_t  r;

    ngx_memzero(&r, sizeof(acme_run_t));
    r.runner = &ngx_acme_runner;
    r.data = &evs->out;
    r.stop = ngx_acme_event_stopping;
    r.log = ngx_acme_thread_log;

    evs->rc = acme_event_run(&r, &evs->running, evs->err, sizeof(evs->err));
}


/* Event loop: the run's stderr and outcome to the log, then the next. */
static void
ngx_acme_event_done(ngx_event_t *ev)
{
    ngx_acme_events_t  *evs = ev->data;

    evs->busy = 0;

    ngx_acme_thread_log_flush(&evs->out, evs->running.id, evs->log);

    if (evs->rc != 0) {
        ngx_log_error(NGX_LOG_WARN, evs->log, 0,
                      "acme: certificate \"%s\": %s", evs->running.id,
                      evs->err);
    }

    ngx_acme_event_kick(evs);
}


/* a fast shutdown kills a running program; a graceful one lets it end
 * (bounded by its timeout: nginx waits for the pool's tasks) */
static int
ngx_acme_event_stopping(void *data)
{
    return ngx_terminate;
}
