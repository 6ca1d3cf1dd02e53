#include "unit.h"
#include "acme_chal_table.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MEM_ENTRIES  64

/* a table of n entries in caller memory, as a host provides it */
static uint64_t mem[(ACME_CHAL_TABLE_SIZE(MEM_ENTRIES) + 7) / 8];

static acme_chal_table_t *
table(size_t n)
{
    memset(mem, 0xa5, sizeof(mem));    /* init must not rely on zeroes */
    return acme_chal_table_init(mem, ACME_CHAL_TABLE_SIZE(n));
}

static int
find_http(acme_chal_table_t *t, const char *token, acme_fence_t f, char *out,
    size_t outlen)
{
    return acme_chal_table_find(t, ACME_CHAL_HTTP_01, token, strlen(token),
                                f, out, outlen);
}

static int
find_alpn(acme_chal_table_t *t, const char *id, acme_fence_t f, char *out,
    size_t outlen)
{
    return acme_chal_table_find(t, ACME_CHAL_TLS_ALPN_01, id, strlen(id), f,
                                out, outlen);
}

UNIT_TEST(chal_table_init)
{
    acme_chal_table_t *t;

    CHECK(acme_chal_table_init(mem, ACME_CHAL_TABLE_SIZE(1) - 1) == NULL);
    CHECK(acme_chal_table_init(NULL, 1 << 20) == NULL);

    t = table(1);
    CHECK(t != NULL);
    CHECK_INT(t->capacity, 1);

    /* capacity from the size: what fits, nothing beyond */
    t = acme_chal_table_init(mem, ACME_CHAL_TABLE_SIZE(3)
                                  + sizeof(acme_chal_entry_t) - 1);
    CHECK_INT(t->capacity, 3);
    t = table(8);
    CHECK_INT(t->capacity, 8);
    CHECK_INT(t->entry[7].type, ACME_CHAL_FREE);
}

UNIT_TEST(chal_table_add_find_remove)
{
    acme_chal_table_t *t = table(4);
    char               out[ACME_CHAL_KEYAUTHZ_MAX + 1];

    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, "a.example", "tok-1",
                                  "tok-1.thumb", 7, 1), ACME_CHAL_OK);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "tok_2",
                                  "tok_2.thumb", 7, 1), ACME_CHAL_OK);

    CHECK_INT(find_http(t, "tok-1", 1, out, sizeof(out)), 11);
    CHECK_STR(out, "tok-1.thumb");
    CHECK_INT(find_http(t, "tok_2", 1, out, sizeof(out)), 11);
    CHECK_STR(out, "tok_2.thumb");

    /* the key is exactly key[0..len): a prefix or a longer key is no match */
    CHECK_INT(acme_chal_table_find(t, ACME_CHAL_HTTP_01, "tok-1xyz", 5, 1,
                                   out, sizeof(out)), 11);
    CHECK_INT(acme_chal_table_find(t, ACME_CHAL_HTTP_01, "tok-1", 4, 1,
                                   out, sizeof(out)), -1);
    CHECK_STR(out, "");
    CHECK_INT(find_http(t, "tok-12", 1, out, sizeof(out)), -1);

    /* an http-01 token is not found as tls-alpn-01, nor by identifier */
    CHECK_INT(find_alpn(t, "tok-1", 1, out, sizeof(out)), -1);
    CHECK_INT(find_alpn(t, "a.example", 1, out, sizeof(out)), -1);

    /* the answer is truncated to the buffer, always terminated */
    CHECK_INT(find_http(t, "tok-1", 1, out, 6), 5);
    CHECK_STR(out, "tok-1");
    CHECK_INT(find_http(t, "tok-1", 1, out, 0), -1);

    acme_chal_table_remove(t, "tok-1", 1);
    CHECK_INT(find_http(t, "tok-1", 1, out, sizeof(out)), -1);
    CHECK_INT(find_http(t, "tok_2", 1, out, sizeof(out)), 11);

    /* the same token and fence again replaces the entry */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "tok_2", "new",
                                  7, 1), ACME_CHAL_OK);
    CHECK_INT(find_http(t, "tok_2", 1, out, sizeof(out)), 3);
    CHECK_STR(out, "new");
    acme_chal_table_remove(t, "tok_2", 1);
    CHECK_INT(find_http(t, "tok_2", 1, out, sizeof(out)), -1);
}

UNIT_TEST(chal_table_alpn_identifier_case)
{
    acme_chal_table_t *t = table(4);
    char               out[64];

    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, "WWW.Example.TEST",
                                  "tok", "tok.thumb", 0, 3), ACME_CHAL_OK);

    /* stored in lower case, found in any case */
    CHECK_STR(t->entry[0].identifier, "www.example.test");
    CHECK_INT(find_alpn(t, "www.example.test", 3, out, sizeof(out)), 9);
    CHECK_STR(out, "tok.thumb");
    CHECK_INT(find_alpn(t, "WWW.EXAMPLE.test", 3, out, sizeof(out)), 9);
    CHECK_INT(find_alpn(t, "www.example.tes", 3, out, sizeof(out)), -1);
    CHECK_INT(find_alpn(t, "www.example.test.", 3, out, sizeof(out)), -1);

    /* found by identifier only, not by token; removed by token */
    CHECK_INT(find_http(t, "tok", 3, out, sizeof(out)), -1);
    acme_chal_table_remove(t, "tok", 3);
    CHECK_INT(find_alpn(t, "www.example.test", 3, out, sizeof(out)), -1);

    /* an IP literal identifier (RFC 8738) */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, "::1", "t2", "k",
                                  0, 3), ACME_CHAL_OK);
    CHECK_INT(find_alpn(t, "::1", 3, out, sizeof(out)), 1);
}

UNIT_TEST(chal_table_fence)
{
    acme_chal_table_t *t = table(8);
    char               out[64];

    /* owner 1 and 2 under fence 5; owner 1 under a stale fence 4 */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "old", "o", 1, 4),
              ACME_CHAL_OK);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "a", "a1", 1, 5),
              ACME_CHAL_OK);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "b", "b2", 2, 5),
              ACME_CHAL_OK);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, "x.test", "c", "c2",
                                  2, 5), ACME_CHAL_OK);

    /* lookups answer only the given fence's entries */
    CHECK_INT(find_http(t, "old", 5, out, sizeof(out)), -1);
    CHECK_INT(find_http(t, "old", 4, out, sizeof(out)), 1);
    CHECK_INT(find_http(t, "a", 4, out, sizeof(out)), -1);
    CHECK_INT(find_http(t, "a", 5, out, sizeof(out)), 2);
    CHECK_INT(find_http(t, "a", ACME_FENCE_NONE, out, sizeof(out)), -1);

    /* the same token under another fence is another entry */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "a", "a-old",
                                  1, 4), ACME_CHAL_OK);
    CHECK_INT(find_http(t, "a", 5, out, sizeof(out)), 2);
    CHECK_STR(out, "a1");
    CHECK_INT(find_http(t, "a", 4, out, sizeof(out)), 5);

    /* a stale holder removes only its own generation's entries */
    acme_chal_table_remove(t, "a", 4);
    CHECK_INT(find_http(t, "a", 5, out, sizeof(out)), 2);
    CHECK_INT(find_http(t, "a", 4, out, sizeof(out)), -1);
    acme_chal_table_drop(t, 4, 2);
    CHECK_INT(find_http(t, "b", 5, out, sizeof(out)), 2);
    acme_chal_table_drop(t, 4, ACME_CHAL_ANY_OWNER);
    CHECK_INT(find_http(t, "old", 4, out, sizeof(out)), -1);
    CHECK_INT(find_http(t, "a", 5, out, sizeof(out)), 2);
    CHECK_INT(find_http(t, "b", 5, out, sizeof(out)), 2);

    /* drop by owner and fence: the other owner's entries stay */
    acme_chal_table_drop(t, 5, 2);
    CHECK_INT(find_http(t, "b", 5, out, sizeof(out)), -1);
    CHECK_INT(find_alpn(t, "x.test", 5, out, sizeof(out)), -1);
    CHECK_INT(find_http(t, "a", 5, out, sizeof(out)), 2);

    /* clear: everything */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "z", "z", 9, 6),
              ACME_CHAL_OK);
    acme_chal_table_clear(t);
    CHECK_INT(find_http(t, "a", 5, out, sizeof(out)), -1);
    CHECK_INT(find_http(t, "z", 6, out, sizeof(out)), -1);
    CHECK_INT(t->capacity, 8);
}

UNIT_TEST(chal_table_full)
{
    acme_chal_table_t *t = table(2);
    char               out[64];

    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "a", "1", 0, 1),
              ACME_CHAL_OK);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "b", "2", 0, 1),
              ACME_CHAL_OK);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "c", "3", 0, 1),
              ACME_CHAL_FULL);
    CHECK_INT(find_http(t, "c", 1, out, sizeof(out)), -1);

    /* replacing needs no free entry */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "b", "2b", 0, 1),
              ACME_CHAL_OK);

    /* a removed entry is reused */
    acme_chal_table_remove(t, "a", 1);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "c", "3", 0, 1),
              ACME_CHAL_OK);
    CHECK_INT(find_http(t, "c", 1, out, sizeof(out)), 1);
    CHECK_INT(find_http(t, "b", 1, out, sizeof(out)), 2);
}

UNIT_TEST(chal_table_bad_entry)
{
    acme_chal_table_t *t = table(4);
    char               tok[ACME_TOKEN_MAX + 2], id[ACME_CHAL_IDENT_MAX + 2];
    char               ka[ACME_CHAL_KEYAUTHZ_MAX + 2];
    int                i;

    /* tokens: base64url, 1 to ACME_TOKEN_MAX characters (acme_token_ok) */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "", "k", 0, 1),
              ACME_CHAL_BAD);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, NULL, "k", 0, 1),
              ACME_CHAL_BAD);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "a/b", "k", 0, 1),
              ACME_CHAL_BAD);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "a.b", "k", 0, 1),
              ACME_CHAL_BAD);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "ab=", "k", 0, 1),
              ACME_CHAL_BAD);

    memset(tok, 'A', sizeof(tok));
    tok[ACME_TOKEN_MAX + 1] = '\0';
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, tok, "k", 0, 1),
              ACME_CHAL_BAD);
    tok[ACME_TOKEN_MAX] = '\0';
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, tok, "k", 0, 1),
              ACME_CHAL_OK);

    /* tls-alpn-01 needs an identifier; identifiers and key authorizations
     * have a maximum length */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, NULL, "t", "k", 0,
                                  1), ACME_CHAL_BAD);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, "", "t", "k", 0,
                                  1), ACME_CHAL_BAD);
    for (i = 0; i < (int) sizeof(id) - 1; i++) {
        id[i] = 'a';
    }
    id[sizeof(id) - 1] = '\0';
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, id, "t", "k", 0,
                                  1), ACME_CHAL_BAD);
    id[ACME_CHAL_IDENT_MAX] = '\0';
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, id, "t", "k", 0,
                                  1), ACME_CHAL_OK);

    memset(ka, 'k', sizeof(ka));
    ka[sizeof(ka) - 1] = '\0';
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "u", ka, 0, 1),
              ACME_CHAL_BAD);
    ka[ACME_CHAL_KEYAUTHZ_MAX] = '\0';
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "u", ka, 0, 1),
              ACME_CHAL_OK);

    /* no such type */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_FREE, NULL, "v", "k", 0, 1),
              ACME_CHAL_BAD);
    CHECK_INT(acme_chal_table_add(t, (acme_chal_type_t) 7, NULL, "v", "k", 0,
                                  1), ACME_CHAL_BAD);

    /* the refused entries took no room: 3 added, one left */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "v", "k", 0, 1),
              ACME_CHAL_OK);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "w", "k", 0, 1),
              ACME_CHAL_FULL);
}

/* a fleet's challenge mirrored (issue 15): never over this server's own,
 * removed only as the mirror's owner */
UNIT_TEST(chal_table_mirror)
{
    char                out[64];
    acme_chal_table_t  *t;

    t = table(2);
    CHECK(t != NULL);
    if (t == NULL) {
        return;
    }

    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "tokA", "own",
                                  1, 5), ACME_CHAL_OK);
    /* the store lists this server's own challenge too: left as it is */
    CHECK_INT(acme_chal_table_mirror(t, ACME_CHAL_HTTP_01, NULL, "tokA",
                                     "other", 99, 5), 0);
    CHECK_INT(find_http(t, "tokA", 5, out, sizeof(out)), 3);
    CHECK_STR(out, "own");

    CHECK_INT(acme_chal_table_mirror(t, ACME_CHAL_TLS_ALPN_01, "B.test",
                                     "tokB", "kb", 99, 5), 1);
    CHECK_INT(acme_chal_table_mirror(t, ACME_CHAL_TLS_ALPN_01, "b.test",
                                     "tokB", "kb", 99, 5), 0);
    CHECK_INT(find_alpn(t, "b.test", 5, out, sizeof(out)), 2);
    CHECK_INT(acme_chal_table_mirror(t, ACME_CHAL_HTTP_01, NULL, "tokC",
                                     "kc", 99, 5), ACME_CHAL_FULL);
    CHECK_INT(acme_chal_table_mirror(t, ACME_CHAL_HTTP_01, NULL, "bad token",
                                     "kc", 99, 5), ACME_CHAL_BAD);
    CHECK_INT(acme_chal_table_mirror(t, ACME_CHAL_HTTP_01, NULL, NULL,
                                     "kc", 99, 5), ACME_CHAL_BAD);

    /* a mirror that went away: the own entry of the same token stays */
    acme_chal_table_remove_owner(t, "tokA", 5, 99);
    CHECK_INT(find_http(t, "tokA", 5, out, sizeof(out)), 3);
    acme_chal_table_remove_owner(t, "tokB", 4, 99);
    CHECK_INT(find_alpn(t, "b.test", 5, out, sizeof(out)), 2);
    acme_chal_table_remove_owner(t, "tokB", 5, 99);
    CHECK_INT(find_alpn(t, "b.test", 5, out, sizeof(out)), -1);
}

/* -- the indexes (issue 9) -------------------------------------------------- */

static uint32_t rnd_state;

static uint32_t
rnd(uint32_t n)
{
    /* xorshift32: the same sequence on every run */
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state % n;
}

/* find answers only what its index names: an entry written past the index
 * (here over another one) is never found, even where a scan would meet it
 * first */
UNIT_TEST(chal_table_find_by_index)
{
    acme_chal_table_t *t = table(4);
    char               out[64];

    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "pad", "p", 1, 1),
              ACME_CHAL_OK);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, "x.test", "tok",
                                  "tok.thumb", 1, 1), ACME_CHAL_OK);
    CHECK_STR(t->entry[0].token, "pad");
    CHECK_STR(t->entry[1].token, "tok");
    CHECK(acme_chal_table_check(t) > 0);

    memcpy(&t->entry[0], &t->entry[1], sizeof(t->entry[0]));
    strcpy(t->entry[0].key_authz, "decoy");
    CHECK_INT(find_http(t, "tok", 1, out, sizeof(out)), -1);
    CHECK_INT(find_alpn(t, "x.test", 1, out, sizeof(out)), 9);
    CHECK_STR(out, "tok.thumb");
    CHECK_INT(find_http(t, "pad", 1, out, sizeof(out)), -1);
    CHECK_INT(acme_chal_table_check(t), -1);
}

/* the same identifier under several fences and tokens, the same token under
 * several fences */
UNIT_TEST(chal_table_same_key_fences)
{
    acme_chal_table_t *t = table(8);
    char               out[64], tok[8], ka[8];
    int                f;

    for (f = 1; f <= 4; f++) {
        snprintf(tok, sizeof(tok), "t%d", f);
        snprintf(ka, sizeof(ka), "alpn%d", f);
        CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01,
                                      f & 1 ? "Same.TEST" : "same.test", tok,
                                      ka, 0, f), ACME_CHAL_OK);
        snprintf(ka, sizeof(ka), "http%d", f);
        CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "shared", ka,
                                      0, f), ACME_CHAL_OK);
    }
    CHECK(acme_chal_table_check(t) >= 4);       /* 4 alike keys in a run */
    for (f = 1; f <= 4; f++) {
        snprintf(ka, sizeof(ka), "alpn%d", f);
        CHECK_INT(find_alpn(t, "SAME.test", f, out, sizeof(out)), 5);
        CHECK_STR(out, ka);
        snprintf(ka, sizeof(ka), "http%d", f);
        CHECK_INT(find_http(t, "shared", f, out, sizeof(out)), 5);
        CHECK_STR(out, ka);
    }
    CHECK_INT(find_alpn(t, "same.test", 5, out, sizeof(out)), -1);

    /* one fence's go; the others' stay, found past the hole they left */
    acme_chal_table_remove(t, "t2", 2);
    acme_chal_table_remove(t, "shared", 1);
    CHECK(acme_chal_table_check(t) > 0);
    CHECK_INT(find_alpn(t, "same.test", 2, out, sizeof(out)), -1);
    CHECK_INT(find_http(t, "shared", 1, out, sizeof(out)), -1);
    for (f = 1; f <= 4; f++) {
        if (f != 2) {
            snprintf(ka, sizeof(ka), "alpn%d", f);
            CHECK_INT(find_alpn(t, "same.test", f, out, sizeof(out)), 5);
            CHECK_STR(out, ka);
        }
        if (f != 1) {
            snprintf(ka, sizeof(ka), "http%d", f);
            CHECK_INT(find_http(t, "shared", f, out, sizeof(out)), 5);
            CHECK_STR(out, ka);
        }
    }

    /* a replaced tls-alpn-01 entry is found by its new identifier only */
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, "other.test",
                                  "t3", "moved", 0, 3), ACME_CHAL_OK);
    CHECK_INT(find_alpn(t, "same.test", 3, out, sizeof(out)), -1);
    CHECK_INT(find_alpn(t, "other.test", 3, out, sizeof(out)), 5);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "t3", "plain",
                                  0, 3), ACME_CHAL_OK);
    CHECK_INT(find_alpn(t, "other.test", 3, out, sizeof(out)), -1);
    CHECK_INT(find_http(t, "t3", 3, out, sizeof(out)), 5);
    CHECK(acme_chal_table_check(t) > 0);
}

/* a model of the table: the live entries */
typedef struct {
    int           type;
    int           token;
    int           ident;
    uint64_t      owner;
    acme_fence_t  fence;
    char          ka[16];
} chal_model_t;

#define CYC_CAP     24
#define CYC_TOKENS  40
#define CYC_IDENTS  6
#define CYC_FENCES  3

static chal_model_t  model[CYC_CAP];
static int           n_model;

static int
model_at(int token, acme_fence_t fence)
{
    int  i;

    for (i = 0; i < n_model; i++) {
        if (model[i].token == token && model[i].fence == fence) {
            return i;
        }
    }
    return -1;
}

static void
model_del(int i)
{
    model[i] = model[--n_model];
}

/* every key under every fence finds what the model says; 0 when so */
static int
model_agrees(acme_chal_table_t *t)
{
    char          key[32], out[64];
    int           k, f, i, rc, any;
    acme_fence_t  fence;

    for (f = 1; f <= CYC_FENCES; f++) {
        fence = (acme_fence_t) f;
        for (k = 0; k < CYC_TOKENS; k++) {
            snprintf(key, sizeof(key), "t%d", k);
            rc = find_http(t, key, fence, out, sizeof(out));
            i = model_at(k, fence);
            if (i >= 0 && model[i].type == ACME_CHAL_HTTP_01
                ? rc < 0 || strcmp(out, model[i].ka) != 0 : rc != -1)
            {
                fprintf(stderr, "  http %s fence %d: %d \"%s\"\n", key, f, rc,
                        out);
                return -1;
            }
        }
        for (k = 0; k < CYC_IDENTS; k++) {
            snprintf(key, sizeof(key), "H%d.Test", k);
            rc = find_alpn(t, key, fence, out, sizeof(out));
            any = 0;
            for (i = 0; i < n_model; i++) {
                if (model[i].type == ACME_CHAL_TLS_ALPN_01
                    && model[i].ident == k && model[i].fence == fence)
                {
                    /* several tokens of one name: any of them answers */
                    any = any ? any : 1;
                    if (rc >= 0 && strcmp(out, model[i].ka) == 0) {
                        any = 2;
                    }
                }
            }
            if (any != (rc >= 0 ? 2 : 0)) {
                fprintf(stderr, "  alpn %s fence %d: %d \"%s\"\n", key, f, rc,
                        out);
                return -1;
            }
        }
    }
    return 0;
}

static void
model_put(int i, int type, int token, const char *id, uint64_t owner,
    acme_fence_t fence, const char *ka)
{
    model[i].type = type;
    model[i].token = token;
    model[i].ident = id[1] - '0';
    model[i].owner = owner;
    model[i].fence = fence;
    strcpy(model[i].ka, ka);
}

/* many add / mirror / remove / remove_owner / drop cycles against a model:
 * the indexes stay consistent, the answers right, and an emptied table has
 * no bucket left (no tombstones) */
UNIT_TEST(chal_table_cycles)
{
    acme_chal_table_t *t = table(CYC_CAP);
    char               tok[16], id[16], ka[16];
    int                op, rc, want, i, k, type, bad = 0, longest = 0;
    unsigned           serial = 0;
    uint64_t           owner;
    acme_fence_t       fence;

    rnd_state = 12345;
    n_model = 0;
    for (op = 0; op < 20000 && !bad; op++) {
        k = (int) rnd(CYC_TOKENS);
        snprintf(tok, sizeof(tok), "t%d", k);
        fence = 1 + rnd(CYC_FENCES);
        owner = 1 + rnd(3);
        type = rnd(2) ? ACME_CHAL_HTTP_01 : ACME_CHAL_TLS_ALPN_01;
        snprintf(id, sizeof(id), rnd(2) ? "h%d.test" : "H%d.TEST",
                 (int) rnd(CYC_IDENTS));
        snprintf(ka, sizeof(ka), "k%u", serial++);
        i = model_at(k, fence);

        switch (rnd(12)) {
        case 0: case 1: case 2: case 3:
            rc = acme_chal_table_add(t, type, id, tok, ka, owner, fence);
            want = i < 0 && n_model == CYC_CAP ? ACME_CHAL_FULL : ACME_CHAL_OK;
            if (want == ACME_CHAL_OK) {
                if (i < 0) {
                    i = n_model++;
                }
                model_put(i, type, k, id, owner, fence, ka);
            }
            break;
        case 4: case 5:
            rc = acme_chal_table_mirror(t, type, id, tok, ka, owner, fence);
            want = i >= 0 ? 0 : n_model == CYC_CAP ? ACME_CHAL_FULL : 1;
            if (want == 1) {
                i = n_model++;
                model_put(i, type, k, id, owner, fence, ka);
            }
            break;
        case 6: case 7: case 8:
            acme_chal_table_remove(t, tok, fence);
            rc = want = 0;
            if (i >= 0) {
                model_del(i);
            }
            break;
        case 9: case 10:
            acme_chal_table_remove_owner(t, tok, fence, owner);
            rc = want = 0;
            if (i >= 0 && model[i].owner == owner) {
                model_del(i);
            }
            break;
        default:
            if (rnd(8) != 0) {
                continue;
            }
            if (rnd(2)) {
                owner = ACME_CHAL_ANY_OWNER;
            }
            acme_chal_table_drop(t, fence, owner);
            rc = want = 0;
            for (i = n_model - 1; i >= 0; i--) {
                if (model[i].fence == fence
                    && (owner == ACME_CHAL_ANY_OWNER
                        || model[i].owner == owner))
                {
                    model_del(i);
                }
            }
            break;
        }

        k = acme_chal_table_check(t);
        if (k > longest) {
            longest = k;
        }
        if (rc != want || k < 0 || (op % 50 == 0 && model_agrees(t) != 0)
            || t->used != (uint32_t) n_model)
        {
            fprintf(stderr, "  op %d: rc %d, expected %d, check %d\n", op, rc,
                    want, k);
            bad = 1;
        }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(model_agrees(t), 0);
    CHECK(longest > 1 && longest <= 2 * CYC_CAP);

    for (k = 1; k <= CYC_FENCES; k++) {
        acme_chal_table_drop(t, (acme_fence_t) k, ACME_CHAL_ANY_OWNER);
    }
    n_model = 0;
    CHECK_INT(t->used, 0);
    CHECK_INT(acme_chal_table_check(t), 0);     /* every bucket empty */
    CHECK_INT(model_agrees(t), 0);
}

/* full: every entry taken, then emptied and refilled in another order */
UNIT_TEST(chal_table_full_indexes)
{
    acme_chal_table_t *t = table(MEM_ENTRIES);
    char               tok[16], id[16], out[64];
    int                i, k;

    for (i = 0; i < MEM_ENTRIES; i++) {
        snprintf(tok, sizeof(tok), "f%d", i);
        snprintf(id, sizeof(id), "n%d.test", i);
        CHECK_INT(acme_chal_table_add(t, i & 1 ? ACME_CHAL_TLS_ALPN_01
                                               : ACME_CHAL_HTTP_01, id, tok,
                                      tok, 0, 1), ACME_CHAL_OK);
    }
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "more", "k", 0,
                                  1), ACME_CHAL_FULL);
    CHECK_INT(acme_chal_table_mirror(t, ACME_CHAL_HTTP_01, NULL, "more", "k",
                                     0, 1), ACME_CHAL_FULL);
    CHECK(acme_chal_table_check(t) > 0);

    /* removed in a scrambled order, each found until then */
    for (i = 0; i < MEM_ENTRIES; i++) {
        k = (i * 37) % MEM_ENTRIES;
        snprintf(tok, sizeof(tok), "f%d", k);
        snprintf(id, sizeof(id), "N%d.test", k);
        CHECK_INT(k & 1 ? find_alpn(t, id, 1, out, sizeof(out))
                        : find_http(t, tok, 1, out, sizeof(out)),
                  (int) strlen(tok));
        acme_chal_table_remove(t, tok, 1);
        CHECK_INT(k & 1 ? find_alpn(t, id, 1, out, sizeof(out))
                        : find_http(t, tok, 1, out, sizeof(out)), -1);
    }
    CHECK_INT(acme_chal_table_check(t), 0);
    for (i = 0; i < MEM_ENTRIES; i++) {
        snprintf(tok, sizeof(tok), "g%d", i);
        CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, tok, tok, 0,
                                      2), ACME_CHAL_OK);
    }
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "more", "k", 0,
                                  2), ACME_CHAL_FULL);
    CHECK_INT(find_http(t, "g63", 2, out, sizeof(out)), 3);
    acme_chal_table_clear(t);
    CHECK_INT(acme_chal_table_check(t), 0);
    CHECK_INT(find_http(t, "g63", 2, out, sizeof(out)), -1);
}

/* remove_owner: only that owner's entry of the token and fence */
UNIT_TEST(chal_table_remove_owner)
{
    acme_chal_table_t *t = table(8);
    char               out[64];

    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_TLS_ALPN_01, "o.test", "tk",
                                  "own", 1, 5), ACME_CHAL_OK);
    CHECK_INT(acme_chal_table_mirror(t, ACME_CHAL_TLS_ALPN_01, "o.test", "tk",
                                     "mirrored", 2, 6), 1);
    acme_chal_table_remove_owner(t, "tk", 5, 2);
    acme_chal_table_remove_owner(t, "tk", 6, 1);
    acme_chal_table_remove_owner(t, "other", 6, 2);
    CHECK_INT(find_alpn(t, "o.test", 5, out, sizeof(out)), 3);
    CHECK_INT(find_alpn(t, "o.test", 6, out, sizeof(out)), 8);
    acme_chal_table_remove_owner(t, "tk", 6, 2);
    CHECK_INT(find_alpn(t, "o.test", 6, out, sizeof(out)), -1);
    CHECK_INT(find_alpn(t, "o.test", 5, out, sizeof(out)), 3);
    acme_chal_table_remove_owner(t, "tk", 5, 1);
    CHECK_INT(find_alpn(t, "o.test", 5, out, sizeof(out)), -1);
    CHECK_INT(acme_chal_table_check(t), 0);
}

/* a torn read (Apache's seqlock): whatever the indexes and the free stack
 * hold, find stays in bounds, ends, and answers only an entry of its key,
 * always terminated; clear makes the table whole again */
UNIT_TEST(chal_table_torn_index)
{
    acme_chal_table_t  *t = table(MEM_ENTRIES);
    acme_chal_bucket_t *bk, real[2 * MEM_ENTRIES];
    char                tok[16], id[16], want[16], out[16];
    char               *lo, *hi, *p;
    int                 round, i, k, n_real = 0, rc, bad = 0;

    for (i = 0; i < 40; i++) {
        snprintf(tok, sizeof(tok), "z%d", i);
        snprintf(id, sizeof(id), "n%d.test", i);
        CHECK_INT(acme_chal_table_add(t, i & 1 ? ACME_CHAL_TLS_ALPN_01
                                               : ACME_CHAL_HTTP_01, id, tok,
                                      tok, 0, 1), ACME_CHAL_OK);
    }
    /* an entry caught mid-write: no terminating NUL anywhere */
    memset(t->entry[39].key_authz, 'k', sizeof(t->entry[39].key_authz));

    lo = (char *) &t->entry[t->capacity];
    hi = (char *) t + ACME_CHAL_TABLE_SIZE(t->capacity);
    bk = (acme_chal_bucket_t *) (void *) lo;
    for (i = 0; i < 4 * MEM_ENTRIES; i++) {
        if (bk[i].ref != 0 && n_real < 2 * MEM_ENTRIES) {
            real[n_real++] = bk[i];
        }
    }
    CHECK_INT(n_real, 60);

    rnd_state = 777;
    for (round = 0; round < 64; round++) {
        if (round == 0) {
            memset(lo, 0xff, (size_t) (hi - lo));
        } else if (round % 4 == 1) {
            for (p = lo; p < hi; p++) {
                *p = (char) rnd(256);
            }
        } else if (round % 4 == 3) {
            /* real hashes naming no entry: beyond the table */
            for (i = 0; i < 4 * MEM_ENTRIES; i++) {
                bk[i].hash = real[rnd((uint32_t) n_real)].hash;
                bk[i].ref = MEM_ENTRIES + 1 + rnd(UINT32_MAX - MEM_ENTRIES);
            }
        } else {
            /* no empty bucket at all, each names a real entry by its real
             * hash, mostly not where its probe starts */
            for (i = 0; i < 4 * MEM_ENTRIES; i++) {
                bk[i] = real[rnd((uint32_t) n_real)];
            }
        }
        for (i = 0; i < 48; i++) {
            k = (int) rnd(44);
            snprintf(tok, sizeof(tok), "z%d", k);
            snprintf(id, sizeof(id), "N%d.TEST", k);
            snprintf(want, sizeof(want), "%s", k < 40 ? tok : "");
            if (k == 39) {
                memset(want, 'k', sizeof(want) - 1);
                want[sizeof(want) - 1] = '\0';
            }
            memset(out, 'x', sizeof(out));
            rc = k & 1 ? find_alpn(t, id, 1, out, sizeof(out))
                       : find_http(t, tok, 1, out, sizeof(out));
            if (rc == -1 ? out[0] != '\0'
                : (memchr(out, '\0', sizeof(out)) == NULL
                   || rc != (int) strlen(out) || strcmp(out, want) != 0))
            {
                bad++;
            }
            /* the wrong type finds nothing */
            if (!(k & 1) && find_alpn(t, tok, 1, out, sizeof(out)) != -1) {
                bad++;
            }
        }
    }
    CHECK_INT(bad, 0);

    acme_chal_table_clear(t);
    CHECK_INT(acme_chal_table_check(t), 0);
    CHECK_INT(acme_chal_table_add(t, ACME_CHAL_HTTP_01, NULL, "z1", "again", 0,
                                  1), ACME_CHAL_OK);
    CHECK_INT(find_http(t, "z1", 1, out, sizeof(out)), 5);
}
