/*
 * dns-01 (RFC 8555 section 8.4) for the nginx module, as docs/design.md
 * "dns-01 (issue 4)" specifies for both servers:
 *
 *   dns_update SERVER[:PORT] key=NAME secret=FILE|data:BASE64
 *              [alg=hmac-sha256|hmac-sha384|hmac-sha512] [zone=ZONE];
 *   dns_hook /path/prog [timeout=60s];
 *   dns_propagation_check SERVER[:PORT]... [timeout=120s];
 *
 * The publishing functions block (network, a child process, the propagation
 * wait) and run only in a thread of nginx's thread pool, never on the event
 * loop: no nginx pools, no logging there.  What the hook printed on stderr
 * comes back in *log for the event loop to write to the error log.
 */

#include "ngx_acme.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>


#define NGX_ACME_DNS_TTL          60
#define NGX_ACME_DNS_TIMEOUT_MS   5000      /* one DNS exchange */
#define NGX_ACME_DNS_POLL_MS      2000      /* propagation polling */
#define NGX_ACME_DNS_LOG_MAX      4096      /* hook stderr kept */
#define NGX_ACME_DNS_PATH         "/usr/local/sbin:/usr/local/bin:" \
                                  "/usr/sbin:/usr/bin:/sbin:/bin"


static ngx_int_t ngx_acme_dns_parse_server(ngx_conf_t *cf, ngx_str_t *v,
    ngx_acme_dns_server_t *srv, const char *directive);
static void ngx_acme_dns_key_cleanup(void *data);
static int ngx_acme_dns_hook_run(ngx_acme_issuer_t *issuer, const char *op,
    const char *domain, const char *txt, char **log, char *err,
    size_t errlen);
static int ngx_acme_dns_wait_visible(ngx_acme_issuer_t *issuer,
    const char *name, const char *txt, char *err, size_t errlen);
static void ngx_acme_dns_log_append(char **log, const char *s, size_t n);
static int ngx_acme_dns_stopping(void);


/* ---- configuration ---- */


static ngx_int_t
ngx_acme_dns_parse_server(ngx_conf_t *cf, ngx_str_t *v,
    ngx_acme_dns_server_t *srv, const char *directive)
{
    u_char      *host, *end, *colon, *p, addr6[16];
    size_t       hlen;
    ngx_int_t    port;
    ngx_uint_t   ncolons, digits_dots;

    host = v->data;
    end = v->data + v->len;
    colon = NULL;
    port = 53;

    if (v->len == 0) {
        goto invalid;
    }

    if (host[0] == '[') {
        p = ngx_strlchr(host, end, ']');
        if (p == NULL) {
            goto invalid;
        }

        hlen = p - host - 1;
        host++;

        if (hlen == 0 || ngx_inet6_addr(host, hlen, addr6) != NGX_OK) {
            goto invalid;
        }

        if (p + 1 < end) {
            if (p[1] != ':') {
                goto invalid;
            }

            colon = p + 1;
        }

    } else {
        ncolons = 0;

        for (p = host; p < end; p++) {
            if (*p == ':') {
                ncolons++;
                colon = p;
            }
        }

        if (ncolons > 1) {
            /* an IPv6 literal without a port */
            colon = NULL;
            hlen = v->len;

            if (ngx_inet6_addr(host, hlen, addr6) != NGX_OK) {
                goto invalid;
            }

        } else {
            hlen = colon ? (size_t) (colon - host) : v->len;

            if (hlen == 0 || hlen > 253 || host[0] == '-' || host[0] == '.') {
                goto invalid;
            }

            digits_dots = 1;

            for (p = host; p < host + hlen; p++) {
                if ((*p >= '0' && *p <= '9') || *p == '.') {
                    continue;
                }

                digits_dots = 0;

                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                    || *p == '-')
                {
                    continue;
                }

                goto invalid;
            }

            if (digits_dots && ngx_inet_addr(host, hlen) == INADDR_NONE) {
                goto invalid;
            }
        }
    }

    if (colon) {
        port = ngx_atoi(colon + 1, end - colon - 1);
        if (port < 1 || port > 65535) {
            goto invalid;
        }
    }

    srv->host = ngx_pnalloc(cf->pool, hlen + 1);
    if (srv->host == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(srv->host, host, hlen);
    srv->host[hlen] = '\0';
    srv->port = (int) port;

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid DNS server address \"%V\" in \"%s\" "
                       "(expected IP[:PORT], [IPv6]:PORT or HOST[:PORT])",
                       v, directive);
    return NGX_DECLINED;
}


/*
 * dns_update SERVER[:PORT] key=NAME secret=FILE|data:BASE64 [alg=] [zone=]
 *
 * The secret file is either a BIND key file as tsig-keygen writes it (its
 * key name must then be NAME) or just the base64 secret.  Messages name
 * the file, never the secret.
 */
char *
ngx_acme_dns_update_conf(ngx_conf_t *cf, ngx_acme_issuer_t *issuer)
{
    int                  rc;
    char                *text, *t, *e, *keyname, *alg, *secret_b64;
    char                 err[ACME_ERRLEN];
    size_t               len;
    ngx_str_t           *value, file, zone, secret;
    ngx_uint_t           i, inline_secret;
    ngx_pool_cleanup_t  *cln;

    value = cf->args->elts;

    if (issuer->dns_server.host) {
        return "is duplicate";
    }

    keyname = NULL;
    alg = NULL;
    ngx_str_null(&secret);
    ngx_str_null(&zone);

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key=", 4) == 0
            && value[i].len > 4)
        {
            keyname = (char *) value[i].data + 4;
            continue;
        }

        if (ngx_strncmp(value[i].data, "secret=", 7) == 0
            && value[i].len > 7)
        {
            secret.data = value[i].data + 7;
            secret.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "alg=", 4) == 0) {
            alg = (char *) value[i].data + 4;

            if (ngx_strcasecmp((u_char *) alg, (u_char *) "hmac-sha256") != 0
                && ngx_strcasecmp((u_char *) alg, (u_char *) "hmac-sha384")
                   != 0
                && ngx_strcasecmp((u_char *) alg, (u_char *) "hmac-sha512")
                   != 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in \"dns_update\" "
                                   "(expected alg=hmac-sha256, hmac-sha384 "
                                   "or hmac-sha512)", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0
            && value[i].len > 5)
        {
            zone.data = value[i].data + 5;
            zone.len = value[i].len - 5;

            if (zone.len > 1 && zone.data[zone.len - 1] == '.') {
                zone.len--;
            }

            ngx_strlow(zone.data, zone.data, zone.len);
            continue;
        }

        /* never echo the parameter: it may be a mistyped secret */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter #%ui in \"dns_update\" "
                           "(expected key=, secret=, alg= or zone=)", i);
        return NGX_CONF_ERROR;
    }

    if (keyname == NULL || secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"dns_update\" needs key=NAME and "
                           "secret=FILE|data:BASE64");
        return NGX_CONF_ERROR;
    }

    if (ngx_acme_dns_parse_server(cf, &value[1], &issuer->dns_server,
                                  "dns_update")
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (zone.len) {
        issuer->dns_zone = (char *) ngx_acme_cstr(cf->pool, &zone);
        if (issuer->dns_zone == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    err[0] = '\0';
    inline_secret = 0;
    text = NULL;
    len = 0;
    ngx_str_null(&file);

    if (ngx_strncmp(secret.data, "data:", 5) == 0) {
        inline_secret = 1;
        rc = acme_tsig_key_init(&issuer->dns_key, keyname, alg,
                                (char *) secret.data + 5, err, sizeof(err));

    } else {
        file = secret;

        if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        rc = acme_store_read((char *) file.data, &text, &len, 64 * 1024,
                             err, sizeof(err));
        if (rc == 0) {
            acme_err(err, sizeof(err), "no such file");
            rc = -1;

        } else if (rc == 1 && ngx_strstr(text, "secret") != NULL) {
            rc = acme_tsig_key_from_bind(&issuer->dns_key, text,
                                         err, sizeof(err));

            if (rc == 0 && ngx_strcasecmp((u_char *) issuer->dns_key.name,
                                          (u_char *) keyname) != 0)
            {
                acme_err(err, sizeof(err), "the file has the key \"%s\", "
                         "not \"%s\"", issuer->dns_key.name, keyname);
                acme_tsig_key_clear(&issuer->dns_key);
                rc = -1;
            }

        } else if (rc == 1) {
            /* the bare base64 secret, whitespace around it */
            for (t = text; *t == ' ' || *t == '\t' || *t == '\r'
                           || *t == '\n'; t++) { /* void */ }

            for (e = t; *e && *e != ' ' && *e != '\t' && *e != '\r'
                        && *e != '\n'; e++) { /* void */ }

            *e = '\0';
            secret_b64 = t;

            rc = acme_tsig_key_init(&issuer->dns_key, keyname, alg,
                                    secret_b64, err, sizeof(err));
        }

        if (text) {
            OPENSSL_cleanse(text, len);
            free(text);
        }
    }

    if (rc != 0) {
        if (inline_secret) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot load the TSIG key \"%s\" of "
                               "\"dns_update\" (inline data:): %s",
                               keyname, err[0] ? err : "invalid key");
        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot load the TSIG key \"%s\" of "
                               "\"dns_update\" from \"%V\": %s",
                               keyname, &file, err[0] ? err : "invalid key");
        }

        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        acme_tsig_key_clear(&issuer->dns_key);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_acme_dns_key_cleanup;
    cln->data = issuer;

    return NGX_CONF_OK;
}


static void
ngx_acme_dns_key_cleanup(void *data)
{
    ngx_acme_issuer_t  *issuer = data;

    acme_tsig_key_clear(&issuer->dns_key);
}


/* dns_hook /path/prog [timeout=60s]; never run by "nginx -t" */
char *
ngx_acme_dns_hook_conf(ngx_conf_t *cf, ngx_acme_issuer_t *issuer)
{
    ngx_int_t   n;
    ngx_str_t  *value, path, t;

    value = cf->args->elts;

    if (issuer->dns_hook) {
        return "is duplicate";
    }

    issuer->dns_hook_timeout = 60000;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "timeout=", 8) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"dns_hook\" "
                               "(expected timeout=TIME)", &value[2]);
            return NGX_CONF_ERROR;
        }

        t.data = value[2].data + 8;
        t.len = value[2].len - 8;

        n = ngx_parse_time(&t, 0);
        if (n == NGX_ERROR || n == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid timeout \"%V\" in \"dns_hook\"",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        issuer->dns_hook_timeout = (ngx_msec_t) n;
    }

    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (access((char *) path.data, X_OK) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"dns_hook\" program \"%V\" is not executable",
                           &path);
        return NGX_CONF_ERROR;
    }

    issuer->dns_hook = (char *) path.data;

    return NGX_CONF_OK;
}


/* dns_propagation_check SERVER[:PORT]... [timeout=120s] */
char *
ngx_acme_dns_check_conf(ngx_conf_t *cf, ngx_acme_issuer_t *issuer)
{
    ngx_int_t               n;
    ngx_str_t              *value, t;
    ngx_uint_t              i;
    ngx_acme_dns_server_t  *srv;

    value = cf->args->elts;

    if (issuer->dns_check) {
        return "is duplicate";
    }

    issuer->dns_check = ngx_array_create(cf->pool, 2,
                                         sizeof(ngx_acme_dns_server_t));
    if (issuer->dns_check == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            t.data = value[i].data + 8;
            t.len = value[i].len - 8;

            n = ngx_parse_time(&t, 0);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\" in "
                                   "\"dns_propagation_check\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            issuer->dns_check_timeout = (ngx_msec_t) n;
            continue;
        }

        srv = ngx_array_push(issuer->dns_check);
        if (srv == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_acme_dns_parse_server(cf, &value[i], srv,
                                      "dns_propagation_check")
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* ---- publishing (thread pool only) ---- */


int
ngx_acme_dns_publish(ngx_acme_issuer_t *issuer, const char *domain,
    const char *txt, char **log, char *err, size_t errlen)
{
    int    rc;
    char  *name, *zone;
    char   e[ACME_ERRLEN];

    name = acme_dns01_record_name(domain);
    if (name == NULL) {
        acme_err(err, errlen, "dns-01 update: bad name \"%s\"", domain);
        return -1;
    }

    if (issuer->dns_hook) {
        rc = ngx_acme_dns_hook_run(issuer, "add", domain, txt, log,
                                   err, errlen);
        if (rc != 0) {
            free(name);
            return -1;
        }

    } else {
        zone = NULL;
        e[0] = '\0';

        if (issuer->dns_zone == NULL
            && acme_dns_find_zone_blocking(issuer->dns_server.host,
                                           issuer->dns_server.port, 0, name,
                                           NGX_ACME_DNS_TIMEOUT_MS, &zone,
                                           e, sizeof(e))
               != 0)
        {
            acme_err(err, errlen, "dns-01 update: cannot find the zone of "
                     "%s at %s port %d: %s", name, issuer->dns_server.host,
                     issuer->dns_server.port, e);
            free(name);
            return -1;
        }

        rc = acme_dns_update_blocking(issuer->dns_server.host,
                                      issuer->dns_server.port,
                                      zone ? zone : issuer->dns_zone, name,
                                      txt, NGX_ACME_DNS_TTL,
                                      ACME_DNS_UPDATE_ADD, &issuer->dns_key,
                                      NGX_ACME_DNS_TIMEOUT_MS, e, sizeof(e));
        free(zone);

        if (rc != 0) {
            acme_err(err, errlen, "dns-01 update: adding TXT %s at %s port "
                     "%d failed: %s", name, issuer->dns_server.host,
                     issuer->dns_server.port, e);
            free(name);
            return -1;
        }
    }

    rc = ngx_acme_dns_wait_visible(issuer, name, txt, err, errlen);

    free(name);

    return rc;
}


int
ngx_acme_dns_remove(ngx_acme_issuer_t *issuer, const char *domain,
    const char *txt, char **log, char *err, size_t errlen)
{
    int    rc;
    char  *name, *zone;
    char   e[ACME_ERRLEN];

    if (issuer->dns_hook) {
        return ngx_acme_dns_hook_run(issuer, "remove", domain, txt, log,
                                     err, errlen);
    }

    name = acme_dns01_record_name(domain);
    if (name == NULL) {
        acme_err(err, errlen, "dns-01 update: bad name \"%s\"", domain);
        return -1;
    }

    zone = NULL;
    e[0] = '\0';

    if (issuer->dns_zone == NULL
        && acme_dns_find_zone_blocking(issuer->dns_server.host,
                                       issuer->dns_server.port, 0, name,
                                       NGX_ACME_DNS_TIMEOUT_MS, &zone,
                                       e, sizeof(e))
           != 0)
    {
        acme_err(err, errlen, "dns-01 update: cannot find the zone of %s: "
                 "%s", name, e);
        free(name);
        return -1;
    }

    rc = acme_dns_update_blocking(issuer->dns_server.host,
                                  issuer->dns_server.port,
                                  zone ? zone : issuer->dns_zone, name, txt,
                                  NGX_ACME_DNS_TTL, ACME_DNS_UPDATE_DELETE,
                                  &issuer->dns_key, NGX_ACME_DNS_TIMEOUT_MS,
                                  e, sizeof(e));
    if (rc != 0) {
        acme_err(err, errlen, "dns-01 update: removing TXT %s failed: %s",
                 name, e);
    }

    free(zone);
    free(name);

    return rc;
}


/*
 * Runs "prog op domain txt": no shell, environment PATH only, stdin and
 * stdout /dev/null, stderr collected.
 *
 * The worker's SIGCHLD handler reaps every child it is told about
 * (waitpid(-1)), which would steal the hook's exit status.  So a helper is
 * created with clone() and no exit signal (only waitpid(__WCLONE) sees it;
 * it never execs, which would reset that): it leads a new process group,
 * starts the hook, waits for it and exits with its status.  A timeout kills
 * the whole group.  Both children use raw system calls only: this process
 * has other threads, whose locks a plain fork() could inherit held.
 */
static int
ngx_acme_dns_hook_run(ngx_acme_issuer_t *issuer, const char *op,
    const char *domain, const char *txt, char **log, char *err,
    size_t errlen)
{
    int             pfd[2], devnull, status, n, timed_out, st, remove;
    char           *argv[5], *envp[2], *path_env, *p;
    char            buf[512];
    long            pid, gpid;
    struct sigaction  sa;
    sigset_t        all;
    ngx_msec_t      timeout;
    long long       deadline, left;
    struct pollfd   pf;

    /* a wildcard's base name: the identifier the CA validates */
    if (domain[0] == '*' && domain[1] == '.') {
        domain += 2;
    }

    remove = (ngx_strcmp(op, "remove") == 0);

    p = getenv("PATH");
    path_env = acme_sprintf("PATH=%s", p ? p : NGX_ACME_DNS_PATH);
    if (path_env == NULL) {
        acme_err(err, errlen, "dns hook: out of memory");
        return -1;
    }

    argv[0] = issuer->dns_hook;
    argv[1] = (char *) op;
    argv[2] = (char *) domain;
    argv[3] = (char *) txt;
    argv[4] = NULL;
    envp[0] = path_env;
    envp[1] = NULL;

    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull == -1) {
        acme_err(err, errlen, "dns hook: cannot open /dev/null: %s",
                 strerror(errno));
        free(path_env);
        return -1;
    }

    if (pipe2(pfd, O_CLOEXEC) != 0) {
        acme_err(err, errlen, "dns hook: pipe() failed: %s",
                 strerror(errno));
        close(devnull);
        free(path_env);
        return -1;
    }

    /* like fork(), but no SIGCHLD at exit (see above) */
    pid = syscall(SYS_clone, 0UL, NULL, NULL, NULL, 0UL);

    if (pid == 0) {
        /*
         * The helper: async-signal-safe calls only.  Signals stay blocked
         * here (as in the pool's thread), SIGCHLD back to the default so
         * nginx's handler cannot reap the hook.
         */
        ngx_memzero(&sa, sizeof(struct sigaction));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &sa, NULL);

        setpgid(0, 0);

        if (dup2(devnull, 0) == -1 || dup2(devnull, 1) == -1
            || dup2(pfd[1], 2) == -1)
        {
            _exit(127);
        }

        syscall(SYS_close_range, 3U, ~0U, 0U);

        gpid = syscall(SYS_clone, (unsigned long) SIGCHLD, NULL, NULL, NULL,
                       0UL);

        if (gpid == 0) {
            sigemptyset(&all);
            sigprocmask(SIG_SETMASK, &all, NULL);

            execve(issuer->dns_hook, argv, envp);
            _exit(127);
        }

        if (gpid == -1) {
            _exit(127);
        }

        while (waitpid((pid_t) gpid, &st, 0) == -1) {
            if (errno != EINTR) {
                _exit(127);
            }
        }

        _exit(WIFEXITED(st) ? WEXITSTATUS(st)
                            : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 127);
    }

    close(pfd[1]);
    close(devnull);
    free(path_env);

    if (pid == -1) {
        acme_err(err, errlen, "dns hook: cannot start %s: %s",
                 issuer->dns_hook, strerror(errno));
        close(pfd[0]);
        return -1;
    }

    timeout = issuer->dns_hook_timeout ? issuer->dns_hook_timeout : 60000;
    deadline = acme_monotonic_ms() + (long long) timeout;
    timed_out = 0;

    /* stderr until EOF (the child exited or closed it) */

    for ( ;; ) {
        /* an exiting worker gives up adding, but still removes */
        left = deadline - acme_monotonic_ms();
        if (left <= 0 || (remove == 0 && ngx_acme_dns_stopping())) {
            timed_out = 1;
            break;
        }

        pf.fd = pfd[0];
        pf.events = POLLIN;
        pf.revents = 0;

        n = poll(&pf, 1, left > 200 ? 200 : (int) left);
        if (n == 0 || (n == -1 && errno == EINTR)) {
            continue;
        }

        if (n == -1) {
            break;
        }

        n = read(pfd[0], buf, sizeof(buf));
        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        ngx_acme_dns_log_append(log, buf, (size_t) n);
    }

    close(pfd[0]);

    /* then its exit, still within the timeout */

    for ( ;; ) {
        if (!timed_out) {
            n = waitpid((pid_t) pid, &status, __WCLONE | WNOHANG);

            if (n == (int) pid) {
                break;
            }

            if (n == -1 && errno != EINTR) {
                acme_err(err, errlen, "dns hook: waitpid() failed: %s",
                         strerror(errno));
                return -1;
            }

            if (acme_monotonic_ms() < deadline
                && (remove || !ngx_acme_dns_stopping()))
            {
                poll(NULL, 0, 50);
                continue;
            }

            timed_out = 1;
        }

        /* the group: the helper and the hook (and what it started) */
        kill((pid_t) -pid, SIGKILL);
        kill((pid_t) pid, SIGKILL);

        while (waitpid((pid_t) pid, &status, __WCLONE) == -1
               && errno == EINTR)
        { /* void */ }

        acme_err(err, errlen, "dns hook: \"%s %s %s\" did not finish "
                 "within %ums and was killed", issuer->dns_hook, op, domain,
                 (unsigned) timeout);
        return -1;
    }

    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return 0;
    }

    if (WIFEXITED(status)) {
        acme_err(err, errlen, "dns hook: \"%s %s %s\" exited with status %d",
                 issuer->dns_hook, op, domain, WEXITSTATUS(status));

    } else {
        acme_err(err, errlen, "dns hook: \"%s %s %s\" was killed by signal "
                 "%d", issuer->dns_hook, op, domain,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }

    return -1;
}


/*
 * Polls every check server (dns_propagation_check; else the dns_update
 * server; else the zone's NS hosts on port 53, found through the first
 * resolv.conf name server) until each shows the TXT value.
 */
static int
ngx_acme_dns_wait_visible(ngx_acme_issuer_t *issuer, const char *name,
    const char *txt, char *err, size_t errlen)
{
    int                     rc, all;
    char                   *zone, **ns, *names, *p, *text;
    char                    e[ACME_ERRLEN], resolver[64];
    size_t                  i, n, len;
    long long               deadline;
    ngx_msec_t              timeout;
    ngx_acme_dns_server_t  *srv, one;

    ns = NULL;
    n = 0;
    srv = NULL;
    e[0] = '\0';

    if (issuer->dns_check && issuer->dns_check->nelts) {
        srv = issuer->dns_check->elts;
        n = issuer->dns_check->nelts;

    } else if (issuer->dns_server.host) {
        srv = &issuer->dns_server;
        n = 1;

    } else {
        /* hook only: ask the system's resolver for the zone's NS hosts */
        ngx_cpystrn((u_char *) resolver, (u_char *) "127.0.0.1",
                    sizeof(resolver));

        if (acme_store_read("/etc/resolv.conf", &text, &len, 64 * 1024,
                            e, sizeof(e)) == 1)
        {
            p = ngx_strstr(text, "nameserver");
            if (p) {
                p += sizeof("nameserver") - 1;
                while (*p == ' ' || *p == '\t') {
                    p++;
                }

                for (i = 0; i < sizeof(resolver) - 1 && p[i]
                            && p[i] != '\n' && p[i] != ' '
                            && p[i] != '\t' && p[i] != '\r'; i++)
                {
                    resolver[i] = p[i];
                }

                resolver[i] = '\0';
            }

            free(text);
        }

        zone = NULL;

        if (acme_dns_find_zone_blocking(resolver, 53, 1, name,
                                        NGX_ACME_DNS_TIMEOUT_MS, &zone,
                                        e, sizeof(e)) != 0
            || acme_dns_zone_ns_blocking(resolver, 53, 1, zone,
                                         NGX_ACME_DNS_TIMEOUT_MS, &ns, &n,
                                         e, sizeof(e)) != 0)
        {
            acme_err(err, errlen, "dns propagation: cannot find the name "
                     "servers of %s via %s (set dns_propagation_check): %s",
                     name, resolver, e);
            free(zone);
            return -1;
        }

        free(zone);
    }

    timeout = issuer->dns_check_timeout ? issuer->dns_check_timeout : 120000;
    deadline = acme_monotonic_ms() + (long long) timeout;

    for ( ;; ) {
        all = 1;
        e[0] = '\0';           /* only this round's failure is reported */

        for (i = 0; i < n; i++) {
            if (ns) {
                one.host = ns[i];
                one.port = 53;

            } else {
                one = srv[i];
            }

            rc = acme_dns_txt_visible_blocking(one.host, one.port, name, txt,
                                               NGX_ACME_DNS_TIMEOUT_MS,
                                               e, sizeof(e));
            if (rc != 1) {
                all = 0;
                break;
            }
        }

        if (all) {
            rc = 0;
            break;
        }

        if (acme_monotonic_ms() + NGX_ACME_DNS_POLL_MS > deadline
            || ngx_acme_dns_stopping())
        {
            names = NULL;

            for (i = 0; i < n; i++) {
                p = acme_sprintf("%s%s%s:%d", names ? names : "",
                                 names ? ", " : "",
                                 ns ? ns[i] : srv[i].host,
                                 ns ? 53 : srv[i].port);
                free(names);
                names = p;
                if (p == NULL) {
                    break;
                }
            }

            acme_err(err, errlen, "dns propagation: TXT %s not visible on "
                     "%s within %ums%s%s", name, names ? names : "?",
                     (unsigned) timeout, e[0] ? ": " : "", e);
            free(names);
            rc = -1;
            break;
        }

        poll(NULL, 0, NGX_ACME_DNS_POLL_MS);
    }

    if (ns) {
        for (i = 0; i < n; i++) {
            free(ns[i]);
        }

        free(ns);
    }

    return rc;
}


static void
ngx_acme_dns_log_append(char **log, const char *s, size_t n)
{
    size_t  have;
    char   *p;

    have = *log ? strlen(*log) : 0;

    if (have + n > NGX_ACME_DNS_LOG_MAX) {
        n = (have < NGX_ACME_DNS_LOG_MAX) ? NGX_ACME_DNS_LOG_MAX - have : 0;
    }

    if (n == 0) {
        return;
    }

    p = realloc(*log, have + n + 1);
    if (p == NULL) {
        return;
    }

    memcpy(p + have, s, n);
    p[have + n] = '\0';
    *log = p;
}


/* the worker is going away: stop waiting (read-only flags, set by signals) */
static int
ngx_acme_dns_stopping(void)
{
    return ngx_terminate || ngx_quit || ngx_exiting;
}
