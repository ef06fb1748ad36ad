/* madam_prefetch_model.c -- a model of the pair loop of MAdam's tiled step (cmadam/src/
 * madam_impl.h, madam_tile) with and without the software prefetch of the next pair's F
 * segment, alternated round by round in one process. Not part of the package; it is the
 * measurement docs/madam.md ("The kernel") quotes.
 *
 * Per tile of 4096 elements: for each of the P = C (C + 1) / 2 pairs (a, b),
 * F_p = 0.99 F_p + 0.01 g_a g_b and c = c + 0.3 F_p; then p = p - 1e-3 c. The bytes counted
 * are (2 P + C + 2) x 4 per element (F read and written, the rows read, p read and written).
 *
 *   gcc -O3 -march=native -fopenmp -std=c11 benchmarks/madam_prefetch_model.c -o /tmp/pfm
 *   /tmp/pfm 1e6 8; /tmp/pfm 1e7 8        (n, C; OMP_NUM_THREADS as for madam, default 2)
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define TILE 4096
#define RUN 64 /* elements between the prefetches, as MADAM_PREFETCH_RUN */
#define ROUNDS 15

static void pair_loop(int prefetch, size_t n, int C, float *F, const float *rows, float *param)
{
    const int n_pairs = C * (C + 1) / 2;
    const long long n_tiles = (long long)((n + TILE - 1) / TILE);
#pragma omp parallel for schedule(static)
    for (long long t = 0; t < n_tiles; t++) {
        const size_t lo = (size_t)t * TILE, len = n - lo < TILE ? n - lo : TILE;
        float c[TILE];
        for (size_t e = 0; e < len; e++) c[e] = 0.0f;
        int p = 0;
        for (int a = 0; a < C; a++)
            for (int b = a; b < C; b++, p++) {
                float *f = F + (size_t)p * n + lo;
                const float *ga = rows + (size_t)a * n + lo, *gb = rows + (size_t)b * n + lo;
                const float *next = p + 1 < n_pairs ? f + n : f;
                for (size_t e0 = 0; e0 < len; e0 += RUN) {
                    const size_t e1 = e0 + RUN < len ? e0 + RUN : len;
                    if (prefetch)
                        for (size_t q = e0; q < e1; q += 16) __builtin_prefetch(next + q, 1, 3);
#pragma omp simd
                    for (size_t e = e0; e < e1; e++) {
                        const float x = 0.99f * f[e] + 0.01f * (ga[e] * gb[e]);
                        f[e] = x;
                        c[e] = c[e] + 0.3f * x;
                    }
                }
            }
        for (size_t e = 0; e < len; e++) param[lo + e] -= 1e-3f * c[e];
    }
}

static int by_value(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    const size_t n = argc > 1 ? (size_t)atof(argv[1]) : 1000000;
    const int C = argc > 2 ? atoi(argv[2]) : 8;
    const size_t n_pairs = (size_t)C * (size_t)(C + 1) / 2;
    float *F = malloc(n_pairs * n * sizeof *F), *rows = malloc((size_t)C * n * sizeof *rows);
    float *param = malloc(n * sizeof *param);
    if (!F || !rows || !param) return 2;
    for (size_t i = 0; i < n_pairs * n; i++) F[i] = 1.0f;
    for (size_t i = 0; i < (size_t)C * n; i++) rows[i] = 0.5f;
    for (size_t i = 0; i < n; i++) param[i] = 0.0f;
    double plain[ROUNDS], fetched[ROUNDS];
    pair_loop(0, n, C, F, rows, param);
    pair_loop(1, n, C, F, rows, param);
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = omp_get_wtime();
        pair_loop(0, n, C, F, rows, param);
        plain[r] = omp_get_wtime() - t0;
        t0 = omp_get_wtime();
        pair_loop(1, n, C, F, rows, param);
        fetched[r] = omp_get_wtime() - t0;
    }
    qsort(plain, ROUNDS, sizeof plain[0], by_value);
    qsort(fetched, ROUNDS, sizeof fetched[0], by_value);
    const double bytes = (2.0 * (double)n_pairs + C + 2) * (double)n * sizeof(float);
    const double a = plain[ROUNDS / 2], b = fetched[ROUNDS / 2];
    printf("n = %.0e, C = %d, %d threads: no prefetch %.2f ms (%.1f GB/s), prefetch %.2f ms "
           "(%.1f GB/s), medians of %d alternated rounds\n",
           (double)n, C, omp_get_max_threads(), a * 1e3, bytes / a / 1e9, b * 1e3, bytes / b / 1e9,
           ROUNDS);
    free(F);
    free(rows);
    free(param);
    return 0;
}
