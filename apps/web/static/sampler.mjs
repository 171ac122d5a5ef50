// The in-graph sampler in JavaScript: the same seeded draws as an exported `generate` of the sample strategy.
// Definition: tfzoo/decoding/sampling.py (`uniform_hash`, `filter_logits`, `sample_logits`), used in
// tfzoo/decoding/greedy_search.py: the k-th new token of batch row `row` (k = 0 for the first) is drawn
// with uniformHash(seed, row, k) from the logits with the banned ids at NEG, then temperature, top-k, top-p.
// The same code in numpy: apps/edge/sampler.py.
//
// Integers: every value stays below PRIME**2 < 2**31, so JS numbers (exact to 2**53) give int32's results
// without Math.imul. Floats: the graph computes in float32, so every operation is rounded with Math.fround
// (one rounding of the exact double result is the float32 result for + - * /); exp is Math.exp rounded to
// float32, within an ulp of the runtimes' float32 exp. Sums run in the graph's order (cumsum left to right).
//   import { sampleToken } from './sampler.mjs';
//   const token = sampleToken(logits, { temperature: 0.8, topK: 20, topP: 0.9, seed: 1, row: 0, step: 0 });

export const NEG = -1e9; // exactly a float32; tfzoo.decoding.graph_ops.NEG
export const PRIME = 46337;
const ROUND_CONSTANTS = [[1409, 22307], [30011, 3571]];
const INVERSE = Math.fround(1 / PRIME);
const f32 = Math.fround;

const floorMod = (a, b) => ((a % b) + b) % b; // the sign of b, as tf.math.floormod
const floorDiv = (a, b) => (a - floorMod(a, b)) / b; // exact: the numerator is a multiple of b

function checkInt32(name, value) {
  if (!Number.isInteger(value) || value < -(2 ** 31) || value > 2 ** 31 - 1) {
    throw new RangeError(`${name} must be an int32 (a whole number from -2147483648 to 2147483647), got ${value}`);
  }
}

function lane(words, constants) {
  let x = 0;
  for (const word of words) {
    for (const constant of constants) {
      x = floorMod(x + word + constant, PRIME);
      x = ((x * x) % PRIME) * x % PRIME; // x >= 0 here: % is floormod
    }
  }
  return x;
}

// A float32 (as a JS number) in (0, 1] for (seed, row, step): bit for bit tfzoo's uniform_hash.
export function uniformHash(seed, row, step) {
  checkInt32('seed', seed);
  checkInt32('row', row);
  checkInt32('step', step);
  const words = [floorMod(seed, PRIME), floorMod(floorDiv(seed, PRIME), PRIME),
    floorMod(floorDiv(seed, PRIME * PRIME), PRIME), floorMod(row, PRIME), floorMod(step, PRIME)];
  const high = lane(words, ROUND_CONSTANTS[0]);
  const low = lane(words, ROUND_CONSTANTS[1]);
  return f32(f32(high + f32(f32(low + 0.5) * INVERSE)) * INVERSE);
}

const kthLargest = (sorted, k) => sorted[Math.min(Math.max(k - 1, 0), sorted.length - 1)];

function softmax(logits) {
  let max = -Infinity;
  for (const value of logits) max = Math.max(max, value);
  const weights = logits.map((value) => f32(Math.exp(f32(value - max))));
  let total = 0;
  for (const weight of weights) total = f32(total + weight);
  const scale = f32(1 / total); // the runtimes' softmax multiplies by 1 / sum
  return weights.map((weight) => f32(weight * scale));
}

// Temperature, then top-k (ties at the k-th value kept), then top-p; filtered entries get NEG.
// logits: Float32Array (V,). Returns a new Float32Array.
export function filterLogits(logits, temperature, topK, topP) {
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`top_p must be in (0, 1], got ${topP}`);
  checkInt32('top_k', topK);
  const t = f32(temperature);
  const p = f32(topP);
  const tempered = Float32Array.from(logits, (value) => value / t); // each rounded to float32 on storing
  const sorted = Float32Array.from(tempered).sort().reverse(); // descending
  const kth = topK > 0 ? kthLargest(sorted, topK) : NEG;
  const kept = sorted.map((value) => (value >= kth ? value : NEG));
  const probs = softmax(kept);
  let cumulative = 0;
  let count = 0;
  for (const prob of probs) {
    const before = f32(f32(cumulative + prob) - prob); // cumsum(probs) - probs, in float32
    cumulative = f32(cumulative + prob);
    if (before < p) count += 1;
  }
  const threshold = kthLargest(kept, count);
  return tempered.map((value) => (value >= kth && (p >= 1 || value >= threshold) ? value : NEG));
}

// The token whose cumulative weight first reaches uniform * total (inverse CDF); NEG entries are never drawn.
export function sampleLogits(logits, uniform) {
  let max = -Infinity;
  for (const value of logits) max = Math.max(max, value);
  const cdf = new Float32Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i += 1) {
    total = f32(total + f32(Math.exp(f32(logits[i] - max))));
    cdf[i] = total;
  }
  const target = f32(uniform * total);
  let token = 0;
  for (const value of cdf) if (value < target) token += 1;
  return Math.min(token, logits.length - 1);
}

// The in-graph sampler's token for one row at one step (logits with the banned ids already at NEG).
export function sampleToken(logits, { temperature, topK, topP, seed, row = 0, step }) {
  return sampleLogits(filterLogits(logits, temperature, topK, topP), uniformHash(seed, row, step));
}
