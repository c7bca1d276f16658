/**
 * On Node, a pool's worker (thread or process) turns on Node's module compile cache before it
 * loads a task, where Node would put it (`NODE_COMPILE_CACHE`, else
 * `<os.tmpdir()>/node-compile-cache`), so that a `.ts` task module is type-stripped once rather
 * than at every worker start (src/worker/compile_cache.js). A cache that is already on is kept,
 * `NODE_DISABLE_COMPILE_CACHE` and `NODE_V8_COVERAGE` keep it off, a pool process (stopped
 * with SIGTERM) still leaves its cache behind, and a task module that changed is run as it is
 * now, not as the cache remembers it. What is checked is behaviour, never timing
 * (bench/node_compile_cache.ts measures what it saves).
 *
 * Every test but the first is Node only, and skipped with a reason on Deno and Bun; the first
 * checks that there the calls do nothing.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ParallelExecutor, tasks } from "../mod.ts";
import { saveCompileCache, startCompileCache } from "../src/worker/compile_cache.js";
import type { CompileCacheResult } from "../src/worker/compile_cache.js";
import { forEachStrategy, runtime, show, test } from "./_helpers.ts";
import { removeDir, tempDir } from "./fixtures/proc.ts";

const CACHE_MODULE = new URL("../src/worker/compile_cache.js", import.meta.url).href;

/** Node's `node:module`, on Node only (Deno and Bun have one too, with other behaviour). */
const nodeModule = runtime === "node"
  ? (process as unknown as { getBuiltinModule(id: string): unknown }).getBuiltinModule(
    "node:module",
  ) as { enableCompileCache?: unknown; flushCompileCache?: unknown }
  : undefined;

/** Why the Node-only tests cannot run here, or `undefined` if they can. */
const NODE_ONLY = runtime !== "node"
  ? `Node only (this is ${runtime}, which keeps its own cache)`
  : typeof nodeModule?.enableCompileCache !== "function"
  ? `this Node (${process.version}) has no module.enableCompileCache()`
  : typeof nodeModule?.flushCompileCache !== "function"
  ? `this Node (${process.version}) has no module.flushCompileCache()`
  : undefined;

/** Registers a test that cannot run here, saying why in its name and its skip reason. */
function skip(name: string, reason: string): void {
  it(`${name} (skipped: ${reason})`, { skip: reason }, () => {});
}

/** Registers `fn` as a Node-only test, or as a skipped one elsewhere. */
function nodeTest(name: string, fn: () => Promise<void>): void {
  if (NODE_ONLY === undefined) test(name, fn);
  else skip(name, NODE_ONLY);
}

/** The variables that decide where the cache goes, or whether it is on. */
const CACHE_VARS = [
  "NODE_COMPILE_CACHE",
  "NODE_DISABLE_COMPILE_CACHE",
  "NODE_V8_COVERAGE",
  "TMPDIR",
  "TMP",
  "TEMP",
] as const;

/**
 * Runs `fn` with the cache variables cleared and `TMPDIR` (what `os.tmpdir()` reads) set to
 * `tmp`, so that Node's default cache folder is `<tmp>/node-compile-cache`; workers started
 * meanwhile inherit that. Puts them back afterwards.
 */
async function withTmpdir<T>(tmp: string, fn: () => Promise<T>): Promise<T> {
  const saved = CACHE_VARS.map((name) => [name, process.env[name]] as const);
  for (const name of CACHE_VARS) delete process.env[name];
  process.env.TMPDIR = tmp;
  process.env.TMP = tmp;
  process.env.TEMP = tmp;
  try {
    return await fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

/** What `startCompileCache()` says in a fresh worker thread (a Node instance of its own). */
async function stateInFreshThread(
  env: Record<string, string>,
): Promise<{ result: CompileCacheResult; dir: string | null }> {
  const { Worker } = await import("node:worker_threads");
  const code = `
    const { parentPort } = require("node:worker_threads");
    import(${JSON.stringify(CACHE_MODULE)}).then((cache) => {
      const result = cache.startCompileCache();
      cache.saveCompileCache();
      const dir = require("node:module").getCompileCacheDir() ?? null;
      parentPort.postMessage({ result, dir });
    });`;
  const worker = new Worker(code, { eval: true, env });
  try {
    return await new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
  } finally {
    await worker.terminate();
  }
}

/** The files of Node's cache under `root` (its version folders, flattened). */
function cacheFiles(root: string): string[] {
  try {
    return readdirSync(root).flatMap((version) =>
      readdirSync(join(root, version)).map((file) => join(version, file))
    );
  } catch {
    return [];
  }
}

/** A task module in TypeScript (a type to strip), answering `n + step`. */
function writeTaskModule(dir: string, step: number): URL {
  const file = join(dir, "answer.ts");
  writeFileSync(
    file,
    `interface Input { n: number }\n` +
      `export function answer(input: Input): number {\n  return input.n + ${step};\n}\n`,
  );
  return pathToFileURL(file);
}

/** An inline task: the compile cache folder of the Node instance it runs in. */
const cacheDirHere = (): string | null =>
  (globalThis as unknown as {
    process: { getBuiltinModule(id: string): { getCompileCacheDir(): string | undefined } };
  }).process.getBuiltinModule("node:module").getCompileCacheDir() ?? null;

describe("Node's compile cache for .ts task modules", () => {
  if (runtime === "node") {
    skip(
      "outside Node, starting and saving the cache do nothing",
      "this is Node: the tests below cover it",
    );
  } else {
    test("outside Node, starting and saving the cache do nothing", () => {
      assert.deepEqual(startCompileCache(), { state: "unsupported" });
      assert.doesNotThrow(() => saveCompileCache());
    });
  }

  nodeTest(
    "a Node instance turns it on in Node's default place, keeps one already on, and leaves it off when told to",
    async () => {
      const tmp = tempDir();
      try {
        const fresh = await stateInFreshThread({ TMPDIR: tmp, TMP: tmp, TEMP: tmp });
        assert.equal(fresh.result.state, "enabled", show(fresh));
        assert.ok(fresh.dir?.startsWith(join(tmp, "node-compile-cache")), show(fresh));
        assert.equal(fresh.result.directory, fresh.dir, show(fresh));

        const chosen = join(tmp, "chosen");
        const already = await stateInFreshThread({ NODE_COMPILE_CACHE: chosen, TMPDIR: tmp });
        assert.equal(already.result.state, "already", show(already));
        assert.ok(already.dir?.startsWith(chosen), show(already));

        const disabled = await stateInFreshThread({ NODE_DISABLE_COMPILE_CACHE: "1", TMPDIR: tmp });
        assert.equal(disabled.result.state, "disabled", show(disabled));
        assert.equal(disabled.dir, null, show(disabled));

        const coverage = await stateInFreshThread({
          NODE_V8_COVERAGE: join(tmp, "coverage"),
          TMPDIR: tmp,
        });
        assert.equal(coverage.result.state, "skipped", show(coverage));
        assert.equal(coverage.dir, null, show(coverage));
      } finally {
        removeDir(tmp);
      }
    },
  );

  forEachStrategy(["threads", "processes"], { skip: () => NODE_ONLY }, (strategy, test) => {
    test(`${strategy}: a worker has the cache on, in Node's default place, before it loads a task`, async () => {
      const tmp = tempDir();
      try {
        const dir = await withTmpdir(tmp, async () => {
          await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
          return await ex.submit(cacheDirHere, undefined);
        });
        assert.ok(
          dir?.startsWith(join(tmp, "node-compile-cache")),
          `expected the worker's compile cache under ${tmp}/node-compile-cache, got ${dir} ` +
            "(do thread_entry.js and process_entry.js call startCompileCache()?)",
        );
      } finally {
        removeDir(tmp);
      }
    });

    test(`${strategy}: a .ts task module is cached by its first worker, runs from the cache in the next, and runs as changed once it changes`, async () => {
      const tmp = tempDir();
      try {
        const root = join(tmp, "node-compile-cache");
        await withTmpdir(tmp, async () => {
          const url = writeTaskModule(tmp, 1);
          const task = tasks<{ answer(input: { n: number }): number }>(url);
          const run = async (n: number): Promise<number> => {
            await using ex = new ParallelExecutor({ strategy, maxWorkers: 1 });
            return await ex.submit(task.answer, { n });
          };

          assert.equal(await run(1), 2);
          // The worker is gone (a process by SIGTERM): what it compiled is on disk all the same.
          const cached = cacheFiles(root);
          assert.ok(cached.length > 0, `expected cache files under ${root}, found none`);

          assert.equal(await run(2), 3, "from the cache");
          assert.deepEqual(cacheFiles(root).sort(), [...cached].sort());

          // The same length and size, other code: the cache must see that it changed.
          writeTaskModule(tmp, 7);
          assert.equal(await run(1), 8, "the changed module, not the cached one");
        });
      } finally {
        removeDir(tmp);
      }
    });
  });
});
