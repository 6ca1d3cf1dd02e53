/*
 * The table of published challenges (acme_chal_table.h): fixed-size
 * entries, found through two open-addressing indexes (by token, by
 * identifier) of 2 * capacity buckets each, linear probing, deletion by
 * shifting the rest of the run back (Knuth's algorithm R), and a stack of
 * the free entries.  Only drop and clear (writers, once per order) walk
 * every entry.
 */
#include <stdlib.h>
#include <string.h>

#include "acme_chal_table.h"

#define CHAL_NONE       UINT32_MAX
/* 2 * capacity buckets fit in a uint32_t */
#define CHAL_CAP_MAX    (UINT32_MAX / 4)

static acme_chal_bucket_t *
chal_index(const acme_chal_table_t *t, uint32_t cap, int by_ident)
{
    acme_chal_bucket_t  *b;

    b = (acme_chal_bucket_t *) (void *) ((char *) (uintptr_t) t
                                         + offsetof(acme_chal_table_t, entry)
                                         + (size_t) cap
                                           * sizeof(acme_chal_entry_t));
    return by_ident ? b + (size_t) 2 * cap : b;
}

static uint32_t *
chal_free(const acme_chal_table_t *t)
{
    /* after both indexes */
    return (uint32_t *) (void *) (chal_index(t, t->capacity, 0)
                                  + (size_t) 4 * t->capacity);
}

static char
ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* FNV-1a (32 bits) of key[0..len), of its lower-cased form when lower */
static uint32_t
chal_hash(const char *key, size_t len, int lower)
{
    uint32_t  h = 2166136261u;
    size_t    i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) (lower ? ascii_lower(key[i]) : key[i]);
        h *= 16777619u;
    }
    return h;
}

/* a bucket as written now: a writer may be changing it (seqlock readers) */
static uint32_t
load32(const uint32_t *p)
{
    return *(const volatile uint32_t *) p;
}

static void
index_insert(acme_chal_bucket_t *idx, uint32_t nb, uint32_t h, uint32_t ref)
{
    uint32_t  b, i;

    b = h % nb;
    for (i = 0; i < nb; i++) {
        if (idx[b].ref == 0) {
            idx[b].hash = h;
            idx[b].ref = ref;
            return;
        }
        if (++b == nb) {
            b = 0;
        }
    }
    /* not reached: at most capacity of the 2 * capacity buckets are used */
}

/*
 * Removes the bucket of entry ref (key hash h), then moves back every later
 * bucket of its run that a probe would no longer reach across the hole:
 * no tombstones, every probe as short as if the entry had never been added.
 */
static void
index_delete(acme_chal_bucket_t *idx, uint32_t nb, uint32_t h, uint32_t ref)
{
    uint32_t  b, i, j, home;

    b = h % nb;
    for (i = 0; i < nb && idx[b].ref != ref; i++) {
        if (idx[b].ref == 0) {
            return;
        }
        if (++b == nb) {
            b = 0;
        }
    }
    if (idx[b].ref != ref) {
        return;
    }

    j = b;
    for (i = 0; i < nb; i++) {
        if (++j == nb) {
            j = 0;
        }
        if (idx[j].ref == 0) {
            break;
        }
        /* stays when its home is cyclically in (b, j] */
        home = idx[j].hash % nb;
        if (b <= j ? (b < home && home <= j) : (b < home || home <= j)) {
            continue;
        }
        idx[b] = idx[j];
        b = j;
    }
    idx[b].hash = 0;
    idx[b].ref = 0;
}

acme_chal_table_t *
acme_chal_table_init(void *mem, size_t size)
{
    acme_chal_table_t  *t = mem;
    size_t              n;
    uint32_t           *fr, i;

    if (mem == NULL || size < ACME_CHAL_TABLE_SIZE(1)) {
        return NULL;
    }
    n = (size - ACME_CHAL_TABLE_SIZE(0))
        / (ACME_CHAL_TABLE_SIZE(1) - ACME_CHAL_TABLE_SIZE(0));
    if (n > CHAL_CAP_MAX) {
        n = CHAL_CAP_MAX;
    }
    memset(t, 0, ACME_CHAL_TABLE_SIZE(n));
    t->capacity = (uint32_t) n;

    /* popped from the top: the lowest index first */
    fr = chal_free(t);
    for (i = 0; i < t->capacity; i++) {
        fr[i] = t->capacity - 1 - i;
    }
    return t;
}

/*
 * The entry of token published under fence (by owner when match_owner),
 * or CHAL_NONE.
 */
static uint32_t
token_lookup(const acme_chal_table_t *t, const char *token, uint32_t h,
    acme_fence_t fence, int match_owner, uint64_t owner)
{
    uint32_t                  cap = t->capacity, nb = 2 * cap, b, i, ref;
    const acme_chal_bucket_t *idx = chal_index(t, cap, 0);
    const acme_chal_entry_t  *e;

    b = h % nb;
    for (i = 0; i < nb; i++) {
        ref = idx[b].ref;
        if (ref == 0) {
            break;
        }
        if (idx[b].hash == h && ref <= cap) {
            e = &t->entry[ref - 1];
            if (e->type != ACME_CHAL_FREE && e->fence == fence
                && (!match_owner || e->owner == owner)
                && strcmp(e->token, token) == 0)
            {
                return ref - 1;
            }
        }
        if (++b == nb) {
            b = 0;
        }
    }
    return CHAL_NONE;
}

/* Frees entry i: out of both indexes, onto the free stack. */
static void
entry_release(acme_chal_table_t *t, uint32_t i)
{
    uint32_t            cap = t->capacity;
    acme_chal_entry_t  *e = &t->entry[i];

    index_delete(chal_index(t, cap, 0), 2 * cap,
                 chal_hash(e->token, strlen(e->token), 0), i + 1);
    if (e->type == ACME_CHAL_TLS_ALPN_01) {
        index_delete(chal_index(t, cap, 1), 2 * cap,
                     chal_hash(e->identifier, strlen(e->identifier), 1),
                     i + 1);
    }
    memset(e, 0, sizeof(*e));
    chal_free(t)[cap - t->used] = i;
    t->used--;
}

int
acme_chal_table_add(acme_chal_table_t *t, acme_chal_type_t type,
    const char *identifier, const char *token, const char *key_authz,
    uint64_t owner, acme_fence_t fence)
{
    int                 fresh;
    size_t              tlen, ilen, klen, k;
    uint32_t            cap = t->capacity, h, i;
    acme_chal_entry_t  *e;

    tlen = token ? strlen(token) : 0;
    ilen = identifier ? strlen(identifier) : 0;
    klen = key_authz ? strlen(key_authz) : 0;

    if ((type != ACME_CHAL_HTTP_01 && type != ACME_CHAL_TLS_ALPN_01)
        || !acme_token_ok(token, tlen) || ilen > ACME_CHAL_IDENT_MAX
        || klen > ACME_CHAL_KEYAUTHZ_MAX
        || (type == ACME_CHAL_TLS_ALPN_01 && ilen == 0))
    {
        return ACME_CHAL_BAD;
    }

    h = chal_hash(token, tlen, 0);
    i = token_lookup(t, token, h, fence, 0, 0);
    fresh = (i == CHAL_NONE);

    if (fresh) {
        if (t->used >= cap) {
            return ACME_CHAL_FULL;
        }
        i = chal_free(t)[cap - t->used - 1];
        t->used++;

    } else if (t->entry[i].type == ACME_CHAL_TLS_ALPN_01) {
        /* replaced: its identifier may change */
        e = &t->entry[i];
        index_delete(chal_index(t, cap, 1), 2 * cap,
                     chal_hash(e->identifier, strlen(e->identifier), 1),
                     i + 1);
    }

    e = &t->entry[i];
    memset(e, 0, sizeof(*e));
    e->fence = fence;
    e->owner = owner;
    memcpy(e->token, token, tlen);
    for (k = 0; k < ilen; k++) {
        /* identifiers compare as lower case, as the SNI mapping returns them */
        e->identifier[k] = ascii_lower(identifier[k]);
    }
    memcpy(e->key_authz, key_authz, klen);
    e->type = type;

    if (fresh) {
        index_insert(chal_index(t, cap, 0), 2 * cap, h, i + 1);
    }
    if (type == ACME_CHAL_TLS_ALPN_01) {
        index_insert(chal_index(t, cap, 1), 2 * cap,
                     chal_hash(e->identifier, ilen, 1), i + 1);
    }
    return ACME_CHAL_OK;
}

/* Removes the entries of token under fence (by owner when match_owner). */
static void
token_remove(acme_chal_table_t *t, const char *token, acme_fence_t fence,
    int match_owner, uint64_t owner)
{
    uint32_t  h, i, n;

    if (token == NULL) {
        return;
    }
    h = chal_hash(token, strlen(token), 0);
    for (n = 0; n < t->capacity; n++) {
        i = token_lookup(t, token, h, fence, match_owner, owner);
        if (i == CHAL_NONE) {
            return;
        }
        entry_release(t, i);
    }
}

void
acme_chal_table_remove(acme_chal_table_t *t, const char *token,
    acme_fence_t fence)
{
    token_remove(t, token, fence, 0, 0);
}

int
acme_chal_table_mirror(acme_chal_table_t *t, acme_chal_type_t type,
    const char *identifier, const char *token, const char *key_authz,
    uint64_t owner, acme_fence_t fence)
{
    int  rc;

    if (token == NULL) {
        return ACME_CHAL_BAD;
    }

    if (token_lookup(t, token, chal_hash(token, strlen(token), 0), fence, 0,
                     0)
        != CHAL_NONE)
    {
        return 0;
    }

    rc = acme_chal_table_add(t, type, identifier, token, key_authz, owner,
                             fence);
    return rc == ACME_CHAL_OK ? 1 : rc;
}

void
acme_chal_table_remove_owner(acme_chal_table_t *t, const char *token,
    acme_fence_t fence, uint64_t owner)
{
    token_remove(t, token, fence, 1, owner);
}

void
acme_chal_table_drop(acme_chal_table_t *t, acme_fence_t fence, uint64_t owner)
{
    uint32_t            i;
    acme_chal_entry_t  *e;

    for (i = 0; i < t->capacity && t->used > 0; i++) {
        e = &t->entry[i];
        if (e->type != ACME_CHAL_FREE && e->fence == fence
            && (owner == ACME_CHAL_ANY_OWNER || e->owner == owner))
        {
            entry_release(t, i);
        }
    }
}

void
acme_chal_table_clear(acme_chal_table_t *t)
{
    acme_chal_table_init(t, ACME_CHAL_TABLE_SIZE(t->capacity));
}

/* key[0..len) equals s (NUL-terminated within max bytes), ASCII
 * case-insensitively when nocase; bounded reads of s */
static int
key_equal(const char *s, size_t max, const char *key, size_t len, int nocase)
{
    size_t  i;

    if (len >= max) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == '\0'
            || (nocase ? ascii_lower(s[i]) != ascii_lower(key[i])
                       : s[i] != key[i]))
        {
            return 0;
        }
    }
    return s[len] == '\0';
}

int
acme_chal_table_find(const acme_chal_table_t *t, acme_chal_type_t type,
    const char *key, size_t key_len, acme_fence_t fence, char *out,
    size_t outlen)
{
    int                       alpn;
    size_t                    n;
    uint32_t                  cap, nb, h, b, i, ref;
    const acme_chal_entry_t  *e;
    const acme_chal_bucket_t *idx;

    if (outlen == 0) {
        return -1;
    }
    out[0] = '\0';

    if (type != ACME_CHAL_HTTP_01 && type != ACME_CHAL_TLS_ALPN_01) {
        return -1;
    }
    alpn = (type == ACME_CHAL_TLS_ALPN_01);
    if (key_len > (alpn ? ACME_CHAL_IDENT_MAX : ACME_TOKEN_MAX)) {
        return -1;
    }

    /* fixed by init; the buckets and entries may be written meanwhile */
    cap = t->capacity;
    if (cap == 0 || cap > CHAL_CAP_MAX) {
        return -1;
    }
    nb = 2 * cap;
    idx = chal_index(t, cap, alpn);
    h = chal_hash(key, key_len, alpn);

    b = h % nb;
    for (i = 0; i < nb; i++) {
        ref = load32(&idx[b].ref);
        if (ref == 0) {
            break;
        }
        if (ref <= cap && load32(&idx[b].hash) == h) {
            e = &t->entry[ref - 1];
            if (e->type == (uint32_t) type && e->fence == fence
                && (alpn ? key_equal(e->identifier, sizeof(e->identifier),
                                     key, key_len, 1)
                         : key_equal(e->token, sizeof(e->token), key,
                                     key_len, 0)))
            {
                n = strnlen(e->key_authz, sizeof(e->key_authz));
                if (n > outlen - 1) {
                    n = outlen - 1;
                }
                memcpy(out, e->key_authz, n);
                out[n] = '\0';
                return (int) n;
            }
        }
        if (++b == nb) {
            b = 0;
        }
    }
    return -1;
}

int
acme_chal_table_check(const acme_chal_table_t *t)
{
    int                        rc = -1, longest = 0, by_ident;
    uint8_t                   *seen;
    uint32_t                   cap = t->capacity, nb = 2 * cap, used = 0;
    uint32_t                   alpn = 0, b, k, home, dist, ref, f, n;
    const uint32_t            *fr = chal_free(t);
    const acme_chal_entry_t   *e;
    const acme_chal_bucket_t  *idx;

    /* per entry: bit 0 in the token index, bit 1 in the identifier index,
     * bit 2 on the free stack */
    seen = calloc(cap ? cap : 1, 1);
    if (seen == NULL) {
        return -1;
    }

    for (k = 0; k < cap; k++) {
        if (t->entry[k].type == ACME_CHAL_FREE) {
            continue;
        }
        used++;
        if (t->entry[k].type == ACME_CHAL_TLS_ALPN_01) {
            alpn++;
        } else if (t->entry[k].type != ACME_CHAL_HTTP_01) {
            goto done;
        }
    }
    if (used != t->used) {
        goto done;
    }

    for (k = 0; k < cap - used; k++) {
        f = fr[k];
        if (f >= cap || t->entry[f].type != ACME_CHAL_FREE || (seen[f] & 4)) {
            goto done;
        }
        seen[f] |= 4;
    }

    for (by_ident = 0; by_ident < 2; by_ident++) {
        idx = chal_index(t, cap, by_ident);
        n = 0;
        for (b = 0; b < nb; b++) {
            ref = idx[b].ref;
            if (ref == 0) {
                continue;
            }
            n++;
            if (ref > cap || (seen[ref - 1] & (1 << by_ident))) {
                goto done;
            }
            seen[ref - 1] |= 1 << by_ident;
            e = &t->entry[ref - 1];
            if (e->type == ACME_CHAL_FREE
                || (by_ident && e->type != ACME_CHAL_TLS_ALPN_01)
                || idx[b].hash
                   != (by_ident
                       ? chal_hash(e->identifier, strlen(e->identifier), 1)
                       : chal_hash(e->token, strlen(e->token), 0)))
            {
                goto done;
            }
            /* reachable: no empty bucket from its home to it */
            home = idx[b].hash % nb;
            dist = (b + nb - home) % nb;
            for (k = 0; k < dist; k++) {
                if (idx[(home + k) % nb].ref == 0) {
                    goto done;
                }
            }
            if ((int) dist + 1 > longest) {
                longest = (int) dist + 1;
            }
        }
        if (n != (by_ident ? alpn : used)) {
            goto done;
        }
    }
    rc = longest;

done:
    free(seen);
    return rc;
}
