/*
 * Certificates into mod_ssl without restarts, in every child (what the
 * parent hands to mod_ssl at startup is in acme_auto_startup.c).
 *
 * mod_ssl's optional hook ssl_init_server gives us each managed vhost's
 * SSL_CTX; we set an OpenSSL cert callback on it.  The
 * callback survives mod_ssl's SNI switch (SSL_set_SSL_CTX copies it) and
 * runs after the vhost is chosen.  A per-child thread checks the shared
 * generation counter every PICKUP_MS (one atomic load when nothing
 * changed) and parses a changed bundle once, off the handshake path; the callback only installs already-parsed objects
 * (SSL_certs_clear + SSL_use_cert_and_key) under a read lock.  While the
 * child still has what mod_ssl loaded at startup it does nothing at all.
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
#include "http_log.h"

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

/* Installs the vhost's parsed certificates: one SSL_certs_clear (so no
 * placeholder lingers), then one SSL_use_cert_and_key per certificate, so
 * that with an ECDSA and an RSA one OpenSSL picks by the client's
 * signature algorithms. */
static int
cert_cb(SSL *ssl, void *arg)
{
    apr_array_header_t   *all = arg;
    acme_auto_cert_t     *c;
    proc_cert_t          *pc;
    const unsigned char  *alpn = NULL;
    unsigned int          alpn_len = 0;
    int                   i, cleared = 0, ok = 1;

    /* with TLS 1.3 ALPN is decided first: leave a tls-alpn-01 challenge
     * certificate alone */
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len == sizeof(ACME_ALPN_PROTO) - 1
        && memcmp(alpn, ACME_ALPN_PROTO, alpn_len) == 0)
    {
        return 1;
    }
    if (proc_certs == NULL) {
        return 1;
    }
    for (i = 0; ok && i < all->nelts; i++) {
        c = APR_ARRAY_IDX(all, i, acme_auto_cert_t *);
        if (c->slot >= n_proc_certs) {
            continue;
        }
        pc = &proc_certs[c->slot];
        if (pthread_rwlock_rdlock(&pc->lock) != 0) {
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

int
acme_auto_ssl_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
    SSL_CTX *ctx)
{
    acme_auto_cert_t   *c = acme_auto_cert_for_server(s);
    apr_array_header_t *all = acme_auto_certs_for_server(s);

    (void) p;
    if (is_proxy || c == NULL || all == NULL || ctx == NULL) {
        return APR_SUCCESS;
    }
    ((acme_auto_srv_conf_t *) ap_get_module_config(s->module_config,
                                                   &acme_auto_module))->ssl_seen = 1;
    SSL_CTX_set_cert_cb(ctx, cert_cb, all);
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

static void
refresh_all(server_rec *s)
{
    apr_uint32_t g = acme_auto_shm_generation();
    int          i;

    if (g == proc_gen) {
        return;
    }
    proc_gen = g;
    for (i = 0; i < acme_auto_g.certs->nelts; i++) {
        refresh_slot(s, APR_ARRAY_IDX(acme_auto_g.certs, i,
                                      acme_auto_cert_t *));
    }
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
