/*
 * cmadam_madam.h -- MAdam, metric-aware multi-objective Adam (Liu et al., arXiv 2606.03904), in
 * the C core.
 *
 * C objectives with gradients g_i, a preference lambda (C), per element:
 *   d     = sum_i lambda_i g_i                              the solver's direction
 *   F_ij <- beta2 F_ij + (1 - beta2) g_i g_j                EMAs of the cross-objective products
 *   C_lam = sum_ij lambda_i lambda_j F_ij / (1 - beta2^t)   preference-conditioned curvature
 *   M     = (1 - r) + r (sqrt(max(C_lam, 0)) + eps)          metric, rampup-blended with 1
 *   u     = d / M                                           whitened direction, fed to Adam
 * F is symmetric and stored packed: P = C (C + 1) / 2 arrays of n elements, back to back, pair
 * p = (i, j), i <= j, in row-major upper-triangle order
 *   (0,0), (0,1), ..., (0,C-1), (1,1), (1,2), ..., (C-1,C-1),   p(i, j) = i C - i (i - 1) / 2 + j - i.
 *
 * One kernel does a whole step in one pass over memory. Which F entries move, with which decay
 * and gain, and the weights that form C_lam are a per-step "plan" of P entries the caller
 * computes (madam/madam_opt.py: full pairs, or stochastic pair sampling with per-pair
 * counters; cm_madam_plan_full fills the full-pairs plan):
 *   pair_row_a[p], pair_row_b[p]  rows of `rows` whose product updates F_p this step, or both -1
 *                                 (F_p only read);
 *   pair_decay[p], pair_gain[p]   F_p = decay_p F_p + gain_p (g_a g_b) when F_p moves;
 *   pair_weight[p]                C_lam = sum_p weight_p F_p (the bias corrections, the factor 2
 *                                 of off-diagonal pairs and lambda_i lambda_j are folded in).
 * The full-pairs plan (every row present, rows[i] = g_i) is decay = beta2, gain = 1 - beta2,
 * weight = (2 - [i == j]) lambda_i lambda_j / (1 - beta2^t), which is the formula above.
 *
 * Per-element arithmetic of cm_madam_step, in this order (scalars computed in double, rounded
 * once to the element type; k = n_rows, g_r = rows[r * n + e]; bc1 = 1 - beta1^t,
 * bc2 = 1 - beta2^t with t = step):
 *   d   = direction[e]                                      when direction != NULL, else
 *   d   = w_0 * g_0;  d = d + w_r * g_r  (r = 1, ..., k-1)   (w_r = row_weight[r])
 *   c   = 0
 *   for p = 0, ..., P-1:
 *       if pair_row_a[p] >= 0:  F_p = decay_p * F_p + gain_p * (g_{row_a} * g_{row_b})
 *       c = c + weight_p * F_p
 *   c   = c < 0 ? 0 : c                      (NaN is kept)
 *   M   = (1 - r) + r * (sqrt(c) + eps)       (r = cfg->rampup; r = 1 gives sqrt(c) + eps exactly)
 *   u   = d / M
 *   p   = p * (1 - lr * weight_decay)         (decoupled, AdamW-style; only when weight_decay != 0)
 *   m   = beta1 * m + (1 - beta1) * u
 *   v   = beta2 * v + (1 - beta2) * (u * u)
 *   p   = p - (lr / bc1) * (m / (sqrt(v) / sqrt(bc2) + eps))
 * The last three lines are cm_adam_step (CM_ADAM) applied to u. The elements are processed in
 * tiles (d and c of a tile live in a small local buffer); each element's arithmetic does not
 * depend on the tiling, the thread count or the instruction set (results are bit-identical).
 */
#ifndef CMADAM_MADAM_H
#define CMADAM_MADAM_H

#include "cmadam.h"

#ifdef __cplusplus
extern "C" {
#endif

CM_API_BEGIN
/* CM_CDEF_BEGIN -- read by madam/_build_cmadam.py for CFFI; no preprocessor lines inside. */

typedef struct cm_madam_config {
    double lr;           /* >= 0 */
    double beta1;        /* [0, 1)  Adam's first moment (of u) */
    double beta2;        /* [0, 1)  Adam's second moment (of u); the F EMAs' decay is in the plan */
    double eps;          /* >= 0, in M and in Adam's denominator */
    double weight_decay; /* >= 0, decoupled */
    double rampup;       /* r in [0, 1]: M = (1 - r) + r (sqrt(C_lam) + eps) */
} cm_madam_config;

/* lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, rampup 1 (the pure metric). */
void cm_madam_config_default(cm_madam_config *cfg);

/* Number of packed pairs, C (C + 1) / 2, and the packed index of (i, j) (either order); -1 for
 * indices outside [0, C). */
int cm_madam_n_pairs(int n_obj);
int cm_madam_pair_index(int n_obj, int i, int j);

/* The full-pairs plan of step t >= 1 for C objectives with rows[i] = g_i: pair_row_a/b = (i, j),
 * decay = beta2, gain = 1 - beta2, weight = (2 - [i == j]) lambda_i lambda_j / (1 - beta2^t). */
int cm_madam_plan_full(int n_obj, double beta2, int64_t step, const double *lambda,
                       int *pair_row_a, int *pair_row_b, double *pair_decay, double *pair_gain,
                       double *pair_weight);

/* One MAdam step over n elements (see the header comment).
 *   rows       n_rows x n, row-major (gradients; may be NULL only when n_rows == 0);
 *   direction  n elements, or NULL: d = sum_r row_weight[r] rows[r] (then n_rows >= 1 and
 *              row_weight non-NULL);
 *   fisher     P x n (P = C (C + 1) / 2), updated in place;
 *   the plan   five arrays of P entries: row indices in [-1, n_rows), both -1 or both >= 0;
 *              decay in [0, 1], gain finite and >= 0, weight finite (any sign: affine weights
 *              such as IMTL-G's give a PSD metric too);
 *   exp_avg, exp_avg_sq  Adam's m and v of u, n elements each.
 * Status: CM_ERR_NULL (a required pointer), CM_ERR_HYPER (config or plan values),
 * CM_ERR_SIZE (n_obj outside [1, 4096], n_rows outside [0, C], a row index out of range),
 * CM_ERR_STEP (step < 1). On error nothing is written. n == 0 is a no-op. */
int cm_madam_step_f32(const cm_madam_config *cfg, const cm_exec_config *exec, int64_t step,
                      size_t n, int n_obj, int n_rows, float *param, const float *rows,
                      const float *direction, const double *row_weight, float *fisher,
                      const int *pair_row_a, const int *pair_row_b, const double *pair_decay,
                      const double *pair_gain, const double *pair_weight, float *exp_avg,
                      float *exp_avg_sq);
int cm_madam_step_f64(const cm_madam_config *cfg, const cm_exec_config *exec, int64_t step,
                      size_t n, int n_obj, int n_rows, double *param, const double *rows,
                      const double *direction, const double *row_weight, double *fisher,
                      const int *pair_row_a, const int *pair_row_b, const double *pair_decay,
                      const double *pair_gain, const double *pair_weight, double *exp_avg,
                      double *exp_avg_sq);

/* CM_CDEF_END */
CM_API_END

#ifdef __cplusplus
}
#endif

#endif /* CMADAM_MADAM_H */
