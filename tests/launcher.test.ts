/**
 * The launcher (`src/runtime/_launcher.ts`): the Perl helper that starts a batch's commands,
 * tested directly and through `runCommands()` on every runtime (it is the default on Node only,
 * but `FANOUT_SPAWN=launcher` uses it on Deno and Bun too). Start failures, exits, signals,
 * output and input must come out as they do for a command started with `spawnChild()`, and a
 * batch must give the same results whichever way its jobs are started. Ordering is gated on
 * what the jobs print, never on sleeps; every launcher a test starts is closed, and the
 * `test()` wrapper fails a test that leaves a tracked child (launchers included) behind.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommands, SpawnError } from "../mod.ts";
import type { BatchResult, CommandJob, CommandOptions, JobResult } from "../mod.ts";
import { liveJobPids, liveProcessPids, spawnChild } from "../src/runtime/mod.ts";
import type { ChildHandle } from "../src/runtime/mod.ts";
import { Launcher } from "../src/runtime/_launcher.ts";
import type { LaunchOptions } from "../src/runtime/_launcher.ts";
import { rejection, runtime, show, test, within } from "./_helpers.ts";

/** Bound for a job or a batch in a test: a hang fails with a message instead of stalling. */
const SETTLE_MS = 30_000;

/** A command that surely is not on the PATH. */
const MISSING = "fanout-surely-no-such-command-42";

/** The `FANOUT_SPAWN` values that force a way of starting jobs. */
const MODES = ["direct", "launcher"] as const;

/** A fresh temporary directory, removed after `fn`. */
async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "fanout-launcher-"));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `fn` with a launcher of its own, closed afterwards whatever happened. */
async function withLauncher<T>(fn: (launcher: Launcher) => Promise<T>): Promise<T> {
  const launcher = await within(Launcher.start(), SETTLE_MS, "Launcher.start()");
  try {
    return await fn(launcher);
  } finally {
    await within(launcher.close(), SETTLE_MS, "launcher.close()");
  }
}

/** Runs `fn` with `FANOUT_SPAWN` set to `value` (unset for `undefined`), then restores it. */
async function withSpawnMode<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = process.env.FANOUT_SPAWN;
  try {
    if (value === undefined) delete process.env.FANOUT_SPAWN;
    else process.env.FANOUT_SPAWN = value;
    return await fn();
  } finally {
    if (before === undefined) delete process.env.FANOUT_SPAWN;
    else process.env.FANOUT_SPAWN = before;
  }
}

/** Runs `fn` with `PATH` set to `path`, then restores it. */
async function withPath<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.PATH;
  try {
    process.env.PATH = path;
    return await fn();
  } finally {
    if (before === undefined) delete process.env.PATH;
    else process.env.PATH = before;
  }
}

/** A batch run with `FANOUT_SPAWN=mode`, bounded. */
function runIn(
  mode: string | undefined,
  jobs: CommandJob[],
  options?: CommandOptions,
): Promise<BatchResult> {
  return withSpawnMode(
    mode,
    () => within(runCommands(jobs, options), SETTLE_MS, `runCommands() (FANOUT_SPAWN=${mode})`),
  );
}

/** The tracked children that are launchers, not jobs. */
function launcherPids(): number[] {
  const jobs = liveJobPids();
  return liveProcessPids().filter((pid) => !jobs.includes(pid));
}

/** Resolves once `condition()` holds, polling; fails (not hangs) after `maxMs`. */
async function until(condition: () => boolean, what: string, maxMs = 10_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${maxMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Whether this system has a Linux-style `/proc`, which tells a zombie from a process. */
const HAS_PROC = existsSync("/proc/self/stat");

/**
 * Whether the process `pid` still runs. A zombie does not: once its parent died, reaping it is
 * up to whichever process adopted it, which a container's init may never do.
 */
function running(pid: number): boolean {
  if (HAS_PROC) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      return state !== "Z" && state !== "X";
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code !== "ESRCH";
  }
}

/** Fails unless none of `pids` runs any more, waiting (boundedly) for the system. */
async function assertNotRunning(pids: readonly number[], what: string): Promise<void> {
  assert.ok(pids.length > 0, `no pids to check for ${what}`);
  await until(() => !pids.some(running), `${what} (pids ${pids.join(", ")}) ending`);
}

/** Sends SIGKILL to a process the test made escape (a grandchild), if it still exists. */
function killStray(pid: number | undefined): void {
  if (pid === undefined || !(pid > 0)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}

/** Joins chunks of bytes. */
function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** `length` bytes that run through every value, NUL included. */
function pattern(length: number, step = 7): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * step) % 256;
  return bytes;
}

/** Collects one stream of a job, and lets a test wait for a text to appear in it. */
class Collector {
  readonly chunks: Uint8Array[] = [];
  #text = "";
  #waiters: { text: string; resolve(): void }[] = [];

  readonly push = (chunk: Uint8Array): void => {
    this.chunks.push(chunk.slice());
    this.#text += new TextDecoder().decode(chunk);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!this.#text.includes(waiter.text)) return true;
      waiter.resolve();
      return false;
    });
  };

  bytes(): Uint8Array {
    return concat(this.chunks);
  }

  text(): string {
    return new TextDecoder().decode(this.bytes());
  }

  /** Resolves once `text` has been written; fails the test if it is not within `SETTLE_MS`. */
  seen(text: string): Promise<void> {
    if (this.#text.includes(text)) return Promise.resolve();
    const seen = new Promise<void>((resolve) => this.#waiters.push({ text, resolve }));
    return within(seen, SETTLE_MS, `output ${JSON.stringify(text)}`);
  }
}

/** A job started through a launcher, with its output. */
interface Launched {
  readonly handle: ChildHandle;
  readonly stdout: Collector;
  readonly stderr: Collector;
}

type JobOptions = Omit<LaunchOptions, "onStdout" | "onStderr" | "maxOutputBytes"> & {
  readonly maxOutputBytes?: number;
};

/** Starts a job through `launcher`, collecting its output. */
async function launch(launcher: Launcher, options: JobOptions): Promise<Launched> {
  const stdout = new Collector();
  const stderr = new Collector();
  const handle = await within(
    launcher.spawn({
      maxOutputBytes: 64 * 1024 * 1024,
      ...options,
      onStdout: stdout.push,
      onStderr: stderr.push,
    }),
    SETTLE_MS,
    `launcher.spawn(${JSON.stringify(options.cmd)})`,
  );
  return { handle, stdout, stderr };
}

/** Waits until a job's pipes are done, and returns how it ended. */
function closed(job: Launched): Promise<{ code: number | null; signal: string | null }> {
  return within(job.handle.closed, SETTLE_MS, `job ${job.handle.pid} to close`);
}

/** A Perl job that prints "ready", then "term" at each SIGTERM, and never ends by itself. */
const TERM_TRAPPER = [
  "perl",
  "-e",
  '$| = 1; $SIG{TERM} = sub { print "term\\n" }; print "ready\\n"; sleep 1 while 1',
];

/** What a start failure says, to compare the launcher's with `spawnChild()`'s. */
function describeStartError(error: unknown): Record<string, unknown> {
  assert.ok(error instanceof SpawnError, show(error));
  return { name: error.name, code: error.code, command: error.command, message: error.message };
}

/** A job's result without what depends on timing (how long, when, in which slot). */
function comparable(result: JobResult): Record<string, unknown> {
  const { durationMs: _d, startedAt: _s, slot: _slot, error, ...rest } = result;
  return {
    ...rest,
    error: error === undefined
      ? undefined
      : { name: error.name, message: error.message, code: (error as { code?: unknown }).code },
  };
}

describe("Launcher", () => {
  test("starts and closes, and is tracked as a launcher only while it runs", async () => {
    const before = launcherPids();
    const launcher = await within(Launcher.start(), SETTLE_MS, "Launcher.start()");
    const pids = launcherPids().filter((pid) => !before.includes(pid));
    try {
      assert.equal(pids.length, 1, `one launcher pid: ${pids}`);
      assert.deepEqual(liveJobPids(), [], "a launcher is not a job");
      assert.equal(launcher.gone, false);
    } finally {
      await within(launcher.close(), SETTLE_MS, "launcher.close()");
    }
    assert.equal(launcher.gone, true);
    assert.deepEqual(liveProcessPids(), []);
    await assertNotRunning(pids, "the launcher");
  });

  test("delivers stdout and stderr as the bytes written, binary and past 64 KiB", async () => {
    const input = pattern(300_000);
    await withLauncher(async (launcher) => {
      const [out, err, both] = await Promise.all([
        launch(launcher, { cmd: ["cat"], input }),
        launch(launcher, { cmd: ["sh", "-c", "cat >&2"], input }),
        // Generated, not echoed: NUL bytes and invalid UTF-8 on both streams.
        launch(launcher, {
          cmd: ["sh", "-c", "head -c 70000 /dev/zero; printf '\\377\\000\\376' >&2"],
        }),
      ]);
      for (const job of [out, err, both]) {
        assert.deepEqual(await closed(job), { code: 0, signal: null });
      }
      assert.deepEqual(out.stdout.bytes(), input);
      assert.equal(out.stderr.bytes().length, 0);
      assert.deepEqual(err.stderr.bytes(), input);
      assert.equal(err.stdout.bytes().length, 0);
      assert.deepEqual(both.stdout.bytes(), new Uint8Array(70_000));
      assert.deepEqual(both.stderr.bytes(), new Uint8Array([0xff, 0x00, 0xfe]));
    });
  });

  test("keeps many jobs' output apart when they write at once", async () => {
    await withLauncher(async (launcher) => {
      // Each job writes 100 KB of its own byte to stdout and its number to stderr.
      const jobs = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          launch(launcher, {
            cmd: [
              "sh",
              "-c",
              `head -c 100000 /dev/zero | tr '\\000' '\\${(0o101 + i).toString(8)}'; ` +
              `echo ${i} >&2`,
            ],
          })),
      );
      for (const [i, job] of jobs.entries()) {
        assert.deepEqual(await closed(job), { code: 0, signal: null });
        const stdout = job.stdout.bytes();
        assert.equal(stdout.length, 100_000, `job ${i}`);
        assert.ok(stdout.every((byte) => byte === 0x41 + i), `job ${i} got another's output`);
        assert.equal(job.stderr.text(), `${i}\n`);
      }
      assert.equal(new Set(jobs.map((job) => job.handle.pid)).size, jobs.length);
    });
  });

  test("writes several MB of input; a job that does not read it still completes", async () => {
    const input = pattern(6_000_000, 3);
    await withLauncher(async (launcher) => {
      const [counted, ignored, partial, empty, none] = await Promise.all([
        launch(launcher, { cmd: ["wc", "-c"], input }),
        // Exits without reading: the launcher must not block on the full pipe.
        launch(launcher, { cmd: ["true"], input }),
        // Reads a little, then closes its stdin and exits (EPIPE for the launcher).
        launch(launcher, { cmd: ["head", "-c", "5"], input }),
        launch(launcher, { cmd: ["wc", "-c"], input: new Uint8Array(0) }),
        // Without input, stdin is /dev/null.
        launch(launcher, { cmd: ["wc", "-c"] }),
      ]);
      for (const job of [counted, ignored, partial, empty, none]) {
        assert.deepEqual(await closed(job), { code: 0, signal: null });
      }
      assert.equal(counted.stdout.text().trim(), "6000000");
      assert.equal(ignored.stdout.text(), "");
      assert.deepEqual(partial.stdout.bytes(), input.subarray(0, 5));
      assert.equal(empty.stdout.text().trim(), "0");
      assert.equal(none.stdout.text().trim(), "0");
    });
  });

  test("reports exit codes, and deaths by signal as the signal", async () => {
    await withLauncher(async (launcher) => {
      const [seven, usr1, killed, zero] = await Promise.all([
        launch(launcher, { cmd: ["sh", "-c", "echo partial; exit 7"] }),
        launch(launcher, { cmd: ["sh", "-c", "kill -USR1 $$"] }),
        launch(launcher, { cmd: ["sh", "-c", "kill -9 $$"] }),
        launch(launcher, { cmd: ["true"] }),
      ]);
      assert.deepEqual(await seven.handle.exited, { code: 7, signal: null });
      assert.deepEqual(await closed(seven), { code: 7, signal: null });
      assert.equal(seven.stdout.text(), "partial\n");
      assert.deepEqual(await closed(usr1), { code: null, signal: "SIGUSR1" });
      assert.deepEqual(await closed(killed), { code: null, signal: "SIGKILL" });
      assert.deepEqual(await closed(zero), { code: 0, signal: null });
      assert.ok(seven.handle.pid > 0 && seven.handle.pid !== process.pid);
    });
  });

  test("kill() sends SIGTERM by default, the signal it is given otherwise", async () => {
    await withLauncher(async (launcher) => {
      const sleeper = await launch(launcher, { cmd: ["sleep", "30"] });
      sleeper.handle.kill();
      assert.deepEqual(await closed(sleeper), { code: null, signal: "SIGTERM" });
      // Once it was reaped, a kill does nothing (its pid may be another process's by now).
      sleeper.handle.kill("SIGKILL");

      const trapper = await launch(launcher, { cmd: TERM_TRAPPER });
      await trapper.stdout.seen("ready\n");
      trapper.handle.kill();
      // It handled the SIGTERM and lives on: only SIGKILL ends it.
      await trapper.stdout.seen("term\n");
      trapper.handle.kill("SIGKILL");
      assert.deepEqual(await closed(trapper), { code: null, signal: "SIGKILL" });
      assert.equal(trapper.stdout.text(), "ready\nterm\n");
    });
  });

  test("a job has no IPC channel and takes its stdin as `input` only", async () => {
    await withLauncher(async (launcher) => {
      const job = await launch(launcher, { cmd: ["true"] });
      assert.throws(() => job.handle.send("hi"), TypeError);
      assert.throws(() => job.handle.write(new Uint8Array([1])), TypeError);
      assert.equal(job.handle.unref(), false);
      await closed(job);
    });
  });

  test("fails a start the way spawnChild() does: ENOENT, EACCES, a missing cwd", async () => {
    await withDir(async (dir) => {
      const notExecutable = join(dir, "data.txt");
      writeFileSync(notExecutable, "echo never\n");
      chmodSync(notExecutable, 0o644);
      const cases: [string, { cmd: string[]; cwd?: string }, string][] = [
        ["a command not on the PATH", { cmd: [MISSING, "arg"] }, "ENOENT"],
        ["a path that does not exist", { cmd: [join(dir, "nothing")] }, "ENOENT"],
        ["a file that is not executable", { cmd: [notExecutable] }, "EACCES"],
        ["a cwd that does not exist", { cmd: ["pwd"], cwd: join(dir, "missing") }, "ENOENT"],
      ];
      await withLauncher(async (launcher) => {
        for (const [what, options, code] of cases) {
          const direct = describeStartError(
            await rejection(
              spawnChild({ ...options, stdin: "ignore", stdout: "ignore", stderr: "ignore" }),
              `spawnChild() of ${what}`,
            ),
          );
          const launched = describeStartError(
            await rejection(launch(launcher, options), `launcher.spawn() of ${what}`),
          );
          assert.equal(launched.code, code, `${what}: ${show(launched)}`);
          assert.deepEqual(launched, direct, what);
        }
        // A failed start leaves the launcher as it was.
        const job = await launch(launcher, { cmd: ["sh", "-c", "echo still here"] });
        assert.deepEqual(await closed(job), { code: 0, signal: null });
        assert.equal(job.stdout.text(), "still here\n");
      });
    });
  });

  test("passes cwd (resolved against the current directory), env and arguments through", async () => {
    await withDir(async (dir) => {
      const sub = join(dir, "sub dir");
      mkdirSync(sub);
      const bin = join(dir, "bin");
      mkdirSync(bin);
      writeFileSync(join(bin, "fanout-test-tool"), '#!/bin/sh\necho "tool $1"\n');
      chmodSync(join(bin, "fanout-test-tool"), 0o755);
      await withLauncher(async (launcher) => {
        const args = ["a b", "", "café", "$HOME", "*"];
        const [where, vars, argv, tool] = await Promise.all([
          launch(launcher, { cmd: ["pwd"], cwd: sub }),
          launch(launcher, {
            cmd: [
              "sh",
              "-c",
              'printf "%s|%s|" "$FANOUT_A" "$FANOUT_B"; [ -n "$HOME" ] && echo kept',
            ],
            env: { FANOUT_A: "x=y z", FANOUT_B: "" },
          }),
          launch(launcher, { cmd: ["sh", "-c", 'printf "[%s]" "$@"; echo " $#"', "sh", ...args] }),
          // Looked up on the job's own PATH.
          launch(launcher, {
            cmd: ["fanout-test-tool", "found"],
            env: { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` },
          }),
        ]);
        for (const job of [where, vars, argv, tool]) {
          assert.deepEqual(await closed(job), { code: 0, signal: null }, job.stderr.text());
        }
        assert.equal(realpathSync(where.stdout.text().trim()), realpathSync(sub));
        assert.equal(vars.stdout.text(), "x=y z||kept\n");
        assert.equal(argv.stdout.text(), `${args.map((a) => `[${a}]`).join("")} 5\n`);
        assert.equal(tool.stdout.text(), "tool found\n");

        // The launcher's own directory is the one this process had when it started it.
        const home = process.cwd();
        process.chdir(dir);
        let relative: Launched;
        try {
          relative = await launch(launcher, { cmd: ["pwd"], cwd: "sub dir" });
        } finally {
          process.chdir(home);
        }
        assert.deepEqual(await closed(relative), { code: 0, signal: null });
        assert.equal(realpathSync(relative.stdout.text().trim()), realpathSync(sub));
      });
    });
  });

  test("passes on one byte past maxOutputBytes of each stream and drains the rest", async () => {
    await withLauncher(async (launcher) => {
      const job = await launch(launcher, {
        cmd: ["sh", "-c", "head -c 1000000 /dev/zero; head -c 1000000 /dev/zero >&2; echo done"],
        maxOutputBytes: 1000,
      });
      assert.deepEqual(await closed(job), { code: 0, signal: null });
      assert.equal(job.stdout.bytes().length, 1001);
      assert.equal(job.stderr.bytes().length, 1001);
      const small = await launch(launcher, { cmd: ["printf", "abcd"], maxOutputBytes: 4 });
      await closed(small);
      assert.equal(small.stdout.text(), "abcd");
    });
  });

  test("a grandchild that holds the pipes open does not keep the job from closing", async () => {
    let grandchild: number | undefined;
    try {
      await withLauncher(async (launcher) => {
        // The background sleep keeps stdout and stderr open after the shell exits; it prints
        // its pid so that the test can end it.
        const job = await launch(launcher, { cmd: ["sh", "-c", "sleep 100 & echo $!"] });
        assert.deepEqual(await job.handle.exited, { code: 0, signal: null });
        await job.stdout.seen("\n");
        grandchild = Number(job.stdout.text().trim());
        assert.ok(grandchild > 0, `the grandchild's pid: ${job.stdout.text()}`);
        assert.deepEqual(await closed(job), { code: 0, signal: null });
        assert.ok(running(grandchild), "the grandchild is still running: its pipes were cut");
        // The launcher goes on starting jobs after it cut a job's pipes.
        const next = await launch(launcher, { cmd: ["sh", "-c", "echo next"] });
        await closed(next);
        assert.equal(next.stdout.text(), "next\n");
      });
    } finally {
      killStray(grandchild);
    }
  });

  test("Launcher.start() rejects with SpawnError ENOENT when perl is not on the PATH", async () => {
    await withDir(async (empty) => {
      const error = await withPath(empty, () => rejection(Launcher.start(), "Launcher.start()"));
      assert.ok(error instanceof SpawnError, show(error));
      assert.equal(error.code, "ENOENT");
      assert.equal(error.command, "perl");
    });
  });

  test("SIGKILLed, it settles its running jobs, kills them and refuses new ones", async () => {
    const launcher = await within(Launcher.start(), SETTLE_MS, "Launcher.start()");
    try {
      const [launcherPid] = launcherPids();
      const jobs = await Promise.all([
        launch(launcher, { cmd: ["sleep", "30"] }),
        launch(launcher, { cmd: ["sh", "-c", "echo up; exec sleep 30"] }),
      ]);
      await jobs[1].stdout.seen("up\n");
      const pids = jobs.map((job) => job.handle.pid);
      assert.deepEqual(liveJobPids().sort(), [...pids].sort());
      process.kill(launcherPid, "SIGKILL");
      for (const job of jobs) {
        // Its exit is unknown: the launcher that would have reaped it is gone.
        assert.deepEqual(await job.handle.exited, { code: null, signal: null });
        assert.deepEqual(await closed(job), { code: null, signal: null });
      }
      assert.equal(launcher.gone, true);
      const error = await rejection(launcher.spawn({
        cmd: ["true"],
        maxOutputBytes: 1,
        onStdout() {},
        onStderr() {},
      }));
      assert.ok(error instanceof SpawnError, show(error));
      assert.match(error.message, /launcher.*is gone/);
      await within(launcher.close(), SETTLE_MS, "close() of a dead launcher");
      assert.deepEqual(liveProcessPids(), []);
      await assertNotRunning(pids, "the jobs of the killed launcher");
    } finally {
      await within(launcher.close(), SETTLE_MS, "launcher.close()");
    }
  });

  test("close() stops running jobs (SIGKILL after the grace), waits for them, and is idempotent", async () => {
    const launcher = await within(Launcher.start(), SETTLE_MS, "Launcher.start()");
    const [launcherPid] = launcherPids();
    const sleeper = await launch(launcher, { cmd: ["sleep", "30"] });
    const trapper = await launch(launcher, { cmd: TERM_TRAPPER });
    await trapper.stdout.seen("ready\n");
    // Asked for, not started yet, when close() is called: close() waits for it and stops it.
    const pending = launcher.spawn({
      cmd: ["sleep", "30"],
      maxOutputBytes: 1,
      onStdout() {},
      onStderr() {},
    });
    const closing = launcher.close();
    assert.equal(launcher.close(), closing, "close() again returns the same promise");
    const late = await rejection(launcher.spawn({
      cmd: ["true"],
      maxOutputBytes: 1,
      onStdout() {},
      onStderr() {},
    }));
    assert.ok(late instanceof SpawnError, show(late));
    assert.match(late.message, /launcher.*was closed/);
    const started = await within(pending, SETTLE_MS, "the pending spawn");
    await within(closing, SETTLE_MS, "launcher.close()");
    assert.deepEqual(await sleeper.handle.closed, { code: null, signal: "SIGTERM" });
    assert.deepEqual(await started.closed, { code: null, signal: "SIGTERM" });
    assert.deepEqual(await trapper.handle.closed, { code: null, signal: "SIGKILL" });
    assert.equal(trapper.stdout.text(), "ready\nterm\n");
    assert.equal(launcher.gone, true);
    assert.deepEqual(liveProcessPids(), []);
    await assertNotRunning([launcherPid], "the closed launcher");
    await within(launcher.close(), SETTLE_MS, "close() once more");
  });
});

describe("runCommands() through the launcher", () => {
  test("gives the same results with FANOUT_SPAWN=direct and FANOUT_SPAWN=launcher", async () => {
    await withDir(async (dir) => {
      const notExecutable = join(dir, "data.txt");
      writeFileSync(notExecutable, "echo never\n");
      chmodSync(notExecutable, 0o644);
      const jobs: CommandJob[] = [
        { cmd: ["sh", "-c", "echo out; echo err >&2"] },
        { cmd: ["sh", "-c", "echo partial; exit 7"] },
        { cmd: ["sh", "-c", "kill -USR1 $$"] },
        { cmd: ["sh", "-c", "kill -9 $$"] },
        { cmd: ["sh", "-c", "printf 'caf\\303\\251 \\377\\000!'"] },
        { cmd: ["sh", "-c", "head -c 90000 /dev/zero | tr '\\000' b"] },
        // Past maxOutputBytes: cut, and the batch says so.
        { cmd: ["sh", "-c", "head -c 300000 /dev/zero | tr '\\000' a; echo tail >&2"] },
        { cmd: ["cat"], stdin: "hello\n" },
        { cmd: ["wc", "-c"], stdin: "x".repeat(3_000_000) },
        { cmd: ["true"], stdin: "y".repeat(3_000_000) },
        { cmd: ["cat"] },
        { cmd: [MISSING, "arg"] },
        { cmd: [notExecutable] },
        { cmd: ["pwd"], cwd: join(dir, "missing") },
        { cmd: ["pwd"], cwd: dir },
        {
          cmd: ['printf "%s|" "$FANOUT_TEST_VALUE" "$@"', "a b", ""],
          env: { FANOUT_TEST_VALUE: "42" },
          shell: true,
        },
      ];
      const launchers: Record<string, number[]> = {};
      const results: Record<string, Record<string, unknown>[]> = {};
      for (const mode of MODES) {
        const seen: number[] = (launchers[mode] = []);
        const batch = await runIn(mode, jobs, {
          maxWorkers: 4,
          maxOutputBytes: 100_000,
          onProgress: () => void seen.push(launcherPids().length),
        });
        assert.deepEqual(liveProcessPids(), [], `FANOUT_SPAWN=${mode} left a child behind`);
        results[mode] = batch.results.map(comparable);
        assert.equal(batch.failed, 6, `FANOUT_SPAWN=${mode}: ${show(batch.results)}`);
      }
      assert.ok(launchers.direct.every((n) => n === 0), `direct: launchers ${launchers.direct}`);
      assert.ok(launchers.launcher.every((n) => n === 1), `launcher: ${launchers.launcher}`);
      assert.deepEqual(results.launcher, results.direct);

      // What both said, spelled out.
      const byIndex = results.launcher;
      assert.deepEqual(
        byIndex.slice(0, 4).map((r) => [r.exitCode, r.signal, r.stdout, r.stderr]),
        [[0, null, "out\n", "err\n"], [7, null, "partial\n", ""], [null, "SIGUSR1", "", ""], [
          null,
          "SIGKILL",
          "",
          "",
        ]],
      );
      assert.equal(byIndex[4].stdout, "café \ufffd\0!");
      assert.equal(byIndex[5].stdout, "b".repeat(90_000));
      assert.deepEqual(
        [byIndex[5].truncated, byIndex[6].truncated, byIndex[6].stdout, byIndex[6].stderr],
        [false, true, "a".repeat(100_000), "tail\n"],
      );
      assert.deepEqual(
        byIndex.slice(7, 11).map((r) => [r.exitCode, (r.stdout as string).trim()]),
        [[0, "hello"], [0, "3000000"], [0, ""], [0, ""]],
      );
      for (const [i, code] of [[11, "ENOENT"], [12, "EACCES"], [13, "ENOENT"]] as const) {
        assert.deepEqual(
          [byIndex[i].exitCode, (byIndex[i].error as { name: string }).name],
          [null, "SpawnError"],
          `job ${i}: ${show(byIndex[i])}`,
        );
        assert.equal((byIndex[i].error as { code: string }).code, code, `job ${i}`);
      }
      assert.match((byIndex[13].error as { message: string }).message, /`cwd`.*missing/);
      assert.equal(realpathSync((byIndex[14].stdout as string).trim()), realpathSync(dir));
      assert.equal(byIndex[15].stdout, "42|a b||");
    });
  });

  // The launcher is the default on Node only: Deno's and Bun's own spawn is about as fast.
  const byDefault = runtime === "node" ? "launcher" : "direct";
  test(`starts jobs ${byDefault === "launcher" ? "through the launcher" : "directly"} by default on ${runtime}`, async () => {
    const seen: number[] = [];
    const batch = await runIn(undefined, [{ cmd: ["true"] }, { cmd: ["true"] }], {
      maxWorkers: 1,
      onProgress: () => void seen.push(launcherPids().length),
    });
    assert.equal(batch.succeeded, 2);
    assert.deepEqual(seen, byDefault === "launcher" ? [1, 1] : [0, 0]);
  });

  test("runs many short jobs through one launcher, in order", async () => {
    const seen = new Set<number>();
    const jobs = Array.from({ length: 60 }, (_, i) => ({ cmd: ["sh", "-c", `echo ${i}`] }));
    const batch = await runIn("launcher", jobs, {
      maxWorkers: 8,
      onProgress: () => {
        for (const pid of launcherPids()) seen.add(pid);
      },
    });
    assert.equal(batch.succeeded, 60);
    assert.deepEqual(batch.results.map((r) => r.stdout), jobs.map((_, i) => `${i}\n`));
    assert.equal(seen.size, 1, `launchers seen: ${[...seen]}`);
  });

  test("a timeout sends SIGTERM, and SIGKILL after the grace to a job that ignores it, either way", async () => {
    const outcomes: Record<string, unknown[]> = {};
    for (const mode of MODES) {
      const batch = await runIn(mode, [
        { cmd: ["sleep", "30"], timeoutMs: 200 },
        // `exec` keeps the ignored TERM and leaves no grandchild. The timeout leaves the
        // shell ample time to set the trap first.
        { cmd: ["sh", "-c", 'trap "" TERM; exec sleep 30'], timeoutMs: 1000 },
      ], { maxWorkers: 2, killGraceMs: 300 });
      outcomes[mode] = batch.results.map((r) => [r.timedOut, r.exitCode, r.signal, r.error]);
    }
    assert.deepEqual(outcomes.launcher, [
      [true, null, "SIGTERM", undefined],
      [true, null, "SIGKILL", undefined],
    ]);
    assert.deepEqual(outcomes.launcher, outcomes.direct);
  });

  test("a job whose grandchild holds its pipes open still settles, either way", async () => {
    const strays: number[] = [];
    try {
      for (const mode of MODES) {
        const batch = await runIn(mode, [{ cmd: ["sh", "-c", "sleep 100 & echo $!"] }]);
        const [job] = batch.results;
        const pid = Number(job.stdout.trim());
        if (pid > 0) strays.push(pid);
        assert.deepEqual([job.exitCode, job.error, job.timedOut], [0, undefined, false]);
        assert.ok(pid > 0 && running(pid), `FANOUT_SPAWN=${mode}: ${show(job)}`);
      }
    } finally {
      for (const pid of strays) killStray(pid);
    }
  });

  test("the launcher SIGKILLed mid-batch fails its running jobs; later jobs start directly", async () => {
    await withSpawnMode("launcher", async () => {
      const call = runCommands([
        { cmd: ["sleep", "30"] },
        { cmd: ["sleep", "30"] },
        { cmd: ["sh", "-c", "echo after"] },
      ], { maxWorkers: 2 });
      // Should the batch fail early, its rejection is awaited below, not left unhandled.
      call.catch(() => {});
      await until(() => liveJobPids().length === 2, "two jobs running");
      const jobs = liveJobPids();
      const [launcher] = launcherPids();
      assert.ok(launcher !== undefined, "a launcher runs the batch");
      process.kill(launcher, "SIGKILL");
      const batch = await within(call, SETTLE_MS, "the batch whose launcher was killed");
      const [first, second, after] = batch.results;
      for (const lost of [first, second]) {
        assert.notEqual(lost.exitCode, 0, show(lost));
        assert.equal(lost.timedOut, false);
      }
      assert.equal(after.exitCode, 0, show(after));
      assert.equal(after.stdout, "after\n");
      assert.equal(batch.failed, 2);
      assert.deepEqual(liveProcessPids(), []);
      await assertNotRunning(jobs, "the jobs of the killed launcher");
    });
  });

  test("an unknown FANOUT_SPAWN fails every job with a RangeError that names it", async () => {
    await withDir(async (dir) => {
      const marker = join(dir, "ran");
      const batch = await runIn("fork", [
        { cmd: ['touch "$1"', marker], shell: true },
        { cmd: ["true"] },
      ]);
      assert.equal(batch.failed, 2);
      for (const result of batch.results) {
        assert.ok(result.error instanceof RangeError, show(result));
        assert.match(result.error.message, /`FANOUT_SPAWN`.*"direct" or "launcher".*"fork"/);
        assert.equal(result.exitCode, null);
      }
      assert.throws(() => readFileSync(marker), "no job ran");
    });
  });

  test("jobs see this process's environment as it is now, as when spawned directly", async () => {
    const before = process.env.FANOUT_TEST_LATE;
    process.env.FANOUT_TEST_LATE = "set after start-up";
    try {
      const jobs: CommandJob[] = [
        { cmd: ["sh", "-c", 'echo "$FANOUT_TEST_LATE"'], env: { FANOUT_TEST_OTHER: "1" } },
        { cmd: ["sh", "-c", 'echo "$FANOUT_TEST_LATE"'] },
      ];
      const direct = await runIn("direct", jobs);
      const launched = await runIn("launcher", jobs);
      assert.deepEqual(launched.results.map((r) => r.stdout), [
        "set after start-up\n",
        "set after start-up\n",
      ]);
      // Without `env`, a job Bun.spawn starts directly gets the environment Bun started with.
      assert.equal(launched.results[0].stdout, direct.results[0].stdout);
    } finally {
      if (before === undefined) delete process.env.FANOUT_TEST_LATE;
      else process.env.FANOUT_TEST_LATE = before;
    }
  });
});

// Last in the file: once the launcher failed to start, a process does without it for good.
describe("runCommands() without perl", () => {
  test("starts jobs directly when perl is not on the PATH, for the rest of the process", async () => {
    await withDir(async (empty) => {
      const seen: number[] = [];
      const batch = await withPath(
        empty,
        () =>
          runIn("launcher", [{ cmd: ["/bin/sh", "-c", "echo direct"] }], {
            onProgress: () => void seen.push(launcherPids().length),
          }),
      );
      assert.equal(batch.results[0].stdout, "direct\n", show(batch.results[0]));
      assert.deepEqual(seen, [0]);
    });
    const seen: number[] = [];
    const again = await runIn("launcher", [{ cmd: ["sh", "-c", "echo again"] }], {
      onProgress: () => void seen.push(launcherPids().length),
    });
    assert.equal(again.results[0].stdout, "again\n");
    assert.deepEqual(seen, [0], "the launcher is not tried again");
  });
});
