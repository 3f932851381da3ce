import { createHash, type Hash } from "node:crypto";

/**
 * An incremental sha256. WebCrypto's `digest` takes the whole input at once (and refuses views
 * of a SharedArrayBuffer, i.e. of threaded WASM memory), so bytes are hashed with `node:crypto`
 * as they arrive instead.
 */
export interface Sha256 {
  update(bytes: Uint8Array): void;
  /** The digest as 64 lower-case hex digits; the hasher cannot be used after. */
  hex(): string;
}

/** Starts an incremental sha256. */
export function createSha256(): Sha256 {
  const hash: Hash = createHash("sha256");
  return {
    update(bytes: Uint8Array): void {
      hash.update(bytes);
    },
    hex: () => hash.digest("hex"),
  };
}

/** The sha256 of `bytes` as 64 lower-case hex digits. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}
