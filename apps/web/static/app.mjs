// tfzoo web app: the exported ONNX model run by onnxruntime-web (WebAssembly) on this device.
// Reads model/report.json (model facts, file names, the decoding knobs and their defaults),
// model/hf_tokenizer.json, then the prefill and decode graphs (streamed decoding with the KV cache) and
// the in-graph `generate` graph, fed every knob it takes at the export's default. When the export's
// `generate` samples, the page shows its sampling knobs (temperature, top-k, top-p, seed) and both
// loops use them: the streamed loop draws with the in-graph sampler's hash (sampler.mjs), so the
// two loops give the same tokens for the same seed. Otherwise the streamed loop is greedy.
// Query options: ?model=URL-of-the-export-folder/ (default "model/"), ?timeout=seconds (default 60).
import { AppError, MODEL_URL, TIMEOUT_MS, externalWeights, fetchWithTimeout, int32, knobFeeds, ort, reportKnobs,
  sequenceFeeds, session, withTimeout } from './common.mjs';
import { NEG, sampleToken } from './sampler.mjs';
import { HfTokenizer } from './tokenizer.mjs';

const $ = (id) => document.getElementById(id);
const ui = { prompt: $('prompt'), maxNew: $('max-new-tokens'), loop: $('loop'), generate: $('generate'),
  stop: $('stop'), output: $('output'), status: $('status'), info: $('model-info'), form: $('form'),
  sampling: $('sampling'), temperature: $('temperature'), top_k: $('top-k'), top_p: $('top-p'), seed: $('seed') };
const SAMPLING_KNOBS = ['temperature', 'top_k', 'top_p', 'seed']; // the knobs the streamed loop applies itself
let model = null;
let stopRequested = false;

function setState(state, message) {
  document.body.dataset.state = state;
  ui.status.textContent = message;
  const busy = state === 'loading' || state === 'running';
  ui.generate.disabled = busy || !model;
  ui.stop.disabled = state !== 'running';
}

async function loadModel() {
  const report = await fetchWithTimeout(new URL('report.json', MODEL_URL).href, 'json');
  const knobs = reportKnobs(report);
  const info = report.model || {};
  if (info.kind === 'asr') {
    throw new AppError('this export is a speech recognizer (kind asr), not a text generator: open listen.html');
  }
  const onnx = (report.artefacts || {}).onnx;
  if (!onnx || !onnx.files) throw new AppError('this export has no ONNX model: re-export with --formats=onnx');
  const files = onnx.files;
  const missing = ['prefill', 'decode', 'generate'].filter((s) => !files[s]);
  if (missing.length) throw new AppError(`the ONNX export lacks the ${missing.join(', ')} signature(s)`);
  if (typeof info.hf_tokenizer !== 'string') {
    throw new AppError('report.json names no hf_tokenizer.json (an export older than the apps\' tokenizer, or a ' +
      'tokenizer without a vocabulary): re-export the model');
  }
  const tokenizer = new HfTokenizer(
    await fetchWithTimeout(new URL(info.hf_tokenizer, MODEL_URL).href, 'json'), info.hf_tokenizer);
  const cacheInputs = [];
  for (let i = 0; i < info.num_layers; i += 1) cacheInputs.push(`past_k_${i}`, `past_v_${i}`);
  const stepInputs = ['token_ids', 'positions', ...cacheInputs];
  const external = await externalWeights(onnx);
  const [prefill, decode, generate] = await Promise.all([
    fetchWithTimeout(new URL(files.prefill.path, MODEL_URL).href)
      .then((b) => session(b, 'prefill', stepInputs, external)),
    fetchWithTimeout(new URL(files.decode.path, MODEL_URL).href)
      .then((b) => session(b, 'decode', stepInputs, external)),
    fetchWithTimeout(new URL(files.generate.path, MODEL_URL).href)
      .then((b) => session(b, 'generate', ['token_ids', 'lengths', 'max_new_tokens'], external)),
  ]);
  // A fixed slot count (exports before the slot dimension was dynamic) is fed whole; otherwise the slots in use.
  const pastK = (decode.inputMetadata || []).find((meta) => meta.name === 'past_k_0');
  const fixedSlots = pastK && typeof pastK.shape[2] === 'number' && pastK.shape[2] > 0 ? pastK.shape[2] : null;
  return { info, knobs, tokenizer, prefill, decode, generate, cacheInputs, strategy: info.strategy,
    banned: info.banned_ids || [info.pad_id], eos: info.eos_ids, fixedSlots };
}

const isInt32 = (value) => Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;

// The sampling knobs of the form, checked (one-line AppError); null when the export does not sample.
function samplingKnobs(m) {
  if (m.strategy !== 'sample') return null;
  const field = (name) => (ui[name].value.trim() === '' ? NaN : Number(ui[name].value));
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
function pick(logits, offset, size, banned, sampling, step) {
  if (!sampling) return pickGreedy(logits, offset, size, banned);
  const row = logits.slice(offset, offset + size); // a Float32Array copy
  for (const id of banned) row[id] = NEG;
  const { temperature, top_k: topK, top_p: topP, seed } = sampling;
  return sampleToken(row, { temperature, topK, topP, seed, row: 0, step });
}

// Streamed decoding with prefill/decode and the KV cache (greedy, or sampled as the in-graph loop); yields each id.
// The streamed cache holds the slots in use, grown by CACHE_BLOCK (as tfzoo.runtimes and apps/edge, which use 64:
// LiteRT pays for each new slot count; onnxruntime-web's CPU kernels take any shape), so a step attends over the
// tokens held, not the export's max_length.
const CACHE_BLOCK = 16;
const slotsFor = (m, needed) => m.fixedSlots
  || Math.min(Math.ceil(needed / CACHE_BLOCK) * CACHE_BLOCK, m.info.max_length);

// `tensor` [1, heads, slots, head_dim] copied into `slots` slots, the new ones zero (masked: past the position).
function grown(tensor, slots) {
  const [batch, heads, old, width] = tensor.dims;
  const data = new Float32Array(batch * heads * slots * width);
  for (let h = 0; h < batch * heads; h += 1) {
    data.set(tensor.data.subarray(h * old * width, (h + 1) * old * width), h * slots * width);
  }
  return new ort.Tensor('float32', data, [batch, heads, slots, width]);
}

async function* streamSteps(m, promptIds, maxNewTokens, deadline, sampling) {
  const { info } = m;
  let slots = slotsFor(m, promptIds.length);
  document.body.dataset.cacheSlots = String(slots); // the slot counts the steps ran at, for the page's tests
  const cacheDims = [1, info.num_heads, slots, info.head_dim];
  const zeros = new Float32Array(cacheDims.reduce((a, b) => a * b, 1));
  let feeds = { token_ids: int32(promptIds, [1, promptIds.length]),
    positions: int32(promptIds.map((_, i) => i), [1, promptIds.length]) };
  for (const name of m.cacheInputs) feeds[name] = new ort.Tensor('float32', zeros, cacheDims);
  let outputs = await m.prefill.run(feeds);
  let count = promptIds.length;
  const limit = Math.min(maxNewTokens, info.max_length - count);
  for (let step = 0; step < limit; step += 1) {
    if (performance.now() > deadline) throw new AppError(`generation timed out after ${TIMEOUT_MS / 1000} s`);
    if (stopRequested) return;
    const { data, dims } = outputs.logits;
    const vocabulary = dims[2];
    const token = pick(data, (dims[1] - 1) * vocabulary, vocabulary, m.banned, sampling, step);
    if (token < 0 || m.eos.includes(token)) return;
    yield token;
    if (step + 1 === limit) return;
    feeds = { token_ids: int32([token], [1, 1]), positions: int32([count], [1, 1]) };
    const needed = slotsFor(m, count + 1);
    for (const name of m.cacheInputs) {
      const present = outputs[name.replace('past_', 'present_')];
      feeds[name] = needed > slots ? grown(present, needed) : present;
    }
    if (needed > slots) document.body.dataset.cacheSlots += `,${needed}`;
    slots = Math.max(slots, needed);
    outputs = await m.decode.run(feeds);
    count += 1;
  }
}

// The whole loop inside the graph (the exported strategy); returns the new ids, <eos> dropped.
// Each knob input gets the form's value (sampling knobs) or the report's default.
async function inGraph(m, promptIds, maxNewTokens, sampling) {
  const given = { max_new_tokens: maxNewTokens, ...(sampling || {}) };
  const feeds = { token_ids: int32(promptIds, [1, promptIds.length]), lengths: int32([promptIds.length], [1]),
    ...knobFeeds(m.knobs, m.generate.inputNames, given), ...sequenceFeeds(m.info, m.generate.inputNames) };
  const outputs = await m.generate.run(feeds);
  const end = outputs.sequence_lengths.data[0];
  return Array.from(outputs.sequences.data.slice(promptIds.length, end), Number).filter((id) => !m.eos.includes(id));
}

const nextFrame = () => new Promise((resolve) => setTimeout(resolve, 0));

async function run(event) {
  event.preventDefault();
  const prompt = ui.prompt.value;
  const maxNew = Number(ui.maxNew.value);
  try {
    if (!model) throw new AppError('the model is not loaded');
    if (prompt.length === 0) throw new AppError('the prompt is empty');
    if (!Number.isInteger(maxNew) || maxNew < 1) throw new AppError('New tokens must be a whole number >= 1');
    const sampling = samplingKnobs(model);
    const promptIds = model.tokenizer.encode(prompt);
    if (promptIds.length >= model.info.max_length) {
      throw new AppError(`the prompt is ${promptIds.length} tokens; this model holds ${model.info.max_length} ` +
        `(prompt + generated), so the prompt must be under ${model.info.max_length}`);
    }
    ui.output.replaceChildren();
    const promptSpan = document.createElement('span');
    promptSpan.className = 'prompt';
    promptSpan.textContent = prompt;
    const completion = document.createElement('span');
    completion.className = 'completion';
    ui.output.append(promptSpan, completion);
    stopRequested = false;
    setState('running', 'Generating…');
    await nextFrame();
    const start = performance.now();
    let count = 0;
    if (ui.loop.value === 'generate') {
      const ids = await withTimeout(inGraph(model, promptIds, maxNew, sampling), 'generation');
      count = ids.length;
      completion.textContent = model.tokenizer.continuation(promptIds, ids);
    } else {
      const text = model.tokenizer.streamDecoder(promptIds);
      for await (const token of streamSteps(model, promptIds, maxNew, start + TIMEOUT_MS, sampling)) {
        count += 1;
        completion.textContent += text(token);
        await nextFrame(); // let the page paint each token
      }
      completion.textContent += text(null);
    }
    const seconds = (performance.now() - start) / 1000;
    setState('done', `${count} new tokens in ${seconds.toFixed(2)} s · ${(count / Math.max(seconds, 1e-6)).toFixed(1)}`
      + ` tokens/s · ${ui.loop.value === 'generate' ? `in-graph ${model.strategy}`
        : `${sampling ? `sample (seed ${sampling.seed})` : 'greedy'}, streamed`}`
      + (stopRequested ? ' · stopped' : ''));
  } catch (error) {
    setState('error', `error: ${error.message}`);
  }
}

ui.form.addEventListener('submit', run);
ui.stop.addEventListener('click', () => { stopRequested = true; });

(async () => {
  setState('loading', 'Loading the model…');
  try {
    model = await withTimeout(loadModel(), 'loading the model');
    const { info } = model;
    ui.info.textContent = `${info.name} · ${info.num_layers} layers · ${info.vocabulary_size} tokens (${model.tokenizer.type})`
      + ` · up to ${info.max_length} tokens · onnxruntime-web ${ort.env.versions.web || ''}`;
    ui.maxNew.max = String(info.max_length - 1);
    ui.maxNew.value = String(Math.min(model.knobs.max_new_tokens.default, info.max_length - 1));
    if (model.strategy === 'sample') {
      const missing = SAMPLING_KNOBS.filter((name) => !model.knobs[name]);
      if (missing.length) throw new AppError(`report.json's knob table lacks ${missing.join(', ')}`);
      for (const name of SAMPLING_KNOBS) ui[name].value = String(model.knobs[name].default);
      ui.sampling.hidden = false;
    }
    setState('ready', 'Ready.');
  } catch (error) {
    ui.info.textContent = 'No model.';
    setState('error', `error: ${error.message}`);
  }
})();
