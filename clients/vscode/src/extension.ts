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

// The server's `workspace/executeCommand`: a predict request in, the wire-format answer out.
// vscode-languageclient registers it; package.json lists it for the Command Palette.
const PREDICT = "opensesame.predict";

interface Prediction {
  api_call: string;
  description?: string;
  confidence: number;
  rank: number;
}

interface PredictAnswer {
  predictions: Prediction[];
  metadata?: { abstain?: boolean };
}

let client: LanguageClient | undefined;

// What a person sees as a call's confidence: an abstaining answer (nothing in the specs fits
// the prompt) has no meaningful one.
function confidenceText(prediction: Prediction, answer: PredictAnswer): string {
  return answer.metadata?.abstain ? "no match" : prediction.confidence.toFixed(2);
}

// From the Command Palette the command comes without arguments: ask for the prompt, then
// offer the ranked calls; the one picked is inserted at the cursor.
async function predictFromPalette(
  next: (command: string, args: unknown[]) => Promise<unknown> | unknown,
): Promise<unknown> {
  const prompt = await vscode.window.showInputBox({
    title: "OpenSesame: Predict Next API Call",
    prompt: "What should the next call do?",
    placeHolder: "upload a photo of the pet I just created",
  });
  if (!prompt) {
    return undefined;
  }
  const answer = (await next(PREDICT, [{ prompt }])) as PredictAnswer | undefined;
  if (!answer || answer.predictions.length === 0) {
    vscode.window.showInformationMessage("OpenSesame: no API call to suggest.");
    return answer;
  }
  const picked = await vscode.window.showQuickPick(
    answer.predictions.map((prediction) => ({
      label: prediction.api_call,
      description: confidenceText(prediction, answer),
      detail: prediction.description,
    })),
    {
      title: answer.metadata?.abstain
        ? "Nothing in the loaded specs fits this prompt well"
        : "Next API call",
    },
  );
  const editor = vscode.window.activeTextEditor;
  if (picked && editor) {
    await editor.edit((edit) => edit.replace(editor.selection, picked.label));
  }
  return answer;
}

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
    middleware: {
      executeCommand: (command, args, next) =>
        command === PREDICT && args.length === 0
          ? predictFromPalette(next)
          : next(command, args),
    },
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
