// tfzoo web app: the exported ONNX model run by onnxruntime-web (WebAssembly) on this device.
// Reads model/report.json (model facts, file names, the decoding knobs and their defaults),
// model/hf_tokenizer.json, then the prefill and decode graphs (streamed decoding with the KV cache) and
// the in-graph `generate` graph, fed every knob it takes at the export's default. When the export's
// `generate` samples, the page shows its sampling knobs (temperature, top-k, top-p, seed) and both
// loops use them: the streamed loop draws with the in-graph sampler's hash (sampler.mjs), so the
// two loops give the same tokens for the same seed. Otherwise the streamed loop is greedy.
// Query options: ?model=URL-of-the-export-folder/ (default "model/"), ?timeout=seconds (default 60).
import { AppError, MODEL_URL, TIMEOUT_MS, fetchWithTimeout, int32, knobFeeds, ort, sequenceFeeds, withTimeout }
  from './common.mjs';
import { SAMPLING_KNOBS, loadDecoder, pick, runStep, samplingKnobs } from './steps.mjs';

const $ = (id) => document.getElementById(id);
const ui = { prompt: $('prompt'), maxNew: $('max-new-tokens'), loop: $('loop'), generate: $('generate'),
  stop: $('stop'), output: $('output'), status: $('status'), info: $('model-info'), form: $('form'),
  sampling: $('sampling'), temperature: $('temperature'), top_k: $('top-k'), top_p: $('top-p'), seed: $('seed') };
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
  if ((report.model || {}).kind === 'asr') {
    throw new AppError('this export is a speech recognizer (kind asr), not a text generator: open listen.html');
  }
  return loadDecoder(report, ['prefill', 'decode', 'generate']);
}

// Streamed decoding with prefill/decode and the KV cache (greedy, or sampled as the in-graph loop); yields each id.
async function* streamSteps(m, promptIds, maxNewTokens, deadline, sampling) {
  let { logits, cache, slots } = await runStep(m, 'prefill', promptIds, 0, null);
  document.body.dataset.cacheSlots = String(slots); // the slot counts the steps ran at, for the page's tests
  let count = promptIds.length;
  const limit = Math.min(maxNewTokens, m.info.max_length - count);
  for (let step = 0; step < limit; step += 1) {
    if (performance.now() > deadline) throw new AppError(`generation timed out after ${TIMEOUT_MS / 1000} s`);
    if (stopRequested) return;
    const token = pick(logits, 0, logits.length, m.banned, sampling, step);
    if (token < 0 || m.eos.includes(token)) return;
    yield token;
    if (step + 1 === limit) return;
    const before = slots;
    ({ logits, cache, slots } = await runStep(m, 'decode', [token], count, cache));
    if (slots > before) document.body.dataset.cacheSlots += `,${slots}`;
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
    const sampling = samplingKnobs(model, ui);
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
