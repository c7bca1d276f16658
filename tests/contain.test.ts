/**
 * A task that runs on the calling thread (serial, and "auto" while it probes or chooses
 * serial) cannot end the program the way it would end a worker: its `process.exit()` is
 * refused, and an uncaught error or unhandled rejection while it runs fails it with
 * `WorkerCrashedError`. What is not a task's is left alone: the program's own exit, its own
 * listeners, and an uncaught error of its own still end it as before.
 *
 * Each case runs in a program of its own (fixtures/contain_parent.ts): `bun test` takes
 * uncaught errors for itself, ahead of the program's listeners, so this cannot be seen inside
 * the test runner there.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  forEachStrategy,
  programReport,
  programResult,
  runProgram,
  runtime,
  test,
} from "./_helpers.ts";

const PARENT = fileURLToPath(new URL("./fixtures/contain_parent.ts", import.meta.url));

describe("containment on the calling thread", () => {
  const kinds: { mode: string; what: RegExp; exitCode?: number }[] = [
    { mode: "exit", what: /it called exit\(3\)/, exitCode: 3 },
    { mode: "timer", what: /an uncaught error \(Error: boom from a timer\)/ },
    { mode: "rejection", what: /an unhandled rejection \(Error: nobody handles this rejection\)/ },
    ...(runtime === "deno"
      ? [{ mode: "deno-exit", what: /it called exit\(4\)/, exitCode: 4 }]
      : []),
  ];
  forEachStrategy(["auto", "serial"], (strategy) => {
    for (const { mode, what, exitCode } of kinds) {
      test(
        `${strategy}: a task that crashes with ${mode} on the calling thread fails with WorkerCrashedError, and the program lives on`,
        async () => {
          const result = await runProgram(PARENT, [strategy, mode]);
          const outcome = programResult(result, "fanout-contain-result ", "any") as Record<
            string,
            unknown
          >;
          assert.equal(outcome.name, "WorkerCrashedError", programReport(result));
          assert.equal(outcome.index, 2);
          assert.equal(outcome.exitCode, exitCode);
          assert.match(String(outcome.message), what);
          assert.match(String(outcome.message), /on the calling thread/);
          assert.deepEqual(outcome.after, [7, 8], "the executor keeps working");
          assert.equal(
            result.code,
            0,
            `the program ended with ${result.code}${programReport(result)}`,
          );
          assert.match(result.stdout, /^fanout-contain-done$/m);
        },
        60_000,
      );
    }
  });

  forEachStrategy(["auto", "serial"], (strategy) => {
    test(
      `${strategy}: an unhandled rejection noticed after its task returned is contained, with a warning`,
      async () => {
        const result = await runProgram(PARENT, [strategy, "late"]);
        assert.deepEqual(programResult(result, "fanout-contain-result "), {
          results: [0, 1, -2, 3],
          warnings: ["FANOUT_CONTAINED_LATE"],
        });
        assert.match(
          result.stderr,
          /(a task|tasks? [0-9–]+) ran on the calling thread and had already returned/,
        );
      },
      60_000,
    );
  });

  // Node shows a task's context in its error events: an error outside it is never a task's.
  // Deno (for a timer's throw) and Bun (for microtasks and rejections) lose it, and there an
  // error is pinned on the task when it is the only one running on the calling thread.
  const hostDuring =
    "the program's own uncaught error while a task runs on the calling thread reaches its listener";
  if (runtime === "node") {
    test(hostDuring, async () => {
      const result = await runProgram(PARENT, ["serial", "host-during"]);
      assert.deepEqual(programResult(result, "fanout-contain-result "), {
        seen: ["the program's own, during a task"],
        result: "slept",
      });
    }, 60_000);
  } else {
    const reason = `${runtime} does not show a task's context in its error events`;
    it(`${hostDuring} (skipped: ${reason})`, { skip: reason }, () => {});
  }

  test("a listener the program added with once() stays a once-listener", async () => {
    const result = await runProgram(PARENT, ["serial", "once"]);
    assert.equal(result.hung, false, programReport(result));
    assert.deepEqual(programResult(result, "fanout-contain-result ", "any"), ["first"]);
    assert.notEqual(result.code, 0, `the second error did not end it${programReport(result)}`);
    assert.match(result.stderr, /second/);
  }, 60_000);

  test(
    "the program's own process.exit() while a task runs on the calling thread still exits",
    async () => {
      const result = await runProgram(PARENT, ["serial", "host-exit"]);
      assert.equal(result.hung, false, programReport(result));
      assert.equal(result.code, 42, programReport(result));
    },
    60_000,
  );

  test("the program's own uncaught error reaches its own listener", async () => {
    const result = await runProgram(PARENT, ["serial", "host-listener"]);
    assert.deepEqual(programResult(result, "fanout-contain-result ", "any"), {
      seen: ["the program's own"],
    });
    assert.equal(result.code, 0, programReport(result));
  }, 60_000);

  test("the program's own uncaught error, with nobody listening, still ends it", async () => {
    const result = await runProgram(PARENT, ["serial", "stray"]);
    assert.equal(result.hung, false, programReport(result));
    assert.notEqual(result.code, 0, programReport(result));
    assert.match(result.stderr, /uncontained on purpose/);
    // Bun's own way is to report it, go on, and exit with 1 at the end; the others stop at once.
    if (runtime !== "bun") assert.doesNotMatch(result.stdout, /still alive/);
  }, 60_000);
});
