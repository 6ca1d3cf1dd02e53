/*
 * The issuer block's rules, once for both servers (acme_issuer.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "acme_dns_conf.h"
#include "acme_eab.h"
#include "acme_http.h"
#include "acme_ari.h"
#include "acme_issuer.h"
#include "acme_job.h"
#include "acme_key.h"
#include "acme_util.h"

void
acme_issuer_init(acme_issuer_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->account_key = -1;
}

void
acme_issuer_events_inherit(acme_issuer_conf_t *c, const char *prog,
    int timeout_ms, long long expiry_warning)
{
    if (c->event_command == NULL) {
        c->event_command = prog;
        c->event_timeout_ms = timeout_ms;
    }
    if (c->expiry_warning <= 0) {
        c->expiry_warning = expiry_warning > 0 ? expiry_warning : 0;
    }
}

static void
problem(acme_issuer_problem_t *out, size_t max, size_t *n, int warning,
    acme_issuer_at_t at, const char *fmt, ...)
{
    va_list ap;

    if (*n < max) {
        out[*n].warning = warning;
        out[*n].at = at;
        va_start(ap, fmt);
        vsnprintf(out[*n].text, sizeof(out[*n].text), fmt, ap);
        va_end(ap);
    }
    (*n)++;
}

size_t
acme_issuer_check(acme_issuer_conf_t *c, const char *const *words,
    acme_issuer_problem_t *out, size_t max)
{
    size_t i, n = 0;
    int    dns01 = 0, len, update, hook;

    if (c->directory == NULL || c->directory[0] == '\0') {
        problem(out, max, &n, 0, ACME_ISSUER_AT_BLOCK, "has no %s",
                words[ACME_ISSUER_AT_DIRECTORY]);
    }

    if (c->account_key < 0) {
        c->account_key = ACME_KEY_DEFAULT;
    }
    /* unset: 0, the lifetime rule of acme_sched_renew_at (a third, a half
     * for short-lived certificates) */
    if (c->renew_percent < 0) {
        c->renew_percent = 0;
    }
    if (c->timeout_ms <= 0) {
        c->timeout_ms = ACME_ISSUER_TIMEOUT_MS;
    }
    if (c->retry_delay <= 0) {
        c->retry_delay = ACME_JOB_RETRY_DELAY;
    }
    if (c->max_orders <= 0) {
        c->max_orders = ACME_JOB_MAX_ORDERS;
    }
    if (c->ari_poll <= 0) {
        c->ari_poll = ACME_ARI_POLL_MIN;
    }
    if (c->clock_skew <= 0) {
        c->clock_skew = ACME_JOB_CLOCK_SKEW;
    }
    if (c->n_challenges == 0) {
        c->challenges[0] = "http-01";
        c->n_challenges = 1;
    }

    for (i = 0; i < c->n_challenges; i++) {
        if (strcmp(c->challenges[i], "dns-01") == 0) {
            dns01 = 1;
        }
    }
    update = c->dns.update.host[0] != '\0';
    hook = c->dns.hook != NULL;
    if (dns01 && !update && !hook) {
        problem(out, max, &n, 0, ACME_ISSUER_AT_CHALLENGE,
                "uses %s dns-01 but has neither %s nor %s to publish the "
                "TXT records", words[ACME_ISSUER_AT_CHALLENGE],
                words[ACME_ISSUER_AT_DNS_UPDATE],
                words[ACME_ISSUER_AT_DNS_HOOK]);
    }
    if (update && hook) {
        problem(out, max, &n, 0, ACME_ISSUER_AT_BLOCK,
                "has both %s and %s, which exclude each other",
                words[ACME_ISSUER_AT_DNS_UPDATE],
                words[ACME_ISSUER_AT_DNS_HOOK]);
    }

    if (c->no_store) {
        c->state_dir = NULL;
    }
    else if (c->state_dir == NULL) {
        len = snprintf(c->state_default, sizeof(c->state_default), "%s%s",
                       c->state_root ? c->state_root : "",
                       c->name ? c->name : "");
        if (len < 0 || (size_t) len >= sizeof(c->state_default)) {
            c->state_default[0] = '\0';
            problem(out, max, &n, 0, ACME_ISSUER_AT_BLOCK,
                    "has a name too long for the default %s",
                    words[ACME_ISSUER_AT_STATE_DIR]);
        }
        c->state_dir = c->state_default;
    }

    return n;
}

int
acme_issuer_state_shared(const acme_issuer_conf_t *a,
    const acme_issuer_conf_t *b)
{
    size_t la, lb;

    if (a->state_dir == NULL || b->state_dir == NULL) {
        return 0;
    }
    la = strlen(a->state_dir);
    lb = strlen(b->state_dir);
    while (la > 1 && a->state_dir[la - 1] == '/') {
        la--;
    }
    while (lb > 1 && b->state_dir[lb - 1] == '/') {
        lb--;
    }
    return la == lb && memcmp(a->state_dir, b->state_dir, la) == 0;
}

void
acme_issuer_conf_clear(acme_issuer_conf_t *c)
{
    acme_dns_conf_clear(&c->dns);
    acme_eab_conf_clear(&c->eab);
}

int
acme_issuer_has_error(const acme_issuer_problem_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!p[i].warning) {
            return 1;
        }
    }
    return 0;
}

int
acme_issuer_profile_name(const char *name, char *err, size_t errlen)
{
    const unsigned char  *p;

    if (name == NULL || name[0] == '\0') {
        acme_err(err, errlen, "takes the name of a profile, not an empty "
                 "one");
        return -1;
    }
    for (p = (const unsigned char *) name; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            acme_err(err, errlen, "the profile name \"%s\" has a character "
                     "other than printable ASCII (no space, no quote)", name);
            return -1;
        }
    }
    return 0;
}


int
acme_issuer_directory(const char *url, char *err, size_t errlen)
{
    acme_url_t u;
    int        https;

    if (acme_url_parse(url, &u, err, errlen) != 0) {
        return -1;
    }
    https = u.https;
    acme_url_free(&u);
    if (!https) {
        acme_err(err, errlen, "is plain HTTP: RFC 8555 (section 6.1) "
                 "requires HTTPS, nothing the CA answers is authenticated");
        return 1;
    }
    return 0;
}

long
acme_issuer_contact(const char *value, size_t len, char *buf, size_t size,
    char *err, size_t errlen)
{
    const char *prefix;
    size_t      plen;

    if (len == 0) {
        acme_err(err, errlen, "an empty contact");
        return -1;
    }
    prefix = memchr(value, ':', len) ? "" : "mailto:";
    plen = strlen(prefix);
    if (plen + len + 1 > size) {
        acme_err(err, errlen, "the contact is too long");
        return -1;
    }
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, value, len);
    buf[plen + len] = '\0';
    return (long) (plen + len);
}

int
acme_issuer_renew_percent(const char *arg, size_t len)
{
    size_t i;
    int    n = 0;

    if (len < 2 || len > 3 || arg[len - 1] != '%') {
        return -1;
    }
    for (i = 0; i + 1 < len; i++) {
        if (arg[i] < '0' || arg[i] > '9') {
            return -1;
        }
        n = n * 10 + (arg[i] - '0');
    }
    return n >= 1 && n <= 99 ? n : -1;
}
