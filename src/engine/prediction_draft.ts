/**
 * Guesses of the next tokens from a predicted output (OpenAI's `prediction`): the text the
 * answer is expected to repeat, such as a file about to be edited. The generated tokens are
 * followed through the prediction's; while they agree, the prediction's next tokens are the
 * guesses. Where the answer departs from it (an edit), guessing stops until the answer's
 * last few tokens are found in the prediction again, and goes on from there. Guessing starts
 * that way too: the prediction tokenized alone may begin otherwise than the same text does
 * in the answer (a vocabulary's leading space), and a wrong first guess would waste a step's
 * work on every guess after it.
 */

/** Tokens the answer's end must share with the prediction to pick up guessing again. */
const REJOIN_TOKENS = 3;

/** Follows an answer through the tokens it is predicted to repeat. */
export class PredictionDraft {
  readonly #predicted: readonly number[];
  /** Where in the prediction the answer's next token is expected; -1 until found, or departed. */
  #next = -1;
  /** Where it departed: the search for the way back starts there. */
  #departed = 0;
  /** Tokens of the answer followed so far. */
  #followed = 0;

  /** A draft of `predicted`, the prediction's token ids. */
  constructor(predicted: readonly number[]) {
    this.#predicted = predicted;
  }

  /** The tokens expected after `answer` (the tokens generated so far), at most `most`. */
  guess(answer: readonly number[], most: number): number[] {
    for (; this.#followed < answer.length; this.#followed++) {
      if (this.#next >= 0 && this.#predicted[this.#next] === answer[this.#followed]) {
        this.#next++;
      } else if (this.#next >= 0) {
        this.#departed = this.#next;
        this.#next = -1;
      }
    }
    if (this.#next < 0) this.#next = this.#rejoin(answer);
    if (this.#next < 0) return [];
    return this.#predicted.slice(this.#next, this.#next + most);
  }

  /**
   * Where the prediction goes on after the answer's last `REJOIN_TOKENS` tokens, the first such
   * place from the departure on, else from the start; -1 when they are nowhere in it.
   */
  #rejoin(answer: readonly number[]): number {
    if (answer.length < REJOIN_TOKENS) return -1;
    const tail = answer.slice(-REJOIN_TOKENS);
    const found = this.#find(tail, Math.max(0, this.#departed - REJOIN_TOKENS)) ??
      this.#find(tail, 0);
    return found === null ? -1 : found + REJOIN_TOKENS;
  }

  /** The first index from `from` on where the prediction holds `tail`. */
  #find(tail: readonly number[], from: number): number | null {
    const p = this.#predicted;
    for (let i = from; i + tail.length <= p.length; i++) {
      let j = 0;
      while (j < tail.length && p[i + j] === tail[j]) j++;
      if (j === tail.length) return i;
    }
    return null;
  }
}
