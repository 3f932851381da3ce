import { reduceOp } from "./reduce.ts";

/** `all_reduce(input, axes)`; reduced axes are kept with size 1. */
export const allReduce = reduceOp("all_reduce", 1, (a, x) => (a && x ? 1 : 0));
