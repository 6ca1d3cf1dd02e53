/* Renewal scheduling and failure backoff: pure arithmetic, no clock. */
#ifndef ACME_SCHED_H
#define ACME_SCHED_H

#include <stdint.h>

/*
 * When to renew a certificate valid [not_before, not_after): when
 * remaining_fraction of its lifetime is left (1/3 by default when <= 0 or
 * >= 1), minus a jitter in [0, min(lifetime/20, 1 day)) derived from rnd
 * so a fleet does not renew in lockstep.
 */
long long acme_sched_renew_at(long long not_before, long long not_after,
    double remaining_fraction, uint32_t rnd);

/*
 * Earliest next attempt after the failures-th consecutive failure at now:
 * 1 min, 10 min, 100 min, then daily, each +-10 % jitter from rnd, and never
 * before retry_after (a unix time from the CA's Retry-After; 0 = none).
 */
long long acme_sched_backoff(unsigned failures, long long now,
    long long retry_after, uint32_t rnd);

/* Parses a Retry-After header value (delta-seconds or HTTP-date) into a
 * unix time relative to now; 0 if absent or invalid; capped at now + 7 days
 * so a bogus value cannot park a certificate forever. */
long long acme_sched_parse_retry_after(const char *value, long long now);

#endif
