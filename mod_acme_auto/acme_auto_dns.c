/*
 * dns-01 for one order, in its job thread (blocking is fine there; every
 * step is bounded): common/io/acme_dns_publish.h does the work (RFC 2136 or
 * the hook, the propagation wait, the removal) and its posix_spawn runner
 * starts the hook; this file supplies the issuer's settings and where the
 * messages go.  The
 * engine hands the identifier and key authorization again on UNPUBLISH, so
 * nothing is remembered here.
 */
#include <string.h>
#include <stdlib.h>

#include "httpd.h"
#include "http_log.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_dns_publish.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

struct acme_auto_dns_s {
    server_rec             *s;
    const char             *id;
    int                   (*should_stop)(void *);
    void                   *stop_data;
    acme_runner_t           runner;
    acme_dns_publisher_t    pub;
};

static void
dns_log(void *data, int level, const char *msg)
{
    acme_auto_dns_t *d = data;

    ap_log_error(APLOG_MARK, level == ACME_DNS_LOG_WARN ? APLOG_WARNING
                                                        : APLOG_INFO,
                 0, d->s, "mod_acme_auto: %s: %s", d->id, msg);
}

static int
dns_stop(void *data)
{
    acme_auto_dns_t *d = data;

    return d->should_stop != NULL && d->should_stop(d->stop_data);
}

acme_auto_dns_t *
acme_auto_dns_new(acme_auto_issuer_t *iss, server_rec *s, const char *cert_id,
    int (*should_stop)(void *), void *stop_data)
{
    acme_auto_dns_t *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        return NULL;
    }
    d->s = s;
    d->id = cert_id;
    d->should_stop = should_stop;
    d->stop_data = stop_data;
    /* posix_spawn: the job thread's SIGCHLD is not reaped by Apache */
    d->runner = acme_runner_posix;

    d->pub.conf = &iss->conf.dns;
    d->pub.timeout_ms = iss->conf.timeout_ms;
    d->pub.runner = &d->runner;
    d->pub.data = d;
    d->pub.stop = dns_stop;
    d->pub.log = dns_log;
    return d;
}

void
acme_auto_dns_free(acme_auto_dns_t *d)
{
    free(d);
}

int
acme_auto_dns_publish(acme_auto_dns_t *d, const char *identifier,
    const char *key_authz, char *err, size_t errlen)
{
    return acme_dns_publish(&d->pub, identifier, key_authz, err, errlen);
}

void
acme_auto_dns_unpublish(acme_auto_dns_t *d, const char *identifier,
    const char *key_authz)
{
    char err[ACME_ERRLEN];

    if (acme_dns_unpublish(&d->pub, identifier, key_authz, err, sizeof(err))
        != 0)
    {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s, "mod_acme_auto: "
                     "%s: the TXT record of %s stays: %s", d->id, identifier,
                     err);
    }
}
