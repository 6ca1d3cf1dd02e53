/*
 * tls-alpn-01 (RFC 8737): the CA connects to port 443 of the name with the
 * SNI of the name and ALPN "acme-tls/1" only, and expects a self-signed
 * certificate carrying SHA-256(key authorization) in a critical
 * acmeIdentifier extension.  Nothing else may happen on such a connection.
 *
 * How it fits into nginx (1.22, OpenSSL 3.0):
 *
 *   ClientHello callback  on every server's SSL_CTX, because it runs on the
 *                         context of the listen's default server, before
 *                         SNI picks the server: marks the SSL object (ex
 *                         data) when the client offers "acme-tls/1" alone;
 *                         offered among other protocols, it is an ordinary
 *                         client's and the handshake goes on as any other.
 *   ALPN select callback  on managed servers' SSL_CTX (it runs on the
 *                         context SNI switched to): selects "acme-tls/1" on
 *                         a marked connection, else exactly what nginx's
 *                         own ngx_http_ssl_alpn_select() does.  That
 *                         function is static and OpenSSL 3.0 has no getter
 *                         for a context's callback, so it cannot be
 *                         wrapped; its selection is three lines and is
 *                         repeated here (h2 first when the listen has
 *                         http2, then http/1.1, http/1.0, http/0.9).
 *   cert callback         (ngx_acme_ssl.c) on managed servers, set only
 *                         when a certificate uses tls-alpn-01: on a marked
 *                         connection installs the challenge certificate of
 *                         the SNI's pending authorization and nothing else,
 *                         or fails the handshake when none is pending; on
 *                         any other it returns at once (the server's
 *                         certificates are in its SSL_CTX).
 *
 * The mark, not SSL_get0_alpn_selected(), tells the cert callback: with
 * TLS 1.2 OpenSSL runs the cert callback before ALPN selection (with
 * TLS 1.3 after it).  Servers without acme_certificate keep nginx's ALPN
 * callback, which refuses "acme-tls/1" (no common protocol): a challenge
 * for a name they serve fails the handshake, as it must.
 *
 * After a challenge handshake the connection serves nothing: the ALPN and
 * cert callbacks set c->close, which ngx_http_wait_request_handler() (the next
 * step after ngx_http_ssl_handshake_handler() for anything but h2) checks
 * before reading a byte, and closes the connection.
 *
 * The challenge certificates are built per worker, when the first
 * challenge handshake for an authorization arrives, with
 * acme_alpn_challenge_cert() (X509/EVP_PKEY objects, no PEM), and cached
 * by identifier + key authorization until the authorization is no longer
 * pending.  Building one costs a P-256 key generation, as much as the
 * ephemeral ECDHE key every TLS handshake generates anyway.
 */

#include "ngx_acme.h"


#define NGX_ACME_ALPN_MAX_CERTS  32

/* as ngx_http_ssl_module.c and ngx_http_v2.h define them (not exported) */
#define NGX_ACME_HTTP_ALPN_PROTOS  "\x08http/1.1\x08http/1.0\x08http/0.9"
#define NGX_ACME_HTTP_V2_ALPN      "\x02h2"


typedef struct {
    ngx_queue_t               queue;
    u_char                    identifier[NGX_ACME_IDENT_LEN + 1];
    u_char                    key_authz[NGX_ACME_KEYAUTHZ_LEN + 1];
    X509                     *cert;
    EVP_PKEY                 *key;
} ngx_acme_alpn_cert_t;


static int ngx_acme_alpn_client_hello(ngx_ssl_conn_t *ssl_conn, int *al,
    void *arg);
static int ngx_acme_alpn_select(ngx_ssl_conn_t *ssl_conn,
    const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg);
static ngx_acme_alpn_cert_t *ngx_acme_alpn_cert(ngx_acme_main_conf_t *amcf,
    const char *identifier, u_char *key_authz, ngx_log_t *log);
static void ngx_acme_alpn_cert_free(ngx_acme_main_conf_t *amcf,
    ngx_acme_alpn_cert_t *ac);


static int  ngx_acme_alpn_index = -1;
static int  ngx_acme_alpn_mark;             /* its address is the mark */


/* Postconfiguration, when a certificate uses tls-alpn-01. */
ngx_int_t
ngx_acme_alpn_init(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf)
{
    ngx_uint_t                  s;
    ngx_acme_srv_conf_t        *ascf;
    ngx_http_ssl_srv_conf_t    *sscf;
    ngx_http_core_srv_conf_t  **cscfp;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_acme_alpn_index == -1) {
        ngx_acme_alpn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL,
                                                   NULL);
        if (ngx_acme_alpn_index == -1) {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "acme: SSL_get_ex_new_index() failed");
            return NGX_ERROR;
        }
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    cscfp = cmcf->servers.elts;

    for (s = 0; s < cmcf->servers.nelts; s++) {

        sscf = cscfp[s]->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

        if (sscf->ssl.ctx == NULL) {
            continue;
        }

        SSL_CTX_set_client_hello_cb(sscf->ssl.ctx, ngx_acme_alpn_client_hello,
                                    NULL);

        ascf = cscfp[s]->ctx->srv_conf[ngx_http_acme_module.ctx_index];

        if (ascf->cert) {
            SSL_CTX_set_alpn_select_cb(sscf->ssl.ctx, ngx_acme_alpn_select,
                                       NULL);
        }
    }

    return NGX_OK;
}


static int
ngx_acme_alpn_client_hello(ngx_ssl_conn_t *ssl_conn, int *al, void *arg)
{
    size_t                len;
    const unsigned char  *ext;

    /* called again after a HelloRetryRequest: the last hello decides */

    (void) SSL_set_ex_data(ssl_conn, ngx_acme_alpn_index, NULL);

    if (SSL_client_hello_get0_ext(ssl_conn,
                                  TLSEXT_TYPE_application_layer_protocol_negotiation,
                                  &ext, &len)
        != 1)
    {
        return SSL_CLIENT_HELLO_SUCCESS;
    }

    /* ProtocolNameList: a two-byte length, then length-prefixed names */

    if (len < 2 || (size_t) ((ext[0] << 8) | ext[1]) != len - 2) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }

    /*
     * A CA offers "acme-tls/1" alone (RFC 8737 section 3).  Offered among
     * other protocols it is an ordinary client's: no mark, nginx's own
     * selection and certificate, as mod_ssl does (acme-tls/1 is for
     * validation only, section 4: a normal client must not break).
     */

    if (acme_alpn_offered(ext + 2, len - 2) == 2) {
        (void) SSL_set_ex_data(ssl_conn, ngx_acme_alpn_index,
                               &ngx_acme_alpn_mark);
    }

    return SSL_CLIENT_HELLO_SUCCESS;
}


static int
ngx_acme_alpn_select(ngx_ssl_conn_t *ssl_conn, const unsigned char **out,
    unsigned char *outlen, const unsigned char *in, unsigned int inlen,
    void *arg)
{
    unsigned int            srvlen;
    unsigned char          *srv;
    ngx_connection_t       *c;
#if (NGX_HTTP_V2)
    ngx_http_connection_t  *hc;
#endif

    c = ngx_ssl_get_connection(ssl_conn);

    if (SSL_get_ex_data(ssl_conn, ngx_acme_alpn_index) == &ngx_acme_alpn_mark)
    {
        /*
         * Closed after the handshake here too: a resumed handshake does
         * not run the cert callback, and "acme-tls/1" must never carry HTTP.
         */
        c->close = 1;

        *out = (const unsigned char *) ACME_ALPN_PROTO;
        *outlen = ACME_ALPN_PROTO_LEN;
        return SSL_TLSEXT_ERR_OK;
    }

#if (NGX_HTTP_V2)
    hc = c->data;

    if (hc->addr_conf->http2) {
        srv = (unsigned char *) NGX_ACME_HTTP_V2_ALPN NGX_ACME_HTTP_ALPN_PROTOS;
        srvlen = sizeof(NGX_ACME_HTTP_V2_ALPN NGX_ACME_HTTP_ALPN_PROTOS) - 1;

    } else
#endif
    {
        srv = (unsigned char *) NGX_ACME_HTTP_ALPN_PROTOS;
        srvlen = sizeof(NGX_ACME_HTTP_ALPN_PROTOS) - 1;
    }

    if (SSL_select_next_proto((unsigned char **) out, outlen, srv, srvlen,
                              in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
    {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }

    return SSL_TLSEXT_ERR_OK;
}


/*
 * From the cert callback of a managed server.  NGX_DECLINED: not a
 * challenge connection; NGX_OK: the challenge certificate is installed;
 * NGX_ERROR: fail the handshake.
 */
ngx_int_t
ngx_acme_alpn_handshake(ngx_ssl_conn_t *ssl_conn)
{
    u_char                 key_authz[NGX_ACME_KEYAUTHZ_LEN + 1];
    char                   buf[NGX_ACME_IDENT_LEN + 1];
    size_t                 n;
    const char            *sni, *identifier;
    ngx_connection_t      *c;
    ngx_acme_alpn_cert_t  *ac;
    ngx_acme_main_conf_t  *amcf;

    if (ngx_acme_alpn_index == -1
        || SSL_get_ex_data(ssl_conn, ngx_acme_alpn_index)
           != &ngx_acme_alpn_mark)
    {
        return NGX_DECLINED;
    }

    c = ngx_ssl_get_connection(ssl_conn);

    /* nothing is served on this connection, whatever happens */
    c->close = 1;

    amcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_acme_module);

    sni = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);

    if (sni == NULL || amcf == NULL || amcf->shm_zone == NULL) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "acme: tls-alpn-01 handshake without a server name "
                      "refused");
        return NGX_ERROR;
    }

    identifier = acme_alpn_sni_identifier(sni, buf, sizeof(buf));

    n = sizeof(key_authz);

    if (identifier == NULL
        || ngx_acme_shm_find(amcf, ACME_CHAL_TLS_ALPN_01, identifier,
                             ngx_strlen(identifier), key_authz, &n)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "acme: tls-alpn-01 handshake for \"%s\" refused: no "
                      "pending authorization", sni);
        return NGX_ERROR;
    }

    ac = ngx_acme_alpn_cert(amcf, identifier, key_authz, c->log);
    if (ac == NULL) {
        return NGX_ERROR;
    }

    SSL_certs_clear(ssl_conn);

    if (SSL_use_cert_and_key(ssl_conn, ac->cert, ac->key, NULL, 1) != 1) {
        ngx_ssl_error(NGX_LOG_ALERT, c->log, 0,
                      "acme: SSL_use_cert_and_key(tls-alpn-01 \"%s\") failed",
                      identifier);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "acme: answering tls-alpn-01 for \"%s\"", identifier);

    return NGX_OK;
}


/* The cached challenge certificate, built on first use. */
static ngx_acme_alpn_cert_t *
ngx_acme_alpn_cert(ngx_acme_main_conf_t *amcf, const char *identifier,
    u_char *key_authz, ngx_log_t *log)
{
    char                   err[ACME_ERRLEN];
    X509                  *cert;
    EVP_PKEY              *key;
    ngx_queue_t           *q;
    ngx_acme_alpn_cert_t  *ac;

    if (amcf->alpn_certs.next == NULL) {
        ngx_queue_init(&amcf->alpn_certs);
    }

    for (q = ngx_queue_head(&amcf->alpn_certs);
         q != ngx_queue_sentinel(&amcf->alpn_certs);
         q = ngx_queue_next(q))
    {
        ac = ngx_queue_data(q, ngx_acme_alpn_cert_t, queue);

        if (ngx_strcmp(ac->identifier, identifier) == 0
            && ngx_strcmp(ac->key_authz, key_authz) == 0)
        {
            return ac;
        }
    }

    cert = NULL;
    key = NULL;
    err[0] = '\0';

    if (acme_alpn_challenge_cert(identifier, (char *) key_authz, &cert, &key,
                                 err, sizeof(err))
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "acme: cannot make the tls-alpn-01 certificate of "
                      "\"%s\": %s", identifier, err);
        return NULL;
    }

    ac = ngx_alloc(sizeof(ngx_acme_alpn_cert_t), log);
    if (ac == NULL) {
        X509_free(cert);
        EVP_PKEY_free(key);
        return NULL;
    }

    ngx_cpystrn(ac->identifier, (u_char *) identifier,
                sizeof(ac->identifier));
    ngx_cpystrn(ac->key_authz, key_authz, sizeof(ac->key_authz));
    ac->cert = cert;
    ac->key = key;

    /* bounded: the oldest goes (expire normally frees them first) */

    if (amcf->alpn_ncerts >= NGX_ACME_ALPN_MAX_CERTS) {
        ngx_acme_alpn_cert_free(amcf,
                                ngx_queue_data(ngx_queue_last(&amcf->alpn_certs),
                                               ngx_acme_alpn_cert_t, queue));
    }

    ngx_queue_insert_head(&amcf->alpn_certs, &ac->queue);
    amcf->alpn_ncerts++;

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "acme: tls-alpn-01 certificate for \"%s\" made in worker "
                  "process %P", identifier, ngx_pid);

    return ac;
}


/* Worker tick: drops the certificates of authorizations no longer pending. */
void
ngx_acme_alpn_expire(ngx_acme_main_conf_t *amcf)
{
    u_char                 key_authz[NGX_ACME_KEYAUTHZ_LEN + 1];
    size_t                 n;
    ngx_queue_t           *q, *next;
    ngx_acme_alpn_cert_t  *ac;

    if (amcf->alpn_certs.next == NULL) {
        return;
    }

    for (q = ngx_queue_head(&amcf->alpn_certs);
         q != ngx_queue_sentinel(&amcf->alpn_certs);
         q = next)
    {
        next = ngx_queue_next(q);
        ac = ngx_queue_data(q, ngx_acme_alpn_cert_t, queue);

        n = sizeof(key_authz);

        if (ngx_acme_shm_find(amcf, ACME_CHAL_TLS_ALPN_01,
                              (char *) ac->identifier,
                              ngx_strlen(ac->identifier), key_authz, &n)
            == NGX_OK
            && ngx_strcmp(key_authz, ac->key_authz) == 0)
        {
            continue;
        }

        ngx_acme_alpn_cert_free(amcf, ac);
    }
}


void
ngx_acme_alpn_free(ngx_acme_main_conf_t *amcf)
{
    ngx_queue_t  *q;

    if (amcf->alpn_certs.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&amcf->alpn_certs)) {
        q = ngx_queue_head(&amcf->alpn_certs);
        ngx_acme_alpn_cert_free(amcf,
                                ngx_queue_data(q, ngx_acme_alpn_cert_t, queue));
    }
}


static void
ngx_acme_alpn_cert_free(ngx_acme_main_conf_t *amcf, ngx_acme_alpn_cert_t *ac)
{
    ngx_queue_remove(&ac->queue);
    amcf->alpn_ncerts--;

    /* a handshake in progress holds its own references */
    X509_free(ac->cert);
    EVP_PKEY_free(ac->key);
    ngx_free(ac);
}
