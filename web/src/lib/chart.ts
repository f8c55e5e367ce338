/**
 * The symbol chart: candles with volume, moving-average and indicator overlays, an RSI pane and a
 * crosshair legend, on lightweight-charts (loaded only by the symbol page). Converts API records to
 * the library's bars and keeps every series' last point so live updates never go back in time.
 */
import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  createChart,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  type LineData,
  LineSeries,
  type MouseEventParams,
  type UTCTimestamp,
} from 'lightweight-charts';
import type { Candle, IndicatorPoint, StoredTick } from './api.ts';

export type Overlay = 'ma' | 'sma' | 'ema' | 'bb';

/** Bars shown on load when there are more: about two hours of 1m candles. */
const RECENT_BARS = 150;
/** Bar width (px, bar and gap) on load when there are few candles: wide enough to read, not blown up. */
const MIN_BAR_PX = 24;

const toTime = (ts: number) => (ts / 1000) as UTCTimestamp;

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** The values under the crosshair, for the legend. */
export interface Legend {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number | undefined;
  rsi: number | undefined;
}

export class SymbolChart {
  readonly #chart: IChartApi;
  readonly #candles: ISeriesApi<'Candlestick'>;
  readonly #volume: ISeriesApi<'Histogram'>;
  readonly #lines: Record<string, ISeriesApi<'Line'>>;
  readonly #rsi: ISeriesApi<'Line'>;
  /** Time (s) of the last bar of each series, so updates stay in order. */
  #lastCandle = 0;
  /** How far the last bar has got: a state of it with fewer trades, or forming after final, is older. */
  #lastTrades = 0;
  #lastFinal = false;
  #lastMa = 0;
  #lastIndicator = 0;
  #intervalMs = 60_000;

  constructor(container: HTMLElement, onLegend: (legend: Legend | undefined) => void) {
    this.#chart = createChart(container, {
      autoSize: true,
      layout: {
        // The library's licence asks for its attribution; the page also shows a text link.
        attributionLogo: true,
        background: { type: ColorType.Solid, color: 'transparent' },
        textColor: cssVar('--muted'),
        fontFamily: 'system-ui, sans-serif',
        panes: { separatorColor: cssVar('--border') },
      },
      grid: {
        vertLines: { color: cssVar('--border') },
        horzLines: { color: cssVar('--border') },
      },
      crosshair: { mode: CrosshairMode.Normal },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: cssVar('--border') },
      rightPriceScale: { borderColor: cssVar('--border') },
    });
    const up = cssVar('--up');
    const down = cssVar('--down');
    this.#candles = this.#chart.addSeries(CandlestickSeries, {
      upColor: up,
      downColor: down,
      wickUpColor: up,
      wickDownColor: down,
      borderVisible: false,
    });
    this.#volume = this.#chart.addSeries(HistogramSeries, {
      priceFormat: { type: 'volume' },
      priceScaleId: 'volume',
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.#volume.priceScale().applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    const line = (color: string, lineWidth: 1 | 2 = 1, lineStyle = 0) =>
      this.#chart.addSeries(LineSeries, {
        color,
        lineWidth,
        lineStyle,
        lastValueVisible: false,
        priceLineVisible: false,
        crosshairMarkerVisible: false,
      });
    this.#lines = {
      maShort: line('#f59e0b'),
      maLong: line('#a855f7'),
      sma20: line('#38bdf8'),
      ema20: line('#f472b6'),
      bbUpper: line('#94a3b8', 1, 2),
      bbMiddle: line('#94a3b8', 1, 1),
      bbLower: line('#94a3b8', 1, 2),
    };
    this.#rsi = this.#chart.addSeries(
      LineSeries,
      {
        color: '#60a5fa',
        lineWidth: 1,
        priceLineVisible: false,
        priceFormat: { type: 'price', precision: 1, minMove: 0.1 },
      },
      1,
    );
    this.#rsi.createPriceLine({
      price: 70,
      color: cssVar('--muted'),
      lineStyle: 2,
      lineWidth: 1,
      axisLabelVisible: false,
      title: '',
    });
    this.#rsi.createPriceLine({
      price: 30,
      color: cssVar('--muted'),
      lineStyle: 2,
      lineWidth: 1,
      axisLabelVisible: false,
      title: '',
    });
    this.#chart.panes()[1]?.setStretchFactor(0.25);
    this.#chart.subscribeCrosshairMove((param: MouseEventParams) => {
      const bar = param.seriesData.get(this.#candles) as
        | { time: number; open: number; high: number; low: number; close: number }
        | undefined;
      if (!bar || param.time === undefined) {
        onLegend(undefined);
        return;
      }
      const volume = param.seriesData.get(this.#volume) as { value: number } | undefined;
      const rsi = param.seriesData.get(this.#rsi) as { value: number } | undefined;
      onLegend({ ...bar, time: bar.time, volume: volume?.value, rsi: rsi?.value });
    });
  }

  #volumeBar(candle: Candle) {
    return {
      time: toTime(candle.ts),
      value: candle.volume,
      color: candle.close >= candle.open ? 'rgba(34,197,94,0.35)' : 'rgba(239,68,68,0.35)',
    };
  }

  /** Replaces the history. */
  setCandles(candles: Candle[], intervalMs: number): void {
    this.#intervalMs = intervalMs;
    this.#candles.setData(
      candles.map((c) => ({ time: toTime(c.ts), open: c.open, high: c.high, low: c.low, close: c.close })),
    );
    this.#volume.setData(candles.map((c) => this.#volumeBar(c)));
    const last = candles[candles.length - 1];
    this.#lastCandle = last ? toTime(last.ts) : 0;
    this.#lastTrades = last?.trades ?? 0;
    this.#lastFinal = last?.final ?? false;
    this.fitRecent();
  }

  /**
   * Shows the candles on load. Few: all of them from the left edge, bars MIN_BAR_PX wide,
   * so six bars are neither squeezed into the right edge (the library's default spacing) nor blown up
   * to half the chart each, and new ones fill in to the right. Many: the newest RECENT_BARS.
   */
  fitRecent(): void {
    const count = this.#candles.data().length;
    if (count === 0) return;
    const timeScale = this.#chart.timeScale();
    const slots = Math.floor(timeScale.width() / MIN_BAR_PX) || 40;
    if (count <= RECENT_BARS)
      timeScale.setVisibleLogicalRange({ from: -0.5, to: Math.max(count, slots) + 0.5 });
    else timeScale.setVisibleLogicalRange({ from: count - RECENT_BARS, to: count + 1 });
  }

  /** The logical range of bars on screen (for the tests): 0 is the first bar. */
  visibleRange(): { from: number; to: number } | null {
    return this.#chart.timeScale().getVisibleLogicalRange();
  }

  /**
   * Applies live candles (forming or just closed), ascending. Bars before the last one are ignored,
   * and so is a state of the last bar older than the one drawn: a bar only gains trades (late ticks
   * enter no candle) and ends final, so fewer trades, or forming after final, came earlier (live
   * candles that arrived while the history loaded, which already holds them).
   */
  updateCandles(candles: Iterable<Candle>): number {
    let applied = 0;
    for (const c of candles) {
      const time = toTime(c.ts);
      if (time < this.#lastCandle) continue;
      if (time === this.#lastCandle && (c.trades < this.#lastTrades || (this.#lastFinal && !c.final)))
        continue;
      this.#candles.update({ time, open: c.open, high: c.high, low: c.low, close: c.close });
      this.#volume.update(this.#volumeBar(c));
      this.#lastCandle = time;
      this.#lastTrades = c.trades;
      this.#lastFinal = c.final;
      applied++;
    }
    return applied;
  }

  /** maShort/maLong from ticks: one point per bar, the last tick's values in that bar. */
  setMovingAverages(ticks: StoredTick[]): void {
    const short: LineData[] = [];
    const long: LineData[] = [];
    for (const t of ticks) {
      const time = toTime(t.ts - (t.ts % this.#intervalMs));
      if (t.maShort !== null) pushOrReplace(short, { time, value: t.maShort });
      if (t.maLong !== null) pushOrReplace(long, { time, value: t.maLong });
    }
    this.#lines.maShort!.setData(short);
    this.#lines.maLong!.setData(long);
    this.#lastMa = Math.max(
      (short[short.length - 1]?.time as number | undefined) ?? 0,
      (long[long.length - 1]?.time as number | undefined) ?? 0,
    );
  }

  /** The last live tick's moving averages, on its bar. */
  updateMovingAverages(tick: StoredTick): void {
    const time = toTime(tick.ts - (tick.ts % this.#intervalMs));
    if (time < this.#lastMa) return;
    if (tick.maShort !== null) this.#lines.maShort!.update({ time, value: tick.maShort });
    if (tick.maLong !== null) this.#lines.maLong!.update({ time, value: tick.maLong });
    this.#lastMa = time;
  }

  setIndicators(points: IndicatorPoint[]): void {
    const series = (key: keyof IndicatorPoint): LineData[] => {
      const data: LineData[] = [];
      for (const p of points) {
        const value = p[key];
        if (value !== null) data.push({ time: toTime(p.ts), value });
      }
      return data;
    };
    for (const key of ['sma20', 'ema20', 'bbUpper', 'bbMiddle', 'bbLower'] as const) {
      this.#lines[key]!.setData(series(key));
    }
    this.#rsi.setData(series('rsi14'));
    this.#lastIndicator = points.length > 0 ? toTime(points[points.length - 1]!.ts) : 0;
  }

  /** True when `ts` is past the last indicator point (a newly closed candle: time to refetch). */
  needsIndicators(ts: number): boolean {
    return toTime(ts) > this.#lastIndicator;
  }

  showOverlay(overlay: Overlay, visible: boolean): void {
    const keys = {
      ma: ['maShort', 'maLong'],
      sma: ['sma20'],
      ema: ['ema20'],
      bb: ['bbUpper', 'bbMiddle', 'bbLower'],
    }[overlay];
    for (const key of keys) this.#lines[key]!.applyOptions({ visible });
  }

  /** What the candle series holds now, as the library has it (for the tests). */
  candleData(): readonly unknown[] {
    return this.#candles.data();
  }

  applyTheme(): void {
    this.#chart.applyOptions({
      layout: { textColor: cssVar('--muted'), panes: { separatorColor: cssVar('--border') } },
      grid: { vertLines: { color: cssVar('--border') }, horzLines: { color: cssVar('--border') } },
    });
  }

  remove(): void {
    this.#chart.remove();
  }
}

function pushOrReplace(data: LineData[], point: LineData): void {
  const last = data[data.length - 1];
  if (last && last.time === point.time) data[data.length - 1] = point;
  else data.push(point);
}
