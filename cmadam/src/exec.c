/* exec.c -- execution settings: threads and the size below which loops stay serial. */
#include "internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Below ~32k elements a parallel region costs more than the loop it splits. */
#define CM_DEFAULT_MIN_PARALLEL_SIZE ((size_t)32768)

void cm_exec_config_default(cm_exec_config *exec)
{
    if (!exec) return;
    exec->n_threads = 0;
    exec->min_parallel_size = CM_DEFAULT_MIN_PARALLEL_SIZE;
    exec->baseline_only = 0;
}

int cm_openmp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int cm_isa_level(const cm_exec_config *exec, int max_level)
{
#ifdef CM_HAVE_AVX2_BUILD
    if (max_level < 2 || (exec && exec->baseline_only) || !__builtin_cpu_supports("avx2")) return 1;
    if (max_level < 3) return 2;
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw")
               ? 3
               : 2;
#else
    (void)exec;
    (void)max_level;
    return 1;
#endif
}

/* The level of the kernels that have an AVX2 build (all of them), as the public API reports it. */
int cm_simd_level(const cm_exec_config *exec) { return cm_isa_level(exec, 2); }

int cm_loop_threads(const cm_exec_config *exec, size_t n)
{
    size_t threshold = exec ? exec->min_parallel_size : CM_DEFAULT_MIN_PARALLEL_SIZE;
    int wanted = exec ? exec->n_threads : 0;
    if (n < threshold || n < 2) return 1;
    if (wanted <= 0) wanted = cm_openmp_max_threads();
    return wanted < 1 ? 1 : wanted;
}

const char *cm_build_info(void)
{
    return "C" /* the standard is fixed by the build */
#ifdef _OPENMP
           " openmp"
#else
           " no-openmp"
#endif
#ifdef __OPTIMIZE__
           " optimized"
#endif
#ifdef __SSE2__
           " sse2"
#endif
#ifdef CM_HAVE_AVX2_BUILD
           " +avx2-dispatch"
#endif
#ifdef __SANITIZE_ADDRESS__
           " asan"
#endif
        ;
}

#ifndef CM_SOURCE_HASH
#define CM_SOURCE_HASH "unknown"
#endif

const char *cm_source_hash(void) { return CM_SOURCE_HASH; }
