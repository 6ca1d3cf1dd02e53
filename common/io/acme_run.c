/*
 * Running a program (acme_run.h): the sequence both the dns-01 hook and the
 * event command use, and a posix_spawn runner.  Threads only.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "acme_run.h"
#include "acme_util.h"

#define RUN_LINE_MAX    512


void
acme_sleep_ms(int ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000;
    nanosleep(&ts, NULL);
}


static int
stopping(const acme_run_t *r)
{
    return r->stop != NULL && r->stop(r->data) != 0;
}


static void
run_line(const acme_run_t *r, char *line, char *last, size_t lastlen)
{
    char    msg[ACME_ERRLEN];
    size_t  n = strlen(line);

    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ')) {
        line[--n] = '\0';
    }
    if (n == 0) {
        return;
    }
    if (r->log != NULL) {
        snprintf(msg, sizeof(msg), "%s: %s", r->what ? r->what : "program",
                 line);
        r->log(r->data, ACME_RUN_LOG_WARN, msg);
    }
    snprintf(last, lastlen, "%s", line);
}


int
acme_run(const acme_run_t *r, char *const argv[], char *const envp[],
    char *err, size_t errlen)
{
    char           buf[1024], line[RUN_LINE_MAX], last[256], d[32];
    size_t         ll = 0;
    struct pollfd  pfd;
    long long      deadline, left;
    long           pid;
    ssize_t        n;
    int            fds[2], rc, status = 0, timed_out = 0, gave_up = 0, i;
    const char    *prog = argv[0];

    last[0] = '\0';
    if (r->runner == NULL || r->runner->spawn == NULL
        || r->runner->reap == NULL)
    {
        return acme_err(err, errlen, "no way to run a program here");
    }
    if (pipe(fds) != 0) {
        return acme_err(err, errlen, "pipe: %s", strerror(errno));
    }
    (void) fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    (void) fcntl(fds[1], F_SETFD, FD_CLOEXEC);

    pid = r->runner->spawn(r->runner->data, argv, envp, fds[1], buf,
                           sizeof(buf));
    close(fds[1]);
    if (pid <= 0) {
        close(fds[0]);
        return acme_err(err, errlen, "cannot run %s: %s", prog, buf);
    }

    /* stderr until EOF (the program exited or closed it) */
    deadline = acme_monotonic_ms() + r->timeout_ms;
    pfd.fd = fds[0];
    pfd.events = POLLIN;
    for ( ;; ) {
        left = deadline - acme_monotonic_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        if (stopping(r)) {
            gave_up = 1;
            break;
        }
        pfd.revents = 0;
        rc = poll(&pfd, 1, left > 200 ? 200 : (int) left);
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
            break;
        }
        for (i = 0; i < n; i++) {
            if (buf[i] == '\n' || ll == sizeof(line) - 1) {
                line[ll] = '\0';
                run_line(r, line, last, sizeof(last));
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
        run_line(r, line, last, sizeof(last));
    }
    close(fds[0]);

    /* then its exit, within the same deadline */
    for ( ;; ) {
        if (!timed_out && !gave_up) {
            rc = r->runner->reap(r->runner->data, pid, 0, &status);
            if (rc == 1) {
                break;
            }
            if (rc < 0) {
                return acme_err(err, errlen, "waiting for %s failed", prog);
            }
            if (acme_monotonic_ms() < deadline) {
                if (!stopping(r)) {
                    acme_sleep_ms(20);
                    continue;
                }
                gave_up = 1;
            } else {
                timed_out = 1;
            }
        }
        /* the group: the program and what it started */
        kill((pid_t) -pid, SIGKILL);
        kill((pid_t) pid, SIGKILL);
        (void) r->runner->reap(r->runner->data, pid, 1, &status);
        if (gave_up) {
            return acme_err(err, errlen, "%s stopped (the server is shutting "
                            "down)", prog);
        }
        return acme_err(err, errlen, "%s killed after %s", prog,
                        acme_duration_text(r->timeout_ms, d, sizeof(d)));
    }

    if (status == 0) {
        return 0;
    }
    if (status > 128) {
        return acme_err(err, errlen, "%s killed by signal %d%s%s", prog,
                        status - 128, last[0] ? ": " : "", last);
    }
    return acme_err(err, errlen, "%s exited with status %d%s%s", prog, status,
                    last[0] ? ": " : "", last);
}


/* ---- a posix_spawn runner (for hosts that may reap with waitpid(pid)) -- */


static long
spawn_posix(void *data, char *const argv[], char *const envp[], int err_fd,
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
    /* the server's listeners, logs and shared memory are not the program's */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    posix_spawnattr_init(&sa);
    /* the calling thread may block every signal and the server ignore
     * some: the program starts with the defaults, in a process group of its
     * own so that a timeout kills what it started too */
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
reap_posix(void *data, long pid, int block, int *status)
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

const acme_runner_t acme_runner_posix = {
    NULL, spawn_posix, reap_posix
};


int
acme_run_check(const char *path, char *err, size_t errlen)
{
    struct stat  st;

    if (path == NULL || path[0] != '/') {
        return acme_err(err, errlen, "'%s' is not an absolute path (the "
                        "program runs without a shell or PATH search)",
                        path ? path : "");
    }
    if (stat(path, &st) != 0) {
        return acme_err(err, errlen, "'%s' is not an executable file: %s",
                        path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
        return acme_err(err, errlen, "'%s' is not an executable file", path);
    }
    return 0;
}
