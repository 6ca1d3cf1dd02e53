/*
 * External Account Binding: the MAC key read from a file (acme_eab_file.h),
 * at configuration time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "acme_eab.h"
#include "acme_eab_file.h"
#include "acme_util.h"

#define EAB_KEY_FILE_MAX  4096


unsigned char *
acme_eab_mac_key_read_file(const char *path, size_t *len, char *err,
    size_t errlen)
{
    char            buf[EAB_KEY_FILE_MAX + 1];
    unsigned char  *key;
    size_t          got;
    ssize_t         n;
    int             fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        acme_err(err, errlen, "external account binding: cannot open MAC key "
                 "file \"%s\": %s", path, strerror(errno));
        return NULL;
    }

    got = 0;
    for ( ;; ) {
        n = read(fd, buf + got, sizeof(buf) - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t) n;
        if (got == sizeof(buf)) {
            break;
        }
    }
    close(fd);

    if (n < 0) {
        OPENSSL_cleanse(buf, sizeof(buf));
        acme_err(err, errlen, "external account binding: cannot read MAC key "
                 "file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    if (got > EAB_KEY_FILE_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        acme_err(err, errlen, "external account binding: MAC key file \"%s\" "
                 "is larger than %d bytes", path, EAB_KEY_FILE_MAX);
        return NULL;
    }
    buf[got] = '\0';

    if (memchr(buf, '\0', got) != NULL) {
        key = NULL;
        acme_err(err, errlen, "external account binding: MAC key file \"%s\" "
                 "is not text", path);
    } else {
        key = acme_eab_mac_key_decode(buf, len, err, errlen);
        if (key == NULL && err != NULL && errlen > 0) {
            /* say which file: the decoder's message has no path */
            char  inner[ACME_ERRLEN];

            snprintf(inner, sizeof(inner), "%s", err);
            acme_err(err, errlen, "%s (in \"%s\")", inner, path);
        }
    }

    OPENSSL_cleanse(buf, sizeof(buf));
    return key;
}


int
acme_eab_conf_load(const char *kid, const char *key, int key_is_file,
    const char *alg, acme_eab_conf_t *out, char *err, size_t errlen)
{
    unsigned char  *mac;
    size_t          len = 0;
    char            inner[ACME_ERRLEN];

    memset(out, 0, sizeof(*out));
    if (acme_eab_conf(kid, alg, &out->alg, err, errlen) != 0) {
        return -1;
    }

    inner[0] = '\0';
    if (key_is_file) {
        mac = acme_eab_mac_key_read_file(key, &len, inner, sizeof(inner));
    } else {
        mac = acme_eab_mac_key_decode(key, &len, inner, sizeof(inner));
    }
    if (mac == NULL) {
        out->alg = NULL;
        return acme_err(err, errlen, "cannot use the MAC key of kid \"%s\"%s: "
                        "%s", kid, key_is_file ? "" : " (inline)",
                        inner[0] ? inner : "invalid key");
    }
    out->kid = kid;
    out->key = mac;
    out->key_len = len;
    return 0;
}
