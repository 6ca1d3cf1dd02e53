/* Issuer failover (common/core/acme_failover.h, issue 13 section 4). */
#include "unit.h"
#include "acme_failover.h"
#include "acme_job.h"
#include "acme_status.h"
#include "acme_util.h"

#include <stdlib.h>
#include <string.h>

#define T0  1795000000LL

UNIT_TEST(failover_parse)
{
    acme_failover_conf_t  f;
    char                  err[ACME_ERRLEN];

    memset(&f, 0, sizeof(f));
    CHECK_INT(acme_failover_parse(&f, "b,c", 3, err, sizeof(err)), 0);
    CHECK_INT(f.n, 2);
    CHECK_STR(f.names[0], "b");
    CHECK_STR(f.names[1], "c");

    /* only len bytes count */
    CHECK_INT(acme_failover_parse(&f, "second,x", 6, err, sizeof(err)), 0);
    CHECK_INT(f.n, 1);
    CHECK_STR(f.names[0], "second");

    CHECK_INT(acme_failover_parse(&f, "", 0, err, sizeof(err)), -1);
    CHECK_STR(err, "no issuer name");
    CHECK_INT(acme_failover_parse(&f, "b,,c", 4, err, sizeof(err)), -1);
    CHECK_STR(err, "an empty issuer name");
    CHECK_INT(acme_failover_parse(&f, "b,", 2, err, sizeof(err)), -1);
    CHECK_INT(acme_failover_parse(&f, "b,c,b", 5, err, sizeof(err)), -1);
    CHECK_STR(err, "issuer \"b\" is listed twice");
    CHECK_INT(acme_failover_parse(&f, "b,c,d,e", 7, err, sizeof(err)), -1);
    CHECK_STR(err, "more than 3 fallback issuers");
    CHECK_INT(acme_failover_parse(&f, "b\"x", 3, err, sizeof(err)), -1);

    CHECK_INT(acme_failover_parse_after(&f, "2", 1, err, sizeof(err)), 0);
    CHECK_INT(f.after, 2);
    CHECK_INT(acme_failover_parse_after(&f, "100", 3, err, sizeof(err)), 0);
    CHECK_INT(acme_failover_parse_after(&f, "0", 1, err, sizeof(err)), -1);
    CHECK_INT(acme_failover_parse_after(&f, "101", 3, err, sizeof(err)), -1);
    CHECK_INT(acme_failover_parse_after(&f, "2x", 2, err, sizeof(err)), -1);
    CHECK_INT(acme_failover_parse_after(&f, "", 0, err, sizeof(err)), -1);
    CHECK_INT(acme_failover_parse_after(&f, "99999999999", 11, err,
                                        sizeof(err)), -1);
    CHECK_INT(f.after, 100);
}

UNIT_TEST(failover_check_and_same)
{
    acme_failover_conf_t  a, b;
    char                  err[ACME_ERRLEN];

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    CHECK_INT(acme_failover_check(&a, "p", err, sizeof(err)), 0);
    CHECK_INT(acme_failover_same(&a, &b), 1);

    a.after = 2;
    CHECK_INT(acme_failover_check(&a, "p", err, sizeof(err)), -1);
    CHECK_STR(err, "fallback_after= needs fallback=");

    CHECK_INT(acme_failover_parse(&a, "s,p", 3, err, sizeof(err)), 0);
    CHECK_INT(acme_failover_check(&a, "p", err, sizeof(err)), -1);
    CHECK_STR(err, "fallback= names the certificate's own issuer \"p\"");
    CHECK_INT(acme_failover_check(&a, "q", err, sizeof(err)), 0);

    CHECK_INT(acme_failover_parse(&b, "s,p", 3, err, sizeof(err)), 0);
    CHECK_INT(acme_failover_same(&a, &b), 0);       /* after 2 vs 3 */
    b.after = 2;
    CHECK_INT(acme_failover_same(&a, &b), 1);
    CHECK_INT(acme_failover_parse(&b, "p,s", 3, err, sizeof(err)), 0);
    CHECK_INT(acme_failover_same(&a, &b), 0);       /* order matters */
    a.after = 0;
    b.after = 3;
    CHECK_INT(acme_failover_parse(&b, "s,p", 3, err, sizeof(err)), 0);
    CHECK_INT(acme_failover_same(&a, &b), 1);       /* 3 is the default */
}

UNIT_TEST(failover_pick)
{
    /* no fallback: always the primary */
    CHECK_INT(acme_failover_pick(0, 1, 0), 0);
    CHECK_INT(acme_failover_pick(7, 1, 1), 0);
    CHECK_INT(acme_failover_pick(7, 0, 1), 0);

    /* default: 3 attempts at each, then the next, then the first again */
    CHECK_INT(acme_failover_pick(0, 2, 0), 0);
    CHECK_INT(acme_failover_pick(2, 2, 0), 0);
    CHECK_INT(acme_failover_pick(3, 2, 0), 1);
    CHECK_INT(acme_failover_pick(5, 2, 0), 1);
    CHECK_INT(acme_failover_pick(6, 2, 0), 0);

    /* one attempt each, three issuers */
    CHECK_INT(acme_failover_pick(0, 3, 1), 0);
    CHECK_INT(acme_failover_pick(1, 3, 1), 1);
    CHECK_INT(acme_failover_pick(2, 3, 1), 2);
    CHECK_INT(acme_failover_pick(3, 3, 1), 0);
    CHECK(acme_failover_pick(0xffffffffu, 3, 1) < 3);
}

/* the choice follows the state: a failure moves on, a success (the next
 * renewal) starts at the primary again */
UNIT_TEST(failover_follows_state)
{
    acme_cert_state_t  st;

    memset(&st, 0, sizeof(st));
    acme_job_failed(&st, "http-01", "connection refused", T0, 0, 1, 7);
    CHECK_INT(acme_failover_pick(st.failures, 2, 2), 0);
    acme_job_failed(&st, "http-01", "connection refused", T0 + 2, 0, 1, 7);
    CHECK_INT(acme_failover_pick(st.failures, 2, 2), 1);

    acme_job_succeeded(&st, T0 + 10, "https://b.test/dir", "second");
    CHECK_STR(st.issuer, "second");
    CHECK_STR(st.directory, "https://b.test/dir");
    CHECK_INT(acme_failover_pick(st.failures, 2, 2), 0);

    /* a failure keeps the record of who issued the stored certificate */
    acme_job_failed(&st, "http-01", "refused", T0 + 20, 0, 1, 7);
    CHECK_STR(st.issuer, "second");

    acme_job_succeeded(&st, T0 + 30, "https://a.test/dir", NULL);
    CHECK_STR(st.issuer, "");
}

UNIT_TEST(failover_find)
{
    const char *names[] = { "primary", "second", "third" };

    CHECK_INT(acme_failover_find(names, 3, "third"), 2);
    CHECK_INT(acme_failover_find(names, 3, "second"), 1);
    CHECK_INT(acme_failover_find(names, 3, "primary"), 0);
    CHECK_INT(acme_failover_find(names, 3, "gone"), 0);
    CHECK_INT(acme_failover_find(names, 3, ""), 0);
    CHECK_INT(acme_failover_find(names, 3, NULL), 0);
}

/* a certificate a fallback issued is no "issuer changed" */
UNIT_TEST(failover_due_not_issuer_changed)
{
    acme_job_facts_t    f;
    acme_cert_state_t   st;
    long long           at;
    const char         *fb[] = { "https://b.test/dir" };

    memset(&st, 0, sizeof(st));
    memset(&f, 0, sizeof(f));
    f.have_cert = 1;
    f.loaded = 1;
    f.names_ok = 1;
    f.not_before = T0;
    f.not_after = T0 + 90 * 86400LL;
    f.directory = "https://a.test/dir";

    acme_job_succeeded(&st, T0, "https://b.test/dir", "second");
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_ISSUER_CHANGED);
    CHECK_STR(acme_job_change(&f, &st), "issuer changed");

    f.fallback_dirs = fb;
    f.n_fallback_dirs = 1;
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_RENEW);
    CHECK(at > T0);
    CHECK(acme_job_change(&f, &st) == NULL);

    acme_job_succeeded(&st, T0, "https://c.test/dir", "other");
    CHECK_INT(acme_job_due(&f, &st, &at), ACME_JOB_ISSUER_CHANGED);
}

/* the status record names the issuer; the document lists them */
UNIT_TEST(failover_status)
{
    acme_job_status_t    rec;
    acme_cert_state_t    st;
    acme_status_cert_t   c;
    const char          *names[] = { "x.test" };
    const char          *issuers[] = { "primary", "second" };
    char                *doc;
    size_t               len;

    memset(&rec, 0, sizeof(rec));
    memset(&st, 0, sizeof(st));
    acme_job_succeeded(&st, T0, "https://b.test/dir", "second");
    acme_job_status_end(&rec, &st, T0 + 100);
    CHECK_STR(rec.issued_by, "second");

    memset(&c, 0, sizeof(c));
    c.id = "x.test_ecdsa-256";
    c.names = names;
    c.n_names = 1;
    c.issuer = rec.issued_by;
    c.issuers = issuers;
    c.n_issuers = 2;
    c.state = "valid";
    doc = acme_status_render("nginx", 1, &c, 1, T0, &len);
    CHECK(doc != NULL);
    CHECK(doc != NULL && strstr(doc, "\"issuer\": \"second\"") != NULL);
    CHECK(doc != NULL && strstr(doc, "\"primary\",") != NULL);
    free(doc);
}
