/*
 * The outbound proxy (acme_proxy.h): its URL as configured and its reply
 * to CONNECT as the transports feed it.  Input: one control byte, then the
 * text.  Control byte bit 7 set: the text is a proxy URL
 * (acme_proxy_parse, then the CONNECT request); else the text is the
 * proxy's reply fed in pieces of (low 6 bits + 1) bytes (63: all at once)
 * to a proxy with credentials.  Properties: a parsed proxy's name and a
 * reply's error never hold the password; the CONNECT request is one
 * head ending in an empty line; DONE is a 2xx ending with what was fed;
 * the status line kept is printable (bytes after a 2xx head, fed with it,
 * are an error: the CA speaks after the client).
 */
#define _GNU_SOURCE 1
#include <ctype.h>
#include <stdio.h>

#include "acme_http.h"
#include "acme_proxy.h"
#include "fuzz.h"

#define SECRET  "Fz-s3cret"

static void
check_url(const char *url)
{
    acme_proxy_t   p;
    char           err[512], *req;
    size_t         len;

    if (acme_proxy_parse(url, &p, err, sizeof(err)) != 0) {
        if (p.host != NULL || p.auth != NULL || p.name != NULL) {
            abort();
        }
        return;
    }
    if (p.host == NULL || p.name == NULL || p.port < 1 || p.port > 65535
        || strchr(p.name, '@') != NULL)
    {
        abort();
    }
    req = acme_proxy_connect_request(&p, "ca.test", 443, NULL, &len);
    if (req != NULL) {
        if (len != strlen(req) || len < 4
            || strcmp(req + len - 4, "\r\n\r\n") != 0
            || strstr(req, "\r\n\r\n") != req + len - 4)
        {
            abort();
        }
        free(req);
    }
    acme_proxy_free(&p);
}

static void
check_reply(const char *data, size_t size, size_t piece)
{
    static acme_proxy_reply_t  r;
    acme_proxy_t               p;
    char                       err[512];
    size_t                     off, n, i;
    int                        rc = ACME_HTTP_AGAIN;

    if (acme_proxy_parse("http://acme:" SECRET "@127.0.0.1:3128", &p, err,
                         sizeof(err)) != 0)
    {
        abort();
    }
    acme_proxy_reply_init(&r);
    for (off = 0; off < size && rc == ACME_HTTP_AGAIN; off += n) {
        n = size - off < piece ? size - off : piece;
        rc = acme_proxy_reply_feed(&r, &p, "ca.test", 443, data + off, n);
    }
    if (rc == ACME_HTTP_AGAIN) {
        rc = acme_proxy_reply_eof(&r, &p, "ca.test", 443);
    }
    if (rc == ACME_HTTP_DONE
        && (r.status < 200 || r.status > 299 || r.len != off))
    {
        abort();
    }
    /* the secret only where the proxy itself echoes it */
    if (rc == ACME_HTTP_ERROR
        && (acme_proxy_reply_error(&r)[0] == '\0'
            || (strstr(acme_proxy_reply_error(&r), SECRET) != NULL
                && memmem(data, size, SECRET, sizeof(SECRET) - 1) == NULL)))
    {
        abort();
    }
    for (i = 0; r.line[i] != '\0'; i++) {
        if (!isprint((unsigned char) r.line[i])) {
            abort();
        }
    }
    acme_proxy_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char    *text;
    size_t   piece;

    if (size < 1) {
        return 0;
    }
    if (data[0] & 0x80) {
        text = malloc(size);
        if (text == NULL) {
            return 0;
        }
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        check_url(text);
        free(text);
        return 0;
    }
    piece = (data[0] & 0x3f) == 0x3f ? size : (size_t) (data[0] & 0x3f) + 1;
    check_reply((const char *) data + 1, size - 1, piece);
    return 0;
}
