/*
 * Issuer failover: one certificate ordered from a list of issuers (nginx
 * "acme_certificate primary ... fallback=second[,third]", Apache
 * "AcmeCertificate primary ... fallback=second[,third]").  The same for both
 * servers:
 *
 *   - after `after` consecutive failed attempts at one issuer (default
 *     ACME_FAILOVER_AFTER; fallback_after=N) the next attempt uses the next
 *     issuer of the list, after the last one the first again;
 *   - a success resets the count (acme_job_succeeded), so the next renewal
 *     starts at the first issuer (the primary) again;
 *   - the choice derives from the state's consecutive failures only, so a
 *     restart keeps it (state.json), and the state records which issuer
 *     issued the stored certificate (acme_cert_state_t's issuer).
 *
 * The certificate stays stored under the primary issuer's store and id;
 * an order at another issuer uses that issuer's account (its store, EAB,
 * contacts), directory, CA trust, profile and preferred chain.  Pure.
 */
#ifndef ACME_FAILOVER_H
#define ACME_FAILOVER_H

#include <stddef.h>

/* issuers of one certificate: the primary and at most 3 fallbacks */
#define ACME_FAILOVER_MAX       4
/* the default count of failed attempts at one issuer before the next */
#define ACME_FAILOVER_AFTER     3
#define ACME_FAILOVER_AFTER_MAX 100
/* an issuer name's room, NUL included (acme_cert_state_t's issuer) */
#define ACME_FAILOVER_NAME      64

/* A certificate's fallback= and fallback_after= as configured. */
typedef struct {
    char        names[ACME_FAILOVER_MAX - 1][ACME_FAILOVER_NAME];
    size_t      n;              /* 0: no failover */
    unsigned    after;          /* 0: not given (ACME_FAILOVER_AFTER) */
} acme_failover_conf_t;

/*
 * Parses the value of fallback= (len bytes, not NUL-terminated): issuer
 * names separated by ',', no empty one, no repeat, at most
 * ACME_FAILOVER_MAX - 1, each shorter than ACME_FAILOVER_NAME.  Replaces
 * f's list.  0, or -1 with the reason in err.
 */
int acme_failover_parse(acme_failover_conf_t *f, const char *list,
    size_t len, char *err, size_t errlen);

/* The value of fallback_after= (1 to ACME_FAILOVER_AFTER_MAX). 0 or -1. */
int acme_failover_parse_after(acme_failover_conf_t *f, const char *arg,
    size_t len, char *err, size_t errlen);

/*
 * The whole setting against the primary issuer's name: a fallback that is
 * the primary, or fallback_after= without fallback=, is an error.
 * 0, or -1 with err.
 */
int acme_failover_check(const acme_failover_conf_t *f, const char *primary,
    char *err, size_t errlen);

/* 1 when a and b configure the same list and count (certificates shared
 * by several servers must agree). */
int acme_failover_same(const acme_failover_conf_t *a,
    const acme_failover_conf_t *b);

/*
 * The index in the certificate's issuer list (0: the primary; n of them)
 * of the attempt after `failures` consecutive failures, `after` attempts
 * at each (0: ACME_FAILOVER_AFTER): (failures / after) % n; 0 when n <= 1.
 */
size_t acme_failover_pick(unsigned failures, size_t n, unsigned after);

/*
 * The index of name in the certificate's issuer list names[0..n) (the
 * issuer the status shows for the stored certificate: st->issuer); 0 (the
 * primary) when name is NULL, "" or not in the list (a store written
 * before it was recorded, or an issuer since removed from the list).
 */
size_t acme_failover_find(const char *const *names, size_t n,
    const char *name);

#endif
