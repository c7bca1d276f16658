/**
 * Node's module compile cache in a worker, so that a task module in `.ts` is type-stripped once
 * per machine rather than once per worker start. Plain JavaScript, like every file a worker
 * loads (see run_task.js).
 *
 * Why: each new worker thread or child process strips the task's `.ts` module again: importing
 * `bench/work.ts` in a fresh worker takes 20–60 ms on the 2-core machine, fanout's own 53
 * modules 115–250 ms. Node's on-disk compile cache (`module.enableCompileCache()`, Node ≥ 22.8)
 * keeps, besides V8's code cache, the type-stripped output of `.ts` modules (nodejs/node#56629;
 * checked on Node 24.21), keyed by the file's path and checked against the size and a hash of
 * its source, so an edited module is stripped again. With it that import takes ~1 ms, and a
 * worker start plus its first `.ts` task about half the time (bench/node_compile_cache.ts).
 *
 * Two calls, both no-ops outside Node and where the API is missing, and neither ever throws:
 *
 * - {@linkcode startCompileCache} before the task module is imported. The cache is per Node
 *   instance: one enabled by the parent is not inherited by its worker threads or children
 *   (only the `NODE_COMPILE_CACHE` variable is), so each worker enables its own. Without a
 *   directory, Node uses `NODE_COMPILE_CACHE` if set, else `<os.tmpdir()>/node-compile-cache`
 *   (one folder per Node version and user inside): nothing is written into the user's project.
 *   A cache already on (by `NODE_COMPILE_CACHE`) is kept, `NODE_DISABLE_COMPILE_CACHE=1` keeps
 *   it off, and so does `NODE_V8_COVERAGE` (V8 reports less precise coverage for code read
 *   from the cache). The environment is left as it is, so a task's own child processes are not
 *   affected.
 * - {@linkcode saveCompileCache} after the task module is loaded (Node ≥ 22.10). Node writes
 *   the cache when a Node instance exits normally or a worker thread is terminated, but a
 *   pool's process is stopped with SIGTERM, which skips that: without this call a process
 *   never leaves its cache behind. It writes only what is new (nothing when the module came
 *   from the cache); each file is written aside and renamed into place, so processes that
 *   write the same entry at once leave one whole file, never a torn one.
 *
 * @module
 */

/**
 * What {@linkcode startCompileCache} found or did: `"enabled"` (this call enabled it),
 * `"already"` (it was on, e.g. by `NODE_COMPILE_CACHE`), `"disabled"`
 * (`NODE_DISABLE_COMPILE_CACHE`), `"failed"` (e.g. the directory cannot be written: the worker
 * simply goes on without it), `"skipped"` (coverage is being collected), or `"unsupported"`
 * (not Node, or a Node without the API).
 *
 * @typedef {"enabled" | "already" | "disabled" | "failed" | "skipped" | "unsupported"} CompileCacheState
 */

/**
 * @typedef {object} CompileCacheResult
 * @property {CompileCacheState} state
 * @property {string} [directory] Where the cache is, when it is on.
 * @property {string} [message] Node's reason, when it is not.
 */

/**
 * `node:module`, on Node only: `process.getBuiltinModule` (Node ≥ 22.3, before the API this
 * uses) loads it synchronously and without an import, so nothing changes on Deno or Bun.
 *
 * @returns {any}
 */
function nodeModule() {
  const scope = /** @type {any} */ (globalThis);
  const process = scope.process;
  if (scope.Deno !== undefined || scope.Bun !== undefined || process?.versions?.bun) {
    return undefined;
  }
  if (typeof process?.versions?.node !== "string") return undefined;
  if (typeof process.getBuiltinModule !== "function") return undefined;
  try {
    return process.getBuiltinModule("node:module");
  } catch {
    return undefined;
  }
}

/**
 * Enables Node's module compile cache in this worker, before its task module is imported.
 *
 * @returns {CompileCacheResult}
 */
export function startCompileCache() {
  const module = nodeModule();
  if (typeof module?.enableCompileCache !== "function") return { state: "unsupported" };
  try {
    const on = module.getCompileCacheDir?.();
    if (on !== undefined) return { state: "already", directory: on };
    if (globalThis.process.env.NODE_V8_COVERAGE) {
      return { state: "skipped", message: "NODE_V8_COVERAGE is set" };
    }
    const result = module.enableCompileCache();
    const status = module.constants?.compileCacheStatus ?? {};
    /** @type {CompileCacheState} */
    const state = result?.status === status.ENABLED
      ? "enabled"
      : result?.status === status.ALREADY_ENABLED
      ? "already"
      : result?.status === status.DISABLED
      ? "disabled"
      : "failed";
    return {
      state,
      ...(state === "failed" || state === "disabled"
        ? {}
        : { directory: module.getCompileCacheDir?.() ?? result?.directory }),
      ...(result?.message === undefined ? {} : { message: String(result.message) }),
    };
  } catch (error) {
    // It is an optimisation: a worker starts without it rather than fail.
    return { state: "failed", message: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Writes what the compile cache has gathered so far (the task module just loaded) to disk, if
 * it is on; a no-op otherwise. Never throws.
 */
export function saveCompileCache() {
  const module = nodeModule();
  try {
    if (module?.getCompileCacheDir?.() === undefined) return;
    module.flushCompileCache?.();
  } catch {
    // Not written: the next worker strips the module again, as without the cache.
  }
}
