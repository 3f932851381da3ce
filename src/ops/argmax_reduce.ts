import { argReduceOp } from "./reduce.ts";

/** `argmax_reduce(input, axes)`: index (i64) of the first largest item along `axes`, kept as size 1. */
export const argmaxReduce = argReduceOp("argmax_reduce", (x, best) => x > best);
