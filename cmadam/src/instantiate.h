/* instantiate.h -- compile a type-generic implementation header for float and for double.
 *
 * Define CM_IMPL_HEADER (the header's name, a string) and CM_ISA (the build's suffix: base, avx2,
 * avx512) and include this file, under the matching `#pragma GCC target` where CM_ISA is not
 * base. The header is included twice with
 *     REAL = float,  SQRT = sqrtf, SFX(name) = name_f32_<CM_ISA>
 *     REAL = double, SQRT = sqrt,  SFX(name) = name_f64_<CM_ISA>
 * so every static function it defines exists once per type and instruction set. CM_ISA is
 * undefined on return; CM_IMPL_HEADER is kept for the next instruction set. */
#if !defined(CM_IMPL_HEADER) || !defined(CM_ISA)
#error "define CM_IMPL_HEADER and CM_ISA before including instantiate.h"
#endif

#define REAL float
#define SQRT sqrtf
#define SFX(name) CM_CAT(CM_CAT(name, _f32_), CM_ISA)
#include CM_IMPL_HEADER
#undef SFX
#undef SQRT
#undef REAL

#define REAL double
#define SQRT sqrt
#define SFX(name) CM_CAT(CM_CAT(name, _f64_), CM_ISA)
#include CM_IMPL_HEADER
#undef SFX
#undef SQRT
#undef REAL

#undef CM_ISA
