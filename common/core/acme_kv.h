/*
 * The shared store of a fleet (several servers, one certificate): the
 * operations the certificate lifecycle asks of a key-value store, and their
 * results, independent of the engine that keeps them (docs/design.md
 * "Shared store").  A backend turns an acme_kv_op_t into its own protocol
 * and its answer into an acme_kv_result_t; etcd v3 is the first
 * (acme_etcd.h), the local directory store stays the default for one
 * server.  The lifecycle code sees only these types, so a second backend
 * (Redis) adds a codec and a transport, not a change of the lifecycle.
 *
 * What the lifecycle needs of a backend:
 *   - linearizable reads and writes of small values (certificates, sealed
 *     keys, challenge answers) under '/'-separated keys;
 *   - conditional writes: only when absent, only at a known revision, and
 *     fenced: only while a lock key is still held by a given lease, so a
 *     node paused past its lease cannot overwrite a newer result;
 *   - leases with a TTL (seconds), kept alive by the holder, whose keys
 *     vanish when the lease expires or is revoked;
 *   - listing a prefix from a revision on (a change feed the nodes poll,
 *     or watch where the backend streams).
 * Revisions are the store's: a number that grows with every change
 * (etcd's revision); 0 means "none" (a key that does not exist).
 */
#ifndef ACME_KV_H
#define ACME_KV_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ACME_KV_GET = 0,            /* key */
    ACME_KV_LIST,               /* every key below the prefix key */
    ACME_KV_PUT,                /* key = value, if cond (and fence) hold */
    ACME_KV_DELETE,             /* key, if cond (and fence) hold */
    ACME_KV_LEASE_GRANT,        /* a new lease of ttl seconds */
    ACME_KV_LEASE_KEEPALIVE,    /* lease's TTL starts again */
    ACME_KV_LEASE_REVOKE,       /* lease ends now, its keys are deleted */
    ACME_KV_AUTH                /* user + password -> token (etcd auth) */
} acme_kv_kind_t;

typedef enum {
    ACME_KV_ANY = 0,            /* unconditional */
    ACME_KV_IF_ABSENT,          /* the key does not exist */
    ACME_KV_IF_REVISION         /* the key's last change is at revision */
} acme_kv_cond_t;

typedef struct {
    acme_kv_kind_t   kind;
    const char      *key;           /* GET, PUT, DELETE: the key; LIST: the
                                       prefix (every key starting with it) */
    const void      *value;         /* PUT: value_len bytes, any content */
    size_t           value_len;
    acme_kv_cond_t   cond;          /* PUT, DELETE */
    int64_t          revision;      /* cond ACME_KV_IF_REVISION */
    int64_t          lease;         /* PUT: the key lives as long as this
                                       lease (0: no lease); LEASE_KEEPALIVE,
                                       LEASE_REVOKE: the lease */
    const char      *fence_key;     /* PUT, DELETE (NULL: not fenced): done
                                       only while fence_key exists under
                                       fence_lease */
    int64_t          fence_lease;
    int64_t          min_revision;  /* LIST: only keys changed at or after
                                       this revision (0: all) */
    int              keys_only;     /* LIST: no values */
    long             limit;         /* LIST: at most this many (0: all) */
    long             ttl;           /* LEASE_GRANT: seconds, >= 1 */
    const char      *user;          /* AUTH */
    const char      *password;      /* AUTH; never logged */
} acme_kv_op_t;

typedef enum {
    ACME_KV_OK = 0,
    ACME_KV_NOT_FOUND,          /* GET: no such key; KEEPALIVE/REVOKE: the
                                   lease is gone (expired or revoked) */
    ACME_KV_CONFLICT,           /* PUT/DELETE: cond did not hold */
    ACME_KV_FENCED,             /* PUT/DELETE: fence_key is not (or no
                                   longer) held by fence_lease */
    ACME_KV_DENIED,             /* authentication needed or refused */
    ACME_KV_UNAVAILABLE,        /* the endpoint could not answer (no leader,
                                   overloaded, unreachable): try another */
    ACME_KV_ERROR               /* a malformed or unexpected answer */
} acme_kv_status_t;

typedef struct {
    char            *key;           /* malloc'd, NUL-terminated */
    unsigned char   *value;         /* malloc'd, value_len bytes + a NUL;
                                       NULL with keys_only */
    size_t           value_len;
    int64_t          create_revision;
    int64_t          mod_revision;
    int64_t          lease;         /* 0: none */
} acme_kv_pair_t;

typedef struct {
    acme_kv_status_t  status;
    int64_t           revision;     /* the store's revision when it answered
                                       (0 when it did not say) */
    acme_kv_pair_t   *pairs;        /* GET (0 or 1), LIST, and PUT/DELETE
                                       on CONFLICT: the key as it is now */
    size_t            n_pairs;
    int               more;         /* LIST: the limit cut the list */
    int64_t           lease;        /* LEASE_GRANT: the new lease */
    long              ttl;          /* LEASE_GRANT, LEASE_KEEPALIVE: seconds
                                       the lease has left */
    char             *token;        /* AUTH: malloc'd */
    char              err[256];     /* why, when status != ACME_KV_OK */
} acme_kv_result_t;

/* Frees what r holds and zeroes it; NULL is fine. */
void acme_kv_result_free(acme_kv_result_t *r);

/* "ok", "not found", "conflict", "fenced", "denied", "unavailable",
 * "error". */
const char *acme_kv_status_name(acme_kv_status_t s);

/*
 * The smallest key greater than every key starting with prefix (etcd's
 * range_end for a prefix): prefix with its last byte below 0xff
 * incremented and the rest cut.  malloc'd into *end (*end_len bytes);
 * 0, or -1 (out of memory, or a prefix of 0xff bytes only: no end).
 */
int acme_kv_prefix_end(const char *prefix, unsigned char **end,
    size_t *end_len);

#endif
