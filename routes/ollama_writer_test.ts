import assert from "node:assert/strict";
import { storiesService } from "../tests/_serve_harness.ts";
import type { Answer, DoneEvent } from "./job.ts";
import { ollamaWriter } from "./ollama_writer.ts";

const CALLS = [
  "Let me check. <tool_",
  'call>\n{"name": "get_weather", "argu',
  'ments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>\n<tool_call>\n',
  '{"name": "get_weather", "arguments": {"city": "Rome", "unit": "celsius"}}',
  "\n</tool_call>",
];

const DONE: DoneEvent = {
  type: "done",
  finishReason: "stop",
  promptTokens: 9,
  completionTokens: 40,
  ids: [],
  cachedTokens: 0,
  reasoningTokens: 0,
  acceptedPredictionTokens: 0,
  rejectedPredictionTokens: 0,
  stopString: null,
};

Deno.test("ollama writer: each tool call goes out whole, with its arguments as an object, once its text is complete", async () => {
  const service = await storiesService();
  assert.equal(service.toolFamily, "hermes");
  const plan = { kind: "chat", model: "m", arrived: performance.now(), toolCalls: true } as const;
  const writer = ollamaWriter(service, { ...plan, context: null });
  const perEvent = [
    ...CALLS.map((text) => writer.text({ type: "text", text }, 0)),
    writer.done(DONE, 0),
  ];
  const lines = perEvent.flat().map((line) => {
    assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"), line);
    return JSON.parse(line);
  });
  // Nothing of a call goes out before its closing brace: the first at the third piece of text,
  // the second at the fourth.
  assert.deepEqual(perEvent.map((l) => l.length), [1, 0, 1, 1, 0, 1]);
  const withCalls = lines.filter((l) => l.message.tool_calls !== undefined);
  assert.deepEqual(withCalls, [lines[1], lines[2]]);
  const calls = withCalls.flatMap((l) => l.message.tool_calls);
  assert.deepEqual(calls.map((c) => c.function), [
    { index: 0, name: "get_weather", arguments: { city: "Paris", unit: "celsius" } },
    { index: 1, name: "get_weather", arguments: { city: "Rome", unit: "celsius" } },
  ]);
  assert.ok(calls.every((c) => typeof c.id === "string" && c.id !== ""));
  assert.equal(lines.map((l) => l.message.content).join(""), "Let me check. ");
  assert.ok(lines.slice(0, -1).every((l) => l.done === false));
  assert.equal(lines.at(-1).done, true);
  assert.equal(lines.at(-1).done_reason, "stop");
  assert.equal(lines.at(-1).eval_count, 40);

  const whole = ollamaWriter(service, { ...plan, context: null }).whole([
    {
      text: CALLS.join(""),
      reasoning: "",
      event: DONE,
      logprobs: [],
      prompt: null,
      firstTextAt: performance.now(),
    } satisfies Answer,
  ]) as { message: { content: string; tool_calls: { function: object }[] } };
  assert.equal(whole.message.content, "Let me check. ");
  assert.deepEqual(whole.message.tool_calls.map((c) => c.function), calls.map((c) => c.function));
});

Deno.test("ollama writer: generate's last line carries the context, the prompt's ids and the answer's", async () => {
  const service = await storiesService();
  const writer = ollamaWriter(service, {
    kind: "generate",
    model: "m",
    arrived: performance.now(),
    toolCalls: false,
    context: [1, 2, 3],
  });
  const [piece] = writer.text({ type: "text", text: "Once", reasoning: "hm" }, 0);
  assert.deepEqual(
    { ...JSON.parse(piece!), created_at: null },
    { model: "m", created_at: null, response: "Once", thinking: "hm", done: false },
  );
  const [last] = writer.done({ ...DONE, finishReason: "length", ids: [7, 8] }, 0);
  const end = JSON.parse(last!);
  assert.deepEqual(end.context, [1, 2, 3, 7, 8]);
  assert.equal(end.done_reason, "length");
  assert.equal(end.response, "");
});
