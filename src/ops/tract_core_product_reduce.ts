import { reduceOp } from "./reduce.ts";

/** `tract_core_product_reduce(input, axes)`; reduced axes are kept with size 1. */
export const tractCoreProductReduce = reduceOp("tract_core_product_reduce", 1, (a, x) => a * x);
