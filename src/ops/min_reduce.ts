import { reduceOp } from "./reduce.ts";

/** `min_reduce(input, axes)`; reduced axes are kept with size 1. */
export const minReduce = reduceOp("min_reduce", Infinity, (a, x) => (x < a ? x : a));
