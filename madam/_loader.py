"""Finding the compiled core ``madam._cmadam``, and refusing one that does not match its sources.

Two situations need care:

* Python started in a source checkout after ``pip install .``: the checkout's ``madam/`` folder
  (no compiled core) shadows the installed package. The installed package's core is then used,
  but only if it was compiled from exactly the C sources in this checkout.
* An in-place build (``pip install -e .``) whose C sources were edited afterwards: the core is
  stale. Import fails and says to rebuild, rather than run code that no longer matches.

There is no pure-Python fallback: if no matching core is found, importing madam fails and says why.
"""
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

from ._sources import source_hash

_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_CORE = _PACKAGE_DIR.parent / "cmadam"  # present only in a source checkout

_REBUILD = ("The core is compiled when madam is installed: from the source checkout run "
            "`pip install .` (or `pip install -e .` to work on it)")


def _installed_core():
    """Path of the compiled core of an installed 'madam' distribution, or None.

    Every distribution named madam is searched: a build leaves a madam.egg-info in the
    checkout, which lists sources only and is found first when Python runs from there."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for dist in importlib.metadata.distributions(name="madam"):
        for f in dist.files or []:
            if f.parts[:1] == ("madam",) and f.name.startswith("_cmadam") and f.name.endswith(suffixes):
                path = Path(f.locate()).resolve()
                if path.parent != _PACKAGE_DIR and path.exists():
                    return path
    return None


def _load_from(path):
    spec = importlib.util.spec_from_file_location("madam._cmadam", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["madam._cmadam"] = module
    return module


def _check_matches_checkout(module, where):
    if not _CHECKOUT_CORE.is_dir():
        return  # an installed package: its core was built with it
    built = module.ffi.string(module.lib.cm_source_hash()).decode()
    if built != source_hash(_CHECKOUT_CORE):
        raise ImportError(
            f"madam's compiled C core ({where}) was built from other C sources than those in "
            f"{_CHECKOUT_CORE}. {_REBUILD}, then import again.")


def load_core():
    """Import and return ``madam._cmadam`` (see the module docstring)."""
    try:
        module = importlib.import_module("madam._cmadam")
        _check_matches_checkout(module, str(Path(module.__file__).name))
        return module
    except ModuleNotFoundError as exc:
        local_error = exc
    except ImportError as exc:
        if "built from other C sources" in str(exc):
            raise
        local_error = exc
    installed = _installed_core()
    if installed is None:
        raise ImportError(
            f"madam's compiled C core (madam._cmadam) could not be loaded: {local_error}. "
            f"{_REBUILD}; importing the source folder without building it does not work "
            "(there is no pure-Python fallback).") from local_error
    module = _load_from(installed)
    _check_matches_checkout(module, f"installed at {installed}")
    return module
