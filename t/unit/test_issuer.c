/* The issuer block's rules (common/core/acme_issuer.h) and the state
 * directory check (common/io/acme_issuer_store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "acme_issuer.h"
#include "acme_issuer_store.h"
#include "acme_key.h"
#include "acme_job.h"

static const char *const words[ACME_ISSUER_AT_N] = {
    "<AcmeIssuer>", "AcmeDirectory", "AcmeChallenge", "AcmeDNSUpdate",
    "AcmeDNSHook", "AcmeStateDir"
};

static void
base(acme_issuer_conf_t *c)
{
    acme_issuer_init(c);
    c->name = "pebble";
    c->directory = "https://ca.test/dir";
    c->state_root = "/var/lib/x/acme/";
}

/* not given: 0, or nginx's NGX_CONF_UNSET (-1) */
UNIT_TEST(issuer_defaults)
{
    acme_issuer_conf_t    c;
    acme_issuer_problem_t p[4];
    int                   unset;

    for (unset = 0; unset >= -1; unset--) {
        base(&c);
        c.renew_percent = unset;
        c.timeout_ms = unset;
        c.retry_delay = unset;
        c.clock_skew = unset;
        c.max_orders = unset;
        CHECK_INT(acme_issuer_check(&c, words, p, 4), 0);
        CHECK_INT(c.account_key, ACME_KEY_DEFAULT);
        CHECK_INT(c.renew_percent, 0);     /* acme_sched_renew_at's rule */
        CHECK_INT(c.timeout_ms, 30000);
        CHECK_INT(c.retry_delay, ACME_JOB_RETRY_DELAY);
        CHECK_INT(c.clock_skew, ACME_JOB_CLOCK_SKEW);
        CHECK_INT(c.max_orders, ACME_JOB_MAX_ORDERS);
        CHECK_INT(c.n_challenges, 1);
        CHECK_STR(c.challenges[0], "http-01");
        CHECK_STR(c.state_dir, "/var/lib/x/acme/pebble");
    }
}

UNIT_TEST(issuer_values_kept)
{
    acme_issuer_conf_t    c;
    acme_issuer_problem_t p[4];

    base(&c);
    c.account_key = ACME_KEY_RSA_2048;
    c.renew_percent = 50;
    c.timeout_ms = 500;
    c.retry_delay = 2;
    c.clock_skew = 300;
    c.max_orders = 1;
    c.challenges[0] = "tls-alpn-01";
    c.challenges[1] = "http-01";
    c.n_challenges = 2;
    c.state_dir = "/srv/acme";
    CHECK_INT(acme_issuer_check(&c, words, p, 4), 0);
    CHECK_INT(c.account_key, ACME_KEY_RSA_2048);
    CHECK_INT(c.renew_percent, 50);
    CHECK_INT(c.timeout_ms, 500);
    CHECK_INT(c.retry_delay, 2);
    CHECK_INT(c.clock_skew, 300);
    CHECK_INT(c.max_orders, 1);
    CHECK_INT(c.n_challenges, 2);
    CHECK_STR(c.challenges[0], "tls-alpn-01");
    CHECK_STR(c.state_dir, "/srv/acme");
}

UNIT_TEST(issuer_missing_directory)
{
    acme_issuer_conf_t    c;
    acme_issuer_problem_t p[4];

    base(&c);
    c.directory = NULL;
    CHECK_INT(acme_issuer_check(&c, words, p, 4), 1);
    CHECK_INT(p[0].warning, 0);
    CHECK_INT(p[0].at, ACME_ISSUER_AT_BLOCK);
    CHECK_STR(p[0].text, "has no AcmeDirectory");
    CHECK(acme_issuer_has_error(p, 1));
    base(&c);
    c.directory = "";
    CHECK_INT(acme_issuer_check(&c, words, p, 4), 1);
}

UNIT_TEST(issuer_dns01_publisher)
{
    acme_issuer_conf_t    c;
    acme_issuer_problem_t p[4];

    /* dns-01 anywhere in the list needs a publisher */
    base(&c);
    c.challenges[0] = "http-01";
    c.challenges[1] = "dns-01";
    c.n_challenges = 2;
    CHECK_INT(acme_issuer_check(&c, words, p, 4), 1);
    CHECK_INT(p[0].at, ACME_ISSUER_AT_CHALLENGE);
    CHECK_STR(p[0].text, "uses AcmeChallenge dns-01 but has neither "
              "AcmeDNSUpdate nor AcmeDNSHook to publish the TXT records");

    base(&c);
    c.challenges[0] = "dns-01";
    c.n_challenges = 1;
    c.dns.hook = "/bin/true";
    CHECK_INT(acme_issuer_check(&c, words, p, 4), 0);

    base(&c);
    c.challenges[0] = "dns-01";
    c.n_challenges = 1;
    snprintf(c.dns.update.host, sizeof(c.dns.update.host), "127.0.0.1");
    CHECK_INT(acme_issuer_check(&c, words, p, 4), 0);

    /* both: an error, with or without dns-01 */
    base(&c);
    snprintf(c.dns.update.host, sizeof(c.dns.update.host), "127.0.0.1");
    c.dns.hook = "/bin/true";
    CHECK_INT(acme_issuer_check(&c, words, p, 4), 1);
    CHECK_STR(p[0].text, "has both AcmeDNSUpdate and AcmeDNSHook, which "
              "exclude each other");
}

/* Two blocks may not share a state directory (both servers refuse it);
 * a trailing '/' does not make it another one. */
UNIT_TEST(issuer_state_shared)
{
    acme_issuer_conf_t  a, b;

    acme_issuer_init(&a);
    acme_issuer_init(&b);
    a.state_dir = "/var/lib/acme/one";
    b.state_dir = "/var/lib/acme/one/";
    CHECK_INT(acme_issuer_state_shared(&a, &b), 1);
    CHECK_INT(acme_issuer_state_shared(&b, &a), 1);
    b.state_dir = "/var/lib/acme/one2";
    CHECK_INT(acme_issuer_state_shared(&a, &b), 0);
    b.state_dir = "/var/lib/acme/on";
    CHECK_INT(acme_issuer_state_shared(&a, &b), 0);
    b.state_dir = NULL;
    CHECK_INT(acme_issuer_state_shared(&a, &b), 0);
    acme_issuer_conf_clear(&a);
    CHECK(a.dns.checks == NULL && a.eab.key == NULL);
}

/* nginx-acme's "state_path off": no state directory at all, none checked
 * (a configured path is dropped), none shared. */
UNIT_TEST(issuer_no_store)
{
    acme_issuer_conf_t    c, d;
    acme_issuer_problem_t p[4];

    base(&c);
    c.no_store = 1;
    c.state_dir = "off";
    CHECK_INT(acme_issuer_check_startup(&c, words, NULL, p, 4), 0);
    CHECK(c.state_dir == NULL);
    base(&d);
    d.no_store = 1;
    CHECK_INT(acme_issuer_check(&d, words, p, 4), 0);
    CHECK(d.state_dir == NULL);
    CHECK_INT(acme_issuer_state_shared(&c, &d), 0);
}

UNIT_TEST(issuer_problems_counted_past_max)
{
    acme_issuer_conf_t    c;
    acme_issuer_problem_t p[1];

    base(&c);
    c.directory = NULL;
    c.challenges[0] = "dns-01";
    c.n_challenges = 1;
    CHECK_INT(acme_issuer_check(&c, words, p, 1), 2);
    CHECK_STR(p[0].text, "has no AcmeDirectory");
    /* the defaults are still applied */
    CHECK_INT(c.renew_percent, 0);
    CHECK_INT(c.timeout_ms, 30000);
}

UNIT_TEST(issuer_default_state_dir_too_long)
{
    acme_issuer_conf_t    c;
    acme_issuer_problem_t p[2];
    char                 *name = malloc(ACME_ISSUER_PATH_MAX + 1);

    memset(name, 'n', ACME_ISSUER_PATH_MAX);
    name[ACME_ISSUER_PATH_MAX] = '\0';
    base(&c);
    c.name = name;
    CHECK_INT(acme_issuer_check(&c, words, p, 2), 1);
    CHECK_INT(p[0].warning, 0);
    CHECK(strstr(p[0].text, "AcmeStateDir") != NULL);
    CHECK_STR(c.state_dir, "");
    free(name);
}

UNIT_TEST(issuer_directory_url)
{
    char err[ACME_ERRLEN];

    CHECK_INT(acme_issuer_directory("https://ca.test/dir", err, sizeof(err)),
              0);
    CHECK_INT(acme_issuer_directory("HTTPS://ca.test:14000/dir", err,
                                    sizeof(err)), 0);
    CHECK_INT(acme_issuer_directory("http://ca.test/dir", err, sizeof(err)),
              1);
    CHECK(strstr(err, "plain HTTP") != NULL);
    CHECK(strstr(err, "RFC 8555") != NULL);
    CHECK_INT(acme_issuer_directory("ftp://ca.test/dir", err, sizeof(err)),
              -1);
    CHECK_INT(acme_issuer_directory("https:///dir", err, sizeof(err)), -1);
    CHECK_INT(acme_issuer_directory("ca.test", err, sizeof(err)), -1);
}

UNIT_TEST(issuer_contact)
{
    char buf[64], err[ACME_ERRLEN];

    CHECK_INT(acme_issuer_contact("a@example.test", 14, buf, sizeof(buf),
                                  err, sizeof(err)), 21);
    CHECK_STR(buf, "mailto:a@example.test");
    CHECK_INT(acme_issuer_contact("mailto:b@example.test", 21, buf,
                                  sizeof(buf), err, sizeof(err)), 21);
    CHECK_STR(buf, "mailto:b@example.test");
    CHECK(acme_issuer_contact("tel:+1555", 9, buf, sizeof(buf), err,
                              sizeof(err)) > 0);
    CHECK_STR(buf, "tel:+1555");
    /* a length that is not the string's: nginx's ngx_str_t */
    CHECK(acme_issuer_contact("c@x.test;junk", 8, buf, sizeof(buf), err,
                              sizeof(err)) > 0);
    CHECK_STR(buf, "mailto:c@x.test");
    CHECK_INT(acme_issuer_contact("", 0, buf, sizeof(buf), err, sizeof(err)),
              -1);
    CHECK(strstr(err, "empty") != NULL);
    /* the documented size is enough, one less is not */
    CHECK(acme_issuer_contact("d@x", 3, buf, 3 + ACME_ISSUER_CONTACT_EXTRA,
                              err, sizeof(err)) > 0);
    CHECK_INT(acme_issuer_contact("d@x", 3, buf,
                                  3 + ACME_ISSUER_CONTACT_EXTRA - 1, err,
                                  sizeof(err)), -1);
}

UNIT_TEST(issuer_renew_percent)
{
    CHECK_INT(acme_issuer_renew_percent("33%", 3), 33);
    CHECK_INT(acme_issuer_renew_percent("1%", 2), 1);
    CHECK_INT(acme_issuer_renew_percent("99%", 3), 99);
    CHECK_INT(acme_issuer_renew_percent("0%", 2), -1);
    CHECK_INT(acme_issuer_renew_percent("100%", 4), -1);
    CHECK_INT(acme_issuer_renew_percent("150%", 4), -1);
    CHECK_INT(acme_issuer_renew_percent("33", 2), -1);
    CHECK_INT(acme_issuer_renew_percent("%", 1), -1);
    CHECK_INT(acme_issuer_renew_percent("-5%", 3), -1);
    CHECK_INT(acme_issuer_renew_percent("3a%", 3), -1);
    CHECK_INT(acme_issuer_renew_percent("50%;", 3), 50);
}

UNIT_TEST(issuer_store_check)
{
    acme_issuer_conf_t    c;
    acme_issuer_problem_t p[1];
    char                 *dir = unit_tmpdir(), path[512];
    FILE                 *f;

    CHECK(dir != NULL);
    if (dir == NULL) {
        return;
    }
    base(&c);
    snprintf(path, sizeof(path), "%s/state", dir);
    c.state_dir = path;
    CHECK_INT(acme_issuer_check_store(&c, words, p), 0);
    /* nothing was created */
    CHECK(access(path, F_OK) != 0);

    /* below a regular file: an error naming the directive and the path */
    snprintf(path, sizeof(path), "%s/afile", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/afile/state", dir);
    CHECK_INT(acme_issuer_check_store(&c, words, p), 1);
    CHECK_INT(p[0].warning, 0);
    CHECK_INT(p[0].at, ACME_ISSUER_AT_STATE_DIR);
    CHECK(strncmp(p[0].text, "AcmeStateDir ", 13) == 0);
    CHECK(strstr(p[0].text, path) != NULL);
    CHECK(strstr(p[0].text, "cannot be created or written") != NULL);

    /* the regular file itself: an error too (the store would be refused
     * at start, its certificates ordered again) */
    snprintf(path, sizeof(path), "%s/afile", dir);
    CHECK_INT(acme_issuer_check_store(&c, words, p), 1);
    CHECK_INT(p[0].warning, 0);
    CHECK(strstr(p[0].text, "is not a directory") != NULL);
    unlink(path);
    rmdir(dir);
    free(dir);
}


/* The store as the workers' / children's user: an unreachable parent is an
 * error naming the directive, the path and the component that blocks (also
 * through acme_issuer_check_startup), a store read-only for the user a
 * warning, and without a user nothing of that is checked. */
UNIT_TEST(issuer_store_check_user)
{
    acme_issuer_conf_t    c;
    acme_issuer_problem_t p[4];
    acme_store_user_t     u;
    char                 *dir = unit_tmpdir(), path[512], priv[512];
    size_t                n;

    CHECK(dir != NULL);
    if (dir == NULL) {
        return;
    }
    CHECK_INT(chmod(dir, 0755), 0);
    acme_store_user_init(&u, "www-test", 54321, 54321);
    u.n_groups = 0;

    snprintf(priv, sizeof(priv), "%s/priv", dir);
    CHECK_INT(mkdir(priv, 0700), 0);
    snprintf(path, sizeof(path), "%s/priv/acme", dir);
    base(&c);
    c.state_dir = path;
    CHECK_INT(acme_issuer_check_store_user(&c, words, &u, p), 1);
    CHECK_INT(p[0].warning, 0);
    CHECK_INT(p[0].at, ACME_ISSUER_AT_STATE_DIR);
    CHECK(strncmp(p[0].text, "AcmeStateDir ", 13) == 0);
    CHECK(strstr(p[0].text, path) != NULL);
    CHECK(strstr(p[0].text, "cannot be used by user \"www-test\"") != NULL);
    CHECK(strstr(p[0].text, "is not searchable by user \"www-test\"")
          != NULL);
    CHECK(strstr(p[0].text, priv) != NULL);

    /* the same through acme_issuer_check_startup; without a user: fine */
    base(&c);
    c.state_dir = path;
    n = acme_issuer_check_startup(&c, words, &u, p, 4);
    CHECK(acme_issuer_has_error(p, n));
    base(&c);
    c.state_dir = path;
    n = acme_issuer_check_startup(&c, words, NULL, p, 4);
    CHECK(!acme_issuer_has_error(p, n));

    /* an existing store the user cannot write: a warning */
    CHECK_INT(chmod(priv, 0755), 0);
    CHECK_INT(mkdir(path, 0555), 0);
    base(&c);
    c.state_dir = path;
    CHECK_INT(acme_issuer_check_store_user(&c, words, &u, p), 1);
    CHECK_INT(p[0].warning, 1);
    CHECK(strstr(p[0].text, "is read-only for user \"www-test\"") != NULL);
    CHECK(strstr(p[0].text, "stored certificates are served") != NULL);
    CHECK_INT(chmod(path, 0700), 0);
    CHECK_INT(acme_issuer_check_store_user(&c, words, &u, p), 0);

    rmdir(path);
    rmdir(priv);
    rmdir(dir);
    free(dir);
}


UNIT_TEST(issuer_profile_name)
{
    char  err[256];

    CHECK_INT(acme_issuer_profile_name("shortlived", err, sizeof(err)), 0);
    CHECK_INT(acme_issuer_profile_name("tls-server_1.0", err, sizeof(err)), 0);
    CHECK_INT(acme_issuer_profile_name("", err, sizeof(err)), -1);
    CHECK_STR(err, "takes the name of a profile, not an empty one");
    CHECK_INT(acme_issuer_profile_name("short lived", err, sizeof(err)), -1);
    CHECK_STR(err, "the profile name \"short lived\" has a character other "
              "than printable ASCII (no space, no quote)");
    CHECK_INT(acme_issuer_profile_name("a\"b", err, sizeof(err)), -1);
    CHECK_INT(acme_issuer_profile_name("caf\xc3\xa9", err, sizeof(err)), -1);
}
