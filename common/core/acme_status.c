/*
 * Renders the status document (schema in acme_status.h).  Keys are added in
 * the documented order; jansson keeps insertion order, so the output is
 * stable and diffable.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acme_status.h"
#include "acme_status_view.h"
#include "acme_util.h"

/* A string, or null for NULL (and for "" when empty_is_null). */
static json_t *
str_or_null(const char *s, int empty_is_null)
{
    json_t *j;

    if (s == NULL || (empty_is_null && *s == '\0')) {
        return json_null();
    }

    /* jansson refuses invalid UTF-8; never lose the whole document over
     * one odd byte in an error text */
    j = json_string(s);
    return j ? j : json_string("(not valid UTF-8)");
}

static json_t *
time_or_null(long long t)
{
    char buf[40];

    if (t == 0) {
        return json_null();
    }
    return json_string(acme_time_rfc3339(t, buf, sizeof(buf)));
}

/* json_object_set_new that reports failure (out of memory) as -1. */
static int
set(json_t *o, const char *key, json_t *v)
{
    return v == NULL ? -1 : json_object_set_new(o, key, v);
}

static json_t *
render_pending(const acme_status_cert_t *c)
{
    json_t  *p;
    int      rc = 0;

    p = json_object();
    if (p == NULL) {
        return NULL;
    }
    rc |= set(p, "serial", str_or_null(c->pending_serial, 1));
    rc |= set(p, "not_before", time_or_null(c->pending_not_before));
    rc |= set(p, "not_after", time_or_null(c->pending_not_after));
    rc |= set(p, "activate_at", time_or_null(c->pending_at));
    if (rc != 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static json_t *
render_ari(const acme_status_cert_t *c)
{
    json_t  *a;
    int      rc = 0;

    a = json_object();
    if (a == NULL) {
        return NULL;
    }
    rc |= set(a, "supported", json_boolean(!c->ari_unsupported));
    rc |= set(a, "window_start", time_or_null(c->ari_start));
    rc |= set(a, "window_end", time_or_null(c->ari_end));
    rc |= set(a, "renew_at", time_or_null(c->ari_at));
    rc |= set(a, "next_poll", time_or_null(c->ari_next_poll));
    rc |= set(a, "explanation_url", str_or_null(c->ari_explanation, 1));
    rc |= set(a, "error", str_or_null(c->ari_error, 1));
    if (rc != 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *
render_bridge(const acme_status_cert_t *c)
{
    json_t  *b;
    int      rc = 0;

    b = json_object();
    if (b == NULL) {
        return NULL;
    }
    rc |= set(b, "file", str_or_null(c->bridge_file, 0));
    rc |= set(b, "serial", str_or_null(c->bridge_serial, 1));
    rc |= set(b, "not_before", time_or_null(c->bridge_not_before));
    rc |= set(b, "not_after", time_or_null(c->bridge_not_after));
    if (rc != 0) {
        json_decref(b);
        return NULL;
    }
    return b;
}

int
acme_status_expiring(long long not_before, long long not_after,
    long long warn_window, long long now)
{
    long long  window;

    if (not_after == 0) {
        return 0;
    }
    window = warn_window;
    if (window <= 0) {
        window = (not_after > not_before)
                 ? acme_sub_sat(not_after, not_before) / 10 : 0;
    }
    return now >= acme_sub_sat(not_after, window);
}

static json_t *
str_array(const char *const *v, size_t n)
{
    json_t  *a;
    size_t   i;

    a = json_array();
    if (a == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (v[i] != NULL
            && json_array_append_new(a, str_or_null(v[i], 0)) != 0)
        {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *
render_orders(const acme_status_cert_t *c)
{
    json_t  *o;
    int      rc = 0;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }
    rc |= set(o, "valid", json_integer((json_int_t) c->orders_valid));
    rc |= set(o, "invalid", json_integer((json_int_t) c->orders_invalid));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* floor((not_after - now) / 1 day), also for negative differences */
static json_t *
days_left(long long not_after, long long now)
{
    if (not_after == 0) {
        return json_null();
    }
    return json_integer((json_int_t) acme_status_days_left(not_after, now));
}

/* "issuers": the certificate's list (primary first), null when none */
static json_t *
render_issuers(const acme_status_cert_t *c)
{
    json_t  *a;
    size_t   i;

    if (c->n_issuers == 0) {
        return json_null();
    }
    a = json_array();
    if (a == NULL) {
        return NULL;
    }
    for (i = 0; i < c->n_issuers; i++) {
        if (json_array_append_new(a, str_or_null(c->issuers[i], 0)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *
render_fleet(const acme_status_cert_t *c)
{
    json_t  *o = json_object();

    if (o == NULL) {
        return NULL;
    }
    if (set(o, "action", str_or_null(c->fleet_action ? c->fleet_action
                                                      : "idle", 0)) != 0
        || set(o, "holder", str_or_null(c->fleet_holder, 1)) != 0)
    {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *
render_cert(const acme_status_cert_t *c, long long now)
{
    json_t  *o, *names;
    size_t   i;
    int      rc = 0;

    o = json_object();
    names = json_array();
    if (o == NULL || names == NULL) {
        json_decref(o);
        json_decref(names);
        return NULL;
    }

    for (i = 0; i < c->n_names; i++) {
        if (c->names[i] != NULL) {
            rc |= json_array_append_new(names, str_or_null(c->names[i], 0));
        }
    }

    rc |= set(o, "id", str_or_null(c->id, 0));
    rc |= set(o, "names", names);
    rc |= set(o, "issuer", str_or_null(c->issuer, 0));
    rc |= set(o, "directory", str_or_null(c->directory, 0));
    rc |= set(o, "key_type", str_or_null(c->key_type, 0));
    rc |= set(o, "challenge", str_or_null(c->challenge, 0));
    rc |= set(o, "state", str_or_null(c->state, 0));
    rc |= set(o, "step", str_or_null(c->step, 0));
    rc |= set(o, "serial", str_or_null(c->serial, 1));
    rc |= set(o, "ca_issuer", str_or_null(c->ca_issuer, 1));
    rc |= set(o, "not_before", time_or_null(c->not_before));
    rc |= set(o, "not_after", time_or_null(c->not_after));
    rc |= set(o, "next_renewal", time_or_null(c->next_renewal));
    rc |= set(o, "last_success", time_or_null(c->last_success));
    rc |= set(o, "last_error", str_or_null(c->last_error, 1));
    rc |= set(o, "consecutive_failures", json_integer((json_int_t) c->failures));
    rc |= set(o, "store_error", str_or_null(c->store_error, 1));
    rc |= set(o, "reason", str_or_null(c->reason, 1));
    rc |= set(o, "pending", c->pending_at > 0 ? render_pending(c)
                                              : json_null());
    rc |= set(o, "bridge", c->bridge_file != NULL ? render_bridge(c)
                                                  : json_null());
    rc |= set(o, "managed", json_boolean(!c->unmanaged));
    rc |= set(o, "days_left", days_left(c->not_after, now));
    rc |= set(o, "expiring", json_boolean(acme_status_expiring(
                                 c->not_before, c->not_after, c->warn_window,
                                 now)));
    rc |= set(o, "subject", str_or_null(c->subject, 1));
    rc |= set(o, "sans", str_array(c->sans, c->n_sans));
    rc |= set(o, "file", str_or_null(c->file, 0));
    rc |= set(o, "used_by", str_array(c->used_by, c->n_used_by));
    rc |= set(o, "orders", render_orders(c));
    rc |= set(o, "renewals", json_integer((json_int_t) c->renewals));
    rc |= set(o, "spki_pin", str_or_null(c->spki_pin, 1));
    rc |= set(o, "next_spki_pin", str_or_null(c->next_spki_pin, 1));
    rc |= set(o, "ari", c->ari_next_poll != 0 ? render_ari(c)
                                              : json_null());
    rc |= set(o, "issuers", render_issuers(c));
    if (c->fleet && !c->unmanaged) {
        rc |= set(o, "fleet", render_fleet(c));
    }

    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *
acme_status_render(const char *server, long acme_pid,
    const acme_status_cert_t *certs, size_t n, long long now, size_t *len)
{
    return acme_status_render_store(server, acme_pid, NULL, certs, n, now,
                                    len);
}

char *
acme_status_render_store(const char *server, long acme_pid,
    const char *store_json, const acme_status_cert_t *certs, size_t n,
    long long now, size_t *len)
{
    json_t             *store;
    json_t             *doc, *arr, *c;
    char               *s, *out;
    size_t              i, slen;
    int                 rc = 0;
    json_malloc_t       jmalloc;
    json_free_t         jfree;

    if (len) {
        *len = 0;
    }

    doc = json_object();
    arr = json_array();
    if (doc == NULL || arr == NULL) {
        json_decref(doc);
        json_decref(arr);
        return NULL;
    }

    rc |= set(doc, "version", json_integer(2));
    rc |= set(doc, "server", str_or_null(server, 0));
    rc |= set(doc, "generated_at", time_or_null(now));
    rc |= set(doc, "acme_pid", acme_pid > 0 ? json_integer(acme_pid)
                                             : json_null());

    for (i = 0; i < n; i++) {
        c = render_cert(&certs[i], now);
        if (c == NULL) {
            rc = -1;
            break;
        }
        rc |= json_array_append_new(arr, c);
    }
    rc |= set(doc, "certificates", arr);

    if (store_json != NULL) {
        store = json_loads(store_json, 0, NULL);
        if (store != NULL && !json_is_object(store)) {
            json_decref(store);
            store = NULL;
        }
        rc |= set(doc, "store", store != NULL ? store : json_null());
    }

    if (rc != 0) {
        json_decref(doc);
        return NULL;
    }

    s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (s == NULL) {
        return NULL;
    }

    /* copy into our own malloc'd buffer (jansson's allocator may be
     * replaced by the host) and end with a newline for curl users */
    slen = strlen(s);
    out = malloc(slen + 2);
    if (out != NULL) {
        memcpy(out, s, slen);
        out[slen] = '\n';
        out[slen + 1] = '\0';
        if (len) {
            *len = slen + 1;
        }
    }
    json_get_alloc_funcs(&jmalloc, &jfree);
    jfree(s);
    return out;
}
