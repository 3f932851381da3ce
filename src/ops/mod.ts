/**
 * The op registry: one import and one entry per op. Ops are found by the name in their
 * NNEF signature (`fragment <name>(...)`).
 */
import { type Op, opName } from "./op.ts";
import { abs } from "./abs.ts";
import { add } from "./add.ts";
import { allReduce } from "./all_reduce.ts";
import { and } from "./and.ts";
import { anyReduce } from "./any_reduce.ts";
import { ceil } from "./ceil.ts";
import { concat } from "./concat.ts";
import { copy } from "./copy.ts";
import { cos } from "./cos.ts";
import { div } from "./div.ts";
import { eq } from "./eq.ts";
import { exp } from "./exp.ts";
import { external } from "./external.ts";
import { floor } from "./floor.ts";
import { ge } from "./ge.ts";
import { gt } from "./gt.ts";
import { le } from "./le.ts";
import { linear } from "./linear.ts";
import { log } from "./log.ts";
import { lt } from "./lt.ts";
import { matmul } from "./matmul.ts";
import { max } from "./max.ts";
import { maxReduce } from "./max_reduce.ts";
import { meanReduce } from "./mean_reduce.ts";
import { min } from "./min.ts";
import { minReduce } from "./min_reduce.ts";
import { mul } from "./mul.ts";
import { ne } from "./ne.ts";
import { neg } from "./neg.ts";
import { not } from "./not.ts";
import { or } from "./or.ts";
import { pow } from "./pow.ts";
import { recip } from "./recip.ts";
import { relu } from "./relu.ts";
import { reshape } from "./reshape.ts";
import { round } from "./round.ts";
import { rsqrt } from "./rsqrt.ts";
import { select } from "./select.ts";
import { sigmoid } from "./sigmoid.ts";
import { sign } from "./sign.ts";
import { sin } from "./sin.ts";
import { slice } from "./slice.ts";
import { softmax } from "./softmax.ts";
import { sqr } from "./sqr.ts";
import { sqrt } from "./sqrt.ts";
import { square } from "./square.ts";
import { squeeze } from "./squeeze.ts";
import { sub } from "./sub.ts";
import { sumReduce } from "./sum_reduce.ts";
import { tan } from "./tan.ts";
import { tanh } from "./tanh.ts";
import { tile } from "./tile.ts";
import { tractCoreCast } from "./tract_core_cast.ts";
import { tractCoreEinsum } from "./tract_core_einsum.ts";
import { tractCoreExternal } from "./tract_core_external.ts";
import { tractCoreGather } from "./tract_core_gather.ts";
import { tractCoreGatherElements } from "./tract_core_gather_elements.ts";
import { tractCoreProductReduce } from "./tract_core_product_reduce.ts";
import { tractCoreRange } from "./tract_core_range.ts";
import { tractCoreShapeOf } from "./tract_core_shape_of.ts";
import { tractCoreSoftmax } from "./tract_core_softmax.ts";
import { tractCoreTrilu } from "./tract_core_trilu.ts";
import { tractTransformersSdpa } from "./tract_transformers_sdpa.ts";
import { transpose } from "./transpose.ts";
import { unsqueeze } from "./unsqueeze.ts";
import { variable } from "./variable.ts";

import { argmaxReduce } from "./argmax_reduce.ts";
import { argminReduce } from "./argmin_reduce.ts";
import { clamp } from "./clamp.ts";
import { log2 } from "./log2.ts";
import { rsqr } from "./rsqr.ts";
import { tractCoreBroadcast } from "./tract_core_broadcast.ts";
import { tractCoreErf } from "./tract_core_erf.ts";
import { tractCoreGeluApprox } from "./tract_core_gelu_approx.ts";
import { tractCoreRmsNorm } from "./tract_core_rms_norm.ts";
import { tractCoreSilu } from "./tract_core_silu.ts";
import { tractTransformersApplyRope } from "./tract_transformers_apply_rope.ts";
import { tractTransformersRmsNorm } from "./tract_transformers_rms_norm.ts";
import { tractTransformersScaledMaskedSoftmax } from "./tract_transformers_scaled_masked_softmax.ts";
import { tractTransformersSilu } from "./tract_transformers_silu.ts";
const ALL: readonly Op[] = [
  abs,
  add,
  allReduce,
  and,
  anyReduce,
  ceil,
  concat,
  copy,
  cos,
  div,
  eq,
  exp,
  external,
  floor,
  ge,
  gt,
  le,
  linear,
  log,
  lt,
  matmul,
  max,
  maxReduce,
  meanReduce,
  min,
  minReduce,
  mul,
  ne,
  neg,
  not,
  or,
  pow,
  recip,
  relu,
  reshape,
  round,
  rsqrt,
  select,
  sigmoid,
  sign,
  sin,
  slice,
  softmax,
  sqr,
  sqrt,
  square,
  squeeze,
  sub,
  sumReduce,
  tan,
  tanh,
  tile,
  tractCoreCast,
  tractCoreEinsum,
  tractCoreExternal,
  tractCoreGather,
  tractCoreGatherElements,
  tractCoreProductReduce,
  tractCoreRange,
  tractCoreShapeOf,
  tractCoreSoftmax,
  tractCoreTrilu,
  tractTransformersSdpa,
  transpose,
  unsqueeze,
  variable,
  argmaxReduce,
  argminReduce,
  clamp,
  log2,
  rsqr,
  tractCoreBroadcast,
  tractCoreErf,
  tractCoreGeluApprox,
  tractCoreRmsNorm,
  tractCoreSilu,
  tractTransformersApplyRope,
  tractTransformersRmsNorm,
  tractTransformersScaledMaskedSoftmax,
  tractTransformersSilu,
];

/** Every registered op, by name. */
export const OPS: ReadonlyMap<string, Op> = new Map(ALL.map((op) => [opName(op), op]));

/** The op called `name`, or undefined. */
export function findOp(name: string): Op | undefined {
  return OPS.get(name);
}
