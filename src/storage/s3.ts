import { AwsClient } from "aws4fetch";
import { envVar } from "./_env.ts";
import { type HttpSource, type HttpSourceOptions, openHttpSource } from "./http_source.ts";

/** Credentials and addressing for `s3://` sources; each field defaults to its `AWS_*` variable. */
export interface S3Options {
  /** Default `$AWS_ACCESS_KEY_ID`. */
  readonly accessKeyId?: string;
  /** Default `$AWS_SECRET_ACCESS_KEY`. */
  readonly secretAccessKey?: string;
  /** Default `$AWS_SESSION_TOKEN`. */
  readonly sessionToken?: string;
  /** Default `$AWS_REGION`, `$AWS_DEFAULT_REGION`, else `us-east-1` (`auto` suits R2). */
  readonly region?: string;
  /**
   * An S3-compatible endpoint such as R2 or MinIO, addressed path-style (`<endpoint>/<bucket>/<key>`).
   * Default `$AWS_ENDPOINT_URL_S3`, `$AWS_ENDPOINT_URL`; without one, AWS virtual-hosted style.
   */
  readonly endpoint?: string;
}

/** Percent-encodes an object key the way S3 expects it, keeping the `/` between segments. */
function encodeKey(key: string): string {
  return key.split("/").map((segment) =>
    encodeURIComponent(segment).replace(
      /[!'()*]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
    )
  ).join("/");
}

/**
 * The HTTPS URL of `s3://bucket/key`: path-style on a custom endpoint, else
 * `https://<bucket>.s3.<region>.amazonaws.com/<key>`.
 *
 * @throws {TypeError} a URL that is not `s3://bucket/key`
 */
export function s3HttpUrl(url: string, options: S3Options = {}): string {
  const match = /^s3:\/\/([^/?#]+)\/([^?#]+)$/.exec(url);
  if (match === null) throw new TypeError(`Not an s3://bucket/key URL: '${url}'`);
  const bucket = match[1]!;
  const key = encodeKey(match[2]!);
  const endpoint = options.endpoint ?? envVar("AWS_ENDPOINT_URL_S3") ?? envVar("AWS_ENDPOINT_URL");
  if (endpoint !== undefined) {
    return `${endpoint.replace(/\/+$/, "")}/${encodeURIComponent(bucket)}/${key}`;
  }
  return `https://${bucket}.s3.${s3Region(options)}.amazonaws.com/${key}`;
}

function s3Region(options: S3Options): string {
  return options.region ?? envVar("AWS_REGION") ?? envVar("AWS_DEFAULT_REGION") ?? "us-east-1";
}

/**
 * Opens `s3://bucket/key` for range reads, every request signed with SigV4 (aws4fetch) from
 * the `AWS_*` credentials. Retries stay with the HTTP source (aws4fetch's own are off).
 *
 * @throws {TypeError} a malformed URL or missing credentials
 * @throws {Error} 403 (e.g. a wrong key) or 404 at once, with the URL redacted
 */
export async function openS3Source(
  url: string,
  options: S3Options & { readonly http?: HttpSourceOptions } = {},
): Promise<HttpSource> {
  const accessKeyId = options.accessKeyId ?? envVar("AWS_ACCESS_KEY_ID");
  const secretAccessKey = options.secretAccessKey ?? envVar("AWS_SECRET_ACCESS_KEY");
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    throw new TypeError(
      `${url}: s3:// needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or use a presigned https URL)`,
    );
  }
  const sessionToken = options.sessionToken ?? envVar("AWS_SESSION_TOKEN");
  const client = new AwsClient({
    accessKeyId,
    secretAccessKey,
    ...(sessionToken === undefined ? {} : { sessionToken }),
    service: "s3",
    region: s3Region(options),
    retries: 0,
  });
  const signed =
    ((input: RequestInfo | URL, init?: RequestInit) =>
      client.fetch(input instanceof URL ? input.href : input, init)) as typeof fetch;
  return await openHttpSource(s3HttpUrl(url, options), { ...options.http, fetch: signed });
}
