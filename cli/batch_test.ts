import assert from "node:assert/strict";
import { parseBatchLines } from "./batch.ts";

Deno.test("parseBatchLines checks each line, naming file and line, and skips blank ones", () => {
  const request = (fields: object) =>
    JSON.stringify({ custom_id: "a", method: "POST", url: "/v1/completions", body: {}, ...fields });
  const lines = parseBatchLines(
    [
      request({}),
      "",
      "{nope",
      "[1]",
      request({}),
      request({ custom_id: "" }),
      request({ custom_id: "b", method: "GET" }),
      request({ custom_id: "c", url: "v1/completions" }),
      request({ custom_id: "d", body: [] }),
      request({ custom_id: "e", body: { stream: true } }),
      request({ custom_id: "f", body: { stream: false, prompt: "x" } }),
    ].join("\n"),
    "in.jsonl",
  );
  assert.deepEqual(lines.map((l) => [l.customId, l.problem ?? null]), [
    ["a", null],
    [null, `in.jsonl:3: not JSON: ${jsonError("{nope")}`],
    [null, "in.jsonl:4: a request must be a JSON object"],
    ["a", `in.jsonl:5: 'custom_id' "a" is used by an earlier line`],
    [null, "in.jsonl:6: 'custom_id' must be a non-empty string"],
    ["b", `in.jsonl:7: 'method' must be "POST", got "GET"`],
    ["c", `in.jsonl:8: 'url' must be a path such as "/v1/chat/completions", got "v1/completions"`],
    ["d", "in.jsonl:9: 'body' must be a JSON object"],
    ["e", "in.jsonl:10: 'body.stream' must not be true: a batch answers whole"],
    ["f", null],
  ]);
  assert.deepEqual(lines.at(-1)!.request, {
    url: "/v1/completions",
    body: { stream: false, prompt: "x" },
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("valid JSON");
}
