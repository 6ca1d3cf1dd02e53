/*
 * Configuration checks (check_config hook): AcmeCertificate resolved
 * against <AcmeIssuer>, names validated (acme_names.h), state directories
 * checked, the managed certificates of acme_auto_g built.
 *
 * Everything here only reads: the hook also runs under "apache2 -t" and
 * must catch every mistake without writing a file (the state directories
 * are created later, in post_config: acme_auto_startup.c).
 */
#include <string.h>
#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "unixd.h"
#include "apr_strings.h"
#include "apr_optional.h"
#include "mod_watchdog.h"

#include "mod_acme_auto.h"
#include "acme_issuer.h"
#include "acme_issuer_store.h"
#include "acme_names.h"
#include "acme_store.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

#define ACME_AUTO_DEFAULT_STATE_ROOT "/var/lib/apache2/acme/"

acme_auto_globals_t acme_auto_g;

/* The vhost's ServerName and ServerAliases (its globs too) into names. */
static void
vhost_names(apr_array_header_t *names, server_rec *s)
{
    if (s->server_hostname != NULL) {
        APR_ARRAY_PUSH(names, const char *) = s->server_hostname;
    }
    if (s->names) {
        apr_array_cat(names, s->names);
    }
    if (s->wild_names) {
        apr_array_cat(names, s->wild_names);
    }
}

/* Whether a client asking for name (SNI) reaches vhost s, by the rule
 * nginx's check uses (acme_name_served()): IP literals are reached without
 * SNI and count. */
static int
vhost_has_name(apr_pool_t *p, server_rec *s, const char *name)
{
    apr_array_header_t *pats = apr_array_make(p, 4, sizeof(const char *));

    vhost_names(pats, s);
    return acme_name_served(name, (const char *const *) pats->elts, NULL,
                            (size_t) pats->nelts, 0);
}

/* mod_ssl selects "acme-tls/1" (ALPN) only where the vhost's Protocols
 * list has it. */
static int
vhost_has_protocol(server_rec *s, const char *proto)
{
    core_server_config *conf = ap_get_core_module_config(s->module_config);
    int                 i;

    for (i = 0; conf->protocols && i < conf->protocols->nelts; i++) {
        if (strcasecmp(APR_ARRAY_IDX(conf->protocols, i, const char *), proto)
            == 0)
        {
            return 1;
        }
    }
    return 0;
}

static acme_auto_issuer_t *
find_issuer(const char *name)
{
    int i;

    for (i = 0; i < acme_auto_g.issuers->nelts; i++) {
        acme_auto_issuer_t *iss = APR_ARRAY_IDX(acme_auto_g.issuers, i,
                                                acme_auto_issuer_t *);
        if (strcmp(iss->conf.name, name) == 0) {
            return iss;
        }
    }
    return NULL;
}

#define CHECK_FAIL(s, ...) do { \
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, (s), \
                     __VA_ARGS__); \
        bad = 1; \
    } while (0)

/* One AcmeCertificate line of a vhost: its names, its id, its shared
 * managed certificate (several lines of one vhost give several certificates,
 * e.g. an ECDSA and an RSA one, all installed by the cert callback). */
static int
check_cert(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
    acme_auto_srv_conf_t *sc, acme_auto_cert_conf_t *cc)
{
    int                    j, bad = 0;
    unsigned               flags;
    size_t                 bad_name;
    acme_auto_issuer_t    *iss, *fb[ACME_FAILOVER_MAX];
    acme_auto_cert_t      *c = NULL;
    size_t                 k;
    apr_array_header_t    *names;
    acme_names_t           set;
    char                  *id, err[ACME_ERRLEN];

    iss = find_issuer(cc->issuer_name);
    if (iss == NULL) {
        CHECK_FAIL(s, "mod_acme_auto: AcmeCertificate (%s:%d) names the "
                   "issuer '%s', but there is no <AcmeIssuer %s>",
                   cc->conf_file, cc->conf_line, cc->issuer_name,
                   cc->issuer_name);
        return bad;
    }
    fb[0] = iss;
    for (k = 0; k < cc->failover.n; k++) {
        fb[k + 1] = find_issuer(cc->failover.names[k]);
        if (fb[k + 1] == NULL) {
            CHECK_FAIL(s, "mod_acme_auto: AcmeCertificate (%s:%d) names the "
                       "fallback issuer '%s', but there is no "
                       "<AcmeIssuer %s>", cc->conf_file, cc->conf_line,
                       cc->failover.names[k], cc->failover.names[k]);
            return bad;
        }
    }
    if (cc->n_challenges == 0) {
        memcpy(cc->challenges, iss->conf.challenges, sizeof(cc->challenges));
        cc->n_challenges = iss->conf.n_challenges;
    }
    else if (acme_job_challenges_has(cc->challenges, cc->n_challenges,
                                     "dns-01")
             && !acme_dns_conf_used(&iss->conf.dns))
    {
        CHECK_FAIL(s, "mod_acme_auto: AcmeCertificate (%s:%d) uses "
                   "challenge=dns-01 but <AcmeIssuer %s> has neither "
                   "AcmeDNSUpdate nor AcmeDNSHook to publish the TXT "
                   "records", cc->conf_file, cc->conf_line, iss->conf.name);
    }
    if (acme_job_challenges_has(cc->challenges, cc->n_challenges,
                                "tls-alpn-01")
        && !vhost_has_protocol(s, "acme-tls/1"))
    {
        CHECK_FAIL(s, "mod_acme_auto: AcmeCertificate (%s:%d): <AcmeIssuer"
                   " %s> uses AcmeChallenge tls-alpn-01 (or challenge=), but"
                   " this vhost "
                   "does not offer the protocol: add 'Protocols h2 "
                   "http/1.1 acme-tls/1' (or 'Protocols http/1.1 "
                   "acme-tls/1') to it", cc->conf_file, cc->conf_line,
                   iss->conf.name);
    }
    /* the names by the rules of acme_names.h: explicit, else ServerName
     * and ServerAlias ("_" and "" skipped); "*." only when every attempt
     * uses dns-01 (attempts rotate through the list, as on nginx) */
    flags = (cc->n_challenges == 1 && strcmp(cc->challenges[0], "dns-01") == 0)
            ? ACME_NAMES_DNS01 : 0;
    names = apr_array_make(ptemp, 4, sizeof(const char *));
    if (cc->names->nelts > 0) {
        apr_array_cat(names, cc->names);
    }
    else {
        flags |= ACME_NAMES_SERVER_NAME;
        vhost_names(names, s);
    }
    if (acme_names_set(&set, (const char *const *) names->elts, NULL,
                       names->nelts, flags, &bad_name, err, sizeof(err)) != 0)
    {
        if (bad_name == (size_t) names->nelts) {
            CHECK_FAIL(s, "mod_acme_auto: AcmeCertificate (%s:%d): no names; "
                       "set ServerName or list the names", cc->conf_file,
                       cc->conf_line);
        }
        else {
            CHECK_FAIL(s, "mod_acme_auto: AcmeCertificate (%s:%d): %s'%s' "
                       "cannot be certified: it %s%s", cc->conf_file,
                       cc->conf_line, cc->names->nelts > 0 ? ""
                       : "ServerName/ServerAlias ",
                       APR_ARRAY_IDX(names, bad_name, const char *), err,
                       strstr(err, "dns-01") == NULL ? ""
                       : apr_psprintf(ptemp, ": make dns-01 its only "
                                      "challenge ('AcmeChallenge dns-01' "
                                      "with AcmeDNSUpdate or AcmeDNSHook in "
                                      "<AcmeIssuer %s>, or challenge=dns-01)",
                                      iss->conf.name));
        }
        return bad;
    }
    for (j = 0; cc->names->nelts > 0 && j < (int) set.n_names; j++) {
        if (!vhost_has_name(ptemp, s, set.names[j])) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_WARNING, 0,
                         s, "mod_acme_auto: AcmeCertificate (%s:%d): "
                         "'%s' is not a ServerName/ServerAlias of "
                         "this vhost; clients asking for it (SNI) "
                         "will not reach it", cc->conf_file,
                         cc->conf_line, set.names[j]);
        }
    }

    /* the id from the first name; the order leaves out what a wildcard
     * of the set covers */
    id = acme_store_cert_id(set.names[0], cc->key_type);
    if (id == NULL) {
        acme_names_free(&set);
        CHECK_FAIL(s, "mod_acme_auto: out of memory");
        return bad;
    }
    for (j = 0; j < acme_auto_g.certs->nelts; j++) {
        acme_auto_cert_t *o = APR_ARRAY_IDX(acme_auto_g.certs, j,
                                            acme_auto_cert_t *);
        int same = acme_names_same(o->names, o->n_names,
                                   (const char *const *) set.order,
                                   set.n_order);

        /* the same names in another order: the same certificate */
        if (o->issuer == iss
            && (strcmp(o->id, id) == 0 || (same && o->key_type == cc->key_type)))
        {
            c = o;
            break;
        }
    }
    if (c != NULL && !acme_names_same(c->names, c->n_names,
                                      (const char *const *) set.order,
                                      set.n_order))
    {
        CHECK_FAIL(s, "mod_acme_auto: AcmeCertificate (%s:%d): the "
                   "AcmeCertificate at %s:%d manages '%s' with the same "
                   "key type but other names; list the same names or use "
                   "another first name", cc->conf_file, cc->conf_line,
                   c->conf_file, c->conf_line, id);
        free(id);
        acme_names_free(&set);
        return bad;
    }
    if (c != NULL && (c->n_issuers != (int) cc->failover.n + 1
                      || c->failover_after != (cc->failover.after
                                               ? cc->failover.after
                                               : ACME_FAILOVER_AFTER)
                      || memcmp(c->issuers, fb, sizeof(fb[0])
                                * (cc->failover.n + 1)) != 0))
    {
        CHECK_FAIL(s, "mod_acme_auto: AcmeCertificate (%s:%d): another "
                   "server manages '%s' with another fallback= or "
                   "fallback_after=; give each the same", cc->conf_file,
                   cc->conf_line, id);
        free(id);
        acme_names_free(&set);
        return bad;
    }
    if (c == NULL) {
        c = apr_pcalloc(pconf, sizeof(*c));
        c->slot = acme_auto_g.certs->nelts;
        c->id = apr_pstrdup(pconf, id);
        c->n_names = (int) set.n_order;
        c->names = apr_pcalloc(pconf, sizeof(const char *) * set.n_order);
        for (j = 0; j < (int) set.n_order; j++) {
            c->names[j] = apr_pstrdup(pconf, set.order[j]);
        }
        c->key_type = cc->key_type;
        c->issuer = iss;
        c->conf_file = cc->conf_file;
        c->conf_line = cc->conf_line;
        /* fallback=: stored under the primary's AcmeStateDir and id, a
         * fallback's orders use its own account (acme_failover.h) */
        for (k = 0; k <= cc->failover.n; k++) {
            c->issuers[k] = fb[k];
            c->issuer_names[k] = fb[k]->conf.name;
            if (k > 0) {
                c->fallback_dirs[k - 1] = fb[k]->conf.directory;
            }
        }
        c->n_issuers = (int) cc->failover.n + 1;
        c->failover_after = cc->failover.after ? cc->failover.after
                                               : ACME_FAILOVER_AFTER;
        memcpy(c->challenges, cc->challenges, sizeof(c->challenges));
        c->n_challenges = cc->n_challenges;
        APR_ARRAY_PUSH(acme_auto_g.certs, acme_auto_cert_t *) = c;
    }
    free(id);
    acme_names_free(&set);
    if (sc->managed == NULL) {
        sc->managed = c;
    }
    APR_ARRAY_PUSH(sc->managed_all, acme_auto_cert_t *) = c;
    return bad;
}

static const char *const issuer_words[ACME_ISSUER_AT_N] = {
    "<AcmeIssuer>", "AcmeDirectory", "AcmeChallenge", "AcmeDNSUpdate",
    "AcmeDNSHook", "AcmeStateDir"
};

/* One <AcmeIssuer> by the rules of acme_issuer.h: the defaults, what must
 * be there, the state directory (checked, not created). */
static int
check_issuer(server_rec *base, acme_auto_issuer_t *iss)
{
    acme_issuer_problem_t pr[4];
    acme_store_user_t     user, *u = NULL;
    size_t                i, n;

    iss->conf.state_root = ACME_AUTO_DEFAULT_STATE_ROOT;

    /* the parent (root) hands the store to the children's User/Group (set
     * by mod_unixd while the configuration is read): checked as them too */
    if (geteuid() == 0 && ap_unixd_config.user_id != 0
        && ap_unixd_config.user_id != (uid_t) -1)
    {
        acme_store_user_init(&user, ap_unixd_config.user_name,
                             ap_unixd_config.user_id,
                             ap_unixd_config.group_id);
        u = &user;
    }

    n = acme_issuer_check_startup(&iss->conf, issuer_words, u, pr, 4);
    for (i = 0; i < n; i++) {
        ap_log_error(APLOG_MARK, pr[i].warning ? APLOG_WARNING
                     : APLOG_STARTUP | APLOG_EMERG, 0, base,
                     "mod_acme_auto: <AcmeIssuer %s> (%s:%d) %s",
                     iss->conf.name, iss->conf_file,
                     pr[i].at == ACME_ISSUER_AT_STATE_DIR && iss->state_line
                     ? iss->state_line : iss->conf_line,
                     pr[i].text);
    }
    return acme_issuer_has_error(pr, n);
}

/* The warning for a managed vhost without "SSLEngine on", at its first
 * AcmeCertificate: at start after mod_ssl (acme_auto_startup.c: mod_ssl
 * never gave us its SSL_CTX), under "apache2 -t" from the configuration
 * tree (below). */
void
acme_auto_warn_no_ssl(server_rec *vs)
{
    acme_auto_srv_conf_t  *sc = acme_auto_srv_conf(vs);
    acme_auto_cert_conf_t *cc, *first = NULL;

    for (cc = sc->cert; cc != NULL; cc = cc->next) {
        if (first == NULL || cc->conf_line < first->conf_line) {
            first = cc;
        }
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, vs, "mod_acme_auto: "
                 "AcmeCertificate for %s (%s:%d) in a vhost without "
                 "'SSLEngine on': the certificate is obtained but not "
                 "served there", vs->server_hostname,
                 first ? first->conf_file : "?", first ? first->conf_line : 0);
}

/* The last SSLEngine among the directives of list d (not in its nested
 * sections): 1 on / optional, 0 off, -1 none. */
static int
ssl_engine_in(apr_pool_t *p, const ap_directive_t *d)
{
    const char *args;
    int         on = -1;

    for (; d != NULL; d = d->next) {
        if (d->directive != NULL && d->args != NULL
            && strcasecmp(d->directive, "SSLEngine") == 0)
        {
            args = d->args;
            on = strcasecmp(ap_getword_conf(p, &args), "off") != 0;
        }
    }
    return on;
}

/* Under "apache2 -t" mod_ssl's post_config (where it takes the SSL_CTX
 * of each vhost with SSLEngine on) does not run: whether vhost s has
 * SSLEngine on / optional, its own or the server config's (mod_ssl's
 * merge), read from the configuration tree (Include and <IfModule> are
 * already spliced into it). */
static int
vhost_ssl_on(apr_pool_t *p, const server_rec *s)
{
    const ap_directive_t *d;
    int                   on;

    for (d = ap_conftree; d != NULL; d = d->next) {
        if (d->directive != NULL && d->filename != NULL
            && s->defn_name != NULL
            && strcasecmp(d->directive, "<VirtualHost") == 0
            && (unsigned) d->line_num == s->defn_line_number
            && strcmp(d->filename, s->defn_name) == 0)
        {
            on = ssl_engine_in(p, d->first_child);
            if (on != -1) {
                return on;
            }
            break;
        }
    }
    return ssl_engine_in(p, ap_conftree) == 1;
}

int
acme_auto_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
    server_rec *base)
{
    acme_auto_srv_conf_t *bsc = acme_auto_srv_conf(base);
    server_rec           *s;
    int                   i, j, bad = 0, used;

    (void) plog;
    memset(&acme_auto_g, 0, sizeof(acme_auto_g));
    acme_auto_g.base = base;
    acme_auto_g.issuers = bsc->issuers;
    acme_auto_g.certs = apr_array_make(pconf, 4, sizeof(acme_auto_cert_t *));

    for (i = 0; i < bsc->issuers->nelts; i++) {
        acme_auto_issuer_t *iss = APR_ARRAY_IDX(bsc->issuers, i,
                                                acme_auto_issuer_t *);
        /* AcmeEventCommand, AcmeExpiryWarning: the block's own win */
        acme_issuer_events_inherit(&iss->conf, bsc->event_command,
                                   bsc->event_timeout_ms,
                                   bsc->expiry_warning);
        bad |= check_issuer(base, iss);
        for (j = 0; j < i; j++) {
            acme_auto_issuer_t *o = APR_ARRAY_IDX(bsc->issuers, j,
                                                  acme_auto_issuer_t *);
            if (acme_issuer_state_shared(&o->conf, &iss->conf)) {
                CHECK_FAIL(base, "mod_acme_auto: <AcmeIssuer %s> (%s:%d) and "
                           "<AcmeIssuer %s> (%s:%d) share the AcmeStateDir %s",
                           o->conf.name, o->conf_file, o->conf_line,
                           iss->conf.name, iss->conf_file, iss->conf_line,
                           iss->conf.state_dir);
            }
        }
    }

    for (s = base; s != NULL; s = s->next) {
        acme_auto_srv_conf_t  *sc = acme_auto_srv_conf(s);
        acme_auto_cert_conf_t *cc;

        sc->managed = NULL;
        sc->managed_all = apr_array_make(pconf, 2, sizeof(acme_auto_cert_t *));
        for (cc = sc->cert; cc != NULL; cc = cc->next) {
            bad |= check_cert(pconf, ptemp, s, sc, cc);
        }
        if (sc->managed_all->nelts > 1) {
            for (i = 0; i < sc->managed_all->nelts; i++) {
                APR_ARRAY_IDX(sc->managed_all, i, acme_auto_cert_t *)
                    ->with_others = 1;
            }
        }
    }

    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST) {
        for (s = base->next; s != NULL; s = s->next) {
            if (acme_auto_srv_conf(s)->managed != NULL
                && !vhost_ssl_on(ptemp, s))
            {
                acme_auto_warn_no_ssl(s);
            }
        }
    }

    used = acme_auto_g.certs->nelts > 0;
    if (used && ap_find_linked_module("mod_ssl.c") == NULL) {
        CHECK_FAIL(base, "mod_acme_auto: AcmeCertificate needs mod_ssl "
                   "(LoadModule ssl_module)");
    }
    if (used && APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance) == NULL) {
        CHECK_FAIL(base, "mod_acme_auto: AcmeCertificate needs mod_watchdog "
                   "(LoadModule watchdog_module), which runs the renewals");
    }
    return bad ? !OK : OK;
}

apr_array_header_t *
acme_auto_certs_for_server(server_rec *s)
{
    acme_auto_srv_conf_t *sc = acme_auto_srv_conf(s);

    return sc && sc->managed ? sc->managed_all : NULL;
}

acme_auto_cert_t *
acme_auto_cert_for_server(server_rec *s)
{
    acme_auto_srv_conf_t *sc = acme_auto_srv_conf(s);

    return sc ? sc->managed : NULL;
}
