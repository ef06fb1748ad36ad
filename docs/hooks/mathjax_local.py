"""A MkDocs hook: the site serves MathJax itself, so its formulas render offline.

MathJax 3 comes from the PyPI package django-static-mathjax (in the test extra; it has no
dependencies and needs no Django: it is only a Python package wrapped around MathJax's release
files). At build time this hook adds, from that package's ``es5`` folder, to the files MkDocs
writes under ``javascripts/mathjax/`` in the site:

- ``tex-chtml.js``: the TeX input and the CommonHTML output in one script (mkdocs.yml's
  ``extra_javascript`` names it, after ``javascripts/mathjax.js``, which configures it);
- ``output/chtml/fonts/woff-v2/``: the web fonts that CommonHTML requests, relative to the
  script's own address;
- ``input/tex/extensions/``: the TeX packages MathJax loads on demand (``autoload``,
  ``\\require``) when a formula uses a macro the script does not carry;
- ``ui/``, ``a11y/`` and ``sre/``: what the right-click menu loads when a reader turns on its
  accessibility options (the explorer, speech);
- ``LICENSE``: MathJax's licence (Apache-2.0), kept beside the files it covers.

Nothing is copied into docs/ and nothing is fetched from a network; ``mkdocs serve`` serves the
same files. mkdocs.yml loads this file through ``hooks:``; it is excluded from the built site.
"""
from importlib import metadata
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

PACKAGE = "django-static-mathjax"
# the package's MathJax release, relative to its installation root
ES5 = "mathjax/static/mathjax/es5"
# where the files land in the site (mkdocs.yml's extra_javascript points into it)
SITE_DIR = "javascripts/mathjax"
# what is served, relative to ES5: single files and whole folders
SCRIPT = "tex-chtml.js"
FOLDERS = ("output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y", "sre")


def mathjax_root():
    """The installed package's es5 folder (a Path); a PluginError that says what to install when
    the package is missing or has another layout."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise PluginError(f"{PACKAGE} is not installed; it provides the site's MathJax: "
                          "pip install -e '.[test]'") from None
    root = Path(dist.locate_file(ES5))
    if not (root / SCRIPT).is_file():
        raise PluginError(f"{PACKAGE} {dist.version} has no {ES5}/{SCRIPT} "
                          f"(looked in {root}); this site expects MathJax 3")
    return root


def served_files(root):
    """[(path relative to the es5 folder, absolute path)] of the files the site serves."""
    pairs = [(SCRIPT, root / SCRIPT)]
    for folder in FOLDERS:
        base = root / folder
        if not base.is_dir():
            raise PluginError(f"{PACKAGE}: {base} is missing")
        pairs += [(path.relative_to(root).as_posix(), path)
                  for path in sorted(base.rglob("*")) if path.is_file()]
    licence = root.parent / "LICENSE"
    if licence.is_file():
        pairs.append(("LICENSE", licence))
    return pairs


def on_files(files, config):
    root = mathjax_root()
    for relative, path in served_files(root):
        uri = f"{SITE_DIR}/{relative}"
        existing = files.get_file_from_path(uri)
        if existing is not None:      # a file of the same name in docs/ gives way
            files.remove(existing)
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
