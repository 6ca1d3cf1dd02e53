/*
 * http-01 answers.  Runs in post_read_request (after mod_md's), before any
 * module can map the URL to a file or redirect it to https: the CA must get
 * the key authorization from plain HTTP on port 80 (or pebble's httpPort).
 * The lookup is in shared memory only; unknown or malformed tokens get a
 * 404 without touching the disk.
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_buckets.h"
#include "util_filter.h"

#include "mod_acme_auto.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

int
acme_auto_post_read_request(request_rec *r)
{
    const char          *path = r->parsed_uri.path, *token;
    char                 key_authz[ACME_AUTO_KEYAUTHZ_MAX];
    apr_bucket_brigade  *bb;
    apr_size_t           len;
    size_t               token_len;
    int                  ok;

    ok = path ? acme_http01_token(path, strlen(path), &token, &token_len) : 0;
    if (ok == 0 || !acme_auto_shm_ready()) {
        return DECLINED;
    }
    if (ok != 1
        || !acme_auto_shm_chal_lookup(ACME_CHAL_HTTP_01, token, key_authz,
                                      sizeof(key_authz)))
    {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "mod_acme_auto: no pending http-01 challenge for %s",
                      path);
        return HTTP_NOT_FOUND;
    }
    if (r->method_number != M_GET) {
        /* HEAD is M_GET with header_only set */
        r->allowed = AP_METHOD_BIT << M_GET;
        return HTTP_METHOD_NOT_ALLOWED;
    }

    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "mod_acme_auto: answering http-01 challenge %s", token);
    len = strlen(key_authz);
    r->status = HTTP_OK;
    ap_set_content_type(r, "application/octet-stream");
    ap_set_content_length(r, len);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    if (!r->header_only) {
        apr_brigade_write(bb, NULL, NULL, key_authz, len);
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    return DONE;
}
