// Export any panel as PNG, SVG or JSON, a table as CSV, a view as one standalone HTML page. Plotly figures use Plotly.downloadImage;
// our own SVG drawings are serialised (with their computed styles inlined) and rasterised for
// PNG; canvas figures (lib/heatcanvas.js) give their own PNG and an SVG holding their pixels.

const providers = new Map();

/**
 * id matches a template's `.export[data-export=id]` group. provider: {
 *   filename(): string, data(): any (JSON), plot?(): Plotly div, svg?(): SVGSVGElement (a
 *   drawing on the page, or a detached one that is already standalone), figure?(): a canvas
 *   figure {toBlob(), toSVG()} or null, csv?(): a table as CSV text, html?(): a Promise of a Blob
 *   (the "HTML (standalone)" page: the view as one file that opens offline) }
 */
export function registerExport(id, provider) {
  providers.set(id, provider);
}

export function downloadBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

export function downloadJSON(data, filename) {
  downloadBlob(new Blob([JSON.stringify(data, null, 1)], { type: "application/json" }), `${filename}.json`);
}

const STYLE_PROPS = [
  "fill",
  "fill-opacity",
  "stroke",
  "stroke-width",
  "stroke-opacity",
  "stroke-dasharray",
  "opacity",
  "font-family",
  "font-size",
  "font-style",
  "font-weight",
  "text-anchor",
  "dominant-baseline",
  "display",
  "visibility",
];

/** A standalone copy of an <svg>, styles inlined, ready to serialise. */
export function standaloneSVG(node) {
  const clone = node.cloneNode(true);
  const src = [node, ...node.querySelectorAll("*")];
  const dst = [clone, ...clone.querySelectorAll("*")];
  src.forEach((s, i) => {
    const cs = getComputedStyle(s);
    for (const prop of STYLE_PROPS) dst[i].style.setProperty(prop, cs.getPropertyValue(prop));
  });
  clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
  const box = node.getBoundingClientRect();
  if (!clone.getAttribute("width")) clone.setAttribute("width", String(Math.ceil(box.width)));
  if (!clone.getAttribute("height")) clone.setAttribute("height", String(Math.ceil(box.height)));
  clone.style.setProperty("background", "#ffffff");
  return clone;
}

/** A drawing on the page made standalone; a detached one is taken as standalone already. */
const asStandalone = (node) => (node.isConnected ? standaloneSVG(node) : node);

export function svgString(node) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(asStandalone(node))}`;
}

export function svgToPngBlob(node, scale = 2) {
  const standalone = asStandalone(node);
  const text = svgString(standalone);
  const width = Number.parseFloat(standalone.getAttribute("width"));
  const height = Number.parseFloat(standalone.getAttribute("height"));
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(new Blob([text], { type: "image/svg+xml" }));
    const img = new Image();
    img.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = Math.ceil(width * scale);
      canvas.height = Math.ceil(height * scale);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(url);
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("PNG encoding failed"))), "image/png");
    };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("could not rasterise the SVG"));
    };
    img.src = url;
  });
}

export async function exportAs(id, format) {
  const p = providers.get(id);
  if (!p) throw new Error(`nothing to export for ${id}`);
  const filename = (p.filename ? p.filename() : id).replace(/[^\w.-]+/g, "_");
  if (format === "json") return downloadJSON(p.data(), filename);
  if (format === "html") {
    if (!p.html) throw new Error(`no standalone page for ${id}`);
    return downloadBlob(await p.html(), `${filename}.html`);
  }
  if (format === "csv") {
    if (!p.csv) throw new Error(`no CSV for ${id}`);
    return downloadBlob(new Blob([p.csv()], { type: "text/csv" }), `${filename}.csv`);
  }
  const figure = p.figure && p.figure();
  if (figure) {
    if (format === "png") return downloadBlob(await figure.toBlob(), `${filename}.png`);
    return downloadBlob(new Blob([svgString(figure.toSVG())], { type: "image/svg+xml" }), `${filename}.svg`);
  }
  const plot = p.plot && p.plot();
  if (plot && window.Plotly && plot.data) {
    return window.Plotly.downloadImage(plot, { format, filename, scale: format === "png" ? 2 : 1 });
  }
  const node = p.svg && p.svg();
  if (!node) throw new Error("nothing drawn yet");
  if (format === "svg") return downloadBlob(new Blob([svgString(node)], { type: "image/svg+xml" }), `${filename}.svg`);
  return downloadBlob(await svgToPngBlob(node), `${filename}.png`);
}

/** One delegated listener for every export button on the page. */
export function initExports(onError) {
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest(".export button[data-format]") : null;
    if (!button) return;
    const id = button.closest(".export").dataset.export;
    exportAs(id, button.dataset.format).catch((e) => onError({ code: "export_failed", message: e.message }));
  });
}
