/**
 * The tasks of the io scenario (`io.ts`): tasks that mostly wait. Each is a module task, so
 * that it runs the same on every strategy (the calling thread, threads, processes), and the
 * bare promise pool of `io.ts` calls the same functions on the main thread. Plain-typed
 * TypeScript; the only import is `work.ts`'s `spin`, the CPU work every scenario calibrates.
 *
 * @module
 */

import { spin } from "./work.ts";

/** What a task reads of its context (`TaskContext`; importing it would pull in mod.ts). */
export interface IoContext {
  readonly signal: AbortSignal;
}

/** One timer task: how long to wait, and a value to answer with. */
export interface TimerInput {
  ms: number;
  value: number;
}

/** The answer of {@linkcode timer} for `value`, computed without waiting (the expected result). */
export function timerAnswer(value: number): number {
  return value * 3 + 1;
}

/**
 * Awaits a timer of `input.ms`, then answers: an I/O-like wait that uses no CPU.
 *
 * @param input How long to wait and what to answer.
 * @returns {@linkcode timerAnswer} of the value.
 */
export async function timer(input: TimerInput): Promise<number> {
  await new Promise<void>((resolve) => setTimeout(resolve, input.ms));
  return timerAnswer(input.value);
}

/** One fetch task: the loopback server's address and the request's id. */
export interface FetchInput {
  url: string;
  id: number;
}

/** What the loopback server answers for `id` (the expected result of {@linkcode fetchOne}). */
export function fetchAnswer(id: number): number {
  return id * 7 + 3;
}

/**
 * Fetches `${url}?id=${id}` with the task's signal and reads the number it answers.
 *
 * @param input The server's address and the id.
 * @param ctx The task's context: its signal cancels the request.
 * @returns The number in the response's body.
 * @throws {Error} On a status other than 200.
 */
export async function fetchOne(input: FetchInput, ctx: IoContext): Promise<number> {
  const response = await fetch(`${input.url}?id=${input.id}`, { signal: ctx.signal });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${body}`);
  return Number(body);
}

/** One mixed task: a wait, then CPU work of `iterations` steps of `spin`. */
export interface MixedInput {
  ms: number;
  iterations: number;
  value: number;
}

/** The answer of {@linkcode mixed}, given `spin(iterations)` (computed once on the main thread). */
export function mixedAnswer(spun: number, value: number): number {
  return spun + value;
}

/**
 * Awaits a timer of `input.ms`, then spins `input.iterations` steps: I/O followed by CPU.
 *
 * @param input The wait, the CPU work and a value.
 * @returns {@linkcode mixedAnswer} of the spin's checksum and the value.
 */
export async function mixed(input: MixedInput): Promise<number> {
  await new Promise<void>((resolve) => setTimeout(resolve, input.ms));
  return mixedAnswer(spin(input.iterations), input.value);
}
