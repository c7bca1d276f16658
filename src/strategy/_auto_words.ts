/**
 * How auto's reasons write their figures: times, counts, shares, sizes, and the pool costs the
 * cost model priced with (each said to be measured or assumed). Formatted only when a reason is
 * read (most calls never look).
 *
 * @module
 */

import type { Figure, PoolCosts } from "../_calibration.ts";

/** A share as a percentage: `<1%`, one decimal below 10%, else whole. */
export function percent(share: number): string {
  const p = share * 100;
  return `${p < 1 ? "<1" : p < 10 ? p.toFixed(1).replace(/\.0$/, "") : Math.round(p)}%`;
}

/** `n` with thousands separators (by hand: `Intl` costs tens of µs on some runtimes). */
function grouped(n: number): string {
  const digits = String(Math.round(n));
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** `n` things, grouped, in the plural unless one. */
export function count(n: number, what: string): string {
  return `${grouped(n)} ${what}${n === 1 ? "" : "s"}`;
}

/** A time in ms, to two significant digits (grouped from 100 ms). */
export function ms(value: number): string {
  if (value >= 100) return `${grouped(value)} ms`;
  if (value >= 0.001) return `${Number(value.toPrecision(2))} ms`;
  return "<0.001 ms";
}

/** The figures the cost model priced the pool with, each said to be measured or assumed. */
export function figures({ start, roundTrip, transport }: PoolCosts): string {
  const how = (figure: Figure): string => figure.measured ? "(measured)" : "(assumed)";
  const us = transport.ms * 1000; // transport is a fraction of a µs per item
  return `; start ~${ms(start.ms)} ${how(start)}, round trip ~${ms(roundTrip.ms)} ${
    how(roundTrip)
  }, transport ~${us >= 0.001 ? `${Number(us.toPrecision(2))} µs` : "<0.001 µs"} per item ${
    how(transport)
  }`;
}

/** Bytes as MB, to three significant digits. */
export function megabytes(bytes: number): string {
  return `${Number((bytes / 1e6).toPrecision(3))} MB`;
}
