import assert from "node:assert/strict";
import { linear } from "./linear.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("linear is input times filter transposed plus bias", () => {
  const y = evalOp(linear, {
    input: t("f32", [1, 2], [1, 2]),
    filter: t("f32", [3, 2], [1, 0, 0, 1, 1, 1]),
    bias: t("f32", [1, 3], [10, 20, 30]),
  });
  assert.deepEqual(items(y), [11, 22, 33]);
});
