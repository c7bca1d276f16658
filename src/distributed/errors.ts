/**
 * The distributed strategy's own errors.
 *
 * @module
 */

/**
 * BullMQ (or its Redis client) is not installed where the distributed strategy or
 * `fanout worker` was loaded. They are optional peer dependencies of fanout, installed only by
 * those who run on many machines.
 */
export class DistributedUnavailableError extends Error {
  static {
    this.prototype.name = "DistributedUnavailableError";
  }
  /** The package that could not be loaded. */
  readonly module: string;

  /**
   * Creates the error.
   *
   * @param module The package that could not be loaded.
   * @param cause The import's own error.
   */
  constructor(module: string, cause: unknown) {
    super(
      `Expected the package \`${module}\` to be installed for the distributed strategy, got an ` +
        `import error (${cause instanceof Error ? cause.message : String(cause)}): ` +
        `npm install bullmq ioredis`,
      { cause },
    );
    this.module = module;
  }
}

/**
 * Redis could not be reached, or was lost, for longer than `connectTimeoutMs`; or the jobs of
 * a call vanished from it (a Redis restarted without its data). The call rejects with it;
 * the executor can still be closed.
 */
export class RedisConnectionError extends Error {
  static {
    this.prototype.name = "RedisConnectionError";
  }
  /** The connection, as a URL without its password. */
  readonly connection: string;

  /**
   * Creates the error.
   *
   * @param connection The connection, as a URL without its password.
   * @param message What happened.
   * @param cause The client's last error, when there was one.
   */
  constructor(connection: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.connection = connection;
  }
}

/**
 * A chunk's items or results are larger, encoded, than a job may carry
 * (`maxJobBytes`). Send smaller items (or `share()` what every item reads), make chunks
 * smaller with `chunkSize`, or write large outputs to storage both sides reach and return
 * where they are.
 */
export class PayloadTooLargeError extends RangeError {
  static {
    this.prototype.name = "PayloadTooLargeError";
  }
  /** The encoded size, in bytes. */
  readonly bytes: number;
  /** The limit, in bytes. */
  readonly limit: number;

  /**
   * Creates the error.
   *
   * @param what What was too large (`"the items of tasks 0–99"`).
   * @param bytes Its encoded size.
   * @param limit The limit.
   */
  constructor(what: string, bytes: number, limit: number) {
    super(
      `Expected ${what} to be at most ${limit} bytes encoded (maxJobBytes), got ${bytes}: ` +
        `share() what every item reads, lower chunkSize, or return where a large output was ` +
        `written instead of the output itself`,
    );
    this.bytes = bytes;
    this.limit = limit;
  }
}
