/*
 * ngx_http_acme_module: the acme_certificate directive and the lists of
 * challenge types (challenge=, the issuer's "challenge"), with what a
 * certificate's list says at run time.
 */

#include "ngx_acme.h"
#include "acme_names.h"


/* "http-01" -> NGX_ACME_HTTP_01, ...; NGX_ERROR when unknown. */
ngx_int_t
ngx_acme_challenge_parse(ngx_str_t *value)
{
    if (value->len == sizeof("http-01") - 1
        && ngx_strncmp(value->data, "http-01", value->len) == 0)
    {
        return NGX_ACME_HTTP_01;
    }

    if (value->len == sizeof("tls-alpn-01") - 1
        && ngx_strncmp(value->data, "tls-alpn-01", value->len) == 0)
    {
        return NGX_ACME_TLS_ALPN_01;
    }

    if (value->len == sizeof("dns-01") - 1
        && ngx_strncmp(value->data, "dns-01", value->len) == 0)
    {
        return NGX_ACME_DNS_01;
    }

    return NGX_ERROR;
}


/* Appends one type to a list: NULL, or why not. */
char *
ngx_acme_challenges_add(ngx_acme_challenges_t *c, ngx_str_t *value)
{
    ngx_int_t   n;
    ngx_uint_t  i;

    n = ngx_acme_challenge_parse(value);

    if (n == NGX_ERROR) {
        return "invalid challenge type (expected http-01, tls-alpn-01 or "
               "dns-01)";
    }

    for (i = 0; i < c->n; i++) {
        if (c->type[i] == (ngx_uint_t) n) {
            return "is listed twice";
        }
    }

    if (c->n == NGX_ACME_CHALLENGES_MAX) {
        return "too many challenge types";
    }

    c->type[c->n++] = (ngx_uint_t) n;

    return NULL;
}


/* The type of the attempt that follows "failures" consecutive failures. */
ngx_uint_t
ngx_acme_cert_challenge(ngx_acme_cert_t *cert, ngx_uint_t failures)
{
    if (cert->challenges.n == 0) {
        return cert->challenge;
    }

    return cert->challenges.type[acme_job_challenge_index(
                                     cert->challenges.n, (unsigned) failures)];
}


/* Whether any attempt of cert may use that type. */
ngx_uint_t
ngx_acme_cert_uses(ngx_acme_cert_t *cert, ngx_uint_t type)
{
    ngx_uint_t  i;

    for (i = 0; i < cert->challenges.n; i++) {
        if (cert->challenges.type[i] == type) {
            return 1;
        }
    }

    return cert->challenge == type;
}


/* The ACME name of a challenge type (the engine's challenge_type). */
const char *
ngx_acme_challenge_name(ngx_uint_t type)
{
    switch (type) {
    case NGX_ACME_TLS_ALPN_01:
        return "tls-alpn-01";
    case NGX_ACME_DNS_01:
        return "dns-01";
    default:
        return "http-01";
    }
}


/* acme_certificate issuer [names...] [key=spec] [challenge=type] */
char *
ngx_acme_certificate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_srv_conf_t  *head = conf;

    char                       name[ACME_NAME_BUFLEN], err[ACME_ERRLEN];
    u_char                    *p, *last_p, *comma;
    ngx_str_t                 *value, *s, type;
    ngx_uint_t                 i;
    const char                *why;
    ngx_array_t               *fallback_names;
    acme_key_type_t            kt;
    ngx_acme_main_conf_t      *amcf;
    ngx_http_server_name_t    *sn;
    ngx_acme_srv_conf_t       *ascf, **last;
    ngx_http_core_srv_conf_t  *cscf;

    /* a further certificate of the server, e.g. for another key type */

    if (head->issuer_name.len) {
        ascf = ngx_pcalloc(cf->pool, sizeof(ngx_acme_srv_conf_t));
        if (ascf == NULL) {
            return NGX_CONF_ERROR;
        }

        ascf->key_type = -1;
        ascf->challenge = NGX_ACME_CHALLENGE_UNSET;

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
                                   "\"acme_certificate\" (expected "
                                   "key=ecdsa:256, ecdsa:384, rsa:2048, "
                                   "rsa:3072 or rsa:4096)", &value[i]);
                return NGX_CONF_ERROR;
            }

            ascf->key_type = kt;
            continue;
        }

        if (ngx_strncmp(value[i].data, "challenge=", 10) == 0) {

            /* challenge=type[,type...]: tried in turn after failures */

            p = value[i].data + 10;
            last_p = value[i].data + value[i].len;
            ascf->challenges.n = 0;

            do {
                comma = ngx_strlchr(p, last_p, ',');

                type.data = p;
                type.len = (comma ? comma : last_p) - p;

                why = ngx_acme_challenges_add(&ascf->challenges, &type);
                if (why) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "\"%V\" in \"acme_certificate\": "
                                       "\"%V\" %s", &value[i], &type, why);
                    return NGX_CONF_ERROR;
                }

                p = comma ? comma + 1 : last_p;

            } while (comma);

            ascf->challenge = ascf->challenges.type[0];
            continue;
        }

        /* acme_names.h; whether a wildcard has dns-01 is checked later */

        if (acme_name_normalise((char *) value[i].data, value[i].len,
                                ACME_NAMES_DNS01, name, sizeof(name),
                                err, sizeof(err))
            < 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "name \"%V\" in \"acme_certificate\" "
                               "cannot be certified: it %s",
                               &value[i], err);
            return NGX_CONF_ERROR;
        }

        if (ascf->names == NULL) {
            ascf->names = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
            if (ascf->names == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        /* duplicates go in postconfiguration (acme_names_set) */

        s = ngx_array_push(ascf->names);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        s->len = ngx_strlen(name);
        s->data = ngx_pnalloc(cf->pool, s->len + 1);
        if (s->data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(s->data, name, s->len + 1);
    }

    if (ascf->key_type == -1) {
        ascf->key_type = ACME_KEY_DEFAULT;
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

            s = ngx_array_push(fallback_names);
            if (s == NULL) {
                return NGX_CONF_ERROR;
            }

            s->len = ngx_strlen(name);
            s->data = ngx_pnalloc(cf->pool, s->len + 1);
            if (s->data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(s->data, name, s->len + 1);
        }
    }

    if (ngx_acme_ssl_fallback(cf, amcf, ascf, fallback_names) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
