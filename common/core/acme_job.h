/*
 * The renewal policy of a managed certificate, the same for both servers:
 * when an order is due and why, which challenge type an attempt uses,
 * when two orders must not run at once (tls-alpn-01), what a failure and a
 * success change (persisted state, backoff with jitter, status record), and
 * the status record both servers keep in shared memory.
 *
 * Pure functions over plain structs: no I/O, no clock (now is passed in),
 * no randomness (the jitter derives from a per-certificate seed, see
 * acme_job_seed).  The adapters keep only their plumbing: locks, shared
 * memory, logs, threads, store writes.
 */
#ifndef ACME_JOB_H
#define ACME_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "acme_sched.h"
#include "acme_status.h"

/* The default first backoff step (retry_delay / AcmeRetryDelay), seconds. */
#define ACME_JOB_RETRY_DELAY    60
/* The default clock difference allowed to a CA (clock_skew /
 * AcmeClockSkew), seconds: see acme_job_activate_at. */
#define ACME_JOB_CLOCK_SKEW     60

/* -- jitter -------------------------------------------------------------- */

/*
 * The one seeding rule of both servers: a certificate's seed is a hash of
 * its id (FNV-1a), so its renewal time stays put across restarts and
 * reloads and is the same whichever server or process computes it.  The
 * jitter of one decision is acme_job_jitter(seed, salt): the renewal time
 * uses the certificate's notAfter as salt (a new certificate, a new
 * draw), a backoff the time of the failure.
 */
uint32_t acme_job_seed(const char *id);
uint32_t acme_job_jitter(uint32_t seed, long long salt);

/* -- when -------------------------------------------------------------- */

typedef enum {
    ACME_JOB_NO_CERT = 0,       /* nothing served yet */
    ACME_JOB_NAMES_CHANGED,     /* the certificate's names are not the config's */
    ACME_JOB_ISSUER_CHANGED,    /* another directory URL issued it */
    ACME_JOB_KEY_CHANGED,       /* its key is not of the configured type */
    ACME_JOB_RENEW,             /* the renewal window is reached */
    ACME_JOB_BACKOFF,           /* a failure's backoff ends at the due time */
    ACME_JOB_LOADING,           /* a new bundle is not parsed yet: wait */
    ACME_JOB_FORCED,            /* asked for at the status location
                                   (acme_control.h) or a reload found the
                                   store's entry deleted */
    ACME_JOB_REVOKED,           /* the served certificate was revoked */
    ACME_JOB_ARI                /* the time the CA's renewalInfo window
                                   gave (acme_ari.h) is reached */
} acme_job_reason_t;

/* What the host knows of the certificate it serves. */
typedef struct {
    int         have_cert;      /* a bundle is served (shared memory) */
    int         loaded;         /* its facts below are known (parsed) */
    int         names_ok;       /* its names are the configured ones */
    long long   not_before;
    long long   not_after;
    double      renew_fraction; /* renew with this share of the lifetime left */
    uint32_t    seed;           /* acme_job_seed(id) */
    /* a certificate our order issued waits for its activation
     * (acme_job_activate_at); 0 = none */
    long long   pending_not_before;
    long long   pending_not_after;
    /* the issuer's directory URL as configured now (NULL: not compared),
     * against the state's record of the one that issued the certificate */
    const char *directory;
    /* the directory URLs of the certificate's fallback issuers
     * (acme_failover.h): a certificate one of them issued is no changed
     * CA either; n_fallback_dirs 0: none */
    const char *const *fallback_dirs;
    size_t      n_fallback_dirs;
    /* its key is of another type than the configured one (a key type
     * changed: the certificate it replaces is served meanwhile, see
     * acme_job_store_load_replaced; acme_cert_info_key_other) */
    int         key_changed;
    /* a renew or revoke request is pending (acme_control_pending): due at
     * once, the renewal window and the backoff ignored */
    int         forced;
    /* the served certificate's ARI identifier (acme_ari_cert_id); NULL
     * or "": none (no renewalInfo answer applies) */
    const char *ari_id;
} acme_job_facts_t;

/*
 * The earliest time of the next order (0: at once) and why.  With no
 * certificate, a certificate issued by another directory URL than the
 * configured one (st->directory set and not facts->directory: a changed
 * CA; an empty st->directory, a store from before the record, is taken as
 * the configured CA's), a key of another type (facts->key_changed) or
 * other names the order is due at once, while the
 * served certificate stays until the new one is installed; otherwise at the
 * renewal time (acme_sched_renew_at, or while st holds a renewalInfo
 * answer for the served certificate, facts->ari_id, the time chosen in
 * its window: ACME_JOB_ARI, when before notAfter); never before st->next_attempt (the
 * backoff of the last failure; then the reason is ACME_JOB_BACKOFF).
 *
 * A bundle served but not yet parsed (facts->loaded 0; nginx: a worker
 * has not parsed a bundle another one installed) gives ACME_JOB_LOADING
 * and *at 0: no order, the host decides again once it is parsed and keeps
 * the status' next_renewal as it was.  Waiting is the one rule for both
 * servers because without the parsed certificate neither its names nor
 * its validity are known: deciding anyway would order again the
 * certificate that was just installed (the names of an unknown
 * certificate are not the configured ones).  Apache parses a bundle when
 * it installs it, so it never waits.
 *
 * A request (facts->forced) is due at once, whatever the window and the
 * backoff say (ACME_JOB_FORCED; a bundle not parsed yet still waits).  A
 * served certificate revoked on request (st->revoked) is replaced at once
 * (ACME_JOB_REVOKED), after the backoff of a failed replacement.
 *
 * A pending certificate (facts->pending_not_after set: issued for the
 * configured names, not served yet) is the one renewed: the renewal time
 * is its own, so the order that produced it is not repeated.
 */
acme_job_reason_t acme_job_due(const acme_job_facts_t *facts,
    const acme_cert_state_t *st, long long *at);
/* The pending certificate is served now: it becomes the facts'
 * certificate (loaded, names ok: our order's), none pending. */
void acme_job_facts_activate(acme_job_facts_t *f);
/* "no certificate yet", ..., for logs. */
const char *acme_job_reason_text(acme_job_reason_t why);

/* 1 when st records a directory URL that is not directory (a certificate
 * of another CA); 0 when they match, or either is unknown (NULL, ""). */
int acme_job_issuer_changed(const acme_cert_state_t *st,
    const char *directory);

/*
 * Why the served certificate no longer matches the configuration, for the
 * status' "reason": "issuer changed", "key type changed", "names changed"
 * (the first that applies), or NULL when it
 * matches (or nothing is served, or it is not parsed yet).  Unlike
 * acme_job_due's reason it does not turn into "backoff" after a failure:
 * the certificate still has to be replaced.
 */
const char *acme_job_change(const acme_job_facts_t *facts,
    const acme_cert_state_t *st);

/* -- how many at once ---------------------------------------------------- */

/* The default and the range of an issuer's orders in flight at once
 * (max_orders / AcmeMaxOrders). */
#define ACME_JOB_MAX_ORDERS     8
#define ACME_JOB_MAX_ORDERS_MAX 64

/*
 * One certificate as the pipeline sees it.  The host fills the inputs
 * each tick; acme_job_pipeline sets start.
 */
typedef struct {
    const void *issuer;         /* the issuer's identity (any pointer) */
    unsigned    max_orders;     /* that issuer's cap (0: the default) */
    int         running;        /* a job of this certificate runs */
    int         due;            /* not running, and may start now */
    int         have_cert;      /* a certificate is served */
    long long   not_after;      /* the served one's (when have_cert) */
    long long   issuer_pause;   /* no order of the issuer before this
                                   (acme_job_issuer_pause); 0 none */
    int         start;          /* out: start its order now */
} acme_job_pipe_t;

/*
 * Which due certificates start now: at most max_orders jobs of one issuer
 * in flight (the running ones count) and none while the issuer is paused
 * (issuer_pause after now), the most urgent first: no
 * certificate yet (a placeholder is served), then an expired one, then
 * the one expiring soonest; equal ones in array order.  Sets start on
 * each of the n entries and returns how many start.  The host starts
 * them this tick; the others wait for a later one (due is cleared on
 * those of an issuer that is full).
 */
size_t acme_job_pipeline(acme_job_pipe_t *c, size_t n, long long now);

/*
 * An order of an issuer failed at now on a CA answer with a Retry-After
 * (retry_after, 0 none; RFC 8555 section 6.6: rateLimited, also a 503):
 * the CA limits the account, not the one certificate, so no order of that
 * issuer starts before it.  Returns the issuer's pause end (the later of
 * pause, the current one, and retry_after when ahead of now).
 */
long long acme_job_issuer_pause(long long pause, long long retry_after,
    long long now);

/* -- when a new certificate is served -------------------------------- */

/*
 * A certificate issued (or found in the store at startup) valid
 * [not_before, not_after) replaces the one served (valid until
 * current_not_after; have_current 0: none) at the time returned: 0 = at
 * once.  At once when not_before - skew <= now (skew < 0: the default,
 * ACME_JOB_CLOCK_SKEW), when nothing is served, or when the served one has
 * expired; else at the earlier of not_before - skew and current_not_after
 * (once the served certificate has expired the new one is no worse).
 */
long long acme_job_activate_at(long long not_before, int have_current,
    long long current_not_after, long long now, long long skew);

/*
 * The warning a pending certificate gets, once, for the host's error log:
 * "the new certificate (serial S) is not valid before T (N s ahead of
 * this server's clock); served from A".  Returns buf.
 */
const char *acme_job_pending_text(const char *serial, long long not_before,
    long long now, long long at, char *buf, size_t len);

/* -- which challenge --------------------------------------------------- */

#define ACME_JOB_CHALLENGES_MAX 3

/*
 * The challenge type of the attempt after `failures` consecutive failures:
 * types[failures % n] (the configured list rotates after each failure);
 * "http-01" when n is 0.
 */
const char *acme_job_challenge(const char *const *types, size_t n,
    unsigned failures);
/* The type of the last attempt: that of failures - 1, types[0] when 0. */
const char *acme_job_last_challenge(const char *const *types, size_t n,
    unsigned failures);
/* 1 when type is in the list (some attempt may use it), else 0. */
int acme_job_challenges_has(const char *const *types, size_t n,
    const char *type);

/*
 * Parses a per-certificate or per-issuer challenge list: "http-01",
 * "tls-alpn-01", "dns-01", comma-separated ("http-01,tls-alpn-01"), in any
 * case, with nginx-acme's "http" and "tls-alpn" for the first two;
 * adds to types/n (at most ACME_JOB_CHALLENGES_MAX, no repeats).  The
 * names stored are static strings.  0, or -1 with err naming the bad item.
 */
int acme_job_challenges_parse(const char *list, const char **types,
    size_t *n, char *err, size_t errlen);

/*
 * tls-alpn-01 answers one challenge per name at a time (the CA connects
 * with only the SNI): an order whose next attempt uses tls-alpn-01 waits
 * while another order runs a tls-alpn-01 attempt for a name they share.
 * Names compare case-insensitively (DNS names are).  1 = wait.
 */
int acme_job_alpn_conflict(const char *type, const char *const *names,
    size_t n_names, const char *other_type, const char *const *other_names,
    size_t other_n);

/* -- what an attempt changes ------------------------------------------ */

/*
 * Backoff policy: the first step is retry_delay seconds (<= 0: the
 * default, ACME_JOB_RETRY_DELAY); the second and third are 10 and 100
 * times it; from the fourth a day; every step at most a day, +-10 %
 * jitter, and never before the CA's Retry-After (retry_after, 0 = none).
 */
long long acme_job_backoff(unsigned failures, long long now,
    long long retry_after, long long retry_delay, uint32_t seed);

/*
 * An attempt of challenge `type` failed at now with msg: the attempt
 * record ends, failures + 1, last_attempt now, next_attempt from
 * acme_job_backoff, last_error "<type>: <msg>" (msg kept as is when it
 * already starts with the type).
 */
void acme_job_failed(acme_cert_state_t *st, const char *type,
    const char *msg, long long now, long long retry_after,
    long long retry_delay, uint32_t seed);

/* An attempt succeeded at now: failures 0, no backoff, last_success now,
 * no error, not revoked, the record ends; the certificate was issued by directory (the
 * issuer's directory URL as configured; NULL: recorded as unknown), the
 * issuer block named issuer (NULL: unknown; with fallback= the one of the
 * list this attempt used). */
void acme_job_succeeded(acme_cert_state_t *st, long long now,
    const char *directory, const char *issuer);

/*
 * An attempt record left by a process that is gone (see
 * acme_sched_attempt_unfinished): counted as a failure of the type that
 * attempt used (types as for acme_job_challenge), with backoff.  Returns 1
 * when it counted one (the caller logs and persists st), else 0.
 */
int acme_job_unfinished(acme_cert_state_t *st, const char *const *types,
    size_t n_types, long long now, int owner_alive, long long retry_delay,
    uint32_t seed);

/* -- the status record ------------------------------------------------ */

/*
 * Orders this server finished for a certificate since it started (nginx:
 * since the shared zone was made, reloads included; Apache: since the last
 * restart, graceful ones included), counted by acme_job_status_ordered.
 */
typedef struct {
    unsigned long long  valid;      /* a certificate was issued */
    unsigned long long  invalid;    /* the order failed (a counted failure) */
    unsigned long long  renewals;   /* valid ones that replaced a certificate */
} acme_job_orders_t;

/*
 * What the status shows of a certificate, kept by both servers in shared
 * memory (fixed size, no pointers: copied with memcpy).  It holds facts,
 * the state is derived when read (acme_job_status_view), so "expired"
 * follows the clock without a writer.
 */
typedef struct {
    int         have_cert;      /* a certificate is served */
    long long   not_before;
    long long   not_after;
    char        serial[80];
    char        ca_issuer[256];
    char        spki_pin[48];   /* acme_key_spki_pin of its key; "" */
    int         renewing;       /* an order runs */
    char        step[32];       /* its step; "" none */
    char        challenge[16];  /* type of the current or last attempt; "" */
    long long   next_renewal;   /* 0 = unknown */
    long long   last_success;
    unsigned    failures;
    char        last_error[512];
    char        store_error[256];
    /* a certificate issued, stored, waiting to be served from pending_at
     * (acme_job_activate_at); pending_at 0 = none */
    long long   pending_at;
    long long   pending_not_before;
    long long   pending_not_after;
    char        pending_serial[80];
    char        pending_ca_issuer[256];
    char        pending_spki_pin[48];
    /* why the served certificate is replaced at once (acme_job_change):
     * "issuer changed", "key type changed", "names changed"; "" none */
    char        reason[32];
    /* orders finished since the start (status "orders", "renewals") */
    acme_job_orders_t orders;
    /* the served certificate was revoked on request (st->revoked): the
     * state is "revoked" until its replacement is served */
    int         revoked;
    /* key_rollover: the SPKI pin of the stored next.key, the key of the
     * next certificate (acme_job_next_t); "" none */
    char        next_spki_pin[48];
    /* ARI (RFC 9773): the state's record for the served certificate
     * (acme_job_status_ari); ari_next_poll 0 = none */
    long long   ari_start;
    long long   ari_end;
    long long   ari_at;
    long long   ari_next_poll;
    int         ari_unsupported;
    char        ari_explanation[256];
    char        ari_error[256];
    /* the issuer block that issued the served certificate (st->issuer,
     * acme_job_status_end): the status' "issuer"; "" the primary */
    char        issued_by[64];
    /* the shared store (issue 15): what this node did last for the
     * certificate (acme_fleet_action_name) and, while another node orders
     * it, that node; "" none (acme_job_status_fleet) */
    char        fleet_action[16];
    char        fleet_holder[128];
} acme_job_status_t;

/* Certificate facts into the record (serial, CA issuer, validity, the
 * SPKI pin of its key: acme_cert_info_t's, computed once per certificate
 * when it is parsed; NULL or "": unknown). */
void acme_job_status_set_cert(acme_job_status_t *rec, long long not_before,
    long long not_after, const char *serial, const char *ca_issuer,
    const char *spki_pin);
/* key_rollover: the pin of the stored next key (NULL or "": none). */
void acme_job_status_set_next_pin(acme_job_status_t *rec, const char *pin);
/* A certificate waits to be served from at (0: none waits any more). */
void acme_job_status_set_pending(acme_job_status_t *rec, long long at,
    long long not_before, long long not_after, const char *serial,
    const char *ca_issuer, const char *spki_pin);
/* The pending certificate is served now: its facts become the record's
 * certificate (acme_job_status_set_cert), none pending. */
void acme_job_status_activate(acme_job_status_t *rec);
/* The record's reason (acme_job_change; NULL: none). */
void acme_job_status_set_reason(acme_job_status_t *rec, const char *reason);
/* The shared store's decision for the certificate (action, holder: NULL
 * or "" none). */
void acme_job_status_fleet(acme_job_status_t *rec, const char *action,
    const char *holder);
/* An attempt of type starts: renewing, step, challenge. */
void acme_job_status_begin(acme_job_status_t *rec, const char *type,
    const char *step);
/* The order ended (either way): the record takes failures, last_error,
 * last_success, revoked, issued_by (st->issuer) from st and next_renewal (the next acme_job_due). */
void acme_job_status_end(acme_job_status_t *rec, const acme_cert_state_t *st,
    long long next_renewal);

/* The ARI record of st into rec when it is for the served certificate
 * (its ARI identifier id), else none. */
void acme_job_status_ari(acme_job_status_t *rec, const acme_cert_state_t *st,
    const char *id);

/*
 * An order this server ran ended: valid (a certificate was issued) or not
 * (a failure counted by acme_job_failed).  A valid one is a renewal too
 * when a certificate of this module was served when it ended (replaced:
 * nginx a bundle in the zone, Apache the record's have_cert; the bridge and
 * the placeholder are no such certificate).  The one place the counters
 * (rec->orders) change.
 */
void acme_job_status_ordered(acme_job_status_t *rec, int valid, int replaced);

/*
 * The order's first step revoked the served certificate at now (engine
 * ACME_ACT_REVOKED): st->revoked now and rec->revoked (NULL: not kept),
 * until the replacement succeeds.
 */
void acme_job_revoked(acme_cert_state_t *st, acme_job_status_t *rec,
    long long now);

/*
 * The record as acme_status_render wants it: state "revoked" while the
 * served certificate is a revoked one (an order may run to replace it),
 * else "renewing" while an order runs, else "valid"/"expired" (by
 * not_after and now) with a certificate, "failed" without one after failures, else "fallback"; step
 * only while renewing; challenge the record's, or when it has none the
 * type of the last attempt by the certificate's list (types, n_types, as
 * acme_job_last_challenge); the pending certificate, if any; the order
 * counters.  Sets the
 * fields the record has; id, names,
 * issuer, directory, key_type are the caller's.  The strings point into
 * rec or types.
 */
void acme_job_status_view(const acme_job_status_t *rec, long long now,
    const char *const *types, size_t n_types, acme_status_cert_t *out);

/* -- the bridge: the certificate the server had before ----------------- */

/*
 * A certificate configured next to the managed one (nginx ssl_certificate,
 * Apache SSLCertificateFile, e.g. certbot's) is served instead of the
 * placeholder until the first managed certificate is, and never again
 * once one is (a stored one included).  What the status shows of it:
 */
typedef struct {
    char        file[512];      /* as configured; "" = no bridge */
    char        serial[80];
    long long   not_before;
    long long   not_after;
} acme_job_bridge_t;

/* b from the first certificate of pem, read from file. 0, or -1 with err
 * (b then names file, with no serial). */
int acme_job_bridge_from_pem(acme_job_bridge_t *b, const char *file,
    const char *pem, size_t len, char *err, size_t errlen);

/* out's "bridge" is b while rec has no certificate served (the bridge is
 * served), else none; b NULL or without file: none. */
void acme_job_status_bridge(const acme_job_status_t *rec,
    const acme_job_bridge_t *b, acme_status_cert_t *out);

/* The line both servers log (notice) once, when the first managed
 * certificate (serial) is served in place of the bridge b.  Returns buf. */
const char *acme_job_bridge_retired_text(const acme_job_bridge_t *b,
    const char *serial, char *buf, size_t len);

/* -- an order's end in the store ---------------------------------------- */

/*
 * The store's part is acme_job_store.h (blocking, thread only); what it
 * leaves for the host is here, pure.  A bundle the store refuses is
 * served from memory all the same and written again later, at the times
 * of acme_sched_unsaved_retry, with no new order; a state.json it refuses
 * is kept in memory and written again the same way.  The host keeps the
 * served bundle, the state and the write schedule (tries, at) next to its
 * status record, and logs the line these functions word at the level they
 * return (no logging here).
 */

/* Log levels of the lines below: syslog's numbers, which are Apache's
 * APLOG_*; nginx's NGX_LOG_* are one more. */
#define ACME_JOB_LOG_ERR        3
#define ACME_JOB_LOG_WARN       4
#define ACME_JOB_LOG_NOTICE     5

/* What acme_job_store_issued wrote. */
#define ACME_JOB_STORED         0   /* bundle.pem and state.json */
#define ACME_JOB_STATE_UNSAVED  1   /* bundle.pem; state.json refused */
#define ACME_JOB_BUNDLE_UNSAVED 2   /* nothing: bundle.pem refused */

/*
 * After acme_job_store_issued returned stored (ACME_JOB_*; err its
 * message) at now, for the certificate stored below root as id:
 *   *tries, *at        the write schedule: with something unsaved 1 and
 *                      acme_sched_unsaved_retry(1, now), else 0 and 0
 *                      (*at 0: nothing unsaved)
 *   rec->store_error   "" when all is stored, else "issued certificate
 *                      not stored, served from memory only: <err>" or
 *                      "renewal state not stored, kept in memory: <err>"
 *   msg                the line to log ("" none), at the level returned
 */
int acme_job_issued_saved(int stored, const char *err, const char *root,
    const char *id, long long now, unsigned *tries, long long *at,
    acme_job_status_t *rec, char *msg, size_t msglen);

/*
 * After acme_job_store_resave returned rc (err its message) at now: when
 * stored, *tries and *at 0 and rec->store_error ""; else one more try,
 * the next write at acme_sched_unsaved_retry(*tries, now) and the
 * store_error of an unsaved bundle.  msg the line to log at the level
 * returned.
 */
int acme_job_resaved(int rc, const char *err, const char *root,
    const char *id, long long now, unsigned *tries, long long *at,
    acme_job_status_t *rec, char *msg, size_t msglen);

/*
 * A counted failure (acme_job_failed, acme_job_unfinished) for the log:
 * "<last_error>; <N> consecutive failure(s), next attempt at <RFC 3339>".
 * Returns buf.
 */
const char *acme_job_failure_text(const acme_cert_state_t *st, char *buf,
    size_t len);

#endif
