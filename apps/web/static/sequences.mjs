// Stop strings and banned words on both pages, with the edge app's semantics (`python -m apps.edge --stop TEXT
// --ban WORD`: apps/edge/knobs.py, apps/edge/tokenizer.py's banned_sequences, apps/edge/chat.py; tfzoo/stop_words.py):
// - The form's fields hold one value per line (a final newline ends the last one; `\n`, `\t` and `\\` in a line
//   are a newline, a tab and a backslash). An empty value is the edge app's one-line error.
// - A stop string: the text ends before its first occurrence (neither shown nor kept). The in-graph `generate`
//   gets its ids (`tokenizer.encode(text)`) in its `stop_sequences` table and stops at them; the page's own
//   prefill/decode loop stops as soon as the decoded text holds it (apps/edge/chat.py). Either way the text is
//   cut before the first occurrence, so both loops show the same text.
// - A banned word is banned as `word` and `" word"` (a sequence containing another one left out): the in-graph
//   `generate` gets them in its `banned_sequences` table; the page's loop masks a sequence's last token when the
//   context ends with the rest (Hugging Face's bad_words_ids, as the graph does).
// - The tables are int32 report.model.sequence_shapes [count, width], a sequence per row padded with -1 (all -1:
//   none); too many or too long sequences are the edge app's one-line errors.
//
//   const { stop, ban } = readOptions(stopField.value, banField.value);          // AppError: '--stop is empty: ...'
//   const feeds = sequenceFeeds(info, graph.inputNames, tables(tokenizer, stop, ban)); // the generate's inputs
//   const view = new StopText(stop);  ...  completion.textContent += view.update(tokenizer.decode(newIds));
import { AppError, int32 } from './common.mjs';

export const SEQUENCE_INPUTS = ['stop_sequences', 'banned_sequences'];
const ESCAPES = { n: '\n', t: '\t', '\\': '\\' };

// The values of a field: one per line, `\n`, `\t`, `\\` unescaped; an empty field is none.
export function fieldValues(text) {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop(); // a final newline ends the last value
  return lines.map((line) => line.replace(/\\([nt\\])/g, (_, c) => ESCAPES[c]));
}

// The stop strings and banned words of the two fields, checked: an empty value is the edge app's AppError.
export function readOptions(stopText, banText) {
  const options = { stop: fieldValues(stopText), ban: fieldValues(banText) };
  for (const [flag, values] of [['--stop', options.stop], ['--ban', options.ban]]) {
    if (values.some((value) => value === '')) {
      throw new AppError(`${flag} is empty: give the text to ${flag === '--stop' ? 'stop at' : 'ban'}`);
    }
  }
  return options;
}

const contains = (longer, shorter) => {
  for (let i = 0; i + shorter.length <= longer.length; i += 1) {
    if (shorter.every((id, j) => longer[i + j] === id)) return true;
  }
  return false;
};

// The token sequences that keep each banned word out: `word` and `" word"`, one containing another left out
// (apps/edge/tokenizer.py's banned_sequences). specialsAsText: as HfTokenizer.encode's (the chat's).
export function bannedSequences(tokenizer, words, specialsAsText = false) {
  const candidates = [];
  for (const word of words) {
    candidates.push(tokenizer.encode(word, { specialsAsText }));
    if (!word.startsWith(' ')) candidates.push(tokenizer.encode(` ${word}`, { specialsAsText }));
  }
  const kept = [];
  for (const ids of candidates.sort((a, b) => a.length - b.length)) { // a stable sort, as Python's sorted
    if (ids.length && !kept.some((other) => contains(ids, other))) kept.push(ids);
  }
  return kept;
}

// The given tables of an in-graph `generate`: the stop strings' ids and the banned words' sequences.
export function tables(tokenizer, stop, ban) {
  return {
    stop_sequences: stop.map((text) => tokenizer.encode(text)),
    banned_sequences: bannedSequences(tokenizer, ban),
  };
}

// Token-id sequences -> the int32 values of the [count, width] table padded with -1 (apps/edge/knobs.py's
// sequence_table, its words).
export function sequenceTable(name, sequences, [count, width]) {
  if (sequences.length > count) {
    throw new AppError(`${sequences.length} ${name} given; this export takes at most ${count} ` +
      '(re-export to change it)');
  }
  const table = new Array(count * width).fill(-1);
  sequences.forEach((row, index) => {
    if (!row.length) throw new AppError(`${name}[${index}] is empty: a sequence needs at least one token`);
    if (row.length > width) {
      throw new AppError(`${name}[${index}] is ${row.length} tokens; this export takes at most ${width} per sequence`);
    }
    if (row.some((id) => id < 0)) throw new AppError(`${name}[${index}] has a negative token id`);
    row.forEach((id, j) => { table[index * width + j] = id; });
  });
  return table;
}

// The stop_sequences / banned_sequences inputs among `inputNames` (shapes: report.model.sequence_shapes): the
// sequences in `given` ({name: [[id, ...], ...]}), or none (all -1). Sequences for an export without the input
// are an AppError (apps/edge/knobs.py's sequence_inputs).
export function sequenceFeeds(info, inputNames, given = {}) {
  const shapes = Object.fromEntries(Object.entries(info.sequence_shapes || {})
    .filter(([name]) => inputNames.includes(name)));
  for (const name of SEQUENCE_INPUTS) {
    if ((given[name] || []).length && !shapes[name]) {
      throw new AppError(`this export has no ${name} input (exported before it): re-export the model`);
    }
  }
  return Object.fromEntries(Object.entries(shapes)
    .map(([name, shape]) => [name, int32(sequenceTable(name, given[name] || [], shape), shape)]));
}

// The last tokens of the banned sequences whose rest ends `context` (the ids so far): never the next token.
export function bannedNext(sequences, context) {
  const ids = [];
  for (const sequence of sequences) {
    const n = sequence.length - 1;
    const start = context.length - n;
    if (start >= 0 && sequence.slice(0, n).every((id, j) => context[start + j] === id)) ids.push(sequence[n]);
  }
  return ids;
}

// [the text before the first stop string, whether one was found].
export function trimAtStop(text, stops) {
  const found = stops.map((stop) => text.indexOf(stop)).filter((i) => i >= 0);
  return found.length ? [text.slice(0, Math.min(...found)), true] : [text, false];
}

// How many characters at the end of `text` could be the start of a stop string (not shown yet).
function heldBack(text, stops) {
  let held = 0;
  for (const stop of stops) {
    for (let k = 1; k < stop.length; k += 1) if (text.endsWith(stop.slice(0, k))) held = Math.max(held, k);
  }
  return held;
}

// The text of a decode loop's new tokens as they come, cut before the first stop string (apps/edge/chat.py's
// loop): what could begin a stop string, and a U+FFFD that may be an incomplete character, wait.
export class StopText {
  constructor(stops) {
    this.stops = stops;
    this.shown = '';
    this.text = '';
    this.stopped = false;
  }

  // `decoded`: the new tokens' text so far. Returns the piece to show now ('' for none); sets text and stopped.
  update(decoded) {
    [this.text, this.stopped] = trimAtStop(decoded, this.stops);
    if (this.stopped || this.text.endsWith('\ufffd')) return '';
    const visible = this.text.slice(0, this.text.length - heldBack(this.text, this.stops));
    if (visible.length <= this.shown.length) return '';
    const piece = visible.slice(this.shown.length);
    this.shown = visible;
    return piece;
  }

  // At the end: the rest of the text to show ('' when it does not extend what was shown).
  finish() {
    const extends_ = this.text !== this.shown && this.text.startsWith(this.shown);
    const piece = extends_ ? this.text.slice(this.shown.length) : '';
    this.shown += piece;
    return piece;
  }
}
