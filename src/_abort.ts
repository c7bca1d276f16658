/**
 * Aborts, in one place: how a listener on a signal is added and removed, and how the reason
 * of an abort says how hard to stop.
 *
 * A call stops its chunks by aborting their signal. The reason says how:
 *
 * - the caller's own `signal.reason`, or `ExecutorClosedError` from `terminate()`: urgent, so
 *   a running chunk's worker may be stopped (a thread terminated, a process killed);
 * - a {@linkcode SoftStop} (the call already failed elsewhere, or its iterator was closed):
 *   the running task is only asked to stop through `ctx.signal`, and its worker is kept.
 *
 * @module
 */

/**
 * The reason of a stop that is not urgent: a running task is asked to stop through
 * `ctx.signal` and keeps its worker. `cause` is what stopped the call.
 */
export class SoftStop extends Error {
  override readonly name = "AbortError";

  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

/** Whether an aborted `signal` asks for running work to be stopped hard. */
export function stopsHard(signal: AbortSignal | undefined): boolean {
  return !(signal?.reason instanceof SoftStop);
}

/**
 * Calls `listener` once when `signal` aborts. Returns the remover, to call in a `finally`
 * (a listener left on a long-lived signal would keep what it closes over alive). Nothing is
 * added for a missing signal; an aborted one is not called back (check `aborted` first).
 */
export function onAbort(signal: AbortSignal | undefined, listener: () => void): () => void {
  if (signal === undefined || signal.aborted) return noop;
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}

function noop(): void {}
