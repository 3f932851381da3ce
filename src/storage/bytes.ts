/** `chunks` one after the other in a new array of `size` bytes (by default, their total). */
export function concatBytes(chunks: readonly Uint8Array[], size?: number): Uint8Array {
  let total = size ?? 0;
  if (size === undefined) { for (const c of chunks) total += c.length; }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** `bytes` in base64. */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * The bytes base64 `text` holds.
 *
 * @throws {DOMException} when `text` is not base64
 */
export function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}
