/*
 * The outbound HTTP CONNECT proxy: its URL, the CONNECT request and the
 * parsing of the proxy's reply (acme_proxy.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "acme_http.h"
#include "acme_proxy.h"
#include "acme_util.h"


static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}


/* Percent-decodes s[0..len) into a new string; NULL on a bad escape, a
 * NUL, a control character or no memory. */
static char *
pct_decode(const char *s, size_t len)
{
    char    *out;
    size_t   i, o;
    int      hi, lo, c;

    out = malloc(len + 1);
    if (out == NULL) {
        return NULL;
    }

    for (i = 0, o = 0; i < len; i++) {
        c = (unsigned char) s[i];
        if (c == '%') {
            if (len - i < 3) {
                goto bad;
            }
            hi = hexval((unsigned char) s[i + 1]);
            lo = hexval((unsigned char) s[i + 2]);
            if (hi < 0 || lo < 0) {
                goto bad;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            goto bad;
        }
        out[o++] = (char) c;
    }
    out[o] = '\0';
    return out;

bad:
    OPENSSL_cleanse(out, len + 1);
    free(out);
    return NULL;
}


int
acme_proxy_parse(const char *url, acme_proxy_t *p, char *err, size_t errlen)
{
    const char     *auth, *auth_end, *at, *colon, *host, *host_end, *port_s,
                   *s;
    char           *user = NULL, *pass = NULL, *cred = NULL, *end;
    unsigned char  *b64 = NULL;
    size_t          cred_len, n;
    long            port;
    int             rc = -1, ipv6 = 0;

    memset(p, 0, sizeof(*p));

    if (url == NULL || *url == '\0') {
        return acme_err(err, errlen, "takes an http:// URL");
    }

    if (strncasecmp(url, "http://", 7) != 0) {
        if (strncasecmp(url, "https://", 8) == 0) {
            return acme_err(err, errlen, "the URL must start with http:// "
                            "(the connection to the proxy is plain HTTP; "
                            "TLS runs end to end with the CA through it)");
        }
        return acme_err(err, errlen, "the URL must start with http://");
    }

    auth = url + 7;
    auth_end = auth + strcspn(auth, "/?#");

    if (*auth_end != '\0' && strcmp(auth_end, "/") != 0) {
        return acme_err(err, errlen, "the URL must have no path, query or "
                        "fragment: http://[user:password@]host:port");
    }

    for (s = auth; s < auth_end; s++) {
        if ((unsigned char) *s <= ' ' || (unsigned char) *s >= 0x7f
            || *s == '\\')
        {
            return acme_err(err, errlen, "the URL has a bad character");
        }
    }

    /* the last '@' ends the user info (a password may hold an '@' only
     * percent-encoded, but be lenient) */
    at = NULL;
    for (s = auth; s < auth_end; s++) {
        if (*s == '@') {
            at = s;
        }
    }

    host = at ? at + 1 : auth;

    if (at != NULL) {
        colon = memchr(auth, ':', (size_t) (at - auth));
        if (colon == auth || at == auth) {
            return acme_err(err, errlen, "the URL's user info has no user "
                            "name");
        }
        user = pct_decode(auth, (size_t) ((colon ? colon : at) - auth));
        pass = colon ? pct_decode(colon + 1, (size_t) (at - colon - 1))
                     : acme_strdup("");
        if (user == NULL || pass == NULL) {
            acme_err(err, errlen, "the URL's user info is badly encoded");
            goto done;
        }
        if (strchr(user, ':') != NULL) {
            acme_err(err, errlen, "the URL's user name has a ':'");
            goto done;
        }
    }

    port_s = NULL;

    if (*host == '[') {
        host++;
        host_end = memchr(host, ']', (size_t) (auth_end - host));
        if (host_end == NULL || host_end == host) {
            acme_err(err, errlen, "the URL has a bad IPv6 literal");
            goto done;
        }
        for (s = host; s < host_end; s++) {
            if (!isxdigit((unsigned char) *s) && *s != ':' && *s != '.') {
                acme_err(err, errlen, "the URL has a bad IPv6 literal");
                goto done;
            }
        }
        ipv6 = 1;
        if (host_end + 1 < auth_end && host_end[1] == ':') {
            port_s = host_end + 2;
        } else if (host_end + 1 != auth_end) {
            acme_err(err, errlen, "the URL has a bad host");
            goto done;
        }

    } else {
        host_end = memchr(host, ':', (size_t) (auth_end - host));
        if (host_end != NULL) {
            port_s = host_end + 1;
        } else {
            host_end = auth_end;
        }
        for (s = host; s < host_end; s++) {
            if (!isalnum((unsigned char) *s) && *s != '.' && *s != '-'
                && *s != '_')
            {
                acme_err(err, errlen, "the URL has a bad host");
                goto done;
            }
        }
    }

    if (host_end == host) {
        acme_err(err, errlen, "the URL has no host");
        goto done;
    }

    if (port_s == NULL || port_s == auth_end) {
        acme_err(err, errlen, "the URL has no port: "
                 "http://[user:password@]host:port");
        goto done;
    }
    if (!isdigit((unsigned char) *port_s)) {
        acme_err(err, errlen, "the URL has a bad port");
        goto done;
    }
    errno = 0;
    port = strtol(port_s, &end, 10);
    if (end != auth_end || errno != 0 || port < 1 || port > 65535) {
        acme_err(err, errlen, "the URL has a bad port");
        goto done;
    }

    p->host = acme_strndup(host, (size_t) (host_end - host));
    p->port = (int) port;
    p->name = acme_sprintf(ipv6 ? "[%s]:%d" : "%s:%d",
                           p->host ? p->host : "", p->port);
    if (p->host == NULL || p->name == NULL) {
        acme_err(err, errlen, "out of memory");
        goto done;
    }

    if (user != NULL) {
        cred = acme_sprintf("%s:%s", user, pass);
        if (cred == NULL) {
            acme_err(err, errlen, "out of memory");
            goto done;
        }
        cred_len = strlen(cred);
        n = 4 * ((cred_len + 2) / 3) + 1;
        b64 = malloc(n);
        if (b64 == NULL) {
            acme_err(err, errlen, "out of memory");
            goto done;
        }
        EVP_EncodeBlock(b64, (const unsigned char *) cred, (int) cred_len);
        p->auth = acme_sprintf("Basic %s", (char *) b64);
        if (p->auth == NULL) {
            acme_err(err, errlen, "out of memory");
            goto done;
        }
    }

    rc = 0;

done:

    if (user != NULL) {
        OPENSSL_cleanse(user, strlen(user));
        free(user);
    }
    if (pass != NULL) {
        OPENSSL_cleanse(pass, strlen(pass));
        free(pass);
    }
    if (cred != NULL) {
        OPENSSL_cleanse(cred, strlen(cred));
        free(cred);
    }
    if (b64 != NULL) {
        OPENSSL_cleanse(b64, strlen((char *) b64));
        free(b64);
    }
    if (rc != 0) {
        acme_proxy_free(p);
    }
    return rc;
}


void
acme_proxy_free(acme_proxy_t *p)
{
    if (p == NULL) {
        return;
    }
    if (p->auth != NULL) {
        OPENSSL_cleanse(p->auth, strlen(p->auth));
        free(p->auth);
    }
    free(p->host);
    free(p->name);
    memset(p, 0, sizeof(*p));
}


int
acme_proxy_check(const char *value, char *err, size_t errlen)
{
    acme_proxy_t  p;

    if (value != NULL && strcmp(value, "off") == 0) {
        return 1;
    }
    if (acme_proxy_parse(value, &p, err, errlen) != 0) {
        return -1;
    }
    acme_proxy_free(&p);
    return 0;
}


/* A header value may carry no control character (no header injection). */
static int
value_ok(const char *v)
{
    for (; *v; v++) {
        if ((unsigned char) *v < 0x20 || *v == 0x7f) {
            return 0;
        }
    }
    return 1;
}


char *
acme_proxy_connect_request(const acme_proxy_t *p, const char *host,
    int port, const char *user_agent, size_t *len)
{
    char        *out;
    const char  *lb, *rb;

    if (p == NULL || host == NULL || !value_ok(host)) {
        return NULL;
    }
    if (user_agent == NULL || *user_agent == '\0' || !value_ok(user_agent)) {
        user_agent = ACME_USER_AGENT_DEFAULT;
    }

    lb = strchr(host, ':') ? "[" : "";
    rb = *lb ? "]" : "";

    out = acme_sprintf("CONNECT %s%s%s:%d HTTP/1.1\r\n"
                       "Host: %s%s%s:%d\r\n"
                       "User-Agent: %s\r\n"
                       "%s%s%s"
                       "\r\n",
                       lb, host, rb, port, lb, host, rb, port, user_agent,
                       p->auth ? "Proxy-Authorization: " : "",
                       p->auth ? p->auth : "", p->auth ? "\r\n" : "");
    if (out != NULL && len != NULL) {
        *len = strlen(out);
    }
    return out;
}


void
acme_proxy_reply_init(acme_proxy_reply_t *r)
{
    memset(r, 0, sizeof(*r));
}


/* The target as the messages name it. */
static void
target_text(char *buf, size_t size, const char *host, int port)
{
    snprintf(buf, size, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}


static int
reply_failed(acme_proxy_reply_t *r, const acme_proxy_t *p, const char *host,
    int port, const char *what)
{
    char  target[300];

    target_text(target, sizeof(target), host, port);
    (void) acme_err(r->error, sizeof(r->error), "proxy %s, CONNECT to %s: %s",
             p->name, target, what);
    return ACME_HTTP_ERROR;
}


int
acme_proxy_reply_feed(acme_proxy_reply_t *r, const acme_proxy_t *p,
    const char *host, int port, const char *data, size_t len)
{
    char        *end, *eol, *s, target[300];
    const char  *hint;
    size_t       head_len, i, n;

    if (r->status != 0 || r->error[0] != '\0') {
        return r->error[0] ? ACME_HTTP_ERROR
                           : reply_failed(r, p, host, port,
                                          "data after the proxy's reply");
    }

    n = sizeof(r->head) - 1 - r->len;
    if (len > n) {
        return reply_failed(r, p, host, port, "the proxy's reply is too "
                            "long");
    }
    memcpy(r->head + r->len, data, len);
    r->len += len;
    r->head[r->len] = '\0';

    if (memchr(r->head, '\0', r->len) != NULL) {
        return reply_failed(r, p, host, port, "invalid reply from the proxy");
    }

    n = r->len < 7 ? r->len : 7;
    if (strncmp(r->head, "HTTP/1.", n) != 0) {
        return reply_failed(r, p, host, port, "the proxy's reply is not "
                            "HTTP");
    }

    end = strstr(r->head, "\r\n\r\n");
    head_len = end ? (size_t) (end - r->head) + 4 : 0;
    if (end == NULL) {
        /* a bare LF ends lines for lenient proxies */
        end = strstr(r->head, "\n\n");
        head_len = end ? (size_t) (end - r->head) + 2 : 0;
    }

    if (end == NULL) {
        return ACME_HTTP_AGAIN;
    }

    /* the status line, kept printable for messages */
    eol = strchr(r->head, '\n');
    n = (size_t) (eol - r->head);
    if (n > 0 && r->head[n - 1] == '\r') {
        n--;
    }
    for (i = 0; i < n && i < sizeof(r->line) - 1; i++) {
        r->line[i] = isprint((unsigned char) r->head[i]) ? r->head[i] : '?';
    }
    r->line[i] = '\0';

    s = r->head;
    if (strncmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char) s[7])
        || s[8] != ' ' || !isdigit((unsigned char) s[9])
        || !isdigit((unsigned char) s[10]) || !isdigit((unsigned char) s[11])
        || (s[12] != ' ' && s[12] != '\r' && s[12] != '\n'))
    {
        target_text(target, sizeof(target), host, port);
        (void) acme_err(r->error, sizeof(r->error), "proxy %s, CONNECT to %s: "
                 "invalid reply \"%s\"", p->name, target, r->line);
        return ACME_HTTP_ERROR;
    }

    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');

    if (r->status < 200 || r->status > 299) {
        /* tinyproxy answers wrong credentials with 401 */
        hint = r->status == 407 || (r->status == 401 && p->auth)
               ? (p->auth ? " (the proxy refused the credentials of the "
                            "proxy URL)"
                          : " (the proxy wants credentials: "
                            "http://user:password@host:port)")
               : "";
        target_text(target, sizeof(target), host, port);
        (void) acme_err(r->error, sizeof(r->error), "proxy %s refused CONNECT to "
                 "%s: \"%s\"%s", p->name, target, r->line, hint);
        return ACME_HTTP_ERROR;
    }

    if (head_len != r->len) {
        target_text(target, sizeof(target), host, port);
        (void) acme_err(r->error, sizeof(r->error), "proxy %s, CONNECT to %s: "
                 "data after the proxy's reply", p->name, target);
        return ACME_HTTP_ERROR;
    }

    return ACME_HTTP_DONE;
}


int
acme_proxy_reply_eof(acme_proxy_reply_t *r, const acme_proxy_t *p,
    const char *host, int port)
{
    if (r->error[0] != '\0') {
        return ACME_HTTP_ERROR;
    }
    return reply_failed(r, p, host, port, r->len
                        ? "the proxy closed the connection in its reply"
                        : "the proxy closed the connection without a reply");
}


const char *
acme_proxy_reply_error(const acme_proxy_reply_t *r)
{
    return r->error;
}
