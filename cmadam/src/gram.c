/* gram.c -- cm_gram_scan: the Gramian of J, its finiteness and max |J| in one read of J; and
 * cm_combine: the combination lam @ J of its rows (gram_impl.h, compiled per ISA by
 * instantiate.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef CM_HAVE_AVX2_BUILD
#include <immintrin.h> /* cvtps2pd of each width; _mm512_fmadd_pd for the AVX-512 float kernels */
#endif

/* Columns per block: the block of all rows fits in ~128 KiB (L2), at least 64 and a multiple
 * of 8. Parts: at most 64 (enough to spread over the cores), at most one per block, and their
 * partial Gramians (parts * rows^2 doubles) within 32 MiB. Both depend only on the shape and
 * the element size, never on threads, so the summation order (and the bits) is fixed. */
#define CM_GRAM_MAX_ROWS ((size_t)65536)

static void cm_gram_plan(size_t rows, size_t cols, size_t elem, size_t *block, size_t *parts)
{
    size_t b = ((size_t)128 * 1024) / (rows * elem);
    b -= b % 8;
    if (b < 64) b = 64;
    const size_t n_blocks = (cols + b - 1) / b;
    size_t p = 64;
    if (p > n_blocks) p = n_blocks;
    const size_t cap = ((size_t)32 * 1024 * 1024 / sizeof(double)) / (rows * rows + 2);
    if (p > cap) p = cap;
    if (p < 1) p = 1;
    *block = b;
    *parts = p;
}

/* GNU vectors of 8, 4 and 2 doubles (and of as many floats, loaded before they are widened):
 * a pair's 8 lanes (gram_impl.h) are one v8d in the AVX-512 build (a zmm register), two v4d in
 * the AVX2 one, four v2d in the baseline, each the build's native width. Every build does the
 * same lane-wise IEEE operations. */
typedef double cm_gram_v8d __attribute__((vector_size(8 * sizeof(double))));
typedef double cm_gram_v4d __attribute__((vector_size(4 * sizeof(double))));
typedef double cm_gram_v2d __attribute__((vector_size(2 * sizeof(double))));
typedef float cm_gram_v8f __attribute__((vector_size(8 * sizeof(float))));
typedef float cm_gram_v4f __attribute__((vector_size(4 * sizeof(float))));
typedef float cm_gram_v2f __attribute__((vector_size(2 * sizeof(float))));
#define CM_GRAM_MIN(k, m) ((k) < (m) ? (k) : (m))
/* Unrolls a loop of constant trip count completely, so that arrays of vectors indexed by its
 * counter stay in registers (without it GCC 12 keeps a tile's accumulators in memory). */
#if defined(__clang__)
#define CM_GRAM_UNROLL _Pragma("unroll")
#else
#define CM_GRAM_UNROLL _Pragma("GCC unroll 32")
#endif

/* From this many rows on, gram_impl.h prefetches the next block (see cm_gram_part). Float
 * blocks of at most CM_GRAM_WIDE_BLOCK columns (128 rows or more) are widened once into a
 * scratch of at most CM_GRAM_WIDE_MAX doubles (256 KiB) per thread. */
#define CM_GRAM_PREFETCH_ROWS 32
#define CM_GRAM_WIDE_BLOCK ((size_t)256)
#define CM_GRAM_WIDE_MAX ((size_t)32768)

/* Integer vectors of the same widths (bit masks, shuffle indices). */
typedef long long cm_gram_v8i __attribute__((vector_size(8 * sizeof(long long))));
typedef long long cm_gram_v4i __attribute__((vector_size(4 * sizeof(long long))));
typedef long long cm_gram_v2i __attribute__((vector_size(2 * sizeof(long long))));

/* Element shuffles of two vectors of n lanes (indices < 2 n: the second vector's from n on). */
#if defined(__clang__) || __GNUC__ >= 12
#define CM_GRAM_SHUF(n, a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
#else
#define CM_GRAM_SHUF(n, a, b, ...) __builtin_shuffle((a), (b), (cm_gram_v##n##i){__VA_ARGS__})
#endif

/* The pair sums of a block (gram_impl.h): the 8 lanes of each of n pairs combined as
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)), for n pairs at once (n the vector width),
 * into the n lanes of out. Each level adds two vectors whose lanes are lined up by shuffles,
 * the lower lanes always on the left:
 *   8 lanes (AVX-512), pairs p0 .. p7: level 1 adds the even lanes of two pairs to their odd
 *     lanes (l01, l23, l45, l67 of both), level 2 the l01 to the l23 and the l45 to the l67
 *     (in 128-bit halves), level 3 the l0123 to the l4567;
 *   4 lanes (AVX2), pairs p0 .. p3 of halves a = l0..3, b = l4..7: level 1 within the halves
 *     of two pairs, level 2 the l01 to the l23 of four pairs (in 128-bit halves) and the l45
 *     to the l67, level 3 the l0123 to the l4567;
 *   2 lanes (baseline), pairs p0, p1 of quarters q0 .. q3 (l01, l23, l45, l67): level 1 the
 *     two lanes of each quarter, for both pairs, then (l01 + l23) + (l45 + l67). */
#define CM_GRAM_LV1_8(a, b) (CM_GRAM_SHUF(8, a, b, 0, 8, 2, 10, 4, 12, 6, 14) + CM_GRAM_SHUF(8, a, b, 1, 9, 3, 11, 5, 13, 7, 15))
#define CM_GRAM_LV2_8(a, b) (CM_GRAM_SHUF(8, a, b, 0, 1, 4, 5, 8, 9, 12, 13) + CM_GRAM_SHUF(8, a, b, 2, 3, 6, 7, 10, 11, 14, 15))
#define CM_GRAM_REDUCE8(out, p0, p1, p2, p3, p4, p5, p6, p7)                                 \
    ((out) = CM_GRAM_LV2_8(CM_GRAM_LV2_8(CM_GRAM_LV1_8(p0, p1), CM_GRAM_LV1_8(p2, p3)),            \
                           CM_GRAM_LV2_8(CM_GRAM_LV1_8(p4, p5), CM_GRAM_LV1_8(p6, p7))))
#define CM_GRAM_LV1_4(a, b) (CM_GRAM_SHUF(4, a, b, 0, 4, 2, 6) + CM_GRAM_SHUF(4, a, b, 1, 5, 3, 7))
#define CM_GRAM_LV2_4(a, b) (CM_GRAM_SHUF(4, a, b, 0, 1, 4, 5) + CM_GRAM_SHUF(4, a, b, 2, 3, 6, 7))
#define CM_GRAM_REDUCE4(out, p0a, p0b, p1a, p1b, p2a, p2b, p3a, p3b)                         \
    ((out) = CM_GRAM_LV2_4(CM_GRAM_LV1_4(p0a, p1a), CM_GRAM_LV1_4(p2a, p3a)) +                  \
             CM_GRAM_LV2_4(CM_GRAM_LV1_4(p0b, p1b), CM_GRAM_LV1_4(p2b, p3b)))
#define CM_GRAM_LV1_2(a, b) (CM_GRAM_SHUF(2, a, b, 0, 2) + CM_GRAM_SHUF(2, a, b, 1, 3))
#define CM_GRAM_REDUCE2(out, p0q0, p0q1, p0q2, p0q3, p1q0, p1q1, p1q2, p1q3)                 \
    ((out) = (CM_GRAM_LV1_2(p0q0, p1q0) + CM_GRAM_LV1_2(p0q1, p1q1)) +                          \
             (CM_GRAM_LV1_2(p0q2, p1q2) + CM_GRAM_LV1_2(p0q3, p1q3)))

size_t cm_gram_scan_workspace(size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0 || rows > CM_GRAM_MAX_ROWS) return 0;
    /* the plan for float, which has the larger blocks and so never more parts than double */
    size_t block4, parts4, block8, parts8;
    cm_gram_plan(rows, cols, sizeof(float), &block4, &parts4);
    cm_gram_plan(rows, cols, sizeof(double), &block8, &parts8);
    const size_t parts = parts4 > parts8 ? parts4 : parts8;
    return parts * (rows * rows + 2);
}

#define CM_IMPL_HEADER "gram_impl.h"
#define CM_WITH_AVX512 1 /* AVX-512 (F, VL, DQ, BW) too: gram_impl.h's 4 x 6 tiles of zmm lanes */
#include "instantiate.h"

CM_DISPATCH(cm_gram_scan_f32,
            (const cm_exec_config *exec, size_t rows, size_t cols, const float *jac, double *gram,
             double *work, size_t work_size, int *all_finite, double *max_abs),
            (exec, rows, cols, jac, gram, work, work_size, all_finite, max_abs))
CM_DISPATCH(cm_gram_scan_f64,
            (const cm_exec_config *exec, size_t rows, size_t cols, const double *jac,
             double *gram, double *work, size_t work_size, int *all_finite, double *max_abs),
            (exec, rows, cols, jac, gram, work, work_size, all_finite, max_abs))
CM_DISPATCH(cm_combine_f32,
            (const cm_exec_config *exec, size_t rows, size_t cols, const double *lam,
             const float *jac, float *out),
            (exec, rows, cols, lam, jac, out))
CM_DISPATCH(cm_combine_f64,
            (const cm_exec_config *exec, size_t rows, size_t cols, const double *lam,
             const double *jac, double *out),
            (exec, rows, cols, lam, jac, out))
