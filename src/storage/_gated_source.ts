/** Test helper: an in-memory source whose stream can be held back at a given offset. */
import type { ByteSource } from "./byte_source.ts";
import { memorySource } from "./memory_source.ts";

/** A source streaming `chunk` bytes at a time that stops after `gate` until `release()`. */
export function gatedSource(
  bytes: Uint8Array,
  gate: number,
  chunk = 4096,
): ByteSource & { release(): void } {
  const inner = memorySource(bytes, "gated.tgz");
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return {
    ...inner,
    stream(offset, length): ReadableStream<Uint8Array> {
      let at = offset;
      const end = offset + length;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (at >= gate) await opened;
          const n = Math.min(chunk, (at < gate ? Math.min(gate, end) : end) - at);
          controller.enqueue(bytes.slice(at, at + n));
          at += n;
          if (at >= end) controller.close();
        },
      }, { highWaterMark: 0 });
    },
    release: () => open(),
  };
}
