// tfzoo web app: the exported ONNX model run by onnxruntime-web (WebAssembly) on this device.
// Reads model/report.json (model facts, file names, the decoding knobs and their defaults),
// model/hf_tokenizer.json, then the prefill and decode graphs (streamed decoding with the KV cache) and
// the in-graph `generate` graph, fed every knob it takes at the export's default. When the export's
// `generate` samples, the page shows its sampling knobs (temperature, top-k, top-p, seed) and both
// loops use them: the streamed loop draws with the in-graph sampler's hash (sampler.mjs), so the
// two loops give the same tokens for the same seed. Otherwise the streamed loop is greedy. Stop strings and banned
// words (one per line: apps.edge --stop/--ban, sequences.mjs): the in-graph loop gets them in its stop_sequences /
// banned_sequences tables, the streamed loop applies them in the page (as apps.edge --chat); the text ends before
// the first stop string and a banned word's tokens never appear.
// Query options: ?model=URL-of-the-export-folder/ (default "model/"), ?timeout=seconds (default 60).
import { AppError, MODEL_URL, TIMEOUT_MS, fetchWithTimeout, int32, knobFeeds, ort, withTimeout } from './common.mjs';
import { StopText, bannedNext, bannedSequences, readOptions, sequenceFeeds, tables, trimAtStop }
  from './sequences.mjs';
import { SAMPLING_KNOBS, loadDecoder, pick, runStep, samplingKnobs } from './steps.mjs';

const $ = (id) => document.getElementById(id);
const ui = { prompt: $('prompt'), maxNew: $('max-new-tokens'), loop: $('loop'), generate: $('generate'),
  stop: $('stop'), output: $('output'), status: $('status'), info: $('model-info'), form: $('form'),
  sampling: $('sampling'), temperature: $('temperature'), top_k: $('top-k'), top_p: $('top-p'), seed: $('seed'),
  stopStrings: $('stop-strings'), bannedWords: $('banned-words') };
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
// banned: the banned words' sequences (bannedSequences), matched on the prompt and the new ids.
async function* streamSteps(m, promptIds, maxNewTokens, deadline, sampling, banned) {
  let { logits, cache, slots } = await runStep(m, 'prefill', promptIds, 0, null);
  document.body.dataset.cacheSlots = String(slots); // the slot counts the steps ran at, for the page's tests
  let count = promptIds.length;
  const limit = Math.min(maxNewTokens, m.info.max_length - count);
  const ids = [...promptIds];
  for (let step = 0; step < limit; step += 1) {
    if (performance.now() > deadline) throw new AppError(`generation timed out after ${TIMEOUT_MS / 1000} s`);
    if (stopRequested) return;
    const token = pick(logits, 0, logits.length, [...m.banned, ...bannedNext(banned, ids)], sampling, step);
    if (token < 0 || m.eos.includes(token)) return;
    ids.push(token);
    yield token;
    if (step + 1 === limit) return;
    const before = slots;
    ({ logits, cache, slots } = await runStep(m, 'decode', [token], count, cache));
    if (slots > before) document.body.dataset.cacheSlots += `,${slots}`;
    count += 1;
  }
}

// The whole loop inside the graph (the exported strategy); returns the new ids, <eos> dropped.
// Each knob input gets the form's value (sampling knobs) or the report's default; sequenceInputs: the stop/ban tables.
async function inGraph(m, promptIds, maxNewTokens, sampling, sequenceInputs) {
  const given = { max_new_tokens: maxNewTokens, ...(sampling || {}) };
  const feeds = { token_ids: int32(promptIds, [1, promptIds.length]), lengths: int32([promptIds.length], [1]),
    ...knobFeeds(m.knobs, m.generate.inputNames, given), ...sequenceInputs };
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
    const { stop, ban } = readOptions(ui.stopStrings.value, ui.bannedWords.value);
    const { tokenizer } = model;
    const promptIds = tokenizer.encode(prompt);
    if (promptIds.length >= model.info.max_length) {
      throw new AppError(`the prompt is ${promptIds.length} tokens; this model holds ${model.info.max_length} ` +
        `(prompt + generated), so the prompt must be under ${model.info.max_length}`);
    }
    const inGraphLoop = ui.loop.value === 'generate';
    const sequenceInputs = inGraphLoop // the tables' errors before anything is shown
      ? sequenceFeeds(model.info, model.generate.inputNames, tables(tokenizer, stop, ban)) : null;
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
    let stopped = false;
    if (inGraphLoop) {
      const ids = await withTimeout(inGraph(model, promptIds, maxNew, sampling, sequenceInputs), 'generation');
      count = ids.length;
      [completion.textContent, stopped] = trimAtStop(tokenizer.continuation(promptIds, ids), stop); // cut before it
    } else {
      const view = new StopText(stop);
      const newIds = [];
      const banned = bannedSequences(tokenizer, ban);
      for await (const token of streamSteps(model, promptIds, maxNew, start + TIMEOUT_MS, sampling, banned)) {
        count += 1;
        newIds.push(token);
        completion.textContent += view.update(tokenizer.continuation(promptIds, newIds));
        if (view.stopped) break;
        await nextFrame(); // let the page paint each token
      }
      completion.textContent = view.text;
      ({ stopped } = view);
    }
    const seconds = (performance.now() - start) / 1000;
    setState('done', `${count} new tokens in ${seconds.toFixed(2)} s · ${(count / Math.max(seconds, 1e-6)).toFixed(1)}`
      + ` tokens/s · ${inGraphLoop ? `in-graph ${model.strategy}`
        : `${sampling ? `sample (seed ${sampling.seed})` : 'greedy'}, streamed`}`
      + (stopped ? ' · at a stop string' : '') + (stopRequested ? ' · stopped' : ''));
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
