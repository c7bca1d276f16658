/**
 * The `fanout` command's figures (issue 16), in one run on the runtime that runs this file:
 *
 * - 200 × `true`, 4 at a time: `fanout run` ÷ GNU parallel, and ÷ `xargs -P 4`
 * - `gzip -9` over 200 files, 4 at a time: `fanout run` ÷ `xargs -P 4`
 * - `fanout map` over 100,000 JSON lines of a trivial function ÷ a plain loop reading and
 *   writing the same lines (both started as programs on this runtime)
 * - `--bar` on 200 × `true`: with ÷ without
 *
 * Each is the median of a few runs, the two sides alternated. The command measured is the one
 * users run: on Node and Bun the npm package's compiled JavaScript (built first, into
 * node_modules/.cache, leaving `dist/` alone), on Deno the TypeScript source as from JSR;
 * `--source` measures the source on Node and Bun too. Usage: `node bench/cli.ts` (or
 * `bun bench/cli.ts`, `deno run -A bench/cli.ts`) `[--quick] [--source]`.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { detect } from "../src/runtime/mod.ts";

const ROUNDS = process.argv.includes("--quick") ? 3 : 7;
const { name, execPath } = detect();
const CLI = name === "deno" || process.argv.includes("--source")
  ? fileURLToPath(new URL("../src/cli.ts", import.meta.url))
  : build();

/** Compiles the package as `npm pack` would; returns its `fanout` command. */
function build(): string {
  const out = fileURLToPath(new URL("../node_modules/.cache/fanout-bench-cli", import.meta.url));
  const built = spawnSync(
    execPath,
    [fileURLToPath(new URL("../.ci/build.mjs", import.meta.url)), "--out", out],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  if (built.status !== 0) throw new Error(`the build failed (exit ${built.status})`);
  return join(out, "src", "cli.js");
}
const self = (script: string): string[] => [
  execPath,
  ...(name === "deno" ? ["run", "-A"] : []),
  script,
];

/** Runs `argv` with `stdin` (a file path or nothing); resolves its wall time in ms. */
function time(argv: string[], stdin?: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      stdio: [stdin === undefined ? "ignore" : "pipe", "ignore", "ignore"],
    });
    // A program that fails early may not read it all: its exit status tells.
    child.stdin?.on("error", () => {});
    if (stdin !== undefined) child.stdin!.end(stdin);
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(performance.now() - started) : reject(
        new Error(`${argv.join(" ")} exited with ${code}`),
      ));
  });
}

const median = (values: number[]): number => values.sort((a, b) => a - b)[values.length >> 1];

/** Medians of each side, run alternately. */
async function compare(
  sides: Record<string, () => Promise<number>>,
): Promise<Record<string, number>> {
  const times: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const [side, run] of Object.entries(sides)) (times[side] ??= []).push(await run());
  }
  return Object.fromEntries(Object.entries(times).map(([side, ts]) => [side, median(ts)]));
}

const dir = mkdtempSync(join(tmpdir(), "fanout-bench-cli-"));
try {
  const seq = Array.from({ length: 200 }, (_, i) => String(i + 1)).join("\n") + "\n";
  const gnu = existsSync("/usr/bin/parallel");
  const trues = await compare({
    xargs: () => time(["xargs", "-P", "4", "-n", "1", "true"], seq),
    ...(gnu ? { gnu: () => time(["parallel", "--will-cite", "-j4", "true"], seq) } : {}),
    fanout: () => time([...self(CLI), "run", "-j", "4", "true"], seq),
    fanoutBar: () => time([...self(CLI), "run", "-j", "4", "--bar", "true"], seq),
  });
  const files = Array.from({ length: 200 }, (_, i) => {
    const file = join(dir, `f${i}`);
    writeFileSync(file, `line ${i} of some text to compress\n`.repeat(2000));
    return file;
  });
  const list = files.join("\n") + "\n";
  const gzip = await compare({
    xargs: () => time(["xargs", "-P", "4", "-n", "1", "gzip", "-9", "-k", "-f"], list),
    fanout: () => time([...self(CLI), "run", "-j", "4", "gzip", "-9", "-k", "-f"], list),
  });
  const lines = Array.from({ length: 100_000 }, (_, i) => JSON.stringify({ n: i })).join("\n") +
    "\n";
  const module = join(dir, "work.mjs");
  writeFileSync(module, "export function f(x) { return x.n + 1; }\n");
  const loop = join(dir, "loop.mjs");
  writeFileSync(
    loop,
    `import { readFileSync, writeFileSync } from "node:fs";
import { f } from ${JSON.stringify(module)};
const out = readFileSync(0, "utf8").split("\\n").filter((l) => l !== "")
  .map((l) => JSON.stringify(f(JSON.parse(l))));
writeFileSync(1, out.join("\\n") + "\\n");
`,
  );
  const map = await compare({
    loop: () => time([...self(loop)], lines),
    fanout: () => time([...self(CLI), "map", `${module}#f`], lines),
  });
  const ratio = (a: number, b: number): string => (a / b).toFixed(2);
  console.log(
    `cli figures on ${name} ${detect().version} (medians of ${ROUNDS}; ${
      CLI.endsWith(".ts") ? "the TypeScript source" : "the compiled package"
    }):`,
  );
  console.log(
    `  200 × true, -j4: fanout ${trues.fanout.toFixed(0)} ms, xargs ${trues.xargs.toFixed(0)} ms` +
      (gnu ? `, GNU parallel ${trues.gnu.toFixed(0)} ms` : " (GNU parallel not installed)"),
  );
  if (gnu) {
    console.log(`    fanout ÷ GNU parallel: ${ratio(trues.fanout, trues.gnu)} (target ≤ 0.5)`);
  }
  console.log(`    fanout ÷ xargs -P 4: ${ratio(trues.fanout, trues.xargs)} (target ≤ 1.5)`);
  console.log(
    `  gzip -9 × 200, -j4: fanout ÷ xargs -P 4: ${ratio(gzip.fanout, gzip.xargs)} (target ≤ 1.2)`,
  );
  console.log(
    `  map, 100,000 lines: fanout ${map.fanout.toFixed(0)} ms ÷ plain loop ${
      map.loop.toFixed(0)
    } ms: ${ratio(map.fanout, map.loop)} (target ≤ 2)`,
  );
  console.log(
    `  --bar on 200 × true: ${ratio(trues.fanoutBar, trues.fanout)} (target ≤ 1.02)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
