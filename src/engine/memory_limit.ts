/** How much memory this process may use, read from its cgroup and the machine. */

/** A memory limit in bytes and where it was found. */
export interface MemoryLimit {
  /** The limit in bytes. */
  readonly bytes: number;
  /** The setting it was given by, the cgroup file it was read from, or `system memory`. */
  readonly from: string;
}

/** Where `readMemoryLimit` looks; every field defaults to the running process's own. */
export interface MemoryLimitOptions {
  /** Mount point of the cgroup file system (default `/sys/fs/cgroup`). */
  readonly cgroupRoot?: string;
  /** The process's cgroup membership list (default `/proc/self/cgroup`). */
  readonly procCgroup?: string;
  /**
   * Total memory of the machine, or undefined when unknown (default: `Deno.systemMemoryInfo`
   * when `--allow-sys` is granted).
   */
  readonly systemMemory?: () => number | undefined;
}

/** cgroup v1 writes "no limit" as a number near 2^63; anything this large means none. */
const UNLIMITED = 2 ** 60;

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * Parses a size in bytes: a whole number, optionally followed by K, M, G or T (binary
 * multiples; `KiB`, `MB` and the like are read the same way).
 *
 * @throws {RangeError} naming `name` when `text` is not such a size
 */
export function parseByteSize(text: string, name: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  const bytes = match ? Math.floor(Number(match[1]) * UNITS[match[2]!.toUpperCase()]!) : NaN;
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) {
    throw new RangeError(
      `${name} must be a size in bytes such as '805306368', '768M' or '4G', got '${text}'`,
    );
  }
  return bytes;
}

/**
 * The memory this process may use: the lowest of its cgroup's limit (v2 `memory.max` or v1
 * `memory.limit_in_bytes`, of its own cgroup and the ones above it) and the machine's total
 * memory; undefined when neither can be read.
 */
export function readMemoryLimit(options: MemoryLimitOptions = {}): MemoryLimit | undefined {
  const found: MemoryLimit[] = [];
  const cgroup = cgroupLimit(
    options.cgroupRoot ?? "/sys/fs/cgroup",
    options.procCgroup ?? "/proc/self/cgroup",
  );
  if (cgroup) found.push(cgroup);
  const system = (options.systemMemory ?? machineMemory)();
  if (system !== undefined && system > 0) found.push({ bytes: system, from: "system memory" });
  return found.reduce<MemoryLimit | undefined>(
    (a, b) => (a && a.bytes <= b.bytes ? a : b),
    undefined,
  );
}

/** The lowest memory limit on the path from the process's cgroup up to the root, if any. */
function cgroupLimit(root: string, procCgroup: string): MemoryLimit | undefined {
  const membership = readText(procCgroup);
  if (membership === undefined) return undefined;
  const candidates: string[] = [];
  for (const line of membership.split("\n")) {
    const [, controllers, path] = /^\d+:([^:]*):(\/.*)$/.exec(line.trim()) ?? [];
    if (path === undefined) continue;
    if (controllers === "") candidates.push(...ancestry(root, path, "memory.max"));
    else if (controllers!.split(",").includes("memory")) {
      candidates.push(...ancestry(`${root}/memory`, path, "memory.limit_in_bytes"));
    }
  }
  let lowest: MemoryLimit | undefined;
  for (const file of candidates) {
    const text = readText(file)?.trim();
    if (text === undefined || text === "max") continue;
    const bytes = Number(text);
    if (!Number.isFinite(bytes) || bytes <= 0 || bytes >= UNLIMITED) continue;
    if (lowest === undefined || bytes < lowest.bytes) lowest = { bytes, from: file };
  }
  return lowest;
}

/** `file` in the cgroup folder `path` under `mount` and in each folder above it. */
function ancestry(mount: string, path: string, file: string): string[] {
  const parts = path.split("/").filter((p) => p !== "");
  const files: string[] = [];
  for (let depth = parts.length; depth >= 0; depth--) {
    files.push([mount, ...parts.slice(0, depth), file].join("/"));
  }
  return files;
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function machineMemory(): number | undefined {
  if (Deno.permissions.querySync({ name: "sys", kind: "systemMemoryInfo" }).state !== "granted") {
    return undefined;
  }
  return Deno.systemMemoryInfo().total;
}
