/* gram_impl.h -- type-generic body of cm_gram_scan (instantiated by gram.c via instantiate.h).
 *
 * One read of J (rows x cols, row-major) gives its Gramian in double precision, whether every
 * element is finite, and max |J|. The columns are cut into cache-sized blocks; all pairs of
 * rows of a block are multiplied while the block sits in cache, so J leaves memory once.
 *
 * Determinism: the blocks are grouped into `parts` contiguous parts, a number fixed by (rows,
 * cols) alone (gram.c), each part summed in block order into its own slice of the caller's work
 * array, and the parts summed in order at the end. Which thread runs a part changes nothing, so
 * the bits do not depend on the thread count, and every ISA build does the same IEEE operations
 * in the same order (8 fixed lanes per dot product, -ffp-contract=off). */

/* Dot product of x[0..n) and y[0..n) in double: 8 lanes, combined pairwise. float inputs are
 * widened first, so each product of two floats is exact. */
static double SFX(cm_gram_dot)(size_t n, const REAL *restrict x, const REAL *restrict y)
{
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) lane[l] += (double)x[j + l] * (double)y[j + l];
    double s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    for (; j < n; j++) s += (double)x[j] * (double)y[j];
    return s;
}

/* Four dot products x.y0 .. x.y3 at once, each summed exactly as cm_gram_dot sums it (the same
 * lanes, the same combination, the same tail): x is read once for the four. */
static void SFX(cm_gram_dot4)(size_t n, const REAL *restrict x, const REAL *restrict y0,
                              const REAL *restrict y1, const REAL *restrict y2,
                              const REAL *restrict y3, double *out)
{
    double l0[8] = {0, 0, 0, 0, 0, 0, 0, 0}, l1[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    double l2[8] = {0, 0, 0, 0, 0, 0, 0, 0}, l3[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) {
            const double xv = (double)x[j + l];
            l0[l] += xv * (double)y0[j + l];
            l1[l] += xv * (double)y1[j + l];
            l2[l] += xv * (double)y2[j + l];
            l3[l] += xv * (double)y3[j + l];
        }
    double *lanes[4] = {l0, l1, l2, l3};
    const REAL *ys[4] = {y0, y1, y2, y3};
    for (int q = 0; q < 4; q++) {
        const double *v = lanes[q];
        double s = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
        for (size_t t = j; t < n; t++) s += (double)x[t] * (double)ys[q][t];
        out[q] = s;
    }
}

/* x * 0 summed (0 iff every element is finite) and max |x| over x[0..n). */
static void SFX(cm_gram_scan_row)(size_t n, const REAL *restrict x, REAL *zero, REAL *top)
{
    REAL z = 0, m = 0;
    /* both reductions are exact in any order (z is 0 or NaN; a max), so simd may reorder them */
    _Pragma("omp simd reduction(+:z) reduction(max:m)")
    for (size_t j = 0; j < n; j++) {
        const REAL a = FABS(x[j]);
        z += x[j] * (REAL)0;
        m = a > m ? a : m;
    }
    *zero += z;
    *top = m > *top ? m : *top;
}

/* The upper triangle of one part's Gramian (rows x rows, row-major, in acc, zeroed here) over
 * the columns [lo, hi), block by block; the scan's results for the part in *zero and *top. */
static void SFX(cm_gram_part)(size_t rows, size_t cols, const REAL *jac, size_t lo, size_t hi,
                              size_t block, double *acc, REAL *zero, REAL *top)
{
    for (size_t i = 0; i < rows * rows; i++) acc[i] = 0.0;
    *zero = 0;
    *top = 0;
    for (size_t start = lo; start < hi; start += block) {
        const size_t len = hi - start < block ? hi - start : block;
        for (size_t a = 0; a < rows; a++) {
            const REAL *xa = jac + a * cols + start;
            SFX(cm_gram_scan_row)(len, xa, zero, top);
            size_t b = a;
            for (; b + 4 <= rows; b += 4) {
                double d4[4];
                const REAL *yb = jac + b * cols + start;
                SFX(cm_gram_dot4)(len, xa, yb, yb + cols, yb + 2 * cols, yb + 3 * cols, d4);
                for (int q = 0; q < 4; q++) acc[a * rows + b + (size_t)q] += d4[q];
            }
            for (; b < rows; b++)
                acc[a * rows + b] += SFX(cm_gram_dot)(len, xa, jac + b * cols + start);
        }
    }
}

static int SFX(cm_gram_scan)(const cm_exec_config *exec, size_t rows, size_t cols, const REAL *jac,
                             double *gram, double *work, size_t work_size, int *all_finite,
                             double *max_abs)
{
    if (!jac || !gram || !work || !all_finite || !max_abs) return CM_ERR_NULL;
    if (rows == 0 || cols == 0 || rows > CM_GRAM_MAX_ROWS) return CM_ERR_SIZE;
    size_t block, parts;
    cm_gram_plan(rows, cols, sizeof(REAL), &block, &parts);
    if (work_size < cm_gram_scan_workspace(rows, cols)) return CM_ERR_SIZE;
    const size_t n_blocks = (cols + block - 1) / block;
    const size_t rr = rows * rows;
    /* the per-part scan results live after the parts' Gramians in work */
    double *scan = work + parts * rr;
    const int nt = cm_loop_threads(exec, rows * cols);
    const long long n_parts = (long long)parts;
    _Pragma("omp parallel for schedule(static) num_threads(nt) if(parallel: nt > 1)")
    for (long long p = 0; p < n_parts; p++) {
        const size_t lo = (size_t)p * n_blocks / parts * block;
        size_t hi = ((size_t)p + 1) * n_blocks / parts * block;
        if (hi > cols) hi = cols;
        REAL zero, top;
        SFX(cm_gram_part)(rows, cols, jac, lo, hi, block, work + (size_t)p * rr, &zero, &top);
        scan[2 * p] = (double)zero;
        scan[2 * p + 1] = (double)top;
    }
    double zero = 0.0, top = 0.0;
    for (size_t i = 0; i < rr; i++) gram[i] = 0.0;
    for (size_t p = 0; p < parts; p++) {
        const double *acc = work + p * rr;
        for (size_t a = 0; a < rows; a++)
            for (size_t b = a; b < rows; b++) gram[a * rows + b] += acc[a * rows + b];
        zero += scan[2 * p];
        top = scan[2 * p + 1] > top ? scan[2 * p + 1] : top;
    }
    for (size_t a = 0; a < rows; a++)
        for (size_t b = 0; b < a; b++) gram[a * rows + b] = gram[b * rows + a];
    *all_finite = zero == 0.0;
    *max_abs = top;
    return CM_OK;
}
