import type { IndicatorPoint, Interval } from '../../core/records.ts';
import { Bollinger, type BollingerState } from './bollinger.ts';
import { Ema, type EmaState } from './ema.ts';
import { Rsi, type RsiState } from './rsi.ts';
import { Sma, type SmaState } from './sma.ts';

export interface CandleIndicatorsState {
  sma20: SmaState;
  ema20: EmaState;
  rsi14: RsiState;
  bollinger: BollingerState;
}

/** The indicators of one symbol and interval (docs/design.md, Rules), fed the close of each final candle. */
export class CandleIndicators {
  readonly symbol: string;
  readonly interval: Interval;
  private readonly sma20 = new Sma(20);
  private readonly ema20 = new Ema(20);
  private readonly rsi14 = new Rsi(14);
  private readonly bollinger = new Bollinger(20, 2);

  constructor(symbol: string, interval: Interval) {
    this.symbol = symbol;
    this.interval = interval;
  }

  /** Adds the close of the final candle at `ts` and returns that candle's indicator point. */
  add(ts: number, close: number): IndicatorPoint {
    this.sma20.add(close);
    this.ema20.add(close);
    this.rsi14.add(close);
    const bollinger = this.bollinger;
    bollinger.add(close);
    // The bands' fields rather than getResult(): no object per point.
    const warm = !Number.isNaN(bollinger.middle);
    return {
      symbol: this.symbol,
      interval: this.interval,
      ts,
      sma20: this.sma20.getResult(),
      ema20: this.ema20.getResult(),
      rsi14: this.rsi14.getResult(),
      bbUpper: warm ? bollinger.upper : null,
      bbMiddle: warm ? bollinger.middle : null,
      bbLower: warm ? bollinger.lower : null,
    };
  }

  snapshot(): CandleIndicatorsState {
    return {
      sma20: this.sma20.snapshot(),
      ema20: this.ema20.snapshot(),
      rsi14: this.rsi14.snapshot(),
      bollinger: this.bollinger.snapshot(),
    };
  }

  restore(state: CandleIndicatorsState): void {
    this.sma20.restore(state.sma20);
    this.ema20.restore(state.ema20);
    this.rsi14.restore(state.rsi14);
    this.bollinger.restore(state.bollinger);
  }
}
