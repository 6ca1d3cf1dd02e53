/*
 * What a CA says about a refused name or order, as the one line both
 * servers show in the error log and the status' last_error.
 *
 * A problem document (RFC 7807, RFC 8555 section 6.7) is quoted verbatim:
 * "urn:ietf:params:acme:error:TYPE: detail (HTTP 400)".  With subproblems
 * (section 6.7.1) the refused identifiers lead, each with its own type and
 * detail, and the problem follows, so the names survive a cut to the
 * status' fixed size:
 *
 *   "the CA refused b.example.test: urn:ietf:params:acme:error:
 *    rejectedIdentifier: forbidden; c.example.test: urn:...:caa: CAA
 *    forbids; urn:ietf:params:acme:error:rejectedIdentifier: Error creating
 *    new order (HTTP 400)"
 *
 * A failed challenge (section 8) names what the CA validated:
 *   http-01      "the CA fetched http://NAME/.well-known/acme-challenge/TOKEN"
 *   tls-alpn-01  "the CA connected to NAME:443 (TLS, ALPN acme-tls/1)"
 *   dns-01       "the CA looked up TXT _acme-challenge.NAME"
 * followed by the address the CA used and the URL it was redirected to when
 * its validationRecord gives them (" (address 192.0.2.1)").
 *
 * Pure: no I/O.  Results are malloc'd (NULL: out of memory).
 */
#ifndef ACME_PROBLEM_H
#define ACME_PROBLEM_H

#include <jansson.h>

/* The line for a problem document; http_status 0: no "(HTTP n)". */
char *acme_problem_text(json_t *prob, int http_status);

/* What the CA validated for a challenge of type (chal: the challenge
 * object, its "token" and "validationRecord"; token used when chal has
 * none); "" for an unknown type. */
char *acme_problem_challenge_target(json_t *chal, const char *type,
    const char *ident, const char *token);

#endif
