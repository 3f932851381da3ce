/** What the proxy does to requests, drawn per request from a generator seeded with `seed`. */
export interface FaultProxyOptions {
  readonly seed: number;
  /** Share of requests answered 503 without asking upstream. */
  readonly errorRate?: number;
  /** Share of requests whose body is cut after a random part of it (the connection breaks). */
  readonly dropRate?: number;
  /** Share of requests held up to `maxDelayMs` before they are answered. */
  readonly delayRate?: number;
  readonly maxDelayMs?: number;
  /** Share of requests whose body stops after a random part of it, the connection left open. */
  readonly stallRate?: number;
  /** The first requests pass untouched (e.g. to let an open succeed). */
  readonly spareFirst?: number;
  /** Fixed answers by path, e.g. `{ "/private.tar": 403 }`. */
  readonly statusByPath?: Readonly<Record<string, number>>;
}

/** The fault mix of the generation-over-HTTP tests: half the requests failed, cut or held up. */
export const GENERATION_FAULTS = {
  errorRate: 0.15,
  dropRate: 0.15,
  delayRate: 0.2,
  maxDelayMs: 10,
} as const;

/** HTTP source retries that ride out `GENERATION_FAULTS` in milliseconds. */
export const GENERATION_RETRIES = { retries: 10, retryBaseMs: 1, retryMaxMs: 10 } as const;

/** Counts of what the proxy did. */
export interface FaultStats {
  requests: number;
  errors: number;
  drops: number;
  delays: number;
  stalls: number;
}

export interface FaultProxy {
  readonly url: string;
  readonly stats: FaultStats;
  close(): Promise<void>;
}

/** A small deterministic generator (mulberry32) so a seed replays the same faults. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const FORWARDED = ["content-range", "etag", "accept-ranges", "last-modified", "retry-after"];
const encoder = new TextEncoder();

const REASONS: Record<number, string> = {
  200: "OK",
  206: "Partial Content",
  403: "Forbidden",
  404: "Not Found",
  412: "Precondition Failed",
  416: "Range Not Satisfiable",
  503: "Service Unavailable",
};

/** Reads a request head (GETs carry no body); undefined when the client went away. */
async function readHead(conn: Deno.Conn): Promise<string | undefined> {
  const buffer = new Uint8Array(64 << 10);
  let length = 0;
  while (length < buffer.length) {
    const n = await conn.read(buffer.subarray(length));
    if (n === null) return undefined;
    length += n;
    const text = new TextDecoder().decode(buffer.subarray(0, length));
    if (text.includes("\r\n\r\n")) return text;
  }
  return undefined;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

async function respond(
  conn: Deno.Conn,
  status: number,
  headers: Headers,
  body: Uint8Array,
  send = body.length,
): Promise<void> {
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}`];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  lines.push(`content-length: ${body.length}`, "connection: close", "", "");
  await writeAll(conn, encoder.encode(lines.join("\r\n")));
  await writeAll(conn, body.subarray(0, send));
}

/**
 * A proxy on 127.0.0.1 in front of `upstream` (a Range server), speaking HTTP/1.1 over raw
 * TCP so that it can break a connection in the middle of a body (after announcing the whole
 * `content-length`), answer some requests with 503, and delay others, on a schedule fixed by
 * the seed. Range and If-Match are passed through; each connection carries one request.
 */
export function startFaultProxy(upstream: string, options: FaultProxyOptions): FaultProxy {
  const random = generator(options.seed);
  const errorRate = options.errorRate ?? 0;
  const dropRate = options.dropRate ?? 0;
  const delayRate = options.delayRate ?? 0;
  const maxDelayMs = options.maxDelayMs ?? 20;
  let spare = options.spareFirst ?? 0;
  const stallRate = options.stallRate ?? 0;
  const stats: FaultStats = { requests: 0, errors: 0, drops: 0, delays: 0, stalls: 0 };
  let closing!: () => void;
  const closed = new Promise<void>((resolve) => (closing = resolve));
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();

  async function handle(conn: Deno.Conn): Promise<void> {
    const head = await readHead(conn);
    if (head === undefined) return;
    const [requestLine, ...headerLines] = head.split("\r\n");
    const path = requestLine!.split(" ")[1] ?? "/";
    const request = new Headers();
    for (const line of headerLines) {
      const colon = line.indexOf(":");
      if (colon > 0) request.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    stats.requests++;
    const fixed = options.statusByPath?.[new URL(path, "http://x").pathname];
    if (fixed !== undefined) {
      await respond(conn, fixed, new Headers(), encoder.encode(`status ${fixed}`));
      return;
    }
    const draw = random();
    const cutAt = random();
    const delay = random() * maxDelayMs;
    const spared = spare > 0;
    if (spared) spare--;
    if (!spared && draw < errorRate) {
      stats.errors++;
      await respond(conn, 503, new Headers({ "retry-after": "0" }), encoder.encode("injected"));
      return;
    }
    const drop = !spared && draw < errorRate + dropRate;
    const stall = !spared && !drop && draw >= 1 - stallRate;
    if (!spared && !drop && draw < errorRate + dropRate + delayRate) {
      stats.delays++;
      await sleep(delay);
    }
    const forward = new Headers();
    for (const name of ["range", "if-match"]) {
      const value = request.get(name);
      if (value !== null) forward.set(name, value);
    }
    const res = await fetch(`${upstream}${path}`, { headers: forward });
    const body = new Uint8Array(await res.arrayBuffer());
    const out = new Headers();
    for (const name of FORWARDED) {
      const value = res.headers.get(name);
      if (value !== null) out.set(name, value);
    }
    if (drop && body.length >= 2) {
      stats.drops++;
      await respond(conn, res.status, out, body, 1 + Math.floor(cutAt * (body.length - 1)));
      return;
    }
    if (stall && body.length >= 2) {
      stats.stalls++;
      await respond(conn, res.status, out, body, 1 + Math.floor(cutAt * (body.length - 1)));
      await closed;
      return;
    }
    await respond(conn, res.status, out, body);
  }

  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      const handler = handle(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        handlers.delete(handler);
        try {
          conn.close();
        } catch {
          // already closed by the peer
        }
      });
      handlers.add(handler);
    }
  })().catch(() => {});

  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    stats,
    async close(): Promise<void> {
      closing();
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      await Promise.allSettled([...handlers]);
    },
  };
}
