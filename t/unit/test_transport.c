/*
 * The blocking transport against tiny servers run in a thread on
 * 127.0.0.1 (ephemeral ports).  Certificates are made here with OpenSSL.
 * Every wait is bounded: servers poll with a timeout and give up, clients
 * use short timeouts.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "unit.h"
#include "acme_transport.h"
#include "acme_util.h"

#define SERVER_WAIT_MS  3000

/* ---- certificates -------------------------------------------------------- */

typedef struct {
    EVP_PKEY   *key;
    X509       *cert;
} kc_t;

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX       ctx;
    X509_EXTENSION  *ext;
    int              ok;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return 0;
    }
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A CA (issuer == NULL) or a leaf with subjectAltName san signed by issuer. */
static kc_t
make_cert(const char *cn, const kc_t *issuer, const char *san)
{
    kc_t        kc;
    X509_NAME  *name;
    static long serial = 1;

    kc.key = EVP_EC_gen("P-256");
    kc.cert = X509_new();
    X509_set_version(kc.cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(kc.cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(kc.cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(kc.cert), 86400);
    X509_set_pubkey(kc.cert, kc.key);

    name = X509_get_subject_name(kc.cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *) cn, -1, -1, 0);
    X509_set_issuer_name(kc.cert, issuer ? X509_get_subject_name(issuer->cert)
                                         : name);

    if (issuer == NULL) {
        add_ext(kc.cert, kc.cert, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(kc.cert, kc.cert, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(kc.cert, kc.cert, NID_subject_key_identifier, "hash");
        X509_sign(kc.cert, kc.key, EVP_sha256());
    } else {
        add_ext(kc.cert, issuer->cert, NID_basic_constraints, "CA:FALSE");
        add_ext(kc.cert, issuer->cert, NID_ext_key_usage, "serverAuth");
        add_ext(kc.cert, issuer->cert, NID_subject_alt_name, san);
        X509_sign(kc.cert, issuer->key, EVP_sha256());
    }
    return kc;
}

static void
kc_free(kc_t *kc)
{
    EVP_PKEY_free(kc->key);
    X509_free(kc->cert);
}

/* Writes cert as PEM to a temporary file; returns its malloc'd path. */
static char *
write_ca_file(X509 *cert)
{
    char *path = acme_strdup("/tmp/acme-transport-ca-XXXXXX");
    int   fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");

    PEM_write_X509(f, cert);
    fclose(f);
    return path;
}

/* ---- the server thread --------------------------------------------------- */

typedef struct {
    int          lfd;
    int          port;
    SSL_CTX     *ctx;           /* NULL: plain HTTP */
    const char  *response;      /* sent after the whole request was read */
    size_t       response_len;
    int          silent;        /* read the request, never answer */
    pthread_t    tid;
    /* results */
    char         request[4096];
    size_t       request_len;
    char         sni[256];
    /* a proxy in front (set before the thread runs): the CONNECT request
     * is read into connect and answered with proxy_reply; a 200 goes on
     * as the server itself on the same connection */
    const char  *proxy_reply;
    char         connect[1024];
    size_t       connect_len;
} server_t;

static int
wait_readable(int fd)
{
    struct pollfd pfd = { fd, POLLIN, 0 };

    return poll(&pfd, 1, SERVER_WAIT_MS) == 1;
}

/* Complete: headers and as many body bytes as Content-Length says. */
static int
request_complete(const char *buf, size_t len)
{
    const char  *end, *cl;
    size_t       hlen;

    end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL) {
        return 0;
    }
    hlen = (size_t) (end - buf) + 4;
    cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl == NULL || cl > end) {
        return 1;
    }
    return len >= hlen + strtoul(cl + 17, NULL, 10);
}

static void *
server_main(void *arg)
{
    server_t        *s = arg;
    struct timeval   tv = { SERVER_WAIT_MS / 1000, 0 };
    SSL             *ssl = NULL;
    const char      *sni;
    char             tmp[64];
    int              fd, n;

    if (!wait_readable(s->lfd)) {
        return NULL;
    }
    fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) {
        return NULL;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    if (s->proxy_reply != NULL) {
        while (memmem(s->connect, s->connect_len, "\r\n\r\n", 4) == NULL) {
            n = (int) read(fd, s->connect + s->connect_len,
                           sizeof(s->connect) - 1 - s->connect_len);
            if (n <= 0) {
                goto done;
            }
            s->connect_len += (size_t) n;
            s->connect[s->connect_len] = '\0';
        }
        n = (int) write(fd, s->proxy_reply, strlen(s->proxy_reply));
        if (strncmp(s->proxy_reply, "HTTP/1.1 200 ", 13) != 0) {
            goto done;
        }
    }

    if (s->ctx != NULL) {
        ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) {
            goto done;
        }
        sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        snprintf(s->sni, sizeof(s->sni), "%s", sni ? sni : "");
    }

    while (!request_complete(s->request, s->request_len)
           && s->request_len < sizeof(s->request) - 1)
    {
        n = ssl ? SSL_read(ssl, s->request + s->request_len,
                           (int) (sizeof(s->request) - 1 - s->request_len))
                : (int) read(fd, s->request + s->request_len,
                             sizeof(s->request) - 1 - s->request_len);
        if (n <= 0) {
            goto done;
        }
        s->request_len += (size_t) n;
        s->request[s->request_len] = '\0';
    }

    if (s->silent) {
        /* hold the connection until the client gives up */
        while ((ssl ? SSL_read(ssl, tmp, sizeof(tmp))
                    : (int) read(fd, tmp, sizeof(tmp))) > 0)
        {
            /* discard */
        }
        goto done;
    }

    if (ssl) {
        SSL_write(ssl, s->response, (int) s->response_len);
        SSL_shutdown(ssl);
    } else {
        n = (int) write(fd, s->response, s->response_len);
        (void) n;
    }

done:

    SSL_free(ssl);
    close(fd);
    return NULL;
}

/* A listening socket on 127.0.0.1, an ephemeral port; -1 on failure. */
static int
listen_loopback(int *port)
{
    struct sockaddr_in  sin;
    socklen_t           sl = sizeof(sin);
    int                 fd;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0
        || listen(fd, 4) != 0
        || getsockname(fd, (struct sockaddr *) &sin, &sl) != 0)
    {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Listens on 127.0.0.1:0; the thread is started only when run is set (a
 * listener nobody accepts on lets connects succeed and then hang). */
static int
server_start(server_t *s, SSL_CTX *ctx, const char *response, int silent,
    int run)
{
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    s->response = response;
    s->response_len = response ? strlen(response) : 0;
    s->silent = silent;

    s->lfd = listen_loopback(&s->port);
    if (s->lfd < 0) {
        return -1;
    }

    if (run && pthread_create(&s->tid, NULL, server_main, s) != 0) {
        return -1;
    }
    return 0;
}

static void
server_stop(server_t *s, int run)
{
    if (run) {
        pthread_join(s->tid, NULL);
    }
    close(s->lfd);
}

static SSL_CTX *
server_ctx(const kc_t *leaf, const kc_t *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    SSL_CTX_use_certificate(ctx, leaf->cert);
    SSL_CTX_use_PrivateKey(ctx, leaf->key);
    X509_up_ref(ca->cert);
    SSL_CTX_add0_chain_cert(ctx, ca->cert);
    return ctx;
}

/* ---- fixture ------------------------------------------------------------- */

typedef struct {
    kc_t     ca, other_ca, leaf, wrong_leaf;
    char    *ca_file, *other_ca_file;
} pki_t;

static pki_t pki;
static int   pki_ready;

static void
pki_init(void)
{
    if (pki_ready) {
        return;
    }
    signal(SIGPIPE, SIG_IGN);       /* for the server threads' writes */
    pki.ca = make_cert("Test CA", NULL, NULL);
    pki.other_ca = make_cert("Other CA", NULL, NULL);
    pki.leaf = make_cert("localhost", &pki.ca, "DNS:localhost,IP:127.0.0.1");
    pki.wrong_leaf = make_cert("other.test", &pki.ca, "DNS:other.test");
    pki.ca_file = write_ca_file(pki.ca.cert);
    pki.other_ca_file = write_ca_file(pki.other_ca.cert);
    pki_ready = 1;
}

/* Tidy up once the program ends; files in /tmp must not pile up. */
__attribute__((destructor)) static void
pki_cleanup(void)
{
    if (!pki_ready) {
        return;
    }
    unlink(pki.ca_file);
    unlink(pki.other_ca_file);
    free(pki.ca_file);
    free(pki.other_ca_file);
    kc_free(&pki.ca);
    kc_free(&pki.other_ca);
    kc_free(&pki.leaf);
    kc_free(&pki.wrong_leaf);
}

static const char good_response[] =
    "HTTP/1.1 201 Created\r\n"
    "Location: https://127.0.0.1/acme/acct/1\r\n"
    "Replay-Nonce: nonce-1\r\n"
    "Retry-After: 30\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 11\r\n"
    "\r\n"
    "{\"ok\":true}";

static acme_transport_opts_t
opts_for(const char *ca_file)
{
    acme_transport_opts_t o;

    memset(&o, 0, sizeof(o));
    o.ca_file = ca_file;
    o.verify = 1;
    o.connect_timeout_ms = 2000;
    o.io_timeout_ms = 2000;
    o.total_timeout_ms = 4000;
    return o;
}

/* ---- tests --------------------------------------------------------------- */

UNIT_TEST(transport_tls_good_exchange_ip)
{
    server_t                     s;
    SSL_CTX                     *ctx;
    acme_transport_opts_t        o;
    acme_http_request_t          req;
    acme_http_parser_t          *p;
    const acme_http_response_t  *r;
    char                         url[128], err[ACME_ERRLEN];

    pki_init();
    ctx = server_ctx(&pki.leaf, &pki.ca);
    CHECK_INT(server_start(&s, ctx, good_response, 0, 1), 0);

    snprintf(url, sizeof(url), "https://127.0.0.1:%d/acme/new-acct", s.port);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.body = "{\"x\":1}";
    req.body_len = 7;
    req.content_type = "application/jose+json";

    o = opts_for(pki.ca_file);
    err[0] = '\0';
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p != NULL);
    if (p == NULL) {
        fprintf(stderr, "  error: %s\n", err);
    }
    server_stop(&s, 1);

    if (p != NULL) {
        r = acme_http_parser_response(p);
        CHECK_INT(r->status, 201);
        CHECK_STR(r->location, "https://127.0.0.1/acme/acct/1");
        CHECK_STR(r->replay_nonce, "nonce-1");
        CHECK_STR(r->retry_after, "30");
        CHECK_STR(r->body, "{\"ok\":true}");
        CHECK_INT(r->body_len, 11);
        acme_http_parser_free(p);
    }

    /* what the server saw: the request, and no SNI for an IP literal */
    CHECK(strncmp(s.request, "POST /acme/new-acct HTTP/1.1\r\n", 30) == 0);
    CHECK(strstr(s.request, "\r\n\r\n{\"x\":1}") != NULL);
    CHECK_STR(s.sni, "");

    SSL_CTX_free(ctx);
}

UNIT_TEST(transport_tls_good_exchange_name_sni)
{
    server_t                 s;
    SSL_CTX                 *ctx;
    acme_transport_opts_t    o;
    acme_http_request_t      req;
    acme_http_parser_t      *p;
    char                     url[128], err[ACME_ERRLEN];

    pki_init();
    ctx = server_ctx(&pki.leaf, &pki.ca);
    CHECK_INT(server_start(&s, ctx, good_response, 0, 1), 0);

    snprintf(url, sizeof(url), "https://localhost:%d/dir", s.port);
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;

    o = opts_for(pki.ca_file);
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p != NULL);
    if (p == NULL) {
        fprintf(stderr, "  error: %s\n", err);
    }
    server_stop(&s, 1);

    CHECK_STR(s.sni, "localhost");
    CHECK(strstr(s.request, "Host: localhost:") != NULL);
    acme_http_parser_free(p);
    SSL_CTX_free(ctx);
}

UNIT_TEST(transport_tls_wrong_ca_and_wrong_name)
{
    server_t                 s;
    SSL_CTX                 *ctx;
    acme_transport_opts_t    o;
    acme_http_request_t      req;
    acme_http_parser_t      *p;
    char                     url[128], err[ACME_ERRLEN];

    pki_init();
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;

    /* a chain from a CA we do not trust */
    ctx = server_ctx(&pki.leaf, &pki.ca);
    CHECK_INT(server_start(&s, ctx, good_response, 0, 1), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/dir", s.port);
    o = opts_for(pki.other_ca_file);
    err[0] = '\0';
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p == NULL);
    CHECK(strstr(err, "verification failed") != NULL);
    server_stop(&s, 1);
    CHECK_INT(s.request_len, 0);               /* nothing was sent */
    SSL_CTX_free(ctx);

    /* a trusted chain for another name */
    ctx = server_ctx(&pki.wrong_leaf, &pki.ca);
    CHECK_INT(server_start(&s, ctx, good_response, 0, 1), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/dir", s.port);
    o = opts_for(pki.ca_file);
    err[0] = '\0';
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p == NULL);
    CHECK(strstr(err, "verification failed") != NULL);
    server_stop(&s, 1);
    CHECK_INT(s.request_len, 0);
    SSL_CTX_free(ctx);

    /* verify = 0 accepts it (explicitly configured "ssl_verify off") */
    ctx = server_ctx(&pki.wrong_leaf, &pki.ca);
    CHECK_INT(server_start(&s, ctx, good_response, 0, 1), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/dir", s.port);
    o = opts_for(pki.other_ca_file);
    o.verify = 0;
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p != NULL);
    acme_http_parser_free(p);
    server_stop(&s, 1);
    SSL_CTX_free(ctx);

    /* an unreadable CA file is reported as such */
    o = opts_for("/nonexistent/ca.pem");
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p == NULL);
    CHECK(strstr(err, "/nonexistent/ca.pem") != NULL);
}

UNIT_TEST(transport_timeouts)
{
    server_t                 s;
    acme_transport_opts_t    o;
    acme_http_request_t      req;
    acme_http_parser_t      *p;
    char                     url[128], err[ACME_ERRLEN];

    pki_init();
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;

    /* TCP connects (backlog) but TLS never answers */
    CHECK_INT(server_start(&s, NULL, NULL, 0, 0), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/dir", s.port);
    o = opts_for(pki.ca_file);
    o.io_timeout_ms = 200;
    err[0] = '\0';
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p == NULL);
    CHECK(strstr(err, "TLS handshake") != NULL && strstr(err, "timed out") != NULL);
    server_stop(&s, 0);

    /* plain http: request read, never answered */
    CHECK_INT(server_start(&s, NULL, NULL, 1, 1), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/dir", s.port);
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p == NULL);
    CHECK(strstr(err, "read") != NULL && strstr(err, "timed out") != NULL);
    server_stop(&s, 1);
    CHECK(strncmp(s.request, "GET /dir HTTP/1.1\r\n", 19) == 0);

    /* the total deadline bounds the exchange even with long step timeouts */
    CHECK_INT(server_start(&s, NULL, NULL, 1, 1), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/dir", s.port);
    o.io_timeout_ms = 5000;
    o.total_timeout_ms = 200;
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p == NULL);
    CHECK(strstr(err, "total time limit") != NULL);
    server_stop(&s, 1);

    /* connection refused: the port of a closed listener */
    CHECK_INT(server_start(&s, NULL, NULL, 0, 0), 0);
    server_stop(&s, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/dir", s.port);
    o = opts_for(NULL);
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p == NULL);
    CHECK(strstr(err, "refused") != NULL);
}

UNIT_TEST(transport_plain_http_and_body_cap)
{
    static const char big_head[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: 5000\r\n\r\n";
    server_t                 s;
    SSL_CTX                 *ctx;
    acme_transport_opts_t    o;
    acme_http_request_t      req;
    acme_http_parser_t      *p;
    char                     url[128], err[ACME_ERRLEN], *big;

    pki_init();
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = url;

    /* plain http:// works */
    CHECK_INT(server_start(&s, NULL, good_response, 0, 1), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/dir", s.port);
    o = opts_for(NULL);
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p != NULL);
    if (p) {
        CHECK_INT(acme_http_parser_response(p)->status, 201);
    }
    acme_http_parser_free(p);
    server_stop(&s, 1);

    /* a body over max_body is refused, over TLS */
    big = malloc(sizeof(big_head) + 5000);
    memcpy(big, big_head, sizeof(big_head) - 1);
    memset(big + sizeof(big_head) - 1, 'x', 5000);
    big[sizeof(big_head) - 1 + 5000] = '\0';

    ctx = server_ctx(&pki.leaf, &pki.ca);
    CHECK_INT(server_start(&s, ctx, big, 0, 1), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/dir", s.port);
    o = opts_for(pki.ca_file);
    o.max_body = 1000;
    err[0] = '\0';
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p == NULL);
    CHECK(strstr(err, "too large") != NULL);
    server_stop(&s, 1);

    /* the same body fits under a larger cap */
    CHECK_INT(server_start(&s, ctx, big, 0, 1), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/dir", s.port);
    o.max_body = 5000;
    p = acme_transport_exchange(&o, &req, err, sizeof(err));
    CHECK(p != NULL);
    if (p) {
        CHECK_INT(acme_http_parser_response(p)->body_len, 5000);
    }
    acme_http_parser_free(p);
    server_stop(&s, 1);

    SSL_CTX_free(ctx);
    free(big);

    /* bad URL */
    req.url = "ftp://x/";
    CHECK(acme_transport_exchange(&o, &req, err, sizeof(err)) == NULL);
}

/* ---- the driver ---------------------------------------------------------- */

#include "acme_key.h"

typedef struct {
    int     stop_calls;
    int     stop_after;         /* should_stop says yes from this call on */
    int     accounts;
} hooks_data_t;

static int
hook_should_stop(void *data)
{
    hooks_data_t *d = data;

    return ++d->stop_calls >= d->stop_after;
}

static void
hook_account(void *data, const char *url, const char *refused)
{
    ((hooks_data_t *) data)->accounts++;
}

static acme_engine_t *
engine_for(const char *dir, EVP_PKEY *key)
{
    static const char *const names[] = { "a.example.test" };
    acme_order_config_t      cfg;
    char                     err[ACME_ERRLEN];

    memset(&cfg, 0, sizeof(cfg));
    cfg.directory_url = dir;
    cfg.account_key = key;
    cfg.cert_key = key;
    cfg.names = names;
    cfg.n_names = 1;
    cfg.terms_agreed = 1;
    return acme_engine_new(&cfg, err, sizeof(err));
}

UNIT_TEST(transport_drive_blocking_errors_and_stop)
{
    server_t                 s;
    acme_transport_opts_t    o;
    acme_driver_hooks_t      h;
    hooks_data_t             d;
    acme_engine_t           *e;
    EVP_PKEY                *key;
    char                     url[128];

    key = acme_key_generate(ACME_KEY_EC_P256);
    CHECK(key != NULL);

    /* the CA is down: the engine's error carries the transport's message */
    CHECK_INT(server_start(&s, NULL, NULL, 0, 0), 0);
    server_stop(&s, 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/dir", s.port);
    e = engine_for(url, key);
    CHECK(e != NULL);
    memset(&d, 0, sizeof(d));
    d.stop_after = 1000;
    memset(&h, 0, sizeof(h));
    h.data = &d;
    h.should_stop = hook_should_stop;
    h.account = hook_account;
    o = opts_for(NULL);
    CHECK_INT(acme_drive_blocking(e, &o, &h), -1);
    CHECK(acme_engine_error(e) != NULL
          && strstr(acme_engine_error(e), "refused") != NULL);
    CHECK_INT(d.stop_calls, 1);
    CHECK_INT(d.accounts, 0);
    acme_engine_free(e);

    /* shutdown requested: no request is made at all */
    CHECK_INT(server_start(&s, NULL, good_response, 0, 0), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/dir", s.port);
    e = engine_for(url, key);
    memset(&d, 0, sizeof(d));
    d.stop_after = 1;
    CHECK_INT(acme_drive_blocking(e, &o, &h), -1);
    CHECK_INT(d.stop_calls, 1);
    server_stop(&s, 0);
    acme_engine_free(e);

    /* NULL hooks and options are allowed */
    e = engine_for(url, key);
    CHECK_INT(acme_drive_blocking(e, NULL, NULL), -1);
    acme_engine_free(e);

    EVP_PKEY_free(key);
}


/* ---- keep-alive: a server that serves several requests per connection --- */

typedef enum {
    KA_ANSWER = 0,      /* answer, keep the connection */
    KA_ANSWER_CLOSE,    /* answer, then close (the response may not say so) */
    KA_DROP,            /* read the request, close without a byte */
    KA_PARTIAL          /* read the request, half a status line, close */
} ka_step_t;

typedef struct {
    int              lfd, port;
    SSL_CTX         *ctx;
    const char     **responses;     /* one per step */
    const ka_step_t *steps;
    int              nsteps;
    pthread_t        tid;
    /* results */
    int              accepts, resumed, step;
    char             request[4096]; /* the last one */
} ka_server_t;

static void *
ka_server_main(void *arg)
{
    ka_server_t     *s = arg;
    struct timeval   tv = { SERVER_WAIT_MS / 1000, 0 };
    SSL             *ssl;
    const char      *r;
    size_t           len;
    int              fd, n, open;

    while (s->step < s->nsteps) {
        if (!wait_readable(s->lfd)) {
            return NULL;
        }
        fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            return NULL;
        }
        s->accepts++;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

        ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        open = SSL_accept(ssl) == 1;
        if (open && SSL_session_reused(ssl)) {
            s->resumed++;
        }

        while (open && s->step < s->nsteps) {
            len = 0;
            while (!request_complete(s->request, len)
                   && len < sizeof(s->request) - 1)
            {
                n = SSL_read(ssl, s->request + len,
                             (int) (sizeof(s->request) - 1 - len));
                if (n <= 0) {
                    break;
                }
                len += (size_t) n;
                s->request[len] = '\0';
            }
            if (!request_complete(s->request, len)) {
                break;      /* the client closed this one */
            }

            r = s->responses[s->step];
            switch (s->steps[s->step++]) {
            case KA_ANSWER:
                SSL_write(ssl, r, (int) strlen(r));
                break;
            case KA_ANSWER_CLOSE:
                SSL_write(ssl, r, (int) strlen(r));
                open = 0;
                break;
            case KA_DROP:
                open = 0;
                break;
            case KA_PARTIAL:
                SSL_write(ssl, "HTTP/1.1 2", 10);
                open = 0;
                break;
            }
        }

        /* no close_notify: a server that just drops the connection */
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

static int
ka_server_start(ka_server_t *s, SSL_CTX *ctx, const ka_step_t *steps,
    const char **responses, int nsteps)
{
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    s->steps = steps;
    s->responses = responses;
    s->nsteps = nsteps;

    s->lfd = listen_loopback(&s->port);
    if (s->lfd < 0) {
        return -1;
    }
    return pthread_create(&s->tid, NULL, ka_server_main, s) == 0 ? 0 : -1;
}

/* n GETs of https://127.0.0.1:port/n on t; returns how many got a 200 with
 * body "ok", and the error of the last failure in err */
static int
ka_get(acme_transport_t *t, int port, int n, char *err, size_t errlen)
{
    acme_http_request_t   req;
    acme_http_parser_t   *p;
    char                  url[128];
    int                   i, good = 0;

    for (i = 0; i < n; i++) {
        snprintf(url, sizeof(url), "https://127.0.0.1:%d/%d", port, i);
        memset(&req, 0, sizeof(req));
        req.method = "GET";
        req.url = url;
        p = acme_transport_request(t, &req, err, errlen);
        if (p != NULL) {
            good += acme_http_parser_response(p)->status == 200
                    && strcmp(acme_http_parser_response(p)->body, "ok") == 0;
            acme_http_parser_free(p);
        }
    }
    return good;
}

static const char ka_ok[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
static const char ka_ok_chunked[] =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
static const char ka_ok_close[] =
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";

/* Starts a keep-alive server with the steps and a transport to use on it. */
static acme_transport_t *
ka_begin(ka_server_t *s, const ka_step_t *steps, const char **responses,
    int nsteps)
{
    acme_transport_opts_t  o;

    pki_init();
    if (ka_server_start(s, server_ctx(&pki.leaf, &pki.ca), steps, responses,
                        nsteps)
        != 0)
    {
        return NULL;
    }
    o = opts_for(pki.ca_file);
    return acme_transport_new(&o);
}

/* Frees t, waits for the server to run out of steps (or of patience). */
static void
ka_end(ka_server_t *s, acme_transport_t *t)
{
    acme_transport_free(t);
    pthread_join(s->tid, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
}

UNIT_TEST(transport_keepalive_reuse)
{
    static const ka_step_t  steps[] = { KA_ANSWER, KA_ANSWER, KA_ANSWER };
    const char             *resp[] = { ka_ok, ka_ok_chunked, ka_ok };
    ka_server_t             s;
    acme_transport_t       *t;
    char                    err[ACME_ERRLEN] = "";

    t = ka_begin(&s, steps, resp, 3);
    CHECK(t != NULL);
    CHECK_INT(ka_get(t, s.port, 3, err, sizeof(err)), 3);
    ka_end(&s, t);

    /* three requests, one connection; none asked to close it */
    CHECK_INT(s.accepts, 1);
    CHECK_INT(s.step, 3);
    CHECK(strstr(s.request, "Connection") == NULL);
    if (s.accepts != 1) {
        fprintf(stderr, "  error: %s\n", err);
    }
}

UNIT_TEST(transport_keepalive_close_and_resume)
{
    static const ka_step_t  steps[] = { KA_ANSWER_CLOSE, KA_ANSWER_CLOSE,
                                        KA_ANSWER };
    const char             *resp[] = { ka_ok_close, ka_ok, ka_ok };
    ka_server_t             s;
    acme_transport_t       *t;
    char                    err[ACME_ERRLEN] = "";

    /*
     * 1: "Connection: close" -> the next request connects again;
     * 2: the server closes an idle connection without saying so (found
     * before the next request is written, or retried) -> again.  Both new
     * connections resume the TLS session of the first.
     */
    t = ka_begin(&s, steps, resp, 3);
    CHECK_INT(ka_get(t, s.port, 3, err, sizeof(err)), 3);
    ka_end(&s, t);

    CHECK_INT(s.accepts, 3);
    CHECK_INT(s.resumed, 2);
}

UNIT_TEST(transport_keepalive_stale_retried_once)
{
    static const ka_step_t  steps[] = { KA_ANSWER, KA_DROP, KA_ANSWER,
                                        KA_DROP, KA_DROP };
    const char             *resp[] = { ka_ok, NULL, ka_ok, NULL, NULL };
    ka_server_t             s;
    acme_transport_t       *t;
    char                    err[ACME_ERRLEN] = "";

    t = ka_begin(&s, steps, resp, 5);

    /* the kept connection closes on the second GET without a byte of
     * response: sent again on a new connection, which answers */
    CHECK_INT(ka_get(t, s.port, 2, err, sizeof(err)), 2);
    CHECK_INT(s.accepts, 2);

    /* the third is dropped on the kept connection and again on the new
     * one: one retry only, then the error */
    CHECK_INT(ka_get(t, s.port, 1, err, sizeof(err)), 0);
    CHECK(strstr(err, "connection closed") != NULL);
    ka_end(&s, t);

    CHECK_INT(s.accepts, 3);
    CHECK_INT(s.step, 5);
}

UNIT_TEST(transport_keepalive_partial_not_retried)
{
    static const ka_step_t  steps[] = { KA_ANSWER, KA_PARTIAL };
    const char             *resp[] = { ka_ok, NULL };
    ka_server_t             s;
    acme_transport_t       *t;
    char                    err[ACME_ERRLEN] = "";

    /* a byte of the response came: the server may have acted on the
     * request, which is not sent again */
    t = ka_begin(&s, steps, resp, 2);
    CHECK_INT(ka_get(t, s.port, 2, err, sizeof(err)), 1);
    CHECK(strstr(err, "connection closed") != NULL);
    ka_end(&s, t);

    CHECK_INT(s.accepts, 1);
}

UNIT_TEST(transport_keepalive_post_not_retried)
{
    static const ka_step_t  steps[] = { KA_ANSWER, KA_DROP };
    const char             *resp[] = { ka_ok, NULL };
    ka_server_t             s;
    acme_transport_t       *t;
    acme_http_request_t     req;
    acme_http_parser_t     *p;
    char                    url[128], err[ACME_ERRLEN] = "";

    t = ka_begin(&s, steps, resp, 2);
    CHECK_INT(ka_get(t, s.port, 1, err, sizeof(err)), 1);

    /* a POST written on the kept connection, which then closes without a
     * byte: the CA may have acted on it, so it is not sent again (the
     * engine reads the unclear answer back) */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/chal", s.port);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = url;
    req.body = "{}";
    req.body_len = 2;
    p = acme_transport_request(t, &req, err, sizeof(err));
    CHECK(p == NULL);
    acme_http_parser_free(p);
    CHECK(strstr(err, "connection closed") != NULL);
    ka_end(&s, t);

    CHECK_INT(s.accepts, 1);
}

/* Through a CONNECT proxy: the tunnel to the CA's host:port (never
 * connected to directly: port 1), TLS inside with SNI and the name check
 * of the CA's host, the credentials in Proxy-Authorization; a refusal
 * names the proxy and its status line, never the credentials. */
UNIT_TEST(transport_through_proxy)
{
    server_t                 s;
    SSL_CTX                 *ctx;
    acme_transport_opts_t    o;
    acme_http_request_t      req;
    acme_http_parser_t      *p;
    acme_proxy_t             proxy;
    char                     purl[128], err[ACME_ERRLEN], want[256];
    int                      refused;

    pki_init();
    ctx = server_ctx(&pki.leaf, &pki.ca);

    for (refused = 0; refused < 2; refused++) {
        CHECK_INT(server_start(&s, ctx, good_response, 0, 0), 0);
        s.proxy_reply = refused ? "HTTP/1.1 403 Forbidden\r\n\r\n"
                                : "HTTP/1.1 200 Connection established\r\n"
                                  "Proxy-agent: test\r\n\r\n";
        CHECK_INT(pthread_create(&s.tid, NULL, server_main, &s), 0);

        snprintf(purl, sizeof(purl), "http://acme:s3cret@127.0.0.1:%d",
                 s.port);
        CHECK_INT(acme_proxy_parse(purl, &proxy, err, sizeof(err)), 0);

        memset(&req, 0, sizeof(req));
        req.method = "GET";
        req.url = "https://localhost:1/dir";

        o = opts_for(pki.ca_file);
        o.proxy = &proxy;
        err[0] = '\0';
        p = acme_transport_exchange(&o, &req, err, sizeof(err));
        server_stop(&s, 1);

        CHECK(strncmp(s.connect, "CONNECT localhost:1 HTTP/1.1\r\n"
                      "Host: localhost:1\r\n", 49) == 0);
        /* base64("acme:s3cret") */
        CHECK(strstr(s.connect, "\r\nProxy-Authorization: Basic "
                     "YWNtZTpzM2NyZXQ=\r\n") != NULL);

        if (!refused) {
            CHECK(p != NULL);
            if (p == NULL) {
                fprintf(stderr, "  error: %s\n", err);
            } else {
                CHECK_INT(acme_http_parser_response(p)->status, 201);
            }
            CHECK_STR(s.sni, "localhost");
            CHECK(strncmp(s.request, "GET /dir HTTP/1.1\r\n", 19) == 0);
            CHECK(strstr(s.request, "Proxy-Authorization") == NULL);

        } else {
            CHECK(p == NULL);
            snprintf(want, sizeof(want), "GET https://localhost:1/dir: proxy "
                     "127.0.0.1:%d refused CONNECT to localhost:1: "
                     "\"HTTP/1.1 403 Forbidden\"", s.port);
            CHECK_STR(err, want);
            CHECK(strstr(err, "s3cret") == NULL);
        }

        acme_http_parser_free(p);
        acme_proxy_free(&proxy);
    }

    SSL_CTX_free(ctx);
}
