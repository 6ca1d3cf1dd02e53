#include <stdlib.h>
#include "unit.h"
#include "acme_names.h"
#include "acme_util.h"

static const char *
norm(const char *in, unsigned flags, int *kind, char *out, char *err)
{
    *kind = acme_name_normalise(in, strlen(in), flags, out, ACME_NAME_BUFLEN,
                                err, ACME_ERRLEN);
    return *kind < 0 ? NULL : out;
}

UNIT_TEST(names_normalise_dns)
{
    char out[ACME_NAME_BUFLEN], err[ACME_ERRLEN];
    int  k;

    CHECK_STR(norm("WWW.Example.TEST.", 0, &k, out, err), "www.example.test");
    CHECK_INT(k, ACME_NAME_DNS);
    CHECK_STR(norm("xn--bcher-kva.example", 0, &k, out, err),
              "xn--bcher-kva.example");
    CHECK_STR(norm("a-b.c0.example", 0, &k, out, err), "a-b.c0.example");
    /* a length that is not the string's: nginx's ngx_str_t */
    k = acme_name_normalise("a.example.test;junk", 14, 0, out, sizeof(out),
                            err, sizeof(err));
    CHECK_INT(k, ACME_NAME_DNS);
    CHECK_STR(out, "a.example.test");
}

UNIT_TEST(names_normalise_lengths)
{
    char out[ACME_NAME_BUFLEN], err[ACME_ERRLEN], name[400];
    int  k;

    memset(name, 'a', 63);
    strcpy(name + 63, ".example.test");
    CHECK(norm(name, 0, &k, out, err) != NULL);
    memset(name, 'a', 64);
    strcpy(name + 64, ".example.test");
    CHECK(norm(name, 0, &k, out, err) == NULL);
    CHECK(strstr(err, "longer than 63 octets") != NULL);

    /* 253 octets: 3 x 63 + 61, with dots */
    memset(name, 'a', 253);
    name[63] = name[127] = name[191] = '.';
    name[253] = '\0';
    CHECK(norm(name, 0, &k, out, err) != NULL);
    name[253] = '.';                    /* a trailing dot does not count */
    name[254] = '\0';
    CHECK(norm(name, 0, &k, out, err) != NULL);
    name[253] = 'a';
    CHECK(norm(name, 0, &k, out, err) == NULL);
    CHECK(strstr(err, "longer than 253 octets") != NULL);
}

UNIT_TEST(names_normalise_refused)
{
    static const struct { const char *in, *why; } bad[] = {
        { "", "is empty" },
        { "localhost", "two labels" },
        { "localhost.", "two labels" },
        { "a..example", "empty label" },
        { ".example.test", "starts with a dot" },
        { "..", "starts with a dot" },
        { "a.example.test..", "empty label" },
        { "-a.example", "starting with a hyphen" },
        { "a-.example", "ending with a hyphen" },
        { "a.example-", "ending with a hyphen" },
        { "a_b.example", "'_'" },
        { "a:b.example", "':'" },
        { "b\xc3\xbc" "cher.example", "xn--" },
        { "~^a\\.example$", "regular expression" },
        { "a.*.example", "whole left-most label" },
        { "*a.example", "whole left-most label" },
        { "*", "whole left-most label" },
        { "*.", "whole left-most label" },
        { "www.*", "whole left-most label" },
        { "*.example.test", "needs dns-01" },
        { "1.2.3.4.", "all-numeric" },
        { "a.example.123", "all-numeric" },
    };
    char   out[ACME_NAME_BUFLEN], err[ACME_ERRLEN];
    size_t i;
    int    k;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (norm(bad[i].in, 0, &k, out, err) != NULL || strstr(err, bad[i].why)
            == NULL)
        {
            unit_failed_checks++;
            fprintf(stderr, "  \"%s\": kind %d, err \"%s\", expected \"%s\"\n",
                    bad[i].in, k, err, bad[i].why);
        }
    }
    /* "*.name" only with dns-01, and not over a top-level domain */
    CHECK_STR(norm("*.Example.Test", ACME_NAMES_DNS01, &k, out, err),
              "*.example.test");
    CHECK_INT(k, ACME_NAME_WILDCARD);
    CHECK(norm("*.test", ACME_NAMES_DNS01, &k, out, err) == NULL);
    CHECK(norm("*.*.example", ACME_NAMES_DNS01, &k, out, err) == NULL);
}

UNIT_TEST(names_normalise_ip)
{
    char out[ACME_NAME_BUFLEN], err[ACME_ERRLEN];
    int  k;

    CHECK_STR(norm("127.0.0.1", 0, &k, out, err), "127.0.0.1");
    CHECK_INT(k, ACME_NAME_IP);
    CHECK_STR(norm("2001:DB8:0:0:0:0:0:1", 0, &k, out, err), "2001:db8::1");
    CHECK_INT(k, ACME_NAME_IP);
    CHECK_STR(norm("::1", 0, &k, out, err), "::1");
    CHECK(norm("[::1]", 0, &k, out, err) == NULL);
    CHECK(norm("1.2.3", 0, &k, out, err) == NULL);
}

UNIT_TEST(names_set_dedup_and_placeholders)
{
    static const char *in[] = { "_", "B.example.test.", "", "a.example.test",
                                "b.example.test", "A.EXAMPLE.TEST." };
    static const size_t lens[] = { 1, 15, 0, 14, 14, 15 };
    acme_names_t set;
    char         err[ACME_ERRLEN];
    size_t       bad;

    CHECK_INT(acme_names_set(&set, in, lens, 6, ACME_NAMES_SERVER_NAME, &bad,
                             err, sizeof(err)), 0);
    CHECK_INT(set.n_names, 2);
    CHECK_INT(set.n_order, 2);
    if (set.n_names == 2) {
        CHECK_STR(set.names[0], "b.example.test");
        CHECK_STR(set.names[1], "a.example.test");
    }
    acme_names_free(&set);

    /* explicit names: "_" is a name, and a bad one */
    CHECK_INT(acme_names_set(&set, in, lens, 6, 0, &bad, err, sizeof(err)), -1);
    CHECK_INT(bad, 0);
    CHECK(strstr(err, "'_'") != NULL);

    /* nothing left */
    CHECK_INT(acme_names_set(&set, in, lens, 1, ACME_NAMES_SERVER_NAME, &bad,
                             err, sizeof(err)), -1);
    CHECK_INT(bad, 1);
    CHECK(strstr(err, "no names") != NULL);

    /* the refused name is named by index */
    {
        static const char *in2[] = { "a.example.test", "x\xc3\xa9.test" };

        CHECK_INT(acme_names_set(&set, in2, NULL, 2, 0, &bad, err,
                                 sizeof(err)), -1);
        CHECK_INT(bad, 1);
        CHECK(strstr(err, "xn--") != NULL);
    }
}

UNIT_TEST(names_set_wildcard_order)
{
    static const char *in[] = { "*.example.test", "example.test",
                                "WWW.example.test", "a.b.example.test",
                                "*.b.example.test", "127.0.0.1" };
    acme_names_t set;
    char         err[ACME_ERRLEN];

    CHECK_INT(acme_names_set(&set, in, NULL, 6, 0, NULL, err, sizeof(err)),
              -1);
    CHECK(strstr(err, "dns-01") != NULL);

    CHECK_INT(acme_names_set(&set, in, NULL, 6, ACME_NAMES_DNS01, NULL, err,
                             sizeof(err)), 0);
    CHECK_INT(set.n_names, 6);
    CHECK_INT(set.n_order, 4);
    if (set.n_order == 4) {
        CHECK_STR(set.order[0], "*.example.test");
        CHECK_STR(set.order[1], "example.test");
        /* www and a.b are covered; *.b is not one label under *. */
        CHECK_STR(set.order[2], "*.b.example.test");
        CHECK_STR(set.order[3], "127.0.0.1");
    }
    CHECK_STR(set.names[2], "www.example.test");
    acme_names_free(&set);

    CHECK(acme_name_wildcard_covers("*.example.test", "www.example.test"));
    CHECK(!acme_name_wildcard_covers("*.example.test", "example.test"));
    CHECK(!acme_name_wildcard_covers("*.example.test", "a.b.example.test"));
    CHECK(!acme_name_wildcard_covers("*.example.test", "*.example.test"));
    CHECK(!acme_name_wildcard_covers("example.test", "www.example.test"));
}

UNIT_TEST(names_same_any_order)
{
    static const char *a[] = { "a.example.test", "b.example.test" };
    static const char *b[] = { "b.example.test", "a.example.test" };
    static const char *c[] = { "b.example.test", "c.example.test" };

    CHECK(acme_names_same(a, 2, b, 2));
    CHECK(!acme_names_same(a, 2, c, 2));
    CHECK(!acme_names_same(a, 2, b, 1));
    CHECK(!acme_names_same(a, 1, b, 2));
}

/* The rule both configuration checks warn by (acme_name_served). */
UNIT_TEST(names_served_by_server_names)
{
    static const char *pats[] = { "a.example.test.", "*.w.example.test",
                                  ".d.example.test", "www.p.*" };
    static const char *re[] = { "~^x\\.example\\.test$" };
    static const char *glob[] = { "a?.example.test" };
    static const char *empty[] = { "", "_" };
    static const size_t lens[] = { 4 };  /* "b.ex" of "b.example.test" */
    static const char *cut[] = { "b.example.test" };

    CHECK(acme_name_served("a.example.test", pats, NULL, 4, 0));
    CHECK(acme_name_served("x.w.example.test", pats, NULL, 4, 0));
    CHECK(acme_name_served("y.x.w.example.test", pats, NULL, 4, 0));
    CHECK(!acme_name_served("w.example.test", pats, NULL, 4, 0));
    CHECK(acme_name_served("www.p.example", pats, NULL, 4, 0));
    CHECK(!acme_name_served("www.p", pats, NULL, 4, 0));
    CHECK(!acme_name_served("zz.example.test", pats, NULL, 4, 0));

    /* ".suffix" is nginx's form only */
    CHECK(!acme_name_served("d.example.test", pats, NULL, 4, 0));
    CHECK(!acme_name_served("y.d.example.test", pats, NULL, 4, 0));
    CHECK(acme_name_served("d.example.test", pats, NULL, 4,
                           ACME_SERVED_DOT_SUFFIX));
    CHECK(acme_name_served("y.d.example.test", pats, NULL, 4,
                           ACME_SERVED_DOT_SUFFIX));
    CHECK(!acme_name_served("yd.example.test", pats, NULL, 4,
                            ACME_SERVED_DOT_SUFFIX));

    /* IP literals are reached by address, without SNI */
    CHECK(acme_name_served("127.0.0.1", pats, NULL, 4, 0));
    CHECK(acme_name_served("2001:db8::1", NULL, NULL, 0, 0));
    CHECK(!acme_name_served("127.0.0.1.example.test", NULL, NULL, 0, 0));

    /* what cannot be judged here counts; placeholders match nothing */
    CHECK(acme_name_served("zz.example.test", re, NULL, 1, 0));
    CHECK(acme_name_served("zz.example.test", glob, NULL, 1, 0));
    CHECK(!acme_name_served("a.example.test", empty, NULL, 2, 0));

    /* lengths, not NULs, bound the patterns */
    CHECK(!acme_name_served("b.example.test", cut, lens, 1, 0));
    CHECK(acme_name_served("b.ex", cut, lens, 1, 0));
}
