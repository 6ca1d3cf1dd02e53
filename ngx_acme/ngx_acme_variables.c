/*
 * $acme_certificate and $acme_certificate_key, as the official nginx-acme
 * module has them (issue 11):
 *
 *   - "ssl_certificate $acme_certificate; ssl_certificate_key
 *     $acme_certificate_key;" in a server with acme_certificate means "the
 *     managed certificate": the pair is taken out of ngx_http_ssl_module's
 *     configuration before it merges (ngx_acme_variables_ssl_pair), so nginx
 *     never loads a certificate per handshake there; the server gets the
 *     parsed objects of ngx_acme_ssl.c like any managed server.
 *   - anywhere else (map, return, log_format) they evaluate as nginx-acme's
 *     do: "data:" followed by the PEM of the server's current certificate
 *     chain / private key; not found before the first issuance or in a
 *     server without acme_certificate.
 */

#include "ngx_acme.h"


#define NGX_ACME_VAR_CERT      0
#define NGX_ACME_VAR_KEY       1


static ngx_int_t ngx_acme_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_uint_t ngx_acme_variables_strip(ngx_array_t *a, ngx_str_t *name);


static ngx_http_variable_t  ngx_acme_vars[] = {

    { ngx_string("acme_certificate"), NULL, ngx_acme_variable,
      NGX_ACME_VAR_CERT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("acme_certificate_key"), NULL, ngx_acme_variable,
      NGX_ACME_VAR_KEY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_acme_var_cert_name = ngx_string("$acme_certificate");
static ngx_str_t  ngx_acme_var_key_name = ngx_string("$acme_certificate_key");


/* preconfiguration */
ngx_int_t
ngx_acme_variables_add(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_acme_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* Removes the entries equal to name; how many there were. */
static ngx_uint_t
ngx_acme_variables_strip(ngx_array_t *a, ngx_str_t *name)
{
    ngx_str_t   *s;
    ngx_uint_t   i, j, n;

    if (a == NULL || a == NGX_CONF_UNSET_PTR) {
        return 0;
    }

    s = a->elts;
    n = 0;

    for (i = 0, j = 0; i < a->nelts; i++) {
        if (s[i].len == name->len
            && ngx_strncmp(s[i].data, name->data, name->len) == 0)
        {
            n++;
            continue;
        }

        s[j++] = s[i];
    }

    a->nelts = j;

    return n;
}


/*
 * Takes "ssl_certificate $acme_certificate" and "ssl_certificate_key
 * $acme_certificate_key" out of the server's ngx_http_ssl_module
 * configuration (called by acme_certificate, and by our merge, which runs
 * before ngx_http_ssl_module's: the pair may come before or after
 * acme_certificate).  An array left empty is unset again.  NGX_OK: the pair
 * was there, NGX_DECLINED: neither, NGX_ERROR: only one of them (logged).
 */
ngx_int_t
ngx_acme_variables_ssl_pair(ngx_conf_t *cf, u_char *file, ngx_uint_t line)
{
    ngx_uint_t                nc, nk;
    ngx_http_ssl_srv_conf_t  *sscf;

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    nc = ngx_acme_variables_strip(sscf->certificates,
                                  &ngx_acme_var_cert_name);
    nk = ngx_acme_variables_strip(sscf->certificate_keys,
                                  &ngx_acme_var_key_name);

    if (nc == 0 && nk == 0) {
        return NGX_DECLINED;
    }

    if (sscf->certificates != NGX_CONF_UNSET_PTR
        && sscf->certificates->nelts == 0)
    {
        sscf->certificates = NGX_CONF_UNSET_PTR;
    }

    if (sscf->certificate_keys != NGX_CONF_UNSET_PTR
        && sscf->certificate_keys->nelts == 0)
    {
        sscf->certificate_keys = NGX_CONF_UNSET_PTR;
    }

    if (nc != 1 || nk != 1) {
        ngx_acme_conf_error(cf->log, file, line,
                            "\"ssl_certificate $acme_certificate\" and "
                            "\"ssl_certificate_key $acme_certificate_key\" "
                            "go together, once each, in a server with "
                            "\"acme_certificate\"");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The key PEM block and the chain (first certificate to the end) of a
 * bundle (acme_bundle_join: key PEM then chain PEM).  NGX_ERROR: a part is
 * missing.
 */
static ngx_int_t
ngx_acme_variables_split(u_char *pem, size_t len, ngx_str_t *key,
    ngx_str_t *chain)
{
    u_char  *p, *e, *last;

    last = pem + len;

    p = ngx_strlcasestrn(pem, last, (u_char *) "-----BEGIN CERTIFICATE",
                         sizeof("-----BEGIN CERTIFICATE") - 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    chain->data = p;
    chain->len = last - p;

    p = ngx_strlcasestrn(pem, last, (u_char *) "-----BEGIN ",
                         sizeof("-----BEGIN ") - 2);
    e = ngx_strlcasestrn(pem, last, (u_char *) "PRIVATE KEY-----",
                         sizeof("PRIVATE KEY-----") - 2);
    if (p == NULL || e == NULL || p >= chain->data) {
        return NGX_ERROR;
    }

    /* the END line */

    e = ngx_strlcasestrn(e + 1, last, (u_char *) "PRIVATE KEY-----",
                         sizeof("PRIVATE KEY-----") - 2);
    if (e == NULL) {
        return NGX_ERROR;
    }

    e += sizeof("PRIVATE KEY-----") - 1;

    if (e < last && *e == '\n') {
        e++;
    }

    key->data = p;
    key->len = e - p;

    return NGX_OK;
}


static ngx_int_t
ngx_acme_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                *p, *copy;
    size_t                 len;
    ngx_str_t              key, chain, *part;
    ngx_acme_slot_t       *slot;
    ngx_acme_srv_conf_t   *ascf;
    ngx_acme_main_conf_t  *amcf;

    v->not_found = 1;

    ascf = ngx_http_get_module_srv_conf(r, ngx_http_acme_module);
    amcf = ngx_http_get_module_main_conf(r, ngx_http_acme_module);

    if (ascf == NULL || ascf->cert == NULL || ascf->cert->slot == NULL
        || amcf->shm_zone == NULL)
    {
        return NGX_OK;
    }

    slot = ascf->cert->slot;
    copy = NULL;
    len = 0;

    ngx_acme_shm_lock(amcf);

    if (slot->bundle && slot->bundle_len) {
        len = slot->bundle_len;
        copy = ngx_pnalloc(r->pool, len);
        if (copy) {
            ngx_memcpy(copy, slot->bundle, len);
        }
    }

    ngx_acme_shm_unlock(amcf);

    if (len == 0) {
        return NGX_OK;
    }

    if (copy == NULL) {
        return NGX_ERROR;
    }

    if (ngx_acme_variables_split(copy, len, &key, &chain) != NGX_OK) {
        return NGX_OK;
    }

    part = (data == NGX_ACME_VAR_KEY) ? &key : &chain;

    p = ngx_pnalloc(r->pool, sizeof("data:") - 1 + part->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    p = ngx_cpymem(p, "data:", sizeof("data:") - 1);
    ngx_memcpy(p, part->data, part->len);

    v->len = sizeof("data:") - 1 + part->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    /* the other half of the copy holds a private key */

    if (data != NGX_ACME_VAR_KEY) {
        ngx_explicit_memzero(key.data, key.len);
    }

    return NGX_OK;
}
