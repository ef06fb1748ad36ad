/* amoo_impl.h -- AMOO's kernels written once for an element type (see cmadam_amoo.h).
 *
 * Included by amoo.c with REAL (float or double), SFX(name) (the suffixer: _f32_base,
 * _f64_avx2, ...), FABS, EXP, LOG, REAL_TINY (the smallest positive normal number) and GEMV
 * (cblas_sgemv or cblas_dgemv, already prefixed) defined, once per element type and instruction
 * set; PU's exponential is amoo.c's AMOO_EXP. Element loops are independent per element; the
 * sums over q's d entries go through amoo_block_* (fixed blocks, double accumulators), so no
 * result depends on the thread count.
 */

/* "if(parallel: ...)": a plain if() on a combined construct would also switch off simd (OpenMP 5). */
#define AMOO_PFOR(nt) _Pragma("omp parallel for simd schedule(static) num_threads(nt) if(parallel: nt > 1)")

/* ------------------------------------------------------------------------------- probes */
static int SFX(cm_rademacher)(const cm_exec_config *exec, uint64_t seed, uint64_t step,
                                uint64_t probe, size_t n, REAL *z)
{
    if (!z) return CM_ERR_NULL;
    const uint64_t key = amoo_probe_key(seed, step, probe);
    const size_t n_words = (n + 63) / 64;
    const int nt = cm_loop_threads(exec, n);
    const long long nw = (long long)n_words;
#pragma omp parallel for schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (long long k = 0; k < nw; k++) {
        const uint64_t word = amoo_mix64(key + (uint64_t)k * AMOO_GOLDEN);
        const size_t lo = (size_t)k * 64;
        const size_t len = n - lo < 64 ? n - lo : 64;
        REAL *zk = z + lo;
#pragma omp simd
        for (size_t b = 0; b < len; b++)
            zk[b] = (REAL)(1 - 2 * (int)((word >> b) & 1u));
    }
    return CM_OK;
}

/* --------------------------------------------------------------------------- Hutchinson */
static int SFX(cm_hutchinson_accumulate)(const cm_exec_config *exec, size_t rows, size_t n,
                                      const REAL *z, const REAL *hz, REAL *acc)
{
    if (!z || !hz || !acc) return CM_ERR_NULL;
    const int nt = cm_loop_threads(exec, rows * n);
    const long long nn = (long long)n;
    /* one parallel region; each thread takes the same static share of every row, with no
     * barrier between rows (the rows are independent). "if(parallel: ...)" as everywhere in
     * the core, although on a plain parallel construct a bare if() would not touch the simd */
#pragma omp parallel num_threads(nt) if(parallel: nt > 1)
    for (size_t r = 0; r < rows; r++) {
        const REAL *restrict h = hz + r * n;
        REAL *restrict a = acc + r * n;
        const REAL *restrict zz = z;
#pragma omp for simd schedule(static) nowait
        for (long long i = 0; i < nn; i++) a[i] = a[i] + zz[i] * h[i];
    }
    return CM_OK;
}

static int SFX(cm_hutchinson_update)(const cm_hutchinson_config *cfg, const cm_exec_config *exec,
                                  int64_t step, int64_t n_samples, size_t n, const REAL *acc,
                                  REAL *ema, REAL *out)
{
    if (!cfg || !acc || !out) return CM_ERR_NULL;
    if (!cm_in_unit_interval(cfg->beta) || cfg->transform < CM_HUTCH_SIGNED ||
        cfg->transform > CM_HUTCH_CLIP || !isfinite(cfg->clip_min) || n_samples < 1)
        return CM_ERR_HYPER;
    if (cfg->beta != 0.0 && !ema) return CM_ERR_NULL;
    if (step < 1) return CM_ERR_STEP;

    const REAL count = (REAL)(double)n_samples;
    const REAL beta = (REAL)cfg->beta, omb = (REAL)(1.0 - cfg->beta);
    const REAL bc = (REAL)(1.0 - pow(cfg->beta, (double)step));
    const REAL floor_ = (REAL)cfg->clip_min;
    const int transform = cfg->transform, use_ema = cfg->beta != 0.0;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;
    if (!use_ema) {
        AMOO_PFOR(nt)
        for (long long i = 0; i < nn; i++) {
            REAL e = acc[i] / count;
            if (transform == CM_HUTCH_ABS) e = FABS(e);
            else if (transform == CM_HUTCH_CLIP) e = e < floor_ ? floor_ : e;
            if (ema) ema[i] = e;
            out[i] = e;
        }
    } else {
        AMOO_PFOR(nt)
        for (long long i = 0; i < nn; i++) {
            REAL e = acc[i] / count;
            if (transform == CM_HUTCH_ABS) e = FABS(e);
            else if (transform == CM_HUTCH_CLIP) e = e < floor_ ? floor_ : e;
            const REAL m = beta * ema[i] + omb * e;
            ema[i] = m;
            out[i] = m / bc;
        }
    }
    return CM_OK;
}

/* ----------------------------------------------------------------------------------- PU */
/* 32 bytes of REAL (8 float or 4 double: one AVX register, two SSE ones), the width the fused
 * pass works in: GCC keeps wider GNU vectors in memory. */
#define AMOO_VW ((int)(32 / sizeof(REAL)))
typedef REAL SFX(amoo_vw) __attribute__((vector_size(32)));

/* The 8 double lanes of a sum (lo: lanes 0..3, hi: 4..7) += p, chunk h (0 or 1) of 8 entries
 * (AMOO_VW of them: a float chunk holds all 8 lanes, a double one half of them). Element by
 * element: GCC 12 makes this one vcvtps2pd per 4 floats, __builtin_convertvector two halves and
 * an insert. The indices are taken modulo AMOO_VW so that the other type's branch still
 * compiles. A macro: a function would pass vectors by value, whose ABI depends on the
 * instruction set. */
#define AMOO_ADD_CHUNK(lo, hi, p, h)                                                           \
    do {                                                                                       \
        const amoo_d4 first4_ = {(double)(p)[0], (double)(p)[1], (double)(p)[2],               \
                                 (double)(p)[3]};                                              \
        if (AMOO_VW == 8) {                                                                    \
            (lo) += first4_;                                                                   \
            (hi) += (amoo_d4){(double)(p)[4 % AMOO_VW], (double)(p)[5 % AMOO_VW],              \
                              (double)(p)[6 % AMOO_VW], (double)(p)[7 % AMOO_VW]};             \
        } else if ((h) == 0) {                                                                 \
            (lo) += first4_;                                                                   \
        } else {                                                                               \
            (hi) += first4_;                                                                   \
        }                                                                                      \
    } while (0)

/* max_j (c * lq_j - eta * v_j): exact for any split (max is order independent). */
static REAL SFX(amoo_max_affine)(int nt, size_t n, const REAL *lq, const REAL *v, REAL c,
                                 REAL eta)
{
    REAL mx = -(REAL)INFINITY;
    const long long nn = (long long)n;
#pragma omp parallel for simd reduction(max : mx) schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (long long j = 0; j < nn; j++) {
        const REAL t = c * lq[j] - eta * v[j];
        mx = t > mx ? t : mx;
    }
    return mx;
}

/* min_j x_j. */
static REAL SFX(amoo_min)(int nt, size_t n, const REAL *x)
{
    REAL mn = (REAL)INFINITY;
    const long long nn = (long long)n;
#pragma omp parallel for simd reduction(min : mn) schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (long long j = 0; j < nn; j++) mn = x[j] < mn ? x[j] : mn;
    return mn;
}

/* The 8 lanes of a sum added up: ((0+1)+(2+3))+((4+5)+(6+7)). */
static inline double SFX(amoo_lanes_total)(const double *l8)
{
    return ((l8[0] + l8[1]) + (l8[2] + l8[3])) + ((l8[4] + l8[5]) + (l8[6] + l8[7]));
}

/* out_j = exp(t_j), t_j = c lq_j - eta v_j - shift, for j < n; when store_log also lq_j = t_j
 * (out = q then). out_j is added (in double, in order of j) to lane j mod 8 of sum8: the entries
 * start at a multiple of 8 from their block's start. Branch-free loops, so that they vectorise
 * (the exponentials too, for float); the lanes keep the sum's additions independent of each
 * other (one chain of d additions in a row would cost more than the exponentials). */
static inline void SFX(amoo_exp_run)(size_t n, REAL *lq, const REAL *v, REAL c, REAL eta,
                                     REAL shift, REAL *out, int store_log, double *sum8)
{
    for (size_t j = 0; j < n; j++) out[j] = c * lq[j] - eta * v[j] - shift;
    if (store_log) memcpy(lq, out, n * sizeof(REAL));
    for (size_t j = 0; j < n; j++) out[j] = AMOO_EXP(out[j]);
    amoo_d4 lo, hi;
    memcpy(&lo, sum8, sizeof lo);
    memcpy(&hi, sum8 + 4, sizeof hi);
    const size_t full = n - n % 8;
    for (size_t j = 0; j < full; j += 8)
        for (int h = 0; h < 8 / AMOO_VW; h++) {
            SFX(amoo_vw) e;
            memcpy(&e, out + j + (size_t)(h * AMOO_VW), sizeof e);
            AMOO_ADD_CHUNK(lo, hi, e, h);
        }
    memcpy(sum8, &lo, sizeof lo);
    memcpy(sum8 + 4, &hi, sizeof hi);
    for (size_t j = full; j < n; j++) sum8[j - full] += (double)out[j];
}

/* amoo_exp_run over all n entries; returns sum_j out_j, each block's lanes added up, then the
 * blocks in order. */
static double SFX(amoo_exp_sum)(int nt, size_t n, REAL *lq, const REAL *v, REAL c, REAL eta,
                                REAL shift, REAL *out, int store_log)
{
    double partial[AMOO_MAX_BLOCKS];
    const size_t nb = amoo_n_blocks(n);
    const long long nbl = (long long)nb;
#pragma omp parallel for schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (long long b = 0; b < nbl; b++) {
        const size_t lo = amoo_block_start(n, nb, (size_t)b);
        const size_t hi = amoo_block_start(n, nb, (size_t)b + 1);
        double sum8[8] = {0};
        SFX(amoo_exp_run)(hi - lo, lq + lo, v + lo, c, eta, shift, out + lo, store_log, sum8);
        partial[b] = SFX(amoo_lanes_total)(sum8);
    }
    double total = 0.0;
    for (size_t b = 0; b < nb; b++) total += partial[b];
    return total;
}

/* sum_j x_j in double over the fixed blocks. */
static double SFX(amoo_sum)(int nt, size_t n, const REAL *x)
{
    double partial[AMOO_MAX_BLOCKS];
    const size_t nb = amoo_n_blocks(n);
    const long long nbl = (long long)nb;
#pragma omp parallel for schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (long long b = 0; b < nbl; b++) {
        const size_t lo = amoo_block_start(n, nb, (size_t)b);
        const size_t hi = amoo_block_start(n, nb, (size_t)b + 1);
        double s = 0.0;
        for (size_t j = lo; j < hi; j++) s += (double)x[j];
        partial[b] = s;
    }
    double total = 0.0;
    for (size_t b = 0; b < nb; b++) total += partial[b];
    return total;
}

/* sum_j x_j y_j in double over the fixed blocks. */
static double SFX(amoo_dot)(int nt, size_t n, const REAL *x, const REAL *y)
{
    double partial[AMOO_MAX_BLOCKS];
    const size_t nb = amoo_n_blocks(n);
    const long long nbl = (long long)nb;
#pragma omp parallel for schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (long long b = 0; b < nbl; b++) {
        const size_t lo = amoo_block_start(n, nb, (size_t)b);
        const size_t hi = amoo_block_start(n, nb, (size_t)b + 1);
        double s = 0.0;
        for (size_t j = lo; j < hi; j++) s += (double)x[j] * (double)y[j];
        partial[b] = s;
    }
    double total = 0.0;
    for (size_t b = 0; b < nb; b++) total += partial[b];
    return total;
}

/* q_j = exp(lq_j) k: the exponentials the last products formed from lq, normalised. */
static void SFX(amoo_exp_scale)(int nt, size_t n, const REAL *lq, REAL *q, REAL k)
{
    const long long nn = (long long)n;
    AMOO_PFOR(nt)
    for (long long j = 0; j < nn; j++) q[j] = AMOO_EXP(lq[j]) * k;
}

/* max_ij |a_ij|; *finite = 0 when an entry is NaN or infinite. */
static REAL SFX(amoo_max_abs)(int nt, size_t n, const REAL *a, int *finite)
{
    REAL mx = 0;
    int bad = 0;
    const long long nn = (long long)n;
#pragma omp parallel for simd reduction(max : mx) reduction(| : bad) schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (long long j = 0; j < nn; j++) {
        const REAL x = FABS(a[j]);
        bad |= !(x < (REAL)INFINITY);
        mx = x > mx ? x : mx;
    }
    *finite = !bad;
    return mx;
}

/* Row k (pointer rk, weight yk, lanes lo and hi) on the chunk at column jh. */
#define AMOO_ROW_STEP(rk, yk, lo, hi)                                                          \
    do {                                                                                       \
        SFX(amoo_vw) a_, p_;                                                                   \
        memcpy(&a_, (rk) + jh, sizeof a_);                                                     \
        p_ = a_ * xv;                                                                          \
        AMOO_ADD_CHUNK(lo, hi, p_, h);                                                         \
        vv = vv + (yk) * a_;                                                                   \
    } while (0)

/* Rows i .. i + nr - 1 (nr <= 4, a constant once inlined) of one tile of len columns: a points
 * at row i of the tile (rows d apart), lanes at row i's 8 lanes, y at y_i. Adds the products
 * a_kj x_j, rounded to REAL, to lane j mod 8 of row k (in order of j) and y_k a_kj to v_j (in
 * order of k; v_j = y_i a_ij first when first). Eight columns a step, in chunks of one AVX
 * register (GNU vectors: GCC keeps wider ones in memory), so that the lanes stay in registers
 * and v is loaded and stored once per nr rows. */
static inline __attribute__((always_inline)) void
SFX(amoo_rows)(const int nr, size_t d, size_t len, const REAL *a, const REAL *x, const REAL *y,
               double *lanes, REAL *v, int first)
{
    /* rows past nr alias row 0 and are never touched */
    const REAL *r1 = nr > 1 ? a + d : a, *r2 = nr > 2 ? a + 2 * d : a;
    const REAL *r3 = nr > 3 ? a + 3 * d : a;
    const REAL y0 = y[0], y1 = nr > 1 ? y[1] : 0, y2 = nr > 2 ? y[2] : 0, y3 = nr > 3 ? y[3] : 0;
    amoo_d4 lo0, hi0, lo1 = {0}, hi1 = {0}, lo2 = {0}, hi2 = {0}, lo3 = {0}, hi3 = {0};
    memcpy(&lo0, lanes, sizeof lo0);
    memcpy(&hi0, lanes + 4, sizeof hi0);
    if (nr > 1) memcpy(&lo1, lanes + 8, sizeof lo1), memcpy(&hi1, lanes + 12, sizeof hi1);
    if (nr > 2) memcpy(&lo2, lanes + 16, sizeof lo2), memcpy(&hi2, lanes + 20, sizeof hi2);
    if (nr > 3) memcpy(&lo3, lanes + 24, sizeof lo3), memcpy(&hi3, lanes + 28, sizeof hi3);
    const size_t full = len - len % 8;
    for (size_t j = 0; j < full; j += 8) {
        for (int h = 0; h < 8 / AMOO_VW; h++) {
            const size_t jh = j + (size_t)(h * AMOO_VW);
            SFX(amoo_vw) xv, a0, p0, vv;
            memcpy(&xv, x + jh, sizeof xv);
            /* row 0 starts v (from 0, or from its stored value) */
            memcpy(&a0, a + jh, sizeof a0);
            p0 = a0 * xv;
            AMOO_ADD_CHUNK(lo0, hi0, p0, h);
            if (first) {
                vv = y0 * a0;
            } else {
                memcpy(&vv, v + jh, sizeof vv);
                vv = vv + y0 * a0;
            }
            if (nr > 1) AMOO_ROW_STEP(r1, y1, lo1, hi1);
            if (nr > 2) AMOO_ROW_STEP(r2, y2, lo2, hi2);
            if (nr > 3) AMOO_ROW_STEP(r3, y3, lo3, hi3);
            memcpy(v + jh, &vv, sizeof vv);
        }
    }
    memcpy(lanes, &lo0, sizeof lo0);
    memcpy(lanes + 4, &hi0, sizeof hi0);
    if (nr > 1) memcpy(lanes + 8, &lo1, sizeof lo1), memcpy(lanes + 12, &hi1, sizeof hi1);
    if (nr > 2) memcpy(lanes + 16, &lo2, sizeof lo2), memcpy(lanes + 20, &hi2, sizeof hi2);
    if (nr > 3) memcpy(lanes + 24, &lo3, sizeof lo3), memcpy(lanes + 28, &hi3, sizeof hi3);
    /* the last len % 8 columns (the end of a block), one at a time on the stored lanes */
    for (size_t j = full; j < len; j++) {
        REAL vj = first ? y0 * a[j] : v[j] + y0 * a[j];
        lanes[j - full] += (double)(a[j] * x[j]);
        for (int k = 1; k < nr; k++) {
            const REAL akj = a[(size_t)k * d + j];
            lanes[8 * k + j - full] += (double)(akj * x[j]);
            vj = vj + y[k] * akj;
        }
        v[j] = vj;
    }
}
#undef AMOO_ROW_STEP

/* One pass over A (m x d): dots_i = sum_j A_ij x_j, v_j = sum_i y_i A_ij (i in order, in REAL),
 * and, on the final v, *vmin = min_j v_j and *tmax = max_j (c lq_j - eta v_j). The dots: the
 * products, rounded to REAL, go to 8 double lanes per row and block (column j to lane
 * (j - block start) mod 8, in order of j), the lanes are added as ((0+1)+(2+3))+((4+5)+(6+7)),
 * then the blocks in order. Columns are walked in tiles of AMOO_TILE so that the slices of x, v
 * and lq stay in cache while the m rows stream through. lanes holds amoo_n_blocks(d) * m * 8
 * doubles.
 * x_mode (enum amoo_x_mode) AMOO_X_GIVEN reads x; AMOO_X_EXP and AMOO_X_EXP_LOG instead form each
 * tile of x, the exponentials of amoo_exp_run from the v on entry, in a buffer on the stack, and
 * *x_sum is their sum (as amoo_exp_sum's: the same blocks, the same lanes, the same order). So the
 * step that follows the products of a PU half-step is done here, on the tile in cache, and the
 * exponentials never go to memory (x is not read then). */
static void SFX(amoo_fused)(int nt, size_t m, size_t d, const REAL *a, const REAL *x,
                            const REAL *y, REAL *lq, REAL c, REAL eta, int x_mode, REAL shift,
                            double *lanes, double *dots, double *x_sum, REAL *v, REAL *vmin,
                            REAL *tmax)
{
    REAL bmin[AMOO_MAX_BLOCKS], bmax[AMOO_MAX_BLOCKS];
    double bsum[AMOO_MAX_BLOCKS];
    const size_t nb = amoo_n_blocks(d);
    const long long nbl = (long long)nb;
    /* dynamic: a block's results do not depend on the thread that computes them, and where a
     * core is shared (with another library's threads spinning after their call, as OpenBLAS's
     * do for a while) the other threads take over more of the blocks */
#pragma omp parallel for schedule(dynamic) num_threads(nt) if(parallel: nt > 1)
    for (long long b = 0; b < nbl; b++) {
        const size_t lo = amoo_block_start(d, nb, (size_t)b);
        const size_t hi = amoo_block_start(d, nb, (size_t)b + 1);
        double *lb = lanes + (size_t)b * m * 8;
        memset(lb, 0, m * 8 * sizeof(double));
        REAL mn = (REAL)INFINITY, mx = -(REAL)INFINITY;
        double sum8[8] = {0};
        REAL xbuf[AMOO_TILE]; /* the tile of x when it is formed here (32 KiB of floats) */
        /* tiles start at multiples of 8 from lo, so lane l always holds columns lo + 8k + l */
        for (size_t t0 = lo; t0 < hi; t0 += AMOO_TILE) {
            const size_t len = hi - t0 < AMOO_TILE ? hi - t0 : AMOO_TILE;
            REAL *vt = v + t0, *lqt = lq + t0;
            const REAL *xt = x + t0;
            if (x_mode != AMOO_X_GIVEN) {
                SFX(amoo_exp_run)(len, lqt, vt, c, eta, shift, xbuf, x_mode == AMOO_X_EXP_LOG,
                                  sum8);
                xt = xbuf;
            }
            /* four rows at a time, the last group smaller */
            for (size_t i = 0; i < m; i += 4) {
                const REAL *at = a + i * d + t0;
                double *li = lb + i * 8;
                switch (m - i < 4 ? m - i : 4) {
                case 4: SFX(amoo_rows)(4, d, len, at, xt, y + i, li, vt, i == 0); break;
                case 3: SFX(amoo_rows)(3, d, len, at, xt, y + i, li, vt, i == 0); break;
                case 2: SFX(amoo_rows)(2, d, len, at, xt, y + i, li, vt, i == 0); break;
                default: SFX(amoo_rows)(1, d, len, at, xt, y + i, li, vt, i == 0); break;
                }
            }
#pragma omp simd reduction(min : mn) reduction(max : mx)
            for (size_t j = 0; j < len; j++) {
                const REAL t = c * lqt[j] - eta * vt[j];
                mn = vt[j] < mn ? vt[j] : mn;
                mx = t > mx ? t : mx;
            }
        }
        bmin[b] = mn;
        bmax[b] = mx;
        bsum[b] = SFX(amoo_lanes_total)(sum8);
    }
    REAL mn = (REAL)INFINITY, mx = -(REAL)INFINITY;
    double total = 0.0;
    for (size_t b = 0; b < nb; b++) {
        mn = bmin[b] < mn ? bmin[b] : mn;
        mx = bmax[b] > mx ? bmax[b] : mx;
        total += bsum[b];
    }
    for (size_t i = 0; i < m; i++) {
        double s = 0.0;
        for (size_t b = 0; b < nb; b++) s += SFX(amoo_lanes_total)(lanes + (b * m + i) * 8);
        dots[i] = s;
    }
    if (x_mode != AMOO_X_GIVEN) *x_sum = total;
    *vmin = mn;
    *tmax = mx;
}

/* The same quantities by two BLAS gemv calls and separate passes for the min and the max. */
static void SFX(amoo_gemv_pair)(int nt, size_t m, size_t d, const REAL *a, const REAL *x,
                                const REAL *y, const REAL *lq, REAL c, REAL eta, REAL *ublas,
                                double *dots, REAL *v, REAL *vmin, REAL *tmax)
{
    CM_BLAS(GEMV)(CM_CBLAS_ROW_MAJOR, CM_CBLAS_NO_TRANS, (int)m, (int)d, (REAL)1, a, (int)d, x,
                  1, (REAL)0, ublas, 1);
    CM_BLAS(GEMV)(CM_CBLAS_ROW_MAJOR, CM_CBLAS_TRANS, (int)m, (int)d, (REAL)1, a, (int)d, y, 1,
                  (REAL)0, v, 1);
    for (size_t i = 0; i < m; i++) dots[i] = (double)ublas[i];
    *vmin = SFX(amoo_min)(nt, d, v);
    *tmax = SFX(amoo_max_affine)(nt, d, lq, v, c, eta);
}

/* The products of one PU half-step, by the fused pass or BLAS (cm_pu_config.matvec); for BLAS the
 * exponentials of x_mode come first, in a pass of their own, stored in x (the fused pass keeps
 * them in its tiles and leaves x as it is). tmp holds m elements. */
static void SFX(amoo_products)(int fused, int nt, size_t m, size_t d, const REAL *a, REAL *x,
                               const REAL *y, REAL *lq, REAL c, REAL eta, int x_mode,
                               REAL shift, double *lanes, REAL *tmp, double *dots,
                               double *x_sum, REAL *v, REAL *vmin, REAL *tmax)
{
    if (fused) {
        SFX(amoo_fused)(nt, m, d, a, x, y, lq, c, eta, x_mode, shift, lanes, dots, x_sum, v,
                        vmin, tmax);
        return;
    }
    if (x_mode != AMOO_X_GIVEN)
        *x_sum = SFX(amoo_exp_sum)(nt, d, lq, v, c, eta, shift, x, x_mode == AMOO_X_EXP_LOG);
    SFX(amoo_gemv_pair)(nt, m, d, a, x, y, lq, c, eta, tmp, dots, v, vmin, tmax);
}

/* u_i = (A' x)_i / x_scale from the raw dots, A' = s A + w_min 1 1^T A. */
static void SFX(amoo_u_from_dots)(size_t m, const double *dots, double inv_scale, double w_min,
                                  double s, REAL *u)
{
    double total = 0.0;
    for (size_t i = 0; i < m; i++) total += dots[i];
    for (size_t i = 0; i < m; i++)
        u[i] = (REAL)(w_min != 0.0 ? (s * dots[i] + w_min * total) * inv_scale
                                   : dots[i] * inv_scale);
}

/* The p side (m entries, serial): t_i = c lp_i + eta u_i, max-shifted, exponentiated and
 * normalised; dst = w_min + s p. keep: also store the shifted t in lp (the update; the
 * extrapolation leaves lp unchanged). */
static void SFX(amoo_p_step)(size_t m, REAL *lp, const REAL *u, REAL c, REAL eta, REAL w_min,
                             REAL s, REAL *tmp, REAL *dst, int keep)
{
    REAL mx = -(REAL)INFINITY;
    for (size_t i = 0; i < m; i++) {
        const REAL t = c * lp[i] + eta * u[i];
        tmp[i] = t;
        mx = t > mx ? t : mx;
    }
    double sum = 0.0;
    for (size_t i = 0; i < m; i++) {
        const REAL t = tmp[i] - mx;
        if (keep) lp[i] = t;
        tmp[i] = AMOO_EXP(t);
        sum += (double)tmp[i];
    }
    const REAL inv = (REAL)(1.0 / sum);
    for (size_t i = 0; i < m; i++) dst[i] = w_min + s * (tmp[i] * inv);
}

static int SFX(cm_pu_exp)(const cm_exec_config *exec, size_t n, const REAL *x, REAL *y)
{
    if (!x || !y) return CM_ERR_NULL;
    const int nt = cm_loop_threads(exec, n);
    const long long nn = (long long)n;
    AMOO_PFOR(nt)
    for (long long j = 0; j < nn; j++) y[j] = AMOO_EXP(x[j]);
    return CM_OK;
}

static int SFX(cm_pu_solve)(const cm_pu_config *cfg, const cm_exec_config *exec, size_t m,
                            size_t d, const REAL *a, REAL *w, REAL *q, REAL *work,
                            cm_pu_result *result)
{
    if (!cfg || !a || !w || !q || !work || !result) return CM_ERR_NULL;
    if (!cm_nonneg(cfg->tau) || !isfinite(cfg->eta) || cfg->iters < 0 || !cm_nonneg(cfg->tol) ||
        !cm_nonneg(cfg->w_min) || (cfg->warm_start != 0 && cfg->warm_start != 1) ||
        (cfg->matvec != CM_PU_FUSED && cfg->matvec != CM_PU_BLAS))
        return CM_ERR_HYPER;
    if (m == 0 || d == 0) return CM_ERR_SIZE;
    if (m > INT_MAX || d > INT_MAX) return CM_ERR_BLAS;
    if (cfg->w_min * (double)m > 1.0) return CM_ERR_HYPER;

    const int nt = cm_loop_threads(exec, d);
    const int nt_a = cm_loop_threads(exec, m * d);
    double eta = cfg->eta;
    if (eta <= 0.0) {
        int finite = 1;
        const double amax = (double)SFX(amoo_max_abs)(nt_a, m * d, a, &finite);
        eta = 1.0 / (cfg->tau + 2.0 * amax);
        if (!finite || !isfinite(eta)) return CM_ERR_HYPER;
    }
    if (cfg->warm_start) {
        /* validate both starts before writing anything */
        double wsum = 0.0;
        for (size_t i = 0; i < m; i++) {
            if (!(w[i] >= 0) || !isfinite(w[i])) return CM_ERR_HYPER;
            wsum += (double)w[i];
        }
        if (!(wsum > 0.0) || !isfinite(wsum)) return CM_ERR_HYPER;
        for (size_t j = 0; j < d; j++)
            if (!(q[j] >= 0) || !isfinite(q[j])) return CM_ERR_HYPER;
        const double qsum = SFX(amoo_sum)(nt, d, q);
        if (!(qsum > 0.0) || !isfinite(qsum)) return CM_ERR_HYPER;
    }
    const size_t nb = amoo_n_blocks(d);
    double *scratch = malloc((8 * nb + 1) * m * sizeof(double));
    if (!scratch) return CM_ERR_SIZE;
    double *dots = scratch, *partial = scratch + m;

    const double s_d = 1.0 - (double)m * cfg->w_min;
    const REAL c = (REAL)(1.0 - eta * cfg->tau), et = (REAL)eta;
    const REAL wmin = (REAL)cfg->w_min, s = (REAL)(s_d > 0.0 ? s_d : 0.0);
    const int fused = cfg->matvec == CM_PU_FUSED;

    /* work: lp (m), u (m), pb (m), tmp (m), lq (d), v (d), qb (d); qb is written before it is
     * read, by the BLAS variant only, so its pages are left untouched here */
    memset(work, 0, (4 * m + 2 * d) * sizeof(REAL));
    REAL *lp = work, *u = lp + m, *pb = u + m, *tmp = pb + m;
    REAL *lq = tmp + m, *v = lq + d, *qb = v + d;

    /* during the loop the unnormalised q is exp(lq), formed by the products that read it, and
     * q_sum its sum; q itself is the start, and is written from lq at the end */
    double q_sum;
    if (cfg->warm_start) {
        /* p = (w / sum(w) - w_min)_+, normalised; uniform when every entry sits at the floor */
        double wsum = 0.0, psum = 0.0;
        for (size_t i = 0; i < m; i++) wsum += (double)w[i];
        for (size_t i = 0; i < m; i++) {
            const double y = (double)w[i] / wsum - cfg->w_min;
            tmp[i] = (REAL)(y > 0.0 ? y : 0.0);
            psum += (double)tmp[i];
        }
        if (s_d > 0.0 && psum > 0.0) {
            for (size_t i = 0; i < m; i++) {
                const REAL p = (REAL)((double)tmp[i] / psum);
                lp[i] = LOG(p > REAL_TINY ? p : REAL_TINY);
            }
        }
        /* lq = log(max(q / sum(q), tiny)); then q = exp(lq - max lq) */
        const REAL inv = (REAL)(1.0 / SFX(amoo_sum)(nt, d, q));
        const long long dd = (long long)d;
        AMOO_PFOR(nt)
        for (long long j = 0; j < dd; j++) {
            const REAL p = q[j] * inv;
            lq[j] = LOG(p > REAL_TINY ? p : REAL_TINY);
        }
        const REAL mx = SFX(amoo_max_affine)(nt, d, lq, v, (REAL)1, (REAL)0);
        q_sum = SFX(amoo_exp_sum)(nt, d, lq, v, (REAL)1, (REAL)0, mx, q, 1);
    } else {
        const long long dd = (long long)d;
        AMOO_PFOR(nt)
        for (long long j = 0; j < dd; j++) q[j] = (REAL)1;
        q_sum = (double)d;
    }
    /* w (and a max-shifted lp) from lp */
    SFX(amoo_p_step)(m, lp, u, (REAL)1, (REAL)0, wmin, s, tmp, w, 1);

    int64_t k = 0;
    double gap = 0.0;
    REAL vmin, tmax;
    /* q's exponentials of an update are left to the next products (AMOO_X_EXP_LOG), which form
     * q tile by tile as they read it; the first products read the start */
    int q_mode = AMOO_X_GIVEN;
    REAL q_shift = 0;
    for (;; k++) {
        /* u = A' q, v = A^T w, min v, max (c lq - eta v) */
        SFX(amoo_products)(fused, nt, m, d, a, q, w, lq, c, et, q_mode, q_shift, partial, tmp,
                           dots, &q_sum, v, &vmin, &tmax);
        SFX(amoo_u_from_dots)(m, dots, 1.0 / q_sum, cfg->w_min, s_d, u);
        REAL umax = -(REAL)INFINITY;
        for (size_t i = 0; i < m; i++) umax = u[i] > umax ? u[i] : umax;
        gap = (double)umax - (double)vmin;
        if (k == cfg->iters || (cfg->tol > 0.0 && gap <= cfg->tol)) break;
        /* extrapolation: pb = w_min + s p-bar (the weights wb), qb unnormalised (formed by the
         * products that read it); then u = A' qb, v = A^T wb */
        SFX(amoo_p_step)(m, lp, u, c, et, wmin, s, tmp, pb, 0);
        double qb_sum;
        SFX(amoo_products)(fused, nt, m, d, a, qb, pb, lq, c, et, AMOO_X_EXP, tmax, partial, tmp,
                           dots, &qb_sum, v, &vmin, &tmax);
        SFX(amoo_u_from_dots)(m, dots, 1.0 / qb_sum, cfg->w_min, s_d, u);
        /* update: p now, q = exp(c lq - eta vb - max) with the next products */
        SFX(amoo_p_step)(m, lp, u, c, et, wmin, s, tmp, w, 1);
        q_mode = AMOO_X_EXP_LOG;
        q_shift = tmax;
    }
    free(scratch);
    /* q = exp(lq) normalised (the products formed it tile by tile, or it is the start); value =
     * w^T A q = v . q */
    SFX(amoo_exp_scale)(nt, d, lq, q, (REAL)(1.0 / q_sum));
    result->gap = gap > 0.0 ? gap : 0.0;
    result->value = SFX(amoo_dot)(nt, d, v, q);
    result->eta = eta;
    result->iters_used = k;
    return CM_OK;
}

#undef AMOO_ADD_CHUNK
#undef AMOO_VW
