/**
 * Loads an NNEF model from an archive or a member stream: `graph.nnef` first, then the small
 * variables, then the weights placed into memory as they arrive (see `weights.ts`).
 */
import { parseDocument } from "../nnef/parse.ts";
import type { Archive } from "../nnef/archive.ts";
import type { TensorFile } from "../nnef/tensor_file.ts";
import type { LoaderOptions } from "../nnef/loader.ts";
import { archiveStream, type ModelStreamOptions, openModelStream } from "../nnef/model_stream.ts";
import type { ModelStream } from "../nnef/member_stream.ts";
import type { ByteSource } from "../storage/byte_source.ts";
import type { Kernels } from "../../kernels/mod.ts";
import { type Q4Matrix, type Q4Tuning, tuneQ4 } from "../../kernels/q4_tuning.ts";
import { gatherFromRows8 } from "../ops/tract_core_gather.ts";
import type { Tensor } from "../tensor/tensor.ts";
import {
  kernelWeight,
  loadWeight,
  openFloatLabels,
  setPending,
  StreamPlacement,
  variableDecls,
  type WeightLoad,
  weightRoot,
} from "./weights.ts";
import { validateGraph } from "./validate.ts";
import { argTensorIds } from "./graph.ts";
import type { Model } from "./model.ts";
import { buildModel, type BuildOptions } from "./build_model.ts";

/** Options of {@link loadModel}. */
export interface LoadOptions extends BuildOptions {
  /**
   * Load the large weights straight into these kernels' memory (Q4_0 linear filters are
   * interleaved there for the kernels' matmul; such a model runs only in sessions over these
   * kernels). Default: a buffer of their own per weight, readable by the TS path.
   */
  readonly kernels?: Kernels | false;
  /**
   * Resolve as soon as the graph is built, before the weights arrived (default false): await
   * `model.weightsReady`, or run the first steps with `Session.prefillAsync`, which waits
   * per node for the weights it reads.
   */
  readonly lazy?: boolean;
  /** Range reads of the loader (ranges in flight, part size, coalescing). */
  readonly loader?: LoaderOptions;
  /** How a location is opened (HTTP retries, S3 credentials, cache). */
  readonly open?: ModelStreamOptions;
}
/** The member of `label`: `label.dat`, or without a leading `/`, when the archive lists it. */
function memberOf(label: string, sizes: ReadonlyMap<string, number> | null): string | undefined {
  const plain = `${label}.dat`;
  const stripped = `${label.replace(/^\//, "")}.dat`;
  if (sizes === null) return stripped;
  return sizes.has(plain) ? plain : sizes.has(stripped) ? stripped : undefined;
}

/**
 * The placed weights read at run time as the filter of a `linear` node, and those read by
 * anything else (or that are graph outputs): a weight only in the first set may be laid out
 * for the kernels' matmul alone.
 */
function weightReaders(model: Model): { linear: Set<Tensor>; other: Set<Tensor> } {
  const linear = new Set<Tensor>();
  const other = new Set<Tensor>();
  // A gather of rows of the weight itself reads the rows8 layout too (a tied classifier).
  const gathersRows = (node: Model["nodes"][number], k: string, id: number, root: Tensor) => {
    const axis = node.args.get("axis");
    return node.name === "tract_core_gather" && k === "input" && root.shape.length === 2 &&
      model.values[id]!.fact.value === root && axis?.kind === "attr" && axis.value === 0;
  };
  const rootOf = (id: number): Tensor | undefined => {
    const v = model.values[id]!.fact.value;
    return v && weightRoot(v);
  };
  for (const node of model.nodes) {
    // Folded at load time (views of a weight): never runs.
    if (node.outputs.every((o) => model.values[o]!.fact.value !== undefined)) continue;
    for (const [k, a] of node.args) {
      for (const id of argTensorIds(a)) {
        const root = rootOf(id);
        if (!root || gathersRows(node, k, id, root)) continue;
        (node.name === "linear" && k === "filter" ? linear : other).add(root);
      }
    }
  }
  for (const o of model.outputs) {
    const root = rootOf(o.id);
    if (root) other.add(root);
  }
  return { linear, other };
}

/**
 * Loads an NNEF model: a folder, `.tar` or `.tgz` path or URL (`http(s)://`, `s3://`), a
 * `ByteSource`, an opened `Archive`, or a `ModelStream` from `openModelStream` (e.g. one whose
 * other members the caller claims through `onMember`). What loadModel opens it closes once the
 * last weight is in (or the load failed); a given `Archive` or `ModelStream` is left open, for
 * the caller to close once `model.weightsReady` settled (`options.loader` and `options.open`
 * apply only to what loadModel opens; `model.loadStats` counts all the stream wrote, members
 * the caller claimed included). Reads `graph.nnef` first, then the small
 * variables (decoded: folding needs them), then the large weights in the order the graph
 * declares them, several ranges in flight, each written once straight into its final place
 * (`options.kernels`' memory, or a buffer of its own) and used in place as the tensor's data.
 * A `.tgz` location is streamed once, each weight written into place as its member passes;
 * with `options.lazy` the graph is built once `graph.nnef` and the small variables passed,
 * and the large weights still in the stream are waited for per node.
 *
 * With `options.lazy`, resolves once the graph is built: `model.weightsReady` resolves when
 * the last weight is in place, and `Session.prefillAsync` runs meanwhile, each node waiting
 * only for the weights it reads.
 *
 * @example
 * ```ts ignore
 * const model = await loadModel("stories260K_f32.nnef.tgz");
 * console.log(model.inputs.map((i) => i.name));
 * ```
 */
export async function loadModel(
  source: string | ByteSource | Archive | ModelStream,
  options: LoadOptions = {},
): Promise<Model> {
  const t0 = performance.now();
  const archive = typeof source === "object" && "loader" in source ? source : undefined;
  const stream = typeof source === "object" && "onMember" in source ? source : undefined;
  const weights: ModelStream = stream ??
    (archive
      ? archiveStream(archive, {
        ...(options.loader ? { loader: options.loader } : {}),
        owns: false,
      })
      : await openModelStream(source as string | ByteSource, {
        ...options.open,
        ...(options.loader ? { loader: options.loader } : {}),
      }));
  const kernels = options.kernels || null;
  const loads: WeightLoad[] = [];
  let closed = false;
  const close = async (reason?: Error): Promise<void> => {
    if (closed || stream) return;
    closed = true;
    await weights.close(reason);
  };
  try {
    const file = options.file ?? `${weights.name}/graph.nnef`;
    // Sizes up front for a range-readable archive; a `.tgz` stream learns them as it flows.
    let sizes: Map<string, number> | null = null;
    if (weights.kind !== "tgz" || archive) {
      sizes = new Map();
      for await (const m of weights.members()) sizes.set(m.name, m.size);
      if (!sizes.has("graph.nnef")) throw new RangeError(`${weights.name} has no graph.nnef`);
    }
    // A lazy `.tgz` stream: weights passing before the graph go to slots of their own size,
    // bound to their variables once it is parsed; the graph is built before the rest arrive.
    const placement = sizes === null && options.lazy ? new StreamPlacement(weights, kernels) : null;
    const text = new TextDecoder().decode(await weights.read("graph.nnef"));
    const doc = parseDocument(text, file);
    // Before any weight is read: a graph that names what does not exist fails at once.
    validateGraph(doc, file);
    let smallDone!: () => void;
    const small = new Promise<void>((resolve) => (smallDone = resolve));
    if (placement) loads.push(...placement.bind(variableDecls(doc), openFloatLabels(doc, text)));
    else {
      variableDecls(doc).forEach((decl, i) => {
        const member = memberOf(decl.label, sizes);
        if (member === undefined) return;
        loads.push(loadWeight(weights, decl, member, sizes?.get(member), i, kernels, small));
      });
    }
    const tensors = new Map<string, TensorFile | Tensor>();
    const settling = Promise.all(
      loads.map((l) => l.placed ? Promise.resolve(l.placed.tensor) : l.value),
    );
    settling.then(() => smallDone(), () => smallDone());
    const settled = await settling;
    loads.forEach((l, i) => tensors.set(l.label, settled[i]!));
    // Graph quantization (u8/i8 with zero points) is not implemented: refuse such graphs
    // with that reason, unless an unsupported operator already says more.
    if (sizes === null && placement === null) {
      sizes = new Map();
      for await (const m of weights.members()) sizes.set(m.name, m.size);
    }
    // A lazy stream knows only the members passed so far: a graph.quant passing later, before
    // the last weight, fails weightsReady.
    const hasQuant = placement ? placement.seen("graph.quant") : sizes!.has("graph.quant");
    const quant = hasQuant
      ? new TextDecoder().decode(await weights.read("graph.quant")).trim()
      : "";
    const refuse = (): never => {
      throw new TypeError(
        `${weights.name}: unsupported graph.quant quantization (zero-point/scale tensors are not implemented)`,
      );
    };
    let model: Model;
    try {
      model = buildModel(doc, tensors, { file });
    } catch (e) {
      if (quant !== "" && !(e instanceof Error && e.message.includes("unsupported operator"))) {
        refuse();
      }
      throw e;
    }
    if (quant !== "") refuse();
    const graphMs = performance.now() - t0;
    model.weightKernels = kernels;
    // Declaration order started the loads; what is not requested yet follows first use.
    const memberOfTensor = new Map<Tensor, string>();
    for (const l of loads) if (l.placed) memberOfTensor.set(l.placed.tensor, l.member);
    let rank = 0;
    for (const node of model.nodes) {
      for (const a of node.args.values()) {
        for (const id of argTensorIds(a)) {
          const v = model.values[id]!.fact.value;
          const root = v && weightRoot(v);
          const member = root && memberOfTensor.get(root);
          if (member === undefined) continue;
          weights.prioritize(member, rank++);
          memberOfTensor.delete(root!);
        }
      }
    }
    const { linear, other } = weightReaders(model);
    const ready: Promise<void>[] = [];
    // The rows8 weights: the kernels time how to read them once they are in (below).
    const rows8: Q4Matrix[] = [];
    for (const [i, l] of loads.entries()) {
      // A `.tgz` stream's weights were placed as they came, and are all in already.
      const got = settled[i]!;
      const placed = l.placed ??
        ("header" in got ? null : { tensor: got, arrived: Promise.resolve() });
      if (!placed) continue;
      const t = placed.tensor;
      let arrival = placed.arrived;
      const slot = kernelWeight(t);
      if (
        slot && t.dtype === "q40" && t.shape.length === 2 && t.shape[1]! % 32 === 0 &&
        linear.has(t) && !other.has(t)
      ) {
        // Interleaved in place once arrived: only the kernels' matmul reads it from then on.
        slot.layout = "rows8";
        rows8.push({ offset: slot.offset, n: t.shape[0]!, k: t.shape[1]! });
        gatherFromRows8(t, slot.kernels, slot.offset);
        model.kernelOnly = true;
        arrival = arrival.then(() => {
          slot.kernels.interleaveQ4_0Rows8(slot.offset, t.shape[0]!, t.shape[1]!);
        });
        setPending(t, arrival);
      }
      ready.push(arrival);
    }
    let weightsMs = NaN;
    let q4Tuning: Q4Tuning | null = null;
    model.loadStats = {
      get members() {
        return weights.stats.membersLoaded + 1;
      },
      get bytes() {
        return weights.stats.bytesWritten;
      },
      graphMs,
      get weightsMs() {
        return weightsMs;
      },
      get q4Tuning() {
        return q4Tuning;
      },
    };
    // A `.tgz` is whole only once its gzip trailer checked out, after its last member arrived.
    model.weightsReady = Promise.all([...ready, weights.ended]).then(
      async () => {
        weightsMs = performance.now() - t0;
        if (kernels && rows8.length > 0) q4Tuning = tuneQ4(kernels, rows8);
        await close();
        if (placement && !hasQuant && placement.seen("graph.quant")) refuse();
      },
      async (e) => {
        // The loads still pending fail saying which weight stopped the load.
        await close(e instanceof Error ? e : undefined).catch(() => {});
        throw e;
      },
    );
    model.weightsReady.catch(() => {});
    if (!options.lazy) await model.weightsReady;
    return model;
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}
