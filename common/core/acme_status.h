/*
 * The status document shared by both servers (nginx acme_status, Apache
 * acme-status handler).  Schema (version 2; version 1 had no "managed",
 * "days_left", "expiring", "subject", "sans", "file", "used_by", "orders",
 * "renewals"):
 *
 * {
 *   "version": 2,
 *   "server": "nginx" | "apache",
 *   "generated_at": RFC3339,
 *   "acme_pid": pid of the process driving ACME or null,
 *   "certificates": [ {
 *       "id": "example.com_ecdsa-256",
 *       "names": ["example.com", ...],
 *       "issuer": "<issuer block name>": the one that issued the served
 *                 certificate (with fallback=, one of "issuers"), else the
 *                 configured one,
 *       "issuers": ["<primary>", "<fallback>", ...] the certificate's
 *                  issuers in the order tried (acme_failover.h), or null
 *                  (unmanaged),
 *       "directory": "<ACME directory URL>" (of "issuer"),
 *       "key_type": "ecdsa:256",
 *       "challenge": "http-01" | "tls-alpn-01" | "dns-01" or null,
 *       "state": "fallback" | "valid" | "renewing" | "failed" | "expired"
 *                | "revoked" (revoked at the CA on request, until its
 *                  replacement is served)
 *                (an unmanaged one: "valid", "expired", "not yet valid"
 *                when its notBefore is ahead, or "failed" with last_error
 *                when its file cannot be read or parsed),
 *       "step": current ACME step while renewing, else null,
 *       "serial": hex or null, "ca_issuer": RFC2253 or null,
 *       "not_before": RFC3339 or null, "not_after": RFC3339 or null,
 *       "next_renewal": RFC3339 or null (next scheduled attempt, backoff included),
 *       "last_success": RFC3339 or null,
 *       "last_error": string or null,
 *       "consecutive_failures": integer,
 *       "store_error": string or null (the store cannot be written, e.g.
 *                      "read-only file system", or an entry was refused),
 *       "reason": null, or why the served certificate is replaced at once:
 *                 "issuer changed" (another CA issued it), "key type
 *                 changed", "names changed",
 *       "pending": null, or a certificate issued and stored but not served
 *                  yet (its notBefore is ahead of this server's clock):
 *                  {"serial", "not_before", "not_after",
 *                   "activate_at": RFC3339, when it will be served}
 *       "bridge": null, or the certificate the server had before (nginx
 *                 ssl_certificate, Apache SSLCertificateFile) while it is
 *                 served in place of the placeholder, until the first
 *                 managed certificate is: {"file", "serial", "not_before",
 *                 "not_after"}
 *       "managed": true for a certificate this module orders; false for one
 *                  the server loads from a file (ssl_certificate,
 *                  SSLCertificateFile), listed for the inventory only
 *                  (acme_inventory.h), after the managed ones, one entry
 *                  per file: its "id" and "file" are the path, "names" its
 *                  SANs, "issuer", "directory", "challenge", "step",
 *                  "next_renewal", "last_success" null; a bridge is not
 *                  listed so (it is the managed entry's "bridge"),
 *       "days_left": whole days until not_after (negative once expired), or
 *                    null without a certificate,
 *       "expiring": true when inside the warning window (acme_status_expiring),
 *       "subject": RFC2253 subject or null (null for a managed one: not
 *                  kept in the shared record),
 *       "sans": [dNSName and iPAddress SANs of the served certificate; for
 *                a managed one its configured names],
 *       "file": the certificate file (unmanaged) or null,
 *       "used_by": [the server names (nginx server{}: each server_name, or
 *                  "FILE:LINE" of a block without one) or vhosts (Apache
 *                  ServerName:port) that present it, sorted],
 *       "orders": {"valid": n, "invalid": n} orders finished since start,
 *       "renewals": n certificates issued since start that replaced one,
 *       "spki_pin": the SPKI pin (RFC 7469 section 2.4: base64 of the
 *                   SHA-256 of the DER SubjectPublicKeyInfo) of the served
 *                   certificate's key, or null when unknown (computed once
 *                   per certificate, acme_key_spki_pin),
 *       "next_spki_pin": with key_rollover pinned / AcmeKeyRollover pinned,
 *                   the SPKI pin of the key the next certificate will have
 *                   (next.key), published before the switch; else null,
 *       "fleet": only with a shared store (acme_store / AcmeStore, issue
 *                15), for a managed certificate: {"action": what this node
 *                did last ("idle", "install", "wait", "order", "order
 *                alone", "publish": acme_fleet_action_name), "holder": the
 *                node that orders it while this one waits, else null}
 *   } ],
 *   "store": only with a shared store: this node's view of it
 *            (acme_fleet_node_status_json: {"backend": "etcd", "node",
 *             "reachable", "endpoint", "error", "nodes", "locks"}), or
 *            null before the first round with the store
 * }
 */
#ifndef ACME_STATUS_H
#define ACME_STATUS_H

#include <stddef.h>

typedef struct {
    const char          *id;
    const char *const   *names;
    size_t               n_names;
    const char          *issuer;
    const char *const   *issuers;       /* n_issuers 0: "issuers" null */
    size_t               n_issuers;
    const char          *directory;
    const char          *key_type;
    const char          *state;
    const char          *step;          /* NULL -> null */
    const char          *serial;        /* NULL or "" -> null */
    const char          *ca_issuer;     /* NULL or "" -> null */
    long long            not_before;    /* 0 -> null */
    long long            not_after;
    long long            next_renewal;
    long long            last_success;
    const char          *last_error;    /* NULL or "" -> null */
    unsigned             failures;
    const char          *challenge;     /* "dns-01", ...; NULL -> null */
    const char          *store_error;   /* NULL or "" -> null */
    const char          *reason;        /* NULL or "" -> null */
    long long            pending_at;    /* 0: "pending" null */
    long long            pending_not_before;
    long long            pending_not_after;
    const char          *pending_serial;
    const char          *bridge_file;   /* NULL: "bridge" null */
    const char          *bridge_serial;
    long long            bridge_not_before;
    long long            bridge_not_after;
    unsigned             unmanaged:1;   /* "managed": false */
    long long            warn_window;   /* seconds; 0: 10 % of the lifetime */
    const char          *subject;       /* NULL or "" -> null */
    const char *const   *sans;
    size_t               n_sans;
    const char          *file;          /* NULL -> null */
    const char *const   *used_by;
    size_t               n_used_by;
    unsigned long long   orders_valid;
    unsigned long long   orders_invalid;
    unsigned long long   renewals;
    const char          *spki_pin;      /* NULL or "" -> null */
    const char          *next_spki_pin; /* NULL or "" -> null */
    /* ARI (RFC 9773): "ari" null when ari_next_poll is 0 (never asked);
     * else the window, the time chosen in it, the next fetch, the
     * explanationURL and the last fetch's error (0 / NULL / "" -> null),
     * "supported" false when the CA's directory has no renewalInfo */
    long long            ari_start;
    long long            ari_end;
    long long            ari_at;
    long long            ari_next_poll;
    const char          *ari_explanation;
    const char          *ari_error;
    int                  ari_unsupported;
    /* the shared store (issue 15): fleet 1 adds "fleet"; fleet_action
     * NULL -> "idle", fleet_holder NULL or "" -> null */
    int                  fleet;
    const char          *fleet_action;
    const char          *fleet_holder;
} acme_status_cert_t;

/*
 * 1 when a certificate valid [not_before, not_after) is inside its warning
 * window at now (seconds since the epoch): within warn_window seconds of
 * not_after, or, when warn_window is 0, within the last 10 % of its
 * lifetime.  Also 1 once expired, so that an expired certificate never
 * counts as fine; 0 without a certificate (not_after 0).
 */
int acme_status_expiring(long long not_before, long long not_after,
    long long warn_window, long long now);

/* Pretty-printed JSON document, malloc'd; acme_pid <= 0 -> null. */
char *acme_status_render(const char *server, long acme_pid,
    const acme_status_cert_t *certs, size_t n, long long now, size_t *len);

/*
 * The same with the shared store's "store" object: store_json the JSON
 * text of acme_fleet_node_status_json ("" or text that does not parse as
 * an object: "store": null); NULL: no store configured, no "store" key
 * (acme_status_render).
 */
char *acme_status_render_store(const char *server, long acme_pid,
    const char *store_json, const acme_status_cert_t *certs, size_t n,
    long long now, size_t *len);

#endif
