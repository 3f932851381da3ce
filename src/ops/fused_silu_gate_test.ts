import { checkFusion } from "./fused_testing.ts";

Deno.test("fusedSiluGate matches x*sigmoid(x) * up", async () => {
  await checkFusion("siluGate", { a: [1, 3, 48], b: [1, 3, 48] }, [
    "y = mul(b, mul(a, sigmoid(a)));",
  ], ["y"]);
});

Deno.test("fuseGraph leaves x*sigmoid(z) * up alone", async () => {
  await checkFusion(
    "siluGate",
    { a: [4, 8], b: [4, 8] },
    [
      "y = mul(mul(a, sigmoid(b)), b);",
    ],
    ["y"],
    { count: 0 },
  );
});
