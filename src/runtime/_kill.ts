/**
 * Stopping a child process the same way everywhere (a process pool's worker, a command of
 * `runCommands`): SIGTERM, so that it can clean up, then SIGKILL once the grace is over.
 *
 * @module
 */

/** Default grace between SIGTERM and SIGKILL, in ms (`killGraceMs`). */
export const KILL_GRACE_MS = 1000;

/** What a stop needs of a child. */
export interface Killable {
  kill(signal: "SIGTERM" | "SIGKILL"): void;
  /** Settles when the child has exited. */
  readonly exited: Promise<unknown>;
}

/**
 * Sends SIGTERM, then SIGKILL after `graceMs` unless the child exited first; `0` sends
 * SIGKILL at once. The timer does not outlive the child.
 */
export function killGently(child: Killable, graceMs: number): void {
  if (graceMs === 0) return child.kill("SIGKILL");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  const clear = (): void => clearTimeout(timer);
  child.exited.then(clear, clear);
}

/** How a stop is described in messages: "(SIGTERM, then SIGKILL after 1000 ms)". */
export function describeKill(graceMs: number): string {
  return graceMs === 0
    ? "(SIGKILL at once (killGraceMs 0))"
    : `(SIGTERM, then SIGKILL after ${graceMs} ms)`;
}
