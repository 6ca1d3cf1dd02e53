/*
 * etcd v3 as a shared store (acme_kv.h), spoken through etcd's HTTP/JSON
 * gateway (etcd 3.4: POST /v3/kv/range, /v3/kv/txn, /v3/lease/grant,
 * /v3/lease/keepalive, /v3/lease/revoke, /v3/auth/authenticate), sans
 * I/O: acme_etcd_encode turns an operation into an HTTP request for one
 * endpoint, the host's transport sends it (nginx: its non-blocking client;
 * Apache and tools: acme_transport.h), acme_etcd_decode turns the answer
 * into an acme_kv_result_t.
 *
 * Keys and values travel base64-encoded (the gateway's encoding of the
 * protobuf bytes fields); 64-bit numbers as JSON strings; fields equal to
 * their zero value are left out of answers (a txn that failed has no
 * "succeeded").
 *
 * Writes are transactions (/v3/kv/txn), so that one shape carries every
 * condition: IF_ABSENT compares the key's create_revision with 0,
 * IF_REVISION its mod_revision, a fence compares fence_key's lease with
 * fence_lease (a key that does not exist has lease 0 and create_revision
 * 0, so a vanished lock fails the fence).  The failure branch reads the
 * key and the fence key back, which tells CONFLICT from FENCED and gives
 * the key as it is now.
 */
#ifndef ACME_ETCD_H
#define ACME_ETCD_H

#include <stddef.h>
#include "acme_http.h"
#include "acme_kv.h"

typedef struct {
    acme_http_request_t  http;      /* what the transport sends; its
                                       strings point into this struct */
    char                *url;
    char                *body;
} acme_etcd_req_t;

/*
 * The request for op at endpoint ("http://127.0.0.1:2379" or
 * "https://etcd1.example:2379", no path), with token (from ACME_KV_AUTH;
 * NULL: none) as the Authorization header.  0, or -1 with err (a bad
 * operation: no key, ttl < 1, ...).  Free with acme_etcd_req_free.
 */
int acme_etcd_encode(const acme_kv_op_t *op, const char *endpoint,
    const char *token, acme_etcd_req_t *req, char *err, size_t errlen);
void acme_etcd_req_free(acme_etcd_req_t *req);

/*
 * The result of op from etcd's answer resp (NULL: no answer at all, e.g.
 * the connection failed: UNAVAILABLE with why, if given, in res->err).
 * HTTP 5xx and gRPC codes Unavailable (14), DeadlineExceeded (4),
 * ResourceExhausted (8) and Internal (13) are UNAVAILABLE: worth another
 * endpoint; Unauthenticated (16), PermissionDenied (7) and etcd's
 * InvalidArgument (3) "user name is empty" (no token where auth is on) /
 * "authentication failed" (a wrong password) are DENIED (an expired
 * token: authenticate again); "lease not found" is
 * NOT_FOUND.  res is zeroed first; free with acme_kv_result_free.
 */
void acme_etcd_decode(const acme_kv_op_t *op,
    const acme_http_response_t *resp, const char *why,
    acme_kv_result_t *res);

#endif
