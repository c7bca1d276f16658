/**
 * Where the worker programs are: `src/worker/thread_entry.js` and `process_entry.js` sit next
 * to the code that starts them (in the source, on JSR, and in the npm package's `dist/`). A
 * bundler (`bun build`, esbuild) moves that code into one file, and the programs must then be
 * built beside it: docs/bundling.md has the recipes. Looked for, in order:
 *
 * 1. `FANOUT_WORKER_DIR` (a folder, as a path or a `file:` URL), when it is set;
 * 2. beside the code that starts them, as they are shipped;
 * 3. `fanout-worker/` beside the program's main module, where the recipes build them.
 *
 * @module
 */

import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { WorkerStartError } from "../errors.ts";
import { detect } from "./mod.ts";

/** The worker programs. */
export type EntryName = "thread_entry.js" | "process_entry.js";

/** Where a bundled program's worker programs go (see docs/bundling.md). */
export const BUNDLED_DIR = "fanout-worker";

const found = new Map<EntryName, URL>();

/**
 * The worker program `name`, given where it is shipped (`shipped`, beside the code that
 * starts it).
 *
 * @throws {WorkerStartError} When it is in none of the places above, naming them and the recipe.
 */
export function workerEntry(name: EntryName, shipped: URL): URL {
  const known = found.get(name);
  if (known !== undefined) return known;
  const tried: string[] = [];
  const dir = detect().env("FANOUT_WORKER_DIR");
  const candidates: URL[] = [];
  if (dir !== undefined && dir !== "") candidates.push(new URL(name, folderUrl(dir)));
  candidates.push(shipped);
  const main = mainModule();
  if (main !== undefined) candidates.push(new URL(`${BUNDLED_DIR}/${name}`, main));
  for (const url of candidates) {
    if (exists(url)) {
      found.set(name, url);
      return url;
    }
    tried.push(url.protocol === "file:" ? fileURLToPath(url) : url.href);
  }
  throw new WorkerStartError(
    `Expected fanout's worker program ${name} in one of ${tried.join(", ")}, but it is in none ` +
      `of them. A bundled program needs it built beside it: see "Bundling" in fanout's ` +
      `docs/bundling.md (or set FANOUT_WORKER_DIR to the folder that holds it)`,
  );
}

function folderUrl(dir: string): URL {
  const url = dir.startsWith("file:") ? new URL(dir) : pathToFileURL(dir);
  return url.href.endsWith("/") ? url : new URL(`${url.href}/`);
}

/** Whether `url` names a file that is there; a place that cannot be checked counts as there. */
function exists(url: URL): boolean {
  if (url.protocol !== "file:") return true;
  try {
    return existsSync(fileURLToPath(url));
  } catch {
    return true; // No permission to look (Deno): the start itself will say what is wrong.
  }
}

/** The program's main module, as a URL, where the runtime says. */
function mainModule(): URL | undefined {
  try {
    const deno = (globalThis as { Deno?: { mainModule?: string } }).Deno;
    if (deno !== undefined) return deno.mainModule ? new URL(deno.mainModule) : undefined;
    const script = process.argv[1];
    return script ? pathToFileURL(script) : undefined;
  } catch {
    return undefined;
  }
}
