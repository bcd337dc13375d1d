// Loaded (classic script) before Plotly.
//
// Our pages run under a strict CSP: style-src 'self', no 'unsafe-inline'. That refuses inline
// style *attributes*, whether parsed from markup or set with setAttribute("style", ...), while
// it allows setting styles through the CSSOM (element.style). Plotly sets a few style
// attributes with setAttribute (the colour bar clears its rects with "", large heatmaps ask
// for image-rendering: pixelated), which the browser would refuse and report as errors.
// Route exactly those calls through the CSSOM: same effect, allowed by the policy. Styles
// injected through markup (the thing the policy guards against) stay refused: only our own
// scripts (script-src 'self') can reach this path.
(function () {
  "use strict";
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (typeof name === "string" && name.toLowerCase() === "style" && this.style) {
      if (value === "" || value === null || value === undefined) this.removeAttribute("style");
      else this.style.cssText = String(value);
      return undefined;
    }
    return setAttribute.call(this, name, value);
  };
})();
