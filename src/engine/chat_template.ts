import { Template } from "@huggingface/jinja";

/** One chat message as the OpenAI API and chat templates see it. */
export interface ChatMessage {
  /** `system`, `user`, `assistant`, `tool`, ... */
  readonly role: string;
  /** The text, or null (an assistant turn with tool calls only). */
  readonly content: string | null;
  /** Other fields templates may read (`tool_calls`, `name`, ...). */
  readonly [field: string]: unknown;
}

/** Options of `renderChatTemplate`. */
export interface ChatTemplateOptions {
  /** Ends the prompt with the assistant turn's opening (default true). */
  readonly addGenerationPrompt?: boolean;
  /** A template that wins over the config's (e.g. the text of `chat_template.jinja`). */
  readonly template?: string;
  /** Extra template variables (`tools`, `documents`, `enable_thinking`, ...). */
  readonly variables?: Readonly<Record<string, unknown>>;
}

/** Used when a model ships no chat template: `role: content` lines, then `assistant:`. */
export const PLAIN_CHAT_TEMPLATE: string =
  "{% for message in messages %}{{ message['role'] + ': ' + (message['content'] or '') + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";

const compiled = new Map<string, Template>();

function tokenText(entry: unknown): string {
  if (typeof entry === "string") return entry;
  if (typeof entry === "object" && entry !== null && "content" in entry) {
    const content = (entry as { content: unknown }).content;
    if (typeof content === "string") return content;
  }
  return "";
}

/**
 * The chat template of a `tokenizer_config.json`: its `chat_template` string, or the
 * `default` entry of a list of named templates; null when it has none.
 */
export function chatTemplateOf(config: Readonly<Record<string, unknown>>): string | null {
  const entry = config["chat_template"];
  if (typeof entry === "string") return entry;
  if (Array.isArray(entry)) {
    for (const named of entry) {
      if (named?.name === "default" && typeof named.template === "string") return named.template;
    }
  }
  return null;
}

/**
 * Reads a model folder's chat template: `chat_template.jinja` when present, else the one in
 * `tokenizer_config.json`; null when neither has one.
 */
export async function readChatTemplate(folder: string): Promise<string | null> {
  const base = folder.replace(/\/+$/, "");
  try {
    return await Deno.readTextFile(`${base}/chat_template.jinja`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  try {
    return chatTemplateOf(JSON.parse(await Deno.readTextFile(`${base}/tokenizer_config.json`)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Renders a conversation into prompt text with the model's Jinja chat template, as
 * `transformers`' `apply_chat_template(tokenize=False)` does.
 *
 * @param config the model's `tokenizer_config.json` (gives `bos_token`, `eos_token`, and
 *   `chat_template` unless `options.template` is set); a model without a template gets
 *   `PLAIN_CHAT_TEMPLATE`
 * @param messages the conversation
 * @param options generation prompt, template override, extra variables
 * @returns the prompt text (special tokens written as text, to be encoded without BOS when
 *   the template writes it)
 * @throws {SyntaxError} when the template does not parse
 * @throws {Error} when the template raises (`raise_exception`)
 * @example
 * ```ts
 * const text = renderChatTemplate({}, [{ role: "user", content: "Hi" }]);
 * // "user: Hi\nassistant:"
 * ```
 */
export function renderChatTemplate(
  config: Readonly<Record<string, unknown>>,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions = {},
): string {
  const source = options.template ?? chatTemplateOf(config) ?? PLAIN_CHAT_TEMPLATE;
  let template = compiled.get(source);
  if (template === undefined) {
    try {
      template = new Template(source);
    } catch (e) {
      throw new SyntaxError(`Bad chat template: ${(e as Error).message}`);
    }
    compiled.set(source, template);
  }
  return template.render({
    bos_token: tokenText(config["bos_token"]),
    eos_token: tokenText(config["eos_token"]),
    unk_token: tokenText(config["unk_token"]),
    pad_token: tokenText(config["pad_token"]),
    ...options.variables,
    messages: messages.map((m) => ({ ...m })),
    add_generation_prompt: options.addGenerationPrompt ?? true,
  });
}

/**
 * `messages` as turns that alternate, for templates that insist on it (Gemma's, Mistral's):
 * a system message after the first becomes a user one, and consecutive user (or assistant)
 * messages become one, their texts joined by a blank line (the later one's other fields kept).
 * Tool messages are left as they are.
 */
export function alternatingTurns(messages: readonly ChatMessage[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  messages.forEach((message, i) => {
    const turn = message.role === "system" && i > 0 ? { ...message, role: "user" } : message;
    const last = out.at(-1);
    if (
      last !== undefined && last.role === turn.role &&
      (turn.role === "user" || turn.role === "assistant")
    ) {
      const content = [last.content, turn.content].filter((c) => c !== null && c !== "");
      out[out.length - 1] = { ...last, ...turn, content: content.join("\n\n") };
    } else {
      out.push(turn);
    }
  });
  return out;
}
