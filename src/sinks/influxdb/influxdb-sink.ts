/**
 * `influxdb`: line protocol over HTTP `/write` (InfluxDB 1.x, and the v1-compatible endpoint of
 * 2.x/3.x). Measurements `ticks`, `candles`, `indicators`, `alerts`, tagged by symbol (and source,
 * interval or kind), timestamped with the row's `ts`. A point is identified by measurement, tags and
 * time, so writing it again overwrites it with the same values: re-delivery is idempotent.
 *
 * Ticks and alerts can share a millisecond within one symbol, so their time is written in
 * nanoseconds: the row's `ts` in ms, plus its `seq` modulo 10^6 as the sub-millisecond part. Read
 * with `epoch=ms`, the time is exactly `ts`; the nanoseconds only keep the points apart.
 */
import { z } from 'zod';
import { durationField } from '../../core/config-fields.ts';
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../../core/records.ts';
import { type Sink, type SinkBatch, SinkError } from '../sink.ts';
import { sinkCommon, sinkRecords } from '../sink-config.ts';

export const influxdbSinkSchema = z.strictObject({
  type: z.literal('influxdb'),
  ...sinkCommon,
  records: sinkRecords,
  url: z
    .url()
    .describe(
      'Base URL, e.g. http://localhost:8086. Credentials come from INFLUXDB_USERNAME/INFLUXDB_PASSWORD or INFLUXDB_TOKEN, never from here.',
    ),
  database: z
    .string()
    .min(1)
    .default('streamlines')
    .describe('Database (1.x) or the bucket mapped to it (2.x/3.x).'),
  retentionPolicy: z
    .string()
    .min(1)
    .optional()
    .describe('Retention policy to write into (default: the database default).'),
  createDatabase: z
    .boolean()
    .default(true)
    .describe('CREATE DATABASE on start (1.x); set false for 2.x/3.x, where the bucket must exist.'),
  batchLines: z.number().int().positive().default(5_000).describe('Points per HTTP request, at most.'),
  timeout: durationField.default(10_000).describe('A request that takes longer is abandoned and retried.'),
});
export type InfluxdbSinkConfig = z.output<typeof influxdbSinkSchema>;

/** Escapes a tag value (commas, equals signs and spaces). */
function tag(value: string): string {
  return value.replace(/[\\,= ]/g, (c) => `\\${c}`);
}

/** A string field value, quoted. */
function text(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function float(value: number): string {
  return String(value);
}

/** Nanosecond time: `ts` ms, and a sub-millisecond part that keeps same-ms rows apart. */
function nanos(tsMs: number, discriminator: number): string {
  return `${tsMs}${String(discriminator % 1_000_000).padStart(6, '0')}`;
}

export function tickLine(tick: ProcessedTick): string {
  let fields = `price=${float(tick.price)},size=${float(tick.size)},seq=${tick.seq}i,late=${tick.late}`;
  if (tick.maShort !== null) fields += `,maShort=${float(tick.maShort)}`;
  if (tick.maLong !== null) fields += `,maLong=${float(tick.maLong)}`;
  if (tick.id !== undefined) fields += `,id=${text(tick.id)}`;
  if (tick.side !== undefined) fields += `,side=${text(tick.side)}`;
  return `ticks,source=${tag(tick.source)},symbol=${tag(tick.symbol)} ${fields} ${nanos(tick.ts, tick.seq)}`;
}

export function candleLine(candle: Candle): string {
  let fields = `open=${float(candle.open)},high=${float(candle.high)},low=${float(candle.low)},close=${float(candle.close)},volume=${float(candle.volume)},trades=${candle.trades}i`;
  if (candle.vwap !== null) fields += `,vwap=${float(candle.vwap)}`;
  return `candles,interval=${tag(candle.interval)},symbol=${tag(candle.symbol)} ${fields} ${nanos(candle.ts, 0)}`;
}

const INDICATOR_FIELDS = ['sma20', 'ema20', 'rsi14', 'bbUpper', 'bbMiddle', 'bbLower'] as const;

export function indicatorLine(point: IndicatorPoint): string {
  // A point needs one field at least, and the first candles have no values yet: `warm` says
  // whether all of them are there.
  let fields = `warm=${INDICATOR_FIELDS.every((name) => point[name] !== null)}`;
  for (const name of INDICATOR_FIELDS) {
    const value = point[name];
    if (value !== null) fields += `,${name}=${float(value)}`;
  }
  return `indicators,interval=${tag(point.interval)},symbol=${tag(point.symbol)} ${fields} ${nanos(point.ts, 0)}`;
}

export function alertLine(alert: Alert): string {
  let fields = `price=${float(alert.price)},seq=${alert.seq}i,message=${text(alert.message)}`;
  if (alert.threshold !== undefined) fields += `,threshold=${float(alert.threshold)}`;
  return `alerts,kind=${tag(alert.kind)},symbol=${tag(alert.symbol)} ${fields} ${nanos(alert.ts, alert.seq)}`;
}

/** Every point of a batch, as line protocol lines. */
export function batchLines(batch: SinkBatch): string[] {
  const lines: string[] = [];
  for (const tick of batch.ticks) lines.push(tickLine(tick));
  for (const candle of batch.candles) lines.push(candleLine(candle));
  for (const point of batch.indicators) lines.push(indicatorLine(point));
  for (const alert of batch.alerts) lines.push(alertLine(alert));
  return lines;
}

export class InfluxdbSink implements Sink {
  readonly type = 'influxdb';
  readonly records: InfluxdbSinkConfig['records'];
  readonly #config: InfluxdbSinkConfig;
  readonly #headers: Record<string, string> = {};
  readonly #base: string;

  constructor(config: InfluxdbSinkConfig, env: NodeJS.ProcessEnv = process.env) {
    this.#config = config;
    this.records = config.records;
    this.#base = config.url.replace(/\/+$/, '');
    if (env.INFLUXDB_TOKEN) this.#headers.authorization = `Token ${env.INFLUXDB_TOKEN}`;
    else if (env.INFLUXDB_USERNAME) {
      const credentials = `${env.INFLUXDB_USERNAME}:${env.INFLUXDB_PASSWORD ?? ''}`;
      this.#headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
    }
  }

  async open(): Promise<void> {
    if (!this.#config.createDatabase) return;
    const query = new URLSearchParams({
      q: `CREATE DATABASE "${this.#config.database.replace(/"/g, '\\"')}"`,
    });
    await this.#request('/query', query, undefined);
  }

  async write(batch: SinkBatch): Promise<void> {
    const lines = batchLines(batch);
    const params = new URLSearchParams({ db: this.#config.database, precision: 'ns' });
    if (this.#config.retentionPolicy !== undefined) params.set('rp', this.#config.retentionPolicy);
    for (let start = 0; start < lines.length; start += this.#config.batchLines) {
      await this.#request('/write', params, lines.slice(start, start + this.#config.batchLines).join('\n'));
    }
  }

  async close(): Promise<void> {}

  async #request(route: string, params: URLSearchParams, body: string | undefined): Promise<void> {
    const url = `${this.#base}${route}?${params}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { ...this.#headers, 'content-type': 'text/plain; charset=utf-8' },
        body,
        signal: AbortSignal.timeout(this.#config.timeout),
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new SinkError('unreachable', `influxdb ${this.#base}${route} failed: ${reason}`, {
        cause: error,
      });
    }
    const answer = await response.text().catch(() => '');
    if (response.ok) {
      // /query answers 200 with the error inside.
      if (route === '/query' && answer.includes('"error"')) {
        throw new SinkError('rejected', `influxdb ${route}: ${answer.slice(0, 500)}`);
      }
      return;
    }
    const message = `influxdb ${this.#base}${route} answered ${response.status}: ${answer.slice(0, 500)}`;
    throw new SinkError(response.status === 429 || response.status >= 500 ? 'server' : 'rejected', message);
  }
}
