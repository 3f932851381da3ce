/** A test graph without a KV cache: a 3 x 3 identity gathered by token id, then `outputs`. */
import { buildModel } from "../graph/build_model.ts";
import type { Model } from "../graph/model.ts";
import { parseDocument } from "../nnef/parse.ts";
import { tensor } from "../tensor/tensor.ts";

/** The graph whose output is `outputs`, an expression of `eye` and `input_ids` (1, S). */
export function countsGraph(outputs: string): Model {
  const text = [
    "version 1.0;",
    "extension tract_symbol S;",
    "graph counts(input_ids) -> (outputs)",
    "{",
    "    input_ids = tract_core_external(shape = [1, S], datum_type = 'i64');",
    "    eye = variable<scalar>(label = 'eye', shape = [3, 3]);",
    `    outputs = ${outputs};`,
    "}",
  ].join("\n");
  const eye = tensor("f32", [3, 3], Float32Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1));
  return buildModel(parseDocument(text), new Map([["eye", eye]]));
}
