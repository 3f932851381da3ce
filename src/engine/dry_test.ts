import assert from "node:assert/strict";
import { applyDry, breakerTokens, DRY_BREAKERS, type DryOptions } from "./dry.ts";
import { parseLlama2cTokenizer } from "../tokenizer/llama2c_tokenizer.ts";

const DRY: DryOptions = {
  multiplier: 0.8,
  base: 1.75,
  allowedLength: 2,
  lastN: Infinity,
  sequenceBreakers: [],
};

/** The penalties DRY gives each of `vocab` tokens after `history`. */
function penalties(
  history: number[],
  dry: DryOptions = DRY,
  breakers: ReadonlySet<number> = new Set(),
  vocab = 10,
): number[] {
  const logits = new Float32Array(vocab);
  // Half of it as the prompt, half as generated.
  const half = history.length >> 1;
  applyDry(logits, history.slice(0, half), history.slice(half), dry, breakers);
  return Array.from(logits, (v) => (v === 0 ? 0 : -v));
}

/** The definition, by brute force: the longest earlier match of the tail followed by each token. */
function byDefinition(
  history: number[],
  dry: DryOptions,
  breakers: ReadonlySet<number>,
  vocab: number,
): number[] {
  const h = history.slice(-Math.min(history.length, dry.lastN));
  const out = new Array<number>(vocab).fill(0);
  const longest = new Map<number, number>();
  for (let end = 0; end < h.length - 1; end++) {
    let n = 0;
    while (
      n <= end && h[end - n] === h[h.length - 1 - n] && !breakers.has(h[h.length - 1 - n]!)
    ) n++;
    if (n >= dry.allowedLength) {
      longest.set(h[end + 1]!, Math.max(longest.get(h[end + 1]!) ?? 0, n));
    }
  }
  for (const [id, n] of longest) out[id] = dry.multiplier * dry.base ** (n - dry.allowedLength);
  return out;
}

Deno.test("applyDry penalizes the token that would extend a repeat, by the repeat's length", () => {
  // 1 2 3 4 ... 1 2 3: the tail 1 2 3 went on with 4 before.
  const p = penalties([1, 2, 3, 4, 5, 1, 2, 3]);
  assert.ok(Math.abs(p[4]! - 0.8 * 1.75) < 1e-6, `${p[4]}`);
  assert.deepEqual(p.map((v, id) => (id === 4 ? 0 : v)), new Array(10).fill(0));
  // A repeat shorter than the allowed length goes free.
  assert.deepEqual(penalties([1, 2, 9, 1]), new Array(10).fill(0));
  // Several earlier places: the longest match counts.
  const two = penalties([7, 2, 3, 6, 1, 2, 3, 8, 1, 2, 3]);
  assert.ok(Math.abs(two[8]! - 0.8 * 1.75) < 1e-6 && Math.abs(two[6]! - 0.8) < 1e-6);
});

Deno.test("applyDry stops repeats at breakers, looks at the last n tokens, and is off at 0", () => {
  const history = [1, 2, 3, 4, 5, 1, 2, 3];
  // A breaker inside the tail: the repeat is the two tokens after it, allowed.
  assert.equal(penalties(history, DRY, new Set([2]))[4], 0);
  assert.ok(penalties(history, DRY, new Set([1]))[4]! > 0);
  assert.equal(penalties(history, { ...DRY, lastN: 4 })[4], 0);
  assert.equal(penalties(history, { ...DRY, multiplier: 0 })[4], 0);
  // A huge repeat is penalized finitely.
  const long = Array.from({ length: 400 }, (_, i) => i % 3);
  const huge = penalties(long, { ...DRY, base: 3 });
  assert.ok(Number.isFinite(huge[long.length % 3]!) && huge[long.length % 3]! > 1e30);
});

Deno.test("applyDry equals the definition on random histories", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 300; round++) {
    const vocab = 2 + Math.floor(random() * 5);
    const history = Array.from(
      { length: 1 + Math.floor(random() * 40) },
      () => Math.floor(random() * vocab),
    );
    const dry: DryOptions = {
      ...DRY,
      allowedLength: Math.floor(random() * 4),
      lastN: random() < 0.5 ? Infinity : 1 + Math.floor(random() * 30),
    };
    const breakers = new Set(random() < 0.5 ? [] : [Math.floor(random() * vocab)]);
    const got = penalties(history, dry, breakers, vocab);
    const want = byDefinition(history, dry, breakers, vocab);
    got.forEach((v, id) =>
      assert.ok(
        Math.abs(v - want[id]!) <= 1e-4 * Math.max(1, want[id]!),
        `history ${history}, token ${id}: ${v} against ${want[id]}`,
      )
    );
  }
});

Deno.test("breakerTokens finds the tokens whose text holds a breaker", async () => {
  const tokenizer = parseLlama2cTokenizer(
    await Deno.readFile(
      new URL("../../../shared/fixtures/stories260K/tok512.bin", import.meta.url),
    ),
  );
  const found = breakerTokens(tokenizer, DRY_BREAKERS);
  const text = (id: number) => new TextDecoder().decode(tokenizer.tokenBytes(id));
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    assert.equal(found.has(id), DRY_BREAKERS.some((b) => text(id).includes(b)), text(id));
  }
  assert.ok(found.size > 0);
  assert.equal(breakerTokens(tokenizer, DRY_BREAKERS), found);
});
