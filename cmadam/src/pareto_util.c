/* pareto_util.c -- argument checks, the lexicographic index sort and the 64-ary bitmap tree
 * shared by the Pareto metrics (see pareto_internal.h). */
#include <math.h>
#include <string.h>

#include "pareto_internal.h"

void cm_pareto_config_default(cm_pareto_config *cfg)
{
    if (!cfg) return;
    cfg->algorithm = CM_PARETO_AUTO;
    cfg->keep_weakly = 0;
    cfg->ignore_dominated = 1;
}

int cm_po_check_cfg(const cm_pareto_config *cfg)
{
    if (!cfg) return CM_OK;
    if (cfg->algorithm != CM_PARETO_AUTO && cfg->algorithm != CM_PARETO_GENERIC)
        return CM_ERR_HYPER;
    return CM_OK;
}

int cm_po_check_size(size_t n, size_t m)
{
    if (m == 0 || m > 1000000) return CM_ERR_SIZE;
    if (n > ((size_t)-1 / sizeof(double)) / m) return CM_ERR_SIZE;
    return CM_OK;
}

int cm_po_all_finite(size_t n, const double *x)
{
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= isfinite(x[i]) != 0;
    return ok;
}

void *cm_po_alloc(size_t count, size_t size)
{
    if (count == 0) count = 1;
    if (size != 0 && count > (size_t)-1 / size) return NULL;
    return malloc(count * size);
}

/* ------------------------------------------------------------------ sorting */
#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)
#define RADIX_PASSES 6     /* 6 * 11 >= 64 */
#define RADIX_MIN_N 256    /* below this, merge sort */
#define INSERTION_RUN 16

size_t cm_po_sort_scratch_bytes(size_t n)
{
    /* two item arrays (radix ping-pong; the merge sort uses the first as index scratch) and
     * the radix histograms */
    return 2 * (n ? n : 1) * sizeof(cm_po_item) + RADIX_PASSES * RADIX_SIZE * sizeof(size_t);
}

/* An unsigned key ordered like the double (after -0.0 -> +0.0). */
static inline uint64_t sort_key(double x)
{
    x += 0.0; /* -0.0 + 0.0 == +0.0 in round-to-nearest */
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return (u >> 63) ? ~u : (u | ((uint64_t)1 << 63));
}

typedef struct {
    const double *pts;
    size_t stride;
    const int *dims;
    int nd;
} sort_ctx;

static inline int less(const sort_ctx *c, size_t a, size_t b)
{
    const double *pa = c->pts + a * c->stride, *pb = c->pts + b * c->stride;
    for (int t = 0; t < c->nd; t++) {
        const int d = c->dims ? c->dims[t] : t;
        const double x = pa[d], y = pb[d];
        if (x < y) return 1;
        if (x > y) return 0;
    }
    return a < b;
}

/* Stable merge sort of idx[0 .. n) with tmp[0 .. n): insertion-sorted runs, then bottom-up
 * merges ping-ponging between idx and tmp. */
static void merge_sort(const sort_ctx *c, size_t n, size_t *idx, size_t *tmp)
{
    for (size_t lo = 0; lo < n; lo += INSERTION_RUN) {
        const size_t hi = lo + INSERTION_RUN < n ? lo + INSERTION_RUN : n;
        for (size_t i = lo + 1; i < hi; i++) {
            const size_t v = idx[i];
            size_t j = i;
            while (j > lo && less(c, v, idx[j - 1])) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
    }
    size_t *src = idx, *dst = tmp;
    for (size_t width = INSERTION_RUN; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            const size_t mid = lo + width < n ? lo + width : n;
            const size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi) dst[k++] = less(c, src[b], src[a]) ? src[b++] : src[a++];
            while (a < mid) dst[k++] = src[a++];
            while (b < hi) dst[k++] = src[b++];
        }
        size_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx) memcpy(idx, src, n * sizeof *idx);
}

void cm_po_sort(size_t n, const double *pts, size_t stride, const int *dims, int nd,
                size_t *idx, void *scratch)
{
    const sort_ctx c = {pts, stride, dims, nd};
    cm_po_item *a = (cm_po_item *)scratch;
    if (n < 2) return;
    if (n < RADIX_MIN_N) {
        merge_sort(&c, n, idx, (size_t *)(void *)a);
        return;
    }
    cm_po_item *b = a + n;
    const size_t d0 = dims ? (size_t)dims[0] : 0;
    size_t *hist = (size_t *)(void *)(b + n);
    memset(hist, 0, RADIX_PASSES * RADIX_SIZE * sizeof *hist);
    for (size_t i = 0; i < n; i++) {
        const uint64_t k = sort_key(pts[idx[i] * stride + d0]);
        a[i].key = k;
        a[i].idx = idx[i];
        for (int p = 0; p < RADIX_PASSES; p++)
            hist[p * RADIX_SIZE + ((k >> (p * RADIX_BITS)) & (RADIX_SIZE - 1))]++;
    }
    for (int p = 0; p < RADIX_PASSES; p++) {
        size_t *h = hist + p * RADIX_SIZE;
        const uint64_t first = (a[0].key >> (p * RADIX_BITS)) & (RADIX_SIZE - 1);
        if (h[first] == n) continue; /* every key has the same digit: nothing to do */
        size_t sum = 0;
        for (size_t d = 0; d < RADIX_SIZE; d++) {
            const size_t cnt = h[d];
            h[d] = sum;
            sum += cnt;
        }
        for (size_t i = 0; i < n; i++) {
            const size_t digit = (size_t)((a[i].key >> (p * RADIX_BITS)) & (RADIX_SIZE - 1));
            b[h[digit]++] = a[i];
        }
        cm_po_item *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < n; i++) idx[i] = a[i].idx;
    /* Runs of equal first keys: order them by the remaining keys and the index. The radix
     * passes are stable, so with one key the index order of the input is kept; the merge sort
     * on the runs makes the index tie-break explicit whatever the input order. */
    size_t *tmp = (size_t *)(void *)b;
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo + 1;
        while (hi < n && a[hi].key == a[lo].key) hi++;
        if (hi - lo > 1) merge_sort(&c, hi - lo, idx + lo, tmp);
        lo = hi;
    }
}

/* ------------------------------------------------------------------ 64-ary bitmap tree */
size_t cm_po_fset_words(size_t n)
{
    size_t total = 0, len = n ? n : 1;
    do {
        len = (len + 63) / 64;
        total += len;
    } while (len > 1);
    return total;
}

void cm_po_fset_init(cm_po_fset *s, size_t n, uint64_t *words)
{
    size_t len = n ? n : 1, off = 0;
    int l = 0;
    do {
        len = (len + 63) / 64;
        s->off[l] = off;
        s->len[l] = len;
        off += len;
        l++;
    } while (len > 1 && l < CM_PO_FSET_MAX_LEVELS);
    s->levels = l;
    s->words = words;
    memset(words, 0, off * sizeof *words);
}
