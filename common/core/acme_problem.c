/*
 * The operator's line for a CA's problem document and a failed challenge
 * (acme_problem.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_problem.h"
#include "acme_util.h"


static const char *
str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}


/* s followed by the formatted text (s freed); NULL when either is. */
static char *
append(char *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *
append(char *s, const char *fmt, ...)
{
    va_list  ap;
    char    *t = NULL, *r;

    if (s == NULL) {
        return NULL;
    }
    va_start(ap, fmt);
    if (vasprintf(&t, fmt, ap) < 0) {
        t = NULL;
    }
    va_end(ap);
    r = t ? acme_sprintf("%s%s", s, t) : NULL;
    free(s);
    free(t);
    return r;
}


/* "type: detail" of a problem, verbatim. */
static char *
main_text(char *s, json_t *prob)
{
    const char *type = str(prob, "type"), *detail = str(prob, "detail");

    return append(s, "%s%s%s", type ? type : "about:blank",
                  detail ? ": " : "", detail ? detail : "");
}


char *
acme_problem_text(json_t *prob, int http_status)
{
    json_t      *subs, *sub;
    size_t       i;
    const char  *ident;
    char        *s;

    s = acme_strdup("");
    subs = json_object_get(prob, "subproblems");
    if (json_is_array(subs) && json_array_size(subs) > 0) {
        /* the refused identifiers first: what the operator must act on */
        json_array_foreach(subs, i, sub) {
            ident = str(json_object_get(sub, "identifier"), "value");
            s = append(s, "%s%s: ", i == 0 ? "the CA refused " : "; ",
                       ident ? ident : "(no identifier)");
            s = main_text(s, sub);
        }
        s = append(s, "; ");
    }
    s = main_text(s, prob);
    if (http_status > 0) {
        s = append(s, " (HTTP %d)", http_status);
    }
    return s;
}


char *
acme_problem_challenge_target(json_t *chal, const char *type,
    const char *ident, const char *token)
{
    json_t      *recs, *rec;
    const char  *t, *addr, *url;
    char        *s;
    int          v6;

    if (type == NULL || ident == NULL) {
        return acme_strdup("");
    }
    t = str(chal, "token");
    if (t != NULL) {
        token = t;
    }
    v6 = strchr(ident, ':') != NULL;

    if (strcmp(type, "http-01") == 0) {
        s = acme_sprintf("the CA fetched http://%s%s%s/.well-known/"
                         "acme-challenge/%s", v6 ? "[" : "", ident,
                         v6 ? "]" : "", token ? token : "");
    } else if (strcmp(type, "tls-alpn-01") == 0) {
        s = acme_sprintf("the CA connected to %s%s%s:443 (TLS, ALPN "
                         "acme-tls/1)", v6 ? "[" : "", ident, v6 ? "]" : "");
    } else if (strcmp(type, "dns-01") == 0) {
        s = acme_sprintf("the CA looked up TXT _acme-challenge.%s", ident);
    } else {
        return acme_strdup("");
    }

    /* the last validation record: where the CA ended up (RFC 8555
     * section 8.3 leaves its content to the CA; Boulder: url, addressUsed) */
    recs = json_object_get(chal, "validationRecord");
    rec = json_is_array(recs) && json_array_size(recs) > 0
          ? json_array_get(recs, json_array_size(recs) - 1) : NULL;
    url = str(rec, "url");
    addr = str(rec, "addressUsed");
    if (url != NULL && json_array_size(recs) > 1) {
        s = append(s, " (redirected to %s)", url);
    }
    if (addr != NULL && addr[0] != '\0') {
        s = append(s, " (address %s)", addr);
    }
    return s;
}
