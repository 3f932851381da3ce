/** The permissions the service needs for its configuration, checked before it starts. */
import { s3HttpUrl } from "../src/storage/s3.ts";

/** A permission the service needs: the flag that grants it and what it is for. */
export interface NeededPermission {
  readonly descriptor: Deno.PermissionDescriptor;
  /** The `deno` flag that grants it, e.g. `--allow-net=host:port`. */
  readonly flag: string;
  readonly reason: string;
}

/** The folder of the code, whose kernels and playground files are read at run time. */
const CODE_DIR = new URL("..", import.meta.url);

/**
 * The permissions the service needs when configured by `env`: the environment itself, the
 * code's folder (kernels, playground), and what `MODEL`, `TOKENIZER` and `RILL_CACHE_DIR`
 * point at. Without the environment, only what every configuration needs is known.
 */
export function neededPermissions(
  env: ((name: string) => string | undefined) | null,
): NeededPermission[] {
  const needed: NeededPermission[] = [
    {
      descriptor: { name: "env" },
      flag: "--allow-env",
      reason: "the configuration (MODEL, RILL_API_KEYS, ...)",
    },
  ];
  if (CODE_DIR.protocol === "file:") {
    needed.push({
      descriptor: { name: "read", path: CODE_DIR },
      flag: "--allow-read",
      reason: "the kernels and the playground",
    });
  }
  if (env === null) return needed;
  const value = (name: string) => {
    const v = env(name)?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const model = value("MODEL");
  const cacheDir = value("RILL_CACHE_DIR");
  if (model === undefined || model.startsWith("hf:")) {
    needed.push({ descriptor: { name: "net" }, flag: "--allow-net", reason: "the hub (MODEL)" });
    needed.push(
      cacheDir === undefined
        ? { descriptor: { name: "write" }, flag: "--allow-write", reason: "the download cache" }
        : {
          descriptor: { name: "write", path: cacheDir },
          flag: `--allow-write=${cacheDir}`,
          reason: "the download cache (RILL_CACHE_DIR)",
        },
    );
  } else if (/^https?:\/\//i.test(model) || model.startsWith("s3://")) {
    const host = hostOf(model);
    needed.push(
      host === undefined
        ? { descriptor: { name: "net" }, flag: "--allow-net", reason: "MODEL's URL" }
        : { descriptor: { name: "net", host }, flag: `--allow-net=${host}`, reason: "MODEL's URL" },
    );
  } else {
    needed.push({
      descriptor: { name: "read", path: model },
      flag: "--allow-read",
      reason: "MODEL",
    });
  }
  const tokenizer = value("TOKENIZER");
  if (tokenizer !== undefined) {
    needed.push({
      descriptor: { name: "read", path: tokenizer },
      flag: "--allow-read",
      reason: "TOKENIZER",
    });
  }
  if (cacheDir !== undefined && model !== undefined && !model.startsWith("hf:")) {
    needed.push({
      descriptor: { name: "write", path: cacheDir },
      flag: `--allow-write=${cacheDir}`,
      reason: "the member cache (RILL_CACHE_DIR)",
    });
  }
  return needed;
}

/** The host an `http(s)://` or `s3://` MODEL is read from, if it can be told. */
function hostOf(model: string): string | undefined {
  try {
    return new URL(model.startsWith("s3://") ? s3HttpUrl(model) : model).host;
  } catch {
    return undefined;
  }
}

/** Where `missingPermissionsMessage` reads; both default to the running process. */
export interface PermissionCheckOptions {
  /** The state of a permission (default `Deno.permissions.querySync`). */
  readonly query?: (descriptor: Deno.PermissionDescriptor) => Deno.PermissionState;
  /** Reads an environment variable, once the environment is granted (default `Deno.env.get`). */
  readonly env?: (name: string) => string | undefined;
}

/**
 * Why `deno serve mod.ts` cannot run as started, naming the flags to add, or null when every
 * permission its configuration needs is granted.
 */
export function missingPermissionsMessage(options: PermissionCheckOptions = {}): string | null {
  const query = options.query ?? ((d) => Deno.permissions.querySync(d).state);
  const envGranted = query({ name: "env" }) === "granted";
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const missing = neededPermissions(envGranted ? env : null)
    .filter((p) => query(p.descriptor) !== "granted");
  if (missing.length === 0) return null;
  const flags = [...new Set(missing.map((p) => p.flag))];
  const reasons = new Map<string, string[]>();
  for (const p of missing) reasons.set(p.flag, [...reasons.get(p.flag) ?? [], p.reason]);
  return [
    "rill: deno serve mod.ts lacks permissions; start it as",
    `  deno serve ${flags.join(" ")} mod.ts`,
    "(or with -A; Deno Deploy grants them all):",
    ...[...reasons].map(([flag, why]) => `  ${flag}  ${why.join(", ")}`),
    ...(envGranted ? [] : ["MODEL may also need --allow-net (a URL) or --allow-write (hf:)"]),
  ].join("\n");
}
