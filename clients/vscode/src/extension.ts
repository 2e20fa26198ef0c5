// Starts `opensesame-predictor lsp` for .http/.rest, Python, JavaScript/TypeScript and shell
// files. The server finds the specs in the workspace folders; `opensesame.specs` adds more.
import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

const LANGUAGES = [
  "http",
  "python",
  "javascript",
  "typescript",
  "javascriptreact",
  "typescriptreact",
  "shellscript",
];

let client: LanguageClient | undefined;

function serverCommand(): string {
  const configured = vscode.workspace
    .getConfiguration("opensesame")
    .get<string>("serverPath", "opensesame-predictor");
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? "";
  return configured.replace("${workspaceFolder}", folder);
}

function createClient(): LanguageClient {
  const serverOptions: ServerOptions = {
    command: serverCommand(),
    args: ["lsp"],
    transport: TransportKind.stdio,
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      ...LANGUAGES.map((language) => ({ scheme: "file", language })),
      { scheme: "file", pattern: "**/*.{http,rest}" },
    ],
    initializationOptions: {
      specs: vscode.workspace.getConfiguration("opensesame").get<string[]>("specs", []),
    },
    // Sends workspace/didChangeConfiguration when the `opensesame` settings change.
    synchronize: { configurationSection: "opensesame" },
    outputChannelName: "OpenSesame Predictor",
  };
  return new LanguageClient("opensesame", "OpenSesame Predictor", serverOptions, clientOptions);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  client = createClient();
  await client.start();
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("opensesame.serverPath") && client) {
        await client.stop();
        client = createClient();
        await client.start();
      }
    }),
    vscode.commands.registerCommand("opensesame.restartServer", async () => {
      await client?.restart();
    }),
  );
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}
