import assert from "node:assert/strict";
import { missingPermissionsMessage, neededPermissions } from "./permissions.ts";

/** A permission query granting what `granted` accepts. */
function grant(granted: (d: Deno.PermissionDescriptor) => boolean) {
  return (d: Deno.PermissionDescriptor): Deno.PermissionState => granted(d) ? "granted" : "prompt";
}

function envOf(vars: Record<string, string>) {
  return (name: string) => vars[name];
}

Deno.test("neededPermissions follows MODEL: a file is read, a URL's host is reached, hf: downloads", () => {
  const flags = (vars: Record<string, string>) =>
    neededPermissions(envOf(vars)).map((p) => `${p.flag} (${p.reason})`);
  assert.deepEqual(flags({ MODEL: "/m/a.nnef.tar", TOKENIZER: "/m/tok.json" }), [
    "--allow-env (the configuration (MODEL, RILL_API_KEYS, ...))",
    "--allow-read (the kernels and the playground)",
    "--allow-read (MODEL)",
    "--allow-read (TOKENIZER)",
  ]);
  assert.deepEqual(flags({ MODEL: "https://bucket.example:8443/a.nnef.tar" }).slice(2), [
    "--allow-net=bucket.example:8443 (MODEL's URL)",
  ]);
  assert.deepEqual(flags({ MODEL: "http://127.0.0.1:9/a.tar", RILL_CACHE_DIR: "/c" }).slice(2), [
    "--allow-net=127.0.0.1:9 (MODEL's URL)",
    "--allow-write=/c (the member cache (RILL_CACHE_DIR))",
  ]);
  assert.deepEqual(flags({}).slice(2), [
    "--allow-net (the hub (MODEL))",
    "--allow-write (the download cache)",
  ]);
  assert.deepEqual(flags({ MODEL: "hf:org/name", RILL_CACHE_DIR: "/c" }).slice(2), [
    "--allow-net (the hub (MODEL))",
    "--allow-write=/c (the download cache (RILL_CACHE_DIR))",
  ]);
  assert.equal(neededPermissions(null).length, 2);
});

Deno.test("missingPermissionsMessage names the flags to add, or is null when all are granted", () => {
  const env = envOf({ MODEL: "http://127.0.0.1:9/a.tar" });
  assert.equal(missingPermissionsMessage({ query: grant(() => true), env }), null);
  const noNet = missingPermissionsMessage({ query: grant((d) => d.name !== "net"), env });
  assert.equal(
    noNet,
    "rill: deno serve mod.ts lacks permissions; start it as\n" +
      "  deno serve --allow-net=127.0.0.1:9 mod.ts\n" +
      "(or with -A; Deno Deploy grants them all):\n" +
      "  --allow-net=127.0.0.1:9  MODEL's URL",
  );
  const none = missingPermissionsMessage({ query: grant(() => false), env });
  assert.equal(
    none,
    "rill: deno serve mod.ts lacks permissions; start it as\n" +
      "  deno serve --allow-env --allow-read mod.ts\n" +
      "(or with -A; Deno Deploy grants them all):\n" +
      "  --allow-env  the configuration (MODEL, RILL_API_KEYS, ...)\n" +
      "  --allow-read  the kernels and the playground\n" +
      "MODEL may also need --allow-net (a URL) or --allow-write (hf:)",
  );
});
