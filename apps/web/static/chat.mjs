// tfzoo chat page: a multi-turn chat with an exported chat model (report.json has model.chat_template), run by
// onnxruntime-web on its prefill/decode graphs. The session is `python -m tfzoo.chat`'s and apps/edge/chat.py's:
// the role ids come from report.json's model.chat_template and the end-of-turn id from hf_tokenizer.json; the
// page keeps the ids of the conversation and how many of them the KV cache holds, so a turn prefills only what
// the cache lacks (the previous reply's <eos>, then <|user|> message <|assistant|>). When the history, the
// message and the reply tokens would overflow the context, the oldest exchanges are dropped (the system message
// stays), the cache is rebuilt from the kept history and the page says so. Replies end at <eos> or the reply
// tokens; role tokens and padding are never generated. Greedy, so the replies are
// `tfzoo.chat --runtime=onnx`'s; an export whose strategy is sample shows the sampling knobs, and the k-th token
// of a reply draws with step k (as apps.edge --chat --strategy sample). Stop strings and banned words (read at
// each message, one per line: apps.edge --chat --stop/--ban, sequences.mjs): a reply ends before a stop string
// (neither shown nor kept), a banned word's tokens never appear. An empty message, or one that cannot fit even
// alone, or an empty stop string or banned word, is one line and changes nothing. Reset starts over (a new
// system message is read then).
// Query options: as index.html (?model=, ?timeout=).
import { AppError, MODEL_URL, TIMEOUT_MS, fetchWithTimeout, ort, withTimeout } from './common.mjs';
import { SAMPLING_KNOBS, loadDecoder, pick, runStep, samplingKnobs } from './steps.mjs';
import { StopText, bannedNext, bannedSequences, readOptions } from './sequences.mjs';

const $ = (id) => document.getElementById(id);
const ui = { system: $('system'), message: $('message'), maxNew: $('max-new-tokens'), send: $('send'),
  stop: $('stop'), reset: $('reset'), conversation: $('conversation'), status: $('status'), info: $('model-info'),
  form: $('form'), sampling: $('sampling'), temperature: $('temperature'), top_k: $('top-k'), top_p: $('top-p'),
  seed: $('seed'), stopStrings: $('stop-strings'), bannedWords: $('banned-words') };
const ROLES = ['system', 'user', 'assistant']; // the roles a conversation has (the template's keys)
const isId = (value) => Number.isInteger(value) && value >= 0;

// The export's chat template: {roles: {system, user, assistant} -> id, endOfTurn: id} (apps/edge/chat.py's
// ChatTemplate.from_report); a one-line AppError when the report has none.
function chatTemplate(report, tokenizer) {
  const template = (report.model || {}).chat_template;
  if (template === undefined || template === null) {
    throw new AppError('report.json has no model.chat_template: not a chat model (export one trained with a chat ' +
      "tokenizer, tokenizer='chat:byte'); open index.html for text generation");
  }
  const roles = template.roles || {};
  if (!ROLES.every((role) => isId(roles[role]))) {
    throw new AppError(`report.json: model.chat_template.roles must give an id to each of ${ROLES.join(', ')}`);
  }
  const endOfTurn = typeof template.end_of_turn === 'string' ? tokenizer.tokenId(template.end_of_turn) : undefined;
  if (!isId(endOfTurn)) {
    throw new AppError(`report.json: model.chat_template.end_of_turn ${JSON.stringify(template.end_of_turn)} is no ` +
      'token of the export\'s tokenizer');
  }
  return { roles: Object.fromEntries(ROLES.map((role) => [role, roles[role]])), endOfTurn };
}

// A conversation with the export, its KV cache kept between turns (apps/edge/chat.py's EdgeChat, line for line).
// onDrop(exchanges): called when a turn drops the oldest exchanges (before its prefill).
class WebChat {
  constructor(m, template, system, onDrop = () => {}) {
    this.m = m;
    this.onDrop = onDrop;
    this.template = template;
    this.maxLength = m.info.max_length;
    const eos = new Set(m.eos);
    this.banned = [...new Set([...m.banned, ...Object.values(template.roles)])].filter((id) => !eos.has(id));
    this.system = system;
    this.systemIds = system.trim() ? this.message('system', system) : [];
    if (this.systemIds.length + 2 >= this.maxLength) {
      throw new AppError(`the system message is ${this.systemIds.length} tokens, too long for the context of ` +
        `${this.maxLength}`);
    }
    this.exchanges = []; // {user, reply, userIds, replyIds}, oldest first
    this.resetCache();
    this.timing = {};
  }

  // The ids of one message: the role's id, the content (role spellings as text), <eos> after an assistant's;
  // replyPrompt appends the assistant's id.
  message(role, content, replyPrompt = false) {
    const ids = [this.template.roles[role], ...this.m.tokenizer.encode(content, { specialsAsText: true })];
    if (role === 'assistant') ids.push(this.template.endOfTurn);
    if (replyPrompt) ids.push(this.template.roles.assistant);
    return ids;
  }

  historyIds() {
    return [...this.systemIds, ...this.exchanges.flatMap((e) => [...e.userIds, ...e.replyIds])];
  }

  resetCache() {
    this.cache = null;
    this.cached = 0; // history tokens whose keys and values are in the cache (a prefix)
  }

  reset() {
    this.exchanges = [];
    this.resetCache();
  }

  // Drops the oldest exchanges until history + incoming + maxNewTokens fits; returns the dropped ones.
  dropOldest(incoming, maxNewTokens) {
    const dropped = [];
    while (this.exchanges.length && this.historyIds().length + incoming + maxNewTokens > this.maxLength) {
      dropped.push(this.exchanges.shift());
    }
    if (dropped.length) this.resetCache(); // positions moved: the cache is rebuilt from the kept history
    return dropped;
  }

  // The user message's ids, checked (AppError before anything changes).
  userIds(text) {
    if (text.trim() === '') throw new AppError('the message is empty');
    const ids = this.message('user', text, true);
    if (this.maxLength - this.systemIds.length - ids.length < 1) {
      throw new AppError(`the message is ${ids.length} tokens; with the system message (${this.systemIds.length}) ` +
        `it does not fit in the model's context of ${this.maxLength} tokens`);
    }
    return ids;
  }

  // Adds the user message, then yields the reply's text as its tokens are decoded (what could begin a stop string
  // waits); the reply joins the conversation when the generator ends (also when it is stopped early). `exchange`
  // receives the new exchange's fields. options: {stop: [text], banned: [[id, ...]]} (bannedSequences).
  async* reply(exchange, userIds, maxNewTokens, sampling, options, shouldStop, deadline) {
    const started = performance.now();
    const dropped = this.dropOldest(userIds.length, maxNewTokens);
    this.onDrop(dropped);
    const history = this.historyIds();
    const pending = [...history.slice(this.cached), ...userIds];
    let { logits, cache } = await runStep(this.m, 'prefill', pending, this.cached, this.cache);
    this.cache = cache;
    this.cached += pending.length;
    Object.assign(exchange, { userIds, replyIds: [] });
    this.exchanges.push(exchange);
    const limit = Math.min(maxNewTokens, this.maxLength - this.cached);
    const replyStart = this.cached;
    const context = [...history, ...userIds].slice(-64); // what banned sequences are matched on
    const newIds = [];
    const view = new StopText(options.stop);
    let first = null;
    try {
      while (true) {
        const banned = [...this.banned, ...bannedNext(options.banned, [...context, ...newIds])];
        const token = pick(logits, 0, logits.length, banned, sampling, newIds.length);
        first = first || performance.now();
        if (this.m.eos.includes(token)) break;
        newIds.push(token);
        const piece = view.update(this.m.tokenizer.decode(newIds));
        if (view.stopped) break;
        if (piece) yield piece;
        if (newIds.length >= limit || shouldStop()) break;
        if (performance.now() > deadline) throw new AppError(`the reply timed out after ${TIMEOUT_MS / 1000} s`);
        ({ logits, cache } = await runStep(this.m, 'decode', [token], this.cached, this.cache));
        this.cache = cache;
        this.cached += 1;
      }
      const rest = view.finish();
      if (rest) yield rest;
    } finally { // the reply so far joins the conversation
      const reply = view.text;
      const tokenizer = this.m.tokenizer;
      const replyIds = view.stopped ? tokenizer.encode(reply, { specialsAsText: true }) : newIds;
      if (view.stopped) { // the stop string is not kept: the cache keeps only what the kept reply shares with it
        let common = 0;
        while (common < Math.min(newIds.length, replyIds.length) && newIds[common] === replyIds[common]) common += 1;
        this.cached = Math.min(this.cached, replyStart + common);
      }
      exchange.reply = reply;
      exchange.replyIds = [...replyIds, this.template.endOfTurn]; // the template ends it so
      const now = performance.now();
      this.timing = { prefillTokens: pending.length, historyTokens: history.length + userIds.length,
        newTokens: newIds.length, seconds: (now - started) / 1000, firstTokenSeconds: ((first || now) - started) / 1000,
        dropped: dropped.length, stopped: view.stopped };
    }
  }
}

let model = null;
let template = null;
let chat = null;
let turn = 0;
let stopRequested = false;

function setState(state, message) {
  document.body.dataset.state = state;
  ui.status.textContent = message;
  const busy = state === 'loading' || state === 'running';
  ui.send.disabled = busy || !model;
  ui.reset.disabled = busy || !model;
  ui.stop.disabled = state !== 'running';
  ui.system.readOnly = busy || Boolean(chat && chat.exchanges.length);
}

function bubble(className, text) {
  const element = document.createElement('p');
  element.className = `message ${className}`;
  element.textContent = text;
  ui.conversation.append(element);
  element.scrollIntoView({ block: 'nearest' });
  return element;
}

// The dropped exchanges stay on the page, greyed, after a note (what tfzoo.chat prints on stderr).
function showDropped(dropped) {
  if (!dropped.length) return;
  for (const exchange of dropped) for (const element of exchange.view) element.classList.add('dropped');
  const note = document.createElement('p');
  note.className = 'note';
  note.textContent = `(context full: dropped the oldest ${dropped.length} exchange(s))`;
  dropped[dropped.length - 1].view[1].after(note);
}

// The chat for the current system message: a new one when the conversation is empty and the field changed.
function currentChat() {
  const system = ui.system.value;
  if (!chat || (chat.exchanges.length === 0 && chat.system !== system)) {
    chat = new WebChat(model, template, system, showDropped);
    ui.conversation.replaceChildren();
    if (chat.systemIds.length) bubble('system', system);
  }
  return chat;
}

const nextFrame = () => new Promise((resolve) => setTimeout(resolve, 0));

async function send(event) {
  event.preventDefault();
  const text = ui.message.value;
  const maxNew = Number(ui.maxNew.value);
  try {
    if (!model) throw new AppError('the model is not loaded');
    const max = model.info.max_length - 1;
    if (!Number.isInteger(maxNew) || maxNew < 1 || maxNew > max) {
      throw new AppError(`Reply tokens must be a whole number from 1 to ${max} (the model's context is ` +
        `${model.info.max_length} tokens)`);
    }
    const sampling = samplingKnobs(model, ui);
    const { stop, ban } = readOptions(ui.stopStrings.value, ui.bannedWords.value);
    const session = currentChat();
    const userIds = session.userIds(text);
    const options = { stop, banned: bannedSequences(model.tokenizer, ban, true) };
    const exchange = { user: text, reply: '' };
    exchange.view = [bubble('user', text), bubble('assistant', '')];
    ui.message.value = '';
    stopRequested = false;
    setState('running', 'Replying…');
    await nextFrame();
    const start = performance.now();
    const replying = session.reply(exchange, userIds, maxNew, sampling, options, () => stopRequested,
      start + TIMEOUT_MS);
    for await (const piece of replying) {
      exchange.view[1].textContent += piece;
      await nextFrame(); // let the page paint each token
    }
    exchange.view[1].textContent = exchange.reply;
    turn += 1;
    const t = session.timing;
    Object.assign(document.body.dataset, { prefillTokens: t.prefillTokens, historyTokens: t.historyTokens,
      newTokens: t.newTokens, dropped: t.dropped });
    setState('done', `turn ${turn}: prefilled ${t.prefillTokens} of ${t.historyTokens} tokens · ${t.newTokens} new `
      + `tokens in ${t.seconds.toFixed(2)} s, first after ${t.firstTokenSeconds.toFixed(2)} s · `
      + `${sampling ? `sample (seed ${sampling.seed})` : 'greedy'}`
      + (t.dropped ? ` · dropped the oldest ${t.dropped} exchange(s)` : '') + (t.stopped ? ' · at a stop string' : '')
      + (stopRequested ? ' · stopped' : ''));
  } catch (error) {
    setState('error', `error: ${error.message}`);
  }
}

function reset() {
  if (chat) chat.reset();
  chat = null; // the system field is read again at the next message
  turn = 0;
  ui.conversation.replaceChildren();
  setState('ready', 'Reset: a new conversation.');
}

async function loadModel() {
  const report = await fetchWithTimeout(new URL('report.json', MODEL_URL).href, 'json');
  if ((report.model || {}).kind === 'asr') {
    throw new AppError('this export is a speech recognizer (kind asr), not a chat model: open listen.html');
  }
  const m = await loadDecoder(report, ['prefill', 'decode']);
  return { m, template: chatTemplate(report, m.tokenizer) };
}

ui.form.addEventListener('submit', send);
ui.stop.addEventListener('click', () => { stopRequested = true; });
ui.reset.addEventListener('click', reset);

(async () => {
  setState('loading', 'Loading the model…');
  try {
    const loaded = await withTimeout(loadModel(), 'loading the model');
    ({ template } = loaded);
    const { info } = loaded.m;
    ui.info.textContent = `${info.name} · ${info.num_layers} layers · chat (${loaded.m.tokenizer.type})`
      + ` · context ${info.max_length} tokens · onnxruntime-web ${ort.env.versions.web || ''}`;
    ui.maxNew.max = String(info.max_length - 1);
    ui.maxNew.value = String(Math.min(loaded.m.knobs.max_new_tokens.default, info.max_length - 1));
    if (loaded.m.strategy === 'sample') {
      const missing = SAMPLING_KNOBS.filter((name) => !loaded.m.knobs[name]);
      if (missing.length) throw new AppError(`report.json's knob table lacks ${missing.join(', ')}`);
      for (const name of SAMPLING_KNOBS) ui[name].value = String(loaded.m.knobs[name].default);
      ui.sampling.hidden = false;
    }
    model = loaded.m;
    setState('ready', 'Ready.');
  } catch (error) {
    ui.info.textContent = 'No model.';
    setState('error', `error: ${error.message}`);
  }
})();
