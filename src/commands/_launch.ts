/**
 * How a batch of `runCommands` starts its jobs: through the launcher (`runtime/_launcher.ts`),
 * one small Perl process per batch that forks on the batch's behalf, where that is cheaper
 * and allowed; otherwise through `spawnChild()` directly.
 *
 * - Node: the launcher. Its `child_process.spawn` forks the whole runtime: 200 × `true` on 4
 *   slots took ~2.5× as long spawned directly as through the launcher (bench/commands.ts).
 * - Deno and Bun: direct. Their spawn is already about as fast as `xargs -P`, and faster than
 *   a round trip through the launcher (~1.4× and ~1.7× in the same bench).
 * - Direct, too, when Perl is not on the PATH or the launcher does not start (then for the
 *   rest of the process), and for a job the launcher's wire cannot carry (a NUL byte).
 *
 * `FANOUT_SPAWN=direct` forces direct starts; `FANOUT_SPAWN=launcher` the launcher on every
 * runtime, except on Deno when run permission is granted with a list or exceptions
 * (`--allow-run=gzip`): a Perl that starts anything would let it run more than gzip, and a
 * child never gets more than its parent. Any other value fails every job with a `RangeError`
 * that says so.
 *
 * @module
 */

import { detect, spawnChild } from "../runtime/mod.ts";
import type { ChildHandle } from "../runtime/mod.ts";
import { launchable, Launcher } from "../runtime/_launcher.ts";
import type { LaunchOptions } from "../runtime/_launcher.ts";

/** How to start one job: its command, where, and where its output goes. */
export type JobSpawnOptions = LaunchOptions;

/** Starts the jobs of one batch. */
export interface Spawner {
  /**
   * Starts a job; its `input` is written to its stdin, which is then closed.
   *
   * @throws {SpawnError} When it cannot start, as `spawnChild()` says.
   */
  spawn(options: JobSpawnOptions): Promise<ChildHandle>;
  /**
   * Stops what still runs and ends the launcher, if one was started; idempotent, never
   * rejects.
   */
  close(): Promise<void>;
  /** How jobs are started: `"direct"` once the launcher could not start. */
  readonly kind: "launcher" | "direct";
}

/** The variable that forces a way of starting jobs. */
const FORCE_VARIABLE = "FANOUT_SPAWN";

/** Why the launcher cannot be used in this process, once it failed to start. */
let unavailable: unknown;

/** A spawner for one batch; the launcher, if it is used, starts at the first `spawn()`. */
export function openSpawner(): Spawner {
  const forced = detect().env(FORCE_VARIABLE);
  if (forced !== undefined && forced !== "" && forced !== "direct" && forced !== "launcher") {
    const error = new RangeError(
      `Expected \`${FORCE_VARIABLE}\` to be "direct" or "launcher", got ${JSON.stringify(forced)}`,
    );
    return {
      kind: "direct",
      spawn: () => Promise.reject(error),
      close: () => Promise.resolve(),
    };
  }
  const wanted = forced === "launcher" ||
    (forced !== "direct" && detect().capabilities.spawnThroughLauncher);
  return wanted && unavailable === undefined && mayLaunch() ? new LaunchingSpawner() : DIRECT;
}

/** Starts each job with `spawnChild()`. */
const DIRECT: Spawner = {
  kind: "direct",
  spawn: spawnDirect,
  close: () => Promise.resolve(),
};

/** One launcher per batch, started at the first job. */
class LaunchingSpawner implements Spawner {
  #launcher: Promise<Launcher | undefined> | undefined;
  #kind: "launcher" | "direct" = "launcher";

  get kind(): "launcher" | "direct" {
    return this.#kind;
  }

  async spawn(options: JobSpawnOptions): Promise<ChildHandle> {
    if (!launchable(options)) return spawnDirect(options);
    const launcher = await (this.#launcher ??= Launcher.start().catch((error) => {
      unavailable = error;
      return undefined;
    }));
    if (launcher === undefined || launcher.gone) {
      this.#kind = "direct";
      return spawnDirect(options);
    }
    return launcher.spawn(options);
  }

  async close(): Promise<void> {
    const launcher = await this.#launcher;
    await launcher?.close();
  }
}

/**
 * Whether a launcher gives a job no more than the runtime would: on Deno, only with run
 * permission granted without a list or exceptions.
 */
function mayLaunch(): boolean {
  const deno = (globalThis as {
    Deno?: {
      permissions: { querySync(desc: { name: "run" }): { state: string; partial?: boolean } };
    };
  }).Deno;
  if (deno === undefined) return true;
  try {
    const run = deno.permissions.querySync({ name: "run" });
    return run.state === "granted" && run.partial !== true;
  } catch {
    return false;
  }
}

/** Starts a job with `spawnChild()`, and writes its input. */
async function spawnDirect(options: JobSpawnOptions): Promise<ChildHandle> {
  const input = options.input;
  const handle = await spawnChild({
    cmd: options.cmd,
    cwd: options.cwd,
    env: options.env,
    stdin: input === undefined ? "ignore" : "pipe",
    stdout: "pipe",
    stderr: "pipe",
    onStdout: options.onStdout,
    onStderr: options.onStderr,
  });
  if (input !== undefined) {
    // A command may close its stdin or exit without reading it: its exit status tells.
    try {
      if (input.length > 0) handle.write(input);
    } catch {
      // See above.
    }
    try {
      handle.end();
    } catch {
      // See above.
    }
  }
  return handle;
}
