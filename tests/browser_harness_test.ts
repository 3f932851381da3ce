import assert from "node:assert/strict";
import { launchBrowser, withPage } from "./_browser.ts";

Deno.test("launchBrowser runs a page's script in Debian's Chromium", async () => {
  await using browser = await launchBrowser();
  await withPage(browser, "browser_harness", async (page) => {
    await page.setContent("<p id=out>static</p><script>out.textContent = 'ran'</script>");
    assert.equal(await page.textContent("#out"), "ran");
  });
});
