/*
 * tls-alpn-01 answers (RFC 8737), the way mod_md does them, through the
 * core's protocol and SSL hooks:
 *
 *   protocol_propose      the CA offers "acme-tls/1" with the SNI of a name
 *                         whose challenge is pending (shared memory): we
 *                         propose it (mod_ssl's ALPN callback selects it if
 *                         the vhost's Protocols list has it)
 *   protocol_switch       for such a name only: mark the connection; it
 *                         closes after the handshake
 *   ssl_answer_challenge  mod_ssl asks, from its ALPN callback, for the
 *                         certificate of a switched connection: we hand it
 *                         the challenge certificate and key as PEM
 *
 * The challenge certificate (fresh P-256 key, acmeIdentifier extension) is
 * made once per challenge per child and kept in a small per-child cache:
 * the CA connects several times (several perspectives).  Nothing here runs
 * for a client that does not offer "acme-tls/1", so normal handshakes on
 * the same port (h2, http/1.1) never reach it.  Our cert callback leaves a
 * connection that selected "acme-tls/1" alone (acme_auto_ssl.c).
 * Each hook declines unless a challenge of ours is pending for the SNI, and
 * protocol_switch runs first: mod_md's takes every switch to "acme-tls/1"
 * (the first OK wins) and answers its own challenges (docs/design.md).
 */
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <pthread.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/bio.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_ssl.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_alpn.h"
#include "acme_key.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

#define ALPN_CACHE_SIZE 8

typedef struct {
    char   *identifier;
    char   *key_authz;
    char   *cert_pem;
    char   *key_pem;
} alpn_cached_t;

static alpn_cached_t    alpn_cache[ALPN_CACHE_SIZE];
static int              alpn_cache_next;
static pthread_mutex_t  alpn_cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* The identifier the SNI stands for, when it has a pending challenge. */
static const char *
pending_identifier(const char *sni, char *ident, apr_size_t ilen,
    char *key_authz, apr_size_t klen)
{
    const char *id;

    if (sni == NULL || *sni == '\0') {
        return NULL;
    }
    id = acme_alpn_sni_identifier(sni, ident, ilen);
    if (id == NULL || !acme_auto_shm_chal_lookup(ACME_CHAL_TLS_ALPN_01, id,
                                                  key_authz, klen)) {
        return NULL;
    }
    return id;
}

static int
alpn_propose(conn_rec *c, request_rec *r, server_rec *s,
    const apr_array_header_t *offers, apr_array_header_t *proposals)
{
    char        ident[ACME_AUTO_IDENT_MAX], key_authz[ACME_AUTO_KEYAUTHZ_MAX];
    const char *sni;

    if (r != NULL || offers == NULL || !acme_auto_shm_ready()
        || !ap_array_str_contains(offers, ACME_ALPN_PROTO)
        || !ap_ssl_conn_is_ssl(c))
    {
        return DECLINED;
    }
    sni = ap_ssl_var_lookup(c->pool, s, c, NULL, "SSL_TLS_SNI");
    if (pending_identifier(sni, ident, sizeof(ident), key_authz,
                           sizeof(key_authz)) == NULL)
    {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "mod_acme_auto: "
                      "acme-tls/1 offered for %s, no pending tls-alpn-01 "
                      "challenge", sni ? sni : "(no SNI)");
        return DECLINED;
    }
    APR_ARRAY_PUSH(proposals, const char *) = ACME_ALPN_PROTO;
    return OK;
}

static int
alpn_switch(conn_rec *c, request_rec *r, server_rec *s, const char *protocol)
{
    char ident[ACME_AUTO_IDENT_MAX], key_authz[ACME_AUTO_KEYAUTHZ_MAX];

    if (r != NULL || strcmp(protocol, ACME_ALPN_PROTO) != 0
        || !acme_auto_shm_ready() || !ap_ssl_conn_is_ssl(c)
        || pending_identifier(ap_ssl_var_lookup(c->pool, s, c, NULL,
                                                "SSL_TLS_SNI"),
                              ident, sizeof(ident), key_authz,
                              sizeof(key_authz)) == NULL)
    {
        return DECLINED;        /* another module's (mod_md's) */
    }
    acme_auto_conn(c, 1)->alpn_switched = 1;
    c->keepalive = AP_CONN_CLOSE;
    return OK;
}

static char *
cert_to_pem(X509 *x)
{
    BIO  *b = BIO_new(BIO_s_mem());
    char *data, *pem = NULL;
    long  n;

    if (b != NULL && PEM_write_bio_X509(b, x) == 1
        && (n = BIO_get_mem_data(b, &data)) > 0)
    {
        pem = acme_strndup(data, (size_t) n);
    }
    BIO_free(b);
    return pem;
}

static void
cached_free(alpn_cached_t *e)
{
    free(e->identifier);
    free(e->key_authz);
    free(e->cert_pem);
    free(e->key_pem);
    memset(e, 0, sizeof(*e));
}

/* The PEMs for (identifier, key_authz), copied into the connection pool;
 * made here on the first connection of a challenge. */
static int
challenge_pems(conn_rec *c, const char *id, const char *key_authz,
    const char **cert_pem, const char **key_pem)
{
    alpn_cached_t *e = NULL;
    X509          *x = NULL;
    EVP_PKEY      *k = NULL;
    char           err[ACME_ERRLEN];
    size_t         klen;
    int            i, rc = -1;

    pthread_mutex_lock(&alpn_cache_mu);
    for (i = 0; i < ALPN_CACHE_SIZE; i++) {
        if (alpn_cache[i].identifier != NULL
            && strcasecmp(alpn_cache[i].identifier, id) == 0
            && strcmp(alpn_cache[i].key_authz, key_authz) == 0)
        {
            e = &alpn_cache[i];
            break;
        }
    }
    if (e == NULL) {
        if (acme_alpn_challenge_cert(id, key_authz, &x, &k, err, sizeof(err))
            != 0)
        {
            ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, "mod_acme_auto: "
                          "cannot make the tls-alpn-01 certificate for %s: %s",
                          id, err);
            goto done;
        }
        e = &alpn_cache[alpn_cache_next];
        alpn_cache_next = (alpn_cache_next + 1) % ALPN_CACHE_SIZE;
        cached_free(e);
        e->cert_pem = cert_to_pem(x);
        e->key_pem = acme_key_to_pem(k, &klen);
        e->identifier = acme_strdup(id);
        e->key_authz = acme_strdup(key_authz);
        if (e->cert_pem == NULL || e->key_pem == NULL || e->identifier == NULL
            || e->key_authz == NULL)
        {
            ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, "mod_acme_auto: "
                          "out of memory for the tls-alpn-01 certificate");
            cached_free(e);
            goto done;
        }
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, "mod_acme_auto: "
                      "tls-alpn-01 certificate for %s made in pid %ld", id,
                      (long) getpid());
    }
    *cert_pem = apr_pstrdup(c->pool, e->cert_pem);
    *key_pem = apr_pstrdup(c->pool, e->key_pem);
    rc = 0;

done:
    pthread_mutex_unlock(&alpn_cache_mu);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static int
alpn_answer(conn_rec *c, const char *servername, const char **pcert_pem,
    const char **pkey_pem)
{
    char        ident[ACME_AUTO_IDENT_MAX], key_authz[ACME_AUTO_KEYAUTHZ_MAX];
    const char       *id;
    acme_auto_conn_t *ac = acme_auto_conn(c, 0);

    if (servername == NULL || ac == NULL || !ac->alpn_switched) {
        return DECLINED;
    }
    id = pending_identifier(servername, ident, sizeof(ident), key_authz,
                            sizeof(key_authz));
    if (id == NULL) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c, "mod_acme_auto: no "
                      "pending tls-alpn-01 challenge for %s", servername);
        return DECLINED;
    }
    if (challenge_pems(c, id, key_authz, pcert_pem, pkey_pem) != 0) {
        return DECLINED;
    }
    ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c, "mod_acme_auto: answering "
                  "tls-alpn-01 challenge for %s", id);
    return OK;
}

void
acme_auto_alpn_register_hooks(void)
{
    ap_hook_protocol_propose(alpn_propose, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_protocol_switch(alpn_switch, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_ssl_answer_challenge(alpn_answer, NULL, NULL, APR_HOOK_MIDDLE);
}
