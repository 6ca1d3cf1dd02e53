/*
 * The shared store's operations and results (acme_kv.h).
 */
#include <stdlib.h>
#include <string.h>

#include "acme_kv.h"


void
acme_kv_result_free(acme_kv_result_t *r)
{
    size_t  i;

    if (r == NULL) {
        return;
    }

    for (i = 0; i < r->n_pairs; i++) {
        free(r->pairs[i].key);
        free(r->pairs[i].value);
    }
    free(r->pairs);
    free(r->token);
    memset(r, 0, sizeof(*r));
}


const char *
acme_kv_status_name(acme_kv_status_t s)
{
    switch (s) {
    case ACME_KV_OK:
        return "ok";
    case ACME_KV_NOT_FOUND:
        return "not found";
    case ACME_KV_CONFLICT:
        return "conflict";
    case ACME_KV_FENCED:
        return "fenced";
    case ACME_KV_DENIED:
        return "denied";
    case ACME_KV_UNAVAILABLE:
        return "unavailable";
    case ACME_KV_ERROR:
        break;
    }
    return "error";
}


int
acme_kv_prefix_end(const char *prefix, unsigned char **end, size_t *end_len)
{
    size_t          n;
    unsigned char  *e;

    *end = NULL;
    *end_len = 0;

    n = strlen(prefix);
    while (n > 0 && (unsigned char) prefix[n - 1] == 0xff) {
        n--;
    }
    if (n == 0) {
        return -1;
    }

    e = malloc(n);
    if (e == NULL) {
        return -1;
    }
    memcpy(e, prefix, n);
    e[n - 1]++;

    *end = e;
    *end_len = n;
    return 0;
}
