/**
 * The model an embedding runs: the same graph, with the hidden state its classifier reads as
 * its output in place of the logits.
 */
import { argTensorIds, type Node, throughIdentities } from "../graph/graph.ts";
import type { Model } from "../graph/model.ts";
import { logitsOutput } from "./session.ts";

const variants = new WeakMap<Model, Model | null>();
/** The output `hiddenModel` gives in place of the logits. */
const HIDDEN = "hidden";

/**
 * `model` with the classifier's input (the last position's hidden state, after the final
 * norm: what the logits are a `linear` of) as its output instead of the logits, its caches as
 * before; null when the logits are not a `linear` of such a state. One per model: sessions
 * over it share its compiled graph and weights with `model`'s.
 */
export function hiddenModel(model: Model): Model | null {
  if (variants.has(model)) return variants.get(model)!;
  const logits = logitsOutput(model);
  const classifier = classifierOf(model);
  const variant = classifier === null ? null : model.variant({
    outputs: model.outputs.map((o) =>
      o === logits
        ? { name: HIDDEN, id: classifier.input, fact: model.values[classifier.input]!.fact }
        : o
    ),
  });
  variants.set(model, variant);
  return variant;
}

/**
 * The `linear` node whose output the logits are (through casts and copies), and the one value
 * it reads as its input; null when the logits are not such a linear's.
 */
export function classifierOf(model: Model): { node: Node; input: number } | null {
  const producer = model.values[throughIdentities(model, logitsOutput(model).id)]!.producer;
  const node = producer === null ? undefined : model.nodes[producer];
  const input = node?.name === "linear" ? node.args.get("input") : undefined;
  if (!node || input === undefined || argTensorIds(input).length !== 1) return null;
  return { node, input: argTensorIds(input)[0]! };
}

/** The size of the hidden state `hiddenModel(model)` gives; 0 when it gives none. */
export function hiddenSize(model: Model): number {
  const size = hiddenModel(model)?.output(HIDDEN)?.fact.shape?.at(-1);
  return typeof size === "number" ? size : 0;
}
