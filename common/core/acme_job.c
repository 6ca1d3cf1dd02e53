/*
 * The renewal policy shared by both servers (see acme_job.h).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "acme_cert.h"
#include "acme_ari.h"
#include "acme_job.h"
#include "acme_util.h"

static const char *const job_types[] = { "http-01", "tls-alpn-01", "dns-01" };

/* the official nginx-acme module's unversioned names, same order */
static const char *const job_type_aliases[] = { "http", "tls-alpn", NULL };

/* -- jitter -------------------------------------------------------------- */

uint32_t
acme_job_seed(const char *id)
{
    uint32_t h = 2166136261u;

    while (id != NULL && *id) {
        h ^= (unsigned char) *id++;
        h *= 16777619u;
    }
    return h;
}

uint32_t
acme_job_jitter(uint32_t seed, long long salt)
{
    uint64_t x = ((uint64_t) seed << 32) ^ (uint64_t) salt;

    /* splitmix64's finaliser: every bit of seed and salt moves the result */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    return (uint32_t) (x >> 32);
}

/* -- when -------------------------------------------------------------- */

/* Another CA issued the stored certificate: neither the configured
 * issuer's directory nor one of its fallbacks' (acme_failover.h). */
static int
facts_issuer_changed(const acme_job_facts_t *f, const acme_cert_state_t *st)
{
    size_t  k;

    if (!acme_job_issuer_changed(st, f->directory)) {
        return 0;
    }
    for (k = 0; k < f->n_fallback_dirs; k++) {
        if (!acme_job_issuer_changed(st, f->fallback_dirs[k])) {
            return 0;
        }
    }
    return 1;
}

acme_job_reason_t
acme_job_due(const acme_job_facts_t *f, const acme_cert_state_t *st,
    long long *at)
{
    acme_job_reason_t why;
    long long         t, ari;

    if (f->have_cert && !f->loaded) {
        *at = 0;
        return ACME_JOB_LOADING;
    }

    if (f->forced) {
        /* asked for: neither the window nor the backoff holds it back */
        *at = 0;
        return ACME_JOB_FORCED;
    }

    if (!f->have_cert) {
        why = ACME_JOB_NO_CERT;
        t = 0;
    }
    else if (st != NULL && st->revoked) {
        why = ACME_JOB_REVOKED;
        t = 0;
    }
    else if (f->pending_not_after > 0) {
        /* our order's certificate, waiting: it is the one to renew */
        why = ACME_JOB_RENEW;
        t = acme_sched_renew_at(f->pending_not_before, f->pending_not_after,
                                f->renew_fraction,
                                acme_job_jitter(f->seed,
                                                f->pending_not_after));
    }
    else if (facts_issuer_changed(f, st)) {
        why = ACME_JOB_ISSUER_CHANGED;
        t = 0;
    }
    else if (f->key_changed) {
        why = ACME_JOB_KEY_CHANGED;
        t = 0;
    }
    else if (!f->names_ok) {
        why = ACME_JOB_NAMES_CHANGED;
        t = 0;
    }
    else {
        why = ACME_JOB_RENEW;
        t = acme_sched_renew_at(f->not_before, f->not_after,
                                f->renew_fraction,
                                acme_job_jitter(f->seed, f->not_after));
        ari = st != NULL ? acme_ari_renew_at(st, f->ari_id) : 0;
        if (ari > 0 && ari < f->not_after) {
            /* the CA's suggestion (RFC 9773) rules while it stands */
            why = ACME_JOB_ARI;
            t = ari;
        }
    }

    if (st != NULL && st->next_attempt > t) {
        t = st->next_attempt;
        why = ACME_JOB_BACKOFF;
    }
    *at = t;
    return why;
}

void
acme_job_facts_activate(acme_job_facts_t *f)
{
    if (f->pending_not_after == 0) {
        return;
    }
    f->have_cert = 1;
    f->loaded = 1;
    f->names_ok = 1;
    f->key_changed = 0;
    f->not_before = f->pending_not_before;
    f->not_after = f->pending_not_after;
    f->pending_not_before = 0;
    f->pending_not_after = 0;
}

int
acme_job_issuer_changed(const acme_cert_state_t *st, const char *directory)
{
    size_t  n;

    if (st == NULL || st->directory[0] == '\0' || directory == NULL
        || directory[0] == '\0')
    {
        return 0;
    }
    /* a URL longer than the record compares on what the record holds */
    n = sizeof(st->directory) - 1;
    return strncmp(st->directory, directory, n) != 0;
}

const char *
acme_job_change(const acme_job_facts_t *f, const acme_cert_state_t *st)
{
    if (!f->have_cert || !f->loaded || f->pending_not_after > 0) {
        return NULL;
    }
    if (facts_issuer_changed(f, st)) {
        return "issuer changed";
    }
    if (f->key_changed) {
        return "key type changed";
    }
    if (!f->names_ok) {
        return "names changed";
    }
    return NULL;
}

const char *
acme_job_reason_text(acme_job_reason_t why)
{
    switch (why) {
    case ACME_JOB_NO_CERT:
        return "no certificate yet";
    case ACME_JOB_NAMES_CHANGED:
        return "names changed: the configured names differ from the "
               "certificate's";
    case ACME_JOB_KEY_CHANGED:
        return "key type changed: the certificate's key is not of the "
               "configured type";
    case ACME_JOB_ISSUER_CHANGED:
        return "issuer changed: the certificate was issued by another ACME "
               "directory than the configured one";
    case ACME_JOB_RENEW:
        return "renewal is due";
    case ACME_JOB_BACKOFF:
        return "retry after a failed attempt";
    case ACME_JOB_LOADING:
        return "waiting until the new certificate is loaded";
    case ACME_JOB_FORCED:
        return "asked for at the status location (or the store's entry "
               "was deleted)";
    case ACME_JOB_REVOKED:
        return "the certificate was revoked: ordering its replacement";
    case ACME_JOB_ARI:
        return "the renewal time the CA's renewalInfo window suggests "
               "(ARI) is reached";
    }
    return "unknown";
}

/* -- when a new certificate is served -------------------------------- */

long long
acme_job_activate_at(long long not_before, int have_current,
    long long current_not_after, long long now, long long skew)
{
    long long at;

    if (skew < 0) {
        skew = ACME_JOB_CLOCK_SKEW;
    }
    at = not_before - skew;
    if (have_current && current_not_after < at) {
        /* the served one has expired by then: the new one is no worse */
        at = current_not_after;
    }
    if (!have_current || at <= now) {
        return 0;
    }
    return at;
}

const char *
acme_job_pending_text(const char *serial, long long not_before,
    long long now, long long at, char *buf, size_t len)
{
    char  nb[32], a[32];

    snprintf(buf, len, "the new certificate (serial %s) is not valid before "
             "%s (%lld s ahead of this server's clock); served from %s",
             serial && serial[0] ? serial : "unknown",
             acme_time_rfc3339(not_before, nb, sizeof(nb)), not_before - now,
             acme_time_rfc3339(at, a, sizeof(a)));
    return buf;
}

/* -- which challenge --------------------------------------------------- */

const char *
acme_job_challenge(const char *const *types, size_t n, unsigned failures)
{
    if (types == NULL || n == 0) {
        return job_types[0];
    }
    return types[failures % n];
}

const char *
acme_job_last_challenge(const char *const *types, size_t n,
    unsigned failures)
{
    return acme_job_challenge(types, n, failures ? failures - 1 : 0);
}

int
acme_job_challenges_has(const char *const *types, size_t n, const char *type)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(types[i], type) == 0) {
            return 1;
        }
    }
    return 0;
}

int
acme_job_challenges_parse(const char *list, const char **types, size_t *n,
    char *err, size_t errlen)
{
    const char *p = list, *end;
    size_t      len, i;

    if (list == NULL || *list == '\0') {
        return acme_err(err, errlen, "an empty challenge list");
    }
    while (*p) {
        end = strchr(p, ',');
        len = end ? (size_t) (end - p) : strlen(p);
        for (i = 0; i < sizeof(job_types) / sizeof(job_types[0]); i++) {
            if ((strlen(job_types[i]) == len
                 && strncasecmp(job_types[i], p, len) == 0)
                || (job_type_aliases[i] != NULL
                    && strlen(job_type_aliases[i]) == len
                    && strncasecmp(job_type_aliases[i], p, len) == 0))
            {
                break;
            }
        }
        if (i == sizeof(job_types) / sizeof(job_types[0])) {
            return acme_err(err, errlen, "unsupported challenge type \"%.*s\" "
                            "(http-01, tls-alpn-01 or dns-01)", (int) len, p);
        }
        if (acme_job_challenges_has(types, *n, job_types[i])) {
            return acme_err(err, errlen, "challenge type \"%s\" is listed "
                            "twice", job_types[i]);
        }
        if (*n >= ACME_JOB_CHALLENGES_MAX) {
            return acme_err(err, errlen, "at most %d challenge types",
                            ACME_JOB_CHALLENGES_MAX);
        }
        types[(*n)++] = job_types[i];
        if (end == NULL) {
            break;
        }
        p = end + 1;
        if (*p == '\0') {
            return acme_err(err, errlen, "an empty challenge type");
        }
    }
    return 0;
}

int
acme_job_alpn_conflict(const char *type, const char *const *names,
    size_t n_names, const char *other_type, const char *const *other_names,
    size_t other_n)
{
    size_t a, b;

    if (type == NULL || other_type == NULL
        || strcmp(type, "tls-alpn-01") != 0
        || strcmp(other_type, "tls-alpn-01") != 0)
    {
        return 0;
    }
    for (a = 0; a < n_names; a++) {
        for (b = 0; b < other_n; b++) {
            if (strcasecmp(names[a], other_names[b]) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

/* -- what an attempt changes ------------------------------------------ */

long long
acme_job_backoff(unsigned failures, long long now, long long retry_after,
    long long retry_delay, uint32_t seed)
{
    if (retry_delay <= 0) {
        retry_delay = ACME_JOB_RETRY_DELAY;
    }
    return acme_sched_backoff_from(retry_delay, failures, now, retry_after,
                                   acme_job_jitter(seed, now));
}

void
acme_job_failed(acme_cert_state_t *st, const char *type, const char *msg,
    long long now, long long retry_after, long long retry_delay,
    uint32_t seed)
{
    size_t  tl = type ? strlen(type) : 0, room;
    char    wait[80], t[32];
    int     n;

    if (msg == NULL || *msg == '\0') {
        msg = "unknown error";
    }
    acme_sched_attempt_end(st);

    /* the CA's Retry-After (rateLimited, a 503) is said, not only obeyed:
     * it is why the next attempt is that late */
    wait[0] = '\0';
    if (retry_after > now) {
        snprintf(wait, sizeof(wait), "; the CA asks to wait until %s",
                 acme_time_rfc3339(retry_after, t, sizeof(t)));
    }
    room = sizeof(st->last_error) - strlen(wait);

    /* the type that failed leads the message: with a challenge list the
     * next attempt uses the next type */
    if (tl == 0 || strncmp(msg, type, tl) == 0) {
        n = snprintf(st->last_error, room, "%s", msg);
    }
    else {
        n = snprintf(st->last_error, room, "%s: %s", type, msg);
    }
    if (n >= (int) room && room > 4) {
        /* cut: the end is the CA's long detail (acme_problem_text puts
         * the refused names first) */
        memcpy(st->last_error + room - 4, "...", 4);
    }
    strcat(st->last_error, wait);
    if (st->failures < UINT_MAX) {
        st->failures++;
    }
    st->last_attempt = now;
    st->next_attempt = acme_job_backoff(st->failures, now, retry_after,
                                        retry_delay, seed);
}

void
acme_job_succeeded(acme_cert_state_t *st, long long now,
    const char *directory, const char *issuer)
{
    acme_sched_attempt_end(st);
    st->issuer[0] = '\0';
    if (issuer != NULL) {
        snprintf(st->issuer, sizeof(st->issuer), "%s", issuer);
    }
    st->directory[0] = '\0';
    if (directory != NULL) {
        snprintf(st->directory, sizeof(st->directory), "%s", directory);
    }
    st->failures = 0;
    st->next_attempt = 0;
    st->last_attempt = now;
    st->last_success = now;
    st->last_error[0] = '\0';
    st->revoked = 0;
}

void
acme_job_revoked(acme_cert_state_t *st, acme_job_status_t *rec,
    long long now)
{
    st->revoked = now;
    if (rec != NULL) {
        rec->revoked = 1;
    }
}

int
acme_job_unfinished(acme_cert_state_t *st, const char *const *types,
    size_t n_types, long long now, int owner_alive, long long retry_delay,
    uint32_t seed)
{
    char msg[sizeof(st->last_error) + 32];

    if (!acme_sched_attempt_unfinished(st, now, owner_alive,
                                       acme_job_jitter(seed, now)))
    {
        return 0;
    }
    st->next_attempt = acme_job_backoff(st->failures, now, 0, retry_delay,
                                        seed);
    /* the type of the attempt that died leads, as for other failures */
    snprintf(msg, sizeof(msg), "%s: %s",
             acme_job_last_challenge(types, n_types, st->failures),
             st->last_error);
    snprintf(st->last_error, sizeof(st->last_error), "%.*s",
             (int) sizeof(st->last_error) - 1, msg);
    return 1;
}

/* -- the status record ------------------------------------------------ */

static void
cpy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

void
acme_job_status_set_cert(acme_job_status_t *rec, long long not_before,
    long long not_after, const char *serial, const char *ca_issuer,
    const char *spki_pin)
{
    rec->have_cert = 1;
    rec->not_before = not_before;
    rec->not_after = not_after;
    cpy(rec->serial, sizeof(rec->serial), serial);
    cpy(rec->ca_issuer, sizeof(rec->ca_issuer), ca_issuer);
    cpy(rec->spki_pin, sizeof(rec->spki_pin), spki_pin);
    /* a certificate served now replaces any that waited */
    rec->pending_at = 0;
}

void
acme_job_status_set_next_pin(acme_job_status_t *rec, const char *pin)
{
    cpy(rec->next_spki_pin, sizeof(rec->next_spki_pin), pin);
}

void
acme_job_status_set_pending(acme_job_status_t *rec, long long at,
    long long not_before, long long not_after, const char *serial,
    const char *ca_issuer, const char *spki_pin)
{
    rec->pending_at = at;
    rec->pending_not_before = at ? not_before : 0;
    rec->pending_not_after = at ? not_after : 0;
    cpy(rec->pending_serial, sizeof(rec->pending_serial), at ? serial : "");
    cpy(rec->pending_ca_issuer, sizeof(rec->pending_ca_issuer),
        at ? ca_issuer : "");
    cpy(rec->pending_spki_pin, sizeof(rec->pending_spki_pin),
        at ? spki_pin : "");
}

void
acme_job_status_activate(acme_job_status_t *rec)
{
    char  serial[sizeof(rec->pending_serial)];
    char  ca[sizeof(rec->pending_ca_issuer)];
    char  pin[sizeof(rec->pending_spki_pin)];

    if (rec->pending_at == 0) {
        return;
    }
    memcpy(serial, rec->pending_serial, sizeof(serial));
    memcpy(ca, rec->pending_ca_issuer, sizeof(ca));
    memcpy(pin, rec->pending_spki_pin, sizeof(pin));
    acme_job_status_set_cert(rec, rec->pending_not_before,
                             rec->pending_not_after, serial, ca, pin);
    acme_job_status_set_pending(rec, 0, 0, 0, NULL, NULL, NULL);
}

void
acme_job_status_set_reason(acme_job_status_t *rec, const char *reason)
{
    cpy(rec->reason, sizeof(rec->reason), reason != NULL ? reason : "");
}

void
acme_job_status_fleet(acme_job_status_t *rec, const char *action,
    const char *holder)
{
    cpy(rec->fleet_action, sizeof(rec->fleet_action),
        action != NULL ? action : "");
    cpy(rec->fleet_holder, sizeof(rec->fleet_holder),
        holder != NULL ? holder : "");
}

void
acme_job_status_begin(acme_job_status_t *rec, const char *type,
    const char *step)
{
    rec->renewing = 1;
    cpy(rec->step, sizeof(rec->step), step);
    if (type != NULL) {
        cpy(rec->challenge, sizeof(rec->challenge), type);
    }
}

void
acme_job_status_end(acme_job_status_t *rec, const acme_cert_state_t *st,
    long long next_renewal)
{
    rec->renewing = 0;
    rec->step[0] = '\0';
    rec->failures = st->failures;
    rec->last_success = st->last_success;
    cpy(rec->last_error, sizeof(rec->last_error), st->last_error);
    rec->next_renewal = next_renewal;
    rec->revoked = st->revoked != 0;
    cpy(rec->issued_by, sizeof(rec->issued_by), st->issuer);
}

void
acme_job_status_ordered(acme_job_status_t *rec, int valid, int replaced)
{
    if (!valid) {
        rec->orders.invalid++;
        return;
    }
    rec->orders.valid++;
    if (replaced) {
        rec->orders.renewals++;
    }
}

void
acme_job_status_view(const acme_job_status_t *rec, long long now,
    const char *const *types, size_t n_types, acme_status_cert_t *out)
{
    if (!rec->have_cert) {
        out->state = rec->failures ? "failed" : "fallback";
    }
    else if (rec->not_after <= now) {
        out->state = "expired";
    }
    else {
        out->state = "valid";
    }
    if (rec->renewing) {
        out->state = "renewing";
    }
    if (rec->revoked && rec->have_cert) {
        out->state = "revoked";
    }
    out->step = rec->renewing && rec->step[0] ? rec->step : NULL;
    out->challenge = rec->challenge[0] ? rec->challenge
                     : acme_job_last_challenge(types, n_types, rec->failures);
    out->serial = rec->have_cert ? rec->serial : NULL;
    out->ca_issuer = rec->have_cert ? rec->ca_issuer : NULL;
    out->not_before = rec->have_cert ? rec->not_before : 0;
    out->not_after = rec->have_cert ? rec->not_after : 0;
    out->next_renewal = rec->next_renewal;
    out->last_success = rec->last_success;
    out->last_error = rec->last_error;
    out->failures = rec->failures;
    out->store_error = rec->store_error;
    out->reason = rec->reason[0] ? rec->reason : NULL;
    out->pending_at = rec->pending_at;
    out->pending_not_before = rec->pending_not_before;
    out->pending_not_after = rec->pending_not_after;
    out->pending_serial = rec->pending_serial;
    out->orders_valid = rec->orders.valid;
    out->orders_invalid = rec->orders.invalid;
    out->renewals = rec->orders.renewals;
    out->spki_pin = rec->have_cert && rec->spki_pin[0] ? rec->spki_pin : NULL;
    out->next_spki_pin = rec->next_spki_pin[0] ? rec->next_spki_pin : NULL;
    out->fleet_action = rec->fleet_action[0] ? rec->fleet_action : NULL;
    out->fleet_holder = rec->fleet_holder[0] ? rec->fleet_holder : NULL;
    out->ari_start = rec->ari_start;
    out->ari_end = rec->ari_end;
    out->ari_at = rec->ari_at;
    out->ari_next_poll = rec->ari_next_poll;
    out->ari_unsupported = rec->ari_unsupported;
    out->ari_explanation = rec->ari_explanation;
    out->ari_error = rec->ari_error;
}

void
acme_job_status_ari(acme_job_status_t *rec, const acme_cert_state_t *st,
    const char *id)
{
    if (id == NULL || id[0] == '\0' || strcmp(st->ari_id, id) != 0) {
        rec->ari_start = rec->ari_end = rec->ari_at = 0;
        rec->ari_next_poll = 0;
        rec->ari_unsupported = 0;
        rec->ari_explanation[0] = '\0';
        rec->ari_error[0] = '\0';
        return;
    }
    rec->ari_start = st->ari_start;
    rec->ari_end = st->ari_end;
    rec->ari_at = st->ari_at;
    rec->ari_next_poll = st->ari_next_poll;
    rec->ari_unsupported = st->ari_unsupported;
    cpy(rec->ari_explanation, sizeof(rec->ari_explanation),
        st->ari_explanation);
    cpy(rec->ari_error, sizeof(rec->ari_error), st->ari_error);
}

/* -- the bridge ---------------------------------------------------------- */

int
acme_job_bridge_from_pem(acme_job_bridge_t *b, const char *file,
    const char *pem, size_t len, char *err, size_t errlen)
{
    acme_cert_info_t info;

    memset(b, 0, sizeof(*b));
    cpy(b->file, sizeof(b->file), file ? file : "");
    memset(&info, 0, sizeof(info));
    if (acme_cert_info_from_pem(pem, len, &info, err, errlen) != 0) {
        return -1;
    }
    cpy(b->serial, sizeof(b->serial), info.serial);
    b->not_before = info.not_before;
    b->not_after = info.not_after;
    acme_cert_info_free(&info);
    return 0;
}

void
acme_job_status_bridge(const acme_job_status_t *rec,
    const acme_job_bridge_t *b, acme_status_cert_t *out)
{
    out->bridge_file = NULL;
    out->bridge_serial = NULL;
    out->bridge_not_before = 0;
    out->bridge_not_after = 0;
    if (b == NULL || b->file[0] == '\0' || rec->have_cert) {
        return;
    }
    out->bridge_file = b->file;
    out->bridge_serial = b->serial;
    out->bridge_not_before = b->not_before;
    out->bridge_not_after = b->not_after;
}

const char *
acme_job_bridge_retired_text(const acme_job_bridge_t *b, const char *serial,
    char *buf, size_t len)
{
    snprintf(buf, len, "the managed certificate (serial %s) is served now; "
             "the bridge certificate \"%s\" (serial %s) is no longer used "
             "and can be removed from the configuration",
             serial && serial[0] ? serial : "unknown",
             b && b->file[0] ? b->file : "?",
             b && b->serial[0] ? b->serial : "unknown");
    return buf;
}

/* -- an order's end in the store ---------------------------------------- */

static void
unsaved_error(acme_job_status_t *rec, int stored, const char *err)
{
    snprintf(rec->store_error, sizeof(rec->store_error), "%s: %s",
             stored == ACME_JOB_BUNDLE_UNSAVED
             ? "issued certificate not stored, served from memory only"
             : "renewal state not stored, kept in memory",
             err ? err : "unknown error");
}

int
acme_job_issued_saved(int stored, const char *err, const char *root,
    const char *id, long long now, unsigned *tries, long long *at,
    acme_job_status_t *rec, char *msg, size_t msglen)
{
    msg[0] = '\0';
    if (stored == ACME_JOB_STORED) {
        /* whatever was wrong with the store is not any more */
        *tries = 0;
        *at = 0;
        rec->store_error[0] = '\0';
        return ACME_JOB_LOG_NOTICE;
    }
    *tries = 1;
    *at = acme_sched_unsaved_retry(1, now);
    unsaved_error(rec, stored, err);
    if (stored == ACME_JOB_BUNDLE_UNSAVED) {
        snprintf(msg, msglen, "issued, but cannot store it in %s/certs/%s: "
                 "%s; served from memory only, the write is retried", root,
                 id, err ? err : "unknown error");
        return ACME_JOB_LOG_ERR;
    }
    snprintf(msg, msglen, "cannot store the renewal state: %s; kept in "
             "memory, the write is retried", err ? err : "unknown error");
    return ACME_JOB_LOG_WARN;
}

int
acme_job_resaved(int rc, const char *err, const char *root, const char *id,
    long long now, unsigned *tries, long long *at, acme_job_status_t *rec,
    char *msg, size_t msglen)
{
    char  t[32];

    if (rc == 0) {
        *tries = 0;
        *at = 0;
        rec->store_error[0] = '\0';
        snprintf(msg, msglen, "the certificate served from memory is stored "
                 "now in %s/certs/%s", root, id);
        return ACME_JOB_LOG_NOTICE;
    }
    (*tries)++;
    *at = acme_sched_unsaved_retry(*tries, now);
    unsaved_error(rec, ACME_JOB_BUNDLE_UNSAVED, err);
    snprintf(msg, msglen, "still cannot store the issued certificate in "
             "%s/certs/%s: %s; served from memory only, next write at %s",
             root, id, err ? err : "unknown error",
             acme_time_rfc3339(*at, t, sizeof(t)));
    return ACME_JOB_LOG_WARN;
}

const char *
acme_job_failure_text(const acme_cert_state_t *st, char *buf, size_t len)
{
    char  t[32];

    snprintf(buf, len, "%s; %u consecutive failure(s), next attempt at %s",
             st->last_error, st->failures,
             acme_time_rfc3339(st->next_attempt, t, sizeof(t)));
    return buf;
}

/* -- how many at once ------------------------------------------------------ */

/* 0 no certificate, 1 expired, 2 valid; then the earlier not_after. */
static int
pipe_before(const acme_job_pipe_t *a, const acme_job_pipe_t *b,
    long long now)
{
    int ra, rb;

    ra = !a->have_cert ? 0 : a->not_after <= now ? 1 : 2;
    rb = !b->have_cert ? 0 : b->not_after <= now ? 1 : 2;
    if (ra != rb) {
        return ra < rb;
    }
    return ra == 2 && a->not_after < b->not_after;
}

size_t
acme_job_pipeline(acme_job_pipe_t *c, size_t n, long long now)
{
    size_t   i, k, best, started = 0;
    unsigned busy, cap;

    for (i = 0; i < n; i++) {
        c[i].start = 0;
    }
    for ( ;; ) {
        best = n;
        for (i = 0; i < n; i++) {
            if (!c[i].due || c[i].running || c[i].start) {
                continue;
            }
            if (best == n || pipe_before(&c[i], &c[best], now)) {
                best = i;
            }
        }
        if (best == n) {
            return started;
        }
        cap = c[best].max_orders ? c[best].max_orders : ACME_JOB_MAX_ORDERS;
        busy = 0;
        for (k = 0; k < n; k++) {
            if (c[k].issuer == c[best].issuer && (c[k].running || c[k].start)) {
                busy++;
            }
        }
        if (busy < cap && c[best].issuer_pause <= now) {
            c[best].start = 1;
            started++;
        } else {
            /* that issuer is full or paused: none of its certificates
             * starts */
            for (k = 0; k < n; k++) {
                if (c[k].issuer == c[best].issuer) {
                    c[k].due = 0;
                }
            }
        }
    }
}

long long
acme_job_issuer_pause(long long pause, long long retry_after, long long now)
{
    return retry_after > now && retry_after > pause ? retry_after : pause;
}
