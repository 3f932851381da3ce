import assert from "node:assert/strict";
import { eventData } from "./sse.js";

/** A body delivering `chunks` one by one, as the network splits them. */
function body(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return ReadableStream.from(chunks.map((c) => encoder.encode(c)));
}

Deno.test("eventData yields each event's data as its blank line arrives, across chunk splits", async () => {
  const chunks = [
    'data: {"a":',
    "1}\n",
    "\n: ping\n\ndata: two\r\n",
    "data: lines\r\n\r\n",
    "data: [DONE]\n\n",
  ];
  assert.deepEqual(await Array.fromAsync(eventData(body(chunks))), [
    '{"a":1}',
    "two\nlines",
    "[DONE]",
  ]);
});

Deno.test("eventData skips comments and fields other than data, and an unterminated last event", async () => {
  const chunks = [": hello\n\nevent: x\nid: 3\ndata:no-space\n\n", "data: cut"];
  assert.deepEqual(await Array.fromAsync(eventData(body(chunks))), ["no-space"]);
});
