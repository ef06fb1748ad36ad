r"""Small-sample statistics for the studies: Student-t intervals and paired differences.

No SciPy at run time: the t quantile is found by bisection on the t distribution's CDF,

.. math::

    F_\nu(t) = 1 - \tfrac12 I_{\nu / (\nu + t^2)}\big(\tfrac\nu2, \tfrac12\big) \quad (t \ge 0),

with the regularised incomplete beta function :math:`I_x(a, b)` evaluated by its continued
fraction (Lentz's method), accurate to about 1e-12 (tested against ``scipy.stats.t``).
"""
import math

import numpy as np

__all__ = ["t_quantile", "t_interval", "paired_differences"]


def _betacf(a, b, x):
    """The continued fraction of I_x(a, b) (modified Lentz), for x < (a + 1) / (a + b + 2)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a, b, x):
    """The regularised incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t, df):
    tail = 0.5 * _betainc(0.5 * df, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """The p-quantile of Student's t with ``df`` degrees of freedom (0 < p < 1, df > 0)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def t_interval(values, level=0.95):
    """(mean, half-width, n) of the finite entries of ``values``: the two-sided Student-t
    interval mean +- t_{(1+level)/2, n-1} sd / sqrt(n). Half-width None when n < 2; mean None
    when n = 0."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return None, None, 0
    if v.size == 1:
        return float(v[0]), None, 1
    half = t_quantile(0.5 + level / 2, v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return float(v.mean()), half, int(v.size)


def paired_differences(a, b, level=0.95):
    """Paired comparison of two methods on the same seeds: the differences b - a (pairs where
    either is not finite are dropped), their t interval and sign counts. Returns
    ``{"mean", "half", "n", "b_lower", "b_higher", "significant"}``; ``significant`` when the
    interval excludes 0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must pair up, got shapes {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = b[keep] - a[keep]
    mean, half, n = t_interval(diff, level)
    return {"mean": mean, "half": half, "n": n, "b_lower": int(np.sum(diff < 0)),
            "b_higher": int(np.sum(diff > 0)),
            "significant": bool(half is not None and abs(mean) > half)}
