// The decoder export's prefill/decode steps in the browser, shared by the generation page (app.mjs) and the chat
// page (chat.mjs): loading the export (report.json checks, hf_tokenizer.json, the ONNX graphs), one step against
// a KV cache that grows in blocks, and the next token (greedy, or the in-graph sampler's draw). Errors are
// one-line AppErrors.
//
//   const m = await loadDecoder(report, ['prefill', 'decode']);       // + 'generate' for the in-graph loop
//   let { logits, cache } = await runStep(m, 'prefill', promptIds, 0, null);
//   const token = pick(logits, 0, logits.length, m.banned, null, 0);  // greedy
//   ({ logits, cache } = await runStep(m, 'decode', [token], promptIds.length, cache));
import { AppError, MODEL_URL, externalWeights, fetchWithTimeout, int32, ort, reportKnobs, session } from './common.mjs';
import { NEG, sampleToken } from './sampler.mjs';
import { HfTokenizer } from './tokenizer.mjs';

export const SAMPLING_KNOBS = ['temperature', 'top_k', 'top_p', 'seed']; // the knobs the streamed loop applies itself
const GRAPH_INPUTS = { generate: ['token_ids', 'lengths', 'max_new_tokens'] }; // prefill/decode: the step inputs

// The export behind report.json with the ONNX `signatures` as sessions (`m.prefill`, `m.decode`, `m.generate`),
// its tokenizer, knob table, cache input names, banned and end ids, and the fixed slot count (or null).
export async function loadDecoder(report, signatures) {
  const knobs = reportKnobs(report);
  const info = report.model || {};
  const onnx = (report.artefacts || {}).onnx;
  if (!onnx || !onnx.files) throw new AppError('this export has no ONNX model: re-export with --formats=onnx');
  const files = onnx.files;
  const missing = signatures.filter((s) => !files[s]);
  if (missing.length) throw new AppError(`the ONNX export lacks the ${missing.join(', ')} signature(s)`);
  if (typeof info.hf_tokenizer !== 'string') {
    throw new AppError('report.json names no hf_tokenizer.json (an export older than the apps\' tokenizer, or a ' +
      'tokenizer without a vocabulary): re-export the model');
  }
  const tokenizer = new HfTokenizer(
    await fetchWithTimeout(new URL(info.hf_tokenizer, MODEL_URL).href, 'json'), info.hf_tokenizer);
  const cacheInputs = [];
  for (let i = 0; i < info.num_layers; i += 1) cacheInputs.push(`past_k_${i}`, `past_v_${i}`);
  const external = await externalWeights(onnx);
  const sessions = await Promise.all(signatures.map((name) => fetchWithTimeout(new URL(files[name].path, MODEL_URL).href)
    .then((bytes) => session(bytes, name, GRAPH_INPUTS[name] || ['token_ids', 'positions', ...cacheInputs], external))));
  const m = { info, knobs, tokenizer, cacheInputs, strategy: info.strategy, banned: info.banned_ids || [info.pad_id],
    eos: info.eos_ids, ...Object.fromEntries(signatures.map((name, i) => [name, sessions[i]])) };
  // A fixed slot count (exports before the slot dimension was dynamic) is fed whole; otherwise the slots in use.
  const pastK = m.decode && (m.decode.inputMetadata || []).find((meta) => meta.name === 'past_k_0');
  m.fixedSlots = pastK && typeof pastK.shape[2] === 'number' && pastK.shape[2] > 0 ? pastK.shape[2] : null;
  return m;
}

const isInt32 = (value) => Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;

// The sampling knobs of the form's `fields` ({name: input element}), checked (one-line AppError); null when the
// export does not sample.
export function samplingKnobs(m, fields) {
  if (m.strategy !== 'sample') return null;
  const field = (name) => (fields[name].value.trim() === '' ? NaN : Number(fields[name].value));
  const knobs = Object.fromEntries(SAMPLING_KNOBS.map((name) => [name, field(name)]));
  if (!(knobs.temperature > 0)) throw new AppError('Temperature must be a number > 0');
  if (!isInt32(knobs.top_k) || knobs.top_k < 0) throw new AppError('Top-k must be a whole number >= 0 (0: all)');
  if (!(knobs.top_p > 0 && knobs.top_p <= 1)) throw new AppError('Top-p must be a number in (0, 1]');
  if (!isInt32(knobs.seed)) throw new AppError('Seed must be a whole number from -2147483648 to 2147483647');
  return knobs;
}

function pickGreedy(logits, offset, size, banned) {
  // argmax over one row of logits (the first of ties, as tf.argmax), banned ids never chosen
  let best = -1;
  let bestValue = -Infinity;
  for (let id = 0; id < size; id += 1) {
    const value = logits[offset + id];
    if (value > bestValue && !banned.includes(id)) { best = id; bestValue = value; }
  }
  return best;
}

// The next token from one row of logits: greedy, or (sampling knobs given) the in-graph sampler's draw for
// the step-th new token of batch row 0 (tfzoo/decoding/greedy_search.py), the banned ids at NEG first.
export function pick(logits, offset, size, banned, sampling, step) {
  if (!sampling) return pickGreedy(logits, offset, size, banned);
  const row = logits.slice(offset, offset + size); // a Float32Array copy
  for (const id of banned) row[id] = NEG;
  const { temperature, top_k: topK, top_p: topP, seed } = sampling;
  return sampleToken(row, { temperature, topK, topP, seed, row: 0, step });
}

// The streamed cache holds the slots in use, grown by CACHE_BLOCK (as tfzoo.runtimes and apps/edge, which use 64:
// LiteRT pays for each new slot count; onnxruntime-web's CPU kernels take any shape), so a step attends over the
// tokens held, not the export's max_length.
export const CACHE_BLOCK = 16;
export const slotsFor = (m, needed) => m.fixedSlots
  || Math.min(Math.ceil(needed / CACHE_BLOCK) * CACHE_BLOCK, m.info.max_length);

// `tensor` [1, heads, slots, head_dim] copied into `slots` slots, the new ones zero (masked: past the position).
export function grown(tensor, slots) {
  const [batch, heads, old, width] = tensor.dims;
  const data = new Float32Array(batch * heads * slots * width);
  for (let h = 0; h < batch * heads; h += 1) {
    data.set(tensor.data.subarray(h * old * width, (h + 1) * old * width), h * slots * width);
  }
  return new ort.Tensor('float32', data, [batch, heads, slots, width]);
}

// A KV cache of `slots` zero slots ({past_k_<i>, past_v_<i>}).
export function emptyCache(m, slots) {
  const dims = [1, m.info.num_heads, slots, m.info.head_dim];
  const zeros = new Float32Array(dims.reduce((a, b) => a * b, 1));
  return Object.fromEntries(m.cacheInputs.map((name) => [name, new ort.Tensor('float32', zeros, dims)]));
}

// Runs `ids` at positions start, start + 1, ... through `graph` ('prefill', or 'decode' for one id) against
// `cache` (null: none yet; its first `start` slots hold the tokens before), grown to the slots needed.
// Returns the logits after the last id (a Float32Array of the vocabulary's size), the cache that holds them
// too, and its slot count.
export async function runStep(m, graph, ids, start, cache) {
  const slots = slotsFor(m, start + ids.length);
  const feeds = { token_ids: int32(ids, [1, ids.length]), positions: int32(ids.map((_, i) => start + i), [1, ids.length]) };
  const past = cache || emptyCache(m, slots);
  for (const name of m.cacheInputs) feeds[name] = past[name].dims[2] < slots ? grown(past[name], slots) : past[name];
  const outputs = await m[graph].run(feeds);
  const { data, dims } = outputs.logits;
  const next = Object.fromEntries(m.cacheInputs.map((name) => [name, outputs[name.replace('past_', 'present_')]]));
  return { logits: data.subarray((dims[1] - 1) * dims[2], dims[1] * dims[2]), cache: next, slots: feeds[m.cacheInputs[0]].dims[2] };
}
