/* pareto_hv.c -- hypervolume (cm_hypervolume_f64) and hypervolume contributions
 * (cm_hv_contributions_f64).
 *
 * 2-D: sort by x, sweep keeping the least y so far.
 * 3-D: sweep over z; the points seen so far project onto a 2-D staircase (x increasing,
 *      y decreasing) kept in a 64-ary bitmap tree over the x-ranks; inserting a point removes
 *      the staircase points it dominates in (x, y) and adds the area it newly covers, so the
 *      area of the staircase is a running sum of non-negative terms; every point enters and
 *      leaves once: O(n log n) after the two sorts.
 * 4-D: HV4D+: sweep over the 4th objective adding each point's exclusive 3-D volume over the
 *      points before it, each in O(n) from their 3-D front kept in (x, y) and in z order.
 * m-D: WFG with the dimension-reducing sort (see cmadam_pareto.h), ending in the 4-D sweep;
 *      each limited set is cut down by the one-coordinate prefilter of wfg_slice first.
 *      m = 5: the top level (hv_wfg_top, front5) filters the front in one pass over the rows
 *      sorted by the 5th coordinate, noting when a later row first dominates each row in the
 *      first four (the row leaves every later limited set then), and wfg_slice5 builds each
 *      limited set from the first four coordinates held column by column (SSE2 where
 *      available), branch-free, in the order of the 4th (read off a bitmap over the ranks in
 *      that order) so that the sweep needs no sort, with the cuts of the prefilter as its
 *      reference point instead of points.
 */
#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "pareto_internal.h"

/* the 4-D sweep's points (x, y, z) and shadow staircase entries (x, y) */
typedef struct hv4_pt {
    double x, y, z;
} hv4_pt;

typedef struct hv4_st {
    double x, y;
} hv4_st;

struct cm_po_hv_ws {
    size_t cap, m;
    int base;
    size_t *idx, *rank, *list;
    void *scratch;
    double *X, *Y;
    uint64_t *words;
    double **sorted; /* sorted[d]: cap x d, for base < d <= m */
    double **limit;  /* limit[d]: cap x (d - 1) */
    hv4_pt *tx, *tz; /* the 4-D sweep's sets (cap each) and shadow (2 cap + 2) */
    hv4_st *sh;
};

void cm_po_hv_ws_free(cm_po_hv_ws *ws)
{
    if (!ws) return;
    if (ws->sorted)
        for (size_t d = 0; d <= ws->m; d++) free(ws->sorted[d]);
    if (ws->limit)
        for (size_t d = 0; d <= ws->m; d++) free(ws->limit[d]);
    free(ws->sorted);
    free(ws->limit);
    free(ws->idx);
    free(ws->rank);
    free(ws->list);
    free(ws->scratch);
    free(ws->X);
    free(ws->Y);
    free(ws->words);
    free(ws->tx);
    free(ws->tz);
    free(ws->sh);
    free(ws);
}

cm_po_hv_ws *cm_po_hv_ws_new(size_t cap, size_t m, int base)
{
    cm_po_hv_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->cap = cap ? cap : 1;
    ws->m = m;
    ws->base = base;
    cap = ws->cap;
    ws->idx = cm_po_alloc(cap, sizeof *ws->idx);
    ws->rank = cm_po_alloc(cap, sizeof *ws->rank);
    ws->list = cm_po_alloc(cap, sizeof *ws->list);
    ws->scratch = malloc(cm_po_sort_scratch_bytes(cap));
    ws->X = cm_po_alloc(cap, sizeof *ws->X);
    ws->Y = cm_po_alloc(cap, sizeof *ws->Y);
    ws->words = cm_po_alloc(cm_po_fset_words(cap), sizeof *ws->words);
    ws->sorted = calloc(m + 1, sizeof *ws->sorted);
    ws->limit = calloc(m + 1, sizeof *ws->limit);
    if (!ws->idx || !ws->rank || !ws->list || !ws->scratch || !ws->X || !ws->Y || !ws->words ||
        !ws->sorted || !ws->limit) {
        cm_po_hv_ws_free(ws);
        return NULL;
    }
    if (base >= 4 && m >= 4) {
        ws->tx = cm_po_alloc(cap, sizeof *ws->tx);
        ws->tz = cm_po_alloc(cap, sizeof *ws->tz);
        ws->sh = cm_po_alloc(2 * cap + 2, sizeof *ws->sh);
        if (!ws->tx || !ws->tz || !ws->sh) {
            cm_po_hv_ws_free(ws);
            return NULL;
        }
    }
    for (size_t d = (size_t)base + 1; d <= m; d++) {
        ws->sorted[d] = cm_po_alloc(cap, d * sizeof(double));
        ws->limit[d] = cm_po_alloc(cap, (d - 1) * sizeof(double));
        if (!ws->sorted[d] || !ws->limit[d]) {
            cm_po_hv_ws_free(ws);
            return NULL;
        }
    }
    return ws;
}

static inline double box_volume(const double *p, const double *ref, size_t d)
{
    double v = 1.0;
    for (size_t k = 0; k < d; k++) v *= ref[k] - p[k];
    return v;
}

/* ------------------------------------------------------------------ 2-D and 3-D sweeps */
static const int dims_x[1] = {0};
static const int dims_xy[2] = {0, 1};
static const int dims_z[1] = {2};

static double hv2d(cm_po_hv_ws *ws, size_t k, const double *S, const double *ref)
{
    size_t *idx = ws->idx;
    for (size_t i = 0; i < k; i++) idx[i] = i;
    cm_po_sort(k, S, 2, dims_x, 1, idx, ws->scratch);
    /* processing in non-decreasing x, each point adds the strip between its y and the least y
     * before it (ties in x need no particular order) */
    double hv = 0.0, top = ref[1];
    for (size_t t = 0; t < k; t++) {
        const double *p = S + 2 * idx[t];
        if (p[1] < top) {
            hv += (ref[0] - p[0]) * (top - p[1]);
            top = p[1];
        }
    }
    return hv;
}

/* x-ranks of the k rows of S (3 columns): rank[i], and X, Y in rank order. */
static void rank_by_xy(cm_po_hv_ws *ws, size_t k, const double *S)
{
    size_t *idx = ws->idx;
    for (size_t i = 0; i < k; i++) idx[i] = i;
    cm_po_sort(k, S, 3, dims_xy, 2, idx, ws->scratch);
    for (size_t r = 0; r < k; r++) {
        ws->rank[idx[r]] = r;
        ws->X[r] = S[3 * idx[r]];
        ws->Y[r] = S[3 * idx[r] + 1];
    }
    for (size_t i = 0; i < k; i++) idx[i] = i;
    cm_po_sort(k, S, 3, dims_z, 1, idx, ws->scratch); /* idx: the z order */
}

static double hv3d(cm_po_hv_ws *ws, size_t k, const double *S, const double *ref)
{
    rank_by_xy(ws, k, S);
    const size_t *idx = ws->idx, *rank = ws->rank;
    const double *X = ws->X, *Y = ws->Y;
    cm_po_fset set;
    cm_po_fset_init(&set, k, ws->words);
    double area = 0.0, vol = 0.0;
    for (size_t t = 0; t < k; t++) {
        const size_t i = idx[t], r = rank[i];
        const double px = X[r], py = Y[r];
        /* the staircase point before r in x has the least y of those with x <= px */
        const size_t a = r > 0 ? cm_po_fset_prev(&set, r - 1) : CM_PO_NONE;
        if (a == CM_PO_NONE || Y[a] > py) {
            double h = a == CM_PO_NONE ? ref[1] : Y[a], x0 = px, gain = 0.0;
            size_t s = r + 1 < k ? cm_po_fset_next(&set, r + 1) : CM_PO_NONE;
            while (s != CM_PO_NONE && Y[s] >= py) { /* dominated in (x, y) by the new point */
                gain += (X[s] - x0) * (h - py);
                h = Y[s];
                x0 = X[s];
                cm_po_fset_erase(&set, s);
                s = s + 1 < k ? cm_po_fset_next(&set, s + 1) : CM_PO_NONE;
            }
            gain += ((s == CM_PO_NONE ? ref[0] : X[s]) - x0) * (h - py);
            area += gain;
            cm_po_fset_insert(&set, r);
        }
        const double z = S[3 * i + 2];
        const double znext = t + 1 < k ? S[3 * idx[t + 1] + 2] : ref[2];
        vol += area * (znext - z);
    }
    return vol;
}

/* ------------------------------------------------------------------ 4-D sweep */
/* HV4D+ (after Guerreiro and Fonseca 2018). Sweeping over the 4th objective,
 * hv = sum_t (ref_4 - p_t4) * c_t, where c_t is the volume p_t adds to the 3-D hypervolume of the
 * points before it (their projection on the first three coordinates). T holds those points
 * that no other point so far weakly dominates in (x, y, z), twice: Tx in (x, y) order and Tz in
 * z order (the paper keeps each member's 2-D neighbours instead; two orders are simpler to keep
 * right under ties and cost the same O(|T|) per point). c_t is found in O(|T|) without sorting:
 *  - at height p_z, the members below p in z (scanned in x order) give the top of p's 2-D box
 *    (the least y of those with x <= p_x), its right edge (the least x of those with y <= p_y)
 *    and, in between, the staircase of those inside the box: p's exclusive area E is the
 *    rectangle [p_x, right) x [p_y, top) less what that "shadow" staircase covers;
 *  - the members at or above p_z, in z order, then each lower top, move right in, or (those p
 *    dominates, each removed from T afterwards, so at most n of these in the whole sweep) join
 *    the shadow (a binary search and a shift); E times the z travelled is summed at every
 *    change, and the sweep stops once a member covers p's whole box.
 * Then the members p dominates leave T and p joins it. O(n^2) after the sort over the 4th.
 * Members that are redundant only through ties (a copy of a covered corner) would change no
 * area; the tie rules below keep T free of them all the same. */

/* p's exclusive region at the current height: [p_x, right) x [p_y, top) less sh[lo .. hi),
 * the staircase (x increasing, y decreasing) of the members inside it; E its area. */
typedef struct {
    double px, py, top, right, E;
    hv4_st *sh;
    size_t lo, hi;
} hv4_region;

/* Lower the top to t (p_y < t < top); returns the area lost. */
static double hv4_shrink_top(hv4_region *g, double t)
{
    double lost = 0.0, upper = g->top;
    while (g->lo < g->hi && g->sh[g->lo].y >= t) {
        lost += (g->sh[g->lo].x - g->px) * (upper - g->sh[g->lo].y);
        upper = g->sh[g->lo].y;
        g->lo++;
    }
    lost += ((g->lo < g->hi ? g->sh[g->lo].x : g->right) - g->px) * (upper - t);
    g->top = t;
    return lost;
}

/* Move the right edge in to x (p_x < x < right); returns the area lost. */
static double hv4_shrink_right(hv4_region *g, double x)
{
    double lost = 0.0, rightmost = g->right;
    while (g->lo < g->hi && g->sh[g->hi - 1].x >= x) {
        lost += (rightmost - g->sh[g->hi - 1].x) * (g->sh[g->hi - 1].y - g->py);
        rightmost = g->sh[g->hi - 1].x;
        g->hi--;
    }
    lost += (rightmost - x) * ((g->lo < g->hi ? g->sh[g->hi - 1].y : g->top) - g->py);
    g->right = x;
    return lost;
}

/* Add (x, y) (p_x <= x < right, p_y <= y < top) to the shadow; returns the area newly covered.
 * sh has room for one more entry past hi. */
static double hv4_shadow_insert(hv4_region *g, double x, double y)
{
    hv4_st *sh = g->sh;
    size_t a = g->lo, b = g->hi; /* b: the first entry with x >= the new x */
    while (a < b) {
        const size_t mid = a + (b - a) / 2;
        if (sh[mid].x < x) a = mid + 1;
        else b = mid;
    }
    double h = b > g->lo ? sh[b - 1].y : g->top;
    if (h <= y) return 0.0; /* the entry before covers it */
    if (b < g->hi && sh[b].x == x && sh[b].y <= y) return 0.0;
    double x0 = x, gain = 0.0;
    size_t s = b;
    while (s < g->hi && sh[s].y >= y) { /* covered by the new entry */
        gain += (sh[s].x - x0) * (h - y);
        h = sh[s].y;
        x0 = sh[s].x;
        s++;
    }
    gain += ((s < g->hi ? sh[s].x : g->right) - x0) * (h - y);
    if (s == b) {
        memmove(sh + b + 1, sh + b, (g->hi - b) * sizeof *sh);
        g->hi++;
    } else if (s > b + 1) {
        memmove(sh + b + 1, sh + s, (g->hi - s) * sizeof *sh);
        g->hi -= s - b - 1;
    }
    sh[b].x = x;
    sh[b].y = y;
    return gain;
}

/* The volume p adds to the 3-D hypervolume of the t members (Tx, Tz), given what hv4d found
 * first: the members Tx[0 .. j) lie left of p (x <= p_x), those right of it start at Tx[j];
 * top is the least y of the left ones below p in z (ref_1 if none), above p_y (else p is
 * dominated); the members from Tz[zpos] on have z >= p_z. *join = 0 when a member weakly
 * dominates p in (x, y, z); *ndom counts the members p weakly dominates. sh has room for 2 t + 1
 * entries. */
static double hv4_contrib(const hv4_pt *Tx, const hv4_pt *Tz, size_t t, size_t j, double top,
                          size_t zpos, const hv4_pt *p, const double *ref, hv4_st *sh,
                          int *join, size_t *ndom)
{
    hv4_region g = {p->x, p->y, top, ref[0], 0.0, sh, 0, 0};
    *join = 1;
    *ndom = 0;
    double upper = g.top;
    for (; j < t; j++) { /* right of p: the shadow until the first at or below p_y */
        const hv4_pt *r = Tx + j;
        if (r->z >= p->z || r->y >= upper) continue;
        if (r->y <= p->y) {
            g.right = r->x;
            break;
        }
        sh[g.hi].x = r->x;
        sh[g.hi].y = r->y;
        g.hi++;
        g.E += (r->x - p->x) * (upper - r->y);
        upper = r->y;
    }
    g.E += (g.right - p->x) * (upper - p->y);
    double z0 = p->z, vol = 0.0;
    for (j = zpos; j < t; j++) {
        const hv4_pt *q = Tz + j;
        double lost;
        if (q->x <= p->x && q->y <= p->y) { /* covers the whole box from here on */
            if (q->z == p->z) {
                *join = 0;
                return 0.0;
            }
            return vol + (g.E > 0.0 ? g.E : 0.0) * (q->z - z0);
        }
        if (q->x >= p->x && q->y >= p->y) {
            ++*ndom;
            if (q->x >= g.right || q->y >= g.top) continue;
            lost = hv4_shadow_insert(&g, q->x, q->y);
        } else if (q->x < p->x) {
            if (q->y >= g.top) continue;
            lost = hv4_shrink_top(&g, q->y);
        } else {
            if (q->x >= g.right) continue;
            lost = hv4_shrink_right(&g, q->x);
        }
        vol += (g.E > 0.0 ? g.E : 0.0) * (q->z - z0);
        z0 = q->z;
        g.E -= lost;
    }
    return vol + (g.E > 0.0 ? g.E : 0.0) * (ref[2] - z0);
}

/* presorted: S's rows are already in non-decreasing order of the 4th coordinate. Most points of
 * WFG's limited sets are dominated, so the test for that comes first and is branch-free, as
 * are the binary search and the removal of the dominated members (their outcomes are coin
 * flips to a branch predictor). */
static double hv4d(cm_po_hv_ws *ws, size_t k, const double *S, const double *ref, int presorted)
{
    static const int dims_w[1] = {3};
    size_t *idx = ws->idx;
    hv4_pt *Tx = ws->tx, *Tz = ws->tz;
    for (size_t i = 0; i < k; i++) idx[i] = i;
    if (!presorted) cm_po_sort(k, S, 4, dims_w, 1, idx, ws->scratch);
    size_t tn = 0;
    double total = 0.0;
    for (size_t t = 0; t < k; t++) {
        const double *s = S + 4 * idx[t];
        const hv4_pt p = {s[0], s[1], s[2]};
        /* the members left of p (x <= p_x) and below it in z: the least y of them is the top
         * of p's box, and p is dominated if that is <= p_y (a dominator with z = p_z is found
         * by hv4_contrib) */
        double top = ref[1];
        size_t right = 0;
        while (right < tn && Tx[right].x <= p.x && top > p.y) { /* in runs of up to 8 */
            const size_t end = right + 8 < tn ? right + 8 : tn;
            for (; right < end && Tx[right].x <= p.x; right++) {
                const double y = Tx[right].z < p.z ? Tx[right].y : HUGE_VAL;
                top = y < top ? y : top;
            }
        }
        if (top <= p.y) continue;
        size_t zpos = 0; /* the first member with z >= p_z: it lies in [zpos, zpos + n] */
        for (size_t n = tn; n > 0;) {
            const size_t half = n / 2;
            const int below = Tz[zpos + half].z < p.z;
            zpos = below ? zpos + half + 1 : zpos;
            n = below ? n - half - 1 : half;
        }
        int join;
        size_t ndom;
        total += (ref[3] - s[3]) *
                 hv4_contrib(Tx, Tz, tn, right, top, zpos, &p, ref, ws->sh, &join, &ndom);
        if (!join) continue;
        /* xpos: the first member with (x, y) > (p_x, p_y) once the dominated are gone */
        size_t xpos = right;
        while (xpos > 0 && Tx[xpos - 1].x == p.x && Tx[xpos - 1].y > p.y) xpos--;
        if (ndom) {
            size_t w = zpos;
            for (size_t j = zpos; j < tn; j++) {
                Tz[w] = Tz[j];
                w += (size_t)!((Tz[j].x >= p.x) & (Tz[j].y >= p.y));
            }
            /* in Tx the dominated lie at or after the first member with x >= p_x */
            size_t f = xpos;
            while (f > 0 && Tx[f - 1].x >= p.x) f--;
            size_t u = f, before = 0;
            for (size_t j = f; j < tn; j++) {
                const int gone = (Tx[j].x >= p.x) & (Tx[j].y >= p.y) & (Tx[j].z >= p.z);
                before += (size_t)(!gone & (j < xpos));
                Tx[u] = Tx[j];
                u += (size_t)!gone;
            }
            xpos = f + before;
            tn = w;
        }
        memmove(Tz + zpos + 1, Tz + zpos, (tn - zpos) * sizeof *Tz);
        Tz[zpos] = p;
        memmove(Tx + xpos + 1, Tx + xpos, (tn - xpos) * sizeof *Tx);
        Tx[xpos] = p;
        tn++;
    }
    return total;
}

/* ------------------------------------------------------------------ WFG */
/* wfg_slice's one-coordinate prefilter runs for limited sets of up to this many coordinates */
#define CM_PO_HV_PREFILTER_MAX 16
static double hv_level(cm_po_hv_ws *ws, size_t d, size_t k, double *S, const double *ref);

/* The exclusive volume of point t of the k x d matrix `sorted` (sorted by the last coordinate)
 * over the points before it, divided by its depth ref[d-1] - p[d-1]:
 *   vol_{d-1}(p) - hv_{d-1}(nd({max(p, q_j) : j < t})).
 * `lim` has room for t x (d - 1) values; the recursion uses ws's levels below d. */
static double wfg_slice(cm_po_hv_ws *ws, size_t d, const double *sorted, size_t t, double *lim,
                        const double *ref)
{
    const double *p = sorted + t * d;
    const size_t e = d - 1;
    double v = box_volume(p, ref, e);
    if (t == 0) return v;
    size_t kk = 0;
    if (ws->base >= 4 && e <= CM_PO_HV_PREFILTER_MAX &&
        t <= (SIZE_MAX >> CM_PO_HV_PREFILTER_MAX)) {
        /* A limited point max(p, q) above p in one coordinate c only is p's box cut at q_c: of
         * those keep the least q_c per c, and drop every other limited point above p in a
         * coordinate c by at least that much (it is weakly dominated by it). A q weakly below
         * p in all e coordinates covers p's whole slice. */
        double best[CM_PO_HV_PREFILTER_MAX] = {0.0};
        unsigned have = 0;
        size_t *cand = ws->list, nc = 0; /* (j << PREFILTER_MAX) | mask of the coordinates
                                            where q_j is above p, for two or more of them */
        for (size_t j = 0; j < t; j++) {
            const double *q = sorted + j * d;
            unsigned mask = 0;
            for (size_t c = 0; c < e; c++) mask |= (unsigned)(q[c] > p[c]) << c;
            if (mask == 0) return 0.0;
            if ((mask & (mask - 1)) == 0) {
                const size_t c = (size_t)__builtin_ctz(mask);
                if (!(have & mask) || q[c] < best[c]) best[c] = q[c];
                have |= mask;
            } else {
                cand[nc++] = (j << CM_PO_HV_PREFILTER_MAX) | mask;
            }
        }
        for (size_t c = 0; c < e; c++) {
            if (!(have >> c & 1)) continue;
            double *o = lim + kk * e;
            for (size_t b = 0; b < e; b++) o[b] = p[b];
            o[c] = best[c];
            kk++;
        }
        for (size_t i = 0; i < nc; i++) {
            const size_t j = cand[i] >> CM_PO_HV_PREFILTER_MAX;
            const unsigned mask = (unsigned)(cand[i] & ((1u << CM_PO_HV_PREFILTER_MAX) - 1));
            const double *q = sorted + j * d;
            unsigned both = mask & have;
            int drop = 0;
            while (both && !drop) {
                const size_t c = (size_t)__builtin_ctz(both);
                drop = q[c] >= best[c];
                both &= both - 1;
            }
            if (drop) continue;
            double *o = lim + kk * e;
            for (size_t c = 0; c < e; c++) o[c] = q[c] > p[c] ? q[c] : p[c];
            kk++;
        }
        if (e > 4) kk = cm_po_filter_nd(kk, e, lim);
    } else {
        for (size_t j = 0; j < t; j++) {
            const double *q = sorted + j * d;
            double *o = lim + j * e;
            for (size_t c = 0; c < e; c++) o[c] = q[c] > p[c] ? q[c] : p[c];
        }
        kk = t;
        if (e > 3) kk = cm_po_filter_nd(t, e, lim);
    }
    v -= hv_level(ws, e, kk, lim, ref);
    return v > 0.0 ? v : 0.0;
}

/* The kept rows of hv_wfg_top's m = 5 front, by column, for wfg_slice5. */
typedef struct hv5_cols {
    const double *c[4]; /* the first four coordinates of the kept rows, one column each */
    /* death[j]: the index of the first later row that weakly dominates row j in the first four
     * coordinates (as a double; +inf if none). From then on the limited point of row j is
     * weakly dominated by that row's, so row j leaves every later slice. */
    const double *death;
    const size_t *rank3; /* rank3[j]: row j's place in the order of the 4th coordinate, ties by j */
    const size_t *by3;   /* its inverse */
    size_t words;        /* words of a bitmap over the k ranks */
} hv5_cols;

/* wfg_slice5's kept row j, limited by p: to lim[kk] if q_3 <= p_3 (4th = p_3), else its bit in
 * bits; branch-free (the row is written either way). Returns the new count in lim. */
static inline size_t slice5_keep(const hv5_cols *cols, size_t j, const double *p, double *lim,
                                 size_t kk, uint64_t *bits)
{
    const double q0 = cols->c[0][j], q1 = cols->c[1][j], q2 = cols->c[2][j], q3 = cols->c[3][j];
    double *o = lim + kk * 4;
    o[0] = q0 > p[0] ? q0 : p[0];
    o[1] = q1 > p[1] ? q1 : p[1];
    o[2] = q2 > p[2] ? q2 : p[2];
    o[3] = p[3];
    const int up = q3 > p[3];
    const size_t r = cols->rank3[j];
    bits[r >> 6] |= (uint64_t)up << (r & 63);
    return kk + (size_t)!up;
}

/* wfg_slice for the top level of m = 5, the first four coordinates of the rows sorted by the
 * 5th held column by column, so that the scans over the points before p run branch-free. The
 * same prefilter as wfg_slice: best[c] is the least q_c of the points above p in coordinate c
 * only (ref_c if none), and the limited point of such a q covers every point of p's box with
 * x_c >= best[c]. So p's exclusive region lies in the box [p, best), and it is that box less
 * what the other limited points cover of it: those below best in every coordinate, the
 * others being weakly dominated by a cut (this includes every one-coordinate point). Taking
 * best as the reference point, rather than ref, also keeps the cancellation in
 * vol - hv4d(...) to the size of that box. The rows dead by slice t (see hv5_cols) are left out
 * too; they never change best (a dead one-coordinate point has a live one-coordinate point
 * below it in the same coordinate). No row before p may weakly dominate p in the first four
 * coordinates (hv_wfg_top's filter sees to it): such a row would pass as a one-coordinate
 * point in every coordinate. bits: a bitmap of cols->words words, all clear, and left so;
 * lim: room for t rows of 4. */
static double wfg_slice5(cm_po_hv_ws *ws, const double *sorted, const hv5_cols *cols, size_t t,
                         double *lim, uint64_t *bits, const double *ref)
{
    const double *p = sorted + t * 5;
    if (t == 0) return box_volume(p, ref, 4);
    const double *c0 = cols->c[0], *c1 = cols->c[1], *c2 = cols->c[2], *c3 = cols->c[3];
    const double *death = cols->death;
    const double p0 = p[0], p1 = p[1], p2 = p[2], p3 = p[3];
    double b0 = ref[0], b1 = ref[1], b2 = ref[2], b3 = ref[3];
    size_t j0 = 0;
#if defined(__SSE2__)
    {
        const __m128d q0 = _mm_set1_pd(p0), q1 = _mm_set1_pd(p1), q2 = _mm_set1_pd(p2),
                      q3 = _mm_set1_pd(p3);
        __m128d m0 = _mm_set1_pd(b0), m1 = _mm_set1_pd(b1), m2 = _mm_set1_pd(b2),
                m3 = _mm_set1_pd(b3);
        for (; j0 + 2 <= t; j0 += 2) {
            const __m128d x0 = _mm_loadu_pd(c0 + j0), x1 = _mm_loadu_pd(c1 + j0),
                          x2 = _mm_loadu_pd(c2 + j0), x3 = _mm_loadu_pd(c3 + j0);
            const __m128d l0 = _mm_cmple_pd(x0, q0), l1 = _mm_cmple_pd(x1, q1),
                          l2 = _mm_cmple_pd(x2, q2), l3 = _mm_cmple_pd(x3, q3);
            const __m128d l01 = _mm_and_pd(l0, l1), l23 = _mm_and_pd(l2, l3);
            /* where the mask is clear, the candidate is the running bound itself */
            const __m128d s0 = _mm_and_pd(l1, l23), s1 = _mm_and_pd(l0, l23),
                          s2 = _mm_and_pd(l01, l3), s3 = _mm_and_pd(l01, l2);
            m0 = _mm_min_pd(m0, _mm_or_pd(_mm_and_pd(s0, x0), _mm_andnot_pd(s0, m0)));
            m1 = _mm_min_pd(m1, _mm_or_pd(_mm_and_pd(s1, x1), _mm_andnot_pd(s1, m1)));
            m2 = _mm_min_pd(m2, _mm_or_pd(_mm_and_pd(s2, x2), _mm_andnot_pd(s2, m2)));
            m3 = _mm_min_pd(m3, _mm_or_pd(_mm_and_pd(s3, x3), _mm_andnot_pd(s3, m3)));
        }
        double h[2];
        _mm_storeu_pd(h, m0);
        b0 = h[0] < h[1] ? h[0] : h[1];
        _mm_storeu_pd(h, m1);
        b1 = h[0] < h[1] ? h[0] : h[1];
        _mm_storeu_pd(h, m2);
        b2 = h[0] < h[1] ? h[0] : h[1];
        _mm_storeu_pd(h, m3);
        b3 = h[0] < h[1] ? h[0] : h[1];
    }
#endif
    for (size_t j = j0; j < t; j++) {
        const int l0 = c0[j] <= p0, l1 = c1[j] <= p1, l2 = c2[j] <= p2, l3 = c3[j] <= p3;
        b0 = (l1 & l2 & l3) & (c0[j] < b0) ? c0[j] : b0;
        b1 = (l0 & l2 & l3) & (c1[j] < b1) ? c1[j] : b1;
        b2 = (l0 & l1 & l3) & (c2[j] < b2) ? c2[j] : b2;
        b3 = (l0 & l1 & l2) & (c3[j] < b3) ? c3[j] : b3;
    }
    /* The limited set goes to hv4d in non-decreasing order of its 4th coordinate
     * max(q_3, p_3): the rows with q_3 <= p_3 (4th = p_3) first, then those with q_3 > p_3 in
     * the order of rank3 (which sorts q_3): these set their rank's bit, read back in order
     * afterwards. The kept rows are picked out by a branch-free scan in blocks of 8 (few are
     * kept, and which ones is a coin flip to a branch predictor). */
    const double best[4] = {b0, b1, b2, b3};
    double v = box_volume(p, best, 4);
    size_t kk = 0, j = 0;
    const double now = (double)t;
#if defined(__SSE2__)
    {
        const __m128d m0 = _mm_set1_pd(b0), m1 = _mm_set1_pd(b1), m2 = _mm_set1_pd(b2),
                      m3 = _mm_set1_pd(b3), alive = _mm_set1_pd(now);
        for (; j + 8 <= t; j += 8) {
            unsigned keep = 0;
            for (size_t b = 0; b < 8; b += 2) {
                const size_t i = j + b;
                const __m128d in = _mm_and_pd(
                    _mm_and_pd(_mm_cmplt_pd(_mm_loadu_pd(c0 + i), m0),
                               _mm_cmplt_pd(_mm_loadu_pd(c1 + i), m1)),
                    _mm_and_pd(_mm_and_pd(_mm_cmplt_pd(_mm_loadu_pd(c2 + i), m2),
                                          _mm_cmplt_pd(_mm_loadu_pd(c3 + i), m3)),
                               _mm_cmpge_pd(_mm_loadu_pd(death + i), alive)));
                keep |= (unsigned)_mm_movemask_pd(in) << b;
            }
            for (; keep; keep &= keep - 1)
                kk = slice5_keep(cols, j + (size_t)__builtin_ctz(keep), p, lim, kk, bits);
        }
    }
#endif
    for (; j < t; j++)
        if ((c0[j] < b0) & (c1[j] < b1) & (c2[j] < b2) & (c3[j] < b3) & (death[j] >= now))
            kk = slice5_keep(cols, j, p, lim, kk, bits);
    /* every row above p in the 4th coordinate ranks after p */
    for (size_t w = cols->rank3[t] >> 6; w < cols->words; w++) {
        for (uint64_t b = bits[w]; b; b &= b - 1) {
            const size_t j = cols->by3[(w << 6) + (size_t)__builtin_ctzll(b)];
            double *o = lim + kk * 4;
            o[0] = c0[j] > p0 ? c0[j] : p0;
            o[1] = c1[j] > p1 ? c1[j] : p1;
            o[2] = c2[j] > p2 ? c2[j] : p2;
            o[3] = c3[j];
            kk++;
        }
        bits[w] = 0;
    }
    if (kk == 0) return v;
    if (kk == 1) v -= box_volume(lim, best, 4);
    else v -= hv4d(ws, kk, lim, best, 1);
    return v > 0.0 ? v : 0.0;
}

/* Sort the k rows of S (d columns) by the last coordinate into `sorted`. */
static void sort_by_last(cm_po_hv_ws *ws, size_t d, size_t k, const double *S, double *sorted)
{
    const int last = (int)d - 1;
    size_t *idx = ws->idx;
    for (size_t i = 0; i < k; i++) idx[i] = i;
    cm_po_sort(k, S, d, &last, 1, idx, ws->scratch);
    for (size_t t = 0; t < k; t++) memcpy(sorted + t * d, S + idx[t] * d, d * sizeof *sorted);
}

static double hv_level(cm_po_hv_ws *ws, size_t d, size_t k, double *S, const double *ref)
{
    if (k == 0) return 0.0;
    if (k == 1) return box_volume(S, ref, d);
    if (d == 1) {
        double lo = S[0];
        for (size_t i = 1; i < k; i++) lo = S[i] < lo ? S[i] : lo;
        return ref[0] - lo;
    }
    if (d == 2) return hv2d(ws, k, S, ref);
    if (d == 3 && ws->base >= 3) return hv3d(ws, k, S, ref);
    if (d == 4 && ws->base >= 4) return hv4d(ws, k, S, ref, 0);
    double *sorted = ws->sorted[d], *lim = ws->limit[d];
    sort_by_last(ws, d, k, S, sorted);
    double total = 0.0;
    for (size_t t = 0; t < k; t++)
        total += (ref[d - 1] - sorted[t * d + d - 1]) * wfg_slice(ws, d, sorted, t, lim, ref);
    return total;
}

double cm_po_hv(cm_po_hv_ws *ws, size_t k, size_t m, double *pts, const double *ref)
{
    if (m > (size_t)ws->base) k = cm_po_filter_nd(k, m, pts);
    return hv_level(ws, m, k, pts, ref);
}

/* ------------------------------------------------------------------ shared setup */
/* The rows of points that strictly dominate ref, compacted into V (k x m); map[j] is the
 * original row of V's row j. */
static size_t compact_valid(size_t n, size_t m, const double *points, const double *ref,
                            double *V, size_t *map)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const double *p = points + i * m;
        int below = 1;
        for (size_t c = 0; c < m; c++) below &= p[c] < ref[c];
        if (!below) continue;
        memcpy(V + k * m, p, m * sizeof *V);
        if (map) map[k] = i;
        k++;
    }
    return k;
}

/* Keep the rows of V whose flags say nondominated and first copy; returns the count. */
static size_t compact_front(size_t k, size_t m, double *V, size_t *map,
                            const unsigned char *flags)
{
    size_t u = 0;
    for (size_t j = 0; j < k; j++) {
        if (!(flags[j] & CM_PO_ND) || (flags[j] & CM_PO_LATER)) continue;
        if (u != j) {
            memmove(V + u * m, V + j * m, m * sizeof *V);
            if (map) map[u] = map[j];
        }
        u++;
    }
    return u;
}

static int check_common(const cm_pareto_config *cfg, size_t n, size_t m, const double *points,
                        const double *ref)
{
    int status = cm_po_check_cfg(cfg);
    if (status != CM_OK) return status;
    if ((status = cm_po_check_size(n, m)) != CM_OK) return status;
    if (!cm_po_all_finite(n * m, points) || !cm_po_all_finite(m, ref)) return CM_ERR_HYPER;
    return CM_OK;
}

/* 1 when p weakly dominates (x0, .., x3) in the first four coordinates and is not equal to it */
static inline int kills5(double x0, double x1, double x2, double x3, const double *p)
{
    return (x0 >= p[0]) & (x1 >= p[1]) & (x2 >= p[2]) & (x3 >= p[3]) &
           ((x0 != p[0]) | (x1 != p[1]) | (x2 != p[2]) | (x3 != p[3]));
}

/* hv_wfg_top's front for m = 5: the k rows of F (which need not be nondominated) sorted by the
 * 5th coordinate, ties by the first four in turn, so that a point's weak dominators all come
 * before it; one pass keeps the front, one copy of each point, in that order, into `sorted`
 * (5 columns) and the first four coordinates into cols (5 columns of `stride`, the 5th the
 * death of each kept row, see hv5_cols). The pass holds the live rows (no later kept row
 * weakly dominates them in the first four coordinates) by column in act (4 x k), their
 * indices in aid: a row is dominated iff a live row weakly dominates it in the first four (a
 * dead row's dominator is live or dead in turn, and the chain ends at a live one). A row that
 * dies is overwritten in place by (+inf, -inf, ..), which neither dominates nor is dominated
 * by anything, and the holes are squeezed out once they make up half of act. A dominated row
 * kills nothing (it would equal no live row, and a live row it dominated would be dominated
 * by another live row; a copy of p is not killed but kills p), so kills are applied as the
 * scan finds them. Returns the number of kept rows. */
static size_t front5(cm_po_hv_ws *ws0, size_t k, const double *F, double *sorted, double *cols,
                     size_t stride, double *act, size_t *aid)
{
    static const int dims5[5] = {4, 0, 1, 2, 3};
    size_t *idx = ws0->idx;
    for (size_t i = 0; i < k; i++) idx[i] = i;
    cm_po_sort(k, F, 5, dims5, 5, idx, ws0->scratch);
    double *c0 = cols, *c1 = cols + stride, *c2 = cols + 2 * stride, *c3 = cols + 3 * stride;
    double *death = cols + 4 * stride;
    double *a0 = act, *a1 = act + k, *a2 = act + 2 * k, *a3 = act + 3 * k;
    size_t kept = 0, used = 0, holes = 0; /* act[0 .. used): the live rows and the holes */
    for (size_t t = 0; t < k; t++) {
        const double *p = F + idx[t] * 5;
        const double p0 = p[0], p1 = p[1], p2 = p[2], p3 = p[3];
        int dom = 0;
        size_t j = 0, kills = 0;
#if defined(__SSE2__)
        {
            const __m128d q0 = _mm_set1_pd(p0), q1 = _mm_set1_pd(p1), q2 = _mm_set1_pd(p2),
                          q3 = _mm_set1_pd(p3);
            for (; j + 8 <= used && !dom; j += 8) {
                __m128d d = _mm_setzero_pd(), u = _mm_setzero_pd();
                for (size_t b = j; b < j + 8; b += 2) {
                    const __m128d x0 = _mm_loadu_pd(a0 + b), x1 = _mm_loadu_pd(a1 + b),
                                  x2 = _mm_loadu_pd(a2 + b), x3 = _mm_loadu_pd(a3 + b);
                    const __m128d below = _mm_and_pd(
                        _mm_and_pd(_mm_cmple_pd(x0, q0), _mm_cmple_pd(x1, q1)),
                        _mm_and_pd(_mm_cmple_pd(x2, q2), _mm_cmple_pd(x3, q3)));
                    const __m128d above = _mm_and_pd(
                        _mm_and_pd(_mm_cmpge_pd(x0, q0), _mm_cmpge_pd(x1, q1)),
                        _mm_and_pd(_mm_cmpge_pd(x2, q2), _mm_cmpge_pd(x3, q3)));
                    d = _mm_or_pd(d, below);
                    u = _mm_or_pd(u, _mm_andnot_pd(below, above)); /* not a copy of p */
                }
                dom = _mm_movemask_pd(d) != 0;
                if (_mm_movemask_pd(u) == 0) continue;
                for (size_t b = j; b < j + 8; b++) { /* rare: p kills one of these */
                    if (!kills5(a0[b], a1[b], a2[b], a3[b], p)) continue;
                    death[aid[b]] = (double)kept;
                    a0[b] = a2[b] = HUGE_VAL;
                    a1[b] = a3[b] = -HUGE_VAL;
                    kills++;
                }
            }
        }
#endif
        for (; j < used && !dom; j++) {
            dom = (a0[j] <= p0) & (a1[j] <= p1) & (a2[j] <= p2) & (a3[j] <= p3);
            if (!kills5(a0[j], a1[j], a2[j], a3[j], p)) continue;
            death[aid[j]] = (double)kept;
            a0[j] = a2[j] = HUGE_VAL;
            a1[j] = a3[j] = -HUGE_VAL;
            kills++;
        }
        if (dom) continue;
        memcpy(sorted + kept * 5, p, 5 * sizeof *sorted);
        c0[kept] = p0;
        c1[kept] = p1;
        c2[kept] = p2;
        c3[kept] = p3;
        death[kept] = HUGE_VAL;
        holes += kills;
        if (2 * holes > used) {
            size_t w = 0;
            for (j = 0; j < used; j++) {
                if (a0[j] == HUGE_VAL) continue;
                a0[w] = a0[j];
                a1[w] = a1[j];
                a2[w] = a2[j];
                a3[w] = a3[j];
                aid[w] = aid[j];
                w++;
            }
            used = w;
            holes = 0;
        }
        a0[used] = p0;
        a1[used] = p1;
        a2[used] = p2;
        a3[used] = p3;
        aid[used] = kept;
        used++;
        kept++;
    }
    return kept;
}

/* WFG's outer loop over the k rows of F (m columns, mutually nondominated), in parallel: each
 * slice is independent, and the slices are summed in order afterwards. */
static int hv_wfg_top(const cm_exec_config *exec, size_t k, size_t m, const double *F,
                      const double *ref, int base, double *hv)
{
    int status = CM_OK;
    double *sorted = cm_po_alloc(k, m * sizeof *sorted);
    double *part = cm_po_alloc(k, sizeof *part), *cols = NULL, *act = NULL;
    size_t *rank3 = NULL;
    cm_po_hv_ws *ws0 = cm_po_hv_ws_new(k, m, base);
    if (!sorted || !part || !ws0) {
        status = CM_ERR_SIZE;
        goto done;
    }
    const int five = m == 5 && base >= 4;
    const size_t stride = k;
    hv5_cols c5 = {{NULL, NULL, NULL, NULL}, NULL, NULL, NULL, 0};
    if (five) {
        cols = cm_po_alloc(k, 5 * sizeof *cols);
        act = cm_po_alloc(k, 4 * sizeof *act);
        rank3 = cm_po_alloc(k, 2 * sizeof *rank3);
        if (!cols || !act || !rank3) {
            status = CM_ERR_SIZE;
            goto done;
        }
        k = front5(ws0, k, F, sorted, cols, stride, act, ws0->list);
        /* the order of the 4th coordinate, ties by index: the order in which wfg_slice5 hands
         * the rows above p in the 4th coordinate to hv4d */
        static const int dims0[1] = {0};
        size_t *by3 = rank3 + k, *idx = ws0->idx;
        for (size_t i = 0; i < k; i++) idx[i] = i;
        cm_po_sort(k, cols + 3 * stride, 1, dims0, 1, idx, ws0->scratch);
        for (size_t r = 0; r < k; r++) {
            by3[r] = idx[r];
            rank3[idx[r]] = r;
        }
        for (int c = 0; c < 4; c++) c5.c[c] = cols + (size_t)c * stride;
        c5.death = cols + 4 * stride;
        c5.rank3 = rank3;
        c5.by3 = by3;
        c5.words = (k + 63) / 64;
    } else {
        sort_by_last(ws0, m, k, F, sorted);
    }
    cm_po_hv_ws_free(ws0);
    ws0 = NULL;
    const size_t work = k <= ((size_t)-1) / k ? k * k : (size_t)-1;
    const int threads = cm_loop_threads(exec, work);
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        cm_po_hv_ws *ws = cm_po_hv_ws_new(k, m - 1, base);
        /* five: also a clear bitmap over the ranks */
        double *lim = cm_po_alloc(k, (m - 1) * sizeof *lim);
        uint64_t *bits = five ? calloc(c5.words ? c5.words : 1, sizeof *bits) : NULL;
        if (!ws || !lim || (five && !bits)) {
#pragma omp atomic write
            failed = 1;
        }
        const long long count = (long long)k;
#pragma omp for schedule(dynamic, 1)
        for (long long t = count - 1; t >= 0; t--) { /* the large slices first */
            if (!ws || !lim || (five && !bits)) continue;
            part[t] = (ref[m - 1] - sorted[(size_t)t * m + m - 1]) *
                      (five ? wfg_slice5(ws, sorted, &c5, (size_t)t, lim, bits, ref)
                            : wfg_slice(ws, m, sorted, (size_t)t, lim, ref));
        }
        cm_po_hv_ws_free(ws);
        free(lim);
        free(bits);
    }
    if (failed) {
        status = CM_ERR_SIZE;
        goto done;
    }
    /* Neumaier's compensated sum: the first slices are as large as the total, the others can
     * be many orders smaller, and their rounding errors would add up over k terms */
    double total = 0.0, carry = 0.0;
    for (size_t t = 0; t < k; t++) {
        const double next = total + part[t];
        carry += fabs(total) >= fabs(part[t]) ? (total - next) + part[t] : (part[t] - next) + total;
        total = next;
    }
    *hv = total + carry;
done:
    cm_po_hv_ws_free(ws0);
    free(sorted);
    free(part);
    free(cols);
    free(act);
    free(rank3);
    return status;
}

/* ------------------------------------------------------------------ public: hypervolume */
int cm_hypervolume_f64(const cm_pareto_config *cfg, const cm_exec_config *exec, size_t n,
                       size_t m, const double *points, const double *ref, double *hv)
{
    if (!points || !ref || !hv) return CM_ERR_NULL;
    int status = check_common(cfg, n, m, points, ref);
    if (status != CM_OK) return status;
    const int generic = cfg && cfg->algorithm == CM_PARETO_GENERIC;
    const int base = generic ? 2 : 4;
    double *V = cm_po_alloc(n, m * sizeof *V);
    unsigned char *flags = NULL;
    cm_po_hv_ws *ws = NULL;
    double result = 0.0;
    if (!V) return CM_ERR_SIZE;
    size_t k = compact_valid(n, m, points, ref, V, NULL);
    if (k == 0) goto finish;
    if (m <= (size_t)base) {
        ws = cm_po_hv_ws_new(k, m, base);
        if (!ws) {
            status = CM_ERR_SIZE;
            goto finish;
        }
        result = hv_level(ws, m, k, V, ref);
        goto finish;
    }
    if (m == 5 && !generic) { /* hv_wfg_top keeps the front itself */
        status = hv_wfg_top(exec, k, m, V, ref, base, &result);
        goto finish;
    }
    flags = cm_po_alloc(k, 1);
    if (!flags) {
        status = CM_ERR_SIZE;
        goto finish;
    }
    status = cm_po_nd_flags(exec, k, m, V, generic, flags);
    if (status != CM_OK) goto finish;
    k = compact_front(k, m, V, NULL, flags);
    status = hv_wfg_top(exec, k, m, V, ref, base, &result);
finish:
    if (status == CM_OK) *hv = result;
    cm_po_hv_ws_free(ws);
    free(flags);
    free(V);
    return status;
}

/* ------------------------------------------------------------------ contributions */
/* 2-D, U mutually nondominated and distinct: in x order y decreases, and a point alone covers
 * the rectangle from its x to the next x and from its y to the previous y. */
static int hvc2d(size_t u, const double *U, const size_t *map, const double *ref, double *out)
{
    size_t *idx = cm_po_alloc(u, sizeof *idx);
    void *scratch = malloc(cm_po_sort_scratch_bytes(u));
    if (!idx || !scratch) {
        free(idx);
        free(scratch);
        return CM_ERR_SIZE;
    }
    for (size_t i = 0; i < u; i++) idx[i] = i;
    cm_po_sort(u, U, 2, dims_x, 1, idx, scratch);
    for (size_t t = 0; t < u; t++) {
        const double *p = U + 2 * idx[t];
        const double right = t + 1 < u ? U[2 * idx[t + 1]] : ref[0];
        const double top = t > 0 ? U[2 * idx[t - 1] + 1] : ref[1];
        out[map[idx[t]]] = (right - p[0]) * (top - p[1]);
    }
    free(idx);
    free(scratch);
    return CM_OK;
}

/* 3-D, U mutually nondominated and distinct (after Emmerich and Fonseca 2011). Sweeping over
 * z, a point on the 2-D staircase alone covers, in the current slice, its rectangle
 * [x, right) x [y, top) -- right the x of its staircase successor, top the y of its predecessor
 * (or ref) -- minus the "shadow" of the points it pushed off the staircase when it arrived
 * (they lie below it in z and still cover their part of the rectangle). Its shadow is kept as
 * the run of pushed-off points in x order (y decreasing). Only a point's two neighbours change
 * when another arrives: the predecessor's right and the successor's top shrink, and the shadow
 * points outside the smaller rectangle are dropped; the exclusive area E is updated by the strip
 * lost, so every point enters and leaves the staircase and a shadow once: O(n log n).
 * Every time E changes (or the point leaves), E times the z travelled since the last change
 * is added to the point's contribution. */
typedef struct {
    double x, y;
} shadow_pt;

typedef struct {
    double top, right, E, since, acc;
    size_t first, last; /* the shadow: pool[first .. last) */
} hvc_node;

/* Lower the top of a node at x0 to t (t > its y). */
static void shrink_top(hvc_node *v, const shadow_pt *pool, double x0, double t)
{
    double lost = 0.0, upper = v->top;
    while (v->first < v->last && pool[v->first].y >= t) {
        lost += (pool[v->first].x - x0) * (upper - pool[v->first].y);
        upper = pool[v->first].y;
        v->first++;
    }
    lost += ((v->first < v->last ? pool[v->first].x : v->right) - x0) * (upper - t);
    v->E -= lost;
    v->top = t;
}

/* Move the right edge of a node at height y0 to x (x > its x). */
static void shrink_right(hvc_node *v, const shadow_pt *pool, double y0, double x)
{
    double lost = 0.0, rightmost = v->right;
    while (v->first < v->last && pool[v->last - 1].x >= x) {
        lost += (rightmost - pool[v->last - 1].x) * (pool[v->last - 1].y - y0);
        rightmost = pool[v->last - 1].x;
        v->last--;
    }
    lost += (rightmost - x) * ((v->first < v->last ? pool[v->last - 1].y : v->top) - y0);
    v->E -= lost;
    v->right = x;
}

static void settle(hvc_node *v, double z)
{
    const double e = v->E > 0.0 ? v->E : 0.0; /* E >= 0 exactly; guard rounding */
    v->acc += e * (z - v->since);
    v->since = z;
}

static int hvc3d(size_t u, const double *U, const size_t *map, const double *ref, double *out)
{
    cm_po_hv_ws *ws = cm_po_hv_ws_new(u, 3, 3);
    hvc_node *node = cm_po_alloc(u, sizeof *node);
    shadow_pt *pool = cm_po_alloc(u, sizeof *pool);
    int status = CM_OK;
    if (!ws || !node || !pool) {
        status = CM_ERR_SIZE;
        goto done;
    }
    rank_by_xy(ws, u, U);
    const size_t *idx = ws->idx, *rank = ws->rank;
    const double *X = ws->X, *Y = ws->Y;
    cm_po_fset set;
    cm_po_fset_init(&set, u, ws->words);
    size_t used = 0;
    for (size_t t = 0; t < u; t++) {
        const size_t i = idx[t], r = rank[i];
        const double z = U[3 * i + 2], py = Y[r];
        const size_t a = r > 0 ? cm_po_fset_prev(&set, r - 1) : CM_PO_NONE;
        double h = a != CM_PO_NONE ? Y[a] : ref[1], x0 = X[r], gain = 0.0;
        const size_t first = used;
        size_t s = r + 1 < u ? cm_po_fset_next(&set, r + 1) : CM_PO_NONE;
        while (s != CM_PO_NONE && Y[s] >= py) { /* covered in (x, y) from now on */
            settle(&node[s], z);
            gain += (X[s] - x0) * (h - py);
            h = Y[s];
            x0 = X[s];
            pool[used].x = X[s];
            pool[used].y = Y[s];
            used++;
            cm_po_fset_erase(&set, s);
            s = s + 1 < u ? cm_po_fset_next(&set, s + 1) : CM_PO_NONE;
        }
        gain += ((s != CM_PO_NONE ? X[s] : ref[0]) - x0) * (h - py);
        if (a != CM_PO_NONE) {
            settle(&node[a], z);
            shrink_right(&node[a], pool, Y[a], X[r]);
        }
        if (s != CM_PO_NONE) {
            settle(&node[s], z);
            shrink_top(&node[s], pool, X[s], py);
        }
        hvc_node *v = &node[r];
        v->top = a != CM_PO_NONE ? Y[a] : ref[1];
        v->right = s != CM_PO_NONE ? X[s] : ref[0];
        v->E = gain;
        v->since = z;
        v->acc = 0.0;
        v->first = first;
        v->last = used;
        cm_po_fset_insert(&set, r);
    }
    for (size_t r = cm_po_fset_next(&set, 0); r != CM_PO_NONE;
         r = r + 1 < u ? cm_po_fset_next(&set, r + 1) : CM_PO_NONE)
        settle(&node[r], ref[2]);
    for (size_t i = 0; i < u; i++) out[map[i]] = node[rank[i]].acc;
done:
    cm_po_hv_ws_free(ws);
    free(node);
    free(pool);
    return status;
}

/* Leave-one-out: for each of the nt targets (rows of V), its box volume minus the hypervolume
 * of all other rows of V (k x m) clipped to its box. In parallel over the targets. */
static int hvc_leave_one_out(const cm_exec_config *exec, size_t k, size_t m, const double *V,
                             size_t nt, const size_t *targets, const size_t *map,
                             const double *ref, double *out)
{
    const size_t work = k <= ((size_t)-1) / (nt ? nt : 1) ? k * nt : (size_t)-1;
    const int threads = cm_loop_threads(exec, work);
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        cm_po_hv_ws *ws = cm_po_hv_ws_new(k, m, 4);
        double *clip = cm_po_alloc(k, m * sizeof *clip);
        if (!ws || !clip) {
#pragma omp atomic write
            failed = 1;
        }
        const long long count = (long long)nt;
#pragma omp for schedule(dynamic, 4)
        for (long long q = 0; q < count; q++) {
            if (!ws || !clip) continue;
            const size_t j = targets[q];
            const double *p = V + j * m;
            size_t c = 0;
            for (size_t i = 0; i < k; i++) {
                if (i == j) continue;
                const double *o = V + i * m;
                double *w = clip + c * m;
                for (size_t d = 0; d < m; d++) w[d] = o[d] > p[d] ? o[d] : p[d];
                c++;
            }
            const double v = box_volume(p, ref, m) - cm_po_hv(ws, c, m, clip, ref);
            out[map[j]] = v > 0.0 ? v : 0.0;
        }
        cm_po_hv_ws_free(ws);
        free(clip);
    }
    return failed ? CM_ERR_SIZE : CM_OK;
}

int cm_hv_contributions_f64(const cm_pareto_config *cfg, const cm_exec_config *exec, size_t n,
                            size_t m, const double *points, const double *ref,
                            double *contrib)
{
    if (!points || !ref || !contrib) return CM_ERR_NULL;
    int status = check_common(cfg, n, m, points, ref);
    if (status != CM_OK) return status;
    if (n == 0) return CM_OK;
    cm_pareto_config c;
    cm_pareto_config_default(&c);
    if (cfg) c = *cfg;
    const int generic = c.algorithm == CM_PARETO_GENERIC;
    double *out = cm_po_alloc(n, sizeof *out);
    double *V = cm_po_alloc(n, m * sizeof *V);
    size_t *map = cm_po_alloc(n, sizeof *map);
    size_t *targets = cm_po_alloc(n, sizeof *targets);
    unsigned char *flags = cm_po_alloc(n, 1);
    if (!out || !V || !map || !targets || !flags) {
        status = CM_ERR_SIZE;
        goto done;
    }
    for (size_t i = 0; i < n; i++) out[i] = 0.0;
    size_t k = compact_valid(n, m, points, ref, V, map);
    if (k == 0) goto done;
    status = cm_po_nd_flags(exec, k, m, V, generic, flags);
    if (status != CM_OK) goto done;
    if (c.ignore_dominated) {
        /* the front, one copy of each point; every copy of a duplicated point gets 0 */
        unsigned char *dup = cm_po_alloc(k, 1);
        if (!dup) {
            status = CM_ERR_SIZE;
            goto done;
        }
        size_t u = 0;
        for (size_t j = 0; j < k; j++)
            if ((flags[j] & CM_PO_ND) && !(flags[j] & CM_PO_LATER))
                dup[u++] = (flags[j] & CM_PO_TWIN) != 0;
        compact_front(k, m, V, map, flags);
        size_t nt = 0;
        for (size_t j = 0; j < u; j++)
            if (!dup[j]) targets[nt++] = j;
        if (m == 2 && !generic) status = hvc2d(u, V, map, ref, out);
        else if (m == 3 && !generic) status = hvc3d(u, V, map, ref, out);
        else status = hvc_leave_one_out(exec, u, m, V, nt, targets, map, ref, out);
        for (size_t j = 0; j < u; j++)
            if (dup[j]) out[map[j]] = 0.0;
        free(dup);
    } else {
        size_t nt = 0;
        for (size_t j = 0; j < k; j++)
            if ((flags[j] & CM_PO_ND) && !(flags[j] & CM_PO_TWIN)) targets[nt++] = j;
        status = hvc_leave_one_out(exec, k, m, V, nt, targets, map, ref, out);
    }
done:
    if (status == CM_OK) memcpy(contrib, out, n * sizeof *out);
    free(out);
    free(V);
    free(map);
    free(targets);
    free(flags);
    return status;
}
