"""The compiled core: loading it, execution settings, and thin wrappers over C utilities.

Everything that talks to ``madam._cmadam`` directly goes through this module: array-to-pointer
conversion, the thread count passed to every kernel, and status-code checking.
"""
import os

import numpy as np

from ._loader import load_core

try:
    # Importing the wheel loads libscipy_openblas.so into the process (RTLD_GLOBAL), which is
    # what resolves the extension's link to OpenBLAS wherever the extension was built.
    import scipy_openblas32 as _openblas
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        "madam needs OpenBLAS from the 'scipy-openblas32' package, which could not be "
        f"imported ({exc}). Install it with: pip install scipy-openblas32"
    ) from exc

# libgomp's idle workers spin GOMP_SPINCOUNT times before they sleep; its default (300,000 when
# OMP_WAIT_POLICY is unset) lasts milliseconds, during which they hold the cores that whatever
# runs next needs: NumPy's BLAS threads (a solver's small C x C work), other processes. On a
# 2-core machine under load a solve or a small step then waits whole scheduler ticks
# (docs/benchmarks.md, "Thread pools"). madam's workers spin 1,000 rounds (microseconds) and then
# sleep: long enough to catch the end of a parallel loop without a futex round trip (sleeping at
# once, 0, made an idle n = 1e5 Adam step 2.7x slower), short enough to free the cores between
# kernels. This holds unless the user set either variable. libgomp reads them once, when the core
# loads it, and the variable is removed again after.
SPIN_COUNT = "1000"
_spin_default = "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
if _spin_default:
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
try:
    _cmadam = load_core()
finally:
    if _spin_default:
        del os.environ["GOMP_SPINCOUNT"]
_OPENMP_WAIT = (f"GOMP_SPINCOUNT={SPIN_COUNT} (madam's default)" if _spin_default else
                ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
                          if k in os.environ) + " (set by the user)")

ffi = _cmadam.ffi
lib = _cmadam.lib

from ._validate import FLOAT_TYPES  # noqa: E402  (re-exported: madam._core.FLOAT_TYPES)
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_CTYPE = {np.dtype(np.float32): "float[]", np.dtype(np.float64): "double[]"}

# None: follow OpenMP's current limit (OMP_NUM_THREADS, omp_set_num_threads, threadpoolctl),
# read at every call; an int: the count the user fixed with set_num_threads.
_settings = {"n_threads": None}

#: The largest thread count set_num_threads accepts: 256, or 4 threads per core on machines
#: with more than 64 cores. Far more threads than cores only adds overhead, and a huge count
#: (thousands) can make OpenMP abort the whole process when it cannot create the threads.
MAX_THREADS = max(256, 4 * (os.cpu_count() or 1))


class CoreError(RuntimeError):
    """A C kernel returned an error status (the Python layer validates first, so this means a
    bug in madam: please report it)."""


def check_status(status, what):
    if status != lib.CM_OK:
        message = ffi.string(lib.cm_strerror(status)).decode()
        raise CoreError(f"{what}: {message} (status {status})")


def kernel(name, dtype):
    """The C function ``name`` for ``dtype``, e.g. kernel("cm_adam_step", float32)."""
    return getattr(lib, f"{name}_{_SUFFIX[np.dtype(dtype)]}")


def pointer(array, writable=False):
    """A C pointer to a C-contiguous float32/float64 array (keeps the array alive)."""
    return ffi.from_buffer(_CTYPE[array.dtype], array, require_writable=writable)


def set_num_threads(n_threads):
    """Set the number of threads madam's C loops (and OpenBLAS) use.

    ``n_threads`` must be an int with ``1 <= n_threads <= MAX_THREADS`` (256, or 4 per core on
    machines with more than 64 cores); otherwise TypeError or ValueError is raised and nothing
    changes. Once set, the count overrides OpenMP's limit (OMP_NUM_THREADS, threadpoolctl).

    Results do not depend on it: every kernel is elementwise or reduces in a fixed order, so
    trajectories are bit-identical for any thread count.
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)):
        raise TypeError(f"n_threads must be an int, got {type(n_threads).__name__}")
    if not 1 <= n_threads <= MAX_THREADS:
        raise ValueError(f"n_threads must be between 1 and {MAX_THREADS}, got {n_threads}")
    n_threads = int(n_threads)
    lib.cm_blas_set_num_threads(n_threads)
    _settings["n_threads"] = n_threads


def get_num_threads():
    """The number of threads madam's C loops use: the count given to set_num_threads if it was
    called, else OpenMP's current limit (OMP_NUM_THREADS or the number of cores, lowered by
    ``threadpoolctl.threadpool_limits(n, user_api="openmp")`` or ``omp_set_num_threads``)."""
    n_threads = _settings["n_threads"]
    return lib.cm_openmp_max_threads() if n_threads is None else n_threads


def exec_config():
    """A cm_exec_config carrying the current thread count and the default size threshold."""
    exec_cfg = ffi.new("cm_exec_config *")
    lib.cm_exec_config_default(exec_cfg)
    exec_cfg.n_threads = get_num_threads()
    return exec_cfg


def _float_array(x, name):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype not in FLOAT_TYPES:
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    return x


def _matrix(jac):
    """jac as _float_array checks it, and a non-empty 2-D array."""
    _float_array(jac, "jac")
    if jac.ndim != 2 or jac.shape[0] == 0 or jac.shape[1] == 0:
        raise ValueError(f"jac must be a non-empty 2-D array, got shape {jac.shape}")


def all_finite(x):
    """True when no element of ``x`` is NaN or +-Inf (one parallel pass in C)."""
    _float_array(x, "x")
    result = ffi.new("int *")
    check_status(kernel("cm_all_finite", x.dtype)(exec_config(), x.size, pointer(x), result),
                 "all_finite")
    return bool(result[0])


def triad(a, b, c, scalar):
    """STREAM triad ``a[:] = b + scalar * c`` in C (the bandwidth yardstick of the benchmarks)."""
    for name, x in (("a", a), ("b", b), ("c", c)):
        _float_array(x, name)
        if x.dtype != a.dtype or x.shape != a.shape:
            raise ValueError(f"{name} must match a in dtype and shape")
    check_status(kernel("cm_triad", a.dtype)(exec_config(), a.size, pointer(a, True),
                                             pointer(b), pointer(c), float(scalar)), "triad")
    return a


def gramian(jac):
    """The Gramian ``J @ J.T`` of a (rows, cols) matrix, by one BLAS ?syrk call."""
    _matrix(jac)
    gram = np.empty((jac.shape[0], jac.shape[0]), dtype=jac.dtype)
    check_status(kernel("cm_gramian", jac.dtype)(jac.shape[0], jac.shape[1], pointer(jac),
                                                 pointer(gram, True)), "gramian")
    return gram


def gram_scan(jac, rows):
    """One read of J (``jac``: any C-contiguous float array of ``rows`` x cols elements, e.g.
    (C,) + param.shape) gives ``(G, all_finite, max_abs)``: G = J J^T as a float64 (rows, rows)
    array (float32 entries widened first, so each product is exact), whether every element is
    finite, and max |J| (see ``cm_gram_scan`` in cmadam.h: its summation order depends only on
    the shape, so the bits do not depend on threads or the instruction set)."""
    _float_array(jac, "jac")
    cols = jac.size // rows if rows else 0
    size = lib.cm_gram_scan_workspace(rows, cols)
    gram = np.empty((rows, rows))
    work = np.empty(max(size, 1))
    finite, top = ffi.new("int *"), ffi.new("double *")
    check_status(kernel("cm_gram_scan", jac.dtype)(exec_config(), rows, cols, pointer(jac),
                                                   pointer(gram, True), pointer(work, True),
                                                   size, finite, top), "gram_scan")
    return gram, bool(finite[0]), float(top[0])


def combine(jac, lam):
    """d = lam @ J in J's dtype for a C-contiguous (rows, cols) ``jac`` and float64 ``lam``
    (rows,): each d_j summed over the rows in order in float64 (float32 elements widened, so the
    products are exact) and rounded once (``cm_combine`` in cmadam.h): the same bits for any
    thread count and instruction set, one read of J, no BLAS."""
    _matrix(jac)
    lam = np.ascontiguousarray(lam, dtype=np.float64)
    if lam.shape != (jac.shape[0],):
        raise ValueError(f"lam must have shape ({jac.shape[0]},), got {lam.shape}")
    out = np.empty(jac.shape[1], dtype=jac.dtype)
    check_status(kernel("cm_combine", jac.dtype)(exec_config(), jac.shape[0], jac.shape[1],
                                                 pointer(lam), pointer(jac), pointer(out, True)),
                 "combine")
    return out


# The kernels that are not a first-order optimiser's; those come from madam.functional's kernel
# table (see kernels()).
_OTHER_KERNELS = ("all_finite", "triad", "gramian (BLAS syrk)",
                  "gram_scan (Gramian + NaN scan in one read, fixed summation order)",
                  "combine (lam @ J in double, fixed order)",
                  "madam (MAdam: fused Fisher EMA + whitening + Adam)",
                  "amoo (Rademacher probes, Hutchinson, PU game solver)",
                  "mada (MADA, HyperAdam, AdamHD: update + hypergradient)",
                  "pareto (hypervolume, contributions, nondominated, ranks, IGD/IGD+, spacing, "
                  "spread)")


def kernels():
    """The compiled kernels, as :func:`config` lists them: each first-order kernel of
    :mod:`madam.functional`, with the registered optimiser classes that step through it where
    they are not just its name (``"adam (Adam, AdamW, AMSGrad, AVGrad)"``), then the others."""
    # imported here, not at module level: both modules import this one
    from .functional import _KERNELS
    from .optim import first_order

    users = {}
    for cls in first_order().values():
        users.setdefault(cls._kernel.name, []).append(cls.__name__)
    first = []
    for name in _KERNELS:
        classes = users.get(name, [])
        plain = [c.lower() for c in classes] in ([], [name])
        first.append(name if plain else f"{name} ({', '.join(classes)})")
    return tuple(first) + _OTHER_KERNELS


def config():
    """A dict describing the compiled core: versions, kernels, float types, BLAS, threads."""
    exec_cfg = exec_config()
    return {
        "cmadam_version": ffi.string(lib.cm_version()).decode(),
        "build": ffi.string(lib.cm_build_info()).decode(),
        "kernels": kernels(),
        "float_types": tuple(str(t) for t in FLOAT_TYPES),
        "blas_library": f"scipy-openblas32 {_openblas.__version__} ({_openblas.get_library()})",
        "blas_config": ffi.string(lib.cm_blas_info()).decode().strip(),
        "blas_threads": lib.cm_blas_get_num_threads(),
        "threads": get_num_threads(),
        "openmp_max_threads": lib.cm_openmp_max_threads(),
        "openmp_wait": _OPENMP_WAIT,
        "min_parallel_size": exec_cfg.min_parallel_size,
    }
