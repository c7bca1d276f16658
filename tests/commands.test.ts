/**
 * `runCommands()` and `commandsAsCompleted()`: batches of external commands with bounded
 * concurrency, timeouts, retries, halting, progress and cancellation. Ordering between jobs is
 * gated with files the jobs wait for (bounded polls in `sh`), never with sleeps; the `test()`
 * wrapper fails a test that leaves a child process behind.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  commandsAsCompleted,
  JobKilledError,
  JobSkippedError,
  runCommands,
  SpawnError,
} from "../mod.ts";
import type { CommandJob, CommandOptions, CommandProgress, JobResult } from "../mod.ts";
import { detect, liveJobPids, liveProcessPids } from "../src/runtime/mod.ts";
import { maxCommandWorkers } from "../src/commands/_plan.ts";
import { rejection, show, test, within } from "./_helpers.ts";

/** Bound for a whole batch in a test: a hang fails with a message instead of stalling. */
const BATCH_MS = 30_000;

/**
 * `sh` source of a function `wait_for FILE` that polls (every 50 ms, for at most 20 s) until
 * FILE exists, and makes the job exit with 99 if it never does.
 */
const WAIT_FOR = 'wait_for() { i=0; until [ -e "$1" ]; do i=$((i+1)); ' +
  '[ "$i" -gt 400 ] && exit 99; sleep 0.05; done; }';

/** A fresh temporary directory, removed after `fn`. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "fanout-commands-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resolves once `condition()` holds, polling; fails (not hangs) after `maxMs`. */
async function until(condition: () => boolean, what: string, maxMs = 10_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${maxMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function run(jobs: CommandJob[], options?: CommandOptions): ReturnType<typeof runCommands> {
  return within(runCommands(jobs, options), BATCH_MS, "runCommands()");
}

function ok(result: JobResult): void {
  assert.ok(
    result.exitCode === 0 && result.error === undefined && !result.timedOut,
    `job ${result.index} should have succeeded: ${show(result)}`,
  );
}

describe("runCommands()", () => {
  test("keeps input order when later jobs finish first", async () => {
    await withDir(async (dir) => {
      const finished: number[] = [];
      const two = join(dir, "two");
      const batch = await run([
        // Job 0 cannot finish before the progress call for job 2 created its file.
        { cmd: [`${WAIT_FOR}; wait_for "$1"; echo zero`, two], shell: true },
        { cmd: ["sh", "-c", "echo one"] },
        { cmd: ["sh", "-c", "echo two"] },
      ], {
        maxWorkers: 3,
        onProgress: ({ job }) => {
          finished.push(job.index);
          if (job.index === 2) writeFileSync(two, "");
        },
      });
      assert.deepEqual(batch.results.map((r) => r.index), [0, 1, 2]);
      assert.deepEqual(batch.results.map((r) => r.stdout), ["zero\n", "one\n", "two\n"]);
      assert.ok(
        finished.indexOf(0) > finished.indexOf(2),
        `job 0 should finish after job 2: ${finished}`,
      );
      assert.equal(batch.succeeded, 3);
      assert.equal(batch.failed, 0);
      assert.ok(batch.durationMs >= 0);
    });
  });

  test("captures stdout, stderr, exit codes and signals", async () => {
    const batch = await run([
      { cmd: ["sh", "-c", "echo out; echo err >&2"] },
      { cmd: ["sh", "-c", "echo partial; exit 7"] },
      { cmd: ["sh", "-c", "kill -9 $$"] },
      { cmd: ["sh", "-c", "printf 'caf\\303\\251'"] },
    ]);
    const [out, seven, killed, utf8] = batch.results;
    ok(out);
    assert.equal(out.stdout, "out\n");
    assert.equal(out.stderr, "err\n");
    assert.equal(out.signal, null);
    assert.equal(out.attempts, 1);
    assert.equal(out.truncated, false);
    assert.deepEqual(out.cmd, ["sh", "-c", "echo out; echo err >&2"]);
    assert.equal(seven.exitCode, 7);
    assert.equal(seven.stdout, "partial\n");
    assert.equal(seven.error, undefined);
    assert.equal(killed.exitCode, null);
    assert.equal(killed.signal, "SIGKILL");
    assert.equal(utf8.stdout, "café");
    assert.equal(batch.succeeded, 2);
    assert.equal(batch.failed, 2);
  });

  test("a command that does not exist fails its own job with SpawnError ENOENT only", async () => {
    const batch = await run([
      { cmd: ["sh", "-c", "echo before"] },
      { cmd: ["fanout-surely-no-such-command-42", "arg"] },
      { cmd: ["sh", "-c", "echo after"] },
    ], { maxWorkers: 2 });
    const [before, missing, after] = batch.results;
    ok(before);
    ok(after);
    assert.equal(after.stdout, "after\n");
    assert.ok(missing.error instanceof SpawnError, show(missing.error));
    assert.equal(missing.error.code, "ENOENT");
    assert.equal(missing.exitCode, null);
    assert.equal(missing.attempts, 1);
    assert.equal(batch.failed, 1);
  });

  test("a cwd that does not exist fails its job with a SpawnError that names the cwd", async () => {
    await withDir(async (dir) => {
      const missing = join(dir, "missing");
      const batch = await run([{ cmd: ["pwd"], cwd: missing }, { cmd: ["pwd"], cwd: dir }]);
      const [bad, good] = batch.results;
      assert.ok(bad.error instanceof SpawnError, show(bad));
      assert.match(bad.error.message, /`cwd`.*missing/);
      ok(good);
    });
  });

  test("a job past its timeout gets SIGTERM; others are unaffected", async () => {
    const batch = await run([
      { cmd: ["sleep", "30"], timeoutMs: 200 },
      { cmd: ["sh", "-c", "echo fine"] },
    ], { maxWorkers: 2 });
    const [slow, fine] = batch.results;
    assert.equal(slow.timedOut, true);
    assert.equal(slow.signal, "SIGTERM");
    assert.equal(slow.exitCode, null);
    assert.equal(slow.error, undefined);
    ok(fine);
    assert.equal(batch.failed, 1);
  });

  test("a job that ignores SIGTERM is sent SIGKILL after the grace", async () => {
    // `exec` keeps the ignored TERM disposition and leaves no grandchild behind. The timeout
    // leaves the shell ample time to set the trap first.
    const batch = await run([
      { cmd: ["sh", "-c", 'trap "" TERM; exec sleep 30'] },
    ], { timeoutMs: 1000 });
    const [stubborn] = batch.results;
    assert.equal(stubborn.timedOut, true);
    assert.equal(stubborn.signal, "SIGKILL");
  });

  test("never runs more than maxWorkers commands at once, and does reach it", async () => {
    await withDir(async (dir) => {
      const [live, arrived] = [join(dir, "live"), join(dir, "arrived")];
      mkdirSync(live);
      mkdirSync(arrived);
      const maxWorkers = 3;
      const jobs = Array.from({ length: 8 }, (_, i) => ({
        // The first wave waits until all of it has arrived: that only happens when maxWorkers
        // commands really run at once. Every job reports how many files (= live jobs) it saw.
        cmd: [COUNT_JOBS, live, String(i), String(i < maxWorkers ? maxWorkers : 0), arrived],
        shell: true,
      }));
      const batch = await run(jobs, { maxWorkers });
      for (const result of batch.results) ok(result);
      const seen = batch.results.flatMap((r) => r.stdout.trim().split(" ").map(Number));
      assert.equal(Math.max(...seen), maxWorkers, `counts seen: ${seen}`);
    });
  });

  test("parallel: false runs one command at a time", async () => {
    await withDir(async (dir) => {
      const jobs = Array.from({ length: 5 }, (_, i) => ({
        cmd: [COUNT_JOBS, dir, String(i), "0", dir],
        shell: true,
      }));
      const running: number[] = [];
      const batch = await run(jobs, {
        parallel: false,
        maxWorkers: 4,
        onProgress: (p) => void running.push(p.running),
      });
      for (const result of batch.results) ok(result);
      assert.deepEqual(batch.results.map((r) => r.stdout), Array(5).fill("1 1\n"));
      assert.deepEqual(running, [0, 0, 0, 0, 0]);
    });
  });

  test('halt: "soon" starts nothing after a failure and lets running jobs finish', async () => {
    await withDir(async (dir) => {
      const go = join(dir, "go");
      const batch = await run([
        { cmd: ["sh", "-c", "exit 3"] },
        // Still running when job 0 fails: it waits for the progress call of job 0.
        { cmd: [`${WAIT_FOR}; wait_for "$1"; echo finished`, go], shell: true },
        { cmd: ["true"] },
        { cmd: ["true"] },
      ], {
        maxWorkers: 2,
        halt: "soon",
        onProgress: ({ job }) => {
          if (job.index === 0) writeFileSync(go, "");
        },
      });
      const [failed, running, ...skipped] = batch.results;
      assert.equal(failed.exitCode, 3);
      ok(running);
      assert.equal(running.stdout, "finished\n");
      for (const [i, result] of skipped.entries()) {
        assert.ok(result.error instanceof JobSkippedError, show(result));
        assert.equal(result.error.name, "JobSkippedError");
        assert.equal(result.error.index, i + 2);
        assert.equal(result.error.haltedBy, 0);
        assert.match(result.error.message, /job 0 .*exited with code 3/);
        assert.equal(result.exitCode, null);
        assert.equal(result.attempts, 0);
        assert.equal(result.index, i + 2);
      }
      assert.equal(batch.succeeded, 1);
      assert.equal(batch.failed, 3);
    });
  });

  test('halt: "now" kills running jobs and skips the rest', async () => {
    const batch = await run([
      { cmd: ["sleep", "30"] },
      { cmd: ["sh", "-c", "exit 5"] },
      { cmd: ["true"] },
    ], { maxWorkers: 2, halt: "now" });
    const [killed, failed, skipped] = batch.results;
    assert.equal(failed.exitCode, 5);
    assert.ok(killed.error instanceof JobKilledError, show(killed));
    assert.equal(killed.error.name, "JobKilledError");
    assert.equal(killed.error.haltedBy, 1);
    assert.equal(killed.signal, "SIGTERM");
    assert.equal(killed.attempts, 1);
    assert.ok(skipped.error instanceof JobSkippedError, show(skipped));
    assert.equal(batch.failed, 3);
  });

  test('halt: "never" (the default) runs every job despite failures', async () => {
    const batch = await run([
      { cmd: ["sh", "-c", "exit 1"] },
      { cmd: ["fanout-surely-no-such-command-42"] },
      { cmd: ["sh", "-c", "echo last"] },
    ], { maxWorkers: 1 });
    assert.equal(batch.results[2].stdout, "last\n");
    assert.equal(batch.failed, 2);
  });

  test("retries a failing job and reports the attempts", async () => {
    await withDir(async (dir) => {
      // Fails until its counter file reaches 3.
      const third = 'n=$(cat "$1" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1"; ' +
        'echo "attempt $n"; [ "$n" -ge 3 ]';
      const batch = await run([
        { cmd: [third, join(dir, "a")], shell: true },
        { cmd: [third, join(dir, "b")], shell: true },
      ], { retries: 2, maxWorkers: 1 });
      ok(batch.results[0]);
      assert.equal(batch.results[0].attempts, 3);
      assert.equal(batch.results[0].stdout, "attempt 3\n");
      const fewer = await run([{ cmd: [third, join(dir, "c")], shell: true }], { retries: 1 });
      assert.equal(fewer.results[0].attempts, 2);
      assert.equal(fewer.results[0].exitCode, 1);
      assert.equal(fewer.failed, 1);
    });
  });

  test("retries start errors and timeouts too", async () => {
    const batch = await run([
      { cmd: ["fanout-surely-no-such-command-42"] },
      { cmd: ["sleep", "30"], timeoutMs: 100 },
    ], { retries: 2 });
    assert.ok(batch.results[0].error instanceof SpawnError);
    assert.equal(batch.results[0].attempts, 3);
    assert.equal(batch.results[1].timedOut, true);
    assert.equal(batch.results[1].attempts, 3);
  });

  test("cuts output at maxOutputBytes, keeps draining, and the job completes", async () => {
    const batch = await run([
      {
        cmd: ["sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' a; head -c 1000000 /dev/zero >&2"],
      },
      { cmd: ["sh", "-c", "printf abc"] },
      { cmd: ["sh", "-c", "printf abcd"] },
      // "é" is 2 bytes: cut after its first byte, it is left out rather than garbled.
      { cmd: ["sh", "-c", "printf 'abc\\303\\251'"] },
    ], { maxOutputBytes: 1024 });
    const big = batch.results[0];
    ok(big);
    assert.equal(big.truncated, true);
    assert.ok(big.stdout.length <= 1024, `stdout has ${big.stdout.length} characters`);
    assert.equal(big.stdout, "a".repeat(1024));
    assert.equal(big.stderr.length, 1024);
    const small = await run([
      { cmd: ["sh", "-c", "printf abc"] },
      { cmd: ["sh", "-c", "printf abcd"] },
      { cmd: ["sh", "-c", "printf 'abc\\303\\251'"] },
    ], { maxOutputBytes: 4 });
    assert.deepEqual(
      small.results.map((r) => [r.stdout, r.truncated]),
      [["abc", false], ["abcd", false], ["abc", true]],
    );
  });

  test("writes stdin and closes it; without it the command reads an empty stdin", async () => {
    const big = "x".repeat(1_000_000);
    const batch = await run([
      { cmd: ["cat"], stdin: "hello\n" },
      { cmd: ["wc", "-c"], stdin: new Uint8Array([1, 2, 3]) },
      { cmd: ["wc", "-c"], stdin: big },
      { cmd: ["cat"], stdin: "" },
      { cmd: ["cat"] },
    ]);
    for (const result of batch.results) ok(result);
    assert.deepEqual(
      batch.results.map((r) => r.stdout.trim()),
      ["hello", "3", "1000000", "", ""],
    );
  });

  test("a command that exits without reading its stdin fails nothing else", async () => {
    // In a process of its own: an unhandled EPIPE would end the whole test process.
    const { name, execPath } = detect();
    const fixture = fileURLToPath(new URL("./fixtures/cmd.ts", import.meta.url));
    const batch = await run([
      { cmd: name === "deno" ? [execPath, "run", "-A", fixture] : [execPath, fixture] },
    ]);
    const [child] = batch.results;
    assert.equal(child.exitCode, 0, `the program failed: ${child.stderr}`);
    assert.equal(child.stdout, `${JSON.stringify([[0, ""], [0, "x"], [0, "closed\n"]])}\n`);
  });

  test("adds env to the parent's environment and honours cwd", async () => {
    await withDir(async (dir) => {
      const batch = await run([
        {
          cmd: ["sh", "-c", 'echo "$FANOUT_TEST_VALUE"; [ -n "$PATH" ]'],
          env: { FANOUT_TEST_VALUE: "42" },
        },
        { cmd: ["pwd"], cwd: dir },
      ]);
      for (const result of batch.results) ok(result);
      assert.equal(batch.results[0].stdout, "42\n");
      assert.equal(realpathSync(batch.results[1].stdout.trim()), realpathSync(dir));
    });
  });

  test("shell: true runs cmd[0] as a script with cmd[1..] as $1, $2, … unquoted", async () => {
    const args = ["a b", "$HOME", "it's", "", '"; echo injected'];
    const batch = await run([
      { cmd: ['printf "%s|" "$@"; echo " $#"', ...args], shell: true },
      { cmd: ["echo", "$HOME"], shell: false },
      { cmd: ['printf "%s" "$1"', "*"] },
    ], { shell: true });
    for (const result of batch.results) ok(result);
    assert.equal(batch.results[0].stdout, `${args.join("|")}| 5\n`);
    assert.equal(batch.results[1].stdout, "$HOME\n");
    assert.equal(batch.results[2].stdout, "*");
  });

  test("onProgress is never called concurrently nor after the batch settles", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let returned = 0;
    let settled = false;
    let lateCalls = 0;
    const calls: CommandProgress[] = [];
    const jobs = Array.from({ length: 8 }, (_, i) => ({ cmd: ["sh", "-c", `echo ${i}`] }));
    const batch = await run(jobs, {
      maxWorkers: 4,
      onProgress: async (progress) => {
        if (settled) lateCalls++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        calls.push(progress);
        // Let other jobs finish while this call is still pending.
        for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 1));
        inFlight--;
        returned++;
      },
    });
    settled = true;
    assert.equal(maxInFlight, 1);
    assert.equal(returned, 8, "every progress call returned before the batch settled");
    assert.equal(lateCalls, 0);
    assert.deepEqual(calls.map((c) => c.done), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.ok(calls.every((c) => c.total === 8 && c.failed === 0 && c.running <= 3));
    assert.deepEqual(calls.map((c) => c.job.index).sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(batch.succeeded, 8);
  });

  test("onProgress counts failures", async () => {
    const failed: number[] = [];
    await run([
      { cmd: ["sh", "-c", "exit 1"] },
      { cmd: ["sh", "-c", "exit 2"] },
    ], { maxWorkers: 1, onProgress: (p) => void failed.push(p.failed) });
    assert.deepEqual(failed, [1, 2]);
  });

  test("a throwing onProgress stops the batch, kills running jobs, and rejects with its error", async () => {
    const boom = new Error("progress failed");
    const calls: number[] = [];
    const error = await rejection(
      within(
        runCommands([
          { cmd: ["true"] },
          { cmd: ["sleep", "30"] },
          { cmd: ["sleep", "30"] },
          { cmd: ["true"] },
        ], {
          maxWorkers: 3,
          onProgress: async ({ job }) => {
            calls.push(job.index);
            await Promise.resolve();
            throw boom;
          },
        }),
        BATCH_MS,
        "runCommands()",
      ),
    );
    assert.equal(error, boom);
    assert.equal(calls.length, 1, `one progress call only: ${calls}`);
    assert.deepEqual(liveProcessPids(), []);
  });

  test("aborting kills running jobs, waits for them, and rejects with signal.reason", async () => {
    const controller = new AbortController();
    const reason = new Error("user cancelled");
    let progressCalls = 0;
    const call = runCommands([
      { cmd: ["sleep", "30"] },
      { cmd: ["sh", "-c", 'trap "" TERM; exec sleep 30'] },
      { cmd: ["sleep", "30"] },
    ], { maxWorkers: 2, signal: controller.signal, onProgress: () => void progressCalls++ });
    await until(() => liveJobPids().length === 2, "two commands running");
    controller.abort(reason);
    const error = await rejection(within(call, BATCH_MS, "the aborted batch"));
    assert.equal(error, reason);
    assert.deepEqual(liveProcessPids(), [], "no child outlives the rejection");
    assert.equal(progressCalls, 0);
  });

  test("an abort during a progress call rejects only after that call settled", async () => {
    const controller = new AbortController();
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let called!: () => void;
    const firstCall = new Promise<void>((resolve) => {
      called = resolve;
    });
    const call = runCommands([{ cmd: ["true"] }, { cmd: ["sleep", "30"] }], {
      maxWorkers: 2,
      signal: controller.signal,
      onProgress: async () => {
        events.push("progress started");
        called();
        await gate;
        events.push("progress returned");
      },
    }).catch((error) => {
      events.push("rejected");
      throw error;
    });
    await within(firstCall, BATCH_MS, "the first progress call");
    await until(() => liveJobPids().length === 1, "the sleep to run");
    controller.abort(new Error("stop"));
    // Every child is gone: a batch that did not wait for onProgress would reject about now.
    await until(() => liveJobPids().length === 0, "the killed job to be reaped");
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    events.push("released");
    release();
    await rejection(within(call, BATCH_MS, "the aborted batch"));
    assert.deepEqual(events, ["progress started", "released", "progress returned", "rejected"]);
  });

  test("an already-aborted signal rejects without starting anything", async () => {
    await withDir(async (dir) => {
      const reason = new Error("too late");
      const marker = join(dir, "ran");
      const error = await rejection(
        runCommands([{ cmd: ['touch "$1"', marker], shell: true }], {
          signal: AbortSignal.abort(reason),
        }),
      );
      assert.equal(error, reason);
      assert.equal(existsSync(marker), false);
    });
  });

  test("an empty batch resolves with no results", async () => {
    const batch = await run([]);
    assert.deepEqual(batch.results, []);
    assert.equal(batch.succeeded, 0);
    assert.equal(batch.failed, 0);
  });
});

describe("runCommands() validation", () => {
  const cases: [string, () => Promise<unknown>, typeof TypeError, RegExp][] = [
    [
      "maxWorkers: 0",
      () => runCommands([], { maxWorkers: 0 }),
      RangeError,
      new RegExp(`\`maxWorkers\`.*1 to ${maxCommandWorkers()}.*\`0\``),
    ],
    [
      "maxWorkers: one above the machine's bound",
      () => runCommands([], { maxWorkers: maxCommandWorkers() + 1 }),
      RangeError,
      new RegExp(`\`maxWorkers\`.*\`${maxCommandWorkers() + 1}\``),
    ],
    ["maxWorkers: 1.5", () => runCommands([], { maxWorkers: 1.5 }), RangeError, /`maxWorkers`/],
    [
      'maxWorkers: "4"',
      () => runCommands([], { maxWorkers: "4" as unknown as number }),
      TypeError,
      /`maxWorkers`.*"4" \(string\)/,
    ],
    [
      'halt: "later"',
      () => runCommands([], { halt: "later" as "now" }),
      RangeError,
      /`halt`.*"never", "soon", "now" or a halt rule.*"later"/,
    ],
    [
      "halt: a rule with count and percent",
      () => runCommands([], { halt: { when: "now", on: "fail", count: 1, percent: 5 } }),
      TypeError,
      /`halt`.*`count` or `percent`, got both/,
    ],
    [
      "halt: percent 0",
      () => runCommands([], { halt: { when: "soon", on: "fail", percent: 0 } }),
      RangeError,
      /`halt.percent`.*above 0 and at most 100.*`0`/,
    ],
    [
      'halt: on "error"',
      () => runCommands([], { halt: { when: "soon", on: "error" as "fail" } }),
      RangeError,
      /`halt.on`.*"fail", "success" or "done".*"error"/,
    ],
    [
      "halt: count 0",
      () => runCommands([], { halt: { when: "soon", on: "fail", count: 0 } }),
      RangeError,
      /`halt.count`/,
    ],
    ["halt: 1", () => runCommands([], { halt: 1 as unknown as "now" }), TypeError, /`halt`/],
    ["retries: -1", () => runCommands([], { retries: -1 }), RangeError, /`retries`.*0 and up/],
    ["timeoutMs: 0", () => runCommands([], { timeoutMs: 0 }), RangeError, /`timeoutMs`/],
    [
      "maxOutputBytes: 1.5",
      () => runCommands([], { maxOutputBytes: 1.5 }),
      RangeError,
      /`maxOutputBytes`/,
    ],
    [
      "parallel: 1",
      () => runCommands([], { parallel: 1 as unknown as boolean }),
      TypeError,
      /`parallel`/,
    ],
    ["signal: {}", () => runCommands([], { signal: {} as AbortSignal }), TypeError, /`signal`/],
    [
      "an unknown option",
      () => runCommands([], { concurrency: 2 } as CommandOptions),
      TypeError,
      /`concurrency`/,
    ],
    [
      "an empty cmd",
      () => runCommands([{ cmd: ["true"] }, { cmd: [] }]),
      TypeError,
      /`jobs\[1\]\.cmd` to be a non-empty array of strings.*, got an empty array/,
    ],
    [
      "a cmd with a number",
      () => runCommands([{ cmd: ["echo", 1 as unknown as string] }]),
      TypeError,
      /`jobs\[0\]\.cmd`.*item 1 is `1` \(number\)/,
    ],
    [
      "a cmd string",
      () => runCommands([{ cmd: "echo hi" as unknown as string[] }]),
      TypeError,
      /`jobs\[0\]\.cmd`.*"echo hi" \(string\)/,
    ],
    [
      "an unknown job key",
      () => runCommands([{ cmd: ["true"], args: [] } as CommandJob]),
      TypeError,
      /jobs\[0\].*`args`/,
    ],
    [
      "a job timeout of -1",
      () => runCommands([{ cmd: ["true"], timeoutMs: -1 }]),
      RangeError,
      /`jobs\[0\]\.timeoutMs`/,
    ],
    ["jobs that are not iterable", () => runCommands(42 as unknown as []), TypeError, /`jobs`/],
  ];
  for (const [what, call, expected, message] of cases) {
    test(`${what} is a ${expected.name} naming it`, async () => {
      const error = await rejection(call(), what);
      assert.ok(error instanceof expected, show(error));
      const other: ErrorConstructor = expected === RangeError ? TypeError : RangeError;
      assert.ok(!(error instanceof other), show(error));
      assert.match((error as Error).message, message);
    });
  }

  test("commandsAsCompleted() throws a bad option at once, before iterating", async () => {
    assert.throws(() => commandsAsCompleted([], { maxWorkers: 0 }), RangeError);
    assert.throws(() => commandsAsCompleted([{ cmd: [] }]), TypeError);
    await Promise.resolve();
  });
});

describe("commandsAsCompleted()", () => {
  test("yields every job's result as it finishes", async () => {
    await withDir(async (dir) => {
      const order: number[] = [];
      const results = new Map<number, JobResult>();
      const iterate = async (): Promise<void> => {
        for await (
          const result of commandsAsCompleted([
            // Cannot finish before the loop has seen job 1.
            { cmd: [`${WAIT_FOR}; wait_for "$1"; echo zero`, join(dir, "one")], shell: true },
            { cmd: ["sh", "-c", "echo one"] },
            { cmd: ["sh", "-c", "exit 4"] },
          ], { maxWorkers: 3 })
        ) {
          order.push(result.index);
          results.set(result.index, result);
          if (result.index === 1) writeFileSync(join(dir, "one"), "");
        }
      };
      await within(iterate(), BATCH_MS, "the loop");
      assert.deepEqual([...results.keys()].sort(), [0, 1, 2]);
      assert.ok(order.indexOf(0) > order.indexOf(1), `finish order: ${order}`);
      assert.equal(results.get(0)!.stdout, "zero\n");
      assert.equal(results.get(2)!.exitCode, 4);
    });
  });

  test("breaking out of the loop kills the running jobs and waits for them", async () => {
    const iterate = async (): Promise<JobResult | undefined> => {
      for await (
        const result of commandsAsCompleted([
          { cmd: ["sleep", "30"] },
          { cmd: ["sh", "-c", "echo quick"] },
          { cmd: ["sh", "-c", 'trap "" TERM; exec sleep 30'] },
          { cmd: ["sleep", "30"] },
        ], { maxWorkers: 3 })
      ) {
        return result;
      }
    };
    const first = await within(iterate(), BATCH_MS, "the loop");
    assert.equal(first?.stdout, "quick\n");
    assert.deepEqual(liveProcessPids(), [], "no child outlives the loop");
  });

  test("yields skipped jobs last after a halt", async () => {
    const indices: number[] = [];
    const iterate = async (): Promise<void> => {
      for await (
        const result of commandsAsCompleted([
          { cmd: ["sh", "-c", "exit 1"] },
          { cmd: ["true"] },
          { cmd: ["true"] },
        ], { maxWorkers: 1, halt: "soon" })
      ) {
        indices.push(result.index);
        if (result.index > 0) assert.ok(result.error instanceof JobSkippedError);
      }
    };
    await within(iterate(), BATCH_MS, "the loop");
    assert.deepEqual(indices, [0, 1, 2]);
  });

  test("aborting throws signal.reason from the loop and leaves no child", async () => {
    const controller = new AbortController();
    const reason = new Error("stop now");
    const iterate = async (): Promise<void> => {
      for await (
        const result of commandsAsCompleted([
          { cmd: ["sh", "-c", "echo first"] },
          { cmd: ["sleep", "30"] },
        ], { maxWorkers: 2, signal: controller.signal })
      ) {
        assert.equal(result.stdout, "first\n");
        controller.abort(reason);
      }
    };
    const error = await rejection(within(iterate(), BATCH_MS, "the loop"));
    assert.equal(error, reason);
    assert.deepEqual(liveProcessPids(), []);
  });
});

/**
 * `sh` script for the concurrency tests. Arguments: a directory of running jobs, the job's
 * name, how many jobs must have arrived before it goes on (0: none), and a directory of
 * arrivals. A job keeps a file in the first directory while it runs, so counting those files
 * counts the running jobs (never more than really run: a file exists only while its job's
 * process lives); it prints the count when it starts and when it leaves. The arrivals are
 * never removed, so a waiting job sees the others arrive even if they left already.
 */
const COUNT_JOBS = [
  'touch "$1/$2" "$4/$2"',
  'first=$(ls "$1" | wc -l)',
  'i=0; while [ "$(ls "$4" | wc -l)" -lt "$3" ]; do i=$((i+1)); ' +
  '[ "$i" -gt 400 ] && { rm "$1/$2"; exit 99; }; sleep 0.05; done',
  'last=$(ls "$1" | wc -l)',
  'rm "$1/$2"',
  'echo "$((first)) $((last))"',
].join("; ");

describe("runCommands() halt rules, slots and start times", () => {
  const exits = (codes: number[]): CommandJob[] =>
    codes.map((code) => ({ cmd: ["sh", "-c", `exit ${code}`] }));

  test("halts soon after the count of failures is reached, skipping the rest", async () => {
    const batch = await runCommands(exits([0, 1, 0, 2, 0, 0]), {
      maxWorkers: 1,
      halt: { when: "soon", on: "fail", count: 2 },
    });
    assert.equal(batch.haltedBy, 3);
    assert.deepEqual(batch.results.map((r) => r.attempts), [1, 1, 1, 1, 0, 0]);
    assert.ok(batch.results[4].error instanceof JobSkippedError);
    assert.match(batch.results[4].error!.message, /halted after job 3 .* exited with code 2/);
  });

  test("halts on a percentage of all jobs", async () => {
    // 3 of 10 is 30 %: the third failure halts, not the second.
    const batch = await runCommands(exits([1, 0, 1, 0, 1, 0, 0, 0, 0, 0]), {
      maxWorkers: 1,
      halt: { when: "soon", on: "fail", percent: 30 },
    });
    assert.equal(batch.haltedBy, 4);
    assert.equal(batch.results.filter((r) => r.attempts === 0).length, 5);
  });

  test("halts on successes, and says the halting job succeeded", async () => {
    const batch = await runCommands(exits([1, 0, 1, 0, 0, 0]), {
      maxWorkers: 1,
      halt: { when: "soon", on: "success", count: 2 },
    });
    assert.equal(batch.haltedBy, 3);
    assert.match(batch.results[5].error!.message, /halted after job 3 .* succeeded/);
  });

  test("halts on done jobs whatever their outcome", async () => {
    const batch = await runCommands(exits([1, 0, 0, 0]), {
      maxWorkers: 1,
      halt: { when: "soon", on: "done", count: 2 },
    });
    assert.equal(batch.haltedBy, 1);
    assert.equal(batch.succeeded, 1);
  });

  test("without a halt, haltedBy is undefined", async () => {
    const batch = await runCommands(exits([1, 0]));
    assert.equal(batch.haltedBy, undefined);
  });

  test("every job ran in a slot from 1 to maxWorkers, with a start time", async () => {
    const before = Date.now();
    const batch = await runCommands(exits([0, 0, 0, 0, 0, 0, 0, 0]), { maxWorkers: 3 });
    for (const result of batch.results) {
      assert.ok(result.slot! >= 1 && result.slot! <= 3, `slot ${result.slot}`);
      assert.ok(result.startedAt! >= before && result.startedAt! <= Date.now());
    }
    const one = await runCommands(exits([0, 0, 0]), { maxWorkers: 1 });
    assert.deepEqual(one.results.map((r) => r.slot), [1, 1, 1]);
  });

  test("progress carries elapsed time and an ETA that reaches 0", async () => {
    const seen: CommandProgress[] = [];
    await runCommands(exits([0, 0, 0]), { maxWorkers: 1, onProgress: (p) => void seen.push(p) });
    assert.equal(seen.length, 3);
    assert.ok(seen.every((p) => p.elapsedMs >= 0));
    assert.ok(seen[0].etaMs !== undefined && seen[0].etaMs >= 0);
    assert.equal(seen[2].etaMs, 0);
  });
});
