/*
 * Shared memory between the parent and every child: the pending http-01
 * tokens and tls-alpn-01 identifiers (with their key authorizations; the
 * table of common/core/acme_chal_table.h, after the slots), one slot per
 * managed certificate (status + current bundle PEM) and a global
 * generation counter.
 *
 * Writers (the parent at startup, the one child driving ACME) serialise on
 * an apr_global_mutex.  Readers never lock: request and handshake paths
 * read through a sequence counter (seqlock), so an unknown challenge token
 * or a status read never touches a lock file.  A reader retries while a
 * write is in progress; writes are short memcpy's.
 *
 * The segment is anonymous (apr_shm with no file name), created in the
 * parent's post_config and inherited by the children through fork.
 */
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <sched.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "util_mutex.h"
#include "mpm_common.h"
#include "unixd.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"

APLOG_USE_MODULE(acme_auto);

#define SHM_MAGIC 0x41434d45u   /* "ACME" */

typedef struct {
    apr_uint32_t            seq;        /* odd while being written */
    apr_uint32_t            gen;        /* bumped when the bundle changes */
    acme_auto_slot_status_t st;
    acme_control_t          control;    /* renew / revoke requests
                                           (acme_auto_control.c), taken
                                           by the driver */
    apr_size_t              bundle_len; /* 0 = none */
    char                    bundle[ACME_AUTO_BUNDLE_MAX];
    acme_event_track_t      ev;         /* events' rate limits, locked */
} shm_slot_t;

typedef struct {
    apr_uint32_t    magic;
    apr_uint32_t    generation;         /* any bundle changed */
    apr_int64_t     acme_pid;
    apr_uint32_t    tok_seq;            /* of the challenge table */
    apr_uint32_t    store_seq;          /* of store */
    char            store[ACME_AUTO_STORE_MAX];    /* AcmeStore: the
                                           driver's view of the shared store
                                           (acme_fleet_node_status_json), ""
                                           none yet */
    apr_uint32_t    n_slots;
    shm_slot_t      slots[1];
} shm_t;

static apr_shm_t           *shm_seg;
static shm_t               *shm;
static apr_global_mutex_t  *shm_mutex;
static acme_chal_table_t   *chal;       /* in shm, after the slots */

/* One driver child at a time, and a new one clears the table: one fence. */
#define CHAL_FENCE ((acme_fence_t) 1)
/* The owners: this node's orders, and a fleet's other nodes (AcmeStore:
 * challenges mirrored from the shared store) */
#define CHAL_OWN        0
#define CHAL_MIRRORED   1

/* -- seqlock primitives ------------------------------------------------ */

/* A reader that keeps finding a write in progress falls back to the lock:
 * a writer killed mid-write (SIGKILL) leaves the counter odd, and lock()
 * repairs that. */
#define SEQ_MAX_TRIES 10000

static int lock(void);
static void unlock(void);

#define SEQ_READ(seqp, body) do {                                           \
        apr_uint32_t s_;                                                    \
        int          tries_ = 0;                                            \
        for ( ;; ) {                                                        \
            s_ = __atomic_load_n((seqp), __ATOMIC_ACQUIRE);                 \
            if ((s_ & 1) == 0) {                                            \
                body;                                                       \
                __atomic_thread_fence(__ATOMIC_ACQUIRE);                    \
                if (__atomic_load_n((seqp), __ATOMIC_RELAXED) == s_) {      \
                    break;                                                  \
                }                                                           \
            }                                                               \
            if (++tries_ > SEQ_MAX_TRIES) {                                 \
                if (lock()) {                                               \
                    body;                                                   \
                    unlock();                                               \
                }                                                           \
                break;                                                      \
            }                                                               \
            if (tries_ > 64) {                                              \
                sched_yield();                                              \
            }                                                               \
        }                                                                   \
    } while (0)

static void
seq_write_begin(apr_uint32_t *seq)
{
    __atomic_store_n(seq, __atomic_load_n(seq, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void
seq_write_end(apr_uint32_t *seq)
{
    __atomic_store_n(seq, __atomic_load_n(seq, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELEASE);
}

/* Under the lock: a previous holder that died mid-write left a counter
 * odd.  Make it even again; a slot's possibly torn bundle gets a new
 * generation, is re-read, fails to parse and is ignored (the old
 * certificate stays installed). */
static void
repair(void)
{
    apr_uint32_t i;

    if (__atomic_load_n(&shm->tok_seq, __ATOMIC_RELAXED) & 1) {
        seq_write_end(&shm->tok_seq);
    }
    for (i = 0; i < shm->n_slots; i++) {
        shm_slot_t *sl = &shm->slots[i];
        if (__atomic_load_n(&sl->seq, __ATOMIC_RELAXED) & 1) {
            sl->gen++;
            seq_write_end(&sl->seq);
            __atomic_add_fetch(&shm->generation, 1, __ATOMIC_RELEASE);
        }
    }
}

static int
lock(void)
{
    if (shm_mutex == NULL
        || apr_global_mutex_lock(shm_mutex) != APR_SUCCESS)
    {
        return 0;
    }
    repair();
    return 1;
}

static void
unlock(void)
{
    apr_global_mutex_unlock(shm_mutex);
}

/* -- lifecycle ----------------------------------------------------------- */

apr_status_t
acme_auto_shm_create(server_rec *s, apr_pool_t *pconf, int n_slots)
{
    apr_status_t rv;
    apr_size_t   size, chal_off;

    shm = NULL;
    chal = NULL;
    shm_seg = NULL;
    shm_mutex = NULL;
    if (n_slots <= 0) {
        return APR_SUCCESS;
    }

    rv = ap_global_mutex_create(&shm_mutex, NULL, ACME_AUTO_MUTEX_ID, NULL,
                                s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "mod_acme_auto: cannot create the global mutex");
        return rv;
    }

    chal_off = APR_ALIGN_DEFAULT(APR_OFFSETOF(shm_t, slots)
                                 + sizeof(shm_slot_t) * n_slots);
    size = chal_off + ACME_CHAL_TABLE_SIZE(ACME_AUTO_MAX_TOKENS);
    rv = apr_shm_create(&shm_seg, size, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "mod_acme_auto: cannot create %lu bytes of anonymous "
                     "shared memory", (unsigned long) size);
        return rv;
    }
    shm = apr_shm_baseaddr_get(shm_seg);
    /*
     * A new anonymous segment (APR_USE_SHMEM_MMAP_ANON: mmap MAP_SHARED |
     * MAP_ANONYMOUS) reads as zeros already; a memset of it all would make
     * every page of every slot resident (each slot reserves
     * ACME_AUTO_BUNDLE_MAX for its bundle: about 66 KB per certificate, a
     * few KB of it used), and each child would map them too.  Only the
     * header is written here.
     */
#if APR_USE_SHMEM_MMAP_ANON
    memset(shm, 0, APR_OFFSETOF(shm_t, slots));
#else
    memset(shm, 0, size);
#endif
    shm->magic = SHM_MAGIC;
    shm->n_slots = n_slots;
    chal = acme_chal_table_init((char *) shm + chal_off,
                                ACME_CHAL_TABLE_SIZE(ACME_AUTO_MAX_TOKENS));
    return APR_SUCCESS;
}

apr_status_t
acme_auto_shm_child_init(server_rec *s, apr_pool_t *pchild)
{
    apr_status_t rv;

    if (shm_mutex == NULL) {
        return APR_SUCCESS;
    }
    rv = apr_global_mutex_child_init(&shm_mutex,
                                     apr_global_mutex_lockfile(shm_mutex),
                                     pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "mod_acme_auto: cannot attach the global mutex in a child");
    }
    return rv;
}

int
acme_auto_shm_ready(void)
{
    return shm != NULL;
}

static shm_slot_t *
slot_at(int slot)
{
    if (shm == NULL || slot < 0 || (apr_uint32_t) slot >= shm->n_slots) {
        return NULL;
    }
    return &shm->slots[slot];
}

/* -- reads ----------------------------------------------------------------- */

apr_uint32_t
acme_auto_shm_generation(void)
{
    return shm ? __atomic_load_n(&shm->generation, __ATOMIC_ACQUIRE) : 0;
}

apr_uint32_t
acme_auto_shm_slot_gen(int slot)
{
    shm_slot_t   *sl = slot_at(slot);
    apr_uint32_t  g = 0;

    if (sl == NULL) {
        return 0;
    }
    SEQ_READ(&sl->seq, g = sl->gen);
    return g;
}

int
acme_auto_shm_get_status(int slot, acme_auto_slot_status_t *out)
{
    shm_slot_t   *sl = slot_at(slot);

    memset(out, 0, sizeof(*out));
    if (sl == NULL) {
        return -1;
    }
    SEQ_READ(&sl->seq, memcpy(out, &sl->st, sizeof(*out)));
    out->step[sizeof(out->step) - 1] = '\0';
    out->serial[sizeof(out->serial) - 1] = '\0';
    out->ca_issuer[sizeof(out->ca_issuer) - 1] = '\0';
    out->last_error[sizeof(out->last_error) - 1] = '\0';
    out->store_error[sizeof(out->store_error) - 1] = '\0';
    return 0;
}

int
acme_auto_shm_get_bundle(int slot, char **pem, apr_size_t *len,
    apr_uint32_t *gen)
{
    shm_slot_t   *sl = slot_at(slot);
    apr_size_t    n = 0, want = 0;
    char         *buf;
    int           tries, ok;

    *pem = NULL;
    *len = 0;
    if (sl == NULL) {
        return -1;
    }
    /*
     * A buffer of the bundle's size (a few KB), not of
     * ACME_AUTO_BUNDLE_MAX: a 64 KB block taken and freed around each parse
     * spreads the parsed objects kept over more of the reading thread's
     * arena.  The length is read first; a bundle replaced meanwhile is
     * read again.
     */
    for (tries = 0; tries < 4; tries++) {
        SEQ_READ(&sl->seq, want = sl->bundle_len);
        if (want == 0 || want > ACME_AUTO_BUNDLE_MAX) {
            return 0;
        }
        buf = malloc(want + 1);
        if (buf == NULL) {
            return -1;
        }
        ok = 0;
        SEQ_READ(&sl->seq, {
            ok = (sl->bundle_len == want);
            if (ok) {
                memcpy(buf, sl->bundle, want);
                *gen = sl->gen;
            }
        });
        if (ok) {
            buf[want] = '\0';
            *pem = buf;
            *len = want;
            return 1;
        }
        free(buf);
    }
    buf = malloc(ACME_AUTO_BUNDLE_MAX + 1);
    if (buf == NULL) {
        return -1;
    }
    SEQ_READ(&sl->seq, {
        n = sl->bundle_len;
        if (n > ACME_AUTO_BUNDLE_MAX) {
            n = 0;
        }
        memcpy(buf, sl->bundle, n);
        *gen = sl->gen;
    });
    if (n == 0) {
        free(buf);
        return 0;
    }
    buf[n] = '\0';
    *pem = buf;
    *len = n;
    return 1;
}

int
acme_auto_shm_chal_lookup(acme_chal_type_t type, const char *key, char *buf,
    apr_size_t buflen)
{
    int found = 0;

    if (shm == NULL) {
        return 0;
    }
    SEQ_READ(&shm->tok_seq, found = acme_chal_table_find(chal, type, key,
                                        strlen(key), CHAL_FENCE, buf,
                                        buflen) >= 0);
    return found;
}

void
acme_auto_shm_get_store(char *buf, apr_size_t buflen)
{
    if (buflen == 0) {
        return;
    }
    buf[0] = '\0';
    if (shm == NULL) {
        return;
    }
    SEQ_READ(&shm->store_seq, apr_cpystrn(buf, shm->store, buflen));
}

void
acme_auto_shm_set_store(const char *json)
{
    if (!lock()) {
        return;
    }
    seq_write_begin(&shm->store_seq);
    apr_cpystrn(shm->store, json ? json : "", sizeof(shm->store));
    seq_write_end(&shm->store_seq);
    unlock();
}

long
acme_auto_shm_acme_pid(void)
{
    return shm ? (long) __atomic_load_n(&shm->acme_pid, __ATOMIC_ACQUIRE) : 0;
}

/* -- writes ---------------------------------------------------------------- */

/* This node's challenge (owner CHAL_OWN, replaced when there), or another
 * node's mirrored one (added only when its token is absent). */
static int
token_put(int alpn, const char *identifier, const char *token,
    const char *key_authz, int mirrored)
{
    acme_chal_type_t type = alpn ? ACME_CHAL_TLS_ALPN_01 : ACME_CHAL_HTTP_01;
    int              rc;

    if (!lock()) {
        return -1;
    }
    seq_write_begin(&shm->tok_seq);
    rc = mirrored
         ? acme_chal_table_mirror(chal, type, identifier, token, key_authz,
                                  CHAL_MIRRORED, CHAL_FENCE)
         : acme_chal_table_add(chal, type, identifier, token, key_authz,
                               CHAL_OWN, CHAL_FENCE);
    seq_write_end(&shm->tok_seq);
    unlock();
    /* mirror: 1 added, 0 here already (ours, or mirrored before) */
    return rc >= 0 ? 0 : -1;
}

int
acme_auto_shm_token_add(int alpn, const char *identifier, const char *token,
    const char *key_authz)
{
    return token_put(alpn, identifier, token, key_authz, 0);
}

int
acme_auto_shm_token_mirror(int alpn, const char *identifier,
    const char *token, const char *key_authz)
{
    return token_put(alpn, identifier, token, key_authz, 1);
}

void
acme_auto_shm_token_unmirror(const char *token)
{
    if (!lock()) {
        return;
    }
    seq_write_begin(&shm->tok_seq);
    acme_chal_table_remove_owner(chal, token, CHAL_FENCE, CHAL_MIRRORED);
    seq_write_end(&shm->tok_seq);
    unlock();
}

void
acme_auto_shm_token_remove(const char *token)
{
    if (!lock()) {
        return;
    }
    seq_write_begin(&shm->tok_seq);
    acme_chal_table_remove(chal, token, CHAL_FENCE);
    seq_write_end(&shm->tok_seq);
    unlock();
}

void
acme_auto_shm_tokens_clear(void)
{
    if (!lock()) {
        return;
    }
    seq_write_begin(&shm->tok_seq);
    acme_chal_table_clear(chal);
    seq_write_end(&shm->tok_seq);
    unlock();
}

void
acme_auto_shm_set_acme_pid(long pid)
{
    if (shm != NULL) {
        __atomic_store_n(&shm->acme_pid, (apr_int64_t) pid, __ATOMIC_RELEASE);
    }
}

int
acme_auto_shm_set_bundle(int slot, const char *pem, apr_size_t len,
    const acme_auto_slot_status_t *st)
{
    shm_slot_t *sl = slot_at(slot);

    if (sl == NULL || len == 0 || len > ACME_AUTO_BUNDLE_MAX || !lock()) {
        return -1;
    }
    seq_write_begin(&sl->seq);
    memcpy(sl->bundle, pem, len);
    sl->bundle_len = len;
    memcpy(&sl->st, st, sizeof(sl->st));
    sl->gen++;
    seq_write_end(&sl->seq);
    __atomic_add_fetch(&shm->generation, 1, __ATOMIC_RELEASE);
    unlock();
    return 0;
}

void
acme_auto_shm_set_status(int slot, const acme_auto_slot_status_t *st)
{
    shm_slot_t *sl = slot_at(slot);

    if (sl == NULL || !lock()) {
        return;
    }
    seq_write_begin(&sl->seq);
    memcpy(&sl->st, st, sizeof(sl->st));
    seq_write_end(&sl->seq);
    unlock();
}

int
acme_auto_shm_events(int slot, int (*fn)(acme_event_track_t *, void *),
    void *arg)
{
    shm_slot_t *sl = slot_at(slot);
    int         rc;

    if (sl == NULL || !lock()) {
        return 0;
    }
    /* no lock-free reader looks at ev: no seqlock write */
    rc = fn(&sl->ev, arg);
    unlock();
    return rc;
}

void
acme_auto_shm_set_challenge(int slot, const char *type)
{
    shm_slot_t *sl = slot_at(slot);

    if (sl == NULL || !lock()) {
        return;
    }
    seq_write_begin(&sl->seq);
    apr_cpystrn(sl->st.challenge, type ? type : "", sizeof(sl->st.challenge));
    seq_write_end(&sl->seq);
    unlock();
}

void
acme_auto_shm_set_step(int slot, const char *state, const char *step)
{
    shm_slot_t *sl = slot_at(slot);

    if (sl == NULL || !lock()) {
        return;
    }
    seq_write_begin(&sl->seq);
    sl->st.renewing = state != NULL && strcmp(state, "renewing") == 0;
    apr_cpystrn(sl->st.step, step ? step : "", sizeof(sl->st.step));
    seq_write_end(&sl->seq);
    unlock();
}

/* -- renew / revoke requests (acme_control.h) ------------------------------ */

int
acme_auto_shm_control_ask(int slot, acme_control_kind_t kind, int reason)
{
    shm_slot_t *sl = slot_at(slot);

    if (sl == NULL || !lock()) {
        return -1;
    }
    seq_write_begin(&sl->seq);
    if (kind == ACME_CONTROL_REVOKE) {
        acme_control_revoke(&sl->control, reason);
    }
    else {
        acme_control_renew(&sl->control);
    }
    seq_write_end(&sl->seq);
    unlock();
    return 0;
}

acme_control_kind_t
acme_auto_shm_control_pending(int slot, int *reason)
{
    shm_slot_t     *sl = slot_at(slot);
    acme_control_t  c;

    if (reason != NULL) {
        *reason = -1;
    }
    if (sl == NULL) {
        return ACME_CONTROL_NONE;
    }
    SEQ_READ(&sl->seq, memcpy(&c, &sl->control, sizeof(c)));
    if (reason != NULL) {
        *reason = c.reason;
    }
    return acme_control_pending(&c);
}

void
acme_auto_shm_control_put_back(int slot, acme_control_kind_t kind,
    int reason, int revoked)
{
    shm_slot_t *sl = slot_at(slot);

    if (sl == NULL || kind == ACME_CONTROL_NONE || !lock()) {
        return;
    }
    seq_write_begin(&sl->seq);
    acme_control_put_back(&sl->control, kind, reason, revoked);
    seq_write_end(&sl->seq);
    unlock();
}

void
acme_auto_shm_control_done(int slot, int revoke)
{
    shm_slot_t *sl = slot_at(slot);

    if (sl == NULL || !lock()) {
        return;
    }
    seq_write_begin(&sl->seq);
    acme_control_done(&sl->control, revoke);
    seq_write_end(&sl->seq);
    unlock();
}

acme_control_kind_t
acme_auto_shm_control_carry(int slot, int *reason)
{
    shm_slot_t     *sl = slot_at(slot);
    acme_control_t  c;

    *reason = -1;
    if (sl == NULL) {
        return ACME_CONTROL_NONE;
    }
    SEQ_READ(&sl->seq, memcpy(&c, &sl->control, sizeof(c)));
    return acme_control_carry(&c, reason);
}

acme_control_kind_t
acme_auto_shm_control_take(int slot, int *reason)
{
    shm_slot_t          *sl = slot_at(slot);
    acme_control_kind_t  k;

    *reason = -1;
    if (sl == NULL || !lock()) {
        return ACME_CONTROL_NONE;
    }
    seq_write_begin(&sl->seq);
    k = acme_control_take(&sl->control, reason);
    seq_write_end(&sl->seq);
    unlock();
    return k;
}
