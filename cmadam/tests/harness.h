/* harness.h -- a minimal, header-only test harness for the cmadam C tests.
 *
 *   CHECK(expr)             counts a pass if expr is true, else prints the expression and
 *                           file:line and counts a failure;
 *   CHECKF(expr, fmt, ...)  the same, and on failure also prints a printf-style message;
 *   CHECK_INT_EQ(a, b)      integer equality, printing both values on failure;
 *   th_summary()            prints the final "N passed, N failed" line and returns the exit
 *                           status for main (0 when nothing failed).
 *
 * and the helpers every test program shares (the one copy of each):
 *
 *   rng_t, rng_u64(r), rng_unif(r)   splitmix64: 64 random bits, a double uniform in [0, 1);
 *   xmalloc(bytes)                   malloc that exits with status 2 when out of memory;
 *   exec_with(threads, min_parallel, baseline)
 *                                    a cm_exec_config with those three fields set.
 *
 * Everything goes to stdout so that failures and the summary keep their order; the summary is
 * always the last line the program prints.
 */
#ifndef CMADAM_TEST_HARNESS_H
#define CMADAM_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmadam.h"

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

/* ------------------------------------------------------------------------ shared helpers */
typedef struct {
    uint64_t s;
} rng_t;

static inline uint64_t rng_u64(rng_t *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1): the top 53 bits */
static inline double rng_unif(rng_t *r)
{
    return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

static inline cm_exec_config exec_with(int threads, size_t min_parallel, int baseline)
{
    cm_exec_config e;
    cm_exec_config_default(&e);
    e.n_threads = threads;
    e.min_parallel_size = min_parallel;
    e.baseline_only = baseline;
    return e;
}

#endif /* CMADAM_TEST_HARNESS_H */
