/* fisher_read_model.c -- reading MAdam's 36 F arrays (C = 8) to form C_lam = sum_p F_p, in the
 * tiled order of MAdam's step (cmadam/src/madam_impl.h, madam_tile: per tile, the pairs one
 * after another) and in flat passes over 6 arrays at a time (more bytes: the sum is read and
 * written once per pass), beside a triad, rounds alternated in one process. Not part of the
 * package: it is the measurement behind a route docs/benchmarks.md notes and leaves open for
 * the pair-sampling step (the flat passes need an n-element workspace the C API does not take).
 *
 * Kernels (float32, static schedule over both threads):
 *   tile T [pf]  per tile of T elements: acc = 0; acc += F_p for p = 0 .. 35 (with pf, the next
 *                pair's segment software-prefetched, as madam_tile does); out += acc
 *   group6 T     the same, six pairs per loop
 *   flat 6x6     six passes out += F_p + ... + F_{p+5}: 48 elements moved against the tiles' 38
 *   triad        a = b + s c (12 bytes per element, STREAM's count)
 *
 *   gcc -O3 -march=native -fopenmp -std=c11 benchmarks/fisher_read_model.c -o /tmp/frm
 *   /tmp/frm 1e7           (n; OMP_NUM_THREADS as for madam, default 2)
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define NP 36
#define TMAX 16384
#define RUN 64 /* elements between prefetches, as MADAM_PREFETCH_RUN */
#define ROUNDS 11

static float *F[NP], *out, *ta, *tb, *tc;
static long long n;

static void tiled(long long T, int prefetch, int group)
{
    const long long n_tiles = (n + T - 1) / T;
#pragma omp parallel for schedule(static)
    for (long long t = 0; t < n_tiles; t++) {
        const long long lo = t * T, len = n - lo < T ? n - lo : T;
        float acc[TMAX];
        for (long long e = 0; e < len; e++) acc[e] = 0.0f;
        if (group == 1) {
            for (int p = 0; p < NP; p++) {
                const float *f = F[p] + lo, *next = p + 1 < NP ? F[p + 1] + lo : f;
                for (long long e0 = 0; e0 < len; e0 += RUN) {
                    const long long e1 = e0 + RUN < len ? e0 + RUN : len;
                    if (prefetch)
                        for (long long q = e0; q < e1; q += 16) __builtin_prefetch(next + q, 0, 3);
#pragma omp simd
                    for (long long e = e0; e < e1; e++) acc[e] += f[e];
                }
            }
        } else {
            for (int p = 0; p < NP; p += 6) {
                const float *f0 = F[p] + lo, *f1 = F[p + 1] + lo, *f2 = F[p + 2] + lo;
                const float *f3 = F[p + 3] + lo, *f4 = F[p + 4] + lo, *f5 = F[p + 5] + lo;
#pragma omp simd
                for (long long e = 0; e < len; e++)
                    acc[e] = acc[e] + f0[e] + f1[e] + f2[e] + f3[e] + f4[e] + f5[e];
            }
        }
        for (long long e = 0; e < len; e++) out[lo + e] += acc[e];
    }
}

static void flat(void)
{
    for (int p = 0; p < NP; p += 6) {
        const float *f0 = F[p], *f1 = F[p + 1], *f2 = F[p + 2], *f3 = F[p + 3], *f4 = F[p + 4];
        const float *f5 = F[p + 5];
#pragma omp parallel for simd schedule(static)
        for (long long i = 0; i < n; i++)
            out[i] += f0[i] + f1[i] + f2[i] + f3[i] + f4[i] + f5[i];
    }
}

static void triad(void)
{
#pragma omp parallel for simd schedule(static)
    for (long long i = 0; i < n; i++) ta[i] = tb[i] + 0.5f * tc[i];
}

static int by_value(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static float *filled(float value)
{
    float *a = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) / 64 * 64);
#pragma omp parallel for schedule(static)
    for (long long i = 0; i < n; i++) a[i] = value;
    return a;
}

int main(int argc, char **argv)
{
    n = argc > 1 ? (long long)atof(argv[1]) : 10000000;
    for (int p = 0; p < NP; p++) F[p] = filled(1e-3f * (float)p);
    out = filled(0.0f);
    ta = filled(1.0f);
    tb = filled(2.0f);
    tc = filled(3.0f);
    enum { NK = 6 };
    const char *names[NK] = {"tile 4096 pf", "tile 4096", "tile 16384", "group6 16384",
                             "flat 6x6", "triad"};
    const double elems[NK] = {NP + 2, NP + 2, NP + 2, NP + 2, NP + 12, 3};
    double t[NK][ROUNDS];
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < NK; k++) {
            const double t0 = omp_get_wtime();
            if (k == 0) tiled(4096, 1, 1);
            else if (k == 1) tiled(4096, 0, 1);
            else if (k == 2) tiled(16384, 0, 1);
            else if (k == 3) tiled(16384, 0, 6);
            else if (k == 4) flat();
            else triad();
            t[k][r] = omp_get_wtime() - t0;
        }
    printf("n = %lld, float32, %d threads, median of %d alternated rounds\n", n,
           omp_get_max_threads(), ROUNDS);
    for (int k = 0; k < NK; k++) {
        qsort(t[k], ROUNDS, sizeof(double), by_value);
        const double med = t[k][ROUNDS / 2];
        printf("%-13s %8.2f ms  %5.1f GB/s (%.0f elements)\n", names[k], 1e3 * med,
               elems[k] * 4.0 * (double)n / med / 1e9, elems[k]);
    }
    printf("(checksum %g)\n", (double)out[n / 3]);
    return 0;
}
