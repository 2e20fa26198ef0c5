// Bundles src/extension.ts and its dependencies (vscode-languageclient) into one
// out/extension.js, as the VS Code "Bundling Extensions" guide does with esbuild.
// `node esbuild.js --production` minifies; `--watch` rebuilds on change.
const esbuild = require("esbuild");

const production = process.argv.includes("--production");
const watch = process.argv.includes("--watch");

async function main() {
  const context = await esbuild.context({
    entryPoints: ["src/extension.ts"],
    bundle: true,
    format: "cjs",
    minify: production,
    sourcemap: !production,
    sourcesContent: false,
    platform: "node",
    target: "node18",
    outfile: "out/extension.js",
    external: ["vscode"],
    logLevel: "info",
  });
  if (watch) {
    await context.watch();
  } else {
    await context.rebuild();
    await context.dispose();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
