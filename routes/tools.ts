/**
 * The tool and structured-output fields of each endpoint: what is honoured (see `validate.ts`
 * and `structured.ts`), and the deprecated forms refused with a 400 naming them.
 */
import type { FieldRule, FieldTable } from "./fields.ts";

function honoured(note: string): FieldRule {
  return { use: "honoured", note };
}

function refused(note: string, allows?: (value: unknown) => boolean): FieldRule {
  return allows === undefined ? { use: "refused", note } : { use: "refused", note, allows };
}

function noTools(value: unknown): boolean {
  return Array.isArray(value) && value.length === 0;
}

function noToolChoice(value: unknown): boolean {
  return value === "none" || value === "auto";
}

/** The tool and format fields of chat completions. */
export const CHAT_TOOL_FIELDS: FieldTable = {
  tools: honoured("function tools, written in the model's own tool-call format"),
  tool_choice: honoured("none, auto, required or a named function"),
  parallel_tool_calls: honoured("false: at most one call"),
  functions: refused("deprecated: use tools", noTools),
  function_call: refused("deprecated: use tool_choice", noToolChoice),
  response_format: honoured(
    "text, json_object, json_schema (the schema subset in the README)",
  ),
};

/** The tool fields of responses (the format is `text.format`, read with the other options). */
export const RESPONSE_TOOL_FIELDS: FieldTable = {
  tools: honoured("function tools, written in the model's own tool-call format"),
  tool_choice: honoured("none, auto, required or a named function"),
  parallel_tool_calls: honoured("false: at most one call"),
  max_tool_calls: refused("no limit but parallel_tool_calls", (v) => v === null),
};
