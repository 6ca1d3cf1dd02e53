/*
 * dns-01 for one order, in its job thread (blocking is fine there; every
 * step is bounded).
 *
 * The TXT record "_acme-challenge.<domain>" is added either by an RFC 2136
 * update signed with TSIG (AcmeDNSUpdate) or by a hook program
 * (AcmeDNSHook: "prog add|remove <domain> <txt-value>").  The engine asks
 * the CA to validate as soon as publish returns, so publish also waits
 * until every check server answers the record (AcmeDNSPropagationCheck;
 * default the update server, else the zone's NS hosts).  The engine does
 * not pass the key authorization again on unpublish: the records made are
 * remembered here by token.
 */
#include <string.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "httpd.h"
#include "http_log.h"
#include "apr_strings.h"

#include "mod_acme_auto.h"
#include "acme_dns.h"
#include "acme_util.h"

APLOG_USE_MODULE(acme_auto);

#define DNS_TTL             60
#define CHECK_INTERVAL_MS   2000
#define HOOK_PATH           "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:" \
                            "/usr/bin:/sbin:/bin"

typedef struct {
    char   *token;
    char   *domain;         /* identifier without "*." */
    char   *name;           /* _acme-challenge.<domain> */
    char   *txt;
    char   *zone;           /* RFC 2136: the zone updated */
} record_t;

struct acme_auto_dns_s {
    acme_auto_issuer_t  *iss;
    server_rec          *s;
    const char          *id;
    int                (*should_stop)(void *);
    void                *stop_data;
    record_t            *recs;
    size_t               n, cap;
};

static void
sleep_ms(int ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000;
    nanosleep(&ts, NULL);
}

static int
dns_timeout_ms(acme_auto_dns_t *d)
{
    return d->iss->timeout_sec * 1000;
}

acme_auto_dns_t *
acme_auto_dns_new(acme_auto_issuer_t *iss, server_rec *s, const char *cert_id,
    int (*should_stop)(void *), void *stop_data)
{
    acme_auto_dns_t *d = calloc(1, sizeof(*d));

    if (d != NULL) {
        d->iss = iss;
        d->s = s;
        d->id = cert_id;
        d->should_stop = should_stop;
        d->stop_data = stop_data;
    }
    return d;
}

static void
record_free(record_t *r)
{
    free(r->token);
    free(r->domain);
    free(r->name);
    free(r->txt);
    free(r->zone);
}

void
acme_auto_dns_free(acme_auto_dns_t *d)
{
    size_t i;

    if (d == NULL) {
        return;
    }
    for (i = 0; i < d->n; i++) {
        record_free(&d->recs[i]);
    }
    free(d->recs);
    free(d);
}

/* -- the hook program ----------------------------------------------------- */

/* Logs one stderr line of the hook; keeps the last one for the error. */
static void
hook_line(acme_auto_dns_t *d, const char *line, char *last, size_t lastlen)
{
    if (*line == '\0') {
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s, "mod_acme_auto: %s: "
                 "dns hook %s: %s", d->id, d->iss->dns_hook, line);
    apr_cpystrn(last, line, lastlen);
}

/*
 * Runs "hook verb domain txt" without a shell, with only PATH in the
 * environment, stdin/stdout on /dev/null and stderr read into the error
 * log; the process group is killed after the timeout.  0 on exit 0.
 */
static int
run_hook(acme_auto_dns_t *d, const char *verb, const char *domain,
    const char *txt, char *err, size_t errlen)
{
    posix_spawn_file_actions_t  fa;
    posix_spawnattr_t           sa;
    sigset_t                    none, dfl;
    char                       *argv[5], *envp[2], buf[1024], last[256];
    char                        line[512];
    size_t                      ll = 0;
    struct pollfd               pfd;
    long long                   deadline;
    pid_t                       pid, w;
    ssize_t                     n;
    int                         fds[2], rc, status = 0, timed_out = 0, i;

    argv[0] = (char *) d->iss->dns_hook;
    argv[1] = (char *) verb;
    argv[2] = (char *) domain;
    argv[3] = (char *) txt;
    argv[4] = NULL;
    envp[0] = (char *) HOOK_PATH;
    envp[1] = NULL;
    last[0] = '\0';

    if (pipe2(fds, O_CLOEXEC) != 0) {
        return acme_err(err, errlen, "dns hook %s: pipe: %s", verb,
                        strerror(errno));
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
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
    rc = posix_spawn(&pid, d->iss->dns_hook, &fa, &sa, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&sa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return acme_err(err, errlen, "dns hook %s %s: cannot run %s: %s",
                        verb, domain, d->iss->dns_hook, strerror(rc));
    }

    deadline = acme_monotonic_ms() + (long long) d->iss->dns_hook_timeout * 1000;
    pfd.fd = fds[0];
    pfd.events = POLLIN;
    for ( ;; ) {
        long long left = deadline - acme_monotonic_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        pfd.revents = 0;
        rc = poll(&pfd, 1, left > 1000 ? 1000 : (int) left);
        if (rc < 0 && errno != EINTR) {
            break;
        }
        if (rc <= 0) {
            continue;
        }
        n = read(fds[0], buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            break;                      /* EOF: the program closed stderr */
        }
        for (i = 0; i < n; i++) {
            if (buf[i] == '\n' || ll == sizeof(line) - 1) {
                line[ll] = '\0';
                hook_line(d, line, last, sizeof(last));
                ll = 0;
                if (buf[i] == '\n') {
                    continue;
                }
            }
            line[ll++] = buf[i];
        }
    }
    if (ll > 0) {
        line[ll] = '\0';
        hook_line(d, line, last, sizeof(last));
    }
    close(fds[0]);

    /* stderr is closed; the exit follows, bounded by the same deadline */
    for ( ;; ) {
        w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) {
            break;
        }
        if (timed_out || acme_monotonic_ms() >= deadline) {
            timed_out = 1;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
                /* retry */
            }
            break;
        }
        sleep_ms(20);
    }

    if (timed_out) {
        return acme_err(err, errlen, "dns hook %s %s: %s killed after %d s",
                        verb, domain, d->iss->dns_hook,
                        d->iss->dns_hook_timeout);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return 0;
    }
    if (WIFEXITED(status)) {
        return acme_err(err, errlen, "dns hook %s %s: %s exited with %d%s%s",
                        verb, domain, d->iss->dns_hook, WEXITSTATUS(status),
                        last[0] ? ": " : "", last);
    }
    return acme_err(err, errlen, "dns hook %s %s: %s killed by signal %d",
                    verb, domain, d->iss->dns_hook,
                    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* -- propagation ---------------------------------------------------------- */

/* The first "nameserver" of /etc/resolv.conf (IPv4/IPv6 literal). */
static int
system_resolver(char *out, size_t outlen)
{
    char  *text = NULL, *p, *e, err[ACME_ERRLEN];
    size_t len = 0;
    int    found = 0;

    if (acme_store_read("/etc/resolv.conf", &text, &len, 64 * 1024, err,
                        sizeof(err)) != 1)
    {
        return -1;
    }
    for (p = text; p && *p && !found; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, "nameserver", 10) != 0 || (p[10] != ' ' && p[10] != '\t')) {
            continue;
        }
        p += 11;
        p += strspn(p, " \t");
        e = p + strcspn(p, " \t\r\n");
        if (e > p && (size_t) (e - p) < outlen) {
            memcpy(out, p, e - p);
            out[e - p] = '\0';
            found = 1;
        }
    }
    free(text);
    return found ? 0 : -1;
}

/* Without AcmeDNSPropagationCheck or AcmeDNSUpdate: the zone's NS hosts on
 * port 53, found through the system's resolver. */
static apr_array_header_t *
ns_servers(acme_auto_dns_t *d, apr_pool_t *p, const char *name, char *err,
    size_t errlen)
{
    apr_array_header_t *a;
    char                resolver[64], *zone = NULL, **ns = NULL;
    size_t              n = 0, i;

    if (system_resolver(resolver, sizeof(resolver)) != 0) {
        acme_err(err, errlen, "dns propagation: no AcmeDNSPropagationCheck "
                 "and no nameserver in /etc/resolv.conf");
        return NULL;
    }
    if (acme_dns_find_zone_blocking(resolver, 53, 1, name, dns_timeout_ms(d),
                                    &zone, err, errlen) != 0
        || acme_dns_zone_ns_blocking(resolver, 53, 1, zone, dns_timeout_ms(d),
                                     &ns, &n, err, errlen) != 0)
    {
        char msg[ACME_ERRLEN];
        apr_cpystrn(msg, err, sizeof(msg));
        acme_err(err, errlen, "dns propagation: cannot find the name servers "
                 "of %s through %s: %s", name, resolver, msg);
        free(zone);
        return NULL;
    }
    a = apr_array_make(p, (int) n, sizeof(acme_auto_dns_server_t));
    for (i = 0; i < n; i++) {
        acme_auto_dns_server_t *sv = apr_array_push(a);
        sv->host = apr_pstrdup(p, ns[i]);
        sv->port = 53;
        free(ns[i]);
    }
    free(ns);
    free(zone);
    return a;
}

static const char *
server_list(apr_pool_t *p, apr_array_header_t *a)
{
    const char *out = "";
    int         i;

    for (i = 0; i < a->nelts; i++) {
        acme_auto_dns_server_t *sv = &APR_ARRAY_IDX(a, i,
                                                    acme_auto_dns_server_t);
        out = apr_psprintf(p, "%s%s%s:%d", out, i ? ", " : "", sv->host,
                           sv->port);
    }
    return out;
}

/* Polls every check server every 2 s until each answers the record. */
static int
wait_visible(acme_auto_dns_t *d, record_t *r, char *err, size_t errlen)
{
    apr_pool_t         *p;
    apr_array_header_t *servers = d->iss->dns_checks, *one;
    char               *seen, msg[ACME_ERRLEN];
    long long           deadline;
    int                 i, left, rc = -1;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return acme_err(err, errlen, "dns propagation: out of memory");
    }
    if (servers == NULL && d->iss->dns_update.host != NULL) {
        one = apr_array_make(p, 1, sizeof(acme_auto_dns_server_t));
        APR_ARRAY_PUSH(one, acme_auto_dns_server_t) = d->iss->dns_update;
        servers = one;
    }
    if (servers == NULL) {
        servers = ns_servers(d, p, r->name, err, errlen);
        if (servers == NULL) {
            goto done;
        }
    }
    seen = apr_pcalloc(p, servers->nelts + 1);
    msg[0] = '\0';
    deadline = acme_monotonic_ms() + (long long) d->iss->dns_check_timeout * 1000;
    for ( ;; ) {
        left = 0;
        for (i = 0; i < servers->nelts; i++) {
            acme_auto_dns_server_t *sv = &APR_ARRAY_IDX(servers, i,
                                                        acme_auto_dns_server_t);
            if (seen[i]) {
                continue;
            }
            if (acme_dns_txt_visible_blocking(sv->host, sv->port, r->name,
                                              r->txt, dns_timeout_ms(d), msg,
                                              sizeof(msg)) == 1)
            {
                seen[i] = 1;
            }
            else {
                left++;
            }
        }
        if (left == 0) {
            rc = 0;
            break;
        }
        if (acme_monotonic_ms() + CHECK_INTERVAL_MS > deadline
            || (d->should_stop && d->should_stop(d->stop_data)))
        {
            apr_array_header_t *missing = apr_array_make(p, left,
                                              sizeof(acme_auto_dns_server_t));
            for (i = 0; i < servers->nelts; i++) {
                if (!seen[i]) {
                    APR_ARRAY_PUSH(missing, acme_auto_dns_server_t) =
                        APR_ARRAY_IDX(servers, i, acme_auto_dns_server_t);
                }
            }
            acme_err(err, errlen, "dns propagation: %s TXT \"%s\" not visible "
                     "on %s after %d s%s%s", r->name, r->txt,
                     server_list(p, missing), d->iss->dns_check_timeout,
                     msg[0] ? " (last error: " : "", msg[0] ? msg : "");
            if (msg[0]) {
                apr_cpystrn(err + strlen(err), ")", errlen - strlen(err));
            }
            break;
        }
        sleep_ms(CHECK_INTERVAL_MS);
    }
done:
    apr_pool_destroy(p);
    return rc;
}

/* -- publish / unpublish -------------------------------------------------- */

static int
update(acme_auto_dns_t *d, record_t *r, acme_dns_update_op_t op, char *err,
    size_t errlen)
{
    acme_auto_issuer_t *iss = d->iss;
    char                msg[ACME_ERRLEN];

    msg[0] = '\0';
    if (r->zone == NULL) {
        if (iss->dns_zone != NULL) {
            r->zone = acme_strdup(iss->dns_zone);
        }
        else if (acme_dns_find_zone_blocking(iss->dns_update.host,
                     iss->dns_update.port, 0, r->name, dns_timeout_ms(d),
                     &r->zone, msg, sizeof(msg)) != 0)
        {
            return acme_err(err, errlen, "dns-01 update: cannot find the zone "
                            "of %s at %s:%d: %s", r->name, iss->dns_update.host,
                            iss->dns_update.port, msg);
        }
        if (r->zone == NULL) {
            return acme_err(err, errlen, "dns-01 update: out of memory");
        }
    }
    if (acme_dns_update_blocking(iss->dns_update.host, iss->dns_update.port,
                                 r->zone, r->name, r->txt, DNS_TTL, op,
                                 &iss->dns_key, dns_timeout_ms(d), msg,
                                 sizeof(msg)) != 0)
    {
        return acme_err(err, errlen, "dns-01 update (%s %s TXT in zone %s at "
                        "%s:%d, key %s): %s",
                        op == ACME_DNS_UPDATE_ADD ? "add" : "delete", r->name,
                        r->zone, iss->dns_update.host, iss->dns_update.port,
                        iss->dns_key.name, msg);
    }
    return 0;
}

int
acme_auto_dns_publish(acme_auto_dns_t *d, const char *identifier,
    const char *token, const char *key_authz, char *err, size_t errlen)
{
    record_t *r, *nr;

    if (d->n == d->cap) {
        nr = realloc(d->recs, (d->cap ? d->cap * 2 : 4) * sizeof(*nr));
        if (nr == NULL) {
            return acme_err(err, errlen, "dns-01: out of memory");
        }
        d->recs = nr;
        d->cap = d->cap ? d->cap * 2 : 4;
    }
    r = &d->recs[d->n];
    memset(r, 0, sizeof(*r));
    r->token = acme_strdup(token);
    r->domain = acme_strdup(strncmp(identifier, "*.", 2) == 0 ? identifier + 2
                                                               : identifier);
    r->name = acme_dns01_record_name(identifier);
    r->txt = acme_dns01_txt_value(key_authz);
    if (r->token == NULL || r->domain == NULL || r->name == NULL
        || r->txt == NULL)
    {
        record_free(r);
        return acme_err(err, errlen, "dns-01: cannot make the record of %s",
                        identifier);
    }
    /* remembered before the attempt: an update or hook that failed halfway
     * is undone all the same */
    d->n++;

    if (d->iss->dns_update.host != NULL) {
        if (update(d, r, ACME_DNS_UPDATE_ADD, err, errlen) != 0) {
            return -1;
        }
    }
    else if (run_hook(d, "add", r->domain, r->txt, err, errlen) != 0) {
        return -1;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, d->s, "mod_acme_auto: %s: %s TXT "
                 "\"%s\" added%s%s; waiting until it is visible", d->id,
                 r->name, r->txt, r->zone ? " in zone " : " by the hook",
                 r->zone ? r->zone : "");
    if (wait_visible(d, r, err, errlen) != 0) {
        return -1;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->s, "mod_acme_auto: %s: %s "
                 "TXT visible", d->id, r->name);
    return 0;
}

void
acme_auto_dns_unpublish(acme_auto_dns_t *d, const char *token)
{
    char   err[ACME_ERRLEN];
    size_t i;
    int    rc;

    for (i = 0; i < d->n; i++) {
        record_t *r = &d->recs[i];
        if (strcmp(r->token, token) != 0) {
            continue;
        }
        if (d->iss->dns_update.host != NULL) {
            rc = update(d, r, ACME_DNS_UPDATE_DELETE, err, sizeof(err));
        }
        else {
            rc = run_hook(d, "remove", r->domain, r->txt, err, sizeof(err));
        }
        if (rc != 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->s, "mod_acme_auto: "
                         "%s: the TXT record %s stays: %s", d->id, r->name,
                         err);
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, d->s, "mod_acme_auto: "
                         "%s: %s TXT \"%s\" removed", d->id, r->name, r->txt);
        }
        record_free(r);
        d->recs[i] = d->recs[--d->n];
        return;
    }
}
