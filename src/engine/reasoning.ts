/**
 * A thinking model's answer split into its reasoning and its content: the text between its
 * markers (`<think>` and `</think>` for Qwen3, DeepSeek-R1 and SmolLM3) is the reasoning, what
 * follows is the content.
 */

/** The texts that open and close a model's reasoning. */
export interface ThinkingMarkers {
  /** Opens the reasoning (`<think>`). */
  readonly open: string;
  /** Closes it (`</think>`). */
  readonly close: string;
}

const THINK: ThinkingMarkers = { open: "<think>", close: "</think>" };

/** The markers a chat template writes, or null when it writes none (no thinking model). */
export function thinkingMarkers(template: string): ThinkingMarkers | null {
  return template.includes(THINK.open) && template.includes(THINK.close) ? THINK : null;
}

/**
 * True when `prompt` leaves the model inside its reasoning: it opens a block it does not close
 * (templates that start the answer with `<think>\n`).
 */
export function promptOpensReasoning(prompt: string, markers: ThinkingMarkers): boolean {
  return prompt.lastIndexOf(markers.open) > prompt.lastIndexOf(markers.close);
}

/** How a thinking model's answer begins: its markers, and whether the prompt opened a block. */
export interface ReasoningStart {
  /** The model's markers. */
  readonly markers: ThinkingMarkers;
  /** The prompt opened a reasoning block: the answer starts inside it. */
  readonly opened: boolean;
}

/**
 * How the answer to `prompt` begins, for a model with chat template `template`; null when the
 * model does not think.
 */
export function reasoningStart(template: string, prompt: string): ReasoningStart | null {
  const markers = thinkingMarkers(template);
  return markers === null ? null : { markers, opened: promptOpensReasoning(prompt, markers) };
}

/** The parser of an answer that begins as `start` says; undefined for a model that does not think. */
export function reasoningParser(
  start: ReasoningStart | null | undefined,
): ReasoningParser | undefined {
  return start ? new ReasoningParser(start.markers, start.opened) : undefined;
}

/** A piece of an answer, split. */
export interface ReasoningPiece {
  /** Text of the reasoning block. */
  readonly reasoning: string;
  /** Text of the answer after it (or without one). */
  readonly content: string;
}

/**
 * Splits text as it streams. Only a block at the start counts as reasoning: one opened by the
 * prompt, or one the answer opens before any other text. Whitespace at the start of the
 * reasoning and of the content after it is dropped; a piece of a marker is held back until the
 * next text tells what it is.
 */
export class ReasoningParser {
  readonly #markers: ThinkingMarkers;
  #state: "start" | "reasoning" | "content";
  /** Drop whitespace until other text comes (the start of the reasoning or of the content). */
  #trim = true;
  #held = "";

  /** A parser whose text starts inside the reasoning when `opened` (see `promptOpensReasoning`). */
  constructor(markers: ThinkingMarkers, opened: boolean) {
    this.#markers = markers;
    this.#state = opened ? "reasoning" : "start";
  }

  /** True inside the reasoning block (what is pushed next is reasoning, until it closes). */
  get inReasoning(): boolean {
    return this.#state === "reasoning";
  }

  /** Adds generated text; returns what became sure. */
  push(text: string): ReasoningPiece {
    let rest = this.#held + text;
    this.#held = "";
    let reasoning = "";
    const { open, close } = this.#markers;
    for (;;) {
      if (this.#trim) {
        rest = rest.trimStart();
        if (rest === "") return { reasoning, content: "" };
        if (this.#state !== "start") this.#trim = false;
      }
      if (this.#state === "start") {
        if (rest.startsWith(open)) {
          this.#state = "reasoning";
          this.#trim = true;
          rest = rest.slice(open.length);
          continue;
        }
        if (open.startsWith(rest)) {
          this.#held = rest;
          return { reasoning, content: "" };
        }
        this.#state = "content";
        this.#trim = false;
      }
      if (this.#state === "content") return { reasoning, content: rest };
      const at = rest.indexOf(close);
      if (at >= 0) {
        reasoning += rest.slice(0, at);
        rest = rest.slice(at + close.length);
        this.#state = "content";
        this.#trim = true;
        continue;
      }
      const keep = partialSuffix(rest, close);
      this.#held = rest.slice(rest.length - keep);
      return { reasoning: reasoning + rest.slice(0, rest.length - keep), content: "" };
    }
  }

  /** What is still held back, once the answer ended. */
  flush(): ReasoningPiece {
    const held = this.#held;
    this.#held = "";
    return this.#state === "reasoning" ? { reasoning: held, content: "" } : {
      reasoning: "",
      content: held,
    };
  }
}

/** The length of the longest end of `text` that starts `marker` (a marker cut by a chunk). */
function partialSuffix(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) {
    if (marker.startsWith(text.slice(text.length - n))) return n;
  }
  return 0;
}
