/**
 * Writes a seeded NDJSON replay with everything docs/design.md, Rules has rules for: out-of-order and late trades,
 * resent duplicates, ticks without ids, ids that are integers (as numbers or strings, numbered per source
 * and symbol, now and then out of order) and ids that are not (`T-12`, zero-padded `007`), ticks with
 * such ids older than the dedup horizon (`too_old`), quiet minutes, lower-case and padded symbols, zero
 * sizes and broken lines. Used by the end-to-end tests and the benchmark.
 *
 *   node test/support/generate-ticks.ts OUT.ndjson [COUNT] [SEED]
 */

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { SeededRandom } from '../../src/core/random.ts';

export interface GenerateOptions {
  count: number;
  seed?: number;
  symbols?: string[];
  /** First event time (ms). */
  startTs?: number;
  /** Include the hostile lines (broken JSON, invalid fields). */
  hostile?: boolean;
}

const BROKEN_LINES = [
  '{"symbol":"BTCUSDT","ts":17',
  'not json at all',
  '[1,2,3]',
  '"a string"',
  'null',
  '{"symbol":"","ts":1700000000000,"price":1,"size":1}',
  '{"symbol":"BTC USDT","ts":1700000000000,"price":1,"size":1}',
  '{"symbol":"BTCUSDT","ts":"1700000000000","price":1,"size":1}',
  '{"symbol":"BTCUSDT","ts":1700000000000.5,"price":1,"size":1}',
  '{"symbol":"BTCUSDT","ts":1700000000000,"price":0,"size":1}',
  '{"symbol":"BTCUSDT","ts":1700000000000,"price":-3,"size":1}',
  '{"symbol":"BTCUSDT","ts":1700000000000,"price":10,"size":-1}',
  '{"symbol":"BTCUSDT","ts":1700000000000,"price":10,"size":1,"id":1.5}',
  '{"symbol":"BTCUSDT","ts":1700000000000,"price":10,"size":1,"id":null}',
  '{"symbol":"BTCUSDT","ts":1700000000000,"price":10}',
];

/** Yields the lines of a replay. */
export function* generateLines(options: GenerateOptions): Generator<string> {
  const random = new SeededRandom(options.seed ?? 7);
  const symbols = options.symbols ?? ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'QUIETCOIN'];
  const hostile = options.hostile ?? true;
  const prices = symbols.map((_, i) => 100 * (i + 1));
  const recent: string[] = [];
  let ts = options.startTs ?? 1_700_000_000_000;
  /** Providers number trades per symbol: the next integer id and the last ts of each source and symbol. */
  const nextId = new Map<string, number>();
  const lastTs = new Map<string, number>();
  /** A line held back one step, so its integer id arrives after a larger one. */
  let held: string | undefined;
  for (let n = 0; n < options.count; n++) {
    const roll = random.next();
    if (hostile && roll < 0.01) {
      yield BROKEN_LINES[Math.floor(random.next() * BROKEN_LINES.length)]!;
      continue;
    }
    if (roll < 0.03 && recent.length > 0) {
      // A resent trade: same source, symbol and id, maybe a different price.
      yield recent[Math.floor(random.next() * recent.length)]!;
      continue;
    }
    // Mostly a few hundred ms apart; now and then a quiet spell of minutes.
    ts +=
      random.next() < 0.002 ? Math.floor(120_000 + random.next() * 600_000) : Math.floor(random.next() * 800);
    // The last symbol trades rarely, so its minutes are often empty.
    let index = Math.floor(random.next() * (symbols.length - 1));
    if (random.next() < 0.02) index = symbols.length - 1;
    const price = Math.max(0.01, prices[index]! * Math.exp(0.002 * random.normal()));
    prices[index] = price;
    let eventTs = ts;
    const shift = random.next();
    if (shift < 0.05)
      eventTs -= Math.floor(random.next() * 9_000); // out of order, within lateness
    else if (shift < 0.065) eventTs -= 60_000 + Math.floor(random.next() * 240_000); // late
    let symbol = symbols[index]!;
    const casing = random.next();
    if (casing < 0.05) symbol = symbol.toLowerCase();
    else if (casing < 0.07) symbol = ` ${symbol.toLowerCase()} `;
    const record: Record<string, unknown> = {
      symbol,
      ts: eventTs,
      price: Math.round(price * 1e4) / 1e4,
      size: index === symbols.length - 1 && random.next() < 0.3 ? 0 : Math.round(random.next() * 5e5) / 1e5,
    };
    const source = random.next() < 0.3 ? 'exchange-a' : undefined;
    const key = `${source ?? ''}|${index}`;
    if (random.next() < 0.9) {
      const id = (nextId.get(key) ?? 0) + 1;
      nextId.set(key, id);
      const kind = random.next();
      if (kind < 0.05) record.id = `T-${id}`;
      else if (kind < 0.08) record.id = `00${id}`;
      else record.id = kind < 0.54 ? String(id) : id;
    }
    if (random.next() < 0.8) record.side = random.next() < 0.5 ? 'buy' : 'sell';
    if (source !== undefined) record.source = source;
    // Now and then a trade more than a day older than its symbol's newest, with an id that is not an
    // integer: too old to check against the dedup horizon (24 h), so it is rejected.
    const previousTs = lastTs.get(key);
    lastTs.set(key, ts);
    if (previousTs !== undefined && ts - previousTs < 6 * 3_600_000 && random.next() < 0.003) {
      record.ts = ts - 30 * 3_600_000;
      record.id = `old-${Math.floor(random.next() * 1e6)}`;
    }
    const line = JSON.stringify(record);
    if (record.id !== undefined) {
      recent.push(line);
      if (recent.length > 50) recent.shift();
    }
    if (held === undefined && random.next() < 0.01) {
      held = line;
      continue;
    }
    yield line;
    if (held !== undefined && held !== line) {
      yield held;
      held = undefined;
    }
    if (hostile && random.next() < 0.002) yield '';
  }
  if (held !== undefined) yield held;
}

/** Writes a replay file; resolves when it is on disk. */
export async function writeReplay(path: string, options: GenerateOptions): Promise<void> {
  const out = createWriteStream(path);
  let buffer = '';
  for (const line of generateLines(options)) {
    buffer += `${line}\n`;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
}

if (import.meta.main) {
  const [path, count = '10000', seed = '7'] = process.argv.slice(2);
  if (!path) {
    process.stderr.write('usage: node test/support/generate-ticks.ts OUT.ndjson [COUNT] [SEED]\n');
    process.exit(2);
  }
  await writeReplay(path, { count: Number(count), seed: Number(seed) });
}
