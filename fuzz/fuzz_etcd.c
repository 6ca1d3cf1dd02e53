/*
 * etcd's answers as the shared store reads them (acme_etcd_decode): a
 * store node is trusted less than a file of our own, and a proxy or a
 * broken member may answer anything.  Input: a control byte (bits 0-2:
 * the operation, 0-7 as acme_kv_kind_t; bit 3: a fenced put; bit 4: HTTP
 * 404 instead of 200; bit 5: 503), then the answer's body.  Properties: the
 * status is one of acme_kv_status_t, every pair has a key, a non-OK result
 * says why, and only GET / LIST / a failed PUT or DELETE carry pairs.
 */
#include <stdio.h>

#include "acme_etcd.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acme_kv_op_t          op;
    acme_kv_result_t      res;
    acme_http_response_t  r;
    char                 *body;
    size_t                i;

    if (size < 1) {
        return 0;
    }

    memset(&op, 0, sizeof(op));
    op.kind = (acme_kv_kind_t) (data[0] & 7);
    op.key = "/acme/certs/a";
    op.value = "v";
    op.value_len = 1;
    op.lease = 7;
    op.ttl = 60;
    if (data[0] & 8) {
        op.cond = ACME_KV_IF_ABSENT;
        op.fence_key = "/acme/locks/a";
        op.fence_lease = 7;
    }

    body = fuzz_cstr(data + 1, size - 1);
    memset(&r, 0, sizeof(r));
    r.status = (data[0] & 16) ? 404 : (data[0] & 32) ? 503 : 200;
    r.body = body;
    r.body_len = size - 1;

    acme_etcd_decode(&op, &r, NULL, &res);

    FUZZ_ASSERT(res.status <= ACME_KV_ERROR);
    FUZZ_ASSERT(res.status == ACME_KV_OK || res.err[0] != '\0');
    FUZZ_ASSERT(memchr(res.err, '\0', sizeof(res.err)) != NULL);
    for (i = 0; i < res.n_pairs; i++) {
        FUZZ_ASSERT(res.pairs[i].key != NULL);
    }
    FUZZ_ASSERT(res.n_pairs == 0 || op.kind == ACME_KV_GET
                || op.kind == ACME_KV_LIST || res.status != ACME_KV_OK);

    acme_kv_result_free(&res);
    free(body);
    return 0;
}
