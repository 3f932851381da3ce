/**
 * The peers of `deno task bench:race`: the npm packages installed at bench time into a cache
 * folder (never into the repository), and the subprocesses that run them, spoken to in JSON
 * lines (see `_race_native_peer.mjs` and `_race_wllama_peer.ts`).
 */

/** What the bench installs with `npm i -E`: exact versions. */
export const PEER_PACKAGES: readonly string[] = [
  "node-llama-cpp@3.21.1",
  // The prebuilt CPU binaries of node-llama-cpp for Linux x64; the GPU builds it lists as
  // optional dependencies (CUDA, Vulkan: hundreds of MB) are left out.
  "@node-llama-cpp/linux-x64@3.21.1",
  "@wllama/wllama@3.13.0",
];

/** Output of a command, or why it could not start. */
async function run(
  command: string,
  args: string[],
  cwd?: string,
): Promise<{ ok: boolean; text: string }> {
  try {
    const out = await new Deno.Command(command, {
      args,
      ...(cwd === undefined ? {} : { cwd }),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b).trim();
    return { ok: out.success, text: [decode(out.stdout), decode(out.stderr)].join("\n").trim() };
  } catch (e) {
    return { ok: false, text: e instanceof Error ? e.message : String(e) };
  }
}

async function installedVersion(modules: string, name: string): Promise<string | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(`${modules}/${name}/package.json`)).version;
  } catch {
    return undefined;
  }
}

/**
 * The `node_modules` folder under `dir` holding {@link PEER_PACKAGES}, installed there with npm
 * unless already present at those versions; `log` hears what is installed.
 *
 * @throws {Error} naming the command and its output when Node or npm is missing or fails
 */
export async function installPeers(dir: string, log: (line: string) => void): Promise<string> {
  const folder = `${dir}/peers`;
  const modules = `${folder}/node_modules`;
  const missing: string[] = [];
  for (const spec of PEER_PACKAGES) {
    const at = spec.lastIndexOf("@");
    if (await installedVersion(modules, spec.slice(0, at)) !== spec.slice(at + 1)) {
      missing.push(spec);
    }
  }
  if (missing.length === 0) return modules;
  await Deno.mkdir(folder, { recursive: true });
  await Deno.writeTextFile(`${folder}/package.json`, '{ "private": true }\n');
  // No install scripts: node-llama-cpp's would look for a GPU and may try to build llama.cpp.
  const args = [
    "install",
    "--save-exact",
    "--no-audit",
    "--no-fund",
    "--omit=optional",
    "--ignore-scripts",
    ...PEER_PACKAGES,
  ];
  log(`installing ${PEER_PACKAGES.join(", ")} into ${folder} (npm ${args.join(" ")})`);
  const out = await run("npm", args, folder);
  if (!out.ok) throw new Error(`npm ${args.join(" ")} failed in ${folder}: ${out.text}`);
  return modules;
}

/** The version line of `command --version`, or why it cannot run. */
export async function toolVersion(command: string): Promise<{ ok: boolean; text: string }> {
  return await run(command, ["--version"]);
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (reason: Error) => void;
}

/**
 * One peer subprocess: requests in, answers out, one JSON object per line. Between requests
 * its process is stopped (SIGSTOP), so that it takes no CPU while the other engines are timed:
 * wllama's two-thread build kept 1.7 cores busy while idle (its pthreads wait spinning), and
 * Rill's prefill and decode at two threads ran 0.90x while it did.
 */
export class Peer {
  readonly label: string;
  #child: Deno.ChildProcess;
  #stopped = false;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #pending = new Map<number, Pending>();
  #next = 1;
  #stderr = "";
  #ended: Promise<void>;
  #ready: Promise<void>;

  constructor(label: string, command: string, args: string[]) {
    this.label = label;
    this.#child = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    const ready = Promise.withResolvers<void>();
    this.#pending.set(0, { resolve: () => ready.resolve(), reject: ready.reject });
    this.#ready = ready.promise;
    this.#ended = Promise.all([this.#readAnswers(), this.#readStderr()]).then(() => {
      const reason = new Error(`${this.label} exited: ${this.#stderr.slice(-2000).trim()}`);
      for (const p of this.#pending.values()) p.reject(reason);
      this.#pending.clear();
    });
  }

  /** Starts `command` and resolves once it says it is ready (its model loaded). */
  static async start(label: string, command: string, args: string[]): Promise<Peer> {
    const peer = new Peer(label, command, args);
    try {
      await peer.#ready;
    } catch (e) {
      await peer.close();
      throw e;
    }
    peer.#signal("SIGSTOP");
    return peer;
  }

  async #readAnswers(): Promise<void> {
    let buffer = "";
    for await (const text of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += text;
      for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (!line.startsWith("@race ")) continue;
        const answer = JSON.parse(line.slice(6));
        const pending = this.#pending.get(answer.id);
        this.#pending.delete(answer.id);
        if (answer.error !== undefined) {
          pending?.reject(new Error(`${this.label}: ${answer.error}`));
        } else pending?.resolve(answer.result);
      }
    }
  }

  async #readStderr(): Promise<void> {
    for await (const text of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
      this.#stderr = (this.#stderr + text).slice(-20000);
    }
  }

  /** Sends one request, the process running until it answers; resolves with the answer. */
  async request<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    const answer = new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    this.#signal("SIGCONT");
    try {
      await this.#stdin.write(new TextEncoder().encode(`${JSON.stringify({ id, op, ...args })}\n`));
      return await answer;
    } finally {
      if (this.#pending.size === 0) this.#signal("SIGSTOP");
    }
  }

  /** Whether the process is stopped after `signal` (one that has exited is left alone). */
  #signal(signal: "SIGSTOP" | "SIGCONT"): void {
    if (this.#stopped === (signal === "SIGSTOP")) return;
    try {
      this.#child.kill(signal);
      this.#stopped = signal === "SIGSTOP";
    } catch {
      // Exited: `#ended` reports it.
    }
  }

  /** Ends the peer (closing its stdin) and waits for it to exit. */
  async close(): Promise<void> {
    this.#signal("SIGCONT");
    await this.#stdin.close().catch(() => {});
    const timer = setTimeout(() => this.#child.kill(), 10_000);
    await this.#child.status;
    clearTimeout(timer);
    await this.#ended.catch(() => {});
  }
}
