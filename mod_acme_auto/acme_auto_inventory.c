/*
 * The inventory (common/core/acme_inventory.h): every SSLCertificateFile of
 * a vhost without AcmeCertificate, read once per configuration load in the
 * parent (mod_ssl's ssl_add_cert_files hook, which mod_ssl's post_config
 * runs for every SSL vhost with its certificate files), inherited by the
 * children, listed by the status after the managed certificates with
 * "managed": false; and the vhosts that use each managed certificate
 * ("used_by").  A vhost with AcmeCertificate is not read: its own
 * SSLCertificateFile is the bridge (the managed entry shows it) or no longer
 * served.  A vhost is named "ServerName:port".
 */
#include <string.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_main.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_inventory.h"
#include "acme_inventory_file.h"
#include "acme_status.h"

APLOG_USE_MODULE(acme_auto);

typedef struct {
    acme_auto_cert_t    *cert;
    apr_array_header_t  *used_by;       /* const char *, each once, sorted */
} managed_use_t;

typedef struct {
    acme_inventory_t     inv;
    apr_array_header_t  *managed;       /* managed_use_t */
} inventory_t;

/* this configuration's, from pconf (a restart starts over) */
static inventory_t *inventory;

static apr_status_t
inventory_cleanup(void *data)
{
    inventory_t *inv = data;

    acme_inventory_free(&inv->inv);
    if (inventory == inv) {
        inventory = NULL;
    }
    return APR_SUCCESS;
}

static inventory_t *
inventory_get(apr_pool_t *p)
{
    if (inventory == NULL) {
        inventory = apr_pcalloc(p, sizeof(*inventory));
        inventory->managed = apr_array_make(p, 4, sizeof(managed_use_t));
        apr_pool_cleanup_register(p, inventory, inventory_cleanup,
                                  apr_pool_cleanup_null);
    }
    return inventory;
}

static const char *
vhost_name(server_rec *s, apr_pool_t *p)
{
    apr_port_t port = s->port;

    if (port == 0 && s->addrs != NULL) {
        port = s->addrs->host_port;
    }
    if (port == 0) {
        return apr_pstrdup(p, s->server_hostname ? s->server_hostname : "");
    }
    return apr_psprintf(p, "%s:%u", s->server_hostname
                                    ? s->server_hostname : "",
                        (unsigned) port);
}

static void
managed_use(inventory_t *inv, apr_pool_t *p, acme_auto_cert_t *c,
    const char *name)
{
    managed_use_t *m = NULL;
    int            i, cmp;

    for (i = 0; i < inv->managed->nelts; i++) {
        if (APR_ARRAY_IDX(inv->managed, i, managed_use_t).cert == c) {
            m = &APR_ARRAY_IDX(inv->managed, i, managed_use_t);
            break;
        }
    }
    if (m == NULL) {
        m = apr_array_push(inv->managed);
        m->cert = c;
        m->used_by = apr_array_make(p, 2, sizeof(const char *));
    }
    /* sorted, as acme_inventory_use keeps the files' users */
    for (i = 0; i < m->used_by->nelts; i++) {
        cmp = strcmp(APR_ARRAY_IDX(m->used_by, i, const char *), name);
        if (cmp == 0) {
            return;
        }
        if (cmp > 0) {
            break;
        }
    }
    (void) apr_array_push(m->used_by);
    memmove(&APR_ARRAY_IDX(m->used_by, i + 1, const char *),
            &APR_ARRAY_IDX(m->used_by, i, const char *),
            (size_t) (m->used_by->nelts - 1 - i) * sizeof(const char *));
    APR_ARRAY_IDX(m->used_by, i, const char *) = name;
}

void
acme_auto_inventory_note(server_rec *s, apr_pool_t *p,
    apr_array_header_t *cert_files)
{
    apr_array_header_t *all = acme_auto_certs_for_server(s);
    inventory_t        *inv = inventory_get(p);
    const char         *name = vhost_name(s, p), *file;
    size_t              before;
    int                 i;

    if (all != NULL && all->nelts > 0) {
        for (i = 0; i < all->nelts; i++) {
            managed_use(inv, p, APR_ARRAY_IDX(all, i, acme_auto_cert_t *),
                        name);
        }
        return;
    }
    for (i = 0; i < cert_files->nelts; i++) {
        file = APR_ARRAY_IDX(cert_files, i, const char *);
        if (file == NULL) {
            continue;
        }
        before = inv->inv.n;
        if (acme_inventory_add_file(&inv->inv, file, name) != 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: "
                         "%s: out of memory listing %s for the status",
                         name, file);
            continue;
        }
        if (inv->inv.n > before && inv->inv.certs[before].error != NULL) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "mod_acme_auto: "
                         "the status lists %s without its details: %s",
                         file, inv->inv.certs[before].error);
        }
    }
}

acme_status_cert_t *
acme_auto_inventory_status(apr_pool_t *p, acme_status_cert_t *certs, int n,
    int *total, long long now)
{
    acme_status_cert_t *out;
    inventory_t        *inv = inventory;
    managed_use_t      *m;
    acme_auto_cert_t   *c;
    int                 i, k, extra = inv ? (int) inv->inv.n : 0;
    acme_auto_srv_conf_t *sc = ap_get_module_config(
                                   ap_server_conf->module_config,
                                   &acme_auto_module);

    out = apr_pcalloc(p, sizeof(*out) * (size_t) (n + extra + 1));
    if (n > 0) {
        memcpy(out, certs, sizeof(*out) * (size_t) n);
    }
    for (i = 0; i < n; i++) {
        /* the configured names: the served certificate is not at hand */
        out[i].sans = out[i].names;
        out[i].n_sans = out[i].n_names;
        if (inv == NULL || acme_auto_g.certs == NULL
            || i >= acme_auto_g.certs->nelts)
        {
            continue;
        }
        c = APR_ARRAY_IDX(acme_auto_g.certs, i, acme_auto_cert_t *);
        for (k = 0; k < inv->managed->nelts; k++) {
            m = &APR_ARRAY_IDX(inv->managed, k, managed_use_t);
            if (m->cert == c) {
                out[i].used_by = (const char *const *) m->used_by->elts;
                out[i].n_used_by = (size_t) m->used_by->nelts;
                break;
            }
        }
    }
    for (i = 0; i < extra; i++) {
        acme_inventory_status(&inv->inv.certs[i], now, &out[n + i]);
        /* the server-wide AcmeExpiryWarning: no issuer's own applies */
        out[n + i].warn_window = sc->expiry_warning;
    }
    *total = n + extra;
    return out;
}
