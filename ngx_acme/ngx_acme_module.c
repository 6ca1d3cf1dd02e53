/*
 * ngx_http_acme_module: directives, configuration checks, the master's
 * store preparation (init_module) and each worker's one-second timer that
 * picks up new certificates, holds the ACME lease and schedules orders.
 */

#include "ngx_acme.h"
#include "acme_names.h"


static void *ngx_acme_create_main_conf(ngx_conf_t *cf);
static void *ngx_acme_create_srv_conf(ngx_conf_t *cf);
static char *ngx_acme_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_acme_postconfiguration(ngx_conf_t *cf);
static char *ngx_acme_shared_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_acme_certificate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_acme_issuer_http(ngx_conf_t *cf,
    ngx_acme_issuer_t *issuer, ngx_http_core_loc_conf_t *clcf);
static ngx_int_t ngx_acme_server_listens_ssl(ngx_http_core_main_conf_t *cmcf,
    ngx_http_core_srv_conf_t *cscf);
static ngx_int_t ngx_acme_cert_names(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf, ngx_acme_srv_conf_t *ascf,
    ngx_acme_cert_t *cert);
static ngx_int_t ngx_acme_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_acme_init_process(ngx_cycle_t *cycle);
static void ngx_acme_exit_process(ngx_cycle_t *cycle);
static void ngx_acme_tick(ngx_event_t *ev);
static void ngx_acme_schedule(ngx_acme_main_conf_t *amcf, ngx_log_t *log);
static ngx_uint_t ngx_acme_alpn_busy(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert);
static ngx_uint_t ngx_acme_unfinished(ngx_acme_main_conf_t *amcf,
    ngx_acme_cert_t *cert, acme_cert_state_t *st, ngx_log_t *log);
static void ngx_acme_abort_all(ngx_acme_main_conf_t *amcf);


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

    { ngx_string("acme_certificate"),
      NGX_HTTP_SRV_CONF|NGX_CONF_1MORE,
      ngx_acme_certificate,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("acme_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_acme_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_acme_module_ctx = {
    NULL,                                  /* preconfiguration */
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


static void
ngx_acme_conf_warn(ngx_log_t *log, u_char *file, ngx_uint_t line,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    ngx_acme_conf_vlog(NGX_LOG_WARN, log, file, line, fmt, args);
    va_end(args);
}


/*
 * Whether a client asking for name (SNI) can reach this server: an exact
 * server_name (case-insensitive), "*.suffix" (any subdomain, as nginx) or
 * ".suffix" (the suffix and its subdomains).  A regular expression
 * server_name counts as a match: it cannot be judged here.  IP literals
 * are reached without SNI and always count.
 */
static ngx_uint_t
ngx_acme_server_has_name(ngx_http_core_srv_conf_t *cscf, ngx_str_t *name)
{
    size_t                   len;
    u_char                  *pat;
    ngx_uint_t               i;
    ngx_http_server_name_t  *sn;

    if (ngx_strlchr(name->data, name->data + name->len, ':') != NULL
        || ngx_inet_addr(name->data, name->len) != INADDR_NONE)
    {
        return 1;
    }

    sn = cscf->server_names.elts;

    for (i = 0; i < cscf->server_names.nelts; i++) {

#if (NGX_PCRE)
        if (sn[i].regex) {
            return 1;
        }
#endif

        pat = sn[i].name.data;
        len = sn[i].name.len;

        if (len > 1 && pat[len - 1] == '.') {
            len--;                      /* "a.example.com." */
        }

        if (len == name->len && ngx_strncasecmp(pat, name->data, len) == 0) {
            return 1;
        }

        if (len > 1 && (pat[0] == '.' || (pat[0] == '*' && pat[1] == '.'))) {
            if (pat[0] == '*') {
                pat++;
                len--;
            }

            /* pat is ".suffix" */
            if (name->len > len
                && ngx_strncasecmp(name->data + name->len - len, pat, len)
                   == 0)
            {
                return 1;
            }

            if (sn[i].name.data[0] == '.' && name->len == len - 1
                && ngx_strncasecmp(name->data, pat + 1, len - 1) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
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
    ascf->challenge = NGX_ACME_CHALLENGE_UNSET;

    return ascf;
}


/*
 * Runs before ngx_http_ssl_module merges (ngx_module_order in config), so a
 * managed server with its own ssl_certificate is refused with this message
 * before nginx tries to load those files.
 */
static char *
ngx_acme_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_acme_srv_conf_t  *ascf = child;

    ngx_http_ssl_srv_conf_t  *sscf;

    if (ascf->issuer_name.len == 0) {
        return NGX_CONF_OK;
    }

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (sscf->certificates == NULL
        || sscf->certificates == NGX_CONF_UNSET_PTR
        || sscf->certificates->nelts != 1
        || sscf->certificate_keys == NULL
        || sscf->certificate_keys == NGX_CONF_UNSET_PTR
        || sscf->certificate_keys->nelts != 1)
    {
        ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                            "\"ssl_certificate\" and \"ssl_certificate_key\" "
                            "cannot be used in a server with "
                            "\"acme_certificate\", which manages its "
                            "certificate");
        return NGX_CONF_ERROR;
    }

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
                           "invalid parameter \"%V\", expected "
                           "\"zone=name:size\"", &value[1]);
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


/* acme_issuer name { ... } */
/* "http-01" -> NGX_ACME_HTTP_01, ...; NGX_ERROR when unknown. */
ngx_int_t
ngx_acme_challenge_parse(ngx_str_t *value)
{
    if (value->len == sizeof("http-01") - 1
        && ngx_strncmp(value->data, "http-01", value->len) == 0)
    {
        return NGX_ACME_HTTP_01;
    }

    if (value->len == sizeof("tls-alpn-01") - 1
        && ngx_strncmp(value->data, "tls-alpn-01", value->len) == 0)
    {
        return NGX_ACME_TLS_ALPN_01;
    }

    if (value->len == sizeof("dns-01") - 1
        && ngx_strncmp(value->data, "dns-01", value->len) == 0)
    {
        return NGX_ACME_DNS_01;
    }

    return NGX_ERROR;
}


/* Appends one type to a list: NULL, or why not. */
char *
ngx_acme_challenges_add(ngx_acme_challenges_t *c, ngx_str_t *value)
{
    ngx_int_t   n;
    ngx_uint_t  i;

    n = ngx_acme_challenge_parse(value);

    if (n == NGX_ERROR) {
        return "invalid challenge type (expected http-01, tls-alpn-01 or "
               "dns-01)";
    }

    for (i = 0; i < c->n; i++) {
        if (c->type[i] == (ngx_uint_t) n) {
            return "is listed twice";
        }
    }

    if (c->n == NGX_ACME_CHALLENGES_MAX) {
        return "too many challenge types";
    }

    c->type[c->n++] = (ngx_uint_t) n;

    return NULL;
}


/* The type of the attempt that follows "failures" consecutive failures. */
ngx_uint_t
ngx_acme_cert_challenge(ngx_acme_cert_t *cert, ngx_uint_t failures)
{
    if (cert->challenges.n == 0) {
        return cert->challenge;
    }

    return cert->challenges.type[acme_job_challenge_index(
                                     cert->challenges.n, (unsigned) failures)];
}


/* Whether any attempt of cert may use that type. */
ngx_uint_t
ngx_acme_cert_uses(ngx_acme_cert_t *cert, ngx_uint_t type)
{
    ngx_uint_t  i;

    for (i = 0; i < cert->challenges.n; i++) {
        if (cert->challenges.type[i] == type) {
            return 1;
        }
    }

    return cert->challenge == type;
}


/* The ACME name of a challenge type (the engine's challenge_type). */
const char *
ngx_acme_challenge_name(ngx_uint_t type)
{
    switch (type) {
    case NGX_ACME_TLS_ALPN_01:
        return "tls-alpn-01";
    case NGX_ACME_DNS_01:
        return "dns-01";
    default:
        return "http-01";
    }
}


/* acme_certificate issuer [names...] [key=spec] [challenge=type] */
static char *
ngx_acme_certificate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_srv_conf_t  *head = conf;

    char                       name[ACME_NAME_BUFLEN], err[ACME_ERRLEN];
    u_char                    *p, *last_p, *comma;
    ngx_str_t                 *value, *s, type;
    ngx_uint_t                 i;
    const char                *why;
    ngx_array_t               *fallback_names;
    acme_key_type_t            kt;
    ngx_acme_main_conf_t      *amcf;
    ngx_http_server_name_t    *sn;
    ngx_acme_srv_conf_t       *ascf, **last;
    ngx_http_core_srv_conf_t  *cscf;

    /* a further certificate of the server, e.g. for another key type */

    if (head->issuer_name.len) {
        ascf = ngx_pcalloc(cf->pool, sizeof(ngx_acme_srv_conf_t));
        if (ascf == NULL) {
            return NGX_CONF_ERROR;
        }

        ascf->key_type = -1;
        ascf->challenge = NGX_ACME_CHALLENGE_UNSET;

        for (last = &head->next; *last; last = &(*last)->next) {
            /* void */
        }

        *last = ascf;

    } else {
        ascf = head;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_acme_module);

    value = cf->args->elts;

    ascf->issuer_name = value[1];
    ascf->file = cf->conf_file->file.name.data;
    ascf->line = cf->conf_file->line;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {

            if (acme_key_type_parse((char *) value[i].data + 4,
                                    value[i].len - 4, &kt)
                != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid key type \"%V\" in "
                                   "\"acme_certificate\" (expected "
                                   "key=ecdsa:256, ecdsa:384, rsa:2048, "
                                   "rsa:3072 or rsa:4096)", &value[i]);
                return NGX_CONF_ERROR;
            }

            ascf->key_type = kt;
            continue;
        }

        if (ngx_strncmp(value[i].data, "challenge=", 10) == 0) {

            /* challenge=type[,type...]: tried in turn after failures */

            p = value[i].data + 10;
            last_p = value[i].data + value[i].len;
            ascf->challenges.n = 0;

            do {
                comma = ngx_strlchr(p, last_p, ',');

                type.data = p;
                type.len = (comma ? comma : last_p) - p;

                why = ngx_acme_challenges_add(&ascf->challenges, &type);
                if (why) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "\"%V\" in \"acme_certificate\": "
                                       "\"%V\" %s", &value[i], &type, why);
                    return NGX_CONF_ERROR;
                }

                p = comma ? comma + 1 : last_p;

            } while (comma);

            ascf->challenge = ascf->challenges.type[0];
            continue;
        }

        /* acme_names.h; whether a wildcard has dns-01 is checked later */

        if (acme_name_normalise((char *) value[i].data, value[i].len,
                                ACME_NAMES_DNS01, name, sizeof(name),
                                err, sizeof(err))
            < 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "name \"%V\" in \"acme_certificate\" "
                               "cannot be certified: it %s",
                               &value[i], err);
            return NGX_CONF_ERROR;
        }

        if (ascf->names == NULL) {
            ascf->names = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
            if (ascf->names == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        /* duplicates go in postconfiguration (acme_names_set) */

        s = ngx_array_push(ascf->names);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        s->len = ngx_strlen(name);
        s->data = ngx_pnalloc(cf->pool, s->len + 1);
        if (s->data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(s->data, name, s->len + 1);
    }

    if (ascf->key_type == -1) {
        ascf->key_type = ACME_KEY_DEFAULT;
    }

    if (ascf != head) {
        /* the first acme_certificate put the placeholder in place */
        ascf->fallback_cert = head->fallback_cert;
        ascf->fallback_key = head->fallback_key;
        return NGX_CONF_OK;
    }

    /*
     * The fallback certificate names what is known now; server_name may
     * still follow, which only matters for a placeholder's looks.
     */

    fallback_names = ascf->names;

    if (fallback_names == NULL) {
        cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);

        fallback_names = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (fallback_names == NULL) {
            return NGX_CONF_ERROR;
        }

        sn = cscf->server_names.elts;

        for (i = 0; i < cscf->server_names.nelts; i++) {
#if (NGX_PCRE)
            if (sn[i].regex) {
                continue;
            }
#endif
            if (acme_name_normalise((char *) sn[i].name.data,
                                    sn[i].name.len, ACME_NAMES_DNS01,
                                    name, sizeof(name), err, sizeof(err))
                < 0)
            {
                continue;
            }

            s = ngx_array_push(fallback_names);
            if (s == NULL) {
                return NGX_CONF_ERROR;
            }

            s->len = ngx_strlen(name);
            s->data = ngx_pnalloc(cf->pool, s->len + 1);
            if (s->data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(s->data, name, s->len + 1);
        }
    }

    if (ngx_acme_ssl_fallback(cf, amcf, ascf, fallback_names) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_acme_server_listens_ssl(ngx_http_core_main_conf_t *cmcf,
    ngx_http_core_srv_conf_t *cscf)
{
    ngx_uint_t                  p, a, s;
    ngx_http_conf_port_t       *port;
    ngx_http_conf_addr_t       *addr;
    ngx_http_core_srv_conf_t  **cscfp;

    if (cmcf->ports == NULL) {
        return 0;
    }

    port = cmcf->ports->elts;

    for (p = 0; p < cmcf->ports->nelts; p++) {

        addr = port[p].addrs.elts;

        for (a = 0; a < port[p].addrs.nelts; a++) {

            if (!addr[a].opt.ssl) {
                continue;
            }

            cscfp = addr[a].servers.elts;

            for (s = 0; s < addr[a].servers.nelts; s++) {
                if (cscfp[s] == cscf) {
                    return 1;
                }
            }
        }
    }

    return 0;
}


/*
 * cert->names and cert->id from the explicit names, else server_name, by
 * the rules of acme_names.h: cert->names are the order identifiers (the
 * names a wildcard of the set covers are served, not ordered), the id
 * comes from the first normalised name.
 */
static ngx_int_t
ngx_acme_cert_names(ngx_conf_t *cf, ngx_http_core_srv_conf_t *cscf,
    ngx_acme_srv_conf_t *ascf, ngx_acme_cert_t *cert)
{
    char                     *id, err[ACME_ERRLEN];
    size_t                    len, *lens, bad;
    unsigned                  flags;
    ngx_str_t                 name, *in;
    ngx_uint_t                i, n;
    const char              **names, **np;
    acme_names_t              set;
    ngx_http_server_name_t   *sn;

    flags = (cert->challenges.n == 1 && cert->challenge == NGX_ACME_DNS_01)
            ? ACME_NAMES_DNS01 : 0;

    if (ascf->names) {
        in = ascf->names->elts;
        n = ascf->names->nelts;

    } else {
        sn = cscf->server_names.elts;
        n = cscf->server_names.nelts;

        in = ngx_palloc(cf->temp_pool, (n ? n : 1) * sizeof(ngx_str_t));
        if (in == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < n; i++) {
#if (NGX_PCRE)
            if (sn[i].regex) {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"acme_certificate\" cannot use "
                                    "the regular expression server name "
                                    "\"~%V\"; list the names in "
                                    "\"acme_certificate\"", &sn[i].name);
                return NGX_ERROR;
            }
#endif
            in[i] = sn[i].name;
        }

        flags |= ACME_NAMES_SERVER_NAME;
    }

    names = ngx_palloc(cf->temp_pool, (n ? n : 1) * sizeof(char *));
    lens = ngx_palloc(cf->temp_pool, (n ? n : 1) * sizeof(size_t));
    if (names == NULL || lens == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        names[i] = (const char *) in[i].data;
        lens[i] = in[i].len;
    }

    if (acme_names_set(&set, names, lens, n, flags, &bad, err, sizeof(err))
        != 0)
    {
        if (bad == n && ascf->names == NULL) {
            ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                "\"acme_certificate\" has no usable names: "
                                "set \"server_name\" or list the names");

        } else if (bad == n) {
            ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                "\"acme_certificate\": %s", err);

        } else {
            ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                "\"acme_certificate\" cannot use %s\"%V\": "
                                "it %s%s",
                                ascf->names ? "name " : "server name ",
                                &in[bad], err,
                                ngx_strstr(err, "dns-01")
                                ? " (\"challenge dns-01\" in the issuer or "
                                  "challenge=dns-01)" : "");
        }

        return NGX_ERROR;
    }

    if (ngx_array_init(&cert->names, cf->pool, set.n_order, sizeof(char *))
        != NGX_OK)
    {
        goto failed;
    }

    for (i = 0; ascf->names && i < set.n_names; i++) {
        name.data = (u_char *) set.names[i];
        name.len = ngx_strlen(set.names[i]);

        if (!ngx_acme_server_has_name(cscf, &name)) {
            ngx_acme_conf_warn(cf->log, ascf->file, ascf->line,
                               "\"acme_certificate\" name \"%V\" "
                               "is not a \"server_name\" of this "
                               "server; clients asking for it "
                               "(SNI) will not reach it", &name);
        }
    }

    for (i = 0; i < set.n_order; i++) {
        np = ngx_array_push(&cert->names);
        if (np == NULL) {
            goto failed;
        }

        name.data = (u_char *) set.order[i];
        name.len = ngx_strlen(set.order[i]);

        *np = (const char *) ngx_acme_cstr(cf->pool, &name);
        if (*np == NULL) {
            goto failed;
        }
    }

    id = acme_store_cert_id(set.names[0], cert->key_type);
    if (id == NULL) {
        goto failed;
    }

    len = ngx_strlen(id);

    if (len >= NGX_ACME_ID_LEN) {
        free(id);
        ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                            "\"acme_certificate\": name \"%s\" is too "
                            "long for a certificate id", set.names[0]);
        goto failed;
    }

    cert->id.data = ngx_pnalloc(cf->pool, len + 1);
    if (cert->id.data == NULL) {
        free(id);
        goto failed;
    }

    ngx_memcpy(cert->id.data, id, len + 1);
    cert->id.len = len;
    free(id);

    acme_names_free(&set);

    return NGX_OK;

failed:

    acme_names_free(&set);

    return NGX_ERROR;
}


static ngx_int_t
ngx_acme_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                  s, i, same;
    ngx_acme_cert_t            *cert, **certs, **cp;
    ngx_acme_issuer_t          *issuer, **issuers;
    ngx_acme_srv_conf_t        *ascf, *head;
    ngx_acme_main_conf_t       *amcf;
    ngx_http_ssl_srv_conf_t    *sscf;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_core_srv_conf_t  **cscfp, *cscf;
    ngx_http_core_main_conf_t  *cmcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_acme_module);
    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    cscfp = cmcf->servers.elts;

    for (s = 0; s < cmcf->servers.nelts; s++) {

        cscf = cscfp[s];
        head = cscf->ctx->srv_conf[ngx_http_acme_module.ctx_index];

        if (head->issuer_name.len == 0) {
            continue;
        }

        sscf = cscf->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

        for (ascf = head; ascf; ascf = ascf->next) {

            issuer = NULL;
            issuers = amcf->issuers.elts;

            for (i = 0; i < amcf->issuers.nelts; i++) {
                if (issuers[i]->name.len == ascf->issuer_name.len
                    && ngx_strncmp(issuers[i]->name.data,
                                   ascf->issuer_name.data,
                                   ascf->issuer_name.len) == 0)
                {
                    issuer = issuers[i];
                    break;
                }
            }

            if (issuer == NULL) {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"acme_certificate\" refers to unknown "
                                    "acme_issuer \"%V\"", &ascf->issuer_name);
                return NGX_ERROR;
            }

            /* the names: explicit, else the server's server_name */

            cert = ngx_pcalloc(cf->pool, sizeof(ngx_acme_cert_t));
            if (cert == NULL) {
                return NGX_ERROR;
            }

            cert->issuer = issuer;
            cert->key_type = (acme_key_type_t) ascf->key_type;
            cert->challenges = (ascf->challenge != NGX_ACME_CHALLENGE_UNSET)
                               ? ascf->challenges : issuer->challenges;
            cert->challenge = cert->challenges.type[0];

            for (i = 0; i < cert->challenges.n; i++) {
                cert->types[i] = ngx_acme_challenge_name(
                                                  cert->challenges.type[i]);
            }

            if (ngx_acme_cert_names(cf, cscf, ascf, cert) != NGX_OK) {
                return NGX_ERROR;
            }

            /* the server must be reachable over TLS */

            if (!ngx_acme_server_listens_ssl(cmcf, cscf) && !sscf->enable) {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"acme_certificate\" is used in a server "
                                    "without \"listen ... ssl\"");
                return NGX_ERROR;
            }

            if (sscf->certificates == NULL
                || sscf->certificates->nelts != 1
                || ((ngx_str_t *) sscf->certificates->elts)->data
                   != ascf->fallback_cert->data
                || sscf->certificate_keys == NULL
                || sscf->certificate_keys->nelts != 1)
            {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"ssl_certificate\" and "
                                    "\"ssl_certificate_key\" cannot be used in a "
                                    "server with \"acme_certificate\", which "
                                    "manages its certificate");
                return NGX_ERROR;
            }

            if (ngx_acme_cert_uses(cert, NGX_ACME_DNS_01)
                && issuer->dns_server.host == NULL && issuer->dns_hook == NULL)
            {
                ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                    "\"acme_certificate\" uses dns-01, but "
                                    "\"acme_issuer %V\" has neither "
                                    "\"dns_update\" nor \"dns_hook\"",
                                    &issuer->name);
                return NGX_ERROR;
            }

            cert->rnd = acme_job_seed((char *) cert->id.data);
            cert->file = ascf->file;
            cert->line = ascf->line;

            /* servers with the same certificate share one */

            certs = amcf->certs.elts;

            for (i = 0; i < amcf->certs.nelts; i++) {

                same = acme_names_same(
                           (const char *const *) certs[i]->names.elts,
                           certs[i]->names.nelts,
                           (const char *const *) cert->names.elts,
                           cert->names.nelts);

                same = (same && certs[i]->issuer == cert->issuer
                        && certs[i]->challenges.n == cert->challenges.n
                        && ngx_memcmp(certs[i]->challenges.type,
                                      cert->challenges.type,
                                      cert->challenges.n * sizeof(ngx_uint_t))
                           == 0);

                /* the same names in another order: the same certificate */

                if (ngx_strcmp(certs[i]->id.data, cert->id.data) != 0) {
                    if (same && certs[i]->key_type == cert->key_type) {
                        cert = certs[i];
                        break;
                    }

                    continue;
                }

                if (!same) {
                    ngx_acme_conf_error(cf->log, ascf->file, ascf->line,
                                        "certificate \"%V\" is managed with "
                                        "other names, issuer or challenge in "
                                        "%s:%ui",
                                        &cert->id, certs[i]->file,
                                        certs[i]->line);
                    return NGX_ERROR;
                }

                cert = certs[i];
                break;
            }

            if (i == amcf->certs.nelts) {
                cp = ngx_array_push(&amcf->certs);
                if (cp == NULL) {
                    return NGX_ERROR;
                }

                *cp = cert;
            }

            ascf->cert = cert;

            if (ngx_acme_cert_uses(cert, NGX_ACME_TLS_ALPN_01)) {
                amcf->tls_alpn = 1;
            }
        }

        if (sscf->ssl.ctx) {
            if (ngx_acme_ssl_set_callback(cf, sscf->ssl.ctx, head) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    if (amcf->tls_alpn && ngx_acme_alpn_init(cf, amcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (amcf->certs.nelts == 0 && amcf->zone_name.len == 0
        && amcf->issuers.nelts == 0)
    {
        /* the module is loaded but unused */
        return NGX_OK;
    }

    if (ngx_acme_shm_add(cf, amcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (amcf->certs.nelts == 0) {
        return NGX_OK;
    }

    amcf->thread_pool = ngx_thread_pool_add(cf, NULL);
    if (amcf->thread_pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_acme_challenge_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    issuers = amcf->issuers.elts;

    for (i = 0; i < amcf->issuers.nelts; i++) {
        if (ngx_acme_issuer_http(cf, issuers[i], clcf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* The HTTP client settings of an issuer. */
static ngx_int_t
ngx_acme_issuer_http(ngx_conf_t *cf, ngx_acme_issuer_t *issuer,
    ngx_http_core_loc_conf_t *clcf)
{
    u_char      *p;
    char         err[ACME_ERRLEN];
    ngx_url_t    u;
    acme_url_t   url;

    issuer->http.ssl = &issuer->ssl;
    issuer->http.connect_timeout = issuer->timeout;
    issuer->http.timeout = issuer->timeout;
    issuer->http.max_body = ACME_HTTP_MAX_BODY;

    /* http{} always has a resolver; one without servers is a placeholder */

    if (clcf->resolver && clcf->resolver->connections.nelts) {
        issuer->http.resolver = clcf->resolver;
        issuer->http.resolver_timeout = clcf->resolver_timeout;
    }

    if (acme_url_parse((char *) issuer->uri.data, &url, err, sizeof(err))
        != 0)
    {
        ngx_acme_conf_error(cf->log, issuer->file, issuer->line,
                            "invalid \"uri\": %s", err);
        return NGX_ERROR;
    }

    issuer->http.static_host.len = ngx_strlen(url.host);
    issuer->http.static_host.data = ngx_pnalloc(cf->pool,
                                         issuer->http.static_host.len + 1);
    if (issuer->http.static_host.data == NULL) {
        acme_url_free(&url);
        return NGX_ERROR;
    }

    ngx_memcpy(issuer->http.static_host.data, url.host,
               issuer->http.static_host.len + 1);

    /*
     * Resolve the directory host now for workers without a "resolver";
     * not under "nginx -t", which must contact nobody.
     */

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = ngx_pnalloc(cf->pool, ngx_strlen(url.host) + 16);
    if (u.url.data == NULL) {
        acme_url_free(&url);
        return NGX_ERROR;
    }

    if (ngx_strchr(url.host, ':')) {
        p = ngx_sprintf(u.url.data, "[%s]:%d", url.host, url.port);

    } else {
        p = ngx_sprintf(u.url.data, "%s:%d", url.host, url.port);
    }

    u.url.len = p - u.url.data;
    u.default_port = (in_port_t) url.port;
    u.no_resolve = ngx_test_config ? 1 : 0;

    acme_url_free(&url);

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (issuer->http.resolver == NULL && !ngx_test_config) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "acme: cannot resolve \"%V\" of acme_issuer \"%V\" "
                          "(%s) and no \"resolver\" is configured",
                          &u.url, &issuer->name, u.err ? u.err : "error");
        }

        return NGX_OK;
    }

    issuer->http.static_addrs = u.addrs;
    issuer->http.static_naddrs = u.naddrs;

    return NGX_OK;
}


/*
 * Master (also on reload), not under "nginx -t": creates the store
 * directories for the worker user and puts stored certificates into the
 * zone so that workers serve them from their first handshake.
 *
 * The master runs as root and the store belongs to the worker user, who
 * may have put symlinks or hard links anywhere below state_path: the store
 * is only reached through directory descriptors (acme_store_dir_t), and an
 * entry that is refused leaves the certificate as if nothing were stored.
 */
static void
ngx_acme_init_store(ngx_cycle_t *cycle, ngx_acme_cert_t *cert, uid_t uid,
    gid_t gid, acme_store_dir_t *cd, u_char *store_err, size_t len)
{
    int               e;
    char              err[ACME_ERRLEN], warn[ACME_ERRLEN];
    ngx_uint_t        level;
    acme_store_dir_t  rd;

    *cd = (acme_store_dir_t) ACME_STORE_DIR_INIT;
    *store_err = '\0';

    if (acme_store_dir_open_root(&rd, (char *) cert->issuer->state_path.data,
                                 uid, gid, 1, warn, sizeof(warn),
                                 err, sizeof(err))
        != 0)
    {
        e = errno;
        goto failed;
    }

    if (warn[0]) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "acme: state_path of \"acme_issuer %V\": %s",
                      &cert->issuer->name, warn);
    }

    if (acme_store_dir_open_cert(cd, &rd, (char *) cert->id.data, 1,
                                 err, sizeof(err))
        != 0)
    {
        e = errno;
        acme_store_dir_close(&rd);
        goto failed;
    }

    acme_store_dir_close(&rd);

    if (acme_store_dir_read_only(cd)) {
        ngx_snprintf(store_err, len - 1, "read-only file system: \"%s\"%Z",
                     cd->path);
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "acme: certificate \"%V\": the store is on a "
                      "read-only file system (%s): stored certificates are "
                      "served, new ones cannot be stored until it is "
                      "writable", &cert->id, cd->path);
    }

    return;

failed:

    ngx_snprintf(store_err, len - 1, "%s%Z", err);

    level = (e == EROFS) ? NGX_LOG_WARN
            : (e == ELOOP || e == EPERM) ? NGX_LOG_ERR : NGX_LOG_ALERT;

    ngx_log_error(level, cycle->log, 0,
                  "acme: certificate \"%V\": store not usable, served as "
                  "if nothing were stored: %s", &cert->id, err);
}


static ngx_int_t
ngx_acme_init_module(ngx_cycle_t *cycle)
{
    char                   err[ACME_ERRLEN], *pem;
    size_t                 len;
    uid_t                  uid;
    gid_t                  gid;
    u_char                 store_err[256];
    ngx_int_t              rc;
    ngx_uint_t             i, created;
    ngx_core_conf_t       *ccf;
    ngx_acme_cert_t      **certs, *cert;
    ngx_acme_slot_t       *slot;
    acme_store_dir_t       cd;
    acme_cert_info_t       info;
    acme_cert_state_t      st;
    ngx_acme_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_acme_module);

    if (amcf == NULL || amcf->shm_zone == NULL || ngx_test_config) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    uid = (uid_t) -1;
    gid = (gid_t) -1;

    if (geteuid() == 0 && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        uid = ccf->user;
        gid = ccf->group;
    }

    certs = amcf->certs.elts;

    for (i = 0; i < amcf->certs.nelts; i++) {
        cert = certs[i];

        /* opens (creates) <root>, <root>/certs and <root>/certs/<id> */

        ngx_acme_init_store(cycle, cert, uid, gid, &cd, store_err,
                            sizeof(store_err));

        ngx_acme_shm_lock(amcf);
        slot = ngx_acme_shm_slot(amcf, &cert->id, &created);

        if (slot && (store_err[0] || !slot->unsaved_at)) {
            /* a reload keeps why a served certificate is not stored */
            ngx_memcpy(slot->status.store_error, store_err,
                       ngx_min(sizeof(slot->status.store_error), sizeof(store_err)));
            slot->status.store_error[sizeof(slot->status.store_error) - 1] = '\0';
        }

        ngx_acme_shm_unlock(amcf);

        if (slot == NULL) {
            acme_store_dir_close(&cd);
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "acme: no room for certificate \"%V\" in the "
                          "shared zone \"%V\"", &cert->id, &amcf->zone_name);
            return NGX_ERROR;
        }

        cert->slot = slot;

        if (!created || cd.fd < 0) {
            /* reload: the zone already has it; or no usable store */
            acme_store_dir_close(&cd);
            continue;
        }

        rc = acme_store_load_state_at(&cd, &st, err, sizeof(err));
        if (rc == -1) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "acme: certificate \"%V\": state ignored: %s",
                          &cert->id, err);
        }

        pem = NULL;
        len = 0;

        rc = acme_store_load_bundle_at(&cd, &pem, &len, err, sizeof(err));
        if (rc == -1) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                          "acme: certificate \"%V\": stored bundle "
                          "ignored: %s", &cert->id, err);
        }

        acme_store_dir_close(&cd);

        ngx_acme_shm_lock(amcf);

        slot->st = st;

        if (rc == -1) {
            /* e.g. a refused symlink: the status says why nothing is served */
            ngx_cpystrn((u_char *) slot->status.store_error, (u_char *) err,
                        sizeof(slot->status.store_error));
        }

        if (rc == 1 && pem) {
            if (acme_cert_info_from_pem(pem, len, &info, err, sizeof(err))
                == 0)
            {
                if (ngx_acme_shm_set_bundle_locked(amcf, slot, pem, len, 1)
                    == NGX_OK)
                {
                    ngx_acme_shm_set_info_locked(slot, &info);
                }

                acme_cert_info_free(&info);

            } else {
                ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                              "acme: certificate \"%V\": stored bundle "
                              "ignored: %s", &cert->id, err);
            }
        }

        ngx_acme_shm_unlock(amcf);

        if (pem) {
            OPENSSL_cleanse(pem, len);
            free(pem);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_acme_init_process(ngx_cycle_t *cycle)
{
    ngx_acme_main_conf_t  *amcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_acme_module);

    if (amcf == NULL || amcf->shm_zone == NULL || amcf->certs.nelts == 0) {
        return NGX_OK;
    }

    amcf->log = cycle->log;
    ngx_queue_init(&amcf->alpn_certs);

    amcf->timer.handler = ngx_acme_tick;
    amcf->timer.data = amcf;
    amcf->timer.log = cycle->log;
    amcf->timer.cancelable = 1;

    /* at once: serve stored certificates from the first handshake */

    ngx_acme_tick(&amcf->timer);

    return NGX_OK;
}


static void
ngx_acme_exit_process(ngx_cycle_t *cycle)
{
    ngx_acme_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_acme_module);

    if (amcf == NULL || amcf->shm_zone == NULL || amcf->certs.nelts == 0) {
        return;
    }

    amcf->exiting = 1;

    ngx_acme_abort_all(amcf);

    if (amcf->lease_held) {
        ngx_acme_shm_lease_release(amcf);
        amcf->lease_held = 0;

        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "acme: exiting worker process %P released the "
                      "ACME lease", ngx_pid);
    }

    if (amcf->timer.timer_set) {
        ngx_del_timer(&amcf->timer);
    }

    ngx_acme_ssl_free(amcf);
    ngx_acme_alpn_free(amcf);
}


static void
ngx_acme_abort_all(ngx_acme_main_conf_t *amcf)
{
    ngx_uint_t         i;
    ngx_acme_cert_t  **certs;

    certs = amcf->certs.elts;

    for (i = 0; i < amcf->certs.nelts; i++) {
        if (certs[i]->job) {
            ngx_acme_job_abort(amcf, certs[i]);
        }
    }
}


static void
ngx_acme_tick(ngx_event_t *ev)
{
    ngx_acme_main_conf_t  *amcf = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        /* an old worker after a reload: hand ACME to the new ones */

        ngx_acme_abort_all(amcf);

        if (amcf->lease_held) {
            ngx_acme_shm_lease_release(amcf);
            amcf->lease_held = 0;

            ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                          "acme: exiting worker process %P released the "
                          "ACME lease", ngx_pid);
        }

        return;
    }

    ngx_acme_ssl_refresh(amcf, ev->log);
    ngx_acme_shm_heartbeat(amcf, amcf->generation);

    if (amcf->tls_alpn) {
        ngx_acme_alpn_expire(amcf);
    }

    if (ngx_acme_shm_lease(amcf, ev->log) == NGX_OK) {
        amcf->lease_held = 1;
        ngx_acme_shm_activate(amcf, ev->log);
        ngx_acme_ssl_refresh(amcf, ev->log);
        ngx_acme_schedule(amcf, ev->log);

    } else if (amcf->lease_held) {
        amcf->lease_held = 0;
        ngx_acme_abort_all(amcf);

        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "acme: worker process %P lost the ACME lease", ngx_pid);
    }

    ngx_add_timer(ev, NGX_ACME_TICK);
}


/* Starts the orders that are due (acme_job_due); the lease holder only. */
static void
ngx_acme_schedule(ngx_acme_main_conf_t *amcf, ngx_log_t *log)
{
    time_t              now, unsaved;
    long long           due;
    ngx_uint_t          i;
    ngx_acme_cert_t   **certs, *cert;
    ngx_acme_slot_t    *slot;
    acme_job_facts_t    f;
    acme_job_reason_t   why;
    acme_cert_state_t   st;

    now = ngx_time();
    certs = amcf->certs.elts;

    for (i = 0; i < amcf->certs.nelts; i++) {
        cert = certs[i];
        slot = cert->slot;

        if (slot == NULL || cert->job) {
            continue;
        }

        ngx_memzero(&f, sizeof(acme_job_facts_t));

        ngx_acme_shm_lock(amcf);

        st = slot->st;
        f.have_cert = (slot->bundle != NULL);
        f.not_before = slot->status.not_before;
        f.not_after = slot->status.not_after;
        /* a bundle this worker has not parsed: its names are not known */
        f.loaded = (slot->generation == cert->generation);
        unsaved = slot->unsaved_at;

        ngx_acme_shm_unlock(amcf);

        if (st.attempt_started && ngx_acme_unfinished(amcf, cert, &st, log)) {
            continue;
        }

        if (unsaved && unsaved <= now) {
            /* an issued bundle the store refused: written again first */
            if (ngx_acme_job_resave(amcf, cert, log) == NGX_OK) {
                continue;
            }
        }

        f.names_ok = cert->names_match;
        f.renew_fraction = cert->issuer->renew_percent / 100.0;
        f.seed = cert->rnd;

        why = acme_job_due(&f, &st, &due);

        if (why == ACME_JOB_LOADING) {
            continue;
        }

        ngx_acme_shm_lock(amcf);
        slot->status.next_renewal = due;
        ngx_acme_shm_unlock(amcf);

        if (due <= now && !ngx_acme_alpn_busy(amcf, cert)) {
            (void) ngx_acme_job_start(amcf, cert, acme_job_reason_text(why),
                                      log);
        }
    }
}


/*
 * An attempt record in the slot and no job of ours for it: the worker that
 * ran the order died during it (or the whole server, when the record came
 * from state.json).  The common policy counts it as a failure with backoff;
 * the state is persisted in the thread pool.  Returns 1 when it counted one.
 */
static ngx_uint_t
ngx_acme_unfinished(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert,
    acme_cert_state_t *st, ngx_log_t *log)
{
    char          buf[21];
    time_t        now;
    ngx_uint_t    alive;

    now = ngx_time();

    alive = ((ngx_pid_t) st->attempt_pid != ngx_pid
             && acme_process_alive(st->attempt_pid));

    if (!acme_job_unfinished(st, cert->types, cert->challenges.n,
                             (long long) now, alive,
                             cert->issuer->retry_delay, cert->rnd))
    {
        return 0;
    }

    ngx_acme_shm_lock(amcf);

    if (!ngx_acme_shm_fence_ok_locked(amcf, amcf->lease_gen)) {
        ngx_acme_shm_unlock(amcf);
        return 1;
    }

    cert->slot->st = *st;
    acme_job_status_end(&cert->slot->status, st, st->next_attempt);

    ngx_acme_shm_unlock(amcf);

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "acme: certificate \"%V\": %s; %ui consecutive "
                  "failure(s), next attempt at %s", &cert->id,
                  st->last_error, (ngx_uint_t) st->failures,
                  acme_time_rfc3339(st->next_attempt, buf, sizeof(buf)));

    if (ngx_acme_job_save_state(amcf, cert, st, log) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "acme: certificate \"%V\": cannot post the state "
                      "task", &cert->id);
    }

    return 1;
}


/*
 * tls-alpn-01 attempts sharing a name take turns (acme_job_alpn_conflict):
 * such an order waits for the running one; the next tick starts it.
 */
static ngx_uint_t
ngx_acme_alpn_busy(ngx_acme_main_conf_t *amcf, ngx_acme_cert_t *cert)
{
    ngx_uint_t          i, failures;
    const char         *type;
    ngx_acme_cert_t   **certs, *other;

    certs = amcf->certs.elts;

    type = ngx_acme_challenge_name(ngx_acme_cert_challenge(cert,
                                                  cert->slot->st.failures));

    for (i = 0; i < amcf->certs.nelts; i++) {
        other = certs[i];

        if (other == cert || other->job == NULL || other->slot == NULL) {
            continue;
        }

        /* the running attempt's type: failures change when it ends */
        ngx_acme_shm_lock(amcf);
        failures = other->slot->st.failures;
        ngx_acme_shm_unlock(amcf);

        if (acme_job_alpn_conflict(type,
                  (const char *const *) cert->names.elts, cert->names.nelts,
                  ngx_acme_challenge_name(ngx_acme_cert_challenge(other,
                                                                  failures)),
                  (const char *const *) other->names.elts,
                  other->names.nelts))
        {
            return 1;
        }
    }

    return 0;
}
