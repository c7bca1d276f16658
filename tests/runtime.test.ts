/**
 * The runtime adapter's facts: which runtime this is, its CPU count, executable and
 * environment access.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { availableParallelism, cpus } from "node:os";
import process from "node:process";
import { detect } from "../src/runtime/mod.ts";
import { readSystemText, runtimeCpuCount, usableCpus } from "../src/runtime/_cpus.ts";

const globals = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };

describe("detect()", () => {
  it("tells Deno and Bun apart from Node although both claim a Node version", () => {
    const expected = globals.Deno ? "deno" : globals.Bun ? "bun" : "node";
    assert.equal(detect().name, expected);
    const version = globals.Deno?.version.deno ?? globals.Bun?.version ?? process.versions.node;
    assert.equal(detect().version, version);
  });

  it("reports the usable CPUs: affinity capped by the cgroup quota, never more than the runtime sees", () => {
    assert.equal(detect().cpus, usableCpus(readSystemText, runtimeCpuCount()));
    assert.ok(Number.isInteger(detect().cpus) && detect().cpus >= 1);
    assert.ok(detect().cpus <= Math.max(availableParallelism(), cpus().length));
  });

  it("reports the runtime's own executable", () => {
    assert.equal(detect().execPath, process.execPath);
    assert.match(detect().execPath, /(deno|bun|node)(\.exe)?$/);
  });

  it("reads environment variables, and undefined for unset ones", () => {
    assert.equal(detect().env("PATH"), process.env.PATH);
    assert.equal(detect().env("FANOUT_SURELY_UNSET_VARIABLE_42"), undefined);
  });
});
