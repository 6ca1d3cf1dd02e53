/* Renewal scheduling and failure backoff: pure arithmetic, no clock. */
#ifndef ACME_SCHED_H
#define ACME_SCHED_H

#include <stdint.h>

/* Renewal/backoff state that must survive restarts (the store's
 * state.json: acme_store_load_state / acme_store_save_state). */
typedef struct {
    unsigned    failures;       /* consecutive failed attempts */
    long long   next_attempt;   /* no attempt before this time (backoff); 0 = none */
    long long   last_attempt;
    long long   last_success;
    char        last_error[512];/* "" when none */
    /* an order in progress (acme_sched_attempt_begin): recorded before its
     * first step, cleared when it ends; 0 = none */
    long long   attempt_started;
    long        attempt_pid;    /* the process running it */
    /* the ACME directory URL (as configured) of the order that issued the
     * stored certificate; "" unknown (a store written before it was
     * recorded): see acme_job_issuer_changed */
    char        directory[512];
    /* when the stored certificate was revoked at the CA on request (the
     * status' "revoked"; acme_job_due orders its replacement at once);
     * 0 = not revoked.  Cleared by the next success. */
    long long   revoked;
    /* ARI (RFC 9773, acme_ari.h): the last renewalInfo answer and when to
     * ask again, for the certificate whose ARI identifier is ari_id ("":
     * none asked yet); times 0 = none */
    char        ari_id[128];
    long long   ari_start;      /* suggestedWindow */
    long long   ari_end;
    long long   ari_at;         /* the renewal time chosen in it */
    long long   ari_next_poll;  /* the next renewalInfo fetch */
    long long   ari_last_poll;  /* the last answer (or failure) */
    unsigned    ari_failures;   /* consecutive failed fetches */
    int         ari_unsupported;/* the directory has no renewalInfo */
    char        ari_explanation[256];   /* explanationURL; "" */
    char        ari_error[256]; /* the last fetch's error; "" */
    /* the name of the issuer whose order issued the stored certificate
     * (one of the certificate's list with fallback=, acme_failover.h);
     * "" unknown (a store written before it was recorded: the primary) */
    char        issuer[64];
} acme_cert_state_t;

/* a certificate valid this long or less (seconds) is short-lived */
#define ACME_SCHED_SHORT_LIVED  (10 * 86400LL)

/*
 * When to renew a certificate valid [not_before, not_after): when
 * remaining_fraction of its lifetime is left (when <= 0 or >= 1, i.e. not
 * configured: 1/3, or 1/2 for a lifetime of ACME_SCHED_SHORT_LIVED or less,
 * as Let's Encrypt's 6-day certificates), minus a jitter in [0, min(lifetime/20, 1 day)) derived from rnd
 * so a fleet does not renew in lockstep.
 */
long long acme_sched_renew_at(long long not_before, long long not_after,
    double remaining_fraction, uint32_t rnd);

/* rnd mapped uniformly onto [0, n): the jitter of every schedule; 0 when
 * n <= 0. */
long long acme_sched_scale(uint32_t rnd, long long n);

/*
 * Earliest next attempt after the failures-th consecutive failure at now:
 * 1 min, 10 min, 100 min, then daily, each +-10 % jitter from rnd, and never
 * before retry_after (a unix time from the CA's Retry-After; 0 = none).
 */
long long acme_sched_backoff(unsigned failures, long long now,
    long long retry_after, uint32_t rnd);
/* The same with the first step `first` seconds (<= 0: 60): then 10 and
 * 100 times it, from the fourth failure a day; no step above a day. */
long long acme_sched_backoff_from(long long first, unsigned failures,
    long long now, long long retry_after, uint32_t rnd);

/* Parses a Retry-After header value (RFC 9110: delay-seconds, digits only,
 * or an HTTP-date; surrounding SP/HTAB allowed, nothing else) into a
 * unix time relative to now; 0 if absent or invalid; capped at now + 7 days
 * so a bogus value cannot park a certificate forever. */
long long acme_sched_parse_retry_after(const char *value, long long now);

/*
 * Attempt records, so that a process dying during an order counts as a
 * failed attempt (with backoff) instead of letting the next process order
 * again at once.  A driver calls acme_sched_attempt_begin and persists the
 * state before the order's first step; acme_sched_attempt_end clears the
 * record when the order ends, before the result (success or failure) is
 * persisted.  A graceful stop ends the attempt without counting it.
 */
void acme_sched_attempt_begin(acme_cert_state_t *st, long long now, long pid);
void acme_sched_attempt_end(acme_cert_state_t *st);

#define ACME_SCHED_UNFINISHED \
    "the previous attempt did not finish (worker crash?)"

/*
 * The policy for a record found by a driver with no order of its own
 * running for that certificate (at start, after taking over): when there is
 * one and its process is gone (owner_alive 0), the attempt died with it and
 * counts as a failure: failures + 1, last_attempt = its start, next_attempt
 * from acme_sched_backoff, last_error ACME_SCHED_UNFINISHED, record
 * cleared; returns 1 (the caller logs and persists st).  Returns 0 and
 * leaves st alone when there is no record or its process still runs (a
 * driver paused past its lease, an old generation finishing during a
 * graceful restart): that attempt is not over, the caller's own next
 * attempt replaces the record.
 */
int acme_sched_attempt_unfinished(acme_cert_state_t *st, long long now,
    int owner_alive, uint32_t rnd);

/*
 * An issued certificate whose bundle the store refused (read-only file
 * system, disk full, EACCES) is served from memory and written again
 * later; no new order is started for it.  The earliest next write after
 * the tries-th consecutive failed one at now: 10 s, 20 s, 40 s, ... at
 * most ACME_SCHED_UNSAVED_MAX (0 tries counts as 1).
 */
#define ACME_SCHED_UNSAVED_FIRST  10
#define ACME_SCHED_UNSAVED_MAX    600

long long acme_sched_unsaved_retry(unsigned tries, long long now);

#endif
