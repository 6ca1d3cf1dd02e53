/*
 * Drives two fleet nodes (acme_fleet_node.h) of one process through the
 * lifecycle against a real etcd, for t/integration/test_etcd_store.py:
 *
 *   fleet_probe ENDPOINTS KEY_FILE CHAIN_PEM KEY_PEM
 *
 * (KEY_FILE.other: another node's key file, of another key.)
 *
 * Prints one JSON object per step ({"step": NAME, ...}), then
 * {"step": "end"}.  The test reads the steps and checks them; the probe
 * itself decides nothing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "acme_fleet_node.h"
#include "acme_kv_client.h"
#include "acme_run.h"
#include "acme_store.h"

#define ID     "www.example_ecdsa-256"
#define TOKEN  "tok-0123456789abcdef_ABCDEF"

static acme_fleet_node_t  *node_a, *node_b;
static volatile int        b_stop;
static int64_t             b_acked;


static void
step(const char *name, json_t *o)
{
    char  *s;

    json_object_set_new(o, "step", json_string(name));
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(o);
}


static json_t *
sync_json(acme_fleet_node_t *n, int64_t acked, int64_t *rev)
{
    acme_fleet_sync_t  s;
    json_t            *o, *chals, *gone, *certs;
    size_t             i;

    (void) acme_fleet_node_sync(n, acked, &s);
    chals = json_array();
    for (i = 0; i < s.n_chals; i++) {
        json_array_append_new(chals, json_pack("{s:s, s:s, s:s, s:s, s:s?}",
            "type", s.chals[i].type, "identifier", s.chals[i].identifier,
            "token", s.chals[i].token, "key_authz", s.chals[i].key_authz,
            "node", s.chals[i].node));
    }
    gone = json_array();
    for (i = 0; i < s.n_gone; i++) {
        json_array_append_new(gone, json_string(s.gone[i]));
    }
    certs = json_array();
    for (i = 0; i < s.n_certs; i++) {
        json_array_append_new(certs, json_pack("{s:s, s:b, s:I, s:s?, s:s}",
            "id", s.certs[i].id, "bundle", s.certs[i].bundle != NULL,
            "not_after", (json_int_t) s.certs[i].not_after,
            "node", s.certs[i].node, "err", s.certs[i].err));
    }
    o = json_pack("{s:b, s:s, s:o, s:o, s:o, s:I}", "reachable", s.reachable,
                  "err", s.err, "chals", chals, "gone", gone, "certs", certs,
                  "nodes", (json_int_t) s.n_nodes);
    if (rev != NULL) {
        *rev = s.chal_revision;
    }
    acme_fleet_sync_free(&s);
    return o;
}


static json_t *
claim_json(acme_fleet_node_t *n, long long local_nb, long long local_na)
{
    acme_fleet_facts_t  f;
    acme_fleet_claim_t  c;
    json_t             *o;

    memset(&f, 0, sizeof(f));
    f.now = (long long) time(NULL);
    f.due = 1;
    f.local_not_before = local_nb;
    f.local_not_after = local_na;
    f.store_reachable = 1;
    f.poll = 5;
    (void) acme_fleet_node_claim(n, ID, &f, &c);
    o = json_pack("{s:s, s:s, s:b, s:I, s:s}",
                  "action", acme_fleet_action_name(c.action),
                  "holder", c.holder, "bundle", c.bundle != NULL,
                  "not_after", (json_int_t) c.not_after, "err", c.err);
    acme_fleet_claim_free(&c);
    return o;
}


/* node B mirrors like a host would: sync, then ack what it saw */
static void *
b_loop(void *arg)
{
    acme_fleet_sync_t  s;
    int                i;

    (void) arg;
    for (i = 0; i < 400 && !b_stop; i++) {
        if (acme_fleet_node_sync(node_b, b_acked, &s) == 0) {
            b_acked = s.chal_revision;
        }
        acme_fleet_sync_free(&s);
        acme_sleep_ms(20);
    }
    return NULL;
}


static acme_fleet_node_t *
node(char *endpoints, char *key_file, const char *name)
{
    acme_fleet_conf_t   conf;
    acme_fleet_node_t  *n;
    char               *argv[4], err[256], p[64], k[512], nm[64];

    snprintf(p, sizeof(p), "prefix=/acme");
    snprintf(k, sizeof(k), "key_file=%s", key_file);
    snprintf(nm, sizeof(nm), "node=%s", name);
    argv[0] = endpoints;
    argv[1] = p;
    argv[2] = k;
    argv[3] = nm;
    if (acme_fleet_conf_parse(argv, 4, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "fleet_probe: %s\n", err);
        exit(1);
    }
    n = acme_fleet_node_new(&conf, err, sizeof(err));
    acme_fleet_conf_free(&conf);
    if (n == NULL) {
        fprintf(stderr, "fleet_probe: %s\n", err);
        exit(1);
    }
    return n;
}


int
main(int argc, char **argv)
{
    acme_fleet_record_t  rec;
    pthread_t            t;
    size_t               missing, len;
    char                *chain, *key, err[256];
    int                  rc;
    int64_t              rev;
    json_t              *o;
    long long            na;
    acme_kv_status_t     st;

    if (argc != 5) {
        fprintf(stderr, "usage: fleet_probe ENDPOINTS KEY_FILE CHAIN KEY\n");
        return 2;
    }
    if (acme_store_read(argv[3], &chain, &len, 1 << 20, err, sizeof(err))
        != 1
        || acme_store_read(argv[4], &key, &len, 1 << 20, err, sizeof(err))
           != 1)
    {
        fprintf(stderr, "fleet_probe: cannot read the PEM files\n");
        return 1;
    }

    node_a = node(argv[1], argv[2], "node-a");
    node_b = node(argv[1], argv[2], "node-b");

    /* both alive */
    step("sync-a", sync_json(node_a, 0, NULL));
    step("sync-b", sync_json(node_b, 0, NULL));

    /* one order: A locks, B waits for A */
    step("claim-a", claim_json(node_a, 0, 0));
    step("claim-b", claim_json(node_b, 0, 0));

    /* A shares a challenge; B mirrors in its own thread; the barrier ends
     * when B acked it */
    pthread_create(&t, NULL, b_loop, NULL);
    rc = acme_fleet_node_challenge_put(node_a, ID, "http-01", "www.example",
                                       TOKEN, TOKEN ".thumb", NULL, NULL,
                                       &missing, err, sizeof(err));
    b_stop = 1;
    pthread_join(t, NULL);
    step("put", json_pack("{s:i, s:I, s:s}", "rc", rc,
                          "missing", (json_int_t) missing,
                          "err", rc == 0 ? "" : err));
    step("mirror-b", sync_json(node_b, b_acked, NULL));

    acme_fleet_node_challenge_delete(node_a, TOKEN);
    step("gone-b", sync_json(node_b, b_acked, NULL));

    /* A publishes under its lock; B sees the record and installs it */
    memset(&rec, 0, sizeof(rec));
    rec.chain_pem = chain;
    rec.key_pem = key;
    rec.node = "node-a";
    rec.issuer = "pebble";
    rec.directory = "https://127.0.0.1:14000/dir";
    rec.issued_at = (long long) time(NULL);
    st = acme_fleet_node_publish(node_a, ID, &rec, 0, err, sizeof(err));
    step("publish-a", json_pack("{s:s, s:s}", "status",
                                acme_kv_status_name(st),
                                "err", st == ACME_KV_OK ? "" : err));
    step("records-b", sync_json(node_b, b_acked, &rev));
    o = claim_json(node_b, 0, 0);
    na = (long long) json_integer_value(json_object_get(o, "not_after"));
    step("claim-b-again", o);

    /* A takes the lock again (renewal of the same certificate), the lock
     * vanishes (a paused node's lease expired): the late write is fenced */
    step("claim-a-renew", claim_json(node_a, na - 100, na));
    st = ACME_KV_ERROR;
    {
        acme_kv_client_conf_t  kc;
        acme_kv_client_t      *kv;
        acme_kv_op_t           op;
        acme_kv_result_t       res;
        const char            *eps[1] = { argv[1] };

        memset(&kc, 0, sizeof(kc));
        kc.endpoints = eps;
        kc.n_endpoints = 1;
        kv = acme_kv_client_new(&kc);
        memset(&op, 0, sizeof(op));
        op.kind = ACME_KV_DELETE;
        op.key = "/acme/locks/" ID;
        (void) acme_kv_client_do(kv, &op, &res);
        acme_kv_result_free(&res);
        acme_kv_client_free(kv);
    }
    st = acme_fleet_node_publish(node_a, ID, &rec, 0, err, sizeof(err));
    step("publish-late", json_pack("{s:s, s:s}", "status",
                                   acme_kv_status_name(st), "err", err));

    /* a failed order's lock stays A's until its retry (backoff): B waits;
     * A's own next claim takes it afresh; a short backoff just releases */
    step("claim-a-fail", claim_json(node_a, na - 100, na));
    acme_fleet_node_release_until(node_a, ID, (long long) time(NULL) + 30);
    step("claim-b-hold", claim_json(node_b, na - 100, na));
    step("claim-a-retry", claim_json(node_a, na - 100, na));
    acme_fleet_node_release_until(node_a, ID, (long long) time(NULL) + 1);
    step("claim-b-after", claim_json(node_b, na - 100, na));
    acme_fleet_node_release(node_b, ID);

    /* a node set up with another key file (KEY_FILE.other) neither
     * installs the record nor orders over it */
    {
        acme_fleet_node_t  *node_c;
        char                other[512];

        snprintf(other, sizeof(other), "%s.other", argv[2]);
        node_c = node(argv[1], other, "node-c");
        step("claim-c-otherkey", claim_json(node_c, 0, 0));
        acme_fleet_node_free(node_c);
    }

    {
        char  *s = acme_fleet_node_status_json(node_a);

        step("status-a", json_pack("{s:s}", "json", s ? s : ""));
        free(s);
    }

    acme_fleet_node_free(node_a);
    acme_fleet_node_free(node_b);
    step("end", json_object());
    free(chain);
    free(key);
    return 0;
}
