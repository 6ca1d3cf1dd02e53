/*
 * A blocking etcd client with endpoint failover (acme_kv_client.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "acme_etcd.h"
#include "acme_kv_client.h"
#include "acme_util.h"

struct acme_kv_client_s {
    acme_kv_client_conf_t   conf;
    acme_transport_t       *t;
    size_t                  current;    /* endpoint tried first */
    char                   *token;
    /* etcd refused user= / password_file=: not asked again (a bcrypt
     * check and two lines of its log each time) before denied_until,
     * denied_err answered meanwhile */
    time_t                  denied_until;
    char                    denied_err[256];
};

#define KV_DENIED_PAUSE  10    /* s */


static void
set_err(acme_kv_result_t *res, const char *fmt, ...)
{
    va_list  ap;
    char     buf[sizeof(res->err)];

    /* through buf: the arguments may be res->err itself */
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    memcpy(res->err, buf, sizeof(buf));
}


acme_kv_client_t *
acme_kv_client_new(const acme_kv_client_conf_t *conf)
{
    acme_kv_client_t  *c;

    if (conf == NULL || conf->n_endpoints == 0) {
        return NULL;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->conf = *conf;
    c->t = acme_transport_new(&c->conf.tls);
    if (c->t == NULL) {
        free(c);
        return NULL;
    }
    return c;
}


void
acme_kv_client_free(acme_kv_client_t *c)
{
    if (c == NULL) {
        return;
    }
    acme_transport_free(c->t);
    if (c->token != NULL) {
        OPENSSL_cleanse(c->token, strlen(c->token));
        free(c->token);
    }
    free(c);
}


const char *
acme_kv_client_endpoint(const acme_kv_client_t *c)
{
    return c->conf.endpoints[c->current];
}


/* one exchange with one endpoint; 1 when the answer may be lost (the
 * request may have been carried out) */
static int
exchange(acme_kv_client_t *c, const char *endpoint, const acme_kv_op_t *op,
    acme_kv_result_t *res)
{
    acme_etcd_req_t      req;
    acme_http_parser_t  *p;
    char                 err[ACME_ERRLEN];

    if (acme_etcd_encode(op, endpoint, c->token, &req, err, sizeof(err))
        != 0)
    {
        memset(res, 0, sizeof(*res));
        res->status = ACME_KV_ERROR;
        set_err(res, "%s", err);
        return 0;
    }

    p = acme_transport_request(c->t, &req.http, err, sizeof(err));
    acme_etcd_req_free(&req);

    if (p == NULL) {
        acme_etcd_decode(op, NULL, err, res);
        return 1;
    }
    acme_etcd_decode(op, acme_http_parser_response(p), NULL, res);
    acme_http_parser_free(p);
    return 0;
}


static int
authenticate(acme_kv_client_t *c, const char *endpoint, acme_kv_result_t *res)
{
    acme_kv_op_t  auth;

    memset(&auth, 0, sizeof(auth));
    auth.kind = ACME_KV_AUTH;
    auth.user = c->conf.user;
    auth.password = c->conf.password;

    if (c->token != NULL) {
        OPENSSL_cleanse(c->token, strlen(c->token));
        free(c->token);
        c->token = NULL;
    }

    exchange(c, endpoint, &auth, res);
    if (res->status == ACME_KV_DENIED) {
        c->denied_until = time(NULL) + KV_DENIED_PAUSE;
        snprintf(c->denied_err, sizeof(c->denied_err), "%s", res->err);
    }
    if (res->status != ACME_KV_OK) {
        return -1;
    }
    c->token = res->token;
    res->token = NULL;
    acme_kv_result_free(res);
    return 0;
}


/* the key holds what op wrote: a lost answer to a write that happened */
static int
wrote_it(const acme_kv_op_t *op, const acme_kv_result_t *res)
{
    const acme_kv_pair_t  *p;

    if (op->kind != ACME_KV_PUT || res->n_pairs != 1) {
        return 0;
    }
    p = &res->pairs[0];
    return p->value != NULL && p->value_len == op->value_len
           && (op->value_len == 0
               || memcmp(p->value, op->value, op->value_len) == 0)
           && p->lease == op->lease;
}


acme_kv_status_t
acme_kv_client_do(acme_kv_client_t *c, const acme_kv_op_t *op,
    acme_kv_result_t *res)
{
    size_t       tried, i;
    const char  *endpoint;
    int          lost = 0, authed = 0;

    memset(res, 0, sizeof(*res));

    for (tried = 0; tried < c->conf.n_endpoints; tried++) {
        i = (c->current + tried) % c->conf.n_endpoints;
        endpoint = c->conf.endpoints[i];

        acme_kv_result_free(res);

        if (c->conf.user != NULL && c->token == NULL) {
            if (c->denied_until > time(NULL)) {
                res->status = ACME_KV_DENIED;
                set_err(res, "%s", c->denied_err);
                break;
            }
            if (authenticate(c, endpoint, res) != 0) {
                if (res->status == ACME_KV_UNAVAILABLE) {
                    goto next;
                }
                break;
            }
            authed = 1;
        }

        lost |= exchange(c, endpoint, op, res);

        if (res->status == ACME_KV_DENIED && c->conf.user != NULL
            && !authed)
        {
            /* the token expired (etcd's simple tokens last 5 minutes) */
            acme_kv_result_free(res);
            if (authenticate(c, endpoint, res) != 0) {
                break;
            }
            authed = 1;
            lost |= exchange(c, endpoint, op, res);
        }

        if (res->status != ACME_KV_UNAVAILABLE) {
            c->current = i;
            if (res->status == ACME_KV_CONFLICT && lost && wrote_it(op, res)) {
                acme_kv_result_free(res);
                res->status = ACME_KV_OK;
            }
            break;
        }

    next:

        if (c->conf.n_endpoints > 1) {
            /* the next endpoint's answer replaces this one's */
            set_err(res, "%s: %s", endpoint, res->err);
        }
    }

    if (res->status != ACME_KV_OK && res->err[0] != '\0'
        && strstr(res->err, "://") == NULL)
    {
        set_err(res, "%s: %s", c->conf.endpoints[c->current], res->err);
    }

    return res->status;
}
