/* instantiate_types.h -- compile a type-generic implementation header for float and for double,
 * for one instruction set. Included only by instantiate.h (the per-ISA block), once per ISA.
 *
 * With CM_IMPL_HEADER (the header's name, a string) and CM_ISA (the build's suffix: base, avx2,
 * avx512) defined, under the matching `#pragma GCC target`, the header is included twice with
 *     REAL = float,  SQRT = sqrtf, SFX(name) = name_f32_<CM_ISA>
 *     REAL = double, SQRT = sqrt,  SFX(name) = name_f64_<CM_ISA>
 * so every static function it defines exists once per type and instruction set. The header may
 * also use FABS, EXP, LOG (libm's functions of the type), REAL_TINY (its smallest normal number:
 * FLT_MIN or DBL_MIN, from <float.h>) and GEMV (cblas_sgemv or cblas_dgemv, for files that
 * include the BLAS declarations); they expand only where used. CM_ISA is undefined on return;
 * CM_IMPL_HEADER is kept for the next instruction set. */
#if !defined(CM_IMPL_HEADER) || !defined(CM_ISA)
#error "instantiate_types.h is included by instantiate.h"
#endif

#define REAL float
#define SQRT sqrtf
#define FABS fabsf
#define EXP expf
#define LOG logf
#define REAL_TINY FLT_MIN
#define GEMV cblas_sgemv
#define SFX(name) CM_CAT(CM_CAT(name, _f32_), CM_ISA)
#include CM_IMPL_HEADER
#undef SFX
#undef GEMV
#undef REAL_TINY
#undef LOG
#undef EXP
#undef FABS
#undef SQRT
#undef REAL

#define REAL double
#define SQRT sqrt
#define FABS fabs
#define EXP exp
#define LOG log
#define REAL_TINY DBL_MIN
#define GEMV cblas_dgemv
#define SFX(name) CM_CAT(CM_CAT(name, _f64_), CM_ISA)
#include CM_IMPL_HEADER
#undef SFX
#undef GEMV
#undef REAL_TINY
#undef LOG
#undef EXP
#undef FABS
#undef SQRT
#undef REAL

#undef CM_ISA
