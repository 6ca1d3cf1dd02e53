#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_cert.h"
#include "acme_fleet.h"
#include "acme_fleet_node.h"
#include "acme_key.h"
#include "unit.h"

static const unsigned char seal[ACME_SEAL_KEY_LEN] = "fleet-test-key-0123456789abcdef";

UNIT_TEST(fleet_keys)
{
    char  *k;

    k = acme_fleet_key("/acme/", "certs", "a.example_ecdsa-256");
    CHECK_STR(k, "/acme/certs/a.example_ecdsa-256");
    free(k);
    k = acme_fleet_key("/acme", "locks", "x");
    CHECK_STR(k, "/acme/locks/x");
    free(k);
    CHECK(acme_fleet_key("/acme/", "certs", "a/b") == NULL);
    CHECK(acme_fleet_key("/acme/", "certs", "a\nb") == NULL);
    CHECK(acme_fleet_key("/acme/", "other", "a") == NULL);
    CHECK(acme_fleet_key("", "certs", "a") == NULL);
}

UNIT_TEST(fleet_record_roundtrip)
{
    EVP_PKEY             *key, *other;
    const char           *names[] = { "a.example" };
    char                 *cert, *key_pem, *other_pem, *json, *bundle, *node, *issuer;
    char                  err[512];
    size_t                len, blen;
    long long             nb, na;
    acme_fleet_record_t   r;

    key = acme_key_generate(ACME_KEY_EC_P256);
    other = acme_key_generate(ACME_KEY_EC_P256);
    CHECK(key != NULL && other != NULL);
    cert = acme_selfsigned_pem(key, names, 1, 6, &len);
    key_pem = acme_key_to_pem(key, &len);
    other_pem = acme_key_to_pem(other, &len);

    memset(&r, 0, sizeof(r));
    r.chain_pem = cert;
    r.key_pem = key_pem;
    r.node = "node-1";
    r.issuer = "pebble";
    r.issued_at = 1800000000;
    json = acme_fleet_record_encode(&r, seal, "/acme/certs/a", err, sizeof(err));
    CHECK(json != NULL);
    CHECK(strstr(json, "PRIVATE KEY") == NULL);
    CHECK(strstr(json, "acme-seal-v1:") != NULL);

    CHECK(acme_fleet_record_decode(json, strlen(json), seal, "/acme/certs/a",
                                   &bundle, &blen, &nb, &na, &node, &issuer,
                                   err, sizeof(err)) == 0);
    CHECK(bundle != NULL && strstr(bundle, "PRIVATE KEY") != NULL
          && strstr(bundle, "BEGIN CERTIFICATE") != NULL);
    CHECK(na - nb > 5 * 86400 && na - nb < 8 * 86400);
    CHECK_STR(node, "node-1");
    CHECK_STR(issuer, "pebble");
    acme_bundle_free(bundle, blen);
    free(node);
    free(issuer);

    /* under another name: the key does not open */
    CHECK(acme_fleet_record_decode(json, strlen(json), seal, "/acme/certs/b",
                                   &bundle, &blen, NULL, NULL, NULL, NULL,
                                   err, sizeof(err)) == -1);
    CHECK(bundle == NULL && strstr(err, "does not open") != NULL);

    /* a node with another key file: told apart from an altered record */
    {
        static const unsigned char seal2[ACME_SEAL_KEY_LEN] =
            "another-fleet-key-0123456789abc";
        char  kid[17], kid2[17];

        acme_fleet_key_id(seal, kid);
        acme_fleet_key_id(seal2, kid2);
        CHECK(strlen(kid) == 16 && strcmp(kid, kid2) != 0);
        CHECK(strstr(json, kid) != NULL);
        CHECK(acme_fleet_record_decode(json, strlen(json), seal2,
                                       "/acme/certs/a", &bundle, &blen, NULL,
                                       NULL, NULL, NULL, err, sizeof(err))
              == ACME_FLEET_OTHER_KEY);
        CHECK(bundle == NULL && strstr(err, "another key file") != NULL);
        CHECK(strstr(err, kid2) != NULL);
    }
    free(json);

    /* a key that is not the leaf's: refused */
    r.key_pem = other_pem;
    json = acme_fleet_record_encode(&r, seal, "/acme/certs/a", err, sizeof(err));
    CHECK(acme_fleet_record_decode(json, strlen(json), seal, "/acme/certs/a",
                                   &bundle, &blen, NULL, NULL, NULL, NULL,
                                   err, sizeof(err)) == -1);
    CHECK(strstr(err, "BEGIN") == NULL);
    free(json);

    CHECK(acme_fleet_record_decode("{\"v\":2}", 7, seal, "n", &bundle, &blen,
                                   NULL, NULL, NULL, NULL, err, sizeof(err)) == -1);
    CHECK(strstr(err, "not a certificate record") != NULL);

    free(cert);
    free(key_pem);
    free(other_pem);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

UNIT_TEST(fleet_next_step)
{
    acme_fleet_facts_t  f;
    long long           next, day = 86400, t0 = 1800000000;

    memset(&f, 0, sizeof(f));
    f.now = t0;
    f.poll = 30;
    f.store_reachable = 1;
    f.local_not_before = t0 - 10 * day;
    f.local_not_after = t0 + 80 * day;

    /* not due, nothing newer in the store */
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_IDLE && next == t0 + 30);

    /* another node issued a newer one: install, never order */
    f.store_has_record = 1;
    f.store_not_after = t0 + 90 * day;
    f.due = 1;
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_INSTALL);
    f.store_not_after = f.local_not_after;

    /* due: lock, then order with it; another's lock: wait */
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_LOCK && next == t0);
    f.lock_mine = 1;
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_ORDER);
    f.lock_mine = 0;
    f.lock_other = 1;
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_WAIT && next == t0 + 30);

    /* store unreachable: keep serving, order alone only near expiry */
    f.store_reachable = 0;
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_IDLE);
    f.local_not_after = t0 + 8 * day;       /* 18 days of life, 8 left */
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_IDLE);
    f.local_not_after = t0 + 1 * day;       /* 11 days of life, 1 left */
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_ORDER_ALONE);
    f.due = 0;
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_IDLE);

    /* back: what was ordered alone is published when newer */
    f.store_reachable = 1;
    f.local_unpublished = 1;
    f.local_not_after = t0 + 90 * day;
    f.store_not_after = t0 + 20 * day;
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_PUBLISH);
    f.store_not_after = t0 + 95 * day;      /* another node's is newer */
    CHECK(acme_fleet_next(&f, &next) == ACME_FLEET_INSTALL);

    CHECK(acme_fleet_emergency(0, 0, t0) == 1);
    CHECK_STR(acme_fleet_action_name(ACME_FLEET_ORDER_ALONE), "order alone");
}

UNIT_TEST(fleet_challenges_ready)
{
    long long  acked[3] = { 12, 9, 15 };
    size_t     missing;

    CHECK(acme_fleet_challenges_ready(10, acked, 3, 1000, 900, 5000,
                                      &missing) == 0 && missing == 1);
    acked[1] = 10;
    CHECK(acme_fleet_challenges_ready(10, acked, 3, 1000, 900, 5000,
                                      &missing) == 1 && missing == 0);
    acked[1] = 9;
    /* a node that never catches up holds the order at most max_wait */
    CHECK(acme_fleet_challenges_ready(10, acked, 3, 5900, 900, 5000,
                                      &missing) == 1 && missing == 1);
    CHECK(acme_fleet_challenges_ready(10, NULL, 0, 0, 0, 5000, NULL) == 1);
}


static int
parse(const char *line, acme_fleet_conf_t *c, char *err, size_t errlen)
{
    char    buf[512], *argv[16], *save, *w;
    size_t  n = 0;

    snprintf(buf, sizeof(buf), "%s", line);
    for (w = strtok_r(buf, " ", &save); w != NULL && n < 16;
         w = strtok_r(NULL, " ", &save))
    {
        argv[n++] = w;
    }
    return acme_fleet_conf_parse(argv, n, c, err, errlen);
}


UNIT_TEST(fleet_conf_parse)
{
    acme_fleet_conf_t  c;
    char               err[256];

    CHECK(parse("http://127.0.0.1:2379,https://etcd2:2379 prefix=/x "
                "key_file=/k node=n1 user=u password_file=/p "
                "ssl_trusted_certificate=/ca", &c, err, sizeof(err)) == 0);
    CHECK(c.n_endpoints == 2);
    CHECK(strcmp(c.endpoints[1], "https://etcd2:2379") == 0);
    CHECK(strcmp(c.prefix, "/x/") == 0);
    CHECK(strcmp(c.node, "n1") == 0 && strcmp(c.ca_file, "/ca") == 0);
    acme_fleet_conf_free(&c);

    CHECK(parse("http://e:2379 key_file=/k", &c, err, sizeof(err)) == 0);
    CHECK(strcmp(c.prefix, "/acme/") == 0 && c.node == NULL);
    acme_fleet_conf_free(&c);

    CHECK(parse("http://e:2379", &c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "key_file= is required") != NULL);
    CHECK(parse("etcd1:2379 key_file=/k", &c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "\"etcd1:2379\" is not an etcd endpoint") != NULL);
    CHECK(parse("http://e:2379/v3 key_file=/k", &c, err, sizeof(err)) == -1);
    CHECK(parse("http://e key_file=/k", &c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "\"http://e\" is not an etcd endpoint") != NULL);
    CHECK(parse("http://e:99999 key_file=/k", &c, err, sizeof(err)) == -1);
    CHECK(parse("http://e:0 key_file=/k", &c, err, sizeof(err)) == -1);
    CHECK(parse("http://e:23x9 key_file=/k", &c, err, sizeof(err)) == -1);
    CHECK(parse("http://[::1] key_file=/k", &c, err, sizeof(err)) == -1);
    CHECK(parse("http://[::1]:2379,https://e:65535 key_file=/k", &c, err,
                sizeof(err)) == 0);
    acme_fleet_conf_free(&c);
    CHECK(parse("http://e:2379 key_file=/k colour=red", &c, err,
                sizeof(err)) == -1);
    CHECK(strstr(err, "unknown parameter \"colour=red\"") != NULL);
    CHECK(parse("http://e:2379 key_file=/k key_file=/j", &c, err,
                sizeof(err)) == -1);
    CHECK(strstr(err, "given twice") != NULL);
    CHECK(parse("http://e:2379 key_file=/k user=u", &c, err,
                sizeof(err)) == -1);
    CHECK(strstr(err, "go together") != NULL);
    CHECK(parse("http://e:2379 key_file=/k prefix=acme", &c, err,
                sizeof(err)) == -1);
    CHECK(parse("http://e:2379 key_file=/k node=a/b", &c, err,
                sizeof(err)) == -1);
    CHECK(strstr(err, "node=\"a/b\"") != NULL);
}


UNIT_TEST(fleet_conf_lease_ttl)
{
    acme_fleet_conf_t  c;
    char               err[256];

    CHECK(parse("http://e:2379 key_file=/k", &c, err, sizeof(err)) == 0);
    CHECK(c.lease_ttl == ACME_FLEET_ORDER_TTL);
    acme_fleet_conf_free(&c);
    CHECK(parse("http://e:2379 key_file=/k lease_ttl=6", &c, err,
                sizeof(err)) == 0);
    CHECK(c.lease_ttl == 6);
    acme_fleet_conf_free(&c);
    CHECK(parse("http://e:2379 key_file=/k lease_ttl=4", &c, err,
                sizeof(err)) == -1);
    CHECK(strstr(err, "lease_ttl=\"4\": seconds from 5 to 600") != NULL);
    CHECK(parse("http://e:2379 key_file=/k lease_ttl=9x", &c, err,
                sizeof(err)) == -1);
}
