/**
 * The errors a job of `runCommands` carries in its result when a halt cut it short: a job that
 * never started, or one that was killed. A failure of the job itself (a non-zero exit, a
 * timeout, a command that could not start) is no error class here: its result says so.
 *
 * @module
 */

/**
 * A job that did not run to its end because an earlier failure halted the batch (`halt`):
 * {@linkcode JobSkippedError} for one that never started, {@linkcode JobKilledError} for one
 * that was killed. `haltedBy` is the index of the job whose failure did it.
 */
export class JobHaltedError extends Error {
  static {
    this.prototype.name = "JobHaltedError";
  }
  /** The job's position in the input. */
  readonly index: number;
  /** The position of the failed job that halted the batch. */
  readonly haltedBy: number;

  /**
   * Creates a halted-job error.
   *
   * @param index The job's position.
   * @param haltedBy The position of the job whose failure halted the batch.
   * @param message What happened.
   */
  constructor(index: number, haltedBy: number, message: string) {
    super(message);
    this.index = index;
    this.haltedBy = haltedBy;
  }
}

/**
 * A job was not started because an earlier failure halted the batch (`halt: "soon"` or
 * `"now"`). `haltedBy` is the index of the job whose failure did it.
 *
 * @example Telling the failure from the jobs it cut short
 * ```ts
 * import { JobSkippedError, runCommands } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * const batch = await runCommands([
 *   { cmd: ["sh", "-c", "exit 2"] },
 *   { cmd: ["sh", "-c", "echo never"] },
 * ], { maxWorkers: 1, halt: "soon" });
 * const [failed, skipped] = batch.results;
 * assert.equal(failed.exitCode, 2);
 * assert.ok(skipped.error instanceof JobSkippedError);
 * assert.equal(skipped.error.haltedBy, 0);
 * assert.equal(skipped.attempts, 0);
 * ```
 */
export class JobSkippedError extends JobHaltedError {
  static {
    this.prototype.name = "JobSkippedError";
  }
}

/**
 * A running job was killed because an earlier failure halted the batch with `halt: "now"`.
 * `haltedBy` is the index of the job whose failure did it.
 *
 * @example A failure kills the job running beside it
 * ```ts
 * import { JobKilledError, runCommands } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * const batch = await runCommands([
 *   { cmd: ["sleep", "30"] },
 *   { cmd: ["sh", "-c", "exit 1"] },
 * ], { maxWorkers: 2, halt: "now" });
 * const [killed] = batch.results;
 * assert.ok(killed.error instanceof JobKilledError);
 * assert.equal(killed.error.haltedBy, 1);
 * assert.equal(killed.signal, "SIGTERM");
 * ```
 */
export class JobKilledError extends JobHaltedError {
  static {
    this.prototype.name = "JobKilledError";
  }
}
