import type { DiskCache, MemberCacheKey } from "../storage/disk_cache.ts";
import { BounceReader } from "../storage/_bounce.ts";
import { createSha256, type Sha256, sha256Hex } from "../storage/sha256.ts";
import { type MemberProgress, memberTimeoutMs, secondsText } from "./deadline.ts";

/**
 * Where a member's bytes go: a view of exactly the member's size, or a function that returns
 * one. The function is called again before every chunk is written, so a destination inside a
 * `WebAssembly.Memory` that grew (and got a new buffer) is followed; it must return a view of
 * the same place every time (allocate before calling `load`, not inside the function).
 */
export type LoadTarget = Uint8Array | ((size: number) => Uint8Array);

/** How one member is loaded. */
export interface MemberLoadOptions {
  /** Lower loads first; equal priorities load in call order (default 0). */
  readonly priority?: number;
  /**
   * Called after bytes `[start, end)` of the member were written into the target. Every byte
   * position is written once: a broken connection resumes from the byte reached.
   */
  readonly onProgress?: (start: number, end: number) => void;
}

/** How a loader schedules its range reads. */
export interface LoaderOptions {
  /** Ranges in flight at once (default 4). */
  readonly concurrency?: number;
  /** Members larger than this are fetched as several ranges of this size (default 8 MiB). */
  readonly partBytes?: number;
  /**
   * Members of at most this size whose loads are queued together and lie close in the object
   * are fetched with one range request (default 1 MiB; 0 turns it off).
   */
  readonly coalesceBytes?: number;
  /**
   * Most milliseconds a member may take from its first request to its last byte (default: see
   * `memberTimeoutMs`, 5 minutes); past it, its load fails saying how far it got. 0: no limit.
   */
  readonly memberTimeoutMs?: number;
}

/** What a loader did so far. */
export interface LoaderStats {
  /** Members whose loads resolved. */
  readonly membersLoaded: number;
  /** Of those, the members read from the disk cache. */
  readonly membersFromCache: number;
  /** Bytes written into targets (each byte position once). */
  readonly bytesWritten: number;
}

/**
 * Loads archive members straight into caller-provided memory as their bytes arrive, several
 * ranges in flight, in a priority order the caller can change while loading.
 */
export interface MemberLoader {
  /** The archive's name, for errors. */
  readonly name: string;
  /**
   * Writes member `name` into `target` chunk by chunk as it arrives. Resolves once every byte is
   * in place and, when the archive index gives one, its sha256 matched; rejects on a network
   * failure past the retries, a changed object, or a hash mismatch (the target then holds
   * bytes that must not be used).
   */
  load(name: string, target: LoadTarget, options?: MemberLoadOptions): Promise<void>;
  /** Changes the priority of a member not yet fully requested (default: ahead of all others). */
  prioritize(name: string, priority?: number): void;
  /** What the loader did so far. */
  readonly stats: LoaderStats;
  /** The members asked for and not loaded yet, with how far each got. */
  pending(): MemberProgress[];
  /**
   * Rejects the loads still pending (saying `reason` when given: why the load stopped) and
   * waits for cache writes.
   */
  close(reason?: Error): Promise<void>;
}

/** A member as the loader needs it. */
export interface LoaderMember {
  readonly name: string;
  /** Offset of the payload in the object (used to read neighbours with one request). */
  readonly offset: number;
  readonly size: number;
  readonly sha256?: string;
}

/** What a range-readable archive gives `createRangeLoader`. */
export interface RangeBackend {
  readonly name: string;
  member(name: string): LoaderMember | undefined;
  /** Streams `[offset, offset + length)` of a member; a stream resumes broken connections itself. */
  streamRange(name: string, offset: number, length: number): ReadableStream<Uint8Array>;
  /** Streams `[offset, offset + length)` of the whole object, when members share one object. */
  readonly streamObject?: (offset: number, length: number) => ReadableStream<Uint8Array>;
  readonly cache: DiskCache | undefined;
  cacheKey(member: LoaderMember): MemberCacheKey | undefined;
}

interface Part {
  readonly job: Job;
  readonly start: number;
  readonly end: number;
  at: number;
}

interface Job {
  readonly member: LoaderMember;
  readonly target: LoadTarget;
  readonly onProgress: ((start: number, end: number) => void) | undefined;
  priority: number;
  readonly seq: number;
  readonly parts: Part[];
  remaining: number;
  readonly hasher: Sha256 | undefined;
  hashedTo: number;
  settled: boolean;
  readonly readers: Set<BounceReader>;
  /** Runs from the member's first request (see `LoaderOptions.memberTimeoutMs`). */
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve(): void;
  reject(e: unknown): void;
}

/** The view a target gives for a member, checked against the member's size. */
export function targetView(archive: string, member: LoaderMember, target: LoadTarget): Uint8Array {
  const view = typeof target === "function" ? target(member.size) : target;
  if (view.length !== member.size) {
    throw new RangeError(
      `${archive}: target for member '${member.name}' has ${view.length} bytes, the member has ${member.size}`,
    );
  }
  return view;
}

/** The error of a member whose bytes do not hash to the index's sha256. */
export function hashMismatch(archive: string, member: string, got: string, want: string): Error {
  return new Error(
    `${archive}: member '${member}' has sha256 ${got}, the archive index says ${want}`,
  );
}

/** The error of a load still pending when its loader or stream closed, `reason` saying why. */
export function notLoaded(archive: string, member: string, reason: Error | undefined): Error {
  return reason === undefined
    ? new Error(`${archive}: loader closed before '${member}' arrived`)
    : new Error(`${archive}: member '${member}' was not loaded: ${reason.message}`, {
      cause: reason,
    });
}

/** Checks a member already in memory against its sha256 (cache reads). */
function verified(member: LoaderMember, view: Uint8Array): boolean {
  return member.sha256 === undefined || sha256Hex(view) === member.sha256;
}

/** A `MemberLoader` over range reads (tar over HTTP or from disk, folder, in-memory tar). */
export function createRangeLoader(
  backend: RangeBackend,
  options: LoaderOptions = {},
): MemberLoader {
  return new RangeLoader(backend, options);
}

class RangeLoader implements MemberLoader {
  readonly name: string;
  #backend: RangeBackend;
  #concurrency: number;
  #partBytes: number;
  #coalesceBytes: number;
  #memberTimeoutMs: number;
  #scheduled = false;
  #queue: Part[] = [];
  #jobs = new Map<string, Job>();
  #active = 0;
  #seq = 0;
  #closed = false;
  #writes = new Set<Promise<void>>();
  #membersLoaded = 0;
  #membersFromCache = 0;
  #bytesWritten = 0;

  constructor(backend: RangeBackend, options: LoaderOptions) {
    this.name = backend.name;
    this.#backend = backend;
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#partBytes = Math.max(1 << 16, options.partBytes ?? 8 << 20);
    this.#coalesceBytes = backend.streamObject === undefined ? 0 : options.coalesceBytes ?? 1 << 20;
    this.#memberTimeoutMs = memberTimeoutMs(options.memberTimeoutMs);
  }

  pending(): MemberProgress[] {
    return [...this.#jobs.values()].map((job) => ({
      name: job.member.name,
      bytes: job.parts.reduce((n, p) => n + (p.at - p.start), 0),
      size: job.member.size,
    }));
  }

  get stats(): LoaderStats {
    return {
      membersLoaded: this.#membersLoaded,
      membersFromCache: this.#membersFromCache,
      bytesWritten: this.#bytesWritten,
    };
  }

  load(name: string, target: LoadTarget, options: MemberLoadOptions = {}): Promise<void> {
    const member = this.#backend.member(name);
    if (member === undefined) {
      return Promise.reject(new RangeError(`${this.name}: no member '${name}'`));
    }
    if (this.#closed) return Promise.reject(new TypeError(`${this.name}: load after close`));
    if (this.#jobs.has(name)) {
      return Promise.reject(new TypeError(`${this.name}: member '${name}' is already loading`));
    }
    try {
      targetView(this.name, member, target);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      const job: Job = {
        member,
        target,
        onProgress: options.onProgress,
        priority: options.priority ?? 0,
        seq: this.#seq++,
        parts: [],
        remaining: 0,
        hasher: member.sha256 === undefined ? undefined : createSha256(),
        hashedTo: 0,
        settled: false,
        readers: new Set(),
        timer: undefined,
        resolve,
        reject,
      };
      this.#jobs.set(name, job);
      this.#start(job).catch((e) => this.#fail(job, e));
    });
  }

  prioritize(name: string, priority = -Infinity): void {
    const job = this.#jobs.get(name);
    if (job !== undefined) job.priority = priority;
  }

  async close(reason?: Error): Promise<void> {
    this.#closed = true;
    for (const job of [...this.#jobs.values()]) {
      this.#fail(job, notLoaded(this.name, job.member.name, reason));
    }
    this.#queue = [];
    await Promise.allSettled([...this.#writes]);
  }

  async #start(job: Job): Promise<void> {
    const { member } = job;
    const key = this.#backend.cacheKey(member);
    const cache = this.#backend.cache;
    if (cache !== undefined && key !== undefined && member.size > 0) {
      const view = targetView(this.name, member, job.target);
      if (await cache.readInto(key, view)) {
        if (verified(member, targetView(this.name, member, job.target))) {
          this.#membersFromCache++;
          this.#bytesWritten += member.size;
          job.onProgress?.(0, member.size);
          this.#succeed(job);
          return;
        }
        await cache.remove(key);
      }
    }
    if (job.settled) return;
    for (let start = 0; start < member.size; start += this.#partBytes) {
      const end = Math.min(member.size, start + this.#partBytes);
      job.parts.push({ job, start, end, at: start });
    }
    job.remaining = job.parts.length;
    if (job.remaining === 0) {
      this.#finish(job);
      return;
    }
    this.#queue.push(...job.parts);
    // Loads asked for in the same turn are scheduled together, so neighbours can share a request.
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#pump();
      });
    }
  }

  #pump(): void {
    while (this.#active < this.#concurrency && this.#queue.length > 0) {
      let best = 0;
      for (let i = 1; i < this.#queue.length; i++) {
        const a = this.#queue[i]!;
        const b = this.#queue[best]!;
        if (
          a.job.priority < b.job.priority ||
          (a.job.priority === b.job.priority &&
            (a.job.seq < b.job.seq || (a.job.seq === b.job.seq && a.start < b.start)))
        ) best = i;
      }
      const [part] = this.#queue.splice(best, 1);
      if (part === undefined || part.job.settled) continue;
      const group = this.#neighbours(part);
      for (const p of group) this.#startTimer(p.job);
      this.#active++;
      const run = group.length > 1
        ? this.#runGroup(group).catch((e) => group.forEach((p) => this.#fail(p.job, e)))
        : this.#run(part).catch((e) => this.#fail(part.job, e));
      run.finally(() => {
        this.#active--;
        this.#pump();
      });
    }
  }

  /** Starts a job's member timeout at its first request. */
  #startTimer(job: Job): void {
    if (job.timer !== undefined || this.#memberTimeoutMs <= 0) return;
    job.timer = setTimeout(() => {
      const got = job.parts.reduce((n, p) => n + (p.at - p.start), 0);
      this.#fail(
        job,
        new Error(
          `${this.name}: member '${job.member.name}' stalled: ${got} of ${job.member.size} ` +
            `bytes in ${secondsText(this.#memberTimeoutMs)}, the most a member may take ` +
            `(RILL_MEMBER_TIMEOUT)`,
        ),
      );
    }, this.#memberTimeoutMs);
  }

  #small(p: Part): boolean {
    return p.start === 0 && p.end === p.job.member.size && p.end > 0 &&
      p.end <= this.#coalesceBytes;
  }

  /**
   * Queued whole small members next to `part` in the object, within one part's span and with
   * gaps (tar headers, padding, members nobody asked for) of at most 16 KiB; taken off the queue.
   */
  #neighbours(part: Part): Part[] {
    if (this.#coalesceBytes === 0 || !this.#small(part)) return [part];
    const candidates = this.#queue.filter((p) => !p.job.settled && this.#small(p))
      .sort((a, b) => a.job.member.offset - b.job.member.offset);
    const maxGap = 16 << 10;
    const group = [part];
    let lo = part.job.member.offset;
    let hi = lo + part.job.member.size;
    const after = candidates.filter((p) => p.job.member.offset >= hi);
    const before = candidates.filter((p) => p.job.member.offset < lo).reverse();
    for (const p of after) {
      const m = p.job.member;
      if (m.offset - hi > maxGap || m.offset + m.size - lo > this.#partBytes) break;
      group.push(p);
      hi = m.offset + m.size;
    }
    // Members before it would delay it: only those as urgent as it are taken.
    for (const p of before) {
      const m = p.job.member;
      if (lo - (m.offset + m.size) > maxGap || hi - m.offset > this.#partBytes) break;
      if (p.job.priority > part.job.priority) break;
      group.unshift(p);
      lo = m.offset;
    }
    if (group.length > 1) {
      const taken = new Set(group);
      this.#queue = this.#queue.filter((p) => !taken.has(p));
    }
    return group;
  }

  /** One request for several whole members in object order; the bytes between are dropped. */
  async #runGroup(group: Part[]): Promise<void> {
    const first = group[0]!.job.member;
    const last = group.at(-1)!.job.member;
    const start = first.offset;
    const end = last.offset + last.size;
    const reader = new BounceReader(this.#backend.streamObject!(start, end - start));
    for (const p of group) p.job.readers.add(reader);
    let pos = start;
    try {
      while (pos < end) {
        const { value, done } = await reader.read(end - pos);
        if (done) throw new RangeError(`${this.name}: range ended at byte ${pos}, expected ${end}`);
        const chunkEnd = pos + value.length;
        for (const p of group) {
          const { job } = p;
          if (job.settled) continue;
          const m = job.member;
          const from = Math.max(pos, m.offset + p.at);
          const to = Math.min(chunkEnd, m.offset + m.size);
          if (from >= to) continue;
          const view = targetView(this.name, m, job.target);
          view.set(value.subarray(from - pos, to - pos), from - m.offset);
          const at = p.at;
          p.at = to - m.offset;
          this.#bytesWritten += to - from;
          job.onProgress?.(at, p.at);
          this.#advanceHash(job, view);
          if (p.at === p.end && --job.remaining === 0) this.#finish(job);
        }
        pos = chunkEnd;
      }
    } finally {
      for (const p of group) p.job.readers.delete(reader);
      await reader.cancel().catch(() => {});
    }
  }

  async #run(part: Part): Promise<void> {
    const { job } = part;
    const name = job.member.name;
    const reader = new BounceReader(this.#backend.streamRange(name, part.at, part.end - part.at));
    job.readers.add(reader);
    try {
      while (part.at < part.end) {
        const { value, done } = await reader.read(part.end - part.at);
        if (job.settled) return;
        if (done) {
          throw new RangeError(
            `${this.name}: member '${name}' ended at byte ${part.at}, expected ${part.end}`,
          );
        }
        if (value.length > part.end - part.at) {
          throw new RangeError(
            `${this.name}: member '${name}' got ${value.length} bytes at ${part.at}, past ${part.end}`,
          );
        }
        const view = targetView(this.name, job.member, job.target);
        view.set(value, part.at);
        const start = part.at;
        part.at += value.length;
        this.#bytesWritten += value.length;
        job.onProgress?.(start, part.at);
        this.#advanceHash(job, view);
      }
    } finally {
      job.readers.delete(reader);
      await reader.cancel().catch(() => {});
    }
    if (--job.remaining === 0) this.#finish(job);
  }

  /** Hashes the contiguous prefix of the target that has arrived, so hashing keeps pace. */
  #advanceHash(job: Job, view: Uint8Array): void {
    if (job.hasher === undefined) return;
    for (const p of job.parts) {
      if (p.end <= job.hashedTo) continue;
      if (p.at > job.hashedTo) {
        job.hasher.update(view.subarray(job.hashedTo, p.at));
        job.hashedTo = p.at;
      }
      if (p.at < p.end) break;
    }
  }

  #finish(job: Job): void {
    const { member } = job;
    if (job.hasher !== undefined) {
      const got = job.hasher.hex();
      if (got !== member.sha256) {
        this.#fail(job, hashMismatch(this.name, member.name, got, member.sha256!));
        return;
      }
    }
    const key = this.#backend.cacheKey(member);
    const cache = this.#backend.cache;
    if (cache === undefined || key === undefined || member.size === 0) {
      this.#succeed(job);
      return;
    }
    // Written before the load resolves: the caller may change the target once it has it.
    const write = cache.write(key, targetView(this.name, member, job.target)).catch(() => {})
      .then(() => this.#succeed(job));
    this.#writes.add(write);
    write.finally(() => this.#writes.delete(write));
  }

  #succeed(job: Job): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    this.#jobs.delete(job.member.name);
    this.#membersLoaded++;
    job.resolve();
  }

  #fail(job: Job, e: unknown): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.timer);
    this.#jobs.delete(job.member.name);
    this.#queue = this.#queue.filter((p) => p.job !== job);
    for (const reader of job.readers) reader.cancel().catch(() => {});
    job.reject(e);
  }
}
