/*
 * The on-disk store.  One store directory per issuer (state_path):
 *
 *   <root>/                      0700
 *   <root>/account.key           0600  account private key (PKCS#8 PEM),
 *                                      created once (acme_store_account_key)
 *   <root>/account.json          0600  {"directory": URL, "url": account URL,
 *                                      "key": RFC 7638 thumbprint of the
 *                                      account key the URL belongs to}
 *   <root>/accounts/<name>/      0700  account.key and account.json of
 *                                      another CA (directory URL) than the
 *                                      root's: one account per CA, each
 *                                      kept when the issuer changes CA
 *                                      (acme_store_account_name)
 *   <root>/certs/                0700
 *   <root>/certs/<id>/           0700  one per managed certificate
 *   <root>/certs/<id>/bundle.pem 0600  private key PEM followed by the full
 *                                      chain PEM (leaf first), written in one
 *                                      atomic step so key and chain always match
 *   <root>/certs/<id>/state.json 0600  renewal/backoff state (acme_cert_state_t),
 *                                      with the directory URL and the
 *                                      issuer block ("issuer") that issued
 *                                      bundle.pem
 *   <root>/certs/<id>/next.key   0600  key_rollover pinned / AcmeKeyRollover
 *                                      pinned: the key of the next
 *                                      certificate (PKCS#8 PEM), made with
 *                                      the current one, its pin published
 *                                      (acme_job_prep.h, acme_job_next_t)
 *   <root>/certs/<id>/previous.pem 0600 the bundle bundle.pem replaced, kept
 *                                      while bundle.pem's certificate is not
 *                                      valid yet (acme_job_store_issued), so
 *                                      a restart serves it until then
 *
 * <id> is acme_store_cert_id(): the first name and the key type, e.g.
 * "example.com_ecdsa-256" ("*" becomes "_wildcard_"); followed by
 * "@<issuer>" when another issuer certifies the same first name with the
 * same key type (acme_store_cert_id_issuer).  Several issuers may share
 * one root (nginx): they share its account files (one account per CA and
 * account key) and keep their certificates apart by their ids.
 *
 * Every write goes to a temporary file in the same directory, is fsync'd,
 * renamed over the target and the directory is fsync'd: a crash at any
 * point leaves either the old or the new file, never a torn one.
 *
 * The store belongs to the unprivileged worker/child user, who can put a
 * symlink, a hard link or another kind of file at any name below <root> at
 * any time, while root code (nginx's master, Apache's parent) reads it and
 * creates its directories.  So every access goes through acme_store_dir_t
 * below: the root is opened as a directory descriptor, everything below it
 * relative to its parent's descriptor with O_NOFOLLOW, ownership is set
 * with fchown on descriptors, never through a path.
 */
#ifndef ACME_STORE_H
#define ACME_STORE_H

#include <stddef.h>
#include <sys/types.h>
#include "acme_key.h"
#include "acme_sched.h"

/*
 * An opened store directory.  uid/gid: who owns what the store holds (the
 * worker user); what is created is given to uid:gid when that is not the
 * caller.  Entries below the root that are symlinks, not of the expected
 * type, not owned by uid or root, or (files) with more than one link are
 * refused with an error naming them.  Failing calls return -1 with err and
 * leave errno set to the cause (EROFS: read-only file system, ELOOP: a
 * symlink, EPERM: refused owner or type, ...).
 */
typedef struct {
    int          fd;            /* -1 when not open */
    char        *path;          /* for messages, malloc'd */
    uid_t        uid;
    gid_t        gid;
    int          give;          /* created entries are fchown'd to uid:gid */
} acme_store_dir_t;

#define ACME_STORE_DIR_INIT  { -1, NULL, 0, 0, 0 }

/*
 * Opens the store root (O_DIRECTORY; its last component must not be a
 * symlink), creating it 0700 when create is set (missing ancestors 0755,
 * owned by the caller).  uid == (uid_t) -1: the caller's own store.  When
 * the caller is root and the root directory is not owned by uid:gid it is
 * fchown'd.  Ancestors not owned by root (or the caller) or writable by
 * group/others without the sticky bit are named in warn (else warn is "").
 */
int acme_store_dir_open_root(acme_store_dir_t *d, const char *root,
    uid_t uid, gid_t gid, int create, char *warn, size_t warnlen, char *err,
    size_t errlen);

/* Opens (creating 0700 when create) the directory name below parent. */
int acme_store_dir_open(acme_store_dir_t *d, const acme_store_dir_t *parent,
    const char *name, int create, char *err, size_t errlen);

/* <root>/certs/<id>, both opened (and created) as by acme_store_dir_open. */
int acme_store_dir_open_cert(acme_store_dir_t *d,
    const acme_store_dir_t *root, const char *id, int create, char *err,
    size_t errlen);

void acme_store_dir_close(acme_store_dir_t *d);

/* 1 when the directory is on a read-only mount (fstatvfs), else 0. */
int acme_store_dir_read_only(const acme_store_dir_t *d);

/* Reads the file name below d (O_NOFOLLOW, O_NONBLOCK; a regular file with
 * one link owned by uid or root).  1 with *data (malloc'd, NUL-terminated),
 * 0 when missing, -1 with err. */
int acme_store_dir_read(const acme_store_dir_t *d, const char *name,
    char **data, size_t *len, size_t max, char *err, size_t errlen);

/* Atomic write of name below d: the temporary file is created
 * O_CREAT|O_EXCL|O_NOFOLLOW, written, fsync'd, fchmod'd, fchown'd (give),
 * renamed over name, the directory fsync'd.  0, or -1 with err. */
int acme_store_dir_write(const acme_store_dir_t *d, const char *name,
    const void *data, size_t len, mode_t mode, char *err, size_t errlen);

/* Creates name below d with data unless it exists: written as by
 * acme_store_dir_write, then renamed into place with RENAME_NOREPLACE
 * (never replacing; linkat() where the file system cannot), so of
 * concurrent creators (threads or processes) exactly one wins and nobody
 * sees a partial file or a second link.  1 created, 0 it existed (nothing
 * changed), -1. */
int acme_store_dir_create(const acme_store_dir_t *d, const char *name,
    const void *data, size_t len, mode_t mode, char *err, size_t errlen);

/* Atomic write as described above.  0, or -1 with err. */
int acme_store_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode, char *err, size_t errlen);

/* Reads a whole file (at most max bytes).  Returns 1 with *data malloc'd and
 * NUL-terminated, 0 if the file does not exist, -1 with err on error. */
int acme_store_read(const char *path, char **data, size_t *len, size_t max,
    char *err, size_t errlen);

/* Would the process be able to create/write the directory path (checks
 * the nearest existing ancestor; an existing path that is not a directory
 * is an error, ENOTDIR); writes nothing.  0, or -1 with err and errno (EROFS
 * when the only problem is a read-only file system). */
int acme_store_check_writable(const char *path, char *err, size_t errlen);

/* The user the workers / children write the store as (the "user" /
 * User+Group directives): name for messages, uid, primary gid and the
 * supplementary groups (acme_store_user_groups). */
typedef struct {
    const char  *name;
    uid_t        uid;
    gid_t        gid;
    gid_t        groups[64];
    size_t       n_groups;
} acme_store_user_t;

/* Fills u for name/uid/gid, the supplementary groups by getgrouplist() (as
 * initgroups() gives them to the workers / children). */
void acme_store_user_init(acme_store_user_t *u, const char *name, uid_t uid,
    gid_t gid);

/*
 * Could the user reach and write the store at path (absolute; a relative
 * path is not judged, 0)?  By stat() and the mode bits, not access(): the
 * caller is root checking for another uid.  Every existing directory on
 * the way (as written and, through symlinks, where it leads) must be
 * searchable by the user; missing ones are created by root 0755 and are.
 * When path exists it must be searchable and writable by the user, by the
 * owner's bits when give (root hands the store root to the user at
 * start).  A component with a POSIX ACL is not judged.  Writes nothing.
 * 0 fine; -1 with err naming the blocking component ("/srv/priv" is not
 * searchable by user "www-data"); 1 with err when the store exists but is
 * not writable by the user (read-only for it: a warning; not said on a
 * read-only file system, acme_store_check_writable says that).
 */
int acme_store_check_user(const char *path, const acme_store_user_t *u,
    int give, char *err, size_t errlen);

/* "<first name>_<key type>" with '*' -> "_wildcard_" and ':' -> '-'. */
char *acme_store_cert_id(const char *first_name, acme_key_type_t kt);

/*
 * Several issuers may certify the same names (nginx: one server per
 * issuer), and issuers may share one state directory: a certificate whose
 * id another issuer's certificate of the configuration has too gets
 * "<id>@<issuer>" (acme_store_cert_id_issuer; malloc'd, NULL for an
 * empty id or issuer), except for the certificates of the first of those
 * issuers (in the order of the issuer blocks), which keep the plain id:
 * an existing certificate stays under its id when another issuer block,
 * written after its own, certifies the same names.
 * acme_store_cert_ids_by_issuer sets need[i] = 1 for each of the n
 * certificates (plain id ids[i], issuer block number issuers[i]; the same
 * certificate is listed once) that needs the issuer in its id.
 */
char *acme_store_cert_id_issuer(const char *id, const char *issuer);
void acme_store_cert_ids_by_issuer(const char *const *ids,
    const size_t *issuers, size_t n, int *need);

/* Path helpers, malloc'd. */
char *acme_store_account_key_path(const char *root);
char *acme_store_account_json_path(const char *root);
char *acme_store_cert_dir(const char *root, const char *id);
char *acme_store_bundle_path(const char *root, const char *id);
char *acme_store_state_path(const char *root, const char *id);

/*
 * One account per CA: the account of a directory URL lives in
 * accounts/<acme_store_account_name(URL)>/ once that holds an account.key;
 * else at the root while the root's account is free or that CA's (no
 * account.key, no or an unreadable account.json, or one naming that URL):
 * so the first CA's account, and the one account of a store of older
 * versions, stay at the root and are used for their CA as before; else
 * (the root's account is another CA's) in accounts/<name>/.  A changed CA
 * gets its own account, the old one is kept for a change back.
 * directory_url NULL: the root's.
 */
/* "<host>[_<port>][_<path>]-<8 hex digits of FNV-1a of the URL>", every
 * byte but [A-Za-z0-9.-] as '_', host/port/path cut at 64 bytes; malloc'd
 * (NULL: empty URL or out of memory). */
char *acme_store_account_name(const char *directory_url);

/*
 * The account key of directory_url's account (see above): account.key,
 * or, when there is none, a new key of type written with
 * acme_store_dir_create(), so that concurrent first jobs (threads or
 * processes) all end up with the one key that won.  Slow for RSA when it
 * generates: never on an event loop.  0 with *key (caller frees;
 * *created = 1 if this call made it), -1 with err.
 */
int acme_store_account_key(const char *root, const char *directory_url,
    acme_key_type_t type, EVP_PKEY **key, int *created, char *err,
    size_t errlen);

/* Account URL of directory_url's account (see above): returns 1 and *url
 * (malloc'd) if its account.json holds one for that same directory URL and
 * that same key (its thumbprint; key NULL: any), 0 otherwise (also for a
 * file written without "key"), -1 on error.  save records all three in one
 * atomic write, in the same place. */
int acme_store_load_account(const char *root, const char *directory_url,
    EVP_PKEY *key, char **url, char *err, size_t errlen);
int acme_store_save_account(const char *root, const char *directory_url,
    EVP_PKEY *key, const char *url, char *err, size_t errlen);

/* The root's account key PEM (account.key, 0600). load: 1 found, 0
 * missing, -1 error. */
int acme_store_load_account_key(const char *root, char **pem, size_t *len,
    char *err, size_t errlen);
int acme_store_save_account_key(const char *root, const char *pem,
    size_t len, char *err, size_t errlen);

/* Certificate bundle (key PEM + chain PEM). load: 1 found, 0 missing, -1 error. */
int acme_store_load_bundle(const char *root, const char *id, char **pem,
    size_t *len, char *err, size_t errlen);
/* The same from an opened certs/<id> directory (acme_store_dir_open_cert). */
int acme_store_load_bundle_at(const acme_store_dir_t *cert_dir, char **pem,
    size_t *len, char *err, size_t errlen);
int acme_store_save_bundle(const char *root, const char *id,
    const char *key_pem, size_t key_len, const char *chain_pem,
    size_t chain_len, char *err, size_t errlen);
/* The same from the bundle as served (key PEM followed by the chain PEM),
 * e.g. one kept in memory after the store refused it.  The error names
 * bundle.pem's path. */
int acme_store_save_bundle_pem(const char *root, const char *id,
    const char *pem, size_t len, char *err, size_t errlen);

/*
 * <root>/<id>.crt: a copy of the current chain (leaf first, public: 0644),
 * where the official nginx-acme module keeps its certificates
 * ("<state_path>/<name>.crt"), for tools and tests that look there.  Never
 * read back: certs/<id>/bundle.pem is the store.  Atomic; 0 or -1 with err.
 */
int acme_store_save_chain_copy(const char *root, const char *id,
    const char *chain, size_t len, char *err, size_t errlen);

/* previous.pem (see the layout): load as bundle.pem; keep 1 copies
 * bundle.pem to previous.pem (1 copied, 0 nothing to copy, -1), keep 0
 * removes previous.pem (0, or -1). */
int acme_store_load_previous_at(const acme_store_dir_t *cert_dir, char **pem,
    size_t *len, char *err, size_t errlen);
int acme_store_keep_previous(const char *root, const char *id, int keep,
    char *err, size_t errlen);

/* next.key (see the layout): load as bundle.pem (1 found, 0 missing, -1
 * error), save atomic 0600 (0, or -1 with err). */
int acme_store_load_next_key_at(const acme_store_dir_t *cert_dir, char **pem,
    size_t *len, char *err, size_t errlen);
int acme_store_load_next_key(const char *root, const char *id, char **pem,
    size_t *len, char *err, size_t errlen);
int acme_store_save_next_key(const char *root, const char *id,
    const char *pem, size_t len, char *err, size_t errlen);

/* Renewal/backoff state (acme_cert_state_t: acme_sched.h). */
/* load: 1 found, 0 missing (state zeroed), -1 error (state zeroed). */
int acme_store_load_state(const char *root, const char *id,
    acme_cert_state_t *st, char *err, size_t errlen);
int acme_store_load_state_at(const acme_store_dir_t *cert_dir,
    acme_cert_state_t *st, char *err, size_t errlen);
int acme_store_save_state(const char *root, const char *id,
    const acme_cert_state_t *st, char *err, size_t errlen);

#endif
