/* Renew now, revoke now: see acme_control.h. */
#include <string.h>
#include <strings.h>
#include <stdio.h>

#include "acme_control.h"
#include "acme_util.h"


void
acme_control_renew(acme_control_t *c)
{
    c->renew++;
}


void
acme_control_revoke(acme_control_t *c, int reason)
{
    c->revoke++;
    c->reason = reason;
}


acme_control_kind_t
acme_control_pending(const acme_control_t *c)
{
    if (c->revoke != c->revoke_taken) {
        return ACME_CONTROL_REVOKE;
    }
    if (c->renew != c->renew_taken) {
        return ACME_CONTROL_RENEW;
    }
    return ACME_CONTROL_NONE;
}


acme_control_kind_t
acme_control_take(acme_control_t *c, int *reason)
{
    acme_control_kind_t k = acme_control_pending(c);

    if (reason != NULL) {
        *reason = k == ACME_CONTROL_REVOKE ? c->reason : -1;
    }
    c->renew_taken = c->renew;
    c->revoke_taken = c->revoke;
    c->in_flight = (int) k;
    c->in_flight_reason = k == ACME_CONTROL_REVOKE ? c->reason : -1;
    return k;
}


void
acme_control_done(acme_control_t *c, int revoke)
{
    if (!revoke || c->in_flight == ACME_CONTROL_REVOKE) {
        c->in_flight = ACME_CONTROL_NONE;
    }
}


acme_control_kind_t
acme_control_carry(const acme_control_t *c, int *reason)
{
    acme_control_kind_t k = acme_control_pending(c);

    if (k != ACME_CONTROL_NONE) {
        if (reason != NULL) {
            *reason = k == ACME_CONTROL_REVOKE ? c->reason : -1;
        }
        return k;
    }
    if (reason != NULL) {
        *reason = c->in_flight == ACME_CONTROL_REVOKE ? c->in_flight_reason
                                                      : -1;
    }
    return (acme_control_kind_t) c->in_flight;
}


void
acme_control_put_back(acme_control_t *c, acme_control_kind_t kind,
    int reason, int revoked)
{
    c->in_flight = ACME_CONTROL_NONE;
    if (kind == ACME_CONTROL_RENEW) {
        acme_control_renew(c);
    }
    else if (kind == ACME_CONTROL_REVOKE && !revoked) {
        acme_control_revoke(c, reason);
    }
}


/* RFC 5280 section 5.3.1; 7 is not used */
static const char *const reasons[] = {
    "unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
    "superseded", "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL", "privilegeWithdrawn", "aACompromise"
};

#define N_REASONS  (sizeof(reasons) / sizeof(reasons[0]))


int
acme_control_reason_code(const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < N_REASONS; i++) {
        if (reasons[i] != NULL && strcmp(reasons[i], name) == 0) {
            return (int) i;
        }
    }
    return -1;
}


const char *
acme_control_reason_name(int code)
{
    return code >= 0 && (size_t) code < N_REASONS ? reasons[code] : NULL;
}


static int
action_of(const char *s, size_t n)
{
    if (n == 5 && memcmp(s, "renew", 5) == 0) {
        return ACME_CONTROL_RENEW;
    }
    if (n == 6 && memcmp(s, "revoke", 6) == 0) {
        return ACME_CONTROL_REVOKE;
    }
    return -1;
}


int
acme_control_action(const char *path, size_t path_len, const char *args,
    size_t args_len)
{
    const char *seg;
    char        buf[16];
    int         rc;

    if (path != NULL && path_len > 0) {
        seg = path + path_len;
        while (seg > path && seg[-1] != '/') {
            seg--;
        }
        rc = action_of(seg, (size_t) (path + path_len - seg));
        if (rc > 0) {
            return rc;
        }
    }

    rc = acme_query_arg(args, args_len, "action", buf, sizeof(buf));
    if (rc == 0) {
        return ACME_CONTROL_NONE;
    }
    return rc < 0 ? -1 : action_of(buf, strlen(buf));
}


int
acme_control_origin_ok(const char *origin, size_t origin_len,
    const char *host, size_t host_len)
{
    const char *p, *end, *slash;

    if (origin == NULL) {
        return 1;
    }
    if (host == NULL || host_len == 0) {
        return 0;
    }
    /* scheme "://" host [ ":" port ], nothing after (RFC 6454) */
    end = origin + origin_len;
    for (p = origin; p + 2 < end; p++) {
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            break;
        }
    }
    if (p + 2 >= end || p == origin) {
        return 0;
    }
    p += 3;
    slash = memchr(p, '/', (size_t) (end - p));
    if (slash != NULL) {
        end = slash;
    }
    return (size_t) (end - p) == host_len
           && strncasecmp(p, host, host_len) == 0;
}


int
acme_control_check(int is_post, int enabled, const char *origin,
    size_t origin_len, const char *host, size_t host_len, const char *path,
    size_t path_len, const char *args, size_t args_len,
    acme_control_kind_t *kind, int *reason, char *idbuf, size_t idlen,
    char *msg, size_t msglen)
{
    char  rbuf[64];
    int   act, rc;

    *kind = ACME_CONTROL_NONE;
    *reason = 0;

    if (!is_post) {
        snprintf(msg, msglen, "only GET, HEAD and POST");
        return 405;
    }
    if (!enabled) {
        snprintf(msg, msglen, "control requests are not enabled here");
        return 403;
    }
    if (!acme_control_origin_ok(origin, origin_len, host, host_len)) {
        snprintf(msg, msglen, "the request comes from another site (Origin)");
        return 403;
    }
    act = acme_control_action(path, path_len, args, args_len);
    if (act <= 0) {
        snprintf(msg, msglen, "%s action: POST .../renew?id=ID or "
                 ".../revoke?id=ID&reason=NAME",
                 act == 0 ? "no" : "unknown");
        return 400;
    }
    rc = acme_query_arg(args, args_len, "id", idbuf, idlen);
    if (rc <= 0 || idbuf[0] == '\0') {
        snprintf(msg, msglen, "%s id argument (id=ID or id=all)",
                 rc < 0 ? "a bad" : "no");
        return 400;
    }
    if (act == ACME_CONTROL_REVOKE) {
        rc = acme_query_arg(args, args_len, "reason", rbuf, sizeof(rbuf));
        if (rc < 0 || (rc == 1 && (*reason = acme_control_reason_code(rbuf))
                                  < 0))
        {
            snprintf(msg, msglen, "unknown revocation reason (RFC 5280 "
                     "names: unspecified, keyCompromise, affiliationChanged,"
                     " superseded, cessationOfOperation, ...)");
            return 400;
        }
        if (rc == 0) {
            *reason = 0;
        }
        if (strcmp(idbuf, "all") == 0) {
            snprintf(msg, msglen, "revoke takes one id, not \"all\"");
            return 400;
        }
    }
    *kind = (acme_control_kind_t) act;
    msg[0] = '\0';
    return 0;
}
