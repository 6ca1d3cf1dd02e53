/*
 * Three views of the status document (acme_status.h), chosen per request
 * at the status location of both servers (nginx "acme_status;", Apache
 * "SetHandler acme-status"), and the counts both the HTML view and
 * Apache's mod_status lines show.  All renderers take the same
 * acme_status_cert_t array as acme_status_render and return a malloc'd,
 * NUL-terminated text (NULL: out of memory).
 *
 * Which view (acme_status_format):
 *   1. the query argument format=json|prometheus|html (also "metrics" and
 *      "openmetrics" for prometheus); any other value: unknown (-1), the
 *      servers answer 400;
 *   2. else the Accept header: the media range with the highest q (the
 *      first of equals) among text/html (html), text/plain or
 *      application/openmetrics-text (prometheus, with or without
 *      version=0.0.4) and application/json (json); wildcards and other
 *      types do not count;
 *   3. else JSON.
 * The answer varies by Accept (the servers add "Vary: Accept") and is never
 * cached ("Cache-Control: no-store").
 */
#ifndef ACME_STATUS_VIEW_H
#define ACME_STATUS_VIEW_H

#include <stddef.h>

#include "acme_status.h"

#define ACME_STATUS_JSON        0
#define ACME_STATUS_PROMETHEUS  1
#define ACME_STATUS_HTML        2

/*
 * The view for a request: args the query string without "?" (args_len
 * bytes, not NUL-terminated; NULL: none), accept the Accept header (NULL:
 * none).  ACME_STATUS_*, or -1 for an unknown format= value.
 */
int acme_status_format(const char *args, size_t args_len, const char *accept);

/* The Content-Type of a view. */
const char *acme_status_content_type(int format);

/* The document in view format (acme_status_render for JSON). */
char *acme_status_render_as(int format, const char *server, long acme_pid,
    const acme_status_cert_t *certs, size_t n, long long now, size_t *len);
/* The same with the shared store (store_json as acme_status_render_store;
 * NULL: none): JSON "store", Prometheus acme_store_reachable. */
char *acme_status_render_as_store(int format, const char *server,
    long acme_pid, const char *store_json, const acme_status_cert_t *certs,
    size_t n, long long now, size_t *len);

/*
 * Prometheus text exposition format 0.0.4: per certificate the gauges
 * acme_certificate_not_after_seconds, acme_certificate_next_renewal_seconds,
 * acme_certificate_consecutive_failures, acme_certificate_state{state=}
 * (one series per state, 1 for the current one), acme_certificate_managed,
 * acme_certificate_expiring, and the counters acme_orders_total{result=
 * "valid"|"invalid"} and acme_renewals_total; labels id, names (comma-
 * joined), issuer, key_type.  A certificate the server loads from a file
 * (unmanaged) has not_after, state (valid / expired, or the inventory's
 * "not yet valid" / "failed": acme_inventory_status), managed and expiring
 * only; one without a certificate has no not_after.
 */
char *acme_status_prometheus(const acme_status_cert_t *certs, size_t n,
    long long now, size_t *len);
/* With a shared store (store_json non-NULL, acme_status_render_store):
 * also the gauge acme_store_reachable (1: its last request answered). */
char *acme_status_prometheus_store(const acme_status_cert_t *certs, size_t n,
    long long now, const char *store_json, size_t *len);

/*
 * The HTML page: title, the counts (acme_status_count), then one table of
 * every certificate worst first (acme_status_rank), HTML-escaped,
 * self-contained (inline CSS, no script, no external resource).
 */
char *acme_status_html(const char *server, long acme_pid,
    const acme_status_cert_t *certs, size_t n, long long now, size_t *len);
/* The same with the shared store's line under the title (store_json:
 * acme_fleet_node_status_json's text, "" before the first round; NULL:
 * no shared store, no line) and each certificate's "fleet". */
char *acme_status_html_store(const char *server, long acme_pid,
    const char *store_json, const acme_status_cert_t *certs, size_t n,
    long long now, size_t *len);

/*
 * The counts of the summary (HTML view, Apache mod_status); a certificate
 * may be in several:
 *   total      every certificate, managed or not
 *   valid      a certificate served, not expired, not inside its warning
 *              window (acme_status_expiring)
 *   expiring   inside its warning window or expired (acme_status_expiring)
 *   failing    managed, and its last order failed (consecutive_failures >
 *              0: states "failed", and "valid"/"renewing"/... while
 *              retrying)
 *   unmanaged  loaded from a file (managed false)
 */
typedef struct {
    size_t  total;
    size_t  valid;
    size_t  expiring;
    size_t  failing;
    size_t  unmanaged;
} acme_status_counts_t;

void acme_status_count(const acme_status_cert_t *certs, size_t n,
    long long now, acme_status_counts_t *out);

/*
 * How bad a certificate is, 0 worst: expired, failing (failed, or failures
 * while still valid), fallback (the placeholder is served), expiring,
 * renewing, valid.  Unmanaged ones by the same rule.
 */
int acme_status_rank(const acme_status_cert_t *c, long long now);

/* The view's order of certs: idx (n entries) gets the indexes of certs,
 * worst first (acme_status_rank), then the soonest not_after, then id. */
void acme_status_order(const acme_status_cert_t *certs, size_t n,
    long long now, size_t *idx);

/* floor((not_after - now) / 1 day), negative once expired. */
long long acme_status_days_left(long long not_after, long long now);

/*
 * Apache mod_status: short (?auto) lines "ACMECertificates: N",
 * "ACMEValid: N", "ACMEExpiring: N", "ACMEFailing: N", "ACMEUnmanaged: N";
 * else an HTML fragment for /server-status (a heading, the counts and a
 * table of the certificates, worst first).
 */
char *acme_status_server_status(const acme_status_cert_t *certs, size_t n,
    long long now, int short_form, size_t *len);

#endif
