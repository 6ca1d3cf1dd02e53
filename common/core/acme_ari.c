/*
 * ACME Renewal Information (RFC 9773): see acme_ari.h.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include "acme_ari.h"
#include "acme_job.h"
#include "acme_util.h"

int
acme_ari_cert_id_raw(const unsigned char *keyid, size_t keyid_len,
    const unsigned char *serial, size_t serial_len, char *out, size_t outlen)
{
    char  *a, *b;
    int    n;

    if (keyid == NULL || keyid_len == 0 || serial == NULL
        || serial_len == 0 || outlen == 0)
    {
        return -1;
    }
    a = acme_b64url_encode(keyid, keyid_len);
    b = acme_b64url_encode(serial, serial_len);
    n = (a && b) ? snprintf(out, outlen, "%s.%s", a, b) : -1;
    free(a);
    free(b);
    if (n < 0 || (size_t) n >= outlen) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int
acme_ari_cert_id(X509 *leaf, char *out, size_t outlen)
{
    AUTHORITY_KEYID          *akid;
    const ASN1_OCTET_STRING  *kid;
    const ASN1_INTEGER       *sn;
    unsigned char            *der, *p;
    size_t                    hdr;
    int                       len, rc;

    if (outlen > 0) {
        out[0] = '\0';
    }
    if (leaf == NULL) {
        return -1;
    }
    /* the extension itself (not OpenSSL's cache of it, which a
     * certificate that fails its checks does not get) */
    akid = X509_get_ext_d2i(leaf, NID_authority_key_identifier, NULL, NULL);
    kid = akid != NULL ? akid->keyid : NULL;
    sn = X509_get0_serialNumber(leaf);
    if (kid == NULL || sn == NULL || ASN1_STRING_length(kid) <= 0) {
        AUTHORITY_KEYID_free(akid);
        return -1;
    }

    /* the INTEGER's DER, tag and length dropped: its content octets */
    rc = -1;
    len = i2d_ASN1_INTEGER(sn, NULL);
    der = len >= 3 ? malloc((size_t) len) : NULL;
    p = der;
    if (der != NULL && i2d_ASN1_INTEGER(sn, &p) == len) {
        hdr = (der[1] & 0x80) ? 2 + (size_t) (der[1] & 0x7f) : 2;
        if (hdr < (size_t) len) {
            rc = acme_ari_cert_id_raw(ASN1_STRING_get0_data(kid),
                                      (size_t) ASN1_STRING_length(kid),
                                      der + hdr, (size_t) len - hdr, out,
                                      outlen);
        }
    }
    free(der);
    AUTHORITY_KEYID_free(akid);
    return rc;
}

int
acme_ari_parse(const char *body, size_t len, acme_ari_window_t *w,
    char *err, size_t errlen)
{
    json_t       *j, *sw, *u;
    json_error_t  je;
    const char   *s, *e;

    memset(w, 0, sizeof(*w));
    if (body == NULL || len == 0) {
        return acme_err(err, errlen, "renewal-info: an empty answer");
    }
    j = json_loadb(body, len, 0, &je);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return acme_err(err, errlen, "renewal-info: the answer is not a "
                        "JSON object");
    }
    sw = json_object_get(j, "suggestedWindow");
    s = json_string_value(json_object_get(sw, "start"));
    e = json_string_value(json_object_get(sw, "end"));
    if (s == NULL || e == NULL) {
        json_decref(j);
        return acme_err(err, errlen, "renewal-info: the answer has no "
                        "suggestedWindow with start and end");
    }
    w->start = acme_time_parse_rfc3339(s);
    w->end = acme_time_parse_rfc3339(e);
    if (w->start < 0 || w->end < 0 || w->end <= w->start) {
        acme_err(err, errlen, "renewal-info: the suggestedWindow (\"%.40s\" "
                 "to \"%.40s\") is not a window", s, e);
        json_decref(j);
        memset(w, 0, sizeof(*w));
        return -1;
    }
    u = json_object_get(j, "explanationURL");
    if (json_is_string(u)
        && strlen(json_string_value(u)) < sizeof(w->explanation))
    {
        snprintf(w->explanation, sizeof(w->explanation), "%s",
                 json_string_value(u));
    }
    json_decref(j);
    return 0;
}

long long
acme_ari_choose(long long start, long long end, long long now, uint32_t rnd)
{
    if (start <= now || end <= now) {
        /* the window has begun (or is over): at once */
        return now;
    }
    if (end <= start) {
        return start;
    }
    return start + acme_sched_scale(rnd, end - start);
}

long long
acme_ari_next_poll(const char *retry_after, long long now,
    long long poll_min, uint32_t rnd)
{
    long long  at, d, max;

    if (poll_min <= 0) {
        poll_min = ACME_ARI_POLL_MIN;
    }
    max = poll_min > ACME_ARI_POLL_MAX ? poll_min : ACME_ARI_POLL_MAX;

    at = acme_sched_parse_retry_after(retry_after, now);
    d = at > 0 ? at - now : ACME_ARI_POLL_DEFAULT;
    if (d < poll_min) {
        d = poll_min;
    }
    if (d > max) {
        d = max;
    }
    /* a fleet answered at once does not come back at once */
    return now + d + acme_sched_scale(rnd, d / 20);
}

int
acme_ari_poll_due(const acme_cert_state_t *st, const char *id, long long now)
{
    if (id == NULL || id[0] == '\0') {
        return 0;
    }
    if (strcmp(st->ari_id, id) != 0) {
        return 1;
    }
    return st->ari_next_poll <= now;
}

/* st's ARI record becomes id's (another certificate: nothing known). */
static void
ari_for(acme_cert_state_t *st, const char *id)
{
    if (strcmp(st->ari_id, id) == 0) {
        return;
    }
    acme_ari_clear(st);
    snprintf(st->ari_id, sizeof(st->ari_id), "%s", id);
}

int
acme_ari_answered(acme_cert_state_t *st, const char *id, const char *body,
    size_t len, const char *retry_after, long long now, long long poll_min,
    uint32_t seed, char *err, size_t errlen)
{
    acme_ari_window_t  w;

    if (acme_ari_parse(body, len, &w, err, errlen) != 0) {
        acme_ari_failed(st, id, err, now, 0, poll_min, seed);
        return -1;
    }
    ari_for(st, id);

    /* the same window as before keeps its draw; a moved one (a CA
     * revoking en masse moves it earlier) gets a new one */
    if (st->ari_at == 0 || st->ari_start != w.start || st->ari_end != w.end) {
        st->ari_at = acme_ari_choose(w.start, w.end, now,
                                     acme_job_jitter(seed, w.start ^ w.end));
    }
    st->ari_start = w.start;
    st->ari_end = w.end;
    memcpy(st->ari_explanation, w.explanation, sizeof(st->ari_explanation));
    st->ari_failures = 0;
    st->ari_unsupported = 0;
    st->ari_error[0] = '\0';
    st->ari_last_poll = now;
    st->ari_next_poll = acme_ari_next_poll(retry_after, now, poll_min,
                                           acme_job_jitter(seed, now));
    return 0;
}

void
acme_ari_failed(acme_cert_state_t *st, const char *id, const char *msg,
    long long now, long long retry_after, long long poll_min, uint32_t seed)
{
    long long  t;

    if (poll_min <= 0) {
        poll_min = ACME_ARI_POLL_MIN;
    }
    ari_for(st, id);
    if (st->ari_failures < UINT_MAX) {
        st->ari_failures++;
    }
    snprintf(st->ari_error, sizeof(st->ari_error), "%s",
             msg && msg[0] ? msg : "unknown error");
    st->ari_last_poll = now;
    t = acme_sched_backoff_from(poll_min < ACME_ARI_POLL_MAX
                                ? poll_min : ACME_ARI_POLL_MAX,
                                st->ari_failures, now, 0,
                                acme_job_jitter(seed, now));
    if (t > now + ACME_ARI_POLL_MAX) {
        t = now + ACME_ARI_POLL_MAX;
    }
    if (retry_after > t) {
        t = retry_after < now + ACME_ARI_POLL_MAX
            ? retry_after : now + ACME_ARI_POLL_MAX;
    }
    st->ari_next_poll = t;
}

void
acme_ari_unsupported(acme_cert_state_t *st, const char *id, long long now)
{
    ari_for(st, id);
    st->ari_start = st->ari_end = st->ari_at = 0;
    st->ari_explanation[0] = '\0';
    st->ari_error[0] = '\0';
    st->ari_failures = 0;
    st->ari_unsupported = 1;
    st->ari_last_poll = now;
    st->ari_next_poll = now + ACME_ARI_POLL_MAX;
}

long long
acme_ari_renew_at(const acme_cert_state_t *st, const char *id)
{
    if (id == NULL || id[0] == '\0' || strcmp(st->ari_id, id) != 0) {
        return 0;
    }
    return st->ari_at;
}

void
acme_ari_clear(acme_cert_state_t *st)
{
    st->ari_id[0] = '\0';
    st->ari_start = st->ari_end = st->ari_at = 0;
    st->ari_next_poll = st->ari_last_poll = 0;
    st->ari_failures = 0;
    st->ari_unsupported = 0;
    st->ari_explanation[0] = '\0';
    st->ari_error[0] = '\0';
}

int
acme_ari_replaces_refused(const char *type, const char *detail)
{
    const char  *p;

    if (type != NULL) {
        p = strrchr(type, ':');
        p = p ? p + 1 : type;
        if (strcmp(p, "alreadyReplaced") == 0) {
            return 1;
        }
    }
    return detail != NULL && strstr(detail, "replaces") != NULL;
}

int
acme_ari_fetched(acme_cert_state_t *st, const char *id,
    const acme_engine_t *e, int done, long long now, long long poll_min,
    uint32_t seed, char *msg, size_t msglen)
{
    const char  *body, *ra;
    size_t       len;
    char         err[512], a[32], b[32], c[32];
    int          rc;

    rc = done ? acme_engine_ari(e, &body, &len, &ra) : -1;

    if (rc == 0) {
        acme_ari_unsupported(st, id, now);
        snprintf(msg, msglen, "the CA's directory has no renewalInfo (ARI)");
        return 7;
    }

    if (rc == 1) {
        if (acme_ari_answered(st, id, body, len, ra, now, poll_min, seed,
                              err, sizeof(err)) == 0)
        {
            snprintf(msg, msglen, "renewal window (ARI) %s to %s, renewal "
                     "at %s%s%s",
                     acme_time_rfc3339(st->ari_start, a, sizeof(a)),
                     acme_time_rfc3339(st->ari_end, b, sizeof(b)),
                     acme_time_rfc3339(st->ari_at, c, sizeof(c)),
                     st->ari_explanation[0] ? "; explanation: " : "",
                     st->ari_explanation);
            return 6;
        }
        snprintf(msg, msglen, "renewal information (ARI) unusable: %s; "
                 "asking again at %s, the lifetime rule decides until an "
                 "answer", err,
                 acme_time_rfc3339(st->ari_next_poll, a, sizeof(a)));
        return 4;
    }

    acme_ari_failed(st, id, done ? "no renewal information"
                                 : acme_engine_error(e),
                    now, done ? 0 : acme_engine_retry_after(e), poll_min,
                    seed);
    snprintf(msg, msglen, "renewal information (ARI) not fetched: %s; "
             "asking again at %s, the lifetime rule decides until an answer",
             st->ari_error,
             acme_time_rfc3339(st->ari_next_poll, a, sizeof(a)));
    return 4;
}
