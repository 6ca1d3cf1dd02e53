/*
 * Events: a program the operator configures (nginx acme_event_command,
 * Apache AcmeEventCommand) is run on every change of a managed
 * certificate.  This file decides WHEN, once for both servers (pure; the
 * clock passed in); the hosts only queue the event and run the program
 * off their event loop / ACME work (common/io/acme_event_run.h, through the
 * dns-01 hook's runner, acme_run.h).
 *
 * The program: "prog EVENT ID NAMES..." (no shell), environment
 *   PATH            ACME_PROGRAM_PATH (fixed)
 *   ACME_EVENT      the event, as argv[1]
 *   ACME_ID         the certificate id, as argv[2]
 *   ACME_NAMES      its names, space-separated
 *   ACME_SERIAL     serial of the certificate concerned (hex), or empty
 *   ACME_NOT_AFTER  its notAfter, RFC 3339 (UTC), or empty
 *   ACME_ISSUER     the issuer block's name (nginx acme_issuer, Apache
 *                   <AcmeIssuer>): which CA
 *   ACME_DIRECTORY  that CA's directory URL
 *   ACME_LAST_ERROR the last error of the certificate, or empty
 * Events:
 *   issued    an order gave the first certificate of the id (none was
 *             served or stored before)
 *   renewed   an order gave a certificate replacing one
 *   installed the new certificate is live in every worker (nginx: every
 *             live worker parsed it and it is activated) / child (Apache:
 *             it is in shared memory, which every child's refresh thread
 *             checks every 25 ms)
 *   failed    an order failed (also one whose process died during it,
 *             acme_job_unfinished); at most one per certificate per hour
 *             (ACME_EVENT_FAILED_EVERY; the first failure after a success
 *             always)
 *   expiring  the served certificate is inside its warning window
 *             (acme_status_expiring: expiry_warning / AcmeExpiryWarning,
 *             default the last 10 % of its lifetime) and not renewed;
 *             once a day per certificate (ACME_EVENT_EXPIRING_EVERY)
 *   revoked   the certificate was revoked: the revocation code (not here)
 *             emits it with the revoked certificate's facts, no rate limit:
 *               nginx:  ngx_acme_event_emit(amcf, cert,
 *                           acme_event_revoked(&slot->events), serial,
 *                           not_after, last_error, log)      (event loop)
 *               Apache: acme_auto_event_emit(c, s, acme_event_revoked(NULL),
 *                           serial, not_after, last_error)   (any thread)
 *
 * The hosts' emit functions (ngx_acme.h, mod_acme_auto.h) queue the event
 * (ACME_EVENT_QUEUE_MAX per process, more are dropped with a warning) and
 * return at once; nothing happens without an event command.
 */
#ifndef ACME_EVENT_H
#define ACME_EVENT_H

#include <stddef.h>

#include "acme_util.h"

#define ACME_EVENT_TIMEOUT_MS       30000   /* default run time */
#define ACME_EVENT_FAILED_EVERY     3600    /* s between "failed" runs */
#define ACME_EVENT_EXPIRING_EVERY   86400   /* s between "expiring" runs */
#define ACME_EVENT_QUEUE_MAX        32      /* events waiting per process */
#define ACME_EVENT_NAMES_MAX        2048

/* Per certificate, kept by the host next to its status (nginx: the zone's
 * slot; Apache: the shared memory slot), all zero at first. */
typedef struct {
    long long   failed_at;      /* last "failed" emitted, 0 never */
    long long   expiring_at;    /* last "expiring" emitted, 0 never */
} acme_event_track_t;

/* -- when --------------------------------------------------------------- */

/*
 * An order gave a certificate: "issued" when none was served before
 * (had_cert 0: the fallback or the bridge was), else "renewed".  The
 * rate limits start over (a failure or the warning window of the new
 * certificate is told again).
 */
const char *acme_event_issued(acme_event_track_t *t, int had_cert);

/* An order failed at now: 1 when "failed" is to be emitted (and then
 * recorded), 0 within ACME_EVENT_FAILED_EVERY of the last one. */
int acme_event_failed(acme_event_track_t *t, long long now);

/*
 * The host's periodic look at the served certificate [not_before,
 * not_after) (0: none): 1 when "expiring" is to be emitted (recorded):
 * inside the warning window (acme_status_expiring with warn_window) and no
 * "expiring" for ACME_EVENT_EXPIRING_EVERY.
 */
int acme_event_expiring(acme_event_track_t *t, long long not_before,
    long long not_after, long long warn_window, long long now);

/* "revoked", for the revocation code: no rate limit (t may be NULL). */
const char *acme_event_revoked(acme_event_track_t *t);

/* -- what --------------------------------------------------------------- */

/* One event to run: fixed size, no pointers but prog (the configuration's,
 * which outlives the run). */
typedef struct {
    const char  *prog;                  /* absolute path; NULL: none */
    int          timeout_ms;            /* 0: ACME_EVENT_TIMEOUT_MS */
    char         event[16];
    char         id[128];
    char         names[ACME_EVENT_NAMES_MAX];   /* NUL-separated */
    size_t       n_names;
    char         serial[128];
    long long    not_after;
    char         issuer[128];
    char         directory[512];
    char         last_error[ACME_ERRLEN];
} acme_event_t;

/* ev filled (strings cut to fit; NULL is ""; names that do not fit are
 * left out). */
void acme_event_make(acme_event_t *ev, const char *prog, int timeout_ms,
    const char *event, const char *id, const char *const *names,
    size_t n_names, const char *issuer, const char *directory,
    const char *serial, long long not_after, const char *last_error);

#define ACME_EVENT_ENVP_MAX     10
#define ACME_EVENT_ENV_LEN      (ACME_EVENT_NAMES_MAX + ACME_ERRLEN + 2048)

/*
 * The program's argv ("prog", event, id, names..., NULL: argv has room for
 * ev->n_names + 4) and envp (the variables above, NULL; their text in
 * envbuf).  The pointers point into ev and envbuf.
 */
void acme_event_command(const acme_event_t *ev, char **argv,
    char *envbuf, char *envp[ACME_EVENT_ENVP_MAX]);

/* -- a bounded queue (the host locks it where threads share it) ---------- */

typedef struct {
    acme_event_t    items[ACME_EVENT_QUEUE_MAX];
    size_t          head;
    size_t          n;
} acme_event_queue_t;

/* 0, or -1 when full (the host logs a warning: the event is dropped). */
int acme_event_queue_push(acme_event_queue_t *q, const acme_event_t *ev);
/* 1 with *ev the oldest, 0 when empty. */
int acme_event_queue_pop(acme_event_queue_t *q, acme_event_t *ev);

#endif
