/**
 * Loading a task in a worker (and in the serial strategy, which compiles inline tasks the same
 * way): importing its module and picking the export, or compiling inline source; and naming
 * the variable an inline function read from where it was written, when that is why it failed.
 *
 * Plain JavaScript, like every file a worker loads (see run_task.js).
 *
 * @module
 */

/** @import { TaskSpec } from "../protocol.ts" */

/** @typedef {(input: unknown, ctx: { index: number, signal: AbortSignal, seed: number }) => unknown} TaskFn */

/**
 * Loads a task: imports its module and picks the export, or compiles inline source.
 *
 * @param {TaskSpec} spec
 * @returns {Promise<TaskFn>}
 */
export async function loadTask(spec) {
  if (spec.kind === "inline") return compileInline(spec.source);
  const mod = await importUrl(spec.url);
  const fn = mod[spec.name];
  if (typeof fn !== "function" || isClass(fn)) {
    const names = Object.keys(mod).filter((k) => typeof mod[k] === "function" && !isClass(mod[k]));
    throw new TypeError(
      `Expected module ${spec.url} to export a function \`${spec.name}\`, got ${
        fn === undefined ? "no such export" : isClass(fn) ? "a class" : typeof fn
      }; its exported functions are: ${names.length ? names.join(", ") : "(none)"}`,
    );
  }
  return /** @type {TaskFn} */ (fn);
}

/**
 * Imports a module by its absolute URL. Through `new Function`, not a literal `import(url)`:
 * `deno publish` cannot know a URL given at run time and warns about any such import
 * (`unanalyzable-dynamic-import`, which has no switch to silence it: denoland/deno#22594), and
 * bundlers try to follow it too. The import is the same, on every runtime.
 *
 * @type {(url: string) => Promise<Record<string, unknown>>}
 */
export const importUrl = /** @type {any} */ (new Function("url", "return import(url);"));

/**
 * Whether a function is a class, which cannot be called as a task.
 *
 * @param {unknown} fn
 * @returns {boolean}
 */
function isClass(fn) {
  return typeof fn === "function" && /^class\b/.test(Function.prototype.toString.call(fn));
}

/**
 * Compiles an inline function's source in the global scope, so that it behaves the same in
 * every isolate: a variable it captured from where it was written is simply not there.
 *
 * @param {string} source
 * @returns {TaskFn}
 */
export function compileInline(source) {
  /** @type {unknown} */
  let fn;
  try {
    fn = new Function(`return (${source}\n);`)();
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // Method shorthand (`{ f(x) { … } }.f`) prints as `f(x) { … }`: rebuild it as a method.
    try {
      const holder = new Function(`return ({ ${source}\n});`)();
      fn = Object.values(holder)[0];
    } catch {
      throw new SyntaxError(
        `Expected an inline task to be a function expression, got source that does not parse: ${
          source.slice(0, 80)
        }`,
        { cause: error },
      );
    }
  }
  if (typeof fn !== "function") {
    throw new TypeError(`Expected an inline task to compile to a function, got ${typeof fn}`);
  }
  return /** @type {TaskFn} */ (fn);
}

/**
 * The variable name an inline function read but does not define, judging by the
 * ReferenceError it threw (V8: "x is not defined"; JavaScriptCore: "Can't find variable: x").
 *
 * @param {unknown} error
 * @returns {string | undefined}
 */
export function capturedName(error) {
  if (!(error instanceof ReferenceError)) return undefined;
  const match = /^([\p{L}\p{Nl}$_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}$]*) is not defined$/u.exec(
    error.message,
  ) ?? /^Can't find variable: (\S+)$/.exec(error.message);
  return match?.[1];
}
