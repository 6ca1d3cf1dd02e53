/*
 * The inventory of certificates loaded from files (acme_inventory.h).
 */
#include <stdlib.h>
#include <string.h>

#include "acme_cert.h"
#include "acme_inventory.h"
#include "acme_status.h"
#include "acme_util.h"

int
acme_inventory_get(acme_inventory_t *inv, const char *file,
    acme_inventory_cert_t **out)
{
    acme_inventory_cert_t  *certs, *c;
    size_t                  i, cap;

    *out = NULL;

    for (i = 0; i < inv->n; i++) {
        if (strcmp(inv->certs[i].file, file) == 0) {
            *out = &inv->certs[i];
            return 0;
        }
    }

    if (inv->n == inv->cap) {
        cap = inv->cap ? inv->cap * 2 : 8;
        certs = realloc(inv->certs, cap * sizeof(*certs));
        if (certs == NULL) {
            return -1;
        }
        inv->certs = certs;
        inv->cap = cap;
    }

    c = &inv->certs[inv->n];
    memset(c, 0, sizeof(*c));
    c->file = acme_strdup(file);
    if (c->file == NULL) {
        return -1;
    }
    inv->n++;
    *out = c;
    return 1;
}

int
acme_inventory_use(acme_inventory_cert_t *c, const char *user)
{
    char   **u, *s;
    size_t   i;
    int      cmp;

    if (user == NULL) {
        return 0;
    }
    /* sorted, so the document does not depend on the order in which a
     * server walks its blocks */
    for (i = 0; i < c->n_used_by; i++) {
        cmp = strcmp(c->used_by[i], user);
        if (cmp == 0) {
            return 0;
        }
        if (cmp > 0) {
            break;
        }
    }
    s = acme_strdup(user);
    u = s ? realloc(c->used_by, (c->n_used_by + 1) * sizeof(char *)) : NULL;
    if (u == NULL) {
        free(s);
        return -1;
    }
    memmove(&u[i + 1], &u[i], (c->n_used_by - i) * sizeof(char *));
    u[i] = s;
    c->n_used_by++;
    c->used_by = u;
    return 0;
}

int
acme_inventory_set_error(acme_inventory_cert_t *c, const char *error)
{
    free(c->error);
    c->error = acme_strdup(error ? error : "unknown error");
    return c->error ? 0 : -1;
}

int
acme_inventory_set_pem(acme_inventory_cert_t *c, const char *pem, size_t len)
{
    char  err[ACME_ERRLEN];

    acme_cert_info_free(&c->info);
    if (acme_cert_info_from_pem(pem, len, &c->info, err, sizeof(err)) != 0) {
        (void) acme_inventory_set_error(c, err);
        return -1;
    }
    free(c->error);
    c->error = NULL;
    return 0;
}

void
acme_inventory_free(acme_inventory_t *inv)
{
    acme_inventory_cert_t  *c;
    size_t                  i, k;

    if (inv == NULL) {
        return;
    }
    for (i = 0; i < inv->n; i++) {
        c = &inv->certs[i];
        free(c->file);
        free(c->error);
        acme_cert_info_free(&c->info);
        for (k = 0; k < c->n_used_by; k++) {
            free(c->used_by[k]);
        }
        free(c->used_by);
    }
    free(inv->certs);
    memset(inv, 0, sizeof(*inv));
}

void
acme_inventory_status(const acme_inventory_cert_t *c, long long now,
    acme_status_cert_t *out)
{
    memset(out, 0, sizeof(*out));

    out->unmanaged = 1;
    out->id = c->file;
    out->file = c->file;
    out->used_by = (const char *const *) c->used_by;
    out->n_used_by = c->n_used_by;

    if (c->error != NULL) {
        out->state = "failed";
        out->last_error = c->error;
        return;
    }

    out->names = (const char *const *) c->info.names;
    out->n_names = c->info.n_names;
    out->sans = (const char *const *) c->info.names;
    out->n_sans = c->info.n_names;
    out->subject = c->info.subject;
    out->ca_issuer = c->info.issuer;
    out->serial = c->info.serial;
    out->not_before = c->info.not_before;
    out->not_after = c->info.not_after;
    out->key_type = c->info.key_name[0] ? c->info.key_name : NULL;
    out->spki_pin = c->info.spki_pin;

    if (c->info.not_after <= now) {
        out->state = "expired";
    } else if (c->info.not_before > now) {
        out->state = "not yet valid";
    } else {
        out->state = "valid";
    }
}
