import { unaryOp } from "./elementwise.ts";

/** `tract_transformers_silu(x)`, item by item. */
export const tractTransformersSilu = unaryOp(
  "tract_transformers_silu",
  (x) => x / (1 + Math.exp(-x)),
);
