/*
 * etcd v3 through its HTTP/JSON gateway (acme_etcd.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "acme_etcd.h"
#include "acme_util.h"

/* gRPC status codes the gateway puts in "code" (grpc/codes) */
#define GRPC_INVALID_ARGUMENT    3
#define GRPC_DEADLINE_EXCEEDED   4
#define GRPC_NOT_FOUND           5
#define GRPC_PERMISSION_DENIED   7
#define GRPC_RESOURCE_EXHAUSTED  8
#define GRPC_INTERNAL           13
#define GRPC_UNAVAILABLE        14
#define GRPC_UNAUTHENTICATED    16


/* ---- encoding ------------------------------------------------------------ */

/* standard base64 with padding, as the gateway encodes bytes */
static char *
b64(const void *data, size_t len)
{
    char  *out;

    if (len > (SIZE_MAX / 4) * 3 - 4) {
        return NULL;
    }
    out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL) {
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *) out, data, (int) len);
    return out;
}


/* the gateway's standard base64 (padded), as secrets are decoded */
static unsigned char *
unb64(const char *s, size_t *len)
{
    return acme_b64_secret_decode(s, len, NULL);
}


static int
set_b64(json_t *o, const char *name, const void *data, size_t len)
{
    char  *s;
    int    rc;

    s = b64(data, len);
    if (s == NULL) {
        return -1;
    }
    rc = json_object_set_new(o, name, json_string(s));
    free(s);
    return rc;
}


/* 64-bit numbers are strings in the gateway's JSON */
static int
set_i64(json_t *o, const char *name, int64_t v)
{
    char  buf[32];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return json_object_set_new(o, name, json_string(buf));
}


static json_t *
compare(const char *key, const char *target, const char *field, int64_t v)
{
    json_t  *c;

    c = json_object();
    if (c == NULL
        || set_b64(c, "key", key, strlen(key)) != 0
        || json_object_set_new(c, "target", json_string(target)) != 0
        || json_object_set_new(c, "result", json_string("EQUAL")) != 0
        || set_i64(c, field, v) != 0)
    {
        json_decref(c);
        return NULL;
    }
    return c;
}


static json_t *
request_range(const char *key)
{
    json_t  *r, *op;

    r = json_object();
    op = json_object();
    if (r == NULL || op == NULL || set_b64(r, "key", key, strlen(key)) != 0
        || json_object_set_new(op, "request_range", r) != 0)
    {
        json_decref(op);
        return NULL;
    }
    return op;
}


/* PUT and DELETE: one transaction with op's conditions */
static json_t *
encode_txn(const acme_kv_op_t *op)
{
    json_t  *body, *cmp, *success, *failure, *req, *inner, *c;
    int      rc = 0;

    body = json_object();
    cmp = json_array();
    success = json_array();
    failure = json_array();
    inner = json_object();
    req = json_object();
    if (body == NULL || cmp == NULL || success == NULL || failure == NULL
        || inner == NULL || req == NULL)
    {
        goto failed;
    }

    if (op->cond == ACME_KV_IF_ABSENT) {
        c = compare(op->key, "CREATE", "create_revision", 0);
        rc |= c != NULL ? json_array_append_new(cmp, c) : -1;

    } else if (op->cond == ACME_KV_IF_REVISION) {
        c = compare(op->key, "MOD", "mod_revision", op->revision);
        rc |= c != NULL ? json_array_append_new(cmp, c) : -1;
    }

    if (op->fence_key != NULL) {
        c = compare(op->fence_key, "LEASE", "lease", op->fence_lease);
        rc |= c != NULL ? json_array_append_new(cmp, c) : -1;
    }

    rc |= set_b64(inner, "key", op->key, strlen(op->key));
    if (op->kind == ACME_KV_PUT) {
        rc |= set_b64(inner, "value", op->value != NULL ? op->value : "",
                      op->value_len);
        if (op->lease != 0) {
            rc |= set_i64(inner, "lease", op->lease);
        }
        rc |= json_object_set_new(req, "request_put", inner);

    } else {
        rc |= json_object_set_new(req, "request_delete_range", inner);
    }
    inner = NULL;
    rc |= json_array_append_new(success, req);
    req = NULL;

    /* read back what made it fail: the key, then the fence */
    c = request_range(op->key);
    rc |= c != NULL ? json_array_append_new(failure, c) : -1;
    if (op->fence_key != NULL) {
        c = request_range(op->fence_key);
        rc |= c != NULL ? json_array_append_new(failure, c) : -1;
    }

    rc |= json_object_set_new(body, "compare", cmp);
    rc |= json_object_set_new(body, "success", success);
    rc |= json_object_set_new(body, "failure", failure);
    if (rc != 0) {
        json_decref(body);
        return NULL;
    }
    return body;

failed:

    json_decref(body);
    json_decref(cmp);
    json_decref(success);
    json_decref(failure);
    json_decref(inner);
    json_decref(req);
    return NULL;
}


static json_t *
encode_range(const acme_kv_op_t *op)
{
    json_t         *body;
    unsigned char  *end;
    size_t          end_len;
    int             rc = 0;

    body = json_object();
    if (body == NULL) {
        return NULL;
    }

    rc |= set_b64(body, "key", op->key, strlen(op->key));

    if (op->kind == ACME_KV_LIST) {
        if (acme_kv_prefix_end(op->key, &end, &end_len) != 0) {
            json_decref(body);
            return NULL;
        }
        rc |= set_b64(body, "range_end", end, end_len);
        free(end);

        if (op->min_revision > 0) {
            rc |= set_i64(body, "min_mod_revision", op->min_revision);
        }
        if (op->keys_only) {
            rc |= json_object_set_new(body, "keys_only", json_true());
        }
        if (op->limit > 0) {
            rc |= set_i64(body, "limit", op->limit);
        }
        /* a list is read in key order, so "more" continues after the last */
        rc |= json_object_set_new(body, "sort_order", json_string("ASCEND"));
        rc |= json_object_set_new(body, "sort_target", json_string("KEY"));
    }

    if (rc != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}


int
acme_etcd_encode(const acme_kv_op_t *op, const char *endpoint,
    const char *token, acme_etcd_req_t *req, char *err, size_t errlen)
{
    json_t      *body;
    const char  *path;
    size_t       n;

    memset(req, 0, sizeof(*req));

    if (endpoint == NULL || (strncmp(endpoint, "http://", 7) != 0
                             && strncmp(endpoint, "https://", 8) != 0))
    {
        return acme_err(err, errlen, "etcd endpoint \"%s\" is not http:// "
                        "or https://", endpoint ? endpoint : "");
    }

    switch (op->kind) {
    case ACME_KV_GET:
    case ACME_KV_LIST:
    case ACME_KV_PUT:
    case ACME_KV_DELETE:
        if (op->key == NULL || *op->key == '\0') {
            return acme_err(err, errlen, "etcd: an operation without a key");
        }
        if (op->kind == ACME_KV_GET || op->kind == ACME_KV_LIST) {
            path = "/v3/kv/range";
            body = encode_range(op);
        } else {
            path = "/v3/kv/txn";
            body = encode_txn(op);
        }
        break;

    case ACME_KV_LEASE_GRANT:
        if (op->ttl < 1) {
            return acme_err(err, errlen, "etcd: a lease of %ld s", op->ttl);
        }
        path = "/v3/lease/grant";
        body = json_object();
        if (body != NULL && set_i64(body, "TTL", op->ttl) != 0) {
            json_decref(body);
            body = NULL;
        }
        break;

    case ACME_KV_LEASE_KEEPALIVE:
    case ACME_KV_LEASE_REVOKE:
        if (op->lease == 0) {
            return acme_err(err, errlen, "etcd: no lease");
        }
        path = op->kind == ACME_KV_LEASE_KEEPALIVE ? "/v3/lease/keepalive"
                                                   : "/v3/lease/revoke";
        body = json_object();
        if (body != NULL && set_i64(body, "ID", op->lease) != 0) {
            json_decref(body);
            body = NULL;
        }
        break;

    case ACME_KV_AUTH:
        if (op->user == NULL || op->password == NULL) {
            return acme_err(err, errlen, "etcd: no user or password");
        }
        path = "/v3/auth/authenticate";
        body = json_pack("{s:s, s:s}", "name", op->user,
                         "password", op->password);
        break;

    default:
        return acme_err(err, errlen, "etcd: unknown operation %d",
                        (int) op->kind);
    }

    if (body == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    req->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);

    n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/') {
        n--;
    }
    req->url = acme_sprintf("%.*s%s", (int) n, endpoint, path);

    if (req->body == NULL || req->url == NULL) {
        acme_etcd_req_free(req);
        return acme_err(err, errlen, "out of memory");
    }

    req->http.method = "POST";
    req->http.url = req->url;
    req->http.body = req->body;
    req->http.body_len = strlen(req->body);
    req->http.content_type = "application/json";
    req->http.accept = "application/json";
    req->http.authorization = token;
    return 0;
}


void
acme_etcd_req_free(acme_etcd_req_t *req)
{
    if (req == NULL) {
        return;
    }
    if (req->body != NULL) {
        /* an authenticate request carries the password */
        OPENSSL_cleanse(req->body, strlen(req->body));
    }
    free(req->body);
    free(req->url);
    memset(req, 0, sizeof(*req));
}


/* ---- decoding ------------------------------------------------------------ */

static void
fail(acme_kv_result_t *res, acme_kv_status_t status, const char *fmt,
    const char *detail)
{
    res->status = status;
    snprintf(res->err, sizeof(res->err), fmt, detail != NULL ? detail : "");
}


/* a 64-bit number as the gateway writes it: a string, or a JSON number */
static int
get_i64(json_t *o, const char *name, int64_t *v)
{
    json_t      *j;
    const char  *s;
    char        *end;
    long long    n;

    *v = 0;
    j = json_object_get(o, name);
    if (j == NULL) {
        return 0;
    }
    if (json_is_integer(j)) {
        *v = (int64_t) json_integer_value(j);
        return 0;
    }
    s = json_string_value(j);
    if (s == NULL || *s == '\0') {
        return -1;
    }
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *v = (int64_t) n;
    return 0;
}


static int
decode_pairs(json_t *kvs, int values, acme_kv_result_t *res)
{
    json_t         *kv;
    size_t          i, n;
    acme_kv_pair_t *p;
    const char     *k, *v;
    unsigned char  *key;
    size_t          klen;

    if (kvs == NULL) {
        return 0;
    }
    if (!json_is_array(kvs)) {
        return -1;
    }

    n = json_array_size(kvs);
    if (n == 0) {
        return 0;
    }
    res->pairs = calloc(n, sizeof(acme_kv_pair_t));
    if (res->pairs == NULL) {
        return -1;
    }

    json_array_foreach(kvs, i, kv) {
        p = &res->pairs[res->n_pairs];
        k = json_string_value(json_object_get(kv, "key"));
        if (k == NULL) {
            return -1;
        }
        key = unb64(k, &klen);
        if (key == NULL) {
            return -1;
        }
        p->key = acme_strndup((const char *) key, klen);
        free(key);
        if (p->key == NULL || strlen(p->key) != klen) {
            free(p->key);
            return -1;
        }
        res->n_pairs++;

        v = json_string_value(json_object_get(kv, "value"));
        if (v != NULL) {
            key = unb64(v, &p->value_len);
            if (key == NULL) {
                return -1;
            }
            p->value = malloc(p->value_len + 1);
            if (p->value == NULL) {
                free(key);
                return -1;
            }
            memcpy(p->value, key, p->value_len);
            p->value[p->value_len] = '\0';
            free(key);

        } else if (values) {
            /* an empty value is left out of the answer */
            p->value = calloc(1, 1);
            if (p->value == NULL) {
                return -1;
            }
        }

        if (get_i64(kv, "create_revision", &p->create_revision) != 0
            || get_i64(kv, "mod_revision", &p->mod_revision) != 0
            || get_i64(kv, "lease", &p->lease) != 0)
        {
            return -1;
        }
    }
    return 0;
}


/* the failure branch of a PUT / DELETE: the key, then the fence key */
static void
decode_txn_failed(const acme_kv_op_t *op, json_t *doc, acme_kv_result_t *res)
{
    json_t   *responses, *r;
    int64_t   lease;

    responses = json_object_get(doc, "responses");

    if (op->fence_key != NULL) {
        r = json_object_get(json_array_get(responses, 1), "response_range");
        r = json_array_get(json_object_get(r, "kvs"), 0);
        if (r == NULL || get_i64(r, "lease", &lease) != 0
            || lease != op->fence_lease)
        {
            fail(res, ACME_KV_FENCED, "etcd: \"%s\" is not held by this "
                 "node's lease any more", op->fence_key);
            return;
        }
    }

    r = json_object_get(json_array_get(responses, 0), "response_range");
    if (decode_pairs(json_object_get(r, "kvs"), 1, res) != 0) {
        fail(res, ACME_KV_ERROR, "etcd: a malformed txn answer%s", NULL);
        return;
    }
    fail(res, ACME_KV_CONFLICT, op->cond == ACME_KV_IF_ABSENT
         ? "etcd: \"%s\" exists already"
         : "etcd: \"%s\" changed since it was read", op->key);
}


void
acme_etcd_decode(const acme_kv_op_t *op, const acme_http_response_t *resp,
    const char *why, acme_kv_result_t *res)
{
    json_t       *doc, *j;
    json_error_t  jerr;
    int64_t       code;
    const char   *msg, *token;

    memset(res, 0, sizeof(*res));

    if (resp == NULL) {
        fail(res, ACME_KV_UNAVAILABLE, "etcd: no answer%s", NULL);
        if (why != NULL) {
            snprintf(res->err, sizeof(res->err), "etcd: %s", why);
        }
        return;
    }

    doc = NULL;
    if (resp->body != NULL && resp->body_len > 0) {
        doc = json_loadb(resp->body, resp->body_len,
                         JSON_DISABLE_EOF_CHECK, &jerr);
    }

    if (resp->status != 200) {
        msg = json_string_value(json_object_get(doc, "message"));
        if (msg == NULL) {
            msg = json_string_value(json_object_get(doc, "error"));
        }
        if (get_i64(doc, "code", &code) != 0) {
            code = 0;
        }

        if (code == GRPC_NOT_FOUND && msg != NULL
            && strstr(msg, "lease not found") != NULL)
        {
            fail(res, ACME_KV_NOT_FOUND, "etcd: %s", msg);

        } else if (code == GRPC_UNAUTHENTICATED
                   || code == GRPC_PERMISSION_DENIED
                   || resp->status == 401 || resp->status == 403
                   || (code == GRPC_INVALID_ARGUMENT && msg != NULL
                       && (strstr(msg, "user name is empty") != NULL
                           || strstr(msg, "authentication failed") != NULL)))
        {
            fail(res, ACME_KV_DENIED, "etcd: %s",
                 msg ? msg : "authentication refused");

        } else if (code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED
                   || code == GRPC_RESOURCE_EXHAUSTED
                   || code == GRPC_INTERNAL || resp->status >= 500)
        {
            fail(res, ACME_KV_UNAVAILABLE, "etcd: %s",
                 msg ? msg : "the endpoint is not available");

        } else {
            res->status = ACME_KV_ERROR;
            snprintf(res->err, sizeof(res->err), "etcd: HTTP %d%s%s",
                     resp->status, msg ? ": " : "", msg ? msg : "");
        }
        json_decref(doc);
        return;
    }

    if (!json_is_object(doc)) {
        fail(res, ACME_KV_ERROR, "etcd: an answer that is not JSON%s", NULL);
        json_decref(doc);
        return;
    }

    /* keepalive answers {"result": {...}} (one message of a stream) */
    j = json_object_get(doc, "result");
    if (op->kind == ACME_KV_LEASE_KEEPALIVE && json_is_object(j)) {
        json_incref(j);
        json_decref(doc);
        doc = j;
    }

    if (get_i64(json_object_get(doc, "header"), "revision", &res->revision)
        != 0)
    {
        fail(res, ACME_KV_ERROR, "etcd: a malformed revision%s", NULL);
        json_decref(doc);
        return;
    }

    switch (op->kind) {
    case ACME_KV_GET:
    case ACME_KV_LIST:
        if (decode_pairs(json_object_get(doc, "kvs"), !op->keys_only, res)
            != 0)
        {
            acme_kv_result_free(res);
            fail(res, ACME_KV_ERROR, "etcd: a malformed range answer%s",
                 NULL);
            break;
        }
        res->more = json_is_true(json_object_get(doc, "more"));
        if (op->kind == ACME_KV_GET && res->n_pairs == 0) {
            fail(res, ACME_KV_NOT_FOUND, "etcd: no \"%s\"", op->key);
        }
        break;

    case ACME_KV_PUT:
    case ACME_KV_DELETE:
        if (!json_is_true(json_object_get(doc, "succeeded"))) {
            decode_txn_failed(op, doc, res);
        }
        break;

    case ACME_KV_LEASE_GRANT:
    case ACME_KV_LEASE_KEEPALIVE:
        if (get_i64(doc, "ID", &res->lease) != 0
            || get_i64(doc, "TTL", &code) != 0)
        {
            fail(res, ACME_KV_ERROR, "etcd: a malformed lease answer%s",
                 NULL);
            break;
        }
        msg = json_string_value(json_object_get(doc, "error"));
        if (msg != NULL && *msg != '\0') {
            fail(res, ACME_KV_ERROR, "etcd: %s", msg);
            break;
        }
        res->ttl = (long) code;
        /* an expired lease is answered with TTL 0 (left out) */
        if (res->ttl <= 0 || res->lease == 0) {
            fail(res, op->kind == ACME_KV_LEASE_GRANT ? ACME_KV_ERROR
                                                      : ACME_KV_NOT_FOUND,
                 "etcd: the lease is gone%s", NULL);
        }
        break;

    case ACME_KV_LEASE_REVOKE:
        break;

    case ACME_KV_AUTH:
        token = json_string_value(json_object_get(doc, "token"));
        if (token == NULL || *token == '\0') {
            fail(res, ACME_KV_DENIED, "etcd: no token in the answer%s", NULL);
            break;
        }
        res->token = acme_strdup(token);
        if (res->token == NULL) {
            fail(res, ACME_KV_ERROR, "out of memory%s", NULL);
        }
        break;
    }

    json_decref(doc);
}
