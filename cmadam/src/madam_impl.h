/* madam_impl.h -- the MAdam step (cmadam_madam.h), written once for an element type.
 *
 * Included by madam_kernel.c with REAL (float or double), SFX(name) (the suffixer: _f32_base,
 * _f64_avx2, ...) and SQRT defined, once per element type and instruction set. The step is one
 * pass over memory: the elements are cut into tiles of MADAM_TILE; within a tile each input
 * array (gradient rows, direction, every F_p, param, m, v) is streamed once, and the tile's d
 * and C_lam live in two small local buffers (L1/L2). The arithmetic order is the one written in
 * cmadam_madam.h; coefficients are computed in double and rounded once to REAL.
 */

/* Scalars of one step, rounded once to REAL. */
typedef struct {
    REAL b1, omb1, b2, omb2, step_size, sqrt_bc2, eps, decay, omr, r;
} SFX(madam_coef);

/* Element e of the whitening and the Adam step on u, from d and C_lam (both paths). */
static inline __attribute__((always_inline)) void
SFX(madam_whiten_adam)(const SFX(madam_coef) *k, size_t e, REAL d, REAL cc, REAL *restrict pa,
                       REAL *restrict ma, REAL *restrict va)
{
    cc = cc < (REAL)0 ? (REAL)0 : cc;
    const REAL metric = k->omr + k->r * (SQRT(cc) + k->eps);
    const REAL u = d / metric;
    const REAL p = pa[e] * k->decay;
    const REAL m = k->b1 * ma[e] + k->omb1 * u;
    const REAL v = k->b2 * va[e] + k->omb2 * (u * u);
    ma[e] = m;
    va[e] = v;
    pa[e] = p - k->step_size * (m / (SQRT(v) / k->sqrt_bc2 + k->eps));
}

/* Elements [lo, lo + len) of the step (len <= MADAM_TILE). */
static inline __attribute__((always_inline)) void
SFX(madam_tile)(const SFX(madam_coef) *k, size_t n, size_t lo, size_t len, int n_pairs,
                int n_rows, REAL *restrict param, const REAL *restrict rows,
                const REAL *restrict direction, const double *row_weight,
                REAL *restrict fisher, const int *pair_row_a, const int *pair_row_b,
                const double *pair_decay, const double *pair_gain, const double *pair_weight,
                REAL *restrict exp_avg, REAL *restrict exp_avg_sq, REAL *restrict d,
                REAL *restrict c)
{
    /* the direction */
    if (direction) {
        const REAL *restrict dir = direction + lo;
        _Pragma("omp simd")
        for (size_t e = 0; e < len; e++) d[e] = dir[e];
    } else {
        const REAL w0 = (REAL)row_weight[0];
        const REAL *restrict g0 = rows + lo;
        _Pragma("omp simd")
        for (size_t e = 0; e < len; e++) d[e] = w0 * g0[e];
        for (int r = 1; r < n_rows; r++) {
            const REAL w = (REAL)row_weight[r];
            const REAL *restrict g = rows + (size_t)r * n + lo;
            _Pragma("omp simd")
            for (size_t e = 0; e < len; e++) d[e] = d[e] + w * g[e];
        }
    }

    /* the F EMAs that move, and C_lam = sum_p weight_p F_p in packed order */
    _Pragma("omp simd")
    for (size_t e = 0; e < len; e++) c[e] = (REAL)0;
    for (int p = 0; p < n_pairs; p++) {
        REAL *restrict f = fisher + (size_t)p * n + lo;
        const REAL w = (REAL)pair_weight[p];
        /* the next pair's segment is prefetched while this one is updated, a cache line per
         * line of this one: each F_p segment is a short run (16 KiB in float) that the hardware
         * prefetcher would pick up only after a few misses, and from C = 5 on (36 segments a
         * tile at C = 8) those misses cost 10-13 % of the step (n = 1e6 and 1e7, float32) */
        const REAL *fnext = p + 1 < n_pairs ? f + n : f;
        const int moves = pair_row_a[p] >= 0;
        const REAL *restrict ga = moves ? rows + (size_t)pair_row_a[p] * n + lo : NULL;
        const REAL *restrict gb = moves ? rows + (size_t)pair_row_b[p] * n + lo : NULL;
        const REAL dec = moves ? (REAL)pair_decay[p] : 0, gain = moves ? (REAL)pair_gain[p] : 0;
        for (size_t e0 = 0; e0 < len; e0 += MADAM_PREFETCH_RUN) {
            const size_t e1 = e0 + MADAM_PREFETCH_RUN < len ? e0 + MADAM_PREFETCH_RUN : len;
            for (size_t q = e0; q < e1; q += 64 / sizeof(REAL)) __builtin_prefetch(fnext + q, 1, 3);
            if (moves) {
                _Pragma("omp simd")
                for (size_t e = e0; e < e1; e++) {
                    const REAL x = dec * f[e] + gain * (ga[e] * gb[e]);
                    f[e] = x;
                    c[e] = c[e] + w * x;
                }
            } else {
                _Pragma("omp simd")
                for (size_t e = e0; e < e1; e++) c[e] = c[e] + w * f[e];
            }
        }
    }

    /* whitening and the Adam step on u */
    REAL *restrict pa = param + lo;
    REAL *restrict ma = exp_avg + lo;
    REAL *restrict va = exp_avg_sq + lo;
    _Pragma("omp simd")
    for (size_t e = 0; e < len; e++) SFX(madam_whiten_adam)(k, e, d[e], c[e], pa, ma, va);
}

/* The common step, fused: d from every row (no direction), every pair moving, in the packed
 * order of cm_madam_plan_full, and C = n_obj <= MADAM_FUSED_MAX_OBJ, a compile-time constant at
 * each call (the switch in cm_madam_step), so that the loops over rows and pairs unroll. One
 * loop over the elements keeps d, C_lam and the rows in registers: every array is streamed
 * once, with no tile buffers to store and reload. Each value is computed by the same operations
 * in the same order as in madam_tile (d = w_0 g_0, then d + w_r g_r; C_lam = 0, then
 * C_lam + w_p F_p in pair order), so both paths give the same bits. */
static inline __attribute__((always_inline)) void
SFX(madam_fused)(const SFX(madam_coef) *k, size_t n, size_t lo, size_t len, const int n_obj,
                 REAL *restrict param, const REAL *restrict rows, const double *row_weight,
                 REAL *restrict fisher, const double *pair_decay, const double *pair_gain,
                 const double *pair_weight, REAL *restrict exp_avg, REAL *restrict exp_avg_sq)
{
    enum { P_MAX = MADAM_FUSED_MAX_OBJ * (MADAM_FUSED_MAX_OBJ + 1) / 2 };
    REAL w[MADAM_FUSED_MAX_OBJ], dec[P_MAX], gain[P_MAX], pw[P_MAX];
    const REAL *g[MADAM_FUSED_MAX_OBJ];
    REAL *f[P_MAX];
    const int n_pairs = n_obj * (n_obj + 1) / 2;
    for (int r = 0; r < n_obj; r++) {
        w[r] = (REAL)row_weight[r];
        g[r] = rows + (size_t)r * n + lo;
    }
    for (int p = 0; p < n_pairs; p++) {
        dec[p] = (REAL)pair_decay[p];
        gain[p] = (REAL)pair_gain[p];
        pw[p] = (REAL)pair_weight[p];
        f[p] = fisher + (size_t)p * n + lo;
    }
    REAL *restrict pa = param + lo;
    REAL *restrict ma = exp_avg + lo;
    REAL *restrict va = exp_avg_sq + lo;
    _Pragma("omp simd")
    for (size_t e = 0; e < len; e++) {
        REAL x[MADAM_FUSED_MAX_OBJ];
        _Pragma("GCC unroll 4")
        for (int r = 0; r < n_obj; r++) x[r] = g[r][e];
        REAL d = w[0] * x[0];
        _Pragma("GCC unroll 4")
        for (int r = 1; r < n_obj; r++) d = d + w[r] * x[r];
        REAL cc = (REAL)0;
        int p = 0;
        _Pragma("GCC unroll 4")
        for (int a = 0; a < n_obj; a++)
            _Pragma("GCC unroll 4")
            for (int b = a; b < n_obj; b++, p++) {
                const REAL y = dec[p] * f[p][e] + gain[p] * (x[a] * x[b]);
                f[p][e] = y;
                cc = cc + pw[p] * y;
            }
        SFX(madam_whiten_adam)(k, e, d, cc, pa, ma, va);
    }
}

static int SFX(cm_madam_step)(const cm_madam_config *cfg, const cm_exec_config *exec,
                              int64_t step, size_t n, int n_obj, int n_rows, REAL *param,
                              const REAL *rows, const REAL *direction, const double *row_weight,
                              REAL *fisher, const int *pair_row_a, const int *pair_row_b,
                              const double *pair_decay, const double *pair_gain,
                              const double *pair_weight, REAL *exp_avg, REAL *exp_avg_sq)
{
    const int status = madam_check(cfg, step, n_obj, n_rows, param, rows, direction, row_weight,
                                   fisher, pair_row_a, pair_row_b, pair_decay, pair_gain,
                                   pair_weight, exp_avg, exp_avg_sq);
    if (status != CM_OK) return status;

    const double t = (double)step;
    const double bc1 = 1.0 - pow(cfg->beta1, t), bc2 = 1.0 - pow(cfg->beta2, t);
    const SFX(madam_coef) k = {
        (REAL)cfg->beta1, (REAL)(1.0 - cfg->beta1), (REAL)cfg->beta2, (REAL)(1.0 - cfg->beta2),
        (REAL)(cfg->lr / bc1), (REAL)sqrt(bc2), (REAL)cfg->eps,
        (REAL)(1.0 - cfg->lr * cfg->weight_decay), (REAL)(1.0 - cfg->rampup), (REAL)cfg->rampup};
    const int n_pairs = cm_madam_n_pairs(n_obj);
    const int nt = cm_loop_threads(exec, n);
    const long long n_tiles = (long long)((n + MADAM_TILE - 1) / MADAM_TILE);

    const int fused = madam_fusable(n_obj, n_rows, direction, pair_row_a, pair_row_b);
#define MADAM_FUSED_CASE(C)                                                                    \
    case C:                                                                                    \
        SFX(madam_fused)(&k, n, lo, len, C, param, rows, row_weight, fisher, pair_decay,       \
                         pair_gain, pair_weight, exp_avg, exp_avg_sq);                         \
        break;

    _Pragma("omp parallel for schedule(static) num_threads(nt) if(parallel: nt > 1)")
    for (long long tile = 0; tile < n_tiles; tile++) {
        const size_t lo = (size_t)tile * MADAM_TILE;
        const size_t len = n - lo < MADAM_TILE ? n - lo : MADAM_TILE;
        switch (fused) {
            MADAM_FUSED_CASE(1)
            MADAM_FUSED_CASE(2)
            MADAM_FUSED_CASE(3)
            MADAM_FUSED_CASE(4)
        default: {
            REAL d[MADAM_TILE], c[MADAM_TILE];
            SFX(madam_tile)(&k, n, lo, len, n_pairs, n_rows, param, rows, direction,
                            row_weight, fisher, pair_row_a, pair_row_b, pair_decay, pair_gain,
                            pair_weight, exp_avg, exp_avg_sq, d, c);
        }
        }
    }
#undef MADAM_FUSED_CASE
    return CM_OK;
}
