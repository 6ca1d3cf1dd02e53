/*
 * dns-01 publishing shared by both servers (acme_dns_publish.h): the pure
 * helpers (SERVER[:PORT], resolv.conf, the hook's PATH rule, the record of
 * an identifier) and the hook runner's sequence with the posix_spawn runner
 * (Apache's) and /bin/sh programs.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "unit.h"
#include "acme_dns_publish.h"
#include "acme_dns_conf_load.h"
#include "acme_util.h"

extern char **environ;


UNIT_TEST(dns_server_parse)
{
    static const struct { const char *in, *host; int port; } good[] = {
        { "127.0.0.1", "127.0.0.1", 53 },
        { "127.0.0.1:5353", "127.0.0.1", 5353 },
        { "ns.example.test", "ns.example.test", 53 },
        { "ns.example.test:5353", "ns.example.test", 5353 },
        { "[::1]:5353", "::1", 5353 },
        { "[::1]", "::1", 53 },
        { "::1", "::1", 53 },
        { "2001:db8::53", "2001:db8::53", 53 },
    };
    static const char *const bad[] = {
        "", "127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:", "127.0.0.1:x",
        "999.1.1.1", "ns example", "-ns.test", ".ns.test", "[::1", "[]:53",
        "[::1]x", "[127.0.0.1]:53", "1:2:3:zz", "ns.test:53:53x",
        "ns_1.test", "ns.test:+53",
    };
    acme_dns_server_t  s;
    char               err[ACME_ERRLEN];
    size_t             i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        memset(&s, 0, sizeof(s));
        CHECK_INT(acme_dns_server_parse(good[i].in, strlen(good[i].in), &s,
                                        err, sizeof(err)), 0);
        CHECK_STR(s.host, good[i].host);
        CHECK_INT(s.port, good[i].port);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (acme_dns_server_parse(bad[i], strlen(bad[i]), &s, err,
                                  sizeof(err)) != -1)
        {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
            unit_failed_checks++;
        }
        CHECK(strstr(err, "is not a DNS server address") != NULL);
    }
    /* the message names the argument as given */
    acme_dns_server_parse("127.0.0.1:99999", 15, &s, err, sizeof(err));
    CHECK(strstr(err, "'127.0.0.1:99999' is not a DNS server") != NULL);
    /* a length, not a C string: the rest is not read */
    CHECK_INT(acme_dns_server_parse("10.0.0.1:53;junk", 11, &s, err,
                                    sizeof(err)), 0);
    CHECK_STR(s.host, "10.0.0.1");
    CHECK_INT(s.port, 53);
}


UNIT_TEST(dns_resolv_conf_nameserver)
{
    char out[64];

    /* the first nameserver line, comments skipped (nginx used to take the
     * one of "# nameserver ..." here) */
    CHECK_INT(acme_dns_resolv_conf_nameserver(
        "# generated\n# nameserver 10.9.9.9\n; nameserver 10.8.8.8\n"
        "search example.test\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n",
        out, sizeof(out)), 0);
    CHECK_STR(out, "192.0.2.53");

    CHECK_INT(acme_dns_resolv_conf_nameserver(
        "  nameserver\t2001:db8::1  # the resolver\n", out, sizeof(out)), 0);
    CHECK_STR(out, "2001:db8::1");

    CHECK_INT(acme_dns_resolv_conf_nameserver("nameserver 127.0.0.53", out,
                                              sizeof(out)), 0);
    CHECK_STR(out, "127.0.0.53");

    /* none: only comments, a keyword that merely starts with it, empty */
    CHECK_INT(acme_dns_resolv_conf_nameserver(
        "#nameserver 10.0.0.1\noptions edns0\nnameservers 10.0.0.2\n"
        "nameserver\n", out, sizeof(out)), -1);
    CHECK_INT(acme_dns_resolv_conf_nameserver("", out, sizeof(out)), -1);
    /* too long for the buffer */
    CHECK_INT(acme_dns_resolv_conf_nameserver("nameserver 192.0.2.1", out, 8),
              -1);
}


UNIT_TEST(dns_hook_command_path_rule)
{
    char  *argv[5], *envp[2];

    /* whatever the server's environment, the hook gets a fixed PATH only */
    setenv("PATH", "/tmp/evil:/usr/bin", 1);
    acme_dns_hook_command("/usr/local/bin/hook", "add", "*.example.test",
                          "TXTVALUE", argv, envp);
    CHECK_STR(argv[0], "/usr/local/bin/hook");
    CHECK_STR(argv[1], "add");
    CHECK_STR(argv[2], "example.test");
    CHECK_STR(argv[3], "TXTVALUE");
    CHECK(argv[4] == NULL);
    CHECK_STR(envp[0], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                       "/usr/bin:/sbin:/bin");
    CHECK(envp[1] == NULL);

    acme_dns_hook_command("/h", "remove", "a.example.test", "V", argv, envp);
    CHECK_STR(argv[2], "a.example.test");
}


UNIT_TEST(dns01_record_of_identifier)
{
    acme_dns01_record_t  r;
    char                 err[ACME_ERRLEN], *txt;

    CHECK_INT(acme_dns01_record("*.Example.TEST", "tok.thumb", &r, err,
                                sizeof(err)), 0);
    CHECK_STR(r.domain, "Example.TEST");
    CHECK_STR(r.name, "_acme-challenge.example.test");
    txt = acme_dns01_txt_value("tok.thumb");
    CHECK_STR(r.txt, txt);
    free(txt);
    acme_dns01_record_free(&r);
    CHECK(r.name == NULL);
    acme_dns01_record_free(&r);             /* idempotent */

    CHECK_INT(acme_dns01_record("", "tok.thumb", &r, err, sizeof(err)), -1);
    CHECK(strstr(err, "cannot make the TXT record") != NULL);
    CHECK_INT(acme_dns01_record("a.example.test", NULL, &r, err, sizeof(err)),
              -1);
}


UNIT_TEST(dns_server_list)
{
    acme_dns_server_t  s[2];
    char               buf[64];

    snprintf(s[0].host, sizeof(s[0].host), "127.0.0.1");
    s[0].port = 5353;
    snprintf(s[1].host, sizeof(s[1].host), "ns.example.test");
    s[1].port = 53;
    acme_dns_server_list(s, 2, buf, sizeof(buf));
    CHECK_STR(buf, "127.0.0.1:5353, ns.example.test:53");
    acme_dns_server_list(s, 0, buf, sizeof(buf));
    CHECK_STR(buf, "");
    acme_dns_server_list(s, 2, buf, 8);
    CHECK_STR(buf, "127.0.0");
}


/* ---- the hook runner ---- */

typedef struct {
    char    log[2048];
    int     stop;
} hook_log_t;

static void
log_cb(void *data, int level, const char *msg)
{
    hook_log_t *l = data;
    size_t      n = strlen(l->log);

    snprintf(l->log + n, sizeof(l->log) - n, "%d|%s\n", level, msg);
}

static int
stop_cb(void *data)
{
    return ((hook_log_t *) data)->stop;
}

/* A /bin/sh script in a temporary file; the caller unlinks it. */
static char *
script(const char *body)
{
    char   path[] = "/tmp/acme_unit_hookXXXXXX";
    int    fd = mkstemp(path);
    FILE  *f;

    if (fd < 0) {
        return NULL;
    }
    f = fdopen(fd, "w");
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0700);
    return acme_strdup(path);
}

UNIT_TEST(dns_hook_run)
{
    const acme_runner_t      runner = acme_runner_posix;
    acme_dns_publisher_t  p;
    acme_dns_conf_t       c;
    hook_log_t            l;
    char                  err[ACME_ERRLEN], *ok, *fail, *hang;

    /* arguments, the environment, stderr lines to the log */
    ok = script("echo \"$1 $2 $3 PATH=$PATH $(env | grep -vc "
                "'^PATH=\\|^PWD=\\|^OLDPWD=\\|^SHLVL=\\|^_=')\" >&2");
    fail = script("echo 'zone locked' >&2; echo '' >&2; exit 3");
    hang = script("echo hanging >&2; exec sleep 60");
    CHECK(ok && fail && hang);

    memset(&p, 0, sizeof(p));
    memset(&c, 0, sizeof(c));
    p.conf = &c;
    memset(&l, 0, sizeof(l));
    p.runner = &runner;
    p.data = &l;
    p.log = log_cb;
    p.stop = stop_cb;
    setenv("ACME_UNIT_SECRET", "x", 1);

    c.hook = ok;
    CHECK_INT(acme_dns_hook_run(&p, "add", "*.example.test", "V", 1, err,
                                sizeof(err)), 0);
    CHECK_STR(l.log, "2|dns hook: add example.test V PATH=/usr/local/sbin:"
                     "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin 0\n");

    /* exit 3: the status and the last stderr line */
    l.log[0] = '\0';
    c.hook = fail;
    CHECK_INT(acme_dns_hook_run(&p, "add", "example.test", "V", 1, err,
                                sizeof(err)), -1);
    CHECK(strstr(err, "dns hook add example.test: ") == err);
    CHECK(strstr(err, "exited with status 3") != NULL);
    CHECK(strstr(err, ": zone locked") != NULL);
    CHECK_STR(l.log, "2|dns hook: zone locked\n");

    /* past its timeout: the group is killed */
    l.log[0] = '\0';
    c.hook = hang;
    c.hook_timeout_ms = 300;
    CHECK_INT(acme_dns_hook_run(&p, "add", "example.test", "V", 1, err,
                                sizeof(err)), -1);
    CHECK(strstr(err, "killed after 300 ms") != NULL);
    CHECK(strstr(l.log, "dns hook: hanging") != NULL);

    /* the host stops: adding gives up at once (removal does not ask) */
    l.stop = 1;
    c.hook_timeout_ms = 60000;
    CHECK_INT(acme_dns_hook_run(&p, "add", "example.test", "V", 1, err,
                                sizeof(err)), -1);
    CHECK(strstr(err, "shutting down") != NULL);
    c.hook = ok;
    CHECK_INT(acme_dns_hook_run(&p, "remove", "example.test", "V", 0, err,
                                sizeof(err)), 0);

    /* a program that cannot start */
    c.hook = "/nonexistent/hook";
    CHECK_INT(acme_dns_hook_run(&p, "add", "example.test", "V", 1, err,
                                sizeof(err)), -1);
    CHECK(strstr(err, "cannot run /nonexistent/hook") != NULL);

    /* no runner */
    p.runner = NULL;
    CHECK_INT(acme_dns_hook_run(&p, "add", "example.test", "V", 1, err,
                                sizeof(err)), -1);

    unlink(ok);
    unlink(fail);
    unlink(hang);
    free(ok);
    free(fail);
    free(hang);
    unsetenv("ACME_UNIT_SECRET");
}


static int
stop_once_added(void *data)
{
    return strstr(((hook_log_t *) data)->log, "added by the hook") != NULL;
}

UNIT_TEST(dns_publish_through_hook)
{
    const acme_runner_t      runner = acme_runner_posix;
    acme_dns_publisher_t  p;
    acme_dns_conf_t       c;
    hook_log_t            l;
    acme_dns_server_t     dead;
    char                  err[ACME_ERRLEN], *h, *txt;

    h = script("echo \"$1 $2 $3\" >&2");
    CHECK(h != NULL);
    memset(&p, 0, sizeof(p));
    memset(&c, 0, sizeof(c));
    p.conf = &c;
    memset(&l, 0, sizeof(l));
    p.runner = &runner;
    p.data = &l;
    p.log = log_cb;
    c.hook = h;

    /* a check server that never answers: the propagation error names it
     * (one exchange with a short timeout, then the deadline) */
    snprintf(dead.host, sizeof(dead.host), "127.0.0.1");
    dead.port = 9;
    c.checks = &dead;
    c.n_checks = 1;
    c.check_timeout_ms = 100;
    p.timeout_ms = 100;
    CHECK_INT(acme_dns_publish(&p, "*.example.test", "tok.thumb", err,
                               sizeof(err)), -1);
    CHECK(strstr(err, "dns propagation: _acme-challenge.example.test TXT")
          == err);
    CHECK(strstr(err, "not visible on 127.0.0.1:9 after 100 ms") != NULL);
    txt = acme_dns01_txt_value("tok.thumb");
    CHECK(strstr(l.log, "dns hook: add example.test ") != NULL);
    CHECK(strstr(l.log, txt) != NULL);

    /* removal: the same TXT value, from the key authorization again */
    l.log[0] = '\0';
    CHECK_INT(acme_dns_unpublish(&p, "*.example.test", "tok.thumb", err,
                                 sizeof(err)), 0);
    CHECK(strstr(l.log, "dns hook: remove example.test ") != NULL);
    CHECK(strstr(l.log, txt) != NULL);
    free(txt);

    /* the host stops once the record is out, the propagation wait having
     * far to go: it gives up (no propagation timeout), the record can
     * still be removed */
    l.log[0] = '\0';
    p.stop = stop_once_added;
    c.check_timeout_ms = 3600 * 1000;
    CHECK_INT(acme_dns_publish(&p, "example.test", "tok.thumb", err,
                               sizeof(err)), -1);
    CHECK(strstr(err, "dns propagation: _acme-challenge.example.test TXT")
          == err);
    CHECK(strstr(err, "stopped (the server is shutting down)") != NULL);
    CHECK(strstr(err, "not visible") == NULL);
    CHECK_INT(acme_dns_unpublish(&p, "example.test", "tok.thumb", err,
                                 sizeof(err)), 0);
    CHECK(strstr(l.log, "dns hook: remove example.test ") != NULL);

    unlink(h);
    free(h);
}


/* dns_update / AcmeDNSUpdate values (acme_dns_update_conf, _load): the
 * parts checked, the zone normalised, the secret inline or from a file
 * (BIND key statement or bare base64); errors name the bad part, never
 * the secret. */
UNIT_TEST(dns_update_conf_values)
{
    char                    path[] = "/tmp/acme_unit_tsigXXXXXX";
    char                    err[ACME_ERRLEN];
    int                     fd;
    FILE                   *f;
    acme_dns_update_args_t  a;
    acme_dns_conf_t         c;
    static const char       secret[] = "c2VjcmV0c2VjcmV0c2VjcmV0";

    memset(&a, 0, sizeof(a));
    a.server = "[::1]:5353";
    a.key_name = "Acme-Key.";
    a.secret = secret;
    a.alg = "HMAC-SHA384";
    a.zone = "Example.TEST.";
    memset(&c, 0, sizeof(c));
    CHECK_INT(acme_dns_update_conf(&a, &c, err, sizeof(err)), 0);
    CHECK_STR(c.update.host, "::1");
    CHECK_INT(c.update.port, 5353);
    CHECK_STR(c.zone, "example.test");
    CHECK_STR(c.key.name, "acme-key");
    CHECK_STR(c.key.alg, "hmac-sha384");
    acme_tsig_key_clear(&c.key);

    /* no zone, default alg */
    a.alg = NULL;
    a.zone = NULL;
    a.server = "127.0.0.1";
    CHECK_INT(acme_dns_update_conf(&a, &c, err, sizeof(err)), 0);
    CHECK_STR(c.zone, "");
    CHECK_INT(c.update.port, 53);
    CHECK_STR(c.key.alg, "hmac-sha256");
    acme_tsig_key_clear(&c.key);

    a.server = "127.0.0.1:99999";
    CHECK_INT(acme_dns_update_conf(&a, &c, err, sizeof(err)), -1);
    CHECK(strstr(err, "'127.0.0.1:99999' is not a DNS server") != NULL);
    a.server = "127.0.0.1";

    a.alg = "hmac-md5";
    CHECK_INT(acme_dns_update_conf(&a, &c, err, sizeof(err)), -1);
    CHECK(strstr(err, "'hmac-md5'") != NULL);
    a.alg = NULL;

    a.zone = "bad zone";
    CHECK_INT(acme_dns_update_conf(&a, &c, err, sizeof(err)), -1);
    CHECK(strstr(err, "not a DNS zone name") != NULL);
    a.zone = ".";
    CHECK_INT(acme_dns_update_conf(&a, &c, err, sizeof(err)), -1);
    a.zone = NULL;

    a.key_name = "";
    CHECK_INT(acme_dns_update_conf(&a, &c, err, sizeof(err)), -1);
    CHECK(strstr(err, "key name") != NULL);
    a.key_name = "acme-key";

    a.secret = "s3cr3t*not+base64!!";
    CHECK_INT(acme_dns_update_conf(&a, &c, err, sizeof(err)), -1);
    CHECK(strstr(err, "TSIG key \"acme-key\"") != NULL);
    CHECK(strstr(err, "s3cr3t") == NULL);

    /* from a file: a BIND key statement, then the bare secret */
    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) {
        return;
    }
    f = fdopen(fd, "w");
    fprintf(f, "key \"acme-key\" {\n\talgorithm hmac-sha512;\n"
               "\tsecret \"%s\";\n};\n", secret);
    fclose(f);
    a.secret = path;
    a.secret_is_file = 1;
    CHECK_INT(acme_dns_update_conf_load(&a, &c, err, sizeof(err)), 0);
    CHECK_STR(c.key.alg, "hmac-sha512");
    acme_tsig_key_clear(&c.key);

    a.key_name = "other";
    CHECK_INT(acme_dns_update_conf_load(&a, &c, err, sizeof(err)), -1);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, secret) == NULL);
    a.key_name = "acme-key";

    f = fopen(path, "w");
    fprintf(f, "  %s\n", secret);
    fclose(f);
    CHECK_INT(acme_dns_update_conf_load(&a, &c, err, sizeof(err)), 0);
    CHECK_STR(c.key.name, "acme-key");
    acme_tsig_key_clear(&c.key);

    unlink(path);
    CHECK_INT(acme_dns_update_conf_load(&a, &c, err, sizeof(err)), -1);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "TSIG key \"acme-key\"") != NULL);
}


/* dns_hook / AcmeDNSHook: an absolute path of an executable regular file. */
UNIT_TEST(dns_hook_check_program)
{
    char   path[] = "/tmp/acme_unit_hookchkXXXXXX";
    char   err[ACME_ERRLEN];
    int    fd;

    CHECK_INT(acme_run_check("bin/hook", err, sizeof(err)), -1);
    CHECK(strstr(err, "not an absolute path") != NULL);
    CHECK_INT(acme_run_check("/tmp", err, sizeof(err)), -1);
    CHECK(strstr(err, "not an executable file") != NULL);
    CHECK_INT(acme_run_check("/nonexistent/hook", err, sizeof(err)), -1);
    CHECK(strstr(err, "not an executable file") != NULL);

    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) {
        return;
    }
    close(fd);
    CHECK(chmod(path, 0600) == 0);
    CHECK_INT(acme_run_check(path, err, sizeof(err)), -1);
    CHECK(chmod(path, 0700) == 0);
    CHECK_INT(acme_run_check(path, err, sizeof(err)), 0);
    unlink(path);
}


/* The rest of the dns-01 settings (acme_dns_conf_t): the check list, the
 * bounds of the hook and propagation timeouts, which both servers apply,
 * and the one clear function. */
UNIT_TEST(dns_conf_checks_timeouts)
{
    acme_dns_conf_t  c;
    char             err[ACME_ERRLEN];

    memset(&c, 0, sizeof(c));
    CHECK_INT(acme_dns_conf_used(&c), 0);
    CHECK_INT(acme_dns_conf_add_check(&c, "127.0.0.1:5353", 14, err,
                                      sizeof(err)), 0);
    CHECK_INT(acme_dns_conf_add_check(&c, "[::1]:53", 8, err, sizeof(err)),
              0);
    CHECK_INT(acme_dns_conf_add_check(&c, "1.2.3.4:0", 9, err, sizeof(err)),
              -1);
    CHECK(strstr(err, "'1.2.3.4:0' is not a DNS server") != NULL);
    CHECK_INT((int) c.n_checks, 2);
    CHECK_STR(c.checks[0].host, "127.0.0.1");
    CHECK_INT(c.checks[0].port, 5353);
    CHECK_STR(c.checks[1].host, "::1");

    CHECK_INT(acme_dns_conf_timeout(1000, err, sizeof(err)), 0);
    CHECK_INT(acme_dns_conf_timeout(3600000, err, sizeof(err)), 0);
    CHECK_INT(acme_dns_conf_timeout(999, err, sizeof(err)), -1);
    CHECK_STR(err, "must be between 1s and 3600s");
    CHECK_INT(acme_dns_conf_timeout(3600001, err, sizeof(err)), -1);
    CHECK_INT(acme_dns_conf_timeout(0, err, sizeof(err)), -1);

    c.hook = "/bin/true";
    CHECK_INT(acme_dns_conf_used(&c), 1);
    acme_dns_conf_clear(&c);
    CHECK(c.checks == NULL && c.n_checks == 0 && c.hook == NULL);
    snprintf(c.update.host, sizeof(c.update.host), "127.0.0.1");
    CHECK_INT(acme_dns_conf_used(&c), 1);
    acme_dns_conf_clear(&c);
}
