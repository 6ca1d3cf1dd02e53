/*
 * Issuer failover (acme_failover.h): which issuer an attempt uses, and
 * the fallback= / fallback_after= values both servers parse.
 */
#include <stdio.h>
#include <string.h>

#include "acme_failover.h"
#include "acme_util.h"

int
acme_failover_parse(acme_failover_conf_t *f, const char *list, size_t len,
    char *err, size_t errlen)
{
    const char  *p, *end, *comma;
    size_t       n, k, i;

    f->n = 0;
    p = list;
    end = list + len;

    if (len == 0) {
        acme_err(err, errlen, "no issuer name");
        return -1;
    }

    for ( ;; ) {
        comma = memchr(p, ',', (size_t) (end - p));
        n = (size_t) ((comma != NULL ? comma : end) - p);

        if (n == 0) {
            acme_err(err, errlen, "an empty issuer name");
            return -1;
        }
        if (n >= ACME_FAILOVER_NAME) {
            acme_err(err, errlen, "the issuer name \"%.*s...\" is too long",
                     20, p);
            return -1;
        }
        if (f->n == ACME_FAILOVER_MAX - 1) {
            acme_err(err, errlen, "more than %d fallback issuers",
                     ACME_FAILOVER_MAX - 1);
            return -1;
        }
        for (i = 0; i < n; i++) {
            if ((unsigned char) p[i] <= ' ' || p[i] == '"'
                || (unsigned char) p[i] >= 0x7f)
            {
                acme_err(err, errlen, "the issuer name \"%.*s\" has a "
                         "space, a quote or a control character", (int) n, p);
                return -1;
            }
        }
        for (k = 0; k < f->n; k++) {
            if (strlen(f->names[k]) == n && memcmp(f->names[k], p, n) == 0) {
                acme_err(err, errlen, "issuer \"%.*s\" is listed twice",
                         (int) n, p);
                return -1;
            }
        }

        memcpy(f->names[f->n], p, n);
        f->names[f->n][n] = '\0';
        f->n++;

        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }

    return 0;
}

int
acme_failover_parse_after(acme_failover_conf_t *f, const char *arg,
    size_t len, char *err, size_t errlen)
{
    size_t    i;
    unsigned  v;

    v = 0;
    for (i = 0; i < len; i++) {
        if (arg[i] < '0' || arg[i] > '9' || v > ACME_FAILOVER_AFTER_MAX) {
            break;
        }
        v = v * 10 + (unsigned) (arg[i] - '0');
    }

    if (len == 0 || i < len || v < 1 || v > ACME_FAILOVER_AFTER_MAX) {
        acme_err(err, errlen, "the number of failed attempts must be 1 to "
                 "%d", ACME_FAILOVER_AFTER_MAX);
        return -1;
    }

    f->after = v;
    return 0;
}

int
acme_failover_check(const acme_failover_conf_t *f, const char *primary,
    char *err, size_t errlen)
{
    size_t  k;

    if (f->n == 0) {
        if (f->after) {
            acme_err(err, errlen, "fallback_after= needs fallback=");
            return -1;
        }
        return 0;
    }

    for (k = 0; k < f->n; k++) {
        if (primary != NULL && strcmp(f->names[k], primary) == 0) {
            acme_err(err, errlen, "fallback= names the certificate's own "
                     "issuer \"%s\"", primary);
            return -1;
        }
    }
    return 0;
}

int
acme_failover_same(const acme_failover_conf_t *a,
    const acme_failover_conf_t *b)
{
    size_t  k;

    if (a->n != b->n) {
        return 0;
    }
    if (a->n == 0) {
        return 1;
    }
    if ((a->after ? a->after : ACME_FAILOVER_AFTER)
        != (b->after ? b->after : ACME_FAILOVER_AFTER))
    {
        return 0;
    }
    for (k = 0; k < a->n; k++) {
        if (strcmp(a->names[k], b->names[k]) != 0) {
            return 0;
        }
    }
    return 1;
}

size_t
acme_failover_pick(unsigned failures, size_t n, unsigned after)
{
    if (n <= 1) {
        return 0;
    }
    if (after == 0) {
        after = ACME_FAILOVER_AFTER;
    }
    return (size_t) ((failures / after) % n);
}

size_t
acme_failover_find(const char *const *names, size_t n, const char *name)
{
    size_t  k;

    if (name == NULL || name[0] == '\0') {
        return 0;
    }
    for (k = 0; k < n; k++) {
        if (names[k] != NULL && strcmp(names[k], name) == 0) {
            return k;
        }
    }
    return 0;
}
