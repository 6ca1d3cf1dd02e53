/*
 * The view of a status request (acme_status_view.h): which one, its
 * Content-Type, the counts and the order the HTML view and Apache's
 * mod_status lines share.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme_status_view.h"
#include "acme_util.h"

/* -- which view ------------------------------------------------------------ */

static int
format_name(const char *v, size_t len)
{
    static const struct {
        const char  *name;
        int          format;
    } names[] = {
        { "json", ACME_STATUS_JSON },
        { "prometheus", ACME_STATUS_PROMETHEUS },
        { "metrics", ACME_STATUS_PROMETHEUS },
        { "openmetrics", ACME_STATUS_PROMETHEUS },
        { "html", ACME_STATUS_HTML },
    };
    size_t  i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == len
            && strncasecmp(v, names[i].name, len) == 0)
        {
            return names[i].format;
        }
    }
    return -1;
}

/* The view a media type asks for, -1: none of ours. */
static int
media_format(const char *t, size_t len)
{
    static const struct {
        const char  *type;
        int          format;
    } types[] = {
        { "text/html", ACME_STATUS_HTML },
        { "application/xhtml+xml", ACME_STATUS_HTML },
        { "text/plain", ACME_STATUS_PROMETHEUS },
        { "application/openmetrics-text", ACME_STATUS_PROMETHEUS },
        { "application/json", ACME_STATUS_JSON },
    };
    size_t  i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i].type) == len
            && strncasecmp(t, types[i].type, len) == 0)
        {
            return types[i].format;
        }
    }
    return -1;
}

static int
is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* q=0.5 in thousandths (1000 without one; a malformed one counts as 0) */
static int
media_q(const char *p, const char *end)
{
    int  q, scale;

    while (p < end) {
        /* p at ';' */
        p++;
        while (p < end && is_space(*p)) {
            p++;
        }
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            p += 2;
            if (p < end && *p == '1') {
                return 1000;
            }
            if (p >= end || *p != '0') {
                return 0;
            }
            p++;
            q = 0;
            scale = 100;
            if (p < end && *p == '.') {
                for (p++; p < end && *p >= '0' && *p <= '9' && scale > 0;
                     p++, scale /= 10)
                {
                    q += (*p - '0') * scale;
                }
            }
            return q;
        }
        while (p < end && *p != ';') {
            p++;
        }
    }
    return 1000;
}

static int
accept_format(const char *accept)
{
    const char  *p, *end, *t, *te;
    int          best = -1, best_q = 0, f, q;

    for (p = accept; *p; p = *end ? end + 1 : end) {
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }
        for (t = p; t < end && is_space(*t); t++) { }
        for (te = t; te < end && *te != ';' && !is_space(*te); te++) { }
        f = media_format(t, (size_t) (te - t));
        if (f < 0) {
            continue;
        }
        while (te < end && *te != ';') {
            te++;
        }
        q = media_q(te, end);
        if (q > best_q) {
            best = f;
            best_q = q;
        }
    }
    return best;
}

int
acme_status_format(const char *args, size_t args_len, const char *accept)
{
    char  v[32];
    int   f;

    f = acme_query_arg(args, args_len, "format", v, sizeof(v));
    if (f != 0) {
        /* too long or badly encoded: no format's name either */
        return f < 0 ? -1 : format_name(v, strlen(v));
    }
    if (accept != NULL) {
        f = accept_format(accept);
        if (f >= 0) {
            return f;
        }
    }
    return ACME_STATUS_JSON;
}

const char *
acme_status_content_type(int format)
{
    switch (format) {
    case ACME_STATUS_PROMETHEUS:
        return "text/plain; version=0.0.4; charset=utf-8";
    case ACME_STATUS_HTML:
        return "text/html; charset=utf-8";
    default:
        return "application/json";
    }
}

char *
acme_status_render_as(int format, const char *server, long acme_pid,
    const acme_status_cert_t *certs, size_t n, long long now, size_t *len)
{
    return acme_status_render_as_store(format, server, acme_pid, NULL, certs,
                                       n, now, len);
}

char *
acme_status_render_as_store(int format, const char *server, long acme_pid,
    const char *store_json, const acme_status_cert_t *certs, size_t n,
    long long now, size_t *len)
{
    switch (format) {
    case ACME_STATUS_PROMETHEUS:
        return acme_status_prometheus_store(certs, n, now, store_json, len);
    case ACME_STATUS_HTML:
        return acme_status_html_store(server, acme_pid, store_json, certs,
                                      n, now, len);
    default:
        return acme_status_render_store(server, acme_pid, store_json, certs,
                                        n, now, len);
    }
}

/* -- counts and order ------------------------------------------------------ */

long long
acme_status_days_left(long long not_after, long long now)
{
    long long  d = acme_sub_sat(not_after, now);

    /* floor: (d + 1) / 86400 - 1 for negative d, never negating LLONG_MIN */
    return (d >= 0) ? d / 86400 : (d + 1) / 86400 - 1;
}

static int
state_is(const acme_status_cert_t *c, const char *state)
{
    return c->state != NULL && strcmp(c->state, state) == 0;
}

static int
expiring(const acme_status_cert_t *c, long long now)
{
    return acme_status_expiring(c->not_before, c->not_after, c->warn_window,
                                now);
}

static int
failing(const acme_status_cert_t *c)
{
    return !c->unmanaged && (c->failures > 0 || state_is(c, "failed"));
}

void
acme_status_count(const acme_status_cert_t *certs, size_t n, long long now,
    acme_status_counts_t *out)
{
    size_t                     i;
    const acme_status_cert_t  *c;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < n; i++) {
        c = &certs[i];
        out->total++;
        if (c->not_after > now && !expiring(c, now)) {
            out->valid++;
        }
        if (expiring(c, now)) {
            out->expiring++;
        }
        if (failing(c)) {
            out->failing++;
        }
        if (c->unmanaged) {
            out->unmanaged++;
        }
    }
}

int
acme_status_rank(const acme_status_cert_t *c, long long now)
{
    if ((c->not_after != 0 && c->not_after <= now)
        || state_is(c, "expired") || state_is(c, "revoked"))
    {
        return 0;
    }
    if (failing(c)) {
        return 1;
    }
    if (c->not_after == 0) {
        return 2;               /* the placeholder is served */
    }
    if (expiring(c, now)) {
        return 3;
    }
    if (state_is(c, "renewing")) {
        return 4;
    }
    return 5;
}

typedef struct {
    const acme_status_cert_t  *c;
    size_t                     i;
    int                        rank;
} order_t;

static int
order_cmp(const void *a, const void *b)
{
    const order_t  *x = a, *y = b;
    int             r;

    if (x->rank != y->rank) {
        return x->rank - y->rank;
    }
    if (x->c->not_after != y->c->not_after) {
        /* none (0) after any */
        if (x->c->not_after == 0 || y->c->not_after == 0) {
            return x->c->not_after == 0 ? 1 : -1;
        }
        return x->c->not_after < y->c->not_after ? -1 : 1;
    }
    r = strcmp(x->c->id ? x->c->id : "", y->c->id ? y->c->id : "");
    if (r != 0) {
        return r;
    }
    return x->i < y->i ? -1 : (x->i > y->i);
}

void
acme_status_order(const acme_status_cert_t *certs, size_t n, long long now,
    size_t *idx)
{
    order_t  *o;
    size_t    i;

    for (i = 0; i < n; i++) {
        idx[i] = i;
    }
    o = calloc(n ? n : 1, sizeof(order_t));
    if (o == NULL) {
        return;                 /* out of memory: as listed */
    }
    for (i = 0; i < n; i++) {
        o[i].c = &certs[i];
        o[i].i = i;
        o[i].rank = acme_status_rank(&certs[i], now);
    }
    qsort(o, n, sizeof(order_t), order_cmp);
    for (i = 0; i < n; i++) {
        idx[i] = o[i].i;
    }
    free(o);
}
