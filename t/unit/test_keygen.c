/*
 * Key generation and the CSR at the lowest scheduling priority
 * (io/acme_keygen.h): the helper thread's priority, name and signal mask,
 * the caller's priority untouched, and the key + CSR it returns.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_keygen.h"
#include "acme_util.h"
#include "unit.h"

typedef struct {
    pid_t  tid;
    int    policy;
    int    nice;
    int    all_blocked;
    char   name[32];
} seen_t;

static void
look(void *arg)
{
    seen_t    *s = arg;
    sigset_t   mask;

    s->tid = (pid_t) syscall(SYS_gettid);
    s->policy = sched_getscheduler(0);
    s->nice = getpriority(PRIO_PROCESS, (id_t) s->tid);
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    s->all_blocked = sigismember(&mask, SIGTERM) && sigismember(&mask, SIGHUP)
                     && sigismember(&mask, SIGCHLD)
                     && sigismember(&mask, SIGUSR1);
    pthread_getname_np(pthread_self(), s->name, sizeof(s->name));
}

UNIT_TEST(keygen_lowprio_run)
{
    seen_t  s;
    int     policy, nice;

    policy = sched_getscheduler(0);
    nice = getpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid));

    memset(&s, 0, sizeof(s));
    CHECK_INT(acme_lowprio_run(look, &s), 0);

    /* another thread, at SCHED_IDLE: the server's threads always first */
    CHECK(s.tid != 0 && s.tid != (pid_t) syscall(SYS_gettid));
    CHECK_INT(s.policy, SCHED_IDLE);
    CHECK(s.all_blocked);
    CHECK_STR(s.name, "acme-keygen");

    /* the caller keeps its own priority (it could not get it back) */
    CHECK_INT(sched_getscheduler(0), policy);
    CHECK_INT(getpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid)), nice);

    /* again: a new helper each time */
    memset(&s, 0, sizeof(s));
    CHECK_INT(acme_lowprio_run(look, &s), 0);
    CHECK_INT(s.policy, SCHED_IDLE);
}

UNIT_TEST(keygen_cert_key_csr)
{
    static const char *const  names[] = { "a.example.test", "b.example.test" };
    acme_job_conf_t           c;
    EVP_PKEY                 *k = NULL, *back;
    X509_REQ                 *req;
    STACK_OF(X509_EXTENSION) *exts;
    GENERAL_NAMES            *sans = NULL;
    const unsigned char      *p;
    unsigned char            *der;
    char                     *pem = NULL, *csr = NULL, err[ACME_ERRLEN];
    size_t                    len = 0, der_len = 0;
    int                       i;

    memset(&c, 0, sizeof(c));
    c.names = names;
    c.n_names = 2;
    c.cert_key_type = ACME_KEY_EC_P256;

    CHECK_INT(acme_job_cert_key_csr(&c, &k, &pem, &len, &csr, NULL, err,
                                    sizeof(err)), 0);
    CHECK(k != NULL && pem != NULL && csr != NULL);
    if (k == NULL || pem == NULL || csr == NULL) {
        return;
    }

    /* the PEM is the key */
    back = acme_key_from_pem(pem, len);
    CHECK(back != NULL && EVP_PKEY_eq(back, k) == 1);
    EVP_PKEY_free(back);

    /* the CSR: that key, signed by it, no subject, both names */
    der = acme_b64url_decode(csr, strlen(csr), &der_len);
    p = der;
    req = der ? d2i_X509_REQ(NULL, &p, (long) der_len) : NULL;
    CHECK(req != NULL);
    if (req != NULL) {
        CHECK(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), k) == 1);
        CHECK_INT(X509_REQ_verify(req, k), 1);
        CHECK_INT(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
        exts = X509_REQ_get_extensions(req);
        sans = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL)
                    : NULL;
        CHECK(sans != NULL && sk_GENERAL_NAME_num(sans) == 2);
        for (i = 0; sans && i < sk_GENERAL_NAME_num(sans) && i < 2; i++) {
            GENERAL_NAME  *g = sk_GENERAL_NAME_value(sans, i);

            CHECK(g->type == GEN_DNS);
            CHECK_STR((const char *) ASN1_STRING_get0_data(g->d.dNSName),
                      names[i]);
        }
        GENERAL_NAMES_free(sans);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_REQ_free(req);
    }
    free(der);
    OPENSSL_cleanse(pem, len);
    free(pem);
    free(csr);
    EVP_PKEY_free(k);

    /* no PEM, no CSR: the key only */
    k = NULL;
    CHECK_INT(acme_job_cert_key_csr(&c, &k, NULL, NULL, NULL, NULL, err,
                                    sizeof(err)), 0);
    CHECK(k != NULL);
    EVP_PKEY_free(k);

    /* a CSR that cannot be built: an error, nothing returned */
    c.n_names = 0;
    k = NULL;
    csr = NULL;
    CHECK_INT(acme_job_cert_key_csr(&c, &k, NULL, NULL, &csr, NULL, err,
                                    sizeof(err)), -1);
    CHECK(k == NULL && csr == NULL);
    CHECK(strncmp(err, "building the CSR failed: ", 25) == 0);
}
