/*
 * ngx_http_acme_module: the module, its directive table and configuration
 * objects (create, merge), acme_shared_zone, and the helpers that log a
 * configuration message for a remembered file:line.  The other lifetimes
 * are in ngx_acme_certificate.c (acme_certificate), ngx_acme_postconf.c
 * (postconfiguration checks), ngx_acme_init.c (the master's init_module)
 * and ngx_acme_worker.c (each worker's timer).
 */

#include "ngx_acme.h"


static void *ngx_acme_create_main_conf(ngx_conf_t *cf);
static void *ngx_acme_create_srv_conf(ngx_conf_t *cf);
static char *ngx_acme_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_acme_shared_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_core_init_conf(ngx_cycle_t *cycle, void *conf);


static ngx_command_t  ngx_http_acme_commands[] = {

    { ngx_string("acme_shared_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_acme_shared_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("acme_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_acme_issuer_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("acme_event_command"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_acme_event_command_main,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("acme_expiry_warning"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_acme_event_warning_main,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("acme_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_acme_store,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("acme_certificate"),
      NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_acme_certificate,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("acme_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_acme_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_acme_module_ctx = {
    ngx_acme_variables_add,                /* preconfiguration */
    ngx_acme_postconfiguration,            /* postconfiguration */

    ngx_acme_create_main_conf,             /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_acme_create_srv_conf,              /* create server configuration */
    ngx_acme_merge_srv_conf,               /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_acme_module = {
    NGX_MODULE_V1,
    &ngx_http_acme_module_ctx,             /* module context */
    ngx_http_acme_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_acme_init_module,                  /* init module */
    ngx_acme_init_process,                 /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_acme_exit_process,                 /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * A core module without directives, in the same shared object: its
 * init_conf runs after the core module's (which settles the "user" the
 * workers run as, wherever the directive is, or its default) and before
 * anything is created, under "nginx -t", at start and on reload alike; an
 * error there fails the test, the start, or the reload (the old
 * configuration stays).  It checks each issuer's store as that user.
 */
static ngx_core_module_t  ngx_acme_core_module_ctx = {
    ngx_string("acme_core"),
    NULL,                                  /* create configuration */
    ngx_acme_core_init_conf                /* init configuration */
};


ngx_module_t  ngx_acme_core_module = {
    NGX_MODULE_V1,
    &ngx_acme_core_module_ctx,             /* module context */
    NULL,                                  /* module directives */
    NGX_CORE_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static char *
ngx_acme_core_init_conf(ngx_cycle_t *cycle, void *conf)
{
    return ngx_acme_issuer_check_user(cycle);
}


/* A NUL-terminated copy. */
u_char *
ngx_acme_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return p;
}


/* Logs a configuration message (error or warning) for a place remembered
 * earlier, as nginx's own "... in file:line". */
static void
ngx_acme_conf_vlog(ngx_uint_t level, ngx_log_t *log, u_char *file,
    ngx_uint_t line, const char *fmt, va_list args)
{
    u_char  *p;
    u_char   buf[NGX_MAX_CONF_ERRSTR];

    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);

    ngx_log_error(level, log, 0, "%*s in %s:%ui",
                  (size_t) (p - buf), buf, file, line);
}


void
ngx_acme_conf_error(ngx_log_t *log, u_char *file, ngx_uint_t line,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    ngx_acme_conf_vlog(NGX_LOG_EMERG, log, file, line, fmt, args);
    va_end(args);
}


void
ngx_acme_conf_warn(ngx_log_t *log, u_char *file, ngx_uint_t line,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    ngx_acme_conf_vlog(NGX_LOG_WARN, log, file, line, fmt, args);
    va_end(args);
}


static void *
ngx_acme_create_main_conf(ngx_conf_t *cf)
{
    ngx_acme_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_acme_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->issuers, cf->pool, 2,
                       sizeof(ngx_acme_issuer_t *))
        != NGX_OK
        || ngx_array_init(&amcf->certs, cf->pool, 4, sizeof(ngx_acme_cert_t *))
           != NGX_OK
        || ngx_array_init(&amcf->servers, cf->pool, 4,
                          sizeof(ngx_acme_server_t *))
           != NGX_OK)
    {
        return NULL;
    }

    return amcf;
}


static void *
ngx_acme_create_srv_conf(ngx_conf_t *cf)
{
    ngx_acme_srv_conf_t  *ascf;

    ascf = ngx_pcalloc(cf->pool, sizeof(ngx_acme_srv_conf_t));
    if (ascf == NULL) {
        return NULL;
    }

    ascf->key_type = -1;

    return ascf;
}


/*
 * Runs before ngx_http_ssl_module merges (ngx_module_order in config): a
 * managed server's own ssl_certificate and ssl_certificate_key are the
 * bridge (ngx_acme_bridge.c), checked before nginx loads those files.
 */
static char *
ngx_acme_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_acme_srv_conf_t  *ascf = child;

    ngx_http_ssl_srv_conf_t  *sscf;

    if (ascf->issuer_name.len == 0) {
        return NGX_CONF_OK;
    }

    /* "ssl_certificate $acme_certificate" after acme_certificate */

    if (ngx_acme_variables_ssl_pair(cf, ascf->file, ascf->line) == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (ngx_acme_bridge_merge(cf, ascf, sscf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_acme_ssl_placeholder_merge(ascf, sscf);

    return NGX_CONF_OK;
}


/* acme_shared_zone zone=name:size */
static char *
ngx_acme_shared_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_main_conf_t  *amcf = conf;

    u_char     *p;
    ssize_t     size;
    ngx_str_t  *value, s;

    if (amcf->zone_name.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": \"acme_shared_zone\" "
                           "must have \"zone\" (zone=name:size)", &value[1]);
        return NGX_CONF_ERROR;
    }

    s.data = value[1].data + 5;
    s.len = value[1].len - 5;

    p = ngx_strlchr(s.data, s.data + s.len, ':');
    if (p == NULL || p == s.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", expected \"name:size\"", &s);
        return NGX_CONF_ERROR;
    }

    amcf->zone_name.data = s.data;
    amcf->zone_name.len = p - s.data;

    s.len = s.data + s.len - (p + 1);
    s.data = p + 1;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\" (at least %uz)", &s,
                           8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    amcf->zone_size = size;

    return NGX_CONF_OK;
}
