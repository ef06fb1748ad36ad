/* test_qp.c -- the inner solvers of cmadam_qp.h against closed forms and against the KKT
 * conditions checked here from the unscaled problem (for a convex QP they certify optimality),
 * plus their error statuses. The NumPy reference (madam/_inner.py) and scipy check them again
 * from Python (tests/test_solvers_inner.py). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "cmadam_qp.h"
#include "harness.h"

#define MAXK 40

/* Q = J J^T for k random rows of n columns (n < k: singular), rows scaled by e^U(-1.5, 1.5);
 * with dup, row 1 repeats row 0 (an exactly rank-deficient Q). */
static void random_gram(rng_t *r, size_t k, size_t n, int dup, double *q)
{
    static double jac[MAXK * (2 * MAXK + 3)];
    for (size_t i = 0; i < k; i++) {
        const double s = exp(3.0 * rng_unif(r) - 1.5);
        for (size_t j = 0; j < n; j++) {
            /* a sum of uniforms: roughly normal, enough for a generic Gramian */
            const double u = rng_unif(r) + rng_unif(r) + rng_unif(r) - 1.5;
            jac[i * n + j] = (dup && i == 1) ? jac[j] : s * u;
        }
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) {
            double s = 0.0;
            for (size_t p = 0; p < n; p++) s += jac[i * n + p] * jac[j * n + p];
            q[i * k + j] = s;
        }
}

/* The KKT residual of the unscaled problem, relative to max(max|Q|, max|c|): simplex: x >= 0,
 * sum x = 1, g_i >= theta everywhere and g_i = theta on the support (theta = min g); orthant:
 * x >= 0, g >= 0, g_i = 0 on the support. */
static double kkt_residual(size_t k, const double *q, const double *c, const double *x, int simplex)
{
    double scale = 0.0, g[MAXK], theta = INFINITY, total = 0.0, worst = 0.0;
    for (size_t i = 0; i < k * k; i++) scale = fmax(scale, fabs(q[i]));
    for (size_t i = 0; i < k; i++) scale = fmax(scale, fabs(c[i]));
    for (size_t i = 0; i < k; i++) {
        double s = c[i];
        for (size_t j = 0; j < k; j++) s += q[i * k + j] * x[j];
        g[i] = s;
        theta = fmin(theta, s);
        total += x[i];
        worst = fmax(worst, -x[i]);
    }
    if (!simplex) theta = 0.0;
    for (size_t i = 0; i < k; i++) {
        worst = fmax(worst, theta - g[i]);
        if (x[i] > 0.0) worst = fmax(worst, fabs(g[i] - theta));
    }
    if (simplex) worst = fmax(worst, fabs(total - 1.0));
    return scale > 0.0 ? worst / scale : worst;
}

static void test_closed_forms(void)
{
    cm_qp_config cfg;
    cm_qp_config_default(&cfg);
    CHECK(cfg.tol == 1e-12 && cfg.max_iter == 0 && cfg.simplex == 1);
    cm_fw_config fw;
    cm_fw_config_default(&fw);
    CHECK(fw.tol == 1e-13 && fw.max_iter == 20000);
    double work[2 * 4 * 4 + 11 * 4];
    CHECK_INT_EQ(cm_qp_work_size(4), 2 * 16 + 11 * 4);
    CHECK_INT_EQ(cm_qp_work_size(0), 0);
    CHECK_INT_EQ(cm_qp_work_size(65537), 0);
    cm_qp_result res;

    /* orthant, Q = diag(d): x_i = max(-c_i / d_i, 0) */
    const double qd[16] = {2, 0, 0, 0, 0, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 8};
    const double cd[4] = {-1.0, 2.0, -3.0, -0.5};
    double x[4] = {0, 0, 0, 0};
    cfg.simplex = 0;
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 4, qd, cd, x, work, &res), CM_OK);
    CHECKF(fabs(x[0] - 0.5) < 1e-15 && x[1] == 0.0 && fabs(x[2] - 3.0) < 1e-15 &&
               fabs(x[3] - 0.0625) < 1e-15,
           "orthant diag: %g %g %g %g", x[0], x[1], x[2], x[3]);
    CHECK(res.converged && res.kkt < 1e-15 && res.iterations >= 1);

    /* simplex, two points: gamma = (G22 - G12) / (G11 + G22 - 2 G12) */
    const double g2[4] = {4.0, 1.0, 1.0, 2.0};
    double x2[2] = {0.5, 0.5};
    cfg.simplex = 1;
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, g2, NULL, x2, work, &res), CM_OK);
    CHECKF(fabs(x2[0] - 0.25) < 1e-15 && fabs(x2[1] - 0.75) < 1e-15, "two points %g %g",
           x2[0], x2[1]);
    double y2[2] = {0.5, 0.5};
    cm_fw_result fres;
    CHECK_INT_EQ(cm_min_norm_fw(&fw, 2, g2, y2, work, &fres), CM_OK);
    CHECK(fres.converged && fabs(y2[0] - 0.25) < 1e-6 && fres.gap <= 1e-13);

    /* identical points: the barycentre stays (a singular face, solved by the pseudo-inverse) */
    const double same[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    double x3[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3};
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 3, same, NULL, x3, work, &res), CM_OK);
    CHECK(x3[0] == x3[1] && x3[1] == x3[2] && res.converged);

    /* a start off the feasible set is made feasible: all zero on the simplex is the barycentre */
    double x4[2] = {-1.0, 0.0};
    cfg.max_iter = 1;
    const double eye[4] = {1, 0, 0, 1};
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, eye, NULL, x4, work, &res), CM_OK);
    CHECK(x4[0] == 0.5 && x4[1] == 0.5 && res.iterations == 1);
}

static void test_random_kkt(void)
{
    rng_t r = {12345};
    static double q[MAXK * MAXK], work[2 * MAXK * MAXK + 11 * MAXK];
    double c[MAXK], x[MAXK], y[MAXK], u[MAXK];
    cm_qp_config cfg;
    cm_qp_config_default(&cfg);
    cm_fw_config fw;
    cm_fw_config_default(&fw);
    double worst[2] = {0.0, 0.0};
    int bad = 0;
    for (int trial = 0; trial < 400; trial++) {
        const size_t k = 1 + (size_t)(rng_u64(&r) % MAXK);
        const size_t n = 1 + (size_t)(rng_u64(&r) % (2 * k + 2));
        random_gram(&r, k, n, trial % 5 == 0 && k > 2, q);
        const int simplex = trial % 2;
        /* c in the range of Q (bounded below on every face), or 0 */
        for (size_t i = 0; i < k; i++) u[i] = rng_unif(&r) - (simplex ? 0.5 : 1.0);
        for (size_t i = 0; i < k; i++) {
            double s = 0.0;
            for (size_t j = 0; j < k; j++) s += q[i * k + j] * u[j];
            c[i] = trial % 3 == 0 ? 0.0 : s;
        }
        for (size_t i = 0; i < k; i++) x[i] = simplex ? 1.0 / (double)k : 0.0;
        cm_qp_result res;
        cfg.simplex = simplex;
        CHECK_INT_EQ(cm_qp_active_set(&cfg, k, q, c, x, work, &res), CM_OK);
        const double kkt = kkt_residual(k, q, c, x, simplex);
        worst[simplex] = fmax(worst[simplex], kkt);
        if (!res.converged || kkt > 1e-10 || res.kkt > 1e-10) {
            bad++;
            printf("trial %d k %zu n %zu simplex %d: converged %d kkt %g (reported %g)\n",
                   trial, k, n, simplex, res.converged, kkt, res.kkt);
        }
        if (simplex && trial % 3 == 0) {
            /* Frank-Wolfe on the same min-norm problem: within its gap of the exact minimum */
            for (size_t i = 0; i < k; i++) y[i] = 1.0 / (double)k;
            cm_fw_result fres;
            CHECK_INT_EQ(cm_min_norm_fw(&fw, k, q, y, work, &fres), CM_OK);
            double fx = 0.0, fy = 0.0, top = 0.0, total = 0.0;
            for (size_t i = 0; i < k; i++) {
                top = fmax(top, q[i * k + i]);
                total += y[i];
                for (size_t j = 0; j < k; j++) {
                    fx += x[i] * q[i * k + j] * x[j];
                    fy += y[i] * q[i * k + j] * y[j];
                }
            }
            /* (on a singular Q its linear rate can be slow: stopped by max_iter, the gap it
             * reports still bounds its error) */
            CHECKF(fy <= fx + 2.5 * fmax(fres.gap, 1e-14) * top + 1e-14 * top &&
                       (fres.converged || fres.iterations == fw.max_iter) &&
                       fabs(total - 1.0) < 1e-14,
                   "frank-wolfe trial %d (k %zu n %zu): %.17g vs %.17g (gap %g, %d, %lld)", trial,
                   k, n, fy, fx, fres.gap, fres.converged, (long long)fres.iterations);
        }
    }
    CHECKF(bad == 0, "%d of 400 random QPs off their KKT conditions (worst simplex %g, orthant %g)",
           bad, worst[1], worst[0]);
}

static void test_positive_definite(void)
{
    double work[16];
    int pd = -1;
    const double eye[4] = {1, 0, 0, 1}, ones[4] = {1, 1, 1, 1}, indef[4] = {1, 2, 2, 1};
    CHECK_INT_EQ(cm_positive_definite(2, eye, work, &pd), CM_OK);
    CHECK(pd == 1);
    CHECK_INT_EQ(cm_positive_definite(2, ones, work, &pd), CM_OK);
    CHECK(pd == 0);
    CHECK_INT_EQ(cm_positive_definite(2, indef, work, &pd), CM_OK);
    CHECK(pd == 0);
    /* only the lower part is read */
    const double lower[4] = {4, NAN, 2, 3};
    CHECK_INT_EQ(cm_positive_definite(2, lower, work, &pd), CM_OK);
    CHECK(pd == 1);
    rng_t r = {7};
    static double q[MAXK * MAXK], w[MAXK * MAXK];
    random_gram(&r, 12, 20, 0, q);
    CHECK_INT_EQ(cm_positive_definite(12, q, w, &pd), CM_OK);
    CHECK(pd == 1);
    random_gram(&r, 12, 8, 0, q); /* rank 8 */
    CHECK_INT_EQ(cm_positive_definite(12, q, w, &pd), CM_OK);
    CHECK(pd == 0);
}

static void test_status(void)
{
    cm_qp_config cfg;
    cm_qp_config_default(&cfg);
    cm_fw_config fw;
    cm_fw_config_default(&fw);
    const double q[4] = {2, 1, 1, 2}, c[2] = {0.5, -0.5};
    double x[2] = {0.3, 0.7}, work[64];
    const double keep[2] = {0.3, 0.7};
    cm_qp_result res = {-7, -7, -7.0};
    cm_fw_result fres = {-7, -7, -7.0};
    CHECK_INT_EQ(cm_qp_active_set(NULL, 2, q, c, x, work, &res), CM_ERR_NULL);
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, NULL, c, x, work, &res), CM_ERR_NULL);
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, q, c, NULL, work, &res), CM_ERR_NULL);
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, q, c, x, NULL, &res), CM_ERR_NULL);
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, q, c, x, work, NULL), CM_ERR_NULL);
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 0, q, c, x, work, &res), CM_ERR_SIZE);
    CHECK_INT_EQ(cm_min_norm_fw(&fw, 0, q, x, work, &fres), CM_ERR_SIZE);
    const double bad_tol[] = {-1.0, NAN, INFINITY};
    for (int i = 0; i < 3; i++) {
        cfg.tol = fw.tol = bad_tol[i];
        CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, q, c, x, work, &res), CM_ERR_HYPER);
        CHECK_INT_EQ(cm_min_norm_fw(&fw, 2, q, x, work, &fres), CM_ERR_HYPER);
    }
    cm_qp_config_default(&cfg);
    cm_fw_config_default(&fw);
    cfg.max_iter = fw.max_iter = -1;
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, q, c, x, work, &res), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_min_norm_fw(&fw, 2, q, x, work, &fres), CM_ERR_HYPER);
    cm_qp_config_default(&cfg);
    cm_fw_config_default(&fw);
    cfg.simplex = 2;
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, q, c, x, work, &res), CM_ERR_HYPER);
    cfg.simplex = 1;
    const double qnan[4] = {2, NAN, 1, 2}, cinf[2] = {INFINITY, 0};
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, qnan, c, x, work, &res), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, q, cinf, x, work, &res), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_min_norm_fw(&fw, 2, qnan, x, work, &fres), CM_ERR_HYPER);
    double xnan[2] = {NAN, 0.5};
    CHECK_INT_EQ(cm_qp_active_set(&cfg, 2, q, c, xnan, work, &res), CM_ERR_HYPER);
    CHECK(isnan(xnan[0]) && xnan[1] == 0.5);
    CHECK(memcmp(x, keep, sizeof keep) == 0);
    CHECK(res.iterations == -7 && res.converged == -7 && res.kkt == -7.0);
    CHECK(fres.iterations == -7 && fres.converged == -7 && fres.gap == -7.0);
    int pd = -7;
    CHECK_INT_EQ(cm_positive_definite(2, q, NULL, &pd), CM_ERR_NULL);
    CHECK_INT_EQ(cm_positive_definite(0, q, work, &pd), CM_ERR_SIZE);
    CHECK_INT_EQ(cm_positive_definite(2, qnan, work, &pd), CM_OK); /* NaN above the diagonal */
    const double lower_nan[4] = {2, 1, NAN, 2};
    pd = -7;
    CHECK_INT_EQ(cm_positive_definite(2, lower_nan, work, &pd), CM_ERR_HYPER);
    CHECK(pd == -7);
}

int main(void)
{
    test_closed_forms();
    test_random_kkt();
    test_positive_definite();
    test_status();
    return th_summary();
}
