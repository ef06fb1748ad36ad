"""The documentation: the MkDocs site builds with warnings as errors, and every Python example in
docs/*.md and README.md runs.

Code blocks fenced as ```python run in order, one shared namespace per page, in a temporary
working folder (so files they write land there). A block whose fence is preceded, on the line
just above, by the comment `<!-- no-exec -->` is skipped; use it only for code that cannot run
in a test (none does today). Other fences (```text, ```bash, indented blocks) are not examples
and are not run.

The strict build needs mkdocs (the test extra installs it). Without it the build tests are skipped
locally, with the reason, but fail when the CI environment variable is set. The site is built
once per run; the tests after the build check it, among other things that it is self-contained:
no page loads a script, stylesheet or font from another host, and MathJax is served by the site.
"""
import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

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
    if page.name.startswith("torch") and not os.environ.get("CI"):
        # madam.torch's pages train torch models; in CI the test-peers extra holds torch
        pytest.importorskip("torch", reason="torch is in the test-peers extra: pip install -e "
                            "'.[test-peers]' (or madam[torch])")
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


def _registry_hook():
    spec = importlib.util.spec_from_file_location("registry_tables",
                                                  ROOT / "docs/hooks/registry_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_registry_tables_are_current():
    """The tables of optimisers, solvers and problems are generated from the registries; the
    copies the pages keep (so that they read on GitHub) must be the current ones, and every
    table appears somewhere."""
    hook = _registry_hook()
    assert hook.stale(ROOT) == [], ("a registry changed: run python docs/hooks/registry_tables.py "
                                    "to rewrite the pages' tables")
    used = {m.group("name") for page in hook.pages(ROOT)
            for m in hook.BLOCK.finditer(page.read_text(encoding="utf-8"))}
    assert used == set(hook.TABLES)
    with pytest.raises(ValueError, match="unknown registry table 'nope'"):
        hook.refresh("<!-- registry: nope -->\n<!-- /registry -->")
    # a table is rebuilt from the registry, whatever the page held
    text = hook.refresh("<!-- registry: first-order -->\nstale\n<!-- /registry -->")
    assert "stale" not in text and "| `AMSGrad` | `amsgrad` |" in text


def test_every_registered_name_has_its_docs_section():
    """What the registries cannot give, a formula, is each class's section: every first-order
    optimiser has a heading on the optimisers page, every solver a row in the toolkit's table of
    formulas."""
    import madam

    optimizers = (ROOT / "docs/optimizers.md").read_text(encoding="utf-8")
    headings = " ".join(re.findall(r"^## (.+)$", optimizers, re.M))
    for cls in madam.optim.first_order().values():
        assert re.search(rf"\b{cls.__name__}\b", headings), \
            f"docs/optimizers.md has no section for {cls.__name__}"
    toolkit = (ROOT / "docs/toolkit.md").read_text(encoding="utf-8")
    table = toolkit[toolkit.index("| solver | weights, as computed | scale |"):]
    table = table[:table.index("\n\n")]
    formula_rows = [line.split(" | ")[0] for line in table.splitlines()[2:]]
    for name in madam.solvers.SOLVERS:
        assert any(f"`{name}`" in cell for cell in formula_rows), \
            f"docs/toolkit.md has no formula row for {name!r}"


# <link rel=...> values that name a related page rather than make the browser fetch something
NAVIGATION_RELS = {"canonical", "alternate", "prev", "next", "author", "license", "help",
                   "bookmark", "external", "nofollow", "noopener", "noreferrer", "me"}
# the elements and attributes a browser fetches on its own while showing a page
FETCHED = {"script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "embed": ("src",),
           "source": ("src", "srcset"), "audio": ("src",), "video": ("src", "poster"),
           "track": ("src",), "object": ("data",), "input": ("src",)}
CSS_URL = re.compile(r"""(?:url\(\s*|@import\s+)["']?([^"')\s]+)""")
# the site's copy of MathJax (docs/hooks/mathjax_local.py) and the fonts folder it requests
MATHJAX = "javascripts/mathjax/tex-chtml.js"
MATHJAX_FONTS = "output/chtml/fonts/woff-v2"


def is_external(url):
    """Whether a URL in a page leads off the site: a scheme other than data:, or a host
    (``//host/...`` included)."""
    parts = urlsplit(url.strip())
    return bool(parts.netloc) or parts.scheme.lower() not in ("", "data")


class _Fetches(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []      # [(tag, attribute, value)] in document order
        self.in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.in_style = tag == "style"
        if tag == "link":
            rels = set((attrs.get("rel") or "").lower().split())
            if attrs.get("href") and not (rels and rels <= NAVIGATION_RELS):
                self.found.append((tag, "href", attrs["href"]))
        for name in FETCHED.get(tag, ()):
            value = attrs.get(name)
            if not value:
                continue
            if name == "srcset":     # "url 2x, url 640w"
                self.found += [(tag, name, item.split()[0])
                               for item in value.split(",") if item.strip()]
            else:
                self.found.append((tag, name, value))
        if attrs.get("style"):
            self.found += [(tag, "style", url) for url in CSS_URL.findall(attrs["style"])]

    def handle_endtag(self, tag):
        self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            self.found += [("style", "text", url) for url in CSS_URL.findall(data)]


def fetched_urls(html):
    """[(tag, attribute, URL)] of what a browser fetches while it shows the page: scripts,
    stylesheets, preloads, icons and fonts (<link> other than the navigational rels), images,
    frames, media, and url()/@import in <style> and style="" attributes."""
    parser = _Fetches()
    parser.feed(html)
    parser.close()
    return parser.found


def external_fetches(html):
    """The entries of fetched_urls(html) whose URL leads off the site."""
    return [entry for entry in fetched_urls(html) if is_external(entry[2])]


def test_external_fetch_check():
    # what the pages held when MathJax came from a CDN: the checker must see it
    cdn = ('<html><head><link rel="stylesheet" href="../assets/stylesheets/main.css">'
           '<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>'
           '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Roboto">'
           '<link rel="preload" as="font" href="HTTP://example.org/f.woff2">'
           '<link rel="canonical" href="https://example.org/madam/">'
           '<style>@font-face{src:url("https://example.org/m.woff")}</style>'
           '<meta name="x" content="url(https://not.a.fetch/)"></head><body>'
           '<p style="background: url(//example.org/bg.png)">url(https://text.only/)</p>'
           '<a href="https://github.com/">a link is not a fetch</a>'
           '<img src="data:image/png;base64,AAAA" srcset="../a.png 1x, https://x.org/b.png 2x">'
           '<script src="../javascripts/mathjax.js"></script>'
           '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>'
           '</body></html>')
    assert external_fetches(cdn) == [
        ("link", "href", "https://fonts.gstatic.com"),
        ("link", "href", "//fonts.googleapis.com/css?family=Roboto"),
        ("link", "href", "HTTP://example.org/f.woff2"),
        ("style", "text", "https://example.org/m.woff"),
        ("p", "style", "//example.org/bg.png"),
        ("img", "srcset", "https://x.org/b.png"),
        ("script", "src", "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"),
    ]
    local = cdn.replace("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
                        "../javascripts/mathjax/tex-chtml.js")
    assert ("script", "src", "../javascripts/mathjax/tex-chtml.js") in fetched_urls(local)
    assert all(entry[0] != "script" for entry in external_fetches(local))
    assert not is_external("../assets/x.css") and not is_external("/abs/x.css")
    assert is_external(" //cdn.example/x.js") and is_external("ftp://h/x")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    """(result of `mkdocs build --strict`, site folder), built once for the tests below."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec(
            "mkdocstrings_handlers") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs/mkdocstrings are not installed: pip install -e '.[test]'")
        pytest.skip("mkdocs/mkdocstrings are not installed (pip install -e '.[test]'); "
                    "set CI=1 to make this a failure")
    site = tmp_path_factory.mktemp("docs") / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                             "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    return result, site


def test_site_builds_strict(built_site):
    result, site = built_site
    assert result.returncode == 0, result.stdout + result.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="madam.optim.Adam"' in api and 'id="madam.madam_opt.MAdam"' in api
    for raw in (":math:`", ".. math::", ":class:`", ":func:`"):
        assert raw not in api, f"unconverted RST {raw!r} in the API reference"
    assert not (site / "hooks").exists()


def test_site_fetches_nothing_from_other_hosts(built_site):
    result, site = built_site
    assert result.returncode == 0, result.stdout + result.stderr
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 10
    offsite = {str(page.relative_to(site)): found for page in pages
               if (found := external_fetches(page.read_text(encoding="utf-8")))}
    assert not offsite, f"pages that load from another host: {offsite}"
    # the stylesheets the pages load must not pull fonts or imports from elsewhere either
    for sheet in site.rglob("*.css"):
        urls = [url for url in CSS_URL.findall(sheet.read_text(encoding="utf-8"))
                if is_external(url)]
        assert not urls, f"{sheet.relative_to(site)} loads {urls}"


def test_formulas_use_the_sites_own_mathjax(built_site):
    result, site = built_site
    assert result.returncode == 0, result.stdout + result.stderr
    page = site / "madam" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert 'class="arithmatex"' in html and "\\begin{aligned}" in html   # the formulas are there
    scripts = [url for tag, _, url in fetched_urls(html) if tag == "script"]
    resolved = [(page.parent / url).resolve() for url in scripts]
    mathjax = (site / MATHJAX).resolve()
    config = (site / "javascripts" / "mathjax.js").resolve()
    assert mathjax in resolved, f"{page.relative_to(site)} does not load {MATHJAX}: {scripts}"
    assert config in resolved and resolved.index(config) < resolved.index(mathjax), \
        "window.MathJax must be set (javascripts/mathjax.js) before MathJax loads"
    assert mathjax.is_file() and mathjax.stat().st_size > 100_000
    # CommonHTML asks for its fonts relative to the script: every one it names must be there
    bundle = mathjax.read_text(encoding="utf-8")
    assert f'"{MATHJAX_FONTS}"' in bundle, "MathJax looks for its fonts somewhere else now"
    fonts = sorted(set(re.findall(r"MathJax_[A-Za-z0-9-]+\.woff", bundle)))
    assert len(fonts) >= 20 and "MathJax_Main-Regular.woff" in fonts
    folder = mathjax.parent / MATHJAX_FONTS
    missing = [font for font in fonts if not (folder / font).is_file()]
    assert not missing, f"fonts MathJax requests but the site lacks: {missing}"
    # the TeX packages it loads on demand, and MathJax's licence, are served too
    assert (mathjax.parent / "input/tex/extensions/ams.js").is_file()
    assert (mathjax.parent / "LICENSE").is_file()
