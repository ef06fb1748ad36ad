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
 * in the same order (-ffp-contract=off). Within a block, the dot product of a pair of rows (a, b)
 * is summed in 8 fixed lanes: lane l takes the columns j of the block with j % 8 == l, in column
 * order, starting from +0; the lanes are combined as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) +
 * (l6 + l7)), then the block's last len % 8 columns are added in order, and the block's sum is
 * added to the pair's entry of the part.
 *
 * Register tiles: that is the arithmetic of one pair; how the pairs are scheduled is free, and
 * is chosen for speed. A block's pairs are computed tile by tile: CM_GRAM_TA "x" rows against up
 * to CM_GRAM_TB "y" rows (4 x 6 in the AVX-512 build), or the upper triangle of a group of up
 * to CM_GRAM_TA rows on the diagonal. Each pair of a tile keeps its own 8 lanes in registers
 * (one zmm in the AVX-512 build: its lanes are the 8 lanes); every 8 columns the tile loads
 * each of its rows once and does one lane-wise multiply-add per pair, so a 4 x 6 tile does 24
 * of them per 10 loads. At the end of the block the pairs' lanes are combined, as many pairs at
 * once as a register has lanes, by shuffles that line up the two operands of each addition of
 * the tree (gram.c), so each pair still gets exactly the additions above. Tile shapes, the
 * order of the tiles and the grouping of pairs for the shuffles therefore differ between the
 * ISA builds without changing a bit.
 *
 * float elements are widened to double before they are multiplied, so each product is exact.
 * Hence, for float, a fused multiply-add rounds exactly as the separate add did, and the
 * AVX-512 build uses one (never for double, where it would change the bits). With 128 to 512
 * rows a float block is widened once, by its triangles, into a contiguous scratch of the thread
 * (256 KiB at most; without it, if malloc fails, the tiles widen the rows themselves: the same
 * values), which the rectangles, reading each row many times, then only load.
 *
 * The scan (whether every element is finite, max |x|) is done by the triangles on the rows they
 * load anyway: every row of a block is in one triangle, so J is read once, by the tiles. From 32
 * rows on, the next block is prefetched while this one is multiplied (its rows are short
 * segments that the hardware prefetcher does not follow). */

/* This build's vectors and tile: CM_GRAM_W doubles per register (cm_gram_v<W>d), so a pair's
 * 8 lanes take CM_GRAM_H = 8 / W registers (1 of AVX-512's 32 zmm, 2 of AVX2's 16 ymm, 4 of
 * SSE2's 16 xmm); a tile has as many pairs (CM_GRAM_TA x rows against CM_GRAM_TB y rows) as
 * the registers hold with room for one row of each (CM_GRAM_TA <= 4, CM_GRAM_TB <= 8). */
#if defined(__AVX512F__)
#define CM_GRAM_W 8
#define CM_GRAM_VD cm_gram_v8d
#define CM_GRAM_VF cm_gram_v8f
#define CM_GRAM_VI cm_gram_v8i
#define CM_GRAM_TA 4
#define CM_GRAM_TB 6
#elif defined(__AVX2__)
#define CM_GRAM_W 4
#define CM_GRAM_VD cm_gram_v4d
#define CM_GRAM_VF cm_gram_v4f
#define CM_GRAM_VI cm_gram_v4i
#define CM_GRAM_TA 2
#define CM_GRAM_TB 3
#else
#define CM_GRAM_W 2
#define CM_GRAM_VD cm_gram_v2d
#define CM_GRAM_VF cm_gram_v2f
#define CM_GRAM_VI cm_gram_v2i
#define CM_GRAM_TA 1
#define CM_GRAM_TB 3
#endif
#define CM_GRAM_H (8 / CM_GRAM_W)
/* The pairs are reduced CM_GRAM_W at a time: the CM_GRAM_TA x rows with CM_GRAM_BW y rows. The
 * accumulators of a tile, rounded up to whole such groups (the extra ones stay 0). */
#define CM_GRAM_BW (CM_GRAM_W / CM_GRAM_TA)
#define CM_GRAM_NACC ((CM_GRAM_TB + CM_GRAM_BW - 1) / CM_GRAM_BW * CM_GRAM_BW * CM_GRAM_TA * CM_GRAM_H)
/* register h of pair (a, b) of a tile */
#define CM_GRAM_ACC(a, b, h) ((((b) * CM_GRAM_TA) + (a)) * CM_GRAM_H + (h))
/* the reduction (gram.c) of the W pairs P(k, h), k < W, each of H registers */
#if CM_GRAM_W == 8
#define CM_GRAM_REDUCE(out, P)                                                                 \
    CM_GRAM_REDUCE8(out, P(0, 0), P(1, 0), P(2, 0), P(3, 0), P(4, 0), P(5, 0), P(6, 0), P(7, 0))
#elif CM_GRAM_W == 4
#define CM_GRAM_REDUCE(out, P)                                                                 \
    CM_GRAM_REDUCE4(out, P(0, 0), P(0, 1), P(1, 0), P(1, 1), P(2, 0), P(2, 1), P(3, 0), P(3, 1))
#else
#define CM_GRAM_REDUCE(out, P)                                                                 \
    CM_GRAM_REDUCE2(out, P(0, 0), P(0, 1), P(0, 2), P(0, 3), P(1, 0), P(1, 1), P(1, 2), P(1, 3))
#endif

/* Element i of the row at p, in double, and the W elements from i on into the CM_GRAM_VD v
 * (macros: no vector passed by value, whose ABI depends on the instruction set). The row holds
 * doubles where CM_GRAM_DBL (double elements, or float ones already widened into the thread's
 * scratch: the tile's constant `wide`), else REAL. Floats are widened with one cvtps2pd of the
 * build's width (GCC 12 compiles __builtin_convertvector to two halves through memory). */
#define CM_GRAM_DBL (wide || sizeof(REAL) == sizeof(double))
#define CM_GRAM_ELEM(p, i) (CM_GRAM_DBL ? ((const double *)(p))[i] : (double)((const REAL *)(p))[i])
#define CM_GRAM_FPTR(p, i) ((const float *)(const void *)((const REAL *)(p) + (i)))
#if defined(__AVX512F__)
#define CM_GRAM_WIDEN(v, p, i) ((v) = _mm512_cvtps_pd(_mm256_loadu_ps(CM_GRAM_FPTR(p, i))))
#elif defined(__AVX2__)
#define CM_GRAM_WIDEN(v, p, i) ((v) = _mm256_cvtps_pd(_mm_loadu_ps(CM_GRAM_FPTR(p, i))))
#elif defined(CM_HAVE_AVX2_BUILD) /* x86-64: SSE2 */
#define CM_GRAM_WIDEN(v, p, i)                                                                 \
    ((v) = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(const void *)CM_GRAM_FPTR(p, i)))))
#else
#define CM_GRAM_WIDEN(v, p, i)                                                                 \
    do {                                                                                       \
        CM_GRAM_VF f_;                                                                         \
        memcpy(&f_, CM_GRAM_FPTR(p, i), sizeof f_);                                            \
        (v) = __builtin_convertvector(f_, CM_GRAM_VD);                                         \
    } while (0)
#endif
#define CM_GRAM_LOAD(v, p, i)                                                                  \
    do {                                                                                       \
        if (CM_GRAM_DBL) memcpy(&(v), (const double *)(p) + (i), sizeof(v));                   \
        else CM_GRAM_WIDEN(v, p, i);                                                           \
    } while (0)

/* acc += x * y lane by lane: one multiply and one add, or for float elements in the AVX-512
 * build one fused multiply-add (the product of two floats is exact in double, so the fused
 * operation rounds once, where the add did). */
#ifdef __AVX512F__
#define CM_GRAM_MADD(acc, x, y)                                                                \
    do {                                                                                       \
        if (sizeof(REAL) == sizeof(float)) (acc) = _mm512_fmadd_pd((x), (y), (acc));         \
        else (acc) += (x) * (y);                                                               \
    } while (0)
#else
#define CM_GRAM_MADD(acc, x, y) ((acc) += (x) * (y))
#endif

/* The scan, lane-wise: |v| (the sign bit cleared, as fabs does), and a > m ? a : m, which is
 * what maxpd computes (NaN in a never replaces m). */
#define CM_GRAM_VABS(v) ((CM_GRAM_VD)((CM_GRAM_VI)(v) & 0x7fffffffffffffffLL))
#if defined(__AVX512F__)
#define CM_GRAM_VMAX(a, m) _mm512_max_pd((a), (m))
#elif defined(__AVX2__)
#define CM_GRAM_VMAX(a, m) _mm256_max_pd((a), (m))
#elif defined(CM_HAVE_AVX2_BUILD) /* x86-64: SSE2 */
#define CM_GRAM_VMAX(a, m) _mm_max_pd((a), (m))
#else
#define CM_GRAM_VMAX(a, m)                                                                     \
    ((CM_GRAM_VD)(((CM_GRAM_VI)(a) & ((a) > (m))) | ((CM_GRAM_VI)(m) & ~((a) > (m)))))
#endif

/* One tile over the columns [0, len) of a block: the pairs (a, b), a < ta of the x rows
 * at x + a * ld against b < tb of the y rows at y + b * ld (tri = 0), or a <= b < ta of the x
 * rows alone (tri = 1, y unused); rows of REAL, or of double where wide. Each pair's block sum
 * (see the top) is added to out[a * rows + b]. A triangle also scans its rows (every row of
 * the block is in one triangle): the sum of x * 0 is added to zt[0] (0, or NaN if an element
 * is not finite) and max |x| is taken into zt[1]; where keep, it also stores its rows widened
 * to double at keep_to + a * keep_ld. ta, tb, tri, wide and keep are constants at every call
 * (the callers below), so the loops unroll and the lanes stay in registers. */
static inline __attribute__((always_inline)) void
SFX(cm_gram_tile)(size_t len, size_t ld, size_t rows, const void *x, const void *y,
                  const int ta, const int tb, const int tri, const int wide, const int keep,
                  double *keep_to, size_t keep_ld, double *zt, double *out)
{
    if (tri) y = x;
    const CM_GRAM_VD z = {0};
    /* the scan's lanes, per row: independent chains, so that they keep up with the tile */
    CM_GRAM_VD acc[CM_GRAM_NACC], zs[CM_GRAM_TA], ms[CM_GRAM_TA];
    CM_GRAM_UNROLL
    for (int q = 0; q < CM_GRAM_NACC; q++) acc[q] = z;
    CM_GRAM_UNROLL
    for (int a = 0; a < CM_GRAM_TA; a++) zs[a] = ms[a] = z;
    const size_t n8 = len - len % 8;
    for (size_t j = 0; j < n8; j += 8) {
        /* lanes h W .. h W + W - 1 of the 8 */
        CM_GRAM_UNROLL
        for (int h = 0; h < CM_GRAM_H; h++) {
            const size_t jh = j + (size_t)h * CM_GRAM_W;
            CM_GRAM_VD xv[CM_GRAM_TA];
            CM_GRAM_UNROLL
            for (int a = 0; a < ta; a++) {
                CM_GRAM_LOAD(xv[a], x, (size_t)a * ld + jh);
                if (tri) {
                    zs[a] += xv[a] * z;
                    ms[a] = CM_GRAM_VMAX(CM_GRAM_VABS(xv[a]), ms[a]);
                    if (keep) memcpy(keep_to + (size_t)a * keep_ld + jh, &xv[a], sizeof xv[a]);
                }
            }
            CM_GRAM_UNROLL
            for (int b = 0; b < tb; b++) {
                CM_GRAM_VD yv;
                if (tri) yv = xv[b];
                else CM_GRAM_LOAD(yv, y, (size_t)b * ld + jh);
                for (int a = 0; a < (tri ? b + 1 : ta); a++) CM_GRAM_MADD(acc[CM_GRAM_ACC(a, b, h)], xv[a], yv);
            }
        }
    }
    if (tri) {
        /* the scan of the columns after the groups of 8, then of the lanes (both exact in any
         * order: a sum of zeros or NaN, a max) */
        for (int a = 0; a < ta; a++)
            for (size_t c = n8; c < len; c++) {
                const double v = CM_GRAM_ELEM(x, (size_t)a * ld + c), av = fabs(v);
                if (keep) keep_to[(size_t)a * keep_ld + c] = v;
                zt[0] += v * 0.0;
                zt[1] = av > zt[1] ? av : zt[1];
            }
        for (int a = 0; a < ta; a++)
            for (int k = 0; k < CM_GRAM_W; k++) {
                zt[0] += zs[a][k];
                zt[1] = ms[a][k] > zt[1] ? ms[a][k] : zt[1];
            }
    }
    /* The pairs W at a time: the x rows with the CM_GRAM_BW y rows from b0 on, pair k being
     * (a, b) = (k / CM_GRAM_BW, b0 + k % CM_GRAM_BW), so that an x row's sums are adjacent, as
     * in out. Pairs outside the tile take the zero lanes z and are not stored. */
#define CM_GRAM_PB(k) (b0 + (k) % CM_GRAM_BW)
#define CM_GRAM_PA(k) ((k) / CM_GRAM_BW)
#define CM_GRAM_PIN(k) (CM_GRAM_PB(k) < tb && CM_GRAM_PA(k) < ta && (!tri || CM_GRAM_PA(k) <= CM_GRAM_PB(k)))
#define CM_GRAM_P(k, h) (CM_GRAM_PIN(k) ? acc[CM_GRAM_ACC(CM_GRAM_PA(k), CM_GRAM_PB(k), h)] : z)
    CM_GRAM_UNROLL
    for (int b0 = 0; b0 < tb; b0 += CM_GRAM_BW) {
        CM_GRAM_VD t;
        CM_GRAM_REDUCE(t, CM_GRAM_P);
        /* the last block's columns after its whole groups of 8, in order (lane-wise, the same
         * products and sums as pair by pair) */
        for (size_t c = n8; c < len; c++) {
            CM_GRAM_VD xs = z, ys = z;
            CM_GRAM_UNROLL
            for (int k = 0; k < CM_GRAM_W; k++)
                if (CM_GRAM_PIN(k)) {
                    xs[k] = CM_GRAM_ELEM(x, (size_t)CM_GRAM_PA(k) * ld + c);
                    ys[k] = CM_GRAM_ELEM(y, (size_t)CM_GRAM_PB(k) * ld + c);
                }
            t += xs * ys;
        }
        CM_GRAM_UNROLL
        for (int k = 0; k < CM_GRAM_W; k++)
            if (CM_GRAM_PIN(k)) out[(size_t)CM_GRAM_PA(k) * rows + (size_t)CM_GRAM_PB(k)] += t[k];
    }
#undef CM_GRAM_P
#undef CM_GRAM_PIN
#undef CM_GRAM_PA
#undef CM_GRAM_PB
}

/* The tile's shapes, each compiled with its constants: the upper triangle of k <= CM_GRAM_TA
 * rows of REAL, which it scans (and widens into keep_to where given: float only), and
 * CM_GRAM_TA rows against kb <= CM_GRAM_TB rows, of REAL or widened (float only: for double the
 * two are the same). The cases above the build's tile are never taken; their constants are
 * clamped so that they still compile. */
#define CM_GRAM_TRI(k, w)                                                                      \
    SFX(cm_gram_tile)(len, ld, rows, x, x, CM_GRAM_MIN(k, CM_GRAM_TA), CM_GRAM_MIN(k, CM_GRAM_TA), \
                      1, 0, w, keep_to, keep_ld, zt, out)
#define CM_GRAM_RECT(k, w)                                                                     \
    SFX(cm_gram_tile)(len, ld, rows, x, y, CM_GRAM_TA, CM_GRAM_MIN(k, CM_GRAM_TB), 0, w, 0, NULL, \
                      0, NULL, out)
#define CM_GRAM_TRIS(w)                                                                        \
    switch (k) {                                                                               \
    case 4: CM_GRAM_TRI(4, w); break;                                                          \
    case 3: CM_GRAM_TRI(3, w); break;                                                          \
    case 2: CM_GRAM_TRI(2, w); break;                                                          \
    default: CM_GRAM_TRI(1, w); break;                                                         \
    }
#define CM_GRAM_RECTS(w)                                                                       \
    switch (kb) {                                                                              \
    case 8: CM_GRAM_RECT(8, w); break;                                                         \
    case 7: CM_GRAM_RECT(7, w); break;                                                         \
    case 6: CM_GRAM_RECT(6, w); break;                                                         \
    case 5: CM_GRAM_RECT(5, w); break;                                                         \
    case 4: CM_GRAM_RECT(4, w); break;                                                         \
    case 3: CM_GRAM_RECT(3, w); break;                                                         \
    case 2: CM_GRAM_RECT(2, w); break;                                                         \
    default: CM_GRAM_RECT(1, w); break;                                                        \
    }
static void SFX(cm_gram_tri)(size_t len, size_t ld, size_t rows, const REAL *x, size_t k,
                             double *keep_to, size_t keep_ld, double *zt, double *out)
{
    if (sizeof(REAL) == sizeof(float) && keep_to) CM_GRAM_TRIS(1) else CM_GRAM_TRIS(0)
}

static void SFX(cm_gram_rect)(size_t len, size_t ld, size_t rows, const void *x, const void *y,
                              size_t kb, int wide, double *out)
{
    if (sizeof(REAL) == sizeof(float) && wide) CM_GRAM_RECTS(1) else CM_GRAM_RECTS(0)
}
#undef CM_GRAM_RECTS
#undef CM_GRAM_TRIS
#undef CM_GRAM_RECT
#undef CM_GRAM_TRI

/* Prefetches the next count cache lines of the block at next (rows x len elements, row
 * stride cols) from line (*row, *line) on, row by row; advances them. */
static inline void SFX(cm_gram_prefetch)(const REAL *next, size_t cols, size_t rows, size_t len,
                                         size_t count, size_t *row, size_t *line)
{
    const size_t per_line = 64 / sizeof(REAL);
    for (size_t c = 0; c < count && *row < rows; c++) {
        /* into L1 (prefetcht0): measured faster than the L2 hints on Zen 4 */
        __builtin_prefetch(next + *row * cols + *line * per_line, 0, 3);
        if (++*line * per_line >= len) {
            *line = 0;
            ++*row;
        }
    }
}

/* The upper triangle of one part's Gramian (rows x rows, row-major, in acc, zeroed here) over
 * the columns [lo, hi), block by block; the scan's results for the part in *zero and *top.
 * Within a block the pairs are computed tile by tile: for each group of CM_GRAM_TA rows, its
 * upper triangle (which also scans the group's rows, and where wide, a scratch of rows x block
 * doubles, widens them into it), then the group against the rows below it, cut into as few
 * tiles of at most CM_GRAM_TB rows as possible, of near-equal sizes (narrow tiles do more
 * loads per multiply). The groups go from the last one up, so that the rows below a group are
 * widened before its tiles read them. With many rows, the rows of a block are short segments
 * that the hardware prefetcher does not follow, so the next block is prefetched a few lines
 * before each tile, while this one is multiplied. */
static void SFX(cm_gram_part)(size_t rows, size_t cols, const REAL *jac, size_t lo, size_t hi,
                              size_t block, double *wide, double *acc, REAL *zero, REAL *top)
{
    for (size_t i = 0; i < rows * rows; i++) acc[i] = 0.0;
    double zt[2] = {0.0, 0.0}; /* the scan: sum of x * 0, max |x| (exact in double for float) */
    const size_t groups = (rows + CM_GRAM_TA - 1) / CM_GRAM_TA;
    /* tiles per block, for the prefetch rate */
    size_t n_tiles = 0;
    for (size_t g = 0; g < rows; g += CM_GRAM_TA)
        n_tiles += 1 + (rows - g - CM_GRAM_MIN(rows - g, CM_GRAM_TA) + CM_GRAM_TB - 1) / CM_GRAM_TB;
    /* the rectangles' rows: the block in J, or its widened copy */
    const size_t ld = wide ? block : cols;
    for (size_t start = lo; start < hi; start += block) {
        const size_t len = CM_GRAM_MIN(hi - start, block);
        const REAL *blk = jac + start;
        /* the next block of J, also past the part's end: with the static schedule of
         * cm_gram_scan a thread's next part is the next one */
        const size_t next_len = rows < CM_GRAM_PREFETCH_ROWS || cols - start <= block ? 0
                                : CM_GRAM_MIN(cols - start - block, block);
        const size_t line = 64 / sizeof(REAL);
        const size_t pf_count = (rows * ((next_len + line - 1) / line) + n_tiles - 1) / n_tiles;
        size_t pf_row = 0, pf_line = 0;
        const void *base = wide ? (const void *)wide : (const void *)blk;
        const size_t elem = wide ? sizeof(double) : sizeof(REAL);
        for (size_t gi = groups; gi-- > 0;) {
            const size_t g = gi * CM_GRAM_TA, kg = CM_GRAM_MIN(rows - g, CM_GRAM_TA);
            SFX(cm_gram_prefetch)(blk + block, cols, rows, next_len, pf_count, &pf_row, &pf_line);
            SFX(cm_gram_tri)(len, cols, rows, blk + g * cols, kg, wide ? wide + g * ld : NULL, ld,
                             zt, acc + g * rows + g);
            /* the rows below the group (which is then a full one): m tiles of q or q + 1 */
            const void *x = (const char *)base + g * ld * elem;
            const size_t below = rows - g - kg, m = (below + CM_GRAM_TB - 1) / CM_GRAM_TB;
            for (size_t i = 0, h = g + kg; i < m; i++) {
                const size_t kb = below / m + (i < below % m);
                SFX(cm_gram_prefetch)(blk + block, cols, rows, next_len, pf_count, &pf_row, &pf_line);
                SFX(cm_gram_rect)(len, ld, rows, x, (const char *)base + h * ld * elem, kb,
                                  wide != NULL, acc + g * rows + h);
                h += kb;
            }
        }
    }
    /* 0 or NaN, and a float's |x| widened: exact back in REAL */
    *zero = (REAL)zt[0];
    *top = (REAL)zt[1];
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
    /* float rows are widened once per block into a scratch of the thread (without it, if
     * malloc fails, the tiles widen them: the same bits) where a block's rows are read by many
     * tiles and a tile's widened rows still fit in the L1 cache */
    const int widen = sizeof(REAL) == sizeof(float) && block <= CM_GRAM_WIDE_BLOCK &&
                      rows * block <= CM_GRAM_WIDE_MAX;
    _Pragma("omp parallel num_threads(nt) if(parallel: nt > 1)")
    {
        double *wide = NULL; /* allocated by a thread that gets a part */
        int asked = 0;
        _Pragma("omp for schedule(static)")
        for (long long p = 0; p < n_parts; p++) {
            if (widen && !asked) {
                wide = malloc(rows * block * sizeof(double));
                asked = 1;
            }
            const size_t lo = (size_t)p * n_blocks / parts * block;
            const size_t hi = CM_GRAM_MIN(((size_t)p + 1) * n_blocks / parts * block, cols);
            REAL zero, top;
            SFX(cm_gram_part)(rows, cols, jac, lo, hi, block, wide, work + (size_t)p * rr, &zero,
                              &top);
            scan[2 * p] = (double)zero;
            scan[2 * p + 1] = (double)top;
        }
        free(wide);
    }
    /* each entry of the upper triangle: 0, then the parts' sums in part order; in parallel over
     * the rows of gram when there are many (interleaved: row a has rows - a entries) */
    const int mt = cm_loop_threads(exec, parts * rr);
    const long long n_rows = (long long)rows;
    _Pragma("omp parallel for schedule(static, 1) num_threads(mt) if(parallel: mt > 1)")
    for (long long ai = 0; ai < n_rows; ai++) {
        const size_t a = (size_t)ai;
        double *g = gram + a * rows;
        for (size_t b = a; b < rows; b++) g[b] = 0.0;
        for (size_t p = 0; p < parts; p++) {
            const double *acc = work + p * rr + a * rows;
            for (size_t b = a; b < rows; b++) g[b] += acc[b];
        }
    }
    double zero = 0.0, top = 0.0;
    for (size_t p = 0; p < parts; p++) {
        zero += scan[2 * p];
        top = scan[2 * p + 1] > top ? scan[2 * p + 1] : top;
    }
    for (size_t a = 0; a < rows; a++)
        for (size_t b = 0; b < a; b++) gram[a * rows + b] = gram[b * rows + a];
    *all_finite = zero == 0.0;
    *max_abs = top;
    return CM_OK;
}

/* d = lam @ J (cmadam.h). The rows go in groups of up to 4, each group in one pass over a tile
 * of columns: s_j = acc_j + lam_a J_aj + lam_b J_bj + ... in row order (the first group starts
 * from lam_0 J_0j, the last one writes d_j), so that each pass reads 4 sequential streams of J
 * (one stream per row of a tile of short segments is slower than the prefetchers) and the
 * partial sums acc (double, on the stack, CM_COMBINE_TILE of them: L1/L2) are read and written
 * once per 4 rows. With up to 4 rows, J is read in one pass and acc is not used. The tiles are
 * independent, so threads take them in any order without changing a bit. */
#ifndef CM_COMBINE_TILE
#define CM_COMBINE_TILE ((size_t)8192)
#endif
static inline __attribute__((always_inline)) void
SFX(cm_combine_rows)(size_t len, const REAL *r, size_t ld, const double *l, const int k,
                     const int first, const int last, double *acc, REAL *out)
{
    for (size_t j = 0; j < len; j++) {
        double s = first ? l[0] * (double)r[j] : acc[j] + l[0] * (double)r[j];
        if (k > 1) s += l[1] * (double)r[ld + j];
        if (k > 2) s += l[2] * (double)r[2 * ld + j];
        if (k > 3) s += l[3] * (double)r[3 * ld + j];
        if (last) out[j] = (REAL)s;
        else acc[j] = s;
    }
}

static int SFX(cm_combine)(const cm_exec_config *exec, size_t rows, size_t cols, const double *lam,
                           const REAL *jac, REAL *out)
{
    if (!lam || !jac || !out) return CM_ERR_NULL;
    if (rows == 0 || cols == 0) return CM_ERR_SIZE;
    const size_t n_tiles = (cols + CM_COMBINE_TILE - 1) / CM_COMBINE_TILE;
    const int nt = cm_loop_threads(exec, rows * cols);
    const long long nn = (long long)n_tiles;
    _Pragma("omp parallel for schedule(static) num_threads(nt) if(parallel: nt > 1)")
    for (long long t = 0; t < nn; t++) {
        const size_t lo = (size_t)t * CM_COMBINE_TILE;
        const size_t len = CM_GRAM_MIN(cols - lo, CM_COMBINE_TILE);
        double acc[CM_COMBINE_TILE];
        for (size_t i = 0; i < rows; i += 4) {
            const size_t k = CM_GRAM_MIN(rows - i, 4);
            const int first = i == 0, last = i + k == rows;
            const REAL *r = jac + i * cols + lo;
            const double *l = lam + i;
            /* k, first and last as constants: each case its own vectorised loop */
#define CM_COMBINE_CASE(kk, f, z) SFX(cm_combine_rows)(len, r, cols, l, kk, f, z, acc, out + lo)
#define CM_COMBINE_K(kk)                                                                       \
    case kk:                                                                                   \
        if (first && last) CM_COMBINE_CASE(kk, 1, 1);                                         \
        else if (first) CM_COMBINE_CASE(kk, 1, 0);                                            \
        else if (last) CM_COMBINE_CASE(kk, 0, 1);                                             \
        else CM_COMBINE_CASE(kk, 0, 0);                                                       \
        break;
            switch (k) {
                CM_COMBINE_K(4)
                CM_COMBINE_K(3)
                CM_COMBINE_K(2)
                default: CM_COMBINE_K(1)
            }
#undef CM_COMBINE_K
#undef CM_COMBINE_CASE
        }
    }
    return CM_OK;
}

#undef CM_GRAM_MADD
#undef CM_GRAM_VMAX
#undef CM_GRAM_VABS
#undef CM_GRAM_LOAD
#undef CM_GRAM_ELEM
#undef CM_GRAM_DBL
#undef CM_GRAM_WIDEN
#undef CM_GRAM_FPTR
#undef CM_GRAM_REDUCE
#undef CM_GRAM_ACC
#undef CM_GRAM_NACC
#undef CM_GRAM_BW
#undef CM_GRAM_H
#undef CM_GRAM_VF
#undef CM_GRAM_VI
#undef CM_GRAM_VD
#undef CM_GRAM_W
#undef CM_GRAM_TB
#undef CM_GRAM_TA
