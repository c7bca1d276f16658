/**
 * The distributed strategy's figures, in one run on the runtime that runs this file, against
 * a real `redis-server` on 127.0.0.1 (started here, at a free port) and real `fanout worker`
 * processes of the same runtime (tests/_redis.ts), the tasks in
 * tests/fixtures/distributed_work.ts:
 *
 * - 1. 64 × 20 ms CPU tasks (`spin`): 2 `fanout worker`s of 1 slot each (threads) through
 *   Redis, and `strategy: "processes"` with `maxWorkers: 2`, each as a speedup over a serial
 *   loop of the same tasks; the ratio of the two speedups (target ≥ 0.9). Both warmed first.
 * - 2. 100,000 trivial items (`inc`) through `map` on the same workers, default chunking, warm
 *   executor: items/s (target ≥ 100,000).
 * - 3. one `submit(inc)` round trip on the warm queue, beside BullMQ's own: `Queue.add` +
 *   `job.waitUntilFinished(queueEvents)` against 2 plain BullMQ `Worker`s (this script, run
 *   with `--plain-bullmq-worker`, in processes of their own as `fanout worker`s are) whose
 *   processor returns `data.n + 1`, on the same Redis, another queue.
 * - 4. a worker SIGKILLed mid-call: 2 fresh workers with `lockMs: 1000`, a map of 16 ×
 *   `markThenWait` (200 ms each, `chunkSize: 1`); once the victim started a chunk it is killed.
 *   Whether the call completed, with each index's result exactly once; the time from the kill
 *   to the call's end; and `retries` from the `parallel_execution` event.
 *
 * The two sides of each ratio alternate, round by round, and each figure is a median (the
 * machine is shared and noisy); the notes give the paired (same-round) ratios and how much CPU
 * others used meanwhile, counting the workers, Redis and the pools as this run's. Everything
 * started here is stopped in `finally` blocks. Usage: `node bench/distributed.ts` (or
 * `bun bench/distributed.ts`, `deno run -A bench/distributed.ts`) `[--quick]`.
 *
 * @module
 */

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import { tasks } from "../mod.ts";
import type { ParallelExecutor, TelemetryEvent } from "../mod.ts";
import { distributed } from "../src/distributed/mod.ts";
import { detect } from "../src/runtime/mod.ts";
import { queueName, redisMissing, startRedis, startWorker } from "../tests/_redis.ts";
import type { RedisServer, WorkerProcess } from "../tests/_redis.ts";
import { spin } from "../tests/fixtures/distributed_work.ts";
import type { CpuSample, Figure, Report } from "./_measure.ts";
import {
  benchLog,
  bounded,
  expectValues,
  fail,
  figure,
  formatReport,
  load,
  mean,
  median,
  noise,
  paired,
  readText,
  timeAsync,
  timeEach,
  timeSync,
  withWatchdog,
} from "./_measure.ts";

const QUICK = process.argv.includes("--quick");
const SIZES = {
  /** 1: tasks per call, their length, timed rounds of each side, serial loops. */
  cpuTasks: 64,
  spinMs: 20,
  cpuRounds: QUICK ? 3 : 7,
  serialReps: QUICK ? 1 : 3,
  /** 2: items per map, timed maps. */
  items: 100_000,
  itemReps: QUICK ? 3 : 7,
  /** 3: rounds of sequential submits of each side, submits per round, warm-up submits. */
  tripRounds: QUICK ? 4 : 10,
  tripsPerRound: QUICK ? 50 : 100,
  tripWarmup: 50,
  /** 4: runs (fresh workers each), items, ms per item. */
  killRuns: QUICK ? 1 : 3,
  killItems: 16,
  killMs: 200,
};
/** Longest one call (or round of calls) may take: a bench reports a hang, it does not hang. */
const WATCHDOG_MS = 60_000;
/** Longest an executor's `close()` may take. */
const CLOSE_MS = 10_000;

const ROOT = fileURLToPath(new URL("../tests/fixtures/", import.meta.url));
const work = tasks<typeof import("../tests/fixtures/distributed_work.ts")>(
  new URL("../tests/fixtures/distributed_work.ts", import.meta.url),
);
const SELF = fileURLToPath(import.meta.url);
const PLAIN_FLAG = "--plain-bullmq-worker";
const log = benchLog("distributed");

// ---------------------------------------------------------------------------------------------
// The plain BullMQ worker: this script, run with --plain-bullmq-worker URL QUEUE

/** Redis's address as BullMQ (ioredis) takes it. */
function connectionOf(url: string): { host: string; port: number; maxRetriesPerRequest: null } {
  const { hostname, port } = new URL(url);
  return { host: hostname, port: Number(port), maxRetriesPerRequest: null };
}

/** Serves `queue` with a plain BullMQ worker (n → n + 1) until SIGTERM; "ready" on stdout. */
async function plainWorker(url: string, queue: string): Promise<void> {
  const worker = new Worker<{ n: number }, number>(
    queue,
    (job) => Promise.resolve(job.data.n + 1),
    { connection: connectionOf(url), concurrency: 1 },
  );
  worker.on("error", (error) => console.error(`plain BullMQ worker: ${error}`));
  const stop = new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
  await worker.waitUntilReady();
  process.stdout.write("ready\n");
  await stop;
  await worker.close();
  process.exit(0);
}

/** A plain BullMQ worker process. */
interface PlainWorker {
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts this script as a plain BullMQ worker of `queue`, and waits for its "ready". */
async function startPlainWorker(url: string, queue: string): Promise<PlainWorker> {
  const { name, execPath } = detect();
  const child = spawn(
    execPath,
    [...(name === "deno" ? ["run", "-A"] : []), SELF, PLAIN_FLAG, url, queue],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const stop = (): Promise<void> => stopChild(child);
  try {
    await withWatchdog(
      new Promise<void>((resolve, reject) => {
        let seen = "";
        child.stdout!.setEncoding("utf8").on("data", (text: string) => {
          if ((seen += text).includes("ready\n")) resolve();
        });
        child.on("error", reject);
        child.on("exit", (code) => reject(new Error(`the plain BullMQ worker exited (${code})`)));
      }),
      20_000,
      "the plain BullMQ worker's start",
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid!, stop };
}

/** SIGTERM, SIGKILL 5 s later; resolves once the child has exited. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

// ---------------------------------------------------------------------------------------------
// The machine's load, the processes started here counted as this run's

/** Pids whose CPU is this run's: workers, plain workers, redis-server. */
const tracked = new Set<number>();

/** `load()`, with the CPU of the tracked processes (not children of a pool) as this run's. */
function sample(): CpuSample | undefined {
  const s = load();
  if (s === undefined) return undefined;
  let extra = 0;
  for (const pid of tracked) {
    try {
      const stat = readText(`/proc/${pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      extra += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone (and reaped: its CPU is in this process's children's now).
    }
  }
  return { ...s, self: s.self + extra };
}

/** redis-server's pid, from `INFO server`. */
async function redisPid(url: string): Promise<number | undefined> {
  const client = new Redis(url);
  try {
    const info = await client.info("server");
    const pid = /process_id:(\d+)/.exec(info)?.[1];
    return pid === undefined ? undefined : Number(pid);
  } finally {
    client.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// The parts

interface PartResult {
  figures: Figure[];
  notes: string[];
}

/** Starts `count` `fanout worker`s of 1 slot on `queue`, tracked for the load notes. */
async function startWorkers(
  redis: RedisServer,
  queue: string,
  count: number,
  lockMs?: number,
): Promise<WorkerProcess[]> {
  const started = await Promise.allSettled(
    Array.from(
      { length: count },
      () => startWorker({ redis: redis.url, queue, root: ROOT, slots: 1, lockMs }),
    ),
  );
  const workers = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = started.find((s) => s.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(workers.map((w) => w.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  for (const w of workers) tracked.add(w.pid);
  return workers;
}

/** 1: 64 × 20 ms on 2 workers through Redis against 2 processes, as speedups. */
async function cpuPart(dex: ParallelExecutor): Promise<PartResult> {
  await using processes = bounded(
    { strategy: "processes", maxWorkers: 2 },
    CLOSE_MS,
    "the processes executor",
  );
  const pex = processes.ex;
  const items = Array.from({ length: SIZES.cpuTasks }, () => SIZES.spinMs);
  const expected = items.map(() => SIZES.spinMs);
  const run = async (ex: ParallelExecutor, what: string): Promise<number> => {
    let values: number[] = [];
    const ms = await timeAsync(async () => {
      values = await withWatchdog(ex.map(work.spin, items), WATCHDOG_MS, what);
    });
    expectValues(values, expected, what);
    return ms;
  };
  // Warm: processes started, modules loaded, the task's time per item known to both.
  await run(dex, "distributed warm-up");
  await run(pex, "processes warm-up");
  const serial: number[] = [];
  const dist: number[] = [];
  const proc: number[] = [];
  for (let round = 0; round < SIZES.cpuRounds; round++) {
    if (round < SIZES.serialReps) {
      serial.push(timeSync(() => {
        for (const ms of items) spin(ms);
      }));
    }
    const sides = [
      () => run(dex, "distributed map").then((ms) => dist.push(ms)),
      () => run(pex, "processes map").then((ms) => proc.push(ms)),
    ];
    if (round % 2 === 1) sides.reverse();
    for (const side of sides) await side();
    log(
      `1: round ${round}: distributed ${dist.at(-1)!.toFixed(0)} ms, processes ${
        proc.at(-1)!.toFixed(0)
      } ms`,
    );
  }
  const loop = median(serial);
  const d = median(dist);
  const p = median(proc);
  const base = { name: "serial loop", value: loop, unit: "ms" };
  const what = `${SIZES.cpuTasks} × ${SIZES.spinMs} ms CPU`;
  return {
    figures: [
      figure({
        part: "1",
        name: `${what}, 2 fanout workers × 1 slot (threads) via Redis`,
        value: d,
        unit: "ms",
        baseline: base,
        ratio: loop / d,
        ratioLabel: "speedup",
        note: `median of ${dist.length}: ${dist.map((ms) => ms.toFixed(0)).join(", ")} ms`,
      }),
      figure({
        part: "1",
        name: `${what}, processes, maxWorkers 2`,
        value: p,
        unit: "ms",
        baseline: base,
        ratio: loop / p,
        ratioLabel: "speedup",
        note: `median of ${proc.length}: ${proc.map((ms) => ms.toFixed(0)).join(", ")} ms`,
      }),
      figure({
        part: "1",
        name: "distributed speedup ÷ processes speedup",
        value: d,
        unit: "ms",
        baseline: { name: "processes", value: p, unit: "ms" },
        ratio: p / d,
        ratioLabel: "of processes'",
        target: { on: "ratio", op: ">=", value: 0.9, label: "≥ 0.9×" },
        note: paired(proc.map((ms, k) => ms / dist[k])),
      }),
    ],
    notes: [`1: serial loop ${serial.map((ms) => ms.toFixed(0)).join(", ")} ms`],
  };
}

/** 2: 100,000 trivial items through `map`, default chunking, on the warm executor. */
async function itemsPart(dex: ParallelExecutor): Promise<PartResult> {
  const items = Array.from({ length: SIZES.items }, (_, i) => i);
  const expected = items.map((i) => i + 1);
  const times: number[] = [];
  const chunks: number[] = [];
  for (let rep = -1; rep < SIZES.itemReps; rep++) {
    const before = dex.stats().chunks;
    let values: number[] = [];
    const ms = await timeAsync(async () => {
      values = await withWatchdog(dex.map(work.inc, items), WATCHDOG_MS, "the map of inc");
    });
    expectValues(values, expected, "map of inc");
    if (rep < 0) continue; // The warm-up: the task's time per item, unknown until now.
    times.push(ms);
    chunks.push(dex.stats().chunks - before);
  }
  const ms = median(times);
  return {
    figures: [figure({
      part: "2",
      name: `${SIZES.items.toLocaleString("en-US")} × inc through map, distributed (2 × 1 slot)`,
      value: (SIZES.items * 1000) / ms,
      unit: "items/s",
      target: { on: "value", op: ">=", value: 100_000, label: "≥ 100,000 items/s" },
      note: `median of ${times.length} maps: ${
        times.map((t) => t.toFixed(0)).join(", ")
      } ms; chunks per map ${chunks.join(", ")}`,
    })],
    notes: [],
  };
}

/** 3: one `submit` round trip, against BullMQ's add → waitUntilFinished, alternating. */
async function tripPart(redis: RedisServer, dex: ParallelExecutor): Promise<PartResult> {
  const queue = queueName("bench-plain");
  const plain: PlainWorker[] = [];
  const connection = connectionOf(redis.url);
  const q = new Queue<{ n: number }, number>(queue, { connection });
  const events = new QueueEvents(queue, { connection });
  try {
    const started = await Promise.allSettled(
      [0, 1].map(() => startPlainWorker(redis.url, queue)),
    );
    for (const s of started) {
      if (s.status === "fulfilled") {
        plain.push(s.value);
        tracked.add(s.value.pid);
      }
    }
    const failed = started.find((s) => s.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    await Promise.all([q.waitUntilReady(), events.waitUntilReady()]);
    // fanout's own job options (src/distributed/strategy.ts), so that only fanout differs.
    const jobOptions = { removeOnComplete: { age: 600 }, removeOnFail: { age: 600 } };
    const fanoutTrips = (count: number): Promise<number[]> =>
      timeEach(count, (i) => dex.submit(work.inc, i), (v, i) => {
        if (v !== i + 1) fail(`submit(inc, ${i}) gave ${v}`);
      });
    const bullTrips = (count: number): Promise<number[]> =>
      timeEach(
        count,
        async (i) => (await q.add("inc", { n: i }, jobOptions)).waitUntilFinished(events),
        (v, i) => {
          if (v !== i + 1) fail(`BullMQ add(${i}) gave ${v}`);
        },
      );
    await withWatchdog(fanoutTrips(SIZES.tripWarmup), WATCHDOG_MS, "fanout's warm-up submits");
    await withWatchdog(bullTrips(SIZES.tripWarmup), WATCHDOG_MS, "BullMQ's warm-up adds");
    const fanout: number[] = [];
    const bull: number[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < SIZES.tripRounds; round++) {
      let f: number[] = [];
      let b: number[] = [];
      const sides = [
        async () => (f = await fanoutTrips(SIZES.tripsPerRound)),
        async () => (b = await bullTrips(SIZES.tripsPerRound)),
      ];
      if (round % 2 === 1) sides.reverse();
      for (const side of sides) await withWatchdog(side(), WATCHDOG_MS, "a round of trips");
      fanout.push(...f);
      bull.push(...b);
      ratios.push(median(f) / median(b));
    }
    const n = fanout.length;
    return {
      figures: [figure({
        part: "3",
        name: "one submit(inc) round trip, warm queue",
        value: median(fanout),
        unit: "µs",
        baseline: { name: "BullMQ add → waitUntilFinished", value: median(bull), unit: "µs" },
        ratio: median(fanout) / median(bull),
        ratioLabel: "of BullMQ's",
        note: `medians of ${n} sequential calls each (${SIZES.tripRounds} alternating rounds); ` +
          `means ${mean(fanout).toFixed(0)} vs ${mean(bull).toFixed(0)} µs; ${
            paired(ratios, "per-round ratios")
          }`,
      })],
      notes: [],
    };
  } finally {
    await Promise.all(plain.map((p) => p.stop()));
    await events.close().catch(() => {});
    await q.close().catch(() => {});
  }
}

/** Polls until `ready()` says so: for what another process does (a file it writes). */
async function until(ready: () => boolean, what: string, maxMs = 20_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What one run of part 4 saw. */
interface KillRun {
  completed: boolean;
  error?: string;
  /** Whether `results[k].i === k` for every k, each index once. */
  once: boolean;
  killToEndMs: number;
  totalMs: number;
  retries: number | undefined;
  /** Tasks started more than once (the killed chunk's, run again elsewhere). */
  rerun: number;
  /** Results the survivor gave. */
  bySurvivor: number;
  /** Tasks the survivor had not started when the victim was killed: its work left, at least. */
  leftAtKill: number;
  /** From the kill to the killed chunk's task starting again on the survivor (its marker). */
  restartMs: number[];
}

/** 4, once: a worker SIGKILLed as soon as it runs a chunk of a map. */
async function killRun(redis: RedisServer): Promise<KillRun> {
  const queue = queueName("bench-kill");
  const dir = mkdtempSync(join(tmpdir(), "fanout-bench-dist-"));
  try {
    const workers = await startWorkers(redis, queue, 2, 1000);
    try {
      const events: TelemetryEvent[] = [];
      await using bench = bounded(
        {
          strategy: distributed({ connection: redis.url, queue, root: ROOT }),
          onEvent: (event) => events.push(event),
        },
        CLOSE_MS,
        "the executor of part 4",
      );
      const ex = bench.ex;
      await ex.warmup();
      const [victim, survivor] = workers;
      const items = Array.from({ length: SIZES.killItems }, (_, i) => ({
        dir,
        i,
        ms: SIZES.killMs,
      }));
      const started = performance.now();
      const running = ex.map(work.markThenWait, items, { chunkSize: 1 });
      running.catch(() => {}); // Handled below: this only keeps it from being "unhandled".
      await until(
        () => readdirSync(dir).some((name) => name.startsWith(`started-${victim.pid}-`)),
        "the victim to start a chunk",
      );
      victim.kill("SIGKILL");
      const killed = performance.now();
      const killedAt = Date.now();
      const survivorStarts = readdirSync(dir).filter((name) =>
        name.startsWith(`started-${survivor.pid}-`)
      ).length;
      let results: { i: number; pid: number }[] = [];
      let error: string | undefined;
      try {
        results = await withWatchdog(running, WATCHDOG_MS, "the map with a worker killed");
      } catch (e) {
        error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      }
      const ended = performance.now();
      const seen = new Set<number>();
      let once = error === undefined && results.length === items.length;
      for (let k = 0; k < results.length; k++) {
        if (results[k].i !== k || seen.has(results[k].i)) once = false;
        seen.add(results[k].i);
      }
      const starts = new Map<number, number>();
      const markers = readdirSync(dir);
      for (const name of markers) {
        const i = Number(name.split("-")[2]);
        starts.set(i, (starts.get(i) ?? 0) + 1);
      }
      const restartMs = markers.filter((name) => {
        const [, pid, i] = name.split("-");
        return Number(pid) === survivor.pid && markers.includes(`started-${victim.pid}-${i}`);
      }).map((name) => statSync(join(dir, name)).mtimeMs - killedAt);
      const summary = events.find((event) => event.type === "parallel_execution");
      return {
        completed: error === undefined,
        error,
        once,
        killToEndMs: ended - killed,
        totalMs: ended - started,
        retries: summary?.type === "parallel_execution" ? summary.retries : undefined,
        rerun: [...starts.values()].filter((n) => n > 1).length,
        bySurvivor: results.filter((r) => r.pid === survivor.pid).length,
        leftAtKill: items.length - survivorStarts,
        restartMs,
      };
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 4: {@linkcode killRun}, `killRuns` times. */
async function killPart(redis: RedisServer): Promise<PartResult> {
  const runs: KillRun[] = [];
  for (let k = 0; k < SIZES.killRuns; k++) {
    const run = await killRun(redis);
    log(`4: run ${k}: ${JSON.stringify(run)}`);
    runs.push(run);
  }
  const n = runs.length;
  const what = "SIGKILL mid-map";
  const retries = runs.map((r) => r.retries ?? NaN);
  return {
    figures: [
      figure({
        part: "4",
        name: `${what}: calls completed`,
        value: runs.filter((r) => r.completed).length,
        unit: "count",
        target: { on: "value", op: "==", value: n, label: `all ${n}` },
        ...(runs.some((r) => r.error)
          ? { note: runs.flatMap((r) => r.error ?? []).join("; ") }
          : {}),
      }),
      figure({
        part: "4",
        name: `${what}: calls with each index's result once`,
        value: runs.filter((r) => r.once).length,
        unit: "count",
        target: { on: "value", op: "==", value: n, label: `all ${n}` },
        note: `results by the survivor: ${
          runs.map((r) => r.bySurvivor).join(", ")
        } of ${SIZES.killItems}; tasks started twice (at least once delivery): ${
          runs.map((r) => r.rerun).join(", ")
        }`,
      }),
      figure({
        part: "4",
        name: `${what}: kill → the call's end`,
        value: median(runs.map((r) => r.killToEndMs)),
        unit: "ms",
        note: `${n === 1 ? "one run" : `median of ${n}`}: ${
          runs.map((r) => r.killToEndMs.toFixed(0)).join(", ")
        } ms; whole call ${
          runs.map((r) => r.totalMs.toFixed(0)).join(", ")
        } ms; tasks the ` +
          `survivor had not started at the kill ${
            runs.map((r) => `${r.leftAtKill} (≥ ${r.leftAtKill * SIZES.killMs} ms)`).join(", ")
          }; the killed chunk's task started again on the survivor ${
            runs.map((r) => r.restartMs.map((ms) => `${ms.toFixed(0)} ms`).join(" and ") || "never")
              .join(", ")
          } after the kill`,
      }),
      figure({
        part: "4",
        name: `${what}: retries (parallel_execution)`,
        value: Math.min(...retries),
        unit: "count",
        target: { on: "value", op: ">=", value: 1, label: "≥ 1" },
        note: `per run: ${retries.join(", ")}`,
      }),
    ],
    notes: [
      `4: each run: 2 fresh fanout workers × 1 slot, lockMs 1000; a map of ${SIZES.killItems} × ` +
      `markThenWait (${SIZES.killMs} ms), chunkSize 1; one worker SIGKILLed once it started a chunk`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// The run

/** Runs a part, noting its time and the machine's load; a part that throws is a FAILED row. */
async function part(
  id: string,
  report: Report,
  measure: () => Promise<PartResult>,
): Promise<void> {
  const started = performance.now();
  const before = sample();
  log(`part ${id}`);
  try {
    const { figures, notes } = await measure();
    report.figures.push(...figures);
    report.notes.push(...notes);
  } catch (error) {
    report.figures.push({
      part: id,
      name: "FAILED",
      value: NaN,
      unit: "count",
      met: false,
      note: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
    log(`part ${id} failed: ${error instanceof Error ? error.stack : error}`);
  }
  const took = `${((performance.now() - started) / 1000).toFixed(1)} s`;
  report.notes.push(`${id}: took ${took}; ${noise(before, sample())}`);
}

async function main(): Promise<void> {
  const missing = redisMissing();
  if (missing !== undefined) throw new Error(`cannot run: ${missing}`);
  const started = performance.now();
  const info = detect();
  const report: Report = {
    runtime: { name: info.name, version: info.version },
    cpus: info.cpus,
    options: { ...SIZES, quick: QUICK },
    figures: [],
    notes: [
      "the load notes count the fanout and BullMQ workers, redis-server and the pools as this " +
      "run's",
    ],
    totalMs: 0,
  };
  const redis = await startRedis();
  try {
    const pid = await redisPid(redis.url);
    if (pid !== undefined) tracked.add(pid);
    const queue = queueName("bench");
    const workers = await startWorkers(redis, queue, 2);
    try {
      await using bench = bounded(
        { strategy: distributed({ connection: redis.url, queue, root: ROOT }) },
        CLOSE_MS,
        "the distributed executor",
      );
      await bench.ex.warmup();
      await part("1", report, () => cpuPart(bench.ex));
      await part("2", report, () => itemsPart(bench.ex));
      await part("3", report, () => tripPart(redis, bench.ex));
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    await part("4", report, () => killPart(redis));
  } finally {
    await redis.stop();
  }
  report.totalMs = performance.now() - started;
  console.log(
    `distributed figures (${QUICK ? "--quick" : "full"}): fanout workers and a plain BullMQ ` +
      `worker of ${info.name}, redis-server on 127.0.0.1`,
  );
  console.log(formatReport(report));
}

const plainAt = process.argv.indexOf(PLAIN_FLAG);
if (plainAt >= 0) await plainWorker(process.argv[plainAt + 1], process.argv[plainAt + 2]);
else await main();
