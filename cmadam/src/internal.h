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

#endif
