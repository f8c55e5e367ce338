import { RollingWindow } from '../rolling-window.ts';
import type { Indicator } from './indicator.ts';

export interface SmaState {
  /** The newest values, oldest first (at most `period`). */
  values: number[];
}

/** Simple moving average: the mean of the last `period` values, summed oldest first. */
export class Sma implements Indicator<number, SmaState> {
  readonly period: number;
  private readonly window: RollingWindow;
  private result: number | null = null;

  constructor(period: number) {
    this.period = period;
    this.window = new RollingWindow(period);
  }

  add(value: number): void {
    this.window.push(value);
    if (this.window.count === this.period) this.result = this.window.sumLast(this.period) / this.period;
  }

  getResult(): number | null {
    return this.result;
  }

  snapshot(): SmaState {
    return { values: this.window.toArray() };
  }

  restore(state: SmaState): void {
    this.window.clear();
    this.result = null;
    for (const value of state.values) this.add(value);
  }
}
