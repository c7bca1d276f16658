/**
 * `CE_PARALLEL=distributed`: the distributed strategy chosen from outside the program. The
 * executor is made synchronously and must not load the distributed code (nor BullMQ) unless a
 * call runs on it, so this stand-in imports `../distributed/strategy.ts` on its first chunk
 * and passes everything on to it.
 *
 * @module
 */

import type { ChunkRequest, ChunkResult, Strategy } from "./types.ts";
import { CHUNK_MS, DESCRIBE, FORGET_SHARED, WARMUP, WORKERS } from "./_builtin.ts";
import { importUrl } from "../worker/load_task.js";

/** What this file uses of the distributed strategy (kept out of its type graph on purpose). */
interface Distributed extends Strategy {
  readonly retried: number;
  [DESCRIBE](): string;
  [FORGET_SHARED](id: number): void;
  [WARMUP](): Promise<void>;
  [WORKERS](): number;
}

/**
 * How long an auto chunk should take on the distributed strategy: a job costs ~1.5–2.5 ms
 * between one chunk and the next on a worker (BullMQ's own cost, measured in
 * bench/distributed.ts), so a chunk carries ~50× that in work, and 20 ms tasks go five to a
 * job. The tail of a call is still shared out evenly (see `ChunkSizer`).
 */
export const DISTRIBUTED_CHUNK_MS = 100;

/** A queue name BullMQ and Redis keys take: letters, digits, `.`, `_`, `-`, at most 100. */
export const QUEUE_NAME: RegExp = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * A URL with its password replaced by `***`: what messages and reasons show of a connection.
 * Read with the URL parser (a password may hold `@`, `#`, `,`...); text that does not parse
 * loses everything between `//` and its last `@`.
 */
export function redactUrl(url: string): string {
  if (URL.canParse(url)) {
    const parsed = new URL(url);
    if (parsed.password === "") return url;
    parsed.password = "***";
    return parsed.href.replace("%2A%2A%2A", "***");
  }
  const at = url.lastIndexOf("@");
  const start = url.indexOf("//");
  return at > start && start >= 0 ? `${url.slice(0, start + 2)}***${url.slice(at)}` : url;
}

/** Chunks in flight before the real strategy has said how many workers serve. */
const UNKNOWN_CONCURRENCY = 8;

/**
 * The module's URL, named at run time and imported through `importUrl` (see load_task.js): a
 * literal `import()` would pull the distributed code, and BullMQ with it, into the module graph
 * of every program that loads or type-checks fanout. From the npm build this file is `.js`, and
 * so is the module.
 */
function moduleUrl(): string {
  const ext = import.meta.url.endsWith(".js") ? "js" : "ts";
  return new URL(`../distributed/strategy.${ext}`, import.meta.url).href;
}

/** The distributed strategy of `CE_PARALLEL=distributed,redis=URL,queue=NAME`, loaded on first use. */
export class DistributedFromEnv implements Strategy {
  readonly name = "distributed";
  readonly [CHUNK_MS] = DISTRIBUTED_CHUNK_MS;
  readonly #options: { connection?: string; queue?: string };
  #inner: Distributed | undefined;
  #loading: Promise<Distributed> | undefined;
  #closed = false;

  constructor(options: { connection?: string; queue?: string }) {
    this.#options = options;
  }

  get concurrency(): number {
    return this.#inner?.concurrency ?? UNKNOWN_CONCURRENCY;
  }

  get retried(): number {
    return this.#inner?.retried ?? 0;
  }

  #load(): Promise<Distributed> {
    return this.#loading ??= importUrl(moduleUrl()).then((module) => {
      const { distributed } = module as { distributed(options: object): Distributed };
      this.#inner = distributed(this.#options);
      // Closed while it loaded: the strategy is closed before it could connect.
      if (this.#closed) this.#inner.close().catch(() => {});
      return this.#inner;
    });
  }

  run(request: ChunkRequest): Promise<ChunkResult> {
    return this.#load().then((inner) => inner.run(request));
  }

  [DESCRIBE](): string {
    return this.#inner?.[DESCRIBE]() ??
      `distributed: CE_PARALLEL=distributed, queue "${this.#options.queue ?? "fanout"}" on ${
        redactUrl(this.#options.connection ?? "redis://127.0.0.1:6379")
      }, workers not asked yet`;
  }

  [FORGET_SHARED](id: number): void {
    this.#inner?.[FORGET_SHARED](id);
  }

  [WORKERS](): number {
    return this.#inner?.[WORKERS]() ?? 0;
  }

  async [WARMUP](): Promise<void> {
    const inner = await this.#load();
    if (!this.#closed) await inner[WARMUP]();
  }

  close(): Promise<void> {
    this.#closed = true;
    return this.#loading?.then((inner) => inner.close(), () => {}) ?? Promise.resolve();
  }

  terminate(): Promise<void> {
    this.#closed = true;
    return this.#loading?.then((inner) => inner.terminate(), () => {}) ?? Promise.resolve();
  }
}
