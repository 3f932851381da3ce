import assert from "node:assert/strict";
import { PredictionDraft } from "./prediction_draft.ts";

const PREDICTED = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];

Deno.test("PredictionDraft guesses the prediction's next tokens while the answer repeats it, from its third token", () => {
  const draft = new PredictionDraft(PREDICTED);
  assert.deepEqual(draft.guess([], 3), []);
  assert.deepEqual(draft.guess([10, 11], 4), []);
  assert.deepEqual(draft.guess([10, 11, 12], 4), [13, 14, 15, 16]);
  assert.deepEqual(draft.guess([10, 11, 12, 13, 14, 15, 16, 17, 18], 4), [19]);
  assert.deepEqual(draft.guess(PREDICTED, 4), []);
});

Deno.test("PredictionDraft finds where the answer starts in a prediction that begins otherwise", () => {
  // A leading space token the answer's first word does not have.
  const draft = new PredictionDraft([5, 5, 10, 11, 12, 13]);
  assert.deepEqual(draft.guess([5], 2), []);
  assert.deepEqual(draft.guess([5, 10, 11], 2), [12, 13]);
});

Deno.test("PredictionDraft stops at an edit and goes on where the answer's last 3 tokens meet the prediction again", () => {
  const draft = new PredictionDraft(PREDICTED);
  assert.deepEqual(draft.guess([10, 11, 12], 2), [13, 14]);
  // 13 replaced by 50, 51: no guess until 14, 15, 16 come back.
  assert.deepEqual(draft.guess([10, 11, 12, 50], 2), []);
  assert.deepEqual(draft.guess([10, 11, 12, 50, 51, 14], 2), []);
  assert.deepEqual(draft.guess([10, 11, 12, 50, 51, 14, 15], 2), []);
  assert.deepEqual(draft.guess([10, 11, 12, 50, 51, 14, 15, 16], 2), [17, 18]);
  // A deletion (17 left out): nothing until 3 tokens of the answer meet the prediction again.
  assert.deepEqual(draft.guess([10, 11, 12, 50, 51, 14, 15, 16, 18], 2), []);
});

Deno.test("PredictionDraft looks for the way back after the departure first, then from the start", () => {
  const repeated = [1, 2, 3, 4, 9, 1, 2, 3, 5, 6];
  // Asked after each token, as the scheduler asks.
  const walk = (draft: PredictionDraft, answer: number[], most: number) =>
    answer.map((_, i) => draft.guess(answer.slice(0, i + 1), most)).at(-1);
  // 7 departs at index 5; 1, 2, 3 again are found after it, so 5 follows, not 4.
  assert.deepEqual(walk(new PredictionDraft(repeated), [1, 2, 3, 4, 9, 7, 1, 2, 3], 2), [5, 6]);
  // Past the end, 2, 3, 4 are found before it.
  assert.deepEqual(
    walk(new PredictionDraft(repeated), [1, 2, 3, 4, 9, 1, 2, 3, 5, 6, 8, 2, 3, 4], 1),
    [9],
  );
});

Deno.test("PredictionDraft of an empty prediction guesses nothing", () => {
  assert.deepEqual(new PredictionDraft([]).guess([1, 2, 3], 8), []);
});
