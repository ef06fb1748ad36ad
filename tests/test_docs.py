"""The documentation: the MkDocs site builds with warnings as errors, and every Python example in
docs/*.md and README.md runs.

Code blocks fenced as ```python run in order, one shared namespace per page, in a temporary
working folder. A block preceded by the line `<!-- no-exec -->` is skipped (none is, today);
other fences (```text, indented blocks) are not code examples and are not run.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"(<!-- no-exec -->\n)?```python\n(.*?)```", re.S)


def python_blocks(path):
    """[(line number, code)] of the runnable ```python blocks of a Markdown file."""
    text = path.read_text()
    return [(text[:m.start()].count("\n") + 1, m.group(2)) for m in FENCE.finditer(text)
            if not m.group(1)]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_code_examples_run(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for line, code in python_blocks(page):
        exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)


def test_every_page_is_in_the_nav_or_linked():
    config = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert page.name in config, f"{page.name} is not in mkdocs.yml's nav"


def test_site_builds_strict(tmp_path):
    mkdocs = shutil.which("mkdocs") or shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed (it is in the test extra)")
        pytest.skip("mkdocs is not installed (pip install -e '.[test]')")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "api" / "index.html").exists()
