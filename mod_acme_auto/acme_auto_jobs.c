/*
 * Who drives ACME, and when.
 *
 * A mod_watchdog singleton watchdog: mod_watchdog runs its callback in
 * exactly one child at a time (a process mutex) and moves it to another
 * child when that one exits.  The callback itself never blocks: when it
 * starts and then once a second it looks which certificates are due and
 * starts one thread per certificate job (at most AcmeMaxOrders of an issuer
 * at once, the most urgent first: acme_job_pipeline), so a slow CA step for
 * one certificate never delays another.  A job runs the sans-I/O engine with the blocking transport
 * (acme_drive_blocking, every network step bounded by AcmeTimeout) and
 * publishes http-01 tokens into shared memory, where every child answers
 * them.  Results go to the store (atomic writes) and to shared memory,
 * where every child's refresh thread picks the new certificate up.
 *
 * An issued certificate the store refuses (read-only file system, disk
 * full) is installed in shared memory all the same, and written again
 * later from there by a job thread (job_resave_main) at the times of
 * acme_sched_unsaved_retry; no new order is started for it.
 *
 * Each attempt is recorded in state.json before its first step and the
 * record cleared when it ends, so a driving child that dies during an
 * order leaves it behind: the next driver counts it as a failure with
 * backoff (acme_sched_attempt_unfinished) instead of ordering at once.
 *
 * AcmeStore (several servers, one certificate: acme_fleet_node.h): the
 * driving child is this server's node.  A thread of its own (fleet_main)
 * does a round with the store every ACME_FLEET_SYNC_MS: the other nodes'
 * challenges mirrored into shared memory, a newer certificate handed to
 * its job, whose thread installs it as an issued one (job_install); a job
 * asks the store before ordering (job_claim), puts its challenges there
 * before the CA validates (hook_publish) and publishes the result.
 */
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <pthread.h>
#include <unistd.h>
#include <time.h>
#include <errno.h>

#include <openssl/crypto.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "mod_watchdog.h"

#include "mod_acme_auto.h"
#include "acme_ari.h"
#include "acme_cert.h"
#include "acme_engine.h"
#include "acme_failover.h"
#include "acme_job.h"
#include "acme_job_prep.h"
#include "acme_job_store.h"
#include "acme_keygen.h"
#include "acme_key.h"
#include "acme_sched.h"
#include "acme_store.h"
#include "acme_transport.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

#define STOP_JOIN_SECONDS   2

typedef struct {
    acme_auto_cert_t   *c;
    acme_auto_issuer_t *iss;            /* the CA of the current attempt:
                                           c->issuer or a fallback
                                           (job_issuer), set at spawn */
    server_rec         *s;
    pthread_t           thread;
    int                 running;        /* thread started, not joined */
    int                 finished;       /* set (atomically) by the thread */
    acme_cert_state_t   st;             /* persisted renewal state */
    acme_job_facts_t    f;              /* of the served certificate;
                                           f.seed: acme_job_seed(id) */
    long long           due_at;         /* as last shown in the status */
    const char         *change;         /* acme_job_change, as shown */
    const char         *last_step;
    const char         *type;           /* challenge of the current attempt */
    int                 resave;         /* the thread writes, no order */
    unsigned            unsaved_tries;  /* shm's bundle/state not stored: */
    long long           unsaved_at;     /* next write; 0 = all stored */
    char               *next_pem;       /* issued, served from the status'
                                           pending_at (acme_job_activate_at);
                                           NULL none; malloc'd */
    size_t              next_len;
    int                 next_unsaved;   /* the store refused it */
    int                 revoke;         /* the order revokes the served
                                           certificate first (a request at
                                           the status location) */
    int                 revoke_reason;  /* RFC 5280 code */
    acme_control_kind_t control;        /* the requests this order answers
                                           (acme_control_take) */
    int                 revoked;        /* its revocation is done */
    int                 ari;            /* the thread fetches renewalInfo
                                           (ARI), no order */
    char                ari_id[128];    /* the served certificate's ARI
                                           identifier; "" none (f.ari_id) */
    /* AcmeStore (acme_fleet_node.h); the job's own: */
    int                 install;        /* the thread installs the store's
                                           certificate (fleet_pem), no
                                           order */
    long long           fleet_next;     /* no claim before (WAIT, IDLE) */
    int                 fleet_order;    /* this order holds the store's
                                           lock (ORDER) */
    int                 fleet_alone;    /* this order runs without it
                                           (ORDER_ALONE) */
    /* under fleet_mu (the fleet thread's too): */
    char               *fleet_pem;      /* a newer record's bundle the sync
                                           received, installed by the job's
                                           thread (malloc'd); NULL none */
    size_t              fleet_len;
    long long           fleet_not_after;
    char                fleet_node[128];    /* who ordered that one */
    char                fleet_issuer[64];   /* its issuer block */
    int64_t             fleet_rev;      /* certs/<id> as last seen: its */
    long long           fleet_store_not_after;  /* revision, notAfter, */
    char                fleet_rec_node[128];    /* who ordered it */
    int                 fleet_unpublished;  /* ordered alone (or its record
                                               not written): the fleet
                                               thread publishes it */
    acme_auto_issuer_t *fleet_pub_iss;  /* the CA that issued it */
} job_t;

typedef struct {
    server_rec         *s;
    job_t              *jobs;
    int                 n_jobs;
    acme_job_pipe_t    *pipe;           /* a tick's queue, one per job */
} watch_t;

static int              stop_jobs;      /* atomic */

/*
 * AcmeStore: this node of the fleet (made by the parent in
 * acme_auto_jobs_register, inherited by every child; only the driving
 * child's copy sends requests), its sync thread in the driving child
 * (fleet_main), the store's state as the last round found it (atomic: 1
 * reachable, 0 not, -1 not asked yet) and the lock of the job_t fields the
 * sync thread shares.
 */
static acme_fleet_node_t *fleet;
static pthread_t          fleet_thread;
static int                fleet_running;    /* atomic */
static int                fleet_finished;   /* atomic */
static int                fleet_reachable = -1;
static pthread_mutex_t    fleet_mu = PTHREAD_MUTEX_INITIALIZER;
static int                fleet_on;         /* AcmeStore is configured */

/* seconds between two claims of a certificate another node orders */
#define FLEET_POLL_SEC      5

static pthread_mutex_t  account_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   account_cv = PTHREAD_COND_INITIALIZER;

static long long
now_sec(void)
{
    return (long long) time(NULL);
}

/* The ARI identifier (acme_ari_cert_id) of the certificate shared memory
 * serves into j->ari_id ("" none), and into the status. */
static void
job_load_ari_id(job_t *j)
{
    char                   *pem = NULL, err[ACME_ERRLEN];
    apr_size_t              len = 0;
    apr_uint32_t            gen;
    X509                   *leaf = NULL;
    acme_auto_slot_status_t st;

    j->ari_id[0] = '\0';
    if (acme_auto_shm_get_bundle(j->c->slot, &pem, &len, &gen) == 1
        && acme_bundle_parse(pem, len, NULL, &leaf, NULL, err,
                             sizeof(err)) == 0)
    {
        (void) acme_ari_cert_id(leaf, j->ari_id, sizeof(j->ari_id));
        X509_free(leaf);
    }
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    j->f.ari_id = j->ari_id;
    acme_auto_shm_get_status(j->c->slot, &st);
    acme_job_status_ari(&st, &j->st, j->ari_id);
    acme_auto_shm_set_status(j->c->slot, &st);
}

/* What the current certificate (in shared memory) is: validity, names. */
static void
job_load_facts(job_t *j)
{
    acme_cert_info_t info;
    char            *pem = NULL, err[ACME_ERRLEN];
    apr_size_t       len = 0;
    apr_uint32_t     gen;

    j->f.have_cert = 0;
    j->f.names_ok = 0;
    j->f.key_changed = 0;
    if (acme_auto_shm_get_bundle(j->c->slot, &pem, &len, &gen) != 1) {
        return;
    }
    memset(&info, 0, sizeof(info));
    if (acme_cert_info_from_pem(pem, len, &info, err, sizeof(err)) == 0) {
        j->f.have_cert = 1;
        j->f.not_before = info.not_before;
        j->f.not_after = info.not_after;
        j->f.names_ok = acme_cert_info_names_equal(&info, j->c->names,
                                                 j->c->n_names);
        j->f.key_changed = acme_cert_info_key_other(&info, j->c->key_type);
        acme_cert_info_free(&info);
    }
    free(pem);
}

/* A certificate valid from not_before is served at once, or kept until
 * the time acme_job_activate_at gives while the served one is valid.
 * Returns that time (0: at once).  st is the shm record of the served
 * certificate; when held, pem is the driver's (j->next_pem), st shows it
 * pending (the caller writes st), the log warns once. */
static long long
job_hold(job_t *j, char *pem, size_t len, const acme_auto_slot_status_t *nw,
    acme_auto_slot_status_t *st)
{
    long long now = now_sec(), at;
    char      msg[ACME_ERRLEN];

    at = acme_job_activate_at(nw->not_before, st->have_cert, st->not_after,
                              now, j->c->issuer->conf.clock_skew);
    if (at == 0) {
        return 0;
    }
    if (j->next_pem) {
        acme_bundle_free(j->next_pem, j->next_len);
    }
    j->next_pem = pem;
    j->next_len = len;
    j->f.pending_not_before = nw->not_before;
    j->f.pending_not_after = nw->not_after;
    acme_job_status_set_pending(st, at, nw->not_before, nw->not_after,
                                nw->serial, nw->ca_issuer, nw->spki_pin);
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: %s: %s",
                 j->c->id, acme_job_pending_text(nw->serial, nw->not_before,
                                                 now, at, msg, sizeof(msg)));
    return at;
}

/* The watchdog: a held certificate whose time has come is served. */
static void
job_activate(job_t *j, long long now)
{
    acme_auto_slot_status_t st;

    acme_auto_shm_get_status(j->c->slot, &st);
    if (j->next_pem == NULL || st.pending_at == 0 || st.pending_at > now) {
        return;
    }
    acme_job_status_activate(&st);
    if (acme_auto_shm_set_bundle(j->c->slot, j->next_pem, j->next_len,
                                 &st) != 0)
    {
        return;
    }
    acme_bundle_free(j->next_pem, j->next_len);
    j->next_pem = NULL;
    acme_job_facts_activate(&j->f);
    job_load_ari_id(j);
    j->due_at = -1;
    /* the store refused it: written again from shm now */
    j->unsaved_tries = j->next_unsaved;
    j->unsaved_at = j->next_unsaved ? now : 0;
    j->next_unsaved = 0;
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, j->s, "mod_acme_auto: %s: the "
                 "certificate that waited for its notBefore is served now",
                 j->c->id);
    acme_auto_event_emit_status(j->c, j->s, "installed", &st);
}

/* A bundle another driver wrote after our parent read the store (a child
 * of the previous generation finishing an order during a graceful
 * restart) is taken into shared memory, so it is served and not ordered
 * again.  Returns the notBefore of a newer stored certificate it took, else
 * 0. */
static long long
job_sync_from_disk(job_t *j)
{
    acme_auto_slot_status_t st, cur;
    char                   *pem = NULL, *shm_pem = NULL, err[ACME_ERRLEN];
    size_t                  len = 0;
    apr_size_t              shm_len = 0;
    apr_uint32_t            gen;
    int                     have_shm, rc;

    rc = acme_store_load_bundle(j->c->issuer->conf.state_dir, j->c->id, &pem,
                                &len, err, sizeof(err));
    have_shm = acme_auto_shm_get_bundle(j->c->slot, &shm_pem, &shm_len,
                                        &gen) == 1;
    if (have_shm && rc == 1 && shm_len == len
        && memcmp(shm_pem, pem, len) == 0)
    {
        free(shm_pem);
        free(pem);
        return 0;
    }
    free(shm_pem);
    acme_auto_shm_get_status(j->c->slot, &cur);
    memset(&st, 0, sizeof(st));
    st.orders = cur.orders;
    if (rc == 1 && len <= ACME_AUTO_BUNDLE_MAX
        && acme_bundle_parse(pem, len, NULL, NULL, NULL, err, sizeof(err)) == 0
        && acme_auto_status_from_pem(pem, len, &st) == 0
        && st.not_after > cur.not_after)
    {
        if (job_hold(j, pem, len, &st, &cur)) {
            /* not valid yet, the served one is: it waits (pem is j's) */
            acme_auto_shm_set_status(j->c->slot, &cur);
            return 0;
        }
        st.last_success = cur.last_success;
        if (j->c->issuer->key_rollover) {
            /* the other driver stored its next key with it */
            acme_job_store_next_pin_id(j->c->issuer->conf.state_dir,
                                       j->c->id, j->c->key_type,
                                       st.next_spki_pin,
                                       sizeof(st.next_spki_pin));
        }
        acme_auto_shm_set_bundle(j->c->slot, pem, len, &st);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s, "mod_acme_auto: %s:"
                     " took the newer stored certificate (serial %s)",
                     j->c->id, st.serial);
        free(pem);
        return st.not_before;
    }
    else if (have_shm) {
        /* served, newer than what is stored: a previous driver could not
         * store it; written again at once */
        j->unsaved_tries = 0;
        j->unsaved_at = now_sec();
    }
    free(pem);
    return 0;
}

/* The policy's due time (common/core/acme_job.h); Apache parses a bundle
 * when it installs it, so its facts are always loaded. */
static long long
job_due_at(job_t *j)
{
    long long at;

    (void) acme_job_due(&j->f, &j->st, &at);
    return at;
}

/* -- the job thread ------------------------------------------------------- */

typedef struct {
    job_t          *j;
    acme_engine_t  *e;
    EVP_PKEY       *akey;
    acme_auto_dns_t *dns;               /* dns-01 records of this order */
} drive_ctx_t;

static int hook_should_stop(void *data);
static void job_save_state(job_t *j, char *err);

static int
hook_publish(void *data, const char *type, const char *identifier,
    const char *token, const char *key_authz, char *err, size_t errlen)
{
    drive_ctx_t *d = data;
    int          alpn = strcmp(type, "tls-alpn-01") == 0;

    if (strcmp(type, "dns-01") == 0) {
        /* blocking (update, then wait for propagation), bounded */
        if (d->dns == NULL) {
            d->dns = acme_auto_dns_new(d->j->c->issuer, d->j->s, d->j->c->id,
                                       hook_should_stop, d);
            if (d->dns == NULL) {
                apr_cpystrn(err, "dns-01: out of memory", errlen);
                return -1;
            }
        }
        acme_auto_shm_set_step(d->j->c->slot, "renewing", "dns-01");
        /* a failure: the engine fails the order with err and unpublishes */
        return acme_auto_dns_publish(d->dns, identifier, key_authz, err,
                                     errlen);
    }
    if (!alpn && strcmp(type, "http-01") != 0) {
        apr_snprintf(err, errlen, "the %s challenge is not supported", type);
        return -1;
    }
    if (acme_auto_shm_token_add(alpn, identifier, token, key_authz) != 0) {
        apr_snprintf(err, errlen, "no room for the %s challenge of %s", type,
                     identifier);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, d->j->s, "mod_acme_auto: %s: "
                     "%s", d->j->c->id, err);
        return -1;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->j->s, "mod_acme_auto: %s: "
                 "%s challenge for %s published", d->j->c->id, type,
                 identifier);
    if (fleet != NULL && d->j->fleet_order) {
        size_t missing = 0;

        /* AcmeStore: every node answers it (the CA may reach any) */
        acme_auto_shm_set_step(d->j->c->slot, "renewing", "store-barrier");
        if (acme_fleet_node_challenge_put(fleet, d->j->c->id, type,
                                          identifier, token, key_authz,
                                          hook_should_stop, d, &missing, err,
                                          errlen) != 0)
        {
            /* unreachable, or the lock is gone: the order stops (the
             * engine fails it with err and unpublishes) */
            return -1;
        }
        else if (missing > 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->j->s,
                         "mod_acme_auto: %s: the %s challenge for %s is not"
                         " mirrored by %lu node(s) yet; a validation that "
                         "reaches one fails and is retried", d->j->c->id,
                         type, identifier, (unsigned long) missing);
        }
    }
    return 0;
}

static void
hook_unpublish(void *data, const char *type, const char *identifier,
    const char *token, const char *key_authz)
{
    drive_ctx_t *d = data;

    if (strcmp(type, "dns-01") == 0) {
        if (d->dns != NULL) {
            acme_auto_dns_unpublish(d->dns, identifier, key_authz);
        }
        return;
    }
    acme_auto_shm_token_remove(token);
    if (fleet != NULL && d->j->fleet_order) {
        acme_fleet_node_challenge_delete(fleet, token);
    }
}

static void
hook_note(void *data, const char *msg)
{
    drive_ctx_t *d = data;

    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->j->s, "mod_acme_auto: %s: "
                 "%s", d->j->c->id, msg);
}

static void
hook_account(void *data, const char *url, const char *refused)
{
    drive_ctx_t        *d = data;
    acme_auto_issuer_t *iss = d->j->iss;
    char                err[ACME_ERRLEN];
    int                 rc;

    if (refused != NULL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->j->s, "mod_acme_auto: "
                     "%s: the CA refused the stored account (%s); the account"
                     " key's account is %s", d->j->c->id, refused, url);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, d->j->s, "mod_acme_auto: "
                     "<AcmeIssuer %s>: account %s", iss->conf.name, url);
    }

    /* the jobs waiting for it go on with it */
    pthread_mutex_lock(&account_mu);
    (void) acme_account_gate_set(&iss->account_gate, d->akey, url);
    pthread_cond_broadcast(&account_cv);
    pthread_mutex_unlock(&account_mu);

    rc = acme_store_save_account(iss->conf.state_dir, iss->conf.directory,
                                 d->akey, url, err, sizeof(err));
    if (rc != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->j->s, "mod_acme_auto: "
                     "cannot save the account URL: %s; kept in memory, the "
                     "next order writes it again", err);
    }
    pthread_mutex_lock(&account_mu);
    acme_account_gate_stored(&iss->account_gate, url, rc == 0);
    pthread_mutex_unlock(&account_mu);
}

/* The order's first step revoked the served certificate at the CA: the
 * state and the status say "revoked" until the replacement the same order
 * goes on to get is served; the "revoked" event goes to the event
 * program. */
static void
hook_revoked(void *data)
{
    drive_ctx_t             *d = data;
    job_t                   *j = d->j;
    acme_auto_slot_status_t  st;
    const char              *why = acme_control_reason_name(j->revoke_reason);

    acme_auto_shm_get_status(j->c->slot, &st);
    j->revoked = 1;
    acme_job_revoked(&j->st, &st, now_sec());
    acme_auto_shm_set_status(j->c->slot, &st);
    job_save_state(j, NULL);
    /* the stored "revoked" orders the replacement after a restart */
    acme_auto_shm_control_done(j->c->slot, 1);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, j->s, "mod_acme_auto: %s: "
                 "serial %s revoked at the CA (reason %s); ordering its "
                 "replacement with a new key", j->c->id, st.serial,
                 why ? why : "none");
    /* "revoked": the event program (acme_event.h) */
    acme_auto_event_emit_status(j->c, j->s, acme_event_revoked(NULL), &st);
}

static int
hook_should_stop(void *data)
{
    drive_ctx_t *d = data;
    const char  *step = acme_engine_step(d->e);

    if (step != d->j->last_step) {
        d->j->last_step = step;
        acme_auto_shm_set_step(d->j->c->slot, "renewing", step);
    }
    return __atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE);
}

/* "mod_acme_auto/<version> Apache/<running version> OpenSSL/<version>",
 * made once per process */
static pthread_once_t   user_agent_once = PTHREAD_ONCE_INIT;
static char             user_agent[128];

static void
user_agent_init(void)
{
    ap_version_t  v;
    char          server[64];

    ap_get_server_revision(&v);
    apr_snprintf(server, sizeof(server), "Apache/%d.%d.%d", v.major, v.minor,
                 v.patch);
    acme_http_user_agent(user_agent, sizeof(user_agent), "mod_acme_auto",
                         server);
}

static const char *
job_user_agent(void)
{
    pthread_once(&user_agent_once, user_agent_init);
    return user_agent;
}

/* The issuer's and the certificate's settings, as common/ takes them. */
static void
job_conf(job_t *j, acme_job_conf_t *c)
{
    acme_auto_issuer_t *iss = j->iss;

    memset(c, 0, sizeof(*c));
    c->directory_url = iss->conf.directory;
    c->state_dir = iss->conf.state_dir;
    c->account_key_type = iss->conf.account_key;
    c->contacts = (const char *const *) iss->contacts->elts;
    c->n_contacts = iss->contacts->nelts;
    c->terms_agreed = iss->terms_agreed;
    c->eab = &iss->conf.eab;
    c->names = j->c->names;
    c->n_names = j->c->n_names;
    c->cert_key_type = j->c->key_type;
    c->preferred_chain = iss->conf.preferred_chain;
    c->cert_id = j->c->id;
    /* stored under the primary's AcmeStateDir (fallback=) */
    c->cert_root = j->c->issuer->conf.state_dir;
    c->key_reuse = j->c->issuer->key_reuse;
    c->key_rollover = j->c->issuer->key_rollover;
    /* replacing a certificate revoked on request: never its key */
    c->fresh_key = j->revoke;
    c->profile = iss->conf.profile;
    c->profile_require = iss->conf.profile_require;
}

/*
 * With no stored URL for the key, one job per issuer looks the account up
 * or creates it; the others wait here (bounded, stop-aware) and then use
 * its URL.  When that job ends without one, the next waiting job leads.
 * Returns the URL to use (malloc'd) or NULL to go on without one.
 */
static char *
account_wait(job_t *j, EVP_PKEY *key, int *unsaved)
{
    acme_auto_issuer_t *iss = j->iss;
    struct timespec     ts;
    char               *url = NULL;
    int                 rc, waits = 0, told = 0;

    pthread_mutex_lock(&account_mu);
    for ( ;; ) {
        rc = acme_account_gate_enter(&iss->account_gate, key, j, &url);
        if (rc != ACME_GATE_WAIT || waits++ >= ACME_ACCOUNT_WAIT_SEC
            || __atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE))
        {
            break;
        }
        if (!told) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s, "mod_acme_auto: %s:"
                         " waiting for the account of <AcmeIssuer %s> another "
                         "job is establishing", j->c->id, iss->conf.name);
            acme_auto_shm_set_step(j->c->slot, "renewing", "account-wait");
            told = 1;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&account_cv, &account_mu, &ts);
    }
    /* the store refused it: this order writes it again */
    *unsaved = rc == ACME_GATE_USE
               && acme_account_gate_unsaved(&iss->account_gate);
    pthread_mutex_unlock(&account_mu);
    return rc == ACME_GATE_USE ? url : NULL;
}

/* state.json; err (ACME_ERRLEN, or NULL) says why it was not written,
 * "" when it was. */
static void
job_save_state(job_t *j, char *err)
{
    char buf[ACME_ERRLEN];

    err = err ? err : buf;
    err[0] = '\0';
    if (acme_store_save_state(j->c->issuer->conf.state_dir, j->c->id, &j->st, err,
                              ACME_ERRLEN) != 0)
    {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: %s:"
                     " cannot save the renewal state: %s", j->c->id, err);
    }
}

/* A failure counted in j->st: persisted and into the status; order: it
 * ended an order of this driver (not one a gone process left). */
static void
job_record_failure(job_t *j, int order)
{
    acme_auto_slot_status_t st;
    char                    err[ACME_ERRLEN];

    job_save_state(j, err);
    acme_auto_shm_get_status(j->c->slot, &st);
    if (order) {
        acme_job_status_ordered(&st, 0, 0);
    }
    acme_job_status_end(&st, &j->st, job_due_at(j));
    if (err[0]) {
        /* cleared only by a stored bundle (job_succeeded) */
        apr_cpystrn(st.store_error, err, sizeof(st.store_error));
    }
    acme_auto_shm_set_status(j->c->slot, &st);
}

/* The CA's Retry-After on a failed order holds the whole issuer back. */
static void
issuer_pause(job_t *j, long long retry_after, long long now)
{
    acme_auto_issuer_t *iss = j->iss;
    long long           cur = __atomic_load_n(&iss->paused_until,
                                              __ATOMIC_ACQUIRE), at;

    do {
        at = acme_job_issuer_pause(cur, retry_after, now);
        if (at == cur) {
            return;
        }
    } while (!__atomic_compare_exchange_n(&iss->paused_until, &cur, at, 0,
                                          __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE));
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: "
                 "AcmeIssuer %s: the CA asks to wait: no new order for "
                 "%lld s", iss->conf.name, at - now);
}

static void
job_failed(job_t *j, const char *msg, long long retry_after)
{
    long long               now = now_sec();
    char                    buf[ACME_ERRLEN + 64];
    acme_auto_slot_status_t st;

    acme_job_failed(&j->st, j->type, msg, now, retry_after,
                    j->c->issuer->conf.retry_delay, j->f.seed);
    issuer_pause(j, retry_after, now);
    job_record_failure(j, 1);
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, j->s, "mod_acme_auto: %s: order "
                 "failed: %s", j->c->id,
                 acme_job_failure_text(&j->st, buf, sizeof(buf)));

    /* "failed", at most one an hour (acme_event.h) */
    acme_auto_shm_get_status(j->c->slot, &st);
    acme_auto_event_failed(j->c, j->s, &st);
}

/*
 * A new certificate (key_pem, chain: leaf first) is installed: the store
 * (bundle.pem, state.json), then shared memory, where every child swaps it
 * in (or held until its notBefore: job_hold).  The one path of a
 * certificate this node's order issued (from, NULL) and of one another
 * node of the fleet ordered (from: its name; iss: the issuer block of its
 * record).  Job thread only.  0, or -1 with err (nothing installed).
 */
static int
job_install(job_t *j, acme_auto_issuer_t *iss, const char *key_pem,
    size_t key_len, acme_job_next_t *next, const char *chain,
    size_t chain_len, const char *from, char *err, size_t errlen)
{
    acme_auto_slot_status_t st, cur;
    acme_cert_state_t       ok;
    acme_cert_info_t        info;
    char                   *blob, until[32], msg[2 * ACME_ERRLEN];
    size_t                  blob_len;
    long long               now = now_sec(), held;
    int                     stored, level;

    /* j->st changes only once the certificate is served: a failure
     * from here on counts on top of the earlier ones */
    ok = j->st;
    acme_job_succeeded(&ok, now, iss->conf.directory, iss->conf.name);
    memset(&info, 0, sizeof(info));
    err[0] = '\0';
    stored = acme_job_store_issued(j->c->issuer->conf.state_dir, j->c->id,
                                   key_pem, key_len, chain, chain_len, &ok,
                                   next, &info, err, errlen);
    blob = stored < 0 ? NULL : acme_bundle_join(key_pem, key_len, chain,
                                                chain_len, &blob_len);
    if (stored < 0 || blob == NULL || blob_len > ACME_AUTO_BUNDLE_MAX) {
        if (stored >= 0) {
            acme_cert_info_free(&info);
            acme_bundle_free(blob, blob_len);
            acme_err(err, errlen, "the issued certificate is unusable");
        }
        return -1;
    }

    /* a bundle the store refuses is served from memory all the same */
    memset(&st, 0, sizeof(st));
    acme_job_status_set_cert(&st, info.not_before, info.not_after,
                             info.serial, info.issuer, info.spki_pin);
    acme_cert_info_free(&info);
    j->st = ok;
    acme_auto_shm_get_status(j->c->slot, &cur);
    if (next->warn[0]) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: "
                     "%s: %s", j->c->id, next->warn);
    }
    if (j->c->issuer->key_rollover) {
        /* what next.key holds now */
        acme_job_status_set_next_pin(&cur, next->pin);
    }
    acme_job_status_set_next_pin(&st, cur.next_spki_pin);
    if (from == NULL) {
        acme_job_status_ordered(&cur, 1, cur.have_cert);
    }
    st.orders = cur.orders;
    /* AcmeStore: the status' "fleet" stays */
    acme_job_status_fleet(&st, cur.fleet_action, cur.fleet_holder);
    held = job_hold(j, blob, blob_len, &st, &cur);
    level = acme_job_issued_saved(stored, err, j->c->issuer->conf.state_dir,
                                  j->c->id, now, &j->unsaved_tries,
                                  &j->unsaved_at, held ? &cur : &st, msg,
                                  sizeof(msg));
    if (msg[0]) {
        ap_log_error(APLOG_MARK, level, 0, j->s, "mod_acme_auto: %s: %s",
                     j->c->id, msg);
    }
    if (held) {
        /* stored (or not) now, served later (job_activate): shm's bundle
         * is the old one, so a rewrite waits until then */
        j->next_unsaved = j->unsaved_at != 0;
        j->unsaved_at = 0;
        acme_job_status_end(&cur, &j->st, job_due_at(j));
        acme_auto_shm_set_status(j->c->slot, &cur);
        /* issued now, "installed" once served (job_activate) */
        if (from == NULL) {
            acme_auto_event_issued(j->c, j->s, cur.have_cert, &st);
        }
        return 0;
    }
    j->f.have_cert = 1;
    j->f.names_ok = 1;
    j->f.key_changed = 0;
    j->f.not_before = st.not_before;
    j->f.not_after = st.not_after;
    /* served at once: one that waited is obsolete */
    acme_bundle_free(j->next_pem, j->next_len);
    j->next_pem = NULL;
    j->next_unsaved = 0;
    j->f.pending_not_before = j->f.pending_not_after = 0;
    acme_job_status_end(&st, &j->st, job_due_at(j));
    acme_auto_shm_set_bundle(j->c->slot, blob, blob_len, &st);
    acme_bundle_free(blob, blob_len);
    /* its renewal information is fetched on the next tick */
    job_load_ari_id(j);

    if (from != NULL) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, j->s, "mod_acme_auto: "
                     "certificate %s installed from the shared store "
                     "(ordered by node %s), serial %s, valid until %s",
                     j->c->id, from, st.serial,
                     acme_time_rfc3339(st.not_after, until, sizeof(until)));
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, j->s, "mod_acme_auto: %s: "
                     "new certificate, serial %s, valid until %s; served "
                     "without restart", j->c->id, st.serial,
                     acme_time_rfc3339(st.not_after, until, sizeof(until)));
        /* "issued" / "renewed" (another node's order: only "installed") */
        acme_auto_event_issued(j->c, j->s, cur.have_cert, &st);
    }
    /* "installed": in shared memory, every child serves it from its next
     * check (25 ms) */
    acme_auto_event_emit_status(j->c, j->s, "installed", &st);
    if (!cur.have_cert && j->c->bridge != NULL) {
        /* the first one since the start: the bridge is not served again */
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, j->s, "mod_acme_auto: %s: "
                     "%s", j->c->id, acme_job_bridge_retired_text(
                         j->c->bridge, st.serial, msg, sizeof(msg)));
    }
    return 0;
}

static int
job_succeeded(job_t *j, EVP_PKEY *cert_key, acme_job_next_t *next,
    const char *chain, size_t chain_len, char *err, size_t errlen)
{
    char   *key_pem;
    size_t  key_len;
    int     rc;

    key_pem = acme_key_to_pem(cert_key, &key_len);
    if (key_pem == NULL) {
        return acme_err(err, errlen, "cannot serialise the certificate key");
    }
    rc = job_install(j, j->iss, key_pem, key_len, next, chain, chain_len,
                     NULL, err, errlen);
    acme_bundle_free(key_pem, key_len);
    return rc;
}

/* -- AcmeStore: the fleet (acme_fleet_node.h) ---------------------------- */

/* The status' "fleet" of the certificate: what this node did last, and
 * the node that orders it while this one waits. */
static void
job_status_fleet(job_t *j, acme_fleet_action_t a, const char *holder)
{
    acme_auto_slot_status_t st;

    acme_auto_shm_get_status(j->c->slot, &st);
    acme_job_status_fleet(&st, acme_fleet_action_name(a),
                          holder && holder[0] ? holder : NULL);
    acme_auto_shm_set_status(j->c->slot, &st);
}

/* The issuer block a record names among the certificate's (fallback=
 * included), else its primary. */
static acme_auto_issuer_t *
job_issuer_named(job_t *j, const char *name)
{
    int i;

    for (i = 0; name != NULL && i < j->c->n_issuers; i++) {
        if (strcmp(j->c->issuers[i]->conf.name, name) == 0) {
            return j->c->issuers[i];
        }
    }
    return j->c->issuer;
}

/* Installs a certificate of the shared store (a bundle: key PEM, then the
 * chain) as if this node's order had issued it (job_install).  Job thread
 * only.  0, or -1 (logged). */
static int
job_install_bundle(job_t *j, const char *bundle, size_t len,
    const char *from, const char *issuer)
{
    acme_job_next_t  next;
    size_t           at;
    char             err[ACME_ERRLEN];

    memset(&next, 0, sizeof(next));
    at = acme_bundle_split(bundle, len);
    if (at == 0) {
        apr_cpystrn(err, "no key and chain in the record", sizeof(err));
    }
    else if (job_install(j, job_issuer_named(j, issuer), bundle, at, &next,
                         bundle + at, len - at, from && from[0] ? from : "?",
                         err, sizeof(err)) == 0)
    {
        return 0;
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: %s: "
                 "cannot install the shared store's certificate: %s",
                 j->c->id, err);
    return -1;
}

/* A job thread installing what the sync received (job_t.fleet_pem). */
static void *
job_install_main(void *arg)
{
    job_t     *j = arg;
    char      *pem, node[sizeof(j->fleet_node)];
    char       issuer[sizeof(j->fleet_issuer)];
    size_t     len;
    long long  not_after;

    pthread_mutex_lock(&fleet_mu);
    pem = j->fleet_pem;
    len = j->fleet_len;
    not_after = j->fleet_not_after;
    j->fleet_pem = NULL;
    j->fleet_not_after = 0;
    apr_cpystrn(node, j->fleet_node, sizeof(node));
    apr_cpystrn(issuer, j->fleet_issuer, sizeof(issuer));
    pthread_mutex_unlock(&fleet_mu);
    /* still newer than the one served (or held) */
    if (pem != NULL && not_after > j->f.not_after
        && not_after > j->f.pending_not_after
        && job_install_bundle(j, pem, len, node, issuer) == 0)
    {
        job_status_fleet(j, ACME_FLEET_INSTALL, NULL);
    }
    acme_bundle_free(pem, len);
    OPENSSL_thread_stop();      /* as in job_main */
    __atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int
job_install_pending(job_t *j)
{
    int pending;

    pthread_mutex_lock(&fleet_mu);
    pending = j->fleet_pem != NULL;
    pthread_mutex_unlock(&fleet_mu);
    return pending;
}

/*
 * Before ordering, with AcmeStore: the fleet's decision for this
 * certificate (acme_fleet_node_claim; without a node, the one of an
 * unreachable store).  Returns 1 to order (j->fleet_order: under the
 * store's lock; j->fleet_alone: without it), 0 not (installed from the
 * store, another node orders, nothing to do): no attempt, no failure, the
 * next look at j->fleet_next.
 */
static int
job_claim(job_t *j)
{
    acme_fleet_facts_t   f;
    acme_fleet_claim_t   out;
    acme_fleet_action_t  a;
    long long            now;
    struct timespec      ts = { 0, 50 * 1000000L };
    char                 at[32];
    int                  i;

    j->fleet_order = 0;
    j->fleet_alone = 0;
    /* the first round with the store comes first (at most 3 s): whether
     * it answers, and who ordered the records it holds */
    for (i = 0; i < 60 && fleet != NULL
                && __atomic_load_n(&fleet_reachable, __ATOMIC_ACQUIRE) < 0
                && !__atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE); i++)
    {
        nanosleep(&ts, NULL);
    }
    memset(&f, 0, sizeof(f));
    memset(&out, 0, sizeof(out));
    now = now_sec();
    f.now = now;
    f.due = 1;
    if (j->f.have_cert) {
        f.local_not_before = j->f.not_before;
        f.local_not_after = j->f.not_after;
    }
    pthread_mutex_lock(&fleet_mu);
    f.local_unpublished = j->fleet_unpublished;
    pthread_mutex_unlock(&fleet_mu);
    f.store_reachable = __atomic_load_n(&fleet_reachable, __ATOMIC_ACQUIRE)
                        != 0 && fleet != NULL;
    f.poll = FLEET_POLL_SEC;
    if (fleet != NULL) {
        a = acme_fleet_node_claim(fleet, j->c->id, &f, &out);
    }
    else {
        /* the node could not be made (logged at the start): as if the
         * store were unreachable */
        a = out.action = acme_fleet_next(&f, &out.next_check);
    }
    j->fleet_next = out.next_check;
    job_status_fleet(j, a, a == ACME_FLEET_WAIT ? out.holder : NULL);
    if (out.err[0]) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s, "mod_acme_auto: %s: "
                     "shared store: %s", j->c->id, out.err);
    }
    switch (a) {
    case ACME_FLEET_INSTALL:
        if (out.bundle != NULL) {
            char node[sizeof(j->fleet_rec_node)];

            /* the claim names who ordered it, else the last round did */
            pthread_mutex_lock(&fleet_mu);
            apr_cpystrn(node, out.holder[0] ? out.holder : j->fleet_rec_node,
                        sizeof(node));
            pthread_mutex_unlock(&fleet_mu);
            (void) job_install_bundle(j, out.bundle, out.bundle_len, node,
                                      NULL);
        }
        break;
    case ACME_FLEET_ORDER:
        j->fleet_order = fleet != NULL;
        acme_fleet_claim_free(&out);
        return 1;
    case ACME_FLEET_ORDER_ALONE:
        j->fleet_alone = 1;
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: %s:"
                     " the shared store is unreachable and %s: ordering "
                     "without the store's lock; published once the store "
                     "answers", j->c->id, j->f.have_cert
                     ? "the certificate is about to expire"
                     : "no certificate is served yet");
        acme_fleet_claim_free(&out);
        return 1;
    case ACME_FLEET_WAIT:
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s, "mod_acme_auto: %s: "
                     "node %s orders it; looking again at %s", j->c->id,
                     out.holder[0] ? out.holder : "?",
                     acme_time_rfc3339(j->fleet_next, at, sizeof(at)));
        break;
    default:
        /* IDLE; PUBLISH: the sync thread publishes (fleet_publish) */
        break;
    }
    acme_fleet_claim_free(&out);
    return 0;
}

/* A record of the certificate just issued, written while this node holds
 * its lock (j->fleet_order); an order alone, or a record the store could not
 * take now, is left to the sync thread (fleet_publish). */
static void
job_fleet_publish(job_t *j, EVP_PKEY *ckey, const char *chain,
    size_t chain_len)
{
    acme_fleet_record_t rec;
    acme_kv_status_t    rc;
    char               *key_pem, *chain_z, err[ACME_ERRLEN];
    size_t              key_len;

    if (!j->fleet_order) {
        pthread_mutex_lock(&fleet_mu);
        j->fleet_unpublished = 1;
        j->fleet_pub_iss = j->iss;
        pthread_mutex_unlock(&fleet_mu);
        return;
    }
    key_pem = acme_key_to_pem(ckey, &key_len);
    chain_z = key_pem != NULL ? strndup(chain, chain_len) : NULL;
    if (chain_z == NULL) {
        acme_bundle_free(key_pem, key_len);
        acme_fleet_node_release(fleet, j->c->id);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: %s:"
                     " not published to the shared store: out of memory",
                     j->c->id);
        return;
    }
    memset(&rec, 0, sizeof(rec));
    rec.chain_pem = chain_z;
    rec.key_pem = key_pem;
    rec.node = acme_fleet_node_name(fleet);
    rec.issuer = j->iss->conf.name;
    rec.directory = j->iss->conf.directory;
    rec.issued_at = now_sec();
    err[0] = '\0';
    rc = acme_fleet_node_publish(fleet, j->c->id, &rec, 0, err, sizeof(err));
    acme_bundle_free(key_pem, key_len);
    free(chain_z);
    switch (rc) {
    case ACME_KV_OK:
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s, "mod_acme_auto: %s: "
                     "published to the shared store", j->c->id);
        break;
    case ACME_KV_FENCED:
    case ACME_KV_CONFLICT:
        /* another node may have ordered: its record is installed when
         * newer (the sync) */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: %s:"
                     " not published to the shared store (%s): %s; serving "
                     "it, the store's is installed when newer", j->c->id,
                     acme_kv_status_name(rc), err);
        break;
    default:
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: %s:"
                     " not published to the shared store yet (%s): %s",
                     j->c->id, acme_kv_status_name(rc), err);
        pthread_mutex_lock(&fleet_mu);
        j->fleet_unpublished = 1;
        j->fleet_pub_iss = j->iss;
        pthread_mutex_unlock(&fleet_mu);
        break;
    }
}

/* The engine's message, with the issuer named where the account is at
 * fault (External Account Binding missing or refused): the fix is in
 * that <AcmeIssuer> block, which may serve several certificates. */
static const char *
engine_error(acme_auto_issuer_t *iss, acme_engine_t *e)
{
    static __thread char buf[ACME_ERRLEN + 256];
    char                 name[256];

    apr_snprintf(name, sizeof(name), "<AcmeIssuer %s>", iss->conf.name);
    return acme_job_eab_hint(acme_engine_error(e), name,
                             "AcmeExternalAccountBinding", iss->conf.eab.kid, buf,
                             sizeof(buf));
}

/* The served leaf (shared memory) as DER (*der OPENSSL_malloc'd), its
 * length; 0 when none. */
static size_t
job_served_der(job_t *j, unsigned char **der)
{
    char         *pem = NULL, err[ACME_ERRLEN];
    apr_size_t    len = 0;
    apr_uint32_t  gen;
    X509         *leaf = NULL;
    int           n = 0;

    *der = NULL;
    if (acme_auto_shm_get_bundle(j->c->slot, &pem, &len, &gen) == 1
        && acme_bundle_parse(pem, len, NULL, &leaf, NULL, err,
                             sizeof(err)) == 0)
    {
        n = i2d_X509(leaf, der);
        X509_free(leaf);
    }
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    return n > 0 ? (size_t) n : 0;
}

/* The blocking transport's options for the issuer's CA; *proxy (zeroed by
 * the caller, freed with acme_proxy_free) holds the AcmeProxy the
 * options point to.  0, or -1 with err. */
static int
job_transport(job_t *j, acme_transport_opts_t *to, acme_proxy_t *proxy,
    char *err, size_t errlen)
{
    /* the attempt's CA: a fallback= issuer has its own CA file and proxy */
    acme_auto_issuer_t *iss = j->iss != NULL ? j->iss : j->c->issuer;

    memset(to, 0, sizeof(*to));
    to->ca_file = iss->ca_copy;
    to->verify = 1;
    to->connect_timeout_ms = iss->conf.timeout_ms < 10000
                             ? iss->conf.timeout_ms : 10000;
    to->io_timeout_ms = iss->conf.timeout_ms;
    to->total_timeout_ms = iss->conf.timeout_ms * 2;
    to->user_agent = job_user_agent();
    /* checked when the configuration was read (AcmeProxy) */
    if (iss->conf.proxy != NULL) {
        if (acme_proxy_parse(iss->conf.proxy, proxy, err, errlen) != 0) {
            return -1;
        }
        to->proxy = proxy;
    }
    return 0;
}

static int
ari_should_stop(void *data)
{
    (void) data;
    return __atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE);
}

/* A job thread fetching the served certificate's renewal information
 * (ARI, RFC 9773): the window into state.json and the status; an error
 * is logged and retried later, the lifetime rule decides meanwhile. */
static void *
job_ari_main(void *arg)
{
    job_t                  *j = arg;
    acme_auto_issuer_t     *iss = j->c->issuer;
    acme_order_config_t     oc;
    acme_transport_opts_t   to;
    acme_driver_hooks_t     hooks;
    acme_engine_t          *e = NULL;
    acme_auto_slot_status_t st;
    acme_proxy_t            proxy;
    char                    err[ACME_ERRLEN], msg[2 * ACME_ERRLEN];
    int                     rc, level;

    memset(&proxy, 0, sizeof(proxy));
    memset(&oc, 0, sizeof(oc));
    oc.directory_url = iss->conf.directory;
    oc.ari_only = 1;
    oc.ari_id = j->ari_id;
    err[0] = '\0';
    e = acme_engine_new(&oc, err, sizeof(err));
    if (e == NULL) {
        goto done;
    }
    if (job_transport(j, &to, &proxy, err, sizeof(err)) != 0) {
        acme_engine_free(e);
        e = NULL;
        goto done;
    }
    memset(&hooks, 0, sizeof(hooks));
    hooks.should_stop = ari_should_stop;
    rc = acme_drive_blocking(e, &to, &hooks);
    if (__atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE)) {
        goto done;
    }
    level = acme_ari_fetched(&j->st, j->ari_id, e, rc == 0, now_sec(),
                             iss->conf.ari_poll, j->f.seed, msg,
                             sizeof(msg));
    ap_log_error(APLOG_MARK, level, 0, j->s, "mod_acme_auto: %s: %s",
                 j->c->id, msg);
    job_save_state(j, NULL);
    acme_auto_shm_get_status(j->c->slot, &st);
    acme_job_status_ari(&st, &j->st, j->ari_id);
    acme_auto_shm_set_status(j->c->slot, &st);

done:
    if (err[0] && e == NULL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, j->s, "mod_acme_auto: %s: "
                     "renewal information (ARI): %s", j->c->id, err);
    }
    acme_engine_free(e);
    acme_proxy_free(&proxy);
    OPENSSL_thread_stop();      /* as in job_main */
    __atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *
job_main(void *arg)
{
    job_t                *j = arg;
    acme_auto_issuer_t   *iss = j->iss;
    acme_job_conf_t       conf;
    acme_order_config_t   oc;
    acme_transport_opts_t to;
    acme_proxy_t          proxy;
    acme_driver_hooks_t   hooks;
    drive_ctx_t           d;
    EVP_PKEY             *akey = NULL, *ckey = NULL;
    acme_job_next_t       next;
    unsigned char        *der = NULL;
    size_t                der_len = 0;
    acme_engine_t        *e = NULL;
    char                 *account_url = NULL, *csr = NULL, err[ACME_ERRLEN];
    char                  warn[ACME_ERRLEN];
    const char           *chain;
    size_t                chain_len;
    int                   rc, unsaved = 0, aborted = 0;

    err[0] = '\0';
    memset(&proxy, 0, sizeof(proxy));
    memset(&next, 0, sizeof(next));
    j->last_step = NULL;
    j->fleet_order = j->fleet_alone = 0;
    if (fleet_on && !job_claim(j)) {
        /* installed from the shared store, or another node orders: no
         * attempt; the renew / revoke requests wait for a later one */
        aborted = 1;
        acme_auto_shm_control_put_back(j->c->slot, j->control,
                                       j->revoke_reason, j->revoked);
        goto done;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s, "mod_acme_auto: %s: "
                 "attempt with the %s challenge", j->c->id, j->type);

    /* recorded before anything else: a crash from here on counts */
    acme_sched_attempt_begin(&j->st, now_sec(), (long) getpid());
    job_save_state(j, NULL);

    acme_auto_shm_set_challenge(j->c->slot, j->type);
    acme_auto_shm_set_step(j->c->slot, "renewing", "account-key");
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s, "mod_acme_auto: %s: "
                 "ordering a certificate from %s", j->c->id, iss->conf.directory);

    job_conf(j, &conf);
    if (acme_job_account_key(&conf, &akey, &account_url, warn, sizeof(warn),
                             err, sizeof(err)) != 0)
    {
        job_failed(j, err, 0);
        goto done;
    }
    if (warn[0]) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: "
                     "%s: %s", j->c->id, warn);
    }
    if (account_url == NULL) {
        account_url = account_wait(j, akey, &unsaved);
        if (__atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE)) {
            goto done;
        }
    }
    acme_auto_shm_set_step(j->c->slot, "renewing", "key");
    /* RSA keygen and the CSR's signature: at the lowest priority */
    if (acme_job_cert_key_csr(&conf, &ckey, NULL, NULL, &csr, &next, err,
                              sizeof(err)) != 0)
    {
        job_failed(j, err, 0);
        goto done;
    }
    if (next.warn[0]) {
        /* AcmeKeyRollover: next.key was not usable */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s, "mod_acme_auto: "
                     "%s: %s", j->c->id, next.warn);
        next.warn[0] = '\0';
    }

    acme_job_order_config(&oc, &conf, j->type, akey, account_url, ckey);
    oc.account_unsaved = unsaved;
    oc.csr_b64 = csr;
    /* RFC 9773: the served certificate is the one replaced (not one of
     * another CA, nor a revoked one: the CA knows nothing of it) */
    if (j->f.have_cert && !j->revoke && !j->st.revoked
        && !acme_job_issuer_changed(&j->st, iss->conf.directory))
    {
        oc.ari_id = j->ari_id;
    }
    if (j->revoke) {
        /* "revoke": the served certificate first (acme_control.h) */
        der_len = job_served_der(j, &der);
        if (der_len == 0) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, j->s, "mod_acme_auto: "
                         "%s: no certificate to revoke is served; ordering "
                         "a new one only", j->c->id);
        }
        oc.revoke_der = der;
        oc.revoke_der_len = der_len;
        oc.revoke_reason = j->revoke_reason;
    }
    e = acme_engine_new(&oc, err, sizeof(err));
    if (e == NULL) {
        job_failed(j, err, 0);
        goto done;
    }

    if (job_transport(j, &to, &proxy, err, sizeof(err)) != 0) {
        job_failed(j, err, 0);
        goto done;
    }

    memset(&d, 0, sizeof(d));
    d.j = j;
    d.e = e;
    d.akey = akey;
    memset(&hooks, 0, sizeof(hooks));
    hooks.data = &d;
    hooks.publish = hook_publish;
    hooks.unpublish = hook_unpublish;
    hooks.account = hook_account;
    hooks.should_stop = hook_should_stop;
    hooks.note = hook_note;
    hooks.revoked = hook_revoked;

    rc = acme_drive_blocking(e, &to, &hooks);
    acme_auto_dns_free(d.dns);
    d.dns = NULL;
    if (__atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE)) {
        /* shutting down: not a failure, the next driver resumes, and
         * answers the renew / revoke requests this order took */
        aborted = 1;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, j->s, "mod_acme_auto: "
                     "%s: order aborted (restart or stop); the next "
                     "driver orders again%s", j->c->id,
                     j->control == ACME_CONTROL_NONE ? ""
                     : j->control == ACME_CONTROL_REVOKE && j->revoked
                     ? " (the revoke was done)"
                     : ", answering the renew / revoke request");
        acme_auto_shm_control_put_back(j->c->slot, j->control,
                                       j->revoke_reason, j->revoked);
        acme_sched_attempt_end(&j->st);
        job_save_state(j, NULL);
        acme_auto_shm_set_step(j->c->slot,
                               j->f.have_cert ? "valid" : "fallback", NULL);
        goto done;
    }
    if (rc != 0) {
        /* a failed publish is the engine's error too */
        job_failed(j, engine_error(iss, e), acme_engine_retry_after(e));
        goto done;
    }
    chain = acme_engine_certificate(e, &chain_len);
    if (chain != NULL && acme_engine_chain_note(e) != NULL) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s, "mod_acme_auto: %s: "
                     "AcmePreferredChain: %s", j->c->id,
                     acme_engine_chain_note(e));
    }
    if (chain == NULL
        || job_succeeded(j, ckey, &next, chain, chain_len, err,
                         sizeof(err)) != 0)
    {
        job_failed(j, chain ? err : "no certificate after DONE", 0);
    }
    else {
        acme_auto_shm_set_challenge(j->c->slot, j->type);
        if (j->fleet_order || j->fleet_alone) {
            /* the record for the other nodes (then the lock goes) */
            job_fleet_publish(j, ckey, chain, chain_len);
            j->fleet_order = 0;
        }
    }

done:
    if (j->fleet_order) {
        /* an aborted order gives the lock back; a failed one keeps it
         * until its next attempt, so the fleet backs off as one server
         * would (the other nodes wait) */
        if (aborted) {
            acme_fleet_node_release(fleet, j->c->id);
        } else {
            acme_fleet_node_release_until(fleet, j->c->id,
                                          j->st.next_attempt);
        }
        j->fleet_order = 0;
    }
    if (!aborted) {
        /* issued or failed: the requests it took are answered (a restart
         * before this carries them: acme_control_carry) */
        acme_auto_shm_control_done(j->c->slot, 0);
    }
    /* a leader that ends without an account lets the next job try */
    pthread_mutex_lock(&account_mu);
    acme_account_gate_leave(&iss->account_gate, j);
    pthread_cond_broadcast(&account_cv);
    pthread_mutex_unlock(&account_mu);

    acme_engine_free(e);
    acme_proxy_free(&proxy);
    EVP_PKEY_free(akey);
    EVP_PKEY_free(ckey);
    acme_job_next_free(&next);
    OPENSSL_free(der);
    free(account_url);
    free(csr);
    /* no OpenSSL thread state left for the thread's exit to free while
     * the child's exit() runs OpenSSL's atexit cleanup (docs/host-notes) */
    OPENSSL_thread_stop();
    __atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* A job thread writing what shared memory serves and the store refused
 * (bundle.pem, then state.json) again. */
static void *
job_resave_main(void *arg)
{
    job_t                  *j = arg;
    acme_auto_slot_status_t st;
    char                   *pem = NULL, err[ACME_ERRLEN];
    char                    msg[2 * ACME_ERRLEN];
    apr_size_t              len = 0;
    apr_uint32_t            gen;
    int                     rc, level;

    err[0] = '\0';
    if (acme_auto_shm_get_bundle(j->c->slot, &pem, &len, &gen) != 1) {
        /* nothing served: nothing to keep */
        j->unsaved_at = 0;
        goto done;
    }
    rc = acme_job_store_resave(j->c->issuer->conf.state_dir, j->c->id, pem, len,
                               &j->st, err, sizeof(err));
    OPENSSL_cleanse(pem, len);
    free(pem);
    acme_auto_shm_get_status(j->c->slot, &st);
    level = acme_job_resaved(rc, err, j->c->issuer->conf.state_dir, j->c->id,
                             now_sec(), &j->unsaved_tries, &j->unsaved_at,
                             &st, msg, sizeof(msg));
    acme_auto_shm_set_status(j->c->slot, &st);
    ap_log_error(APLOG_MARK, level, 0, j->s, "mod_acme_auto: %s: %s",
                 j->c->id, msg);

done:
    OPENSSL_thread_stop();      /* as in job_main */
    __atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* -- AcmeStore: the sync thread ------------------------------------------- */

/* The fleet's pending challenges into shared memory, where every child
 * answers them (marked mirrored: this node's own are never touched), and
 * the ones gone out of it.  1 when every one listed is mirrored. */
static int
fleet_mirror(watch_t *w, const acme_fleet_sync_t *sy, int *told_full)
{
    const char *me = acme_fleet_node_name(fleet);
    size_t      i, failed = 0;

    for (i = 0; i < sy->n_chals; i++) {
        const acme_fleet_chal_t *c = &sy->chals[i];
        int                      alpn;

        if (c->node != NULL && me != NULL && strcmp(c->node, me) == 0) {
            continue;           /* ours: published by our order */
        }
        alpn = c->type != NULL && strcmp(c->type, "tls-alpn-01") == 0;
        if (!alpn && (c->type == NULL || strcmp(c->type, "http-01") != 0)) {
            continue;
        }
        if (acme_auto_shm_token_mirror(alpn, c->identifier, c->token,
                                       c->key_authz) != 0)
        {
            failed++;
        }
    }
    for (i = 0; i < sy->n_gone; i++) {
        acme_auto_shm_token_unmirror(sy->gone[i]);
    }
    if (failed && !*told_full) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s, "mod_acme_auto: "
                     "AcmeStore: %lu challenge(s) of other nodes do not fit "
                     "in shared memory (or are malformed): not answered here",
                     (unsigned long) failed);
    }
    *told_full = failed != 0;
    return failed == 0;
}

/* The certificate records that changed: one of this server's certificates
 * newer than the one served goes to its job, whose thread installs it
 * (job_install_main, started by the next tick). */
static void
fleet_certs(watch_t *w, const acme_fleet_sync_t *sy)
{
    size_t                  i;
    int                     k;
    acme_auto_slot_status_t st;

    for (i = 0; i < sy->n_certs; i++) {
        const acme_fleet_cert_t *r = &sy->certs[i];

        for (k = 0; k < w->n_jobs; k++) {
            job_t *j = &w->jobs[k];
            char  *copy;

            if (r->id == NULL || strcmp(j->c->id, r->id) != 0) {
                continue;
            }
            if (r->err[0] || r->bundle == NULL) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s,
                             "mod_acme_auto: %s: the shared store's record "
                             "is not usable: %s", j->c->id,
                             r->err[0] ? r->err : "no certificate");
                continue;
            }
            acme_auto_shm_get_status(j->c->slot, &st);
            pthread_mutex_lock(&fleet_mu);
            j->fleet_rev = r->revision;
            j->fleet_store_not_after = r->not_after;
            apr_cpystrn(j->fleet_rec_node, r->node ? r->node : "",
                        sizeof(j->fleet_rec_node));
            if (r->not_after > st.not_after
                && r->not_after > st.pending_not_after
                && r->not_after > j->fleet_not_after
                && (copy = malloc(r->bundle_len + 1)) != NULL)
            {
                memcpy(copy, r->bundle, r->bundle_len);
                copy[r->bundle_len] = '\0';
                acme_bundle_free(j->fleet_pem, j->fleet_len);
                j->fleet_pem = copy;
                j->fleet_len = r->bundle_len;
                j->fleet_not_after = r->not_after;
                apr_cpystrn(j->fleet_node, r->node ? r->node : "",
                            sizeof(j->fleet_node));
                apr_cpystrn(j->fleet_issuer, r->issuer ? r->issuer : "",
                            sizeof(j->fleet_issuer));
            }
            pthread_mutex_unlock(&fleet_mu);
        }
    }
}

/* A certificate this node ordered alone (or whose record the store could
 * not take then) is published once the store answers, only if certs/<id>
 * is still as the sync last saw it and older. */
static void
fleet_publish(watch_t *w)
{
    int k;

    for (k = 0; k < w->n_jobs; k++) {
        job_t               *j = &w->jobs[k];
        acme_auto_issuer_t  *iss;
        acme_fleet_record_t  rec;
        acme_kv_status_t     rc;
        int64_t              rev;
        long long            store_na, not_before, not_after, next_check;
        acme_fleet_facts_t   f;
        char                *pem = NULL, *key_pem = NULL;
        char                 err[ACME_ERRLEN];
        size_t               len = 0, at;
        apr_size_t           shm_len = 0;
        apr_uint32_t         gen;
        acme_cert_info_t     info;

        pthread_mutex_lock(&fleet_mu);
        if (!j->fleet_unpublished) {
            pthread_mutex_unlock(&fleet_mu);
            continue;
        }
        rev = j->fleet_rev;
        store_na = j->fleet_store_not_after;
        iss = j->fleet_pub_iss ? j->fleet_pub_iss : j->c->issuer;
        pthread_mutex_unlock(&fleet_mu);

        /* what is stored here (the newest), else what is served */
        if (acme_store_load_bundle(j->c->issuer->conf.state_dir, j->c->id,
                                   &pem, &len, err, sizeof(err)) != 1)
        {
            free(pem);
            pem = NULL;
            if (acme_auto_shm_get_bundle(j->c->slot, &pem, &shm_len,
                                         &gen) != 1)
            {
                free(pem);
                continue;
            }
            len = shm_len;
        }
        memset(&info, 0, sizeof(info));
        at = acme_bundle_split(pem, len);
        if (at == 0
            || acme_cert_info_from_pem(pem, len, &info, err,
                                       sizeof(err)) != 0)
        {
            acme_bundle_free(pem, len);
            continue;
        }
        not_before = info.not_before;
        not_after = info.not_after;
        acme_cert_info_free(&info);
        memset(&f, 0, sizeof(f));
        f.now = now_sec();
        f.local_not_before = not_before;
        f.local_not_after = not_after;
        f.local_unpublished = 1;
        f.store_reachable = 1;
        f.store_has_record = store_na != 0;
        f.store_not_after = store_na;
        f.poll = FLEET_POLL_SEC;
        if (acme_fleet_next(&f, &next_check) != ACME_FLEET_PUBLISH) {
            /* the store's is as new or newer: installed from there */
            pthread_mutex_lock(&fleet_mu);
            j->fleet_unpublished = 0;
            pthread_mutex_unlock(&fleet_mu);
            acme_bundle_free(pem, len);
            continue;
        }
        key_pem = strndup(pem, at);
        if (key_pem == NULL) {
            acme_bundle_free(pem, len);
            continue;
        }
        memset(&rec, 0, sizeof(rec));
        rec.chain_pem = pem + at;
        rec.key_pem = key_pem;
        rec.node = acme_fleet_node_name(fleet);
        rec.issuer = iss->conf.name;
        rec.directory = iss->conf.directory;
        rec.issued_at = not_before;
        err[0] = '\0';
        rc = acme_fleet_node_publish(fleet, j->c->id, &rec, rev, err,
                                     sizeof(err));
        OPENSSL_cleanse(key_pem, strlen(key_pem));
        free(key_pem);
        acme_bundle_free(pem, len);
        if (rc == ACME_KV_UNAVAILABLE) {
            continue;           /* at the next sync */
        }
        pthread_mutex_lock(&fleet_mu);
        j->fleet_unpublished = 0;
        pthread_mutex_unlock(&fleet_mu);
        ap_log_error(APLOG_MARK, rc == ACME_KV_OK ? APLOG_NOTICE
                     : APLOG_WARNING, 0, w->s, "mod_acme_auto: %s: the "
                     "certificate ordered without the store %s%s%s",
                     j->c->id, rc == ACME_KV_OK
                     ? "is published to the shared store"
                     : "is not published: the store's record changed (",
                     rc == ACME_KV_OK ? "" : err,
                     rc == ACME_KV_OK ? "" : ")");
    }
}

/*
 * The sync thread of the driving child (AcmeStore): every
 * ACME_FLEET_SYNC_MS a round with the store (acme_fleet_node_sync): this
 * node's liveness, the fleet's challenges mirrored, newer certificates
 * handed to their jobs, certificates ordered alone published.  An
 * unreachable store is logged once (error) and its return (notice); the
 * certificates installed are served all along.  Ends within a sleep step
 * of the stop, or after the request under way (bounded by the store
 * client's timeouts).
 */
static void *
fleet_main(void *arg)
{
    watch_t          *w = arg;
    acme_fleet_sync_t sy;
    struct timespec   ts = { 0, 50 * 1000000L };
    int64_t           acked = 0;
    long long         until;
    char             *json, *last = NULL;
    int               rc, reachable = -1, told_full = 0;

    while (!__atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE)) {
        memset(&sy, 0, sizeof(sy));
        rc = acme_fleet_node_sync(fleet, acked, &sy);
        if (__atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE)) {
            acme_fleet_sync_free(&sy);
            break;
        }
        if (rc != 0) {
            if (reachable != 0) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s, "mod_acme_auto:"
                             " AcmeStore: the shared store is unreachable: "
                             "%s; serving the certificates installed, no "
                             "order unless one is about to expire", sy.err);
            }
            reachable = 0;
            /* the next round starts over */
            acked = 0;
        }
        else {
            if (reachable == 0) {
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, w->s,
                             "mod_acme_auto: AcmeStore: the shared store is "
                             "reachable again (%s)",
                             sy.endpoint ? sy.endpoint : "");
            }
            else if (reachable < 0) {
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, w->s,
                             "mod_acme_auto: AcmeStore: node %s in the shared"
                             " store at %s, %lu node(s) live",
                             acme_fleet_node_name(fleet),
                             sy.endpoint ? sy.endpoint : "",
                             (unsigned long) sy.n_nodes);
            }
            reachable = 1;
            if (fleet_mirror(w, &sy, &told_full)) {
                acked = sy.chal_revision;
            }
            fleet_certs(w, &sy);
        }
        __atomic_store_n(&fleet_reachable, reachable, __ATOMIC_RELEASE);
        acme_fleet_sync_free(&sy);
        /* the status' "store", for every child */
        if ((json = acme_fleet_node_status_json(fleet)) != NULL) {
            if (last == NULL || strcmp(last, json) != 0) {
                acme_auto_shm_set_store(json);
                free(last);
                last = json;
            }
            else {
                free(json);
            }
        }
        if (reachable == 1) {
            fleet_publish(w);
        }
        until = acme_monotonic_ms() + ACME_FLEET_SYNC_MS;
        while (acme_monotonic_ms() < until
               && !__atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE))
        {
            nanosleep(&ts, NULL);
        }
    }
    free(last);
    OPENSSL_thread_stop();      /* as in job_main */
    __atomic_store_n(&fleet_finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* The node's thread, when the driving child starts (AcmeStore). */
static void
fleet_start(watch_t *w)
{
    acme_auto_srv_conf_t *sc = acme_auto_srv_conf(w->s);

    if (sc->store == NULL || __atomic_load_n(&fleet_running,
                                             __ATOMIC_ACQUIRE))
    {
        return;
    }
    __atomic_store_n(&fleet_reachable, -1, __ATOMIC_RELEASE);
    if (fleet == NULL) {
        /* made by the parent (acme_auto_jobs_register), gone with a
         * previous driver of this process: no leases, no requests */
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s, "mod_acme_auto: "
                     "AcmeStore: no node in this process; it orders only a "
                     "certificate about to expire, as when the store is "
                     "unreachable");
        __atomic_store_n(&fleet_reachable, 0, __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&fleet_finished, 0, __ATOMIC_RELEASE);
    if (acme_auto_thread_create(&fleet_thread, fleet_main, w) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, w->s, "mod_acme_auto: "
                     "AcmeStore: cannot start the store's thread");
        return;
    }
    __atomic_store_n(&fleet_running, 1, __ATOMIC_RELEASE);
}

/* At the stop, once the job threads are done (jobs_wait): the sync thread
 * ends (bounded wait), then the node gives its leases back.  A thread
 * still inside a request keeps the node (the child exits next). */
static void
fleet_stop(watch_t *w)
{
    struct timespec ts = { 0, 20 * 1000000L };
    long long       deadline;
    int             i;

    if (__atomic_exchange_n(&fleet_running, 0, __ATOMIC_ACQ_REL)) {
        deadline = acme_monotonic_ms() + STOP_JOIN_SECONDS * 1000LL;
        while (!__atomic_load_n(&fleet_finished, __ATOMIC_ACQUIRE)
               && acme_monotonic_ms() < deadline)
        {
            nanosleep(&ts, NULL);
        }
        if (!__atomic_load_n(&fleet_finished, __ATOMIC_ACQUIRE)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s, "mod_acme_auto:"
                         " AcmeStore: the store's thread is still in a "
                         "request at the stop");
            return;
        }
        pthread_join(fleet_thread, NULL);
    }
    for (i = 0; i < w->n_jobs; i++) {
        if (__atomic_load_n(&w->jobs[i].running, __ATOMIC_ACQUIRE)
            && !__atomic_load_n(&w->jobs[i].finished, __ATOMIC_ACQUIRE))
        {
            return;             /* a job still uses the node */
        }
    }
    acme_fleet_node_free(__atomic_exchange_n(&fleet, NULL, __ATOMIC_ACQ_REL));
}

/* -- the watchdog callback ------------------------------------------------ */

/* The next attempt as the status shows it; shm is written only on change. */
static long long
job_publish_due(job_t *j, long long now)
{
    acme_auto_slot_status_t st;
    long long               due = job_due_at(j);
    const char             *change = acme_job_change(&j->f, &j->st);

    if (due != j->due_at || change != j->change) {
        acme_auto_shm_get_status(j->c->slot, &st);
        st.next_renewal = due > now ? due : now;
        acme_job_status_set_reason(&st, change);
        acme_auto_shm_set_status(j->c->slot, &st);
        j->due_at = due;
        j->change = change;
    }
    return due;
}

/* An attempt record left by a driver that is gone: a failed attempt. */
static void
job_check_unfinished(job_t *j)
{
    char                    buf[ACME_ERRLEN + 64];
    int                     alive;
    acme_auto_slot_status_t st;

    alive = j->st.attempt_pid != (long) getpid()
            && acme_process_alive(j->st.attempt_pid);
    if (acme_job_unfinished(&j->st, j->c->challenges, j->c->n_challenges,
                            now_sec(), alive, j->c->issuer->conf.retry_delay,
                            j->f.seed))
    {
        job_record_failure(j, 0);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, j->s, "mod_acme_auto: %s: %s",
                     j->c->id, acme_job_failure_text(&j->st, buf,
                                                     sizeof(buf)));
        /* a failed order too: "failed", at most one an hour */
        acme_auto_shm_get_status(j->c->slot, &st);
        acme_auto_event_failed(j->c, j->s, &st);
    }
}

/* CAs date notBefore back (Let's Encrypt: one hour) */
#define ACME_AUTO_CA_BACKDATE  3600

static void
watch_start(watch_t *w)
{
    int        i;
    char       err[ACME_ERRLEN];
    long long  took;

    __atomic_store_n(&stop_jobs, 0, __ATOMIC_RELEASE);
    acme_auto_shm_tokens_clear();
    for (i = 0; i < w->n_jobs; i++) {
        job_t *j = &w->jobs[i];
        if (acme_store_load_state(j->c->issuer->conf.state_dir, j->c->id, &j->st,
                                  err, sizeof(err)) < 0)
        {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s, "mod_acme_auto:"
                         " %s: unreadable renewal state, starting afresh: %s",
                         j->c->id, err);
        }
        took = job_sync_from_disk(j);
        job_load_facts(j);
        if (took != 0 && j->st.attempt_started != 0
            && took >= j->st.attempt_started - ACME_AUTO_CA_BACKDATE)
        {
            /* the attempt stored its certificate, then its process died
             * before its end was recorded: it did finish */
            acme_sched_attempt_end(&j->st);
        }
        job_check_unfinished(j);
        job_load_ari_id(j);
        j->due_at = -1;
        job_publish_due(j, now_sec());
    }
    acme_auto_shm_set_acme_pid((long) getpid());
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, w->s, "mod_acme_auto: pid %ld "
                 "drives ACME for %d certificate(s)", (long) getpid(),
                 w->n_jobs);
    /* AcmeStore: this node joins the fleet */
    fleet_start(w);
}

/* The challenge type of the next attempt (acme_job_challenge). */
static const char *
job_type(job_t *j)
{
    return acme_job_challenge(j->c->challenges, j->c->n_challenges,
                              j->st.failures);
}

/* tls-alpn-01 attempts sharing a name take turns (acme_job_alpn_conflict). */
static int
alpn_busy(watch_t *w, job_t *j)
{
    int i;

    for (i = 0; i < w->n_jobs; i++) {
        job_t *o = &w->jobs[i];
        if (o != j && o->running && !o->resave && !o->ari && !o->install
            && acme_job_alpn_conflict(job_type(j), j->c->names,
                                      (size_t) j->c->n_names, o->type,
                                      o->c->names, (size_t) o->c->n_names))
        {
            return 1;
        }
    }
    return 0;
}

/* The CA of the next attempt (acme_failover.h: fallback= moves on after
 * AcmeCertificate's fallback_after= failures at one). */
static acme_auto_issuer_t *
job_issuer(job_t *j)
{
    if (j->c->n_issuers <= 1) {
        return j->c->issuer;
    }
    return j->c->issuers[acme_failover_pick(j->st.failures,
                                            (size_t) j->c->n_issuers,
                                            j->c->failover_after)];
}

/* The pipeline's view of the issuer of j's running or next attempt. */
static void
pipe_issuer(acme_job_pipe_t *p, acme_auto_issuer_t *iss)
{
    p->issuer = iss;
    p->max_orders = (unsigned) iss->conf.max_orders;
    p->issuer_pause = __atomic_load_n(&iss->paused_until, __ATOMIC_ACQUIRE);
}

static void
job_spawn(watch_t *w, job_t *j)
{
    __atomic_store_n(&j->finished, 0, __ATOMIC_RELEASE);
    j->type = job_type(j);
    j->iss = job_issuer(j);
    if (!j->resave && !j->install && j->iss != j->c->issuer) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s, "mod_acme_auto: "
                     "%s: ordering from the fallback <AcmeIssuer %s> after "
                     "%u consecutive failures", j->c->id, j->iss->conf.name,
                     j->st.failures);
    }
    j->control = ACME_CONTROL_NONE;
    j->revoked = 0;
    if (!j->resave && !j->ari && !j->install) {
        /* this order answers every renew / revoke asked so far */
        j->control = acme_auto_shm_control_take(j->c->slot,
                                                &j->revoke_reason);
    }
    j->revoke = j->control == ACME_CONTROL_REVOKE;
    if (acme_auto_thread_create(&j->thread,
                                j->resave ? job_resave_main
                                : j->install ? job_install_main
                                : j->ari ? job_ari_main : job_main,
                                j) != 0)
    {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, w->s, "mod_acme_auto:"
                     " %s: cannot start a job thread", j->c->id);
        return;
    }
    __atomic_store_n(&j->running, 1, __ATOMIC_RELEASE);
}

/* Starts the jobs that are due, at most AcmeMaxOrders of an issuer in
 * flight, the most urgent first (acme_job_pipeline); the others wait for a
 * later tick. */
static void
watch_tick(watch_t *w)
{
    long long now = now_sec(), due;
    int       i;

    for (i = 0; i < w->n_jobs; i++) {
        job_t           *j = &w->jobs[i];
        acme_job_pipe_t *p = &w->pipe[i];

        memset(p, 0, sizeof(*p));
        if (j->running) {
            if (!__atomic_load_n(&j->finished, __ATOMIC_ACQUIRE)) {
                pipe_issuer(p, j->iss);
                p->running = 1;
                continue;
            }
            pthread_join(j->thread, NULL);
            __atomic_store_n(&j->running, 0, __ATOMIC_RELEASE);
            j->due_at = -1;
        }
        job_activate(j, now);
        /* "expiring", once a day in the warning window */
        acme_auto_event_tick(j->c, j->s);
        /* renew / revoke asked for at the status location */
        j->f.forced = acme_auto_shm_control_pending(j->c->slot, NULL)
                      != ACME_CONTROL_NONE;
        due = job_publish_due(j, now);
        pipe_issuer(p, job_issuer(j));
        if (__atomic_load_n(&stop_jobs, __ATOMIC_ACQUIRE)) {
            continue;
        }
        /* AcmeStore: a newer certificate another node ordered */
        j->install = fleet_on && job_install_pending(j);
        if (j->install) {
            j->resave = j->ari = 0;
            job_spawn(w, j);
            p->running = j->running;
            continue;
        }
        /* an issued bundle the store refused is written again first */
        j->resave = j->unsaved_at && j->unsaved_at <= now;
        if (j->resave) {
            job_spawn(w, j);
            p->running = j->running;
            continue;
        }
        p->have_cert = j->f.have_cert;
        p->not_after = j->f.not_after;
        /* no order due: the renewal information (ARI) may be, within the
         * issuer's max_orders like an order */
        j->ari = due > now && j->f.have_cert
                 && acme_ari_poll_due(&j->st, j->ari_id, now);
        /* AcmeStore: no claim before the time the last one said */
        p->due = j->ari || (due <= now && j->fleet_next <= now
                            && !alpn_busy(w, j));
    }
    if (acme_job_pipeline(w->pipe, (size_t) w->n_jobs, now) == 0) {
        return;
    }
    for (i = 0; i < w->n_jobs; i++) {
        /* tls-alpn-01: one started above may share a name */
        if (w->pipe[i].start
            && (w->jobs[i].ari || !alpn_busy(w, &w->jobs[i])))
        {
            if (w->jobs[i].change != NULL && !w->jobs[i].ari) {
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, w->s,
                             "mod_acme_auto: %s: ordering a new certificate "
                             "at once from %s: %s; the current one is served "
                             "until then", w->jobs[i].c->id,
                             job_issuer(&w->jobs[i])->conf.directory,
                             w->jobs[i].change);
            }
            job_spawn(w, &w->jobs[i]);
        }
    }
}

/* A stop is no crash: the attempt records of the orders still running go
 * first, as the child may exit before a job thread notices the stop (the
 * thread's own final write, if it gets there, says the same or newer).
 * From watch_stop and from the child pool's cleanup, whichever runs first
 * (mod_watchdog does not always get to STOPPING before the child exits). */
static void
jobs_end_attempts(watch_t *w)
{
    int  i;
    char err[ACME_ERRLEN];

    for (i = 0; i < w->n_jobs; i++) {
        job_t            *j = &w->jobs[i];
        acme_cert_state_t st;

        if (!j->running || __atomic_load_n(&j->finished, __ATOMIC_ACQUIRE)) {
            continue;
        }
        st = j->st;
        if (st.attempt_started && st.attempt_pid == (long) getpid()) {
            acme_sched_attempt_end(&st);
            if (acme_store_save_state(j->c->issuer->conf.state_dir, j->c->id, &st,
                                      err, sizeof(err)) != 0)
            {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s,
                             "mod_acme_auto: %s: cannot save the renewal "
                             "state: %s", j->c->id, err);
            }
        }
    }
}

/*
 * How long a stopping child waits for a job thread.  The thread notices
 * the stop within a second (the driver's sleeps, the hook and the
 * propagation wait poll it) unless a network step is under way, and then
 * the engine unpublishes what it published: with dns-01 one TXT record
 * per name, each removed by the hook (its timeout) or by an update
 * (AcmeTimeout, and as much for the zone lookup unless AcmeDNSZone).
 */
static long long
job_stop_bound_ms(job_t *j)
{
    acme_auto_issuer_t *iss = j->c->issuer;
    long long           remove_sec;

    if (j->resave || j->type == NULL || strcmp(j->type, "dns-01") != 0) {
        return STOP_JOIN_SECONDS * 1000LL;
    }
    if (iss->conf.dns.update.host[0] != '\0') {
        remove_sec = (iss->conf.dns.zone[0] != '\0' ? 1 : 2)
                     * iss->conf.timeout_ms / 1000;
    }
    else {
        remove_sec = (iss->conf.dns.hook_timeout_ms > 0
                      ? iss->conf.dns.hook_timeout_ms
                      : ACME_DNS_HOOK_TIMEOUT_MS) / 1000;
    }
    return (STOP_JOIN_SECONDS + remove_sec * j->c->n_names) * 1000LL
           + iss->conf.timeout_ms;
}

/* Waits (bounded by job_stop_bound_ms) until the job threads have ended:
 * an order stopped while its dns-01 records are out removes them first.
 * Reads only the threads' flags, so the watchdog thread (watch_stop) and
 * the child's exit (jobs_child_exit) may both wait at once. */
static void
jobs_wait(watch_t *w)
{
    struct timespec ts = { 0, 50 * 1000000L };
    long long       deadline = 0, now = acme_monotonic_ms(), at;
    int             i, busy;

    for (i = 0; i < w->n_jobs; i++) {
        job_t *j = &w->jobs[i];
        if (__atomic_load_n(&j->running, __ATOMIC_ACQUIRE)) {
            at = now + job_stop_bound_ms(j);
            deadline = at > deadline ? at : deadline;
        }
    }
    for ( ;; ) {
        busy = 0;
        for (i = 0; i < w->n_jobs; i++) {
            job_t *j = &w->jobs[i];
            if (__atomic_load_n(&j->running, __ATOMIC_ACQUIRE)
                && !__atomic_load_n(&j->finished, __ATOMIC_ACQUIRE))
            {
                busy++;
            }
        }
        if (busy == 0) {
            return;
        }
        if (acme_monotonic_ms() >= deadline) {
            break;
        }
        nanosleep(&ts, NULL);
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s, "mod_acme_auto: pid %ld"
                 " stops with %d job(s) still running", (long) getpid(), busy);
}

static watch_t *the_watch;

/*
 * mod_watchdog's thread, which runs watchdog_cb, is never joined: after
 * STOPPING it leaves through apr_thread_exit while the child's main thread
 * goes on to exit(), whose OPENSSL_cleanup() frees every thread's OpenSSL
 * state (docs/host-notes.md).  So that thread holds none between two
 * callbacks (watchdog_cb ends each with OPENSSL_thread_stop), and the
 * child's exit waits for a callback under way and lets none start after
 * it (wd_exiting, wd_busy: seq_cst, so the exit sees a callback that
 * began or the callback sees the exit).
 */
static int              wd_exiting;     /* atomic: the child exits */
static int              wd_busy;        /* atomic: a callback runs */

/* After jobs_wait, in the exiting child's main thread: until no watchdog
 * callback runs (bounded: its STOPPING waits for the jobs as long as
 * jobs_wait did). */
static void
callback_wait(watch_t *w)
{
    struct timespec ts = { 0, 10 * 1000000L };
    long long       deadline = acme_monotonic_ms() + STOP_JOIN_SECONDS * 1000LL;

    while (__atomic_load_n(&wd_busy, __ATOMIC_SEQ_CST) != 0) {
        if (acme_monotonic_ms() >= deadline) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s, "mod_acme_auto: "
                         "pid %ld exits while its watchdog callback still "
                         "runs", (long) getpid());
            return;
        }
        nanosleep(&ts, NULL);
    }
}

/* The child's exit (its pool's cleanup, in the main thread): mod_watchdog
 * runs STOPPING in its own thread, and the child does not wait for that
 * thread (docs/host-notes.md), so the wait for the jobs is here too, and
 * the wait for that thread's callback. */
static apr_status_t
jobs_child_exit(void *data)
{
    (void) data;
    if (the_watch != NULL) {
        __atomic_store_n(&wd_exiting, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&stop_jobs, 1, __ATOMIC_RELEASE);
        jobs_end_attempts(the_watch);
        jobs_wait(the_watch);
        fleet_stop(the_watch);
        callback_wait(the_watch);
    }
    return APR_SUCCESS;
}

void
acme_auto_jobs_child_init(apr_pool_t *pchild)
{
    apr_pool_cleanup_register(pchild, NULL, jobs_child_exit,
                              apr_pool_cleanup_null);
}

/* The threads are not joined: the child exits next. */
static void
watch_stop(watch_t *w)
{
    __atomic_store_n(&stop_jobs, 1, __ATOMIC_RELEASE);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, w->s, "mod_acme_auto: pid %ld "
                 "stops driving ACME", (long) getpid());

    jobs_end_attempts(w);
    jobs_wait(w);
    fleet_stop(w);
    acme_auto_shm_set_acme_pid(0);
}

static apr_status_t
watchdog_cb(int state, void *data, apr_pool_t *pool)
{
    watch_t *w = data;

    (void) pool;
    __atomic_add_fetch(&wd_busy, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&wd_exiting, __ATOMIC_SEQ_CST)) {
        /* the child's exit did (or does) what STOPPING does, and its
         * OPENSSL_cleanup may run already: nothing here touches OpenSSL */
        __atomic_sub_fetch(&wd_busy, 1, __ATOMIC_SEQ_CST);
        return APR_SUCCESS;
    }
    switch (state) {
    case AP_WATCHDOG_STATE_STARTING:
        watch_start(w);
        /* the due orders start now, not at mod_watchdog's first RUNNING
         * call one interval later */
        watch_tick(w);
        break;
    case AP_WATCHDOG_STATE_RUNNING:
        watch_tick(w);
        break;
    case AP_WATCHDOG_STATE_STOPPING:
        watch_stop(w);
        break;
    }
    /* what this callback left in OpenSSL (bundles parsed, RAND_bytes of
     * the store's temporary names) goes now, not in the thread's exit,
     * which would race the child's exit() (see wd_exiting) */
    OPENSSL_thread_stop();
    __atomic_sub_fetch(&wd_busy, 1, __ATOMIC_SEQ_CST);
    return APR_SUCCESS;
}

/* The parent's copy of the node goes with its configuration (it never
 * held a lease: nothing is sent). */
static apr_status_t
fleet_cleanup(void *data)
{
    (void) data;
    acme_fleet_node_free(__atomic_exchange_n(&fleet, NULL, __ATOMIC_ACQ_REL));
    return APR_SUCCESS;
}

int
acme_auto_jobs_register(server_rec *s, apr_pool_t *pconf)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance)      *get_instance;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *register_cb;
    ap_watchdog_t *wd;
    watch_t       *w;
    apr_status_t   rv;
    int            i;
    char           err[ACME_ERRLEN];

    get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    register_cb = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (get_instance == NULL || register_cb == NULL) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_acme_auto: needs "
                     "mod_watchdog (LoadModule watchdog_module)");
        return !OK;
    }
    rv = get_instance(&wd, ACME_AUTO_WATCHDOG, 0, 1, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "mod_acme_auto: cannot "
                     "create the singleton watchdog");
        return !OK;
    }
    w = apr_pcalloc(pconf, sizeof(*w));
    the_watch = w;
    fleet_on = acme_auto_srv_conf(s)->store != NULL;
    if (fleet_on) {
        /* AcmeStore: the node is made here, as root (its key and password
         * files may be root's only); the children inherit it, and only the
         * driving child's copy ever sends a request (leases of its own) */
        acme_fleet_node_free(__atomic_exchange_n(&fleet, NULL,
                                                 __ATOMIC_ACQ_REL));
        fleet = acme_fleet_node_new(acme_auto_srv_conf(s)->store, err,
                                    sizeof(err));
        if (fleet == NULL) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "mod_acme_auto: "
                         "AcmeStore: %s", err);
            return !OK;
        }
        apr_pool_cleanup_register(pconf, NULL, fleet_cleanup,
                                  apr_pool_cleanup_null);
    }
    w->s = s;
    w->n_jobs = acme_auto_g.certs->nelts;
    w->jobs = apr_pcalloc(pconf, sizeof(job_t) * w->n_jobs);
    w->pipe = apr_pcalloc(pconf, sizeof(acme_job_pipe_t) * w->n_jobs);
    for (i = 0; i < w->n_jobs; i++) {
        w->jobs[i].c = APR_ARRAY_IDX(acme_auto_g.certs, i, acme_auto_cert_t *);
        w->jobs[i].iss = w->jobs[i].c->issuer;
        w->jobs[i].s = s;
        w->jobs[i].f.loaded = 1;
        w->jobs[i].f.renew_fraction = w->jobs[i].c->issuer->conf.renew_percent / 100.0;
        w->jobs[i].f.seed = acme_job_seed(w->jobs[i].c->id);
        w->jobs[i].f.directory = w->jobs[i].c->issuer->conf.directory;
        /* a certificate a fallback issued is no changed CA */
        w->jobs[i].f.fallback_dirs = w->jobs[i].c->fallback_dirs;
        w->jobs[i].f.n_fallback_dirs = (size_t) w->jobs[i].c->n_issuers - 1;
    }
    rv = register_cb(wd, apr_time_from_sec(1), w, watchdog_cb);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "mod_acme_auto: cannot "
                     "register the watchdog callback");
        return !OK;
    }
    return OK;
}
