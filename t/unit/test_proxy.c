/* The outbound CONNECT proxy (common/core/acme_proxy.h): its URL, the
 * CONNECT request, the proxy's reply. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "acme_http.h"
#include "acme_proxy.h"

UNIT_TEST(proxy_parse_plain)
{
    acme_proxy_t  p;
    char          err[512];

    CHECK_INT(acme_proxy_parse("http://127.0.0.1:3128", &p, err,
                               sizeof(err)), 0);
    CHECK_STR(p.host, "127.0.0.1");
    CHECK_INT(p.port, 3128);
    CHECK_STR(p.name, "127.0.0.1:3128");
    CHECK(p.auth == NULL);
    acme_proxy_free(&p);

    CHECK_INT(acme_proxy_parse("HTTP://proxy.example-1.test:8080/", &p, err,
                               sizeof(err)), 0);
    CHECK_STR(p.host, "proxy.example-1.test");
    CHECK_INT(p.port, 8080);
    acme_proxy_free(&p);

    CHECK_INT(acme_proxy_parse("http://[::1]:3128", &p, err, sizeof(err)), 0);
    CHECK_STR(p.host, "::1");
    CHECK_STR(p.name, "[::1]:3128");
    acme_proxy_free(&p);
}

UNIT_TEST(proxy_parse_credentials)
{
    acme_proxy_t  p;
    char          err[512];

    /* "user:pass" -> dXNlcjpwYXNz */
    CHECK_INT(acme_proxy_parse("http://user:pass@127.0.0.1:3128", &p, err,
                               sizeof(err)), 0);
    CHECK_STR(p.auth, "Basic dXNlcjpwYXNz");
    CHECK_STR(p.name, "127.0.0.1:3128");
    acme_proxy_free(&p);

    /* percent-encoded: "u@x:p:w" -> dUB4OnA6dw== */
    CHECK_INT(acme_proxy_parse("http://u%40x:p%3aw@h:1", &p, err,
                               sizeof(err)), 0);
    CHECK_STR(p.auth, "Basic dUB4OnA6dw==");
    acme_proxy_free(&p);

    /* a user without password: "u:" -> dTo= */
    CHECK_INT(acme_proxy_parse("http://u@h:1", &p, err, sizeof(err)), 0);
    CHECK_STR(p.auth, "Basic dTo=");
    acme_proxy_free(&p);
}

UNIT_TEST(proxy_parse_errors)
{
    static const char *const bad[] = {
        "", "127.0.0.1:3128", "https://127.0.0.1:3128", "socks5://h:1",
        "http://127.0.0.1", "http://127.0.0.1:", "http://127.0.0.1:0",
        "http://127.0.0.1:65536", "http://127.0.0.1:12x", "http://:3128",
        "http://h:1/path", "http://h:1?x", "http://[::1", "http://[]:1",
        "http://[::1]3128", "http://h h:1", "http://:secret@h:1",
        "http://u:%zz@h:1", "http://u:%00@h:1", "http://h/x:1",
    };
    acme_proxy_t  p;
    char          err[512];
    size_t        i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (acme_proxy_parse(bad[i], &p, err, sizeof(err)) != -1) {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
            CHECK(0);
        }
        CHECK(err[0] != '\0');
        CHECK(p.host == NULL && p.auth == NULL && p.name == NULL);
    }

    /* the message never repeats the URL (it may hold a password) */
    CHECK_INT(acme_proxy_parse("http://user:s3cret@h", &p, err, sizeof(err)),
              -1);
    CHECK(strstr(err, "s3cret") == NULL);
    CHECK(strstr(err, "no port") != NULL);
    CHECK_INT(acme_proxy_parse("https://user:s3cret@h:1", &p, err,
                               sizeof(err)), -1);
    CHECK(strstr(err, "s3cret") == NULL);
    CHECK(strstr(err, "http://") != NULL);
}

UNIT_TEST(proxy_check)
{
    char  err[512];

    CHECK_INT(acme_proxy_check("off", err, sizeof(err)), 1);
    CHECK_INT(acme_proxy_check("http://u:p@h:1", err, sizeof(err)), 0);
    CHECK_INT(acme_proxy_check("h:1", err, sizeof(err)), -1);
    CHECK_STR(err, "the URL must start with http://");
}

UNIT_TEST(proxy_connect_request)
{
    acme_proxy_t  p;
    char          err[512], *r;
    size_t        len;

    CHECK_INT(acme_proxy_parse("http://127.0.0.1:3128", &p, err,
                               sizeof(err)), 0);
    r = acme_proxy_connect_request(&p, "ca.test", 14000, "ua/1", &len);
    CHECK_STR(r, "CONNECT ca.test:14000 HTTP/1.1\r\nHost: ca.test:14000\r\n"
                 "User-Agent: ua/1\r\n\r\n");
    CHECK_INT(len, strlen(r));
    free(r);

    r = acme_proxy_connect_request(&p, "::1", 443, NULL, &len);
    CHECK(r != NULL && strncmp(r, "CONNECT [::1]:443 HTTP/1.1\r\n"
                               "Host: [::1]:443\r\nUser-Agent: ", 50) == 0);
    free(r);

    /* no header injection through the target */
    CHECK(acme_proxy_connect_request(&p, "a\r\nX: y", 1, NULL, &len) == NULL);
    acme_proxy_free(&p);

    CHECK_INT(acme_proxy_parse("http://user:pass@127.0.0.1:3128", &p, err,
                               sizeof(err)), 0);
    r = acme_proxy_connect_request(&p, "ca.test", 443, "ua/1", &len);
    CHECK_STR(r, "CONNECT ca.test:443 HTTP/1.1\r\nHost: ca.test:443\r\n"
                 "User-Agent: ua/1\r\n"
                 "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
    free(r);
    acme_proxy_free(&p);
}

static const char *
feed_all(acme_proxy_t *p, const char *reply, size_t step, int *rc)
{
    static acme_proxy_reply_t  r;
    size_t                     i, n, len = strlen(reply);

    acme_proxy_reply_init(&r);
    *rc = ACME_HTTP_AGAIN;
    /* step 0: all at once, then the end of the stream */
    for (i = 0; i < len && *rc == ACME_HTTP_AGAIN; i += n) {
        n = step == 0 || len - i < step ? len - i : step;
        *rc = acme_proxy_reply_feed(&r, p, "ca.test", 14000, reply + i, n);
    }
    if (*rc == ACME_HTTP_AGAIN && step == 0) {
        *rc = acme_proxy_reply_eof(&r, p, "ca.test", 14000);
    }
    return acme_proxy_reply_error(&r);
}

UNIT_TEST(proxy_reply)
{
    acme_proxy_t         p;
    acme_proxy_reply_t   r;
    char                 err[512];
    const char          *e;
    int                  rc;

    CHECK_INT(acme_proxy_parse("http://user:s3cret@127.0.0.1:3128", &p, err,
                               sizeof(err)), 0);

    /* whole, byte by byte, and with headers (tinyproxy's) */
    e = feed_all(&p, "HTTP/1.1 200 Connection established\r\n\r\n", 100,
                 &rc);
    CHECK_INT(rc, ACME_HTTP_DONE);
    CHECK_STR(e, "");
    feed_all(&p, "HTTP/1.0 200 Connection established\r\n"
                 "Proxy-agent: tinyproxy/1.11.1\r\n\r\n", 1, &rc);
    CHECK_INT(rc, ACME_HTTP_DONE);
    feed_all(&p, "HTTP/1.1 200 OK\n\n", 3, &rc);
    CHECK_INT(rc, ACME_HTTP_DONE);

    /* a refusal names the proxy, the target and the status line, never
     * the credentials */
    e = feed_all(&p, "HTTP/1.0 403 Access violation\r\nServer: tinyproxy\r\n"
                     "Content-Length: 10\r\n\r\n0123456789", 7, &rc);
    CHECK_INT(rc, ACME_HTTP_ERROR);
    CHECK_STR(e, "proxy 127.0.0.1:3128 refused CONNECT to ca.test:14000: "
                 "\"HTTP/1.0 403 Access violation\"");
    e = feed_all(&p, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                 100, &rc);
    CHECK_INT(rc, ACME_HTTP_ERROR);
    CHECK(strstr(e, "\"HTTP/1.1 407 Proxy Authentication Required\"")
          != NULL);
    CHECK(strstr(e, "credentials") != NULL);
    CHECK(strstr(e, "s3cret") == NULL && strstr(e, "user") == NULL);

    e = feed_all(&p, "HTTP/1.0 401 Unauthorized\r\n\r\n", 100, &rc);
    CHECK_INT(rc, ACME_HTTP_ERROR);
    CHECK_STR(e, "proxy 127.0.0.1:3128 refused CONNECT to ca.test:14000: "
                 "\"HTTP/1.0 401 Unauthorized\" (the proxy refused the "
                 "credentials of the proxy URL)");

    /* not HTTP, too long, closed early, data after the reply */
    e = feed_all(&p, "SSH-2.0-OpenSSH_9.2p1 Debian\r\n\r\n", 100, &rc);
    CHECK_INT(rc, ACME_HTTP_ERROR);
    CHECK(strstr(e, "not HTTP") != NULL);
    e = feed_all(&p, "HTTP/1.1 2000 OK\r\n\r\n", 100, &rc);
    CHECK_INT(rc, ACME_HTTP_ERROR);
    CHECK(strstr(e, "invalid reply \"HTTP/1.1 2000 OK\"") != NULL);
    e = feed_all(&p, "HTTP/1.1 200 OK\r\n", 0, &rc);
    CHECK_INT(rc, ACME_HTTP_ERROR);
    CHECK_STR(e, "proxy 127.0.0.1:3128, CONNECT to ca.test:14000: the proxy "
                 "closed the connection in its reply");
    e = feed_all(&p, "HTTP/1.1 200 OK\r\n\r\n\x16\x03", 100, &rc);
    CHECK_INT(rc, ACME_HTTP_ERROR);
    CHECK(strstr(e, "data after") != NULL);

    acme_proxy_reply_init(&r);
    CHECK_INT(acme_proxy_reply_eof(&r, &p, "::1", 443), ACME_HTTP_ERROR);
    CHECK_STR(acme_proxy_reply_error(&r), "proxy 127.0.0.1:3128, CONNECT to "
              "[::1]:443: the proxy closed the connection without a reply");

    acme_proxy_reply_init(&r);
    memset(err, 'a', sizeof(err));
    rc = ACME_HTTP_AGAIN;
    while (rc == ACME_HTTP_AGAIN) {
        rc = acme_proxy_reply_feed(&r, &p, "ca.test", 1, "HTTP/1.1 200 OK\r\n"
                                   "X: y\r\n", 23);
    }
    CHECK_INT(rc, ACME_HTTP_ERROR);
    CHECK(strstr(acme_proxy_reply_error(&r), "too long") != NULL);

    acme_proxy_free(&p);
}
