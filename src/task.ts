/**
 * Task references. Work that leaves the calling thread has to be named so another isolate
 * can load it: either an export of a module (`tasks()`), or a self-contained inline function
 * sent as source.
 *
 * @module
 */

import type { TaskSpec } from "./protocol.ts";
import { describe } from "./_checks.ts";

/** What a task function receives besides its input. */
export interface TaskContext {
  /** The task's position in the call's input. */
  readonly index: number;
  /**
   * Aborted when the call is cancelled. Long tasks should check `signal.aborted` (or call
   * `signal.throwIfAborted()`) from time to time: on Deno a busy thread cannot be stopped
   * from outside, so this is how it stops. Inside a worker, `aborted` is read from shared
   * memory, so it flips even while a synchronous loop never yields.
   */
  readonly signal: AbortSignal;
  /**
   * This task's seed, for a random generator of its own: an integer from 0 to 2^53 - 1, mixed
   * from the call's base seed (the `seed` option) and `index` by SplitMix64. It depends on
   * nothing else (not the strategy, the worker, the chunk size or the time), so a seeded run
   * gives the same numbers every time. See `seedFor` for the formula.
   */
  readonly seed: number;
}

/** A function that can run as a task: `fn(input, ctx)`. */
export type TaskFunction<I, O> = (input: I, ctx: TaskContext) => O | Promise<O>;

/** A reference to an exported function of a module, made by {@linkcode tasks}. */
export interface TaskRef<I, O> {
  /** The module's URL. */
  readonly module: string;
  /** The export's name. */
  readonly name: string;
  /** Carries the input and result types for type checking; never set at run time. */
  readonly types?: (input: I) => O;
}

/** Anything `map`, `imap` and `submit` accept as a task. */
export type Task<I, O> = TaskRef<I, O> | TaskFunction<I, O>;

/** Input type of a task. */
export type TaskInput<T> = T extends TaskRef<infer I, unknown> ? I
  : T extends (input: infer I, ...rest: never[]) => unknown ? I
  : never;

/** The task references of a module: one per exported function, typed from its signature. */
export type ModuleTasks<M> = {
  readonly [K in keyof M as M[K] extends (...args: never[]) => unknown ? K : never]: M[K] extends
    (...args: infer A) => infer R ? TaskRef<A extends [] ? undefined : A[0], Awaited<R>>
    : never;
};

const refMarker = Symbol("fanout.taskRef");

/**
 * Names the exported functions of a module as tasks. The module is not imported here; each
 * worker (or the serial strategy) imports it once, on first use. Each export is called as
 * `fn(input, ctx)`.
 *
 * @typeParam M The module's type: `typeof import("./work.ts")`.
 * @param module The module's URL: `new URL("./work.ts", import.meta.url)`, or an absolute URL
 *   string.
 * @returns A record with one {@linkcode TaskRef} per export, typed from the export's signature.
 * @throws {TypeError} If `module` is not a URL or an absolute URL string.
 *
 * @example Typed tasks from a module
 * ```ts ignore
 * import { ParallelExecutor, tasks } from "@fanout/fanout";
 *
 * const work = tasks<typeof import("./work.ts")>(new URL("./work.ts", import.meta.url));
 * await using ex = new ParallelExecutor();
 * const fibs: number[] = await ex.map(work.fib, [30, 31, 32]);
 * ```
 */
export function tasks<M>(module: URL | string): ModuleTasks<M> {
  const url = moduleUrl(module);
  const refs = new Map<string, TaskRef<unknown, unknown>>();
  return new Proxy({} as ModuleTasks<M>, {
    get(_target, name) {
      // `then` would make the record look like a promise to `await`.
      if (typeof name !== "string" || name === "then") return undefined;
      let ref = refs.get(name);
      if (ref === undefined) {
        ref = Object.freeze({ module: url, name, [refMarker]: true });
        refs.set(name, ref);
      }
      return ref;
    },
  });
}

function moduleUrl(module: URL | string): string {
  if (module instanceof URL) return module.href;
  if (typeof module === "string") {
    if (URL.canParse(module)) return new URL(module).href;
    throw new TypeError(
      `Expected \`module\` to be a URL or an absolute URL string, got ${
        JSON.stringify(module)
      }: resolve it with new URL(${JSON.stringify(module)}, import.meta.url)`,
    );
  }
  throw new TypeError(`Expected \`module\` to be a URL, got ${describe(module)}`);
}

/** Whether `value` is a reference made by {@linkcode tasks}. */
export function isTaskRef(value: unknown): value is TaskRef<unknown, unknown> {
  return typeof value === "object" && value !== null && refMarker in value;
}

/**
 * Turns a task into what a worker needs to load it.
 *
 * @throws {TypeError} If `task` is neither a task reference nor a function with usable source.
 */
export function toTaskSpec(task: unknown): TaskSpec {
  if (isTaskRef(task)) return { kind: "module", url: task.module, name: task.name };
  if (typeof task === "function") {
    const source = Function.prototype.toString.call(task);
    if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
      throw new TypeError(
        `Expected \`task\` to be a function with its own source, got ${
          task.name ? `\`${task.name}\`` : "a function"
        } whose source is [native code] (built-in or bound): wrap it, e.g. (x) => Math.sqrt(x)`,
      );
    }
    return { kind: "inline", source };
  }
  throw new TypeError(
    `Expected \`task\` to be a function or a reference from tasks(), got ${describe(task)}`,
  );
}

/** Each function's or reference's spec, made once (`toTaskSpec` of it never changes). */
const specs = new WeakMap<object, TaskSpec>();

/** `toTaskSpec`, made once per function or reference. */
export function specOf(task: unknown): TaskSpec {
  if ((typeof task !== "object" || task === null) && typeof task !== "function") {
    return toTaskSpec(task);
  }
  let spec = specs.get(task);
  if (spec === undefined) {
    spec = toTaskSpec(task);
    specs.set(task, spec);
  }
  return spec;
}

/**
 * A task's identity as a string: its module and export, or its source. Equal tasks from
 * different call sites share one key (what a worker prepares once, what estimates remember).
 */
export function taskKey(task: TaskSpec): string {
  return task.kind === "module" ? `m:${task.url}#${task.name}` : `f:${task.source}`;
}

/** What a load timeout names: the module's URL, or the inline function. */
export function moduleOf(task: TaskSpec): string {
  return task.kind === "module" ? task.url : "(an inline function)";
}
