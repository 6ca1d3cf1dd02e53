/*
 * Certificates into mod_ssl without restarts, in every child (what the
 * parent hands to mod_ssl at startup is in acme_auto_startup.c).
 *
 * mod_ssl's optional hook ssl_init_server gives us each managed vhost's
 * SSL_CTX; we set an OpenSSL cert callback on it.  The
 * callback survives mod_ssl's SNI switch (SSL_set_SSL_CTX copies it) and
 * runs after the vhost is chosen.  A per-child thread checks the shared
 * generation counter every PICKUP_MS (one atomic load when nothing
 * changed) and parses a changed bundle once, off the handshake path.
 *
 * That thread then installs the parsed certificates into the child's copy
 * of each vhost's SSL_CTX (SSL_CTX_use_cert_and_key), so that SSL_new and
 * mod_ssl's SNI switch (SSL_set_SSL_CTX) hand every later connection the
 * new certificate, as with a static SSLCertificateFile, and the callback
 * finds it there (a pointer comparison) and does nothing.  Those are the
 * only readers of a context's certificates in a child, and both run while a
 * connection is "in flight": from our first pre_connection hook (before
 * mod_ssl's SSL_new) to the cert callback (after the SNI switch), the end
 * of pre_connection for a connection without TLS, ALPN's switch to
 * another protocol (h2: its requests are its secondary connections'), its
 * first request (a resumed session, or a vhost without the callback,
 * skips it) or its close.  The thread
 * writes a context only while no connection is in flight, holding the
 * mutex new ones take to enter; when connections keep it busy, or when the
 * context holds a key type the new certificates do not replace (the P-256
 * placeholder of an RSA certificate: OpenSSL cannot remove a certificate
 * from a context), the callback installs the parsed objects per connection
 * (SSL_certs_clear + SSL_use_cert_and_key under a read lock), as it always
 * did.  mod_ssl before 2.4.64 also called SSL_new from a request (RFC 2817
 * upgrade, only with "SSLEngine optional", a configuration error since):
 * with that directive anywhere, contexts are
 * never written (docs/host-notes.md, issue 9).
 */
#include <string.h>
#include <stdlib.h>
#include <pthread.h>
#include <unistd.h>
#include <errno.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_ssl.h"
#include "apr_atomic.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_cert.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

#define ACME_ALPN_PROTO     "acme-tls/1"
#define PICKUP_MS           25      /* a new certificate served this soon */

/* -- children: parsed certificates and the cert callback ------------------- */

typedef struct {
    pthread_rwlock_t    lock;
    apr_uint32_t        gen;        /* generation parsed (or startup's) */
    EVP_PKEY           *key;        /* NULL: keep what mod_ssl loaded */
    X509               *leaf;
    STACK_OF(X509)     *chain;
} proc_cert_t;

static proc_cert_t     *proc_certs;
static int              n_proc_certs;
/* the chain certificates the bundles share, parsed once per child; used by
 * refresh_slot only: child_init, then the refresher thread alone */
static acme_x509_cache_t *proc_x509_cache;
static apr_uint32_t     proc_gen;
static pthread_t        refresher;
static int              refresher_running;
static pthread_mutex_t  stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   stop_cv = PTHREAD_COND_INITIALIZER;
static int              stop_flag;

/* -- the contexts mod_ssl serves managed certificates from ---------------- */

#define KEYTYPE_EC      1
#define KEYTYPE_RSA     2
#define KEYTYPE_OTHER   4       /* no managed key replaces it */

typedef struct {
    SSL_CTX            *ctx;        /* mod_ssl's, for this vhost */
    apr_array_header_t *all;        /* acme_auto_cert_t *: its certificates */
    server_rec         *s;
    int                 types;      /* KEYTYPE_* of the certificates in ctx */
    /* children: per certificate of all, the leaf now in ctx (NULL: what
     * mod_ssl loaded); written by the refresher thread, under ctx_mu */
    X509              **in_ctx;
    int                 stuck;      /* OpenSSL refused: never written again */
} vhost_ctx_t;

static apr_array_header_t *vhost_ctxs;      /* vhost_ctx_t *, in pconf */
static apr_pool_t       *vhost_ctxs_pool;
/* "SSLEngine optional" seen: mod_ssl may call SSL_new outside a connection's
 * pre_connection, so contexts are never written */
static int              ctx_writes_off;
/* connections that may still copy certificates out of a context */
static pthread_mutex_t  ctx_mu = PTHREAD_MUTEX_INITIALIZER;
static apr_uint32_t     in_flight;
static int              ctx_pending;    /* refresher thread only */

acme_auto_conn_t *
acme_auto_conn(conn_rec *c, int create)
{
    acme_auto_conn_t *ac = ap_get_module_config(c->conn_config,
                                                &acme_auto_module);

    if (ac == NULL && create) {
        ac = apr_pcalloc(c->pool, sizeof(*ac));
        ap_set_module_config(c->conn_config, &acme_auto_module, ac);
    }
    return ac;
}

static apr_status_t
leave_flight_cleanup(void *data)
{
    acme_auto_conn_t *ac = data;

    if (ac->in_flight) {
        ac->in_flight = 0;
        apr_atomic_dec32(&in_flight);
    }
    return APR_SUCCESS;
}

/* The connection no longer reads a context's certificates. */
static void
leave_flight(conn_rec *c)
{
    acme_auto_conn_t *ac = c ? acme_auto_conn(c, 0) : NULL;

    if (ac != NULL) {
        (void) leave_flight_cleanup(ac);
    }
}

/* First pre_connection hook, before mod_ssl's SSL_new. */
static int
enter_flight(conn_rec *c, void *csd)
{
    acme_auto_conn_t *ac;

    (void) csd;
    if (ctx_writes_off || vhost_ctxs == NULL || vhost_ctxs->nelts == 0
        || c->outgoing || c->master != NULL || proc_certs == NULL)
    {
        return DECLINED;
    }
    ac = acme_auto_conn(c, 1);
    pthread_mutex_lock(&ctx_mu);
    apr_atomic_inc32(&in_flight);
    pthread_mutex_unlock(&ctx_mu);
    ac->in_flight = 1;
    apr_pool_cleanup_register(c->pool, ac, leave_flight_cleanup,
                              apr_pool_cleanup_null);
    return DECLINED;
}

/* Last pre_connection hook: mod_ssl made its SSL (or none). */
static int
end_pre_connection(conn_rec *c, void *csd)
{
    (void) csd;
    if (!ap_ssl_conn_is_ssl(c)) {
        leave_flight(c);
    }
    return DECLINED;
}

/* A request was read: the handshake is over. */
static int
first_request(request_rec *r)
{
    leave_flight(r->connection);
    return DECLINED;
}

/* ALPN chose another protocol (h2): mod_ssl's ALPN callback runs after the
 * SNI switch, and an HTTP/2 connection has no request of its own (they are
 * its secondary connections'), so neither a resumed session (no cert
 * callback) nor a vhost without one would leave before the close. */
static int
switched_protocol(conn_rec *c, request_rec *r, server_rec *s,
                  const char *protocol)
{
    (void) r;
    (void) s;
    (void) protocol;
    leave_flight(c);
    return DECLINED;
}

void
acme_auto_ssl_register_hooks(void)
{
    ap_hook_pre_connection(enter_flight, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_pre_connection(end_pre_connection, NULL, NULL,
                           APR_HOOK_REALLY_LAST);
    ap_hook_post_read_request(first_request, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_protocol_switch(switched_protocol, NULL, NULL,
                            APR_HOOK_REALLY_FIRST);
}

/* Whether leaf is one of the connection's certificates (the same object:
 * SSL_new and SSL_set_SSL_CTX take references to the context's). */
static int
ssl_has_leaf(SSL *ssl, X509 *leaf)
{
    int ok;

    if (SSL_get_certificate(ssl) == leaf) {
        return 1;
    }
    for (ok = SSL_set_current_cert(ssl, SSL_CERT_SET_FIRST); ok == 1;
         ok = SSL_set_current_cert(ssl, SSL_CERT_SET_NEXT))
    {
        if (SSL_get_certificate(ssl) == leaf) {
            return 1;
        }
    }
    return 0;
}

/* The child's parsed objects of certificate c, read-locked (the caller
 * unlocks pc->lock); NULL when it has none. */
static proc_cert_t *
proc_cert_rdlock(acme_auto_cert_t *c)
{
    proc_cert_t *pc;

    if (c->slot >= n_proc_certs) {
        return NULL;
    }
    pc = &proc_certs[c->slot];
    return pthread_rwlock_rdlock(&pc->lock) == 0 ? pc : NULL;
}

/* Leaves the connection only its current certificate (the tls-alpn-01
 * challenge one) and key. */
static int
challenge_only(SSL *ssl)
{
    X509     *x = SSL_get_certificate(ssl);
    EVP_PKEY *k = SSL_get_privatekey(ssl);
    int       ok;

    if (x == NULL || k == NULL || !X509_up_ref(x)) {
        return 1;
    }
    if (!EVP_PKEY_up_ref(k)) {
        X509_free(x);
        return 1;
    }
    SSL_certs_clear(ssl);
    ok = SSL_use_cert_and_key(ssl, x, k, NULL, 1) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

/* Installs the vhost's parsed certificates unless the connection already
 * has them all (from the context): one SSL_certs_clear (so no placeholder
 * lingers), then one SSL_use_cert_and_key per certificate, so that with an
 * ECDSA and an RSA one OpenSSL picks by the client's signature
 * algorithms. */
static int
cert_cb(SSL *ssl, void *arg)
{
    vhost_ctx_t          *v = arg;
    apr_array_header_t   *all = v->all;
    acme_auto_cert_t     *c;
    proc_cert_t          *pc;
    const unsigned char  *alpn = NULL;
    unsigned int          alpn_len = 0;
    int                   i, cleared = 0, ok = 1, missing = 0;

    /* mod_ssl's SNI switch is done: the context is not read again */
    leave_flight(SSL_get_app_data(ssl));

    /* with TLS 1.3 ALPN is decided first: mod_ssl has installed the
     * tls-alpn-01 challenge certificate (SSL_use_certificate: the current
     * one); keep it alone, since a certificate of the other key kind (the
     * RSA placeholder, an issued RSA certificate) stays beside it and the
     * client's signature algorithms may pick that one */
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len == sizeof(ACME_ALPN_PROTO) - 1
        && memcmp(alpn, ACME_ALPN_PROTO, alpn_len) == 0)
    {
        return challenge_only(ssl);
    }
    if (proc_certs == NULL) {
        return 1;
    }
    for (i = 0; !missing && i < all->nelts; i++) {
        c = APR_ARRAY_IDX(all, i, acme_auto_cert_t *);
        if ((pc = proc_cert_rdlock(c)) == NULL) {
            continue;
        }
        missing = pc->key != NULL && pc->leaf != NULL
                  && !ssl_has_leaf(ssl, pc->leaf);
        pthread_rwlock_unlock(&pc->lock);
    }
    if (!missing) {
        return 1;       /* the context's certificates are the current ones */
    }
    for (i = 0; ok && i < all->nelts; i++) {
        c = APR_ARRAY_IDX(all, i, acme_auto_cert_t *);
        if ((pc = proc_cert_rdlock(c)) == NULL) {
            continue;
        }
        if (pc->key != NULL && pc->leaf != NULL) {
            if (!cleared) {
                SSL_certs_clear(ssl);
                cleared = 1;
            }
            if (SSL_use_cert_and_key(ssl, pc->leaf, pc->key, pc->chain, 1)
                != 1)
            {
                ok = 0;
            }
        }
        pthread_rwlock_unlock(&pc->lock);
    }
    return ok;
}

static int
key_type(X509 *x)
{
    EVP_PKEY *pk = x ? X509_get0_pubkey(x) : NULL;
    int       id = pk ? EVP_PKEY_get_base_id(pk) : 0;

    return id == EVP_PKEY_EC ? KEYTYPE_EC
           : id == EVP_PKEY_RSA ? KEYTYPE_RSA : KEYTYPE_OTHER;
}

/* The key types of the certificates mod_ssl loaded into ctx. */
static int
ctx_key_types(SSL_CTX *ctx)
{
    int ok, types = 0;

    for (ok = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); ok == 1;
         ok = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT))
    {
        types |= key_type(SSL_CTX_get0_certificate(ctx));
    }
    return types;
}

static int
has_optional_engine(ap_directive_t *d)
{
    for (; d != NULL; d = d->next) {
        if (strcasecmp(d->directive, "SSLEngine") == 0 && d->args != NULL
            && strncasecmp(d->args, "optional", 8) == 0)
        {
            return 1;
        }
        if (d->first_child != NULL && has_optional_engine(d->first_child)) {
            return 1;
        }
    }
    return 0;
}

int
acme_auto_ssl_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
    SSL_CTX *ctx)
{
    acme_auto_cert_t   *c = acme_auto_cert_for_server(s);
    apr_array_header_t *all = acme_auto_certs_for_server(s);
    vhost_ctx_t        *v;

    if (is_proxy || c == NULL || all == NULL || ctx == NULL) {
        return APR_SUCCESS;
    }
    ((acme_auto_srv_conf_t *) ap_get_module_config(s->module_config,
                                                   &acme_auto_module))->ssl_seen = 1;
    if (vhost_ctxs == NULL || vhost_ctxs_pool != p) {
        /* a new configuration generation (p is its pconf) */
        vhost_ctxs = apr_array_make(p, 4, sizeof(vhost_ctx_t *));
        vhost_ctxs_pool = p;
        ctx_writes_off = has_optional_engine(ap_conftree);
        if (ctx_writes_off) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "mod_acme_auto: "
                         "\"SSLEngine optional\" is configured: new "
                         "certificates are installed per connection only");
        }
    }
    v = apr_pcalloc(p, sizeof(*v));
    v->ctx = ctx;
    v->all = all;
    v->s = s;
    v->types = ctx_key_types(ctx);
    v->in_ctx = apr_pcalloc(p, all->nelts * sizeof(X509 *));
    APR_ARRAY_PUSH(vhost_ctxs, vhost_ctx_t *) = v;
    SSL_CTX_set_cert_cb(ctx, cert_cb, v);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "mod_acme_auto: cert "
                 "callback set for %s (%s)", s->server_hostname, c->id);
    return APR_SUCCESS;
}

/* Parses the slot's bundle when its generation moved; never called on the
 * handshake path. */
static void
refresh_slot(server_rec *s, acme_auto_cert_t *c)
{
    proc_cert_t     *pc = &proc_certs[c->slot];
    apr_uint32_t     gen;
    char            *pem = NULL, err[ACME_ERRLEN];
    apr_size_t       len = 0;
    EVP_PKEY        *key = NULL, *okey;
    X509            *leaf = NULL, *oleaf;
    STACK_OF(X509)  *chain = NULL, *ochain;

    gen = acme_auto_shm_slot_gen(c->slot);
    if (gen == pc->gen) {
        return;
    }
    if (pc->gen == 0 && gen == c->startup_gen && !c->with_others) {
        pc->gen = gen;      /* mod_ssl already serves this one */
        return;
    }
    if (acme_auto_shm_get_bundle(c->slot, &pem, &len, &gen) != 1) {
        return;
    }
    if (proc_x509_cache == NULL) {
        proc_x509_cache = acme_x509_cache_new();    /* NULL: none */
    }
    if (acme_bundle_parse_cached(pem, len, proc_x509_cache, &key, &leaf,
                                 &chain, err, sizeof(err))
        != 0)
    {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "mod_acme_auto: %s: "
                     "cannot parse the new bundle: %s", c->id, err);
        free(pem);
        pc->gen = gen;      /* do not retry a broken generation */
        return;
    }
    free(pem);

    pthread_rwlock_wrlock(&pc->lock);
    okey = pc->key;
    oleaf = pc->leaf;
    ochain = pc->chain;
    pc->key = key;
    pc->leaf = leaf;
    pc->chain = chain;
    pc->gen = gen;
    pthread_rwlock_unlock(&pc->lock);

    EVP_PKEY_free(okey);
    X509_free(oleaf);
    sk_X509_pop_free(ochain, X509_free);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "mod_acme_auto: %s: "
                 "generation %u installed in pid %ld", c->id, gen,
                 (long) getpid());
}

/* Writes the vhost's parsed certificates into its context; the caller
 * holds ctx_mu with no connection in flight. */
static void
install_in_ctx(vhost_ctx_t *v)
{
    acme_auto_cert_t *c;
    proc_cert_t      *pc;
    int               i, types = 0, todo = 0;

    if (v->stuck) {
        return;
    }
    for (i = 0; i < v->all->nelts; i++) {
        c = APR_ARRAY_IDX(v->all, i, acme_auto_cert_t *);
        if (c->slot >= n_proc_certs) {
            continue;
        }
        pc = &proc_certs[c->slot];      /* written by this thread only */
        if (pc->key != NULL && pc->leaf != NULL) {
            types |= key_type(pc->leaf);
            todo |= v->in_ctx[i] != pc->leaf;
        }
    }
    if (!todo) {
        return;
    }
    if ((v->types & ~types) != 0) {
        /* e.g. the RSA placeholder and only the ECDSA certificate so far:
         * the context could not lose the placeholder (tried again when
         * another certificate of the vhost arrives) */
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, v->s, "mod_acme_auto: %s: "
                     "mod_ssl's context holds a key type the managed "
                     "certificates do not replace: installed per "
                     "connection", v->s->server_hostname);
        return;
    }
    for (i = 0; i < v->all->nelts; i++) {
        c = APR_ARRAY_IDX(v->all, i, acme_auto_cert_t *);
        if (c->slot >= n_proc_certs) {
            continue;
        }
        pc = &proc_certs[c->slot];
        if (pc->key == NULL || pc->leaf == NULL || v->in_ctx[i] == pc->leaf) {
            continue;
        }
        if (SSL_CTX_use_cert_and_key(v->ctx, pc->leaf, pc->key, pc->chain, 1)
            != 1)
        {
            v->stuck = 1;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, v->s, "mod_acme_auto:"
                         " %s: OpenSSL refused the certificate for mod_ssl's"
                         " context: installed per connection", c->id);
            return;
        }
        v->in_ctx[i] = pc->leaf;
        v->types |= key_type(pc->leaf);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, v->s, "mod_acme_auto: %s: "
                     "generation %u in the context of %s in pid %ld", c->id,
                     pc->gen, v->s->server_hostname, (long) getpid());
    }
}

/* Into the contexts, when no connection is in flight (else next tick). */
static void
install_in_ctxs(void)
{
    int i;

    if (ctx_writes_off || vhost_ctxs == NULL) {
        ctx_pending = 0;
        return;
    }
    pthread_mutex_lock(&ctx_mu);
    if (apr_atomic_read32(&in_flight) == 0) {
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        for (i = 0; i < vhost_ctxs->nelts; i++) {
            install_in_ctx(APR_ARRAY_IDX(vhost_ctxs, i, vhost_ctx_t *));
        }
        ctx_pending = 0;
    }
    else {
        ctx_pending = 1;
    }
    pthread_mutex_unlock(&ctx_mu);
}

static void
refresh_all(server_rec *s)
{
    apr_uint32_t g = acme_auto_shm_generation();
    int          i;

    if (g == proc_gen) {
        if (ctx_pending) {
            install_in_ctxs();
        }
        return;
    }
    proc_gen = g;
    for (i = 0; i < acme_auto_g.certs->nelts; i++) {
        refresh_slot(s, APR_ARRAY_IDX(acme_auto_g.certs, i,
                                      acme_auto_cert_t *));
    }
    install_in_ctxs();
}

static void *
refresher_main(void *arg)
{
    server_rec      *s = arg;
    struct timespec  ts;

    pthread_mutex_lock(&stop_mu);
    while (!stop_flag) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += PICKUP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&stop_cv, &stop_mu, &ts);
        if (stop_flag) {
            break;
        }
        pthread_mutex_unlock(&stop_mu);
        refresh_all(s);
        pthread_mutex_lock(&stop_mu);
    }
    pthread_mutex_unlock(&stop_mu);
    OPENSSL_thread_stop();      /* as the job threads (acme_auto_jobs.c) */
    return NULL;
}

static apr_status_t
refresher_stop(void *data)
{
    (void) data;
    if (refresher_running) {
        pthread_mutex_lock(&stop_mu);
        stop_flag = 1;
        pthread_cond_broadcast(&stop_cv);
        pthread_mutex_unlock(&stop_mu);
        pthread_join(refresher, NULL);
        refresher_running = 0;
        /* the certificates in use hold their own references */
        acme_x509_cache_free(proc_x509_cache);
        proc_x509_cache = NULL;
    }
    return APR_SUCCESS;
}

void
acme_auto_ssl_child_init(apr_pool_t *pchild, server_rec *s)
{
    int i, n = acme_auto_g.certs ? acme_auto_g.certs->nelts : 0;

    if (n == 0 || !acme_auto_shm_ready()) {
        return;
    }
    proc_certs = calloc(n, sizeof(*proc_certs));
    if (proc_certs == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        pthread_rwlock_init(&proc_certs[i].lock, NULL);
    }
    n_proc_certs = n;
    proc_gen = (apr_uint32_t) -1;
    refresh_all(s);        /* before the child accepts connections */

    stop_flag = 0;
    if (acme_auto_thread_create(&refresher, refresher_main, s) == 0) {
        refresher_running = 1;
        apr_pool_cleanup_register(pchild, NULL, refresher_stop,
                                  apr_pool_cleanup_null);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "mod_acme_auto: cannot"
                     " start the certificate refresh thread");
    }
}
