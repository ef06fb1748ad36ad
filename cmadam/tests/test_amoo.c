/* test_amoo.c -- unit tests of AMOO's kernels (cmadam_amoo.h), through the public API only.
 *
 *   1. Rademacher probes: entries exactly +1/-1, both signs, mean ~ 0 (the always-minus-one bug
 *      of an exclusive upper bound would fail here), bit-exact against the documented formula
 *      re-implemented below, different streams for different (seed, step, probe), the same
 *      numbers in float and double, for 1 and 2 threads, the default, and the baseline build;
 *   2. Hutchinson: exact on a diagonal matrix (to rounding); on a dense one every diagonal entry within 6
 *      standard deviations sqrt(sum_{j != i} H_ij^2 / N) of the truth; the bias-corrected EMA of a
 *      constant estimate is that constant at every step; beta = 0; abs and clip;
 *   3. PU: matching pennies, rock-paper-scissors and diagonal games (value 1 / sum_i 1/a_i)
 *      against their exact values; the floor w_min = 1/m gives uniform w; the gap brackets the
 *      value; early stopping by tol; warm start continues a run; 1 and 2 threads, the default,
 *      the baseline build, and 1 to 3 OpenBLAS threads give the same bits (d above the parallel
 *      threshold); the BLAS variant agrees to rounding;
 *   3b. PU's exponential (cm_pu_exp): within its documented 0.977 ulp of exp (in double) on a
 *      sweep of every 557th float of [-104, 89], 0 below, +Inf above, NaN for NaN, exactly 1 at
 *      0; the same bits for 1 and 2 threads and the baseline build; libm's exp for double;
 *   4. PAMOO: the projected ascent reaches max(f_i / a_ii, w_min) on a diagonal A;
 *   5. status codes, arrays untouched on error; the config defaults.
 * The last line printed is "N passed, N failed".
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmadam_amoo.h"
#include "harness.h"

/* ------------------------------------------------------------------------ helpers */
static rng_t rng_state = {2024};
static double unif(void) { return rng_unif(&rng_state); } /* splitmix64 (harness.h) */


static double *dvec(size_t n) { return xmalloc(n * sizeof(double)); }
static float *fvec(size_t n) { return xmalloc(n * sizeof(float)); }

/* the documented probe formula, written independently of the library */
static uint64_t ref_mix(uint64_t x)
{
    x = x + 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static double ref_probe(uint64_t seed, uint64_t step, uint64_t probe, size_t i)
{
    const uint64_t key = ref_mix(ref_mix(ref_mix(seed) ^ step) ^ probe);
    const uint64_t word = ref_mix(key + (uint64_t)(i / 64) * 0x9E3779B97F4A7C15ull);
    return ((word >> (i % 64)) & 1u) ? -1.0 : 1.0;
}

/* ------------------------------------------------------------------------ 1. probes */
static void test_rademacher(void)
{
    const size_t n = 100003; /* not a multiple of 64 */
    double *z = dvec(n), *z2 = dvec(n);
    float *zf = fvec(n);
    cm_exec_config e = exec_with(1, 1 << 30, 1);
    CHECK_INT_EQ(cm_rademacher_f64(&e, 7, 3, 2, n, z), CM_OK);
    size_t plus = 0, bad = 0, mismatch = 0;
    for (size_t i = 0; i < n; i++) {
        if (z[i] == 1.0) plus++;
        else if (z[i] != -1.0) bad++;
        if (z[i] != ref_probe(7, 3, 2, i)) mismatch++;
    }
    CHECK_INT_EQ(bad, 0);
    CHECK_INT_EQ(mismatch, 0);
    /* mean (2 plus - n) / n: standard deviation 1/sqrt(n) ~ 0.0032; allow 5 of them */
    const double mean = (2.0 * (double)plus - (double)n) / (double)n;
    CHECKF(fabs(mean) < 5.0 / sqrt((double)n), "mean %g", mean);
    CHECK(plus > 0 && plus < n);
    /* runs of equal signs: no stuck bits (the longest run stays short) */
    size_t run = 1, longest = 1;
    for (size_t i = 1; i < n; i++) {
        run = z[i] == z[i - 1] ? run + 1 : 1;
        longest = run > longest ? run : longest;
    }
    CHECKF(longest < 40, "longest run %zu", longest);

    /* float gives the same signs */
    CHECK_INT_EQ(cm_rademacher_f32(&e, 7, 3, 2, n, zf), CM_OK);
    mismatch = 0;
    for (size_t i = 0; i < n; i++) mismatch += (double)zf[i] != z[i];
    CHECK_INT_EQ(mismatch, 0);

    /* thread counts and builds */
    const cm_exec_config variants[4] = {exec_with(1, 64, 0), exec_with(2, 64, 0),
                                        exec_with(0, 64, 0), exec_with(2, 64, 1)};
    for (int k = 0; k < 4; k++) {
        CHECK_INT_EQ(cm_rademacher_f64(&variants[k], 7, 3, 2, n, z2), CM_OK);
        CHECK(memcmp(z, z2, n * sizeof(double)) == 0);
    }
    CHECK_INT_EQ(cm_rademacher_f64(NULL, 7, 3, 2, n, z2), CM_OK);
    CHECK(memcmp(z, z2, n * sizeof(double)) == 0);

    /* another seed, step or probe changes about half the signs */
    const uint64_t other[3][3] = {{8, 3, 2}, {7, 4, 2}, {7, 3, 3}};
    for (int k = 0; k < 3; k++) {
        CHECK_INT_EQ(cm_rademacher_f64(&e, other[k][0], other[k][1], other[k][2], n, z2), CM_OK);
        size_t diff = 0;
        for (size_t i = 0; i < n; i++) diff += z[i] != z2[i];
        CHECKF(diff > n / 2 - n / 50 && diff < n / 2 + n / 50, "stream %d differs in %zu", k,
               diff);
    }
    /* prefixes agree: z for n' < n is the first n' entries of z for n */
    CHECK_INT_EQ(cm_rademacher_f64(&e, 7, 3, 2, 77, z2), CM_OK);
    CHECK(memcmp(z, z2, 77 * sizeof(double)) == 0);

    CHECK_INT_EQ(cm_rademacher_f64(&e, 1, 1, 1, 0, z2), CM_OK);
    CHECK_INT_EQ(cm_rademacher_f64(&e, 1, 1, 1, 5, NULL), CM_ERR_NULL);
    free(z);
    free(z2);
    free(zf);
}

/* ------------------------------------------------------------------------ 2. Hutchinson */
/* y = H x for a dense symmetric n x n H */
static void matvec(size_t n, const double *h, const double *x, double *y)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < n; j++) s += h[i * n + j] * x[j];
        y[i] = s;
    }
}

static void test_hutchinson(void)
{
    const size_t n = 40, rows = 2;
    const int64_t n_probes = 2000;
    double *h = dvec(rows * n * n), *z = dvec(n), *hz = dvec(rows * n), *acc = dvec(rows * n);
    double *out = dvec(rows * n);
    /* row 0: diagonal H (exact up to the rounding of the sum); row 1: dense symmetric */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            h[i * n + j] = i == j ? 1.0 + (double)i / 10.0 - 2.0 * (i % 3 == 0) : 0.0;
            h[n * n + i * n + j] = 0.0;
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            const double v = i == j ? 3.0 * unif() - 1.0 : 0.5 * (2.0 * unif() - 1.0);
            h[n * n + i * n + j] = h[n * n + j * n + i] = v;
        }
    memset(acc, 0, rows * n * sizeof(double));
    cm_exec_config e = exec_with(1, 1 << 30, 0);
    for (int64_t k = 0; k < n_probes; k++) {
        CHECK_INT_EQ(cm_rademacher_f64(&e, 11, 1, (uint64_t)k, n, z), CM_OK);
        for (size_t r = 0; r < rows; r++) matvec(n, h + r * n * n, z, hz + r * n);
        CHECK_INT_EQ(cm_hutchinson_accumulate_f64(&e, rows, n, z, hz, acc), CM_OK);
    }
    cm_hutchinson_config cfg;
    cm_hutchinson_config_default(&cfg);
    cfg.beta = 0.0;
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, n_probes, rows * n, acc, NULL, out), CM_OK);
    size_t exact = 0, within = 0;
    for (size_t i = 0; i < n; i++) {
        exact += fabs(out[i] - h[i * n + i]) <= 1e-13 * fabs(h[i * n + i]);
        double var = 0.0;
        for (size_t j = 0; j < n; j++)
            if (j != i) var += h[n * n + i * n + j] * h[n * n + i * n + j];
        const double sd = sqrt(var / (double)n_probes);
        const double err = fabs(out[n + i] - h[n * n + i * n + i]);
        within += err <= 6.0 * sd;
        if (err > 6.0 * sd) printf("     entry %zu: error %g, sd %g\n", i, err, sd);
    }
    CHECK_INT_EQ(exact, n);
    CHECK_INT_EQ(within, n);

    /* EMA: a constant estimate is returned unchanged at every step (bias correction) */
    const size_t m = 5;
    double accm[5] = {2.0, -4.0, 6.0, 0.5, -0.25}, ema[5] = {0}, o[5];
    float accf[5] = {2.0f, -4.0f, 6.0f, 0.5f, -0.25f}, emaf[5] = {0}, of[5];
    cfg.beta = 0.99;
    int ok = 1, okf = 1;
    for (int64_t t = 1; t <= 300; t++) {
        CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, t, 2, m, accm, ema, o), CM_OK);
        CHECK_INT_EQ(cm_hutchinson_update_f32(&cfg, &e, t, 2, m, accf, emaf, of), CM_OK);
        for (size_t i = 0; i < m; i++) {
            ok &= fabs(o[i] - accm[i] / 2.0) <= 1e-12 * fabs(accm[i]);
            okf &= fabs((double)of[i] - accm[i] / 2.0) <= 3e-5 * fabs(accm[i]);
        }
    }
    CHECK(ok);
    CHECK(okf);
    /* without the correction the first step would be 1 % of the estimate: check the raw EMA */
    double ema1[5] = {0};
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 1, m, accm, ema1, o), CM_OK);
    CHECK(fabs(ema1[0] - 0.01 * 2.0) < 1e-15 && o[0] == 2.0);
    /* abs and clip */
    cfg.beta = 0.0;
    cfg.transform = CM_HUTCH_ABS;
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 1, m, accm, NULL, o), CM_OK);
    CHECK(o[1] == 4.0 && o[4] == 0.25 && o[2] == 6.0);
    cfg.transform = CM_HUTCH_CLIP;
    cfg.clip_min = 0.3;
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 1, m, accm, NULL, o), CM_OK);
    CHECK(o[1] == 0.3 && o[4] == 0.3 && o[3] == 0.5 && o[0] == 2.0);
    /* out may alias acc */
    double al[2] = {4.0, -2.0};
    cfg.transform = CM_HUTCH_SIGNED;
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 2, 2, al, NULL, al), CM_OK);
    CHECK(al[0] == 2.0 && al[1] == -1.0);

    /* status codes, nothing written on error */
    cm_hutchinson_config_default(&cfg);
    double keep[5];
    memcpy(keep, ema, sizeof keep);
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 0, 1, m, accm, ema, o), CM_ERR_STEP);
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 0, m, accm, ema, o), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 1, m, accm, NULL, o), CM_ERR_NULL);
    CHECK_INT_EQ(cm_hutchinson_update_f64(NULL, &e, 1, 1, m, accm, ema, o), CM_ERR_NULL);
    cfg.beta = 1.0;
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 1, m, accm, ema, o), CM_ERR_HYPER);
    cfg.beta = NAN;
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 1, m, accm, ema, o), CM_ERR_HYPER);
    cfg.beta = 0.5;
    cfg.transform = 3;
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 1, m, accm, ema, o), CM_ERR_HYPER);
    cfg.transform = CM_HUTCH_CLIP;
    cfg.clip_min = INFINITY;
    CHECK_INT_EQ(cm_hutchinson_update_f64(&cfg, &e, 1, 1, m, accm, ema, o), CM_ERR_HYPER);
    CHECK(memcmp(keep, ema, sizeof keep) == 0);
    CHECK_INT_EQ(cm_hutchinson_accumulate_f64(&e, 1, 3, NULL, accm, ema), CM_ERR_NULL);
    CHECK_INT_EQ(cm_hutchinson_accumulate_f64(&e, 0, 0, z, hz, acc), CM_OK);

    /* accumulate above the parallel threshold: same bits for every split */
    const size_t big = 50000;
    double *zb = dvec(big), *hb = dvec(2 * big), *a1 = dvec(2 * big), *a2 = dvec(2 * big);
    CHECK_INT_EQ(cm_rademacher_f64(&e, 1, 2, 3, big, zb), CM_OK);
    for (size_t i = 0; i < 2 * big; i++) hb[i] = unif() - 0.5;
    const cm_exec_config variants[3] = {exec_with(2, 64, 0), exec_with(0, 64, 0),
                                        exec_with(2, 64, 1)};
    memset(a1, 0, 2 * big * sizeof(double));
    CHECK_INT_EQ(cm_hutchinson_accumulate_f64(&e, 2, big, zb, hb, a1), CM_OK);
    for (int k = 0; k < 3; k++) {
        memset(a2, 0, 2 * big * sizeof(double));
        CHECK_INT_EQ(cm_hutchinson_accumulate_f64(&variants[k], 2, big, zb, hb, a2), CM_OK);
        CHECK(memcmp(a1, a2, 2 * big * sizeof(double)) == 0);
    }
    /* float32, three rows of an odd length, threads 1, 2, default and the baseline ISA */
    const size_t odd = 30011;
    float *zf = fvec(odd), *hf = fvec(3 * odd), *f1 = fvec(3 * odd), *f2 = fvec(3 * odd);
    CHECK_INT_EQ(cm_rademacher_f32(&e, 4, 5, 6, odd, zf), CM_OK);
    for (size_t i = 0; i < 3 * odd; i++) {
        hf[i] = (float)(unif() - 0.5);
        f1[i] = (float)(unif() - 0.5);
    }
    memcpy(f2, f1, 3 * odd * sizeof(float));
    CHECK_INT_EQ(cm_hutchinson_accumulate_f32(&e, 3, odd, zf, hf, f1), CM_OK);
    int same32 = 1;
    float *f3 = fvec(3 * odd);
    for (int k = 0; k < 3; k++) {
        memcpy(f3, f2, 3 * odd * sizeof(float));
        CHECK_INT_EQ(cm_hutchinson_accumulate_f32(&variants[k], 3, odd, zf, hf, f3), CM_OK);
        same32 &= memcmp(f1, f3, 3 * odd * sizeof(float)) == 0;
    }
    CHECK(same32);
    /* and it is the plain elementwise sum */
    int plain = 1;
    for (size_t r = 0; r < 3; r++)
        for (size_t i = 0; i < odd; i++)
            plain &= f1[r * odd + i] == f2[r * odd + i] + zf[i] * hf[r * odd + i];
    CHECK(plain);
    free(zf);
    free(hf);
    free(f1);
    free(f2);
    free(f3);
    free(zb);
    free(hb);
    free(a1);
    free(a2);
    free(h);
    free(z);
    free(hz);
    free(acc);
    free(out);
}

/* ------------------------------------------------------------------------ 3. PU */
static int pu64(const cm_pu_config *cfg, const cm_exec_config *e, size_t m, size_t d,
                const double *a, double *w, double *q, cm_pu_result *res)
{
    double *work = dvec(cm_pu_work_size(m, d));
    const int st = cm_pu_solve_f64(cfg, e, m, d, a, w, q, work, res);
    free(work);
    return st;
}

static int pu32(const cm_pu_config *cfg, const cm_exec_config *e, size_t m, size_t d,
                const float *a, float *w, float *q, cm_pu_result *res)
{
    float *work = fvec(cm_pu_work_size(m, d));
    const int st = cm_pu_solve_f32(cfg, e, m, d, a, w, q, work, res);
    free(work);
    return st;
}

static void test_pu_values(void)
{
    cm_pu_config cfg;
    cm_pu_config_default(&cfg);
    cm_pu_result res;
    cm_exec_config e = exec_with(1, 1 << 30, 0);
    double w[8], q[8];

    /* matching pennies: value 0, (1/2, 1/2) */
    const double pennies[4] = {1, -1, -1, 1};
    cfg.tau = 1e-3;
    cfg.iters = 20000;
    CHECK_INT_EQ(pu64(&cfg, &e, 2, 2, pennies, w, q, &res), CM_OK);
    CHECKF(fabs(res.value) < 1e-6 && fabs(w[0] - 0.5) < 1e-6 && fabs(q[0] - 0.5) < 1e-6,
           "value %g w0 %g q0 %g", res.value, w[0], q[0]);
    CHECK(res.iters_used == 20000);
    CHECK(fabs(res.eta - 1.0 / (1e-3 + 2.0)) < 1e-15);

    /* rock-paper-scissors: value 0, uniform strategies */
    const double rps[9] = {0, -1, 1, 1, 0, -1, -1, 1, 0};
    CHECK_INT_EQ(pu64(&cfg, &e, 3, 3, rps, w, q, &res), CM_OK);
    CHECKF(fabs(res.value) < 1e-6 && fabs(w[1] - 1.0 / 3) < 1e-6 && fabs(q[2] - 1.0 / 3) < 1e-6,
           "rps value %g", res.value);

    /* diagonal game diag(a): value 1 / sum(1/a), w = q proportional to 1/a */
    const double diag[4] = {1.0, 2.0, 4.0, 0.5};
    double a[16] = {0};
    double inv = 0.0;
    for (int i = 0; i < 4; i++) {
        a[i * 4 + i] = diag[i];
        inv += 1.0 / diag[i];
    }
    cfg.tau = 1e-4;
    cfg.iters = 200000;
    CHECK_INT_EQ(pu64(&cfg, &e, 4, 4, a, w, q, &res), CM_OK);
    CHECKF(fabs(res.value - 1.0 / inv) < 1e-3, "diagonal value %g vs %g", res.value, 1.0 / inv);
    CHECKF(res.gap < 2e-3, "gap %g", res.gap);
    /* the gap brackets the exact value: min_j (A^T w)_j <= value* <= max_i (A q)_i */
    double lower = INFINITY, upper = -INFINITY;
    for (int j = 0; j < 4; j++) lower = fmin(lower, diag[j] * w[j]);
    for (int i = 0; i < 4; i++) upper = fmax(upper, diag[i] * q[i]);
    CHECK(lower <= 1.0 / inv + 1e-15 && upper >= 1.0 / inv - 1e-15);
    CHECK(fabs((upper - lower) - res.gap) < 1e-12);
    double sw = 0.0, sq = 0.0;
    for (int i = 0; i < 4; i++) {
        sw += w[i];
        sq += q[i];
    }
    CHECK(fabs(sw - 1.0) < 1e-14 && fabs(sq - 1.0) < 1e-14);

    /* float */
    float af[16], wf[4], qf[4];
    for (int i = 0; i < 16; i++) af[i] = (float)a[i];
    cfg.tau = 1e-3;
    cfg.iters = 20000;
    CHECK_INT_EQ(pu32(&cfg, &e, 4, 4, af, wf, qf, &res), CM_OK);
    CHECKF(fabs(res.value - 1.0 / inv) < 5e-3, "float diagonal value %g", res.value);

    /* AMOO's selection example: rows = diagonal Hessians, the last row is the identity: the
     * game picks it (w -> e_m), value 1 */
    const size_t m = 4, d = 6;
    double sel[24];
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < d; j++) sel[i * d + j] = i == m - 1 ? 1.0 : (j == 0 ? 0.99 : 0.01);
    cfg.tau = 1e-3;
    cfg.iters = 5000;
    CHECK_INT_EQ(pu64(&cfg, &e, m, d, sel, w, q, &res), CM_OK);
    CHECKF(w[m - 1] > 0.95 && fabs(res.value - 1.0) < 0.02, "selection w %g value %g", w[m - 1],
           res.value);
    /* the floor w_min = 1/m pins w to uniform */
    cfg.w_min = 0.25;
    CHECK_INT_EQ(pu64(&cfg, &e, m, d, sel, w, q, &res), CM_OK);
    CHECK(fabs(w[0] - 0.25) < 1e-15 && fabs(w[3] - 0.25) < 1e-15);
    /* a floor of 0.1: w_i >= 0.1, the rest on the identity row */
    cfg.w_min = 0.1;
    CHECK_INT_EQ(pu64(&cfg, &e, m, d, sel, w, q, &res), CM_OK);
    CHECKF(w[0] >= 0.1 - 1e-15 && w[1] >= 0.1 - 1e-15 && w[3] > 0.65, "floored w %g %g %g %g",
           w[0], w[1], w[2], w[3]);
    cfg.w_min = 0.0;

    /* early stop by tol, and warm start continuing a run */
    cfg.tau = 0.01;
    cfg.iters = 100000;
    cfg.tol = 0.05;
    CHECK_INT_EQ(pu64(&cfg, &e, 4, 4, a, w, q, &res), CM_OK);
    CHECKF(res.iters_used < 100000 && res.gap <= 0.05, "tol: %lld iterations, gap %g",
           (long long)res.iters_used, res.gap);
    cfg.tol = 0.0;
    double w1[4], q1[4], w2[4], q2[4];
    cfg.iters = 60;
    CHECK_INT_EQ(pu64(&cfg, &e, 4, 4, a, w1, q1, &res), CM_OK);
    cfg.iters = 25;
    CHECK_INT_EQ(pu64(&cfg, &e, 4, 4, a, w2, q2, &res), CM_OK);
    cfg.warm_start = 1;
    cfg.iters = 35;
    CHECK_INT_EQ(pu64(&cfg, &e, 4, 4, a, w2, q2, &res), CM_OK);
    double dmax = 0.0;
    for (int i = 0; i < 4; i++) dmax = fmax(dmax, fmax(fabs(w1[i] - w2[i]), fabs(q1[i] - q2[i])));
    CHECKF(dmax < 1e-13, "warm start differs by %g", dmax);
    /* iters = 0 with a warm start returns the (normalised) start and its gap */
    double w0[2] = {3.0, 1.0}, q0[2] = {1.0, 1.0};
    cfg.iters = 0;
    CHECK_INT_EQ(pu64(&cfg, &e, 2, 2, pennies, w0, q0, &res), CM_OK);
    CHECK(fabs(w0[0] - 0.75) < 1e-15 && fabs(q0[0] - 0.5) < 1e-15);
    CHECK(fabs(res.gap - 0.5) < 1e-15 && res.iters_used == 0 && fabs(res.value) < 1e-15);
}

static void test_pu_determinism(void)
{
    /* m = 6 (a group of four rows and one of two in the fused pass), d above the parallel
     * threshold and not a multiple of 8: same bits for every split and build */
    const size_t m = 6, d = 70001;
    double *a = dvec(m * d), *w = dvec(m), *q = dvec(d), *w2 = dvec(m), *q2 = dvec(d);
    float *af = fvec(m * d), *wf = fvec(m), *qf = fvec(d), *wf2 = fvec(m), *qf2 = fvec(d);
    for (size_t i = 0; i < m * d; i++) {
        a[i] = 0.1 + unif();
        af[i] = (float)a[i];
    }
    cm_pu_config cfg;
    cm_pu_config_default(&cfg);
    cfg.iters = 20;
    cm_pu_result r1, r2;
    cm_exec_config e = exec_with(1, 1 << 30, 0);
    CHECK_INT_EQ(pu64(&cfg, &e, m, d, a, w, q, &r1), CM_OK);
    CHECK_INT_EQ(pu32(&cfg, &e, m, d, af, wf, qf, &r1), CM_OK);
    CHECK_INT_EQ(pu64(&cfg, &e, m, d, a, w, q, &r1), CM_OK);
    const cm_exec_config variants[4] = {exec_with(2, 64, 0), exec_with(0, 64, 0),
                                        exec_with(2, 64, 1), exec_with(1, 64, 1)};
    const int nt0 = cm_blas_get_num_threads();
    /* CM_PU_FUSED: the same bits for every split, build and OpenBLAS thread count */
    for (int blas = 1; blas <= 3; blas++) {
        cm_blas_set_num_threads(blas);
        for (int k = 0; k < 4; k++) {
            CHECK_INT_EQ(pu64(&cfg, &variants[k], m, d, a, w2, q2, &r2), CM_OK);
            CHECKF(memcmp(w, w2, m * sizeof(double)) == 0 && memcmp(q, q2, d * sizeof(double)) == 0
                       && r1.gap == r2.gap && r1.value == r2.value,
                   "double, variant %d, %d BLAS threads", k, blas);
            CHECK_INT_EQ(pu32(&cfg, &variants[k], m, d, af, wf2, qf2, &r2), CM_OK);
            CHECKF(memcmp(wf, wf2, m * sizeof(float)) == 0 && memcmp(qf, qf2, d * sizeof(float)) == 0,
                   "float, variant %d, %d BLAS threads", k, blas);
        }
    }
    /* CM_PU_BLAS: the same bits for madam's splits at a fixed OpenBLAS thread count, and the
     * fused results to rounding */
    cm_blas_set_num_threads(1);
    cfg.matvec = CM_PU_BLAS;
    double *wb = dvec(m), *qb = dvec(d);
    CHECK_INT_EQ(pu64(&cfg, &e, m, d, a, wb, qb, &r2), CM_OK);
    double dq = 0.0, dw2 = 0.0;
    for (size_t j = 0; j < d; j++) dq = fmax(dq, fabs(qb[j] - q[j]) / q[j]);
    for (size_t i = 0; i < m; i++) dw2 = fmax(dw2, fabs(wb[i] - w[i]));
    CHECKF(dq < 1e-10 && dw2 < 1e-12 && fabs(r2.gap - r1.gap) < 1e-12, "blas vs fused: q %g w %g",
           dq, dw2);
    for (int k = 0; k < 4; k++) {
        CHECK_INT_EQ(pu64(&cfg, &variants[k], m, d, a, w2, q2, &r2), CM_OK);
        CHECK(memcmp(wb, w2, m * sizeof(double)) == 0 && memcmp(qb, q2, d * sizeof(double)) == 0);
    }
    CHECK_INT_EQ(pu32(&cfg, &e, m, d, af, wf2, qf2, &r2), CM_OK);
    double dwf = 0.0;
    for (size_t i = 0; i < m; i++) dwf = fmax(dwf, fabs((double)wf2[i] - (double)wf[i]));
    CHECKF(dwf < 1e-5, "float blas vs fused: %g", dwf);
    free(wb);
    free(qb);
    cfg.matvec = CM_PU_FUSED;
    cm_blas_set_num_threads(nt0 >= 1 ? nt0 : 1);
    /* float agrees with double to float precision */
    double dw = 0.0;
    for (size_t i = 0; i < m; i++) dw = fmax(dw, fabs((double)wf[i] - w[i]));
    CHECKF(dw < 1e-4, "float vs double w differ by %g", dw);
    free(a);
    free(w);
    free(q);
    free(w2);
    free(q2);
    free(af);
    free(wf);
    free(qf);
    free(wf2);
    free(qf2);
}

/* ------------------------------------------------------------------------ 3b. PU's exponential */
/* |y - exp(x)| in units in the last place of the float nearest exp(x) (the subnormal spacing
 * below FLT_MIN); exp in double is the reference. */
static double exp_ulp_error(float x, float y)
{
    const double ex = exp((double)x);
    const float nearest = (float)ex;
    int e = 0;
    if (nearest >= FLT_MIN) frexpf(nearest, &e);
    const double ulp = nearest >= FLT_MIN ? ldexp(1.0, e - 24) : 0x1p-149;
    return fabs((double)y - ex) / ulp;
}

static void test_pu_exp(void)
{
    /* every 557th float of [-104, 89] (4 million), in bit order */
    const float lo = -104.0f, hi = 89.0f;
    uint32_t blo, bhi;
    memcpy(&blo, &lo, sizeof blo);
    memcpy(&bhi, &hi, sizeof bhi);
    const size_t n_neg = (blo - 0x80000000u) / 557 + 1, n_pos = bhi / 557 + 1, n = n_neg + n_pos;
    float *x = fvec(n), *y = fvec(n), *y2 = fvec(n);
    for (size_t i = 0; i < n_neg; i++) {
        const uint32_t b = blo - (uint32_t)(557 * i); /* from -104 towards -0 */
        memcpy(&x[i], &b, sizeof b);
    }
    for (size_t i = 0; i < n_pos; i++) {
        const uint32_t b = (uint32_t)(557 * i); /* from +0 towards 89 */
        memcpy(&x[n_neg + i], &b, sizeof b);
    }
    cm_exec_config e = exec_with(2, 64, 0);
    CHECK_INT_EQ(cm_pu_exp_f32(&e, n, x, y), CM_OK);
    double worst = 0.0;
    float at = 0.0f;
    size_t exact = 0;
    for (size_t i = 0; i < n; i++) {
        const double err = exp((double)x[i]) > FLT_MAX ? (isinf(y[i]) ? 0.0 : 1e9)
                                                      : exp_ulp_error(x[i], y[i]);
        exact += err <= 0.5;
        if (err > worst) worst = err, at = x[i];
    }
    CHECKF(worst <= 0.977, "max error %.4f ulp at %a", worst, (double)at);
    CHECKF(exact > 0.99 * (double)n, "%zu of %zu correctly rounded", exact, n);
    /* the same bits for 1 thread and for the baseline build */
    const cm_exec_config others[2] = {exec_with(1, 1 << 30, 0), exec_with(2, 64, 1)};
    for (int k = 0; k < 2; k++) {
        CHECK_INT_EQ(cm_pu_exp_f32(&others[k], n, x, y2), CM_OK);
        CHECKF(memcmp(y, y2, n * sizeof(float)) == 0, "variant %d", k);
    }
    /* the ends of the range and beyond, and in place */
    float sp[10] = {0.0f, -0.0f, -104.0f, -104.5f, -1e30f, -INFINITY, 88.8f, 1e30f, INFINITY, NAN};
    CHECK_INT_EQ(cm_pu_exp_f32(&e, 10, sp, sp), CM_OK);
    CHECK(sp[0] == 1.0f && sp[1] == 1.0f);
    CHECK(sp[2] == 0.0f && sp[3] == 0.0f && sp[4] == 0.0f && sp[5] == 0.0f);
    CHECK(isinf(sp[6]) && sp[6] > 0 && isinf(sp[7]) && isinf(sp[8]) && isnan(sp[9]));
    /* subnormal results keep their (absolute) accuracy */
    float sub = -100.0f, subv;
    CHECK_INT_EQ(cm_pu_exp_f32(&e, 1, &sub, &subv), CM_OK);
    CHECKF(subv > 0.0f && subv < FLT_MIN && exp_ulp_error(sub, subv) <= 0.977, "exp(-100) = %a",
           (double)subv);
    /* double: libm's exp */
    double xd[4] = {-700.5, -3.25, 0.0, 1.0 / 3.0}, yd[4];
    CHECK_INT_EQ(cm_pu_exp_f64(&e, 4, xd, yd), CM_OK);
    for (int i = 0; i < 4; i++) CHECK(yd[i] == exp(xd[i]));
    CHECK_INT_EQ(cm_pu_exp_f32(&e, 1, NULL, y), CM_ERR_NULL);
    CHECK_INT_EQ(cm_pu_exp_f64(&e, 4, xd, NULL), CM_ERR_NULL);
    CHECK_INT_EQ(cm_pu_exp_f64(&e, 0, xd, yd), CM_OK);
    free(x);
    free(y);
    free(y2);
}

static void test_pu_status(void)
{
    cm_pu_config cfg;
    cm_pu_config_default(&cfg);
    CHECK(cfg.tau == 0.01 && cfg.eta == 0.0 && cfg.iters == 100 && cfg.w_min == 0.0 &&
          cfg.tol == 0.0 && cfg.warm_start == 0 && cfg.matvec == CM_PU_FUSED);
    cm_pu_result res;
    cm_exec_config e = exec_with(1, 1 << 30, 0);
    double a[4] = {1, 2, 3, 4}, w[2] = {0.5, 0.5}, q[2] = {0.25, 0.75}, work[14];
    const double w_keep[2] = {0.5, 0.5}, q_keep[2] = {0.25, 0.75};
    CHECK_INT_EQ(cm_pu_work_size(2, 2), 14);
#define PU_FAILS(expr, code)                                                                   \
    do {                                                                                       \
        CHECK_INT_EQ(expr, code);                                                              \
        CHECK(memcmp(w, w_keep, sizeof w) == 0 && memcmp(q, q_keep, sizeof q) == 0);           \
    } while (0)
    PU_FAILS(cm_pu_solve_f64(NULL, &e, 2, 2, a, w, q, work, &res), CM_ERR_NULL);
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, NULL, w, q, work, &res), CM_ERR_NULL);
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, NULL, &res), CM_ERR_NULL);
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, NULL), CM_ERR_NULL);
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 0, 2, a, w, q, work, &res), CM_ERR_SIZE);
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 0, a, w, q, work, &res), CM_ERR_SIZE);
    cfg.tau = -1.0;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, &res), CM_ERR_HYPER);
    cfg.tau = NAN;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, &res), CM_ERR_HYPER);
    cfg.tau = 0.0;
    double zero[4] = {0, 0, 0, 0};
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, zero, w, q, work, &res), CM_ERR_HYPER);
    cfg.tau = 0.01;
    cfg.eta = NAN;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, &res), CM_ERR_HYPER);
    cfg.eta = 0.0;
    cfg.iters = -1;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, &res), CM_ERR_HYPER);
    cfg.iters = 10;
    cfg.w_min = 0.6;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, &res), CM_ERR_HYPER);
    cfg.w_min = -0.1;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, &res), CM_ERR_HYPER);
    cfg.w_min = 0.0;
    cfg.tol = -1.0;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, &res), CM_ERR_HYPER);
    cfg.tol = 0.0;
    cfg.warm_start = 2;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, &res), CM_ERR_HYPER);
    cfg.warm_start = 0;
    cfg.matvec = 2;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, q, work, &res), CM_ERR_HYPER);
    cfg.matvec = CM_PU_FUSED;
    double nan_a[4] = {1, NAN, 3, 4};
    cfg.warm_start = 1;
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, nan_a, w, q, work, &res), CM_ERR_HYPER);
    double inf_a[4] = {1, INFINITY, 3, 4};
    PU_FAILS(cm_pu_solve_f64(&cfg, &e, 2, 2, inf_a, w, q, work, &res), CM_ERR_HYPER);
    /* bad warm starts */
    double wb[2] = {-0.5, 1.5}, qb[2] = {0.0, 0.0};
    CHECK_INT_EQ(cm_pu_solve_f64(&cfg, &e, 2, 2, a, wb, q, work, &res), CM_ERR_HYPER);
    CHECK(wb[0] == -0.5 && wb[1] == 1.5);
    CHECK_INT_EQ(cm_pu_solve_f64(&cfg, &e, 2, 2, a, w, qb, work, &res), CM_ERR_HYPER);
    CHECK(qb[0] == 0.0 && qb[1] == 0.0);
    double wn[2] = {NAN, 1.0};
    CHECK_INT_EQ(cm_pu_solve_f64(&cfg, &e, 2, 2, a, wn, q, work, &res), CM_ERR_HYPER);
    /* m = 1: w = 1, q the best response (smallest column) */
    double row[3] = {3.0, 1.0, 2.0}, w1[1], q3[3], work1[13];
    cfg.warm_start = 0;
    cfg.tau = 1e-3;
    cfg.iters = 5000;
    CHECK_INT_EQ(cm_pu_solve_f64(&cfg, &e, 1, 3, row, w1, q3, work1, &res), CM_OK);
    CHECK(w1[0] == 1.0 && q3[1] > 0.99 && fabs(res.value - 1.0) < 0.01);
#undef PU_FAILS
}

/* ------------------------------------------------------------------------ 4. PAMOO */
static void test_pamoo(void)
{
    cm_pamoo_config cfg;
    cm_pamoo_config_default(&cfg);
    CHECK(cfg.lr == 3e-3 && cfg.iters == 1000 && cfg.w_min == 1e-6);
    const double a[9] = {2.0, 0, 0, 0, 4.0, 0, 0, 0, 1.0}, f[3] = {1.0, -1.0, 0.5};
    double w[3] = {1.0, 1.0, 1.0}, work[3];
    cfg.lr = 0.1;
    cfg.iters = 2000;
    CHECK_INT_EQ(cm_pamoo_weights_f64(&cfg, 3, a, f, w, work), CM_OK);
    CHECKF(fabs(w[0] - 0.5) < 1e-12 && w[1] == 1e-6 && fabs(w[2] - 0.5) < 1e-12,
           "pamoo w %g %g %g", w[0], w[1], w[2]);
    float af[9], ff[3], wf[3] = {1, 1, 1}, workf[3];
    for (int i = 0; i < 9; i++) af[i] = (float)a[i];
    for (int i = 0; i < 3; i++) ff[i] = (float)f[i];
    CHECK_INT_EQ(cm_pamoo_weights_f32(&cfg, 3, af, ff, wf, workf), CM_OK);
    CHECK(fabsf(wf[0] - 0.5f) < 1e-6f && fabsf(wf[2] - 0.5f) < 1e-6f);
    /* one iteration by hand: A w = (2, 4, 1), w + 0.1 (2 f - 2 A w) = (0.8, 0, 0.9) */
    double w1[3] = {1.0, 1.0, 1.0};
    cfg.iters = 1;
    CHECK_INT_EQ(cm_pamoo_weights_f64(&cfg, 3, a, f, w1, work), CM_OK);
    CHECK(fabs(w1[0] - 0.8) < 1e-15 && fabs(w1[1] - 1e-6) < 1e-20 && fabs(w1[2] - 0.9) < 1e-15);
    const double keep[3] = {1.0, 1.0, 1.0};
    double wk[3] = {1.0, 1.0, 1.0};
    cfg.lr = 0.0;
    CHECK_INT_EQ(cm_pamoo_weights_f64(&cfg, 3, a, f, wk, work), CM_ERR_HYPER);
    cfg.lr = 0.1;
    cfg.iters = -1;
    CHECK_INT_EQ(cm_pamoo_weights_f64(&cfg, 3, a, f, wk, work), CM_ERR_HYPER);
    cfg.iters = 1;
    cfg.w_min = NAN;
    CHECK_INT_EQ(cm_pamoo_weights_f64(&cfg, 3, a, f, wk, work), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_pamoo_weights_f64(&cfg, 3, a, f, wk, NULL), CM_ERR_NULL);
    CHECK(memcmp(wk, keep, sizeof keep) == 0);
}

int main(void)
{
    test_rademacher();
    test_hutchinson();
    test_pu_values();
    test_pu_determinism();
    test_pu_exp();
    test_pu_status();
    test_pamoo();
    return th_summary();
}
