/**
 * The embedded log: a durable, partitioned log in plain files under the data directory.
 *
 * Layout: `dir/<topic>/topic.json` fixes the topic's partition count; `dir/<topic>/<firstFrame>.seg`
 * (20 digits: the topic-wide sequence number of the segment's first frame) hold frames. One `append` is
 * exactly one frame, whatever partitions it touches, which is what makes it atomic with its producer
 * state: a frame is `[u32 payloadLength][u32 crc32(payload)][payload]` (little endian), and
 * recovery keeps the longest prefix of whole frames whose CRC matches.
 *
 * Payload: `u8 version, u8 flags (0), u16 sectionCount, u32 stateLength`, then per section
 * `u32 partition, u32 recordCount, u32 byteLength`, then the producer state as UTF-8 JSON (absent when
 * its length is 0), then each section: a JSON array `[key0, value0, key1, value1, ...]` of that
 * partition's records in append order. Offsets are not stored: they are counted while scanning, and the
 * in-memory index keeps one entry per (frame, partition) pointing at the section's bytes, so memory
 * grows with the number of appends, not of records.
 *
 * Durability: every append is written with `writeSync` before its promise resolves, so it survives a
 * crash of the process (kill -9) at any instant. It survives power loss only with `fsync: true`,
 * which fdatasyncs each append (and the directory on file creation).
 *
 * Reads of recent records come from a bounded in-memory tail cache (the processor tails the log right
 * behind ingest in the same process); older ones are read back from the segment files through the index.
 * Cached values are the appended objects themselves: treat values as immutable once appended.
 *
 * One process at a time may open a directory (not enforced yet: a lock file is future work).
 * Future work: retention (delete whole segments older than a limit), and a persisted index so opening
 * a very large log does not have to scan every frame.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { AppendRecord, Log, LogRecord } from '../log.ts';
import { partitionFor } from '../log.ts';
import { checkOffset, checkPartition, LogError } from '../log-error.ts';
import { OffsetWaiters } from '../offset-waiters.ts';

/** Options of {@link EmbeddedLog}. */
export interface EmbeddedLogOptions {
  /** Directory holding one sub-directory per topic. Created if missing. */
  dir: string;
  /** Partition count given to a topic when it is first used (default 1). */
  partitions?: number;
  /** A segment file is closed and a new one started before it would exceed this size (default 256 MiB). */
  segmentBytes?: number;
  /** fdatasync every append: durable against power loss, much slower (default false). */
  fsync?: boolean;
  /** Recent records kept in memory per partition for fast tailing reads (default 100 000; 0 disables). */
  cacheRecords?: number;
}

/** What `open()` had to repair in a topic: a torn or corrupt tail cut off at the last whole frame. */
export interface RecoveryRepair {
  topic: string;
  segment: string;
  /** Byte position the segment was truncated to. */
  truncatedAt: number;
  droppedBytes: number;
}

const FRAME_HEADER_BYTES = 8;
const PAYLOAD_FIXED_BYTES = 8;
const SECTION_HEADER_BYTES = 12;
const FORMAT_VERSION = 1;
/** Larger lengths cannot have been written by us: they mark garbage, not a frame. */
const MAX_PAYLOAD_BYTES = 1 << 30;
const SCAN_CHUNK_BYTES = 8 << 20;
const META_FILE = 'topic.json';
const SEGMENT_NAME = /^(\d{20})\.seg$/;
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** The segment files of a topic in `dir`, oldest first (absolute paths). */
export function listSegmentFiles(dir: string, topic: string): string[] {
  const topicDir = path.join(dir, topic);
  if (!fs.existsSync(topicDir)) return [];
  return fs
    .readdirSync(topicDir)
    .filter((name) => SEGMENT_NAME.test(name))
    .sort()
    .map((name) => path.join(topicDir, name));
}

/** Append-only columns locating each section of a partition on disk; one row per frame that touched it. */
class SectionIndex {
  length = 0;
  #firstOffset = new Float64Array(16);
  #segment = new Uint32Array(16);
  #position = new Float64Array(16);
  #bytes = new Uint32Array(16);

  push(firstOffset: number, segment: number, position: number, bytes: number): void {
    if (this.length === this.#firstOffset.length) this.#grow();
    const i = this.length++;
    this.#firstOffset[i] = firstOffset;
    this.#segment[i] = segment;
    this.#position[i] = position;
    this.#bytes[i] = bytes;
  }

  /** The row whose section holds `offset` (the last one starting at or before it), or -1. */
  find(offset: number): number {
    let low = 0;
    let high = this.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.#firstOffset[mid]! <= offset) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }

  firstOffset(i: number): number {
    return this.#firstOffset[i]!;
  }
  segment(i: number): number {
    return this.#segment[i]!;
  }
  position(i: number): number {
    return this.#position[i]!;
  }
  bytes(i: number): number {
    return this.#bytes[i]!;
  }

  #grow(): void {
    const size = this.#firstOffset.length * 2;
    const firstOffset = new Float64Array(size);
    firstOffset.set(this.#firstOffset);
    this.#firstOffset = firstOffset;
    const segment = new Uint32Array(size);
    segment.set(this.#segment);
    this.#segment = segment;
    const position = new Float64Array(size);
    position.set(this.#position);
    this.#position = position;
    const bytes = new Uint32Array(size);
    bytes.set(this.#bytes);
    this.#bytes = bytes;
  }
}

interface CacheChunk {
  firstOffset: number;
  /** The appended records themselves: LogRecords are made on read, so they die young if unkept. */
  records: readonly AppendRecord<unknown>[];
}

/**
 * The newest records of a partition, kept as the chunks they were appended in (no per-record copying).
 * Holds at least `limit` records when that many were appended since open, and at most one chunk more.
 */
class TailCache {
  readonly #partition: number;
  readonly #limit: number;
  #chunks: CacheChunk[] = [];
  #head = 0;
  #size = 0;

  constructor(partition: number, limit: number) {
    this.#partition = partition;
    this.#limit = limit;
  }

  /** The first cached offset, or Infinity when empty. */
  get startOffset(): number {
    return this.#chunks[this.#head]?.firstOffset ?? Number.POSITIVE_INFINITY;
  }

  push(firstOffset: number, records: readonly AppendRecord<unknown>[]): void {
    if (this.#limit <= 0) return;
    this.#chunks.push({ firstOffset, records });
    this.#size += records.length;
    while (this.#head < this.#chunks.length - 1) {
      const oldest = this.#chunks[this.#head]!;
      if (this.#size - oldest.records.length < this.#limit) break;
      this.#size -= oldest.records.length;
      this.#head++;
    }
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Appends to `out` up to `max` records from `fromOffset` (which must be >= startOffset). */
  readInto(fromOffset: number, max: number, out: LogRecord<unknown>[]): void {
    let low = this.#head;
    let high = this.#chunks.length - 1;
    let index = this.#head;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.#chunks[mid]!.firstOffset <= fromOffset) {
        index = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    let remaining = max;
    let offset = fromOffset;
    for (; index < this.#chunks.length && remaining > 0; index++) {
      const chunk = this.#chunks[index]!;
      const start = offset - chunk.firstOffset;
      const end = Math.min(chunk.records.length, start + remaining);
      for (let i = start; i < end; i++) {
        const record = chunk.records[i]!;
        out.push({
          partition: this.#partition,
          offset: chunk.firstOffset + i,
          key: record.key,
          value: record.value,
        });
      }
      remaining -= end - start;
      offset += end - start;
    }
  }
}

class PartitionState {
  readonly partition: number;
  endOffset = 0;
  readonly index = new SectionIndex();
  readonly cache: TailCache;
  /** The last section decoded from disk, so a consumer reading it in small steps parses it once. */
  decodedRow = -1;
  decoded: LogRecord<unknown>[] = [];

  constructor(partition: number, cacheRecords: number) {
    this.partition = partition;
    this.cache = new TailCache(partition, cacheRecords);
  }
}

interface Segment {
  file: string;
  size: number;
}

interface TopicState {
  name: string;
  dir: string;
  partitions: PartitionState[];
  segments: Segment[];
  frameCount: number;
  stateJson: string | undefined;
  /** Append fd of the last segment, or -1 until the first append after open. */
  appendFd: number;
  readFd: number;
  readFdSegment: number;
}

/** The embedded, file-backed log (see the file comment for the format and guarantees). */
export class EmbeddedLog implements Log {
  readonly #dir: string;
  readonly #defaultPartitions: number;
  readonly #segmentBytes: number;
  readonly #fsync: boolean;
  readonly #cacheRecords: number;
  readonly #topics = new Map<string, TopicState>();
  readonly #waiters = new OffsetWaiters();
  #state: 'new' | 'open' | 'closed' = 'new';
  /** Set when a write could not be undone: the file may hold a torn frame, so no more appends. */
  #writeFailure: Error | undefined;
  #frameBuffer = Buffer.allocUnsafe(1 << 16);
  #repairs: RecoveryRepair[] = [];

  constructor(options: EmbeddedLogOptions) {
    const partitions = options.partitions ?? 1;
    const segmentBytes = options.segmentBytes ?? 256 * 1024 * 1024;
    const cacheRecords = options.cacheRecords ?? 100_000;
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new LogError('LOG_BAD_ARGUMENT', `partitions must be an integer >= 1, got ${partitions}`);
    }
    if (!Number.isInteger(segmentBytes) || segmentBytes < 1) {
      throw new LogError('LOG_BAD_ARGUMENT', `segmentBytes must be an integer >= 1, got ${segmentBytes}`);
    }
    if (!Number.isInteger(cacheRecords) || cacheRecords < 0) {
      throw new LogError('LOG_BAD_ARGUMENT', `cacheRecords must be an integer >= 0, got ${cacheRecords}`);
    }
    this.#dir = options.dir;
    this.#defaultPartitions = partitions;
    this.#segmentBytes = segmentBytes;
    this.#fsync = options.fsync ?? false;
    this.#cacheRecords = cacheRecords;
  }

  /** The torn tails the last `open()` cut off (empty after a clean shutdown). */
  get repairs(): readonly RecoveryRepair[] {
    return this.#repairs;
  }

  async open(): Promise<void> {
    if (this.#state !== 'new') throw new LogError('LOG_BAD_ARGUMENT', 'open() may be called once');
    fs.mkdirSync(this.#dir, { recursive: true });
    const scratch = { buffer: Buffer.allocUnsafe(SCAN_CHUNK_BYTES) };
    try {
      for (const entry of fs.readdirSync(this.#dir, { withFileTypes: true })) {
        if (!entry.isDirectory() || !TOPIC_NAME.test(entry.name)) continue;
        const topicDir = path.join(this.#dir, entry.name);
        // A directory without metadata is a topic whose creation crashed before its first frame.
        if (!fs.existsSync(path.join(topicDir, META_FILE))) continue;
        this.#topics.set(entry.name, this.#recoverTopic(entry.name, topicDir, scratch));
      }
    } catch (error) {
      // Leave the instance as new, so a retry after the operator's fix starts from a clean slate.
      this.#topics.clear();
      this.#repairs = [];
      throw error;
    }
    this.#state = 'open';
  }

  partitions(topic: string): number {
    return this.#topics.get(topic)?.partitions.length ?? this.#defaultPartitions;
  }

  async append<T>(
    topic: string,
    records: readonly AppendRecord<T>[],
    producerState?: unknown,
  ): Promise<void> {
    this.#checkOpen();
    if (this.#writeFailure !== undefined) {
      throw new LogError(
        'LOG_WRITE_FAILED',
        'an earlier write failed and could not be undone; reopen the log',
        {
          cause: this.#writeFailure,
        },
      );
    }
    const stateJson = producerState === undefined ? undefined : JSON.stringify(producerState);
    if (records.length === 0 && stateJson === undefined) return;
    // Checked before the topic is created or anything written: a bad partition rejects the whole append.
    const knownCount = this.partitions(topic);
    for (let i = 0; i < records.length; i++) {
      const explicit = records[i]!.partition;
      if (explicit !== undefined) checkPartition(topic, explicit, knownCount);
    }
    const state = this.#topicForWrite(topic);
    const partitionCount = state.partitions.length;
    const keepRecords = this.#cacheRecords > 0;

    // Group by partition: flat [key, value, ...] arrays to serialise, and the records to cache
    // (copied, since the caller may reuse its array).
    const sectionPartitions: number[] = [];
    const sectionFlat: unknown[][] = [];
    const sectionRecords: (readonly AppendRecord<unknown>[])[] = [];
    if (partitionCount === 1) {
      if (records.length > 0) {
        const flat = new Array<unknown>(records.length * 2);
        for (let i = 0; i < records.length; i++) {
          const record = records[i]!;
          flat[2 * i] = record.key;
          flat[2 * i + 1] = record.value;
        }
        sectionPartitions.push(0);
        sectionFlat.push(flat);
        sectionRecords.push(keepRecords ? records.slice() : []);
      }
    } else {
      // Two passes, so each partition's arrays are allocated once at their final size.
      const partitionOf = new Uint32Array(records.length);
      const counts = new Uint32Array(partitionCount);
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!;
        const partition = record.partition ?? partitionFor(record.key, partitionCount);
        partitionOf[i] = partition;
        counts[partition]!++;
      }
      const flatByPartition: (unknown[] | undefined)[] = new Array(partitionCount);
      const recordsByPartition: AppendRecord<unknown>[][] = new Array(partitionCount);
      for (let partition = 0; partition < partitionCount; partition++) {
        const count = counts[partition]!;
        if (count === 0) continue;
        flatByPartition[partition] = new Array(count * 2);
        recordsByPartition[partition] = keepRecords ? new Array(count) : [];
      }
      const filled = new Uint32Array(partitionCount);
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!;
        const partition = partitionOf[i]!;
        const j = filled[partition]!++;
        const flat = flatByPartition[partition]!;
        flat[2 * j] = record.key;
        flat[2 * j + 1] = record.value;
        if (keepRecords) recordsByPartition[partition]![j] = record;
      }
      for (let partition = 0; partition < partitionCount; partition++) {
        const flat = flatByPartition[partition];
        if (flat === undefined) continue;
        sectionPartitions.push(partition);
        sectionFlat.push(flat);
        sectionRecords.push(recordsByPartition[partition]!);
      }
    }

    // Encode the frame.
    const sectionCount = sectionPartitions.length;
    const sectionJson: string[] = new Array(sectionCount);
    const sectionBytes: number[] = new Array(sectionCount);
    let payloadLength = PAYLOAD_FIXED_BYTES + SECTION_HEADER_BYTES * sectionCount;
    const stateBytes = stateJson === undefined ? 0 : Buffer.byteLength(stateJson);
    payloadLength += stateBytes;
    for (let s = 0; s < sectionCount; s++) {
      const json = JSON.stringify(sectionFlat[s]);
      sectionJson[s] = json;
      sectionBytes[s] = Buffer.byteLength(json);
      payloadLength += sectionBytes[s]!;
    }
    if (payloadLength > MAX_PAYLOAD_BYTES) {
      throw new LogError(
        'LOG_BAD_ARGUMENT',
        `one append may hold at most ${MAX_PAYLOAD_BYTES} bytes, this one is ${payloadLength}: split it`,
      );
    }
    const frameLength = FRAME_HEADER_BYTES + payloadLength;
    const frame = this.#frameBufferOf(frameLength);
    let at = FRAME_HEADER_BYTES;
    frame.writeUInt8(FORMAT_VERSION, at);
    frame.writeUInt8(0, at + 1);
    frame.writeUInt16LE(sectionCount, at + 2);
    frame.writeUInt32LE(stateBytes, at + 4);
    at += PAYLOAD_FIXED_BYTES;
    for (let s = 0; s < sectionCount; s++) {
      frame.writeUInt32LE(sectionPartitions[s]!, at);
      frame.writeUInt32LE(sectionFlat[s]!.length / 2, at + 4);
      frame.writeUInt32LE(sectionBytes[s]!, at + 8);
      at += SECTION_HEADER_BYTES;
    }
    if (stateJson !== undefined) at += frame.write(stateJson, at, 'utf8');
    const sectionStart: number[] = new Array(sectionCount);
    for (let s = 0; s < sectionCount; s++) {
      sectionStart[s] = at;
      at += frame.write(sectionJson[s]!, at, 'utf8');
    }
    frame.writeUInt32LE(payloadLength, 0);
    frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER_BYTES, frameLength)), 4);

    // Write it, then make it visible.
    const segmentIndex = this.#segmentFor(state, frameLength);
    const segment = state.segments[segmentIndex]!;
    this.#writeFrame(state, segment, frame, frameLength);
    const framePosition = segment.size;
    segment.size += frameLength;
    state.frameCount++;
    if (stateJson !== undefined) state.stateJson = stateJson;
    for (let s = 0; s < sectionCount; s++) {
      const partitionState = state.partitions[sectionPartitions[s]!]!;
      const firstOffset = partitionState.endOffset;
      partitionState.index.push(
        firstOffset,
        segmentIndex,
        framePosition + sectionStart[s]!,
        sectionBytes[s]!,
      );
      partitionState.endOffset += sectionFlat[s]!.length / 2;
      partitionState.cache.push(firstOffset, sectionRecords[s]!);
    }
    for (let s = 0; s < sectionCount; s++) {
      const partition = sectionPartitions[s]!;
      this.#waiters.notify(topic, partition, state.partitions[partition]!.endOffset);
    }
  }

  async producerState(topic: string): Promise<unknown> {
    this.#checkOpen();
    const stateJson = this.#topics.get(topic)?.stateJson;
    return stateJson === undefined ? undefined : JSON.parse(stateJson);
  }

  async read<T>(
    topic: string,
    partition: number,
    fromOffset: number,
    maxRecords: number,
  ): Promise<LogRecord<T>[]> {
    this.#checkOpen();
    checkPartition(topic, partition, this.partitions(topic));
    checkOffset('fromOffset', fromOffset);
    const state = this.#topics.get(topic);
    const out: LogRecord<unknown>[] = [];
    if (state === undefined || maxRecords <= 0) return out as LogRecord<T>[];
    const partitionState = state.partitions[partition]!;
    const end = Math.min(partitionState.endOffset, fromOffset + maxRecords);
    let offset = fromOffset;
    while (offset < end) {
      if (offset >= partitionState.cache.startOffset) {
        partitionState.cache.readInto(offset, end - offset, out);
        break;
      }
      const records = this.#decodeSectionAt(state, partitionState, offset);
      const first = records[0]!.offset;
      const stop = Math.min(end, first + records.length);
      if (first > offset || stop <= offset) {
        // Unreachable unless the index is wrong; failing beats looping forever or skipping records.
        throw new LogError(
          'LOG_CORRUPT',
          `index of ${topic}/${partition} has no section for offset ${offset}`,
        );
      }
      for (let i = offset - first; i < stop - first; i++) out.push(records[i]!);
      offset = stop;
    }
    return out as LogRecord<T>[];
  }

  endOffset(topic: string, partition: number): number {
    this.#checkOpen();
    checkPartition(topic, partition, this.partitions(topic));
    return this.#topics.get(topic)?.partitions[partition]?.endOffset ?? 0;
  }

  waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<boolean> {
    if (this.#state !== 'open') return Promise.resolve(false);
    if (this.endOffset(topic, partition) > offset) return Promise.resolve(true);
    return this.#waiters.wait(topic, partition, offset, timeoutMs);
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#waiters.closeAll();
    let firstError: unknown;
    for (const state of this.#topics.values()) {
      try {
        if (state.appendFd >= 0) {
          if (this.#fsync) fs.fdatasyncSync(state.appendFd);
          fs.closeSync(state.appendFd);
        }
        if (state.readFd >= 0) fs.closeSync(state.readFd);
      } catch (error) {
        firstError ??= error;
      }
      state.appendFd = -1;
      state.readFd = -1;
    }
    this.#topics.clear();
    if (firstError !== undefined) throw firstError;
  }

  #checkOpen(): void {
    if (this.#state === 'new') throw new LogError('LOG_NOT_OPEN', 'call open() before using the log');
    if (this.#state === 'closed') throw new LogError('LOG_CLOSED', 'the log is closed');
  }

  #frameBufferOf(length: number): Buffer {
    if (this.#frameBuffer.length < length) {
      this.#frameBuffer = Buffer.allocUnsafe(Math.max(length, this.#frameBuffer.length * 2));
    }
    return this.#frameBuffer;
  }

  #topicForWrite(topic: string): TopicState {
    const existing = this.#topics.get(topic);
    if (existing !== undefined) return existing;
    if (!TOPIC_NAME.test(topic) || topic === '.' || topic === '..') {
      throw new LogError(
        'LOG_BAD_TOPIC',
        `topic '${topic}' is not a valid name: use 1 to 249 of A-Z a-z 0-9 . _ - (not '.' or '..')`,
      );
    }
    const topicDir = path.join(this.#dir, topic);
    fs.mkdirSync(topicDir, { recursive: true });
    // Write-then-rename so a crash leaves either no metadata or whole metadata.
    const metaFile = path.join(topicDir, META_FILE);
    const partialFile = `${metaFile}.partial`;
    fs.writeFileSync(
      partialFile,
      JSON.stringify({ version: FORMAT_VERSION, partitions: this.#defaultPartitions }),
    );
    if (this.#fsync) fsyncPath(partialFile);
    fs.renameSync(partialFile, metaFile);
    if (this.#fsync) {
      fsyncPath(topicDir);
      fsyncPath(this.#dir);
    }
    const state = this.#newTopicState(topic, topicDir, this.#defaultPartitions);
    this.#topics.set(topic, state);
    return state;
  }

  #newTopicState(name: string, dir: string, partitionCount: number): TopicState {
    return {
      name,
      dir,
      partitions: Array.from({ length: partitionCount }, (_, i) => new PartitionState(i, this.#cacheRecords)),
      segments: [],
      frameCount: 0,
      stateJson: undefined,
      appendFd: -1,
      readFd: -1,
      readFdSegment: -1,
    };
  }

  /** The index of the segment the next frame goes to, rolling to a new one when it would overflow. */
  #segmentFor(state: TopicState, frameLength: number): number {
    const last = state.segments[state.segments.length - 1];
    if (last !== undefined && (last.size === 0 || last.size + frameLength <= this.#segmentBytes)) {
      if (state.appendFd < 0) state.appendFd = fs.openSync(last.file, 'a');
      return state.segments.length - 1;
    }
    if (state.appendFd >= 0) {
      if (this.#fsync) fs.fdatasyncSync(state.appendFd);
      fs.closeSync(state.appendFd);
      state.appendFd = -1;
    }
    const file = path.join(state.dir, segmentName(state.frameCount));
    state.appendFd = fs.openSync(file, 'a');
    if (this.#fsync) fsyncPath(state.dir);
    state.segments.push({ file, size: 0 });
    return state.segments.length - 1;
  }

  #writeFrame(state: TopicState, segment: Segment, frame: Buffer, frameLength: number): void {
    try {
      let written = 0;
      while (written < frameLength) {
        written += fs.writeSync(state.appendFd, frame, written, frameLength - written);
      }
    } catch (error) {
      // Cut the partial frame off, or later frames would sit behind a torn one and be lost on recovery.
      try {
        fs.ftruncateSync(state.appendFd, segment.size);
      } catch (undoError) {
        this.#writeFailure = undoError instanceof Error ? undoError : new Error(String(undoError));
      }
      throw new LogError('LOG_WRITE_FAILED', `could not append to ${segment.file}`, { cause: error });
    }
    if (!this.#fsync) return;
    try {
      fs.fdatasyncSync(state.appendFd);
    } catch (error) {
      // After a failed fsync the kernel may have dropped the dirty pages: nothing written since is trustworthy.
      this.#writeFailure = error instanceof Error ? error : new Error(String(error));
      throw new LogError('LOG_WRITE_FAILED', `could not fsync ${segment.file}`, { cause: error });
    }
  }

  /** Decodes (or reuses) the on-disk section holding `offset`; returns its records, first one first. */
  #decodeSectionAt(state: TopicState, partitionState: PartitionState, offset: number): LogRecord<unknown>[] {
    const index = partitionState.index;
    const row = index.find(offset);
    if (row === partitionState.decodedRow) return partitionState.decoded;
    const segmentIndex = index.segment(row);
    const segment = state.segments[segmentIndex]!;
    if (state.readFdSegment !== segmentIndex) {
      if (state.readFd >= 0) fs.closeSync(state.readFd);
      state.readFd = -1;
      state.readFd = fs.openSync(segment.file, 'r');
      state.readFdSegment = segmentIndex;
    }
    const bytes = index.bytes(row);
    const buffer = Buffer.allocUnsafe(bytes);
    let read = 0;
    while (read < bytes) {
      const n = fs.readSync(state.readFd, buffer, read, bytes - read, index.position(row) + read);
      if (n === 0) break;
      read += n;
    }
    const partition = partitionState.partition;
    let flat: unknown;
    try {
      flat = read === bytes ? JSON.parse(buffer.toString('utf8')) : undefined;
    } catch {
      flat = undefined;
    }
    if (!Array.isArray(flat) || flat.length % 2 !== 0 || flat.length === 0) {
      throw new LogError(
        'LOG_CORRUPT',
        `section of partition ${partition} at byte ${index.position(row)} of ${segment.file} is unreadable ` +
          'although it passed its CRC at open: the file changed underneath the log',
      );
    }
    const firstOffset = index.firstOffset(row);
    const records: LogRecord<unknown>[] = new Array(flat.length / 2);
    for (let i = 0; i < records.length; i++) {
      records[i] = { partition, offset: firstOffset + i, key: flat[2 * i] as string, value: flat[2 * i + 1] };
    }
    partitionState.decodedRow = row;
    partitionState.decoded = records;
    return records;
  }

  #recoverTopic(name: string, topicDir: string, scratch: { buffer: Buffer }): TopicState {
    const metaFile = path.join(topicDir, META_FILE);
    let partitionCount: unknown;
    try {
      partitionCount = (JSON.parse(fs.readFileSync(metaFile, 'utf8')) as { partitions?: unknown }).partitions;
    } catch (error) {
      throw new LogError('LOG_CORRUPT', `cannot read ${metaFile}; restore it or remove the topic`, {
        cause: error,
      });
    }
    if (typeof partitionCount !== 'number' || !Number.isInteger(partitionCount) || partitionCount < 1) {
      throw new LogError('LOG_CORRUPT', `${metaFile} has no valid partition count; restore it`);
    }
    const state = this.#newTopicState(name, topicDir, partitionCount);
    const files = listSegmentFiles(this.#dir, name);
    for (let i = 0; i < files.length; i++) {
      const file = files[i]!;
      const baseFrame = Number(SEGMENT_NAME.exec(path.basename(file))![1]);
      if (baseFrame !== state.frameCount) {
        throw new LogError(
          'LOG_CORRUPT',
          `${file} should start at frame ${state.frameCount} but is named for frame ${baseFrame}: ` +
            'a segment file is missing or foreign; restore it',
        );
      }
      const size = fs.statSync(file).size;
      const validSize = this.#scanSegment(state, i, file, size, scratch);
      state.segments.push({ file, size: validSize });
      if (validSize === size) continue;
      // A crash can only tear the frame being written, which is the last one in the log.
      const later = files.slice(i + 1);
      if (later.some((laterFile) => fs.statSync(laterFile).size > 0)) {
        throw new LogError(
          'LOG_CORRUPT',
          `${file} is corrupt at byte ${validSize} but later segments hold data, so this is not a torn ` +
            'tail from a crash; restore the directory from a backup',
        );
      }
      const fd = fs.openSync(file, 'r+');
      try {
        fs.ftruncateSync(fd, validSize);
        if (this.#fsync) fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      for (const laterFile of later) fs.rmSync(laterFile);
      this.#repairs.push({
        topic: name,
        segment: file,
        truncatedAt: validSize,
        droppedBytes: size - validSize,
      });
      break;
    }
    return state;
  }

  /** Indexes the whole frames of a segment; returns the byte length of that valid prefix. */
  #scanSegment(
    state: TopicState,
    segmentIndex: number,
    file: string,
    size: number,
    scratch: { buffer: Buffer },
  ): number {
    const fd = fs.openSync(file, 'r');
    try {
      let bufferStart = 0;
      let bufferLength = 0;
      // Makes [position, position + length) of the file available in scratch.buffer.
      const ensure = (position: number, length: number): void => {
        if (position >= bufferStart && position + length <= bufferStart + bufferLength) return;
        if (scratch.buffer.length < length) scratch.buffer = Buffer.allocUnsafe(length);
        const want = Math.min(scratch.buffer.length, size - position);
        let read = 0;
        while (read < want) {
          const n = fs.readSync(fd, scratch.buffer, read, want - read, position + read);
          if (n === 0) break;
          read += n;
        }
        bufferStart = position;
        bufferLength = read;
      };
      let position = 0;
      while (position < size) {
        if (position + FRAME_HEADER_BYTES > size) return position;
        ensure(position, FRAME_HEADER_BYTES);
        let at = position - bufferStart;
        const payloadLength = scratch.buffer.readUInt32LE(at);
        if (payloadLength < PAYLOAD_FIXED_BYTES || payloadLength > MAX_PAYLOAD_BYTES) return position;
        const frameLength = FRAME_HEADER_BYTES + payloadLength;
        if (position + frameLength > size) return position;
        ensure(position, frameLength);
        at = position - bufferStart;
        const buffer = scratch.buffer;
        const payloadStart = at + FRAME_HEADER_BYTES;
        if (
          crc32(buffer.subarray(payloadStart, payloadStart + payloadLength)) !== buffer.readUInt32LE(at + 4)
        ) {
          return position;
        }
        if (!this.#indexFrame(state, segmentIndex, buffer, payloadStart, payloadLength, position - at)) {
          return position;
        }
        state.frameCount++;
        position += frameLength;
      }
      return position;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Checks a CRC-valid payload's structure and adds it to the index. `fileDelta` maps buffer
   * positions to file positions. Returns false (touching nothing) when the structure is invalid.
   */
  #indexFrame(
    state: TopicState,
    segmentIndex: number,
    buffer: Buffer,
    payloadStart: number,
    payloadLength: number,
    fileDelta: number,
  ): boolean {
    if (buffer.readUInt8(payloadStart) !== FORMAT_VERSION) return false;
    const sectionCount = buffer.readUInt16LE(payloadStart + 2);
    const stateBytes = buffer.readUInt32LE(payloadStart + 4);
    const headerEnd = payloadStart + PAYLOAD_FIXED_BYTES + SECTION_HEADER_BYTES * sectionCount;
    let expected = headerEnd - payloadStart + stateBytes;
    let previousPartition = -1;
    for (let s = 0; s < sectionCount; s++) {
      const at = payloadStart + PAYLOAD_FIXED_BYTES + SECTION_HEADER_BYTES * s;
      if (at + SECTION_HEADER_BYTES > payloadStart + payloadLength) return false;
      const partition = buffer.readUInt32LE(at);
      const count = buffer.readUInt32LE(at + 4);
      if (partition <= previousPartition || partition >= state.partitions.length || count === 0) return false;
      previousPartition = partition;
      expected += buffer.readUInt32LE(at + 8);
    }
    if (expected !== payloadLength) return false;
    if (stateBytes > 0) state.stateJson = buffer.toString('utf8', headerEnd, headerEnd + stateBytes);
    let sectionAt = headerEnd + stateBytes;
    for (let s = 0; s < sectionCount; s++) {
      const at = payloadStart + PAYLOAD_FIXED_BYTES + SECTION_HEADER_BYTES * s;
      const partitionState = state.partitions[buffer.readUInt32LE(at)]!;
      const bytes = buffer.readUInt32LE(at + 8);
      partitionState.index.push(partitionState.endOffset, segmentIndex, sectionAt + fileDelta, bytes);
      partitionState.endOffset += buffer.readUInt32LE(at + 4);
      sectionAt += bytes;
    }
    return true;
  }
}

function segmentName(firstFrame: number): string {
  return `${String(firstFrame).padStart(20, '0')}.seg`;
}

/** fsyncs a file or directory by path, so its contents (or entries) survive power loss. */
function fsyncPath(target: string): void {
  const fd = fs.openSync(target, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
