/**
 * Opens the member stream of an archive: range reads through the archive's index for a
 * folder or a tar, one pass for a `.tgz`.
 */
import type { ByteSource } from "../storage/byte_source.ts";
import { redactLocation } from "../storage/redact.ts";
import { openLocation } from "../storage/location.ts";
import {
  type Archive,
  type ArchiveMember,
  indexSource,
  type OpenArchiveOptions,
  openFolderArchive,
} from "./archive.ts";
import { inflateBudget, isGzip } from "./gzip.ts";
import {
  type Deadline,
  describeProgress,
  loadTimeoutMs,
  memberTimeoutMs,
  secondsText,
  startDeadline,
} from "./deadline.ts";
import type { LoaderOptions } from "./loader.ts";
import type { MemberClaim, ModelStream } from "./member_stream.ts";
import { TgzStream } from "./tgz_stream.ts";

/** Options of `openModelStream`. */
export interface ModelStreamOptions extends OpenArchiveOptions {
  /** Range reads, and `memberTimeoutMs`, the limit of each member. */
  readonly loader?: LoaderOptions;
}

/**
 * Opens a model archive for loading with overlap: a location (path, `http(s)://`, `s3://`) or
 * a `ByteSource`. A gzip'd tar is streamed once, member by member; anything else goes through
 * `openArchive` and its range loader. From the open to `close`, the load must end within
 * `options.loadTimeoutMs` (see `loadTimeoutMs`, 30 minutes), and each member within its own
 * limit (`options.loader.memberTimeoutMs`): past one, the loads still pending fail with an
 * error naming the archive (redacted) and what it was waiting for.
 *
 * @example
 * ```ts ignore
 * const stream = await openModelStream("https://example.com/model.nnef.tgz");
 * const model = await loadModel(stream, { lazy: true });
 * await model.weightsReady;
 * await stream.close();
 * ```
 */
export async function openModelStream(
  location: string | ByteSource,
  options: ModelStreamOptions = {},
): Promise<ModelStream> {
  const name = typeof location === "string" ? redactLocation(location) : location.name;
  const limit = loadTimeoutMs(options.loadTimeoutMs);
  let stream: ModelStream | undefined;
  const deadline = startDeadline(limit, () => {
    const pending = stream?.pending() ?? [];
    return new Error(
      `${name}: not loaded within ${secondsText(limit)} (RILL_LOAD_TIMEOUT); ${
        stream === undefined
          ? "it was still being opened"
          : pending.length === 0
          ? "no member was loading"
          : `still waiting for ${describeProgress(pending)}`
      }`,
    );
  });
  const signal = options.http?.signal === undefined
    ? deadline.signal
    : AbortSignal.any([options.http.signal, deadline.signal]);
  try {
    stream = await openStream(location, {
      ...options,
      http: { ...options.http, signal },
      loadTimeoutMs: 0,
    });
  } catch (e) {
    deadline.clear();
    throw e;
  }
  const opened = stream;
  deadline.signal.addEventListener("abort", () => {
    opened.close(deadline.signal.reason).catch(() => {});
  });
  return withDeadline(opened, deadline);
}

/** `stream`, whose `close` also stops `deadline`. */
function withDeadline(stream: ModelStream, deadline: Deadline): ModelStream {
  return {
    name: stream.name,
    kind: stream.kind,
    ended: stream.ended,
    members: () => stream.members(),
    onMember: (claim) => stream.onMember(claim),
    load: (name, target, options) => stream.load(name, target, options),
    read: (name) => stream.read(name),
    prioritize: (name, priority) => stream.prioritize(name, priority),
    pending: () => stream.pending(),
    get stats() {
      return stream.stats;
    },
    close(reason?: Error): Promise<void> {
      deadline.clear();
      return stream.close(reason);
    },
  };
}

async function openStream(
  location: string | ByteSource,
  options: ModelStreamOptions,
): Promise<ModelStream> {
  const loader = options.loader ? { loader: options.loader } : {};
  let source = location;
  let cache = options.cache || undefined;
  if (typeof source === "string") {
    const opened = await openLocation(source, options);
    if (opened === undefined) return archiveStream(await openFolderArchive(source), loader);
    ({ source, cache } = opened);
  }
  const owned = typeof location === "string";
  try {
    const size = await source.size();
    if (await isGzip(source, size)) {
      return new TgzStream(source, size, owned, {
        budget: inflateBudget(size, options.maxInflatedBytes),
        memberTimeoutMs: memberTimeoutMs(options.loader?.memberTimeoutMs),
      });
    }
  } catch (e) {
    if (owned) await source.close();
    throw e;
  }
  return archiveStream(await indexSource(source, { ...options, owned, cache }), loader);
}

/** Options of `archiveStream`. */
export interface ArchiveStreamOptions {
  /** Range reads of the archive's loader. */
  readonly loader?: LoaderOptions;
  /** Whether closing the stream closes the archive; default true. */
  readonly owns?: boolean;
}

/**
 * A `ModelStream` over an opened archive: every member known at once, loaded by range through
 * the archive's loader (several in flight, in priority order). Closing the stream closes that
 * loader, and the archive only when `options.owns` (default true).
 */
export function archiveStream(archive: Archive, options: ArchiveStreamOptions = {}): ModelStream {
  const loader = archive.loader(options.loader);
  // Whole members read into buffers of their own (graph.nnef): the same limits, not counted
  // in `stats`, which tells the bytes written into targets.
  const reader = archive.loader(options.loader);
  const owns = options.owns ?? true;
  const claimed = new Set<string>();
  return {
    name: archive.name,
    kind: archive.kind,
    async *members(): AsyncIterable<ArchiveMember> {
      yield* archive.members();
    },
    onMember(claim: (member: ArchiveMember) => MemberClaim | undefined): void {
      for (const m of archive.members()) {
        if (claimed.has(m.name)) continue;
        const taken = claim(m);
        if (taken === undefined) continue;
        claimed.add(m.name);
        const done = loader.load(
          m.name,
          taken.target,
          taken.onProgress ? { onProgress: taken.onProgress } : {},
        );
        if (taken.arrived) taken.arrived(done);
        else done.catch(() => {});
      }
    },
    load: (name, target, opts) => loader.load(name, target, opts),
    async read(name: string): Promise<Uint8Array> {
      const member = archive.member(name);
      if (member === undefined) throw new RangeError(`${archive.name}: no member '${name}'`);
      const bytes = new Uint8Array(member.size);
      await reader.load(name, bytes);
      return bytes;
    },
    prioritize: (name, priority) => loader.prioritize(name, priority),
    get stats() {
      return loader.stats;
    },
    ended: Promise.resolve(),
    pending: () => [...reader.pending(), ...loader.pending()],
    async close(reason?: Error): Promise<void> {
      await reader.close(reason);
      await loader.close(reason);
      if (!owns) return;
      await archive.close();
    },
  };
}
