// tfzoo speech recognition in the browser: a speech recognizer's export (kind `asr`) run by onnxruntime-web.
// Audio comes from the microphone (getUserMedia -> an AudioWorklet that collects the samples, down-mixed to
// mono) or from an uploaded .wav file (PCM 8/16/24/32-bit or float32, any rate, any channels); either is
// resampled to the export's rate (16 kHz) by linear interpolation, capped at report.model.max_audio_samples
// (recording stops there by itself; a longer file is refused) and fed to the export's `transcribe` graph
// (audio [1, samples] float32 in [-1, 1], audio_lengths [1]; every knob at the report's default, no stop or
// banned sequences). The ids after the start token, up to <eos>, decoded by the export's hf_tokenizer.json,
// are the transcript. The samples fed last are kept on `window.tfzooAudio` (Float32Array) for the tests.
// Query options: ?model=URL-of-the-export-folder/ (default "model/"), ?timeout=seconds (default 60).
import { AppError, MODEL_URL, externalWeights, fetchWithTimeout, int32, knobFeeds, ort, reportKnobs, session,
  withTimeout } from './common.mjs';
import { sequenceFeeds } from './sequences.mjs';
import { HfTokenizer } from './tokenizer.mjs';

const $ = (id) => document.getElementById(id);
const ui = { record: $('record'), wav: $('wav'), output: $('output'), status: $('status'), info: $('model-info') };
let model = null;
let recorder = null; // the recording in progress: { stop() }

function setState(state, message) {
  document.body.dataset.state = state;
  ui.status.textContent = message;
  const busy = state === 'loading' || state === 'running';
  ui.record.disabled = busy || !model;
  ui.wav.disabled = busy || !model || state === 'recording';
  ui.record.textContent = state === 'recording' ? 'Stop' : 'Record';
}

async function loadModel() {
  const report = await fetchWithTimeout(new URL('report.json', MODEL_URL).href, 'json');
  const knobs = reportKnobs(report);
  const info = report.model || {};
  if (info.kind !== 'asr') {
    throw new AppError(`this export is a ${info.name || 'model'} of kind ${info.kind || 'decoder'}, not a speech ` +
      'recognizer (kind asr): open index.html for text generation');
  }
  for (const name of ['sample_rate', 'max_audio_samples', 'start_id', 'pad_id']) {
    if (!Number.isInteger(info[name]) || info[name] < 0) {
      throw new AppError(`report.json: model.${name} must be a non-negative integer (re-export)`);
    }
  }
  const onnx = (report.artefacts || {}).onnx;
  const file = onnx && onnx.files && onnx.files.transcribe;
  if (!file) throw new AppError('this export has no ONNX transcribe graph: re-export with --formats=onnx');
  if (typeof info.hf_tokenizer !== 'string') {
    throw new AppError('report.json names no hf_tokenizer.json: re-export the model');
  }
  const tokenizer = new HfTokenizer(
    await fetchWithTimeout(new URL(info.hf_tokenizer, MODEL_URL).href, 'json'), info.hf_tokenizer);
  const transcribe = await session(await fetchWithTimeout(new URL(file.path, MODEL_URL).href), 'transcribe',
    ['audio', 'audio_lengths'], await externalWeights(onnx));
  return { info, knobs, tokenizer, transcribe, ends: [...(info.eos_ids || []), info.pad_id] };
}

// Linear interpolation of mono `samples` at `rate` Hz to `target` Hz: floor(n * target / rate) samples.
export function resample(samples, rate, target) {
  if (rate === target) return Float32Array.from(samples);
  const count = Math.floor((samples.length * target) / rate);
  const out = new Float32Array(count);
  const last = samples.length - 1;
  for (let i = 0; i < count; i += 1) {
    const t = (i * rate) / target;
    const j = Math.floor(t);
    const f = t - j;
    out[i] = j >= last ? samples[last] : samples[j] * (1 - f) + samples[j + 1] * f;
  }
  return out;
}

const seconds = (samples, rate) => `${(samples / rate).toFixed(2)} s`;

async function transcribe(audio, source, note = '') {
  const { info } = model;
  if (audio.length === 0) throw new AppError(`${source} holds no audio`);
  if (audio.length > info.max_audio_samples) {
    throw new AppError(`${source} is too long: ${seconds(audio.length, info.sample_rate)} at ` +
      `${info.sample_rate / 1000} kHz; this model takes at most ${seconds(info.max_audio_samples, info.sample_rate)} ` +
      `(${info.max_audio_samples} samples)`);
  }
  window.tfzooAudio = audio;
  setState('running', 'Transcribing…');
  const graph = model.transcribe;
  const feeds = { audio: new ort.Tensor('float32', audio, [1, audio.length]), audio_lengths: int32([audio.length], [1]),
    ...knobFeeds(model.knobs, graph.inputNames), ...sequenceFeeds(info, graph.inputNames) };
  const start = performance.now();
  const outputs = await withTimeout(graph.run(feeds), 'transcription');
  const elapsed = (performance.now() - start) / 1000;
  const ids = [];
  for (const id of Array.from(outputs.sequences.data.slice(1, outputs.sequence_lengths.data[0]), Number)) {
    if (model.ends.includes(id)) break;
    ids.push(id);
  }
  ui.output.textContent = model.tokenizer.decode(ids);
  const audioSeconds = audio.length / info.sample_rate;
  setState('done', `${source}: ${audioSeconds.toFixed(2)} s of audio in ${elapsed.toFixed(2)} s ` +
    `(real-time factor ${(elapsed / audioSeconds).toFixed(3)})${note}`);
}

// ---- the microphone ----

// The AudioWorklet: posts each render quantum of its input, down-mixed to mono.
const CAPTURE_WORKLET = `registerProcessor('tfzoo-capture', class extends AudioWorkletProcessor {
  process(inputs) {
    const channels = inputs[0];
    if (channels.length) {
      const mono = new Float32Array(channels[0].length);
      for (const channel of channels) for (let i = 0; i < mono.length; i += 1) mono[i] += channel[i] / channels.length;
      this.port.postMessage(mono, [mono.buffer]);
    }
    return true;
  }
});`;

function microphoneError(error) {
  if (error.name === 'NotAllowedError' || error.name === 'SecurityError') {
    return new AppError('no microphone permission: allow the microphone for this page, or transcribe a .wav file');
  }
  if (error.name === 'NotFoundError' || error.name === 'OverconstrainedError') {
    return new AppError('no microphone found: connect one, or transcribe a .wav file');
  }
  return new AppError(`cannot record: ${error.message}`);
}

async function startRecording() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new AppError('this browser gives no microphone here (it needs https or localhost): transcribe a .wav file');
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia(
      { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (error) {
    throw microphoneError(error);
  }
  const context = new AudioContext();
  const url = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: 'text/javascript' }));
  try {
    await context.audioWorklet.addModule(url);
  } finally {
    URL.revokeObjectURL(url);
  }
  const source = context.createMediaStreamSource(stream);
  const capture = new AudioWorkletNode(context, 'tfzoo-capture');
  const mute = context.createGain();
  mute.gain.value = 0; // the graph is pulled by the destination; nothing is played back
  source.connect(capture).connect(mute).connect(context.destination);
  const { sample_rate: target, max_audio_samples: limit } = model.info;
  const rate = context.sampleRate;
  const chunks = [];
  let captured = 0;
  let stopped = false;
  const stop = async (note) => {
    if (stopped) return;
    stopped = true;
    recorder = null;
    capture.port.onmessage = null;
    stream.getTracks().forEach((track) => track.stop());
    await context.close();
    const samples = new Float32Array(captured);
    let offset = 0;
    for (const chunk of chunks) { samples.set(chunk, offset); offset += chunk.length; }
    const audio = resample(samples, rate, target).subarray(0, limit);
    await transcribe(audio, 'the recording', note);
  };
  capture.port.onmessage = ({ data }) => {
    chunks.push(data);
    captured += data.length;
    if (Math.floor((captured * target) / rate) >= limit) {
      run(() => stop(` · stopped at the model's limit of ${seconds(limit, target)}`));
    }
  };
  await context.resume();
  recorder = { stop: () => stop('') };
  setState('recording', `Recording (${rate} Hz, up to ${seconds(limit, target)})… press Stop`);
}

// ---- .wav files ----

// {channels: [Float32Array, ...], rate} of a RIFF/WAVE file's bytes: PCM 8/16/24/32-bit or IEEE float32.
export function parseWav(buffer, name) {
  const view = new DataView(buffer);
  const tag = (at) => String.fromCharCode(...new Uint8Array(buffer, at, 4));
  if (buffer.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') {
    throw new AppError(`${name} is not a WAV file (no RIFF/WAVE header)`);
  }
  let format = null;
  let data = null;
  for (let at = 12; at + 8 <= buffer.byteLength; ) {
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (tag(at) === 'fmt ' && size >= 16) {
      format = { code: view.getUint16(body, true), channels: view.getUint16(body + 2, true),
        rate: view.getUint32(body + 4, true), bits: view.getUint16(body + 14, true) };
      if (format.code === 0xfffe && size >= 26) format.code = view.getUint16(body + 24, true); // extensible
    } else if (tag(at) === 'data') {
      data = [body, Math.min(size, buffer.byteLength - body)]; // a streamed file's size may be a placeholder
      break;
    }
    at = body + size + (size % 2);
  }
  if (!format || !data) throw new AppError(`${name} is not a WAV file (no fmt or data chunk)`);
  const { code, channels: count, rate, bits } = format;
  const pcm = code === 1 && [8, 16, 24, 32].includes(bits);
  if (!(pcm || (code === 3 && bits === 32)) || count < 1 || rate < 1) {
    throw new AppError(`${name} has format ${code} with ${bits}-bit samples; expected PCM or float32 WAV`);
  }
  const width = bits / 8;
  const frames = Math.floor(data[1] / (width * count));
  const channels = Array.from({ length: count }, () => new Float32Array(frames));
  for (let i = 0; i < frames; i += 1) {
    for (let c = 0; c < count; c += 1) {
      const at = data[0] + (i * count + c) * width;
      let value;
      if (code === 3) value = view.getFloat32(at, true);
      else if (bits === 8) value = (view.getUint8(at) - 128) / 128;
      else if (bits === 16) value = view.getInt16(at, true) / 32768;
      else if (bits === 24) value = ((view.getUint8(at + 2) << 24 >> 8) | view.getUint16(at, true)) / 8388608;
      else value = view.getInt32(at, true) / 2147483648;
      channels[c][i] = value;
    }
  }
  return { channels, rate };
}

async function transcribeFile(file) {
  const { channels, rate } = parseWav(await file.arrayBuffer(), file.name);
  const mono = new Float32Array(channels[0].length);
  for (const channel of channels) for (let i = 0; i < mono.length; i += 1) mono[i] += channel[i] / channels.length;
  const audio = resample(mono, rate, model.info.sample_rate);
  const note = rate === model.info.sample_rate && channels.length === 1 ? ''
    : ` · resampled from ${rate} Hz, ${channels.length} channel(s)`;
  await transcribe(audio, file.name, note);
}

// Runs one action of the page; its error, if any, becomes the one-line status.
async function run(action) {
  try {
    await action();
  } catch (error) {
    recorder = null;
    setState('error', `error: ${error instanceof AppError ? error.message : `${error.name}: ${error.message}`}`);
  }
}

ui.record.addEventListener('click', () => run(async () => {
  if (recorder) await recorder.stop();
  else await startRecording();
}));
ui.wav.addEventListener('change', () => run(async () => {
  const [file] = ui.wav.files;
  if (file) await transcribeFile(file);
  ui.wav.value = '';
}));

(async () => {
  setState('loading', 'Loading the model…');
  try {
    model = await withTimeout(loadModel(), 'loading the model');
    const { info } = model;
    ui.info.textContent = `${info.name} · ${info.num_layers} layers · ${info.vocabulary_size} tokens ` +
      `(${model.tokenizer.type}) · ${info.sample_rate / 1000} kHz, up to ${seconds(info.max_audio_samples, info.sample_rate)}` +
      ` · ${info.strategy} · onnxruntime-web ${ort.env.versions.web || ''}`;
    setState('ready', 'Ready: record, or choose a .wav file.');
  } catch (error) {
    ui.info.textContent = 'No model.';
    setState('error', `error: ${error.message}`);
  }
})();
