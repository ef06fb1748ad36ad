/* test_cmadam.c -- unit tests of the cmadam C core, through its public API only.
 *
 * What is checked (each for float and double; see typed_tests.inc for the typed parts):
 *   1. every optimiser kernel against an independent long double reference that follows the
 *      formula in cmadam.h, 50 steps on 1000 random elements (relative error in the max norm
 *      <= 1e-12 for f64, 1e-5 for f32), and bit for bit against a scalar loop in the element
 *      type that follows the header's arithmetic contract (coefficients in double, rounded
 *      once; element arithmetic in the written order);
 *   2. bit-identical results for exec.n_threads = 1, 2 and 0 above min_parallel_size;
 *   3. status codes (NULL pointers, step < 1, bad hyperparameters), arrays untouched on error;
 *   4. cm_strerror, cm_version, the *_config_default values, build/BLAS info;
 *   5. cm_all_finite, cm_triad, cm_gramian;
 *   6. n == 0 is a no-op.
 * The last line printed is "N passed, N failed"; the exit status is non-zero on any failure.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmadam.h"
#include "harness.h"

/* ------------------------------------------------------------------------ random numbers */
/* rng_t, rng_u64, rng_unif: harness.h */
/* uniform in [-1, 1) */
static double rng_sym(rng_t *r) { return 2.0 * rng_unif(r) - 1.0; }

/* A gradient-like value: symmetric, magnitudes spread over 1e-2 .. 1e1, and exactly zero at
 * every 97th element (so that Lion's sign(0) = 0 and zero moments are exercised). One draw:
 * the top 53 bits give the value in [-1, 1), the low 3 bits the scale. */
static double rng_grad(rng_t *r, size_t i)
{
    static const double scale[8] = {1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0, 1.0};
    if (i % 97 == 0) return 0.0;
    const uint64_t x = rng_u64(r);
    const double u = 2.0 * ((double)(x >> 11) * (1.0 / 9007199254740992.0)) - 1.0;
    return u * scale[x & 7];
}


/* ------------------------------------------------------------------------ kernel cases */
enum kind { K_SGD, K_ADAM, K_YOGI, K_ADAN, K_LION };
#define MAX_STATES 4
#define MAX_CASES 24

typedef struct {
    const char *name;
    enum kind kind;
    cm_sgd_config sgd;
    cm_adam_config adam;
    cm_yogi_config yogi;
    cm_adan_config adan;
    cm_lion_config lion;
} kcase;

static const char *const state_names[5][MAX_STATES] = {
    [K_SGD] = {"momentum_buf", "", "", ""},
    [K_ADAM] = {"exp_avg", "exp_avg_sq", "exp_avg_sq_aux", ""},
    [K_YOGI] = {"exp_avg", "exp_avg_sq", "", ""},
    [K_ADAN] = {"exp_avg", "exp_avg_diff", "exp_avg_sq", "prev_grad"},
    [K_LION] = {"exp_avg", "", "", ""},
};

static int n_states(const kcase *kc)
{
    switch (kc->kind) {
    case K_SGD: return 1;
    case K_ADAM: return 3;
    case K_YOGI: return 2;
    case K_ADAN: return 4;
    case K_LION: return 1;
    }
    return 0;
}

/* Whether the kernel needs state array j (the others are passed as NULL). */
static int state_used(const kcase *kc, int j)
{
    if (j >= n_states(kc)) return 0;
    if (kc->kind == K_SGD) return kc->sgd.momentum != 0.0;
    if (kc->kind == K_ADAM && j == 2) return kc->adam.variant != CM_ADAM;
    return 1;
}

static int has_step(const kcase *kc) { return kc->kind != K_LION; }

static kcase sgd_case(const char *name, double lr, double mom, double damp, double wd, int nest)
{
    kcase k;
    memset(&k, 0, sizeof k);
    k.name = name;
    k.kind = K_SGD;
    k.sgd.lr = lr;
    k.sgd.momentum = mom;
    k.sgd.dampening = damp;
    k.sgd.weight_decay = wd;
    k.sgd.nesterov = nest;
    return k;
}

static kcase adam_case(const char *name, double lr, double b1, double b2, double eps, double wd,
                       int decoupled, int variant)
{
    kcase k;
    memset(&k, 0, sizeof k);
    k.name = name;
    k.kind = K_ADAM;
    k.adam.lr = lr;
    k.adam.beta1 = b1;
    k.adam.beta2 = b2;
    k.adam.eps = eps;
    k.adam.weight_decay = wd;
    k.adam.decoupled_weight_decay = decoupled;
    k.adam.variant = variant;
    return k;
}

static kcase yogi_case(const char *name, double lr, double b1, double b2, double eps, double wd)
{
    kcase k;
    memset(&k, 0, sizeof k);
    k.name = name;
    k.kind = K_YOGI;
    k.yogi.lr = lr;
    k.yogi.beta1 = b1;
    k.yogi.beta2 = b2;
    k.yogi.eps = eps;
    k.yogi.weight_decay = wd;
    return k;
}

static kcase adan_case(const char *name, double lr, double b1, double b2, double b3, double eps,
                       double wd, int proximal)
{
    kcase k;
    memset(&k, 0, sizeof k);
    k.name = name;
    k.kind = K_ADAN;
    k.adan.lr = lr;
    k.adan.beta1 = b1;
    k.adan.beta2 = b2;
    k.adan.beta3 = b3;
    k.adan.eps = eps;
    k.adan.weight_decay = wd;
    k.adan.proximal = proximal;
    return k;
}

static kcase lion_case(const char *name, double lr, double b1, double b2, double wd)
{
    kcase k;
    memset(&k, 0, sizeof k);
    k.name = name;
    k.kind = K_LION;
    k.lion.lr = lr;
    k.lion.beta1 = b1;
    k.lion.beta2 = b2;
    k.lion.weight_decay = wd;
    return k;
}

static size_t make_cases(kcase *c)
{
    size_t k = 0;
    c[k++] = sgd_case("sgd", 1e-2, 0.0, 0.0, 0.0, 0);
    c[k++] = sgd_case("sgd_wd", 1e-2, 0.0, 0.0, 1e-2, 0);
    c[k++] = sgd_case("sgd_momentum", 1e-2, 0.9, 0.0, 0.0, 0);
    c[k++] = sgd_case("sgd_momentum_dampening_wd", 1e-2, 0.9, 0.1, 1e-2, 0);
    c[k++] = sgd_case("sgd_nesterov_wd", 1e-2, 0.9, 0.0, 1e-2, 1);
    c[k++] = adam_case("adam", 1e-2, 0.9, 0.999, 1e-8, 0.0, 0, CM_ADAM);
    c[k++] = adam_case("adam_l2", 1e-2, 0.9, 0.999, 1e-8, 1e-2, 0, CM_ADAM);
    c[k++] = adam_case("adamw", 1e-2, 0.9, 0.999, 1e-8, 0.1, 1, CM_ADAM);
    c[k++] = adam_case("amsgrad_l2", 1e-2, 0.9, 0.99, 1e-8, 1e-2, 0, CM_AMSGRAD);
    c[k++] = adam_case("amsgrad_decoupled", 1e-2, 0.8, 0.95, 1e-6, 0.1, 1, CM_AMSGRAD);
    c[k++] = adam_case("avgrad_l2", 1e-2, 0.9, 0.99, 1e-8, 1e-2, 0, CM_AVGRAD);
    c[k++] = adam_case("avgrad_decoupled", 1e-2, 0.8, 0.95, 1e-6, 0.1, 1, CM_AVGRAD);
    c[k++] = yogi_case("yogi", 1e-2, 0.9, 0.999, 1e-3, 0.0);
    c[k++] = yogi_case("yogi_wd", 1e-2, 0.9, 0.99, 1e-3, 1e-2);
    c[k++] = adan_case("adan_proximal_wd", 1e-2, 0.98, 0.92, 0.99, 1e-8, 0.02, 1);
    c[k++] = adan_case("adan_nonproximal_wd", 1e-2, 0.98, 0.92, 0.99, 1e-8, 0.02, 0);
    c[k++] = adan_case("adan_proximal", 1e-3, 0.9, 0.8, 0.95, 1e-8, 0.0, 1);
    c[k++] = lion_case("lion", 1e-4, 0.9, 0.99, 0.0);
    c[k++] = lion_case("lion_wd", 1e-3, 0.9, 0.99, 0.1);
    if (k > MAX_CASES) {
        printf("MAX_CASES too small\n");
        exit(2);
    }
    return k;
}

/* Bad hyperparameters: writes the idx-th bad variant of base into out and returns 1, or returns
 * 0 when idx is past the list for base's kind. */
#define BAD(lbl, stmt)                                                                         \
    if (idx == k++) {                                                                          \
        *out = *base;                                                                          \
        stmt;                                                                                  \
        *label = lbl;                                                                          \
        return 1;                                                                              \
    }

static int bad_hyper(const kcase *base, int idx, kcase *out, const char **label)
{
    int k = 0;
    const double nan = NAN, inf = INFINITY;
    switch (base->kind) {
    case K_SGD:
        BAD("lr < 0", out->sgd.lr = -1e-3);
        BAD("lr NaN", out->sgd.lr = nan);
        BAD("lr +Inf", out->sgd.lr = inf);
        BAD("momentum < 0", out->sgd.momentum = -0.1);
        BAD("momentum NaN", out->sgd.momentum = nan);
        BAD("dampening NaN", out->sgd.dampening = nan);
        BAD("weight_decay < 0", out->sgd.weight_decay = -1e-2);
        BAD("weight_decay NaN", out->sgd.weight_decay = nan);
        BAD("nesterov with momentum 0", out->sgd.nesterov = 1; out->sgd.momentum = 0.0;
            out->sgd.dampening = 0.0);
        BAD("nesterov with dampening 0.1", out->sgd.nesterov = 1; out->sgd.momentum = 0.9;
            out->sgd.dampening = 0.1);
        break;
    case K_ADAM:
        BAD("lr < 0", out->adam.lr = -1e-3);
        BAD("lr NaN", out->adam.lr = nan);
        BAD("lr +Inf", out->adam.lr = inf);
        BAD("beta1 = 1", out->adam.beta1 = 1.0);
        BAD("beta1 > 1", out->adam.beta1 = 1.5);
        BAD("beta1 < 0", out->adam.beta1 = -0.1);
        BAD("beta1 NaN", out->adam.beta1 = nan);
        BAD("beta2 = 1", out->adam.beta2 = 1.0);
        BAD("beta2 < 0", out->adam.beta2 = -0.1);
        BAD("beta2 NaN", out->adam.beta2 = nan);
        BAD("eps < 0", out->adam.eps = -1e-8);
        BAD("eps NaN", out->adam.eps = nan);
        BAD("weight_decay < 0", out->adam.weight_decay = -1e-2);
        BAD("weight_decay NaN", out->adam.weight_decay = nan);
        BAD("variant 3", out->adam.variant = 3);
        BAD("variant -1", out->adam.variant = -1);
        break;
    case K_YOGI:
        BAD("lr < 0", out->yogi.lr = -1e-3);
        BAD("lr NaN", out->yogi.lr = nan);
        BAD("beta1 = 1", out->yogi.beta1 = 1.0);
        BAD("beta1 < 0", out->yogi.beta1 = -0.1);
        BAD("beta1 NaN", out->yogi.beta1 = nan);
        BAD("beta2 = 1", out->yogi.beta2 = 1.0);
        BAD("beta2 < 0", out->yogi.beta2 = -0.1);
        BAD("beta2 NaN", out->yogi.beta2 = nan);
        BAD("eps < 0", out->yogi.eps = -1e-3);
        BAD("eps NaN", out->yogi.eps = nan);
        BAD("weight_decay < 0", out->yogi.weight_decay = -1e-2);
        BAD("weight_decay NaN", out->yogi.weight_decay = nan);
        break;
    case K_ADAN:
        BAD("lr < 0", out->adan.lr = -1e-3);
        BAD("lr NaN", out->adan.lr = nan);
        BAD("beta1 = 1", out->adan.beta1 = 1.0);
        BAD("beta1 < 0", out->adan.beta1 = -0.1);
        BAD("beta1 NaN", out->adan.beta1 = nan);
        BAD("beta2 = 1", out->adan.beta2 = 1.0);
        BAD("beta2 < 0", out->adan.beta2 = -0.1);
        BAD("beta2 NaN", out->adan.beta2 = nan);
        BAD("beta3 = 1", out->adan.beta3 = 1.0);
        BAD("beta3 < 0", out->adan.beta3 = -0.1);
        BAD("beta3 NaN", out->adan.beta3 = nan);
        BAD("eps < 0", out->adan.eps = -1e-8);
        BAD("eps NaN", out->adan.eps = nan);
        BAD("weight_decay < 0", out->adan.weight_decay = -1e-2);
        BAD("weight_decay NaN", out->adan.weight_decay = nan);
        break;
    case K_LION:
        BAD("lr < 0", out->lion.lr = -1e-4);
        BAD("lr NaN", out->lion.lr = nan);
        BAD("beta1 = 1", out->lion.beta1 = 1.0);
        BAD("beta1 < 0", out->lion.beta1 = -0.1);
        BAD("beta1 NaN", out->lion.beta1 = nan);
        BAD("beta2 = 1", out->lion.beta2 = 1.0);
        BAD("beta2 < 0", out->lion.beta2 = -0.1);
        BAD("beta2 NaN", out->lion.beta2 = nan);
        BAD("weight_decay < 0", out->lion.weight_decay = -1e-2);
        BAD("weight_decay NaN", out->lion.weight_decay = nan);
        break;
    }
    return 0;
}
#undef BAD

/* ------------------------------------------------------------------------ long double reference
 * A plain transcription of the per-element formulas in cmadam.h, in long double with the
 * hyperparameters taken exactly (no rounding of coefficients to the element type). */
static long double sgn_ld(long double x) { return (long double)((x > 0) - (x < 0)); }

static void ref_step(const kcase *kc, int64_t t, size_t n, long double *p, const long double *g,
                     long double *const *s)
{
    switch (kc->kind) {
    case K_SGD: {
        const long double lr = kc->sgd.lr, mu = kc->sgd.momentum, damp = kc->sgd.dampening;
        const long double wd = kc->sgd.weight_decay;
        long double *buf = s[0];
        for (size_t i = 0; i < n; i++) {
            long double gi = g[i];
            if (wd != 0) gi = gi + wd * p[i];
            if (mu != 0) {
                buf[i] = (t == 1) ? gi : mu * buf[i] + (1 - damp) * gi;
                gi = kc->sgd.nesterov ? gi + mu * buf[i] : buf[i];
            }
            p[i] = p[i] - lr * gi;
        }
        break;
    }
    case K_ADAM: {
        const cm_adam_config *c = &kc->adam;
        const long double lr = c->lr, b1 = c->beta1, b2 = c->beta2, eps = c->eps;
        const long double wd = c->weight_decay;
        const long double bc1 = 1 - powl(b1, (long double)t), bc2 = 1 - powl(b2, (long double)t);
        long double *m = s[0], *v = s[1], *aux = s[2];
        for (size_t i = 0; i < n; i++) {
            long double gi = g[i], sv;
            if (c->decoupled_weight_decay) p[i] = p[i] * (1 - lr * wd);
            else if (wd != 0) gi = gi + wd * p[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * (gi * gi);
            if (c->variant == CM_AMSGRAD) {
                aux[i] = aux[i] > v[i] ? aux[i] : v[i];
                sv = aux[i];
            } else if (c->variant == CM_AVGRAD) {
                aux[i] = (v[i] + (long double)(t - 1) * aux[i]) / (long double)t;
                sv = aux[i];
            } else {
                sv = v[i];
            }
            p[i] = p[i] - (lr / bc1) * (m[i] / (sqrtl(sv) / sqrtl(bc2) + eps));
        }
        break;
    }
    case K_YOGI: {
        const cm_yogi_config *c = &kc->yogi;
        const long double lr = c->lr, b1 = c->beta1, b2 = c->beta2, eps = c->eps;
        const long double wd = c->weight_decay;
        const long double bc1 = 1 - powl(b1, (long double)t), bc2 = 1 - powl(b2, (long double)t);
        long double *m = s[0], *v = s[1];
        for (size_t i = 0; i < n; i++) {
            long double gi = g[i];
            if (wd != 0) gi = gi + wd * p[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            const long double g2 = gi * gi;
            v[i] = v[i] - ((1 - b2) * sgn_ld(v[i] - g2)) * g2;
            p[i] = p[i] - (lr / bc1) * (m[i] / (sqrtl(v[i]) / sqrtl(bc2) + eps));
        }
        break;
    }
    case K_ADAN: {
        const cm_adan_config *c = &kc->adan;
        const long double lr = c->lr, b1 = c->beta1, b2 = c->beta2, b3 = c->beta3, eps = c->eps;
        const long double wd = c->weight_decay, tt = (long double)t;
        const long double bc1 = 1 - powl(b1, tt), bc2 = 1 - powl(b2, tt), bc3 = 1 - powl(b3, tt);
        long double *m = s[0], *md = s[1], *nn = s[2], *prev = s[3];
        for (size_t i = 0; i < n; i++) {
            const long double gi = g[i];
            const long double d = (t == 1) ? 0 : gi - prev[i];
            m[i] = b1 * m[i] + (1 - b1) * gi;
            md[i] = b2 * md[i] + (1 - b2) * d;
            const long double u = gi + b2 * d;
            nn[i] = b3 * nn[i] + (1 - b3) * (u * u);
            const long double r = (m[i] / bc1 + (b2 / bc2) * md[i]) / (sqrtl(nn[i]) / sqrtl(bc3) + eps);
            if (c->proximal) p[i] = (p[i] - lr * r) / (1 + lr * wd);
            else p[i] = p[i] * (1 - lr * wd) - lr * r;
            prev[i] = gi;
        }
        break;
    }
    case K_LION: {
        const cm_lion_config *c = &kc->lion;
        const long double lr = c->lr, b1 = c->beta1, b2 = c->beta2, wd = c->weight_decay;
        long double *m = s[0];
        for (size_t i = 0; i < n; i++) {
            p[i] = p[i] * (1 - lr * wd);
            const long double cc = b1 * m[i] + (1 - b1) * g[i];
            p[i] = p[i] - lr * sgn_ld(cc);
            m[i] = b2 * m[i] + (1 - b2) * g[i];
        }
        break;
    }
    }
}

/* ------------------------------------------------------------------------ typed tests */
#define T float
#define SFX(x) x##_f32
#define TNAME "f32"
#define TOL 1e-5
#define TEPS FLT_EPSILON
#define TMAX FLT_MAX
#define TMIN FLT_MIN
#define TSQRT sqrtf
#include "typed_tests.inc"
#undef T
#undef SFX
#undef TNAME
#undef TOL
#undef TEPS
#undef TMAX
#undef TMIN
#undef TSQRT

#define T double
#define SFX(x) x##_f64
#define TNAME "f64"
#define TOL 1e-12
#define TEPS DBL_EPSILON
#define TMAX DBL_MAX
#define TMIN DBL_MIN
#define TSQRT sqrt
#include "typed_tests.inc"
#undef T
#undef SFX
#undef TNAME
#undef TOL
#undef TEPS
#undef TMAX
#undef TMIN
#undef TSQRT

/* ------------------------------------------------------------------------ untyped tests */
static int nonempty(const char *s) { return s != NULL && s[0] != '\0'; }

static void test_strerror(void)
{
    const int codes[] = {CM_OK, CM_ERR_NULL, CM_ERR_HYPER, CM_ERR_STEP, CM_ERR_SIZE, CM_ERR_BLAS};
    const size_t nc = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < nc; i++) {
        const char *s = cm_strerror(codes[i]);
        CHECKF(nonempty(s), "cm_strerror(%d) is NULL or empty", codes[i]);
        for (size_t j = 0; j < i; j++)
            CHECKF(s && cm_strerror(codes[j]) && strcmp(s, cm_strerror(codes[j])) != 0,
                   "cm_strerror(%d) == cm_strerror(%d)", codes[i], codes[j]);
    }
    const int unknown[] = {-1, 6, 100, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = cm_strerror(unknown[i]);
        CHECKF(nonempty(s), "cm_strerror(%d) is NULL or empty", unknown[i]);
        CHECKF(s && strcmp(s, cm_strerror(CM_OK)) != 0, "cm_strerror(%d) says success", unknown[i]);
    }
}

static void test_version_and_info(void)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", CM_VERSION_MAJOR, CM_VERSION_MINOR, CM_VERSION_PATCH);
    const char *v = cm_version();
    CHECKF(v && strcmp(v, want) == 0, "cm_version() = \"%s\", want \"%s\"", v ? v : "(null)", want);

    CHECK(nonempty(cm_build_info()));
    CHECK(cm_openmp_max_threads() >= 1);

    const char *blas = cm_blas_info();
    CHECK(nonempty(blas));
    const int nt0 = cm_blas_get_num_threads();
    CHECKF(nt0 >= 1, "cm_blas_get_num_threads() = %d", nt0);
    cm_blas_set_num_threads(1);
    CHECK_INT_EQ(cm_blas_get_num_threads(), 1);
    cm_blas_set_num_threads(0); /* ignored: not a valid thread count */
    CHECK_INT_EQ(cm_blas_get_num_threads(), 1);
    cm_blas_set_num_threads(nt0 >= 1 ? nt0 : 1);
    CHECK_INT_EQ(cm_blas_get_num_threads(), nt0 >= 1 ? nt0 : 1);
}

static void test_defaults(void)
{
    /* Fill with garbage first so that every field must be written. */
    cm_exec_config ex;
    memset(&ex, 0xA5, sizeof ex);
    cm_exec_config_default(&ex);
    CHECK_INT_EQ(ex.n_threads, 0);
    CHECK(ex.min_parallel_size == 32768);
    CHECK_INT_EQ(ex.baseline_only, 0);
    CHECK(cm_simd_level(&ex) >= 1 && cm_simd_level(NULL) == cm_simd_level(&ex));
    ex.baseline_only = 1;
    CHECK_INT_EQ(cm_simd_level(&ex), 1);

    cm_sgd_config s;
    memset(&s, 0xA5, sizeof s);
    cm_sgd_config_default(&s);
    CHECK(s.lr == 1e-3 && s.momentum == 0.0 && s.dampening == 0.0 && s.weight_decay == 0.0);
    CHECK_INT_EQ(s.nesterov, 0);

    cm_adam_config a;
    memset(&a, 0xA5, sizeof a);
    cm_adam_config_default(&a);
    CHECK(a.lr == 1e-3 && a.beta1 == 0.9 && a.beta2 == 0.999 && a.eps == 1e-8);
    CHECK(a.weight_decay == 0.0);
    CHECK_INT_EQ(a.decoupled_weight_decay, 0);
    CHECK_INT_EQ(a.variant, CM_ADAM);

    cm_yogi_config y;
    memset(&y, 0xA5, sizeof y);
    cm_yogi_config_default(&y);
    CHECK(y.lr == 1e-2 && y.beta1 == 0.9 && y.beta2 == 0.999 && y.eps == 1e-3);
    CHECK(y.weight_decay == 0.0);

    cm_adan_config d;
    memset(&d, 0xA5, sizeof d);
    cm_adan_config_default(&d);
    CHECK(d.lr == 1e-3 && d.beta1 == 0.98 && d.beta2 == 0.92 && d.beta3 == 0.99);
    CHECK(d.eps == 1e-8 && d.weight_decay == 0.0);
    CHECK_INT_EQ(d.proximal, 1);

    cm_lion_config l;
    memset(&l, 0xA5, sizeof l);
    cm_lion_config_default(&l);
    CHECK(l.lr == 1e-4 && l.beta1 == 0.9 && l.beta2 == 0.99 && l.weight_decay == 0.0);

    /* The defaults are valid configurations: one step on a few elements succeeds. */
    double p[3] = {1.0, -2.0, 0.5}, g[3] = {0.1, 0.2, -0.3};
    double m[3] = {0}, v[3] = {0}, md[3] = {0}, prev[3] = {0}, y0[3] = {1e-6, 1e-6, 1e-6},
           y1[3] = {1e-6, 1e-6, 1e-6};
    CHECK_INT_EQ(cm_sgd_step_f64(&s, &ex, 1, 3, p, g, NULL), CM_OK);
    CHECK_INT_EQ(cm_adam_step_f64(&a, &ex, 1, 3, p, g, m, v, NULL), CM_OK);
    CHECK_INT_EQ(cm_yogi_step_f64(&y, &ex, 1, 3, p, g, y0, y1), CM_OK);
    memset(m, 0, sizeof m);
    memset(v, 0, sizeof v);
    CHECK_INT_EQ(cm_adan_step_f64(&d, &ex, 1, 3, p, g, m, md, v, prev), CM_OK);
    memset(m, 0, sizeof m);
    CHECK_INT_EQ(cm_lion_step_f64(&l, &ex, 3, p, g, m), CM_OK);
    int fin = 0;
    CHECK_INT_EQ(cm_all_finite_f64(&ex, 3, p, &fin), CM_OK);
    CHECK_INT_EQ(fin, 1);

    /* Boundary values that are in range are accepted. */
    cm_adam_config a0 = a;
    a0.beta1 = 0.0;
    a0.beta2 = 0.0;
    a0.lr = 0.0;
    memset(m, 0, sizeof m);
    memset(v, 0, sizeof v);
    CHECK_INT_EQ(cm_adam_step_f64(&a0, &ex, 1, 3, p, g, m, v, NULL), CM_OK);
    cm_lion_config l0 = l;
    l0.beta1 = 0.0;
    l0.beta2 = 0.0;
    CHECK_INT_EQ(cm_lion_step_f64(&l0, &ex, 3, p, g, m), CM_OK);
}

int main(void)
{
    kcase cases[MAX_CASES];
    const size_t nc = make_cases(cases);

    test_strerror();
    test_version_and_info();
    test_defaults();

    test_accuracy_f32(cases, nc);
    test_accuracy_f64(cases, nc);
    test_exact_f32(cases, nc);
    test_exact_f64(cases, nc);
    test_threads_f32(cases, nc);
    test_threads_f64(cases, nc);
    test_errors_f32(cases, nc);
    test_errors_f64(cases, nc);
    test_all_finite_f32();
    test_all_finite_f64();
    test_triad_f32();
    test_triad_f64();
    test_gramian_f32();
    test_gramian_f64();
    test_gram_scan_f32();
    test_gram_scan_f64();
    test_gram_scan_tiles_f32();
    test_gram_scan_tiles_f64();
    test_combine_f32();
    test_combine_f64();

    return th_summary();
}
