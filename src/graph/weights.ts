/**
 * Weights placed straight into their final memory as they arrive: each large variable gets
 * its slot (in the WASM kernels' memory, or a buffer of its own) before its bytes are
 * requested, the archive loader writes the `.dat` member (header and payload) into it, and
 * the runtime tensor is a view of the payload. Small variables (scalars, norms, inv_freq...)
 * are read first and decoded normally, since load-time folding needs their values.
 */
import type { Document, RValue } from "../nnef/ast.ts";
import type { ArchiveMember } from "../nnef/archive.ts";
import type { LoaderStats, LoadTarget, MemberLoadOptions } from "../nnef/loader.ts";
import { legacyQ40ToGgml } from "../nnef/q40.ts";
import {
  readTensorFile,
  readTensorHeader,
  TENSOR_HEADER_BYTES,
  type TensorFile,
} from "../nnef/tensor_file.ts";
import { type Tensor, volume } from "../tensor/tensor.ts";
import type { Kernels, Q4Layout } from "../../kernels/mod.ts";

/**
 * Variables of at most this many items (and vectors of any size) are read first and decoded:
 * load-time folding and fused ops may need their values.
 */
export const EAGER_MAX_ITEMS = 4096;

/** Payload alignment of a weight placed in the kernels' memory. */
const PAYLOAD_ALIGN = 128;

const PENDING = new WeakMap<Tensor, Promise<void>>();
const PLACED = new WeakMap<Tensor, KernelWeight>();
/** Placed weights and views of them -> the placed weight. */
const ROOT = new WeakMap<Tensor, Tensor>();

/** Where a weight tensor lives in the kernels' memory. */
export interface KernelWeight {
  readonly kernels: Kernels;
  /** Byte offset of the payload (128-byte aligned). */
  readonly offset: number;
  /** Q4_0 block order: `rows8` once interleaved in place for the kernels' matmul. */
  layout: Q4Layout;
}

/** The kernels slot of a weight loaded into the kernels' memory, if it was. */
export function kernelWeight(t: Tensor): KernelWeight | undefined {
  return PLACED.get(t);
}

/** A promise for a weight (or a view of one) whose bytes have not all arrived, else undefined. */
export function pendingWeight(t: Tensor): Promise<void> | undefined {
  return PENDING.get(ROOT.get(t) ?? t);
}

/** The placed weight `t` is or views, else undefined. */
export function weightRoot(t: Tensor): Tensor | undefined {
  return ROOT.get(t);
}

/**
 * The placed weight `t` (or a view of it) with another shape of the same items, reading the
 * same bytes (load-time reshape/unsqueeze of a weight, which must follow its slot).
 */
export function weightView(t: Tensor, shape: readonly number[]): Tensor {
  const root = ROOT.get(t) ?? t;
  const view: Tensor = {
    dtype: t.dtype,
    shape,
    get data() {
      return root.data;
    },
  };
  ROOT.set(view, root);
  const placed = PLACED.get(root);
  if (placed) PLACED.set(view, placed);
  return view;
}

/** A `variable` declaration of the graph. */
export interface VariableDecl {
  readonly label: string;
  /** Null when the shape is not a literal (then the variable is read and decoded normally). */
  readonly shape: readonly number[] | null;
  /** The generic type argument (`scalar`, `integer`, `logical`) or null. */
  readonly generic: string | null;
}

/** The `variable` declarations of a document, in first-appearance order, one per label. */
export function variableDecls(doc: Document): VariableDecl[] {
  const out = new Map<string, VariableDecl>();
  const literalInts = (r: RValue | undefined): number[] | null => {
    if (!r || r.kind !== "array") return null;
    const dims: number[] = [];
    for (const item of r.items) {
      if (item.kind !== "literal" || item.literal.kind !== "number") return null;
      dims.push(Number(item.literal.value));
    }
    return dims;
  };
  const visit = (r: RValue): void => {
    if (r.kind === "invocation") {
      const inv = r.invocation;
      if (inv.op === "variable") {
        const arg = inv.args.find((a) => a.name === "label") ??
          (inv.args[1]?.name === null ? inv.args[1] : undefined);
        const shapeArg = inv.args.find((a) => a.name === "shape") ??
          (inv.args[0]?.name === null ? inv.args[0] : undefined);
        if (arg && arg.value.kind === "literal" && arg.value.literal.kind === "string") {
          const label = arg.value.literal.value;
          if (!out.has(label)) {
            out.set(label, { label, shape: literalInts(shapeArg?.value), generic: inv.generic });
          }
        }
      }
      inv.args.forEach((a) => visit(a.value));
    } else if (r.kind === "array" || r.kind === "tuple") r.items.forEach(visit);
    else if (r.kind === "binary") {
      visit(r.left);
      visit(r.right);
    }
  };
  for (const s of doc.graph.body) visit(s.right);
  for (const f of doc.fragments) for (const s of f.body ?? []) visit(s.right);
  return [...out.values()];
}

/** What the weight placement needs of an archive (a `ModelStream` or an archive's loader). */
export interface WeightSource {
  readonly name: string;
  readonly kind: "folder" | "tar" | "tgz";
  members(): AsyncIterable<ArchiveMember>;
  load(name: string, target: LoadTarget, options?: MemberLoadOptions): Promise<void>;
  read(name: string): Promise<Uint8Array>;
  /** Moves a member's pending ranges to `priority` (no effect on a `.tgz` stream). */
  prioritize(name: string, priority?: number): void;
  readonly stats: LoaderStats;
  close(): Promise<void>;
}

type Plan = { readonly kind: "f32" | "q40"; readonly items: number } | null;

/** How a variable of `size` member bytes is placed: a view of its slot, or read and decoded. */
function planOf(decl: VariableDecl, size: number): Plan {
  if (decl.shape === null || decl.generic === "integer" || decl.generic === "logical") return null;
  const items = volume(decl.shape);
  // Vectors (norm weights, biases, inv_freq) are captured by fused ops when the graph is
  // compiled: they are read first whatever their size.
  if (items <= EAGER_MAX_ITEMS || decl.shape.filter((d) => d > 1).length < 2) return null;
  const payload = size - TENSOR_HEADER_BYTES;
  if (payload === items * 4) return { kind: "f32", items };
  if (items % 32 === 0 && payload === (items / 32) * 18) return { kind: "q40", items };
  return null;
}

/** One variable being loaded. */
export interface WeightLoad {
  readonly label: string;
  readonly member: string;
  /** Resolves with the tensor (placed weights: a view of their slot) or the decoded file. */
  readonly value: Promise<Tensor | TensorFile>;
  /** For placed weights, the tensor (usable before its bytes arrived) and its arrival. */
  readonly placed: { readonly tensor: Tensor; readonly arrived: Promise<void> } | null;
}

/** A view of `items` of `kind` at byte `offset` of the kernels' memory, refreshed after growth. */
function kernelsTensor(
  kernels: Kernels,
  kind: "f32" | "q40",
  shape: readonly number[],
  offset: number,
  bytes: number,
): Tensor {
  let view: Float32Array | Uint8Array | null = null;
  const data = (): Float32Array | Uint8Array => {
    if (view === null || view.buffer !== kernels.memory.buffer) {
      view = kind === "f32" ? kernels.f32(offset, bytes / 4) : kernels.u8(offset, bytes);
    }
    return view;
  };
  return {
    dtype: kind,
    shape,
    get data() {
      return data();
    },
  };
}

/** Checks the header written into a placed weight against its plan; converts legacy Q4_0. */
function checkPlaced(member: string, plan: NonNullable<Plan>, bytes: Uint8Array): void {
  const h = readTensorHeader(bytes.subarray(0, TENSOR_HEADER_BYTES), member);
  const ok = volume(h.dims) === plan.items &&
    (plan.kind === "f32"
      ? h.layout === "plain" && h.dtype === "f32"
      : h.layout === "q40" || h.layout === "q40_legacy");
  if (!ok) {
    throw new RangeError(
      `${member}: header says ${h.dtype} (${h.layout}) of dims [${h.dims}], ` +
        `its size says ${plan.kind} of ${plan.items} items`,
    );
  }
  if (h.layout === "q40_legacy") {
    const payload = bytes.subarray(TENSOR_HEADER_BYTES);
    payload.set(legacyQ40ToGgml(payload));
  }
}

/**
 * Starts loading `decl` from member `member`: placed when it is a large f32 or Q4_0 tensor
 * (into `kernels` when given), else read into a buffer of its own and decoded. `size` is the
 * member's size when known up front (tar, folder); without it (a `.tgz` stream) the slot is
 * chosen when the member's size is known, and `placed` is null. Placed weights of known size
 * are requested once `after` resolves.
 */
export function loadWeight(
  source: WeightSource,
  decl: VariableDecl,
  member: string,
  size: number | undefined,
  priority: number,
  kernels: Kernels | null,
  after?: Promise<void>,
): WeightLoad {
  const shape = decl.shape ?? [];
  let placedTensor: Tensor | null = null;
  let slot: (() => Uint8Array) | null = null;
  let plan: Plan = null;
  let buffer: Uint8Array | null = null;
  const prepare = (bytes: number): void => {
    plan = planOf(decl, bytes);
    if (plan === null) {
      buffer = new Uint8Array(bytes);
      return;
    }
    const payloadBytes = bytes - TENSOR_HEADER_BYTES;
    if (kernels) {
      // The 128-byte header fills the start of an aligned slot, so the payload is aligned.
      const k = kernels;
      const at = k.allocWeights(bytes, PAYLOAD_ALIGN).offset;
      slot = () => k.u8(at, bytes);
      placedTensor = kernelsTensor(k, plan.kind, shape, at + TENSOR_HEADER_BYTES, payloadBytes);
      PLACED.set(placedTensor, { kernels: k, offset: at + TENSOR_HEADER_BYTES, layout: "ggml" });
    } else {
      const own = new Uint8Array(bytes);
      slot = () => own;
      const data = plan.kind === "f32"
        ? new Float32Array(own.buffer, TENSOR_HEADER_BYTES, plan.items)
        : own.subarray(TENSOR_HEADER_BYTES);
      placedTensor = { dtype: plan.kind, shape, data };
    }
    ROOT.set(placedTensor, placedTensor);
  };
  if (size !== undefined) prepare(size);
  const target: LoadTarget = (bytes: number): Uint8Array => {
    if (size === undefined && slot === null && buffer === null) prepare(bytes);
    return slot ? slot() : buffer!;
  };
  // Placed weights wait for `after` (the small variables go first, alone on the wire).
  const loaded = size !== undefined && plan !== null && after
    ? after.then(() => source.load(member, target, { priority }))
    : source.load(member, target, { priority: plan === null ? -1 : priority });
  const value = loaded.then((): Tensor | TensorFile => {
    if (plan !== null) {
      checkPlaced(member, plan, slot!());
      return placedTensor!;
    }
    return readTensorFile(buffer!, member);
  });
  // Failures surface through `value` (or the model's weightsReady), not as unhandled.
  value.catch(() => {});
  const placed = placedTensor === null ? null : {
    tensor: placedTensor as Tensor,
    arrived: value.then(() => {}),
  };
  if (placed) setPending(placed.tensor, placed.arrived);
  return { label: decl.label, member, value, placed };
}

/** Marks a placed weight as pending until `ready` (e.g. arrival then interleaving). */
export function setPending(t: Tensor, ready: Promise<void>): void {
  PENDING.set(t, ready);
  ready.then(() => {
    if (PENDING.get(t) === ready) PENDING.delete(t);
  }, () => {});
}
