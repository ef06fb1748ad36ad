/* pareto_internal.h -- helpers shared by the pareto*.c sources; not part of the public API.
 *
 *   - argument checks shared by the public entry points;
 *   - a stable lexicographic sort of point indices (LSD radix sort on the first key for large
 *     inputs, merge sort otherwise and for runs of ties);
 *   - a 64-ary bitmap search tree over {0, .., n-1} (the staircase structure of the 3-D sweeps):
 *     insert, erase, predecessor and successor in O(log_64 n);
 *   - the nondominance classification, the hypervolume dispatcher and its workspace, used by
 *     more than one source file.
 */
#ifndef CMADAM_PARETO_INTERNAL_H
#define CMADAM_PARETO_INTERNAL_H

#include <stdint.h>
#include <stdlib.h>

#include "cmadam_pareto.h"
#include "internal.h"

/* ------------------------------------------------------------------ argument checks */
/* CM_OK for a NULL cfg or a known cfg->algorithm, else CM_ERR_HYPER. */
int cm_po_check_cfg(const cm_pareto_config *cfg);
/* CM_OK when n * m fits size_t (and the byte count of a double array of that size). */
int cm_po_check_size(size_t n, size_t m);
/* 1 when all n values are finite. */
int cm_po_all_finite(size_t n, const double *x);
/* A malloc of count * size bytes that returns NULL on overflow (and never for count 0). */
void *cm_po_alloc(size_t count, size_t size);

/* ------------------------------------------------------------------ sorting */
typedef struct cm_po_item {
    uint64_t key;
    size_t idx;
} cm_po_item;

/* Bytes of scratch cm_po_sort needs for n indices. */
size_t cm_po_sort_scratch_bytes(size_t n);

/* Sort idx[0 .. n) -- indices of rows of pts (row stride `stride` doubles) -- ascending
 * lexicographically by the coordinates dims[0], .., dims[nd - 1] (dims == NULL: 0, .., nd - 1),
 * ties by index value. -0.0 and
 * 0.0 compare equal. scratch must hold cm_po_sort_scratch_bytes(n) bytes, suitably aligned
 * (malloc'ed). */
void cm_po_sort(size_t n, const double *pts, size_t stride, const int *dims, int nd,
                size_t *idx, void *scratch);

/* ------------------------------------------------------------------ 64-ary bitmap tree */
#define CM_PO_FSET_MAX_LEVELS 12
#define CM_PO_NONE ((size_t)-1)

typedef struct cm_po_fset {
    uint64_t *words;                     /* all levels, level 0 (the leaves) first */
    size_t off[CM_PO_FSET_MAX_LEVELS];   /* first word of each level */
    size_t len[CM_PO_FSET_MAX_LEVELS];   /* words in each level */
    int levels;
} cm_po_fset;

/* Words of storage for a set over {0, .., n-1}. */
size_t cm_po_fset_words(size_t n);
/* Lay the set out over `words` (cm_po_fset_words(n) of them) and clear it. */
void cm_po_fset_init(cm_po_fset *s, size_t n, uint64_t *words);

static inline void cm_po_fset_insert(cm_po_fset *s, size_t i)
{
    for (int l = 0; l < s->levels; l++) {
        uint64_t *w = s->words + s->off[l] + (i >> 6);
        const uint64_t bit = (uint64_t)1 << (i & 63);
        const int was_empty = *w == 0;
        *w |= bit;
        if (!was_empty) return; /* the upper levels already mark this word */
        i >>= 6;
    }
}

static inline void cm_po_fset_erase(cm_po_fset *s, size_t i)
{
    for (int l = 0; l < s->levels; l++) {
        uint64_t *w = s->words + s->off[l] + (i >> 6);
        *w &= ~((uint64_t)1 << (i & 63));
        if (*w != 0) return;
        i >>= 6;
    }
}

/* Smallest element >= i, or CM_PO_NONE. */
static inline size_t cm_po_fset_next(const cm_po_fset *s, size_t i)
{
    for (int l = 0; l < s->levels; l++) {
        const size_t w = i >> 6;
        if (w >= s->len[l]) return CM_PO_NONE;
        const uint64_t bits = s->words[s->off[l] + w] & (~(uint64_t)0 << (i & 63));
        if (bits) {
            size_t x = (w << 6) + (size_t)__builtin_ctzll(bits);
            for (int d = l - 1; d >= 0; d--)
                x = (x << 6) + (size_t)__builtin_ctzll(s->words[s->off[d] + x]);
            return x;
        }
        i = w + 1;
    }
    return CM_PO_NONE;
}

/* Largest element <= i, or CM_PO_NONE (i == CM_PO_NONE is not allowed). */
static inline size_t cm_po_fset_prev(const cm_po_fset *s, size_t i)
{
    for (int l = 0; l < s->levels; l++) {
        size_t w = i >> 6;
        if (w >= s->len[l]) { /* beyond the end: start from the last word */
            w = s->len[l] - 1;
            i = (w << 6) + 63;
        }
        const unsigned b = (unsigned)(i & 63);
        const uint64_t mask = b == 63 ? ~(uint64_t)0 : (((uint64_t)1 << (b + 1)) - 1);
        const uint64_t bits = s->words[s->off[l] + w] & mask;
        if (bits) {
            size_t x = (w << 6) + (size_t)(63 - __builtin_clzll(bits));
            for (int d = l - 1; d >= 0; d--)
                x = (x << 6) + (size_t)(63 - __builtin_clzll(s->words[s->off[d] + x]));
            return x;
        }
        if (w == 0) return CM_PO_NONE;
        i = w - 1;
    }
    return CM_PO_NONE;
}

/* ------------------------------------------------------------------ nondominance */
#define CM_PO_ND 1u    /* no point dominates this one (copies of it do not count) */
#define CM_PO_TWIN 2u  /* another point has exactly the same coordinates */
#define CM_PO_LATER 4u /* an identical point has a lower index */

/* flags[i] for each of the n rows of pts (row-major, m columns), from the bits above.
 * generic selects the any-dimension algorithm for m = 2, 3. */
int cm_po_nd_flags(const cm_exec_config *exec, size_t n, size_t m, const double *pts,
                   int generic, unsigned char *flags);

/* Compact in place the k rows (m columns) of pts to their nondominated rows, one copy of each
 * duplicate, keeping their order; returns the new count. Sequential filter, O(m k |front|). */
size_t cm_po_filter_nd(size_t k, size_t m, double *pts);

/* ------------------------------------------------------------------ hypervolume */
typedef struct cm_po_hv_ws cm_po_hv_ws;

/* A workspace for hypervolumes of up to cap points of dimension m (NULL when out of memory);
 * base is the dimension where the WFG recursion stops (2, 3 or 4). */
cm_po_hv_ws *cm_po_hv_ws_new(size_t cap, size_t m, int base);
void cm_po_hv_ws_free(cm_po_hv_ws *ws);

/* Hypervolume of the k rows (m columns) of pts, each strictly dominating ref; k <= the
 * workspace's cap, m <= its m. pts may be reordered and overwritten. */
double cm_po_hv(cm_po_hv_ws *ws, size_t k, size_t m, double *pts, const double *ref);

#endif
