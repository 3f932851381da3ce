/** Shared helpers of the stories260K golden tests: fixture paths, IO steps, comparisons. */
import assert from "node:assert/strict";
import { type Tensor, tensor } from "../src/tensor/tensor.ts";
import type { DType } from "../src/tensor/dtype.ts";
import type { Model } from "../src/graph/model.ts";
import type { Session } from "../src/engine/session.ts";
import { argmax } from "../src/engine/sampler.ts";
import { loadTokenizer } from "../src/tokenizer/load_tokenizer.ts";

const FIXTURES = new URL("../../shared/fixtures/stories260K/", import.meta.url);

/** Path of a stories260K fixture file. */
export function fixture(name: string): string {
  return new URL(name, FIXTURES).pathname;
}

interface IoTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly data: number[];
}

export interface IoStep {
  readonly S: number;
  readonly P: number;
  readonly inputs: Record<string, IoTensor>;
  readonly outputs: Record<string, IoTensor>;
}

export interface IoFile {
  readonly step_a_prefill: IoStep;
  readonly step_b_decode: IoStep;
  readonly greedy: { readonly prompt_tokens: number[]; readonly continuation_64: number[] };
}

export async function readIo(name: string): Promise<IoFile> {
  return JSON.parse(await Deno.readTextFile(fixture(`nnef/${name}`))) as IoFile;
}

function toTensor(t: IoTensor): Tensor {
  const dtype = t.dtype as DType;
  const data = dtype === "f32" ? Float32Array.from(t.data) : Float64Array.from(t.data);
  return tensor(dtype, t.shape, data);
}

/** Runs one IO step through `model.run` and checks every output within `tolerance`. */
export function checkStep(model: Model, step: IoStep, tolerance: number): void {
  const inputs = new Map(Object.entries(step.inputs).map(([k, v]) => [k, toTensor(v)]));
  const outputs = model.run(inputs);
  for (const [name, expected] of Object.entries(step.outputs)) {
    const got = outputs.get(name);
    assert.ok(got, `output ${name} is missing`);
    assert.deepEqual(got.shape, expected.shape, `shape of ${name}`);
    const data = got.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < expected.data.length; i++) {
      worst = Math.max(worst, Math.abs(data[i]! - expected.data[i]!));
    }
    assert.ok(worst <= tolerance, `${name} differs by ${worst} (> ${tolerance})`);
  }
}

/** Greedy ids after a prefill of `prompt`: `count` generated tokens. */
export function greedy(session: Session, prompt: readonly number[], count: number): number[] {
  session.reset();
  let logits = session.prefill(prompt);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = argmax(logits);
    out.push(id);
    if (i + 1 < count) logits = session.decode(id);
  }
  return out;
}

/** The llama2.c prompt "Once upon a time" with BOS. */
export const PROMPT = [1, 403, 407, 261, 378];

/** Asserts that 252 greedy `ids` after `PROMPT` print as llama2.c's 64- and 256-step runs. */
export async function assertLlama2cText(ids: readonly number[]): Promise<void> {
  const tokenizer = await loadTokenizer(fixture("tok512.bin"));
  // llama2.c's -n counts positions: 64 steps print 4 prompt tokens and 60 generated.
  const text64 = await Deno.readTextFile(fixture("greedy64.txt"));
  const text256 = await Deno.readTextFile(fixture("greedy256.txt"));
  assert.equal(tokenizer.decode([...PROMPT, ...ids.slice(0, 60)]), text64.replace(/\n$/, ""));
  assert.equal(tokenizer.decode([...PROMPT, ...ids]), text256.replace(/\n$/, ""));
}
