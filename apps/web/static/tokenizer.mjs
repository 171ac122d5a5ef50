// The exported tokenizer.json in the browser: char and byte tokenizers, the same ids as tfzoo's.
// char: ids are positions in `vocabulary` (special tokens first); an unknown character is <unk>,
// which decodes to U+FFFD. byte: id = UTF-8 byte + byte_offset. Decoding drops <pad> and <eos>.

export const SUPPORTED_TYPES = ['char', 'byte'];

export class JsonTokenizer {
  constructor(data) {
    if (!data || !SUPPORTED_TYPES.includes(data.type)) {
      throw new Error(`tokenizer type ${JSON.stringify(data && data.type)} is not supported here ` +
        `(this page reads ${SUPPORTED_TYPES.join(' and ')} tokenizers)`);
    }
    const specials = data.special_tokens || {};
    if (!('<pad>' in specials) || !('<eos>' in specials)) {
      throw new Error("tokenizer.json: 'special_tokens' must map '<pad>' and '<eos>' to ids");
    }
    this.type = data.type;
    this.padId = specials['<pad>'];
    this.eosId = specials['<eos>'];
    const specialIds = new Set(Object.values(specials));
    if (this.type === 'char') {
      if (!Array.isArray(data.vocabulary) || !('<unk>' in specials)) {
        throw new Error("tokenizer.json: a char tokenizer needs 'vocabulary' and an '<unk>' special token");
      }
      this.unkId = specials['<unk>'];
      this.vocabulary = data.vocabulary;
      this.ids = new Map();
      data.vocabulary.forEach((token, id) => { if (!specialIds.has(id)) this.ids.set(token, id); });
      this.vocabularySize = data.vocabulary.length;
    } else {
      this.byteOffset = data.byte_offset;
      this.vocabularySize = this.byteOffset + 256;
    }
  }

  encode(text) {
    if (this.type === 'char') {
      return Array.from(text, (ch) => (this.ids.has(ch) ? this.ids.get(ch) : this.unkId));
    }
    return Array.from(new TextEncoder().encode(text), (b) => b + this.byteOffset);
  }

  // A function id -> text for streaming; call it with null at the end to flush a split UTF-8 character.
  streamDecoder() {
    if (this.type === 'char') {
      return (id) => {
        if (id === null || id === this.padId || id === this.eosId) return '';
        if (id === this.unkId || id < 0 || id >= this.vocabularySize) return '\ufffd';
        return this.vocabulary[id];
      };
    }
    const decoder = new TextDecoder('utf-8');
    return (id) => {
      if (id === null) return decoder.decode();
      if (id < this.byteOffset) return '';
      return decoder.decode(new Uint8Array([Math.min(id - this.byteOffset, 255)]), { stream: true });
    };
  }

  decode(ids) {
    const text = this.streamDecoder();
    return ids.map((id) => text(id)).join('') + text(null);
  }
}
