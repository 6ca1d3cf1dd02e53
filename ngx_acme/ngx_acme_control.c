/*
 * "acme_status control;": renew now, revoke now (common/core/acme_control.h
 * has the rules).  A POST lands in any worker: it leaves a request in the
 * certificate's slot (acme_control_t), which the lease holder's next tick
 * takes up (ngx_acme_schedule: due at once; ngx_acme_job_start: a revoke
 * makes the order revoke the served certificate first), and answers 202
 * with the status of the certificates concerned.  Nothing here blocks.
 */

#include "ngx_acme.h"
#include "ngx_acme_job_local.h"


static ngx_int_t ngx_acme_control_send(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, u_char *body, size_t len);
static ngx_table_elt_t *ngx_acme_control_header(ngx_http_request_t *r,
    const char *name, size_t len);


ngx_int_t
ngx_acme_control_handler(ngx_http_request_t *r, ngx_uint_t enabled)
{
    int                    reason, st;
    char                  *json, id[NGX_ACME_ID_LEN], msg[256];
    size_t                 len;
    time_t                 now;
    ngx_int_t              rc;
    ngx_uint_t             i, n, found, missing;
    ngx_table_elt_t       *origin, *host;
    ngx_acme_cert_t      **certs, *cert;
    ngx_acme_slot_t       *slot;
    ngx_acme_main_conf_t  *amcf;
    acme_status_cert_t    *list;
    acme_job_status_t     *recs;
    acme_control_kind_t    kind;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    origin = ngx_acme_control_header(r, "Origin", sizeof("Origin") - 1);
    host = r->headers_in.host;

    st = acme_control_check(r->method == NGX_HTTP_POST, (int) enabled,
                            origin ? (char *) origin->value.data : NULL,
                            origin ? origin->value.len : 0,
                            host ? (char *) host->value.data : NULL,
                            host ? host->value.len : 0,
                            (char *) r->uri.data, r->uri.len,
                            (char *) r->args.data, r->args.len,
                            &kind, &reason, id, sizeof(id), msg, sizeof(msg));

    if (st == NGX_HTTP_NOT_ALLOWED) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (st != 0) {
        len = ngx_strlen(msg);
        msg[len++] = '\n';
        return ngx_acme_control_send(r, st, "text/plain", (u_char *) msg, len);
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_acme_module);
    n = (amcf->shm_zone) ? amcf->certs.nelts : 0;
    certs = amcf->certs.elts;
    now = ngx_time();

    recs = ngx_pcalloc(r->pool, (n + 1) * sizeof(acme_job_status_t));
    list = ngx_pcalloc(r->pool, (n + 1) * sizeof(acme_status_cert_t));

    if (recs == NULL || list == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    found = 0;
    missing = 0;

    for (i = 0; i < n; i++) {
        cert = certs[i];
        slot = cert->slot;

        if (slot == NULL
            || (ngx_strcmp(id, "all") != 0
                && ngx_strcmp(id, cert->id.data) != 0))
        {
            continue;
        }

        ngx_acme_shm_lock(amcf);

        if (kind == ACME_CONTROL_REVOKE && slot->bundle == NULL) {
            missing = 1;

        } else if (kind == ACME_CONTROL_REVOKE) {
            acme_control_revoke(&slot->control, reason);

        } else {
            acme_control_renew(&slot->control);
        }

        ngx_acme_shm_unlock(amcf);

        if (!missing) {
            ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                          "acme: certificate \"%V\": %s%s%s asked for at "
                          "the status location by %V", &cert->id,
                          kind == ACME_CONTROL_REVOKE ? "revocation ("
                                                      : "renewal",
                          kind == ACME_CONTROL_REVOKE
                              ? acme_control_reason_name(reason) : "",
                          kind == ACME_CONTROL_REVOKE ? ")" : "",
                          &r->connection->addr_text);
        }

        ngx_acme_status_cert(amcf, cert, now, &recs[found], &list[found]);
        found++;
    }

    if (found == 0) {
        len = ngx_snprintf((u_char *) msg, sizeof(msg) - 1,
                           "no managed certificate \"%s\"\n", id)
              - (u_char *) msg;
        return ngx_acme_control_send(r, NGX_HTTP_NOT_FOUND, "text/plain",
                                     (u_char *) msg, len);
    }

    if (missing) {
        len = ngx_snprintf((u_char *) msg, sizeof(msg) - 1,
                           "certificate \"%s\" is not issued yet: nothing "
                           "to revoke\n", id)
              - (u_char *) msg;
        return ngx_acme_control_send(r, NGX_HTTP_CONFLICT, "text/plain",
                                     (u_char *) msg, len);
    }

    json = acme_status_render("nginx", (long) ngx_acme_shm_lease_pid(amcf),
                              list, found, (long long) now, &len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_acme_control_send(r, NGX_HTTP_ACCEPTED, "application/json",
                               (u_char *) json, len);
    free(json);

    return rc;
}


static ngx_int_t
ngx_acme_control_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, body, len);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_table_elt_t *
ngx_acme_control_header(ngx_http_request_t *r, const char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * The order's first step revoked the served certificate at the CA (engine
 * ACME_ACT_REVOKED): the slot's state and status say "revoked" until the
 * replacement the same order goes on to get is served, and state.json
 * says so at once (a restart orders the replacement too); the "revoked"
 * event goes to the event program with the revoked certificate's facts.
 * NGX_OK: the state task is posted (its end resumes the engine), else
 * the engine goes on at once.
 */
ngx_int_t
ngx_acme_control_revoked(ngx_acme_job_t *job)
{
    ngx_uint_t          ok;
    const char         *event;
    ngx_acme_slot_t    *slot;
    acme_job_status_t   rec;

    slot = job->cert->slot;
    job->revoked = 1;

    ngx_acme_shm_lock(job->amcf);

    ok = ngx_acme_shm_fence_ok_locked(job->amcf, job->fence);

    if (ok) {
        acme_job_revoked(&slot->st, &slot->status, (long long) ngx_time());
        job->st = slot->st;
    }

    /* the revoked certificate's facts, for the log and the event */
    rec = slot->status;
    rec.serial[sizeof(rec.serial) - 1] = '\0';
    event = acme_event_revoked(&slot->events);

    ngx_acme_shm_unlock(job->amcf);

    ngx_log_error(NGX_LOG_NOTICE, job->log, 0,
                  "acme: certificate \"%V\": serial %s revoked at the CA "
                  "(reason %s); ordering its replacement with a new key",
                  &job->cert->id, rec.serial,
                  acme_control_reason_name(job->revoke_reason)
                  ? acme_control_reason_name(job->revoke_reason) : "none");

    /* "revoked": the event program (acme_event.h) */
    ngx_acme_event_emit_slot(job->amcf, job->cert, event, &rec, job->log);

    if (!ok || job->root == NULL) {
        return NGX_DECLINED;
    }

    return ngx_acme_job_post(job, NGX_ACME_TASK_REVOKED);
}
