/*
 * dns-01 publishing: the blocking sequence of acme_dns_publish.h (threads
 * only; every step bounded by a timeout).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unistd.h>

#include <openssl/crypto.h>

#include "acme_dns_client.h"
#include "acme_dns_publish.h"
#include "acme_store.h"
#include "acme_util.h"

#define DNS_TTL             60
#define CHECK_INTERVAL_MS   2000
#define DNS_TIMEOUT_MS      30000
#define STOP_SLICE_MS       200




static int
dns_timeout(const acme_dns_publisher_t *p)
{
    return p->timeout_ms > 0 ? p->timeout_ms : DNS_TIMEOUT_MS;
}


static int
stopping(const acme_dns_publisher_t *p)
{
    return p->stop != NULL && p->stop(p->data) != 0;
}


/* ms in slices of STOP_SLICE_MS, ending early on a stop */
static void
sleep_unless_stopping(const acme_dns_publisher_t *p, int ms)
{
    int slice;

    while (ms > 0 && !stopping(p)) {
        slice = ms < STOP_SLICE_MS ? ms : STOP_SLICE_MS;
        acme_sleep_ms(slice);
        ms -= slice;
    }
}


static void
logf_(const acme_dns_publisher_t *p, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
logf_(const acme_dns_publisher_t *p, int level, const char *fmt, ...)
{
    char     msg[ACME_ERRLEN];
    va_list  ap;

    if (p->log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->log(p->data, level, msg);
}



/* ---- the hook program (acme_run.h) --------------------------------------- */

int
acme_dns_hook_run(const acme_dns_publisher_t *p, const char *op,
    const char *identifier, const char *txt, int stop, char *err,
    size_t errlen)
{
    char        *argv[5], *envp[2], msg[ACME_ERRLEN];
    acme_run_t   r;

    acme_dns_hook_command(p->conf->hook, op, identifier, txt, argv, envp);
    memset(&r, 0, sizeof(r));
    r.runner = p->runner;
    r.timeout_ms = p->conf->hook_timeout_ms > 0 ? p->conf->hook_timeout_ms
                   : ACME_DNS_HOOK_TIMEOUT_MS;
    r.what = "dns hook";
    r.data = p->data;
    r.stop = stop ? p->stop : NULL;
    r.log = p->log;

    if (acme_run(&r, argv, envp, msg, sizeof(msg)) != 0) {
        return acme_err(err, errlen, "dns hook %s %s: %s", op, argv[2], msg);
    }
    return 0;
}


/* ---- RFC 2136 ------------------------------------------------------------ */

static int
update(const acme_dns_publisher_t *p, const acme_dns01_record_t *r,
    acme_dns_update_op_t op, char *err, size_t errlen)
{
    const acme_dns_conf_t  *c = p->conf;
    char                    msg[ACME_ERRLEN], *zone = NULL;
    int                     rc;

    msg[0] = '\0';
    if (c->zone[0] == '\0'
        && acme_dns_find_zone_blocking(c->update.host, c->update.port, 0,
                                       r->name, dns_timeout(p), &zone, msg,
                                       sizeof(msg)) != 0)
    {
        return acme_err(err, errlen, "dns-01 update: cannot find the zone of "
                        "%s at %s:%d: %s", r->name, c->update.host,
                        c->update.port, msg);
    }
    rc = acme_dns_update_blocking(c->update.host, c->update.port,
                                  zone ? zone : c->zone, r->name, r->txt,
                                  DNS_TTL, op, &c->key, dns_timeout(p), msg,
                                  sizeof(msg));
    if (rc != 0) {
        acme_err(err, errlen, "dns-01 update (%s %s TXT in zone %s at %s:%d, "
                 "key %s): %s", op == ACME_DNS_UPDATE_ADD ? "add" : "delete",
                 r->name, zone ? zone : c->zone, c->update.host,
                 c->update.port, c->key.name ? c->key.name : "-",
                 msg);
    } else if (op == ACME_DNS_UPDATE_ADD) {
        logf_(p, ACME_DNS_LOG_INFO, "%s TXT \"%s\" added in zone %s",
              r->name, r->txt, zone ? zone : c->zone);
    }
    free(zone);
    return rc;
}


/* ---- propagation --------------------------------------------------------- */

/* No check server and no update server: the zone's NS hosts on port 53,
 * found through the system's resolver. */
static int
ns_servers(const acme_dns_publisher_t *p, const char *name,
    acme_dns_server_t **out, size_t *nout, char *err, size_t errlen)
{
    const char  *path = p->resolv_conf ? p->resolv_conf : "/etc/resolv.conf";
    char         resolver[64], *text = NULL, *zone = NULL, **ns = NULL;
    char         msg[ACME_ERRLEN];
    size_t       len = 0, n = 0, i;

    msg[0] = '\0';
    if (acme_store_read(path, &text, &len, 64 * 1024, msg, sizeof(msg)) != 1
        || acme_dns_resolv_conf_nameserver(text, resolver, sizeof(resolver))
           != 0)
    {
        /* the resolver's own default (resolv.conf(5)) */
        snprintf(resolver, sizeof(resolver), "127.0.0.1");
    }
    free(text);

    if (acme_dns_find_zone_blocking(resolver, 53, 1, name, dns_timeout(p),
                                    &zone, msg, sizeof(msg)) != 0
        || acme_dns_zone_ns_blocking(resolver, 53, 1, zone, dns_timeout(p),
                                     &ns, &n, msg, sizeof(msg)) != 0)
    {
        free(zone);
        return acme_err(err, errlen, "dns propagation: cannot find the name "
                        "servers of %s through %s (the first nameserver of %s;"
                        " or configure the check servers): %s", name,
                        resolver, path, msg);
    }
    free(zone);

    *out = calloc(n, sizeof(acme_dns_server_t));
    for (i = 0; i < n; i++) {
        if (*out != NULL) {
            snprintf((*out)[i].host, sizeof((*out)[i].host), "%s", ns[i]);
            (*out)[i].port = 53;
        }
        free(ns[i]);
    }
    free(ns);
    if (*out == NULL) {
        return acme_err(err, errlen, "dns propagation: out of memory");
    }
    *nout = n;
    return 0;
}


/* Polls every check server every 2 s until each answers the record. */
static int
wait_visible(const acme_dns_publisher_t *p, const acme_dns01_record_t *r,
    char *err, size_t errlen)
{
    const acme_dns_server_t  *servers = p->conf->checks;
    acme_dns_server_t        *found = NULL, *missing = NULL;
    size_t                    n = p->conf->n_checks, i, left;
    char                     *seen = NULL, msg[ACME_ERRLEN], list[512], d[32];
    long long                 deadline;
    int                       rc = -1, timeout;

    if (n == 0 && p->conf->update.host[0] != '\0') {
        servers = &p->conf->update;
        n = 1;
    }
    if (n == 0) {
        if (ns_servers(p, r->name, &found, &n, err, errlen) != 0) {
            return -1;
        }
        servers = found;
    }

    seen = calloc(n + 1, 1);
    missing = calloc(n + 1, sizeof(acme_dns_server_t));
    if (seen == NULL || missing == NULL) {
        acme_err(err, errlen, "dns propagation: out of memory");
        goto done;
    }
    timeout = p->conf->check_timeout_ms > 0 ? p->conf->check_timeout_ms
                                      : ACME_DNS_CHECK_TIMEOUT_MS;
    deadline = acme_monotonic_ms() + timeout;
    msg[0] = '\0';

    for ( ;; ) {
        left = 0;
        for (i = 0; i < n; i++) {
            if (seen[i]) {
                continue;
            }
            if (stopping(p)) {
                acme_err(err, errlen, "dns propagation: %s TXT \"%s\": "
                         "stopped (the server is shutting down)", r->name,
                         r->txt);
                goto done;
            }
            if (acme_dns_txt_visible_blocking(servers[i].host,
                                              servers[i].port, r->name,
                                              r->txt, dns_timeout(p), msg,
                                              sizeof(msg)) == 1)
            {
                seen[i] = 1;
            } else {
                left++;
            }
        }
        if (left == 0) {
            rc = 0;
            break;
        }
        if (acme_monotonic_ms() + CHECK_INTERVAL_MS > deadline) {
            left = 0;
            for (i = 0; i < n; i++) {
                if (!seen[i]) {
                    missing[left++] = servers[i];
                }
            }
            acme_dns_server_list(missing, left, list, sizeof(list));
            acme_err(err, errlen, "dns propagation: %s TXT \"%s\" not visible "
                     "on %s after %s%s%s%s", r->name, r->txt, list,
                     acme_duration_text(timeout, d, sizeof(d)),
                     msg[0] ? " (last error: " : "", msg, msg[0] ? ")" : "");
            break;
        }
        /* a stop is noticed within STOP_SLICE_MS (and the query above) */
        sleep_unless_stopping(p, CHECK_INTERVAL_MS);
    }

done:
    free(seen);
    free(missing);
    free(found);
    return rc;
}


/* ---- publish / unpublish ------------------------------------------------- */

int
acme_dns_publish(const acme_dns_publisher_t *p, const char *identifier,
    const char *key_authz, char *err, size_t errlen)
{
    acme_dns01_record_t  r;
    int                  rc;

    if (acme_dns01_record(identifier, key_authz, &r, err, errlen) != 0) {
        return -1;
    }
    if (p->conf->update.host[0] != '\0') {
        rc = update(p, &r, ACME_DNS_UPDATE_ADD, err, errlen);
    } else if (p->conf->hook != NULL) {
        rc = acme_dns_hook_run(p, "add", identifier, r.txt, 1, err, errlen);
        if (rc == 0) {
            logf_(p, ACME_DNS_LOG_INFO, "%s TXT \"%s\" added by the hook",
                  r.name, r.txt);
        }
    } else {
        rc = acme_err(err, errlen, "dns-01: neither an update server nor a "
                      "hook is configured");
    }
    if (rc == 0) {
        rc = wait_visible(p, &r, err, errlen);
        if (rc == 0) {
            logf_(p, ACME_DNS_LOG_INFO, "%s TXT \"%s\" is visible", r.name,
                  r.txt);
        }
    }
    acme_dns01_record_free(&r);
    return rc;
}


int
acme_dns_unpublish(const acme_dns_publisher_t *p, const char *identifier,
    const char *key_authz, char *err, size_t errlen)
{
    acme_dns01_record_t  r;
    int                  rc;

    if (acme_dns01_record(identifier, key_authz, &r, err, errlen) != 0) {
        return -1;
    }
    if (p->conf->update.host[0] != '\0') {
        rc = update(p, &r, ACME_DNS_UPDATE_DELETE, err, errlen);
    } else if (p->conf->hook != NULL) {
        rc = acme_dns_hook_run(p, "remove", identifier, r.txt, 0, err,
                               errlen);
    } else {
        rc = 0;
    }
    if (rc == 0) {
        logf_(p, ACME_DNS_LOG_INFO, "%s TXT \"%s\" removed", r.name, r.txt);
    }
    acme_dns01_record_free(&r);
    return rc;
}


/* ---- configuration ------------------------------------------------------- */

int
acme_tsig_key_from_file(acme_tsig_key_t *key, const char *keyname,
    const char *alg, const char *path, char *err, size_t errlen)
{
    char    *text = NULL, *t;
    size_t   len = 0;
    int      rc;

    rc = acme_store_read(path, &text, &len, 64 * 1024, err, errlen);
    if (rc == 0) {
        return acme_err(err, errlen, "no such file");
    }
    if (rc != 1) {
        free(text);
        return -1;
    }

    if (strstr(text, "secret") != NULL) {
        /* a key statement as tsig-keygen writes it */
        rc = acme_tsig_key_from_bind(key, text, err, errlen);
        if (rc == 0 && strcasecmp(key->name, keyname) != 0) {
            acme_err(err, errlen, "the file has the key \"%s\", not \"%s\"",
                     key->name, keyname);
            acme_tsig_key_clear(key);
            rc = -1;
        }
    } else {
        /* the bare base64 secret, whitespace around it */
        t = text + strspn(text, " \t\r\n");
        t[strcspn(t, " \t\r\n")] = '\0';
        rc = acme_tsig_key_init(key, keyname, alg, t, err, errlen);
    }

    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}
