/* pareto_nd.c -- nondominance (cm_nondominated_f64) and nondominated sorting
 * (cm_pareto_rank_f64), plus the classification and the filter the hypervolume code reuses. */
#include <string.h>

#include "pareto_internal.h"

/* a <= b in every one of the m coordinates */
static inline int weakly_dominates(const double *a, const double *b, size_t m)
{
    for (size_t k = 0; k < m; k++)
        if (a[k] > b[k]) return 0;
    return 1;
}

static inline int same_point(const double *a, const double *b, size_t m)
{
    for (size_t k = 0; k < m; k++)
        if (a[k] != b[k]) return 0;
    return 1;
}

/* The lexicographic order each algorithm sweeps in: (x, y) for the 2-D sweep, (z, x, y) for the
 * 3-D sweep, (f_1, .., f_m) otherwise. In every one of them identical points are adjacent and
 * ordered by index, and a point that dominates another comes before it. */
static const int zxy_dims[3] = {2, 0, 1};

static const int *sweep_dims(size_t m, int generic)
{
    return !generic && m == 3 ? zxy_dims : NULL; /* NULL: (f_1, .., f_m) */
}

/* ------------------------------------------------------------------ classification */
/* Among the u group leaders L (u x m, in sweep order, pairwise distinct), set nd[t] = 1 when no
 * other leader dominates leader t. */
static void leaders_2d(size_t u, const double *L, unsigned char *nd)
{
    double min_y = 0.0;
    for (size_t t = 0; t < u; t++) {
        const double y = L[2 * t + 1];
        nd[t] = t == 0 || y < min_y;
        if (nd[t]) min_y = y;
    }
}

static int leaders_3d(size_t u, const double *L, unsigned char *nd)
{
    /* x-ranks: the leaders sorted by (x, y, z) */
    size_t *xorder = cm_po_alloc(u, sizeof *xorder);
    size_t *rank = cm_po_alloc(u, sizeof *rank);
    double *Y = cm_po_alloc(u, sizeof *Y);
    void *scratch = malloc(cm_po_sort_scratch_bytes(u));
    uint64_t *words = cm_po_alloc(cm_po_fset_words(u), sizeof *words);
    int status = CM_OK;
    if (!xorder || !rank || !Y || !scratch || !words) {
        status = CM_ERR_SIZE;
        goto done;
    }
    static const int xdims[3] = {0, 1, 2};
    for (size_t t = 0; t < u; t++) xorder[t] = t;
    cm_po_sort(u, L, 3, xdims, 3, xorder, scratch);
    for (size_t r = 0; r < u; r++) {
        rank[xorder[r]] = r;
        Y[r] = L[3 * xorder[r] + 1];
    }
    cm_po_fset set;
    cm_po_fset_init(&set, u, words);
    for (size_t t = 0; t < u; t++) {
        const size_t r = rank[t];
        const double y = L[3 * t + 1];
        /* every staircase point of lower rank has x <= this x and came earlier in z; the one
         * just below has the least y among them */
        const size_t a = r > 0 ? cm_po_fset_prev(&set, r - 1) : CM_PO_NONE;
        if (a != CM_PO_NONE && Y[a] <= y) {
            nd[t] = 0;
            continue;
        }
        nd[t] = 1;
        size_t s = r + 1 < u ? cm_po_fset_next(&set, r + 1) : CM_PO_NONE;
        while (s != CM_PO_NONE && Y[s] >= y) { /* now dominated in (x, y) by this point */
            cm_po_fset_erase(&set, s);
            s = s + 1 < u ? cm_po_fset_next(&set, s + 1) : CM_PO_NONE;
        }
        cm_po_fset_insert(&set, r);
    }
done:
    free(xorder);
    free(rank);
    free(Y);
    free(scratch);
    free(words);
    return status;
}

/* In lexicographic order only the leaders before a leader can dominate it, and if any does, a
 * nondominated one does. The leaders are taken in blocks: each leader of a block is compared,
 * in parallel, with the nondominated leaders of the earlier blocks (kept contiguous in F,
 * newest first tried) and with the leaders before it in its block; then the block's
 * nondominated leaders join F. O(m u (|front| + block)); the answer is exact whatever the
 * split, so it does not depend on the thread count. */
#define ND_BLOCK 512

static int leaders_generic(const cm_exec_config *exec, size_t u, size_t m, const double *L,
                           unsigned char *nd)
{
    double *F = cm_po_alloc(u, m * sizeof *F);
    if (!F) return CM_ERR_SIZE;
    size_t nf = 0;
    for (size_t b0 = 0; b0 < u; b0 += ND_BLOCK) {
        const size_t b1 = b0 + ND_BLOCK < u ? b0 + ND_BLOCK : u;
        const size_t bn = b1 - b0;
        const size_t per = nf + bn / 2; /* comparisons per leader, roughly */
        const size_t work = per && bn > ((size_t)-1) / per ? (size_t)-1 : bn * per;
        const int threads = cm_loop_threads(exec, work);
        const long long lo = (long long)b0, hi = (long long)b1;
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
        for (long long t = lo; t < hi; t++) {
            const double *p = L + (size_t)t * m;
            unsigned char flag = 1;
            for (size_t f = nf; f-- > 0;)
                if (weakly_dominates(F + f * m, p, m)) {
                    flag = 0;
                    break;
                }
            for (size_t s = b0; flag && s < (size_t)t; s++)
                if (weakly_dominates(L + s * m, p, m)) flag = 0;
            nd[t] = flag;
        }
        for (size_t t = b0; t < b1; t++)
            if (nd[t]) memcpy(F + nf++ * m, L + t * m, m * sizeof *F);
    }
    free(F);
    return CM_OK;
}

int cm_po_nd_flags(const cm_exec_config *exec, size_t n, size_t m, const double *pts,
                   int generic, unsigned char *flags)
{
    if (n == 0) return CM_OK;
    int status = CM_OK;
    size_t *order = cm_po_alloc(n, sizeof *order);
    size_t *lead = cm_po_alloc(n, sizeof *lead); /* position in order of each group's leader */
    void *scratch = malloc(cm_po_sort_scratch_bytes(n));
    double *L = NULL;
    unsigned char *nd = NULL;
    if (!order || !lead || !scratch) {
        status = CM_ERR_SIZE;
        goto done;
    }
    for (size_t i = 0; i < n; i++) order[i] = i;
    cm_po_sort(n, pts, m, sweep_dims(m, generic), (int)m, order, scratch);
    free(scratch);
    scratch = NULL;

    /* groups of identical points (adjacent in the sweep order, lowest index first) */
    size_t u = 0;
    for (size_t t = 0; t < n; t++) {
        const size_t i = order[t];
        if (t > 0 && same_point(pts + order[t - 1] * m, pts + i * m, m)) {
            flags[i] = CM_PO_TWIN | CM_PO_LATER;
            flags[order[lead[u - 1]]] |= CM_PO_TWIN;
        } else {
            flags[i] = 0;
            lead[u++] = t;
        }
    }
    L = cm_po_alloc(u, m * sizeof *L);
    nd = cm_po_alloc(u, sizeof *nd);
    if (!L || !nd) {
        status = CM_ERR_SIZE;
        goto done;
    }
    for (size_t g = 0; g < u; g++) memcpy(L + g * m, pts + order[lead[g]] * m, m * sizeof *L);
    if (!generic && m == 2) {
        leaders_2d(u, L, nd);
    } else if (!generic && m == 3) {
        status = leaders_3d(u, L, nd);
        if (status != CM_OK) goto done;
    } else {
        status = leaders_generic(exec, u, m, L, nd);
        if (status != CM_OK) goto done;
    }
    for (size_t g = 0; g < u; g++) {
        if (!nd[g]) continue;
        const size_t end = g + 1 < u ? lead[g + 1] : n;
        for (size_t t = lead[g]; t < end; t++) flags[order[t]] |= CM_PO_ND;
    }
done:
    free(order);
    free(lead);
    free(scratch);
    free(L);
    free(nd);
    return status;
}

size_t cm_po_filter_nd(size_t k, size_t m, double *pts)
{
    size_t cnt = 0; /* rows [0, cnt) hold the nondominated rows so far */
    for (size_t i = 0; i < k; i++) {
        const double *q = pts + i * m;
        size_t w = 0;
        int dominated = 0;
        for (size_t j = 0; j < cnt; j++) {
            const double *l = pts + j * m;
            int le = 1, ge = 1;
            for (size_t d = 0; d < m && (le || ge); d++) {
                le &= l[d] <= q[d];
                ge &= l[d] >= q[d];
            }
            if (le) { /* l weakly dominates q (no row was dropped before: the list is an
                         antichain, so q cannot both dominate one row and be dominated) */
                dominated = 1;
                break;
            }
            if (ge) continue; /* q dominates l: drop l */
            if (w != j) memcpy(pts + w * m, l, m * sizeof *pts);
            w++;
        }
        if (dominated) continue;
        if (w != i) memmove(pts + w * m, q, m * sizeof *pts);
        cnt = w + 1;
    }
    return cnt;
}

/* ------------------------------------------------------------------ public: nondominance */
int cm_nondominated_f64(const cm_pareto_config *cfg, const cm_exec_config *exec, size_t n,
                        size_t m, const double *points, unsigned char *mask)
{
    if (!points || !mask) return CM_ERR_NULL;
    int status = cm_po_check_cfg(cfg);
    if (status != CM_OK) return status;
    if ((status = cm_po_check_size(n, m)) != CM_OK) return status;
    if (!cm_po_all_finite(n * m, points)) return CM_ERR_HYPER;
    if (n == 0) return CM_OK;
    cm_pareto_config c;
    cm_pareto_config_default(&c);
    if (cfg) c = *cfg;
    unsigned char *flags = cm_po_alloc(n, 1);
    if (!flags) return CM_ERR_SIZE;
    status = cm_po_nd_flags(exec, n, m, points, c.algorithm == CM_PARETO_GENERIC, flags);
    if (status == CM_OK)
        for (size_t i = 0; i < n; i++)
            mask[i] = (flags[i] & CM_PO_ND) && (c.keep_weakly || !(flags[i] & CM_PO_LATER));
    free(flags);
    return status;
}

/* ------------------------------------------------------------------ public: ranks */
/* Jensen's sweep: in (x, y) order every dominator comes first; front k's least y so far, fm[k],
 * is non-decreasing in k, and a point joins the first front whose fm exceeds its y. */
static void rank_2d(size_t n, const double *S, int64_t *rk, double *fm)
{
    size_t fronts = 0;
    for (size_t t = 0; t < n; t++) {
        const double y = S[2 * t + 1];
        if (t > 0 && S[2 * t] == S[2 * t - 2] && y == S[2 * t - 1]) {
            rk[t] = rk[t - 1];
            continue;
        }
        size_t lo = 0, hi = fronts;
        while (lo < hi) {
            const size_t mid = lo + (hi - lo) / 2;
            if (fm[mid] <= y) lo = mid + 1;
            else hi = mid;
        }
        fm[lo] = y;
        if (lo == fronts) fronts++;
        rk[t] = (int64_t)lo;
    }
}

/* Efficient nondominated sort with binary search (ENS-BS, Zhang et al. 2015): in lexicographic
 * order a point's dominators all come first; if a point is dominated by a member of front k, it
 * is dominated by a member of every front before k, so the first front without a dominator is
 * found by bisection. Each front is a list, newest member first. */
static void rank_ens(size_t n, size_t m, const double *S, int64_t *rk, size_t *head,
                     size_t *link)
{
    size_t fronts = 0;
    for (size_t t = 0; t < n; t++) {
        const double *p = S + t * m;
        if (t > 0 && same_point(p - m, p, m)) {
            rk[t] = rk[t - 1];
            continue;
        }
        size_t lo = 0, hi = fronts;
        while (lo < hi) {
            const size_t mid = lo + (hi - lo) / 2;
            int dominated = 0;
            for (size_t s = head[mid]; s != CM_PO_NONE; s = link[s])
                if (weakly_dominates(S + s * m + 1, p + 1, m - 1)) { /* S[s][0] <= p[0] */
                    dominated = 1;
                    break;
                }
            if (dominated) lo = mid + 1;
            else hi = mid;
        }
        if (lo == fronts) head[fronts++] = CM_PO_NONE;
        link[t] = head[lo];
        head[lo] = t;
        rk[t] = (int64_t)lo;
    }
}

/* 3-D: sweep in (z, x, y) order; front k keeps the 2-D staircase (x up, y down) of its members
 * so far in a treap keyed by x-rank (nodes are the points' x-ranks, priorities a hash of them).
 * A point is dominated by front k iff the staircase member just before it in x has y <= its y;
 * as in ENS the first front without a dominator is found by bisection, and the point then
 * joins that front's staircase, pushing off the members it dominates in (x, y).
 * O(n log n log F) for F fronts. */
typedef struct {
    size_t l, r;
    uint64_t pri;
} treap_node;

static size_t treap_merge(treap_node *T, size_t a, size_t b) /* keys of a < keys of b */
{
    if (a == CM_PO_NONE) return b;
    if (b == CM_PO_NONE) return a;
    if (T[a].pri > T[b].pri) {
        T[a].r = treap_merge(T, T[a].r, b);
        return a;
    }
    T[b].l = treap_merge(T, a, T[b].l);
    return b;
}

/* lo: keys < key, hi: the rest */
static void treap_split_key(treap_node *T, size_t t, size_t key, size_t *lo, size_t *hi)
{
    if (t == CM_PO_NONE) {
        *lo = *hi = CM_PO_NONE;
    } else if (t < key) {
        treap_split_key(T, T[t].r, key, &T[t].r, hi);
        *lo = t;
    } else {
        treap_split_key(T, T[t].l, key, lo, &T[t].l);
        *hi = t;
    }
}

/* In a staircase y decreases with the key: hi gets the prefix with y >= py, rest the others. */
static void treap_split_y(treap_node *T, const double *Y, size_t t, double py, size_t *hi,
                          size_t *rest)
{
    if (t == CM_PO_NONE) {
        *hi = *rest = CM_PO_NONE;
    } else if (Y[t] >= py) {
        treap_split_y(T, Y, T[t].r, py, &T[t].r, rest);
        *hi = t;
    } else {
        treap_split_y(T, Y, T[t].l, py, hi, &T[t].l);
        *rest = t;
    }
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* S: the n points in (z, x, y) order; rk[t] the rank of S's row t. */
static int rank_3d(size_t n, const double *S, int64_t *rk)
{
    size_t *xorder = cm_po_alloc(n, sizeof *xorder);
    size_t *xr = cm_po_alloc(n, sizeof *xr);
    double *Y = cm_po_alloc(n, sizeof *Y);
    treap_node *T = cm_po_alloc(n, sizeof *T);
    size_t *root = cm_po_alloc(n, sizeof *root);
    void *scratch = malloc(cm_po_sort_scratch_bytes(n));
    int status = CM_OK;
    if (!xorder || !xr || !Y || !T || !root || !scratch) {
        status = CM_ERR_SIZE;
        goto done;
    }
    static const int xyz[3] = {0, 1, 2};
    for (size_t t = 0; t < n; t++) xorder[t] = t;
    cm_po_sort(n, S, 3, xyz, 3, xorder, scratch);
    for (size_t q = 0; q < n; q++) {
        xr[xorder[q]] = q;
        Y[q] = S[3 * xorder[q] + 1];
        T[q].pri = mix64(q);
    }
    size_t fronts = 0;
    for (size_t t = 0; t < n; t++) {
        const double *p = S + 3 * t;
        if (t > 0 && p[0] == p[-3] && p[1] == p[-2] && p[2] == p[-1]) {
            rk[t] = rk[t - 1];
            continue;
        }
        const size_t q = xr[t];
        const double py = p[1];
        size_t lo = 0, hi = fronts;
        while (lo < hi) {
            const size_t mid = lo + (hi - lo) / 2;
            size_t best = CM_PO_NONE;
            for (size_t v = root[mid]; v != CM_PO_NONE;) {
                if (v < q) {
                    best = v;
                    v = T[v].r;
                } else {
                    v = T[v].l;
                }
            }
            if (best != CM_PO_NONE && Y[best] <= py) lo = mid + 1;
            else hi = mid;
        }
        if (lo == fronts) root[fronts++] = CM_PO_NONE;
        size_t left, right, gone, kept;
        treap_split_key(T, root[lo], q, &left, &right);
        treap_split_y(T, Y, right, py, &gone, &kept);
        (void)gone; /* pushed off this front's staircase for good */
        T[q].l = T[q].r = CM_PO_NONE;
        root[lo] = treap_merge(T, treap_merge(T, left, q), kept);
        rk[t] = (int64_t)lo;
    }
done:
    free(xorder);
    free(xr);
    free(Y);
    free(T);
    free(root);
    free(scratch);
    return status;
}

int cm_pareto_rank_f64(const cm_pareto_config *cfg, const cm_exec_config *exec, size_t n,
                       size_t m, const double *points, int64_t *rank)
{
    (void)exec;
    if (!points || !rank) return CM_ERR_NULL;
    int status = cm_po_check_cfg(cfg);
    if (status != CM_OK) return status;
    if ((status = cm_po_check_size(n, m)) != CM_OK) return status;
    if (!cm_po_all_finite(n * m, points)) return CM_ERR_HYPER;
    if (n == 0) return CM_OK;
    const int generic = cfg && cfg->algorithm == CM_PARETO_GENERIC;
    size_t *order = cm_po_alloc(n, sizeof *order);
    void *scratch = malloc(cm_po_sort_scratch_bytes(n));
    double *S = cm_po_alloc(n, m * sizeof *S);
    int64_t *rk = cm_po_alloc(n, sizeof *rk);
    size_t *head = cm_po_alloc(n, sizeof *head);
    size_t *link = cm_po_alloc(n, sizeof *link);
    double *fm = cm_po_alloc(n, sizeof *fm);
    if (!order || !scratch || !S || !rk || !head || !link || !fm) {
        status = CM_ERR_SIZE;
        goto done;
    }
    for (size_t i = 0; i < n; i++) order[i] = i;
    cm_po_sort(n, points, m, sweep_dims(m, generic), (int)m, order, scratch);
    for (size_t t = 0; t < n; t++) memcpy(S + t * m, points + order[t] * m, m * sizeof *S);
    if (m == 1) {
        for (size_t t = 0; t < n; t++)
            rk[t] = t == 0 ? 0 : rk[t - 1] + (S[t] != S[t - 1]);
    } else if (m == 2 && !generic) {
        rank_2d(n, S, rk, fm);
    } else if (m == 3 && !generic) {
        status = rank_3d(n, S, rk);
        if (status != CM_OK) goto done;
    } else {
        rank_ens(n, m, S, rk, head, link);
    }
    for (size_t t = 0; t < n; t++) rank[order[t]] = rk[t];
done:
    free(order);
    free(scratch);
    free(S);
    free(rk);
    free(head);
    free(link);
    free(fm);
    return status;
}
