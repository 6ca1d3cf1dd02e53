/*
 * "acme_status;": the status document of common/core/acme_status.h for every
 * managed certificate of this configuration, read from the shared zone:
 * each slot's record (acme_job_status_t) through acme_job_status_view;
 * then the certificates servers load from files (ngx_acme_inventory.c).
 */

#include "ngx_acme.h"
#include "acme_status_view.h"


static ngx_int_t ngx_acme_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_acme_status_control_handler(ngx_http_request_t *r);
static ngx_int_t ngx_acme_status_handle(ngx_http_request_t *r,
    ngx_uint_t control);
static ngx_int_t ngx_acme_status_view(ngx_http_request_t *r, int *format);
static ngx_int_t ngx_acme_status_header(ngx_http_request_t *r,
    const char *name, const char *value);


/* "acme_status [control];": control lets POST renew / revoke
 * (ngx_acme_control.c) */
char *
ngx_acme_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_acme_status_handler;

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        if (ngx_strcmp(value[1].data, "control") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of \"acme_status\":"
                               " the only one is \"control\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        clcf->handler = ngx_acme_status_control_handler;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_acme_status_handler(ngx_http_request_t *r)
{
    return ngx_acme_status_handle(r, 0);
}


static ngx_int_t
ngx_acme_status_control_handler(ngx_http_request_t *r)
{
    return ngx_acme_status_handle(r, 1);
}


/* One certificate's entry of the document, from its slot. */
void
ngx_acme_status_cert(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    time_t now, acme_job_status_t *rec, acme_status_cert_t *c)
{
    size_t            k;
    ngx_acme_slot_t  *slot;

    slot = cert->slot;

    if (slot != NULL) {
        ngx_acme_shm_lock(amcf);

        *rec = slot->status;
        rec->have_cert = (slot->bundle != NULL);

        if (slot->bundle && slot->active != slot->generation) {
            /* issued, waiting until every worker has parsed it */
            rec->renewing = 1;
            ngx_cpystrn((u_char *) rec->step, (u_char *) "install",
                        sizeof(rec->step));
        }

        ngx_acme_shm_unlock(amcf);
    }

    acme_job_status_view(rec, (long long) now, cert->challenges,
                         cert->n_challenges, c);
    acme_job_status_bridge(rec, cert->bridge, c);

    c->id = (char *) cert->id.data;
    c->names = (const char *const *) cert->names.elts;
    c->n_names = cert->names.nelts;
    /* the issuer that issued the served certificate (fallback=) */
    k = acme_failover_find(cert->issuer_names, cert->n_issuers,
                           rec->issued_by);
    c->issuer = cert->issuer_names[k];
    c->issuers = cert->issuer_names;
    c->n_issuers = cert->n_issuers;
    c->directory = (char *) cert->issuers[k]->conf.directory;
    c->key_type = acme_key_type_name(cert->key_type);
    c->warn_window = cert->issuer->conf.expiry_warning;
    /* acme_store: "fleet" (rec->fleet_action, fleet_holder) */
    c->fleet = (amcf->fleet != NULL);
}


static ngx_int_t
ngx_acme_status_handle(ngx_http_request_t *r, ngx_uint_t control)
{
    char                    *json;
    size_t                   len;
    int                      format;
    time_t                   now;
    ngx_int_t                rc;
    ngx_buf_t               *b;
    ngx_pid_t                pid;
    ngx_uint_t               i, n;
    ngx_chain_t              out;
    ngx_acme_cert_t        **certs;
    ngx_acme_main_conf_t    *amcf;
    acme_status_cert_t      *list;
    acme_job_status_t       *recs;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        /* GET never changes anything; POST renew / revoke */
        return ngx_acme_control_handler(r, control);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_acme_status_view(r, &format) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (format < 0) {
        /* an unknown ?format= */
        return NGX_HTTP_BAD_REQUEST;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_acme_module);

    now = ngx_time();
    n = (amcf->shm_zone) ? amcf->certs.nelts : 0;
    pid = (amcf->shm_zone) ? ngx_acme_shm_lease_pid(amcf) : 0;

    recs = ngx_pcalloc(r->pool, (n + 1) * sizeof(acme_job_status_t));
    list = ngx_pcalloc(r->pool, (n + 1) * sizeof(acme_status_cert_t));

    if (recs == NULL || list == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    certs = amcf->certs.elts;

    for (i = 0; i < n; i++) {
        ngx_acme_status_cert(amcf, certs[i], now, &recs[i], &list[i]);
    }

    list = ngx_acme_inventory_status(r, amcf, list, n, &n, now);
    if (list == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json = acme_status_render_as_store(format, "nginx", (long) pid,
                                       (char *) ngx_acme_fleet_status(amcf,
                                                                      r->pool),
                                       list, n, (long long) now, &len);

    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        free(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, json, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;
    free(json);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data =
                          (u_char *) acme_status_content_type(format);
    r->headers_out.content_type.len =
                          ngx_strlen(r->headers_out.content_type.data);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (ngx_acme_status_header(r, "Cache-Control", "no-store") != NGX_OK
        || ngx_acme_status_header(r, "Vary", "Accept") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* *format: the view (acme_status_format: ?format=, else Accept; -1
 * unknown); NGX_ERROR out of memory. */
static ngx_int_t
ngx_acme_status_view(ngx_http_request_t *r, int *format)
{
    u_char           *accept;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    accept = NULL;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Accept") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               sizeof("Accept") - 1) == 0)
        {
            /* a NUL-terminated copy (HTTP/2 values need not end in one) */
            accept = ngx_pnalloc(r->pool, h[i].value.len + 1);
            if (accept == NULL) {
                return NGX_ERROR;
            }

            ngx_cpystrn(accept, h[i].value.data, h[i].value.len + 1);
            break;
        }
    }

    *format = acme_status_format((const char *) r->args.data, r->args.len,
                                 (const char *) accept);

    return NGX_OK;
}


static ngx_int_t
ngx_acme_status_header(ngx_http_request_t *r, const char *name,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}
