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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

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

int
acme_store_read(const char *path, char **data, size_t *len, size_t max,
    char *err, size_t errlen)
{
    char        *buf, *nb;
    size_t       n, cap;
    ssize_t      r;
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
    if ((unsigned long long) st.st_size > max) {
        close(fd);
        return acme_err(err, errlen, "\"%s\" is larger than %zu bytes", path,
                        max);
    }

    /* read up to max + 1 so a file that grew after fstat is still caught */
    cap = (size_t) st.st_size + 1;
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
            return acme_err(err, errlen, "read \"%s\": %s", path, strerror(e));
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
acme_store_mkdirs(const char *path, mode_t mode, uid_t uid, gid_t gid,
    char *err, size_t errlen)
{
    char        *p, *s;
    struct stat  st;
    int          last, e;

    if (path == NULL || *path == '\0') {
        return acme_err(err, errlen, "empty directory path");
    }

    p = acme_strdup(path);
    if (p == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    /* walk every prefix ending at a '/' and finally the whole path */
    s = p;
    for ( ;; ) {
        while (*s == '/') {
            s++;
        }
        while (*s != '/' && *s != '\0') {
            s++;
        }
        last = (*s == '\0' || strspn(s, "/") == strlen(s));
        *s = '\0';

        if (mkdir(p, mode) == 0) {
            /* mkdir's mode is filtered by the umask: set it exactly */
            if (chmod(p, mode) != 0
                || (uid != (uid_t) -1 && chown(p, uid, gid) != 0))
            {
                e = errno;
                acme_err(err, errlen, "chmod/chown \"%s\": %s", p, strerror(e));
                free(p);
                return -1;
            }

        } else if (errno == EEXIST) {
            if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
                acme_err(err, errlen, "\"%s\" exists and is not a directory",
                         p);
                free(p);
                return -1;
            }
            if (last && uid != (uid_t) -1
                && (st.st_uid != uid || st.st_gid != gid)
                && chown(p, uid, gid) != 0)
            {
                e = errno;
                acme_err(err, errlen, "chown \"%s\": %s", p, strerror(e));
                free(p);
                return -1;
            }

        } else {
            e = errno;
            acme_err(err, errlen, "mkdir \"%s\": %s", p, strerror(e));
            free(p);
            return -1;
        }

        if (last) {
            break;
        }
        *s++ = '/';
    }

    free(p);
    return 0;
}

int
acme_store_check_writable(const char *path, char *err, size_t errlen)
{
    char        *p, *slash;
    struct stat  st;

    if (path == NULL || *path == '\0') {
        return acme_err(err, errlen, "empty path");
    }

    p = acme_strdup(path);
    if (p == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    for ( ;; ) {
        if (stat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode) ? access(p, W_OK | X_OK) != 0
                                    : access(p, W_OK) != 0)
            {
                acme_err(err, errlen, "\"%s\" is not writable (needed for "
                         "\"%s\")", p, path);
                free(p);
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

/* Loads a JSON object file: 1 with *out, 0 missing, -1 error. */
static int
load_json(const char *path, json_t **out, char *err, size_t errlen)
{
    char         *data;
    size_t        len;
    json_t       *j;
    json_error_t  je;
    int           rc;

    *out = NULL;
    rc = acme_store_read(path, &data, &len, STORE_MAX_JSON, err, errlen);
    if (rc <= 0) {
        return rc;
    }

    j = json_loadb(data, len, 0, &je);
    free(data);
    if (j == NULL) {
        return acme_err(err, errlen, "\"%s\" is not valid JSON (line %d: %s)",
                        path, je.line, je.text);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return acme_err(err, errlen, "\"%s\" is not a JSON object", path);
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
save_json(const char *path, json_t *j, char *err, size_t errlen)
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

    rc = acme_store_write_atomic(path, s, strlen(s), 0600, err, errlen);
    /* json_dumps allocates with jansson's allocator, which a host may set */
    json_get_alloc_funcs(&jmalloc, &jfree);
    jfree(s);
    return rc;
}

int
acme_store_load_account(const char *root, const char *directory_url,
    char **url, char *err, size_t errlen)
{
    char        *path;
    json_t      *j;
    const char  *dir, *u;
    int          rc;

    *url = NULL;
    path = acme_store_account_json_path(root);
    if (path == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    rc = load_json(path, &j, err, errlen);
    if (rc <= 0) {
        free(path);
        return rc;
    }

    dir = json_string_value(json_object_get(j, "directory"));
    u = json_string_value(json_object_get(j, "url"));
    if (dir == NULL || u == NULL || *u == '\0') {
        acme_err(err, errlen, "\"%s\": \"directory\" or \"url\" missing",
                 path);
        json_decref(j);
        free(path);
        return -1;
    }
    free(path);

    /* an account belongs to one CA: another directory means "none yet" */
    if (directory_url != NULL && strcmp(dir, directory_url) != 0) {
        json_decref(j);
        return 0;
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
    const char *url, char *err, size_t errlen)
{
    char   *path;
    int     rc;

    if (directory_url == NULL || url == NULL) {
        return acme_err(err, errlen, "account directory and URL required");
    }
    if (acme_store_mkdirs(root, 0700, (uid_t) -1, (gid_t) -1, err, errlen)
        != 0)
    {
        return -1;
    }

    path = acme_store_account_json_path(root);
    if (path == NULL) {
        return acme_err(err, errlen, "out of memory");
    }
    rc = save_json(path, json_pack("{s:s, s:s}", "directory", directory_url,
                                   "url", url), err, errlen);
    free(path);
    return rc;
}

int
acme_store_load_bundle(const char *root, const char *id, char **pem,
    size_t *len, char *err, size_t errlen)
{
    char   *path;
    int     rc;

    *pem = NULL;
    path = acme_store_bundle_path(root, id);
    if (path == NULL) {
        return acme_err(err, errlen, "invalid certificate id \"%s\"",
                        id ? id : "(null)");
    }
    rc = acme_store_read(path, pem, len, STORE_MAX_BUNDLE, err, errlen);
    free(path);
    return rc;
}

/* Creates <root>/certs/<id> (0700); the path is returned malloc'd. */
static char *
make_cert_dir(const char *root, const char *id, char *err, size_t errlen)
{
    char   *dir;

    dir = acme_store_cert_dir(root, id);
    if (dir == NULL) {
        acme_err(err, errlen, "invalid certificate id \"%s\"",
                 id ? id : "(null)");
        return NULL;
    }
    if (acme_store_mkdirs(dir, 0700, (uid_t) -1, (gid_t) -1, err, errlen)
        != 0)
    {
        free(dir);
        return NULL;
    }
    return dir;
}

int
acme_store_save_bundle(const char *root, const char *id,
    const char *key_pem, size_t key_len, const char *chain_pem,
    size_t chain_len, char *err, size_t errlen)
{
    char   *dir, *path, *buf;
    size_t  n;
    int     rc;

    if (key_pem == NULL || key_len == 0 || chain_pem == NULL
        || chain_len == 0)
    {
        return acme_err(err, errlen, "empty key or chain");
    }

    dir = make_cert_dir(root, id, err, errlen);
    if (dir == NULL) {
        return -1;
    }
    path = acme_sprintf("%s/bundle.pem", dir);
    free(dir);

    /* key first, then the chain; a newline between them if the key PEM
     * lacks one, so the concatenation stays valid PEM */
    buf = malloc(key_len + chain_len + 1);
    if (path == NULL || buf == NULL) {
        free(path);
        free(buf);
        return acme_err(err, errlen, "out of memory");
    }
    memcpy(buf, key_pem, key_len);
    n = key_len;
    if (key_pem[key_len - 1] != '\n') {
        buf[n++] = '\n';
    }
    memcpy(buf + n, chain_pem, chain_len);
    n += chain_len;

    rc = acme_store_write_atomic(path, buf, n, 0600, err, errlen);
    OPENSSL_cleanse(buf, n);
    free(buf);
    free(path);
    return rc;
}

static long long
json_ll(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);

    return json_is_integer(v) ? (long long) json_integer_value(v) : 0;
}

int
acme_store_load_state(const char *root, const char *id,
    acme_cert_state_t *st, char *err, size_t errlen)
{
    char        *path;
    json_t      *j;
    const char  *le;
    long long    f;
    int          rc;

    memset(st, 0, sizeof(*st));
    path = acme_store_state_path(root, id);
    if (path == NULL) {
        return acme_err(err, errlen, "invalid certificate id \"%s\"",
                        id ? id : "(null)");
    }

    rc = load_json(path, &j, err, errlen);
    free(path);
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
    le = json_string_value(json_object_get(j, "last_error"));
    if (le != NULL) {
        snprintf(st->last_error, sizeof(st->last_error), "%s", le);
    }

    json_decref(j);
    return 1;
}

int
acme_store_save_state(const char *root, const char *id,
    const acme_cert_state_t *st, char *err, size_t errlen)
{
    char   *dir, *path, le[sizeof(st->last_error)];
    int     rc;

    dir = make_cert_dir(root, id, err, errlen);
    if (dir == NULL) {
        return -1;
    }
    path = acme_sprintf("%s/state.json", dir);
    free(dir);
    if (path == NULL) {
        return acme_err(err, errlen, "out of memory");
    }

    /* the buffer may lack its NUL if a caller filled it to the brim */
    memcpy(le, st->last_error, sizeof(le));
    le[sizeof(le) - 1] = '\0';
    utf8_sanitize(le);

    rc = save_json(path, json_pack("{s:I, s:I, s:I, s:I, s:s?, s:I, s:I}",
                                   "failures", (json_int_t) st->failures,
                                   "next_attempt",
                                   (json_int_t) st->next_attempt,
                                   "last_attempt",
                                   (json_int_t) st->last_attempt,
                                   "last_success",
                                   (json_int_t) st->last_success,
                                   "last_error", le,
                                   "attempt_started",
                                   (json_int_t) st->attempt_started,
                                   "attempt_pid",
                                   (json_int_t) st->attempt_pid),
                   err, errlen);
    free(path);
    return rc;
}
