/*
 * mod_acme_auto: Apache httpd module that gets, renews and hot-swaps TLS
 * certificates from an ACME CA, on the shared core in common/.
 *
 * Files by concern:
 *   mod_acme_auto.c    module record, hook registration, child_init glue
 *   acme_auto_config.c directives, <AcmeIssuer>
 *   acme_auto_check.c  configuration checks (check_config), acme_auto_g
 *   acme_auto_shm.c    shared memory (tokens, per-certificate slots), locks
 *   acme_auto_http01.c http-01 answers in post_read_request
 *   acme_auto_alpn.c   tls-alpn-01 answers (acme-tls/1 protocol hooks)
 *   acme_auto_dns.c    dns-01 records (RFC 2136 or a hook program), propagation
 *   acme_auto_startup.c parent post_config: shm, stores, files for mod_ssl
 *   acme_auto_ssl.c    children: cert callback, per-process parsed certs
 *   acme_auto_jobs.c   the singleton watchdog and one thread per certificate job
 *   acme_auto_status.c the "acme-status" handler, status from a bundle
 *   acme_auto_events.c the event program (AcmeEventCommand): a queue and
 *                      a thread of its own in the driving child
 *   acme_auto_inventory.c the certificates vhosts load from files
 *                      (SSLCertificateFile), for the status
 */
#ifndef MOD_ACME_AUTO_H
#define MOD_ACME_AUTO_H

#include "httpd.h"
#include "http_config.h"
#include "apr_global_mutex.h"
#include "apr_shm.h"

#include <pthread.h>
#include <openssl/ssl.h>

#include "acme_account.h"
#include "acme_chal_table.h"
#include "acme_control.h"
#include "acme_status.h"
#include "acme_dns.h"
#include "acme_dns_publish.h"
#include "acme_issuer.h"
#include "acme_failover.h"
#include "acme_fleet_node.h"
#include "acme_eab_file.h"
#include "acme_event.h"
#include "acme_job.h"
#include "acme_job_account.h"
#include "acme_key.h"
#include "acme_store.h"
#include "acme_util.h"

extern module AP_MODULE_DECLARE_DATA acme_auto_module;

#define ACME_AUTO_MUTEX_ID   "acme-auto-shm"
#define ACME_AUTO_WATCHDOG   "_acme_auto_"
#define ACME_AUTO_HANDLER    "acme-status"

/* One <AcmeIssuer name> block. */
typedef struct {
    /* name, AcmeDirectory, AcmeStateDir, AcmeAccountKey,
     * AcmeRenewBeforeExpiry, AcmeTimeout, AcmeRetryDelay, the AcmeChallenge
     * list (the attempt after N consecutive failures uses challenges[N % n]):
     * as configured, then defaulted by acme_issuer_check (check_issuer);
     * dns: AcmeDNSUpdate, AcmeDNSHook, AcmeDNSPropagationCheck; eab:
     * AcmeExternalAccountBinding.  The TSIG secret and the MAC key are
     * read at config time and cleansed with the config pool. */
    acme_issuer_conf_t   conf;
    apr_array_header_t  *contacts;      /* const char * "mailto:..." */
    int                  terms_agreed;
    int                  key_reuse;     /* AcmeKeyReuse on: renewals keep
                                           the certificate key */
    int                  key_rollover;  /* AcmeKeyRollover pinned: the next
                                           key made and pinned one renewal
                                           ahead */
    const char          *trusted_ca;    /* as configured; NULL = system store */
    const char          *conf_file;     /* where it was defined, for messages */
    int                  conf_line;
    int                  state_line;    /* AcmeStateDir's line, 0: none */
    /* runtime, set in post_config */
    const char          *ca_copy;       /* trusted CA copied into the state dir */
    /* the driving child's job threads: who creates the account, its URL
     * (under acme_auto_jobs.c's account_mu) */
    acme_account_gate_t  account_gate;
    /* no new order before (acme_job_issuer_pause); atomic: written by the
     * job threads, read by the watchdog's */
    long long            paused_until;
} acme_auto_issuer_t;

/* "AcmeCertificate issuer [names...] [key=...]" on a vhost; a vhost may
 * have several (one per key type), chained by next. */
typedef struct acme_auto_cert_conf_s acme_auto_cert_conf_t;
struct acme_auto_cert_conf_s {
    const char          *issuer_name;
    apr_array_header_t  *names;         /* explicit names, may be empty */
    acme_key_type_t      key_type;
    /* challenge=: this certificate's list (0: the issuer's) */
    const char          *challenges[ACME_JOB_CHALLENGES_MAX];
    size_t               n_challenges;
    acme_failover_conf_t failover;      /* fallback=, fallback_after= */
    const char          *conf_file;
    int                  conf_line;
    acme_auto_cert_conf_t *next;
};

typedef struct acme_auto_cert_s acme_auto_cert_t;

/* Per server config. */
typedef struct {
    acme_auto_cert_conf_t *cert;        /* not inherited by vhosts */
    apr_array_header_t    *issuers;     /* main server only: acme_auto_issuer_t * */
    acme_auto_cert_t      *managed;     /* set by the check: the first */
    apr_array_header_t    *managed_all; /* acme_auto_cert_t *, all of them */
    int                    ssl_seen;    /* mod_ssl gave us its SSL_CTX */
    /* main server only: AcmeEventCommand, AcmeExpiryWarning outside
     * <AcmeIssuer>, for the blocks without their own
     * (acme_issuer_events_inherit) */
    const char            *event_command;
    int                    event_timeout_ms;
    long long              expiry_warning;
    /* main server only: AcmeStore etcd ... (acme_fleet_node.h), NULL
     * without; its files checked when the configuration is read */
    acme_fleet_conf_t     *store;
} acme_auto_srv_conf_t;

/* A managed certificate after the check: one per distinct (issuer, id). */
struct acme_auto_cert_s {
    int                  slot;          /* index in the shared memory */
    const char          *id;            /* acme_store_cert_id() */
    const char         **names;
    int                  n_names;
    acme_key_type_t      key_type;
    acme_auto_issuer_t  *issuer;        /* the primary: its store holds
                                           the certificate */
    /* fallback= (acme_failover.h): issuers[0] the primary, then the
     * fallbacks in turn, failover_after failed attempts at each; their
     * names and the fallbacks' directory URLs as common/ takes them */
    acme_auto_issuer_t  *issuers[ACME_FAILOVER_MAX];
    const char          *issuer_names[ACME_FAILOVER_MAX];
    const char          *fallback_dirs[ACME_FAILOVER_MAX];
    int                  n_issuers;
    unsigned             failover_after;
    const char          *conf_file;     /* the first AcmeCertificate of */
    int                  conf_line;     /* it, for messages */
    /* the challenge types in turn (acme_job_challenge): the
     * AcmeCertificate's challenge= or the issuer's AcmeChallenge list */
    const char          *challenges[ACME_JOB_CHALLENGES_MAX];
    size_t               n_challenges;
    const char          *placeholder;   /* the file handed to mod_ssl */
    apr_uint32_t         startup_gen;   /* generation mod_ssl's file holds; 0 = fallback */
    int                  with_others;   /* a vhost serves it with other certs:
                                           the callback always installs it */
    /* the vhost's own SSLCertificateFile, served instead of the
     * placeholder until the first issuance (acme_auto_add_cert_files);
     * NULL: none */
    acme_job_bridge_t   *bridge;
};

/* Module-wide state of the current configuration generation. */
typedef struct {
    apr_array_header_t  *issuers;       /* acme_auto_issuer_t * */
    apr_array_header_t  *certs;         /* acme_auto_cert_t * */
    server_rec          *base;
} acme_auto_globals_t;

extern acme_auto_globals_t acme_auto_g;

static APR_INLINE acme_auto_srv_conf_t *
acme_auto_srv_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &acme_auto_module);
}

/* acme_auto_config.c */
extern const command_rec acme_auto_cmds[];
void *acme_auto_create_srv_conf(apr_pool_t *p, server_rec *s);
void *acme_auto_merge_srv_conf(apr_pool_t *p, void *base, void *add);

/* acme_auto_check.c */
/* Cross-checks and builds acme_auto_g; writes nothing. OK or !OK (logged). */
int acme_auto_check_config(apr_pool_t *pconf, apr_pool_t *plog,
    apr_pool_t *ptemp, server_rec *s);
/* Warns that managed vhost vs has no "SSLEngine on" (at its AcmeCertificate). */
void acme_auto_warn_no_ssl(server_rec *vs);
acme_auto_cert_t *acme_auto_cert_for_server(server_rec *s);
/* All managed certificates of a vhost (acme_auto_cert_t *), or NULL. */
apr_array_header_t *acme_auto_certs_for_server(server_rec *s);

/* acme_auto_shm.c: shared memory layout and access */
#define ACME_AUTO_MAX_TOKENS    64      /* challenge table entries */
#define ACME_AUTO_KEYAUTHZ_MAX  (ACME_CHAL_KEYAUTHZ_MAX + 1)    /* with NUL */
#define ACME_AUTO_IDENT_MAX     (ACME_CHAL_IDENT_MAX + 1)
#define ACME_AUTO_BUNDLE_MAX    (64 * 1024)

/* One certificate slot's status (everything but the bundle): the record
 * both servers keep (common/core/acme_job.h). */
typedef acme_job_status_t acme_auto_slot_status_t;

apr_status_t acme_auto_shm_create(server_rec *s, apr_pool_t *pconf, int n_slots);
apr_status_t acme_auto_shm_child_init(server_rec *s, apr_pool_t *pchild);
int acme_auto_shm_ready(void);

/* Lock-free reads (seqlock), locked writes. */
apr_uint32_t acme_auto_shm_generation(void);
apr_uint32_t acme_auto_shm_slot_gen(int slot);
int acme_auto_shm_get_status(int slot, acme_auto_slot_status_t *out);
/* Copies the bundle (malloc'd, NUL-terminated) with its generation; 1 when
 * a bundle exists, 0 when none, -1 on error. */
int acme_auto_shm_get_bundle(int slot, char **pem, apr_size_t *len, apr_uint32_t *gen);
/* The key authorization pending into buf: http-01 by token, tls-alpn-01
 * by identifier; 1 found, 0 not. */
int acme_auto_shm_chal_lookup(acme_chal_type_t type, const char *key,
    char *buf, apr_size_t buflen);
long acme_auto_shm_acme_pid(void);
/* AcmeStore: the driver's view of the shared store for the status of
 * every child (acme_fleet_node_status_json; "" none yet; a longer text
 * is cut and shows as "store": null). */
#define ACME_AUTO_STORE_MAX     4096
void acme_auto_shm_get_store(char *buf, apr_size_t buflen);
void acme_auto_shm_set_store(const char *json);


/* Publishes a challenge: http-01 is looked up by token, tls-alpn-01 by
 * identifier (both removed by token). */
int acme_auto_shm_token_add(int alpn, const char *identifier,
    const char *token, const char *key_authz);
void acme_auto_shm_token_remove(const char *token);
/* AcmeStore: another node's challenge, mirrored from the shared store (added
 * when its token is absent; this node's own stay as they are), and its
 * removal (mirrored ones only).  0, or -1 (malformed, table full). */
int acme_auto_shm_token_mirror(int alpn, const char *identifier,
    const char *token, const char *key_authz);
void acme_auto_shm_token_unmirror(const char *token);
/* A new driver drops what a dead one left published. */
void acme_auto_shm_tokens_clear(void);
void acme_auto_shm_set_acme_pid(long pid);
/* Installs a new bundle (bumps the slot and global generations) and the
 * status fields derived from it. */
int acme_auto_shm_set_bundle(int slot, const char *pem, apr_size_t len,
    const acme_auto_slot_status_t *st);
/* Updates the status fields, keeps bundle and generation. */
void acme_auto_shm_set_status(int slot, const acme_auto_slot_status_t *st);
/* Runs fn on the slot's event record (acme_event.h) under the lock;
 * fn's result, 0 without shared memory. */
int acme_auto_shm_events(int slot, int (*fn)(acme_event_track_t *, void *),
    void *arg);
/* Only the challenge type of the current attempt. */
void acme_auto_shm_set_challenge(int slot, const char *type);
/* Only the state/step pair: "renewing" marks an order running (the other
 * states are derived when read, acme_job_status_view), step its step. */
void acme_auto_shm_set_step(int slot, const char *state, const char *step);
/* Renew / revoke requests (acme_control.h): asked by any child's status
 * handler (0, -1 on error), pending and taken by the driver. */
int acme_auto_shm_control_ask(int slot, acme_control_kind_t kind, int reason);
acme_control_kind_t acme_auto_shm_control_pending(int slot, int *reason);
acme_control_kind_t acme_auto_shm_control_take(int slot, int *reason);
/* An order aborted by a stop: its requests for the next driver
 * (acme_control_put_back). */
void acme_auto_shm_control_put_back(int slot, acme_control_kind_t kind,
    int reason, int revoked);
/* The order that took them ended, or its revoke was done (revoke 1):
 * acme_control_done. */
void acme_auto_shm_control_done(int slot, int revoke);
/* What a graceful restart asks again (acme_control_carry): the parent,
 * before the old generation's segment goes. */
acme_control_kind_t acme_auto_shm_control_carry(int slot, int *reason);

/* acme_auto_http01.c */
int acme_auto_post_read_request(request_rec *r);

/* acme_auto_alpn.c */
void acme_auto_alpn_register_hooks(void);

/* acme_auto_dns.c: common/io/acme_dns_publish.h for one order in its job
 * thread (blocking, every step bounded), with posix_spawn for the hook.
 * publish adds the TXT record and returns once every check server shows
 * it; unpublish removes it (the engine's UNPUBLISH, also after failures).
 * No records are kept here: the engine lists what is published. */
typedef struct acme_auto_dns_s acme_auto_dns_t;
acme_auto_dns_t *acme_auto_dns_new(acme_auto_issuer_t *iss, server_rec *s,
    const char *cert_id, int (*should_stop)(void *), void *stop_data);
int acme_auto_dns_publish(acme_auto_dns_t *d, const char *identifier,
    const char *key_authz, char *err, size_t errlen);
void acme_auto_dns_unpublish(acme_auto_dns_t *d, const char *identifier,
    const char *key_authz);
void acme_auto_dns_free(acme_auto_dns_t *d);

/* acme_auto_startup.c: the parent, as root */
/* post_config before mod_ssl and mod_watchdog: shared memory, stores,
 * the files for mod_ssl, the watchdog callback. */
int acme_auto_post_config(apr_pool_t *pconf, apr_pool_t *plog,
    apr_pool_t *ptemp, server_rec *s);
/* post_config after mod_ssl: warns about managed vhosts without SSL. */
int acme_auto_post_config_after_ssl(apr_pool_t *pconf, apr_pool_t *plog,
    apr_pool_t *ptemp, server_rec *s);
/* Writes placeholders, loads stored bundles into shm. */
int acme_auto_prepare_certs(server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp);
int acme_auto_add_cert_files(server_rec *s, apr_pool_t *p,
    apr_array_header_t *cert_files, apr_array_header_t *key_files);

/* acme_auto_inventory.c */
/* From the ssl_add_cert_files hook (parent, every SSL vhost): reads the
 * vhost's certificate files for the status, or notes the vhost as a user
 * of its managed certificates. */
void acme_auto_inventory_note(server_rec *s, apr_pool_t *p,
    apr_array_header_t *cert_files);
/* The status entries: certs[0..n) (acme_auto_g.certs order) get their
 * used_by and sans, the inventory's entries follow; *total of them, from
 * p. */
acme_status_cert_t *acme_auto_inventory_status(apr_pool_t *p,
    acme_status_cert_t *certs, int n, int *total, long long now);

/* acme_auto_ssl.c: the children */
int acme_auto_ssl_init_server(server_rec *s, apr_pool_t *p, int is_proxy,
    SSL_CTX *ctx);
void acme_auto_ssl_child_init(apr_pool_t *pchild, server_rec *s);
/* pre_connection / post_read_request hooks that tell when a connection may
 * still copy certificates out of mod_ssl's contexts */
void acme_auto_ssl_register_hooks(void);

/* A connection's c->conn_config for this module (create: allocate it in
 * c->pool; else NULL when there is none). */
typedef struct {
    int     in_flight;      /* counted by acme_auto_ssl.c */
    int     alpn_switched;  /* switched to acme-tls/1 (acme_auto_alpn.c) */
} acme_auto_conn_t;

acme_auto_conn_t *acme_auto_conn(conn_rec *c, int create);

/* acme_auto_jobs.c */
int acme_auto_jobs_register(server_rec *s, apr_pool_t *pconf);
void acme_auto_jobs_child_init(apr_pool_t *pchild);

/* mod_acme_auto.c: a pthread with every signal blocked, so that the
 * MPM's signal handlers (prefork runs its child exit inside one) always run
 * on the MPM's own threads.  0 or an errno. */
int acme_auto_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

/* acme_auto_events.c: the event program (common/core/acme_event.h).
 * emit queues an event for c (nothing without AcmeEventCommand; a full
 * queue drops it with a warning) and returns at once; the driving child's
 * event thread runs the program with acme_runner_posix.  Any thread. */
void acme_auto_event_emit(acme_auto_cert_t *c, server_rec *s,
    const char *event, const char *serial, long long not_after,
    const char *last_error);
/* The same with the facts of a status record. */
void acme_auto_event_emit_status(acme_auto_cert_t *c, server_rec *s,
    const char *event, const acme_auto_slot_status_t *st);
/* An order gave a certificate (had_cert: one was served before):
 * "issued" / "renewed" (acme_event_issued, rate limits reset). */
void acme_auto_event_issued(acme_auto_cert_t *c, server_rec *s,
    int had_cert, const acme_auto_slot_status_t *st);
/* An order failed: "failed", at most one an hour (acme_event_failed). */
void acme_auto_event_failed(acme_auto_cert_t *c, server_rec *s,
    const acme_auto_slot_status_t *st);
/* The watchdog's tick: "expiring", once a day (acme_event_expiring). */
void acme_auto_event_tick(acme_auto_cert_t *c, server_rec *s);
/* Stops the thread (a running program is killed) at the child's exit. */
void acme_auto_events_child_init(apr_pool_t *pchild);

/* acme_auto_status.c */
int acme_auto_status_handler(request_rec *r);
/* mod_status' status_hook (registered when mod_status is loaded) */
int acme_auto_status_hook(request_rec *r, int flags);
void acme_auto_status_cert(acme_auto_cert_t *c, long long now,
    const acme_auto_slot_status_t *st, acme_status_cert_t *out);

/* acme_auto_control.c: "AcmeStatusControl on", POST renew / revoke */
typedef struct {
    int  control;                       /* -1 unset */
} acme_auto_dir_conf_t;
void *acme_auto_create_dir_conf(apr_pool_t *p, char *dir);
void *acme_auto_merge_dir_conf(apr_pool_t *p, void *base, void *add);
int acme_auto_control_handler(request_rec *r);
/* Fills a status struct from a bundle PEM (serial, issuer, validity). */
int acme_auto_status_from_pem(const char *pem, apr_size_t len,
    acme_auto_slot_status_t *st);

#endif
