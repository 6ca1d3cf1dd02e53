/*
 * One account per issuer (acme_account.h): who creates the account, and the
 * URL the others then use.  No locking here: the host serialises calls.
 */
#include <stdlib.h>
#include <string.h>

#include "acme_account.h"
#include "acme_jws.h"
#include "acme_util.h"


int
acme_account_gate_enter(acme_account_gate_t *g, EVP_PKEY *key,
    const void *who, char **url)
{
    char  *thumb;

    *url = NULL;

    if (g->url != NULL) {
        thumb = acme_jwk_thumbprint(key);
        if (thumb == NULL) {
            return -1;
        }
        if (strcmp(thumb, g->thumbprint) == 0) {
            free(thumb);
            *url = acme_strdup(g->url);
            return *url ? ACME_GATE_USE : -1;
        }
        free(thumb);
    }

    if (g->leader == NULL || g->leader == who) {
        g->leader = who;
        return ACME_GATE_LEAD;
    }

    return ACME_GATE_WAIT;
}


int
acme_account_gate_set(acme_account_gate_t *g, EVP_PKEY *key, const char *url)
{
    char  *thumb, *u;

    thumb = acme_jwk_thumbprint(key);
    u = acme_strdup(url);
    if (thumb == NULL || u == NULL) {
        free(thumb);
        free(u);
        return -1;
    }

    if (g->url == NULL || strcmp(g->url, u) != 0) {
        g->unsaved = 0;                 /* not known yet */
    }
    free(g->thumbprint);
    free(g->url);
    g->thumbprint = thumb;
    g->url = u;
    g->leader = NULL;
    return 0;
}


void
acme_account_gate_stored(acme_account_gate_t *g, const char *url, int ok)
{
    if (g->url != NULL && url != NULL && strcmp(g->url, url) == 0) {
        g->unsaved = !ok;
    }
}


int
acme_account_gate_unsaved(const acme_account_gate_t *g)
{
    return g->url != NULL && g->unsaved;
}


void
acme_account_gate_leave(acme_account_gate_t *g, const void *who)
{
    if (who != NULL && g->leader == who) {
        g->leader = NULL;
    }
}


void
acme_account_gate_free(acme_account_gate_t *g)
{
    free(g->thumbprint);
    free(g->url);
    memset(g, 0, sizeof(*g));
}
