/** `deno task serve`: not yet available; the serving layer lands with the HTTP routes. */
export function serveCommand(_args: string[]): Promise<number> {
  console.error("rill serve: not yet implemented (the HTTP service lands with the serving issue)");
  return Promise.resolve(1);
}
