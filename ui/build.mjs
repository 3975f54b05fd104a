// Builds the dashboard into ../src/fleetlens/ui/static (or the directory given as the first argument):
// index.html plus assets/app-<hash>.js and assets/app-<hash>.css. esbuild output is deterministic for the
// same sources and versions, so tests/ui/test_bundle.py rebuilds and compares with the committed bundle.
import * as esbuild from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, "..", "src", "fleetlens", "ui", "static"));
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: join(here, "src", "main.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome110", "firefox110", "safari16"],
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  metafile: true,
  legalComments: "eof",
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((p) => p.endsWith(".js"));
const css = outputs.find((p) => p.endsWith(".css"));
if (!js || !css) throw new Error(`expected one .js and one .css output, got ${outputs.join(", ")}`);
const html = readFileSync(join(here, "src", "index.html"), "utf8")
  .replace("%APP_JS%", `assets/${js}`)
  .replace("%APP_CSS%", `assets/${css}`);
writeFileSync(join(out, "index.html"), html);
console.log(`built ${out}: index.html, assets/${js}, assets/${css}`);
