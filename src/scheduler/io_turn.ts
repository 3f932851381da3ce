/**
 * Turns of the event loop taken between computations, so that a server computing a long
 * batch still accepts connections and answers requests (`/health`, admission, cancels).
 *
 * What a turn waits for decides what runs during it. Deno runs JavaScript on a tokio
 * current-thread runtime, which polls its network and timer drivers when no task is ready,
 * or else only every 61 task polls. An operation finished by another thread (a digest,
 * `setImmediate`, a file read) wakes the JavaScript task at once, so a loop that computes and
 * waits on such operations keeps a task ready: sockets and timers are looked at once in 61
 * turns, some 300 ms at 5 ms of computation per turn. Waiting on a socket read gives the
 * runtime nothing ready until it polls the network driver, which also finds the server's
 * sockets. A loopback socket pair makes such a read complete at once: one byte, about 20 µs.
 */

/** Waits for one turn of the event loop. */
export type IoYield = () => Promise<void>;

const ONE_BYTE = new Uint8Array(1);

/**
 * A turn that holds no resource: it lets other JavaScript run but looks at sockets and
 * timers only now and then (see the module's notes); what libraries and tests use.
 */
export const digestYield: IoYield = async () => {
  await crypto.subtle.digest("SHA-1", ONE_BYTE);
};

/**
 * A turn through a loopback socket pair, which makes the runtime poll its network driver:
 * what a server uses. Close it when the server stops; turns after that fall back to
 * {@link digestYield}.
 */
export class LoopbackYield implements Disposable {
  readonly #writer: Deno.Conn;
  readonly #reader: Deno.Conn;
  readonly #buffer = new Uint8Array(16);
  #turn: Promise<void> | null = null;
  #closed = false;

  private constructor(writer: Deno.Conn, reader: Deno.Conn) {
    this.#writer = writer;
    this.#reader = reader;
  }

  /** A connected pair on 127.0.0.1, or null where the platform cannot listen (Deno Deploy). */
  static async open(): Promise<LoopbackYield | null> {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    } catch {
      return null;
    }
    try {
      const [writer, reader] = await Promise.all([
        Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
        listener.accept(),
      ]);
      writer.setNoDelay(true);
      return new LoopbackYield(writer, reader);
    } catch {
      return null;
    } finally {
      listener.close();
    }
  }

  /** One turn: a byte written and read back. Concurrent callers share the turn in flight. */
  readonly yield: IoYield = () => {
    if (this.#closed) return digestYield();
    this.#turn ??= this.#roundTrip().finally(() => (this.#turn = null));
    return this.#turn;
  };

  async #roundTrip(): Promise<void> {
    try {
      await this.#writer.write(ONE_BYTE);
      await this.#reader.read(this.#buffer);
    } catch {
      // Closed meanwhile, or the pair broke: later turns take the digest.
      this.#closeQuietly();
    }
  }

  /** Closes the pair. */
  close(): void {
    this.#closeQuietly();
  }

  #closeQuietly(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of [this.#writer, this.#reader]) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }

  /** Closes the pair (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
