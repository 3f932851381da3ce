import { argReduceOp } from "./reduce.ts";

/** `argmin_reduce(input, axes)`: index (i64) of the first smallest item along `axes`, kept as size 1. */
export const argminReduce = argReduceOp("argmin_reduce", (x, best) => x < best);
