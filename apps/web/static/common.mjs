// What both pages of the web app share: onnxruntime-web set up for one thread, the export folder's URL and
// the load timeout (?model=, ?timeout=), fetching with a timeout, report.json's checks, ONNX sessions, and
// the knob inputs of an in-graph decoding signature (its stop/ban tables: sequences.mjs). Errors are one-line
// AppErrors.
//
//   const report = await fetchWithTimeout(new URL('report.json', MODEL_URL).href, 'json');
//   const knobs = reportKnobs(report);                      // {name: {dtype, default, strategies}}
//   const feeds = knobFeeds(knobs, graph.inputNames);      // each knob input at the report's default
import * as ort from './ort/ort.wasm.min.mjs';

export { ort };

const params = new URLSearchParams(location.search);
export const MODEL_URL = new URL(params.get('model') || 'model/', location.href).href;
export const TIMEOUT_MS = 1000 * Number(params.get('timeout') || 60);
const REPORT_FORMAT_VERSION = 2; // the newest report.json this page reads (as apps/edge/json_files.py)

ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
ort.env.wasm.numThreads = 1; // threads need COOP/COEP; one thread works on any static host

export class AppError extends Error {}

export async function fetchWithTimeout(url, kind) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(url, { signal: controller.signal, cache: 'no-store' });
    if (!response.ok) throw new AppError(`cannot load ${url}: HTTP ${response.status}`);
    return kind === 'json' ? await response.json() : new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    if (error.name === 'AbortError') throw new AppError(`loading ${url} timed out after ${TIMEOUT_MS / 1000} s`);
    if (error instanceof AppError) throw error;
    throw new AppError(`cannot load ${url}: ${error.message}`);
  } finally {
    clearTimeout(timer);
  }
}

// `work` (a promise), or an AppError `${what} timed out after ... s` when it takes longer than TIMEOUT_MS.
export function withTimeout(work, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new AppError(`${what} timed out after ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export async function session(bytes, name, needs, externalData) {
  // externalData: the export's one weights file, which every graph refers to (ONNX external data)
  const options = { executionProviders: ['wasm'], logSeverityLevel: 3 }; // errors only: no unused-weight warnings
  if (externalData) options.externalData = externalData;
  const created = await ort.InferenceSession.create(bytes, options);
  const missing = needs.filter((input) => !created.inputNames.includes(input));
  if (missing.length) throw new AppError(`the ${name} graph lacks inputs ${missing.join(', ')}: not a tfzoo export`);
  return created;
}

// The export's ONNX weights file as onnxruntime-web's externalData (fetched once, shared by the graphs).
export async function externalWeights(onnx) {
  if (!onnx.weights) return undefined;
  return [{ path: onnx.weights.path, data: await fetchWithTimeout(new URL(onnx.weights.path, MODEL_URL).href) }];
}

// The report's knob table ({name: {dtype, default, strategies}}); a one-line AppError when unusable.
export function reportKnobs(report) {
  const version = report.format_version;
  if (version === undefined) {
    throw new AppError('report.json has no format_version (an older `python -m export` wrote it): re-export the model');
  }
  if (version !== REPORT_FORMAT_VERSION) {
    throw new AppError(`report.json has format_version ${version}; this page reads ${REPORT_FORMAT_VERSION}`);
  }
  const knobs = report.knobs || {};
  for (const [name, knob] of Object.entries(knobs)) {
    if (!['int32', 'float32'].includes(knob.dtype) || typeof knob.default !== 'number') {
      throw new AppError(`report.json: knob ${name} needs an int32 or float32 dtype and a numeric default`);
    }
  }
  if (!knobs.max_new_tokens) throw new AppError('report.json has no knob table (max_new_tokens missing)');
  return knobs;
}

export const int32 = (values, dims) => new ort.Tensor('int32', Int32Array.from(values), dims);

// A scalar input for every knob among `inputNames`: the value in `given`, else the report's default.
export function knobFeeds(knobs, inputNames, given = {}) {
  const feeds = {};
  for (const name of inputNames) {
    const knob = knobs[name];
    if (!knob) continue;
    const value = name in given ? given[name] : knob.default;
    feeds[name] = knob.dtype === 'float32' ? new ort.Tensor('float32', Float32Array.from([value]), [])
      : int32([value], []);
  }
  return feeds;
}
