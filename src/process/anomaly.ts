/**
 * Anomaly detection: an EWMA z-score of tick-to-tick log returns, per symbol.
 *
 * For each tick after a symbol's first, r = ln(price / previous price) (log order, late ticks
 * included, like the price rules). The detector keeps an exponentially weighted mean m and variance v
 * of r, with alpha = 1 - 2^(-1 / halfLifeTicks). Before folding r in, it scores
 * z = (r - m) / max(sqrt(v), minStdDev); when at least `warmupTicks` returns were seen, no alert fired
 * in the last `cooldownTicks` returns, and |z| >= `zScore`, the tick raises an `anomaly` alert. The
 * return is then folded in: d = r - m; m += alpha * d; v = (1 - alpha) * (v + alpha * d^2) (West/Finch
 * incremental EW variance). `minStdDev` keeps a move after a flat spell (v = 0) from being infinitely
 * surprising. Disabled by default: alerts fire only for what a user configures. See docs/anomaly.md.
 */
import type { z } from 'zod';
import { anomalySchema } from './alerts-config.ts';

/** The knobs, as the config file's `alerts.anomaly` parses (src/process/alerts-config.ts). */
export type AnomalyConfig = z.output<typeof anomalySchema>;

/** The config schema's defaults: off. */
export const DEFAULT_ANOMALY: AnomalyConfig = anomalySchema.parse(undefined);

/** The knobs resolved once for the hot path. */
export interface AnomalyParameters {
  zScore: number;
  alpha: number;
  warmupTicks: number;
  cooldownTicks: number;
  minStdDev: number;
}

export function resolveAnomaly(config: AnomalyConfig): AnomalyParameters {
  return {
    zScore: config.zScore,
    alpha: 1 - 2 ** (-1 / config.halfLifeTicks),
    warmupTicks: config.warmupTicks,
    cooldownTicks: config.cooldownTicks,
    minStdDev: config.minStdDev,
  };
}

export interface AnomalyState {
  returns: number;
  mean: number;
  variance: number;
  cooldown: number;
}

/** The anomaly state of one symbol. */
export class AnomalyDetector {
  /** Returns seen, capped at the warm-up (only the warm-up needs the count). */
  private returns = 0;
  private mean = 0;
  private variance = 0;
  /** Returns left in the current cool-down. */
  private cooldown = 0;

  /** Scores one log return, then learns from it. Returns its z-score if it is an anomaly, else null. */
  observe(logReturn: number, config: AnomalyParameters): number | null {
    let anomaly: number | null = null;
    if (this.returns >= config.warmupTicks) {
      if (this.cooldown > 0) this.cooldown--;
      else {
        const z = (logReturn - this.mean) / Math.max(Math.sqrt(this.variance), config.minStdDev);
        if (Math.abs(z) >= config.zScore) {
          anomaly = z;
          this.cooldown = config.cooldownTicks;
        }
      }
    }
    if (this.returns === 0) this.mean = logReturn;
    else {
      const deviation = logReturn - this.mean;
      const increment = config.alpha * deviation;
      this.mean += increment;
      this.variance = (1 - config.alpha) * (this.variance + deviation * increment);
    }
    if (this.returns < config.warmupTicks) this.returns++;
    return anomaly;
  }

  snapshot(): AnomalyState {
    return { returns: this.returns, mean: this.mean, variance: this.variance, cooldown: this.cooldown };
  }

  restore(state: AnomalyState): void {
    this.returns = state.returns;
    this.mean = state.mean;
    this.variance = state.variance;
    this.cooldown = state.cooldown;
  }
}

export function anomalyMessage(symbol: string, logReturn: number, z: number): string {
  const percent = (Math.exp(logReturn) - 1) * 100;
  const sign = percent >= 0 ? '+' : '';
  return `Unusual move on ${symbol}: ${sign}${percent.toFixed(2)}% in one tick (z = ${z.toFixed(1)})`;
}
