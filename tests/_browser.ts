/**
 * Test helper: Debian's Chromium (`apt-get install chromium`, as `.ci/run` does) driven by
 * playwright-core, headless, with every background connection switched off (this machine's
 * network is closed, and Chromium would otherwise retry its own services at every start).
 */
import { type Browser, chromium, type Page } from "playwright-core";

/** Where Debian puts Chromium; `RILL_CHROMIUM` overrides it. */
export const CHROMIUM = Deno.env.get("RILL_CHROMIUM") ?? "/usr/bin/chromium";

const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
];

/** A headless Chromium; close it (or `await using` it) when done. */
export async function launchBrowser(): Promise<Browser & AsyncDisposable> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `No Chromium at ${CHROMIUM}: install Debian's 'chromium' package (apt-get install chromium) or set RILL_CHROMIUM`,
    );
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

/**
 * Runs `body` on a new page; on failure, keeps a screenshot of the page in
 * `tests/artifacts/<name>.png` (CI keeps the folder) before rethrowing.
 */
export async function withPage(
  browser: Browser,
  name: string,
  body: (page: Page) => Promise<void>,
): Promise<void> {
  const page = await browser.newPage();
  try {
    await body(page);
  } catch (error) {
    const dir = new URL("./artifacts/", import.meta.url);
    await Deno.mkdir(dir, { recursive: true });
    await page.screenshot({ path: new URL(`${name}.png`, dir).pathname, fullPage: true })
      .catch(() => {});
    throw error;
  } finally {
    await page.close();
  }
}

/**
 * Waits until `expression` is true in `page`. Playwright's `waitForFunction` re-evaluates a
 * string with `eval` inside the page, which a page's Content Security Policy (the playground's
 * `script-src 'self'`) refuses; `evaluate` goes through the debugger and is not subject to it.
 */
export async function waitForScript(
  page: Page,
  expression: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(expression))) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
