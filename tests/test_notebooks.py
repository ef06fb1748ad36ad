"""The notebooks: each runs top to bottom from a copy in an empty folder (so it can reach nothing
but the installed package), is stored without outputs, ends with a "What this shows" paragraph,
and every number that paragraph quotes is one the notebook computed.

The contract with each notebook: its last code cell defines ``HEADLINE``, a dict of
``label -> text``, each text a number formatted exactly as the paragraph quotes it (for example
``f"{spread:.2f}"``). After running the notebook, the test reads ``HEADLINE`` from the kernel and
checks, against the final "What this shows" cell:

* every decimal number in the paragraph (a number with a decimal point or an exponent; integers
  such as seeds, step counts and sizes are not checked) is one of HEADLINE's texts, and
* every HEADLINE text appears in the paragraph.

No time limit: a notebook's run time is measured by ``benchmarks/bench_notebooks.py`` (a
benchmark, not a test), so a loaded machine cannot fail the suite.
"""
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# a decimal number as prose writes it: 0.78, -0.012, 1.5e-3, 4e-07, 3.2 (not 5, not 2026)
_NUMBER = re.compile(r"(?<![\w.])[-+\u2212]?(?:\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)(?![\w])",
                     re.IGNORECASE)


def load(path):
    return json.loads(path.read_text())


def what_this_shows(nb):
    """The text of the notebook's last cell (checked to be the 'What this shows' markdown)."""
    last = nb["cells"][-1]
    text = "".join(last["source"])
    return last["cell_type"], text


def _signed(number):
    """'+0.1' -> '0.1', '\u22120.1' -> '-0.1': one spelling per signed number."""
    number = str(number).replace("\u2212", "-")
    return number[1:] if number.startswith("+") else number


def quoted_numbers(text):
    """The decimal numbers a paragraph quotes, as written (signs normalised by _signed)."""
    return [_signed(m.group(0)) for m in _NUMBER.finditer(text)]


def check_headline(text, headline):
    """Problems (a list of strings) with a paragraph's numbers against HEADLINE. A number quoted
    with a sign must equal a HEADLINE text with that sign; one quoted without a sign may be the
    magnitude of one (prose writes 'fell by 0.12' for a difference of -0.12)."""
    values = {_signed(v) for v in headline.values()}
    magnitudes = {v.lstrip("-") for v in values}
    quoted = quoted_numbers(text)
    problems = [f"quotes {n}, which is not in HEADLINE" for n in quoted
                if n not in values and not (n[0] != "-" and n in magnitudes)]
    problems += [f"HEADLINE[{k!r}] = {v!r} is not quoted" for k, v in headline.items()
                 if _signed(v) not in quoted and _signed(v).lstrip("-") not in quoted]
    return problems


def test_check_headline_catches_mismatch():
    text = "Adam's spread ratio is 0.78 (MAdam 0.97) after 4000 steps at lr 3e-3; seed 7."
    assert check_headline(text, {"a": "0.78", "m": "0.97", "lr": "3e-3"}) == []
    assert check_headline(text, {"a": "0.79", "m": "0.97", "lr": "3e-3"}) == [
        "quotes 0.78, which is not in HEADLINE", "HEADLINE['a'] = '0.79' is not quoted"]
    assert check_headline("a drop of -0.12", {"d": "-0.12"}) == []
    assert check_headline("a drop of 0.12", {"d": "-0.12"}) == []
    assert check_headline("a rise of +0.12", {"d": "0.12"}) == []
    assert check_headline("a drop of -0.12", {"d": "0.12"}) == [
        "quotes -0.12, which is not in HEADLINE", "HEADLINE['d'] = '0.12' is not quoted"]
    assert quoted_numbers("x 2026, 10 seeds, 1.5e-3, 4e-07 and v1.2.3") == ["1.5e-3", "4e-07"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_clean_and_ends_with_what_this_shows(path):
    nb = load(path)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name}: cell {i} is stored with outputs"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} has a count"
            src = "".join(cell["source"])
            assert "sys.path" not in src and "benchmarks" not in src, \
                f"{path.name}: cell {i} reaches outside the installed package"
    kind, text = what_this_shows(nb)
    assert kind == "markdown" and "what this shows" in text.lower(), \
        f"{path.name} must end with a 'What this shows' markdown cell"
    assert "PLACEHOLDER" not in text and quoted_numbers(text), \
        f"{path.name}: 'What this shows' must state the measured numbers"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "HEADLINE" in "".join(code[-1]["source"]), \
        f"{path.name}: the last code cell must define HEADLINE (see this file's docstring)"


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


def execute_copy(path, folder):
    """Run a copy of the notebook at ``path`` in the empty ``folder``, with a final cell that
    prints HEADLINE as JSON. Returns (HEADLINE, seconds, files the run left in ``folder``)."""
    import nbformat
    import nbclient

    copy = Path(folder) / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import json as _json\n"
                                              "print(_json.dumps(HEADLINE))"))
    client = nbclient.NotebookClient(nb, km=_kernel_manager(), timeout=None,
                                     resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    client.execute(env=dict(os.environ, MPLBACKEND="Agg"))
    elapsed = time.perf_counter() - start
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    left = sorted(p.name for p in Path(folder).iterdir() if p != copy)
    return json.loads(out.strip().splitlines()[-1]), elapsed, left


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_from_an_empty_folder_and_quotes_its_numbers(path, tmp_path):
    pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    if "torch" in path.stem and not os.environ.get("CI"):
        # trains torch models (madam.torch, torchjd): the test-peers extra, which CI installs
        for module in ("torch", "torchjd"):
            pytest.importorskip(module, reason=f"{path.name} needs {module}: pip install -e "
                                "'.[test-peers]'")
    headline, elapsed, left = execute_copy(path, tmp_path)
    assert not left, f"{path.name} wrote {left} into its working folder"
    _, text = what_this_shows(load(path))
    problems = check_headline(text, headline)
    assert not problems, f"{path.name}: " + "; ".join(problems)
    print(f"{path.name}: {elapsed:.1f} s")
