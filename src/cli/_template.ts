/**
 * GNU parallel's replacement strings for the `fanout run` command: `{}` the input, `{.}`
 * without its extension, `{/}` its basename, `{//}` its directory, `{/.}` the basename
 * without extension, `{#}` the job number (from 1), `{%}` the slot, and `{n}`, `{n.}`, … the
 * same for the n-th input source. A command without any of them gets the inputs appended.
 *
 * @module
 */

/** What one job's command is made from. */
export interface JobInput {
  /** One value per input source, in source order. */
  readonly values: readonly string[];
  /** The job number, from 1 (`{#}`). */
  readonly seq: number;
  /** The slot it runs in, from 1 (`{%}`). */
  readonly slot: number;
}

/** `{}`, `{.}`, `{/}`, `{//}`, `{/.}`, `{#}`, `{%}`, optionally with a source number. */
const REPLACEMENT = /\{(\d*)(\.|\/|\/\/|\/\.)?\}|\{#\}|\{%\}/g;

/** Whether `args` hold a replacement string (if not, the inputs are appended). */
export function hasReplacement(args: readonly string[]): boolean {
  return args.some((arg) => {
    REPLACEMENT.lastIndex = 0;
    return REPLACEMENT.test(arg);
  });
}

/** Whether any of `args` uses `{%}`, so a job's command can only be made once it has a slot. */
export function usesSlot(args: readonly string[]): boolean {
  return args.some((arg) => arg.includes("{%}"));
}

/**
 * Fills in one argument. `quote` shell-quotes each inserted value (for `--shell`, where the
 * command is one script, as GNU parallel does).
 *
 * @throws {RangeError} If `{n}` names a source that does not exist.
 */
export function fill(arg: string, input: JobInput, quote: (value: string) => string): string {
  return arg.replace(REPLACEMENT, (match: string, source?: string, how?: string) => {
    if (match === "{#}") return String(input.seq);
    if (match === "{%}") return String(input.slot);
    let value: string;
    if (source === undefined || source === "") {
      // As GNU parallel: each source's value transformed and quoted on its own.
      return input.values.map((each) => quote(transform(each, how))).join(" ");
    } else {
      const n = Number(source);
      if (n < 1 || n > input.values.length) {
        throw new RangeError(
          `Expected \`${match}\` to name an input source from 1 to ${input.values.length}, ` +
            `got source ${n}`,
        );
      }
      value = input.values[n - 1];
    }
    return quote(transform(value, how));
  });
}

/**
 * One job's argv: every argument filled in, or, when the command has no replacement string,
 * the command with the job's values appended (each its own argument).
 */
export function commandFor(
  args: readonly string[],
  input: JobInput,
  shell: boolean,
): string[] {
  const quote = shell ? shellQuote : (value: string): string => value;
  if (!hasReplacement(args)) {
    return shell
      ? [[...args, ...input.values.map(shellQuote)].join(" ")]
      : [...args, ...input.values];
  }
  const filled = args.map((arg) => fill(arg, input, quote));
  return shell ? [filled.join(" ")] : filled;
}

function transform(value: string, how: string | undefined): string {
  switch (how) {
    case undefined:
      return value;
    case ".":
      return withoutExtension(value);
    case "/":
      return basename(value);
    case "//":
      return dirname(value);
    default: // "/."
      return withoutExtension(basename(value));
  }
}

function basename(value: string): string {
  const slash = value.lastIndexOf("/");
  return slash === -1 ? value : value.slice(slash + 1);
}

function dirname(value: string): string {
  const slash = value.lastIndexOf("/");
  if (slash === -1) return ".";
  return slash === 0 ? "/" : value.slice(0, slash);
}

/** Drops the last extension (`a/b.tar.gz` → `a/b.tar`), never one of a directory's name; as in
 * GNU parallel, `.bashrc` becomes the empty string. */
function withoutExtension(value: string): string {
  const dot = value.lastIndexOf(".");
  return dot > value.lastIndexOf("/") ? value.slice(0, dot) : value;
}

/**
 * Quotes `value` for `/bin/sh` the way GNU parallel shows it: bare when it holds only safe
 * characters, in single quotes otherwise.
 */
export function shellQuote(value: string): string {
  if (value !== "" && /^[\w@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}
