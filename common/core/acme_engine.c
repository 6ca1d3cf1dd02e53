/*
 * The sans-I/O ACME engine (RFC 8555): one order, from the directory to the
 * certificate chain.
 *
 * Every protocol step is a state whose request is rebuilt from the engine's
 * fields each time acme_engine_next() reaches it.  That makes a badNonce
 * retry trivial (stay in the state; the next call signs again with the
 * fresh nonce) and keeps the response handlers free of request bookkeeping.
 * Requests that need a nonce when none is at hand are preceded by a HEAD to
 * newNonce.  Failures jump to S_FINISH, which unpublishes every published
 * challenge before reporting DONE or ERROR.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "acme_cert.h"
#include "acme_csr.h"
#include "acme_eab.h"
#include "acme_ari.h"
#include "acme_engine.h"
#include "acme_jws.h"
#include "acme_problem.h"
#include "acme_sched.h"
#include "acme_util.h"

#define ERR_PREFIX          "urn:ietf:params:acme:error:"
#define JOSE_JSON           "application/jose+json"
#define PEM_CHAIN           "application/pem-certificate-chain"
#define POLL_DEFAULT        1       /* seconds: the least Retry-After, the
                                       first backoff after an unclear answer */
#define POLL_MAX            60      /* cap on a CA's Retry-After for polls */
#define POLL_FIRST_MS       50      /* a poll without Retry-After: 50 ms, */
#define POLL_CAP_MS         5000    /* doubled up to 5 s */
#define DEFAULT_TIMEOUT     600
#define UNCLEAR_DEFAULT     5       /* retries after unclear answers per order */


typedef enum {
    S_DIRECTORY = 0,
    S_ACCOUNT_FIND,         /* newAccount onlyReturnExisting */
    S_ACCOUNT_CREATE,
    S_ACCOUNT_EMIT,         /* ACME_ACT_ACCOUNT */
    S_NEW_ORDER,
    S_AUTHZ,                /* first fetch of authorizations[authz_i] */
    S_PUBLISH,
    S_CHALLENGE,
    S_AUTHZ_POLL,
    S_ORDER_READY,
    S_FINALIZE,
    S_ORDER_VALID,
    S_CERT,
    S_CERT_ALT,             /* an alternate chain (preferred_chain) */
    S_READBACK,             /* the order read back after an unclear answer */
    S_REVOKE,               /* revokeCert (after the account, before the
                               order: after S_NEW_ORDER in this list, so
                               that a refused stored account is looked up
                               again, account_fallback) */
    S_REVOKED_EMIT,         /* ACME_ACT_REVOKED */
    S_ARI,                  /* ari_only: GET renewalInfo/<id> */
    S_FINISH
} state_t;

enum { AW_NONE = 0, AW_NONCE, AW_MAIN };

typedef struct {
    char    *type;
    char    *identifier;
    char    *token;
    char    *key_authz;
} published_t;

struct acme_engine_s {
    /* configuration (copies) */
    char                *directory_url;
    EVP_PKEY            *account_key;
    EVP_PKEY            *cert_key;
    char               **contacts;
    size_t               n_contacts;
    int                  terms_agreed;
    char               **names;
    size_t               n_names;
    char                *challenge_type;
    long long            deadline;          /* ms */
    int                  max_bad_nonce;
    int                  max_unclear;

    /* External Account Binding: the MAC key is a copy, cleansed on free */
    char                *eab_kid;
    unsigned char       *eab_key;
    size_t               eab_key_len;
    char                *eab_alg;

    /* directory */
    unsigned             dir_redirects;     /* followed so far */
    char                *new_nonce_url;
    char                *new_account_url;
    char                *new_order_url;
    char                *tos_url;
    int                  eab_required;

    /* account */
    char                *account_url;
    int                  account_from_store;
    int                  account_unsaved;   /* emit it again (the store
                                               refused it) */
    int                  account_fallback_done;
    char                *refused_url;       /* the host's URL, refused */
    char                *refused_error;     /* the CA's refusal, for logs */

    /* order */
    char                *order_url;
    char                *finalize_url;
    char                *certificate_url;
    char               **authz_urls;
    long long           *authz_wake;        /* ms: answered, poll from then
                                               on; 0 = nothing to poll */
    size_t               n_authz;
    size_t               authz_i;
    char                *authz_ident;       /* of authz_i, once fetched */
    char                *chal_url;
    char                *chal_token;
    char                *key_authz;
    int                  chal_processing;
    char                *csr_b64;
    int                  csr_cn;
    char                *preferred_chain;   /* issuer CN, or NULL */
    char                *profile;           /* configured, or NULL */
    int                  profile_require;
    int                  profile_send;      /* the directory offers it */
    char                 profile_note[512]; /* not offered: the warning */
    int                  profile_note_pending;
    char                *alt_urls[ACME_ENGINE_ALT_CHAINS];
    size_t               n_alt;             /* alternates of the chain */
    size_t               alt_i;             /* the one being fetched */
    char                 chain_note[512];   /* which chain, for logs */

    /* revoke first: the certificate (base64url DER), its reason code
     * (< 0: none); NULL when nothing is revoked or once it is */
    char                *revoke_b64;
    int                  revoke_reason;
    char                *revoke_cert_url;   /* the directory's revokeCert */

    /* ARI (RFC 9773): the certificate's identifier; an ari_only engine
     * asks about it, an order replaces it (when the CA has renewalInfo,
     * until the CA refused the field once) */
    char                *ari_id;
    int                  ari_only;
    char                *renewal_info_url;  /* the directory's, or NULL */
    char                *ari_get_url;       /* renewalInfo "/" ari_id */
    int                  replaces_sent;     /* in the newOrder in flight */
    int                  replaces_dropped;  /* refused once: not again */
    int                  ari_answered;
    char                *ari_body;
    size_t               ari_body_len;
    char                *ari_retry_after;

    /* progress */
    state_t              state;
    int                  awaiting;
    int                  bad_nonce_count;
    long long            now;               /* s */
    long long            now_ms;
    long long            wake_at;           /* ms */
    unsigned             poll_n;            /* polls without Retry-After so
                                               far in this wait */
    int                  unclear_count;     /* retries after unclear answers */
    state_t              unclear_step;      /* the step that had one */
    char                 unclear_note[512]; /* what happened, what follows */
    int                  note_pending;      /* not yet given in a SLEEP */
    long long            retry_at;          /* ms, of that retry; 0 = none */
    char                *nonce;
    char                *req_body;          /* the JWS of the request in flight */
    acme_http_request_t  req;               /* the request in flight */

    published_t         *pub;
    size_t               n_pub;
    published_t          unpub;             /* the last UNPUBLISH's strings */
    int                  last_publish;      /* the last action was PUBLISH */

    /* outcome */
    acme_action_kind_t   result;
    char                *cert;
    size_t               cert_len;
    char                *error;
    long long            retry_after;
};


/* ---- small helpers ------------------------------------------------------- */

static void
published_free(published_t *p)
{
    free(p->type);
    free(p->identifier);
    free(p->token);
    free(p->key_authz);
    memset(p, 0, sizeof(*p));
}


static char **
strv_dup(const char *const *v, size_t n)
{
    char   **out;
    size_t   i;

    out = calloc(n ? n : 1, sizeof(char *));
    if (out == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        out[i] = acme_strdup(v[i]);
        if (out[i] == NULL) {
            while (i--) {
                free(out[i]);
            }
            free(out);
            return NULL;
        }
    }
    return out;
}


static void
strv_free(char **v, size_t n)
{
    size_t i;

    if (v == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}


static void
set_str(char **dst, const char *src)
{
    char *s = acme_strdup(src);

    free(*dst);
    *dst = s;
}


/* A CA's text goes into one-line logs and status JSON: no control chars. */
static void
one_line(char *s)
{
    for (; *s; s++) {
        if ((unsigned char) *s < ' ' || *s == 0x7f) {
            *s = ' ';
        }
    }
}


static void
fail(acme_engine_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail(acme_engine_t *e, const char *fmt, ...)
{
    va_list  ap;
    char    *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        msg = NULL;
    }
    va_end(ap);

    free(e->error);
    e->error = msg ? msg : acme_strdup("out of memory");
    if (e->error) {
        one_line(e->error);
    }
    e->result = ACME_ACT_ERROR;
    e->state = S_FINISH;
    e->awaiting = AW_NONE;
    e->retry_at = 0;
}


static const char *
jstr(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}


/* Name of the request a state sends, for error messages. */
static const char *
req_label(const acme_engine_t *e)
{
    switch (e->state) {
    case S_DIRECTORY:       return "directory";
    case S_ACCOUNT_FIND:
    case S_ACCOUNT_CREATE:
    case S_ACCOUNT_EMIT:    return "new-account";
    case S_NEW_ORDER:       return "new-order";
    case S_AUTHZ:
    case S_PUBLISH:
    case S_AUTHZ_POLL:      return "authorization";
    case S_CHALLENGE:       return "challenge";
    case S_ORDER_READY:
    case S_ORDER_VALID:
    case S_READBACK:        return "order";
    case S_FINALIZE:        return "finalize";
    case S_CERT:            return "certificate";
    case S_CERT_ALT:        return "alternate-chain";
    case S_REVOKE:
    case S_REVOKED_EMIT:    return "revoke";
    case S_ARI:             return "renewal-info";
    default:                return "engine";
    }
}


/* "type: detail" of an RFC 7807 problem, verbatim; subproblems first
 * (acme_problem_text).  malloc'd. */
static char *
problem_text(json_t *prob)
{
    return acme_problem_text(prob, 0);
}


/* The problem document of an error response, or NULL. */
static json_t *
problem_of(const acme_http_response_t *resp)
{
    json_t *j;

    if (resp->body == NULL || resp->body_len == 0) {
        return NULL;
    }
    j = json_loadb(resp->body, resp->body_len, 0, NULL);
    if (j != NULL && (!json_is_object(j) || jstr(j, "type") == NULL)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}


static int
problem_is(json_t *prob, const char *name)
{
    const char *type = prob ? jstr(prob, "type") : NULL;

    return type != NULL && strncmp(type, ERR_PREFIX, sizeof(ERR_PREFIX) - 1) == 0
           && strcmp(type + sizeof(ERR_PREFIX) - 1, name) == 0;
}


/* Fails with the error response's problem document quoted verbatim. */
static void
fail_response(acme_engine_t *e, const char *label,
    const acme_http_response_t *resp, json_t *prob)
{
    char *text;

    e->retry_after = acme_sched_parse_retry_after(resp->retry_after, e->now);

    if (prob != NULL) {
        text = acme_problem_text(prob, resp->status);
        fail(e, "%s: %s", label, text ? text : "(problem)");
        free(text);
        return;
    }

    fail(e, "%s: unexpected response: HTTP %d%s%s%s", label, resp->status,
         resp->content_type ? " (" : "",
         resp->content_type ? resp->content_type : "",
         resp->content_type ? ")" : "");
}


/* The JSON object of a successful response, or NULL with why in msg. */
static json_t *
json_body(acme_engine_t *e, const acme_http_response_t *resp, char *msg,
    size_t msglen)
{
    json_error_t  jerr;
    json_t       *j;

    if (resp->body == NULL || resp->body_len == 0) {
        snprintf(msg, msglen, "%s: empty response body, expected JSON "
                 "(HTTP %d)", req_label(e), resp->status);
        return NULL;
    }

    j = json_loadb(resp->body, resp->body_len, 0, &jerr);
    if (j == NULL) {
        snprintf(msg, msglen, "%s: response is not valid JSON (HTTP %d%s%s): "
                 "%s", req_label(e), resp->status,
                 resp->content_type ? ", " : "",
                 resp->content_type ? resp->content_type : "", jerr.text);
        return NULL;
    }

    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(msg, msglen, "%s: response is not a JSON object (HTTP %d)",
                 req_label(e), resp->status);
        return NULL;
    }

    return j;
}


/*
 * When to ask again (ms): the CA's Retry-After within [1, 60] s, else
 * dflt_ms; never after the deadline.
 */
static long long
retry_at(acme_engine_t *e, const char *retry_after, long long dflt_ms)
{
    long long t, d = dflt_ms;

    t = acme_sched_parse_retry_after(retry_after, e->now);
    if (t > 0) {
        d = t - e->now;
        if (d < POLL_DEFAULT) {
            d = POLL_DEFAULT;
        }
        if (d > POLL_MAX) {
            d = POLL_MAX;
        }
        d *= 1000;
    }

    t = e->now_ms + d;
    return t < e->deadline ? t : e->deadline;
}


/*
 * The next poll (ms): the CA's Retry-After within [1, 60] s; without one
 * the CA is followed closely: 50 ms after the start of the wait, then
 * doubled each time up to 5 s (poll_n counts them; reset where a wait
 * starts).
 */
static long long
poll_at(acme_engine_t *e, const acme_http_response_t *resp)
{
    long long d;

    d = e->poll_n < 7 ? (long long) POLL_FIRST_MS << e->poll_n : POLL_CAP_MS;
    if (d > POLL_CAP_MS) {
        d = POLL_CAP_MS;
    }
    if (resp->retry_after == NULL || resp->retry_after[0] == '\0') {
        e->poll_n++;
    }
    return retry_at(e, resp->retry_after, d);
}


/*
 * Authorizations are answered one after another (each challenge published,
 * then its response sent), then polled: the CA validates them all at once.
 * Polls the first answered authorization not known valid yet (at its wake
 * time, at once if past), or goes on to the order when none is left.
 */
static void
authz_poll_next(acme_engine_t *e)
{
    size_t i;

    for (i = 0; i < e->n_authz; i++) {
        if (e->authz_wake[i] != 0) {
            break;
        }
    }

    free(e->authz_ident);
    e->authz_ident = NULL;

    if (i == e->n_authz) {
        e->state = S_ORDER_READY;
        e->wake_at = 0;
        e->poll_n = 0;
        return;
    }

    /* its first wait (50 ms) was counted when it was answered */
    e->authz_i = i;
    e->state = S_AUTHZ_POLL;
    e->wake_at = e->authz_wake[i];
    e->poll_n = 1;
}


/* The challenge of authz_i is answered; its first poll at wake (ms). */
static void
authz_answered(acme_engine_t *e, long long wake)
{
    e->authz_wake[e->authz_i] = wake > 0 ? wake : 1;
    e->authz_i++;
    free(e->authz_ident);
    e->authz_ident = NULL;
    e->state = S_AUTHZ;
}


/*
 * The answer to a step of the order leaves its effect at the CA unknown:
 * HTTP 5xx, a transport error (the request may have been sent), a 2xx that
 * does not parse.  Throwing the order away would lose what the CA did (a
 * finalize it processed: a certificate issued and never collected), so
 * after the Retry-After or a backoff (1, 2, 4, ... 60 s) newOrder is sent
 * again when no order is known yet, a certificate download is repeated,
 * and any other step reads the order back (S_READBACK, with a fresh nonce
 * as every request) to go on from its real state.  Returns 1 when it does
 * so; 0 for the steps before newOrder and once max_unclear retries are
 * spent: the caller fails the order with the answer as before.
 */
/* "HTTP 503" for the log line of an unclear answer. */
static const char *
http_why(const acme_http_response_t *resp, char *buf, size_t len)
{
    snprintf(buf, len, "HTTP %d", resp->status);
    return buf;
}


static int
unclear(acme_engine_t *e, const char *retry_after, const char *why)
{
    state_t      st = e->state;
    long long    backoff;
    const char  *label = req_label(e), *next;

    if (st < S_NEW_ORDER || st == S_PUBLISH || st == S_FINISH
        || e->unclear_count >= e->max_unclear
        || (st != S_NEW_ORDER && st != S_CERT && e->order_url == NULL))
    {
        return 0;
    }

    e->unclear_count++;
    if (st != S_READBACK) {
        e->unclear_step = st;
    }
    if (st != S_NEW_ORDER && st != S_CERT) {
        e->state = S_READBACK;
    }
    e->awaiting = AW_NONE;
    backoff = e->unclear_count > 6 ? POLL_MAX
              : (long long) POLL_DEFAULT << (e->unclear_count - 1);
    e->retry_at = retry_at(e, retry_after, backoff * 1000);

    next = st == S_NEW_ORDER ? "sending it again"
           : st == S_CERT ? "downloading it again" : "reading the order back";
    snprintf(e->unclear_note, sizeof(e->unclear_note),
             "%s: %s, the CA may have done it; %s in %lld ms "
             "(%d of at most %d)", label, why ? why : "no answer", next,
             e->retry_at > e->now_ms ? e->retry_at - e->now_ms : 0,
             e->unclear_count, e->max_unclear);
    e->note_pending = 1;
    return 1;
}


static int
is_ip_literal(const char *s)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}


/* Whether the challenge of the current authorization is published. */
static int
is_published(const acme_engine_t *e)
{
    size_t i;

    for (i = 0; i < e->n_pub; i++) {
        if (strcmp(e->pub[i].token, e->chal_token) == 0
            && strcmp(e->pub[i].type, e->challenge_type) == 0
            && strcmp(e->pub[i].identifier, e->authz_ident) == 0)
        {
            return 1;
        }
    }
    return 0;
}


static void
alt_free(acme_engine_t *e)
{
    size_t i;

    for (i = 0; i < e->n_alt; i++) {
        free(e->alt_urls[i]);
        e->alt_urls[i] = NULL;
    }
    e->n_alt = 0;
    e->alt_i = 0;
}


static void
reset_order(acme_engine_t *e)
{
    free(e->order_url);
    free(e->finalize_url);
    free(e->certificate_url);
    alt_free(e);
    strv_free(e->authz_urls, e->n_authz);
    free(e->authz_wake);
    free(e->authz_ident);
    free(e->chal_url);
    free(e->chal_token);
    free(e->key_authz);
    e->order_url = NULL;
    e->finalize_url = NULL;
    e->certificate_url = NULL;
    e->authz_urls = NULL;
    e->authz_wake = NULL;
    e->n_authz = 0;
    e->authz_i = 0;
    e->authz_ident = NULL;
    e->chal_url = NULL;
    e->chal_token = NULL;
    e->key_authz = NULL;
    e->chal_processing = 0;
}


/* ---- lifecycle ----------------------------------------------------------- */

/* A bad EAB configuration (empty key, unknown alg, ...) is reported when
 * the engine is made, not after the directory round trip: a trial binding
 * costs one HMAC. */
static int
eab_check(const acme_order_config_t *cfg, char *err, size_t errlen)
{
    char  msg[ACME_ERRLEN];
    char *jws;

    if (cfg->eab_key == NULL || cfg->eab_key_len == 0) {
        return acme_err(err, errlen, "External Account Binding: kid \"%s\" "
                        "has no MAC key", cfg->eab_kid);
    }

    msg[0] = '\0';
    jws = acme_eab_jws(cfg->account_key, cfg->eab_kid, cfg->eab_key,
                       cfg->eab_key_len, cfg->eab_alg, cfg->directory_url,
                       msg, sizeof(msg));
    if (jws == NULL) {
        return acme_err(err, errlen, "External Account Binding: %s", msg);
    }
    free(jws);
    return 0;
}


/* An ari_only engine: the directory, then renewalInfo/<ari_id>. */
static acme_engine_t *
ari_engine_new(const acme_order_config_t *cfg, char *err, size_t errlen)
{
    acme_engine_t *e;

    if (cfg->ari_id == NULL || cfg->ari_id[0] == '\0') {
        acme_err(err, errlen, "renewal-info: no certificate identifier");
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        acme_err(err, errlen, "out of memory");
        return NULL;
    }
    e->ari_only = 1;
    e->directory_url = acme_strdup(cfg->directory_url);
    e->ari_id = acme_strdup(cfg->ari_id);
    e->contacts = strv_dup(NULL, 0);
    e->names = strv_dup(NULL, 0);
    e->deadline = cfg->deadline * 1000;
    e->max_bad_nonce = 1;
    e->max_unclear = 1;
    if (e->directory_url == NULL || e->ari_id == NULL) {
        acme_engine_free(e);
        acme_err(err, errlen, "out of memory");
        return NULL;
    }
    e->state = S_DIRECTORY;
    return e;
}


acme_engine_t *
acme_engine_new(const acme_order_config_t *cfg, char *err, size_t errlen)
{
    acme_engine_t *e;

    if (cfg->directory_url == NULL || cfg->directory_url[0] == '\0') {
        acme_err(err, errlen, "no ACME directory URL");
        return NULL;
    }
    if (cfg->ari_only) {
        return ari_engine_new(cfg, err, errlen);
    }
    if (cfg->account_key == NULL || cfg->cert_key == NULL) {
        acme_err(err, errlen, "account and certificate keys are required");
        return NULL;
    }
    if (acme_jws_alg(cfg->account_key) == NULL) {
        acme_err(err, errlen, "unsupported account key type");
        return NULL;
    }
    if (cfg->n_names == 0 || cfg->names == NULL) {
        acme_err(err, errlen, "no names to order a certificate for");
        return NULL;
    }
    if (cfg->eab_kid != NULL && eab_check(cfg, err, errlen) != 0) {
        return NULL;
    }

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        acme_err(err, errlen, "out of memory");
        return NULL;
    }

    e->directory_url = acme_strdup(cfg->directory_url);
    e->contacts = strv_dup(cfg->contacts, cfg->contacts ? cfg->n_contacts : 0);
    e->n_contacts = cfg->contacts ? cfg->n_contacts : 0;
    e->names = strv_dup(cfg->names, cfg->n_names);
    e->n_names = cfg->n_names;
    e->challenge_type = acme_strdup(cfg->challenge_type ? cfg->challenge_type
                                                        : "http-01");
    e->terms_agreed = cfg->terms_agreed;
    e->deadline = cfg->deadline * 1000;
    e->max_bad_nonce = cfg->max_bad_nonce > 0 ? cfg->max_bad_nonce : 10;
    e->max_unclear = cfg->max_unclear > 0 ? cfg->max_unclear : UNCLEAR_DEFAULT;
    if (cfg->preferred_chain != NULL && cfg->preferred_chain[0] != '\0') {
        e->preferred_chain = acme_strdup(cfg->preferred_chain);
    }
    if (cfg->profile != NULL && cfg->profile[0] != '\0') {
        e->profile = acme_strdup(cfg->profile);
        e->profile_require = cfg->profile_require ? 1 : 0;
    }

    if (cfg->csr_b64 != NULL && cfg->csr_b64[0] != '\0') {
        e->csr_b64 = acme_strdup(cfg->csr_b64);
    }

    if (cfg->revoke_der != NULL && cfg->revoke_der_len > 0) {
        e->revoke_b64 = acme_b64url_encode(cfg->revoke_der,
                                           cfg->revoke_der_len);
        if (e->revoke_b64 == NULL) {
            acme_engine_free(e);
            acme_err(err, errlen, "out of memory");
            return NULL;
        }
        e->revoke_reason = cfg->revoke_reason;
    }

    if (cfg->account_url != NULL && cfg->account_url[0] != '\0') {
        e->account_url = acme_strdup(cfg->account_url);
        e->account_from_store = 1;
        e->account_unsaved = cfg->account_unsaved;
    }

    if (cfg->eab_kid != NULL) {
        e->eab_kid = acme_strdup(cfg->eab_kid);
        e->eab_alg = acme_strdup(cfg->eab_alg ? cfg->eab_alg : "HS256");
        e->eab_key = malloc(cfg->eab_key_len);
        if (e->eab_key != NULL) {
            memcpy(e->eab_key, cfg->eab_key, cfg->eab_key_len);
            e->eab_key_len = cfg->eab_key_len;
        }
    }

    if (e->directory_url == NULL || e->contacts == NULL || e->names == NULL
        || e->challenge_type == NULL
        || (cfg->preferred_chain != NULL && cfg->preferred_chain[0] != '\0'
            && e->preferred_chain == NULL)
        || (cfg->profile != NULL && cfg->profile[0] != '\0'
            && e->profile == NULL)
        || (cfg->eab_kid != NULL
            && (e->eab_kid == NULL || e->eab_alg == NULL || e->eab_key == NULL))
        || (e->account_from_store && e->account_url == NULL)
        || (cfg->csr_b64 != NULL && cfg->csr_b64[0] != '\0'
            && e->csr_b64 == NULL))
    {
        acme_engine_free(e);
        acme_err(err, errlen, "out of memory");
        return NULL;
    }

    EVP_PKEY_up_ref(cfg->account_key);
    e->account_key = cfg->account_key;
    EVP_PKEY_up_ref(cfg->cert_key);
    e->cert_key = cfg->cert_key;
    e->csr_cn = cfg->csr_cn ? 1 : 0;

    if (cfg->ari_id != NULL && cfg->ari_id[0] != '\0') {
        e->ari_id = acme_strdup(cfg->ari_id);
        if (e->ari_id == NULL) {
            acme_engine_free(e);
            acme_err(err, errlen, "out of memory");
            return NULL;
        }
    }

    e->state = S_DIRECTORY;
    return e;
}


void
acme_engine_free(acme_engine_t *e)
{
    size_t i;

    if (e == NULL) {
        return;
    }

    reset_order(e);
    free(e->directory_url);
    EVP_PKEY_free(e->account_key);
    EVP_PKEY_free(e->cert_key);
    strv_free(e->contacts, e->n_contacts);
    strv_free(e->names, e->n_names);
    free(e->challenge_type);
    free(e->preferred_chain);
    free(e->profile);
    free(e->eab_kid);
    free(e->eab_alg);
    acme_eab_mac_key_free(e->eab_key, e->eab_key_len);
    free(e->new_nonce_url);
    free(e->new_account_url);
    free(e->new_order_url);
    free(e->revoke_cert_url);
    free(e->revoke_b64);
    free(e->ari_id);
    free(e->renewal_info_url);
    free(e->ari_get_url);
    free(e->ari_body);
    free(e->ari_retry_after);
    free(e->tos_url);
    free(e->account_url);
    free(e->refused_url);
    free(e->refused_error);
    free(e->csr_b64);
    free(e->nonce);
    free(e->req_body);
    for (i = 0; i < e->n_pub; i++) {
        published_free(&e->pub[i]);
    }
    free(e->pub);
    published_free(&e->unpub);
    free(e->cert);
    free(e->error);
    free(e);
}


/* ---- requests ------------------------------------------------------------ */

static void
emit_http(acme_engine_t *e, acme_action_t *act, const char *method,
    const char *url, const char *body, const char *accept)
{
    memset(&e->req, 0, sizeof(e->req));
    e->req.method = method;
    e->req.url = url;
    e->req.body = body;
    e->req.body_len = body ? strlen(body) : 0;
    e->req.content_type = body ? JOSE_JSON : NULL;
    e->req.accept = accept;

    act->kind = ACME_ACT_HTTP;
    act->request = e->req;
}


/*
 * A signed POST (payload NULL = POST-as-GET), preceded by HEAD newNonce when
 * no nonce is at hand.  with_jwk: newAccount requests, keyed by the JWK.
 */
static void
post(acme_engine_t *e, acme_action_t *act, const char *url,
    const char *payload, int with_jwk, const char *accept)
{
    char *jws;

    if (e->nonce == NULL) {
        e->awaiting = AW_NONCE;
        emit_http(e, act, "HEAD", e->new_nonce_url, NULL, NULL);
        return;
    }

    jws = acme_jws_sign(e->account_key, with_jwk ? NULL : e->account_url,
                        e->nonce, url, payload);

    /* a nonce is good for one request, whatever becomes of it */
    free(e->nonce);
    e->nonce = NULL;

    if (jws == NULL) {
        fail(e, "%s: signing the request failed", req_label(e));
        return;
    }

    free(e->req_body);
    e->req_body = jws;
    e->awaiting = AW_MAIN;
    emit_http(e, act, "POST", url, jws, accept);
}


static char *
new_account_payload(acme_engine_t *e)
{
    json_t  *o, *c, *eab;
    size_t   i;
    char    *s, msg[ACME_ERRLEN];

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    if (e->eab_kid != NULL) {
        /* bound to this very newAccount URL (RFC 8555 section 7.3.4) */
        msg[0] = '\0';
        s = acme_eab_jws(e->account_key, e->eab_kid, e->eab_key,
                         e->eab_key_len, e->eab_alg, e->new_account_url,
                         msg, sizeof(msg));
        eab = s ? json_loads(s, 0, NULL) : NULL;
        free(s);
        if (eab == NULL) {
            json_decref(o);
            fail(e, "new-account: building the External Account Binding "
                 "failed%s%s", msg[0] ? ": " : "", msg);
            return NULL;
        }
        json_object_set_new(o, "externalAccountBinding", eab);
    }
    json_object_set_new(o, "termsOfServiceAgreed",
                        json_boolean(e->terms_agreed));
    if (e->n_contacts) {
        c = json_array();
        for (i = 0; i < e->n_contacts; i++) {
            json_array_append_new(c, json_string(e->contacts[i]));
        }
        json_object_set_new(o, "contact", c);
    }
    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}


/* The state after the account is known: revoke first when asked. */
static state_t
after_account(const acme_engine_t *e)
{
    return e->revoke_b64 != NULL ? S_REVOKE : S_NEW_ORDER;
}


/* RFC 8555 section 7.6: {"certificate": b64url(DER), "reason": code} */
static char *
revoke_payload(acme_engine_t *e)
{
    json_t  *o;
    char    *s;

    o = json_pack("{s:s}", "certificate", e->revoke_b64);
    if (o == NULL) {
        return NULL;
    }
    if (e->revoke_reason >= 0) {
        json_object_set_new(o, "reason", json_integer(e->revoke_reason));
    }
    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}


/* revokeCert answered 200 (or alreadyRevoked): the host is told once */
static void
on_revoked(acme_engine_t *e)
{
    free(e->revoke_b64);
    e->revoke_b64 = NULL;
    e->state = S_REVOKED_EMIT;
}


static char *
new_order_payload(acme_engine_t *e)
{
    json_t  *o, *ids;
    size_t   i;
    char    *s;

    ids = json_array();
    for (i = 0; i < e->n_names; i++) {
        json_array_append_new(ids, json_pack("{s:s, s:s}",
            "type", is_ip_literal(e->names[i]) ? "ip" : "dns",
            "value", e->names[i]));
    }
    o = json_pack("{s:o}", "identifiers", ids);
    if (o == NULL) {
        return NULL;
    }
    if (e->profile_send
        && json_object_set_new(o, "profile", json_string(e->profile)) != 0)
    {
        json_decref(o);
        return NULL;
    }
    /* RFC 9773 section 5: the certificate this order replaces, to a CA
     * that has renewalInfo */
    e->replaces_sent = e->ari_id != NULL && e->renewal_info_url != NULL
                       && !e->replaces_dropped;
    if (e->replaces_sent
        && json_object_set_new(o, "replaces", json_string(e->ari_id)) != 0)
    {
        json_decref(o);
        return NULL;
    }
    s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}


static char *
finalize_payload(acme_engine_t *e)
{
    unsigned char  *der;
    size_t          der_len;
    char            err[ACME_ERRLEN];
    json_t         *o;
    char           *s;

    if (e->csr_b64 == NULL) {
        if (acme_csr_build(e->cert_key, (const char *const *) e->names,
                           e->n_names, e->csr_cn, &der, &der_len, err,
                           sizeof(err))
            != 0)
        {
            fail(e, "finalize: building the CSR failed: %s", err);
            return NULL;
        }
        e->csr_b64 = acme_b64url_encode(der, der_len);
        free(der);
        if (e->csr_b64 == NULL) {
            fail(e, "finalize: out of memory");
            return NULL;
        }
    }

    o = json_pack("{s:s}", "csr", e->csr_b64);
    s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL) {
        fail(e, "finalize: out of memory");
    }
    return s;
}


/* ---- acme_engine_next ---------------------------------------------------- */

static void alt_default(acme_engine_t *e, const char *why);
static void alt_next(acme_engine_t *e, const char *why);
static void on_alternate(acme_engine_t *e, const acme_http_response_t *resp);

static void
fail_timeout(acme_engine_t *e)
{
    switch (e->state) {
    case S_DIRECTORY:
        fail(e, "timed out waiting for the directory");
        break;
    case S_ACCOUNT_FIND:
    case S_ACCOUNT_CREATE:
        fail(e, "timed out waiting for the account");
        break;
    case S_NEW_ORDER:
        fail(e, "timed out waiting for the new order");
        break;
    case S_AUTHZ:
    case S_PUBLISH:
    case S_CHALLENGE:
    case S_AUTHZ_POLL:
        fail(e, "timed out waiting for the authorization of %s to become valid",
             e->authz_ident ? e->authz_ident
             : e->authz_i < e->n_authz ? e->authz_urls[e->authz_i] : "the order");
        break;
    case S_ORDER_READY:
        fail(e, "timed out waiting for the order to become ready");
        break;
    case S_FINALIZE:
    case S_ORDER_VALID:
        fail(e, "timed out waiting for the certificate to be issued");
        break;
    case S_CERT:
        fail(e, "timed out waiting for the certificate download");
        break;
    case S_CERT_ALT:
        /* the default chain is good: no reason to lose the certificate */
        alt_default(e, "timed out");
        break;
    case S_READBACK:
        fail(e, "timed out reading back the order %s after an unclear answer",
             e->order_url);
        break;
    case S_REVOKE:
        fail(e, "timed out waiting for the revocation");
        break;
    default:
        fail(e, "timed out");
        break;
    }
}


/* A SLEEP until wake (ms); wake_at rounded up to whole seconds. */
static void
emit_sleep(acme_action_t *act, long long wake)
{
    act->kind = ACME_ACT_SLEEP;
    act->wake_at_ms = wake;
    act->wake_at = (wake + 999) / 1000;
}


void
acme_engine_next(acme_engine_t *e, long long now, acme_action_t *act)
{
    acme_engine_next_ms(e, now * 1000, act);
}


void
acme_engine_next_ms(acme_engine_t *e, long long now_ms, acme_action_t *act)
{
    published_t  *p;
    char         *payload;
    long long     now;

    memset(act, 0, sizeof(*act));
    published_free(&e->unpub);
    e->last_publish = 0;

    now = now_ms;
    e->now_ms = now_ms;
    e->now = now_ms / 1000;
    if (e->deadline == 0) {
        e->deadline = now_ms + DEFAULT_TIMEOUT * 1000;
    }

    if (e->awaiting != AW_NONE) {
        /* the host asks again without answering: repeat the request */
        act->kind = ACME_ACT_HTTP;
        act->request = e->req;
        return;
    }

    /* the account is persisted whatever the clock says */
    if (e->state != S_FINISH && e->state != S_ACCOUNT_EMIT
        && e->state != S_REVOKED_EMIT && now >= e->deadline)
    {
        fail_timeout(e);
    }

    /* the wait before the retry after an unclear answer */
    if (e->retry_at != 0 && e->state != S_FINISH) {
        if (now < e->retry_at) {
            emit_sleep(act, e->retry_at);
            if (e->note_pending) {
                act->note = e->unclear_note;
                e->note_pending = 0;
            }
            return;
        }
        e->retry_at = 0;
    }

    /* a profile the CA does not offer: the warning, waking 1 ms later */
    if (e->profile_note_pending && e->state != S_FINISH) {
        e->profile_note_pending = 0;
        emit_sleep(act, now + 1);
        act->note = e->profile_note;
        return;
    }

    for ( ;; ) {
        switch (e->state) {

        case S_DIRECTORY:
            emit_http(e, act, "GET", e->directory_url, NULL, NULL);
            e->awaiting = AW_MAIN;
            return;

        case S_ACCOUNT_FIND:
            post(e, act, e->new_account_url, "{\"onlyReturnExisting\":true}",
                 1, NULL);
            break;

        case S_ACCOUNT_CREATE:
            if (e->eab_required && e->eab_kid == NULL) {
                fail(e, "new-account: the CA requires External Account "
                     "Binding (meta.externalAccountRequired), and no EAB "
                     "kid and MAC key are configured");
                continue;
            }
            payload = new_account_payload(e);
            if (payload == NULL) {
                if (e->state != S_FINISH) {
                    fail(e, "new-account: out of memory");
                }
                continue;
            }
            post(e, act, e->new_account_url, payload, 1, NULL);
            free(payload);
            break;

        case S_ACCOUNT_EMIT:
            act->kind = ACME_ACT_ACCOUNT;
            act->account_url = e->account_url;
            act->account_refused = e->refused_error;
            e->state = after_account(e);
            return;

        case S_REVOKE:
            payload = revoke_payload(e);
            if (payload == NULL) {
                fail(e, "revoke: out of memory");
                continue;
            }
            post(e, act, e->revoke_cert_url, payload, 0, NULL);
            free(payload);
            break;

        case S_REVOKED_EMIT:
            act->kind = ACME_ACT_REVOKED;
            e->state = S_NEW_ORDER;
            return;

        case S_ARI:
            /* unauthenticated GET (RFC 9773 section 4.2) */
            emit_http(e, act, "GET", e->ari_get_url, NULL, NULL);
            e->awaiting = AW_MAIN;
            return;

        case S_NEW_ORDER:
            payload = new_order_payload(e);
            if (payload == NULL) {
                fail(e, "new-order: out of memory");
                continue;
            }
            post(e, act, e->new_order_url, payload, 0, NULL);
            free(payload);
            break;

        case S_AUTHZ:
            if (e->authz_i == e->n_authz) {
                authz_poll_next(e);
                continue;
            }
            post(e, act, e->authz_urls[e->authz_i], NULL, 0, NULL);
            break;

        case S_PUBLISH:
            if (is_published(e)) {
                /* the order was read back: published in an earlier pass */
                if (e->chal_processing) {
                    authz_answered(e, now);
                } else {
                    e->state = S_CHALLENGE;
                }
                continue;
            }
            p = realloc(e->pub, (e->n_pub + 1) * sizeof(published_t));
            if (p == NULL) {
                fail(e, "authorization: out of memory");
                continue;
            }
            e->pub = p;
            p = &e->pub[e->n_pub];
            p->type = acme_strdup(e->challenge_type);
            p->identifier = acme_strdup(e->authz_ident);
            p->token = acme_strdup(e->chal_token);
            p->key_authz = acme_strdup(e->key_authz);
            if (!p->type || !p->identifier || !p->token || !p->key_authz) {
                published_free(p);
                fail(e, "authorization: out of memory");
                continue;
            }
            e->n_pub++;

            act->kind = ACME_ACT_PUBLISH;
            act->challenge_type = p->type;
            act->identifier = p->identifier;
            act->token = p->token;
            act->key_authz = p->key_authz;
            e->last_publish = 1;

            if (e->chal_processing) {
                /* answered in an earlier run: only wait for the result */
                authz_answered(e, now);
            } else {
                e->state = S_CHALLENGE;
            }
            return;

        case S_CHALLENGE:
            post(e, act, e->chal_url, "{}", 0, NULL);
            break;

        case S_AUTHZ_POLL:
            if (now < e->wake_at) {
                emit_sleep(act, e->wake_at);
                return;
            }
            post(e, act, e->authz_urls[e->authz_i], NULL, 0, NULL);
            break;

        case S_ORDER_READY:
        case S_ORDER_VALID:
            if (now < e->wake_at) {
                emit_sleep(act, e->wake_at);
                return;
            }
            post(e, act, e->order_url, NULL, 0, NULL);
            break;

        case S_FINALIZE:
            payload = finalize_payload(e);
            if (payload == NULL) {
                continue;
            }
            post(e, act, e->finalize_url, payload, 0, NULL);
            free(payload);
            break;

        case S_CERT:
            post(e, act, e->certificate_url, NULL, 0, PEM_CHAIN);
            break;

        case S_CERT_ALT:
            post(e, act, e->alt_urls[e->alt_i], NULL, 0, PEM_CHAIN);
            break;

        case S_READBACK:
            post(e, act, e->order_url, NULL, 0, NULL);
            break;

        case S_FINISH:
            if (e->n_pub > 0) {
                e->unpub = e->pub[--e->n_pub];
                act->kind = ACME_ACT_UNPUBLISH;
                act->challenge_type = e->unpub.type;
                act->identifier = e->unpub.identifier;
                act->token = e->unpub.token;
                act->key_authz = e->unpub.key_authz;
                return;
            }
            act->kind = e->result;
            return;
        }

        /* post() either emitted a request or failed */
        if (e->state != S_FINISH) {
            return;
        }
        memset(act, 0, sizeof(*act));
    }
}


/* ---- responses ----------------------------------------------------------- */

/*
 * The configured profile against the directory's meta.profiles (an object
 * name -> description, draft-ietf-acme-profiles): offered -> sent in
 * newOrder; else a warning (once per order) or, required, the order fails.
 * 0 when it failed.
 */
static int
on_directory_profile(acme_engine_t *e, json_t *meta)
{
    json_t      *profiles, *v;
    const char  *k;
    char         offered[256];
    size_t       len = 0;
    int          n;

    profiles = json_object_get(meta, "profiles");
    if (json_is_object(profiles)
        && json_object_get(profiles, e->profile) != NULL)
    {
        e->profile_send = 1;
        return 1;
    }

    offered[0] = '\0';
    if (json_is_object(profiles) && json_object_size(profiles) > 0) {
        json_object_foreach(profiles, k, v) {
            (void) v;
            n = snprintf(offered + len, sizeof(offered) - len, "%s\"%s\"",
                         len ? ", " : "it offers ", k);
            if (n < 0 || (size_t) n >= sizeof(offered) - len) {
                break;
            }
            len += n;
        }
    } else {
        snprintf(offered, sizeof(offered), "its directory has no "
                 "meta.profiles");
    }

    if (e->profile_require) {
        fail(e, "new-order: the profile \"%s\" is required and the CA at "
             "%s does not offer it (%s)", e->profile, e->directory_url,
             offered);
        return 0;
    }

    snprintf(e->profile_note, sizeof(e->profile_note), "the profile \"%s\" "
             "is not offered by the CA at %s (%s): ordering without a "
             "profile", e->profile, e->directory_url, offered);
    one_line(e->profile_note);
    e->profile_note_pending = 1;
    return 1;
}


/* An ari_only engine read the directory: renewalInfo "/" id, or DONE
 * with nothing (the CA has no ARI). */
static void
on_directory_ari(acme_engine_t *e)
{
    size_t  n;

    if (e->renewal_info_url == NULL) {
        e->result = ACME_ACT_DONE;
        e->state = S_FINISH;
        return;
    }
    n = strlen(e->renewal_info_url);
    e->ari_get_url = acme_sprintf("%s%s%s", e->renewal_info_url,
                                  n > 0 && e->renewal_info_url[n - 1] == '/'
                                  ? "" : "/", e->ari_id);
    if (e->ari_get_url == NULL) {
        fail(e, "renewal-info: out of memory");
        return;
    }
    e->state = S_ARI;
}


/* The renewalInfo answer: kept for the host (acme_ari_answered parses). */
static void
on_ari(acme_engine_t *e, const acme_http_response_t *resp)
{
    json_t  *prob;

    if (resp->status < 200 || resp->status >= 300) {
        prob = problem_of(resp);
        fail_response(e, "renewal-info", resp, prob);
        json_decref(prob);
        return;
    }
    free(e->ari_body);
    e->ari_body = acme_strndup(resp->body ? resp->body : "",
                               resp->body ? resp->body_len : 0);
    e->ari_body_len = resp->body ? resp->body_len : 0;
    set_str(&e->ari_retry_after, resp->retry_after);
    if (e->ari_body == NULL) {
        fail(e, "renewal-info: out of memory");
        return;
    }
    e->ari_answered = 1;
    e->result = ACME_ACT_DONE;
    e->state = S_FINISH;
}


/* A newOrder refused for its "replaces" (RFC 9773 section 5): sent again
 * without it, once.  1 when it will be. */
static int
replaces_refused(acme_engine_t *e, json_t *prob)
{
    if (e->state != S_NEW_ORDER || !e->replaces_sent || e->replaces_dropped
        || prob == NULL
        || !acme_ari_replaces_refused(jstr(prob, "type"),
                                      jstr(prob, "detail")))
    {
        return 0;
    }
    e->replaces_dropped = 1;
    snprintf(e->profile_note, sizeof(e->profile_note), "new-order: the CA "
             "refused \"replaces\": %s: %s; ordering again without it",
             jstr(prob, "type"), jstr(prob, "detail") ? jstr(prob, "detail")
                                                     : "");
    one_line(e->profile_note);
    e->profile_note_pending = 1;
    return 1;
}


static void
on_directory(acme_engine_t *e, json_t *j)
{
    const char  *nn, *na, *no;
    json_t      *meta;

    set_str(&e->renewal_info_url, jstr(j, "renewalInfo"));
    if (e->ari_only) {
        on_directory_ari(e);
        return;
    }

    nn = jstr(j, "newNonce");
    na = jstr(j, "newAccount");
    no = jstr(j, "newOrder");

    if (nn == NULL || na == NULL || no == NULL) {
        fail(e, "directory: \"%s\" is missing from the directory at %s",
             nn == NULL ? "newNonce" : na == NULL ? "newAccount" : "newOrder",
             e->directory_url);
        return;
    }

    set_str(&e->new_nonce_url, nn);
    set_str(&e->new_account_url, na);
    set_str(&e->new_order_url, no);

    meta = json_object_get(j, "meta");
    e->eab_required = json_is_true(json_object_get(meta, "externalAccountRequired"));
    set_str(&e->tos_url, jstr(meta, "termsOfService"));

    set_str(&e->revoke_cert_url, jstr(j, "revokeCert"));
    if (e->revoke_b64 != NULL && e->revoke_cert_url == NULL) {
        fail(e, "revoke: \"revokeCert\" is missing from the directory at %s",
             e->directory_url);
        return;
    }

    if (e->profile != NULL && !on_directory_profile(e, meta)) {
        return;
    }

    /* a URL the store refused is handed to the host again, to write */
    e->state = e->account_url == NULL ? S_ACCOUNT_FIND
               : e->account_unsaved ? S_ACCOUNT_EMIT : after_account(e);
    e->account_unsaved = 0;
}


static void
on_account(acme_engine_t *e, const acme_http_response_t *resp)
{
    json_t      *j;
    const char  *status;

    if (resp->location == NULL || resp->location[0] == '\0') {
        fail(e, "new-account: the response has no Location (HTTP %d)",
             resp->status);
        return;
    }

    /* the body is the account object; its status matters if present */
    j = resp->body_len ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    status = j ? jstr(j, "status") : NULL;
    if (status != NULL && strcmp(status, "valid") != 0) {
        fail(e, "new-account: account %s is %s", resp->location, status);
        json_decref(j);
        return;
    }
    json_decref(j);

    if (e->refused_url != NULL && strcmp(resp->location, e->refused_url) == 0) {
        /* the key's account is the one the CA just refused: signing with
         * that pair again cannot help */
        fail(e, "%s; the CA gives the same account %s for the account key",
             e->refused_error ? e->refused_error : "account refused",
             e->refused_url);
        return;
    }

    set_str(&e->account_url, resp->location);
    e->state = S_ACCOUNT_EMIT;
}


/* Fails with the order's own error when it is invalid; 0 if not. */
static int
order_invalid(acme_engine_t *e, json_t *order, const char *status)
{
    json_t  *err;
    char    *text;

    if (strcmp(status, "invalid") != 0) {
        return 0;
    }

    err = json_object_get(order, "error");
    text = json_is_object(err) ? problem_text(err) : NULL;
    fail(e, "%s: order %s is invalid%s%s", req_label(e),
         e->order_url ? e->order_url : "", text ? ": " : "", text ? text : "");
    free(text);
    return 1;
}


static void
on_new_order(acme_engine_t *e, const acme_http_response_t *resp, json_t *j)
{
    const char  *status, *fin, *u;
    json_t      *authzs, *a;
    size_t       i;

    if (resp->location == NULL || resp->location[0] == '\0') {
        fail(e, "new-order: the response has no Location (HTTP %d)",
             resp->status);
        return;
    }
    set_str(&e->order_url, resp->location);

    status = jstr(j, "status");
    fin = jstr(j, "finalize");
    authzs = json_object_get(j, "authorizations");

    if (status == NULL || fin == NULL || !json_is_array(authzs)) {
        fail(e, "new-order: the order has no \"%s\"",
             status == NULL ? "status" : fin == NULL ? "finalize"
                                                     : "authorizations");
        return;
    }

    if (order_invalid(e, j, status)) {
        return;
    }

    if (strcmp(status, "valid") == 0) {
        /* its certificate would not be for our fresh key */
        fail(e, "new-order: the CA returned an already valid order %s",
             e->order_url);
        return;
    }

    set_str(&e->finalize_url, fin);

    e->n_authz = json_array_size(authzs);
    e->authz_urls = calloc(e->n_authz ? e->n_authz : 1, sizeof(char *));
    e->authz_wake = calloc(e->n_authz ? e->n_authz : 1, sizeof(long long));
    if (e->authz_urls == NULL || e->authz_wake == NULL) {
        e->n_authz = 0;
        fail(e, "new-order: out of memory");
        return;
    }
    json_array_foreach(authzs, i, a) {
        u = json_string_value(a);
        if (u == NULL) {
            fail(e, "new-order: an authorization URL is not a string");
            return;
        }
        e->authz_urls[i] = acme_strdup(u);
    }

    e->authz_i = 0;
    e->state = S_AUTHZ;
}


static json_t *
find_challenge(json_t *authz, const char *type)
{
    json_t  *chals, *c;
    size_t   i;

    chals = json_object_get(authz, "challenges");
    json_array_foreach(chals, i, c) {
        if (json_is_object(c) && jstr(c, "type")
            && strcmp(jstr(c, "type"), type) == 0)
        {
            return c;
        }
    }
    return NULL;
}


/*
 * A challenge of type failed (chal: its object, or NULL; err: its "error";
 * token: its token when chal has none):
 * the identifier, the type, what the CA validated (acme_problem.h) and the
 * CA's problem.
 */
static void
fail_challenge(acme_engine_t *e, const char *type, json_t *chal, json_t *err,
    const char *token)
{
    char *text, *target;

    text = json_is_object(err) ? problem_text(err) : NULL;
    target = acme_problem_challenge_target(chal, type, e->authz_ident,
                                           token);

    fail(e, "authorization of %s is invalid: %s challenge failed%s%s%s%s",
         e->authz_ident, type, target && target[0] ? ": " : "",
         target ? target : "", text ? ": " : " (the CA gave no error)",
         text ? text : "");
    free(text);
    free(target);
}


static void
fail_authz_invalid(acme_engine_t *e, json_t *authz)
{
    json_t      *chals, *c, *err;
    size_t       i;
    const char  *type = e->challenge_type;

    /* the configured challenge's error, else any challenge's error */
    c = find_challenge(authz, e->challenge_type);
    err = c ? json_object_get(c, "error") : NULL;
    if (!json_is_object(err)) {
        chals = json_object_get(authz, "challenges");
        json_array_foreach(chals, i, c) {
            err = json_object_get(c, "error");
            if (json_is_object(err)) {
                type = jstr(c, "type") ? jstr(c, "type") : "?";
                break;
            }
        }
        if (!json_is_object(err)) {
            c = find_challenge(authz, e->challenge_type);
        }
    }

    fail_challenge(e, type, c, err, NULL);
}


static void
on_authz(acme_engine_t *e, const acme_http_response_t *resp, json_t *j)
{
    const char  *status, *ident, *cstatus, *token, *curl;
    json_t      *chal;
    char        *ka, *name;

    status = jstr(j, "status");
    ident = jstr(json_object_get(j, "identifier"), "value");
    if (status == NULL || ident == NULL) {
        fail(e, "authorization: %s has no \"%s\"", e->authz_urls[e->authz_i],
             status == NULL ? "status" : "identifier");
        return;
    }

    /* the identifier as the CA validates it: a wildcard's base name */
    name = acme_strdup(ident);
    free(e->authz_ident);
    e->authz_ident = name;
    if (name == NULL) {
        fail(e, "authorization: out of memory");
        return;
    }

    if (strcmp(status, "valid") == 0) {
        if (e->state == S_AUTHZ_POLL) {
            e->authz_wake[e->authz_i] = 0;
            authz_poll_next(e);
            return;
        }
        e->authz_i++;
        free(e->authz_ident);
        e->authz_ident = NULL;
        e->state = S_AUTHZ;
        return;
    }

    if (strcmp(status, "invalid") == 0) {
        fail_authz_invalid(e, j);
        return;
    }

    if (strcmp(status, "pending") != 0 && strcmp(status, "processing") != 0) {
        /* deactivated, expired, revoked */
        fail(e, "authorization of %s is %s", e->authz_ident, status);
        return;
    }

    if (e->state == S_AUTHZ_POLL) {
        e->wake_at = poll_at(e, resp);
        return;
    }

    /* first look at a pending authorization: answer its challenge */
    chal = find_challenge(j, e->challenge_type);
    if (chal == NULL) {
        fail(e, "authorization of %s offers no %s challenge", e->authz_ident,
             e->challenge_type);
        return;
    }

    cstatus = jstr(chal, "status");
    token = jstr(chal, "token");
    curl = jstr(chal, "url");
    if (token == NULL || curl == NULL || cstatus == NULL) {
        fail(e, "authorization of %s: the %s challenge has no \"%s\"",
             e->authz_ident, e->challenge_type,
             token == NULL ? "token" : curl == NULL ? "url" : "status");
        return;
    }
    /* tokens end up in URL paths and file-less lookups: base64url only */
    if (!acme_token_ok(token, strlen(token))) {
        fail(e, "authorization of %s: malformed challenge token",
             e->authz_ident);
        return;
    }
    if (strcmp(cstatus, "invalid") == 0) {
        fail_authz_invalid(e, j);
        return;
    }

    ka = acme_key_authorization(token, e->account_key);
    if (ka == NULL) {
        fail(e, "authorization: computing the key authorization failed");
        return;
    }

    set_str(&e->chal_url, curl);
    set_str(&e->chal_token, token);
    free(e->key_authz);
    e->key_authz = ka;
    e->chal_processing = strcmp(cstatus, "pending") != 0;
    e->state = S_PUBLISH;
}


static void
on_challenge(acme_engine_t *e, const acme_http_response_t *resp, json_t *j)
{
    const char  *status;

    status = jstr(j, "status");
    if (status != NULL && strcmp(status, "invalid") == 0) {
        fail_challenge(e, e->challenge_type, j, json_object_get(j, "error"),
                       e->chal_token);
        return;
    }

    /* already validated (e.g. a CA that validates synchronously): the
     * authorization is re-read at once; else from its first wait on */
    e->poll_n = 0;
    authz_answered(e, (status != NULL && strcmp(status, "valid") == 0)
                      ? e->now_ms : poll_at(e, resp));
}


static void
on_order(acme_engine_t *e, const acme_http_response_t *resp, json_t *j)
{
    const char *status, *cert;

    status = jstr(j, "status");
    if (status == NULL) {
        fail(e, "%s: the order has no \"status\"", req_label(e));
        return;
    }

    if (order_invalid(e, j, status)) {
        return;
    }

    if (strcmp(status, "valid") == 0) {
        if (e->state == S_ORDER_READY) {
            fail(e, "order: %s became valid before we finalized it",
                 e->order_url);
            return;
        }
        cert = jstr(j, "certificate");
        if (cert == NULL) {
            fail(e, "%s: the valid order has no \"certificate\"", req_label(e));
            return;
        }
        set_str(&e->certificate_url, cert);
        e->state = S_CERT;
        return;
    }

    if (strcmp(status, "ready") == 0 && e->state == S_ORDER_READY) {
        e->state = S_FINALIZE;
        return;
    }

    if (strcmp(status, "pending") == 0 && e->state != S_ORDER_READY) {
        fail(e, "%s: the order went back to \"pending\"", req_label(e));
        return;
    }

    /* pending/processing (or ready after finalize): wait; "valid" in
     * finalize's own answer went to the download above, no poll */
    if (e->state == S_FINALIZE) {
        e->state = S_ORDER_VALID;
        e->poll_n = 0;
    }
    e->wake_at = poll_at(e, resp);
}


/* The order read back after an unclear answer: go on from its state. */
static void
on_readback(acme_engine_t *e, const acme_http_response_t *resp, json_t *j)
{
    const char *status, *cert;

    status = jstr(j, "status");
    if (status == NULL) {
        fail(e, "order: the order has no \"status\"");
        return;
    }

    if (order_invalid(e, j, status)) {
        return;
    }

    if (strcmp(status, "valid") == 0) {
        /* issued: collected whatever step was unclear (the download
         * checks the leaf's key and names) */
        cert = jstr(j, "certificate");
        if (cert == NULL) {
            fail(e, "order: the valid order has no \"certificate\"");
            return;
        }
        set_str(&e->certificate_url, cert);
        e->state = S_CERT;

    } else if (strcmp(status, "processing") == 0) {
        e->state = S_ORDER_VALID;
        e->poll_n = 0;
        e->wake_at = poll_at(e, resp);

    } else if (strcmp(status, "ready") == 0) {
        e->state = S_FINALIZE;

    } else if (strcmp(status, "pending") == 0) {
        /* valid authorizations are passed over, a challenge answered
         * already is only polled */
        e->authz_i = 0;
        memset(e->authz_wake, 0, e->n_authz * sizeof(long long));
        free(e->authz_ident);
        e->authz_ident = NULL;
        e->state = S_AUTHZ;

    } else {
        fail(e, "order: order %s is %s", e->order_url, status);
    }
}


static void
on_certificate(acme_engine_t *e, const acme_http_response_t *resp)
{
    char  why[ACME_ERRLEN];

    if (resp->body == NULL
        || strstr(resp->body, "-----BEGIN CERTIFICATE-----") == NULL)
    {
        /* cut short, or something in between: download it again */
        if (unclear(e, resp->retry_after,
                    "the response is not a PEM certificate chain"))
        {
            return;
        }
        fail(e, "certificate: the response is not a PEM certificate chain "
             "(HTTP %d%s%s)", resp->status,
             resp->content_type ? ", " : "",
             resp->content_type ? resp->content_type : "");
        return;
    }

    /* checked before the host stores or installs it: a CA (or something
     * in between) handing out a certificate for another key or lacking a
     * name must not replace a good one */
    if (acme_cert_check_issued(resp->body, resp->body_len, e->cert_key,
                               (const char *const *) e->names, e->n_names,
                               e->now, why, sizeof(why))
        != 0)
    {
        fail(e, "certificate: rejected the certificate at %s: %s",
             e->certificate_url, why);
        return;
    }

    free(e->cert);
    e->cert = acme_strndup(resp->body, resp->body_len);
    if (e->cert == NULL) {
        fail(e, "certificate: out of memory");
        return;
    }
    e->cert_len = resp->body_len;

    if (e->preferred_chain != NULL) {
        if (acme_cert_chain_issued_by(e->cert, e->cert_len,
                                      e->preferred_chain))
        {
            snprintf(e->chain_note, sizeof(e->chain_note),
                     "the default chain is issued by \"%s\"",
                     e->preferred_chain);
        } else {
            alt_free(e);
            e->n_alt = acme_http_links(resp->link, "alternate",
                                       e->certificate_url, e->alt_urls,
                                       ACME_ENGINE_ALT_CHAINS);
            if (e->n_alt > 0) {
                e->state = S_CERT_ALT;
                return;
            }
            alt_default(e, "the CA offers no alternate chain");
            return;
        }
    }

    e->result = ACME_ACT_DONE;
    e->state = S_FINISH;
}


/*
 * preferred_chain, as nginx-acme's: the default chain's top certificate is
 * not issued by that name, so the alternates of the certificate URL's
 * Link: rel="alternate" headers (RFC 8555 section 7.4.2) are fetched in
 * their order (POST-as-GET) until one is; it must pass the same checks as
 * the default one.  An alternate that fails (any HTTP error, a transport
 * error, no PEM, another key) is passed over, and when none matches the
 * default chain, already checked, is the certificate.
 */
static void
alt_default(acme_engine_t *e, const char *why)
{
    if (e->n_alt == 0) {
        snprintf(e->chain_note, sizeof(e->chain_note),
                 "the default chain: it is not issued by \"%s\" and %s",
                 e->preferred_chain, why);
    } else {
        snprintf(e->chain_note, sizeof(e->chain_note),
                 "the default chain: neither it nor the %zu alternate "
                 "chain%s offered is issued by \"%s\" (the last: %s)",
                 e->n_alt, e->n_alt == 1 ? "" : "s", e->preferred_chain, why);
    }
    alt_free(e);
    e->result = ACME_ACT_DONE;
    e->state = S_FINISH;
}


static void
alt_next(acme_engine_t *e, const char *why)
{
    if (++e->alt_i < e->n_alt) {
        return;
    }
    alt_default(e, why);
}


static void
on_alternate(acme_engine_t *e, const acme_http_response_t *resp)
{
    char   why[ACME_ERRLEN], note[ACME_ERRLEN + 16];
    char  *pem;

    if (resp->body == NULL
        || strstr(resp->body, "-----BEGIN CERTIFICATE-----") == NULL)
    {
        alt_next(e, "not a PEM certificate chain");
        return;
    }
    if (!acme_cert_chain_issued_by(resp->body, resp->body_len,
                                   e->preferred_chain))
    {
        alt_next(e, "not issued by it either");
        return;
    }
    if (acme_cert_check_issued(resp->body, resp->body_len, e->cert_key,
                               (const char *const *) e->names, e->n_names,
                               e->now, why, sizeof(why))
        != 0)
    {
        snprintf(note, sizeof(note), "rejected: %s", why);
        alt_next(e, note);
        return;
    }
    pem = acme_strndup(resp->body, resp->body_len);
    if (pem == NULL) {
        alt_default(e, "out of memory");
        return;
    }
    snprintf(e->chain_note, sizeof(e->chain_note),
             "the alternate chain %s, issued by \"%s\"",
             e->alt_urls[e->alt_i], e->preferred_chain);
    free(e->cert);
    e->cert = pem;
    e->cert_len = resp->body_len;
    alt_free(e);
    e->result = ACME_ACT_DONE;
    e->state = S_FINISH;
}


/*
 * The CA refuses the account URL the host gave (from its store): the CA's
 * database was reset, the account was deactivated, or the URL belongs to
 * another key (the CA then fails to verify our signature with that
 * account's key).  Once per order, the account is looked up again by its
 * key (onlyReturnExisting, RFC 8555 section 7.3.1), registered if there is
 * none, and the order starts over with the URL the CA gives; that URL is
 * emitted (ACME_ACT_ACCOUNT) for the host to store.  The refused pair is
 * never used again: the same URL back from the CA is an error.
 */
static int
account_fallback(acme_engine_t *e, const acme_http_response_t *resp,
    json_t *prob)
{
    const char *detail;
    char       *text;

    if (!e->account_from_store || e->account_fallback_done
        || e->state < S_NEW_ORDER || e->state == S_FINISH
        || e->account_url == NULL)
    {
        return 0;
    }

    detail = jstr(prob, "detail");

    if (!problem_is(prob, "accountDoesNotExist")
        && !problem_is(prob, "unauthorized")
        && !(problem_is(prob, "malformed") && detail != NULL
             && (strcasestr(detail, "JWS verification") != NULL
                 || strcasestr(detail, "signature") != NULL)))
    {
        return 0;
    }

    text = acme_problem_text(prob, resp->status);
    free(e->refused_error);
    e->refused_error = acme_sprintf("%s: %s", req_label(e),
                                    text ? text : "(problem)");
    free(text);
    if (e->refused_error) {
        one_line(e->refused_error);
    }

    e->account_fallback_done = 1;
    e->account_from_store = 0;
    free(e->refused_url);
    e->refused_url = e->account_url;
    e->account_url = NULL;
    reset_order(e);
    e->state = S_ACCOUNT_FIND;
    return 1;
}


/*
 * Whether a failed newAccount that carried a binding was most likely a
 * rejection of the binding: any problem but the ones with other causes.
 */
static int
eab_rejected(acme_engine_t *e, state_t st, json_t *prob)
{
    return st == S_ACCOUNT_CREATE && e->eab_kid != NULL && prob != NULL
           && !problem_is(prob, "userActionRequired")
           && !problem_is(prob, "rateLimited")
           && !problem_is(prob, "serverInternal")
           && !problem_is(prob, "badNonce")
           && !problem_is(prob, "invalidContact")
           && !problem_is(prob, "unsupportedContact");
}


/*
 * A redirect of the directory GET (301, 302, 307, 308), as nginx-acme
 * follows it: at most ACME_ENGINE_DIR_REDIRECTS, to https URLs only (an
 * absolute one, or a path on the same origin); the engine goes on with the
 * new URL (acme_engine_directory_url).  1 when resp was one (followed or
 * failed), else 0.
 */
static int
directory_redirect(acme_engine_t *e, const acme_http_response_t *resp)
{
    const char  *loc, *p;
    char        *url;
    size_t       origin;

    if (resp->status != 301 && resp->status != 302 && resp->status != 307
        && resp->status != 308)
    {
        return 0;
    }
    loc = resp->location;
    if (loc == NULL || loc[0] == '\0') {
        fail(e, "directory: HTTP %d from %s without a Location",
             resp->status, e->directory_url);
        return 1;
    }
    if (++e->dir_redirects > ACME_ENGINE_DIR_REDIRECTS) {
        fail(e, "directory: more than %d redirects (the last from %s to %s)",
             ACME_ENGINE_DIR_REDIRECTS, e->directory_url, loc);
        return 1;
    }
    if (strncasecmp(loc, "https://", 8) == 0 && loc[8] != '\0'
        && loc[8] != '/')
    {
        url = acme_strdup(loc);
    } else if (loc[0] == '/' && loc[1] != '/') {
        /* a path on the same origin: scheme://authority of the URL */
        p = strchr(e->directory_url + 8, '/');
        origin = p ? (size_t) (p - e->directory_url)
                   : strlen(e->directory_url);
        url = acme_sprintf("%.*s%s", (int) origin, e->directory_url, loc);
    } else {
        fail(e, "directory: %s redirects to \"%s\", not an https URL "
             "(refused)", e->directory_url, loc);
        return 1;
    }
    if (url == NULL) {
        fail(e, "out of memory");
        return 1;
    }
    free(e->directory_url);
    e->directory_url = url;
    return 1;
}

void
acme_engine_on_response(acme_engine_t *e, const acme_http_response_t *resp)
{
    int      aw;
    state_t  st;
    json_t  *j, *prob;
    char     msg[ACME_ERRLEN], why[32];

    if (e->awaiting == AW_NONE) {
        return;
    }
    aw = e->awaiting;
    e->awaiting = AW_NONE;
    st = e->state;

    if (resp->replay_nonce != NULL && resp->replay_nonce[0] != '\0') {
        set_str(&e->nonce, resp->replay_nonce);
    }

    if (aw == AW_NONCE) {
        if (e->state == S_CERT_ALT && (resp->status < 200
                                       || resp->status >= 300
                                       || e->nonce == NULL))
        {
            alt_default(e, "no nonce to fetch the rest");
            return;
        }
        if (resp->status >= 500
            && unclear(e, resp->retry_after,
                       http_why(resp, why, sizeof(why))))
        {
            return;
        }
        if (resp->status < 200 || resp->status >= 300) {
            prob = problem_of(resp);
            fail_response(e, "new-nonce", resp, prob);
            json_decref(prob);
        } else if (e->nonce == NULL) {
            fail(e, "new-nonce: the response has no Replay-Nonce (HTTP %d)",
                 resp->status);
        }
        return;
    }

    if (e->state == S_DIRECTORY && aw == AW_MAIN
        && directory_redirect(e, resp))
    {
        return;
    }

    if (e->state == S_ARI) {
        on_ari(e, resp);
        return;
    }

    if (resp->status < 200 || resp->status >= 300) {
        prob = problem_of(resp);

        if (problem_is(prob, "badNonce") && e->state != S_DIRECTORY
            && e->bad_nonce_count < e->max_bad_nonce)
        {
            /* stay in the state: next() signs again with the new nonce */
            e->bad_nonce_count++;

        } else if (e->state == S_ACCOUNT_FIND
                   && problem_is(prob, "accountDoesNotExist"))
        {
            e->state = S_ACCOUNT_CREATE;

        } else if (e->state == S_REVOKE
                   && problem_is(prob, "alreadyRevoked"))
        {
            on_revoked(e);

        } else if (replaces_refused(e, prob)) {
            /* stay in the state: next() sends newOrder without it */

        } else if (e->state == S_CERT_ALT) {
            /* the default chain stays good */
            snprintf(msg, sizeof(msg), "HTTP %d", resp->status);
            alt_next(e, msg);

        } else if (resp->status >= 500
                   && unclear(e, resp->retry_after,
                              http_why(resp, why, sizeof(why))))
        {
            /* the CA may have done it: look before doing anything else */

        } else if (aw != AW_MAIN || !account_fallback(e, resp, prob)) {
            fail_response(e, req_label(e), resp, prob);
            if (eab_rejected(e, st, prob) && e->error) {
                /* the kid is an identifier, not a secret; the key is */
                fail(e, "%s; the CA rejected the External Account Binding "
                     "(check the EAB kid \"%s\" and MAC key)", e->error,
                     e->eab_kid);
            }
            if (e->tos_url && !e->terms_agreed && e->error
                && e->state == S_FINISH && aw == AW_MAIN
                && strstr(e->error, "new-account: ") == e->error)
            {
                /* the likely cause, in the operator's terms */
                fail(e, "%s; the CA's terms of service (%s) have not been "
                     "agreed to", e->error, e->tos_url);
            }
        }

        json_decref(prob);
        return;
    }

    e->bad_nonce_count = 0;

    switch (e->state) {

    case S_ACCOUNT_FIND:
    case S_ACCOUNT_CREATE:
        on_account(e, resp);
        return;

    case S_CERT:
        on_certificate(e, resp);
        return;

    case S_CERT_ALT:
        on_alternate(e, resp);
        return;

    case S_REVOKE:
        on_revoked(e);
        return;

    default:
        break;
    }

    j = json_body(e, resp, msg, sizeof(msg));
    if (j == NULL) {
        if (!unclear(e, resp->retry_after, msg)) {
            fail(e, "%s", msg);
        }
        return;
    }

    switch (e->state) {
    case S_DIRECTORY:
        on_directory(e, j);
        break;
    case S_NEW_ORDER:
        on_new_order(e, resp, j);
        break;
    case S_AUTHZ:
    case S_AUTHZ_POLL:
        on_authz(e, resp, j);
        break;
    case S_CHALLENGE:
        on_challenge(e, resp, j);
        break;
    case S_ORDER_READY:
    case S_FINALIZE:
    case S_ORDER_VALID:
        on_order(e, resp, j);
        break;
    case S_READBACK:
        on_readback(e, resp, j);
        break;
    default:
        break;
    }

    json_decref(j);
}


void
acme_engine_publish_failed(acme_engine_t *e, const char *msg)
{
    if (!e->last_publish || e->state == S_FINISH) {
        return;
    }
    e->last_publish = 0;
    fail(e, "%s", msg && msg[0] ? msg : "publishing the challenge failed");
    e->retry_after = 0;
}


size_t
acme_engine_abort(acme_engine_t *e, const char *msg)
{
    e->last_publish = 0;
    if (e->state != S_FINISH) {
        fail(e, "%s", msg && msg[0] ? msg : "aborted");
        e->retry_after = 0;
    }
    e->awaiting = AW_NONE;
    return e->n_pub;
}


void
acme_engine_on_transport_error(acme_engine_t *e, const char *msg)
{
    if (e->awaiting == AW_NONE) {
        return;
    }
    if (e->state == S_CERT_ALT) {
        char note[ACME_ERRLEN];

        snprintf(note, sizeof(note), "%s", msg ? msg : "transport error");
        e->awaiting = AW_NONE;
        alt_next(e, note);
        return;
    }
    /* sent or not, answered or not: the next step looks first */
    if (unclear(e, NULL, msg ? msg : "transport error")) {
        return;
    }
    fail(e, "%s: %s", e->awaiting == AW_NONCE ? "new-nonce" : req_label(e),
         msg ? msg : "transport error");
}


/* ---- accessors ----------------------------------------------------------- */

int
acme_engine_ari(const acme_engine_t *e, const char **body, size_t *len,
    const char **retry_after)
{
    if (!e->ari_only || e->result != ACME_ACT_DONE) {
        return -1;
    }
    if (!e->ari_answered) {
        return 0;
    }
    *body = e->ari_body;
    *len = e->ari_body_len;
    *retry_after = e->ari_retry_after;
    return 1;
}


const char *
acme_engine_certificate(const acme_engine_t *e, size_t *len)
{
    if (len) {
        *len = e->cert ? e->cert_len : 0;
    }
    return e->result == ACME_ACT_DONE ? e->cert : NULL;
}


const char *
acme_engine_error(const acme_engine_t *e)
{
    return e->error;
}


long long
acme_engine_retry_after(const acme_engine_t *e)
{
    return e->result == ACME_ACT_ERROR ? e->retry_after : 0;
}


const char *
acme_engine_account_url(const acme_engine_t *e)
{
    return e->account_url;
}


const char *
acme_engine_directory_url(const acme_engine_t *e)
{
    return e->directory_url;
}


const char *
acme_engine_order_url(const acme_engine_t *e)
{
    return e->order_url;
}


const char *
acme_engine_chain_note(const acme_engine_t *e)
{
    return e->chain_note[0] ? e->chain_note : NULL;
}


const char *
acme_engine_step(const acme_engine_t *e)
{
    /* a read-back shows the step whose answer was unclear */
    switch (e->state == S_READBACK ? e->unclear_step : e->state) {
    case S_DIRECTORY:       return "directory";
    case S_ACCOUNT_FIND:
    case S_ACCOUNT_CREATE:
    case S_ACCOUNT_EMIT:    return "new-account";
    case S_NEW_ORDER:       return "new-order";
    case S_AUTHZ:
    case S_PUBLISH:
    case S_AUTHZ_POLL:      return "authorization";
    case S_CHALLENGE:       return "challenge";
    case S_ORDER_READY:
    case S_FINALIZE:
    case S_ORDER_VALID:
    case S_READBACK:        return "finalize";
    case S_CERT:
    case S_CERT_ALT:        return "certificate";
    case S_REVOKE:
    case S_REVOKED_EMIT:    return "revoke";
    case S_ARI:             return "renewal-info";
    case S_FINISH:          return e->result == ACME_ACT_DONE ? "done" : "error";
    }
    return "error";
}
