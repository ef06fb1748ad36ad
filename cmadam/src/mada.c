/* mada.c -- MADA's kernels (cmadam_mada.h): instantiates mada_impl.h for float and double, for
 * the baseline instruction set and, on x86-64, for AVX2 and AVX-512 (same IEEE operations in the
 * same order, no FMA, so every build gives the same bits; cm_exec_config.baseline_only forces the
 * baseline), and the scalar hyper-optimiser step. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "cmadam_mada.h"
#include "internal.h"

/* ------------------------------------------------------------ the deterministic reduction
 * The n elements are cut into mada_n_blocks(n) blocks (a function of n only). A block is cut
 * into tiles of up to 32 whole chunks of 8 elements. Within a tile, the products g * du/dh
 * (rounded to the element type) of element 8 q + l go to lane l of 8 element-type sums, in order
 * of q; at the end of the tile, lane l is converted to double and added to lane l % 4 of four
 * double accumulators (l = 0 .. 7 in order). The elements after the last whole chunk go straight
 * to double lanes 0, 1, 2, 3, 0, ... Then the 4 lanes of a block are added in order, then the
 * blocks in order. The association is fixed by this code, so the sums do not depend
 * on the thread count, the vectorisation or the instruction set.
 * The recomputing passes (mada_impl.h: MADA_BLOCK_REDUCE) compute the products of MADA_BATCH
 * elements (whole chunks of one tile) in one vectorised loop and then add them chunk after chunk,
 * which is the order above; the stored pass advances the sums of all coefficients together,
 * chunk after chunk, each in that order too. */
#define MADA_LANES 4
#define MADA_CHUNK 8        /* elements per chunk: two per lane */
#define MADA_TILE_CHUNKS 32 /* chunks summed in the element type before going to double */
#define MADA_BATCH 128      /* elements whose products one vectorised loop computes */
_Static_assert(MADA_BATCH % MADA_CHUNK == 0, "a batch is whole chunks");
#define MADA_MAX_BLOCKS 64
#define MADA_BLOCK_MIN 4096

static size_t mada_n_blocks(size_t n)
{
    size_t nb = (n + MADA_BLOCK_MIN - 1) / MADA_BLOCK_MIN;
    if (nb < 1) nb = 1;
    if (nb > MADA_MAX_BLOCKS) nb = MADA_MAX_BLOCKS;
    return nb;
}

static size_t mada_block_start(size_t n, size_t nb, size_t b)
{
    /* n * b / nb without overflow for any n (b <= nb <= 64) */
    return (n / nb) * b + ((n % nb) * b) / nb;
}

/* MADA_LANES double accumulators, added lane by lane (a GNU vector: one AVX register or two
 * SSE ones, so the accumulation chains do not go through memory). Macros, not functions, so no
 * vector is passed by value (whose ABI depends on the instruction set). MADA_LANES_ADD adds a
 * chunk of 8 values: x[0..3], then x[4..7]. */
typedef double mada_lanes __attribute__((vector_size(MADA_LANES * sizeof(double))));
#define MADA_LANES_ZERO(acc) memset(&(acc), 0, sizeof(acc))
#define MADA_LANES_ADD(acc, x)                                                                 \
    do {                                                                                       \
        mada_lanes v_, w_;                                                                     \
        memcpy(&v_, (x), sizeof v_);                                                           \
        memcpy(&w_, (x) + MADA_LANES, sizeof w_);                                              \
        (acc) += v_;                                                                           \
        (acc) += w_;                                                                           \
    } while (0)
#define MADA_LANE_ADD(acc, l, x) ((acc)[(l) % MADA_LANES] += (x))

/* Lanes 0 .. 3 added in order. */
static inline double mada_lanes_total(const mada_lanes *acc)
{
    double s = 0.0;
    for (int l = 0; l < MADA_LANES; l++) s += (*acc)[l];
    return s;
}

static void mada_blocks_sum(double partial[][CM_MADA_NHYPER], size_t nb, int nq, double *dot)
{
    for (int j = 0; j < nq; j++) {
        double s = 0.0;
        for (size_t b = 0; b < nb; b++) s += partial[b][j];
        dot[j] = s;
    }
}

/* x in [0, 1] (NaN fails). */
static inline int cm_closed_unit(double x) { return x >= 0.0 && x <= 1.0; }

/* ------------------------------------------------------------------ the typed kernels */
#define CM_IMPL_HEADER "mada_impl.h"
#define CM_WITH_AVX512 1 /* AVX-512 (F, VL, DQ, BW) too: the same operations, twice as wide */
#include "instantiate.h"

/* ------------------------------------------------------------------ public entry points
 * One per kernel and type; `exec` selects the build (CM_DISPATCH). */
#define MADA_PUBLIC(T, SUF)                                                                    \
    CM_DISPATCH(CM_CAT(cm_mada_step, SUF),                                                     \
                (const cm_mada_config *cfg, const cm_exec_config *exec, int64_t step, size_t n, \
                 T *param, const T *grad, T *exp_avg, const T *exp_avg_sq_in,                  \
                 T *exp_avg_sq_out, T *avg_exp_avg_sq, T *exp_avg_diff, T *lion_exp_avg,       \
                 const T *prev_grad_in, T *prev_grad_out, T *derivs, int n_derivs),            \
                (cfg, exec, step, n, param, grad, exp_avg, exp_avg_sq_in, exp_avg_sq_out,      \
                 avg_exp_avg_sq, exp_avg_diff, lion_exp_avg, prev_grad_in, prev_grad_out,      \
                 derivs, n_derivs))                                                            \
    CM_DISPATCH(CM_CAT(cm_mada_hypergrad, SUF),                                                \
                (const cm_mada_config *cfg, const cm_exec_config *exec, int64_t step, size_t n, \
                 const T *grad, const T *exp_avg, const T *exp_avg_sq,                         \
                 const T *exp_avg_sq_prev, const T *avg_exp_avg_sq, const T *exp_avg_diff,     \
                 const T *lion_exp_avg, const T *prev_grad, const T *prev_grad2, T *grad_copy, \
                 double *dot),                                                                 \
                (cfg, exec, step, n, grad, exp_avg, exp_avg_sq, exp_avg_sq_prev,               \
                 avg_exp_avg_sq, exp_avg_diff, lion_exp_avg, prev_grad, prev_grad2, grad_copy, \
                 dot))                                                                         \
    CM_DISPATCH(CM_CAT(cm_mada_step_fused, SUF),                                               \
                (const cm_mada_config *cfg, const cm_mada_config *prev,                        \
                 const cm_exec_config *exec, int64_t step, size_t n, T *param, const T *grad,  \
                 T *exp_avg, const T *exp_avg_sq_in, T *exp_avg_sq_out, T *avg_exp_avg_sq,     \
                 T *exp_avg_diff, T *lion_exp_avg, const T *prev_grad_in, T *prev_grad_out,    \
                 double *dot),                                                                 \
                (cfg, prev, exec, step, n, param, grad, exp_avg, exp_avg_sq_in,                \
                 exp_avg_sq_out, avg_exp_avg_sq, exp_avg_diff, lion_exp_avg, prev_grad_in,     \
                 prev_grad_out, dot))                                                          \
    CM_DISPATCH(CM_CAT(cm_mada_hypergrad_stored, SUF),                                         \
                (const cm_exec_config *exec, size_t n, const T *grad, const T *derivs,         \
                 int n_derivs, double *dot),                                                   \
                (exec, n, grad, derivs, n_derivs, dot))

MADA_PUBLIC(float, _f32)
MADA_PUBLIC(double, _f64)

/* ------------------------------------------------------------------ configs and hyper step */
void cm_mada_config_default(cm_mada_config *cfg)
{
    if (!cfg) return;
    cfg->lr = 1e-3;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->beta3 = 0.0;
    cfg->rho = 1.0;
    cfg->c = 1.0;
    cfg->gamma = 1.0;
    cfg->eps = 1e-6;
    cfg->lion_beta1 = 0.95;
    cfg->lion_beta2 = 0.98;
    cfg->first_diff = CM_MADA_DIFF_ZERO;
    cfg->n_init = CM_MADA_N_ZERO;
    cfg->detach_vbar = 0;
}

void cm_mada_hyper_config_default(cm_mada_hyper_config *hyper)
{
    static const double rate[CM_MADA_NHYPER] = {5e-4, 5e-4, 0.1, 0.1, 0.1, 0.1, 0.0};
    static const double lower[CM_MADA_NHYPER] = {0.01, 0.501, 0.0, 0.0, 0.0, 0.0, 0.0};
    static const double upper[CM_MADA_NHYPER] = {0.99, 0.99, 0.99, 1.0, 1.0, 1.0, HUGE_VAL};
    if (!hyper) return;
    for (int j = 0; j < CM_MADA_NHYPER; j++) {
        hyper->hyper_lr[j] = rate[j];
        hyper->lower[j] = lower[j];
        hyper->upper[j] = upper[j];
    }
    hyper->clip = 10.0;
}

int cm_mada_hyper_step(const cm_mada_hyper_config *hyper, double lr, const double *dot,
                       double *coef, double *hypergrad)
{
    if (!hyper || !dot || !coef || !hypergrad) return CM_ERR_NULL;
    if (!cm_nonneg(lr) || !(hyper->clip > 0.0)) return CM_ERR_HYPER;
    for (int j = 0; j < CM_MADA_NHYPER; j++)
        if (!cm_nonneg(hyper->hyper_lr[j]) || !(hyper->lower[j] <= hyper->upper[j]) ||
            isnan(hyper->lower[j]) || isnan(hyper->upper[j]) || isnan(coef[j]))
            return CM_ERR_HYPER;
    for (int j = 0; j < CM_MADA_NHYPER; j++) {
        const double hg = j == CM_MADA_LR ? -dot[j] : -lr * dot[j];
        hypergrad[j] = hg;
        if (!(hyper->hyper_lr[j] > 0.0) || !isfinite(hg)) continue;
        const double clipped = hg > hyper->clip ? hyper->clip : (hg < -hyper->clip ? -hyper->clip : hg);
        double h = coef[j] - hyper->hyper_lr[j] * clipped;
        if (h < hyper->lower[j]) h = hyper->lower[j];
        if (h > hyper->upper[j]) h = hyper->upper[j];
        coef[j] = h;
    }
    return CM_OK;
}
