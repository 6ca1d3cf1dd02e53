/*
 * TLS side: the parse-time fallback certificate, the per-worker parsed
 * certificate objects and their installation into the servers' SSL_CTX.
 *
 * The handshake path is nginx's own, as with a static ssl_certificate: each
 * worker parses a new bundle once (ngx_acme_ssl_refresh() on its 25 ms
 * pickup timer) and, when it is active, installs leaf, chain and key into
 * the SSL_CTX of every server{} using it (SSL_CTX_use_cert_and_key,
 * override: one certificate per key type, as two ssl_certificate lines do).
 * Workers are single-threaded and OpenSSL copies the context's certificates
 * into each connection at SSL_new() / SNI (SSL_set_SSL_CTX), so connections
 * already open keep theirs and new ones get the new one; no PEM parsing,
 * no disk access and no per-handshake certificate work while a client
 * waits.
 *
 * A certificate callback (ngx_acme_ssl_cert_cb) is set on a server's
 * context only while something needs it (ngx_acme_ssl_server_callback):
 * tls-alpn-01 (a challenge handshake gets its own certificate), or the
 * partial state of ngx_acme_ssl_server_update(); otherwise there is none.
 */

#include "ngx_acme.h"


static int ngx_acme_ssl_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg);
static void ngx_acme_ssl_install(ngx_acme_cert_t *cert, EVP_PKEY *key,
    X509 *leaf, STACK_OF(X509) *chain);
static void ngx_acme_ssl_promote(ngx_acme_cert_t *cert);
static void ngx_acme_ssl_servers_update(ngx_acme_main_conf_t *amcf,
    ngx_log_t *log);
static void ngx_acme_ssl_server_update(ngx_acme_server_t *srv,
    ngx_log_t *log);
static void ngx_acme_ssl_server_callback(ngx_acme_server_t *srv);
static void ngx_acme_ssl_key_cleanup(void *data);
static void ngx_acme_ssl_placeholders(ngx_acme_main_conf_t *amcf,
    ngx_log_t *log);


/*
 * Puts a marker "data:" certificate and key into the server's
 * ngx_http_ssl_module configuration so that nginx's own checks pass (a
 * "listen ... ssl" server needs ssl_certificate) and the bridge code can
 * tell the server's own ssl_certificate lines from ours.  Called from the
 * acme_certificate directive, i.e. before ngx_http_ssl_module merges; our
 * merge then empties the arrays (ngx_acme_ssl_placeholder_merge), so that
 * nginx loads nothing: decoding a PEM key per server{} costs about a
 * millisecond with OpenSSL 3 (its generic decoder), a second per thousand
 * servers at every start.  The master installs the placeholder itself
 * (ngx_acme_ssl_placeholders), from the key kept here, and only into the
 * contexts whose certificate is not stored yet.
 *
 * The placeholder's key type is the first acme_certificate's (EC P-256 for
 * ecdsa:*, RSA-2048 for rsa:*): the issued certificate of that type then
 * replaces it in the server's SSL_CTX (same OpenSSL slot), and a server
 * whose certificates are all issued needs no certificate callback (see
 * ngx_acme_ssl_server_update).  The RSA key is made only for such servers,
 * once per configuration.
 */
ngx_int_t
ngx_acme_ssl_fallback(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf,
    ngx_acme_srv_conf_t *ascf, ngx_array_t *names)
{
    EVP_PKEY                 *key;
    ngx_str_t                *s;
    const char               *fallback_name = "acme-fallback.invalid";
    const char              **list;
    ngx_uint_t                i, n, rsa;
    ngx_pool_cleanup_t       *cln;
    ngx_http_ssl_srv_conf_t  *sscf;

    static ngx_str_t          marker_cert =
        ngx_string("data:acme_certificate placeholder (certificate)");
    static ngx_str_t          marker_key =
        ngx_string("data:acme_certificate placeholder (key)");

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (sscf->certificates != NGX_CONF_UNSET_PTR
        || sscf->certificate_keys != NGX_CONF_UNSET_PTR)
    {
        /* the server's own certificate is the bridge (ngx_acme_bridge.c) */
        return NGX_OK;
    }

    /* one fallback key per type for every managed server: a placeholder */

    rsa = (acme_key_placeholder_type(ascf->key_type) == ACME_KEY_RSA_2048);

    if (amcf->fallback_key[rsa] == NULL) {
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        key = acme_key_generate(acme_key_placeholder_type(ascf->key_type));
        if (key == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "acme: cannot generate the fallback key");
            return NGX_ERROR;
        }

        amcf->fallback_key[rsa] = key;
        cln->handler = ngx_acme_ssl_key_cleanup;
        cln->data = key;
    }

    n = names ? names->nelts : 0;

    list = ngx_palloc(cf->pool, (n + 1) * sizeof(char *));
    if (list == NULL) {
        return NGX_ERROR;
    }

    s = names ? names->elts : NULL;

    for (i = 0; i < n; i++) {
        list[i] = (const char *) ngx_acme_cstr(cf->pool, &s[i]);
        if (list[i] == NULL) {
            return NGX_ERROR;
        }
    }

    if (n == 0) {
        list[0] = fallback_name;
        n = 1;
    }

    ascf->placeholder_key = amcf->fallback_key[rsa];
    ascf->placeholder_names = list;
    ascf->placeholder_n = n;

    sscf->certificates = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));
    sscf->certificate_keys = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));

    if (sscf->certificates == NULL || sscf->certificate_keys == NULL) {
        return NGX_ERROR;
    }

    s = ngx_array_push(sscf->certificates);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = marker_cert;
    ascf->fallback_cert = s;

    s = ngx_array_push(sscf->certificate_keys);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = marker_key;
    ascf->fallback_key = s;

    return NGX_OK;
}


/*
 * From ngx_acme_merge_srv_conf, after the bridge's merge, before
 * ngx_http_ssl_module's: a server without a bridge keeps its certificate
 * arrays, emptied of our markers.  Empty but set, they pass nginx's checks
 * ("no ssl_certificate is defined"), nginx creates the server's SSL_CTX
 * as usual and loads nothing into it.
 */
void
ngx_acme_ssl_placeholder_merge(ngx_acme_srv_conf_t *ascf,
    ngx_http_ssl_srv_conf_t *sscf)
{
    if (ascf->fallback_cert == NULL || ascf->bridge) {
        return;
    }

    /* ngx_acme_bridge_merge left nothing but the markers */
    sscf->certificates->nelts = 0;
    sscf->certificate_keys->nelts = 0;
}


/*
 * The master, at start and on reload, before any worker of the cycle
 * exists: the self-signed placeholder for each server whose first
 * certificate the master has not parsed from the store (not issued yet,
 * or a reload: the workers take it from the zone), so that the server
 * answers TLS from the start.  A server whose stored certificate is
 * installed next never gets one: signing a placeholder per server{} was
 * about a tenth of the start with a thousand stored certificates.
 */
static void
ngx_acme_ssl_placeholders(ngx_acme_main_conf_t *amcf, ngx_log_t *log)
{
    X509                  *x509;
    EVP_PKEY              *pub;
    ngx_uint_t             i;
    ngx_acme_cert_t       *cert;
    ngx_acme_server_t    **sp;
    ngx_acme_srv_conf_t   *head;

    sp = amcf->servers.elts;

    for (i = 0; i < amcf->servers.nelts; i++) {
        head = sp[i]->head;

        if (head->bridge || head->placeholder_key == NULL) {
            continue;
        }

        cert = head->cert;

        if (cert && cert->leaf) {
            pub = X509_get0_pubkey(cert->leaf);

            if (pub && EVP_PKEY_base_id(pub)
                       == EVP_PKEY_base_id(head->placeholder_key))
            {
                /* the stored certificate takes the placeholder's slot */
                continue;
            }
        }

        x509 = acme_selfsigned_x509(head->placeholder_key,
                                    head->placeholder_names,
                                    head->placeholder_n, 3650);

        if (x509 == NULL
            || SSL_CTX_use_cert_and_key(sp[i]->ctx, x509,
                                        head->placeholder_key, NULL, 1)
               != 1)
        {
            ngx_ssl_error(NGX_LOG_ALERT, log, 0,
                          "acme: cannot install the placeholder "
                          "certificate of the server of "
                          "\"acme_certificate\" in %s:%ui",
                          head->file, head->line);
        }

        X509_free(x509);
    }
}


static void
ngx_acme_ssl_key_cleanup(void *data)
{
    EVP_PKEY_free(data);
}


/*
 * Postconfiguration, for each server{} with acme_certificate: remembers its
 * SSL_CTX for the workers.  ngx_http_ssl_module (1.22) creates one SSL_CTX
 * per server{} that has certificates (ngx_http_ssl_merge_srv_conf(); the
 * http{} level's own is never merged, so never created) and
 * acme_certificate is a server{} directive: two managed servers never
 * share a context.  Should another module make them share one anyway, the
 * certificates installed for one would serve the other: refused.
 */
ngx_int_t
ngx_acme_ssl_add_server(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf,
    SSL_CTX *ctx, ngx_acme_srv_conf_t *head)
{
    X509                *x509;
    EVP_PKEY            *pkey;
    ngx_uint_t           i;
    ngx_acme_server_t   *srv, **sp;

    sp = amcf->servers.elts;

    for (i = 0; i < amcf->servers.nelts; i++) {
        if (sp[i]->ctx == ctx) {
            ngx_acme_conf_error(cf->log, head->file, head->line,
                                "\"acme_certificate\": this server shares "
                                "its SSL context with the server of the "
                                "\"acme_certificate\" in %s:%ui; each "
                                "managed server needs its own",
                                sp[i]->head->file, sp[i]->head->line);
            return NGX_ERROR;
        }
    }

    srv = ngx_pcalloc(cf->pool, sizeof(ngx_acme_server_t));
    if (srv == NULL) {
        return NGX_ERROR;
    }

    srv->ctx = ctx;
    srv->head = head;

    if (head->bridge == NULL && head->placeholder_key) {
        /* the placeholder's type: the master installs it, or the stored
         * certificate of that type (ngx_acme_ssl_placeholders) */
        srv->loaded[srv->nloaded++] = EVP_PKEY_base_id(head->placeholder_key);
    }

    /*
     * What nginx loaded: the bridge's certificates (one per key type, each
     * in its own OpenSSL slot).  Listed the way ngx_event_openssl.c links
     * them, as its OCSP stapling does.
     */

    for (x509 = SSL_CTX_get_ex_data(ctx, ngx_ssl_certificate_index);
         x509;
         x509 = X509_get_ex_data(x509, ngx_ssl_next_certificate_index))
    {
        pkey = X509_get0_pubkey(x509);

        if (pkey == NULL) {
            continue;
        }

        for (i = 0; i < srv->nloaded; i++) {
            if (srv->loaded[i] == EVP_PKEY_base_id(pkey)) {
                break;
            }
        }

        if (i == srv->nloaded
            && srv->nloaded < sizeof(srv->loaded) / sizeof(srv->loaded[0]))
        {
            srv->loaded[srv->nloaded++] = EVP_PKEY_base_id(pkey);
        }
    }

    if (srv->nloaded == 0) {
        ngx_acme_conf_error(cf->log, head->file, head->line,
                            "\"acme_certificate\": the server's SSL context "
                            "has no placeholder certificate");
        return NGX_ERROR;
    }

    sp = ngx_array_push(&amcf->servers);
    if (sp == NULL) {
        return NGX_ERROR;
    }

    *sp = srv;

    return NGX_OK;
}


/*
 * End of postconfiguration: the certificate callbacks the contexts start
 * with (the placeholder alone needs none).  With tls-alpn-01 in use
 * anywhere, every managed server gets it: the CA's SNI may reach any of
 * them (ngx_acme_alpn.c).
 */
void
ngx_acme_ssl_callbacks(ngx_acme_main_conf_t *amcf)
{
    ngx_uint_t          i;
    ngx_acme_server_t **sp;

    sp = amcf->servers.elts;

    for (i = 0; i < amcf->servers.nelts; i++) {
        sp[i]->alpn = amcf->tls_alpn;
        ngx_acme_ssl_server_callback(sp[i]);
    }
}


static void
ngx_acme_ssl_server_callback(ngx_acme_server_t *srv)
{
    ngx_flag_t  need;

    need = (srv->alpn || srv->partial);

    if (need == srv->callback) {
        return;
    }

    /*
     * The callback lives in the context's certificate settings, which
     * SSL_new() and SNI's SSL_set_SSL_CTX() copy into each connection: it
     * applies from the next handshake on.
     */

    if (need) {
        SSL_CTX_set_cert_cb(srv->ctx, ngx_acme_ssl_cert_cb, srv);

    } else {
        SSL_CTX_set_cert_cb(srv->ctx, NULL, NULL);
    }

    srv->callback = need;
}


/*
 * Set only while needed (ngx_acme_ssl_server_callback).  ngx_http_ssl_module
 * only sets a cert callback for certificates with variables, which a
 * managed server cannot have; SNI moves the connection to the server's
 * SSL_CTX, callback included.
 */
static int
ngx_acme_ssl_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg)
{
    ngx_acme_server_t  *srv = arg;

    ngx_int_t             rc;
    ngx_acme_cert_t      *cert;
    ngx_acme_srv_conf_t  *ascf;

    /* a tls-alpn-01 challenge handshake gets its certificate, or fails */

    if (srv->alpn) {
        rc = ngx_acme_alpn_handshake(ssl_conn);

        if (rc != NGX_DECLINED) {
            return (rc == NGX_OK) ? 1 : 0;
        }
    }

    if (!srv->partial) {
        /* the context holds the right certificates: nothing to do */
        return 1;
    }

    /*
     * Partial: some certificates of the server are issued, but not one of
     * each key type nginx loaded (placeholder or bridge), and an SSL_CTX
     * has no call to remove a certificate.  The connection gets the issued
     * ones only: a client that can use only a type not issued yet fails
     * rather than get the placeholder or the bridge.  Lasts until that
     * type is issued.
     */

    SSL_certs_clear(ssl_conn);

    for (ascf = srv->head; ascf; ascf = ascf->next) {
        cert = ascf->cert;

        if (cert == NULL || cert->leaf == NULL || cert->key == NULL) {
            continue;
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

    return 1;
}


/* The servers using a certificate promoted since the last call. */
static void
ngx_acme_ssl_servers_update(ngx_acme_main_conf_t *amcf, ngx_log_t *log)
{
    ngx_uint_t            i, dirty;
    ngx_acme_cert_t     **certs;
    ngx_acme_server_t   **sp;
    ngx_acme_srv_conf_t  *ascf;

    sp = amcf->servers.elts;

    for (i = 0; i < amcf->servers.nelts; i++) {
        dirty = 0;

        for (ascf = sp[i]->head; ascf; ascf = ascf->next) {
            if (ascf->cert && ascf->cert->dirty) {
                dirty = 1;
                break;
            }
        }

        if (dirty) {
            ngx_acme_ssl_server_update(sp[i], log);
        }
    }

    certs = amcf->certs.elts;

    for (i = 0; i < amcf->certs.nelts; i++) {
        if (certs[i]->dirty) {
            /* written only when set: a write copies the inherited page */
            certs[i]->dirty = 0;
        }
    }
}


/*
 * Installs the server's current certificates into its SSL_CTX, in the
 * order of its acme_certificate lines (override: of two of one key type,
 * the last one wins), all of them again on any change, so that a renewed
 * first one does not take the slot of a later one.
 *
 * What nginx loaded (the placeholder, or the bridge's certificates) stays
 * in the context until certificates of its key types replace it.  While
 * some are issued but not those (a server with an ECDSA and an RSA
 * certificate, the RSA one issued first; an RSA bridge and a managed ECDSA
 * certificate; a stored bundle of an unexpected type; the bundle of a
 * changed key type's certificate, e.g. ECDSA, once the new RSA one is
 * issued), the context cannot hold the right set: "partial", and the
 * certificate callback fixes each connection up.
 */
static void
ngx_acme_ssl_server_update(ngx_acme_server_t *srv, ngx_log_t *log)
{
    ngx_uint_t            i, any, covered;
    ngx_acme_cert_t      *cert;
    ngx_acme_srv_conf_t  *ascf;

    any = 0;
    covered = 0;

    for (ascf = srv->head; ascf; ascf = ascf->next) {
        cert = ascf->cert;

        if (cert == NULL || cert->leaf == NULL || cert->key == NULL) {
            continue;
        }

        /* the context takes its own references (the chain is copied) */

        if (SSL_CTX_use_cert_and_key(srv->ctx, cert->leaf, cert->key,
                                     cert->chain, 1)
            != 1)
        {
            ngx_ssl_error(NGX_LOG_ALERT, log, 0,
                          "acme: SSL_CTX_use_cert_and_key(\"%V\") failed",
                          &cert->id);
            continue;
        }

        any = 1;

        for (i = 0; i < srv->nloaded; i++) {
            if (EVP_PKEY_base_id(cert->key) == srv->loaded[i]) {
                covered |= (ngx_uint_t) 1 << i;
                break;
            }
        }

        /*
         * a type the context did not hold (the bundle a changed key type
         * replaces, e.g. ECDSA served for a key=rsa:2048 certificate until
         * it is issued) stays in it too once replaced: listed as loaded
         */

        if (i == srv->nloaded
            && srv->nloaded < sizeof(srv->loaded) / sizeof(srv->loaded[0]))
        {
            srv->loaded[srv->nloaded++] = EVP_PKEY_base_id(cert->key);
            covered |= (ngx_uint_t) 1 << i;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                       "acme: certificate \"%V\" in the SSL context of the "
                       "server in %s:%ui", &cert->id, srv->head->file,
                       srv->head->line);
    }

    /* every type nginx loaded replaced, or the rest would still be served */
    srv->partial = (any && covered != ((ngx_uint_t) 1 << srv->nloaded) - 1);

    ngx_acme_ssl_server_callback(srv);
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
    u_char             *pem;
    size_t              len;
    ngx_uint_t          i, gen, cgen;
    ngx_acme_cert_t   **certs, *cert;
    ngx_acme_shctx_t   *sh;

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

        (void) ngx_acme_ssl_parse(amcf, cert, pem, len, cgen, NULL, log);
        ngx_free(pem);
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

    ngx_acme_ssl_servers_update(amcf, log);
}


/*
 * The master, at start, once it has parsed the stored bundles (active from
 * the start, ngx_acme_init_module): installs them into the servers'
 * SSL_CTX before any worker exists, as nginx loads a static
 * ssl_certificate.  The workers inherit the contexts ready to serve and do
 * nothing per certificate before their first handshake: no install (which
 * would write, hence copy, every inherited certificate, key and context
 * page in each worker), no walk of the zone's slots when the master has
 * parsed every certificate's current bundle (amcf->generation).
 */
void
ngx_acme_ssl_master_install(ngx_acme_main_conf_t *amcf, ngx_log_t *log)
{
    ngx_uint_t          i, all;
    ngx_acme_cert_t   **certs, *cert;
    ngx_acme_shctx_t   *sh;

    sh = ngx_acme_shm_ctx(amcf);
    certs = amcf->certs.elts;
    all = 1;

    ngx_acme_shm_lock(amcf);

    for (i = 0; i < amcf->certs.nelts; i++) {
        cert = certs[i];

        if (cert->slot == NULL) {
            continue;
        }

        if (cert->generation != cert->slot->generation) {
            /* e.g. a reload: the workers parse it from the zone */
            all = 0;
        }

        if (cert->next_leaf && cert->slot->active == cert->next_gen) {
            ngx_acme_ssl_promote(cert);
        }
    }

    if (all) {
        amcf->generation = sh->generation;
    }

    ngx_acme_shm_unlock(amcf);

    /* first, as nginx loads a static certificate before we install ours */
    ngx_acme_ssl_placeholders(amcf, log);

    ngx_acme_ssl_servers_update(amcf, log);
}


/*
 * Parses a bundle of cert (generation cgen) into its next_* objects: in a
 * worker when the zone changed (ngx_acme_ssl_refresh), and in the master
 * for the bundles it loads from the store at start, before any worker
 * exists: the workers inherit them parsed (no parse per worker).
 * NGX_ERROR when the bundle is unusable (logged; cert->generation follows
 * anyway, it is not parsed again).  out, unless NULL: the leaf's details
 * (the caller frees them; only on NGX_OK), from the same parse.
 */
ngx_int_t
ngx_acme_ssl_parse(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    u_char *pem, size_t len, ngx_uint_t cgen, acme_cert_info_t *out,
    ngx_log_t *log)
{
    char                err[ACME_ERRLEN];
    X509               *leaf, *first;
    EVP_PKEY           *key;
    acme_cert_info_t    info;
    STACK_OF(X509)     *chain;

    key = NULL;
    leaf = NULL;
    chain = NULL;
    ngx_cpystrn((u_char *) err, (u_char *) "no key or certificate",
                sizeof(err));

    if (amcf->x509_cache == NULL) {
        amcf->x509_cache = acme_x509_cache_new();   /* NULL: none */
    }

    if (acme_bundle_parse_cached((char *) pem, len, amcf->x509_cache,
                                 &key, &leaf, &chain, err, sizeof(err))
        != 0
        || key == NULL || leaf == NULL)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "acme: certificate \"%V\": stored bundle is "
                      "unusable: %s", &cert->id, err);
        EVP_PKEY_free(key);
        X509_free(leaf);
        sk_X509_pop_free(chain, X509_free);
        cert->generation = cgen;
        return NGX_ERROR;
    }

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
    cert->key_other = 0;
    (void) acme_ari_cert_id(leaf, cert->ari_id, sizeof(cert->ari_id));

    if (acme_cert_info_from_x509(leaf, &info) == 0) {
        cert->names_match = acme_cert_info_names_equal(&info,
                              (const char *const *) cert->names.elts,
                              cert->names.nelts);
        cert->key_other = acme_cert_info_key_other(&info,
                                                   cert->key_type);

        /*
         * Our own order's certificate has every configured name (the
         * engine checks it); names the CA added would make ordering
         * again loop without end.
         */
        if (cgen == cert->ordered_gen) {
            cert->names_match = 1;
        }

        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "acme: certificate \"%V\" parsed in %s process %P "
                      "(serial %s)", &cert->id,
                      ngx_process == NGX_PROCESS_WORKER ? "worker"
                                                        : "master",
                      ngx_pid, info.serial);

        if (out) {
            *out = info;            /* the caller's to free */

        } else {
            acme_cert_info_free(&info);
        }

    } else if (out) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "acme: certificate \"%V\": stored bundle ignored: "
                      "cannot inspect its certificate", &cert->id);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * next_* become the objects in use (the servers' contexts follow in
 * ngx_acme_ssl_servers_update); handshakes in progress hold refs.
 */
static void
ngx_acme_ssl_promote(ngx_acme_cert_t *cert)
{
    ngx_acme_ssl_install(cert, cert->next_key, cert->next_leaf,
                         cert->next_chain);

    cert->cur_gen = cert->next_gen;
    cert->dirty = 1;
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

    acme_x509_cache_free(amcf->x509_cache);
    amcf->x509_cache = NULL;
}
