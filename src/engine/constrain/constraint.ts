import { type ReasoningParser, reasoningParser, type ReasoningStart } from "../reasoning.ts";
import { Automaton, DEAD, UNKNOWN } from "./automaton.ts";
import type { Grammar } from "./grammar.ts";
import type { VocabTrie } from "./vocab_trie.ts";

/** What the generation loop asks of a constraint, once per token. */
export interface TokenConstraint {
  /**
   * The tokens allowed next, (vocab,) 1 where allowed, or null when anything goes. `remaining`
   * counts the tokens that may still be generated, this one included: the mask then leaves
   * out tokens after which the output could not be finished in time.
   *
   * @throws {Error} when no token of the vocabulary can continue the output
   */
  mask(remaining: number): Uint8Array | null;
  /** Takes the sampled token. */
  accept(id: number): void;
  /**
   * A number of tokens enough to finish the output, Infinity when `cap` is not enough (for a
   * constraint that holds from the first token).
   */
  tokensToFinish?(cap: number): number;
  /** True once the output is whole and nothing may follow: generation ends there. */
  readonly complete: boolean;
  /** Time spent computing masks, in seconds, and how many were computed. */
  readonly stats: ConstraintStats;
}

/** Cost figures of a constraint. */
export interface ConstraintStats {
  /** Masks computed. */
  masks: number;
  /** Seconds spent computing them. */
  seconds: number;
}

const MASK_CACHE = 96;
/** Distance recorded for a token the grammar refuses. */
const REFUSED = 0xffff;

interface Walked {
  /** (vocab,) 1 where the grammar allows the token (whatever the length limit). */
  readonly mask: Uint8Array;
  /** (vocab,) bytes still needed after each token (capped below REFUSED), or REFUSED. */
  readonly distances: Uint16Array;
  /** The largest distance after an allowed token. */
  readonly farthest: number;
  readonly any: boolean;
}

/**
 * A grammar matched against a vocabulary: the automaton, the trie of the tokens' bytes and the
 * masks computed so far, shared by every request with the same grammar (the automaton's
 * states and the masks only grow).
 */
export class VocabGrammar {
  /** The grammar's automaton over bytes. */
  readonly automaton: Automaton;
  /** The vocabulary's tokens by their bytes. */
  readonly trie: VocabTrie;
  /** End-of-sequence ids, allowed where the document may end. */
  readonly eos: readonly number[];
  readonly #cache = new Map<number, Walked>();
  readonly #path: Int32Array;

  /** The grammar matched against the tokens of `trie`, `eos` ending the document. */
  constructor(grammar: Grammar, trie: VocabTrie, eos: readonly number[]) {
    this.automaton = new Automaton(grammar);
    this.trie = trie;
    this.eos = eos;
    this.#path = new Int32Array(trie.maxDepth + 1);
  }

  /**
   * The tokens allowed in `state`; with `limit`, only those after which the document can end
   * within `limit` more bytes (when no token leaves that little, those that leave the least).
   * `any` is false when the grammar allows no token at all.
   */
  allowed(state: number, limit = Infinity): { mask: Uint8Array; any: boolean } {
    let walked = this.#cache.get(state);
    if (walked === undefined) {
      walked = this.#walk(state);
      this.#cache.set(state, walked);
      if (this.#cache.size > MASK_CACHE) this.#cache.delete(this.#cache.keys().next().value!);
    } else {
      this.#cache.delete(state);
      this.#cache.set(state, walked);
    }
    if (walked.farthest <= limit) return walked;
    const { distances } = walked;
    let nearest = REFUSED;
    for (let id = 0; id < distances.length; id++) nearest = Math.min(nearest, distances[id]!);
    // Out of room for every token: head for the end as fast as the tokens allow.
    const bound = Math.max(limit, nearest);
    const mask = new Uint8Array(distances.length);
    let any = false;
    for (let id = 0; id < distances.length; id++) {
      if (distances[id]! <= bound && distances[id]! !== REFUSED) {
        mask[id] = 1;
        any = true;
      }
    }
    return { mask, any };
  }

  /**
   * About how many tokens it takes at least to finish a document from `state`: the count of
   * the path that always takes a token leaving the fewest bytes to write (the path the masks
   * follow when short of room). Infinity past `cap`.
   */
  tokensToFinish(state: number, tokenBytes: (id: number) => Uint8Array, cap: number): number {
    const m = this.automaton;
    let count = 0;
    while (m.distance(state) > 0) {
      if (count >= cap) return Infinity;
      this.allowed(state);
      const { distances } = this.#cache.get(state)!;
      let best = -1;
      for (let id = 0; id < distances.length; id++) {
        if (distances[id]! !== REFUSED && (best < 0 || distances[id]! < distances[best]!)) {
          best = id;
        }
      }
      if (best < 0) return Infinity;
      state = m.walk(state, tokenBytes(best));
      count++;
    }
    return count;
  }

  /**
   * Walks every token's bytes from `state` through the trie: tokens sharing a prefix share its
   * steps, and a refused prefix skips its whole subtree.
   */
  #walk(state: number): Walked {
    const { bytes, depth, end, tokenStart, tokens, vocabSize } = this.trie;
    const m = this.automaton;
    const mask = new Uint8Array(vocabSize);
    const distances = new Uint16Array(vocabSize).fill(REFUSED);
    const path = this.#path;
    let table = m.table;
    path[0] = state;
    let farthest = 0;
    let any = false;
    const n = bytes.length;
    for (let i = 0; i < n;) {
      const d = depth[i]!;
      const from = path[d - 1]!;
      let next = table[from * 256 + bytes[i]!]!;
      if (next === UNKNOWN) {
        next = m.step(from, bytes[i]!);
        table = m.table;
      }
      if (next === DEAD) {
        i = end[i]!;
        continue;
      }
      path[d] = next;
      const first = tokenStart[i]!;
      const last = tokenStart[i + 1]!;
      if (first < last) {
        const distance = Math.min(m.distance(next), REFUSED - 1);
        if (distance > farthest) farthest = distance;
        for (let k = first; k < last; k++) {
          mask[tokens[k]!] = 1;
          distances[tokens[k]!] = distance;
        }
        any = true;
      }
      i++;
    }
    if (m.accepts(state)) {
      for (const id of this.eos) {
        mask[id] = 1;
        distances[id] = 0;
      }
      any ||= this.eos.length > 0;
    }
    return { mask, distances, farthest, any };
  }
}

/** One request's position in a {@link VocabGrammar}. */
export class GrammarConstraint implements TokenConstraint {
  readonly #grammar: VocabGrammar;
  readonly #tokenBytes: (id: number) => Uint8Array;
  #state: number;
  readonly stats: ConstraintStats = { masks: 0, seconds: 0 };

  /**
   * @param grammar the shared grammar
   * @param tokenBytes the bytes of a token (the tokenizer's `tokenBytes`)
   * @param state where to start (default: the grammar's start)
   */
  constructor(grammar: VocabGrammar, tokenBytes: (id: number) => Uint8Array, state?: number) {
    this.#grammar = grammar;
    this.#tokenBytes = tokenBytes;
    this.#state = state ?? grammar.automaton.start;
  }

  get complete(): boolean {
    return !this.#grammar.automaton.continues(this.#state);
  }

  /** Whether the output so far is a whole document. */
  get accepting(): boolean {
    return this.#grammar.automaton.accepts(this.#state);
  }

  mask(remaining: number): Uint8Array {
    const started = performance.now();
    try {
      const allowed = this.#grammar.allowed(this.#state, remaining - 1);
      if (!allowed.any) {
        throw new Error("No token of the vocabulary continues the constrained output");
      }
      return allowed.mask;
    } finally {
      this.stats.masks++;
      this.stats.seconds += (performance.now() - started) / 1000;
    }
  }

  /**
   * A number of tokens that is enough to finish the document, at most `cap` when `cap` is
   * enough, else Infinity: the bytes left when they fit (a token per byte), else the count of
   * the path the masks take when short of room.
   */
  tokensToFinish(cap: number): number {
    const bytes = this.#grammar.automaton.distance(this.#state);
    if (bytes <= cap) return bytes;
    return this.#grammar.tokensToFinish(this.#state, this.#tokenBytes, cap);
  }

  accept(id: number): void {
    if (this.#grammar.eos.includes(id)) return;
    const next = this.#grammar.automaton.walk(this.#state, this.#tokenBytes(id));
    if (next === DEAD) throw new RangeError(`Token ${id} breaks the constrained output`);
    this.#state = next;
  }
}

/**
 * A constraint that waits for the output to open a tool call: until `trigger` appears (or,
 * with `atStart`, unless the output begins with it), anything goes; from there on the output
 * must follow the grammar, which starts with the trigger. If the text after the trigger
 * already breaks the grammar, the constraint stays off. A thinking model's reasoning block
 * (`reasoning`) is no output: a trigger written in it opens nothing.
 */
export class TriggeredConstraint implements TokenConstraint {
  readonly #grammar: VocabGrammar;
  readonly #tokenBytes: (id: number) => Uint8Array;
  readonly #trigger: string;
  readonly #atStart: boolean;
  /** Splits off a thinking model's reasoning, which the trigger is not looked for in. */
  readonly #thinking: ReasoningParser | undefined;
  #seen = "";
  #off = false;
  #active: GrammarConstraint | undefined;
  readonly stats: ConstraintStats = { masks: 0, seconds: 0 };

  /**
   * @param grammar the grammar of the calls, trigger included
   * @param tokenBytes the bytes of a token
   * @param trigger the text (ASCII) that opens the calls
   * @param atStart only a trigger at the start of the output (after spaces) counts
   * @param reasoning how a thinking model's answer begins (its reasoning block is skipped)
   */
  constructor(
    grammar: VocabGrammar,
    tokenBytes: (id: number) => Uint8Array,
    trigger: string,
    atStart = false,
    reasoning?: ReasoningStart,
  ) {
    this.#grammar = grammar;
    this.#tokenBytes = tokenBytes;
    this.#trigger = trigger;
    this.#atStart = atStart;
    this.#thinking = reasoningParser(reasoning);
  }

  /** Whether the calls have begun. */
  get active(): boolean {
    return this.#active !== undefined;
  }

  get complete(): boolean {
    return this.#active?.complete ?? false;
  }

  mask(remaining: number): Uint8Array | null {
    if (this.#active === undefined) return null;
    const mask = this.#active.mask(remaining);
    this.stats.masks = this.#active.stats.masks;
    this.stats.seconds = this.#active.stats.seconds;
    return mask;
  }

  accept(id: number): void {
    if (this.#active !== undefined) return this.#active.accept(id);
    if (this.#off || this.#grammar.eos.includes(id)) return;
    let text = "";
    for (const b of this.#tokenBytes(id)) text += String.fromCharCode(b);
    this.#seen += this.#thinking ? this.#thinking.push(text).content : text;
    let at = this.#seen.indexOf(this.#trigger);
    if (this.#atStart) {
      const lead = this.#seen.length - this.#seen.trimStart().length;
      if (lead === this.#seen.length) return;
      at = this.#seen.startsWith(this.#trigger, lead) ? lead : -1;
      if (at < 0) this.#off = true;
    }
    if (at < 0) return;
    const m = this.#grammar.automaton;
    const tail = Uint8Array.from(this.#seen.slice(at), (c) => c.charCodeAt(0));
    const state = m.walk(m.start, tail);
    if (state === DEAD) {
      this.#off = true;
      return;
    }
    this.#active = new GrammarConstraint(this.#grammar, this.#tokenBytes, state);
  }
}
