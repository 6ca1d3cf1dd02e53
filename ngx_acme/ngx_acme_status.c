/*
 * "acme_status;": the status document of common/acme_status.h for every
 * managed certificate of this configuration, read from the shared zone.
 */

#include "ngx_acme.h"


/* copies of a slot's strings, taken under the zone lock */
typedef struct {
    u_char              serial[80];
    u_char              ca_issuer[256];
    u_char              step[32];
    char                last_error[512];
    char                store_error[256];
} ngx_acme_status_item_t;


static ngx_int_t ngx_acme_status_handler(ngx_http_request_t *r);


char *
ngx_acme_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_acme_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_acme_status_handler(ngx_http_request_t *r)
{
    char                    *json;
    size_t                   len;
    time_t                   now;
    ngx_int_t                rc;
    ngx_buf_t               *b;
    ngx_pid_t                pid;
    ngx_uint_t               i, n, renewing, failures;
    ngx_chain_t              out;
    ngx_acme_cert_t        **certs, *cert;
    ngx_acme_slot_t         *slot;
    ngx_acme_main_conf_t    *amcf;
    acme_status_cert_t      *list, *c;
    ngx_acme_status_item_t  *items, *it;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_acme_module);

    now = ngx_time();
    n = (amcf->shm_zone) ? amcf->certs.nelts : 0;
    pid = (amcf->shm_zone) ? ngx_acme_shm_lease_pid(amcf) : 0;

    items = ngx_pcalloc(r->pool, (n + 1) * sizeof(ngx_acme_status_item_t));
    list = ngx_pcalloc(r->pool, (n + 1) * sizeof(acme_status_cert_t));

    if (items == NULL || list == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    certs = amcf->certs.elts;

    for (i = 0; i < n; i++) {
        cert = certs[i];
        slot = cert->slot;
        it = &items[i];
        c = &list[i];

        c->id = (char *) cert->id.data;
        c->names = (const char *const *) cert->names.elts;
        c->n_names = cert->names.nelts;
        c->issuer = (char *) cert->issuer->name.data;
        c->directory = (char *) cert->issuer->uri.data;
        c->key_type = acme_key_type_name(cert->key_type);
        c->challenge = ngx_acme_challenge_name(cert->challenge);
        c->state = "fallback";

        if (slot == NULL) {
            continue;
        }

        ngx_acme_shm_lock(amcf);

        ngx_memcpy(it->serial, slot->serial, sizeof(it->serial));
        ngx_memcpy(it->ca_issuer, slot->ca_issuer, sizeof(it->ca_issuer));
        ngx_memcpy(it->step, slot->step, sizeof(it->step));
        ngx_memcpy(it->last_error, slot->st.last_error,
                   sizeof(it->last_error));
        ngx_memcpy(it->store_error, slot->store_error,
                   sizeof(it->store_error));

        c->not_before = slot->bundle ? slot->not_before : 0;
        c->not_after = slot->bundle ? slot->not_after : 0;
        c->next_renewal = slot->next_renewal;
        c->last_success = slot->st.last_success;
        failures = slot->st.failures;
        renewing = slot->renewing;

        /* the type of the running attempt, else of the last one */

        if (renewing) {
            c->challenge = ngx_acme_challenge_name(
                               ngx_acme_cert_challenge(cert, failures));

        } else if (failures) {
            c->challenge = ngx_acme_challenge_name(
                               ngx_acme_cert_challenge(cert, failures - 1));

        } else if (slot->challenge) {
            c->challenge = ngx_acme_challenge_name(slot->challenge - 1);
        }

        if (slot->bundle == NULL) {
            c->state = failures ? "failed" : "fallback";

        } else if (slot->not_after <= now) {
            c->state = "expired";

        } else {
            c->state = "valid";
        }

        if (slot->bundle && slot->active != slot->generation) {
            /* issued, waiting until every worker has parsed it */
            renewing = 1;
            ngx_cpystrn(it->step, (u_char *) "install", sizeof(it->step));
        }

        if (renewing) {
            c->state = "renewing";
        }

        ngx_acme_shm_unlock(amcf);

        it->serial[sizeof(it->serial) - 1] = '\0';
        it->ca_issuer[sizeof(it->ca_issuer) - 1] = '\0';
        it->step[sizeof(it->step) - 1] = '\0';
        it->last_error[sizeof(it->last_error) - 1] = '\0';
        it->store_error[sizeof(it->store_error) - 1] = '\0';

        c->failures = (unsigned) failures;
        c->serial = (char *) it->serial;
        c->ca_issuer = (char *) it->ca_issuer;
        c->step = (renewing && it->step[0]) ? (char *) it->step : NULL;
        c->last_error = it->last_error;
        c->store_error = it->store_error;
    }

    json = acme_status_render("nginx", (long) pid, list, n, (long long) now,
                              &len);

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
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
