/*
 * The store's JSON files as read back from disk: certs/<id>/state.json
 * (acme_store_load_state) and account.json (acme_store_load_account).
 * The input is the file's content, written to both files in a scratch
 * store (under /dev/shm when there is one).  Properties: a loaded state
 * has a NUL-terminated last_error; a loaded account has a URL.
 */
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>

#include "acme_store.h"
#include "acme_util.h"
#include "fuzz.h"

#define ID "a.example.test_ecdsa-256"

static char root[256];

static void
put_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");

    FUZZ_ASSERT(f != NULL);
    FUZZ_ASSERT(size == 0 || fwrite(data, 1, size, f) == size);
    FUZZ_ASSERT(fclose(f) == 0);
}

static void
cleanup(void)
{
    char *p;

    if ((p = acme_store_state_path(root, ID)) != NULL) {
        unlink(p);
        free(p);
    }
    if ((p = acme_store_account_json_path(root)) != NULL) {
        unlink(p);
        free(p);
    }
    if ((p = acme_store_cert_dir(root, ID)) != NULL) {
        rmdir(p);
        free(p);
    }
    p = acme_sprintf("%s/certs", root);
    if (p != NULL) {
        rmdir(p);
        free(p);
    }
    rmdir(root);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acme_cert_state_t   st;
    char               *path, *url, err[ACME_ERRLEN];
    int                 rc;

    if (root[0] == '\0') {
        snprintf(root, sizeof(root), "%s/acme-fuzz-store-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        FUZZ_ASSERT(mkdtemp(root) != NULL);
        atexit(cleanup);
        {
            acme_store_dir_t rd = ACME_STORE_DIR_INIT, cd = ACME_STORE_DIR_INIT;
            char             warn[ACME_ERRLEN];

            FUZZ_ASSERT(acme_store_dir_open_root(&rd, root, (uid_t) -1,
                                                 (gid_t) -1, 1, warn,
                                                 sizeof(warn), err,
                                                 sizeof(err)) == 0);
            FUZZ_ASSERT(acme_store_dir_open_cert(&cd, &rd, ID, 1, err,
                                                 sizeof(err)) == 0);
            acme_store_dir_close(&cd);
            acme_store_dir_close(&rd);
        }
    }

    path = acme_store_state_path(root, ID);
    FUZZ_ASSERT(path != NULL);
    put_file(path, data, size);
    free(path);
    err[0] = '\0';
    rc = acme_store_load_state(root, ID, &st, err, sizeof(err));
    FUZZ_ASSERT(rc == 1 || rc == -1);
    if (rc == 1) {
        FUZZ_ASSERT(memchr(st.last_error, '\0', sizeof(st.last_error)) != NULL);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }

    path = acme_store_account_json_path(root);
    FUZZ_ASSERT(path != NULL);
    put_file(path, data, size);
    free(path);
    url = NULL;
    err[0] = '\0';
    rc = acme_store_load_account(root, "https://ca.test/dir", NULL, &url, err,
                                 sizeof(err));
    if (rc == 1) {
        FUZZ_ASSERT(url != NULL && *url != '\0');
    } else {
        FUZZ_ASSERT(url == NULL);
        FUZZ_ASSERT(rc == 0 || err[0] != '\0');
    }
    free(url);
    return 0;
}
