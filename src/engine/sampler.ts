import { applyDry, type DryOptions } from "./dry.ts";
import { expBelowZero } from "./exp_below_zero.ts";

/**
 * How the next token is chosen from a logits row (the OpenAI request fields and the common
 * extensions). Bias, penalties and DRY adjust the logits, a mask and top-n-sigma drop some,
 * temperature scales them, then top-k, typical, top-p, min-p and XTC keep their tokens in that
 * order (as Hugging Face's warpers do for those it has), or Mirostat in their place.
 */
export interface SamplingOptions {
  /** 0 picks the argmax (greedy); default 1. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens; 0 or unset keeps all. */
  readonly topK?: number;
  /**
   * Keep the smallest set of the most likely tokens whose probability (among those top-k kept)
   * reaches p; 1 or unset keeps all.
   */
  readonly topP?: number;
  /** Drop tokens less likely than minP times the most likely one. */
  readonly minP?: number;
  /**
   * Top-n-sigma: drop tokens whose logit is more than n standard deviations (of the logits
   * that may be drawn) below the largest; 0 or less is off.
   */
  readonly topNSigma?: number;
  /**
   * XTC (exclude top choices): with this probability at each token, when two or more
   * candidates are at least `xtcThreshold` likely (at temperature 1), all of them but the
   * least likely are dropped; 0 is off.
   */
  readonly xtcProbability?: number;
  /** XTC's threshold; above 0.5 no two tokens reach it, so XTC is off. */
  readonly xtcThreshold?: number;
  /** DRY's penalty of repeats of the prompt and the tokens generated (see `dry.ts`). */
  readonly dry?: DryOptions;
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
  /**
   * Locally typical sampling: keep the tokens whose surprise is nearest the distribution's
   * entropy, nearest first, until their probability passes this; 1 or unset is off.
   */
  readonly typicalP?: number;
  /**
   * Mirostat, which steers each token's surprise toward `tau`: top-k, top-p, min-p, typical
   * sampling and XTC are off with it.
   */
  readonly mirostat?: MirostatOptions;
}

/** Mirostat's settings (llama.cpp's and Ollama's `mirostat`, `mirostat_tau`, `mirostat_eta`). */
export interface MirostatOptions {
  /** 1: the top k from an estimate of the distribution's Zipf exponent; 2: a surprise cut. */
  readonly version: 1 | 2;
  /** The surprise aimed at, in bits. */
  readonly tau: number;
  /** How fast the cut follows the surprise observed. */
  readonly eta: number;
}

/** The most likely tokens Mirostat 1 estimates the Zipf exponent from (llama.cpp's m). */
const MIROSTAT_M = 100;

/**
 * Weighs every token for a draw: w[i] = e^((x[i] - max) * scale), 0 where that is NaN or too
 * small for an f32; returns the sum of w. The sampler's default does it in TypeScript
 * (`expBelowZero`); `kernelWeigh` does it in the kernels.
 */
export type Weigh = (x: Float32Array, max: number, scale: number, w: Float32Array) => number;

/** Picks token ids from logits rows, holding the random stream of one sequence. */
export class Sampler {
  readonly #options: SamplingOptions;
  #state: bigint;
  #adjusted: Float32Array = new Float32Array(0);
  #weights: Float32Array = new Float32Array(0);
  #ids: Int32Array = new Int32Array(0);
  #bins: Float64Array = new Float64Array(BINS + 1);
  #edge: Int32Array = new Int32Array(0);
  #binOf: Uint16Array = new Uint16Array(0);
  /** The tokens before the generated ones, which DRY looks at too. */
  readonly #prompt: readonly number[];
  readonly #breakers: ReadonlySet<number>;
  #dryScratch: Int32Array = new Int32Array(0);
  /** Mirostat's cut, in bits of surprise. */
  #mu: number;
  readonly #weigh: Weigh;

  /**
   * A sampler with `options`. For DRY: `prompt`, the tokens before the generated ones, and
   * `breakers`, the tokens that hold its sequence breakers (`breakerTokens`). `weigh` weighs
   * every token where a draw needs them all (default: in TypeScript).
   */
  constructor(
    options: SamplingOptions = {},
    { prompt = [], breakers = new Set(), weigh = weighAll }: {
      readonly prompt?: readonly number[];
      readonly breakers?: ReadonlySet<number>;
      readonly weigh?: Weigh;
    } = {},
  ) {
    this.#options = options;
    this.#weigh = weigh;
    this.#breakers = breakers;
    this.#prompt = prompt;
    this.#mu = 2 * (options.mirostat?.tau ?? 0);
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 52);
    this.#state = BigInt.asUintN(64, BigInt(Math.floor(seed)) * 0x9e3779b97f4a7c15n + 1n);
  }

  /**
   * Chooses the next token from `logits` (vocab,), given the tokens generated so far; with
   * `allowed` (vocab,), only among the tokens where it is 1 (a structured-output mask).
   * `logits` is not modified. Costs a few passes over the vocabulary whatever the options:
   * top-k and top-p select their tokens without sorting them.
   */
  sample(
    logits: Float32Array,
    generated: readonly number[] = [],
    allowed?: Uint8Array,
  ): number {
    const o = this.#options;
    const vocab = logits.length;
    if (this.#weights.length !== vocab) {
      this.#adjusted = new Float32Array(vocab);
      this.#weights = new Float32Array(vocab);
      this.#ids = new Int32Array(vocab);
      this.#edge = new Int32Array(vocab);
      this.#binOf = new Uint16Array(vocab);
    }
    const temperature = o.temperature ?? 1;
    const sigma = temperature > 0 && (o.topNSigma ?? 0) > 0;
    const dry = o.dry !== undefined && o.dry.multiplier > 0;
    let x = logits; // (vocab,)
    if (
      o.logitBias !== undefined || hasPenalties(o, generated) || allowed !== undefined ||
      sigma || dry
    ) {
      x = this.#adjusted;
      x.set(logits);
      if (o.logitBias) {
        for (const [id, bias] of o.logitBias) if (id >= 0 && id < vocab) x[id]! += bias;
      }
      applyPenalties(x, generated, o);
      if (dry) {
        const length = 2 * Math.min(this.#prompt.length + generated.length, o.dry!.lastN);
        if (this.#dryScratch.length < length) this.#dryScratch = new Int32Array(2 * length);
        applyDry(x, this.#prompt, generated, o.dry!, this.#breakers, this.#dryScratch);
      }
      if (allowed !== undefined) {
        for (let i = 0; i < vocab; i++) if (allowed[i] === 0) x[i] = -Infinity;
      }
      if (sigma) keepWithinSigmas(x, o.topNSigma!);
    }

    if (temperature <= 0) return argmax(x);

    let best = 0;
    let max = x[0]!;
    let lowest = Infinity; // of the tokens that may be drawn (masked ones are -Infinity)
    for (let i = 0; i < vocab; i++) {
      const v = x[i]!;
      if (v > max) {
        max = v;
        best = i;
      }
      if (v < lowest && v !== -Infinity) lowest = v;
    }
    if (lowest === Infinity) lowest = max;
    const scale = 1 / temperature;
    const w = this.#weights; // (vocab,) exp((x - max) / temperature) of the candidates; 1 at best
    if (o.mirostat) return this.#mirostat(x, max, best, lowest, scale);
    const typicalP = o.typicalP ?? 1;
    const topK = o.topK !== undefined && o.topK > 0 ? Math.min(o.topK, vocab) : vocab;
    const topP = o.topP ?? 1;
    const minP = o.minP ?? 0;
    const xtc = (o.xtcProbability ?? 0) > 0 && (o.xtcThreshold ?? 0.1) <= 0.5;
    if (topK === vocab && topP >= 1 && minP <= 0 && !xtc && typicalP >= 1) {
      return this.#draw(w, null, vocab, this.#weigh(x, max, scale, w)) ?? best;
    }

    // The candidates: ids[0, count), or all tokens while ids is null; mass, their weight.
    let ids: Int32Array | null = null;
    let count = vocab;
    let mass = 0;
    const bins = new Bins(this.#bins, this.#binOf, max, lowest);
    if (topK < vocab) {
      ids = this.#ids;
      count = this.#best(x, topK, bins, ids);
      for (let i = 0; i < count; i++) {
        const id = ids[i]!;
        mass += w[id] = expBelowZero((x[id]! - max) * scale);
      }
    } else {
      mass = this.#weigh(x, max, scale, w);
    }
    if (typicalP < 1) {
      ids ??= this.#listAll(count);
      count = keepTypical(w, ids, count, mass, typicalP);
      mass = 0;
      for (let i = 0; i < count; i++) mass += w[ids[i]!]!;
    }
    if (topP < 1) {
      bins.tally(ids, count, x, w);
      ({ count, amount: mass } = bins.select(ids, count, x, w, topP * mass, this.#ids, this.#edge));
      ids = this.#ids;
    }
    if (minP > 0) {
      // The best token has weight 1, so min-p keeps the weights of at least minP.
      let kept = 0;
      mass = 0;
      for (let i = 0; i < count; i++) {
        const id = ids === null ? i : ids[i]!;
        if (w[id]! >= minP) {
          this.#ids[kept++] = id;
          mass += w[id]!;
        }
      }
      ids = this.#ids;
      count = kept;
    }
    // XTC draws at every token, so that a seed gives one stream whether it cuts or not.
    if (xtc && this.#uniform() <= o.xtcProbability! && count > 1) {
      ids ??= this.#listAll(count);
      count = excludeTopChoices(x, max, ids, count, o.xtcThreshold ?? 0.1);
      mass = 0;
      for (let i = 0; i < count; i++) mass += w[ids[i]!]!;
    }
    return this.#draw(w, ids, count, mass) ?? best;
  }

  /**
   * Mirostat's draw from `x` (its largest `max` at `best`, its smallest drawable `lowest`),
   * at temperature 1 / `scale`, and the cut moved by the surprise of the token drawn.
   */
  #mirostat(x: Float32Array, max: number, best: number, lowest: number, scale: number): number {
    const { version, tau, eta } = this.#options.mirostat!;
    const vocab = x.length;
    const w = this.#weights;
    const total = this.#weigh(x, max, scale, w);
    const ids = this.#ids;
    let count = 0;
    if (version === 2) {
      // The tokens of surprise -log2(p) at most mu, or the most likely alone.
      const floor = total * 2 ** -this.#mu;
      for (let i = 0; i < vocab; i++) if (w[i]! >= floor) ids[count++] = i;
      if (count === 0) ids[count++] = best;
    } else {
      const bins = new Bins(this.#bins, this.#binOf, max, lowest);
      const top = this.#best(x, Math.min(MIROSTAT_M, vocab), bins, ids);
      const ranked = ids.subarray(0, top).sort((a, b) => x[b]! - x[a]! || a - b);
      // The Zipf exponent s, least squares over the ratios of the ranked probabilities.
      let tb = 0;
      let tt = 0;
      for (let i = 0; i + 1 < top && w[ranked[i + 1]!]! > 0; i++) {
        const t = Math.log((i + 2) / (i + 1));
        tb += t * Math.log(w[ranked[i]!]! / w[ranked[i + 1]!]!);
        tt += t * t;
      }
      const s = tb / tt;
      const e = s - 1;
      const k = ((e * 2 ** this.#mu) / (1 - vocab ** -e)) ** (1 / s);
      const keep = Number.isFinite(k) ? Math.min(vocab, Math.max(1, Math.floor(k))) : vocab;
      count = keep <= top ? keep : this.#best(x, keep, bins, ids);
    }
    let mass = 0;
    for (let i = 0; i < count; i++) mass += w[ids[i]!]!;
    const id = this.#draw(w, ids, count, mass) ?? best;
    this.#mu -= eta * (-Math.log2(w[id]! / mass) - tau);
    return id;
  }

  /**
   * The k best tokens of x (larger logit, then lower id; never -Infinity or NaN) into ids[0, n),
   * in no set order; returns n (fewer than k when fewer tokens are finite).
   */
  #best(x: Float32Array, k: number, bins: Bins, ids: Int32Array): number {
    if (k <= HEAP_TOP_K) return bestTokens(x, k, ids);
    bins.tally(null, x.length, x, null);
    return bins.select(null, x.length, x, null, k, ids, this.#edge).count;
  }

  /** The ids buffer listing tokens 0..count-1 (candidates that were every token). */
  #listAll(count: number): Int32Array {
    const ids = this.#ids;
    for (let i = 0; i < count; i++) ids[i] = i;
    return ids;
  }

  /** Draws one of `count` tokens (the first ids, or 0..count-1 without ids) by weight. */
  #draw(w: Float32Array, ids: Int32Array | null, count: number, mass: number): number | null {
    let r = this.#uniform() * mass;
    let last: number | null = null;
    for (let i = 0; i < count; i++) {
      const id = ids === null ? i : ids[i]!;
      r -= w[id]!;
      if (w[id]! > 0) last = id;
      if (r < 0) return id;
    }
    return last;
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

/**
 * Up to this k, the k best tokens (top-k, Mirostat 1) are kept in a heap (`bestTokens`), more
 * are counted into bins. A 49,152-token vocabulary, k = 40: a draw took 142-149 us with the
 * heap, 233-238 with the bins; k = 200: 207-211 and 235-236.
 */
const HEAP_TOP_K = 1024;

/**
 * `Sampler.#best` by a heap: the tokens in ids[0, n) in heap order. Once k are held, a token
 * costs one comparison with the worst of them, at the heap's root: a later token with the same
 * logit has a higher id, so it ranks below it.
 */
function bestTokens(x: Float32Array, k: number, ids: Int32Array): number {
  // a ranks below b.
  const below = (a: number, b: number) => x[a]! < x[b]! || (x[a] === x[b] && a > b);
  let n = 0;
  let worst = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (!(x[i]! > worst)) continue;
    let at: number;
    if (n < k) {
      // Up from the new leaf while it ranks below its parent.
      at = n++;
      while (at > 0) {
        const parent = (at - 1) >> 1;
        if (!below(i, ids[parent]!)) break;
        ids[at] = ids[parent]!;
        at = parent;
      }
    } else {
      // Down from the root, which it replaces, while a child ranks below it.
      at = 0;
      for (;;) {
        let child = 2 * at + 1;
        if (child >= n) break;
        if (child + 1 < n && below(ids[child + 1]!, ids[child]!)) child++;
        if (!below(ids[child]!, i)) break;
        ids[at] = ids[child]!;
        at = child;
      }
    }
    ids[at] = i;
    if (n === k) worst = x[ids[0]!]!;
  }
  return n;
}

/** Bins of `Bins.selectBest`: finer bins leave fewer tokens to sort in the one that decides. */
const BINS = 4096;

/**
 * Logits from `highest` down to `lowest` in equal bins, best first: every token of a bin ranks
 * before every token of a later bin. Top-k and top-p select their tokens with them without
 * sorting: the bins before the one where the running amount reaches the target are kept whole,
 * and only that bin's tokens are sorted.
 */
class Bins {
  readonly #amounts: Float64Array;
  readonly #of: Uint16Array;
  readonly #highest: number;
  readonly #perLogit: number;

  /**
   * `amounts` (BINS + 1,) and `of` (vocab,) are scratch space: `of` keeps the bin of every token
   * tallied (BINS for one outside them: masked, or NaN), so that `select` reads it.
   */
  constructor(amounts: Float64Array, of: Uint16Array, highest: number, lowest: number) {
    this.#amounts = amounts;
    this.#of = of;
    this.#highest = highest;
    this.#perLogit = highest > lowest ? (BINS - 1) / (highest - lowest) : 0;
  }

  /**
   * Sums per bin the amount of the tokens ids[0, count) (0..count-1 when null): 1 each for
   * top-k, their weight `w` for top-p.
   */
  tally(ids: Int32Array | null, count: number, x: Float32Array, w: Float32Array | null): void {
    const amounts = this.#amounts;
    const of = this.#of;
    const highest = this.#highest;
    const perLogit = this.#perLogit;
    amounts.fill(0);
    for (let i = 0; i < count; i++) {
      const id = ids === null ? i : ids[i]!;
      const at = (highest - x[id]!) * perLogit;
      const bin = at < BINS ? at | 0 : BINS;
      of[id] = bin;
      amounts[bin]! += w === null ? 1 : w[id]!;
    }
  }

  /**
   * Writes into `into` the best ranked of the tallied tokens (larger logit `x`, then lower id)
   * whose amount first reaches `target`; returns how many, and their amount. `edge` (vocab,)
   * is scratch space. `into` may be `ids`.
   */
  select(
    ids: Int32Array | null,
    count: number,
    x: Float32Array,
    w: Float32Array | null,
    target: number,
    into: Int32Array,
    edge: Int32Array,
  ): { count: number; amount: number } {
    const amounts = this.#amounts;
    const of = this.#of;
    let edgeBin = 0;
    let reached = 0;
    while (edgeBin < BINS - 1 && reached + amounts[edgeBin]! < target) {
      reached += amounts[edgeBin++]!;
    }
    let kept = 0;
    let inEdge = 0;
    // Without branches: which way a token goes is as good as random, and mispredicted
    // branches took most of the time (a flat 49k vocabulary: 226 us, 84 without).
    for (let i = 0; i < count; i++) {
      const id = ids === null ? i : ids[i]!;
      const bin = of[id]!;
      into[kept] = id;
      kept += (bin - edgeBin) >>> 31;
      edge[inEdge] = id;
      inEdge += Number(bin === edgeBin);
    }
    const sorted = edge.subarray(0, inEdge).sort((a, b) => x[b]! - x[a]! || a - b);
    for (let i = 0; i < inEdge && reached < target; i++) {
      const id = sorted[i]!;
      into[kept++] = id;
      reached += w === null ? 1 : w[id]!;
    }
    return { count: kept, amount: reached };
  }
}

/** One generated token's log-probability and the most likely alternatives, as OpenAI reports them. */
export interface TokenLogprob {
  /** The token id. */
  readonly id: number;
  /** Its natural log-probability. */
  readonly logprob: number;
  /** The most likely tokens at this position, most likely first (ties: lower id first). */
  readonly top: readonly { readonly id: number; readonly logprob: number }[];
}

/**
 * The log-probability of token `id` under `logits` (vocab,), and the `top` most likely tokens:
 * the model's own distribution, before temperature, penalties and bias (as vLLM reports it).
 */
export function tokenLogprob(logits: Float32Array, id: number, top: number): TokenLogprob {
  const vocab = logits.length;
  const max = logits[argmax(logits)]!;
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += expBelowZero(logits[i]! - max);
  const logZ = max + Math.log(sum);
  const best: number[] = []; // ids, best first
  const n = Math.min(top, vocab);
  for (let i = 0; i < vocab && n > 0; i++) {
    const v = logits[i]!;
    if (best.length === n && v <= logits[best[n - 1]!]!) continue;
    let at = best.length === n ? n - 1 : best.length;
    while (at > 0 && v > logits[best[at - 1]!]!) {
      best[at] = best[at - 1]!;
      at--;
    }
    best[at] = i;
  }
  return {
    id,
    logprob: logits[id]! - logZ,
    top: best.map((t) => ({ id: t, logprob: logits[t]! - logZ })),
  };
}

/** Index of the largest value; the lowest index wins ties. */
export function argmax(values: Float32Array): number {
  let best = 0;
  let max = values[0]!;
  for (let i = 1, n = values.length; i < n; i++) {
    const v = values[i]!;
    if (v > max) {
      max = v;
      best = i;
    }
  }
  return best;
}

/** The default `Weigh`. */
function weighAll(x: Float32Array, max: number, scale: number, w: Float32Array): number {
  let total = 0;
  for (let i = 0; i < x.length; i++) total += w[i] = expBelowZero((x[i]! - max) * scale);
  return total;
}

/**
 * Locally typical sampling's cut of the candidates ids[0, count) (weights `w`, summing to
 * `mass`): ordered by how far their surprise is from the entropy (ties: lower id first), the
 * nearest until their probability passes `p`. Returns how many are left, in place.
 */
function keepTypical(
  w: Float32Array,
  ids: Int32Array,
  count: number,
  mass: number,
  p: number,
): number {
  let entropy = 0;
  for (let i = 0; i < count; i++) {
    const q = w[ids[i]!]! / mass;
    if (q > 0) entropy -= q * Math.log(q);
  }
  const distance = (id: number) => Math.abs(-Math.log(w[id]! / mass) - entropy);
  const order = Array.from(ids.subarray(0, count), (id) => ({ id, far: distance(id) }))
    .sort((a, b) => a.far - b.far || a.id - b.id);
  let reached = 0;
  let kept = 0;
  for (const { id } of order) {
    ids[kept++] = id;
    reached += w[id]! / mass;
    if (reached > p) break;
  }
  return kept;
}

/** Top-n-sigma: logits more than `n` standard deviations below the largest become -Infinity. */
function keepWithinSigmas(x: Float32Array, n: number): void {
  let max = -Infinity;
  let sum = 0;
  let valid = 0;
  for (const v of x) {
    if (v === -Infinity) continue;
    if (v > max) max = v;
    sum += v;
    valid++;
  }
  if (valid < 2) return;
  const mean = sum / valid;
  let squares = 0;
  for (const v of x) if (v !== -Infinity) squares += (v - mean) ** 2;
  const floor = max - n * Math.sqrt(squares / valid);
  for (let i = 0; i < x.length; i++) if (x[i]! < floor) x[i] = -Infinity;
}

/**
 * XTC's cut of the candidates ids[0, count): of those at least `threshold` likely at
 * temperature 1 (by their logits `x`, the largest `max`), all but the least likely (the last
 * in rank: smaller logit, then higher id) are dropped when there are two or more. Returns the
 * candidates left, in place.
 */
function excludeTopChoices(
  x: Float32Array,
  max: number,
  ids: Int32Array,
  count: number,
  threshold: number,
): number {
  let total = 0;
  for (let i = 0; i < count; i++) total += expBelowZero(x[ids[i]!]! - max);
  const floor = Math.log(threshold * total) + max; // logit of probability `threshold`
  let above = 0;
  let last = -1;
  for (let i = 0; i < count; i++) {
    const id = ids[i]!;
    if (x[id]! < floor) continue;
    above++;
    if (last < 0 || x[id]! < x[last]! || (x[id] === x[last] && id > last)) last = id;
  }
  if (above < 2) return count;
  let kept = 0;
  for (let i = 0; i < count; i++) {
    const id = ids[i]!;
    if (x[id]! < floor || id === last) ids[kept++] = id;
  }
  return kept;
}

function hasPenalties(o: SamplingOptions, generated: readonly number[]): boolean {
  return generated.length > 0 &&
    ((o.presencePenalty ?? 0) !== 0 || (o.frequencyPenalty ?? 0) !== 0 ||
      (o.repetitionPenalty ?? 1) !== 1);
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
