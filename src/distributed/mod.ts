/**
 * The distributed strategy: the same `map` on many machines, through BullMQ on Redis. Start
 * `fanout worker --redis URL --root DIR` on each machine, then give the executor
 * `strategy: distributed({ connection: URL, root: DIR })`. Loaded only from this entry point,
 * so programs that never use it never load BullMQ; `bullmq` and `ioredis` are optional peer
 * dependencies (`npm install bullmq ioredis`). See docs/distributed.md.
 *
 * @example Chunks of a map on every worker serving the queue
 * ```ts ignore
 * import { ParallelExecutor, tasks } from "@fanout/fanout";
 * import { distributed } from "@fanout/fanout/distributed";
 *
 * const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
 * await using ex = new ParallelExecutor({
 *   strategy: distributed({ connection: "redis://127.0.0.1:6379", queue: "fanout" }),
 * });
 * console.log(await ex.map(work.fib, [30, 31, 32]));
 * ```
 *
 * @module
 */

export { distributed } from "./strategy.ts";
export type { DistributedStrategy } from "./strategy.ts";
export type { DistributedOptions } from "./_options.ts";
export { serve } from "./worker.ts";
export type { ServeOptions, Serving } from "./worker.ts";
export type { RedisConnection, WorkerInfo } from "./_redis.ts";
export {
  DistributedUnavailableError,
  PayloadTooLargeError,
  RedisConnectionError,
} from "./errors.ts";
