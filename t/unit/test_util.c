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
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18T12:06:40.123+01:00"), 1795000000);
    CHECK_INT(acme_time_parse_rfc3339("Wed, 18 Nov 2026 11:06:40 GMT"), 1795000000);
    CHECK_INT(acme_time_parse_rfc3339("garbage"), -1);
    CHECK_INT(acme_time_parse_rfc3339("2026-11-18T11:06:40"), -1);
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
