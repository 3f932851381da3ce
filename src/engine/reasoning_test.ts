import assert from "node:assert/strict";
import {
  promptOpensReasoning,
  ReasoningParser,
  type ThinkingMarkers,
  thinkingMarkers,
} from "./reasoning.ts";

const MARKERS: ThinkingMarkers = { open: "<think>", close: "</think>" };

/** The split of `text` pushed in the pieces that cutting it at `cuts` gives. */
function split(text: string, opened: boolean, cuts: readonly number[]) {
  const parser = new ReasoningParser(MARKERS, opened);
  let reasoning = "";
  let content = "";
  const ends = [...cuts, text.length];
  let from = 0;
  for (const end of ends) {
    const piece = parser.push(text.slice(from, end));
    reasoning += piece.reasoning;
    content += piece.content;
    from = end;
  }
  const last = parser.flush();
  return { reasoning: reasoning + last.reasoning, content: content + last.content };
}

Deno.test("ReasoningParser splits an answer into reasoning and content, however it is cut", () => {
  const cases: [string, boolean, string, string][] = [
    ["Let me think.\n</think>\n\nThe answer.", true, "Let me think.\n", "The answer."],
    ["<think>\nhmm, 2 + 2\n</think>\n\nIt is 4.", false, "hmm, 2 + 2\n", "It is 4."],
    ["\n<think>a</think>b", false, "a", "b"],
    ["Hello <think> there", false, "", "Hello <think> there"],
    ["<think>still thinking</thi", false, "still thinking</thi", ""],
    ["<thi", false, "", "<thi"],
    ["</think>only content", true, "", "only content"],
    ["a</think>b</think>c", true, "a", "b</think>c"],
  ];
  for (const [text, opened, reasoning, content] of cases) {
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        assert.deepEqual(
          split(text, opened, [i, j]),
          { reasoning, content },
          `${JSON.stringify(text)} cut at ${i}, ${j}`,
        );
      }
    }
  }
});

Deno.test("thinkingMarkers and promptOpensReasoning read the template and the prompt", () => {
  assert.deepEqual(thinkingMarkers("{{ '<think>\\n' }}...{{ '</think>' }}"), MARKERS);
  assert.equal(thinkingMarkers("{{ messages }}"), null);
  assert.ok(promptOpensReasoning("<|im_start|>assistant\n<think>\n", MARKERS));
  assert.ok(!promptOpensReasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n", MARKERS));
  assert.ok(!promptOpensReasoning("<|im_start|>assistant\n", MARKERS));
});
