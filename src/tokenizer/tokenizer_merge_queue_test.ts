import assert from "node:assert/strict";
import { MergeQueue } from "./tokenizer_merge_queue.ts";

Deno.test("MergeQueue pops the highest score first, the leftmost among equal scores", () => {
  const queue = new MergeQueue<{ score: number; left: number }>();
  const items = [[1, 5], [3, 2], [3, 0], [-2, 1], [3, 7], [1, 4], [0, 3]];
  for (const [score, left] of items) queue.push({ score: score!, left: left! });
  const popped: number[][] = [];
  while (queue.size > 0) {
    const { score, left } = queue.pop();
    popped.push([score, left]);
  }
  assert.deepEqual(popped, [[3, 0], [3, 2], [3, 7], [1, 4], [1, 5], [0, 3], [-2, 1]]);
});
