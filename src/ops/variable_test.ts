import assert from "node:assert/strict";
import { variable } from "./variable.ts";
import { Args } from "./args.ts";
import type { Fact } from "./op.ts";
import { tensor } from "../tensor/tensor.ts";

Deno.test("variable loads the tensor of its label", () => {
  const stored = tensor("f64", [], Float64Array.of(1e-5));
  const [f] = variable.infer(new Args<Fact>("variable", { label: "eps", shape: [] }), {
    variable: (label) => {
      assert.equal(label, "eps");
      return stored;
    },
  });
  assert.equal(f!.dtype, "f64");
  assert.equal(f!.value, stored);
});

Deno.test("variable refuses a .dat whose items are not of the declared kind", () => {
  const ints = tensor("u32", [2], Float64Array.of(1, 2));
  const infer = (type: string) =>
    variable.infer(new Args<Fact>("variable", { label: "w", shape: [2], "?": type }), {
      variable: () => ints,
    });
  assert.throws(
    () => infer("scalar"),
    /^TypeError: 'w\.dat' holds u32 items, the graph declares scalar$/,
  );
  assert.equal(infer("integer")[0]!.dtype, "u32");
  assert.throws(() => infer("logical"), /declares logical/);
});
