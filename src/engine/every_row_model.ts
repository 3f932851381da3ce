/**
 * The model a prompt's log-probabilities run: the same graph with its classifier applied to
 * every position, not only the last one that exports keep before it.
 */
import { argTensorIds, throughIdentities, type Value } from "../graph/graph.ts";
import { inferFacts } from "../graph/infer.ts";
import type { Model } from "../graph/model.ts";
import { symbolOf } from "../tensor/dim.ts";
import { classifierOf } from "./hidden_model.ts";
import { rowsOfLogits, tokenSymbol } from "./session.ts";

const variants = new WeakMap<Model, Model | null>();

/**
 * `model` with logits (1, S, vocab) for each token it runs; null when they cannot be had. An
 * export that computes the logits of the last position alone (torch_to_nnef's, the
 * converter's) slices that row out of the hidden states before the classifier: the variant's
 * classifier reads the hidden states whole. A model whose logits already have a row per token
 * is its own variant. One per model: sessions over it share the weights with `model`'s.
 */
export function everyRowModel(model: Model): Model | null {
  if (variants.has(model)) return variants.get(model)!;
  const variant = rowsOfLogits(model) ? model : unsliced(model);
  variants.set(model, variant);
  return variant;
}

/** `model` with the classifier reading the rows its input slice picked one of; null: no such. */
function unsliced(model: Model): Model | null {
  const found = classifierOf(model);
  if (found === null) return null;
  const classifier = found.node;
  const producer = model.values[throughIdentities(model, found.input)]!.producer;
  const slice = producer === null ? undefined : model.nodes[producer];
  const sliced = slice?.name === "slice" ? slice.args.get("input") : undefined;
  const axes = slice?.args.get("axes");
  if (
    !slice || sliced?.kind !== "tensor" || axes?.kind !== "attr" || !Array.isArray(axes.value) ||
    axes.value.length !== 1 || typeof axes.value[0] !== "number"
  ) return null;
  // One row of the token axis.
  const rank = model.values[sliced.id]!.fact.shape.length;
  const axis = (axes.value[0] + rank) % rank;
  const rows = model.values[sliced.id]!.fact.shape[axis]!;
  const symbol = tokenSymbol(model);
  if (
    model.values[slice.outputs[0]!]!.fact.shape[axis] !== 1 || symbol === null ||
    symbolOf(rows) !== symbol
  ) return null;
  // Rewired, then the facts of the classifier and what follows it inferred again.
  const nodes = model.nodes.slice();
  const values = model.values.slice();
  nodes[classifier.id] = {
    ...classifier,
    args: new Map([...classifier.args, ["input", { kind: "tensor", id: sliced.id }]]),
  };
  const changed = new Set<number>();
  for (let i = classifier.id; i < nodes.length; i++) {
    const node = nodes[i]!;
    const reads = [...node.args.values()].flatMap(argTensorIds);
    if (i !== classifier.id && !reads.some((id) => changed.has(id))) continue;
    const facts = inferFacts(node, values, NO_VARIABLES);
    node.outputs.forEach((id, k) => {
      values[id] = { ...values[id]!, fact: facts[k]! } satisfies Value;
      changed.add(id);
    });
  }
  const variant = model.variant({
    nodes,
    values,
    outputs: model.outputs.map((o) => ({ ...o, fact: values[o.id]!.fact })),
  });
  return rowsOfLogits(variant) ? variant : null;
}

/** The classifier and what follows it read no archive tensor. */
const NO_VARIABLES = {
  variable(label: string): never {
    throw new TypeError(`variable '${label}' after the classifier`);
  },
};
