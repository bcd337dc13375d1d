// Colour-blind-safe colours: Okabe–Ito for categories (heads), viridis for magnitudes,
// a blue–white–orange diverging scale for signed values (no red/green pairing anywhere).

export const OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

export const headColor = (h) => OKABE_ITO[h % OKABE_ITO.length];

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
