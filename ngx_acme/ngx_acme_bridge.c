/*
 * The bridge: a server's own "ssl_certificate" / "ssl_certificate_key"
 * (file paths, e.g. certbot's) next to "acme_certificate" are served
 * instead of the placeholder until the first managed certificate is.
 *
 * ngx_http_ssl_module loads them into the server's SSL_CTX as usual (this
 * module's merge runs first and takes the placeholder out); each worker
 * (ngx_acme_ssl.c) leaves the context's certificates alone while nothing
 * is issued and installs the managed ones over them from then on, with the
 * cert callback while a bridge certificate of another key type would still
 * be served, so a stored or newly issued certificate is always served
 * instead.  The
 * status shows the bridge while it is served (acme_job_status_bridge), and
 * the first issuance says once that it is no longer used.
 */

#include "ngx_acme.h"
#include "acme_job_store.h"


static ngx_uint_t ngx_acme_bridge_own(ngx_array_t *a, u_char *data);
static void ngx_acme_bridge_drop(ngx_array_t *a, u_char *data);


/*
 * From ngx_acme_merge_srv_conf, before ngx_http_ssl_module merges: the
 * placeholder the acme_certificate directive added is taken out when the
 * server has its own certificate and key, which become the bridge.
 */
ngx_int_t
ngx_acme_bridge_merge(ngx_conf_t *cf, ngx_acme_srv_conf_t *ascf,
    ngx_http_ssl_srv_conf_t *sscf)
{
    char                err[ACME_ERRLEN];
    ngx_str_t           name, *s;
    ngx_uint_t          i, n;
    ngx_array_t        *certs, *keys;
    acme_job_bridge_t  *b;

    certs = (sscf->certificates == NGX_CONF_UNSET_PTR) ? NULL
                                                        : sscf->certificates;
    keys = (sscf->certificate_keys == NGX_CONF_UNSET_PTR)
           ? NULL : sscf->certificate_keys;

    if (ascf->fallback_cert) {
        /* ssl_certificate after acme_certificate: next to the placeholder */
        if (ngx_acme_bridge_own(certs, ascf->fallback_cert->data) == 0
            && ngx_acme_bridge_own(keys, ascf->fallback_key->data) == 0)
        {
            return NGX_OK;      /* no bridge: the placeholder is served */
        }

        ngx_acme_bridge_drop(certs, ascf->fallback_cert->data);
        ngx_acme_bridge_drop(keys, ascf->fallback_key->data);
    }

    n = certs ? certs->nelts : 0;

    if (n == 0 || keys == NULL || keys->nelts != n) {
        ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                            "\"ssl_certificate\" next to "
                            "\"acme_certificate\" needs as many "
                            "\"ssl_certificate_key\": they are the "
                            "certificate served until the first managed "
                            "one is");
        return NGX_ERROR;
    }

    s = certs->elts;

    for (i = 0; i < n; i++) {
        if (ngx_strlchr(s[i].data, s[i].data + s[i].len, '$') != NULL
            || ngx_strlchr(((ngx_str_t *) keys->elts)[i].data,
                           ((ngx_str_t *) keys->elts)[i].data
                           + ((ngx_str_t *) keys->elts)[i].len, '$')
               != NULL)
        {
            ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                "\"ssl_certificate\" and "
                                "\"ssl_certificate_key\" with variables "
                                "cannot be used next to "
                                "\"acme_certificate\": only files are "
                                "served until the first managed "
                                "certificate is");
            return NGX_ERROR;
        }
    }

    /* the first certificate is what the status shows */

    name = s[0];

    if (!(name.len > 5 && ngx_strncmp(name.data, "data:", 5) == 0)
        && ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    b = ngx_pcalloc(cf->pool, sizeof(acme_job_bridge_t));
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (acme_job_bridge_load(b, (char *) ngx_acme_cstr(cf->pool, &name),
                             err, sizeof(err))
        != 0)
    {
        /* ngx_http_ssl_module says more when it loads the file */
        ngx_acme_conf_warn(cf->log, ascf->file, ascf->line,
                           "the certificate in \"ssl_certificate\" cannot "
                           "be inspected: %s", err);
    }

    ascf->bridge = b;
    ascf->fallback_cert = NULL;
    ascf->fallback_key = NULL;

    return NGX_OK;
}


/* How many entries are the server's own (not the placeholder's data). */
static ngx_uint_t
ngx_acme_bridge_own(ngx_array_t *a, u_char *data)
{
    ngx_str_t   *s;
    ngx_uint_t   i, n;

    if (a == NULL) {
        return 0;
    }

    s = a->elts;

    for (i = 0, n = 0; i < a->nelts; i++) {
        if (s[i].data != data) {
            n++;
        }
    }

    return n;
}


/* Takes out every entry whose data is the placeholder's. */
static void
ngx_acme_bridge_drop(ngx_array_t *a, u_char *data)
{
    ngx_str_t   *s;
    ngx_uint_t   i, k;

    if (a == NULL) {
        return;
    }

    s = a->elts;

    for (i = 0, k = 0; i < a->nelts; i++) {
        if (s[i].data != data) {
            s[k++] = s[i];
        }
    }

    a->nelts = k;
}


/*
 * The first managed certificate (serial) is served where the bridge was:
 * said once, by the worker that installed it (ngx_acme_job_finished).
 */
void
ngx_acme_bridge_retired(ngx_acme_cert_t *cert, const char *serial,
    ngx_log_t *log)
{
    char  msg[2 * ACME_ERRLEN];

    if (cert->bridge == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0, "acme: certificate \"%V\": %s",
                  &cert->id, acme_job_bridge_retired_text(cert->bridge,
                                                          serial, msg,
                                                          sizeof(msg)));
}
