/**
 * A compact binary encoding of keyed records, built for ingest's tick entries (docs/design.md, Targets: at most 64
 * bytes per tick in the log). The embedded log stores its sections with it, and the same bytes can hand
 * ticks between threads. Pure: no I/O, no Node-only types.
 *
 * A batch is `varint count`, then per record a tag byte:
 * - `0` (any value): key, then `varint length` and the value's JSON (UTF-8).
 * - `1 | flags` (a tick entry of exactly the shape ingest writes): source, symbol, the key unless it is
 *   the symbol, then `ts` as a zigzag varint delta from the batch's previous tick, `price` and `size` as
 *   float64 (exact), `receivedAt` as a delta, the id (a canonical integer as a delta from the previous
 *   one, any other string inline), `seq` as a delta when present. Flags: bit 2 id present, bit 3 id is a
 *   canonical integer, bits 4-5 side (1 buy, 2 sell), bit 6 seq present, bit 7 key differs from symbol.
 *
 * Strings that repeat (keys, sources, symbols) go through a per-batch table: `varint 0` then the
 * string defines the next entry, `varint n` refers to entry n - 1. A tick typically takes 25-35 bytes.
 * Values that are not such ticks round-trip exactly as JSON does; ticks round-trip exactly.
 */

const TAG_JSON = 0;
const TAG_TICK = 1;
const FLAG_ID = 1 << 2;
const FLAG_EXACT_ID = 1 << 3;
const SIDE_SHIFT = 4;
const FLAG_SEQ = 1 << 6;
const FLAG_OWN_KEY = 1 << 7;
/** Integers the tick form carries as varint deltas: below this, zigzag deltas stay exact doubles. */
const MAX_DELTA_INTEGER = 2 ** 52;
const CANONICAL_ID = /^(?:0|[1-9]\d{0,15})$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A record as the codec sees it: a string key and any JSON-serialisable value. */
export interface KeyedValue {
  key: string;
  value: unknown;
}

interface TickShape {
  kind: 'tick';
  source: string;
  symbol: string;
  ts: number;
  price: number;
  size: number;
  receivedAt: number;
  id?: string;
  side?: 'buy' | 'sell';
  seq?: number;
}

const TICK_KEYS = new Set([
  'kind',
  'source',
  'symbol',
  'ts',
  'price',
  'size',
  'receivedAt',
  'id',
  'side',
  'seq',
]);

function isDeltaInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < MAX_DELTA_INTEGER;
}

/** True when `value` is a tick entry the binary form carries exactly (else it goes as JSON). */
function isTickShape(value: unknown): value is TickShape {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const tick = value as Record<string, unknown>;
  if (tick.kind !== 'tick' || Object.getPrototypeOf(tick) !== Object.prototype) return false;
  for (const name in tick) if (!TICK_KEYS.has(name)) return false;
  if (typeof tick.source !== 'string' || typeof tick.symbol !== 'string') return false;
  if (!isDeltaInteger(tick.ts) || !isDeltaInteger(tick.receivedAt)) return false;
  if (typeof tick.price !== 'number' || typeof tick.size !== 'number') return false;
  if ('id' in tick && typeof tick.id !== 'string') return false;
  if ('side' in tick && tick.side !== 'buy' && tick.side !== 'sell') return false;
  if ('seq' in tick && !isDeltaInteger(tick.seq)) return false;
  // JSON would not keep these; the tick form would, so such values go as JSON to round-trip alike.
  return Number.isFinite(tick.price) && Number.isFinite(tick.size);
}

/** Encodes batches into a reusable buffer; `encode` returns a view valid until the next call. */
export class EntryEncoder {
  #bytes = new Uint8Array(1 << 16);
  #view = new DataView(this.#bytes.buffer);
  #at = 0;
  readonly #strings = new Map<string, number>();
  #prevTs = 0;
  #prevReceivedAt = 0;
  #prevId = 0;
  #prevSeq = 0;

  /** The encoding of `records`; the returned bytes are overwritten by the next call. */
  encode(records: readonly KeyedValue[]): Uint8Array {
    this.#at = 0;
    this.#strings.clear();
    this.#prevTs = 0;
    this.#prevReceivedAt = 0;
    this.#prevId = 0;
    this.#prevSeq = 0;
    this.#varint(records.length);
    for (let i = 0; i < records.length; i++) {
      const { key, value } = records[i]!;
      if (isTickShape(value)) this.#tick(key, value);
      else this.#json(key, value);
    }
    return this.#bytes.subarray(0, this.#at);
  }

  #tick(key: string, tick: TickShape): void {
    const id = tick.id;
    const exact = id !== undefined && CANONICAL_ID.test(id) && Number(id) < MAX_DELTA_INTEGER;
    let tag = TAG_TICK;
    if (id !== undefined) tag |= FLAG_ID;
    if (exact) tag |= FLAG_EXACT_ID;
    if (tick.side !== undefined) tag |= (tick.side === 'buy' ? 1 : 2) << SIDE_SHIFT;
    if (tick.seq !== undefined) tag |= FLAG_SEQ;
    if (key !== tick.symbol) tag |= FLAG_OWN_KEY;
    this.#ensure(1);
    this.#bytes[this.#at++] = tag;
    this.#string(tick.source);
    this.#string(tick.symbol);
    if (key !== tick.symbol) this.#string(key);
    this.#zigzag(tick.ts - this.#prevTs);
    this.#prevTs = tick.ts;
    this.#ensure(16);
    this.#view.setFloat64(this.#at, tick.price, true);
    this.#view.setFloat64(this.#at + 8, tick.size, true);
    this.#at += 16;
    this.#zigzag(tick.receivedAt - this.#prevReceivedAt);
    this.#prevReceivedAt = tick.receivedAt;
    if (exact) {
      const value = Number(id);
      this.#zigzag(value - this.#prevId);
      this.#prevId = value;
    } else if (id !== undefined) {
      this.#inline(id);
    }
    if (tick.seq !== undefined) {
      this.#zigzag(tick.seq - this.#prevSeq);
      this.#prevSeq = tick.seq;
    }
  }

  #json(key: string, value: unknown): void {
    this.#ensure(1);
    this.#bytes[this.#at++] = TAG_JSON;
    this.#string(key);
    // JSON.stringify gives undefined for undefined (and functions): store it as null, as a JSON array would.
    this.#inline(JSON.stringify(value) ?? 'null');
  }

  /** A table string: defined the first time it appears in the batch, referred to after. */
  #string(value: string): void {
    const index = this.#strings.get(value);
    if (index !== undefined) {
      this.#varint(index + 1);
      return;
    }
    this.#strings.set(value, this.#strings.size);
    this.#varint(0);
    this.#inline(value);
  }

  /** `varint byteLength` then the UTF-8 bytes. */
  #inline(value: string): void {
    // At most 3 bytes per UTF-16 unit; the length prefix is written after, once known.
    const room = value.length * 3;
    this.#ensure(room + 5);
    if (value.length < 128 && room < 128) {
      const written = encoder.encodeInto(value, this.#bytes.subarray(this.#at + 1)).written;
      this.#bytes[this.#at] = written;
      this.#at += 1 + written;
      return;
    }
    const bytes = encoder.encode(value);
    this.#varint(bytes.length);
    this.#ensure(bytes.length);
    this.#bytes.set(bytes, this.#at);
    this.#at += bytes.length;
  }

  #zigzag(value: number): void {
    this.#varint(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  #varint(value: number): void {
    this.#ensure(8);
    let rest = value;
    while (rest >= 128) {
      this.#bytes[this.#at++] = (rest % 128) | 128;
      rest = Math.floor(rest / 128);
    }
    this.#bytes[this.#at++] = rest;
  }

  #ensure(extra: number): void {
    if (this.#at + extra <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < this.#at + extra) size *= 2;
    const bytes = new Uint8Array(size);
    bytes.set(this.#bytes.subarray(0, this.#at));
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer);
  }
}

/** Thrown when bytes are not a batch this codec wrote. */
export class EntryCodecError extends Error {}

/** Decodes a batch written by {@link EntryEncoder}; calls `onRecord` for each record in order. */
export function decodeEntries(bytes: Uint8Array, onRecord: (key: string, value: unknown) => void): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const strings: string[] = [];
  let at = 0;
  const byte = (): number => {
    if (at >= bytes.length) throw new EntryCodecError('batch ends in the middle of a record');
    return bytes[at++]!;
  };
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = byte();
      value += (b & 127) * scale;
      if (b < 128) return value;
      scale *= 128;
      if (scale > 2 ** 56) throw new EntryCodecError('varint too long');
    }
  };
  const zigzag = (): number => {
    const value = varint();
    return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
  };
  const inline = (): string => {
    const length = varint();
    if (at + length > bytes.length) throw new EntryCodecError('string runs past the end of the batch');
    const value = decoder.decode(bytes.subarray(at, at + length));
    at += length;
    return value;
  };
  const string = (): string => {
    const ref = varint();
    if (ref === 0) {
      const value = inline();
      strings.push(value);
      return value;
    }
    const value = strings[ref - 1];
    if (value === undefined) throw new EntryCodecError(`string ${ref - 1} is not defined`);
    return value;
  };
  const count = varint();
  let prevTs = 0;
  let prevReceivedAt = 0;
  let prevId = 0;
  let prevSeq = 0;
  for (let n = 0; n < count; n++) {
    const tag = byte();
    if ((tag & 3) === TAG_JSON) {
      const key = string();
      onRecord(key, JSON.parse(inline()));
      continue;
    }
    if ((tag & 3) !== TAG_TICK) throw new EntryCodecError(`unknown record tag ${tag}`);
    const source = string();
    const symbol = string();
    const key = tag & FLAG_OWN_KEY ? string() : symbol;
    const ts = prevTs + zigzag();
    prevTs = ts;
    if (at + 16 > bytes.length) throw new EntryCodecError('batch ends in the middle of a tick');
    const price = view.getFloat64(at, true);
    const size = view.getFloat64(at + 8, true);
    at += 16;
    const receivedAt = prevReceivedAt + zigzag();
    prevReceivedAt = receivedAt;
    // Built in the order ingest builds its entries, so a decoded tick looks like an appended one.
    const tick: Record<string, unknown> = { source, symbol, ts, price, size, receivedAt };
    if (tag & FLAG_ID) {
      if (tag & FLAG_EXACT_ID) {
        prevId += zigzag();
        tick.id = String(prevId);
      } else {
        tick.id = inline();
      }
    }
    const side = (tag >> SIDE_SHIFT) & 3;
    if (side !== 0) tick.side = side === 1 ? 'buy' : 'sell';
    tick.kind = 'tick';
    if (tag & FLAG_SEQ) {
      prevSeq += zigzag();
      tick.seq = prevSeq;
    }
    onRecord(key, tick);
  }
  if (at !== bytes.length) throw new EntryCodecError(`${bytes.length - at} bytes left after the last record`);
  return count;
}
