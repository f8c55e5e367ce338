import type { Indicator } from './indicator.ts';

export interface RsiState {
  /** Values added, capped once warm (only the warm-up needs the exact count). */
  added: number;
  previous: number;
  gainSum: number;
  lossSum: number;
  averageGain: number | null;
  averageLoss: number;
}

/**
 * Wilder's RSI: the first average gain and loss are the plain means of the first `period` changes
 * (so the first value comes with the (period + 1)-th input), then avg = (prev * (period - 1) + current)
 * / period. RSI = 100 - 100 / (1 + avgGain / avgLoss); 100 when avgLoss is 0, 50 when both are 0.
 */
export class Rsi implements Indicator<number, RsiState> {
  readonly period: number;
  private added = 0;
  private previous = 0;
  private gainSum = 0;
  private lossSum = 0;
  private averageGain: number | null = null;
  private averageLoss = 0;

  constructor(period: number) {
    this.period = period;
  }

  add(value: number): void {
    if (this.added === 0) {
      this.previous = value;
      this.added = 1;
      return;
    }
    const change = value - this.previous;
    this.previous = value;
    const gain = Math.max(change, 0);
    const loss = Math.max(-change, 0);
    if (this.averageGain !== null) {
      this.averageGain = (this.averageGain * (this.period - 1) + gain) / this.period;
      this.averageLoss = (this.averageLoss * (this.period - 1) + loss) / this.period;
      return;
    }
    this.gainSum += gain;
    this.lossSum += loss;
    this.added++;
    if (this.added === this.period + 1) {
      this.averageGain = this.gainSum / this.period;
      this.averageLoss = this.lossSum / this.period;
    }
  }

  getResult(): number | null {
    if (this.averageGain === null) return null;
    if (this.averageLoss === 0) return this.averageGain === 0 ? 50 : 100;
    return 100 - 100 / (1 + this.averageGain / this.averageLoss);
  }

  snapshot(): RsiState {
    return {
      added: this.added,
      previous: this.previous,
      gainSum: this.gainSum,
      lossSum: this.lossSum,
      averageGain: this.averageGain,
      averageLoss: this.averageLoss,
    };
  }

  restore(state: RsiState): void {
    this.added = state.added;
    this.previous = state.previous;
    this.gainSum = state.gainSum;
    this.lossSum = state.lossSum;
    this.averageGain = state.averageGain;
    this.averageLoss = state.averageLoss;
  }
}
