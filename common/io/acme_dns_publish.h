/*
 * dns-01 publishing, one implementation for both servers (docs/design.md
 * "dns-01"): the TXT record "_acme-challenge.<domain>" is set by an RFC 2136
 * update signed with TSIG or by a hook program, then checked on the
 * propagation servers; it is removed the same way.
 *
 * What is published is the engine's list (acme_engine.h): PUBLISH gives the
 * identifier and key authorization, UNPUBLISH gives them again, so neither
 * this code nor a host keeps records.
 *
 * Two halves:
 *   - pure helpers (core/acme_dns_conf.h): SERVER[:PORT] parsing, the
 *     resolv.conf parser, the record of an identifier, the hook's command
 *     line and environment (the PATH rule);
 *   - the blocking sequence (this file): zone lookup, update or hook,
 *     propagation wait, removal.  Threads only (nginx's thread pool,
 *     Apache's job thread), never an event loop; every step is bounded.
 *
 * The hook runs through acme_run.h (acme_runner_t: how a host starts and
 * reaps a program), which the event command uses too.
 */
#ifndef ACME_DNS_PUBLISH_H
#define ACME_DNS_PUBLISH_H

#include <stddef.h>
#include "acme_dns.h"
#include "acme_dns_conf.h"
#include "acme_run.h"

/* ---- the blocking sequence (threads only) -------------------------------- */

#define ACME_DNS_LOG_INFO   ACME_RUN_LOG_INFO
#define ACME_DNS_LOG_WARN   ACME_RUN_LOG_WARN

typedef struct {
    /* the issuer's settings: RFC 2136 (conf->update.host[0] != '\0') or a
     * hook program (conf->hook != NULL), the propagation checks */
    const acme_dns_conf_t    *conf;
    const char               *resolv_conf;          /* NULL: /etc/resolv.conf */

    /* each DNS exchange: the issuer's timeout (timeout / AcmeTimeout) */
    int                       timeout_ms;           /* 0: 30 s */

    const acme_runner_t      *runner;               /* needed with hook */
    void                     *data;
    /* non-zero: the host is going away; adding and waiting give up
     * (removal does not ask) */
    int                     (*stop)(void *data);
    /* the hook's stderr lines ("dns hook: ...") and progress; NULL = none */
    void                    (*log)(void *data, int level, const char *msg);
} acme_dns_publisher_t;

/*
 * Sets the record of a dns-01 challenge and waits until every check server
 * answers it.  0, or -1 with err naming the step ("dns-01 update ...",
 * "dns hook add <domain>: ...", "dns propagation: ...").  A failure may
 * leave a half-set record: the host still unpublishes (the engine emits
 * UNPUBLISH for it after acme_engine_publish_failed).
 */
int acme_dns_publish(const acme_dns_publisher_t *p, const char *identifier,
    const char *key_authz, char *err, size_t errlen);

/* Removes it (exactly this TXT value).  0, or -1 with err. */
int acme_dns_unpublish(const acme_dns_publisher_t *p, const char *identifier,
    const char *key_authz, char *err, size_t errlen);

/*
 * Runs the hook "prog op identifier txt" through p->runner (acme_run):
 * stderr lines go to p->log, the last one ends a failure's err; the process group is killed
 * after p->conf->hook_timeout_ms, or when stop says so (with stop != 0).  0 on
 * exit 0, else -1 with err.
 */
int acme_dns_hook_run(const acme_dns_publisher_t *p, const char *op,
    const char *identifier, const char *txt, int stop, char *err,
    size_t errlen);

/*
 * dns_update secret=FILE / AcmeDNSUpdate file:PATH: the file holds a BIND
 * key statement (tsig-keygen; its key must be named keyname) or just the
 * base64 secret.  0, or -1 with err (never the secret).  Config time.
 */
int acme_tsig_key_from_file(acme_tsig_key_t *key, const char *keyname,
    const char *alg, const char *path, char *err, size_t errlen);

#endif
