/* instantiate.h -- the per-ISA build block: the one place that says which instruction sets the
 * kernels are compiled for and with which `#pragma GCC target`.
 *
 * Define CM_IMPL_HEADER (a type-generic implementation header, a string) and include this file
 * once per source file. The header is compiled, for float and for double (instantiate_types.h),
 *   - for the baseline instruction set (suffix _base), always;
 *   - for AVX2 (suffix _avx2), where CM_HAVE_AVX2_BUILD (internal.h: x86-64 with GCC/Clang);
 *   - for AVX-512 F/VL/DQ/BW (suffix _avx512), there too if the file defines CM_WITH_AVX512.
 * Every build does the same IEEE operations in the same order (-ffp-contract=off, and none of
 * the targets enables FMA), so every build gives the same bits. (A kernel may still call a fused
 * multiply-add explicitly where it provably rounds as the separate operations do: gram_impl.h's
 * float Gramian, whose products of widened floats are exact.)
 *
 * On return CM_ISA_MAX is the highest level compiled (1 base, 2 AVX2, 3 AVX-512) and
 * CM_PICK(name, args) calls the build of `name` for the level in the local `cm_level_`; both are
 * used by CM_DISPATCH (internal.h), the one way a public entry point selects its build. */
#if !defined(CM_IMPL_HEADER)
#error "define CM_IMPL_HEADER before including instantiate.h"
#endif
#ifdef CM_ISA_MAX
#error "instantiate.h is included once per source file"
#endif

#define CM_ISA base
#include "instantiate_types.h"

#ifdef CM_HAVE_AVX2_BUILD
#pragma GCC push_options
#pragma GCC target("avx2")
#define CM_ISA avx2
#include "instantiate_types.h"
#pragma GCC pop_options

#ifdef CM_WITH_AVX512
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw", "prefer-vector-width=512")
#define CM_ISA avx512
#include "instantiate_types.h"
#pragma GCC pop_options
#endif
#endif

#if !defined(CM_HAVE_AVX2_BUILD)
#define CM_ISA_MAX 1
#define CM_PICK(name, args) CM_CAT(name, _base) args
#elif !defined(CM_WITH_AVX512)
#define CM_ISA_MAX 2
#define CM_PICK(name, args) (cm_level_ == 2 ? CM_CAT(name, _avx2) args : CM_CAT(name, _base) args)
#else
#define CM_ISA_MAX 3
#define CM_PICK(name, args)                                                                    \
    (cm_level_ == 3   ? CM_CAT(name, _avx512) args                                             \
     : cm_level_ == 2 ? CM_CAT(name, _avx2) args                                               \
                      : CM_CAT(name, _base) args)
#endif
