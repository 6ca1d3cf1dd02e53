#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include "unit.h"
#include "acme_util.h"

UNIT_TEST(b64url_rfc4648_vectors)
{
    static const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *out[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };
    size_t i, n;
    char *e;
    unsigned char *d;

    for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        e = acme_b64url_encode((const unsigned char *) in[i], strlen(in[i]));
        CHECK_STR(e, out[i]);
        d = acme_b64url_decode(e, strlen(e), &n);
        CHECK(d != NULL && n == strlen(in[i]) && memcmp(d, in[i], n) == 0);
        free(e);
        free(d);
    }
}

UNIT_TEST(b64url_url_alphabet_and_invalid)
{
    unsigned char bin[] = { 0xfb, 0xff, 0xbf };
    size_t n;
    char *e = acme_b64url_encode(bin, 3);

    CHECK_STR(e, "-_-_");
    free(e);
    CHECK(acme_b64url_decode("a+b/", 4, &n) == NULL);
    CHECK(acme_b64url_decode("a", 1, &n) == NULL);
    CHECK(acme_b64url_decode("Zh", 2, &n) == NULL);     /* non-zero pad bits */
}

UNIT_TEST(time_rfc3339_roundtrip)
{
    char buf[32];

    CHECK_STR(acme_time_rfc3339(1795000000, buf, sizeof(buf)), "2026-11-18T11:06:40Z");
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18T11:06:40Z"), 1795000000);
    CHECK_INT(acme_time_parse_rfc3339(acme_time_rfc3339(0, buf, sizeof(buf))), 0);
    CHECK_INT(acme_time_parse_rfc3339(acme_time_rfc3339(4102444800LL, buf,
                                                        sizeof(buf))),
              4102444800LL);
}

/* RFC 3339 section 5.6, strictly (issue 7 item 4) */
UNIT_TEST(time_rfc3339_accepted)
{
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18T12:06:40.123+01:00"), 1795000000);
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18t11:06:40z"), 1795000000);
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18T11:06:40.5Z"), 1795000000);
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18T11:06:40.000000000001Z"),
              1795000000);
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18T01:36:40-09:30"), 1795000000);
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18T11:06:40-00:00"), 1795000000);
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18T11:06:40+00:00"), 1795000000);
    CHECK_INT(acme_time_parse_rfc3339("1970-01-01T00:00:00Z"), 0);
    CHECK_INT(acme_time_parse_rfc3339("2024-02-29T00:00:00Z"), 1709164800);
    CHECK_INT(acme_time_parse_rfc3339("2000-02-29T00:00:00Z"), 951782400);
    /* a leap second counts as the next second */
    CHECK_INT(acme_time_parse_rfc3339("2016-12-31T23:59:60Z"), 1483228800);
    CHECK_INT(acme_time_parse_rfc3339("9999-12-31T23:59:59Z"), 253402300799LL);
}

UNIT_TEST(time_rfc3339_refused)
{
    static const char *bad[] = {
        "", "garbage", "2026-11-18T11:06:40", "2026-11-18", "11:06:40Z",
        "2026-11-18 11:06:40Z",             /* space instead of T */
        "2026-11-18T11:06:40 Z", " 2026-11-18T11:06:40Z",
        "2026-11-18T11:06:40Z ", "2026-11-18T11:06:40ZZ",
        "2026-11-18T11:06:40Z\n",
        "2025-01-01T00:00:00-0:1",          /* issue 7 item 4: short offset */
        "2025-01-01T00:00:00-0:", "2025-01-01T00:00:00-", "2025-01-01T00:00:00+",
        "2025-01-01T00:00:00+01", "2025-01-01T00:00:00+0100",
        "2025-01-01T00:00:00+01:0", "2025-01-01T00:00:00+1:00",
        "2025-01-01T00:00:00+24:00", "2025-01-01T00:00:00+01:60",
        "2025-01-01T00:00:00+01:00:00",
        "2026-11-18T11:06:40.Z",            /* fraction without digits */
        "2026-11-18T11:06:40,5Z",
        "26-11-18T11:06:40Z", "+2026-11-18T11:06:40Z", "02026-11-18T11:06:40Z",
        "2026-1-18T11:06:40Z", "2026-11-8T11:06:40Z", "2026-11-18T1:06:40Z",
        "2026-11-18T11:6:40Z", "2026-11-18T11:06:4Z", "2026-11-18T11:06Z",
        "2026-00-18T11:06:40Z", "2026-13-18T11:06:40Z",
        "2026-11-00T11:06:40Z", "2026-11-31T11:06:40Z",
        "2025-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2026-11-18T24:00:00Z", "2026-11-18T11:60:40Z", "2026-11-18T11:06:61Z",
        "2026-11-18T-1:06:40Z", "2026-11-18T11:06:40.1-0:1",
        "1969-12-31T23:59:59Z",             /* before the epoch */
        "Wed, 18 Nov 2026 11:06:40 GMT",    /* an HTTP-date is not RFC 3339 */
    };
    size_t i;

    CHECK_INT(acme_time_parse_rfc3339(NULL), -1);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (acme_time_parse_rfc3339(bad[i]) != -1) {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }
}

/* RFC 9110 section 5.6.7 */
UNIT_TEST(time_http_date)
{
    static const char *bad[] = {
        "", "garbage", "2026-11-18T11:06:40Z",
        "Wed, 18 Nov 2026 11:06:40",            /* no GMT */
        "Wed, 18 Nov 2026 11:06:40 UTC", "Wed, 18 Nov 2026 11:06:40 +0000",
        "Wed, 18 Nov 2026 11:06:40 gmt", "wed, 18 Nov 2026 11:06:40 GMT",
        "Wed, 18 nov 2026 11:06:40 GMT", "Wed,18 Nov 2026 11:06:40 GMT",
        "Wed, 18 Nov 2026 11:06:40 GMT ", " Wed, 18 Nov 2026 11:06:40 GMT",
        "Wed, 18  Nov 2026 11:06:40 GMT", "Wed, 8 Nov 2026 11:06:40 GMT",
        "Wed, 18 Nov 26 11:06:40 GMT", "Wed, 18 Nov 2026 11:06 GMT",
        "Wed, 31 Nov 2026 11:06:40 GMT", "Wed, 18 Nov 2026 24:06:40 GMT",
        "Wed, 18 Nov 2026 11:06:40 GMTX", "Wed, 18 Xyz 2026 11:06:40 GMT",
        "Wen, 18 Nov 2026 11:06:40 GMT", "Wed 18 Nov 2026 11:06:40 GMT",
        "Wednesday, 18-Nov-2026 11:06:40 GMT", "Wednesday, 18 Nov 26 11:06:40 GMT",
        "Wednesday, 18-Nov-26 11:06:40", "Wed Nov 18 11:06:40 26",
        "Wed Nov 18 11:06:40 2026 GMT", "Wed Nov 8 11:06:40 2026",
        "Thu, 01 Jan 1960 00:00:00 GMT",
    };
    size_t i;

    CHECK_INT(acme_time_parse_http_date("Wed, 18 Nov 2026 11:06:40 GMT"), 1795000000);
    CHECK_INT(acme_time_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    CHECK_INT(acme_time_parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    CHECK_INT(acme_time_parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
    CHECK_INT(acme_time_parse_http_date("Thursday, 01-Jan-26 00:00:00 GMT"),
              1767225600);
    CHECK_INT(acme_time_parse_http_date(NULL), -1);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (acme_time_parse_http_date(bad[i]) != -1) {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
            CHECK(0);
        }
    }
}

UNIT_TEST(util_process_alive)
{
    pid_t pid;
    int   status;

    CHECK_INT(acme_process_alive((long) getpid()), 1);
    CHECK_INT(acme_process_alive(0), 0);
    CHECK_INT(acme_process_alive(-1), 0);

    /* a child that exited and was reaped is gone */
    pid = fork();
    if (pid == 0) {
        _exit(0);
    }
    CHECK(pid > 0);
    CHECK_INT(waitpid(pid, &status, 0), pid);
    CHECK_INT(acme_process_alive((long) pid), 0);
}

UNIT_TEST(token_ok)
{
    char long_tok[ACME_TOKEN_MAX + 2];

    CHECK(acme_token_ok("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", 43));
    CHECK(acme_token_ok("a", 1));
    CHECK(acme_token_ok("AZaz09-_", 8));
    CHECK(acme_token_ok("ab/cd", 2));           /* only len bytes count */
    CHECK(!acme_token_ok("", 0));
    CHECK(!acme_token_ok("ab=", 3));            /* no padding */
    CHECK(!acme_token_ok("a+b", 3));
    CHECK(!acme_token_ok("../x", 4));
    CHECK(!acme_token_ok("a%2F", 4));
    CHECK(!acme_token_ok("a\0b", 3));
    CHECK(!acme_token_ok("a b", 3));
    memset(long_tok, 'a', sizeof(long_tok));
    CHECK(acme_token_ok(long_tok, ACME_TOKEN_MAX));
    CHECK(!acme_token_ok(long_tok, ACME_TOKEN_MAX + 1));
}


UNIT_TEST(http01_token)
{
    const char  *t, *p;
    size_t       n;

    /* a challenge path with a token: the token, in place */
    p = "/.well-known/acme-challenge/evaGxfADs6pSRb2-oA";
    CHECK_INT(acme_http01_token(p, strlen(p), &t, &n), 1);
    CHECK(t == p + strlen(ACME_HTTP01_PREFIX));
    CHECK_INT(n, strlen("evaGxfADs6pSRb2-oA"));

    /* not a challenge path: not ours */
    p = "/.well-known/acme-challengex/abc";
    CHECK_INT(acme_http01_token(p, strlen(p), &t, &n), 0);
    CHECK(t == NULL && n == 0);
    CHECK_INT(acme_http01_token("/index.html", 11, &t, &n), 0);
    CHECK_INT(acme_http01_token("/.well-known/acme-challenge", 27, &t, &n), 0);
    CHECK_INT(acme_http01_token(NULL, 0, &t, &n), 0);

    /* ours, but no well-formed token: 404 without a lookup */
    p = ACME_HTTP01_PREFIX;
    CHECK_INT(acme_http01_token(p, strlen(p), &t, &n), -1);
    p = ACME_HTTP01_PREFIX "../../etc/passwd";
    CHECK_INT(acme_http01_token(p, strlen(p), &t, &n), -1);
    p = ACME_HTTP01_PREFIX "abc/def";
    CHECK_INT(acme_http01_token(p, strlen(p), &t, &n), -1);
    p = ACME_HTTP01_PREFIX "abc%2F";
    CHECK_INT(acme_http01_token(p, strlen(p), &t, &n), -1);
    CHECK(t == NULL);

    /* the length, not a NUL, ends the path (nginx's r->uri) */
    p = ACME_HTTP01_PREFIX "abc?x=1";
    CHECK_INT(acme_http01_token(p, strlen(ACME_HTTP01_PREFIX) + 3, &t, &n), 1);
    CHECK_INT(n, 3);
}
