"""madam: metric-aware multi-objective Adam, AMOO and MADA, exactly and fast.

The optimisers run as fused C kernels (``cmadam``) on NumPy arrays, in float32 and float64.
Importing madam loads the compiled core; if it cannot, the ImportError says why.
"""
from ._core import get_num_threads, set_num_threads
from ._validate import NonFiniteError
from .optim import (SGD, AMSGrad, AVGrad, Adam, Adan, AdamW, Lion, Optimizer, Yogi)
from . import pareto, plot, problems, solvers
from .mada import MADA, AdamHD, HyperAdam
from .madam_opt import MAdam
from .multi import MultiObjectiveOptimizer, Scalarized
from . import multi
from .amoo import hutchinson_diag, hvp_from_grad, pu_solve
from . import amoo
from .runs import LRTuning, RunResult, load_results, preference_grid, run, tune_lr
from . import study

__version__ = "0.1.0"

__all__ = ["SGD", "Adam", "AdamW", "AMSGrad", "AVGrad", "Yogi", "Adan", "Lion", "Optimizer",
           "NonFiniteError", "MAdam", "MultiObjectiveOptimizer", "Scalarized", "multi",
           "hutchinson_diag", "hvp_from_grad", "pu_solve",
           "set_num_threads", "get_num_threads", "show_config", "config",
           "pareto", "problems", "solvers", "plot", "study", "MADA", "HyperAdam", "AdamHD",
           "run", "tune_lr", "RunResult", "LRTuning", "load_results", "preference_grid"]


def config():
    """The compiled core's configuration as a dict (see :func:`show_config`)."""
    from ._core import config as core_config

    return {"madam_version": __version__, **core_config()}


def show_config():
    """Print versions, compiled kernels, float types, BLAS library and version, and threads."""
    cfg = config()
    print(f"madam {cfg['madam_version']} (C core cmadam {cfg['cmadam_version']}, "
          f"built: {cfg['build']})")
    print("kernels:     " + ", ".join(cfg["kernels"]))
    print("float types: " + ", ".join(cfg["float_types"]))
    print(f"BLAS:        {cfg['blas_library']}")
    print(f"             {cfg['blas_config']}")
    print(f"threads:     {cfg['threads']} for madam's loops (OpenMP max {cfg['openmp_max_threads']}, "
          f"parallel from {cfg['min_parallel_size']} elements), {cfg['blas_threads']} for OpenBLAS")
    print(f"OpenMP wait: {cfg['openmp_wait']}")
