/**
 * Shared payloads (`ex.share`, issue 4): one 64 MiB `Float64Array` summed by 16 tasks on 2
 * workers, each task summing a disjoint 1/16 of it (`work.rangeSum`), with the array either
 * shared once or cloned into every task's message. Each figure against a baseline measured in
 * the same process:
 *
 * - s1. bytes posted per task: `node:v8`'s `serialize(input).byteLength` (the structured-clone
 *   serializer behind `postMessage` and the IPC channel) of a task's input holding the
 *   handle, against one holding the array itself; at two payload sizes;
 * - s2. speedup of the 16 sums on a warm 2-thread pool with `share`, over the same 16 calls
 *   in a plain loop on the main thread (`_shared_times.ts`);
 * - s3. the same map with the array cloned into every task's message (`chunkSize: 1`, so
 *   that each task is its own message), against `share` (`_shared_times.ts`);
 * - s4. `strategy: "processes"`: bytes the parent wrote during the map (`wchar` of
 *   `/proc/self/io`), share against per-task clone, next to workers × size and tasks × size.
 *   On Bun, whose IPC sends with `sendto(2)` (not counted in `wchar`), the part runs again
 *   under `strace` and counts the bytes its threads wrote and sent (`_strace.ts`).
 *
 * ```sh
 * node_modules/.bin/deno run -A bench/run.ts shared_payloads [--quick] [--sum-reps 20]
 * ```
 *
 * `FANOUT_SHARED_STRACE=1` makes s4 count with strace on Deno and Node too (a cross-check of
 * `wchar`); `=0` stops it on Bun.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import { serialize } from "node:v8";
import { detect, liveProcessPids } from "../src/runtime/mod.ts";
import { findStrace, TRACE_OUT_ENV, traceWindows, WindowMarks } from "./_strace.ts";
import type { TracedWindow } from "./_strace.ts";
import type { Figure, PartResult, Scenario, SizeSpec } from "./_measure.ts";
import {
  benchLog,
  bounded,
  fail,
  figure,
  formatValue,
  median,
  readText,
  withWatchdog,
  workTasks,
} from "./_measure.ts";
import { checkSums, MIB, payload, plainCopy, rangeInputs, rangeSums } from "./_payload.ts";
import { againstClones, sumSpeedup } from "./_shared_times.ts";

export { cloneKinds } from "./_shared_times.ts";

type Size =
  | "payloadMb"
  | "smallMb"
  | "sumTasks"
  | "sumWarmup"
  | "sumReps"
  | "cloneReps"
  | "procMb"
  | "procReps"
  | "watchdogMs";

type Sizes = Record<Size, number>;

const SIZES: Record<Size, SizeSpec> = {
  payloadMb: { flag: "payload-mb", full: 64, quick: 16, help: "s1-s3: the array, in MiB" },
  smallMb: { flag: "small-mb", full: 1, quick: 1, help: "s1: the second, smaller array, MiB" },
  sumTasks: { flag: "sum-tasks", full: 16, quick: 16, help: "tasks (disjoint ranges) per map" },
  sumWarmup: {
    flag: "sum-warmup",
    full: 20,
    quick: 5,
    help: "s2: warm-up repetitions of each kind",
  },
  sumReps: { flag: "sum-reps", full: 40, quick: 10, help: "s2: interleaved repetitions" },
  cloneReps: { flag: "clone-reps", full: 5, quick: 2, help: "s3: interleaved repetitions" },
  procMb: { flag: "proc-mb", full: 64, quick: 16, help: "s4: the array on processes, MiB" },
  procReps: { flag: "proc-reps", full: 2, quick: 1, help: "s4: maps of each kind" },
  watchdogMs: {
    flag: "watchdog-ms",
    full: 120_000,
    quick: 120_000,
    help: "limit for one map or close()",
  },
};

/** The issue's setting: 2 workers. */
const WORKERS = 2;

const log = benchLog("shared");

/** A byte count, with thousands separators. */
function bytesText(bytes: number): string {
  return `${bytes.toLocaleString("en-US")} B`;
}

function mib(bytes: number): number {
  return Math.round((bytes / MIB) * 100) / 100;
}

// ---------------------------------------------------------------------------------------------
// s1. Bytes posted per task

/** Bun's own structured-clone serializer, to show that `node:v8`'s is the same format there. */
async function bunSerialize(): Promise<((value: unknown) => Uint8Array) | undefined> {
  if (detect().name !== "bun") return undefined;
  const specifier = "bun:jsc"; // not a literal import: Deno and Node must not resolve it
  const jsc = await import(specifier) as { serialize(value: unknown): Uint8Array };
  return (value) => jsc.serialize(value);
}

async function bytesPosted(o: Sizes): Promise<PartResult> {
  const figures: Figure[] = [];
  const jsc = await bunSerialize();
  await using pool = bounded({ strategy: "threads", maxWorkers: WORKERS }, o.watchdogMs, "s1");
  const ex = pool.ex;
  const sizes = [...new Set([o.smallMb, o.payloadMb])].sort((a, b) => a - b);
  let handleClone = "";
  for (const mb of sizes) {
    const p = payload(mb, o.sumTasks);
    const { data, ranges } = p;
    const expected = rangeSums(p);
    using handle = ex.share(data);
    if (handle.value !== data) fail("share() of a SharedArrayBuffer-backed array copied it");
    const shareInputs = rangeInputs(ranges, handle);
    // The handle's inputs really run: the bytes below are those of inputs that work.
    checkSums(
      await withWatchdog(ex.map(workTasks.rangeSum, shareInputs), o.watchdogMs, "s1: map"),
      expected,
      `s1: share map, ${mb} MiB`,
    );
    const shareBytes = shareInputs.map((input) => serialize(input).byteLength);
    handleClone = JSON.stringify(structuredClone(handle));
    const plain = plainCopy(data);
    // One at a time: 16 serialized copies of 64 MiB need not be alive at once.
    const cloneBytes = ranges.map((r) => serialize({ data: plain, ...r }).byteLength);
    const shareMax = Math.max(...shareBytes);
    const cloneMin = Math.min(...cloneBytes);
    const cloneMax = Math.max(...cloneBytes);
    let jscNote = "";
    if (jsc !== undefined) {
      const a = Math.max(...shareInputs.map((input) => jsc(input).byteLength));
      const b = Math.max(...ranges.map((r) => jsc({ data: plain, ...r }).byteLength));
      jscNote = `; bun:jsc serialize gives ${a} B and ${bytesText(b)}` +
        (a === shareMax && b === cloneMax ? " (the same)" : " (DIFFERENT)");
    }
    figures.push(figure({
      part: "s1",
      name: `bytes posted per task, share, ${mb} MiB array`,
      value: shareMax,
      unit: "B",
      baseline: { name: "array cloned per task", value: cloneMax, unit: "B" },
      ratio: cloneMin / shareMax,
      ratioLabel: "fewer",
      target: { on: "value", op: "<=", value: 1024, label: "≤ 1 KB" },
      note: `serialize(input).byteLength of each of the ${o.sumTasks} tasks' inputs ` +
        `{ data, start, end } (largest shown; share: ${Math.min(...shareBytes)}–${shareMax} B, ` +
        `clone: ${bytesText(cloneMin)}–${bytesText(cloneMax)})${jscNote}`,
    }));
  }
  const serializer = detect().name === "bun"
    ? "node:v8 serialize on Bun writes JSC's structured-clone format, the one Bun's " +
      "postMessage and IPC use (bun:jsc serialize gives the same bytes)"
    : "node:v8 serialize is V8's ValueSerializer, which postMessage and the IPC channel use " +
      "(postMessage shares a SharedArrayBuffer where serialize copies it; no SAB is in a " +
      "share input)";
  return {
    figures,
    notes: [
      `s1: ${serializer}; structuredClone(handle) = ${handleClone}, whatever the array's size`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// s4. Process strategy: bytes the parent writes

/** `wchar` of `/proc/self/io`: bytes this process passed to write(2)-like syscalls. */
function wchar(): number | undefined {
  try {
    const m = /^wchar:\s*(\d+)/m.exec(readText("/proc/self/io"));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

interface ProcMap {
  kind: "share" | "clone";
  rep: number;
  /** Label of the traced window. */
  window: string;
  wchar: number | undefined;
  ms: number;
}

/** The maps of part s4, each inside a window; marked for strace when `marks` is given. */
async function measureProcesses(o: Sizes, marks?: WindowMarks): Promise<ProcMap[]> {
  log(`s4: filling ${o.procMb} MiB (and a plain copy)`);
  const p = payload(o.procMb, o.sumTasks);
  const { data, ranges } = p;
  const plain = plainCopy(data);
  const expected = rangeSums(p);
  const maps: ProcMap[] = [];
  await using pool = bounded({ strategy: "processes", maxWorkers: WORKERS }, o.watchdogMs, "s4");
  const ex = pool.ex;
  // Start both processes and load the task module in each, sending nothing large.
  for (let i = 0; i < 2; i++) {
    await withWatchdog(
      ex.map(workTasks.noop, new Array(WORKERS * 2).fill(undefined), { chunkSize: 1 }),
      o.watchdogMs,
      "s4: warm-up",
    );
  }
  if (liveProcessPids().length !== WORKERS) {
    fail(`s4: ${liveProcessPids().length} worker processes after the warm-up, not ${WORKERS}`);
  }
  for (let rep = 0; rep < o.procReps; rep++) {
    const order = rep % 2 === 0 ? ["share", "clone"] as const : ["clone", "share"] as const;
    for (const kind of order) {
      const window = `${kind}-${rep + 1}`;
      marks?.begin(window);
      const w0 = wchar();
      const t0 = performance.now();
      // share() is inside the window: whatever it writes counts.
      const handle = kind === "share" ? ex.share(data) : undefined;
      const inputs = rangeInputs(ranges, handle ?? plain);
      const values = await withWatchdog(
        ex.map(workTasks.rangeSum, inputs, { chunkSize: 1 }),
        o.watchdogMs,
        `s4: ${kind} map`,
      );
      const t = performance.now() - t0;
      const w1 = wchar();
      marks?.end(window);
      handle?.release();
      checkSums(values, expected, `s4: ${kind} map`);
      const delta = w0 === undefined || w1 === undefined ? undefined : w1 - w0;
      maps.push({ kind, rep, window, wchar: delta, ms: t });
      log(
        `s4: ${window}: ${formatValue(t, "ms")}, wchar +${
          delta === undefined ? "?" : bytesText(delta)
        }`,
      );
    }
  }
  return maps;
}

/** The command that runs `run.ts` again for part s4 only, with the same sizes. */
function selfCommand(o: Sizes): string[] {
  const { name, execPath } = detect();
  const script = fileURLToPath(new URL("./run.ts", import.meta.url));
  return [
    execPath,
    ...(name === "deno" ? ["run", "-A"] : []),
    script,
    "--only",
    "s4",
    "--json",
    "--proc-mb",
    String(o.procMb),
    "--proc-reps",
    String(o.procReps),
    "--sum-tasks",
    String(o.sumTasks),
    "--watchdog-ms",
    String(o.watchdogMs),
  ];
}

/** Whether to count s4's bytes with strace: on Bun (wchar misses sendto) unless told not to. */
function useStrace(): boolean {
  const env = detect().env("FANOUT_SHARED_STRACE");
  if (env === "0" || env === "false") return false;
  return env === "1" || env === "true" || detect().name === "bun";
}

async function bytesWritten(o: Sizes): Promise<PartResult> {
  const traceOut = detect().env(TRACE_OUT_ENV);
  if (traceOut !== undefined) {
    // The run under strace: mark the windows and save them; its figures are not read.
    const marks = new WindowMarks(traceOut);
    await measureProcesses(o, marks);
    marks.save();
    return { figures: [], notes: [] };
  }
  const maps = await measureProcesses(o, undefined);
  const notes: string[] = [];
  let traced: TracedWindow[] | undefined;
  let method = "wchar of /proc/self/io (bytes passed to write(2), writev(2) and the like)";
  if (useStrace()) {
    const strace = findStrace();
    if (strace === undefined) {
      notes.push("s4: strace is not installed, so there is no syscall count");
    } else {
      log("s4: again under strace -f, counting the bytes this process writes and sends");
      const t0 = performance.now();
      traced = await traceWindows(strace, selfCommand(o), 4 * o.watchdogMs);
      notes.push(
        `s4: the strace run took ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
          traced.map((w) =>
            `${w.label}: ${
              Object.entries(w.calls).map(([name, c]) => `${c.count} ${name} ${bytesText(c.bytes)}`)
                .join(", ")
            }`
          ).join("; "),
      );
      method = "strace -f: the sum of what the parent's threads' write, writev, sendto, " +
        "sendmsg (and the like) returned, in a second run of s4 under strace; wchar (in this " +
        "run) is in the notes";
    }
  }
  const size = o.procMb * MIB;
  const bytesOf = (m: ProcMap): number | undefined =>
    traced === undefined ? m.wchar : traced.find((w) => w.label === m.window)?.bytes;
  const of = (kind: "share" | "clone"): { bytes: number[]; times: number[]; wchar: string } => {
    const mine = maps.filter((m) => m.kind === kind);
    return {
      bytes: mine.map(bytesOf).filter((b): b is number => b !== undefined),
      times: mine.map((m) => m.ms),
      wchar: mine.map((m) => m.wchar === undefined ? "?" : bytesText(m.wchar)).join(", "),
    };
  };
  const share = of("share");
  const clone = of("clone");
  notes.push(
    `s4: wchar deltas: share ${share.wchar}; clone ${clone.wchar}` +
      (detect().name === "bun"
        ? " (Bun's IPC sends with sendto(2), which wchar does not count)"
        : ""),
  );
  const value = (b: number[]): number => b.length === 0 ? NaN : median(b);
  const shareBytes = value(share.bytes);
  const cloneBytes = value(clone.bytes);
  const what = `${o.procMb} MiB × ${o.sumTasks} tasks, ${WORKERS} processes`;
  const ms = (x: number): string => formatValue(x, "ms");
  const timing = `maps took ${share.times.map(ms).join(", ")} (share) and ${
    clone.times.map(ms).join(", ")
  } (clone), warm pool, chunkSize 1`;
  const exact = (b: number[]): string => b.map(bytesText).join(", ");
  return {
    figures: [
      figure({
        part: "s4",
        name: `bytes written during the map, share, ${what}`,
        value: mib(shareBytes),
        unit: "MiB",
        baseline: { name: "workers × size", value: mib(WORKERS * size), unit: "MiB" },
        ratio: shareBytes / (WORKERS * size),
        ratioLabel: "× workers×size",
        target: { on: "ratio", op: "<=", value: 1.05, label: "≤ 1.05×" },
        note: `${method}; share() + map, after warming both processes with a noop map; ` +
          `${exact(share.bytes)} (${o.procReps} map(s)); ${timing}`,
      }),
      figure({
        part: "s4",
        name: `bytes written during the map, array cloned per task, ${what}`,
        value: mib(cloneBytes),
        unit: "MiB",
        baseline: { name: "tasks × size", value: mib(o.sumTasks * size), unit: "MiB" },
        ratio: cloneBytes / (o.sumTasks * size),
        ratioLabel: "× tasks×size",
        note: `chunkSize 1, so every task's message holds its own copy; ${exact(clone.bytes)}`,
      }),
      figure({
        part: "s4",
        name: `bytes written, share vs clone per task, ${what}`,
        value: mib(shareBytes),
        unit: "MiB",
        baseline: { name: "array cloned per task", value: mib(cloneBytes), unit: "MiB" },
        ratio: cloneBytes / shareBytes,
        ratioLabel: "fewer",
        note: `ideal: tasks ÷ workers = ${(o.sumTasks / WORKERS).toFixed(2)}×`,
      }),
    ],
    notes,
  };
}

/** Parts s1 to s4: what sharing a large payload saves. */
export const sharedPayloads: Scenario<Size> = {
  name: "shared_payloads",
  sizes: SIZES,
  parts: { s1: bytesPosted, s2: sumSpeedup, s3: againstClones, s4: bytesWritten },
  children: true,
};

// Run as a script, this file runs its scenario through run.ts. Not awaited at the top level:
// run.ts imports this module, which must finish evaluating first.
if (import.meta.main) {
  import("./run.ts").then(({ main }) => main(process.argv.slice(2), "shared_payloads"));
}
