/* madam_kernel.c -- MAdam's step (cmadam_madam.h): instantiates madam_impl.h for float and
 * double, for the baseline instruction set and, on x86-64, for AVX2 (the same IEEE operations
 * in the same order, no FMA, so both builds give the same bits; cm_exec_config.baseline_only
 * forces the baseline), plus the packed-pair helpers, the full-pairs plan and the test for
 * the fused path. */
#include <math.h>
#include <stddef.h>

#include "cmadam_madam.h"
#include "internal.h"

/* Elements per tile: d and C_lam of a tile (2 x 4096 x 8 bytes at most, on the stack) stay in
 * L1/L2; each input stream is then read in runs of 16-32 KiB (512 measured 10-20 % slower at
 * n = 1e7 with C = 4, 8; see docs/madam.md). */
#define MADAM_TILE 4096
/* Elements between the software prefetches of the next F_p segment (madam_tile). */
#define MADAM_PREFETCH_RUN 64
#define MADAM_MAX_OBJ 4096

void cm_madam_config_default(cm_madam_config *cfg)
{
    if (!cfg) return;
    cfg->lr = 1e-3;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->weight_decay = 0.0;
    cfg->rampup = 1.0;
}

int cm_madam_n_pairs(int n_obj)
{
    if (n_obj < 1 || n_obj > MADAM_MAX_OBJ) return -1;
    return n_obj * (n_obj + 1) / 2;
}

int cm_madam_pair_index(int n_obj, int i, int j)
{
    if (n_obj < 1 || n_obj > MADAM_MAX_OBJ || i < 0 || j < 0 || i >= n_obj || j >= n_obj)
        return -1;
    if (i > j) {
        const int s = i;
        i = j;
        j = s;
    }
    return i * n_obj - i * (i - 1) / 2 + (j - i);
}

int cm_madam_plan_full(int n_obj, double beta2, int64_t step, const double *lambda,
                       int *pair_row_a, int *pair_row_b, double *pair_decay, double *pair_gain,
                       double *pair_weight)
{
    if (!lambda || !pair_row_a || !pair_row_b || !pair_decay || !pair_gain || !pair_weight)
        return CM_ERR_NULL;
    if (n_obj < 1 || n_obj > MADAM_MAX_OBJ) return CM_ERR_SIZE;
    if (!cm_in_unit_interval(beta2)) return CM_ERR_HYPER;
    for (int i = 0; i < n_obj; i++)
        if (!isfinite(lambda[i])) return CM_ERR_HYPER;
    if (step < 1) return CM_ERR_STEP;
    const double bc2 = 1.0 - pow(beta2, (double)step);
    int p = 0;
    for (int i = 0; i < n_obj; i++) {
        for (int j = i; j < n_obj; j++, p++) {
            pair_row_a[p] = i;
            pair_row_b[p] = j;
            pair_decay[p] = beta2;
            pair_gain[p] = 1.0 - beta2;
            pair_weight[p] = (i == j ? 1.0 : 2.0) * lambda[i] * lambda[j] / bc2;
        }
    }
    return CM_OK;
}

/* Every argument rule of cm_madam_step (type independent); CM_OK or the first violation. */
static int madam_check(const cm_madam_config *cfg, int64_t step, int n_obj, int n_rows,
                       const void *param, const void *rows, const void *direction,
                       const double *row_weight, const void *fisher, const int *pair_row_a,
                       const int *pair_row_b, const double *pair_decay, const double *pair_gain,
                       const double *pair_weight, const void *exp_avg, const void *exp_avg_sq)
{
    if (!cfg || !param || !fisher || !pair_row_a || !pair_row_b || !pair_decay || !pair_gain ||
        !pair_weight || !exp_avg || !exp_avg_sq)
        return CM_ERR_NULL;
    if (n_rows > 0 && !rows) return CM_ERR_NULL;
    if (!direction && !row_weight) return CM_ERR_NULL;
    if (n_obj < 1 || n_obj > MADAM_MAX_OBJ || n_rows < 0 || n_rows > n_obj) return CM_ERR_SIZE;
    if (!direction && n_rows < 1) return CM_ERR_SIZE;
    if (!cm_nonneg(cfg->lr) || !cm_in_unit_interval(cfg->beta1) ||
        !cm_in_unit_interval(cfg->beta2) || !cm_nonneg(cfg->eps) ||
        !cm_nonneg(cfg->weight_decay) || !(cfg->rampup >= 0.0 && cfg->rampup <= 1.0))
        return CM_ERR_HYPER;
    if (!direction)
        for (int r = 0; r < n_rows; r++)
            if (!isfinite(row_weight[r])) return CM_ERR_HYPER;
    const int n_pairs = cm_madam_n_pairs(n_obj);
    for (int p = 0; p < n_pairs; p++) {
        const int a = pair_row_a[p], b = pair_row_b[p];
        if (a < -1 || b < -1 || a >= n_rows || b >= n_rows || (a < 0) != (b < 0))
            return CM_ERR_SIZE;
        if (!(pair_decay[p] >= 0.0 && pair_decay[p] <= 1.0) || !cm_nonneg(pair_gain[p]) ||
            !isfinite(pair_weight[p]))
            return CM_ERR_HYPER;
    }
    if (step < 1) return CM_ERR_STEP;
    return CM_OK;
}

/* The fused path of madam_impl.h (one loop, no tile buffers) serves the solver-driven step of a
 * few objectives: d from all the rows, every pair moving, pairs in cm_madam_plan_full's order.
 * Returns C if it applies, else 0 (the tiled path). */
#define MADAM_FUSED_MAX_OBJ 4

static int madam_fusable(int n_obj, int n_rows, const void *direction, const int *pair_row_a,
                         const int *pair_row_b)
{
    if (direction || n_rows != n_obj || n_obj > MADAM_FUSED_MAX_OBJ) return 0;
    int p = 0;
    for (int i = 0; i < n_obj; i++)
        for (int j = i; j < n_obj; j++, p++)
            if (pair_row_a[p] != i || pair_row_b[p] != j) return 0;
    return n_obj;
}

#define CM_IMPL_HEADER "madam_impl.h"
#include "instantiate.h"

/* One public entry point per type; `exec` selects the build. */
#define MADAM_PUBLIC(T, SUF)                                                                   \
    CM_DISPATCH(CM_CAT(cm_madam_step_, SUF),                                                   \
                (const cm_madam_config *cfg, const cm_exec_config *exec, int64_t step,         \
                 size_t n, int n_obj, int n_rows, T *param, const T *rows, const T *direction,  \
                 const double *row_weight, T *fisher, const int *pair_row_a,                   \
                 const int *pair_row_b, const double *pair_decay, const double *pair_gain,     \
                 const double *pair_weight, T *exp_avg, T *exp_avg_sq),                        \
                (cfg, exec, step, n, n_obj, n_rows, param, rows, direction, row_weight,        \
                 fisher, pair_row_a, pair_row_b, pair_decay, pair_gain, pair_weight, exp_avg,  \
                 exp_avg_sq))

MADAM_PUBLIC(float, f32)
MADAM_PUBLIC(double, f64)
