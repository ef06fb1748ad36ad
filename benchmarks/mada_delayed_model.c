/* mada_delayed_model.c -- how fast can a pass with the memory traffic of MADA's fused
 * hyper_delay step (cmadam/src/mada_impl.h, mada_fused_batch) go, against Adam's step, in one
 * process, rounds alternated? Not part of the package; it is the measurement docs/mada.md
 * ("5. Speed") and docs/benchmarks.md quote for item 4 of issue 16.
 *
 * Kernels, float32, one parallel loop each (static schedule, vectorised, no FMA as the core):
 *   adam     Adam's update as madam computes it: read p g m v, write p m v        (7 elements)
 *   streams  the delayed step's streams with no arithmetic beyond one add per array: read
 *            p g m v1 v2 vbar n mL g1 g2, write p m v2 vbar n mL g2 in place      (17 elements)
 *   ops      streams + the IEEE square roots and divisions the delayed step must do
 *            (2 and 5 per element, mada_arith_floor.c), on values that depend on the loads
 *   adam-ops Adam's update with MADA's four extra divisions and one extra square root (the
 *            frozen update's mandated operations, on Adam's 7 elements)
 *   packed   streams' 17 elements in 5 arrays instead of 10: (m, vbar, n, mL) interleaved in
 *            one array, (v, g) of each ring slot in one array (a layout madam does not use)
 *   streams16 streams with v updated in place: 16 elements, as if v_{t-2} were recomputed
 *            from v_{t-1} instead of read (the one array a delayed rule could drop)
 *   blocked  streams in blocks of 64 elements (an inner simd loop per block)
 *   prefetched blocked, each block first prefetching the ten arrays 512 elements (2 KiB) on
 * All arrays are written before timing (no zero pages). Prints ms per pass, the ratio to adam
 * of each, and GB/s at the counted elements.
 *
 *   gcc -O3 -march=native -fopenmp -ffp-contract=off -fno-math-errno -std=c11 \
 *       benchmarks/mada_delayed_model.c -o /tmp/mdm -lm
 *   /tmp/mdm 1e7                 (n; OMP_NUM_THREADS as for madam, default 2)
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUNDS 15
enum { P, G, M, V1, V2, VBAR, N, ML, G1, G2, NARR };

/* Adam's update; with extra, also MADA's four extra divisions and one extra square root. */
static void adam(long long n, float *restrict *a, int extra)
{
    float *restrict p = a[P], *restrict m = a[M], *restrict v = a[V1];
    const float *restrict g = a[G];
#pragma omp parallel for simd schedule(static)
    for (long long i = 0; i < n; i++) {
        const float mm = 0.9f * m[i] + 0.1f * g[i];
        const float vv = 0.999f * v[i] + 0.001f * (g[i] * g[i]);
        const float d1 = sqrtf(vv) / 0.7f + 1e-8f;
        float step = 1e-3f * (mm / d1);
        if (extra) {
            const float w = (vv + 3.0f * mm) / 7.0f, d2 = sqrtf(w + 1.0f) * 1.1f;
            step = step + 2e-3f * (w / d1) - 1.0f / (d1 * d2 + 1.0f);
        }
        m[i] = mm;
        v[i] = vv;
        p[i] = p[i] - step;
    }
}

/* One element of the passes below: a macro, so that the plain loop and the blocked one share
 * it. mode 1 adds the delayed step's 2 square roots and 5 divisions. */
#define DELAYED_ELEMENT(i)                                                                     \
    do {                                                                                       \
        const float x = g[i] + v_in[i] + g1[i] + v2_weight * v2[i] + g2[i];                    \
        float y = x;                                                                           \
        if (mode == 1) {                                                                       \
            const float d1 = sqrtf(v_in[i]) / 0.7f + 1e-8f, d2 = sqrtf(v2[i]) * 1.1f;          \
            const float inv = 1.0f / (d1 * d2 + 1.0f);                                         \
            y = x / d1 + vbar[i] / d1 + inv + (x + vbar[i]) / 7.0f;                            \
        }                                                                                      \
        total += (double)y;                                                                    \
        p[i] = p[i] + 1e-3f * y;                                                               \
        m[i] = m[i] + 1e-3f * x;                                                               \
        v_out[i] = v_in[i] + 1e-3f * y;                                                        \
        vbar[i] = vbar[i] + 1e-3f * x;                                                         \
        nn[i] = nn[i] + 1e-3f * y;                                                             \
        ml[i] = ml[i] + 1e-3f * x;                                                             \
        g2[i] = g[i];                                                                          \
    } while (0)

#define BLOCK 64     /* elements of the blocked loop: 4 cache lines per array */
#define AHEAD 512    /* elements ahead that mode 4 prefetches (2 KiB per array) */

/* mode 0: one add per array; 1: plus 2 sqrt and 5 divisions; 2: as 0 with v updated in place
 * (v_{t-2} not read: 16 elements); 3: as 0 in blocks of BLOCK; 4: as 3, each block first
 * prefetching all ten arrays AHEAD elements on. v_in and v_out are not restrict: in mode 2
 * they are the same array (each element is read before it is written, so the simd loop stays
 * valid). */
static double streams(long long n, float *restrict *a, int mode)
{
    float *restrict p = a[P], *restrict m = a[M], *restrict vbar = a[VBAR], *restrict nn = a[N];
    float *restrict ml = a[ML], *restrict g2 = a[G2];
    const float *restrict g = a[G], *restrict g1 = a[G1];
    const float *v_in = a[V1];
    float *v_out = mode == 2 ? a[V1] : a[V2];
    const float v2_weight = mode == 2 ? 0.0f : 1.0f; /* mode 2 reads no v_{t-2} */
    const float *v2 = mode == 2 ? a[G1] : a[V2];   /* a stream read anyway: no extra traffic */
    double total = 0.0;
    if (mode >= 3) {
        const float *ahead[10] = {p, g, m, v_in, v2, vbar, nn, ml, g1, g2};
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (long long b = 0; b < n; b += BLOCK) {
            if (mode == 4 && b + AHEAD + BLOCK <= n)
                for (int k = 0; k < 10; k++)
                    for (int q = 0; q < BLOCK; q += 16)
                        __builtin_prefetch(ahead[k] + b + AHEAD + q);
            const long long e = b + BLOCK < n ? b + BLOCK : n;
#pragma omp simd reduction(+ : total)
            for (long long i = b; i < e; i++) DELAYED_ELEMENT(i);
        }
        return total;
    }
#pragma omp parallel for simd schedule(static) reduction(+ : total)
    for (long long i = 0; i < n; i++) DELAYED_ELEMENT(i);
    return total;
}
#undef DELAYED_ELEMENT

/* The same 17 elements in 5 arrays: q = (m, vbar, n, mL) interleaved, s_a = (v, g) of the ring
 * slot read only, s_b = (v, g) of the slot read and rewritten; p and g as before. */
static double packed(long long n, float *restrict p, const float *restrict g, float *restrict q,
                     const float *restrict sa, float *restrict sb)
{
    double total = 0.0;
#pragma omp parallel for simd schedule(static) reduction(+ : total)
    for (long long i = 0; i < n; i++) {
        const float x = g[i] + sa[2 * i] + sa[2 * i + 1] + sb[2 * i] + sb[2 * i + 1];
        total += (double)x;
        p[i] = p[i] + 1e-3f * x;
        q[4 * i] = q[4 * i] + 1e-3f * x;
        q[4 * i + 1] = q[4 * i + 1] + 2e-3f * x;
        q[4 * i + 2] = q[4 * i + 2] + 3e-3f * x;
        q[4 * i + 3] = q[4 * i + 3] + 4e-3f * x;
        sb[2 * i] = sa[2 * i] + 1e-3f * x;
        sb[2 * i + 1] = g[i];
    }
    return total;
}

static int by_value(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    const long long n = argc > 1 ? (long long)atof(argv[1]) : 10000000;
    /* NARR arrays of n, then the packed layout's q (4 n), s_a and s_b (2 n each) */
    const int widths[NARR + 3] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 2, 2};
    float *a[NARR + 3];
    for (int k = 0; k < NARR + 3; k++) {
        const long long len = widths[k] * n;
        a[k] = aligned_alloc(64, ((size_t)len * sizeof(float) + 63) / 64 * 64);
#pragma omp parallel for schedule(static)
        for (long long i = 0; i < len; i++) a[k][i] = 0.5f + 1e-9f * (float)(i % 1000) + 0.01f * k;
    }
    enum { NK = 8 };
    const char *names[NK] = {"adam",   "streams",   "ops",     "adam-ops",
                             "packed", "streams16", "blocked", "prefetched"};
    const int elems[NK] = {7, 17, 17, 7, 17, 16, 17, 17};
    double t[NK][ROUNDS], sink = 0.0;
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < NK; k++) {
            const double t0 = omp_get_wtime();
            if (k == 0 || k == 3) adam(n, a, k == 3);
            else if (k == 4) sink += packed(n, a[P], a[G], a[NARR], a[NARR + 1], a[NARR + 2]);
            else sink += streams(n, a, k >= 6 ? k - 3 : k == 5 ? 2 : k == 2);
            t[k][r] = omp_get_wtime() - t0;
        }
    printf("n = %lld, float32, %d threads, median of %d alternated rounds\n", n,
           omp_get_max_threads(), ROUNDS);
    double med[NK];
    for (int k = 0; k < NK; k++) {
        qsort(t[k], ROUNDS, sizeof(double), by_value);
        med[k] = t[k][ROUNDS / 2];
    }
    for (int k = 0; k < NK; k++)
        printf("%-9s %8.3f ms  x adam %5.2f  %5.1f GB/s (%d elements)\n", names[k],
               1e3 * med[k], med[k] / med[0], elems[k] * 4.0 * (double)n / med[k] / 1e9,
               elems[k]);
    printf("(checksum %g)\n", sink + a[P][n / 2]);
    return 0;
}
