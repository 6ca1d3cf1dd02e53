/*
 * Events (acme_event.h): when each is emitted, what the program gets, the
 * bounded queue.  Pure.
 */
#include <stdio.h>
#include <string.h>

#include "acme_event.h"
#include "acme_status.h"


const char *
acme_event_issued(acme_event_track_t *t, int had_cert)
{
    t->failed_at = 0;
    t->expiring_at = 0;
    return had_cert ? "renewed" : "issued";
}


int
acme_event_failed(acme_event_track_t *t, long long now)
{
    if (t->failed_at != 0 && now >= t->failed_at
        && now - t->failed_at < ACME_EVENT_FAILED_EVERY)
    {
        return 0;
    }
    t->failed_at = now;
    return 1;
}


int
acme_event_expiring(acme_event_track_t *t, long long not_before,
    long long not_after, long long warn_window, long long now)
{
    if (not_after == 0
        || !acme_status_expiring(not_before, not_after, warn_window, now))
    {
        return 0;
    }
    if (t->expiring_at != 0 && now >= t->expiring_at
        && now - t->expiring_at < ACME_EVENT_EXPIRING_EVERY)
    {
        return 0;
    }
    t->expiring_at = now;
    return 1;
}


const char *
acme_event_revoked(acme_event_track_t *t)
{
    (void) t;
    return "revoked";
}


static void
copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}


void
acme_event_make(acme_event_t *ev, const char *prog, int timeout_ms,
    const char *event, const char *id, const char *const *names,
    size_t n_names, const char *issuer, const char *directory,
    const char *serial, long long not_after, const char *last_error)
{
    size_t  i, used = 0, l;

    memset(ev, 0, sizeof(*ev));
    ev->prog = prog;
    ev->timeout_ms = timeout_ms > 0 ? timeout_ms : ACME_EVENT_TIMEOUT_MS;
    copy(ev->event, sizeof(ev->event), event);
    copy(ev->id, sizeof(ev->id), id);
    for (i = 0; i < n_names; i++) {
        l = strlen(names[i]) + 1;
        if (used + l > sizeof(ev->names)) {
            break;
        }
        memcpy(ev->names + used, names[i], l);
        used += l;
        ev->n_names++;
    }
    copy(ev->serial, sizeof(ev->serial), serial);
    ev->not_after = not_after;
    copy(ev->issuer, sizeof(ev->issuer), issuer);
    copy(ev->directory, sizeof(ev->directory), directory);
    copy(ev->last_error, sizeof(ev->last_error), last_error);
}


/* "NAME=value" into buf at *used; the pointer, or NULL when full */
static char *
env(char *buf, size_t *used, const char *name, const char *value)
{
    char   *p = buf + *used;
    size_t  left = ACME_EVENT_ENV_LEN - *used;
    int     n;

    n = snprintf(p, left, "%s=%s", name, value);
    if (n < 0 || (size_t) n >= left) {
        return NULL;
    }
    *used += (size_t) n + 1;
    return p;
}


void
acme_event_command(const acme_event_t *ev, char **argv, char *envbuf,
    char *envp[ACME_EVENT_ENVP_MAX])
{
    char        names[ACME_EVENT_NAMES_MAX], na[32];
    const char *p;
    size_t      i, k = 0, used = 0;

    argv[0] = (char *) ev->prog;
    argv[1] = (char *) ev->event;
    argv[2] = (char *) ev->id;
    names[0] = '\0';
    for (i = 0, p = ev->names; i < ev->n_names; i++, p += strlen(p) + 1) {
        argv[3 + i] = (char *) p;
        if (i > 0) {
            strcat(names, " ");
        }
        strcat(names, p);       /* fits: the same text, spaces for NULs */
    }
    argv[3 + ev->n_names] = NULL;

    na[0] = '\0';
    if (ev->not_after != 0) {
        acme_time_rfc3339(ev->not_after, na, sizeof(na));
    }

    envp[k++] = (char *) ACME_PROGRAM_PATH;
#define ENV(name, value)                                                     \
    if ((envp[k] = env(envbuf, &used, name, value)) != NULL) { k++; }
    ENV("ACME_EVENT", ev->event);
    ENV("ACME_ID", ev->id);
    ENV("ACME_NAMES", names);
    ENV("ACME_SERIAL", ev->serial);
    ENV("ACME_NOT_AFTER", na);
    ENV("ACME_ISSUER", ev->issuer);
    ENV("ACME_DIRECTORY", ev->directory);
    ENV("ACME_LAST_ERROR", ev->last_error);
#undef ENV
    envp[k] = NULL;
}


int
acme_event_queue_push(acme_event_queue_t *q, const acme_event_t *ev)
{
    if (q->n == ACME_EVENT_QUEUE_MAX) {
        return -1;
    }
    q->items[(q->head + q->n) % ACME_EVENT_QUEUE_MAX] = *ev;
    q->n++;
    return 0;
}


int
acme_event_queue_pop(acme_event_queue_t *q, acme_event_t *ev)
{
    if (q->n == 0) {
        return 0;
    }
    *ev = q->items[q->head];
    q->head = (q->head + 1) % ACME_EVENT_QUEUE_MAX;
    q->n--;
    return 1;
}
