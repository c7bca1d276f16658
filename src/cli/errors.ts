/**
 * The errors of the `fanout` command.
 *
 * @module
 */

/** A wrong command line: the command prints the message on one line and exits with 255. */
export class UsageError extends Error {
  /** The flag (or subcommand) at fault, e.g. `"--halt"`. */
  readonly flag: string;

  constructor(flag: string, message: string) {
    super(message);
    this.name = "UsageError";
    this.flag = flag;
  }
}
