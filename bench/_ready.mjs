// @ts-check
/**
 * The bare-spawn baseline of `processes.ts` (figure p2): a child of the runtime's own
 * executable that prints "ready" and exits. No imports, so it measures only what it takes to
 * start the runtime and run a module (on Deno it runs with `deno run` and no permission flags).
 *
 * @module
 */

console.log("ready");
