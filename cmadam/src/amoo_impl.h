/* amoo_impl.h -- AMOO's kernels written once for an element type (see cmadam_amoo.h).
 *
 * Included by amoo.c with REAL (float or double), SFX(name) (the suffixer: _f32_base,
 * _f64_avx2, ...), FABS, EXP, LOG, REAL_TINY (the smallest positive normal number) and GEMV
 * (cblas_sgemv or cblas_dgemv, already prefixed) defined, once per element type and instruction
 * set. Element loops are independent per element; the sums over q's d entries go through
 * amoo_block_* (fixed blocks, double accumulators), so no result depends on the thread count.
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

/* out_j = exp(c * lq_j - eta * v_j - shift); when store_log, also lq_j = c lq_j - eta v_j - shift
 * (out = q then). Returns sum_j out_j, in double over the fixed blocks. */
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
        double s = 0.0;
        for (size_t j = lo; j < hi; j++) {
            const REAL t = c * lq[j] - eta * v[j] - shift;
            const REAL e = EXP(t);
            if (store_log) lq[j] = t;
            out[j] = e;
            s += (double)e;
        }
        partial[b] = s;
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

/* x *= k (elementwise). */
static void SFX(amoo_scale)(int nt, size_t n, REAL *x, REAL k)
{
    const long long nn = (long long)n;
    AMOO_PFOR(nt)
    for (long long j = 0; j < nn; j++) x[j] = x[j] * k;
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

/* One pass over A (m x d): dots_i = sum_j A_ij x_j, v_j = sum_i y_i A_ij (i in order, in REAL),
 * and, on the final v, *vmin = min_j v_j and *tmax = max_j (c lq_j - eta v_j). The dots: the
 * products, rounded to REAL, go to 8 double lanes per row and block (column j to lane
 * (j - block start) mod 8, in order of j), the lanes are added as ((0+1)+(2+3))+((4+5)+(6+7)),
 * then the blocks in order. Columns are walked in tiles of AMOO_TILE so that the slices of x and v
 * stay in L1 while the m rows stream through. lanes holds amoo_n_blocks(d) * m * 8 doubles. */
static void SFX(amoo_fused)(int nt, size_t m, size_t d, const REAL *a, const REAL *x,
                            const REAL *y, const REAL *lq, REAL c, REAL eta, double *lanes,
                            double *dots, REAL *v, REAL *vmin, REAL *tmax)
{
    REAL bmin[AMOO_MAX_BLOCKS], bmax[AMOO_MAX_BLOCKS];
    const size_t nb = amoo_n_blocks(d);
    const long long nbl = (long long)nb;
#pragma omp parallel for schedule(static) num_threads(nt) if(parallel: nt > 1)
    for (long long b = 0; b < nbl; b++) {
        const size_t lo = amoo_block_start(d, nb, (size_t)b);
        const size_t hi = amoo_block_start(d, nb, (size_t)b + 1);
        double *restrict lb = lanes + (size_t)b * m * 8;
        memset(lb, 0, m * 8 * sizeof(double));
        REAL mn = (REAL)INFINITY, mx = -(REAL)INFINITY;
        /* tiles start at multiples of 8 from lo, so lane l always holds columns lo + 8k + l */
        for (size_t t0 = lo; t0 < hi; t0 += AMOO_TILE) {
            const size_t len = hi - t0 < AMOO_TILE ? hi - t0 : AMOO_TILE;
            const size_t full = len - len % 8;
            const REAL *restrict xt = x + t0;
            REAL *restrict vt = v + t0;
            size_t i = 0;
            /* four rows at a time: v is loaded and stored once per four rows, the additions
             * still run in order of i */
            for (; i + 4 <= m; i += 4) {
                const REAL *restrict r0 = a + i * d + t0, *restrict r1 = r0 + d;
                const REAL *restrict r2 = r1 + d, *restrict r3 = r2 + d;
                const REAL y0 = y[i], y1 = y[i + 1], y2 = y[i + 2], y3 = y[i + 3];
                double *restrict lane = lb + i * 8;
                double l0[8], l1[8], l2[8], l3[8];
                for (size_t l = 0; l < 8; l++) {
                    l0[l] = lane[l];
                    l1[l] = lane[8 + l];
                    l2[l] = lane[16 + l];
                    l3[l] = lane[24 + l];
                }
                const int first = i == 0;
                for (size_t j = 0; j < full; j += 8)
                    for (size_t l = 0; l < 8; l++) {
                        const REAL xj = xt[j + l];
                        const REAL a0 = r0[j + l], a1 = r1[j + l], a2 = r2[j + l], a3 = r3[j + l];
                        l0[l] += (double)(a0 * xj);
                        l1[l] += (double)(a1 * xj);
                        l2[l] += (double)(a2 * xj);
                        l3[l] += (double)(a3 * xj);
                        REAL vv = first ? y0 * a0 : vt[j + l] + y0 * a0;
                        vv = vv + y1 * a1;
                        vv = vv + y2 * a2;
                        vt[j + l] = vv + y3 * a3;
                    }
                for (size_t j = full; j < len; j++) {
                    const REAL xj = xt[j];
                    const size_t l = j - full;
                    l0[l] += (double)(r0[j] * xj);
                    l1[l] += (double)(r1[j] * xj);
                    l2[l] += (double)(r2[j] * xj);
                    l3[l] += (double)(r3[j] * xj);
                    REAL vv = first ? y0 * r0[j] : vt[j] + y0 * r0[j];
                    vv = vv + y1 * r1[j];
                    vv = vv + y2 * r2[j];
                    vt[j] = vv + y3 * r3[j];
                }
                for (size_t l = 0; l < 8; l++) {
                    lane[l] = l0[l];
                    lane[8 + l] = l1[l];
                    lane[16 + l] = l2[l];
                    lane[24 + l] = l3[l];
                }
            }
            for (; i < m; i++) {
                const REAL *restrict r = a + i * d + t0;
                const REAL yi = y[i];
                double *restrict lane = lb + i * 8;
                double l8[8];
                for (size_t l = 0; l < 8; l++) l8[l] = lane[l];
                if (i == 0) {
                    for (size_t j = 0; j < full; j += 8)
                        for (size_t l = 0; l < 8; l++) {
                            l8[l] += (double)(r[j + l] * xt[j + l]);
                            vt[j + l] = yi * r[j + l];
                        }
                    for (size_t j = full; j < len; j++) {
                        l8[j - full] += (double)(r[j] * xt[j]);
                        vt[j] = yi * r[j];
                    }
                } else {
                    for (size_t j = 0; j < full; j += 8)
                        for (size_t l = 0; l < 8; l++) {
                            l8[l] += (double)(r[j + l] * xt[j + l]);
                            vt[j + l] = vt[j + l] + yi * r[j + l];
                        }
                    for (size_t j = full; j < len; j++) {
                        l8[j - full] += (double)(r[j] * xt[j]);
                        vt[j] = vt[j] + yi * r[j];
                    }
                }
                for (size_t l = 0; l < 8; l++) lane[l] = l8[l];
            }
            const REAL *restrict lqt = lq + t0;
            for (size_t j = 0; j < len; j++) {
                const REAL t = c * lqt[j] - eta * vt[j];
                mn = vt[j] < mn ? vt[j] : mn;
                mx = t > mx ? t : mx;
            }
        }
        bmin[b] = mn;
        bmax[b] = mx;
    }
    REAL mn = (REAL)INFINITY, mx = -(REAL)INFINITY;
    for (size_t b = 0; b < nb; b++) {
        mn = bmin[b] < mn ? bmin[b] : mn;
        mx = bmax[b] > mx ? bmax[b] : mx;
    }
    for (size_t i = 0; i < m; i++) {
        double s = 0.0;
        for (size_t b = 0; b < nb; b++) {
            const double *l8 = lanes + (b * m + i) * 8;
            s += ((l8[0] + l8[1]) + (l8[2] + l8[3])) + ((l8[4] + l8[5]) + (l8[6] + l8[7]));
        }
        dots[i] = s;
    }
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
        tmp[i] = EXP(t);
        sum += (double)tmp[i];
    }
    const REAL inv = (REAL)(1.0 / sum);
    for (size_t i = 0; i < m; i++) dst[i] = w_min + s * (tmp[i] * inv);
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

    /* work: lp (m), u (m), pb (m), tmp (m), lq (d), v (d), qb (d) */
    memset(work, 0, cm_pu_work_size(m, d) * sizeof(REAL));
    REAL *lp = work, *u = lp + m, *pb = u + m, *tmp = pb + m;
    REAL *lq = tmp + m, *v = lq + d, *qb = v + d;

    double q_sum; /* during the loop q holds exp(lq) (unnormalised) and q_sum its sum */
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
    for (;; k++) {
        /* u = A' q, v = A^T w, min v, max (c lq - eta v) */
        if (fused)
            SFX(amoo_fused)(nt, m, d, a, q, w, lq, c, et, partial, dots, v, &vmin, &tmax);
        else
            SFX(amoo_gemv_pair)(nt, m, d, a, q, w, lq, c, et, tmp, dots, v, &vmin, &tmax);
        SFX(amoo_u_from_dots)(m, dots, 1.0 / q_sum, cfg->w_min, s_d, u);
        REAL umax = -(REAL)INFINITY;
        for (size_t i = 0; i < m; i++) umax = u[i] > umax ? u[i] : umax;
        gap = (double)umax - (double)vmin;
        if (k == cfg->iters || (cfg->tol > 0.0 && gap <= cfg->tol)) break;
        /* extrapolation: pb = w_min + s p-bar (the weights wb), qb unnormalised */
        SFX(amoo_p_step)(m, lp, u, c, et, wmin, s, tmp, pb, 0);
        const double qb_sum = SFX(amoo_exp_sum)(nt, d, lq, v, c, et, tmax, qb, 0);
        /* update: u = A' qb, v = A^T wb, then p and q */
        if (fused)
            SFX(amoo_fused)(nt, m, d, a, qb, pb, lq, c, et, partial, dots, v, &vmin, &tmax);
        else
            SFX(amoo_gemv_pair)(nt, m, d, a, qb, pb, lq, c, et, tmp, dots, v, &vmin, &tmax);
        SFX(amoo_u_from_dots)(m, dots, 1.0 / qb_sum, cfg->w_min, s_d, u);
        SFX(amoo_p_step)(m, lp, u, c, et, wmin, s, tmp, w, 1);
        q_sum = SFX(amoo_exp_sum)(nt, d, lq, v, c, et, tmax, q, 1);
    }
    free(scratch);
    /* normalise q; value = w^T A q = v . q */
    SFX(amoo_scale)(nt, d, q, (REAL)(1.0 / q_sum));
    result->gap = gap > 0.0 ? gap : 0.0;
    result->value = SFX(amoo_dot)(nt, d, v, q);
    result->eta = eta;
    result->iters_used = k;
    return CM_OK;
}
