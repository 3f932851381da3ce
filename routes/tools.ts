/**
 * Tool calls and structured output: not implemented, so every field that asks for them is
 * refused here, in one place, with a 400 naming it. Values that ask for nothing (no tools,
 * plain text) pass.
 */
import { invalidRequest } from "./errors.ts";
import type { FieldRule, FieldTable } from "./fields.ts";

function refused(note: string, allows?: (value: unknown) => boolean): FieldRule {
  return allows === undefined ? { use: "refused", note } : { use: "refused", note, allows };
}

function noTools(value: unknown): boolean {
  return Array.isArray(value) && value.length === 0;
}

function noToolChoice(value: unknown): boolean {
  return value === "none" || value === "auto";
}

function isBoolean(value: unknown): boolean {
  return typeof value === "boolean";
}

function isPlainText(value: unknown): boolean {
  return typeof value === "object" && value !== null &&
    (value as Record<string, unknown>).type === "text";
}

const NO_TOOLS = "tool calls are not supported yet";
const NO_FORMATS = 'structured output is not supported yet: only {"type": "text"}';

/** The tool and format fields of chat completions. */
export const CHAT_TOOL_FIELDS: FieldTable = {
  tools: refused(NO_TOOLS, noTools),
  tool_choice: refused(NO_TOOLS, noToolChoice),
  parallel_tool_calls: refused(NO_TOOLS, isBoolean),
  functions: refused(NO_TOOLS, noTools),
  function_call: refused(NO_TOOLS, noToolChoice),
  response_format: refused(NO_FORMATS, isPlainText),
};

/** The tool fields of responses (the format is `text.format`, see `checkTextFormat`). */
export const RESPONSE_TOOL_FIELDS: FieldTable = {
  tools: refused(NO_TOOLS, noTools),
  tool_choice: refused(NO_TOOLS, noToolChoice),
  parallel_tool_calls: refused(NO_TOOLS, isBoolean),
  max_tool_calls: refused(NO_TOOLS),
};

/** Refuses a responses `text.format` other than plain text. */
export function checkTextFormat(format: unknown): void {
  if (format === undefined || format === null || isPlainText(format)) return;
  throw invalidRequest(
    `'text.format' is not supported: ${NO_FORMATS}`,
    "text.format",
    "unsupported_parameter",
  );
}
