/*
 * Events (acme_event.h): which event for which transition, the hourly and
 * daily limits, the program's argv and environment, the bounded queue, and
 * one run through the posix runner (acme_event_run.h).
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "acme_event.h"
#include "acme_event_run.h"
#include "acme_issuer.h"

UNIT_TEST(event_issued_renewed)
{
    acme_event_track_t t;

    memset(&t, 0, sizeof(t));
    CHECK_STR(acme_event_issued(&t, 0), "issued");
    CHECK_STR(acme_event_issued(&t, 1), "renewed");
    CHECK_STR(acme_event_revoked(&t), "revoked");
}

UNIT_TEST(event_failed_hourly)
{
    acme_event_track_t t;
    long long          now = 1700000000;

    memset(&t, 0, sizeof(t));
    CHECK_INT(acme_event_failed(&t, now), 1);
    CHECK_INT(acme_event_failed(&t, now + 10), 0);
    CHECK_INT(acme_event_failed(&t, now + 3599), 0);
    CHECK_INT(acme_event_failed(&t, now + 3600), 1);
    CHECK_INT(acme_event_failed(&t, now + 3700), 0);
    /* a success starts over: the next failure is told at once */
    acme_event_issued(&t, 1);
    CHECK_INT(acme_event_failed(&t, now + 3710), 1);
    /* a clock set back does not silence it for ever */
    CHECK_INT(acme_event_failed(&t, now - 100000), 1);
}

UNIT_TEST(event_expiring_daily)
{
    acme_event_track_t t;
    long long          nb = 1700000000, na = nb + 100 * 86400, now;

    memset(&t, 0, sizeof(t));
    /* no certificate, or outside the window (the last 10 %: 10 days) */
    CHECK_INT(acme_event_expiring(&t, 0, 0, 0, nb), 0);
    CHECK_INT(acme_event_expiring(&t, nb, na, 0, na - 11 * 86400), 0);
    now = na - 9 * 86400;
    CHECK_INT(acme_event_expiring(&t, nb, na, 0, now), 1);
    CHECK_INT(acme_event_expiring(&t, nb, na, 0, now + 3600), 0);
    CHECK_INT(acme_event_expiring(&t, nb, na, 0, now + 86399), 0);
    CHECK_INT(acme_event_expiring(&t, nb, na, 0, now + 86400), 1);
    /* a configured window: 30 days */
    memset(&t, 0, sizeof(t));
    CHECK_INT(acme_event_expiring(&t, nb, na, 30 * 86400,
                                  na - 29 * 86400), 1);
    /* renewed: the new certificate is not expiring, the old mark goes */
    acme_event_issued(&t, 1);
    CHECK_INT(t.expiring_at, 0);
    CHECK_INT(acme_event_expiring(&t, na - 20 * 86400, na + 80 * 86400, 0,
                                  na - 19 * 86400), 0);
}

UNIT_TEST(event_command_argv_env)
{
    static acme_event_t ev;
    const char         *names[] = { "a.example.test", "b.example.test" };
    char               *argv[8], envbuf[ACME_EVENT_ENV_LEN];
    char               *envp[ACME_EVENT_ENVP_MAX];

    acme_event_make(&ev, "/usr/local/bin/ev", 0, "renewed",
                    "a.example.test_ecdsa-256", names, 2, "pebble",
                    "https://ca/dir", "0aff", 1700000000LL, NULL);
    CHECK_INT(ev.timeout_ms, ACME_EVENT_TIMEOUT_MS);
    acme_event_command(&ev, argv, envbuf, envp);
    CHECK_STR(argv[0], "/usr/local/bin/ev");
    CHECK_STR(argv[1], "renewed");
    CHECK_STR(argv[2], "a.example.test_ecdsa-256");
    CHECK_STR(argv[3], "a.example.test");
    CHECK_STR(argv[4], "b.example.test");
    CHECK(argv[5] == NULL);
    CHECK_STR(envp[0], ACME_PROGRAM_PATH);
    CHECK_STR(envp[1], "ACME_EVENT=renewed");
    CHECK_STR(envp[2], "ACME_ID=a.example.test_ecdsa-256");
    CHECK_STR(envp[3], "ACME_NAMES=a.example.test b.example.test");
    CHECK_STR(envp[4], "ACME_SERIAL=0aff");
    CHECK_STR(envp[5], "ACME_NOT_AFTER=2023-11-14T22:13:20Z");
    CHECK_STR(envp[6], "ACME_ISSUER=pebble");
    CHECK_STR(envp[7], "ACME_DIRECTORY=https://ca/dir");
    CHECK_STR(envp[8], "ACME_LAST_ERROR=");
    CHECK(envp[9] == NULL);
}

UNIT_TEST(event_queue_bounded)
{
    static acme_event_queue_t q;
    static acme_event_t       ev, out;
    int                       i;

    memset(&q, 0, sizeof(q));
    for (i = 0; i < ACME_EVENT_QUEUE_MAX; i++) {
        acme_event_make(&ev, "/p", 0, "failed", "id", NULL, 0, NULL, NULL,
                        NULL, i, NULL);
        CHECK_INT(acme_event_queue_push(&q, &ev), 0);
    }
    CHECK_INT(acme_event_queue_push(&q, &ev), -1);
    CHECK_INT(acme_event_queue_pop(&q, &out), 1);
    CHECK_INT(out.not_after, 0);
    CHECK_INT(acme_event_queue_push(&q, &ev), 0);
    for (i = 1; i < ACME_EVENT_QUEUE_MAX; i++) {
        CHECK_INT(acme_event_queue_pop(&q, &out), 1);
        CHECK_INT(out.not_after, i);
    }
    CHECK_INT(acme_event_queue_pop(&q, &out), 1);
    CHECK_INT(acme_event_queue_pop(&q, &out), 0);
}

UNIT_TEST(event_issuer_inherit)
{
    acme_issuer_conf_t c;

    acme_issuer_init(&c);
    acme_issuer_events_inherit(&c, "/http/level", 5000, 86400);
    CHECK_STR(c.event_command, "/http/level");
    CHECK_INT(c.event_timeout_ms, 5000);
    CHECK_INT(c.expiry_warning, 86400);

    acme_issuer_init(&c);
    c.event_command = "/issuer";
    c.expiry_warning = 60;
    acme_issuer_events_inherit(&c, "/http/level", 5000, 86400);
    CHECK_STR(c.event_command, "/issuer");
    CHECK_INT(c.event_timeout_ms, 0);
    CHECK_INT(c.expiry_warning, 60);
}

typedef struct {
    char  log[1024];
} ev_log_t;

static void
ev_log(void *data, int level, const char *msg)
{
    ev_log_t *l = data;
    size_t    n = strlen(l->log);

    snprintf(l->log + n, sizeof(l->log) - n, "%d|%s\n", level, msg);
}

UNIT_TEST(event_run_program)
{
    static acme_event_t ev;
    const char         *names[] = { "a.example.test" };
    char                path[] = "/tmp/acme_unit_evXXXXXX", err[ACME_ERRLEN];
    acme_run_t          r;
    ev_log_t            l;
    FILE               *f;
    int                 fd;

    fd = mkstemp(path);
    CHECK(fd >= 0);
    f = fdopen(fd, "w");
    fprintf(f, "#!/bin/sh\necho \"$1 $2 $3 $ACME_SERIAL\" >&2\n"
               "[ \"$1\" = expiring ] && exec sleep 60\nexit 0\n");
    fclose(f);
    chmod(path, 0700);

    memset(&r, 0, sizeof(r));
    memset(&l, 0, sizeof(l));
    r.runner = &acme_runner_posix;
    r.data = &l;
    r.log = ev_log;
    acme_event_make(&ev, path, 0, "issued", "a_ecdsa-256", names, 1,
                    "pebble", "https://ca/dir", "01", 1700000000LL, NULL);
    CHECK_INT(acme_event_run(&r, &ev, err, sizeof(err)), 0);
    CHECK_STR(l.log, "2|event command: issued a_ecdsa-256 a.example.test "
                     "01\n");

    /* killed after its timeout */
    acme_event_make(&ev, path, 300, "expiring", "a_ecdsa-256", names, 1,
                    "pebble", "https://ca/dir", "01", 1700000000LL, NULL);
    CHECK_INT(acme_event_run(&r, &ev, err, sizeof(err)), -1);
    CHECK(strstr(err, "event command expiring a_ecdsa-256: ") == err);
    CHECK(strstr(err, "killed after 300 ms") != NULL);
    unlink(path);
}
