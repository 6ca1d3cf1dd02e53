/*
 * Certificate names as a CA takes them (RFC 1035/5890, RFC 8738, CA/B
 * Baseline Requirements), for both servers' configuration parsers.  Pure:
 * no I/O.
 *
 * A DNS name is lower-cased and loses a trailing dot; it has at least two
 * labels of 1-63 octets, at most 253 octets in all, letters, digits and
 * hyphens, no label starting or ending with a hyphen ("xn--" A-labels are
 * ordinary labels).  Raw non-ASCII is refused with a hint to use the
 * punycode ("xn--") form.  "*." may be the whole left-most label, only for
 * a certificate validated with dns-01 alone.  An IPv4 or IPv6 literal
 * (RFC 8738) is kept apart and written canonically (inet_ntop, RFC 5952).
 */
#ifndef ACME_NAMES_H
#define ACME_NAMES_H

#include <stddef.h>

/* Longest normalised name (an IPv6 literal is shorter) plus the NUL. */
#define ACME_NAME_BUFLEN  254

typedef enum {
    ACME_NAME_DNS = 0,
    ACME_NAME_WILDCARD,         /* "*.example.com" */
    ACME_NAME_IP                /* "192.0.2.1", "2001:db8::1" */
} acme_name_kind_t;

/* flags */
#define ACME_NAMES_DNS01       0x1  /* every attempt uses dns-01: "*." ok */
#define ACME_NAMES_SERVER_NAME 0x2  /* from server_name / ServerName +
                                       ServerAlias: "_" and "" are skipped */

/*
 * Normalises name[0..len) into out (outlen >= ACME_NAME_BUFLEN).  Returns
 * the kind (>= 0), or -1 with a reason in err that does not repeat the
 * name ("a label is longer than 63 octets").
 */
int acme_name_normalise(const char *name, size_t len, unsigned flags,
    char *out, size_t outlen, char *err, size_t errlen);

/* 1 when wildcard ("*.example.com") covers name: one label deeper. */
int acme_name_wildcard_covers(const char *wildcard, const char *name);

/* flags of acme_name_served() */
#define ACME_SERVED_DOT_SUFFIX 0x1  /* ".suffix" patterns (nginx): the
                                       suffix and any name below it */

/*
 * The rule both configuration checks warn by: 1 when a client asking for
 * name (normalised, as acme_name_normalise() writes it) reaches a server /
 * vhost whose server names (server_name; ServerName + ServerAlias) are
 * pats[0..n) (lens[i] their lengths; lens may be NULL for NUL-terminated
 * patterns).  An IP literal always counts: it is reached by address,
 * without SNI.  A pattern counts when it equals name (case and one
 * trailing dot aside); "*.suffix" covers any name below suffix and
 * "prefix.*" any name starting with "prefix." (nginx's wildcard names and
 * Apache's ServerAlias globs alike, at any depth); with
 * ACME_SERVED_DOT_SUFFIX ".suffix" covers suffix and any name below it.
 * A pattern that cannot be judged here (nginx's "~" regular expression,
 * an Apache glob with "*" or "?" elsewhere) counts as a match.
 */
int acme_name_served(const char *name, const char *const *pats,
    const size_t *lens, size_t n, unsigned flags);

/*
 * A certificate's names.  names[] are normalised, unique, in the order
 * first given: what the certificate serves.  order[] points into names[]:
 * the ACME order identifiers (and the certificate's subjectAltNames),
 * names[] without those a wildcard of the same set covers (a CA refuses
 * such an order as redundant).  All malloc'd: acme_names_free().
 */
typedef struct {
    char      **names;
    size_t      n_names;
    char      **order;
    size_t      n_order;
} acme_names_t;

/*
 * Builds set from in[0..n) (lens[i] their lengths; lens may be NULL for
 * NUL-terminated names).  0, or -1 with the reason in err (as
 * acme_name_normalise() words it) and *bad (may be NULL) the index of the
 * refused name, or n when no name is left ("has no names") or on
 * allocation failure.  With ACME_NAMES_SERVER_NAME, "_" and "" are
 * skipped; a name starting with '~' (a regular expression) is refused
 * either way.
 */
int acme_names_set(acme_names_t *set, const char *const *in,
    const size_t *lens, size_t n, unsigned flags, size_t *bad,
    char *err, size_t errlen);

void acme_names_free(acme_names_t *set);

/* 1 when a[0..na) and b[0..nb) are the same set (any order). */
int acme_names_same(const char *const *a, size_t na, const char *const *b,
    size_t nb);

#endif
