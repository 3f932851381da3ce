import type { ByteSource } from "./byte_source.ts";
import { concatBytes } from "./bytes.ts";
import { checkRange, chunkedStream } from "./_range.ts";
import { BounceReader } from "./_bounce.ts";
import { redactUrl } from "./redact.ts";
import {
  close,
  type ContentRange,
  parseContentRange,
  reasonText,
  retryAfterMs,
  sleep,
  Transient,
} from "./_http_retry.ts";

/** How `openHttpSource` talks to the server. */
export interface HttpSourceOptions {
  /** The fetch to use, e.g. one that signs requests; defaults to the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** Extra request headers (e.g. `Authorization`). */
  readonly headers?: HeadersInit;
  /** Retries after the first attempt for network errors, 408, 429 and 5xx (default 4). */
  readonly retries?: number;
  /** First backoff delay in ms, doubled per retry, with jitter (default 200). */
  readonly retryBaseMs?: number;
  /** Upper bound of one backoff delay in ms, `Retry-After` included (default 5000). */
  readonly retryMaxMs?: number;
  /** Bytes read by the first request, kept to serve reads inside them (default 1024). */
  readonly probeBytes?: number;
  /** Send `If-Match` with the first response's strong ETag, so a changed object fails (default true). */
  readonly pinEtag?: boolean;
  /** Time in ms to wait for response headers before the attempt counts as failed (default 30000). */
  readonly timeoutMs?: number;
  /**
   * Ends every request and retry wait of the source when it aborts (a load's deadline): reads
   * and streams then fail with its reason, at once and without retrying.
   */
  readonly signal?: AbortSignal;
}

/** A `ByteSource` over HTTP(S) Range requests, with request counters. */
export interface HttpSource extends ByteSource {
  /** HTTP requests sent so far, retries included. */
  readonly requests: number;
  /** Response body bytes received so far. */
  readonly bytesFetched: number;
  /** The strong ETag of the object when the server sent one. */
  readonly etag: string | undefined;
  /**
   * True when every read sees one version of the object: pinned to its strong ETag
   * (`If-Match`) or Last-Modified (`If-Unmodified-Since`), so that a change on the server fails
   * them, or all served from the one whole body held (a server that ignores Range). False when
   * the server sends neither validator (or pinning is off): two reads may see two versions.
   */
  readonly pinned: boolean;
  /** False once the server has ignored a Range header and the whole body is held in memory. */
  readonly rangeSupported: boolean;
}

/**
 * Opens an HTTP(S) object for range reads. The first request (`Range: bytes=0-…`) learns the
 * size from `Content-Range`; a server that answers `200` instead is read once, whole, and
 * every range is then served from that body.
 *
 * @param url an `http:` or `https:` URL (presigned URLs work: the query is kept, only redacted in errors)
 * @throws {Error} when the server refuses (403, 404, ...) or keeps failing past the retries
 * @throws {TypeError} for a URL that is not http(s)
 */
export async function openHttpSource(
  url: string | URL,
  options: HttpSourceOptions = {},
): Promise<HttpSource> {
  const source = new HttpByteSource(url, options);
  await source.open();
  return source;
}

class HttpByteSource implements HttpSource {
  readonly name: string;
  #url: string;
  #fetch: typeof fetch;
  #headers: Headers;
  #retries: number;
  #retryBaseMs: number;
  #retryMaxMs: number;
  #probeBytes: number;
  #pinEtag: boolean;
  #timeoutMs: number;
  #size = 0;
  #head: Uint8Array = new Uint8Array(0);
  #full: Uint8Array | undefined;
  #etag: string | undefined;
  #lastModified: string | undefined;
  #requests = 0;
  #bytesFetched = 0;
  #closed = false;
  #aborts = new WeakMap<Response, AbortController>();
  /** Aborted by `close`: requests still in flight end with it. */
  #life = new AbortController();
  /** `options.signal` and `#life`: what ends every request. */
  #signal: AbortSignal;

  constructor(url: string | URL, options: HttpSourceOptions) {
    const parsed = new URL(url);
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError(`Not an http(s) URL: ${redactUrl(parsed)}`);
    }
    this.#url = parsed.href;
    this.name = redactUrl(parsed);
    this.#fetch = options.fetch ?? fetch;
    this.#headers = new Headers(options.headers);
    this.#headers.set("accept-encoding", "identity");
    this.#retries = options.retries ?? 4;
    this.#retryBaseMs = options.retryBaseMs ?? 200;
    this.#retryMaxMs = options.retryMaxMs ?? 5000;
    this.#probeBytes = Math.max(1, options.probeBytes ?? 1024);
    this.#pinEtag = options.pinEtag ?? true;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#signal = options.signal === undefined
      ? this.#life.signal
      : AbortSignal.any([options.signal, this.#life.signal]);
  }

  get requests(): number {
    return this.#requests;
  }

  get bytesFetched(): number {
    return this.#bytesFetched;
  }

  get etag(): string | undefined {
    return this.#etag;
  }

  get pinned(): boolean {
    if (this.#full !== undefined) return true;
    return this.#pinEtag && (this.#etag !== undefined || this.#lastModified !== undefined);
  }

  get rangeSupported(): boolean {
    return this.#full === undefined;
  }

  async open(): Promise<void> {
    await this.#withRetries(async () => {
      const res = await this.#send(0, this.#probeBytes - 1, true);
      if (res.status === 416) {
        const total = /\/\s*(\d+)\s*$/.exec(res.headers.get("content-range") ?? "")?.[1];
        await res.body?.cancel();
        if (total !== "0") {
          throw new Error(
            `GET ${this.name}: 416 Range Not Satisfiable for bytes=0-${this.#probeBytes - 1}`,
          );
        }
        this.#size = 0;
        return;
      }
      const etag = res.headers.get("etag");
      if (etag !== null && !etag.startsWith("W/")) this.#etag = etag;
      else this.#lastModified = res.headers.get("last-modified") ?? undefined;
      if (res.status === 200) {
        this.#full = await this.#body(res, undefined);
        this.#size = this.#full.length;
        return;
      }
      const range = await this.#checkPartial(res, 0, this.#probeBytes - 1, undefined);
      this.#size = range.total!;
      this.#head = await this.#body(res, range.end - range.start + 1);
    });
  }

  size(): Promise<number> {
    return Promise.resolve(this.#size);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, offset, length, this.#size);
    if (this.#closed) throw new TypeError(`${this.name}: read after close`);
    if (this.#full !== undefined) return this.#full.slice(offset, offset + length);
    if (offset + length <= this.#head.length) return this.#head.slice(offset, offset + length);
    if (length === 0) return new Uint8Array(0);
    return await this.#withRetries(async () => {
      const res = await this.#send(offset, offset + length - 1, false);
      if (res.status === 200) {
        await this.#adoptFull(res);
        return this.#full!.slice(offset, offset + length);
      }
      await this.#checkPartial(res, offset, offset + length - 1, this.#size);
      return await this.#body(res, length);
    });
  }

  stream(offset: number, length: number): ReadableStream<Uint8Array> {
    checkRange(this.name, offset, length, this.#size);
    if (this.#full !== undefined || offset + length <= this.#head.length) {
      return chunkedStream(offset, length, (at, n) => this.read(at, n));
    }
    return this.#rangeStream(offset, offset + length);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#life.abort(new Error(`${this.name}: closed`));
    this.#full = undefined;
    this.#head = new Uint8Array(0);
    return Promise.resolve();
  }

  /**
   * One streaming request, resumed from where it stopped when the connection fails. A byte
   * stream: a BYOB reader gets the body copied into its own buffer, and the body itself is read
   * into one reused buffer, so no garbage chunk is left per read.
   */
  #rangeStream(start: number, end: number): ReadableStream<Uint8Array> {
    let at = start;
    let reader: BounceReader | undefined;
    let res0: Response | undefined;
    let failures = 0;
    let cancelled = false;
    // Cancelling the stream ends its request, even one still waiting for headers or a retry.
    const stop = new AbortController();
    const signal = AbortSignal.any([this.#signal, stop.signal]);
    // Received bytes a reader's view had no room for.
    let pending: Uint8Array | undefined;
    const release = async () => {
      const r = reader;
      reader = undefined;
      await r?.cancel().catch(() => undefined);
    };
    const deliver = (
      controller: ReadableByteStreamController,
      chunk: Uint8Array,
      copy: boolean,
    ) => {
      const request = controller.byobRequest;
      const view = request?.view;
      if (request === null || view === null || view === undefined) {
        controller.enqueue(copy ? chunk.slice() : chunk);
        pending = undefined;
        return;
      }
      const n = Math.min(view.byteLength, chunk.length);
      new Uint8Array(view.buffer, view.byteOffset, n).set(chunk.subarray(0, n));
      pending = chunk.length > n ? chunk.slice(n) : undefined;
      request.respond(n);
    };
    return new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        if (pending !== undefined) {
          deliver(controller, pending, false);
          if (pending === undefined && at >= end) close(controller);
          return;
        }
        while (at < end && !cancelled) {
          try {
            if (reader === undefined) {
              const res = await this.#withRetries(async () => {
                const res = await this.#send(at, end - 1, false, signal);
                if (res.status === 200) {
                  await res.body?.cancel();
                  throw new Error(`GET ${this.name}: the server ignored Range during a stream`);
                }
                await this.#checkPartial(res, at, end - 1, this.#size);
                return res;
              }, signal);
              if (cancelled) {
                await res.body?.cancel();
                return;
              }
              reader = new BounceReader(res.body!);
              res0 = res;
            }
            const max = controller.byobRequest?.view?.byteLength ?? Infinity;
            const { value, done } = await this.#readIdle(reader, res0, max).catch((e) => {
              if (signal.aborted) throw this.#aborted(signal);
              throw new Transient(`GET ${this.name}: body failed at byte ${at}: ${e.message}`);
            });
            if (cancelled) return;
            if (done) {
              reader = undefined;
              throw new Transient(
                `GET ${this.name}: body ended at byte ${at} of [${start}, ${end})`,
              );
            }
            this.#bytesFetched += value.length;
            const chunk = value.subarray(0, end - at);
            at += chunk.length;
            failures = 0;
            // Delivered (copied) before the reader is released: its buffer then serves others.
            deliver(controller, chunk, reader.reused);
            if (at >= end) await release();
            if (at >= end && pending === undefined) close(controller);
            return;
          } catch (e) {
            await release();
            if (cancelled) return;
            if (!(e instanceof Transient) || ++failures > this.#retries) throw e;
            await sleep(this.#delay(failures, e), signal).catch(() => {
              throw this.#aborted(signal);
            });
          }
        }
        if (!cancelled) close(controller);
      },
      cancel: async () => {
        cancelled = true;
        pending = undefined;
        stop.abort(new Error(`${this.name}: stream cancelled`));
        await release();
      },
    }, { highWaterMark: 0 }) as ReadableStream<Uint8Array>;
  }

  async #adoptFull(res: Response): Promise<void> {
    const body = await this.#body(res, undefined);
    if (body.length !== this.#size) {
      throw new Error(
        `GET ${this.name}: the server ignored Range and sent ${body.length} bytes, expected the ${this.#size} of the object`,
      );
    }
    this.#full = body;
  }

  async #send(
    start: number,
    end: number,
    probe: boolean,
    signal: AbortSignal = this.#signal,
  ): Promise<Response> {
    if (signal.aborted) throw this.#aborted(signal);
    const headers = new Headers(this.#headers);
    headers.set("range", `bytes=${start}-${end}`);
    if (!probe && this.#pinEtag) {
      if (this.#etag !== undefined) headers.set("if-match", this.#etag);
      else if (this.#lastModified !== undefined) {
        headers.set("if-unmodified-since", this.#lastModified);
      }
    }
    this.#requests++;
    let res: Response;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#timeoutMs);
    try {
      // Ended by the timeout (a stall, retried) or by `signal` (not retried).
      res = await this.#fetch(this.#url, {
        headers,
        signal: AbortSignal.any([abort.signal, signal]),
      });
      this.#aborts.set(res, abort);
    } catch (e) {
      if (signal.aborted) throw this.#aborted(signal);
      const why = abort.signal.aborted
        ? `no response within ${this.#timeoutMs} ms`
        : e instanceof Error
        ? e.message
        : String(e);
      throw new Transient(`GET ${this.name}: ${why}`);
    } finally {
      clearTimeout(timer);
    }
    const what = `GET ${this.name}: ${res.status} ${res.statusText}`.trimEnd();
    if (res.status === 200 || res.status === 206) {
      // A server that ignores If-Match still says which version it sent.
      const etag = res.headers.get("etag");
      const lastModified = res.headers.get("last-modified");
      const changed = !probe && this.#pinEtag &&
        ((this.#etag !== undefined && etag !== null && etag !== this.#etag) ||
          (this.#etag === undefined && this.#lastModified !== undefined &&
            lastModified !== null && lastModified !== this.#lastModified));
      if (!changed) return res;
      await res.body?.cancel();
      throw new Error(
        `${what}: ${this.#changed()}, now ${etag ?? `Last-Modified ${lastModified}`}`,
      );
    }
    if (probe && res.status === 416) return res;
    await res.body?.cancel();
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      throw new Transient(what, retryAfterMs(res.headers.get("retry-after")));
    }
    if (res.status === 412) throw new Error(`${what}: ${this.#changed()}`);
    throw new Error(what);
  }

  #changed(): string {
    const version = this.#etag !== undefined
      ? `ETag ${this.#etag}`
      : `Last-Modified ${this.#lastModified}`;
    return `the object changed since it was opened (${version})`;
  }

  async #checkPartial(
    res: Response,
    start: number,
    end: number,
    total: number | undefined,
  ): Promise<ContentRange> {
    const header = res.headers.get("content-range");
    const range = parseContentRange(header);
    let why: string | undefined;
    if (range === undefined || range.total === undefined) {
      why = `an unusable Content-Range '${header}'`;
    } else if (
      range.start !== start || range.end !== Math.min(end, range.total - 1) ||
      (total !== undefined && range.total !== total)
    ) {
      why = `Content-Range '${header}' for bytes=${start}-${end}${
        total === undefined ? "" : ` of ${total}`
      }`;
    }
    if (why !== undefined || range === undefined) {
      await res.body?.cancel();
      throw new Error(`GET ${this.name}: 206 with ${why}`);
    }
    return range;
  }

  /**
   * Reads one chunk of a response body, aborting the request when nothing arrives within the
   * timeout (a server that stalls mid-body); rejects with an Error that says which.
   */
  async #readIdle(
    reader: BounceReader,
    res: Response | undefined,
    max?: number,
  ): Promise<{ done: boolean; value: Uint8Array }> {
    const abort = res === undefined ? undefined : this.#aborts.get(res);
    const timer = setTimeout(() => abort?.abort(), this.#timeoutMs);
    try {
      return await reader.read(max);
    } catch (e) {
      if (abort?.signal.aborted) throw new Error(`no data within ${this.#timeoutMs} ms`);
      throw e instanceof Error ? e : new Error(String(e));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads the whole body, checking its length when known. */
  async #body(res: Response, expected: number | undefined): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let length = 0;
    const reader = res.body === null ? undefined : new BounceReader(res.body);
    try {
      for (;;) {
        if (reader === undefined) break;
        const { value, done } = await this.#readIdle(reader, res);
        if (done) break;
        chunks.push(reader.reused ? value.slice() : value);
        length += value.length;
      }
    } catch (e) {
      await reader?.cancel().catch(() => {});
      this.#bytesFetched += length;
      if (this.#signal.aborted) throw this.#aborted(this.#signal);
      throw new Transient(`GET ${this.name}: body failed: ${(e as Error).message}`);
    }
    const body = chunks.length === 1 ? chunks[0]! : concatBytes(chunks, length);
    this.#bytesFetched += body.length;
    if (expected !== undefined && body.length !== expected) {
      throw new Transient(`GET ${this.name}: body has ${body.length} bytes, expected ${expected}`);
    }
    return body;
  }

  #delay(failures: number, e: Transient): number {
    const backoff = this.#retryBaseMs * 2 ** (failures - 1) * (0.5 + Math.random());
    return Math.min(this.#retryMaxMs, Math.max(backoff, e.retryAfterMs ?? 0));
  }

  /** What a request ended by `signal` fails with: its reason (a deadline names the load). */
  #aborted(signal: AbortSignal): Error {
    const reason = signal.reason;
    return reason instanceof Error ? reason : new Error(`GET ${this.name}: ${reasonText(reason)}`);
  }

  async #withRetries<T>(
    attempt: () => Promise<T>,
    signal: AbortSignal = this.#signal,
  ): Promise<T> {
    for (let failures = 0;; failures++) {
      try {
        return await attempt();
      } catch (e) {
        if (!(e instanceof Transient) || failures >= this.#retries) {
          if (e instanceof Transient && this.#retries > 0) {
            throw new Error(`${e.message} (gave up after ${failures + 1} attempts)`);
          }
          throw e;
        }
        await sleep(this.#delay(failures + 1, e), signal).catch(() => {
          throw this.#aborted(signal);
        });
      }
    }
  }
}
