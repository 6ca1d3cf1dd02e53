/*
 * Key generation and the CSR at the lowest scheduling priority
 * (acme_keygen.h).  Threads only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "acme_csr.h"
#include "acme_keygen.h"
#include "acme_store.h"
#include "acme_util.h"


typedef struct {
    void  (*fn)(void *);
    void   *arg;
} lowprio_t;


static void
lowprio_self(void)
{
#ifdef SCHED_IDLE
    struct sched_param  sp;

    memset(&sp, 0, sizeof(sp));
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0) {
        return;
    }
#endif
#ifdef SYS_gettid
    /* Linux: PRIO_PROCESS with a thread id is that thread only */
    (void) setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), 19);
#endif
}


static void *
lowprio_main(void *data)
{
    lowprio_t  *lp = data;

    /* named and lowered by itself, before any work */
#ifdef __linux__
    (void) pthread_setname_np(pthread_self(), "acme-keygen");
#endif
    lowprio_self();
    lp->fn(lp->arg);

    /* the thread ends here: its OpenSSL state goes now, not at exit */
    OPENSSL_thread_stop();
    return NULL;
}


int
acme_lowprio_run(void (*fn)(void *), void *arg)
{
    sigset_t        all, old;
    pthread_t       t;
    lowprio_t       lp;
    int             rc;

    lp.fn = fn;
    lp.arg = arg;

    /* the helper inherits the mask: no process signal is handled there */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&t, NULL, lowprio_main, &lp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (rc != 0) {
        fn(arg);
        return 1;
    }

    (void) pthread_join(t, NULL);
    return 0;
}


typedef struct {
    const acme_job_conf_t  *conf;
    char                   *stored;     /* the stored bundle (key_reuse) */
    size_t                  stored_len;
    acme_job_next_t        *next;       /* key_rollover: NULL when off */
    char                   *next_stored; /* next.key as stored, or NULL */
    size_t                  next_stored_len;
    int                     renewal;    /* a bundle is stored */
    EVP_PKEY               *key;
    char                   *pem;
    size_t                  pem_len;
    int                     want_pem;
    char                   *csr_b64;
    int                     want_csr;
    int                     rc;
    char                    err[ACME_ERRLEN];
} keygen_t;


/* key_rollover: the stored next.key certified (else a fresh key), and the
 * next one made */
static int
keygen_rollover(keygen_t *k)
{
    acme_job_next_t  *n = k->next;
    EVP_PKEY         *nk;
    const char       *why;

    k->key = acme_job_next_key(k->conf, k->next_stored, k->next_stored_len,
                               k->renewal, &why);
    n->used = (k->key != NULL);
    if (why != NULL) {
        acme_err(n->warn, sizeof(n->warn), "the stored next key (next.key) "
                 "is %s: this certificate gets a fresh key, not the one "
                 "whose pin was published as next", why);
    }
    if (k->key == NULL) {
        k->key = acme_key_generate(k->conf->cert_key_type);
    }

    nk = acme_key_generate(k->conf->cert_key_type);
    if (k->key == NULL || nk == NULL) {
        EVP_PKEY_free(nk);
        return acme_err(k->err, sizeof(k->err), "cannot generate the "
                        "certificate key (%s)",
                        acme_key_type_name(k->conf->cert_key_type));
    }

    n->pem = acme_key_to_pem(nk, &n->pem_len);
    if (n->pem == NULL || acme_key_spki_pin(nk, n->pin, sizeof(n->pin)) != 0)
    {
        EVP_PKEY_free(nk);
        return acme_err(k->err, sizeof(k->err), "cannot serialise the next "
                        "certificate key");
    }
    EVP_PKEY_free(nk);

    if (k->want_pem) {
        k->pem = acme_key_to_pem(k->key, &k->pem_len);
        if (k->pem == NULL) {
            return acme_err(k->err, sizeof(k->err), "cannot serialise the "
                            "certificate key");
        }
    }
    return 0;
}


static void
keygen_run(void *data)
{
    keygen_t       *k = data;
    unsigned char  *der;
    size_t          der_len;
    char            why[ACME_ERRLEN];

    if (k->next != NULL) {
        k->rc = keygen_rollover(k);

    } else {
        k->rc = acme_job_cert_key_stored(k->conf, k->stored, k->stored_len,
                                         &k->key,
                                         k->want_pem ? &k->pem : NULL,
                                         k->want_pem ? &k->pem_len : NULL,
                                         NULL, k->err, sizeof(k->err));
    }
    if (k->rc != 0 || !k->want_csr) {
        return;
    }

    why[0] = '\0';
    if (acme_csr_build(k->key, k->conf->names, k->conf->n_names,
                       k->conf->csr_cn, &der, &der_len, why, sizeof(why))
        != 0)
    {
        k->rc = acme_err(k->err, sizeof(k->err), "building the CSR failed: "
                         "%s", why[0] ? why : "unknown error");
        return;
    }

    k->csr_b64 = acme_b64url_encode(der, der_len);
    free(der);
    if (k->csr_b64 == NULL) {
        k->rc = acme_err(k->err, sizeof(k->err), "building the CSR failed: "
                         "out of memory");
    }
}


int
acme_job_cert_key_csr(const acme_job_conf_t *c, EVP_PKEY **key, char **pem,
    size_t *pem_len, char **csr_b64, acme_job_next_t *next, char *err,
    size_t errlen)
{
    keygen_t  k;
    char      why[ACME_ERRLEN];
    const char *root;

    *key = NULL;
    if (pem != NULL) {
        *pem = NULL;
        *pem_len = 0;
    }
    if (csr_b64 != NULL) {
        *csr_b64 = NULL;
    }

    memset(&k, 0, sizeof(k));
    k.conf = c;
    k.want_pem = (pem != NULL);
    k.want_csr = (csr_b64 != NULL);

    /* key_reuse: the stored bundle's key, when acme_job_reuse_key says so */
    root = c->cert_root != NULL ? c->cert_root : c->state_dir;

    if (c->key_reuse && !c->fresh_key && root != NULL
        && c->cert_id != NULL
        && acme_store_load_bundle(root, c->cert_id, &k.stored,
                                  &k.stored_len, why, sizeof(why)) != 1)
    {
        /* none stored (the first issuance) or unreadable: a fresh key */
        k.stored = NULL;
        k.stored_len = 0;
    }

    /* key_rollover: next.key (and whether a certificate is stored) */
    if (next != NULL) {
        memset(next, 0, sizeof(*next));
    }
    if (next != NULL && c->key_rollover) {
        k.next = next;
        if (root != NULL && c->cert_id != NULL) {
            if (acme_store_load_next_key(root, c->cert_id,
                                         &k.next_stored, &k.next_stored_len,
                                         why, sizeof(why)) != 1)
            {
                k.next_stored = NULL;
                k.next_stored_len = 0;
            }
            if (k.next_stored == NULL
                && acme_store_load_bundle(root, c->cert_id,
                                          &k.stored, &k.stored_len, why,
                                          sizeof(why)) == 1)
            {
                k.renewal = 1;
            }
            if (k.stored != NULL) {
                OPENSSL_cleanse(k.stored, k.stored_len);
                free(k.stored);
                k.stored = NULL;
                k.stored_len = 0;
            }
        }
    }

    (void) acme_lowprio_run(keygen_run, &k);

    if (k.stored != NULL) {
        OPENSSL_cleanse(k.stored, k.stored_len);
        free(k.stored);
    }
    if (k.next_stored != NULL) {
        OPENSSL_cleanse(k.next_stored, k.next_stored_len);
        free(k.next_stored);
    }

    if (k.rc != 0) {
        EVP_PKEY_free(k.key);
        if (k.pem != NULL) {
            OPENSSL_cleanse(k.pem, k.pem_len);
            free(k.pem);
        }
        free(k.csr_b64);
        if (next != NULL) {
            acme_job_next_free(next);
        }
        return acme_err(err, errlen, "%s", k.err[0] ? k.err : "unknown error");
    }

    *key = k.key;
    if (pem != NULL) {
        *pem = k.pem;
        *pem_len = k.pem_len;
    }
    if (csr_b64 != NULL) {
        *csr_b64 = k.csr_b64;
    }
    return 0;
}
