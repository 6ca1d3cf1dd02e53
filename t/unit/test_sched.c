#include "unit.h"
#include "acme_sched.h"
#include "acme_fence.h"

#include <string.h>

#define DAY 86400LL
#define T0  1795000000LL

UNIT_TEST(sched_renew_at_90_days)
{
    long long nb = T0, na = T0 + 90 * DAY;

    /* a third of the lifetime (30 days) before expiry, jitter < 1 day */
    CHECK_INT(acme_sched_renew_at(nb, na, 0, 0), na - 30 * DAY);
    CHECK_INT(acme_sched_renew_at(nb, na, 1.0 / 3.0, 0), na - 30 * DAY);
    CHECK(acme_sched_renew_at(nb, na, 0, 0xffffffffu) > na - 31 * DAY);
    CHECK(acme_sched_renew_at(nb, na, 0, 0xffffffffu) < na - 30 * DAY);
    CHECK_INT(acme_sched_renew_at(nb, na, 0, 0x80000000u), na - 30 * DAY - DAY / 2);

    /* explicit fractions; out-of-range ones fall back to 1/3 */
    CHECK_INT(acme_sched_renew_at(nb, na, 0.5, 0), na - 45 * DAY);
    CHECK_INT(acme_sched_renew_at(nb, na, 0.1, 0), na - 9 * DAY);
    CHECK_INT(acme_sched_renew_at(nb, na, -1, 0), na - 30 * DAY);
    CHECK_INT(acme_sched_renew_at(nb, na, 1.0, 0), na - 30 * DAY);
    CHECK_INT(acme_sched_renew_at(nb, na, 7.5, 0), na - 30 * DAY);

    /* deterministic */
    CHECK_INT(acme_sched_renew_at(nb, na, 0, 12345),
              acme_sched_renew_at(nb, na, 0, 12345));
}

UNIT_TEST(sched_renew_at_short_lived)
{
    long long nb = T0, na = T0 + 300;
    uint32_t  r;
    long long t;
    int       i;

    /* 5 minutes, short-lived: renew with half (150 s) left; jitter below
     * 5 % (15 s); a configured share still wins */
    CHECK_INT(acme_sched_renew_at(nb, na, 0, 0), na - 150);
    for (i = 0, r = 1; i < 64; i++, r = r * 1103515245u + 12345u) {
        t = acme_sched_renew_at(nb, na, 0, r);
        CHECK(t <= na - 150 && t > na - 165);
    }
    CHECK_INT(acme_sched_renew_at(nb, na, 0, 0xffffffffu), na - 164);
    CHECK_INT(acme_sched_renew_at(nb, na, 1.0 / 3.0, 0), na - 100);

    /* 6 days (Let's Encrypt's shortlived): at half, 3 days left; jitter
     * bounded by lifetime/20, not a whole day */
    CHECK_INT(acme_sched_renew_at(T0, T0 + 6 * DAY, 0, 0), T0 + 3 * DAY);
    CHECK(acme_sched_renew_at(T0, T0 + 6 * DAY, 0, 0xffffffffu) > T0 + 3 * DAY - 6 * DAY / 20);
    /* 10 days is short-lived, 11 days is not */
    CHECK_INT(acme_sched_renew_at(T0, T0 + 10 * DAY, 0, 0), T0 + 5 * DAY);
    CHECK_INT(acme_sched_renew_at(T0, T0 + 12 * DAY, 0, 0), T0 + 8 * DAY);

    /* nonsense validity: renew now-ish rather than never */
    CHECK_INT(acme_sched_renew_at(T0, T0, 0, 0), T0);
    CHECK_INT(acme_sched_renew_at(T0 + 10, T0, 0, 0), T0);
}

UNIT_TEST(sched_backoff_steps_and_jitter)
{
    static const long long base[] = { 60, 60, 600, 6000, DAY, DAY, DAY };
    unsigned  f;
    uint32_t  r;
    long long t;
    int       i;

    for (f = 0; f < 7; f++) {
        CHECK_INT(acme_sched_backoff(f, T0, 0, 0), T0 + base[f] - base[f] / 10);
        CHECK_INT(acme_sched_backoff(f, T0, 0, 0xffffffffu),
                  T0 + base[f] + base[f] / 10);
        for (i = 0, r = 7; i < 64; i++, r = r * 1103515245u + 12345u) {
            t = acme_sched_backoff(f, T0, 0, r);
            CHECK(t >= T0 + base[f] - base[f] / 10);
            CHECK(t <= T0 + base[f] + base[f] / 10);
        }
    }
    CHECK_INT(acme_sched_backoff(1000000, T0, 0, 0x80000000u), T0 + DAY);
    CHECK_INT(acme_sched_backoff(2, T0, 0, 0x80000000u), T0 + 600);

    /* Retry-After wins only when later */
    CHECK_INT(acme_sched_backoff(1, T0, T0 + 3600, 0), T0 + 3600);
    CHECK_INT(acme_sched_backoff(4, T0, T0 + 3600, 0), T0 + DAY - DAY / 10);
    CHECK_INT(acme_sched_backoff(1, T0, T0 + 10, 0), T0 + 54);
}

UNIT_TEST(sched_parse_retry_after)
{
    CHECK_INT(acme_sched_parse_retry_after("120", T0), T0 + 120);
    CHECK_INT(acme_sched_parse_retry_after("  30 \t", T0), T0 + 30);
    CHECK_INT(acme_sched_parse_retry_after("0007", T0), T0 + 7);
    CHECK_INT(acme_sched_parse_retry_after("0", T0), T0);
    /* HTTP-date */
    CHECK_INT(acme_sched_parse_retry_after("Wed, 18 Nov 2026 12:06:40 GMT",
                                           1795000000LL), 1795000000LL + 3600);
    /* a date in the past means now */
    CHECK_INT(acme_sched_parse_retry_after("Wed, 18 Nov 2026 11:06:40 GMT",
                                           1795000000LL + 50), 1795000000LL + 50);
    /* garbage */
    CHECK_INT(acme_sched_parse_retry_after(NULL, T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("   ", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("soon", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("-5", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("12abc", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("1.5", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("Wed, 99 Nov 2026 12:06:40 GMT", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("+5", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("5 5", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("30\r\n", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("\v30", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("0x10", T0), 0);
    /* RFC 9110: an HTTP-date, not RFC 3339 (issue 7 item 4's input) */
    CHECK_INT(acme_sched_parse_retry_after("2026-11-18T12:06:40Z", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("\v2025-01-01T00:00:00-0:1", T0), 0);
    CHECK_INT(acme_sched_parse_retry_after("wed, 18 nov 2026 12:06:40 gmt", T0), 0);
    /* the obsolete HTTP-date forms */
    CHECK_INT(acme_sched_parse_retry_after("Wednesday, 18-Nov-26 12:06:40 GMT",
                                           1795000000LL), 1795000000LL + 3600);
    CHECK_INT(acme_sched_parse_retry_after("Wed Nov 18 12:06:40 2026",
                                           1795000000LL), 1795000000LL + 3600);
    /* cap at 7 days */
    CHECK_INT(acme_sched_parse_retry_after("604800", T0), T0 + 7 * DAY);
    CHECK_INT(acme_sched_parse_retry_after("604801", T0), T0 + 7 * DAY);
    CHECK_INT(acme_sched_parse_retry_after("99999999999999999999999", T0), T0 + 7 * DAY);
    CHECK_INT(acme_sched_parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", T0),
              T0 + 7 * DAY);
}

UNIT_TEST(sched_attempt_unfinished_counts_as_failure)
{
    acme_cert_state_t st;
    long long         t;

    memset(&st, 0, sizeof(st));

    /* no record: nothing to count */
    CHECK_INT(acme_sched_attempt_unfinished(&st, T0, 0, 0), 0);
    CHECK_INT(st.failures, 0);
    CHECK_INT(st.next_attempt, 0);

    /* begin records it; end clears it */
    acme_sched_attempt_begin(&st, T0, 4242);
    CHECK_INT(st.attempt_started, T0);
    CHECK_INT(st.attempt_pid, 4242);
    acme_sched_attempt_end(&st);
    CHECK_INT(st.attempt_started, 0);
    CHECK_INT(st.attempt_pid, 0);
    CHECK_INT(acme_sched_attempt_unfinished(&st, T0 + 5, 0, 0), 0);

    /* its process still runs: not over yet, nothing changes */
    acme_sched_attempt_begin(&st, T0, 4242);
    CHECK_INT(acme_sched_attempt_unfinished(&st, T0 + 5, 1, 0), 0);
    CHECK_INT(st.attempt_started, T0);
    CHECK_INT(st.failures, 0);

    /* its process is gone: a failure with the first backoff (1 min) */
    CHECK_INT(acme_sched_attempt_unfinished(&st, T0 + 5, 0, 0), 1);
    CHECK_INT(st.failures, 1);
    CHECK_INT(st.last_attempt, T0);
    CHECK_INT(st.next_attempt, acme_sched_backoff(1, T0 + 5, 0, 0));
    CHECK(st.next_attempt >= T0 + 5 + 54);
    CHECK_STR(st.last_error, ACME_SCHED_UNFINISHED);
    CHECK_INT(st.attempt_started, 0);
    CHECK_INT(st.attempt_pid, 0);

    /* counted once: a second look finds nothing */
    CHECK_INT(acme_sched_attempt_unfinished(&st, T0 + 6, 0, 0), 0);
    CHECK_INT(st.failures, 1);

    /* repeated crashes back off further: 10 min after the second */
    t = T0 + 100;
    acme_sched_attempt_begin(&st, t, 4243);
    CHECK_INT(acme_sched_attempt_unfinished(&st, t + 1, 0, 7), 1);
    CHECK_INT(st.failures, 2);
    CHECK_INT(st.next_attempt, acme_sched_backoff(2, t + 1, 0, 7));
    CHECK(st.next_attempt >= t + 1 + 540);
}

UNIT_TEST(sched_fence)
{
    acme_fence_t gen = ACME_FENCE_NONE, mine;

    /* a fence is the lease generation when the order started */
    gen = acme_fence_next(gen);
    CHECK_INT(gen, 1);
    mine = gen;
    CHECK(acme_fence_current(mine, gen));

    /* the lease changed hands: the old fence is stale for good */
    gen = acme_fence_next(gen);
    CHECK(!acme_fence_current(mine, gen));
    CHECK(acme_fence_current(gen, gen));

    /* "none" never acts, and the counter skips it on wrap-around */
    CHECK(!acme_fence_current(ACME_FENCE_NONE, ACME_FENCE_NONE));
    CHECK_INT(acme_fence_next(UINT64_MAX), 1);
}

/* An issued bundle the store refused: written again at a bounded rate. */
UNIT_TEST(sched_unsaved_retry)
{
    CHECK_INT(acme_sched_unsaved_retry(0, T0), T0 + 10);
    CHECK_INT(acme_sched_unsaved_retry(1, T0), T0 + 10);
    CHECK_INT(acme_sched_unsaved_retry(2, T0), T0 + 20);
    CHECK_INT(acme_sched_unsaved_retry(3, T0), T0 + 40);
    CHECK_INT(acme_sched_unsaved_retry(6, T0), T0 + 320);
    CHECK_INT(acme_sched_unsaved_retry(7, T0), T0 + ACME_SCHED_UNSAVED_MAX);
    CHECK_INT(acme_sched_unsaved_retry(1000000, T0),
              T0 + ACME_SCHED_UNSAVED_MAX);
}
