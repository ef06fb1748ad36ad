"""A Griffe extension for the API reference: madam's docstrings use a few reStructuredText
constructs (they read well under ``help()``), which the Markdown renderer would print verbatim.
Before mkdocstrings renders a docstring, this rewrites, in the rendered copy only:

- ``:math:`x``` into inline math ``\\(x\\)`` and a ``.. math::`` directive (its text on the same
  line and/or the more indented lines after it) into display math ``\\[ ... \\]``, wrapped in
  ``aligned`` when it holds ``&`` or ``\\\\``; pymdownx.arithmatex then hands both to MathJax;
- the cross-reference roles ``:class:``, ``:func:``, ``:meth:``, ``:attr:``, ``:data:``,
  ``:mod:`` into inline code (a leading ``~`` or ``.`` is dropped);
- the literal-block marker ``text::`` at the end of a line into ``text:`` (the indented block
  after it is already a Markdown code block).

The source files are not touched. mkdocs.yml loads this file through mkdocstrings' ``extensions``
option; it is excluded from the built site.
"""
import re

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|obj|exc):`[~.]?([^`]+)`")
_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")
_LITERAL = re.compile(r"(?:(?<=\S)|[ \t]+)::[ \t]*$", re.M)


def _indent_of(line):
    return len(line) - len(line.lstrip())


def _display_math(lines, indent):
    body = "\n".join(lines)
    if "&" in body or "\\\\" in body:
        lines = ["\\begin{aligned}", *lines, "\\end{aligned}"]
    return ["", indent + "\\[", *(indent + line for line in lines), indent + "\\]", ""]


def rst_to_markdown(text):
    """The Markdown form of a docstring that may hold the RST constructs listed above."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent, body = match.group("indent"), []
        if match.group("rest").strip():
            body.append(match.group("rest").strip())
        i += 1
        while i < len(lines) and not body and not lines[i].strip():
            i += 1                                   # blank lines between directive and body
        while i < len(lines) and lines[i].strip() and _indent_of(lines[i]) > len(indent):
            body.append(lines[i].strip())
            i += 1
        out.extend(_display_math(body, indent))
    text = _LITERAL.sub(lambda m: "" if m.group(0)[0] in " \t" else ":", "\n".join(out))
    text = _INLINE_MATH.sub(lambda m: "\\(" + m.group(1) + "\\)", text)
    return _ROLE.sub(lambda m: "`" + m.group(1) + "`", text)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring's RST math and roles once the object tree is built."""

    def on_object(self, *, obj, **kwargs):
        if obj.docstring is not None and not obj.is_alias:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
