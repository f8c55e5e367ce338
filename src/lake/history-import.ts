/**
 * `streamlines import`: history files as one bounded feed, so imported trades go through the same
 * ingest (validation, normalisation, dedup), log and processing as live ones, and imported candles
 * equal what streaming would have produced (docs/design.md, Rules). Formats:
 *
 * - `ndjson`: the project's replay files, one JSON record per line;
 * - `binance-trades`: Binance's public dumps of spot trades, CSV without a header:
 *   trade id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch;
 * - `binance-aggtrades`: aggregate trades: aggregate trade id, price, quantity, first trade id, last
 *   trade id, time, isBuyerMaker, isBestMatch.
 *
 * Binance's `time` is in ms in files before 2025-01-01 and in µs from then on; the unit is decided
 * per value (a ms time of today has 13 digits, a µs one 16), and µs are floored to ms. isBuyerMaker
 * True means the taker sold. A `.zip` is read as the one CSV inside it; a `FILE.CHECKSUM` beside a
 * file (sha256, as Binance publishes it) is verified before anything is read.
 *
 * The feed's position is the file and line reached, kept in the log like a replay's, so an import
 * cut short resumes where it stopped; an import of the same files again finds its feed ended and
 * reads nothing, and trades read twice by any other route are dropped by ingest's dedup (Binance
 * ids are increasing integers per symbol, remembered exactly).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import type { Feed, FeedBatch } from '../feeds/feed.ts';

export const IMPORT_FORMATS = ['ndjson', 'binance-trades', 'binance-aggtrades'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** A file that cannot be imported as given: its checksum, its zip or its name. */
export class ImportFileError extends Error {
  override readonly name = 'ImportFileError';
}

export interface ImportFile {
  path: string;
  format: ImportFormat;
  /** The symbol of a Binance file's trades (its name says it: BTCUSDT-trades-2025-01-01.zip). */
  symbol?: string;
}

export interface ImportPosition {
  /** Index of the file being read. */
  file: number;
  /** Lines of it handed over so far. */
  line: number;
}

const BATCH_LINES = 8_192;
/** A time above this is in µs: in ms it would be past the year 5000. */
const MICROSECONDS_ABOVE = 100_000_000_000_000;
const BINANCE_NAME = /^([A-Za-z0-9]+)-(trades|aggTrades)-\d{4}-\d{2}(?:-\d{2})?\.(?:csv|zip)$/;

/** The format and symbol a file's name implies (Binance's dumps), or undefined. */
export function describeFile(filePath: string): { format: ImportFormat; symbol?: string } | undefined {
  const name = path.basename(filePath);
  const binance = BINANCE_NAME.exec(name);
  if (binance) {
    return {
      format: binance[2] === 'trades' ? 'binance-trades' : 'binance-aggtrades',
      symbol: binance[1]!.toUpperCase(),
    };
  }
  if (/\.(nd)?json$/i.test(name)) return { format: 'ndjson' };
  return undefined;
}

/** Maps one line of a Binance CSV onto a raw tick; a malformed line is passed on as text for ingest to reject. */
export function binanceRecord(
  line: string,
  format: 'binance-trades' | 'binance-aggtrades',
  symbol: string,
): unknown {
  const fields = line.split(',');
  const timeField = format === 'binance-trades' ? fields[4] : fields[5];
  const makerField = format === 'binance-trades' ? fields[5] : fields[6];
  if (fields.length < 7 || timeField === undefined || !/^\d+$/.test(timeField)) return line;
  const time = Number(timeField);
  const ts = time > MICROSECONDS_ABOVE ? Math.floor(time / 1_000) : time;
  const record: Record<string, unknown> = {
    source: 'binance',
    symbol,
    ts,
    price: Number(fields[1]),
    size: Number(fields[2]),
    id: fields[0],
  };
  const maker = makerField?.toLowerCase();
  if (maker === 'true') record.side = 'sell';
  else if (maker === 'false') record.side = 'buy';
  return record;
}

/** Checks `FILE.CHECKSUM` when there is one; returns whether there was. */
export async function verifyChecksum(filePath: string): Promise<boolean> {
  const text = await readFile(`${filePath}.CHECKSUM`, 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  const expected = text.trim().split(/\s+/)[0]?.toLowerCase();
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath)) hash.update(chunk as Buffer);
  const actual = hash.digest('hex');
  if (actual !== expected) {
    throw new ImportFileError(
      `${filePath}: sha256 ${actual} does not match ${filePath}.CHECKSUM (${expected}); download it again`,
    );
  }
  return true;
}

/** The bytes of the one file inside a zip, inflated as they are read. */
async function openZipEntry(filePath: string): Promise<Readable> {
  const handle = await open(filePath, 'r');
  try {
    const size = (await handle.stat()).size;
    // The end of central directory record is in the last 22 + 65 535 bytes (its comment).
    const tailLength = Math.min(size, 22 + 65_535);
    const tail = Buffer.alloc(tailLength);
    await handle.read(tail, 0, tailLength, size - tailLength);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0) throw new ImportFileError(`${filePath}: not a zip file`);
    const centralOffset = tail.readUInt32LE(eocd + 16);
    const central = Buffer.alloc(46);
    await handle.read(central, 0, 46, centralOffset);
    if (central.readUInt32LE(0) !== 0x02014b50)
      throw new ImportFileError(`${filePath}: broken zip directory`);
    const method = central.readUInt16LE(10);
    const compressedSize = central.readUInt32LE(20);
    const localOffset = central.readUInt32LE(42);
    if (compressedSize === 0xffffffff || localOffset === 0xffffffff) {
      throw new ImportFileError(`${filePath}: zip64 is not supported; unzip it and import the CSV`);
    }
    const local = Buffer.alloc(30);
    await handle.read(local, 0, 30, localOffset);
    const dataStart = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    const raw = createReadStream(filePath, { start: dataStart, end: dataStart + compressedSize - 1 });
    if (method === 0) return raw;
    if (method !== 8)
      throw new ImportFileError(`${filePath}: zip compression method ${method} is not supported`);
    return raw.pipe(createInflateRaw());
  } finally {
    await handle.close();
  }
}

/** The import as a bounded feed: the files one after another, in the order given. */
export class HistoryImportFeed implements Feed {
  readonly name: string;
  readonly type = 'import';
  readonly bounded = true;
  /** NDJSON records without a source are the project's replays: the same source as `--replay` gives them. */
  readonly defaultSource = 'replay';
  readonly #files: readonly ImportFile[];
  #bytesTotal = 0;
  #bytesDone = 0;
  #current = 0;

  constructor(files: readonly ImportFile[]) {
    this.#files = files;
    // The same files make the same feed, so a second import of them resumes (or finds it ended).
    const digest = createHash('sha256')
      .update(
        JSON.stringify(files.map((file) => [path.resolve(file.path), file.format, file.symbol ?? null])),
      )
      .digest('hex')
      .slice(0, 12);
    this.name = `import-${digest}`;
  }

  /** Bytes of the files done and in all (of the compressed files, for zips). */
  progress(): { done: number; total: number; unit: string } {
    return { done: this.#bytesDone + this.#current, total: this.#bytesTotal, unit: 'B' };
  }

  async *run(position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    const start = (position as ImportPosition | undefined) ?? { file: 0, line: 0 };
    const sizes = await Promise.all(this.#files.map(async (file) => (await stat(file.path)).size));
    this.#bytesTotal = sizes.reduce((sum, size) => sum + size, 0);
    this.#bytesDone = sizes.slice(0, start.file).reduce((sum, size) => sum + size, 0);
    for (let index = start.file; index < this.#files.length && !signal.aborted; index++) {
      const file = this.#files[index]!;
      const skip = index === start.file ? start.line : 0;
      await verifyChecksum(file.path);
      const source = file.path.toLowerCase().endsWith('.zip')
        ? await openZipEntry(file.path)
        : createReadStream(file.path);
      const counted = source as Readable & { bytesRead?: number };
      let line = 0;
      let lines: string[] = [];
      let values: unknown[] = [];
      const flush = (): FeedBatch => {
        const batch: FeedBatch =
          file.format === 'ndjson'
            ? { lines, position: { file: index, line } }
            : { values, position: { file: index, line } };
        lines = [];
        values = [];
        return batch;
      };
      const reader = createInterface({ input: source, crlfDelay: Number.POSITIVE_INFINITY });
      try {
        for await (const text of reader) {
          line++;
          if (line <= skip) continue;
          if (!/\S/.test(text)) continue;
          if (file.format === 'ndjson') lines.push(text);
          else values.push(binanceRecord(text.trim(), file.format, file.symbol ?? ''));
          if (lines.length + values.length >= BATCH_LINES) {
            this.#current = typeof counted.bytesRead === 'number' ? counted.bytesRead : 0;
            yield flush();
            if (signal.aborted) return;
          }
        }
      } finally {
        reader.close();
        source.destroy();
      }
      this.#current = 0;
      this.#bytesDone += sizes[index]!;
      // The end of a file: the next one starts at line 0 even when this one left nothing to hand over.
      yield { ...flush(), position: { file: index + 1, line: 0 } };
    }
  }
}
