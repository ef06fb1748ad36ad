/* test_madam.c -- unit tests of MAdam's kernel (cmadam_madam.h), through the public API only.
 *
 * For float and double:
 *   1. full pairs, C in {1, 2, 3, 5}, 7 steps with a time-varying (and one affine) preference,
 *      rampup r in {1, 0.4}, weight decay on and off, d computed and d given: bit for bit equal
 *      to a scalar reference written here in the order of the header comment;
 *   2. a sampled plan (2 of 4 objectives, rows = only those gradients, given d): the sampled
 *      F entries move as the reference says, the others are bit-identical to before;
 *   3. C_lam < 0 (a plan with a negative weight) is clamped at 0;
 *   4. 1 and 2 threads, the default, and the baseline (non-AVX2) build give the same bits above
 *      min_parallel_size, with n not a multiple of the tile;
 *   5. status codes, arrays untouched on error; n == 0; the helpers (pair count and index, the
 *      full-pairs plan, the config defaults).
 * The last line printed is "N passed, N failed".
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmadam_madam.h"
#include "harness.h"

#define MAX_OBJ 5
#define MAX_PAIRS (MAX_OBJ * (MAX_OBJ + 1) / 2)

static rng_t rng_state = {2024};
static double unif(void) { return rng_unif(&rng_state); } /* splitmix64 (harness.h) */

/* Gradient-like values over four decades, every 53rd exactly zero. */
static double grad_value(size_t i)
{
    static const double scale[4] = {1e-3, 1e-2, 1e-1, 1.0};
    if (i % 53 == 0) return 0.0;
    return (2.0 * unif() - 1.0) * scale[(size_t)(unif() * 4.0) & 3];
}


/* A plan: the five per-pair arrays. */
typedef struct {
    int a[MAX_PAIRS], b[MAX_PAIRS];
    double decay[MAX_PAIRS], gain[MAX_PAIRS], weight[MAX_PAIRS];
} plan_t;

/* ------------------------------------------------------------------ typed reference + runner
 * The scalar reference does, per element, exactly the operations of the header comment. */
#define DEFINE_TYPED(T, SQ, SUF, KERNEL)                                                        \
    static void ref_step_##SUF(const cm_madam_config *cfg, int64_t step, size_t n, int n_obj,  \
                               int n_rows, T *param, const T *rows, const T *dir,              \
                               const double *rw, T *fisher, const plan_t *pl, T *m, T *v)      \
    {                                                                                          \
        const int np = n_obj * (n_obj + 1) / 2;                                                \
        const double t = (double)step;                                                         \
        const double bc1 = 1.0 - pow(cfg->beta1, t), bc2 = 1.0 - pow(cfg->beta2, t);           \
        const T b1 = (T)cfg->beta1, omb1 = (T)(1.0 - cfg->beta1);                               \
        const T b2 = (T)cfg->beta2, omb2 = (T)(1.0 - cfg->beta2);                               \
        const T ss = (T)(cfg->lr / bc1), sb2 = (T)sqrt(bc2), eps = (T)cfg->eps;                \
        const T dec = (T)(1.0 - cfg->lr * cfg->weight_decay);                                  \
        const T omr = (T)(1.0 - cfg->rampup), r = (T)cfg->rampup;                              \
        for (size_t e = 0; e < n; e++) {                                                       \
            T d;                                                                               \
            if (dir) {                                                                         \
                d = dir[e];                                                                    \
            } else {                                                                           \
                d = (T)rw[0] * rows[e];                                                        \
                for (int k = 1; k < n_rows; k++) d = d + (T)rw[k] * rows[(size_t)k * n + e];   \
            }                                                                                  \
            T c = (T)0;                                                                        \
            for (int p = 0; p < np; p++) {                                                     \
                T *f = fisher + (size_t)p * n + e;                                             \
                if (pl->a[p] >= 0)                                                             \
                    *f = (T)pl->decay[p] * *f +                                                \
                         (T)pl->gain[p] * (rows[(size_t)pl->a[p] * n + e] *                    \
                                           rows[(size_t)pl->b[p] * n + e]);                    \
                c = c + (T)pl->weight[p] * *f;                                                 \
            }                                                                                  \
            c = c < (T)0 ? (T)0 : c;                                                           \
            const T M = omr + r * (SQ(c) + eps);                                               \
            const T u = d / M;                                                                 \
            T p = param[e] * dec;                                                              \
            m[e] = b1 * m[e] + omb1 * u;                                                       \
            v[e] = b2 * v[e] + omb2 * (u * u);                                                 \
            param[e] = p - ss * (m[e] / (SQ(v[e]) / sb2 + eps));                               \
        }                                                                                      \
    }                                                                                          \
    /* State of one run: param, m, v, fisher; rows for n_obj objectives. */                    \
    typedef struct {                                                                           \
        size_t n;                                                                              \
        int n_obj;                                                                             \
        T *param, *m, *v, *fisher, *rows, *dir;                                                \
    } state_##SUF;                                                                             \
    static void state_init_##SUF(state_##SUF *s, size_t n, int n_obj)                          \
    {                                                                                          \
        const size_t np = (size_t)(n_obj * (n_obj + 1) / 2);                                   \
        s->n = n;                                                                              \
        s->n_obj = n_obj;                                                                      \
        s->param = xmalloc(n * sizeof(T));                                                     \
        s->m = xmalloc(n * sizeof(T));                                                         \
        s->v = xmalloc(n * sizeof(T));                                                         \
        s->fisher = xmalloc(np * n * sizeof(T));                                               \
        s->rows = xmalloc((size_t)n_obj * n * sizeof(T));                                      \
        s->dir = xmalloc(n * sizeof(T));                                                       \
        for (size_t e = 0; e < n; e++) {                                                       \
            s->param[e] = (T)(2.0 * unif() - 1.0);                                             \
            s->m[e] = s->v[e] = (T)0;                                                          \
        }                                                                                      \
        for (size_t e = 0; e < np * n; e++) s->fisher[e] = (T)0;                               \
    }                                                                                          \
    static void state_copy_##SUF(state_##SUF *dst, const state_##SUF *src)                     \
    {                                                                                          \
        const size_t np = (size_t)(src->n_obj * (src->n_obj + 1) / 2), n = src->n;             \
        state_init_##SUF(dst, n, src->n_obj);                                                  \
        memcpy(dst->param, src->param, n * sizeof(T));                                         \
        memcpy(dst->m, src->m, n * sizeof(T));                                                 \
        memcpy(dst->v, src->v, n * sizeof(T));                                                 \
        memcpy(dst->fisher, src->fisher, np * n * sizeof(T));                                  \
        memcpy(dst->rows, src->rows, (size_t)src->n_obj * n * sizeof(T));                      \
        memcpy(dst->dir, src->dir, n * sizeof(T));                                             \
    }                                                                                          \
    static void state_free_##SUF(state_##SUF *s)                                               \
    {                                                                                          \
        free(s->param);                                                                        \
        free(s->m);                                                                            \
        free(s->v);                                                                            \
        free(s->fisher);                                                                       \
        free(s->rows);                                                                         \
        free(s->dir);                                                                          \
    }                                                                                          \
    static int state_equal_##SUF(const state_##SUF *a, const state_##SUF *b)                   \
    {                                                                                          \
        const size_t np = (size_t)(a->n_obj * (a->n_obj + 1) / 2), n = a->n;                   \
        return !memcmp(a->param, b->param, n * sizeof(T)) &&                                   \
               !memcmp(a->m, b->m, n * sizeof(T)) && !memcmp(a->v, b->v, n * sizeof(T)) &&     \
               !memcmp(a->fisher, b->fisher, np * n * sizeof(T));                              \
    }                                                                                          \
    static void fill_rows_##SUF(state_##SUF *s, const double *lam)                             \
    {                                                                                          \
        for (size_t e = 0; e < (size_t)s->n_obj * s->n; e++) s->rows[e] = (T)grad_value(e);   \
        for (size_t e = 0; e < s->n; e++) {                                                    \
            T d = (T)lam[0] * s->rows[e];                                                      \
            for (int k = 1; k < s->n_obj; k++) d = d + (T)lam[k] * s->rows[(size_t)k * s->n + e]; \
            s->dir[e] = d;                                                                     \
        }                                                                                      \
    }                                                                                          \
    static int kernel_##SUF(const cm_madam_config *cfg, const cm_exec_config *exec,            \
                            int64_t step, state_##SUF *s, int n_rows, const T *rows,           \
                            int given_dir, const double *rw, const plan_t *pl)                 \
    {                                                                                          \
        return KERNEL(cfg, exec, step, s->n, s->n_obj, n_rows, s->param, rows,                 \
                      given_dir ? s->dir : NULL, rw, s->fisher, pl->a, pl->b, pl->decay,       \
                      pl->gain, pl->weight, s->m, s->v);                                       \
    }

DEFINE_TYPED(float, sqrtf, f32, cm_madam_step_f32)
DEFINE_TYPED(double, sqrt, f64, cm_madam_step_f64)

/* A preference for step t: a point of the simplex moving with t; an affine one (a negative
 * entry, as IMTL-G's weights) at t == 5 when C >= 2. */
static void preference(int n_obj, int64_t t, double *lam)
{
    double s = 0.0;
    for (int i = 0; i < n_obj; i++) {
        lam[i] = 1.0 + sin(0.7 * (double)t + 1.3 * i);
        s += lam[i];
    }
    for (int i = 0; i < n_obj; i++) lam[i] /= s;
    if (t == 5 && n_obj >= 2) {
        lam[0] += 0.4;
        lam[1] -= 0.4;
    }
}

/* ------------------------------------------------------------------ 1. full pairs vs reference */
#define TEST_FULL(SUF)                                                                         \
    static void test_full_##SUF(void)                                                          \
    {                                                                                          \
        /* 1..4: the fused path (with variant 3, a given d: the tiled one); 5: tiled */        \
        static const int objs[5] = {1, 2, 3, 4, 5};                                            \
        for (int oi = 0; oi < 5; oi++)                                                         \
            for (int variant = 0; variant < 4; variant++) {                                    \
                const int C = objs[oi];                                                        \
                const size_t n = 8229; /* two full tiles (4096) and a partial one */                  \
                cm_madam_config cfg;                                                           \
                cm_madam_config_default(&cfg);                                                 \
                cfg.lr = 1e-2;                                                                 \
                cfg.rampup = variant & 1 ? 0.4 : 1.0;                                          \
                cfg.weight_decay = variant & 2 ? 0.1 : 0.0;                                    \
                const int given = variant == 3;                                                \
                state_##SUF s, ref;                                                            \
                state_init_##SUF(&s, n, C);                                                    \
                state_copy_##SUF(&ref, &s);                                                    \
                int ok = 1;                                                                    \
                for (int64_t t = 1; t <= 7; t++) {                                             \
                    double lam[MAX_OBJ];                                                       \
                    plan_t pl;                                                                 \
                    preference(C, t, lam);                                                     \
                    fill_rows_##SUF(&s, lam);                                                  \
                    memcpy(ref.rows, s.rows, (size_t)C * n * sizeof(*s.rows));                 \
                    memcpy(ref.dir, s.dir, n * sizeof(*s.dir));                                \
                    CHECK_INT_EQ(cm_madam_plan_full(C, cfg.beta2, t, lam, pl.a, pl.b,          \
                                                    pl.decay, pl.gain, pl.weight), CM_OK);     \
                    CHECK_INT_EQ(kernel_##SUF(&cfg, NULL, t, &s, C, s.rows, given, lam, &pl),  \
                                 CM_OK);                                                       \
                    ref_step_##SUF(&cfg, t, n, C, C, ref.param, ref.rows,                      \
                                   given ? ref.dir : NULL, lam, ref.fisher, &pl, ref.m,        \
                                   ref.v);                                                     \
                    ok = ok && state_equal_##SUF(&s, &ref);                                    \
                }                                                                              \
                CHECKF(ok, #SUF " full pairs C=%d variant %d differs from the reference", C,   \
                       variant);                                                               \
                int finite = 1;                                                                \
                for (size_t e = 0; e < n; e++) finite = finite && isfinite(s.param[e]);        \
                CHECK(finite);                                                                 \
                state_free_##SUF(&s);                                                          \
                state_free_##SUF(&ref);                                                        \
            }                                                                                  \
    }
TEST_FULL(f32)
TEST_FULL(f64)

/* ------------------------------------------------------------------ 2. a sampled plan */
#define TEST_SAMPLED(SUF, T)                                                                   \
    static void test_sampled_##SUF(void)                                                       \
    {                                                                                          \
        const int C = 4, np = 10;                                                              \
        const size_t n = 700;                                                                  \
        cm_madam_config cfg;                                                                   \
        cm_madam_config_default(&cfg);                                                         \
        state_##SUF s, ref;                                                                    \
        state_init_##SUF(&s, n, C);                                                            \
        /* a non-zero F to start from */                                                       \
        for (size_t e = 0; e < (size_t)np * n; e++) s.fisher[e] = (T)(1e-3 * unif());           \
        state_copy_##SUF(&ref, &s);                                                            \
        double lam[4] = {0.1, 0.2, 0.3, 0.4};                                                  \
        fill_rows_##SUF(&s, lam);                                                              \
        memcpy(ref.dir, s.dir, n * sizeof(T));                                                 \
        /* objectives 1 and 3 sampled: rows 0, 1 of a (2, n) array hold g_1, g_3 */            \
        T *sub = xmalloc(2 * n * sizeof(T));                                                   \
        memcpy(sub, s.rows + n, n * sizeof(T));                                                \
        memcpy(sub + n, s.rows + 3 * n, n * sizeof(T));                                        \
        plan_t pl;                                                                             \
        for (int p = 0; p < np; p++) {                                                         \
            pl.a[p] = pl.b[p] = -1;                                                            \
            pl.decay[p] = 0.5;                                                                 \
            pl.gain[p] = 0.25;                                                                 \
            pl.weight[p] = 0.1 * (p + 1);                                                      \
        }                                                                                      \
        const int p11 = cm_madam_pair_index(C, 1, 1), p13 = cm_madam_pair_index(C, 3, 1);      \
        const int p33 = cm_madam_pair_index(C, 3, 3);                                          \
        CHECK_INT_EQ(p11, 4);                                                                  \
        CHECK_INT_EQ(p13, 6);                                                                  \
        CHECK_INT_EQ(p33, 9);                                                                  \
        pl.a[p11] = 0, pl.b[p11] = 0;                                                          \
        pl.a[p13] = 0, pl.b[p13] = 1;                                                          \
        pl.a[p33] = 1, pl.b[p33] = 1;                                                          \
        pl.decay[p13] = 0.9;                                                                   \
        pl.gain[p13] = 1.0 / 6.0;                                                              \
        CHECK_INT_EQ(cm_madam_step_##SUF(&cfg, NULL, 3, n, C, 2, s.param, sub, s.dir, NULL,     \
                                         s.fisher, pl.a, pl.b, pl.decay, pl.gain, pl.weight,   \
                                         s.m, s.v),                                            \
                     CM_OK);                                                                   \
        ref_step_##SUF(&cfg, 3, n, C, 2, ref.param, sub, ref.dir, NULL, ref.fisher, &pl, ref.m, \
                       ref.v);                                                                 \
        CHECK(state_equal_##SUF(&s, &ref));                                                    \
        int untouched = 1, moved = 1;                                                          \
        state_##SUF before;                                                                    \
        state_copy_##SUF(&before, &s);                                                         \
        CHECK_INT_EQ(cm_madam_step_##SUF(&cfg, NULL, 4, n, C, 2, s.param, sub, s.dir, NULL,     \
                                         s.fisher, pl.a, pl.b, pl.decay, pl.gain, pl.weight,   \
                                         s.m, s.v),                                            \
                     CM_OK);                                                                   \
        for (int p = 0; p < np; p++) {                                                         \
            const int same = !memcmp(s.fisher + (size_t)p * n, before.fisher + (size_t)p * n,  \
                                     n * sizeof(T));                                           \
            if (pl.a[p] < 0) untouched = untouched && same;                                    \
            else moved = moved && !same;                                                       \
        }                                                                                      \
        CHECK(untouched);                                                                      \
        CHECK(moved);                                                                          \
        free(sub);                                                                             \
        state_free_##SUF(&s);                                                                  \
        state_free_##SUF(&ref);                                                                \
        state_free_##SUF(&before);                                                             \
    }
TEST_SAMPLED(f32, float)
TEST_SAMPLED(f64, double)

/* ------------------------------------------------------------------ 3. the clamp */
static void test_clamp(void)
{
    /* C = 2, F = (1, 1, 1) per element, weights (1, -3, 1): C_lam = -1 -> clamped to 0, so with
     * r = 1, M = eps and u = d / eps. */
    const size_t n = 5;
    double param[5], m[5] = {0}, v[5] = {0}, fisher[15], dir[5];
    for (size_t e = 0; e < n; e++) {
        param[e] = 0.0;
        dir[e] = 1e-6 * (double)(e + 1);
        fisher[e] = 1.0;
        fisher[n + e] = 1.0;
        fisher[2 * n + e] = 1.0;
    }
    int a[3] = {-1, -1, -1}, b[3] = {-1, -1, -1};
    double dec[3] = {1, 1, 1}, gain[3] = {0, 0, 0}, w[3] = {1.0, -3.0, 1.0};
    cm_madam_config cfg;
    cm_madam_config_default(&cfg);
    cfg.beta1 = 0.0; /* m = u */
    cfg.beta2 = 0.0; /* v = u^2 */
    cfg.eps = 1e-3;
    CHECK_INT_EQ(cm_madam_step_f64(&cfg, NULL, 1, n, 2, 0, param, NULL, dir, NULL, fisher, a, b,
                                   dec, gain, w, m, v),
                 CM_OK);
    int ok = 1;
    for (size_t e = 0; e < n; e++) {
        const double u = dir[e] / (0.0 + 1.0 * (0.0 + cfg.eps));
        ok = ok && m[e] == u && v[e] == u * u;
    }
    CHECK(ok);
}

/* ------------------------------------------------------------------ 4. threads and builds */
#define TEST_THREADS(SUF)                                                                      \
    static void test_threads_##SUF(void)                                                       \
    {                                                                                          \
        const int C = 3;                                                                       \
        const size_t n = 3 * 4096 + 77;                                                         \
        double lam[3] = {0.5, 0.3, 0.2};                                                       \
        plan_t pl;                                                                             \
        CHECK_INT_EQ(cm_madam_plan_full(C, 0.999, 2, lam, pl.a, pl.b, pl.decay, pl.gain,       \
                                        pl.weight),                                            \
                     CM_OK);                                                                   \
        cm_madam_config cfg;                                                                   \
        cm_madam_config_default(&cfg);                                                         \
        cfg.rampup = 0.7;                                                                      \
        state_##SUF base;                                                                      \
        state_init_##SUF(&base, n, C);                                                         \
        fill_rows_##SUF(&base, lam);                                                           \
        state_##SUF runs[4];                                                                   \
        for (int k = 0; k < 4; k++) {                                                          \
            cm_exec_config ex = exec_with(k == 0 ? 1 : k == 1 ? 2 : 0, 1000, k == 3);          \
            state_copy_##SUF(&runs[k], &base);                                                 \
            for (int64_t t = 1; t <= 2; t++)                                                   \
                CHECK_INT_EQ(kernel_##SUF(&cfg, &ex, t, &runs[k], C, runs[k].rows, 0, lam,     \
                                          &pl),                                                \
                             CM_OK);                                                           \
        }                                                                                      \
        for (int k = 1; k < 4; k++)                                                            \
            CHECKF(state_equal_##SUF(&runs[0], &runs[k]), #SUF " run %d differs", k);          \
        for (int k = 0; k < 4; k++) state_free_##SUF(&runs[k]);                                \
        state_free_##SUF(&base);                                                               \
    }
TEST_THREADS(f32)
TEST_THREADS(f64)

/* ------------------------------------------------------------------ 5. status codes */
static void test_status(void)
{
    const int C = 2;
    const size_t n = 4;
    double param[4] = {1, 2, 3, 4}, m[4] = {0}, v[4] = {0}, fisher[12] = {0}, rows[8], dir[4];
    for (int e = 0; e < 8; e++) rows[e] = 0.1 * (e + 1);
    for (int e = 0; e < 4; e++) dir[e] = 0.5;
    double lam[2] = {0.5, 0.5};
    plan_t pl;
    CHECK_INT_EQ(cm_madam_plan_full(C, 0.999, 1, lam, pl.a, pl.b, pl.decay, pl.gain, pl.weight),
                 CM_OK);
    cm_madam_config cfg;
    cm_madam_config_default(&cfg);
    double snap[4];
    memcpy(snap, param, sizeof snap);

#define STEP_WITH(CFG, STEP, NOBJ, NROWS, ROWS, DIR, RW, F, A, B, DEC, GAIN, W, M, V)             \
    cm_madam_step_f64(CFG, NULL, STEP, n, NOBJ, NROWS, param, ROWS, DIR, RW, F, A, B, DEC, GAIN, \
                      W, M, V)
    CHECK_INT_EQ(STEP_WITH(NULL, 1, C, C, rows, NULL, lam, fisher, pl.a, pl.b, pl.decay, pl.gain,
                           pl.weight, m, v), CM_ERR_NULL);
    CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, rows, NULL, NULL, fisher, pl.a, pl.b, pl.decay,
                           pl.gain, pl.weight, m, v), CM_ERR_NULL);
    CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, NULL, dir, NULL, fisher, pl.a, pl.b, pl.decay,
                           pl.gain, pl.weight, m, v), CM_ERR_NULL);
    CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, rows, NULL, lam, NULL, pl.a, pl.b, pl.decay, pl.gain,
                           pl.weight, m, v), CM_ERR_NULL);
    CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, rows, NULL, lam, fisher, pl.a, pl.b, pl.decay, pl.gain,
                           pl.weight, m, NULL), CM_ERR_NULL);
    CHECK_INT_EQ(STEP_WITH(&cfg, 1, 0, 0, rows, dir, lam, fisher, pl.a, pl.b, pl.decay, pl.gain,
                           pl.weight, m, v), CM_ERR_SIZE);
    CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, 3, rows, NULL, lam, fisher, pl.a, pl.b, pl.decay, pl.gain,
                           pl.weight, m, v), CM_ERR_SIZE);
    CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, 0, NULL, NULL, lam, fisher, pl.a, pl.b, pl.decay, pl.gain,
                           pl.weight, m, v), CM_ERR_SIZE);
    /* a pair reading row 1 of a one-row array; half-specified rows */
    CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, 1, rows, dir, lam, fisher, pl.a, pl.b, pl.decay, pl.gain,
                           pl.weight, m, v), CM_ERR_SIZE);
    {
        plan_t bad = pl;
        bad.b[0] = -1;
        CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, rows, NULL, lam, fisher, bad.a, bad.b, bad.decay,
                               bad.gain, bad.weight, m, v), CM_ERR_SIZE);
        bad = pl;
        bad.decay[1] = 1.5;
        CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, rows, NULL, lam, fisher, bad.a, bad.b, bad.decay,
                               bad.gain, bad.weight, m, v), CM_ERR_HYPER);
        bad = pl;
        bad.gain[2] = -0.1;
        CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, rows, NULL, lam, fisher, bad.a, bad.b, bad.decay,
                               bad.gain, bad.weight, m, v), CM_ERR_HYPER);
        bad = pl;
        bad.weight[0] = NAN;
        CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, rows, NULL, lam, fisher, bad.a, bad.b, bad.decay,
                               bad.gain, bad.weight, m, v), CM_ERR_HYPER);
    }
    {
        double badlam[2] = {0.5, NAN};
        CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, rows, NULL, badlam, fisher, pl.a, pl.b, pl.decay,
                               pl.gain, pl.weight, m, v), CM_ERR_HYPER);
    }
    const double bad_values[3] = {-1.0, NAN, INFINITY};
    for (int k = 0; k < 3; k++) {
        for (int field = 0; field < 6; field++) {
            cm_madam_config c2 = cfg;
            double *f = field == 0 ? &c2.lr : field == 1 ? &c2.beta1 : field == 2 ? &c2.beta2
                      : field == 3 ? &c2.eps : field == 4 ? &c2.weight_decay : &c2.rampup;
            *f = bad_values[k];
            CHECK_INT_EQ(STEP_WITH(&c2, 1, C, C, rows, NULL, lam, fisher, pl.a, pl.b, pl.decay,
                                   pl.gain, pl.weight, m, v), CM_ERR_HYPER);
        }
    }
    {
        cm_madam_config c2 = cfg;
        c2.beta2 = 1.0;
        CHECK_INT_EQ(STEP_WITH(&c2, 1, C, C, rows, NULL, lam, fisher, pl.a, pl.b, pl.decay,
                               pl.gain, pl.weight, m, v), CM_ERR_HYPER);
        c2 = cfg;
        c2.rampup = 1.0 + 1e-12;
        CHECK_INT_EQ(STEP_WITH(&c2, 1, C, C, rows, NULL, lam, fisher, pl.a, pl.b, pl.decay,
                               pl.gain, pl.weight, m, v), CM_ERR_HYPER);
    }
    CHECK_INT_EQ(STEP_WITH(&cfg, 0, C, C, rows, NULL, lam, fisher, pl.a, pl.b, pl.decay, pl.gain,
                           pl.weight, m, v), CM_ERR_STEP);
    int untouched = !memcmp(param, snap, sizeof snap);
    for (int e = 0; e < 4; e++) untouched = untouched && m[e] == 0.0 && v[e] == 0.0;
    for (int e = 0; e < 12; e++) untouched = untouched && fisher[e] == 0.0;
    CHECK(untouched);
    /* n == 0: a no-op that still validates */
    CHECK_INT_EQ(cm_madam_step_f64(&cfg, NULL, 1, 0, C, C, param, rows, NULL, lam, fisher, pl.a,
                                   pl.b, pl.decay, pl.gain, pl.weight, m, v),
                 CM_OK);
    CHECK(!memcmp(param, snap, sizeof snap));
    CHECK_INT_EQ(STEP_WITH(&cfg, 1, C, C, rows, NULL, lam, fisher, pl.a, pl.b, pl.decay, pl.gain,
                           pl.weight, m, v), CM_OK);
    CHECK(memcmp(param, snap, sizeof snap) != 0);
#undef STEP_WITH
}

/* ------------------------------------------------------------------ helpers */
static void test_helpers(void)
{
    CHECK_INT_EQ(cm_madam_n_pairs(1), 1);
    CHECK_INT_EQ(cm_madam_n_pairs(8), 36);
    CHECK_INT_EQ(cm_madam_n_pairs(0), -1);
    int ok = 1, p = 0;
    for (int i = 0; i < 6; i++)
        for (int j = i; j < 6; j++, p++)
            ok = ok && cm_madam_pair_index(6, i, j) == p && cm_madam_pair_index(6, j, i) == p;
    CHECK(ok);
    CHECK_INT_EQ(cm_madam_pair_index(3, 3, 0), -1);
    CHECK_INT_EQ(cm_madam_pair_index(3, -1, 0), -1);

    double lam[3] = {0.2, 0.3, 0.5};
    plan_t pl;
    CHECK_INT_EQ(cm_madam_plan_full(3, 0.9, 2, lam, pl.a, pl.b, pl.decay, pl.gain, pl.weight),
                 CM_OK);
    const double bc = 1.0 - 0.9 * 0.9;
    CHECK(pl.a[1] == 0 && pl.b[1] == 1 && pl.decay[1] == 0.9 && pl.gain[1] == 1.0 - 0.9);
    CHECK(pl.weight[0] == 1.0 * 0.2 * 0.2 / bc);
    CHECK(pl.weight[4] == 2.0 * 0.3 * 0.5 / bc);
    CHECK_INT_EQ(cm_madam_plan_full(3, 1.0, 2, lam, pl.a, pl.b, pl.decay, pl.gain, pl.weight),
                 CM_ERR_HYPER);
    CHECK_INT_EQ(cm_madam_plan_full(3, 0.9, 0, lam, pl.a, pl.b, pl.decay, pl.gain, pl.weight),
                 CM_ERR_STEP);
    CHECK_INT_EQ(cm_madam_plan_full(0, 0.9, 1, lam, pl.a, pl.b, pl.decay, pl.gain, pl.weight),
                 CM_ERR_SIZE);
    CHECK_INT_EQ(cm_madam_plan_full(3, 0.9, 1, NULL, pl.a, pl.b, pl.decay, pl.gain, pl.weight),
                 CM_ERR_NULL);

    cm_madam_config cfg;
    cm_madam_config_default(&cfg);
    CHECK(cfg.lr == 1e-3 && cfg.beta1 == 0.9 && cfg.beta2 == 0.999 && cfg.eps == 1e-8 &&
          cfg.weight_decay == 0.0 && cfg.rampup == 1.0);
    cm_madam_config_default(NULL); /* no crash */
}

int main(void)
{
    test_full_f32();
    test_full_f64();
    test_sampled_f32();
    test_sampled_f64();
    test_clamp();
    test_threads_f32();
    test_threads_f64();
    test_status();
    test_helpers();
    return th_summary();
}
