/** How the next token is chosen from a logits row (the OpenAI request fields, llama.cpp's semantics). */
export interface SamplingOptions {
  /** 0 picks the argmax (greedy); default 1. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens; 0 or unset keeps all. */
  readonly topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 or unset keeps all. */
  readonly topP?: number;
  /** Drop tokens less likely than minP times the most likely one. */
  readonly minP?: number;
  /** Subtracted once from the logit of every token already generated (OpenAI). */
  readonly presencePenalty?: number;
  /** Subtracted per occurrence from the logit of every token already generated (OpenAI). */
  readonly frequencyPenalty?: number;
  /** Divides positive and multiplies negative logits of seen tokens (HF/llama.cpp); 1 is off. */
  readonly repetitionPenalty?: number;
  /** Added to the logit of the given token ids before anything else. */
  readonly logitBias?: ReadonlyMap<number, number>;
  /** Seed of the random stream; the same seed and inputs give the same tokens. */
  readonly seed?: number;
}

/** Picks token ids from logits rows, holding the random stream of one sequence. */
export class Sampler {
  readonly #options: SamplingOptions;
  #state: bigint;
  #probs: Float32Array = new Float32Array(0);
  #order: Int32Array = new Int32Array(0);

  constructor(options: SamplingOptions = {}) {
    this.#options = options;
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 52);
    this.#state = BigInt.asUintN(64, BigInt(Math.floor(seed)) * 0x9e3779b97f4a7c15n + 1n);
  }

  /**
   * Chooses the next token from `logits` (vocab,), given the tokens generated so far.
   * `logits` is not modified.
   */
  sample(logits: Float32Array, generated: readonly number[] = []): number {
    const o = this.#options;
    const vocab = logits.length;
    if (this.#probs.length !== vocab) {
      this.#probs = new Float32Array(vocab);
      this.#order = new Int32Array(vocab);
    }
    const x = this.#probs; // (vocab,) adjusted logits, then probabilities
    x.set(logits);
    if (o.logitBias) {
      for (const [id, bias] of o.logitBias) if (id >= 0 && id < vocab) x[id]! += bias;
    }
    applyPenalties(x, generated, o);

    const temperature = o.temperature ?? 1;
    if (temperature <= 0) return argmax(x);

    let max = -Infinity;
    for (let i = 0; i < vocab; i++) if (x[i]! > max) max = x[i]!;
    let sum = 0;
    for (let i = 0; i < vocab; i++) {
      const p = Math.exp((x[i]! - max) / temperature);
      x[i] = p;
      sum += p;
    }
    for (let i = 0; i < vocab; i++) x[i]! /= sum;

    const candidates = this.#candidates(x);
    const total = candidates.reduce((acc, id) => acc + x[id]!, 0);
    let r = this.#uniform() * total;
    for (const id of candidates) {
      r -= x[id]!;
      if (r <= 0) return id;
    }
    return candidates[candidates.length - 1]!;
  }

  /** Token ids that survive top-k, top-p and min-p, most likely first. */
  #candidates(probs: Float32Array): number[] {
    const o = this.#options;
    const vocab = probs.length;
    const topK = o.topK !== undefined && o.topK > 0 ? Math.min(o.topK, vocab) : vocab;
    const topP = o.topP ?? 1;
    const minP = o.minP ?? 0;
    let pmax = 0;
    for (let i = 0; i < vocab; i++) if (probs[i]! > pmax) pmax = probs[i]!;
    // Tokens below this cannot be in the nucleus nor pass min-p (llama2.c's cutoff trick).
    const cutoff = Math.max(minP * pmax, topP < 1 ? (1 - topP) / (vocab - 1) : 0);
    let n = 0;
    const order = this.#order;
    for (let i = 0; i < vocab; i++) if (probs[i]! >= cutoff) order[n++] = i;
    const ids = Array.from(order.subarray(0, n)).sort((a, b) => probs[b]! - probs[a]! || a - b);
    ids.length = Math.min(ids.length, topK);
    if (topP < 1) {
      let acc = 0;
      for (let i = 0; i < ids.length; i++) {
        acc += probs[ids[i]!]!;
        if (acc >= topP) {
          ids.length = i + 1;
          break;
        }
      }
    }
    return ids.length > 0 ? ids : [argmax(probs)];
  }

  /** A float in [0, 1) from a xorshift64* stream. */
  #uniform(): number {
    let s = this.#state;
    s ^= s >> 12n;
    s ^= BigInt.asUintN(64, s << 25n);
    s ^= s >> 27n;
    this.#state = s;
    const out = BigInt.asUintN(64, s * 0x2545f4914f6cdd1dn);
    return Number(out >> 11n) / 2 ** 53;
  }
}

/** Index of the largest value; the lowest index wins ties. */
export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function applyPenalties(
  logits: Float32Array,
  generated: readonly number[],
  o: SamplingOptions,
): void {
  const presence = o.presencePenalty ?? 0;
  const frequency = o.frequencyPenalty ?? 0;
  const repetition = o.repetitionPenalty ?? 1;
  if (generated.length === 0 || (presence === 0 && frequency === 0 && repetition === 1)) return;
  const counts = new Map<number, number>();
  for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, count] of counts) {
    if (id < 0 || id >= logits.length) continue;
    let v = logits[id]!;
    if (repetition !== 1) v = v > 0 ? v / repetition : v * repetition;
    v -= frequency * count + presence;
    logits[id] = v;
  }
}
