import assert from "node:assert/strict";
import { median } from "./_median.ts";

Deno.test("median takes the middle value, or the mean of the two middle ones, unsorted input left as it is", () => {
  const odd = [5, 1, 3];
  assert.equal(median(odd), 3);
  assert.deepEqual(odd, [5, 1, 3]);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
});
