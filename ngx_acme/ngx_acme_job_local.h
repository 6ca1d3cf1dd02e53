/*
 * Private to an ACME job (one order for one certificate, lease holder
 * only).  Its files, by the thread they run on:
 *   ngx_acme_job.c         event loop: the lifecycle (create, start, thread
 *                          tasks posted and completed, keys prepared ->
 *                          engine, sleep timer, fail, abort, free)
 *   ngx_acme_job_engine.c  event loop: the engine's actions (HTTP, tokens,
 *                          account, DONE, ERROR)
 *   ngx_acme_job_issued.c  event loop: an issued bundle into the zone; the
 *                          resave of a bundle served from memory only
 *   ngx_acme_job_dns.c     event loop: dns-01 tasks posted, records left on
 *                          an abort, the hook's output logged
 *   ngx_acme_job_fleet.c   event loop: acme_store's steps (claim, install
 *                          from the shared store, challenges published to
 *                          it, the record published, the lock released)
 *   ngx_acme_job_thread.c  thread pool: each task's blocking work (keys,
 *                          store writes, dns-01 publish and remove, the
 *                          shared store's calls)
 * Users include ngx_acme.h only (ngx_acme_job_start, _abort, _save_state,
 * _resave).
 */
#ifndef _NGX_ACME_JOB_LOCAL_H_INCLUDED_
#define _NGX_ACME_JOB_LOCAL_H_INCLUDED_

#include "ngx_acme.h"
#include "acme_job_prep.h"


typedef enum {
    NGX_ACME_TASK_PREPARE = 0,
    NGX_ACME_TASK_ACCOUNT,
    NGX_ACME_TASK_FINISH,
    NGX_ACME_TASK_FAIL,
    NGX_ACME_TASK_DNS_ADD,
    NGX_ACME_TASK_DNS_REMOVE,               /* an UNPUBLISH */
    NGX_ACME_TASK_DNS_CLEANUP,              /* an aborted job's records */
    NGX_ACME_TASK_BEGIN,                    /* state.json: attempt record */
    NGX_ACME_TASK_RESAVE,                   /* an unsaved bundle + state */
    NGX_ACME_TASK_REVOKED,                  /* state.json: revoked */
    NGX_ACME_TASK_CLAIM,                    /* acme_store: what to do */
    NGX_ACME_TASK_CHAL_PUT,                 /* acme_store: a challenge
                                               published, the barrier */
    NGX_ACME_TASK_CHAL_DEL,                 /* acme_store: removed */
    NGX_ACME_TASK_PUBLISH                   /* acme_store: a certificate
                                               ordered alone published */
} ngx_acme_task_kind_e;


struct ngx_acme_job_s {
    ngx_acme_main_conf_t     *amcf;
    ngx_acme_cert_t          *cert;
    ngx_acme_issuer_t        *issuer;       /* the CA of this attempt:
                                               cert->issuer, or a fallback
                                               (ngx_acme_cert_issuer) */
    ngx_pool_t               *pool;
    ngx_log_t                *log;
    acme_fence_t              fence;        /* lease generation at start */

    /* thread task in/out; only the thread touches these while busy */
    ngx_acme_task_kind_e      task_kind;
    char                     *root;
    char                     *id;
    char                     *directory;
    EVP_PKEY                 *account_key;
    EVP_PKEY                 *cert_key;
    char                     *account_url;
    char                     *key_pem;
    size_t                    key_pem_len;
    char                     *csr_b64;      /* built with the key, in the
                                               thread at low priority */
    acme_job_next_t           next;         /* key_rollover: the next key,
                                               made with the key, stored
                                               with the certificate */
    char                     *chain;
    size_t                    chain_len;
    acme_cert_info_t          info;
    ngx_flag_t                info_ok;
    acme_cert_state_t         st;
    int                       task_rc;
    int                       store_rc;       /* -1: the store failed */
    ngx_uint_t                resave_gen;     /* resave: slot generation */
    char                      task_err[ACME_ERRLEN];

    char                     *dns_ident;    /* the PUBLISH / UNPUBLISH in */
    char                     *dns_ka;       /* work (malloc'd copies) */
    char                     *dns_log;      /* hook stderr (malloc'd) */
    char                     *dns_rm_err;   /* removal errors (malloc'd) */

    acme_engine_t            *engine;
    ngx_acme_http_t          *http;
    ngx_acme_http_keep_t      keep;         /* the connection to the CA */
    ngx_event_t               sleep;

    ngx_uint_t                account_waits;/* re-checks of the gate */

    /* "revoke" asked for (acme_control_take): the served leaf (DER,
     * malloc'd) revoked with revoke_reason before the order; NULL none */
    u_char                   *revoke_der;
    size_t                    revoke_der_len;
    int                       revoke_reason;
    /* the requests this order answers (acme_control_take), put back when
     * it is aborted; revoked: its revocation is done */
    acme_control_kind_t       control;
    unsigned                  revoked:1;

    /*
     * acme_store (ngx_acme_job_fleet.c): the node its store calls use;
     * fleet what the claim decided for this order (ORDER: under the
     * store's lock, ORDER_ALONE: without, IDLE: no store); the claim's
     * facts and answer; a challenge in work (dns_ident, dns_ka and these);
     * the publication's outcome (acme_kv_status_t) and, ordered alone,
     * the record's revision it replaces; install: a certificate of the
     * store (fleet_by: the node that ordered it)
     */
    acme_fleet_node_t        *fnode;
    acme_fleet_action_t       fleet;
    ngx_uint_t                claim_due;
    const char               *reason;
    acme_fleet_facts_t        facts;
    acme_fleet_claim_t        claim;
    char                     *chal_type;
    char                     *chal_token;
    size_t                    fleet_missing;
    int                       fleet_rc;
    int64_t                   fleet_rev;
    char                     *fleet_by;
    char                      fleet_err[ACME_ERRLEN];

    unsigned                  claiming:1;
    unsigned                  fleet_install:1;
    unsigned                  fleet_publish:1;
    unsigned                  ari:1;        /* a renewalInfo fetch (ARI),
                                               no order */
    unsigned                  busy:1;       /* a thread task is in flight */
    unsigned                  dns_used:1;   /* a dns-01 PUBLISH was made */
    unsigned                  aborted:1;
};


/* ngx_acme_job.c */
ngx_acme_job_t *ngx_acme_job_create(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, ngx_log_t *log);
ngx_uint_t ngx_acme_job_fenced(ngx_acme_job_t *job);
ngx_int_t ngx_acme_job_post(ngx_acme_job_t *job,
    ngx_acme_task_kind_e kind);
void ngx_acme_job_conf(ngx_acme_job_t *job, acme_job_conf_t *c);
void ngx_acme_job_fail(ngx_acme_job_t *job, const char *msg,
    long long retry_after);
void ngx_acme_job_set_step(ngx_acme_job_t *job, const char *step);
void ngx_acme_job_ari_done(ngx_acme_job_t *job, ngx_uint_t done);
void ngx_acme_job_free(ngx_acme_job_t *job);

/* ngx_acme_job_engine.c */
void ngx_acme_job_run(ngx_acme_job_t *job);

/* ngx_acme_job_issued.c */
void ngx_acme_job_finished(ngx_acme_job_t *job);
void ngx_acme_job_resaved(ngx_acme_job_t *job);

/* ngx_acme_job_fleet.c */
ngx_int_t ngx_acme_job_order(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, const char *reason, ngx_log_t *log,
    acme_fleet_action_t fleet, acme_fleet_node_t *node, int64_t rev);
void ngx_acme_job_claimed(ngx_acme_job_t *job);
ngx_int_t ngx_acme_job_chal_post(ngx_acme_job_t *job, acme_action_t *act,
    ngx_acme_task_kind_e kind);
void ngx_acme_job_chal_done(ngx_acme_job_t *job);
void ngx_acme_job_published(ngx_acme_job_t *job);
void ngx_acme_job_fleet_result(ngx_acme_job_t *job);
void ngx_acme_job_fleet_abort(ngx_acme_job_t *job);
void ngx_acme_job_fleet_end(ngx_acme_job_t *job, time_t retry_at);
int ngx_acme_job_fleet_thread(ngx_acme_job_t *job);

/* ngx_acme_job_dns.c */
ngx_int_t ngx_acme_job_dns_post(ngx_acme_job_t *job,
    acme_action_t *act, ngx_acme_task_kind_e kind);
ngx_uint_t ngx_acme_job_dns_abort(ngx_acme_job_t *job);
void ngx_acme_job_dns_log(ngx_acme_job_t *job);

/* ngx_acme_control.c */
ngx_int_t ngx_acme_control_revoked(ngx_acme_job_t *job);

/* ngx_acme_job_thread.c */
void ngx_acme_job_thread(void *data, ngx_log_t *log);


#endif /* _NGX_ACME_JOB_LOCAL_H_INCLUDED_ */
