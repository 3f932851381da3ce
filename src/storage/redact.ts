/**
 * Redaction of what a message or a log line may quote: URLs without their credentials and
 * presigned queries, tokens and signatures in free text.
 */

/**
 * The URL without credentials, query or fragment, for messages and logs.
 *
 * @example
 * ```ts
 * import { redactUrl } from "./redact.ts";
 * redactUrl("https://u:p@host/m.tar?X-Amz-Signature=s"); // "https://***@host/m.tar?<redacted>"
 * ```
 */
export function redactUrl(url: string | URL): string {
  const u = new URL(url);
  const credentials = u.username !== "" || u.password !== "";
  const query = u.search !== "";
  u.username = "";
  u.password = "";
  u.search = "";
  u.hash = "";
  let text = u.href;
  if (credentials) text = text.replace("://", "://***@");
  return query ? `${text}?<redacted>` : text;
}

/**
 * `text` with the credentials it may quote redacted: every `http(s)://` URL as by `redactUrl`,
 * `Bearer` and `Basic` tokens, and signature-like query fields outside a URL
 * (`X-Amz-Signature=`, `X-Amz-Credential=`, `token=`, ...). For log lines and messages that
 * carry text from elsewhere (a fetch error quotes its URL whole).
 *
 * @example
 * ```ts
 * import { redactText } from "./redact.ts";
 * redactText("GET https://h/m.tar?X-Amz-Signature=s failed"); // "GET https://h/m.tar?<redacted> failed"
 * ```
 */
export function redactText(text: string): string {
  return text
    .replace(/\bhttps?:\/\/[^\s'"<>()\[\]{}]+/gi, (match) => {
      const url = match.replace(/[.,;:!?]+$/, "");
      return redactLocation(url) + match.slice(url.length);
    })
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+\/=-]+/g, "$1 <redacted>")
    .replace(
      /\b(X-Amz-(?:Signature|Credential|Security-Token)|Signature|AWSAccessKeyId|sig|token|access_token|api_key|key)=[^&\s'"]+/gi,
      "$1=<redacted>",
    );
}

/**
 * A model location as it may be shown: an `http(s)://` URL redacted as by `redactUrl` (a
 * presigned query or `user:password@` never reaches a message or a log), a path or `s3://` URL
 * as it is.
 */
export function redactLocation(location: string): string {
  if (!/^https?:\/\//i.test(location)) return location;
  try {
    return redactUrl(location);
  } catch {
    return "<an unparsable URL>";
  }
}
