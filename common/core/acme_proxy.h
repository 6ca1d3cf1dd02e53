/*
 * An outbound HTTP CONNECT proxy for the requests to the CA (nginx
 * "proxy URL;" in acme_issuer, Apache "AcmeProxy URL" in <AcmeIssuer>):
 * the proxy URL, the CONNECT request and the proxy's reply, written once
 * for both transports (the blocking one of acme_transport.h and nginx's
 * non-blocking client).  Pure: no I/O.
 *
 * The transport connects to the proxy (the proxy's host is the one looked
 * up), sends acme_proxy_connect_request(), feeds what it reads to an
 * acme_proxy_reply_t until DONE, then speaks to the CA through the tunnel
 * as on a direct connection: TLS with SNI and verification of the CA's host
 * name, HTTP/1.1 with keep-alive.  The environment (https_proxy and the
 * like) is never read: a proxy is configured or there is none.
 *
 * The credentials (http://user:pass@host:port) go into the
 * Proxy-Authorization header only: every text meant for a log or a status
 * names the proxy as "host:port" and never holds them.
 */
#ifndef ACME_PROXY_H
#define ACME_PROXY_H

#include <stddef.h>

#define ACME_PROXY_REPLY_MAX   8192     /* the reply's head, at most */
#define ACME_PROXY_LINE_MAX    128      /* status line kept for messages */

typedef struct {
    char  *host;            /* without brackets for IPv6 */
    int    port;
    char  *auth;            /* "Basic <base64(user:pass)>", or NULL: a
                               secret, cleansed by acme_proxy_free */
    char  *name;            /* "host:port" ("[v6]:port"), for messages */
} acme_proxy_t;

/*
 * "http://[user[:password]@]host:port[/]": 0, or -1 with the reason in err
 * (which never repeats the URL: it may hold a password).  user and
 * password may be percent-encoded (RFC 3986 userinfo).  Only http:// (the
 * connection to the proxy is plain; TLS runs end to end with the CA
 * inside the tunnel), and the port is required.  Free with
 * acme_proxy_free, also after a failure.
 */
int acme_proxy_parse(const char *url, acme_proxy_t *p, char *err,
    size_t errlen);
void acme_proxy_free(acme_proxy_t *p);

/*
 * The value of the directive (proxy / AcmeProxy) as both servers check it
 * when the configuration is read: 1 for "off" (direct, the default), 0
 * for a URL acme_proxy_parse takes, -1 with the reason in err.
 */
int acme_proxy_check(const char *value, char *err, size_t errlen);

/*
 * "CONNECT host:port HTTP/1.1" with Host, User-Agent (NULL: the core's
 * default) and, with credentials, Proxy-Authorization; host is the CA's
 * (an IPv6 address is put in brackets).  malloc'd; it holds the
 * credentials: the caller cleanses it (OPENSSL_cleanse) before free().
 * NULL when memory runs out.
 */
char *acme_proxy_connect_request(const acme_proxy_t *p, const char *host,
    int port, const char *user_agent, size_t *len);

/* The proxy's reply to CONNECT, read incrementally. */
typedef struct {
    char    head[ACME_PROXY_REPLY_MAX];
    size_t  len;
    int     status;                         /* after DONE */
    char    line[ACME_PROXY_LINE_MAX];      /* the status line, printable */
    char    error[512];
} acme_proxy_reply_t;

/* Zeroes r for a new reply. */
void acme_proxy_reply_init(acme_proxy_reply_t *r);

/*
 * Feeds bytes read from the proxy.  Returns ACME_HTTP_AGAIN (more is
 * needed), ACME_HTTP_DONE (a 2xx: the tunnel is open) or ACME_HTTP_ERROR
 * (acme_proxy_reply_error: a refusal names the proxy, the target and the
 * proxy's status line, e.g. "proxy 127.0.0.1:3128 refused CONNECT to
 * ca.example:443: \"HTTP/1.1 403 Access violation\"").  A byte after the
 * reply's head is an error too: the CA says nothing before the client.
 */
int acme_proxy_reply_feed(acme_proxy_reply_t *r, const acme_proxy_t *p,
    const char *host, int port, const char *data, size_t len);

/* The proxy closed the connection: ACME_HTTP_ERROR with the error set. */
int acme_proxy_reply_eof(acme_proxy_reply_t *r, const acme_proxy_t *p,
    const char *host, int port);

const char *acme_proxy_reply_error(const acme_proxy_reply_t *r);

#endif
