/*
 * cmadam_mada.h -- MADA, the meta-adaptive optimiser (Ozkara et al., ICML 2024), in the C core.
 *
 * MADA interpolates Adam, AVGrad, Yogi, Adan and Lion through six coefficients
 * h = (beta1, beta2, beta3, rho, c, gamma) and learns them online by hypergradient descent
 * (Baydin et al.'s "one step back" rule: the hypergradient of step t + 1 is the gradient of
 * L(x_{t+1}) with respect to the coefficients used at step t, everything before step t held fixed).
 * The learning rate can be learned the same way (index CM_MADA_LR), which gives Adam-HD.
 *
 * A step t + 1 is three calls, made by the Python layer (madam/mada.py) in this order:
 *   1. cm_mada_hypergrad_*   dot_j = sum_i g_{t+1,i} du_{t,i}/dh_j over every array (a reduction);
 *   2. cm_mada_hyper_step    dL/dh_j = -lr_t dot_j (j < 6), -dot_6 (lr); clipped SGD step on the
 *                            coefficients and projection on their box;
 *   3. cm_mada_step_*        the update x_{t+2} = x_{t+1} - lr u_{t+1} with the new coefficients.
 * Call 1 recomputes du_t/dh from the optimiser state instead of storing six derivative arrays:
 * the state keeps v_{t-1} and g_{t-1} beside v_t and g_t (two-slot rings, so no extra writes),
 * and m_{t-1} - g_t = (m_t - g_t) / beta1, n_t + beta3 (n_{t-1} - D_t) = 2 n_t - D_t.
 * cm_mada_step_* can instead store the derivatives (derivs != NULL) for
 * cm_mada_hypergrad_stored_*; both ways give bit-identical dot products (docs/mada.md has the
 * measurements that chose the first as the default).
 *
 * The per-element arithmetic of cm_mada_step, in this order (sign(0) = 0; scalars in double,
 * rounded once to the element type; bc1 = 1 - beta1^t, bc2 = 1 - beta2^t):
 *   D    = 0 if t == 1 and first_diff == CM_MADA_DIFF_ZERO, else g - gp_in    (gp_in: g_{t-1},
 *          zero before step 1, so CM_MADA_DIFF_GRAD gives D_1 = g_1 as the released code)
 *   gh   = g + beta3 * D
 *   q    = gh * gh
 *   vp   = v_in
 *   s    = sign(q - vp)
 *   m    = beta1 * m + (1 - beta1) * g
 *   v    = av * vp + ((1 - beta2) * (c + (1 - c) * s)) * q,   av = beta2 + (1 - beta2)(1 - c)
 *          (= beta2 vp + (1 - beta2) gt2 with gt2 = c q + (1 - c)(vp + q s))
 *   np   = g * g if t == 1 and n_init == CM_MADA_N_GRAD_SQ (released code), else n
 *   n    = beta3 * np + (1 - beta3) * D
 *   mL   = lion_beta2 * mL + (1 - lion_beta2) * g
 *   uL   = lion_beta1 * mL + (1 - lion_beta1) * g
 *   vbar = (v + (t - 1) * vbar) / t
 *   W    = rho * v + (1 - rho) * vbar
 *   Dn   = sqrt(W) / sqrt(bc2) + eps
 *   p    = p - (gamma lr / bc1) * (m / Dn) - (gamma lr beta3) * (n / Dn)
 *            - (lr (1 - gamma)) * sign(uL)
 *   v_out = v;  gp_out = g (when gp_out != NULL)
 * i.e. p -= lr u with u = gamma (m / bc1 + beta3 n) / Dn + (1 - gamma) sign(uL). Written this
 * way, the vertices are bit for bit the standalone kernels of cmadam.h: (beta3, rho, c, gamma) =
 * (0, 1, 1, 1) is cm_adam_step (CM_ADAM), rho = 0 CM_AVGRAD, c = 0 cm_yogi_step (m and v started
 * at the accumulator), and gamma = 0 cm_lion_step with betas (lion_beta1 * lion_beta2,
 * lion_beta2) up to the rounding of the momentum's sign (v and vbar started at 0).
 *
 * Derivatives (per element, of u_t; docs/mada.md derives them). With A = gamma / Dn,
 * sw = sqrt(W / bc2), N = m / bc1 + beta3 n, kk = -gamma N / (2 sw Dn^2) (0 where sw == 0),
 * a_v = dW/dv = rho + (1 - rho) / t (rho when detach_vbar), gt2 as above:
 *   du/dbeta1 = A ((m - g) / beta1 / bc1 + m t beta1^(t-1) / bc1^2)      (0-term when beta1 = 0)
 *   du/dbeta2 = kk (a_v (vp - gt2) / bc2 + W t beta2^(t-1) / bc2^2)
 *   du/dbeta3 = A (2 n - D) + kk (2 a_v (1 - beta2) / bc2) (c + (1 - c) s) gh D
 *   du/drho   = kk (v - vbar) / bc2
 *   du/dc     = kk (a_v (1 - beta2) / bc2) (q - vp - q s)
 *   du/dgamma = N / Dn - sign(uL)
 * and for the learning rate dx_{t+1}/dlr = -u_t, so dot[6] sums grad * u_t with
 *   u = gamma N / Dn + (1 - gamma) sign(uL).
 */
#ifndef CMADAM_MADA_H
#define CMADAM_MADA_H

#include "cmadam.h"

#ifdef __cplusplus
extern "C" {
#endif

CM_API_BEGIN
/* CM_CDEF_BEGIN -- read by madam/_build_cmadam.py for CFFI; no preprocessor lines inside. */

/* Indices of the learnable quantities in coef[], dot[], hypergrad[] and the hyper config. */
enum cm_mada_index {
    CM_MADA_BETA1 = 0,
    CM_MADA_BETA2 = 1,
    CM_MADA_BETA3 = 2,
    CM_MADA_RHO = 3,
    CM_MADA_C = 4,
    CM_MADA_GAMMA = 5,
    CM_MADA_LR = 6,
    CM_MADA_NHYPER = 7
};

/* How step 1 treats the first gradient difference and Adan's momentum n. */
enum cm_mada_first_diff { CM_MADA_DIFF_ZERO = 0, CM_MADA_DIFF_GRAD = 1 };
enum cm_mada_n_init { CM_MADA_N_ZERO = 0, CM_MADA_N_GRAD_SQ = 1 };

typedef struct cm_mada_config {
    double lr;
    double beta1;      /* [0, 1)  first moment */
    double beta2;      /* [0, 1)  second moment */
    double beta3;      /* [0, 1)  gradient-difference weight and momentum (Adan) */
    double rho;        /* [0, 1]  1: Adam's v, 0: AVGrad's time average */
    double c;          /* [0, 1]  1: Adam's g^2, 0: Yogi's additive rule */
    double gamma;      /* [0, 1]  1: adaptive update, 0: Lion's sign update */
    double eps;
    double lion_beta1; /* [0, 1)  uL = lion_beta1 mL + (1 - lion_beta1) g */
    double lion_beta2; /* [0, 1)  mL = lion_beta2 mL + (1 - lion_beta2) g */
    int first_diff;    /* enum cm_mada_first_diff */
    int n_init;        /* enum cm_mada_n_init */
    int detach_vbar;   /* 1: treat vbar_t as a constant in the derivatives */
} cm_mada_config;

/* The Adam vertex with the released settings: lr 1e-3, (beta1, beta2, beta3, rho, c, gamma) =
 * (0.9, 0.999, 0, 1, 1, 1), eps 1e-6, lion betas (0.95, 0.98), CM_MADA_DIFF_ZERO,
 * CM_MADA_N_ZERO, detach_vbar 0. */
void cm_mada_config_default(cm_mada_config *cfg);

/* One update (see the header comment). v_in and v_out may be the same array (in place) or two
 * arrays (a ring that keeps v_{t-1}); likewise gp_in and gp_out, and gp_out may be NULL (not
 * written). derivs: NULL (n_derivs 0), or n_derivs (6 or 7) arrays of n elements back to back,
 * derivs[j * n + i] = du_i/dh_j. m, v, vbar, n, mL start at the caller's values (madam: 0, and
 * v = vbar = v_init). */
int cm_mada_step_f32(const cm_mada_config *cfg, const cm_exec_config *exec, int64_t step,
                     size_t n, float *param, const float *grad, float *exp_avg,
                     const float *exp_avg_sq_in, float *exp_avg_sq_out, float *avg_exp_avg_sq,
                     float *exp_avg_diff, float *lion_exp_avg, const float *prev_grad_in,
                     float *prev_grad_out, float *derivs, int n_derivs);
int cm_mada_step_f64(const cm_mada_config *cfg, const cm_exec_config *exec, int64_t step,
                     size_t n, double *param, const double *grad, double *exp_avg,
                     const double *exp_avg_sq_in, double *exp_avg_sq_out, double *avg_exp_avg_sq,
                     double *exp_avg_diff, double *lion_exp_avg, const double *prev_grad_in,
                     double *prev_grad_out, double *derivs, int n_derivs);

/* dot[j] = sum_i grad_i du_{t,i}/dh_j, j < 7, the derivatives recomputed from the state after
 * step `step` (= t, made with the coefficients in cfg): exp_avg = m_t, exp_avg_sq = v_t,
 * exp_avg_sq_prev = v_{t-1}, avg_exp_avg_sq = vbar_t, exp_avg_diff = n_t, lion_exp_avg = mL_t,
 * prev_grad = g_t, prev_grad2 = g_{t-1}. grad_copy (NULL, or the same array as prev_grad2) is
 * then overwritten with grad. The sum runs in double over fixed blocks in a fixed order: the
 * result does not depend on the thread count or the instruction set. */
int cm_mada_hypergrad_f32(const cm_mada_config *cfg, const cm_exec_config *exec, int64_t step,
                          size_t n, const float *grad, const float *exp_avg,
                          const float *exp_avg_sq, const float *exp_avg_sq_prev,
                          const float *avg_exp_avg_sq, const float *exp_avg_diff,
                          const float *lion_exp_avg, const float *prev_grad,
                          const float *prev_grad2, float *grad_copy, double *dot);
int cm_mada_hypergrad_f64(const cm_mada_config *cfg, const cm_exec_config *exec, int64_t step,
                          size_t n, const double *grad, const double *exp_avg,
                          const double *exp_avg_sq, const double *exp_avg_sq_prev,
                          const double *avg_exp_avg_sq, const double *exp_avg_diff,
                          const double *lion_exp_avg, const double *prev_grad,
                          const double *prev_grad2, double *grad_copy, double *dot);

/* The same dot products from derivatives stored by cm_mada_step (n_derivs 6 or 7 arrays;
 * dot[j] = 0 for j >= n_derivs), summed in the same order: bit-identical to the above. */
int cm_mada_hypergrad_stored_f32(const cm_exec_config *exec, size_t n, const float *grad,
                                 const float *derivs, int n_derivs, double *dot);
int cm_mada_hypergrad_stored_f64(const cm_exec_config *exec, size_t n, const double *grad,
                                 const double *derivs, int n_derivs, double *dot);

/* Steps 1 and 3 of a step in one pass, for the delayed hyper step (madam: hyper_delay=True):
 * dot[j] = sum_i grad_i du_{t-1,i}/dh_j, as cm_mada_hypergrad for step t - 1 made with the
 * coefficients in prev, then the update of step t (>= 2) with cfg, as cm_mada_step in the ring
 * layout: exp_avg_sq_in = v_{t-1}, exp_avg_sq_out = v_{t-2} (overwritten with v_t),
 * prev_grad_in = g_{t-1}, prev_grad_out = g_{t-2} (overwritten with g_t). Bit for bit the same
 * dot and update as cm_mada_hypergrad followed by cm_mada_step, but one pass over memory. */
int cm_mada_step_fused_f32(const cm_mada_config *cfg, const cm_mada_config *prev,
                           const cm_exec_config *exec, int64_t step, size_t n, float *param,
                           const float *grad, float *exp_avg, const float *exp_avg_sq_in,
                           float *exp_avg_sq_out, float *avg_exp_avg_sq, float *exp_avg_diff,
                           float *lion_exp_avg, const float *prev_grad_in, float *prev_grad_out,
                           double *dot);
int cm_mada_step_fused_f64(const cm_mada_config *cfg, const cm_mada_config *prev,
                           const cm_exec_config *exec, int64_t step, size_t n, double *param,
                           const double *grad, double *exp_avg, const double *exp_avg_sq_in,
                           double *exp_avg_sq_out, double *avg_exp_avg_sq, double *exp_avg_diff,
                           double *lion_exp_avg, const double *prev_grad_in,
                           double *prev_grad_out, double *dot);

/* The hyper-optimiser: plain SGD with per-quantity rates, clipping and a box. */
typedef struct cm_mada_hyper_config {
    double hyper_lr[7]; /* >= 0; 0: that quantity is frozen (neither stepped nor projected) */
    double lower[7];    /* box, lower <= upper (upper may be +Inf) */
    double upper[7];
    double clip;        /* > 0: each hypergradient is clipped to [-clip, clip]; +Inf: none */
} cm_mada_hyper_config;

/* Released settings: hyper_lr (5e-4, 5e-4, 0.1, 0.1, 0.1, 0.1, 0), box beta1 [0.01, 0.99],
 * beta2 [0.501, 0.99], beta3 [0, 0.99], rho, c, gamma [0, 1], lr [0, +Inf), clip 10. */
void cm_mada_hyper_config_default(cm_mada_hyper_config *hyper);

/* hypergrad[j] = dL(x_{t+1})/dh_j = -lr * dot[j] for j < 6 and -dot[6] for the learning rate
 * (lr: the one used at step t). Then for every j with hyper_lr[j] > 0 and a finite hypergrad[j]:
 *   coef[j] = min(max(coef[j] - hyper_lr[j] * min(max(hypergrad[j], -clip), clip), lower[j]),
 *                 upper[j])
 * coef[] holds (beta1, beta2, beta3, rho, c, gamma, lr). A non-finite hypergradient leaves its
 * coefficient unchanged. */
int cm_mada_hyper_step(const cm_mada_hyper_config *hyper, double lr, const double *dot,
                       double *coef, double *hypergrad);

/* CM_CDEF_END */
CM_API_END

#ifdef __cplusplus
}
#endif

#endif /* CMADAM_MADA_H */
