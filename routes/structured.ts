import {
  GrammarConstraint,
  type TokenConstraint,
  TriggeredConstraint,
  type VocabGrammar,
} from "../src/engine/constrain/constraint.ts";
import { choiceGrammar, type Grammar } from "../src/engine/constrain/grammar.ts";
import { compileJsonSchema, jsonObjectGrammar } from "../src/engine/constrain/json_schema.ts";
import { toolCallGrammar } from "../src/engine/constrain/tool_grammar.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { CALL_OPEN } from "../src/engine/tool_calls.ts";
import { invalidRequest } from "./errors.ts";
import type { ServingState } from "./state.ts";
import type { ChatRequest, StructuredOutput } from "./validate.ts";
import type { ReasoningStart } from "../src/engine/reasoning.ts";
import { afterReasoning } from "../src/engine/constrain/reasoning_grammar.ts";
import { compileRegex } from "../src/engine/constrain/regex.ts";
import { compileGbnf } from "../src/engine/constrain/gbnf.ts";

/**
 * How a chat answer is shaped: the constraint on its tokens, whether it may call tools, and how
 * a thinking model's answer begins.
 */
export interface OutputPlan {
  readonly constraint?: TokenConstraint;
  /** Whether the output is read for tool calls in the model's format. */
  readonly toolCalls?: boolean;
  /** A thinking model's: the answer is split into reasoning and content. */
  readonly reasoning?: ReasoningStart;
}

/** The fields of a request that shape its output (a text completion has only `structured`). */
export type OutputRequest =
  & Partial<
    Pick<ChatRequest, "responseFormat" | "tools" | "toolChoice" | "parallelToolCalls">
  >
  & {
    /** `structured_outputs`. */
    readonly structured?: StructuredOutput | undefined;
    /** Where the format's schema sits in the request (default: chat's). */
    readonly formatField?: string;
    /** Where a tool's schema sits in its entry of `tools` (default: chat's `function.parameters`). */
    readonly toolSchemaField?: string;
  };

/**
 * The constraint a request asks for: one of some texts, a regex's texts or JSON for
 * `structured_outputs`; JSON for `response_format`; for `tools`, calls in the model's own
 * format, from the first token with `tool_choice` "required" or a named function, from the
 * opening of a call with "auto". A thinking model (`reasoning`) may reason first: the constraint
 * holds after its reasoning block. A schema or regex outside the supported subset is a 400
 * naming the keyword or construct, before any generation.
 */
export function outputPlan(
  state: ServingState,
  service: InferenceService,
  request: OutputRequest,
  reasoning: ReasoningStart | null = null,
): OutputPlan {
  const plan = constraintPlan(state, service, request, reasoning);
  return reasoning === null ? plan : { ...plan, reasoning };
}

function constraintPlan(
  state: ServingState,
  service: InferenceService,
  request: OutputRequest,
  reasoning: ReasoningStart | null,
): OutputPlan {
  const tokenBytes = (id: number) => service.tokenizer.tokenBytes(id);
  /** `key`'s grammar for this model, compiled on a miss, after a reasoning block if any. */
  const compiled = (
    key: string,
    param: string,
    compile: () => Grammar,
    code = "invalid_schema",
  ): VocabGrammar =>
    reasoning === null
      ? compiledGrammar(state, service, key, param, compile, code)
      : compiledGrammar(
        state,
        service,
        `${key} after reasoning ${reasoning.opened}`,
        param,
        () => afterReasoning(compile(), reasoning.markers, reasoning.opened),
        code,
      );
  const structured = request.structured;
  if (structured !== undefined) {
    const where = structured.kind === "grammar"
      ? structured.field
      : `structured_outputs.${structured.kind}`;
    const grammar = compiled(
      `${where} ${JSON.stringify(structured)}`,
      where,
      () => {
        switch (structured.kind) {
          case "choice":
            return choiceGrammar(structured.choices);
          case "regex":
            return compileRegex(structured.pattern, where);
          case "grammar":
            return compileGbnf(structured.grammar, where);
          case "json":
            return compileJsonSchema(structured.schema, { where });
          case "json_object":
            return jsonObjectGrammar();
        }
      },
      structured.kind === "json" ? "invalid_schema" : "invalid_value",
    );
    return { constraint: new GrammarConstraint(grammar, tokenBytes) };
  }
  const format = request.responseFormat;
  if (format !== undefined) {
    const where = request.formatField ?? "response_format.json_schema.schema";
    const key = format.type === "json_object"
      ? "json_object"
      : `schema ${JSON.stringify(format.schema)}`;
    const grammar = compiled(
      key,
      where,
      () =>
        format.type === "json_object"
          ? jsonObjectGrammar()
          : compileJsonSchema(format.schema, { where }),
    );
    return { constraint: new GrammarConstraint(grammar, tokenBytes) };
  }
  const choice = request.toolChoice ?? "auto";
  if (request.tools === undefined || request.tools.length === 0 || choice === "none") return {};
  const family = service.toolFamily;
  const named = typeof choice === "object" ? choice.name : undefined;
  const tools = request.tools.filter((t) => named === undefined || t.name === named);
  const parallel = (request.parallelToolCalls ?? true) && named === undefined;
  const key = `tools ${family} ${parallel} ${JSON.stringify(tools)}`;
  const calls = () =>
    toolCallGrammar(family, tools, {
      parallel,
      ...(request.toolSchemaField === undefined ? {} : { schemaField: request.toolSchemaField }),
    });
  // With "auto", the calls are constrained once opened, reasoning or not.
  const constraint = choice === "auto"
    ? new TriggeredConstraint(
      compiledGrammar(state, service, key, "tools", calls),
      tokenBytes,
      CALL_OPEN[family],
      family === "llama3",
      reasoning ?? undefined,
    )
    : new GrammarConstraint(compiled(key, "tools", calls), tokenBytes);
  return { constraint, toolCalls: true };
}

/**
 * The grammar of `key` for this model, compiled (and timed) on a miss; failures are a 400
 * naming `param`, with `code`.
 */
function compiledGrammar(
  state: ServingState,
  service: InferenceService,
  key: string,
  param: string,
  compile: () => Grammar,
  code = "invalid_schema",
): VocabGrammar {
  return service.vocabGrammar(key, () => {
    const started = performance.now();
    try {
      return compile();
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) {
        throw invalidRequest(error.message, param, code);
      }
      throw error;
    } finally {
      state.metrics.schemaCompile((performance.now() - started) / 1000);
    }
  });
}
