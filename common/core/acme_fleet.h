/*
 * Several servers, one certificate (issue 15): what a node of a fleet
 * keeps in the shared store (acme_kv.h), and what it does next.  Pure: no
 * clock, no I/O; the hosts feed it what they read from the store and do
 * what it says (docs/design.md "Shared store for fleets").
 *
 * Keys below the configured prefix (e.g. "/acme/"):
 *   certs/<id>          the certificate record (acme_fleet_record_encode)
 *   locks/<id>          who orders <id> now: the node name, written
 *                       if absent under that node's order lease (TTL about
 *                       60 s, kept alive while the order runs)
 *   challenges/<token>  a pending http-01 / tls-alpn-01 answer (JSON), so
 *                       that any node the CA reaches can answer
 *   nodes/<node>        a live node (under its node lease) and the store
 *                       revision up to which it has mirrored challenges
 */
#ifndef ACME_FLEET_H
#define ACME_FLEET_H

#include <stddef.h>

#include "acme_seal.h"

/* "<prefix><kind>/<name>", malloc'd; kind one of "certs", "locks",
 * "challenges", "nodes"; name without '/' and control characters.  NULL
 * when out of memory or a part is empty or refused. */
char *acme_fleet_key(const char *prefix, const char *kind, const char *name);

/*
 * A certificate record: the chain as issued (leaf first), the private key
 * sealed (acme_seal, bound to the record's key name, so a record copied
 * under another id does not open), and who made it:
 *
 *   {"v": 1, "chain": PEM, "key": "acme-seal-v1:...", "kid": KEY-ID,
 *    "node": NAME, "issuer": ISSUER-BLOCK, "directory": URL,
 *    "issued_at": UNIX-TIME}
 */
typedef struct {
    const char  *chain_pem;     /* leaf first */
    const char  *key_pem;       /* the certificate's private key (PKCS#8
                                   PEM): sealed, never stored in clear */
    const char  *node;          /* the node that ordered it */
    const char  *issuer;        /* the issuer block */
    const char  *directory;     /* the CA's directory URL */
    long long    issued_at;
} acme_fleet_record_t;

/* The identifier of a seal key a record names ("kid"): the first 8 bytes
 * of SHA-256("acme-fleet-kid" | key), in hex (16 characters + NUL). */
void acme_fleet_key_id(const unsigned char seal_key[ACME_SEAL_KEY_LEN],
    char kid[17]);

/* The record's JSON (malloc'd) for store key name, or NULL with err. */
char *acme_fleet_record_encode(const acme_fleet_record_t *r,
    const unsigned char seal_key[ACME_SEAL_KEY_LEN], const char *name,
    char *err, size_t errlen);

/*
 * Reads a record back: opens the key, joins it with the chain into a
 * bundle (the local store's format: key PEM then chain PEM; acme_cert.h)
 * and checks that the key belongs to the leaf and the chain parses.
 * *bundle (bundle_len bytes, NUL-terminated; the caller frees it with
 * acme_bundle_free) and the leaf's notBefore / notAfter; *node and
 * *issuer malloc'd (NULL when absent).  Out pointers other than bundle
 * may be NULL.  0, or -1 with err (never showing key material), or
 * ACME_FLEET_OTHER_KEY with err when the record names another key file
 * (its "kid", acme_fleet_key_id): a node set up with another key_file,
 * which must neither install nor overwrite it.
 */
#define ACME_FLEET_OTHER_KEY  (-2)
int acme_fleet_record_decode(const char *json, size_t len,
    const unsigned char seal_key[ACME_SEAL_KEY_LEN], const char *name,
    char **bundle, size_t *bundle_len, long long *not_before,
    long long *not_after, char **node, char **issuer, char *err,
    size_t errlen);

/* What a node does next for one certificate. */
typedef enum {
    ACME_FLEET_IDLE = 0,        /* nothing until next_check */
    ACME_FLEET_INSTALL,         /* the store holds a newer certificate:
                                   install it (no order) */
    ACME_FLEET_LOCK,            /* due: take locks/<id> (if absent, under a
                                   fresh order lease) */
    ACME_FLEET_WAIT,            /* another node holds the lock: look again
                                   at next_check (its result arrives as a
                                   newer record) */
    ACME_FLEET_ORDER,           /* this node holds the lock: order, then
                                   write the record fenced by the lease */
    ACME_FLEET_ORDER_ALONE,     /* the store is unreachable and the served
                                   certificate is about to expire: order
                                   without a lock, publish later */
    ACME_FLEET_PUBLISH          /* a certificate ordered alone is newer than
                                   the store's: write it (if the record is
                                   still at the revision read) */
} acme_fleet_action_t;

typedef struct {
    long long   now;
    int         due;                /* the renewal policy (acme_job_due)
                                       says this node's certificate is due */
    long long   local_not_before;   /* the certificate served here; 0 none */
    long long   local_not_after;
    int         local_unpublished;  /* it was ordered alone (ORDER_ALONE)
                                       and is not in the store yet */
    int         store_reachable;    /* the last store request was answered */
    int         store_has_record;   /* certs/<id> exists and decodes */
    long long   store_not_before;
    long long   store_not_after;
    int         lock_mine;          /* locks/<id> is under this node's
                                       order lease */
    int         lock_other;         /* locks/<id> is another node's */
    long long   poll;               /* seconds between looks (> 0) */
} acme_fleet_facts_t;

/*
 * The next step for one certificate and when to look again (*next_check,
 * unix time).  The rules, in order:
 *   - store unreachable: order alone only inside the emergency window
 *     (acme_fleet_emergency) and when due; else keep serving and look
 *     again in poll;
 *   - a certificate ordered alone that is newer than the store's: PUBLISH;
 *   - the store's certificate is newer (a later notAfter) than the
 *     served one: INSTALL;
 *   - not due: IDLE;
 *   - due: ORDER when the lock is this node's, WAIT when another's, else
 *     LOCK.
 */
acme_fleet_action_t acme_fleet_next(const acme_fleet_facts_t *f,
    long long *next_check);

/* 1 when a certificate valid [not_before, not_after) (0, 0: none served)
 * is in its emergency window at now: none, or a tenth of its lifetime or
 * less left (the default expiry warning window), else 0. */
int acme_fleet_emergency(long long not_before, long long not_after,
    long long now);

/* "idle", "install", "lock", "wait", "order", "order alone", "publish" */
const char *acme_fleet_action_name(acme_fleet_action_t a);

/*
 * Challenge answers reach every node before the CA is asked to validate:
 * the ordering node published them at store revision rev; acked[i] is
 * the revision up to which live node i has mirrored challenges (its
 * nodes/<node> record).  1 when every live node has (acked >= rev), or
 * when max_wait_ms have passed since published_ms (a slow or vanished
 * node must not hold the order up for good: the order goes on, and a
 * validation that lands on that node fails and is retried with the
 * usual backoff); else 0.  *missing (may be
 * NULL): how many nodes are behind.
 */
int acme_fleet_challenges_ready(long long rev, const long long *acked,
    size_t n, long long now_ms, long long published_ms,
    long long max_wait_ms, size_t *missing);

#endif
