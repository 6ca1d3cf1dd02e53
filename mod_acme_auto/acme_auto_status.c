/*
 * "SetHandler acme-status": the status document shared with the nginx
 * module (acme_status.h), rendered from shared memory without locks: each
 * slot's record (acme_job_status_t) through acme_job_status_view; as JSON,
 * Prometheus text or HTML (acme_status_view.h), and mod_status' lines;
 * after the managed certificates those vhosts load from files
 * (acme_auto_inventory.c).
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
#include "acme_cert.h"
#include "acme_key.h"
#include "acme_status.h"
#include "acme_status_view.h"
#include "mod_status.h"

APLOG_USE_MODULE(acme_auto);

/* One certificate's entry of the document, from its slot's record st. */
void
acme_auto_status_cert(acme_auto_cert_t *c, long long now,
    const acme_auto_slot_status_t *st, acme_status_cert_t *out)
{
    size_t k;

    out->id = c->id;
    out->names = c->names;
    out->n_names = c->n_names;
    /* the issuer that issued the served certificate (fallback=) */
    k = acme_failover_find(c->issuer_names, (size_t) c->n_issuers,
                           st->issued_by);
    out->issuer = c->issuers[k]->conf.name;
    out->issuers = c->issuer_names;
    out->n_issuers = (size_t) c->n_issuers;
    out->directory = c->issuers[k]->conf.directory;
    out->key_type = acme_key_type_name(c->key_type);
    out->warn_window = c->issuer->conf.expiry_warning;
    acme_job_status_view(st, now, c->challenges, c->n_challenges, out);
    acme_job_status_bridge(st, c->bridge, out);
}

/* Every certificate of this configuration as the status renderers take
 * them (*n of them), from the shared slots, then the inventory's;
 * allocated from p. */
static acme_status_cert_t *
status_certs(apr_pool_t *p, long long now, int *n)
{
    acme_status_cert_t      *certs;
    acme_auto_slot_status_t *st;
    int                      i;

    *n = acme_auto_g.certs ? acme_auto_g.certs->nelts : 0;
    certs = apr_pcalloc(p, sizeof(*certs) * (*n ? *n : 1));
    st = apr_pcalloc(p, sizeof(*st) * (*n ? *n : 1));
    for (i = 0; i < *n; i++) {
        acme_auto_cert_t *c = APR_ARRAY_IDX(acme_auto_g.certs, i,
                                            acme_auto_cert_t *);
        acme_auto_shm_get_status(c->slot, &st[i]);
        acme_auto_status_cert(c, now, &st[i], &certs[i]);
        /* AcmeStore: "fleet" (the record's fleet_action, fleet_holder) */
        certs[i].fleet = acme_auto_srv_conf(acme_auto_g.base)->store != NULL;
    }
    return acme_auto_inventory_status(p, certs, *n, n, now);
}

int
acme_auto_status_handler(request_rec *r)
{
    acme_status_cert_t      *certs;
    char                    *doc, *store = NULL;
    size_t                   len = 0;
    int                      n, format;
    long long                now = (long long) time(NULL);

    if (r->handler == NULL || strcmp(r->handler, ACME_AUTO_HANDLER) != 0) {
        return DECLINED;
    }
    r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
    if (r->method_number != M_GET) {
        /* GET never changes anything; POST renew / revoke */
        return acme_auto_control_handler(r);
    }
    /* JSON, Prometheus or HTML (acme_status_view.h) */
    format = acme_status_format(r->args, r->args ? strlen(r->args) : 0,
                                apr_table_get(r->headers_in, "Accept"));
    if (format < 0) {
        return HTTP_BAD_REQUEST;
    }

    certs = status_certs(r->pool, now, &n);
    if (acme_auto_g.base != NULL
        && acme_auto_srv_conf(acme_auto_g.base)->store != NULL)
    {
        /* AcmeStore: "store", the driver's view */
        store = apr_palloc(r->pool, ACME_AUTO_STORE_MAX);
        acme_auto_shm_get_store(store, ACME_AUTO_STORE_MAX);
    }
    doc = acme_status_render_as_store(format, "apache",
                                      acme_auto_shm_acme_pid(), store, certs,
                                      n, now, &len);
    if (doc == NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_set_content_type(r, acme_status_content_type(format));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_mergen(r->headers_out, "Vary", "Accept");
    ap_set_content_length(r, len);
    if (!r->header_only) {
        ap_rwrite(doc, (int) len, r);
    }
    free(doc);
    return OK;
}

/* mod_status (when loaded): the counts in ?auto, a table in the page, as
 * mod_md does (acme_status_server_status). */
int
acme_auto_status_hook(request_rec *r, int flags)
{
    acme_status_cert_t      *certs;
    char                    *text;
    size_t                   len = 0;
    int                      n;
    long long                now = (long long) time(NULL);

    if (!acme_auto_shm_ready()) {
        return OK;
    }
    certs = status_certs(r->pool, now, &n);
    text = acme_status_server_status(certs, n, now,
                                     (flags & AP_STATUS_SHORT) != 0, &len);
    if (text != NULL) {
        ap_rwrite(text, (int) len, r);
        free(text);
    }
    return OK;
}

int
acme_auto_status_from_pem(const char *pem, apr_size_t len,
    acme_auto_slot_status_t *st)
{
    acme_cert_info_t info;
    char             err[ACME_ERRLEN];

    memset(&info, 0, sizeof(info));
    if (acme_cert_info_from_pem(pem, len, &info, err, sizeof(err)) != 0) {
        return -1;
    }
    acme_job_status_set_cert(st, info.not_before, info.not_after,
                             info.serial, info.issuer, info.spki_pin);
    acme_cert_info_free(&info);
    return 0;
}
