/**
 * The member stream of the byte pipeline: an archive's members handed out as their bytes
 * arrive, weights written straight into place, small members read into buffers of their own.
 * `openModelStream` (`model_stream.ts`) makes one over range reads or over one `.tgz` pass
 * (`tgz_stream.ts`).
 */
import type { ArchiveMember } from "./archive.ts";
import type { MemberProgress } from "./deadline.ts";
import type { LoaderStats, LoadTarget, MemberLoadOptions } from "./loader.ts";

/**
 * A model archive whose members a loader takes as they become available: all at once for a
 * tar or folder (range reads, several in flight, in priority order), in stream order for a
 * `.tgz` (one pass over the compressed bytes, each member delivered as soon as it is complete).
 *
 * A `.tgz` of a converted tar begins with the converter's `rill-index.json`: its member list is
 * then known once the index has passed, before their bytes, and the stream must match it (each
 * member listed, at the listed offset and size, with the listed sha256, and none missing), or
 * it fails with an error naming the archive and the member.
 */
export interface ModelStream {
  /** The archive's name (a URL redacted), for errors. */
  readonly name: string;
  /** What the members come from (a `.tgz` is read in one pass). */
  readonly kind: "folder" | "tar" | "tgz";
  /**
   * The archive's members as they become known. Every one at once for a tar or folder, and for
   * a `.tgz` with the converter's index (the index, then what it lists in archive order, as
   * soon as the index has passed; the iteration ends then, not with the stream). A `.tgz`
   * without one lists each member as it begins, and the iteration ends with the stream (so
   * only then is a member known to be absent; it throws if the stream failed).
   */
  members(): AsyncIterable<ArchiveMember>;
  /**
   * Calls `claim` synchronously for every member as it begins (for a `.tgz`, as the stream
   * reaches it, before any of its payload is written, even when its index listed it earlier;
   * for a tar, every member at once; members already begun are offered at once). A returned
   * `MemberClaim` takes the member as `load` would: its bytes go straight into the target,
   * with no copy held for a later `load`. Several hooks may be added: a member is offered to
   * them in the order they were added until one claims it, and a member claimed or loaded is
   * not offered again, so each hook returns undefined for what it does not want.
   */
  onMember(claim: (member: ArchiveMember) => MemberClaim | undefined): void;
  /**
   * Writes a member into `target` as its bytes arrive (see `MemberLoader.load`). For a `.tgz`,
   * a member that passed before it was asked for was held in memory; it moves into the target
   * and is released. A member not in the archive rejects once that is known (a `.tgz` without
   * an index: at the end of the stream).
   */
  load(name: string, target: LoadTarget, options?: MemberLoadOptions): Promise<void>;
  /** A whole member in a buffer of its own (for small members: graph, tokenizer). */
  read(name: string): Promise<Uint8Array>;
  /** Moves a member ahead of the others (tar: pending ranges; `.tgz`: no effect, order is fixed). */
  prioritize(name: string, priority?: number): void;
  /** What was written into targets so far. */
  readonly stats: LoaderStats;
  /** The members being loaded or waited for, with how far each got. */
  pending(): MemberProgress[];
  /**
   * Settles once the archive was read to its end: for a `.tgz`, when its gzip trailer (CRC-32
   * and length) checked out, rejecting when it did not or the stream failed (a flipped bit in a
   * member without a sha256 is caught only there, after the member itself arrived); at once for
   * a tar or folder, whose members are checked as they load. Resolves when closed before.
   */
  readonly ended: Promise<void>;
  /**
   * Stops loading; loads still pending reject, saying `reason` when given (why the load
   * stopped).
   */
  close(reason?: Error): Promise<void>;
}

/** A member taken by an `onMember` hook: where its bytes go, and who hears of their arrival. */
export interface MemberClaim {
  /** Where the member's bytes go. */
  readonly target: LoadTarget;
  /** Called after bytes `[start, end)` of the member were written into the target. */
  readonly onProgress?: (start: number, end: number) => void;
  /** Called synchronously with the member's arrival (rejects on failure or sha256 mismatch). */
  readonly arrived?: (done: Promise<void>) => void;
}
