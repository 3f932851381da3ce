/**
 * Anthropic's context editing (`context_management.edits`): what each edit asks, read from a
 * request, and the conversation after them, applied before the prompt is rendered.
 */
import type { ChatMessage } from "../src/engine/chat_template.ts";
import { invalidRequest } from "./errors.ts";
import { isRecord } from "./messages.ts";

/** One edit of `context_management.edits`. */
export type ContextEdit =
  | {
    /** `clear_thinking_20251015`: the reasoning of all but the last `keep` turns is dropped. */
    readonly type: "clear_thinking_20251015";
    readonly keep: number;
  }
  | {
    /**
     * `clear_tool_uses_20250919`: once the prompt has more than `trigger` input tokens (or
     * tool uses), the results of all but the last `keep` tool uses (of the tools not in
     * `exclude`) are replaced by a note, and their inputs too for the tools `clearInputs`
     * names (true: all); nothing is cleared when that would free fewer than `clearAtLeast`
     * tokens.
     */
    readonly type: "clear_tool_uses_20250919";
    readonly trigger: { readonly unit: "input_tokens" | "tool_uses"; readonly value: number };
    readonly keep: number;
    readonly clearAtLeast: number;
    readonly exclude: ReadonlySet<string>;
    readonly clearInputs: boolean | ReadonlySet<string>;
  };

/** What replaces a cleared tool result. */
export const CLEARED_RESULT = "[tool result cleared to save context]";

/** Reads `context_management` (absent: no edits). */
export function parseContextEdits(value: unknown): ContextEdit[] {
  if (value === undefined || value === null) return [];
  const field = "context_management";
  if (!isRecord(value)) throw invalidRequest(`'${field}' must be an object`, field, "invalid_type");
  for (const key of Object.keys(value)) {
    if (key !== "edits") {
      throw invalidRequest(
        `'${field}.${key}' is not supported: only edits`,
        `${field}.${key}`,
        "unsupported_parameter",
      );
    }
  }
  const edits = value.edits ?? [];
  if (!Array.isArray(edits)) {
    throw invalidRequest(`'${field}.edits' must be an array`, `${field}.edits`, "invalid_type");
  }
  return edits.map((edit, i): ContextEdit => {
    const at = `${field}.edits[${i}]`;
    const type = isRecord(edit) ? edit.type : undefined;
    if (type === "clear_thinking_20251015") {
      return {
        type,
        keep: thinkingTurnsKept((edit as Record<string, unknown>).keep, `${at}.keep`),
      };
    }
    if (type === "clear_tool_uses_20250919") {
      return toolClearing(edit as Record<string, unknown>, at);
    }
    throw invalidRequest(
      `'${at}.type' ${
        JSON.stringify(type ?? edit)
      } is not supported: clear_thinking_20251015 or clear_tool_uses_20250919`,
      `${at}.type`,
      "unsupported_parameter",
    );
  });
}

function thinkingTurnsKept(keep: unknown, where: string): number {
  if (keep === undefined || keep === null) return 1;
  if (keep === "all") return Infinity;
  const count = amount(keep, ["thinking_turns"], where);
  if (count === undefined) {
    throw invalidRequest(
      `'${where}' must be "all" or {"type": "thinking_turns", "value": <whole number>}`,
      where,
    );
  }
  return count.value;
}

/** `{"type": <one of units>, "value": <whole number>}`, or undefined when it is not one. */
function amount(
  value: unknown,
  units: readonly string[],
  where: string,
): { unit: string; value: number } | undefined {
  if (value === undefined || value === null) return undefined;
  if (
    !isRecord(value) || typeof value.type !== "string" || !units.includes(value.type) ||
    typeof value.value !== "number" || !Number.isSafeInteger(value.value) || value.value < 0
  ) {
    throw invalidRequest(
      `'${where}' must be {"type": ${
        units.map((u) => `"${u}"`).join(" or ")
      }, "value": <whole number>}`,
      where,
    );
  }
  return { unit: value.type, value: value.value };
}

function toolClearing(edit: Record<string, unknown>, at: string): ContextEdit {
  const names = (value: unknown, where: string): ReadonlySet<string> => {
    if (!Array.isArray(value) || !value.every((n) => typeof n === "string")) {
      throw invalidRequest(`'${where}' must be an array of tool names`, where, "invalid_type");
    }
    return new Set(value);
  };
  for (const key of Object.keys(edit)) {
    if (
      !["type", "trigger", "keep", "clear_at_least", "exclude_tools", "clear_tool_inputs"].includes(
        key,
      )
    ) {
      throw invalidRequest(
        `'${at}.${key}' is not supported`,
        `${at}.${key}`,
        "unsupported_parameter",
      );
    }
  }
  const trigger = amount(edit.trigger, ["input_tokens", "tool_uses"], `${at}.trigger`) ??
    { unit: "input_tokens", value: 100_000 };
  const inputs = edit.clear_tool_inputs ?? false;
  return {
    type: "clear_tool_uses_20250919",
    trigger: trigger as { unit: "input_tokens" | "tool_uses"; value: number },
    keep: amount(edit.keep, ["tool_uses"], `${at}.keep`)?.value ?? 3,
    clearAtLeast: amount(edit.clear_at_least, ["input_tokens"], `${at}.clear_at_least`)?.value ?? 0,
    exclude: edit.exclude_tools === undefined || edit.exclude_tools === null
      ? new Set()
      : names(edit.exclude_tools, `${at}.exclude_tools`),
    clearInputs: typeof inputs === "boolean" ? inputs : names(inputs, `${at}.clear_tool_inputs`),
  };
}

/** An edit that changed the conversation, as Anthropic reports it (`applied_edits`). */
export type AppliedEdit = Record<string, string | number>;

/**
 * The conversation after `edits`, in order, and what each edit that changed it cleared;
 * `count` gives a conversation's prompt tokens.
 */
export function applyContextEdits(
  messages: readonly ChatMessage[],
  edits: readonly ContextEdit[],
  count: (messages: readonly ChatMessage[]) => number,
): { messages: readonly ChatMessage[]; applied: AppliedEdit[] } {
  let current = messages;
  const applied: AppliedEdit[] = [];
  for (const edit of edits) {
    if (edit.type === "clear_thinking_20251015") {
      let seen = 0;
      let cleared = 0;
      const edited = current.toReversed().map((message) => {
        if (message.reasoning_content === undefined || ++seen <= edit.keep) return message;
        cleared++;
        const { reasoning_content: _, ...rest } = message;
        return rest as ChatMessage;
      }).toReversed();
      if (cleared === 0) continue;
      applied.push({
        type: edit.type,
        cleared_thinking_turns: cleared,
        cleared_input_tokens: count(current) - count(edited),
      });
      current = edited;
      continue;
    }
    const uses = toolUses(current);
    const before = edit.trigger.unit === "tool_uses" ? uses.length : count(current);
    if (before <= edit.trigger.value) continue;
    const clearable = uses.filter((use) => !edit.exclude.has(use.name));
    const cleared = clearable.slice(0, Math.max(0, clearable.length - edit.keep));
    if (cleared.length === 0) continue;
    const edited = clearUses(current, cleared, edit.clearInputs);
    const freed = count(current) - count(edited);
    if (freed < edit.clearAtLeast) continue;
    applied.push({
      type: edit.type,
      cleared_tool_uses: cleared.length,
      cleared_input_tokens: freed,
    });
    current = edited;
  }
  return { messages: current, applied };
}

/** A tool call of the conversation: its id and tool. */
interface ToolUse {
  readonly id: string;
  readonly name: string;
}

/** The conversation's tool calls, oldest first. */
function toolUses(messages: readonly ChatMessage[]): ToolUse[] {
  return messages.flatMap((m) =>
    Array.isArray(m.tool_calls)
      ? (m.tool_calls as { id: string; function: { name: string } }[]).map((c) => ({
        id: c.id,
        name: c.function.name,
      }))
      : []
  );
}

/** `messages` with the results of `uses` replaced by a note, and their inputs as `inputs` says. */
function clearUses(
  messages: readonly ChatMessage[],
  uses: readonly ToolUse[],
  inputs: boolean | ReadonlySet<string>,
): ChatMessage[] {
  const ids = new Set(uses.map((u) => u.id));
  const clearsInput = (name: string) => inputs === true || (inputs !== false && inputs.has(name));
  return messages.map((m) => {
    if (m.role === "tool" && ids.has(m.tool_call_id as string)) {
      return { ...m, content: CLEARED_RESULT };
    }
    if (!Array.isArray(m.tool_calls)) return m;
    const calls = m.tool_calls as { id: string; function: { name: string; arguments: string } }[];
    return {
      ...m,
      tool_calls: calls.map((c) =>
        ids.has(c.id) && clearsInput(c.function.name)
          ? { ...c, function: { ...c.function, arguments: "{}" } }
          : c
      ),
    };
  });
}
