import { END, type Grammar } from "./grammar.ts";

/** The state id of a rejected input. */
export const DEAD = -1;
/** A transition not computed yet (see `Automaton.table`). */
export const UNKNOWN = -2;
/** The stack node of a finished document (the empty stack). */
const DONE = 0;

/**
 * Runs a {@link Grammar} byte by byte as a pushdown automaton that is determinized lazily:
 * a state is the set of stacks the input so far can have left (each stack a chain of grammar
 * positions, interned so that equal stacks are one node), and each (state, byte) transition
 * is computed once, then read from a table. A state is alive only when some stack can still
 * finish, so a live state always has a completion.
 */
export class Automaton {
  /** The grammar it walks. */
  readonly grammar: Grammar;
  // Stack nodes: the position on top, the node below (DONE at the bottom), and the fewest
  // bytes that finish the stack.
  readonly #nodePos: number[] = [END];
  readonly #nodeNext: number[] = [DONE];
  readonly #nodeDist: number[] = [0];
  readonly #nodeIds = new Map<number, number>();
  // States: their sorted node ids; min distance; whether the document may end there.
  readonly #stateNodes: Int32Array[] = [];
  readonly #stateDist: number[] = [];
  readonly #stateAccepts: boolean[] = [];
  readonly #stateMore: boolean[] = [];
  readonly #stateIds = new Map<string, number>();
  #transitions: Int32Array = new Int32Array(0); // (states * 256,)
  /** The state before any byte. */
  readonly start: number;

  /** An automaton with only its start state computed. */
  constructor(grammar: Grammar) {
    this.grammar = grammar;
    const nodes = new Set<number>();
    for (const at of grammar.alternatives[grammar.start]!) this.#expand(at, DONE, nodes, 0);
    this.start = this.#state(nodes);
  }

  /**
   * The transitions computed so far: entry `state * 256 + byte` is the next state, DEAD, or
   * UNKNOWN (then call `step`, which may replace the table). For loops that cannot afford a
   * call per byte.
   */
  get table(): Int32Array {
    return this.#transitions;
  }

  /** How many states have been built so far. */
  get stateCount(): number {
    return this.#stateNodes.length;
  }

  /** The state after `byte` in `state`, or DEAD. */
  step(state: number, byte: number): number {
    const at = state * 256 + byte;
    const known = this.#transitions[at]!;
    if (known !== UNKNOWN) return known;
    const { ops, classes } = this.grammar;
    const next = new Set<number>();
    for (const node of this.#stateNodes[state]!) {
      if (node === DONE) continue;
      const pos = this.#nodePos[node]!;
      if (classes[-2 - ops[pos]!]![byte] === 1) {
        this.#expand(pos + 1, this.#nodeNext[node]!, next, 0);
      }
    }
    const target = next.size === 0 ? DEAD : this.#state(next);
    this.#transitions[at] = target;
    return target;
  }

  /** The state after all of `bytes`, or DEAD. */
  walk(state: number, bytes: Uint8Array): number {
    for (let i = 0; i < bytes.length && state !== DEAD; i++) state = this.step(state, bytes[i]!);
    return state;
  }

  /** Whether the input so far is a whole document. */
  accepts(state: number): boolean {
    return this.#stateAccepts[state]!;
  }

  /** Whether some byte can follow. */
  continues(state: number): boolean {
    return this.#stateMore[state]!;
  }

  /** Fewest bytes that make the input so far a whole document. */
  distance(state: number): number {
    return this.#stateDist[state]!;
  }

  /** Whether `text` (UTF-8) is a whole document. */
  matches(text: string): boolean {
    const state = this.walk(this.start, new TextEncoder().encode(text));
    return state !== DEAD && this.accepts(state);
  }

  /** Whether `text` (UTF-8) can be continued into a whole document. */
  isPrefix(text: string): boolean {
    return this.walk(this.start, new TextEncoder().encode(text)) !== DEAD;
  }

  /**
   * Adds to `out` the stacks that position `pos` over stack `below` stands for, each with a
   * byte class on top (or DONE): rules are opened, finished alternatives popped.
   */
  #expand(pos: number, below: number, out: Set<number>, depth: number): void {
    if (depth > 10_000) throw new RangeError("Grammar recursion without progress");
    const ops = this.grammar.ops;
    const op = ops[pos]!;
    if (op === END) {
      if (below === DONE) out.add(DONE);
      else this.#expand(this.#nodePos[below]!, this.#nodeNext[below]!, out, depth + 1);
      return;
    }
    if (op <= -2) {
      out.add(this.#node(pos, below));
      return;
    }
    // A rule that ends its alternative returns straight to `below`: repetitions written as
    // right recursion keep a flat stack.
    const after = ops[pos + 1] === END ? below : this.#node(pos + 1, below);
    for (const at of this.grammar.alternatives[op]!) this.#expand(at, after, out, depth + 1);
  }

  #node(pos: number, below: number): number {
    const key = below * 4_194_304 + pos;
    let id = this.#nodeIds.get(key);
    if (id === undefined) {
      id = this.#nodePos.length;
      this.#nodePos.push(pos);
      this.#nodeNext.push(below);
      this.#nodeDist.push(this.grammar.rest[pos]! + this.#nodeDist[below]!);
      this.#nodeIds.set(key, id);
    }
    return id;
  }

  #state(nodes: Set<number>): number {
    const sorted = Int32Array.from(nodes).sort();
    const key = sorted.join(",");
    let id = this.#stateIds.get(key);
    if (id !== undefined) return id;
    id = this.#stateNodes.length;
    this.#stateIds.set(key, id);
    this.#stateNodes.push(sorted);
    let dist = Infinity;
    for (const node of sorted) dist = Math.min(dist, this.#nodeDist[node]!);
    this.#stateDist.push(dist);
    this.#stateAccepts.push(sorted[0] === DONE);
    this.#stateMore.push(sorted.length > 1 || sorted[0] !== DONE);
    if (this.#transitions.length < (id + 1) * 256) {
      const grown = new Int32Array(Math.max(1024, this.#transitions.length * 2)).fill(UNKNOWN);
      grown.set(this.#transitions);
      this.#transitions = grown;
    }
    return id;
  }
}
