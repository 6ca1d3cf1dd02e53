/*
 * The status as Prometheus text exposition format 0.0.4
 * (acme_status_view.h): one family at a time (HELP, TYPE, a sample per
 * certificate that has the value), labels escaped per the format.
 */
#include <stddef.h>
#include <string.h>

#include <jansson.h>

#include "acme_status_view.h"
#include "acme_strbuf.h"

/* The states a series is written for (0/1), managed and unmanaged; a
 * state not listed gets its own series with 1. */
static const char *const managed_states[] = {
    "fallback", "valid", "renewing", "failed", "expired", "revoked", NULL
};
static const char *const unmanaged_states[] = { "valid", "expired", NULL };

static void
family(acme_strbuf_t *b, const char *name, const char *type,
    const char *help)
{
    acme_strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                       type);
}

static void labels(acme_strbuf_t *b, const char *name,
    const acme_status_cert_t *c, const char *extra, const char *value,
    const char *extra2, const char *value2);

/* name{id="",names="",issuer="",key_type=""[,extra="value"]} */
static void
sample_start(acme_strbuf_t *b, const char *name, const acme_status_cert_t *c,
    const char *extra, const char *value)
{
    labels(b, name, c, extra, value, NULL, NULL);
}

/* the same with a second extra label */
static void
labels(acme_strbuf_t *b, const char *name, const acme_status_cert_t *c,
    const char *extra, const char *value, const char *extra2,
    const char *value2)
{
    size_t  i;
    int     first = 1;

    acme_strbuf_printf(b, "%s{id=\"", name);
    acme_strbuf_prom_label(b, c->id);
    acme_strbuf_puts(b, "\",names=\"");
    for (i = 0; i < c->n_names; i++) {
        if (c->names[i] == NULL) {
            continue;
        }
        if (!first) {
            acme_strbuf_puts(b, ",");
        }
        acme_strbuf_prom_label(b, c->names[i]);
        first = 0;
    }
    acme_strbuf_puts(b, "\",issuer=\"");
    acme_strbuf_prom_label(b, c->issuer);
    acme_strbuf_puts(b, "\",key_type=\"");
    acme_strbuf_prom_label(b, c->key_type);
    acme_strbuf_puts(b, "\"");
    if (extra != NULL) {
        acme_strbuf_printf(b, ",%s=\"", extra);
        acme_strbuf_prom_label(b, value);
        acme_strbuf_puts(b, "\"");
    }
    if (extra2 != NULL) {
        acme_strbuf_printf(b, ",%s=\"", extra2);
        acme_strbuf_prom_label(b, value2);
        acme_strbuf_puts(b, "\"");
    }
    acme_strbuf_puts(b, "} ");
}

static void
sample(acme_strbuf_t *b, const char *name, const acme_status_cert_t *c,
    const char *extra, const char *value, unsigned long long v)
{
    sample_start(b, name, c, extra, value);
    acme_strbuf_printf(b, "%llu\n", v);
}

/* name{id=...,pin="current|next",spki="..."} 1 */
static void
pin_sample(acme_strbuf_t *b, const acme_status_cert_t *c, const char *which,
    const char *pin)
{
    labels(b, "acme_certificate_pin_info", c, "pin", which, "spki", pin);
    acme_strbuf_puts(b, "1\n");
}

static void
states(acme_strbuf_t *b, const acme_status_cert_t *c, long long now)
{
    const char *const  *list;
    const char         *cur;
    size_t              i;
    int                 listed = 0;

    if (c->unmanaged) {
        /* a file's certificate has no ACME life: valid or expired (the
         * inventory's own state when it says more: "not yet valid", or
         * "failed" for a file it could not read, acme_inventory_status) */
        list = unmanaged_states;
        cur = c->state ? c->state
              : (c->not_after != 0 && c->not_after <= now) ? "expired"
                                                           : "valid";
    } else {
        list = managed_states;
        cur = c->state ? c->state : "";
    }
    for (i = 0; list[i] != NULL; i++) {
        listed |= (strcmp(list[i], cur) == 0);
        sample(b, "acme_certificate_state", c, "state", list[i],
               strcmp(list[i], cur) == 0);
    }
    if (!listed && cur[0] != '\0') {
        sample(b, "acme_certificate_state", c, "state", cur, 1);
    }
}

/* One gauge family of an ARI time (the long long at offset of each
 * certificate), a sample for each certificate that has one. */
static void
ari_times(acme_strbuf_t *b, const char *name, const char *help,
    const acme_status_cert_t *certs, size_t n, size_t offset)
{
    size_t     i;
    long long  t;

    family(b, name, "gauge", help);
    for (i = 0; i < n; i++) {
        t = *(const long long *) ((const char *) &certs[i] + offset);
        if (t > 0) {
            sample(b, name, &certs[i], NULL, NULL, (unsigned long long) t);
        }
    }
}

char *
acme_status_prometheus(const acme_status_cert_t *certs, size_t n,
    long long now, size_t *len)
{
    return acme_status_prometheus_store(certs, n, now, NULL, len);
}

char *
acme_status_prometheus_store(const acme_status_cert_t *certs, size_t n,
    long long now, const char *store_json, size_t *len)
{
    json_t                    *store;
    acme_strbuf_t              b;
    const acme_status_cert_t  *c;
    size_t                     i;

    memset(&b, 0, sizeof(b));

    family(&b, "acme_certificate_not_after_seconds", "gauge",
           "Expiry (notAfter) of the served certificate, in seconds since "
           "the epoch.");
    for (i = 0; i < n; i++) {
        c = &certs[i];
        if (c->not_after != 0) {
            sample_start(&b, "acme_certificate_not_after_seconds", c, NULL,
                         NULL);
            acme_strbuf_printf(&b, "%lld\n", c->not_after);
        }
    }

    family(&b, "acme_certificate_next_renewal_seconds", "gauge",
           "Next scheduled order (renewal or retry after backoff), in "
           "seconds since the epoch.");
    for (i = 0; i < n; i++) {
        c = &certs[i];
        if (!c->unmanaged && c->next_renewal != 0) {
            sample_start(&b, "acme_certificate_next_renewal_seconds", c, NULL,
                         NULL);
            acme_strbuf_printf(&b, "%lld\n", c->next_renewal);
        }
    }

    family(&b, "acme_certificate_consecutive_failures", "gauge",
           "Failed orders since the last certificate was issued.");
    for (i = 0; i < n; i++) {
        if (!certs[i].unmanaged) {
            sample(&b, "acme_certificate_consecutive_failures", &certs[i],
                   NULL, NULL, certs[i].failures);
        }
    }

    family(&b, "acme_certificate_state", "gauge",
           "State of the certificate: 1 for the current one, 0 for the "
           "others.");
    for (i = 0; i < n; i++) {
        states(&b, &certs[i], now);
    }

    family(&b, "acme_certificate_managed", "gauge",
           "1 for a certificate this module orders, 0 for one the server "
           "loads from a file.");
    for (i = 0; i < n; i++) {
        sample(&b, "acme_certificate_managed", &certs[i], NULL, NULL,
               !certs[i].unmanaged);
    }

    family(&b, "acme_certificate_expiring", "gauge",
           "1 inside the warning window before expiry, or expired.");
    for (i = 0; i < n; i++) {
        c = &certs[i];
        sample(&b, "acme_certificate_expiring", c, NULL, NULL,
               (unsigned long long) acme_status_expiring(
                   c->not_before, c->not_after, c->warn_window, now));
    }

    family(&b, "acme_orders_total", "counter",
           "Orders finished since the server started, by result (valid: a "
           "certificate was issued).");
    for (i = 0; i < n; i++) {
        c = &certs[i];
        if (!c->unmanaged) {
            sample(&b, "acme_orders_total", c, "result", "valid",
                   c->orders_valid);
            sample(&b, "acme_orders_total", c, "result", "invalid",
                   c->orders_invalid);
        }
    }

    family(&b, "acme_renewals_total", "counter",
           "Certificates issued since the server started that replaced a "
           "served one.");
    for (i = 0; i < n; i++) {
        if (!certs[i].unmanaged) {
            sample(&b, "acme_renewals_total", &certs[i], NULL, NULL,
                   certs[i].renewals);
        }
    }

    family(&b, "acme_certificate_pin_info", "gauge",
           "SPKI pins (RFC 7469: base64 of the SHA-256 of the "
           "SubjectPublicKeyInfo) of the served certificate's key "
           "(pin=\"current\") and, with key rollover pinned, of the next "
           "certificate's key (pin=\"next\"); always 1.");
    for (i = 0; i < n; i++) {
        c = &certs[i];
        if (c->spki_pin != NULL && c->spki_pin[0] != '\0') {
            pin_sample(&b, c, "current", c->spki_pin);
        }
        if (c->next_spki_pin != NULL && c->next_spki_pin[0] != '\0') {
            pin_sample(&b, c, "next", c->next_spki_pin);
        }
    }

    ari_times(&b, "acme_ari_window_start_seconds", "Start of the renewal "
              "window the CA suggests (ARI, RFC 9773), in seconds since the "
              "epoch.", certs, n, offsetof(acme_status_cert_t, ari_start));
    ari_times(&b, "acme_ari_window_end_seconds", "End of the renewal window "
              "the CA suggests (ARI), in seconds since the epoch.", certs, n,
              offsetof(acme_status_cert_t, ari_end));
    ari_times(&b, "acme_ari_renew_at_seconds", "The renewal time chosen in "
              "the ARI window, in seconds since the epoch.", certs, n,
              offsetof(acme_status_cert_t, ari_at));
    family(&b, "acme_ari_explanation_info", "gauge",
           "The explanationURL of the CA's renewal information (ARI), as a "
           "label.");
    for (i = 0; i < n; i++) {
        if (certs[i].ari_explanation != NULL
            && certs[i].ari_explanation[0] != '\0')
        {
            sample(&b, "acme_ari_explanation_info", &certs[i],
                   "explanation_url", certs[i].ari_explanation, 1);
        }
    }
    family(&b, "acme_ari_fetch_error", "gauge",
           "1 when the last renewal information (ARI) fetch failed.");
    for (i = 0; i < n; i++) {
        if (certs[i].ari_next_poll != 0) {
            sample(&b, "acme_ari_fetch_error", &certs[i], NULL, NULL,
                   certs[i].ari_error != NULL
                   && certs[i].ari_error[0] != '\0');
        }
    }

    if (store_json != NULL) {
        /* the shared store (issue 15): 0 also before the first round */
        store = json_loads(store_json, 0, NULL);
        family(&b, "acme_store_reachable", "gauge",
               "1 when the shared store (acme_store / AcmeStore) answered "
               "this node's last request, else 0.");
        acme_strbuf_printf(&b, "acme_store_reachable %d\n",
                           json_is_true(json_object_get(store, "reachable"))
                           ? 1 : 0);
        json_decref(store);
    }

    return acme_strbuf_done(&b, len);
}
