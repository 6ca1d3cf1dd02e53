/*
 * One account per issuer: the creation of the ACME account is done by one
 * job while the other jobs of the same issuer wait for its URL.
 *
 * A host keeps one acme_account_gate_t per issuer (zeroed to start) and
 * serialises the calls itself (nginx: one event loop; Apache: a mutex).
 * A job whose store has no URL for its key calls acme_account_gate_enter():
 *
 *   ACME_GATE_USE   *url is the account URL another job established: start
 *                   the engine with it (acme_order_config_t.account_url);
 *   ACME_GATE_LEAD  this job establishes the account (engine without URL);
 *   ACME_GATE_WAIT  another job is at it: ask again later (bounded by the
 *                   host), without a URL of its own.
 *
 * On ACME_ACT_ACCOUNT every job calls acme_account_gate_set() (the leader's
 * URL, or a URL an engine found again after the CA refused the old one);
 * when a job ends it calls acme_account_gate_leave(), which lets the next
 * waiting job take over when the leader failed.
 *
 * The store may refuse the URL (EIO, EROFS, ENOSPC on account.json): the
 * gate keeps it, so no job of this process asks the CA for the account
 * again, and the host says with acme_account_gate_stored() whether the
 * write succeeded.  While acme_account_gate_unsaved() is 1, a job that USEs
 * the URL starts its engine with acme_order_config_t.account_unsaved, which
 * emits ACME_ACT_ACCOUNT again: the host's write is retried by each order
 * until it succeeds.
 */
#ifndef ACME_ACCOUNT_H
#define ACME_ACCOUNT_H

#include <openssl/evp.h>

/* How long a job waits (re-checking) for another job's account before it
 * goes on on its own. */
#define ACME_ACCOUNT_WAIT_SEC  300

typedef enum {
    ACME_GATE_USE = 1,
    ACME_GATE_LEAD,
    ACME_GATE_WAIT
} acme_gate_result_t;

typedef struct {
    char        *thumbprint;    /* of the key url belongs to (malloc'd) */
    char        *url;           /* known account URL (malloc'd), or NULL */
    const void  *leader;        /* the job establishing it, or NULL */
    int          unsaved;       /* the store refused url */
} acme_account_gate_t;

/* who identifies the job (any unique pointer).  USE: *url is malloc'd.
 * -1 only when out of memory. */
int acme_account_gate_enter(acme_account_gate_t *g, EVP_PKEY *key,
    const void *who, char **url);

/* The account URL of key is url (the leader, if any, is done).  0 or -1. */
int acme_account_gate_set(acme_account_gate_t *g, EVP_PKEY *key,
    const char *url);

/* Whether url (the gate's) was written to the store: ok 1 yes, 0 no.
 * Another URL than the gate's changes nothing. */
void acme_account_gate_stored(acme_account_gate_t *g, const char *url,
    int ok);

/* 1 when the gate's URL is known not to be in the store. */
int acme_account_gate_unsaved(const acme_account_gate_t *g);

/* who ends: if it was the leader, the gate opens for the next one. */
void acme_account_gate_leave(acme_account_gate_t *g, const void *who);

/* Frees what the gate holds (for the host's exit/teardown). */
void acme_account_gate_free(acme_account_gate_t *g);

#endif
