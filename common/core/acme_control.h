/*
 * "Renew now, revoke now" at the status location (nginx "acme_status
 * control;", Apache "AcmeStatusControl on"), the same for both servers:
 * which requests may change anything, what they ask for, and the request
 * record the status handler (any worker / child) leaves in shared memory
 * for the process driving ACME, which takes it up on its next tick.
 *
 * Requests (the location's own access rules apply first):
 *   GET / HEAD                     the status document, never a change
 *   POST <loc>/renew?id=ID|all     a new order now (window and backoff
 *   POST <loc>?action=renew&id=..  ignored); 202 with the status
 *   POST <loc>/revoke?id=ID[&reason=NAME]
 *                                  revoke the served certificate at the CA
 *                                  (RFC 8555 section 7.6), then order a
 *                                  replacement with a fresh key; 202
 * The action is the last path segment ("renew", "revoke") or, with an
 * exact-match location (nginx "location = /acme-status"), the "action"
 * argument.  Refused: another method 405; POST without the flag 403; an
 * "Origin" header whose host is not the request's Host 403 (a form or
 * script of another site); no or an unknown action 400; an unknown
 * reason 400; revoke with id=all 400; an unknown id 404; revoke of a
 * certificate not issued yet 409.
 *
 * Pure functions, no I/O.
 */
#ifndef ACME_CONTROL_H
#define ACME_CONTROL_H

#include <stddef.h>

typedef enum {
    ACME_CONTROL_NONE = 0,
    ACME_CONTROL_RENEW,
    ACME_CONTROL_REVOKE
} acme_control_kind_t;

/*
 * The request record of one certificate, in shared memory next to its
 * status record (fixed size, no pointers).  Counters, so a request made
 * while the driver reads is never lost: a request adds one, the driver
 * takes every request up to the count it saw.
 */
typedef struct {
    unsigned    renew;          /* renew requests made */
    unsigned    renew_taken;    /* ... taken up by the driver */
    unsigned    revoke;
    unsigned    revoke_taken;
    int         reason;         /* RFC 5280 code of the last revoke */
    int         in_flight;      /* acme_control_kind_t the running order
                                   took and has not ended (Apache's
                                   graceful restart carries it) */
    int         in_flight_reason;
} acme_control_t;

/* A renew request (status handler, or a reload that found the store's
 * entry deleted). */
void acme_control_renew(acme_control_t *c);
/* A revoke request with an RFC 5280 reason code. */
void acme_control_revoke(acme_control_t *c, int reason);
/* What is asked and not taken yet: REVOKE before RENEW, else NONE. */
acme_control_kind_t acme_control_pending(const acme_control_t *c);
/*
 * The driver starts the order that answers the requests: everything asked
 * so far is taken.  Returns what the order does (REVOKE: first revoke the
 * served certificate with *reason), NONE when nothing was asked.
 */
acme_control_kind_t acme_control_take(acme_control_t *c, int *reason);

/*
 * An order that took kind (acme_control_take) ended without its result
 * (aborted: a reload, a stop, a lost lease): the request is made again, so
 * the next driver answers it.  A revoke already done at the CA (revoked
 * 1) is not: the state's "revoked" orders the replacement
 * (acme_job_due's ACME_JOB_REVOKED).
 */
void acme_control_put_back(acme_control_t *c, acme_control_kind_t kind,
    int reason, int revoked);

/*
 * The order that took a request ended (issued or failed), or its revoke
 * was done at the CA (revoke 1; the state's "revoked" orders the
 * replacement): nothing of it is left to answer.
 */
void acme_control_done(acme_control_t *c, int revoke);
/*
 * What a restart that cuts the running order short must ask again: what
 * is pending, else what the running order took and has not ended
 * (*reason for a revoke).  Apache's parent copies it before the old
 * generation's shared memory goes (the old child's put_back comes too
 * late for it).
 */
acme_control_kind_t acme_control_carry(const acme_control_t *c, int *reason);

/* RFC 5280 section 5.3.1 CRLReason by name ("keyCompromise", ...; case
 * sensitive, as written in the RFC): its code, or -1. */
int acme_control_reason_code(const char *name);
/* The name of a code, or NULL. */
const char *acme_control_reason_name(int code);

/*
 * The request's action: the path's last segment when it is "renew" or
 * "revoke", else the "action" argument of args (the query string without
 * "?", may be NULL).  NONE when there is neither, -1 when the one given is
 * unknown.
 */
int acme_control_action(const char *path, size_t path_len, const char *args,
    size_t args_len);

/*
 * The CSRF rule: 1 when a request with this Origin header (NULL: none)
 * may change anything: no Origin, or one whose host[:port] is host (the
 * request's Host header, compared case-insensitively); "null" and any
 * other origin give 0.
 */
int acme_control_origin_ok(const char *origin, size_t origin_len,
    const char *host, size_t host_len);

/*
 * The checks both handlers make before looking at the ids, in this order:
 * method (POST, else 405; GET and HEAD never get here), the flag (403),
 * the Origin (403), the action (400), id present (400), reason (400,
 * *reason 0 "unspecified" when absent), revoke with "all" (400).  Returns
 * 0 when the request may go on (*kind, *reason, id in idbuf), else the
 * HTTP status, with a one-line reason in msg for the response body.
 */
int acme_control_check(int is_post, int enabled, const char *origin,
    size_t origin_len, const char *host, size_t host_len, const char *path,
    size_t path_len, const char *args, size_t args_len,
    acme_control_kind_t *kind, int *reason, char *idbuf, size_t idlen,
    char *msg, size_t msglen);

#endif
