/*
 * HTTP/1.1 wire code shared by every transport: URL parsing, request
 * serialisation and an incremental response parser.
 *
 * The parser is fed whatever the socket returned, in arbitrary pieces, and
 * never needs to look back: status line and header lines are collected in a
 * line buffer, body bytes go straight to the body buffer.  Only the headers
 * the engine uses are kept (acme_http_response_t); the others are checked
 * for syntax and dropped.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "acme_http.h"
#include "acme_util.h"

/* Status line + header lines (and, separately, the chunked trailer). */
#define ACME_HTTP_MAX_HEADER  (64 * 1024)
/* One chunk-size line with its extensions. */
#define ACME_HTTP_MAX_CHUNK_LINE  4096


/* ---- URLs ---------------------------------------------------------------- */

int
acme_url_parse(const char *url, acme_url_t *out, char *err, size_t errlen)
{
    const char  *p, *auth, *auth_end, *host, *host_end, *port_s, *path;
    size_t       host_len, path_len;
    long         port;
    char        *end;
    int          ipv6;

    memset(out, 0, sizeof(*out));

    if (url == NULL) {
        return acme_err(err, errlen, "no URL");
    }

    if (strncasecmp(url, "https://", 8) == 0) {
        out->https = 1;
        auth = url + 8;

    } else if (strncasecmp(url, "http://", 7) == 0) {
        out->https = 0;
        auth = url + 7;

    } else {
        return acme_err(err, errlen, "URL \"%s\" is not http:// or https://",
                        url);
    }

    auth_end = auth + strcspn(auth, "/?#");
    if (auth_end == auth) {
        return acme_err(err, errlen, "URL \"%s\" has no host", url);
    }

    for (p = auth; p < auth_end; p++) {
        if (*p == '@') {
            return acme_err(err, errlen,
                            "URL \"%s\": user info is not supported", url);
        }
        if ((unsigned char) *p <= ' ' || *p == '\\') {
            return acme_err(err, errlen, "URL \"%s\": bad character in host",
                            url);
        }
    }

    port_s = NULL;
    ipv6 = 0;

    if (*auth == '[') {
        host = auth + 1;
        host_end = memchr(host, ']', (size_t) (auth_end - host));
        if (host_end == NULL || host_end == host) {
            return acme_err(err, errlen, "URL \"%s\": bad IPv6 literal", url);
        }
        for (p = host; p < host_end; p++) {
            if (!isxdigit((unsigned char) *p) && *p != ':' && *p != '.') {
                return acme_err(err, errlen, "URL \"%s\": bad IPv6 literal",
                                url);
            }
        }
        ipv6 = 1;
        p = host_end + 1;
        if (p < auth_end) {
            if (*p != ':') {
                return acme_err(err, errlen, "URL \"%s\": bad authority", url);
            }
            port_s = p + 1;
        }

    } else {
        host = auth;
        host_end = memchr(auth, ':', (size_t) (auth_end - auth));
        if (host_end != NULL) {
            port_s = host_end + 1;
        } else {
            host_end = auth_end;
        }
        if (host_end == host) {
            return acme_err(err, errlen, "URL \"%s\" has no host", url);
        }
    }

    if (port_s != NULL) {
        if (port_s == auth_end || !isdigit((unsigned char) *port_s)) {
            return acme_err(err, errlen, "URL \"%s\": bad port", url);
        }
        errno = 0;
        port = strtol(port_s, &end, 10);
        if (end != auth_end || errno != 0 || port < 1 || port > 65535) {
            return acme_err(err, errlen, "URL \"%s\": bad port", url);
        }

    } else {
        port = out->https ? 443 : 80;
    }

    out->port = (int) port;
    host_len = (size_t) (host_end - host);
    out->host = acme_strndup(host, host_len);

    if (port_s != NULL && port != (out->https ? 443 : 80)) {
        out->host_header = acme_sprintf(ipv6 ? "[%.*s]:%ld" : "%.*s:%ld",
                                        (int) host_len, host, port);
    } else {
        out->host_header = acme_sprintf(ipv6 ? "[%.*s]" : "%.*s",
                                        (int) host_len, host);
    }

    /* the fragment is never sent */
    path = auth_end;
    path_len = strcspn(path, "#");
    if (path_len == 0) {
        out->path = acme_strdup("/");
    } else if (*path == '?') {
        out->path = acme_sprintf("/%.*s", (int) path_len, path);
    } else {
        out->path = acme_strndup(path, path_len);
    }

    if (out->host == NULL || out->host_header == NULL || out->path == NULL) {
        acme_url_free(out);
        return acme_err(err, errlen, "out of memory");
    }

    for (p = out->path; *p; p++) {
        if ((unsigned char) *p <= ' ' || (unsigned char) *p == 0x7f) {
            acme_url_free(out);
            return acme_err(err, errlen, "URL \"%s\": bad character in path",
                            url);
        }
    }

    return 0;
}


void
acme_url_free(acme_url_t *u)
{
    if (u == NULL) {
        return;
    }
    free(u->host);
    free(u->host_header);
    free(u->path);
    u->host = NULL;
    u->host_header = NULL;
    u->path = NULL;
}


/* ---- requests ------------------------------------------------------------ */

const char *
acme_http_user_agent(char *buf, size_t len, const char *module,
    const char *server)
{
    const char  *v;
    size_t       n;

    if (buf == NULL || len == 0) {
        return buf;
    }

    /* "OpenSSL 3.0.15 3 Sep 2024": the version is the second word */
    v = OpenSSL_version(OPENSSL_VERSION);
    v = v != NULL ? strchr(v, ' ') : NULL;
    v = v != NULL ? v + 1 : "";
    n = strcspn(v, " ");

    snprintf(buf, len, "%s/%s%s%s%s%.*s", module ? module : "acme-core",
             ACME_VERSION, server ? " " : "", server ? server : "",
             n ? " OpenSSL/" : "", (int) n, v);
    return buf;
}


/* A header value we may send: printable ASCII and spaces only */
static int
header_value_ok(const char *v)
{
    for ( ; *v; v++) {
        if ((unsigned char) *v < 0x20 || (unsigned char) *v >= 0x7f) {
            return 0;
        }
    }
    return 1;
}


char *
acme_http_serialize(const acme_http_request_t *req, const acme_url_t *u,
    const char *user_agent, size_t *len)
{
    return acme_http_serialize_conn(req, u, user_agent, 0, len);
}


char *
acme_http_serialize_conn(const acme_http_request_t *req, const acme_url_t *u,
    const char *user_agent, int keep_alive, size_t *len)
{
    char    *head, *out, clen[48];
    size_t   hlen, blen;
    int      has_body, auth;

    auth = req->authorization != NULL && *req->authorization != '\0'
           && header_value_ok(req->authorization);

    if (user_agent == NULL || *user_agent == '\0'
        || !header_value_ok(user_agent))
    {
        user_agent = ACME_USER_AGENT_DEFAULT;
    }

    /* POST always carries a length so servers need not wait for a body */
    has_body = req->body != NULL || strcmp(req->method, "POST") == 0;
    blen = req->body != NULL ? req->body_len : 0;

    clen[0] = '\0';
    if (has_body) {
        snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n", blen);
    }

    head = acme_sprintf(
        "%s %s HTTP/1.1\r\n"
        "Host: %s\r\n"
        "User-Agent: %s\r\n"
        "%s%s%s"
        "%s%s%s"
        "%s%s%s"
        "%s"
        "%s"
        "\r\n",
        req->method, u->path, u->host_header, user_agent,
        req->accept ? "Accept: " : "", req->accept ? req->accept : "",
        req->accept ? "\r\n" : "",
        auth ? "Authorization: " : "", auth ? req->authorization : "",
        auth ? "\r\n" : "",
        has_body && req->content_type ? "Content-Type: " : "",
        has_body && req->content_type ? req->content_type : "",
        has_body && req->content_type ? "\r\n" : "",
        clen, keep_alive ? "" : "Connection: close\r\n");

    if (head == NULL) {
        return NULL;
    }

    hlen = strlen(head);
    out = malloc(hlen + blen + 1);
    if (out == NULL) {
        free(head);
        return NULL;
    }

    memcpy(out, head, hlen);
    if (blen) {
        memcpy(out + hlen, req->body, blen);
    }
    out[hlen + blen] = '\0';
    free(head);

    if (len) {
        *len = hlen + blen;
    }
    return out;
}


/* ---- response parser ----------------------------------------------------- */

typedef enum {
    ST_STATUS = 0,
    ST_HEADER,
    ST_BODY_LENGTH,
    ST_BODY_CLOSE,
    ST_CHUNK_SIZE,
    ST_CHUNK_DATA,
    ST_CHUNK_DATA_END,
    ST_TRAILER,
    ST_DONE,
    ST_ERROR
} parser_state_t;

/* Headers kept for the engine, plus the framing ones. */
enum {
    H_LOCATION = 0,
    H_REPLAY_NONCE,
    H_RETRY_AFTER,
    H_CONTENT_TYPE,
    H_LINK,                 /* every Link header, joined with ", " */
    H_NKEPT
};

struct acme_http_parser_s {
    parser_state_t        state;
    size_t                max_body;
    int                   head;

    char                 *line;
    size_t                line_len, line_cap;
    size_t                header_bytes;     /* status + headers, or trailer */

    int                   status;
    int                   http10;           /* "HTTP/1.0" status line */
    int                   conn_close;       /* "Connection: close" */
    int                   excess;           /* bytes after the response */
    int                   close_delimited;  /* body ends with the stream */
    char                 *kept[H_NKEPT];
    int                   last_kept;        /* for obs-fold; -1 = none */

    int                   have_length;
    unsigned long long    length;           /* Content-Length */
    int                   chunked;
    int                   other_coding;
    unsigned long long    chunk_left;
    int                   cr;               /* CHUNK_DATA_END: CR seen */

    char                 *body;
    size_t                body_len, body_cap;

    char                  error[160];
    acme_http_response_t  resp;
};


acme_http_parser_t *
acme_http_parser_new(size_t max_body)
{
    acme_http_parser_t *p;

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->max_body = max_body ? max_body : ACME_HTTP_MAX_BODY;
    p->last_kept = -1;
    return p;
}


void
acme_http_parser_free(acme_http_parser_t *p)
{
    int i;

    if (p == NULL) {
        return;
    }
    for (i = 0; i < H_NKEPT; i++) {
        free(p->kept[i]);
    }
    free(p->line);
    free(p->body);
    free(p);
}


void
acme_http_parser_set_head(acme_http_parser_t *p)
{
    p->head = 1;
}


const char *
acme_http_parser_error(const acme_http_parser_t *p)
{
    return p->error[0] ? p->error : "no error";
}


const acme_http_response_t *
acme_http_parser_response(const acme_http_parser_t *p)
{
    return p->state == ST_DONE ? &p->resp : NULL;
}


static int
fail(acme_http_parser_t *p, const char *msg)
{
    if (p->state != ST_ERROR) {
        snprintf(p->error, sizeof(p->error), "%s", msg);
        p->state = ST_ERROR;
    }
    return ACME_HTTP_ERROR;
}


static int
body_append(acme_http_parser_t *p, const char *data, size_t n)
{
    size_t  cap;
    char   *b;

    if (n > p->max_body - p->body_len) {
        return fail(p, "response body too large");
    }

    if (p->body_len + n + 1 > p->body_cap) {
        cap = p->body_cap ? p->body_cap : 4096;
        while (cap < p->body_len + n + 1) {
            cap *= 2;
        }
        b = realloc(p->body, cap);
        if (b == NULL) {
            return fail(p, "out of memory");
        }
        p->body = b;
        p->body_cap = cap;
    }

    memcpy(p->body + p->body_len, data, n);
    p->body_len += n;
    p->body[p->body_len] = '\0';
    return 0;
}


static int
finish(acme_http_parser_t *p)
{
    if (p->body == NULL && body_append(p, "", 0) != 0) {
        return ACME_HTTP_ERROR;
    }

    p->resp.status = p->status;
    p->resp.location = p->kept[H_LOCATION];
    p->resp.replay_nonce = p->kept[H_REPLAY_NONCE];
    p->resp.retry_after = p->kept[H_RETRY_AFTER];
    p->resp.content_type = p->kept[H_CONTENT_TYPE];
    p->resp.link = p->kept[H_LINK];
    p->resp.body = p->body;
    p->resp.body_len = p->body_len;
    p->state = ST_DONE;
    return ACME_HTTP_DONE;
}


/* Appends to the line buffer; limit bounds the line (and the header total). */
static int
line_append(acme_http_parser_t *p, const char *data, size_t n)
{
    size_t  cap;
    char   *l;

    if (p->line_len + n + 1 > p->line_cap) {
        cap = p->line_cap ? p->line_cap : 256;
        while (cap < p->line_len + n + 1) {
            cap *= 2;
        }
        l = realloc(p->line, cap);
        if (l == NULL) {
            return fail(p, "out of memory");
        }
        p->line = l;
        p->line_cap = cap;
    }
    memcpy(p->line + p->line_len, data, n);
    p->line_len += n;
    p->line[p->line_len] = '\0';
    return 0;
}


static char *
trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
        *--e = '\0';
    }
    return s;
}


static int
parse_status_line(acme_http_parser_t *p, char *l)
{
    const char *s;

    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (strncmp(l, "HTTP/1.", 7) != 0 || !isdigit((unsigned char) l[7])
        || l[8] != ' ')
    {
        return fail(p, "bad status line");
    }

    s = l + 9;
    if (!isdigit((unsigned char) s[0]) || !isdigit((unsigned char) s[1])
        || !isdigit((unsigned char) s[2]) || (s[3] != '\0' && s[3] != ' '))
    {
        return fail(p, "bad status line");
    }

    p->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    p->http10 = l[7] == '0';
    if (p->status < 100) {
        return fail(p, "bad status line");
    }

    p->state = ST_HEADER;
    return 0;
}


static int
token_char(unsigned char c)
{
    return c > ' ' && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}


static int
parse_transfer_encoding(acme_http_parser_t *p, const char *v)
{
    const char  *s, *e;
    size_t       n;
    int          last_chunked = 0, any = 0;

    for (s = v; *s; s = e) {
        while (*s == ' ' || *s == '\t' || *s == ',') {
            s++;
        }
        if (*s == '\0') {
            break;
        }
        e = s + strcspn(s, ",");
        n = (size_t) (e - s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
            n--;
        }
        any = 1;
        if (n == 7 && strncasecmp(s, "chunked", 7) == 0) {
            if (last_chunked) {
                return fail(p, "chunked applied twice");
            }
            last_chunked = 1;
        } else if (n == 8 && strncasecmp(s, "identity", 8) == 0) {
            /* historic no-op */
        } else {
            last_chunked = 0;
            p->other_coding = 1;
        }
    }

    if (any) {
        p->chunked = last_chunked;
    }
    return 0;
}


/* Whether the comma-separated list v holds token (case-insensitive). */
static int
has_token(const char *v, const char *token)
{
    const char  *s, *e;
    size_t       n, tl = strlen(token);

    for (s = v; *s; s = e) {
        while (*s == ' ' || *s == '\t' || *s == ',') {
            s++;
        }
        e = s + strcspn(s, ",");
        n = (size_t) (e - s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
            n--;
        }
        if (n == tl && strncasecmp(s, token, n) == 0) {
            return 1;
        }
    }
    return 0;
}


static int
header_line(acme_http_parser_t *p, char *l)
{
    static const char *names[H_NKEPT] = {
        "Location", "Replay-Nonce", "Retry-After", "Content-Type", "Link"
    };
    char                *colon, *v, *joined;
    unsigned long long   n;
    char                *end;
    int                  i;

    if (*l == ' ' || *l == '\t') {
        /* obs-fold: the previous header continues (RFC 7230 3.2.4) */
        if (p->last_kept >= 0) {
            joined = acme_sprintf("%s %s", p->kept[p->last_kept], trim(l));
            if (joined == NULL) {
                return fail(p, "out of memory");
            }
            free(p->kept[p->last_kept]);
            p->kept[p->last_kept] = joined;
        }
        return 0;
    }

    colon = strchr(l, ':');
    if (colon == NULL || colon == l) {
        return fail(p, "malformed header line");
    }
    for (v = l; v < colon; v++) {
        if (!token_char((unsigned char) *v)) {
            return fail(p, "malformed header name");
        }
    }

    *colon = '\0';
    v = trim(colon + 1);
    p->last_kept = -1;

    for (i = 0; i < H_NKEPT; i++) {
        if (strcasecmp(l, names[i]) == 0) {
            if (i == H_LINK && p->kept[i] != NULL) {
                /* a list header (RFC 9110 5.3): one value, comma-joined */
                joined = acme_sprintf("%s, %s", p->kept[i], v);
                if (joined == NULL) {
                    return fail(p, "out of memory");
                }
                free(p->kept[i]);
                p->kept[i] = joined;
                p->last_kept = i;
                return 0;
            }
            /* the first one wins; a CA sends each once */
            if (p->kept[i] == NULL) {
                p->kept[i] = acme_strdup(v);
                if (p->kept[i] == NULL) {
                    return fail(p, "out of memory");
                }
                p->last_kept = i;
            }
            return 0;
        }
    }

    if (strcasecmp(l, "Content-Length") == 0) {
        if (!isdigit((unsigned char) *v)) {
            return fail(p, "bad Content-Length");
        }
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno != 0 || *end != '\0') {
            return fail(p, "bad Content-Length");
        }
        if (p->have_length && p->length != n) {
            return fail(p, "conflicting Content-Length headers");
        }
        p->have_length = 1;
        p->length = n;
        return 0;
    }

    if (strcasecmp(l, "Transfer-Encoding") == 0) {
        return parse_transfer_encoding(p, v);
    }

    if (strcasecmp(l, "Connection") == 0 && has_token(v, "close")) {
        p->conn_close = 1;
    }

    return 0;
}


/* The empty line after the headers: decide how the body is framed. */
static int
headers_done(acme_http_parser_t *p)
{
    int i;

    if (p->status < 200) {
        /* an interim response (100 Continue...): the real one follows */
        if (p->status == 101) {
            return fail(p, "unexpected protocol switch");
        }
        for (i = 0; i < H_NKEPT; i++) {
            free(p->kept[i]);
            p->kept[i] = NULL;
        }
        p->have_length = 0;
        p->chunked = 0;
        p->other_coding = 0;
        p->last_kept = -1;
        p->state = ST_STATUS;
        return 0;
    }

    if (p->head || p->status == 204 || p->status == 304) {
        return finish(p);
    }

    if (p->other_coding) {
        return fail(p, "unsupported transfer coding");
    }

    if (p->chunked) {
        p->state = ST_CHUNK_SIZE;
        p->header_bytes = 0;
        return 0;
    }

    if (p->have_length) {
        if (p->length > p->max_body) {
            return fail(p, "response body too large");
        }
        if (p->length == 0) {
            return finish(p);
        }
        p->state = ST_BODY_LENGTH;
        return 0;
    }

    p->state = ST_BODY_CLOSE;
    p->close_delimited = 1;
    return 0;
}


static int
chunk_size_line(acme_http_parser_t *p, char *l)
{
    unsigned long long  n = 0;
    char               *s;
    int                 d, digits = 0;

    for (s = l; isxdigit((unsigned char) *s); s++) {
        d = isdigit((unsigned char) *s) ? *s - '0'
                                        : (tolower((unsigned char) *s) - 'a' + 10);
        if (n > (~0ULL >> 4)) {
            return fail(p, "chunk size too large");
        }
        n = n * 16 + (unsigned) d;
        digits++;
    }

    if (digits == 0) {
        return fail(p, "bad chunk size");
    }

    /* chunk extensions (";name=value") are ignored */
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s != '\0' && *s != ';') {
        return fail(p, "bad chunk size");
    }

    if (n == 0) {
        p->state = ST_TRAILER;
        p->header_bytes = 0;
        return 0;
    }

    if (n > p->max_body - p->body_len) {
        return fail(p, "response body too large");
    }

    p->chunk_left = n;
    p->state = ST_CHUNK_DATA;
    return 0;
}


/* One complete line (CR LF or bare LF stripped) in a line state. */
static int
line_done(acme_http_parser_t *p, char *l)
{
    const char *c;

    /* no control characters but HTAB (RFC 9110 section 5.5: a bare CR,
     * a VT, ... make the message invalid) */
    for (c = l; *c; c++) {
        if (((unsigned char) *c < ' ' && *c != '\t') || *c == 0x7f) {
            return fail(p, "control character in response headers");
        }
    }

    switch (p->state) {

    case ST_STATUS:
        return parse_status_line(p, l);

    case ST_HEADER:
        if (*l == '\0') {
            return headers_done(p);
        }
        return header_line(p, l);

    case ST_CHUNK_SIZE:
        return chunk_size_line(p, l);

    case ST_TRAILER:
        if (*l == '\0') {
            return finish(p);
        }
        /* trailer fields are not used */
        return 0;

    default:
        return fail(p, "internal parser error");
    }
}


int
acme_http_parser_feed(acme_http_parser_t *p, const char *data, size_t len)
{
    const char  *nl, *end = data + len;
    size_t       n, limit;
    int          rc;

    while (data < end) {

        switch (p->state) {

        case ST_DONE:
            /* anything after the response is ignored, and the connection
             * is not reused (no request was pipelined) */
            p->excess = 1;
            return ACME_HTTP_DONE;

        case ST_ERROR:
            return ACME_HTTP_ERROR;

        case ST_STATUS:
        case ST_HEADER:
        case ST_CHUNK_SIZE:
        case ST_TRAILER:
            limit = p->state == ST_CHUNK_SIZE ? ACME_HTTP_MAX_CHUNK_LINE
                                              : ACME_HTTP_MAX_HEADER;
            nl = memchr(data, '\n', (size_t) (end - data));
            n = nl ? (size_t) (nl - data) : (size_t) (end - data);

            if (p->state == ST_CHUNK_SIZE) {
                if (p->line_len + n > limit) {
                    return fail(p, "chunk size line too long");
                }
            } else if (p->header_bytes + n + 1 > limit) {
                return fail(p, p->state == ST_TRAILER ? "trailer too large"
                                                      : "response headers too large");
            }

            if (memchr(data, '\0', n) != NULL) {
                return fail(p, "NUL byte in response headers");
            }

            if (line_append(p, data, n) != 0) {
                return ACME_HTTP_ERROR;
            }
            if (p->state != ST_CHUNK_SIZE) {
                p->header_bytes += n + (nl ? 1 : 0);
            }

            if (nl == NULL) {
                return ACME_HTTP_AGAIN;
            }
            data = nl + 1;

            if (p->line_len && p->line[p->line_len - 1] == '\r') {
                p->line[--p->line_len] = '\0';
            }
            p->line_len = 0;

            rc = line_done(p, p->line);
            if (rc == ACME_HTTP_ERROR) {
                return rc;
            }
            break;

        case ST_BODY_LENGTH:
            n = (size_t) (end - data);
            if (n > p->length - p->body_len) {
                n = (size_t) (p->length - p->body_len);
            }
            if (body_append(p, data, n) != 0) {
                return ACME_HTTP_ERROR;
            }
            data += n;
            if (p->body_len == p->length && finish(p) != ACME_HTTP_DONE) {
                return ACME_HTTP_ERROR;
            }
            break;

        case ST_BODY_CLOSE:
            if (body_append(p, data, (size_t) (end - data)) != 0) {
                return ACME_HTTP_ERROR;
            }
            data = end;
            break;

        case ST_CHUNK_DATA:
            n = (size_t) (end - data);
            if (n > p->chunk_left) {
                n = (size_t) p->chunk_left;
            }
            if (body_append(p, data, n) != 0) {
                return ACME_HTTP_ERROR;
            }
            data += n;
            p->chunk_left -= n;
            if (p->chunk_left == 0) {
                p->state = ST_CHUNK_DATA_END;
                p->cr = 0;
            }
            break;

        case ST_CHUNK_DATA_END:
            /* CRLF (or a bare LF) after the chunk data */
            if (*data == '\r' && !p->cr) {
                p->cr = 1;
                data++;
            } else if (*data == '\n') {
                data++;
                p->state = ST_CHUNK_SIZE;
            } else {
                return fail(p, "missing CRLF after chunk data");
            }
            break;
        }
    }

    switch (p->state) {
    case ST_DONE:
        return ACME_HTTP_DONE;
    case ST_ERROR:
        return ACME_HTTP_ERROR;
    default:
        /* a response without body may be complete right at the header end */
        return ACME_HTTP_AGAIN;
    }
}


int
acme_http_parser_reusable(const acme_http_parser_t *p)
{
    return p->state == ST_DONE && !p->http10 && !p->conn_close && !p->excess
           && !p->close_delimited;
}


int
acme_http_parser_eof(acme_http_parser_t *p)
{
    switch (p->state) {

    case ST_DONE:
        return ACME_HTTP_DONE;

    case ST_ERROR:
        return ACME_HTTP_ERROR;

    case ST_BODY_CLOSE:
        return finish(p);

    case ST_STATUS:
        if (p->line_len == 0 && p->header_bytes == 0) {
            return fail(p, "connection closed without a response");
        }
        /* fall through */
    case ST_HEADER:
        return fail(p, "connection closed in the response headers");

    default:
        return fail(p, "connection closed before the end of the response body");
    }
}


/* ---- Link header (RFC 8288) ---------------------------------------------- */

static const char *
link_ows(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}


/* Whether the space-separated relation types [v, v + n) have rel. */
static int
link_has_rel(const char *v, size_t n, const char *rel)
{
    size_t  i, j, rl = strlen(rel);

    for (i = 0; i < n; i = j) {
        while (i < n && (v[i] == ' ' || v[i] == '\t')) {
            i++;
        }
        for (j = i; j < n && v[j] != ' ' && v[j] != '\t'; j++) { /* */ }
        if (j - i == rl && strncasecmp(v + i, rel, rl) == 0) {
            return 1;
        }
    }
    return 0;
}


/* target (n bytes) as an absolute http(s) URL, resolved against base;
 * NULL when it cannot be (another scheme, no base). malloc'd. */
static char *
link_resolve(const char *t, size_t n, const char *base)
{
    const char  *auth, *slash;
    size_t       blen, k;

    if ((n > 8 && strncasecmp(t, "https://", 8) == 0)
        || (n > 7 && strncasecmp(t, "http://", 7) == 0))
    {
        return acme_strndup(t, n);
    }
    if (base == NULL
        || (strncasecmp(base, "https://", 8) != 0
            && strncasecmp(base, "http://", 7) != 0))
    {
        return NULL;
    }
    auth = strstr(base, "://") + 3;
    if (n > 2 && t[0] == '/' && t[1] == '/') {
        /* network-path reference: the base's scheme */
        return acme_sprintf("%.*s%.*s", (int) (auth - base - 2), base,
                            (int) n, t);
    }
    for (k = 0; k < n && t[k] != '/' && t[k] != '?' && t[k] != '#'; k++) {
        if (t[k] == ':') {
            return NULL;                    /* another scheme */
        }
    }
    slash = auth + strcspn(auth, "/?#");
    if (n > 0 && t[0] == '/') {
        /* absolute path: the base's origin */
        return acme_sprintf("%.*s%.*s", (int) (slash - base), base,
                            (int) n, t);
    }
    /* a relative path: after the last '/' of the base's path */
    blen = strcspn(base, "?#");
    while (blen > (size_t) (slash - base) && base[blen - 1] != '/') {
        blen--;
    }
    if (blen == (size_t) (slash - base)) {
        return acme_sprintf("%.*s/%.*s", (int) blen, base, (int) n, t);
    }
    return acme_sprintf("%.*s%.*s", (int) blen, base, (int) n, t);
}


size_t
acme_http_links(const char *value, const char *rel, const char *base,
    char **out, size_t max)
{
    const char  *p, *t, *te, *name, *ne, *v, *ve;
    size_t       n = 0, tl;
    int          match, have_rel;
    char        *url;

    if (value == NULL) {
        return 0;
    }
    p = value;

    while (n < max) {
        /* empty list elements */
        for (p = link_ows(p); *p == ','; p = link_ows(p + 1)) { /* */ }
        if (*p != '<') {
            return n;                   /* the end, or not a link-value */
        }
        t = p + 1;
        te = strchr(t, '>');
        if (te == NULL) {
            return n;
        }
        tl = (size_t) (te - t);
        p = te + 1;
        match = 0;
        have_rel = 0;

        /* *( OWS ";" OWS link-param ) */
        for ( ;; ) {
            p = link_ows(p);
            if (*p == '\0' || *p == ',') {
                break;
            }
            if (*p != ';') {
                return n;               /* malformed: stop, as nginx-acme */
            }
            name = link_ows(p + 1);
            ne = name + strcspn(name, "=;, \t");
            p = link_ows(ne);
            v = ve = p;
            if (*p == '=') {
                p = link_ows(p + 1);
                if (*p == '"') {
                    v = ++p;
                    while (*p != '\0' && *p != '"') {
                        if (*p == '\\' && p[1] != '\0') {
                            p++;
                        }
                        p++;
                    }
                    ve = p;
                    if (*p == '"') {
                        p++;
                    }
                } else {
                    v = p;
                    p += strcspn(p, ";,");
                    ve = p;
                    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
                        ve--;
                    }
                }
            }
            /* the first rel parameter counts (RFC 8288 3.3) */
            if (!have_rel && ne - name == 3
                && strncasecmp(name, "rel", 3) == 0)
            {
                have_rel = 1;
                match = link_has_rel(v, (size_t) (ve - v), rel);
            }
        }

        if (match && tl > 0) {
            url = link_resolve(t, tl, base);
            if (url != NULL && strpbrk(url, " \t\r\n<>\"") == NULL) {
                out[n++] = url;
            } else {
                free(url);
            }
        }
    }
    return n;
}
