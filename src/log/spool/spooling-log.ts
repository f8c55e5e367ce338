/**
 * A writer's side of a log that survives an outage of the log behind it (issue 6: "a broker outage
 * makes ingest buffer to disk, bounded and counted, and catch up").
 *
 * While the spool is empty an append goes straight to the inner log. When that fails or takes longer
 * than `appendTimeoutMs`, the append is written to a spool file on disk instead (fsynced before
 * `append` resolves, the durability the Log interface promises), and every later append queues behind
 * it there, so order is kept. A drainer re-appends spooled appends to the inner log in order, one inner
 * append each, and drops them from the spool only after success. A full spool (`maxBytes`) makes
 * `append` wait, which holds the caller back (ingest stops reading its feeds); nothing is dropped.
 *
 * Exactly-once: every append gets a sequence number, written to the inner log inside the producer
 * state (`{ state, spoolSeq }`, atomically with the records). A spooled append whose number is at or
 * below the inner log's `spoolSeq` for its topic is already there (the commit happened but its answer
 * was lost, or the process died before dropping it from the spool) and is discarded, not re-appended.
 * Numbers come from one counter for all topics, so they increase per topic too; the spool is one
 * queue in call order across topics, and each topic's producer state carries that topic's last number.
 * An append without a producer state carries the topic's last caller state, so the inner log's state
 * stays the caller's even when a stateless append (ingest's `clock`) comes last.
 *
 * Spool files: `<first seq>.spool` segments of frames `[u32 length][u32 crc32][JSON payload]`
 * (little endian). A torn or corrupt frame (a crash mid-write) ends its segment and is cut off on open.
 * A segment is deleted once all its appends are drained. `seq.json` reserves sequence numbers in
 * blocks, so numbers keep increasing across restarts without asking the inner log.
 */
import { constants } from 'node:fs';
import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { AppendRecord, Log, LogRecord } from '../log.ts';
import { LogError } from '../log-error.ts';

/** Options of a spooling log. */
export interface SpoolingLogOptions {
  /** The log appends go to (Kafka in practice). The spooling log opens and closes it. */
  inner: Log;
  /** Directory of the spool files (created when missing). One writer per directory. */
  dir: string;
  /** Most bytes of pending appends on disk; at the bound, `append` waits. One append always fits. */
  maxBytes: number;
  /**
   * An inner append or state read slower than this counts as failed and the append is spooled.
   * Default 30 000: an outage fails appends quickly (refused, reset), and a busy machine made healthy
   * appends take over 5 s, which then sent every later append through the disk.
   */
  appendTimeoutMs?: number;
  /** First wait of the drainer after a failed inner append; doubles up to 16x. Default 500. */
  retryMs?: number;
  /** Called after the counters change (for metrics and status pages). */
  onChange?: () => void;
}

/** Counters and gauges of a spooling log. Counters count this process's work; gauges include recovered appends. */
export interface SpoolStats {
  /** Appends written to the spool (counter). */
  spooledAppends: number;
  /** Records in those appends (counter). */
  spooledRecords: number;
  /** Bytes of appends pending in the spool (gauge). */
  spoolBytes: number;
  /** Appends pending in the spool (gauge). */
  pendingAppends: number;
  /** Spooled appends re-appended to the inner log (counter). */
  drainedAppends: number;
  /** Spooled appends found already in the inner log and dropped without re-appending (counter). */
  discardedAppends: number;
  /** Appends that had to wait for room in a full spool (counter). */
  fullWaits: number;
  /** The last inner-log or spool error, or null when there has been none. */
  lastError: string | null;
}

/** What the spooling log writes as the inner log's producer state. */
export interface SpooledProducerState {
  /** The caller's producer state. */
  state?: unknown;
  /** Sequence number of the append that wrote this state. */
  spoolSeq: number;
}

interface Segment {
  file: string;
  handle: FileHandle;
  /** Bytes of whole frames in the file; where the next frame goes. */
  size: number;
  /** Frames in it not yet drained, plus one while a frame is being written. */
  pending: number;
  /** No more frames go into it (recovered, rolled over, or a write failed). */
  sealed: boolean;
}

interface Frame {
  seq: number;
  topic: string;
  segment: Segment;
  /** Payload position and length in the segment. */
  position: number;
  length: number;
  records: number;
}

interface Payload {
  s: number;
  t: string;
  r: AppendRecord<unknown>[];
  st?: unknown;
}

/** The inner log's producer state of a topic as known here: the last sequence number in and the caller's state. */
interface InnerState {
  seq: number;
  state: unknown;
}

const HEADER_BYTES = 8;
const SEGMENT_SUFFIX = '.spool';
const SEQ_FILE = 'seq.json';
/** Sequence numbers reserved per write of `seq.json`. */
const SEQ_BLOCK = 1_000_000;
const MAX_BACKOFF_FACTOR = 16;

export class SpoolingLog implements Log {
  readonly #inner: Log;
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;
  readonly #timeoutMs: number;
  readonly #retryMs: number;
  readonly #onChange: (() => void) | undefined;

  /** Pending appends in order; `#head` is the first not yet drained. */
  #queue: Frame[] = [];
  #head = 0;
  #segments: Segment[] = [];
  #nextSeq = 0;
  #reservedSeq = 0;
  /** The inner log's producer state per topic, when known for sure (no append of unknown outcome since). */
  readonly #known = new Map<string, InnerState>();
  /** The last caller state among pending appends, per topic. */
  readonly #pendingState = new Map<string, InnerState>();
  /** Appends run one at a time in call order. */
  #chain: Promise<void> = Promise.resolve();
  /** Settles when the last inner append settles, even one given up on after a timeout. */
  #innerBusy: Promise<void> = Promise.resolve();
  #drainer: Promise<void> | undefined;
  #wakeDrainer: (() => void) | undefined;
  #stopBackoff: (() => void) | undefined;
  #roomWaiters: (() => void)[] = [];
  #state: 'new' | 'open' | 'closed' = 'new';
  #closed: Promise<void> | undefined;
  readonly #stats: SpoolStats = {
    spooledAppends: 0,
    spooledRecords: 0,
    spoolBytes: 0,
    pendingAppends: 0,
    drainedAppends: 0,
    discardedAppends: 0,
    fullWaits: 0,
    lastError: null,
  };

  constructor(options: SpoolingLogOptions) {
    if (!(options.maxBytes > 0)) {
      throw new LogError('LOG_BAD_ARGUMENT', `spool maxBytes must be positive, got ${options.maxBytes}`);
    }
    this.#inner = options.inner;
    this.#dir = options.dir;
    this.#maxBytes = options.maxBytes;
    // Several segments per bound, so drained space is given back while the rest still drains.
    this.#segmentBytes = Math.min(64 * 1024 * 1024, Math.max(4_096, Math.floor(options.maxBytes / 4)));
    this.#timeoutMs = options.appendTimeoutMs ?? 30_000;
    this.#retryMs = options.retryMs ?? 500;
    this.#onChange = options.onChange;
  }

  /** The counters, a copy. */
  stats(): SpoolStats {
    return { ...this.#stats };
  }

  /** Resolves once the spool is empty (everything appended reached the inner log), or the log closes. */
  async drained(): Promise<void> {
    while (this.#state === 'open' && this.#pendingCount() > 0) await this.#nextChange();
  }

  async open(): Promise<void> {
    if (this.#state !== 'new') throw new LogError('LOG_CLOSED', 'a spooling log opens once');
    await mkdir(this.#dir, { recursive: true });
    const maxSeq = await this.#recover();
    const reserved = await readSeqFile(path.join(this.#dir, SEQ_FILE));
    // Without a seq file (a new spool dir) start at wall-clock microseconds: above anything an earlier
    // spool dir of this writer can have numbered, unless it made over 1000 appends a millisecond.
    this.#nextSeq = Math.max(maxSeq + 1, reserved ?? Date.now() * 1000);
    await this.#reserve(this.#nextSeq + SEQ_BLOCK);
    try {
      await this.#inner.open();
    } catch (error) {
      await Promise.allSettled(this.#segments.map((segment) => segment.handle.close()));
      throw error;
    }
    this.#state = 'open';
    // Drops what is already in the inner log now, so counters and producer state are right at once;
    // a failure here is left to the drainer, which checks again before each append.
    for (const topic of new Set(this.#pendingFrames().map((frame) => frame.topic))) {
      await this.#confirm(topic).catch((error: unknown) => this.#noteError(error));
    }
    await this.#discardCommitted();
    this.#drainer = this.#drain();
    this.#changed();
  }

  partitions(topic: string): number {
    return this.#inner.partitions(topic);
  }

  append<T>(topic: string, records: readonly AppendRecord<T>[], producerState?: unknown): Promise<void> {
    if (this.#state !== 'open') {
      return Promise.reject(
        this.#state === 'new'
          ? new LogError('LOG_NOT_OPEN', 'call open() before using the log')
          : new LogError('LOG_CLOSED', 'the log is closed'),
      );
    }
    // Kept as it is now: the caller may change its object later, and a stateless append repeats it.
    const state = producerState === undefined ? undefined : JSON.parse(JSON.stringify(producerState));
    const next = this.#chain.then(() => this.#append(topic, records, state));
    this.#chain = next.catch(() => {});
    return next;
  }

  async #append<T>(topic: string, records: readonly AppendRecord<T>[], callerState: unknown): Promise<void> {
    if (this.#state !== 'open') throw new LogError('LOG_CLOSED', 'the log is closed');
    // Once an inner append was tried with a number, a spooled retry must keep it: it may have landed.
    let seq: number | undefined;
    if (this.#pendingCount() === 0) {
      try {
        // Confirming first: it may raise the counter above numbers the inner log already holds.
        const known = this.#known.get(topic) ?? (await this.#confirm(topic));
        seq = await this.#takeSeq();
        const state = callerState === undefined ? known.state : callerState;
        await this.#innerAppend(topic, records, { state, spoolSeq: seq });
        this.#known.set(topic, { seq, state });
        return;
      } catch (error) {
        // A caller's mistake would fail again from the spool, forever: it is the caller's to handle.
        if (
          error instanceof LogError &&
          (error.code === 'LOG_BAD_ARGUMENT' || error.code === 'LOG_BAD_TOPIC')
        ) {
          throw error;
        }
        this.#noteError(error);
        // The append may still have happened: the drainer asks the inner log before re-appending it.
        this.#known.delete(topic);
      }
    }
    seq ??= await this.#takeSeq();
    await this.#spool(seq, topic, records, callerState);
  }

  /** The caller's state of the last append to `topic` that carried one: a pending spooled one, else the inner log's. */
  async producerState(topic: string): Promise<unknown> {
    const pending = this.#pendingState.get(topic);
    if (pending !== undefined) return pending.state;
    return unwrap(await this.#inner.producerState(topic)).state;
  }

  read<T>(topic: string, partition: number, fromOffset: number, maxRecords: number): Promise<LogRecord<T>[]> {
    return this.#inner.read<T>(topic, partition, fromOffset, maxRecords);
  }

  markProcessed(topic: string, partition: number, offset: number): void {
    this.#inner.markProcessed?.(topic, partition, offset);
  }

  startOffset(topic: string, partition: number): number {
    return this.#inner.startOffset?.(topic, partition) ?? 0;
  }

  endOffset(topic: string, partition: number): number {
    return this.#inner.endOffset(topic, partition);
  }

  waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<boolean> {
    return this.#inner.waitFor(topic, partition, offset, timeoutMs);
  }

  /** Stops draining and closes the inner log; pending appends stay on disk for the next open. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.#wake();
    this.#stopBackoff?.();
    await this.#chain;
    await this.#drainer;
    await Promise.allSettled(this.#segments.map((segment) => segment.handle.close()));
    this.#segments = [];
    if (wasOpen) await this.#inner.close();
  }

  // --- the spool on disk ---

  /** Reads the segments, cutting off torn tails; returns the highest sequence number found (or -1). */
  async #recover(): Promise<number> {
    const names = (await readdir(this.#dir)).filter((name) => name.endsWith(SEGMENT_SUFFIX));
    names.sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
    let maxSeq = -1;
    for (const name of names) {
      const file = path.join(this.#dir, name);
      const bytes = await readFile(file);
      const frames: { payload: Payload; position: number; length: number }[] = [];
      let position = 0;
      while (position + HEADER_BYTES <= bytes.length) {
        const length = bytes.readUInt32LE(position);
        const end = position + HEADER_BYTES + length;
        if (end > bytes.length) break;
        const body = bytes.subarray(position + HEADER_BYTES, end);
        if (crc32(body) !== bytes.readUInt32LE(position + 4)) break;
        let payload: Payload;
        try {
          payload = JSON.parse(body.toString('utf8')) as Payload;
        } catch {
          break;
        }
        frames.push({ payload, position: position + HEADER_BYTES, length });
        position = end;
      }
      if (frames.length === 0) {
        await unlink(file);
        continue;
      }
      const handle = await open(file, constants.O_RDWR);
      if (position < bytes.length) {
        this.#stats.lastError = `spool: cut ${bytes.length - position} torn bytes off ${name}`;
        await handle.truncate(position);
        await handle.datasync();
      }
      const segment: Segment = { file, handle, size: position, pending: frames.length, sealed: true };
      this.#segments.push(segment);
      for (const { payload, position: at, length } of frames) {
        this.#queue.push({
          seq: payload.s,
          topic: payload.t,
          segment,
          position: at,
          length,
          records: payload.r.length,
        });
        this.#stats.spoolBytes += HEADER_BYTES + length;
        if ('st' in payload) this.#pendingState.set(payload.t, { seq: payload.s, state: payload.st });
        maxSeq = Math.max(maxSeq, payload.s);
      }
    }
    this.#stats.pendingAppends = this.#pendingCount();
    return maxSeq;
  }

  async #spool(
    seq: number,
    topic: string,
    records: readonly AppendRecord<unknown>[],
    state: unknown,
  ): Promise<void> {
    const payload: Payload = { s: seq, t: topic, r: records as AppendRecord<unknown>[] };
    if (state !== undefined) payload.st = state;
    const body = Buffer.from(JSON.stringify(payload), 'utf8');
    const bytes = HEADER_BYTES + body.length;
    if (this.#pendingCount() > 0 && this.#stats.spoolBytes + bytes > this.#maxBytes) {
      this.#stats.fullWaits++;
      this.#changed();
      while (this.#pendingCount() > 0 && this.#stats.spoolBytes + bytes > this.#maxBytes) {
        if (this.#state !== 'open')
          throw new LogError('LOG_CLOSED', 'the log closed while the spool was full');
        await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
      }
    }
    const segment = await this.#writableSegment(seq, bytes);
    const frame = Buffer.allocUnsafe(bytes);
    frame.writeUInt32LE(body.length, 0);
    frame.writeUInt32LE(crc32(body), 4);
    body.copy(frame, HEADER_BYTES);
    const position = segment.size;
    segment.pending++; // keeps the drainer from deleting the segment mid-write
    try {
      await segment.handle.write(frame, 0, bytes, position);
      await segment.handle.datasync();
    } catch (error) {
      // Whatever part of the frame reached the file is a torn tail; nothing more goes after it.
      segment.sealed = true;
      await this.#release(segment);
      this.#noteError(error);
      throw error;
    }
    segment.size = position + bytes;
    if (segment.size >= this.#segmentBytes) segment.sealed = true;
    this.#queue.push({
      seq,
      topic,
      segment,
      position: position + HEADER_BYTES,
      length: body.length,
      records: records.length,
    });
    if (state !== undefined) this.#pendingState.set(topic, { seq, state });
    this.#stats.spooledAppends++;
    this.#stats.spooledRecords += records.length;
    this.#stats.spoolBytes += bytes;
    this.#stats.pendingAppends = this.#pendingCount();
    this.#changed();
    this.#wake();
  }

  async #writableSegment(seq: number, bytes: number): Promise<Segment> {
    const last = this.#segments[this.#segments.length - 1];
    if (last !== undefined && !last.sealed && (last.size === 0 || last.size + bytes <= this.#segmentBytes))
      return last;
    if (last !== undefined) last.sealed = true;
    const file = path.join(this.#dir, `${seq}${SEGMENT_SUFFIX}`);
    const handle = await open(file, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC);
    // The new file's directory entry must be durable before a frame in it counts as written.
    await syncDir(this.#dir);
    const segment: Segment = { file, handle, size: 0, pending: 0, sealed: false };
    this.#segments.push(segment);
    return segment;
  }

  /** Drops a frame's hold on its segment, deleting the segment once nothing in it is pending. */
  async #release(segment: Segment): Promise<void> {
    segment.pending--;
    if (segment.pending > 0) return;
    this.#segments = this.#segments.filter((other) => other !== segment);
    await segment.handle.close().catch(() => {});
    // A segment that survives a crash here only holds appends the inner log has: they are discarded on open.
    await rm(segment.file, { force: true });
  }

  async #takeSeq(): Promise<number> {
    if (this.#nextSeq >= this.#reservedSeq) await this.#reserve(this.#nextSeq + SEQ_BLOCK);
    return this.#nextSeq++;
  }

  async #reserve(upTo: number): Promise<void> {
    const file = path.join(this.#dir, SEQ_FILE);
    const temporary = `${file}.tmp`;
    await writeFile(temporary, JSON.stringify({ next: upTo }), { flush: true });
    await rename(temporary, file);
    await syncDir(this.#dir);
    this.#reservedSeq = upTo;
  }

  // --- draining ---

  async #drain(): Promise<void> {
    let failures = 0;
    while (this.#state === 'open') {
      const frame = this.#queue[this.#head];
      if (frame === undefined) {
        await new Promise<void>((resolve) => {
          this.#wakeDrainer = resolve;
        });
        continue;
      }
      try {
        await this.#drainOne(frame);
        failures = 0;
      } catch (error) {
        this.#noteError(error);
        failures++;
        const waitMs = this.#retryMs * Math.min(MAX_BACKOFF_FACTOR, 2 ** (failures - 1));
        // Only closing cuts the backoff short: new spooled appends must not hammer a failing log.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          this.#stopBackoff = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#stopBackoff = undefined;
      }
    }
  }

  async #drainOne(frame: Frame): Promise<void> {
    const known = this.#known.get(frame.topic) ?? (await this.#confirm(frame.topic));
    if (frame.seq <= known.seq) {
      this.#stats.discardedAppends++;
      await this.#dropHead(frame);
      return;
    }
    const body = Buffer.allocUnsafe(frame.length);
    await frame.segment.handle.read(body, 0, frame.length, frame.position);
    const payload = JSON.parse(body.toString('utf8')) as Payload;
    const state = 'st' in payload ? payload.st : known.state;
    if (this.#state !== 'open') return;
    try {
      await this.#innerAppend(frame.topic, payload.r, { state, spoolSeq: frame.seq });
    } catch (error) {
      this.#known.delete(frame.topic);
      throw error;
    }
    this.#known.set(frame.topic, { seq: frame.seq, state });
    this.#stats.drainedAppends++;
    await this.#dropHead(frame);
  }

  async #dropHead(frame: Frame): Promise<void> {
    this.#queue[this.#head] = undefined as unknown as Frame;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.#pendingState.get(frame.topic)?.seq === frame.seq) this.#pendingState.delete(frame.topic);
    this.#stats.spoolBytes -= HEADER_BYTES + frame.length;
    this.#stats.pendingAppends = this.#pendingCount();
    await this.#release(frame.segment);
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const resolve of waiters) resolve();
    this.#changed();
  }

  /** Drops pending appends the inner log already has, as far as `#known` tells. */
  async #discardCommitted(): Promise<void> {
    // Only at open, before anything else runs: the drainer does the same one frame at a time.
    for (;;) {
      const frame = this.#queue[this.#head];
      const known = frame === undefined ? undefined : this.#known.get(frame.topic);
      if (frame === undefined || known === undefined || frame.seq > known.seq) return;
      this.#stats.discardedAppends++;
      await this.#dropHead(frame);
    }
  }

  // --- the inner log ---

  /** Reads the inner log's producer state of `topic`, once no append of unknown outcome is in flight. */
  async #confirm(topic: string): Promise<InnerState> {
    await this.#innerBusy;
    const inner = unwrap(await this.#timed(this.#inner.producerState(topic), 'producer state read'));
    // A lost spool dir may have left the counter below the inner log's numbers; never reuse them.
    if (inner.seq >= this.#nextSeq) this.#nextSeq = inner.seq + 1;
    this.#known.set(topic, inner);
    return inner;
  }

  async #innerAppend(
    topic: string,
    records: readonly AppendRecord<unknown>[],
    state: SpooledProducerState,
  ): Promise<void> {
    const appended = this.#inner.append(topic, records, state);
    this.#innerBusy = appended.then(
      () => {},
      () => {},
    );
    await this.#timed(appended, 'append');
  }

  #timed<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`inner log ${what} took over ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  // --- small helpers ---

  #pendingCount(): number {
    return this.#queue.length - this.#head;
  }

  #pendingFrames(): Frame[] {
    return this.#queue.slice(this.#head);
  }

  #wake(): void {
    const wake = this.#wakeDrainer;
    this.#wakeDrainer = undefined;
    wake?.();
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #nextChange(): Promise<void> {
    return new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
  }

  #noteError(error: unknown): void {
    this.#stats.lastError = error instanceof Error ? error.message : String(error);
    this.#changed();
  }

  #changed(): void {
    try {
      this.#onChange?.();
    } catch {
      // A metrics callback must not break appends.
    }
  }
}

/** The caller's state and sequence number in an inner producer state; a state not written here has number -1. */
function unwrap(stored: unknown): InnerState {
  if (
    stored !== null &&
    typeof stored === 'object' &&
    typeof (stored as SpooledProducerState).spoolSeq === 'number'
  ) {
    const { spoolSeq, state } = stored as SpooledProducerState;
    return { seq: spoolSeq, state };
  }
  return { seq: -1, state: stored };
}

async function readSeqFile(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const next = (JSON.parse(text) as { next?: unknown }).next;
  return typeof next === 'number' ? next : undefined;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
