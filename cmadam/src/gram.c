/* gram.c -- cm_gram_scan: the Gramian of J, its finiteness and max |J| in one read of J
 * (gram_impl.h, compiled per ISA by instantiate.h). */
#include <math.h>

#include "internal.h"

/* Columns per block: the block of all rows fits in ~128 KiB (L2), at least 64 and a multiple
 * of 8. Parts: at most 64 (enough to spread over the cores), at most one per block, and their
 * partial Gramians (parts * rows^2 doubles) within 32 MiB. Both depend only on the shape and
 * the element size, never on threads, so the summation order (and the bits) is fixed. */
#define CM_GRAM_MAX_ROWS ((size_t)65536)

static void cm_gram_plan(size_t rows, size_t cols, size_t elem, size_t *block, size_t *parts)
{
    size_t b = ((size_t)128 * 1024) / (rows * elem);
    b -= b % 8;
    if (b < 64) b = 64;
    const size_t n_blocks = (cols + b - 1) / b;
    size_t p = 64;
    if (p > n_blocks) p = n_blocks;
    const size_t cap = ((size_t)32 * 1024 * 1024 / sizeof(double)) / (rows * rows + 2);
    if (p > cap) p = cap;
    if (p < 1) p = 1;
    *block = b;
    *parts = p;
}

size_t cm_gram_scan_workspace(size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0 || rows > CM_GRAM_MAX_ROWS) return 0;
    /* the plan for float, which has the larger blocks and so never more parts than double */
    size_t block4, parts4, block8, parts8;
    cm_gram_plan(rows, cols, sizeof(float), &block4, &parts4);
    cm_gram_plan(rows, cols, sizeof(double), &block8, &parts8);
    const size_t parts = parts4 > parts8 ? parts4 : parts8;
    return parts * (rows * rows + 2);
}

#define CM_IMPL_HEADER "gram_impl.h"
#include "instantiate.h"

CM_DISPATCH(cm_gram_scan_f32,
            (const cm_exec_config *exec, size_t rows, size_t cols, const float *jac, double *gram,
             double *work, size_t work_size, int *all_finite, double *max_abs),
            (exec, rows, cols, jac, gram, work, work_size, all_finite, max_abs))
CM_DISPATCH(cm_gram_scan_f64,
            (const cm_exec_config *exec, size_t rows, size_t cols, const double *jac,
             double *gram, double *work, size_t work_size, int *all_finite, double *max_abs),
            (exec, rows, cols, jac, gram, work, work_size, all_finite, max_abs))
