/*
 * The table of published challenges (acme_chal_table.h): a linear scan of
 * fixed-size entries; tables hold tens to hundreds of entries.
 */
#include <string.h>
#include <strings.h>

#include "acme_chal_table.h"

acme_chal_table_t *
acme_chal_table_init(void *mem, size_t size)
{
    acme_chal_table_t  *t = mem;
    size_t              n;

    if (mem == NULL || size < ACME_CHAL_TABLE_SIZE(1)) {
        return NULL;
    }
    n = (size - offsetof(acme_chal_table_t, entry))
        / sizeof(acme_chal_entry_t);
    if (n > UINT32_MAX) {
        n = UINT32_MAX;
    }
    memset(t, 0, ACME_CHAL_TABLE_SIZE(n));
    t->capacity = (uint32_t) n;
    return t;
}

static void
entry_free(acme_chal_entry_t *e)
{
    memset(e, 0, sizeof(*e));
}

int
acme_chal_table_add(acme_chal_table_t *t, acme_chal_type_t type,
    const char *identifier, const char *token, const char *key_authz,
    uint64_t owner, acme_fence_t fence)
{
    size_t              tlen, ilen, klen, i;
    acme_chal_entry_t  *e, *free_e = NULL;

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

    for (i = 0; i < t->capacity; i++) {
        e = &t->entry[i];
        if (e->type != ACME_CHAL_FREE && e->fence == fence
            && strcmp(e->token, token) == 0)
        {
            free_e = e;
            break;
        }
        if (free_e == NULL && e->type == ACME_CHAL_FREE) {
            free_e = e;
        }
    }
    if (free_e == NULL) {
        return ACME_CHAL_FULL;
    }

    e = free_e;
    entry_free(e);
    e->fence = fence;
    e->owner = owner;
    memcpy(e->token, token, tlen);
    for (i = 0; i < ilen; i++) {
        /* identifiers compare as lower case, as the SNI mapping returns them */
        e->identifier[i] = (identifier[i] >= 'A' && identifier[i] <= 'Z')
                           ? (char) (identifier[i] - 'A' + 'a')
                           : identifier[i];
    }
    memcpy(e->key_authz, key_authz, klen);
    e->type = type;
    return ACME_CHAL_OK;
}

void
acme_chal_table_remove(acme_chal_table_t *t, const char *token,
    acme_fence_t fence)
{
    uint32_t            i;
    acme_chal_entry_t  *e;

    for (i = 0; i < t->capacity; i++) {
        e = &t->entry[i];
        if (e->type != ACME_CHAL_FREE && e->fence == fence
            && strcmp(e->token, token) == 0)
        {
            entry_free(e);
        }
    }
}

int
acme_chal_table_mirror(acme_chal_table_t *t, acme_chal_type_t type,
    const char *identifier, const char *token, const char *key_authz,
    uint64_t owner, acme_fence_t fence)
{
    int                 rc;
    uint32_t            i;
    acme_chal_entry_t  *e;

    if (token == NULL) {
        return ACME_CHAL_BAD;
    }

    for (i = 0; i < t->capacity; i++) {
        e = &t->entry[i];
        if (e->type != ACME_CHAL_FREE && e->fence == fence
            && strcmp(e->token, token) == 0)
        {
            return 0;
        }
    }

    rc = acme_chal_table_add(t, type, identifier, token, key_authz, owner,
                             fence);
    return rc == ACME_CHAL_OK ? 1 : rc;
}

void
acme_chal_table_remove_owner(acme_chal_table_t *t, const char *token,
    acme_fence_t fence, uint64_t owner)
{
    uint32_t            i;
    acme_chal_entry_t  *e;

    for (i = 0; i < t->capacity; i++) {
        e = &t->entry[i];
        if (e->type != ACME_CHAL_FREE && e->fence == fence
            && e->owner == owner && strcmp(e->token, token) == 0)
        {
            entry_free(e);
        }
    }
}

void
acme_chal_table_drop(acme_chal_table_t *t, acme_fence_t fence, uint64_t owner)
{
    uint32_t            i;
    acme_chal_entry_t  *e;

    for (i = 0; i < t->capacity; i++) {
        e = &t->entry[i];
        if (e->type != ACME_CHAL_FREE && e->fence == fence
            && (owner == ACME_CHAL_ANY_OWNER || e->owner == owner))
        {
            entry_free(e);
        }
    }
}

void
acme_chal_table_clear(acme_chal_table_t *t)
{
    memset(t->entry, 0, (size_t) t->capacity * sizeof(acme_chal_entry_t));
}

int
acme_chal_table_find(const acme_chal_table_t *t, acme_chal_type_t type,
    const char *key, size_t key_len, acme_fence_t fence, char *out,
    size_t outlen)
{
    size_t                    n;
    uint32_t                  i;
    const acme_chal_entry_t  *e;

    if (outlen == 0) {
        return -1;
    }
    out[0] = '\0';

    for (i = 0; i < t->capacity; i++) {
        e = &t->entry[i];
        if (e->type != (uint32_t) type || e->fence != fence) {
            continue;
        }

        /* bounded reads: an entry may be written meanwhile (seqlock) */
        if (type == ACME_CHAL_HTTP_01) {
            if (strnlen(e->token, sizeof(e->token)) != key_len
                || memcmp(e->token, key, key_len) != 0)
            {
                continue;
            }

        } else if (strnlen(e->identifier, sizeof(e->identifier)) != key_len
                   || strncasecmp(e->identifier, key, key_len) != 0)
        {
            continue;
        }

        n = strnlen(e->key_authz, sizeof(e->key_authz));
        if (n > outlen - 1) {
            n = outlen - 1;
        }
        memcpy(out, e->key_authz, n);
        out[n] = '\0';
        return (int) n;
    }
    return -1;
}
