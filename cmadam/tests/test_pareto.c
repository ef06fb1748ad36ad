/* test_pareto.c -- unit tests of the Pareto metrics of cmadam (cmadam_pareto.h).
 *
 * What is checked:
 *   1. small cases with hand-computed values (hypervolume in 1-D .. 4-D, contributions,
 *      nondominance with and without keep_weakly, ranks, IGD / IGD+ (moocore's documented
 *      examples), spacing, spread);
 *   2. hypervolume and contributions on integer grids against an exact count of the dominated
 *      unit cells (m = 2 .. 5, with duplicates, ties, weakly dominated points and points on or
 *      beyond the reference point), for CM_PARETO_AUTO and CM_PARETO_GENERIC, both settings of
 *      ignore_dominated;
 *   3. hypervolume of random real points against inclusion-exclusion over all subsets (n <= 10);
 *   4. large 2-D / 3-D integer sets against an exact prefix-minimum count; 3-D sweep against
 *      WFG; 3-D contributions against leave-one-out; WFG's prefilter (m = 5, 6); the 4-D
 *      sweep (m = 4, 5) on tie-heavy grids against an exact count and against WFG to 2-D;
 *   5. nondominance and ranks against brute force (pairwise comparisons, front peeling);
 *   6. the internal sort and 64-ary bitmap tree against naive versions;
 *   7. bit-identical results for 1, 2 and the default number of threads;
 *   8. status codes, and outputs untouched on error.
 * The last line printed is "N passed, N failed"; the exit status is non-zero on any failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmadam_pareto.h"
#include "harness.h"
#include "../src/pareto_internal.h"

/* ------------------------------------------------------------------------ helpers */
/* rng_t, rng_u64, rng_unif: harness.h */
static size_t rng_int(rng_t *r, size_t k) { return (size_t)(rng_u64(r) % k); }

static double rng_normal(rng_t *r)
{
    const double u = rng_unif(r) + 1e-300, v = rng_unif(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}


static int close_rel(double a, double b, double rtol)
{
    return fabs(a - b) <= rtol * fmax(1.0, fmax(fabs(a), fabs(b)));
}

static cm_pareto_config config(int algorithm, int keep_weakly, int ignore_dominated)
{
    cm_pareto_config c;
    cm_pareto_config_default(&c);
    c.algorithm = algorithm;
    c.keep_weakly = keep_weakly;
    c.ignore_dominated = ignore_dominated;
    return c;
}

static double hv(int algorithm, size_t n, size_t m, const double *p, const double *ref)
{
    const cm_pareto_config c = config(algorithm, 0, 1);
    double v = -1.0;
    const int st = cm_hypervolume_f64(&c, NULL, n, m, p, ref, &v);
    CHECK_INT_EQ(st, CM_OK);
    return v;
}

/* points on the positive unit sphere (mutually nondominated), scaled and shifted */
static void sphere_front(rng_t *r, size_t n, size_t m, double *p)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t k = 0; k < m; k++) {
            p[i * m + k] = fabs(rng_normal(r)) + 1e-12;
            s += p[i * m + k] * p[i * m + k];
        }
        s = sqrt(s);
        for (size_t k = 0; k < m; k++) p[i * m + k] = 1.0 - p[i * m + k] / s;
    }
}

/* integer points in {0, .., g} (g == the reference coordinate), with duplicates */
static void grid_points(rng_t *r, size_t n, size_t m, size_t g, double *p)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && rng_int(r, 8) == 0) { /* a copy of an earlier point */
            memcpy(p + i * m, p + rng_int(r, i) * m, m * sizeof *p);
            continue;
        }
        for (size_t k = 0; k < m; k++) p[i * m + k] = (double)rng_int(r, g + 1);
    }
}

/* ------------------------------------------------------------------------ brute force */
static int weakly_dom(const double *a, const double *b, size_t m)
{
    for (size_t k = 0; k < m; k++)
        if (a[k] > b[k]) return 0;
    return 1;
}

static int equal_pt(const double *a, const double *b, size_t m)
{
    for (size_t k = 0; k < m; k++)
        if (a[k] != b[k]) return 0;
    return 1;
}

static int dominated_brute(size_t n, size_t m, const double *p, size_t i, const unsigned char *alive)
{
    for (size_t j = 0; j < n; j++)
        if (j != i && (!alive || alive[j]) && weakly_dom(p + j * m, p + i * m, m) &&
            !equal_pt(p + j * m, p + i * m, m))
            return 1;
    return 0;
}

/* Exact hypervolume / contributions of integer points in {0..g}^m with ref = (g, .., g), by
 * counting unit cells [c, c + 1): cell c is dominated by p iff p <= c. counted[i] = cells
 * dominated by point i alone among the points with use[i] (NULL: all). */
static double grid_count(size_t n, size_t m, const double *p, size_t g, const unsigned char *use,
                         double *alone)
{
    size_t cells = 1;
    for (size_t k = 0; k < m; k++) cells *= g;
    if (alone)
        for (size_t i = 0; i < n; i++) alone[i] = 0.0;
    double total = 0.0;
    double c[8];
    for (size_t cell = 0; cell < cells; cell++) {
        size_t rest = cell, who = 0, count = 0;
        for (size_t k = 0; k < m; k++) {
            c[k] = (double)(rest % g);
            rest /= g;
        }
        for (size_t i = 0; i < n; i++) {
            if (use && !use[i]) continue;
            if (weakly_dom(p + i * m, c, m)) {
                count++;
                who = i;
            }
        }
        total += count > 0;
        if (alone && count == 1) alone[who] += 1.0;
    }
    return total;
}

static double hv_inclusion_exclusion(size_t n, size_t m, const double *p, const double *ref)
{
    double total = 0.0;
    double mx[8];
    for (uint64_t mask = 1; mask < ((uint64_t)1 << n); mask++) {
        int bits = 0;
        for (size_t k = 0; k < m; k++) mx[k] = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            if (!(mask >> i & 1)) continue;
            bits++;
            for (size_t k = 0; k < m; k++) mx[k] = fmax(mx[k], p[i * m + k]);
        }
        double v = 1.0;
        for (size_t k = 0; k < m; k++) v *= fmax(ref[k] - mx[k], 0.0);
        total += (bits % 2 ? 1.0 : -1.0) * v;
    }
    return total;
}

/* ------------------------------------------------------------------------ 1. exact cases */
static void test_defaults_and_strerror(void)
{
    cm_pareto_config c;
    memset(&c, 0x5a, sizeof c);
    cm_pareto_config_default(&c);
    CHECK_INT_EQ(c.algorithm, CM_PARETO_AUTO);
    CHECK_INT_EQ(c.keep_weakly, 0);
    CHECK_INT_EQ(c.ignore_dominated, 1);
    cm_pareto_config_default(NULL); /* no crash */
}

static void test_hv_exact(void)
{
    for (int alg = 0; alg < 2; alg++) {
        /* moocore's documented example: 38 */
        const double p2[] = {5, 5, 4, 6, 2, 7, 7, 4};
        const double r2[] = {10, 10};
        CHECK(hv(alg, 4, 2, p2, r2) == 38.0);
        /* 1-D: ref - min over the points below ref */
        const double p1[] = {3, 12, 7, -1.5};
        const double r1[] = {10};
        CHECK(hv(alg, 4, 1, p1, r1) == 11.5);
        CHECK(hv(alg, 2, 1, p1, r1) == 7.0);
        /* 3-D: one box 1 x 2 x 3; two boxes 4 + 4 - 2 */
        const double p3[] = {1, 1, 1};
        const double r3[] = {2, 3, 4};
        CHECK(hv(alg, 1, 3, p3, r3) == 6.0);
        const double q3[] = {0, 0, 1, 0, 1, 0, 0.5, 0.5, 1.5 /* dominated */, 0, 0, 1};
        const double s3[] = {2, 2, 2};
        CHECK(hv(alg, 4, 3, q3, s3) == 6.0);
        /* 4-D: [1,2]^4 plus four unit slabs */
        const double p4[] = {0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0};
        const double r4[] = {2, 2, 2, 2};
        CHECK(hv(alg, 4, 4, p4, r4) == 5.0);
        /* points on or beyond ref add nothing; a point far below one coordinate is fine */
        const double pb[] = {0, 10, 10, 0, 0, 12, 5, -10};
        CHECK(hv(alg, 4, 2, pb, r2) == 100.0);
        CHECK(hv(alg, 3, 2, pb, r2) == 0.0);
        CHECK(hv(alg, 0, 2, pb, r2) == 0.0);
        /* -0.0 and 0.0 are the same coordinate */
        const double pz[] = {-0.0, 1, 0.0, 0.5, 0.0, 1};
        const double rz[] = {1, 2};
        CHECK(hv(alg, 3, 2, pz, rz) == 1.5);
    }
}

static void test_contrib_exact(void)
{
    /* moocore's example: duplicates 0, dominated 0 */
    const double x[] = {5, 1, 1, 5, 4, 2, 4, 4, 5, 1};
    const double ref[] = {6, 6};
    const double want_ign[] = {0, 3, 3, 0, 0};
    const double want_all[] = {0, 3, 2, 0, 0}; /* (4,4) is dominated by (4,2) alone */
    double out[5];
    for (int alg = 0; alg < 2; alg++) {
        cm_pareto_config c = config(alg, 0, 1);
        CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 5, 2, x, ref, out), CM_OK);
        for (int i = 0; i < 5; i++) CHECKF(out[i] == want_ign[i], "alg %d i %d: %g", alg, i, out[i]);
        c.ignore_dominated = 0;
        CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 5, 2, x, ref, out), CM_OK);
        for (int i = 0; i < 5; i++) CHECKF(out[i] == want_all[i], "alg %d i %d: %g", alg, i, out[i]);
    }
    /* a point dominated only by (1,1) lowers its contribution without ignore_dominated */
    const double y[] = {1, 1, 0, 10, 10, 0, 0, 12, 2, 2, 0.5, 3};
    const double r10[] = {10, 10};
    const double want_y_ign[] = {18, 0, 0, 0, 0, 3.5};
    const double want_y_all[] = {10, 0, 0, 0, 0, 3.5};
    double o6[6];
    for (int alg = 0; alg < 2; alg++) {
        cm_pareto_config c = config(alg, 0, 1);
        CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 6, 2, y, r10, o6), CM_OK);
        /* ignoring (2,2): hv = 81 + 3.5, without (1,1) 66.5 -> 18; with (2,2): 84.5 - 74.5 */
        for (int i = 0; i < 6; i++) CHECKF(o6[i] == want_y_ign[i], "alg %d i %d: %g", alg, i, o6[i]);
        c.ignore_dominated = 0;
        CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 6, 2, y, r10, o6), CM_OK);
        for (int i = 0; i < 6; i++) CHECKF(o6[i] == want_y_all[i], "alg %d i %d: %g", alg, i, o6[i]);
    }
    /* 3-D: two boxes of 4 sharing 2 */
    const double q3[] = {0, 0, 1, 0, 1, 0};
    const double s3[] = {2, 2, 2};
    double o3[2];
    for (int alg = 0; alg < 2; alg++) {
        cm_pareto_config c = config(alg, 0, 1);
        CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 2, 3, q3, s3, o3), CM_OK);
        CHECK(o3[0] == 2.0 && o3[1] == 2.0);
    }
    /* 1-D */
    const double p1[] = {3, 5, 3.5, 11};
    const double r1[] = {10};
    double o1[4];
    cm_pareto_config c = config(CM_PARETO_AUTO, 0, 1);
    CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 4, 1, p1, r1, o1), CM_OK);
    CHECK(o1[0] == 7.0 && o1[1] == 0.0 && o1[2] == 0.0 && o1[3] == 0.0);
    c.ignore_dominated = 0;
    CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 4, 1, p1, r1, o1), CM_OK);
    CHECK(o1[0] == 0.5 && o1[1] == 0.0 && o1[2] == 0.0 && o1[3] == 0.0);
}

static void test_nd_rank_exact(void)
{
    const double s[] = {1, 1, 0, 1, 1, 0, 1, 0};
    unsigned char mask[4];
    for (int alg = 0; alg < 2; alg++) {
        cm_pareto_config c = config(alg, 0, 1);
        CHECK_INT_EQ(cm_nondominated_f64(&c, NULL, 4, 2, s, mask), CM_OK);
        CHECK(!mask[0] && mask[1] && mask[2] && !mask[3]);
        c.keep_weakly = 1;
        CHECK_INT_EQ(cm_nondominated_f64(&c, NULL, 4, 2, s, mask), CM_OK);
        CHECK(!mask[0] && mask[1] && mask[2] && mask[3]);
    }
    /* ranks: chains and duplicates */
    const double r[] = {3, 3, 1, 1, 2, 2, 1, 1, 0, 4, 4, 0, 2, 2, 5, 5};
    const int64_t want[] = {2, 0, 1, 0, 0, 0, 1, 3};
    int64_t rk[8];
    for (int alg = 0; alg < 2; alg++) {
        cm_pareto_config c = config(alg, 0, 1);
        CHECK_INT_EQ(cm_pareto_rank_f64(&c, NULL, 8, 2, r, rk), CM_OK);
        for (int i = 0; i < 8; i++) CHECK_INT_EQ(rk[i], want[i]);
    }
    /* 3-D nondominance with a weakly dominated point (equal in two coordinates) */
    const double t3[] = {1, 1, 1, 1, 1, 2, 0, 2, 2, 2, 0, 2, 1, 1, 1};
    for (int alg = 0; alg < 2; alg++) {
        cm_pareto_config c = config(alg, 0, 1);
        unsigned char m5[5];
        CHECK_INT_EQ(cm_nondominated_f64(&c, NULL, 5, 3, t3, m5), CM_OK);
        CHECK(m5[0] && !m5[1] && m5[2] && m5[3] && !m5[4]);
        int64_t r5[5];
        CHECK_INT_EQ(cm_pareto_rank_f64(&c, NULL, 5, 3, t3, r5), CM_OK);
        CHECK(r5[0] == 0 && r5[1] == 1 && r5[2] == 0 && r5[3] == 0 && r5[4] == 0);
    }
}

static void test_distances_exact(void)
{
    /* moocore's documented examples */
    const double dat[] = {3.5, 5.5, 3.6, 4.1, 4.1, 3.2, 5.5, 1.5};
    const double ref[] = {1, 6, 2, 5, 3, 4, 4, 3, 5, 2, 6, 1};
    double v = 0;
    CHECK_INT_EQ(cm_igd_f64(NULL, 4, 2, dat, 6, ref, &v), CM_OK);
    CHECKF(close_rel(v, 1.0627908666722465, 1e-15), "igd %.17g", v);
    CHECK_INT_EQ(cm_igd_plus_f64(NULL, 4, 2, dat, 6, ref, &v), CM_OK);
    CHECKF(close_rel(v, 0.9855036468106652, 1e-15), "igd+ %.17g", v);
    const double R[] = {10, 0, 6, 1, 2, 2, 1, 6, 0, 10};
    const double A[] = {4, 2, 3, 3, 2, 4};
    const double B[] = {8, 2, 4, 4, 2, 8};
    CHECK_INT_EQ(cm_igd_f64(NULL, 3, 2, A, 5, R, &v), CM_OK);
    CHECKF(close_rel(v, 3.707092031609239, 1e-15), "%.17g", v);
    CHECK_INT_EQ(cm_igd_f64(NULL, 3, 2, B, 5, R, &v), CM_OK);
    CHECKF(close_rel(v, 2.59148346584763, 1e-15), "%.17g", v);
    CHECK_INT_EQ(cm_igd_plus_f64(NULL, 3, 2, A, 5, R, &v), CM_OK);
    CHECKF(close_rel(v, 1.482842712474619, 1e-15), "%.17g", v);
    CHECK_INT_EQ(cm_igd_plus_f64(NULL, 3, 2, B, 5, R, &v), CM_OK);
    CHECKF(close_rel(v, 2.260112615949154, 1e-15), "%.17g", v);
    CHECK_INT_EQ(cm_igd_f64(NULL, 0, 2, A, 5, R, &v), CM_OK);
    CHECK(isinf(v) && v > 0);

    /* spacing: Manhattan nearest-neighbour distances 2, 2, 4 -> sqrt(4/3) */
    const double sp[] = {0, 0, 1, 1, 3, 3};
    CHECK_INT_EQ(cm_spacing_f64(NULL, 3, 2, sp, &v), CM_OK);
    CHECKF(close_rel(v, sqrt(4.0 / 3.0), 1e-15), "%.17g", v);
    const double sp2[] = {0, 0, 0, 0};
    CHECK_INT_EQ(cm_spacing_f64(NULL, 2, 2, sp2, &v), CM_OK);
    CHECK(v == 0.0);

    /* spread: evenly spaced and on the extremes -> 0 */
    const double even[] = {2, 0, 1, 1, 0, 2};
    const double ext[] = {0, 2, 2, 0, 1, 1};
    CHECK_INT_EQ(cm_spread_f64(3, 2, even, 0, NULL, &v), CM_OK);
    CHECK(v == 0.0);
    CHECK_INT_EQ(cm_spread_f64(3, 2, even, 3, ext, &v), CM_OK);
    CHECK(v == 0.0);
    /* (0,3), (1,1), (4,0) with extremes (0,4), (5,0): (2 + sqrt10 - sqrt5) / (2 + sqrt5 + sqrt10) */
    const double uneven[] = {4, 0, 0, 3, 1, 1};
    const double ext2[] = {5, 0, 0, 4};
    CHECK_INT_EQ(cm_spread_f64(3, 2, uneven, 2, ext2, &v), CM_OK);
    const double want = (2.0 + sqrt(10.0) - sqrt(5.0)) / (2.0 + sqrt(5.0) + sqrt(10.0));
    CHECKF(close_rel(v, want, 1e-15), "%.17g vs %.17g", v, want);
    CHECK_INT_EQ(cm_spread_f64(3, 2, uneven, 0, NULL, &v), CM_OK);
    CHECKF(close_rel(v, (sqrt(10.0) - sqrt(5.0)) / (sqrt(5.0) + sqrt(10.0)), 1e-15), "%.17g", v);
    CHECK_INT_EQ(cm_spread_f64(2, 2, sp2, 0, NULL, &v), CM_OK); /* 0 / 0 */
    CHECK(isnan(v));
}

/* ------------------------------------------------------------------------ 2. grids */
static void test_grid(void)
{
    rng_t r = {1};
    const size_t gs[] = {0, 0, 9, 7, 5, 4};
    double p[40 * 5], alone[40], out[40], ref[5];
    unsigned char use[40], mask[40];
    int bad_hv = 0, bad_c = 0;
    for (size_t m = 2; m <= 5; m++) {
        const size_t g = gs[m];
        for (size_t k = 0; k < m; k++) ref[k] = (double)g;
        for (int rep = 0; rep < 30; rep++) {
            const size_t n = 1 + rng_int(&r, m >= 4 ? 18 : 40);
            grid_points(&r, n, m, g, p);
            const double want = grid_count(n, m, p, g, NULL, NULL);
            for (int alg = 0; alg < 2; alg++) {
                const double got = hv(alg, n, m, p, ref);
                if (got != want) {
                    if (!bad_hv++)
                        printf("     grid hv m=%zu n=%zu alg=%d: %g vs %g\n", m, n, alg, got,
                               want);
                }
                /* contributions, all points considered */
                grid_count(n, m, p, g, NULL, alone);
                cm_pareto_config c = config(alg, 0, 0);
                CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, n, m, p, ref, out), CM_OK);
                for (size_t i = 0; i < n; i++)
                    if (fabs(out[i] - alone[i]) > 1e-9 * (1 + alone[i])) {
                        if (!bad_c++)
                            printf("     grid hvc(all) m=%zu n=%zu alg=%d i=%zu: %g vs %g\n", m,
                                   n, alg, i, out[i], alone[i]);
                    }
                /* ignoring dominated points */
                for (size_t i = 0; i < n; i++) use[i] = !dominated_brute(n, m, p, i, NULL);
                grid_count(n, m, p, g, use, alone);
                c.ignore_dominated = 1;
                CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, n, m, p, ref, out), CM_OK);
                for (size_t i = 0; i < n; i++)
                    if (fabs(out[i] - alone[i]) > 1e-9 * (1 + alone[i])) {
                        if (!bad_c++)
                            printf("     grid hvc(nd) m=%zu n=%zu alg=%d i=%zu: %g vs %g\n", m,
                                   n, alg, i, out[i], alone[i]);
                    }
                /* nondominance, both keep_weakly settings */
                for (int kw = 0; kw < 2; kw++) {
                    c.keep_weakly = kw;
                    CHECK_INT_EQ(cm_nondominated_f64(&c, NULL, n, m, p, mask), CM_OK);
                    for (size_t i = 0; i < n; i++) {
                        int first = 1;
                        for (size_t j = 0; j < i; j++) first &= !equal_pt(p + j * m, p + i * m, m);
                        const int w = use[i] && (kw || first);
                        CHECKF(mask[i] == w, "nd m=%zu n=%zu alg=%d kw=%d i=%zu", m, n, alg, kw, i);
                    }
                }
            }
        }
    }
    CHECKF(bad_hv == 0, "%d grid hypervolumes differ", bad_hv);
    CHECKF(bad_c == 0, "%d grid contributions differ", bad_c);
}

/* ------------------------------------------------------------------------ 3. incl.-excl. */
static void test_inclusion_exclusion(void)
{
    rng_t r = {7};
    double p[10 * 6], ref[6];
    for (size_t m = 2; m <= 6; m++) {
        for (int rep = 0; rep < 12; rep++) {
            const size_t n = 1 + rng_int(&r, 10);
            for (size_t i = 0; i < n * m; i++) p[i] = rng_unif(&r);
            if (rep % 2) sphere_front(&r, n, m, p);
            for (size_t k = 0; k < m; k++) ref[k] = 1.0 + 0.1 * rng_unif(&r);
            const double want = hv_inclusion_exclusion(n, m, p, ref);
            for (int alg = 0; alg < 2; alg++) {
                const double got = hv(alg, n, m, p, ref);
                CHECKF(close_rel(got, want, 1e-12), "m=%zu n=%zu alg=%d: %.17g vs %.17g", m, n,
                       alg, got, want);
            }
        }
    }
}

/* ------------------------------------------------------------------------ 4. large sets */
/* Exact hypervolume of integer points in {0..g}^m (m = 2, 3), ref = g: for every (x, y) cell the
 * least z (3-D) of the points below it, by a 2-D prefix minimum. */
static double grid_prefix_hv(size_t n, size_t m, const double *p, size_t g)
{
    if (m == 2) {
        double *ymin = xmalloc(g * sizeof *ymin);
        for (size_t x = 0; x < g; x++) ymin[x] = (double)g;
        for (size_t i = 0; i < n; i++)
            if (p[2 * i] < (double)g) ymin[(size_t)p[2 * i]] = fmin(ymin[(size_t)p[2 * i]], p[2 * i + 1]);
        double total = 0.0, run = (double)g;
        for (size_t x = 0; x < g; x++) {
            run = fmin(run, ymin[x]);
            total += (double)g - run;
        }
        free(ymin);
        return total;
    }
    double *zmin = xmalloc(g * g * sizeof *zmin);
    for (size_t c = 0; c < g * g; c++) zmin[c] = (double)g;
    for (size_t i = 0; i < n; i++) {
        const double *q = p + 3 * i;
        if (q[0] < (double)g && q[1] < (double)g) {
            double *z = zmin + (size_t)q[0] * g + (size_t)q[1];
            *z = fmin(*z, q[2]);
        }
    }
    double total = 0.0;
    for (size_t x = 0; x < g; x++)
        for (size_t y = 0; y < g; y++) {
            double z = zmin[x * g + y];
            if (x > 0) z = fmin(z, zmin[(x - 1) * g + y]);
            if (y > 0) z = fmin(z, zmin[x * g + y - 1]);
            zmin[x * g + y] = z;
            total += (double)g - z;
        }
    free(zmin);
    return total;
}

static void test_large(void)
{
    rng_t r = {11};
    const size_t n = 20000;
    double *p = xmalloc(n * 3 * sizeof *p);
    for (size_t m = 2; m <= 3; m++) {
        for (int rep = 0; rep < 3; rep++) {
            const size_t g = rep == 0 ? 50 : rep == 1 ? 400 : 3000;
            for (size_t i = 0; i < n * m; i++) p[i] = (double)rng_int(&r, g + 1);
            double ref[3] = {(double)g, (double)g, (double)g};
            const double want = grid_prefix_hv(n, m, p, g);
            const double got = hv(CM_PARETO_AUTO, n, m, p, ref);
            CHECKF(got == want, "large grid m=%zu g=%zu: %.17g vs %.17g", m, g, got, want);
        }
    }
    /* 3-D sweep vs WFG on a front, and a mixed cloud */
    const size_t nf = 1500;
    const double ref3[3] = {1.1, 1.1, 1.1};
    sphere_front(&r, nf, 3, p);
    double a = hv(CM_PARETO_AUTO, nf, 3, p, ref3), b = hv(CM_PARETO_GENERIC, nf, 3, p, ref3);
    CHECKF(close_rel(a, b, 1e-12), "front 3-D: %.17g vs %.17g", a, b);
    for (size_t i = 0; i < nf * 3; i++) p[i] = rng_unif(&r);
    a = hv(CM_PARETO_AUTO, nf, 3, p, ref3);
    b = hv(CM_PARETO_GENERIC, nf, 3, p, ref3);
    CHECKF(close_rel(a, b, 1e-12), "cloud 3-D: %.17g vs %.17g", a, b);

    /* 4-D sweep and 5-D WFG (over the 4-D sweep) vs WFG down to 2-D */
    for (size_t m = 4; m <= 5; m++) {
        const size_t nm = m == 4 ? 400 : 120;
        const double refm[5] = {1.1, 1.1, 1.1, 1.1, 1.1};
        for (int rep = 0; rep < 3; rep++) {
            if (rep == 0) sphere_front(&r, nm, m, p);
            else if (rep == 1)
                for (size_t i = 0; i < nm * m; i++) p[i] = rng_unif(&r);
            else
                for (size_t i = 0; i < nm * m; i++) p[i] = 0.1 * (double)rng_int(&r, 8);
            a = hv(CM_PARETO_AUTO, nm, m, p, refm);
            b = hv(CM_PARETO_GENERIC, nm, m, p, refm);
            CHECKF(close_rel(a, b, 1e-12), "m=%zu rep %d: %.17g vs %.17g", m, rep, a, b);
        }
    }

    /* 3-D contributions: sweep vs leave-one-out */
    const size_t nc = 400;
    double *o1 = xmalloc(nc * sizeof *o1), *o2 = xmalloc(nc * sizeof *o2);
    sphere_front(&r, nc, 3, p);
    for (size_t i = 0; i < 40; i++) /* some dominated points and duplicates */
        for (size_t k = 0; k < 3; k++) p[(nc - 1 - i) * 3 + k] = p[i * 3 + k] + (i % 2 ? 0.0 : 0.01);
    cm_pareto_config c1 = config(CM_PARETO_AUTO, 0, 1), c2 = config(CM_PARETO_GENERIC, 0, 1);
    CHECK_INT_EQ(cm_hv_contributions_f64(&c1, NULL, nc, 3, p, ref3, o1), CM_OK);
    CHECK_INT_EQ(cm_hv_contributions_f64(&c2, NULL, nc, 3, p, ref3, o2), CM_OK);
    double worst = 0.0;
    for (size_t i = 0; i < nc; i++) worst = fmax(worst, fabs(o1[i] - o2[i]));
    CHECKF(worst <= 1e-13, "3-D contributions sweep vs leave-one-out: %g", worst);
    double sum = 0.0;
    for (size_t i = 0; i < nc; i++) sum += o1[i];
    CHECK(sum > 0.0 && sum < hv(CM_PARETO_AUTO, nc, 3, p, ref3));
    free(o1);
    free(o2);

    /* 2-D: contributions sum to less than hv; 2-D sweep vs generic */
    sphere_front(&r, 5000, 2, p);
    const double ref2[2] = {1.0, 1.0};
    a = hv(CM_PARETO_AUTO, 5000, 2, p, ref2);
    b = hv(CM_PARETO_GENERIC, 5000, 2, p, ref2);
    CHECKF(close_rel(a, b, 1e-14), "2-D %.17g vs %.17g", a, b);
    free(p);
}

/* ------------------------------------------------------------------------ 5. nd and ranks */
static void test_nd_rank_random(void)
{
    rng_t r = {5};
    const size_t nmax = 300;
    double *p = xmalloc(nmax * 5 * sizeof *p);
    unsigned char *mask = xmalloc(nmax), *alive = xmalloc(nmax), *mg = xmalloc(nmax);
    int64_t *rk = xmalloc(nmax * sizeof *rk), *rg = xmalloc(nmax * sizeof *rg);
    int64_t *want = xmalloc(nmax * sizeof *want);
    int bad_nd = 0, bad_rk = 0;
    for (size_t m = 1; m <= 5; m++) {
        for (int rep = 0; rep < 8; rep++) {
            const size_t n = 1 + rng_int(&r, nmax);
            if (rep % 2) grid_points(&r, n, m, 3 + rng_int(&r, 20), p);
            else
                for (size_t i = 0; i < n * m; i++) p[i] = rng_unif(&r);
            /* brute force ranks by peeling */
            for (size_t i = 0; i < n; i++) alive[i] = 1;
            size_t left = n;
            for (int64_t front = 0; left > 0; front++) {
                for (size_t i = 0; i < n; i++)
                    mask[i] = alive[i] && !dominated_brute(n, m, p, i, alive);
                for (size_t i = 0; i < n; i++)
                    if (mask[i]) {
                        want[i] = front;
                        alive[i] = 0;
                        left--;
                    }
            }
            cm_pareto_config ca = config(CM_PARETO_AUTO, 1, 1), cg = config(CM_PARETO_GENERIC, 1, 1);
            CHECK_INT_EQ(cm_pareto_rank_f64(&ca, NULL, n, m, p, rk), CM_OK);
            CHECK_INT_EQ(cm_pareto_rank_f64(&cg, NULL, n, m, p, rg), CM_OK);
            CHECK_INT_EQ(cm_nondominated_f64(&ca, NULL, n, m, p, mask), CM_OK);
            CHECK_INT_EQ(cm_nondominated_f64(&cg, NULL, n, m, p, mg), CM_OK);
            for (size_t i = 0; i < n; i++) {
                if (rk[i] != want[i] || rg[i] != want[i]) bad_rk++;
                if (mask[i] != (want[i] == 0) || mg[i] != (want[i] == 0)) bad_nd++;
            }
        }
    }
    CHECKF(bad_nd == 0, "%d nondominance flags differ", bad_nd);
    CHECKF(bad_rk == 0, "%d ranks differ", bad_rk);
    free(p);
    free(mask);
    free(alive);
    free(mg);
    free(rk);
    free(rg);
    free(want);

    /* large 2-D / 3-D: sweeps vs the generic algorithms */
    const size_t n = 6000;
    double *q = xmalloc(n * 3 * sizeof *q);
    unsigned char *m1 = xmalloc(n), *m2 = xmalloc(n);
    int64_t *r1 = xmalloc(n * sizeof *r1), *r2 = xmalloc(n * sizeof *r2);
    for (size_t m = 2; m <= 3; m++) {
        for (int rep = 0; rep < 3; rep++) {
            if (rep == 1) grid_points(&r, n, m, 60, q);
            else if (rep == 2)
                for (size_t i = 0; i < n * m; i++) q[i] = rng_unif(&r);
            else sphere_front(&r, n, m, q);
            for (size_t i = 0; i < n / 3; i++) /* dominated copies */
                for (size_t k = 0; k < m; k++) q[(n - 1 - i) * m + k] = q[i * m + k] + (double)(i % 3);
            cm_pareto_config ca = config(CM_PARETO_AUTO, 0, 1), cg = config(CM_PARETO_GENERIC, 0, 1);
            CHECK_INT_EQ(cm_nondominated_f64(&ca, NULL, n, m, q, m1), CM_OK);
            CHECK_INT_EQ(cm_nondominated_f64(&cg, NULL, n, m, q, m2), CM_OK);
            CHECK(memcmp(m1, m2, n) == 0);
            CHECK_INT_EQ(cm_pareto_rank_f64(&ca, NULL, n, m, q, r1), CM_OK);
            CHECK_INT_EQ(cm_pareto_rank_f64(&cg, NULL, n, m, q, r2), CM_OK);
            CHECK(memcmp(r1, r2, n * sizeof *r1) == 0);
        }
    }
    free(q);
    free(m1);
    free(m2);
    free(r1);
    free(r2);
}

/* ------------------------------------------------------------------------ 6. internals */
static void test_sort_and_fset(void)
{
    rng_t r = {3};
    const size_t sizes[] = {1, 2, 17, 255, 256, 1000, 70000};
    int bad = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        const size_t n = sizes[si];
        double *p = xmalloc(n * 2 * sizeof *p);
        size_t *idx = xmalloc(n * sizeof *idx);
        void *scratch = xmalloc(cm_po_sort_scratch_bytes(n));
        for (size_t i = 0; i < 2 * n; i++) {
            const size_t kind = rng_int(&r, 4);
            p[i] = kind == 0 ? (double)rng_int(&r, 5) - 2.0 : kind == 1 ? -0.0 : rng_normal(&r) * 1e3;
        }
        for (size_t i = 0; i < n; i++) idx[i] = i;
        cm_po_sort(n, p, 2, NULL, 2, idx, scratch);
        for (size_t t = 1; t < n; t++) {
            const double *a = p + 2 * idx[t - 1], *b = p + 2 * idx[t];
            const int ok = a[0] < b[0] ||
                           (a[0] == b[0] && (a[1] < b[1] || (a[1] == b[1] && idx[t - 1] < idx[t])));
            bad += !ok;
        }
        free(p);
        free(idx);
        free(scratch);
    }
    CHECKF(bad == 0, "%d sort order violations", bad);

    const size_t fs[] = {1, 63, 64, 65, 4096, 4097, 300000};
    bad = 0;
    for (size_t si = 0; si < sizeof fs / sizeof *fs; si++) {
        const size_t n = fs[si];
        uint64_t *words = xmalloc(cm_po_fset_words(n) * sizeof *words);
        unsigned char *naive = calloc(n, 1);
        cm_po_fset s;
        cm_po_fset_init(&s, n, words);
        for (int op = 0; op < 20000; op++) {
            const size_t i = rng_int(&r, n);
            if (rng_int(&r, 3)) {
                cm_po_fset_insert(&s, i);
                naive[i] = 1;
            } else {
                cm_po_fset_erase(&s, i);
                naive[i] = 0;
            }
            const size_t q = rng_int(&r, n);
            size_t nx = q, pv = q;
            while (nx < n && !naive[nx]) nx++;
            while (pv != CM_PO_NONE && !naive[pv]) pv--;
            if (nx >= n) nx = CM_PO_NONE;
            bad += cm_po_fset_next(&s, q) != nx;
            bad += cm_po_fset_prev(&s, q) != pv;
        }
        free(words);
        free(naive);
    }
    CHECKF(bad == 0, "%d bitmap tree answers differ", bad);
}

/* ------------------------------------------------------------------------ 7. threads */
static void test_threads(void)
{
    rng_t r = {13};
    const size_t n = 300, m = 4, nr = 500;
    double *p = xmalloc(n * m * sizeof *p), *R = xmalloc(nr * m * sizeof *R);
    sphere_front(&r, n, m, p);
    sphere_front(&r, nr, m, R);
    for (size_t i = 0; i < 60; i++) p[i * m] += 0.05; /* some dominated points */
    const double ref[4] = {1.1, 1.1, 1.1, 1.1};
    double hv_[3], igd_[3], igdp_[3], sp_[3];
    double *c_[3];
    unsigned char *nd_[3];
    const int threads[3] = {1, 2, 0};
    for (int t = 0; t < 3; t++) {
        cm_exec_config e = exec_with(threads[t], 0, 0);
        cm_pareto_config c = config(CM_PARETO_AUTO, 0, 0);
        c_[t] = xmalloc(n * sizeof(double));
        nd_[t] = xmalloc(n);
        CHECK_INT_EQ(cm_hypervolume_f64(&c, &e, n, m, p, ref, &hv_[t]), CM_OK);
        CHECK_INT_EQ(cm_hv_contributions_f64(&c, &e, n, m, p, ref, c_[t]), CM_OK);
        CHECK_INT_EQ(cm_nondominated_f64(&c, &e, n, m, p, nd_[t]), CM_OK);
        CHECK_INT_EQ(cm_igd_f64(&e, n, m, p, nr, R, &igd_[t]), CM_OK);
        CHECK_INT_EQ(cm_igd_plus_f64(&e, n, m, p, nr, R, &igdp_[t]), CM_OK);
        CHECK_INT_EQ(cm_spacing_f64(&e, n, m, p, &sp_[t]), CM_OK);
    }
    for (int t = 1; t < 3; t++) {
        CHECK(hv_[t] == hv_[0]);
        CHECK(igd_[t] == igd_[0]);
        CHECK(igdp_[t] == igdp_[0]);
        CHECK(sp_[t] == sp_[0]);
        CHECK(memcmp(c_[t], c_[0], n * sizeof(double)) == 0);
        CHECK(memcmp(nd_[t], nd_[0], n) == 0);
    }
    /* contributions of the 4-D set: leave-one-out vs a direct hv difference */
    double full = hv_[0], without;
    double *rest = xmalloc(n * m * sizeof *rest);
    int bad = 0;
    for (size_t j = 0; j < n; j += 37) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
            if (i != j) memcpy(rest + m * c++, p + m * i, m * sizeof *p);
        without = hv(CM_PARETO_AUTO, n - 1, m, rest, ref);
        bad += fabs((full - without) - c_[0][j]) > 1e-12;
    }
    CHECKF(bad == 0, "%d 4-D contributions differ from hv(X) - hv(X \\ x)", bad);
    for (int t = 0; t < 3; t++) {
        free(c_[t]);
        free(nd_[t]);
    }
    free(rest);
    free(p);
    free(R);
}

/* ------------------------------------------------------------------------ 8. errors */
static void test_errors(void)
{
    const double p[] = {1, 2, 3, 4};
    const double ref[] = {5, 5};
    const double bad_p[] = {1, NAN, 3, 4};
    const double bad_r[] = {5, INFINITY};
    double v = 42.0, out[2] = {42.0, 42.0};
    unsigned char mask[2] = {7, 7};
    int64_t rk[2] = {7, 7};
    cm_pareto_config c = config(CM_PARETO_AUTO, 0, 1), cb = config(7, 0, 1);

    CHECK_INT_EQ(cm_hypervolume_f64(&c, NULL, 2, 2, NULL, ref, &v), CM_ERR_NULL);
    CHECK_INT_EQ(cm_hypervolume_f64(&c, NULL, 2, 2, p, NULL, &v), CM_ERR_NULL);
    CHECK_INT_EQ(cm_hypervolume_f64(&c, NULL, 2, 2, p, ref, NULL), CM_ERR_NULL);
    CHECK_INT_EQ(cm_hypervolume_f64(&c, NULL, 2, 0, p, ref, &v), CM_ERR_SIZE);
    CHECK_INT_EQ(cm_hypervolume_f64(&c, NULL, (size_t)-1 / 4, 2, p, ref, &v), CM_ERR_SIZE);
    CHECK_INT_EQ(cm_hypervolume_f64(&c, NULL, 2, 2, bad_p, ref, &v), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_hypervolume_f64(&c, NULL, 2, 2, p, bad_r, &v), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_hypervolume_f64(&cb, NULL, 2, 2, p, ref, &v), CM_ERR_HYPER);
    CHECK(v == 42.0);
    CHECK_INT_EQ(cm_hypervolume_f64(NULL, NULL, 2, 2, p, ref, &v), CM_OK); /* NULL cfg */
    CHECK(v == 4.0 * 3.0);
    v = 42.0;

    CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 2, 2, p, ref, NULL), CM_ERR_NULL);
    CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 2, 2, bad_p, ref, out), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_hv_contributions_f64(&cb, NULL, 2, 2, p, ref, out), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 2, 0, p, ref, out), CM_ERR_SIZE);
    CHECK(out[0] == 42.0 && out[1] == 42.0);

    CHECK_INT_EQ(cm_nondominated_f64(&c, NULL, 2, 2, NULL, mask), CM_ERR_NULL);
    CHECK_INT_EQ(cm_nondominated_f64(&c, NULL, 2, 2, bad_p, mask), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_nondominated_f64(&cb, NULL, 2, 2, p, mask), CM_ERR_HYPER);
    CHECK(mask[0] == 7 && mask[1] == 7);
    CHECK_INT_EQ(cm_pareto_rank_f64(&c, NULL, 2, 2, p, NULL), CM_ERR_NULL);
    CHECK_INT_EQ(cm_pareto_rank_f64(&c, NULL, 2, 2, bad_p, rk), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_pareto_rank_f64(&c, NULL, 2, 0, p, rk), CM_ERR_SIZE);
    CHECK(rk[0] == 7 && rk[1] == 7);

    CHECK_INT_EQ(cm_igd_f64(NULL, 2, 2, p, 0, ref, &v), CM_ERR_SIZE);
    CHECK_INT_EQ(cm_igd_f64(NULL, 2, 2, p, 1, NULL, &v), CM_ERR_NULL);
    CHECK_INT_EQ(cm_igd_plus_f64(NULL, 2, 2, p, 1, bad_r, &v), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_spacing_f64(NULL, 1, 2, p, &v), CM_ERR_SIZE);
    CHECK_INT_EQ(cm_spacing_f64(NULL, 2, 2, bad_p, &v), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_spread_f64(2, 3, p, 0, NULL, &v), CM_ERR_SIZE);
    CHECK_INT_EQ(cm_spread_f64(1, 2, p, 0, NULL, &v), CM_ERR_SIZE);
    CHECK_INT_EQ(cm_spread_f64(2, 2, p, 1, NULL, &v), CM_ERR_NULL);
    CHECK_INT_EQ(cm_spread_f64(2, 2, p, 1, bad_r, &v), CM_ERR_HYPER);
    CHECK(v == 42.0);
    CHECK(strcmp(cm_strerror(CM_ERR_HYPER), cm_strerror(CM_ERR_SIZE)) != 0);

    /* n == 0 is fine */
    CHECK_INT_EQ(cm_nondominated_f64(&c, NULL, 0, 2, p, mask), CM_OK);
    CHECK_INT_EQ(cm_pareto_rank_f64(&c, NULL, 0, 2, p, rk), CM_OK);
    CHECK_INT_EQ(cm_hv_contributions_f64(&c, NULL, 0, 2, p, ref, out), CM_OK);
    CHECK(mask[0] == 7 && rk[0] == 7 && out[0] == 42.0);
}

/* ------------------------------------------------------------------------ 4b. WFG prefilter */
/* m = 5, 6 (WFG over the 4-D sweep, whose slices first drop the limited points weakly dominated
 * by one above p in a single coordinate): sets rich in such points -- copies of a point moved in
 * one coordinate, ties on a coarse grid, exact duplicates, points on or beyond the reference --
 * against WFG down to 2-D, and n = 0, 1, 2. */
static void test_hv_prefilter(void)
{
    rng_t r = {11};
    const size_t cap = 240;
    double *p = xmalloc(cap * 6 * sizeof *p);
    const double ref[6] = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
    int bad = 0;
    for (size_t m = 5; m <= 6; m++) {
        for (int rep = 0; rep < 24; rep++) {
            const size_t n = rep < 3 ? (size_t)rep : 20 + rng_int(&r, m == 5 ? 200 : 60);
            const size_t base = n / 4 + 1;
            for (size_t i = 0; i < n; i++) {
                double *x = p + i * m;
                if (i < base || rep % 3 == 0) {
                    if (rep % 2) sphere_front(&r, 1, m, x);
                    else
                        for (size_t k = 0; k < m; k++) x[k] = 0.125 * (double)rng_int(&r, 8);
                } else {
                    memcpy(x, p + rng_int(&r, base) * m, m * sizeof *x);
                    const size_t k = rng_int(&r, m), kind = rng_int(&r, 6);
                    if (kind == 0) continue; /* a duplicate */
                    if (kind == 1) x[k] = 1.0; /* on the reference: excluded */
                    else if (kind == 2) x[k] = 0.125 * (double)rng_int(&r, 8);
                    else x[k] += (rep % 2 ? 0.3 : 0.25) * rng_unif(&r) - 0.05;
                    if (kind == 5) x[rng_int(&r, m)] -= 0.0625;
                }
            }
            const double a = hv(CM_PARETO_AUTO, n, m, p, ref);
            const double b = hv(CM_PARETO_GENERIC, n, m, p, ref);
            if (!close_rel(a, b, 1e-12) && !bad++)
                printf("     prefilter m=%zu rep %d n=%zu: %.17g vs %.17g\n", m, rep, n, a, b);
            if (n == 0) CHECK(a == 0.0);
        }
    }
    CHECKF(bad == 0, "%d prefiltered WFG hypervolumes differ from WFG to 2-D", bad);
    free(p);
}

/* ------------------------------------------------------------------------ 4c. 4-D sweep */
/* The 4-D sweep (HV4D+; also the base case of WFG for m >= 5) against an exact cell count on
 * tie-heavy integer grids (every coordinate shared by many points, duplicates, points on the
 * reference), and against WFG down to 2-D on those grids, on random points, on fronts and on
 * fronts whose coordinates are rounded to a few levels (ties inside a front), m = 4 and 5,
 * n = 0, 1, 2 included. Integer inputs give exact sums, so the grid values must match exactly. */
static void fill_hv4_case(rng_t *r, int kind, size_t n, size_t m, size_t g, double *p)
{
    if (kind == 0) {
        grid_points(r, n, m, g, p);
    } else if (kind == 1) { /* ties in one coordinate only, the others distinct */
        const size_t c = rng_int(r, m);
        for (size_t i = 0; i < n * m; i++) p[i] = (double)g * rng_unif(r);
        for (size_t i = 0; i < n; i++) p[i * m + c] = (double)rng_int(r, 3);
    } else if (kind == 2) {
        for (size_t i = 0; i < n * m; i++) p[i] = rng_unif(r);
    } else { /* a front, rounded to g levels when kind == 4 */
        sphere_front(r, n, m, p);
        if (kind == 4)
            for (size_t i = 0; i < n * m; i++) p[i] = floor(p[i] * (double)g) / (double)g;
    }
}

static void test_hv4d_sweep(void)
{
    rng_t r = {23};
    const size_t cap = 300;
    double *p = xmalloc(cap * 5 * sizeof *p);
    int bad_exact = 0, bad_wfg = 0;
    for (size_t m = 4; m <= 5; m++) {
        for (int rep = 0; rep < 60; rep++) {
            const int kind = rep % 5;
            const size_t g = 2 + rng_int(&r, m == 4 ? 6 : 4);
            const size_t n = rep < 15 ? (size_t)rep % 3 : 3 + rng_int(&r, m == 4 ? cap - 3 : 80);
            fill_hv4_case(&r, kind, n, m, g, p);
            double ref[5];
            for (size_t k = 0; k < m; k++) ref[k] = kind == 0 || kind == 1 ? (double)g : 1.0;
            const double a = hv(CM_PARETO_AUTO, n, m, p, ref);
            const double b = hv(CM_PARETO_GENERIC, n, m, p, ref);
            if (!close_rel(a, b, 1e-12) && !bad_wfg++)
                printf("     4-D sweep m=%zu rep %d n=%zu: %.17g vs %.17g\n", m, rep, n, a, b);
            if (kind == 0) {
                const double want = grid_count(n, m, p, g, NULL, NULL);
                if (a != want && !bad_exact++)
                    printf("     4-D sweep grid m=%zu g=%zu n=%zu: %.17g vs %.17g\n", m, g, n,
                           a, want);
            }
            if (n == 0) CHECK(a == 0.0);
        }
    }
    CHECKF(bad_exact == 0, "%d 4-D sweep grid hypervolumes differ from the cell count", bad_exact);
    CHECKF(bad_wfg == 0, "%d 4-D sweep hypervolumes differ from WFG to 2-D", bad_wfg);
    free(p);
}

/* ------------------------------------------------------------------------ 4d. 5-D top level */
/* m = 5 (WFG's top level keeps the front itself, in the order of the 5th coordinate with ties
 * broken by the first four, and scans each slice branch-free in blocks): unfiltered sets where
 * most points are dominated, dominators sharing the dominated point's 5th coordinate (or all
 * five but one), duplicates, a whole set tied in the 5th coordinate, sizes around the block
 * lengths (n = 1 .. 40 every size, then larger), against an exact cell count on integer grids and
 * against WFG down to 2-D, one thread and four. */
static void test_hv5d_top(void)
{
    rng_t r = {37};
    const size_t cap = 400, m = 5;
    double *p = xmalloc(cap * m * sizeof *p);
    int bad_exact = 0, bad_wfg = 0, bad_thr = 0;
    for (int rep = 0; rep < 90; rep++) {
        const size_t n = rep < 40 ? (size_t)rep + 1 : 41 + rng_int(&r, cap - 41);
        const size_t g = 2 + rng_int(&r, 4);
        const int kind = rep % 3;
        grid_points(&r, n, m, g, p);
        for (size_t i = 1; i < n; i++) {
            double *x = p + i * m;
            const double *y = p + rng_int(&r, i) * m;
            if (kind == 1 && rng_int(&r, 2)) { /* a copy of an earlier point, pushed up */
                memcpy(x, y, m * sizeof *x);
                const size_t k = rng_int(&r, 4); /* never the 5th */
                if (x[k] + 1.0 < (double)g) x[k] += 1.0;
            } else if (kind == 2) { /* the whole set on one level of the 5th coordinate */
                x[4] = 1.0;
            }
        }
        if (kind == 2) p[4] = 1.0;
        double ref[5];
        for (size_t k = 0; k < m; k++) ref[k] = (double)g;
        const double a = hv(CM_PARETO_AUTO, n, m, p, ref);
        const double b = hv(CM_PARETO_GENERIC, n, m, p, ref);
        const double want = grid_count(n, m, p, g, NULL, NULL);
        if (a != want && !bad_exact++)
            printf("     5-D grid rep %d g=%zu n=%zu: %.17g vs %.17g\n", rep, g, n, a, want);
        if (!close_rel(a, b, 1e-12) && !bad_wfg++)
            printf("     5-D rep %d n=%zu: %.17g vs generic %.17g\n", rep, n, a, b);
        cm_pareto_config c;
        cm_pareto_config_default(&c);
        cm_exec_config e;
        cm_exec_config_default(&e);
        e.n_threads = 4;
        e.min_parallel_size = 1;
        double v4 = -1.0;
        CHECK_INT_EQ(cm_hypervolume_f64(&c, &e, n, m, p, ref, &v4), CM_OK);
        if (v4 != a && !bad_thr++)
            printf("     5-D rep %d n=%zu: 4 threads %.17g vs %.17g\n", rep, n, v4, a);
    }
    /* real fronts with dominated copies: against WFG to 2-D */
    for (int rep = 0; rep < 12; rep++) {
        const size_t n = 50 + rng_int(&r, 250);
        sphere_front(&r, n, m, p);
        for (size_t i = n / 2; i < n; i++) {
            memcpy(p + i * m, p + rng_int(&r, n / 2) * m, m * sizeof *p);
            if (rng_int(&r, 3)) p[i * m + rng_int(&r, m)] += 0.01 + 0.2 * rng_unif(&r);
        }
        const double ref[5] = {1.1, 1.1, 1.1, 1.1, 1.1};
        const double a = hv(CM_PARETO_AUTO, n, m, p, ref);
        const double b = hv(CM_PARETO_GENERIC, n, m, p, ref);
        if (!close_rel(a, b, 1e-12) && !bad_wfg++)
            printf("     5-D front rep %d n=%zu: %.17g vs generic %.17g\n", rep, n, a, b);
    }
    CHECKF(bad_exact == 0, "%d 5-D grid hypervolumes differ from the cell count", bad_exact);
    CHECKF(bad_wfg == 0, "%d 5-D hypervolumes differ from WFG to 2-D", bad_wfg);
    CHECKF(bad_thr == 0, "%d 5-D hypervolumes differ between 1 and 4 threads", bad_thr);
    free(p);
}

/* ------------------------------------------------------------------------ 4e. 5-D live rows */
/* m = 5 again, for what the top level does with the rows that a later row (in the 5th
 * coordinate) dominates in the first four: it notes when they die, leaves them out of every
 * later slice, hands the rows above p in the 4th coordinate to the 4-D sweep in the order of a
 * bitmap over their ranks, and measures p's exclusive region with the prefilter's cuts as the
 * reference point. Sets where each new row dominates many live ones in the first four (so that
 * holes pile up and are squeezed out), with copies of a row in the first four coordinates at a
 * lower, equal or higher 5th, sizes around the bitmap's 64-bit words; against an exact cell
 * count on integer grids, against WFG down to 2-D, one thread against three. */
/* n rows in [0, 1.1)^5, the later ones (in the 5th coordinate) smaller in the first four; g > 0:
 * scaled to g and rounded down to integers */
static void shrinking_rows(rng_t *r, size_t n, size_t g, double *p)
{
    for (size_t i = 0; i < n; i++) {
        double *x = p + i * 5;
        const double s = 1.0 - 0.8 * (double)i / (double)n;
        for (size_t k = 0; k < 4; k++) x[k] = s * (0.5 + 0.5 * rng_unif(r));
        x[4] = (double)i / (double)n;
        if (i > 0 && rng_int(r, 6) == 0) { /* a copy in the first four of an earlier row */
            const double *y = p + rng_int(r, i) * 5;
            memcpy(x, y, 4 * sizeof *x);
            const size_t kind = rng_int(r, 3);
            x[4] = kind == 0 ? y[4] : kind == 1 ? 0.5 * y[4] : y[4] + 0.05;
        }
    }
    if (g)
        for (size_t i = 0; i < n * 5; i++) p[i] = floor(p[i] * (double)g);
}

static void test_hv5d_live(void)
{
    rng_t r = {41};
    const size_t sizes[] = {9, 63, 64, 65, 127, 128, 129, 200, 400};
    const size_t m = 5;
    double *p = xmalloc(400 * m * sizeof *p);
    int bad_exact = 0, bad_wfg = 0, bad_thr = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        for (int rep = 0; rep < 4; rep++) {
            const size_t n = sizes[si], g = rep % 2 ? 4 + rng_int(&r, 3) : 0;
            shrinking_rows(&r, n, g, p);
            double ref[5];
            for (size_t k = 0; k < m; k++) ref[k] = g ? (double)g : 1.1;
            const double a = hv(CM_PARETO_AUTO, n, m, p, ref);
            if (g) {
                const double want = grid_count(n, m, p, g, NULL, NULL);
                if (a != want && !bad_exact++)
                    printf("     5-D live grid n=%zu g=%zu: %.17g vs %.17g\n", n, g, a, want);
            }
            const double b = hv(CM_PARETO_GENERIC, n, m, p, ref);
            if (!close_rel(a, b, 1e-12) && !bad_wfg++)
                printf("     5-D live n=%zu rep %d: %.17g vs generic %.17g\n", n, rep, a, b);
            cm_pareto_config c;
            cm_pareto_config_default(&c);
            cm_exec_config e = exec_with(3, 1, 0);
            double v3 = -1.0;
            CHECK_INT_EQ(cm_hypervolume_f64(&c, &e, n, m, p, ref, &v3), CM_OK);
            if (v3 != a && !bad_thr++)
                printf("     5-D live n=%zu rep %d: 3 threads %.17g vs %.17g\n", n, rep, v3, a);
        }
    }
    CHECKF(bad_exact == 0, "%d 5-D live-row hypervolumes differ from the cell count", bad_exact);
    CHECKF(bad_wfg == 0, "%d 5-D live-row hypervolumes differ from WFG to 2-D", bad_wfg);
    CHECKF(bad_thr == 0, "%d 5-D live-row hypervolumes differ between 1 and 3 threads", bad_thr);

    /* The cuts as reference point keep the subtraction in each slice to the size of p's
     * exclusive box: 4-D linear fronts lifted to one level of the 5th coordinate, with the
     * reference point far (100) from them, equal the 4-D sweep's value times the depth to
     * 3e-15 (1.2e-15 measured; with ref as the reference point of every slice, 5.9e-15). */
    const size_t nf = 100;
    double *q = xmalloc(nf * 4 * sizeof *q), worst = 0.0;
    const double far[5] = {100.0, 100.0, 100.0, 100.0, 100.0};
    for (int rep = 0; rep < 30; rep++) {
        for (size_t i = 0; i < nf; i++) {
            double sum = 0.0;
            for (size_t k = 0; k < 4; k++) {
                q[i * 4 + k] = -log(rng_unif(&r) + 1e-300);
                sum += q[i * 4 + k];
            }
            for (size_t k = 0; k < 4; k++) {
                q[i * 4 + k] /= sum;
                p[i * 5 + k] = q[i * 4 + k];
            }
            p[i * 5 + 4] = 0.5;
        }
        const double a = hv(CM_PARETO_AUTO, nf, 5, p, far);
        const double b = 99.5 * hv(CM_PARETO_AUTO, nf, 4, q, far);
        worst = fmax(worst, fabs(a - b) / b);
    }
    CHECKF(worst <= 3e-15, "5-D lifted 4-D fronts, far reference: rel. error %.2e", worst);
    free(q);
    free(p);
}

int main(void)
{
    test_defaults_and_strerror();
    test_hv_exact();
    test_contrib_exact();
    test_nd_rank_exact();
    test_distances_exact();
    test_grid();
    test_inclusion_exclusion();
    test_large();
    test_hv_prefilter();
    test_hv4d_sweep();
    test_hv5d_top();
    test_hv5d_live();
    test_nd_rank_random();
    test_sort_and_fset();
    test_threads();
    test_errors();
    return th_summary();
}
