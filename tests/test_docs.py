"""The documentation: the MkDocs site builds with warnings as errors, and every Python example in
docs/*.md and README.md runs.

Code blocks fenced as ```python run in order, one shared namespace per page, in a temporary
working folder (so files they write land there). A block whose fence is preceded, on the line
just above, by the comment `<!-- no-exec -->` is skipped; use it only for code that cannot run
in a test (none does today). Other fences (```text, ```bash, indented blocks) are not examples
and are not run.

The strict build needs mkdocs (the test extra installs it). Without it the build test is skipped
locally, with the reason, but fails when the CI environment variable is set.
"""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
NO_EXEC = "<!-- no-exec -->"
# a fence at the start of a line (possibly indented, as in a list), up to the closing fence
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
                   re.M | re.S)


def python_blocks(path):
    """[(line of the first code line, code)] of the runnable ```python blocks of a Markdown
    file."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if before == NO_EXEC:
            continue
        indent = m.group("indent")
        code = "\n".join(line[len(indent):] if line.startswith(indent) else line
                         for line in m.group("code").split("\n"))
        blocks.append((text[:m.start()].count("\n") + 2, code))
    return blocks


def test_fence_parser(tmp_path):
    sample = ("text\n```python\na = 1\n```\n\n<!-- no-exec -->\n```python\nraise SystemExit\n```\n"
              "- item\n\n    ```python\n    b = a + 1\n    ```\n```text\nnot code\n```\n")
    path = tmp_path / "sample.md"
    path.write_text(sample, encoding="utf-8")
    assert python_blocks(path) == [(3, "a = 1\n"), (13, "b = a + 1\n")]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_code_examples_run(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for line, code in python_blocks(page):
        # padded so that a traceback names the line of the Markdown file
        exec(compile("\n" * (line - 1) + code, str(page.relative_to(ROOT)), "exec"), namespace)


def test_every_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:"):]
    for page in (ROOT / "docs").glob("*.md"):
        assert re.search(rf":\s*{re.escape(page.name)}\s*$", nav, re.M), \
            f"docs/{page.name} is not in mkdocs.yml's nav"


def test_rst_in_docstrings_becomes_markdown():
    spec = importlib.util.spec_from_file_location("griffe_rst", ROOT / "docs/hooks/griffe_rst.py")
    if importlib.util.find_spec("griffe") is None:
        pytest.skip("griffe is not installed (it comes with mkdocstrings[python], in the test extra)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = ("As :class:`~madam.Adam`, with :math:`b_k = 1 - \\beta_k^t`:\n\n"
            ".. math::\n    a &= b \\\\\n    c &= d\n\nthen :func:`run`.\n"
            "    .. math:: x = 1\n")
    out = re.sub(r"\n{3,}", "\n\n", module.rst_to_markdown(text))   # blank runs do not matter
    assert out == ("As `madam.Adam`, with \\(b_k = 1 - \\beta_k^t\\):\n\n\\[\n\\begin{aligned}\n"
                   "a &= b \\\\\nc &= d\n\\end{aligned}\n\\]\n\nthen `run`.\n\n"
                   "    \\[\n    x = 1\n    \\]\n\n")
    assert module.rst_to_markdown("Losses::\n\n    f = 1\n") == "Losses:\n\n    f = 1\n"


def test_site_builds_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec(
            "mkdocstrings_handlers") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs/mkdocstrings are not installed: pip install -e '.[test]'")
        pytest.skip("mkdocs/mkdocstrings are not installed (pip install -e '.[test]'); "
                    "set CI=1 to make this a failure")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                             "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="madam.optim.Adam"' in api and 'id="madam.madam_opt.MAdam"' in api
    for raw in (":math:`", ".. math::", ":class:`", ":func:`"):
        assert raw not in api, f"unconverted RST {raw!r} in the API reference"
    assert not (site / "hooks").exists()
