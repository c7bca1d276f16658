#!/usr/bin/env node
/**
 * `npm run build` (and `prepack`): compiles the TypeScript source into `dist/` for the npm
 * package, because Node and Deno refuse to strip types inside `node_modules`. JSR publishes the
 * source itself and needs none of this.
 *
 * - `dist/` keeps the source's layout (`dist/mod.js`, `dist/src/...`), so the worker entries
 *   (`dist/src/worker/*.js`, plain JavaScript already) sit where the code that starts them
 *   looks for them.
 * - `.js`, `.d.ts` and source maps (with the TypeScript inlined, since the package ships no
 *   `.ts`); relative `.ts` specifiers become `.js`.
 * - ES2022, so the package runs on Node 20 as well as 22 and 24, Deno and Bun.
 *
 * Plain JavaScript on purpose, like tests/_run_all.mjs: it may be started by Node 20. It uses the
 * TypeScript compiler from devDependencies (pinned in package.json).
 *
 * `--out DIR` writes there instead of `dist/` (bench/cli.ts measures the compiled command
 * without touching the package's `dist/`).
 *
 * Exits non-zero, printing the compiler's diagnostics, if the source does not compile.
 */

import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outFlag = process.argv.indexOf("--out");
const OUT = outFlag === -1 ? path.join(ROOT, "dist") : path.resolve(process.argv[outFlag + 1]);

/**
 * The package's entries (the library and the `fanout` command, whose `#!` line tsc keeps) and
 * the two worker programs, which nothing imports (they are started).
 */
const ROOTS = [
  "mod.ts",
  "src/cli.ts",
  "src/distributed/mod.ts",
  "src/distributed/strategy.ts",
  "src/worker/thread_entry.js",
  "src/worker/process_entry.js",
];

/** @type {import("typescript").CompilerOptions} */
const options = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  rewriteRelativeImportExtensions: true,
  allowJs: true,
  checkJs: false,
  declaration: true,
  // Maps carry the TypeScript they come from: the package ships no .ts.
  sourceMap: true,
  inlineSources: true,
  strict: true,
  noEmitOnError: true,
  skipLibCheck: true,
  rootDir: ROOT,
  outDir: OUT,
  lib: ["lib.es2024.d.ts", "lib.dom.d.ts"],
  types: ["node"],
  newLine: ts.NewLineKind.LineFeed,
};

rmSync(OUT, { recursive: true, force: true });
const program = ts.createProgram(ROOTS.map((file) => path.join(ROOT, file)), options);
const emitted = program.emit();
const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics];
if (diagnostics.length > 0) {
  const host = {
    getCanonicalFileName: (/** @type {string} */ file) => file,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => "\n",
  };
  console.error(ts.formatDiagnosticsWithColorAndContext(diagnostics, host));
  console.error(`build: ${diagnostics.length} error(s); ${path.relative(ROOT, OUT)}/ was not written`);
  process.exit(1);
}
for (const file of ROOTS) {
  const out = path.join(OUT, file.replace(/\.ts$/, ".js"));
  if (!existsSync(out)) {
    console.error(`build: expected ${path.relative(ROOT, out)}, which was not written`);
    process.exit(1);
  }
}
console.log(`build: ${path.relative(ROOT, OUT)}/ written by TypeScript ${ts.version}`);
