/*
 * The issuer's state directory at configuration time (also "nginx -t" /
 * "apache2 -t"): could the server create and write it?  Blocking (it
 * looks at the file system): startup only.  Writes nothing.
 */
#ifndef ACME_ISSUER_STORE_H
#define ACME_ISSUER_STORE_H

#include "acme_issuer.h"

/*
 * Checks c->state_dir (set by acme_issuer_check).  0 when usable; 1 with
 * *p filled (at ACME_ISSUER_AT_STATE_DIR): an error when it cannot be
 * created or written, a warning when it is on a read-only file system
 * (stored certificates are served, new ones cannot be stored).
 */
int acme_issuer_check_store(const acme_issuer_conf_t *c,
    const char *const *words, acme_issuer_problem_t *p);

/*
 * acme_issuer_check() and, when it found no error, the state directory:
 * at most max problems in out (max at least 1), their number.
 */
size_t acme_issuer_check_startup(acme_issuer_conf_t *c,
    const char *const *words, acme_issuer_problem_t *out, size_t max);

#endif
