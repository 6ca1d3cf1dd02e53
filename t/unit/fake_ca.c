/* A scripted in-memory ACME CA for the engine tests (see fake_ca.h). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_jws.h"
#include "acme_key.h"
#include "acme_util.h"
#include "fake_ca.h"

#define BASE        "https://ca.test"
#define MAX_NONCES  4096

/* issued certificates are valid 2020-01-01 .. 2040-01-01: the engine
 * tests' simulated clock (2027) is inside */
#define CERT_NOT_BEFORE  1577836800LL
#define CERT_NOT_AFTER   2208988800LL


static void
violation(fake_ca_t *ca, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
violation(fake_ca_t *ca, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ca->violation, sizeof(ca->violation), fmt, ap);
    va_end(ap);
    ca->violations++;
    fprintf(stderr, "  fake CA: %s\n", ca->violation);
}


fake_ca_t *
fake_ca_new(EVP_PKEY *account_key)
{
    fake_ca_t *ca;

    ca = calloc(1, sizeof(*ca));
    ca->account_key = account_key;
    ca->used_nonces = calloc(MAX_NONCES, 1);
    ca->next_nonce = 1;
    ca->next_acct = 1;
    ca->fail_times = -1;
    return ca;
}


void
fake_ca_free(fake_ca_t *ca)
{
    size_t i;

    for (i = 0; i < ca->n_names; i++) {
        free(ca->names[i]);
    }
    free(ca->names);
    free(ca->authz_state);
    free(ca->authz_polls);
    free(ca->account_url);
    free(ca->contact);
    free(ca->last_csr);
    free(ca->eab);
    free(ca->identifiers);
    free(ca->profile);
    free(ca->replaces);
    free(ca->ari_id);
    free(ca->published_token);
    free(ca->published_ka);
    free(ca->used_nonces);
    free(ca->r_location);
    free(ca->r_nonce);
    free(ca->r_body);
    free(ca->chain);
    for (i = 0; i < FAKE_CA_ALT_MAX; i++) {
        free(ca->alt_chain[i]);
    }
    free(ca->r_link);
    free(ca->revoked);
    EVP_PKEY_free(ca->ca_key);
    free(ca);
}


void
fake_ca_publish(fake_ca_t *ca, const char *token, const char *key_authz)
{
    free(ca->published_token);
    free(ca->published_ka);
    ca->published_token = acme_strdup(token);
    ca->published_ka = acme_strdup(key_authz);
}


/* ---- responses ----------------------------------------------------------- */

static void
reply(fake_ca_t *ca, acme_http_response_t *resp, int status, json_t *body)
{
    resp->status = status;
    free(ca->r_body);
    ca->r_body = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER)
                      : acme_strdup("");
    json_decref(body);
    resp->body = ca->r_body;
    resp->body_len = strlen(ca->r_body);
    resp->content_type = body ? "application/json" : NULL;
}


static void
problem(fake_ca_t *ca, acme_http_response_t *resp, int status,
    const char *type, const char *detail)
{
    char t[128];

    snprintf(t, sizeof(t), "urn:ietf:params:acme:error:%s", type);
    reply(ca, resp, status, json_pack("{s:s, s:s, s:i}", "type", t,
                                      "detail", detail, "status", status));
    resp->content_type = "application/problem+json";
}


static void
location(fake_ca_t *ca, acme_http_response_t *resp, const char *fmt, ...)
{
    va_list  ap;
    char     buf[256];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(ca->r_location);
    ca->r_location = acme_strdup(buf);
    resp->location = ca->r_location;
}


static const char *
authz_status(fake_ca_t *ca, size_t i)
{
    static const char *names[] = { "pending", "pending", "valid", "invalid" };

    return names[ca->authz_state[i]];
}


static const char *
order_status(fake_ca_t *ca)
{
    size_t i;
    int    all_valid = 1;

    for (i = 0; i < ca->n_names; i++) {
        if (ca->authz_state[i] == 3) {
            return "invalid";
        }
        if (ca->authz_state[i] != 2) {
            all_valid = 0;
        }
    }
    if (!all_valid) {
        return "pending";
    }
    if (!ca->finalized) {
        return "ready";
    }
    return ca->processing_polls > 0 ? "processing" : "valid";
}


static json_t *
order_json(fake_ca_t *ca)
{
    json_t  *o, *ids, *authz;
    size_t   i;
    char     buf[64];

    ids = json_array();
    authz = json_array();
    for (i = 0; i < ca->n_names; i++) {
        json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns",
                                             "value", ca->names[i]));
        snprintf(buf, sizeof(buf), BASE "/authz/%zu", i);
        json_array_append_new(authz, json_string(buf));
    }
    o = json_pack("{s:s, s:s, s:o, s:o, s:s}", "status", order_status(ca),
                  "expires", "2030-01-01T00:00:00Z", "identifiers", ids,
                  "authorizations", authz, "finalize", BASE "/finalize/1");
    if (strcmp(order_status(ca), "valid") == 0) {
        json_object_set_new(o, "certificate", json_string(BASE "/cert/1"));
    }
    return o;
}


static const char *
validate_type(fake_ca_t *ca)
{
    return ca->validate_type ? ca->validate_type : "http-01";
}


/* "tok0_http-xyz", "tok0_dns-xyz", "tok0_alpn-xyz" */
static void
challenge_token(size_t i, const char *type, char *buf, size_t len)
{
    snprintf(buf, len, "tok%zu_%s-xyz", i,
             strcmp(type, "http-01") == 0 ? "http"
             : strcmp(type, "dns-01") == 0 ? "dns" : "alpn");
}


static json_t *
challenge_json(fake_ca_t *ca, size_t i, const char *type)
{
    json_t  *c;
    char     url[64], token[64];
    int      live = strcmp(type, validate_type(ca)) == 0;

    /* only the validated type's URL is routed (no '-' in it) */
    snprintf(url, sizeof(url), BASE "/chal/%zu%s%.4s", i, live ? "" : "-",
             live ? "" : type);
    challenge_token(i, type, token, sizeof(token));
    c = json_pack("{s:s, s:s, s:s, s:s}", "type", type, "url", url,
                  "token", token, "status",
                  !live ? "pending"
                  : ca->authz_state[i] == 0 ? "pending"
                  : ca->authz_state[i] == 1 ? "processing"
                  : ca->authz_state[i] == 2 ? "valid" : "invalid");
    if (live && ca->authz_state[i] == 3) {
        json_object_set_new(c, "error", json_pack("{s:s, s:s, s:i}",
            "type", "urn:ietf:params:acme:error:unauthorized",
            "detail", "Invalid response from http://a.example.test/"
                      ".well-known/acme-challenge/tok: 404",
            "status", 403));
    }
    return c;
}


static json_t *
authz_json(fake_ca_t *ca, size_t i)
{
    json_t  *a;
    int      wild = strncmp(ca->names[i], "*.", 2) == 0;

    /* RFC 8555 section 7.1.4: a wildcard's authorization is for the base
     * domain, flagged with "wildcard" */
    a = json_pack("{s:{s:s, s:s}, s:s, s:[o, o, o]}",
                  "identifier", "type", "dns",
                  "value", ca->names[i] + (wild ? 2 : 0),
                  "status", authz_status(ca, i),
                  "challenges", challenge_json(ca, i, "dns-01"),
                  challenge_json(ca, i, "http-01"),
                  challenge_json(ca, i, "tls-alpn-01"));
    if (wild) {
        json_object_set_new(a, "wildcard", json_true());
    }
    return a;
}


/* ---- JWS checks ---------------------------------------------------------- */

static int
verify_sig(fake_ca_t *ca, const char *alg, const char *input,
    const char *sig64)
{
    unsigned char  *sig, *der = NULL;
    size_t          siglen, derlen = 0;
    const EVP_MD   *md = EVP_sha256();
    ECDSA_SIG      *es;
    EVP_MD_CTX     *ctx;
    unsigned char  *p;
    int             ok, len;

    sig = acme_b64url_decode(sig64, strlen(sig64), &siglen);
    if (sig == NULL) {
        return 0;
    }

    if (strcmp(alg, "ES256") == 0 || strcmp(alg, "ES384") == 0) {
        if (strcmp(alg, "ES384") == 0) {
            md = EVP_sha384();
        }
        es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(sig, (int) siglen / 2, NULL),
                       BN_bin2bn(sig + siglen / 2, (int) siglen / 2, NULL));
        len = i2d_ECDSA_SIG(es, NULL);
        der = malloc((size_t) len);
        p = der;
        i2d_ECDSA_SIG(es, &p);
        derlen = (size_t) len;
        ECDSA_SIG_free(es);
    }

    ctx = EVP_MD_CTX_new();
    ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, ca->account_key) == 1
         && EVP_DigestVerify(ctx, der ? der : sig, der ? derlen : siglen,
                             (const unsigned char *) input, strlen(input)) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    free(der);
    free(sig);
    return ok;
}


/*
 * Checks the JWS of a POST.  Returns the decoded payload (malloc'd, "" for
 * POST-as-GET) or NULL after answering with an error.
 */
static char *
check_jws(fake_ca_t *ca, const acme_http_request_t *req, int want_jwk,
    acme_http_response_t *resp)
{
    json_t         *jws, *hdr, *jwk;
    const char     *p64, *pl64, *s64, *nonce, *url, *kid, *alg;
    unsigned char  *raw;
    size_t          rawlen;
    char           *input, *payload = NULL, *expect;
    unsigned        n;

    if (req->content_type == NULL
        || strcmp(req->content_type, "application/jose+json") != 0)
    {
        violation(ca, "POST %s without application/jose+json", req->url);
    }

    jws = json_loadb(req->body, req->body_len, 0, NULL);
    p64 = json_string_value(json_object_get(jws, "protected"));
    pl64 = json_string_value(json_object_get(jws, "payload"));
    s64 = json_string_value(json_object_get(jws, "signature"));
    if (p64 == NULL || pl64 == NULL || s64 == NULL) {
        violation(ca, "POST %s: not a flattened JWS", req->url);
        problem(ca, resp, 400, "malformed", "not a JWS");
        json_decref(jws);
        return NULL;
    }

    raw = acme_b64url_decode(p64, strlen(p64), &rawlen);
    hdr = raw ? json_loadb((char *) raw, rawlen, 0, NULL) : NULL;
    free(raw);
    alg = json_string_value(json_object_get(hdr, "alg"));
    nonce = json_string_value(json_object_get(hdr, "nonce"));
    url = json_string_value(json_object_get(hdr, "url"));
    kid = json_string_value(json_object_get(hdr, "kid"));
    jwk = json_object_get(hdr, "jwk");

    if (alg == NULL || url == NULL || strcmp(url, req->url) != 0) {
        violation(ca, "POST %s: protected url is %s", req->url,
                  url ? url : "(none)");
    }

    input = acme_sprintf("%s.%s", p64, pl64);
    if (alg == NULL || !verify_sig(ca, alg, input, s64)) {
        violation(ca, "POST %s: bad signature", req->url);
    }
    free(input);

    if (want_jwk) {
        expect = acme_jwk_json(ca->account_key);
        if (kid != NULL || !json_is_object(jwk)) {
            violation(ca, "POST %s: expected jwk, not kid", req->url);
        } else {
            input = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
            if (strcmp(input, expect) != 0) {
                violation(ca, "POST %s: jwk %s != %s", req->url, input, expect);
            }
            free(input);
        }
        free(expect);

    } else if (jwk != NULL || kid == NULL) {
        violation(ca, "POST %s: expected kid, not jwk", req->url);
    }

    /* nonce freshness: issued here and not used before */
    if (nonce == NULL || sscanf(nonce, "nonce-%u", &n) != 1 || n == 0
        || n >= ca->next_nonce || n >= MAX_NONCES || ca->used_nonces[n])
    {
        violation(ca, "POST %s: stale or unknown nonce %s", req->url,
                  nonce ? nonce : "(none)");
        ca->n_bad_nonce++;
        problem(ca, resp, 400, "badNonce", "JWS has an invalid anti-replay nonce");
        goto out;
    }
    ca->used_nonces[n] = 1;

    if (ca->bad_nonce_next > 0) {
        ca->bad_nonce_next--;
        ca->n_bad_nonce++;
        problem(ca, resp, 400, "badNonce", "JWS has an invalid anti-replay nonce");
        goto out;
    }

    if (!want_jwk && kid != NULL && ca->foreign_account_url != NULL
        && strcmp(kid, ca->foreign_account_url) == 0)
    {
        /* the signature does not verify with that account's key */
        problem(ca, resp, ca->foreign_type && strcmp(ca->foreign_type,
                                                     "unauthorized") == 0
                          ? 401 : 400,
                ca->foreign_type ? ca->foreign_type : "malformed",
                "JWS verification error: square/go-jose: error in "
                "cryptographic primitive");
        goto out;
    }

    if (!want_jwk && (ca->account_url == NULL || kid == NULL
                      || strcmp(kid, ca->account_url) != 0))
    {
        problem(ca, resp, 400, "accountDoesNotExist",
                "unable to find the account");
        goto out;
    }

    raw = acme_b64url_decode(pl64, strlen(pl64), &rawlen);
    payload = raw ? (char *) raw : NULL;
    if (payload == NULL) {
        violation(ca, "POST %s: payload is not base64url", req->url);
        problem(ca, resp, 400, "malformed", "bad payload");
    }

out:
    json_decref(hdr);
    json_decref(jws);
    return payload;
}


/* ---- External Account Binding -------------------------------------------- */

static char *
member_b64_text(json_t *o, const char *name)
{
    const char *v = json_string_value(json_object_get(o, name));
    size_t      n;

    return v ? (char *) acme_b64url_decode(v, strlen(v), &n) : NULL;
}


/*
 * Checks the binding of a newAccount as pebble does.  0 when it is
 * acceptable, else -1 after answering with a problem.
 */
static int
check_eab(fake_ca_t *ca, json_t *eab, acme_http_response_t *resp)
{
    json_t         *hdr;
    const char     *p64, *pl64, *s64, *alg, *kid, *url;
    const EVP_MD   *md;
    char           *hdr_text, *payload, *jwk, *input, *expect;
    unsigned char   mac[EVP_MAX_MD_SIZE];
    unsigned int    maclen = 0;
    int             rc = -1;

    p64 = json_string_value(json_object_get(eab, "protected"));
    pl64 = json_string_value(json_object_get(eab, "payload"));
    s64 = json_string_value(json_object_get(eab, "signature"));
    hdr_text = member_b64_text(eab, "protected");
    hdr = hdr_text ? json_loads(hdr_text, 0, NULL) : NULL;
    free(hdr_text);
    payload = member_b64_text(eab, "payload");
    jwk = acme_jwk_json(ca->account_key);

    alg = json_string_value(json_object_get(hdr, "alg"));
    kid = json_string_value(json_object_get(hdr, "kid"));
    url = json_string_value(json_object_get(hdr, "url"));

    if (p64 == NULL || pl64 == NULL || s64 == NULL || alg == NULL
        || kid == NULL || url == NULL || json_object_get(hdr, "nonce")
        || json_object_get(hdr, "jwk"))
    {
        violation(ca, "malformed externalAccountBinding");
        problem(ca, resp, 400, "malformed", "bad external account binding");
        goto out;
    }
    if (strcmp(url, BASE "/new-account") != 0) {
        violation(ca, "externalAccountBinding url is %s", url);
        problem(ca, resp, 400, "malformed", "the 'url' field in external "
                "account binding differs from outer JWS");
        goto out;
    }
    if (payload == NULL || strcmp(payload, jwk) != 0) {
        violation(ca, "externalAccountBinding payload is not the account JWK");
        problem(ca, resp, 400, "malformed", "external account binding "
                "payload key does not match account key authenticating "
                "request");
        goto out;
    }
    if (strcmp(kid, ca->eab_kid) != 0) {
        problem(ca, resp, 401, "unauthorized", "the field 'kid' references "
                "a key that is not known to the ACME server");
        goto out;
    }

    md = strcmp(alg, "HS256") == 0 ? EVP_sha256()
         : strcmp(alg, "HS384") == 0 ? EVP_sha384()
         : strcmp(alg, "HS512") == 0 ? EVP_sha512() : NULL;
    input = acme_sprintf("%s.%s", p64, pl64);
    expect = NULL;
    if (md != NULL && HMAC(md, ca->eab_key, (int) ca->eab_key_len,
                           (unsigned char *) input, strlen(input), mac,
                           &maclen) != NULL)
    {
        expect = acme_b64url_encode(mac, maclen);
    }
    free(input);
    if (expect == NULL || strcmp(expect, s64) != 0) {
        problem(ca, resp, 400, "malformed", "JWS verification error");
        free(expect);
        goto out;
    }
    free(expect);
    rc = 0;

out:
    json_decref(hdr);
    free(payload);
    free(jwk);
    return rc;
}


/* ---- endpoints ----------------------------------------------------------- */

static void
new_account(fake_ca_t *ca, const char *payload, acme_http_response_t *resp)
{
    json_t *j, *eab;

    j = json_loads(payload, 0, NULL);
    if (!json_is_object(j)) {
        violation(ca, "newAccount payload is not an object");
        problem(ca, resp, 400, "malformed", "bad payload");
        json_decref(j);
        return;
    }

    if (json_is_true(json_object_get(j, "onlyReturnExisting"))) {
        ca->n_account_lookup++;
        if (json_object_get(j, "externalAccountBinding") != NULL) {
            violation(ca, "account lookup with an externalAccountBinding");
        }
        json_decref(j);
        if (ca->account_url == NULL) {
            problem(ca, resp, 400, "accountDoesNotExist",
                    "unable to find existing account for only-return-existing request");
            return;
        }
        location(ca, resp, "%s", ca->account_url);
        reply(ca, resp, 200, json_pack("{s:s}", "status", "valid"));
        return;
    }

    ca->n_account_create++;
    eab = json_object_get(j, "externalAccountBinding");
    free(ca->eab);
    ca->eab = eab ? json_dumps(eab, JSON_COMPACT | JSON_PRESERVE_ORDER)
                  : NULL;
    if (eab == NULL && ca->eab_required) {
        violation(ca, "newAccount without EAB on an EAB CA");
        json_decref(j);
        problem(ca, resp, 400, "externalAccountRequired",
                "ACME server policy requires newAccount requests must "
                "include a value for the 'externalAccountBinding' field");
        return;
    }
    if (eab != NULL && ca->eab_kid != NULL && check_eab(ca, eab, resp) != 0) {
        json_decref(j);
        return;
    }
    ca->terms_agreed = json_is_true(json_object_get(j, "termsOfServiceAgreed"));
    if (ca->terms_required && !ca->terms_agreed) {
        json_decref(j);
        problem(ca, resp, 403, "userActionRequired",
                "must agree to terms of service");
        return;
    }
    free(ca->contact);
    ca->contact = json_dumps(json_object_get(j, "contact"),
                             JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);

    free(ca->account_url);
    ca->account_url = acme_sprintf(BASE "/acct/%u", ca->next_acct++);
    location(ca, resp, "%s", ca->account_url);
    reply(ca, resp, 201, json_pack("{s:s}", "status", "valid"));
}


/* RFC 8555 section 7.6, with the account's key (kid: check_jws) */
static void
revoke(fake_ca_t *ca, const char *payload, acme_http_response_t *resp)
{
    json_t      *j, *r;
    const char  *cert;

    ca->n_revoke++;
    j = json_loads(payload, 0, NULL);
    cert = j ? json_string_value(json_object_get(j, "certificate")) : NULL;
    if (cert == NULL || cert[0] == '\0') {
        violation(ca, "revokeCert without a certificate");
        problem(ca, resp, 400, "malformed", "no certificate");
        json_decref(j);
        return;
    }
    r = json_object_get(j, "reason");
    if (r != NULL && !json_is_integer(r)) {
        violation(ca, "revokeCert reason is not an integer");
    }
    if (ca->already_revoked) {
        problem(ca, resp, 400, "alreadyRevoked", "Certificate already "
                "revoked");
        json_decref(j);
        return;
    }
    free(ca->revoked);
    ca->revoked = acme_strdup(cert);
    ca->revoke_reason = r ? (int) json_integer_value(r) : -1;
    json_decref(j);
    reply(ca, resp, 200, NULL);
}


static void
new_order(fake_ca_t *ca, const char *payload, acme_http_response_t *resp)
{
    json_t      *j, *ids, *id;
    size_t       i;
    const char  *t, *v;

    ca->n_new_order++;
    j = json_loads(payload, 0, NULL);
    ids = json_object_get(j, "identifiers");
    if (!json_is_array(ids) || json_array_size(ids) == 0) {
        violation(ca, "newOrder without identifiers");
        problem(ca, resp, 400, "malformed", "no identifiers");
        json_decref(j);
        return;
    }

    free(ca->identifiers);
    ca->identifiers = json_dumps(ids, JSON_COMPACT | JSON_PRESERVE_ORDER);
    free(ca->profile);
    ca->profile = NULL;
    if (json_object_get(j, "profile") != NULL) {
        t = json_string_value(json_object_get(j, "profile"));
        if (t == NULL) {
            violation(ca, "newOrder profile is not a string");
        }
        ca->profile = acme_strdup(t ? t : "");
    }
    free(ca->replaces);
    ca->replaces = NULL;
    t = json_string_value(json_object_get(j, "replaces"));
    if (t != NULL) {
        ca->replaces = acme_strdup(t);
        if (ca->refuse_replaces > 0) {
            ca->refuse_replaces--;
            problem(ca, resp, 409, "alreadyReplaced", "the certificate was "
                    "replaced already");
            json_decref(j);
            return;
        }
    }

    for (i = 0; i < ca->n_names; i++) {
        free(ca->names[i]);
    }
    free(ca->names);
    free(ca->authz_state);
    free(ca->authz_polls);
    ca->n_names = json_array_size(ids);
    ca->names = calloc(ca->n_names, sizeof(char *));
    ca->authz_state = calloc(ca->n_names, sizeof(int));
    ca->authz_polls = calloc(ca->n_names, sizeof(int));

    json_array_foreach(ids, i, id) {
        t = json_string_value(json_object_get(id, "type"));
        v = json_string_value(json_object_get(id, "value"));
        if (t == NULL || v == NULL || (strcmp(t, "dns") && strcmp(t, "ip"))) {
            violation(ca, "bad identifier in newOrder");
        }
        ca->names[i] = acme_strdup(v ? v : "?");
        ca->authz_state[i] = ca->authz_valid ? 2 : 0;
    }
    json_decref(j);

    ca->order_created = 1;
    ca->finalized = 0;
    location(ca, resp, BASE "/order/1");
    reply(ca, resp, 201, order_json(ca));
}


static void
challenge(fake_ca_t *ca, size_t i, const char *payload,
    acme_http_response_t *resp)
{
    char *expect, token[64];

    ca->n_challenge++;
    if (strcmp(payload, "{}") != 0) {
        violation(ca, "challenge payload is %s, not {}", payload);
    }

    /* "validate" against what the host publishes */
    if (ca->authz_state[i] == 0) {
        challenge_token(i, validate_type(ca), token, sizeof(token));
        expect = acme_key_authorization(token, ca->account_key);
        if (ca->published_token == NULL
            || strcmp(ca->published_token, token) != 0
            || strcmp(ca->published_ka, expect) != 0)
        {
            violation(ca, "challenge %zu answered before publishing %s", i,
                      expect);
        }
        free(expect);
        ca->authz_state[i] = 1;
        ca->authz_polls[i] = ca->pending_polls;
        if (ca->sync_validation) {
            ca->authz_state[i] = ca->challenge_fails ? 3 : 2;
        }
    }

    reply(ca, resp, 200, challenge_json(ca, i, validate_type(ca)));
    if (ca->poll_retry_after) {
        resp->retry_after = ca->poll_retry_after;
    }
}


static void
authz(fake_ca_t *ca, size_t i, acme_http_response_t *resp)
{
    if (ca->authz_state[i] == 1) {
        if (ca->authz_polls[i] > 0) {
            ca->authz_polls[i]--;
        } else {
            ca->authz_state[i] = ca->challenge_fails ? 3 : 2;
        }
    }

    reply(ca, resp, 200, authz_json(ca, i));
    if (ca->poll_retry_after) {
        resp->retry_after = ca->poll_retry_after;
    }
}


/* Appends x as PEM to the malloc'd string *out. */
static void
append_pem(char **out, X509 *x)
{
    BIO    *bio;
    char   *data, *s;
    long    n;

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_X509(bio, x)) {
        BIO_free(bio);
        return;
    }
    n = BIO_get_mem_data(bio, &data);
    s = acme_sprintf("%s%.*s", *out ? *out : "", (int) n, data);
    free(*out);
    *out = s;
    BIO_free(bio);
}


static X509 *
make_cert(EVP_PKEY *pub, const char *subject_cn, const char *issuer_cn,
    const char *san, EVP_PKEY *signer, long serial)
{
    X509            *x;
    X509_NAME       *name;
    X509_EXTENSION  *ext;

    x = X509_new();
    name = X509_NAME_new();
    if (x == NULL || name == NULL) {
        X509_free(x);
        X509_NAME_free(name);
        return NULL;
    }
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t) CERT_NOT_BEFORE);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t) CERT_NOT_AFTER);
    X509_set_pubkey(x, pub);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *) subject_cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_NAME_free(name);
    name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *) issuer_cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_NAME_free(name);

    if (san != NULL && san[0] != '\0') {
        ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
        if (ext != NULL) {
            X509_add_ext(x, ext, -1);
            X509_EXTENSION_free(ext);
        }
    }

    if (X509_sign(x, signer, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}


/* The chain for the finalized CSR: leaf (its key, the order's names, as
 * cert_mischief says) and the fake CA's own certificate. */
static void
issue(fake_ca_t *ca, EVP_PKEY *csr_key)
{
    char          *san, *s;
    const char    *kind;
    unsigned char  ip[16];
    size_t         i, n;
    X509          *leaf, *root;
    EVP_PKEY      *leaf_key;

    free(ca->chain);
    ca->chain = NULL;

    if (ca->ca_key == NULL) {
        ca->ca_key = acme_key_generate(ACME_KEY_EC_P256);
        if (ca->ca_key == NULL) {
            violation(ca, "cannot make the CA key");
            return;
        }
    }

    n = ca->n_names;
    if (ca->cert_mischief == FAKE_CA_CERT_LACKS_NAME && n > 0) {
        n--;
    }

    san = acme_strdup("");
    for (i = 0; i < n && san != NULL; i++) {
        kind = (inet_pton(AF_INET, ca->names[i], ip) == 1
                || inet_pton(AF_INET6, ca->names[i], ip) == 1) ? "IP" : "DNS";
        s = acme_sprintf("%s%s%s:%s", san, i ? "," : "", kind, ca->names[i]);
        free(san);
        san = s;
    }

    leaf_key = (ca->cert_mischief == FAKE_CA_CERT_OTHER_KEY) ? ca->ca_key
                                                             : csr_key;
    leaf = make_cert(leaf_key, n > 0 ? ca->names[0] : "none", "fake CA", san,
                     ca->ca_key, 2);
    root = make_cert(ca->ca_key, "fake CA", "fake CA", NULL, ca->ca_key, 1);
    free(san);

    if (leaf == NULL || root == NULL) {
        violation(ca, "cannot issue the certificate");
    } else {
        append_pem(&ca->chain, leaf);
        append_pem(&ca->chain, root);
    }

    /* alternate N: the same leaf, then "fake CA" issued by another root */
    for (i = 0; i < FAKE_CA_ALT_MAX; i++) {
        free(ca->alt_chain[i]);
        ca->alt_chain[i] = NULL;
    }
    for (i = 0; leaf != NULL && i < (size_t) ca->alt_chains
                && i < FAKE_CA_ALT_MAX; i++)
    {
        char   cn[32];
        X509  *inter;

        snprintf(cn, sizeof(cn), "fake alt root %zu", i + 1);
        inter = make_cert(ca->ca_key, "fake CA", cn, NULL, ca->ca_key,
                          10 + (long) i);
        if (inter == NULL) {
            violation(ca, "cannot issue the alternate chain");
            break;
        }
        append_pem(&ca->alt_chain[i], leaf);
        append_pem(&ca->alt_chain[i], inter);
        X509_free(inter);
    }
    X509_free(leaf);
    X509_free(root);
    ERR_clear_error();
}


static void
finalize(fake_ca_t *ca, const char *payload, acme_http_response_t *resp)
{
    json_t                *j;
    const char            *csr64;
    unsigned char         *der;
    const unsigned char   *p;
    size_t                 len;
    X509_REQ              *csr = NULL;
    EVP_PKEY              *pub;

    ca->n_finalize++;
    if (strcmp(order_status(ca), "ready") != 0) {
        violation(ca, "finalize of an order that is %s", order_status(ca));
        problem(ca, resp, 403, "orderNotReady", "order is not ready");
        return;
    }

    j = json_loads(payload, 0, NULL);
    csr64 = json_string_value(json_object_get(j, "csr"));
    free(ca->last_csr);
    ca->last_csr = csr64 ? strdup(csr64) : NULL;
    der = csr64 ? acme_b64url_decode(csr64, strlen(csr64), &len) : NULL;
    if (der != NULL) {
        p = der;
        csr = d2i_X509_REQ(NULL, &p, (long) len);
    }
    pub = csr ? X509_REQ_get0_pubkey(csr) : NULL;
    if (csr == NULL || pub == NULL || X509_REQ_verify(csr, pub) != 1
        || X509_NAME_entry_count(X509_REQ_get_subject_name(csr)) != 0)
    {
        violation(ca, "finalize: bad CSR");
    } else {
        issue(ca, pub);
    }
    X509_REQ_free(csr);
    free(der);
    json_decref(j);
    ERR_clear_error();

    ca->finalized = 1;
    reply(ca, resp, 200, order_json(ca));
    if (ca->poll_retry_after) {
        resp->retry_after = ca->poll_retry_after;
    }
}


static void
order(fake_ca_t *ca, acme_http_response_t *resp)
{
    ca->n_order_get++;
    reply(ca, resp, 200, order_json(ca));
    if (ca->finalized && ca->processing_polls > 0) {
        ca->processing_polls--;
    }
    if (ca->poll_retry_after) {
        resp->retry_after = ca->poll_retry_after;
    }
}


/* The scripted failure as the answer (the nonce stays). */
static void
fail_answer(fake_ca_t *ca, acme_http_response_t *resp)
{
    free(ca->r_body);
    ca->r_body = acme_strdup(ca->fail_body ? ca->fail_body : "");
    resp->status = ca->fail_status;
    resp->body = ca->r_body;
    resp->body_len = strlen(ca->r_body);
    resp->content_type = ca->fail_ctype;
    resp->retry_after = ca->fail_retry_after;
    resp->location = NULL;
    ca->n_failed++;
}


int
fake_ca_handle(fake_ca_t *ca, const acme_http_request_t *req,
    acme_http_response_t *resp)
{
    const char  *path;
    char        *payload = NULL;
    size_t       i;
    int          post, failing;

    memset(resp, 0, sizeof(*resp));
    ca->n_requests++;

    if (strncmp(req->url, BASE "/", sizeof(BASE)) != 0) {
        violation(ca, "request to a foreign URL %s", req->url);
        problem(ca, resp, 404, "malformed", "no such host");
        return 0;
    }
    path = req->url + sizeof(BASE) - 1;
    post = strcmp(req->method, "POST") == 0;

    /* every answer but the directory's carries a fresh nonce */
    if (strcmp(path, "/dir") != 0) {
        free(ca->r_nonce);
        ca->r_nonce = acme_sprintf("nonce-%u", ca->next_nonce++);
        resp->replay_nonce = ca->r_nonce;
    }

    if (strcmp(path, "/dir") == 0 && strcmp(req->method, "GET") == 0) {
        json_t  *d;

        ca->n_dir++;
        d = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:b}}",
            "newNonce", BASE "/new-nonce", "newAccount", BASE "/new-account",
            "newOrder", BASE "/new-order", "revokeCert", BASE "/revoke",
            "keyChange", BASE "/key-change",
            "meta", "termsOfService", BASE "/tos",
            "externalAccountRequired", ca->eab_required);
        if (d != NULL && ca->profiles != NULL) {
            json_object_set_new(json_object_get(d, "meta"), "profiles",
                                json_loads(ca->profiles, 0, NULL));
        }
        if (d != NULL && ca->ari) {
            json_object_set_new(d, "renewalInfo",
                                json_string(BASE "/renewal-info"));
        }
        reply(ca, resp, 200, d);
        return 0;
    }

    if (ca->ari && strncmp(path, "/renewal-info/", 14) == 0) {
        ca->n_ari++;
        free(ca->ari_id);
        ca->ari_id = acme_strdup(path + 14);
        if (strcmp(req->method, "GET") != 0 || req->body != NULL) {
            violation(ca, "renewalInfo: %s with a body, expected a GET",
                      req->method);
        }
        if (ca->ari_status != 0 && ca->ari_status != 200) {
            problem(ca, resp, ca->ari_status, "serverInternal", "no ARI");
        } else {
            reply(ca, resp, 200, json_loads(ca->ari_body ? ca->ari_body
                                                         : "{}", 0, NULL));
        }
        resp->retry_after = ca->ari_retry;
        return 0;
    }

    if (strcmp(path, "/new-nonce") == 0) {
        ca->n_nonce++;
        if (strcmp(req->method, "HEAD") != 0) {
            violation(ca, "%s new-nonce, expected HEAD", req->method);
        }
        reply(ca, resp, 200, NULL);
        return 0;
    }

    if (!post) {
        violation(ca, "%s %s, expected POST", req->method, req->url);
        problem(ca, resp, 405, "malformed", "use POST");
        return 0;
    }

    payload = check_jws(ca, req, strcmp(path, "/new-account") == 0, resp);
    if (payload == NULL) {
        return 0;
    }

    failing = ca->fail_path
              && strncmp(path, ca->fail_path, strlen(ca->fail_path)) == 0
              && ca->fail_times != 0;
    if (failing) {
        if (ca->fail_times > 0) {
            ca->fail_times--;
        }
        if (!ca->fail_pass) {
            fail_answer(ca, resp);
            free(payload);
            return 0;
        }
    }

    if (strcmp(path, "/new-account") == 0) {
        new_account(ca, payload, resp);

    } else if (strcmp(path, "/new-order") == 0) {
        new_order(ca, payload, resp);

    } else if (strcmp(path, "/revoke") == 0) {
        revoke(ca, payload, resp);

    } else if (!ca->order_created) {
        violation(ca, "POST %s before newOrder", req->url);
        problem(ca, resp, 404, "malformed", "no order");

    } else if (sscanf(path, "/authz/%zu", &i) == 1 && i < ca->n_names) {
        if (payload[0] != '\0') {
            violation(ca, "authz fetch is not POST-as-GET");
        }
        authz(ca, i, resp);

    } else if (sscanf(path, "/chal/%zu", &i) == 1 && i < ca->n_names
               && strchr(path, '-') == NULL)
    {
        challenge(ca, i, payload, resp);

    } else if (strcmp(path, "/order/1") == 0) {
        if (payload[0] != '\0') {
            violation(ca, "order fetch is not POST-as-GET");
        }
        order(ca, resp);

    } else if (strcmp(path, "/finalize/1") == 0) {
        finalize(ca, payload, resp);

    } else if (strcmp(path, "/cert/1") == 0) {
        ca->n_cert++;
        if (payload[0] != '\0') {
            violation(ca, "certificate fetch is not POST-as-GET");
        }
        if (req->accept == NULL
            || strcmp(req->accept, "application/pem-certificate-chain") != 0)
        {
            violation(ca, "certificate fetch without the PEM Accept");
        }
        if (strcmp(order_status(ca), "valid") != 0) {
            violation(ca, "certificate fetch before the order is valid");
        }
        free(ca->r_body);
        ca->r_body = acme_strdup(ca->chain ? ca->chain : "");
        resp->status = 200;
        resp->body = ca->r_body;
        resp->body_len = strlen(ca->r_body);
        resp->content_type = "application/pem-certificate-chain";

        /* the alternates, as pebble names them */
        free(ca->r_link);
        ca->r_link = NULL;
        if (ca->cert_link != NULL) {
            ca->r_link = acme_strdup(ca->cert_link);
        }
        for (i = 1; ca->cert_link == NULL && i <= (size_t) ca->alt_chains;
             i++)
        {
            char *l = acme_sprintf("%s%s<" BASE "/cert/1/alt/%zu>;"
                                   "rel=\"alternate\"",
                                   ca->r_link ? ca->r_link : "",
                                   ca->r_link ? ", " : "", i);
            free(ca->r_link);
            ca->r_link = l;
        }
        resp->link = ca->r_link;

    } else if (sscanf(path, "/cert/1/alt/%zu", &i) == 1 && i >= 1
               && i <= (size_t) ca->alt_chains && i <= FAKE_CA_ALT_MAX)
    {
        ca->n_alt++;
        if (payload[0] != '\0') {
            violation(ca, "alternate chain fetch is not POST-as-GET");
        }
        if (req->accept == NULL
            || strcmp(req->accept, "application/pem-certificate-chain") != 0)
        {
            violation(ca, "alternate chain fetch without the PEM Accept");
        }
        free(ca->r_body);
        ca->r_body = acme_strdup(ca->alt_chain[i - 1] ? ca->alt_chain[i - 1]
                                                      : "");
        resp->status = 200;
        resp->body = ca->r_body;
        resp->body_len = strlen(ca->r_body);
        resp->content_type = "application/pem-certificate-chain";

    } else {
        violation(ca, "POST to unknown %s", req->url);
        problem(ca, resp, 404, "malformed", "not found");
    }

    if (failing) {
        /* done, but the answer is the failure */
        fail_answer(ca, resp);
    }

    free(payload);
    return 0;
}
