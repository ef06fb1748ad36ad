/* optim.c -- instantiates optim_impl.h for float and double, for the baseline instruction set
 * and for AVX2 (instantiate.h), and defines the public kernels, which pick the AVX2 build when
 * the CPU has it (CM_DISPATCH).
 *
 * Both builds do the same IEEE operations in the same order (no FMA: -ffp-contract=off, and the
 * avx2 target does not enable FMA), so they give bit-identical results;
 * cm_exec_config.baseline_only forces the baseline build so tests can check exactly that. */
#include <math.h>

#include "internal.h"

#define CM_IMPL_HEADER "optim_impl.h"
#include "instantiate.h"

/* One public entry point per kernel and type; `exec` selects the build. */
#define CM_PUBLIC_KERNELS(T, SUF)                                                              \
    CM_DISPATCH(CM_CAT(cm_sgd_step_, SUF),                                                     \
                (const cm_sgd_config *cfg, const cm_exec_config *exec, int64_t step, size_t n, \
                 T *param, const T *grad, T *momentum_buf),                                    \
                (cfg, exec, step, n, param, grad, momentum_buf))                               \
    CM_DISPATCH(CM_CAT(cm_adam_step_, SUF),                                                    \
                (const cm_adam_config *cfg, const cm_exec_config *exec, int64_t step,          \
                 size_t n, T *param, const T *grad, T *exp_avg, T *exp_avg_sq, T *aux),        \
                (cfg, exec, step, n, param, grad, exp_avg, exp_avg_sq, aux))                   \
    CM_DISPATCH(CM_CAT(cm_yogi_step_, SUF),                                                    \
                (const cm_yogi_config *cfg, const cm_exec_config *exec, int64_t step,          \
                 size_t n, T *param, const T *grad, T *exp_avg, T *exp_avg_sq),                \
                (cfg, exec, step, n, param, grad, exp_avg, exp_avg_sq))                        \
    CM_DISPATCH(CM_CAT(cm_adan_step_, SUF),                                                    \
                (const cm_adan_config *cfg, const cm_exec_config *exec, int64_t step,          \
                 size_t n, T *param, const T *grad, T *exp_avg, T *exp_avg_diff,               \
                 T *exp_avg_sq, T *prev_grad),                                                 \
                (cfg, exec, step, n, param, grad, exp_avg, exp_avg_diff, exp_avg_sq,           \
                 prev_grad))                                                                   \
    CM_DISPATCH(CM_CAT(cm_lion_step_, SUF),                                                    \
                (const cm_lion_config *cfg, const cm_exec_config *exec, size_t n, T *param,    \
                 const T *grad, T *exp_avg),                                                   \
                (cfg, exec, n, param, grad, exp_avg))                                          \
    CM_DISPATCH(CM_CAT(cm_all_finite_, SUF),                                                   \
                (const cm_exec_config *exec, size_t n, const T *x, int *all_finite),           \
                (exec, n, x, all_finite))                                                      \
    CM_DISPATCH(CM_CAT(cm_triad_, SUF),                                                        \
                (const cm_exec_config *exec, size_t n, T *a, const T *b, const T *c,           \
                 double scalar),                                                               \
                (exec, n, a, b, c, scalar))

CM_PUBLIC_KERNELS(float, f32)
CM_PUBLIC_KERNELS(double, f64)
