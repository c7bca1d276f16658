/**
 * After dispose, nothing is left running: a program that uses a threads (or processes)
 * executor and disposes it with `await using` exits by itself. Each case runs a child process of the same runtime.
 */

import { describe } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { detect } from "../src/runtime/mod.ts";
import { forEachStrategy, PROGRAM_WATCHDOG_MS, runProgram, test } from "./_helpers.ts";
import type { ProgramResult } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./fixtures/child.ts", import.meta.url));
/** How long a child may take before it counts as hung. Generous: it normally takes < 2 s. */
/** Runs the child program in `mode`. */
function runChild(mode: string, denoFlags = ["-A"]): Promise<ProgramResult> {
  return runProgram(CHILD, [mode], denoFlags);
}

function assertExitedCleanly(result: ProgramResult, expected: unknown): void {
  const report = `\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  assert.equal(
    result.hung,
    false,
    `the child did not exit by itself within ${PROGRAM_WATCHDOG_MS} ms after disposing its executor${report}`,
  );
  assert.equal(
    result.code,
    0,
    `the child exited with code ${result.code} (${result.signal})${report}`,
  );
  const line = result.stdout.split("\n").find((l) => l.startsWith("fanout-child-result "));
  assert.ok(line !== undefined, `the child printed no result${report}`);
  assert.deepEqual(JSON.parse(line.slice("fanout-child-result ".length)), expected);
  assert.match(
    result.stdout,
    /^fanout-child-disposed$/m,
    `the child did not finish disposing${report}`,
  );
}

describe("process exit", () => {
  test("a program that disposes its executor with `await using` exits by itself", async () => {
    assertExitedCleanly(await runChild("map"), [1, 4, 9, 16, 25, 36]);
  }, 60_000);

  test("a program exits by itself after aborting tasks that spin synchronously", async () => {
    assertExitedCleanly(await runChild("abort-spin"), "abort from child");
  }, 60_000);

  test(
    "a program that disposes its processes executor with `await using` exits by itself",
    async () => {
      assertExitedCleanly(await runChild("processes-map"), [1, 4, 9, 16, 25, 36]);
    },
    60_000,
  );

  test(
    "a program exits by itself after aborting tasks that spin synchronously in child processes",
    async () => {
      assertExitedCleanly(await runChild("processes-abort-spin"), "abort from child");
    },
    60_000,
  );

  test("a program exits by itself after one of its workers crashed", async () => {
    assertExitedCleanly(await runChild("crash"), ["crashed", [9]]);
  }, 60_000);

  const FORGOTTEN = fileURLToPath(new URL("./fixtures/forgotten.ts", import.meta.url));
  // Deno's Web Workers have no unref(): an idle thread keeps a Deno program alive.
  const cannotUnref = (strategy: string): string | undefined =>
    detect().name === "deno" && strategy !== "processes"
      ? "Deno's Web Workers cannot be unref'd (documented in the guide)"
      : undefined;
  forEachStrategy(["threads", "processes", "auto"], { skip: cannotUnref }, (strategy, test) => {
    const name = `a program that forgets to close its ${strategy} executor still exits by itself`;
    test(name, async () => {
      const result = await runProgram(FORGOTTEN, [strategy]);
      const report = `\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
      assert.equal(
        result.hung,
        false,
        `it was still running after ${PROGRAM_WATCHDOG_MS} ms${report}`,
      );
      assert.equal(result.code, 0, report);
      assert.match(result.stdout, /^fanout-forgotten (6|400)$/m, report);
    }, 60_000);
  });

  if (detect().name === "deno") {
    test(
      "a worker that cannot start rejects with WorkerStartError (Deno without --allow-read)",
      async () => {
        // Static imports need no permission, but a worker's script does: every thread fails to
        // start. (Deno's node:child_process grants -A to a `deno run` that has no permission
        // flag at all, hence the harmless --allow-env.)
        assertExitedCleanly(
          await runChild("start-error", ["--no-prompt", "--allow-env"]),
          "WorkerStartError",
        );
      },
      60_000,
    );

    test(
      "with forceSerialOnFailure, a pool that cannot start falls back to serial and is not tried again",
      async () => {
        assertExitedCleanly(
          await runChild("start-error-fallback", ["--no-prompt", "--allow-env"]),
          [
            [1, 4, 9],
            [16],
            ["fallback from threads", "map on serial", "map on serial"],
            1,
          ],
        );
      },
      60_000,
    );
  }
});
