/*
 * One node of a fleet: the blocking lifecycle (acme_fleet_node.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "acme_cert.h"
#include "acme_fleet_node.h"
#include "acme_run.h"
#include "acme_store.h"
#include "acme_util.h"

#define FLEET_FILE_MAX        4096
#define FLEET_NODE_KEEPALIVE  3         /* s: < ACME_FLEET_NODE_TTL / 2 */
#define FLEET_NAME_MAX        100
#define FLEET_BARRIER_POLL_MS 50

typedef struct {
    char       *id;
    int64_t     lease;
    long long   kept;               /* last keepalive, unix time */
    long long   until;              /* a backoff hold (not kept alive) that
                                       ends then; 0: an order's lock */
} fleet_lock_t;

#define FLEET_HOLD_MIN   5           /* s: shorter backoffs just release */
#define FLEET_HOLD_GRACE 15          /* s: the hold outlives the retry time by
                                        this much, so the node finds it its
                                        own when it tries again */
#define FLEET_HOLD_MAX   3600        /* s: the longest hold: a node whose own
                                        setup fails holds the fleet up no
                                        longer than that */

struct acme_fleet_node_s {
    pthread_mutex_t      mu;        /* the client and everything below */
    acme_kv_client_t    *kv;
    acme_kv_client_conf_t kv_conf;
    char               **endpoints;
    size_t               n_endpoints;
    char                *user;
    char                *password;
    char                *ca_file;
    char                *prefix;
    char                *node;
    unsigned char        seal[ACME_SEAL_KEY_LEN];
    long                 lease_ttl;

    int64_t              node_lease;
    long long            node_kept;
    int64_t              acked_written; /* -1: nodes/<node> to be written */
    long long            node_written;  /* when, unix time */
    int64_t              cert_rev;  /* certs/ listed up to this revision */
    char               **tokens;    /* the previous round's challenges */
    size_t               n_tokens;
    fleet_lock_t        *locks;
    size_t               n_locks;
    size_t               n_nodes;
    int                  reachable;
    char                 err[256];
};


/* ---- configuration ---- */

static void
free_strv(char **v, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}


static int
name_ok(const char *s)
{
    size_t  n = 0;

    for (; *s; s++, n++) {
        if (*s == '/' || (unsigned char) *s <= 0x20 || *s == 0x7f) {
            return 0;
        }
    }
    return n > 0 && n <= FLEET_NAME_MAX;
}


static int
endpoint_ok(const char *u)
{
    const char  *h, *port;

    if (strncmp(u, "http://", 7) == 0) {
        h = u + 7;
    } else if (strncmp(u, "https://", 8) == 0) {
        h = u + 8;
    } else {
        return 0;
    }
    /* host:port (etcd listens on 2379, not on the scheme's 80 / 443: the
     * port is required), no path, query, user info or white space */
    if (*h == '\0' || *h == ':' || strpbrk(h, "/?#@ \t") != NULL) {
        return 0;
    }
    if (*h == '[') {
        h = strchr(h, ']');
        if (h == NULL || h[1] != ':') {
            return 0;
        }
        port = h + 2;
    } else {
        port = strrchr(h, ':');
        if (port == NULL || strchr(h, ':') != port) {
            return 0;
        }
        port++;
    }
    if (*port < '1' || *port > '9' || strlen(port) > 5
        || strspn(port, "0123456789") != strlen(port))
    {
        return 0;
    }
    return atol(port) <= 65535;
}


static int
set_once(char **slot, const char *name, const char *value, char *err,
    size_t errlen)
{
    if (*slot != NULL) {
        return acme_err(err, errlen, "\"%s=\" given twice", name);
    }
    if (*value == '\0') {
        return acme_err(err, errlen, "\"%s=\" needs a value", name);
    }
    *slot = acme_strdup(value);
    return *slot != NULL ? 0 : acme_err(err, errlen, "out of memory");
}


int
acme_fleet_conf_parse(char *const *argv, size_t argc, acme_fleet_conf_t *conf,
    char *err, size_t errlen)
{
    static const char *names[] = { "prefix", "key_file", "node", "user",
                                   "password_file",
                                   "ssl_trusted_certificate", "lease_ttl" };
    char       **slots[7], **e, *ttl = NULL, *end;
    char        *list, *p, *tok, *save;
    const char  *eq;
    size_t       i, k, nlen;

    memset(conf, 0, sizeof(*conf));
    slots[0] = &conf->prefix;
    slots[1] = &conf->key_file;
    slots[2] = &conf->node;
    slots[3] = &conf->user;
    slots[4] = &conf->password_file;
    slots[5] = &conf->ca_file;
    slots[6] = &ttl;

    if (argc < 1 || argv[0][0] == '\0') {
        return acme_err(err, errlen, "no etcd endpoint");
    }

    list = acme_strdup(argv[0]);
    if (list == NULL) {
        return acme_err(err, errlen, "out of memory");
    }
    for (tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save))
    {
        if (!endpoint_ok(tok)) {
            acme_err(err, errlen, "\"%s\" is not an etcd endpoint "
                     "(http://host:port or https://host:port with a port from 1 to "
                     "65535, no path)", tok);
            goto failed;
        }
        p = acme_strdup(tok);
        e = realloc(conf->endpoints,
                           (conf->n_endpoints + 1) * sizeof(char *));
        if (p == NULL || e == NULL) {
            free(p);
            if (e != NULL) {
                conf->endpoints = e;
            }
            acme_err(err, errlen, "out of memory");
            goto failed;
        }
        conf->endpoints = e;
        conf->endpoints[conf->n_endpoints++] = p;
    }
    free(list);
    list = NULL;
    if (conf->n_endpoints == 0) {
        acme_err(err, errlen, "no etcd endpoint in \"%s\"", argv[0]);
        goto failed;
    }

    for (i = 1; i < argc; i++) {
        eq = strchr(argv[i], '=');
        nlen = eq != NULL ? (size_t) (eq - argv[i]) : 0;
        for (k = 0; k < 7; k++) {
            if (eq != NULL && strlen(names[k]) == nlen
                && strncmp(argv[i], names[k], nlen) == 0)
            {
                break;
            }
        }
        if (k == 7) {
            acme_err(err, errlen, "unknown parameter \"%s\" (prefix=, "
                     "key_file=, node=, user=, password_file=, "
                     "ssl_trusted_certificate=, lease_ttl=)", argv[i]);
            goto failed;
        }
        if (set_once(slots[k], names[k], eq + 1, err, errlen) != 0) {
            goto failed;
        }
    }

    conf->lease_ttl = ACME_FLEET_ORDER_TTL;
    if (ttl != NULL) {
        conf->lease_ttl = strtol(ttl, &end, 10);
        if (*end != '\0' || conf->lease_ttl < 5 || conf->lease_ttl > 600) {
            acme_err(err, errlen, "lease_ttl=\"%s\": seconds from 5 to 600",
                     ttl);
            goto failed;
        }
        free(ttl);
        ttl = NULL;
    }

    if (conf->prefix == NULL) {
        conf->prefix = acme_strdup("/acme/");
    } else if (conf->prefix[0] != '/' || strpbrk(conf->prefix, " \t\r\n")) {
        acme_err(err, errlen, "prefix=\"%s\" must start with \"/\"",
                 conf->prefix);
        goto failed;
    } else if (conf->prefix[strlen(conf->prefix) - 1] != '/') {
        p = acme_sprintf("%s/", conf->prefix);
        free(conf->prefix);
        conf->prefix = p;
    }
    if (conf->prefix == NULL) {
        acme_err(err, errlen, "out of memory");
        goto failed;
    }

    if (conf->key_file == NULL) {
        acme_err(err, errlen, "key_file= is required (32 bytes, e.g. "
                 "\"openssl rand -base64 32\", the same file on every "
                 "node): private keys are sealed with it");
        goto failed;
    }
    if ((conf->user == NULL) != (conf->password_file == NULL)) {
        acme_err(err, errlen, "user= and password_file= go together");
        goto failed;
    }
    if (conf->node != NULL && !name_ok(conf->node)) {
        acme_err(err, errlen, "node=\"%s\": a name of 1 to %d characters "
                 "without \"/\" or white space", conf->node, FLEET_NAME_MAX);
        goto failed;
    }
    return 0;

failed:

    free(list);
    free(ttl);
    acme_fleet_conf_free(conf);
    return -1;
}


void
acme_fleet_conf_free(acme_fleet_conf_t *conf)
{
    if (conf == NULL) {
        return;
    }
    free_strv(conf->endpoints, conf->n_endpoints);
    free(conf->prefix);
    free(conf->key_file);
    free(conf->node);
    free(conf->user);
    free(conf->password_file);
    free(conf->ca_file);
    memset(conf, 0, sizeof(*conf));
}


int
acme_fleet_conf_load(const acme_fleet_conf_t *conf,
    unsigned char key[ACME_SEAL_KEY_LEN], char **password, char *err,
    size_t errlen)
{
    unsigned char  k[ACME_SEAL_KEY_LEN];
    char          *data, e[ACME_ERRLEN];
    size_t         len;
    int            rc;
    X509_STORE    *st;

    if (password != NULL) {
        *password = NULL;
    }

    rc = acme_store_read(conf->key_file, &data, &len, FLEET_FILE_MAX, e,
                         sizeof(e));
    if (rc != 1) {
        return acme_err(err, errlen, "key_file \"%s\": %s", conf->key_file,
                        rc == 0 ? "no such file" : e);
    }
    rc = acme_seal_key_parse(data, len, k, e, sizeof(e));
    OPENSSL_cleanse(data, len);
    free(data);
    if (rc != 0) {
        return acme_err(err, errlen, "key_file \"%s\": %s", conf->key_file,
                        e);
    }
    if (key != NULL) {
        memcpy(key, k, sizeof(k));
    }
    OPENSSL_cleanse(k, sizeof(k));

    if (conf->ca_file != NULL) {
        /* as the ACME transport loads it at each connection to etcd: a
         * missing or empty file fails here, not at the first round */
        st = X509_STORE_new();
        rc = st != NULL
             && X509_STORE_load_locations(st, conf->ca_file, NULL) == 1;
        X509_STORE_free(st);
        ERR_clear_error();
        if (!rc) {
            return acme_err(err, errlen, "ssl_trusted_certificate \"%s\": "
                            "not a readable file of PEM certificates",
                            conf->ca_file);
        }
    }

    if (conf->password_file == NULL) {
        return 0;
    }

    rc = acme_store_read(conf->password_file, &data, &len, FLEET_FILE_MAX, e,
                         sizeof(e));
    if (rc != 1) {
        return acme_err(err, errlen, "password_file \"%s\": %s",
                        conf->password_file, rc == 0 ? "no such file" : e);
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r')) {
        data[--len] = '\0';
    }
    if (len == 0) {
        free(data);
        return acme_err(err, errlen, "password_file \"%s\" is empty",
                        conf->password_file);
    }
    if (password != NULL) {
        *password = data;
    } else {
        OPENSSL_cleanse(data, len);
        free(data);
    }
    return 0;
}


/* ---- the node ---- */

acme_fleet_node_t *
acme_fleet_node_new(const acme_fleet_conf_t *conf, char *err, size_t errlen)
{
    acme_fleet_node_t  *n;
    char                host[256];
    size_t              i;

    n = calloc(1, sizeof(*n));
    if (n == NULL) {
        acme_err(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&n->mu, NULL);
    n->acked_written = -1;
    n->lease_ttl = conf->lease_ttl > 0 ? conf->lease_ttl
                                       : ACME_FLEET_ORDER_TTL;

    if (acme_fleet_conf_load(conf, n->seal, &n->password, err, errlen) != 0) {
        goto failed;
    }

    if (conf->node != NULL) {
        n->node = acme_strdup(conf->node);
    } else {
        if (gethostname(host, sizeof(host)) != 0) {
            host[0] = '\0';
        }
        host[sizeof(host) - 1] = '\0';
        if (!name_ok(host)) {
            acme_err(err, errlen, "the host name \"%s\" cannot name this "
                     "node: set node=", host);
            goto failed;
        }
        n->node = acme_strdup(host);
    }

    n->endpoints = calloc(conf->n_endpoints, sizeof(char *));
    n->prefix = acme_strdup(conf->prefix);
    n->user = acme_strdup(conf->user);
    n->ca_file = acme_strdup(conf->ca_file);
    if (n->node == NULL || n->endpoints == NULL || n->prefix == NULL
        || (conf->user != NULL && n->user == NULL)
        || (conf->ca_file != NULL && n->ca_file == NULL))
    {
        acme_err(err, errlen, "out of memory");
        goto failed;
    }
    for (i = 0; i < conf->n_endpoints; i++) {
        n->endpoints[i] = acme_strdup(conf->endpoints[i]);
        if (n->endpoints[i] == NULL) {
            acme_err(err, errlen, "out of memory");
            goto failed;
        }
        n->n_endpoints++;
    }

    n->kv_conf.endpoints = (const char *const *) n->endpoints;
    n->kv_conf.n_endpoints = n->n_endpoints;
    n->kv_conf.user = n->user;
    n->kv_conf.password = n->password;
    n->kv_conf.tls.ca_file = n->ca_file;
    n->kv_conf.tls.verify = 1;
    n->kv_conf.tls.connect_timeout_ms = 2000;
    n->kv_conf.tls.io_timeout_ms = 5000;
    n->kv_conf.tls.total_timeout_ms = 8000;

    n->kv = acme_kv_client_new(&n->kv_conf);
    if (n->kv == NULL) {
        acme_err(err, errlen, "out of memory");
        goto failed;
    }
    snprintf(n->err, sizeof(n->err), "not synchronised yet");
    return n;

failed:

    acme_fleet_node_free(n);
    return NULL;
}


const char *
acme_fleet_node_name(const acme_fleet_node_t *n)
{
    return n->node;
}


/* one store operation under the lock; notes reachability */
static acme_kv_status_t
kv_do(acme_fleet_node_t *n, const acme_kv_op_t *op, acme_kv_result_t *res)
{
    acme_kv_status_t  st;

    st = acme_kv_client_do(n->kv, op, res);
    if (st == ACME_KV_UNAVAILABLE || st == ACME_KV_DENIED) {
        n->reachable = 0;
        snprintf(n->err, sizeof(n->err), "%s", res->err);
    } else if (st != ACME_KV_ERROR) {
        n->reachable = 1;
        n->err[0] = '\0';
    }
    return st;
}


static acme_kv_status_t
kv_lease_revoke(acme_fleet_node_t *n, int64_t lease)
{
    acme_kv_op_t      op;
    acme_kv_result_t  res;
    acme_kv_status_t  st;

    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_LEASE_REVOKE;
    op.lease = lease;
    st = kv_do(n, &op, &res);
    acme_kv_result_free(&res);
    return st;
}


static fleet_lock_t *
lock_find(acme_fleet_node_t *n, const char *id)
{
    size_t  i;

    for (i = 0; i < n->n_locks; i++) {
        if (strcmp(n->locks[i].id, id) == 0) {
            return &n->locks[i];
        }
    }
    return NULL;
}


static void
lock_forget(acme_fleet_node_t *n, fleet_lock_t *l)
{
    free(l->id);
    *l = n->locks[--n->n_locks];
}


void
acme_fleet_node_free(acme_fleet_node_t *n)
{
    size_t  i;

    if (n == NULL) {
        return;
    }

    if (n->kv != NULL) {
        /* the keys under them vanish now rather than after their TTL */
        for (i = 0; i < n->n_locks; i++) {
            (void) kv_lease_revoke(n, n->locks[i].lease);
        }
        if (n->node_lease != 0) {
            (void) kv_lease_revoke(n, n->node_lease);
        }
    }
    for (i = 0; i < n->n_locks; i++) {
        free(n->locks[i].id);
    }
    free(n->locks);
    acme_kv_client_free(n->kv);
    free_strv(n->endpoints, n->n_endpoints);
    free_strv(n->tokens, n->n_tokens);
    free(n->user);
    if (n->password != NULL) {
        OPENSSL_cleanse(n->password, strlen(n->password));
        free(n->password);
    }
    free(n->ca_file);
    free(n->prefix);
    free(n->node);
    OPENSSL_cleanse(n->seal, sizeof(n->seal));
    pthread_mutex_destroy(&n->mu);
    free(n);
}


/* ---- sync ---- */

static int
node_lease_keep(acme_fleet_node_t *n, long long now)
{
    acme_kv_op_t      op;
    acme_kv_result_t  res;
    acme_kv_status_t  st;

    memset(&op, 0, sizeof(op));

    if (n->node_lease != 0) {
        if (now - n->node_kept < FLEET_NODE_KEEPALIVE) {
            return 0;
        }
        op.kind = ACME_KV_LEASE_KEEPALIVE;
        op.lease = n->node_lease;
        st = kv_do(n, &op, &res);
        acme_kv_result_free(&res);
        if (st == ACME_KV_OK) {
            n->node_kept = now;
            return 0;
        }
        if (st != ACME_KV_NOT_FOUND) {
            return -1;
        }
        /* expired (a long pause, or the store lost it): a new one */
        n->node_lease = 0;
    }

    op.kind = ACME_KV_LEASE_GRANT;
    op.ttl = ACME_FLEET_NODE_TTL;
    st = kv_do(n, &op, &res);
    if (st == ACME_KV_OK) {
        n->node_lease = res.lease;
        n->node_kept = now;
        n->acked_written = -1;
    }
    acme_kv_result_free(&res);
    return st == ACME_KV_OK ? 0 : -1;
}


static int
node_record_write(acme_fleet_node_t *n, int64_t acked, long long now)
{
    acme_kv_op_t      op;
    acme_kv_result_t  res;
    acme_kv_status_t  st;
    char             *key, value[96];

    /* again now and then even when acked did not change: a key that
     * vanished (a previous process's lease revoked after this one wrote
     * it) is back within FLEET_NODE_KEEPALIVE */
    if (acked == n->acked_written && now - n->node_written
                                     < FLEET_NODE_KEEPALIVE)
    {
        return 0;
    }

    key = acme_fleet_key(n->prefix, "nodes", n->node);
    if (key == NULL) {
        return -1;
    }
    snprintf(value, sizeof(value), "{\"acked\":%lld,\"at\":%lld}",
             (long long) acked, now);

    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_PUT;
    op.key = key;
    op.value = value;
    op.value_len = strlen(value);
    op.lease = n->node_lease;
    st = kv_do(n, &op, &res);
    acme_kv_result_free(&res);
    free(key);
    if (st == ACME_KV_OK) {
        n->acked_written = acked;
        n->node_written = now;
        return 0;
    }
    return -1;
}


static void
order_leases_keep(acme_fleet_node_t *n, long long now)
{
    acme_kv_op_t      op;
    acme_kv_result_t  res;
    acme_kv_status_t  st;
    size_t            i;

    for (i = 0; i < n->n_locks; /* void */) {
        if (n->locks[i].until != 0) {
            /* a backoff hold ends by itself */
            if (now >= n->locks[i].until) {
                lock_forget(n, &n->locks[i]);
                continue;
            }
            i++;
            continue;
        }
        if (now - n->locks[i].kept < n->lease_ttl / 3) {
            i++;
            continue;
        }
        memset(&op, 0, sizeof(op));
        op.kind = ACME_KV_LEASE_KEEPALIVE;
        op.lease = n->locks[i].lease;
        st = kv_do(n, &op, &res);
        acme_kv_result_free(&res);
        if (st == ACME_KV_NOT_FOUND) {
            /* the lock is gone: the publish will be FENCED */
            lock_forget(n, &n->locks[i]);
            continue;
        }
        if (st == ACME_KV_OK) {
            n->locks[i].kept = now;
        }
        i++;
    }
}


static int
str_in(char **v, size_t n, const char *s)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}


static int
list(acme_fleet_node_t *n, const char *kind, int64_t min_revision,
    int keys_only, acme_kv_result_t *res)
{
    acme_kv_op_t  op;
    char         *prefix;
    int           rc;

    prefix = acme_sprintf("%s%s/", n->prefix, kind);
    if (prefix == NULL) {
        memset(res, 0, sizeof(*res));
        return -1;
    }
    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_LIST;
    op.key = prefix;
    op.min_revision = min_revision;
    op.keys_only = keys_only;
    rc = kv_do(n, &op, res) == ACME_KV_OK ? 0 : -1;
    free(prefix);
    return rc;
}


static void
chal_free(acme_fleet_chal_t *c)
{
    free(c->type);
    free(c->identifier);
    free(c->token);
    free(c->key_authz);
    free(c->node);
    memset(c, 0, sizeof(*c));
}


static int
chal_decode(const acme_kv_pair_t *p, acme_fleet_chal_t *c)
{
    json_t  *o;

    memset(c, 0, sizeof(*c));
    o = json_loadb((const char *) p->value, p->value_len, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    c->type = acme_strdup(json_string_value(json_object_get(o, "type")));
    c->identifier = acme_strdup(json_string_value(
                                    json_object_get(o, "identifier")));
    c->token = acme_strdup(json_string_value(json_object_get(o, "token")));
    c->key_authz = acme_strdup(json_string_value(
                                   json_object_get(o, "key_authz")));
    c->node = acme_strdup(json_string_value(json_object_get(o, "node")));
    json_decref(o);

    if (c->type == NULL || c->identifier == NULL || c->token == NULL
        || c->key_authz == NULL
        || !acme_token_ok(c->token, strlen(c->token)))
    {
        chal_free(c);
        return -1;
    }
    return 0;
}


static int
sync_challenges(acme_fleet_node_t *n, acme_fleet_sync_t *out)
{
    acme_kv_result_t  res;
    char            **now_tokens;
    size_t            i, k = 0;

    if (list(n, "challenges", 0, 0, &res) != 0) {
        acme_kv_result_free(&res);
        return -1;
    }

    out->chals = calloc(res.n_pairs + 1, sizeof(acme_fleet_chal_t));
    now_tokens = calloc(res.n_pairs + 1, sizeof(char *));
    if (out->chals == NULL || now_tokens == NULL) {
        free(now_tokens);
        acme_kv_result_free(&res);
        return -1;
    }
    for (i = 0; i < res.n_pairs; i++) {
        if (chal_decode(&res.pairs[i], &out->chals[k]) == 0) {
            now_tokens[k] = acme_strdup(out->chals[k].token);
            k++;
        }
    }
    out->n_chals = k;
    out->chal_revision = res.revision;
    acme_kv_result_free(&res);

    out->gone = calloc(n->n_tokens + 1, sizeof(char *));
    if (out->gone == NULL) {
        free_strv(now_tokens, k);
        return -1;
    }
    for (i = 0; i < n->n_tokens; i++) {
        if (!str_in(now_tokens, k, n->tokens[i])) {
            out->gone[out->n_gone++] = n->tokens[i];
            n->tokens[i] = NULL;
        }
    }
    free_strv(n->tokens, n->n_tokens);
    n->tokens = now_tokens;
    n->n_tokens = k;
    return 0;
}


/* "<prefix>certs/<id>" -> id, or NULL */
static const char *
cert_id_of(const acme_fleet_node_t *n, const char *key)
{
    size_t  plen = strlen(n->prefix);

    if (strncmp(key, n->prefix, plen) != 0
        || strncmp(key + plen, "certs/", 6) != 0
        || key[plen + 6] == '\0' || strchr(key + plen + 6, '/') != NULL)
    {
        return NULL;
    }
    return key + plen + 6;
}


static int
sync_certs(acme_fleet_node_t *n, acme_fleet_sync_t *out)
{
    acme_kv_result_t    res;
    acme_fleet_cert_t  *c;
    const char         *id;
    size_t              i;

    if (list(n, "certs", n->cert_rev > 0 ? n->cert_rev + 1 : 0, 0, &res)
        != 0)
    {
        acme_kv_result_free(&res);
        return -1;
    }

    out->certs = calloc(res.n_pairs + 1, sizeof(acme_fleet_cert_t));
    if (out->certs == NULL) {
        acme_kv_result_free(&res);
        return -1;
    }
    for (i = 0; i < res.n_pairs; i++) {
        id = cert_id_of(n, res.pairs[i].key);
        if (id == NULL || res.pairs[i].value == NULL) {
            continue;
        }
        c = &out->certs[out->n_certs];
        c->id = acme_strdup(id);
        if (c->id == NULL) {
            continue;
        }
        c->revision = res.pairs[i].mod_revision;
        if (acme_fleet_record_decode((const char *) res.pairs[i].value,
                                     res.pairs[i].value_len, n->seal,
                                     res.pairs[i].key, &c->bundle,
                                     &c->bundle_len, &c->not_before,
                                     &c->not_after, &c->node, &c->issuer,
                                     c->err, sizeof(c->err))
            != 0 && c->err[0] == '\0')
        {
            snprintf(c->err, sizeof(c->err), "the record does not decode");
        }
        out->n_certs++;
    }
    if (res.revision > n->cert_rev) {
        n->cert_rev = res.revision;
    }
    acme_kv_result_free(&res);
    return 0;
}


static int
sync_nodes(acme_fleet_node_t *n, acme_fleet_sync_t *out)
{
    acme_kv_result_t  res;

    if (list(n, "nodes", 0, 1, &res) != 0) {
        acme_kv_result_free(&res);
        return -1;
    }
    out->n_nodes = n->n_nodes = res.n_pairs;
    acme_kv_result_free(&res);
    return 0;
}


int
acme_fleet_node_sync(acme_fleet_node_t *n, int64_t acked,
    acme_fleet_sync_t *out)
{
    long long  now = (long long) time(NULL);
    int        rc = -1;

    memset(out, 0, sizeof(*out));

    pthread_mutex_lock(&n->mu);

    if (node_lease_keep(n, now) == 0
        && node_record_write(n, acked, now) == 0)
    {
        order_leases_keep(n, now);
        if (sync_challenges(n, out) == 0 && sync_certs(n, out) == 0
            && sync_nodes(n, out) == 0)
        {
            rc = 0;
        }
    }

    if (rc != 0 && n->reachable) {
        /* reachable but an answer we could not use */
        snprintf(n->err, sizeof(n->err), "an unexpected answer from the "
                 "store (see the previous message)");
    }
    out->reachable = rc == 0;
    snprintf(out->err, sizeof(out->err), "%s", rc == 0 ? "" : n->err);
    out->endpoint = acme_kv_client_endpoint(n->kv);
    if (rc != 0) {
        n->reachable = 0;
    }

    pthread_mutex_unlock(&n->mu);
    return rc;
}


void
acme_fleet_sync_free(acme_fleet_sync_t *s)
{
    size_t  i;

    if (s == NULL) {
        return;
    }
    for (i = 0; i < s->n_chals; i++) {
        chal_free(&s->chals[i]);
    }
    free(s->chals);
    free_strv(s->gone, s->n_gone);
    for (i = 0; i < s->n_certs; i++) {
        free(s->certs[i].id);
        acme_bundle_free(s->certs[i].bundle, s->certs[i].bundle_len);
        free(s->certs[i].node);
        free(s->certs[i].issuer);
    }
    free(s->certs);
    memset(s, 0, sizeof(*s));
}


/* ---- claim ---- */

/* GET key: 1 found (*res holds it), 0 absent, -1 unreachable / error */
static int
get(acme_fleet_node_t *n, const char *key, acme_kv_result_t *res)
{
    acme_kv_op_t      op;
    acme_kv_status_t  st;

    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_GET;
    op.key = key;
    st = kv_do(n, &op, res);
    if (st == ACME_KV_OK && res->n_pairs == 1 && res->pairs[0].value) {
        return 1;
    }
    return st == ACME_KV_OK || st == ACME_KV_NOT_FOUND ? 0 : -1;
}


/* reads certs/<id> into out (bundle, dates, revision) and who ordered it
 * into by (by_len bytes); -1 unreachable, -2 sealed with another key */
static int
read_record(acme_fleet_node_t *n, const char *key, acme_fleet_claim_t *out,
    char *by, size_t by_len)
{
    acme_kv_result_t  res;
    char             *node = NULL;
    int               rc, drc;

    by[0] = '\0';

    acme_bundle_free(out->bundle, out->bundle_len);
    out->bundle = NULL;
    out->bundle_len = 0;
    out->not_before = out->not_after = 0;
    out->record_revision = 0;

    rc = get(n, key, &res);
    if (rc == 1) {
        out->record_revision = res.pairs[0].mod_revision;
        drc = acme_fleet_record_decode((const char *) res.pairs[0].value,
                                       res.pairs[0].value_len, n->seal, key,
                                       &out->bundle, &out->bundle_len,
                                       &out->not_before, &out->not_after,
                                       &node, NULL, out->err,
                                       sizeof(out->err));
        if (drc != 0) {
            /* a record we cannot open is no certificate to install; an
             * order here replaces it (fenced by the lock), unless it names
             * another key file: then this node is the one set up wrong */
            out->not_before = out->not_after = 0;
            if (drc == ACME_FLEET_OTHER_KEY) {
                rc = -2;
            }
        }
        snprintf(by, by_len, "%s", node != NULL ? node : "");
        free(node);
    } else if (rc < 0) {
        snprintf(out->err, sizeof(out->err), "%s", res.err);
    }
    acme_kv_result_free(&res);
    return rc < 0 ? rc : 0;
}


acme_fleet_action_t
acme_fleet_node_claim(acme_fleet_node_t *n, const char *id,
    const acme_fleet_facts_t *f, acme_fleet_claim_t *out)
{
    acme_fleet_facts_t  facts = *f;
    acme_kv_op_t        op;
    acme_kv_result_t    res;
    acme_kv_status_t    st;
    fleet_lock_t       *mine, *l;
    char               *ckey, *lkey, by[sizeof(out->holder)];
    int64_t             lease;
    int                 rc;

    memset(out, 0, sizeof(*out));
    out->action = ACME_FLEET_IDLE;
    out->next_check = f->now + (f->poll > 0 ? f->poll : 60);

    ckey = acme_fleet_key(n->prefix, "certs", id);
    lkey = acme_fleet_key(n->prefix, "locks", id);
    if (ckey == NULL || lkey == NULL) {
        snprintf(out->err, sizeof(out->err), "\"%s\" cannot name a store "
                 "key", id);
        free(ckey);
        free(lkey);
        return out->action;
    }

    pthread_mutex_lock(&n->mu);

    rc = read_record(n, ckey, out, by, sizeof(by));
    if (rc == -2) {
        /* neither install nor order over it (out->err says why) */
        out->action = ACME_FLEET_IDLE;
        goto done;
    }
    facts.store_reachable = rc == 0;
    if (facts.store_reachable) {
        facts.store_has_record = out->not_after != 0;
        facts.store_not_before = out->not_before;
        facts.store_not_after = out->not_after;

        rc = get(n, lkey, &res);
        if (rc < 0) {
            facts.store_reachable = 0;
            snprintf(out->err, sizeof(out->err), "%s", res.err);
        } else if (rc == 1) {
            mine = lock_find(n, id);
            if (mine != NULL && mine->lease == res.pairs[0].lease
                && mine->until != 0)
            {
                /* this node's backoff hold: its next order takes the lock
                 * afresh (a lease of its own, kept alive) */
                (void) kv_lease_revoke(n, mine->lease);
                lock_forget(n, mine);

            } else if (mine != NULL && mine->lease == res.pairs[0].lease) {
                facts.lock_mine = 1;
            } else {
                facts.lock_other = 1;
                snprintf(out->holder, sizeof(out->holder), "%.*s",
                         (int) res.pairs[0].value_len,
                         (const char *) res.pairs[0].value);
            }
        }
        acme_kv_result_free(&res);
    }

    out->action = acme_fleet_next(&facts, &out->next_check);

    if (out->action != ACME_FLEET_INSTALL) {
        acme_bundle_free(out->bundle, out->bundle_len);
        out->bundle = NULL;
        out->bundle_len = 0;
    }
    if (out->action == ACME_FLEET_ORDER) {
        snprintf(out->holder, sizeof(out->holder), "%s", n->node);
    }
    if (out->action != ACME_FLEET_LOCK) {
        goto done;
    }

    /* LOCK: a lease, then locks/<id> if absent under it */
    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_LEASE_GRANT;
    op.ttl = n->lease_ttl;
    st = kv_do(n, &op, &res);
    lease = res.lease;
    if (st != ACME_KV_OK) {
        snprintf(out->err, sizeof(out->err), "%s", res.err);
        acme_kv_result_free(&res);
        out->action = ACME_FLEET_IDLE;
        goto done;
    }
    acme_kv_result_free(&res);

    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_PUT;
    op.key = lkey;
    op.value = n->node;
    op.value_len = strlen(n->node);
    op.cond = ACME_KV_IF_ABSENT;
    op.lease = lease;
    st = kv_do(n, &op, &res);

    if (st == ACME_KV_CONFLICT) {
        if (res.n_pairs == 1 && res.pairs[0].value != NULL) {
            snprintf(out->holder, sizeof(out->holder), "%.*s",
                     (int) res.pairs[0].value_len,
                     (const char *) res.pairs[0].value);
        }
        acme_kv_result_free(&res);
        (void) kv_lease_revoke(n, lease);
        out->action = ACME_FLEET_WAIT;
        goto done;
    }
    if (st != ACME_KV_OK) {
        snprintf(out->err, sizeof(out->err), "%s", res.err);
        acme_kv_result_free(&res);
        (void) kv_lease_revoke(n, lease);
        out->action = ACME_FLEET_IDLE;
        goto done;
    }
    acme_kv_result_free(&res);

    /*
     * The lock is ours.  A node that published and let go of the lock
     * between our two reads left a newer record: install it instead.
     */
    if (read_record(n, ckey, out, by, sizeof(by)) == 0 && out->not_after != 0
        && (f->local_not_after == 0 || out->not_after > f->local_not_after))
    {
        (void) kv_lease_revoke(n, lease);
        out->action = ACME_FLEET_INSTALL;
        goto done;
    }
    acme_bundle_free(out->bundle, out->bundle_len);
    out->bundle = NULL;
    out->bundle_len = 0;

    l = realloc(n->locks, (n->n_locks + 1) * sizeof(fleet_lock_t));
    if (l == NULL) {
        (void) kv_lease_revoke(n, lease);
        snprintf(out->err, sizeof(out->err), "out of memory");
        out->action = ACME_FLEET_IDLE;
        goto done;
    }
    n->locks = l;
    l = &n->locks[n->n_locks];
    l->id = acme_strdup(id);
    if (l->id == NULL) {
        (void) kv_lease_revoke(n, lease);
        snprintf(out->err, sizeof(out->err), "out of memory");
        out->action = ACME_FLEET_IDLE;
        goto done;
    }
    l->lease = lease;
    l->kept = f->now;
    l->until = 0;
    n->n_locks++;
    snprintf(out->holder, sizeof(out->holder), "%s", n->node);
    out->action = ACME_FLEET_ORDER;

done:

    if (out->action == ACME_FLEET_INSTALL) {
        snprintf(out->holder, sizeof(out->holder), "%s", by);
    }
    pthread_mutex_unlock(&n->mu);
    free(ckey);
    free(lkey);
    return out->action;
}


void
acme_fleet_claim_free(acme_fleet_claim_t *c)
{
    if (c == NULL) {
        return;
    }
    acme_bundle_free(c->bundle, c->bundle_len);
    memset(c, 0, sizeof(*c));
}


/* ---- challenges ---- */

/* the other live nodes' acked revisions (malloc'd), or -1 */
static int
nodes_acked(acme_fleet_node_t *n, long long **acked, size_t *count)
{
    acme_kv_result_t  res;
    json_t           *o;
    size_t            i, plen, k = 0;
    const char       *name;

    *acked = NULL;
    *count = 0;
    if (list(n, "nodes", 0, 0, &res) != 0) {
        acme_kv_result_free(&res);
        return -1;
    }
    *acked = calloc(res.n_pairs + 1, sizeof(long long));
    if (*acked == NULL) {
        acme_kv_result_free(&res);
        return -1;
    }
    plen = strlen(n->prefix) + strlen("nodes/");
    for (i = 0; i < res.n_pairs; i++) {
        name = strlen(res.pairs[i].key) > plen ? res.pairs[i].key + plen
                                               : "";
        if (strcmp(name, n->node) == 0 || res.pairs[i].value == NULL) {
            continue;
        }
        o = json_loadb((const char *) res.pairs[i].value,
                       res.pairs[i].value_len, 0, NULL);
        (*acked)[k++] = (long long) json_integer_value(
                                        json_object_get(o, "acked"));
        json_decref(o);
    }
    *count = k;
    acme_kv_result_free(&res);
    return 0;
}


/* a challenge's record: {"type", "identifier", "token", "key_authz",
 * "node"}, malloc'd, or NULL */
static char *
json_dumps_pack(const char *type, const char *identifier, const char *token,
    const char *key_authz, const char *node)
{
    json_t  *o;
    char    *s;

    o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "identifier",
                  identifier, "token", token, "key_authz", key_authz,
                  "node", node);
    if (o == NULL) {
        return NULL;
    }
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}


int
acme_fleet_node_challenge_put(acme_fleet_node_t *n, const char *id,
    const char *type, const char *identifier, const char *token,
    const char *key_authz, int (*stop)(void *), void *stop_data,
    size_t *missing, char *err, size_t errlen)
{
    acme_kv_op_t      op;
    acme_kv_result_t  res;
    acme_kv_status_t  st;
    fleet_lock_t     *l;
    char             *key, *lkey, *value;
    long long         rev, start, *acked;
    size_t            count, behind = 0;
    int               rc;

    if (missing != NULL) {
        *missing = 0;
    }

    pthread_mutex_lock(&n->mu);
    l = lock_find(n, id);
    if (l == NULL) {
        /* ordered alone (the store was unreachable): nothing to share */
        pthread_mutex_unlock(&n->mu);
        return 0;
    }

    key = acme_fleet_key(n->prefix, "challenges", token);
    lkey = acme_fleet_key(n->prefix, "locks", id);
    value = json_dumps_pack(type, identifier, token, key_authz, n->node);
    if (key == NULL || lkey == NULL || value == NULL
        || !acme_token_ok(token, strlen(token)))
    {
        pthread_mutex_unlock(&n->mu);
        free(key);
        free(lkey);
        free(value);
        return acme_err(err, errlen, "challenge %s of \"%s\" cannot be "
                        "shared", type, identifier);
    }

    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_PUT;
    op.key = key;
    op.value = value;
    op.value_len = strlen(value);
    op.lease = l->lease;
    op.fence_key = lkey;
    op.fence_lease = l->lease;
    st = kv_do(n, &op, &res);
    rev = res.revision;
    pthread_mutex_unlock(&n->mu);

    free(key);
    free(lkey);
    free(value);

    if (st != ACME_KV_OK) {
        rc = acme_err(err, errlen, "the shared store refused challenge %s "
                      "of \"%s\": %s%s", type, identifier,
                      acme_kv_status_name(st),
                      st == ACME_KV_FENCED ? " (this node's lock of the "
                      "order expired)" : "");
        if (st != ACME_KV_FENCED && res.err[0] != '\0') {
            rc = acme_err(err, errlen, "the shared store refused challenge "
                          "%s of \"%s\": %s", type, identifier, res.err);
        }
        acme_kv_result_free(&res);
        return rc;
    }
    acme_kv_result_free(&res);

    /* the barrier: every other live node mirrored it, or the bound */
    start = acme_monotonic_ms();
    for ( ;; ) {
        pthread_mutex_lock(&n->mu);
        rc = nodes_acked(n, &acked, &count);
        pthread_mutex_unlock(&n->mu);
        if (rc != 0) {
            free(acked);
            return acme_err(err, errlen, "the shared store became "
                            "unreachable while challenge %s of \"%s\" was "
                            "shared", type, identifier);
        }
        rc = acme_fleet_challenges_ready(rev, acked, count,
                                         acme_monotonic_ms(), start,
                                         ACME_FLEET_BARRIER_MS, &behind);
        free(acked);
        if (rc || (stop != NULL && stop(stop_data))) {
            break;
        }
        acme_sleep_ms(FLEET_BARRIER_POLL_MS);
    }

    if (missing != NULL) {
        *missing = behind;
    }
    return 0;
}


void
acme_fleet_node_challenge_delete(acme_fleet_node_t *n, const char *token)
{
    acme_kv_op_t      op;
    acme_kv_result_t  res;
    char             *key;

    key = acme_fleet_key(n->prefix, "challenges", token);
    if (key == NULL) {
        return;
    }
    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_DELETE;
    op.key = key;
    pthread_mutex_lock(&n->mu);
    (void) kv_do(n, &op, &res);
    pthread_mutex_unlock(&n->mu);
    acme_kv_result_free(&res);
    free(key);
}


/* ---- publish, release ---- */

acme_kv_status_t
acme_fleet_node_publish(acme_fleet_node_t *n, const char *id,
    const acme_fleet_record_t *rec, int64_t if_revision, char *err,
    size_t errlen)
{
    acme_kv_op_t      op;
    acme_kv_result_t  res;
    acme_kv_status_t  st;
    fleet_lock_t     *l;
    char             *key, *lkey, *json;

    key = acme_fleet_key(n->prefix, "certs", id);
    lkey = acme_fleet_key(n->prefix, "locks", id);
    if (key == NULL || lkey == NULL) {
        free(key);
        free(lkey);
        acme_err(err, errlen, "\"%s\" cannot name a store key", id);
        return ACME_KV_ERROR;
    }
    json = acme_fleet_record_encode(rec, n->seal, key, err, errlen);
    if (json == NULL) {
        free(key);
        free(lkey);
        return ACME_KV_ERROR;
    }

    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_PUT;
    op.key = key;
    op.value = json;
    op.value_len = strlen(json);

    pthread_mutex_lock(&n->mu);
    l = lock_find(n, id);
    if (l != NULL) {
        op.fence_key = lkey;
        op.fence_lease = l->lease;
    } else {
        op.cond = if_revision > 0 ? ACME_KV_IF_REVISION : ACME_KV_IF_ABSENT;
        op.revision = if_revision;
    }
    st = kv_do(n, &op, &res);
    if (st != ACME_KV_OK) {
        acme_err(err, errlen, "%s%s", st == ACME_KV_FENCED
                 ? "this node's lock of the order expired: another node may "
                   "have ordered" : st == ACME_KV_CONFLICT
                 ? "the record changed in the store meanwhile" : res.err,
                 "");
    }
    acme_kv_result_free(&res);

    /* the lock goes, and with its lease the order's challenges */
    l = lock_find(n, id);
    if (l != NULL && st != ACME_KV_UNAVAILABLE) {
        (void) kv_lease_revoke(n, l->lease);
        lock_forget(n, l);
    }
    pthread_mutex_unlock(&n->mu);

    OPENSSL_cleanse(json, strlen(json));
    free(json);
    free(key);
    free(lkey);
    return st;
}


void
acme_fleet_node_release(acme_fleet_node_t *n, const char *id)
{
    fleet_lock_t  *l;

    pthread_mutex_lock(&n->mu);
    l = lock_find(n, id);
    if (l != NULL) {
        (void) kv_lease_revoke(n, l->lease);
        lock_forget(n, l);
    }
    pthread_mutex_unlock(&n->mu);
}


void
acme_fleet_node_release_until(acme_fleet_node_t *n, const char *id,
    long long retry_at)
{
    acme_kv_op_t      op;
    acme_kv_result_t  res;
    acme_kv_status_t  st;
    fleet_lock_t     *l;
    char             *lkey;
    long long         now = (long long) time(NULL), ttl;
    int64_t           old, hold;

    ttl = retry_at - now;
    if (ttl < FLEET_HOLD_MIN) {
        acme_fleet_node_release(n, id);
        return;
    }
    if (ttl > FLEET_HOLD_MAX) {
        ttl = FLEET_HOLD_MAX;
    }
    ttl += FLEET_HOLD_GRACE;

    lkey = acme_fleet_key(n->prefix, "locks", id);
    if (lkey == NULL) {
        acme_fleet_node_release(n, id);
        return;
    }

    pthread_mutex_lock(&n->mu);

    l = lock_find(n, id);
    if (l == NULL || l->until != 0) {
        pthread_mutex_unlock(&n->mu);
        free(lkey);
        return;
    }
    old = l->lease;

    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_LEASE_GRANT;
    op.ttl = ttl;
    st = kv_do(n, &op, &res);
    hold = res.lease;
    acme_kv_result_free(&res);

    if (st == ACME_KV_OK) {
        /* the lock moves to the hold's lease while it is still ours */
        memset(&op, 0, sizeof(op));
        op.kind = ACME_KV_PUT;
        op.key = lkey;
        op.value = n->node;
        op.value_len = strlen(n->node);
        op.lease = hold;
        op.fence_key = lkey;
        op.fence_lease = old;
        st = kv_do(n, &op, &res);
        acme_kv_result_free(&res);
        if (st != ACME_KV_OK) {
            (void) kv_lease_revoke(n, hold);
        }
    }

    /* the order's lease goes, and its challenges with it */
    (void) kv_lease_revoke(n, old);

    l = lock_find(n, id);
    if (l != NULL) {
        if (st == ACME_KV_OK) {
            l->lease = hold;
            l->kept = now;
            l->until = now + ttl;
        } else {
            lock_forget(n, l);
        }
    }

    pthread_mutex_unlock(&n->mu);
    free(lkey);
}


char *
acme_fleet_node_status_json(acme_fleet_node_t *n)
{
    json_t  *o, *locks;
    char    *out, lease[32];
    size_t   i;

    pthread_mutex_lock(&n->mu);
    locks = json_object();
    for (i = 0; locks != NULL && i < n->n_locks; i++) {
        snprintf(lease, sizeof(lease), "%llx",
                 (unsigned long long) n->locks[i].lease);
        json_object_set_new(locks, n->locks[i].id, json_string(lease));
    }
    o = json_pack("{s:s, s:s, s:b, s:s, s:s?, s:I, s:o?}", "backend", "etcd",
                  "node", n->node, "reachable", n->reachable,
                  "endpoint", acme_kv_client_endpoint(n->kv),
                  "error", n->err[0] != '\0' ? n->err : NULL,
                  "nodes", (json_int_t) n->n_nodes, "locks", locks);
    pthread_mutex_unlock(&n->mu);

    if (o == NULL) {
        return NULL;
    }
    out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return out;
}
