/*
 * "AcmeStatusControl on" where "SetHandler acme-status" is: renew now,
 * revoke now (common/core/acme_control.h has the rules).  A POST lands in
 * any child: it leaves a request in the certificate's shared-memory slot,
 * which the driving child's next watchdog tick takes up (watch_tick: due
 * at once; job_spawn: a revoke makes the order revoke the served
 * certificate first), and answers 202 with the status of the certificates
 * concerned.
 */
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_log.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_control.h"
#include "acme_status.h"

APLOG_USE_MODULE(acme_auto);

void *
acme_auto_create_dir_conf(apr_pool_t *p, char *dir)
{
    acme_auto_dir_conf_t *dc = apr_pcalloc(p, sizeof(*dc));

    (void) dir;
    dc->control = -1;
    return dc;
}

void *
acme_auto_merge_dir_conf(apr_pool_t *p, void *base, void *add)
{
    acme_auto_dir_conf_t *b = base, *a = add, *m = apr_pcalloc(p, sizeof(*m));

    m->control = a->control != -1 ? a->control : b->control;
    return m;
}

static int
send_text(request_rec *r, int status, const char *msg)
{
    r->status = status;
    ap_set_content_type(r, "text/plain");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rprintf(r, "%s\n", msg);
    return OK;
}

int
acme_auto_control_handler(request_rec *r)
{
    acme_auto_dir_conf_t    *dc;
    acme_status_cert_t      *certs;
    acme_auto_slot_status_t *st;
    acme_control_kind_t      kind;
    const char              *origin, *host;
    char                     id[256], msg[256], *doc;
    size_t                   len = 0;
    long long                now = (long long) time(NULL);
    int                      i, n, found = 0, missing = 0, reason, rc;

    rc = ap_discard_request_body(r);
    if (rc != OK) {
        return rc;
    }
    dc = ap_get_module_config(r->per_dir_config, &acme_auto_module);
    origin = apr_table_get(r->headers_in, "Origin");
    host = apr_table_get(r->headers_in, "Host");
    rc = acme_control_check(r->method_number == M_POST,
                            dc != NULL && dc->control == 1,
                            origin, origin ? strlen(origin) : 0,
                            host, host ? strlen(host) : 0,
                            r->uri, strlen(r->uri),
                            r->args, r->args ? strlen(r->args) : 0,
                            &kind, &reason, id, sizeof(id), msg, sizeof(msg));
    if (rc == HTTP_METHOD_NOT_ALLOWED) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (rc != 0) {
        return send_text(r, rc, msg);
    }

    n = acme_auto_g.certs ? acme_auto_g.certs->nelts : 0;
    certs = apr_pcalloc(r->pool, sizeof(*certs) * (n ? n : 1));
    st = apr_pcalloc(r->pool, sizeof(*st) * (n ? n : 1));
    for (i = 0; i < n; i++) {
        acme_auto_cert_t *c = APR_ARRAY_IDX(acme_auto_g.certs, i,
                                            acme_auto_cert_t *);
        if (strcmp(id, "all") != 0 && strcmp(id, c->id) != 0) {
            continue;
        }
        acme_auto_shm_get_status(c->slot, &st[found]);
        if (kind == ACME_CONTROL_REVOKE && !st[found].have_cert) {
            missing = 1;
        }
        else if (acme_auto_shm_control_ask(c->slot, kind, reason) != 0) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        else {
            ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "mod_acme_auto: "
                          "%s: %s%s%s asked for at the status location",
                          c->id, kind == ACME_CONTROL_REVOKE
                                 ? "revocation (" : "renewal",
                          kind == ACME_CONTROL_REVOKE
                          ? acme_control_reason_name(reason) : "",
                          kind == ACME_CONTROL_REVOKE ? ")" : "");
        }
        acme_auto_status_cert(c, now, &st[found], &certs[found]);
        found++;
    }
    if (found == 0) {
        return send_text(r, HTTP_NOT_FOUND,
                         apr_psprintf(r->pool, "no managed certificate "
                                      "\"%s\"", id));
    }
    if (missing) {
        return send_text(r, HTTP_CONFLICT,
                         apr_psprintf(r->pool, "certificate \"%s\" is not "
                                      "issued yet: nothing to revoke", id));
    }

    doc = acme_status_render("apache", acme_auto_shm_acme_pid(), certs,
                             (size_t) found, now, &len);
    if (doc == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    r->status = HTTP_ACCEPTED;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, len);
    ap_rwrite(doc, (int) len, r);
    free(doc);
    return OK;
}
