/**
 * Bytes a process sends, counted by `strace`, for part s4 of the shared-payload scenario
 * (`shared_payloads.ts`), where `/proc/self/io`'s `wchar` is blind: it counts `write(2)` and
 * friends, not `sendto(2)` or `sendmsg(2)`, and Bun's IPC channel sends with `sendto` (Node's,
 * through libuv, writes with `writev`; Deno's frames go down a pipe with `write`).
 *
 * The part runs `run.ts` again under `strace -f` with {@linkcode TRACE_OUT_ENV} set; that run
 * writes a marker to `/dev/null` at the start and end of each measured window
 * ({@linkcode WindowMarks}) and saves the ids of its own threads, and this side sums the
 * return values of every write and send those threads made between the markers.
 *
 * @module
 */

import { spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** Set in the traced run: where it saves its windows (labels and thread ids). */
export const TRACE_OUT_ENV = "FANOUT_SHARED_TRACE_OUT";
const MARK = "fanout-window:";
/** The syscalls that move bytes out of a process through a file descriptor. */
const SYSCALLS = [
  "write",
  "writev",
  "pwrite64",
  "pwritev",
  "pwritev2",
  "send",
  "sendto",
  "sendmsg",
  "sendmmsg",
];

interface SavedWindow {
  label: string;
  /** The process's thread ids when the window closed. */
  tids: number[];
}

/** The traced run's side: marks windows in the trace and remembers its thread ids. */
export class WindowMarks {
  readonly #out: string;
  readonly #fd: number;
  readonly #windows: SavedWindow[] = [];

  /** @param out Where {@linkcode save} writes the windows. */
  constructor(out: string) {
    this.#out = out;
    this.#fd = openSync("/dev/null", "w");
  }

  /** Marks the start of a window. */
  begin(label: string): void {
    writeSync(this.#fd, `${MARK}${label}:begin`);
  }

  /** Marks the end of a window. */
  end(label: string): void {
    writeSync(this.#fd, `${MARK}${label}:end`);
    this.#windows.push({ label, tids: readdirSync("/proc/self/task").map(Number) });
  }

  /** Saves the windows for the tracing side. */
  save(): void {
    closeSync(this.#fd);
    writeFileSync(this.#out, JSON.stringify(this.#windows));
  }
}

/** The path of `strace`, if it is installed. */
export function findStrace(): string | undefined {
  for (const path of ["/usr/bin/strace", "/bin/strace", "/usr/local/bin/strace"]) {
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** What the traced process's own threads wrote and sent in one window. */
export interface TracedWindow {
  label: string;
  /** Sum of the positive return values of the syscalls above (the marker writes excluded). */
  bytes: number;
  /** Per syscall name: calls and bytes. */
  calls: Record<string, { count: number; bytes: number }>;
}

/**
 * Sums, per window, the bytes the listed threads moved out through `SYSCALLS`.
 *
 * @param trace `strace -f -o` output: lines start with the thread id.
 * @param windows The traced run's windows.
 */
export function sumWindows(trace: string, windows: readonly SavedWindow[]): TracedWindow[] {
  const out: TracedWindow[] = [];
  const byLabel = new Map(windows.map((w) => [w.label, w]));
  let open: { saved: SavedWindow; tids: Set<number>; result: TracedWindow } | undefined;
  const line = /^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()/;
  const result = /\)\s+=\s+(-?\d+)(?:\s+[A-Z].*)?$/;
  /** Threads whose marker write strace split into "<unfinished ...>" and "resumed". */
  const marking = new Set<number>();
  for (const text of trace.split("\n")) {
    const at = text.indexOf(MARK);
    if (at !== -1) {
      if (text.includes("<unfinished")) marking.add(Number(/^\d+/.exec(text)?.[0]));
      const [label, edge] = text.slice(at + MARK.length).split(/["\\]/)[0].split(/:(?=[a-z]+$)/);
      if (edge === "begin" && byLabel.has(label)) {
        const saved = byLabel.get(label)!;
        open = { saved, tids: new Set(saved.tids), result: { label, bytes: 0, calls: {} } };
      } else if (edge === "end" && open?.saved.label === label) {
        out.push(open.result);
        open = undefined;
      }
      continue;
    }
    const m = line.exec(text);
    if (m === null) continue;
    const tid = Number(m[1]);
    if (m[2] !== undefined && marking.delete(tid)) continue; // the marker write, resumed
    if (open === undefined || !open.tids.has(tid)) continue;
    const name = m[2] ?? m[3];
    if (!SYSCALLS.includes(name)) continue;
    const r = result.exec(text);
    if (r === null) continue; // "<unfinished ...>": the resumed line carries the result
    const n = Number(r[1]);
    if (n <= 0) continue;
    open.result.bytes += n;
    const c = (open.result.calls[name] ??= { count: 0, bytes: 0 });
    c.count++;
    c.bytes += n;
  }
  return out;
}

/**
 * Runs `command` under `strace -f` with {@linkcode TRACE_OUT_ENV} set, and sums what the
 * traced process's own threads wrote and sent in each window it marked.
 *
 * @param strace The strace executable.
 * @param command The traced run.
 * @param limitMs Kill it after this long.
 * @returns The windows, in the order they closed.
 */
export async function traceWindows(
  strace: string,
  command: string[],
  limitMs: number,
): Promise<TracedWindow[]> {
  const dir = mkdtempSync(join(tmpdir(), "fanout-strace-"));
  try {
    const traceFile = join(dir, "trace.txt");
    const windowsFile = join(dir, "windows.json");
    const args = [
      "-f",
      "-qq",
      "--seccomp-bpf",
      "-s",
      "48",
      "-e",
      `trace=${SYSCALLS.join(",")}`,
      "-o",
      traceFile,
      ...command,
    ];
    await new Promise<void>((resolve, reject) => {
      const child = spawn(strace, args, {
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, [TRACE_OUT_ENV]: windowsFile },
      });
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`the traced run took longer than ${limitMs} ms; killed`));
      }, limitMs);
      child.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`the traced run exited with ${code ?? signal}`));
      });
    });
    const windows = JSON.parse(readFileSync(windowsFile, "utf8")) as SavedWindow[];
    return sumWindows(readFileSync(traceFile, "utf8"), windows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
