import assert from "node:assert/strict";
import { HfTokenizer } from "./hf_tokenizer.ts";
import { withVisibleTokens } from "./visible_tokens.ts";
import { MISTRAL_RENAMES, withNames } from "../../tests/_hub.ts";

const TOKENIZERS = new URL("../../../shared/fixtures/tokenizers/", import.meta.url);

async function smollm2(renames: readonly (readonly [string, string])[] = []) {
  const read = async (file: string) =>
    JSON.parse(withNames(await Deno.readTextFile(new URL(`smollm2/${file}`, TOKENIZERS)), renames));
  return new HfTokenizer(await read("tokenizer.json"), await read("tokenizer_config.json"));
}

Deno.test("withVisibleTokens decodes the named special tokens as text and skips the others", async () => {
  // SmolLM2's vocabulary with two notebook markers named as Mistral's tool-call tokens.
  const inner = await smollm2(MISTRAL_RENAMES);
  const tok = withVisibleTokens(inner, ["[TOOL_CALLS]", "[ARGS]", "[NOT_A_TOKEN]"]);
  const [calls, args, end] = [11, 12, 2];
  assert.deepEqual(inner.encode("[TOOL_CALLS]"), [calls]);
  const ids = [
    ...inner.encode("Checking."),
    calls,
    ...inner.encode("get_weather"),
    args,
    ...inner.encode('{"city": "Paris"}'),
    end,
  ];
  assert.equal(inner.decode(ids), 'Checking.get_weather{"city": "Paris"}');
  assert.equal(tok.decode(ids), 'Checking.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}');
  assert.equal(tok.decode([calls]), "[TOOL_CALLS]");
  assert.equal(new TextDecoder().decode(tok.tokenBytes(args)), "[ARGS]");
  assert.deepEqual(tok.tokenBytes(end), new Uint8Array(0));
  assert.deepEqual(tok.tokenBytes(ids[0]!), inner.tokenBytes(ids[0]!));
  assert.equal(tok.piece?.(calls), "[TOOL_CALLS]");
  assert.deepEqual([tok.vocabSize, tok.bos, tok.eos], [inner.vocabSize, inner.bos, inner.eos]);
  // A vocabulary without such tokens is left as it is.
  const plain = await smollm2();
  assert.equal(withVisibleTokens(plain, ["[TOOL_CALLS]", "[ARGS]"]), plain);
});
