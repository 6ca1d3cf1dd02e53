/*
 * The issuer's state directory at configuration time (also "nginx -t" /
 * "apache2 -t"): could the server create and write it?  Blocking (it
 * looks at the file system): startup only.  Writes nothing.
 */
#ifndef ACME_ISSUER_STORE_H
#define ACME_ISSUER_STORE_H

#include "acme_issuer.h"
#include "acme_store.h"

/*
 * Checks c->state_dir (set by acme_issuer_check).  0 when usable; 1 with
 * *p filled (at ACME_ISSUER_AT_STATE_DIR): an error when it cannot be
 * created or written, a warning when it is on a read-only file system
 * (stored certificates are served, new ones cannot be stored).
 */
int acme_issuer_check_store(const acme_issuer_conf_t *c,
    const char *const *words, acme_issuer_problem_t *p);

/*
 * Checks c->state_dir as the user that writes it (the workers' / children's
 * user, when the server starts as root and hands the store to it:
 * acme_store_check_user).  0 when usable; 1 with *p filled: an error naming
 * the component that blocks ("/srv/priv" is not searchable by user
 * "www-data"), a warning when the store exists but is read-only for the user
 * (stored certificates are served, new ones cannot be stored).
 */
int acme_issuer_check_store_user(const acme_issuer_conf_t *c,
    const char *const *words, const acme_store_user_t *u,
    acme_issuer_problem_t *p);

/*
 * acme_issuer_check() and, when it found no error, the state directory
 * (acme_issuer_check_store), and as the user u when u is not NULL
 * (acme_issuer_check_store_user): at most max problems in out (max at
 * least 1), their number.
 */
size_t acme_issuer_check_startup(acme_issuer_conf_t *c,
    const char *const *words, const acme_store_user_t *u,
    acme_issuer_problem_t *out, size_t max);

#endif
