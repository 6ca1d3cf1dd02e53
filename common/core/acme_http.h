/*
 * The HTTP messages the engine exchanges with a CA, plus the HTTP/1.1 wire
 * code (URL parsing, request serialisation, incremental response parsing)
 * shared by every transport: the nginx non-blocking client and the blocking
 * client of acme_transport.h.
 */
#ifndef ACME_HTTP_H
#define ACME_HTTP_H

#include <stddef.h>

#include "acme_util.h"

/* A request from the engine.  All pointers are owned by the engine and stay
 * valid until the next call into the engine. */
typedef struct {
    const char  *method;        /* "GET", "HEAD" or "POST" */
    const char  *url;           /* absolute https:// (or http://) URL */
    const char  *body;          /* NULL when no body */
    size_t       body_len;
    const char  *content_type;  /* "application/jose+json" for POST */
    const char  *accept;        /* Accept header value, NULL = none */
    const char  *authorization; /* Authorization header value, NULL = none
                                   (not the CA's: the shared store's token) */
} acme_http_request_t;

/* A response given to the engine; borrowed for the duration of the call.
 * Header values are NUL-terminated, NULL when absent. */
typedef struct {
    int          status;
    const char  *location;
    const char  *replay_nonce;
    const char  *retry_after;
    const char  *content_type;
    const char  *link;          /* every Link header, joined with ", " */
    const char  *body;          /* NUL-terminated for convenience */
    size_t       body_len;
} acme_http_response_t;

/* Default cap on response bodies; larger ones are an error. */
#define ACME_HTTP_MAX_BODY  (1024 * 1024)

typedef struct {
    int     https;
    char   *host;           /* without brackets for IPv6 */
    int     port;
    char   *host_header;    /* "host" or "host:port" as sent in Host: */
    char   *path;           /* path + query, at least "/" */
} acme_url_t;

/* 0, or -1 with err.  Free with acme_url_free. */
int acme_url_parse(const char *url, acme_url_t *out, char *err, size_t errlen);
void acme_url_free(acme_url_t *u);

/* HTTP/1.1 request bytes: request line, Host, User-Agent, Accept,
 * Content-Type/Length when a body is present, Connection: close.  malloc'd.
 * user_agent is the host's (acme_http_user_agent); NULL, or one with a
 * control character, sends ACME_USER_AGENT_DEFAULT. */
char *acme_http_serialize(const acme_http_request_t *req, const acme_url_t *u,
    const char *user_agent, size_t *len);
/* The same; keep_alive non-zero leaves "Connection: close" out (HTTP/1.1
 * persistent connection, see acme_http_parser_reusable). */
char *acme_http_serialize_conn(const acme_http_request_t *req,
    const acme_url_t *u, const char *user_agent, int keep_alive, size_t *len);

#define ACME_USER_AGENT_DEFAULT  "acme-core/" ACME_VERSION

/*
 * The User-Agent of a host (RFC 8555 section 6.1: the ACME software and
 * the HTTP client software, with their versions):
 * "<module>/<ACME_VERSION> <server> OpenSSL/<x.y.z>", e.g.
 * "ngx_acme/0.1 nginx/1.22.1 OpenSSL/3.0.15".  module and server are the
 * host's product tokens ("ngx_acme", "nginx/1.22.1"); server may be NULL.
 * Written into buf (truncated to len); returns buf.
 */
const char *acme_http_user_agent(char *buf, size_t len, const char *module,
    const char *server);

/* Incremental response parser: Content-Length, chunked, or close-delimited. */
typedef struct acme_http_parser_s acme_http_parser_t;

enum { ACME_HTTP_AGAIN = 0, ACME_HTTP_DONE = 1, ACME_HTTP_ERROR = -1 };

acme_http_parser_t *acme_http_parser_new(size_t max_body);
void acme_http_parser_free(acme_http_parser_t *p);
/* Feed received bytes.  Returns AGAIN, DONE or ERROR (see _error). */
int acme_http_parser_feed(acme_http_parser_t *p, const char *data, size_t len);
/* The request was a HEAD: the response has no body whatever its headers
 * say.  Call before feeding. */
void acme_http_parser_set_head(acme_http_parser_t *p);
/* The peer closed the connection: DONE if the body was close-delimited and
 * complete, else ERROR. */
int acme_http_parser_eof(acme_http_parser_t *p);
/* After DONE: 1 when the connection may carry another request: HTTP/1.1
 * without "Connection: close", the body delimited by its length, chunked
 * end or status (not by the end of the stream), and no byte after it. */
int acme_http_parser_reusable(const acme_http_parser_t *p);
const char *acme_http_parser_error(const acme_http_parser_t *p);
/* Valid after DONE; owned by the parser. */
const acme_http_response_t *acme_http_parser_response(const acme_http_parser_t *p);

/*
 * The targets of the links with relation type rel (any case, one among the
 * rel parameter's space-separated types) in a Link header value (RFC 8288:
 * "<url>; rel=\"alternate\", <url2>;rel=alternate"), in order, resolved
 * against base (the URL of the response) to absolute http(s) URLs; at most
 * max of them, each malloc'd into out.  Parsing stops at the first
 * malformed link-value (as nginx-acme's); a target that cannot be made an
 * http(s) URL is left out.  Returns how many were written.
 */
size_t acme_http_links(const char *value, const char *rel, const char *base,
    char **out, size_t max);

#endif
