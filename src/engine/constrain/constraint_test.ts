import assert from "node:assert/strict";
import { loadTokenizer } from "../../tokenizer/load_tokenizer.ts";
import type { Tokenizer } from "../../tokenizer/tokenizer.ts";
import { DEAD } from "./automaton.ts";
import { GrammarConstraint, VocabGrammar } from "./constraint.ts";
import { compileJsonSchema } from "./json_schema.ts";
import { vocabTrie } from "./vocab_trie.ts";

const FIXTURES = new URL("../../../../shared/fixtures/", import.meta.url).pathname;

const SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    tags: { type: "array", items: { enum: ["a", "bc"] }, maxItems: 3 },
    n: { type: "integer", minimum: -5, maximum: 300 },
  },
  required: ["name", "tags"],
  additionalProperties: false,
};

/** Every token checked on its own: the reference the trie walk must equal. */
function bruteForce(grammar: VocabGrammar, tokenizer: Tokenizer, state: number): Uint8Array {
  const m = grammar.automaton;
  const mask = new Uint8Array(tokenizer.vocabSize);
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const bytes = tokenizer.tokenBytes(id);
    if (bytes.length > 0 && m.walk(state, bytes) !== DEAD) mask[id] = 1;
  }
  if (m.accepts(state)) { for (const id of tokenizer.eos) mask[id] = 1; }
  return mask;
}

for (const name of ["stories260K/tok512.bin", "tokenizers/smollm2/tokenizer.json"]) {
  Deno.test(`VocabGrammar masks equal a token-by-token check (${name})`, async () => {
    const tokenizer = await loadTokenizer(`${FIXTURES}${name}`);
    const grammar = new VocabGrammar(
      compileJsonSchema(SCHEMA),
      vocabTrie(tokenizer),
      tokenizer.eos,
    );
    const m = grammar.automaton;
    for (
      const prefix of [
        "",
        '{"na',
        '{"name":"x',
        '{"name":"\\',
        '{"name":"ab","tags":[',
        '{"name":"ab","tags":["a"], "n":2',
        '{"name":"ab","tags":[]}',
      ]
    ) {
      const state = m.walk(m.start, new TextEncoder().encode(prefix));
      assert.notEqual(state, DEAD, prefix);
      assert.deepEqual(grammar.allowed(state).mask, bruteForce(grammar, tokenizer, state), prefix);
    }
  });
}

Deno.test("GrammarConstraint narrows the mask so that the document ends in time", async () => {
  const tokenizer = await loadTokenizer(`${FIXTURES}tokenizers/smollm2/tokenizer.json`);
  const grammar = new VocabGrammar(compileJsonSchema(SCHEMA), vocabTrie(tokenizer), tokenizer.eos);
  const constraint = new GrammarConstraint(grammar, (id) => tokenizer.tokenBytes(id));
  for (const id of tokenizer.encode('{"name":"abc')) constraint.accept(id);
  // '","tags":[]}' is 12 bytes: with 12 tokens left, a token must leave at most 11 to write.
  const loose = constraint.mask(1000);
  const tight = constraint.mask(12);
  const [def] = tokenizer.encode("def");
  const [quote] = tokenizer.encode('"');
  assert.ok(loose[def!] === 1 && tight[def!] === 0 && tight[quote!] === 1);
  const m = grammar.automaton;
  const here = m.walk(m.start, new TextEncoder().encode('{"name":"abc'));
  for (let id = 0; id < tight.length; id++) {
    if (tight[id] === 1) assert.ok(m.distance(m.walk(here, tokenizer.tokenBytes(id))) <= 11);
  }
  assert.ok(!constraint.complete);
  for (const id of tokenizer.encode('","tags":[]}')) constraint.accept(id);
  assert.ok(constraint.complete && constraint.accepting);
  assert.throws(
    () =>
      new GrammarConstraint(grammar, (id) => tokenizer.tokenBytes(id)).accept(
        tokenizer.encode("[")[0]!,
      ),
    RangeError,
  );
});
