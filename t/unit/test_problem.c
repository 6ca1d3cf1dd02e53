#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "unit.h"
#include "acme_problem.h"

static char *
text_of(const char *doc, int status)
{
    json_t *j = json_loads(doc, 0, NULL);
    char   *s;

    CHECK(j != NULL);
    s = acme_problem_text(j, status);
    json_decref(j);
    return s;
}

UNIT_TEST(problem_text_plain)
{
    char *s;

    s = text_of("{\"type\":\"urn:ietf:params:acme:error:rateLimited\","
                "\"detail\":\"too many certificates\",\"status\":429}", 429);
    CHECK_STR(s, "urn:ietf:params:acme:error:rateLimited: too many "
              "certificates (HTTP 429)");
    free(s);
    /* no detail, no type, no HTTP status */
    s = text_of("{\"type\":\"urn:ietf:params:acme:error:caa\"}", 0);
    CHECK_STR(s, "urn:ietf:params:acme:error:caa");
    free(s);
    s = text_of("{\"detail\":\"odd\"}", 403);
    CHECK_STR(s, "about:blank: odd (HTTP 403)");
    free(s);
}

/* RFC 8555 section 6.7.1: the refused identifiers lead, each with its own
 * type and detail; the problem follows. */
UNIT_TEST(problem_text_subproblems)
{
    char *s;

    s = text_of(
        "{\"type\":\"urn:ietf:params:acme:error:malformed\","
        "\"detail\":\"Some of the identifiers requested were rejected\","
        "\"subproblems\":["
        "{\"type\":\"urn:ietf:params:acme:error:malformed\","
        "\"detail\":\"Invalid underscore in DNS name \\\"_example.org\\\"\","
        "\"identifier\":{\"type\":\"dns\",\"value\":\"_example.org\"}},"
        "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
        "\"detail\":\"This CA will not issue for \\\"example.net\\\"\","
        "\"identifier\":{\"type\":\"dns\",\"value\":\"example.net\"}},"
        "{\"type\":\"urn:ietf:params:acme:error:caa\"}]}", 400);
    CHECK_STR(s, "the CA refused _example.org: "
              "urn:ietf:params:acme:error:malformed: Invalid underscore in "
              "DNS name \"_example.org\"; example.net: "
              "urn:ietf:params:acme:error:rejectedIdentifier: This CA will "
              "not issue for \"example.net\"; (no identifier): "
              "urn:ietf:params:acme:error:caa; "
              "urn:ietf:params:acme:error:malformed: Some of the identifiers "
              "requested were rejected (HTTP 400)");
    free(s);
    /* an empty list is none */
    s = text_of("{\"type\":\"urn:ietf:params:acme:error:caa\","
                "\"detail\":\"no\",\"subproblems\":[]}", 403);
    CHECK_STR(s, "urn:ietf:params:acme:error:caa: no (HTTP 403)");
    free(s);
}

/* RFC 8555 section 8: what the CA validated, per challenge type. */
UNIT_TEST(problem_challenge_target)
{
    json_t *c;
    char   *s;

    s = acme_problem_challenge_target(NULL, "http-01", "a.example.test", "T1");
    CHECK_STR(s, "the CA fetched http://a.example.test/.well-known/"
              "acme-challenge/T1");
    free(s);
    s = acme_problem_challenge_target(NULL, "http-01", "2001:db8::1", "T1");
    CHECK_STR(s, "the CA fetched http://[2001:db8::1]/.well-known/"
              "acme-challenge/T1");
    free(s);
    s = acme_problem_challenge_target(NULL, "tls-alpn-01", "a.example.test",
                                      NULL);
    CHECK_STR(s, "the CA connected to a.example.test:443 (TLS, ALPN "
              "acme-tls/1)");
    free(s);
    s = acme_problem_challenge_target(NULL, "dns-01", "a.example.test", NULL);
    CHECK_STR(s, "the CA looked up TXT _acme-challenge.a.example.test");
    free(s);
    s = acme_problem_challenge_target(NULL, "x-01", "a.example.test", "T");
    CHECK_STR(s, "");
    free(s);

    /* the challenge's own token wins; its validation record says where
     * the CA ended up (a redirect) and the address it used */
    c = json_loads("{\"type\":\"http-01\",\"token\":\"T2\","
                   "\"validationRecord\":["
                   "{\"url\":\"http://a.example.test/.well-known/"
                   "acme-challenge/T2\",\"addressUsed\":\"192.0.2.1\"},"
                   "{\"url\":\"https://b.example.test/x\","
                   "\"addressUsed\":\"192.0.2.2\"}]}", 0, NULL);
    CHECK(c != NULL);
    s = acme_problem_challenge_target(c, "http-01", "a.example.test", "T1");
    CHECK_STR(s, "the CA fetched http://a.example.test/.well-known/"
              "acme-challenge/T2 (redirected to https://b.example.test/x) "
              "(address 192.0.2.2)");
    free(s);
    json_decref(c);
}
