/** The WASM kernels of the process: loaded once, on first use, shared by every session. */
import { type Kernels, loadKernels, type LoadKernelsOptions } from "../../kernels/mod.ts";

let shared: Promise<Kernels | null> | undefined;

/**
 * The process-wide kernels, loaded on the first call with `options` (later options are
 * ignored); null when WebAssembly SIMD is not available here.
 */
export function sharedKernels(options: LoadKernelsOptions = {}): Promise<Kernels | null> {
  shared ??= loadKernels(options).catch(() => null);
  return shared;
}

/** Closes the process-wide kernels (stops their workers); the next use loads them again. */
export async function closeSharedKernels(): Promise<void> {
  const k = await shared;
  shared = undefined;
  k?.close();
}
