import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import type { Dim } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import {
  alloc,
  broadcastShapes,
  broadcastStrides,
  concreteShape,
  finish,
  knownDims,
  numeric,
  unifyDtypes,
} from "./common.ts";

/** `select(condition, true_value, false_value)` with NNEF broadcasting of all three. */
export const select: Op = {
  signature:
    "fragment select<?>(condition: tensor<logical>, true_value: tensor<?>, false_value: tensor<?>) -> (output: tensor<?>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const c = args.tensor("condition");
    const a = args.tensor("true_value");
    const b = args.tensor("false_value");
    const dtype = unifyDtypes(a, b);
    const shape = broadcastShapes(broadcastShapes(c.shape, a.shape), b.shape);
    const cs = concreteShape(shape);
    const [kc, ka, kb] = [knownDims(c), knownDims(a), knownDims(b)];
    if (cs && kc && ka && kb) {
      const n = volume(cs);
      const sc = broadcastStrides(c.shape as number[], cs);
      const sa = broadcastStrides(a.shape as number[], cs);
      const sb = broadcastStrides(b.shape as number[], cs);
      const dims: Dim[] = [];
      for (let i = 0; i < n; i++) {
        let [oc, oa, ob, rest] = [0, 0, 0, i];
        for (let ax = cs.length - 1; ax >= 0; ax--) {
          const k = rest % cs[ax]!;
          rest = Math.floor(rest / cs[ax]!);
          oc += k * sc[ax]!;
          oa += k * sa[ax]!;
          ob += k * sb[ax]!;
        }
        dims.push(kc[oc] !== 0 ? ka[oa]! : kb[ob]!);
      }
      return [{ dtype, shape, dims }];
    }
    return [{ dtype, shape }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const c = args.tensor("condition");
    const a = args.tensor("true_value");
    const b = args.tensor("false_value");
    const dtype = unifyDtypes(a, b);
    const shape = broadcastShapes(broadcastShapes(c.shape, a.shape), b.shape) as number[];
    const n = volume(shape);
    const out = alloc(dtype, n);
    const [dc, da, db] = [numeric(c), numeric(a), numeric(b)];
    const sc = broadcastStrides(c.shape, shape);
    const sa = broadcastStrides(a.shape, shape);
    const sb = broadcastStrides(b.shape, shape);
    const rank = shape.length;
    const idx = new Array<number>(rank).fill(0);
    let [oc, oa, ob] = [0, 0, 0];
    for (let o = 0; o < n; o++) {
      out[o] = dc[oc] ? da[oa]! : db[ob]!;
      for (let ax = rank - 1; ax >= 0; ax--) {
        idx[ax]!++;
        oc += sc[ax]!;
        oa += sa[ax]!;
        ob += sb[ax]!;
        if (idx[ax]! < shape[ax]!) break;
        oc -= sc[ax]! * shape[ax]!;
        oa -= sa[ax]! * shape[ax]!;
        ob -= sb[ax]! * shape[ax]!;
        idx[ax] = 0;
      }
    }
    return [finish(tensor(dtype, shape, out))];
  },
};
