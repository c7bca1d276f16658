/**
 * What the process strategy costs, each figure against a baseline measured in the same
 * process, in interleaved rounds (the machine is shared and noisy):
 *
 * - p1. one warm `submit(work.noop)` round trip on 1 worker: processes against threads, and
 *   against a bare child echoing the same message on the same transport (`_bare_process.mjs`);
 *   run it under `taskset -c 0` too, for the pinned figure;
 * - p2. pool start + first `submit(work.noop)`: processes against a bare spawn of the same
 *   runtime running `_ready.mjs` until it prints "ready"; and the `close()` that follows;
 * - p3. `map` over 20,000 trivial items on 2 workers: processes against threads.
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/processes.ts [--quick] [--only p1,p2] [--json]
 * node_modules/.bin/bun bench/processes.ts
 * node_modules/.bin/node bench/processes.ts
 * taskset -c 0 node_modules/.bin/node bench/processes.ts --only p1
 * ```
 *
 * Sizes come from flags, else from `FANOUT_BENCH_<FLAG>` environment variables (e.g.
 * `FANOUT_BENCH_CALLS=1000`), else from the defaults (or the `--quick` ones). Their names
 * differ from `run.ts`'s, so that `compare.mjs` can tell whose they are.
 *
 * @module
 */

import { spawn as spawnNode } from "node:child_process";
import { benchLog, fail, parseBenchOptions, readText, runParts } from "./_cli.ts";
import type { BenchOptions, PartResult, SizeSpec } from "./_cli.ts";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { frame, unframer } from "./_frames.mjs";
import { ParallelExecutor, tasks } from "../mod.ts";
import { detect, liveProcessPids, liveThreadCount } from "../src/runtime/mod.ts";
import type { CpuSample } from "./_stats.ts";
import { describeLoad, mean, median, sampleCpuWithChildren, withWatchdog } from "./_stats.ts";
import type { Figure } from "./_table.js";

const workTasks = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
const jsTasks = tasks<typeof import("./work_js.js")>(new URL("./work_js.js", import.meta.url));
const READY_SCRIPT = fileURLToPath(new URL("./_ready.mjs", import.meta.url));
const BARE_PROCESS_SCRIPT = fileURLToPath(new URL("./_bare_process.mjs", import.meta.url));

const PARTS = ["p1", "p2", "p3"] as const;
type Part = typeof PARTS[number];

interface Sizes {
  calls: number;
  warmup: number;
  rounds: number;
  poolStarts: number;
  mapItems: number;
  mapReps: number;
  watchdogMs: number;
}

const SIZES: Record<keyof Sizes, SizeSpec> = {
  calls: { flag: "calls", full: 3_000, quick: 1_000, help: "p1: timed round trips of each kind" },
  warmup: { flag: "warmup", full: 500, quick: 200, help: "p1: warm-up calls of each kind" },
  rounds: { flag: "rounds", full: 10, quick: 5, help: "p1: interleaved rounds" },
  poolStarts: { flag: "pool-starts", full: 10, quick: 5, help: "p2: starts of each kind" },
  mapItems: { flag: "map-items", full: 20_000, quick: 20_000, help: "p3: items per map" },
  mapReps: { flag: "map-reps", full: 7, quick: 3, help: "p3: timed maps of each kind" },
  watchdogMs: {
    flag: "watchdog-ms",
    full: 30_000,
    quick: 30_000,
    help: "limit for one start, close or round",
  },
};

type Options = BenchOptions<keyof Sizes, Part>;

function parseOptions(argv: string[]): Options {
  return parseBenchOptions(argv, "processes.ts", PARTS, SIZES);
}

const log = benchLog("processes");

/**
 * A CPU reading in which "this process" includes its child processes: the reaped ones
 * (`cutime` + `cstime` of /proc/self/stat) and the live pool processes (their own
 * /proc/<pid>/stat), so that a worker process's CPU is not counted as another's load.
 */
function load(): CpuSample | undefined {
  return sampleCpuWithChildren(readText, liveProcessPids());
}

/** `describeLoad` over {@linkcode load} readings. */
function noise(from: CpuSample | undefined, to: CpuSample | undefined): string {
  return describeLoad(from, to).replace("this process", "this process and its children");
}

/** "median of paired ratios 1.23 (1.20, 1.25, …)". */
function paired(ratios: number[]): string {
  return `median of paired ratios ${median(ratios).toFixed(2)} (${
    ratios.map((r) => r.toFixed(2)).join(", ")
  })`;
}

/** How many CPUs this process may use, for figure names: the pinned run is its own row. */
function cpuLabel(): string {
  const cpus = detect().cpus;
  return cpus === 1 ? "1 CPU" : `${cpus} CPUs`;
}

/**
 * Disposes an executor: `close()` normally, `terminate()` after a failure (a hung call would
 * keep `close()` waiting). Bounded either way, so that a bench never becomes a hang.
 */
async function dispose(ex: ParallelExecutor, failed: boolean, limitMs: number): Promise<void> {
  const done = failed ? ex.terminate() : ex.close();
  await withWatchdog(done, limitMs, "disposing an executor").catch(async (error) => {
    log(`${error}; terminating`);
    await withWatchdog(ex.terminate(), limitMs, "terminate()").catch(() => {});
  });
}

// ---------------------------------------------------------------------------------------------
// The runtimes' own spawn APIs, for the bare baselines

interface BunSubprocess {
  readonly stdout: ReadableStream<Uint8Array>;
  readonly exited: Promise<number>;
  send(message: unknown): void;
  kill(): void;
}

interface BunGlobal {
  spawn(cmd: string[], options: Record<string, unknown>): BunSubprocess;
}

function bunGlobal(): BunGlobal {
  return (globalThis as unknown as { Bun: BunGlobal }).Bun;
}

/** A bare child process that echoes messages (`_bare_process.mjs`). */
interface BareProcess {
  /** Sends a message and resolves with the echo. */
  ping(message: unknown): Promise<unknown>;
  /** Closes its channel and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `_bare_process.mjs` on the transport the process strategy uses here (IPC with
 * structured serialization on Node and Bun; length-prefixed `node:v8` frames over
 * stdin/stdout on Deno) and waits for its "ready".
 */
async function startBareProcess(): Promise<BareProcess> {
  const { name, execPath } = detect();
  let handler: ((message: unknown) => void) | undefined;
  let onReady!: () => void;
  let onFail!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  const receive = (message: unknown): void => {
    if (handler === undefined) {
      if (message === "ready") onReady();
      return;
    }
    const resolve = handler;
    handler = undefined;
    resolve(message);
  };
  const exitedEarly = (code: unknown): void =>
    onFail(new Error(`the bare process exited with ${code} before it was ready`));
  if (name === "deno") {
    const child = new Deno.Command(execPath, {
      args: ["run", BARE_PROCESS_SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const writer = child.stdin.getWriter();
    const reading = (async () => {
      const push = unframer(receive);
      for await (const chunk of child.stdout) push(chunk);
    })();
    child.status.then((status) => exitedEarly(status.code));
    await ready;
    return {
      ping: (message) =>
        new Promise((resolve) => {
          handler = resolve;
          writer.write(frame(message));
        }),
      stop: async () => {
        await writer.close();
        await reading;
        await child.status;
      },
    };
  }
  if (name === "bun") {
    const child = bunGlobal().spawn([execPath, BARE_PROCESS_SCRIPT], {
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      ipc: (message: unknown) => receive(message),
      serialization: "advanced",
    });
    child.exited.then(exitedEarly);
    await ready;
    return {
      ping: (message) =>
        new Promise((resolve) => {
          handler = resolve;
          child.send(message);
        }),
      stop: async () => {
        child.kill();
        await child.exited;
      },
    };
  }
  const child = spawnNode(execPath, [BARE_PROCESS_SCRIPT], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    serialization: "advanced",
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("message", receive);
  child.once("error", onFail);
  child.once("exit", exitedEarly);
  await ready;
  return {
    ping: (message) =>
      new Promise((resolve) => {
        handler = resolve;
        child.send(message as object);
      }),
    stop: async () => {
      child.disconnect();
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// p1. Warm submit() round trip: processes against threads

async function partP1(o: Options): Promise<{ figures: Figure[]; notes: string[] }> {
  const proc = new ParallelExecutor({ strategy: "processes", maxWorkers: 1 });
  const thr = new ParallelExecutor({ strategy: "threads", maxWorkers: 1 });
  let bare: BareProcess | undefined;
  const procUs: number[] = [];
  const thrUs: number[] = [];
  const bareUs: number[] = [];
  const ratios: number[] = [];
  const bareRatios: number[] = [];
  const per = Math.max(1, Math.ceil(o.calls / o.rounds));
  /** Times `count` sequential, awaited calls of `call`, adding each one's µs to `into`. */
  const timed = async (
    call: (i: number) => Promise<void>,
    count: number,
    into?: number[],
  ): Promise<number> => {
    const own: number[] = [];
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      await call(i);
      own.push((performance.now() - start) * 1000);
    }
    into?.push(...own);
    return median(own);
  };
  const submitOn = (ex: ParallelExecutor) => async (): Promise<void> => {
    await ex.submit(workTasks.noop, undefined);
  };
  let failed = true;
  try {
    bare = await withWatchdog(startBareProcess(), o.watchdogMs, "p1: bare process start");
    const b = bare;
    // The message the pool sends for a submit, echoed back.
    const ping = async (i: number): Promise<void> => {
      const reply = await b.ping({ t: "run", id: i, task: 1, base: 0, items: [undefined] });
      if ((reply as { id?: number }).id !== i) fail("bare process echo");
    };
    const kinds = [
      { label: "processes", run: submitOn(proc), into: procUs },
      { label: "threads", run: submitOn(thr), into: thrUs },
      { label: "bare process", run: ping, into: bareUs },
    ];
    log(`p1: warm-up (${o.warmup} calls of each kind)`);
    for (const k of kinds) {
      await withWatchdog(timed(k.run, o.warmup), o.watchdogMs, `p1: ${k.label} warm-up`);
    }
    for (let round = 0; round < o.rounds; round++) {
      const before = load();
      // Rotate the order, so that none always runs right after another.
      const medians = new Map<string, number>();
      for (let j = 0; j < kinds.length; j++) {
        const k = kinds[(j + round) % kinds.length];
        medians.set(
          k.label,
          await withWatchdog(timed(k.run, per, k.into), o.watchdogMs, `p1: ${k.label} round`),
        );
      }
      const [p, t, r] = kinds.map((k) => medians.get(k.label)!);
      ratios.push(p / t);
      bareRatios.push(p / r);
      log(
        `p1: round ${round + 1}/${o.rounds}: processes ${p.toFixed(1)} µs, threads ` +
          `${t.toFixed(1)} µs, bare process ${r.toFixed(1)} µs (medians of ${per}); ` +
          noise(before, load()),
      );
    }
    failed = false;
  } finally {
    await dispose(proc, failed, o.watchdogMs);
    await dispose(thr, failed, o.watchdogMs);
    if (bare !== undefined) await withWatchdog(bare.stop(), o.watchdogMs, "p1: bare stop");
  }
  const cpus = detect().cpus;
  const pinned = cpus === 1
    ? "pinned to 1 CPU: parent and child take turns on it"
    : `NOT pinned (${cpus} CPUs visible): from round to round the scheduler puts parent and ` +
      `child on one CPU or on two, and round trips (threads and the bare child's too) flip ` +
      `between two levels up to ~3× apart, so this ratio is noisy; the run under ` +
      `taskset -c 0 is the one to quote`;
  const name = `submit(noop) round trip, warm, 1 worker, processes [${cpuLabel()}]`;
  const transport = detect().name === "deno"
    ? "node:v8 frames over stdin/stdout"
    : "IPC channel, structured serialization";
  return {
    figures: [
      {
        part: "p1",
        name: `${name} (median)`,
        value: median(procUs),
        unit: "µs",
        baseline: { name: "threads", value: median(thrUs), unit: "µs" },
        ratio: median(procUs) / median(thrUs),
        ratioLabel: "vs threads",
        note: `one sequential, awaited submit(work.noop) on a warm 1-worker pool, against the ` +
          `same on threads; ${procUs.length} calls of each after ${o.warmup} warm-up, ` +
          `interleaved in ${o.rounds} rounds; ${paired(ratios)} (per-round medians); ${pinned}`,
      },
      {
        part: "p1",
        name: `${name} (mean)`,
        value: mean(procUs),
        unit: "µs",
        baseline: { name: "threads", value: mean(thrUs), unit: "µs" },
        ratio: mean(procUs) / mean(thrUs),
        ratioLabel: "vs threads",
      },
      {
        part: "p1",
        name: `${name} (median) vs a bare process`,
        value: median(procUs),
        unit: "µs",
        baseline: { name: "bare process ping-pong", value: median(bareUs), unit: "µs" },
        ratio: median(procUs) / median(bareUs),
        ratioLabel: "vs bare",
        note: `what fanout adds to its transport: the same message echoed by a bare child ` +
          `(_bare_process.mjs; ${transport}), in the same rounds; ${paired(bareRatios)}; ` +
          `bare mean ${mean(bareUs).toFixed(1)} µs`,
      },
    ],
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------
// p2. Pool start + first task, against a bare spawn of the same runtime

/**
 * Reads `stream` until "ready" has come, noting when; then to its end.
 *
 * @returns When "ready" came (`performance.now()`), or `undefined` if it never did.
 */
async function readUntilReady(stream: ReadableStream<Uint8Array>): Promise<number | undefined> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let at: number | undefined;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return at;
    if (at === undefined) {
      text += decoder.decode(value, { stream: true });
      if (text.includes("ready")) at = performance.now();
    }
  }
}

/**
 * Spawns the runtime's own executable on `_ready.mjs` with the runtime's own spawn API, and
 * times it from the spawn call until "ready" is read on its stdout, and until it has exited.
 */
async function bareSpawn(): Promise<{ readyMs: number; exitMs: number }> {
  const { name, execPath } = detect();
  const start = performance.now();
  let ready: number | undefined;
  if (name === "deno") {
    const child = new Deno.Command(execPath, {
      args: ["run", READY_SCRIPT],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    ready = await readUntilReady(child.stdout);
    const status = await child.status;
    if (!status.success) throw new Error(`bare deno child exited with code ${status.code}`);
  } else if (name === "bun") {
    const child = bunGlobal().spawn([execPath, READY_SCRIPT], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "inherit",
    });
    ready = await readUntilReady(child.stdout);
    const code = await child.exited;
    if (code !== 0) throw new Error(`bare bun child exited with code ${code}`);
  } else {
    await new Promise<void>((resolve, reject) => {
      const child = spawnNode(execPath, [READY_SCRIPT], { stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        if (ready !== undefined) return;
        text += chunk;
        if (text.includes("ready")) ready = performance.now();
      });
      child.on("error", reject);
      child.on("close", (code) => {
        if (code === 0) resolve();
        else reject(new Error(`bare node child exited with code ${code}`));
      });
    });
  }
  const end = performance.now();
  if (ready === undefined) throw new Error("the bare child never printed ready");
  return { readyMs: ready - start, exitMs: end - start };
}

async function partP2(o: Options): Promise<{ figures: Figure[]; notes: string[] }> {
  const variants = [
    {
      label: "submit(work.noop), .ts module",
      run: async (ex: ParallelExecutor) => {
        if (await ex.submit(workTasks.noop, undefined) !== undefined) fail("first noop");
      },
    },
    {
      label: "submit(work_js.inc), .js module",
      run: async (ex: ParallelExecutor) => {
        if (await ex.submit(jsTasks.inc, 1) !== 2) fail("first inc");
      },
    },
  ];
  const starts = variants.map((): number[] => []);
  const closes = variants.map((): number[] => []);
  const ratios = variants.map((): number[] => []);
  const bareReady: number[] = [];
  const bareExit: number[] = [];
  let leaks = 0;
  log("p2: one unmeasured start of each, to fill file caches");
  await withWatchdog(bareSpawn(), o.watchdogMs, "p2: bare spawn");
  for (const v of variants) {
    const ex = new ParallelExecutor({ strategy: "processes", maxWorkers: 1 });
    let failed = true;
    try {
      await withWatchdog(v.run(ex), o.watchdogMs, `p2: ${v.label}`);
      failed = false;
    } finally {
      await dispose(ex, failed, o.watchdogMs);
    }
  }
  for (let s = 0; s < o.poolStarts; s++) {
    const before = load();
    // Rotate the order (bare, then each variant), so that noise hits all of them alike.
    const steps = [-1, ...variants.keys()];
    const order = steps.map((_, k) => steps[(k + s) % steps.length]);
    const sample: number[] = [];
    for (const k of order) {
      if (k === -1) {
        const bare = await withWatchdog(bareSpawn(), o.watchdogMs, "p2: bare spawn");
        bareReady.push(bare.readyMs);
        bareExit.push(bare.exitMs);
        continue;
      }
      const v = variants[k];
      const t0 = performance.now();
      const ex = new ParallelExecutor({ strategy: "processes", maxWorkers: 1 });
      let failed = true;
      let t1 = NaN;
      try {
        await withWatchdog(v.run(ex), o.watchdogMs, `p2: ${v.label}`);
        t1 = performance.now();
        failed = false;
      } finally {
        if (failed) await dispose(ex, true, o.watchdogMs);
      }
      await withWatchdog(ex.close(), o.watchdogMs, `p2: ${v.label}: close()`).catch(
        async (error) => {
          await dispose(ex, true, o.watchdogMs);
          throw error;
        },
      );
      const t2 = performance.now();
      starts[k].push(t1 - t0);
      closes[k].push(t2 - t1);
      sample[k] = t1 - t0;
      if (liveProcessPids().length !== 0) leaks++;
    }
    const bare = bareReady[bareReady.length - 1];
    for (const k of variants.keys()) ratios[k].push(sample[k] / bare);
    log(
      `p2: start ${s + 1}/${o.poolStarts}: bare spawn → ready ${bare.toFixed(1)} ms; ` +
        variants.map((v, k) =>
          `${v.label} ${sample[k].toFixed(1)} ms (close ${closes[k].at(-1)!.toFixed(1)} ms)`
        ).join("; ") + `; ${noise(before, load())}`,
    );
  }
  const bare = { name: 'bare spawn → "ready"', value: median(bareReady), unit: "ms" };
  const range = (ms: number[]): string =>
    `${Math.min(...ms).toFixed(1)}–${Math.max(...ms).toFixed(1)} ms`;
  return {
    figures: [
      ...variants.map((v, k): Figure => ({
        part: "p2",
        name: `pool start (1 process) + first ${v.label}`,
        value: median(starts[k]),
        unit: "ms",
        baseline: bare,
        ratio: median(starts[k]) / bare.value,
        ratioLabel: "vs bare",
        note:
          (k === 0
            ? `new ParallelExecutor({ strategy: "processes", maxWorkers: 1 }) until its first ` +
              `task resolved (close() not in it), against spawning the runtime on _ready.mjs ` +
              `with its own spawn API until "ready" is read on stdout; `
            : `the same with a plain-JavaScript task module (no type stripping in the child); `) +
          `median of ${o.poolStarts}, interleaved (range ${range(starts[k])}); ${
            paired(ratios[k])
          }`,
      })),
      ...variants.map((v, k): Figure => ({
        part: "p2",
        name: `close() after the first ${v.label}`,
        value: median(closes[k]),
        unit: "ms",
        note: k === 0
          ? `close() of the 1-process pool above, until the process has exited and been ` +
            `reaped; median of ${o.poolStarts} (range ${range(closes[k])}); the bare child ` +
            `exits by itself ${(median(bareExit) - bare.value).toFixed(1)} ms after "ready"`
          : undefined,
      })),
    ],
    notes: [
      `p2: processes alive after close(): ${leaks === 0 ? "none" : `${leaks} times`}`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// p3. map() throughput of trivial items: processes against threads

const MAP_WORKERS = 2;

async function partP3(o: Options): Promise<{ figures: Figure[]; notes: string[] }> {
  const items = Array.from({ length: o.mapItems }, (_, i) => i);
  const check = (values: number[], what: string): void => {
    if (values.length !== items.length) fail(`${what}: ${values.length} results`);
    for (let i = 0; i < items.length; i++) if (values[i] !== i + 1) fail(`${what}: item ${i}`);
  };
  const options = { maxWorkers: MAP_WORKERS, chunkSize: "auto" } as const;
  const proc = new ParallelExecutor({ strategy: "processes", ...options });
  const thr = new ParallelExecutor({ strategy: "threads", ...options });
  /** One map, checked; items/s. */
  const rate = async (ex: ParallelExecutor, what: string): Promise<number> => {
    const start = performance.now();
    const values = await withWatchdog(ex.map(workTasks.inc, items), o.watchdogMs, what);
    const ms = performance.now() - start;
    check(values, what);
    return o.mapItems / (ms / 1000);
  };
  const procRates: number[] = [];
  const thrRates: number[] = [];
  const ratios: number[] = [];
  let failed = true;
  try {
    log(`p3: warm-up (one map of ${o.mapItems} items on each, starting the pools)`);
    await rate(proc, "p3: processes warm-up");
    await rate(thr, "p3: threads warm-up");
    for (let rep = 0; rep < o.mapReps; rep++) {
      const before = load();
      let p: number;
      let t: number;
      if (rep % 2 === 0) {
        p = await rate(proc, "p3: processes map");
        t = await rate(thr, "p3: threads map");
      } else {
        t = await rate(thr, "p3: threads map");
        p = await rate(proc, "p3: processes map");
      }
      procRates.push(p);
      thrRates.push(t);
      ratios.push(p / t);
      log(
        `p3: rep ${rep + 1}/${o.mapReps}: processes ${Math.round(p)} items/s, threads ` +
          `${Math.round(t)} items/s; ${noise(before, load())}`,
      );
    }
    failed = false;
  } finally {
    await dispose(proc, failed, o.watchdogMs);
    await dispose(thr, failed, o.watchdogMs);
  }
  return {
    figures: [{
      part: "p3",
      name: `map(): ${
        o.mapItems.toLocaleString("en-US")
      } trivial items, ${MAP_WORKERS} workers, processes`,
      value: median(procRates),
      unit: "items/s",
      baseline: { name: "threads", value: median(thrRates), unit: "items/s" },
      ratio: median(procRates) / median(thrRates),
      ratioLabel: "vs threads",
      note: `work.inc through map() on warm pools, chunkSize "auto", against the same on ` +
        `threads; median of ${o.mapReps} interleaved maps (best: processes ${
          Math.round(Math.max(...procRates)).toLocaleString("en-US")
        }, threads ${Math.round(Math.max(...thrRates)).toLocaleString("en-US")} items/s); ${
          paired(ratios)
        }`,
    }],
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------

const RUNNERS: Record<Part, (o: Options) => Promise<PartResult>> = {
  p1: partP1,
  p2: partP2,
  p3: partP3,
};

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  await runParts(o, RUNNERS, { sample: load, describe: noise }, log, () => {
    const pids = liveProcessPids();
    return [
      ...(pids.length === 0 ? [] : [`worker processes still alive at the end: ${pids}`]),
      ...(liveThreadCount() === 0
        ? []
        : [`${liveThreadCount()} worker thread(s) still alive at the end of the run`]),
    ];
  });
}

await main();
