/*
 * TLS side: the parse-time fallback certificate, the cert callback and the
 * per-worker parsed certificate objects.
 *
 * The handshake path (ngx_acme_ssl_cert_cb) only installs objects that were
 * parsed once per change by ngx_acme_ssl_refresh() on the worker's timers:
 * no PEM parsing and no disk access while a client waits.
 */

#include "ngx_acme.h"


static int ngx_acme_ssl_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg);
static void ngx_acme_ssl_install(ngx_acme_cert_t *cert, EVP_PKEY *key,
    X509 *leaf, STACK_OF(X509) *chain);


/*
 * Puts a self-signed "data:" certificate and key into the server's
 * ngx_http_ssl_module configuration so that nginx's own checks pass and the
 * server answers TLS before the first issuance.  Called from the
 * acme_certificate directive, i.e. before ngx_http_ssl_module merges.
 */
ngx_int_t
ngx_acme_ssl_fallback(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf,
    ngx_acme_srv_conf_t *ascf, ngx_array_t *names)
{
    u_char                   *p;
    char                     *pem, *kpem;
    size_t                    len, klen;
    EVP_PKEY                 *key;
    ngx_str_t                *s;
    const char               *fallback_name = "acme-fallback.invalid";
    const char              **list;
    ngx_uint_t                i, n;
    ngx_http_ssl_srv_conf_t  *sscf;

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (sscf->certificates != NGX_CONF_UNSET_PTR
        || sscf->certificate_keys != NGX_CONF_UNSET_PTR)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"acme_certificate\" manages the certificate of "
                           "this server: remove \"ssl_certificate\" and "
                           "\"ssl_certificate_key\" from it");
        return NGX_ERROR;
    }

    /* one fallback key for every managed server: only a placeholder */

    if (amcf->fallback_key_pem.len == 0) {
        key = acme_key_generate(ACME_KEY_EC_P256);
        if (key == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "acme: cannot generate the fallback key");
            return NGX_ERROR;
        }

        kpem = acme_key_to_pem(key, &klen);
        EVP_PKEY_free(key);

        if (kpem == NULL) {
            return NGX_ERROR;
        }

        p = ngx_pnalloc(cf->pool, sizeof("data:") - 1 + klen);
        if (p == NULL) {
            free(kpem);
            return NGX_ERROR;
        }

        amcf->fallback_key_pem.data = p;
        p = ngx_cpymem(p, "data:", sizeof("data:") - 1);
        ngx_memcpy(p, kpem, klen);
        amcf->fallback_key_pem.len = sizeof("data:") - 1 + klen;

        free(kpem);
    }

    key = acme_key_from_pem((char *) amcf->fallback_key_pem.data
                            + sizeof("data:") - 1,
                            amcf->fallback_key_pem.len - (sizeof("data:") - 1));
    if (key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "acme: cannot load the fallback key");
        return NGX_ERROR;
    }

    n = names ? names->nelts : 0;

    list = ngx_palloc(cf->pool, (n + 1) * sizeof(char *));
    if (list == NULL) {
        EVP_PKEY_free(key);
        return NGX_ERROR;
    }

    s = names ? names->elts : NULL;

    for (i = 0; i < n; i++) {
        list[i] = (const char *) ngx_acme_cstr(cf->pool, &s[i]);
        if (list[i] == NULL) {
            EVP_PKEY_free(key);
            return NGX_ERROR;
        }
    }

    if (n == 0) {
        list[0] = fallback_name;
        n = 1;
    }

    pem = acme_selfsigned_pem(key, list, n, 3650, &len);
    EVP_PKEY_free(key);

    if (pem == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "acme: cannot create the fallback certificate");
        return NGX_ERROR;
    }

    sscf->certificates = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));
    sscf->certificate_keys = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));

    if (sscf->certificates == NULL || sscf->certificate_keys == NULL) {
        free(pem);
        return NGX_ERROR;
    }

    s = ngx_array_push(sscf->certificates);
    if (s == NULL) {
        free(pem);
        return NGX_ERROR;
    }

    s->len = sizeof("data:") - 1 + len;
    s->data = ngx_pnalloc(cf->pool, s->len + 1);
    if (s->data == NULL) {
        free(pem);
        return NGX_ERROR;
    }

    p = ngx_cpymem(s->data, "data:", sizeof("data:") - 1);
    p = ngx_cpymem(p, pem, len);
    *p = '\0';
    free(pem);

    ascf->fallback_cert = s;

    s = ngx_array_push(sscf->certificate_keys);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = amcf->fallback_key_pem;
    ascf->fallback_key = s;

    return NGX_OK;
}


ngx_int_t
ngx_acme_ssl_set_callback(ngx_conf_t *cf, SSL_CTX *ctx,
    ngx_acme_srv_conf_t *ascf)
{
    /*
     * ngx_http_ssl_module only sets a cert callback for certificates with
     * variables, which a managed server cannot have.  The SNI callback moves
     * the connection to this server's SSL_CTX, callback included.  The
     * argument is the server's first acme_certificate; the others follow
     * in ascf->next.
     */
    SSL_CTX_set_cert_cb(ctx, ngx_acme_ssl_cert_cb, ascf);

    return NGX_OK;
}


static int
ngx_acme_ssl_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg)
{
    ngx_acme_srv_conf_t  *head = arg;

    ngx_int_t             rc;
    ngx_uint_t            cleared;
    ngx_acme_cert_t      *cert;
    ngx_acme_srv_conf_t  *ascf;

    /* a tls-alpn-01 challenge handshake gets its certificate, or fails */

    rc = ngx_acme_alpn_handshake(ssl_conn);

    if (rc != NGX_DECLINED) {
        return (rc == NGX_OK) ? 1 : 0;
    }

    /*
     * Every issued certificate of the server is installed, one per key
     * type, so that OpenSSL picks by the client's signature algorithms.
     * The placeholder goes as soon as one certificate is issued: a client
     * that can only use a type not issued yet fails rather than get it.
     */

    cleared = 0;

    for (ascf = head; ascf; ascf = ascf->next) {
        cert = ascf->cert;

        if (cert == NULL) {
            continue;
        }

        /* a parsed bundle became active: a few pointer moves, no parsing */

        if (cert->next_leaf && cert->slot
            && cert->slot->active == cert->next_gen)
        {
            ngx_acme_ssl_promote(cert);
        }

        if (cert->leaf == NULL || cert->key == NULL) {
            continue;
        }

        if (!cleared) {
            SSL_certs_clear(ssl_conn);
            cleared = 1;
        }

        /* override: two certificates of one key type, the last one wins */

        if (SSL_use_cert_and_key(ssl_conn, cert->leaf, cert->key,
                                 cert->chain, 1)
            != 1)
        {
            ngx_ssl_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "acme: SSL_use_cert_and_key(\"%V\") failed",
                          &cert->id);
            return 0;
        }
    }

    /* nothing issued yet: the fallback configured on the context */

    return 1;
}


/*
 * Parses the bundles whose generation changed since this worker last looked
 * (cheap when nothing changed: one locked read of the global counter) and
 * installs those already active.  A parsed bundle that is not active yet
 * waits in next_* (amcf->waiting) until ngx_acme_shm_activate activates it
 * for all workers.
 */
void
ngx_acme_ssl_refresh(ngx_acme_main_conf_t *amcf, ngx_log_t *log)
{
    char                err[ACME_ERRLEN];
    u_char             *pem;
    size_t              len;
    X509               *leaf, *first;
    EVP_PKEY           *key;
    ngx_uint_t          i, gen, cgen;
    ngx_acme_cert_t   **certs, *cert;
    ngx_acme_shctx_t   *sh;
    acme_cert_info_t    info;
    STACK_OF(X509)     *chain;

    sh = ngx_acme_shm_ctx(amcf);
    certs = amcf->certs.elts;

    ngx_acme_shm_lock(amcf);
    gen = sh->generation;
    ngx_acme_shm_unlock(amcf);

    for (i = 0; gen != amcf->generation && i < amcf->certs.nelts; i++) {
        cert = certs[i];

        if (cert->slot == NULL) {
            continue;
        }

        pem = NULL;
        len = 0;

        ngx_acme_shm_lock(amcf);

        cgen = cert->slot->generation;

        if (cgen != cert->generation && cert->slot->bundle) {
            len = cert->slot->bundle_len;
            pem = ngx_alloc(len + 1, log);
            if (pem) {
                ngx_memcpy(pem, cert->slot->bundle, len);
                pem[len] = '\0';
            }
        }

        ngx_acme_shm_unlock(amcf);

        if (pem == NULL) {
            if (cgen != cert->generation && len) {
                /* allocation failed: try again on the next tick */
                return;
            }

            cert->generation = cgen;
            continue;
        }

        key = NULL;
        leaf = NULL;
        chain = NULL;
        ngx_cpystrn((u_char *) err, (u_char *) "no key or certificate",
                    sizeof(err));

        if (acme_bundle_parse((char *) pem, len, &key, &leaf, &chain,
                              err, sizeof(err))
            != 0
            || key == NULL || leaf == NULL)
        {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "acme: certificate \"%V\": stored bundle is "
                          "unusable: %s", &cert->id, err);
            EVP_PKEY_free(key);
            X509_free(leaf);
            sk_X509_pop_free(chain, X509_free);
            ngx_free(pem);
            cert->generation = cgen;
            continue;
        }

        ngx_free(pem);

        /* the chain we hand to OpenSSL must not repeat the leaf */

        if (chain && sk_X509_num(chain) > 0) {
            first = sk_X509_value(chain, 0);

            if (X509_cmp(first, leaf) == 0) {
                X509_free(sk_X509_shift(chain));
            }
        }

        EVP_PKEY_free(cert->next_key);
        X509_free(cert->next_leaf);
        sk_X509_pop_free(cert->next_chain, X509_free);

        cert->next_key = key;
        cert->next_leaf = leaf;
        cert->next_chain = chain;
        cert->next_gen = cgen;
        cert->generation = cgen;

        cert->names_match = 0;

        if (acme_cert_info_from_x509(leaf, &info) == 0) {
            cert->names_match = acme_cert_info_names_equal(&info,
                                  (const char *const *) cert->names.elts,
                                  cert->names.nelts);

            /*
             * Our own order's certificate has every configured name (the
             * engine checks it); names the CA added would make ordering
             * again loop without end.
             */
            if (cgen == cert->ordered_gen) {
                cert->names_match = 1;
            }

            ngx_log_error(NGX_LOG_INFO, log, 0,
                          "acme: certificate \"%V\" parsed in worker "
                          "process %P (serial %s)", &cert->id, ngx_pid,
                          info.serial);

            acme_cert_info_free(&info);
        }
    }

    amcf->generation = gen;
    amcf->waiting = 0;

    for (i = 0; i < amcf->certs.nelts; i++) {
        cert = certs[i];

        if (cert->next_leaf == NULL || cert->slot == NULL) {
            continue;
        }

        if (cert->slot->active != cert->next_gen) {
            amcf->waiting = 1;
            continue;
        }

        ngx_acme_ssl_promote(cert);

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "acme: certificate \"%V\" installed in worker "
                      "process %P", &cert->id, ngx_pid);
    }
}


/* next_* become the objects in use; handshakes in progress hold refs. */
void
ngx_acme_ssl_promote(ngx_acme_cert_t *cert)
{
    ngx_acme_ssl_install(cert, cert->next_key, cert->next_leaf,
                         cert->next_chain);

    cert->cur_gen = cert->next_gen;
    cert->next_key = NULL;
    cert->next_leaf = NULL;
    cert->next_chain = NULL;
}


static void
ngx_acme_ssl_install(ngx_acme_cert_t *cert, EVP_PKEY *key, X509 *leaf,
    STACK_OF(X509) *chain)
{
    EVP_PKEY_free(cert->key);
    X509_free(cert->leaf);
    sk_X509_pop_free(cert->chain, X509_free);

    cert->key = key;
    cert->leaf = leaf;
    cert->chain = chain;
}


void
ngx_acme_ssl_free(ngx_acme_main_conf_t *amcf)
{
    ngx_uint_t         i;
    ngx_acme_cert_t  **certs, *cert;

    certs = amcf->certs.elts;

    for (i = 0; i < amcf->certs.nelts; i++) {
        cert = certs[i];

        ngx_acme_ssl_install(cert, NULL, NULL, NULL);

        EVP_PKEY_free(cert->next_key);
        X509_free(cert->next_leaf);
        sk_X509_pop_free(cert->next_chain, X509_free);

        cert->next_key = NULL;
        cert->next_leaf = NULL;
        cert->next_chain = NULL;
    }
}
