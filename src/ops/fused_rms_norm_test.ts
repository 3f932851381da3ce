import { checkFusion, randomF32 } from "./fused_testing.ts";

Deno.test("FusedRmsNorm matches sqr, mean_reduce, add, rsqrt, mul and the weight", async () => {
  await checkFusion(
    "rmsNorm",
    { x: [2, 3, 64] },
    [
      "w = variable<scalar>(label = 'w', shape = [64]);",
      "n = mul(x, rsqrt(add(mean_reduce(sqr(x), axes = [2]), 1e-5)));",
      "y = mul(unsqueeze(w, axes = [0, 0]), tract_core_cast(n, to = 'f32'));",
    ],
    ["y"],
    { variables: { w: randomF32([64], 3) } },
  );
});

Deno.test("FusedRmsNorm without a weight, and with a norm also read elsewhere", async () => {
  await checkFusion("rmsNorm", { x: [5, 32] }, [
    "n = mul(rsqrt(add(mean_reduce(sqr(x), axes = [1]), 1e-6)), x);",
    "y = add(n, 1.0);",
    "z = mul(n, 2.0);",
  ], ["y", "z"]);
});
