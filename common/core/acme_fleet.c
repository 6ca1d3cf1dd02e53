/*
 * A node of a fleet: store records and the next step (acme_fleet.h).
 */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "acme_cert.h"
#include "acme_fleet.h"
#include "acme_util.h"

#define FLEET_RECORD_MAX  (256 * 1024)


char *
acme_fleet_key(const char *prefix, const char *kind, const char *name)
{
    const char  *p;

    if (prefix == NULL || kind == NULL || name == NULL || *prefix == '\0'
        || *name == '\0'
        || (strcmp(kind, "certs") != 0 && strcmp(kind, "locks") != 0
            && strcmp(kind, "challenges") != 0 && strcmp(kind, "nodes") != 0))
    {
        return NULL;
    }

    for (p = name; *p; p++) {
        if (*p == '/' || (unsigned char) *p < 0x20 || *p == 0x7f) {
            return NULL;
        }
    }

    /* "/acme" and "/acme/" name the same prefix */
    return acme_sprintf("%s%s%s/%s", prefix,
                        prefix[strlen(prefix) - 1] == '/' ? "" : "/",
                        kind, name);
}


void
acme_fleet_key_id(const unsigned char seal_key[ACME_SEAL_KEY_LEN],
    char kid[17])
{
    static const char  tag[] = "acme-fleet-kid";
    unsigned char      in[sizeof(tag) - 1 + ACME_SEAL_KEY_LEN], md[32];
    unsigned int       mdlen = 0;
    int                i;

    memcpy(in, tag, sizeof(tag) - 1);
    memcpy(in + sizeof(tag) - 1, seal_key, ACME_SEAL_KEY_LEN);
    if (EVP_Digest(in, sizeof(in), md, &mdlen, EVP_sha256(), NULL) != 1) {
        memset(md, 0, sizeof(md));
    }
    OPENSSL_cleanse(in, sizeof(in));
    for (i = 0; i < 8; i++) {
        snprintf(kid + 2 * i, 3, "%02x", md[i]);
    }
}


char *
acme_fleet_record_encode(const acme_fleet_record_t *r,
    const unsigned char seal_key[ACME_SEAL_KEY_LEN], const char *name,
    char *err, size_t errlen)
{
    json_t  *o;
    char    *sealed, *out, kid[17];

    if (r->chain_pem == NULL || r->key_pem == NULL || name == NULL) {
        acme_err(err, errlen, "a certificate record needs a chain and a key");
        return NULL;
    }

    sealed = acme_seal(seal_key, name, r->key_pem, strlen(r->key_pem), err,
                       errlen);
    if (sealed == NULL) {
        return NULL;
    }

    acme_fleet_key_id(seal_key, kid);
    o = json_pack("{s:i, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:I}", "v", 1,
                  "chain", r->chain_pem, "key", sealed, "kid", kid,
                  "node", r->node,
                  "issuer", r->issuer, "directory", r->directory,
                  "issued_at", (json_int_t) r->issued_at);
    free(sealed);
    if (o == NULL) {
        acme_err(err, errlen, "out of memory (or text that is not UTF-8)");
        return NULL;
    }

    out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (out == NULL) {
        acme_err(err, errlen, "out of memory");
    }
    return out;
}


static char *
dup_member(json_t *o, const char *name)
{
    const char  *s = json_string_value(json_object_get(o, name));

    return s != NULL ? acme_strdup(s) : NULL;
}


int
acme_fleet_record_decode(const char *json, size_t len,
    const unsigned char seal_key[ACME_SEAL_KEY_LEN], const char *name,
    char **bundle, size_t *bundle_len, long long *not_before,
    long long *not_after, char **node, char **issuer, char *err,
    size_t errlen)
{
    json_t           *o;
    json_error_t      jerr;
    const char       *chain, *sealed, *rkid;
    char              kid[17];
    unsigned char    *key;
    size_t            key_len, blen;
    char             *b, perr[ACME_ERRLEN];
    acme_cert_info_t  info;
    int               rc;

    *bundle = NULL;
    *bundle_len = 0;
    if (node != NULL) {
        *node = NULL;
    }
    if (issuer != NULL) {
        *issuer = NULL;
    }

    if (len > FLEET_RECORD_MAX) {
        return acme_err(err, errlen, "\"%s\": a record of %zu bytes (at "
                        "most %d)", name, len, FLEET_RECORD_MAX);
    }

    o = json_loadb(json, len, 0, &jerr);
    if (!json_is_object(o)
        || json_integer_value(json_object_get(o, "v")) != 1)
    {
        json_decref(o);
        return acme_err(err, errlen, "\"%s\" is not a certificate record "
                        "(version 1)", name);
    }

    chain = json_string_value(json_object_get(o, "chain"));
    sealed = json_string_value(json_object_get(o, "key"));
    if (chain == NULL || sealed == NULL) {
        json_decref(o);
        return acme_err(err, errlen, "\"%s\": no chain or no key", name);
    }

    rkid = json_string_value(json_object_get(o, "kid"));
    if (rkid != NULL) {
        acme_fleet_key_id(seal_key, kid);
        if (strcmp(rkid, kid) != 0) {
            acme_err(err, errlen, "\"%s\" is sealed with another key file "
                     "(key id %.16s; this node's is %s): every node needs "
                     "the same key_file", name, rkid, kid);
            json_decref(o);
            return ACME_FLEET_OTHER_KEY;
        }
    }

    key = acme_seal_open(seal_key, name, sealed, strlen(sealed), &key_len,
                         err, errlen);
    if (key == NULL) {
        json_decref(o);
        return -1;
    }

    b = acme_bundle_join((const char *) key, key_len, chain, strlen(chain),
                         &blen);
    OPENSSL_cleanse(key, key_len);
    free(key);
    if (b == NULL) {
        json_decref(o);
        return acme_err(err, errlen, "out of memory");
    }

    /* the key must be the leaf's, and the chain must parse */
    rc = acme_bundle_parse(b, blen, NULL, NULL, NULL, perr, sizeof(perr));
    if (rc == 0) {
        rc = acme_cert_info_from_pem(chain, strlen(chain), &info, perr,
                                     sizeof(perr));
    }
    if (rc != 0) {
        acme_bundle_free(b, blen);
        json_decref(o);
        return acme_err(err, errlen, "\"%s\": %s", name, perr);
    }

    if (not_before != NULL) {
        *not_before = info.not_before;
    }
    if (not_after != NULL) {
        *not_after = info.not_after;
    }
    acme_cert_info_free(&info);

    if (node != NULL) {
        *node = dup_member(o, "node");
    }
    if (issuer != NULL) {
        *issuer = dup_member(o, "issuer");
    }
    json_decref(o);

    *bundle = b;
    *bundle_len = blen;
    return 0;
}


int
acme_fleet_emergency(long long not_before, long long not_after,
    long long now)
{
    long long  life;

    if (not_after == 0) {
        return 1;
    }
    life = not_after - not_before;
    if (life <= 0) {
        return 1;
    }
    return not_after - now <= life / 10;
}


acme_fleet_action_t
acme_fleet_next(const acme_fleet_facts_t *f, long long *next_check)
{
    long long  poll = f->poll > 0 ? f->poll : 60;
    int        have_local = f->local_not_after != 0;

    *next_check = f->now + poll;

    if (!f->store_reachable) {
        if (f->due && acme_fleet_emergency(f->local_not_before,
                                           f->local_not_after, f->now))
        {
            return ACME_FLEET_ORDER_ALONE;
        }
        return ACME_FLEET_IDLE;
    }

    if (f->local_unpublished && have_local
        && (!f->store_has_record || f->local_not_after > f->store_not_after))
    {
        return ACME_FLEET_PUBLISH;
    }

    if (f->store_has_record
        && (!have_local || f->store_not_after > f->local_not_after))
    {
        return ACME_FLEET_INSTALL;
    }

    if (!f->due) {
        return ACME_FLEET_IDLE;
    }

    if (f->lock_mine) {
        return ACME_FLEET_ORDER;
    }
    if (f->lock_other) {
        return ACME_FLEET_WAIT;
    }
    *next_check = f->now;
    return ACME_FLEET_LOCK;
}


const char *
acme_fleet_action_name(acme_fleet_action_t a)
{
    static const char *names[] = { "idle", "install", "lock", "wait",
                                   "order", "order alone", "publish" };

    return (unsigned) a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}


int
acme_fleet_challenges_ready(long long rev, const long long *acked, size_t n,
    long long now_ms, long long published_ms, long long max_wait_ms,
    size_t *missing)
{
    size_t  i, behind = 0;

    for (i = 0; i < n; i++) {
        if (acked[i] < rev) {
            behind++;
        }
    }
    if (missing != NULL) {
        *missing = behind;
    }
    return behind == 0 || now_ms - published_ms >= max_wait_ms;
}
