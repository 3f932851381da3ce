/**
 * Fill in the middle: a code model given the text before and after a gap writes the gap. Such
 * models read the two parts between special tokens of their vocabulary, prefix first
 * (`<|fim_prefix|>` prefix `<|fim_suffix|>` suffix `<|fim_middle|>`, then the middle).
 */
import type { Tokenizer } from "../tokenizer/tokenizer.ts";

/** The ids of the tokens that open the prefix, the suffix and the middle. */
export interface FimTokens {
  readonly prefix: number;
  readonly suffix: number;
  readonly middle: number;
}

/** The families' markers, by the vocabularies that have them. */
const FAMILIES: readonly (readonly [string, string, string])[] = [
  // Qwen2.5-Coder, CodeGemma.
  ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
  // StarCoder, SantaCoder.
  ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
  // DeepSeek-Coder: begin, hole, end.
  ["<\uFF5Cfim\u2581begin\uFF5C>", "<\uFF5Cfim\u2581hole\uFF5C>", "<\uFF5Cfim\u2581end\uFF5C>"],
];

const found = new WeakMap<Tokenizer, FimTokens | null>();

/** The markers of `tokenizer`'s vocabulary, each a token of its own; null when it has none. */
export function fimTokens(tokenizer: Tokenizer): FimTokens | null {
  let tokens = found.get(tokenizer);
  if (tokens === undefined) {
    tokens = search(tokenizer);
    found.set(tokenizer, tokens);
  }
  return tokens;
}

/** The first family whose three markers each encode to one token of that name. */
function search(tokenizer: Tokenizer): FimTokens | null {
  const single = (marker: string) => {
    const ids = tokenizer.encode(marker, { addBos: false });
    return ids.length === 1 && tokenizer.piece?.(ids[0]!) === marker ? ids[0]! : null;
  };
  for (const [p, s, m] of FAMILIES) {
    const [prefix, suffix, middle] = [single(p), single(s), single(m)];
    if (prefix !== null && suffix !== null && middle !== null) return { prefix, suffix, middle };
  }
  return null;
}

/**
 * The prompt (ids) that asks for the middle between `prefix` (text, or ids as they are) and
 * `suffix`, after BOS when the tokenizer starts its texts with it.
 */
export function fimPrompt(
  tokenizer: Tokenizer,
  tokens: FimTokens,
  prefix: string | readonly number[],
  suffix: string,
): number[] {
  const before = typeof prefix === "string" ? tokenizer.encode(prefix) : [...prefix];
  const bos = tokenizer.bos !== null && before[0] === tokenizer.bos ? [tokenizer.bos] : [];
  return [
    ...bos,
    tokens.prefix,
    ...before.slice(bos.length),
    tokens.suffix,
    ...tokenizer.encode(suffix, { addBos: false }),
    tokens.middle,
  ];
}

/** The markers of the families above, for messages. */
export const FIM_MARKERS: readonly string[] = FAMILIES.map((f) => f[0]);
