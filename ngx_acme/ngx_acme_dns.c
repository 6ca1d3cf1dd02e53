/*
 * dns-01 (RFC 8555 section 8.4) for the nginx module, as docs/design.md
 * "dns-01 (issue 4)" specifies for both servers:
 *
 *   dns_update SERVER[:PORT] key=NAME secret=FILE|data:BASE64
 *              [alg=hmac-sha256|hmac-sha384|hmac-sha512] [zone=ZONE];
 *   dns_hook /path/prog [timeout=60s];
 *   dns_propagation_check SERVER[:PORT]... [timeout=120s];
 *
 * Publishing is common/io/acme_dns_publish.h; this file parses the directives
 * and supplies the runner (a clone()-based helper, see below).  The
 * publishing functions block (network, a child process, the propagation
 * wait) and run only in a thread of nginx's thread pool, never on the event
 * loop: no nginx pools, no logging there.  Messages (the hook's stderr
 * lines, progress) come back in *log for the event loop to write.
 */

#include "ngx_acme.h"
#include "acme_dns_conf_load.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>


#define NGX_ACME_DNS_LOG_MAX      4096      /* hook stderr kept */


static void ngx_acme_dns_publisher(ngx_acme_issuer_t *issuer,
    acme_dns_publisher_t *p, char **log);
static long ngx_acme_dns_spawn(void *data, char *const argv[],
    char *const envp[], int err_fd, char *err, size_t errlen);
static int ngx_acme_dns_reap(void *data, long pid, int block, int *status);
static int ngx_acme_dns_stopping(void *data);


/* the clone()-based runner (see ngx_acme_dns_spawn), also the event
 * command's (ngx_acme_event.c) */
const acme_runner_t  ngx_acme_runner = {
    NULL, ngx_acme_dns_spawn, ngx_acme_dns_reap
};


/* ---- configuration ---- */


/*
 * dns_update SERVER[:PORT] key=NAME secret=FILE|data:BASE64 [alg=] [zone=]
 *
 * The values are checked by acme_dns_update_conf_load(): the secret file
 * is either a BIND key file as tsig-keygen writes it (its key name must
 * then be NAME) or just the base64 secret.  Messages never show a secret;
 * the key is cleansed with the issuer (acme_issuer_conf_clear).
 */
char *
ngx_acme_dns_update_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char                    err[ACME_ERRLEN];
    ngx_str_t              *value, file;
    ngx_uint_t              i;
    acme_dns_update_args_t  a;

    value = cf->args->elts;

    if (issuer->conf.dns.update.host[0]) {
        return "is duplicate";
    }

    if (cf->args->nelts < 4) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of arguments in \"%V\" directive",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&a, sizeof(acme_dns_update_args_t));
    a.server = (char *) value[1].data;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            a.key_name = (char *) value[i].data + 4;

        } else if (ngx_strncmp(value[i].data, "secret=", 7) == 0) {
            a.secret = (char *) value[i].data + 7;

        } else if (ngx_strncmp(value[i].data, "alg=", 4) == 0) {
            a.alg = (char *) value[i].data + 4;

        } else if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            a.zone = (char *) value[i].data + 5;

        } else {
            /* never echo the parameter: it may be a mistyped secret */
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter #%ui in \"dns_update\" "
                               "(expected key=, secret=, alg= or zone=)", i);
            return NGX_CONF_ERROR;
        }
    }

    if (a.secret != NULL && a.secret[0] != '\0') {
        if (ngx_strncmp(a.secret, "data:", 5) == 0) {
            a.secret += 5;

        } else {
            file.data = (u_char *) a.secret;
            file.len = ngx_strlen(a.secret);

            if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            a.secret = (char *) file.data;
            a.secret_is_file = 1;
        }
    }

    if (acme_dns_update_conf_load(&a, &issuer->conf.dns, err, sizeof(err))
        != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"dns_update\": %s",
                           err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* timeout=TIME of dns_hook and dns_propagation_check: the bounds of both
 * servers (acme_dns_conf_timeout) */
static char *
ngx_acme_dns_timeout(ngx_conf_t *cf, ngx_str_t *value, int *ms)
{
    char        err[ACME_ERRLEN];
    ngx_int_t   n;
    ngx_str_t   t, *name;

    t.data = value->data + 8;
    t.len = value->len - 8;

    n = ngx_parse_time(&t, 0);

    if (n == NGX_ERROR) {
        ngx_cpystrn((u_char *) err, (u_char *) "not a time", sizeof(err));

    } else if (acme_dns_conf_timeout(n, err, sizeof(err)) == 0) {
        *ms = (int) n;
        return NGX_CONF_OK;
    }

    name = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid timeout \"%V\" in \"%V\": %s", value, name,
                       err);
    return NGX_CONF_ERROR;
}


/* dns_hook /path/prog [timeout=60s]; never run by "nginx -t" */
char *
ngx_acme_dns_hook_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char        err[ACME_ERRLEN];
    ngx_str_t  *value, path;

    value = cf->args->elts;

    if (issuer->conf.dns.hook) {
        return "is duplicate";
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "timeout=", 8) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"dns_hook\" "
                               "(expected timeout=TIME)", &value[2]);
            return NGX_CONF_ERROR;
        }

        if (ngx_acme_dns_timeout(cf, &value[2],
                                 &issuer->conf.dns.hook_timeout_ms)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (acme_run_check((char *) path.data, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"dns_hook\": %s",
                           err);
        return NGX_CONF_ERROR;
    }

    issuer->conf.dns.hook = (char *) path.data;

    return NGX_CONF_OK;
}


/* dns_propagation_check SERVER[:PORT]... [timeout=120s] */
char *
ngx_acme_dns_check_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_acme_issuer_t  *issuer = conf;

    char              err[ACME_ERRLEN];
    ngx_str_t        *value;
    ngx_uint_t        i;
    acme_dns_conf_t  *dns;

    value = cf->args->elts;
    dns = &issuer->conf.dns;

    if (dns->n_checks || dns->check_timeout_ms) {
        return "is duplicate";
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            if (ngx_acme_dns_timeout(cf, &value[i], &dns->check_timeout_ms)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (acme_dns_conf_add_check(dns, (char *) value[i].data, value[i].len,
                                    err, sizeof(err))
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"dns_propagation_check\": %s", err);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* ---- publishing (thread pool only): common/io/acme_dns_publish.h ---- */


int
ngx_acme_dns_publish(ngx_acme_issuer_t *issuer, const char *identifier,
    const char *key_authz, char **log, char *err, size_t errlen)
{
    acme_dns_publisher_t  p;

    ngx_acme_dns_publisher(issuer, &p, log);

    return acme_dns_publish(&p, identifier, key_authz, err, errlen);
}


int
ngx_acme_dns_remove(ngx_acme_issuer_t *issuer, const char *identifier,
    const char *key_authz, char **log, char *err, size_t errlen)
{
    acme_dns_publisher_t  p;

    ngx_acme_dns_publisher(issuer, &p, log);

    return acme_dns_unpublish(&p, identifier, key_authz, err, errlen);
}


static void
ngx_acme_dns_publisher(ngx_acme_issuer_t *issuer, acme_dns_publisher_t *p,
    char **log)
{
    ngx_memzero(p, sizeof(acme_dns_publisher_t));

    p->conf = &issuer->conf.dns;
    p->timeout_ms = (int) issuer->conf.timeout_ms;
    p->runner = &ngx_acme_runner;
    p->data = log;
    p->stop = ngx_acme_dns_stopping;
    p->log = ngx_acme_thread_log;
}


/*
 * The runner: "prog op domain txt" with no shell, stdin and stdout on
 * /dev/null, stderr on err_fd.
 *
 * The worker's SIGCHLD handler reaps every child it is told about
 * (waitpid(-1)), which would steal the hook's exit status.  So a helper is
 * created with clone() and no exit signal (only waitpid(__WCLONE) sees it;
 * it never execs, which would reset that): it leads a new process group,
 * starts the hook, waits for it and exits with its status (128 + signal
 * when killed).  Killing the group kills both.  Both children use raw
 * system calls only: this process has other threads, whose locks a plain
 * fork() could inherit held.
 */
static long
ngx_acme_dns_spawn(void *data, char *const argv[], char *const envp[],
    int err_fd, char *err, size_t errlen)
{
    int               devnull, st;
    long              pid, gpid;
    sigset_t          all;
    struct sigaction  sa;

    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull == -1) {
        acme_err(err, errlen, "cannot open /dev/null: %s", strerror(errno));
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
            || dup2(err_fd, 2) == -1)
        {
            _exit(127);
        }

        syscall(SYS_close_range, 3U, ~0U, 0U);

        gpid = syscall(SYS_clone, (unsigned long) SIGCHLD, NULL, NULL, NULL,
                       0UL);

        if (gpid == 0) {
            sigemptyset(&all);
            sigprocmask(SIG_SETMASK, &all, NULL);

            execve(argv[0], argv, envp);
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

    close(devnull);

    if (pid == -1) {
        acme_err(err, errlen, "%s", strerror(errno));
        return -1;
    }

    return pid;
}


static int
ngx_acme_dns_reap(void *data, long pid, int block, int *status)
{
    int  n, st;

    for ( ;; ) {
        n = waitpid((pid_t) pid, &st, __WCLONE | (block ? 0 : WNOHANG));

        if (n == -1 && errno == EINTR) {
            continue;
        }

        break;
    }

    if (n == 0) {
        return 0;
    }

    if (n == -1) {
        return -1;
    }

    *status = WIFEXITED(st) ? WEXITSTATUS(st)
                            : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 127;
    return 1;
}


/* A thread may not log: lines are kept ("W|..." or "I|...") for the loop;
 * data is a char ** (malloc'd text). */
void
ngx_acme_thread_log(void *data, int level, const char *msg)
{
    char   **log = data;
    char    *p;
    size_t   have, n;

    have = *log ? strlen(*log) : 0;
    n = strlen(msg) + 3;

    if (have + n > NGX_ACME_DNS_LOG_MAX) {
        return;
    }

    p = realloc(*log, have + n + 1);
    if (p == NULL) {
        return;
    }

    p[have] = (level == ACME_DNS_LOG_WARN) ? 'W' : 'I';
    p[have + 1] = '|';
    memcpy(p + have + 2, msg, n - 3);
    p[have + n - 1] = '\n';
    p[have + n] = '\0';
    *log = p;
}


/* Event loop: the lines ngx_acme_thread_log kept, logged for the
 * certificate id, and freed. */
void
ngx_acme_thread_log_flush(char **out, const char *id, ngx_log_t *log)
{
    char  *p, *nl;

    if (*out == NULL) {
        return;
    }

    for (p = *out; *p; p = nl) {
        nl = strchr(p, '\n');
        if (nl == NULL) {
            nl = p + ngx_strlen(p);
        }

        /* "W|msg" or "I|msg", one a line */
        if (nl - p > 2) {
            ngx_log_error((p[0] == 'W' ? NGX_LOG_WARN : NGX_LOG_INFO), log, 0,
                          "acme: certificate \"%s\": %*s", id,
                          (size_t) (nl - p - 2), p + 2);
        }

        if (*nl == '\n') {
            nl++;
        }
    }

    free(*out);
    *out = NULL;
}


/* the worker is going away: stop waiting (read-only flags, set by signals) */
static int
ngx_acme_dns_stopping(void *data)
{
    return ngx_terminate || ngx_quit || ngx_exiting;
}
