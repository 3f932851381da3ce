/** The pieces of HTTP range reading with retries: failures worth retrying, headers, waits. */

/** A failure worth retrying (network error, 408, 429, 5xx, truncated body). */
export class Transient extends Error {
  /** What the server asked to wait, if it did. */
  readonly retryAfterMs: number | undefined;
  /** A failure worth retrying, after `retryAfterMs` when the server said. */
  constructor(message: string, retryAfterMs?: number) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

/** A `Content-Range` header, read. */
export interface ContentRange {
  /** First byte. */
  readonly start: number;
  /** Last byte (inclusive). */
  readonly end: number;
  /** The object's size, when the server says. */
  readonly total: number | undefined;
}

/** Reads `bytes start-end/total`; undefined for anything else. */
export function parseContentRange(value: string | null): ContentRange | undefined {
  const m = value === null ? null : /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value.trim());
  if (m === null) return undefined;
  return {
    start: Number(m[1]),
    end: Number(m[2]),
    total: m[3] === "*" ? undefined : Number(m[3]),
  };
}

/** The wait a `Retry-After` header asks for (seconds or a date), in ms. */
export function retryAfterMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Closes a byte stream, ending a BYOB read already waiting (it is not ended by close alone). */
export function close(controller: ReadableByteStreamController): void {
  controller.close();
  controller.byobRequest?.respond(0);
}

/** Waits `ms`, or rejects with the reason of `signal` as soon as it aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The text of an abort reason. */
export function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}
