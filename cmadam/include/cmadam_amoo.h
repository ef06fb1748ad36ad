/*
 * cmadam_amoo.h -- AMOO's kernels (aligned multi-objective optimisation, Efroni et al., OPT 2024
 * and ICML 2025): Rademacher probes, Hutchinson's diagonal-Hessian estimate, the predictive
 * update (PU) for the bilinear game that picks CAMOO's weights, and PAMOO's weight ascent.
 *
 * Argument rules are those of cmadam.h (a NULL exec means the defaults, required arrays must be
 * non-NULL even when a size is 0, a violated rule returns its status and changes nothing).
 *
 * ---------------------------------------------------------------------------- probes
 * A counter-based generator: the probe is a pure function of (seed, step, probe, index), so it is
 * reproducible and the same for any thread count or instruction set. With
 *   mix(x)  = SplitMix64's output function of x + 0x9E3779B97F4A7C15:
 *             x += 0x9E3779B97F4A7C15; x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
 *             x = (x ^ (x >> 27)) * 0x94D049BB133111EB; return x ^ (x >> 31)   (mod 2^64)
 *   key     = mix(mix(mix(seed) ^ step) ^ probe)
 *   word_k  = mix(key + k * 0x9E3779B97F4A7C15)      (SplitMix64's stream started at key)
 *   z_i     = +1 if bit (i mod 64) of word_(i div 64) is 0, else -1
 * The entries are exactly +1 or -1 (mean 0, each bit a fair coin).
 *
 * ---------------------------------------------------------------------------- Hutchinson
 * diag(H) = E[z * (H z)] for Rademacher z. The caller forms H z (an HVP, outside the library) for
 * probes k = 0 .. N-1 and accumulates acc += z * Hz (cm_hutchinson_accumulate, exact: z = +-1);
 * cm_hutchinson_update turns the sum into the estimate, optionally transformed, and its
 * bias-corrected EMA. Per element, step t >= 1, bc = 1 - beta^t:
 *   e   = acc / N
 *   e   = |e| (CM_HUTCH_ABS),  max(e, clip_min) (CM_HUTCH_CLIP),  e (CM_HUTCH_SIGNED, default)
 *   ema = beta * ema + (1 - beta) * e
 *   out = ema / bc
 * beta = 0 gives out = e (a fresh estimate each step, as the ICML code); ema may then be NULL.
 *
 * ---------------------------------------------------------------------------- PU
 * The game  max_{w in Delta_{m, w_min}} min_{q in Delta_d} w^T A q,  A (m x d) row-major, with
 * Delta_{m, w_min} = {w in the simplex, w_i >= w_min} (w_min = 0: the simplex). Writing
 * w = w_min + s p, s = 1 - m w_min, p in the simplex, it is the plain game in (p, q) with
 * A' = s A + w_min 1 (1^T A), so A' q = s (A q) + w_min sum(A q) and A'^T p = A^T w.
 * PU (Cen, Wei & Chi, NeurIPS 2021) on the entropy-regularised game
 * max_p min_q p^T A' q + tau H(p) - tau H(q), c = 1 - eta tau, in the log domain:
 *   u  = A' q,             v  = A^T w                     (two BLAS gemv)
 *   pb ~ exp(c log p + eta u),      qb ~ exp(c log q - eta v)        (extrapolation)
 *   ub = A' qb,            vb = A^T wb,   wb = w_min + s pb
 *   p  ~ exp(c log p + eta ub),     q  ~ exp(c log q - eta vb)       (update)
 * Every normalisation subtracts the maximum log first (max-shifted); q is kept as exp(log q - max)
 * during the loop and normalised once at the end. A q and A^T w are formed together:
 *   CM_PU_FUSED (default): one pass over A gives both (A read twice per iteration, not four
 *     times); the dots of A q are summed in double in a fixed order (8 lanes per block, blocks a
 *     function of d only), A^T w row by row in the element type; the exponentials of qb and q
 *     are formed in the same pass, tile by tile just before they are used, so they never go to
 *     memory (q is written once, at the end);
 *   CM_PU_BLAS: two OpenBLAS gemv calls (cblas_?gemv); OpenBLAS splits its sums by its own
 *     thread count, so the last bits can change with cm_blas_set_num_threads. For eta <= 1 / (tau + 2 max|A|) the iterates
 * converge linearly to the regularised equilibrium (KL shrinking by 1 - eta tau per iteration).
 * eta <= 0 in the config means exactly that bound, computed from A at each call.
 * Before each iteration the duality gap of the unregularised game at the current (w, q),
 *   gap = max_{w' in Delta_{m, w_min}} w'^T A q - min_j (A^T w)_j = max_i u_i - min_j v_j >= 0,
 * is known for free; the loop stops early when gap <= tol (tol = 0: never). The result holds the
 * gap and the value w^T A q at the returned (w, q), the step used and the iterations done.
 * Sums over the d entries of q are taken in double over fixed blocks (a function of d only), each
 * in 8 lanes (entry j of a block to lane j mod 8, in order of j; the lanes added as
 * ((0+1)+(2+3))+((4+5)+(6+7)), then the blocks in order), so with CM_PU_FUSED the results do not
 * depend on any thread count nor on the instruction set.
 * The exponential is libm's exp for double. For float it is PU's own, vectorised (libm's expf,
 * a call per element, kept those loops scalar): x = n ln 2 + r, |r| <= ln 2 / 2 (Cody-Waite),
 * e^r = 1 + (r + r^2 q(r)) with q a degree-4 polynomial fitted to the relative error, times 2^n
 * built from exponent bits; plain float operations without FMA, so every instruction set gives
 * the same bits. Its error is below 1 ulp: at most 0.977 ulp, and 99.2% of the results
 * correctly rounded, over every float in [-104, 89] (against exp in double); below -104 it is 0,
 * above 89 +Inf, NaN gives NaN. cm_pu_exp evaluates it.
 *
 * ---------------------------------------------------------------------------- PAMOO
 * Projected gradient ascent on 2 w^T f - w^T A w (A (m x m) row-major, symmetric), as the ICML
 * code: repeated iters times, with g = A w computed from the previous w (j in order),
 *   w_i = max(w_i + lr * ((2 * f_i) - (2 * g_i)), w_min)
 * work holds m elements.
 */
#ifndef CMADAM_AMOO_H
#define CMADAM_AMOO_H

#include "cmadam.h"

#ifdef __cplusplus
extern "C" {
#endif

CM_API_BEGIN
/* CM_CDEF_BEGIN -- read by madam/_build_cmadam.py for CFFI; no preprocessor lines inside. */

/* z (n) = the Rademacher probe (seed, step, probe), entries exactly +1 / -1. */
int cm_rademacher_f32(const cm_exec_config *exec, uint64_t seed, uint64_t step, uint64_t probe,
                      size_t n, float *z);
int cm_rademacher_f64(const cm_exec_config *exec, uint64_t seed, uint64_t step, uint64_t probe,
                      size_t n, double *z);

/* acc[r * n + i] += z[i] * hz[r * n + i] for r < rows, i < n (rows objectives share one probe).
 * rows == 0 or n == 0 is a no-op. */
int cm_hutchinson_accumulate_f32(const cm_exec_config *exec, size_t rows, size_t n,
                                 const float *z, const float *hz, float *acc);
int cm_hutchinson_accumulate_f64(const cm_exec_config *exec, size_t rows, size_t n,
                                 const double *z, const double *hz, double *acc);

enum cm_hutchinson_transform { CM_HUTCH_SIGNED = 0, CM_HUTCH_ABS = 1, CM_HUTCH_CLIP = 2 };

typedef struct cm_hutchinson_config {
    double beta;     /* EMA rate in [0, 1); 0: no averaging */
    int transform;   /* enum cm_hutchinson_transform */
    double clip_min; /* floor for CM_HUTCH_CLIP (finite) */
} cm_hutchinson_config;

/* beta 0.99 (seed 002), CM_HUTCH_SIGNED, clip_min 0. */
void cm_hutchinson_config_default(cm_hutchinson_config *cfg);

/* out (n) = the estimate from acc (n, the sum over n_samples >= 1 probes), and its EMA in ema
 * (n, updated in place; NULL allowed when beta == 0). out may alias acc. */
int cm_hutchinson_update_f32(const cm_hutchinson_config *cfg, const cm_exec_config *exec,
                             int64_t step, int64_t n_samples, size_t n, const float *acc,
                             float *ema, float *out);
int cm_hutchinson_update_f64(const cm_hutchinson_config *cfg, const cm_exec_config *exec,
                             int64_t step, int64_t n_samples, size_t n, const double *acc,
                             double *ema, double *out);

enum cm_pu_matvec { CM_PU_FUSED = 0, CM_PU_BLAS = 1 };

typedef struct cm_pu_config {
    double tau;     /* entropy regularisation, finite, >= 0 */
    double eta;     /* finite step > 0; <= 0 (default) means 1 / (tau + 2 max|A|) */
    int64_t iters;  /* iterations, >= 0 */
    double w_min;   /* floor on w, 0 <= w_min and m * w_min <= 1 */
    double tol;     /* stop when the gap is <= tol before an iteration; >= 0 (0: never) */
    int warm_start; /* 0: start from uniform w and q; 1: from the w and q passed in (each
                       non-negative and finite with a positive sum; they are normalised, and
                       entries of w at the floor start at the smallest positive weight) */
    int matvec;     /* enum cm_pu_matvec: how A q and A^T w are formed (see above) */
} cm_pu_config;

/* tau 0.01, eta 0 (the bound), iters 100, w_min 0, tol 0, warm_start 0, CM_PU_FUSED. */
void cm_pu_config_default(cm_pu_config *cfg);

typedef struct cm_pu_result {
    double gap;         /* duality gap of the unregularised game at the returned (w, q) */
    double value;       /* w^T A q */
    double eta;         /* the step used */
    int64_t iters_used; /* iterations done (< iters when the tolerance stopped the loop) */
} cm_pu_result;

/* Elements of the work array cm_pu_solve needs: 4 m + 3 d. */
size_t cm_pu_work_size(size_t m, size_t d);

/* Solves the game above; w (m) and q (d) are the start (warm_start) and receive the result.
 * A must be finite (checked only when eta is derived from it). CM_ERR_SIZE when m or d is 0 or
 * the small internal buffer (m (blocks + 1) doubles) cannot be allocated, CM_ERR_BLAS when m or
 * d exceeds INT_MAX, CM_ERR_HYPER for a bad config or warm start, or when eta <= 0 and A holds a
 * non-finite value or tau = max|A| = 0. */
int cm_pu_solve_f32(const cm_pu_config *cfg, const cm_exec_config *exec, size_t m, size_t d,
                    const float *a, float *w, float *q, float *work, cm_pu_result *result);
int cm_pu_solve_f64(const cm_pu_config *cfg, const cm_exec_config *exec, size_t m, size_t d,
                    const double *a, double *w, double *q, double *work, cm_pu_result *result);

/* y_i = exp(x_i) for i < n, the exponential of cm_pu_solve (above: PU's own for float, libm's exp
 * for double); y may alias x. */
int cm_pu_exp_f32(const cm_exec_config *exec, size_t n, const float *x, float *y);
int cm_pu_exp_f64(const cm_exec_config *exec, size_t n, const double *x, double *y);

typedef struct cm_pamoo_config {
    double lr;      /* > 0, finite */
    int64_t iters;  /* >= 0 */
    double w_min;   /* finite, >= 0 */
} cm_pamoo_config;

/* lr 3e-3, iters 1000, w_min 1e-6 (the ICML code). */
void cm_pamoo_config_default(cm_pamoo_config *cfg);

/* w (m) updated in place from its current value (the warm start); a (m x m), f (m), work (m). */
int cm_pamoo_weights_f32(const cm_pamoo_config *cfg, size_t m, const float *a, const float *f,
                         float *w, float *work);
int cm_pamoo_weights_f64(const cm_pamoo_config *cfg, size_t m, const double *a, const double *f,
                         double *w, double *work);

/* CM_CDEF_END */
CM_API_END

#ifdef __cplusplus
}
#endif

#endif /* CMADAM_AMOO_H */
