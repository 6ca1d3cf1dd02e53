/* Renew now, revoke now: acme_control.h */
#include <string.h>

#include "unit.h"
#include "acme_control.h"
#include "acme_util.h"

UNIT_TEST(control_requests_taken_once)
{
    acme_control_t c;
    int            reason = 7;

    memset(&c, 0, sizeof(c));
    CHECK_INT(acme_control_pending(&c), ACME_CONTROL_NONE);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_NONE);
    CHECK_INT(reason, -1);

    acme_control_renew(&c);
    acme_control_renew(&c);
    CHECK_INT(acme_control_pending(&c), ACME_CONTROL_RENEW);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_RENEW);
    CHECK_INT(reason, -1);
    CHECK_INT(acme_control_pending(&c), ACME_CONTROL_NONE);

    /* a revoke wins over a renew asked at the same time, and takes both */
    acme_control_renew(&c);
    acme_control_revoke(&c, 1);
    CHECK_INT(acme_control_pending(&c), ACME_CONTROL_REVOKE);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_REVOKE);
    CHECK_INT(reason, 1);
    CHECK_INT(acme_control_pending(&c), ACME_CONTROL_NONE);
}

/* an order aborted (reload, stop, lost lease) leaves the request for the
 * next driver; a revocation it did is not repeated */
UNIT_TEST(control_put_back)
{
    acme_control_t c;
    int            reason;

    memset(&c, 0, sizeof(c));
    acme_control_renew(&c);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_RENEW);
    acme_control_put_back(&c, ACME_CONTROL_RENEW, -1, 0);
    CHECK_INT(acme_control_pending(&c), ACME_CONTROL_RENEW);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_RENEW);

    acme_control_revoke(&c, 5);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_REVOKE);
    acme_control_put_back(&c, ACME_CONTROL_REVOKE, reason, 0);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_REVOKE);
    CHECK_INT(reason, 5);
    acme_control_put_back(&c, ACME_CONTROL_REVOKE, reason, 1);
    CHECK_INT(acme_control_pending(&c), ACME_CONTROL_NONE);
    acme_control_put_back(&c, ACME_CONTROL_NONE, -1, 0);
    CHECK_INT(acme_control_pending(&c), ACME_CONTROL_NONE);
}

/* A restart that cuts an order short asks again what it took, until the
 * order ends or its revoke is done at the CA. */
UNIT_TEST(control_carry)
{
    acme_control_t c;
    int            reason;

    memset(&c, 0, sizeof(c));
    CHECK_INT(acme_control_carry(&c, &reason), ACME_CONTROL_NONE);
    acme_control_renew(&c);
    CHECK_INT(acme_control_carry(&c, &reason), ACME_CONTROL_RENEW);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_RENEW);
    CHECK_INT(acme_control_pending(&c), ACME_CONTROL_NONE);
    CHECK_INT(acme_control_carry(&c, &reason), ACME_CONTROL_RENEW);
    acme_control_done(&c, 0);
    CHECK_INT(acme_control_carry(&c, &reason), ACME_CONTROL_NONE);

    acme_control_revoke(&c, 4);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_REVOKE);
    CHECK_INT(acme_control_carry(&c, &reason), ACME_CONTROL_REVOKE);
    CHECK_INT(reason, 4);
    acme_control_done(&c, 1);
    CHECK_INT(acme_control_carry(&c, &reason), ACME_CONTROL_NONE);

    /* a renew's order is not ended by a revoke's "done" */
    acme_control_renew(&c);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_RENEW);
    acme_control_done(&c, 1);
    CHECK_INT(acme_control_carry(&c, &reason), ACME_CONTROL_RENEW);
    /* put back: pending again, nothing in flight */
    acme_control_put_back(&c, ACME_CONTROL_RENEW, -1, 0);
    CHECK_INT(acme_control_carry(&c, &reason), ACME_CONTROL_RENEW);
    CHECK_INT(acme_control_take(&c, &reason), ACME_CONTROL_RENEW);
    acme_control_done(&c, 0);
    CHECK_INT(acme_control_carry(&c, &reason), ACME_CONTROL_NONE);
}

UNIT_TEST(control_reasons)
{
    CHECK_INT(acme_control_reason_code("unspecified"), 0);
    CHECK_INT(acme_control_reason_code("keyCompromise"), 1);
    CHECK_INT(acme_control_reason_code("affiliationChanged"), 3);
    CHECK_INT(acme_control_reason_code("superseded"), 4);
    CHECK_INT(acme_control_reason_code("cessationOfOperation"), 5);
    CHECK_INT(acme_control_reason_code("removeFromCRL"), 8);
    CHECK_INT(acme_control_reason_code("aACompromise"), 10);
    CHECK_INT(acme_control_reason_code("keycompromise"), -1);
    CHECK_INT(acme_control_reason_code("bogus"), -1);
    CHECK_INT(acme_control_reason_code(""), -1);
    CHECK_INT(acme_control_reason_code(NULL), -1);
    CHECK_STR(acme_control_reason_name(4), "superseded");
    CHECK(acme_control_reason_name(7) == NULL);
    CHECK(acme_control_reason_name(11) == NULL);
    CHECK(acme_control_reason_name(-1) == NULL);
}

#define S(x) x, sizeof(x) - 1

UNIT_TEST(control_action_and_args)
{
    char buf[32];

    CHECK_INT(acme_control_action(S("/acme-status/renew"), NULL, 0),
              ACME_CONTROL_RENEW);
    CHECK_INT(acme_control_action(S("/acme-status/revoke"), S("id=x")),
              ACME_CONTROL_REVOKE);
    CHECK_INT(acme_control_action(S("/acme-status"), S("action=renew&id=a")),
              ACME_CONTROL_RENEW);
    CHECK_INT(acme_control_action(S("/acme-status"), S("id=a&action=revoke")),
              ACME_CONTROL_REVOKE);
    CHECK_INT(acme_control_action(S("/acme-status"), S("id=a")),
              ACME_CONTROL_NONE);
    CHECK_INT(acme_control_action(S("/acme-status"), NULL, 0),
              ACME_CONTROL_NONE);
    CHECK_INT(acme_control_action(S("/acme-status"), S("action=delete")), -1);
    CHECK_INT(acme_control_action(S("/acme-status/renewal"), NULL, 0),
              ACME_CONTROL_NONE);

    CHECK_INT(acme_query_arg(S("id=a.example.test_ecdsa-256&x=1"), "id",
                               buf, sizeof(buf)), 1);
    CHECK_STR(buf, "a.example.test_ecdsa-256");
    CHECK_INT(acme_query_arg(S("xid=1&id=%61b+c"), "id", buf, sizeof(buf)),
              1);
    CHECK_STR(buf, "ab c");
    CHECK_INT(acme_query_arg(S("id"), "id", buf, sizeof(buf)), 1);
    CHECK_STR(buf, "");
    CHECK_INT(acme_query_arg(S("idx=1"), "id", buf, sizeof(buf)), 0);
    CHECK_INT(acme_query_arg(S("id=%4"), "id", buf, sizeof(buf)), -1);
    CHECK_INT(acme_query_arg(S("id=%00"), "id", buf, sizeof(buf)), -1);
    CHECK_INT(acme_query_arg(S("id=0123456789"), "id", buf, 8), -1);
}

UNIT_TEST(control_origin)
{
    CHECK_INT(acme_control_origin_ok(NULL, 0, S("a.example.test")), 1);
    CHECK_INT(acme_control_origin_ok(S("https://a.example.test"),
                                     S("a.example.test")), 1);
    CHECK_INT(acme_control_origin_ok(S("https://A.example.test:8443"),
                                     S("a.example.test:8443")), 1);
    CHECK_INT(acme_control_origin_ok(S("https://evil.test"),
                                     S("a.example.test")), 0);
    CHECK_INT(acme_control_origin_ok(S("https://a.example.test:444"),
                                     S("a.example.test")), 0);
    CHECK_INT(acme_control_origin_ok(S("https://a.example.test.evil.test"),
                                     S("a.example.test")), 0);
    CHECK_INT(acme_control_origin_ok(S("null"), S("a.example.test")), 0);
    CHECK_INT(acme_control_origin_ok(S("https://a.example.test"), NULL, 0),
              0);
}

static size_t
len_of(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

UNIT_TEST(control_check)
{
    acme_control_kind_t k;
    int                 reason;
    char                id[64], msg[256];

#define CHK(post, en, origin, path, args)                                   \
    acme_control_check(post, en, origin, len_of(origin), S("h.test"),      \
                       S(path), args, len_of(args), &k, &reason, id,        \
                       sizeof(id), msg, sizeof(msg))

    CHECK_INT(CHK(0, 1, NULL, "/s/renew", "id=a"), 405);
    CHECK_INT(CHK(1, 0, NULL, "/s/renew", "id=a"), 403);
    CHECK_INT(CHK(1, 1, "https://evil.test", "/s/renew", "id=a"), 403);
    CHECK_INT(CHK(1, 1, NULL, "/s", "id=a"), 400);
    CHECK_INT(CHK(1, 1, NULL, "/s/renew", NULL), 400);
    CHECK_INT(CHK(1, 1, NULL, "/s/revoke", "id=a&reason=bogus"), 400);
    CHECK_INT(CHK(1, 1, NULL, "/s/revoke", "id=all"), 400);

    CHECK_INT(CHK(1, 1, "https://h.test", "/s/renew", "id=all"), 0);
    CHECK_INT(k, ACME_CONTROL_RENEW);
    CHECK_STR(id, "all");
    CHECK_INT(CHK(1, 1, NULL, "/s", "action=revoke&id=a&reason=keyCompromise"),
              0);
    CHECK_INT(k, ACME_CONTROL_REVOKE);
    CHECK_INT(reason, 1);
    CHECK_STR(id, "a");
    CHECK_INT(CHK(1, 1, NULL, "/s/revoke", "id=a"), 0);
    CHECK_INT(reason, 0);
#undef CHK
}
