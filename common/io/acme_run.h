/*
 * Running a program for the server, one implementation for both servers:
 * the dns-01 hook (acme_dns_publish.h) and the event command
 * (acme_event_run.h) go through it.  No shell: argv[0] is an absolute path
 * run with execve and the environment given (nothing of the server's);
 * stdin and stdout on /dev/null, stderr read line by line into the host's
 * log; the process group is killed at the timeout.  Threads only (nginx's
 * thread pool, Apache's job or event thread), never an event loop.
 *
 * A host supplies only how it starts and reaps a program (acme_runner_t):
 * nginx needs a clone()-based helper its SIGCHLD handler cannot reap,
 * Apache uses posix_spawn (acme_runner_posix).
 */
#ifndef ACME_RUN_H
#define ACME_RUN_H

#include <stddef.h>

/* How a host starts a program; both calls are made from the same thread. */
typedef struct {
    void  *data;
    /*
     * Starts argv[0] (execve: no shell, envp as given) with stdin and
     * stdout on /dev/null, stderr on err_fd, every other descriptor closed,
     * signals at their defaults and unblocked, in a new process group whose
     * id is the returned pid (killing -pid kills it all).  pid > 0, or -1
     * with err.
     */
    long (*spawn)(void *data, char *const argv[], char *const envp[],
                  int err_fd, char *err, size_t errlen);
    /*
     * 1 with *status (the exit code, or 128 + the signal) once pid ended;
     * 0 while it runs (only when block == 0); -1 on error.
     */
    int  (*reap)(void *data, long pid, int block, int *status);
} acme_runner_t;

/*
 * posix_spawn + waitpid(pid): for a host whose own SIGCHLD handling leaves
 * the program's status alone (Apache's threads).  Signals at their
 * defaults, mask empty, descriptors >= 3 closed (glibc >= 2.34).
 */
extern const acme_runner_t acme_runner_posix;

#define ACME_RUN_LOG_INFO   1
#define ACME_RUN_LOG_WARN   2

typedef struct {
    const acme_runner_t  *runner;
    int                   timeout_ms;       /* > 0 */
    /* "dns hook", "event command": the prefix of each stderr line logged */
    const char           *what;
    void                 *data;
    /* non-NULL and non-zero: the host is going away, the program is
     * killed (polled every 200 ms) */
    int                 (*stop)(void *data);
    /* each stderr line ("<what>: <line>", ACME_RUN_LOG_WARN); NULL = none */
    void                (*log)(void *data, int level, const char *msg);
} acme_run_t;

/*
 * Runs argv (argv[0] the program's absolute path) with envp.  0 on exit 0,
 * else -1 with err, which names argv[0]: "cannot run P: ...", "P exited
 * with status N: <its last stderr line>", "P killed by signal N", "P
 * killed after 30 s", "P stopped (the server is shutting down)".
 */
int acme_run(const acme_run_t *r, char *const argv[], char *const envp[],
    char *err, size_t errlen);

/*
 * A configured program (dns_hook / AcmeDNSHook, acme_event_command /
 * AcmeEventCommand): an absolute path (it runs without a shell or a PATH
 * search) of a regular file with an execute bit.  0, or -1 with err.
 * Configuration time (also -t).
 */
int acme_run_check(const char *path, char *err, size_t errlen);

/* Sleeps ms milliseconds (threads only). */
void acme_sleep_ms(int ms);

#endif
