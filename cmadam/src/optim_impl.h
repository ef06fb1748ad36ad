/* optim_impl.h -- the optimiser kernels, written once for an element type.
 *
 * Included by optim.c with REAL (float or double), SFX(name) (the suffixer: _f32_base,
 * _f64_avx2, ...) and SQRT defined, once per element type and instruction set. Every loop is one pass over memory: each element's parameter and state are read once
 * and written once. The arithmetic order is the one documented in cmadam.h; coefficients are
 * computed in double and rounded once to REAL.
 */

/* "if(parallel: ...)": a plain if() on a combined construct would also switch off simd (OpenMP 5). */
#define CM_PFOR(nt) _Pragma("omp parallel for simd schedule(static) num_threads(nt) if(parallel: nt > 1)")

static inline REAL SFX(cm_sign)(REAL x) { return (REAL)((x > 0) - (x < 0)); }

/* ------------------------------------------------------------------------------------- SGD */
static int SFX(cm_sgd_step)(const cm_sgd_config *cfg, const cm_exec_config *exec, int64_t step,
                     size_t n, REAL *param, const REAL *grad, REAL *momentum_buf)
{
    if (!cfg || !param || !grad) return CM_ERR_NULL;
    if (!cm_nonneg(cfg->lr) || !cm_nonneg(cfg->momentum) || !cm_nonneg(cfg->weight_decay) ||
        !(cfg->dampening >= 0.0 && cfg->dampening <= 1.0))
        return CM_ERR_HYPER;
    if (cfg->nesterov && !(cfg->momentum > 0.0 && cfg->dampening == 0.0)) return CM_ERR_HYPER;
    if (cfg->momentum != 0.0 && !momentum_buf) return CM_ERR_NULL;
    if (step < 1) return CM_ERR_STEP;

    const REAL lr = (REAL)cfg->lr, wd = (REAL)cfg->weight_decay, mu = (REAL)cfg->momentum;
    const REAL one_m_damp = (REAL)(1.0 - cfg->dampening);
    const int use_wd = cfg->weight_decay != 0.0, nesterov = cfg->nesterov != 0;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;

    if (cfg->momentum == 0.0) {
        CM_PFOR(nt)
        for (long long i = 0; i < nn; i++) {
            REAL g = grad[i];
            if (use_wd) g = g + wd * param[i];
            param[i] = param[i] - lr * g;
        }
    } else {
        const int first = step == 1;
        CM_PFOR(nt)
        for (long long i = 0; i < nn; i++) {
            REAL g = grad[i];
            if (use_wd) g = g + wd * param[i];
            const REAL b = first ? g : mu * momentum_buf[i] + one_m_damp * g;
            momentum_buf[i] = b;
            g = nesterov ? g + mu * b : b;
            param[i] = param[i] - lr * g;
        }
    }
    return CM_OK;
}

/* ------------------------------------------------------------- Adam, AdamW, AMSGrad, AVGrad */
typedef struct {
    REAL b1, omb1, b2, omb2, step_size, sqrt_bc2, eps, wd, decay, t_m1, t;
} SFX(cm_adam_coef);

static inline __attribute__((always_inline)) void
SFX(cm_adam_elem)(long long i, REAL *restrict param, const REAL *restrict grad,
                  REAL *restrict exp_avg, REAL *restrict exp_avg_sq, REAL *restrict aux,
                  const SFX(cm_adam_coef) *k, const int decoupled, const int l2, const int variant)
{
    REAL p = param[i], g = grad[i];
    if (decoupled) p = p * k->decay;
    if (l2) g = g + k->wd * p;
    const REAL m = k->b1 * exp_avg[i] + k->omb1 * g;
    const REAL v = k->b2 * exp_avg_sq[i] + k->omb2 * (g * g);
    REAL s = v;
    if (variant == CM_AMSGRAD) {
        const REAL a = aux[i];
        s = a > v ? a : v;
        aux[i] = s;
    } else if (variant == CM_AVGRAD) {
        s = (v + k->t_m1 * aux[i]) / k->t;
        aux[i] = s;
    }
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] = p - k->step_size * (m / (SQRT(s) / k->sqrt_bc2 + k->eps));
}

static int SFX(cm_adam_step)(const cm_adam_config *cfg, const cm_exec_config *exec, int64_t step,
                      size_t n, REAL *param, const REAL *grad, REAL *exp_avg, REAL *exp_avg_sq,
                      REAL *exp_avg_sq_aux)
{
    if (!cfg || !param || !grad || !exp_avg || !exp_avg_sq) return CM_ERR_NULL;
    if (!cm_nonneg(cfg->lr) || !cm_in_unit_interval(cfg->beta1) ||
        !cm_in_unit_interval(cfg->beta2) || !cm_nonneg(cfg->eps) || !cm_nonneg(cfg->weight_decay) ||
        cfg->variant < CM_ADAM || cfg->variant > CM_AVGRAD)
        return CM_ERR_HYPER;
    if (cfg->variant != CM_ADAM && !exp_avg_sq_aux) return CM_ERR_NULL;
    if (step < 1) return CM_ERR_STEP;

    const double t = (double)step;
    const double bc1 = 1.0 - pow(cfg->beta1, t), bc2 = 1.0 - pow(cfg->beta2, t);
    const SFX(cm_adam_coef) k = {
        (REAL)cfg->beta1, (REAL)(1.0 - cfg->beta1), (REAL)cfg->beta2, (REAL)(1.0 - cfg->beta2),
        (REAL)(cfg->lr / bc1), (REAL)sqrt(bc2), (REAL)cfg->eps, (REAL)cfg->weight_decay,
        (REAL)(1.0 - cfg->lr * cfg->weight_decay), (REAL)(t - 1.0), (REAL)t};
    const int l2 = !cfg->decoupled_weight_decay && cfg->weight_decay != 0.0;
    const int decoupled = cfg->decoupled_weight_decay && cfg->weight_decay != 0.0;
    const int variant = cfg->variant;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;

    /* One loop per (weight-decay mode, variant) so each is branch-free and vectorises. */
#define CM_ADAM_LOOP(DEC, L2, VAR)                                                             \
    do {                                                                                       \
        CM_PFOR(nt)                                                                            \
        for (long long i = 0; i < nn; i++)                                                     \
            SFX(cm_adam_elem)(i, param, grad, exp_avg, exp_avg_sq, exp_avg_sq_aux, &k, DEC, L2, VAR); \
    } while (0)
#define CM_ADAM_VARIANTS(DEC, L2)                                                              \
    do {                                                                                       \
        if (variant == CM_AMSGRAD) CM_ADAM_LOOP(DEC, L2, CM_AMSGRAD);                          \
        else if (variant == CM_AVGRAD) CM_ADAM_LOOP(DEC, L2, CM_AVGRAD);                       \
        else CM_ADAM_LOOP(DEC, L2, CM_ADAM);                                                   \
    } while (0)
    if (decoupled) CM_ADAM_VARIANTS(1, 0);
    else if (l2) CM_ADAM_VARIANTS(0, 1);
    else CM_ADAM_VARIANTS(0, 0);
#undef CM_ADAM_VARIANTS
#undef CM_ADAM_LOOP
    return CM_OK;
}

/* -------------------------------------------------------------------------------------- Yogi */
static int SFX(cm_yogi_step)(const cm_yogi_config *cfg, const cm_exec_config *exec, int64_t step,
                      size_t n, REAL *param, const REAL *grad, REAL *exp_avg, REAL *exp_avg_sq)
{
    if (!cfg || !param || !grad || !exp_avg || !exp_avg_sq) return CM_ERR_NULL;
    if (!cm_nonneg(cfg->lr) || !cm_in_unit_interval(cfg->beta1) ||
        !cm_in_unit_interval(cfg->beta2) || !cm_nonneg(cfg->eps) || !cm_nonneg(cfg->weight_decay))
        return CM_ERR_HYPER;
    if (step < 1) return CM_ERR_STEP;

    const double t = (double)step;
    const double bc1 = 1.0 - pow(cfg->beta1, t), bc2 = 1.0 - pow(cfg->beta2, t);
    const REAL b1 = (REAL)cfg->beta1, omb1 = (REAL)(1.0 - cfg->beta1);
    const REAL omb2 = (REAL)(1.0 - cfg->beta2);
    const REAL step_size = (REAL)(cfg->lr / bc1), sqrt_bc2 = (REAL)sqrt(bc2);
    const REAL eps = (REAL)cfg->eps, wd = (REAL)cfg->weight_decay;
    const int use_wd = cfg->weight_decay != 0.0;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;

    CM_PFOR(nt)
    for (long long i = 0; i < nn; i++) {
        const REAL p = param[i];
        REAL g = grad[i];
        if (use_wd) g = g + wd * p;
        const REAL m = b1 * exp_avg[i] + omb1 * g;
        const REAL g2 = g * g, v0 = exp_avg_sq[i];
        const REAL v = v0 - (omb2 * SFX(cm_sign)(v0 - g2)) * g2;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = p - step_size * (m / (SQRT(v) / sqrt_bc2 + eps));
    }
    return CM_OK;
}

/* -------------------------------------------------------------------------------------- Adan */
typedef struct {
    REAL b1, omb1, b2, omb2, b3, omb3, bc1, diff_scale, sqrt_bc3, eps, lr, prox_div, decay;
} SFX(cm_adan_coef);

static inline __attribute__((always_inline)) void
SFX(cm_adan_elem)(long long i, REAL *restrict param, const REAL *restrict grad,
                  REAL *restrict exp_avg, REAL *restrict exp_avg_diff, REAL *restrict exp_avg_sq,
                  REAL *restrict prev_grad, const SFX(cm_adan_coef) *k, const int first,
                  const int proximal)
{
    const REAL g = grad[i];
    const REAL d = first ? (REAL)0 : g - prev_grad[i];
    const REAL m = k->b1 * exp_avg[i] + k->omb1 * g;
    const REAL md = k->b2 * exp_avg_diff[i] + k->omb2 * d;
    const REAL u = g + k->b2 * d;
    const REAL v = k->b3 * exp_avg_sq[i] + k->omb3 * (u * u);
    const REAL r = (m / k->bc1 + k->diff_scale * md) / (SQRT(v) / k->sqrt_bc3 + k->eps);
    exp_avg[i] = m;
    exp_avg_diff[i] = md;
    exp_avg_sq[i] = v;
    prev_grad[i] = g;
    param[i] = proximal ? (param[i] - k->lr * r) / k->prox_div : param[i] * k->decay - k->lr * r;
}

static int SFX(cm_adan_step)(const cm_adan_config *cfg, const cm_exec_config *exec, int64_t step,
                      size_t n, REAL *param, const REAL *grad, REAL *exp_avg, REAL *exp_avg_diff,
                      REAL *exp_avg_sq, REAL *prev_grad)
{
    if (!cfg || !param || !grad || !exp_avg || !exp_avg_diff || !exp_avg_sq || !prev_grad)
        return CM_ERR_NULL;
    if (!cm_nonneg(cfg->lr) || !cm_in_unit_interval(cfg->beta1) ||
        !cm_in_unit_interval(cfg->beta2) || !cm_in_unit_interval(cfg->beta3) ||
        !cm_nonneg(cfg->eps) || !cm_nonneg(cfg->weight_decay))
        return CM_ERR_HYPER;
    if (step < 1) return CM_ERR_STEP;

    const double t = (double)step;
    const double bc1 = 1.0 - pow(cfg->beta1, t), bc2 = 1.0 - pow(cfg->beta2, t);
    const double bc3 = 1.0 - pow(cfg->beta3, t);
    const SFX(cm_adan_coef) k = {
        (REAL)cfg->beta1, (REAL)(1.0 - cfg->beta1), (REAL)cfg->beta2, (REAL)(1.0 - cfg->beta2),
        (REAL)cfg->beta3, (REAL)(1.0 - cfg->beta3), (REAL)bc1, (REAL)(cfg->beta2 / bc2),
        (REAL)sqrt(bc3), (REAL)cfg->eps, (REAL)cfg->lr, (REAL)(1.0 + cfg->lr * cfg->weight_decay),
        (REAL)(1.0 - cfg->lr * cfg->weight_decay)};
    const int proximal = cfg->proximal != 0, first = step == 1;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;

    /* One loop per (first step, decay form) so each is branch-free and vectorises. */
#define CM_ADAN_LOOP(FIRST, PROX)                                                              \
    do {                                                                                       \
        CM_PFOR(nt)                                                                            \
        for (long long i = 0; i < nn; i++)                                                     \
            SFX(cm_adan_elem)(i, param, grad, exp_avg, exp_avg_diff, exp_avg_sq, prev_grad, &k, \
                              FIRST, PROX);                                                    \
    } while (0)
    if (first) {
        if (proximal) CM_ADAN_LOOP(1, 1); else CM_ADAN_LOOP(1, 0);
    } else {
        if (proximal) CM_ADAN_LOOP(0, 1); else CM_ADAN_LOOP(0, 0);
    }
#undef CM_ADAN_LOOP
    return CM_OK;
}

/* -------------------------------------------------------------------------------------- Lion */
static int SFX(cm_lion_step)(const cm_lion_config *cfg, const cm_exec_config *exec, size_t n,
                      REAL *param, const REAL *grad, REAL *exp_avg)
{
    if (!cfg || !param || !grad || !exp_avg) return CM_ERR_NULL;
    if (!cm_nonneg(cfg->lr) || !cm_in_unit_interval(cfg->beta1) ||
        !cm_in_unit_interval(cfg->beta2) || !cm_nonneg(cfg->weight_decay))
        return CM_ERR_HYPER;

    const REAL b1 = (REAL)cfg->beta1, omb1 = (REAL)(1.0 - cfg->beta1);
    const REAL b2 = (REAL)cfg->beta2, omb2 = (REAL)(1.0 - cfg->beta2);
    const REAL lr = (REAL)cfg->lr, decay = (REAL)(1.0 - cfg->lr * cfg->weight_decay);
    const int use_wd = cfg->weight_decay != 0.0;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;

    CM_PFOR(nt)
    for (long long i = 0; i < nn; i++) {
        const REAL g = grad[i], m = exp_avg[i];
        REAL p = param[i];
        if (use_wd) p = p * decay;
        const REAL c = b1 * m + omb1 * g;
        param[i] = p - lr * SFX(cm_sign)(c);
        exp_avg[i] = b2 * m + omb2 * g;
    }
    return CM_OK;
}

/* --------------------------------------------------------------------------------- utilities */
static int SFX(cm_all_finite)(const cm_exec_config *exec, size_t n, const REAL *x, int *all_finite)
{
    if (!all_finite || (n && !x)) return CM_ERR_NULL;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;
    /* x * 0 is 0 for finite x and NaN for NaN and +-Inf, and a sum holding a NaN is NaN in any
     * order, so the sum is exactly 0 iff every element is finite: a vectorisable reduction
     * whose answer does not depend on the thread count. */
    REAL acc = 0;
    _Pragma("omp parallel for simd schedule(static) num_threads(nt) if(parallel: nt > 1) reduction(+:acc)")
    for (long long i = 0; i < nn; i++) acc += x[i] * (REAL)0;
    *all_finite = acc == (REAL)0;
    return CM_OK;
}

static int SFX(cm_triad)(const cm_exec_config *exec, size_t n, REAL *a, const REAL *b, const REAL *c,
                  double scalar)
{
    if (n && (!a || !b || !c)) return CM_ERR_NULL;
    const REAL s = (REAL)scalar;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;
    CM_PFOR(nt)
    for (long long i = 0; i < nn; i++) a[i] = b[i] + s * c[i];
    return CM_OK;
}

#undef CM_PFOR
