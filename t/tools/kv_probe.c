/*
 * Drives the shared store's etcd client (acme_kv_client.h) from the
 * command line, for the integration tests against a real etcd:
 *
 *   kv_probe [-u USER -p PASSWORD] [-r N] ENDPOINT[,ENDPOINT...] OP ARGS...
 *
 *   -r N: the operation N times with one client (the last result printed)
 *
 *   get KEY | list PREFIX [MIN_REVISION] | del KEY [COND]
 *   put KEY VALUE [COND] [lease=L] [fence=KEY:LEASE]
 *   grant TTL | keepalive LEASE | revoke LEASE
 *
 * COND: absent | rev=R.  Prints the result as one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acme_kv_client.h"

static int
usage(void)
{
    fprintf(stderr, "usage: kv_probe [-u USER -p PASSWORD] [-r N] ENDPOINTS OP ARGS...\n");
    return 2;
}

static void
options(acme_kv_op_t *op, char **argv, int argc, char **fence)
{
    int    i;
    char  *c;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "absent") == 0) {
            op->cond = ACME_KV_IF_ABSENT;
        } else if (strncmp(argv[i], "rev=", 4) == 0) {
            op->cond = ACME_KV_IF_REVISION;
            op->revision = strtoll(argv[i] + 4, NULL, 10);
        } else if (strncmp(argv[i], "lease=", 6) == 0) {
            op->lease = strtoll(argv[i] + 6, NULL, 10);
        } else if (strncmp(argv[i], "fence=", 6) == 0) {
            *fence = strdup(argv[i] + 6);
            c = strrchr(*fence, ':');
            if (c != NULL) {
                *c = '\0';
                op->fence_key = *fence;
                op->fence_lease = strtoll(c + 1, NULL, 10);
            }
        }
    }
}

int
main(int argc, char **argv)
{
    acme_kv_client_conf_t  conf;
    acme_kv_client_t      *c;
    acme_kv_op_t           op;
    acme_kv_result_t       res;
    const char            *eps[8], *user = NULL, *password = NULL, *cmd;
    char                  *list, *tok, *fence = NULL, *s;
    json_t                *out, *pairs, *p;
    size_t                 n = 0, i;
    int                    a = 1, repeat = 1;

    while (a + 1 < argc && argv[a][0] == '-') {
        if (strcmp(argv[a], "-u") == 0) {
            user = argv[a + 1];
        } else if (strcmp(argv[a], "-p") == 0) {
            password = argv[a + 1];
        } else if (strcmp(argv[a], "-r") == 0) {
            repeat = atoi(argv[a + 1]);
        } else {
            return usage();
        }
        a += 2;
    }
    if (argc - a < 2) {
        return usage();
    }

    list = strdup(argv[a++]);
    for (tok = strtok(list, ","); tok != NULL && n < 8; tok = strtok(NULL, ",")) {
        eps[n++] = tok;
    }

    memset(&conf, 0, sizeof(conf));
    conf.endpoints = eps;
    conf.n_endpoints = n;
    conf.user = user;
    conf.password = password;
    conf.tls.verify = 1;
    conf.tls.ca_file = getenv("KV_PROBE_CA");
    conf.tls.connect_timeout_ms = 2000;
    conf.tls.io_timeout_ms = 5000;
    conf.tls.total_timeout_ms = 10000;

    memset(&op, 0, sizeof(op));
    cmd = argv[a++];
    if (strcmp(cmd, "get") == 0 && a < argc) {
        op.kind = ACME_KV_GET;
        op.key = argv[a];
    } else if (strcmp(cmd, "list") == 0 && a < argc) {
        op.kind = ACME_KV_LIST;
        op.key = argv[a];
        op.min_revision = a + 1 < argc ? strtoll(argv[a + 1], NULL, 10) : 0;
    } else if (strcmp(cmd, "put") == 0 && a + 1 < argc) {
        op.kind = ACME_KV_PUT;
        op.key = argv[a];
        op.value = argv[a + 1];
        op.value_len = strlen(argv[a + 1]);
        options(&op, argv + a + 2, argc - a - 2, &fence);
    } else if (strcmp(cmd, "del") == 0 && a < argc) {
        op.kind = ACME_KV_DELETE;
        op.key = argv[a];
        options(&op, argv + a + 1, argc - a - 1, &fence);
    } else if (strcmp(cmd, "grant") == 0 && a < argc) {
        op.kind = ACME_KV_LEASE_GRANT;
        op.ttl = strtol(argv[a], NULL, 10);
    } else if ((strcmp(cmd, "keepalive") == 0 || strcmp(cmd, "revoke") == 0)
               && a < argc)
    {
        op.kind = cmd[0] == 'k' ? ACME_KV_LEASE_KEEPALIVE
                                : ACME_KV_LEASE_REVOKE;
        op.lease = strtoll(argv[a], NULL, 10);
    } else {
        return usage();
    }

    c = acme_kv_client_new(&conf);
    if (c == NULL) {
        return 1;
    }
    acme_kv_client_do(c, &op, &res);
    while (--repeat > 0) {
        acme_kv_result_free(&res);
        acme_kv_client_do(c, &op, &res);
    }

    pairs = json_array();
    for (i = 0; i < res.n_pairs; i++) {
        p = json_pack("{s:s, s:I, s:I, s:I}", "key", res.pairs[i].key,
                      "create_revision", (json_int_t) res.pairs[i].create_revision,
                      "mod_revision", (json_int_t) res.pairs[i].mod_revision,
                      "lease", (json_int_t) res.pairs[i].lease);
        if (res.pairs[i].value != NULL) {
            json_object_set_new(p, "value",
                json_stringn((const char *) res.pairs[i].value,
                             res.pairs[i].value_len));
        }
        json_array_append_new(pairs, p);
    }
    out = json_pack("{s:s, s:I, s:I, s:I, s:b, s:s, s:o, s:s}",
                    "status", acme_kv_status_name(res.status),
                    "revision", (json_int_t) res.revision,
                    "lease", (json_int_t) res.lease,
                    "ttl", (json_int_t) res.ttl,
                    "more", res.more,
                    "err", res.err,
                    "pairs", pairs,
                    "endpoint", acme_kv_client_endpoint(c));
    s = json_dumps(out, JSON_COMPACT);
    printf("%s\n", s);

    free(s);
    json_decref(out);
    acme_kv_result_free(&res);
    acme_kv_client_free(c);
    free(list);
    free(fence);
    return 0;
}
