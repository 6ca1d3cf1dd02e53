/*
 * A blocking client of an etcd cluster (acme_etcd.h) for threads that may
 * wait: Apache's job threads, tools and tests.  Never on an event loop
 * (nginx sends the same requests from acme_etcd_encode on its own
 * non-blocking client).
 */
#ifndef ACME_KV_CLIENT_H
#define ACME_KV_CLIENT_H

#include <stddef.h>
#include "acme_kv.h"
#include "acme_transport.h"

typedef struct {
    const char *const   *endpoints;     /* "https://etcd1:2379", ... */
    size_t               n_endpoints;
    const char          *user;          /* NULL: no authentication */
    const char          *password;
    acme_transport_opts_t tls;          /* ca_file, verify, timeouts */
} acme_kv_client_conf_t;

typedef struct acme_kv_client_s acme_kv_client_t;

/* conf is copied (its strings must outlive the client); NULL when memory
 * runs out or there is no endpoint. */
acme_kv_client_t *acme_kv_client_new(const acme_kv_client_conf_t *conf);
void acme_kv_client_free(acme_kv_client_t *c);

/*
 * Runs op, moving to the next endpoint when one is UNAVAILABLE (down,
 * no leader, timed out), each endpoint tried at most once per call; the
 * endpoint that answered is tried first next time.  With a user, a DENIED
 * answer (no or an expired token) authenticates and runs op once more.
 * A PUT whose answer was lost and that is CONFLICT when sent again, with
 * the key now holding the value op wrote (same value, same lease), is OK:
 * the first try wrote it.  res as by acme_etcd_decode, with err naming
 * the endpoint; free with acme_kv_result_free.  Returns res->status.
 */
acme_kv_status_t acme_kv_client_do(acme_kv_client_t *c,
    const acme_kv_op_t *op, acme_kv_result_t *res);

/* The endpoint the next call starts with. */
const char *acme_kv_client_endpoint(const acme_kv_client_t *c);

#endif
