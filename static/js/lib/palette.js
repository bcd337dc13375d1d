// Colour-blind-safe colours: Okabe–Ito for categories (heads), viridis for magnitudes,
// a blue–white–orange diverging scale for signed values (no red/green pairing anywhere).

export const OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

// Heads beyond the eighth (12 in BERT-base, GPT-2 and MiniLM; 32 in Llama): no set of more
// than ~8 colours stays distinguishable for colour-blind readers, and a "perceptual" palette
// of 12 hues puts pairs a deuteranope cannot tell apart side by side. So the hue stays
// Okabe–Ito's (head h takes colour h mod 8) and the stroke tells the eights apart: heads 0–7
// solid, 8–15 dashed, 16–23 dotted, 24–31 dash-dot, with a matching swatch (filled, hollow,
// dotted, half). Any two of 32 heads then differ in hue or in pattern, whatever the vision.
const HEAD_DASHES = [null, "7 4", "2 3", "8 3 2 3"];
const HEAD_SWATCHES = ["solid", "hollow", "dotted", "half"];

export const headColor = (h) => OKABE_ITO[h % OKABE_ITO.length];

/** How head h is drawn: {color, dash (an SVG stroke-dasharray, or null), swatch}. */
export function headStyle(h) {
  const set = Math.floor(h / OKABE_ITO.length) % HEAD_DASHES.length;
  return { color: headColor(h), dash: HEAD_DASHES[set], swatch: HEAD_SWATCHES[set] };
}

// viridis, 9 stops (matplotlib's), interpolated linearly in sRGB.
const VIRIDIS = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

export function viridis(t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i];
  const b = VIRIDIS[i + 1];
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f));
}

export const rgb = ([r, g, b]) => `rgb(${r},${g},${b})`;

/** Plotly colourscales. */
export const SEQUENTIAL = "Viridis";
export const DIVERGING = [
  [0, "#0b4f8a"],
  [0.25, "#5da2d5"],
  [0.5, "#f7f7f7"],
  [0.75, "#f0a35a"],
  [1, "#a64200"],
];
// Cyclic and perceptually uniform: for angles that wrap at 2π.
const TWILIGHT = [
  "#e2d9e2",
  "#9ebbc9",
  "#6785be",
  "#5e43a5",
  "#421257",
  "#471340",
  "#8e2c50",
  "#ba6657",
  "#ceac94",
  "#e2d9e2",
];
export const CYCLIC = TWILIGHT.map((c, i) => [i / (TWILIGHT.length - 1), c]);

export const MASKED = "#c9ccd3";

const hexRgb = (hex) => [1, 3, 5].map((k) => Number.parseInt(hex.slice(k, k + 2), 16));

/** 256 RGBA entries of a colour scale given as stops [[t, "#rrggbb"], …] (t from 0 to 1). */
function lutOf(stops) {
  const out = new Uint8Array(256 * 4);
  for (let k = 0; k < 256; k++) {
    const t = k / 255;
    let s = 0;
    while (s < stops.length - 2 && stops[s + 1][0] < t) s++;
    const [t0, c0] = stops[s];
    const [t1, c1] = stops[s + 1];
    const f = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 0;
    const a = hexRgb(c0);
    const b = hexRgb(c1);
    for (let c = 0; c < 3; c++) out[4 * k + c] = Math.round(a[c] + (b[c] - a[c]) * f);
    out[4 * k + 3] = 255;
  }
  return out;
}

const toHex = (rgbArray) => `#${rgbArray.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
const VIRIDIS_STOPS = VIRIDIS.map((c, i) => [i / (VIRIDIS.length - 1), toHex(c)]);

/** Colour tables for canvas heatmaps (lib/heatcanvas.js), the same scales as the Plotly ones. */
export const LUT = { sequential: lutOf(VIRIDIS_STOPS), diverging: lutOf(DIVERGING) };
export const MASKED_RGB = hexRgb(MASKED);
