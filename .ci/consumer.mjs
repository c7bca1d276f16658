#!/usr/bin/env node
/**
 * The consumer tests: fanout used the way its users get it, in fresh folders outside the
 * checkout, with no network but the npm registry.
 *
 * - `npm pack`, then the tarball installed into a new Node project: a program maps tasks from
 *   the project's own `.js` and `.ts` modules on threads, processes and auto, and exits by
 *   itself; the same program on Deno (the package from `node_modules`, `--allow-read` for
 *   threads, `--allow-read --allow-run` for processes) and on the system's Node (20 here).
 * - A strict TypeScript consumer (`module: nodenext`, `skipLibCheck: false`) compiles with no
 *   error, and one with a wrong result type does not.
 * - `bun add` of the tarball into a new Bun project, and the program on Bun.
 * - Deno importing the files `deno publish` would upload (as JSR serves them), by path.
 * - The bundling recipes of docs/bundling.md: `bun build` and esbuild, each built and run; and
 *   without the worker programs beside the bundle, the error that points to the recipe.
 * - `deno compile`, where it can run (it downloads its runtime, `denort`).
 * - The `fanout` command from the installed package (its bin) on Node, Bun, Deno and
 *   `npx` (the node on PATH): `run`, and `map` on threads and processes.
 * - `fanout/distributed`: without bullmq installed, the clear error; with bullmq and ioredis
 *   installed beside the tarball, a real redis-server on 127.0.0.1 and the package's own
 *   `fanout worker`, a map from Node, Bun and Deno (skipped where redis-server is missing).
 *
 * Usage: node .ci/consumer.mjs        (run by .ci/run; about a minute)
 * Prints one line per path and runtime, then `consumer: N passed, M failed, K skipped`, and
 * exits non-zero if any failed.
 */

import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = (name) => path.join(ROOT, "node_modules", ".bin", name);
const NODE = BIN("node");
const BUN = BIN("bun");
const DENO = BIN("deno");
const TSC = BIN("tsc");
const ESBUILD = BIN("esbuild");
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
const TYPES_NODE = `@types/node@${pkg.devDependencies["@types/node"]}`;
/** How long one program may run before it counts as hung. */
const PROGRAM_MS = 60_000;

/** @type {{ path: string, runtime: string, status: "pass" | "FAIL" | "skip", detail: string }[]} */
const results = [];

/** Runs a command; never throws. */
function run(cmd, args, cwd, options = {}) {
  const result = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    timeout: options.timeout ?? PROGRAM_MS,
    env: { ...process.env, CE_PARALLEL: "", ...options.env },
  });
  return {
    code: result.status,
    hung: result.error?.code === "ETIMEDOUT" || (result.status === null && result.signal === "SIGTERM"),
    stdout: result.stdout ?? "",
    stderr: result.stderr ?? "",
    error: result.error,
  };
}

function record(pathName, runtime, status, detail) {
  results.push({ path: pathName, runtime, status, detail });
  console.log(`${status.padEnd(4)}  ${pathName.padEnd(34)} ${runtime.padEnd(9)} ${detail}`);
}

/** Checks that a program exited by itself with 0 and printed `expected` after its marker. */
function expectProgram(pathName, runtime, result, expected) {
  const line = result.stdout.split("\n").find((l) => l.startsWith("consumer-result "));
  const got = line === undefined ? undefined : line.slice("consumer-result ".length);
  if (result.hung) return record(pathName, runtime, "FAIL", `did not exit within ${PROGRAM_MS} ms`);
  if (result.code === 0 && got === JSON.stringify(expected)) {
    return record(pathName, runtime, "pass", got);
  }
  record(
    pathName,
    runtime,
    "FAIL",
    `exit ${result.code}, printed ${got ?? "nothing"}; stderr: ${result.stderr.trim().slice(-400)}`,
  );
}

function write(dir, files) {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
}

// ---- the consumer's own files ------------------------------------------------------------------

const WORK_JS = `export function square(n) {\n  return n * n;\n}\n`;
const WORK_TS = `export function cube(n: number): number {\n  return n * n * n;\n}\n`;

/** Maps both task modules on each strategy named in argv (default: all three). */
const MAIN_MJS = `import process from "node:process";
import { ParallelExecutor, tasks } from "fanout";

const js = tasks(new URL("./work.js", import.meta.url));
const ts = tasks(new URL("./work.ts", import.meta.url));
// Node strips the types of a .ts task module from 22.18 and 23.6 on.
const [major, minor] = process.versions.node.split(".").map(Number);
const strips = globalThis.Deno !== undefined || process.versions.bun !== undefined ||
  major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18);
const strategies = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const out = {};
for (const strategy of strategies.length > 0 ? strategies : ["threads", "processes", "auto"]) {
  const ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
  try {
    out[strategy] = await ex.map(js.square, [1, 2, 3]);
    if (strips) out[strategy + ".ts"] = await ex.map(ts.cube, [1, 2, 3]);
  } finally {
    await ex.close();
  }
}
console.log("consumer-result " + JSON.stringify(out));
`;

/** The same in TypeScript, with \`await using\`, for Bun and for the type check. */
const MAIN_TS = `import { ParallelExecutor, TaskError, tasks } from "fanout";
import type { TaskContext } from "fanout";

const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
const out: Record<string, number[]> = {};
for (const strategy of ["threads", "processes", "auto"] as const) {
  await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
  const cubes: number[] = await ex.map(work.cube, [1, 2, 3]);
  out[strategy] = cubes;
}
const tagged: string[] = await new ParallelExecutor({ strategy: "serial" }).map(
  (n: number, ctx: TaskContext) => n + "@" + ctx.index,
  [1],
);
if (tagged[0] !== "1@0" || TaskError.name !== "TaskError") throw new Error("unexpected");
console.log("consumer-result " + JSON.stringify(out));
`;

/** A deliberate type error: the task's result is number[], not string[]. */
const BAD_TS = `import { ParallelExecutor, tasks } from "fanout";

const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
await using ex = new ParallelExecutor();
const wrong: string[] = await ex.map(work.cube, [1, 2, 3]);
console.log(wrong);
`;

const tsconfig = (file) =>
  JSON.stringify({
    compilerOptions: {
      strict: true,
      module: "nodenext",
      moduleResolution: "nodenext",
      target: "es2022",
      lib: ["es2024"],
      types: ["node"],
      skipLibCheck: false,
      noEmit: true,
      allowImportingTsExtensions: true,
    },
    files: [file],
  });

/** A program bundled with its task module; it names the module by where the code runs. */
const BUNDLED_TS = `import { ParallelExecutor, tasks } from "fanout";

const here = import.meta.url;
const work = tasks<typeof import("./work.ts")>(
  new URL(here.endsWith(".ts") ? "./work.ts" : "./work.js", here),
);
const out: Record<string, number[]> = {};
for (const strategy of ["threads", "processes"] as const) {
  await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
  out[strategy] = await ex.map(work.cube, [1, 2, 3]);
}
console.log("consumer-result " + JSON.stringify(out));
`;

/** The distributed entry point: a map through Redis, or the error naming what is missing. */
const DISTRIBUTED_MJS = `import { ParallelExecutor, tasks } from "fanout";
import { distributed } from "fanout/distributed";

const work = tasks(new URL("./work.js", import.meta.url));
const [connection, queue] = process.argv.slice(2);
const ex = new ParallelExecutor({ strategy: distributed({ connection, queue, connectTimeoutMs: 5000 }) });
let out;
try {
  out = { squares: await ex.map(work.square, [1, 2, 3]), how: (await ex.explain(work.square, [1])).strategy };
} catch (error) {
  out = { error: error.name, names: /npm install bullmq ioredis/.test(error.message) };
} finally {
  await ex.close();
}
console.log("consumer-result " + JSON.stringify(out));
`;

/** Starts a program in the background; resolves once it printed `pattern` (or rejects). */
function background(cmd, args, cwd, pattern) {
  const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CE_PARALLEL: "" } });
  let seen = "";
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready: ${seen}`)), PROGRAM_MS);
    const look = (data) => {
      seen += data;
      if (pattern.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", look);
    child.stderr.on("data", look);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${seen}`));
    });
  });
  ready.catch(() => {}); // Awaited by the caller; never an unhandled rejection meanwhile.
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
      child.once("close", () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill("SIGTERM");
    });
  return { ready, stop };
}

/** The distributed paths: the missing-peer error, then a real map through Redis. */
async function distributedPaths(tgz, app, withPeers) {
  expectProgram(
    "fanout/distributed without bullmq",
    "node 24",
    run(NODE, ["distributed.mjs", "redis://127.0.0.1:1", "q"], app),
    { error: "DistributedUnavailableError", names: true },
  );
  if (spawnSync("redis-server", ["--version"]).status !== 0) {
    record("fanout/distributed through Redis", "-", "skip", "redis-server is not installed");
    return;
  }
  write(withPeers, { "package.json": JSON.stringify({ name: "dist-consumer", private: true, type: "module" }), "work.js": WORK_JS, "distributed.mjs": DISTRIBUTED_MJS });
  const installed = run("npm", ["install", tgz, `bullmq@${pkg.devDependencies.bullmq}`, `ioredis@${pkg.devDependencies.ioredis}`, "--no-audit", "--no-fund", "--prefer-offline"], withPeers, { timeout: 300_000 });
  if (installed.code !== 0) return record("npm install <tarball> bullmq ioredis", "node", "FAIL", installed.stderr.slice(-400));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const url = `redis://127.0.0.1:${port}`;
  const queue = `consumer-${process.pid}`;
  const redis = background("redis-server", ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no"], withPeers, /Ready to accept/);
  const worker = background(NODE, [path.join(withPeers, "node_modules", ".bin", "fanout"), "worker", "--redis", url, "--queue", queue, "-j", "2"], withPeers, /fanout worker: serving/);
  try {
    await redis.ready;
    await worker.ready;
    const expected = { squares: [1, 4, 9], how: "distributed" };
    expectProgram("fanout/distributed through Redis", "node 24", run(NODE, ["distributed.mjs", url, queue], withPeers), expected);
    expectProgram("fanout/distributed through Redis", "bun", run(BUN, ["distributed.mjs", url, queue], withPeers), expected);
    expectProgram("fanout/distributed through Redis", "deno", run(DENO, ["run", "-A", "distributed.mjs", url, queue], withPeers), expected);
  } catch (error) {
    record("fanout/distributed through Redis", "-", "FAIL", String(error).slice(-400));
  } finally {
    await worker.stop();
    await redis.stop();
  }
}

const ALL = { threads: [1, 4, 9], "threads.ts": [1, 8, 27], processes: [1, 4, 9], "processes.ts": [1, 8, 27], auto: [1, 4, 9], "auto.ts": [1, 8, 27] };
const CUBES = { threads: [1, 8, 27], processes: [1, 8, 27], auto: [1, 8, 27] };
const BUNDLED = { threads: [1, 8, 27], processes: [1, 8, 27] };

// ---- the paths -----------------------------------------------------------------------------------

const tmp = mkdtempSync(path.join(tmpdir(), "fanout-consumer-"));
try {
  // The tarball, as `npm publish` would make it (prepack builds dist/).
  const packed = run("npm", ["pack", "--pack-destination", tmp, "--silent"], ROOT, { timeout: 300_000 });
  const tarball = readdirSync(tmp).find((f) => f.endsWith(".tgz"));
  if (packed.code !== 0 || tarball === undefined) {
    record("npm pack", "-", "FAIL", packed.stderr.trim().slice(-400));
    throw new Error("npm pack failed");
  }
  const tgz = path.join(tmp, tarball);
  record("npm pack", "-", "pass", tarball);

  // A Node project (also used by Deno, tsc and the bundlers).
  const app = path.join(tmp, "app");
  write(app, {
    "package.json": JSON.stringify({ name: "consumer", private: true, type: "module" }),
    "work.js": WORK_JS,
    "work.ts": WORK_TS,
    "main.mjs": MAIN_MJS,
    "main.ts": MAIN_TS,
    "bad.ts": BAD_TS,
    "bundled.ts": BUNDLED_TS,
    "distributed.mjs": DISTRIBUTED_MJS,
    "compiled.ts": BUNDLED_TS.replace('["threads", "processes"]', '["threads"]'),
    "tsconfig.json": tsconfig("main.ts"),
    "tsconfig.bad.json": tsconfig("bad.ts"),
  });
  const installed = run(
    "npm",
    ["install", tgz, TYPES_NODE, "--no-audit", "--no-fund", "--prefer-offline"],
    app,
    { timeout: 300_000 },
  );
  if (installed.code !== 0) record("npm install <tarball>", "node", "FAIL", installed.stderr.slice(-400));
  else {
    record("npm install <tarball>", "node", "pass", "");
    expectProgram("installed package, .js and .ts tasks", "node 24", run(NODE, ["main.mjs"], app), ALL);
    expectProgram(
      "installed package (node_modules)",
      "deno",
      run(DENO, ["run", "--allow-read", "main.mjs", "threads"], app),
      { threads: [1, 4, 9], "threads.ts": [1, 8, 27] },
    );
    expectProgram(
      "installed package (node_modules)",
      "deno",
      run(DENO, ["run", "--allow-read", "--allow-run", "main.mjs", "processes"], app),
      { processes: [1, 4, 9], "processes.ts": [1, 8, 27] },
    );
    const system = run("node", ["--version"], app);
    const version = system.stdout.trim();
    if (system.code !== 0) record("installed package", "node", "skip", "no system node on PATH");
    else {
      const [major, minor] = version.slice(1).split(".").map(Number);
      const strips = major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18);
      const expected = strips ? ALL : { threads: [1, 4, 9], processes: [1, 4, 9], auto: [1, 4, 9] };
      expectProgram(`installed package, system node`, `node ${version}`, run("node", ["main.mjs"], app), expected);
    }

    // The `fanout` command (the package's bin): run, and map on threads and processes, whose
    // worker programs it must find in the package.
    const bin = path.join(app, "node_modules", "fanout", "dist", "src", "cli.js");
    const commands = [
      ["node 24", NODE, [bin]],
      ["bun", BUN, [bin]],
      ["deno", DENO, ["run", "-A", bin]],
      ["npx (node on PATH)", "npx", ["--no-install", "fanout"]],
    ];
    for (const [runtime, cmd, prefix] of commands) {
      const ran = run(cmd, [...prefix, "run", "-k", "echo", ":::", "a", "b"], app);
      const mapped = ["threads", "processes"].map((strategy) =>
        spawnSync(cmd, [...prefix, "map", "work.js#square", "--strategy", strategy], {
          cwd: app,
          input: "1\n2\n3\n",
          encoding: "utf8",
          timeout: PROGRAM_MS,
          env: { ...process.env, CE_PARALLEL: "" },
        })
      );
      const ok = ran.code === 0 && ran.stdout === "a\nb\n" &&
        mapped.every((m) => m.status === 0 && m.stdout === "1\n4\n9\n");
      record(
        "the fanout command: run, map",
        runtime,
        ok ? "pass" : "FAIL",
        ok
          ? "run -k echo ::: a b; map on threads and processes"
          : `run: exit ${ran.code} ${JSON.stringify(ran.stdout)} ${ran.stderr.trim().slice(-200)}; map: ${
            mapped.map((m) => `exit ${m.status} ${JSON.stringify(m.stdout)} ${(m.stderr ?? "").trim().slice(-200)}`).join("; ")
          }`,
      );
    }

    // The type check.
    const typed = run(NODE, [TSC, "-p", "tsconfig.json"], app);
    const errors = (typed.stdout.match(/error TS\d+/g) ?? []).length;
    record("tsc --strict, skipLibCheck: false", "tsc", typed.code === 0 ? "pass" : "FAIL", `${errors} error(s)${typed.code === 0 ? "" : ": " + typed.stdout.slice(0, 600)}`);
    const bad = run(NODE, [TSC, "-p", "tsconfig.bad.json"], app);
    const caught = bad.code !== 0 && /bad\.ts\(5,7\): error TS2322/.test(bad.stdout);
    record("tsc catches a wrong result type", "tsc", caught ? "pass" : "FAIL", caught ? "TS2322 in bad.ts" : `exit ${bad.code}: ${bad.stdout.slice(0, 400)}`);

    // The bundling recipes (docs/bundling.md).
    const workers = ["thread_entry.js", "process_entry.js"].map((f) => `node_modules/fanout/dist/src/worker/${f}`);
    const bunOut = path.join(app, "dist-bun");
    const bunBuilt = run(BUN, ["build", "./bundled.ts", "./work.ts", "--outdir", bunOut, "--target", "bun"], app);
    const bunWorkers = run(BUN, ["build", ...workers, "--outdir", path.join(bunOut, "fanout-worker"), "--target", "bun"], app);
    if (bunBuilt.code !== 0 || bunWorkers.code !== 0) {
      record("bun build recipe", "bun", "FAIL", (bunBuilt.stderr + bunWorkers.stderr).slice(-400));
    } else expectProgram("bun build recipe", "bun", run(BUN, [path.join(bunOut, "bundled.js")], tmp), BUNDLED);
    const esbOut = path.join(app, "dist-esbuild");
    const esbArgs = ["--bundle", "--platform=node", "--format=esm"];
    const esbBuilt = run(ESBUILD, ["bundled.ts", "work.ts", ...esbArgs, `--outdir=${esbOut}`], app);
    const esbWorkers = run(ESBUILD, [...workers, ...esbArgs, `--outdir=${path.join(esbOut, "fanout-worker")}`], app);
    if (esbBuilt.code !== 0 || esbWorkers.code !== 0) {
      record("esbuild recipe", "node 24", "FAIL", (esbBuilt.stderr + esbWorkers.stderr).slice(-400));
    } else {
      expectProgram("esbuild recipe", "node 24", run(NODE, [path.join(esbOut, "bundled.js")], tmp), BUNDLED);
      // FANOUT_WORKER_DIR: the programs elsewhere, named by the environment.
      const elsewhere = path.join(tmp, "workers-elsewhere");
      cpSync(path.join(esbOut, "fanout-worker"), elsewhere, { recursive: true });
      rmSync(path.join(esbOut, "fanout-worker"), { recursive: true });
      expectProgram(
        "esbuild recipe, FANOUT_WORKER_DIR",
        "node 24",
        run(NODE, [path.join(esbOut, "bundled.js")], tmp, { env: { FANOUT_WORKER_DIR: elsewhere } }),
        BUNDLED,
      );
      const missing = run(NODE, [path.join(esbOut, "bundled.js")], tmp);
      const pointed = missing.code !== 0 && /WorkerStartError: Expected fanout's worker program thread_entry\.js.*docs\/bundling\.md/.test(missing.stderr);
      record("bundle without its worker programs", "node 24", pointed ? "pass" : "FAIL", pointed ? "WorkerStartError points to docs/bundling.md" : `exit ${missing.code}: ${missing.stderr.slice(-400)}`);
    }
    const compiled = run(DENO, ["compile", "--allow-read", "--include", workers[0], "--output", path.join(app, "compiled"), "compiled.ts"], app, { timeout: 120_000 });
    if (compiled.code === 0) {
      expectProgram("deno compile recipe", "deno", run(path.join(app, "compiled"), [], tmp), { threads: [1, 8, 27] });
    } else if (/dns error|failed to lookup address|Download|denort/i.test(compiled.stderr)) {
      record("deno compile recipe", "deno", "skip", "deno compile downloads its runtime (denort), which this machine cannot reach");
    } else record("deno compile recipe", "deno", "FAIL", compiled.stderr.slice(-400));
    await distributedPaths(tgz, app, path.join(tmp, "dist-app"));
  }

  // A Bun project.
  const bunApp = path.join(tmp, "bun-app");
  write(bunApp, {
    "package.json": JSON.stringify({ name: "bun-consumer", private: true, type: "module" }),
    "work.ts": WORK_TS,
    "main.ts": MAIN_TS,
  });
  const added = run(BUN, ["add", tgz], bunApp, { timeout: 300_000 });
  if (added.code !== 0) record("bun add <tarball>", "bun", "FAIL", added.stderr.slice(-400));
  else {
    record("bun add <tarball>", "bun", "pass", "");
    expectProgram("installed package, await using", "bun", run(BUN, ["main.ts"], bunApp), CUBES);
  }

  // Deno, with the files `deno publish` would upload, imported by path as JSR would serve them.
  const listed = run(DENO, ["publish", "--dry-run", "--allow-dirty"], ROOT, { timeout: 120_000 });
  const files = [...(listed.stdout + listed.stderr).matchAll(/file:\/\/(\/\S+?) \(/g)].map((m) => m[1]);
  const jsr = path.join(tmp, "jsr");
  for (const file of files) {
    const rel = path.relative(ROOT, file);
    mkdirSync(path.dirname(path.join(jsr, rel)), { recursive: true });
    cpSync(file, path.join(jsr, rel));
  }
  const denoApp = path.join(tmp, "deno-app");
  write(denoApp, {
    // JSR rewrites fanout's bare `comlink` to its npm: specifier; by path, an import map does.
    "deno.json": JSON.stringify({ imports: { comlink: "npm:comlink@^4.4.2" } }),
    "work.ts": WORK_TS,
    "main.ts": `import { ParallelExecutor, tasks } from "../jsr/mod.ts";
const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
const strategy = Deno.args[0] as "threads" | "processes";
const out: Record<string, number[]> = {};
{
  await using ex = new ParallelExecutor({ strategy, maxWorkers: 2 });
  out[strategy] = await ex.map(work.cube, [1, 2, 3]);
}
console.log("consumer-result " + JSON.stringify(out));
`,
  });
  if (files.length === 0) record("JSR files (deno publish --dry-run)", "deno", "FAIL", "no file list");
  else {
    record("JSR files (deno publish --dry-run)", "deno", "pass", `${files.length} files`);
    expectProgram("JSR files, --allow-read", "deno", run(DENO, ["run", "--allow-read", "main.ts", "threads"], denoApp), { threads: [1, 8, 27] });
    expectProgram("JSR files, --allow-read --allow-run", "deno", run(DENO, ["run", "--allow-read", "--allow-run", "main.ts", "processes"], denoApp), { processes: [1, 8, 27] });
  }
} catch (error) {
  if (!results.some((r) => r.status === "FAIL")) record("consumer script", "-", "FAIL", String(error));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

const count = (status) => results.filter((r) => r.status === status).length;
console.log(`consumer: ${count("pass")} passed, ${count("FAIL")} failed, ${count("skip")} skipped`);
process.exit(count("FAIL") > 0 ? 1 : 0);
