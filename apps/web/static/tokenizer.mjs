// The export's hf_tokenizer.json in the browser, read by Hugging Face's tokenizers.js
// (@huggingface/tokenizers, served from apps/web/node_modules at ./lib/): every tokenizer type the export
// carries (char, byte, WordPiece, SentencePiece, GPT-2 BPE), the same ids as tfzoo's. Decoding skips the
// special tokens; an unknown token decodes to U+FFFD.
//
//   const tokenizer = new HfTokenizer(await (await fetch('model/hf_tokenizer.json')).json());
//   const ids = tokenizer.encode('def ');
//   const textOf = tokenizer.streamDecoder(ids);  // new id -> its text; textOf(null) flushes

import { Tokenizer } from './lib/tokenizers.min.mjs';

export class HfTokenizer {
  constructor(data, source = 'hf_tokenizer.json') {
    if (!data || typeof data !== 'object' || !data.model || typeof data.model.type !== 'string') {
      throw new Error(`${source}: not a Hugging Face tokenizer (no model.type)`);
    }
    try {
      // The config is what transformers' tokenizer_config.json would say: WordLevel's unknown token, and no
      // "clean-up" of spaces before punctuation (tfzoo and the Python `tokenizers` package keep them).
      this.tokenizer = new Tokenizer(data, { unk_token: data.model.unk_token, clean_up_tokenization_spaces: false });
    } catch (error) {
      throw new Error(`${source}: not a Hugging Face tokenizer (${error.message})`);
    }
    this.type = data.model.type;
    this.data = data;
  }

  // The ids of `text`. `specialsAsText`: a special token's spelling in `text` (`<eos>`, `<|user|>`) is ordinary
  // text, as tfzoo's tokenizers and Python's `encode_special_tokens` encode it: a chat message cannot forge a role.
  encode(text, { specialsAsText = false } = {}) {
    if (!specialsAsText) return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    if (!this.plain) { // the same tokenizer without its special added tokens: their spellings split as text
      const data = { ...this.data, added_tokens: (this.data.added_tokens || []).filter((t) => !t.special) };
      this.plain = new Tokenizer(data, { unk_token: data.model.unk_token, clean_up_tokenization_spaces: false });
    }
    return this.plain.encode(text, { add_special_tokens: false }).ids;
  }

  // The id of the token spelled `token` (e.g. "<eos>"), or undefined.
  tokenId(token) {
    return this.tokenizer.token_to_id(token);
  }

  decode(ids) {
    return ids.length ? this.tokenizer.decode(ids, { skip_special_tokens: true }) : '';
  }

  // The text newIds add after the prompt (a WordPiece word after the prompt starts with its space).
  continuation(promptIds, newIds) {
    const head = this.decode(promptIds);
    const whole = this.decode([...promptIds, ...newIds]);
    return whole.startsWith(head) ? whole.slice(head.length) : this.decode(newIds);
  }

  // A function new id -> its text, for streaming; null at the end flushes. The text of a token that ends
  // inside a character (one byte of a multi-byte UTF-8 character decodes to U+FFFD) waits for the token
  // that completes it, so no character is split; the pieces joined are continuation(promptIds, newIds).
  streamDecoder(promptIds = []) {
    const newIds = [];
    let written = '';
    return (id) => {
      if (id !== null) newIds.push(id);
      let text = this.continuation(promptIds, newIds);
      if (id !== null && text.endsWith('\ufffd')) return '';  // maybe an incomplete character: wait
      if (!text.startsWith(written)) text = written;  // never take back what was shown
      const piece = text.slice(written.length);
      written = text;
      return piece;
    };
  }
}
