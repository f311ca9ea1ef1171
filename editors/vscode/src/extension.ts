/**
 * budgetpass for VS Code: a thin client of `budgetpass serve`.
 *
 * Sampling, test runs and ranking all live in the language server; this file starts it with the
 * `budgetpass.*` settings, maps palette commands onto its executeCommand requests, and shows the
 * server's state in the status bar. Inline completions, code lenses and applyEdit are handled by
 * vscode-languageclient's built-in features, so they behave exactly as the server advertises.
 */
import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";
import {
  ExecuteCommandRequest,
  LanguageClient,
  LogMessageNotification,
  MessageType,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  WorkDoneProgressReport,
} from "vscode-languageclient/node";

const SECTION = "budgetpass";
const GENERATE = "budgetpass.generateUntilPass";
const CANDIDATES = "budgetpass.showCandidates";

let client: LanguageClient | undefined;
let status: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
/** The running generate request, so that `budgetpass.cancel` can stop it. */
let running: vscode.CancellationTokenSource | undefined;
/** Our window/workDoneProgress/create handler; re-registered on every (re)start, after the built-in one. */
let progressHandler: vscode.Disposable | undefined;

/** Settings the server reads (the `budgetpass` section minus the client-only `server`/`trace`). */
function serverSettings(): Record<string, unknown> {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const plain = JSON.parse(JSON.stringify(cfg)) as Record<string, unknown>;
  delete plain.server;
  delete plain.trace;
  return plain;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The setting, then PATH, then a workspace `.venv` (where `pip install -e .` usually puts it). */
export function resolveServer(
  configured: string,
  envPath: string | undefined,
  workspaceRoots: string[],
): string | undefined {
  if (configured) {
    return isExecutable(configured) ? configured : undefined;
  }
  for (const dir of (envPath ?? "").split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, "budgetpass");
    if (isExecutable(candidate)) return candidate;
  }
  for (const root of workspaceRoots) {
    const candidate = path.join(root, ".venv", "bin", "budgetpass");
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function setStatus(text: string, tooltip: string, error = false): void {
  status.text = text;
  status.tooltip = tooltip;
  status.backgroundColor = error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  status.show();
}

function progressText(value: WorkDoneProgressBegin | WorkDoneProgressReport): string {
  const title = "title" in value ? value.title : "";
  const parts = [title, value.message, value.percentage !== undefined ? `${value.percentage}%` : ""];
  return parts.filter(Boolean).join(" · ");
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
  const cfg = vscode.workspace.getConfiguration(SECTION);
  const roots = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
  const exe = resolveServer(cfg.get<string>("server.path", ""), process.env.PATH, roots);
  if (!exe) {
    const how =
      "budgetpass: the `budgetpass` executable was not found (setting budgetpass.server.path, PATH, .venv/bin). " +
      "Install it with `pip install budgetpass` or set budgetpass.server.path.";
    setStatus("$(error) budgetpass", how, true);
    void vscode.window.showErrorMessage(how, "Open settings").then((pick) => {
      if (pick) void vscode.commands.executeCommand("workbench.action.openSettings", "budgetpass.server.path");
    });
    return;
  }
  const serverOptions: ServerOptions = {
    command: exe,
    args: ["serve", ...cfg.get<string[]>("server.extraArgs", [])],
    transport: TransportKind.stdio,
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "python" },
      { scheme: "untitled", language: "python" },
    ],
    synchronize: { configurationSection: SECTION },
    initializationOptions: { [SECTION]: serverSettings() },
    outputChannel: output,
    traceOutputChannel: output,
    middleware: {
      // Each item's command title is its test outcome ("✓ 3/3 tests"): say them in cycling order
      // in the status bar, since VS Code shows "2/4" but not which item passed.
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        const result = await next(document, position, context, token);
        const items = Array.isArray(result) ? result : result?.items ?? [];
        showInlineOutcomes(items.map((i) => i.command?.title ?? "untested"));
        return result;
      },
    },
  };
  client = new LanguageClient(SECTION, "budgetpass", serverOptions, clientOptions);
  client.onDidChangeState((e) => {
    if (e.newState === State.Starting) setStatus("$(sync~spin) budgetpass", `starting ${exe} serve`);
    else if (e.newState === State.Running) {
      setStatus(`$(sync~spin) budgetpass · loading ${modelName()}`, "server running, model loading");
      progressHandler?.dispose();
      progressHandler = client && trackServerProgress(client);
    }
    else setStatus("$(circle-slash) budgetpass", "server stopped: budgetpass: Restart the server", true);
  });
  context.subscriptions.push(client, trackModelState(client));
  await client.start();
  progressHandler?.dispose();
  progressHandler = trackServerProgress(client);
}

async function generate(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!client || !editor) {
    void vscode.window.showWarningMessage("budgetpass: open a Python file with the server running first.");
    return;
  }
  if (running) {
    void vscode.window.showWarningMessage("budgetpass: a generation is already running (budgetpass: Cancel generation).");
    return;
  }
  const c = client;
  const doc = editor.document;
  const args = {
    uri: c.code2ProtocolConverter.asUri(doc.uri),
    position: c.code2ProtocolConverter.asPosition(editor.selection.active),
  };
  running = new vscode.CancellationTokenSource();
  const cancel = running;
  setStatus("$(sync~spin) budgetpass · generating", "budgetpass: Cancel generation stops it");
  try {
    // The server reports progress on a token it creates (see trackServerProgress) and applies
    // the body with workspace/applyEdit, which the client applies to the editor (unsaved).
    await c.sendRequest(ExecuteCommandRequest.type, { command: GENERATE, arguments: [args] }, cancel.token);
  } catch (err) {
    if (!cancel.token.isCancellationRequested) {
      const message = err instanceof Error ? err.message : String(err);
      setStatus("$(error) budgetpass", message, true);
      void vscode.window.showErrorMessage(`budgetpass: generate failed: ${message}`);
    } else {
      setStatus("$(circle-slash) budgetpass · cancelled", "generation cancelled");
    }
  } finally {
    running = undefined;
    cancel.dispose();
  }
}

/** One candidate as `budgetpass.showCandidates` returns it (app/report.py Candidate.to_json). */
interface Candidate {
  index: number;
  body: string;
  mean_logprob: number;
  parses: boolean;
  problem?: string | null;
  tested: boolean;
  decoded?: boolean;
  passed?: boolean;
  outcomes?: { test: string; outcome: string; message: string }[];
  repair_of?: number | null;
}

/** The test outcome of each inline item, in the order Alt+] cycles through them. */
export function inlineOutcomesText(titles: string[]): string {
  return titles.map((t, i) => `${i + 1}: ${t}`).join(" · ");
}

function showInlineOutcomes(titles: string[]): void {
  output.info(`inline: ${titles.length} item(s)${titles.length ? ": " + inlineOutcomesText(titles) : ""}`);
  if (titles.length === 0) return;
  setStatus(
    `budgetpass · inline ${inlineOutcomesText(titles)}`,
    `${titles.length} inline candidates, tested ones first; Alt+] / Alt+[ cycles, Tab accepts`,
  );
}

/** Arguments of `budgetpass.inlineStatus`, the command each inline item carries. */
interface InlineStatus {
  uri: string;
  version: number;
  index: number;
  status: "passed" | "failed" | "untested";
  passed: number;
  total: number;
}

/** Run by VS Code when an inline item is accepted: say what was accepted and its tests. */
function inlineAccepted(args?: InlineStatus): void {
  if (!args) return;
  const outcome = args.status === "untested" ? "untested" : `${args.status === "passed" ? "✓" : "✗"} ${args.passed}/${args.total} tests`;
  setStatus(`budgetpass · accepted candidate ${args.index + 1} (${outcome})`, "the inline candidate you accepted");
}

/** The run report plus where the function body sits in the document the run read. */
interface CandidatesResult {
  status: string;
  candidates: Candidate[];
  selected: number | null;
  version: number | null;
  range: { start: { line: number; character: number }; end: { line: number; character: number } } | null;
}

export function candidateLabel(cand: Candidate, selected: boolean): string {
  const outcomes = cand.outcomes ?? [];
  const passing = outcomes.filter((o) => o.outcome === "passed").length;
  // A candidate cut off when another passed (or on cancel) is "not finished", not broken code.
  const verdict = cand.decoded === false
    ? "not finished"
    : !cand.tested
    ? cand.parses ? "untested" : "does not parse"
    : `${cand.passed ? "✓" : "✗"} ${passing}/${outcomes.length} tests`;
  // A repair round's candidate: the model's fix of a failed one, shown with its failure.
  const repair = cand.repair_of != null ? ` · repair of #${cand.repair_of}` : "";
  return `${selected ? "★ " : ""}#${cand.index} ${verdict}${repair}`;
}

async function candidates(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!client || !editor) return;
  const c = client;
  const doc = editor.document;
  const args = {
    uri: c.code2ProtocolConverter.asUri(doc.uri),
    position: c.code2ProtocolConverter.asPosition(editor.selection.active),
  };
  const result = (await c.sendRequest(ExecuteCommandRequest.type, { command: CANDIDATES, arguments: [args] })) as
    | CandidatesResult
    | null;
  if (!result || result.candidates.length === 0 || !result.range) {
    void vscode.window.showInformationMessage("budgetpass: no candidates for the function at the cursor.");
    return;
  }
  const items = result.candidates.map((cand) => {
    const failing = (cand.outcomes ?? []).find((o) => o.outcome !== "passed");
    return {
      label: candidateLabel(cand, cand.index === result.selected),
      description: `logprob ${cand.mean_logprob.toFixed(2)}${failing ? ` · ${failing.test}` : ""}`,
      detail: cand.body.split("\n").map((l) => l.trim()).filter(Boolean).join(" ⏎ "),
      cand,
    };
  });
  const pick = await vscode.window.showQuickPick(items, { title: "budgetpass candidates", matchOnDetail: true });
  if (!pick) return;
  if (result.version !== null && doc.version !== result.version) {
    void vscode.window.showWarningMessage(
      "budgetpass: the document changed since these candidates were made; nothing applied (generate again).",
    );
    return;
  }
  const body = pick.cand.body.endsWith("\n") ? pick.cand.body : pick.cand.body + "\n";
  const edit = new vscode.WorkspaceEdit();
  edit.replace(doc.uri, c.protocol2CodeConverter.asRange(result.range), body);
  await vscode.workspace.applyEdit(edit);
}

/**
 * Server-created progress (window/workDoneProgress/create): a cancellable notification plus the
 * status bar text, replacing vscode-languageclient's window-only indicator so that the user sees
 * "candidate 5/12 · 1 passing" where they look and can cancel it.
 */
function trackServerProgress(c: LanguageClient): vscode.Disposable {
  return c.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    let ui: vscode.Progress<{ message?: string; increment?: number }> | undefined;
    let finish: () => void = () => undefined;
    let percentage = 0;
    const listener = c.onProgress(WorkDoneProgress.type, token, (value) => {
      if (value.kind === "begin") {
        const begin = value as WorkDoneProgressBegin;
        setStatus(`$(sync~spin) ${progressText(begin)}`, "budgetpass: Cancel generation stops it");
        void vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: begin.title, cancellable: begin.cancellable },
          (progress, cancelled) => {
            ui = progress;
            cancelled.onCancellationRequested(() =>
              c.sendNotification(WorkDoneProgressCancelNotification.type, { token }),
            );
            return new Promise<void>((resolve) => (finish = resolve));
          },
        );
      } else if (value.kind === "report") {
        const report = value as WorkDoneProgressReport;
        setStatus(`$(sync~spin) budgetpass · ${progressText(report)}`, "budgetpass: Cancel generation stops it");
        const next = report.percentage ?? percentage;
        ui?.report({ message: report.message, increment: Math.max(0, next - percentage) });
        percentage = next;
      } else {
        setStatus(`$(check) budgetpass · ${modelName()}`, value.message ?? "done");
        finish();
        listener.dispose();
      }
    });
  });
}

function modelName(): string {
  return vscode.workspace.getConfiguration(SECTION).get<string>("model", "");
}

interface ServerStatus {
  state: "loading" | "ready" | "failed";
  model: string;
  seconds: number;
  message: string;
}

/**
 * The status bar follows the server's `budgetpass/status` notification (model loading, ready or
 * failed); its log lines still go to the output channel.
 */
function trackModelState(c: LanguageClient): vscode.Disposable {
  const log = c.onNotification(LogMessageNotification.type, ({ type, message }) => {
    const write = { [MessageType.Error]: output.error, [MessageType.Warning]: output.warn }[type as number] ?? output.info;
    write.call(output, message);
  });
  const state = c.onNotification("budgetpass/status", (s: ServerStatus) => {
    if (running) return; // a generation's progress owns the status bar until it ends
    if (s.state === "loading") setStatus(`$(sync~spin) budgetpass · loading ${s.model}`, s.message);
    else if (s.state === "ready") setStatus(`$(check) budgetpass · ${s.model}`, s.message);
    else setStatus(`$(error) budgetpass · ${s.model}`, s.message, true);
  });
  return vscode.Disposable.from(log, state);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("budgetpass", { log: true });
  status = vscode.window.createStatusBarItem("budgetpass.status", vscode.StatusBarAlignment.Right, 100);
  status.name = "budgetpass";
  status.command = "budgetpass.showLog";
  context.subscriptions.push(
    output,
    status,
    vscode.commands.registerCommand("budgetpass.generate", generate),
    vscode.commands.registerCommand("budgetpass.candidates", candidates),
    vscode.commands.registerCommand("budgetpass.cancel", () => running?.cancel()),
    vscode.commands.registerCommand("budgetpass.showLog", () => output.show(true)),
    vscode.commands.registerCommand("budgetpass.inlineStatus", inlineAccepted),
    vscode.commands.registerCommand("budgetpass.restart", async () => {
      if (client) await client.restart();
      else await startClient(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      // The server re-reads its section itself; only the executable and its arguments need a restart.
      if (e.affectsConfiguration("budgetpass.server") && client) {
        await client.stop();
        client = undefined;
        await startClient(context);
      }
    }),
  );
  setStatus("$(sync~spin) budgetpass", "starting");
  try {
    await startClient(context);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    setStatus("$(error) budgetpass", message, true);
    void vscode.window.showErrorMessage(`budgetpass: the server did not start: ${message}`);
  }
}

export async function deactivate(): Promise<void> {
  if (client) await client.stop();
}
