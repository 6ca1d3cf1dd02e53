/* An order's end in the store (thread only): see acme_job_store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "acme_job_store.h"
#include "acme_util.h"

/* key_rollover: next.key once the bundle is stored (never before: a
 * certificate that failed to be stored leaves next.key, the published
 * next pin, as it was); n->pin says what next.key holds afterwards */
static void
store_next(const char *root, const char *id, acme_job_next_t *n,
    const acme_cert_info_t *info)
{
    char  e[ACME_ERRLEN];

    if (n == NULL || n->pem == NULL) {
        return;
    }
    if (root == NULL) {
        n->pin[0] = '\0';         /* no store, no next key */
        return;
    }
    if (acme_store_save_next_key(root, id, n->pem, n->pem_len, e, sizeof(e))
        != 0)
    {
        acme_err(n->warn, sizeof(n->warn), "the next key cannot be stored "
                 "(%s): the next renewal %s", e,
                 n->used ? "keeps the current key" : "makes a fresh key");
        /* next.key as it was: the key certified now, or none */
        snprintf(n->pin, sizeof(n->pin), "%s", n->used ? info->spki_pin : "");
    }
}

int
acme_job_store_issued(const char *root, const char *id, const char *key_pem,
    size_t key_len, const char *chain, size_t chain_len,
    const acme_cert_state_t *st, acme_job_next_t *next,
    acme_cert_info_t *info, char *err, size_t errlen)
{
    char  perr[ACME_ERRLEN];

    if (acme_cert_info_from_pem(chain, chain_len, info, err, errlen) != 0) {
        return -1;
    }
    if (root == NULL) {
        store_next(root, id, next, info);
        return ACME_JOB_STORED;     /* no store: memory is all there is */
    }
    /* not valid yet: the bundle it replaces is kept for a restart; a
     * failure here is no reason not to store the new one */
    (void) acme_store_keep_previous(root, id,
                                    info->not_before > (long long) time(NULL),
                                    perr, sizeof(perr));
    if (acme_store_save_bundle(root, id, key_pem, key_len, chain, chain_len,
                               err, errlen) != 0)
    {
        if (err != NULL && errlen && err[0] == '\0') {
            acme_err(err, errlen, "unknown error");
        }
        if (next != NULL && next->pem != NULL) {
            /* next.key as it was: the key certified now, or none */
            OPENSSL_cleanse(next->pem, next->pem_len);
            free(next->pem);
            next->pem = NULL;
            next->pem_len = 0;
            snprintf(next->pin, sizeof(next->pin), "%s",
                     next->used ? info->spki_pin : "");
        }
        return ACME_JOB_BUNDLE_UNSAVED;
    }
    store_next(root, id, next, info);
    if (acme_store_save_state(root, id, st, err, errlen) != 0) {
        if (err != NULL && errlen && err[0] == '\0') {
            acme_err(err, errlen, "unknown error");
        }
        return ACME_JOB_STATE_UNSAVED;
    }
    /* a copy for tools (nginx-acme's place); the store has it already */
    (void) acme_store_save_chain_copy(root, id, chain, chain_len, perr,
                                      sizeof(perr));
    return ACME_JOB_STORED;
}

static void next_pin(const acme_store_dir_t *cd, const char *root,
    const char *id, acme_key_type_t kt, char *pin, size_t len);

void
acme_job_store_next_pin(const acme_store_dir_t *cd, acme_key_type_t kt,
    char *pin, size_t len)
{
    next_pin(cd, NULL, NULL, kt, pin, len);
}

void
acme_job_store_next_pin_id(const char *root, const char *id,
    acme_key_type_t kt, char *pin, size_t len)
{
    next_pin(NULL, root, id, kt, pin, len);
}

static void
next_pin(const acme_store_dir_t *cd, const char *root, const char *id,
    acme_key_type_t kt, char *pin, size_t len)
{
    EVP_PKEY         *key;
    acme_key_type_t   t;
    char             *pem = NULL, e[ACME_ERRLEN];
    size_t            n = 0;
    int               rc;

    if (len > 0) {
        pin[0] = '\0';
    }
    if (cd != NULL) {
        rc = acme_store_load_next_key_at(cd, &pem, &n, e, sizeof(e));
    } else {
        rc = root != NULL && id != NULL
             ? acme_store_load_next_key(root, id, &pem, &n, e, sizeof(e))
             : 0;
    }
    if (rc != 1) {
        return;
    }
    key = acme_key_from_pem(pem, n);
    OPENSSL_cleanse(pem, n);
    free(pem);
    if (key != NULL && acme_key_type_of(key, &t) == 0 && t == kt
        && acme_key_spki_pin(key, pin, len) != 0 && len > 0)
    {
        pin[0] = '\0';
    }
    EVP_PKEY_free(key);
}

int
acme_job_store_resave(const char *root, const char *id, const char *pem,
    size_t len, const acme_cert_state_t *st, char *err, size_t errlen)
{
    if (root == NULL) {
        return 0;
    }
    if (acme_store_save_bundle_pem(root, id, pem, len, err, errlen) != 0
        || acme_store_save_state(root, id, st, err, errlen) != 0)
    {
        return -1;
    }
    return 0;
}

int
acme_job_store_load_served(const acme_store_dir_t *cd, long long now,
    long long skew, char **pem, size_t *len, char **next, size_t *next_len,
    long long *at, acme_cert_info_t *next_info, char *err, size_t errlen)
{
    acme_cert_info_t  info, prev;
    char             *ppem = NULL, e[ACME_ERRLEN];
    size_t            plen = 0;
    long long         t;
    int               rc;

    *next = NULL;
    *next_len = 0;
    *at = 0;
    rc = acme_store_load_bundle_at(cd, pem, len, err, errlen);
    if (rc != 1) {
        return rc;
    }
    memset(&info, 0, sizeof(info));
    memset(&prev, 0, sizeof(prev));
    if (acme_cert_info_from_pem(*pem, *len, &info, e, sizeof(e)) != 0) {
        return 1;                       /* the caller says what is wrong */
    }
    t = 0;
    if (info.not_before - (skew < 0 ? ACME_JOB_CLOCK_SKEW : skew) > now
        && acme_store_load_previous_at(cd, &ppem, &plen, e, sizeof(e)) == 1
        && acme_bundle_parse(ppem, plen, NULL, NULL, NULL, e, sizeof(e)) == 0
        && acme_cert_info_from_pem(ppem, plen, &prev, e, sizeof(e)) == 0)
    {
        t = acme_job_activate_at(info.not_before, prev.not_after > now,
                                 prev.not_after, now, skew);
    }
    if (t != 0) {
        *next = *pem;
        *next_len = *len;
        *pem = ppem;
        *len = plen;
        *at = t;
        ppem = NULL;
        if (next_info != NULL) {
            *next_info = info;          /* the caller's to free */
            memset(&info, 0, sizeof(info));
        }
    }
    if (ppem != NULL) {
        OPENSSL_cleanse(ppem, plen);
        free(ppem);
    }
    acme_cert_info_free(&info);
    acme_cert_info_free(&prev);
    return 1;
}

/* "_<key type>", the end of every id of that key type */
static char *
id_suffix(acme_key_type_t kt)
{
    char  *x = acme_store_cert_id("x", kt);

    if (x != NULL) {
        memmove(x, x + 1, strlen(x));
    }
    return x;
}

/* 1 when the leaf of the usable bundle pem names one of names and is
 * still valid at now; *not_after its notAfter, *kt its key type, *equal
 * whether its names are names (acme_cert_info_names_equal) */
static int
replaced_usable(const char *pem, size_t len, const char *const *names,
    size_t n_names, long long now, long long *not_after, int *kt,
    int *equal)
{
    acme_cert_info_t  info;
    char              e[ACME_ERRLEN];
    size_t            i, k;
    int               named = 0;

    if (acme_bundle_parse(pem, len, NULL, NULL, NULL, e, sizeof(e)) != 0
        || acme_cert_info_from_pem(pem, len, &info, e, sizeof(e)) != 0)
    {
        return 0;
    }
    for (k = 0; k < info.n_names; k++) {
        for (i = 0; i < n_names; i++) {
            named |= (strcasecmp(info.names[k], names[i]) == 0);
        }
    }
    *not_after = info.not_after;
    *kt = info.key_type;
    *equal = acme_cert_info_names_equal(&info, names, n_names);
    acme_cert_info_free(&info);
    return named && *not_after > now;
}

int
acme_job_store_load_replaced(const char *root, uid_t uid, gid_t gid,
    const char *id, acme_key_type_t kt, const char *const *names,
    size_t n_names, int (*in_use)(const char *id, void *ctx), void *ctx,
    long long now, char **pem, size_t *len, char **from, const char **why)
{
    acme_store_dir_t   rd, certs, cd;
    long long          after;
    char              *own, *p, *cand;
    char               e[ACME_ERRLEN], w[ACME_ERRLEN];
    size_t             n;
    int                fd, ckt, eq, same, best_same = -1, best_eq = 0;
    long long          best = 0;
    DIR               *dir;
    struct dirent     *de;

    *pem = NULL;
    *len = 0;
    *from = NULL;
    if (why != NULL) {
        *why = NULL;
    }

    own = id_suffix(kt);
    p = strchr(id, '@');                /* "<id>@<issuer>" */
    n = p != NULL ? (size_t) (p - id) : strlen(id);
    if (own == NULL || n <= strlen(own)
        || strncmp(id + n - strlen(own), own, strlen(own)) != 0)
    {
        free(own);
        return 0;
    }
    free(own);

    if (acme_store_dir_open_root(&rd, root, uid, gid, 0, w, sizeof(w), e,
                                 sizeof(e))
        != 0)
    {
        return 0;
    }
    if (acme_store_dir_open(&certs, &rd, "certs", 0, e, sizeof(e)) != 0) {
        acme_store_dir_close(&rd);
        return 0;
    }
    acme_store_dir_close(&rd);

    /* every id of the store: its own directory descriptor is listed */
    fd = dup(certs.fd);
    dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (dir == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        acme_store_dir_close(&certs);
        return 0;
    }

    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, id) == 0
            || (in_use != NULL && in_use(de->d_name, ctx))
            || acme_store_dir_open(&cd, &certs, de->d_name, 0, e, sizeof(e))
               != 0)
        {
            continue;
        }
        p = NULL;
        n = 0;
        ckt = -1;
        if (acme_store_load_bundle_at(&cd, &p, &n, e, sizeof(e)) == 1
            && replaced_usable(p, n, names, n_names, now, &after, &ckt,
                               &eq))
        {
            /* the configured key type first, then the one valid longest */
            same = (ckt == (int) kt);
            if (same > best_same || (same == best_same && after > best)) {
                cand = strdup(de->d_name);
                if (cand != NULL) {
                    acme_bundle_free(*pem, *len);
                    free(*from);
                    *pem = p;
                    *len = n;
                    *from = cand;
                    best = after;
                    best_same = same;
                    best_eq = eq;
                    p = NULL;
                }
            }
        }
        acme_store_dir_close(&cd);
        acme_bundle_free(p, n);
    }
    closedir(dir);
    acme_store_dir_close(&certs);

    if (*pem != NULL && why != NULL) {
        /* as acme_job_change says it: the key type first */
        *why = !best_same ? "key type changed"
               : !best_eq ? "names changed"
               : "first name changed";  /* the same names: nothing due */
    }
    return *pem != NULL;
}

int
acme_job_bridge_load(acme_job_bridge_t *b, const char *path, char *err,
    size_t errlen)
{
    char    *pem = NULL, e[ACME_ERRLEN];
    size_t   len = 0;
    int      rc;

    if (strncmp(path, "data:", 5) == 0) {
        return acme_job_bridge_from_pem(b, "data:", path + 5,
                                        strlen(path + 5), err, errlen);
    }
    rc = acme_store_read(path, &pem, &len, 1024 * 1024, e, sizeof(e));
    if (rc != 1) {
        memset(b, 0, sizeof(*b));
        snprintf(b->file, sizeof(b->file), "%s", path);
        return acme_err(err, errlen, "cannot read \"%s\": %s", path,
                        rc == 0 ? "no such file" : e);
    }
    rc = acme_job_bridge_from_pem(b, path, pem, len, e, sizeof(e));
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (rc != 0) {
        return acme_err(err, errlen, "\"%s\": %s", path, e);
    }
    return 0;
}
