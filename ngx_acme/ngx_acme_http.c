/*
 * A non-blocking HTTP(S) client on nginx's event loop: one exchange per
 * connection (the request says "Connection: close").
 *
 * States: resolve (address literal, the configuration-time addresses of the
 * directory host, or nginx's resolver) -> connect (each address in turn) ->
 * TLS handshake + verification -> send -> receive until the parser says the
 * response is complete.  One timer of our own covers every step, re-armed on
 * each bit of progress, so a step that stalls fails with a message naming the
 * step.  Every outcome, including failures found before any I/O, reaches the
 * caller through a posted event: the handler never runs inside
 * ngx_acme_http_start() and nothing of ours is on the stack when it runs, so
 * it may free the exchange.
 *
 * Everything lives in the exchange's pool; the malloc'd objects of common/
 * (URL, parser) are released by a cleanup of that pool.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include <openssl/x509v3.h>

#include "ngx_acme_http.h"


#define NGX_ACME_HTTP_ERRLEN          512
#define NGX_ACME_HTTP_BUFSIZE         8192
#define NGX_ACME_HTTP_VERIFY_DEPTH    10
#define NGX_ACME_HTTP_DEFAULT_TIMEOUT 30000


typedef enum {
    ngx_acme_http_st_start = 0,
    ngx_acme_http_st_resolving,
    ngx_acme_http_st_connecting,
    ngx_acme_http_st_handshake,
    ngx_acme_http_st_sending,
    ngx_acme_http_st_reading,
    ngx_acme_http_st_done
} ngx_acme_http_state_e;


struct ngx_acme_http_s {
    ngx_pool_t                  *pool;
    ngx_acme_http_conf_t        *conf;
    ngx_log_t                    log;        /* caller's log + our context */

    ngx_acme_http_done_pt        handler;
    void                        *data;

    /* the request, copied: the engine's pointers die before we finish */
    u_char                      *method;
    u_char                      *url_text;
    acme_url_t                   url;        /* malloc'd, see cleanup */
    unsigned                     url_parsed:1;
    unsigned                     ip_literal:1;
    ngx_str_t                    host;       /* url.host */

    u_char                      *request;
    size_t                       request_len;
    size_t                       sent;

    acme_http_parser_t          *parser;     /* malloc'd, see cleanup */
    u_char                      *buf;

    ngx_addr_t                  *addrs;      /* names: "host:port (ip:port)" */
    ngx_uint_t                   naddrs;
    ngx_uint_t                   next_addr;
    ngx_str_t                   *peer_name;  /* of the current attempt */

    ngx_resolver_ctx_t          *resolve;
    ngx_peer_connection_t        peer;

    ngx_msec_t                   connect_timeout;
    ngx_msec_t                   timeout;
    size_t                       max_body;

    ngx_event_t                  timer;
    ngx_event_t                  done_event;

    ngx_acme_http_state_e        state;
    const acme_http_response_t  *response;
    u_char                       error[NGX_ACME_HTTP_ERRLEN];
};


static void ngx_acme_http_cleanup(void *data);
static u_char *ngx_acme_http_log_error(ngx_log_t *log, u_char *buf,
    size_t len);
static void ngx_acme_http_set_error(ngx_acme_http_t *h, const char *fmt, ...);
static void ngx_acme_http_set_errno(ngx_acme_http_t *h, ngx_err_t err,
    const char *what);
static void ngx_acme_http_finish(ngx_acme_http_t *h);
static void ngx_acme_http_done_handler(ngx_event_t *ev);
static void ngx_acme_http_close(ngx_acme_http_t *h, ngx_uint_t quiet);
static ngx_int_t ngx_acme_http_copy_addrs(ngx_acme_http_t *h,
    ngx_addr_t *src, ngx_uint_t n);
static void ngx_acme_http_resolve(ngx_acme_http_t *h);
static void ngx_acme_http_resolve_handler(ngx_resolver_ctx_t *ctx);
static void ngx_acme_http_connect(ngx_acme_http_t *h);
static void ngx_acme_http_connect_next(ngx_acme_http_t *h);
static void ngx_acme_http_connected(ngx_acme_http_t *h);
static void ngx_acme_http_handshake_handler(ngx_connection_t *c);
static ngx_int_t ngx_acme_http_verify(ngx_acme_http_t *h,
    ngx_connection_t *c);
static void ngx_acme_http_send(ngx_acme_http_t *h);
static void ngx_acme_http_read(ngx_acme_http_t *h);
static void ngx_acme_http_parser_failed(ngx_acme_http_t *h);
static void ngx_acme_http_event_handler(ngx_event_t *ev);
static void ngx_acme_http_timeout_handler(ngx_event_t *ev);


/* the User-Agent of every request, made at the first one (per process) */
static char  ngx_acme_http_user_agent[128];


ngx_int_t
ngx_acme_http_ssl_init(ngx_conf_t *cf, ngx_ssl_t *ssl, ngx_str_t *trusted)
{
    ngx_str_t            file;
    ngx_pool_cleanup_t  *cln;

    ssl->log = cf->log;

    if (ngx_ssl_create(ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = ssl;

    /*
     * ngx_ssl_trusted_certificate() keeps this mode and installs nginx's
     * verify callback, which accepts every chain (logging it at debug
     * level): the handshake completes and the exact reason is reported from
     * SSL_get_verify_result(), as nginx's proxy does; an unverified peer
     * never gets the request.
     */
    SSL_CTX_set_verify(ssl->ctx, SSL_VERIFY_PEER, NULL);

    if (trusted != NULL && trusted->len) {
        file = *trusted;    /* ngx_conf_full_name() rewrites it */

    } else {
        ngx_str_null(&file);
    }

    if (ngx_ssl_trusted_certificate(cf, ssl, &file,
                                    NGX_ACME_HTTP_VERIFY_DEPTH)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (file.len == 0 && SSL_CTX_set_default_verify_paths(ssl->ctx) != 1) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_default_verify_paths() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_acme_http_t *
ngx_acme_http_start(ngx_acme_http_conf_t *conf,
    const acme_http_request_t *req, ngx_log_t *log,
    ngx_acme_http_done_pt handler, void *data)
{
    char                 err[256], *wire;
    size_t               len;
    ngx_int_t            rc;
    ngx_str_t            s;
    ngx_addr_t           addr;
    ngx_pool_t          *pool;
    ngx_acme_http_t     *h;
    ngx_pool_cleanup_t  *cln;

    pool = ngx_create_pool(4096, log);
    if (pool == NULL) {
        return NULL;
    }

    h = ngx_pcalloc(pool, sizeof(ngx_acme_http_t));
    if (h == NULL) {
        goto failed;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        goto failed;
    }

    cln->handler = ngx_acme_http_cleanup;
    cln->data = h;

    h->pool = pool;
    h->conf = conf;
    h->handler = handler;
    h->data = data;

    h->log = *log;
    h->log.handler = ngx_acme_http_log_error;
    h->log.data = h;
    h->log.action = NULL;
    pool->log = &h->log;

    h->timeout = conf->timeout ? conf->timeout : NGX_ACME_HTTP_DEFAULT_TIMEOUT;
    h->connect_timeout = conf->connect_timeout ? conf->connect_timeout
                                               : h->timeout;
    h->max_body = conf->max_body ? conf->max_body : ACME_HTTP_MAX_BODY;

    h->timer.handler = ngx_acme_http_timeout_handler;
    h->timer.data = h;
    h->timer.log = &h->log;
    /* a worker shutting down need not wait for an exchange to time out:
     * the job is resumable */
    h->timer.cancelable = 1;

    h->done_event.handler = ngx_acme_http_done_handler;
    h->done_event.data = h;
    h->done_event.log = &h->log;

    s.data = (u_char *) (req->method ? req->method : "GET");
    s.len = ngx_strlen(s.data);
    h->method = ngx_pnalloc(pool, s.len + 1);
    if (h->method == NULL) {
        goto failed;
    }

    (void) ngx_cpystrn(h->method, s.data, s.len + 1);

    s.data = (u_char *) (req->url ? req->url : "");
    s.len = ngx_strlen(s.data);
    h->url_text = ngx_pnalloc(pool, s.len + 1);
    if (h->url_text == NULL) {
        goto failed;
    }

    (void) ngx_cpystrn(h->url_text, s.data, s.len + 1);

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http start: %s %s", h->method, h->url_text);

    /* acme_url_free() is safe on whatever a failed parse leaves */
    h->url_parsed = 1;

    if (acme_url_parse((char *) h->url_text, &h->url, err, sizeof(err)) != 0)
    {
        ngx_acme_http_set_error(h, "%s", err);
        ngx_acme_http_finish(h);
        return h;
    }

    h->host.data = (u_char *) h->url.host;
    h->host.len = ngx_strlen(h->url.host);

    if (h->url.https && conf->ssl == NULL) {
        ngx_acme_http_set_error(h, "no TLS client context for \"%s\"",
                                h->url_text);
        ngx_acme_http_finish(h);
        return h;
    }

    if (ngx_acme_http_user_agent[0] == '\0') {
        /* "ngx_acme/<version> nginx/<version> OpenSSL/<version>" */
        (void) acme_http_user_agent(ngx_acme_http_user_agent,
                                    sizeof(ngx_acme_http_user_agent),
                                    "ngx_acme", NGINX_VER);
    }

    wire = acme_http_serialize(req, &h->url, ngx_acme_http_user_agent, &len);
    if (wire == NULL) {
        goto failed;
    }

    h->request = ngx_pnalloc(pool, len);
    if (h->request == NULL) {
        free(wire);
        goto failed;
    }

    ngx_memcpy(h->request, wire, len);
    h->request_len = len;
    free(wire);

    h->parser = acme_http_parser_new(h->max_body);
    if (h->parser == NULL) {
        goto failed;
    }

    if (ngx_strcmp(h->method, "HEAD") == 0) {
        acme_http_parser_set_head(h->parser);
    }

    h->buf = ngx_pnalloc(pool, NGX_ACME_HTTP_BUFSIZE);
    if (h->buf == NULL) {
        goto failed;
    }

    /* where to connect */

    rc = ngx_parse_addr(pool, &addr, h->host.data, h->host.len);

    if (rc == NGX_ERROR) {
        goto failed;
    }

    if (rc == NGX_OK) {
        h->ip_literal = 1;

        if (ngx_acme_http_copy_addrs(h, &addr, 1) != NGX_OK) {
            goto failed;
        }

        ngx_acme_http_connect(h);
        return h;
    }

    if (conf->static_naddrs
        && conf->static_host.len == h->host.len
        && ngx_strncasecmp(conf->static_host.data, h->host.data, h->host.len)
           == 0)
    {
        if (ngx_acme_http_copy_addrs(h, conf->static_addrs,
                                     conf->static_naddrs)
            != NGX_OK)
        {
            goto failed;
        }

        ngx_acme_http_connect(h);
        return h;
    }

    ngx_acme_http_resolve(h);
    return h;

failed:

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "acme: cannot start a request: out of memory");
    ngx_destroy_pool(pool);
    return NULL;
}


const acme_http_response_t *
ngx_acme_http_response(ngx_acme_http_t *h)
{
    return h->response;
}


const char *
ngx_acme_http_error(ngx_acme_http_t *h)
{
    return (const char *) h->error;
}


void
ngx_acme_http_free(ngx_acme_http_t *h)
{
    if (h == NULL) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http free, state %d", (int) h->state);

    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    if (h->done_event.posted) {
        ngx_delete_posted_event(&h->done_event);
    }

    ngx_acme_http_close(h, 1);

    ngx_destroy_pool(h->pool);
}


static void
ngx_acme_http_cleanup(void *data)
{
    ngx_acme_http_t  *h = data;

    if (h->parser) {
        acme_http_parser_free(h->parser);
        h->parser = NULL;
    }

    if (h->url_parsed) {
        acme_url_free(&h->url);
        h->url_parsed = 0;
    }
}


static u_char *
ngx_acme_http_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char           *p;
    ngx_acme_http_t  *h;

    h = log->data;
    p = buf;

    if (log->action) {
        p = ngx_snprintf(p, len, " while %s", log->action);
        len -= p - buf;
        buf = p;
    }

    if (h->peer_name) {
        p = ngx_snprintf(p, len, ", ACME server: %V", h->peer_name);
        len -= p - buf;
        buf = p;
    }

    return ngx_snprintf(p, len, ", request: \"%s %s\"",
                        h->method, h->url_text);
}


static void
ngx_acme_http_set_error(ngx_acme_http_t *h, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(h->error, h->error + sizeof(h->error) - 1, fmt, args);
    va_end(args);

    *p = '\0';
}


static void
ngx_acme_http_set_errno(ngx_acme_http_t *h, ngx_err_t err, const char *what)
{
    u_char  msg[NGX_MAX_ERROR_STR], *p;

    p = ngx_strerror(err, msg, sizeof(msg));

    ngx_acme_http_set_error(h, "%s %V failed (%d: %*s)", what, h->peer_name,
                            (int) err, (size_t) (p - msg), msg);
}


/*
 * The outcome is known (response or error): release the network resources
 * now and tell the caller from a posted event.  The "next" queue makes the
 * event loop run it in its next iteration without waiting, whatever context
 * we are called from (even before the loop has started).
 */
static void
ngx_acme_http_finish(ngx_acme_http_t *h)
{
    if (h->state == ngx_acme_http_st_done) {
        return;
    }

    if (h->response == NULL && h->error[0] == '\0') {
        ngx_acme_http_set_error(h, "request to \"%s\" failed", h->url_text);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http finish: %s%s",
                   h->response ? "response " : "", h->error);

    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    ngx_acme_http_close(h, h->response == NULL);

    h->state = ngx_acme_http_st_done;
    h->log.action = NULL;

    ngx_post_event(&h->done_event, &ngx_posted_next_events);
}


static void
ngx_acme_http_done_handler(ngx_event_t *ev)
{
    ngx_acme_http_t  *h = ev->data;

    /* the handler may free h: nothing may touch it afterwards */
    h->handler(h, h->data);
}


static void
ngx_acme_http_close(ngx_acme_http_t *h, ngx_uint_t quiet)
{
    ngx_connection_t  *c;

    if (h->resolve) {
        ngx_resolve_name_done(h->resolve);
        h->resolve = NULL;
    }

    c = h->peer.connection;

    if (c == NULL) {
        return;
    }

    h->peer.connection = NULL;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http close connection: %d", c->fd);

    if (c->ssl) {
        /* send close_notify after a good exchange, never wait for the
         * peer's; after a failure just drop the session */
        c->ssl->no_wait_shutdown = 1;

        if (quiet) {
            c->ssl->no_send_shutdown = 1;
        }

        if (ngx_ssl_shutdown(c) == NGX_AGAIN) {
            /* close_notify did not fit in the socket buffer: we won't
             * wait, and ngx_close_connection() does not free the SSL */
            SSL_free(c->ssl->connection);
            c->ssl = NULL;
        }
    }

    ngx_close_connection(c);
}


static ngx_int_t
ngx_acme_http_copy_addrs(ngx_acme_http_t *h, ngx_addr_t *src, ngx_uint_t n)
{
    u_char      text[NGX_SOCKADDR_STRLEN], *p;
    size_t      len;
    ngx_uint_t  i;
    ngx_addr_t *dst;

    dst = ngx_pcalloc(h->pool, n * sizeof(ngx_addr_t));
    if (dst == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        dst[i].socklen = src[i].socklen;
        dst[i].sockaddr = ngx_palloc(h->pool, src[i].socklen);
        if (dst[i].sockaddr == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(dst[i].sockaddr, src[i].sockaddr, src[i].socklen);
        ngx_inet_set_port(dst[i].sockaddr, (in_port_t) h->url.port);

        len = ngx_sock_ntop(dst[i].sockaddr, dst[i].socklen, text,
                            NGX_SOCKADDR_STRLEN, 1);

        if (h->ip_literal) {
            p = ngx_pnalloc(h->pool, len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            dst[i].name.len = ngx_cpymem(p, text, len) - p;

        } else {
            /* "host:port (address:port)" */
            p = ngx_pnalloc(h->pool, h->host.len + sizeof(":65535 ()") + len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            dst[i].name.len = ngx_sprintf(p, "%V:%d (%*s)", &h->host,
                                          h->url.port, len, text)
                              - p;
        }

        dst[i].name.data = p;
    }

    h->addrs = dst;
    h->naddrs = n;
    h->next_addr = 0;

    return NGX_OK;
}


static void
ngx_acme_http_resolve(ngx_acme_http_t *h)
{
    ngx_resolver_ctx_t  *ctx, temp;

    if (h->conf->resolver == NULL) {
        goto no_resolver;
    }

    ngx_memzero(&temp, sizeof(ngx_resolver_ctx_t));
    temp.name = h->host;

    ctx = ngx_resolve_start(h->conf->resolver, &temp);

    if (ctx == NULL) {
        ngx_acme_http_set_error(h, "cannot start resolving \"%V\"", &h->host);
        ngx_acme_http_finish(h);
        return;
    }

    if (ctx == NGX_NO_RESOLVER) {
        goto no_resolver;
    }

    ctx->name = h->host;
    ctx->handler = ngx_acme_http_resolve_handler;
    ctx->data = h;
    ctx->timeout = h->conf->resolver_timeout ? h->conf->resolver_timeout
                                             : NGX_ACME_HTTP_DEFAULT_TIMEOUT;
    ctx->cancelable = 1;    /* as our own timer */

    h->resolve = ctx;
    h->state = ngx_acme_http_st_resolving;
    h->log.action = "resolving the ACME server";

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http resolving \"%V\"", &h->host);

    /* the handler may run from within this call (cached name) */

    if (ngx_resolve_name(ctx) != NGX_OK) {
        /* ctx is freed by the resolver on this path */
        h->resolve = NULL;
        ngx_acme_http_set_error(h, "cannot start resolving \"%V\"", &h->host);
        ngx_acme_http_finish(h);
    }

    return;

no_resolver:

    ngx_acme_http_set_error(h, "cannot resolve \"%V\": no \"resolver\" is "
                            "defined in the \"http\" block (nginx does not "
                            "use the system resolver at run time)",
                            &h->host);
    ngx_acme_http_finish(h);
}


static void
ngx_acme_http_resolve_handler(ngx_resolver_ctx_t *ctx)
{
    ngx_uint_t        i, n;
    ngx_addr_t       *addrs;
    ngx_acme_http_t  *h;

    h = ctx->data;

    if (ctx->state) {
        ngx_acme_http_set_error(h, "\"%V\" could not be resolved (%i: %s)",
                                &ctx->name, ctx->state,
                                ngx_resolver_strerror(ctx->state));
        ngx_acme_http_finish(h);    /* also ends the resolution */
        return;
    }

    n = ctx->naddrs;

    addrs = ngx_pcalloc(h->pool, (n ? n : 1) * sizeof(ngx_addr_t));
    if (addrs == NULL) {
        ngx_acme_http_set_error(h, "out of memory");
        ngx_acme_http_finish(h);
        return;
    }

    for (i = 0; i < n; i++) {
        addrs[i].sockaddr = ctx->addrs[i].sockaddr;
        addrs[i].socklen = ctx->addrs[i].socklen;
    }

    /* copies into our pool, before the resolver takes its memory back */

    if (n == 0 || ngx_acme_http_copy_addrs(h, addrs, n) != NGX_OK) {
        ngx_acme_http_set_error(h, n ? "out of memory"
                                     : "\"%V\" resolved to no address",
                                &h->host);
        ngx_acme_http_finish(h);
        return;
    }

    ngx_resolve_name_done(ctx);
    h->resolve = NULL;

    ngx_acme_http_connect(h);
}


static void
ngx_acme_http_connect(ngx_acme_http_t *h)
{
    ngx_int_t          rc;
    ngx_err_t          err;
    ngx_addr_t        *addr;
    ngx_connection_t  *c;

    for ( ;; ) {

        if (h->next_addr >= h->naddrs) {
            /* every address failed; h->error says how the last did */
            ngx_acme_http_finish(h);
            return;
        }

        addr = &h->addrs[h->next_addr++];

        ngx_memzero(&h->peer, sizeof(ngx_peer_connection_t));

        h->peer.sockaddr = addr->sockaddr;
        h->peer.socklen = addr->socklen;
        h->peer.name = &addr->name;
        h->peer.get = ngx_event_get_peer;
        h->peer.log = &h->log;
        h->peer.log_error = NGX_ERROR_ERR;
        h->peer.tries = 1;

        h->peer_name = &addr->name;
        h->state = ngx_acme_http_st_connecting;
        h->log.action = "connecting to the ACME server";

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                       "acme http connect to %V", &addr->name);

        rc = ngx_event_connect_peer(&h->peer);

        if (rc == NGX_DECLINED || rc == NGX_ERROR || rc == NGX_BUSY) {
            /* nginx closed the socket without touching errno since */
            err = ngx_socket_errno;
            h->peer.connection = NULL;

            if (rc == NGX_DECLINED && err) {
                ngx_acme_http_set_errno(h, err, "connect() to");

            } else {
                ngx_acme_http_set_error(h, "connect() to %V failed",
                                        &addr->name);
            }

            if (rc == NGX_DECLINED) {
                continue;
            }

            ngx_acme_http_finish(h);
            return;
        }

        c = h->peer.connection;

        c->data = h;
        c->pool = h->pool;
        c->read->handler = ngx_acme_http_event_handler;
        c->write->handler = ngx_acme_http_event_handler;

        if (rc == NGX_AGAIN) {
            ngx_add_timer(&h->timer, h->connect_timeout);
            return;
        }

        /* NGX_OK: connected at once */

        ngx_acme_http_connected(h);
        return;
    }
}


/* The current connection attempt failed (h->error says why): next address. */
static void
ngx_acme_http_connect_next(ngx_acme_http_t *h)
{
    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    ngx_acme_http_close(h, 1);
    ngx_acme_http_connect(h);
}


static void
ngx_acme_http_connected(ngx_acme_http_t *h)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = h->peer.connection;

    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http connected to %V", h->peer_name);

    if (!h->url.https) {
        ngx_acme_http_send(h);
        return;
    }

    h->state = ngx_acme_http_st_handshake;
    h->log.action = "SSL handshaking with the ACME server";

    if (ngx_ssl_create_connection(h->conf->ssl, c, NGX_SSL_CLIENT) != NGX_OK)
    {
        ngx_acme_http_set_error(h, "cannot create an SSL connection to %V",
                                h->peer_name);
        ngx_acme_http_finish(h);
        return;
    }

    /* SNI carries host names only (RFC 6066) */

    if (!h->ip_literal
        && SSL_set_tlsext_host_name(c->ssl->connection, h->url.host) != 1)
    {
        ngx_acme_http_set_error(h, "SSL_set_tlsext_host_name(\"%V\") failed",
                                &h->host);
        ngx_acme_http_finish(h);
        return;
    }

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        c->ssl->handler = ngx_acme_http_handshake_handler;
        ngx_add_timer(&h->timer, h->timeout);
        return;
    }

    ngx_acme_http_handshake_handler(c);
}


static void
ngx_acme_http_handshake_handler(ngx_connection_t *c)
{
    ngx_acme_http_t  *h;

    h = c->data;

    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    if (!c->ssl->handshaked) {
        /* nginx has logged OpenSSL's reason at "error" level or below */
        ngx_acme_http_set_error(h, "SSL handshake with %V failed",
                                h->peer_name);
        ngx_acme_http_finish(h);
        return;
    }

    if (ngx_acme_http_verify(h, c) != NGX_OK) {
        ngx_acme_http_finish(h);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http SSL connection to %V: %s",
                   h->peer_name, SSL_get_version(c->ssl->connection));

    c->read->handler = ngx_acme_http_event_handler;
    c->write->handler = ngx_acme_http_event_handler;

    ngx_acme_http_send(h);
}


static ngx_int_t
ngx_acme_http_verify(ngx_acme_http_t *h, ngx_connection_t *c)
{
    int    ok;
    long   rc;
    X509  *cert;

    /* "ssl_verify off": either flag, or a context set to SSL_VERIFY_NONE
     * (OpenSSL still records a verify result then) */

    if (h->conf->ssl_no_verify
        || SSL_get_verify_mode(c->ssl->connection) == SSL_VERIFY_NONE)
    {
        return NGX_OK;
    }

    rc = SSL_get_verify_result(c->ssl->connection);

    if (rc != X509_V_OK) {
        ngx_acme_http_set_error(h, "SSL certificate verify error: (%l:%s), "
                                "server %V", rc,
                                X509_verify_cert_error_string(rc),
                                h->peer_name);
        return NGX_ERROR;
    }

    if (!h->ip_literal) {
        if (ngx_ssl_check_host(c, &h->host) == NGX_OK) {
            return NGX_OK;
        }

    } else {
        /* ngx_ssl_check_host() matches DNS names only */
        cert = SSL_get_peer_certificate(c->ssl->connection);
        ok = cert && X509_check_ip_asc(cert, h->url.host, 0) == 1;
        X509_free(cert);

        if (ok) {
            return NGX_OK;
        }
    }

    ngx_acme_http_set_error(h, "SSL certificate of %V does not match \"%V\"",
                            h->peer_name, &h->host);
    return NGX_ERROR;
}


static void
ngx_acme_http_send(ngx_acme_http_t *h)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = h->peer.connection;

    h->state = ngx_acme_http_st_sending;
    h->log.action = "sending a request to the ACME server";

    while (h->sent < h->request_len) {

        n = c->send(c, h->request + h->sent, h->request_len - h->sent);

        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                       "acme http send: %z of %uz", n,
                       h->request_len - h->sent);

        if (n == NGX_ERROR) {
            ngx_acme_http_set_error(h, "sending the request to %V failed",
                                    h->peer_name);
            ngx_acme_http_finish(h);
            return;
        }

        if (n == NGX_AGAIN || n == 0) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ngx_acme_http_set_error(h, "cannot wait for %V",
                                        h->peer_name);
                ngx_acme_http_finish(h);
                return;
            }

            ngx_add_timer(&h->timer, h->timeout);
            return;
        }

        h->sent += n;
    }

    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    h->state = ngx_acme_http_st_reading;
    h->log.action = "reading the response of the ACME server";

    ngx_acme_http_read(h);
}


static void
ngx_acme_http_read(ngx_acme_http_t *h)
{
    int                rc;
    ssize_t            n;
    ngx_connection_t  *c;

    c = h->peer.connection;

    /* each round consumes data or returns: the parser bounds the total */

    for ( ;; ) {

        n = c->recv(c, h->buf, NGX_ACME_HTTP_BUFSIZE);

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                       "acme http recv: %z", n);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_acme_http_set_error(h, "cannot wait for %V",
                                        h->peer_name);
                ngx_acme_http_finish(h);
                return;
            }

            ngx_add_timer(&h->timer, h->timeout);
            return;
        }

        if (n == NGX_ERROR) {
            ngx_acme_http_set_error(h, "reading the response from %V failed",
                                    h->peer_name);
            ngx_acme_http_finish(h);
            return;
        }

        if (n == 0) {
            rc = acme_http_parser_eof(h->parser);

        } else {
            rc = acme_http_parser_feed(h->parser, (char *) h->buf, n);
        }

        if (rc == ACME_HTTP_DONE) {
            h->response = acme_http_parser_response(h->parser);
            h->error[0] = '\0';    /* an earlier address may have failed */

            ngx_log_debug2(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                           "acme http response: %d, %uz body bytes",
                           h->response->status, h->response->body_len);

            ngx_acme_http_finish(h);
            return;
        }

        if (rc == ACME_HTTP_ERROR || n == 0) {
            ngx_acme_http_parser_failed(h);
            return;
        }
    }
}


static void
ngx_acme_http_parser_failed(ngx_acme_http_t *h)
{
    const char  *msg;

    msg = acme_http_parser_error(h->parser);

    if (msg == NULL) {
        msg = "invalid response";
    }

    if (ngx_strcmp(msg, "response body too large") == 0) {
        ngx_acme_http_set_error(h, "response body larger than %uz bytes, "
                                "server %V", h->max_body, h->peer_name);

    } else {
        ngx_acme_http_set_error(h, "%s, server %V", msg, h->peer_name);
    }

    ngx_acme_http_finish(h);
}


static void
ngx_acme_http_event_handler(ngx_event_t *ev)
{
    int                err;
    socklen_t          len;
    ngx_connection_t  *c;
    ngx_acme_http_t   *h;

    c = ev->data;
    h = c->data;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http %s event, state %d",
                   ev->write ? "write" : "read", (int) h->state);

    switch (h->state) {

    case ngx_acme_http_st_connecting:

        /* BSDs and Linux report a failed connect() in SO_ERROR */

        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_acme_http_set_errno(h, err, "connect() to");
            ngx_acme_http_connect_next(h);
            return;
        }

        ngx_acme_http_connected(h);
        return;

    case ngx_acme_http_st_sending:

        if (ev->write) {
            ngx_acme_http_send(h);
        }

        return;

    case ngx_acme_http_st_reading:

        if (!ev->write) {
            ngx_acme_http_read(h);
        }

        return;

    default:
        return;
    }
}


static void
ngx_acme_http_timeout_handler(ngx_event_t *ev)
{
    ngx_acme_http_t  *h = ev->data;

    if (h->peer.connection) {
        h->peer.connection->timedout = 1;
    }

    switch (h->state) {

    case ngx_acme_http_st_connecting:
        ngx_acme_http_set_error(h, "connect() to %V timed out", h->peer_name);
        ngx_acme_http_connect_next(h);
        return;

    case ngx_acme_http_st_handshake:
        ngx_acme_http_set_error(h, "SSL handshake with %V timed out",
                                h->peer_name);
        break;

    case ngx_acme_http_st_sending:
        ngx_acme_http_set_error(h, "timed out sending the request to %V",
                                h->peer_name);
        break;

    default: /* reading */
        ngx_acme_http_set_error(h, "timed out reading response from %V",
                                h->peer_name);
        break;
    }

    ngx_acme_http_finish(h);
}
