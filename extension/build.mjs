// Bundles each widget into one self-contained ESM file under src/invoke_nb/static/, and
// compiles the JupyterLab plugin (src/lab) to lib/lab/index.js, which `jupyter labextension
// build` (see the Makefile) then packs into src/invoke_nb/labextension/.
// Usage: node build.mjs [--watch] [--dev]
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";
import fs from "node:fs";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "../src/invoke_nb/static");
// Every src/widgets/<name>/index.tsx (or index.ts) becomes static/<name>.js.
const widgetsDir = path.join(here, "src/widgets");
const widgets = Object.fromEntries(
  fs
    .readdirSync(widgetsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => [d.name, ["index.tsx", "index.ts"].map((f) => `src/widgets/${d.name}/${f}`).find((f) => fs.existsSync(path.join(here, f)))])
    .filter(([, entry]) => entry),
);
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
  // each widget's CSS imports become static/<widget>.css, the class's anywidget `_css`
  loader: { ".css": "css" },
  jsx: "automatic",
  define: { "process.env.NODE_ENV": JSON.stringify(dev ? "development" : "production") },
  legalComments: "none",
  logLevel: "warning",
};

// The lab plugin: one ESM file; JupyterLab and Lumino stay imports, shared with the running
// JupyterLab by the labextension builder (module federation singletons).
const labOptions = {
  entryPoints: [path.join(here, "src/lab/index.ts")],
  outfile: path.join(here, "lib/lab/index.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  external: ["@jupyterlab/*", "@lumino/*"],
  sourcemap: dev ? "inline" : false,
  legalComments: "none",
  logLevel: "warning",
};

if (watch) {
  await (await esbuild.context(labOptions)).watch();
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log(`watching; writing to ${outdir}`);
} else {
  const t0 = performance.now();
  await Promise.all([esbuild.build(options), esbuild.build(labOptions)]);
  console.log(`built ${Object.keys(widgets).join(", ")} and lib/lab in ${Math.round(performance.now() - t0)} ms -> ${outdir}`);
}
