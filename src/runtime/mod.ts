/**
 * Runtime detection and the per-runtime adapters. Everything above this folder asks here
 * instead of testing `Deno` or `Bun` globals itself.
 *
 * @module
 */

import process from "node:process";
import { readSystemText, runtimeCpuCount, usableCpus } from "./_cpus.ts";
import type { ChildHandle, RuntimeName, SpawnOptions, ThreadFactory } from "./types.ts";
import { CAPABILITIES } from "./_capabilities.ts";
import type { Capabilities } from "./_capabilities.ts";
import { denoSpawn, denoThreads } from "./deno.ts";
import { bunSpawn, bunThreads } from "./bun.ts";
import { nodeSpawn, nodeThreads } from "./node.ts";

export type {
  ChildExit,
  ChildHandle,
  SpawnOptions,
  ThreadExit,
  ThreadFactory,
  ThreadHandle,
} from "./types.ts";
export { liveJobPids, liveProcessPids, liveThreadCount } from "./_live.ts";

export type { RuntimeName } from "./types.ts";
export type { Capabilities } from "./_capabilities.ts";

/** What fanout needs to know about the runtime it runs on. */
export interface RuntimeInfo {
  /** Which runtime this is. */
  readonly name: RuntimeName;
  /** The runtime's own version (not the Node version Deno and Bun claim). */
  readonly version: string;
  /**
   * Usable CPUs: affinity (`taskset`) capped by the cgroup CPU quota, rounded up; unlike
   * `os.cpus().length`.
   */
  readonly cpus: number;
  /** The runtime's executable, with symlinks resolved. */
  readonly execPath: string;
  /** What the runtime can do (stop a busy thread, cap a heap), and what its workers cost. */
  readonly capabilities: Capabilities;
  /**
   * Reads an environment variable; `undefined` when unset or, on Deno, when env access was
   * not granted (it never prompts).
   */
  env(name: string): string | undefined;
}

interface DenoGlobal {
  version: { deno: string };
  env: { get(name: string): string | undefined };
  permissions: { querySync(desc: { name: "env"; variable: string }): { state: string } };
}

const globals = globalThis as { Deno?: DenoGlobal; Bun?: { version: string } };

let cached: RuntimeInfo | undefined;

/**
 * Tells Deno, Bun and Node apart. Deno and Bun both claim a Node version in
 * `process.versions.node`, so their own globals are checked first.
 */
export function detect(): RuntimeInfo {
  if (cached !== undefined) return cached;
  const deno = globals.Deno;
  const name: RuntimeName = deno !== undefined
    ? "deno"
    : globals.Bun !== undefined
    ? "bun"
    : "node";
  const version = deno !== undefined
    ? deno.version.deno
    : globals.Bun !== undefined
    ? globals.Bun.version
    : process.versions.node;
  const env = deno !== undefined
    ? (variable: string): string | undefined => {
      try {
        if (deno.permissions.querySync({ name: "env", variable }).state !== "granted") {
          return undefined;
        }
        return deno.env.get(variable);
      } catch {
        return undefined;
      }
    }
    : (variable: string): string | undefined => process.env[variable];
  cached = {
    name,
    version,
    cpus: countCpus(),
    get execPath(): string {
      return process.execPath;
    },
    env,
    capabilities: CAPABILITIES[name],
  };
  return cached;
}

/**
 * Affinity capped by the cgroup CPU quota, computed the same way on every runtime (their own
 * counts disagree about quotas; see _cpus.ts).
 */
function countCpus(): number {
  return usableCpus(readSystemText, runtimeCpuCount());
}

/** The thread factory for the current runtime. */
export function threadFactory(): ThreadFactory {
  switch (detect().name) {
    case "deno":
      return denoThreads;
    case "bun":
      return bunThreads;
    case "node":
      return nodeThreads;
  }
}

/**
 * Starts a child process: `Deno.Command` on Deno, `Bun.spawn` on Bun, `node:child_process` on
 * Node. Rejects with `SpawnError` when it cannot start (no such executable, no permission).
 */
export function spawnChild(options: SpawnOptions): Promise<ChildHandle> {
  switch (detect().name) {
    case "deno":
      return denoSpawn(options);
    case "bun":
      return bunSpawn(options);
    case "node":
      return nodeSpawn(options);
  }
}
