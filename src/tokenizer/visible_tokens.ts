import type { Tokenizer } from "./tokenizer.ts";

/**
 * `tokenizer` with the special tokens written as `texts` decoded as those texts, and their
 * bytes those of the texts, where decoding skips special tokens otherwise: Mistral and Granite
 * write tool calls with special tokens (`[TOOL_CALLS]`, `[ARGS]`, `<|tool_call|>`) that must be
 * read like text. A text the
 * vocabulary has no special token for is left out; with none left, `tokenizer` itself.
 */
export function withVisibleTokens(tokenizer: Tokenizer, texts: readonly string[]): Tokenizer {
  const visible = new Map<number, string>();
  for (const text of texts) {
    const ids = tokenizer.encode(text, { addBos: false });
    if (ids.length === 1 && tokenizer.decode(ids) === "") visible.set(ids[0]!, text);
  }
  return visible.size === 0 ? tokenizer : new VisibleTokens(tokenizer, visible);
}

class VisibleTokens implements Tokenizer {
  readonly #inner: Tokenizer;
  readonly #visible: ReadonlyMap<number, string>;
  readonly #bytes = new Map<number, Uint8Array>();
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: readonly number[];
  readonly piece?: (id: number) => string;

  constructor(inner: Tokenizer, visible: ReadonlyMap<number, string>) {
    this.#inner = inner;
    this.#visible = visible;
    this.vocabSize = inner.vocabSize;
    this.bos = inner.bos;
    this.eos = inner.eos;
    for (const [id, text] of visible) this.#bytes.set(id, new TextEncoder().encode(text));
    const piece = inner.piece?.bind(inner);
    if (piece !== undefined) this.piece = piece;
  }

  encode(text: string, options?: { readonly addBos?: boolean }): number[] {
    return this.#inner.encode(text, options);
  }

  /** Runs of other tokens decode as the inner tokenizer decodes them, between the visible ones. */
  decode(ids: readonly number[]): string {
    let text = "";
    let from = 0;
    ids.forEach((id, i) => {
      const shown = this.#visible.get(id);
      if (shown === undefined) return;
      text += this.#inner.decode(ids.slice(from, i)) + shown;
      from = i + 1;
    });
    return from === 0 ? this.#inner.decode(ids) : text + this.#inner.decode(ids.slice(from));
  }

  tokenBytes(id: number): Uint8Array {
    return this.#bytes.get(id) ?? this.#inner.tokenBytes(id);
  }
}
