/*
 * Certificate names: one set of rules for both servers (acme_names.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "acme_names.h"
#include "acme_util.h"

#define LABEL_MAX  63
#define NAME_MAX_  253

static int
is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* An IPv4 or IPv6 literal written canonically into out; 0 if none. */
static int
ip_literal(const char *name, size_t len, char *out, size_t outlen)
{
    unsigned char  addr[16];
    char           buf[64];

    if (len == 0 || len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, name, len);
    buf[len] = '\0';

    if (inet_pton(AF_INET, buf, addr) == 1) {
        return inet_ntop(AF_INET, addr, out, (socklen_t) outlen) != NULL;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        return inet_ntop(AF_INET6, addr, out, (socklen_t) outlen) != NULL;
    }
    return 0;
}

int
acme_name_normalise(const char *name, size_t len, unsigned flags,
    char *out, size_t outlen, char *err, size_t errlen)
{
    size_t         i, start, label;
    unsigned char  c;
    int            wildcard = 0, labels = 1;

    if (outlen < ACME_NAME_BUFLEN) {
        return acme_err(err, errlen, "does not fit the buffer");
    }
    if (len == 0) {
        return acme_err(err, errlen, "is empty");
    }
    if (name[0] == '~') {
        return acme_err(err, errlen, "is a regular expression");
    }

    if (ip_literal(name, len, out, outlen)) {
        return ACME_NAME_IP;
    }

    if (name[0] == '.') {
        return acme_err(err, errlen, "starts with a dot (for nginx's "
                        "\".example.com\" list \"example.com\" and "
                        "\"*.example.com\", with dns-01)");
    }
    if (len > 1 && name[len - 1] == '.') {
        len--;                          /* the root: "example.com." */
    }
    if (len > NAME_MAX_) {
        return acme_err(err, errlen, "is longer than 253 octets");
    }

    start = 0;
    if (len > 2 && name[0] == '*' && name[1] == '.') {
        wildcard = 1;
        start = 2;
    }

    label = 0;
    for (i = start; i < len; i++) {
        c = (unsigned char) name[i];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char) (c - 'A' + 'a');
        }
        if (c == '.') {
            if (label == 0) {
                return acme_err(err, errlen, "has an empty label");
            }
            if (name[i - 1] == '-') {
                return acme_err(err, errlen, "has a label ending with a "
                                "hyphen");
            }
            label = 0;
            labels++;
            continue;
        }
        if (c == '*') {
            return acme_err(err, errlen, "has a wildcard that is not the "
                            "whole left-most label (\"*.example.com\")");
        }
        if (c >= 0x80) {
            return acme_err(err, errlen, "has non-ASCII characters: use its "
                            "punycode (\"xn--\") form");
        }
        if (!is_ldh(c)) {
            return acme_err(err, errlen, "has the character '%c', not "
                            "allowed in a DNS name (letters, digits, hyphen)",
                            c > 0x20 && c < 0x7f ? c : '?');
        }
        if (label == 0 && c == '-') {
            return acme_err(err, errlen, "has a label starting with a "
                            "hyphen");
        }
        if (++label > LABEL_MAX) {
            return acme_err(err, errlen, "has a label longer than 63 "
                            "octets");
        }
    }
    if (label == 0) {
        return acme_err(err, errlen, "has an empty label");
    }
    if (name[len - 1] == '-') {
        return acme_err(err, errlen, "has a label ending with a hyphen");
    }
    if (labels < 2) {
        return acme_err(err, errlen, "is not a domain name of at least two "
                        "labels");
    }
    for (i = len; i > 0 && name[i - 1] >= '0' && name[i - 1] <= '9'; i--) {
        /* void */
    }
    if (i > 0 && name[i - 1] == '.') {
        return acme_err(err, errlen, "has an all-numeric top-level label "
                        "(an IP address is written without a trailing dot)");
    }
    if (wildcard && !(flags & ACME_NAMES_DNS01)) {
        return acme_err(err, errlen, "is a wildcard name, which needs dns-01 "
                        "for every attempt");
    }

    for (i = 0; i < len; i++) {
        c = (unsigned char) name[i];
        out[i] = (char) (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[len] = '\0';

    return wildcard ? ACME_NAME_WILDCARD : ACME_NAME_DNS;
}

int
acme_name_wildcard_covers(const char *wildcard, const char *name)
{
    const char  *dot;

    if (wildcard == NULL || name == NULL
        || wildcard[0] != '*' || wildcard[1] != '.')
    {
        return 0;
    }
    dot = strchr(name, '.');
    if (dot == NULL || dot == name || name[0] == '*') {
        return 0;
    }
    return strcmp(dot + 1, wildcard + 2) == 0;
}

/* pat[0..len) (a server name pattern) lets a client asking for name in. */
static int
pattern_serves(const char *pat, size_t len, const char *name, size_t nlen,
    unsigned flags)
{
    size_t  i;

    if (len > 1 && pat[len - 1] == '.') {
        len--;                          /* "a.example.test." */
    }
    if (len == 0) {
        return 0;                       /* nginx's "" */
    }
    if (pat[0] == '~') {
        return 1;                       /* a regular expression */
    }
    if (len > 2 && pat[0] == '*' && pat[1] == '.'
        && memchr(pat + 1, '*', len - 1) == NULL
        && memchr(pat, '?', len) == NULL)
    {
        /* "*.suffix": name ends in ".suffix" */
        return nlen > len - 1
               && strncasecmp(name + nlen - (len - 1), pat + 1, len - 1) == 0;
    }
    if (len > 2 && pat[len - 1] == '*' && pat[len - 2] == '.'
        && memchr(pat, '*', len - 1) == NULL
        && memchr(pat, '?', len) == NULL)
    {
        /* "prefix.*": name starts with "prefix." */
        return nlen > len - 1 && strncasecmp(name, pat, len - 1) == 0;
    }
    for (i = 0; i < len; i++) {
        if (pat[i] == '*' || pat[i] == '?') {
            return 1;                   /* an Apache glob: not judged */
        }
    }
    if (pat[0] == '.' && (flags & ACME_SERVED_DOT_SUFFIX)) {
        /* ".suffix": the suffix itself or a name ending in ".suffix" */
        return (nlen == len - 1 && strncasecmp(name, pat + 1, len - 1) == 0)
               || (nlen > len
                   && strncasecmp(name + nlen - len, pat, len) == 0);
    }
    return nlen == len && strncasecmp(name, pat, len) == 0;
}

int
acme_name_served(const char *name, const char *const *pats,
    const size_t *lens, size_t n, unsigned flags)
{
    char    ip[ACME_NAME_BUFLEN];
    size_t  i, nlen;

    if (name == NULL) {
        return 0;
    }
    nlen = strlen(name);
    if (ip_literal(name, nlen, ip, sizeof(ip))) {
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (pats[i] != NULL
            && pattern_serves(pats[i], lens ? lens[i] : strlen(pats[i]),
                              name, nlen, flags))
        {
            return 1;
        }
    }
    return 0;
}

void
acme_names_free(acme_names_t *set)
{
    size_t  i;

    if (set == NULL) {
        return;
    }
    for (i = 0; i < set->n_names; i++) {
        free(set->names[i]);
    }
    free(set->names);
    free(set->order);
    memset(set, 0, sizeof(*set));
}

int
acme_names_set(acme_names_t *set, const char *const *in,
    const size_t *lens, size_t n, unsigned flags, size_t *bad,
    char *err, size_t errlen)
{
    char    buf[ACME_NAME_BUFLEN];
    size_t  i, j, len;
    int     covered;

    memset(set, 0, sizeof(*set));
    if (bad) {
        *bad = n;
    }

    set->names = calloc(n ? n : 1, sizeof(char *));
    set->order = calloc(n ? n : 1, sizeof(char *));
    if (set->names == NULL || set->order == NULL) {
        acme_names_free(set);
        return acme_err(err, errlen, "out of memory");
    }

    for (i = 0; i < n; i++) {
        len = lens ? lens[i] : strlen(in[i]);

        if ((flags & ACME_NAMES_SERVER_NAME)
            && (len == 0 || (len == 1 && in[i][0] == '_')))
        {
            continue;                   /* nginx's placeholders */
        }

        if (acme_name_normalise(in[i], len, flags, buf, sizeof(buf),
                                err, errlen)
            < 0)
        {
            if (bad) {
                *bad = i;
            }
            acme_names_free(set);
            return -1;
        }

        for (j = 0; j < set->n_names; j++) {
            if (strcmp(set->names[j], buf) == 0) {
                break;
            }
        }
        if (j < set->n_names) {
            continue;
        }

        set->names[set->n_names] = acme_strdup(buf);
        if (set->names[set->n_names] == NULL) {
            acme_names_free(set);
            return acme_err(err, errlen, "out of memory");
        }
        set->n_names++;
    }

    if (set->n_names == 0) {
        acme_names_free(set);
        return acme_err(err, errlen, "has no names");
    }

    for (i = 0; i < set->n_names; i++) {
        covered = 0;
        for (j = 0; j < set->n_names && !covered; j++) {
            covered = acme_name_wildcard_covers(set->names[j],
                                                set->names[i]);
        }
        if (!covered) {
            set->order[set->n_order++] = set->names[i];
        }
    }

    return 0;
}

int
acme_names_same(const char *const *a, size_t na, const char *const *b,
    size_t nb)
{
    size_t  i, j;

    for (i = 0; i < na; i++) {
        for (j = 0; j < nb && strcmp(a[i], b[j]) != 0; j++) {
            /* void */
        }
        if (j == nb) {
            return 0;
        }
    }
    for (j = 0; j < nb; j++) {
        for (i = 0; i < na && strcmp(a[i], b[j]) != 0; i++) {
            /* void */
        }
        if (i == na) {
            return 0;
        }
    }
    return 1;
}
