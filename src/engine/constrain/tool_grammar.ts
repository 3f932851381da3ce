import { ARGS_MARK, CALL_OPEN, type ToolFamily, type ToolFunction } from "../tool_calls.ts";
import { bytesOf, type Grammar, GrammarBuilder } from "./grammar.ts";
import { SchemaCompiler } from "./json_schema.ts";

/** Options of {@link toolCallGrammar}. */
export interface ToolGrammarOptions {
  /** Several calls may follow one another (not in the Llama 3 format, which has one). */
  readonly parallel: boolean;
  /** Named in errors before each tool's path, e.g. `tools`. */
  readonly where?: string;
  /** Where a tool's schema sits in it (default `function.parameters`, chat's). */
  readonly schemaField?: string;
}

/**
 * The grammar of an answer that is nothing but tool calls in a family's format, each call
 * `{"name": <one of the tools>, "arguments": <matching its parameters schema>}` (Llama 3:
 * `"parameters"`; Mistral's later format: `[TOOL_CALLS]<name>[ARGS]<arguments>`). Tools are
 * given by agent frameworks with schemas of every kind: a part of one outside the supported
 * subset admits any value of its type instead of failing the calls.
 *
 * @throws {RangeError} when a tool's parameters admit no finite document
 */
export function toolCallGrammar(
  family: ToolFamily,
  tools: readonly ToolFunction[],
  options: ToolGrammarOptions,
): Grammar {
  if (tools.length === 0) throw new RangeError("No tool to call");
  const b = new GrammarBuilder();
  const where = options.where ?? "tools";
  const key = family === "llama3" ? "parameters" : "arguments";
  let space = -1;
  const calls = tools.map((tool, i) => {
    const field = `${where}[${i}].${options.schemaField ?? "function.parameters"}`;
    const compiler = new SchemaCompiler(tool.parameters, field, b, true);
    space = compiler.space();
    const args = compiler.value(tool.parameters, "#");
    if (family === "mistral_args") {
      return [b.literal(`${CALL_OPEN.mistral_args}${tool.name}${ARGS_MARK}`), args];
    }
    return [
      b.literal('{"name":'),
      space,
      compiler.literal(tool.name),
      b.literal(","),
      space,
      b.literal(`"${key}":`),
      space,
      args,
      b.literal("}"),
    ];
  });
  const call = b.rule("call", ...calls);
  const many = options.parallel && family !== "llama3";
  /** A JSON list of the calls after `open` and before `close`. */
  const list = (open: number[], close: string) =>
    b.rule("tool calls", [
      ...open,
      call,
      ...(many ? [b.star("calls", b.rule(",call", [b.literal(","), space, call]))] : []),
      b.literal(close),
    ]);
  let start: number;
  switch (family) {
    case "llama3":
      start = call;
      break;
    case "mistral_args":
      start = b.rule("tool calls", [call, ...(many ? [b.star("calls", call)] : [])]);
      break;
    case "mistral":
    case "granite":
      start = list([b.literal(CALL_OPEN[family]), space, b.literal("[")], "]");
      break;
    case "smollm2":
      start = list([b.literal("<tool_call>[")], "]</tool_call>");
      break;
    default: {
      const block = b.rule("block", [
        b.literal("<tool_call>\n"),
        call,
        b.literal("\n</tool_call>"),
      ]);
      const more = b.star("blocks", b.rule("\\nblock", [...bytesOf("\n"), block]));
      start = b.rule("tool calls", [block, ...(many ? [more] : [])]);
    }
  }
  return b.build(start);
}
