/** An environment variable, undefined when empty, unset or not readable (no `--allow-env`). */
export function envVar(name: string): string | undefined {
  try {
    const value = Deno.env.get(name);
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined;
  }
}
