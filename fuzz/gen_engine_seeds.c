/*
 * Records the seeds of fuzz_engine: whole orders of the engine against the
 * unit tests' scripted CA (t/unit/fake_ca.c), with the fuzz target's fixed
 * keys, each CA response written as HTTP/1.1 bytes in fuzz_engine's input
 * format.  `make fuzz-seeds` runs it; the output is committed.
 *
 *     gen_engine_seeds DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_engine.h"
#include "acme_key.h"
#include "acme_util.h"
#include "fake_ca.h"
#include "fuzz.h"

#define SEP "\n~~~~\n"

typedef struct {
    const char  *name;
    const char  *type;              /* challenge type, NULL = default */
    void       (*script)(fake_ca_t *ca);
} scenario_t;

static void s_plain(fake_ca_t *ca) { (void) ca; }
static void s_tls_alpn(fake_ca_t *ca) { ca->validate_type = "tls-alpn-01"; }
static void s_dns(fake_ca_t *ca) { ca->validate_type = "dns-01"; }
static void s_polls(fake_ca_t *ca)
{
    ca->pending_polls = 2;
    ca->processing_polls = 2;
    ca->poll_retry_after = "3";
}
static void s_bad_nonce(fake_ca_t *ca) { ca->bad_nonce_next = 2; }
static void s_challenge_fails(fake_ca_t *ca) { ca->challenge_fails = 1; }
static void s_authz_valid(fake_ca_t *ca) { ca->authz_valid = 1; }
static void s_sync(fake_ca_t *ca) { ca->sync_validation = 1; }
static void s_503(fake_ca_t *ca)
{
    ca->fail_path = "/new-order";
    ca->fail_times = -1;
    ca->fail_status = 503;
    ca->fail_ctype = "application/problem+json";
    ca->fail_body = "{\"type\":\"urn:ietf:params:acme:error:rateLimited\","
                    "\"detail\":\"slow down\"}";
    ca->fail_retry_after = "Fri, 15 Jan 2027 09:00:00 GMT";
}

static const scenario_t scenarios[] = {
    { "http01", NULL, s_plain },
    { "tlsalpn01", "tls-alpn-01", s_tls_alpn },
    { "dns01", "dns-01", s_dns },
    { "polls-retry-after", NULL, s_polls },
    { "bad-nonce", NULL, s_bad_nonce },
    { "challenge-fails", NULL, s_challenge_fails },
    { "authz-valid", NULL, s_authz_valid },
    { "sync-validation", NULL, s_sync },
    { "rate-limited-503", NULL, s_503 },
};

static void
put_response(FILE *f, const acme_http_response_t *r)
{
    fprintf(f, "HTTP/1.1 %d X\r\n", r->status);
    if (r->location) fprintf(f, "Location: %s\r\n", r->location);
    if (r->replay_nonce) fprintf(f, "Replay-Nonce: %s\r\n", r->replay_nonce);
    if (r->retry_after) fprintf(f, "Retry-After: %s\r\n", r->retry_after);
    if (r->content_type) fprintf(f, "Content-Type: %s\r\n", r->content_type);
    fprintf(f, "Content-Length: %zu\r\n\r\n", r->body ? r->body_len : 0);
    if (r->body) fwrite(r->body, 1, r->body_len, f);
}

int
main(int argc, char **argv)
{
    static const char *const  names[] = { "a.example.test", "b.example.test" };
    static const char *const  contacts[] = { "mailto:admin@example.test" };
    EVP_PKEY                 *akey, *ckey;
    acme_order_config_t       cfg;
    acme_engine_t            *e;
    acme_action_t             act;
    acme_http_response_t      resp;
    fake_ca_t                *ca;
    FILE                     *f;
    char                      path[512], err[ACME_ERRLEN];
    long long                 now;
    size_t                    i;
    int                       step, n, done;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    akey = acme_key_from_pem(FUZZ_ACCOUNT_KEY_PEM, strlen(FUZZ_ACCOUNT_KEY_PEM));
    ckey = acme_key_from_pem(FUZZ_CERT_KEY_PEM, strlen(FUZZ_CERT_KEY_PEM));
    if (akey == NULL || ckey == NULL) {
        return 1;
    }

    for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        ca = fake_ca_new(akey);
        scenarios[i].script(ca);

        memset(&cfg, 0, sizeof(cfg));
        cfg.directory_url = FAKE_CA_DIR;
        cfg.account_key = akey;
        cfg.contacts = contacts;
        cfg.n_contacts = 1;
        cfg.terms_agreed = 1;
        cfg.names = names;
        cfg.n_names = 2;
        cfg.cert_key = ckey;
        cfg.challenge_type = scenarios[i].type;
        e = acme_engine_new(&cfg, err, sizeof(err));
        if (e == NULL) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }

        snprintf(path, sizeof(path), "%s/seed-%s", argv[1], scenarios[i].name);
        f = fopen(path, "w");
        if (f == NULL) {
            perror(path);
            return 1;
        }
        fprintf(f, "%s\n", scenarios[i].type ? scenarios[i].type : "");

        now = FUZZ_T0;
        n = 0;
        done = 0;
        for (step = 0; step < 2000 && !done; step++) {
            acme_engine_next(e, now, &act);
            switch (act.kind) {
            case ACME_ACT_HTTP:
                fake_ca_handle(ca, &act.request, &resp);
                if (n++ > 0) {
                    fputs(SEP, f);
                }
                put_response(f, &resp);
                acme_engine_on_response(e, &resp);
                break;
            case ACME_ACT_SLEEP:
                now = act.wake_at;
                break;
            case ACME_ACT_PUBLISH:
                fake_ca_publish(ca, act.token, act.key_authz);
                break;
            case ACME_ACT_UNPUBLISH:
            case ACME_ACT_ACCOUNT:
                break;
            case ACME_ACT_DONE:
            case ACME_ACT_ERROR:
                printf("%s: %d responses, %s%s\n", path, n,
                       act.kind == ACME_ACT_DONE ? "DONE" : "ERROR: ",
                       act.kind == ACME_ACT_DONE ? "" : acme_engine_error(e));
                done = 1;
                break;
            }
        }
        fclose(f);
        acme_engine_free(e);
        fake_ca_free(ca);
    }

    EVP_PKEY_free(akey);
    EVP_PKEY_free(ckey);
    return 0;
}
