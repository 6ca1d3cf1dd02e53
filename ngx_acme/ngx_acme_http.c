/*
 * A non-blocking HTTP(S) client on nginx's event loop.  Without a keeper an
 * exchange has a connection of its own (the request says "Connection:
 * close"); with one (a job's), an exchange starts on the keeper's idle
 * connection to the same origin and leaves its connection there when the
 * response allows it.  A kept connection waits at most
 * NGX_ACME_HTTP_KEEP_IDLE, and is closed as soon as it becomes readable (the
 * server closed it) or the worker shuts down (c->idle).
 *
 * States: resolve (address literal, the configuration-time addresses of the
 * directory host, nginx's resolver, or without one getaddrinfo in the
 * thread pool) -> connect (each address in turn) -> with a "proxy": CONNECT
 * and its reply (the proxy's host is the one resolved and connected to) ->
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
 *
 * This file: the TLS client context, an exchange's start, outcome, errors
 * and release; the steps are in ngx_acme_http_io.c.
 */

#include "ngx_acme_http_local.h"


static void ngx_acme_http_cleanup(void *data);
static u_char *ngx_acme_http_log_error(ngx_log_t *log, u_char *buf,
    size_t len);
static void ngx_acme_http_done_handler(ngx_event_t *ev);
static void ngx_acme_http_keep_park(ngx_acme_http_t *h);
static void ngx_acme_http_keep_take(ngx_acme_http_t *h);
static void ngx_acme_http_keep_idle_handler(ngx_event_t *ev);
static void ngx_acme_http_keep_dummy_handler(ngx_event_t *ev);
static void ngx_acme_http_close_connection(ngx_connection_t *c,
    ngx_uint_t quiet);


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
ngx_acme_http_start(ngx_acme_http_conf_t *conf, ngx_acme_http_keep_t *keep,
    const acme_http_request_t *req, ngx_log_t *log,
    ngx_acme_http_done_pt handler, void *data)
{
    char                 err[256], *wire;
    u_char               origin[NGX_ACME_HTTP_ORIGIN_LEN];
    size_t               len;
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
    h->keep = keep;
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

    /* SNI and the certificate's name: a host name or an address */
    h->tls_ip = ngx_parse_addr(pool, &addr, h->host.data, h->host.len)
                == NGX_OK;

    if (conf->proxy) {
        /* the proxy's host is the one resolved and connected to */
        h->conn_host.data = (u_char *) conf->proxy->host;
        h->conn_host.len = ngx_strlen(conf->proxy->host);
        h->conn_port = conf->proxy->port;

    } else {
        h->conn_host = h->host;
        h->conn_port = h->url.port;
    }

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

    if (keep) {
        /* the keeper serves one origin (a CA keeps its URLs on one):
         * another one closes its connection and drops its session */
        *ngx_snprintf(origin, sizeof(origin) - 1, "%s://%V:%d",
                      h->url.https ? "https" : "http", &h->host,
                      h->url.port) = '\0';

        if (ngx_strcmp(origin, keep->origin) != 0) {
            ngx_acme_http_keep_close(keep);
            (void) ngx_cpystrn(keep->origin, origin, sizeof(keep->origin));
        }

        keep->log = log;
    }

    wire = acme_http_serialize_conn(req, &h->url, ngx_acme_http_user_agent,
                                    keep != NULL, &len);
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

    ngx_acme_http_route(h);
    return h;

failed:

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "acme: cannot start a request: out of memory");
    ngx_destroy_pool(pool);
    return NULL;
}


/*
 * Where to send the request: the keeper's idle connection, else an address
 * literal; with a "resolver" the configuration-time addresses of the
 * directory host, or nginx's resolver; without one the system's lookup in
 * the thread pool (those addresses its fallback).  Also the way back after
 * a kept connection failed.
 */
void
ngx_acme_http_route(ngx_acme_http_t *h)
{
    ngx_int_t    rc;
    ngx_addr_t   addr;

    if (h->keep && h->keep->connection) {
        ngx_acme_http_keep_take(h);
        ngx_acme_http_send(h);
        return;
    }

    rc = ngx_parse_addr(h->pool, &addr, h->conn_host.data, h->conn_host.len);

    if (rc == NGX_ERROR) {
        goto failed;
    }

    if (rc == NGX_OK) {
        h->ip_literal = 1;

        if (ngx_acme_http_copy_addrs(h, &addr, 1) != NGX_OK) {
            goto failed;
        }

        ngx_acme_http_connect(h);
        return;
    }

    /* without a resolver: looked up at run time in the thread pool */

    if (h->conf->resolver || h->conf->thread_pool == NULL) {
        rc = ngx_acme_http_static_addrs(h);

        if (rc == NGX_ERROR) {
            goto failed;
        }

        if (rc == NGX_OK) {
            ngx_acme_http_connect(h);
            return;
        }
    }

    ngx_acme_http_resolve(h);
    return;

failed:

    ngx_acme_http_set_error(h, "out of memory");
    ngx_acme_http_finish(h);
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

    if (h->connect_req) {
        /* Proxy-Authorization */
        ngx_explicit_memzero(h->connect_req, h->connect_len);
        h->connect_req = NULL;
    }
}


/* The User-Agent of every request (and of CONNECT). */
char *
ngx_acme_http_agent(void)
{
    return ngx_acme_http_user_agent;
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


void
ngx_acme_http_set_error(ngx_acme_http_t *h, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(h->error, h->error + sizeof(h->error) - 1, fmt, args);
    va_end(args);

    *p = '\0';
}


void
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
void
ngx_acme_http_finish(ngx_acme_http_t *h)
{
    ngx_connection_t   *c;
    ngx_ssl_session_t  *sess;

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

    c = h->peer.connection;

    if (h->response && h->keep && c) {

        if (c->ssl) {
            /* the session of a good exchange, to resume on the next
             * connection to this origin */
            sess = ngx_ssl_get_session(c);

            if (sess) {
                if (h->keep->session) {
                    ngx_ssl_free_session(h->keep->session);
                }

                h->keep->session = sess;
            }
        }

        if (acme_http_parser_reusable(h->parser)) {
            ngx_acme_http_keep_park(h);
        }
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


void
ngx_acme_http_close(ngx_acme_http_t *h, ngx_uint_t quiet)
{
    ngx_connection_t  *c;

    if (h->resolve) {
        ngx_resolve_name_done(h->resolve);
        h->resolve = NULL;
    }

    if (h->gai) {
        /* the lookup's task frees itself when it is done */
        h->gai->h = NULL;
        h->gai = NULL;
    }

    c = h->peer.connection;

    if (c == NULL) {
        return;
    }

    h->peer.connection = NULL;

    ngx_acme_http_close_connection(c, quiet);
}


static void
ngx_acme_http_close_connection(ngx_connection_t *c, ngx_uint_t quiet)
{
    ngx_pool_t  *pool;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                   "acme http close connection: %d", c->fd);

    pool = c->pool;

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

    /* the connection's own (ngx_acme_http_connect): c->ssl lives there */
    if (pool) {
        ngx_destroy_pool(pool);
    }
}


/* The exchange's connection goes to the keeper, idle. */
static void
ngx_acme_http_keep_park(ngx_acme_http_t *h)
{
    ngx_connection_t      *c;
    ngx_acme_http_keep_t  *keep;

    keep = h->keep;
    c = h->peer.connection;
    h->peer.connection = NULL;

    if (keep->connection) {
        /* not expected: the exchange took the keeper's */
        ngx_acme_http_close_connection(keep->connection, 0);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http keep connection: %d", c->fd);

    keep->connection = c;
    keep->peer_name.data = keep->peer;
    keep->peer_name.len = ngx_min(h->peer_name->len, sizeof(keep->peer));
    ngx_memcpy(keep->peer, h->peer_name->data, keep->peer_name.len);

    c->data = keep;
    c->log = keep->log;
    c->read->log = keep->log;
    c->write->log = keep->log;
    c->pool->log = keep->log;
    c->idle = 1;    /* a worker shutting down closes it at once */

    c->read->handler = ngx_acme_http_keep_idle_handler;
    c->write->handler = ngx_acme_http_keep_dummy_handler;

    /* the job may end or move on: it need not hold a worker that exits */
    c->read->cancelable = 1;
    ngx_add_timer(c->read, NGX_ACME_HTTP_KEEP_IDLE);

    if (c->read->ready) {
        ngx_acme_http_keep_idle_handler(c->read);
    }
}


/* The keeper's idle connection carries h's request. */
static void
ngx_acme_http_keep_take(ngx_acme_http_t *h)
{
    ngx_connection_t      *c;
    ngx_acme_http_keep_t  *keep;

    keep = h->keep;
    c = keep->connection;
    keep->connection = NULL;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    c->idle = 0;
    c->data = h;
    c->log = &h->log;
    c->read->log = &h->log;
    c->write->log = &h->log;
    c->pool->log = &h->log;

    c->read->handler = ngx_acme_http_event_handler;
    c->write->handler = ngx_acme_http_event_handler;

    /* a reset of a connection the server closed meanwhile is retried
     * (ngx_acme_http_io.c): not an error worth the error log */
    c->log_error = NGX_ERROR_INFO;

    h->peer.connection = c;
    h->reused = 1;

    h->peer_name = ngx_palloc(h->pool, sizeof(ngx_str_t));
    if (h->peer_name) {
        h->peer_name->data = ngx_pstrdup(h->pool, &keep->peer_name);
        h->peer_name->len = h->peer_name->data ? keep->peer_name.len : 0;
    }

    if (h->peer_name == NULL || h->peer_name->data == NULL) {
        /* out of memory: any name will do for messages */
        h->peer_name = &keep->peer_name;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http reuse connection: %d", c->fd);
}


/*
 * An idle kept connection became readable (the server closed it, or sent
 * what nobody asked for), timed out, or the worker is shutting down: close.
 */
static void
ngx_acme_http_keep_idle_handler(ngx_event_t *ev)
{
    char                   buf[1];
    ssize_t                n;
    ngx_connection_t      *c;
    ngx_acme_http_keep_t  *keep;

    c = ev->data;
    keep = c->data;

    if (c->close || ev->timedout) {
        goto close;
    }

    n = recv(c->fd, buf, 1, MSG_PEEK);

    if (n == -1 && ngx_socket_errno == NGX_EAGAIN) {
        ev->ready = 0;

        if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
            goto close;
        }

        return;
    }

close:

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                   "acme http close kept connection: %d", c->fd);

    keep->connection = NULL;
    ngx_acme_http_close_connection(c, 0);
}


static void
ngx_acme_http_keep_dummy_handler(ngx_event_t *ev)
{
    ngx_log_debug0(NGX_LOG_DEBUG_EVENT, ev->log, 0,
                   "acme http kept connection write event");
}


void
ngx_acme_http_keep_close(ngx_acme_http_keep_t *keep)
{
    ngx_connection_t  *c;

    c = keep->connection;

    if (c) {
        keep->connection = NULL;

        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        ngx_acme_http_close_connection(c, 0);
    }

    if (keep->session) {
        ngx_ssl_free_session(keep->session);
        keep->session = NULL;
    }

    keep->origin[0] = '\0';
}
