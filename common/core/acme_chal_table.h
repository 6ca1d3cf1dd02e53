/*
 * The table of published http-01 tokens and pending tls-alpn-01
 * authorizations, as both servers keep it in shared memory and look it up
 * on the request / handshake path.
 *
 * Fixed-size entries in memory the caller provides (nginx: a block of its
 * slab zone, Apache: the end of its anonymous segment): the table holds no
 * pointer, only inline arrays and entry indexes, so it works at any address
 * in every process mapping it.  Each entry carries the fence (acme_fence.h)
 * of the order that published it and an owner (the host's certificate: an
 * index or an offset, only compared): an order removes only its own
 * entries, and lookups answer only the given fence's.
 *
 * Two hash indexes follow the entries (open addressing, linear probing,
 * FNV-1a): one of every entry by token, one of the tls-alpn-01 entries by
 * lower-cased identifier, each with twice as many buckets as entries, so a
 * lookup, an add or a removal reads a few buckets and the entries whose
 * key hashes alike, not the whole table.  A removal shifts the buckets
 * after it back (no tombstones), so probes stay as short after any number
 * of adds and removals as in a fresh table.  A stack of the free entries'
 * indexes follows the indexes.
 *
 * Locking is the host's: every function is called with the host's lock
 * held (nginx: the zone's mutex) or, for acme_chal_table_find, inside the
 * host's read protocol (Apache: a seqlock retry loop, so find tolerates an
 * entry written concurrently: every read is bounded and the answer is
 * always terminated; the host discards it when the sequence moved): a
 * probe reads at most every bucket once, and a bucket read while written is
 * range-checked before the entry it names is read.
 */
#ifndef ACME_CHAL_TABLE_H
#define ACME_CHAL_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "acme_fence.h"
#include "acme_util.h"

#define ACME_CHAL_IDENT_MAX     255     /* a DNS name or an IP literal */
#define ACME_CHAL_KEYAUTHZ_MAX  256

typedef enum {
    ACME_CHAL_FREE = 0,                 /* an unused entry */
    ACME_CHAL_HTTP_01,                  /* found by token */
    ACME_CHAL_TLS_ALPN_01               /* found by identifier */
} acme_chal_type_t;

#define ACME_CHAL_ANY_OWNER     UINT64_MAX

typedef struct {
    acme_fence_t    fence;              /* of the order that published it */
    uint64_t        owner;
    uint32_t        type;               /* acme_chal_type_t */
    char            token[ACME_TOKEN_MAX + 1];
    char            identifier[ACME_CHAL_IDENT_MAX + 1];    /* lower case */
    char            key_authz[ACME_CHAL_KEYAUTHZ_MAX + 1];
} acme_chal_entry_t;

/* A bucket of an index: the key's hash, and the entry (index + 1; 0: an
 * empty bucket). */
typedef struct {
    uint32_t            hash;
    uint32_t            ref;
} acme_chal_bucket_t;

typedef struct {
    uint32_t            capacity;       /* entries; fixed by init */
    uint32_t            used;           /* entries in use */
    acme_chal_entry_t   entry[];
    /*
     * then, after entry[capacity]:
     * acme_chal_bucket_t  by_token[2 * capacity];
     * acme_chal_bucket_t  by_ident[2 * capacity];
     * uint32_t            free[capacity];  free entries' indexes, a stack of
     *                                      capacity - used
     */
} acme_chal_table_t;

/* Bytes a table of n entries takes (a constant expression). */
#define ACME_CHAL_TABLE_SIZE(n)                                             \
    (offsetof(acme_chal_table_t, entry) + (size_t) (n)                      \
     * (sizeof(acme_chal_entry_t) + 4 * sizeof(acme_chal_bucket_t)          \
        + sizeof(uint32_t)))

/* An empty table in mem[0..size) (aligned for uint64_t), with as many
 * entries as fit; NULL when not even one does. */
acme_chal_table_t *acme_chal_table_init(void *mem, size_t size);

/*
 * The tests' consistency check (writers' state, no concurrent writer): the
 * indexes hold exactly the entries in use, each where its probe finds it,
 * the free stack exactly the others.  The longest probe (buckets read by a
 * lookup of a key that is in the table), or -1 when inconsistent.
 */
int acme_chal_table_check(const acme_chal_table_t *t);

#define ACME_CHAL_OK     0
#define ACME_CHAL_BAD   -1              /* malformed entry: nothing added */
#define ACME_CHAL_FULL  -2              /* no free entry */

/*
 * Publishes a challenge: token a well-formed ACME token (acme_token_ok),
 * identifier (may be NULL for http-01) at most ACME_CHAL_IDENT_MAX
 * characters, stored in lower case, required for tls-alpn-01; key_authz at
 * most ACME_CHAL_KEYAUTHZ_MAX.  An entry with the same token and fence is
 * replaced.  The caller has checked that fence is current.
 */
int acme_chal_table_add(acme_chal_table_t *t, acme_chal_type_t type,
    const char *identifier, const char *token, const char *key_authz,
    uint64_t owner, acme_fence_t fence);

/* Removes the entries of token published under fence. */
void acme_chal_table_remove(acme_chal_table_t *t, const char *token,
    acme_fence_t fence);

/*
 * A fleet's challenge (issue 15: another node published it in the shared
 * store) mirrored here, so that this server answers it too: added under
 * owner like acme_chal_table_add, unless an entry of that token and fence
 * is here already (this server's own, or mirrored before: left as it is).
 * 1 added, 0 already here, or ACME_CHAL_BAD / ACME_CHAL_FULL.
 */
int acme_chal_table_mirror(acme_chal_table_t *t, acme_chal_type_t type,
    const char *identifier, const char *token, const char *key_authz,
    uint64_t owner, acme_fence_t fence);

/* Removes the entries of token that owner published under fence (a
 * mirror that went away; never another owner's). */
void acme_chal_table_remove_owner(acme_chal_table_t *t, const char *token,
    acme_fence_t fence, uint64_t owner);

/* Removes what owner (ACME_CHAL_ANY_OWNER: anyone) published under fence. */
void acme_chal_table_drop(acme_chal_table_t *t, acme_fence_t fence,
    uint64_t owner);

/* Removes every entry (a new driver: what older ones left behind). */
void acme_chal_table_clear(acme_chal_table_t *t);

/*
 * Looks up the pending challenge of type published under fence: http-01 by
 * its token, tls-alpn-01 by identifier (ASCII case-insensitively), key
 * key[0..key_len).  Copies its key authorization into out (NUL-terminated,
 * truncated to outlen - 1 characters) and returns its length; -1 when
 * nothing matches (out then holds "").
 */
int acme_chal_table_find(const acme_chal_table_t *t, acme_chal_type_t type,
    const char *key, size_t key_len, acme_fence_t fence, char *out,
    size_t outlen);

#endif
