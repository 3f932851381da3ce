/**
 * Weights placed straight into their final memory as they arrive: each large variable gets
 * its slot (in the WASM kernels' memory, or a buffer of its own) before its bytes are
 * requested, the archive loader writes the `.dat` member (header and payload) into it, and
 * the runtime tensor is a view of the payload. Small variables (scalars, norms, inv_freq...)
 * are read first and decoded normally, since load-time folding needs their values.
 */
import type { Document, Invocation, RValue } from "../nnef/ast.ts";
import type { LoadTarget } from "../nnef/loader.ts";
import type { ModelStream } from "../nnef/member_stream.ts";
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

/**
 * Whether a variable of this shape is read first and decoded rather than placed in the kernels'
 * memory: at most `EAGER_MAX_ITEMS` items, or a vector of any size (norm weights, biases and
 * inv_freq are captured by fused ops when the graph is compiled).
 */
export function readsEagerly(shape: readonly number[]): boolean {
  return volume(shape) <= EAGER_MAX_ITEMS || shape.filter((d) => d > 1).length < 2;
}

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

/** Calls `visit` on every invocation in `r`, outer before inner. */
function eachInvocation(r: RValue, visit: (inv: Invocation) => void): void {
  if (r.kind === "invocation") {
    visit(r.invocation);
    for (const a of r.invocation.args) eachInvocation(a.value, visit);
  } else if (r.kind === "array" || r.kind === "tuple") {
    for (const item of r.items) eachInvocation(item, visit);
  } else if (r.kind === "binary") {
    eachInvocation(r.left, visit);
    eachInvocation(r.right, visit);
  }
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
  const visit = (inv: Invocation): void => {
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
  };
  for (const s of doc.graph.body) eachInvocation(s.right, visit);
  for (const f of doc.fragments) for (const s of f.body ?? []) eachInvocation(s.right, visit);
  return [...out.values()];
}

/**
 * What the weight placement needs of an archive: a `ModelStream`, or an archive's loader, which
 * has no `onMember` hook.
 */
export type WeightSource = Omit<ModelStream, "onMember"> & Partial<Pick<ModelStream, "onMember">>;

type Plan = { readonly kind: "f32" | "q40"; readonly items: number } | null;

/** How a variable of `size` member bytes is placed: a view of its slot, or read and decoded. */
function planOf(decl: VariableDecl, size: number): Plan {
  if (decl.shape === null || decl.generic === "integer" || decl.generic === "logical") return null;
  if (readsEagerly(decl.shape)) return null;
  const items = volume(decl.shape);
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

/** Where a member's bytes go: a slot in the kernels' memory or a buffer of its own. */
interface Slot {
  readonly bytes: () => Uint8Array;
  /** Byte offset of the slot in the kernels' memory, or null for a buffer of its own. */
  readonly at: number | null;
}

/** A slot of `bytes` (header and payload; in the kernels, the payload 128-byte aligned). */
function allocSlot(kernels: Kernels | null, bytes: number): Slot {
  if (kernels) {
    // The 128-byte header fills the start of an aligned slot, so the payload is aligned.
    const at = kernels.allocWeights(bytes, PAYLOAD_ALIGN).offset;
    return { bytes: () => kernels.u8(at, bytes), at };
  }
  const own = new Uint8Array(bytes);
  return { bytes: () => own, at: null };
}

/** The tensor viewing the payload of `slot` as planned. */
function slotTensor(
  slot: Slot,
  kernels: Kernels | null,
  plan: NonNullable<Plan>,
  shape: readonly number[],
  bytes: number,
): Tensor {
  let t: Tensor;
  if (kernels && slot.at !== null) {
    const payloadAt = slot.at + TENSOR_HEADER_BYTES;
    t = kernelsTensor(kernels, plan.kind, shape, payloadAt, bytes - TENSOR_HEADER_BYTES);
    PLACED.set(t, { kernels, offset: payloadAt, layout: "ggml" });
  } else {
    const own = slot.bytes();
    const data = plan.kind === "f32"
      ? new Float32Array(own.buffer, own.byteOffset + TENSOR_HEADER_BYTES, plan.items)
      : own.subarray(TENSOR_HEADER_BYTES);
    t = { dtype: plan.kind, shape, data };
  }
  ROOT.set(t, t);
  return t;
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
  let slot: Slot | null = null;
  let plan: Plan = null;
  let buffer: Uint8Array | null = null;
  const prepare = (bytes: number): void => {
    plan = planOf(decl, bytes);
    if (plan === null) {
      buffer = new Uint8Array(bytes);
      return;
    }
    slot = allocSlot(kernels, bytes);
    placedTensor = slotTensor(slot, kernels, plan, shape, bytes);
  };
  if (size !== undefined) prepare(size);
  const target: LoadTarget = (bytes: number): Uint8Array => {
    if (size === undefined && slot === null && buffer === null) prepare(bytes);
    return slot ? slot.bytes() : buffer!;
  };
  // Placed weights wait for `after` (the small variables go first, alone on the wire).
  const loaded = size !== undefined && plan !== null && after
    ? after.then(() => source.load(member, target, { priority }))
    : source.load(member, target, { priority: plan === null ? -1 : priority });
  const value = loaded.then((): Tensor | TensorFile => {
    if (plan !== null) {
      checkPlaced(member, plan, slot!.bytes());
      return placedTensor!;
    }
    return readTensorFile(buffer!, member);
  });
  return settleLoad(decl.label, member, value, placedTensor);
}

/** A `WeightLoad` of `value`; a placed tensor is pending until its value resolves. */
function settleLoad(
  label: string,
  member: string,
  value: Promise<Tensor | TensorFile>,
  placedTensor: Tensor | null,
): WeightLoad {
  // Failures surface through `value` (or the model's weightsReady), not as unhandled.
  value.catch(() => {});
  const placed = placedTensor === null ? null : {
    tensor: placedTensor,
    arrived: value.then(() => {}),
  };
  if (placed) setPending(placed.tensor, placed.arrived);
  return { label, member, value, placed };
}

/**
 * The plan of a large variable whose member has not reached the stream yet, from the graph
 * alone: t2n writes Q4_0 variables without a generic type and f32 ones as `variable<scalar>`.
 * Null when the graph does not say (the variable is then read before the graph is built).
 */
function predictedPlan(decl: VariableDecl, open: ReadonlySet<string>): Plan {
  if (decl.shape === null || (decl.generic !== null && decl.generic !== "scalar")) return null;
  if (decl.generic === "scalar" && open.has(decl.label)) return null;
  if (readsEagerly(decl.shape)) return null;
  const items = volume(decl.shape);
  if (decl.generic === null) return items % 32 === 0 ? { kind: "q40", items } : null;
  return { kind: "f32", items };
}

/**
 * Labels of variables whose float type the graph leaves open (not to be assumed f32): every
 * one when `text` names another float type (f16, bf16, f64), else those `tract_core_cast`
 * reads (how the converter writes f16 weights).
 */
export function openFloatLabels(doc: Document, text: string): Set<string> {
  if (/\b(b?f16|f64)\b/.test(text)) return new Set(variableDecls(doc).map((d) => d.label));
  const labelOf = new Map<string, string>();
  const cast: string[] = [];
  const visit = (inv: Invocation): void => {
    const first = inv.args[0]?.value;
    if (inv.op === "tract_core_cast" && first?.kind === "identifier") cast.push(first.name);
  };
  for (const s of doc.graph.body) {
    const r = s.right;
    if (r.kind === "invocation" && r.invocation.op === "variable" && s.left.kind === "identifier") {
      const label = r.invocation.args.find((a) => a.name === "label")?.value ??
        r.invocation.args[1]?.value;
      if (label?.kind === "literal" && label.literal.kind === "string") {
        labelOf.set(s.left.name, label.literal.value);
      }
    }
    eachInvocation(r, visit);
  }
  return new Set(cast.flatMap((id) => labelOf.get(id) ?? []));
}

/** Bytes of a `.dat` member holding `plan`. */
function planBytes(plan: NonNullable<Plan>): number {
  return TENSOR_HEADER_BYTES + (plan.kind === "f32" ? plan.items * 4 : (plan.items / 32) * 18);
}

/** Members at most this size that reach the stream before the graph go to a buffer of their own. */
const EARLY_SMALL_BYTES = TENSOR_HEADER_BYTES + (EAGER_MAX_ITEMS / 32) * 18;

/** A `.dat` member taken from the stream before the graph said which variable it holds. */
interface EarlyMember {
  readonly size: number;
  /** Began after graph.nnef: held to the graph's prediction, as if bound before it arrived. */
  readonly afterGraph: boolean;
  readonly slot: Slot;
  readonly arrived: Promise<void>;
}

/**
 * Weights of a `.tgz` stream placed as its members come, in whatever order the archive has:
 * a `.dat` member that passes before the graph is known goes into a slot sized from its member
 * size (its final place) and is bound to its variable once the graph is parsed; after that,
 * each variable's member is claimed before it arrives (large ones in a slot sized from the
 * graph's shape and dtype, see `predictedPlan`). Every byte is written once.
 */
export class StreamPlacement {
  readonly #source: WeightSource;
  readonly #kernels: Kernels | null;
  readonly #early = new Map<string, EarlyMember>();
  readonly #claimed = new Set<string>();
  readonly #seen = new Set<string>();
  #bound = false;
  #afterGraph = false;

  constructor(source: WeightSource, kernels: Kernels | null) {
    this.#source = source;
    this.#kernels = kernels;
    if (source.onMember === undefined) {
      throw new TypeError(`${source.name}: a lazy placement needs a stream with onMember`);
    }
    // Taken as each member begins, so its bytes go straight into the slot. A stream failure
    // reaches every load still waiting on it.
    source.onMember((m) => {
      this.#seen.add(m.name);
      if (m.name === "graph.nnef") this.#afterGraph = true;
      if (this.#bound || !m.name.endsWith(".dat") || this.#claimed.has(m.name)) return undefined;
      const slot = m.size > EARLY_SMALL_BYTES
        ? allocSlot(this.#kernels, m.size)
        : allocSlot(null, m.size);
      this.#claimed.add(m.name);
      const afterGraph = this.#afterGraph;
      return {
        target: () => slot.bytes(),
        arrived: (arrived: Promise<void>) => {
          arrived.catch(() => {});
          this.#early.set(m.name, { size: m.size, afterGraph, slot, arrived });
        },
      };
    });
  }

  /** True when the stream has reached member `name` so far. */
  seen(name: string): boolean {
    return this.#seen.has(name);
  }

  /**
   * Binds the graph's variables to their members: those passed already, and those to come
   * (`open`: labels not to be assumed f32, see `openFloatLabels`; they are read, not placed
   * ahead).
   */
  bind(decls: readonly VariableDecl[], open: ReadonlySet<string>): WeightLoad[] {
    this.#bound = true;
    const loads: WeightLoad[] = [];
    for (const decl of decls) {
      const member = `${decl.label.replace(/^\//, "")}.dat`;
      const shape = decl.shape ?? [];
      const early = this.#early.get(member);
      const predicted = early?.afterGraph ? predictedPlan(decl, open) : null;
      if (early && predicted !== null && planBytes(predicted) !== early.size) {
        const bytes = planBytes(predicted);
        const t = slotTensor(allocSlot(null, bytes), null, predicted, shape, bytes);
        const value = early.arrived.then(() => {
          throw sizeMismatch(member, early.size, decl, predicted, bytes);
        });
        loads.push(settleLoad(decl.label, member, value, t));
        continue;
      }
      if (early) {
        const plan = planOf(decl, early.size);
        const { slot } = early;
        if (plan === null) {
          // Decoded: a copy out of the kernels' memory, whose views move when it grows.
          const value = early.arrived.then(() =>
            readTensorFile(slot.at === null ? slot.bytes() : slot.bytes().slice(), member)
          );
          loads.push(settleLoad(decl.label, member, value, null));
          continue;
        }
        const t = slotTensor(
          slot,
          slot.at === null ? null : this.#kernels,
          plan,
          shape,
          early.size,
        );
        const value = early.arrived.then(() => {
          checkPlaced(member, plan, slot.bytes());
          return t;
        });
        loads.push(settleLoad(decl.label, member, value, t));
        continue;
      }
      if (this.#claimed.has(member)) continue;
      this.#claimed.add(member);
      const plan = predictedPlan(decl, open);
      if (plan === null) {
        loads.push(loadWeight(this.#source, decl, member, undefined, 0, this.#kernels));
        continue;
      }
      const bytes = planBytes(plan);
      const slot = allocSlot(this.#kernels, bytes);
      const t = slotTensor(slot, this.#kernels, plan, shape, bytes);
      const target: LoadTarget = (size: number): Uint8Array => {
        if (size !== bytes) throw sizeMismatch(member, size, decl, plan, bytes);
        return slot.bytes();
      };
      const value = this.#source.load(member, target).then(() => {
        checkPlaced(member, plan, slot.bytes());
        return t;
      });
      loads.push(settleLoad(decl.label, member, value, t));
    }
    return loads;
  }
}

/** A member whose size is not what the graph's declaration predicted. */
function sizeMismatch(
  member: string,
  size: number,
  decl: VariableDecl,
  plan: NonNullable<Plan>,
  bytes: number,
): RangeError {
  return new RangeError(
    `${member}: ${size} bytes, the graph's ${
      decl.generic === null ? "variable" : `variable<${decl.generic}>`
    } of shape [${decl.shape ?? []}] says ${plan.kind} in ${bytes} bytes`,
  );
}

/** Marks a placed weight as pending until `ready` (e.g. arrival then interleaving). */
export function setPending(t: Tensor, ready: Promise<void>): void {
  PENDING.set(t, ready);
  ready.then(() => {
    if (PENDING.get(t) === ready) PENDING.delete(t);
  }, () => {});
}
