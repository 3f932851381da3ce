import assert from "node:assert/strict";
import type { ChatMessage } from "../src/engine/chat_template.ts";
import { storiesService } from "../tests/_serve_harness.ts";
import { fitConversation } from "./truncation.ts";

/** A system prompt, then `turns` user and assistant turns of a few dozen tokens each. */
function conversation(turns: number): ChatMessage[] {
  const out: ChatMessage[] = [{ role: "system", content: "You tell short stories." }];
  for (let t = 0; t < turns; t++) {
    out.push(
      { role: "user", content: `Turn ${t}: tell me about the little dog and the red ball.` },
      { role: "assistant", content: `Once the little dog found a red ball in the park ${t}.` },
    );
  }
  return out;
}

Deno.test("fitConversation drops the fewest oldest turns that leave the room, keeping the system prompt", async () => {
  const service = await storiesService();
  const render = (messages: readonly ChatMessage[]) => service.renderChat(messages, [], {});
  const tokens = (text: string) => service.encodePrompt(text).length;
  const room = 100;
  const limit = service.contextLength - room;

  const short = conversation(2);
  const kept = fitConversation(service, short, render, room);
  assert.equal(kept.dropped, 0);
  assert.equal(kept.messages, short);

  const long = conversation(40);
  assert.ok(tokens(render(long)) > limit);
  const fitted = fitConversation(service, long, render, room);
  assert.ok(tokens(fitted.prompt) <= limit);
  assert.equal(fitted.prompt, render(fitted.messages));
  assert.deepEqual(fitted.ids, service.encodePrompt(fitted.prompt));
  assert.deepEqual(fitted.messages[0], long[0]);
  assert.equal(fitted.messages[1]!.role, "user");
  assert.deepEqual(fitted.messages.slice(1), long.slice(1 + fitted.dropped));
  // One turn more would not fit.
  const more = [long[0]!, ...long.slice(1 + fitted.dropped - 2)];
  assert.ok(tokens(render(more)) > limit);

  // A last turn too long alone is left for the context check to refuse.
  const huge = [...long, { role: "user", content: "dog ".repeat(600) }];
  const refused = fitConversation(service, huge, render, room);
  assert.equal(refused.dropped, 0);
  assert.equal(refused.messages, huge);
  assert.equal(refused.ids, undefined);
});
