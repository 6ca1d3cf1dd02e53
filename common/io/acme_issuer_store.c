/*
 * The issuer's state directory at configuration time (acme_issuer_store.h).
 */
#include <errno.h>

#include "acme_issuer_store.h"
#include "acme_store.h"
#include "acme_util.h"

int
acme_issuer_check_store(const acme_issuer_conf_t *c,
    const char *const *words, acme_issuer_problem_t *p)
{
    char err[ACME_ERRLEN];

    if (c->state_dir == NULL) {
        return 0;           /* no store (no_store) */
    }
    if (acme_store_check_writable(c->state_dir, err, sizeof(err)) == 0) {
        return 0;
    }
    p->at = ACME_ISSUER_AT_STATE_DIR;
    p->warning = (errno == EROFS);
    if (p->warning) {
        /* a read-only mount: serve what is stored, store nothing */
        (void) acme_err(p->text, sizeof(p->text), "%s %s is on a read-only file "
                 "system (%s): stored certificates are served, new ones "
                 "cannot be stored until it is writable",
                 words[ACME_ISSUER_AT_STATE_DIR], c->state_dir, err);
    }
    else {
        (void) acme_err(p->text, sizeof(p->text), "%s %s cannot be created or "
                 "written: %s", words[ACME_ISSUER_AT_STATE_DIR],
                 c->state_dir, err);
    }
    return 1;
}

int
acme_issuer_check_store_user(const acme_issuer_conf_t *c,
    const char *const *words, const acme_store_user_t *u,
    acme_issuer_problem_t *p)
{
    char  err[ACME_ERRLEN];
    int   rc;

    if (c->state_dir == NULL) {
        return 0;
    }
    rc = acme_store_check_user(c->state_dir, u, 1, err, sizeof(err));
    if (rc == 0) {
        return 0;
    }
    p->at = ACME_ISSUER_AT_STATE_DIR;
    p->warning = (rc > 0);
    if (p->warning) {
        (void) acme_err(p->text, sizeof(p->text), "%s %s is read-only for "
                 "user \"%s\", who writes the store (%s): stored "
                 "certificates are served, new ones cannot be stored until "
                 "it is writable", words[ACME_ISSUER_AT_STATE_DIR],
                 c->state_dir, u->name, err);
    }
    else {
        (void) acme_err(p->text, sizeof(p->text), "%s %s cannot be used by "
                 "user \"%s\", who writes the store: %s",
                 words[ACME_ISSUER_AT_STATE_DIR], c->state_dir, u->name,
                 err);
    }
    return 1;
}

size_t
acme_issuer_check_startup(acme_issuer_conf_t *c, const char *const *words,
    const acme_store_user_t *u, acme_issuer_problem_t *out, size_t max)
{
    size_t n = acme_issuer_check(c, words, out, max);

    n = n < max ? n : max;
    if (n < max && !acme_issuer_has_error(out, n)
        && acme_issuer_check_store(c, words, &out[n]))
    {
        n++;
    }
    if (u != NULL && n < max && !acme_issuer_has_error(out, n)
        && acme_issuer_check_store_user(c, words, u, &out[n]))
    {
        n++;
    }
    return n;
}
