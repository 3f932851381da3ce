import assert from "node:assert/strict";
import { RunArena } from "./run_arena.ts";
import { loadKernels } from "./mod.ts";

const PAGE = 65536;

function sharedMemory(pages: number): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: pages, maximum: 64, shared: true });
}

Deno.test("RunArena hands out aligned space to one run at a time and frees it at the end", () => {
  const arena = new RunArena({ memory: sharedMemory(1) }, 1024, 100);
  assert.equal(arena.alloc(8), null, "closed: nothing");
  assert.equal(arena.open(), true);
  assert.equal(arena.open(), false, "a second run does not get it");
  assert.equal(arena.alloc(20), 1024);
  assert.equal(arena.alloc(4), 1056, "16-byte aligned");
  assert.equal(arena.alloc(60), null, "full: the caller copies instead");
  assert.equal(arena.asked, 84);
  arena.close();
  assert.equal(arena.isOpen, false);
  assert.equal(arena.open(), true);
  assert.equal(arena.alloc(100), 1024, "the next run starts from the bottom again");
  arena.close();
});

Deno.test("A full RunArena frees what no live value holds, except the current step's", () => {
  const memory = sharedMemory(1);
  const arena = new RunArena({ memory }, 0, 256);
  arena.open();
  const roots: Float32Array[] = [];
  arena.collectWith(() => roots);
  arena.step();
  const a = arena.alloc(64)!;
  const b = arena.alloc(64)!;
  const c = arena.alloc(64)!;
  roots.push(arena.view(b, 16).subarray(4, 8), new Float32Array(16));
  arena.step();
  const d = arena.alloc(64)!;
  assert.deepEqual([a, b, c, d], [0, 64, 128, 192]);
  assert.equal(arena.collections, 0, "nothing freed while there is room");
  assert.equal(arena.alloc(64), a, "a, unheld, is reused; b is held through a part of it");
  assert.equal(arena.collections, 1);
  assert.equal(arena.alloc(64), c, "c too; d was allocated by this step, so it stays");
  assert.equal(arena.alloc(16), null, "b and d are live: nothing else fits");
  arena.step();
  roots.length = 0;
  assert.equal(arena.alloc(192), 0, "a new step, nothing held: every allocation is free");
  arena.close();
  arena.open();
  assert.equal(arena.alloc(256), 0, "a new run starts empty");
  assert.equal(arena.collections, 0);
  arena.close();
});

Deno.test("A view over adjacent allocations keeps every one of them", () => {
  const memory = sharedMemory(1);
  const arena = new RunArena({ memory }, 0, 256);
  arena.open();
  const roots: Float32Array[] = [];
  arena.collectWith(() => roots);
  arena.step();
  const [a, b, c] = [arena.alloc(64)!, arena.alloc(64)!, arena.alloc(64)!];
  assert.deepEqual([a, b, c], [0, 64, 128]);
  // a and b seen as one view, as a batch stacks parts that lie one after the other.
  roots.push(arena.view(a, 32));
  arena.step();
  assert.equal(arena.alloc(64), 192);
  assert.equal(arena.alloc(64), c, "c is free; a and b are held by one view");
  assert.equal(arena.alloc(16), null);
  arena.close();
});

Deno.test("A RunArena without roots never frees before the run ends", () => {
  const arena = new RunArena({ memory: sharedMemory(1) }, 0, 64);
  arena.open();
  arena.step();
  assert.equal(arena.alloc(64), 0);
  arena.step();
  assert.equal(arena.alloc(16), null);
  assert.equal(arena.collections, 0);
  arena.close();
});

Deno.test("RunArena recognizes its own views, parts of them included, after the memory grew", () => {
  const memory = sharedMemory(1);
  const arena = new RunArena({ memory }, 4096, 4096);
  arena.open();
  const at = arena.alloc(64)!;
  const v = arena.view(at, 16);
  v.set(Array.from({ length: 16 }, (_, i) => i + 0.5));
  memory.grow(1);
  assert.notEqual(memory.buffer, v.buffer, "growth gave the memory a new buffer object");
  assert.equal(arena.holds(v), true);
  assert.equal(arena.holds(v.subarray(4, 8)), true);
  assert.equal(v[15], 15.5, "a view over a shared memory survives its growth");
  assert.deepEqual([...new Float32Array(memory.buffer, at, 2)], [0.5, 1.5]);
  const unmade = new Float32Array(memory.buffer, at, 4);
  assert.equal(arena.holds(unmade), false, "not made by the arena since the growth");
  assert.equal(arena.holds(new Float32Array(2048)), false, "another buffer, same offsets");
  assert.equal(arena.holds(new Float32Array(memory.buffer, 0, 4)), false, "outside the region");
  assert.equal(arena.holds(new Float32Array(memory.buffer, 8188, 4)), false, "past its end");
  arena.close();
});

Deno.test("RunArena refuses a memory that is not shared: growth would detach its views", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  assert.throws(() => new RunArena({ memory }, 0, PAGE), /shared memory/);
});

Deno.test("Kernels hand their run arena to one run at a time, past the activation arena", async () => {
  const kernels = await loadKernels({ threads: 1, arenaBytes: PAGE });
  try {
    const arena = kernels.openRun();
    assert.ok(arena, "a shared memory even on one thread");
    assert.equal(kernels.openRun(), null);
    const at = arena.alloc(16)!;
    const scratch = kernels.alloc(PAGE);
    assert.ok(at >= scratch + PAGE, "above the activation arena");
    assert.ok(at + arena.bytes <= kernels.allocWeights(16).offset, "below the weights");
    arena.close();
    assert.equal(kernels.openRun(), arena);
    arena.close();
  } finally {
    kernels.close();
  }
});
