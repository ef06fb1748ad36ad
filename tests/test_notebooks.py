"""The notebooks: each runs top to bottom (nbclient, the interpreter running the tests as its
kernel, in notebooks/ as Jupyter would run it, 180 s at most) without leaving files there, is
stored without outputs, and ends with a "What this shows" paragraph that states numbers.

The working folder is notebooks/ rather than a temporary one because 01_pareto_collapse finds
benchmarks/ relative to it; no notebook writes into its working folder (checked below), so
nothing lands in the repository."""
import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 180


def load(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_clean_and_ends_with_what_this_shows(path):
    nb = load(path)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name}: cell {i} is stored with outputs"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} has a count"
    last = nb["cells"][-1]
    text = "".join(last["source"])
    assert last["cell_type"] == "markdown" and "what this shows" in text.lower(), \
        f"{path.name} must end with a 'What this shows' markdown cell"
    assert "PLACEHOLDER" not in text and any(ch.isdigit() for ch in text), \
        f"{path.name}: 'What this shows' must state the measured numbers"


def _files(folder):
    return {p.relative_to(folder) for p in folder.rglob("*")
            if ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts}


def _kernel_manager():
    """A kernel manager whose kernel runs this very interpreter (whatever kernels Jupyter may
    have installed elsewhere), from a spec written under the git-ignored build/ folder."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = ROOT / "build" / "kernels" / "madam-tests"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "madam tests", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
    return KernelManager(kernel_name="madam-tests", kernel_spec_manager=specs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_top_to_bottom(path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, km=_kernel_manager(), timeout=TIMEOUT_S,
        resources={"metadata": {"path": str(path.parent)}})
    before = _files(path.parent)
    start = time.perf_counter()
    client.execute(env=dict(os.environ, MPLBACKEND="Agg"))
    elapsed = time.perf_counter() - start
    left = sorted(str(p) for p in _files(path.parent) - before)
    assert not left, f"{path.name} wrote {left} into notebooks/"
    assert elapsed < TIMEOUT_S, f"{path.name} took {elapsed:.0f} s"
    print(f"{path.name}: {elapsed:.1f} s")
