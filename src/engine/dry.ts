/**
 * DRY ("don't repeat yourself"), the repetition penalty of llama.cpp and koboldcpp: a token that
 * would extend a sequence the history already holds, and that once went on with that token, is
 * penalized by how long the repeat would grow.
 */
import type { Tokenizer } from "../tokenizer/tokenizer.ts";

/** How DRY penalizes (llama.cpp's `dry_*` fields). */
export interface DryOptions {
  /** Scale of the penalty; 0 is off. */
  readonly multiplier: number;
  /** Growth of the penalty per token of the repeat beyond `allowedLength`. */
  readonly base: number;
  /** Repeats this long or longer are penalized. */
  readonly allowedLength: number;
  /** The latest tokens of the history looked at (Infinity: all). */
  readonly lastN: number;
  /** Texts that end a repeat: no token whose text holds one is part of one. */
  readonly sequenceBreakers: readonly string[];
}

/** Exponents past this would overflow f32 (ln of its largest value). */
const F32_MAX_LOG = 88.7;

/**
 * Subtracts DRY's penalties from `logits` (vocab,) after the history, `prompt` then
 * `generated`: for each earlier place where the history's latest n tokens (none of them one of
 * the `breakers`, see {@link breakerTokens}) occurred and were followed by token t,
 * n >= `allowedLength`, t's logit loses multiplier * base^(n - allowedLength), for the longest
 * such n.
 */
export function applyDry(
  logits: Float32Array,
  prompt: readonly number[],
  generated: readonly number[],
  dry: DryOptions,
  breakers: ReadonlySet<number>,
  scratch?: Int32Array,
): void {
  const total = prompt.length + generated.length;
  const length = Math.min(total, dry.lastN);
  if (dry.multiplier <= 0 || dry.base < 1 || length < 2) return;
  // The window, latest token first.
  const r = scratch && scratch.length >= 2 * length ? scratch : new Int32Array(2 * length);
  for (let i = 0; i < length; i++) {
    const at = total - 1 - i;
    r[i] = at < prompt.length ? prompt[at]! : generated[at - prompt.length]!;
  }
  // A repeat cannot reach past the latest breaker.
  let limit = 0;
  while (limit < length && !breakers.has(r[limit]!)) limit++;
  if (limit < dry.allowedLength) return;
  // z[k]: how many tokens from r[k] on equal r's first ones, i.e. how long the history's tail
  // repeats ending just before the token r[k - 1] that followed it.
  const z = r.subarray(length, 2 * length);
  zFunction(r, length, z);
  const longest = new Map<number, number>();
  for (let k = 1; k < length; k++) {
    const n = Math.min(z[k]!, limit);
    if (n < dry.allowedLength) continue;
    const next = r[k - 1]!;
    if (n > (longest.get(next) ?? -1)) longest.set(next, n);
  }
  const most = dry.base > 1 ? F32_MAX_LOG / Math.log(dry.base) : Infinity;
  for (const [id, n] of longest) {
    if (id < 0 || id >= logits.length) continue;
    logits[id]! -= dry.multiplier * dry.base ** Math.min(n - dry.allowedLength, most);
  }
}

/** The Z-function of s[0, n): z[k] = the length of the longest common prefix of s and s[k..]. */
function zFunction(s: Int32Array, n: number, z: Int32Array): void {
  z[0] = n;
  let left = 0;
  let right = 0;
  for (let k = 1; k < n; k++) {
    let match = k < right ? Math.min(right - k, z[k - left]!) : 0;
    while (k + match < n && s[match] === s[k + match]) match++;
    z[k] = match;
    if (k + match > right) {
      left = k;
      right = k + match;
    }
  }
}

/** llama.cpp's default sequence breakers. */
export const DRY_BREAKERS: readonly string[] = ["\n", ":", '"', "*"];

const breakerSets = new WeakMap<Tokenizer, Map<string, ReadonlySet<number>>>();

/**
 * The tokens whose text holds one of `breakers` (exact for a breaker within one token, as
 * llama.cpp's single-character defaults are; one spread over several tokens is not seen).
 * Kept per tokenizer and list.
 */
export function breakerTokens(
  tokenizer: Tokenizer,
  breakers: readonly string[],
): ReadonlySet<number> {
  const key = JSON.stringify(breakers);
  let sets = breakerSets.get(tokenizer);
  if (!sets) breakerSets.set(tokenizer, sets = new Map());
  const known = sets.get(key);
  if (known) return known;
  const needles = breakers.map((b) => new TextEncoder().encode(b)).filter((b) => b.length > 0);
  const found = new Set<number>();
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const bytes = tokenizer.tokenBytes(id);
    if (needles.some((needle) => holds(bytes, needle))) found.add(id);
  }
  sets.set(key, found);
  return found;
}

function holds(bytes: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
