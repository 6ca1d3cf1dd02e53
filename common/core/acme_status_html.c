/*
 * The status as one HTML page, and the fragment Apache's mod_status shows
 * (acme_status_view.h).  Every text from the document is escaped
 * (acme_strbuf_html); the page carries its own CSS and nothing else: no
 * script, font, image or other request.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acme_status_view.h"
#include "acme_strbuf.h"
#include "acme_util.h"

static const char page_css[] =
    "body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "\"Helvetica Neue\",Arial,sans-serif;margin:24px;color:#1f2328;"
    "background:#f6f8fa}\n"
    "h1{font-size:22px;margin:0 0 4px}\n"
    ".meta{color:#57606a;margin:0 0 18px}\n"
    ".counts{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 20px;"
    "padding:0;list-style:none}\n"
    ".counts li{background:#fff;border:1px solid #d0d7de;border-radius:6px;"
    "padding:8px 18px;min-width:96px;color:#57606a}\n"
    ".counts b{display:block;font-size:26px;color:#1f2328}\n"
    ".counts .ok b{color:#1a7f37}.counts .warn b{color:#9a6700}"
    ".counts .bad b{color:#cf222e}\n"
    "table{border-collapse:collapse;width:100%;background:#fff;"
    "border:1px solid #d0d7de}\n"
    "th,td{text-align:left;vertical-align:top;padding:7px 10px;"
    "border-bottom:1px solid #d0d7de}\n"
    "th{background:#eaeef2;font-weight:600;white-space:nowrap}\n"
    "td.err{max-width:30em;overflow-wrap:anywhere;color:#cf222e}\n"
    "td.names{overflow-wrap:anywhere}\n"
    "small{color:#57606a}small.bad{color:#cf222e}\n"
    ".st{display:inline-block;padding:1px 9px;border-radius:10px;"
    "font-size:12px;font-weight:600;background:#dafbe1;color:#1a7f37}\n"
    ".st.bad{background:#ffebe9;color:#cf222e}"
    ".st.warn{background:#fff8c5;color:#9a6700}"
    ".st.busy{background:#ddf4ff;color:#0969da}"
    ".st.file{background:#eaeef2;color:#57606a}\n"
    "tr.r0,tr.r1{background:#fff5f5}\n"
    "@media (max-width:800px){body{margin:10px}th,td{padding:5px 6px}}\n";

/* "2026-12-06 22:00:00 UTC" */
static void
add_time(acme_strbuf_t *b, long long t)
{
    char   buf[40];
    char  *p;

    acme_time_rfc3339(t, buf, sizeof(buf));
    p = strchr(buf, 'T');
    if (p != NULL) {
        *p = ' ';
    }
    p = strchr(buf, 'Z');
    if (p != NULL) {
        *p = '\0';
    }
    acme_strbuf_printf(b, "%s UTC", buf);
}

/* "3 days", "5 h", "12 min", "40 s" */
static void
add_span(acme_strbuf_t *b, long long s)
{
    if (s >= 2 * 86400) {
        acme_strbuf_printf(b, "%lld days", s / 86400);
    } else if (s >= 2 * 3600) {
        acme_strbuf_printf(b, "%lld h", s / 3600);
    } else if (s >= 120) {
        acme_strbuf_printf(b, "%lld min", s / 60);
    } else {
        acme_strbuf_printf(b, "%lld s", s);
    }
}

static void
add_names(acme_strbuf_t *b, const acme_status_cert_t *c)
{
    size_t  i;
    int     first = 1;

    for (i = 0; i < c->n_names; i++) {
        if (c->names[i] == NULL) {
            continue;
        }
        acme_strbuf_puts(b, first ? "<b>" : "<br>");
        acme_strbuf_html(b, c->names[i]);
        acme_strbuf_puts(b, first ? "</b>" : "");
        first = 0;
    }
    acme_strbuf_puts(b, first ? "<small>(no names)</small>" : "");
    acme_strbuf_puts(b, "<br><small>");
    acme_strbuf_html(b, c->id);
    if (c->key_type != NULL && c->key_type[0] != '\0') {
        acme_strbuf_puts(b, " &middot; ");
        acme_strbuf_html(b, c->key_type);
    }
    /* the inventory's id is its file already */
    if (c->unmanaged && c->file != NULL
        && (c->id == NULL || strcmp(c->id, c->file) != 0))
    {
        acme_strbuf_puts(b, "<br>");
        acme_strbuf_html(b, c->file);
    }
    /* the SPKI pins, the next one with key rollover pinned */
    if (c->spki_pin != NULL && c->spki_pin[0] != '\0') {
        acme_strbuf_puts(b, "<br>pin <code>");
        acme_strbuf_html(b, c->spki_pin);
        acme_strbuf_puts(b, "</code>");
    }
    if (c->next_spki_pin != NULL && c->next_spki_pin[0] != '\0') {
        acme_strbuf_puts(b, "<br>next pin <code>");
        acme_strbuf_html(b, c->next_spki_pin);
        acme_strbuf_puts(b, "</code>");
    }
    acme_strbuf_puts(b, "</small>");
}

/* The state badge, coloured by the state; then what else is wrong. */
static void
add_state(acme_strbuf_t *b, const acme_status_cert_t *c, long long now)
{
    static const struct {
        const char  *state;
        const char  *cls;
    } cls[] = {
        { "expired", "bad" }, { "failed", "bad" }, { "revoked", "bad" },
        { "fallback", "warn" }, { "renewing", "busy" },
        { "not yet valid", "warn" },
    };
    const char  *state, *k = "";
    size_t       i;
    int          exp;

    state = c->state ? c->state : "unknown";
    if (c->unmanaged && c->state == NULL) {
        state = (c->not_after != 0 && c->not_after <= now) ? "expired"
                                                           : "valid";
    }
    for (i = 0; i < sizeof(cls) / sizeof(cls[0]); i++) {
        if (strcmp(state, cls[i].state) == 0) {
            k = cls[i].cls;
        }
    }
    acme_strbuf_printf(b, "<span class=\"st %s\">", k);
    acme_strbuf_html(b, state);
    acme_strbuf_puts(b, "</span>");

    exp = acme_status_expiring(c->not_before, c->not_after, c->warn_window,
                               now);
    if (exp && c->not_after > now) {
        acme_strbuf_puts(b, " <span class=\"st warn\">expiring</span>");
    }
    if (c->unmanaged) {
        acme_strbuf_puts(b, " <span class=\"st file\">file</span>");
    }
    if (c->step != NULL && c->step[0] != '\0') {
        acme_strbuf_puts(b, "<br><small>step ");
        acme_strbuf_html(b, c->step);
        acme_strbuf_puts(b, "</small>");
    }
    if (!c->unmanaged && c->failures > 0) {
        acme_strbuf_printf(b, "<br><small class=\"bad\">%u consecutive "
                           "failure%s</small>",
                           c->failures, c->failures == 1 ? "" : "s");
    }
    if (c->fleet && !c->unmanaged) {
        /* the shared store: what this node did last, who holds the lock */
        acme_strbuf_puts(b, "<br><small>fleet: ");
        acme_strbuf_html(b, c->fleet_action != NULL
                            && c->fleet_action[0] != '\0'
                            ? c->fleet_action : "idle");
        if (c->fleet_holder != NULL && c->fleet_holder[0] != '\0') {
            acme_strbuf_puts(b, ", ordered by node ");
            acme_strbuf_html(b, c->fleet_holder);
        }
        acme_strbuf_puts(b, "</small>");
    }
}

static void
add_expiry(acme_strbuf_t *b, const acme_status_cert_t *c, long long now)
{
    long long  d;

    if (c->not_after == 0) {
        acme_strbuf_puts(b, "&mdash;<br><small>no certificate "
                         "(placeholder)</small>");
        return;
    }
    add_time(b, c->not_after);
    acme_strbuf_puts(b, "<br><small>");
    if (c->not_after <= now) {
        d = acme_sub_sat(now, c->not_after) / 86400;
        if (d == 0) {
            acme_strbuf_puts(b, "expired today");
        } else {
            acme_strbuf_printf(b, "expired %lld day%s ago", d,
                               d == 1 ? "" : "s");
        }
    } else {
        d = acme_status_days_left(c->not_after, now);
        if (d == 0) {
            acme_strbuf_puts(b, "less than a day left");
        } else {
            acme_strbuf_printf(b, "%lld day%s left", d, d == 1 ? "" : "s");
        }
    }
    acme_strbuf_puts(b, "</small>");
}

/* The CA's renewal window (ARI), the time chosen in it, its
 * explanation, the last fetch's error. */
static void
add_ari(acme_strbuf_t *b, const acme_status_cert_t *c)
{
    if (c->ari_start > 0 && c->ari_end > 0) {
        acme_strbuf_puts(b, "<br><small class=\"ari\">ARI window ");
        add_time(b, c->ari_start);
        acme_strbuf_puts(b, " &ndash; ");
        add_time(b, c->ari_end);
        if (c->ari_at > 0) {
            acme_strbuf_puts(b, ", renewal at ");
            add_time(b, c->ari_at);
        }
        if (c->ari_explanation != NULL
            && strncmp(c->ari_explanation, "https://", 8) == 0)
        {
            /* the CA's text: a link only to an https page */
            acme_strbuf_puts(b, " (<a href=\"");
            acme_strbuf_html(b, c->ari_explanation);
            acme_strbuf_puts(b, "\" rel=\"noreferrer\">why</a>)");
        } else if (c->ari_explanation != NULL
                   && c->ari_explanation[0] != '\0')
        {
            acme_strbuf_puts(b, " (");
            acme_strbuf_html(b, c->ari_explanation);
            acme_strbuf_puts(b, ")");
        }
        acme_strbuf_puts(b, "</small>");
    }
    if (c->ari_error != NULL && c->ari_error[0] != '\0') {
        acme_strbuf_puts(b, "<br><small class=\"bad\">ARI: ");
        acme_strbuf_html(b, c->ari_error);
        acme_strbuf_puts(b, "</small>");
    }
}

static void
add_next(acme_strbuf_t *b, const acme_status_cert_t *c, long long now)
{
    if (c->unmanaged) {
        acme_strbuf_puts(b, "&mdash;<br><small>not managed</small>");
        return;
    }
    if (c->next_renewal == 0) {
        acme_strbuf_puts(b, "&mdash;");
        return;
    }
    add_time(b, c->next_renewal);
    acme_strbuf_puts(b, "<br><small>");
    if (c->next_renewal <= now) {
        acme_strbuf_puts(b, "due now");
    } else {
        acme_strbuf_puts(b, "in ");
        add_span(b, acme_sub_sat(c->next_renewal, now));
    }
    acme_strbuf_puts(b, "</small>");
    add_ari(b, c);
}

static void
add_error(acme_strbuf_t *b, const acme_status_cert_t *c)
{
    int  any = 0;

    acme_strbuf_puts(b, (c->last_error != NULL && c->last_error[0] != '\0')
                        || (c->store_error != NULL
                            && c->store_error[0] != '\0')
                        ? "<td class=\"err\">" : "<td>");
    if (c->last_error != NULL && c->last_error[0] != '\0') {
        acme_strbuf_html(b, c->last_error);
        any = 1;
    }
    if (c->store_error != NULL && c->store_error[0] != '\0') {
        acme_strbuf_puts(b, any ? "<br>store: " : "store: ");
        acme_strbuf_html(b, c->store_error);
        any = 1;
    }
    if (!any) {
        acme_strbuf_puts(b, "&mdash;");
    }
}

static void
add_issuer(acme_strbuf_t *b, const acme_status_cert_t *c)
{
    int  any = 0;

    if (c->issuer != NULL && c->issuer[0] != '\0') {
        acme_strbuf_html(b, c->issuer);
        any = 1;
    }
    if (c->ca_issuer != NULL && c->ca_issuer[0] != '\0') {
        acme_strbuf_puts(b, any ? "<br><small>" : "<small>");
        acme_strbuf_html(b, c->ca_issuer);
        acme_strbuf_puts(b, "</small>");
        any = 1;
    }
    if (!any) {
        acme_strbuf_puts(b, "&mdash;");
    }
}

/* The table, worst first; 0, or -1 out of memory. */
static int
add_table(acme_strbuf_t *b, const acme_status_cert_t *certs, size_t n,
    long long now, const char *attrs)
{
    size_t                     i, *idx;
    int                        rank;
    const acme_status_cert_t  *c;

    idx = malloc((n ? n : 1) * sizeof(size_t));
    if (idx == NULL) {
        return -1;
    }
    acme_status_order(certs, n, now, idx);

    acme_strbuf_printf(b, "<table%s>\n<thead><tr><th>Names</th>"
                       "<th>Issuer</th><th>State</th><th>Expires</th>"
                       "<th>Next renewal</th><th>Last error</th></tr>"
                       "</thead>\n<tbody>\n", attrs);
    for (i = 0; i < n; i++) {
        c = &certs[idx[i]];
        rank = acme_status_rank(c, now);
        acme_strbuf_printf(b, "<tr class=\"r%d\"><td class=\"names\">", rank);
        add_names(b, c);
        acme_strbuf_puts(b, "</td><td>");
        add_issuer(b, c);
        acme_strbuf_puts(b, "</td><td>");
        add_state(b, c, now);
        acme_strbuf_puts(b, "</td><td>");
        add_expiry(b, c, now);
        acme_strbuf_puts(b, "</td><td>");
        add_next(b, c, now);
        acme_strbuf_puts(b, "</td>");
        add_error(b, c);
        acme_strbuf_puts(b, "</td></tr>\n");
    }
    acme_strbuf_puts(b, "</tbody>\n</table>\n");
    free(idx);
    return 0;
}

static void
add_count(acme_strbuf_t *b, const char *cls, size_t v, const char *label)
{
    acme_strbuf_printf(b, "<li class=\"%s\"><b>%zu</b>%s</li>\n",
                       v ? cls : "", v, label);
}

/* The shared store line (acme_fleet_node_status_json's object; "" or
 * anything that is not an object: not yet known). */
static void
add_store(acme_strbuf_t *b, const char *store_json)
{
    json_t      *st;
    const char  *v;

    st = json_loads(store_json, 0, NULL);
    acme_strbuf_puts(b, "<p class=\"meta\">shared store ");
    if (!json_is_object(st)) {
        acme_strbuf_puts(b, "not reached yet</p>\n");
        json_decref(st);
        return;
    }
    v = json_string_value(json_object_get(st, "backend"));
    acme_strbuf_html(b, v != NULL ? v : "?");
    v = json_string_value(json_object_get(st, "node"));
    if (v != NULL) {
        acme_strbuf_puts(b, " &middot; this node <b>");
        acme_strbuf_html(b, v);
        acme_strbuf_puts(b, "</b>");
    }
    if (json_is_true(json_object_get(st, "reachable"))) {
        acme_strbuf_puts(b, " &middot; reachable");
        v = json_string_value(json_object_get(st, "endpoint"));
        if (v != NULL) {
            acme_strbuf_puts(b, " at ");
            acme_strbuf_html(b, v);
        }
        if (json_is_integer(json_object_get(st, "nodes"))) {
            acme_strbuf_printf(b, " &middot; %lld node%s alive",
                (long long) json_integer_value(json_object_get(st, "nodes")),
                json_integer_value(json_object_get(st, "nodes")) == 1
                ? "" : "s");
        }
    } else {
        acme_strbuf_puts(b, " &middot; <small class=\"bad\">unreachable");
        v = json_string_value(json_object_get(st, "error"));
        if (v != NULL && v[0] != '\0') {
            acme_strbuf_puts(b, ": ");
            acme_strbuf_html(b, v);
        }
        acme_strbuf_puts(b, "</small>");
    }
    acme_strbuf_puts(b, "</p>\n");
    json_decref(st);
}

char *
acme_status_html(const char *server, long acme_pid,
    const acme_status_cert_t *certs, size_t n, long long now, size_t *len)
{
    return acme_status_html_store(server, acme_pid, NULL, certs, n, now,
                                  len);
}

char *
acme_status_html_store(const char *server, long acme_pid,
    const char *store_json, const acme_status_cert_t *certs, size_t n,
    long long now, size_t *len)
{
    acme_strbuf_t         b;
    acme_status_counts_t  k;

    memset(&b, 0, sizeof(b));
    acme_status_count(certs, n, now, &k);

    acme_strbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
                     "<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
                     "content=\"width=device-width, initial-scale=1\">\n"
                     /* no favicon request either */
                     "<link rel=\"icon\" href=\"data:,\">\n"
                     "<title>ACME certificates (");
    acme_strbuf_html(&b, server);
    acme_strbuf_puts(&b, ")</title>\n<style>\n");
    acme_strbuf_puts(&b, page_css);
    acme_strbuf_puts(&b, "</style>\n</head>\n<body>\n<h1>ACME certificates"
                     "</h1>\n<p class=\"meta\">");
    acme_strbuf_html(&b, server);
    acme_strbuf_puts(&b, " &middot; generated ");
    add_time(&b, now);
    if (acme_pid > 0) {
        acme_strbuf_printf(&b, " &middot; ACME driven by pid %ld", acme_pid);
    }
    acme_strbuf_puts(&b, " &middot; also as <a href=\"?format=json\">JSON"
                     "</a> and <a href=\"?format=prometheus\">Prometheus"
                     "</a></p>\n");
    if (store_json != NULL) {
        add_store(&b, store_json);
    }
    acme_strbuf_puts(&b, "<ul class=\"counts\">\n");
    add_count(&b, "ok", k.valid, "valid");
    add_count(&b, "warn", k.expiring, "expiring");
    add_count(&b, "bad", k.failing, "failing");
    add_count(&b, "", k.unmanaged, "unmanaged");
    add_count(&b, "", k.total, "total");
    acme_strbuf_puts(&b, "</ul>\n");
    if (add_table(&b, certs, n, now, "") != 0) {
        b.failed = 1;
    }
    acme_strbuf_puts(&b, "</body>\n</html>\n");
    return acme_strbuf_done(&b, len);
}

char *
acme_status_server_status(const acme_status_cert_t *certs, size_t n,
    long long now, int short_form, size_t *len)
{
    acme_strbuf_t         b;
    acme_status_counts_t  k;

    memset(&b, 0, sizeof(b));
    acme_status_count(certs, n, now, &k);

    if (short_form) {
        acme_strbuf_printf(&b, "ACMECertificates: %zu\nACMEValid: %zu\n"
                           "ACMEExpiring: %zu\nACMEFailing: %zu\n"
                           "ACMEUnmanaged: %zu\n", k.total, k.valid,
                           k.expiring, k.failing, k.unmanaged);
        return acme_strbuf_done(&b, len);
    }
    acme_strbuf_printf(&b, "<hr>\n<h2>ACME certificates</h2>\n"
                       "<p>%zu certificate%s: %zu valid, %zu expiring, "
                       "%zu failing, %zu unmanaged</p>\n", k.total,
                       k.total == 1 ? "" : "s", k.valid, k.expiring,
                       k.failing, k.unmanaged);
    if (n > 0 && add_table(&b, certs, n, now, " border=\"0\"") != 0) {
        b.failed = 1;
    }
    return acme_strbuf_done(&b, len);
}
