import { unaryOp } from "./elementwise.ts";

/** `tract_core_silu(x)`, item by item. */
export const tractCoreSilu = unaryOp("tract_core_silu", (x) => x / (1 + Math.exp(-x)));
