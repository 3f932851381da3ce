/**
 * A `.tgz` read in one pass: the tar is parsed out of the decompressed stream as it flows, and
 * each member is written into its target (or held until asked for) as it passes.
 */
import type { ByteSource } from "../storage/byte_source.ts";
import { concatBytes } from "../storage/bytes.ts";
import { createSha256, type Sha256 } from "../storage/sha256.ts";
import type { ArchiveMember } from "./archive.ts";
import { ARCHIVE_INDEX_MEMBER, parseArchiveIndex } from "./archive_index.ts";
import { gunzipStream } from "./gzip.ts";
import { type MemberProgress, secondsText } from "./deadline.ts";
import {
  hashMismatch,
  type LoaderStats,
  type LoadTarget,
  type MemberLoadOptions,
  notLoaded,
  targetView,
} from "./loader.ts";
import type { MemberClaim, ModelStream } from "./member_stream.ts";
import { normalizeMemberName } from "./tar.ts";
import { TarStreamWalk } from "./tar_stream.ts";

interface Claim {
  readonly target: LoadTarget;
  readonly onProgress: ((start: number, end: number) => void) | undefined;
  resolve(): void;
  reject(e: unknown): void;
}

interface Entry {
  readonly member: ArchiveMember;
  received: number;
  done: boolean;
  /** Chunks of a member nobody has asked for yet (views: the gunzip stream never reuses a chunk). */
  chunks: Uint8Array[];
  /** The whole member once done and still unclaimed. */
  held: Uint8Array | undefined;
  claim: Claim | undefined;
  readonly hasher: Sha256 | undefined;
  /** Set when the member is complete and does not match the index's sha256. */
  mismatch: Error | undefined;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A `.tgz` read in one pass; members are parsed out of the decompressed stream as it flows. */
export class TgzStream implements ModelStream {
  readonly name: string;
  readonly kind = "tgz" as const;
  #source: ByteSource;
  #owned: boolean;
  #entries = new Map<string, Entry>();
  #order: ArchiveMember[] = [];
  #claims = new Map<string, Claim>();
  #waiters = new Map<string, Deferred<void>[]>();
  #hooks: ((member: ArchiveMember) => MemberClaim | undefined)[] = [];
  #changed = deferred<void>();
  #done = false;
  #error: unknown;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #pump: Promise<void>;
  /** The members `rill-index.json` lists, once it has passed (the index first, then by offset). */
  #list: ArchiveMember[] | undefined;
  #listed: Map<string, ArchiveMember> | undefined;
  /** The first member while it passes, when it is `rill-index.json`. */
  #index: Entry | undefined;
  #closing = false;
  #closeReason: Error | undefined;
  #membersLoaded = 0;
  #bytesWritten = 0;

  /** Bytes the tar may inflate to; its headers are held to it before their payloads pass. */
  #budget: number;
  /** Most ms the stream may stay on one member, or between two (0: no limit). */
  #memberTimeoutMs: number;
  #memberTimer: ReturnType<typeof setTimeout> | undefined;
  /** The member the stream is on, or null between two. */
  #current: Entry | null = null;
  /** Set when the stream stalled: why the pump ended. */
  #stalled: Error | undefined;
  readonly ended: Promise<void>;

  constructor(
    source: ByteSource,
    size: number,
    owned: boolean,
    limits: { readonly budget: number; readonly memberTimeoutMs: number },
  ) {
    this.name = source.name;
    this.#source = source;
    this.#owned = owned;
    this.#budget = limits.budget;
    this.#memberTimeoutMs = limits.memberTimeoutMs;
    this.#reader = gunzipStream(source, size, limits.budget).getReader();
    this.#restartTimer();
    this.#pump = this.#run().then(
      () => this.#end(undefined),
      (e) => this.#end(e),
    );
    this.ended = this.#pump.then(() => {
      if (this.#error !== undefined && !this.#closing) throw this.#error;
    });
    this.ended.catch(() => {});
  }

  get stats(): LoaderStats {
    return {
      membersLoaded: this.#membersLoaded,
      membersFromCache: 0,
      bytesWritten: this.#bytesWritten,
    };
  }

  async *members(): AsyncIterable<ArchiveMember> {
    let i = 0;
    for (;;) {
      // The index is the first member: what was yielded of the stream's order is its prefix.
      // Looked up at every step, since the list may come while a yield is pending.
      const list = this.#list ?? this.#order;
      if (i < list.length) {
        yield list[i++]!;
        continue;
      }
      if (this.#list !== undefined) return;
      if (this.#done) {
        if (this.#error !== undefined) throw this.#error;
        return;
      }
      await this.#changed.promise;
    }
  }

  onMember(claim: (member: ArchiveMember) => MemberClaim | undefined): void {
    this.#hooks.push(claim);
    for (const m of this.#order) {
      const entry = this.#entries.get(m.name)!;
      if (entry.claim !== undefined || (entry.done && entry.held === undefined)) continue;
      this.#offer(entry, claim);
    }
  }

  /** Offers a member to a hook; a claim attaches at once (what passed already is moved in). */
  #offer(entry: Entry, hook: (member: ArchiveMember) => MemberClaim | undefined): boolean {
    const taken = hook(entry.member);
    if (taken === undefined) return false;
    const done = new Promise<void>((resolve, reject) => {
      const claim: Claim = { target: taken.target, onProgress: taken.onProgress, resolve, reject };
      try {
        this.#attach(entry, claim);
      } catch (e) {
        reject(e);
      }
    });
    if (taken.arrived) taken.arrived(done);
    else done.catch(() => {});
    return true;
  }

  load(name: string, target: LoadTarget, options: MemberLoadOptions = {}): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const claim: Claim = { target, onProgress: options.onProgress, resolve, reject };
      const entry = this.#entries.get(name);
      if (entry === undefined) {
        if (this.#done || this.#unlisted(name)) {
          reject(this.#error ?? new RangeError(`${this.name}: no member '${name}'`));
        } else if (this.#claims.has(name)) {
          reject(new TypeError(`${this.name}: member '${name}' is already loading`));
        } else this.#claims.set(name, claim);
        return;
      }
      if (entry.claim !== undefined || (entry.done && entry.held === undefined)) {
        reject(new TypeError(`${this.name}: member '${name}' was already loaded`));
        return;
      }
      try {
        this.#attach(entry, claim);
      } catch (e) {
        reject(e);
      }
    });
  }

  async read(name: string): Promise<Uint8Array> {
    let entry = this.#entries.get(name);
    while (entry === undefined || !entry.done) {
      if (this.#done || (entry === undefined && this.#unlisted(name))) {
        throw this.#error ?? new RangeError(`${this.name}: no member '${name}'`);
      }
      const wait = deferred<void>();
      this.#waiters.set(name, [...(this.#waiters.get(name) ?? []), wait]);
      await wait.promise;
      entry = this.#entries.get(name);
    }
    if (entry.mismatch !== undefined) throw entry.mismatch;
    if (entry.held === undefined) {
      throw new TypeError(`${this.name}: member '${name}' was loaded into a target, not kept`);
    }
    return entry.held;
  }

  prioritize(): void {}

  pending(): MemberProgress[] {
    const out: MemberProgress[] = [];
    if (this.#current !== null) {
      out.push({
        name: this.#current.member.name,
        bytes: this.#current.received,
        size: this.#current.member.size,
      });
    }
    for (const name of this.#claims.keys()) {
      out.push({ name, bytes: 0, size: this.#listed?.get(name)?.size });
    }
    return out;
  }

  /** Gives the stream another `#memberTimeoutMs` to reach the next member boundary. */
  #restartTimer(): void {
    clearTimeout(this.#memberTimer);
    if (this.#memberTimeoutMs <= 0 || this.#done) return;
    this.#memberTimer = setTimeout(() => {
      const at = this.#current;
      this.#stalled = new Error(
        `${this.name}: stalled ${
          at === null
            ? "between two members"
            : `in member '${at.member.name}' (${at.received} of ${at.member.size} bytes)`
        } for ${
          secondsText(this.#memberTimeoutMs)
        }, the most a member may take (RILL_MEMBER_TIMEOUT)`,
      );
      this.#reader.cancel(this.#stalled).catch(() => {});
    }, this.#memberTimeoutMs);
  }

  async close(reason?: Error): Promise<void> {
    this.#closing = true;
    this.#closeReason ??= reason;
    if (!this.#done) await this.#reader.cancel().catch(() => {});
    await this.#pump;
    for (const entry of this.#entries.values()) entry.held = undefined;
    if (this.#owned) await this.#source.close();
  }

  /** True when the index has passed and does not list `name`. */
  #unlisted(name: string): boolean {
    return this.#listed !== undefined && !this.#listed.has(name);
  }

  /** Gives an arriving or arrived member its target, moving what was held into it. */
  #attach(entry: Entry, claim: Claim): void {
    const view = targetView(this.name, entry.member, claim.target);
    const passed = entry.held === undefined ? entry.chunks : [entry.held];
    entry.claim = claim;
    entry.chunks = [];
    entry.held = undefined;
    let at = 0;
    for (const chunk of passed) {
      view.set(chunk, at);
      at += chunk.length;
    }
    if (at > 0) {
      this.#bytesWritten += at;
      claim.onProgress?.(0, at);
    }
    if (entry.done) this.#settle(entry);
  }

  #settle(entry: Entry): void {
    const claim = entry.claim;
    if (claim === undefined) return;
    if (entry.mismatch !== undefined) {
      claim.reject(entry.mismatch);
      return;
    }
    this.#membersLoaded++;
    claim.resolve();
  }

  #notify(): void {
    const old = this.#changed;
    this.#changed = deferred<void>();
    old.resolve();
  }

  #end(error: unknown): void {
    this.#done = true;
    clearTimeout(this.#memberTimer);
    // Closed while it flowed: what was still awaited was not loaded, whatever the cut left.
    if (this.#closing) this.#error = this.#closeReason;
    else if (error !== undefined) {
      const why = error instanceof Error ? error.message : String(error);
      const own = why.startsWith(`${this.name}: `) ? why.slice(this.name.length + 2) : why;
      this.#error = new RangeError(`${this.name}: the .tgz stream failed: ${own}`, {
        cause: error,
      });
    }
    const failure = (member: string, otherwise: string): Error =>
      this.#closing
        ? notLoaded(this.name, member, this.#closeReason)
        : (this.#error as Error | undefined) ?? new RangeError(`${this.name}: ${otherwise}`);
    for (const [name, claim] of this.#claims) {
      claim.reject(failure(name, `no member '${name}'`));
    }
    this.#claims.clear();
    for (const entry of this.#entries.values()) {
      if (!entry.done && entry.claim !== undefined) {
        entry.claim.reject(failure(entry.member.name, "truncated member"));
      }
    }
    for (const waits of this.#waiters.values()) for (const w of waits) w.resolve();
    this.#waiters.clear();
    this.#notify();
  }

  /** Walks the tar out of the decompressed stream and routes payload bytes. */
  async #run(): Promise<void> {
    let entry: Entry | undefined;
    const walk = new TarStreamWalk(this.name, this.#budget, {
      begin: (e) => {
        const name = e.regular ? normalizeMemberName(e.name, this.name) : undefined;
        if (name === undefined) return false;
        entry = this.#begin({ name, offset: e.offset, size: e.size });
        return true;
      },
      payload: (bytes) => this.#payload(entry!, bytes),
      end: () => {
        this.#complete(entry!);
        entry = undefined;
      },
    });
    for (;;) {
      const { value, done } = await this.#reader.read();
      if (done) break;
      walk.push(value);
    }
    if (this.#stalled !== undefined) throw this.#stalled;
    walk.finish();
    if (this.#listed === undefined || this.#closing) return;
    for (const name of this.#listed.keys()) {
      if (!this.#entries.has(name)) {
        throw new RangeError(
          `member '${name}' listed in ${ARCHIVE_INDEX_MEMBER} is not in the stream`,
        );
      }
    }
  }

  #begin(member: ArchiveMember): Entry {
    const listed = this.#checkListed(member);
    if (this.#entries.has(member.name)) {
      throw new RangeError(
        `member '${member.name}' appears twice (again at offset ${member.offset})`,
      );
    }
    const entry: Entry = {
      member: listed ?? member,
      received: 0,
      done: false,
      chunks: [],
      held: undefined,
      claim: undefined,
      hasher: listed?.sha256 === undefined ? undefined : createSha256(),
      mismatch: undefined,
    };
    if (member.name === ARCHIVE_INDEX_MEMBER && this.#order.length === 0) this.#index = entry;
    this.#entries.set(member.name, entry);
    this.#current = entry;
    this.#restartTimer();
    this.#order.push(entry.member);
    const claim = this.#claims.get(member.name);
    this.#claims.delete(member.name);
    if (claim !== undefined) {
      try {
        this.#attach(entry, claim);
      } catch (e) {
        claim.reject(e);
      }
    } else {
      for (const hook of this.#hooks) if (this.#offer(entry, hook)) break;
    }
    this.#notify();
    return entry;
  }

  /** The index's record of a member beginning in the stream, which must match it. */
  #checkListed(member: ArchiveMember): ArchiveMember | undefined {
    if (this.#listed === undefined) return undefined;
    const { name, offset, size } = member;
    const listed = this.#listed.get(name);
    if (listed === undefined) {
      throw new RangeError(
        `member '${name}' at offset ${offset} is not listed in ${ARCHIVE_INDEX_MEMBER}`,
      );
    }
    if (this.#entries.has(name)) {
      throw new RangeError(`member '${name}' appears twice (again at offset ${offset})`);
    }
    if (listed.offset !== offset || listed.size !== size) {
      throw new RangeError(
        `member '${name}' has ${size} bytes at offset ${offset}, ${ARCHIVE_INDEX_MEMBER} lists ${listed.size} at ${listed.offset}`,
      );
    }
    return listed;
  }

  #payload(entry: Entry, bytes: Uint8Array): void {
    entry.hasher?.update(bytes);
    const start = entry.received;
    entry.received += bytes.length;
    if (entry.claim === undefined) {
      entry.chunks.push(bytes);
      return;
    }
    const view = targetView(this.name, entry.member, entry.claim.target);
    view.set(bytes, start);
    this.#bytesWritten += bytes.length;
    entry.claim.onProgress?.(start, entry.received);
  }

  #complete(entry: Entry): void {
    entry.done = true;
    this.#current = null;
    this.#restartTimer();
    const want = entry.member.sha256;
    if (entry.hasher !== undefined && want !== undefined) {
      const got = entry.hasher.hex();
      if (got !== want) entry.mismatch = hashMismatch(this.name, entry.member.name, got, want);
    }
    const held = entry.claim === undefined ? concatBytes(entry.chunks, entry.received) : undefined;
    if (entry === this.#index) {
      this.#index = undefined;
      // A claim has not been told yet, so its target still holds the index as it passed.
      this.#readIndex(entry, held ?? targetView(this.name, entry.member, entry.claim!.target));
    }
    if (held !== undefined) {
      entry.held = held;
      entry.chunks = [];
    } else this.#settle(entry);
    for (const w of this.#waiters.get(entry.member.name) ?? []) w.resolve();
    this.#waiters.delete(entry.member.name);
    this.#notify();
  }

  /**
   * A `.tgz` of a converted tar carries the index first: it lists the members ahead of their
   * bytes, and what follows must match it (sha256s included).
   */
  #readIndex(index: Entry, bytes: Uint8Array): void {
    const end = index.member.offset + index.member.size;
    const entries = parseArchiveIndex(bytes, this.name, Number.MAX_SAFE_INTEGER, end)
      .sort((a, b) => a.offset - b.offset);
    this.#list = [index.member, ...entries];
    this.#listed = new Map(entries.map((e) => [e.name, e]));
  }
}
