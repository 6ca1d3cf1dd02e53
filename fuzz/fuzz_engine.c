/*
 * The ACME engine (acme_engine_*) fed whole CA responses: every response
 * goes through the HTTP parser as a transport would pass it on.  Input:
 *
 *     <challenge type>\n                  "http-01", "dns-01", ... ("" = default)
 *     <HTTP response>\n~~~~\n             one per request of the engine, in order
 *     <HTTP response>...
 *
 * When the responses run out, requests fail at the transport level.
 * Fixed keys and clock; SLEEPs advance the clock.  Properties: the engine
 * ends (DONE or ERROR) within a bounded number of steps, never sleeps into
 * the past, and has unpublished every challenge it published when it ends.
 * Seeds: recorded from the unit tests' scripted CA (fuzz/gen_engine_seeds.c).
 * FUZZ_ENGINE_VERBOSE=1 in the environment prints how each input ended.
 */
#include <stdio.h>

#include <openssl/evp.h>

#include "acme_engine.h"
#include "acme_http.h"
#include "acme_key.h"
#include "acme_util.h"
#include "fuzz.h"

#define SEP         "\n~~~~\n"
#define MAX_STEPS   2000

static EVP_PKEY *account_key, *cert_key;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const  names[] = { "a.example.test", "b.example.test" };
    static const char *const  contacts[] = { "mailto:admin@example.test" };
    acme_order_config_t       cfg;
    acme_engine_t            *e;
    acme_action_t             act;
    acme_http_parser_t       *p;
    char                     *in, *type, *cur, *end, *sep, err[ACME_ERRLEN];
    long long                 now;
    int                       i, rc, live, done;

    if (account_key == NULL) {
        account_key = acme_key_from_pem(FUZZ_ACCOUNT_KEY_PEM,
                                        strlen(FUZZ_ACCOUNT_KEY_PEM));
        cert_key = acme_key_from_pem(FUZZ_CERT_KEY_PEM,
                                     strlen(FUZZ_CERT_KEY_PEM));
        FUZZ_ASSERT(account_key != NULL && cert_key != NULL);
    }

    in = fuzz_cstr(data, size);
    end = in + size;
    type = in;
    cur = memchr(in, '\n', size);
    if (cur == NULL) {
        cur = end;
    } else {
        *cur++ = '\0';
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.directory_url = "https://ca.test/dir";
    cfg.account_key = account_key;
    cfg.contacts = contacts;
    cfg.n_contacts = 1;
    cfg.terms_agreed = 1;
    cfg.names = names;
    cfg.n_names = 2;
    cfg.cert_key = cert_key;
    cfg.challenge_type = *type ? type : NULL;

    e = acme_engine_new(&cfg, err, sizeof(err));
    if (e == NULL) {
        free(in);
        return 0;
    }

    now = FUZZ_T0;
    live = 0;
    done = 0;

    for (i = 0; i < MAX_STEPS && !done; i++) {
        acme_engine_next(e, now, &act);

        switch (act.kind) {

        case ACME_ACT_HTTP:
            FUZZ_ASSERT(act.request.method != NULL && act.request.url != NULL);
            if (cur >= end) {
                acme_engine_on_transport_error(e, "fuzz input ended");
                break;
            }
            sep = memmem(cur, (size_t) (end - cur), SEP, sizeof(SEP) - 1);
            if (sep == NULL) {
                sep = end;
            }
            p = acme_http_parser_new(0);
            FUZZ_ASSERT(p != NULL);
            if (strcmp(act.request.method, "HEAD") == 0) {
                acme_http_parser_set_head(p);
            }
            rc = acme_http_parser_feed(p, cur, (size_t) (sep - cur));
            if (rc == ACME_HTTP_AGAIN) {
                rc = acme_http_parser_eof(p);
            }
            if (rc == ACME_HTTP_DONE) {
                acme_engine_on_response(e, acme_http_parser_response(p));
            } else {
                acme_engine_on_transport_error(e, acme_http_parser_error(p));
            }
            acme_http_parser_free(p);
            cur = sep < end ? sep + sizeof(SEP) - 1 : end;
            break;

        case ACME_ACT_SLEEP:
            FUZZ_ASSERT(act.wake_at >= now);
            now = act.wake_at > now ? act.wake_at : now + 1;
            break;

        case ACME_ACT_PUBLISH:
            FUZZ_ASSERT(act.token != NULL && act.key_authz != NULL
                        && act.identifier != NULL);
            live++;
            break;

        case ACME_ACT_UNPUBLISH:
            live--;
            break;

        case ACME_ACT_ACCOUNT:
            FUZZ_ASSERT(act.account_url != NULL);
            break;

        case ACME_ACT_REVOKED:
            /* no revoke_der given: never */
            FUZZ_ASSERT(0);
            break;

        case ACME_ACT_DONE:
        case ACME_ACT_ERROR:
            FUZZ_ASSERT(live == 0);
            if (act.kind == ACME_ACT_DONE) {
                size_t n;
                FUZZ_ASSERT(acme_engine_certificate(e, &n) != NULL);
            } else {
                FUZZ_ASSERT(acme_engine_error(e) != NULL);
            }
            (void) acme_engine_retry_after(e);
            if (getenv("FUZZ_ENGINE_VERBOSE") != NULL) {
                fprintf(stderr, "fuzz_engine: %s after %d steps%s%s\n",
                        act.kind == ACME_ACT_DONE ? "DONE" : "ERROR", i,
                        act.kind == ACME_ACT_DONE ? "" : ": ",
                        act.kind == ACME_ACT_DONE ? "" : acme_engine_error(e));
            }
            done = 1;
            break;
        }
    }
    FUZZ_ASSERT(done);

    acme_engine_free(e);
    free(in);
    return 0;
}
