#include <stdlib.h>
#include "unit.h"

#define UNIT_MAX 512

static struct { const char *name; unit_fn fn; } tests[UNIT_MAX];
static int n_tests;
int unit_failed_checks;

void
unit_register(const char *name, unit_fn fn)
{
    if (n_tests == UNIT_MAX) {
        fprintf(stderr, "too many unit tests\n");
        exit(2);
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

char *
unit_tmpdir(void)
{
    char *d = strdup("/tmp/acme-unit-XXXXXX");

    if (d == NULL || mkdtemp(d) == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

static int
run(int i)
{
    int before = unit_failed_checks;

    tests[i].fn();
    if (unit_failed_checks != before) {
        printf("FAIL %s\n", tests[i].name);
        return 0;
    }
    printf("ok   %s\n", tests[i].name);
    return 1;
}

int
main(int argc, char **argv)
{
    int i, j, passed = 0, failed = 0, found;

    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < n_tests; i++) {
            printf("%s\n", tests[i].name);
        }
        return 0;
    }

    for (i = 0; i < n_tests; i++) {
        if (argc > 1) {
            found = 0;
            for (j = 1; j < argc; j++) {
                if (strcmp(argv[j], tests[i].name) == 0) {
                    found = 1;
                }
            }
            if (!found) {
                continue;
            }
        }
        if (run(i)) {
            passed++;
        } else {
            failed++;
        }
    }

    if (argc > 1 && passed + failed != argc - 1) {
        fprintf(stderr, "unknown test name given\n");
        failed++;
    }

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
