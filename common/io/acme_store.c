/*
 * The on-disk store (layout in acme_store.h).
 *
 * Crash safety rests on one primitive, acme_store_write_atomic(): a file is
 * only ever replaced by rename() of a complete, fsync'd sibling, so a reader
 * (or the next start after a crash) sees the old or the new content, never a
 * mix.  Loaders never delete or "repair" anything: a corrupt file is an error
 * for a human to look at, and the certificate already serving stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "acme_cert.h"
#include "acme_jws.h"
#include "acme_store.h"
#include "acme_util.h"

/* Bounds for what we read back: generous, but a runaway file is an error. */
#define STORE_MAX_JSON    (64 * 1024)
#define STORE_MAX_BUNDLE  (1024 * 1024)

static int
write_all(int fd, const char *p, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }

    return 0;
}

/* Directory part of path ("." when there is none), malloc'd. */
static char *
dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        return acme_strdup(".");
    }
    if (slash == path) {
        return acme_strdup("/");
    }
    return acme_strndup(path, (size_t) (slash - path));
}

static int
fsync_dir(const char *dir)
{
    int fd, rc;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    rc = fsync(fd);
    close(fd);
    return rc;
}

int
acme_store_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, char *err, size_t errlen)
{
    char       *dir, *tmp;
    const char *base;
    int         fd, e;

    dir = dir_of(path);
    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (dir == NULL || *base == '\0') {
        free(dir);
        return acme_err(err, errlen, "invalid path \"%s\"", path);
    }

    /* the temporary name is hidden and unique; mkstemp creates it 0600, so
     * a key is never readable by others even before the fchmod */
    tmp = acme_sprintf("%s/.%s.tmpXXXXXX", dir, base);
    if (tmp == NULL) {
        free(dir);
        return acme_err(err, errlen, "out of memory");
    }

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        acme_err(err, errlen, "cannot create a temporary file in \"%s\": %s",
                 dir, strerror(e));
        goto failed_nofile;
    }

    if (write_all(fd, data, len) != 0) {
        e = errno;
        acme_err(err, errlen, "write \"%s\": %s", tmp, strerror(e));
        goto failed;
    }
    if (fsync(fd) != 0) {
        e = errno;
        acme_err(err, errlen, "fsync \"%s\": %s", tmp, strerror(e));
        goto failed;
    }
    if (fchmod(fd, mode) != 0) {
        e = errno;
        acme_err(err, errlen, "fchmod \"%s\": %s", tmp, strerror(e));
        goto failed;
    }
    if (close(fd) != 0) {
        fd = -1;
        e = errno;
        acme_err(err, errlen, "close \"%s\": %s", tmp, strerror(e));
        goto failed;
    }
    fd = -1;

    if (rename(tmp, path) != 0) {
        e = errno;
        acme_err(err, errlen, "rename \"%s\" to \"%s\": %s", tmp, path,
                 strerror(e));
        goto failed;
    }

    /* make the rename itself durable */
    if (fsync_dir(dir) != 0) {
        e = errno;
        free(tmp);
        free(dir);
        return acme_err(err, errlen, "fsync directory of \"%s\": %s", path,
                        strerror(e));
    }

    free(tmp);
    free(dir);
    return 0;

failed:

    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);

failed_nofile:

    free(tmp);
    free(dir);
    return -1;
}

/* Reads what fd (open, regular) holds, at most max bytes; closes fd. */
static int
read_fd(int fd, const struct stat *st, const char *path, char **data,
    size_t *len, size_t max, char *err, size_t errlen)
{
    char     *buf, *nb;
    size_t    n, cap;
    ssize_t   r;
    int       e;

    if ((unsigned long long) st->st_size > max) {
        close(fd);
        return acme_err(err, errlen, "\"%s\" is larger than %zu bytes", path,
                        max);
    }

    /* read up to max + 1 so a file that grew after fstat is still caught */
    cap = (size_t) st->st_size + 1;
    buf = malloc(cap + 1);
    if (buf == NULL) {
        close(fd);
        return acme_err(err, errlen, "out of memory");
    }

    n = 0;
    for ( ;; ) {
        if (n == cap) {
            if (cap > max) {
                free(buf);
                close(fd);
                return acme_err(err, errlen, "\"%s\" is larger than %zu bytes",
                                path, max);
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                close(fd);
                return acme_err(err, errlen, "out of memory");
            }
            buf = nb;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            e = errno;
            free(buf);
            close(fd);
            acme_err(err, errlen, "read \"%s\": %s", path, strerror(e));
            errno = e;
            return -1;
        }
        if (r == 0) {
            break;
        }
        n += (size_t) r;
    }
    close(fd);

    if (n > max) {
        free(buf);
        return acme_err(err, errlen, "\"%s\" is larger than %zu bytes", path,
                        max);
    }

    buf[n] = '\0';
    *data = buf;
    if (len) {
        *len = n;
    }
    return 1;
}

int
acme_store_read(const char *path, char **data, size_t *len, size_t max,
    char *err, size_t errlen)
{
    struct stat  st;
    int          fd, e;

    *data = NULL;
    if (len) {
        *len = 0;
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        e = errno;
        return acme_err(err, errlen, "open \"%s\": %s", path, strerror(e));
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return acme_err(err, errlen, "\"%s\" is not a regular file", path);
    }

    return read_fd(fd, &st, path, data, len, max, err, errlen);
}

static int check_ancestors(const char *parent, char *warn, size_t warnlen,
    char *err, size_t errlen);


int
acme_store_check_writable(const char *path, char *err, size_t errlen)
{
    char        *p, *slash;
    struct stat  st;
    int          e;

    if (path == NULL || *path == '\0') {
        return acme_err(err, errlen, "empty path");
    }

    /* what acme_store_dir_open_root() will refuse, said at config test */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        errno = ELOOP;
        return acme_err(err, errlen, "\"%s\" is a symbolic link: the store "
                        "is opened without following one, give the real "
                        "path", path);
    }
    if (check_ancestors(path, NULL, 0, err, errlen) != 0) {
        return -1;
    }

    p = acme_strdup(path);
    if (p == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    for ( ;; ) {
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                /* only the path itself can be one (below a file stat says
                 * ENOTDIR): the store would be refused at start */
                acme_err(err, errlen, "\"%s\" is not a directory", p);
                free(p);
                errno = ENOTDIR;
                return -1;
            }
            if (access(p, W_OK | X_OK) != 0) {
                e = errno;
                acme_err(err, errlen, "\"%s\" is not writable (needed for "
                         "\"%s\"): %s", p, path, strerror(e));
                free(p);
                errno = e;
                return -1;
            }
            free(p);
            return 0;
        }

        if (errno != ENOENT) {
            acme_err(err, errlen, "stat \"%s\": %s", p, strerror(errno));
            free(p);
            return -1;
        }

        /* go to the parent, ignoring trailing slashes */
        slash = p + strlen(p);
        while (slash > p && slash[-1] == '/') {
            *--slash = '\0';
        }
        slash = strrchr(p, '/');
        if (slash == NULL) {
            strcpy(p, ".");
        } else if (slash == p) {
            p[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
}

/* -- the store as seen by the worker / child user ------------------------- */

/*
 * Calls fn for every directory on the way to path, outermost first ("/a",
 * "/a/b", ... path itself); an empty path is "/" when with_root, else
 * skipped.  fn returns 0 to go on, > 0 to stop (0 returned), < 0 to stop
 * with an error (-1 returned, err set by fn).
 */
static int
each_prefix(const char *path, int with_root,
    int (*fn)(const char *dir, void *data, char *err, size_t errlen),
    void *data, char *err, size_t errlen)
{
    char  *p, *s;
    int    last, rc, e;

    p = acme_strdup(path);
    if (p == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    rc = 0;
    s = p;
    for ( ;; ) {
        while (*s == '/') {
            s++;
        }
        while (*s != '/' && *s != '\0') {
            s++;
        }
        last = (*s == '\0');
        *s = '\0';

        if (*p != '\0' || with_root) {
            rc = fn(*p ? p : "/", data, err, errlen);
            if (rc != 0) {
                rc = (rc < 0) ? -1 : 0;
                break;
            }
        }

        if (last) {
            break;
        }
        *s++ = '/';
    }

    e = errno;          /* fn's errno, for the caller */
    free(p);
    errno = e;
    return rc;
}

/*
 * May the user (uid, gid, groups) do want (R_OK/W_OK/X_OK bits) on st, by
 * the mode bits?  A component with a POSIX ACL (its group bits are then a
 * mask) is not judged here: 1.
 */
static int
user_may(const char *p, const struct stat *st, const acme_store_user_t *u,
    int want)
{
    mode_t  m;
    size_t  i;
    int     in_group;

    if (u->uid == 0
        || getxattr(p, "system.posix_acl_access", NULL, 0) >= 0)
    {
        return 1;
    }
    in_group = (st->st_gid == u->gid);
    for (i = 0; !in_group && i < u->n_groups; i++) {
        in_group = (st->st_gid == u->groups[i]);
    }
    m = st->st_uid == u->uid ? (st->st_mode >> 6) & 7
        : in_group ? (st->st_mode >> 3) & 7
        : st->st_mode & 7;
    return ((int) m & want) == want;
}

/*
 * Every directory on the way to path (path included) searchable by the
 * user: each prefix of path, symlinks followed by stat().  -1 with err
 * naming the first one that is not, else 0.
 */
static int
searchable_step(const char *dir, void *data, char *err, size_t errlen)
{
    const acme_store_user_t  *u = data;
    struct stat               st;

    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)
        && !user_may(dir, &st, u, X_OK))
    {
        return acme_err(err, errlen, "\"%s\" is not searchable by user "
                        "\"%s\"", dir, u->name);
    }
    return 0;
}

static int
walk_searchable(const char *path, const acme_store_user_t *u, char *err,
    size_t errlen)
{
    return each_prefix(path, 1, searchable_step, (void *) u, err, errlen);
}

void
acme_store_user_init(acme_store_user_t *u, const char *name, uid_t uid,
    gid_t gid)
{
    int  n;

    u->name = name;
    u->uid = uid;
    u->gid = gid;
    u->n_groups = 0;
    n = (int) (sizeof(u->groups) / sizeof(u->groups[0]));
    if (name != NULL && getgrouplist(name, gid, u->groups, &n) >= 0) {
        u->n_groups = (size_t) n;
    }
}

int
acme_store_check_user(const char *path, const acme_store_user_t *u, int give,
    char *err, size_t errlen)
{
    char            *p, *way, *real, *slash;
    int              rc, exists;
    struct stat      st;
    struct statvfs   sv;

    if (path == NULL || *path != '/') {
        return 0;                       /* relative: the caller resolves */
    }
    p = acme_strdup(path);
    if (p == NULL) {
        return acme_err(err, errlen, "out of memory");
    }
    slash = p + strlen(p);
    while (slash > p + 1 && slash[-1] == '/') {
        *--slash = '\0';
    }

    /* the deepest existing component: below it root creates 0755 / 0700
     * directories given to the user (acme_store_dir_open_root) */
    exists = (stat(p, &st) == 0);
    if (!exists) {
        do {
            slash = strrchr(p, '/');
            if (slash == p) {
                p[1] = '\0';
            } else {
                *slash = '\0';
            }
        } while (stat(p, &st) != 0 && slash != p);
    }
    if (!S_ISDIR(st.st_mode)) {
        free(p);
        return 0;                       /* acme_store_check_writable says it */
    }

    /* the way there as written and, through symlinks, where it leads
     * (when the store exists, up to its parent: see below) */
    way = p;
    if (exists) {
        slash = strrchr(p, '/');
        way = slash == p ? acme_strdup("/")
                         : acme_strndup(p, (size_t) (slash - p));
        if (way == NULL) {
            free(p);
            return acme_err(err, errlen, "out of memory");
        }
    }
    rc = walk_searchable(way, u, err, errlen);
    if (rc == 0) {
        real = realpath(way, NULL);
        if (real != NULL) {
            rc = walk_searchable(real, u, err, errlen);
            free(real);
        }
    }
    if (way != p) {
        free(way);
    }
    if (rc != 0) {
        free(p);
        errno = EACCES;
        return -1;
    }

    /* the store itself exists: root gives it to the user (give), so the
     * owner's bits count; the user must be able to enter and write it */
    if (exists) {
        if (give) {
            st.st_uid = u->uid;
            st.st_gid = u->gid;
        }
        if (!user_may(p, &st, u, X_OK)) {
            (void) acme_err(err, errlen, "\"%s\" is not searchable by user "
                            "\"%s\" (mode %04o)", p, u->name,
                            (unsigned) (st.st_mode & 07777));
            free(p);
            errno = EACCES;
            return -1;
        }
        if (!user_may(p, &st, u, W_OK)
            && !(statvfs(p, &sv) == 0 && (sv.f_flag & ST_RDONLY)))
        {
            (void) acme_err(err, errlen, "\"%s\" is not writable by user "
                            "\"%s\" (mode %04o)", p, u->name,
                            (unsigned) (st.st_mode & 07777));
            free(p);
            errno = EACCES;
            return 1;
        }
    }

    free(p);
    return 0;
}

/* -- root-safe access through directory descriptors ----------------------- */

static int id_valid(const char *id);

/* acme_err that leaves errno at e (the caller's cause) */
static int err_errno(int e, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
err_errno(int e, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    errno = e;
    return -1;
}

static const char  kind_symlink[] = "is a symbolic link";

/* Describes why name below dfd was refused ("is a symlink", ...). */
static const char *
kind_of(int dfd, const char *name)
{
    struct stat st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return "cannot be examined";
    }
    if (S_ISLNK(st.st_mode)) {
        return kind_symlink;
    }
    if (S_ISDIR(st.st_mode)) {
        return "is a directory";
    }
    if (S_ISREG(st.st_mode)) {
        return "is a regular file";
    }
    return "is not a regular file or directory";
}

static void
dir_init(acme_store_dir_t *d)
{
    d->fd = -1;
    d->path = NULL;
    d->uid = 0;
    d->gid = 0;
    d->give = 0;
}

void
acme_store_dir_close(acme_store_dir_t *d)
{
    if (d->fd >= 0) {
        close(d->fd);
    }
    free(d->path);
    dir_init(d);
}

/* Who may own an entry below the root: the store's user or root. */
static int
owner_ok(const acme_store_dir_t *d, const struct stat *st)
{
    return st->st_uid == d->uid || st->st_uid == 0;
}

/*
 * Ancestors of the root are given by the administrator and may be
 * symlinks; they are trusted when owned by root (or the caller) and not
 * writable by group/others (unless sticky, as /tmp).  A symlink owned by
 * anybody else is refused (-1 with err, errno EPERM): its owner decides
 * where root creates directories.  Anything else is only named in warn: the
 * administrator chose that place.
 */
/* What check_ancestors() needs of each directory: where to warn. */
typedef struct {
    char    *warn;
    size_t   warnlen;
} ancestors_ctx_t;

/* One directory above the store: 0 go on, 1 stop (warned, or nothing
 * further to see), -1 refused. */
static int
ancestor_step(const char *dir, void *data, char *err, size_t errlen)
{
    ancestors_ctx_t  *a = data;
    struct stat       st;

    if (lstat(dir, &st) != 0) {
        return 1;       /* created by us, root-owned */
    }

    /*
     * Whoever owns a symlink on the way decides where the store is: root
     * would then create and hand over directories wherever it points
     * (e.g. a link planted in /tmp).
     */
    if (S_ISLNK(st.st_mode)) {
        if (st.st_uid != 0 && st.st_uid != geteuid()) {
            errno = EPERM;
            return acme_err(err, errlen, "\"%s\" above the store is a "
                            "symbolic link owned by uid %u, not root: "
                            "refused (give the real path)", dir,
                            (unsigned) st.st_uid);
        }
        if (stat(dir, &st) != 0) {
            return 1;
        }
    }

    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        acme_err(a->warn, a->warnlen, "\"%s\" above the store is owned by "
                 "uid %u, not root: whoever owns it can replace the store",
                 dir, (unsigned) st.st_uid);
        return 1;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        acme_err(a->warn, a->warnlen, "\"%s\" above the store is writable "
                 "by group or others: they can replace the store", dir);
        return 1;
    }
    return 0;
}

static int
check_ancestors(const char *parent, char *warn, size_t warnlen, char *err,
    size_t errlen)
{
    ancestors_ctx_t  a;

    if (warn != NULL && warnlen > 0) {
        warn[0] = '\0';
    }
    a.warn = warn;
    a.warnlen = warnlen;
    return each_prefix(parent, 0, ancestor_step, &a, err, errlen);
}

/* mkdir for one ancestor, 0755, owned by the caller: 0 or -1. */
static int
make_step(const char *dir, void *data, char *err, size_t errlen)
{
    int  e;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        e = errno;
        err_errno(e, err, errlen, "mkdir \"%s\": %s", dir, strerror(e));
        errno = e;
        return -1;
    }
    return 0;
}

/* mkdir -p for the ancestors, 0755, owned by the caller. */
static int
make_ancestors(const char *path, char *err, size_t errlen)
{
    return each_prefix(path, 0, make_step, NULL, err, errlen);
}

/*
 * Opens (creating when create) the directory name below dfd, never
 * following a symlink; path names it in messages.  The new fd, or -1.
 */
static int
open_dir_at(int dfd, const char *name, const char *path, int create,
    int *created, char *err, size_t errlen)
{
    int          fd, e;
    const char  *kind;

    *created = 0;

    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(dfd, name, 0700) == 0) {
            *created = 1;
        } else if (errno != EEXIST) {
            e = errno;
            return err_errno(e, err, errlen, "mkdir \"%s\": %s", path,
                             strerror(e));
        }
        fd = openat(dfd, name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }

    if (fd < 0) {
        e = errno;
        if (e == ENOENT) {
            return err_errno(e, err, errlen, "\"%s\" does not exist", path);
        }
        if (e == ELOOP || e == ENOTDIR) {
            /* O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR */
            kind = kind_of(dfd, name);
            return err_errno(kind == kind_symlink ? ELOOP : e,
                             err, errlen, "\"%s\" %s, refused", path, kind);
        }
        return err_errno(e, err, errlen, "open \"%s\": %s", path,
                         strerror(e));
    }

    return fd;
}

/* Checks (and for a new directory sets) mode and owner of d->fd. */
static int
settle_dir(acme_store_dir_t *d, int created, int is_root, char *err,
    size_t errlen)
{
    struct stat  st;
    int          e;

    if (created && fchmod(d->fd, 0700) != 0) {
        e = errno;
        return err_errno(e, err, errlen, "chmod \"%s\": %s", d->path,
                         strerror(e));
    }

    if (fstat(d->fd, &st) != 0) {
        e = errno;
        return err_errno(e, err, errlen, "stat \"%s\": %s", d->path,
                         strerror(e));
    }

    if (d->give && (created || is_root)
        && (st.st_uid != d->uid
            || (d->gid != (gid_t) -1 && st.st_gid != d->gid)))
    {
        /* through the descriptor: the directory we checked, not a path */
        if (fchown(d->fd, d->uid, d->gid) != 0) {
            e = errno;
            return err_errno(e, err, errlen, "chown \"%s\": %s", d->path,
                             strerror(e));
        }
        return 0;
    }

    if (!owner_ok(d, &st)) {
        acme_err(err, errlen, "\"%s\" is owned by uid %u, not by uid %u or "
                 "root, refused", d->path, (unsigned) st.st_uid,
                 (unsigned) d->uid);
        errno = EPERM;
        return -1;
    }

    return 0;
}

int
acme_store_dir_open_root(acme_store_dir_t *d, const char *root, uid_t uid,
    gid_t gid, int create, char *warn, size_t warnlen, char *err,
    size_t errlen)
{
    char        *parent, *base, *slash;
    int          pfd, created, e;

    dir_init(d);
    if (warn != NULL && warnlen > 0) {
        warn[0] = '\0';
    }

    if (root == NULL || *root == '\0') {
        errno = EINVAL;
        return acme_err(err, errlen, "empty store path");
    }

    /* "<parent>/<base>", trailing slashes ignored */
    d->path = acme_strdup(root);
    if (d->path == NULL) {
        errno = ENOMEM;
        return acme_err(err, errlen, "out of memory");
    }
    slash = d->path + strlen(d->path);
    while (slash > d->path + 1 && slash[-1] == '/') {
        *--slash = '\0';
    }

    slash = strrchr(d->path, '/');
    if (slash == NULL) {
        parent = acme_strdup(".");
        base = d->path;
    } else {
        parent = slash == d->path ? acme_strdup("/")
                                  : acme_strndup(d->path,
                                                 (size_t) (slash - d->path));
        base = slash + 1;
    }
    if (parent == NULL || *base == '\0' || strcmp(base, ".") == 0
        || strcmp(base, "..") == 0)
    {
        free(parent);
        acme_err(err, errlen, "\"%s\" cannot be a store directory", root);
        acme_store_dir_close(d);
        errno = EINVAL;
        return -1;
    }

    d->uid = uid == (uid_t) -1 ? geteuid() : uid;
    d->gid = uid == (uid_t) -1 ? (gid_t) -1 : gid;
    d->give = (d->uid != geteuid());

    if (check_ancestors(parent, warn, warnlen, err, errlen) != 0) {
        e = errno;
        free(parent);
        acme_store_dir_close(d);
        errno = e;
        return -1;
    }

    if (create && make_ancestors(parent, err, errlen) != 0) {
        e = errno;
        free(parent);
        acme_store_dir_close(d);
        errno = e;
        return -1;
    }

    pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) {
        e = errno;
        err_errno(e, err, errlen, "open \"%s\": %s", parent, strerror(e));
        free(parent);
        acme_store_dir_close(d);
        errno = e;
        return -1;
    }
    free(parent);

    d->fd = open_dir_at(pfd, base, d->path, create, &created, err, errlen);
    e = errno;
    close(pfd);

    if (d->fd < 0 || settle_dir(d, created, 1, err, errlen) != 0) {
        e = d->fd < 0 ? e : errno;
        acme_store_dir_close(d);
        errno = e;
        return -1;
    }

    return 0;
}

int
acme_store_dir_open(acme_store_dir_t *d, const acme_store_dir_t *parent,
    const char *name, int create, char *err, size_t errlen)
{
    int  created, e;

    dir_init(d);

    if (!id_valid(name)) {
        errno = EINVAL;
        return acme_err(err, errlen, "invalid name \"%s\" in the store",
                        name ? name : "(null)");
    }

    d->path = acme_sprintf("%s/%s", parent->path, name);
    if (d->path == NULL) {
        errno = ENOMEM;
        return acme_err(err, errlen, "out of memory");
    }
    d->uid = parent->uid;
    d->gid = parent->gid;
    d->give = parent->give;

    d->fd = open_dir_at(parent->fd, name, d->path, create, &created, err,
                        errlen);
    e = errno;

    if (d->fd < 0 || settle_dir(d, created, 0, err, errlen) != 0) {
        e = d->fd < 0 ? e : errno;
        acme_store_dir_close(d);
        errno = e;
        return -1;
    }

    return 0;
}

int
acme_store_dir_open_cert(acme_store_dir_t *d, const acme_store_dir_t *root,
    const char *id, int create, char *err, size_t errlen)
{
    acme_store_dir_t  certs;
    int               rc, e;

    dir_init(d);

    if (!id_valid(id)) {
        errno = EINVAL;
        return acme_err(err, errlen, "invalid certificate id \"%s\"",
                        id ? id : "(null)");
    }

    if (acme_store_dir_open(&certs, root, "certs", create, err, errlen)
        != 0)
    {
        return -1;
    }

    rc = acme_store_dir_open(d, &certs, id, create, err, errlen);
    e = errno;
    acme_store_dir_close(&certs);
    errno = e;
    return rc;
}

int
acme_store_dir_read_only(const acme_store_dir_t *d)
{
    struct statvfs  sv;

    return d->fd >= 0 && fstatvfs(d->fd, &sv) == 0
           && (sv.f_flag & ST_RDONLY) != 0;
}

int
acme_store_dir_read(const acme_store_dir_t *d, const char *name,
    char **data, size_t *len, size_t max, char *err, size_t errlen)
{
    char         *path;
    struct stat   st;
    int           fd, e, rc;

    *data = NULL;
    if (len) {
        *len = 0;
    }

    if (d->fd < 0 || !id_valid(name)) {
        errno = EINVAL;
        return acme_err(err, errlen, "invalid store read of \"%s\"",
                        name ? name : "(null)");
    }

    path = acme_sprintf("%s/%s", d->path, name);
    if (path == NULL) {
        errno = ENOMEM;
        return acme_err(err, errlen, "out of memory");
    }

    /* O_NONBLOCK: a FIFO planted there must not hang us */
    fd = openat(d->fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY
                             | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        if (e == ENOENT) {
            free(path);
            return 0;
        }
        if (e == ELOOP) {
            rc = err_errno(e, err, errlen, "\"%s\" %s, refused", path,
                           kind_of(d->fd, name));
        } else {
            rc = err_errno(e, err, errlen, "open \"%s\": %s", path,
                           strerror(e));
        }
        free(path);
        return rc;
    }

    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        rc = err_errno(e, err, errlen, "stat \"%s\": %s", path, strerror(e));
        free(path);
        return rc;
    }

    if (!S_ISREG(st.st_mode)) {
        acme_err(err, errlen, "\"%s\" is not a regular file, refused", path);
        e = EPERM;

    } else if (st.st_nlink != 1) {
        /* a hard link to a file elsewhere (e.g. a root-only key) */
        acme_err(err, errlen, "\"%s\" has %lu hard links, refused", path,
                 (unsigned long) st.st_nlink);
        e = EPERM;

    } else if (!owner_ok(d, &st)) {
        acme_err(err, errlen, "\"%s\" is owned by uid %u, not by uid %u or "
                 "root, refused", path, (unsigned) st.st_uid,
                 (unsigned) d->uid);
        e = EPERM;

    } else {
        e = 0;
    }

    if (e != 0) {
        close(fd);
        free(path);
        errno = e;
        return -1;
    }

    rc = read_fd(fd, &st, path, data, len, max, err, errlen);
    e = errno;
    free(path);
    errno = e;
    return rc;
}

/* Random suffix for temporary names: 12 characters of [a-zA-Z0-9]. */
static void
tmp_suffix(char *out)
{
    static const char  chars[] = "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char      rnd[12];
    size_t             i;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        /* unique enough with O_EXCL and the retries */
        for (i = 0; i < sizeof(rnd); i++) {
            rnd[i] = (unsigned char) (rand() ^ getpid() ^ (int) i);
        }
    }
    for (i = 0; i < sizeof(rnd); i++) {
        out[i] = chars[rnd[i] % (sizeof(chars) - 1)];
    }
    out[sizeof(rnd)] = '\0';
}

/*
 * The atomic write of acme_store_dir_write(); exclusive: link() instead of
 * rename(), so an existing name is never replaced (of concurrent creators
 * exactly one wins, and what it links is already complete).  1 written, 0
 * (exclusive) name existed and nothing changed, -1 with err.
 */
static int
dir_put(const acme_store_dir_t *d, const char *name, const void *data,
    size_t len, mode_t mode, int exclusive, char *err, size_t errlen)
{
    char   *path, *tmp, suffix[16];
    int     fd, e, tries, rc;

    if (d->fd < 0 || !id_valid(name)) {
        errno = EINVAL;
        return acme_err(err, errlen, "invalid store write of \"%s\"",
                        name ? name : "(null)");
    }

    path = acme_sprintf("%s/%s", d->path, name);
    if (path == NULL) {
        errno = ENOMEM;
        return acme_err(err, errlen, "out of memory");
    }

    /* a hidden, unique name created here and now: O_EXCL|O_NOFOLLOW never
     * open something planted; 0600 until the fchmod */
    tmp = NULL;
    fd = -1;
    e = EEXIST;
    for (tries = 0; fd < 0 && e == EEXIST && tries < 16; tries++) {
        free(tmp);
        tmp_suffix(suffix);
        tmp = acme_sprintf(".%s.tmp%s", name, suffix);
        if (tmp == NULL) {
            free(path);
            errno = ENOMEM;
            return acme_err(err, errlen, "out of memory");
        }
        fd = openat(d->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
                                | O_CLOEXEC, 0600);
        e = fd < 0 ? errno : 0;
    }

    if (fd < 0) {
        acme_err(err, errlen, "cannot create a temporary file in \"%s\": %s",
                 d->path, strerror(e));
        goto failed_nofile;
    }

    if (write_all(fd, data, len) != 0) {
        e = errno;
        acme_err(err, errlen, "write \"%s/%s\": %s", d->path, tmp,
                 strerror(e));
        goto failed;
    }
    if (fsync(fd) != 0) {
        e = errno;
        acme_err(err, errlen, "fsync \"%s/%s\": %s", d->path, tmp,
                 strerror(e));
        goto failed;
    }
    if (fchmod(fd, mode) != 0
        || (d->give && fchown(fd, d->uid, d->gid) != 0))
    {
        e = errno;
        acme_err(err, errlen, "chmod/chown \"%s/%s\": %s", d->path, tmp,
                 strerror(e));
        goto failed;
    }
    if (close(fd) != 0) {
        fd = -1;
        e = errno;
        acme_err(err, errlen, "close \"%s/%s\": %s", d->path, tmp,
                 strerror(e));
        goto failed;
    }
    fd = -1;

    if (exclusive) {
        /*
         * RENAME_NOREPLACE: the name appears with one link, so a reader
         * (which refuses hard-linked files) never sees the two links a
         * linkat() + unlink() pair leaves for a moment; linkat() where the
         * file system cannot do it.
         */
        rc = renameat2(d->fd, tmp, d->fd, name, RENAME_NOREPLACE);
        e = errno;
        if (rc != 0 && (e == EINVAL || e == ENOSYS)) {
            rc = linkat(d->fd, tmp, d->fd, name, 0);
            e = errno;
        }
        unlinkat(d->fd, tmp, 0);
        if (rc != 0 && e == EEXIST) {
            free(tmp);
            free(path);
            return 0;
        }
        if (rc != 0) {
            acme_err(err, errlen, "link \"%s/%s\" to \"%s\": %s", d->path,
                     tmp, path, strerror(e));
            goto failed_nofile;
        }

    } else if (renameat(d->fd, tmp, d->fd, name) != 0) {
        e = errno;
        acme_err(err, errlen, "rename \"%s/%s\" to \"%s\": %s", d->path, tmp,
                 path, strerror(e));
        goto failed;
    }

    /* make the rename itself durable */
    if (fsync(d->fd) != 0) {
        e = errno;
        acme_err(err, errlen, "fsync directory of \"%s\": %s", path,
                 strerror(e));
        free(tmp);
        free(path);
        errno = e;
        return -1;
    }

    free(tmp);
    free(path);
    return 1;

failed:

    if (fd >= 0) {
        close(fd);
    }
    unlinkat(d->fd, tmp, 0);

failed_nofile:

    free(tmp);
    free(path);
    errno = e;
    return -1;
}

int
acme_store_dir_write(const acme_store_dir_t *d, const char *name,
    const void *data, size_t len, mode_t mode, char *err, size_t errlen)
{
    return dir_put(d, name, data, len, mode, 0, err, errlen) < 0 ? -1 : 0;
}

int
acme_store_dir_create(const acme_store_dir_t *d, const char *name,
    const void *data, size_t len, mode_t mode, char *err, size_t errlen)
{
    return dir_put(d, name, data, len, mode, 1, err, errlen);
}

/*
 * The id becomes a directory name, so it must never be able to leave
 * certs/: everything but [a-z0-9.-] is escaped (a '/' or a '..' component
 * is impossible), names are lower-cased (DNS is case-insensitive, so
 * "Example.COM" and "example.com" share their certificate), '*' and ':' get
 * the readable forms of the header, anything else becomes "%XX" so that two
 * different names cannot collide.
 */
char *
acme_store_cert_id(const char *first_name, acme_key_type_t kt)
{
    static const char   hex[] = "0123456789ABCDEF";
    const char         *kname, *s;
    char               *out, *p;
    size_t              n;
    unsigned char       c;

    kname = acme_key_type_name(kt);
    if (first_name == NULL || *first_name == '\0' || kname == NULL) {
        return NULL;
    }

    n = strlen(first_name);
    if (n > 253) {
        return NULL;
    }

    out = malloc(n * 10 + strlen(kname) + 2);
    if (out == NULL) {
        return NULL;
    }

    p = out;
    for (s = first_name; *s; s++) {
        c = (unsigned char) *s;
        if (c >= 'A' && c <= 'Z') {
            *p++ = (char) (c - 'A' + 'a');
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                   || c == '-' || (c == '.' && s != first_name))
        {
            *p++ = (char) c;
        } else if (c == '*') {
            memcpy(p, "_wildcard_", 10);
            p += 10;
        } else if (c == ':') {
            *p++ = '-';
        } else {
            /* includes '/', '%', '_' and a leading '.' */
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }

    *p++ = '_';
    for (s = kname; *s; s++) {
        *p++ = *s == ':' ? '-' : *s;
    }
    *p = '\0';

    return out;
}

/*
 * "<id>@<issuer>": the issuer's name kept as written where it is
 * [A-Za-z0-9-] or a '.' that does not lead, every other byte "%XX" (so
 * '@', '/' and '%' never come through raw and two issuer names never give
 * one id); the base id never has a raw '@'.
 */
char *
acme_store_cert_id_issuer(const char *id, const char *issuer)
{
    static const char   hex[] = "0123456789ABCDEF";
    const char         *s;
    char               *out, *p;
    size_t              n;
    unsigned char       c;

    if (id == NULL || *id == '\0' || issuer == NULL || *issuer == '\0') {
        return NULL;
    }

    n = strlen(id);
    out = malloc(n + 2 + strlen(issuer) * 3);
    if (out == NULL) {
        return NULL;
    }

    memcpy(out, id, n);
    p = out + n;
    *p++ = '@';
    for (s = issuer; *s; s++) {
        c = (unsigned char) *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-'
            || (c == '.' && s != issuer))
        {
            *p++ = (char) c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';

    return out;
}

void
acme_store_cert_ids_by_issuer(const char *const *ids, const size_t *issuers,
    size_t n, int *need)
{
    size_t  i, j, first;
    int     shared;

    for (i = 0; i < n; i++) {
        first = issuers[i];
        shared = 0;
        for (j = 0; j < n; j++) {
            if (j != i && issuers[j] != issuers[i]
                && strcmp(ids[j], ids[i]) == 0)
            {
                shared = 1;
                if (issuers[j] < first) {
                    first = issuers[j];
                }
            }
        }
        need[i] = shared && first != issuers[i];
    }
}

/* An id given back to us must be a single, harmless path component. */
static int
id_valid(const char *id)
{
    return id != NULL && *id != '\0' && *id != '.' && strchr(id, '/') == NULL
           && strlen(id) < 1024;
}

char *
acme_store_account_key_path(const char *root)
{
    return acme_sprintf("%s/account.key", root);
}

char *
acme_store_account_json_path(const char *root)
{
    return acme_sprintf("%s/account.json", root);
}

char *
acme_store_cert_dir(const char *root, const char *id)
{
    return id_valid(id) ? acme_sprintf("%s/certs/%s", root, id) : NULL;
}

char *
acme_store_bundle_path(const char *root, const char *id)
{
    return id_valid(id) ? acme_sprintf("%s/certs/%s/bundle.pem", root, id)
                        : NULL;
}

char *
acme_store_state_path(const char *root, const char *id)
{
    return id_valid(id) ? acme_sprintf("%s/certs/%s/state.json", root, id)
                        : NULL;
}

/*
 * The path-based calls open the store as the caller's own (uid -1): what
 * the worker/child user does with its store.  They go through the same
 * descriptors as root code, so no symlink below the root is followed here
 * either.  A missing store is "nothing stored" for the loaders.
 */
static int
open_store(acme_store_dir_t *d, const char *root, int create, char *err,
    size_t errlen)
{
    return acme_store_dir_open_root(d, root, (uid_t) -1, (gid_t) -1, create,
                                    NULL, 0, err, errlen);
}

/* Opens <root>/certs/<id> of the caller's store; 1, 0 missing, -1. */
static int
open_cert(acme_store_dir_t *cd, const char *root, const char *id,
    int create, char *err, size_t errlen)
{
    acme_store_dir_t  rd;
    int               rc, e;

    if (!id_valid(id)) {
        return acme_err(err, errlen, "invalid certificate id \"%s\"",
                        id ? id : "(null)");
    }
    if (open_store(&rd, root, create, err, errlen) != 0) {
        return (!create && errno == ENOENT) ? 0 : -1;
    }
    rc = acme_store_dir_open_cert(cd, &rd, id, create, err, errlen);
    e = errno;
    acme_store_dir_close(&rd);
    if (rc != 0) {
        return (!create && e == ENOENT) ? 0 : -1;
    }
    return 1;
}

/* Loads a JSON object file: 1 with *out, 0 missing, -1 error. */
static int
load_json(const acme_store_dir_t *d, const char *name, json_t **out,
    char *err, size_t errlen)
{
    char         *data;
    size_t        len;
    json_t       *j;
    json_error_t  je;
    int           rc;

    *out = NULL;
    rc = acme_store_dir_read(d, name, &data, &len, STORE_MAX_JSON, err,
                             errlen);
    if (rc <= 0) {
        return rc;
    }

    j = json_loadb(data, len, 0, &je);
    free(data);
    if (j == NULL) {
        return acme_err(err, errlen, "\"%s/%s\" is not valid JSON (line %d: "
                        "%s)", d->path, name, je.line, je.text);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return acme_err(err, errlen, "\"%s/%s\" is not a JSON object",
                        d->path, name);
    }

    *out = j;
    return 1;
}

/*
 * jansson only takes UTF-8; an error text cut at a fixed size may end in
 * half a character, and a CA's message may not be UTF-8 at all: replace
 * every byte that is not part of a valid sequence by '?'.
 */
static void
utf8_sanitize(char *s)
{
    unsigned char  *p = (unsigned char *) s;
    size_t          i, n;
    unsigned        cp;

    while (*p) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        n = (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
            : (*p & 0xf8) == 0xf0 ? 3 : 0;
        cp = n == 1 ? (*p & 0x1fu) : n == 2 ? (*p & 0x0fu) : (*p & 0x07u);
        for (i = 1; n && i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                n = 0;
                break;
            }
            cp = cp << 6 | (p[i] & 0x3fu);
        }
        /* overlong forms, surrogates and out-of-range code points too */
        if (n == 0 || (n == 1 && cp < 0x80) || (n == 2 && cp < 0x800)
            || (n == 3 && cp < 0x10000) || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff))
        {
            *p++ = '?';
            continue;
        }
        p += n + 1;
    }
}

static int
save_json(const acme_store_dir_t *d, const char *name, json_t *j, char *err,
    size_t errlen)
{
    char           *s;
    int             rc;
    json_malloc_t   jmalloc;
    json_free_t     jfree;

    if (j == NULL) {
        return acme_err(err, errlen, "out of memory");
    }
    s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (s == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    rc = acme_store_dir_write(d, name, s, strlen(s), 0600, err, errlen);
    /* json_dumps allocates with jansson's allocator, which a host may set */
    json_get_alloc_funcs(&jmalloc, &jfree);
    jfree(s);
    return rc;
}

char *
acme_store_account_name(const char *directory_url)
{
    const char    *p;
    char          *out, *o;
    uint32_t       h = 2166136261u;
    size_t         n;

    if (directory_url == NULL || *directory_url == '\0') {
        return NULL;
    }
    for (p = directory_url; *p; p++) {
        h ^= (unsigned char) *p;
        h *= 16777619u;
    }

    /* host, port and path: the scheme says nothing */
    p = strstr(directory_url, "://");
    p = p != NULL ? p + 3 : directory_url;

    out = malloc(64 + 10);
    if (out == NULL) {
        return NULL;
    }
    for (o = out, n = 0; *p && n < 64; p++, n++) {
        *o++ = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-')
               ? *p : '_';
    }
    snprintf(o, 10, "-%08x", (unsigned) h);
    if (out[0] == '.') {
        out[0] = '_';
    }
    return out;
}

/*
 * Where the account of directory_url lives below the opened store root rd
 * (see the layout in acme_store.h): accounts/<name>/ once it has an
 * account.key there; else the root when the root's account is free or
 * that CA's (no account.key yet, no account.json, an unreadable one, or
 * one naming directory_url: the first CA's account, and every store of
 * older versions, stay where they are); else accounts/<name>/ (created
 * when create).  1 with *use (rd, or sub opened), 0 none yet (create 0),
 * -1 with err.
 */
static int
account_dir(const acme_store_dir_t *rd, const char *directory_url,
    int create, acme_store_dir_t *sub, const acme_store_dir_t **use,
    char *err, size_t errlen)
{
    acme_store_dir_t   accounts;
    struct stat        sb;
    json_t            *j;
    const char        *dir;
    char              *name, why[ACME_ERRLEN];
    int                rc, e, other;

    dir_init(sub);
    *use = rd;
    if (directory_url == NULL) {
        return 1;
    }
    name = acme_store_account_name(directory_url);
    if (name == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    /* accounts/<name>/account.key: this CA's, kept there */
    if (acme_store_dir_open(&accounts, rd, "accounts", 0, why, sizeof(why))
        == 0)
    {
        if (acme_store_dir_open(sub, &accounts, name, 0, why, sizeof(why))
            == 0)
        {
            if (fstatat(sub->fd, "account.key", &sb, AT_SYMLINK_NOFOLLOW)
                == 0)
            {
                acme_store_dir_close(&accounts);
                free(name);
                *use = sub;
                return 1;
            }
            acme_store_dir_close(sub);
        }
        acme_store_dir_close(&accounts);
    }

    /* the root's account, unless it is another CA's */
    other = 0;
    if (fstatat(rd->fd, "account.key", &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        rc = load_json(rd, "account.json", &j, why, sizeof(why));
        if (rc == 1) {
            dir = json_string_value(json_object_get(j, "directory"));
            other = dir != NULL && strcmp(dir, directory_url) != 0;
            json_decref(j);
        }
    }
    if (!other) {
        free(name);
        return 1;
    }

    if (acme_store_dir_open(&accounts, rd, "accounts", create, err, errlen)
        != 0)
    {
        e = errno;
        free(name);
        errno = e;
        return (!create && e == ENOENT) ? 0 : -1;
    }
    rc = acme_store_dir_open(sub, &accounts, name, create, err, errlen);
    e = errno;
    acme_store_dir_close(&accounts);
    free(name);
    if (rc != 0) {
        errno = e;
        return (!create && e == ENOENT) ? 0 : -1;
    }
    *use = sub;
    return 1;
}

int
acme_store_load_account(const char *root, const char *directory_url,
    EVP_PKEY *key, char **url, char *err, size_t errlen)
{
    acme_store_dir_t        rd, sub;
    const acme_store_dir_t *ad;
    json_t           *j;
    const char       *dir, *u, *k;
    char             *thumb;
    int               rc;

    *url = NULL;
    if (open_store(&rd, root, 0, err, errlen) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    rc = account_dir(&rd, directory_url, 0, &sub, &ad, err, errlen);
    if (rc <= 0) {
        acme_store_dir_close(&rd);
        return rc;
    }

    rc = load_json(ad, "account.json", &j, err, errlen);
    if (rc <= 0) {
        acme_store_dir_close(&sub);
        acme_store_dir_close(&rd);
        return rc;
    }

    dir = json_string_value(json_object_get(j, "directory"));
    u = json_string_value(json_object_get(j, "url"));
    if (dir == NULL || u == NULL || *u == '\0') {
        acme_err(err, errlen, "\"%s/account.json\": \"directory\" or \"url\" "
                 "missing", ad->path);
        json_decref(j);
        acme_store_dir_close(&sub);
        acme_store_dir_close(&rd);
        return -1;
    }
    acme_store_dir_close(&sub);
    acme_store_dir_close(&rd);

    /* an account belongs to one CA: another directory means "none yet" */
    if (directory_url != NULL && strcmp(dir, directory_url) != 0) {
        json_decref(j);
        return 0;
    }

    /* and to one key: a URL recorded for another key (or by an older
     * version, without "key") is unknown; the key is looked up again */
    if (key != NULL) {
        k = json_string_value(json_object_get(j, "key"));
        thumb = acme_jwk_thumbprint(key);
        if (thumb == NULL) {
            json_decref(j);
            return acme_err(err, errlen, "out of memory");
        }
        rc = k != NULL && strcmp(k, thumb) == 0;
        free(thumb);
        if (!rc) {
            json_decref(j);
            return 0;
        }
    }

    *url = acme_strdup(u);
    json_decref(j);
    if (*url == NULL) {
        return acme_err(err, errlen, "out of memory");
    }
    return 1;
}

int
acme_store_save_account(const char *root, const char *directory_url,
    EVP_PKEY *key, const char *url, char *err, size_t errlen)
{
    acme_store_dir_t        rd, sub;
    const acme_store_dir_t *ad;
    char             *thumb;
    int               rc;

    if (directory_url == NULL || url == NULL || key == NULL) {
        return acme_err(err, errlen, "account directory, key and URL "
                        "required");
    }
    thumb = acme_jwk_thumbprint(key);
    if (thumb == NULL) {
        return acme_err(err, errlen, "out of memory");
    }
    if (open_store(&rd, root, 1, err, errlen) != 0) {
        free(thumb);
        return -1;
    }
    if (account_dir(&rd, directory_url, 1, &sub, &ad, err, errlen) != 1) {
        acme_store_dir_close(&rd);
        free(thumb);
        return -1;
    }
    rc = save_json(ad, "account.json", json_pack("{s:s, s:s, s:s}",
                                                 "directory", directory_url,
                                                 "url", url, "key", thumb),
                   err, errlen);
    acme_store_dir_close(&sub);
    acme_store_dir_close(&rd);
    free(thumb);
    return rc;
}

int
acme_store_account_key(const char *root, const char *directory_url,
    acme_key_type_t type, EVP_PKEY **key, int *created, char *err,
    size_t errlen)
{
    acme_store_dir_t        rd, sub;
    const acme_store_dir_t *ad;
    char                   *pem;
    size_t                  len;
    int                     rc, attempt;
    EVP_PKEY               *k;

    *key = NULL;
    if (created) {
        *created = 0;
    }

    if (open_store(&rd, root, 1, err, errlen) != 0) {
        return -1;
    }
    if (account_dir(&rd, directory_url, 1, &sub, &ad, err, errlen) != 1) {
        acme_store_dir_close(&sub);
        acme_store_dir_close(&rd);
        return -1;
    }

    /* a second round only after losing the race to another creator */
    for (attempt = 0; attempt < 2; attempt++) {

        rc = acme_store_dir_read(ad, "account.key", &pem, &len,
                                 STORE_MAX_JSON, err, errlen);
        if (rc == -1) {
            acme_store_dir_close(&sub);
            acme_store_dir_close(&rd);
            return -1;
        }

        if (rc == 1) {
            k = acme_key_from_pem(pem, len);
            OPENSSL_cleanse(pem, len);
            free(pem);
            if (k == NULL || acme_jws_alg(k) == NULL) {
                EVP_PKEY_free(k);
                acme_err(err, errlen, "\"%s/account.key\" is not a supported "
                         "private key", ad->path);
                acme_store_dir_close(&sub);
                acme_store_dir_close(&rd);
                return -1;
            }
            *key = k;
            acme_store_dir_close(&sub);
            acme_store_dir_close(&rd);
            return 0;
        }

        k = acme_key_generate(type);
        pem = k ? acme_key_to_pem(k, &len) : NULL;
        if (pem == NULL) {
            EVP_PKEY_free(k);
            acme_store_dir_close(&sub);
            acme_store_dir_close(&rd);
            return acme_err(err, errlen, "cannot generate the account key");
        }

        rc = acme_store_dir_create(ad, "account.key", pem, len, 0600, err,
                                   errlen);
        OPENSSL_cleanse(pem, len);
        free(pem);

        if (rc == 1) {
            *key = k;
            if (created) {
                *created = 1;
            }
            acme_store_dir_close(&sub);
            acme_store_dir_close(&rd);
            return 0;
        }

        /* -1: error; 0: another thread or process was first, use its key */
        EVP_PKEY_free(k);
        if (rc == -1) {
            acme_store_dir_close(&sub);
            acme_store_dir_close(&rd);
            return -1;
        }
    }

    acme_err(err, errlen, "\"%s/account.key\" appeared and vanished while it "
             "was being created", ad->path);
    acme_store_dir_close(&sub);
    acme_store_dir_close(&rd);
    return -1;
}

int
acme_store_load_account_key(const char *root, char **pem, size_t *len,
    char *err, size_t errlen)
{
    acme_store_dir_t  rd;
    int               rc;

    *pem = NULL;
    if (open_store(&rd, root, 0, err, errlen) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    rc = acme_store_dir_read(&rd, "account.key", pem, len, STORE_MAX_JSON,
                             err, errlen);
    acme_store_dir_close(&rd);
    return rc;
}

int
acme_store_save_account_key(const char *root, const char *pem, size_t len,
    char *err, size_t errlen)
{
    acme_store_dir_t  rd;
    int               rc;

    if (open_store(&rd, root, 1, err, errlen) != 0) {
        return -1;
    }
    rc = acme_store_dir_write(&rd, "account.key", pem, len, 0600, err,
                              errlen);
    acme_store_dir_close(&rd);
    return rc;
}

int
acme_store_load_bundle_at(const acme_store_dir_t *cert_dir, char **pem,
    size_t *len, char *err, size_t errlen)
{
    return acme_store_dir_read(cert_dir, "bundle.pem", pem, len,
                               STORE_MAX_BUNDLE, err, errlen);
}

int
acme_store_load_previous_at(const acme_store_dir_t *cert_dir, char **pem,
    size_t *len, char *err, size_t errlen)
{
    return acme_store_dir_read(cert_dir, "previous.pem", pem, len,
                               STORE_MAX_BUNDLE, err, errlen);
}

int
acme_store_keep_previous(const char *root, const char *id, int keep,
    char *err, size_t errlen)
{
    acme_store_dir_t  cd;
    char             *pem = NULL;
    size_t            len = 0;
    int               rc;

    rc = open_cert(&cd, root, id, 0, err, errlen);
    if (rc <= 0) {
        return rc;
    }
    if (!keep) {
        if (unlinkat(cd.fd, "previous.pem", 0) != 0 && errno != ENOENT) {
            rc = acme_err(err, errlen, "cannot remove %s/previous.pem: %s",
                          cd.path, strerror(errno));
        } else {
            rc = 0;
        }
        acme_store_dir_close(&cd);
        return rc;
    }
    rc = acme_store_dir_read(&cd, "bundle.pem", &pem, &len,
                             STORE_MAX_BUNDLE, err, errlen);
    if (rc == 1) {
        rc = acme_store_dir_write(&cd, "previous.pem", pem, len, 0600, err,
                                  errlen) == 0 ? 1 : -1;
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    acme_store_dir_close(&cd);
    return rc;
}

int
acme_store_load_bundle(const char *root, const char *id, char **pem,
    size_t *len, char *err, size_t errlen)
{
    acme_store_dir_t  cd;
    int               rc;

    *pem = NULL;
    rc = open_cert(&cd, root, id, 0, err, errlen);
    if (rc <= 0) {
        return rc;
    }
    rc = acme_store_load_bundle_at(&cd, pem, len, err, errlen);
    acme_store_dir_close(&cd);
    return rc;
}

int
acme_store_save_bundle(const char *root, const char *id,
    const char *key_pem, size_t key_len, const char *chain_pem,
    size_t chain_len, char *err, size_t errlen)
{
    char             *buf;
    size_t            n;
    int               rc;

    if (key_pem == NULL || key_len == 0 || chain_pem == NULL
        || chain_len == 0)
    {
        return acme_err(err, errlen, "empty key or chain");
    }

    /* key first, then the chain (acme_bundle_join) */
    buf = acme_bundle_join(key_pem, key_len, chain_pem, chain_len, &n);
    if (buf == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    rc = acme_store_save_bundle_pem(root, id, buf, n, err, errlen);

    acme_bundle_free(buf, n);
    return rc;
}

int
acme_store_save_bundle_pem(const char *root, const char *id,
    const char *pem, size_t len, char *err, size_t errlen)
{
    acme_store_dir_t  cd;
    int               rc;

    if (pem == NULL || len == 0) {
        return acme_err(err, errlen, "empty bundle");
    }

    rc = open_cert(&cd, root, id, 1, err, errlen);
    if (rc == 1) {
        rc = acme_store_dir_write(&cd, "bundle.pem", pem, len, 0600, err,
                                  errlen);
        acme_store_dir_close(&cd);
    } else {
        rc = -1;
    }

    return rc;
}

int
acme_store_load_next_key_at(const acme_store_dir_t *cert_dir, char **pem,
    size_t *len, char *err, size_t errlen)
{
    return acme_store_dir_read(cert_dir, "next.key", pem, len,
                               STORE_MAX_BUNDLE, err, errlen);
}

int
acme_store_load_next_key(const char *root, const char *id, char **pem,
    size_t *len, char *err, size_t errlen)
{
    acme_store_dir_t  cd;
    int               rc;

    *pem = NULL;
    rc = open_cert(&cd, root, id, 0, err, errlen);
    if (rc <= 0) {
        return rc;
    }
    rc = acme_store_load_next_key_at(&cd, pem, len, err, errlen);
    acme_store_dir_close(&cd);
    return rc;
}

int
acme_store_save_next_key(const char *root, const char *id, const char *pem,
    size_t len, char *err, size_t errlen)
{
    acme_store_dir_t  cd;
    int               rc;

    if (pem == NULL || len == 0) {
        return acme_err(err, errlen, "empty key");
    }

    rc = open_cert(&cd, root, id, 1, err, errlen);
    if (rc == 1) {
        rc = acme_store_dir_write(&cd, "next.key", pem, len, 0600, err,
                                  errlen);
        acme_store_dir_close(&cd);
    } else {
        rc = -1;
    }

    return rc;
}

int
acme_store_save_chain_copy(const char *root, const char *id,
    const char *chain, size_t len, char *err, size_t errlen)
{
    acme_store_dir_t  rd;
    char             *name;
    int               rc;

    if (!id_valid(id)) {
        return acme_err(err, errlen, "invalid certificate id \"%s\"",
                        id ? id : "(null)");
    }
    if (chain == NULL || len == 0) {
        return acme_err(err, errlen, "empty chain");
    }
    name = acme_sprintf("%s.crt", id);
    if (name == NULL) {
        return acme_err(err, errlen, "out of memory");
    }
    rc = -1;
    if (open_store(&rd, root, 1, err, errlen) == 0) {
        rc = acme_store_dir_write(&rd, name, chain, len, 0644, err, errlen);
        acme_store_dir_close(&rd);
    }
    free(name);
    return rc;
}

static long long
json_ll(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);

    return json_is_integer(v) ? (long long) json_integer_value(v) : 0;
}


/* state.json's "ari" object (RFC 9773, acme_ari.h): absent until a
 * renewalInfo fetch; an unusable one is none. */
static void
state_load_ari(json_t *a, acme_cert_state_t *st)
{
    const char  *v;
    long long    f;

    v = json_string_value(json_object_get(a, "id"));
    if (!json_is_object(a) || v == NULL || v[0] == '\0'
        || strlen(v) >= sizeof(st->ari_id))
    {
        return;
    }
    memcpy(st->ari_id, v, strlen(v) + 1);
    st->ari_start = json_ll(a, "start");
    st->ari_end = json_ll(a, "end");
    st->ari_at = json_ll(a, "at");
    st->ari_next_poll = json_ll(a, "next_poll");
    st->ari_last_poll = json_ll(a, "last_poll");
    f = json_ll(a, "failures");
    st->ari_failures = f < 0 ? 0 : f > UINT_MAX ? UINT_MAX : (unsigned) f;
    st->ari_unsupported = json_is_true(json_object_get(a, "unsupported"));
    v = json_string_value(json_object_get(a, "explanation_url"));
    if (v != NULL) {
        snprintf(st->ari_explanation, sizeof(st->ari_explanation), "%s", v);
    }
    v = json_string_value(json_object_get(a, "error"));
    if (v != NULL) {
        snprintf(st->ari_error, sizeof(st->ari_error), "%s", v);
    }
}

/* The "ari" object of st, or NULL when there is none. */
static json_t *
state_save_ari(const acme_cert_state_t *st)
{
    char  id[sizeof(st->ari_id)], ex[sizeof(st->ari_explanation)];
    char  er[sizeof(st->ari_error)];

    memcpy(id, st->ari_id, sizeof(id));
    id[sizeof(id) - 1] = '\0';
    if (id[0] == '\0') {
        return NULL;
    }
    utf8_sanitize(id);
    memcpy(ex, st->ari_explanation, sizeof(ex));
    ex[sizeof(ex) - 1] = '\0';
    utf8_sanitize(ex);
    memcpy(er, st->ari_error, sizeof(er));
    er[sizeof(er) - 1] = '\0';
    utf8_sanitize(er);

    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:s?, s:s?}",
                     "id", id,
                     "start", (json_int_t) st->ari_start,
                     "end", (json_int_t) st->ari_end,
                     "at", (json_int_t) st->ari_at,
                     "next_poll", (json_int_t) st->ari_next_poll,
                     "last_poll", (json_int_t) st->ari_last_poll,
                     "failures", (json_int_t) st->ari_failures,
                     "unsupported", st->ari_unsupported ? 1 : 0,
                     "explanation_url", ex[0] ? ex : NULL,
                     "error", er[0] ? er : NULL);
}

int
acme_store_load_state_at(const acme_store_dir_t *cert_dir,
    acme_cert_state_t *st, char *err, size_t errlen)
{
    json_t      *j;
    const char  *le;
    long long    f;
    int          rc;

    memset(st, 0, sizeof(*st));

    rc = load_json(cert_dir, "state.json", &j, err, errlen);
    if (rc <= 0) {
        return rc;
    }

    f = json_ll(j, "failures");
    st->failures = f < 0 ? 0 : f > UINT_MAX ? UINT_MAX : (unsigned) f;
    st->next_attempt = json_ll(j, "next_attempt");
    st->last_attempt = json_ll(j, "last_attempt");
    st->last_success = json_ll(j, "last_success");
    st->attempt_started = json_ll(j, "attempt_started");
    st->attempt_pid = (long) json_ll(j, "attempt_pid");
    st->revoked = json_ll(j, "revoked");
    le = json_string_value(json_object_get(j, "last_error"));
    if (le != NULL) {
        snprintf(st->last_error, sizeof(st->last_error), "%s", le);
    }
    le = json_string_value(json_object_get(j, "directory"));
    if (le != NULL && strlen(le) < sizeof(st->directory)) {
        memcpy(st->directory, le, strlen(le) + 1);
    }
    state_load_ari(json_object_get(j, "ari"), st);
    le = json_string_value(json_object_get(j, "issuer"));
    if (le != NULL && strlen(le) < sizeof(st->issuer)) {
        memcpy(st->issuer, le, strlen(le) + 1);
    }

    json_decref(j);
    return 1;
}

int
acme_store_load_state(const char *root, const char *id,
    acme_cert_state_t *st, char *err, size_t errlen)
{
    acme_store_dir_t  cd;
    int               rc;

    memset(st, 0, sizeof(*st));
    rc = open_cert(&cd, root, id, 0, err, errlen);
    if (rc <= 0) {
        return rc;
    }
    rc = acme_store_load_state_at(&cd, st, err, errlen);
    acme_store_dir_close(&cd);
    return rc;
}

int
acme_store_save_state(const char *root, const char *id,
    const acme_cert_state_t *st, char *err, size_t errlen)
{
    acme_store_dir_t  cd;
    char              le[sizeof(st->last_error)];
    char              dir[sizeof(st->directory)];
    char              iss[sizeof(st->issuer)];
    int               rc;

    if (open_cert(&cd, root, id, 1, err, errlen) != 1) {
        return -1;
    }

    /* the buffer may lack its NUL if a caller filled it to the brim */
    memcpy(le, st->last_error, sizeof(le));
    le[sizeof(le) - 1] = '\0';
    utf8_sanitize(le);
    memcpy(dir, st->directory, sizeof(dir));
    dir[sizeof(dir) - 1] = '\0';
    utf8_sanitize(dir);
    memcpy(iss, st->issuer, sizeof(iss));
    iss[sizeof(iss) - 1] = '\0';
    utf8_sanitize(iss);

    rc = save_json(&cd, "state.json",
                   json_pack("{s:I, s:I, s:I, s:I, s:s?, s:I, s:I, s:s?, s:I, "
                             "s:o?, s:s?}",
                             "failures", (json_int_t) st->failures,
                             "next_attempt", (json_int_t) st->next_attempt,
                             "last_attempt", (json_int_t) st->last_attempt,
                             "last_success", (json_int_t) st->last_success,
                             "last_error", le,
                             "attempt_started",
                             (json_int_t) st->attempt_started,
                             "attempt_pid", (json_int_t) st->attempt_pid,
                             "directory", dir[0] ? dir : NULL,
                             "revoked", (json_int_t) st->revoked,
                             "ari", state_save_ari(st),
                             "issuer", iss[0] ? iss : NULL),
                   err, errlen);
    acme_store_dir_close(&cd);
    return rc;
}
