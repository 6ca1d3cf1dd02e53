/*
 * http-01 (RFC 8555 section 8.3): answers
 * GET /.well-known/acme-challenge/<token> in every server from the tokens
 * the ACME job published in the shared zone.  Runs in the POST_READ phase so
 * no rewrite, location or access rule of the server can get in the way, and
 * never touches the file system.
 */

#include "ngx_acme.h"


static ngx_int_t ngx_acme_challenge_handler(ngx_http_request_t *r);


ngx_int_t
ngx_acme_challenge_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_acme_challenge_handler;

    return NGX_OK;
}


static ngx_int_t
ngx_acme_challenge_handler(ngx_http_request_t *r)
{
    int                    ok;
    u_char                *token;
    size_t                 len, n;
    ngx_int_t              rc;
    ngx_buf_t             *b;
    ngx_chain_t            out;
    ngx_acme_main_conf_t  *amcf;
    u_char                 buf[NGX_ACME_KEYAUTHZ_LEN + 1];

    /* base64url only (RFC 8555 section 8.3): nothing else is looked up */

    ok = acme_http01_token((const char *) r->uri.data, r->uri.len,
                           (const char **) &token, &len);
    if (ok == 0) {
        return NGX_DECLINED;
    }

    /* a subrequest or an internal redirect was already decided on */
    if (r != r->main || r->internal) {
        return NGX_DECLINED;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_acme_module);

    if (amcf->shm_zone == NULL) {
        return NGX_DECLINED;
    }

    if (ok != 1) {
        return NGX_HTTP_NOT_FOUND;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    n = sizeof(buf);

    if (ngx_acme_shm_find(amcf, ACME_CHAL_HTTP_01, (char *) token, len, buf,
                          &n)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "acme: http-01 token \"%*s\" is not pending", len,
                      token);
        return NGX_HTTP_NOT_FOUND;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "acme: answering http-01 token \"%*s\"", len, token);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = n;
    ngx_str_set(&r->headers_out.content_type, "application/octet-stream");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    b = ngx_create_temp_buf(r->pool, n);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, buf, n);
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));
    return NGX_DONE;
}
