// Loaded (classic script) before Plotly. Plotly's colour bar clears its rects with
// setAttribute("style", ""), which a strict CSP (style-src 'self', no 'unsafe-inline') refuses
// and reports as an error. An empty style attribute means "no inline style": remove it
// instead, which the policy allows. Any other inline style attribute is still refused.
(function () {
  "use strict";
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (name === "style" && (value === "" || value === null || value === undefined)) {
      this.removeAttribute("style");
      return undefined;
    }
    return setAttribute.call(this, name, value);
  };
})();
