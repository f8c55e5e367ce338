/**
 * Alert rules that need no history beyond the previous tick (docs/design.md, Rules): price thresholds from the
 * config, and golden/death crosses of the per-tick moving averages.
 */
import type { z } from 'zod';
import type { maCrossSchema } from './alerts-config.ts';

/** A price threshold rule from the config: exactly one of `above` / `below`. */
export interface PriceRule {
  symbol: string;
  above?: number;
  below?: number;
  /** Event time after a firing during which this rule stays quiet (docs/design.md, Rules); absent or 0: none. */
  cooldownMs?: number;
}

/**
 * Whether golden/death crosses fire, and how often (docs/design.md, Rules `alerts.maCross`): `false` turns them
 * off; `cooldownMs` is event time after a cross of a symbol during which that symbol fires no cross
 * of either kind. Absent: on, with no cooldown, so the rules hold as written.
 */
export type MaCrossConfig = z.output<typeof maCrossSchema>;

/**
 * True when an alert that last fired at `lastFiredTs` (NaN: never) may fire for a tick at `ts`: the
 * tick is at least `cooldownMs` of event time later. With a cooldown, a tick older than the firing (a
 * late one) is not later, so it waits too; with none (0), everything may fire.
 */
export function cooledDown(lastFiredTs: number, ts: number, cooldownMs: number): boolean {
  return cooldownMs <= 0 || !(ts - lastFiredTs < cooldownMs);
}

/** Normalises rule symbols (trimmed, upper-cased, like ticks) and groups the rules by symbol. */
export function groupPriceRules(rules: readonly PriceRule[]): Map<string, PriceRule[]> {
  const bySymbol = new Map<string, PriceRule[]>();
  for (const rule of rules) {
    const symbol = rule.symbol.trim().toUpperCase();
    const normalized: PriceRule = { symbol };
    if (rule.above !== undefined) normalized.above = rule.above;
    if (rule.below !== undefined) normalized.below = rule.below;
    if (rule.cooldownMs !== undefined && rule.cooldownMs > 0) normalized.cooldownMs = rule.cooldownMs;
    const list = bySymbol.get(symbol);
    if (list === undefined) bySymbol.set(symbol, [normalized]);
    else list.push(normalized);
  }
  return bySymbol;
}

/** True when the price went from <= threshold to > threshold. False when there is no previous price (NaN). */
export function crossedAbove(previous: number, current: number, threshold: number): boolean {
  return previous <= threshold && current > threshold;
}

/** True when the price went from >= threshold to < threshold. False when there is no previous price (NaN). */
export function crossedBelow(previous: number, current: number, threshold: number): boolean {
  return previous >= threshold && current < threshold;
}

/**
 * The cross, if any, between two consecutive values of maShort - maLong. A difference is NaN while
 * either average is null, and every comparison with NaN is false, so no cross fires then.
 */
export type CrossKind = 'golden_cross' | 'death_cross';

export function maCross(previousDifference: number, difference: number): CrossKind | null {
  if (previousDifference <= 0 && difference > 0) return 'golden_cross';
  if (previousDifference >= 0 && difference < 0) return 'death_cross';
  return null;
}

export function priceAboveMessage(symbol: string, price: number, threshold: number): string {
  return `${symbol} rose above ${threshold} (now ${price})`;
}

export function priceBelowMessage(symbol: string, price: number, threshold: number): string {
  return `${symbol} fell below ${threshold} (now ${price})`;
}

export function crossMessage(kind: CrossKind, symbol: string): string {
  return kind === 'golden_cross'
    ? `Golden cross on ${symbol}: the 5-tick average crossed above the 20-tick average`
    : `Death cross on ${symbol}: the 5-tick average crossed below the 20-tick average`;
}
