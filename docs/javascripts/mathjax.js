// MathJax settings for pymdownx.arithmatex (generic mode): \( \) inline, \[ \] display.
// Loaded before javascripts/mathjax/tex-chtml.js, the site's own copy of MathJax 3 (see
// docs/hooks/mathjax_local.py), which finds its fonts and extensions beside itself.
window.MathJax = {
  tex: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true},
  options: {ignoreHtmlClass: ".*", processHtmlClass: "arithmatex"}
};
