import { checkFusion } from "./fused_testing.ts";

Deno.test("fusedRope matches x*cos + concat(-x2, x1)*sin over the halves", async () => {
  await checkFusion("rope", { x: [1, 4, 3, 8], c: [1, 1, 3, 8], s: [1, 1, 3, 8] }, [
    "x1 = slice(x, axes = [3], begin = [0], end = [4], stride = [1]);",
    "x2 = slice(x, axes = [3], begin = [4], end = [8], stride = [1]);",
    "r = concat([neg(x2), x1], axis = 3);",
    "y = add(mul(c, x), mul(r, s));",
  ], ["y"]);
});

Deno.test("fusedRope runs per head in the kernels when cos/sin broadcast over the heads", async () => {
  await checkFusion("rope", { x: [2, 5, 16], c: [1, 5, 16], s: [1, 5, 16] }, [
    "r = concat([neg(slice(x, axes = [2], begin = [8], end = [16])),",
    "  slice(x, axes = [2], begin = [0], end = [8])], axis = 2);",
    "y = add(mul(r, s), mul(x, c));",
  ], ["y"]);
});

Deno.test("fuseGraph leaves a rotation by other halves alone", async () => {
  await checkFusion(
    "rope",
    { x: [1, 2, 8], c: [1, 2, 8], s: [1, 2, 8] },
    [
      "r = concat([neg(slice(x, axes = [2], begin = [0], end = [4])),",
      "  slice(x, axes = [2], begin = [4], end = [8])], axis = 2);",
      "y = add(mul(x, c), mul(r, s));",
    ],
    ["y"],
    { count: 0 },
  );
});

Deno.test("fusedRope of one row (decode) runs all heads in one kernel call", async () => {
  await checkFusion("rope", { x: [1, 4, 1, 8], c: [1, 1, 1, 8], s: [1, 1, 1, 8] }, [
    "r = concat([neg(slice(x, axes = [3], begin = [4], end = [8])),",
    "  slice(x, axes = [3], begin = [0], end = [4])], axis = 3);",
    "y = add(mul(x, c), mul(r, s));",
  ], ["y"]);
});

Deno.test("fusedRope of transposed rows of tokens reads them in place, all heads in one kernel call", async () => {
  // x (1, S, H, D) transposed to (1, H, S, D), as a model's q and k before RoPE.
  await checkFusion("rope", { x: [1, 3, 4, 8], c: [1, 1, 3, 8], s: [1, 1, 3, 8] }, [
    "xt = transpose(x, axes = [0, 2, 1, 3]);",
    "r = concat([neg(slice(xt, axes = [3], begin = [4], end = [8])),",
    "  slice(xt, axes = [3], begin = [0], end = [4])], axis = 3);",
    "y = add(mul(xt, c), mul(r, s));",
  ], ["y"]);
});
