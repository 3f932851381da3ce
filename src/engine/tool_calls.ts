import type { ChatMessage } from "./chat_template.ts";

/** A function the model may call (OpenAI `tools[i].function`). */
export interface ToolFunction {
  /** The function name. */
  readonly name: string;
  /** What the function does, for the model. */
  readonly description?: string;
  /** JSON schema of the arguments object. */
  readonly parameters: unknown;
}

/**
 * How a model family writes tool calls:
 * - `hermes` (Hermes, Qwen 2.5 and ChatML templates generally): each call is
 *   `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`;
 * - `llama3` (Llama 3.x): the whole answer is `{"name": ..., "parameters": {...}}`;
 * - `smollm2`: one `<tool_call>[{"name": ..., "arguments": {...}}, ...]</tool_call>`;
 * - `mistral` (Mistral 7B v0.3, Mixtral 8x22B, Nemo): `[TOOL_CALLS][{"name": ..., "arguments":
 *   {...}}, ...]`, `[TOOL_CALLS]` a special token;
 * - `mistral_args` (Mistral's later tokenizers: Small 3.2, Magistral, Devstral): each call is
 *   `[TOOL_CALLS]name[ARGS]{...}`, both markers special tokens;
 * - `granite` (IBM Granite 3.x): `<|tool_call|>[{"name": ..., "arguments": {...}}, ...]`,
 *   `<|tool_call|>` a special token (Granite 3.1 may open with the text `<tool_call>` instead).
 */
export type ToolFamily = "hermes" | "llama3" | "smollm2" | "mistral" | "mistral_args" | "granite";

/** The text that opens the tool calls of a family. */
export const CALL_OPEN: Record<ToolFamily, string> = {
  hermes: "<tool_call>",
  llama3: "{",
  smollm2: "<tool_call>",
  mistral: "[TOOL_CALLS]",
  mistral_args: "[TOOL_CALLS]",
  granite: "<|tool_call|>",
};

/** Other texts a family's calls may open with, read as its own. */
const CALL_OPEN_ALSO: Partial<Record<ToolFamily, readonly string[]>> = {
  granite: ["<tool_call>"],
};

/** Mistral's marker between a call's name and its arguments. */
export const ARGS_MARK = "[ARGS]";

/**
 * The special tokens a family writes its calls with: decoded as text (they are skipped
 * otherwise), so that the calls can be read and constrained.
 */
export const CALL_MARKERS: Record<ToolFamily, readonly string[]> = {
  hermes: [],
  llama3: [],
  smollm2: [],
  mistral: [CALL_OPEN.mistral],
  mistral_args: [CALL_OPEN.mistral_args, ARGS_MARK],
  granite: [CALL_OPEN.granite],
};

function isMistral(family: ToolFamily): boolean {
  return family === "mistral" || family === "mistral_args";
}

/** The family a chat template writes tool calls in, told from its text. */
export function toolFamily(template: string): ToolFamily {
  if (template.includes(CALL_OPEN.mistral)) {
    return template.includes(ARGS_MARK) ? "mistral_args" : "mistral";
  }
  if (template.includes(CALL_OPEN.granite)) return "granite";
  if (template.includes("<|start_header_id|>")) return "llama3";
  if (template.includes("SmolLM") && !template.includes("<tool_call>")) return "smollm2";
  return "hermes";
}

/** Whether a chat template renders `tools` itself (Hugging Face templates that take them). */
export function templateTakesTools(template: string): boolean {
  return /\btools\b/.test(template);
}

/** A parsed tool call. */
export interface ToolCall {
  readonly id: string;
  readonly name: string;
  /** The arguments as JSON text. */
  readonly arguments: string;
}

/** One `tool_calls` entry of a stream chunk's delta (OpenAI `ChatCompletionMessageToolCallChunk`). */
export interface ToolCallDelta {
  readonly index: number;
  readonly id?: string;
  readonly type?: "function";
  readonly function: { readonly name?: string; readonly arguments: string };
}

/**
 * Prepares a conversation with tools for a chat template. A template that takes `tools` gets
 * them as a variable, with earlier calls' arguments as objects (as Hugging Face templates
 * expect). Otherwise the tools are described in the system message in the family's format,
 * earlier calls are written into the assistant's text, and tool results become user turns
 * wrapped in `<tool_response>`.
 *
 * @returns the messages and template variables to render
 */
export function toolConversation(
  template: string,
  messages: readonly ChatMessage[],
  tools: readonly ToolFunction[],
): { messages: ChatMessage[]; variables: Record<string, unknown> } {
  const specs = tools.map((t) => ({
    type: "function",
    function: {
      name: t.name,
      ...(t.description === undefined ? {} : { description: t.description }),
      parameters: t.parameters,
    },
  }));
  const family = toolFamily(template);
  if (templateTakesTools(template)) {
    // Mistral's templates refuse ids other than 9 letters and digits (OpenAI's are longer).
    const mistral = isMistral(family);
    const native = messages.map((m): ChatMessage => {
      const calls = Array.isArray(m.tool_calls)
        ? m.tool_calls.map((c) => {
          const call = withObjectArguments(c);
          return mistral ? { ...call, id: mistralCallId(call.id) } : call;
        })
        : undefined;
      return {
        ...m,
        ...(calls === undefined ? {} : { tool_calls: calls }),
        ...(mistral && typeof m.tool_call_id === "string"
          ? { tool_call_id: mistralCallId(m.tool_call_id) }
          : {}),
      };
    });
    return { messages: native, variables: tools.length > 0 ? { tools: specs } : {} };
  }
  const out: ChatMessage[] = [];
  for (const m of messages) {
    if (m.role === "tool") {
      out.push({ role: "user", content: `<tool_response>\n${m.content ?? ""}\n</tool_response>` });
    } else if (m.role === "assistant" && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) {
      const calls = m.tool_calls.map(withObjectArguments).map((c) => c.function);
      const text = writeCalls(family, calls);
      out.push({ role: "assistant", content: m.content ? `${m.content}\n${text}` : text });
    } else {
      out.push({ ...m });
    }
  }
  if (tools.length > 0) {
    const prompt = toolSystemPrompt(family, specs);
    const first = out[0];
    if (first?.role === "system") {
      out[0] = { ...first, content: `${first.content ?? ""}\n\n${prompt}` };
    } else out.unshift({ role: "system", content: prompt });
  }
  return { messages: out, variables: {} };
}

/**
 * A call id as Mistral's templates take it: 9 letters and digits, the last ones of `id` (the
 * same id always gives the same one, so a call and its result still pair up), zero-padded.
 */
export function mistralCallId(id: unknown): string {
  const alnum = String(id ?? "").replace(/[^A-Za-z0-9]/g, "");
  return alnum.slice(-MISTRAL_ID_LENGTH).padStart(MISTRAL_ID_LENGTH, "0");
}

const MISTRAL_ID_LENGTH = 9;

/** A new call's id: OpenAI's shape, or Mistral's 9 letters and digits. */
function newCallId(family: ToolFamily): string {
  const hex = crypto.randomUUID().replaceAll("-", "");
  return isMistral(family) ? hex.slice(0, MISTRAL_ID_LENGTH) : `call_${hex.slice(0, 24)}`;
}

function withObjectArguments(
  call: unknown,
): { id?: unknown; function: { name: string; arguments: unknown } } {
  const c = call as { function?: { name?: unknown; arguments?: unknown } };
  const fn = c.function ?? {};
  const args = typeof fn.arguments === "string" ? argumentsValue(fn.arguments) : fn.arguments;
  return { ...(call as object), function: { name: String(fn.name ?? ""), arguments: args } };
}

/** A call's arguments as the value their JSON text holds, or the text when it does not parse. */
export function argumentsValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Earlier calls as the family writes them. */
function writeCalls(family: ToolFamily, calls: { name: string; arguments: unknown }[]): string {
  switch (family) {
    case "llama3":
      return calls.map((c) => JSON.stringify({ name: c.name, parameters: c.arguments })).join("; ");
    case "smollm2":
      return `<tool_call>[${
        calls.map((c) => JSON.stringify({ name: c.name, arguments: c.arguments })).join(", ")
      }]</tool_call>`;
    case "mistral":
    case "granite":
      return `${CALL_OPEN[family]}${
        JSON.stringify(calls.map((c) => ({ name: c.name, arguments: c.arguments })))
      }`;
    case "mistral_args":
      return calls.map((c) =>
        `${CALL_OPEN.mistral_args}${c.name}${ARGS_MARK}${JSON.stringify(c.arguments)}`
      ).join("");
    default:
      return calls.map((c) =>
        `<tool_call>\n${JSON.stringify({ name: c.name, arguments: c.arguments })}\n</tool_call>`
      ).join("\n");
  }
}

function toolSystemPrompt(family: ToolFamily, specs: readonly unknown[]): string {
  const list = specs.map((s) => JSON.stringify(s)).join("\n");
  switch (family) {
    case "llama3":
      return "You can call the functions below. To call one, answer with nothing but a JSON " +
        'object {"name": <function name>, "parameters": <object of arguments>}.\n\n' + list;
    case "mistral":
    case "granite":
      return answerWith(
        `${CALL_OPEN[family]}[{"name": <function name>, "arguments": <object of ` +
          "arguments>}, ...]",
        list,
      );
    case "mistral_args":
      return answerWith(
        `${CALL_OPEN.mistral_args}<function name>${ARGS_MARK}<object of arguments> for each call`,
        list,
      );
    case "smollm2":
      return answerWith(
        '<tool_call>[{"name": <function name>, "arguments": <object of arguments>}, ...]' +
          "</tool_call>; if no function fits, say so in plain words",
        list,
      );
    default:
      return "You can call the functions listed in <tools></tools>. For each call, write " +
        '<tool_call>\n{"name": <function name>, "arguments": <object of arguments>}\n' +
        "</tool_call>\n" + `<tools>\n${list}\n</tools>`;
  }
}

/** A system prompt that asks for nothing but calls written as `format`, the tools after it. */
function answerWith(format: string, list: string): string {
  return "You can call the functions listed in <tools></tools>. To call functions, answer " +
    `with nothing but ${format}.\n<tools>${list}</tools>`;
}

/** What `ToolCallParser.push` found in a piece of text. */
export interface ParsedPiece {
  /** Plain text to pass on as `content`. */
  readonly content: string;
  /** Tool call deltas, in order. */
  readonly calls: ToolCallDelta[];
}

/**
 * Splits generated text into content and tool calls as it arrives: text that may be the
 * start of a call is held back, a call's header delta (`id`, `name`) goes out once its name
 * is known, then its arguments in pieces as they are generated. Text between and after calls
 * (closing tags, separators) is dropped.
 */
export class ToolCallParser {
  readonly #family: ToolFamily;
  readonly #open: string;
  /** Every text that opens the calls: `#open` first. */
  readonly #opens: readonly string[];
  #pending = "";
  #inCalls = false;
  #seenText = false;
  /** The text of the call being read, from its `{`. */
  #call = "";
  #callStart = -1;
  #argsStart = -1;
  #argsSent = 0;
  #argsDone = false;
  #scan = new JsonScanner();
  readonly #calls: { id: string; name: string; arguments: string }[] = [];
  /** Mistral's `name[ARGS]{...}` calls are read. */
  readonly #namedCalls: boolean;
  /** The text since the last call, which may name the next one (`name[ARGS]`). */
  #named = "";
  /** The call being read is `name[ARGS]{...}`: its arguments are the object itself. */
  #bare = false;

  constructor(family: ToolFamily) {
    this.#family = family;
    this.#open = CALL_OPEN[family];
    this.#opens = [this.#open, ...(CALL_OPEN_ALSO[family] ?? [])];
    this.#namedCalls = isMistral(family);
  }

  /** The calls whose text is complete. */
  get calls(): readonly ToolCall[] {
    return this.#callStart < 0 && !this.#bare ? this.#calls : this.#calls.slice(0, -1);
  }

  /** Feeds generated text. */
  push(text: string): ParsedPiece {
    const calls: ToolCallDelta[] = [];
    let content = "";
    let rest = this.#pending + text;
    this.#pending = "";
    while (rest.length > 0) {
      if (!this.#inCalls) {
        const found = this.#findOpen(rest);
        if (found.at < 0) {
          const keep = found.hold;
          content += rest.slice(0, rest.length - keep);
          this.#pending = rest.slice(rest.length - keep);
          break;
        }
        content += rest.slice(0, found.at);
        this.#inCalls = true;
        rest = rest.slice(found.at + found.length);
        continue;
      }
      for (const ch of rest) this.#callChar(ch, calls);
      this.#argumentsDelta(calls);
      rest = "";
    }
    if (content.trim() !== "") this.#seenText = true;
    return { content, calls };
  }

  /** Ends the text: releases held-back content. */
  flush(): ParsedPiece {
    const content = this.#inCalls ? "" : this.#pending;
    this.#pending = "";
    return { content, calls: [] };
  }

  /**
   * Where the calls begin in `text` (-1: not yet), the length of what opens them there (the
   * calls' text follows it), and how much of the end of `text` to hold back.
   */
  #findOpen(text: string): { at: number; length: number; hold: number } {
    if (this.#family === "llama3") {
      if (this.#seenText) return { at: -1, length: 0, hold: 0 };
      const trimmed = text.trimStart();
      if (trimmed === "") return { at: -1, length: 0, hold: text.length };
      return trimmed.startsWith("{")
        ? { at: text.length - trimmed.length, length: 0, hold: 0 }
        : { at: -1, length: 0, hold: 0 };
    }
    let first = { at: -1, length: 0, hold: 0 };
    for (const open of this.#opens) {
      const at = text.indexOf(open);
      if (at >= 0 && (first.at < 0 || at < first.at)) first = { at, length: open.length, hold: 0 };
    }
    if (first.at >= 0) return first;
    for (const open of this.#opens) {
      for (let k = Math.min(open.length - 1, text.length); k > first.hold; k--) {
        if (text.endsWith(open.slice(0, k))) first = { at: -1, length: 0, hold: k };
      }
    }
    return first;
  }

  #callChar(ch: string, out: ToolCallDelta[]): void {
    if (this.#callStart < 0) {
      if (ch !== "{") {
        this.#nameChar(ch, out);
        return;
      }
      this.#callStart = 0;
      this.#call = "";
      this.#argsStart = this.#bare ? 0 : -1;
      this.#argsDone = false;
      this.#scan = new JsonScanner();
      this.#named = "";
    }
    this.#call += ch;
    this.#scan.push(ch);
    if (this.#argsStart < 0) {
      const head = CALL_HEAD.exec(this.#call);
      if (head !== null) {
        this.#header(JSON.parse(head[1]!) as string, out);
        this.#argsStart = this.#call.length;
      } else if (this.#scan.depth === 0) {
        this.#callStart = -1;
      }
      return;
    }
    const call = this.#calls[this.#calls.length - 1]!;
    const closed = this.#scan.depth === 0;
    if (this.#bare) {
      call.arguments += ch;
      if (closed) {
        this.#callStart = -1;
        this.#bare = false;
      }
      return;
    }
    if (closed || (this.#scan.depth === 1 && !this.#scan.inString && ch === ",")) {
      this.#argsDone = true;
    }
    if (!this.#argsDone && !(call.arguments === "" && /\s/.test(ch))) call.arguments += ch;
    if (closed) this.#callStart = -1;
  }

  /** Text between calls: a name followed by Mistral's `[ARGS]` opens a call. */
  #nameChar(ch: string, out: ToolCallDelta[]): void {
    if (!this.#namedCalls) return;
    this.#named = (this.#named + ch).slice(-MAX_NAMED);
    if (!this.#named.endsWith(ARGS_MARK)) return;
    const named = this.#named.slice(0, -ARGS_MARK.length);
    const at = named.lastIndexOf(this.#open);
    const name = (at < 0 ? named : named.slice(at + this.#open.length)).trim();
    this.#named = "";
    this.#header(name, out);
    this.#bare = true;
  }

  /** A new call's header delta (the previous call's last arguments go out first). */
  #header(name: string, out: ToolCallDelta[]): void {
    const id = newCallId(this.#family);
    this.#argumentsDelta(out);
    out.push({
      index: this.#calls.length,
      id,
      type: "function",
      function: { name, arguments: "" },
    });
    this.#calls.push({ id, name, arguments: "" });
    this.#argsSent = 0;
  }

  /** One delta with the arguments text the last piece added to the current call. */
  #argumentsDelta(out: ToolCallDelta[]): void {
    const call = this.#calls.at(-1);
    if (call === undefined || call.arguments.length === this.#argsSent) return;
    out.push({
      index: this.#calls.length - 1,
      function: { arguments: call.arguments.slice(this.#argsSent) },
    });
    this.#argsSent = call.arguments.length;
  }
}

/** The most text between calls kept to find a call's name in. */
const MAX_NAMED = 256;

const CALL_HEAD = /^\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"(?:arguments|parameters)"\s*:\s*$/;

/** Tracks nesting and strings of JSON text one character at a time. */
class JsonScanner {
  depth = 0;
  inString = false;
  #escaped = false;

  push(ch: string): void {
    if (this.inString) {
      if (this.#escaped) this.#escaped = false;
      else if (ch === "\\") this.#escaped = true;
      else if (ch === '"') this.inString = false;
      return;
    }
    if (ch === '"') this.inString = true;
    else if (ch === "{" || ch === "[") this.depth++;
    else if (ch === "}" || ch === "]") this.depth--;
  }
}
