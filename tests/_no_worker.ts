/** Preloaded by tests/deploy_test.ts: a runtime without `Worker`, as Deno Deploy Classic was. */
// deno-lint-ignore no-explicit-any
delete (globalThis as any).Worker;
