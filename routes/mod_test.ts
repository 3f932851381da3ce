import assert from "node:assert/strict";
import type { LoadProgress } from "../src/engine/load_service.ts";
import { createApp, ServingState } from "./mod.ts";

function post(path: string, body: unknown, headers: Record<string, string> = {}): Request {
  return new Request(`http://localhost${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function errorOf(response: Response) {
  const body = await response.json();
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
  return body.error as { message: string; type: string; param: string | null; code: string };
}

Deno.test("createApp answers bad chat requests with 400 naming the field", async () => {
  const app = createApp(new ServingState());
  const cases: [unknown, string | null, RegExp][] = [
    ["{not json", null, /not valid JSON/],
    [[1, 2], null, /JSON object/],
    [{}, "messages", /Missing required field 'messages'/],
    [{ messages: [] }, "messages", /must not be empty/],
    [{ messages: "hi" }, "messages", /must be an array/],
    [{ messages: [{ role: "user", content: 3 }] }, "messages[0].content", /string/],
    [{ messages: [{ role: "robot", content: "x" }] }, "messages[0].role", /one of/],
    [{ messages: [{ role: "user", content: "x" }], temperature: "hot" }, "temperature", /number/],
    [{ messages: [{ role: "user", content: "x" }], temperature: 3 }, "temperature", /between/],
    [{ messages: [{ role: "user", content: "x" }], n: 129 }, "n", /between 1 and 128/],
    [{ messages: [{ role: "user", content: "x" }], stop: ["a", "b", "c", "d", "e"] }, "stop", /4/],
    [{ messages: [{ role: "user", content: "x" }], stop: 5 }, "stop", /string/],
    [{ messages: [{ role: "user", content: "x" }], max_tokens: 0 }, "max_tokens", /between/],
    [
      { messages: [{ role: "user", content: "x" }], max_completion_tokens: 1.5 },
      "max_completion_tokens",
      /integer/,
    ],
    [{ messages: [{ role: "user", content: "x" }], seed: "1" }, "seed", /integer/],
    [{ messages: [{ role: "user", content: "x" }], stream: "yes" }, "stream", /boolean/],
    [
      { messages: [{ role: "user", content: "x" }], logit_bias: { "a": 1 } },
      "logit_bias",
      /token id/,
    ],
    [
      { messages: [{ role: "user", content: "x" }], logit_bias: { "5": 200 } },
      "logit_bias.5",
      /-100/,
    ],
  ];
  for (const [body, param, message] of cases) {
    const response = await app.fetch(post("/v1/chat/completions", body));
    assert.equal(response.status, 400, JSON.stringify(body));
    const error = await errorOf(response);
    assert.equal(error.type, "invalid_request_error");
    assert.equal(error.param, param, JSON.stringify(body));
    assert.match(error.message, message);
  }
});

Deno.test("createApp answers bad tools, tool_choice and response_format with 400 naming the field", async () => {
  const app = createApp(new ServingState());
  const ask = [{ role: "user", content: "x" }];
  const fn = (name: string, parameters?: unknown) => ({
    type: "function",
    function: { name, ...(parameters === undefined ? {} : { parameters }) },
  });
  const cases: [unknown, string, RegExp][] = [
    [{ messages: ask, tools: {} }, "tools", /array/],
    [{ messages: ask, tools: [{ type: "retrieval" }] }, "tools[0]", /"type": "function"/],
    [{ messages: ask, tools: [fn("a b")] }, "tools[0].function.name", /letters/],
    [{ messages: ask, tools: [fn("a"), fn("a")] }, "tools[1].function.name", /repeats 'a'/],
    [{ messages: ask, tools: [fn("a", [])] }, "tools[0].function.parameters", /JSON schema/],
    [{ messages: ask, tool_choice: "required" }, "tool_choice", /no 'tools'/],
    [{ messages: ask, tools: [fn("a")], tool_choice: "always" }, "tool_choice", /"none", "auto"/],
    [
      {
        messages: ask,
        tools: [fn("a")],
        tool_choice: { type: "function", function: { name: "b" } },
      },
      "tool_choice.function.name",
      /one of the tools, got "b"/,
    ],
    [
      { messages: ask, tools: [fn("a")], response_format: { type: "json_object" } },
      "response_format",
      /cannot be combined/,
    ],
    [
      {
        messages: ask,
        response_format: { type: "json_schema", json_schema: { name: "n", schema: 3 } },
      },
      "response_format.json_schema.schema",
      /JSON schema object/,
    ],
    [
      {
        messages: [{ role: "assistant", tool_calls: [{ function: { name: "a", arguments: {} } }] }],
      },
      "messages[0].tool_calls[0]",
      /JSON text/,
    ],
  ];
  for (const [body, param, message] of cases) {
    const response = await app.fetch(post("/v1/chat/completions", body));
    assert.equal(response.status, 400, JSON.stringify(body));
    const error = await errorOf(response);
    assert.equal(error.param, param, JSON.stringify(body));
    assert.match(error.message, message);
  }
});

Deno.test("createApp answers 503 while the model loads and /ready says so", async () => {
  const state = new ServingState();
  const app = createApp(state);
  const response = await app.fetch(
    post("/v1/chat/completions", {
      model: "m",
      messages: [{ role: "user", content: "hi" }],
    }),
  );
  assert.equal(response.status, 503);
  assert.equal(response.headers.get("Retry-After"), "1");
  assert.equal((await errorOf(response)).code, "model_not_ready");
  const ready = await app.fetch(new Request("http://localhost/ready"));
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { status: "loading" });
  const health = await app.fetch(new Request("http://localhost/health"));
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
});

Deno.test("/ready tells the loading phase and its bytes while the model is on its way", async () => {
  const state = new ServingState();
  const app = createApp(state);
  const ready = async () => {
    const response = await app.fetch(new Request("http://localhost/ready"));
    return { status: response.status, body: await response.json() };
  };
  let progress: LoadProgress | undefined = {
    phase: "download",
    what: "model.safetensors",
    doneBytes: 1000,
    totalBytes: undefined,
  };
  state.trackProgress(() => progress);
  assert.deepEqual(await ready(), {
    status: 503,
    body: { status: "loading", phase: "download", bytes_loaded: 1000, bytes_total: null },
  });
  progress = { phase: "load", doneBytes: 300, totalBytes: 1200 };
  assert.deepEqual(await ready(), {
    status: 503,
    body: { status: "loading", phase: "load", bytes_loaded: 300, bytes_total: 1200 },
  });
  progress = undefined;
  assert.deepEqual(await ready(), { status: 503, body: { status: "loading" } });
});

Deno.test("createApp requires a Bearer key except on /health and /ready", async () => {
  const app = createApp(new ServingState({ apiKeys: ["k1", "secret-2"] }));
  const chat = { messages: [{ role: "user", content: "hi" }] };
  const none = await app.fetch(post("/v1/chat/completions", chat));
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("WWW-Authenticate"), "Bearer");
  const error = await errorOf(none);
  assert.equal(error.type, "authentication_error");
  assert.equal(error.code, "invalid_api_key");
  const wrong = await app.fetch(post("/v1/chat/completions", chat, { Authorization: "Bearer k2" }));
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  const good = await app.fetch(
    post("/v1/chat/completions", chat, { Authorization: "Bearer secret-2" }),
  );
  assert.equal(good.status, 503);
  await good.body?.cancel();
  const models = await app.fetch(new Request("http://localhost/v1/models"));
  assert.equal(models.status, 401);
  await models.body?.cancel();
  const metrics = await app.fetch(new Request("http://localhost/metrics"));
  assert.equal(metrics.status, 401);
  await metrics.body?.cancel();
  for (const path of ["/health", "/ready"]) {
    const open = await app.fetch(new Request(`http://localhost${path}`));
    assert.notEqual(open.status, 401);
    await open.body?.cancel();
  }
});

Deno.test("createApp sends CORS headers for configured origins, on errors too", async () => {
  const app = createApp(
    new ServingState({ apiKeys: ["k"], corsOrigins: ["https://app.example"] }),
  );
  const preflight = await app.fetch(
    new Request("http://localhost/v1/chat/completions", {
      method: "OPTIONS",
      headers: {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
      },
    }),
  );
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("Access-Control-Allow-Origin"), "https://app.example");
  const denied = await app.fetch(
    post("/v1/chat/completions", {}, { Origin: "https://app.example" }),
  );
  assert.equal(denied.status, 401);
  assert.equal(denied.headers.get("Access-Control-Allow-Origin"), "https://app.example");
  await denied.body?.cancel();
  const other = await app.fetch(
    new Request("http://localhost/health", { headers: { Origin: "https://evil.example" } }),
  );
  assert.equal(other.headers.get("Access-Control-Allow-Origin"), null);
  await other.body?.cancel();
});

Deno.test("createApp answers unknown routes with an OpenAI-shaped 404 and counts requests", async () => {
  const state = new ServingState();
  const app = createApp(state);
  const response = await app.fetch(new Request("http://localhost/v1/nothing"));
  assert.equal(response.status, 404);
  assert.equal((await errorOf(response)).type, "invalid_request_error");
  const metrics = await app.fetch(new Request("http://localhost/metrics"));
  const text = await metrics.text();
  assert.match(metrics.headers.get("Content-Type")!, /^text\/plain; version=0\.0\.4/);
  assert.match(text, /^rill_requests_total\{route="other",status="404"\} 1$/m);
  assert.match(text, /^rill_queue_depth 0$/m);
});

Deno.test("createApp rejects bodies over the size limit with 413", async () => {
  const app = createApp(new ServingState({ maxBodyBytes: 100 }));
  const response = await app.fetch(
    post("/v1/chat/completions", { messages: [{ role: "user", content: "x".repeat(200) }] }),
  );
  assert.equal(response.status, 413);
  assert.equal((await errorOf(response)).code, "request_too_large");
});
