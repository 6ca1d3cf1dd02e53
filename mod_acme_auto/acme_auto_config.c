/*
 * Directives: the per-server configuration, <AcmeIssuer> and its
 * directives, AcmeCertificate.
 *
 * Everything here only reads: "apache2 -t" runs the directive handlers and
 * must catch every mistake without writing a file (the cross-checks are in
 * acme_auto_check.c; the state directories are created later, in
 * post_config).
 */
#include <string.h>
#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include "mod_acme_auto.h"
#include "acme_dns.h"
#include "acme_dns_conf_load.h"
#include "acme_eab.h"
#include "acme_issuer.h"
#include "acme_proxy.h"
#include "acme_util.h"

#include <openssl/crypto.h>

APLOG_USE_MODULE(acme_auto);

/* The <AcmeIssuer> block being read; config reading is single threaded. */
static acme_auto_issuer_t *cur_issuer;
/* its AcmeChallenge line (one per block, as nginx's "challenge") */
static const ap_directive_t *cur_challenge;

void *
acme_auto_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    acme_auto_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));

    (void) s;
    sc->issuers = apr_array_make(p, 2, sizeof(acme_auto_issuer_t *));
    return sc;
}

void *
acme_auto_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    acme_auto_srv_conf_t *base = basev, *add = addv;
    acme_auto_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));

    /* issuers are global; a certificate belongs to the vhost naming it */
    sc->issuers = base->issuers;
    sc->cert = add->cert;
    return sc;
}

static const char *
in_issuer(cmd_parms *cmd)
{
    if (cur_issuer == NULL) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name,
                           " is only valid inside <AcmeIssuer name>", NULL);
    }
    return NULL;
}

/* The secrets of AcmeDNSUpdate and AcmeExternalAccountBinding. */
static apr_status_t
issuer_cleanup(void *data)
{
    acme_issuer_conf_clear(data);
    return APR_SUCCESS;
}

static const char *
issuer_section(cmd_parms *cmd, void *dummy, const char *arg)
{
    acme_auto_srv_conf_t *sc = acme_auto_srv_conf(cmd->server);
    acme_auto_issuer_t   *iss, **pi;
    const char           *endp, *name, *err;
    int                   i;

    (void) dummy;
    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) != NULL) {
        return err;
    }
    if (cur_issuer != NULL) {
        return "<AcmeIssuer> sections cannot be nested";
    }
    endp = ap_strrchr_c(arg, '>');
    if (endp == NULL) {
        return "<AcmeIssuer> directive missing closing '>'";
    }
    arg = apr_pstrndup(cmd->pool, arg, endp - arg);
    name = ap_getword_conf(cmd->pool, &arg);
    if (name == NULL || *name == '\0') {
        return "<AcmeIssuer> needs a name, e.g. <AcmeIssuer letsencrypt>";
    }
    if (*arg != '\0') {
        return "<AcmeIssuer> takes exactly one name";
    }
    for (i = 0; name[i]; i++) {
        if (!apr_isalnum(name[i]) && name[i] != '-' && name[i] != '_'
            && name[i] != '.')
        {
            return apr_psprintf(cmd->pool, "<AcmeIssuer %s>: the name may "
                                "only have letters, digits, '-', '_' and '.'",
                                name);
        }
    }
    for (i = 0; i < sc->issuers->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(sc->issuers, i,
                                 acme_auto_issuer_t *)->conf.name, name) == 0)
        {
            return apr_psprintf(cmd->pool,
                                "<AcmeIssuer %s> is defined twice", name);
        }
    }

    iss = apr_pcalloc(cmd->pool, sizeof(*iss));
    /* unset: the defaults are acme_issuer_check()'s (acme_auto_check.c) */
    acme_issuer_init(&iss->conf);
    apr_pool_cleanup_register(cmd->pool, &iss->conf, issuer_cleanup,
                              apr_pool_cleanup_null);
    iss->conf.name = name;
    iss->contacts = apr_array_make(cmd->pool, 2, sizeof(const char *));
    iss->conf_file = cmd->directive->filename;
    iss->conf_line = cmd->directive->line_num;
    pi = apr_array_push(sc->issuers);
    *pi = iss;

    cur_issuer = iss;
    cur_challenge = NULL;
    err = ap_walk_config(cmd->directive->first_child, cmd, cmd->context);
    cur_issuer = NULL;
    return err;
}

static const char *
set_directory(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);
    char        msg[ACME_ERRLEN];
    int         rc;

    (void) dummy;
    if (err) {
        return err;
    }
    rc = acme_issuer_directory(arg, msg, sizeof(msg));
    if (rc < 0) {
        return apr_psprintf(cmd->pool, "AcmeDirectory: '%s' is not the URL "
                            "of an ACME directory: %s", arg, msg);
    }
    if (rc == 1) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_WARNING, 0, NULL,
                     "mod_acme_auto: AcmeDirectory %s (%s:%d) %s", arg,
                     cmd->directive->filename, cmd->directive->line_num, msg);
    }
    if (cur_issuer->conf.directory != NULL) {
        return "AcmeDirectory is given twice in this <AcmeIssuer>";
    }
    cur_issuer->conf.directory = arg;
    return NULL;
}

static const char *
add_contact(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);
    size_t      size = strlen(arg) + ACME_ISSUER_CONTACT_EXTRA;
    char       *c, msg[ACME_ERRLEN];

    (void) dummy;
    if (err) {
        return err;
    }
    c = apr_palloc(cmd->pool, size);
    if (acme_issuer_contact(arg, strlen(arg), c, size, msg, sizeof(msg)) < 0) {
        return apr_psprintf(cmd->pool, "AcmeContact: %s", msg);
    }
    APR_ARRAY_PUSH(cur_issuer->contacts, const char *) = c;
    return NULL;
}

static const char *
set_tos(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);

    (void) dummy;
    if (err) {
        return err;
    }
    if (strcasecmp(arg, "agreed") != 0) {
        return "AcmeTermsOfService: the only value is 'agreed' (leave the "
               "directive out to not agree)";
    }
    cur_issuer->terms_agreed = 1;
    return NULL;
}

static const char *
set_key_reuse(cmd_parms *cmd, void *dummy, int flag)
{
    const char *err = in_issuer(cmd);

    (void) dummy;
    if (err) {
        return err;
    }
    cur_issuer->key_reuse = flag ? 1 : 0;
    if (cur_issuer->key_reuse && cur_issuer->key_rollover) {
        return "AcmeKeyReuse on excludes AcmeKeyRollover pinned in the same "
               "<AcmeIssuer>: a renewal either keeps the key or takes the "
               "one pinned ahead";
    }
    return NULL;
}

/* AcmeKeyRollover pinned|off: the next key made and pinned one renewal
 * ahead (acme_job_next_t) */
static const char *
set_key_rollover(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);

    (void) dummy;
    if (err) {
        return err;
    }
    if (strcmp(arg, "pinned") == 0) {
        cur_issuer->key_rollover = 1;
    }
    else if (strcmp(arg, "off") == 0) {
        cur_issuer->key_rollover = 0;
    }
    else {
        return apr_psprintf(cmd->pool, "AcmeKeyRollover: \"%s\" is neither "
                            "pinned nor off", arg);
    }
    if (cur_issuer->key_reuse && cur_issuer->key_rollover) {
        return "AcmeKeyRollover pinned excludes AcmeKeyReuse on in the same "
               "<AcmeIssuer>: a renewal either keeps the key or takes the "
               "one pinned ahead";
    }
    return NULL;
}

static const char *
set_trusted_ca(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd), *path;
    apr_finfo_t finfo;

    (void) dummy;
    if (err) {
        return err;
    }
    path = ap_server_root_relative(cmd->pool, arg);
    if (path == NULL
        || apr_stat(&finfo, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS
        || finfo.filetype != APR_REG)
    {
        return apr_psprintf(cmd->pool, "AcmeTrustedCA: '%s' is not a "
                            "readable file", arg);
    }
    cur_issuer->trusted_ca = path;
    return NULL;
}

static const char *
set_state_dir(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);

    (void) dummy;
    if (err) {
        return err;
    }
    cur_issuer->conf.state_dir = ap_server_root_relative(cmd->pool, arg);
    cur_issuer->state_line = cmd->directive->line_num;
    if (cur_issuer->conf.state_dir == NULL) {
        return apr_psprintf(cmd->pool, "AcmeStateDir: invalid path '%s'", arg);
    }
    return NULL;
}

static const char *
set_account_key(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char      *err = in_issuer(cmd);
    acme_key_type_t  kt;

    (void) dummy;
    if (err) {
        return err;
    }
    if (acme_key_type_parse(arg, strlen(arg), &kt) != 0) {
        return apr_psprintf(cmd->pool, "AcmeAccountKey: unknown key type '%s'"
                            " (ecdsa:256, ecdsa:384, ecdsa:521, rsa:2048, "
                            "rsa:3072, rsa:4096)", arg);
    }
    cur_issuer->conf.account_key = kt;
    return NULL;
}

/* AcmePreferredChain NAME, nginx-acme's preferred_chain: the issuer
 * commonName of the top certificate of the chain to prefer */
/* AcmeProfile NAME [require], nginx-acme's profile: the ACME profile
 * newOrder asks for when the directory lists it; otherwise the default
 * profile with a warning or, with "require", a per-certificate error */
static const char *
set_profile(cmd_parms *cmd, void *dummy, const char *name, const char *req)
{
    const char *err = in_issuer(cmd);
    char        ebuf[ACME_ERRLEN];

    (void) dummy;
    if (err) {
        return err;
    }
    if (cur_issuer->conf.profile != NULL) {
        return "AcmeProfile is given twice in this <AcmeIssuer>";
    }
    if (acme_issuer_profile_name(name, ebuf, sizeof(ebuf)) != 0) {
        return apr_psprintf(cmd->pool, "AcmeProfile: %s", ebuf);
    }
    if (req != NULL) {
        if (strcmp(req, "require") != 0) {
            return apr_psprintf(cmd->pool, "AcmeProfile: invalid parameter "
                                "'%s': only 'require' is allowed", req);
        }
        cur_issuer->conf.profile_require = 1;
    }
    cur_issuer->conf.profile = name;
    return NULL;
}

/* AcmeProxy http://[user:password@]host:port | off: every request to the
 * CA goes through this HTTP CONNECT proxy (acme_proxy.h) */
static const char *
set_proxy(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);
    char        ebuf[ACME_ERRLEN];
    int         rc;

    (void) dummy;
    if (err) {
        return err;
    }
    if (cur_issuer->conf.proxy_given) {
        return "AcmeProxy is given twice in this <AcmeIssuer>";
    }
    /* the message never repeats the URL: it may hold a password */
    rc = acme_proxy_check(arg, ebuf, sizeof(ebuf));
    if (rc < 0) {
        return apr_psprintf(cmd->pool, "AcmeProxy: %s", ebuf);
    }
    cur_issuer->conf.proxy_given = 1;
    cur_issuer->conf.proxy = rc == 0 ? arg : NULL;
    return NULL;
}

static const char *
set_preferred_chain(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);

    (void) dummy;
    if (err) {
        return err;
    }
    if (cur_issuer->conf.preferred_chain != NULL) {
        return "AcmePreferredChain is given twice in this <AcmeIssuer>";
    }
    if (arg[0] == '\0') {
        return "AcmePreferredChain: takes the issuer name of a chain, not ''";
    }
    cur_issuer->conf.preferred_chain = arg;
    return NULL;
}

static const char *
set_renew(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);
    int         pct;

    (void) dummy;
    if (err) {
        return err;
    }
    pct = acme_issuer_renew_percent(arg, strlen(arg));
    if (pct < 0) {
        return apr_psprintf(cmd->pool, "AcmeRenewBeforeExpiry: '%s' is not a "
                            "percentage of the lifetime between 1%% and 99%%",
                            arg);
    }
    cur_issuer->conf.renew_percent = pct;
    return NULL;
}

/* An <AcmeIssuer> time: seconds, or with a unit (ap_timeout_parameter_parse),
 * between 1 s and max seconds. */
static const char *
issuer_seconds(cmd_parms *cmd, const char *arg, int max, long *out)
{
    const char          *err = in_issuer(cmd);
    apr_interval_time_t  t;

    if (err) {
        return err;
    }
    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS
        || t < apr_time_from_sec(1) || t > apr_time_from_sec(max))
    {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a time between 1s "
                            "and %ds", cmd->cmd->name, arg, max);
    }
    *out = (long) apr_time_sec(t);
    return NULL;
}

static const char *
set_timeout(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err;

    (void) dummy;
    err = issuer_seconds(cmd, arg, 600,
                         cur_issuer ? &cur_issuer->conf.timeout_ms : NULL);
    if (err == NULL) {
        cur_issuer->conf.timeout_ms *= 1000;
    }
    return err;
}

/* The first backoff step after a failed attempt (as mod_md's
 * MDRetryDelay); the next ones are 10 and 100 times it, then a day. */
static const char *
set_retry_delay(cmd_parms *cmd, void *dummy, const char *arg)
{
    (void) dummy;
    return issuer_seconds(cmd, arg, 86400,
                          cur_issuer ? &cur_issuer->conf.retry_delay : NULL);
}

/* How far ahead of our clock a new certificate's notBefore may be for it
 * to replace a valid one at once (acme_job_activate_at). */
static const char *
set_clock_skew(cmd_parms *cmd, void *dummy, const char *arg)
{
    (void) dummy;
    return issuer_seconds(cmd, arg, 86400,
                          cur_issuer ? &cur_issuer->conf.clock_skew : NULL);
}

/* The shortest wait between two renewalInfo fetches (ARI, RFC 9773) of a
 * certificate: the lower bound of the CA's Retry-After. */
static const char *
set_ari_poll(cmd_parms *cmd, void *dummy, const char *arg)
{
    (void) dummy;
    return issuer_seconds(cmd, arg, 86400,
                          cur_issuer ? &cur_issuer->conf.ari_poll : NULL);
}

/* Orders of this issuer in flight at once (acme_job_pipeline). */
static const char *
set_max_orders(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);
    char       *end;
    long        n;

    (void) dummy;
    if (err) {
        return err;
    }
    n = strtol(arg, &end, 10);
    if (end == arg || *end != '\0' || n < 1 || n > ACME_JOB_MAX_ORDERS_MAX) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number from 1 to "
                            "%d", cmd->cmd->name, arg,
                            ACME_JOB_MAX_ORDERS_MAX);
    }
    cur_issuer->conf.max_orders = n;
    return NULL;
}

static const char *
set_challenge(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = in_issuer(cmd);
    char        msg[ACME_ERRLEN], *type;

    (void) dummy;
    if (err) {
        return err;
    }
    if (cur_challenge != NULL && cur_challenge != cmd->directive) {
        return "AcmeChallenge is given twice in this <AcmeIssuer> (list "
               "the types on one line: they are tried in turn)";
    }
    cur_challenge = cmd->directive;
    /* one type a word (challenge= takes a comma list); a list: tried in
     * turn after failures (the first one first) */
    type = apr_pstrdup(cmd->temp_pool, arg);
    if (strchr(type, ',') != NULL) {
        return "AcmeChallenge: list the types as separate words";
    }
    if (acme_job_challenges_parse(type, cur_issuer->conf.challenges,
                                  &cur_issuer->conf.n_challenges, msg,
                                  sizeof(msg)) != 0)
    {
        return apr_psprintf(cmd->pool, "AcmeChallenge: '%s': %s", arg, msg);
    }
    return NULL;
}

/* A timeout of AcmeDNSHook / AcmeDNSPropagationCheck, in the bounds of
 * both servers (acme_dns_conf_timeout). */
static const char *
dns_timeout(cmd_parms *cmd, const char *directive, const char *arg, int *ms)
{
    apr_interval_time_t  t;
    char                 msg[ACME_ERRLEN];

    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS) {
        apr_cpystrn(msg, "not a time", sizeof(msg));
    }
    else if (acme_dns_conf_timeout(apr_time_as_msec(t), msg, sizeof(msg))
             == 0)
    {
        *ms = (int) apr_time_as_msec(t);
        return NULL;
    }
    return apr_psprintf(cmd->pool, "%s: invalid timeout '%s': %s", directive,
                        arg, msg);
}

/* AcmeDNSUpdate SERVER[:PORT] KEYNAME SECRET|file:PATH [hmac-sha256|
 * hmac-sha384|hmac-sha512] [zone=ZONE].  The values are checked and the
 * secret read here (acme_dns_update_conf_load), so that "apache2 -t"
 * reports a bad one; messages never show it. */
static const char *
set_dns_update(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    const char             *err = in_issuer(cmd);
    char                    msg[ACME_ERRLEN];
    int                     i;
    acme_dns_update_args_t  a;

    (void) dummy;
    if (err) {
        return err;
    }
    if (cur_issuer->conf.dns.update.host[0] != '\0') {
        return "AcmeDNSUpdate is given twice in this <AcmeIssuer>";
    }
    if (argc < 3 || argc > 5) {
        return "AcmeDNSUpdate SERVER[:PORT] KEYNAME SECRET|file:PATH "
               "[hmac-sha256|hmac-sha384|hmac-sha512] [zone=ZONE]";
    }
    memset(&a, 0, sizeof(a));
    a.server = argv[0];
    a.key_name = argv[1];
    a.secret = argv[2];
    for (i = 3; i < argc; i++) {
        if (strncasecmp(argv[i], "zone=", 5) == 0 && a.zone == NULL) {
            a.zone = argv[i] + 5;
        }
        else if (strncasecmp(argv[i], "hmac-", 5) == 0 && a.alg == NULL) {
            a.alg = argv[i];
        }
        else {
            return apr_psprintf(cmd->pool, "AcmeDNSUpdate: unknown argument "
                                "'%s' (an algorithm hmac-sha256|hmac-sha384|"
                                "hmac-sha512 or zone=ZONE)", argv[i]);
        }
    }
    if (strncasecmp(a.secret, "file:", 5) == 0) {
        a.secret = a.secret[5] == '\0' ? ""
                   : ap_server_root_relative(cmd->temp_pool, a.secret + 5);
        if (a.secret == NULL) {
            return apr_psprintf(cmd->pool, "AcmeDNSUpdate: invalid secret "
                                "file path '%s'", argv[2] + 5);
        }
        a.secret_is_file = 1;
    }
    if (acme_dns_update_conf_load(&a, &cur_issuer->conf.dns, msg, sizeof(msg))
        != 0)
    {
        return apr_psprintf(cmd->pool, "AcmeDNSUpdate: %s", msg);
    }
    return NULL;
}

/* AcmeDNSHook /path/prog [timeout] */
static const char *
set_dns_hook(cmd_parms *cmd, void *dummy, const char *prog, const char *tmo)
{
    const char *err = in_issuer(cmd);
    char        msg[ACME_ERRLEN];

    (void) dummy;
    if (err) {
        return err;
    }
    if (cur_issuer->conf.dns.hook != NULL) {
        return "AcmeDNSHook is given twice in this <AcmeIssuer>";
    }
    if (acme_run_check(prog, msg, sizeof(msg)) != 0) {
        return apr_psprintf(cmd->pool, "AcmeDNSHook: %s", msg);
    }
    cur_issuer->conf.dns.hook = prog;
    return tmo == NULL ? NULL
           : dns_timeout(cmd, "AcmeDNSHook", tmo,
                         &cur_issuer->conf.dns.hook_timeout_ms);
}

/* AcmeEventCommand /path/prog [seconds]: in <AcmeIssuer>, or in the server
 * config for every block without its own; an absolute path to an
 * executable file, the timeout within the hook's bounds */
static const char *
set_event_command(cmd_parms *cmd, void *dummy, const char *prog,
    const char *tmo)
{
    acme_auto_srv_conf_t *sc = acme_auto_srv_conf(cmd->server);
    const char          **dst;
    int                  *ms;
    char                  msg[ACME_ERRLEN];

    (void) dummy;
    if (cur_issuer != NULL) {
        dst = &cur_issuer->conf.event_command;
        ms = &cur_issuer->conf.event_timeout_ms;
    }
    else if (cmd->server->is_virtual) {
        return "AcmeEventCommand: only in the server config or in "
               "<AcmeIssuer>, not in <VirtualHost>";
    }
    else {
        dst = &sc->event_command;
        ms = &sc->event_timeout_ms;
    }
    if (*dst != NULL) {
        return "AcmeEventCommand is given twice here";
    }
    if (acme_run_check(prog, msg, sizeof(msg)) != 0) {
        return apr_psprintf(cmd->pool, "AcmeEventCommand: %s", msg);
    }
    *dst = prog;
    return tmo == NULL ? NULL
           : dns_timeout(cmd, "AcmeEventCommand", tmo, ms);
}

/* AcmeExpiryWarning SECONDS: where AcmeEventCommand may be */
static const char *
set_expiry_warning(cmd_parms *cmd, void *dummy, const char *arg)
{
    acme_auto_srv_conf_t *sc = acme_auto_srv_conf(cmd->server);
    long long            *dst, v;
    char                 *end;

    (void) dummy;
    if (cur_issuer != NULL) {
        dst = &cur_issuer->conf.expiry_warning;
    }
    else if (cmd->server->is_virtual) {
        return "AcmeExpiryWarning: only in the server config or in "
               "<AcmeIssuer>, not in <VirtualHost>";
    }
    else {
        dst = &sc->expiry_warning;
    }
    v = strtoll(arg, &end, 10);
    if (end == arg || *end != '\0' || v <= 0) {
        return apr_psprintf(cmd->pool, "AcmeExpiryWarning: '%s' is not a "
                            "number of seconds above 0", arg);
    }
    *dst = v;
    return NULL;
}

static apr_status_t
store_cleanup(void *data)
{
    acme_fleet_conf_free(data);
    return APR_SUCCESS;
}

/*
 * AcmeStore etcd URL[,URL...] prefix=P key_file=F [node=NAME]
 *     [user=U password_file=F] [ssl_trusted_certificate=F] [lease_ttl=S]
 * (server config): the shared store of a fleet (acme_fleet_node.h), the
 * same words as nginx's acme_store.  The key and password files are read
 * here, so "apache2 -t" fails on a missing or bad one; the parent reads
 * them again when it makes the node (acme_auto_jobs_register, as root).
 */
static const char *
set_store(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    acme_auto_srv_conf_t *sc = acme_auto_srv_conf(cmd->server);
    acme_fleet_conf_t    *conf;
    const char           *err, *full;
    char                  msg[ACME_ERRLEN], *password = NULL, **file;
    int                   i;

    (void) dummy;
    if (cur_issuer != NULL) {
        return "AcmeStore belongs in the server config, not in <AcmeIssuer>";
    }
    if ((err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) != NULL) {
        return err;
    }
    if (sc->store != NULL) {
        return "AcmeStore is given twice";
    }
    if (argc == 1 && strcmp(argv[0], "etcd") == 0) {
        return "AcmeStore: the etcd endpoints are missing: AcmeStore etcd "
               "URL[,URL...] prefix=/acme/ key_file=FILE ...";
    }
    if (argc < 2 || strcmp(argv[0], "etcd") != 0) {
        return "AcmeStore: the backend must be etcd: AcmeStore etcd "
               "URL[,URL...] prefix=/acme/ key_file=FILE [node=NAME] "
               "[user=U password_file=FILE] [ssl_trusted_certificate=FILE] "
               "[lease_ttl=SECONDS]";
    }
    conf = apr_pcalloc(cmd->pool, sizeof(*conf));
    if (acme_fleet_conf_parse(argv + 1, (size_t) argc - 1, conf, msg,
                              sizeof(msg)) != 0)
    {
        return apr_psprintf(cmd->pool, "AcmeStore: %s", msg);
    }
    apr_pool_cleanup_register(cmd->pool, conf, store_cleanup,
                              apr_pool_cleanup_null);
    /* files relative to ServerRoot, as Apache's other file arguments */
    for (i = 0; i < 3; i++) {
        file = i == 0 ? &conf->key_file
               : i == 1 ? &conf->password_file : &conf->ca_file;
        if (*file == NULL || (*file)[0] == '/') {
            continue;
        }
        full = ap_server_root_relative(cmd->temp_pool, *file);
        if (full == NULL) {
            return apr_psprintf(cmd->pool, "AcmeStore: invalid path \"%s\"",
                                *file);
        }
        free(*file);
        *file = acme_strdup(full);
        if (*file == NULL) {
            return "AcmeStore: out of memory";
        }
    }
    if (acme_fleet_conf_load(conf, NULL, &password, msg, sizeof(msg)) != 0) {
        return apr_psprintf(cmd->pool, "AcmeStore: %s", msg);
    }
    if (password != NULL) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
    sc->store = conf;
    return NULL;
}

/* AcmeDNSPropagationCheck SERVER[:PORT]... [timeout] */
static const char *
set_dns_check(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    const char      *err = in_issuer(cmd);
    char             msg[ACME_ERRLEN];
    acme_dns_conf_t *dns;
    int              i;

    (void) dummy;
    if (err) {
        return err;
    }
    dns = &cur_issuer->conf.dns;
    if (dns->n_checks > 0) {
        return "AcmeDNSPropagationCheck is given twice in this <AcmeIssuer>";
    }
    if (argc < 1) {
        return "AcmeDNSPropagationCheck SERVER[:PORT]... [timeout]";
    }
    for (i = 0; i < argc; i++) {
        /* a last argument that starts with a digit and has no '.' or ':'
         * is the timeout ("120", "90s", "2m") */
        if (i == argc - 1 && i > 0 && apr_isdigit(argv[i][0])
            && strpbrk(argv[i], ".:") == NULL)
        {
            return dns_timeout(cmd, "AcmeDNSPropagationCheck", argv[i],
                               &dns->check_timeout_ms);
        }
        if (acme_dns_conf_add_check(dns, argv[i], strlen(argv[i]), msg,
                                    sizeof(msg)) != 0)
        {
            return apr_psprintf(cmd->pool, "AcmeDNSPropagationCheck: %s",
                                msg);
        }
    }
    return NULL;
}

/* AcmeExternalAccountBinding KID KEY|file:PATH [HS256|HS384|HS512]
 * (mod_md: MDExternalAccountBinding KID HMAC).  The key is decoded here
 * (acme_eab_conf_load), so that "apache2 -t" reports a bad one; messages
 * never show it. */
static const char *
set_eab(cmd_parms *cmd, void *dummy, const char *kid, const char *key,
    const char *alg)
{
    const char *err = in_issuer(cmd);
    int         is_file;
    char        msg[ACME_ERRLEN];

    (void) dummy;
    if (err) {
        return err;
    }
    if (cur_issuer->conf.eab.kid != NULL) {
        return "AcmeExternalAccountBinding is given twice in this "
               "<AcmeIssuer>";
    }
    is_file = strncasecmp(key, "file:", 5) == 0;
    if (is_file) {
        key = key[5] == '\0' ? NULL
              : ap_server_root_relative(cmd->temp_pool, key + 5);
        if (key == NULL) {
            return "AcmeExternalAccountBinding: invalid key file path";
        }
    }
    if (acme_eab_conf_load(kid, key, is_file, alg, &cur_issuer->conf.eab, msg,
                           sizeof(msg)) != 0)
    {
        return apr_psprintf(cmd->pool, "AcmeExternalAccountBinding: %s", msg);
    }
    return NULL;
}

static const char *
set_certificate(cmd_parms *cmd, void *dummy, int argc, char *const argv[])
{
    acme_auto_srv_conf_t  *sc = acme_auto_srv_conf(cmd->server);
    acme_auto_cert_conf_t *cc, *o;
    const char            *err, **pn;
    int                    i;

    (void) dummy;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) != NULL) {
        return err;
    }
    if (cur_issuer != NULL) {
        return "AcmeCertificate belongs in a <VirtualHost>, not in <AcmeIssuer>";
    }
    if (!cmd->server->is_virtual) {
        /* the main server's line reached the vhosts' checks: errors about
         * other names at a vhost's line, or a certificate for port 80 */
        return "AcmeCertificate belongs in a <VirtualHost>, not in the "
               "server config";
    }
    if (argc < 1) {
        return "AcmeCertificate needs an issuer name: AcmeCertificate "
               "<issuer> [names...] [key=ecdsa:256] [challenge=http-01]";
    }
    cc = apr_pcalloc(cmd->pool, sizeof(*cc));
    cc->issuer_name = argv[0];
    cc->names = apr_array_make(cmd->pool, 4, sizeof(const char *));
    cc->key_type = ACME_KEY_DEFAULT;
    cc->conf_file = cmd->directive->filename;
    cc->conf_line = cmd->directive->line_num;
    for (i = 1; i < argc; i++) {
        if (strncasecmp(argv[i], "key=", 4) == 0) {
            if (acme_key_type_parse(argv[i] + 4, strlen(argv[i] + 4),
                                    &cc->key_type) != 0)
            {
                return apr_psprintf(cmd->pool, "AcmeCertificate: unknown key "
                                    "type '%s' (ecdsa:256, ecdsa:384, "
                                    "ecdsa:521, rsa:2048, rsa:3072, "
                                    "rsa:4096)", argv[i] + 4);
            }
            continue;
        }
        if (strncasecmp(argv[i], "challenge=", 10) == 0) {
            char msg[ACME_ERRLEN];

            if (acme_job_challenges_parse(argv[i] + 10, cc->challenges,
                                          &cc->n_challenges, msg,
                                          sizeof(msg)) != 0)
            {
                return apr_psprintf(cmd->pool, "AcmeCertificate: '%s': %s",
                                    argv[i], msg);
            }
            continue;
        }
        if (strncasecmp(argv[i], "fallback=", 9) == 0) {
            char msg[ACME_ERRLEN];

            /* the issuers tried after failures (acme_failover.h) */
            if (acme_failover_parse(&cc->failover, argv[i] + 9,
                                    strlen(argv[i] + 9), msg,
                                    sizeof(msg)) != 0)
            {
                return apr_psprintf(cmd->pool, "AcmeCertificate: '%s': %s",
                                    argv[i], msg);
            }
            continue;
        }
        if (strncasecmp(argv[i], "fallback_after=", 15) == 0) {
            char msg[ACME_ERRLEN];

            if (acme_failover_parse_after(&cc->failover, argv[i] + 15,
                                          strlen(argv[i] + 15), msg,
                                          sizeof(msg)) != 0)
            {
                return apr_psprintf(cmd->pool, "AcmeCertificate: '%s': %s",
                                    argv[i], msg);
            }
            continue;
        }
        pn = apr_array_push(cc->names);
        *pn = apr_pstrdup(cmd->pool, argv[i]);
        ap_str_tolower((char *) *pn);
    }
    {
        char msg[ACME_ERRLEN];

        if (acme_failover_check(&cc->failover, cc->issuer_name, msg,
                                sizeof(msg)) != 0)
        {
            return apr_psprintf(cmd->pool, "AcmeCertificate: %s", msg);
        }
    }
    /* several certificates per vhost differ by key type: OpenSSL holds
     * one per type and picks by the client's signature algorithms */
    for (o = sc->cert; o != NULL; o = o->next) {
        if (o->key_type == cc->key_type) {
            return apr_psprintf(cmd->pool, "AcmeCertificate is given twice "
                                "for this server with the same key type, "
                                "first in %s:%d (add key=ecdsa:256 / "
                                "key=rsa:2048 to have one certificate of "
                                "each type)", o->conf_file, o->conf_line);
        }
        if (o->next == NULL) {
            o->next = cc;
            return NULL;
        }
    }
    sc->cert = cc;
    return NULL;
}

const command_rec acme_auto_cmds[] = {
    AP_INIT_RAW_ARGS("<AcmeIssuer", issuer_section, NULL, RSRC_CONF,
        "<AcmeIssuer name> ... </AcmeIssuer>: an ACME CA and account"),
    AP_INIT_TAKE1("AcmeDirectory", set_directory, NULL, RSRC_CONF,
        "URL of the CA's ACME directory"),
    AP_INIT_ITERATE("AcmeContact", add_contact, NULL, RSRC_CONF,
        "account contact(s); 'mailto:' is added when there is no scheme"),
    AP_INIT_TAKE1("AcmeTermsOfService", set_tos, NULL, RSRC_CONF,
        "'agreed': agree to the CA's terms of service"),
    AP_INIT_FLAG("AcmeKeyReuse", set_key_reuse, NULL, RSRC_CONF,
        "on: a renewal keeps the certificate key (for pinned clients; "
        "default off: a fresh key each time)"),
    AP_INIT_TAKE1("AcmeKeyRollover", set_key_rollover, NULL, RSRC_CONF,
        "pinned: each certificate's key is made one renewal ahead and its "
        "pin published (next_spki_pin); default off"),
    AP_INIT_TAKE1("AcmeTrustedCA", set_trusted_ca, NULL, RSRC_CONF,
        "CA bundle (PEM) for the ACME server's TLS certificate"),
    AP_INIT_TAKE1("AcmeStateDir", set_state_dir, NULL, RSRC_CONF,
        "directory for account, keys and certificates"),
    AP_INIT_TAKE1("AcmeAccountKey", set_account_key, NULL, RSRC_CONF,
        "key type of a new account key (default ecdsa:256)"),
    AP_INIT_TAKE1("AcmePreferredChain", set_preferred_chain, NULL, RSRC_CONF,
        "AcmePreferredChain NAME: prefer the CA's chain whose top "
        "certificate NAME (its issuer commonName) issued; none: the default "
        "chain"),
    AP_INIT_TAKE12("AcmeProfile", set_profile, NULL, RSRC_CONF,
        "AcmeProfile NAME [require]: the ACME profile to ask the CA for; "
        "'require': fail when the CA does not offer it"),
    AP_INIT_TAKE1("AcmeProxy", set_proxy, NULL, RSRC_CONF,
        "AcmeProxy http://[user:password@]host:port | off: every request to "
        "the CA goes through this HTTP CONNECT proxy (default off; the "
        "environment's https_proxy is not read)"),
    AP_INIT_TAKE1("AcmeRenewBeforeExpiry", set_renew, NULL, RSRC_CONF,
        "renew when this share of the lifetime is left (default 33%)"),
    AP_INIT_TAKE1("AcmeTimeout", set_timeout, NULL, RSRC_CONF,
        "timeout of each network step (default 30s)"),
    AP_INIT_TAKE1("AcmeRetryDelay", set_retry_delay, NULL, RSRC_CONF,
        "first delay after a failed attempt (default 60s); then 10 and 100 "
        "times it, then a day"),
    AP_INIT_TAKE1("AcmeClockSkew", set_clock_skew, NULL, RSRC_CONF,
        "a new certificate replaces a valid one once its notBefore is at "
        "most this far ahead (default 60s)"),
    AP_INIT_TAKE1("AcmeARIPollInterval", set_ari_poll, NULL, RSRC_CONF,
        "the shortest wait between two renewalInfo (ARI) fetches of a "
        "certificate (default 1h; the CA's Retry-After, at most 1d)"),
    AP_INIT_TAKE1("AcmeMaxOrders", set_max_orders, NULL, RSRC_CONF,
        "orders of this issuer in flight at once (default 8, 1 to 64)"),
    AP_INIT_ITERATE("AcmeChallenge", set_challenge, NULL, RSRC_CONF,
        "challenge types: http-01 (default), tls-alpn-01, dns-01; several "
        "are tried in turn after failures"),
    AP_INIT_TAKE_ARGV("AcmeDNSUpdate", set_dns_update, NULL, RSRC_CONF,
        "AcmeDNSUpdate SERVER[:PORT] KEYNAME SECRET|file:PATH [hmac-sha256] "
        "[zone=ZONE]: dns-01 records by RFC 2136 updates signed with TSIG"),
    AP_INIT_TAKE12("AcmeDNSHook", set_dns_hook, NULL, RSRC_CONF,
        "AcmeDNSHook /path/prog [timeout]: dns-01 records by a program run "
        "as 'prog add|remove DOMAIN TXT-VALUE'"),
    AP_INIT_TAKE_ARGV("AcmeDNSPropagationCheck", set_dns_check, NULL,
        RSRC_CONF, "AcmeDNSPropagationCheck SERVER[:PORT]... [timeout]: "
        "servers that must show a dns-01 record before it is validated"),
    AP_INIT_TAKE23("AcmeExternalAccountBinding", set_eab, NULL, RSRC_CONF,
        "AcmeExternalAccountBinding KID KEY|file:PATH [HS256|HS384|HS512]: "
        "External Account Binding for a new account"),
    AP_INIT_TAKE12("AcmeEventCommand", set_event_command, NULL, RSRC_CONF,
        "AcmeEventCommand /path/prog [seconds]: a program run as 'prog "
        "EVENT ID NAMES...' on every change of a certificate (default "
        "timeout 30)"),
    AP_INIT_TAKE1("AcmeExpiryWarning", set_expiry_warning, NULL, RSRC_CONF,
        "AcmeExpiryWarning SECONDS: a certificate this close to its notAfter"
        " is expiring (default: the last 10% of its lifetime)"),
    AP_INIT_TAKE_ARGV("AcmeStore", set_store, NULL, RSRC_CONF,
        "AcmeStore etcd URL[,URL...] prefix=/acme/ key_file=FILE [node=NAME]"
        " [user=U password_file=FILE] [ssl_trusted_certificate=FILE]"
        " [lease_ttl=SECONDS]: "
        "several servers share their certificates through etcd (one order "
        "per certificate, any node answers the CA)"),
    AP_INIT_TAKE_ARGV("AcmeCertificate", set_certificate, NULL, RSRC_CONF,
        "AcmeCertificate <issuer> [names...] [key=type] "
        "[fallback=issuer[,issuer]] [fallback_after=N] "
        "[challenge=type[,type...]]: manage this "
        "server's certificate"),
    AP_INIT_FLAG("AcmeStatusControl", ap_set_flag_slot,
        (void *) APR_OFFSETOF(acme_auto_dir_conf_t, control), ACCESS_CONF,
        "AcmeStatusControl on|off: POST renew / revoke at this acme-status "
        "location (default off)"),
    { NULL }
};
