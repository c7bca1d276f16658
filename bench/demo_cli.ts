/**
 * The README's main job, from the shell: `fanout run --bar` compresses 200 generated text files
 * with `gzip -9`, one job per file, as many at a time as the machine has CPUs; a plain loop
 * compresses copies of the same files one after the other; the demo checks that both wrote
 * the same bytes and prints the two times.
 *
 * ```sh
 * npm run demo                                  # Node 24
 * node_modules/.bin/deno run -A bench/demo_cli.ts
 * node_modules/.bin/bun bench/demo_cli.ts
 * ```
 *
 * The bar is drawn on stderr when it is a terminal, and as plain lines otherwise.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { detect } from "../src/runtime/mod.ts";

const FILES = 200;
const WORDS = ["fan", "out", "deno", "bun", "node", "worker", "thread", "process", "job", "queue"];

/** ~32 KiB of words from a seeded generator: compressible, but work for `gzip -9`. */
function text(seed: number): string {
  let state = seed * 2654435761 >>> 0 || 1;
  const words: string[] = [];
  for (let size = 0; size < 32 * 1024;) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    const word = WORDS[state % WORDS.length] + (state % 97).toString(36);
    words.push(word);
    size += word.length + 1;
  }
  return words.join(state % 7 === 0 ? "\n" : " ");
}

const { name, execPath, version } = detect();
const cli = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "fanout-demo-"));
try {
  const sides = ["serial", "fanout"].map((side) => join(dir, side));
  for (const side of sides) mkdirSync(side);
  const names = Array.from({ length: FILES }, (_, i) => `file${String(i).padStart(3, "0")}.txt`);
  names.forEach((file, i) => {
    const body = text(i + 1);
    for (const side of sides) writeFileSync(join(side, file), body);
  });

  // -n: no name or time stamp in the header, so that both sides' bytes can be compared.
  let started = performance.now();
  for (const file of names) {
    const gzip = spawnSync("gzip", ["-9", "-n", "-k", join(sides[0], file)]);
    if (gzip.status !== 0) throw new Error(`gzip exited with ${gzip.status}: ${gzip.stderr}`);
  }
  const serialMs = performance.now() - started;

  const jobs = cpus().length;
  const argv = ["run", "--bar", "-j", String(jobs), "--", "gzip", "-9", "-n", "-k", ":::"];
  console.log(`fanout ${argv.slice(0, 9).join(" ")} ::: ${FILES} files`);
  started = performance.now();
  const fanout = spawnSync(
    execPath,
    [
      ...(name === "deno" ? ["run", "-A"] : []),
      cli,
      ...argv,
      ...names.map((f) => join(sides[1], f)),
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const fanoutMs = performance.now() - started;
  if (fanout.status !== 0) throw new Error(`fanout run exited with ${fanout.status}`);

  const same = names.every((file) =>
    readFileSync(join(sides[0], `${file}.gz`)).equals(readFileSync(join(sides[1], `${file}.gz`)))
  );
  if (!same) throw new Error("fanout's .gz files differ from the serial loop's");
  console.log(
    `${FILES} files, gzip -9 on ${name} ${version}: a serial loop took ${
      (serialMs / 1000).toFixed(2)
    } s, fanout run -j ${jobs} ${(fanoutMs / 1000).toFixed(2)} s (${
      (serialMs / fanoutMs).toFixed(1)
    }× faster, start-up included); the .gz files are identical`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
