/**
 * A chunk's job, at both ends: the submitter writes it (its module named by its path inside the
 * root, its items encoded, the whole held to `maxJobBytes`); a worker refuses a job not of this
 * shape before it decodes or runs anything of it, and encodes the results under the same limit.
 * Apart from `strategy.ts` and `worker.ts` so that what one side writes and the other checks
 * reads in one place.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ChunkRequest } from "../strategy/types.ts";
import { MARK } from "../worker/shared_refs.js";
import { cloneFailure, encode } from "./_codec.ts";
import { PayloadTooLargeError } from "./errors.ts";
import type { ChunkJob } from "./_redis.ts";
import { insideRoot } from "./_redis.ts";
import { DEFAULT_MAX_JOB_BYTES, real } from "./_options.ts";

/** The submitter's side: its chunks as jobs. */
export class JobWriter {
  readonly #root: string;
  /** What a shared value's key starts with (the queue's share prefix and the submitter's id). */
  readonly #sharePrefix: string;
  readonly #maxJobBytes: number;
  /** Each task module's path inside the root, by URL. */
  readonly #modules = new Map<string, string>();

  constructor(root: string, sharePrefix: string, maxJobBytes: number) {
    this.#root = root;
    this.#sharePrefix = sharePrefix;
    this.#maxJobBytes = maxJobBytes;
  }

  /** The chunk as a job, its items encoded; the shared handles it holds go to `handles`. */
  job(request: ChunkRequest, handles: { readonly [MARK]: number }[]): Omit<ChunkJob, "shares"> {
    const { task, base, items } = request;
    if (task.kind !== "module") {
      throw new TypeError(
        "Expected a module task for the distributed strategy, got an inline function: workers " +
          "load only modules they have, never code sent through the queue; use " +
          'tasks(new URL("./work.ts", import.meta.url))',
      );
    }
    const module = this.#relative(task.url);
    let text: string;
    try {
      text = encode(items, (handle) => {
        handles.push(handle);
        return `${this.#sharePrefix}${handle[MARK]}`;
      });
    } catch (error) {
      throw cloneFailure(error, base, "input");
    }
    const bytes = Buffer.byteLength(text);
    if (bytes > this.#maxJobBytes) {
      throw new PayloadTooLargeError(
        `the items of tasks ${base}–${base + items.length - 1}`,
        bytes,
        this.#maxJobBytes,
      );
    }
    return {
      v: 1,
      module,
      name: task.name,
      base,
      seed: request.seed === undefined ? undefined : request.seed.toString(),
      timeoutMs: request.timeoutMs,
      concurrency: request.concurrency,
      items: text,
      maxBytes: this.#maxJobBytes === DEFAULT_MAX_JOB_BYTES ? undefined : this.#maxJobBytes,
    };
  }

  /** A module URL as a path inside the root, with `/` separators. */
  #relative(url: string): string {
    let relative = this.#modules.get(url);
    if (relative !== undefined) return relative;
    const file = url.startsWith("file:") ? fileURLToPath(url) : undefined;
    // Real paths on both sides: a root reached through a link (`/srv/app/current`) still holds
    // the modules that `import.meta.url` names by their real path.
    const full = file === undefined ? undefined : real(file);
    if (full === undefined || !insideRoot(this.#root, full)) {
      throw new TypeError(
        `Expected the task's module to be a file inside the distributed root ${this.#root}, got ${url}: ` +
          `set \`root\` to a folder that holds it (and start each worker with --root at the same ` +
          `folder of its own copy)`,
      );
    }
    relative = path.relative(this.#root, full).split(path.sep).join("/");
    this.#modules.set(url, relative);
    return relative;
  }
}

/** The results as text; a value that cannot travel fails its own task, by index. */
export function resultsText(values: unknown[], base: number, limit: number): string {
  let text: string;
  try {
    text = encode(values);
  } catch (error) {
    throw cloneFailure(error, base, "result");
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > limit) {
    throw new PayloadTooLargeError(
      `the results of tasks ${base}–${base + values.length - 1}`,
      bytes,
      limit,
    );
  }
  return text;
}

/**
 * Refuses a job that is not a fanout chunk of this protocol's shape (added by hand, or by
 * another program on the queue), before anything of it is decoded or run.
 */
export function checkJob(data: ChunkJob): void {
  const job = data as unknown as Record<string, unknown> | null;
  const wrong = (what: string): never => {
    throw new TypeError(`Expected a fanout chunk (protocol version 1), got a job whose ${what}`);
  };
  if (typeof job !== "object" || job === null) wrong("data is not an object");
  if (job!.v !== 1) wrong(`version is ${JSON.stringify(job!.v)}`);
  if (typeof job!.module !== "string" || typeof job!.name !== "string") wrong("task is not named");
  if (typeof job!.items !== "string") wrong("items are not text");
  if (!Number.isSafeInteger(job!.base) || (job!.base as number) < 0) wrong("base is not an index");
  if (job!.seed !== undefined && !(typeof job!.seed === "string" && /^\d{1,20}$/.test(job!.seed))) {
    wrong("seed is not a decimal integer");
  }
  const positive = (key: string, max: number): void => {
    const value = job![key];
    if (value !== undefined && !(typeof value === "number" && value > 0 && value <= max)) {
      wrong(`${key} is not a number from 1 to ${max}`);
    }
  };
  positive("timeoutMs", 2 ** 31 - 1);
  positive("concurrency", 65_536);
  positive("maxBytes", 2 ** 31 - 1);
  if (
    job!.shares !== undefined &&
    !(Array.isArray(job!.shares) && job!.shares.every((key) => typeof key === "string"))
  ) {
    wrong("shares are not a list of keys");
  }
}
