import { reduceOp } from "./reduce.ts";

/** `sum_reduce(input, axes)`; reduced axes are kept with size 1. */
export const sumReduce = reduceOp("sum_reduce", 0, (a, x) => a + x, undefined, { normalize: true });
