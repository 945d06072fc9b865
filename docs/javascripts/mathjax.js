// MathJax for pymdownx.arithmatex (generic mode): typeset \( \) and \[ \] inside .arithmatex elements, again
// after each instant-navigation page change. MathJax itself is loaded from a CDN when a page is viewed.
window.MathJax = {
  tex: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"},
};

document$.subscribe(() => {
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
