/*
 * Private to the non-blocking HTTPS client (ngx_acme_http.c: an exchange's
 * lifecycle, outcome and errors; ngx_acme_http_io.c: resolve, connect, TLS,
 * send, receive and timeouts).  Users include ngx_acme_http.h only.
 */
#ifndef _NGX_ACME_HTTP_LOCAL_H_INCLUDED_
#define _NGX_ACME_HTTP_LOCAL_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_acme_http.h"


#define NGX_ACME_HTTP_ERRLEN          512
#define NGX_ACME_HTTP_BUFSIZE         8192
#define NGX_ACME_HTTP_VERIFY_DEPTH    10
#define NGX_ACME_HTTP_DEFAULT_TIMEOUT 30000


/* a system lookup in the thread pool; h is NULL once the exchange let go */
typedef struct {
    ngx_acme_http_t             *h;
    int                          rc;         /* getaddrinfo()'s */
    struct addrinfo             *res;
    char                         host[NGX_MAXHOSTNAMELEN + 1];
} ngx_acme_http_gai_t;


typedef enum {
    ngx_acme_http_st_start = 0,
    ngx_acme_http_st_resolving,
    ngx_acme_http_st_connecting,
    ngx_acme_http_st_proxy_sending,     /* CONNECT to the proxy */
    ngx_acme_http_st_proxy_reading,     /* its reply */
    ngx_acme_http_st_handshake,
    ngx_acme_http_st_sending,
    ngx_acme_http_st_reading,
    ngx_acme_http_st_done
} ngx_acme_http_state_e;


struct ngx_acme_http_s {
    ngx_pool_t                  *pool;
    ngx_acme_http_conf_t        *conf;
    ngx_acme_http_keep_t        *keep;       /* the job's, or NULL */
    ngx_log_t                    log;        /* caller's log + our context */

    ngx_acme_http_done_pt        handler;
    void                        *data;

    /* the request, copied: the engine's pointers die before we finish */
    u_char                      *method;
    u_char                      *url_text;
    acme_url_t                   url;        /* malloc'd, see cleanup */
    unsigned                     url_parsed:1;
    unsigned                     ip_literal:1;  /* conn_host */
    unsigned                     tls_ip:1;   /* host: SNI, name check */
    unsigned                     reused:1;   /* on the keeper's connection */
    unsigned                     received:1; /* a byte of the response */
    ngx_str_t                    host;       /* url.host */
    ngx_str_t                    conn_host;  /* resolved and connected to:
                                                the proxy's, or host */
    ngx_uint_t                   conn_port;

    /* through conf->proxy: the CONNECT request (it may hold credentials:
     * cleansed with the pool), how much of it was sent, the reply */
    u_char                      *connect_req;
    size_t                       connect_len;
    size_t                       connect_sent;
    acme_proxy_reply_t          *reply;

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
    ngx_acme_http_gai_t         *gai;
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


/* ngx_acme_http.c */
void ngx_acme_http_set_error(ngx_acme_http_t *h, const char *fmt, ...);
void ngx_acme_http_set_errno(ngx_acme_http_t *h, ngx_err_t err,
    const char *what);
void ngx_acme_http_finish(ngx_acme_http_t *h);
void ngx_acme_http_close(ngx_acme_http_t *h, ngx_uint_t quiet);
void ngx_acme_http_route(ngx_acme_http_t *h);

/* ngx_acme_http_io.c */
ngx_int_t ngx_acme_http_copy_addrs(ngx_acme_http_t *h, ngx_addr_t *src,
    ngx_uint_t n);
ngx_int_t ngx_acme_http_static_addrs(ngx_acme_http_t *h);
void ngx_acme_http_resolve(ngx_acme_http_t *h);
void ngx_acme_http_connect(ngx_acme_http_t *h);
void ngx_acme_http_send(ngx_acme_http_t *h);
char *ngx_acme_http_agent(void);
void ngx_acme_http_event_handler(ngx_event_t *ev);
void ngx_acme_http_timeout_handler(ngx_event_t *ev);

#endif /* _NGX_ACME_HTTP_LOCAL_H_INCLUDED_ */
