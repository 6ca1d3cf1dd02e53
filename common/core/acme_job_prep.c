/*
 * Before an order (acme_job_prep.h): the certificate key, the engine
 * configuration, and the External Account Binding hint (the account key
 * and URL from the store: io/acme_job_account.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "acme_job_prep.h"
#include "acme_util.h"


/* The key in pem if it is of type kt; else NULL with *why "unreadable" or
 * "of another key type". */
static EVP_PKEY *
key_of_type(const char *pem, size_t len, acme_key_type_t kt,
    const char **why)
{
    EVP_PKEY         *key;
    acme_key_type_t   got;

    key = acme_key_from_pem(pem, len);
    if (key == NULL) {
        *why = "unreadable";
        return NULL;
    }

    if (acme_key_type_of(key, &got) != 0 || got != kt) {
        EVP_PKEY_free(key);
        *why = "of another key type";
        return NULL;
    }

    return key;
}


EVP_PKEY *
acme_job_reuse_key(const acme_job_conf_t *c, const char *stored,
    size_t stored_len)
{
    const char  *why;

    if (!c->key_reuse || c->fresh_key || stored == NULL || stored_len == 0) {
        return NULL;
    }

    /* a key type change (or a key of no supported type): a new key */
    return key_of_type(stored, stored_len, c->cert_key_type, &why);
}


void
acme_job_next_free(acme_job_next_t *n)
{
    if (n->pem != NULL) {
        OPENSSL_cleanse(n->pem, n->pem_len);
        free(n->pem);
    }
    memset(n, 0, sizeof(*n));
}


EVP_PKEY *
acme_job_next_key(const acme_job_conf_t *c, const char *next,
    size_t next_len, int renewal, const char **why)
{
    *why = NULL;
    if (!c->key_rollover || c->fresh_key) {
        return NULL;
    }
    if (next == NULL || next_len == 0) {
        *why = renewal ? "missing" : NULL;
        return NULL;
    }

    return key_of_type(next, next_len, c->cert_key_type, why);
}


int
acme_job_cert_key(const acme_job_conf_t *c, EVP_PKEY **key, char **pem,
    size_t *pem_len, char *err, size_t errlen)
{
    return acme_job_cert_key_stored(c, NULL, 0, key, pem, pem_len, NULL, err,
                                    errlen);
}


int
acme_job_cert_key_stored(const acme_job_conf_t *c, const char *stored,
    size_t stored_len, EVP_PKEY **key, char **pem, size_t *pem_len,
    int *reused, char *err, size_t errlen)
{
    *key = acme_job_reuse_key(c, stored, stored_len);
    if (reused != NULL) {
        *reused = (*key != NULL);
    }

    if (*key == NULL) {
        *key = acme_key_generate(c->cert_key_type);
    }
    if (*key == NULL) {
        return acme_err(err, errlen, "cannot generate the certificate key "
                        "(%s)", acme_key_type_name(c->cert_key_type));
    }

    if (pem == NULL) {
        return 0;
    }

    *pem = acme_key_to_pem(*key, pem_len);
    if (*pem == NULL) {
        EVP_PKEY_free(*key);
        *key = NULL;
        return acme_err(err, errlen, "cannot serialise the certificate key");
    }

    return 0;
}


void
acme_job_order_config(acme_order_config_t *oc, const acme_job_conf_t *c,
    const char *challenge_type, EVP_PKEY *account_key,
    const char *account_url, EVP_PKEY *cert_key)
{
    memset(oc, 0, sizeof(*oc));

    oc->directory_url = c->directory_url;
    oc->account_key = account_key;
    oc->account_url = account_url;
    oc->contacts = c->contacts;
    oc->n_contacts = c->n_contacts;
    oc->terms_agreed = c->terms_agreed ? 1 : 0;
    oc->names = c->names;
    oc->n_names = c->n_names;
    oc->cert_key = cert_key;
    oc->challenge_type = challenge_type;
    oc->csr_cn = c->csr_cn ? 1 : 0;
    oc->preferred_chain = c->preferred_chain;
    oc->profile = c->profile;
    oc->profile_require = c->profile_require;

    if (c->eab != NULL && c->eab->kid != NULL && c->eab->kid[0] != '\0'
        && c->eab->key != NULL)
    {
        oc->eab_kid = c->eab->kid;
        oc->eab_key = c->eab->key;
        oc->eab_key_len = c->eab->key_len;
        oc->eab_alg = c->eab->alg;
    }
}


const char *
acme_job_eab_hint(const char *msg, const char *issuer, const char *directive,
    const char *eab_kid, char *buf, size_t len)
{
    if (msg == NULL || *msg == '\0') {
        return "unknown error";
    }

    /* only account creation concerns External Account Binding */
    if (strncmp(msg, "new-account", sizeof("new-account") - 1) != 0
        || buf == NULL || len == 0)
    {
        return msg;
    }

    if (eab_kid == NULL || *eab_kid == '\0') {

        if (strcasestr(msg, "externalAccountRequired") == NULL
            && strcasestr(msg, "External Account Binding") == NULL)
        {
            return msg;
        }

        snprintf(buf, len, "%s requires External Account Binding: add "
                 "\"%s KID KEY\" to it (%s)", issuer, directive, msg);
        return buf;
    }

    snprintf(buf, len, "%s with \"%s %s\": %s", issuer, directive, eab_kid,
             msg);
    return buf;
}
