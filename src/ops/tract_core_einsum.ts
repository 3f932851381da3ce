import { type Tensor, tensor, volume } from "../tensor/tensor.ts";
import { type Dim, dimEquals, shapeToString } from "../tensor/dim.ts";
import type { Fact, Op, OpArgs } from "./op.ts";
import { contiguous, finish, type StridedTensor } from "./common.ts";
import { asF32 } from "./matmul.ts";

interface Spec {
  readonly inputs: readonly string[];
  readonly output: string;
}

/** Parses `"ab,bc->ac"`; without `->` the output is the sorted letters that appear once. */
export function parseEinsum(expr: string, count: number): Spec {
  const [lhs, rhs] = expr.replace(/\s+/g, "").split("->");
  const inputs = lhs!.split(",");
  if (inputs.length !== count) {
    throw new RangeError(
      `tract_core_einsum: '${expr}' names ${inputs.length} inputs, got ${count}`,
    );
  }
  let output = rhs;
  if (output === undefined) {
    const all = inputs.join("");
    output = [...new Set(all)].filter((c) => all.split(c).length === 2).sort().join("");
  }
  return { inputs, output };
}

function letterSizes<D extends Dim>(spec: Spec, shapes: readonly (readonly D[])[]): Map<string, D> {
  const sizes = new Map<string, D>();
  spec.inputs.forEach((axes, i) => {
    const shape = shapes[i]!;
    if (axes.length !== shape.length) {
      throw new RangeError(
        `tract_core_einsum: '${axes}' does not match shape ${shapeToString(shape)}`,
      );
    }
    [...axes].forEach((c, j) => {
      const d = shape[j]!;
      const prev = sizes.get(c);
      if (prev === undefined || prev === 1) sizes.set(c, d);
      else if (d !== 1 && !dimEquals(prev, d)) {
        throw new RangeError(`tract_core_einsum: axis '${c}' is both ${prev} and ${d}`);
      }
    });
  });
  return sizes;
}

/** The stride of each letter of `x` (letters `axes`): 0 on a unit axis, summed over repeats. */
function letterStrides(x: Tensor, axes: string): Map<string, number> {
  const st = new Map<string, number>();
  let s = 1;
  for (let j = axes.length - 1; j >= 0; j--) {
    const c = axes[j]!;
    st.set(c, (st.get(c) ?? 0) + (x.shape[j] === 1 ? 0 : s));
    s *= x.shape[j]!;
  }
  return st;
}

/** Copies `x` (letters `axes`) into the row-major order of `order` (absent letters: size 1). */
function permuted(
  x: Tensor,
  values: Float32Array,
  axes: string,
  order: readonly string[],
  sizes: ReadonlyMap<string, number>,
): Float32Array {
  const shape = order.map((c) => sizes.get(c)!);
  const st = letterStrides(x, axes);
  const walk = order.map((c) => st.get(c) ?? 0);
  const view: StridedTensor = { dtype: "f32", shape, data: values, strides: walk, offset: 0 };
  return contiguous(view).data as Float32Array;
}

/** True when `x` (letters `axes`) is already laid out in `order` with no broadcast axis. */
function inOrder(
  x: Tensor,
  axes: string,
  order: readonly string[],
  sizes: ReadonlyMap<string, number>,
): boolean {
  return axes === order.join("") && x.shape.every((d, i) => d === sizes.get(order[i]!));
}

/**
 * Two-input einsum as a batched matrix product: letters in both inputs and the output are
 * batch axes, in one input and the output are rows/columns, in both inputs only are summed.
 * Returns null for shapes this does not cover (the general loop handles them).
 */
function einsum2(
  spec: Spec,
  sizes: ReadonlyMap<string, number>,
  xs: readonly Tensor[],
  values: readonly Float32Array[],
): Float32Array | null {
  const [a, b] = spec.inputs as [string, string];
  if (new Set(a).size !== a.length || new Set(b).size !== b.length) return null;
  const out = [...spec.output];
  const batch = out.filter((c) => a.includes(c) && b.includes(c));
  const rows = out.filter((c) => a.includes(c) && !b.includes(c));
  const cols = out.filter((c) => b.includes(c) && !a.includes(c));
  const sum = [...a].filter((c) => b.includes(c) && !out.includes(c));
  if ([...a, ...b].some((c) => !out.includes(c) && !sum.includes(c))) return null;
  const size = (cs: readonly string[]): number => cs.reduce((p, c) => p * sizes.get(c)!, 1);
  const [nb, m, n, k] = [size(batch), size(rows), size(cols), size(sum)];
  const aOrder = [...batch, ...rows, ...sum];
  const av = inOrder(xs[0]!, a, aOrder, sizes)
    ? values[0]!
    : permuted(xs[0]!, values[0]!, a, aOrder, sizes); // (nb, m, k)
  const c = new Float32Array(nb * m * n); // (nb, m, n)
  const kn = [...batch, ...sum, ...cols];
  if (inOrder(xs[1]!, b, kn, sizes)) {
    const bv = values[1]!; // (nb, k, n)
    for (let z = 0; z < nb; z++) {
      for (let i = 0; i < m; i++) {
        const ao = (z * m + i) * k;
        const co = (z * m + i) * n;
        for (let p = 0; p < k; p++) {
          const x = av[ao + p]!;
          const bo = (z * k + p) * n;
          for (let j = 0; j < n; j++) c[co + j] = c[co + j]! + x * bv[bo + j]!;
        }
      }
    }
  } else {
    const nk = [...batch, ...cols, ...sum];
    const bv = inOrder(xs[1]!, b, nk, sizes)
      ? values[1]!
      : permuted(xs[1]!, values[1]!, b, nk, sizes); // (nb, n, k)
    for (let z = 0; z < nb; z++) {
      for (let i = 0; i < m; i++) {
        const ao = (z * m + i) * k;
        for (let j = 0; j < n; j++) {
          const bo = (z * n + j) * k;
          let acc = 0;
          for (let p = 0; p < k; p++) acc += av[ao + p]! * bv[bo + p]!;
          c[(z * m + i) * n + j] = acc;
        }
      }
    }
  }
  const order = [...batch, ...rows, ...cols];
  if (order.join("") === spec.output) return c;
  const shaped = tensor("f32", order.map((ch) => sizes.get(ch)!), c);
  return permuted(shaped, c, order.join(""), out, sizes);
}

/** `tract_core_einsum(inputs, expr, acc)`: a general sum of products, accumulated in f64. */
export const tractCoreEinsum: Op = {
  signature:
    "fragment tract_core_einsum(inputs: tensor<scalar>[], expr: string, acc: string = 'f32', output: string = '') -> (result: tensor<scalar>)",
  infer(args: OpArgs<Fact>): Fact[] {
    const xs = args.tensors("inputs");
    const spec = parseEinsum(args.str("expr"), xs.length);
    const sizes = letterSizes(spec, xs.map((x) => x.shape));
    return [{ dtype: xs[0]!.dtype, shape: [...spec.output].map((c) => sizes.get(c)!) }];
  },
  eval(args: OpArgs<Tensor>): Tensor[] {
    const xs = args.tensors("inputs");
    const spec = parseEinsum(args.str("expr"), xs.length);
    const sizes = letterSizes(spec, xs.map((x) => x.shape));
    const outLetters = [...spec.output];
    const sumLetters = [...sizes.keys()].filter((c) => !outLetters.includes(c));
    const outShape = outLetters.map((c) => sizes.get(c)!);
    const sumShape = sumLetters.map((c) => sizes.get(c)!);
    const values = xs.map(asF32);
    if (xs.length === 2) {
      const fast = einsum2(spec, sizes as Map<string, number>, xs, values);
      if (fast) return [finish(tensor(xs[0]!.dtype === "f16" ? "f16" : "f32", outShape, fast))];
    }
    // Per input, the stride of each letter (0 where absent or broadcast).
    const strideOf = xs.map((x, i) => letterStrides(x, spec.inputs[i]!));
    const outStrides = xs.map((_, i) => outLetters.map((c) => strideOf[i]!.get(c) ?? 0));
    const sumStrides = xs.map((_, i) => sumLetters.map((c) => strideOf[i]!.get(c) ?? 0));
    const nOut = volume(outShape);
    const nSum = volume(sumShape);
    const out = new Float32Array(nOut);
    const k = xs.length;
    const base = new Int32Array(k);
    const off = new Int32Array(k);
    const sumIdx = new Array<number>(sumShape.length).fill(0);
    for (let o = 0; o < nOut; o++) {
      let rest = o;
      base.fill(0);
      for (let ax = outShape.length - 1; ax >= 0; ax--) {
        const c = rest % outShape[ax]!;
        rest = Math.floor(rest / outShape[ax]!);
        for (let i = 0; i < k; i++) base[i]! += c * outStrides[i]![ax]!;
      }
      off.set(base);
      sumIdx.fill(0);
      let acc = 0;
      for (let s = 0; s < nSum; s++) {
        let p = 1;
        for (let i = 0; i < k; i++) p *= values[i]![off[i]!]!;
        acc += p;
        for (let ax = sumShape.length - 1; ax >= 0; ax--) {
          sumIdx[ax]!++;
          for (let i = 0; i < k; i++) off[i]! += sumStrides[i]![ax]!;
          if (sumIdx[ax]! < sumShape[ax]!) break;
          for (let i = 0; i < k; i++) off[i]! -= sumStrides[i]![ax]! * sumShape[ax]!;
          sumIdx[ax] = 0;
        }
      }
      out[o] = acc;
    }
    return [finish(tensor(xs[0]!.dtype === "f16" ? "f16" : "f32", outShape, out))];
  },
};
