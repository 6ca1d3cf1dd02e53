/*
 * A minimal unit-test harness for common/.  Tests register themselves:
 *
 *     UNIT_TEST(b64url_roundtrip) { CHECK(x == 1); CHECK_STR(a, "b"); }
 *
 * unit_tests --list      names, one per line
 * unit_tests NAME...     runs those
 * unit_tests             runs all; ends with "N passed, N failed"
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

typedef void (*unit_fn)(void);
void unit_register(const char *name, unit_fn fn);
extern int unit_failed_checks;

/* A fresh scratch directory below /tmp (malloc'd path; NULL on failure). */
char *unit_tmpdir(void);

#define UNIT_TEST(name)                                                     \
    static void unit_##name(void);                                          \
    __attribute__((constructor)) static void unit_reg_##name(void)          \
    { unit_register(#name, unit_##name); }                                  \
    static void unit_##name(void)

#define CHECK(cond)                                                         \
    do { if (!(cond)) { unit_failed_checks++;                               \
        fprintf(stderr, "  %s:%d: CHECK(%s) failed\n",                      \
                __FILE__, __LINE__, #cond); } } while (0)

#define CHECK_STR(a, b)                                                     \
    do { const char *a_ = (a), *b_ = (b);                                   \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {              \
            unit_failed_checks++;                                           \
            fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__,        \
                    __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); }    \
    } while (0)

#define CHECK_INT(a, b)                                                     \
    do { long long a_ = (long long) (a), b_ = (long long) (b);              \
        if (a_ != b_) { unit_failed_checks++;                               \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n",         \
                    __FILE__, __LINE__, #a, a_, b_); } } while (0)

#endif
