#include <limits.h>
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

int
acme_token_ok(const char *t, size_t len)
{
    size_t i;

    if (len == 0 || len > ACME_TOKEN_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z')
              || (t[i] >= '0' && t[i] <= '9') || t[i] == '-' || t[i] == '_'))
        {
            return 0;
        }
    }
    return 1;
}

int
acme_http01_token(const char *path, size_t len, const char **token,
    size_t *token_len)
{
    size_t  n = sizeof(ACME_HTTP01_PREFIX) - 1;

    *token = NULL;
    *token_len = 0;

    if (path == NULL || len < n || memcmp(path, ACME_HTTP01_PREFIX, n) != 0) {
        return 0;
    }
    if (!acme_token_ok(path + n, len - n)) {
        return -1;
    }
    *token = path + n;
    *token_len = len - n;
    return 1;
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

/* ---- time parsing: hand-written, strict, never reads past the NUL ---- */

static int
is_leap(long long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(long long y, int m)
{
    static const int  days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                   30, 31 };

    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static long long
days_from_civil(long long y, int m, int d)
{
    long long  era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Exactly n ASCII digits at *pp (a NUL stops it: never reads past it). */
static int
take_digits(const char **pp, int n, int *out)
{
    const char  *p = *pp;
    int          v = 0, i;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    *pp = p + n;
    *out = v;
    return 0;
}

static int
take_char(const char **pp, char c)
{
    if (**pp != c) {
        return -1;
    }
    (*pp)++;
    return 0;
}

/* hh:mm:ss with range checks (second 60: a leap second). */
static int
take_time(const char **pp, int *h, int *mi, int *sec)
{
    if (take_digits(pp, 2, h) != 0 || take_char(pp, ':') != 0
        || take_digits(pp, 2, mi) != 0 || take_char(pp, ':') != 0
        || take_digits(pp, 2, sec) != 0
        || *h > 23 || *mi > 59 || *sec > 60)
    {
        return -1;
    }
    return 0;
}

/* Unix time of a checked date and time; -1 for dates that do not exist
 * and for times before the epoch (never meaningful here). */
static long long
civil_time(long long y, int mo, int d, int h, int mi, int sec, long long off)
{
    long long  t;

    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) {
        return -1;
    }
    t = days_from_civil(y, mo, d) * 86400 + h * 3600LL + mi * 60LL + sec - off;
    return t < 0 ? -1 : t;
}

long long
acme_time_parse_rfc3339(const char *s)
{
    const char  *p = s;
    int          y, mo, d, h, mi, sec, oh, om;
    long long    off;

    if (s == NULL) {
        return -1;
    }

    /* full-date "T" full-time (RFC 3339 section 5.6) */
    if (take_digits(&p, 4, &y) != 0 || take_char(&p, '-') != 0
        || take_digits(&p, 2, &mo) != 0 || take_char(&p, '-') != 0
        || take_digits(&p, 2, &d) != 0 || (*p != 'T' && *p != 't'))
    {
        return -1;
    }
    p++;
    if (take_time(&p, &h, &mi, &sec) != 0) {
        return -1;
    }

    /* time-secfrac = "." 1*DIGIT */
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return -1;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }

    /* time-offset = "Z" / ("+" / "-") time-hour ":" time-minute */
    if (*p == 'Z' || *p == 'z') {
        off = 0;
        p++;

    } else if (*p == '+' || *p == '-') {
        off = *p == '-' ? -1 : 1;
        p++;
        if (take_digits(&p, 2, &oh) != 0 || take_char(&p, ':') != 0
            || take_digits(&p, 2, &om) != 0 || oh > 23 || om > 59)
        {
            return -1;
        }
        off *= oh * 3600LL + om * 60LL;

    } else {
        return -1;
    }

    if (*p != '\0') {
        return -1;
    }

    return civil_time(y, mo, d, h, mi, sec, off);
}

/* Index of the three-letter name at p in names (case-sensitive), or -1. */
static int
take_name(const char **pp, const char *const *names, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        if (strncmp(*pp, names[i], strlen(names[i])) == 0) {
            *pp += strlen(names[i]);
            return i;
        }
    }
    return -1;
}

long long
acme_time_parse_http_date(const char *s)
{
    static const char *const  wkday[7] = {
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"
    };
    static const char *const  weekday[7] = {
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
        "Sunday"
    };
    static const char *const  month[12] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
        "Nov", "Dec"
    };
    const char  *p = s;
    int          y, mo, d, h, mi, sec;

    if (s == NULL) {
        return -1;
    }

    /* HTTP-date is case-sensitive (RFC 9110 section 5.6.7) */

    if (take_name(&p, weekday, 7) >= 0) {
        /* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT; a two-digit year
         * is 19xx from 70 on, else 20xx (the epoch cannot be earlier) */
        if (take_char(&p, ',') != 0 || take_char(&p, ' ') != 0
            || take_digits(&p, 2, &d) != 0 || take_char(&p, '-') != 0
            || (mo = take_name(&p, month, 12) + 1) == 0
            || take_char(&p, '-') != 0 || take_digits(&p, 2, &y) != 0
            || take_char(&p, ' ') != 0 || take_time(&p, &h, &mi, &sec) != 0
            || strcmp(p, " GMT") != 0)
        {
            return -1;
        }
        y += y >= 70 ? 1900 : 2000;
        return civil_time(y, mo, d, h, mi, sec, 0);
    }

    if (take_name(&p, wkday, 7) < 0) {
        return -1;
    }

    if (*p == ',') {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        p++;
        if (take_char(&p, ' ') != 0 || take_digits(&p, 2, &d) != 0
            || take_char(&p, ' ') != 0
            || (mo = take_name(&p, month, 12) + 1) == 0
            || take_char(&p, ' ') != 0 || take_digits(&p, 4, &y) != 0
            || take_char(&p, ' ') != 0 || take_time(&p, &h, &mi, &sec) != 0
            || strcmp(p, " GMT") != 0)
        {
            return -1;
        }
        return civil_time(y, mo, d, h, mi, sec, 0);
    }

    /* asctime-date: Sun Nov  6 08:49:37 1994 */
    if (take_char(&p, ' ') != 0 || (mo = take_name(&p, month, 12) + 1) == 0
        || take_char(&p, ' ') != 0)
    {
        return -1;
    }
    if (*p == ' ') {
        p++;
        if (take_digits(&p, 1, &d) != 0) {
            return -1;
        }
    } else if (take_digits(&p, 2, &d) != 0) {
        return -1;
    }
    if (take_char(&p, ' ') != 0 || take_time(&p, &h, &mi, &sec) != 0
        || take_char(&p, ' ') != 0 || take_digits(&p, 4, &y) != 0
        || *p != '\0')
    {
        return -1;
    }
    return civil_time(y, mo, d, h, mi, sec, 0);
}

int
acme_process_alive(long pid)
{
    if (pid <= 0) {
        return 0;
    }
    return kill((pid_t) pid, 0) == 0 || errno != ESRCH;
}


long long
acme_monotonic_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


const char *
acme_duration_text(int ms, char *buf, size_t len)
{
    if (ms % 1000 == 0) {
        snprintf(buf, len, "%d s", ms / 1000);
    } else {
        snprintf(buf, len, "%d ms", ms);
    }
    return buf;
}

long long
acme_sub_sat(long long a, long long b)
{
    long long  r;

    if (__builtin_sub_overflow(a, b, &r)) {
        return (b < 0) ? LLONG_MAX : LLONG_MIN;
    }
    return r;
}


/* -- query strings -------------------------------------------------------- */

static int
query_hexval(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}


int
acme_query_arg(const char *args, size_t args_len, const char *name,
    char *buf, size_t len)
{
    const char *p, *end, *amp, *eq;
    size_t      nlen = strlen(name), o;
    int         h, l;

    if (args == NULL || len == 0) {
        return 0;
    }
    end = args + args_len;

    for (p = args; p < end; p = amp + 1) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }
        eq = memchr(p, '=', (size_t) (amp - p));
        if ((size_t) ((eq ? eq : amp) - p) != nlen
            || memcmp(p, name, nlen) != 0)
        {
            continue;
        }
        o = 0;
        for (p = eq ? eq + 1 : amp; p < amp; p++) {
            if (o + 1 >= len) {
                return -1;
            }
            if (*p == '%') {
                if (amp - p < 3 || (h = query_hexval(p[1])) < 0
                    || (l = query_hexval(p[2])) < 0 || (h == 0 && l == 0))
                {
                    return -1;
                }
                buf[o++] = (char) (h * 16 + l);
                p += 2;
            } else {
                buf[o++] = *p == '+' ? ' ' : *p;
            }
        }
        buf[o] = '\0';
        return 1;
    }
    return 0;
}
