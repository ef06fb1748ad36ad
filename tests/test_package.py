"""The package as a user meets it: import, configuration report, CLI demo, README quickstart."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import madam

ROOT = Path(__file__).resolve().parent.parent


def test_show_config_reports_kernels_types_blas_threads(capsys):
    madam.show_config()
    out = capsys.readouterr().out
    for needle in ("adam", "lion", "float32", "float64", "OpenBLAS", "threads"):
        assert needle in out
    cfg = madam.config()
    assert re.fullmatch(r"\d+\.\d+\.\d+", cfg["cmadam_version"])
    assert cfg["threads"] == madam.get_num_threads() >= 1
    assert "OpenBLAS" in cfg["blas_config"]


def test_import_without_compiled_core_says_why():
    code = ("import sys; sys.modules['madam._cmadam'] = None\n"
            "try:\n    import madam\nexcept ImportError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT).stdout
    assert out.startswith("ERR") and "compiled C core" in out and "pip install" in out


def test_set_num_threads_validates():
    before = madam.get_num_threads()
    with pytest.raises(ValueError, match="n_threads"):
        madam.set_num_threads(0)
    with pytest.raises(TypeError, match="n_threads"):
        madam.set_num_threads(1.5)
    assert madam.get_num_threads() == before


def test_set_num_threads_out_of_range_changes_nothing():
    """Too large a count (past C int, or thousands of threads) is refused up front; the
    refusal leaves the setting alone, so later calls keep working (issue 12)."""
    from madam._core import MAX_THREADS

    before = madam.get_num_threads()
    try:
        for bad in (2**31, 5000, np.int64(2**40), MAX_THREADS + 1, -1):
            with pytest.raises(ValueError, match="n_threads"):
                madam.set_num_threads(bad)
            assert madam.get_num_threads() == before
        with pytest.raises(TypeError, match="n_threads"):
            madam.set_num_threads("2")
        assert madam.get_num_threads() == before
        assert madam.config()["threads"] == before  # later calls still work
        madam.set_num_threads(np.int32(1))
        assert madam.get_num_threads() == 1
        madam.set_num_threads(MAX_THREADS)  # the documented bound itself is accepted
        assert madam.get_num_threads() == MAX_THREADS
    finally:
        madam.set_num_threads(before)
    assert MAX_THREADS >= 256


def test_gramian_matches_numpy():
    rng = np.random.default_rng(0)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        jac = rng.standard_normal((5, 1000)).astype(dtype)
        np.testing.assert_allclose(madam._core.gramian(jac), jac @ jac.T, rtol=rtol, atol=rtol)


def test_triad_and_all_finite():
    b, c = np.arange(10.0), np.ones(10)
    a = np.empty(10)
    madam._core.triad(a, b, c, 3.0)
    np.testing.assert_array_equal(a, b + 3.0)
    assert madam._core.all_finite(a)
    a[7] = np.inf
    assert not madam._core.all_finite(a)


@pytest.mark.parametrize("command", ["demo", "gallery"])
def test_cli_writes_figure(tmp_path, command):
    out = tmp_path / f"{command}.png"
    result = subprocess.run([sys.executable, "-m", "madam", command, "--steps", "60",
                             "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in result.stdout


def test_cli_rejects_bad_steps():
    result = subprocess.run([sys.executable, "-m", "madam", "demo", "--steps", "0"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "--steps" in result.stderr


def _console_script():
    script = Path(sys.executable).parent / "madam"
    if not script.exists():
        pytest.skip("the madam console script is not installed next to this Python")
    return str(script)


@pytest.mark.parametrize("how", ["module", "script"])
def test_cli_version(how):
    cmd = [sys.executable, "-m", "madam"] if how == "module" else [_console_script()]
    result = subprocess.run(cmd + ["--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"madam {madam.__version__}\n"


@pytest.mark.parametrize("how, prog", [("module", "python -m madam"), ("script", "madam")])
def test_cli_names_itself_as_invoked(how, prog):
    cmd = [sys.executable, "-m", "madam"] if how == "module" else [_console_script()]
    result = subprocess.run(cmd + ["demo", "--steps", "0"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: {prog} ")
    assert f"{prog}: error: --steps must be >= 1" in result.stderr


def test_readme_quickstart_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    np.testing.assert_allclose(namespace["x"], [1.0, 1.0], atol=1e-3)


def test_core_built_from_other_sources_is_refused():
    """A compiled core whose source hash differs from the checkout's C sources must not load."""
    from madam import _loader

    class FakeLib:
        @staticmethod
        def cm_source_hash():
            return b"0" * 64

    class FakeCore:
        ffi = type("F", (), {"string": staticmethod(lambda s: s)})
        lib = FakeLib

    if not _loader._CHECKOUT_CORE.is_dir():
        pytest.skip("installed package: no C sources to compare with")
    with pytest.raises(ImportError, match="other C sources"):
        _loader._check_matches_checkout(FakeCore, "test")
    _loader._check_matches_checkout(madam._core._cmadam, "the loaded core")  # the real one matches


def _indented_commands(text):
    return [line.strip() for line in text.splitlines() if line.startswith("    pip install")]


def test_ci_runs_exactly_the_readme_commands():
    """.ci/run's install+demo and test lines are the README's two commands, and the docs' copy of
    the test command is the same line."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.startswith("pip install")]
    readme = _indented_commands((ROOT / "README.md").read_text())
    assert ci == readme[:2], (ci, readme)
    getting_started = _indented_commands((ROOT / "docs" / "getting-started.md").read_text())
    assert ci[1] in getting_started


def test_runtime_dependencies_hold_no_test_oracle():
    """torch, torchjd, pytorch-optimizer, moocore, SciPy and scikit-learn are test oracles only,
    and the torch-based ones sit in test-peers, not in the torch-free test extra."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    oracles = ("torch", "torchjd", "pytorch-optimizer", "moocore", "scipy", "scikit-learn")

    def names(requirements):
        return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}

    assert not names(project["dependencies"]) & set(oracles)
    extras = project["optional-dependencies"]
    assert not names(extras["test"]) & {"torch", "torchjd", "pytorch-optimizer"}
    assert {"madam", "torch", "torchjd", "pytorch-optimizer"} <= names(extras["test-peers"])


def _module_level_imports(path, name, known):
    """The madam modules that module ``name`` imports at module level (not inside functions)."""
    import ast

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            if node.module:  # "from . import x" imports x, not the (already importing) package
                found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return {m for m in found if m in known and m != name}


def test_no_import_cycles_among_madam_modules():
    """The module-level import graph of madam is acyclic (a package imports its submodules; no
    submodule imports back up at module level)."""
    root = ROOT / "madam"
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: _module_level_imports(path, name, modules) for name, path in modules.items()}
    assert "madam.multi" in graph["madam"] and "madam.madam_opt" in graph["madam.multi"]
    # a package may import its own submodules; what may not happen is a path back to itself
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_compiled_module_exports_only_its_init():
    """The CFFI module is built with -fvisibility=hidden and CM_NO_EXPORT: its dynamic symbol
    table defines PyInit__cmadam and nothing else (no cm_* function, public or internal)."""
    import shutil

    import madam._cmadam as compiled

    if shutil.which("nm") is None:
        pytest.skip("nm is not installed")
    res = subprocess.run(["nm", "-D", "--defined-only", compiled.__file__],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"nm cannot read {compiled.__file__}: {res.stderr.strip()}")
    exported = sorted(line.split()[-1] for line in res.stdout.splitlines()
                      if len(line.split()) == 3)
    assert exported == ["PyInit__cmadam"], exported


@pytest.mark.parametrize("user_env, want", [
    ({}, "GOMP_SPINCOUNT = '1000'"),
    ({"OMP_WAIT_POLICY": "active"}, "GOMP_SPINCOUNT = '30000000000'"),
    ({"GOMP_SPINCOUNT": "123"}, "GOMP_SPINCOUNT = '123'"),
])
def test_openmp_spin_default_reaches_libgomp(user_env, want):
    """import madam asks libgomp for a short spin (_core.SPIN_COUNT) unless the user chose a wait
    policy or a spin count; libgomp's own report of its settings (OMP_DISPLAY_ENV) shows what it
    read, and the variable does not stay in the environment."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(user_env, OMP_DISPLAY_ENV="verbose")
    code = ("import os, madam; print(madam.config()['openmp_wait']); "
            "print('left', os.environ.get('GOMP_SPINCOUNT'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert want in out.stderr
    lines = out.stdout.splitlines()
    if user_env:
        assert lines[0].endswith("(set by the user)")
        assert lines[1] == f"left {user_env.get('GOMP_SPINCOUNT')}"
    else:
        assert lines[0] == "GOMP_SPINCOUNT=1000 (madam's default)"
        assert lines[1] == "left None"
