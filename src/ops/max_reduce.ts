import { reduceOp } from "./reduce.ts";

/** `max_reduce(input, axes)`; reduced axes are kept with size 1. */
export const maxReduce = reduceOp("max_reduce", -Infinity, (a, x) => (x > a ? x : a));
