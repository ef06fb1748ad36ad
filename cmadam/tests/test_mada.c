/* test_mada.c -- unit tests of MADA's kernels (cmadam_mada.h), through the public API only.
 *
 * Each test runs for float and double (the arrays are handled as bytes, the kernels picked by
 * type):
 *   1. the vertices are the standalone kernels bit for bit: (beta3, rho, c, gamma) = (0,1,1,1)
 *      cm_adam_step, rho = 0 its AVGrad variant, c = 0 cm_yogi_step (m, v started at 1e-6),
 *      gamma = 0 cm_lion_step with betas (0.931, 0.98) (no sign flip on this data);
 *   2. the two derivative modes (ring + recompute, in place + stored) give the same parameters
 *      and bit-identical dot products, with 6 and 7 stored arrays;
 *   3. the fused pass (cm_mada_step_fused) against cm_mada_hypergrad + cm_mada_step, bit for
 *      bit; the dot products against central finite differences of w . x_{t+1}(h) (double);
 *   4. 1 and 2 threads, the default, and the baseline (non-AVX2) build give the same bits
 *      above min_parallel_size;
 *   5. status codes, arrays untouched on error; n == 0; the config defaults; the hyper step's
 *      clipping, box, frozen rates and non-finite hypergradients.
 * The last line printed is "N passed, N failed".
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmadam_mada.h"
#include "harness.h"

/* ------------------------------------------------------------------------ helpers */
static rng_t rng_state = {12345};
static double unif(void) { return rng_unif(&rng_state); } /* splitmix64 (harness.h) */

/* Gradient-like values: magnitudes 1e-2 .. 1e1, every 97th exactly zero. */
static double grad_value(size_t i)
{
    static const double scale[4] = {1e-2, 1e-1, 1.0, 10.0};
    if (i % 97 == 0) return 0.0;
    return (2.0 * unif() - 1.0) * scale[(size_t)(unif() * 4.0) & 3];
}

static void *alloc_fill(int f32, size_t n, double value)
{
    void *p = xmalloc(n * (f32 ? sizeof(float) : sizeof(double)));
    for (size_t i = 0; i < n; i++) {
        if (f32) ((float *)p)[i] = (float)value;
        else ((double *)p)[i] = value;
    }
    return p;
}

static void set(int f32, void *p, size_t i, double value)
{
    if (f32) ((float *)p)[i] = (float)value;
    else ((double *)p)[i] = value;
}

static double get(int f32, const void *p, size_t i)
{
    return f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static size_t esize(int f32) { return f32 ? sizeof(float) : sizeof(double); }

static int step(int f32, const cm_mada_config *cfg, const cm_exec_config *ex, int64_t t, size_t n,
                void *p, const void *g, void *m, const void *vin, void *vout, void *vbar,
                void *nb, void *ml, const void *gpin, void *gpout, void *d, int nd)
{
    return f32 ? cm_mada_step_f32(cfg, ex, t, n, p, g, m, vin, vout, vbar, nb, ml, gpin, gpout,
                                  d, nd)
               : cm_mada_step_f64(cfg, ex, t, n, p, g, m, vin, vout, vbar, nb, ml, gpin, gpout,
                                  d, nd);
}

static int hyper(int f32, const cm_mada_config *cfg, const cm_exec_config *ex, int64_t t,
                 size_t n, const void *g, const void *m, const void *v, const void *vp,
                 const void *vbar, const void *nb, const void *ml, const void *gp,
                 const void *gp2, void *gcopy, double *dot)
{
    return f32 ? cm_mada_hypergrad_f32(cfg, ex, t, n, g, m, v, vp, vbar, nb, ml, gp, gp2, gcopy,
                                       dot)
               : cm_mada_hypergrad_f64(cfg, ex, t, n, g, m, v, vp, vbar, nb, ml, gp, gp2, gcopy,
                                       dot);
}

/* The state of one MADA run in the ring layout (two v and two g slots). */
typedef struct {
    int f32;
    size_t n;
    void *p, *m, *v[2], *vbar, *nb, *ml, *g[2];
} run_t;

static void run_init(run_t *r, int f32, size_t n, double v0)
{
    r->f32 = f32;
    r->n = n;
    r->p = alloc_fill(f32, n, 0.0);
    for (size_t i = 0; i < n; i++) set(f32, r->p, i, 2.0 * unif() - 1.0);
    r->m = alloc_fill(f32, n, 0.0);
    r->v[0] = alloc_fill(f32, n, v0);
    r->v[1] = alloc_fill(f32, n, v0);
    r->vbar = alloc_fill(f32, n, v0);
    r->nb = alloc_fill(f32, n, 0.0);
    r->ml = alloc_fill(f32, n, 0.0);
    r->g[0] = alloc_fill(f32, n, 0.0);
    r->g[1] = alloc_fill(f32, n, 0.0);
}

static void run_free(run_t *r)
{
    free(r->p);
    free(r->m);
    free(r->v[0]);
    free(r->v[1]);
    free(r->vbar);
    free(r->nb);
    free(r->ml);
    free(r->g[0]);
    free(r->g[1]);
}

/* Update of step t in the ring layout. */
static int run_step(run_t *r, const cm_mada_config *cfg, const cm_exec_config *ex, int64_t t,
                    const void *g, int write_g)
{
    const int a = (int)((t + 1) % 2), b = (int)(t % 2); /* (t - 1) mod 2, t >= 0 */
    return step(r->f32, cfg, ex, t, r->n, r->p, g, r->m, r->v[a], r->v[b], r->vbar, r->nb, r->ml,
                r->g[a], write_g ? r->g[b] : NULL, NULL, 0);
}

/* dot of step t (made with cfg) from the gradient g_{t+1}; copies g into its slot. */
static int run_hyper(run_t *r, const cm_mada_config *cfg, const cm_exec_config *ex, int64_t t,
                     const void *g, double *dot)
{
    const int cur = (int)(t % 2), prev = (int)((t + 1) % 2);
    return hyper(r->f32, cfg, ex, t, r->n, g, r->m, r->v[cur], r->v[prev], r->vbar, r->nb, r->ml,
                 r->g[cur], r->g[prev], r->g[prev], dot);
}

static void **grads_make(int f32, size_t n, int steps)
{
    void **gs = xmalloc((size_t)steps * sizeof(void *));
    if (!gs) exit(2);
    for (int s = 0; s < steps; s++) {
        gs[s] = alloc_fill(f32, n, 0.0);
        for (size_t i = 0; i < n; i++) set(f32, gs[s], i, grad_value(i));
    }
    return gs;
}

static void grads_free(void **gs, int steps)
{
    for (int s = 0; s < steps; s++) free(gs[s]);
    free(gs);
}

/* ------------------------------------------------------------------------ 1. vertices */
static void test_vertices(int f32)
{
    enum { N = 1000, STEPS = 40 };
    const char *names[4] = {"adam", "avgrad", "yogi", "lion"};
    void **gs = grads_make(f32, N, STEPS);
    for (int vert = 0; vert < 4; vert++) {
        cm_mada_config cfg;
        cm_mada_config_default(&cfg);
        cfg.lr = 1e-2;
        cfg.beta1 = 0.85;
        cfg.beta2 = 0.99;
        cfg.eps = 1e-7;
        if (vert == 1) cfg.rho = 0.0;
        if (vert == 2) cfg.c = 0.0;
        if (vert == 3) cfg.gamma = 0.0;
        const double acc = vert == 2 ? 1e-6 : 0.0;
        run_t r;
        run_init(&r, f32, N, acc);
        if (vert == 2)
            for (size_t i = 0; i < N; i++) set(f32, r.m, i, acc);
        void *p = xmalloc(N * esize(f32)), *m = alloc_fill(f32, N, acc), *v = alloc_fill(f32, N, acc);
        void *aux = alloc_fill(f32, N, 0.0);
        if (!p) exit(2);
        memcpy(p, r.p, N * esize(f32));
        int ok = 1;
        for (int s = 1; s <= STEPS; s++) {
            CHECK_INT_EQ(run_step(&r, &cfg, NULL, s, gs[s - 1], 1), CM_OK);
            int status;
            if (vert <= 1) {
                cm_adam_config a;
                cm_adam_config_default(&a);
                a.lr = cfg.lr, a.beta1 = cfg.beta1, a.beta2 = cfg.beta2, a.eps = cfg.eps;
                a.variant = vert == 0 ? CM_ADAM : CM_AVGRAD;
                status = f32 ? cm_adam_step_f32(&a, NULL, s, N, p, gs[s - 1], m, v, aux)
                             : cm_adam_step_f64(&a, NULL, s, N, p, gs[s - 1], m, v, aux);
            } else if (vert == 2) {
                cm_yogi_config y;
                cm_yogi_config_default(&y);
                y.lr = cfg.lr, y.beta1 = cfg.beta1, y.beta2 = cfg.beta2, y.eps = cfg.eps;
                status = f32 ? cm_yogi_step_f32(&y, NULL, s, N, p, gs[s - 1], m, v)
                             : cm_yogi_step_f64(&y, NULL, s, N, p, gs[s - 1], m, v);
            } else {
                cm_lion_config l;
                cm_lion_config_default(&l);
                l.lr = cfg.lr, l.beta1 = 0.931, l.beta2 = 0.98;
                status = f32 ? cm_lion_step_f32(&l, NULL, N, p, gs[s - 1], m)
                             : cm_lion_step_f64(&l, NULL, N, p, gs[s - 1], m);
            }
            CHECK_INT_EQ(status, CM_OK);
            ok = ok && memcmp(p, r.p, N * esize(f32)) == 0;
        }
        CHECKF(ok, "%s vertex (%s) differs from the standalone kernel", names[vert],
               f32 ? "f32" : "f64");
        CHECK(isfinite(get(f32, r.p, 1)));
        free(p);
        free(m);
        free(v);
        free(aux);
        run_free(&r);
    }
    grads_free(gs, STEPS);
}

/* An interior point of the polytope. */
static void interior(cm_mada_config *cfg)
{
    cm_mada_config_default(cfg);
    cfg->lr = 1e-2;
    cfg->beta1 = 0.8;
    cfg->beta2 = 0.95;
    cfg->beta3 = 0.4;
    cfg->rho = 0.6;
    cfg->c = 0.3;
    cfg->gamma = 0.7;
}

/* ------------------------------------------------------------------------ 2. the two modes */
static void test_modes(int f32)
{
    enum { N = 777, STEPS = 12 };
    void **gs = grads_make(f32, N, STEPS + 1);
    for (int nd = 6; nd <= 7; nd++) {
        cm_mada_config cfg;
        interior(&cfg);
        cfg.first_diff = nd == 7 ? CM_MADA_DIFF_GRAD : CM_MADA_DIFF_ZERO;
        cfg.n_init = nd == 7 ? CM_MADA_N_GRAD_SQ : CM_MADA_N_ZERO;
        run_t r, s;
        const rng_t seed = rng_state;
        run_init(&r, f32, N, 1e-15);
        rng_state = seed;
        run_init(&s, f32, N, 1e-15);
        void *derivs = alloc_fill(f32, (size_t)nd * N, 0.0);
        int same_p = 1, same_dot = 1, dot6_zero = 1;
        for (int t = 1; t <= STEPS; t++) {
            if (t > 1) {
                double d1[7], d2[7];
                CHECK_INT_EQ(run_hyper(&r, &cfg, NULL, t - 1, gs[t - 1], d1), CM_OK);
                CHECK_INT_EQ(f32 ? cm_mada_hypergrad_stored_f32(NULL, N, gs[t - 1], derivs, nd, d2)
                                 : cm_mada_hypergrad_stored_f64(NULL, N, gs[t - 1], derivs, nd,
                                                                d2),
                             CM_OK);
                same_dot = same_dot && memcmp(d1, d2, (size_t)nd * sizeof(double)) == 0;
                if (nd == 6) dot6_zero = dot6_zero && d2[6] == 0.0;
            }
            /* the ring copied g in the hypergradient pass from step 2 on */
            CHECK_INT_EQ(run_step(&r, &cfg, NULL, t, gs[t - 1], t == 1), CM_OK);
            CHECK_INT_EQ(step(f32, &cfg, NULL, t, N, s.p, gs[t - 1], s.m, s.v[0], s.v[0], s.vbar,
                              s.nb, s.ml, s.g[0], s.g[0], derivs, nd),
                         CM_OK);
            same_p = same_p && memcmp(r.p, s.p, N * esize(f32)) == 0;
        }
        CHECKF(same_p, "ring and in-place parameters differ (nd %d)", nd);
        CHECKF(same_dot, "recomputed and stored dot products differ (nd %d)", nd);
        CHECK(dot6_zero);
        free(derivs);
        run_free(&r);
        run_free(&s);
    }
    grads_free(gs, STEPS + 1);
}

/* The fused pass (hyper_delay) is cm_mada_hypergrad then cm_mada_step, bit for bit. */
static void test_fused(int f32)
{
    enum { N = 1001, STEPS = 9 };
    void **gs = grads_make(f32, N, STEPS);
    for (int quirk = 0; quirk <= 1; quirk++) {
        cm_mada_config cfg[STEPS + 1];
        for (int t = 0; t <= STEPS; t++) { /* coefficients that change every step */
            interior(&cfg[t]);
            cfg[t].beta3 = 0.1 + 0.05 * t;
            cfg[t].rho = 0.9 - 0.05 * t;
            cfg[t].first_diff = quirk ? CM_MADA_DIFF_GRAD : CM_MADA_DIFF_ZERO;
        }
        run_t a, b;
        const rng_t seed = rng_state;
        run_init(&a, f32, N, 1e-15);
        rng_state = seed;
        run_init(&b, f32, N, 1e-15);
        int same_p = 1, same_dot = 1;
        for (int t = 1; t <= STEPS; t++) {
            if (t == 1) {
                CHECK_INT_EQ(run_step(&a, &cfg[1], NULL, 1, gs[0], 1), CM_OK);
                CHECK_INT_EQ(run_step(&b, &cfg[1], NULL, 1, gs[0], 1), CM_OK);
                continue;
            }
            double d1[7], d2[7];
            CHECK_INT_EQ(run_hyper(&a, &cfg[t - 1], NULL, t - 1, gs[t - 1], d1), CM_OK);
            CHECK_INT_EQ(run_step(&a, &cfg[t], NULL, t, gs[t - 1], 0), CM_OK);
            const int in = (int)((t + 1) % 2), out = (int)(t % 2);
            CHECK_INT_EQ(f32 ? cm_mada_step_fused_f32(&cfg[t], &cfg[t - 1], NULL, t, N, b.p,
                                                      gs[t - 1], b.m, b.v[in], b.v[out], b.vbar,
                                                      b.nb, b.ml, b.g[in], b.g[out], d2)
                             : cm_mada_step_fused_f64(&cfg[t], &cfg[t - 1], NULL, t, N, b.p,
                                                      gs[t - 1], b.m, b.v[in], b.v[out], b.vbar,
                                                      b.nb, b.ml, b.g[in], b.g[out], d2),
                         CM_OK);
            same_p = same_p && memcmp(a.p, b.p, N * esize(f32)) == 0 &&
                     memcmp(a.v[out], b.v[out], N * esize(f32)) == 0 &&
                     memcmp(a.g[out], b.g[out], N * esize(f32)) == 0;
            same_dot = same_dot && memcmp(d1, d2, sizeof d1) == 0;
        }
        CHECKF(same_p, "fused update differs (%s, quirk %d)", f32 ? "f32" : "f64", quirk);
        CHECKF(same_dot, "fused dot differs (%s, quirk %d)", f32 ? "f32" : "f64", quirk);
        double dot[7];
        CHECK_INT_EQ(f32 ? cm_mada_step_fused_f32(&cfg[1], &cfg[1], NULL, 1, N, b.p, gs[0], b.m,
                                                  b.v[0], b.v[1], b.vbar, b.nb, b.ml, b.g[0],
                                                  b.g[1], dot)
                         : cm_mada_step_fused_f64(&cfg[1], &cfg[1], NULL, 1, N, b.p, gs[0], b.m,
                                                  b.v[0], b.v[1], b.vbar, b.nb, b.ml, b.g[0],
                                                  b.g[1], dot),
                     CM_ERR_STEP);
        run_free(&a);
        run_free(&b);
    }
    grads_free(gs, STEPS);
}

/* ------------------------------------------------------------------------ 3. finite differences */
static double *coef_ptr(cm_mada_config *cfg, int j)
{
    double *ptrs[7] = {&cfg->beta1, &cfg->beta2, &cfg->beta3, &cfg->rho, &cfg->c, &cfg->gamma,
                       &cfg->lr};
    return ptrs[j];
}

/* L(x) = w . x, so dL(x_{t+1})/dh_j = -lr dot_j with grad = w; x_{t+1} from fixed state. */
static void test_finite_differences(void)
{
    enum { N = 200, T = 6 };
    cm_mada_config cfg;
    interior(&cfg);
    run_t r;
    run_init(&r, 0, N, 1e-15);
    void **gs = grads_make(0, N, T + 1);
    for (int t = 1; t < T; t++) CHECK_INT_EQ(run_step(&r, &cfg, NULL, t, gs[t - 1], 1), CM_OK);
    /* snapshot the state after step T - 1, then take step T and its dot products */
    const size_t bytes = N * sizeof(double);
    double *snap[9];
    void *src[9] = {r.p, r.m, r.v[0], r.v[1], r.vbar, r.nb, r.ml, r.g[0], r.g[1]};
    for (int k = 0; k < 9; k++) {
        snap[k] = xmalloc(bytes);
        if (!snap[k]) exit(2);
        memcpy(snap[k], src[k], bytes);
    }
    CHECK_INT_EQ(run_step(&r, &cfg, NULL, T, gs[T - 1], 1), CM_OK);
    double dot[7];
    CHECK_INT_EQ(run_hyper(&r, &cfg, NULL, T, gs[T], dot), CM_OK);
    const double *w = gs[T];
    double worst = 0.0;
    for (int j = 0; j < 7; j++) {
        double f[2];
        for (int side = 0; side < 2; side++) {
            cm_mada_config c = cfg;
            const double h = *coef_ptr(&c, j), d = 1e-6 * (h > 1e-3 ? h : 1e-3);
            *coef_ptr(&c, j) = h + (side ? -d : d);
            run_t q;
            q.f32 = 0, q.n = N;
            double *arr[9];
            for (int k = 0; k < 9; k++) {
                arr[k] = xmalloc(bytes);
                if (!arr[k]) exit(2);
                memcpy(arr[k], snap[k], bytes);
            }
            q.p = arr[0], q.m = arr[1], q.v[0] = arr[2], q.v[1] = arr[3], q.vbar = arr[4];
            q.nb = arr[5], q.ml = arr[6], q.g[0] = arr[7], q.g[1] = arr[8];
            CHECK_INT_EQ(run_step(&q, &c, NULL, T, gs[T - 1], 1), CM_OK);
            /* w . (x(h') - x(h)) without the large common part */
            double s = 0.0;
            for (size_t i = 0; i < N; i++) s += w[i] * (arr[0][i] - ((double *)r.p)[i]);
            f[side] = s / d;
            for (int k = 0; k < 9; k++) free(arr[k]);
        }
        const double fd = (f[0] - f[1]) / 2.0;
        const double an = j == 6 ? -dot[6] : -cfg.lr * dot[j];
        const double rel = fabs(fd - an) / fabs(an);
        if (rel > worst) worst = rel;
        CHECKF(rel < 1e-5, "quantity %d: finite difference %.12g, analytic %.12g", j, fd, an);
    }
    CHECKF(worst < 1e-5, "worst relative error %.3g", worst);
    for (int k = 0; k < 9; k++) free(snap[k]);
    grads_free(gs, T + 1);
    run_free(&r);
}

/* ------------------------------------------------------------------------ 4. threads, ISA */
static void test_threads(int f32)
{
    enum { STEPS = 5, RUNS = 4 };
    const size_t n = 100003; /* above the default min_parallel_size, not a multiple of blocks */
    void **gs = grads_make(f32, n, STEPS + 1);
    cm_mada_config cfg;
    interior(&cfg);
    run_t runs[RUNS];
    double dots[RUNS][7];
    const rng_t seed = rng_state;
    for (int k = 0; k < RUNS; k++) { /* 1, 2, default threads; the baseline build */
        cm_exec_config ex;
        cm_exec_config_default(&ex);
        ex.n_threads = k >= 2 ? 0 : k + 1;
        ex.baseline_only = k == 3;
        rng_state = seed;
        run_init(&runs[k], f32, n, 1e-15);
        for (int t = 1; t <= STEPS; t++) {
            if (t > 1) CHECK_INT_EQ(run_hyper(&runs[k], &cfg, &ex, t - 1, gs[t - 1], dots[k]), CM_OK);
            CHECK_INT_EQ(run_step(&runs[k], &cfg, &ex, t, gs[t - 1], t == 1), CM_OK);
        }
    }
    for (int k = 1; k < RUNS; k++) {
        CHECKF(memcmp(runs[0].p, runs[k].p, n * esize(f32)) == 0, "run %d changes x", k);
        CHECKF(memcmp(dots[0], dots[k], sizeof(dots[0])) == 0, "run %d changes the dot", k);
    }
    for (int k = 0; k < RUNS; k++) run_free(&runs[k]);
    grads_free(gs, STEPS + 1);
}

/* ------------------------------------------------------------------------ 5. statuses */
static void test_status(int f32)
{
    enum { N = 16 };
    run_t r;
    run_init(&r, f32, N, 1e-15);
    void *g = alloc_fill(f32, N, 0.5), *d = alloc_fill(f32, 7 * N, 0.0);
    void *before = xmalloc(N * esize(f32));
    if (!before) exit(2);
    memcpy(before, r.p, N * esize(f32));
    cm_mada_config good;
    cm_mada_config_default(&good);
    double dot[7];
    CHECK_INT_EQ(run_step(&r, NULL, NULL, 1, g, 1), CM_ERR_NULL);
    CHECK_INT_EQ(step(f32, &good, NULL, 1, N, r.p, NULL, r.m, r.v[0], r.v[1], r.vbar, r.nb, r.ml,
                      r.g[0], r.g[1], NULL, 0),
                 CM_ERR_NULL);
    CHECK_INT_EQ(step(f32, &good, NULL, 1, N, r.p, g, r.m, r.v[0], r.v[1], r.vbar, r.nb, r.ml,
                      r.g[0], r.g[1], NULL, 6),
                 CM_ERR_NULL);
    CHECK_INT_EQ(step(f32, &good, NULL, 1, N, r.p, g, r.m, r.v[0], r.v[1], r.vbar, r.nb, r.ml,
                      r.g[0], r.g[1], d, 5),
                 CM_ERR_SIZE);
    CHECK_INT_EQ(run_step(&r, &good, NULL, 0, g, 1), CM_ERR_STEP);
    const char *fields[] = {"beta1=1", "beta2<0", "beta3=1", "rho>1", "c<0", "gamma nan",
                            "lr<0", "eps inf", "lion 1", "first_diff", "n_init"};
    for (int k = 0; k < 11; k++) {
        cm_mada_config bad = good;
        switch (k) {
        case 0: bad.beta1 = 1.0; break;
        case 1: bad.beta2 = -0.1; break;
        case 2: bad.beta3 = 1.0; break;
        case 3: bad.rho = 1.5; break;
        case 4: bad.c = -0.5; break;
        case 5: bad.gamma = NAN; break;
        case 6: bad.lr = -1.0; break;
        case 7: bad.eps = INFINITY; break;
        case 8: bad.lion_beta2 = 1.0; break;
        case 9: bad.first_diff = 2; break;
        default: bad.n_init = -1; break;
        }
        CHECKF(run_step(&r, &bad, NULL, 1, g, 1) == CM_ERR_HYPER, "%s accepted", fields[k]);
        CHECKF(run_hyper(&r, &bad, NULL, 1, g, dot) == CM_ERR_HYPER, "%s accepted (hyper)",
               fields[k]);
    }
    CHECK(memcmp(before, r.p, N * esize(f32)) == 0);
    CHECK_INT_EQ(run_hyper(&r, &good, NULL, 0, g, dot), CM_ERR_STEP);
    CHECK_INT_EQ(run_hyper(&r, &good, NULL, 1, g, NULL), CM_ERR_NULL);
    CHECK_INT_EQ(f32 ? cm_mada_hypergrad_stored_f32(NULL, N, g, d, 3, dot)
                     : cm_mada_hypergrad_stored_f64(NULL, N, g, d, 3, dot),
                 CM_ERR_SIZE);
    /* n == 0 is a no-op; the dot products are zero */
    for (int j = 0; j < 7; j++) dot[j] = 1.0;
    CHECK_INT_EQ(step(f32, &good, NULL, 1, 0, r.p, g, r.m, r.v[0], r.v[1], r.vbar, r.nb, r.ml,
                      r.g[0], r.g[1], NULL, 0),
                 CM_OK);
    CHECK_INT_EQ(hyper(f32, &good, NULL, 1, 0, g, r.m, r.v[0], r.v[1], r.vbar, r.nb, r.ml, r.g[0],
                       r.g[1], NULL, dot),
                 CM_OK);
    int zero = 1;
    for (int j = 0; j < 7; j++) zero = zero && dot[j] == 0.0;
    CHECK(zero);
    CHECK(memcmp(before, r.p, N * esize(f32)) == 0);
    free(g);
    free(d);
    free(before);
    run_free(&r);
}

static void test_defaults_and_hyper_step(void)
{
    cm_mada_config cfg;
    cm_mada_config_default(&cfg);
    CHECK(cfg.lr == 1e-3 && cfg.beta1 == 0.9 && cfg.beta2 == 0.999 && cfg.beta3 == 0.0);
    CHECK(cfg.rho == 1.0 && cfg.c == 1.0 && cfg.gamma == 1.0 && cfg.eps == 1e-6);
    CHECK(cfg.lion_beta1 == 0.95 && cfg.lion_beta2 == 0.98 && !cfg.detach_vbar);
    CHECK(cfg.first_diff == CM_MADA_DIFF_ZERO && cfg.n_init == CM_MADA_N_ZERO);

    cm_mada_hyper_config hc;
    cm_mada_hyper_config_default(&hc);
    CHECK(hc.hyper_lr[CM_MADA_BETA1] == 5e-4 && hc.hyper_lr[CM_MADA_GAMMA] == 0.1);
    CHECK(hc.hyper_lr[CM_MADA_LR] == 0.0 && hc.clip == 10.0);
    CHECK(hc.lower[CM_MADA_BETA2] == 0.501 && hc.upper[CM_MADA_BETA3] == 0.99);
    CHECK(isinf(hc.upper[CM_MADA_LR]));

    for (int j = 0; j < 7; j++) hc.hyper_lr[j] = 1.0;
    hc.hyper_lr[CM_MADA_C] = 0.0; /* frozen: not even projected */
    double coef[7] = {0.5, 0.999, 0.5, 0.5, 2.0, 0.5, 0.1};
    const double dot[7] = {-1e3, -1e3, 0.5, -1.0, -1e3, NAN, 1e3};
    double hg[7];
    CHECK_INT_EQ(cm_mada_hyper_step(&hc, 0.1, dot, coef, hg), CM_OK);
    CHECK(hg[0] == 100.0 && hg[2] == -0.05 && hg[6] == -1e3);
    CHECK(coef[0] == 0.01);        /* 0.5 - 10 (clipped) -> box */
    CHECK(coef[1] == 0.501);       /* 0.999 - 10 -> box */
    CHECK(coef[2] == 0.55);        /* 0.5 + 0.05 */
    CHECK(coef[3] == 0.4);         /* 0.5 - 0.1 */
    CHECK(coef[4] == 2.0);         /* frozen */
    CHECK(coef[5] == 0.5);         /* NaN hypergradient: unchanged */
    CHECK(coef[6] == 10.1);        /* lr: -dot = -1e3 -> -10 clipped; box [0, inf) */
    cm_mada_hyper_config bad = hc;
    bad.clip = 0.0;
    CHECK_INT_EQ(cm_mada_hyper_step(&bad, 0.1, dot, coef, hg), CM_ERR_HYPER);
    bad = hc;
    bad.lower[2] = 1.0, bad.upper[2] = 0.0;
    CHECK_INT_EQ(cm_mada_hyper_step(&bad, 0.1, dot, coef, hg), CM_ERR_HYPER);
    bad = hc;
    bad.hyper_lr[0] = -1.0;
    CHECK_INT_EQ(cm_mada_hyper_step(&bad, 0.1, dot, coef, hg), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_mada_hyper_step(&hc, -0.1, dot, coef, hg), CM_ERR_HYPER);
    CHECK_INT_EQ(cm_mada_hyper_step(NULL, 0.1, dot, coef, hg), CM_ERR_NULL);
    CHECK(coef[3] == 0.4); /* unchanged by the failed calls */
}

int main(void)
{
    for (int f32 = 0; f32 <= 1; f32++) {
        test_vertices(f32);
        test_modes(f32);
        test_fused(f32);
        test_threads(f32);
        test_status(f32);
    }
    test_finite_differences();
    test_defaults_and_hyper_step();
    return th_summary();
}
