/* amoo.c -- AMOO's kernels (cmadam_amoo.h): instantiates amoo_impl.h for float and double, for
 * the baseline instruction set and, on x86-64, for AVX2 (same IEEE operations in the same order,
 * no FMA, so both builds give the same bits; cm_exec_config.baseline_only forces the baseline),
 * and PAMOO's small dense weight ascent. The gemv calls go to OpenBLAS (scipy-openblas32, whose
 * symbols carry a prefix, as in blas.c). */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmadam_amoo.h"
#include "internal.h"

#ifndef CM_BLAS_PREFIX
#define CM_BLAS_PREFIX scipy_
#endif
#define CM_BLAS(name) CM_CAT(CM_BLAS_PREFIX, name)

/* The CBLAS declarations used here (enum values as in cblas.h). */
enum { CM_CBLAS_ROW_MAJOR = 101, CM_CBLAS_NO_TRANS = 111, CM_CBLAS_TRANS = 112 };
void CM_BLAS(cblas_sgemv)(int order, int trans, int m, int n, float alpha, const float *a,
                          int lda, const float *x, int incx, float beta, float *y, int incy);
void CM_BLAS(cblas_dgemv)(int order, int trans, int m, int n, double alpha, const double *a,
                          int lda, const double *x, int incx, double beta, double *y, int incy);

/* ------------------------------------------------------------------ the counter-based generator */
#define AMOO_GOLDEN 0x9E3779B97F4A7C15ull

static inline uint64_t amoo_mix64(uint64_t x)
{
    x += AMOO_GOLDEN;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline uint64_t amoo_probe_key(uint64_t seed, uint64_t step, uint64_t probe)
{
    return amoo_mix64(amoo_mix64(amoo_mix64(seed) ^ step) ^ probe);
}

/* ------------------------------------------------------------------ fixed-block reductions
 * n elements are cut into amoo_n_blocks(n) contiguous blocks (a function of n only); each block
 * is summed in order in double, then the blocks in order: the same sum for any thread count. */
#define AMOO_MAX_BLOCKS 64
#define AMOO_BLOCK_MIN 8192
/* Columns per tile of the fused pass (a multiple of 8). Large enough that each row of A is read
 * in long runs (32 KiB of floats, so the prefetchers keep up), small enough that the tile of x, v
 * and log q stays in L2. */
#define AMOO_TILE 8192

static size_t amoo_n_blocks(size_t n)
{
    size_t nb = (n + AMOO_BLOCK_MIN - 1) / AMOO_BLOCK_MIN;
    if (nb < 1) nb = 1;
    if (nb > AMOO_MAX_BLOCKS) nb = AMOO_MAX_BLOCKS;
    return nb;
}

static size_t amoo_block_start(size_t n, size_t nb, size_t b)
{
    return (n / nb) * b + ((n % nb) * b) / nb; /* n * b / nb without overflow */
}

/* Four double accumulators (a GNU vector: one AVX register, two SSE ones), half the 8 lanes of
 * one row's dot in the fused pass, so that the accumulation chains stay in registers. */
typedef double amoo_d4 __attribute__((vector_size(4 * sizeof(double))));

/* What the fused pass does with x before the products (see amoo_fused). */
enum amoo_x_mode {
    AMOO_X_GIVEN = 0,  /* x is used as it is */
    AMOO_X_EXP = 1,    /* x_j = exp(c lq_j - eta v_j - shift) from the v on entry */
    AMOO_X_EXP_LOG = 2 /* the same, and lq_j = c lq_j - eta v_j - shift */
};

/* ------------------------------------------------------------------ the float exponential
 * PU's float exponential (cmadam_amoo.h gives its error). libm's expf is a call per element,
 * which keeps the loops around it scalar; this is plain float arithmetic, which the compiler
 * vectorises, 8 lanes to an AVX register:
 *   x is clamped to [-104, 89]: exp(-104) < FLT_TRUE_MIN / 2 rounds to 0 and exp(89) > FLT_MAX
 *   to +Inf as they should (NaN passes: both comparisons are false);
 *   n = x log2(e) rounded to an integer (adding and subtracting 1.5 * 2^23 rounds to nearest);
 *   r = x - n ln 2 (Cody and Waite: n ln2_hi is exact, ln2_hi having 15 significant bits and
 *   |n| <= 151, and so is x - n ln2_hi; ln2_lo = ln 2 - ln2_hi rounded), |r| <= ln 2 / 2 + 2^-17;
 *   e^r = 1 + (r + r^2 q(r)), q of degree 4 fitted to the relative error (Lawson's method; the
 *   float coefficients leave 2^-27.9 of it);
 *   2^n as 2^floor(n/2) 2^(n - floor(n/2)), both normal floats built from their exponent bits:
 *   the first product is exact, the second rounds once, also where the result is subnormal or
 *   overflows.
 * Plain multiplications and additions (no FMA, -ffp-contract=off) and integer operations only,
 * so every instruction set gives the same bits. */
#define AMOO_SHIFTER 0x1.8p23f /* adding it rounds |y| < 2^22 to an integer, kept in its bits */

/* c ? a : b as a select on the bits: the comparison giving c is then evaluated unconditionally,
 * which keeps the loop vectorisable (GCC 12 does not if-convert a ?: on a float comparison
 * under -ftrapping-math, the default, as such a comparison may trap). */
static inline float amoo_select(int c, float a, float b)
{
    uint32_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    const uint32_t mask = 0u - (uint32_t)c, r = (ua & mask) | (ub & ~mask);
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

static inline float amoo_expf(float x)
{
    const float xc = amoo_select(x > 89.0f, 89.0f, amoo_select(x < -104.0f, -104.0f, x));
    const float kf = xc * 0x1.715476p+0f + AMOO_SHIFTER; /* x log2(e) + shifter */
    const float n = kf - AMOO_SHIFTER;
    const float r = (xc - n * 0x1.62e4p-1f) - n * 0x1.7f7d1cp-20f; /* x - n ln2_hi - n ln2_lo */
    float q = 0x1.6a2430p-10f;
    q = q * r + 0x1.1239e4p-7f;
    q = q * r + 0x1.5558f2p-5f;
    q = q * r + 0x1.555492p-3f;
    q = q * r + 0x1.fffffcp-2f;
    const float p = 1.0f + (r + (r * r) * q);
    /* the low bits of kf hold n + bits(shifter) (mod 2^32); u = n + 256 >= 0, so u / 2 - 128 =
     * floor(n / 2) without shifting a negative number */
    uint32_t kbits, shifter_bits;
    const float shifter = AMOO_SHIFTER;
    memcpy(&kbits, &kf, sizeof kbits);
    memcpy(&shifter_bits, &shifter, sizeof shifter_bits);
    const uint32_t u = kbits - shifter_bits + 256u, half = (u >> 1) - 128u;
    const uint32_t e1 = (half + 127u) << 23, e2 = (u - 256u - half + 127u) << 23;
    float s1, s2;
    memcpy(&s1, &e1, sizeof s1);
    memcpy(&s2, &e2, sizeof s2);
    return (p * s1) * s2;
}

/* The exponential PU uses: amoo_expf for float, libm's exp for double. */
#define AMOO_EXP(x) _Generic((x), float: amoo_expf, default: exp)(x)

/* ------------------------------------------------------------------ the typed kernels */
#define CM_IMPL_HEADER "amoo_impl.h"
#include "instantiate.h"

/* ------------------------------------------------------------------ public entry points */
void cm_hutchinson_config_default(cm_hutchinson_config *cfg)
{
    if (!cfg) return;
    cfg->beta = 0.99;
    cfg->transform = CM_HUTCH_SIGNED;
    cfg->clip_min = 0.0;
}

void cm_pu_config_default(cm_pu_config *cfg)
{
    if (!cfg) return;
    cfg->tau = 0.01;
    cfg->eta = 0.0;
    cfg->iters = 100;
    cfg->w_min = 0.0;
    cfg->tol = 0.0;
    cfg->warm_start = 0;
    cfg->matvec = CM_PU_FUSED;
}

void cm_pamoo_config_default(cm_pamoo_config *cfg)
{
    if (!cfg) return;
    cfg->lr = 3e-3;
    cfg->iters = 1000;
    cfg->w_min = 1e-6;
}

size_t cm_pu_work_size(size_t m, size_t d) { return 4 * m + 3 * d; }

#define CM_AMOO_KERNELS(T, SUF)                                                                \
    CM_DISPATCH(CM_CAT(cm_rademacher_, SUF),                                                   \
                (const cm_exec_config *exec, uint64_t seed, uint64_t step, uint64_t probe,     \
                 size_t n, T *z),                                                              \
                (exec, seed, step, probe, n, z))                                               \
    CM_DISPATCH(CM_CAT(cm_hutchinson_accumulate_, SUF),                                        \
                (const cm_exec_config *exec, size_t rows, size_t n, const T *z, const T *hz,   \
                 T *acc),                                                                      \
                (exec, rows, n, z, hz, acc))                                                   \
    CM_DISPATCH(CM_CAT(cm_hutchinson_update_, SUF),                                            \
                (const cm_hutchinson_config *cfg, const cm_exec_config *exec, int64_t step,    \
                 int64_t n_samples, size_t n, const T *acc, T *ema, T *out),                   \
                (cfg, exec, step, n_samples, n, acc, ema, out))                                \
    CM_DISPATCH(CM_CAT(cm_pu_solve_, SUF),                                                     \
                (const cm_pu_config *cfg, const cm_exec_config *exec, size_t m, size_t d,      \
                 const T *a, T *w, T *q, T *work, cm_pu_result *result),                       \
                (cfg, exec, m, d, a, w, q, work, result))                                      \
    CM_DISPATCH(CM_CAT(cm_pu_exp_, SUF),                                                       \
                (const cm_exec_config *exec, size_t n, const T *x, T *y), (exec, n, x, y))

CM_AMOO_KERNELS(float, f32)
CM_AMOO_KERNELS(double, f64)

/* PAMOO: m is the number of objectives (small), so plain serial loops in the element type. */
#define CM_DEFINE_PAMOO(SUF, REAL)                                                             \
    int CM_CAT(cm_pamoo_weights_, SUF)(const cm_pamoo_config *cfg, size_t m, const REAL *a,     \
                                       const REAL *f, REAL *w, REAL *work)                     \
    {                                                                                          \
        if (!cfg || !a || !f || !w || !work) return CM_ERR_NULL;                               \
        if (!(cfg->lr > 0.0) || !isfinite(cfg->lr) || cfg->iters < 0 || !cm_nonneg(cfg->w_min)) \
            return CM_ERR_HYPER;                                                               \
        const REAL lr = (REAL)cfg->lr, floor_ = (REAL)cfg->w_min, two = (REAL)2;               \
        for (int64_t it = 0; it < cfg->iters; it++) {                                          \
            for (size_t i = 0; i < m; i++) {                                                   \
                REAL g = 0;                                                                    \
                for (size_t j = 0; j < m; j++) g = g + a[i * m + j] * w[j];                    \
                work[i] = g;                                                                   \
            }                                                                                  \
            for (size_t i = 0; i < m; i++) {                                                   \
                const REAL x = w[i] + lr * (two * f[i] - two * work[i]);                       \
                w[i] = x < floor_ ? floor_ : x;                                                \
            }                                                                                  \
        }                                                                                      \
        return CM_OK;                                                                          \
    }

CM_DEFINE_PAMOO(f32, float)
CM_DEFINE_PAMOO(f64, double)
