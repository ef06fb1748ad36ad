/*
 * cmadam_pareto.h -- Pareto metrics of the cmadam core: hypervolume, hypervolume contributions,
 * nondominance, nondominated sorting, IGD / IGD+, spacing and spread.
 *
 * Conventions (on top of cmadam.h's):
 *   - every objective is minimised;
 *   - a point set is a row-major (n x m) double array: point i is points[i*m .. i*m + m);
 *   - a point p dominates q (p < q) when p_k <= q_k for every k and p != q; p weakly
 *     dominates q when p_k <= q_k for every k (p == q included);
 *   - every input coordinate (points, ref, reference fronts) must be finite, else
 *     CM_ERR_HYPER; m == 0, m > 10^6, n * m overflowing size_t, or a workspace that cannot be
 *     allocated give CM_ERR_SIZE; NULL required pointers give CM_ERR_NULL; an unknown
 *     cfg->algorithm gives CM_ERR_HYPER. On any error the outputs are left untouched;
 *   - cfg may be NULL (cm_pareto_config_default's values), exec may be NULL (defaults);
 *   - only float64 kernels exist: the Python layer converts float32 input to float64 (exactly);
 *   - kernels that allocate workspace free it on every path before returning; nothing is kept
 *     between calls, so every function is reentrant;
 *   - where a loop is split across OpenMP threads (IGD, spacing, nondominance for m >= 4,
 *     leave-one-out contributions, the outer loop of the m >= 5 hypervolume), every item is
 *     computed independently and the items are combined in a fixed order, so results are
 *     bit-identical for any thread count.
 */
#ifndef CMADAM_PARETO_H
#define CMADAM_PARETO_H

#include "cmadam.h"

#ifdef __cplusplus
extern "C" {
#endif

CM_API_BEGIN
/* CM_CDEF_BEGIN -- read by madam/_build_cmadam.py for CFFI; no preprocessor lines below. */

/* ---------------------------------------------------------------- configuration */
enum cm_pareto_algorithm {
    CM_PARETO_AUTO = 0,   /* the specialised 2-D / 3-D (and 4-D hypervolume) algorithms */
    CM_PARETO_GENERIC = 1 /* the any-dimension algorithms for every m (cross-checks) */
};

typedef struct cm_pareto_config {
    int algorithm;        /* enum cm_pareto_algorithm */
    int keep_weakly;      /* cm_nondominated_f64: 1 marks every copy of a duplicated
                             nondominated point, 0 only the first (lowest index) copy */
    int ignore_dominated; /* cm_hv_contributions_f64: 1 drops dominated points before
                             computing contributions (moocore's default); 0 keeps them, the
                             exact hv(X) - hv(X \ {x}) */
} cm_pareto_config;

/* algorithm CM_PARETO_AUTO, keep_weakly 0, ignore_dominated 1. */
void cm_pareto_config_default(cm_pareto_config *cfg);

/* ---------------------------------------------------------------- hypervolume
 * hv = Lebesgue measure of the union over points p of the boxes [p, ref] (minimisation):
 *   hv = vol( U_p { y : p <= y <= ref } ).
 * Points that do not strictly dominate ref (p_k >= ref_k for some k) enclose no volume and are
 * discarded first (moocore's convention); dominated and duplicated points add nothing.
 * n == 0 (or no point strictly below ref) gives 0.
 * Algorithms: m = 1: ref - min; m = 2: sort + sweep, O(n log n); m = 3: sweep over the third
 * objective with a 64-ary bitmap search tree over the x-ranks for the 2-D staircase,
 * O(n log n); m = 4: HV4D+ (Guerreiro and Fonseca 2018), a sweep over the fourth objective
 * adding each point's exclusive 3-D volume over the points before it, found in O(n) from
 * their 3-D front kept in (x, y) order and in z order, O(n^2); m >= 5 (or CM_PARETO_GENERIC
 * for m >= 3): WFG (While, Bradstreet and Barone 2012) -- hv(S) = sum over the points p_t
 * sorted by the last objective of
 * (ref_m - p_t,m) * [ vol_{m-1}(p_t) - hv_{m-1}(nd({max(p_t, p_j) : j < t})) ], down to the
 * 4-D sweep (the 2-D sweep under CM_PARETO_GENERIC), its outer loop in parallel; each limited
 * set first loses, in O(t m), the points weakly dominated by a limited point above p_t in one
 * coordinate only (the nondominated filter then runs only above 5-D: the 4-D sweep needs no
 * filtered input); exponential in m in the worst case. For m = 5 the top level keeps the
 * front itself (sorted by the 5th objective, ties by the others, each point checked against
 * the kept ones), scans the points before p_t column by column without branches, and hands
 * each limited set to the 4-D sweep already in order of its 4th coordinate. */
int cm_hypervolume_f64(const cm_pareto_config *cfg, const cm_exec_config *exec, size_t n,
                       size_t m, const double *points, const double *ref, double *hv);

/* ---------------------------------------------------------------- contributions
 * contrib[i] = hv(X) - hv(X \ {x_i}), the volume dominated by x_i alone.
 * Points that do not strictly dominate ref, dominated points and every copy of a duplicated
 * point get 0. With cfg->ignore_dominated (default) the dominated points are removed before
 * the contributions of the others are computed (moocore's default); without it they count, so
 * a point dominated by a single point lowers that point's contribution.
 * Algorithms (ignore_dominated): m = 2: sweep, O(n log n); m = 3: one sweep over the third
 * objective tracking every staircase point's exclusive rectangle, O(n log n); otherwise (and
 * always without ignore_dominated) leave-one-out: contrib = vol([x_i, ref]) -
 * hv({max(x_j, x_i) : j != i}), in parallel over i. */
int cm_hv_contributions_f64(const cm_pareto_config *cfg, const cm_exec_config *exec, size_t n,
                            size_t m, const double *points, const double *ref,
                            double *contrib);

/* ---------------------------------------------------------------- nondominance
 * mask[i] = 1 when no point dominates point i, else 0. For a set of identical nondominated
 * points every copy is marked with cfg->keep_weakly, only the first (lowest index) copy
 * without it (moocore's keep_weakly semantics).
 * m = 2: sort + sweep; m = 3: sweep with the bitmap-tree staircase, both O(n log n);
 * m >= 4 (or CM_PARETO_GENERIC): lexicographic sort, then each point is compared with the
 * nondominated points before it (blocks of points in parallel), O(m n (|front| + 512)). */
int cm_nondominated_f64(const cm_pareto_config *cfg, const cm_exec_config *exec, size_t n,
                        size_t m, const double *points, unsigned char *mask);

/* ---------------------------------------------------------------- nondominated sorting
 * rank[i] = 0 for the nondominated points, 1 for those nondominated once rank 0 is removed,
 * and so on; identical points share their rank (moocore's pareto_rank).
 * m = 2: Jensen's sweep, O(n log n); m = 3: sweep over the third objective with one treap
 * staircase per front and bisection over the fronts, O(n log n log F); m >= 4 (or
 * CM_PARETO_GENERIC): efficient nondominated sort with binary search over the fronts (Zhang
 * et al. 2015), O(m n^2) worst case. */
int cm_pareto_rank_f64(const cm_pareto_config *cfg, const cm_exec_config *exec, size_t n,
                       size_t m, const double *points, int64_t *rank);

/* ---------------------------------------------------------------- IGD, IGD+
 * For an approximation A (n x m) and a reference front R (n_ref x m):
 *   IGD  = (1 / n_ref) sum_{r in R} min_{a in A} sqrt( sum_k (a_k - r_k)^2 )
 *   IGD+ = (1 / n_ref) sum_{r in R} min_{a in A} sqrt( sum_k max(a_k - r_k, 0)^2 )
 * (IGD+ after Ishibuchi et al. 2015). n == 0 gives +Inf; n_ref == 0 is CM_ERR_SIZE.
 * The sum runs over R in order, so the value is bit-identical for any thread count. */
int cm_igd_f64(const cm_exec_config *exec, size_t n, size_t m, const double *points,
               size_t n_ref, const double *ref_front, double *value);
int cm_igd_plus_f64(const cm_exec_config *exec, size_t n, size_t m, const double *points,
                    size_t n_ref, const double *ref_front, double *value);

/* ---------------------------------------------------------------- spacing (Schott 1995)
 *   d_i = min_{j != i} sum_k |a_ik - a_jk|     (Manhattan distance to the nearest other point)
 *   S   = sqrt( sum_i (d_i - mean(d))^2 / (n - 1) )
 * n < 2 is CM_ERR_SIZE. */
int cm_spacing_f64(const cm_exec_config *exec, size_t n, size_t m, const double *points,
                   double *value);

/* ---------------------------------------------------------------- spread (Deb et al. 2002)
 * 2-D only (m must be 2, else CM_ERR_SIZE), n >= 2. The points are sorted by the first
 * objective (ties by the second); d_i (i = 1 .. n-1) are the Euclidean distances between
 * consecutive points and dbar their mean. With a reference front (n_ref >= 1), d_f is the
 * distance from the first sorted point to the reference point with the least first objective
 * and d_l the distance from the last sorted point to the reference point with the least second
 * objective (ties broken by the other objective); without one (n_ref == 0, ref_front may be
 * NULL) d_f = d_l = 0. Then
 *   Delta = (d_f + d_l + sum_i |d_i - dbar|) / (d_f + d_l + (n - 1) dbar),
 * NaN when the denominator is 0 (every point identical and on the extremes). */
int cm_spread_f64(size_t n, size_t m, const double *points, size_t n_ref,
                  const double *ref_front, double *value);

/* CM_CDEF_END */
CM_API_END

#ifdef __cplusplus
}
#endif

#endif /* CMADAM_PARETO_H */
