/*
 * Renewal scheduling and failure backoff.  Pure functions of their inputs:
 * the caller supplies the clock and the randomness, which keeps both
 * adapters consistent and the schedule unit-testable.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_sched.h"
#include "acme_util.h"

#define SCHED_DAY               86400LL
#define SCHED_RETRY_AFTER_CAP   (7 * SCHED_DAY)

long long
acme_sched_scale(uint32_t rnd, long long n)
{
    if (n <= 0) {
        return 0;
    }
    return (long long) (((unsigned long long) rnd * (unsigned long long) n)
                        >> 32);
}

long long
acme_sched_renew_at(long long not_before, long long not_after,
    double remaining_fraction, uint32_t rnd)
{
    long long lifetime, jitter_span, at;

    lifetime = not_after - not_before;
    if (lifetime <= 0) {
        /* nonsense validity: renew as soon as possible */
        return not_before < not_after ? not_before : not_after;
    }

    if (!(remaining_fraction > 0.0 && remaining_fraction < 1.0)) {
        /* a 6-day certificate renewed with a third left would have two
         * days for every retry; a half leaves three */
        remaining_fraction = (lifetime <= ACME_SCHED_SHORT_LIVED)
                             ? 1.0 / 2.0 : 1.0 / 3.0;
    }

    at = not_after - (long long) ((double) lifetime * remaining_fraction);

    /* jitter at most 5 % of the lifetime, so short-lived certificates keep
     * most of their renewal window, and at most a day for long ones */
    jitter_span = lifetime / 20;
    if (jitter_span > SCHED_DAY) {
        jitter_span = SCHED_DAY;
    }

    return at - acme_sched_scale(rnd, jitter_span);
}

long long
acme_sched_backoff(unsigned failures, long long now, long long retry_after,
    uint32_t rnd)
{
    return acme_sched_backoff_from(60, failures, now, retry_after, rnd);
}

long long
acme_sched_backoff_from(long long first, unsigned failures, long long now,
    long long retry_after, uint32_t rnd)
{
    long long base, t;

    if (first <= 0) {
        first = 60;
    }
    if (first > SCHED_DAY) {
        first = SCHED_DAY;
    }

    /* failures counts the failure just recorded; 0 is treated like 1 so a
     * caller that forgot to count cannot make us retry in a tight loop */
    switch (failures) {
    case 0:
    case 1:
        base = first;
        break;
    case 2:
        base = first * 10;
        break;
    case 3:
        base = first * 100;
        break;
    default:
        base = SCHED_DAY;
        break;
    }
    if (base > SCHED_DAY) {
        base = SCHED_DAY;
    }

    /* base +- 10 %, both ends included */
    t = now + base - base / 10 + acme_sched_scale(rnd, base / 5 + 1);

    return retry_after > t ? retry_after : t;
}

long long
acme_sched_parse_retry_after(const char *value, long long now)
{
    const char          *p, *end, *d;
    char                *s;
    unsigned long long   delta;
    long long            t;

    if (value == NULL) {
        return 0;
    }

    /* Retry-After = HTTP-date / delay-seconds (RFC 9110 section 10.2.3),
     * surrounded by optional whitespace (SP / HTAB) */
    p = value;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (end == p) {
        return 0;
    }

    if (*p >= '0' && *p <= '9') {
        /* delay-seconds = 1*DIGIT: digits only; huge values are capped */
        delta = 0;
        for (d = p; d < end; d++) {
            if (*d < '0' || *d > '9') {
                return 0;
            }
            if (delta <= (unsigned long long) SCHED_RETRY_AFTER_CAP) {
                delta = delta * 10 + (unsigned) (*d - '0');
            }
        }
        if (delta > (unsigned long long) SCHED_RETRY_AFTER_CAP) {
            delta = SCHED_RETRY_AFTER_CAP;
        }
        return now + (long long) delta;
    }

    s = acme_strndup(p, (size_t) (end - p));
    if (s == NULL) {
        return 0;
    }
    t = acme_time_parse_http_date(s);
    free(s);
    if (t < 0) {
        return 0;
    }

    /* a date in the past means "now" */
    if (t < now) {
        return now;
    }
    if (t > now + SCHED_RETRY_AFTER_CAP) {
        return now + SCHED_RETRY_AFTER_CAP;
    }
    return t;
}

void
acme_sched_attempt_begin(acme_cert_state_t *st, long long now, long pid)
{
    st->attempt_started = now > 0 ? now : 1;
    st->attempt_pid = pid;
}

void
acme_sched_attempt_end(acme_cert_state_t *st)
{
    st->attempt_started = 0;
    st->attempt_pid = 0;
}

int
acme_sched_attempt_unfinished(acme_cert_state_t *st, long long now,
    int owner_alive, uint32_t rnd)
{
    if (st->attempt_started == 0 || owner_alive) {
        return 0;
    }

    if (st->failures < UINT_MAX) {
        st->failures++;
    }
    st->last_attempt = st->attempt_started;
    st->next_attempt = acme_sched_backoff(st->failures, now, 0, rnd);
    snprintf(st->last_error, sizeof(st->last_error), "%s",
             ACME_SCHED_UNFINISHED);
    acme_sched_attempt_end(st);
    return 1;
}

long long
acme_sched_unsaved_retry(unsigned tries, long long now)
{
    long long delay = ACME_SCHED_UNSAVED_FIRST;

    while (tries > 1 && delay < ACME_SCHED_UNSAVED_MAX) {
        delay *= 2;
        tries--;
    }
    if (delay > ACME_SCHED_UNSAVED_MAX) {
        delay = ACME_SCHED_UNSAVED_MAX;
    }
    return now + delay;
}
