/* mada_impl.h -- the MADA kernels, written once for an element type.
 *
 * Included by mada.c with REAL (float or double), SFX(name) (the suffixer) and SQRT defined.
 * The arithmetic is the one written in cmadam_mada.h, in that order; coefficients are computed
 * in double and rounded once to REAL. The update loop is one pass over memory; the
 * hypergradient loop is one pass that reads the state and reduces in double.
 */

/* firstprivate(k): each thread's copy of the coefficients is a local whose address does not
 * escape, so stores through the (possibly aliased, hence not restrict) v_out / gp_out cannot
 * touch it, and the coefficients stay in registers. */
#define MADA_PFOR(nt) _Pragma("omp parallel for simd schedule(static) num_threads(nt) if(parallel: nt > 1) firstprivate(k)")

static inline REAL SFX(mada_sign)(REAL x) { return (REAL)((x > 0) - (x < 0)); }

/* f[sign(x) + 1]: selects between loop invariants (blends once vectorised). */
static inline REAL SFX(mada_by_sign)(REAL x, const REAL *f)
{
    return x > 0 ? f[2] : (x < 0 ? f[0] : f[1]);
}

/* Scalars of one step, rounded once to REAL. */
typedef struct {
    REAL b1, omb1, omb2, b3, omb3, rho, omrho, c, omc, av, lb1, omlb1, lb2, omlb2;
    REAL t, tm1, sqrt_bc2, inv_sqrt_bc2, eps, step_m, step_n, step_s;
    /* derivatives */
    REAL gamma, omgamma, inv_bc1, dm_scale, cb1, inv_bc2, cb2, avb2, av2b, avc;
    /* omb2 (c + omc s) and av2b (c + omc s) for s = -1, 0, 1 (index s + 1) */
    REAL v_fac[3], d_fac[3];
} SFX(mada_coef);

static void SFX(mada_coef_fill)(SFX(mada_coef) *k, const cm_mada_config *cfg, int64_t step)
{
    const double t = (double)step;
    const double b1 = cfg->beta1, b2 = cfg->beta2, b3 = cfg->beta3;
    const double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    const double a_v = cfg->detach_vbar ? cfg->rho : cfg->rho + (1.0 - cfg->rho) / t;
    k->b1 = (REAL)b1;
    k->omb1 = (REAL)(1.0 - b1);
    k->omb2 = (REAL)(1.0 - b2);
    k->b3 = (REAL)b3;
    k->omb3 = (REAL)(1.0 - b3);
    k->rho = (REAL)cfg->rho;
    k->omrho = (REAL)(1.0 - cfg->rho);
    k->c = (REAL)cfg->c;
    k->omc = (REAL)(1.0 - cfg->c);
    k->av = (REAL)(b2 + (1.0 - b2) * (1.0 - cfg->c));
    k->lb1 = (REAL)cfg->lion_beta1;
    k->omlb1 = (REAL)(1.0 - cfg->lion_beta1);
    k->lb2 = (REAL)cfg->lion_beta2;
    k->omlb2 = (REAL)(1.0 - cfg->lion_beta2);
    k->t = (REAL)t;
    k->tm1 = (REAL)(t - 1.0);
    k->sqrt_bc2 = (REAL)sqrt(bc2);
    k->inv_sqrt_bc2 = (REAL)(1.0 / sqrt(bc2));
    k->eps = (REAL)cfg->eps;
    k->step_m = (REAL)(cfg->gamma * cfg->lr / bc1);
    k->step_n = (REAL)(cfg->gamma * cfg->lr * b3);
    k->step_s = (REAL)(cfg->lr * (1.0 - cfg->gamma));
    k->gamma = (REAL)cfg->gamma;
    k->omgamma = (REAL)(1.0 - cfg->gamma);
    k->inv_bc1 = (REAL)(1.0 / bc1);
    /* m_{t-1} - g = (m_t - g) / beta1; unavailable when beta1 = 0 (taken as 0, documented). */
    k->dm_scale = (REAL)(b1 > 0.0 ? 1.0 / (b1 * bc1) : 0.0);
    k->cb1 = (REAL)(t * pow(b1, t - 1.0) / (bc1 * bc1));
    k->inv_bc2 = (REAL)(1.0 / bc2);
    k->cb2 = (REAL)(t * pow(b2, t - 1.0) / (bc2 * bc2));
    k->avb2 = (REAL)(a_v / bc2);
    k->av2b = (REAL)(2.0 * a_v * (1.0 - b2) / bc2);
    k->avc = (REAL)(a_v * (1.0 - b2) / bc2);
    /* The same REAL operations the loops did per element on s = sign(q - v_{t-1}), done once
     * per value of s, so the loops select instead (mada_by_sign). */
    for (int i = 0; i < 3; i++) {
        const REAL s = (REAL)(i - 1);
        const REAL cs = k->c + k->omc * s;
        k->v_fac[i] = k->omb2 * cs;
        k->d_fac[i] = k->av2b * cs;
    }
}

/* The seven derivatives du/dh_j (j = beta1 .. gamma) and u itself (j = 6) of one element,
 * from the values after the step: g = g_t, D = D_t, vp = v_{t-1}, m, v, vbar, nn = n_t, uL.
 * The same code serves the update pass (stored derivatives) and the hypergradient pass
 * (recomputed ones), so both give the same bits. */
typedef struct {
    REAL d[7];
} SFX(mada_d7);

static inline __attribute__((always_inline)) SFX(mada_d7)
SFX(mada_derivs)(const SFX(mada_coef) *k, REAL g, REAL D, REAL vp, REAL m, REAL v, REAL vbar,
                 REAL nn, REAL uL)
{
    const REAL gh = g + k->b3 * D;
    const REAL q = gh * gh;
    const REAL s = SFX(mada_sign)(q - vp);
    const REAL W = k->rho * v + k->omrho * vbar;
    const REAL sw = SQRT(W) * k->inv_sqrt_bc2;
    const REAL Dn = sw + k->eps;
    /* One division for 1/Dn and 1/(2 sw): inv = 1/(Dn sw'), sw' = sw, or 1 where sw == 0
     * (there kk = 0: the derivative of sqrt at 0 is taken as 0, like sign's). Written with 0/1
     * masks rather than selects, which the compiler would turn into a branch around the
     * division, and the loop would no longer vectorise. */
    const REAL pos = (REAL)(sw > (REAL)0);
    const REAL sw_safe = sw + ((REAL)1 - pos);
    const REAL inv = (REAL)1 / (Dn * sw_safe);
    const REAL r = sw_safe * inv;
    const REAL N = m * k->inv_bc1 + k->b3 * nn;
    const REAL z = N * r;
    const REAL A = k->gamma * r;
    const REAL kk = (((-k->gamma * z) * r) * ((REAL)0.5 * (Dn * inv))) * pos;
    const REAL gt2 = k->c * q + k->omc * (vp + q * s);
    const REAL sL = SFX(mada_sign)(uL);
    const SFX(mada_d7) out = {{
        A * ((m - g) * k->dm_scale + k->cb1 * m),
        kk * (k->avb2 * (vp - gt2) + k->cb2 * W),
        A * (nn + nn - D) + kk * SFX(mada_by_sign)(q - vp, k->d_fac) * (gh * D),
        kk * (k->inv_bc2 * (v - vbar)),
        kk * (k->avc * (q - vp - q * s)),
        z - sL,
        k->gamma * z + k->omgamma * sL}};
    return out;
}

/* One element of the update. n_sq: the step-1 option n_0 = g^2; write_gp: store g in gp_out;
 * nd: number of derivative arrays to store (0, 6 or 7). */
static inline __attribute__((always_inline)) void
SFX(mada_elem)(long long i, size_t n, const SFX(mada_coef) *k, REAL *restrict param,
               const REAL *restrict grad, REAL *restrict exp_avg, const REAL *v_in, REAL *v_out,
               REAL *restrict vbar_a, REAL *restrict n_a, REAL *restrict ml_a, const REAL *gp_in,
               REAL *gp_out, REAL *restrict derivs, const int n_sq, const int write_gp,
               const int nd)
{
    const REAL g = grad[i], gp = gp_in[i], n_old = n_a[i];
    const REAL D = g - gp; /* gp_in is grad itself for a zero first difference: D = +0 */
    const REAL g2 = g * g;
    const REAL gh = g + k->b3 * D;
    const REAL q = gh * gh;
    const REAL vp = v_in[i];
    const REAL m = k->b1 * exp_avg[i] + k->omb1 * g;
    const REAL v = k->av * vp + SFX(mada_by_sign)(q - vp, k->v_fac) * q;
    const REAL np = n_sq ? g2 : n_old;
    const REAL nn = k->b3 * np + k->omb3 * D;
    const REAL mL = k->lb2 * ml_a[i] + k->omlb2 * g;
    const REAL uL = k->lb1 * mL + k->omlb1 * g;
    const REAL vbar = (v + k->tm1 * vbar_a[i]) / k->t;
    const REAL W = k->rho * v + k->omrho * vbar;
    const REAL Dn = SQRT(W) / k->sqrt_bc2 + k->eps;
    const REAL p = param[i];
    param[i] = p - k->step_m * (m / Dn) - k->step_n * (nn / Dn) - k->step_s * SFX(mada_sign)(uL);
    exp_avg[i] = m;
    v_out[i] = v;
    vbar_a[i] = vbar;
    n_a[i] = nn;
    ml_a[i] = mL;
    if (write_gp) gp_out[i] = g;
    if (nd) {
        const SFX(mada_d7) d = SFX(mada_derivs)(k, g, D, vp, m, v, vbar, nn, uL);
        const size_t e = (size_t)i;
        derivs[e] = d.d[0];
        derivs[n + e] = d.d[1];
        derivs[2 * n + e] = d.d[2];
        derivs[3 * n + e] = d.d[3];
        derivs[4 * n + e] = d.d[4];
        derivs[5 * n + e] = d.d[5];
        if (nd == 7) derivs[6 * n + e] = d.d[6];
    }
}

static int SFX(mada_check)(const cm_mada_config *cfg)
{
    if (!cm_nonneg(cfg->lr) || !cm_nonneg(cfg->eps) || !cm_in_unit_interval(cfg->beta1) ||
        !cm_in_unit_interval(cfg->beta2) || !cm_in_unit_interval(cfg->beta3) ||
        !cm_closed_unit(cfg->rho) || !cm_closed_unit(cfg->c) || !cm_closed_unit(cfg->gamma) ||
        !cm_in_unit_interval(cfg->lion_beta1) || !cm_in_unit_interval(cfg->lion_beta2) ||
        (cfg->first_diff != CM_MADA_DIFF_ZERO && cfg->first_diff != CM_MADA_DIFF_GRAD) ||
        (cfg->n_init != CM_MADA_N_ZERO && cfg->n_init != CM_MADA_N_GRAD_SQ))
        return CM_ERR_HYPER;
    return CM_OK;
}

static int SFX(cm_mada_step)(const cm_mada_config *cfg, const cm_exec_config *exec, int64_t step,
                             size_t n, REAL *param, const REAL *grad, REAL *exp_avg,
                             const REAL *exp_avg_sq_in, REAL *exp_avg_sq_out,
                             REAL *avg_exp_avg_sq, REAL *exp_avg_diff, REAL *lion_exp_avg,
                             const REAL *prev_grad_in, REAL *prev_grad_out, REAL *derivs,
                             int n_derivs)
{
    if (!cfg || !param || !grad || !exp_avg || !exp_avg_sq_in || !exp_avg_sq_out ||
        !avg_exp_avg_sq || !exp_avg_diff || !lion_exp_avg || !prev_grad_in)
        return CM_ERR_NULL;
    if (n_derivs != 0 && n_derivs != 6 && n_derivs != 7) return CM_ERR_SIZE;
    if (n_derivs && !derivs) return CM_ERR_NULL;
    const int status = SFX(mada_check)(cfg);
    if (status != CM_OK) return status;
    if (step < 1) return CM_ERR_STEP;

    SFX(mada_coef) k;
    SFX(mada_coef_fill)(&k, cfg, step);
    const int first = step == 1;
    /* D_1 = 0: read grad as the previous gradient, so that D = g - g = +0 exactly. */
    const REAL *gp_in = first && cfg->first_diff == CM_MADA_DIFF_ZERO ? grad : prev_grad_in;
    const int n_sq = first && cfg->n_init == CM_MADA_N_GRAD_SQ;
    const int write_gp = prev_grad_out != NULL;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;

#define MADA_LOOP(NSQ, WG, ND)                                                                 \
    do {                                                                                       \
        MADA_PFOR(nt)                                                                          \
        for (long long i = 0; i < nn; i++)                                                     \
            SFX(mada_elem)(i, n, &k, param, grad, exp_avg, exp_avg_sq_in, exp_avg_sq_out,      \
                           avg_exp_avg_sq, exp_avg_diff, lion_exp_avg, gp_in, prev_grad_out,   \
                           derivs, NSQ, WG, ND);                                               \
    } while (0)
    /* One loop per (write g, derivatives) so each is branch-free and vectorises; step 1 (run
     * once) takes its flags at run time. */
    if (first) MADA_LOOP(n_sq, write_gp, n_derivs);
    else if (n_derivs == 6) { if (write_gp) MADA_LOOP(0, 1, 6); else MADA_LOOP(0, 0, 6); }
    else if (n_derivs == 7) { if (write_gp) MADA_LOOP(0, 1, 7); else MADA_LOOP(0, 0, 7); }
    else if (write_gp) MADA_LOOP(0, 1, 0);
    else MADA_LOOP(0, 0, 0);
#undef MADA_LOOP
    return CM_OK;
}

/* MADA_CHUNK lanes of the element type, added as one vector (the lane-wise sums of a tile). */
typedef REAL SFX(mada_chunk) __attribute__((vector_size(MADA_CHUNK * sizeof(REAL))));

/* The end of the tile that starts at i0 (mada.c: tiles of MADA_TILE_CHUNKS whole chunks). */
static inline size_t SFX(mada_tile_end)(size_t i0, size_t hi)
{
    const size_t whole = i0 + (hi - i0) / MADA_CHUNK * MADA_CHUNK;
    const size_t full = i0 + MADA_TILE_CHUNKS * MADA_CHUNK;
    return full < whole ? full : whole;
}

/* The products of a batch of len (a multiple of MADA_CHUNK) elements, prod[j * MADA_BATCH + l],
 * added chunk after chunk to the tile's lane sums tacc[j]: lane l of chunk c goes to lane l, in
 * order of c, the order the reduction fixes (mada.c). The seven sums are independent, so the
 * loop over j is the inner one: seven addition chains in flight instead of one. */
static inline __attribute__((always_inline)) void
SFX(mada_chunks_add)(SFX(mada_chunk) *tacc, const REAL *restrict prod, size_t len)
{
    for (size_t c = 0; c < len; c += MADA_CHUNK)
        for (int j = 0; j < CM_MADA_NHYPER; j++) {
            SFX(mada_chunk) x;
            memcpy(&x, prod + (size_t)j * MADA_BATCH + c, sizeof x);
            tacc[j] += x;
        }
}

/* Adds a tile's MADA_CHUNK element-type lane sums to the double lanes. */
static inline void SFX(mada_flush)(mada_lanes *acc, const SFX(mada_chunk) *tacc)
{
    double t[MADA_CHUNK];
    for (int l = 0; l < MADA_CHUNK; l++) t[l] = (double)(*tacc)[l];
    MADA_LANES_ADD(*acc, t);
}

/* A block's elements [lo, hi), summed in the order mada.c fixes; leaves the block's seven sums in
 * out. BATCH(i0, len, prod) does whatever the pass does with elements i0 .. i0 + len - 1 and
 * leaves their products g * du/dh_j in prod[j * MADA_BATCH + l]. Whole chunks are done
 * MADA_BATCH elements at a time (one long vectorised loop, so the coefficients are loaded once
 * per batch, not once per chunk), their products then added chunk after chunk to a tile's lane
 * sums, whose lanes go to the double lanes at the end of the tile. The elements after the last
 * whole chunk go straight to the double lanes: (double)p, where an element-type sum 0 + p would
 * give +0 for p = -0, the same once added, as a double lane starts at +0 and never holds -0.
 * A macro, as BATCH differs between the passes. */
#define MADA_BLOCK_REDUCE(lo, hi, out, BATCH)                                                  \
    do {                                                                                       \
        mada_lanes acc_[CM_MADA_NHYPER];                                                       \
        REAL prod_[CM_MADA_NHYPER * MADA_BATCH];                                               \
        MADA_LANES_ZERO(acc_);                                                                 \
        size_t i0_ = (lo);                                                                     \
        while (i0_ + MADA_CHUNK <= (hi)) {                                                     \
            const size_t stop_ = SFX(mada_tile_end)(i0_, (hi));                                \
            SFX(mada_chunk) tacc_[CM_MADA_NHYPER];                                             \
            memset(tacc_, 0, sizeof tacc_);                                                    \
            while (i0_ < stop_) {                                                              \
                const size_t len_ = stop_ - i0_ < MADA_BATCH ? stop_ - i0_ : MADA_BATCH;       \
                BATCH(i0_, len_, prod_);                                                       \
                SFX(mada_chunks_add)(tacc_, prod_, len_);                                      \
                i0_ += len_;                                                                   \
            }                                                                                  \
            for (int j_ = 0; j_ < CM_MADA_NHYPER; j_++) SFX(mada_flush)(&acc_[j_], &tacc_[j_]); \
        }                                                                                      \
        if (i0_ < (hi)) {                                                                      \
            const size_t len_ = (hi) - i0_;                                                    \
            BATCH(i0_, len_, prod_);                                                           \
            for (size_t l_ = 0; l_ < len_; l_++)                                               \
                for (int j_ = 0; j_ < CM_MADA_NHYPER; j_++)                                    \
                    MADA_LANE_ADD(acc_[j_], l_, (double)prod_[(size_t)j_ * MADA_BATCH + l_]);  \
        }                                                                                      \
        for (int j_ = 0; j_ < CM_MADA_NHYPER; j_++) (out)[j_] = mada_lanes_total(&acc_[j_]);  \
    } while (0)

/* grad * du/dh_j of element e = i0 + l, recomputed from the state, into
 * prod[j * MADA_BATCH + l]; with copy, grad[e] is copied to gcopy[e]. */
static inline __attribute__((always_inline)) void
SFX(mada_dot_elem)(const SFX(mada_coef) *k, size_t i0, size_t l, const REAL *restrict grad,
                   const REAL *restrict m_a, const REAL *restrict v_a,
                   const REAL *restrict vp_a, const REAL *restrict vbar_a,
                   const REAL *restrict n_a, const REAL *restrict ml_a, const REAL *gp_a,
                   const REAL *gp2_a, REAL *gcopy, const int copy, REAL *restrict prod)
{
    const size_t e = i0 + l;
    const REAL g1 = grad[e], g = gp_a[e], g0 = gp2_a[e];
    const REAL D = g - g0;
    const REAL uL = k->lb1 * ml_a[e] + k->omlb1 * g;
    const SFX(mada_d7) d =
        SFX(mada_derivs)(k, g, D, vp_a[e], m_a[e], v_a[e], vbar_a[e], n_a[e], uL);
    for (int j = 0; j < CM_MADA_NHYPER; j++) prod[(size_t)j * MADA_BATCH + l] = g1 * d.d[j];
    if (copy) gcopy[e] = g1;
}

/* mada_dot_elem for elements i0 .. i0 + len - 1 (len <= MADA_BATCH). Indices are size_t: the
 * Python build compiles with -fwrapv, under which int index arithmetic may wrap and the
 * vectoriser turns the stores into scatters. */
static inline __attribute__((always_inline)) void
SFX(mada_dot_batch)(const SFX(mada_coef) *k, size_t i0, size_t len, const REAL *restrict grad,
                    const REAL *restrict m_a, const REAL *restrict v_a,
                    const REAL *restrict vp_a, const REAL *restrict vbar_a,
                    const REAL *restrict n_a, const REAL *restrict ml_a, const REAL *gp_a,
                    const REAL *gp2_a, REAL *gcopy, const int copy, REAL *restrict prod)
{
#define MADA_DOT_ELEM(l)                                                                       \
    SFX(mada_dot_elem)(k, i0, l, grad, m_a, v_a, vp_a, vbar_a, n_a, ml_a, gp_a, gp2_a, gcopy,   \
                       copy, prod)
    if (len == MADA_BATCH) {
        /* Both halves of the batch in one iteration: two independent sqrt -> divide -> product
         * chains side by side, which the core overlaps (one alone leaves it waiting). */
        _Pragma("omp simd")
        for (size_t l = 0; l < MADA_BATCH / 2; l++) {
            MADA_DOT_ELEM(l);
            MADA_DOT_ELEM(l + MADA_BATCH / 2);
        }
    } else {
        _Pragma("omp simd")
        for (size_t l = 0; l < len; l++) MADA_DOT_ELEM(l);
    }
#undef MADA_DOT_ELEM
}

static int SFX(cm_mada_hypergrad)(const cm_mada_config *cfg, const cm_exec_config *exec,
                                  int64_t step, size_t n, const REAL *grad, const REAL *exp_avg,
                                  const REAL *exp_avg_sq, const REAL *exp_avg_sq_prev,
                                  const REAL *avg_exp_avg_sq, const REAL *exp_avg_diff,
                                  const REAL *lion_exp_avg, const REAL *prev_grad,
                                  const REAL *prev_grad2, REAL *grad_copy, double *dot)
{
    if (!cfg || !grad || !exp_avg || !exp_avg_sq || !exp_avg_sq_prev || !avg_exp_avg_sq ||
        !exp_avg_diff || !lion_exp_avg || !prev_grad || !prev_grad2 || !dot)
        return CM_ERR_NULL;
    const int status = SFX(mada_check)(cfg);
    if (status != CM_OK) return status;
    if (step < 1) return CM_ERR_STEP;

    SFX(mada_coef) k;
    SFX(mada_coef_fill)(&k, cfg, step);
    /* D_1 = 0: difference g_1 with itself (as the update pass does). */
    const REAL *g0 = step == 1 && cfg->first_diff == CM_MADA_DIFF_ZERO ? prev_grad : prev_grad2;
    const size_t nb = mada_n_blocks(n);
    double partial[MADA_MAX_BLOCKS][CM_MADA_NHYPER];
    const int nt = cm_loop_threads(exec, n);

    _Pragma("omp parallel for schedule(static) num_threads(nt) if(nt > 1) firstprivate(k)")
    for (size_t b = 0; b < nb; b++) {
        const size_t lo = mada_block_start(n, nb, b), hi = mada_block_start(n, nb, b + 1);
#define MADA_DOT_BATCH(i0, len, prod, COPY)                                                    \
    SFX(mada_dot_batch)(&k, i0, len, grad, exp_avg, exp_avg_sq, exp_avg_sq_prev,                \
                        avg_exp_avg_sq, exp_avg_diff, lion_exp_avg, prev_grad, g0, grad_copy,  \
                        COPY, prod)
#define MADA_DOT_COPY(i0, len, prod) MADA_DOT_BATCH(i0, len, prod, 1)
#define MADA_DOT_NOCOPY(i0, len, prod) MADA_DOT_BATCH(i0, len, prod, 0)
        if (grad_copy) MADA_BLOCK_REDUCE(lo, hi, partial[b], MADA_DOT_COPY);
        else MADA_BLOCK_REDUCE(lo, hi, partial[b], MADA_DOT_NOCOPY);
#undef MADA_DOT_NOCOPY
#undef MADA_DOT_COPY
#undef MADA_DOT_BATCH
    }
    mada_blocks_sum(partial, nb, CM_MADA_NHYPER, dot);
    return CM_OK;
}

/* A batch of the fused step t, elements i0 .. i0 + len - 1 (len <= MADA_BATCH): first
 * grad_t * du_{t-1}/dh (recomputed with the previous step's coefficients kp from the state
 * after step t - 1) into prod[j * MADA_BATCH + l], then the update of step t (coefficients k).
 * v_out / gp_out hold v_{t-2} / g_{t-2}: the first loop reads them (and the state) before the
 * second overwrites them with v_t / g_t; gp_old is where g_{t-2} is read (gp_in itself for a
 * zero D_1). Two loops rather than one: each keeps its own coefficients in registers, and the
 * batch is still in L1 when the second runs. */
static inline __attribute__((always_inline)) void
SFX(mada_fused_batch)(const SFX(mada_coef) *kp, const SFX(mada_coef) *k, size_t i0, size_t len,
                      REAL *restrict param, const REAL *restrict grad, REAL *restrict exp_avg,
                      const REAL *v_in, REAL *v_out, REAL *restrict vbar_a, REAL *restrict n_a,
                      REAL *restrict ml_a, const REAL *gp_in, const REAL *gp_old, REAL *gp_out,
                      REAL *restrict prod)
{
    SFX(mada_dot_batch)(kp, i0, len, grad, exp_avg, v_in, v_out, vbar_a, n_a, ml_a, gp_in, gp_old,
                        NULL, 0, prod);
    _Pragma("omp simd")
    for (size_t l = 0; l < len; l++)
        SFX(mada_elem)((long long)(i0 + l), 0, k, param, grad, exp_avg, v_in, v_out, vbar_a, n_a,
                       ml_a, gp_in, gp_out, NULL, 0, 1, 0);
}

static int SFX(cm_mada_step_fused)(const cm_mada_config *cfg, const cm_mada_config *prev,
                                   const cm_exec_config *exec, int64_t step, size_t n,
                                   REAL *param, const REAL *grad, REAL *exp_avg,
                                   const REAL *exp_avg_sq_in, REAL *exp_avg_sq_out,
                                   REAL *avg_exp_avg_sq, REAL *exp_avg_diff, REAL *lion_exp_avg,
                                   const REAL *prev_grad_in, REAL *prev_grad_out, double *dot)
{
    if (!cfg || !prev || !param || !grad || !exp_avg || !exp_avg_sq_in || !exp_avg_sq_out ||
        !avg_exp_avg_sq || !exp_avg_diff || !lion_exp_avg || !prev_grad_in || !prev_grad_out ||
        !dot)
        return CM_ERR_NULL;
    int status = SFX(mada_check)(cfg);
    if (status == CM_OK) status = SFX(mada_check)(prev);
    if (status != CM_OK) return status;
    if (step < 2) return CM_ERR_STEP;

    SFX(mada_coef) k, kp;
    SFX(mada_coef_fill)(&k, cfg, step);
    SFX(mada_coef_fill)(&kp, prev, step - 1);
    const REAL *gp_old =
        step == 2 && prev->first_diff == CM_MADA_DIFF_ZERO ? prev_grad_in : prev_grad_out;
    const size_t nb = mada_n_blocks(n);
    double partial[MADA_MAX_BLOCKS][CM_MADA_NHYPER];
    const int nt = cm_loop_threads(exec, n);

    _Pragma("omp parallel for schedule(static) num_threads(nt) if(nt > 1) firstprivate(k, kp)")
    for (size_t b = 0; b < nb; b++) {
        const size_t lo = mada_block_start(n, nb, b), hi = mada_block_start(n, nb, b + 1);
#define MADA_FUSED_BATCH(i0, len, prod)                                                        \
    SFX(mada_fused_batch)(&kp, &k, i0, len, param, grad, exp_avg, exp_avg_sq_in,               \
                          exp_avg_sq_out, avg_exp_avg_sq, exp_avg_diff, lion_exp_avg,          \
                          prev_grad_in, gp_old, prev_grad_out, prod)
        MADA_BLOCK_REDUCE(lo, hi, partial[b], MADA_FUSED_BATCH);
#undef MADA_FUSED_BATCH
    }
    mada_blocks_sum(partial, nb, CM_MADA_NHYPER, dot);
    return CM_OK;
}

/* The stored pass over a block's elements [lo, hi): grad * derivs[j] for j < nd, in the order
 * of the other passes (mada.c). The nd sums advance together chunk by chunk: grad is read once,
 * and nd independent addition chains are in flight instead of one. */
static inline __attribute__((always_inline)) void
SFX(mada_stored_range)(const REAL *restrict grad, const REAL *restrict derivs, size_t n,
                       size_t lo, size_t hi, const int nd, double *out)
{
    mada_lanes acc[CM_MADA_NHYPER];
    MADA_LANES_ZERO(acc);
    size_t i0 = lo;
    while (i0 + MADA_CHUNK <= hi) {
        const size_t stop = SFX(mada_tile_end)(i0, hi);
        SFX(mada_chunk) tacc[CM_MADA_NHYPER];
        memset(tacc, 0, sizeof tacc);
        for (; i0 < stop; i0 += MADA_CHUNK) {
            SFX(mada_chunk) g;
            memcpy(&g, grad + i0, sizeof g);
            for (int j = 0; j < nd; j++) {
                SFX(mada_chunk) d;
                memcpy(&d, derivs + (size_t)j * n + i0, sizeof d);
                tacc[j] += g * d;
            }
        }
        for (int j = 0; j < nd; j++) SFX(mada_flush)(&acc[j], &tacc[j]);
    }
    for (int l = 0; i0 < hi; i0++, l++)
        for (int j = 0; j < nd; j++)
            MADA_LANE_ADD(acc[j], l, (double)(grad[i0] * derivs[(size_t)j * n + i0]));
    for (int j = 0; j < nd; j++) out[j] = mada_lanes_total(&acc[j]);
}

static int SFX(cm_mada_hypergrad_stored)(const cm_exec_config *exec, size_t n, const REAL *grad,
                                         const REAL *derivs, int n_derivs, double *dot)
{
    if (!dot || (n && (!grad || !derivs))) return CM_ERR_NULL;
    if (n_derivs != 6 && n_derivs != 7) return CM_ERR_SIZE;
    const size_t nb = mada_n_blocks(n);
    double partial[MADA_MAX_BLOCKS][CM_MADA_NHYPER];
    const int nt = cm_loop_threads(exec, n);

    _Pragma("omp parallel for schedule(static) num_threads(nt) if(nt > 1)")
    for (size_t b = 0; b < nb; b++) {
        const size_t lo = mada_block_start(n, nb, b), hi = mada_block_start(n, nb, b + 1);
        /* a constant count, so the sums stay in registers */
        if (n_derivs == 7) SFX(mada_stored_range)(grad, derivs, n, lo, hi, 7, partial[b]);
        else SFX(mada_stored_range)(grad, derivs, n, lo, hi, 6, partial[b]);
    }
    mada_blocks_sum(partial, nb, n_derivs, dot);
    for (int j = n_derivs; j < CM_MADA_NHYPER; j++) dot[j] = 0.0;
    return CM_OK;
}

#undef MADA_BLOCK_REDUCE
#undef MADA_PFOR
