/* harness.h -- a minimal, header-only test harness for the cmadam C tests.
 *
 *   CHECK(expr)             counts a pass if expr is true, else prints the expression and
 *                           file:line and counts a failure;
 *   CHECKF(expr, fmt, ...)  the same, and on failure also prints a printf-style message;
 *   CHECK_INT_EQ(a, b)      integer equality, printing both values on failure;
 *   th_summary()            prints the final "N passed, N failed" line and returns the exit
 *                           status for main (0 when nothing failed).
 *
 * Everything goes to stdout so that failures and the summary keep their order; the summary is
 * always the last line the program prints.
 */
#ifndef CMADAM_TEST_HARNESS_H
#define CMADAM_TEST_HARNESS_H

#include <stdio.h>

static long th_passed = 0;
static long th_failed = 0;

static inline int th_record(int ok, const char *expr, const char *file, int line)
{
    if (ok) {
        th_passed++;
    } else {
        th_failed++;
        printf("FAIL %s:%d: %s\n", file, line, expr);
        fflush(stdout);
    }
    return ok;
}

#define CHECK(expr) ((void)th_record(!!(expr), #expr, __FILE__, __LINE__))

/* The format string is the first of the variadic arguments, so CHECKF(e, "text") is valid C11. */
#define CHECKF(expr, ...)                                                                      \
    do {                                                                                       \
        if (!th_record(!!(expr), #expr, __FILE__, __LINE__)) {                                 \
            printf("     ");                                                                   \
            printf(__VA_ARGS__);                                                               \
            printf("\n");                                                                      \
            fflush(stdout);                                                                    \
        }                                                                                      \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                     \
    do {                                                                                       \
        long long th_a_ = (long long)(a), th_b_ = (long long)(b);                              \
        CHECKF(th_a_ == th_b_, "%s = %lld, %s = %lld", #a, th_a_, #b, th_b_);                  \
    } while (0)

static inline int th_summary(void)
{
    printf("%ld passed, %ld failed\n", th_passed, th_failed);
    fflush(stdout);
    return th_failed ? 1 : 0;
}

#endif /* CMADAM_TEST_HARNESS_H */
