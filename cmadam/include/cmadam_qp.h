/* cmadam_qp.h -- the small dense inner solvers of madam.solvers, in double precision.
 *
 * The multi-objective solvers (MGDA, UPGrad, CAGrad, Nash-MTL) reduce to convex quadratic
 * programs over C x C Gramians. These are the two solvers they need, in C (madam/_qp.py calls
 * them); madam/_inner.py holds the same algorithms in NumPy, the reference the tests check
 * them against. Both are serial (C is small) and reentrant: no globals, caller-owned arrays.
 *
 * The active-set QP:  min 1/2 x^T Q x + c^T x  over the probability simplex {x >= 0, sum x = 1}
 * (simplex = 1) or the nonnegative orthant {x >= 0} (simplex = 0). Q (k x k, row-major) must be
 * symmetric positive semi-definite (its symmetric part is used) and the objective bounded below
 * on every face of the feasible set (true when Q is positive definite or c lies in the range of
 * Q: every use in madam). Primal active-set method (Nocedal & Wright, Alg. 16.3):
 *   - the problem is scaled by s = max(max|Q|, max|c|, DBL_MIN); tol is on that scale;
 *   - from the start x (negative entries set to 0; on the simplex divided by its sum, or the
 *     barycentre if that is 0), the bounds at 0 are active;
 *   - each iteration takes, on the free set F, the minimum-norm step to a minimiser of the
 *     face: the pseudo-inverse solution of Q_FF p = -g_F (g = Q x + c) on the orthant; on the
 *     simplex the same on the subspace sum p = 0 (an orthonormal basis of it from one Householder
 *     reflection). The pseudo-inverse comes from a Cholesky factorisation with diagonal
 *     pivoting, stopped at pivots <= m eps max diag (rank r), then for r < m a Householder QR
 *     of the m x r factor L: Q_FF^+ = Q1 R^-T R^-1 Q1^T;
 *   - the step is shortened where a free variable would turn negative (that bound becomes
 *     active); a full step lands on the face minimiser, where the bound with the most negative
 *     multiplier (g_i - theta, theta the mean of g over F on the simplex, else 0) is released;
 *     multipliers count as nonnegative within tol + 32 eps (sum_j |Q_ij| x_j + |c_i| + |theta|);
 *   - a released bound that blocks at once (a rounding-level multiplier) is not released again
 *     until the iterate moves, which rules out cycling.
 * Outside that contract (Q not PSD) no error is detected, but x stays feasible: an iteration
 * whose step is not finite ends the solve (converged 0) at the last iterate.
 * result->kkt is the largest violation of the optimality conditions at the returned x, on the
 * scaled problem (simplex: the spread of g over the support, |sum x - 1|; orthant: negative
 * g_i, |g_i| on the support).
 *
 * The Frank-Wolfe min-norm point:  min_{x in simplex} x^T G x  (G k x k, PSD): from x, each
 * iteration takes the better of the Frank-Wolfe direction e_s - x (s = argmin (Gx)_s) and the
 * away direction x - e_v (v = argmax over x_v > 0 of (Gx)_v), with the exact line search; G is
 * scaled by max diag G, Gx is updated incrementally and recomputed every 64 iterations. It stops
 * when the Frank-Wolfe gap x^T G x - min_s (Gx)_s (scaled) is <= tol, or after max_iter
 * iterations (result->converged = 0, not an error), or (G not PSD) at a gap or step that is not
 * finite (gap reported as +inf if NaN).
 *
 * Errors (outputs untouched): NULL cfg, q or g, x, work or result: CM_ERR_NULL (c may be NULL:
 * c = 0); k == 0 or k > 65536: CM_ERR_SIZE; tol NaN, negative or infinite, max_iter < 0, simplex
 * not 0/1: CM_ERR_HYPER; an element of q, c or x not finite: CM_ERR_HYPER (the problem's data
 * are its parameters). */
#ifndef CMADAM_QP_H
#define CMADAM_QP_H

#include "cmadam.h"

#ifdef __cplusplus
extern "C" {
#endif

CM_API_BEGIN
/* CM_CDEF_BEGIN */

typedef struct cm_qp_config {
    double tol;        /* multiplier tolerance on the scaled problem: finite, >= 0 */
    int64_t max_iter;  /* >= 0; 0 means 50 + 20 k */
    int simplex;       /* 1: the probability simplex; 0: the nonnegative orthant */
} cm_qp_config;

/* tol 1e-12, max_iter 0 (50 + 20 k), simplex 1. */
void cm_qp_config_default(cm_qp_config *cfg);

typedef struct cm_qp_result {
    int64_t iterations; /* iterations taken */
    int converged;      /* 1 when every multiplier was nonnegative within the tolerance */
    double kkt;         /* largest KKT violation at x, on the scaled problem */
} cm_qp_result;

/* Doubles of work cm_qp_active_set needs for k variables (0 for k == 0 or k > 65536). */
size_t cm_qp_work_size(size_t k);

/* x (k): in, the start; out, the solution. q (k x k), c (k, or NULL), work (cm_qp_work_size). */
int cm_qp_active_set(const cm_qp_config *cfg, size_t k, const double *q, const double *c,
                     double *x, double *work, cm_qp_result *result);

typedef struct cm_fw_config {
    double tol;        /* stop at a scaled Frank-Wolfe gap <= tol: finite, >= 0 */
    int64_t max_iter;  /* >= 0 */
} cm_fw_config;

/* tol 1e-13, max_iter 20000. */
void cm_fw_config_default(cm_fw_config *cfg);

typedef struct cm_fw_result {
    int64_t iterations; /* iterations taken */
    int converged;      /* 1 when the gap reached tol */
    double gap;         /* the last Frank-Wolfe gap (scaled, >= 0) */
} cm_fw_result;

/* x (k): in, the start (made feasible as for the QP); out, the iterate. g (k x k), work (k). */
int cm_min_norm_fw(const cm_fw_config *cfg, size_t k, const double *g, double *x, double *work,
                   cm_fw_result *result);

/* *definite = 1 when the Cholesky factorisation of the symmetric a (k x k, lower part read)
 * has every pivot above 64 k eps times its diagonal entry (positive definite with room for
 * rounding), else 0; work: k * k doubles. madam runs it before an eigendecomposition that only
 * a matrix failing it needs. Errors: NULL pointers: CM_ERR_NULL; k == 0 or k > 65536:
 * CM_ERR_SIZE; an element of a not finite: CM_ERR_HYPER. */
int cm_positive_definite(size_t k, const double *a, double *work, int *definite);

/* CM_CDEF_END */
CM_API_END

#ifdef __cplusplus
}
#endif

#endif /* CMADAM_QP_H */
