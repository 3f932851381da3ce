/** What an NNEF model is: graph, symbols, IO signature, tensors, fragments and properties. */
import type { Archive } from "./archive.ts";
import type { Document, Extension, Invocation, RValue } from "./ast.ts";
import { formatRValue } from "./format.ts";
import { parseDocument } from "./parse.ts";
import { parseQuant } from "./quant.ts";
import { readTensorHeader, TENSOR_HEADER_BYTES } from "./tensor_file.ts";
import { isDType } from "../tensor/dtype.ts";

/** A graph input or output. */
export interface IoSummary {
  /** The name the graph declares. */
  readonly name: string;
  /** Integers, or symbol expressions as text (`"S"`, `"S + P"`); null when the graph does not say. */
  readonly shape: readonly (number | string)[] | null;
  /** `f32`, `i64`, … as the graph declares it; null when the graph does not say. */
  readonly dtype: string | null;
}

/** A `tract_assert` line; `scenario` is the name before `:` (`tg`, `pp`), if any. */
export interface AssertSummary {
  /** The scenario name, or null for an assert that always applies. */
  readonly scenario: string | null;
  /** The assertion as written. */
  readonly expr: string;
}

/** Tensor files of one item type. `bytes` counts payload bytes (headers excluded). */
export interface TensorTypeSummary {
  /** Tensor files of this type. */
  readonly count: number;
  /** Their payload bytes. */
  readonly bytes: number;
}

/** The result of `inspectModel`; plain data, ready for `JSON.stringify`. */
export interface ModelSummary {
  /** The archive's path or URL. */
  readonly archive: string;
  /** The graph's name. */
  readonly graph: string;
  /** The `version` of `graph.nnef`. */
  readonly nnefVersion: string;
  /** The `extension` registries the graph uses (`tract_registry ...`). */
  readonly registries: readonly string[];
  /** The symbols the graph declares (`S`, `P`). */
  readonly symbols: readonly string[];
  /** Its `tract_assert` lines. */
  readonly asserts: readonly AssertSummary[];
  /** Other `extension` lines, as `id rest`. */
  readonly extensions: readonly string[];
  /** The graph inputs. */
  readonly inputs: readonly IoSummary[];
  /** The graph outputs. */
  readonly outputs: readonly IoSummary[];
  /** Number of `.dat` files. */
  readonly tensorCount: number;
  /** Payload bytes of all `.dat` files. */
  readonly tensorBytes: number;
  /** By item type: `f32`, `f16`, `i64`, `q40` (either Q4_0 layout), `q81`, `string`, … */
  readonly tensorsByType: Readonly<Record<string, TensorTypeSummary>>;
  /** Number of Q4_0 tensors (either layout). */
  readonly q40TensorCount: number;
  /** Names of the fragments the document defines or declares, in document order. */
  readonly fragments: readonly string[];
  /** Entries of the `tract_core_properties` fragment, values as text. */
  readonly properties: Readonly<Record<string, string>>;
  /** Number of entries in `graph.quant` (0 when there is none). */
  readonly quantizedTensors: number;
}

const HEADER_READ_CONCURRENCY = 8;

/**
 * Summarizes a model archive: parses `graph.nnef` (and `graph.quant`) and reads only the
 * 128-byte header of each `.dat` member.
 *
 * @param archive an opened archive (`openArchive`)
 * @returns the summary
 * @throws {TypeError} when the archive has no `graph.nnef`
 * @throws {SyntaxError} when `graph.nnef` or `graph.quant` is malformed
 * @throws {RangeError} when a tensor header is invalid
 */
export async function inspectModel(archive: Archive): Promise<ModelSummary> {
  if (!archive.has("graph.nnef")) {
    throw new TypeError(`${archive.name}: no graph.nnef member, not an NNEF model`);
  }
  const decoder = new TextDecoder();
  const text = decoder.decode(await archive.read("graph.nnef"));
  const doc = parseDocument(text, `${archive.name}/graph.nnef`);
  let quantizedTensors = 0;
  if (archive.has("graph.quant")) {
    const quant = decoder.decode(await archive.read("graph.quant"));
    quantizedTensors = parseQuant(quant, `${archive.name}/graph.quant`).size;
  }
  const tensors = await summarizeTensors(archive);
  const externals = findExternals(doc);
  const io = (name: string): IoSummary => externals.get(name) ?? { name, shape: null, dtype: null };
  const extensions = summarizeExtensions(doc.extensions);
  return {
    archive: archive.name,
    graph: doc.graph.name,
    nnefVersion: doc.version,
    ...extensions,
    inputs: doc.graph.inputs.map(io),
    outputs: doc.graph.outputs.map(io),
    ...tensors,
    fragments: doc.fragments.map((f) => f.decl.name),
    properties: findProperties(doc),
    quantizedTensors,
  };
}

function summarizeExtensions(
  lines: readonly Extension[],
): Pick<ModelSummary, "registries" | "symbols" | "asserts" | "extensions"> {
  const registries: string[] = [];
  const symbols: string[] = [];
  const asserts: AssertSummary[] = [];
  const extensions: string[] = [];
  for (const { id, rest } of lines) {
    if (id === "tract_registry") {
      registries.push(rest);
    } else if (id === "tract_symbol") {
      symbols.push(rest);
    } else if (id === "tract_pulse_streaming_symbol") {
      symbols.push("S");
    } else if (id === "tract_assert") {
      const colon = rest.indexOf(":");
      asserts.push(
        colon < 0
          ? { scenario: null, expr: rest }
          : { scenario: rest.slice(0, colon).trim(), expr: rest.slice(colon + 1).trim() },
      );
    } else {
      extensions.push(rest === "" ? id : `${id} ${rest}`);
    }
  }
  return { registries, symbols, asserts, extensions };
}

/** Graph inputs: `external<T>(shape)` or `tract_core_external(shape, datum_type)` in the body. */
function findExternals(doc: Document): Map<string, IoSummary> {
  const found = new Map<string, IoSummary>();
  for (const { left, right } of doc.graph.body) {
    if (left.kind !== "identifier" || right.kind !== "invocation") continue;
    const { op } = right.invocation;
    if (op !== "external" && op !== "tract_core_external") continue;
    const shape = argument(right.invocation, "shape", 0);
    found.set(left.name, {
      name: left.name,
      shape: shape?.kind === "array" ? shape.items.map(shapeItem) : null,
      dtype: externalDType(right.invocation),
    });
  }
  return found;
}

function argument(invocation: Invocation, name: string, index: number): RValue | null {
  const named = invocation.args.find((a) => a.name === name);
  if (named !== undefined) return named.value;
  const positional = invocation.args[index];
  return positional !== undefined && positional.name === null ? positional.value : null;
}

function shapeItem(value: RValue): number | string {
  if (value.kind === "literal" && value.literal.kind === "number" && !value.literal.isScalar) {
    return value.literal.value;
  }
  return formatRValue(value);
}

function externalDType(invocation: Invocation): string | null {
  if (invocation.op === "external") {
    if (invocation.generic === "integer") return "i64";
    if (invocation.generic === "logical") return "bool";
    return "f32";
  }
  const datumType = argument(invocation, "datum_type", 1);
  if (datumType?.kind !== "literal" || datumType.literal.kind !== "string") return null;
  const name = datumType.literal.value;
  return isDType(name.toLowerCase()) ? name.toLowerCase() : name;
}

function findProperties(doc: Document): Record<string, string> {
  const properties: Record<string, string> = {};
  const fragment = doc.fragments.find((f) => f.decl.name === "tract_core_properties");
  for (const { right } of fragment?.body ?? []) {
    if (right.kind !== "array") continue;
    for (const item of right.items) {
      if (item.kind !== "tuple" || item.items.length !== 2) continue;
      const [key, value] = item.items as [RValue, RValue];
      if (key.kind !== "literal" || key.literal.kind !== "string") continue;
      properties[key.literal.value] = value.kind === "literal" && value.literal.kind === "string"
        ? value.literal.value
        : formatRValue(value);
    }
  }
  return properties;
}

async function summarizeTensors(
  archive: Archive,
): Promise<Pick<ModelSummary, "tensorCount" | "tensorBytes" | "tensorsByType" | "q40TensorCount">> {
  const dats = archive.members().filter((m) => m.name.endsWith(".dat"));
  const byType: Record<string, { count: number; bytes: number }> = {};
  let tensorBytes = 0;
  let next = 0;
  async function worker(): Promise<void> {
    while (next < dats.length) {
      const member = dats[next++]!;
      const length = Math.min(TENSOR_HEADER_BYTES, member.size);
      const head = await archive.readRange(member.name, 0, length);
      const header = readTensorHeader(head, `${archive.name}/${member.name}`);
      const type = header.layout === "q81" ? "q81" : header.dtype;
      const bytes = Math.max(0, member.size - TENSOR_HEADER_BYTES);
      const entry = byType[type] ??= { count: 0, bytes: 0 };
      entry.count++;
      entry.bytes += bytes;
      tensorBytes += bytes;
    }
  }
  await Promise.all(Array.from({ length: Math.min(HEADER_READ_CONCURRENCY, dats.length) }, worker));
  const sorted = Object.fromEntries(Object.entries(byType).sort(([a], [b]) => a.localeCompare(b)));
  return {
    tensorCount: dats.length,
    tensorBytes,
    tensorsByType: sorted,
    q40TensorCount: byType["q40"]?.count ?? 0,
  };
}

/** Formats a shape as `[1, 4, P, 8]`, or `?` when unknown. */
export function formatShape(shape: readonly (number | string)[] | null): string {
  return shape === null ? "?" : `[${shape.join(", ")}]`;
}

/** The human-readable report `deno task inspect` prints. */
export function formatModelSummary(summary: ModelSummary): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(12)}${value}`);
  row("archive", summary.archive);
  row("graph", `${summary.graph} (NNEF ${summary.nnefVersion})`);
  if (summary.registries.length > 0) row("registries", summary.registries.join(", "));
  row("symbols", summary.symbols.length > 0 ? summary.symbols.join(", ") : "none");
  if (summary.asserts.length > 0) {
    row(
      "asserts",
      summary.asserts.map((a) => a.scenario === null ? a.expr : `${a.scenario}: ${a.expr}`)
        .join("; "),
    );
  }
  for (const extension of summary.extensions) row("extension", extension);
  for (const [label, list] of [["inputs", summary.inputs], ["outputs", summary.outputs]] as const) {
    lines.push(`${label} (${list.length})`);
    const width = Math.max(0, ...list.map((io) => io.name.length));
    for (const io of list) {
      if (io.dtype === null && io.shape === null) {
        lines.push(`  ${io.name}`);
        continue;
      }
      const dtype = io.dtype ?? "?";
      lines.push(`  ${io.name.padEnd(width)}  ${dtype.padEnd(4)} ${formatShape(io.shape)}`);
    }
  }
  row(
    "tensors",
    `${summary.tensorCount} (${summary.tensorBytes} bytes), Q4_0 tensors: ${summary.q40TensorCount}`,
  );
  for (const [type, { count, bytes }] of Object.entries(summary.tensorsByType)) {
    lines.push(
      `  ${type.padEnd(8)}${String(count).padStart(6)} tensors ${String(bytes).padStart(12)} bytes`,
    );
  }
  if (summary.quantizedTensors > 0) row("graph.quant", `${summary.quantizedTensors} entries`);
  row("fragments", summary.fragments.length > 0 ? summary.fragments.join(", ") : "none");
  const properties = Object.entries(summary.properties);
  if (properties.length > 0) {
    lines.push(`properties (${properties.length})`);
    const width = Math.max(...properties.map(([key]) => key.length));
    for (const [key, value] of properties) lines.push(`  ${key.padEnd(width)}  ${value}`);
  }
  return lines.join("\n");
}
