/* internal.h -- helpers shared by the cmadam sources; not part of the public API. */
#ifndef CMADAM_INTERNAL_H
#define CMADAM_INTERNAL_H

#include "cmadam.h"

/* Threads to use for a loop of n elements: 1 below the size threshold, else the configured
 * count (OpenMP's default when exec->n_threads <= 0). A NULL exec means the defaults. */
int cm_loop_threads(const cm_exec_config *exec, size_t n);

/* x in [0, 1) (NaN fails every comparison). */
static inline int cm_in_unit_interval(double x) { return x >= 0.0 && x < 1.0; }
/* 0 <= x <= 1e300: rejects negatives, NaN and +Inf. */
static inline int cm_nonneg(double x) { return x >= 0.0 && x <= 1.0e300; }

#define CM_CAT_(a, b) a##b
#define CM_CAT(a, b) CM_CAT_(a, b)


/* Kernels are compiled twice, for the baseline ISA (suffix _base) and, on x86-64, for AVX2
 * (suffix _avx2, under #pragma GCC target("avx2")); CM_DISPATCH(name, (params), (args))
 * defines the public `int name(params)`, which calls the AVX2 build when cm_simd_level(exec)
 * is 2. The parameter list must contain `exec`. See optim.c. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CM_HAVE_AVX2_BUILD 1
#define CM_DISPATCH(name, params, args)                                                        \
    int name params                                                                            \
    {                                                                                          \
        return cm_simd_level(exec) == 2 ? CM_CAT(name, _avx2) args : CM_CAT(name, _base) args; \
    }
#else
#define CM_DISPATCH(name, params, args)                                                        \
    int name params { return CM_CAT(name, _base) args; }
#endif

#endif
