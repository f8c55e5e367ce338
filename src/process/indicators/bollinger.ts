import { RollingWindow } from '../rolling-window.ts';
import type { Indicator } from './indicator.ts';

export interface BollingerBands {
  upper: number;
  middle: number;
  lower: number;
}

export interface BollingerState {
  /** The newest values, oldest first (at most `period`). */
  values: number[];
}

/**
 * Bollinger bands: middle = mean of the last `period` values, upper/lower = middle +/- `width` x the
 * population standard deviation of those values. The deviation is computed two-pass over the window
 * (mean first, then squared deviations), never from running sums of squares, which lose precision.
 */
export class Bollinger implements Indicator<BollingerBands, BollingerState> {
  readonly period: number;
  readonly width: number;
  private readonly window: RollingWindow;
  /** The bands of the newest window, NaN until warm (read without an object per value). */
  upper = Number.NaN;
  middle = Number.NaN;
  lower = Number.NaN;

  constructor(period: number, width: number) {
    this.period = period;
    this.width = width;
    this.window = new RollingWindow(period);
  }

  add(value: number): void {
    this.window.push(value);
    if (this.window.count < this.period) return;
    const middle = this.window.sumLast(this.period) / this.period;
    const deviation = Math.sqrt(this.window.squaredDeviationSumLast(this.period, middle) / this.period);
    this.upper = middle + this.width * deviation;
    this.middle = middle;
    this.lower = middle - this.width * deviation;
  }

  getResult(): BollingerBands | null {
    if (this.window.count < this.period) return null;
    return { upper: this.upper, middle: this.middle, lower: this.lower };
  }

  snapshot(): BollingerState {
    return { values: this.window.toArray() };
  }

  restore(state: BollingerState): void {
    this.window.clear();
    this.upper = Number.NaN;
    this.middle = Number.NaN;
    this.lower = Number.NaN;
    for (const value of state.values) this.add(value);
  }
}
