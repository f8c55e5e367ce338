/**
 * `replay`: ticks from an NDJSON file, one JSON record per line, at `speed` times the pace of their
 * event times or as fast as possible (`max`). Bounded: its end makes every open window final. Its
 * position is the byte offset and line number reached, so a restart resumes at the next line.
 * Blank lines are skipped; every other line, broken or not, goes to ingest.
 */
import { open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Feed, FeedBatch } from '../feed.ts';

export const replayFeedSchema = z.strictObject({
  type: z.literal('replay'),
  name: z.string().min(1).optional().describe('Feed name (default "replay").'),
  path: z.string().min(1).describe('NDJSON file of ticks.'),
  speed: z
    .union([z.literal('max'), z.number().positive()])
    .default('max')
    .describe('Multiple of real time by event time, or "max" for as fast as possible.'),
  source: z.string().min(1).default('replay').describe('`source` of ticks whose record names none.'),
});
export type ReplayFeedConfig = z.infer<typeof replayFeedSchema>;

export interface ReplayPosition {
  /** Byte offset of the first line not yet handed over. */
  byte: number;
  /** Lines handed over so far (blank ones included). */
  line: number;
}

const CHUNK_BYTES = 1 << 20;
/** In paced mode, lines due within this many ms go out together. */
const PACE_SLICE_MS = 20;
const NON_BLANK = /\S/;

export class ReplayFeed implements Feed {
  readonly name: string;
  readonly type = 'replay';
  readonly bounded = true;
  readonly defaultSource: string;
  readonly #config: ReplayFeedConfig;
  #bytesDone = 0;
  #bytesTotal = 0;

  constructor(config: ReplayFeedConfig) {
    this.#config = config;
    this.name = config.name ?? 'replay';
    this.defaultSource = config.source;
  }

  progress(): { done: number; total: number; unit: string } {
    return { done: this.#bytesDone, total: this.#bytesTotal, unit: 'B' };
  }

  async *run(position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    const start = (position as ReplayPosition | undefined) ?? { byte: 0, line: 0 };
    this.#bytesTotal = (await stat(this.#config.path)).size;
    const pacer = this.#config.speed === 'max' ? undefined : new Pacer(this.#config.speed);
    for await (const chunk of readLineChunks(this.#config.path, start, pacer !== undefined, signal)) {
      this.#bytesDone = chunk.position.byte;
      if (!pacer) {
        yield { lines: chunk.lines, position: chunk.position };
        continue;
      }
      // Paced: hand lines over in slices as their event time comes due.
      let sliceStart = 0;
      for (let i = 0; i < chunk.lines.length; i++) {
        const waitMs = pacer.delayFor(chunk.lines[i]!);
        if (waitMs > PACE_SLICE_MS) {
          if (i > sliceStart) {
            yield { lines: chunk.lines.slice(sliceStart, i), position: chunk.linePositions[i - 1]! };
          }
          sliceStart = i;
          await sleep(waitMs, undefined, { signal }).catch(() => undefined);
          if (signal.aborted) return;
        }
      }
      if (sliceStart < chunk.lines.length) {
        yield { lines: chunk.lines.slice(sliceStart), position: chunk.position };
      }
    }
  }
}

interface LineChunk {
  lines: string[];
  /** Position after the whole chunk. */
  position: ReplayPosition;
  /** Position after each line; only filled in when asked for (paced mode), as it costs a byte count per line. */
  linePositions: ReplayPosition[];
}

/**
 * Reads a file in large chunks and splits it into non-blank lines, tracking the byte offset and line
 * number after each chunk. Written here rather than with readline because the byte offset of every
 * line end is needed for resuming, and readline does not expose it.
 */
async function* readLineChunks(
  path: string,
  start: ReplayPosition,
  withLinePositions: boolean,
  signal: AbortSignal,
): AsyncIterable<LineChunk> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let carry = Buffer.alloc(0);
    let byte = start.byte;
    let line = start.line;
    let fileOffset = start.byte;
    while (!signal.aborted) {
      const { bytesRead } = await file.read(buffer, 0, CHUNK_BYTES, fileOffset);
      fileOffset += bytesRead;
      const data =
        carry.length > 0
          ? Buffer.concat([carry, buffer.subarray(0, bytesRead)])
          : buffer.subarray(0, bytesRead);
      const atEnd = bytesRead === 0;
      const end = atEnd ? data.length : data.lastIndexOf(10) + 1;
      if (end === 0 && !atEnd) {
        carry = Buffer.from(data);
        continue;
      }
      const text = data.toString('utf8', 0, end);
      carry = atEnd ? Buffer.alloc(0) : Buffer.from(data.subarray(end));
      const rawLines = text.split('\n');
      // A text ending in '\n' splits into a trailing empty string that is not a line.
      if (rawLines.length > 0 && rawLines[rawLines.length - 1] === '') rawLines.pop();
      const lines: string[] = [];
      const linePositions: ReplayPosition[] = [];
      let lineByte = byte;
      for (const raw of rawLines) {
        line += 1;
        if (withLinePositions) lineByte += Buffer.byteLength(raw) + 1;
        const trimmed = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
        if (!NON_BLANK.test(trimmed)) continue;
        lines.push(trimmed);
        // The last line of a file may have no newline: never point past the chunk.
        if (withLinePositions) linePositions.push({ byte: Math.min(lineByte, byte + end), line });
      }
      byte += end;
      if (lines.length > 0 || rawLines.length > 0) yield { lines, position: { byte, line }, linePositions };
      if (atEnd) return;
    }
  } finally {
    await file.close();
  }
}

/** Maps event times to wall-clock delays: the first line's ts is now, later ones `speed` times faster. */
class Pacer {
  readonly #speed: number;
  #startWall = 0;
  #startTs: number | undefined;

  constructor(speed: number) {
    this.#speed = speed;
  }

  delayFor(line: string): number {
    const ts = eventTime(line);
    if (ts === undefined) return 0;
    if (this.#startTs === undefined) {
      this.#startTs = ts;
      this.#startWall = Date.now();
      return 0;
    }
    return this.#startWall + (ts - this.#startTs) / this.#speed - Date.now();
  }
}

function eventTime(line: string): number | undefined {
  try {
    const value = JSON.parse(line) as { ts?: unknown };
    return typeof value?.ts === 'number' && Number.isFinite(value.ts) ? value.ts : undefined;
  } catch {
    return undefined;
  }
}
