/**
 * Baselines written directly against each runtime's raw worker API, with none of the pool's
 * machinery: the global `Worker` on Deno and Bun, `node:worker_threads` on Node (the same
 * transports the pool uses). The scenarios report the pool's figures as ratios to these,
 * measured in the same process. Three bare workers: `_bare_worker.js` (`n + 1`),
 * `_bare_cpu_worker.js` (`work.spin`) and `_bare_sum_worker.ts` (range sums over a shared
 * array, the ceiling of the shared-payload scenario).
 *
 * @module
 */

import { Worker as NodeWorker } from "node:worker_threads";

/** A raw worker: the runtime's own API, with one reply handler and nothing else. */
export interface RawWorker<In = unknown, Out = unknown> {
  /** Posts one message. */
  post(message: In): void;
  /** Sets the one reply handler (replacing the previous one). */
  onReply(handler: (message: Out) => void): void;
  /** Stops the worker; resolves when the runtime says it is gone (or cannot say more). */
  terminate(): Promise<void>;
}

/** One bare worker running `_bare_worker.js`, which answers each `n` with `n + 1`. */
export type BareWorker = RawWorker<number, number>;

const WORKER_URL = new URL("./_bare_worker.js", import.meta.url);
const CPU_WORKER_URL = new URL("./_bare_cpu_worker.js", import.meta.url);
const SUM_WORKER_URL = new URL("./_bare_sum_worker.ts", import.meta.url);
const hasWebWorker = typeof (globalThis as { Worker?: unknown }).Worker === "function";

/**
 * Starts a bare worker and waits for its ready message (messages posted before the worker's
 * handler exists are lost on Deno and Bun).
 *
 * @param kind `"inc"` answers `n` with `n + 1`; `"spin"` answers `n` with `work.spin(n)`.
 * @returns The worker, ready for messages.
 */
export function startBareWorker(kind: "inc" | "spin" = "inc"): Promise<BareWorker> {
  return startRawWorker<number, number>(kind === "inc" ? WORKER_URL : CPU_WORKER_URL);
}

/**
 * Starts the worker module at `url` on the global `Worker` (Deno, Bun) or
 * `node:worker_threads` (Node), and waits for its first message, which says it is ready.
 */
export function startRawWorker<In, Out>(url: URL): Promise<RawWorker<In, Out>> {
  return new Promise((resolve, reject) => {
    let handler: (message: Out) => void = () => {};
    let ready = false;
    const receive = (data: unknown): void => {
      if (ready) {
        handler(data as Out);
        return;
      }
      ready = true;
      resolve(raw);
    };
    const onReply = (h: (message: Out) => void): void => {
      handler = h;
    };
    let raw: RawWorker<In, Out>;
    if (hasWebWorker) {
      const worker = new Worker(url, { type: "module" });
      worker.onmessage = (event: MessageEvent) => receive(event.data);
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        reject(new Error(`bare worker ${url.pathname} failed: ${event.message}`));
      };
      raw = {
        post: (message) => worker.postMessage(message),
        onReply,
        terminate: () => {
          worker.terminate();
          return Promise.resolve();
        },
      };
    } else {
      const worker = new NodeWorker(url);
      worker.on("message", receive);
      worker.on("error", reject);
      raw = {
        post: (message) => worker.postMessage(message),
        onReply,
        terminate: async () => {
          await worker.terminate();
        },
      };
    }
  });
}

/** Starts `count` bare workers at once. */
export function startBarePool(
  count: number,
  kind: "inc" | "spin" = "inc",
): Promise<BareWorker[]> {
  return Promise.all(Array.from({ length: count }, () => startBareWorker(kind)));
}

/** Terminates bare workers. */
export async function stopBarePool(workers: BareWorker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.terminate()));
}

/**
 * The bare pool's `map`: posts every item up front, one message per item, round-robin over
 * the workers, and collects the replies. Each worker answers in the order it received, so
 * the k-th reply from worker `w` belongs to item `w + k * workers.length`.
 *
 * @param workers The bare pool.
 * @param items The numbers to send.
 * @returns Each item plus one, in input order.
 */
export function bareMap(workers: BareWorker[], items: readonly number[]): Promise<number[]> {
  if (items.length === 0) return Promise.resolve([]);
  return new Promise((resolve) => {
    const out = new Array<number>(items.length);
    const stride = workers.length;
    let left = items.length;
    workers.forEach((worker, w) => {
      let next = w;
      worker.onReply((value) => {
        out[next] = value;
        next += stride;
        if (--left === 0) resolve(out);
      });
    });
    for (let i = 0; i < items.length; i++) workers[i % stride].post(items[i]);
  });
}

/**
 * One raw round trip: posts `n`, resolves with the reply.
 *
 * @param worker A bare worker.
 * @param n The number to send.
 * @returns `n + 1`, from the worker.
 */
export function barePing(worker: BareWorker, n: number): Promise<number> {
  return new Promise((resolve) => {
    worker.onReply(resolve);
    worker.post(n);
  });
}

/**
 * The simplest pool that keeps every worker busy: one item in flight per worker, the next
 * one posted as soon as a reply arrives. The CPU baseline: what two raw workers achieve.
 *
 * @param workers Bare workers started with `"spin"`.
 * @param items The numbers to send.
 * @returns The replies, in input order.
 */
export function bareRunEach(workers: BareWorker[], items: readonly number[]): Promise<number[]> {
  if (items.length === 0) return Promise.resolve([]);
  return new Promise((resolve) => {
    const out = new Array<number>(items.length);
    let next = 0;
    let left = items.length;
    for (const worker of workers) {
      let at = -1;
      const send = (): void => {
        if (next >= items.length) return;
        at = next++;
        worker.post(items[at]);
      };
      worker.onReply((value) => {
        out[at] = value;
        if (--left === 0) resolve(out);
        else send();
      });
      send();
    }
  });
}

/** A bare pool of raw workers that all hold the same shared `Float64Array`. */
export interface BareSumPool {
  /**
   * Sums the ranges: range `k` goes to worker `k % workers`, each worker gets its ranges in
   * one message and answers once: the least messaging any pool can do.
   *
   * @returns The sums, in range order.
   */
  sum(ranges: readonly { start: number; end: number }[]): Promise<number[]>;
  /** Milliseconds the workers spent summing in the last `sum`, added up. */
  readonly lastBusyMs: number;
  /** Terminates the workers. */
  stop(): Promise<void>;
}

/**
 * Starts `count` raw `_bare_sum_worker.ts` workers and hands each the array (which must be
 * over a `SharedArrayBuffer`, so that posting it copies nothing).
 */
export async function startBareSumPool(count: number, data: Float64Array): Promise<BareSumPool> {
  if (!(data.buffer instanceof SharedArrayBuffer)) {
    throw new TypeError("Expected the bare pool's array to be over a SharedArrayBuffer");
  }
  const workers = await Promise.all(
    Array.from({ length: count }, () => startRawWorker(SUM_WORKER_URL)),
  );
  const ask = (worker: RawWorker, message: unknown): Promise<unknown> =>
    new Promise((resolve) => {
      worker.onReply(resolve);
      worker.post(message);
    });
  await Promise.all(workers.map((w) => ask(w, data)));
  let busy = 0;
  return {
    get lastBusyMs() {
      return busy;
    },
    async sum(ranges) {
      const mine = workers.map((_, w) => ranges.filter((_, k) => k % workers.length === w));
      const replies = await Promise.all(
        workers.map((worker, w) => ask(worker, mine[w].flatMap((r) => [r.start, r.end]))),
      );
      const out = new Array<number>(ranges.length);
      busy = 0;
      replies.forEach((reply, w) => {
        const { sums, ms } = reply as { sums: number[]; ms: number };
        sums.forEach((s, j) => (out[w + j * workers.length] = s));
        busy += ms;
      });
      return out;
    },
    async stop() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** What a `Deno.bench` body is given, as far as {@linkcode barePoolBench} uses it. */
export interface BenchTimer {
  start(): void;
  end(): void;
}

/**
 * A `Deno.bench` body that times `run` on a fresh pool of `count` bare workers, after one
 * untimed run, each run's values passed to `check`; the pool is stopped at the end.
 */
export function barePoolBench(
  count: number,
  run: (workers: BareWorker[]) => Promise<number[]>,
  check: (values: number[]) => void,
): (b: BenchTimer) => Promise<void> {
  return async (b) => {
    const workers = await startBarePool(count);
    try {
      check(await run(workers));
      b.start();
      const values = await run(workers);
      b.end();
      check(values);
    } finally {
      await stopBarePool(workers);
    }
  };
}
