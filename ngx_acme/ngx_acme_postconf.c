/*
 * ngx_http_acme_module: postconfiguration, once the whole configuration is
 * read: each acme_certificate gets its issuer, names, id and shared
 * certificate object, the server is checked (TLS listener, no
 * ssl_certificate of its own, dns-01 settings), the issuers get their
 * HTTP client settings, and the certificate files servers load are read
 * for the status (ngx_acme_inventory.c).
 */

#include "ngx_acme.h"
#include "acme_names.h"
#include "acme_proxy.h"


static ngx_int_t ngx_acme_server_has_name(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf, const char *name);
static ngx_int_t ngx_acme_cert_names(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf, ngx_acme_srv_conf_t *ascf,
    ngx_acme_cert_t *cert);
static ngx_acme_issuer_t *ngx_acme_issuer_find(ngx_acme_main_conf_t *amcf,
    u_char *name, size_t len);
static ngx_int_t ngx_acme_cert_fallbacks(ngx_conf_t *cf,
    ngx_acme_main_conf_t *amcf, ngx_acme_srv_conf_t *ascf,
    ngx_acme_cert_t *cert);
static ngx_int_t ngx_acme_issuer_http(ngx_conf_t *cf,
    ngx_acme_issuer_t *issuer, ngx_http_core_loc_conf_t *clcf);
static ngx_int_t ngx_acme_certs_issuer_ids(ngx_conf_t *cf,
    ngx_acme_main_conf_t *amcf);


/*
 * Whether a client asking for name (SNI) can reach this server, by the rule
 * Apache's check uses too (acme_name_served()): an exact server_name,
 * "*.suffix", "suffix.*" or ".suffix"; a regular expression counts (it
 * cannot be judged here); IP literals are reached without SNI and count.
 * NGX_ERROR: out of memory.
 */
static ngx_int_t
ngx_acme_server_has_name(ngx_conf_t *cf, ngx_http_core_srv_conf_t *cscf,
    const char *name)
{
    size_t                  *lens;
    ngx_uint_t               i, n;
    const char             **pats;
    ngx_http_server_name_t  *sn;

    sn = cscf->server_names.elts;
    n = cscf->server_names.nelts;

    pats = ngx_palloc(cf->temp_pool, (n ? n : 1) * sizeof(char *));
    lens = ngx_palloc(cf->temp_pool, (n ? n : 1) * sizeof(size_t));
    if (pats == NULL || lens == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        /* a regular expression keeps its "~" in sn[i].name */
        pats[i] = (const char *) sn[i].name.data;
        lens[i] = sn[i].name.len;
    }

    return acme_name_served(name, pats, lens, n, ACME_SERVED_DOT_SUFFIX);
}


ngx_int_t
ngx_acme_server_listens_ssl(ngx_http_core_main_conf_t *cmcf,
    ngx_http_core_srv_conf_t *cscf)
{
    ngx_uint_t                  p, a, s;
    ngx_http_conf_port_t       *port;
    ngx_http_conf_addr_t       *addr;
    ngx_http_core_srv_conf_t  **cscfp;

    if (cmcf->ports == NULL) {
        return 0;
    }

    port = cmcf->ports->elts;

    for (p = 0; p < cmcf->ports->nelts; p++) {

        addr = port[p].addrs.elts;

        for (a = 0; a < port[p].addrs.nelts; a++) {

            if (!addr[a].opt.ssl) {
                continue;
            }

            cscfp = addr[a].servers.elts;

            for (s = 0; s < addr[a].servers.nelts; s++) {
                if (cscfp[s] == cscf) {
                    return 1;
                }
            }
        }
    }

    return 0;
}


/*
 * A name as it is ordered: ".example.test" (nginx's leading dot: the name
 * and every name below it) orders "www.example.test" and "example.test",
 * as nginx-acme does; out[0] and out[1] get those two, any other name is
 * out[0] as it is (out[0].data == name->data).
 */
ngx_int_t
ngx_acme_dot_name(ngx_pool_t *pool, ngx_str_t *name, ngx_str_t *out)
{
    u_char  *p;

    if (name->len < 2 || name->data[0] != '.') {
        out[0] = *name;
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, sizeof("www") - 1 + name->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out[0].data = p;
    p = ngx_cpymem(p, "www", sizeof("www") - 1);
    p = ngx_cpymem(p, name->data, name->len);
    *p = '\0';
    out[0].len = sizeof("www") - 1 + name->len;

    /* the name without its dot, NUL-terminated as well */

    out[1].data = out[0].data + sizeof("www.") - 1;
    out[1].len = name->len - 1;

    return NGX_OK;
}


/*
 * cert->names and cert->id from the explicit names, else server_name, by
 * the rules of acme_names.h: cert->names are the order identifiers (the
 * names a wildcard of the set covers are served, not ordered), the id
 * comes from the first normalised name.
 */
static ngx_int_t
ngx_acme_cert_names(ngx_conf_t *cf, ngx_http_core_srv_conf_t *cscf,
    ngx_acme_srv_conf_t *ascf, ngx_acme_cert_t *cert)
{
    char                     *id, err[ACME_ERRLEN];
    size_t                    len, *lens, bad;
    unsigned                  flags;
    ngx_int_t                 rc;
    ngx_str_t                 name, *in;
    ngx_uint_t                i, j, n;
    const char              **names, **np;
    acme_names_t              set;
    ngx_http_server_name_t   *sn;

    flags = (cert->n_challenges == 1
             && ngx_strcmp(cert->challenges[0], "dns-01") == 0)
            ? ACME_NAMES_DNS01 : 0;

    if (ascf->names) {
        in = ascf->names->elts;
        n = ascf->names->nelts;

    } else {
        sn = cscf->server_names.elts;
        n = cscf->server_names.nelts;

        /* a leading-dot name may become two */

        in = ngx_palloc(cf->temp_pool, (n ? 2 * n : 1) * sizeof(ngx_str_t));
        if (in == NULL) {
            return NGX_ERROR;
        }

        for (i = 0, j = 0; i < n; i++) {
#if (NGX_PCRE)
            if (sn[i].regex) {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"acme_certificate\" cannot use "
                                    "the regular expression server name "
                                    "\"~%V\"; list the names in "
                                    "\"acme_certificate\"", &sn[i].name);
                return NGX_ERROR;
            }
#endif
            if (ngx_acme_dot_name(cf->temp_pool, &sn[i].name, &in[j])
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            j += (in[j].data == sn[i].name.data) ? 1 : 2;
        }

        n = j;
        flags |= ACME_NAMES_SERVER_NAME;
    }

    names = ngx_palloc(cf->temp_pool, (n ? n : 1) * sizeof(char *));
    lens = ngx_palloc(cf->temp_pool, (n ? n : 1) * sizeof(size_t));
    if (names == NULL || lens == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        names[i] = (const char *) in[i].data;
        lens[i] = in[i].len;
    }

    if (acme_names_set(&set, names, lens, n, flags, &bad, err, sizeof(err))
        != 0)
    {
        if (bad == n && ascf->names == NULL) {
            ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                "\"acme_certificate\" has no identifiers "
                                "(no usable names): set \"server_name\" or "
                                "list the names");

        } else if (bad == n) {
            ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                "\"acme_certificate\": %s", err);

        } else {
            ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                "\"acme_certificate\": invalid %s\"%V\": "
                                "it %s%s",
                                ascf->names ? "name " : "server name ",
                                &in[bad], err,
                                ngx_strstr(err, "dns-01")
                                ? " (\"challenge dns-01\" in the issuer or "
                                  "challenge=dns-01)" : "");
        }

        return NGX_ERROR;
    }

    if (ngx_array_init(&cert->names, cf->pool, set.n_order, sizeof(char *))
        != NGX_OK)
    {
        goto failed;
    }

    for (i = 0; ascf->names && i < set.n_names; i++) {
        name.data = (u_char *) set.names[i];
        name.len = ngx_strlen(set.names[i]);

        rc = ngx_acme_server_has_name(cf, cscf, set.names[i]);

        if (rc == NGX_ERROR) {
            goto failed;
        }

        if (rc == 0) {
            ngx_acme_conf_warn(cf->log, ascf->file, ascf->line,
                               "\"acme_certificate\" name \"%V\" "
                               "is not a \"server_name\" of this "
                               "server; clients asking for it "
                               "(SNI) will not reach it", &name);
        }
    }

    for (i = 0; i < set.n_order; i++) {
        np = ngx_array_push(&cert->names);
        if (np == NULL) {
            goto failed;
        }

        name.data = (u_char *) set.order[i];
        name.len = ngx_strlen(set.order[i]);

        *np = (const char *) ngx_acme_cstr(cf->pool, &name);
        if (*np == NULL) {
            goto failed;
        }
    }

    id = acme_store_cert_id(set.names[0], cert->key_type);
    if (id == NULL) {
        goto failed;
    }

    len = ngx_strlen(id);

    if (len >= NGX_ACME_ID_LEN) {
        free(id);
        ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                            "\"acme_certificate\": name \"%s\" is too "
                            "long for a certificate id", set.names[0]);
        goto failed;
    }

    cert->id.data = ngx_pnalloc(cf->pool, len + 1);
    if (cert->id.data == NULL) {
        free(id);
        goto failed;
    }

    ngx_memcpy(cert->id.data, id, len + 1);
    cert->id.len = len;
    free(id);

    acme_names_free(&set);

    return NGX_OK;

failed:

    acme_names_free(&set);

    return NGX_ERROR;
}


ngx_int_t
ngx_acme_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                  s, i, k, same;
    ngx_acme_cert_t            *cert, **certs, **cp;
    ngx_acme_issuer_t          *issuer, **issuers;
    ngx_acme_srv_conf_t        *ascf, *head;
    ngx_acme_main_conf_t       *amcf;
    ngx_http_ssl_srv_conf_t    *sscf;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_core_srv_conf_t  **cscfp, *cscf;
    ngx_http_core_main_conf_t  *cmcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_acme_module);
    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    cscfp = cmcf->servers.elts;

    for (s = 0; s < cmcf->servers.nelts; s++) {

        cscf = cscfp[s];
        head = cscf->ctx->srv_conf[ngx_http_acme_module.ctx_index];

        if (head->issuer_name.len == 0) {
            continue;
        }

        sscf = cscf->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

        for (ascf = head; ascf; ascf = ascf->next) {

            issuer = ngx_acme_issuer_find(amcf, ascf->issuer_name.data,
                                          ascf->issuer_name.len);

            if (issuer == NULL) {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"acme_certificate\": issuer \"%V\" is "
                                    "missing (no acme_issuer block of that "
                                    "name)", &ascf->issuer_name);
                return NGX_ERROR;
            }

            /* the names: explicit, else the server's server_name */

            cert = ngx_pcalloc(cf->pool, sizeof(ngx_acme_cert_t));
            if (cert == NULL) {
                return NGX_ERROR;
            }

            cert->issuer = issuer;
            cert->key_type = (acme_key_type_t) ascf->key_type;

            if (ngx_acme_cert_fallbacks(cf, amcf, ascf, cert) != NGX_OK) {
                return NGX_ERROR;
            }
            cert->n_challenges = ascf->n_challenges
                                 ? ascf->n_challenges
                                 : issuer->conf.n_challenges;
            ngx_memcpy(cert->challenges, ascf->n_challenges
                                         ? ascf->challenges
                                         : issuer->conf.challenges,
                       sizeof(cert->challenges));

            if (ngx_acme_cert_names(cf, cscf, ascf, cert) != NGX_OK) {
                return NGX_ERROR;
            }

            /* the server must be reachable over TLS */

            if (!ngx_acme_server_listens_ssl(cmcf, cscf) && !sscf->enable) {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"acme_certificate\" is used in a server "
                                    "without \"listen ... ssl\"");
                return NGX_ERROR;
            }

            /* without a bridge, our merge left both empty (ssl.c) */
            if (head->bridge == NULL
                && (sscf->certificates == NULL
                || sscf->certificates->nelts != 0
                || sscf->certificate_keys == NULL
                || sscf->certificate_keys->nelts != 0))
            {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"ssl_certificate\" and "
                                    "\"ssl_certificate_key\" cannot be used in a "
                                    "server with \"acme_certificate\", which "
                                    "manages its certificate");
                return NGX_ERROR;
            }

            /* the issuer's own list is the issuer check's (as on Apache) */

            if (acme_job_challenges_has(ascf->challenges, ascf->n_challenges,
                                        "dns-01")
                && !acme_dns_conf_used(&issuer->conf.dns))
            {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"acme_certificate\" uses "
                                    "challenge=dns-01, but \"acme_issuer %V\" "
                                    "has neither \"dns_update\" nor "
                                    "\"dns_hook\"", &issuer->name);
                return NGX_ERROR;
            }

            cert->rnd = acme_job_seed((char *) cert->id.data);
            cert->file = ascf->file;
            cert->line = ascf->line;

            /* servers with the same certificate share one */

            certs = amcf->certs.elts;

            for (i = 0; i < amcf->certs.nelts; i++) {

                same = acme_names_same(
                           (const char *const *) certs[i]->names.elts,
                           certs[i]->names.nelts,
                           (const char *const *) cert->names.elts,
                           cert->names.nelts);

                same = (same && certs[i]->issuer == cert->issuer
                        && certs[i]->n_challenges == cert->n_challenges
                        && certs[i]->n_issuers == cert->n_issuers
                        && certs[i]->failover_after == cert->failover_after);

                for (k = 1; same && k < cert->n_issuers; k++) {
                    same = (certs[i]->issuers[k] == cert->issuers[k]);
                }

                for (k = 0; same && k < cert->n_challenges; k++) {
                    same = (ngx_strcmp(certs[i]->challenges[k],
                                       cert->challenges[k]) == 0);
                }

                /* the same names in another order: the same certificate */

                if (ngx_strcmp(certs[i]->id.data, cert->id.data) != 0) {
                    if (same && certs[i]->key_type == cert->key_type) {
                        cert = certs[i];
                        break;
                    }

                    continue;
                }

                /* another issuer's: the issuer goes into one of the ids */

                if (certs[i]->issuer != cert->issuer) {
                    continue;
                }

                if (!same) {
                    ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                        "certificate \"%V\" is managed by "
                                        "the \"acme_certificate\" in "
                                        "%s:%ui with other names or "
                                        "challenges: list the same ones "
                                        "or use another first name",
                                        &cert->id, certs[i]->file,
                                        certs[i]->line);
                    return NGX_ERROR;
                }

                cert = certs[i];
                break;
            }

            if (i == amcf->certs.nelts) {
                cp = ngx_array_push(&amcf->certs);
                if (cp == NULL) {
                    return NGX_ERROR;
                }

                *cp = cert;
            }

            ascf->cert = cert;

            if (cert->bridge == NULL) {
                cert->bridge = head->bridge;    /* NULL: none */
            }

            if (acme_job_challenges_has(cert->challenges, cert->n_challenges,
                                        "tls-alpn-01"))
            {
                amcf->tls_alpn = 1;
            }
        }

        if (sscf->ssl.ctx) {
            if (ngx_acme_ssl_add_server(cf, amcf, sscf->ssl.ctx, head)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (ngx_acme_inventory_init(cf, amcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (amcf->tls_alpn && ngx_acme_alpn_init(cf, amcf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_acme_ssl_callbacks(amcf);

    if (ngx_acme_certs_issuer_ids(cf, amcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (amcf->certs.nelts == 0 && amcf->zone_name.len == 0
        && amcf->issuers.nelts == 0)
    {
        /* the module is loaded but unused */
        return NGX_OK;
    }

    if (ngx_acme_shm_add(cf, amcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (amcf->certs.nelts == 0) {
        return NGX_OK;
    }

    amcf->thread_pool = ngx_thread_pool_add(cf, NULL);
    if (amcf->thread_pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_acme_challenge_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    issuers = amcf->issuers.elts;

    for (i = 0; i < amcf->issuers.nelts; i++) {
        issuers[i]->http.thread_pool = amcf->thread_pool;

        /* acme_event_command, acme_expiry_warning: the block's own win */
        acme_issuer_events_inherit(&issuers[i]->conf, amcf->event_command,
                                   amcf->event_timeout_ms,
                                   amcf->expiry_warning);

        if (ngx_acme_issuer_http(cf, issuers[i], clcf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_acme_issuer_proxy_cleanup(void *data)
{
    acme_proxy_free(data);
}


static ngx_acme_issuer_t *
ngx_acme_issuer_find(ngx_acme_main_conf_t *amcf, u_char *name, size_t len)
{
    ngx_uint_t          i;
    ngx_acme_issuer_t **issuers;

    issuers = amcf->issuers.elts;

    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (issuers[i]->name.len == len
            && ngx_strncmp(issuers[i]->name.data, name, len) == 0)
        {
            return issuers[i];
        }
    }

    return NULL;
}


/*
 * The certificate's issuer list (fallback=, acme_failover.h): the primary,
 * then each fallback's block.  The certificate stays stored under the
 * primary's state_path and id; a fallback's orders use its own account.
 */
static ngx_int_t
ngx_acme_cert_fallbacks(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf,
    ngx_acme_srv_conf_t *ascf, ngx_acme_cert_t *cert)
{
    size_t              k;
    ngx_acme_issuer_t  *fb;

    cert->issuers[0] = cert->issuer;
    cert->issuer_names[0] = (char *) cert->issuer->name.data;
    cert->n_issuers = 1;
    cert->failover_after = ascf->failover.after ? ascf->failover.after
                                                : ACME_FAILOVER_AFTER;

    for (k = 0; k < ascf->failover.n; k++) {
        fb = ngx_acme_issuer_find(amcf, (u_char *) ascf->failover.names[k],
                                  ngx_strlen(ascf->failover.names[k]));

        if (fb == NULL) {
            ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                "\"acme_certificate\": fallback issuer "
                                "\"%s\" is missing (no acme_issuer block of "
                                "that name)", ascf->failover.names[k]);
            return NGX_ERROR;
        }

        cert->issuers[cert->n_issuers] = fb;
        cert->issuer_names[cert->n_issuers] = (char *) fb->name.data;
        cert->fallback_dirs[cert->n_issuers - 1] = fb->conf.directory;
        cert->n_issuers++;
    }

    return NGX_OK;
}


/* The HTTP client settings of an issuer. */
static ngx_int_t
ngx_acme_issuer_http(ngx_conf_t *cf, ngx_acme_issuer_t *issuer,
    ngx_http_core_loc_conf_t *clcf)
{
    int                  port;
    u_char              *p;
    char                 err[ACME_ERRLEN], *host;
    ngx_url_t            u;
    acme_url_t           url;
    acme_proxy_t        *proxy;
    ngx_pool_cleanup_t  *cln;

    issuer->http.ssl = &issuer->ssl;
    issuer->http.issuer = issuer->name;
    issuer->http.connect_timeout = issuer->conf.timeout_ms;
    issuer->http.timeout = issuer->conf.timeout_ms;
    issuer->http.max_body = ACME_HTTP_MAX_BODY;

    /* http{} always has a resolver; one without servers is a placeholder */

    if (clcf->resolver && clcf->resolver->connections.nelts) {
        issuer->http.resolver = clcf->resolver;
        /*
         * http{}'s own location conf is never merged: an unset
         * "resolver_timeout" is still NGX_CONF_UNSET_MSEC here, which would
         * make every lookup time out at once; use nginx's default
         */
        issuer->http.resolver_timeout =
            (clcf->resolver_timeout == NGX_CONF_UNSET_MSEC)
            ? 30000 : clcf->resolver_timeout;
    }

    if (acme_url_parse((char *) issuer->conf.directory, &url, err, sizeof(err))
        != 0)
    {
        ngx_acme_conf_error(cf->log, issuer->file, issuer->line,
                            "invalid \"uri\": %s", err);
        return NGX_ERROR;
    }

    host = url.host;
    port = url.port;

    if (issuer->conf.proxy) {
        /* checked by the directive; the proxy's host is the one resolved,
         * the CA's never is */
        proxy = ngx_pcalloc(cf->pool, sizeof(acme_proxy_t));
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (proxy == NULL || cln == NULL) {
            acme_url_free(&url);
            return NGX_ERROR;
        }

        if (acme_proxy_parse(issuer->conf.proxy, proxy, err, sizeof(err))
            != 0)
        {
            ngx_acme_conf_error(cf->log, issuer->file, issuer->line,
                                "invalid \"proxy\": %s", err);
            acme_url_free(&url);
            return NGX_ERROR;
        }

        cln->handler = ngx_acme_issuer_proxy_cleanup;
        cln->data = proxy;

        issuer->http.proxy = proxy;
        host = proxy->host;
        port = proxy->port;
    }

    issuer->http.static_host.len = ngx_strlen(host);
    issuer->http.static_host.data = ngx_pnalloc(cf->pool,
                                         issuer->http.static_host.len + 1);
    if (issuer->http.static_host.data == NULL) {
        acme_url_free(&url);
        return NGX_ERROR;
    }

    ngx_memcpy(issuer->http.static_host.data, host,
               issuer->http.static_host.len + 1);

    /*
     * Resolve the directory host now: with a "resolver" these addresses
     * are used for it; without one the workers look the host up at run
     * time in the thread pool (the system's getaddrinfo) and fall back to
     * these when that fails.  Not under "nginx -t", which must contact
     * nobody.  (nginx-acme refuses an http{} without "resolver": none is
     * needed here.)
     */

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = ngx_pnalloc(cf->pool, ngx_strlen(host) + 16);
    if (u.url.data == NULL) {
        acme_url_free(&url);
        return NGX_ERROR;
    }

    if (ngx_strchr(host, ':')) {
        p = ngx_sprintf(u.url.data, "[%s]:%d", host, port);

    } else {
        p = ngx_sprintf(u.url.data, "%s:%d", host, port);
    }

    u.url.len = p - u.url.data;
    u.default_port = (in_port_t) port;
    u.no_resolve = ngx_test_config ? 1 : 0;

    acme_url_free(&url);

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (!ngx_test_config) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "acme: cannot resolve \"%V\" of acme_issuer \"%V\" "
                          "now (%s); the workers look it up when they "
                          "need it", &u.url, &issuer->name,
                          u.err ? u.err : "error");
        }

        return NGX_OK;
    }

    issuer->http.static_addrs = u.addrs;
    issuer->http.static_naddrs = u.naddrs;

    return NGX_OK;
}


/*
 * The same first name and key type under several issuers (one server per
 * issuer; issuers may share a state_path): the certificates of every
 * issuer block but the first of them get "@<issuer>" in their id
 * (acme_store_cert_ids_by_issuer), so each has its own zone slot, store
 * directory and status entry, and the first keeps the id it had.
 */
static ngx_int_t
ngx_acme_certs_issuer_ids(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf)
{
    int                *need;
    char               *id;
    size_t              len, *iss;
    ngx_uint_t          i, k;
    const char        **ids;
    ngx_acme_cert_t   **certs;
    ngx_acme_issuer_t **issuers;

    if (amcf->certs.nelts < 2) {
        return NGX_OK;
    }

    certs = amcf->certs.elts;
    issuers = amcf->issuers.elts;

    ids = ngx_palloc(cf->temp_pool, amcf->certs.nelts * sizeof(char *));
    iss = ngx_palloc(cf->temp_pool, amcf->certs.nelts * sizeof(size_t));
    need = ngx_palloc(cf->temp_pool, amcf->certs.nelts * sizeof(int));
    if (ids == NULL || iss == NULL || need == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < amcf->certs.nelts; i++) {
        ids[i] = (const char *) certs[i]->id.data;

        for (k = 0; k < amcf->issuers.nelts; k++) {
            if (issuers[k] == certs[i]->issuer) {
                break;
            }
        }

        iss[i] = k;
    }

    acme_store_cert_ids_by_issuer(ids, iss, amcf->certs.nelts, need);

    for (i = 0; i < amcf->certs.nelts; i++) {
        if (!need[i]) {
            continue;
        }

        id = acme_store_cert_id_issuer(ids[i],
                                       (char *) certs[i]->issuer->conf.name);
        if (id == NULL) {
            return NGX_ERROR;
        }

        len = ngx_strlen(id);

        if (len >= NGX_ACME_ID_LEN) {
            ngx_acme_conf_error(cf->log, certs[i]->file, certs[i]->line,
                                "\"acme_certificate\": certificate id "
                                "\"%s\" (the name is certified by another "
                                "issuer too) is too long", id);
            free(id);
            return NGX_ERROR;
        }

        certs[i]->id.data = ngx_pnalloc(cf->pool, len + 1);
        if (certs[i]->id.data == NULL) {
            free(id);
            return NGX_ERROR;
        }

        ngx_memcpy(certs[i]->id.data, id, len + 1);
        certs[i]->id.len = len;
        certs[i]->rnd = acme_job_seed(id);
        free(id);
    }

    return NGX_OK;
}
