/**
 * The default pool size honours CPU affinity and cgroup CPU quotas on every runtime.
 *
 * Two layers: the calculation read from a fake tree of the kernel's files in a temporary
 * folder (always runs: v1 and v2 layouts, nesting, garbage, missing files), and, as root on
 * Linux, real cgroups and `taskset` around a child program of the same runtime that reports
 * `new ParallelExecutor().maxWorkers`.
 *
 * @module
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  affinityCount,
  cpuQuota,
  readSystemText,
  runtimeCpuCount,
  usableCpus,
} from "../src/runtime/_cpus.ts";
import type { ReadText } from "../src/runtime/_cpus.ts";
import { detect } from "../src/runtime/mod.ts";
import type { CpusReport } from "./fixtures/cpus_child.ts";
import { PROGRAM_WATCHDOG_MS, runtime, show, test } from "./_helpers.ts";

// ---- fake trees ----------------------------------------------------------------------------

/** A file tree under a temporary folder, keyed by the absolute path it stands for. */
type Tree = Record<string, string>;

/**
 * Writes `tree` under a fresh temporary folder, runs `fn` with a reader that maps absolute
 * paths into it (and `undefined` for what is not there, as for an unreadable file), then
 * removes the folder.
 */
function withTree<T>(tree: Tree, fn: (read: ReadText) => T): T {
  const root = mkdtempSync(join(tmpdir(), "fanout-cpus-"));
  try {
    for (const [path, text] of Object.entries(tree)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    return fn((path) => {
      try {
        return readFileSync(join(root, path), "utf8");
      } catch {
        return undefined;
      }
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** /proc/self/status with this affinity list (the lines around it as the kernel writes them). */
const status = (list: string): string =>
  `Name:\tnode\nThreads:\t7\nCpus_allowed:\tffffffff\nCpus_allowed_list:\t${list}\n` +
  `Mems_allowed_list:\t0\n`;

/** A 64-CPU host, every CPU allowed and online. */
const HOST_64: Tree = {
  "/proc/self/status": status("0-63"),
  "/sys/devices/system/cpu/online": "0-63\n",
};

/** A pure cgroup v2 host: one cgroup2 mount at /sys/fs/cgroup. */
const V2_MOUNTINFO = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n" +
  "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 " +
  "rw,nsdelegate,memory_recursiveprot\n";

/** The hybrid layout of this project's machines: v1 controllers, v2 under `unified`. */
const HYBRID_MOUNTINFO = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
  "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n" +
  "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n" +
  "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n" +
  "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n" +
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

/** /proc/self/cgroup of a process in `cpuPath` of the hybrid layout's cpu controller. */
const hybridCgroup = (cpuPath: string): string =>
  `9:name=systemd:/\n4:memory:/other\n3:cpuset:/\n2:cpuacct:/\n1:cpu:${cpuPath}\n0::/\n`;

describe("usableCpus() from the kernel's files", () => {
  it("sees no quota in a cgroup v2 `max` and keeps the affinity count", () => {
    withTree({
      ...HOST_64,
      "/proc/self/cgroup": "0::/app.slice/job.service\n",
      "/proc/self/mountinfo": V2_MOUNTINFO,
      "/sys/fs/cgroup/app.slice/job.service/cpu.max": "max 100000\n",
      "/sys/fs/cgroup/app.slice/cpu.max": "max 100000\n",
    }, (read) => {
      assert.equal(cpuQuota(read), Infinity);
      assert.equal(usableCpus(read, 64), 64);
    });
  });

  it("caps a 64-CPU host at the cgroup v2 quota of its own cgroup", () => {
    withTree({
      ...HOST_64,
      "/proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
      "/proc/self/mountinfo": V2_MOUNTINFO,
      "/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "200000 100000\n",
    }, (read) => {
      assert.equal(cpuQuota(read), 2);
      assert.equal(usableCpus(read, 64), 2);
    });
  });

  it("rounds a fractional quota up, and a quota under one CPU to 1", () => {
    const tree = (max: string): Tree => ({
      ...HOST_64,
      "/proc/self/cgroup": "0::/ctr\n",
      "/proc/self/mountinfo": V2_MOUNTINFO,
      "/sys/fs/cgroup/ctr/cpu.max": max,
    });
    withTree(tree("150000 100000\n"), (read) => assert.equal(usableCpus(read, 64), 2));
    withTree(tree("50000 100000\n"), (read) => assert.equal(usableCpus(read, 64), 1));
    withTree(tree("1000 1000000\n"), (read) => assert.equal(usableCpus(read, 64), 1));
  });

  it("reads a cgroup v1 quota from the cpu controller of a hybrid host", () => {
    withTree({
      ...HOST_64,
      "/proc/self/cgroup": hybridCgroup("/batch"),
      "/proc/self/mountinfo": HYBRID_MOUNTINFO,
      "/sys/fs/cgroup/cpu/batch/cpu.cfs_quota_us": "300000\n",
      "/sys/fs/cgroup/cpu/batch/cpu.cfs_period_us": "100000\n",
      // Not the cpu controller: a quota-looking file elsewhere must not count.
      "/sys/fs/cgroup/cpuacct/other/cpu.cfs_quota_us": "100000\n",
      "/sys/fs/cgroup/cpuacct/other/cpu.cfs_period_us": "100000\n",
    }, (read) => assert.equal(usableCpus(read, 64), 3));
  });

  it("sees no quota in a cgroup v1 `-1`", () => {
    withTree({
      ...HOST_64,
      "/proc/self/cgroup": hybridCgroup("/batch"),
      "/proc/self/mountinfo": HYBRID_MOUNTINFO,
      "/sys/fs/cgroup/cpu/batch/cpu.cfs_quota_us": "-1\n",
      "/sys/fs/cgroup/cpu/batch/cpu.cfs_period_us": "100000\n",
      "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
      "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    }, (read) => {
      assert.equal(cpuQuota(read), Infinity);
      assert.equal(usableCpus(read, 64), 64);
    });
  });

  it("finds a co-mounted cpu,cpuacct v1 hierarchy that shows only the container's subtree", () => {
    // Docker on a v1 host without a cgroup namespace: the mount's root is the container's own
    // cgroup, so its files sit right at the mount point.
    withTree({
      ...HOST_64,
      "/proc/self/cgroup": "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n",
      "/proc/self/mountinfo": "700 690 0:31 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid " +
        "master:12 - cgroup cgroup rw,cpu,cpuacct\n",
      "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "400000\n",
      "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    }, (read) => assert.equal(usableCpus(read, 64), 4));
  });

  it("takes the smallest quota on the way from the process's cgroup to the root", () => {
    const tree = (leaf: string, middle: string, top: string): Tree => ({
      ...HOST_64,
      "/proc/self/cgroup": "0::/top/middle/leaf\n",
      "/proc/self/mountinfo": V2_MOUNTINFO,
      "/sys/fs/cgroup/top/middle/leaf/cpu.max": leaf,
      "/sys/fs/cgroup/top/middle/cpu.max": middle,
      "/sys/fs/cgroup/top/cpu.max": top,
    });
    withTree(
      tree("max 100000", "400000 100000", "200000 100000"),
      (read) => assert.equal(usableCpus(read, 64), 2),
    );
    withTree(
      tree("300000 100000", "max 100000", "800000 100000"),
      (read) => assert.equal(usableCpus(read, 64), 3),
    );
  });

  it("takes the smallest quota along a nested cgroup v1 path", () => {
    withTree({
      ...HOST_64,
      "/proc/self/cgroup": hybridCgroup("/outer/inner"),
      "/proc/self/mountinfo": HYBRID_MOUNTINFO,
      "/sys/fs/cgroup/cpu/outer/inner/cpu.cfs_quota_us": "-1\n",
      "/sys/fs/cgroup/cpu/outer/inner/cpu.cfs_period_us": "100000\n",
      "/sys/fs/cgroup/cpu/outer/cpu.cfs_quota_us": "50000\n",
      "/sys/fs/cgroup/cpu/outer/cpu.cfs_period_us": "10000\n",
    }, (read) => assert.equal(usableCpus(read, 64), 5));
  });

  it("does not read above the mount point", () => {
    withTree({
      ...HOST_64,
      "/proc/self/cgroup": "0::/ctr\n",
      "/proc/self/mountinfo": V2_MOUNTINFO,
      "/sys/fs/cpu.max": "100000 100000\n",
    }, (read) => assert.equal(cpuQuota(read), Infinity));
  });

  it("does not guess where a cgroup outside the mount's subtree is", () => {
    withTree({
      ...HOST_64,
      "/proc/self/cgroup": "0::/elsewhere\n",
      "/proc/self/mountinfo": "30 22 0:26 /mine /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
      "/sys/fs/cgroup/cpu.max": "100000 100000\n",
      "/sys/fs/cgroup/elsewhere/cpu.max": "100000 100000\n",
    }, (read) => assert.equal(cpuQuota(read), Infinity));
  });

  it("decodes mount points written with octal escapes", () => {
    withTree({
      ...HOST_64,
      "/proc/self/cgroup": "0::/ctr\n",
      "/proc/self/mountinfo": "30 22 0:26 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n",
      "/mnt/my cgroups/ctr/cpu.max": "100000 100000\n",
    }, (read) => assert.equal(cpuQuota(read), 1));
  });

  it("counts the affinity mask's CPUs that are online", () => {
    const tree = (allowed: string, online: string): Tree => ({
      "/proc/self/status": status(allowed),
      "/sys/devices/system/cpu/online": online,
    });
    withTree(tree("0-3,8,10-11", "0-15\n"), (read) => assert.equal(affinityCount(read), 7));
    // A mask naming every possible CPU on a VM where only 2 are online.
    withTree(tree("0-127", "0-1\n"), (read) => assert.equal(affinityCount(read), 2));
    withTree(tree("0", "0-63\n"), (read) => assert.equal(usableCpus(read, 64), 1));
  });

  it("caps a `taskset`-style affinity of 1 CPU below a larger quota", () => {
    withTree({
      "/proc/self/status": status("5"),
      "/sys/devices/system/cpu/online": "0-63\n",
      "/proc/self/cgroup": "0::/ctr\n",
      "/proc/self/mountinfo": V2_MOUNTINFO,
      "/sys/fs/cgroup/ctr/cpu.max": "800000 100000\n",
    }, (read) => assert.equal(usableCpus(read, 64), 1));
  });

  it("ignores garbage and falls back to the runtime's count", () => {
    const garbage: Tree = {
      "/proc/self/status": status("x-y"),
      "/sys/devices/system/cpu/online": "banana\n",
      "/proc/self/cgroup": "0::/a/b/c\nnot a line\n1:cpu:/c\n",
      "/proc/self/mountinfo": "garbage - cgroup2\n" + V2_MOUNTINFO +
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n",
      "/sys/fs/cgroup/a/b/c/cpu.max": "banana 100000\n",
      "/sys/fs/cgroup/a/b/cpu.max": "200000 0\n",
      "/sys/fs/cgroup/a/cpu.max": "200000\n",
      "/sys/fs/cgroup/cpu.max": "-100000 100000\n",
      "/sys/fs/cgroup/cpu/c/cpu.cfs_quota_us": "12abc\n",
      "/sys/fs/cgroup/cpu/c/cpu.cfs_period_us": "100000\n",
      "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "100000\n",
      "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "0\n",
    };
    withTree(garbage, (read) => {
      assert.equal(affinityCount(read), undefined);
      assert.equal(cpuQuota(read), Infinity);
      assert.equal(usableCpus(read, 7), 7);
    });
  });

  it("uses the runtime's count when no file can be read (not Linux, a sandbox)", () => {
    withTree({}, (read) => {
      assert.equal(affinityCount(read), undefined);
      assert.equal(cpuQuota(read), Infinity);
      assert.equal(usableCpus(read, 7), 7);
      assert.equal(usableCpus(read, 0), 1);
    });
  });

  it("reads the namespace root's quota when /proc/self cannot be read (Deno without -A)", () => {
    withTree({ "/sys/fs/cgroup/cpu.max": "200000 100000\n" }, (read) => {
      assert.equal(usableCpus(read, 64), 2);
    });
    withTree({
      "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "300000\n",
      "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    }, (read) => assert.equal(usableCpus(read, 64), 3));
  });

  it("is what detect().cpus reports for this process", () => {
    assert.equal(detect().cpus, usableCpus(readSystemText, runtimeCpuCount()));
  });
});

// ---- real cgroups and taskset --------------------------------------------------------------

const CHILD = fileURLToPath(new URL("./fixtures/cpus_child.ts", import.meta.url));

/** A hierarchy where a cgroup with a CPU quota can be made, or why not. */
type CgroupHost =
  | { readonly version: 1 | 2; readonly mountPoint: string }
  | { readonly skip: string };

/** The CFS period the limits below use, in µs (the kernel's default). */
const PERIOD_US = 100_000;

/** Writes a quota of `cpus` CPUs into cgroup directory `dir`. */
function limitCpus(version: 1 | 2, dir: string, cpus = 1): void {
  const quota = String(Math.round(cpus * PERIOD_US));
  if (version === 2) {
    writeFileSync(join(dir, "cpu.max"), `${quota} ${PERIOD_US}`);
  } else {
    writeFileSync(join(dir, "cpu.cfs_period_us"), String(PERIOD_US));
    writeFileSync(join(dir, "cpu.cfs_quota_us"), quota);
  }
}

/**
 * Finds a cpu controller this test may use without changing the machine's setup: v1's `cpu`
 * hierarchy, or v2 when its root already delegates `cpu` to children. Makes and removes one
 * cgroup to prove it can.
 */
function findCgroupHost(): CgroupHost {
  if (process.platform !== "linux") return { skip: "cgroups exist only on Linux" };
  if (process.getuid?.() !== 0) return { skip: "making a cgroup needs root" };
  let mountinfo: string;
  try {
    mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
  } catch (error) {
    return { skip: `cannot read /proc/self/mountinfo (${(error as Error).message})` };
  }
  let found: { version: 1 | 2; mountPoint: string } | undefined;
  for (const line of mountinfo.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (dash < 0) continue;
    const [fsType, , options = ""] = fields.slice(dash + 1);
    const mountPoint = fields[4];
    if (fsType === "cgroup" && options.split(",").includes("cpu")) {
      found = { version: 1, mountPoint };
      break;
    }
    if (fsType === "cgroup2") {
      let delegated = "";
      try {
        delegated = readFileSync(join(mountPoint, "cgroup.subtree_control"), "utf8");
      } catch {
        // not delegating anything
      }
      if (delegated.split(/\s+/).includes("cpu")) found ??= { version: 2, mountPoint };
    }
  }
  if (found === undefined) {
    return { skip: "no cgroup hierarchy here has the cpu controller available to children" };
  }
  const probe = join(found.mountPoint, `fanout-cpus-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    limitCpus(found.version, probe);
  } catch (error) {
    return { skip: `cannot make a cgroup with a CPU quota (${(error as Error).message})` };
  } finally {
    try {
      rmdirSync(probe);
    } catch {
      // never made
    }
  }
  return found;
}

/** `taskset` from util-linux, if installed. */
function findTaskset(): string | undefined {
  for (const path of ["/usr/bin/taskset", "/bin/taskset", "/usr/local/bin/taskset"]) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/**
 * Runs the child program on this runtime, started by `prefix` (a command that execs what
 * follows it), without `CE_PARALLEL` so the pool size is the default one.
 */
function runChild(prefix: string[], denoFlags: string[] = ["-A"]): Promise<CpusReport> {
  const { name, execPath } = detect();
  const argv = [...prefix, execPath, ...(name === "deno" ? ["run", ...denoFlags] : []), CHILD];
  const env = { ...process.env };
  delete env.CE_PARALLEL;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    // Bounds a hang; never used to wait for anything.
    const watchdog = setTimeout(() => child.kill("SIGKILL"), PROGRAM_WATCHDOG_MS);
    child.on("error", (error) => {
      clearTimeout(watchdog);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(watchdog);
      try {
        assert.equal(code, 0, `${argv.join(" ")} exited ${code ?? signal}: ${stderr}`);
        resolve(JSON.parse(stdout.trim()) as CpusReport);
      } catch (error) {
        reject(error);
      }
    });
  });
}

/** A command prefix that moves itself into cgroup `dir` and then execs the rest. */
const inCgroup = (dir: string): string[] => [
  "/bin/sh",
  "-c",
  'echo $$ > "$0" && exec "$@"',
  join(dir, "cgroup.procs"),
];

/**
 * Makes cgroup `path` (and its parents, relative to the mount point) under `host`, lets `setup`
 * write limits, runs `fn`, and removes every cgroup it made, innermost first, even on failure.
 */
async function withCgroup<T>(
  host: { version: 1 | 2; mountPoint: string },
  path: string[],
  setup: (dirs: string[]) => void,
  fn: (leaf: string) => Promise<T>,
): Promise<T> {
  const made: string[] = [];
  try {
    let dir = host.mountPoint;
    for (const part of path) {
      dir = join(dir, part);
      mkdirSync(dir);
      made.push(dir);
      // v2 only passes the cpu controller down to where it is asked for.
      if (host.version === 2 && made.length < path.length) {
        writeFileSync(join(dir, "cgroup.subtree_control"), "+cpu");
      }
    }
    setup(made);
    return await fn(dir);
  } finally {
    // The child has exited, so the cgroups are empty and can go.
    for (const dir of made.reverse()) rmdirSync(dir);
  }
}

const host = findCgroupHost();
const taskset = findTaskset();
/** What an unconstrained child reports; a limit of 1 CPU proves nothing on a 1-CPU host. */
const hostCpus = usableCpus(readSystemText, runtimeCpuCount());
const ONE_CPU_HOST = `the host has ${hostCpus} usable CPU, so a limit of 1 changes nothing`;

/** Registers a test that cannot run here, saying why in its name and its skip reason. */
function skip(name: string, reason: string): void {
  it(`${name} (skipped: ${reason})`, { skip: reason }, () => {});
}

/** Registers `fn` as a test when `reason` is undefined, else as a skipped one. */
function testIf(reason: string | undefined, name: string, fn: () => Promise<void>): void {
  if (reason === undefined) test(name, fn);
  else skip(name, reason);
}

const cgroupSkip = "skip" in host ? host.skip : hostCpus < 2 ? ONE_CPU_HOST : undefined;
const cgroupHost = "skip" in host ? undefined : host;
const cgroupName = (what: string): string => `fanout-cpus-${what}-${process.pid}`;

describe("new ParallelExecutor().maxWorkers in a limited child process", () => {
  test("is the usable CPU count of an unlimited child", async () => {
    const report = await runChild([]);
    assert.equal(report.maxWorkers, hostCpus, show(report));
  });

  testIf(cgroupSkip, "is 1 in a cgroup with a quota of 1 CPU", async () => {
    const report = await withCgroup(
      cgroupHost!,
      [cgroupName("leaf")],
      ([leaf]) => limitCpus(cgroupHost!.version, leaf),
      (leaf) => runChild(inCgroup(leaf)),
    );
    assert.equal(report.maxWorkers, 1, show(report));
  });

  testIf(
    cgroupSkip,
    "is 2 in a cgroup with a quota of 1.5 CPUs: rounded up, though Bun and Deno round down",
    async () => {
      const report = await withCgroup(
        cgroupHost!,
        [cgroupName("half")],
        ([leaf]) => limitCpus(cgroupHost!.version, leaf, 1.5),
        (leaf) => runChild(inCgroup(leaf)),
      );
      assert.equal(report.maxWorkers, Math.min(2, hostCpus), show(report));
    },
  );

  testIf(
    cgroupSkip,
    "is 1 in an unlimited cgroup whose parent has a quota of 1 CPU",
    async () => {
      const report = await withCgroup(
        cgroupHost!,
        [cgroupName("parent"), "child"],
        ([parent]) => limitCpus(cgroupHost!.version, parent),
        (leaf) => runChild(inCgroup(leaf)),
      );
      assert.equal(report.maxWorkers, 1, show(report));
    },
  );

  testIf(
    runtime !== "deno" ? "permissions exist only on Deno" : cgroupSkip,
    "is 1 in a 1-CPU cgroup on Deno without --allow-all, from Deno's own count, unprompted",
    async () => {
      const report = await withCgroup(
        cgroupHost!,
        [cgroupName("deno")],
        ([leaf]) => limitCpus(cgroupHost!.version, leaf),
        (leaf) => runChild(inCgroup(leaf), ["--allow-read"]),
      );
      assert.equal(report.maxWorkers, 1, show(report));
    },
  );

  testIf(
    taskset === undefined ? "taskset is not installed" : hostCpus < 2 ? ONE_CPU_HOST : undefined,
    "is 1 under taskset -c 0",
    async () => {
      const report = await runChild([taskset!, "-c", "0"]);
      assert.equal(report.maxWorkers, 1, show(report));
    },
  );
});
