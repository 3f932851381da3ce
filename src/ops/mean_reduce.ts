import { reduceOp } from "./reduce.ts";

/** `mean_reduce(input, axes)`; reduced axes are kept with size 1. */
export const meanReduce = reduceOp("mean_reduce", 0, (a, x) => a + x, (a, n) => a / n);
