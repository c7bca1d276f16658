// @ts-check
/**
 * A bench report and how it prints: what `run.ts` (which runs the scenarios) writes and
 * `compare.mjs` (which runs `run.ts` on every runtime) reads. Plain JavaScript so that
 * `compare.mjs` can load it on Node 20; the scenarios reach it through `_measure.ts`.
 *
 * @module
 */

/**
 * One measured figure, with the same-run baseline it is compared to.
 *
 * @typedef {object} Figure
 * @property {string} part The part of its scenario, the label of its row: "a", "p1", "tiny"…
 * @property {string} name What was measured.
 * @property {number} value The measurement.
 * @property {string} unit "ms", "µs", "items/s" or "count".
 * @property {{ name: string, value: number, unit: string }} [baseline] Measured in the same run.
 * @property {number} [ratio] `value` against `baseline`, as `ratioLabel` says.
 * @property {string} [ratioLabel] What the ratio is, e.g. "speedup" or "× bare".
 * @property {Target} [target] The goal this figure is held to.
 * @property {boolean} [met] Whether the target was met.
 * @property {string} [note] Anything a reader needs to read the figure right.
 */

/**
 * @typedef {object} Target
 * @property {"ratio" | "value"} on Which number the target applies to.
 * @property {">=" | "<=" | "=="} op
 * @property {number} value
 * @property {string} label How to print it.
 */

/**
 * What one run of `run.ts` prints with `--json`.
 *
 * @typedef {object} Report
 * @property {{ name: string, version: string }} runtime
 * @property {number} cpus CPUs visible to the process (honours `taskset`).
 * @property {Record<string, unknown>} options The sizes the run used.
 * @property {Figure[]} figures
 * @property {string[]} notes
 * @property {number} totalMs Wall time of the whole run.
 */

/** The line before the JSON report in `run.ts --json` output. */
export const REPORT_MARKER = "--- fanout bench report ---";

/**
 * Whether a figure meets its target.
 *
 * @param {Target} target
 * @param {number} value
 * @param {number | undefined} ratio
 * @returns {boolean}
 */
export function meets(target, value, ratio) {
  const x = target.on === "ratio" ? ratio : value;
  if (x === undefined || Number.isNaN(x)) return false;
  switch (target.op) {
    case ">=":
      return x >= target.value;
    case "<=":
      return x <= target.value;
    case "==":
      return x === target.value;
  }
}

/**
 * Prints a number with its unit, with as many digits as a noisy machine justifies.
 *
 * @param {number} value
 * @param {string} unit
 * @returns {string}
 */
export function formatValue(value, unit) {
  if (Number.isNaN(value)) return "n/a";
  switch (unit) {
    case "items/s":
      return `${Math.round(value).toLocaleString("en-US")} items/s`;
    case "count":
      return String(value);
    case "ms":
      return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ms`;
    case "µs":
      return `${value.toFixed(1)} µs`;
    default:
      return `${value} ${unit}`;
  }
}

/**
 * Renders one runtime's report as a text table.
 *
 * @param {Report} report
 * @returns {string}
 */
export function formatReport(report) {
  const header = ["", "figure", "value", "baseline (same run)", "ratio", "target", "met"];
  const rows = report.figures.map((f) => [
    f.part,
    f.name,
    formatValue(f.value, f.unit),
    f.baseline ? `${f.baseline.name} ${formatValue(f.baseline.value, f.baseline.unit)}` : "",
    f.ratio === undefined ? "" : `${f.ratio.toFixed(2)}× ${f.ratioLabel ?? ""}`.trimEnd(),
    f.target?.label ?? "",
    f.met === undefined ? "" : f.met ? "yes" : "NO",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (/** @type {string[]} */ cells) =>
    cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  const title =
    `${report.runtime.name} ${report.runtime.version} — ${report.cpus} CPU(s) visible, ` +
    `${(report.totalMs / 1000).toFixed(1)} s`;
  const out = [title, line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
  const notes = [
    ...report.figures.filter((f) => f.note).map((f) => `${f.part}: ${f.name}: ${f.note}`),
    ...report.notes,
  ];
  if (notes.length > 0) out.push("", ...notes.map((n) => `  * ${n}`));
  return out.join("\n");
}
