import { reduceOp } from "./reduce.ts";

/** `any_reduce(input, axes)`; reduced axes are kept with size 1. */
export const anyReduce = reduceOp("any_reduce", 0, (a, x) => (a || x ? 1 : 0));
