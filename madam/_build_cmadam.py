"""CFFI (API mode) build script: compiles the C sources of cmadam into ``madam._cmadam``.

The declarations given to CFFI are read from the public headers (``cmadam.h`` first, then the
``cmadam_*.h`` it includes), between the CM_CDEF_BEGIN and CM_CDEF_END markers, so the headers
stay the single source of the C API.
OpenBLAS comes from the ``scipy-openblas32`` wheel (symbols prefixed ``scipy_``).
"""
import os
import re
import sys
from pathlib import Path

import cffi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sources import source_hash  # noqa: E402  (the build runs this file as a script)

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "cmadam"
HEADERS = [CORE / "include" / "cmadam.h"] + sorted((CORE / "include").glob("cmadam_*.h"))


def _cdef_from_header(text):
    body = text[text.index("/* CM_CDEF_BEGIN"):text.index("/* CM_CDEF_END */")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("#"))


def _core_cflags():
    """CM_CFLAGS of cmadam/flags.mk: the code-generation flags the Makefile uses too."""
    text = (CORE / "flags.mk").read_text()
    return re.search(r"^CM_CFLAGS\s*:=\s*(.*)$", text, flags=re.M).group(1).split()


def _openblas():
    import scipy_openblas32 as blas

    return blas.get_include_dir(), blas.get_lib_dir(), blas.get_library()


def make_ffibuilder():
    blas_include, blas_libdir, blas_lib = _openblas()
    sources = sorted(str(p.relative_to(ROOT)) for p in (CORE / "src").glob("*.c"))
    ffibuilder = cffi.FFI()
    ffibuilder.cdef("\n".join(_cdef_from_header(h.read_text()) for h in HEADERS))
    ffibuilder.set_source(
        "madam._cmadam",
        # every public header, so that the generated code sees each declaration it wraps
        "\n".join(f'#include "{h.name}"' for h in HEADERS),
        sources=sources,
        include_dirs=[str(CORE / "include"), str(CORE / "src")],
        library_dirs=[blas_libdir],
        libraries=[blas_lib, "m"],
        # The wheel's library is preloaded by `import scipy_openblas32` (see madam/_core.py);
        # the rpath is a fallback for builds used in place.
        runtime_library_dirs=[blas_libdir],
        # CM_NO_EXPORT with -fvisibility=hidden (flags.mk): the module exports only
        # PyInit__cmadam (the cm_* functions are reached through the CFFI wrappers, inside it).
        define_macros=[("CM_SOURCE_HASH", f'"{source_hash(CORE)}"'), ("CM_NO_EXPORT", "1")],
        extra_compile_args=[*_core_cflags(), "-O3", "-Wall", "-Wextra"],
        extra_link_args=["-fopenmp"],
    )
    return ffibuilder


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    os.chdir(ROOT)
    ffibuilder.compile(verbose=True)
    sys.exit(0)
