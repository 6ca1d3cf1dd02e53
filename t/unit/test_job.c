#include "unit.h"
#include "acme_job.h"
#include "acme_cert.h"
#include "acme_key.h"
#include "acme_util.h"

#include <string.h>

#define DAY 86400LL
#define T0  1795000000LL

static acme_job_facts_t
facts(int have, int loaded, int names_ok)
{
    acme_job_facts_t f;

    memset(&f, 0, sizeof(f));
    f.have_cert = have;
    f.loaded = loaded;
    f.names_ok = names_ok;
    f.not_before = T0;
    f.not_after = T0 + 90 * DAY;
    f.renew_fraction = 1.0 / 3.0;
    f.seed = acme_job_seed("a.example.test_ecdsa-256");
    return f;
}

UNIT_TEST(job_seed_stable)
{
    /* one rule on both servers: a hash of the id, not a random draw */
    CHECK_INT(acme_job_seed("a.example.test_ecdsa-256"),
              acme_job_seed("a.example.test_ecdsa-256"));
    CHECK(acme_job_seed("a.example.test_ecdsa-256")
          != acme_job_seed("a.example.test_rsa-2048"));
    CHECK_INT(acme_job_seed(""), 2166136261u);
    CHECK_INT(acme_job_jitter(7, T0), acme_job_jitter(7, T0));
    CHECK(acme_job_jitter(7, T0) != acme_job_jitter(7, T0 + 1));
    CHECK(acme_job_jitter(7, T0) != acme_job_jitter(8, T0));
}

UNIT_TEST(job_due_reasons)
{
    acme_job_facts_t  f;
    acme_cert_state_t st;
    long long         at = -1, renew;

    memset(&st, 0, sizeof(st));

    f = facts(0, 0, 0);
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_NO_CERT);
    CHECK_INT(at, 0);
    CHECK_STR(acme_job_reason_text(ACME_JOB_NO_CERT), "no certificate yet");

    f = facts(1, 1, 0);
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_NAMES_CHANGED);
    CHECK_INT(at, 0);

    f = facts(1, 1, 1);
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);
    renew = acme_sched_renew_at(f.not_before, f.not_after, f.renew_fraction,
                                acme_job_jitter(f.seed, f.not_after));
    CHECK_INT(at, renew);
    CHECK(at <= T0 + 60 * DAY && at > T0 + 59 * DAY);
    CHECK_STR(acme_job_reason_text(ACME_JOB_RENEW), "renewal is due");

    /* a backoff later than the renewal time wins, and says so */
    st.next_attempt = renew + 100;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_BACKOFF);
    CHECK_INT(at, renew + 100);
    /* an earlier one does not */
    st.next_attempt = renew - 100;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);
    CHECK_INT(at, renew);

    /* no certificate and a backoff: at the backoff */
    f = facts(0, 0, 0);
    st.next_attempt = T0 + 60;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_BACKOFF);
    CHECK_INT(at, T0 + 60);
}

UNIT_TEST(job_due_waits_for_unparsed_bundle)
{
    acme_job_facts_t  f;
    acme_cert_state_t st;
    long long         at = -1;

    /* nginx and Apache alike: a served bundle whose facts are unknown is
     * no reason to order (names unknown != names changed) */
    memset(&st, 0, sizeof(st));
    f = facts(1, 0, 0);
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_LOADING);
    CHECK_INT(at, 0);
    st.next_attempt = T0;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_LOADING);
    /* once parsed, decided as usual */
    f.loaded = 1;
    f.names_ok = 1;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);
}

UNIT_TEST(job_challenge_rotation)
{
    const char *one[] = { "dns-01" };
    const char *two[] = { "http-01", "tls-alpn-01" };

    CHECK_STR(acme_job_challenge(NULL, 0, 5), "http-01");
    CHECK_STR(acme_job_challenge(one, 1, 0), "dns-01");
    CHECK_STR(acme_job_challenge(one, 1, 3), "dns-01");
    CHECK_STR(acme_job_challenge(two, 2, 0), "http-01");
    CHECK_STR(acme_job_challenge(two, 2, 1), "tls-alpn-01");
    CHECK_STR(acme_job_challenge(two, 2, 2), "http-01");
    CHECK_STR(acme_job_last_challenge(two, 2, 0), "http-01");
    CHECK_STR(acme_job_last_challenge(two, 2, 1), "http-01");
    CHECK_STR(acme_job_last_challenge(two, 2, 2), "tls-alpn-01");
    CHECK_STR(acme_job_challenge(two, 2, 7), "tls-alpn-01");
}

UNIT_TEST(job_challenges_parse)
{
    const char *t[ACME_JOB_CHALLENGES_MAX];
    size_t      n = 0;
    char        err[256];

    CHECK_INT(acme_job_challenges_parse("http-01,tls-alpn-01", t, &n, err,
                                        sizeof(err)), 0);
    CHECK_INT(n, 2);
    CHECK_STR(t[0], "http-01");
    CHECK_STR(t[1], "tls-alpn-01");
    CHECK_INT(acme_job_challenges_parse("dns-01", t, &n, err, sizeof(err)),
              0);
    CHECK_INT(n, 3);
    CHECK_INT(acme_job_challenges_parse("http-01", t, &n, err, sizeof(err)),
              -1);
    CHECK(strstr(err, "\"http-01\" is listed twice") != NULL);

    n = 0;
    CHECK_INT(acme_job_challenges_parse("http-02", t, &n, err, sizeof(err)),
              -1);
    CHECK(strstr(err, "\"http-02\"") != NULL);
    CHECK_INT(acme_job_challenges_parse("http-01,", t, &n, err, sizeof(err)),
              -1);
    n = 0;
    CHECK_INT(acme_job_challenges_parse("", t, &n, err, sizeof(err)), -1);
    /* any case, as nginx's own on/off; nginx-acme's unversioned names */
    CHECK_INT(acme_job_challenges_parse("HTTP-01", t, &n, err, sizeof(err)),
              0);
    CHECK_STR(t[0], "http-01");
    n = 0;
    CHECK_INT(acme_job_challenges_parse("http,TLS-ALPN,dns-01", t, &n, err,
                                        sizeof(err)), 0);
    CHECK_INT(n, 3);
    CHECK_STR(t[0], "http-01");
    CHECK_STR(t[1], "tls-alpn-01");
    CHECK_STR(t[2], "dns-01");
    n = 0;
    CHECK_INT(acme_job_challenges_parse("dns", t, &n, err, sizeof(err)), -1);
}

UNIT_TEST(job_challenges_has)
{
    const char *t[] = { "http-01", "dns-01" };

    CHECK_INT(acme_job_challenges_has(t, 2, "dns-01"), 1);
    CHECK_INT(acme_job_challenges_has(t, 2, "http-01"), 1);
    CHECK_INT(acme_job_challenges_has(t, 2, "tls-alpn-01"), 0);
    CHECK_INT(acme_job_challenges_has(t, 1, "dns-01"), 0);
    CHECK_INT(acme_job_challenges_has(NULL, 0, "http-01"), 0);
}

UNIT_TEST(job_alpn_conflict_case_insensitive)
{
    const char *a[] = { "a.example.test", "b.example.test" };
    const char *b[] = { "B.Example.Test" };
    const char *c[] = { "c.example.test" };

    CHECK_INT(acme_job_alpn_conflict("tls-alpn-01", a, 2, "tls-alpn-01", b,
                                     1), 1);
    CHECK_INT(acme_job_alpn_conflict("tls-alpn-01", a, 2, "tls-alpn-01", c,
                                     1), 0);
    /* only when both attempts answer tls-alpn-01 */
    CHECK_INT(acme_job_alpn_conflict("http-01", a, 2, "tls-alpn-01", b, 1),
              0);
    CHECK_INT(acme_job_alpn_conflict("tls-alpn-01", a, 2, "http-01", b, 1),
              0);
    CHECK_INT(acme_job_alpn_conflict("tls-alpn-01", a, 2, NULL, b, 1), 0);
}

UNIT_TEST(job_backoff_retry_delay)
{
    long long t;
    uint32_t  seed = 12345;
    unsigned  f;

    /* default first step 60 s: today's 60, 600, 6000, a day */
    for (f = 1; f <= 5; f++) {
        static const long long base[] = { 0, 60, 600, 6000, DAY, DAY };
        t = acme_job_backoff(f, T0, 0, 0, seed) - T0;
        CHECK(t >= base[f] - base[f] / 10 && t <= base[f] + base[f] / 10);
    }
    /* retry_delay 2 s: 2, 20, 200, then a day */
    for (f = 1; f <= 5; f++) {
        static const long long base[] = { 0, 2, 20, 200, DAY, DAY };
        t = acme_job_backoff(f, T0, 0, 2, seed) - T0;
        CHECK(t >= base[f] - base[f] / 10 && t <= base[f] + base[f] / 10);
    }
    CHECK_INT(acme_job_backoff(1, T0, 0, 2, seed), T0 + 2);
    /* 3 hours: 3 h, then capped at a day */
    t = acme_job_backoff(2, T0, 0, 3 * 3600, seed) - T0;
    CHECK(t >= DAY - DAY / 10 && t <= DAY + DAY / 10);
    /* Retry-After still wins */
    CHECK_INT(acme_job_backoff(1, T0, T0 + 3600, 2, seed), T0 + 3600);
    /* deterministic from seed and time */
    CHECK_INT(acme_job_backoff(2, T0, 0, 60, seed),
              acme_job_backoff(2, T0, 0, 60, seed));
    CHECK_INT(acme_sched_backoff_from(60, 2, T0, 0, 7),
              acme_sched_backoff(2, T0, 0, 7));
}

UNIT_TEST(job_failed_and_succeeded)
{
    acme_cert_state_t st;

    memset(&st, 0, sizeof(st));
    acme_sched_attempt_begin(&st, T0, 42);
    acme_job_failed(&st, "http-01", "validation refused", T0 + 5, 0, 2, 9);
    CHECK_INT(st.failures, 1);
    CHECK_INT(st.attempt_started, 0);
    CHECK_INT(st.attempt_pid, 0);
    CHECK_INT(st.last_attempt, T0 + 5);
    CHECK_INT(st.next_attempt, acme_job_backoff(1, T0 + 5, 0, 2, 9));
    CHECK_STR(st.last_error, "http-01: validation refused");

    /* a message naming its type already is not prefixed twice */
    acme_job_failed(&st, "dns-01", "dns-01 update: REFUSED", T0 + 10, 0, 2,
                    9);
    CHECK_INT(st.failures, 2);
    CHECK_STR(st.last_error, "dns-01 update: REFUSED");
    acme_job_failed(&st, "http-01", NULL, T0 + 20, 0, 2, 9);
    CHECK_STR(st.last_error, "http-01: unknown error");
    CHECK_INT(st.failures, 3);

    /* Retry-After */
    acme_job_failed(&st, "http-01", "rateLimited", T0 + 30, T0 + 5000, 2, 9);
    CHECK_INT(st.next_attempt, acme_job_backoff(4, T0 + 30, T0 + 5000, 2,
                                                9));
    CHECK(st.next_attempt >= T0 + 5000);
    /* ... said in last_error, with the time it asks for */
    CHECK_STR(st.last_error, "http-01: rateLimited; the CA asks to wait "
              "until 2026-11-18T12:30:00Z");
    /* a Retry-After already past is not */
    acme_job_failed(&st, "http-01", "serverInternal", T0 + 30, T0 + 30, 2, 9);
    CHECK_STR(st.last_error, "http-01: serverInternal");
    {
        /* a message too long is cut before the Retry-After ("..."), which
         * stays whole */
        char long_msg[2000];

        memset(long_msg, 'x', sizeof(long_msg) - 1);
        long_msg[sizeof(long_msg) - 1] = '\0';
        acme_job_failed(&st, "http-01", long_msg, T0 + 30, T0 + 5000, 2, 9);
        CHECK_INT(strlen(st.last_error), sizeof(st.last_error) - 1);
        CHECK(strstr(st.last_error, "xxx...; the CA asks to wait until "
                     "2026-11-18T12:30:00Z") != NULL);
        CHECK(strncmp(st.last_error, "http-01: xxx", 12) == 0);
    }

    acme_sched_attempt_begin(&st, T0 + 100, 42);
    acme_job_succeeded(&st, T0 + 200, NULL, NULL);
    CHECK_INT(st.failures, 0);
    CHECK_INT(st.next_attempt, 0);
    CHECK_INT(st.last_success, T0 + 200);
    CHECK_INT(st.last_attempt, T0 + 200);
    CHECK_STR(st.last_error, "");
    CHECK_INT(st.attempt_started, 0);
}

UNIT_TEST(job_unfinished_typed)
{
    const char       *two[] = { "http-01", "tls-alpn-01" };
    acme_cert_state_t st;

    memset(&st, 0, sizeof(st));
    CHECK_INT(acme_job_unfinished(&st, two, 2, T0, 0, 2, 1), 0);

    acme_sched_attempt_begin(&st, T0, 99999);
    /* its process still runs: not over */
    CHECK_INT(acme_job_unfinished(&st, two, 2, T0 + 5, 1, 2, 1), 0);
    CHECK_INT(st.failures, 0);

    CHECK_INT(acme_job_unfinished(&st, two, 2, T0 + 5, 0, 2, 1), 1);
    CHECK_INT(st.failures, 1);
    CHECK_INT(st.attempt_started, 0);
    CHECK_INT(st.last_attempt, T0);
    CHECK_INT(st.next_attempt, acme_job_backoff(1, T0 + 5, 0, 2, 1));
    CHECK_STR(st.last_error, "http-01: " ACME_SCHED_UNFINISHED);

    /* the second attempt used the second type */
    acme_sched_attempt_begin(&st, T0 + 10, 99999);
    CHECK_INT(acme_job_unfinished(&st, two, 2, T0 + 20, 0, 0, 1), 1);
    CHECK_INT(st.failures, 2);
    CHECK_STR(st.last_error, "tls-alpn-01: " ACME_SCHED_UNFINISHED);
    CHECK_INT(st.next_attempt, acme_job_backoff(2, T0 + 20, 0, 60, 1));
}

UNIT_TEST(job_status_record_view)
{
    acme_job_status_t  rec;
    acme_status_cert_t v;
    acme_cert_state_t  st;
    const char        *types[] = { "dns-01", "http-01" };

    memset(&rec, 0, sizeof(rec));
    memset(&v, 0, sizeof(v));
    acme_job_status_view(&rec, T0, NULL, 0, &v);
    CHECK_STR(v.state, "fallback");
    CHECK(v.step == NULL);
    CHECK_STR(v.challenge, "http-01");
    /* no type in the record: the last attempt's by the list */
    acme_job_status_view(&rec, T0, types, 2, &v);
    CHECK_STR(v.challenge, "dns-01");
    CHECK(v.serial == NULL);
    CHECK_INT(v.not_after, 0);

    /* an order runs: "renewing" with its step and type */
    acme_job_status_begin(&rec, "tls-alpn-01", "account-key");
    acme_job_status_view(&rec, T0, NULL, 0, &v);
    CHECK_STR(v.state, "renewing");
    CHECK_STR(v.step, "account-key");
    CHECK_STR(v.challenge, "tls-alpn-01");

    /* it fails without a certificate: "failed", the type kept */
    memset(&st, 0, sizeof(st));
    acme_job_failed(&st, "tls-alpn-01", "boom", T0, 0, 0, 1);
    acme_job_status_end(&rec, &st, st.next_attempt);
    acme_job_status_view(&rec, T0, NULL, 0, &v);
    CHECK_STR(v.state, "failed");
    CHECK(v.step == NULL);
    CHECK_STR(v.challenge, "tls-alpn-01");
    CHECK_INT(v.failures, 1);
    CHECK_STR(v.last_error, "tls-alpn-01: boom");
    CHECK_INT(v.next_renewal, st.next_attempt);

    /* a certificate: valid, then expired by the clock alone */
    acme_job_status_set_cert(&rec, T0, T0 + 100, "0a1b", "CN=Pebble", NULL);
    acme_job_succeeded(&st, T0 + 1, NULL, NULL);
    acme_job_status_end(&rec, &st, T0 + 60);
    acme_job_status_view(&rec, T0 + 2, NULL, 0, &v);
    CHECK_STR(v.state, "valid");
    CHECK_STR(v.serial, "0a1b");
    CHECK_STR(v.ca_issuer, "CN=Pebble");
    CHECK_INT(v.not_before, T0);
    CHECK_INT(v.not_after, T0 + 100);
    CHECK_INT(v.failures, 0);
    CHECK_STR(v.last_error, "");
    CHECK_INT(v.last_success, T0 + 1);
    CHECK_INT(v.next_renewal, T0 + 60);
    acme_job_status_view(&rec, T0 + 100, NULL, 0, &v);
    CHECK_STR(v.state, "expired");

    /* a long step name is cut, not overflowing */
    acme_job_status_begin(&rec, NULL,
                          "a-very-long-step-name-that-does-not-fit-in-32");
    CHECK_INT(strlen(rec.step), sizeof(rec.step) - 1);
    CHECK_STR(rec.challenge, "tls-alpn-01");
}

/* issue 16: a certificate not valid yet does not replace a valid one */
UNIT_TEST(job_activate_at)
{
    long long nb = T0 + 7200;           /* notBefore two hours ahead */

    /* valid now, or within the skew: at once */
    CHECK_INT(acme_job_activate_at(T0 - 10, 1, T0 + DAY, T0, 60), 0);
    CHECK_INT(acme_job_activate_at(T0 + 60, 1, T0 + DAY, T0, 60), 0);
    CHECK_INT(acme_job_activate_at(T0 + 61, 1, T0 + DAY, T0, 60), T0 + 1);
    /* skew < 0: the default */
    CHECK_INT(acme_job_activate_at(T0 + ACME_JOB_CLOCK_SKEW, 1, T0 + DAY, T0,
                                   -1), 0);
    /* two hours ahead, the served one valid for a day: its notBefore
     * minus the skew */
    CHECK_INT(acme_job_activate_at(nb, 1, T0 + DAY, T0, 60), nb - 60);
    CHECK_INT(acme_job_activate_at(nb, 1, T0 + DAY, T0, 600), nb - 600);
    /* nothing served: at once (better than the self-signed fallback) */
    CHECK_INT(acme_job_activate_at(nb, 0, 0, T0, 60), 0);
    /* the served one has expired: at once */
    CHECK_INT(acme_job_activate_at(nb, 1, T0, T0, 60), 0);
    CHECK_INT(acme_job_activate_at(nb, 1, T0 - DAY, T0, 60), 0);
    /* it expires before the new one is valid: served until it expires */
    CHECK_INT(acme_job_activate_at(nb, 1, T0 + 3600, T0, 60), T0 + 3600);
    /* ... and from then on, at once */
    CHECK_INT(acme_job_activate_at(nb, 1, T0 + 3600, T0 + 3600, 60), 0);
    /* the time reached: at once */
    CHECK_INT(acme_job_activate_at(nb, 1, T0 + DAY, nb - 60, 60), 0);
}

UNIT_TEST(job_pending_text)
{
    char buf[256];

    CHECK_STR(acme_job_pending_text("0a1b", T0 + 7200, T0, T0 + 7140, buf,
                                    sizeof(buf)),
              "the new certificate (serial 0a1b) is not valid before "
              "2026-11-18T13:06:40Z (7200 s ahead of this server's clock); "
              "served from 2026-11-18T13:05:40Z");
}

UNIT_TEST(job_pending_status_and_due)
{
    acme_job_status_t  rec;
    acme_status_cert_t v;
    acme_job_facts_t   f;
    long long          at, at2;

    memset(&rec, 0, sizeof(rec));
    memset(&v, 0, sizeof(v));
    acme_job_status_set_cert(&rec, T0, T0 + 90 * DAY, "01", "CN=old",
                             "OLDPIN=");
    acme_job_status_set_pending(&rec, T0 + 7140, T0 + 7200, T0 + 97 * DAY,
                                "02", "CN=new", "NEWPIN=");
    acme_job_status_view(&rec, T0, NULL, 0, &v);
    /* the served certificate is shown as it is, the new one as pending */
    CHECK_STR(v.state, "valid");
    CHECK_STR(v.serial, "01");
    CHECK_STR(v.spki_pin, "OLDPIN=");
    CHECK_INT(v.pending_at, T0 + 7140);
    CHECK_INT(v.pending_not_before, T0 + 7200);
    CHECK_INT(v.pending_not_after, T0 + 97 * DAY);
    CHECK_STR(v.pending_serial, "02");

    acme_job_status_activate(&rec);
    acme_job_status_view(&rec, T0 + 7140, NULL, 0, &v);
    CHECK_STR(v.serial, "02");
    CHECK_STR(v.ca_issuer, "CN=new");
    /* the pin moves with the certificate served */
    CHECK_STR(v.spki_pin, "NEWPIN=");
    CHECK_INT(v.not_before, T0 + 7200);
    CHECK_INT(v.not_after, T0 + 97 * DAY);
    CHECK_INT(v.pending_at, 0);
    /* nothing pending: no change */
    acme_job_status_activate(&rec);
    CHECK_STR(rec.serial, "02");

    /* a certificate served at once drops one that waited */
    acme_job_status_set_pending(&rec, T0 + 9000, T0 + 9060, T0 + DAY, "03",
                                "CN=x", NULL);
    acme_job_status_set_cert(&rec, T0, T0 + DAY, "04", "CN=y", NULL);
    CHECK_INT(rec.pending_at, 0);

    /* the renewal time is the pending certificate's: the order that
     * made it is not due again, whatever the served one's names */
    f = facts(1, 1, 0);
    f.not_before = T0 - 80 * DAY;
    f.not_after = T0 + 10 * DAY;
    CHECK_INT(acme_job_due(&f, NULL, &at), ACME_JOB_NAMES_CHANGED);
    CHECK_INT(at, 0);
    f.pending_not_before = T0 + 7200;
    f.pending_not_after = T0 + 7200 + 90 * DAY;
    CHECK_INT(acme_job_due(&f, NULL, &at), ACME_JOB_RENEW);
    f = facts(1, 1, 1);
    f.not_before = T0 + 7200;
    f.not_after = T0 + 7200 + 90 * DAY;
    (void) acme_job_due(&f, NULL, &at2);
    CHECK_INT(at, at2);

    /* served: the pending certificate becomes the facts' one */
    f = facts(1, 0, 0);
    f.pending_not_before = T0 + 7200;
    f.pending_not_after = T0 + 7200 + 90 * DAY;
    acme_job_facts_activate(&f);
    CHECK(f.loaded && f.names_ok && f.pending_not_after == 0);
    CHECK_INT(f.not_before, T0 + 7200);
    CHECK_INT(f.not_after, T0 + 7200 + 90 * DAY);
    CHECK_INT(acme_job_due(&f, NULL, &at), ACME_JOB_RENEW);
    CHECK_INT(at, at2);
    /* nothing pending: unchanged */
    acme_job_facts_activate(&f);
    CHECK_INT(f.not_before, T0 + 7200);
}

/* At most max_orders of an issuer in flight, the most urgent first. */
UNIT_TEST(job_pipeline_bounded_by_urgency)
{
    acme_job_pipe_t c[6];
    int             a = 0, b = 0;
    size_t          i;

    memset(c, 0, sizeof(c));
    for (i = 0; i < 6; i++) {
        c[i].issuer = &a;
        c[i].max_orders = 2;
        c[i].due = 1;
        c[i].have_cert = 1;
        c[i].not_after = T0 + 10 * DAY - (long long) i;   /* later first */
    }
    c[1].not_after = T0 - 1;        /* expired */
    c[4].have_cert = 0;             /* a placeholder is served */
    c[5].due = 0;                   /* not due */

    /* the placeholder, then the expired one */
    CHECK_INT(acme_job_pipeline(c, 6, T0), 2);
    CHECK(c[4].start && c[1].start);
    CHECK(!c[0].start && !c[2].start && !c[3].start && !c[5].start);

    /* those two run: the issuer is full */
    c[4].running = c[1].running = 1;
    c[4].due = c[1].due = 0;
    CHECK_INT(acme_job_pipeline(c, 6, T0), 0);
    CHECK(!c[0].start && !c[2].start && !c[3].start);

    /* one ends: the valid one expiring soonest (3) goes next */
    c[4].running = 0;
    for (i = 0; i < 4; i++) {
        c[i].due = (i != 1);
    }
    CHECK_INT(acme_job_pipeline(c, 6, T0), 1);
    CHECK(c[3].start && !c[0].start && !c[2].start);

    /* another issuer has its own cap; 0 is the default (8) */
    c[3].running = 1;
    c[3].due = 0;
    c[0].issuer = c[2].issuer = &b;
    c[0].max_orders = c[2].max_orders = 0;
    c[0].due = c[2].due = 1;
    CHECK_INT(acme_job_pipeline(c, 6, T0), 2);
    CHECK(c[0].start && c[2].start);

    /* a cap of 1 with nothing running: exactly one, equal urgency in
     * array order */
    memset(c, 0, sizeof(c));
    for (i = 0; i < 6; i++) {
        c[i].issuer = &a;
        c[i].max_orders = 1;
        c[i].due = 1;
    }
    CHECK_INT(acme_job_pipeline(c, 6, T0), 1);
    CHECK(c[0].start);
    for (i = 1; i < 6; i++) {
        CHECK(!c[i].start);
    }
    CHECK_INT(acme_job_pipeline(c, 0, T0), 0);
}

/* A failure with the CA's Retry-After pauses the whole issuer. */
UNIT_TEST(job_pipeline_issuer_pause)
{
    acme_job_pipe_t c[3];
    int             a = 0, b = 0;

    CHECK_INT(acme_job_issuer_pause(0, 0, T0), 0);
    CHECK_INT(acme_job_issuer_pause(0, T0 - 5, T0), 0);
    CHECK_INT(acme_job_issuer_pause(0, T0 + 30, T0), T0 + 30);
    CHECK_INT(acme_job_issuer_pause(T0 + 60, T0 + 30, T0), T0 + 60);

    memset(c, 0, sizeof(c));
    c[0].issuer = c[1].issuer = &a;
    c[2].issuer = &b;
    c[0].due = c[1].due = c[2].due = 1;
    c[0].issuer_pause = c[1].issuer_pause = T0 + 30;
    CHECK_INT(acme_job_pipeline(c, 3, T0), 1);
    CHECK(!c[0].start && !c[1].start && c[2].start);

    /* the pause over: both start */
    c[0].due = c[1].due = 1;
    c[2].due = 0;
    CHECK_INT(acme_job_pipeline(c, 3, T0 + 30), 2);
    CHECK(c[0].start && c[1].start);
}

UNIT_TEST(job_bridge_status_and_text)
{
    acme_job_status_t  rec;
    acme_status_cert_t v;
    acme_job_bridge_t  b;
    char               buf[512];

    memset(&rec, 0, sizeof(rec));
    memset(&v, 0, sizeof(v));
    memset(&b, 0, sizeof(b));

    /* no bridge configured: none shown */
    acme_job_status_bridge(&rec, NULL, &v);
    CHECK(v.bridge_file == NULL);
    acme_job_status_bridge(&rec, &b, &v);
    CHECK(v.bridge_file == NULL);

    /* served while no managed certificate is */
    strcpy(b.file, "/etc/ssl/old.pem");
    strcpy(b.serial, "0ABC");
    b.not_before = T0;
    b.not_after = T0 + DAY;
    acme_job_status_bridge(&rec, &b, &v);
    CHECK_STR(v.bridge_file, "/etc/ssl/old.pem");
    CHECK_STR(v.bridge_serial, "0ABC");
    CHECK_INT(v.bridge_not_before, T0);
    CHECK_INT(v.bridge_not_after, T0 + DAY);

    /* a failing order does not change it */
    rec.failures = 3;
    acme_job_status_bridge(&rec, &b, &v);
    CHECK_STR(v.bridge_serial, "0ABC");

    /* a managed certificate is served: the bridge is gone */
    acme_job_status_set_cert(&rec, T0, T0 + 90 * DAY, "0DEF", "CN=CA", NULL);
    CHECK(rec.have_cert);
    acme_job_status_bridge(&rec, &b, &v);
    CHECK(v.bridge_file == NULL);
    CHECK(v.bridge_serial == NULL);
    CHECK_INT(v.bridge_not_after, 0);

    CHECK_STR(acme_job_bridge_retired_text(&b, "0DEF", buf, sizeof(buf)),
              "the managed certificate (serial 0DEF) is served now; the "
              "bridge certificate \"/etc/ssl/old.pem\" (serial 0ABC) is no "
              "longer used and can be removed from the configuration");
}


/* issue 10: a certificate of another CA is replaced at once, while it is
 * served; only the directory that issued it counts */
UNIT_TEST(job_due_issuer_changed)
{
    acme_job_facts_t  f;
    acme_cert_state_t st;
    long long         at = -1;

    memset(&st, 0, sizeof(st));
    f = facts(1, 1, 1);
    f.directory = "https://b.test/dir";

    /* unknown issuer (a store from before the record): as configured */
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);
    CHECK(acme_job_change(&f, &st) == NULL);

    acme_job_succeeded(&st, T0, "https://a.test/dir", NULL);
    CHECK_STR(st.directory, "https://a.test/dir");
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_ISSUER_CHANGED);
    CHECK_INT(at, 0);
    CHECK_STR(acme_job_change(&f, &st), "issuer changed");
    CHECK(strncmp(acme_job_reason_text(ACME_JOB_ISSUER_CHANGED),
                  "issuer changed", 14) == 0);

    /* a failed order for the new CA: backoff, the reason stays */
    st.next_attempt = T0 + 600;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_BACKOFF);
    CHECK_INT(at, T0 + 600);
    CHECK_STR(acme_job_change(&f, &st), "issuer changed");

    /* issued by the configured CA: nothing changed */
    acme_job_succeeded(&st, T0, "https://b.test/dir", NULL);
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);
    CHECK(acme_job_change(&f, &st) == NULL);

    /* names */
    f.names_ok = 0;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_NAMES_CHANGED);
    CHECK_STR(acme_job_change(&f, &st), "names changed");

    /* nothing served, or not parsed: no reason */
    f = facts(0, 0, 0);
    f.directory = "https://c.test/dir";
    CHECK(acme_job_change(&f, &st) == NULL);
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_NO_CERT);
    f = facts(1, 0, 1);
    f.directory = "https://c.test/dir";
    CHECK(acme_job_change(&f, &st) == NULL);
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_LOADING);

    /* no directory given: not compared */
    CHECK_INT(acme_job_issuer_changed(&st, NULL), 0);
    CHECK_INT(acme_job_issuer_changed(&st, "https://b.test/dir"), 0);
    CHECK_INT(acme_job_issuer_changed(&st, "https://c.test/dir"), 1);
}

/* issue 10 item 1: a key type changed (the served certificate is the one
 * of the id it replaces) is ordered at once, the reason until then */
UNIT_TEST(job_due_key_changed)
{
    acme_job_facts_t  f;
    acme_cert_state_t st;
    long long         at = -1;

    memset(&st, 0, sizeof(st));
    f = facts(1, 1, 1);
    f.key_changed = 1;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_KEY_CHANGED);
    CHECK_INT(at, 0);
    CHECK_STR(acme_job_change(&f, &st), "key type changed");
    CHECK(strncmp(acme_job_reason_text(ACME_JOB_KEY_CHANGED),
                  "key type changed", 16) == 0);

    /* a failed order: backoff, the reason stays */
    st.next_attempt = T0 + 600;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_BACKOFF);
    CHECK_STR(acme_job_change(&f, &st), "key type changed");
    st.next_attempt = 0;

    /* names changed too: the key type is named (either orders at once) */
    f.names_ok = 0;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_KEY_CHANGED);
    CHECK_STR(acme_job_change(&f, &st), "key type changed");

    /* a CA changed too: the issuer first */
    acme_job_succeeded(&st, T0, "https://a.test/dir", NULL);
    f.directory = "https://b.test/dir";
    CHECK_STR(acme_job_change(&f, &st), "issuer changed");

    /* the new certificate served (our order's, activated): nothing */
    f = facts(1, 1, 1);
    f.key_changed = 1;
    f.pending_not_before = T0;
    f.pending_not_after = T0 + 90 * 86400;
    CHECK(acme_job_change(&f, &st) == NULL);
    acme_job_facts_activate(&f);
    CHECK_INT(f.key_changed, 0);
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);
    CHECK(acme_job_change(&f, &st) == NULL);
}

/* the key type of a certificate, compared with the configured one */
UNIT_TEST(cert_info_key_other)
{
    const char       *names[] = { "a.example.test" };
    acme_key_type_t   t[] = { ACME_KEY_EC_P256, ACME_KEY_EC_P384,
                              ACME_KEY_RSA_2048 };
    acme_cert_info_t  info;
    EVP_PKEY         *k;
    char             *pem, err[ACME_ERRLEN];
    size_t            i, len;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        k = acme_key_generate(t[i]);
        pem = k ? acme_selfsigned_pem(k, names, 1, 30, &len) : NULL;
        CHECK(pem != NULL);
        CHECK_INT(acme_cert_info_from_pem(pem, len, &info, err, sizeof(err)),
                  0);
        CHECK_INT(info.key_type, (int) t[i]);
        CHECK_INT(acme_cert_info_key_other(&info, t[i]), 0);
        CHECK_INT(acme_cert_info_key_other(&info, ACME_KEY_EC_P521), 1);
        acme_cert_info_free(&info);
        free(pem);
        EVP_PKEY_free(k);
    }
    /* a key of no supported type is no reason to order again */
    memset(&info, 0, sizeof(info));
    info.key_type = -1;
    CHECK_INT(acme_cert_info_key_other(&info, ACME_KEY_EC_P256), 0);
}

UNIT_TEST(job_status_reason)
{
    acme_job_status_t   rec;
    acme_status_cert_t  out;

    memset(&rec, 0, sizeof(rec));
    acme_job_status_set_reason(&rec, "issuer changed");
    memset(&out, 0, sizeof(out));
    acme_job_status_view(&rec, T0, NULL, 0, &out);
    CHECK_STR(out.reason, "issuer changed");
    acme_job_status_set_reason(&rec, NULL);
    acme_job_status_view(&rec, T0, NULL, 0, &out);
    CHECK(out.reason == NULL);
}

/* a request at the status location (acme_control.h) or a deleted store
 * entry: at once, whatever the window and the backoff say */
UNIT_TEST(job_due_forced_and_revoked)
{
    acme_job_facts_t   f;
    acme_cert_state_t  st;
    acme_job_status_t  rec;
    acme_status_cert_t v;
    long long          at = -1;

    memset(&st, 0, sizeof(st));
    f = facts(1, 1, 1);
    st.next_attempt = T0 + 80 * DAY;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_BACKOFF);
    f.forced = 1;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_FORCED);
    CHECK_INT(at, 0);
    /* a bundle not parsed yet still waits */
    f.loaded = 0;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_LOADING);

    /* revoked: its replacement at once, after a failure's backoff */
    f = facts(1, 1, 1);
    memset(&st, 0, sizeof(st));
    memset(&rec, 0, sizeof(rec));
    acme_job_status_set_cert(&rec, T0, T0 + 90 * DAY, "0a", "CN=ca", NULL);
    acme_job_revoked(&st, &rec, T0 + 5);
    CHECK_INT(st.revoked, T0 + 5);
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_REVOKED);
    CHECK_INT(at, 0);
    st.next_attempt = T0 + 60;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_BACKOFF);
    CHECK_INT(at, T0 + 60);

    /* the status says "revoked", also while the replacement is ordered */
    memset(&v, 0, sizeof(v));
    acme_job_status_view(&rec, T0 + 10, NULL, 0, &v);
    CHECK_STR(v.state, "revoked");
    acme_job_status_begin(&rec, "http-01", "new-order");
    acme_job_status_view(&rec, T0 + 10, NULL, 0, &v);
    CHECK_STR(v.state, "revoked");
    CHECK_STR(v.step, "new-order");

    /* a failed replacement keeps it; the success clears it */
    acme_job_failed(&st, "http-01", "boom", T0 + 20, 0, 60, f.seed);
    acme_job_status_end(&rec, &st, st.next_attempt);
    acme_job_status_view(&rec, T0 + 30, NULL, 0, &v);
    CHECK_STR(v.state, "revoked");
    acme_job_succeeded(&st, T0 + 100, NULL, NULL);
    CHECK_INT(st.revoked, 0);
    acme_job_status_end(&rec, &st, 0);
    acme_job_status_view(&rec, T0 + 100, NULL, 0, &v);
    CHECK_STR(v.state, "valid");
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);
}
