import assert from "node:assert/strict";
import { constantTimeEqual } from "./auth.ts";

Deno.test("constantTimeEqual compares bytes and lengths", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);
  assert.equal(constantTimeEqual(bytes("sk-abc"), bytes("sk-abc")), true);
  assert.equal(constantTimeEqual(bytes("sk-abd"), bytes("sk-abc")), false);
  assert.equal(constantTimeEqual(bytes("sk-ab"), bytes("sk-abc")), false);
  assert.equal(constantTimeEqual(bytes("sk-abcd"), bytes("sk-abc")), false);
  assert.equal(constantTimeEqual(bytes(""), bytes("")), true);
});
