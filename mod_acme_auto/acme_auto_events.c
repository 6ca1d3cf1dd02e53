/*
 * The event program (AcmeEventCommand; common/core/acme_event.h decides
 * when and what, common/io/acme_event_run.h runs it through the dns-01
 * hook's runner).  Events come from the driving child (its job threads and
 * its watchdog thread); each is queued (a bounded acme_event_queue_t under
 * a mutex, full: dropped with a warning) and run by a thread of its own,
 * started at the first event, one program at a time: a program that hangs
 * until its timeout never holds up an order, the watchdog or a request.
 * The rate limits live in the shared memory slot (acme_auto_shm_events),
 * so a new driving child keeps them.
 *
 * "installed" is emitted when the certificate is put into shared memory:
 * every child's refresh thread takes it from there within 25 ms
 * (acme_auto_ssl.c); the children do not report back.
 */
#include <string.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_event.h"
#include "acme_event_run.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

static pthread_mutex_t      ev_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t       ev_cv = PTHREAD_COND_INITIALIZER;
static acme_event_queue_t  *ev_queue;       /* malloc'd at the first event */
static pthread_t            ev_thread;
static int                  ev_started;
static int                  ev_stop;        /* under ev_mu; atomic reads */
static server_rec          *ev_server;

static int
ev_stopping(void *data)
{
    (void) data;
    return __atomic_load_n(&ev_stop, __ATOMIC_ACQUIRE);
}

static void
ev_log(void *data, int level, const char *msg)
{
    acme_event_t *ev = data;

    ap_log_error(APLOG_MARK, level == ACME_RUN_LOG_WARN ? APLOG_WARNING
                 : APLOG_INFO, 0, ev_server, "mod_acme_auto: %s: %s", ev->id,
                 msg);
}

static void *
ev_main(void *arg)
{
    acme_event_t *ev;
    acme_run_t    r;
    char          err[ACME_ERRLEN];

    (void) arg;
    ev = malloc(sizeof(*ev));
    if (ev == NULL) {
        return NULL;
    }
    for ( ;; ) {
        pthread_mutex_lock(&ev_mu);
        while (!ev_stop && ev_queue->n == 0) {
            pthread_cond_wait(&ev_cv, &ev_mu);
        }
        if (ev_stop) {
            pthread_mutex_unlock(&ev_mu);
            break;
        }
        acme_event_queue_pop(ev_queue, ev);
        pthread_mutex_unlock(&ev_mu);

        memset(&r, 0, sizeof(r));
        r.runner = &acme_runner_posix;
        r.data = ev;
        r.stop = ev_stopping;
        r.log = ev_log;
        if (acme_event_run(&r, ev, err, sizeof(err)) != 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ev_server,
                         "mod_acme_auto: %s: %s", ev->id, err);
        }
    }
    free(ev);
    return NULL;
}

void
acme_auto_event_emit(acme_auto_cert_t *c, server_rec *s, const char *event,
    const char *serial, long long not_after, const char *last_error)
{
    acme_issuer_conf_t *ic = &c->issuer->conf;
    acme_event_t       *ev;
    int                 rc = -1, full = 0;

    if (ic->event_command == NULL) {
        return;
    }
    ev = malloc(sizeof(*ev));
    if (ev == NULL) {
        return;
    }
    acme_event_make(ev, ic->event_command, ic->event_timeout_ms, event,
                    c->id, c->names, (size_t) c->n_names, ic->name,
                    ic->directory, serial, not_after, last_error);

    pthread_mutex_lock(&ev_mu);
    if (!ev_stop) {
        if (ev_queue == NULL) {
            ev_queue = calloc(1, sizeof(*ev_queue));
        }
        if (ev_queue != NULL && !ev_started) {
            ev_server = s;
            if (acme_auto_thread_create(&ev_thread, ev_main, NULL) == 0) {
                ev_started = 1;
            }
        }
        if (ev_queue != NULL && ev_started) {
            rc = acme_event_queue_push(ev_queue, ev);
            full = rc != 0;
            pthread_cond_signal(&ev_cv);
        }
    }
    pthread_mutex_unlock(&ev_mu);

    if (full) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: %s: "
                     "event \"%s\" dropped: %d events are waiting for %s",
                     c->id, event, ACME_EVENT_QUEUE_MAX, ic->event_command);
    }
    else if (rc == 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "mod_acme_auto: %s: event "
                     "\"%s\"", c->id, event);
    }
    free(ev);
}

void
acme_auto_event_emit_status(acme_auto_cert_t *c, server_rec *s,
    const char *event, const acme_auto_slot_status_t *st)
{
    acme_auto_event_emit(c, s, event, st->serial, st->not_after,
                         st->last_error);
}

/* -- the decisions, on the shared memory slot's record ------------------- */

typedef struct {
    int                 had_cert;
    const char         *event;
    long long           now;
    long long           not_before;
    long long           not_after;
    long long           warn;
} decide_t;

static int
decide_issued(acme_event_track_t *t, void *arg)
{
    decide_t *d = arg;

    d->event = acme_event_issued(t, d->had_cert);
    return 1;
}

static int
decide_failed(acme_event_track_t *t, void *arg)
{
    return acme_event_failed(t, ((decide_t *) arg)->now);
}

static int
decide_expiring(acme_event_track_t *t, void *arg)
{
    decide_t *d = arg;

    return acme_event_expiring(t, d->not_before, d->not_after, d->warn,
                               d->now);
}

void
acme_auto_event_issued(acme_auto_cert_t *c, server_rec *s, int had_cert,
    const acme_auto_slot_status_t *st)
{
    decide_t d;

    memset(&d, 0, sizeof(d));
    d.had_cert = had_cert;
    if (acme_auto_shm_events(c->slot, decide_issued, &d) && d.event) {
        acme_auto_event_emit_status(c, s, d.event, st);
    }
}

void
acme_auto_event_failed(acme_auto_cert_t *c, server_rec *s,
    const acme_auto_slot_status_t *st)
{
    decide_t d;

    if (c->issuer->conf.event_command == NULL) {
        return;
    }
    memset(&d, 0, sizeof(d));
    d.now = (long long) time(NULL);
    if (acme_auto_shm_events(c->slot, decide_failed, &d)) {
        acme_auto_event_emit_status(c, s, "failed", st);
    }
}

void
acme_auto_event_tick(acme_auto_cert_t *c, server_rec *s)
{
    acme_auto_slot_status_t st;
    decide_t                d;

    if (c->issuer->conf.event_command == NULL
        || acme_auto_shm_get_status(c->slot, &st) != 0
        || !st.have_cert || st.pending_at != 0)
    {
        return;
    }
    memset(&d, 0, sizeof(d));
    d.now = (long long) time(NULL);
    d.not_before = st.not_before;
    d.not_after = st.not_after;
    d.warn = c->issuer->conf.expiry_warning;
    if (acme_auto_shm_events(c->slot, decide_expiring, &d)) {
        acme_auto_event_emit_status(c, s, "expiring", &st);
    }
}

/* -- the child's exit ----------------------------------------------------- */

static apr_status_t
events_child_exit(void *data)
{
    int started;

    (void) data;
    pthread_mutex_lock(&ev_mu);
    __atomic_store_n(&ev_stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&ev_cv);
    started = ev_started;
    ev_started = 0;
    if (ev_queue != NULL && ev_queue->n > 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ev_server, "mod_acme_auto:"
                     " pid %ld exits with %d event(s) not run",
                     (long) getpid(), (int) ev_queue->n);
    }
    pthread_mutex_unlock(&ev_mu);
    /* a running program is killed within 200 ms (acme_run's stop) */
    if (started) {
        pthread_join(ev_thread, NULL);
    }
    return APR_SUCCESS;
}

void
acme_auto_events_child_init(apr_pool_t *pchild)
{
    apr_pool_cleanup_register(pchild, NULL, events_child_exit,
                              apr_pool_cleanup_null);
}
