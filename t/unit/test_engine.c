/*
 * The ACME engine driven through whole orders against the scripted CA of
 * fake_ca.c.  Time is simulated: SLEEP actions advance the clock.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/hmac.h>

#include "acme_csr.h"
#include "acme_eab.h"
#include "acme_engine.h"
#include "acme_jws.h"
#include "acme_key.h"
#include "acme_util.h"
#include "fake_ca.h"
#include "unit.h"

#define T0          1800000000LL
#define MAX_STEPS   2000

typedef struct {
    /* script */
    int                 fail_http_at;   /* 1-based HTTP action to fail, 0 = none */
    const char         *fail_msg;
    const char         *want_type;      /* PUBLISH challenge type; NULL = http-01 */
    int                 fail_publish_at;/* 1-based PUBLISH the host fails */
    int                 abort_at_http;  /* 1-based HTTP action the host
                                           aborts at instead of sending */
    const char         *lose_path;      /* requests to URLs containing it */
    int                 lose_times;     /* reach the CA, then the host reports
                                           a transport error (-1 = always) */
    size_t              abort_pending;  /* what acme_engine_abort returned */
    char                published_ka[4][512];   /* key authz of the live */
    int                 ms;             /* the clock in ms (acme_engine_next_ms) */

    /* record */
    long long           now;
    int                 n_http, n_sleep, n_publish, n_unpublish, n_account;
    int                 n_revoked;      /* ACME_ACT_REVOKED */
    int                 orders_at_revoked; /* newOrder calls by then */
    int                 live;           /* published - unpublished */
    int                 bad_order;      /* an action after DONE/ERROR etc. */
    long long           max_sleep;      /* longest SLEEP interval */
    long long           last_wake;
    char                sleep_steps[256];   /* acme_engine_step() at each SLEEP */
    char                notes[1024];    /* each SLEEP's note, "|" after each */
    char                account_url[256];
    char                account_refused[512];
    char                identifiers[256];
    char                trace[2048];    /* ms: each request's path after the
                                           CA's host, each SLEEP "+<ms>" */
    acme_action_kind_t  final;
} run_t;


static void
trace_add(run_t *r, const char *s)
{
    size_t n = strlen(r->trace);

    snprintf(r->trace + n, sizeof(r->trace) - n, "%s%s", n ? " " : "", s);
}


typedef struct {
    EVP_PKEY             *account_key;
    EVP_PKEY             *cert_key;
    fake_ca_t            *ca;
    acme_order_config_t   cfg;
    const char           *names[2];
    const char           *contacts[1];
} fixture_t;


static EVP_PKEY *shared_account_key, *shared_cert_key;

static void
free_shared_keys(void)
{
    EVP_PKEY_free(shared_account_key);
    EVP_PKEY_free(shared_cert_key);
}

static void
fixture_init(fixture_t *f, size_t n_names)
{
    /* generated once: the tests need keys, not fresh ones */
    if (shared_account_key == NULL) {
        shared_account_key = acme_key_generate(ACME_KEY_EC_P256);
        shared_cert_key = acme_key_generate(ACME_KEY_EC_P256);
        atexit(free_shared_keys);
    }

    memset(f, 0, sizeof(*f));
    f->account_key = shared_account_key;
    f->cert_key = shared_cert_key;
    f->ca = fake_ca_new(f->account_key);
    f->names[0] = "a.example.test";
    f->names[1] = "b.example.test";
    f->contacts[0] = "mailto:admin@example.test";

    f->cfg.directory_url = FAKE_CA_DIR;
    f->cfg.account_key = f->account_key;
    f->cfg.cert_key = f->cert_key;
    f->cfg.contacts = f->contacts;
    f->cfg.n_contacts = 1;
    f->cfg.terms_agreed = 1;
    f->cfg.names = f->names;
    f->cfg.n_names = n_names;
}


static void
fixture_done(fixture_t *f)
{
    fake_ca_free(f->ca);
}


static void
run(acme_engine_t *e, fake_ca_t *ca, run_t *r)
{
    acme_action_t          act;
    acme_http_response_t   resp;
    char                  *expect;
    int                    i;

    long long              wake;
    char                   buf[64];

    if (r->now == 0) {
        r->now = r->ms ? T0 * 1000 : T0;
    }
    r->final = 0;

    for (i = 0; i < MAX_STEPS; i++) {
        if (r->ms) {
            acme_engine_next_ms(e, r->now, &act);
        } else {
            acme_engine_next(e, r->now, &act);
        }

        switch (act.kind) {

        case ACME_ACT_HTTP:
            r->n_http++;
            if (r->ms) {
                trace_add(r, strncmp(act.request.url, "https://ca.test/", 16)
                             == 0 ? act.request.url + 16 : act.request.url);
            }
            if (r->n_http == r->abort_at_http) {
                r->abort_pending = acme_engine_abort(e, "host stops");
                /* calling it again changes nothing */
                if (acme_engine_abort(e, "again") != r->abort_pending) {
                    r->bad_order++;
                }
                break;
            }
            if (r->n_http == r->fail_http_at) {
                acme_engine_on_transport_error(e, r->fail_msg);
                break;
            }
            fake_ca_handle(ca, &act.request, &resp);
            if (r->lose_path && r->lose_times != 0
                && strstr(act.request.url, r->lose_path) != NULL)
            {
                if (r->lose_times > 0) {
                    r->lose_times--;
                }
                acme_engine_on_transport_error(e, "timed out reading the "
                                               "response");
                break;
            }
            acme_engine_on_response(e, &resp);
            break;

        case ACME_ACT_SLEEP:
            r->n_sleep++;
            if (act.note != NULL
                && strlen(r->notes) + strlen(act.note) + 2 < sizeof(r->notes))
            {
                strcat(r->notes, act.note);
                strcat(r->notes, "|");
            }
            if (strlen(r->sleep_steps) + strlen(acme_engine_step(e)) + 2
                < sizeof(r->sleep_steps))
            {
                strcat(r->sleep_steps, acme_engine_step(e));
                strcat(r->sleep_steps, " ");
            }
            wake = r->ms ? act.wake_at_ms : act.wake_at;
            if (act.wake_at != (act.wake_at_ms + 999) / 1000) {
                r->bad_order++;
                fprintf(stderr, "  SLEEP: wake_at is not wake_at_ms in s\n");
            }
            if (wake <= r->now) {
                r->bad_order++;
                fprintf(stderr, "  SLEEP into the past\n");
            }
            if (wake - r->now > r->max_sleep) {
                r->max_sleep = wake - r->now;
            }
            if (r->ms) {
                snprintf(buf, sizeof(buf), "+%lld", wake - r->now);
                trace_add(r, buf);
            }
            r->now = wake;
            r->last_wake = wake;
            break;

        case ACME_ACT_PUBLISH:
            r->n_publish++;
            r->live++;
            CHECK_STR(act.challenge_type,
                      r->want_type ? r->want_type : "http-01");
            expect = acme_key_authorization(act.token, ca->account_key);
            CHECK_STR(act.key_authz, expect);
            free(expect);
            if (strlen(r->identifiers) + strlen(act.identifier) + 2
                < sizeof(r->identifiers))
            {
                strcat(r->identifiers, act.identifier);
                strcat(r->identifiers, " ");
            }
            if (r->live <= 4) {
                snprintf(r->published_ka[r->live - 1],
                         sizeof(r->published_ka[0]), "%s", act.key_authz);
            }
            if (r->n_publish == r->fail_publish_at) {
                acme_engine_publish_failed(e, "dns-01 update: refused");
                break;
            }
            fake_ca_publish(ca, act.token, act.key_authz);
            break;

        case ACME_ACT_UNPUBLISH:
            r->n_unpublish++;
            r->live--;
            CHECK(act.token != NULL && act.identifier != NULL);
            /* the last published first, with its key authorization again
             * (a dns-01 host computes the TXT value to remove from it) */
            if (r->live >= 0 && r->live < 4) {
                CHECK_STR(act.key_authz, r->published_ka[r->live]);
            }
            break;

        case ACME_ACT_ACCOUNT:
            r->n_account++;
            snprintf(r->account_url, sizeof(r->account_url), "%s",
                     act.account_url);
            snprintf(r->account_refused, sizeof(r->account_refused), "%s",
                     act.account_refused ? act.account_refused : "");
            break;

        case ACME_ACT_REVOKED:
            r->n_revoked++;
            r->orders_at_revoked = ca->n_new_order;
            break;

        case ACME_ACT_DONE:
        case ACME_ACT_ERROR:
            r->final = act.kind;
            /* asking again gives the same answer */
            if (r->ms) {
                acme_engine_next_ms(e, r->now, &act);
            } else {
                acme_engine_next(e, r->now, &act);
            }
            if (act.kind != r->final) {
                r->bad_order++;
            }
            return;

        default:
            r->bad_order++;
            fprintf(stderr, "  unknown action %d\n", (int) act.kind);
            return;
        }
    }

    fprintf(stderr, "  engine did not finish in %d steps\n", MAX_STEPS);
    r->bad_order++;
}


static acme_engine_t *
engine(fixture_t *f)
{
    char            err[ACME_ERRLEN];
    acme_engine_t  *e;

    e = acme_engine_new(&f->cfg, err, sizeof(err));
    if (e == NULL) {
        fprintf(stderr, "  acme_engine_new: %s\n", err);
    }
    return e;
}


static void
show_error(acme_engine_t *e, run_t *r)
{
    if (r->final == ACME_ACT_ERROR) {
        fprintf(stderr, "  engine error: %s\n", acme_engine_error(e));
    }
}


UNIT_TEST(engine_full_order)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;
    const char     *cert;
    size_t          len;

    fixture_init(&f, 2);
    f.ca->pending_polls = 2;
    f.ca->processing_polls = 1;
    f.ca->poll_retry_after = "3";

    e = engine(&f);
    CHECK(e != NULL);
    if (e == NULL) {
        fixture_done(&f);
        return;
    }
    CHECK_STR(acme_engine_step(e), "directory");

    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);

    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.bad_order, 0);
    CHECK_INT(f.ca->violations, 0);
    CHECK_STR(acme_engine_step(e), "done");

    cert = acme_engine_certificate(e, &len);
    CHECK(cert != NULL && strncmp(cert, "-----BEGIN CERTIFICATE-----", 27) == 0);
    CHECK_INT(len, cert ? strlen(cert) : 0);

    /* the account was looked up, then created and handed to the host */
    CHECK_INT(f.ca->n_account_lookup, 1);
    CHECK_INT(f.ca->n_account_create, 1);
    CHECK_INT(f.ca->terms_agreed, 1);
    CHECK_STR(f.ca->contact, "[\"mailto:admin@example.test\"]");
    CHECK_INT(r.n_account, 1);
    CHECK_STR(r.account_url, "https://ca.test/acct/1");
    CHECK_STR(acme_engine_account_url(e), "https://ca.test/acct/1");
    CHECK_STR(acme_engine_order_url(e), "https://ca.test/order/1");

    /* one nonce fetch at the start, then every answer's nonce is used */
    CHECK_INT(f.ca->n_nonce, 1);
    CHECK_INT(f.ca->n_dir, 1);
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK_INT(f.ca->n_challenge, 2);
    CHECK_INT(f.ca->n_finalize, 1);
    CHECK_INT(f.ca->n_cert, 1);

    /* both names published, all unpublished before DONE */
    CHECK_INT(r.n_publish, 2);
    CHECK_INT(r.n_unpublish, 2);
    CHECK_INT(r.live, 0);
    CHECK_STR(r.identifiers, "a.example.test b.example.test ");

    /* polls follow Retry-After: both challenges are answered, then the
     * first authorization waited for (after the challenge + 2 pending
     * polls), the second (answered as long ago) polled at once and twice
     * more; then after finalize and one "processing" order poll */
    CHECK_INT(r.max_sleep, 3);
    CHECK_INT(r.n_sleep, 3 + 2 + 2);
    CHECK_INT(acme_engine_retry_after(e), 0);

    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_poll_interval)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* no Retry-After, a host counting whole seconds: 50, 100, 200 ms
     * are 1 s each; a huge Retry-After: capped at 60 s */
    fixture_init(&f, 1);
    f.ca->pending_polls = 2;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.max_sleep, 1);
    CHECK_INT(r.n_sleep, 3);
    acme_engine_free(e);
    fixture_done(&f);

    fixture_init(&f, 1);
    f.ca->pending_polls = 1;
    f.ca->poll_retry_after = "86400";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.max_sleep, 60);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


/* Polls without Retry-After follow the CA: 50 ms, doubled up to 5 s; the
 * order's wait after finalize starts again at 50 ms. */
UNIT_TEST(engine_poll_backoff_ms)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->pending_polls = 9;
    f.ca->processing_polls = 3;     /* finalize + 3 polls "processing" */
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.ms = 1;
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.bad_order, 0);
    CHECK_INT(f.ca->violations, 0);
    CHECK(strstr(r.trace, "chal/0 +50 authz/0 +100 authz/0 +200 authz/0 "
                 "+400 authz/0 +800 authz/0 +1600 authz/0 +3200 authz/0 "
                 "+5000 authz/0 +5000 authz/0 +5000 authz/0 order/1 "
                 "finalize/1 +50 order/1 +100 order/1 +200 order/1 +400 order/1 "
                 "cert/1")
          != NULL);
    CHECK_INT(r.max_sleep, 5000);
    if (r.final != ACME_ACT_DONE || r.max_sleep != 5000) {
        fprintf(stderr, "  trace: %s\n", r.trace);
    }
    acme_engine_free(e);
    fixture_done(&f);
}


/* A Retry-After is honoured as it is (at least 1 s), in ms too. */
UNIT_TEST(engine_poll_retry_after_ms)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->pending_polls = 2;
    f.ca->processing_polls = 1;
    f.ca->poll_retry_after = "2";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.ms = 1;
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.bad_order, 0);
    CHECK(strstr(r.trace, "chal/0 +2000 authz/0 +2000 authz/0 +2000 authz/0 "
                 "order/1 finalize/1 +2000 order/1 +2000 order/1 cert/1") != NULL);
    acme_engine_free(e);
    fixture_done(&f);

    /* "0" is no reason to hammer the CA: 1 s */
    fixture_init(&f, 1);
    f.ca->pending_polls = 1;
    f.ca->poll_retry_after = "0";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.ms = 1;
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK(strstr(r.trace, "chal/0 +1000 authz/0 +1000 authz/0 order/1")
          != NULL);
    acme_engine_free(e);
    fixture_done(&f);
}


/* finalize answered "valid": the certificate is downloaded at once. */
UNIT_TEST(engine_finalize_valid_no_poll)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.ms = 1;
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK(strstr(r.trace, "order/1 finalize/1 cert/1") != NULL);
    /* the one order read is the one before finalize */
    CHECK_INT(f.ca->n_order_get, 1);
    CHECK(strstr(r.sleep_steps, "finalize") == NULL);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


/* A CSR the host built ahead (in its thread, at low priority) is the one
 * finalized, byte for byte (an ECDSA signature is new each time: a CSR the
 * engine built would differ): the engine signs nothing on the event loop. */
UNIT_TEST(engine_csr_ahead)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;
    unsigned char  *der = NULL;
    size_t          der_len = 0;
    char           *csr = NULL, *copy, err[ACME_ERRLEN];

    fixture_init(&f, 2);
    CHECK_INT(acme_csr_build(f.cert_key, f.names, 2, 0, &der, &der_len, err,
                             sizeof(err)), 0);
    csr = der ? acme_b64url_encode(der, der_len) : NULL;
    free(der);
    copy = csr ? strdup(csr) : NULL;
    f.cfg.csr_b64 = csr;
    e = engine(&f);
    free(csr);                  /* borrowed until acme_engine_new() */
    CHECK(e != NULL && copy != NULL);
    if (e == NULL || copy == NULL) {
        free(copy);
        acme_engine_free(e);
        fixture_done(&f);
        return;
    }
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->violations, 0);
    CHECK_STR(f.ca->last_csr, copy);
    acme_engine_free(e);

    /* without one, the engine builds its own at finalize */
    f.cfg.csr_b64 = NULL;
    fake_ca_free(f.ca);
    f.ca = fake_ca_new(f.account_key);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK(f.ca->last_csr != NULL && strcmp(f.ca->last_csr, copy) != 0);
    free(copy);
    acme_engine_free(e);
    fixture_done(&f);
}


/* Every challenge is answered before the first poll: the CA validates the
 * names together; a name found valid lets the next one be polled at once. */
UNIT_TEST(engine_authz_parallel)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 2);
    f.ca->pending_polls = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.ms = 1;
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.bad_order, 0);
    CHECK_INT(f.ca->violations, 0);
    CHECK(strstr(r.trace, "authz/0 chal/0 authz/1 chal/1 +50 authz/0 +100 "
                 "authz/0 authz/1 +100 authz/1 order/1 finalize/1 cert/1")
          != NULL);
    CHECK_INT(r.n_publish, 2);
    CHECK_INT(r.live, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* dns-01 alike: each record published before its answer */
    fixture_init(&f, 2);
    f.ca->validate_type = "dns-01";
    f.cfg.challenge_type = "dns-01";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.ms = 1;
    r.want_type = "dns-01";
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK(strstr(r.trace, "authz/0 chal/0 authz/1 chal/1 +50 authz/0 authz/1 "
                 "order/1") != NULL);
    CHECK_INT(r.n_publish, 2);
    CHECK_INT(r.live, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_sync_validation_no_sleep)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* "valid" right in the challenge and finalize answers: no waiting */
    fixture_init(&f, 2);
    f.ca->sync_validation = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.n_sleep, 0);
    CHECK_INT(r.n_publish, 2);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_ip_identifiers)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 2);
    f.names[0] = "127.0.0.1";
    f.names[1] = "::1";
    f.ca->sync_validation = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_STR(f.ca->identifiers,
              "[{\"type\":\"ip\",\"value\":\"127.0.0.1\"},"
              "{\"type\":\"ip\",\"value\":\"::1\"}]");
    acme_engine_free(e);
    fixture_done(&f);

    fixture_init(&f, 1);
    f.ca->sync_validation = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_STR(f.ca->identifiers,
              "[{\"type\":\"dns\",\"value\":\"a.example.test\"}]");
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_bad_nonce_retry)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->bad_nonce_next = 3;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_bad_nonce, 3);
    /* retried with the nonce of the badNonce answer, no extra HEAD */
    CHECK_INT(f.ca->n_nonce, 1);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* gives up after max_bad_nonce retries of one request */
    fixture_init(&f, 1);
    f.ca->bad_nonce_next = 100;
    f.cfg.max_bad_nonce = 2;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_INT(f.ca->n_bad_nonce, 3);
    CHECK_STR(acme_engine_error(e),
              "new-account: urn:ietf:params:acme:error:badNonce: "
              "JWS has an invalid anti-replay nonce (HTTP 400)");
    CHECK_STR(acme_engine_step(e), "error");
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_problem_verbatim)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 2);
    f.ca->fail_path = "/new-order";
    f.ca->fail_status = 400;
    f.ca->fail_ctype = "application/problem+json";
    f.ca->fail_body =
        "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
        "\"detail\":\"Error creating new order :: Cannot issue for "
        "\\\"b.example.test\\\": policy forbids it\",\"status\":400,"
        "\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
        "\"detail\":\"forbidden\\nname\",\"identifier\":{\"type\":\"dns\","
        "\"value\":\"b.example.test\"}}]}";

    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "new-order: the CA refused b.example.test: "
              "urn:ietf:params:acme:error:rejectedIdentifier: forbidden name; "
              "urn:ietf:params:acme:error:rejectedIdentifier: "
              "Error creating new order :: Cannot issue for "
              "\"b.example.test\": policy forbids it (HTTP 400)");
    CHECK_INT(acme_engine_retry_after(e), 0);
    CHECK_INT(r.n_publish, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_rate_limited_retry_after)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->fail_path = "/new-order";
    f.ca->fail_status = 429;
    f.ca->fail_ctype = "application/problem+json";
    f.ca->fail_retry_after = "3600";
    f.ca->fail_body = "{\"type\":\"urn:ietf:params:acme:error:rateLimited\","
                      "\"detail\":\"too many certificates\",\"status\":429}";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "new-order: urn:ietf:params:acme:error:rateLimited: "
              "too many certificates (HTTP 429)");
    CHECK_INT(acme_engine_retry_after(e), r.now + 3600);
    acme_engine_free(e);
    fixture_done(&f);

    /* HTTP-date form on a 503 without a problem document (an hour ahead:
     * the 503s to newOrder are retried first, 60 s apart at most) */
    fixture_init(&f, 1);
    f.ca->fail_path = "/new-order";
    f.ca->fail_status = 503;
    f.ca->fail_ctype = "text/html";
    f.ca->fail_body = "<html>down</html>";
    f.ca->fail_retry_after = "Fri, 15 Jan 2027 09:00:00 GMT";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "new-order: unexpected response: HTTP 503 (text/html)");
    CHECK_INT(acme_engine_retry_after(e),
              acme_time_parse_http_date("Fri, 15 Jan 2027 09:00:00 GMT"));
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_garbage_json)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->fail_path = "/authz/";
    f.ca->fail_status = 200;
    f.ca->fail_ctype = "application/json";
    f.ca->fail_body = "{\"status\": \"pending\", garbage";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK(strncmp(acme_engine_error(e),
                  "authorization: response is not valid JSON (HTTP 200, "
                  "application/json): ", 69) == 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* JSON, but not an authorization */
    fixture_init(&f, 1);
    f.ca->fail_path = "/authz/";
    f.ca->fail_status = 200;
    f.ca->fail_body = "{\"status\":\"pending\"}";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "authorization: https://ca.test/authz/0 has no \"identifier\"");
    acme_engine_free(e);
    fixture_done(&f);

    /* a JSON array as directory-level garbage from a proxy */
    fixture_init(&f, 1);
    f.ca->fail_path = "/new-order";
    f.ca->fail_status = 201;
    f.ca->fail_body = "[1,2]";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "new-order: response is not a JSON object (HTTP 201)");
    acme_engine_free(e);
    fixture_done(&f);

    /* the certificate is not PEM */
    fixture_init(&f, 1);
    f.ca->fail_path = "/cert/";
    f.ca->fail_status = 200;
    f.ca->fail_ctype = "text/html";
    f.ca->fail_body = "<html></html>";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "certificate: the response is not a PEM certificate chain "
              "(HTTP 200, text/html)");
    CHECK(acme_engine_certificate(e, NULL) == NULL);
    CHECK_INT(r.live, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_stored_account_reused)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->account_url = acme_strdup("https://ca.test/acct/9");
    f.cfg.account_url = "https://ca.test/acct/9";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_account_lookup, 0);
    CHECK_INT(f.ca->n_account_create, 0);
    CHECK_INT(r.n_account, 0);
    CHECK_STR(acme_engine_account_url(e), "https://ca.test/acct/9");
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


/* a URL the store refused (another job's, from the gate): handed to the
 * host once more to write, without asking the CA for it */
UNIT_TEST(engine_unsaved_account_emitted_again)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->account_url = acme_strdup("https://ca.test/acct/9");
    f.cfg.account_url = "https://ca.test/acct/9";
    f.cfg.account_unsaved = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_account_lookup, 0);
    CHECK_INT(f.ca->n_account_create, 0);
    CHECK_INT(r.n_account, 1);
    CHECK_STR(r.account_url, "https://ca.test/acct/9");
    CHECK_STR(r.account_refused, "");
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_account_lookup_existing)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->account_url = acme_strdup("https://ca.test/acct/5");
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_account_lookup, 1);
    CHECK_INT(f.ca->n_account_create, 0);
    CHECK_INT(r.n_account, 1);
    CHECK_STR(r.account_url, "https://ca.test/acct/5");
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_account_not_found_creates)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* the stored account is unknown to the CA (its database was reset) */
    fixture_init(&f, 1);
    f.cfg.account_url = "https://ca.test/acct/old";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_new_order, 1);     /* the first one was refused early */
    CHECK_INT(f.ca->n_account_lookup, 1);
    CHECK_INT(f.ca->n_account_create, 1);
    CHECK_INT(r.n_account, 1);
    CHECK_STR(r.account_url, "https://ca.test/acct/1");
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* the key's account is the refused one: never signed with again */
    fixture_init(&f, 1);
    f.cfg.account_url = "https://ca.test/acct/old";
    f.ca->fail_path = "/new-order";
    f.ca->fail_status = 401;
    f.ca->fail_ctype = "application/problem+json";
    f.ca->fail_body = "{\"type\":\"urn:ietf:params:acme:error:unauthorized\","
                      "\"detail\":\"Account is not valid, has status \\\"deactivated\\\"\"}";
    f.ca->fail_times = -1;
    f.ca->account_url = acme_strdup("https://ca.test/acct/old");
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_INT(f.ca->n_account_lookup, 1);
    CHECK_INT(f.ca->n_new_order, 0);
    CHECK_INT(r.n_account, 0);
    CHECK_STR(acme_engine_error(e),
              "new-order: urn:ietf:params:acme:error:unauthorized: Account is "
              "not valid, has status \"deactivated\" (HTTP 401); the CA gives "
              "the same account https://ca.test/acct/old for the account key");
    acme_engine_free(e);
    fixture_done(&f);
}


/*
 * The stored URL is another key's account (account.key and account.json of
 * different accounts): the CA cannot verify our signature with that
 * account's key.  The engine looks its key's account up once and goes on
 * with that URL, which the host then stores.
 */
UNIT_TEST(engine_account_of_another_key_heals)
{
    static const char *types[] = { "malformed", "unauthorized" };
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;
    size_t          i;

    for (i = 0; i < 2; i++) {
        fixture_init(&f, 1);
        f.ca->account_url = acme_strdup("https://ca.test/acct/5");
        f.ca->foreign_account_url = "https://ca.test/acct/7";
        f.ca->foreign_type = types[i];
        f.cfg.account_url = "https://ca.test/acct/7";
        e = engine(&f);
        memset(&r, 0, sizeof(r));
        run(e, f.ca, &r);
        show_error(e, &r);
        CHECK_INT(r.final, ACME_ACT_DONE);
        CHECK_INT(f.ca->n_account_lookup, 1);
        CHECK_INT(f.ca->n_account_create, 0);
        CHECK_INT(f.ca->n_new_order, 1);
        CHECK_INT(r.n_account, 1);
        CHECK_STR(r.account_url, "https://ca.test/acct/5");
        CHECK(strstr(r.account_refused, "new-order: urn:ietf:params:acme:"
                     "error:") == r.account_refused);
        CHECK(strstr(r.account_refused, "JWS verification error") != NULL);
        CHECK_STR(acme_engine_account_url(e), "https://ca.test/acct/5");
        CHECK_INT(f.ca->violations, 0);
        acme_engine_free(e);
        fixture_done(&f);
    }

    /* no account for the key at all: registered */
    fixture_init(&f, 1);
    f.ca->foreign_account_url = "https://ca.test/acct/7";
    f.cfg.account_url = "https://ca.test/acct/7";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_account_lookup, 1);
    CHECK_INT(f.ca->n_account_create, 1);
    CHECK_INT(r.n_account, 1);
    CHECK_STR(r.account_url, "https://ca.test/acct/1");
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* once per order: the looked-up account refused as well is an error */
    fixture_init(&f, 1);
    f.ca->account_url = acme_strdup("https://ca.test/acct/5");
    f.ca->foreign_account_url = "https://ca.test/acct/7";
    f.cfg.account_url = "https://ca.test/acct/7";
    f.ca->fail_path = "/new-order";
    f.ca->fail_status = 400;
    f.ca->fail_ctype = "application/problem+json";
    f.ca->fail_body = "{\"type\":\"urn:ietf:params:acme:error:malformed\","
                      "\"detail\":\"JWS verification error\"}";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_INT(f.ca->n_account_lookup, 1);
    CHECK_INT(r.n_account, 1);
    CHECK_STR(acme_engine_error(e), "new-order: urn:ietf:params:acme:error:"
              "malformed: JWS verification error (HTTP 400)");
    CHECK_INT(r.live, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* a URL the engine found itself is not looked up again */
    fixture_init(&f, 1);
    f.ca->account_url = acme_strdup("https://ca.test/acct/5");
    f.ca->fail_path = "/new-order";
    f.ca->fail_status = 400;
    f.ca->fail_ctype = "application/problem+json";
    f.ca->fail_body = "{\"type\":\"urn:ietf:params:acme:error:malformed\","
                      "\"detail\":\"JWS verification error\"}";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_INT(f.ca->n_account_lookup, 1);
    CHECK_INT(r.n_account, 1);
    CHECK_STR(r.account_refused, "");
    acme_engine_free(e);
    fixture_done(&f);

    /* other "malformed" problems are the order's, not the account's */
    fixture_init(&f, 1);
    f.ca->account_url = acme_strdup("https://ca.test/acct/5");
    f.cfg.account_url = "https://ca.test/acct/5";
    f.ca->fail_path = "/new-order";
    f.ca->fail_status = 400;
    f.ca->fail_ctype = "application/problem+json";
    f.ca->fail_body = "{\"type\":\"urn:ietf:params:acme:error:malformed\","
                      "\"detail\":\"Order included a DNS identifier with a "
                      "value ending in a period\"}";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_INT(f.ca->n_account_lookup, 0);
    CHECK_INT(r.n_account, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_challenge_invalid)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 2);
    f.ca->challenge_fails = 1;
    f.ca->pending_polls = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "authorization of a.example.test is invalid: http-01 challenge "
              "failed: the CA fetched http://a.example.test/.well-known/"
              "acme-challenge/tok0_http-xyz: "
              "urn:ietf:params:acme:error:unauthorized: Invalid "
              "response from http://a.example.test/.well-known/acme-challenge/"
              "tok: 404");
    /* both challenges were answered before the first poll */
    CHECK_INT(r.n_publish, 2);
    CHECK_INT(r.n_unpublish, 2);
    CHECK_INT(r.live, 0);
    CHECK_INT(f.ca->n_finalize, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_authz_already_valid)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 2);
    f.ca->authz_valid = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.n_publish, 0);
    CHECK_INT(f.ca->n_challenge, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_deadline)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->pending_polls = 1000000;
    f.ca->poll_retry_after = "7";
    f.cfg.deadline = T0 + 30;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "timed out waiting for the authorization of a.example.test to "
              "become valid");
    /* slept in Retry-After steps, the last one cut at the deadline */
    CHECK_INT(r.last_wake, T0 + 30);
    CHECK_INT(r.max_sleep, 7);
    CHECK_INT(r.live, 0);
    CHECK_INT(r.n_unpublish, 1);
    CHECK_INT(r.bad_order, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* deadline 0 = 600 s from the first call */
    fixture_init(&f, 1);
    f.ca->pending_polls = 1000000;
    f.ca->poll_retry_after = "60";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_INT(r.last_wake, T0 + 600);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_eab_required)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->eab_required = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK(strstr(acme_engine_error(e), "External Account Binding") != NULL);
    CHECK_INT(f.ca->n_account_create, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_terms_not_agreed)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 1);
    f.ca->terms_required = 1;
    f.cfg.terms_agreed = 0;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "new-account: urn:ietf:params:acme:error:userActionRequired: "
              "must agree to terms of service (HTTP 403); the CA's terms of "
              "service (https://ca.test/tos) have not been agreed to");
    CHECK_INT(f.ca->terms_agreed, 0);
    CHECK_INT(r.n_account, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_transport_error)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* 1 directory, 2 HEAD new-nonce, 3 account lookup */
    fixture_init(&f, 1);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.fail_http_at = 3;
    r.fail_msg = "connection refused";
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e), "new-account: connection refused");
    acme_engine_free(e);
    fixture_done(&f);

    fixture_init(&f, 1);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.fail_http_at = 2;
    r.fail_msg = "timed out reading the response";
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e), "new-nonce: timed out reading the response");
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_config_errors)
{
    fixture_t   f;
    char        err[ACME_ERRLEN];

    fixture_init(&f, 0);
    CHECK(acme_engine_new(&f.cfg, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "names") != NULL);
    f.cfg.n_names = 1;
    f.cfg.directory_url = NULL;
    CHECK(acme_engine_new(&f.cfg, err, sizeof(err)) == NULL);
    fixture_done(&f);
}


/* ---- External Account Binding -------------------------------------------- */

/* pebble's sample EAB key (base64url, 48 bytes) */
static const char eab_key64[] =
    "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";


static char *
b64_member(json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    size_t      n;

    return v ? (char *) acme_b64url_decode(v, strlen(v), &n) : NULL;
}


/* Checks the binding the CA received on its own: header, payload = the
 * account JWK, and the HMAC recomputed with OpenSSL's one-shot HMAC(). */
static void
check_binding(const char *text, EVP_PKEY *account_key, const char *kid,
    const unsigned char *key, size_t key_len, const char *alg,
    const EVP_MD *md)
{
    json_t         *o, *hdr;
    const char     *p64, *pl64, *s64;
    char           *hdr_text, *payload, *jwk, *input, *expect;
    unsigned char   mac[EVP_MAX_MD_SIZE];
    unsigned int    maclen = 0;

    o = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(o != NULL);
    if (o == NULL) {
        return;
    }
    CHECK_INT(json_object_size(o), 3);
    p64 = json_string_value(json_object_get(o, "protected"));
    pl64 = json_string_value(json_object_get(o, "payload"));
    s64 = json_string_value(json_object_get(o, "signature"));
    CHECK(p64 && pl64 && s64);

    hdr_text = b64_member(o, "protected");
    hdr = hdr_text ? json_loads(hdr_text, 0, NULL) : NULL;
    CHECK(hdr != NULL);
    CHECK_INT(json_object_size(hdr), 3);
    CHECK_STR(json_string_value(json_object_get(hdr, "alg")), alg);
    CHECK_STR(json_string_value(json_object_get(hdr, "kid")), kid);
    CHECK_STR(json_string_value(json_object_get(hdr, "url")),
              "https://ca.test/new-account");

    payload = b64_member(o, "payload");
    jwk = acme_jwk_json(account_key);
    CHECK_STR(payload, jwk);

    input = (p64 && pl64) ? acme_sprintf("%s.%s", p64, pl64) : NULL;
    CHECK(input != NULL
          && HMAC(md, key, (int) key_len, (unsigned char *) input,
                  strlen(input), mac, &maclen) != NULL);
    expect = acme_b64url_encode(mac, maclen);
    CHECK_STR(s64, expect);

    free(expect);
    free(input);
    free(jwk);
    free(payload);
    free(hdr_text);
    json_decref(hdr);
    json_decref(o);
}


UNIT_TEST(engine_eab_binding)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;
    unsigned char  *key;
    size_t          key_len;
    int             i;
    static const struct { const char *alg; int hs; } algs[] = {
        { NULL, 256 }, { "HS384", 384 }, { "HS512", 512 },
    };

    key = acme_eab_mac_key_decode(eab_key64, &key_len, NULL, 0);
    CHECK(key != NULL && key_len == 48);
    if (key == NULL) {
        return;
    }

    for (i = 0; i < 3; i++) {
        /* a CA that requires EAB; the engine holds its own copy of the key,
         * so the caller's buffer may go away right after acme_engine_new */
        fixture_init(&f, 1);
        f.ca->eab_required = 1;
        f.ca->eab_kid = "kid-1";
        f.ca->eab_key = key;
        f.ca->eab_key_len = key_len;
        f.cfg.eab_kid = "kid-1";
        f.cfg.eab_key = key;
        f.cfg.eab_key_len = key_len;
        f.cfg.eab_alg = algs[i].alg;
        e = engine(&f);
        CHECK(e != NULL);
        if (e == NULL) {
            fixture_done(&f);
            break;
        }
        f.cfg.eab_key = NULL;
        memset(&r, 0, sizeof(r));
        run(e, f.ca, &r);
        show_error(e, &r);
        CHECK_INT(r.final, ACME_ACT_DONE);
        CHECK_INT(f.ca->violations, 0);
        CHECK_INT(f.ca->n_account_lookup, 1);
        CHECK_INT(f.ca->n_account_create, 1);
        CHECK_STR(r.account_url, "https://ca.test/acct/1");
        check_binding(f.ca->eab, f.account_key, "kid-1", key, key_len,
                      algs[i].alg ? algs[i].alg : "HS256",
                      algs[i].hs == 256 ? EVP_sha256()
                      : algs[i].hs == 384 ? EVP_sha384() : EVP_sha512());
        acme_engine_free(e);
        fixture_done(&f);
    }

    /* an account that exists already is only looked up: no binding */
    fixture_init(&f, 1);
    f.ca->eab_required = 1;
    f.ca->account_url = acme_strdup("https://ca.test/acct/7");
    f.cfg.eab_kid = "kid-1";
    f.cfg.eab_key = key;
    f.cfg.eab_key_len = key_len;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_account_lookup, 1);
    CHECK_INT(f.ca->n_account_create, 0);
    CHECK(f.ca->eab == NULL);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    acme_eab_mac_key_free(key, key_len);
}


UNIT_TEST(engine_eab_absent_when_not_configured)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* the CA would check a binding (it knows a kid), none is sent */
    fixture_init(&f, 1);
    f.ca->eab_kid = "kid-1";
    f.ca->eab_key = (const unsigned char *) "k";
    f.ca->eab_key_len = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_account_create, 1);
    CHECK(f.ca->eab == NULL);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_eab_rejected)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;
    unsigned char  *key, wrong[48];
    size_t          key_len;
    const char     *msg;

    key = acme_eab_mac_key_decode(eab_key64, &key_len, NULL, 0);
    CHECK(key != NULL);
    if (key == NULL) {
        return;
    }
    memcpy(wrong, key, sizeof(wrong));
    wrong[0] ^= 1;

    /* wrong MAC key: the CA's problem verbatim, then the likely cause */
    fixture_init(&f, 1);
    f.ca->eab_required = 1;
    f.ca->eab_kid = "kid-1";
    f.ca->eab_key = key;
    f.ca->eab_key_len = key_len;
    f.cfg.eab_kid = "kid-1";
    f.cfg.eab_key = wrong;
    f.cfg.eab_key_len = sizeof(wrong);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    msg = acme_engine_error(e);
    CHECK_STR(msg,
              "new-account: urn:ietf:params:acme:error:malformed: JWS "
              "verification error (HTTP 400); the CA rejected the External "
              "Account Binding (check the EAB kid \"kid-1\" and MAC key)");
    /* the key never shows, in either encoding */
    CHECK(msg == NULL || strstr(msg, eab_key64) == NULL);
    CHECK(msg == NULL || strstr(msg, "zWNDZM6e") == NULL);
    CHECK_INT(r.n_account, 0);
    CHECK_INT(r.live, 0);
    CHECK_INT(acme_engine_retry_after(e), 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* unknown kid */
    fixture_init(&f, 1);
    f.ca->eab_kid = "kid-1";
    f.ca->eab_key = key;
    f.ca->eab_key_len = key_len;
    f.cfg.eab_kid = "kid-2";
    f.cfg.eab_key = key;
    f.cfg.eab_key_len = key_len;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "new-account: urn:ietf:params:acme:error:unauthorized: the "
              "field 'kid' references a key that is not known to the ACME "
              "server (HTTP 401); the CA rejected the External Account "
              "Binding (check the EAB kid \"kid-2\" and MAC key)");
    acme_engine_free(e);
    fixture_done(&f);

    /* a problem with another cause is not blamed on the binding */
    fixture_init(&f, 1);
    f.ca->terms_required = 1;
    f.cfg.terms_agreed = 0;
    f.cfg.eab_kid = "kid-1";
    f.cfg.eab_key = key;
    f.cfg.eab_key_len = key_len;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK(strstr(acme_engine_error(e), "External Account Binding") == NULL);
    acme_engine_free(e);
    fixture_done(&f);

    acme_eab_mac_key_free(key, key_len);
}


UNIT_TEST(engine_eab_config_errors)
{
    fixture_t   f;
    char        err[ACME_ERRLEN];

    fixture_init(&f, 1);
    f.cfg.eab_kid = "kid-1";
    err[0] = '\0';
    CHECK(acme_engine_new(&f.cfg, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "External Account Binding") != NULL);
    CHECK(strstr(err, "kid-1") != NULL);

    f.cfg.eab_key = (const unsigned char *) "0123456789abcdef";
    f.cfg.eab_key_len = 16;
    f.cfg.eab_alg = "HS1";
    err[0] = '\0';
    CHECK(acme_engine_new(&f.cfg, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "External Account Binding") != NULL);
    CHECK(strstr(err, "0123456789abcdef") == NULL);
    fixture_done(&f);
}


/* ---- tls-alpn-01 --------------------------------------------------------- */

UNIT_TEST(engine_tls_alpn_order)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* published like http-01: the identifier (a wildcard's base name) and
     * the raw key authorization; the host hashes it into the certificate.
     * (Real CAs offer only dns-01 for wildcards; the engine does not care.) */
    fixture_init(&f, 2);
    f.names[1] = "*.b.example.test";
    f.cfg.challenge_type = "tls-alpn-01";
    f.ca->validate_type = "tls-alpn-01";
    f.ca->pending_polls = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.want_type = "tls-alpn-01";
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.bad_order, 0);
    CHECK_INT(r.n_publish, 2);
    CHECK_INT(r.n_unpublish, 2);
    CHECK_INT(r.live, 0);
    CHECK_STR(r.identifiers, "a.example.test b.example.test ");
    CHECK_STR(f.ca->identifiers,
              "[{\"type\":\"dns\",\"value\":\"a.example.test\"},"
              "{\"type\":\"dns\",\"value\":\"*.b.example.test\"}]");
    CHECK_INT(f.ca->n_challenge, 2);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* an authorization without the configured type is a clear error */
    fixture_init(&f, 1);
    f.cfg.challenge_type = "tls-alpn-02";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "authorization of a.example.test offers no tls-alpn-02 "
              "challenge");
    acme_engine_free(e);
    fixture_done(&f);
}


/* A certificate for another key, or lacking an ordered name: ERROR naming
 * the certificate URL, nothing to store, challenges unpublished. */
UNIT_TEST(engine_rejects_wrong_certificate)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;
    int             mischief;

    for (mischief = FAKE_CA_CERT_OTHER_KEY;
         mischief <= FAKE_CA_CERT_LACKS_NAME; mischief++)
    {
        fixture_init(&f, 2);
        f.ca->cert_mischief = mischief;
        e = engine(&f);
        CHECK(e != NULL);
        if (e == NULL) {
            fixture_done(&f);
            return;
        }

        memset(&r, 0, sizeof(r));
        run(e, f.ca, &r);

        CHECK_INT(r.final, ACME_ACT_ERROR);
        CHECK_INT(r.bad_order, 0);
        CHECK_INT(r.live, 0);
        CHECK_INT(f.ca->violations, 0);
        CHECK_INT(f.ca->n_cert, 1);
        CHECK(acme_engine_certificate(e, NULL) == NULL);
        CHECK_STR(acme_engine_error(e),
                  mischief == FAKE_CA_CERT_OTHER_KEY
                  ? "certificate: rejected the certificate at "
                    "https://ca.test/cert/1: its public key is not the key "
                    "of the CSR"
                  : "certificate: rejected the certificate at "
                    "https://ca.test/cert/1: it lacks the ordered "
                    "identifier \"b.example.test\" in its subjectAltName");

        acme_engine_free(e);
        fixture_done(&f);
    }
}


/* The host could not publish a challenge: the order fails with the host's
 * message, and every published challenge (the failed one too: a half-done
 * update is undone) is unpublished before ERROR. */
UNIT_TEST(engine_publish_failed)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    fixture_init(&f, 2);
    f.cfg.challenge_type = "dns-01";
    f.ca->validate_type = "dns-01";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.want_type = "dns-01";
    r.fail_publish_at = 2;
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_INT(r.bad_order, 0);
    CHECK_STR(acme_engine_error(e), "dns-01 update: refused");
    CHECK_INT(acme_engine_retry_after(e), 0);
    CHECK_INT(r.n_publish, 2);
    CHECK_INT(r.n_unpublish, 2);
    CHECK_INT(r.live, 0);
    /* the first challenge was answered, the second never */
    CHECK_INT(f.ca->n_challenge, 1);
    CHECK_INT(f.ca->n_finalize, 0);
    CHECK_INT(f.ca->violations, 0);
    /* asked later (no PUBLISH just before): ignored */
    acme_engine_publish_failed(e, "late");
    CHECK_STR(acme_engine_error(e), "dns-01 update: refused");
    acme_engine_free(e);
    fixture_done(&f);

    /* the first one fails: only it is unpublished */
    fixture_init(&f, 2);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.fail_publish_at = 1;
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_INT(r.bad_order, 0);
    CHECK_INT(r.n_publish, 1);
    CHECK_INT(r.n_unpublish, 1);
    CHECK_INT(f.ca->n_challenge, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


/* The host aborts: what is published is unpublished (the engine is the one
 * list of it), then ERROR with the host's message; nothing after DONE. */
UNIT_TEST(engine_abort)
{
    fixture_t       f;
    run_t           r, whole;
    acme_engine_t  *e;
    int             at;

    /* the HTTP actions of a whole order with two names */
    fixture_init(&f, 2);
    f.cfg.challenge_type = "dns-01";
    f.ca->validate_type = "dns-01";
    e = engine(&f);
    memset(&whole, 0, sizeof(whole));
    whole.want_type = "dns-01";
    run(e, f.ca, &whole);
    CHECK_INT(whole.final, ACME_ACT_DONE);
    /* after DONE an abort changes nothing */
    CHECK_INT(acme_engine_abort(e, "late"), 0);
    CHECK(acme_engine_certificate(e, NULL) != NULL);
    acme_engine_free(e);
    fixture_done(&f);

    /* aborted at every request: each published challenge comes back */
    for (at = 1; at <= whole.n_http; at++) {
        fixture_init(&f, 2);
        f.cfg.challenge_type = "dns-01";
        f.ca->validate_type = "dns-01";
        e = engine(&f);
        memset(&r, 0, sizeof(r));
        r.want_type = "dns-01";
        r.abort_at_http = at;
        run(e, f.ca, &r);
        CHECK_INT(r.final, ACME_ACT_ERROR);
        CHECK_INT(r.bad_order, 0);
        CHECK_INT(r.live, 0);
        CHECK_INT(r.n_unpublish, r.n_publish);
        CHECK_INT(r.abort_pending, r.n_publish);
        CHECK_STR(acme_engine_error(e), "host stops");
        /* an answer to the forgotten request is ignored */
        CHECK_INT(f.ca->violations, 0);
        acme_engine_free(e);
        fixture_done(&f);
    }
}


/* ---- answers of unknown effect (issue 16) -------------------------------- */

#define SERVER_INTERNAL \
    "{\"type\":\"urn:ietf:params:acme:error:serverInternal\"," \
    "\"detail\":\"try later\",\"status\":503}"

static void
fail_once(fixture_t *f, const char *path, int status, int pass)
{
    f->ca->fail_path = path;
    f->ca->fail_times = 1;
    f->ca->fail_status = status;
    f->ca->fail_ctype = "application/problem+json";
    f->ca->fail_body = SERVER_INTERNAL;
    f->ca->fail_pass = pass;
}


UNIT_TEST(engine_unclear_finalize_done_then_valid)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* the CA issued, the answer was a 503: read back, valid, downloaded */
    fixture_init(&f, 2);
    fail_once(&f, "/finalize/", 503, 1);
    f.ca->fail_retry_after = "3";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK(acme_engine_certificate(e, NULL) != NULL);
    CHECK_INT(f.ca->n_failed, 1);
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK_INT(f.ca->n_finalize, 1);
    /* once when the authorizations are valid, once read back */
    CHECK_INT(f.ca->n_order_get, 2);
    CHECK_INT(f.ca->n_cert, 1);
    /* the Retry-After waited for (polls take 1 s), the status showing the
     * step that had the unclear answer */
    CHECK_INT(r.max_sleep, 3);
    CHECK_STR(r.sleep_steps, "authorization finalize ");
    /* one note, for the log, at the first SLEEP after the answer */
    CHECK_STR(r.notes, "finalize: HTTP 503, the CA may have done it; reading "
              "the order back in 3000 ms (1 of at most 5)|");
    CHECK_INT(r.live, 0);
    CHECK_INT(r.bad_order, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_unclear_finalize_timeout_then_processing)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* the finalize reached the CA, its answer timed out; the order is
     * still processing when read back: polled until valid */
    fixture_init(&f, 1);
    f.ca->processing_polls = 2;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.lose_path = "/finalize/";
    r.lose_times = 1;
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.lose_times, 0);
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK_INT(f.ca->n_finalize, 1);
    /* ready; read back (processing), polled (processing), polled (valid) */
    CHECK_INT(f.ca->n_order_get, 4);
    CHECK_INT(f.ca->n_cert, 1);
    /* a transport error has no Retry-After: the first backoff, 1 s */
    CHECK_INT(r.max_sleep, 1);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_unclear_finalize_not_done_then_ready)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* a 503 before the CA did anything: read back "ready", finalized
     * again (the fake CA counts finalizing a non-ready order a violation) */
    fixture_init(&f, 1);
    fail_once(&f, "/finalize/", 503, 0);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_failed, 1);
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK_INT(f.ca->n_finalize, 1);
    CHECK_INT(f.ca->n_order_get, 2);
    CHECK_INT(f.ca->n_cert, 1);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_unclear_challenge)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* the challenge answer reached the CA, the response was a 503: the
     * order is pending, the authorization processing: polled, not
     * answered or published again */
    fixture_init(&f, 2);
    f.ca->pending_polls = 1;
    fail_once(&f, "/chal/", 503, 1);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_challenge, 2);
    CHECK_INT(f.ca->n_order_get, 2);
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK_INT(r.n_publish, 2);
    CHECK_INT(r.n_unpublish, 2);
    CHECK_INT(r.live, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* it did not reach the CA: the challenge is answered again */
    fixture_init(&f, 1);
    fail_once(&f, "/chal/", 502, 0);
    f.ca->fail_ctype = "text/html";
    f.ca->fail_body = "<html>bad gateway</html>";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_failed, 1);
    CHECK_INT(f.ca->n_challenge, 1);
    CHECK_INT(r.n_publish, 1);
    CHECK_INT(r.live, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_unclear_order_invalid)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* the validation the CA ran failed: read back, the order is invalid,
     * only now the order fails */
    fixture_init(&f, 1);
    f.ca->sync_validation = 1;
    f.ca->challenge_fails = 1;
    fail_once(&f, "/chal/", 503, 1);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "order: order https://ca.test/order/1 is invalid");
    CHECK_INT(f.ca->n_order_get, 1);
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK_INT(r.live, 0);
    CHECK_INT(r.bad_order, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_unclear_download_and_new_order)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* a 503 on the download: downloaded again, no read-back needed */
    fixture_init(&f, 1);
    fail_once(&f, "/cert/", 503, 0);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_failed, 1);
    CHECK_INT(f.ca->n_cert, 1);
    CHECK_INT(f.ca->n_finalize, 1);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* a download cut short (no PEM in a 200): the same */
    fixture_init(&f, 1);
    fail_once(&f, "/cert/", 200, 1);
    f.ca->fail_ctype = "application/pem-certificate-chain";
    f.ca->fail_body = "-----BEGIN CERT";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_cert, 2);
    CHECK_INT(f.ca->n_finalize, 1);
    CHECK(strstr(r.notes, "certificate: the response is not a PEM certificate"
                 " chain, the CA may have done it; downloading it again in ")
          == r.notes);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* newOrder: no order known, sent again */
    fixture_init(&f, 1);
    fail_once(&f, "/new-order", 500, 1);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_new_order, 2);
    CHECK_INT(f.ca->n_order_get, 1);
    CHECK_STR(r.notes, "new-order: HTTP 500, the CA may have done it; "
              "sending it again in 1000 ms (1 of at most 5)|");
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* a 4xx problem is an answer: the order fails at once, as before */
    fixture_init(&f, 1);
    fail_once(&f, "/finalize/", 403, 0);
    f.ca->fail_body = "{\"type\":\"urn:ietf:params:acme:error:unauthorized\","
                      "\"detail\":\"no\",\"status\":403}";
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e), "finalize: urn:ietf:params:acme:error:"
              "unauthorized: no (HTTP 403)");
    CHECK_INT(f.ca->n_order_get, 1);
    CHECK_INT(f.ca->n_failed, 1);
    acme_engine_free(e);
    fixture_done(&f);
}


UNIT_TEST(engine_unclear_bound)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;

    /* every finalize gets a 503: 5 read-backs (1, 2, 4, 8, 16 s apart),
     * then the sixth 503 fails the order as any error */
    fixture_init(&f, 1);
    fail_once(&f, "/finalize/", 503, 0);
    f.ca->fail_times = -1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e), "finalize: urn:ietf:params:acme:error:"
              "serverInternal: try later (HTTP 503)");
    CHECK_INT(f.ca->n_failed, 6);
    CHECK_INT(f.ca->n_order_get, 1 + 5);
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK_INT(r.max_sleep, 16);
    CHECK_INT(r.live, 0);
    CHECK_INT(r.bad_order, 0);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* max_unclear; a read-back that fails counts too; a Retry-After
     * beyond 60 s is capped */
    fixture_init(&f, 1);
    fail_once(&f, "/order/", 503, 0);
    f.ca->fail_times = -1;
    f.ca->fail_retry_after = "3600";
    f.cfg.max_unclear = 2;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e), "order: urn:ietf:params:acme:error:"
              "serverInternal: try later (HTTP 503)");
    CHECK_INT(acme_engine_retry_after(e), r.now + 3600);
    CHECK_INT(f.ca->n_finalize, 0);
    CHECK_INT(f.ca->n_failed, 3);
    CHECK_INT(r.max_sleep, 60);
    CHECK_INT(r.live, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* transport errors only: the last one is the error */
    fixture_init(&f, 1);
    f.cfg.max_unclear = 1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    r.lose_path = "/cert/";
    r.lose_times = -1;
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK_STR(acme_engine_error(e),
              "certificate: timed out reading the response");
    CHECK_INT(f.ca->n_cert, 2);
    acme_engine_free(e);
    fixture_done(&f);
}


/* issue 11 item 5: the directory URL's redirects are followed (301, 302,
 * 307, 308; at most ACME_ENGINE_DIR_REDIRECTS; https only), and the order
 * goes on with the final URL */
static int
redirect_step(acme_engine_t *e, int status, const char *location,
    char *url, size_t urllen)
{
    acme_action_t         act;
    acme_http_response_t  resp;

    acme_engine_next(e, T0, &act);
    if (act.kind != ACME_ACT_HTTP) {
        return -1;
    }
    snprintf(url, urllen, "%s", act.request.url);
    memset(&resp, 0, sizeof(resp));
    resp.status = status;
    resp.location = location;
    acme_engine_on_response(e, &resp);
    return 0;
}

UNIT_TEST(engine_directory_redirects)
{
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;
    char            url[256];
    int             i;

    /* 301 then 308 (a path on the same origin), then the CA's directory */
    fixture_init(&f, 1);
    f.cfg.directory_url = "https://old.test:8443/acme";
    e = engine(&f);
    CHECK(e != NULL);
    CHECK_INT(redirect_step(e, 301, "https://ca.test/x", url, sizeof(url)), 0);
    CHECK_STR(url, "https://old.test:8443/acme");
    CHECK_INT(redirect_step(e, 308, "/dir", url, sizeof(url)), 0);
    CHECK_STR(url, "https://ca.test/x");
    CHECK_STR(acme_engine_directory_url(e), "https://ca.test/dir");
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->violations, 0);
    CHECK_STR(acme_engine_directory_url(e), FAKE_CA_DIR);
    acme_engine_free(e);
    fixture_done(&f);

    /* six redirects: refused, naming the count */
    fixture_init(&f, 1);
    e = engine(&f);
    for (i = 0; i < 6 && acme_engine_error(e) == NULL; i++) {
        CHECK_INT(redirect_step(e, i % 2 ? 302 : 307, "https://ca.test/dir",
                                url, sizeof(url)), 0);
    }
    CHECK_INT(i, 6);
    CHECK(acme_engine_error(e) != NULL
          && strstr(acme_engine_error(e), "more than 5 redirects") != NULL);
    acme_engine_free(e);
    fixture_done(&f);

    /* to http: refused */
    fixture_init(&f, 1);
    e = engine(&f);
    CHECK_INT(redirect_step(e, 302, "http://ca.test/dir", url, sizeof(url)),
              0);
    CHECK(acme_engine_error(e) != NULL
          && strstr(acme_engine_error(e), "not an https URL") != NULL);
    acme_engine_free(e);
    fixture_done(&f);

    /* without a Location */
    fixture_init(&f, 1);
    e = engine(&f);
    CHECK_INT(redirect_step(e, 301, NULL, url, sizeof(url)), 0);
    CHECK(acme_engine_error(e) != NULL
          && strstr(acme_engine_error(e), "without a Location") != NULL);
    acme_engine_free(e);
    fixture_done(&f);
}


/* preferred_chain (nginx-acme's): one order with the CA's script set by
 * the caller; returns the engine's chain (malloc'd) or NULL. */
static char *
chain_order(fixture_t *f, run_t *r, char *note, size_t note_len)
{
    acme_engine_t  *e;
    const char     *cert, *n;
    size_t          len;
    char           *out = NULL;

    e = engine(f);
    CHECK(e != NULL);
    if (e == NULL) {
        return NULL;
    }
    memset(r, 0, sizeof(*r));
    run(e, f->ca, r);
    show_error(e, r);
    CHECK_INT(r->final, ACME_ACT_DONE);
    CHECK_INT(r->bad_order, 0);
    CHECK_INT(f->ca->violations, 0);
    cert = acme_engine_certificate(e, &len);
    if (cert != NULL) {
        out = acme_strndup(cert, len);
    }
    n = acme_engine_chain_note(e);
    snprintf(note, note_len, "%s", n ? n : "");
    acme_engine_free(e);
    return out;
}


UNIT_TEST(engine_preferred_chain)
{
    fixture_t   f;
    run_t       r;
    char       *cert, note[512];

    /* without preferred_chain the alternates are never fetched */
    fixture_init(&f, 1);
    f.ca->alt_chains = 2;
    cert = chain_order(&f, &r, note, sizeof(note));
    CHECK_INT(f.ca->n_cert, 1);
    CHECK_INT(f.ca->n_alt, 0);
    CHECK(cert != NULL && f.ca->chain && strcmp(cert, f.ca->chain) == 0);
    CHECK_STR(note, "");
    free(cert);
    fixture_done(&f);

    /* the default chain matches: no extra request */
    fixture_init(&f, 1);
    f.ca->alt_chains = 2;
    f.cfg.preferred_chain = "fake CA";
    cert = chain_order(&f, &r, note, sizeof(note));
    CHECK_INT(f.ca->n_alt, 0);
    CHECK(cert != NULL && f.ca->chain && strcmp(cert, f.ca->chain) == 0);
    CHECK_STR(note, "the default chain is issued by \"fake CA\"");
    free(cert);
    fixture_done(&f);

    /* the second alternate matches: fetched in order, the first too */
    fixture_init(&f, 1);
    f.ca->alt_chains = 3;
    f.cfg.preferred_chain = "fake alt root 2";
    cert = chain_order(&f, &r, note, sizeof(note));
    CHECK_INT(f.ca->n_cert, 1);
    CHECK_INT(f.ca->n_alt, 2);
    CHECK(cert != NULL && f.ca->alt_chain[1]
          && strcmp(cert, f.ca->alt_chain[1]) == 0);
    CHECK_STR(note, "the alternate chain https://ca.test/cert/1/alt/2, "
              "issued by \"fake alt root 2\"");
    free(cert);
    fixture_done(&f);

    /* matched exactly: another case is no match */
    fixture_init(&f, 1);
    f.ca->alt_chains = 2;
    f.cfg.preferred_chain = "FAKE ALT ROOT 1";
    cert = chain_order(&f, &r, note, sizeof(note));
    CHECK_INT(f.ca->n_alt, 2);
    CHECK(cert != NULL && f.ca->chain && strcmp(cert, f.ca->chain) == 0);
    free(cert);
    fixture_done(&f);

    /* none matches: every alternate looked at, the default kept */
    fixture_init(&f, 1);
    f.ca->alt_chains = 2;
    f.cfg.preferred_chain = "nobody";
    cert = chain_order(&f, &r, note, sizeof(note));
    CHECK_INT(f.ca->n_alt, 2);
    CHECK(cert != NULL && f.ca->chain && strcmp(cert, f.ca->chain) == 0);
    CHECK_STR(note, "the default chain: neither it nor the 2 alternate "
              "chains offered is issued by \"nobody\" (the last: not "
              "issued by it either)");
    free(cert);
    fixture_done(&f);

    /* no alternate offered */
    fixture_init(&f, 1);
    f.cfg.preferred_chain = "fake alt root 1";
    cert = chain_order(&f, &r, note, sizeof(note));
    CHECK_INT(f.ca->n_alt, 0);
    CHECK(cert != NULL && f.ca->chain && strcmp(cert, f.ca->chain) == 0);
    CHECK_STR(note, "the default chain: it is not issued by \"fake alt "
              "root 1\" and the CA offers no alternate chain");
    free(cert);
    fixture_done(&f);
}


UNIT_TEST(engine_preferred_chain_failures)
{
    fixture_t   f;
    run_t       r;
    char       *cert, note[512];

    /* bad Link headers: nothing fetched, the default chain */
    static const char *bad[] = {
        "rel=\"alternate\"",
        "<>;rel=\"alternate\"",
        "<https://ca.test/cert/1/alt/1>",
        "<https://ca.test/cert/1/alt/1>;rel=\"up\"",
        "<https://ca.test/cert/1/alt/1;rel=\"alternate\"",
        "<ftp://ca.test/cert/1/alt/1>;rel=\"alternate\"",
        "<https://ca.test/cert/1/alt/1> rel=\"alternate\"",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fixture_init(&f, 1);
        f.ca->alt_chains = 1;
        f.ca->cert_link = bad[i];
        f.cfg.preferred_chain = "fake alt root 1";
        cert = chain_order(&f, &r, note, sizeof(note));
        if (f.ca->n_alt != 0) {
            fprintf(stderr, "  Link: %s\n", bad[i]);
        }
        CHECK_INT(f.ca->n_alt, 0);
        CHECK(cert != NULL && f.ca->chain && strcmp(cert, f.ca->chain) == 0);
        free(cert);
        fixture_done(&f);
    }

    /* a relative target among other links and parameters */
    fixture_init(&f, 1);
    f.ca->alt_chains = 2;
    f.ca->cert_link = "<https://ca.test/cert/1/alt/1>;rel=\"up\", "
                      "<1/alt/2>; title=\"x, y\"; rel=\"Alternate\"";
    f.cfg.preferred_chain = "fake alt root 2";
    cert = chain_order(&f, &r, note, sizeof(note));
    CHECK_INT(f.ca->n_alt, 1);
    CHECK(cert != NULL && f.ca->alt_chain[1]
          && strcmp(cert, f.ca->alt_chain[1]) == 0);
    free(cert);
    fixture_done(&f);

    /* an alternate answering an HTTP error is passed over */
    fixture_init(&f, 1);
    f.ca->alt_chains = 2;
    f.ca->fail_path = "/cert/1/alt/1";
    f.ca->fail_status = 500;
    f.cfg.preferred_chain = "fake alt root 2";
    cert = chain_order(&f, &r, note, sizeof(note));
    CHECK_INT(f.ca->n_failed, 1);
    CHECK_INT(f.ca->n_alt, 1);
    CHECK(cert != NULL && f.ca->alt_chain[1]
          && strcmp(cert, f.ca->alt_chain[1]) == 0);
    free(cert);
    fixture_done(&f);

    /* the matching one fails: the default chain, the order done */
    fixture_init(&f, 1);
    f.ca->alt_chains = 1;
    f.ca->fail_path = "/cert/1/alt/1";
    f.ca->fail_status = 404;
    f.cfg.preferred_chain = "fake alt root 1";
    cert = chain_order(&f, &r, note, sizeof(note));
    CHECK(cert != NULL && f.ca->chain && strcmp(cert, f.ca->chain) == 0);
    CHECK_STR(note, "the default chain: neither it nor the 1 alternate "
              "chain offered is issued by \"fake alt root 1\" (the last: "
              "HTTP 404)");
    free(cert);
    fixture_done(&f);

    /* a transport error on it: the same */
    fixture_init(&f, 1);
    f.ca->alt_chains = 1;
    f.cfg.preferred_chain = "fake alt root 1";
    memset(&r, 0, sizeof(r));
    {
        acme_engine_t  *e = engine(&f);
        const char     *c;
        size_t          len;

        r.lose_path = "/alt/";
        r.lose_times = -1;
        run(e, f.ca, &r);
        show_error(e, &r);
        CHECK_INT(r.final, ACME_ACT_DONE);
        CHECK_INT(f.ca->n_alt, 1);
        c = acme_engine_certificate(e, &len);
        CHECK(c != NULL && f.ca->chain && strcmp(c, f.ca->chain) == 0);
        CHECK(strstr(acme_engine_chain_note(e), "timed out reading") != NULL);
        acme_engine_free(e);
    }
    fixture_done(&f);
}


/* ACME profiles (nginx-acme's "profile NAME [require]"): one order against
 * a CA whose directory lists profiles (or not); returns the final action. */
static acme_action_kind_t
profile_order(fixture_t *f, run_t *r, char *err, size_t errlen)
{
    acme_engine_t  *e;

    err[0] = '\0';
    e = engine(f);
    CHECK(e != NULL);
    if (e == NULL) {
        return ACME_ACT_ERROR;
    }
    memset(r, 0, sizeof(*r));
    run(e, f->ca, r);
    CHECK_INT(r->bad_order, 0);
    CHECK_INT(f->ca->violations, 0);
    if (r->final == ACME_ACT_ERROR) {
        snprintf(err, errlen, "%s", acme_engine_error(e));
    }
    acme_engine_free(e);
    return r->final;
}


UNIT_TEST(engine_profile)
{
    fixture_t   f;
    run_t       r;
    char        err[512];

    /* offered: sent in newOrder, no warning */
    fixture_init(&f, 1);
    f.ca->profiles = "{\"classic\": \"90 days\", \"shortlived\": \"6 days\"}";
    f.cfg.profile = "shortlived";
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_DONE);
    CHECK(f.ca->profile != NULL
          && strcmp(f.ca->profile, "shortlived") == 0);
    CHECK_STR(r.notes, "");
    fixture_done(&f);

    /* required and offered: the same */
    fixture_init(&f, 1);
    f.ca->profiles = "{\"classic\": \"90 days\", \"shortlived\": \"6 days\"}";
    f.cfg.profile = "classic";
    f.cfg.profile_require = 1;
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_DONE);
    CHECK(f.ca->profile != NULL && strcmp(f.ca->profile, "classic") == 0);
    fixture_done(&f);

    /* no profile configured: none sent, even when the CA offers some */
    fixture_init(&f, 1);
    f.ca->profiles = "{\"classic\": \"90 days\"}";
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_DONE);
    CHECK(f.ca->profile == NULL);
    CHECK_STR(r.notes, "");
    fixture_done(&f);

    /* not offered: ordered without a profile, one warning */
    fixture_init(&f, 1);
    f.ca->profiles = "{\"classic\": \"90 days\", \"tlsserver\": \"x\"}";
    f.cfg.profile = "shortlived";
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_DONE);
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK(f.ca->profile == NULL);
    CHECK_STR(r.notes, "the profile \"shortlived\" is not offered by the CA "
              "at https://ca.test/dir (it offers \"classic\", \"tlsserver\"): "
              "ordering without a profile|");
    fixture_done(&f);

    /* a directory without meta.profiles: the same */
    fixture_init(&f, 1);
    f.cfg.profile = "shortlived";
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_DONE);
    CHECK(f.ca->profile == NULL);
    CHECK_STR(r.notes, "the profile \"shortlived\" is not offered by the CA "
              "at https://ca.test/dir (its directory has no meta.profiles): "
              "ordering without a profile|");
    fixture_done(&f);

    /* required and not offered: the order fails before newOrder */
    fixture_init(&f, 1);
    f.ca->profiles = "{\"classic\": \"90 days\"}";
    f.cfg.profile = "shortlived";
    f.cfg.profile_require = 1;
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_ERROR);
    CHECK_INT(f.ca->n_new_order, 0);
    CHECK_STR(err, "new-order: the profile \"shortlived\" is required and "
              "the CA at https://ca.test/dir does not offer it (it offers "
              "\"classic\")");
    CHECK_STR(r.notes, "");
    fixture_done(&f);

    /* required, no meta.profiles at all */
    fixture_init(&f, 1);
    f.cfg.profile = "shortlived";
    f.cfg.profile_require = 1;
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_ERROR);
    CHECK_INT(f.ca->n_new_order, 0);
    CHECK_STR(err, "new-order: the profile \"shortlived\" is required and "
              "the CA at https://ca.test/dir does not offer it (its "
              "directory has no meta.profiles)");
    fixture_done(&f);
}


/* RFC 8555 section 7.6: revokeCert with the account key (kid) before the
 * order, the host told once (ACME_ACT_REVOKED), then a whole order */
UNIT_TEST(engine_revoke_then_order)
{
    static const unsigned char der[] = { 0x30, 0x03, 0x02, 0x01, 0x07 };
    fixture_t       f;
    run_t           r;
    acme_engine_t  *e;
    char           *b64;

    b64 = acme_b64url_encode(der, sizeof(der));

    /* a stored account, reason superseded (4) */
    fixture_init(&f, 1);
    f.ca->account_url = acme_strdup("https://ca.test/acct/9");
    f.cfg.account_url = "https://ca.test/acct/9";
    f.cfg.revoke_der = der;
    f.cfg.revoke_der_len = sizeof(der);
    f.cfg.revoke_reason = 4;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    show_error(e, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_revoke, 1);
    CHECK(f.ca->revoked != NULL && strcmp(f.ca->revoked, b64) == 0);
    CHECK_INT(f.ca->revoke_reason, 4);
    CHECK_INT(r.n_revoked, 1);
    CHECK_INT(r.orders_at_revoked, 0);
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* no stored account: looked up / created first; no reason sent */
    fixture_init(&f, 1);
    f.cfg.revoke_der = der;
    f.cfg.revoke_der_len = sizeof(der);
    f.cfg.revoke_reason = -1;
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.n_account, 1);
    CHECK_INT(f.ca->n_revoke, 1);
    CHECK_INT(f.ca->revoke_reason, -1);
    CHECK_INT(r.n_revoked, 1);
    CHECK_INT(f.ca->violations, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* already revoked: as good as revoked */
    fixture_init(&f, 1);
    f.ca->already_revoked = 1;
    f.cfg.revoke_der = der;
    f.cfg.revoke_der_len = sizeof(der);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(r.n_revoked, 1);
    CHECK_INT(f.ca->n_new_order, 1);
    acme_engine_free(e);
    fixture_done(&f);

    /* refused: the order fails before anything is ordered */
    fixture_init(&f, 1);
    f.ca->fail_path = "/revoke";
    f.ca->fail_times = -1;
    f.ca->fail_status = 403;
    f.ca->fail_ctype = "application/problem+json";
    f.ca->fail_body = "{\"type\":\"urn:ietf:params:acme:error:unauthorized\","
                      "\"detail\":\"not the account of this certificate\"}";
    f.cfg.revoke_der = der;
    f.cfg.revoke_der_len = sizeof(der);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_ERROR);
    CHECK(strncmp(acme_engine_error(e), "revoke: urn:ietf:params:acme:error:"
                  "unauthorized", 41) == 0);
    CHECK_INT(r.n_revoked, 0);
    CHECK_INT(f.ca->n_new_order, 0);
    acme_engine_free(e);
    fixture_done(&f);

    /* without revoke_der nothing is revoked */
    fixture_init(&f, 1);
    e = engine(&f);
    memset(&r, 0, sizeof(r));
    run(e, f.ca, &r);
    CHECK_INT(r.final, ACME_ACT_DONE);
    CHECK_INT(f.ca->n_revoke, 0);
    CHECK_INT(r.n_revoked, 0);
    acme_engine_free(e);
    fixture_done(&f);

    free(b64);
}


/* ARI (RFC 9773): an ari_only engine reads the directory and GETs
 * renewalInfo/<id> (no account, no key), DONE with the answer; a directory
 * without renewalInfo: DONE with none; an error answer: ERROR. */
UNIT_TEST(engine_ari_fetch)
{
    fixture_t            f;
    run_t                r;
    acme_engine_t       *e;
    acme_order_config_t  oc;
    const char          *body, *ra;
    size_t               len;
    char                 err[ACME_ERRLEN];

    fixture_init(&f, 1);
    f.ca->ari = 1;
    f.ca->ari_body = "{\"suggestedWindow\": {\"start\": "
                     "\"2027-01-01T00:00:00Z\", \"end\": "
                     "\"2027-01-02T00:00:00Z\"}}";
    f.ca->ari_retry = "21600";
    memset(&oc, 0, sizeof(oc));
    oc.directory_url = FAKE_CA_DIR;
    oc.ari_only = 1;
    oc.ari_id = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
    e = acme_engine_new(&oc, err, sizeof(err));
    CHECK(e != NULL);
    if (e != NULL) {
        memset(&r, 0, sizeof(r));
        run(e, f.ca, &r);
        CHECK_INT(r.final, ACME_ACT_DONE);
        CHECK_INT(r.n_http, 2);
        CHECK_INT(f.ca->n_nonce + f.ca->n_account_lookup
                  + f.ca->n_account_create + f.ca->n_new_order, 0);
        CHECK_STR(f.ca->ari_id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
        CHECK_INT(acme_engine_ari(e, &body, &len, &ra), 1);
        CHECK(strstr(body, "suggestedWindow") != NULL);
        CHECK_INT(len, strlen(body));
        CHECK_STR(ra, "21600");
        CHECK(acme_engine_certificate(e, &len) == NULL);
        CHECK_INT(f.ca->violations, 0);
        acme_engine_free(e);
    }

    /* an error answer: ERROR naming the step, no retries */
    f.ca->ari_status = 500;
    e = acme_engine_new(&oc, err, sizeof(err));
    CHECK(e != NULL);
    if (e != NULL) {
        memset(&r, 0, sizeof(r));
        run(e, f.ca, &r);
        CHECK_INT(r.final, ACME_ACT_ERROR);
        CHECK(strstr(acme_engine_error(e), "renewal-info: ") != NULL);
        CHECK_INT(f.ca->n_ari, 2);
        CHECK_INT(acme_engine_ari(e, &body, &len, &ra), -1);
        acme_engine_free(e);
    }

    /* a CA without renewalInfo: DONE, nothing asked */
    f.ca->ari = 0;
    e = acme_engine_new(&oc, err, sizeof(err));
    CHECK(e != NULL);
    if (e != NULL) {
        memset(&r, 0, sizeof(r));
        run(e, f.ca, &r);
        CHECK_INT(r.final, ACME_ACT_DONE);
        CHECK_INT(r.n_http, 1);
        CHECK_INT(acme_engine_ari(e, &body, &len, &ra), 0);
        acme_engine_free(e);
    }

    /* no identifier: refused */
    oc.ari_id = NULL;
    CHECK(acme_engine_new(&oc, err, sizeof(err)) == NULL);
    fixture_done(&f);
}


/* "replaces" (RFC 9773 section 5): sent to a CA with renewalInfo; an
 * alreadyReplaced refusal: newOrder once more without it, one warning. */
UNIT_TEST(engine_ari_replaces)
{
    fixture_t   f;
    run_t       r;
    char        err[512];

    /* a CA with renewalInfo: sent */
    fixture_init(&f, 1);
    f.ca->ari = 1;
    f.cfg.ari_id = "old.AQ";
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_DONE);
    CHECK_STR(f.ca->replaces, "old.AQ");
    CHECK_INT(f.ca->n_new_order, 1);
    CHECK_STR(r.notes, "");
    fixture_done(&f);

    /* without renewalInfo: not sent */
    fixture_init(&f, 1);
    f.cfg.ari_id = "old.AQ";
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_DONE);
    CHECK(f.ca->replaces == NULL);
    fixture_done(&f);

    /* refused: once more without it */
    fixture_init(&f, 1);
    f.ca->ari = 1;
    f.ca->refuse_replaces = 5;
    f.cfg.ari_id = "old.AQ";
    CHECK_INT(profile_order(&f, &r, err, sizeof(err)), ACME_ACT_DONE);
    CHECK_INT(f.ca->n_new_order, 2);
    CHECK(f.ca->replaces == NULL);
    CHECK_INT(f.ca->refuse_replaces, 4);
    CHECK(strstr(r.notes, "new-order: the CA refused \"replaces\": "
                 "urn:ietf:params:acme:error:alreadyReplaced") != NULL);
    fixture_done(&f);
}
