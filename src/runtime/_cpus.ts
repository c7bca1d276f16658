/**
 * Usable CPUs: the CPUs this process may run on (affinity) capped by its cgroup CPU quota, so
 * that a container limited to 2 CPUs on a 64-core host gets 2 workers, not 64.
 *
 * The runtimes' own counts disagree: all three honour affinity, but only some apply a quota,
 * and those that do round it down and may stop at the leaf cgroup (measured in
 * docs/guide.md, "Pool size"). So on Linux the count is computed here from the files the
 * kernel exposes, the same way on every runtime:
 *
 * ```
 * /proc/self/status Cpus_allowed_list ∩ /sys/devices/system/cpu/online ─► affinity ─┐
 * /proc/self/cgroup + /proc/self/mountinfo ─► own cgroup dir, v1 and v2            ├─► min, ≥ 1
 *   └─ walk up to the mount point: cpu.max | cpu.cfs_quota_us / cpu.cfs_period_us ─► ⌈quota⌉ ─┘
 * ```
 *
 * Every read may fail (not Linux, no cgroup, a sandbox, Deno without `--allow-all`); a failed
 * read only means that fact is unknown, never an error. Unknown affinity falls back to the
 * runtime's own count.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/** Reads a whole text file; `undefined` when it cannot be read, for whatever reason. */
export type ReadText = (path: string) => string | undefined;

/** Where the kernel says which cgroup this process is in. */
const PROC_CGROUP = "/proc/self/cgroup";
/** Where the kernel lists mounts, to find the cgroup hierarchies. */
const PROC_MOUNTINFO = "/proc/self/mountinfo";
/** Holds `Cpus_allowed_list`, the affinity mask. */
const PROC_STATUS = "/proc/self/status";
/** The affinity mask may name CPUs that are not online; the kernel's own count skips them. */
const CPUS_ONLINE = "/sys/devices/system/cpu/online";
/**
 * Where a container's cgroup usually is when /proc/self cannot be read: with a cgroup
 * namespace (Docker's default on cgroup v2) the container's own cgroup is the mount's root.
 */
const ROOT_V2 = "/sys/fs/cgroup";
const ROOT_V1_CPU = "/sys/fs/cgroup/cpu";

/** A cgroup directory to walk up from, and where the walk stops. */
interface CgroupDir {
  readonly mountPoint: string;
  readonly dir: string;
  readonly version: 1 | 2;
}

/**
 * The usable CPUs: the affinity count capped by the cgroup CPU quota, at least 1.
 *
 * @param read Reads a file by absolute path (tests point it at a fake tree).
 * @param runtimeCount The runtime's own count, used when the affinity mask cannot be read.
 * @returns A positive integer.
 */
export function usableCpus(read: ReadText, runtimeCount: number): number {
  const affinity = affinityCount(read) ?? runtimeCount;
  return Math.max(1, Math.min(affinity, cpuQuota(read)));
}

/**
 * The CPUs the affinity mask allows and that are online, as `sched_getaffinity` counts them.
 * Read from /proc rather than taken from the runtime because Bun's and Deno's counts already
 * fold in a quota rounded down, which would hide the rounding up done here.
 *
 * @param read Reads a file by absolute path.
 * @returns The count, or `undefined` when the files are missing or unreadable.
 */
export function affinityCount(read: ReadText): number | undefined {
  const status = read(PROC_STATUS);
  const listed = status?.match(/^Cpus_allowed_list:[ \t]*(\S+)[ \t]*$/m)?.[1];
  if (listed === undefined) return undefined;
  const allowed = parseCpuList(listed);
  if (allowed === undefined || allowed.size === 0) return undefined;
  const onlineText = read(CPUS_ONLINE)?.trim();
  const online = onlineText === undefined ? undefined : parseCpuList(onlineText);
  if (online === undefined) return allowed.size;
  let n = 0;
  for (const cpu of allowed) if (online.has(cpu)) n++;
  return n > 0 ? n : undefined;
}

/** More CPUs than any machine has; a list beyond it is garbage, not worth a huge Set. */
const MAX_CPU_ID = 1 << 16;

/** Parses the kernel's CPU list format, `0-3,8,10-11`; `undefined` if it is not one. */
function parseCpuList(text: string): Set<number> | undefined {
  const cpus = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) return undefined;
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    if (last < first || last > MAX_CPU_ID) return undefined;
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
  }
  return cpus;
}

/**
 * The CPU quota of this process's cgroup in CPUs, rounded up: the smallest limit on the way
 * from its own cgroup to the root of each hierarchy (the kernel enforces every ancestor's),
 * cgroup v2 `cpu.max` and v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` alike. Rounded up
 * because 1.5 CPUs of quota keep two workers busy more than half the time.
 *
 * @param read Reads a file by absolute path.
 * @returns At least 1, or `Infinity` when there is no quota or it cannot be read.
 */
export function cpuQuota(read: ReadText): number {
  let quota = Infinity;
  for (const cgroup of ownCgroupDirs(read)) {
    for (const dir of upToMountPoint(cgroup)) {
      const cpus = cgroup.version === 2 ? quotaV2(read, dir) : quotaV1(read, dir);
      if (cpus !== undefined) quota = Math.min(quota, Math.max(1, Math.ceil(cpus)));
    }
  }
  return quota;
}

/** `cpu.max` is `max 100000` (no limit) or `200000 100000` (quota and period, µs). */
function quotaV2(read: ReadText, dir: string): number | undefined {
  const fields = read(`${dir}/cpu.max`)?.trim().split(/\s+/);
  if (fields === undefined || fields.length !== 2 || fields[0] === "max") return undefined;
  return ratio(fields[0], fields[1]);
}

/** `cpu.cfs_quota_us` is `-1` for no limit; the period is in a file of its own. */
function quotaV1(read: ReadText, dir: string): number | undefined {
  const quota = read(`${dir}/cpu.cfs_quota_us`)?.trim();
  if (quota === undefined || quota === "-1") return undefined;
  const period = read(`${dir}/cpu.cfs_period_us`)?.trim();
  return period === undefined ? undefined : ratio(quota, period);
}

/** quota / period for two positive decimal integers; `undefined` for anything else. */
function ratio(quota: string | undefined, period: string | undefined): number | undefined {
  if (quota === undefined || period === undefined) return undefined;
  if (!/^\d+$/.test(quota) || !/^\d+$/.test(period)) return undefined;
  const q = Number(quota);
  const p = Number(period);
  return q > 0 && p > 0 ? q / p : undefined;
}

/** `dir`, its parent, ... up to and including the mount point. */
function upToMountPoint({ mountPoint, dir }: CgroupDir): string[] {
  const dirs = [dir];
  for (let d = dir; d.length > mountPoint.length;) {
    d = d.slice(0, d.lastIndexOf("/"));
    dirs.push(d.length > mountPoint.length ? d : mountPoint);
  }
  return dirs;
}

/**
 * The directories of this process's cgroups that can hold a CPU quota: the v2 one and the
 * v1 `cpu` controller's. Without /proc/self/cgroup or /proc/self/mountinfo, the usual mount
 * roots (right in a container with a cgroup namespace, harmless on a host: a root cgroup has
 * no quota).
 */
function ownCgroupDirs(read: ReadText): CgroupDir[] {
  const cgroupText = read(PROC_CGROUP);
  const mountText = cgroupText === undefined ? undefined : read(PROC_MOUNTINFO);
  if (cgroupText === undefined || mountText === undefined) {
    return [
      { mountPoint: ROOT_V2, dir: ROOT_V2, version: 2 },
      { mountPoint: ROOT_V1_CPU, dir: ROOT_V1_CPU, version: 1 },
    ];
  }
  const mounts = parseMountinfo(mountText);
  const dirs: CgroupDir[] = [];
  for (const line of cgroupText.split("\n")) {
    // hierarchy-id:controller,list:/path — v2 is `0::/path`, v1 cpu is e.g. `4:cpu,cpuacct:/x`.
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line);
    if (m === null) continue;
    const [, id, controllers, path] = m;
    const version = id === "0" && controllers === "" ? 2 : 1;
    if (version === 1 && !controllers.split(",").includes("cpu")) continue;
    // A hierarchy can be mounted more than once (bind mounts); any mount that reaches the
    // path will do.
    for (const mount of mounts) {
      if (!holdsCpuQuota(mount, version)) continue;
      const dir = joinUnder(mount, path);
      if (dir === undefined) continue;
      dirs.push({ mountPoint: mount.mountPoint, dir, version });
      break;
    }
  }
  return dirs;
}

/** Whether `mount` is the v2 hierarchy, or for v1 the one the `cpu` controller is bound to. */
function holdsCpuQuota(mount: Mount, version: 1 | 2): boolean {
  return version === 2
    ? mount.fsType === "cgroup2"
    : mount.fsType === "cgroup" && mount.superOptions.includes("cpu");
}

/**
 * Where cgroup `path` is in the file system. The mount may show only a subtree (`root`, e.g.
 * `/docker/abc` when a container sees its host's hierarchy); a path outside it cannot be
 * reached, and guessing could apply a sibling's quota.
 */
function joinUnder(mount: Mount, path: string): string | undefined {
  const root = mount.root === "/" ? "" : mount.root;
  if (path !== root && !path.startsWith(`${root}/`)) return undefined;
  const rest = path.slice(root.length).replace(/\/+$/, "");
  return mount.mountPoint.replace(/\/+$/, "") + rest || "/";
}

interface Mount {
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

/**
 * The cgroup mounts of /proc/self/mountinfo: `id parent dev root mountpoint opts [tags] -
 * fstype source superopts`, with spaces in paths written as octal escapes.
 */
function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    const fsType = fields[dash + 1];
    if (fsType !== "cgroup" && fsType !== "cgroup2") continue;
    mounts.push({
      root: unescapeOctal(fields[3]),
      mountPoint: unescapeOctal(fields[4]),
      fsType,
      superOptions: fields[dash + 3].split(","),
    });
  }
  return mounts;
}

function unescapeOctal(field: string): string {
  return field.replace(
    /\\([0-7]{3})/g,
    (_, code: string) => String.fromCharCode(parseInt(code, 8)),
  );
}

/**
 * The runtime's own count: `os.availableParallelism()` (affinity on every runtime, plus a
 * rounded-down quota on some), else `navigator.hardwareConcurrency`, else 1.
 */
export function runtimeCpuCount(): number {
  try {
    const n = availableParallelism();
    if (Number.isInteger(n) && n > 0) return n;
  } catch {
    // fall through to navigator
  }
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : 1;
}

interface DenoPermissions {
  querySync(desc: { name: "read"; path: string }): { state: string };
}

const denoPermissions = (globalThis as { Deno?: { permissions: DenoPermissions } }).Deno
  ?.permissions;

/**
 * Reads a system file without ever prompting: on Deno only when read access is already
 * granted (Deno 2.9 also wants `--allow-all` for /proc and /sys, and says so by throwing,
 * which is caught like any other failure).
 *
 * @param path An absolute path.
 * @returns The file's text, or `undefined`.
 */
export function readSystemText(path: string): string | undefined {
  try {
    if (
      denoPermissions !== undefined &&
      denoPermissions.querySync({ name: "read", path }).state !== "granted"
    ) {
      return undefined;
    }
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
