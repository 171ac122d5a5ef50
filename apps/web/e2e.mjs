// Drives the web app in headless Chromium (playwright-core + Debian's /usr/bin/chromium) and prints JSON.
//   node apps/web/e2e.mjs SPEC_JSON
// SPEC_JSON: {"url": "http://127.0.0.1:PORT/", "cases": [{"viewport": "desktop"|"mobile", "visits": [
//   {"query": "?model=...", "runs": [{"prompt": "def ", "maxNewTokens": 16, "loop": "steps"|"generate",
//    "fields": {"seed": 3, "top-k": 5} (optional: form fields by id, set before generating)}, ...],
//    "screenshot": "PATH.png" (optional, taken after the runs),
//    "tokenize": ["text", ...] (optional: the page's tokenizer.mjs on the export's hf_tokenizer.json)}, ...]}, ...]}
// The speech page (visit "query": "listen.html"): a visit's "listen": [{"record": SECONDS} (press Record, press
// Stop after SECONDS unless it stopped itself before, at the model's limit) | {"upload": "PATH.wav"}, ...]; a case's
// "audioFile": "PATH.wav" is the fake microphone (Chromium plays it in a loop; the permission prompt is
// accepted), "microphone": "denied" refuses the permission instead. A listen result: the #output and #status
// texts, the final state and the samples the page fed to the model (window.tfzooAudio, as a list).
// The chat page (visit "query": "chat.html", or `/` of a chat export): a visit's "chat": [{"message": TEXT,
// "fields": {...} (optional: form fields by id, e.g. "system", "max-new-tokens")} (type it, press Send) |
// {"reset": true} (press Reset), ...]. A chat result: the state, #status, the last reply's text, the turn's
// prefill/history/new token counts and dropped exchanges (the page's data-* attributes), the context notes
// and how many messages are shown greyed (dropped).
// A case is one fresh browser profile; each visit loads the page once and does its runs in order.
// A visit's load: the state, #status and #model-info texts, the New tokens field's value.
// A run's result: the #output and #status texts, the final state, how many times the output changed
// while generating (streaming), whether the page scrolls sideways. A "tokenize" text's result: [ids, the text
// decoded, the text streamed token by token]. Each visit lists its console
// errors and each case any request that left 127.0.0.1 (blocked). Exit code 1 when the browser could not run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const VIEWPORTS = {
  desktop: { viewport: { width: 1100, height: 760 } },
  mobile: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
};
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS || 90000);

async function doRun(page, run) {
  await page.fill('#prompt', run.prompt);
  if (run.maxNewTokens) await page.fill('#max-new-tokens', String(run.maxNewTokens));
  await page.selectOption('#loop', run.loop || 'steps');
  for (const [id, value] of Object.entries(run.fields || {})) await page.fill(`#${id}`, String(value));
  await page.evaluate(() => {
    document.body.dataset.state = 'submitting'; // not a finished state: a click that submits nothing times out
    window.__updates = 0;
    if (window.__observer) window.__observer.disconnect();
    window.__observer = new MutationObserver((records) => { window.__updates += records.length; });
    window.__observer.observe(document.getElementById('output'), { subtree: true, childList: true, characterData: true });
  });
  await page.click('#generate');
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null,
    { timeout: TIMEOUT_MS });
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    sampling: !document.getElementById('sampling').hidden,
    output: document.getElementById('output').textContent,
    status: document.getElementById('status').textContent,
    updates: window.__updates,
    cacheSlots: document.body.dataset.cacheSlots || '',
    scrollsSideways: document.documentElement.scrollWidth > window.innerWidth,
  }));
}

// In the page: the export's tokenizer (the file its report.json names) through the page's own tokenizer.mjs.
async function tokenize(texts) {
  const { HfTokenizer } = await import('./tokenizer.mjs');
  const model = new URL(new URLSearchParams(location.search).get('model') || 'model/', location.href);
  const report = await (await fetch(new URL('report.json', model))).json();
  const tokenizer = new HfTokenizer(await (await fetch(new URL(report.model.hf_tokenizer, model))).json());
  return texts.map((text) => {
    const ids = tokenizer.encode(text);
    const textOf = tokenizer.streamDecoder();
    return [ids, tokenizer.decode(ids), ids.map((id) => textOf(id)).join('') + textOf(null)];
  });
}

async function doChat(page, action) {
  await page.evaluate(() => { document.body.dataset.state = 'submitting'; });
  if (action.reset) {
    await page.click('#reset');
  } else {
    for (const [id, value] of Object.entries(action.fields || {})) await page.fill(`#${id}`, String(value));
    await page.fill('#message', action.message);
    await page.click('#send');
  }
  await page.waitForFunction(() => ['done', 'error', 'ready'].includes(document.body.dataset.state), null,
    { timeout: TIMEOUT_MS });
  return page.evaluate(() => {
    const { dataset } = document.body;
    const replies = document.querySelectorAll('#conversation .assistant');
    return { state: dataset.state, status: document.getElementById('status').textContent,
      reply: replies.length ? replies[replies.length - 1].textContent : null,
      prefillTokens: Number(dataset.prefillTokens), historyTokens: Number(dataset.historyTokens),
      newTokens: Number(dataset.newTokens), dropped: Number(dataset.dropped),
      notes: Array.from(document.querySelectorAll('#conversation .note'), (note) => note.textContent),
      messages: document.querySelectorAll('#conversation .message').length,
      greyed: document.querySelectorAll('#conversation .dropped').length,
      scrollsSideways: document.documentElement.scrollWidth > window.innerWidth };
  });
}

async function doListen(page, action) {
  await page.evaluate(() => { document.body.dataset.state = 'submitting'; window.tfzooAudio = null; });
  if (action.upload) {
    await page.setInputFiles('#wav', action.upload);
  } else {
    await page.click('#record');
    await page.waitForFunction(() => document.body.dataset.state !== 'submitting', null, { timeout: TIMEOUT_MS });
    const stoppedItself = await page.waitForFunction(() => document.body.dataset.state !== 'recording', null,
      { timeout: 1000 * action.record }).then(() => true, () => false);
    if (!stoppedItself) await page.click('#record');
  }
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null,
    { timeout: TIMEOUT_MS });
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    output: document.getElementById('output').textContent,
    status: document.getElementById('status').textContent,
    samples: window.tfzooAudio ? Array.from(window.tfzooAudio) : null,
  }));
}

// Chromium's fake microphone: a WAV file played in a loop, the permission prompt accepted (or refused).
function microphoneArgs(testCase) {
  if (testCase.microphone === 'denied') return ['--use-fake-device-for-media-stream', '--deny-permission-prompts'];
  if (!testCase.audioFile) return [];
  return ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    `--use-file-for-fake-audio-capture=${testCase.audioFile}`, '--autoplay-policy=no-user-gesture-required'];
}

async function runCase(spec, testCase) {
  const profile = mkdtempSync(join(tmpdir(), 'tfzoo-web-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: [...ARGS, ...microphoneArgs(testCase)],
    ...VIEWPORTS[testCase.viewport || 'desktop'],
  });
  const offsite = [];
  let consoleErrors = [];
  const visits = [];
  try {
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1' || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
      offsite.push(route.request().url());
      return route.abort();
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
    for (const visit of testCase.visits) {
      consoleErrors = [];
      await page.goto(new URL(visit.query || '', spec.url).href, { timeout: TIMEOUT_MS });
      await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null,
        { timeout: TIMEOUT_MS });
      const load = await page.evaluate(() => ({ state: document.body.dataset.state,
        status: document.getElementById('status').textContent,
        info: document.getElementById('model-info').textContent,
        maxNewTokens: document.getElementById('max-new-tokens')?.value }));
      const runs = [];
      if (load.state === 'ready') for (const run of visit.runs || []) runs.push(await doRun(page, run));
      const tokenized = visit.tokenize ? await page.evaluate(tokenize, visit.tokenize) : undefined;
      const listens = [];
      if (load.state === 'ready') for (const action of visit.listen || []) listens.push(await doListen(page, action));
      const chats = [];
      if (load.state === 'ready') for (const action of visit.chat || []) chats.push(await doChat(page, action));
      if (visit.screenshot) await page.screenshot({ path: visit.screenshot, fullPage: false });
      visits.push({ load, runs, listens, chats, consoleErrors, tokenized });
    }
    return { visits, offsite };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const spec = JSON.parse(process.argv[2]);
const results = [];
try {
  for (const testCase of spec.cases) results.push(await runCase(spec, testCase));
} catch (error) {
  console.error(`error: ${error.message.split('\n')[0]}`);
  process.exit(1);
}
console.log(JSON.stringify(results));
