/* qp.c -- the small dense inner solvers of cmadam_qp.h: the active-set QP over the simplex or
 * the orthant, and Frank-Wolfe with away steps for the min-norm point of a convex hull. The
 * algorithms are those of madam/_inner.py (the NumPy reference), step for step; only the face
 * solve differs in method (a pivoted Cholesky factorisation here, an SVD there), not in what
 * it returns: the minimum-norm step to a minimiser of the face. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cmadam_qp.h"

#define QP_MAX_K 65536

void cm_qp_config_default(cm_qp_config *cfg)
{
    if (!cfg) return;
    cfg->tol = 1e-12;
    cfg->max_iter = 0;
    cfg->simplex = 1;
}

void cm_fw_config_default(cm_fw_config *cfg)
{
    if (!cfg) return;
    cfg->tol = 1e-13;
    cfg->max_iter = 20000;
}

/* Work layout (doubles), k variables: the scaled Q (k^2), the face factor (k^2), then the
 * vectors c, g, step, rhs, sol, householder v, tau, and the index arrays free, perm, active,
 * tabu (stored as doubles: exact below 2^53). */
enum { QP_VECTORS = 11 };

size_t cm_qp_work_size(size_t k)
{
    if (k == 0 || k > QP_MAX_K) return 0;
    return 2 * k * k + QP_VECTORS * k;
}

/* Whether the n elements at a are all finite (cmadam.h's element utility, serial below its
 * default parallel threshold). */
static int all_finite(const double *a, size_t n)
{
    int finite = 0;
    cm_all_finite_f64(NULL, n, a, &finite);
    return finite;
}

/* The start made feasible: max(x, 0), on the simplex divided by its sum (the barycentre if 0). */
static void feasible_start(size_t k, int simplex, double *x)
{
    double total = 0.0, top = 0.0;
    for (size_t i = 0; i < k; i++) {
        x[i] = x[i] > 0.0 ? x[i] : 0.0;
        total += x[i];
        top = x[i] > top ? x[i] : top;
    }
    if (!simplex) return;
    if (!isfinite(total)) { /* the sum overflowed: divide by the largest entry first */
        total = 0.0;
        for (size_t i = 0; i < k; i++) total += (x[i] /= top);
    }
    for (size_t i = 0; i < k; i++) x[i] = total > 0.0 ? x[i] / total : 1.0 / (double)k;
}

/* ------------------------------------------------------------------ the face solve */

/* y = A^+ b for a symmetric PSD m x m A (row-major, overwritten) and b (m, overwritten): a
 * Cholesky factorisation with diagonal pivoting, A[perm, perm] = L L^T (L m x r), stopped at a
 * pivot <= m eps max diag A. r = m: y = A^-1 b by two triangular solves. r < m: the Householder
 * QR L = Q1 R of the m x r factor, then y = Q1 R^-T R^-1 Q1^T b (the minimum-norm least-squares
 * solution). perm and tau: m doubles each. */
static void pinv_solve(size_t m, double *a, double *b, double *y, double *perm, double *tau)
{
    double top = 0.0;
    for (size_t i = 0; i < m; i++) {
        top = a[i * m + i] > top ? a[i * m + i] : top;
        perm[i] = (double)i;
    }
    const double thresh = (double)m * DBL_EPSILON * top;
    size_t r = 0;
    while (top > 0.0 && r < m) {
        size_t p = r;
        for (size_t i = r + 1; i < m; i++)
            if (a[i * m + i] > a[p * m + p]) p = i;
        if (!(a[p * m + p] > thresh)) break;
        if (p != r) { /* symmetric swap of rows and columns r and p */
            for (size_t j = 0; j < m; j++) {
                const double t = a[r * m + j];
                a[r * m + j] = a[p * m + j];
                a[p * m + j] = t;
            }
            for (size_t i = 0; i < m; i++) {
                const double t = a[i * m + r];
                a[i * m + r] = a[i * m + p];
                a[i * m + p] = t;
            }
            const double t = perm[r];
            perm[r] = perm[p];
            perm[p] = t;
        }
        /* column r of L, also copied into row r (whose upper part is free), then the whole
         * trailing block updated (both halves: the swaps above read either) */
        const double d = sqrt(a[r * m + r]);
        a[r * m + r] = d;
        for (size_t i = r + 1; i < m; i++) a[r * m + i] = a[i * m + r] /= d;
        for (size_t i = r + 1; i < m; i++) {
            const double li = a[i * m + r];
            for (size_t j = r + 1; j < m; j++) a[i * m + j] -= li * a[r * m + j];
        }
        r++;
    }
    /* b permuted into y */
    for (size_t i = 0; i < m; i++) y[i] = b[(size_t)perm[i]];
    if (r == m) {
        for (size_t i = 0; i < m; i++) { /* L z = b */
            double s = y[i];
            for (size_t j = 0; j < i; j++) s -= a[i * m + j] * y[j];
            y[i] = s / a[i * m + i];
        }
        for (size_t i = m; i-- > 0;) { /* L^T w = z */
            double s = y[i];
            for (size_t j = i + 1; j < m; j++) s -= a[j * m + i] * y[j];
            y[i] = s / a[i * m + i];
        }
    } else if (r == 0) {
        for (size_t i = 0; i < m; i++) y[i] = 0.0;
    } else {
        /* Householder QR of the m x r column block of L (the strict upper part of its first r
         * rows is zero: set it, the factorisation left the matrix's other half there) */
        for (size_t i = 0; i < r; i++)
            for (size_t j = i + 1; j < r; j++) a[i * m + j] = 0.0;
        for (size_t j = 0; j < r; j++) {
            double norm2 = 0.0;
            for (size_t i = j; i < m; i++) norm2 += a[i * m + j] * a[i * m + j];
            const double alpha = a[j * m + j] >= 0.0 ? -sqrt(norm2) : sqrt(norm2);
            const double v0 = a[j * m + j] - alpha;
            /* v = (v0, a[j+1.., j]), H = I - tau v v^T; tau = 0 when the column is already 0 */
            const double vnorm2 = norm2 - a[j * m + j] * a[j * m + j] + v0 * v0;
            tau[j] = vnorm2 > 0.0 ? 2.0 / vnorm2 : 0.0;
            a[j * m + j] = v0;
            for (size_t c = j + 1; c < r; c++) {
                double s = 0.0;
                for (size_t i = j; i < m; i++) s += a[i * m + j] * a[i * m + c];
                s *= tau[j];
                for (size_t i = j; i < m; i++) a[i * m + c] -= s * a[i * m + j];
            }
            /* y <- H y (Q1^T b, built reflector by reflector) */
            double s = 0.0;
            for (size_t i = j; i < m; i++) s += a[i * m + j] * y[i];
            s *= tau[j];
            for (size_t i = j; i < m; i++) y[i] -= s * a[i * m + j];
            /* R's diagonal entry replaces v0 after use: keep v0 in b[j] */
            b[j] = v0;
            a[j * m + j] = alpha;
        }
        /* R e = (Q1^T b)[:r], then R^T f = e; R's strict upper part sits in rows < r */
        for (size_t i = r; i-- > 0;) {
            double s = y[i];
            for (size_t j = i + 1; j < r; j++) s -= a[i * m + j] * y[j];
            y[i] = s / a[i * m + i];
        }
        for (size_t i = 0; i < r; i++) {
            double s = y[i];
            for (size_t j = 0; j < i; j++) s -= a[j * m + i] * y[j];
            y[i] = s / a[i * m + i];
        }
        for (size_t i = r; i < m; i++) y[i] = 0.0;
        /* y <- Q1 f: the reflectors in reverse order, v0 restored from b */
        for (size_t j = r; j-- > 0;) {
            double s = b[j] * y[j];
            for (size_t i = j + 1; i < m; i++) s += a[i * m + j] * y[i];
            s *= tau[j];
            y[j] -= s * b[j];
            for (size_t i = j + 1; i < m; i++) y[i] -= s * a[i * m + j];
        }
    }
    /* un-permute: b holds the permuted solution's image */
    for (size_t i = 0; i < m; i++) b[i] = y[i];
    for (size_t i = 0; i < m; i++) y[(size_t)perm[i]] = b[i];
}

/* The minimum-norm step p (k, zero off the free set) to a minimiser of the face: on the free
 * set F (m = nfree indices), Q_FF p = -g_F by pinv_solve; on the simplex restricted to
 * sum p = 0 through the Householder reflection H = I - beta v v^T, v = 1 + sqrt(m) e_1, which
 * maps the ones vector onto e_1: columns 2..m of H are an orthonormal basis of {sum p = 0},
 * (H Q_FF H)[1:, 1:] t = -(H g_F)[1:], p = H (0, t). H Q H = Q - v w^T - w v^T with
 * w = beta Q v - (beta^2 / 2) (v^T Q v) v. */
static void face_step(size_t k, const double *q, const double *g, const double *free_idx,
                      size_t m, int simplex, double *fac, double *hv, double *rhs, double *sol,
                      double *perm, double *tau, double *step)
{
    for (size_t i = 0; i < k; i++) step[i] = 0.0;
    if (m == 0 || (simplex && m == 1)) return;
    for (size_t a = 0; a < m; a++) {
        const size_t fa = (size_t)free_idx[a];
        for (size_t b = 0; b < m; b++) fac[a * m + b] = q[fa * k + (size_t)free_idx[b]];
        rhs[a] = -g[fa];
    }
    if (!simplex) {
        pinv_solve(m, fac, rhs, sol, perm, tau);
        for (size_t a = 0; a < m; a++) step[(size_t)free_idx[a]] = sol[a];
        return;
    }
    for (size_t a = 0; a < m; a++) hv[a] = 1.0;
    hv[0] += sqrt((double)m);
    double vv = 0.0;
    for (size_t a = 0; a < m; a++) vv += hv[a] * hv[a];
    const double beta = 2.0 / vv;
    /* w = beta Q v - (beta / 2) (v^T beta Q v) v, kept in sol; H rhs into rhs */
    double vqv = 0.0, vr = 0.0;
    for (size_t a = 0; a < m; a++) {
        double s = 0.0;
        for (size_t b = 0; b < m; b++) s += fac[a * m + b] * hv[b];
        sol[a] = beta * s;
        vqv += hv[a] * sol[a];
        vr += hv[a] * rhs[a];
    }
    for (size_t a = 0; a < m; a++) {
        sol[a] -= 0.5 * beta * vqv * hv[a];
        rhs[a] -= beta * vr * hv[a];
    }
    /* the reduced (m - 1) x (m - 1) system, packed in place: entry (a, b) of H Q H, a, b >= 1 */
    const size_t n = m - 1;
    for (size_t a = 1; a < m; a++)
        for (size_t b = 1; b < m; b++)
            fac[(a - 1) * n + (b - 1)] = fac[a * m + b] - hv[a] * sol[b] - sol[a] * hv[b];
    for (size_t a = 1; a < m; a++) rhs[a - 1] = rhs[a];
    pinv_solve(n, fac, rhs, sol + 1, perm, tau);
    sol[0] = 0.0;
    double vt = 0.0;
    for (size_t a = 0; a < m; a++) vt += hv[a] * sol[a];
    for (size_t a = 0; a < m; a++) step[(size_t)free_idx[a]] = sol[a] - beta * vt * hv[a];
}

/* ------------------------------------------------------------------ the active-set QP */

static void gradient(size_t k, const double *q, const double *c, const double *x, double *g)
{
    for (size_t i = 0; i < k; i++) {
        double s = 0.0;
        for (size_t j = 0; j < k; j++) s += q[i * k + j] * x[j];
        g[i] = s + c[i];
    }
}

/* The largest KKT violation of the scaled problem at x (g: its gradient there). */
static double qp_kkt(size_t k, int simplex, const double *g, const double *x)
{
    double lo = INFINITY, hi = -INFINITY, total = 0.0, neg = 0.0, comp = 0.0, xmin = INFINITY;
    for (size_t i = 0; i < k; i++) {
        lo = g[i] < lo ? g[i] : lo;
        xmin = x[i] < xmin ? x[i] : xmin;
        total += x[i];
        if (x[i] > 0.0) {
            hi = g[i] > hi ? g[i] : hi;
            comp = fabs(g[i]) > comp ? fabs(g[i]) : comp;
        }
    }
    double worst = xmin < 0.0 ? -xmin : 0.0;
    if (simplex) {
        const double spread = hi > -INFINITY ? hi - lo : 0.0;
        const double sum_err = fabs(total - 1.0);
        worst = spread > worst ? spread : worst;
        return sum_err > worst ? sum_err : worst;
    }
    neg = lo < 0.0 ? -lo : 0.0;
    worst = neg > worst ? neg : worst;
    return comp > worst ? comp : worst;
}

int cm_qp_active_set(const cm_qp_config *cfg, size_t k, const double *q, const double *c,
                     double *x, double *work, cm_qp_result *result)
{
    if (!cfg || !q || !x || !work || !result) return CM_ERR_NULL;
    if (k == 0 || k > QP_MAX_K) return CM_ERR_SIZE;
    if (!(cfg->tol >= 0.0 && isfinite(cfg->tol)) || cfg->max_iter < 0 ||
        (cfg->simplex != 0 && cfg->simplex != 1))
        return CM_ERR_HYPER;
    if (!all_finite(q, k * k) || (c && !all_finite(c, k)) || !all_finite(x, k)) return CM_ERR_HYPER;

    const int simplex = cfg->simplex;
    double *qs = work, *fac = qs + k * k, *cs = fac + k * k, *g = cs + k, *step = g + k;
    double *rhs = step + k, *sol = rhs + k, *hv = sol + k, *tau = hv + k;
    double *free_idx = tau + k, *perm = free_idx + k, *active = perm + k, *tabu = active + k;

    double scale = DBL_MIN;
    for (size_t i = 0; i < k * k; i++) scale = fabs(q[i]) > scale ? fabs(q[i]) : scale;
    for (size_t i = 0; c && i < k; i++) scale = fabs(c[i]) > scale ? fabs(c[i]) : scale;
    for (size_t i = 0; i < k; i++) {
        cs[i] = c ? c[i] / scale : 0.0;
        for (size_t j = 0; j < k; j++)
            qs[i * k + j] = 0.5 * (q[i * k + j] / scale + q[j * k + i] / scale);
    }
    const int64_t max_iter = cfg->max_iter > 0 ? cfg->max_iter : 50 + 20 * (int64_t)k;

    feasible_start(k, simplex, x);
    size_t n_active = 0;
    for (size_t i = 0; i < k; i++) {
        active[i] = x[i] <= 0.0;
        tabu[i] = 0.0;
        n_active += x[i] <= 0.0;
    }
    if (simplex && n_active == k)
        for (size_t i = 0; i < k; i++) active[i] = 0.0;

    int converged = 0;
    long released = -1; /* the bound released last, if no step has been taken since */
    int g_of_x = 0;     /* whether g holds Q x + c for the current x (after a full step) */
    int64_t it = 0;
    for (it = 1; it <= max_iter; it++) {
        size_t m = 0;
        for (size_t i = 0; i < k; i++)
            if (active[i] == 0.0) free_idx[m++] = (double)i;
        if (!g_of_x) gradient(k, qs, cs, x, g);
        g_of_x = 0;
        face_step(k, qs, g, free_idx, m, simplex, fac, hv, rhs, sol, perm, tau, step);
        if (!all_finite(step, k)) break; /* only outside the documented inputs (Q not PSD) */
        /* ratio test: the largest step in [0, 1] keeping the free variables nonnegative (only
         * the bounds that block within the step are divided: x / -step may overflow else) */
        double alpha = 1.0;
        long blocking = -1;
        for (size_t a = 0; a < m; a++) {
            const size_t i = (size_t)free_idx[a];
            if (x[i] < -step[i]) {
                const double ratio = x[i] / -step[i];
                if (ratio < alpha) {
                    alpha = ratio;
                    blocking = (long)i;
                }
            }
        }
        if (blocking >= 0) {
            if (alpha <= 0.0 && released >= 0) tabu[released] = 1.0; /* a rounding-level release */
            else if (alpha > 0.0)
                for (size_t i = 0; i < k; i++) tabu[i] = 0.0;
            double total = 0.0;
            for (size_t i = 0; i < k; i++) {
                const double v = (size_t)blocking == i ? 0.0 : x[i] + alpha * step[i];
                x[i] = v > 0.0 ? v : 0.0;
                total += x[i];
            }
            /* the step keeps sum x = 1 only to its rounding: put it back (the reference does
             * not; the difference is at the rounding level) */
            if (simplex && total > 0.0 && isfinite(total))
                for (size_t i = 0; i < k; i++) x[i] /= total;
            active[blocking] = 1.0;
            released = -1;
            continue;
        }
        /* full step: x minimises this face (kept in sol until it is known to be feasible) */
        int moved = 0;
        double total = 0.0;
        for (size_t i = 0; i < k; i++) {
            const double v = x[i] + step[i];
            sol[i] = v > 0.0 ? v : 0.0;
            total += sol[i];
            moved |= step[i] != 0.0;
        }
        if (!isfinite(total) || (simplex && !(total > 0.0))) break; /* Q not PSD, as above */
        for (size_t i = 0; i < k; i++) x[i] = simplex ? sol[i] / total : sol[i];
        if (moved)
            for (size_t i = 0; i < k; i++) tabu[i] = 0.0;
        released = -1;
        gradient(k, qs, cs, x, g);
        g_of_x = 1;
        double theta = 0.0;
        if (simplex && m) {
            for (size_t a = 0; a < m; a++) theta += g[(size_t)free_idx[a]];
            theta /= (double)m;
        }
        /* the bound with the most negative multiplier, with a tolerance for the rounding of g */
        long best = -1;
        double best_key = INFINITY, best_mult = 0.0, best_slack = 0.0;
        for (size_t i = 0; i < k; i++) {
            if (active[i] == 0.0 || tabu[i] != 0.0) continue;
            double row = 0.0;
            for (size_t j = 0; j < k; j++) row += fabs(qs[i * k + j]) * x[j];
            const double slack = cfg->tol + 32.0 * DBL_EPSILON * (row + fabs(cs[i]) + fabs(theta));
            const double mult = g[i] - theta;
            if (best < 0 || mult + slack < best_key) {
                best = (long)i;
                best_key = mult + slack;
                best_mult = mult;
                best_slack = slack;
            }
        }
        if (best < 0 || best_mult >= -best_slack) {
            converged = 1;
            break;
        }
        active[best] = 0.0;
        released = best;
    }
    if (it > max_iter) it = max_iter;
    if (!g_of_x) gradient(k, qs, cs, x, g);
    result->iterations = it;
    result->converged = converged;
    result->kkt = qp_kkt(k, simplex, g, x);
    return CM_OK;
}

/* ------------------------------------------------------------------ Frank-Wolfe */

int cm_min_norm_fw(const cm_fw_config *cfg, size_t k, const double *g, double *x, double *work,
                   cm_fw_result *result)
{
    if (!cfg || !g || !x || !work || !result) return CM_ERR_NULL;
    if (k == 0 || k > QP_MAX_K) return CM_ERR_SIZE;
    if (!(cfg->tol >= 0.0 && isfinite(cfg->tol)) || cfg->max_iter < 0) return CM_ERR_HYPER;
    if (!all_finite(g, k * k) || !all_finite(x, k)) return CM_ERR_HYPER;

    double scale = DBL_MIN;
    for (size_t i = 0; i < k; i++) scale = g[i * k + i] > scale ? g[i * k + i] : scale;
    const double inv = 1.0 / scale;
    double *gx = work;
    feasible_start(k, 1, x);
    double gap = INFINITY;
    int64_t it = 0;
    for (it = 1; it <= cfg->max_iter; it++) {
        if (it == 1 || it % 64 == 0) /* drop the drift of the incremental updates */
            for (size_t i = 0; i < k; i++) {
                double s = 0.0;
                for (size_t j = 0; j < k; j++) s += (g[i * k + j] * inv) * x[j];
                gx[i] = s;
            }
        double xgx = 0.0;
        size_t s = 0, v = k;
        for (size_t i = 0; i < k; i++) {
            xgx += x[i] * gx[i];
            if (gx[i] < gx[s]) s = i;
            if (x[i] > 0.0 && (v == k || gx[i] > gx[v])) v = i;
        }
        gap = xgx - gx[s];
        if (gap <= cfg->tol || !isfinite(gap)) break; /* not finite: G is not PSD */
        const double away_gap = gx[v] - xgx;
        if (gap >= away_gap) {
            /* d = e_s - x: d^T G x = gx_s - xgx, d^T G d = G_ss - 2 gx_s + xgx */
            const double slope = gx[s] - xgx;
            const double curv = g[s * k + s] * inv - 2.0 * gx[s] + xgx;
            const double step = curv <= 0.0 ? 1.0 : fmin(1.0, -slope / curv);
            if (!isfinite(step)) break;
            for (size_t i = 0; i < k; i++) {
                x[i] *= 1.0 - step;
                gx[i] = (1.0 - step) * gx[i] + step * (g[i * k + s] * inv);
            }
            x[s] += step;
        } else {
            /* d = x - e_v: d^T G x = xgx - gx_v, d^T G d = xgx - 2 gx_v + G_vv */
            const double max_step = x[v] < 1.0 ? x[v] / (1.0 - x[v]) : INFINITY;
            const double slope = xgx - gx[v];
            const double curv = xgx - 2.0 * gx[v] + g[v * k + v] * inv;
            const double step = curv <= 0.0 ? max_step : fmin(max_step, -slope / curv);
            if (!isfinite(step)) break;
            for (size_t i = 0; i < k; i++) {
                x[i] *= 1.0 + step;
                gx[i] = (1.0 + step) * gx[i] - step * (g[i * k + v] * inv);
            }
            x[v] -= step;
            if (step == max_step) x[v] = 0.0;
        }
        double total = 0.0;
        for (size_t i = 0; i < k; i++) {
            x[i] = x[i] > 0.0 ? x[i] : 0.0;
            total += x[i];
        }
        for (size_t i = 0; i < k; i++) x[i] /= total;
    }
    if (it > cfg->max_iter) it = cfg->max_iter;
    result->iterations = it;
    result->converged = gap <= cfg->tol;
    result->gap = isnan(gap) ? INFINITY : gap > 0.0 ? gap : 0.0;
    return CM_OK;
}

/* ------------------------------------------------------------------ positive definiteness */

int cm_positive_definite(size_t k, const double *a, double *work, int *definite)
{
    if (!a || !work || !definite) return CM_ERR_NULL;
    if (k == 0 || k > QP_MAX_K) return CM_ERR_SIZE;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j <= i; j++)
            if (!isfinite(a[i * k + j])) return CM_ERR_HYPER;
    /* left-looking Cholesky of the lower part into work, row by row */
    double *l = work;
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; j <= i; j++) {
            double s = a[i * k + j];
            for (size_t p = 0; p < j; p++) s -= l[i * k + p] * l[j * k + p];
            if (j < i) {
                l[i * k + j] = s / l[j * k + j];
            } else if (s > 64.0 * (double)k * DBL_EPSILON * a[i * k + i]) {
                l[i * k + i] = sqrt(s);
            } else {
                *definite = 0;
                return CM_OK;
            }
        }
    }
    *definite = 1;
    return CM_OK;
}
