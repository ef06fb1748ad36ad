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


/* Kernels are compiled once per instruction set by instantiate.h (the per-ISA build block):
 * _base always; on x86-64 with GCC/Clang (CM_HAVE_AVX2_BUILD) also _avx2, and _avx512 for files
 * that define CM_WITH_AVX512. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CM_HAVE_AVX2_BUILD 1
#endif

/* The build level to run, at most max_level: 1 baseline; 2 AVX2 (cm_simd_level(exec) == 2);
 * 3 AVX-512 where max_level >= 3, the AVX2 build is allowed and the CPU has AVX-512 F/VL/DQ/BW.
 * No cached flag: a static written on first use would be a data race between threads calling
 * in at once (CFFI drops the GIL); __builtin_cpu_supports only reads the CPU model that libgcc
 * filled in at load time. */
int cm_isa_level(const cm_exec_config *exec, int max_level);

/* The one dispatch scheme: CM_DISPATCH(name, (params), (args)) defines the public
 * `int name(params)`, which calls name_<isa>(args) for the level cm_isa_level(exec, CM_ISA_MAX)
 * (CM_ISA_MAX and CM_PICK come from instantiate.h). The parameter list must contain `exec`. */
#define CM_DISPATCH(name, params, args)                                                        \
    int name params                                                                            \
    {                                                                                          \
        const int cm_level_ = cm_isa_level(exec, CM_ISA_MAX);                                  \
        (void)cm_level_;                                                                       \
        return CM_PICK(name, args);                                                            \
    }

#endif
