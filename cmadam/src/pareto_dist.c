/* pareto_dist.c -- distance-based Pareto metrics: IGD, IGD+, spacing and spread
 * (formulas in cmadam_pareto.h). Per-item distances are computed in parallel into an array and
 * summed in item order, so the values do not depend on the thread count. */
#include <math.h>
#include <string.h>

#include "pareto_internal.h"

static size_t mul_sat(size_t a, size_t b)
{
    return a != 0 && b > ((size_t)-1) / a ? (size_t)-1 : a * b;
}

static int igd_common(const cm_exec_config *exec, size_t n, size_t m, const double *points,
                      size_t n_ref, const double *ref_front, int plus, double *value)
{
    if (!points || !ref_front || !value) return CM_ERR_NULL;
    int status = cm_po_check_size(n, m);
    if (status != CM_OK) return status;
    if ((status = cm_po_check_size(n_ref, m)) != CM_OK) return status;
    if (n_ref == 0) return CM_ERR_SIZE;
    if (!cm_po_all_finite(n * m, points) || !cm_po_all_finite(n_ref * m, ref_front))
        return CM_ERR_HYPER;
    if (n == 0) {
        *value = INFINITY;
        return CM_OK;
    }
    double *dist = cm_po_alloc(n_ref, sizeof *dist);
    if (!dist) return CM_ERR_SIZE;
    const int threads = cm_loop_threads(exec, mul_sat(mul_sat(n, n_ref), m));
    const long long count = (long long)n_ref;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long long r = 0; r < count; r++) {
        const double *z = ref_front + (size_t)r * m;
        double best = INFINITY;
        for (size_t i = 0; i < n; i++) {
            const double *a = points + i * m;
            double s = 0.0;
            if (plus) {
                for (size_t k = 0; k < m; k++) {
                    const double d = a[k] > z[k] ? a[k] - z[k] : 0.0;
                    s += d * d;
                }
            } else {
                for (size_t k = 0; k < m; k++) {
                    const double d = a[k] - z[k];
                    s += d * d;
                }
            }
            best = s < best ? s : best;
        }
        dist[r] = sqrt(best);
    }
    double sum = 0.0;
    for (size_t r = 0; r < n_ref; r++) sum += dist[r];
    free(dist);
    *value = sum / (double)n_ref;
    return CM_OK;
}

int cm_igd_f64(const cm_exec_config *exec, size_t n, size_t m, const double *points,
               size_t n_ref, const double *ref_front, double *value)
{
    return igd_common(exec, n, m, points, n_ref, ref_front, 0, value);
}

int cm_igd_plus_f64(const cm_exec_config *exec, size_t n, size_t m, const double *points,
                    size_t n_ref, const double *ref_front, double *value)
{
    return igd_common(exec, n, m, points, n_ref, ref_front, 1, value);
}

int cm_spacing_f64(const cm_exec_config *exec, size_t n, size_t m, const double *points,
                   double *value)
{
    if (!points || !value) return CM_ERR_NULL;
    int status = cm_po_check_size(n, m);
    if (status != CM_OK) return status;
    if (n < 2) return CM_ERR_SIZE;
    if (!cm_po_all_finite(n * m, points)) return CM_ERR_HYPER;
    double *d = cm_po_alloc(n, sizeof *d);
    if (!d) return CM_ERR_SIZE;
    const int threads = cm_loop_threads(exec, mul_sat(mul_sat(n, n), m));
    const long long count = (long long)n;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long long i = 0; i < count; i++) {
        const double *p = points + (size_t)i * m;
        double best = INFINITY;
        for (size_t j = 0; j < n; j++) {
            if (j == (size_t)i) continue;
            const double *q = points + j * m;
            double s = 0.0;
            for (size_t k = 0; k < m; k++) s += fabs(p[k] - q[k]);
            best = s < best ? s : best;
        }
        d[i] = best;
    }
    double mean = 0.0;
    for (size_t i = 0; i < n; i++) mean += d[i];
    mean /= (double)n;
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (d[i] - mean) * (d[i] - mean);
    free(d);
    *value = sqrt(ss / (double)(n - 1));
    return CM_OK;
}

static double dist2d(const double *a, const double *b)
{
    return hypot(a[0] - b[0], a[1] - b[1]);
}

int cm_spread_f64(size_t n, size_t m, const double *points, size_t n_ref,
                  const double *ref_front, double *value)
{
    if (!points || !value || (n_ref > 0 && !ref_front)) return CM_ERR_NULL;
    if (m != 2 || n < 2) return CM_ERR_SIZE;
    int status = cm_po_check_size(n, m);
    if (status != CM_OK) return status;
    if ((status = cm_po_check_size(n_ref, m)) != CM_OK) return status;
    if (!cm_po_all_finite(n * m, points) || (n_ref > 0 && !cm_po_all_finite(n_ref * m, ref_front)))
        return CM_ERR_HYPER;
    size_t *idx = cm_po_alloc(n, sizeof *idx);
    void *scratch = malloc(cm_po_sort_scratch_bytes(n));
    if (!idx || !scratch) {
        free(idx);
        free(scratch);
        return CM_ERR_SIZE;
    }
    for (size_t i = 0; i < n; i++) idx[i] = i;
    cm_po_sort(n, points, 2, NULL, 2, idx, scratch);
    double sum = 0.0;
    for (size_t t = 0; t + 1 < n; t++) sum += dist2d(points + 2 * idx[t], points + 2 * idx[t + 1]);
    const double mean = sum / (double)(n - 1);
    double dev = 0.0;
    for (size_t t = 0; t + 1 < n; t++)
        dev += fabs(dist2d(points + 2 * idx[t], points + 2 * idx[t + 1]) - mean);
    double df = 0.0, dl = 0.0;
    if (n_ref > 0) {
        size_t e1 = 0, e2 = 0; /* least f1 (ties: least f2), least f2 (ties: least f1) */
        for (size_t j = 1; j < n_ref; j++) {
            const double *q = ref_front + 2 * j, *b1 = ref_front + 2 * e1, *b2 = ref_front + 2 * e2;
            if (q[0] < b1[0] || (q[0] == b1[0] && q[1] < b1[1])) e1 = j;
            if (q[1] < b2[1] || (q[1] == b2[1] && q[0] < b2[0])) e2 = j;
        }
        df = dist2d(points + 2 * idx[0], ref_front + 2 * e1);
        dl = dist2d(points + 2 * idx[n - 1], ref_front + 2 * e2);
    }
    free(idx);
    free(scratch);
    const double den = df + dl + (double)(n - 1) * mean;
    *value = den > 0.0 ? (df + dl + dev) / den : NAN;
    return CM_OK;
}
