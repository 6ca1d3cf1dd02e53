/*
 * "acme_issuer NAME { ... }": one ACME CA account configuration.  The
 * block's directives are an ngx_command_t table, parsed with nginx's own
 * ngx_conf_set_*_slot handlers where a value is a plain flag or time, and
 * checked as a whole when the block ends (also by "nginx -t", which must
 * not write anything).
 */

#include "ngx_acme.h"
#include "acme_issuer.h"
#include "acme_issuer_store.h"
#include "acme_proxy.h"


static char *ngx_acme_issuer_directive(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf);
static char *ngx_acme_issuer_check(ngx_conf_t *cf, ngx_acme_issuer_t *issuer);
static char *ngx_acme_issuer_uri(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_contact(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_key_type(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_account_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_path(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_memory_key(ngx_conf_t *cf,
    ngx_acme_issuer_t *issuer);
static char *ngx_acme_issuer_profile(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_proxy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_preferred_chain(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_acme_issuer_key_reuse(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_key_rollover(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_tos(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_percent(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_challenge(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_issuer_eab(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_acme_issuer_keep_key(ngx_conf_t *cf,
    ngx_acme_issuer_t *issuer, const char *pem, size_t len);
static void ngx_acme_issuer_cleanup(void *data);
static char *ngx_acme_check_positive_msec(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_acme_check_retry_delay(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_acme_check_max_orders(ngx_conf_t *cf, void *post,
    void *data);


/*
 * ngx_conf_set_msec_slot / ngx_conf_set_sec_slot write an ngx_msec_t / a
 * time_t at the offsets of the long fields conf.timeout_ms,
 * conf.retry_delay, conf.clock_skew and conf.ari_poll: where the sizes differ (e.g. a 32-bit build with a
 * 64-bit time_t) the build stops here instead of overwriting memory.
 */
typedef char ngx_acme_msec_is_long[sizeof(ngx_msec_t) == sizeof(long)
                                   ? 1 : -1];
typedef char ngx_acme_time_is_long[sizeof(time_t) == sizeof(long) ? 1 : -1];
/* ngx_conf_set_num_slot: an ngx_int_t at conf.max_orders */
typedef char ngx_acme_int_is_long[sizeof(ngx_int_t) == sizeof(long) ? 1 : -1];


static ngx_conf_post_handler_pt  ngx_acme_positive_msec_post =
    ngx_acme_check_positive_msec;
static ngx_conf_post_handler_pt  ngx_acme_retry_delay_post =
    ngx_acme_check_retry_delay;
static ngx_conf_post_handler_pt  ngx_acme_max_orders_post =
    ngx_acme_check_max_orders;


#define ngx_acme_issuer_offset(field)  offsetof(ngx_acme_issuer_t, field)

/*
 * conf_offset is unused (the block has one configuration, the issuer);
 * offset is the field a slot handler sets.
 */
static ngx_command_t  ngx_acme_issuer_commands[] = {

    { ngx_string("uri"),
      NGX_CONF_TAKE1,
      ngx_acme_issuer_uri,
      0,
      0,
      NULL },

    { ngx_string("contact"),
      NGX_CONF_TAKE1,
      ngx_acme_issuer_contact,
      0,
      ngx_acme_issuer_offset(contacts),
      NULL },

    { ngx_string("account_key"),
      NGX_CONF_TAKE1,
      ngx_acme_issuer_account_key,
      0,
      ngx_acme_issuer_offset(conf.account_key),
      NULL },

    { ngx_string("state_path"),
      NGX_CONF_TAKE1,
      ngx_acme_issuer_path,
      0,
      ngx_acme_issuer_offset(state_path),
      NULL },

    { ngx_string("accept_terms_of_service"),
      NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_acme_issuer_tos,
      0,
      ngx_acme_issuer_offset(tos),
      NULL },

    { ngx_string("ssl_trusted_certificate"),
      NGX_CONF_TAKE1,
      ngx_acme_issuer_path,
      0,
      ngx_acme_issuer_offset(trusted),
      NULL },

    { ngx_string("ssl_verify"),
      NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      0,
      ngx_acme_issuer_offset(verify),
      NULL },

    /* nginx-acme's: the CSR's subject CN is the first name */
    { ngx_string("common_name_in_csr"),
      NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      0,
      ngx_acme_issuer_offset(common_name_in_csr),
      NULL },

    /* renewals keep the stored certificate key (for pinned clients) */
    { ngx_string("key_reuse"),
      NGX_CONF_FLAG,
      ngx_acme_issuer_key_reuse,
      0,
      ngx_acme_issuer_offset(key_reuse),
      NULL },

    /* each certificate's key made and pinned one renewal ahead */
    { ngx_string("key_rollover"),
      NGX_CONF_TAKE1,
      ngx_acme_issuer_key_rollover,
      0,
      0,
      NULL },

    /* nginx-acme's: the chain whose top certificate this CN issued */
    { ngx_string("preferred_chain"),
      NGX_CONF_TAKE1,
      ngx_acme_issuer_preferred_chain,
      0,
      0,
      NULL },

    /* nginx-acme's: the ACME profile to ask for, optionally required */
    { ngx_string("profile"),
      NGX_CONF_TAKE12,
      ngx_acme_issuer_profile,
      0,
      0,
      NULL },

    /* an HTTP CONNECT proxy for every request to the CA */
    { ngx_string("proxy"),
      NGX_CONF_TAKE1,
      ngx_acme_issuer_proxy,
      0,
      0,
      NULL },

    { ngx_string("renew_before_expiry"),
      NGX_CONF_TAKE1,
      ngx_acme_issuer_percent,
      0,
      ngx_acme_issuer_offset(conf.renew_percent),
      NULL },

    { ngx_string("timeout"),
      NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      ngx_acme_issuer_offset(conf.timeout_ms),
      &ngx_acme_positive_msec_post },

    /* the first backoff step (as mod_md's MDRetryDelay); then 10 and 100
     * times it, then a day */
    { ngx_string("retry_delay"),
      NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      0,
      ngx_acme_issuer_offset(conf.retry_delay),
      &ngx_acme_retry_delay_post },

    /* how far ahead of our clock a new certificate's notBefore may be
     * for it to replace a valid one at once (acme_job_activate_at) */
    { ngx_string("clock_skew"),
      NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      0,
      ngx_acme_issuer_offset(conf.clock_skew),
      &ngx_acme_retry_delay_post },

    /* the shortest wait between two renewalInfo fetches (ARI, RFC 9773) of
     * a certificate: the lower bound of the CA's Retry-After */
    { ngx_string("ari_poll_interval"),
      NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      0,
      ngx_acme_issuer_offset(conf.ari_poll),
      &ngx_acme_retry_delay_post },

    /* orders of this issuer in flight at once (acme_job_pipeline) */
    { ngx_string("max_orders"),
      NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      ngx_acme_issuer_offset(conf.max_orders),
      &ngx_acme_max_orders_post },

    { ngx_string("challenge"),
      NGX_CONF_1MORE,
      ngx_acme_issuer_challenge,
      0,
      0,
      NULL },

    { ngx_string("dns_update"),
      NGX_CONF_1MORE,
      ngx_acme_dns_update_conf,
      0,
      0,
      NULL },

    { ngx_string("dns_hook"),
      NGX_CONF_TAKE12,
      ngx_acme_dns_hook_conf,
      0,
      0,
      NULL },

    { ngx_string("dns_propagation_check"),
      NGX_CONF_1MORE,
      ngx_acme_dns_check_conf,
      0,
      0,
      NULL },

    { ngx_string("acme_event_command"),
      NGX_CONF_TAKE12,
      ngx_acme_event_command_issuer,
      0,
      0,
      NULL },

    { ngx_string("acme_expiry_warning"),
      NGX_CONF_TAKE1,
      ngx_acme_event_warning_issuer,
      0,
      0,
      NULL },

    { ngx_string("external_account_key"),
      NGX_CONF_TAKE23,
      ngx_acme_issuer_eab,
      0,
      0,
      NULL },

      ngx_null_command
};


/* the argument counts nginx's ngx_conf_handler() accepts, by flag */
static ngx_uint_t  ngx_acme_argument_number[] = {
    NGX_CONF_NOARGS,
    NGX_CONF_TAKE1,
    NGX_CONF_TAKE2,
    NGX_CONF_TAKE3,
    NGX_CONF_TAKE4,
    NGX_CONF_TAKE5,
    NGX_CONF_TAKE6,
    NGX_CONF_TAKE7
};


char *
ngx_acme_issuer_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_main_conf_t  *amcf = conf;

    char                *rv;
    ngx_str_t           *value;
    ngx_uint_t           i;
    ngx_conf_t           save;
    ngx_acme_issuer_t   *issuer, **issuers;
    ngx_pool_cleanup_t  *cln;

    value = cf->args->elts;

    issuers = amcf->issuers.elts;

    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (issuers[i]->name.len == value[1].len
            && ngx_strncmp(issuers[i]->name.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate acme_issuer \"%V\", first defined "
                               "in %s:%ui", &value[1], issuers[i]->file,
                               issuers[i]->line);
            return NGX_CONF_ERROR;
        }
    }

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] == '/' || value[1].data[i] == '\0') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid acme_issuer name \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    issuer = ngx_pcalloc(cf->pool, sizeof(ngx_acme_issuer_t));
    if (issuer == NULL) {
        return NGX_CONF_ERROR;
    }

    acme_issuer_init(&issuer->conf);

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_acme_issuer_cleanup;
    cln->data = issuer;

    issuer->name = value[1];
    issuer->conf.name = (char *) value[1].data;
    issuer->conf.timeout_ms = (long) NGX_CONF_UNSET_MSEC;
    issuer->conf.retry_delay = NGX_CONF_UNSET;
    issuer->conf.clock_skew = NGX_CONF_UNSET;
    issuer->conf.max_orders = NGX_CONF_UNSET;
    issuer->conf.ari_poll = NGX_CONF_UNSET;
    issuer->tos = NGX_CONF_UNSET;
    issuer->verify = NGX_CONF_UNSET;
    issuer->common_name_in_csr = NGX_CONF_UNSET;
    issuer->key_reuse = NGX_CONF_UNSET;
    issuer->key_rollover = NGX_CONF_UNSET;
    issuer->file = cf->conf_file->file.name.data;
    issuer->line = cf->conf_file->line;

    if (ngx_array_init(&issuer->contacts, cf->pool, 2, sizeof(char *))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    save = *cf;
    cf->handler = ngx_acme_issuer_directive;
    cf->handler_conf = (char *) issuer;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_acme_issuer_check(cf, issuer);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    issuers = ngx_array_push(&amcf->issuers);
    if (issuers == NULL) {
        return NGX_CONF_ERROR;
    }

    *issuers = issuer;

    return NGX_CONF_OK;
}


/*
 * One directive inside the block: looked up in ngx_acme_issuer_commands
 * and its arguments counted as nginx's ngx_conf_handler() does, so the
 * messages read like nginx's own.
 */
static char *
ngx_acme_issuer_directive(ngx_conf_t *cf, ngx_command_t *dummy, void *conf)
{
    char           *rv;
    ngx_str_t      *name;
    ngx_uint_t      n, ok;
    ngx_command_t  *cmd;

    name = cf->args->elts;
    n = cf->args->nelts;

    for (cmd = ngx_acme_issuer_commands; cmd->name.len; cmd++) {

        if (cmd->name.len != name->len
            || ngx_strncmp(cmd->name.data, name->data, name->len) != 0)
        {
            continue;
        }

        if (cmd->type & NGX_CONF_FLAG) {
            ok = (n == 2);

        } else if (cmd->type & NGX_CONF_1MORE) {
            ok = (n >= 2);

        } else if (cmd->type & NGX_CONF_2MORE) {
            ok = (n >= 3);

        } else {
            ok = (n <= NGX_CONF_MAX_ARGS
                  && (cmd->type & ngx_acme_argument_number[n - 1]));
        }

        if (!ok) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid number of arguments in \"%s\" "
                               "directive", cmd->name.data);
            return NGX_CONF_ERROR;
        }

        rv = cmd->set(cf, cmd, conf);

        if (rv == NGX_CONF_OK || rv == NGX_CONF_ERROR) {
            return rv;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%s\" directive %s",
                           cmd->name.data, rv);
        return NGX_CONF_ERROR;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown directive \"%V\" in \"acme_issuer\"", name);
    return NGX_CONF_ERROR;
}


/* The directive names in acme_issuer_check()'s texts (acme_issuer.h). */
static const char  *ngx_acme_issuer_words[ACME_ISSUER_AT_N] = {
    "\"acme_issuer\"", "\"uri\"", "\"challenge\"", "\"dns_update\"",
    "\"dns_hook\"", "\"state_path\""
};


/*
 * The block as a whole, by the rules of acme_issuer.h: defaults, what must
 * be there, the store (checks only: "nginx -t" must not write anything).
 */
static char *
ngx_acme_issuer_check(ngx_conf_t *cf, ngx_acme_issuer_t *issuer)
{
    size_t                  i, n;
    ngx_uint_t              line;
    acme_issuer_problem_t   pr[4];

    if (issuer->state_path.len && !issuer->conf.no_store) {
        issuer->conf.state_dir = (char *) issuer->state_path.data;
    }

    issuer->conf.state_root = "/var/lib/nginx/acme/";

    /* as the workers' user: ngx_acme_issuer_check_user(), once "user" is
     * known */
    n = acme_issuer_check_startup(&issuer->conf, ngx_acme_issuer_words, NULL,
                                  pr, 4);

    for (i = 0; i < n; i++) {
        line = (pr[i].at == ACME_ISSUER_AT_CHALLENGE) ? issuer->challenge_line
               : (pr[i].at == ACME_ISSUER_AT_STATE_DIR) ? issuer->state_line
               : 0;

        (pr[i].warning ? ngx_acme_conf_warn : ngx_acme_conf_error)
            (cf->log, issuer->file, line ? line : issuer->line,
             "acme_issuer \"%V\" %s", &issuer->name, pr[i].text);
    }

    if (acme_issuer_has_error(pr, n)) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_value(issuer->tos, 0);
    ngx_conf_init_value(issuer->verify, 1);
    ngx_conf_init_value(issuer->common_name_in_csr, 0);
    ngx_conf_init_value(issuer->key_reuse, 0);
    ngx_conf_init_value(issuer->key_rollover, 0);

    issuer->ssl.log = cf->log;

    if (ngx_acme_http_ssl_init(cf, &issuer->ssl, &issuer->trusted) != NGX_OK) {
        ngx_acme_conf_error(cf->log, issuer->file,
                            issuer->trusted_line ? issuer->trusted_line
                                                 : issuer->line,
                            "cannot set up TLS for \"acme_issuer %V\" "
                            "(\"ssl_trusted_certificate\" \"%V\")",
                            &issuer->name, &issuer->trusted);
        return NGX_CONF_ERROR;
    }

    if (!issuer->verify && issuer->ssl.ctx) {
        SSL_CTX_set_verify(issuer->ssl.ctx, SSL_VERIFY_NONE, NULL);
    }

    if (issuer->conf.no_store && issuer->account_key_pem.len == 0) {
        return ngx_acme_issuer_memory_key(cf, issuer);
    }

    return NGX_CONF_OK;
}


/*
 * "state_path off" without "account_key FILE": the account key lives in
 * memory only, as nginx-acme's does.  A reload keeps the previous
 * cycle's key of this issuer (same name, same key type), so the account
 * stays; a start generates one (the master, at configuration time, as
 * nginx-acme does; the workers inherit it).  "nginx -t" and "nginx -s"
 * need none.
 */
static char *
ngx_acme_issuer_memory_key(ngx_conf_t *cf, ngx_acme_issuer_t *issuer)
{
    char                  *pem;
    size_t                 len;
    EVP_PKEY              *key;
    ngx_int_t              rc;
    ngx_uint_t             i;
    ngx_cycle_t           *old;
    ngx_acme_issuer_t    **issuers, *o;
    ngx_acme_main_conf_t  *oamcf;

    if (ngx_test_config || ngx_process == NGX_PROCESS_SIGNALLER) {
        return NGX_CONF_OK;
    }

    issuer->account_key_mem = 1;

    old = cf->cycle->old_cycle;
    oamcf = NULL;

    if (old != NULL && !ngx_is_init_cycle(old)
        && old->conf_ctx[ngx_http_module.index] != NULL)
    {
        /* the previous cycle may not have had this module loaded */
        for (i = 0; old->modules[i]; i++) {
            if (old->modules[i] == &ngx_http_acme_module) {
                oamcf = ngx_http_cycle_get_module_main_conf(old,
                                                       ngx_http_acme_module);
                break;
            }
        }
    }

    issuers = oamcf ? oamcf->issuers.elts : NULL;

    for (i = 0; oamcf && i < oamcf->issuers.nelts; i++) {
        o = issuers[i];

        if (o->account_key_mem && o->account_key_pem.len
            && o->conf.account_key == issuer->conf.account_key
            && o->name.len == issuer->name.len
            && ngx_strncmp(o->name.data, issuer->name.data, o->name.len) == 0)
        {
            if (ngx_acme_issuer_keep_key(cf, issuer,
                                         (char *) o->account_key_pem.data,
                                         o->account_key_pem.len)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            return NGX_CONF_OK;
        }
    }

    key = acme_key_generate((acme_key_type_t) issuer->conf.account_key);
    pem = key ? acme_key_to_pem(key, &len) : NULL;
    EVP_PKEY_free(key);

    if (pem == NULL) {
        ngx_acme_conf_error(cf->log, issuer->file, issuer->line,
                            "acme_issuer \"%V\": cannot generate the "
                            "account key kept in memory (\"state_path\" "
                            "\"off\")", &issuer->name);
        return NGX_CONF_ERROR;
    }

    rc = ngx_acme_issuer_keep_key(cf, issuer, pem, len);

    ngx_explicit_memzero(pem, len);
    free(pem);

    if (rc != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Every issuer's store as the workers' user (ngx_acme_core_module's
 * init_conf: after the core module settled "user" or its default, under
 * "nginx -t", at start and on reload): the master (root) creates the store
 * and hands it to that user, who writes it; every directory on the way
 * must be searchable by it.  Errors fail the test / start / reload; a store
 * read-only for the user is a warning.
 */
char *
ngx_acme_issuer_check_user(ngx_cycle_t *cycle)
{
    char                   *rv;
    ngx_uint_t              i;
    ngx_core_conf_t        *ccf;
    ngx_acme_issuer_t     **issuers, *issuer;
    acme_store_user_t       user;
    acme_issuer_problem_t   pr;
    ngx_acme_main_conf_t   *amcf;

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NGX_CONF_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_acme_module);
    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (amcf == NULL || geteuid() != 0
        || ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT || ccf->user == 0
        || ccf->username == NULL)
    {
        return NGX_CONF_OK;
    }

    acme_store_user_init(&user, ccf->username, (uid_t) ccf->user,
                         (gid_t) ccf->group);

    rv = NGX_CONF_OK;
    issuers = amcf->issuers.elts;

    for (i = 0; i < amcf->issuers.nelts; i++) {
        issuer = issuers[i];

        if (issuer->conf.state_dir == NULL
            || !acme_issuer_check_store_user(&issuer->conf,
                                             ngx_acme_issuer_words, &user,
                                             &pr))
        {
            continue;
        }

        (pr.warning ? ngx_acme_conf_warn : ngx_acme_conf_error)
            (cycle->log, issuer->file,
             issuer->state_line ? issuer->state_line : issuer->line,
             "acme_issuer \"%V\" %s", &issuer->name, pr.text);

        if (!pr.warning) {
            rv = NGX_CONF_ERROR;
        }
    }

    return rv;
}


/* uri URL: the ACME directory (RFC 8555 section 7.1.1). */
static char *
ngx_acme_issuer_uri(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    int         rc;
    char        err[ACME_ERRLEN];
    ngx_str_t  *value;

    if (issuer->conf.directory) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rc = acme_issuer_directory((char *) value[1].data, err, sizeof(err));

    if (rc < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"uri\" \"%V\": %s", &value[1], err);
        return NGX_CONF_ERROR;
    }

    if (rc == 1) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0, "\"uri\" \"%V\" %s",
                           &value[1], err);
    }

    issuer->conf.directory = (char *) value[1].data;

    return NGX_CONF_OK;
}


/* contact URL: repeatable; "mailto:" is added to a value without scheme. */
static char *
ngx_acme_issuer_contact(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char        *c, **cp, err[ACME_ERRLEN];
    size_t       size;
    ngx_str_t   *value;

    value = cf->args->elts;
    size = value[1].len + ACME_ISSUER_CONTACT_EXTRA;

    c = ngx_pnalloc(cf->pool, size);
    if (c == NULL) {
        return NGX_CONF_ERROR;
    }

    if (acme_issuer_contact((char *) value[1].data, value[1].len, c, size,
                            err, sizeof(err))
        < 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"contact\": %s",
                           err);
        return NGX_CONF_ERROR;
    }

    cp = ngx_array_push(&issuer->contacts);
    if (cp == NULL) {
        return NGX_CONF_ERROR;
    }

    *cp = c;

    return NGX_CONF_OK;
}


/* A key type ("ecdsa:256", ...) into an int field (acme_key_type_t). */
static char *
ngx_acme_issuer_key_type(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    int              *field;
    ngx_str_t        *value;
    acme_key_type_t   kt;

    field = (int *) (p + cmd->offset);

    if (*field != -1) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (acme_key_type_parse((char *) value[1].data, value[1].len, &kt) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid key type \"%V\" in \"%V\": %s "
                           "(expected ecdsa:256, ecdsa:384, ecdsa:521, "
                           "rsa:2048, rsa:3072 or rsa:4096)", &value[1],
                           &cmd->name,
                           acme_key_type_unsupported((char *) value[1].data,
                                                     value[1].len));
        return NGX_CONF_ERROR;
    }

    *field = kt;

    return NGX_CONF_OK;
}


/*
 * account_key TYPE | FILE: a key type for a new key in the store, or (as
 * nginx-acme's) an existing PEM key file, read here by the master (it may
 * be root-only) and by "nginx -t", kept in memory and never rewritten.
 */
static char *
ngx_acme_issuer_account_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    int               rc;
    char             *pem, err[ACME_ERRLEN];
    size_t            len;
    EVP_PKEY         *key;
    ngx_str_t        *value, file;
    acme_key_type_t   kt;

    value = cf->args->elts;

    /* "ecdsa...", "rsa...": a key type (a file path needs a '/' then) */

    if (ngx_strlchr(value[1].data, value[1].data + value[1].len, '/') == NULL
        && (ngx_strncmp(value[1].data, "ecdsa", 5) == 0
            || ngx_strncmp(value[1].data, "rsa", 3) == 0))
    {
        return ngx_acme_issuer_key_type(cf, cmd, conf);
    }

    if (issuer->conf.account_key != -1 || issuer->account_key_pem.len) {
        return "is duplicate";
    }

    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    err[0] = '\0';
    pem = NULL;
    len = 0;

    rc = acme_store_read((char *) file.data, &pem, &len, 65536, err,
                         sizeof(err));

    key = (rc == 1) ? acme_key_from_pem(pem, len) : NULL;

    if (key == NULL || acme_key_type_of(key, &kt) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"account_key\": cannot load \"%V\": %s",
                           &file, rc == 0 ? "no such file"
                           : rc < 0 ? err
                           : key == NULL ? "not a PEM private key"
                           : "not an ecdsa:256/384/521 or rsa:2048/3072/4096 "
                             "key");
        EVP_PKEY_free(key);

        if (pem) {
            ngx_explicit_memzero(pem, len);
            free(pem);
        }

        return NGX_CONF_ERROR;
    }

    EVP_PKEY_free(key);

    rc = ngx_acme_issuer_keep_key(cf, issuer, pem, len);

    ngx_explicit_memzero(pem, len);
    free(pem);

    if (rc != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    issuer->conf.account_key = kt;

    return NGX_CONF_OK;
}


/*
 * A path relative to the prefix (state_path) or to the configuration
 * directory (ssl_trusted_certificate), NUL-terminated, the line kept for
 * later messages; a state path loses its trailing slashes.
 */
static char *
ngx_acme_issuer_path(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char        *p = conf;
    ngx_str_t   *path, *value;
    ngx_uint_t   state;

    path = (ngx_str_t *) (p + cmd->offset);

    if (path->len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    state = (path == &issuer->state_path);

    *path = value[1];

    if (state) {
        issuer->state_line = cf->conf_file->line;

        if (ngx_strcmp(value[1].data, "off") == 0) {
            /* nginx-acme's: nothing on disk (acme_issuer_conf_t) */
            issuer->conf.no_store = 1;
            return NGX_CONF_OK;
        }

    } else {
        issuer->trusted_line = cf->conf_file->line;
    }

    /* ngx_conf_full_name() keeps the terminating NUL */

    if (ngx_conf_full_name(cf->cycle, path, !state) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    while (state && path->len > 1 && path->data[path->len - 1] == '/') {
        path->data[--path->len] = '\0';
    }

    return NGX_CONF_OK;
}


/*
 * profile NAME [require] (nginx-acme's): the ACME profile newOrder asks
 * for when the directory's meta.profiles lists it; otherwise the default
 * profile with a warning or, with "require", a per-certificate error
 * (acme_order_config_t).
 */
static char *
ngx_acme_issuer_profile(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char        err[ACME_ERRLEN];
    ngx_str_t  *value;

    if (issuer->conf.profile != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* the arguments of a directive are NUL-terminated */
    if (ngx_strlen(value[1].data) != value[1].len
        || acme_issuer_profile_name((char *) value[1].data, err, sizeof(err))
           != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"profile\": %s",
                           value[1].len ? err : "takes the name of a "
                           "profile, not \"\"");
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strcmp(value[2].data, "require") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" of \"profile\": "
                               "only \"require\" is allowed", &value[2]);
            return NGX_CONF_ERROR;
        }
        issuer->conf.profile_require = 1;
    }

    issuer->conf.profile = (char *) value[1].data;

    return NGX_CONF_OK;
}


/*
 * proxy http://[user:password@]host:port | off: every request to the CA
 * goes through this HTTP CONNECT proxy (acme_proxy.h); the proxy's host is
 * the one resolved.
 */
static char *
ngx_acme_issuer_proxy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char        err[ACME_ERRLEN];
    ngx_int_t   rc;
    ngx_str_t  *value;

    if (issuer->conf.proxy_given) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* the arguments of a directive are NUL-terminated; the message never
     * repeats the URL (it may hold a password) */
    if (ngx_strlen(value[1].data) != value[1].len) {
        rc = -1;
        (void) acme_err(err, sizeof(err), "the URL has a bad character");

    } else {
        rc = acme_proxy_check((char *) value[1].data, err, sizeof(err));
    }

    if (rc < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"proxy\": %s", err);
        return NGX_CONF_ERROR;
    }

    issuer->conf.proxy_given = 1;
    issuer->conf.proxy = (rc == 0) ? (char *) value[1].data : NULL;

    return NGX_CONF_OK;
}


/*
 * preferred_chain NAME (nginx-acme's): the issuer commonName of the top
 * certificate of the chain to prefer among those the CA offers (exact
 * bytes); none matching: the default chain.
 */
static char *
ngx_acme_issuer_preferred_chain(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    ngx_str_t  *value;

    if (issuer->conf.preferred_chain != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "takes the issuer name of a chain, not \"\"";
    }

    /* the arguments of a directive are NUL-terminated */
    issuer->conf.preferred_chain = (char *) value[1].data;

    return NGX_CONF_OK;
}


/*
 * key_reuse on|off and key_rollover pinned|off: a key kept for ever and a
 * key made one renewal ahead exclude each other, whichever comes last
 * says so.
 */
static char *
ngx_acme_issuer_key_reuse(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (issuer->key_reuse == 1 && issuer->key_rollover == 1) {
        return "on excludes \"key_rollover pinned\" in the same "
               "acme_issuer block: a renewal either keeps the key or "
               "takes the one pinned ahead";
    }

    return NGX_CONF_OK;
}


static char *
ngx_acme_issuer_key_rollover(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    ngx_str_t  *value;

    if (issuer->key_rollover != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "pinned") == 0) {
        issuer->key_rollover = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        issuer->key_rollover = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"key_rollover\": "
                           "pinned or off", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (issuer->key_reuse == 1 && issuer->key_rollover == 1) {
        return "pinned excludes \"key_reuse on\" in the same acme_issuer "
               "block: a renewal either keeps the key or takes the one "
               "pinned ahead";
    }

    return NGX_CONF_OK;
}


/* accept_terms_of_service [on|off]: no argument means on. */
static char *
ngx_acme_issuer_tos(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    if (cf->args->nelts == 1) {
        if (issuer->tos != NGX_CONF_UNSET) {
            return "is duplicate";
        }

        issuer->tos = 1;
        return NGX_CONF_OK;
    }

    return ngx_conf_set_flag_slot(cf, cmd, conf);
}


/* renew_before_expiry N%: renew when N % of the lifetime is left, 1-99. */
static char *
ngx_acme_issuer_percent(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (issuer->conf.renew_percent > 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = acme_issuer_renew_percent((char *) value[1].data, value[1].len);

    if (n > 0) {
        issuer->conf.renew_percent = n;
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive (expected "
                       "a percentage from 1%% to 99%%)", &value[1],
                       &cmd->name);
    return NGX_CONF_ERROR;
}


/* challenge TYPE...: the types to try in turn after failures. */
static char *
ngx_acme_issuer_challenge(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char         err[ACME_ERRLEN];
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (issuer->conf.n_challenges) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        /* one type a word (challenge=, not this, takes a comma list) */

        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, ',')) {
            ngx_cpystrn((u_char *) err, (u_char *) "list the types as "
                        "separate words", sizeof(err));

        } else if (acme_job_challenges_parse((char *) value[i].data,
                                             issuer->conf.challenges,
                                             &issuer->conf.n_challenges,
                                             err, sizeof(err))
                   == 0)
        {
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" in \"challenge\": %s", &value[i], err);
        return NGX_CONF_ERROR;
    }

    issuer->challenge_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/*
 * external_account_key KID FILE|data:KEY [alg=HS256|HS384|HS512]
 *
 * The key is read now (acme_eab_conf_load), by "nginx -t" too, so a
 * missing or bad key is a configuration error and not a failed order hours
 * later.  Messages name the file, never the key.
 */
static char *
ngx_acme_issuer_eab(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char        *alg, err[ACME_ERRLEN];
    u_char      *spec;
    ngx_str_t   *value, file;
    ngx_uint_t   is_file;

    if (issuer->conf.eab.kid) {
        return "is duplicate";
    }

    value = cf->args->elts;
    alg = NULL;

    if (cf->args->nelts == 4) {
        if (ngx_strncmp(value[3].data, "alg=", 4) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"external_account_key\" (expected "
                               "alg=HS256, alg=HS384 or alg=HS512)",
                               &value[3]);
            return NGX_CONF_ERROR;
        }

        alg = (char *) value[3].data + 4;
    }

    if (ngx_strncmp(value[2].data, "data:", 5) == 0) {
        /* the inline key stays in the configuration text only */
        spec = value[2].data + 5;
        is_file = 0;

    } else {
        file = value[2];

        if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        spec = file.data;
        is_file = 1;
    }

    if (acme_eab_conf_load((char *) value[1].data, (char *) spec, is_file,
                           alg, &issuer->conf.eab, err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"external_account_key\": %s", err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The account key kept in memory (account_key FILE, state_path off): a copy
 * of pem (len octets) in the configuration's pool, NUL-terminated, cleansed
 * by ngx_acme_issuer_cleanup().  The caller still owns and cleanses pem.
 */
static ngx_int_t
ngx_acme_issuer_keep_key(ngx_conf_t *cf, ngx_acme_issuer_t *issuer,
    const char *pem, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(cf->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, pem, len);
    p[len] = '\0';

    issuer->account_key_pem.data = p;
    issuer->account_key_pem.len = len;

    return NGX_OK;
}


/* The secrets of dns_update and external_account_key are cleansed. */
static void
ngx_acme_issuer_cleanup(void *data)
{
    ngx_acme_issuer_t  *issuer = data;

    acme_issuer_conf_clear(&issuer->conf);

    if (issuer->account_key_pem.len) {
        ngx_explicit_memzero(issuer->account_key_pem.data,
                             issuer->account_key_pem.len);
    }
}


/* A time of 0 would make every network step fail at once. */
static char *
ngx_acme_check_positive_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *msp = data;

    if (*msp == 0) {
        return "must be more than 0";
    }

    return NGX_CONF_OK;
}


static char *
ngx_acme_check_retry_delay(ngx_conf_t *cf, void *post, void *data)
{
    time_t  *sp = data;

    if (*sp < 1 || *sp > 86400) {
        return "must be a time between 1s and 1d";
    }

    return NGX_CONF_OK;
}


static char *
ngx_acme_check_max_orders(ngx_conf_t *cf, void *post, void *data)
{
    ngx_int_t  *np = data;

    if (*np < 1 || *np > ACME_JOB_MAX_ORDERS_MAX) {
        return "must be a number from 1 to 64";
    }

    return NGX_CONF_OK;
}
