import assert from "node:assert/strict";
import { QueueFullError, RequestQueue } from "./queue.ts";

Deno.test("RequestQueue runs one at a time in arrival order", async () => {
  const queue = new RequestQueue({ maxWaiting: 4 });
  const order: string[] = [];
  const a = queue.admit();
  const b = queue.admit();
  const c = queue.admit();
  assert.equal(queue.running, 1);
  assert.equal(queue.waiting, 2);
  const done = Promise.all([
    a.ready.then(() => order.push("a")),
    b.ready.then(() => order.push("b")),
    c.ready.then(() => order.push("c")),
  ]);
  await a.ready;
  a.release();
  await b.ready;
  b.release();
  await c.ready;
  c.release();
  await done;
  assert.deepEqual(order, ["a", "b", "c"]);
  assert.equal(queue.running, 0);
  assert.equal(queue.waiting, 0);
});

Deno.test("RequestQueue.admit throws QueueFullError when the waiting places are taken", () => {
  const queue = new RequestQueue({ maxWaiting: 1, retryAfterSeconds: 3 });
  const a = queue.admit();
  const b = queue.admit();
  assert.throws(() => queue.admit(), (e: unknown) => {
    assert.ok(e instanceof QueueFullError);
    assert.equal(e.retryAfterSeconds, 3);
    return true;
  });
  a.release();
  b.release();
  b.release();
  assert.equal(queue.running, 0);
});

Deno.test("RequestQueue drops a waiter whose signal aborts and moves on", async () => {
  const queue = new RequestQueue({ maxWaiting: 2 });
  const a = queue.admit();
  const controller = new AbortController();
  const b = queue.admit(controller.signal);
  const c = queue.admit();
  controller.abort(new Error("client left"));
  await assert.rejects(b.ready, /client left/);
  assert.equal(queue.waiting, 1);
  a.release();
  await c.ready;
  assert.equal(queue.running, 1);
  c.release();
});

Deno.test("RequestQueue frees the running slot through using", async () => {
  const queue = new RequestQueue({ maxWaiting: 0 });
  {
    using ticket = queue.admit();
    await ticket.ready;
    assert.throws(() => queue.admit(), QueueFullError);
  }
  const again = queue.admit();
  await again.ready;
  again.release();
});
