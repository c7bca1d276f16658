/**
 * Input sources of the `fanout run` command, as GNU parallel combines them: the values after
 * `:::` (or the lines of a `::::` file) form a source; sources combine into every combination,
 * the last varying fastest, except that a source introduced by `:::+` (or `::::+`) is linked
 * to the one before it, pairwise.
 *
 * @module
 */

/** One input source and how it joins the sources before it. */
export interface Source {
  readonly values: readonly string[];
  /** `:::+` / `::::+`: paired with the previous source rather than combined with it. */
  readonly linked: boolean;
}

/**
 * The jobs' values, one array per job holding one value per source.
 *
 * @throws {RangeError} If the first source is linked (there is nothing to link it to).
 */
export function combine(sources: readonly Source[]): string[][] {
  if (sources.length === 0) return [];
  if (sources[0].linked) {
    throw new RangeError("Expected `:::` or `::::` before the first `:::+` or `::::+`");
  }
  // Linked sources form one group as long as its shortest source, as in GNU parallel.
  const groups: Source[][] = [];
  for (const source of sources) {
    if (source.linked) groups[groups.length - 1].push(source);
    else groups.push([source]);
  }
  let rows: string[][] = [[]];
  for (const group of groups) {
    const length = Math.min(...group.map((source) => source.values.length));
    const next: string[][] = [];
    for (const row of rows) {
      for (let i = 0; i < length; i++) {
        next.push([
          ...row,
          ...group.map((source) => source.values[i]),
        ]);
      }
    }
    rows = next;
  }
  return rows;
}

/** The lines of a text (a `::::` file or standard input), without a last empty line. */
export function lines(text: string): string[] {
  const all = text.split("\n").map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
  if (all.length > 0 && all[all.length - 1] === "") all.pop();
  return all;
}
