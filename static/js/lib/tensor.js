// Tensors as the binary transport carries them, and 2-D matrices over Float32Array.
//
// An answer of POST /attention with format "binary" (app/serialize.py) is the bytes "ATNV", a
// uint32 little-endian header length n, n bytes of JSON (the usual answer, each tensor replaced
// by {dtype: "float16", shape, offset, length}), then the raw little-endian half floats, each
// tensor at byte 8 + n + offset. decodeFrame() turns it into the usual answer with a Tensor in
// each place. A matrix (Mat) is {rows, cols, data}: row-major floats (a Float16Array over the
// answer's bytes where the browser has one, else a Float32Array), NaN = masked.

const MAGIC = "ATNV";

// Half floats: read in place through the browser's Float16Array where there is one (Chromium
// ≥ 135, Firefox ≥ 129, Safari ≥ 18.2): no copy, and reading one costs about twice a float32's,
// where converting 4 M of them to float32 first takes ~25 ms of the main thread. Elsewhere they
// are converted with a 64 Ki table built once.
let halfTable = null;
function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** `length` half floats at `byteOffset` of `buffer` (2-aligned): a Float16Array view, or a
 * Float32Array copy where the browser has no Float16Array. */
export function halves(buffer, byteOffset, length) {
  const F16 = globalThis.Float16Array;
  if (F16) return new F16(buffer, byteOffset, length);
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  const bits = new Uint16Array(buffer, byteOffset, length);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = halfTable[bits[i]];
  return out;
}

/** A dense tensor: `shape` and row-major `data` (see halves). */
export class Tensor {
  constructor(shape, data) {
    this.shape = shape;
    this.data = data;
  }

  get nbytes() {
    return this.data.byteLength;
  }

  /** The trailing 2-D matrix at the leading indices, e.g. t.matrix(layer, head): a view, no copy. */
  matrix(...lead) {
    const dims = this.shape;
    const rows = dims[dims.length - 2];
    const cols = dims[dims.length - 1];
    let offset = 0;
    let stride = rows * cols;
    for (let k = lead.length - 1; k >= 0; k--) {
      offset += lead[k] * stride;
      stride *= dims[k];
    }
    return { rows, cols, data: this.data.subarray(offset, offset + rows * cols) };
  }

  /** Nested arrays (NaN -> null), as the JSON format would have them. */
  toNested() {
    const build = (d, offset) => {
      if (d === this.shape.length - 1) {
        return Array.from(this.data.subarray(offset, offset + this.shape[d]), (v) => (Number.isNaN(v) ? null : v));
      }
      const stride = this.shape.slice(d + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.shape[d] }, (_, i) => build(d + 1, offset + i * stride));
    };
    return build(0, 0);
  }
}

const isTensorRef = (o) =>
  o && typeof o === "object" && !Array.isArray(o) && o.dtype === "float16" && "offset" in o && "length" in o;

/** Decode a binary answer: its JSON header with a Tensor in place of each tensor reference. */
export function decodeFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 8 || String.fromCharCode(...bytes.subarray(0, 4)) !== MAGIC) {
    throw new Error("not an attnviz binary answer");
  }
  const n = new DataView(buffer).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const start = 8 + n;
  const revive = (o) => {
    if (isTensorRef(o)) return new Tensor(o.shape, halves(buffer, start + o.offset, o.length));
    if (Array.isArray(o)) return o.map(revive);
    if (o && typeof o === "object") {
      for (const k of Object.keys(o)) o[k] = revive(o[k]);
    }
    return o;
  };
  return revive(header);
}

/** A tensor of the `f16` JSON format ({dtype: "float16", shape, data: base64}) as a Tensor. */
export function fromBase64({ shape, data }) {
  const raw = atob(data);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new Tensor(shape, halves(bytes.buffer, 0, bytes.length / 2));
}

// ---------------------------------------------------------------------------------------
// matrices

/** A Mat from nested arrays (null -> NaN). */
export function fromNested(rows) {
  const n = rows.length;
  const m = n ? rows[0].length : 0;
  const data = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    for (let j = 0; j < m; j++) data[i * m + j] = r[j] === null || r[j] === undefined ? Number.NaN : r[j];
  }
  return { rows: n, cols: m, data };
}

/** Nested arrays (NaN -> null) of a Mat, or of its window [r0, r1) × [c0, c1). */
export function toNested(m, r0 = 0, r1 = m.rows, c0 = 0, c1 = m.cols) {
  const out = [];
  for (let i = r0; i < r1; i++) {
    const row = new Array(c1 - c0);
    for (let j = c0; j < c1; j++) {
      const v = m.data[i * m.cols + j];
      row[j - c0] = Number.isNaN(v) ? null : v;
    }
    out.push(row);
  }
  return out;
}

/**
 * The rows `rowIdx` × columns `colIdx` of a Mat (indices into it), each row divided by its sum
 * when `renorm` (special tokens hidden), and cells where `masked(i, j)` (original indices) NaN.
 */
export function selectMat(m, rowIdx, colIdx, { renorm = false, masked = null } = {}) {
  const R = rowIdx.length;
  const C = colIdx.length;
  const data = new Float32Array(R * C);
  for (let a = 0; a < R; a++) {
    const i = rowIdx[a];
    const base = i * m.cols;
    let sum = 0;
    for (let b = 0; b < C; b++) {
      const j = colIdx[b];
      const v = masked && masked(i, j) ? Number.NaN : m.data[base + j];
      data[a * C + b] = v;
      if (renorm && Number.isFinite(v)) sum += v;
    }
    if (renorm) {
      for (let b = 0; b < C; b++) {
        const v = data[a * C + b];
        if (Number.isFinite(v)) data[a * C + b] = sum > 0 ? v / sum : 0;
      }
    }
  }
  return { rows: R, cols: C, data };
}

/** The largest |value| of a Mat (NaN skipped), at least `floor`. */
export function maxAbs(m, floor = 0) {
  let top = floor;
  for (let k = 0; k < m.data.length; k++) {
    const v = Math.abs(m.data[k]);
    if (v > top) top = v;
  }
  return top;
}

/**
 * The `k` largest entries of row i of a Mat that are ≥ `min`: [{j, v}], largest first.
 * O(cols · k): one pass with a small sorted buffer.
 */
export function topRow(m, i, k, min = 0) {
  const out = [];
  const base = i * m.cols;
  for (let j = 0; j < m.cols; j++) {
    const v = m.data[base + j];
    if (!(v >= min)) continue;
    if (out.length === k && v <= out[k - 1].v) continue;
    let p = Math.min(out.length, k - 1);
    if (out.length < k) out.push(null);
    while (p > 0 && out[p - 1].v < v) {
      out[p] = out[p - 1];
      p--;
    }
    out[p] = { j, v };
  }
  return out;
}
