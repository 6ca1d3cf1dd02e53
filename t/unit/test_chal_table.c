#include "unit.h"
#include "acme_chal_table.h"

#include <stdint.h>
#include <string.h>

/* a table of n entries in caller memory, as a host provides it */
static uint64_t mem[(ACME_CHAL_TABLE_SIZE(8) + 7) / 8];

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
