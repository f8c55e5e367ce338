/**
 * The PROCESS stage's pure core (docs/design.md, Rules): applies `price-ticks` log entries one at a time and
 * produces processed ticks, final candles, indicator points, alerts and dead letters. No I/O: the
 * runner feeds it the log and writes what it produced to the store together with `snapshot()`.
 *
 * Watermarks: a symbol's watermark is max(its largest tick ts - latenessMs, the processor's floor).
 * The floor is raised by `clock` entries to wallMs - latenessMs (the quiet-symbol rule: a window
 * closes once wall-clock time passes its end plus the lateness) and by an `end` entry to +Infinity.
 * The floor is processor-wide, so it also applies to symbols first seen after it was raised: a tick
 * whose 1m bucket ended at or before the floor is late whether or not its window ever existed, which
 * keeps every longer window the exact roll-up of its 1m candles.
 */
import type {
  Alert,
  AlertKind,
  Candle,
  Counters,
  DeadLetter,
  IndicatorPoint,
  IngestEntry,
  Interval,
  ProcessedTick,
  Tick,
} from '../core/records.ts';
import { emptyCounters, INTERVAL_MS, INTERVALS } from '../core/records.ts';
import {
  cooledDown,
  crossedAbove,
  crossedBelow,
  crossMessage,
  groupPriceRules,
  type MaCrossConfig,
  maCross,
  type PriceRule,
  priceAboveMessage,
  priceBelowMessage,
} from './alerts.ts';
import {
  type AnomalyConfig,
  AnomalyDetector,
  type AnomalyParameters,
  type AnomalyState,
  anomalyMessage,
  resolveAnomaly,
} from './anomaly.ts';
import { bucketStart, SymbolCandles, type SymbolCandlesState } from './candles.ts';
import { CandleIndicators, type CandleIndicatorsState } from './indicators/candle-indicators.ts';
import { TickMovingAverages } from './moving-average.ts';

export type { MaCrossConfig, PriceRule } from './alerts.ts';
export type { AnomalyConfig } from './anomaly.ts';
export { DEFAULT_ANOMALY } from './anomaly.ts';

const MINUTE_MS = INTERVAL_MS['1m'];

/** Position of `interval` in INTERVALS; comparisons of interned constants beat a keyed lookup here. */
function intervalIndex(interval: Interval): number {
  return interval === '1m' ? 0 : interval === '5m' ? 1 : interval === '15m' ? 2 : interval === '1h' ? 3 : 4;
}

export interface ProcessConfig {
  /** Allowed lateness of event time, ms (docs/design.md default 10 000). */
  latenessMs: number;
  priceRules: PriceRule[];
  /** Golden/death crosses: absent means on with no cooldown (docs/design.md, Rules). */
  maCross?: MaCrossConfig;
  anomaly: AnomalyConfig;
}

/** What applying log entries produced, in log order within each list. */
export interface ProcessOutput {
  ticks: ProcessedTick[];
  /** Final candles only. */
  candles: Candle[];
  indicators: IndicatorPoint[];
  alerts: Alert[];
  deadLetters: DeadLetter[];
}

export function emptyOutput(): ProcessOutput {
  return { ticks: [], candles: [], indicators: [], alerts: [], deadLetters: [] };
}

/** The state of one symbol in a snapshot. */
export interface SymbolSnapshot {
  symbol: string;
  /** The last (up to) 20 prices, oldest first. */
  recentPrices: number[];
  /** Price of the previous tick in log order, null before the first. */
  lastPrice: number | null;
  /** maShort - maLong at the previous tick, null while either was null. */
  lastMaDifference: number | null;
  /** Largest tick ts seen, null before the first tick. */
  maxTs: number | null;
  candles: SymbolCandlesState;
  /** Candle indicators per interval, in INTERVALS order. */
  indicators: CandleIndicatorsState[];
  anomaly: AnomalyState;
  /**
   * Event time of each price rule's last firing, in the order of the symbol's rules in the config,
   * null for never. Absent in snapshots written before cooldowns existed (as if none had fired).
   */
  ruleFiredTs?: (number | null)[];
  /** Event time of the symbol's last cross alert, null for never. */
  crossFiredTs?: number | null;
}

/** Everything the processor knows, as plain JSON (no Infinity, no NaN). */
export interface ProcessorSnapshot {
  version: 1;
  counters: Counters;
  /** One past the seq of the last alert fired. */
  nextAlertSeq: number;
  /** The clock floor of the watermark (wallMs - latenessMs), null before any clock entry. */
  clockFloorMs: number | null;
  /** True once an `end` entry raised every watermark to +Infinity. */
  ended: boolean;
  /** In order of first appearance, which is the order `clock` and `end` entries visit them. */
  symbols: SymbolSnapshot[];
}

const NO_RULES: readonly PriceRule[] = [];

/**
 * An alert's seq is its tick's place in ingest order times this, plus its index among that tick's
 * alerts: ordered as fired, and comparable across processors of different partitions (ties of `ts`
 * between symbols then sort in ingest order, as in the embedded log). A tick fires at most two
 * alerts per price rule of its symbol plus a cross and an anomaly; the config allows 1 000 rules.
 */
export const ALERT_SEQ_STRIDE = 4096;

/** Per-symbol state, looked up once per tick. */
class SymbolState {
  readonly symbol: string;
  readonly averages = new TickMovingAverages();
  readonly candles: SymbolCandles;
  readonly indicators: CandleIndicators[];
  readonly anomaly = new AnomalyDetector();
  readonly rules: readonly PriceRule[];
  /** NaN before the first tick: comparisons with NaN are false, so no price rule fires then. */
  lastPrice = Number.NaN;
  /** NaN while either average is null, for the same reason (see `maCross`). */
  lastMaDifference = Number.NaN;
  maxTs = Number.NEGATIVE_INFINITY;
  /** Event time of each rule's last firing, NaN for never (so `cooledDown` lets it fire). */
  readonly ruleFiredTs: number[];
  crossFiredTs = Number.NaN;
  /** Built once: crosses are frequent on a noisy market, and formatting numbers per alert is not cheap. */
  readonly goldenCrossMessage: string;
  readonly deathCrossMessage: string;

  constructor(symbol: string, rules: readonly PriceRule[], candles?: SymbolCandlesState) {
    this.symbol = symbol;
    this.goldenCrossMessage = crossMessage('golden_cross', symbol);
    this.deathCrossMessage = crossMessage('death_cross', symbol);
    this.rules = rules;
    this.ruleFiredTs = rules.map(() => Number.NaN);
    this.candles = new SymbolCandles(symbol, candles);
    this.indicators = INTERVALS.map((interval) => new CandleIndicators(symbol, interval));
  }
}

/**
 * The tick as the store keeps it. One literal per shape of the optional fields, because adding a
 * property after creation moves it out of the object into a separately allocated backing store.
 */
function processedTick(
  tick: Tick,
  seq: number,
  maShort: number | null,
  maLong: number | null,
  late: boolean,
): ProcessedTick {
  const { source, symbol, ts, price, size, id, side, receivedAt } = tick;
  if (id !== undefined) {
    if (side !== undefined)
      return { source, symbol, ts, price, size, id, side, receivedAt, seq, maShort, maLong, late };
    return { source, symbol, ts, price, size, id, receivedAt, seq, maShort, maLong, late };
  }
  if (side !== undefined)
    return { source, symbol, ts, price, size, side, receivedAt, seq, maShort, maLong, late };
  return { source, symbol, ts, price, size, receivedAt, seq, maShort, maLong, late };
}

function nullToNaN(value: number | null): number {
  return value === null ? Number.NaN : value;
}

function nanToNull(value: number): number | null {
  return Number.isNaN(value) ? null : value;
}

function copyCounters(counters: Counters): Counters {
  return { ...counters, rejectedByReason: { ...counters.rejectedByReason } };
}

/** Applies log entries to per-symbol state; see the module comment for the watermark rules. */
export class Processor {
  private readonly latenessMs: number;
  private readonly anomalyEnabled: boolean;
  private readonly anomaly: AnomalyParameters;
  private readonly crossesEnabled: boolean;
  private readonly crossCooldownMs: number;
  private readonly rulesBySymbol: Map<string, PriceRule[]>;
  private readonly symbols = new Map<string, SymbolState>();
  private readonly totals: Counters;
  private nextAlertSeq: number;
  /** The tick being applied: its seq times ALERT_SEQ_STRIDE, and how many alerts it fired so far. */
  private alertSeqBase = 0;
  private alertsOfTick = 0;
  /** Lower bound of every symbol's watermark: -Infinity, wallMs - lateness, or +Infinity after `end`. */
  private floorMs = Number.NEGATIVE_INFINITY;

  constructor(config: ProcessConfig, snapshot?: ProcessorSnapshot) {
    this.latenessMs = config.latenessMs;
    this.anomalyEnabled = config.anomaly.enabled;
    this.anomaly = resolveAnomaly(config.anomaly);
    const maCrossConfig = config.maCross ?? { cooldownMs: 0 };
    this.crossesEnabled = maCrossConfig !== false;
    this.crossCooldownMs = maCrossConfig === false ? 0 : maCrossConfig.cooldownMs;
    this.rulesBySymbol = groupPriceRules(config.priceRules);
    if (snapshot === undefined) {
      this.totals = emptyCounters();
      this.nextAlertSeq = 0;
      return;
    }
    if (snapshot.version !== 1)
      throw new Error(`unsupported processor snapshot version ${String(snapshot.version)}`);
    this.totals = copyCounters(snapshot.counters);
    this.nextAlertSeq = snapshot.nextAlertSeq;
    if (snapshot.ended) this.floorMs = Number.POSITIVE_INFINITY;
    else if (snapshot.clockFloorMs !== null) this.floorMs = snapshot.clockFloorMs;
    for (const saved of snapshot.symbols) {
      const state = new SymbolState(saved.symbol, this.rulesFor(saved.symbol), saved.candles);
      state.averages.restore(saved.recentPrices);
      state.lastPrice = nullToNaN(saved.lastPrice);
      state.lastMaDifference = nullToNaN(saved.lastMaDifference);
      state.maxTs = saved.maxTs === null ? Number.NEGATIVE_INFINITY : saved.maxTs;
      saved.indicators.forEach((indicators, i) => {
        state.indicators[i]?.restore(indicators);
      });
      state.anomaly.restore(saved.anomaly);
      // Restored by position only while the symbol's rules are as many as when saved; a changed
      // config starts its cooldowns afresh rather than pin one rule's quiet time on another.
      if (saved.ruleFiredTs !== undefined && saved.ruleFiredTs.length === state.ruleFiredTs.length) {
        saved.ruleFiredTs.forEach((firedTs, i) => {
          state.ruleFiredTs[i] = nullToNaN(firedTs);
        });
      }
      state.crossFiredTs = nullToNaN(saved.crossFiredTs ?? null);
      this.symbols.set(saved.symbol, state);
    }
  }

  /**
   * Applies one log entry read at `offset`; pushes what it produced onto `out`. Synchronous. The
   * entry's place in ingest order is its `seq` when ingest stamped one (distributed), else `offset`.
   */
  apply(entry: IngestEntry, offset: number, out: ProcessOutput): void {
    const seq = entry.seq ?? offset;
    switch (entry.kind) {
      case 'tick':
        this.applyTick(entry, seq, out);
        return;
      case 'rejected':
        this.totals.received++;
        this.totals.rejected++;
        this.totals.rejectedByReason[entry.reason] = (this.totals.rejectedByReason[entry.reason] ?? 0) + 1;
        out.deadLetters.push({
          seq,
          source: entry.source,
          reason: entry.reason,
          detail: entry.detail,
          raw: entry.raw,
          receivedAt: entry.receivedAt,
        });
        return;
      case 'duplicate':
        this.totals.received++;
        this.totals.duplicates++;
        return;
      case 'clock':
        this.raiseFloor(entry.wallMs - this.latenessMs, out);
        return;
      case 'end':
        this.raiseFloor(Number.POSITIVE_INFINITY, out);
        return;
    }
  }

  /** JSON-serialisable; `new Processor(config, JSON.parse(JSON.stringify(p.snapshot())))` continues bit-identically. */
  snapshot(): ProcessorSnapshot {
    const symbols: SymbolSnapshot[] = [];
    for (const state of this.symbols.values()) {
      symbols.push({
        symbol: state.symbol,
        recentPrices: state.averages.snapshot(),
        lastPrice: nanToNull(state.lastPrice),
        lastMaDifference: nanToNull(state.lastMaDifference),
        maxTs: state.maxTs === Number.NEGATIVE_INFINITY ? null : state.maxTs,
        candles: state.candles.snapshot(),
        indicators: state.indicators.map((indicators) => indicators.snapshot()),
        anomaly: state.anomaly.snapshot(),
        ruleFiredTs: state.ruleFiredTs.map(nanToNull),
        crossFiredTs: nanToNull(state.crossFiredTs),
      });
    }
    const ended = this.floorMs === Number.POSITIVE_INFINITY;
    return {
      version: 1,
      counters: copyCounters(this.totals),
      nextAlertSeq: this.nextAlertSeq,
      clockFloorMs: ended || this.floorMs === Number.NEGATIVE_INFINITY ? null : this.floorMs,
      ended,
      symbols,
    };
  }

  /** A copy of the counters. */
  counters(): Counters {
    return copyCounters(this.totals);
  }

  /** Open windows of a symbol and interval, ascending by ts, with final: false. [] for unknown symbols. */
  formingCandles(symbol: string, interval: Interval): Candle[] {
    const state = this.symbols.get(symbol) ?? this.symbols.get(symbol.trim().toUpperCase());
    return state === undefined ? [] : state.candles.forming(interval);
  }

  private applyTick(tick: Tick, seq: number, out: ProcessOutput): void {
    this.alertSeqBase = seq * ALERT_SEQ_STRIDE;
    this.alertsOfTick = 0;
    const totals = this.totals;
    totals.received++;
    totals.accepted++;
    const symbol = tick.symbol;
    const state = this.symbols.get(symbol) ?? this.addSymbol(symbol);
    const { ts, price } = tick;

    const averages = state.averages;
    averages.add(price);
    const maShort = averages.short;
    const maLong = averages.long;

    const lateness = this.latenessMs;
    const watermarkBefore = Math.max(state.maxTs - lateness, this.floorMs);
    const bucket = bucketStart(ts, MINUTE_MS);
    const late = bucket + MINUTE_MS <= watermarkBefore;
    if (late) totals.late++;
    else state.candles.addTick(bucket, ts, price, tick.size);

    out.ticks.push(processedTick(tick, seq, maShort, maLong, late));

    if (ts > state.maxTs) {
      state.maxTs = ts;
      const watermark = Math.max(ts - lateness, this.floorMs);
      if (watermark > watermarkBefore) this.closeWindows(state, watermark, out);
    }

    const previous = state.lastPrice;
    const rules = state.rules;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      const above = rule.above !== undefined && crossedAbove(previous, price, rule.above);
      const below = rule.below !== undefined && crossedBelow(previous, price, rule.below);
      if (!(above || below)) continue;
      const cooldownMs = rule.cooldownMs;
      if (cooldownMs !== undefined && !cooledDown(state.ruleFiredTs[i]!, ts, cooldownMs)) continue;
      state.ruleFiredTs[i] = ts;
      if (above) {
        this.fire(out, tick, 'price_above', priceAboveMessage(symbol, price, rule.above!), rule.above);
      } else {
        this.fire(out, tick, 'price_below', priceBelowMessage(symbol, price, rule.below!), rule.below);
      }
    }

    const difference = maShort === null || maLong === null ? Number.NaN : maShort - maLong;
    const cross = maCross(state.lastMaDifference, difference);
    if (cross !== null && this.crossesEnabled && cooledDown(state.crossFiredTs, ts, this.crossCooldownMs)) {
      state.crossFiredTs = ts;
      this.fire(
        out,
        tick,
        cross,
        cross === 'golden_cross' ? state.goldenCrossMessage : state.deathCrossMessage,
      );
    }
    state.lastMaDifference = difference;

    if (this.anomalyEnabled && !Number.isNaN(previous)) {
      const logReturn = Math.log(price / previous);
      const z = state.anomaly.observe(logReturn, this.anomaly);
      if (z !== null) this.fire(out, tick, 'anomaly', anomalyMessage(symbol, logReturn, z));
    }
    state.lastPrice = price;
  }

  private addSymbol(symbol: string): SymbolState {
    const state = new SymbolState(symbol, this.rulesFor(symbol));
    this.symbols.set(symbol, state);
    return state;
  }

  private rulesFor(symbol: string): readonly PriceRule[] {
    return this.rulesBySymbol.get(symbol) ?? NO_RULES;
  }

  /** Raises the processor-wide watermark floor and closes every symbol's windows it passes. */
  private raiseFloor(floorMs: number, out: ProcessOutput): void {
    if (!(floorMs > this.floorMs)) return;
    this.floorMs = floorMs;
    for (const state of this.symbols.values()) {
      this.closeWindows(state, Math.max(state.maxTs - this.latenessMs, floorMs), out);
    }
  }

  /** Makes final the windows of `state` that end at or before `watermark`, with their indicator points. */
  private closeWindows(state: SymbolState, watermark: number, out: ProcessOutput): void {
    const candles = out.candles;
    const first = candles.length;
    state.candles.closeThrough(watermark, candles);
    for (let i = first; i < candles.length; i++) {
      const candle = candles[i]!;
      out.indicators.push(state.indicators[intervalIndex(candle.interval)]!.add(candle.ts, candle.close));
    }
    this.totals.candlesClosed += candles.length - first;
  }

  private fire(out: ProcessOutput, tick: Tick, kind: AlertKind, message: string, threshold?: number): void {
    const seq = this.alertSeqBase + this.alertsOfTick++;
    this.nextAlertSeq = seq + 1;
    const alert: Alert = {
      seq,
      ts: tick.ts,
      symbol: tick.symbol,
      kind,
      price: tick.price,
      message,
    };
    if (threshold !== undefined) alert.threshold = threshold;
    out.alerts.push(alert);
    this.totals.alertsFired++;
  }
}
