// Bundles each widget into one self-contained ESM file under src/invoke_nb/static/.
// Usage: node build.mjs [--watch] [--dev]
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "../src/invoke_nb/static");
const widgets = { graph_editor: "src/widgets/graph_editor/index.tsx" };
const watch = process.argv.includes("--watch");
const dev = process.argv.includes("--dev") || watch;

const options = {
  entryPoints: Object.fromEntries(Object.entries(widgets).map(([k, v]) => [k, path.join(here, v)])),
  outdir,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  loader: { ".css": "text" },
  jsx: "automatic",
  define: { "process.env.NODE_ENV": JSON.stringify(dev ? "development" : "production") },
  legalComments: "none",
  logLevel: "warning",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log(`watching; writing to ${outdir}`);
} else {
  const t0 = performance.now();
  await esbuild.build(options);
  console.log(`built ${Object.keys(widgets).join(", ")} in ${Math.round(performance.now() - t0)} ms -> ${outdir}`);
}
