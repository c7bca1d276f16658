/**
 * On Deno, a worker process never gets more permission than the program that starts it, for
 * every kind of permission and every way of granting or denying one (whole, scoped lists, deny
 * lists). Each test runs a small program under the flags in question; the program tries the
 * same things itself and in its worker process (fixtures/deno_probe.ts): read a denied file,
 * write into a denied folder, read a denied variable, run a denied program, connect to a port,
 * import from a remote host. What the worker may do is checked by doing it, not by asking
 * `Deno.permissions`. Where the worker gets less than its parent (a grant with a deny list),
 * one `FANOUT_PERMISSION_NARROWED` warning must name what was narrowed.
 *
 * Deno only; skipped with a reason on Bun and Node, which have no permissions.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { Server } from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { programReport, programResult, runProgram, runtime, test } from "./_helpers.ts";
import { removeDir, tempDir } from "./fixtures/proc.ts";
import type { ProbeInput, ProbeReport } from "./fixtures/deno_probe.ts";

const PROBE_PARENT = fileURLToPath(new URL("./fixtures/deno_probe_parent.ts", import.meta.url));
const PERM_PARENT = fileURLToPath(new URL("./fixtures/perm_parent.ts", import.meta.url));
const REPO = fileURLToPath(new URL("..", import.meta.url));

/** The least a parent needs to start worker processes at all. */
const BASE = ["--allow-read", "--allow-run"];

/** A module on a host of Deno's default import allow-list (nothing is fetched when denied). */
const DENO_LAND = "https://deno.land/x/fanout_permission_probe/mod.ts";
/** A module on another host of the default list. */
const ESM_SH = "https://esm.sh/fanout-permission-probe@1.0.0";

/** Registers a test that cannot run here, saying why in its name and its skip reason. */
function skip(name: string, reason: string): void {
  it(`${name} (skipped: ${reason})`, { skip: reason }, () => {});
}

/** The permissions a `FANOUT_PERMISSION_NARROWED` message says were narrowed. */
function narrowedIn(message: string): string[] {
  return [...message.matchAll(/\b(read|write|net|env|run|ffi|sys|import) (?:only|not at all)\b/g)]
    .map((m) => m[1])
    .sort();
}

/** One way of running the parent, and what its worker may and may not do. */
interface Case {
  /** Flags after `deno run --no-prompt`. */
  flags: string[];
  /** What to try. */
  input: ProbeInput;
  /** What the worker process must be able to do (`"allowed"`) or not (`"denied"`). */
  child: ProbeReport;
  /** The permissions the one warning must name; none means no warning at all. */
  narrowed: string[];
}

describe("Deno permissions of worker processes", () => {
  if (runtime !== "deno") {
    skip(
      "a worker process gets no more permission than its parent",
      "permissions exist only on Deno",
    );
    return;
  }

  let dir = "";
  let secret = "";
  let noWrite = "";
  let server: Server | undefined;
  let port = 0;
  before(async () => {
    dir = tempDir();
    secret = join(dir, "secret.txt");
    writeFileSync(secret, "the secret");
    noWrite = join(dir, "no-write");
    mkdirSync(noWrite);
    // Something to connect to, so that an allowed connection succeeds for real.
    const listening = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
    server = listening;
    port = (listening.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
    removeDir(dir);
  });

  // Built lazily: the paths and the port exist only once before() has run.
  const cases: Record<string, () => Case> = {
    "--allow-read --allow-run --deny-read=<secret>": () => ({
      flags: [...BASE, `--deny-read=${secret}`],
      input: { read: secret },
      child: { read: "denied" },
      narrowed: ["read"],
    }),
    "-A --deny-write=<dir> --deny-read=<secret>": () => ({
      flags: ["-A", `--deny-write=${noWrite}`, `--deny-read=${secret}`],
      input: { read: secret, write: noWrite },
      child: { read: "denied", write: "denied" },
      narrowed: ["read", "write"],
    }),
    "--allow-read --allow-run --ignore-read=<secret>": () => ({
      flags: [...BASE, `--ignore-read=${secret}`],
      input: { read: secret },
      child: { read: "denied" },
      narrowed: ["read"],
    }),
    "--allow-read=<repo>,<secret> --allow-write=<dir> --allow-run (scoped lists)": () => ({
      flags: [`--allow-read=${REPO},${secret}`, `--allow-write=${noWrite}`, "--allow-run"],
      input: { read: secret, write: noWrite },
      child: { read: "denied", write: "denied" },
      narrowed: [],
    }),
    "-A --deny-env=HOME": () => ({
      flags: ["-A", "--deny-env=HOME"],
      input: { env: "HOME" },
      child: { env: "denied" },
      narrowed: ["env"],
    }),
    "--allow-read --allow-run --deny-run=ls": () => ({
      flags: [...BASE, "--deny-run=ls"],
      input: { run: "ls" },
      child: { run: "denied" },
      narrowed: ["run"],
    }),
    "--allow-read --allow-run --allow-net": () => ({
      flags: [...BASE, "--allow-net"],
      input: { net: port },
      child: { net: "allowed" },
      narrowed: [],
    }),
    "-A --deny-net=127.0.0.1": () => ({
      flags: ["-A", "--deny-net=127.0.0.1"],
      input: { net: port },
      child: { net: "denied" },
      narrowed: ["net"],
    }),
    "-A --deny-net": () => ({
      flags: ["-A", "--deny-net"],
      input: { net: port },
      child: { net: "denied" },
      narrowed: [],
    }),
    // Import: a child given no --allow-import flag would get Deno's default allow-list.
    "--allow-read --allow-run (Deno's default import allow-list)": () => ({
      flags: BASE,
      input: { imports: [DENO_LAND] },
      child: { [`import ${DENO_LAND}`]: "allowed" },
      narrowed: [],
    }),
    "--allow-read --allow-run --allow-import=esm.sh:443": () => ({
      flags: [...BASE, "--allow-import=esm.sh:443"],
      input: { imports: [DENO_LAND, ESM_SH] },
      child: { [`import ${DENO_LAND}`]: "denied", [`import ${ESM_SH}`]: "allowed" },
      narrowed: [],
    }),
    "-A --deny-import=esm.sh:443": () => ({
      flags: ["-A", "--deny-import=esm.sh:443"],
      input: { imports: [DENO_LAND, ESM_SH] },
      child: { [`import ${DENO_LAND}`]: "allowed", [`import ${ESM_SH}`]: "denied" },
      narrowed: ["import"],
    }),
    "-A --deny-import": () => ({
      flags: ["-A", "--deny-import"],
      input: { imports: [DENO_LAND] },
      child: { [`import ${DENO_LAND}`]: "denied" },
      narrowed: [],
    }),
    "-A": () => ({
      flags: ["-A"],
      input: { read: secret, write: noWrite, env: "HOME", run: "ls", net: port },
      child: { read: "allowed", write: "allowed", env: "allowed", run: "allowed", net: "allowed" },
      narrowed: [],
    }),
  };

  for (const [how, make] of Object.entries(cases)) {
    test(
      `a worker process can do no more than its parent, for real (deno run ${how})`,
      async () => {
        const { flags, input, child: expected, narrowed } = make();
        const result = await runProgram(PROBE_PARENT, [JSON.stringify(input)], [
          "--no-prompt",
          ...flags,
        ]);
        const { parent, child, warnings } = programResult(result, "fanout-probe-result ") as {
          parent: ProbeReport;
          child: ProbeReport;
          warnings: string[];
        };
        assert.match(
          result.stdout,
          /^fanout-probe-disposed$/m,
          `unfinished${programReport(result)}`,
        );
        for (const [what, outcome] of Object.entries(child)) {
          assert.ok(
            outcome === "allowed" || outcome === "denied",
            `the worker's attempt to ${what} ${outcome}`,
          );
          if (outcome === "allowed") {
            assert.equal(
              parent[what],
              "allowed",
              `the worker was allowed "${what}", its parent was not`,
            );
          }
        }
        assert.deepEqual(
          child,
          expected,
          `what the worker could do (its parent: ${JSON.stringify(parent)})`,
        );
        if (narrowed.length === 0) {
          assert.deepEqual(warnings, [], "no permission was narrowed, yet fanout warned");
        } else {
          assert.equal(warnings.length, 1, `expected one warning for two pools, got ${warnings}`);
          assert.deepEqual(narrowedIn(warnings[0]), narrowed, `the warning: ${warnings[0]}`);
        }
      },
      60_000,
    );
  }

  // What Deno.permissions says in the worker, for whole grants.
  const stateCases = [
    { flags: BASE, granted: ["read"] },
    { flags: [...BASE, "--allow-net"], granted: ["read", "net"] },
  ];
  for (const { flags, granted } of stateCases) {
    test(
      `a child process gets no more permission than its parent (deno run ${flags.join(" ")})`,
      async () => {
        const result = await runProgram(PERM_PARENT, [], ["--no-prompt", ...flags]);
        const { parent, child } = programResult(result, "fanout-perm-result ") as Record<
          "parent" | "child",
          Record<string, string>
        >;
        assert.match(
          result.stdout,
          /^fanout-perm-disposed$/m,
          `unfinished${programReport(result)}`,
        );
        for (const perm of ["read", "write", "net", "env"]) {
          const expected = granted.includes(perm);
          assert.equal(
            parent[perm] === "granted",
            expected,
            `the parent's ${perm} permission is ${parent[perm]}`,
          );
          assert.equal(
            child[perm] === "granted",
            expected,
            `the child's ${perm} permission is ${child[perm]}, its parent's ${parent[perm]}`,
          );
        }
      },
      60_000,
    );
  }
});
