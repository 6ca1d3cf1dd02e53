/*
 * The blocking HTTPS client and the driver that runs an order with it.  For
 * a thread that may block (Apache's watchdog); nginx uses its own
 * non-blocking client.  A transport (acme_transport_new) keeps its
 * connection open between the requests of one order when the CA allows it
 * (HTTP/1.1 keep-alive, bounded idle time) and resumes its TLS session when
 * it must connect again; acme_transport_exchange() is one request on a
 * connection of its own ("Connection: close").
 *
 * "Blocking" only from the caller's view: the socket is non-blocking and
 * every wait is a poll() bounded by the per-step timeout and by the
 * exchange's total deadline, so a silent or trickling server can never hold
 * the thread longer than total_timeout_ms.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "acme_transport.h"
#include "acme_util.h"

#define TRANSPORT_READ_BUF  16384

typedef struct {
    int                  fd;
    SSL_CTX             *ctx;
    SSL                 *ssl;
    long long            deadline;      /* monotonic ms */
    int                  io_timeout;
    const char          *peer;          /* "host:port" for messages */
    char                *err;
    size_t               errlen;
} conn_t;

/*
 * Waits for events on the socket for at most min(step_ms, time left).
 * 0 ready, -1 with err (timeout or poll error).
 */
static int
wait_fd(conn_t *c, short events, int step_ms, const char *what)
{
    struct pollfd   pfd;
    long long       left;
    int             n, t;

    for ( ;; ) {
        left = c->deadline - acme_monotonic_ms();
        if (left <= 0) {
            return acme_err(c->err, c->errlen, "%s: %s: total time limit "
                            "exceeded", c->peer, what);
        }
        t = left < step_ms ? (int) left : step_ms;

        pfd.fd = c->fd;
        pfd.events = events;
        pfd.revents = 0;
        n = poll(&pfd, 1, t);
        if (n > 0) {
            return 0;
        }
        if (n == 0) {
            if (t == step_ms) {
                return acme_err(c->err, c->errlen, "%s: %s: timed out after "
                                "%d ms", c->peer, what, step_ms);
            }
            continue;       /* re-evaluates the deadline above */
        }
        if (errno != EINTR) {
            return acme_err(c->err, c->errlen, "%s: poll: %s", c->peer,
                            strerror(errno));
        }
    }
}

static int
is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, buf) == 1
           || inet_pton(AF_INET6, host, buf) == 1;
}

/* Tries every address of host in turn; the first that connects wins. */
static int
connect_any(conn_t *c, const char *host, int port, int connect_timeout)
{
    struct addrinfo  hints, *res, *ai;
    char             port_s[16], addr[INET6_ADDRSTRLEN + 8], last[ACME_ERRLEN];
    socklen_t        sl;
    int              rc, fd, soerr, one;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* no AI_ADDRCONFIG: it hides loopback addresses on a host whose only
     * configured addresses are loopback ones */
    hints.ai_flags = is_ip_literal(host) ? AI_NUMERICHOST : 0;
    snprintf(port_s, sizeof(port_s), "%d", port);

    rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc != 0) {
        return acme_err(c->err, c->errlen, "%s: cannot resolve: %s", c->peer,
                        rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    }

    snprintf(last, sizeof(last), "%s: no usable address", c->peer);

    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL,
                        0, NI_NUMERICHOST) != 0)
        {
            snprintf(addr, sizeof(addr), "?");
        }

        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            snprintf(last, sizeof(last), "%s: socket: %s", c->peer,
                     strerror(errno));
            continue;
        }

        /* requests are written whole: without this, Nagle holds a request
         * behind the unacknowledged end of the previous write (the TLS
         * handshake's last flight) until the peer's delayed ACK, ~40 ms */
        one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            c->fd = fd;
            break;
        }
        if (errno != EINPROGRESS) {
            snprintf(last, sizeof(last), "%s: connect to %s: %s", c->peer,
                     addr, strerror(errno));
            close(fd);
            continue;
        }

        c->fd = fd;
        if (wait_fd(c, POLLOUT, connect_timeout, "connect") != 0) {
            snprintf(last, sizeof(last), "%s (%s)", c->err, addr);
            close(fd);
            c->fd = -1;
            if (c->deadline <= acme_monotonic_ms()) {
                break;
            }
            continue;
        }

        soerr = 0;
        sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
            soerr = errno;
        }
        if (soerr == 0) {
            break;
        }
        snprintf(last, sizeof(last), "%s: connect to %s: %s", c->peer, addr,
                 strerror(soerr));
        close(fd);
        c->fd = -1;
    }

    freeaddrinfo(res);

    if (c->fd < 0) {
        return acme_err(c->err, c->errlen, "%s", last);
    }
    return 0;
}

/* OpenSSL's view of the last failure, for messages. */
static const char *
ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0) {
        return "unknown error";
    }
    ERR_error_string_n(e, buf, len);
    return buf;
}

/* After SSL_* returned <= 0: waits as OpenSSL asks; 0 retry, -1 failure. */
static int
ssl_wait(conn_t *c, int ret, const char *what)
{
    char reason[256];

    switch (SSL_get_error(c->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return wait_fd(c, POLLIN, c->io_timeout, what);
    case SSL_ERROR_WANT_WRITE:
        return wait_fd(c, POLLOUT, c->io_timeout, what);
    case SSL_ERROR_SYSCALL:
        if (errno != 0) {
            return acme_err(c->err, c->errlen, "%s: %s: %s", c->peer, what,
                            strerror(errno));
        }
        return acme_err(c->err, c->errlen, "%s: %s: connection closed",
                        c->peer, what);
    default:
        return acme_err(c->err, c->errlen, "%s: %s: %s", c->peer, what,
                        ssl_reason(reason, sizeof(reason)));
    }
}

/* The client context; made before connecting so a bad CA file is reported
 * as such without touching the network. */
static int
tls_prepare(conn_t *c, const acme_transport_opts_t *o)
{
    char reason[256];

    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        return acme_err(c->err, c->errlen, "SSL_CTX_new failed");
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    /* a server that closes without close_notify after a complete
     * Content-Length/chunked body is common; truncation of a body is still
     * caught by the HTTP parser */
    SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);

    if (o->verify) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        if (o->ca_file != NULL && *o->ca_file != '\0') {
            if (SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL) != 1) {
                return acme_err(c->err, c->errlen, "cannot load CA file "
                                "\"%s\": %s", o->ca_file,
                                ssl_reason(reason, sizeof(reason)));
            }
        } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
            return acme_err(c->err, c->errlen, "cannot load the system CA "
                            "store");
        }
    } else {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    }

    return 0;
}

static int
tls_start(conn_t *c, const acme_transport_opts_t *o, const char *host,
    SSL_SESSION *session)
{
    X509_VERIFY_PARAM  *param;
    long                vr;
    int                 ip, rc;

    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        return acme_err(c->err, c->errlen, "SSL_new failed");
    }

    ip = is_ip_literal(host);

    /* RFC 6066: SNI carries host names only, never address literals */
    if (!ip && SSL_set_tlsext_host_name(c->ssl, host) != 1) {
        return acme_err(c->err, c->errlen, "%s: cannot set SNI", c->peer);
    }

    if (o->verify) {
        param = SSL_get0_param(c->ssl);
        X509_VERIFY_PARAM_set_hostflags(param,
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        rc = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                : X509_VERIFY_PARAM_set1_host(param, host, 0);
        if (rc != 1) {
            return acme_err(c->err, c->errlen, "%s: cannot set the name to "
                            "verify", c->peer);
        }
    }

    /* a session of the same origin (the caller keeps one per origin):
     * the server may resume it, which saves the key exchange and the
     * certificate chain; verification was done when it was made */
    if (session != NULL) {
        (void) SSL_set_session(c->ssl, session);
    }

    SSL_set_connect_state(c->ssl);

    for ( ;; ) {
        rc = SSL_do_handshake(c->ssl);
        if (rc == 1) {
            return 0;
        }

        vr = SSL_get_verify_result(c->ssl);
        if (o->verify && vr != X509_V_OK) {
            return acme_err(c->err, c->errlen, "%s: TLS certificate "
                            "verification failed: %s", c->peer,
                            X509_verify_cert_error_string(vr));
        }
        if (ssl_wait(c, rc, "TLS handshake") != 0) {
            return -1;
        }
    }
}

static int
io_write(conn_t *c, const char *p, size_t len)
{
    ssize_t n;
    int     rc;

    while (len > 0) {
        if (c->ssl != NULL) {
            rc = SSL_write(c->ssl, p, len > 1 << 30 ? 1 << 30 : (int) len);
            if (rc <= 0) {
                if (ssl_wait(c, rc, "write") != 0) {
                    return -1;
                }
                continue;
            }
            n = rc;

        } else {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    if (wait_fd(c, POLLOUT, c->io_timeout, "write") != 0) {
                        return -1;
                    }
                    continue;
                }
                if (errno == EINTR) {
                    continue;
                }
                return acme_err(c->err, c->errlen, "%s: write: %s", c->peer,
                                strerror(errno));
            }
        }

        p += n;
        len -= (size_t) n;
    }

    return 0;
}

/* > 0 bytes read, 0 end of stream, -1 error. */
static ssize_t
io_read(conn_t *c, char *buf, size_t cap)
{
    ssize_t n;
    int     rc;

    for ( ;; ) {
        if (c->ssl != NULL) {
            rc = SSL_read(c->ssl, buf, (int) cap);
            if (rc > 0) {
                return rc;
            }
            if (SSL_get_error(c->ssl, rc) == SSL_ERROR_ZERO_RETURN) {
                return 0;
            }
            if (ssl_wait(c, rc, "read") != 0) {
                return -1;
            }
            continue;
        }

        n = recv(c->fd, buf, cap, 0);
        if (n >= 0) {
            return n;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_fd(c, POLLIN, c->io_timeout, "read") != 0) {
                return -1;
            }
            continue;
        }
        if (errno != EINTR) {
            return acme_err(c->err, c->errlen, "%s: read: %s", c->peer,
                            strerror(errno));
        }
    }
}

/*
 * Through a proxy: asks it for a tunnel to host:port (acme_proxy.h) on the
 * plain connection to it.  0, or -1 with c->err (naming the proxy and its
 * status line, never the credentials); what prefixes the message.
 */
static int
proxy_tunnel(conn_t *c, const acme_proxy_t *proxy, const char *host,
    int port, const char *what)
{
    acme_proxy_reply_t  *r;
    char                 buf[512], *out;
    size_t               out_len, room;
    ssize_t              n;
    int                  rc;

    out = acme_proxy_connect_request(proxy, host, port, NULL, &out_len);
    r = malloc(sizeof(*r));
    if (out == NULL || r == NULL) {
        free(out);
        free(r);
        return acme_err(c->err, c->errlen, "%s: out of memory", what);
    }

    rc = io_write(c, out, out_len);
    OPENSSL_cleanse(out, out_len);
    free(out);
    if (rc != 0) {
        free(r);
        return -1;
    }

    acme_proxy_reply_init(r);

    for ( ;; ) {
        /* never past the reply's head: the bytes after it are the CA's */
        room = sizeof(r->head) - 1 - r->len;
        n = io_read(c, buf, room < sizeof(buf) ? (room ? room : 1)
                                               : sizeof(buf));
        if (n < 0) {
            break;
        }
        rc = n == 0 ? acme_proxy_reply_eof(r, proxy, host, port)
                    : acme_proxy_reply_feed(r, proxy, host, port, buf,
                                            (size_t) n);
        if (rc == ACME_HTTP_DONE) {
            free(r);
            return 0;
        }
        if (rc == ACME_HTTP_ERROR) {
            (void) acme_err(c->err, c->errlen, "%s: %s", what,
                            acme_proxy_reply_error(r));
            break;
        }
    }

    free(r);
    return -1;
}


/* Closes the connection; the TLS context stays for the next one. */
static void
conn_drop(conn_t *c)
{
    if (c->ssl != NULL) {
        /* one non-blocking attempt: politeness, not correctness */
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    ERR_clear_error();
}


struct acme_transport_s {
    acme_transport_opts_t  opts;
    int                    keepalive_ms;    /* 0: no keep-alive */
    conn_t                 c;               /* c.fd < 0: none open */
    char                  *origin;          /* of c and session */
    SSL_SESSION           *session;         /* to resume, or NULL */
    long long              idle_since;      /* monotonic ms */
};


/*
 * Whether the idle connection can carry a request: not idle too long, and
 * nothing to read (a readable idle connection was closed by the server, or
 * holds bytes nobody asked for); a TLS 1.3 ticket that arrived late is
 * consumed by the read and leaves the connection usable.
 */
static int
conn_usable(acme_transport_t *t)
{
    struct pollfd  pfd;
    char           b;
    int            rc, usable;

    if (acme_monotonic_ms() - t->idle_since > t->keepalive_ms) {
        return 0;
    }

    pfd.fd = t->c.fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (poll(&pfd, 1, 0) == 0) {
        return 1;
    }

    if (t->c.ssl != NULL) {
        rc = SSL_read(t->c.ssl, &b, 1);
        usable = rc <= 0 && SSL_get_error(t->c.ssl, rc) == SSL_ERROR_WANT_READ;
        ERR_clear_error();
        return usable;
    }

    return recv(t->c.fd, &b, 1, MSG_PEEK) < 0
           && (errno == EAGAIN || errno == EWOULDBLOCK);
}


/* Keeps the session of a good exchange for the next connection. */
static void
session_keep(acme_transport_t *t)
{
    SSL_SESSION *s;

    if (t->c.ssl == NULL) {
        return;
    }
    s = SSL_get1_session(t->c.ssl);
    if (s == NULL) {
        return;
    }
    if (!SSL_SESSION_is_resumable(s)) {
        SSL_SESSION_free(s);
        return;
    }
    SSL_SESSION_free(t->session);
    t->session = s;
}

enum { STAGE_WRITE = 0, STAGE_WRITTEN, STAGE_RECEIVED };

/*
 * Sends out and reads the response into p on the open connection; *stage
 * says how far it got (a STAGE_*).  0, or -1 with c->err.
 */
static int
send_and_read(conn_t *c, const char *out, size_t out_len,
    acme_http_parser_t *p, const char *peer, int *stage)
{
    char     buf[TRANSPORT_READ_BUF];
    ssize_t  n;
    int      rc;

    *stage = STAGE_WRITE;

    if (io_write(c, out, out_len) != 0) {
        return -1;
    }

    *stage = STAGE_WRITTEN;

    for ( ;; ) {
        n = io_read(c, buf, sizeof(buf));
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            rc = acme_http_parser_eof(p);
            if (rc != ACME_HTTP_DONE) {
                return acme_err(c->err, c->errlen, "%s: connection closed "
                                "before the response was complete (%s)", peer,
                                acme_http_parser_error(p)
                                ? acme_http_parser_error(p) : "no detail");
            }
            return 0;
        }
        *stage = STAGE_RECEIVED;
        rc = acme_http_parser_feed(p, buf, (size_t) n);
        if (rc == ACME_HTTP_DONE) {
            return 0;
        }
        if (rc == ACME_HTTP_ERROR) {
            return acme_err(c->err, c->errlen, "%s: invalid response: %s",
                            peer, acme_http_parser_error(p)
                            ? acme_http_parser_error(p) : "parse error");
        }
    }
}


static acme_http_parser_t *
exchange(acme_transport_t *t, const acme_http_request_t *req, char *err,
    size_t errlen)
{
    const acme_transport_opts_t  *o = &t->opts;
    acme_url_t                    u;
    conn_t                       *c = &t->c;
    acme_http_parser_t           *p = NULL;
    char                         *out = NULL, *origin, peer[400];
    char                          what[300];
    size_t                        out_len = 0;
    int                           connect_timeout, total, reused, stage, tries;
    int                           idempotent;

    if (req == NULL || req->url == NULL || req->method == NULL) {
        acme_err(err, errlen, "invalid request");
        return NULL;
    }
    if (acme_url_parse(req->url, &u, err, errlen) != 0) {
        return NULL;
    }

    connect_timeout = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    total = o->total_timeout_ms > 0 ? o->total_timeout_ms : 60000;

    c->io_timeout = o->io_timeout_ms > 0 ? o->io_timeout_ms : 30000;
    c->deadline = acme_monotonic_ms() + total;
    c->err = err;
    c->errlen = errlen;
    snprintf(what, sizeof(what), "%s %s", req->method, req->url);
    if (o->proxy != NULL) {
        snprintf(peer, sizeof(peer), "%s via proxy %s", what, o->proxy->name);
    } else {
        snprintf(peer, sizeof(peer), "%s", what);
    }
    c->peer = peer;

    ERR_clear_error();

    /* the connection and the session serve one origin: another one drops
     * them (a CA keeps every URL on one origin) */
    origin = acme_sprintf("%s://%s:%d", u.https ? "https" : "http", u.host,
                          u.port);
    if (origin == NULL) {
        acme_err(err, errlen, "out of memory");
        goto failed;
    }
    if (t->origin == NULL || strcmp(t->origin, origin) != 0) {
        conn_drop(c);
        SSL_SESSION_free(t->session);
        t->session = NULL;
        free(t->origin);
        t->origin = origin;
    } else {
        free(origin);
    }

    if (c->fd >= 0 && !conn_usable(t)) {
        conn_drop(c);
    }

    idempotent = strcmp(req->method, "GET") == 0
                 || strcmp(req->method, "HEAD") == 0;

    out = acme_http_serialize_conn(req, &u, o->user_agent,
                                   t->keepalive_ms > 0, &out_len);
    if (out == NULL) {
        acme_err(err, errlen, "out of memory");
        goto failed;
    }

    for (tries = 0; ; tries++) {
        reused = c->fd >= 0;

        if (!reused) {
            if (u.https && c->ctx == NULL && tls_prepare(c, o) != 0) {
                SSL_CTX_free(c->ctx);
                c->ctx = NULL;
                goto failed;
            }
            if (o->proxy != NULL) {
                /* the proxy's address is the one looked up */
                if (connect_any(c, o->proxy->host, o->proxy->port,
                                connect_timeout) != 0
                    || proxy_tunnel(c, o->proxy, u.host, u.port, what) != 0)
                {
                    goto failed;
                }

            } else if (connect_any(c, u.host, u.port, connect_timeout) != 0) {
                goto failed;
            }
            if (u.https && tls_start(c, o, u.host, t->session) != 0) {
                goto failed;
            }
        }

        p = acme_http_parser_new(o->max_body ? o->max_body
                                             : ACME_HTTP_MAX_BODY);
        if (p == NULL) {
            acme_err(err, errlen, "out of memory");
            goto failed;
        }
        if (strcmp(req->method, "HEAD") == 0) {
            acme_http_parser_set_head(p);
        }

        if (send_and_read(c, out, out_len, p, peer, &stage) == 0) {
            break;
        }

        /*
         * A kept connection the server closed meanwhile (conn_usable() did
         * not see it yet) fails on the write or on the first read.  The
         * request goes again, once, on a new connection when that cannot
         * make the CA act twice: the write failed (the server never had
         * the whole request), or a GET or HEAD (idempotent) got no byte of
         * response.  A POST that was written may have been acted on: a
         * replay of its nonce would get badNonce, which the engine answers
         * with a new nonce, so the CA could act twice; the engine reads
         * such an unclear answer back instead.
         */
        conn_drop(c);
        acme_http_parser_free(p);
        p = NULL;
        if (!reused || tries > 0 || stage == STAGE_RECEIVED
            || (stage == STAGE_WRITTEN && !idempotent))
        {
            goto failed;
        }
    }

    session_keep(t);
    if (t->keepalive_ms > 0 && acme_http_parser_reusable(p)) {
        t->idle_since = acme_monotonic_ms();
    } else {
        conn_drop(c);
    }

    OPENSSL_cleanse(out, out_len);
    free(out);
    acme_url_free(&u);
    return p;

failed:

    if (out != NULL) {
        OPENSSL_cleanse(out, out_len);
        free(out);
    }
    acme_http_parser_free(p);
    conn_drop(c);
    acme_url_free(&u);
    return NULL;
}


/* OpenSSL writes to the socket with write(), which raises SIGPIPE when the
 * peer has gone: SIGPIPE stays blocked in this thread while we write, and
 * one we caused is swallowed, so a host that did not ignore it survives. */
typedef struct {
    sigset_t  set, old;
    int       was_pending;
} pipe_guard_t;

static void
pipe_block(pipe_guard_t *g)
{
    sigset_t pending;

    sigemptyset(&g->set);
    sigaddset(&g->set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &g->set, &g->old);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
}

static void
pipe_restore(pipe_guard_t *g)
{
    sigset_t         pending;
    struct timespec  zero = { 0, 0 };

    if (!g->was_pending) {
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            while (sigtimedwait(&g->set, NULL, &zero) < 0 && errno == EINTR) {
                /* retry */
            }
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}


acme_transport_t *
acme_transport_new(const acme_transport_opts_t *opts)
{
    acme_transport_t  *t;

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    if (opts != NULL) {
        t->opts = *opts;
    } else {
        t->opts.verify = 1;
    }
    t->keepalive_ms = t->opts.keepalive_ms == 0 ? 30000
                      : t->opts.keepalive_ms < 0 ? 0 : t->opts.keepalive_ms;
    t->c.fd = -1;
    return t;
}


acme_http_parser_t *
acme_transport_request(acme_transport_t *t, const acme_http_request_t *req,
    char *err, size_t errlen)
{
    acme_http_parser_t  *p;
    pipe_guard_t         g;
    char                 local[ACME_ERRLEN];

    if (err == NULL || errlen == 0) {
        err = local;
        errlen = sizeof(local);
    }

    pipe_block(&g);
    p = exchange(t, req, err, errlen);
    pipe_restore(&g);

    return p;
}


void
acme_transport_free(acme_transport_t *t)
{
    pipe_guard_t  g;

    if (t == NULL) {
        return;
    }

    pipe_block(&g);
    conn_drop(&t->c);
    pipe_restore(&g);

    SSL_CTX_free(t->c.ctx);
    SSL_SESSION_free(t->session);
    free(t->origin);
    free(t);
}


acme_http_parser_t *
acme_transport_exchange(const acme_transport_opts_t *opts,
    const acme_http_request_t *req, char *err, size_t errlen)
{
    acme_transport_opts_t  o;
    acme_transport_t      *t;
    acme_http_parser_t    *p;

    if (opts != NULL) {
        o = *opts;
    } else {
        memset(&o, 0, sizeof(o));
        o.verify = 1;
    }
    o.keepalive_ms = -1;

    t = acme_transport_new(&o);
    if (t == NULL) {
        if (err != NULL && errlen > 0) {
            acme_err(err, errlen, "out of memory");
        }
        return NULL;
    }

    p = acme_transport_request(t, req, err, errlen);
    acme_transport_free(t);
    return p;
}


/* ---- the driver ---------------------------------------------------------- */

static int
stop_requested(const acme_driver_hooks_t *h)
{
    return h->should_stop != NULL && h->should_stop(h->data) != 0;
}

static int drive(acme_engine_t *e, acme_transport_t *t,
    const acme_transport_opts_t *opts, const acme_driver_hooks_t *h);


int
acme_drive_blocking(acme_engine_t *e, const acme_transport_opts_t *opts,
    const acme_driver_hooks_t *hooks)
{
    static const acme_driver_hooks_t  no_hooks;
    const acme_driver_hooks_t        *h = hooks ? hooks : &no_hooks;
    acme_transport_t                 *t;
    int                               rc;

    /* one transport for the order: its requests share a connection */
    t = acme_transport_new(opts);

    rc = drive(e, t, opts, h);

    acme_transport_free(t);
    return rc;
}


static int
drive(acme_engine_t *e, acme_transport_t *t,
    const acme_transport_opts_t *opts, const acme_driver_hooks_t *h)
{
    acme_action_t        act;
    acme_http_parser_t  *p;
    const char          *type;
    char                 err[ACME_ERRLEN];
    int                  stopping = 0;
    struct timespec      ts;
    long long            now, left;

    for ( ;; ) {
        memset(&act, 0, sizeof(act));
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        acme_engine_next_ms(e, now, &act);

        switch (act.kind) {

        case ACME_ACT_HTTP:
            if (stop_requested(h)) {
                goto stop;
            }
            p = t != NULL
                ? acme_transport_request(t, &act.request, err, sizeof(err))
                : acme_transport_exchange(opts, &act.request, err,
                                          sizeof(err));
            if (p == NULL) {
                acme_engine_on_transport_error(e, err);
            } else {
                acme_engine_on_response(e, acme_http_parser_response(p));
                acme_http_parser_free(p);
            }
            break;

        case ACME_ACT_SLEEP:
            if (act.note != NULL && h->note != NULL) {
                h->note(h->data, act.note);
            }
            /* in slices of at most a second so a shutdown is not held up */
            for ( ;; ) {
                if (stop_requested(h)) {
                    goto stop;
                }
                clock_gettime(CLOCK_REALTIME, &ts);
                now = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
                if (now >= act.wake_at_ms) {
                    break;
                }
                /* ms: polls without Retry-After start at 50 ms */
                left = act.wake_at_ms - now;
                if (left > 1000) {
                    left = 1000;
                }
                ts.tv_sec = (time_t) (left / 1000);
                ts.tv_nsec = (long) (left % 1000) * 1000000;
                nanosleep(&ts, NULL);
            }
            break;

        case ACME_ACT_PUBLISH:
            type = act.challenge_type ? act.challenge_type : "http-01";
            err[0] = '\0';
            if (h->publish != NULL
                && h->publish(h->data, type, act.identifier, act.token,
                              act.key_authz, err, sizeof(err)) != 0)
            {
                /* the engine fails the order and unpublishes the rest */
                acme_engine_publish_failed(e, err[0] ? err
                                           : "publishing the challenge "
                                             "failed");
            }
            break;

        case ACME_ACT_UNPUBLISH:
            type = act.challenge_type ? act.challenge_type : "http-01";
            if (h->unpublish != NULL) {
                h->unpublish(h->data, type, act.identifier, act.token,
                             act.key_authz);
            }
            break;

        case ACME_ACT_ACCOUNT:
            if (h->account != NULL) {
                h->account(h->data, act.account_url, act.account_refused);
            }
            break;

        case ACME_ACT_REVOKED:
            if (h->revoked != NULL) {
                h->revoked(h->data);
            }
            break;

        case ACME_ACT_DONE:
            return 0;

        case ACME_ACT_ERROR:
        default:
            return -1;
        }
        continue;

    stop:
        /* the engine unpublishes what it published, then ends (bounded:
         * it emits one UNPUBLISH per published challenge, then ERROR) */
        if (!stopping) {
            stopping = 1;
            (void) acme_engine_abort(e, "stopped");
        }
    }
}
