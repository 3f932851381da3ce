import assert from "node:assert/strict";
import { VocabTrie } from "./vocab_trie.ts";

const enc = new TextEncoder();

Deno.test("VocabTrie lays tokens out depth-first with subtree ends and shared nodes", () => {
  const pieces = ["ab", "a", "b", "", "abc", "ab", "\u00e9"];
  const trie = new VocabTrie(pieces.length, (id) => enc.encode(pieces[id]!));
  // a, ab, abc, b, é (2 bytes): six nodes; the empty token is left out.
  assert.deepEqual([...trie.bytes], [97, 98, 99, 98, 0xc3, 0xa9]);
  assert.deepEqual([...trie.depth], [1, 2, 3, 1, 1, 2]);
  assert.deepEqual([...trie.end], [3, 3, 3, 4, 6, 6]);
  const tokensAt = (
    i: number,
  ) => [...trie.tokens.subarray(trie.tokenStart[i]!, trie.tokenStart[i + 1]!)];
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(tokensAt), [[1], [0, 5], [4], [2], [], [6]]);
  assert.equal(trie.maxDepth, 3);
  assert.deepEqual([97, 98, 99].map((b) => trie.singleBytes[b]), [1, 1, 0]);
});
