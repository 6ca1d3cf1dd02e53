/*
 * ngx_http_acme_module: shared declarations of the nginx adapter.
 *
 * Files by concern:
 *   ngx_acme_module.c     the module and directive tables, create/merge
 *                         configuration, acme_shared_zone, conf messages
 *   ngx_acme_certificate.c
 *                         acme_certificate
 *   ngx_acme_postconf.c   postconfiguration: certificates, names, checks
 *   ngx_acme_init.c       init_module (master): store directories, stored
 *                         certificates into the zone
 *   ngx_acme_worker.c     init/exit_process and the per-worker timer: lease,
 *                         scheduling of orders
 *   ngx_acme_issuer.c     the acme_issuer block and its directives
 *   ngx_acme_shm.c        shared zone: per-certificate slots, http-01
 *                         tokens, the ACME lease, generation counters
 *   ngx_acme_ssl.c        fallback certificate, per-worker parsed
 *                         certificate objects installed into the servers'
 *                         SSL_CTX, the cert callback (only when needed)
 *   ngx_acme_bridge.c     the server's own ssl_certificate as the bridge
 *                         until the first issuance
 *   ngx_acme_job.c        one ACME order per certificate (lease holder
 *                         only): its lifecycle, on the event loop
 *   ngx_acme_job_engine.c its engine's actions (event loop)
 *   ngx_acme_job_issued.c an issued bundle into the zone; the resave of
 *                         one served from memory only (event loop)
 *   ngx_acme_job_dns.c    its dns-01 tasks posted, records left on an
 *                         abort, hook output logged (event loop)
 *   ngx_acme_job_thread.c its tasks' blocking work (thread pool only);
 *                         the job's private declarations are in
 *                         ngx_acme_job_local.h
 *   ngx_acme_challenge.c  http-01 answers (POST_READ phase)
 *   ngx_acme_alpn.c       tls-alpn-01 answers (ClientHello, ALPN and cert
 *                         callbacks) and the per-worker challenge certificates
 *   ngx_acme_dns.c        dns-01: the dns_* directives of acme_issuer, and
 *                         publishing/removing TXT records (RFC 2136 or a
 *                         hook program) with the propagation check, run in
 *                         the thread pool
 *   ngx_acme_status.c     the acme_status location handler
 *   ngx_acme_event.c      acme_event_command, acme_expiry_warning; the
 *                         event program's runs (thread pool, one at a
 *                         time per worker, a bounded queue)
 *   ngx_acme_inventory.c  the certificates servers load from files
 *                         (ssl_certificate), for the status
 *   ngx_acme_control.c    "acme_status control;": POST renew / revoke at
 *                         the status location, the revocation's log line
 *   ngx_acme_variables.c  $acme_certificate, $acme_certificate_key (as
 *                         nginx-acme's) and the ssl_certificate pair
 *   ngx_acme_http.c       the non-blocking HTTPS client (ngx_acme_http.h):
 *                         an exchange's lifecycle, outcome and errors
 *   ngx_acme_http_io.c    its resolve, connect, TLS, send and receive steps
 *   ngx_acme_fleet.c      acme_store: several servers, one certificate
 *                         (issue 15): the directive, the lease holder's
 *                         node of the fleet and its sync rounds (thread
 *                         pool), challenges mirrored, newer certificates
 *                         installed; the job's store steps are in
 *                         ngx_acme_job_fleet.c
 */

#ifndef _NGX_ACME_H_INCLUDED_
#define _NGX_ACME_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#if !(NGX_THREADS)
#error ngx_http_acme_module needs nginx built --with-threads
#endif
#if !(NGX_HTTP_SSL)
#error ngx_http_acme_module needs nginx built --with-http_ssl_module
#endif

#include <ngx_thread_pool.h>

#include "acme_util.h"
#include "acme_ari.h"
#include "acme_account.h"
#include "acme_key.h"
#include "acme_cert.h"
#include "acme_engine.h"
#include "acme_store.h"
#include "acme_sched.h"
#include "acme_job.h"
#include "acme_status.h"
#include "acme_control.h"
#include "acme_eab.h"
#include "acme_eab_file.h"
#include "acme_alpn.h"
#include "acme_chal_table.h"
#include "acme_issuer.h"
#include "acme_failover.h"
#include "acme_dns.h"
#include "acme_dns_publish.h"
#include "acme_fence.h"
#include "acme_job_account.h"
#include "acme_event.h"
#include "acme_fleet_node.h"
#include "ngx_acme_http.h"


#define NGX_ACME_ID_LEN            128
#define NGX_ACME_TOKEN_LEN         ACME_TOKEN_MAX
#define NGX_ACME_KEYAUTHZ_LEN      ACME_CHAL_KEYAUTHZ_MAX
#define NGX_ACME_IDENT_LEN         ACME_CHAL_IDENT_MAX  /* DNS name, IP */
#define NGX_ACME_TOKENS_SHARE      8        /* 1/8 of the zone: challenges */
#define NGX_ACME_LEASE_TTL         5        /* seconds without refresh */
#define NGX_ACME_TICK              1000     /* ms */
#define NGX_ACME_PICKUP            25       /* ms: new bundles, activation */
#define NGX_ACME_MAX_WORKERS       256
#define NGX_ACME_WORKER_LIVE       3        /* s since the last heartbeat */
#define NGX_ACME_ACTIVATE_MAX      5        /* s: activate even if a worker
                                               did not report */


typedef struct ngx_acme_job_s  ngx_acme_job_t;
typedef struct ngx_acme_events_s  ngx_acme_events_t;
typedef struct ngx_acme_inventory_s  ngx_acme_inventory_t;
typedef struct ngx_acme_fleet_s  ngx_acme_fleet_t;


/* One "acme_issuer name { }" block. Strings are NUL-terminated. */
typedef struct {
    ngx_str_t                 name;

    /*
     * uri, state_path (its default too), account_key, renew_before_expiry,
     * timeout (timeout_ms: ngx_conf_set_msec_slot writes it as the
     * ngx_msec_t of the same size), retry_delay (ngx_conf_set_sec_slot:
     * time_t), the challenge names: as configured, then defaulted in
     * place by acme_issuer_check (ngx_acme_issuer_check).  dns: dns_update
     * (the TSIG secret read at configuration time), dns_hook,
     * dns_propagation_check; eab: external_account_key (the MAC key
     * decoded at configuration time, also by "nginx -t").  The secrets are
     * cleansed with the configuration's pool and never logged; read-only
     * after configuration, so threads of the pool may use them.
     */
    acme_issuer_conf_t        conf;

    ngx_array_t               contacts;       /* char * ("mailto:...") */
    ngx_str_t                 state_path;     /* as configured */
    ngx_flag_t                tos;
    ngx_str_t                 trusted;
    ngx_flag_t                verify;
    ngx_flag_t                common_name_in_csr;
    ngx_flag_t                key_reuse;      /* renewals keep the key */
    ngx_flag_t                key_rollover;   /* key_rollover pinned: the
                                                 next key made and pinned
                                                 one renewal ahead */
    ngx_str_t                 account_key_pem; /* account_key FILE, read
                                                  by the master; or, with
                                                  "state_path off", the key
                                                  generated in memory */
    unsigned                  account_key_mem:1; /* the latter */

    ngx_ssl_t                 ssl;
    ngx_acme_http_conf_t      http;

    /* worker-local: the job creating the account, the URL known (jobs of
     * the lease holder only, on its event loop) */
    acme_account_gate_t       account_gate;
    /* worker-local: no new order before (acme_job_issuer_pause) */
    time_t                    paused_until;

    u_char                   *file;
    ngx_uint_t                line;
    ngx_uint_t                trusted_line;
    ngx_uint_t                state_line;
    ngx_uint_t                challenge_line;
} ngx_acme_issuer_t;


/* One ACME error / renewal state kept in the shared zone per certificate. */
typedef struct {
    ngx_queue_t               queue;
    ngx_str_node_t            sn;             /* in sh->slot_tree, by id */
    u_char                    id[NGX_ACME_ID_LEN];

    ngx_uint_t                generation;     /* bumped on every new bundle */
    u_char                   *bundle;         /* slab: key PEM + chain PEM */
    size_t                    bundle_len;

    /*
     * A new bundle is parsed by every worker first and only then made
     * active, so all workers switch at the same moment: "active" is the
     * generation handshakes use, read without the lock by the cert callback.
     */
    ngx_atomic_uint_t         active;
    ngx_uint_t                pending_global; /* global generation to reach */
    time_t                    published_at;

    /*
     * The status record (common/core/acme_job.h): certificate facts, and the
     * order's marks (renewing, step, challenge), set and cleared only by
     * the order whose fence (lease generation, see acme_fence.h) is
     * stored here, and only while that fence is the current lease
     * generation; store_error: why the store cannot be written or an
     * entry was refused, "" = fine.  failures, last_success, last_error
     * follow st (acme_job_status_end wherever st changes them), as on
     * Apache.
     */
    acme_fence_t              fence;
    acme_job_status_t         status;

    acme_cert_state_t         st;             /* persisted in state.json */

    /*
     * The bundle (generation unsaved_gen) was issued but the store refused
     * it: it is served from the zone and written again (with st) at
     * unsaved_at (acme_sched_unsaved_retry) by the lease holder; 0 = none.
     */
    long long                 unsaved_at;
    unsigned                  unsaved_tries;
    ngx_uint_t                unsaved_gen;

    /*
     * An issued bundle whose notBefore is ahead of this server's clock
     * (acme_job_activate_at): kept here and made the slot's bundle by
     * the lease holder at status.pending_at; NULL = none.  next_unsaved:
     * the store refused it (written again once it is served).
     */
    u_char                   *next_bundle;    /* slab */
    size_t                    next_bundle_len;
    ngx_uint_t                next_unsaved;

    /* the events' rate limits (acme_event.h), kept across lease changes;
     * installed: the bundle was activated, "installed" is due (emitted by
     * the lease holder's tick, after its "issued" / "renewed") */
    acme_event_track_t        events;
    ngx_uint_t                event_installed;
    /*
     * Renew / revoke requests (common/core/acme_control.h): made by the
     * status location in any worker (acme_status control;) or by a reload
     * that found the store's entry deleted, taken up by the lease
     * holder's next tick (ngx_acme_schedule, ngx_acme_job_start).
     */
    acme_control_t            control;
} ngx_acme_slot_t;


typedef struct {
    ngx_pid_t                 pid;
    ngx_uint_t                parsed;         /* global generation parsed */
    time_t                    heartbeat;
} ngx_acme_worker_t;


typedef struct {
    ngx_acme_worker_t         workers[NGX_ACME_MAX_WORKERS];
    ngx_queue_t               slots;
    ngx_rbtree_t              slot_tree;      /* the slots by id */
    ngx_rbtree_node_t         slot_sentinel;
    acme_chal_table_t        *tokens;         /* pending challenges, an
                                                 eighth of the zone */
    ngx_pid_t                 lease_pid;
    time_t                    lease_expires;
    acme_fence_t              lease_gen;      /* + 1 whenever the lease
                                                 changes hands */
    ngx_atomic_t              generation;     /* + 1 on every new bundle;
                                                 written locked, read also
                                                 without the lock */
    ngx_uint_t                settled;        /* no bundle waits for its
                                                 activation up to this
                                                 generation: nothing for
                                                 ngx_acme_shm_activate to
                                                 walk */
    /* acme_store: the lease holder's view of the shared store after its
     * last round (acme_fleet_node_status_json), for the status of every
     * worker; "" before the first */
    u_char                    fleet_status[4096];
} ngx_acme_shctx_t;


/* One managed certificate (shared by servers with identical settings). */
typedef struct {
    ngx_str_t                 id;             /* NUL-terminated */
    ngx_acme_issuer_t        *issuer;         /* the primary: its store
                                                 holds the certificate */
    /* fallback= (acme_failover.h): issuers[0] the primary, then the
     * fallbacks in turn, failover_after failed attempts at each; their
     * names and the fallbacks' directory URLs as common/ takes them */
    ngx_acme_issuer_t        *issuers[ACME_FAILOVER_MAX];
    const char               *issuer_names[ACME_FAILOVER_MAX];
    const char               *fallback_dirs[ACME_FAILOVER_MAX];
    ngx_uint_t                n_issuers;
    unsigned                  failover_after;
    ngx_array_t               names;          /* char *, NUL-terminated */
    acme_key_type_t           key_type;
    /* tried in turn (acme_job_challenge): challenge= or the issuer's */
    const char               *challenges[ACME_JOB_CHALLENGES_MAX];
    size_t                    n_challenges;
    uint32_t                  rnd;            /* acme_job_seed(id) */

    u_char                   *file;           /* first acme_certificate */
    ngx_uint_t                line;

    ngx_acme_slot_t          *slot;           /* in the shared zone */

    /* per worker: the objects in use, and a parsed one not yet active */
    ngx_uint_t                generation;     /* last parsed */
    ngx_uint_t                cur_gen;
    EVP_PKEY                 *key;
    X509                     *leaf;
    STACK_OF(X509)           *chain;          /* without the leaf */
    ngx_uint_t                next_gen;
    EVP_PKEY                 *next_key;
    X509                     *next_leaf;
    STACK_OF(X509)           *next_chain;
    ngx_flag_t                dirty;          /* promoted: the servers'
                                                 SSL_CTX not updated yet */
    ngx_flag_t                names_match;    /* newest leaf SANs == names */
    ngx_flag_t                key_other;      /* newest leaf's key is not
                                                 of key_type (a key type
                                                 changed) */
    ngx_uint_t                ordered_gen;    /* generation of the bundle
                                                 this worker's order made */
    char                      ari_id[128];    /* newest leaf's ARI
                                                 identifier (RFC 9773,
                                                 acme_ari_cert_id); "" */
    ngx_flag_t                ari_due;        /* this tick: a renewalInfo
                                                 fetch, no order */
    ngx_acme_job_t           *job;

    /* a server's own ssl_certificate served until the first issuance
     * (ngx_acme_bridge.c); NULL: none */
    acme_job_bridge_t        *bridge;

    /* acme_store, the lease holder's (ngx_acme_fleet.c): no order before
     * fleet_next (another node orders, or the store is unreachable);
     * fleet_rev the store's record as last seen (its revision, 0 none);
     * fleet_unpublished: ordered alone (store unreachable), published
     * after the next round; fleet_recheck: a newer record arrived while a
     * job ran, the store is asked again once it ends */
    time_t                    fleet_next;
    int64_t                   fleet_rev;
    ngx_flag_t                fleet_unpublished;
    ngx_flag_t                fleet_recheck;
} ngx_acme_cert_t;


typedef struct ngx_acme_srv_conf_s {
    ngx_str_t                 issuer_name;
    ngx_array_t              *names;          /* ngx_str_t, explicit names */
    ngx_int_t                 key_type;
    const char               *challenges[ACME_JOB_CHALLENGES_MAX];
    size_t                    n_challenges;   /* 0: the issuer's */
    acme_failover_conf_t      failover;       /* fallback=, fallback_after= */
    u_char                   *file;
    ngx_uint_t                line;

    ngx_str_t                *fallback_cert;  /* the markers we injected */
    ngx_str_t                *fallback_key;   /* into ngx_http_ssl_module */
    EVP_PKEY                 *placeholder_key;/* the placeholder's (shared) */
    const char              **placeholder_names;
    ngx_uint_t                placeholder_n;
    acme_job_bridge_t        *bridge;         /* the server's own
                                                 ssl_certificate, or NULL */

    ngx_acme_cert_t          *cert;

    /* a further acme_certificate of the same server (e.g. another key type) */
    struct ngx_acme_srv_conf_s *next;
} ngx_acme_srv_conf_t;


/*
 * A server{} with acme_certificate: its own SSL_CTX (ngx_http_ssl_module
 * creates one per server{}), into which each worker installs the server's
 * certificates once per change (ngx_acme_ssl.c).
 */
typedef struct {
    SSL_CTX                  *ctx;
    ngx_acme_srv_conf_t      *head;           /* its acme_certificate list */
    /*
     * the EVP_PKEY types the ctx holds a certificate of: what nginx loaded
     * (the placeholder, or the bridge's certificates: ngx_acme_bridge.c),
     * then any type installed since (per worker; a certificate of a key
     * type changed since: see ngx_acme_ssl_server_update)
     */
    int                       loaded[4];
    ngx_uint_t                nloaded;
    ngx_flag_t                alpn;           /* tls-alpn-01 is used */
    ngx_flag_t                partial;        /* per worker: see
                                                 ngx_acme_ssl_server_update */
    ngx_flag_t                callback;       /* per worker: cert_cb set */
} ngx_acme_server_t;


typedef struct {
    ngx_array_t               issuers;        /* ngx_acme_issuer_t * */
    ngx_array_t               certs;          /* ngx_acme_cert_t * */
    ngx_array_t               servers;        /* ngx_acme_server_t * */

    ngx_str_t                 zone_name;
    size_t                    zone_size;
    ngx_shm_zone_t           *shm_zone;

    ngx_thread_pool_t        *thread_pool;

    /*
     * the fallback keys shared by every managed server (parse time): [0]
     * EC P-256, [1] RSA-2048 (only for a server whose first
     * acme_certificate is RSA, see ngx_acme_ssl_fallback)
     */
    EVP_PKEY                 *fallback_key[2];/* the same keys (freed with
                                                 the configuration's pool) */
    acme_x509_cache_t        *x509_cache;     /* per worker: the chain
                                                 certificates the bundles
                                                 share, parsed once */

    ngx_flag_t                tls_alpn;       /* a certificate uses it */

    /* per worker */
    ngx_event_t               timer;
    ngx_event_t               pickup;         /* NGX_ACME_PICKUP */
    ngx_queue_t               alpn_certs;     /* ngx_acme_alpn_cert_t */
    ngx_uint_t                alpn_ncerts;
    ngx_uint_t                generation;     /* global one parsed */
    ngx_uint_t                reported;       /* parsed and activation
                                                 checked (pickup) */
    ngx_flag_t                waiting;        /* a parsed bundle is not
                                                 active yet */
    ngx_flag_t                lease_held;
    acme_job_pipe_t          *pipe;           /* a tick's queue, one entry
                                                 per certificate */
    acme_fence_t              lease_gen;      /* of the lease held */
    ngx_flag_t                exiting;        /* in exit_process: the thread
                                                 pool is gone already */
    ngx_log_t                *log;

    /* http{} level acme_event_command, acme_expiry_warning: the issuers
     * without their own take these (acme_issuer_events_inherit) */
    const char               *event_command;
    int                       event_timeout_ms;
    long long                 expiry_warning;
    ngx_acme_events_t        *events;         /* per worker, NULL: none
                                                 emitted yet */
    /* the certificates servers load from files (ngx_acme_inventory.c) */
    ngx_acme_inventory_t     *inventory;
    /* acme_store (ngx_acme_fleet.c); NULL: the local store only */
    ngx_acme_fleet_t         *fleet;
} ngx_acme_main_conf_t;


extern ngx_module_t  ngx_http_acme_module;
extern ngx_module_t  ngx_acme_core_module;


/* ngx_acme_module.c */
u_char *ngx_acme_cstr(ngx_pool_t *pool, ngx_str_t *s);
void ngx_acme_conf_error(ngx_log_t *log, u_char *file, ngx_uint_t line,
    const char *fmt, ...);
void ngx_acme_conf_warn(ngx_log_t *log, u_char *file, ngx_uint_t line,
    const char *fmt, ...);

/* ngx_acme_certificate.c */
char *ngx_acme_certificate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
/* the issuer of the certificate's next attempt (fallback=): by the
 * slot's consecutive failures; the zone's lock held or not needed */
ngx_acme_issuer_t *ngx_acme_cert_issuer(ngx_acme_cert_t *cert,
    unsigned failures);

/* ngx_acme_postconf.c */
ngx_int_t ngx_acme_postconfiguration(ngx_conf_t *cf);
ngx_int_t ngx_acme_dot_name(ngx_pool_t *pool, ngx_str_t *name,
    ngx_str_t *out);
ngx_int_t ngx_acme_server_listens_ssl(ngx_http_core_main_conf_t *cmcf,
    ngx_http_core_srv_conf_t *cscf);

/* ngx_acme_init.c */
ngx_int_t ngx_acme_init_module(ngx_cycle_t *cycle);

/* ngx_acme_worker.c */
ngx_int_t ngx_acme_init_process(ngx_cycle_t *cycle);
void ngx_acme_exit_process(ngx_cycle_t *cycle);

/* ngx_acme_issuer.c */
char *ngx_acme_issuer_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_acme_issuer_check_user(ngx_cycle_t *cycle);

/* ngx_acme_shm.c */
ngx_int_t ngx_acme_shm_add(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf);
void ngx_acme_shm_lock(ngx_acme_main_conf_t *amcf);
void ngx_acme_shm_unlock(ngx_acme_main_conf_t *amcf);
ngx_acme_shctx_t *ngx_acme_shm_ctx(ngx_acme_main_conf_t *amcf);
ngx_acme_slot_t *ngx_acme_shm_slot(ngx_acme_main_conf_t *amcf,
    ngx_str_t *id, ngx_uint_t *created);
ngx_int_t ngx_acme_shm_set_bundle_locked(ngx_acme_main_conf_t *amcf,
    ngx_acme_slot_t *slot, const char *pem, size_t len, ngx_uint_t activate);
ngx_int_t ngx_acme_shm_hold_locked(ngx_acme_main_conf_t *amcf,
    ngx_acme_slot_t *slot, const char *pem, size_t len,
    const acme_cert_info_t *info, long long at);
void ngx_acme_shm_heartbeat(ngx_acme_main_conf_t *amcf, ngx_uint_t parsed);
void ngx_acme_shm_activate(ngx_acme_main_conf_t *amcf, ngx_log_t *log);
void ngx_acme_shm_set_info_locked(ngx_acme_slot_t *slot,
    const acme_cert_info_t *info);
ngx_uint_t ngx_acme_shm_fence_ok_locked(ngx_acme_main_conf_t *amcf,
    acme_fence_t fence);
ngx_int_t ngx_acme_shm_token_add(ngx_acme_main_conf_t *amcf,
    ngx_acme_slot_t *slot, acme_fence_t fence, acme_chal_type_t type,
    const char *identifier, const char *token, const char *key_authz);
void ngx_acme_shm_token_del(ngx_acme_main_conf_t *amcf, const char *token,
    acme_fence_t fence);
void ngx_acme_shm_tokens_drop_locked(ngx_acme_main_conf_t *amcf,
    ngx_acme_slot_t *slot, acme_fence_t fence);
ngx_int_t ngx_acme_shm_find(ngx_acme_main_conf_t *amcf,
    acme_chal_type_t type, const char *key, size_t len, u_char *buf,
    size_t *buf_len);
ngx_int_t ngx_acme_shm_lease(ngx_acme_main_conf_t *amcf, ngx_log_t *log);
void ngx_acme_shm_lease_release(ngx_acme_main_conf_t *amcf);
ngx_pid_t ngx_acme_shm_lease_pid(ngx_acme_main_conf_t *amcf);

/* ngx_acme_ssl.c */
ngx_int_t ngx_acme_ssl_fallback(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf,
    ngx_acme_srv_conf_t *ascf, ngx_array_t *names);
void ngx_acme_ssl_placeholder_merge(ngx_acme_srv_conf_t *ascf,
    ngx_http_ssl_srv_conf_t *sscf);
ngx_int_t ngx_acme_ssl_add_server(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf,
    SSL_CTX *ctx, ngx_acme_srv_conf_t *head);
void ngx_acme_ssl_callbacks(ngx_acme_main_conf_t *amcf);
void ngx_acme_ssl_refresh(ngx_acme_main_conf_t *amcf, ngx_log_t *log);
void ngx_acme_ssl_master_install(ngx_acme_main_conf_t *amcf, ngx_log_t *log);
void ngx_acme_ssl_free(ngx_acme_main_conf_t *amcf);
ngx_int_t ngx_acme_ssl_parse(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    u_char *pem, size_t len, ngx_uint_t cgen, acme_cert_info_t *out,
    ngx_log_t *log);

/* ngx_acme_bridge.c */
ngx_int_t ngx_acme_bridge_merge(ngx_conf_t *cf, ngx_acme_srv_conf_t *ascf,
    ngx_http_ssl_srv_conf_t *sscf);
void ngx_acme_bridge_retired(ngx_acme_cert_t *cert, const char *serial,
    ngx_log_t *log);

/* ngx_acme_job.c, ngx_acme_job_issued.c (resave) */
ngx_int_t ngx_acme_job_start(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, const char *reason, ngx_log_t *log);
void ngx_acme_job_abort(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert);
ngx_int_t ngx_acme_job_ari_start(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, ngx_log_t *log);
ngx_int_t ngx_acme_job_save_state(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, acme_cert_state_t *st, ngx_log_t *log);
ngx_int_t ngx_acme_job_resave(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, ngx_log_t *log);
void ngx_acme_job_activate(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    ngx_log_t *log);
/* ngx_acme_job_fleet.c: the store asked what to do for cert (due: an
 * order is due here), then that done; a certificate of the store
 * installed as if issued here; one ordered alone published */
ngx_int_t ngx_acme_job_claim(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, ngx_uint_t due, const char *reason,
    ngx_log_t *log);
ngx_int_t ngx_acme_job_install(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, const char *bundle, size_t len, const char *by,
    const char *issuer, ngx_log_t *log);
ngx_int_t ngx_acme_job_publish(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, ngx_log_t *log);

/* ngx_acme_alpn.c */
ngx_int_t ngx_acme_alpn_init(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf);
ngx_int_t ngx_acme_alpn_handshake(ngx_ssl_conn_t *ssl_conn);
void ngx_acme_alpn_expire(ngx_acme_main_conf_t *amcf);
void ngx_acme_alpn_free(ngx_acme_main_conf_t *amcf);

/* ngx_acme_dns.c */
char *ngx_acme_dns_update_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_acme_dns_hook_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_acme_dns_check_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
int ngx_acme_dns_publish(ngx_acme_issuer_t *issuer, const char *identifier,
    const char *key_authz, char **log, char *err, size_t errlen);
int ngx_acme_dns_remove(ngx_acme_issuer_t *issuer, const char *identifier,
    const char *key_authz, char **log, char *err, size_t errlen);
extern const acme_runner_t  ngx_acme_runner;
void ngx_acme_thread_log(void *data, int level, const char *msg);
void ngx_acme_thread_log_flush(char **out, const char *id, ngx_log_t *log);

/* ngx_acme_event.c */
char *ngx_acme_event_command_main(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_acme_event_command_issuer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_acme_event_warning_main(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_acme_event_warning_issuer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* Queues event for cert (the program runs in the thread pool); nothing
 * without an event command.  Event loop; the zone may be locked. */
void ngx_acme_event_emit(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    const char *event, const char *serial, long long not_after,
    const char *last_error, ngx_log_t *log);
/* The same with the facts of a status record (e.g. slot->status). */
void ngx_acme_event_emit_slot(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, const char *event, const acme_job_status_t *rec,
    ngx_log_t *log);
/* The lease holder's tick: "installed" once a bundle is activated,
 * "expiring" (acme_event_expiring); unlocked. */
void ngx_acme_event_tick(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    ngx_log_t *log);

/* ngx_acme_fleet.c */
char *ngx_acme_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
void ngx_acme_fleet_init_process(ngx_acme_main_conf_t *amcf, ngx_log_t *log);
void ngx_acme_fleet_exit_process(ngx_acme_main_conf_t *amcf);
/* the lease holder's node once a round has ended, else NULL */
acme_fleet_node_t *ngx_acme_fleet_node(ngx_acme_main_conf_t *amcf);
/* the last round reached the store */
ngx_uint_t ngx_acme_fleet_reachable(ngx_acme_main_conf_t *amcf);
/* gives back the lock of an order that ended without its result, in the
 * thread pool: now (retry_at 0, aborted), or at retry_at (a failed order:
 * acme_fleet_node_release_until, the fleet backs off with this node) */
void ngx_acme_fleet_release(ngx_acme_main_conf_t *amcf,
    acme_fleet_node_t *node, const char *id, time_t retry_at);
/* the status' "store" text (shared zone), NULL without acme_store */
u_char *ngx_acme_fleet_status(ngx_acme_main_conf_t *amcf, ngx_pool_t *pool);

/* ngx_acme_variables.c */
ngx_int_t ngx_acme_variables_add(ngx_conf_t *cf);
ngx_int_t ngx_acme_variables_ssl_pair(ngx_conf_t *cf, u_char *file,
    ngx_uint_t line);

/* ngx_acme_challenge.c */
ngx_int_t ngx_acme_challenge_init(ngx_conf_t *cf);

/* ngx_acme_status.c */
char *ngx_acme_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
void ngx_acme_status_cert(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    time_t now, acme_job_status_t *rec, acme_status_cert_t *c);

/* ngx_acme_control.c */
ngx_int_t ngx_acme_control_handler(ngx_http_request_t *r,
    ngx_uint_t enabled);

/* ngx_acme_inventory.c */
ngx_int_t ngx_acme_inventory_init(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf);
acme_status_cert_t *ngx_acme_inventory_status(ngx_http_request_t *r,
    ngx_acme_main_conf_t *amcf, acme_status_cert_t *list, ngx_uint_t n,
    ngx_uint_t *total, time_t now);


#endif /* _NGX_ACME_H_INCLUDED_ */
