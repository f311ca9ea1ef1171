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
import { randomUUID } from "crypto";
import * as vscode from "vscode";
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressReport,
  WorkDoneProgressEnd,
} from "vscode-languageclient/node";

const SECTION = "budgetpass";
const GENERATE = "budgetpass.generateUntilPass";
const CANDIDATES = "budgetpass.showCandidates";

let client: LanguageClient | undefined;
let status: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
/** The running generate request, so that `budgetpass.cancel` can stop it. */
let running: vscode.CancellationTokenSource | undefined;

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
  };
  client = new LanguageClient(SECTION, "budgetpass", serverOptions, clientOptions);
  client.onDidChangeState((e) => {
    if (e.newState === State.Starting) setStatus("$(sync~spin) budgetpass", `starting ${exe} serve`);
    else if (e.newState === State.Running) setStatus(`$(check) budgetpass · ${cfg.get("model")}`, "server running");
    else setStatus("$(circle-slash) budgetpass", "server stopped: budgetpass: Restart the server", true);
  });
  // Any progress the server reports on its own (model loading, code-lens runs) also goes to the
  // status bar, next to the notification vscode-languageclient shows for it.
  context.subscriptions.push(client);
  await client.start();
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
  const token = randomUUID();
  running = new vscode.CancellationTokenSource();
  const cancel = running;
  const progressListener = c.onProgress(WorkDoneProgress.type, token, (value) => {
    if (value.kind === "end") {
      const end = value as WorkDoneProgressEnd;
      setStatus(`$(check) budgetpass · ${end.message ?? "done"}`, end.message ?? "");
    } else {
      setStatus(`$(sync~spin) ${progressText(value)}`, "budgetpass: Cancel generation stops it");
    }
  });
  setStatus("$(sync~spin) budgetpass · generating", "budgetpass: Cancel generation stops it");
  try {
    await c.sendRequest(
      ExecuteCommandRequest.type,
      { command: GENERATE, arguments: [args], workDoneToken: token },
      cancel.token,
    );
  } catch (err) {
    if (!cancel.token.isCancellationRequested) {
      const message = err instanceof Error ? err.message : String(err);
      setStatus("$(error) budgetpass", message, true);
      void vscode.window.showErrorMessage(`budgetpass: generate failed: ${message}`);
    } else {
      setStatus("$(circle-slash) budgetpass · cancelled", "generation cancelled");
    }
  } finally {
    progressListener.dispose();
    running = undefined;
    cancel.dispose();
  }
}

interface Candidate {
  status?: string;
  body?: string;
  text?: string;
  passed?: number;
  failed?: number;
  tests_passed?: number;
  tests_total?: number;
  mean_logprob?: number;
  edit?: unknown;
  command?: { title: string; command: string; arguments?: unknown[] };
}

async function candidates(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!client || !editor) return;
  const c = client;
  const args = {
    uri: c.code2ProtocolConverter.asUri(editor.document.uri),
    position: c.code2ProtocolConverter.asPosition(editor.selection.active),
  };
  const result = (await c.sendRequest(ExecuteCommandRequest.type, { command: CANDIDATES, arguments: [args] })) as
    | Candidate[]
    | { candidates?: Candidate[] }
    | null;
  const list = Array.isArray(result) ? result : (result?.candidates ?? []);
  if (list.length === 0) {
    void vscode.window.showInformationMessage("budgetpass: no candidates yet: run Generate until tests pass first.");
    return;
  }
  const items = list.map((cand) => {
    const text = cand.body ?? cand.text ?? "";
    const tests = cand.tests_total !== undefined ? ` ${cand.tests_passed ?? 0}/${cand.tests_total} tests` : "";
    return {
      label: `${cand.status ?? "?"}${tests}`,
      description: cand.mean_logprob !== undefined ? `logprob ${cand.mean_logprob.toFixed(2)}` : "",
      detail: text.split("\n").map((l) => l.trim()).filter(Boolean).join(" ⏎ "),
      cand,
    };
  });
  const pick = await vscode.window.showQuickPick(items, { title: "budgetpass candidates", matchOnDetail: true });
  if (!pick) return;
  if (pick.cand.edit) {
    const edit = await c.protocol2CodeConverter.asWorkspaceEdit(pick.cand.edit as never);
    if (edit) await vscode.workspace.applyEdit(edit);
  } else if (pick.cand.command) {
    await c.sendRequest(ExecuteCommandRequest.type, {
      command: pick.cand.command.command,
      arguments: pick.cand.command.arguments,
    });
  }
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
