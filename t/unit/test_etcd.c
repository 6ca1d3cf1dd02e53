#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acme_etcd.h"
#include "unit.h"

static json_t *
body_of(const acme_etcd_req_t *req)
{
    return json_loads(req->body, 0, NULL);
}

static acme_http_response_t
answer(int status, const char *body)
{
    acme_http_response_t  r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.body = body;
    r.body_len = strlen(body);
    return r;
}

UNIT_TEST(etcd_encode_shapes)
{
    acme_kv_op_t     op;
    acme_etcd_req_t  req;
    json_t          *b, *c;
    char             err[512], *wire;
    acme_url_t       u;

    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_LIST;
    op.key = "/acme/x";
    op.min_revision = 7;
    op.keys_only = 1;
    CHECK(acme_etcd_encode(&op, "https://etcd1:2379/", "TOK", &req, err,
                           sizeof(err)) == 0);
    CHECK_STR(req.http.url, "https://etcd1:2379/v3/kv/range");
    CHECK_STR(req.http.method, "POST");
    CHECK_STR(req.http.authorization, "TOK");
    CHECK(acme_url_parse(req.http.url, &u, err, sizeof(err)) == 0);
    wire = acme_http_serialize_conn(&req.http, &u, NULL, 1, NULL);
    CHECK(wire != NULL && strstr(wire, "\r\nAuthorization: TOK\r\n") != NULL
          && strstr(wire, "Content-Type: application/json\r\n") != NULL);
    free(wire);
    acme_url_free(&u);
    b = body_of(&req);
    /* "/acme/x" and its prefix end "/acme/y" */
    CHECK_STR(json_string_value(json_object_get(b, "key")), "L2FjbWUveA==");
    CHECK_STR(json_string_value(json_object_get(b, "range_end")), "L2FjbWUveQ==");
    CHECK_STR(json_string_value(json_object_get(b, "min_mod_revision")), "7");
    CHECK(json_is_true(json_object_get(b, "keys_only")));
    json_decref(b);
    acme_etcd_req_free(&req);

    /* a fenced put-if-absent with a lease */
    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_PUT;
    op.key = "k";
    op.value = "v";
    op.value_len = 1;
    op.cond = ACME_KV_IF_ABSENT;
    op.lease = 42;
    op.fence_key = "lock";
    op.fence_lease = 42;
    CHECK(acme_etcd_encode(&op, "http://127.0.0.1:2379", NULL, &req, err,
                           sizeof(err)) == 0);
    CHECK_STR(req.http.url, "http://127.0.0.1:2379/v3/kv/txn");
    CHECK(req.http.authorization == NULL);
    b = body_of(&req);
    c = json_object_get(b, "compare");
    CHECK(json_array_size(c) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0), "target")), "CREATE");
    CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0), "create_revision")), "0");
    CHECK_STR(json_string_value(json_object_get(json_array_get(c, 1), "target")), "LEASE");
    CHECK_STR(json_string_value(json_object_get(json_array_get(c, 1), "lease")), "42");
    c = json_object_get(json_array_get(json_object_get(b, "success"), 0), "request_put");
    CHECK_STR(json_string_value(json_object_get(c, "value")), "dg==");
    CHECK_STR(json_string_value(json_object_get(c, "lease")), "42");
    CHECK(json_array_size(json_object_get(b, "failure")) == 2);
    json_decref(b);
    acme_etcd_req_free(&req);

    /* refused operations */
    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_GET;
    CHECK(acme_etcd_encode(&op, "http://e:1", NULL, &req, err, sizeof(err)) == -1);
    op.key = "k";
    CHECK(acme_etcd_encode(&op, "etcd1:2379", NULL, &req, err, sizeof(err)) == -1);
    CHECK(strstr(err, "not http:// or https://") != NULL);
    op.kind = ACME_KV_LEASE_GRANT;
    CHECK(acme_etcd_encode(&op, "http://e:1", NULL, &req, err, sizeof(err)) == -1);
}

UNIT_TEST(etcd_decode_answers)
{
    acme_kv_op_t          op;
    acme_kv_result_t      res;
    acme_http_response_t  r;

    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_GET;
    op.key = "/acme/x";

    r = answer(200, "{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"L2FjbWUveA==\","
               "\"create_revision\":\"2\",\"mod_revision\":\"5\",\"version\":\"2\","
               "\"value\":\"aGk=\",\"lease\":\"77\"}],\"count\":\"1\"}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_OK && res.revision == 9 && res.n_pairs == 1);
    CHECK_STR(res.pairs[0].key, "/acme/x");
    CHECK(res.pairs[0].value_len == 2 && memcmp(res.pairs[0].value, "hi", 2) == 0);
    CHECK(res.pairs[0].mod_revision == 5 && res.pairs[0].create_revision == 2
          && res.pairs[0].lease == 77);
    acme_kv_result_free(&res);

    r = answer(200, "{\"header\":{\"revision\":\"9\"}}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_NOT_FOUND && res.n_pairs == 0);
    acme_kv_result_free(&res);

    /* a put that failed: the key exists (conflict) ... */
    op.kind = ACME_KV_PUT;
    op.cond = ACME_KV_IF_ABSENT;
    op.fence_key = "lock";
    op.fence_lease = 77;
    r = answer(200, "{\"header\":{\"revision\":\"10\"},\"responses\":["
               "{\"response_range\":{\"kvs\":[{\"key\":\"L2FjbWUveA==\",\"mod_revision\":\"5\",\"value\":\"aGk=\"}]}},"
               "{\"response_range\":{\"kvs\":[{\"key\":\"bG9jaw==\",\"lease\":\"77\"}]}}]}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_CONFLICT && res.n_pairs == 1
          && res.pairs[0].mod_revision == 5);
    CHECK(strstr(res.err, "exists already") != NULL);
    acme_kv_result_free(&res);

    /* ... or the lock is another lease's now (fenced) */
    r = answer(200, "{\"header\":{\"revision\":\"10\"},\"responses\":["
               "{\"response_range\":{}},"
               "{\"response_range\":{\"kvs\":[{\"key\":\"bG9jaw==\",\"lease\":\"78\"}]}}]}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_FENCED && strstr(res.err, "\"lock\"") != NULL);
    acme_kv_result_free(&res);

    r = answer(200, "{\"header\":{\"revision\":\"11\"},\"succeeded\":true,"
               "\"responses\":[{\"response_put\":{}}]}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_OK && res.revision == 11);
    acme_kv_result_free(&res);

    /* leases */
    memset(&op, 0, sizeof(op));
    op.kind = ACME_KV_LEASE_KEEPALIVE;
    op.lease = 5;
    r = answer(200, "{\"result\":{\"header\":{\"revision\":\"3\"},\"ID\":\"5\",\"TTL\":\"60\"}}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_OK && res.ttl == 60 && res.lease == 5);
    acme_kv_result_free(&res);
    r = answer(200, "{\"result\":{\"header\":{\"revision\":\"3\"},\"ID\":\"5\"}}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_NOT_FOUND);
    acme_kv_result_free(&res);
    op.kind = ACME_KV_LEASE_REVOKE;
    r = answer(404, "{\"error\":\"etcdserver: requested lease not found\","
               "\"message\":\"etcdserver: requested lease not found\",\"code\":5}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_NOT_FOUND);
    acme_kv_result_free(&res);

    /* endpoints that cannot answer, refusals, garbage */
    r = answer(503, "{\"error\":\"etcdserver: no leader\",\"code\":14}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_UNAVAILABLE && strstr(res.err, "no leader") != NULL);
    acme_kv_result_free(&res);
    acme_etcd_decode(&op, NULL, "connect() to 127.0.0.1:1 failed", &res);
    CHECK(res.status == ACME_KV_UNAVAILABLE && strstr(res.err, "connect()") != NULL);
    acme_kv_result_free(&res);
    r = answer(401, "{\"error\":\"etcdserver: invalid auth token\",\"code\":16}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_DENIED);
    acme_kv_result_free(&res);
    op.kind = ACME_KV_GET;
    op.key = "k";
    r = answer(200, "<html>");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_ERROR);
    acme_kv_result_free(&res);
    r = answer(200, "{\"header\":{\"revision\":\"x\"}}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_ERROR);
    acme_kv_result_free(&res);
    r = answer(200, "{\"header\":{},\"kvs\":[{\"key\":\"!!\"}]}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_ERROR);
    acme_kv_result_free(&res);

    op.kind = ACME_KV_AUTH;
    r = answer(200, "{\"header\":{},\"token\":\"abc.1\"}");
    acme_etcd_decode(&op, &r, NULL, &res);
    CHECK(res.status == ACME_KV_OK);
    CHECK_STR(res.token, "abc.1");
    acme_kv_result_free(&res);
}

UNIT_TEST(kv_prefix_end)
{
    unsigned char  *e;
    size_t          n;

    CHECK(acme_kv_prefix_end("/a/", &e, &n) == 0 && n == 3 && memcmp(e, "/a0", 3) == 0);
    free(e);
    CHECK(acme_kv_prefix_end("a\xff", &e, &n) == 0 && n == 1 && e[0] == 'b');
    free(e);
    CHECK(acme_kv_prefix_end("\xff", &e, &n) == -1);
}
