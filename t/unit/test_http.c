/* URL parsing, request serialisation and the incremental response parser. */
#include <stdlib.h>
#include <string.h>

#include "acme_http.h"
#include "acme_util.h"
#include "unit.h"


/* Feeds a whole C string. */
static int
feed_str(acme_http_parser_t *p, const char *s)
{
    return acme_http_parser_feed(p, s, strlen(s));
}


UNIT_TEST(http_url_parse)
{
    acme_url_t  u;
    char        err[ACME_ERRLEN];

    CHECK_INT(acme_url_parse("https://127.0.0.1:14000/dir", &u, err, sizeof(err)), 0);
    CHECK_INT(u.https, 1);
    CHECK_STR(u.host, "127.0.0.1");
    CHECK_INT(u.port, 14000);
    CHECK_STR(u.host_header, "127.0.0.1:14000");
    CHECK_STR(u.path, "/dir");
    acme_url_free(&u);

    CHECK_INT(acme_url_parse("https://ca.example/", &u, err, sizeof(err)), 0);
    CHECK_INT(u.port, 443);
    CHECK_STR(u.host_header, "ca.example");
    CHECK_STR(u.path, "/");
    acme_url_free(&u);

    CHECK_INT(acme_url_parse("HTTP://ca.example", &u, err, sizeof(err)), 0);
    CHECK_INT(u.https, 0);
    CHECK_INT(u.port, 80);
    CHECK_STR(u.path, "/");
    acme_url_free(&u);

    /* an explicit default port is not repeated in Host */
    CHECK_INT(acme_url_parse("http://ca.example:80/a?b=c#frag", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host_header, "ca.example");
    CHECK_STR(u.path, "/a?b=c");
    acme_url_free(&u);

    CHECK_INT(acme_url_parse("https://ca.example?x=1", &u, err, sizeof(err)), 0);
    CHECK_STR(u.path, "/?x=1");
    acme_url_free(&u);

    CHECK_INT(acme_url_parse("https://[::1]:8443/acme/dir", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host, "::1");
    CHECK_INT(u.port, 8443);
    CHECK_STR(u.host_header, "[::1]:8443");
    CHECK_STR(u.path, "/acme/dir");
    acme_url_free(&u);

    CHECK_INT(acme_url_parse("https://[fe80::1]/", &u, err, sizeof(err)), 0);
    CHECK_STR(u.host, "fe80::1");
    CHECK_INT(u.port, 443);
    CHECK_STR(u.host_header, "[fe80::1]");
    acme_url_free(&u);

    CHECK_INT(acme_url_parse("ftp://x/", &u, err, sizeof(err)), -1);
    CHECK(strstr(err, "ftp://x/") != NULL);
    CHECK_INT(acme_url_parse("https:///dir", &u, err, sizeof(err)), -1);
    CHECK_INT(acme_url_parse("https://h:0/", &u, err, sizeof(err)), -1);
    CHECK_INT(acme_url_parse("https://h:65536/", &u, err, sizeof(err)), -1);
    CHECK_INT(acme_url_parse("https://h:/", &u, err, sizeof(err)), -1);
    CHECK_INT(acme_url_parse("https://h:12a/", &u, err, sizeof(err)), -1);
    CHECK_INT(acme_url_parse("https://[::1/", &u, err, sizeof(err)), -1);
    CHECK_INT(acme_url_parse("https://[::1]x/", &u, err, sizeof(err)), -1);
    CHECK_INT(acme_url_parse("https://user@h/", &u, err, sizeof(err)), -1);
    CHECK_INT(acme_url_parse("https://h/a b", &u, err, sizeof(err)), -1);
    CHECK_INT(acme_url_parse(NULL, &u, err, sizeof(err)), -1);
}


UNIT_TEST(http_serialize)
{
    acme_http_request_t  req;
    acme_url_t           u;
    char                *s, err[ACME_ERRLEN];
    size_t               len;

    CHECK_INT(acme_url_parse("https://ca.example:14000/new-order", &u, err, sizeof(err)), 0);

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = "https://ca.example:14000/new-order";
    req.body = "{\"a\":1}";
    req.body_len = 7;
    req.content_type = "application/jose+json";
    req.accept = "application/pem-certificate-chain";
    s = acme_http_serialize(&req, &u, "ngx_acme/0.1 nginx/1.22.1", &len);
    CHECK_STR(s,
        "POST /new-order HTTP/1.1\r\n"
        "Host: ca.example:14000\r\n"
        "User-Agent: ngx_acme/0.1 nginx/1.22.1\r\n"
        "Accept: application/pem-certificate-chain\r\n"
        "Content-Type: application/jose+json\r\n"
        "Content-Length: 7\r\n"
        "Connection: close\r\n"
        "\r\n"
        "{\"a\":1}");
    CHECK_INT(len, strlen(s));
    free(s);

    memset(&req, 0, sizeof(req));
    req.method = "HEAD";
    req.url = "https://ca.example:14000/new-order";
    s = acme_http_serialize(&req, &u, NULL, &len);
    CHECK_STR(s,
        "HEAD /new-order HTTP/1.1\r\n"
        "Host: ca.example:14000\r\n"
        "User-Agent: " ACME_USER_AGENT_DEFAULT "\r\n"
        "Connection: close\r\n"
        "\r\n");
    free(s);

    /* a User-Agent that would split the header is not sent */
    s = acme_http_serialize(&req, &u, "x/1\r\nX-Evil: 1", &len);
    CHECK(s != NULL && strstr(s, "X-Evil") == NULL);
    CHECK(s != NULL && strstr(s, "User-Agent: " ACME_USER_AGENT_DEFAULT "\r\n"));
    free(s);

    acme_url_free(&u);
}


static const char sample[] =
    "HTTP/1.1 201 Created\r\n"
    "Server: test\r\n"
    "cache-control: no-store\r\n"
    "content-type: application/json\r\n"
    "LOCATION: https://ca/order/1\r\n"
    "Replay-Nonce:   abc-DEF_1  \r\n"
    "Retry-After: 5\r\n"
    "Content-Length: 27\r\n"
    "\r\n"
    "{\"status\":\"pending\",\"x\":12}";


static void
check_sample(const acme_http_response_t *r)
{
    CHECK(r != NULL);
    if (r == NULL) {
        return;
    }
    CHECK_INT(r->status, 201);
    CHECK_STR(r->location, "https://ca/order/1");
    CHECK_STR(r->replay_nonce, "abc-DEF_1");
    CHECK_STR(r->retry_after, "5");
    CHECK_STR(r->content_type, "application/json");
    CHECK_INT(r->body_len, 27);
    CHECK_STR(r->body, "{\"status\":\"pending\",\"x\":12}");
}


UNIT_TEST(http_parser_every_split)
{
    acme_http_parser_t  *p;
    size_t               n = sizeof(sample) - 1, i, j;
    int                  rc;

    /* one split point */
    for (i = 0; i <= n; i++) {
        p = acme_http_parser_new(0);
        rc = acme_http_parser_feed(p, sample, i);
        CHECK_INT(rc, i == n ? ACME_HTTP_DONE : ACME_HTTP_AGAIN);
        rc = acme_http_parser_feed(p, sample + i, n - i);
        CHECK_INT(rc, ACME_HTTP_DONE);
        check_sample(acme_http_parser_response(p));
        acme_http_parser_free(p);
    }

    /* byte by byte */
    p = acme_http_parser_new(0);
    for (i = 0; i < n; i++) {
        rc = acme_http_parser_feed(p, sample + i, 1);
        CHECK_INT(rc, i == n - 1 ? ACME_HTTP_DONE : ACME_HTTP_AGAIN);
    }
    check_sample(acme_http_parser_response(p));
    acme_http_parser_free(p);

    /* two split points, a sparse sweep to keep the run short */
    for (i = 0; i <= n; i += 3) {
        for (j = i; j <= n; j += 5) {
            p = acme_http_parser_new(0);
            acme_http_parser_feed(p, sample, i);
            acme_http_parser_feed(p, sample + i, j - i);
            rc = acme_http_parser_feed(p, sample + j, n - j);
            CHECK_INT(rc, ACME_HTTP_DONE);
            check_sample(acme_http_parser_response(p));
            acme_http_parser_free(p);
        }
    }
}


static const char chunked[] =
    "HTTP/1.1 200 OK\n"                                 /* bare LF tolerated */
    "Transfer-Encoding: chunked\r\n"
    "Content-Type: application/pem-certificate-chain\r\n"
    "Link: <https://ca/issuer>;rel=\"up\"\r\n"
    "\r\n"
    "5;ext=1;other\r\n"
    "-----\r\n"
    "1A\r\n"
    "BEGIN CERTIFICATE-----\nAB\n\r\n"
    "0\r\n"
    "X-Trailer: 1\r\n"
    "\r\n"
    "garbage after the end is ignored";


UNIT_TEST(http_parser_chunked)
{
    acme_http_parser_t          *p;
    const acme_http_response_t  *r;
    size_t                       n = sizeof(chunked) - 1, i;
    int                          rc;

    for (i = 0; i <= n; i++) {
        p = acme_http_parser_new(0);
        acme_http_parser_feed(p, chunked, i);
        rc = acme_http_parser_feed(p, chunked + i, n - i);
        CHECK_INT(rc, ACME_HTTP_DONE);
        r = acme_http_parser_response(p);
        CHECK(r != NULL);
        if (r) {
            CHECK_INT(r->status, 200);
            CHECK_STR(r->content_type, "application/pem-certificate-chain");
            CHECK_STR(r->body, "-----BEGIN CERTIFICATE-----\nAB\n");
            CHECK_INT(r->body_len, 31);
            CHECK(r->location == NULL);
        }
        acme_http_parser_free(p);
    }

    /* bad chunk size */
    p = acme_http_parser_new(0);
    rc = feed_str(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    CHECK_INT(rc, ACME_HTTP_ERROR);
    acme_http_parser_free(p);

    /* missing CRLF after data */
    p = acme_http_parser_new(0);
    rc = feed_str(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc");
    CHECK_INT(rc, ACME_HTTP_ERROR);
    acme_http_parser_free(p);

    /* transfer-encoding wins over content-length */
    p = acme_http_parser_new(0);
    rc = feed_str(p, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n");
    CHECK_INT(rc, ACME_HTTP_DONE);
    r = acme_http_parser_response(p);
    CHECK(r && strcmp(r->body, "x") == 0);
    acme_http_parser_free(p);

    /* truncated chunked body */
    p = acme_http_parser_new(0);
    rc = feed_str(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
    CHECK_INT(rc, ACME_HTTP_AGAIN);
    CHECK_INT(acme_http_parser_eof(p), ACME_HTTP_ERROR);
    acme_http_parser_free(p);

    /* gzip cannot be decoded */
    p = acme_http_parser_new(0);
    rc = feed_str(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    CHECK_INT(rc, ACME_HTTP_ERROR);
    acme_http_parser_free(p);
    p = acme_http_parser_new(0);
    rc = feed_str(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    CHECK_INT(rc, ACME_HTTP_ERROR);
    acme_http_parser_free(p);
}


UNIT_TEST(http_parser_close_delimited)
{
    acme_http_parser_t          *p;
    const acme_http_response_t  *r;
    const char                  *s = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello ";

    p = acme_http_parser_new(0);
    CHECK_INT(feed_str(p, s), ACME_HTTP_AGAIN);
    CHECK_INT(feed_str(p, "world"), ACME_HTTP_AGAIN);
    CHECK(acme_http_parser_response(p) == NULL);
    CHECK_INT(acme_http_parser_eof(p), ACME_HTTP_DONE);
    r = acme_http_parser_response(p);
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(r->body, "hello world");
        CHECK_INT(r->body_len, 11);
    }
    acme_http_parser_free(p);

    /* eof in a Content-Length body is an error */
    p = acme_http_parser_new(0);
    s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    CHECK_INT(feed_str(p, s), ACME_HTTP_AGAIN);
    CHECK_INT(acme_http_parser_eof(p), ACME_HTTP_ERROR);
    CHECK(strstr(acme_http_parser_error(p), "closed") != NULL);
    acme_http_parser_free(p);

    /* eof before anything */
    p = acme_http_parser_new(0);
    CHECK_INT(acme_http_parser_eof(p), ACME_HTTP_ERROR);
    acme_http_parser_free(p);
}


UNIT_TEST(http_parser_no_body)
{
    acme_http_parser_t          *p;
    const acme_http_response_t  *r;
    const char                  *s;

    /* HEAD: Content-Length describes the GET body that was not sent */
    s = "HTTP/1.1 200 OK\r\nReplay-Nonce: n1\r\nContent-Length: 120\r\n\r\n";
    p = acme_http_parser_new(0);
    acme_http_parser_set_head(p);
    CHECK_INT(feed_str(p, s), ACME_HTTP_DONE);
    r = acme_http_parser_response(p);
    CHECK(r && r->body_len == 0 && r->body && r->body[0] == '\0');
    CHECK(r && strcmp(r->replay_nonce, "n1") == 0);
    acme_http_parser_free(p);

    s = "HTTP/1.1 204 No Content\r\nReplay-Nonce: n2\r\n\r\n";
    p = acme_http_parser_new(0);
    CHECK_INT(feed_str(p, s), ACME_HTTP_DONE);
    acme_http_parser_free(p);

    s = "HTTP/1.1 304 Not Modified\r\n\r\n";
    p = acme_http_parser_new(0);
    CHECK_INT(feed_str(p, s), ACME_HTTP_DONE);
    acme_http_parser_free(p);

    /* an interim 100 is skipped */
    s = "HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    p = acme_http_parser_new(0);
    CHECK_INT(feed_str(p, s), ACME_HTTP_DONE);
    r = acme_http_parser_response(p);
    CHECK(r && r->status == 200 && strcmp(r->body, "ok") == 0);
    acme_http_parser_free(p);

    /* obs-fold continues a kept header */
    s = "HTTP/1.1 200 OK\r\nLocation: https://a/\r\n  b\r\nContent-Length: 0\r\n\r\n";
    p = acme_http_parser_new(0);
    CHECK_INT(feed_str(p, s), ACME_HTTP_DONE);
    r = acme_http_parser_response(p);
    CHECK(r && strcmp(r->location, "https://a/ b") == 0);
    acme_http_parser_free(p);
}


UNIT_TEST(http_parser_limits)
{
    acme_http_parser_t  *p;
    const char          *s;
    char                *big;
    size_t               i;
    int                  rc = ACME_HTTP_AGAIN;

    /* Content-Length over max_body is refused before reading the body */
    s = "HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n";
    p = acme_http_parser_new(100);
    CHECK_INT(feed_str(p, s), ACME_HTTP_ERROR);
    CHECK(strstr(acme_http_parser_error(p), "too large") != NULL);
    acme_http_parser_free(p);

    s = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    p = acme_http_parser_new(100);
    CHECK_INT(feed_str(p, s), ACME_HTTP_AGAIN);
    big = malloc(100);
    memset(big, 'x', 100);
    CHECK_INT(acme_http_parser_feed(p, big, 100), ACME_HTTP_DONE);
    acme_http_parser_free(p);

    /* close-delimited over max_body */
    s = "HTTP/1.1 200 OK\r\n\r\n";
    p = acme_http_parser_new(100);
    CHECK_INT(feed_str(p, s), ACME_HTTP_AGAIN);
    CHECK_INT(acme_http_parser_feed(p, big, 60), ACME_HTTP_AGAIN);
    CHECK_INT(acme_http_parser_feed(p, big, 60), ACME_HTTP_ERROR);
    acme_http_parser_free(p);

    /* chunked over max_body */
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n";
    p = acme_http_parser_new(100);
    CHECK_INT(feed_str(p, s), ACME_HTTP_AGAIN);
    CHECK_INT(acme_http_parser_feed(p, big, 64), ACME_HTTP_AGAIN);
    CHECK_INT(feed_str(p, "\r\n40\r\n"), ACME_HTTP_ERROR);
    acme_http_parser_free(p);
    free(big);

    /* headers over 64 KiB, fed in pieces */
    p = acme_http_parser_new(0);
    s = "HTTP/1.1 200 OK\r\n";
    feed_str(p, s);
    s = "X-Filler: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n";
    for (i = 0; i < 2000 && rc == ACME_HTTP_AGAIN; i++) {
        rc = feed_str(p, s);
    }
    CHECK_INT(rc, ACME_HTTP_ERROR);
    CHECK(i < 2000);
    CHECK(strstr(acme_http_parser_error(p), "headers too large") != NULL);
    acme_http_parser_free(p);

    /* one endless header line */
    p = acme_http_parser_new(0);
    big = malloc(70000);
    memset(big, 'a', 70000);
    feed_str(p, "HTTP/1.1 200 OK\r\nX: ");
    CHECK_INT(acme_http_parser_feed(p, big, 70000), ACME_HTTP_ERROR);
    free(big);
    acme_http_parser_free(p);
}


UNIT_TEST(http_parser_bad)
{
    static const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 101 Switching\r\n\r\n",
        /* control characters (issue 7 item 4's response) */
        "HTTP/1.1 503 X\r\nRetry-After: \v2025-01-01T00:00:00-0:1\r\n"
            "Content-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nLocation: /a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: \x1b[31m\r\n\r\n",
        "HTTP/1.1 200 O\x7fK\r\n\r\n",
        NULL
    };
    acme_http_parser_t  *p;
    int                  i, rc;

    for (i = 0; bad[i]; i++) {
        p = acme_http_parser_new(0);
        rc = feed_str(p, bad[i]);
        if (rc != ACME_HTTP_ERROR) {
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        }
        CHECK_INT(rc, ACME_HTTP_ERROR);
        /* stays in error */
        CHECK_INT(feed_str(p, "x"), ACME_HTTP_ERROR);
        CHECK_INT(acme_http_parser_eof(p), ACME_HTTP_ERROR);
        CHECK(acme_http_parser_response(p) == NULL);
        acme_http_parser_free(p);
    }

    /* reason phrase is optional; same Content-Length twice is fine */
    p = acme_http_parser_new(0);
    rc = feed_str(p, "HTTP/1.1 200\r\nContent-Length: 1\r\n"
                               "content-length: 1\r\n\r\nx");
    CHECK_INT(rc, ACME_HTTP_DONE);
    acme_http_parser_free(p);

    /* HTAB is whitespace, not a control character to refuse */
    p = acme_http_parser_new(0);
    rc = feed_str(p, "HTTP/1.1 503 down\t\r\nRetry-After:\t30\t\r\n"
                               "Content-Length: 0\r\n\r\n");
    CHECK_INT(rc, ACME_HTTP_DONE);
    CHECK_STR(acme_http_parser_response(p)->retry_after, "30");
    acme_http_parser_free(p);
}


UNIT_TEST(http_user_agent)
{
    char         buf[160];
    const char  *p;

    /* "<module>/<version> <server> OpenSSL/<x.y.z>" */
    p = acme_http_user_agent(buf, sizeof(buf), "mod_acme_auto",
                             "Apache/2.4.62");
    CHECK(p == buf);
    CHECK(strncmp(buf, "mod_acme_auto/" ACME_VERSION " Apache/2.4.62 OpenSSL/",
                  strlen("mod_acme_auto/" ACME_VERSION " Apache/2.4.62 OpenSSL/"))
          == 0);
    p = strstr(buf, "OpenSSL/");
    CHECK(p != NULL && p[8] >= '0' && p[8] <= '9');
    CHECK(strchr(buf, '\n') == NULL && buf[strlen(buf) - 1] != ' ');

    acme_http_user_agent(buf, sizeof(buf), "ngx_acme", NULL);
    CHECK(strncmp(buf, "ngx_acme/" ACME_VERSION " OpenSSL/",
                  strlen("ngx_acme/" ACME_VERSION " OpenSSL/")) == 0);

    /* truncated, still terminated */
    acme_http_user_agent(buf, 6, "ngx_acme", "nginx/1.22.1");
    CHECK_STR(buf, "ngx_a");
}

/* Feeds one whole response; returns acme_http_parser_reusable() after DONE,
 * -1 when the response did not complete. */
static int
reusable_after(const char *wire, int eof)
{
    acme_http_parser_t  *p;
    int                  rc, r;

    p = acme_http_parser_new(ACME_HTTP_MAX_BODY);
    rc = acme_http_parser_feed(p, wire, strlen(wire));
    if (rc == ACME_HTTP_AGAIN && eof) {
        rc = acme_http_parser_eof(p);
    }
    r = rc == ACME_HTTP_DONE ? acme_http_parser_reusable(p) : -1;
    acme_http_parser_free(p);
    return r;
}

UNIT_TEST(http_keep_alive)
{
    acme_http_request_t  req;
    acme_url_t           u;
    char                *s, err[ACME_ERRLEN];
    size_t               len;

    /* the request of a kept connection says nothing about closing it */
    CHECK_INT(acme_url_parse("https://ca.example/dir", &u, err, sizeof(err)), 0);
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = "https://ca.example/dir";
    s = acme_http_serialize_conn(&req, &u, NULL, 1, &len);
    CHECK(s != NULL && strstr(s, "Connection") == NULL);
    CHECK(s != NULL && len == strlen(s) && strstr(s, "\r\n\r\n") == s + len - 4);
    free(s);
    s = acme_http_serialize_conn(&req, &u, NULL, 0, &len);
    CHECK(s != NULL && strstr(s, "\r\nConnection: close\r\n\r\n") != NULL);
    free(s);
    acme_url_free(&u);

    /* delimited HTTP/1.1 bodies leave the connection usable */
    CHECK_INT(reusable_after("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0), 1);
    CHECK_INT(reusable_after("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                             "\r\n2\r\nok\r\n0\r\n\r\n", 0), 1);
    CHECK_INT(reusable_after("HTTP/1.1 204 No Content\r\n\r\n", 0), 1);
    CHECK_INT(reusable_after("HTTP/1.1 100 Continue\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0), 1);
    CHECK_INT(reusable_after("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                             "Content-Length: 0\r\n\r\n", 0), 1);

    /* the server closes, or may: not reused */
    CHECK_INT(reusable_after("HTTP/1.1 200 OK\r\nConnection: close\r\n"
                             "Content-Length: 2\r\n\r\nok", 0), 0);
    CHECK_INT(reusable_after("HTTP/1.1 200 OK\r\nConnection: TE, Close\r\n"
                             "Content-Length: 2\r\n\r\nok", 0), 0);
    CHECK_INT(reusable_after("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 0), 0);
    CHECK_INT(reusable_after("HTTP/1.1 200 OK\r\n\r\nuntil the end", 1), 0);
    /* a byte after the response: nothing was pipelined, something is wrong */
    CHECK_INT(reusable_after("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokX", 0), 0);
}


UNIT_TEST(http_link_headers)
{
    acme_http_parser_t          *p;
    const acme_http_response_t  *r;
    char                        *out[4];
    size_t                       n, i;
    const char                  *base = "https://ca.test/cert/1";

    /* several Link headers: one value, comma-joined, as RFC 9110 5.3 */
    p = acme_http_parser_new(0);
    CHECK_INT(feed_str(p, "HTTP/1.1 200 OK\r\n"
                       "Link: <https://ca.test/cert/1/alternate/1>;rel=\"alternate\"\r\n"
                       "Content-Length: 0\r\n"
                       "link: <https://ca.test/dir>;rel=\"index\"\r\n\r\n"),
              ACME_HTTP_DONE);
    r = acme_http_parser_response(p);
    CHECK(r && r->link != NULL);
    CHECK_STR(r ? r->link : NULL,
              "<https://ca.test/cert/1/alternate/1>;rel=\"alternate\", "
              "<https://ca.test/dir>;rel=\"index\"");
    n = acme_http_links(r ? r->link : NULL, "alternate", base, out, 4);
    CHECK_INT((int) n, 1);
    if (n == 1) {
        CHECK_STR(out[0], "https://ca.test/cert/1/alternate/1");
        free(out[0]);
    }
    acme_http_parser_free(p);

    /* rel quoted or not, any case, one of several types; the first rel
     * parameter counts; other parameters skipped; relative targets
     * resolved against the base; empty list elements */
    n = acme_http_links(" , <https://x.test/a>; rel=alternate,"
                        "</cert/1/alt/2> ;title=\"a;b,c\"; REL=\"index ALTERNATE\","
                        "<alt/3>;rel=alternate;rel=up, <//y.test/b>;rel=\"alternate\","
                        "<https://x.test/no>; rel=up; rel=alternate",
                        "alternate", base, out, 4);
    CHECK_INT((int) n, 4);
    if (n == 4) {
        CHECK_STR(out[0], "https://x.test/a");
        CHECK_STR(out[1], "https://ca.test/cert/1/alt/2");
        CHECK_STR(out[2], "https://ca.test/cert/alt/3");
        CHECK_STR(out[3], "https://y.test/b");
    }
    for (i = 0; i < n; i++) {
        free(out[i]);
    }

    /* at most max */
    n = acme_http_links("<https://a/1>;rel=alternate, <https://a/2>;rel=alternate",
                        "alternate", base, out, 1);
    CHECK_INT((int) n, 1);
    for (i = 0; i < n; i++) {
        free(out[i]);
    }

    /* malformed: nothing, or what came before the first bad link-value */
    CHECK_INT((int) acme_http_links(NULL, "alternate", base, out, 4), 0);
    CHECK_INT((int) acme_http_links("", "alternate", base, out, 4), 0);
    CHECK_INT((int) acme_http_links("rel=alternate", "alternate", base, out, 4), 0);
    CHECK_INT((int) acme_http_links("<>; rel=alternate", "alternate", base, out, 4), 0);
    CHECK_INT((int) acme_http_links("<https://a/1 ;rel=alternate", "alternate", base, out, 4), 0);
    CHECK_INT((int) acme_http_links("<https://a/1>", "alternate", base, out, 4), 0);
    CHECK_INT((int) acme_http_links("<https://a/1>; rel", "alternate", base, out, 4), 0);
    CHECK_INT((int) acme_http_links("<mailto:x@y>;rel=alternate", "alternate", base, out, 4), 0);
    CHECK_INT((int) acme_http_links("<https://a/\"1>;rel=alternate", "alternate", base, out, 4), 0);
    n = acme_http_links("<https://a/1>;rel=alternate, junk, <https://a/2>;rel=alternate",
                        "alternate", base, out, 4);
    CHECK_INT((int) n, 1);
    for (i = 0; i < n; i++) {
        free(out[i]);
    }
    /* a relative target without a usable base */
    CHECK_INT((int) acme_http_links("</x>;rel=alternate", "alternate", NULL, out, 4), 0);
}
