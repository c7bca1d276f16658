/**
 * Progress of a batch or a map, and a ready-made reporter that draws it on a terminal: a bar
 * redrawn in place on a TTY, plain periodic lines elsewhere, never mixed into other output.
 * `runCommands`' `onProgress`, `map`/`imap`'s `onProgress` and the `fanout` command all hand
 * it the same {@linkcode Progress}.
 *
 * @module
 */

import { checkInteger, checkKeys, describe } from "./_checks.ts";

/** How far a batch or a map has come. */
export interface Progress {
  /** Items (jobs) finished so far, failed ones included. */
  readonly done: number;
  /** Items in all, when known (an `imap` over an iterator of unknown length: `undefined`). */
  readonly total: number | undefined;
  /** How many of the finished items failed. */
  readonly failed: number;
  /** Since the call (batch) started, in ms. */
  readonly elapsedMs: number;
  /**
   * Estimated time left, in ms, at the rate so far: `undefined` while nothing finished or
   * the total is unknown, `0` once every item is done.
   */
  readonly etaMs: number | undefined;
}

/**
 * The estimated time left for `left` more items at the rate of `done` items in `elapsedMs`.
 *
 * @param done Items finished.
 * @param total Items in all, or `undefined` when unknown.
 * @param elapsedMs Time since the start, in ms.
 * @returns The estimate in ms, or `undefined` when it cannot be made.
 */
export function estimateEta(
  done: number,
  total: number | undefined,
  elapsedMs: number,
): number | undefined {
  if (total === undefined) return undefined;
  if (done >= total) return 0;
  if (done === 0) return undefined;
  return (total - done) * (elapsedMs / done);
}

/** How the reporter draws: a bar, counts only, or counts with the ETA first. */
export type ProgressStyle = "bar" | "progress" | "eta";

/** Where a {@linkcode ProgressReporter} writes: a stream such as `process.stderr`. */
export interface ProgressOutput {
  /** Writes text as it is. */
  write(text: string): unknown;
  /** Whether it is a terminal: a line redrawn in place, rather than plain lines. */
  readonly isTTY?: boolean;
  /** Its width in columns, when it is a terminal. */
  readonly columns?: number;
}

/** Options of {@linkcode progressReporter}. */
export interface ProgressReporterOptions {
  /**
   * Where to draw.
   *
   * @default {process.stderr}
   */
  output?: ProgressOutput;
  /**
   * What to draw.
   *
   * @default {"bar"}
   */
  style?: ProgressStyle;
  /**
   * Least time between two redraws on a terminal, in ms.
   *
   * @default {100}
   */
  intervalMs?: number;
  /**
   * Least time between two plain lines when the output is not a terminal, in ms; `0` writes
   * no periodic line, only the final one.
   *
   * @default {5000}
   */
  plainIntervalMs?: number;
}

/** Draws {@linkcode Progress} on a terminal (see {@linkcode progressReporter}). */
export interface ProgressReporter {
  /** Takes the latest progress; redraws when the last redraw is old enough. */
  update(progress: Progress): void;
  /**
   * Removes the bar from the terminal so other output can be written cleanly; the next
   * `update` (or `finish`) draws it again. Does nothing when the output is not a terminal.
   */
  clear(): void;
  /** Draws the final state once, ending its line. Later updates draw nothing. */
  finish(progress?: Progress): void;
}

const DEFAULT_INTERVAL_MS = 100;
const DEFAULT_PLAIN_INTERVAL_MS = 5000;
const DEFAULT_COLUMNS = 80;
const STYLES: readonly ProgressStyle[] = ["bar", "progress", "eta"];
const OPTIONS = ["output", "style", "intervalMs", "plainIntervalMs"];
/** Carriage return, then erase to the end of the line. */
const ERASE = "\r\x1b[K";

/**
 * Makes a reporter that draws progress on `output` (stderr by default): on a terminal one line
 * redrawn in place, at most every `intervalMs`; otherwise a plain line (no escape codes) at
 * most every `plainIntervalMs`, and a final line.
 *
 * @param options Where and how to draw.
 * @returns The reporter; call `update()` with each progress and `finish()` at the end.
 * @throws {TypeError} If an option has the wrong shape or is unknown.
 * @throws {RangeError} If an option is out of range.
 *
 * @example Draw a map's progress
 * ```ts
 * import { progressReporter, runCommands } from "@fanout/fanout";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const bar = progressReporter({ output: { write: (text) => lines.push(text) } });
 * const batch = await runCommands([{ cmd: ["true"] }, { cmd: ["true"] }], {
 *   onProgress: (progress) => bar.update(progress),
 * });
 * bar.finish();
 * assert.equal(batch.succeeded, 2);
 * assert.match(lines.at(-1)!, /2\/2/);
 * ```
 */
export function progressReporter(options: ProgressReporterOptions = {}): ProgressReporter {
  checkKeys("options", options, OPTIONS);
  const output = options.output ?? defaultOutput();
  if (typeof output?.write !== "function") {
    throw new TypeError(
      `Expected \`output\` to have a write(text) method, got ${describe(output)}`,
    );
  }
  const style = options.style ?? "bar";
  if (!STYLES.includes(style)) {
    const expected = 'Expected `style` to be "bar", "progress" or "eta"';
    if (typeof style !== "string") throw new TypeError(`${expected}, got ${describe(style)}`);
    throw new RangeError(`${expected}, got ${describe(style)}`);
  }
  const intervalMs = checkInteger("intervalMs", options.intervalMs ?? DEFAULT_INTERVAL_MS, 0);
  const plainIntervalMs = checkInteger(
    "plainIntervalMs",
    options.plainIntervalMs ?? DEFAULT_PLAIN_INTERVAL_MS,
    0,
  );
  return output.isTTY === true
    ? new TerminalReporter(output, style, intervalMs)
    : new PlainReporter(output, style, plainIntervalMs);
}

function defaultOutput(): ProgressOutput {
  const process = (globalThis as { process?: { stderr?: ProgressOutput } }).process;
  if (process?.stderr !== undefined) return process.stderr;
  return { write: (text: string) => console.error(text.replace(/\n$/, "")) };
}

class TerminalReporter implements ProgressReporter {
  readonly #output: ProgressOutput;
  readonly #style: ProgressStyle;
  readonly #intervalMs: number;
  #last: Progress | undefined;
  #drawnAt = -Infinity;
  #shown = false;
  #finished = false;

  constructor(output: ProgressOutput, style: ProgressStyle, intervalMs: number) {
    this.#output = output;
    this.#style = style;
    this.#intervalMs = intervalMs;
  }

  update(progress: Progress): void {
    if (this.#finished) return;
    this.#last = progress;
    const now = performance.now();
    if (this.#shown && now - this.#drawnAt < this.#intervalMs) return;
    this.#drawnAt = now;
    this.#draw(progress);
  }

  clear(): void {
    if (!this.#shown) return;
    this.#output.write(ERASE);
    this.#shown = false;
  }

  finish(progress?: Progress): void {
    if (this.#finished) return;
    this.#finished = true;
    const last = progress ?? this.#last;
    if (last === undefined) return;
    this.#draw(last);
    this.#output.write("\n");
    this.#shown = false;
  }

  #draw(progress: Progress): void {
    const columns = Math.max(20, this.#output.columns ?? DEFAULT_COLUMNS);
    // One column short of the width, so the cursor never wraps to a new line.
    this.#output.write(ERASE + formatProgress(progress, this.#style, columns - 1));
    this.#shown = true;
  }
}

class PlainReporter implements ProgressReporter {
  readonly #output: ProgressOutput;
  readonly #style: ProgressStyle;
  readonly #intervalMs: number;
  #last: Progress | undefined;
  #writtenAt: number;
  #finished = false;

  constructor(output: ProgressOutput, style: ProgressStyle, intervalMs: number) {
    this.#output = output;
    this.#style = style;
    this.#intervalMs = intervalMs;
    this.#writtenAt = performance.now();
  }

  update(progress: Progress): void {
    if (this.#finished) return;
    this.#last = progress;
    if (this.#intervalMs === 0) return;
    const now = performance.now();
    if (now - this.#writtenAt < this.#intervalMs) return;
    this.#writtenAt = now;
    this.#output.write(formatProgress(progress, this.#style, Infinity) + "\n");
  }

  clear(): void {}

  finish(progress?: Progress): void {
    if (this.#finished) return;
    this.#finished = true;
    const last = progress ?? this.#last;
    if (last !== undefined) this.#output.write(formatProgress(last, this.#style, Infinity) + "\n");
  }
}

/**
 * One line of progress, at most `width` characters: e.g.
 * `[#######......] 37/200 18% | 2 failed | 53.1/s | ETA 0:03`.
 */
export function formatProgress(progress: Progress, style: ProgressStyle, width: number): string {
  const { done, total, failed, elapsedMs, etaMs } = progress;
  const count = total === undefined ? `${done}` : `${done}/${total}`;
  const percent = total === undefined || total === 0 ? "" : ` ${Math.floor((100 * done) / total)}%`;
  const rate = elapsedMs > 0 ? `${formatRate((1000 * done) / elapsedMs)}/s` : "-/s";
  const eta = etaMs === undefined ? "ETA -" : `ETA ${formatDuration(etaMs)}`;
  const parts = [
    count + percent,
    ...(failed > 0 ? [`${failed} failed`] : []),
    rate,
    ...(done >= (total ?? Infinity) ? [`in ${formatDuration(elapsedMs)}`] : [eta]),
  ];
  if (style === "eta") parts.unshift(parts.pop()!);
  const text = parts.join(" | ");
  if (style !== "bar" || total === undefined || total === 0) return clip(text, width);
  const room = Math.min(40, width - text.length - 3);
  if (room < 5) return clip(text, width);
  const filled = Math.min(room, Math.floor((room * done) / total));
  return `[${"#".repeat(filled)}${".".repeat(room - filled)}] ${text}`;
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : text.slice(0, Math.max(0, width));
}

function formatRate(perSecond: number): string {
  if (perSecond >= 100) return Math.round(perSecond).toString();
  if (perSecond >= 10) return perSecond.toFixed(1);
  return perSecond.toFixed(2);
}

/** `m:ss`, or `h:mm:ss` from an hour. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const ss = s.toString().padStart(2, "0");
  return h > 0 ? `${h}:${m.toString().padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
