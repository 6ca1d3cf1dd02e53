/*
 * ngx_http_acme_module: the acme_certificate directive.
 */

#include "ngx_acme.h"
#include "acme_names.h"


static ngx_int_t ngx_acme_push_name(ngx_pool_t *pool, ngx_array_t *names,
    const char *name);


/* acme_certificate issuer [names...] [key=spec] [challenge=type]
 *     [fallback=issuer[,issuer...]] [fallback_after=N] */
char *
ngx_acme_certificate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_srv_conf_t  *head = conf;

    char                       name[ACME_NAME_BUFLEN], err[ACME_ERRLEN];
    ngx_str_t                 *value, dot[2];
    ngx_uint_t                 i, k, n;
    ngx_array_t               *fallback_names;
    acme_key_type_t            kt;
    ngx_acme_main_conf_t      *amcf;
    ngx_http_server_name_t    *sn;
    ngx_acme_srv_conf_t       *ascf, *prev, **last;
    ngx_http_core_srv_conf_t  *cscf;

    /* a further certificate of the server, e.g. for another key type */

    if (head->issuer_name.len) {
        ascf = ngx_pcalloc(cf->pool, sizeof(ngx_acme_srv_conf_t));
        if (ascf == NULL) {
            return NGX_CONF_ERROR;
        }

        ascf->key_type = -1;

        for (last = &head->next; *last; last = &(*last)->next) {
            /* void */
        }

        *last = ascf;

    } else {
        ascf = head;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_acme_module);

    value = cf->args->elts;

    ascf->issuer_name = value[1];
    ascf->file = cf->conf_file->file.name.data;
    ascf->line = cf->conf_file->line;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {

            if (acme_key_type_parse((char *) value[i].data + 4,
                                    value[i].len - 4, &kt)
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid key type \"%V\" in "
                                   "\"acme_certificate\": %s (expected "
                                   "key=ecdsa:256, ecdsa:384, ecdsa:521, "
                                   "rsa:2048, rsa:3072 or rsa:4096)",
                                   &value[i],
                                   acme_key_type_unsupported(
                                       (char *) value[i].data + 4,
                                       value[i].len - 4));
                return NGX_CONF_ERROR;
            }

            ascf->key_type = kt;
            continue;
        }

        if (ngx_strncmp(value[i].data, "challenge=", 10) == 0) {

            /* challenge=type[,type...]: tried in turn after failures */

            ascf->n_challenges = 0;

            if (acme_job_challenges_parse((char *) value[i].data + 10,
                                          ascf->challenges,
                                          &ascf->n_challenges, err,
                                          sizeof(err))
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" in \"acme_certificate\": %s",
                                   &value[i], err);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "fallback=", 9) == 0) {

            /* the issuers tried after failures (acme_failover.h) */

            if (acme_failover_parse(&ascf->failover,
                                    (char *) value[i].data + 9,
                                    value[i].len - 9, err, sizeof(err))
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" in \"acme_certificate\": %s",
                                   &value[i], err);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "fallback_after=", 15) == 0) {

            if (acme_failover_parse_after(&ascf->failover,
                                          (char *) value[i].data + 15,
                                          value[i].len - 15, err,
                                          sizeof(err))
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" in \"acme_certificate\": %s",
                                   &value[i], err);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        /* ".example.test": www.example.test and example.test */

        if (ngx_acme_dot_name(cf->pool, &value[i], dot) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        n = (dot[0].data == value[i].data) ? 1 : 2;

        for (k = 0; k < n; k++) {
            /* acme_names.h; whether a wildcard has dns-01 is checked later */

            if (acme_name_normalise((char *) dot[k].data, dot[k].len,
                                    ACME_NAMES_DNS01, name, sizeof(name),
                                    err, sizeof(err))
                < 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "name \"%V\" in \"acme_certificate\" "
                                   "cannot be certified: it %s",
                                   &dot[k], err);
                return NGX_CONF_ERROR;
            }

            if (ascf->names == NULL) {
                ascf->names = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
                if (ascf->names == NULL) {
                    return NGX_CONF_ERROR;
                }
            }

            /* duplicates go in postconfiguration (acme_names_set) */

            if (ngx_acme_push_name(cf->pool, ascf->names, name) != NGX_OK) {
                return NGX_CONF_ERROR;
            }
        }
    }

    if (acme_failover_check(&ascf->failover, (char *) value[1].data, err,
                            sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"acme_certificate\": %s", err);
        return NGX_CONF_ERROR;
    }

    if (ascf->key_type == -1) {
        ascf->key_type = ACME_KEY_DEFAULT;
    }

    /* one certificate per key type: OpenSSL holds one of each type and
     * picks by the client's signature algorithms (as on Apache) */

    for (prev = head; prev != ascf; prev = prev->next) {
        if (prev->key_type == ascf->key_type) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"acme_certificate\" repeats the one in "
                               "%s:%ui with the same key type (add "
                               "key=ecdsa:256 / key=rsa:2048 to have one "
                               "certificate of each type)",
                               prev->file, prev->line);
            return NGX_CONF_ERROR;
        }
    }

    if (ascf != head) {
        /* the first acme_certificate put the placeholder in place */
        ascf->fallback_cert = head->fallback_cert;
        ascf->fallback_key = head->fallback_key;
        return NGX_CONF_OK;
    }

    /*
     * The fallback certificate names what is known now; server_name may
     * still follow, which only matters for a placeholder's looks.
     */

    fallback_names = ascf->names;

    if (fallback_names == NULL) {
        cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);

        fallback_names = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (fallback_names == NULL) {
            return NGX_CONF_ERROR;
        }

        sn = cscf->server_names.elts;

        for (i = 0; i < cscf->server_names.nelts; i++) {
#if (NGX_PCRE)
            if (sn[i].regex) {
                continue;
            }
#endif
            if (acme_name_normalise((char *) sn[i].name.data,
                                    sn[i].name.len, ACME_NAMES_DNS01,
                                    name, sizeof(name), err, sizeof(err))
                < 0)
            {
                continue;
            }

            if (ngx_acme_push_name(cf->pool, fallback_names, name) != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }
        }
    }

    /* "ssl_certificate $acme_certificate" before acme_certificate */

    if (ngx_acme_variables_ssl_pair(cf, cf->conf_file->file.name.data,
                                    cf->conf_file->line)
        == NGX_ERROR)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_acme_ssl_fallback(cf, amcf, ascf, fallback_names) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_acme_issuer_t *
ngx_acme_cert_issuer(ngx_acme_cert_t *cert, unsigned failures)
{
    if (cert->n_issuers <= 1) {
        return cert->issuer;
    }

    return cert->issuers[acme_failover_pick(failures, cert->n_issuers,
                                            cert->failover_after)];
}


/* A copy of the C string name (NUL-terminated) at the end of names. */
static ngx_int_t
ngx_acme_push_name(ngx_pool_t *pool, ngx_array_t *names, const char *name)
{
    ngx_str_t  *s;

    s = ngx_array_push(names);
    if (s == NULL) {
        return NGX_ERROR;
    }

    s->len = ngx_strlen(name);
    s->data = ngx_pnalloc(pool, s->len + 1);
    if (s->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s->data, name, s->len + 1);

    return NGX_OK;
}
