/** Test helpers: the tiny random SmolLM2-shaped model, converted and served with its real tokenizer and template. */
import { join } from "node:path";
import { convertModel } from "../models/convert.ts";
import { loadService } from "../src/engine/load_service.ts";
import type { InferenceService } from "../src/engine/service.ts";
import { writeTinySmolLM2 } from "./_hub.ts";

let shared: Promise<InferenceService> | undefined;

/**
 * The tiny SmolLM2 (random weights, 49152-token vocabulary, SmolLM2's tokenizer and chat
 * template), converted to an archive in a temp dir and loaded once per test process.
 */
export function smolLM2Service(): Promise<InferenceService> {
  shared ??= loadTinySmolLM2("smollm2-tiny");
  return shared;
}

/**
 * The tiny SmolLM2 converted and loaded afresh as `modelId`, with `chatTemplate` in place of
 * SmolLM2's own when given, and special tokens renamed by `renames` (fill-in-the-middle ones,
 * Mistral's tool-call markers).
 */
export async function loadTinySmolLM2(
  modelId: string,
  chatTemplate?: string,
  renames: readonly (readonly [string, string])[] = [],
): Promise<InferenceService> {
  const root = await Deno.makeTempDir({ prefix: "rill_smollm2_" });
  try {
    const folder = join(root, "hf");
    await writeTinySmolLM2(folder, renames);
    if (chatTemplate !== undefined) {
      await Deno.writeTextFile(join(folder, "chat_template.jinja"), chatTemplate);
    }
    const archive = join(root, "model.nnef.tar");
    await convertModel(folder, archive, {});
    const loaded = await loadService(archive, { modelId });
    await loaded.weightsReady;
    return loaded.service;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/**
 * A chat template that, like DeepSeek-R1's, opens the answer's reasoning (`<think>\n`) and, like
 * Qwen3's, writes an earlier turn's `reasoning_content` back.
 */
export const THINKING_TEMPLATE: string = "{%- for message in messages %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' }}" +
  "{%- if message.reasoning_content %}{{ '<think>' + message.reasoning_content + '</think>\\n\\n' }}{%- endif %}" +
  "{{ message['content'] + '<|im_end|>\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}";

/** THINKING_TEMPLATE's opening, or Qwen3's empty block when `enable_thinking` is false. */
export const SWITCHED_TEMPLATE: string = THINKING_TEMPLATE.replace(
  "{{ '<|im_start|>assistant\\n<think>\\n' }}",
  "{%- if enable_thinking is defined and enable_thinking is false %}" +
    "{{ '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' }}" +
    "{%- else %}{{ '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}",
);
