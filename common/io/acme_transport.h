/*
 * A blocking HTTPS client for hosts that run the engine in a thread of their
 * own (Apache), and a driver that runs one order to completion with it.
 * Never use this on an event loop.
 */
#ifndef ACME_TRANSPORT_H
#define ACME_TRANSPORT_H

#include <stddef.h>
#include "acme_http.h"
#include "acme_engine.h"
#include "acme_proxy.h"

typedef struct {
    const char  *ca_file;           /* trusted CAs for the ACME server; NULL = system store */
    int          verify;            /* 1 (default semantics): verify peer + host name */
    int          connect_timeout_ms;/* 0 -> 10000 */
    int          io_timeout_ms;     /* per read/write; 0 -> 30000 */
    int          total_timeout_ms;  /* whole exchange; 0 -> 60000 */
    size_t       max_body;          /* 0 -> ACME_HTTP_MAX_BODY */
    const char  *user_agent;        /* acme_http_user_agent(); NULL ->
                                       ACME_USER_AGENT_DEFAULT */
    int          keepalive_ms;      /* how long a transport keeps an idle
                                       connection; 0 -> 30000, < 0: none */
    const acme_proxy_t *proxy;      /* an HTTP CONNECT proxy every request
                                       goes through (its host is the one
                                       looked up; TLS and the host name
                                       check stay with the CA); NULL:
                                       direct.  The environment
                                       (https_proxy) is never read. */
} acme_transport_opts_t;

/*
 * A client for the requests of one order (or one thread): keeps its
 * connection open between requests to the same origin (scheme, host, port)
 * when the response allows it (HTTP/1.1, no "Connection: close", body
 * delimited), for at most keepalive_ms of idle time; resumes the TLS
 * session of that origin when it must connect again.  A request that fails
 * on a kept connection is sent again, once, on a new connection when that
 * cannot make the CA act twice: the write failed, or a GET / HEAD got no
 * byte of response (a POST that was written is not sent again: the engine
 * reads an unclear answer back).  opts is copied; its strings must outlive the
 * transport.  Not thread-safe: one thread uses it at a time.
 */
typedef struct acme_transport_s acme_transport_t;

/* NULL when memory runs out. */
acme_transport_t *acme_transport_new(const acme_transport_opts_t *opts);
/* As acme_transport_exchange, on t's connection. */
acme_http_parser_t *acme_transport_request(acme_transport_t *t,
    const acme_http_request_t *req, char *err, size_t errlen);
/* Closes the connection; NULL is fine. */
void acme_transport_free(acme_transport_t *t);

/*
 * Performs one exchange on a connection of its own (getaddrinfo, connect,
 * TLS with SNI and host name verification, request, response).  Returns a parser in DONE state whose
 * response the caller reads and then frees, or NULL with err filled.
 */
acme_http_parser_t *acme_transport_exchange(const acme_transport_opts_t *opts,
    const acme_http_request_t *req, char *err, size_t errlen);

/* Callbacks the driver makes for the engine's non-HTTP actions. */
typedef struct {
    void  *data;
    /* return 0 on success; non-zero with err: the order fails with err
     * (acme_engine_publish_failed) after unpublishing what is published */
    int  (*publish)(void *data, const char *type, const char *identifier,
                    const char *token, const char *key_authz,
                    char *err, size_t errlen);
    /* key_authz as on publish (a dns-01 TXT value is made from it) */
    void (*unpublish)(void *data, const char *type, const char *identifier,
                      const char *token, const char *key_authz);
    /* refused: why the CA refused the account URL the engine was given
     * (ACME_ACT_ACCOUNT's account_refused), or NULL */
    void (*account)(void *data, const char *account_url, const char *refused);
    /* asked before each sleep and request; non-zero aborts (shutdown) */
    int  (*should_stop)(void *data);
    /* a SLEEP's note (acme_action_t): an answer of unknown effect and what
     * the engine does next, for a warning in the log; NULL = not logged */
    void (*note)(void *data, const char *msg);
    /* ACME_ACT_REVOKED: the certificate the order was given to revoke
     * (acme_order_config_t.revoke_der) is revoked; NULL = not told */
    void (*revoked)(void *data);
} acme_driver_hooks_t;

/* Runs the engine until DONE (returns 0) or ERROR (returns -1), its requests
 * on one transport (closed on return); sleeps for
 * ACME_ACT_SLEEP in slices of at most one second so should_stop is honoured.
 * On should_stop the engine is aborted (acme_engine_abort): its UNPUBLISH
 * actions still reach unpublish, then -1.  The driver keeps no list of its
 * own. */
int acme_drive_blocking(acme_engine_t *e, const acme_transport_opts_t *opts,
    const acme_driver_hooks_t *hooks);

#endif
