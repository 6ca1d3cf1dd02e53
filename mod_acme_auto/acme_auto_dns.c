/*
 * dns-01 for one order, in its job thread (blocking is fine there; every
 * step is bounded): common/acme_dns_publish.h does the work (RFC 2136 or
 * the hook, the propagation wait, the removal); this file supplies how a
 * program is started here (posix_spawn) and where the messages go.  The
 * engine hands the identifier and key authorization again on UNPUBLISH, so
 * nothing is remembered here.
 */
#include <string.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>
#include <sys/wait.h>

#include "httpd.h"
#include "http_log.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_dns_publish.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

struct acme_auto_dns_s {
    acme_auto_issuer_t     *iss;
    server_rec             *s;
    const char             *id;
    int                   (*should_stop)(void *);
    void                   *stop_data;
    acme_dns_runner_t       runner;
    acme_dns_publisher_t    pub;
};

/* -- the host's part: starting and reaping a program ---------------------- */

static long
spawn_hook(void *data, char *const argv[], char *const envp[], int err_fd,
    char *err, size_t errlen)
{
    posix_spawn_file_actions_t  fa;
    posix_spawnattr_t           sa;
    sigset_t                    none, dfl;
    pid_t                       pid;
    int                         rc;

    (void) data;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
    /* the child's listeners, logs and shared memory are not the hook's */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    posix_spawnattr_init(&sa);
    /* the job thread blocks every signal and Apache ignores some: the
     * program starts with the defaults, in a process group of its own so
     * that a timeout kills what it started too */
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGHUP);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGUSR1);
    sigaddset(&dfl, SIGCHLD);
    posix_spawnattr_setsigmask(&sa, &none);
    posix_spawnattr_setsigdefault(&sa, &dfl);
    posix_spawnattr_setpgroup(&sa, 0);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGMASK
                                  | POSIX_SPAWN_SETSIGDEF
                                  | POSIX_SPAWN_SETPGROUP);
    rc = posix_spawn(&pid, argv[0], &fa, &sa, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&sa);
    if (rc != 0) {
        acme_err(err, errlen, "%s", strerror(rc));
        return -1;
    }
    return (long) pid;
}

static int
reap_hook(void *data, long pid, int block, int *status)
{
    int    st = 0;
    pid_t  w;

    (void) data;
    do {
        w = waitpid((pid_t) pid, &st, block ? 0 : WNOHANG);
    } while (w < 0 && errno == EINTR);
    if (w == 0) {
        return 0;
    }
    if (w < 0) {
        return -1;
    }
    *status = WIFEXITED(st) ? WEXITSTATUS(st)
              : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 127;
    return 1;
}

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
    d->iss = iss;
    d->s = s;
    d->id = cert_id;
    d->should_stop = should_stop;
    d->stop_data = stop_data;
    d->runner.spawn = spawn_hook;
    d->runner.reap = reap_hook;

    d->pub.update = iss->dns_update;
    d->pub.zone = iss->dns_zone;
    d->pub.key = &iss->dns_key;
    d->pub.hook = iss->dns_hook;
    d->pub.hook_timeout_ms = iss->dns_hook_timeout * 1000;
    if (iss->dns_checks != NULL) {
        d->pub.checks = (const acme_dns_server_t *) iss->dns_checks->elts;
        d->pub.n_checks = (size_t) iss->dns_checks->nelts;
    }
    d->pub.check_timeout_ms = iss->dns_check_timeout * 1000;
    d->pub.timeout_ms = iss->timeout_sec * 1000;
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
