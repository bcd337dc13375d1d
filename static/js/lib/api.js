// The REST client. Every error becomes an ApiError with the server's {code, message, field}.

import { decodeFrame } from "./tensor.js";

export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const BASE = "/api/v1";
const BINARY = "application/octet-stream";

/** The server answers every error as {"error": {code, message, field}}; anything else (a proxy's
 * HTML page, a dropped body) gets a generic error from the status. */
async function parseError(res) {
  let err = null;
  try {
    err = (await res.json()).error;
  } catch {
    /* not JSON */
  }
  if (err) {
    return new ApiError(res.status, err.code || `http_${res.status}`, err.message || res.statusText, err.field ?? null);
  }
  const retry = res.headers.get("Retry-After");
  const msg =
    res.status === 503
      ? `The server is busy${retry ? `; try again in ${retry} s` : ""}.`
      : res.statusText || "request failed";
  return new ApiError(res.status, `http_${res.status}`, msg);
}

/**
 * At most IN_FLIGHT of a page's POSTs (the model's work) at the server at once; the others wait
 * here, in order. A real LLM answers in seconds on a CPU: a view's burst (the explorer's head,
 * its layer for the head view, the grid, the next token, the neighbours prefetched) queued at
 * the server past its budget and came back 503 (overloaded). A request aborted while it waits
 * here is never sent.
 */
const IN_FLIGHT = 2;
let inFlight = 0;
const waiting = [];

function acquire(signal) {
  if (inFlight < IN_FLIGHT) {
    inFlight += 1;
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    const entry = { resolve };
    waiting.push(entry);
    if (signal)
      signal.addEventListener(
        "abort",
        () => {
          const i = waiting.indexOf(entry);
          if (i < 0) return;
          waiting.splice(i, 1);
          reject(new DOMException("The request was aborted.", "AbortError"));
        },
        { once: true },
      );
  });
}

function release() {
  const next = waiting.shift();
  if (next)
    next.resolve(); // the slot passes to the next one waiting
  else inFlight -= 1;
}

async function send(method, path, body, { signal, accept = "application/json", base = BASE } = {}) {
  const limited = method !== "GET";
  if (limited) {
    if (signal && signal.aborted) throw new DOMException("The request was aborted.", "AbortError");
    await acquire(signal);
  }
  let res;
  try {
    res = await fetch(base + path, {
      method,
      headers: body === undefined ? { Accept: accept } : { "Content-Type": "application/json", Accept: accept },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(0, "network_error", "Cannot reach the attnviz server. Is it still running?");
  } finally {
    if (limited) release(); // the answer's headers came: the server's work is done (streams go on)
  }
  if (!res.ok) throw await parseError(res);
  return res;
}

async function request(method, path, body, opts) {
  return (await send(method, path, body, opts)).json();
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body, opts) => request("POST", path, body, opts);

let modelsPromise = null;
/** The loaded models (cached for the page's lifetime). */
export function listModels() {
  if (!modelsPromise) {
    modelsPromise = get("/models").then((r) => r.models);
    modelsPromise.catch(() => (modelsPromise = null));
  }
  return modelsPromise;
}

export const modelCard = (id) => get(`/models/${encodeURIComponent(id)}`);

/** A model's tasks (GET /models `tasks`): what it can be asked beyond attention. */
export const can = (model, task) => Boolean(model && model.tasks && model.tasks.includes(task));
export const tokenize = (model, text) => post("/tokenize", { model, text });
export const attention = (body, opts) => post("/attention", body, opts);

/** One page that draws this view offline, as a Blob (the "HTML (standalone)" export; a page
 * route, outside /api/v1: {model, text, target?, view, layer, head, site}). */
export const standalonePage = async (body) =>
  (await send("POST", "/export/standalone", body, { accept: "text/html", base: "" })).blob();

/**
 * POST /attention in the binary transport: the answer with each tensor a Tensor (lib/tensor.js).
 * Half the bytes of base64 f16 and no JSON parse of the numbers; for long inputs.
 */
export async function attentionBinary(body, opts) {
  const res = await send("POST", "/attention", { ...body, format: "binary" }, { ...opts, accept: BINARY });
  return decodeFrame(await res.arrayBuffer());
}

/** The /attention body for a view's sentence: its `target` is teacher-forced when the model is a
 * seq2seq. */
export function inputBody(model, { text, target }) {
  const body = { model: model.id, text };
  if (model.kind === "seq2seq" && target) body.target = target;
  return body;
}

/** /attention on a view's sentence (JSON). */
export function attentionOn(model, input, include, opts) {
  return attention({ ...inputBody(model, input), include }, opts);
}

/** For requests where only the latest counts: each call aborts the one before; its signal. */
export function latestOnly() {
  let controller = null;
  return () => {
    if (controller) controller.abort();
    controller = new AbortController();
    return controller.signal;
  };
}
/** POST /block in the binary transport: one block of `stack` at `layer` (a seq2seq decoder
 * block reads `target`), its tensors as Tensors (lib/tensor.js). */
export async function block(model, { text, target, stack, layer, batch = [] }, opts) {
  const body = { model: model.id, text, stack, layer, batch, format: "binary" };
  if (model.kind === "seq2seq" && stack === "decoder" && target) body.target = target;
  const res = await send("POST", "/block", body, { ...opts, accept: BINARY });
  return decodeFrame(await res.arrayBuffer());
}
export const unroll = (body, opts) => post("/rnn/unroll", body, opts);
export const generate = (body, opts) => post("/generate", body, opts);
export const positions = (id, n) => get(`/models/${encodeURIComponent(id)}/positions?n=${n}`);
export const ropeRelative = (body) => post("/rope/relative", body);
/** POST /heads/scores: every head's scores per site, [L][H] each. */
export const headScores = (body, opts) => post("/heads/scores", body, opts);

/**
 * Decode over Server-Sent Events (a list in `params` becomes a repeated query parameter):
 * onPrompt({prompt}) first, onStep(step) for each `step`
 * event, onDone(done) once; onError(ApiError) if the stream reports an error or breaks.
 * Returns {close()}.
 */
export function generateStream(params, { onPrompt, onStep, onDone, onError }) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v))
      for (const x of v) query.append(k, String(x)); // layers=0&layers=3
    else if (v !== undefined && v !== null && v !== "") query.set(k, String(v));
  }
  const source = new EventSource(`${BASE}/generate/stream?${query}`);
  let finished = false;
  const finish = () => {
    finished = true;
    source.close();
  };
  source.addEventListener("prompt", (ev) => onPrompt && onPrompt(JSON.parse(ev.data)));
  source.addEventListener("step", (ev) => onStep(JSON.parse(ev.data)));
  source.addEventListener("done", (ev) => {
    finish();
    onDone(JSON.parse(ev.data));
  });
  // A server-sent `event: error` carries {"error": {...}}. A refused or broken connection
  // carries nothing: then ask the same URL with fetch, which sees the JSON error body.
  source.addEventListener("error", async (ev) => {
    if (finished) return;
    finish();
    if (ev && typeof ev.data === "string" && ev.data) {
      let err = new ApiError(0, "stream_error", "decoding failed");
      try {
        const e = JSON.parse(ev.data).error || {};
        err = new ApiError(e.status || 422, e.code || "stream_error", e.message || "decoding failed", e.field ?? null);
      } catch {
        /* keep the generic error */
      }
      onError(err);
      return;
    }
    const diagnosed = await diagnose(query);
    onError(diagnosed || new ApiError(0, "stream_error", "The decoding stream was interrupted."));
  });
  return { close: finish };
}

/** Re-ask the stream URL with fetch to read the JSON error EventSource cannot show. */
async function diagnose(query) {
  const ctrl = new AbortController();
  try {
    const res = await fetch(`${BASE}/generate/stream?${query}`, { signal: ctrl.signal });
    return res.ok ? null : await parseError(res);
  } catch {
    return new ApiError(0, "network_error", "Cannot reach the attnviz server. Is it still running?");
  } finally {
    ctrl.abort();
  }
}

/**
 * A sweep streamed as Server-Sent Events over POST (/patch/stream, /heads/scores/stream): each
 * `progress` event to onProgress as it comes, then the `result` event's answer. Aborting `signal`
 * closes the connection, which stops the sweep on the server.
 */
async function sweepStream(path, body, { signal, onProgress = () => {} } = {}) {
  const res = await send("POST", path, body, { signal, accept: "text/event-stream" });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(
        block.split("\n").map((line) => [line.split(": ")[0], line.slice(line.indexOf(": ") + 2)]),
      );
      const data = JSON.parse(fields.data);
      if (fields.event === "progress") onProgress(data);
      else if (fields.event === "result") return data;
      else if (fields.event === "error") throw new ApiError(500, data.error.code, data.error.message);
    }
  }
  throw new ApiError(0, "network_error", `the ${path} stream ended without an answer`);
}

/** POST /patch/stream: onProgress({done, total}) in batches of patched runs, then /patch's answer. */
export const patchStream = (body, opts) => sweepStream("/patch/stream", body, opts);

/** POST /heads/scores/stream: onProgress({done, total, unit: "heads", layer, n_layers, eta_s}) while
 * the exact importance sweep runs, then /heads/scores' answer. */
export const headScoresStream = (body, opts) => sweepStream("/heads/scores/stream", body, opts);
