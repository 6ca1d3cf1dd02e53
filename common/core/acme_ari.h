/*
 * ACME Renewal Information (ARI, RFC 9773): the certificate identifier,
 * the renewalInfo answer, the renewal time chosen in its window and when
 * to ask again.  Pure: the clock and the randomness are the caller's (the
 * jitter derives from the certificate's seed, acme_job_seed), the state
 * lives in acme_cert_state_t (state.json: it survives a restart).
 *
 * The engine fetches it (acme_order_config_t.ari_only: the directory,
 * then an unauthenticated GET of renewalInfo/<cert ID>, RFC 9773 section
 * 4.2) and sends "replaces" in newOrder (section 5); the hosts run that
 * fetch as a job of the scheduler (one certificate at a time, within the
 * issuer's max_orders) when acme_ari_poll_due says, and feed its outcome
 * to acme_ari_answered / acme_ari_failed / acme_ari_unsupported.
 * acme_job_due takes the chosen time (acme_ari_renew_at) instead of the
 * lifetime rule while an answer for the served certificate stands.
 */
#ifndef ACME_ARI_H
#define ACME_ARI_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "acme_engine.h"
#include "acme_sched.h"

/* The Retry-After of an answer is clamped to [poll_min, ACME_ARI_POLL_MAX]
 * (poll_min: ari_poll_interval / AcmeARIPollInterval, default
 * ACME_ARI_POLL_MIN); an answer without one is asked again after
 * ACME_ARI_POLL_DEFAULT (clamped the same way). */
#define ACME_ARI_POLL_MIN       3600
#define ACME_ARI_POLL_MAX       86400
#define ACME_ARI_POLL_DEFAULT   21600

/*
 * The certificate identifier of RFC 9773 section 4.1:
 * base64url(authorityKeyIdentifier's keyIdentifier) "." base64url(the
 * serial number's DER content octets), no padding.  0, or -1 when the
 * certificate has no AKI keyIdentifier (or out is too small).
 */
int acme_ari_cert_id(X509 *leaf, char *out, size_t outlen);
/* The same from the two octet strings (the serial's content octets, a
 * leading 0x00 included when the number's top bit is set). */
int acme_ari_cert_id_raw(const unsigned char *keyid, size_t keyid_len,
    const unsigned char *serial, size_t serial_len, char *out,
    size_t outlen);

/* A renewalInfo answer (section 4.2). */
typedef struct {
    long long   start;              /* suggestedWindow, unix times */
    long long   end;
    char        explanation[256];   /* explanationURL; "" none */
} acme_ari_window_t;

/* Parses the JSON answer: suggestedWindow.start / .end (RFC 3339, start
 * before end) and the optional explanationURL.  0, or -1 with err. */
int acme_ari_parse(const char *body, size_t len, acme_ari_window_t *w,
    char *err, size_t errlen);

/*
 * The renewal time in [start, end): uniformly at random (rnd), now when
 * the window has begun already (or has ended).
 */
long long acme_ari_choose(long long start, long long end, long long now,
    uint32_t rnd);

/*
 * When to ask again after an answer at now: its Retry-After (header value,
 * NULL none: ACME_ARI_POLL_DEFAULT) clamped to [poll_min,
 * max(poll_min, ACME_ARI_POLL_MAX)] (poll_min <= 0: ACME_ARI_POLL_MIN),
 * plus a jitter of at most a twentieth of it from rnd.
 */
long long acme_ari_next_poll(const char *retry_after, long long now,
    long long poll_min, uint32_t rnd);

/*
 * 1 when the certificate whose ARI identifier is id needs a renewalInfo
 * fetch at now: no answer for it yet (a new certificate: right after its
 * issuance), or st->ari_next_poll reached.  0 when id is NULL or "" (no
 * identifier: no ARI for that certificate).
 */
int acme_ari_poll_due(const acme_cert_state_t *st, const char *id,
    long long now);

/*
 * The answer (body, the Retry-After header value) for id at now into st:
 * the window, the explanation URL, a chosen time (kept when the window is
 * the same as before), the next poll, no error.  seed as acme_job_seed.
 * 0; -1 with err when the body does not parse (then recorded as
 * acme_ari_failed does).
 */
int acme_ari_answered(acme_cert_state_t *st, const char *id,
    const char *body, size_t len, const char *retry_after, long long now,
    long long poll_min, uint32_t seed, char *err, size_t errlen);

/*
 * A fetch for id failed at now with msg (HTTP 500, a transport error, an
 * answer that does not parse): st->ari_error, failures + 1, the next
 * poll after a backoff from poll_min (10, 100 times it, then
 * ACME_ARI_POLL_MAX; never later than ACME_ARI_POLL_MAX), not before
 * retry_after (unix time, 0 none).  An earlier answer for the same
 * certificate stays (its chosen time too); for another certificate there
 * is none: the lifetime rule decides.
 */
void acme_ari_failed(acme_cert_state_t *st, const char *id, const char *msg,
    long long now, long long retry_after, long long poll_min, uint32_t seed);

/* The CA's directory has no renewalInfo: asked again (the directory) in
 * ACME_ARI_POLL_MAX, the lifetime rule decides. */
void acme_ari_unsupported(acme_cert_state_t *st, const char *id,
    long long now);

/*
 * The end of an ari_only engine e (done: DONE, else ERROR) fetching id at
 * now, into st: acme_ari_answered, acme_ari_failed (the engine's error and
 * Retry-After) or acme_ari_unsupported.  msg is the line the host logs at
 * the level returned (syslog's numbers, as ACME_JOB_LOG_*: 4 warning for
 * a failure, "renewal information (ARI) not fetched: ..." / "unusable:
 * ...", naming the next fetch; 6 info for an answer, "renewal window
 * (ARI) START to END, renewal at T[; explanation: URL]"; 7 debug for a
 * CA without renewalInfo).
 */
int acme_ari_fetched(acme_cert_state_t *st, const char *id,
    const acme_engine_t *e, int done, long long now, long long poll_min,
    uint32_t seed, char *msg, size_t msglen);

/* The chosen renewal time for the certificate id (st's answer is for it),
 * else 0 (no answer: the lifetime rule). */
long long acme_ari_renew_at(const acme_cert_state_t *st, const char *id);

/* The ARI fields of st forgotten (a new certificate). */
void acme_ari_clear(acme_cert_state_t *st);

/* The "alreadyReplaced" problem or a refusal naming "replaces" (the CA
 * would not take the field): the order is sent again without it, once. */
int acme_ari_replaces_refused(const char *type, const char *detail);

#endif
