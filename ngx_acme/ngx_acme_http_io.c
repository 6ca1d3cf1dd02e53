/*
 * The steps of an exchange of the non-blocking HTTPS client (see
 * ngx_acme_http.c): the addresses to try, resolve, connect (each address in
 * turn), TLS handshake and verification, send, receive, and the timer that
 * fails a stalled step naming it.
 */

#include "ngx_acme_http_local.h"

#include <openssl/x509v3.h>


static void ngx_acme_http_resolve_handler(ngx_resolver_ctx_t *ctx);
static void ngx_acme_http_connect_next(ngx_acme_http_t *h);
static void ngx_acme_http_connected(ngx_acme_http_t *h);
static void ngx_acme_http_proxy_send(ngx_acme_http_t *h);
static void ngx_acme_http_proxy_read(ngx_acme_http_t *h);
static void ngx_acme_http_tls(ngx_acme_http_t *h);
static void ngx_acme_http_handshake_handler(ngx_connection_t *c);
static ngx_int_t ngx_acme_http_verify(ngx_acme_http_t *h,
    ngx_connection_t *c);
static void ngx_acme_http_read(ngx_acme_http_t *h);
static void ngx_acme_http_gai_start(ngx_acme_http_t *h);
static void ngx_acme_http_gai_thread(void *data, ngx_log_t *log);
static void ngx_acme_http_gai_done(ngx_event_t *ev);
static void ngx_acme_http_parser_failed(ngx_acme_http_t *h);
static ngx_uint_t ngx_acme_http_retry(ngx_acme_http_t *h,
    ngx_uint_t written);


ngx_int_t
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
        ngx_inet_set_port(dst[i].sockaddr, (in_port_t) h->conn_port);

        len = ngx_sock_ntop(dst[i].sockaddr, dst[i].socklen, text,
                            NGX_SOCKADDR_STRLEN, 1);

        if (h->conf->proxy) {
            /* "ca:port via proxy proxy:port (address:port)": the CA is
             * reached through the tunnel */
            p = ngx_pnalloc(h->pool, h->host.len + ngx_strlen(
                                h->conf->proxy->name)
                                + sizeof(":65535 via proxy  ()") + len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            if (h->ip_literal) {
                dst[i].name.len = ngx_sprintf(p, "%V:%d via proxy %s",
                                              &h->host, h->url.port,
                                              h->conf->proxy->name)
                                  - p;

            } else {
                dst[i].name.len = ngx_sprintf(p, "%V:%d via proxy %s (%*s)",
                                              &h->host, h->url.port,
                                              h->conf->proxy->name, len, text)
                                  - p;
            }

        } else if (h->ip_literal) {
            p = ngx_pnalloc(h->pool, len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            dst[i].name.len = ngx_cpymem(p, text, len) - p;

        } else {
            /* "host:port (address:port)" */
            p = ngx_pnalloc(h->pool,
                            h->conn_host.len + sizeof(":65535 ()") + len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            dst[i].name.len = ngx_sprintf(p, "%V:%d (%*s)", &h->conn_host,
                                          h->conn_port, len, text)
                              - p;
        }

        dst[i].name.data = p;
    }

    h->addrs = dst;
    h->naddrs = n;
    h->next_addr = 0;

    return NGX_OK;
}


/*
 * The directory host's addresses resolved when the configuration was read:
 * NGX_OK (copied into h), NGX_DECLINED (none for this host), NGX_ERROR.
 */
ngx_int_t
ngx_acme_http_static_addrs(ngx_acme_http_t *h)
{
    if (h->conf->static_naddrs == 0
        || h->conf->static_host.len != h->conn_host.len
        || ngx_strncasecmp(h->conf->static_host.data, h->conn_host.data,
                           h->conn_host.len)
           != 0)
    {
        return NGX_DECLINED;
    }

    return ngx_acme_http_copy_addrs(h, h->conf->static_addrs,
                                    h->conf->static_naddrs);
}


void
ngx_acme_http_resolve(ngx_acme_http_t *h)
{
    ngx_resolver_ctx_t  *ctx, temp;

    if (h->conf->resolver == NULL) {
        goto no_resolver;
    }

    ngx_memzero(&temp, sizeof(ngx_resolver_ctx_t));
    temp.name = h->conn_host;

    ctx = ngx_resolve_start(h->conf->resolver, &temp);

    if (ctx == NULL) {
        ngx_acme_http_set_error(h, "cannot start resolving \"%V\"", &h->conn_host);
        ngx_acme_http_finish(h);
        return;
    }

    if (ctx == NGX_NO_RESOLVER) {
        goto no_resolver;
    }

    ctx->name = h->conn_host;
    ctx->handler = ngx_acme_http_resolve_handler;
    ctx->data = h;
    ctx->timeout = h->conf->resolver_timeout ? h->conf->resolver_timeout
                                             : NGX_ACME_HTTP_DEFAULT_TIMEOUT;
    ctx->cancelable = 1;    /* as our own timer */

    h->resolve = ctx;
    h->state = ngx_acme_http_st_resolving;
    h->log.action = "resolving the ACME server";

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http resolving \"%V\"", &h->conn_host);

    /* the handler may run from within this call (cached name) */

    if (ngx_resolve_name(ctx) != NGX_OK) {
        /* ctx is freed by the resolver on this path */
        h->resolve = NULL;
        ngx_acme_http_set_error(h, "cannot start resolving \"%V\"", &h->conn_host);
        ngx_acme_http_finish(h);
    }

    return;

no_resolver:

    if (h->conf->thread_pool) {
        ngx_acme_http_gai_start(h);
        return;
    }

    ngx_acme_http_set_error(h, "cannot resolve \"%V\": no \"resolver\" is "
                            "defined in the \"http\" block (nginx does not "
                            "use the system resolver at run time)",
                            &h->conn_host);
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
                                &h->conn_host);
        ngx_acme_http_finish(h);
        return;
    }

    ngx_resolve_name_done(ctx);
    h->resolve = NULL;

    ngx_acme_http_connect(h);
}


/*
 * No "resolver": the system's lookup (getaddrinfo: /etc/hosts, DNS, ...) of
 * the host, in nginx's thread pool, never on the event loop.  The task is
 * malloc'd, not in h's pool: an exchange that ends meanwhile (its timer,
 * the worker's exit) only lets go of it (h->gai->h = NULL) and the task
 * frees itself when the lookup returns.
 */
static void
ngx_acme_http_gai_start(ngx_acme_http_t *h)
{
    ngx_thread_task_t    *task;
    ngx_acme_http_gai_t  *g;

    if (h->conn_host.len > NGX_MAXHOSTNAMELEN) {
        ngx_acme_http_set_error(h, "cannot resolve \"%V\": too long",
                                &h->conn_host);
        ngx_acme_http_finish(h);
        return;
    }

    task = ngx_calloc(sizeof(ngx_thread_task_t) + sizeof(ngx_acme_http_gai_t),
                      &h->log);
    if (task == NULL) {
        ngx_acme_http_set_error(h, "out of memory");
        ngx_acme_http_finish(h);
        return;
    }

    g = (ngx_acme_http_gai_t *) (task + 1);
    ngx_memcpy(g->host, h->conn_host.data, h->conn_host.len);
    g->h = h;

    task->ctx = g;
    task->handler = ngx_acme_http_gai_thread;
    task->event.handler = ngx_acme_http_gai_done;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(h->conf->thread_pool, task) != NGX_OK) {
        ngx_free(task);
        ngx_acme_http_set_error(h, "cannot resolve \"%V\": the thread pool "
                                "refused the task", &h->conn_host);
        ngx_acme_http_finish(h);
        return;
    }

    h->gai = g;
    h->state = ngx_acme_http_st_resolving;
    h->log.action = "resolving the ACME server";

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http resolving \"%V\" in the thread pool", &h->conn_host);

    ngx_add_timer(&h->timer, h->timeout);
}


/* In a thread of the pool. */
static void
ngx_acme_http_gai_thread(void *data, ngx_log_t *log)
{
    struct addrinfo       hints;
    ngx_acme_http_gai_t  *g;

    g = data;

    ngx_memzero(&hints, sizeof(struct addrinfo));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    g->rc = getaddrinfo(g->host, NULL, &hints, &g->res);

    /* as every task of ours (docs/design.md) */
    OPENSSL_thread_stop();
}


static void
ngx_acme_http_gai_done(ngx_event_t *ev)
{
    ngx_int_t             rc;
    ngx_uint_t            i, n;
    ngx_addr_t           *addrs;
    struct addrinfo      *ai;
    ngx_acme_http_t      *h;
    ngx_thread_task_t    *task;
    ngx_acme_http_gai_t  *g;

    task = ev->data;
    g = task->ctx;
    h = g->h;

    if (h == NULL) {
        goto done;              /* the exchange is over */
    }

    h->gai = NULL;

    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    n = 0;

    for (ai = (g->rc == 0) ? g->res : NULL; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
            n++;
        }
    }

    if (n == 0) {
        if (g->rc == 0) {
            ngx_acme_http_set_error(h, "\"%V\" resolved to no address",
                                    &h->conn_host);

        } else {
            ngx_acme_http_set_error(h, "\"%V\" could not be resolved (%s)",
                                    &h->conn_host, gai_strerror(g->rc));
        }

        /* the addresses the master found, if any */

        rc = ngx_acme_http_static_addrs(h);

        if (rc != NGX_OK) {
            if (rc == NGX_ERROR) {
                ngx_acme_http_set_error(h, "out of memory");
            }

            ngx_acme_http_finish(h);
            goto done;
        }

        ngx_log_error(NGX_LOG_WARN, &h->log, 0,
                      "acme: %s; the addresses of \"%V\" found when the "
                      "configuration was read are used", h->error, &h->conn_host);
        h->error[0] = '\0';

        ngx_acme_http_connect(h);
        goto done;
    }

    addrs = ngx_pcalloc(h->pool, n * sizeof(ngx_addr_t));
    if (addrs == NULL) {
        ngx_acme_http_set_error(h, "out of memory");
        ngx_acme_http_finish(h);
        goto done;
    }

    i = 0;

    for (ai = g->res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
            addrs[i].sockaddr = ai->ai_addr;
            addrs[i].socklen = ai->ai_addrlen;
            i++;
        }
    }

    /* copied into h's pool before the list is freed */

    if (ngx_acme_http_copy_addrs(h, addrs, n) != NGX_OK) {
        ngx_acme_http_set_error(h, "out of memory");
        ngx_acme_http_finish(h);
        goto done;
    }

    freeaddrinfo(g->res);
    g->res = NULL;

    ngx_acme_http_connect(h);

done:

    if (g->res) {
        freeaddrinfo(g->res);
    }

    ngx_free(task);
}


void
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
        h->connect_sent = 0;
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

        /* a pool of the connection's own (c->ssl is allocated there): a
         * kept connection outlives the exchange */
        c->pool = ngx_create_pool(512, &h->log);
        if (c->pool == NULL) {
            ngx_acme_http_set_error(h, "out of memory");
            ngx_acme_http_finish(h);
            return;
        }

        c->data = h;
        c->read->handler = ngx_acme_http_event_handler;
        c->write->handler = ngx_acme_http_event_handler;

        /* a request is sent whole: without TCP_NODELAY, Nagle holds it
         * behind the unacknowledged end of the TLS handshake until the
         * peer's delayed ACK (~40 ms per request); a failure is logged by
         * nginx and only costs that time */
        (void) ngx_tcp_nodelay(c);

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
    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http connected to %V", h->peer_name);

    if (h->conf->proxy) {
        ngx_acme_http_proxy_send(h);
        return;
    }

    ngx_acme_http_tls(h);
}


/*
 * Through a proxy: "CONNECT host:port" (acme_proxy.h) on the plain
 * connection to it; the request is made once per exchange and cleansed
 * with its pool (it may hold the proxy's credentials).
 */
static void
ngx_acme_http_proxy_send(ngx_acme_http_t *h)
{
    char              *wire;
    size_t             len;
    ssize_t            n;
    ngx_connection_t  *c;

    c = h->peer.connection;

    h->state = ngx_acme_http_st_proxy_sending;
    h->log.action = "sending CONNECT to the proxy";

    if (h->connect_req == NULL) {
        wire = acme_proxy_connect_request(h->conf->proxy, h->url.host,
                                          h->url.port, ngx_acme_http_agent(),
                                          &len);
        if (wire == NULL) {
            ngx_acme_http_set_error(h, "out of memory");
            ngx_acme_http_finish(h);
            return;
        }

        h->connect_req = ngx_pnalloc(h->pool, len);
        if (h->connect_req) {
            ngx_memcpy(h->connect_req, wire, len);
            h->connect_len = len;
        }

        ngx_explicit_memzero(wire, len);
        free(wire);

        h->reply = ngx_palloc(h->pool, sizeof(acme_proxy_reply_t));

        if (h->connect_req == NULL || h->reply == NULL) {
            ngx_acme_http_set_error(h, "out of memory");
            ngx_acme_http_finish(h);
            return;
        }
    }

    while (h->connect_sent < h->connect_len) {

        n = c->send(c, h->connect_req + h->connect_sent,
                    h->connect_len - h->connect_sent);

        if (n == NGX_ERROR) {
            ngx_acme_http_set_error(h, "sending CONNECT to %V failed",
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

        h->connect_sent += n;
    }

    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    acme_proxy_reply_init(h->reply);

    h->state = ngx_acme_http_st_proxy_reading;
    h->log.action = "reading the proxy's reply to CONNECT";

    ngx_acme_http_proxy_read(h);
}


/* The proxy's reply: a 2xx opens the tunnel, anything else ends the
 * exchange with the proxy's status line (acme_proxy_reply_error). */
static void
ngx_acme_http_proxy_read(ngx_acme_http_t *h)
{
    int                rc;
    size_t             room;
    ssize_t            n;
    ngx_connection_t  *c;

    c = h->peer.connection;

    for ( ;; ) {

        /* never past the reply's head: what follows is the CA's */
        room = sizeof(h->reply->head) - 1 - h->reply->len;
        room = ngx_max(ngx_min(room, NGX_ACME_HTTP_BUFSIZE), 1);

        n = c->recv(c, h->buf, room);

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
            ngx_acme_http_set_error(h, "reading the reply to CONNECT from "
                                    "%V failed", h->peer_name);
            ngx_acme_http_finish(h);
            return;
        }

        if (n == 0) {
            rc = acme_proxy_reply_eof(h->reply, h->conf->proxy, h->url.host,
                                      h->url.port);

        } else {
            rc = acme_proxy_reply_feed(h->reply, h->conf->proxy, h->url.host,
                                       h->url.port, (char *) h->buf, n);
        }

        if (rc == ACME_HTTP_DONE) {
            break;
        }

        if (rc == ACME_HTTP_ERROR) {
            ngx_acme_http_set_error(h, "%s",
                                    acme_proxy_reply_error(h->reply));
            ngx_acme_http_finish(h);
            return;
        }
    }

    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http tunnel open: %V", h->peer_name);

    ngx_acme_http_tls(h);
}


/* Connected to the CA (directly or through the tunnel): TLS with its host
 * name, or the request itself for an http:// URL. */
static void
ngx_acme_http_tls(ngx_acme_http_t *h)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = h->peer.connection;

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

    if (!h->tls_ip
        && SSL_set_tlsext_host_name(c->ssl->connection, h->url.host) != 1)
    {
        ngx_acme_http_set_error(h, "SSL_set_tlsext_host_name(\"%V\") failed",
                                &h->host);
        ngx_acme_http_finish(h);
        return;
    }

    /* the session of the last good exchange with this origin (the keeper
     * serves one): resuming it saves the key exchange and the chain; the
     * checks of ngx_acme_http_verify() see the session's verified peer */

    if (h->keep && h->keep->session
        && ngx_ssl_set_session(c, h->keep->session) != NGX_OK)
    {
        ngx_acme_http_set_error(h, "cannot set the TLS session for %V",
                                h->peer_name);
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
        /* nginx-acme's line (its tests look for it), then ours */
        ngx_log_error(NGX_LOG_WARN, &h->log, 0,
                      "acme: upstream SSL certificate verify error: (%l:%s), "
                      "acme issuer \"%V\"", rc,
                      X509_verify_cert_error_string(rc), &h->conf->issuer);
        ngx_acme_http_set_error(h, "SSL certificate verify error: (%l:%s), "
                                "server %V", rc,
                                X509_verify_cert_error_string(rc),
                                h->peer_name);
        return NGX_ERROR;
    }

    if (!h->tls_ip) {
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

    ngx_log_error(NGX_LOG_WARN, &h->log, 0,
                  "acme: upstream SSL certificate does not match \"%V\", "
                  "acme issuer \"%V\"", &h->host, &h->conf->issuer);
    ngx_acme_http_set_error(h, "SSL certificate of %V does not match \"%V\"",
                            h->peer_name, &h->host);
    return NGX_ERROR;
}


void
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
            if (ngx_acme_http_retry(h, 0)) {
                return;
            }

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

        if ((n == NGX_ERROR || n == 0) && ngx_acme_http_retry(h, 1)) {
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
            h->received = 1;
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


/*
 * A kept connection failed (the server closed it while it was idle, the
 * idle handler did not see it yet): the request goes again, once, on a new
 * connection when that cannot make the CA act twice.  The write failed: the
 * server never had the whole request.  The request was written and the
 * connection ended before any byte of the response: only a GET or HEAD
 * (idempotent).  A POST the CA may have acted on is not sent again: a
 * replay of its nonce would get badNonce, which the engine answers with a
 * new nonce, so the CA could act twice (a challenge no longer pending gets
 * an error); the engine reads such an unclear answer back instead.
 * Returns 1 when the request goes again.
 */
static ngx_uint_t
ngx_acme_http_retry(ngx_acme_http_t *h, ngx_uint_t written)
{
    if (!h->reused || h->received) {
        return 0;
    }

    if (written
        && ngx_strcmp(h->method, "GET") != 0
        && ngx_strcmp(h->method, "HEAD") != 0)
    {
        return 0;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_EVENT, &h->log, 0,
                   "acme http kept connection closed by the server, "
                   "sending again on a new one");

    if (h->timer.timer_set) {
        ngx_del_timer(&h->timer);
    }

    ngx_acme_http_close(h, 1);

    h->reused = 0;
    h->sent = 0;
    h->error[0] = '\0';

    /* the keeper is empty now: this connects */
    ngx_acme_http_route(h);

    return 1;
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


void
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

    case ngx_acme_http_st_proxy_sending:

        if (ev->write) {
            ngx_acme_http_proxy_send(h);
        }

        return;

    case ngx_acme_http_st_proxy_reading:

        if (!ev->write) {
            ngx_acme_http_proxy_read(h);
        }

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


void
ngx_acme_http_timeout_handler(ngx_event_t *ev)
{
    ngx_acme_http_t  *h = ev->data;

    if (h->peer.connection) {
        h->peer.connection->timedout = 1;
    }

    switch (h->state) {

    case ngx_acme_http_st_resolving:
        /* the system's lookup (ngx_acme_http_gai_start) */
        ngx_acme_http_set_error(h, "resolving \"%V\" timed out", &h->conn_host);
        break;

    case ngx_acme_http_st_connecting:
        ngx_acme_http_set_error(h, "connect() to %V timed out", h->peer_name);
        ngx_acme_http_connect_next(h);
        return;

    case ngx_acme_http_st_proxy_sending:
        ngx_acme_http_set_error(h, "timed out sending CONNECT to %V",
                                h->peer_name);
        break;

    case ngx_acme_http_st_proxy_reading:
        ngx_acme_http_set_error(h, "timed out reading the reply to CONNECT "
                                "from %V", h->peer_name);
        break;

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
