import assert from "node:assert/strict";
import { join } from "node:path";
import { parseByteSize, readMemoryLimit } from "./memory_limit.ts";

/** A fake cgroup mount and membership list in a temp folder; `files` maps paths to contents. */
async function withCgroup(
  membership: string,
  files: Record<string, string>,
  body: (options: { cgroupRoot: string; procCgroup: string }) => void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rill_cgroup_" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(join(dir, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(dir, path), text);
    }
    await Deno.writeTextFile(join(dir, "cgroup"), membership);
    body({ cgroupRoot: dir, procCgroup: join(dir, "cgroup") });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const noSystem = () => undefined;

Deno.test("parseByteSize reads bytes and binary K/M/G/T multiples, naming the setting when wrong", () => {
  assert.equal(parseByteSize("805306368", "X"), 805306368);
  assert.equal(parseByteSize("768M", "X"), 768 * 2 ** 20);
  assert.equal(parseByteSize("768MB", "X"), 768 * 2 ** 20);
  assert.equal(parseByteSize("1.5GiB", "X"), 1.5 * 2 ** 30);
  assert.equal(parseByteSize(" 4g ", "X"), 4 * 2 ** 30);
  for (const bad of ["", "0", "-1G", "lots", "4 GB of RAM", "1e9"]) {
    assert.throws(
      () => parseByteSize(bad, "RILL_MEMORY_LIMIT"),
      {
        name: "RangeError",
        message: new RegExp(`^RILL_MEMORY_LIMIT must be a size .*got '${bad}'`),
      },
    );
  }
});

Deno.test("readMemoryLimit reads a cgroup v2 memory.max, the lowest on the way up to the root", async () => {
  await withCgroup("0::/outer/inner\n", {
    "outer/inner/memory.max": "max\n",
    "outer/memory.max": "805306368\n",
    "memory.max": "max\n",
  }, (paths) => {
    const limit = readMemoryLimit({ ...paths, systemMemory: () => 2 ** 34 });
    assert.deepEqual(limit, { bytes: 805306368, from: join(paths.cgroupRoot, "outer/memory.max") });
  });
  // Inside a cgroup namespace the process sees itself at the root.
  await withCgroup("0::/\n", { "memory.max": "1073741824\n" }, (paths) => {
    assert.equal(readMemoryLimit({ ...paths, systemMemory: noSystem })?.bytes, 2 ** 30);
  });
});

Deno.test("readMemoryLimit reads a cgroup v1 memory.limit_in_bytes and ignores 'no limit'", async () => {
  const v1 = "12:pids:/x\n4:memory:/process_api/abc\n3:cpu,cpuacct:/\n";
  await withCgroup(v1, {
    "memory/process_api/abc/memory.limit_in_bytes": "4294967296\n",
    "memory/memory.limit_in_bytes": "9223372036854771712\n",
  }, (paths) => {
    const limit = readMemoryLimit({ ...paths, systemMemory: () => 2 ** 34 });
    assert.deepEqual(limit, {
      bytes: 2 ** 32,
      from: join(paths.cgroupRoot, "memory/process_api/abc/memory.limit_in_bytes"),
    });
  });
  await withCgroup(v1, {
    "memory/process_api/abc/memory.limit_in_bytes": "9223372036854771712\n",
  }, (paths) => {
    const limit = readMemoryLimit({ ...paths, systemMemory: () => 3 * 2 ** 30 });
    assert.deepEqual(limit, { bytes: 3 * 2 ** 30, from: "system memory" });
  });
});

Deno.test("readMemoryLimit takes the machine's memory when it is below the cgroup's limit, and is undefined when nothing is known", async () => {
  await withCgroup("0::/\n", { "memory.max": "8589934592\n" }, (paths) => {
    const limit = readMemoryLimit({ ...paths, systemMemory: () => 2 ** 30 });
    assert.deepEqual(limit, { bytes: 2 ** 30, from: "system memory" });
  });
  await withCgroup("garbage\n", {}, (paths) => {
    assert.equal(readMemoryLimit({ ...paths, systemMemory: noSystem }), undefined);
  });
  assert.equal(
    readMemoryLimit({
      cgroupRoot: "/nonexistent",
      procCgroup: "/nonexistent/cgroup",
      systemMemory: noSystem,
    }),
    undefined,
  );
});

Deno.test("readMemoryLimit with no options reads this process's own limit, at most the machine's memory", () => {
  const limit = readMemoryLimit();
  assert.ok(limit !== undefined);
  assert.ok(limit.bytes > 0 && limit.bytes <= Deno.systemMemoryInfo().total, String(limit.bytes));
});
