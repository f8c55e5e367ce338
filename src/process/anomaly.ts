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

/** The knobs, named as in the config file (`alerts.anomaly`). */
export interface AnomalyConfig {
  enabled: boolean;
  /** |z| at or above which a return is anomalous. Default 6. */
  zScore: number;
  /** Half-life, in ticks, of the weights of the mean and variance of returns. Default 100. */
  halfLifeTicks: number;
  /** Returns a symbol must have seen before it can alert. Default 50. */
  warmupTicks: number;
  /** Returns after an alert during which the symbol does not alert again. Default 20. */
  cooldownTicks: number;
  /** Floor of the standard deviation of log returns. Default 1e-4 (1 basis point). */
  minStdDev?: number;
}

/** Off; the other defaults match the config schema's. */
export const DEFAULT_ANOMALY: AnomalyConfig = {
  enabled: false,
  zScore: 6,
  halfLifeTicks: 100,
  warmupTicks: 50,
  cooldownTicks: 20,
  minStdDev: 1e-4,
};

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
    minStdDev: config.minStdDev ?? 1e-4,
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
