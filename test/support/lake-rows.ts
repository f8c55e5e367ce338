/** Rows and processor checkpoint states for the lake's unit tests (writer, archive). */
import type { Alert, Candle, ProcessedTick } from '../../src/core/records.ts';

let seq = 0;

/** A tick with the next seq (shared by every test of the process, so seqs never repeat). */
export function lakeTick(symbol: string, ts: number, fields: Partial<ProcessedTick> = {}): ProcessedTick {
  seq++;
  return {
    source: 'replay',
    symbol,
    ts,
    price: 100 + (seq % 7),
    size: 1,
    id: String(seq),
    receivedAt: ts + 5,
    seq,
    maShort: null,
    maLong: null,
    late: false,
    ...fields,
  };
}

/** A tick whose values a lossy copy would change: NULL beside '', quotes, commas, newlines, long doubles. */
export function awkwardTick(symbol: string, ts: number, fields: Partial<ProcessedTick> = {}): ProcessedTick {
  const tick = lakeTick(symbol, ts, fields);
  const n = tick.seq;
  return {
    ...tick,
    price: 100.1 + n / 3,
    size: n % 2 === 0 ? 0 : 1e-9 * n,
    id: n % 3 === 0 ? undefined : n % 3 === 1 ? '' : `id,"${n}"\n`,
    ...(n % 2 === 0 ? { side: 'buy' as const } : {}),
    maShort: n % 2 === 0 ? null : Math.PI * n,
    ...fields,
  };
}

export function lakeCandle(symbol: string, ts: number, fields: Partial<Candle> = {}): Candle {
  return {
    symbol,
    interval: '1h',
    ts,
    open: 1,
    high: 2,
    low: 0.5,
    close: 1.5,
    volume: 3,
    trades: 2,
    vwap: 1.2,
    final: true,
    ...fields,
  };
}

export function lakeAlert(symbol: string, ts: number, tickSeq: number, fields: Partial<Alert> = {}): Alert {
  return {
    seq: tickSeq * 4096,
    ts,
    symbol,
    kind: 'price_above',
    price: 101,
    threshold: 100,
    message: 'up',
    ...fields,
  };
}

/** A processor checkpoint's state as far as the lake reads it. */
export function processorState(
  maxTs: Record<string, number>,
  options: { ended?: boolean; clockFloorMs?: number; late?: number } = {},
) {
  return {
    version: 1,
    ended: options.ended ?? false,
    clockFloorMs: options.clockFloorMs ?? null,
    ...(options.late === undefined ? {} : { counters: { late: options.late } }),
    symbols: Object.entries(maxTs).map(([symbol, ts]) => ({ symbol, maxTs: ts })),
  };
}
