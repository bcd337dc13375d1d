// Paints heatmap windows off the main thread (lib/heatcanvas.js asks; this answers with an
// ImageBitmap), so that a 2048 × 2048 matrix never blocks the page.
//
// A window of cells is drawn at the size it has on screen, in device pixels. Zoomed in (a
// cell covers one pixel or more) each pixel takes its cell's colour. Zoomed out (several
// cells per pixel) each pixel shows the cell of largest magnitude among those it covers: a
// sharp attention pattern (a diagonal one cell wide, one key that every query reads) stays
// visible at any zoom, where averaging or skipping cells would fade or drop it.
//
// Messages: {type: "set", id, rows, cols, values (Float16Array or Float32Array, NaN = masked), lut
// (Uint8Array, 256 RGBA), zmin, zmax, masked ([r, g, b])} keeps a matrix; {type: "render",
// id, seq, r0, r1, c0, c1, width, height} answers {id, seq, bitmap} (or {id, seq, error});
// {type: "drop", id} forgets it.

const matrices = new Map();

function render(m, { r0, r1, c0, c1, width, height }) {
  const { rows, cols, values, lut, zmin, zmax, masked } = m;
  const out = new Uint8ClampedArray(width * height * 4);
  const span = zmax - zmin || 1;
  const nCols = c1 - c0;
  const colLo = new Int32Array(width);
  const colHi = new Int32Array(width);
  for (let x = 0; x < width; x++) {
    const a = c0 + (x * nCols) / width;
    const b = c0 + ((x + 1) * nCols) / width;
    colLo[x] = Math.min(cols - 1, Math.floor(a));
    colHi[x] = Math.max(colLo[x] + 1, Math.min(cols, Math.ceil(b - 1e-9)));
  }
  const line = new Float32Array(nCols); // the reduced rows of one pixel row, over the window's columns
  for (let y = 0; y < height; y++) {
    const a = r0 + (y * (r1 - r0)) / height;
    const b = r0 + ((y + 1) * (r1 - r0)) / height;
    const lo = Math.min(rows - 1, Math.floor(a));
    const hi = Math.max(lo + 1, Math.min(rows, Math.ceil(b - 1e-9)));
    line.fill(Number.NaN);
    for (let i = lo; i < hi; i++) {
      const base = i * cols + c0;
      for (let j = 0; j < nCols; j++) {
        const v = values[base + j];
        const cur = line[j];
        if (v === v && !(Math.abs(cur) >= Math.abs(v))) line[j] = v; // NaN-safe "larger magnitude"
      }
    }
    for (let x = 0; x < width; x++) {
      let best = Number.NaN;
      for (let j = colLo[x] - c0; j < colHi[x] - c0; j++) {
        const v = line[j];
        if (v === v && !(Math.abs(best) >= Math.abs(v))) best = v;
      }
      const p = (y * width + x) * 4;
      if (best !== best) {
        out[p] = masked[0];
        out[p + 1] = masked[1];
        out[p + 2] = masked[2];
      } else {
        const t = Math.min(1, Math.max(0, (best - zmin) / span));
        const k = Math.round(t * 255) * 4;
        out[p] = lut[k];
        out[p + 1] = lut[k + 1];
        out[p + 2] = lut[k + 2];
      }
      out[p + 3] = 255;
    }
  }
  return createImageBitmap(new ImageData(out, width, height));
}

self.onmessage = async (event) => {
  const msg = event.data;
  if (msg.type === "set") {
    matrices.set(msg.id, msg);
  } else if (msg.type === "drop") {
    matrices.delete(msg.id);
  } else if (msg.type === "render") {
    const m = matrices.get(msg.id);
    if (!m) return;
    try {
      const bitmap = await render(m, msg);
      self.postMessage({ id: msg.id, seq: msg.seq, bitmap }, [bitmap]);
    } catch (error) {
      self.postMessage({ id: msg.id, seq: msg.seq, error: String(error) });
    }
  }
};
