#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <signal.h>
#include <sys/types.h>

#include <openssl/crypto.h>

#include "acme_util.h"

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
acme_b64url_encode(const unsigned char *data, size_t len)
{
    char    *out, *p;
    size_t   i;
    unsigned v;

    out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL) {
        return NULL;
    }

    p = out;
    for (i = 0; i + 2 < len; i += 3) {
        v = (unsigned) data[i] << 16 | (unsigned) data[i + 1] << 8 | data[i + 2];
        *p++ = b64url_alphabet[(v >> 18) & 63];
        *p++ = b64url_alphabet[(v >> 12) & 63];
        *p++ = b64url_alphabet[(v >> 6) & 63];
        *p++ = b64url_alphabet[v & 63];
    }

    if (len - i == 1) {
        v = (unsigned) data[i] << 16;
        *p++ = b64url_alphabet[(v >> 18) & 63];
        *p++ = b64url_alphabet[(v >> 12) & 63];

    } else if (len - i == 2) {
        v = (unsigned) data[i] << 16 | (unsigned) data[i + 1] << 8;
        *p++ = b64url_alphabet[(v >> 18) & 63];
        *p++ = b64url_alphabet[(v >> 12) & 63];
        *p++ = b64url_alphabet[(v >> 6) & 63];
    }

    *p = '\0';
    return out;
}

static int
b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

unsigned char *
acme_b64url_decode(const char *s, size_t slen, size_t *out_len)
{
    unsigned char  *out, *p;
    size_t          i, n;
    unsigned        acc = 0;
    int             bits = 0, v;

    while (slen > 0 && s[slen - 1] == '=') {
        slen--;
    }

    if (slen % 4 == 1) {
        return NULL;
    }

    n = slen / 4 * 3 + (slen % 4 ? slen % 4 - 1 : 0);
    out = malloc(n + 1);
    if (out == NULL) {
        return NULL;
    }

    p = out;
    for (i = 0; i < slen; i++) {
        v = b64url_value(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *p++ = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    /* leftover bits must be zero in a canonical encoding */
    if (acc != 0) {
        free(out);
        return NULL;
    }

    *out_len = (size_t) (p - out);
    *p = '\0';
    return out;
}

unsigned char *
acme_b64_secret_decode(const char *text, size_t *out_len, size_t *trimmed_len)
{
    const char     *s, *e;
    char           *copy;
    unsigned char  *out;
    size_t          n, i;

    s = text;
    e = text + strlen(text);

    while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
    }

    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'
                     || e[-1] == '\n'))
    {
        e--;
    }

    n = (size_t) (e - s);
    if (trimmed_len != NULL) {
        *trimmed_len = n;
    }

    copy = acme_strndup(s, n);
    if (copy == NULL) {
        return NULL;
    }

    /* standard base64 maps onto base64url one character for one */
    for (i = 0; i < n; i++) {
        if (copy[i] == '+') {
            copy[i] = '-';

        } else if (copy[i] == '/') {
            copy[i] = '_';
        }
    }

    out = acme_b64url_decode(copy, n, out_len);
    OPENSSL_cleanse(copy, n);
    free(copy);

    return out;
}

int
acme_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }

    return -1;
}

char *
acme_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *
acme_strndup(const char *s, size_t n)
{
    char *p;

    p = malloc(n + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
acme_sprintf(const char *fmt, ...)
{
    va_list  ap;
    char    *p;
    int      n;

    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);
    va_end(ap);

    return n < 0 ? NULL : p;
}

const char *
acme_time_rfc3339(long long t, char *buf, size_t len)
{
    time_t     tt = (time_t) t;
    struct tm  tm;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, len, "invalid");
    }

    return buf;
}

long long
acme_time_parse_rfc3339(const char *s)
{
    struct tm   tm;
    const char *p;
    long long   t, off;
    int         sign, oh, om;

    if (s == NULL) {
        return -1;
    }

    memset(&tm, 0, sizeof(tm));

    /* RFC 3339: 2026-11-26T11:14:27[.frac](Z|+hh:mm) */
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p != NULL) {
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9') {
                p++;
            }
        }

        off = 0;
        if (*p == 'Z' || *p == 'z') {
            p++;

        } else if ((*p == '+' || *p == '-')
                   && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2)
        {
            sign = *p == '-' ? -1 : 1;
            off = sign * (oh * 3600LL + om * 60LL);
            p += 6;

        } else {
            return -1;
        }

        if (*p != '\0') {
            return -1;
        }

        t = (long long) timegm(&tm);
        return t - off;
    }

    /* HTTP-date (IMF-fixdate): Sun, 06 Nov 1994 08:49:37 GMT */
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (p != NULL && *p == '\0') {
        return (long long) timegm(&tm);
    }

    return -1;
}

int
acme_process_alive(long pid)
{
    if (pid <= 0) {
        return 0;
    }
    return kill((pid_t) pid, 0) == 0 || errno != ESRCH;
}
