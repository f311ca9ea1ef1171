// Drive code-server (real VS Code) in headless Chromium like a user: open a file, put the cursor
// in a function, run "budgetpass: Generate until tests pass" from the command palette, wait for
// the server's summary, and print what the editor shows as JSON on stdout (for tests/editors).
// Usage: node drive-vscode.mjs URL FILE_NAME LINE TIMEOUT_S SCREENSHOT_PATH
import { chromium } from "playwright-core";

const [url, fileName, line, timeoutS, screenshot] = process.argv.slice(2);
const timeout = Number(timeoutS) * 1000;
const log = (...a) => console.error(`[drive ${new Date().toISOString().slice(11, 19)}]`, ...a);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage"],
});
const result = { ok: false };
const page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
try {
  await page.goto(url);
  await page.waitForSelector(".monaco-workbench", { timeout: 60000 });
  log("workbench up");
  // Open a quick input (Ctrl+P files, F1 commands), type, wait for a matching row, pick it.
  const palette = async (prefix, text, row) => {
    await page.keyboard.press(prefix);
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({ state: "visible", timeout: 10000 });
    await input.fill(text);
    await page.locator(".quick-input-list .monaco-list-row", { hasText: row }).first()
      .waitFor({ timeout: 30000 });
    await page.keyboard.press("Enter");
  };
  await page.locator(".monaco-workbench").click({ position: { x: 700, y: 800 } });
  await palette("Control+P", fileName, fileName);
  await page.waitForSelector(".monaco-editor .view-lines", { timeout: 30000 });
  log("file open");
  // The extension activates on Python files; its status bar item says when the server is up.
  const status = page.locator(".statusbar-item", { hasText: "budgetpass" });
  await status.first().waitFor({ timeout: 60000 });
  log("status:", await status.first().innerText());
  // The server's budgetpass/status "ready" turns it into "budgetpass · <model>" (no "loading").
  const ready = page.locator(".statusbar-item", { hasText: /budgetpass · (?!loading)\S+/ });
  await ready.first().waitFor({ timeout: 120000 });
  result.readyStatus = (await ready.first().innerText()).trim();
  log("ready:", result.readyStatus);
  await page.keyboard.press("Control+G");
  const goTo = page.locator(".quick-input-widget input");
  await goTo.waitFor({ state: "visible", timeout: 10000 });
  await goTo.fill(`:${line}`); // the ":" prefix keeps it "go to line", not a file search
  await page.waitForTimeout(300);
  await page.keyboard.press("Enter");
  await page.waitForTimeout(300);
  await palette("F1", ">budgetpass: Generate until tests pass", "Generate until tests pass");
  log("generate started");
  const toasts = page.locator(".notification-toast",
    { hasText: /budgetpass: \w+: (PASSED|FAILED|UNVERIFIED)|budgetpass: generate failed/ });
  const progress = [];
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline && (await toasts.count()) === 0) {
    const text = (await status.first().innerText().catch(() => "")).trim();
    if (text && progress[progress.length - 1] !== text) { progress.push(text); log("status:", text); }
    await page.waitForTimeout(250);
  }
  result.summary = (await toasts.count()) ? await toasts.first().innerText() : null;
  result.statusTexts = progress;
  // .view-line elements are absolutely positioned: order them by their top offset.
  result.lines = await page.$$eval(".monaco-editor .view-lines .view-line", (els) =>
    els.map((el) => ({ top: parseFloat(el.style.top) || 0, text: el.innerText }))
      .sort((a, b) => a.top - b.top).map((l) => l.text.replace(/\u00a0/g, " ")));
  result.tabDirty = (await page.locator(".tab.active.dirty").count()) > 0;
  result.cursorLine = await page.locator(".statusbar-item", { hasText: /Ln \d+/ }).first().innerText().catch(() => "");
  result.ok = result.summary !== null && !result.summary.includes("generate failed");
} catch (err) {
  result.error = String(err && err.stack || err);
} finally {
  if (screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
  await browser.close();
}
console.log(JSON.stringify(result));
