/*
 * The inventory (common/core/acme_inventory.h): every certificate file a
 * TLS server{} loads with ssl_certificate (its own or inherited from
 * http{}), read once per configuration load in postconfiguration (the
 * master; the workers inherit it with the cycle), listed by the status
 * after the managed certificates with "managed": false; and the server
 * names that use each managed certificate ("used_by").
 *
 * Not listed: a server{} with acme_certificate (its ssl_certificate is the
 * placeholder or the bridge, which the managed entry shows), "data:"
 * certificates and file names with variables (known only per handshake),
 * servers that do not listen with ssl.
 */

#include "ngx_acme.h"
#include "acme_inventory.h"
#include "acme_inventory_file.h"


struct ngx_acme_inventory_s {
    acme_inventory_t          inv;
    ngx_array_t              *used_by;        /* per amcf->certs index:
                                                 char *, each name once,
                                                 sorted */
    ngx_uint_t                n_certs;
};


static ngx_int_t ngx_acme_inventory_users(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf, ngx_array_t *users);
static ngx_int_t ngx_acme_inventory_push(ngx_array_t *a, char *name);
static void ngx_acme_inventory_cleanup(void *data);


ngx_int_t
ngx_acme_inventory_init(ngx_conf_t *cf, ngx_acme_main_conf_t *amcf)
{
    char                        *path, **u;
    ngx_str_t                    name, *files;
    ngx_uint_t                   s, i, k, idx;
    ngx_array_t                  users;
    ngx_acme_cert_t            **certs;
    ngx_pool_cleanup_t          *cln;
    ngx_acme_srv_conf_t         *head, *ascf;
    ngx_acme_inventory_t        *inv;
    ngx_http_ssl_srv_conf_t     *sscf;
    ngx_http_core_srv_conf_t   **cscfp, *cscf;
    ngx_http_core_main_conf_t   *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    inv = ngx_pcalloc(cf->pool, sizeof(ngx_acme_inventory_t));
    if (inv == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_acme_inventory_cleanup;
    cln->data = inv;

    inv->n_certs = amcf->certs.nelts;
    inv->used_by = ngx_pcalloc(cf->pool,
                               (inv->n_certs + 1) * sizeof(ngx_array_t));
    if (inv->used_by == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < inv->n_certs; i++) {
        if (ngx_array_init(&inv->used_by[i], cf->pool, 2, sizeof(char *))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_array_init(&users, cf->temp_pool, 4, sizeof(char *)) != NGX_OK) {
        return NGX_ERROR;
    }

    certs = amcf->certs.elts;
    cscfp = cmcf->servers.elts;

    for (s = 0; s < cmcf->servers.nelts; s++) {

        cscf = cscfp[s];
        head = cscf->ctx->srv_conf[ngx_http_acme_module.ctx_index];
        sscf = cscf->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

        users.nelts = 0;

        if (ngx_acme_inventory_users(cf, cscf, &users) != NGX_OK) {
            return NGX_ERROR;
        }

        u = users.elts;

        if (head->issuer_name.len) {

            /* managed: its own ssl_certificate is the bridge, if any */

            for (ascf = head; ascf; ascf = ascf->next) {

                for (idx = 0; idx < inv->n_certs; idx++) {
                    if (certs[idx] == ascf->cert) {
                        break;
                    }
                }

                if (idx == inv->n_certs) {
                    continue;
                }

                for (k = 0; k < users.nelts; k++) {
                    if (ngx_acme_inventory_push(&inv->used_by[idx], u[k])
                        != NGX_OK)
                    {
                        return NGX_ERROR;
                    }
                }
            }

            continue;
        }

        if (sscf->certificates == NULL
            || sscf->certificates == NGX_CONF_UNSET_PTR
            || sscf->certificates->nelts == 0)
        {
            continue;
        }

        if (!ngx_acme_server_listens_ssl(cmcf, cscf) && !sscf->enable) {
            continue;
        }

        files = sscf->certificates->elts;

        for (i = 0; i < sscf->certificates->nelts; i++) {

            name = files[i];

            if ((name.len > 5 && ngx_strncmp(name.data, "data:", 5) == 0)
                || ngx_strlchr(name.data, name.data + name.len, '$') != NULL)
            {
                continue;
            }

            if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
                return NGX_ERROR;
            }

            path = (char *) ngx_acme_cstr(cf->temp_pool, &name);
            if (path == NULL) {
                return NGX_ERROR;
            }

            for (k = 0; k < users.nelts; k++) {
                if (acme_inventory_add_file(&inv->inv, path, u[k]) != 0) {
                    return NGX_ERROR;
                }
            }
        }
    }

    for (i = 0; i < inv->inv.n; i++) {
        if (inv->inv.certs[i].error) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "acme: the status lists \"%s\" without its "
                          "details: %s", inv->inv.certs[i].file,
                          inv->inv.certs[i].error);
        }
    }

    amcf->inventory = inv;

    return NGX_OK;
}


/*
 * What a server{} is called in "used_by": each of its server_name (a
 * regular expression with its "~"), or "FILE:LINE" of the block when it
 * has none.
 */
static ngx_int_t
ngx_acme_inventory_users(ngx_conf_t *cf, ngx_http_core_srv_conf_t *cscf,
    ngx_array_t *users)
{
    char                    *s;
    u_char                  *p;
    size_t                   len;
    ngx_uint_t               i;
    ngx_http_server_name_t  *sn;

    sn = cscf->server_names.elts;

    for (i = 0; i < cscf->server_names.nelts; i++) {

        if (sn[i].name.len == 0) {
            continue;
        }

        s = (char *) ngx_acme_cstr(cf->pool, &sn[i].name);
        if (s == NULL || ngx_acme_inventory_push(users, s) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (users->nelts) {
        return NGX_OK;
    }

    len = ngx_strlen(cscf->file_name) + 1 + NGX_INT_T_LEN + 1;

    s = ngx_pnalloc(cf->pool, len);
    if (s == NULL) {
        return NGX_ERROR;
    }

    p = ngx_snprintf((u_char *) s, len - 1, "%s:%ui", cscf->file_name,
                     cscf->line);
    *p = '\0';

    return ngx_acme_inventory_push(users, s);
}


/* Inserts name in order (as acme_inventory_use) unless it is there. */
static ngx_int_t
ngx_acme_inventory_push(ngx_array_t *a, char *name)
{
    char        **v;
    ngx_int_t     cmp;
    ngx_uint_t    i;

    v = a->elts;

    for (i = 0; i < a->nelts; i++) {
        cmp = ngx_strcmp(v[i], name);

        if (cmp == 0) {
            return NGX_OK;
        }

        if (cmp > 0) {
            break;
        }
    }

    if (ngx_array_push(a) == NULL) {
        return NGX_ERROR;
    }

    v = a->elts;
    ngx_memmove(&v[i + 1], &v[i], (a->nelts - 1 - i) * sizeof(char *));
    v[i] = name;

    return NGX_OK;
}


static void
ngx_acme_inventory_cleanup(void *data)
{
    ngx_acme_inventory_t  *inv = data;

    acme_inventory_free(&inv->inv);
}


/*
 * The status entries (ngx_acme_status.c): list[0..n) are the managed
 * certificates in amcf->certs order, given their used_by and sans (the
 * configured names: the served certificate is not at hand here); the
 * inventory's entries follow.  A new array from r->pool (*total entries),
 * or NULL.
 */
acme_status_cert_t *
ngx_acme_inventory_status(ngx_http_request_t *r, ngx_acme_main_conf_t *amcf,
    acme_status_cert_t *list, ngx_uint_t n, ngx_uint_t *total, time_t now)
{
    ngx_uint_t             i, m;
    acme_status_cert_t    *all;
    ngx_acme_inventory_t  *inv;

    inv = amcf->inventory;
    m = (inv != NULL) ? inv->inv.n : 0;

    all = ngx_pcalloc(r->pool, (n + m + 1) * sizeof(acme_status_cert_t));
    if (all == NULL) {
        return NULL;
    }

    if (n) {
        ngx_memcpy(all, list, n * sizeof(acme_status_cert_t));
    }

    for (i = 0; i < n; i++) {
        all[i].sans = all[i].names;
        all[i].n_sans = all[i].n_names;

        if (inv != NULL && i < inv->n_certs) {
            all[i].used_by = inv->used_by[i].elts;
            all[i].n_used_by = inv->used_by[i].nelts;
        }
    }

    for (i = 0; i < m; i++) {
        acme_inventory_status(&inv->inv.certs[i], (long long) now,
                              &all[n + i]);

        /* the http{}-level acme_expiry_warning: no issuer's own applies */
        all[n + i].warn_window = amcf->expiry_warning;
    }

    *total = n + m;

    return all;
}
