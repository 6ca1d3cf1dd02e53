#include "unit.h"
#include "acme_ari.h"
#include "acme_job.h"
#include "acme_util.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/x509v3.h>

#define HOUR 3600LL
#define DAY  86400LL
#define T0   1795000000LL

/* RFC 9773 section 4.1's example: keyIdentifier
 * 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial
 * 0x87654321 (DER content 00 87 65 43 21) */
static const unsigned char rfc_kid[] = {
    0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
    0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4
};
static const unsigned char rfc_serial[] = { 0x00, 0x87, 0x65, 0x43, 0x21 };
#define RFC_ID "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"

UNIT_TEST(ari_cert_id_rfc_example)
{
    char       id[128];
    X509      *x;
    ASN1_INTEGER *sn;
    AUTHORITY_KEYID *akid;

    CHECK_INT(acme_ari_cert_id_raw(rfc_kid, sizeof(rfc_kid), rfc_serial,
                                   sizeof(rfc_serial), id, sizeof(id)), 0);
    CHECK_STR(id, RFC_ID);
    /* too small a buffer, nothing to name */
    CHECK_INT(acme_ari_cert_id_raw(rfc_kid, sizeof(rfc_kid), rfc_serial,
                                   sizeof(rfc_serial), id, 10), -1);
    CHECK_INT(acme_ari_cert_id_raw(NULL, 0, rfc_serial, sizeof(rfc_serial),
                                   id, sizeof(id)), -1);

    /* the same from a certificate: the serial's DER content, the AKI */
    x = X509_new();
    sn = ASN1_INTEGER_new();
    akid = AUTHORITY_KEYID_new();
    CHECK(x && sn && akid);
    ASN1_INTEGER_set_uint64(sn, 0x87654321u);
    X509_set_serialNumber(x, sn);
    akid->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(akid->keyid, rfc_kid, sizeof(rfc_kid));
    X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0);
    CHECK_INT(acme_ari_cert_id(x, id, sizeof(id)), 0);
    CHECK_STR(id, RFC_ID);

    /* a serial without its top bit set has no leading zero */
    ASN1_INTEGER_set_uint64(sn, 0x12345678u);
    X509_set_serialNumber(x, sn);
    CHECK_INT(acme_ari_cert_id(x, id, sizeof(id)), 0);
    CHECK_STR(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.EjRWeA");

    AUTHORITY_KEYID_free(akid);
    X509_free(x);

    /* no AKI: no identifier */
    x = X509_new();
    X509_set_serialNumber(x, sn);
    CHECK_INT(acme_ari_cert_id(x, id, sizeof(id)), -1);
    CHECK_STR(id, "");
    X509_free(x);
    ASN1_INTEGER_free(sn);
}

UNIT_TEST(ari_parse)
{
    acme_ari_window_t  w;
    char               err[256];
    const char        *rfc =
        "{\"suggestedWindow\": {\"start\": \"2025-01-02T04:00:00Z\", "
        "\"end\": \"2025-01-03T04:00:00Z\"}, "
        "\"explanationURL\": \"https://acme.example.com/docs/ari\"}";

    CHECK_INT(acme_ari_parse(rfc, strlen(rfc), &w, err, sizeof(err)), 0);
    CHECK_INT(w.start, 1735790400LL);
    CHECK_INT(w.end, 1735790400LL + DAY);
    CHECK_STR(w.explanation, "https://acme.example.com/docs/ari");

    /* no explanationURL: none */
    CHECK_INT(acme_ari_parse("{\"suggestedWindow\":{\"start\":"
                             "\"2025-01-02T04:00:00Z\",\"end\":"
                             "\"2025-01-02T05:00:00Z\"}}", 81, &w, err,
                             sizeof(err)), 0);
    CHECK_STR(w.explanation, "");
    CHECK_INT(w.end - w.start, HOUR);

    /* garbage, no window, an end before the start */
    CHECK_INT(acme_ari_parse("garbage", 7, &w, err, sizeof(err)), -1);
    CHECK(strstr(err, "renewal-info") != NULL);
    CHECK_INT(acme_ari_parse("{}", 2, &w, err, sizeof(err)), -1);
    CHECK(strstr(err, "suggestedWindow") != NULL);
    CHECK_INT(acme_ari_parse("{\"suggestedWindow\":{\"start\":"
                             "\"2025-01-03T04:00:00Z\",\"end\":"
                             "\"2025-01-02T05:00:00Z\"}}", 81, &w, err,
                             sizeof(err)), -1);
    CHECK_INT(acme_ari_parse(NULL, 0, &w, err, sizeof(err)), -1);
}

UNIT_TEST(ari_choose)
{
    long long  s = T0 + DAY, e = T0 + 2 * DAY, t;
    uint32_t   r;
    int        i, low = 0, high = 0;

    /* uniformly inside the window */
    CHECK_INT(acme_ari_choose(s, e, T0, 0), s);
    CHECK_INT(acme_ari_choose(s, e, T0, 0x80000000u), s + DAY / 2);
    CHECK(acme_ari_choose(s, e, T0, 0xffffffffu) < e);
    for (i = 0, r = 1; i < 1000; i++) {
        r = r * 1664525u + 1013904223u;
        t = acme_ari_choose(s, e, T0, r);
        CHECK(t >= s && t < e);
        low += t < s + DAY / 2;
        high += t >= s + DAY / 2;
    }
    CHECK(low > 400 && high > 400);

    /* the window has begun, or is over: now */
    CHECK_INT(acme_ari_choose(s, e, s + 10, 0x80000000u), s + 10);
    CHECK_INT(acme_ari_choose(s, e, e + 10, 0x80000000u), e + 10);
}

UNIT_TEST(ari_next_poll_clamp)
{
    /* Retry-After clamped to [1 h, 24 h]; none: 6 h (rnd 0: no jitter) */
    CHECK_INT(acme_ari_next_poll("7200", T0, 0, 0), T0 + 7200);
    CHECK_INT(acme_ari_next_poll("60", T0, 0, 0), T0 + HOUR);
    CHECK_INT(acme_ari_next_poll("604800", T0, 0, 0), T0 + DAY);
    CHECK_INT(acme_ari_next_poll(NULL, T0, 0, 0), T0 + 6 * HOUR);
    CHECK_INT(acme_ari_next_poll("soon", T0, 0, 0), T0 + 6 * HOUR);
    /* a jitter of at most a twentieth */
    CHECK(acme_ari_next_poll("7200", T0, 0, 0xffffffffu) < T0 + 7200 + 360);
    CHECK(acme_ari_next_poll("7200", T0, 0, 0xffffffffu) > T0 + 7200);
    /* a lower bound of 1 s (tests): the CA's 1 s is taken */
    CHECK_INT(acme_ari_next_poll("1", T0, 1, 0), T0 + 1);
    CHECK_INT(acme_ari_next_poll("0", T0, 1, 0), T0 + 1);
    /* a lower bound above a day is the upper bound too */
    CHECK_INT(acme_ari_next_poll("60", T0, 2 * DAY, 0), T0 + 2 * DAY);
}

UNIT_TEST(ari_state_answers)
{
    acme_cert_state_t  st;
    char               err[256];
    const char        *ans =
        "{\"suggestedWindow\": {\"start\": \"2026-11-20T00:00:00Z\", "
        "\"end\": \"2026-11-21T00:00:00Z\"}, "
        "\"explanationURL\": \"https://ca.test/why\"}";
    const char        *past =
        "{\"suggestedWindow\": {\"start\": \"2020-01-01T00:00:00Z\", "
        "\"end\": \"2020-01-02T00:00:00Z\"}}";
    long long          now = 1795000000LL, at;   /* 2026-11-18 */
    uint32_t           seed = acme_job_seed("a.example.test");

    memset(&st, 0, sizeof(st));

    /* nothing known: due at once (right after the issuance) */
    CHECK_INT(acme_ari_poll_due(&st, RFC_ID, now), 1);
    CHECK_INT(acme_ari_poll_due(&st, NULL, now), 0);
    CHECK_INT(acme_ari_poll_due(&st, "", now), 0);
    CHECK_INT(acme_ari_renew_at(&st, RFC_ID), 0);

    CHECK_INT(acme_ari_answered(&st, RFC_ID, ans, strlen(ans), "7200", now,
                                0, seed, err, sizeof(err)), 0);
    CHECK_STR(st.ari_id, RFC_ID);
    CHECK_STR(st.ari_explanation, "https://ca.test/why");
    CHECK_STR(st.ari_error, "");
    at = acme_ari_renew_at(&st, RFC_ID);
    CHECK(at >= st.ari_start && at < st.ari_end);
    CHECK(st.ari_next_poll >= now + 7200 && st.ari_next_poll < now + 7560);
    CHECK_INT(acme_ari_poll_due(&st, RFC_ID, now + 60), 0);
    CHECK_INT(acme_ari_poll_due(&st, RFC_ID, st.ari_next_poll), 1);
    /* another certificate (a renewal): its own answer is needed */
    CHECK_INT(acme_ari_poll_due(&st, "other.Ag", now + 60), 1);
    CHECK_INT(acme_ari_renew_at(&st, "other.Ag"), 0);

    /* the same window again keeps the time drawn */
    CHECK_INT(acme_ari_answered(&st, RFC_ID, ans, strlen(ans), NULL,
                                now + 7200, 0, seed, err, sizeof(err)), 0);
    CHECK_INT(acme_ari_renew_at(&st, RFC_ID), at);

    /* a window moved into the past: now */
    CHECK_INT(acme_ari_answered(&st, RFC_ID, past, strlen(past), NULL,
                                now + 9000, 0, seed, err, sizeof(err)), 0);
    CHECK_INT(acme_ari_renew_at(&st, RFC_ID), now + 9000);
    CHECK_STR(st.ari_explanation, "");

    /* errors: the answer stands, backoff from the lower bound */
    CHECK_INT(acme_ari_answered(&st, RFC_ID, "garbage", 7, NULL, now + 10000,
                                0, seed, err, sizeof(err)), -1);
    CHECK_INT(st.ari_failures, 1);
    CHECK(strstr(st.ari_error, "renewal-info") != NULL);
    CHECK_INT(acme_ari_renew_at(&st, RFC_ID), now + 9000);
    CHECK(st.ari_next_poll >= now + 10000 + HOUR - HOUR / 10
          && st.ari_next_poll <= now + 10000 + HOUR + HOUR / 10);
    acme_ari_failed(&st, RFC_ID, "renewal-info: HTTP 500", now + 20000, 0,
                    0, seed);
    CHECK_INT(st.ari_failures, 2);
    CHECK(st.ari_next_poll <= now + 20000 + DAY);
    CHECK(st.ari_next_poll >= now + 20000 + 9 * HOUR);
    acme_ari_failed(&st, RFC_ID, "x", now + 30000, 0, 0, seed);
    CHECK(st.ari_next_poll <= now + 30000 + DAY);
    /* a failure for a new certificate: nothing known for it */
    acme_ari_failed(&st, "other.Ag", "x", now + 40000, now + 50000, 1, seed);
    CHECK_STR(st.ari_id, "other.Ag");
    CHECK_INT(st.ari_failures, 1);
    CHECK_INT(acme_ari_renew_at(&st, "other.Ag"), 0);
    CHECK_INT(st.ari_next_poll, now + 50000);   /* the CA's Retry-After */

    /* a CA without renewalInfo: the directory once a day */
    acme_ari_unsupported(&st, "other.Ag", now);
    CHECK_INT(st.ari_unsupported, 1);
    CHECK_INT(st.ari_next_poll, now + DAY);
    CHECK_STR(st.ari_error, "");
}

UNIT_TEST(ari_due_takes_the_window)
{
    acme_job_facts_t   f;
    acme_cert_state_t  st;
    long long          at, life;

    memset(&f, 0, sizeof(f));
    memset(&st, 0, sizeof(st));
    f.have_cert = f.loaded = f.names_ok = 1;
    f.not_before = T0;
    f.not_after = T0 + 90 * DAY;
    f.seed = 7;
    f.ari_id = RFC_ID;

    CHECK_INT(acme_job_due(&f, &st, &life), ACME_JOB_RENEW);

    /* an answer for the served certificate rules */
    snprintf(st.ari_id, sizeof(st.ari_id), "%s", RFC_ID);
    st.ari_at = T0 + 10 * DAY;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_ARI);
    CHECK_INT(at, T0 + 10 * DAY);
    CHECK(acme_job_reason_text(ACME_JOB_ARI) != NULL);

    /* one for another certificate, or past notAfter, does not */
    f.ari_id = "other.Ag";
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);
    CHECK_INT(at, life);
    f.ari_id = RFC_ID;
    st.ari_at = f.not_after + 1;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);

    /* the backoff still holds it back */
    st.ari_at = T0 + 10 * DAY;
    st.next_attempt = T0 + 11 * DAY;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_BACKOFF);
    CHECK_INT(at, T0 + 11 * DAY);
}

UNIT_TEST(ari_replaces_refused)
{
    CHECK_INT(acme_ari_replaces_refused(
        "urn:ietf:params:acme:error:alreadyReplaced", "x"), 1);
    CHECK_INT(acme_ari_replaces_refused(
        "urn:ietf:params:acme:error:malformed",
        "unknown certificate in \"replaces\""), 1);
    CHECK_INT(acme_ari_replaces_refused(
        "urn:ietf:params:acme:error:rateLimited", "too many"), 0);
    CHECK_INT(acme_ari_replaces_refused(NULL, NULL), 0);
}
