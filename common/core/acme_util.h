/*
 * Small helpers shared by every file of the ACME core: base64url, error
 * buffers, string lists.  Everything returned as "char *" is malloc'd and
 * owned by the caller (free()).
 */
#ifndef ACME_UTIL_H
#define ACME_UTIL_H

#include <stddef.h>
#include <stdarg.h>

/* The version of the modules (ngx_acme, mod_acme_auto) built on this core:
 * sent in the User-Agent (acme_http_user_agent). */
#define ACME_VERSION "0.1"

/* The environment of every program the modules run (the dns-01 hook, the
 * event command) starts with this fixed PATH; nothing of the server's
 * environment is passed on. */
#define ACME_PROGRAM_PATH  "PATH=/usr/local/sbin:/usr/local/bin:" \
                           "/usr/sbin:/usr/bin:/sbin:/bin"

/* Errors are reported into caller-provided buffers of this size. */
#define ACME_ERRLEN 512

/* base64url without padding (RFC 7515 section 2). NULL on allocation failure. */
char *acme_b64url_encode(const unsigned char *data, size_t len);

/* Decodes base64url, padding optional; NULL on invalid input. *out_len set. */
unsigned char *acme_b64url_decode(const char *s, size_t slen, size_t *out_len);

/* Decodes a secret as people paste it: standard base64 or base64url,
 * padding optional, surrounding whitespace ignored.  The temporary copy is
 * cleansed; the caller cleanses and frees the result.  *trimmed_len (may
 * be NULL) gets the length of the trimmed text, for error messages that
 * must not echo the secret.  NULL on invalid input. */
unsigned char *acme_b64_secret_decode(const char *text, size_t *out_len,
    size_t *trimmed_len);

/* An ACME challenge token as the engine takes it from a CA and as the
 * http-01 handlers of both servers take it from a request path
 * (RFC 8555 section 8.3): 1 to ACME_TOKEN_MAX base64url characters
 * ([A-Za-z0-9_-], no padding).  1 if t[0..len) is one, else 0. */
#define ACME_TOKEN_MAX 128
int acme_token_ok(const char *t, size_t len);

/*
 * Argument name of a query string (args: "a=1&b=2", no "?", args_len
 * bytes) into buf, percent-decoded ("+" is a space, "%00" refused): 1
 * found ("name" alone: ""), 0 absent, -1 too long for buf or badly
 * encoded.  The status views' format= and the control requests' id=,
 * action=, reason=.
 */
int acme_query_arg(const char *args, size_t args_len, const char *name,
    char *buf, size_t len);

/* The token of an http-01 request path (RFC 8555 section 8.3), as both
 * servers' handlers take it: 0 when path[0..len) is not under
 * ACME_HTTP01_PREFIX (not a challenge: the request goes on as usual);
 * 1 with *token (pointing into path) and *token_len when the rest is a
 * well-formed token (acme_token_ok); -1 when it is not (answered 404
 * without a lookup). */
#define ACME_HTTP01_PREFIX "/.well-known/acme-challenge/"
int acme_http01_token(const char *path, size_t len, const char **token,
    size_t *token_len);

/* snprintf into an error buffer; errbuf may be NULL. Always returns -1 so
 * callers can write "return acme_err(err, errlen, ...);". */
int acme_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

char *acme_strdup(const char *s);                 /* NULL-safe */
char *acme_strndup(const char *s, size_t n);
char *acme_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Formats t as RFC 3339 UTC ("2026-11-26T11:14:27Z") into buf (>= 21 bytes). */
const char *acme_time_rfc3339(long long t, char *buf, size_t len);

/* A duration for messages: "60 s", or "1500 ms" when not whole seconds.
 * Returns buf. */
const char *acme_duration_text(int ms, char *buf, size_t len);

/* Parses an RFC 3339 (section 5.6) date-time, strictly:
 * "2026-11-26T11:14:27Z", "t"/"z" lower case too, optional fraction
 * (ignored), offset Z or +hh:mm / -hh:mm; fields range-checked (second 60
 * allowed); nothing before or after.  Unix time, or -1 when invalid (also
 * for times before 1970). */
long long acme_time_parse_rfc3339(const char *s);

/* CLOCK_MONOTONIC in milliseconds: for deadlines and timeouts, which a
 * change of the wall clock must not stretch or cut. */
long long acme_monotonic_ms(void);

/* a - b, clamped to [LLONG_MIN, LLONG_MAX] instead of overflowing (times
 * from a certificate or a state file can be anything) */
long long acme_sub_sat(long long a, long long b);

/* 1 when process pid exists (also one of another user), 0 when it is gone
 * or pid <= 0. */
int acme_process_alive(long pid);

/* Parses an HTTP-date (RFC 9110 section 5.6.7): IMF-fixdate
 * "Sun, 06 Nov 1994 08:49:37 GMT", and the obsolete rfc850-date and
 * asctime-date forms; case-sensitive, nothing before or after.  Unix time,
 * or -1 when invalid (also for times before 1970). */
long long acme_time_parse_http_date(const char *s);

#endif
