import assert from "node:assert/strict";
import { select } from "./select.ts";
import { evalOp, items, t } from "./testing.ts";

Deno.test("select picks per item with broadcasting", () => {
  const y = evalOp(select, {
    condition: t("bool", [2, 2], [1, 0, 0, 1]),
    true_value: t("f32", [], [5]),
    false_value: t("f32", [2, 2], [1, 2, 3, 4]),
  });
  assert.deepEqual(items(y), [5, 2, 3, 5]);
});
