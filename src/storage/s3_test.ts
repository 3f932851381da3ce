import assert from "node:assert/strict";
import { openArchive } from "../nnef/archive.ts";
import { writeTar } from "../nnef/tar.ts";
import { openS3Source, s3HttpUrl } from "./s3.ts";

// An AWS Signature Version 4 verifier written here from the algorithm, independent of
// aws4fetch, and checked below against AWS's published vectors before it judges anything.

const encoder = new TextEncoder();
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function hmac(key: Uint8Array, text: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(text)));
}

/** RFC 3986 encoding of one query name or value, as SigV4 wants it. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

interface SigV4Request {
  readonly method: string;
  /** Already URI-encoded path, as sent. */
  readonly path: string;
  readonly query: [string, string][];
  /** Lower-case names of the signed headers and their values. */
  readonly headers: [string, string][];
  readonly payloadHash: string;
}

function canonicalRequest(r: SigV4Request): string {
  const query = r.query.map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : a[1]! < b[1]! ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`).join("&");
  const headers = [...r.headers].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return [
    r.method,
    r.path,
    query,
    ...headers.map(([k, v]) => `${k}:${v.trim().replace(/\s+/g, " ")}`),
    "",
    headers.map(([k]) => k).join(";"),
    r.payloadHash,
  ].join("\n");
}

async function stringToSign(amzDate: string, scope: string, creq: string): Promise<string> {
  return ["AWS4-HMAC-SHA256", amzDate, scope, await sha256(creq)].join("\n");
}

async function signature(secret: string, scope: string, sts: string): Promise<string> {
  const [date, region, service] = scope.split("/");
  let key = await hmac(encoder.encode(`AWS4${secret}`), date!);
  key = await hmac(key, region!);
  key = await hmac(key, service!);
  key = await hmac(key, "aws4_request");
  return hex((await hmac(key, sts)).buffer as ArrayBuffer);
}

Deno.test("test SigV4 verifier reproduces the AWS test-suite vector get-vanilla", async () => {
  // AWS Signature Version 4 test suite, case get-vanilla (get-vanilla.creq / .sts / .authz),
  // docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html: credential
  // AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service".
  const creq = canonicalRequest({
    method: "GET",
    path: "/",
    query: [],
    headers: [["host", "example.amazonaws.com"], ["x-amz-date", "20150830T123600Z"]],
    payloadHash: EMPTY_SHA256,
  });
  assert.equal(
    creq,
    "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
      EMPTY_SHA256,
  );
  const scope = "20150830/us-east-1/service/aws4_request";
  const sts = await stringToSign("20150830T123600Z", scope, creq);
  assert.equal(
    sts,
    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" +
      "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
  );
  assert.equal(
    await signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", scope, sts),
    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
  );
});

Deno.test("test SigV4 verifier reproduces the S3 GET Object example with a Range header", async () => {
  // Amazon S3 API reference, "Signature Calculations for the Authorization Header: Transferring
  // Payload in a Single Chunk", Example: GET Object (docs.aws.amazon.com/AmazonS3/latest/API/
  // sig-v4-header-based-auth.html): AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.
  const creq = canonicalRequest({
    method: "GET",
    path: "/test.txt",
    query: [],
    headers: [
      ["host", "examplebucket.s3.amazonaws.com"],
      ["range", "bytes=0-9"],
      ["x-amz-content-sha256", EMPTY_SHA256],
      ["x-amz-date", "20130524T000000Z"],
    ],
    payloadHash: EMPTY_SHA256,
  });
  assert.equal(
    await sha256(creq),
    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
  );
  const scope = "20130524/us-east-1/s3/aws4_request";
  const sts = await stringToSign("20130524T000000Z", scope, creq);
  assert.equal(
    await signature("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", scope, sts),
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  );
});

interface S3Server {
  readonly url: string;
  /** Requests by verdict. */
  readonly seen: { accepted: number; rejected: number; tokens: string[] };
  close(): Promise<void>;
}

/**
 * A path-style S3 endpoint on 127.0.0.1 serving `objects` ("/bucket/key") with Range and
 * ETag, that checks every request's SigV4 Authorization header with the verifier above
 * and answers 403 SignatureDoesNotMatch when it does not hold.
 */
function startS3Server(
  objects: Record<string, Uint8Array>,
  secrets: Record<string, string>,
  region: string,
): S3Server {
  const seen = { accepted: 0, rejected: 0, tokens: [] as string[] };
  function deny(code: string): Response {
    seen.rejected++;
    return new Response(`<?xml version="1.0"?><Error><Code>${code}</Code></Error>`, {
      status: 403,
      headers: { "content-type": "application/xml" },
    });
  }
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const auth =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/
        .exec(req.headers.get("authorization") ?? "");
    if (auth === null) return deny("AccessDenied");
    const [, keyId, date, scopeRegion, signedHeaders, given] = auth;
    const secret = secrets[keyId!];
    const amzDate = req.headers.get("x-amz-date") ?? "";
    if (secret === undefined) return deny("InvalidAccessKeyId");
    if (scopeRegion !== region || !amzDate.startsWith(date!)) {
      return deny("AuthorizationHeaderMalformed");
    }
    const stamp = Date.UTC(
      +amzDate.slice(0, 4),
      +amzDate.slice(4, 6) - 1,
      +amzDate.slice(6, 8),
      +amzDate.slice(9, 11),
      +amzDate.slice(11, 13),
      +amzDate.slice(13, 15),
    );
    if (Math.abs(Date.now() - stamp) > 15 * 60_000) return deny("RequestTimeTooSkewed");
    const names = signedHeaders!.split(";");
    if (!names.includes("host") || !names.includes("x-amz-date")) return deny("AccessDenied");
    const creq = canonicalRequest({
      method: req.method,
      path: url.pathname,
      query: [...url.searchParams],
      headers: names.map((n) => [n, n === "host" ? url.host : req.headers.get(n) ?? ""]),
      payloadHash: req.headers.get("x-amz-content-sha256") ?? EMPTY_SHA256,
    });
    const scope = `${date}/${region}/s3/aws4_request`;
    const expected = await signature(secret, scope, await stringToSign(amzDate, scope, creq));
    if (expected !== given) return deny("SignatureDoesNotMatch");
    seen.accepted++;
    const token = req.headers.get("x-amz-security-token");
    if (token !== null && names.includes("x-amz-security-token")) seen.tokens.push(token);
    const body = objects[decodeURIComponent(url.pathname)];
    if (body === undefined) return new Response("NoSuchKey", { status: 404 });
    const headers = new Headers({ etag: '"s3-etag-1"', "accept-ranges": "bytes" });
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("range") ?? "");
    if (range === null) return new Response(body.slice(), { headers });
    const start = Number(range[1]);
    const end = Math.min(Number(range[2]), body.length - 1);
    headers.set("content-range", `bytes ${start}-${end}/${body.length}`);
    return new Response(body.slice(start, end + 1), { status: 206, headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    close: () => server.shutdown(),
  };
}

const AWS_VARS = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_S3",
];

async function withEnv(vars: Record<string, string>, body: () => Promise<void>): Promise<void> {
  const saved = new Map(AWS_VARS.map((k) => [k, Deno.env.get(k)]));
  for (const k of AWS_VARS) Deno.env.delete(k);
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    await body();
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

const tar = writeTar([
  { name: "graph.nnef", data: encoder.encode("version 1.0;\n") },
  { name: "w.dat", data: new Uint8Array(5000).map((_, i) => i % 256) },
]);

Deno.test("openArchive reads s3://bucket/key signed with SigV4 from the AWS_* variables", async () => {
  const server = startS3Server(
    { "/models/dir/m.tar": tar },
    { AKIDTEST: "s3cr3t/KEY" },
    "eu-west-3",
  );
  try {
    await withEnv({
      AWS_ACCESS_KEY_ID: "AKIDTEST",
      AWS_SECRET_ACCESS_KEY: "s3cr3t/KEY",
      AWS_SESSION_TOKEN: "session-token-1",
      AWS_DEFAULT_REGION: "eu-west-3",
      AWS_ENDPOINT_URL: server.url,
    }, async () => {
      const archive = await openArchive("s3://models/dir/m.tar", { cache: false });
      try {
        assert.equal(archive.name, `${server.url}/models/dir/m.tar`);
        assert.deepEqual(archive.members().map((m) => m.name), ["graph.nnef", "w.dat"]);
        assert.deepEqual(await archive.read("w.dat"), tar.slice(1536, 1536 + 5000));
        assert.equal(archive.etag, '"s3-etag-1"');
      } finally {
        await archive.close();
      }
    });
    assert.ok(server.seen.accepted >= 1);
    assert.equal(server.seen.rejected, 0);
    assert.ok(server.seen.tokens.every((t) => t === "session-token-1"));
    assert.equal(server.seen.tokens.length, server.seen.accepted);
  } finally {
    await server.close();
  }
});

Deno.test("openS3Source with a wrong secret fails at once with 403 naming the URL, not the key", async () => {
  const server = startS3Server({ "/models/m.tar": tar }, { AKIDTEST: "right" }, "us-east-1");
  try {
    await assert.rejects(
      () =>
        openS3Source("s3://models/m.tar", {
          accessKeyId: "AKIDTEST",
          secretAccessKey: "wrong-secret",
          region: "us-east-1",
          endpoint: server.url,
        }),
      (e: unknown) =>
        e instanceof Error && e.message === `GET ${server.url}/models/m.tar: 403 Forbidden` &&
        !e.message.includes("wrong-secret"),
    );
    assert.equal(server.seen.rejected, 1);
    assert.equal(server.seen.accepted, 0);
  } finally {
    await server.close();
  }
});

Deno.test("s3HttpUrl addresses AWS virtual-hosted style, or path style on an endpoint", () => {
  assert.equal(
    s3HttpUrl("s3://bkt/a b/c+d.tar", { region: "us-west-2" }),
    "https://bkt.s3.us-west-2.amazonaws.com/a%20b/c%2Bd.tar",
  );
  assert.equal(
    s3HttpUrl("s3://bkt/k.tar", { endpoint: "https://acc.r2.cloudflarestorage.com/" }),
    "https://acc.r2.cloudflarestorage.com/bkt/k.tar",
  );
  assert.throws(() => s3HttpUrl("s3://bucket-only"), TypeError);
});

Deno.test("openS3Source without credentials says which variables are missing", async () => {
  await withEnv({}, async () => {
    await assert.rejects(
      () => openS3Source("s3://b/k.tar", { endpoint: "http://127.0.0.1:9" }),
      /s3:\/\/ needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
    );
  });
});
