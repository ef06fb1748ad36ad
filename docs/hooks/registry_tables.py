"""The docs' tables of optimisers, solvers and problems, generated from madam's registries.

A page asks for a table with a block of two markers::

    <!-- registry: first-order -->
    ...the generated table...
    <!-- /registry -->

and the table between them is never written by hand. Each name reads one registry:

- ``first-order``: ``madam.optim.first_order()``, one row per class with its defaults (read from
  the constructor's signature, ``params`` and ``nonfinite`` left out) and the first sentence of
  its docstring;
- ``optimizers``: ``madam.optim.OPTIMIZERS``, the names ``madam.run`` accepts, with each class's
  family and the first sentence of its docstring;
- ``solvers``: ``madam.solvers.SOLVERS``: each name, its class, what it reads (the Gramian, the
  losses, the Jacobian itself) and the constructor arguments a bare name cannot supply;
- ``problems``: ``madam.problems.entries()``: each name, its class, C and n of the problem at its
  default arguments, and the registry's description.

At build time (mkdocs.yml loads this file through ``hooks:``) every block is replaced by the
table the registries give now, so the site is always current. The pages keep a copy between the
markers so that they read as they are on GitHub; ``python docs/hooks/registry_tables.py``
rewrites those copies, and ``tests/test_docs.py`` fails while one is stale. The file is excluded
from the built site.
"""
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The files that may hold registry blocks (the README links to the pages instead).
PAGES = ("docs", "README.md")
BLOCK = re.compile(r"(?P<open><!-- registry: (?P<name>[a-z-]+) -->\n)(?P<body>.*?)"
                   r"(?P<close><!-- /registry -->)", re.S)
_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|obj|exc):`[~.]?([^`]+)`")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _madam():
    """madam, imported from this checkout when it is not installed."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import madam

    return madam


def _cell(text):
    """Text for a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _summary(cls):
    """The first sentence of a class's docstring, its RST roles and literals as Markdown code."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    paragraph = " ".join(doc.split("\n\n")[0].split())
    sentence = _SENTENCE_END.split(paragraph, maxsplit=1)[0]
    return _cell(_ROLE.sub(r"`\1`", sentence).replace("``", "`"))


def _number(value):
    """A float as the docs write it: 1e-3 rather than 0.001 up to 1e-2, else its repr."""
    if value != 0 and abs(value) <= 1e-2:
        mantissa, exponent = f"{value:.12e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return repr(value)


def _value(value):
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, tuple):
        items = ", ".join(_value(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)


def _defaults(cls, skip=("params", "nonfinite")):
    """The constructor's keyword defaults as ``name=value`` code spans."""
    params = inspect.signature(cls).parameters.values()
    return ", ".join(f"`{p.name}={_value(p.default)}`" for p in params
                     if p.name not in skip and p.default is not p.empty)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def first_order_table():
    optim = _madam().optim
    return _table(("class", "name", "defaults", "what it is"),
                  [(f"`{cls.__name__}`", f"`{name}`", _defaults(cls), _summary(cls))
                   for name, cls in optim.first_order().items()])


def optimizers_table():
    optim = _madam().optim
    return _table(("name", "class", "family", "what it is"),
                  [(f"`{name}`", f"`{cls.__name__}`", cls.family, _summary(cls))
                   for name, cls in optim.OPTIMIZERS.items()])


def _reads(cls, base):
    """What a solver's method reads, from its class attributes and overrides."""
    reads = []
    if cls._weights is base._weights:  # it overrides _solve: J itself, so no weights(G)
        reads.append("the Jacobian itself (it has no `weights()`)")
    elif cls.uses_gramian:
        reads.append("the Gramian")
    if cls.uses_losses:
        reads.append("the losses (> 0)" if cls.positive_losses else "the losses")
    return ", ".join(reads) or "only C, the number of objectives"


def solvers_table():
    solvers = _madam().solvers
    rows = []
    for name, cls in solvers.SOLVERS.items():
        needs = ", ".join(f"`{arg}`" for arg in solvers.required_arguments(cls)) or "nothing"
        rows.append((f"`{name}`", f"`{cls.__name__}`", _reads(cls, solvers.Solver), needs))
    return _table(("name", "class", "reads", "a bare name lacks"), rows)


def problems_table():
    problems = _madam().problems
    rows = []
    for name, cls, _, what in problems.entries():
        problem = problems.get(name)
        rows.append((f"`{name}`", f"`{cls.__name__}`", str(problem.n_obj), str(problem.dim),
                     _cell(what)))
    return _table(("name", "class", "C", "n", "what it is"), rows)


TABLES = {"first-order": first_order_table, "optimizers": optimizers_table,
          "solvers": solvers_table, "problems": problems_table}


def refresh(text, cache=None):
    """``text`` with every registry block's body replaced by the current table (ValueError
    naming an unknown block). ``cache``: a dict of tables already made, filled as it goes."""
    cache = {} if cache is None else cache

    def fill(match):
        name = match.group("name")
        if name not in TABLES:
            raise ValueError(f"unknown registry table {name!r}; known: {', '.join(TABLES)}")
        if name not in cache:
            cache[name] = TABLES[name]()
        # blank lines around the table: Markdown ends an HTML block (the marker) at one
        return f"{match.group('open')}\n{cache[name]}\n{match.group('close')}"

    return BLOCK.sub(fill, text)


def pages(root=ROOT):
    """The Markdown files that may hold blocks: docs/*.md and the README."""
    found = []
    for entry in PAGES:
        path = root / entry
        found += sorted(path.glob("*.md")) if path.is_dir() else [path]
    return found


def stale(root=ROOT):
    """The pages whose stored tables differ from the registries' (relative paths)."""
    cache = {}
    return [str(path.relative_to(root)) for path in pages(root)
            if refresh(text := path.read_text(encoding="utf-8"), cache) != text]


def on_page_markdown(markdown, page, config, files):
    try:
        return refresh(markdown)
    except ValueError as exc:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{page.file.src_path}: {exc}") from None


def main():
    """Rewrite the stored tables of every page from the registries; print what changed."""
    cache = {}
    for path in pages():
        text = path.read_text(encoding="utf-8")
        new = refresh(text, cache)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
