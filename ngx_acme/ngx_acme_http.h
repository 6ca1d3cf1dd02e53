/*
 * A non-blocking HTTPS client on nginx's event loop, used by the ACME job to
 * carry the engine's requests (common/core/acme_http.h) to the CA; every step
 * has a timeout.  With a keeper (ngx_acme_http_keep_t, one per job) the
 * requests of a job share one connection (HTTP/1.1 keep-alive) and resume
 * the TLS session when they must connect again.
 */
#ifndef _NGX_ACME_HTTP_H_INCLUDED_
#define _NGX_ACME_HTTP_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <ngx_thread_pool.h>

#include "acme_http.h"
#include "acme_proxy.h"


typedef struct ngx_acme_http_s  ngx_acme_http_t;

#define NGX_ACME_HTTP_ORIGIN_LEN  300
#define NGX_ACME_HTTP_KEEP_IDLE   30000   /* ms an idle connection is kept */

/*
 * What the requests of one job keep between them: the idle connection to
 * the origin (scheme://host:port) of the last request, its peer name, and
 * the TLS session to resume.  Zeroed memory is an empty keeper; its owner
 * calls ngx_acme_http_keep_close() when done.
 */
typedef struct {
    ngx_connection_t  *connection;      /* idle, or NULL */
    ngx_ssl_session_t *session;         /* to resume, or NULL */
    ngx_log_t         *log;             /* the owner's */
    u_char             origin[NGX_ACME_HTTP_ORIGIN_LEN];
    u_char             peer[NGX_ACME_HTTP_ORIGIN_LEN + NGX_SOCKADDR_STRLEN];
    ngx_str_t          peer_name;       /* in peer */
} ngx_acme_http_keep_t;

typedef void (*ngx_acme_http_done_pt)(ngx_acme_http_t *h, void *data);

typedef struct {
    ngx_ssl_t         *ssl;             /* client context from
                                           ngx_acme_http_ssl_init() */
    ngx_str_t          issuer;          /* the acme_issuer's name, for the
                                           log */
    ngx_resolver_t    *resolver;        /* http{} "resolver", may be NULL */
    ngx_msec_t         resolver_timeout;
    ngx_thread_pool_t *thread_pool;     /* without a resolver: the system's
                                           lookup (getaddrinfo) runs there */

    /* addresses of the directory host resolved at configuration time: used
     * for that host when no resolver is configured and the run-time lookup
     * fails (or there is no thread pool) */
    ngx_str_t          static_host;
    ngx_addr_t        *static_addrs;
    ngx_uint_t         static_naddrs;

    ngx_msec_t         connect_timeout; /* 0: same as timeout */
    ngx_msec_t         timeout;         /* TLS handshake, each read or write;
                                           0: 30s */
    size_t             max_body;        /* 0: ACME_HTTP_MAX_BODY */
    ngx_uint_t         ssl_no_verify;   /* "ssl_verify off": skip the chain
                                           and host name checks (so does
                                           SSL_VERIFY_NONE on ssl->ctx) */
    acme_proxy_t      *proxy;           /* "proxy": every request goes
                                           through this HTTP CONNECT proxy
                                           (its host is the one resolved;
                                           static_host is it then); NULL:
                                           direct */
} ngx_acme_http_conf_t;


/*
 * Creates the TLS client context for one issuer: TLSv1.2+, peer and host
 * name verification against trusted (a PEM file) or, when trusted is empty,
 * the system store.  Called at configuration time.
 */
ngx_int_t ngx_acme_http_ssl_init(ngx_conf_t *cf, ngx_ssl_t *ssl,
    ngx_str_t *trusted);

/*
 * Starts one exchange; req is copied, conf must outlive the exchange.
 * keep, when not NULL, must outlive it too: the exchange uses its idle
 * connection to the same origin, and leaves its own there when the
 * response allows (HTTP/1.1, no "Connection: close", body delimited).
 * handler is called exactly once, later, from a posted event (never from
 * within this call), also for failures found at once (bad URL, no way to
 * resolve the host).  Returns NULL only when memory runs out (logged in
 * log); the handler is then never called.  Progress is logged at debug
 * level only: the caller logs the outcome.
 */
ngx_acme_http_t *ngx_acme_http_start(ngx_acme_http_conf_t *conf,
    ngx_acme_http_keep_t *keep, const acme_http_request_t *req,
    ngx_log_t *log, ngx_acme_http_done_pt handler, void *data);

/* Closes the keeper's idle connection and drops its session. */
void ngx_acme_http_keep_close(ngx_acme_http_keep_t *keep);

/* In the handler: the response (any HTTP status), or NULL when the exchange
 * failed.  Valid until ngx_acme_http_free(). */
const acme_http_response_t *ngx_acme_http_response(ngx_acme_http_t *h);

/* In the handler, when the response is NULL: what failed, e.g.
 * "connect() to 127.0.0.1:14000 timed out" (valid until free; "" after a
 * response). */
const char *ngx_acme_http_error(ngx_acme_http_t *h);

/* Releases everything; aborts the exchange if it is still running (the
 * handler is then not called).  Safe to call from the handler. */
void ngx_acme_http_free(ngx_acme_http_t *h);

#endif /* _NGX_ACME_HTTP_H_INCLUDED_ */
