import type { Indicator } from './indicator.ts';

export interface EmaState {
  /** Values added while seeding (capped at `period`). */
  seeded: number;
  seedSum: number;
  value: number | null;
}

/**
 * Exponential moving average with alpha = 2 / (period + 1), seeded with the simple mean of the first
 * `period` values (so it is null until then, like docs/design.md, Rules asks for `ema20`).
 */
export class Ema implements Indicator<number, EmaState> {
  readonly period: number;
  readonly alpha: number;
  private seeded = 0;
  private seedSum = 0;
  private value: number | null = null;

  constructor(period: number) {
    this.period = period;
    this.alpha = 2 / (period + 1);
  }

  add(value: number): void {
    if (this.value !== null) {
      this.value = this.alpha * value + (1 - this.alpha) * this.value;
      return;
    }
    this.seedSum += value;
    this.seeded++;
    if (this.seeded === this.period) this.value = this.seedSum / this.period;
  }

  getResult(): number | null {
    return this.value;
  }

  snapshot(): EmaState {
    return { seeded: this.seeded, seedSum: this.seedSum, value: this.value };
  }

  restore(state: EmaState): void {
    this.seeded = state.seeded;
    this.seedSum = state.seedSum;
    this.value = state.value;
  }
}
