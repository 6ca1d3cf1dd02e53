/*
 * An LD_PRELOAD shim that makes the store's writes fail (test_store_errors):
 * write() / pwrite() / writev() ("write") and fsync() / fdatasync()
 * ("fsync") on a file descriptor whose path (/proc/self/fd) is below
 * $ACME_FAULT_DIR fail with a chosen errno while the flag file
 * $ACME_FAULT_FLAG exists.  Each of its lines is
 *
 *     SUBSTRING OP ERRNO        e.g. "/a.example.test_ecdsa-256 write 5"
 *
 * and applies when SUBSTRING occurs in the path and OP is the call's kind.
 * Build: cc -shared -fPIC -o faultshim.so faultshim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* copies: nginx keeps only TZ of the environment, and its setproctitle
 * overwrites the environment strings */
static char *dir, *flag;

__attribute__((constructor)) static void init(void)
{
    const char *d = getenv("ACME_FAULT_DIR"), *f = getenv("ACME_FAULT_FLAG");

    dir = d ? strdup(d) : NULL;
    flag = f ? strdup(f) : NULL;
}

/* the errno fd's call of kind op fails with now, or 0 */
static int fault(int fd, const char *op)
{
    char   link[64], path[4096], buf[4096], *line, *save, sub[1024], o[16];
    int    e, n, ffd;
    ssize_t len;

    if (dir == NULL || flag == NULL || access(flag, F_OK) != 0) {
        return 0;
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    len = readlink(link, path, sizeof(path) - 1);
    if (len <= 0) {
        return 0;
    }
    path[len] = '\0';
    if (strncmp(path, dir, strlen(dir)) != 0) {
        return 0;
    }
    ffd = open(flag, O_RDONLY | O_CLOEXEC);
    if (ffd < 0) {
        return 0;
    }
    len = read(ffd, buf, sizeof(buf) - 1);
    close(ffd);
    if (len <= 0) {
        return 0;
    }
    buf[len] = '\0';
    for (line = strtok_r(buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
    {
        n = sscanf(line, "%1023s %15s %d", sub, o, &e);
        if (n == 3 && strcmp(o, op) == 0 && strstr(path, sub) != NULL) {
            return e;
        }
    }
    return 0;
}

#define REAL(name)                                                        \
    static __typeof__(name) *real;                                        \
    if (real == NULL) real = dlsym(RTLD_NEXT, #name)

#define FAIL_IF(fd, op)                                                   \
    do {                                                                  \
        int e_ = fault(fd, op);                                           \
        if (e_ != 0) {                                                    \
            errno = e_;                                                   \
            return -1;                                                    \
        }                                                                 \
    } while (0)

ssize_t write(int fd, const void *b, size_t n)
{
    REAL(write);
    FAIL_IF(fd, "write");
    return real(fd, b, n);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
    REAL(pwrite);
    FAIL_IF(fd, "write");
    return real(fd, b, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev);
    FAIL_IF(fd, "write");
    return real(fd, iov, cnt);
}

int fsync(int fd)
{
    REAL(fsync);
    FAIL_IF(fd, "fsync");
    return real(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync);
    FAIL_IF(fd, "fsync");
    return real(fd);
}
