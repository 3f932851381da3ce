/**
 * The hand-up step of the byte pipeline for small members (tokenizer and config files): read
 * out of the same pass as the weights, into buffers of their own.
 */
import type { ArchiveMember } from "./archive.ts";
import type { ModelStream } from "./member_stream.ts";

/** What `readSmallMembers` found: the members asked for that the archive has, and the weights' size. */
export interface SmallMembers {
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Bytes of the `.dat` members. */
  readonly weightBytes: number;
}

/**
 * Reads the members `names` of `stream` into buffers of their own as they pass (claimed as they
 * begin, or asked for once listed: the stream holds no copy), and sums the `.dat` members'
 * sizes; `onListed` hears of each member as it is listed. Resolves once the member list is
 * complete (a `.tgz` without an index: at the end of the stream) and the members found are in.
 */
export async function readSmallMembers(
  stream: ModelStream,
  names: readonly string[],
  onListed: (member: ArchiveMember) => void,
): Promise<SmallMembers> {
  const wanted = new Set(names);
  const files = new Map<string, Uint8Array>();
  const arrivals: Promise<void>[] = [];
  const keep = (name: string, bytes: Uint8Array, done: Promise<void>) => {
    const kept = done.then(() => void files.set(name, bytes));
    kept.catch(() => {});
    arrivals.push(kept);
  };
  stream.onMember((m) => {
    if (!wanted.delete(m.name)) return undefined;
    const bytes = new Uint8Array(m.size);
    return { target: bytes, arrived: (done) => keep(m.name, bytes, done) };
  });
  let weightBytes = 0;
  const listed = new Map<string, number>();
  for await (const m of stream.members()) {
    listed.set(m.name, m.size);
    onListed(m);
    if (m.name.endsWith(".dat")) weightBytes += m.size;
  }
  // Listed ahead of its bytes (a `.tgz`'s index) and not begun yet, or it would be claimed.
  for (const name of wanted) {
    const size = listed.get(name);
    if (size === undefined) continue;
    const bytes = new Uint8Array(size);
    keep(name, bytes, stream.load(name, bytes));
  }
  await Promise.all(arrivals);
  return { files, weightBytes };
}
