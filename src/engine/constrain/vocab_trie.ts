import type { Tokenizer } from "../../tokenizer/tokenizer.ts";

/**
 * The tokens of a vocabulary in a byte trie laid out in depth-first order, so that a walk is a
 * loop over arrays and skipping a subtree is one jump: node `i` holds the byte that leads to
 * it, its depth (1 for a first byte), the index just past its subtree, and the tokens whose
 * bytes end there. Tokens without bytes (special tokens) are left out.
 */
export class VocabTrie {
  /** Number of token ids (the vocabulary size). */
  readonly vocabSize: number;
  /** (nodes,) the byte leading to each node. */
  readonly bytes: Uint8Array;
  /** (nodes,) 1 for a first byte. */
  readonly depth: Uint16Array;
  /** (nodes,) the index just past each node's subtree. */
  readonly end: Int32Array;
  /** (nodes + 1,) the node's tokens are `tokens[tokenStart[i]..tokenStart[i+1]]`. */
  readonly tokenStart: Int32Array;
  /** The token ids, grouped by node. */
  readonly tokens: Int32Array;
  /** Longest token in bytes. */
  readonly maxDepth: number;
  /** (256,) 1 where a token of exactly that one byte exists. */
  readonly singleBytes: Uint8Array;

  /** The trie of `vocabSize` tokens, each given by `tokenBytes`. */
  constructor(vocabSize: number, tokenBytes: (id: number) => Uint8Array) {
    this.vocabSize = vocabSize;
    const entries: { id: number; bytes: Uint8Array }[] = [];
    for (let id = 0; id < vocabSize; id++) {
      const bytes = tokenBytes(id);
      if (bytes.length > 0) entries.push({ id, bytes });
    }
    entries.sort((a, b) => compareBytes(a.bytes, b.bytes) || a.id - b.id);
    const nodeBytes: number[] = [];
    const nodeDepth: number[] = [];
    const tokenStart: number[] = [];
    const tokens: number[] = [];
    const open: number[] = []; // node index per depth - 1 on the current path
    let previous: Uint8Array = new Uint8Array(0);
    let maxDepth = 0;
    this.singleBytes = new Uint8Array(256);
    for (const { id, bytes } of entries) {
      const shared = commonPrefix(previous, bytes);
      open.length = shared;
      for (let d = shared; d < bytes.length; d++) {
        open.push(nodeBytes.length);
        nodeBytes.push(bytes[d]!);
        nodeDepth.push(d + 1);
        tokenStart.push(tokens.length);
      }
      // Tokens come sorted, so a node's tokens are pushed while it is the last node.
      tokens.push(id);
      maxDepth = Math.max(maxDepth, bytes.length);
      if (bytes.length === 1) this.singleBytes[bytes[0]!] = 1;
      previous = bytes;
    }
    const n = nodeBytes.length;
    this.bytes = Uint8Array.from(nodeBytes);
    this.depth = Uint16Array.from(nodeDepth);
    this.tokenStart = Int32Array.from([...tokenStart, tokens.length]);
    this.tokens = Int32Array.from(tokens);
    this.maxDepth = maxDepth;
    // A subtree ends at the next node that is no deeper than its root.
    this.end = new Int32Array(n);
    const stack: number[] = [];
    for (let i = 0; i < n; i++) {
      while (stack.length > 0 && this.depth[stack.at(-1)!]! >= this.depth[i]!) {
        this.end[stack.pop()!] = i;
      }
      stack.push(i);
    }
    for (const i of stack) this.end[i] = n;
  }

  /** Number of nodes. */
  get size(): number {
    return this.bytes.length;
  }
}

const tries = new WeakMap<Tokenizer, VocabTrie>();

/** The trie of a tokenizer's vocabulary, built once per tokenizer. */
export function vocabTrie(tokenizer: Tokenizer): VocabTrie {
  let trie = tries.get(tokenizer);
  if (trie === undefined) {
    trie = new VocabTrie(tokenizer.vocabSize, (id) => tokenizer.tokenBytes(id));
    tries.set(tokenizer, trie);
  }
  return trie;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function commonPrefix(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
