// Drive code-server (real VS Code) in headless Chromium like a user and print what the editor
// shows as JSON on stdout (for tests/editors). Modes:
// - generate: put the cursor in a function, run "budgetpass: Generate until tests pass" from the
//   command palette, wait for the server's summary;
// - inline: empty the statement on LINE (a stub's `raise NotImplementedError`), wait for the ghost
//   text the inline completion shows and the test outcomes in the status bar, cycle to the second
//   item (Alt+]) and screenshot it, cycle back (Alt+[) and accept the first with Tab;
// - picker: run "budgetpass: Show candidates of the last run" at LINE, screenshot the list with
//   its test outcomes, pick the first passing candidate.
// Usage: node drive-vscode.mjs URL FILE_NAME LINE TIMEOUT_S SCREENSHOT_PATH [generate|inline|picker]
import { chromium } from "playwright-core";

const [url, fileName, line, timeoutS, screenshot, mode = "generate"] = process.argv.slice(2);
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
  if (mode === "inline") await inline();
  else if (mode === "picker") await picker();
  else await generate();

  async function picker() {
    await palette("F1", ">budgetpass: Show candidates", "Show candidates of the last run");
    log("candidates asked for");
    const rows = page.locator(".quick-input-list .monaco-list-row", { hasText: /#\d+/ });
    await rows.first().waitFor({ timeout });
    await page.waitForTimeout(500);
    result.pickerRows = (await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, " ").trim());
    log("picker:", JSON.stringify(result.pickerRows));
    if (screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
    const passing = page.locator(".quick-input-list .monaco-list-row", { hasText: "✓" });
    if ((await passing.count()) === 0) return;
    result.picked = (await passing.first().innerText()).replace(/\s+/g, " ").trim();
    await passing.first().click();
    await page.waitForTimeout(1000);
    await readEditor();
    result.ok = true;
  }

  async function generate() {
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
  await readEditor();
  result.ok = result.summary !== null && !result.summary.includes("generate failed");
  }

  async function readEditor() {
    // .view-line elements are absolutely positioned: order them by their top offset.
    result.lines = await page.$$eval(".monaco-editor .view-lines .view-line", (els) =>
      els.map((el) => ({ top: parseFloat(el.style.top) || 0, text: el.innerText }))
        .sort((a, b) => a.top - b.top).map((l) => l.text.replace(/\u00a0/g, " ")));
    result.tabDirty = (await page.locator(".tab.active.dirty").count()) > 0;
    result.cursorLine = await page.locator(".statusbar-item", { hasText: /Ln \d+/ }).first().innerText().catch(() => "");
  }

  async function inline() {
    // Home goes to the first non-blank character: select the statement and delete it, so the
    // cursor stands on the indentation of an empty body. The edit triggers inline completion.
    await page.keyboard.press("Home");
    await page.keyboard.press("Shift+End");
    await page.keyboard.press("Delete");
    log("statement deleted");
    const ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text");
    const deadline = Date.now() + timeout;
    let triggered = false;
    let seen = "";
    while (Date.now() < deadline && (await ghost.count()) === 0) {
      const now = (await status.first().innerText().catch(() => "")).trim();
      if (now !== seen) { seen = now; log("status:", now); }
      if (!triggered && Date.now() > deadline - timeout + 30000) {
        triggered = true; // no automatic request came: ask as a user would (Alt+\\ in VS Code)
        await palette("F1", ">Trigger Inline Suggestion", "Trigger Inline Suggestion");
        log("inline suggestion triggered from the palette");
      }
      await page.waitForTimeout(250);
    }
    result.ghost = await ghost.allInnerTexts().catch(() => []);
    result.ghost = result.ghost.map((t) => t.replace(/\u00a0/g, " "));
    log("ghost text:", JSON.stringify(result.ghost));
    if (!result.ghost.length) return;
    const outcomes = page.locator(".statusbar-item", { hasText: "budgetpass · inline" });
    await outcomes.first().waitFor({ timeout: 10000 }).catch(() => {});
    result.inlineOutcomes = (await outcomes.first().innerText().catch(() => "")).trim();
    log("outcomes:", result.inlineOutcomes);
    const ghostText = async () => (await ghost.allInnerTexts().catch(() => [])).join("\n").replace(/\u00a0/g, " ");
    const first = await ghostText();
    await page.keyboard.press("Alt+BracketRight"); // next inline suggestion
    // VS Code may ask the server again for every item before it cycles: a whole solve.
    const until = Date.now() + 240000;
    while (Date.now() < until && (await ghostText()) === first) await page.waitForTimeout(200);
    result.ghostSecond = await ghostText();
    result.counter = (await page.locator(".inlineSuggestionsHints, .inline-suggestion-hints")
      .first().innerText().catch(() => "")).replace(/\s+/g, " ").trim();
    log("second ghost text:", JSON.stringify(result.ghostSecond), "hint:", result.counter);
    if (screenshot) await page.screenshot({ path: screenshot }).catch(() => {});
    await page.keyboard.press("Alt+BracketLeft"); // back to the first (tested ones come first)
    const back = Date.now() + 10000;
    while (Date.now() < back && (await ghostText()) !== first) await page.waitForTimeout(200);
    result.ghostBack = await ghostText();
    await page.keyboard.press("Tab");
    await page.waitForTimeout(500);
    result.ghostAfterTab = await ghost.count();
    await readEditor();
    result.ok = true;
  }
} catch (err) {
  result.error = String(err && err.stack || err);
} finally {
  if (screenshot && mode === "generate") await page.screenshot({ path: screenshot }).catch(() => {});
  if (screenshot && !result.ok) await page.screenshot({ path: screenshot + ".failed.png" }).catch(() => {});
  await browser.close();
}
console.log(JSON.stringify(result));
