/**
 * The embedded log: a durable, partitioned log in plain files under the data directory.
 *
 * Layout: `dir/<topic>/topic.json` fixes the topic's partition count; `dir/<topic>/<firstFrame>.seg`
 * (20 digits: the topic-wide sequence number of the segment's first frame) hold frames. One `append` is
 * exactly one frame, whatever partitions it touches, which is what makes it atomic with its producer
 * state: a frame is `[u32 payloadLength][u32 crc32(payload)][payload]` (little endian), and
 * recovery keeps the longest prefix of whole frames whose CRC matches.
 *
 * Payload: `u8 version (2), u8 flags, u16 sectionCount, u32 stateLength`; when flags bit 0 is set (the
 * first frame of every segment) `u32 partitionCount` and a float64 per partition: the offset its first
 * record in this segment has; then per section `u32 partition, u32 recordCount, u32 byteLength`, then
 * the producer state as UTF-8 JSON (absent when its length is 0), then each section: that partition's
 * records in append order, encoded by `core/entry-codec.ts` (about 24 bytes per ingest tick). Version 1
 * frames (sections as JSON arrays `[key0, value0, ...]`, no offsets block) are still read. Offsets are
 * counted while scanning from the first segment's offsets block, and the in-memory index keeps one entry
 * per (frame, partition) pointing at the section's bytes. The first frame of a segment also repeats the
 * latest producer state, so deleting older segments never loses it.
 *
 * Retention (docs/design.md, Retention and history): with `retentionMs` or `retentionBytes`, whole segments are deleted oldest
 * first, in the background, once every record in them is below the offsets `markProcessed` was given
 * and the segment is older than `retentionMs` (its last append) or the log is over `retentionBytes`
 * (one cap for all topics together: the oldest deletable segment of any topic goes first).
 * The newest segment is never deleted. A topic never marked processed is never deleted. Reads below
 * the first kept offset (`startOffset`) start at it. Deleting oldest first keeps the files a contiguous
 * suffix, so a crash in the middle of it recovers like any other.
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
 * Future work: a persisted index so opening a very large log does not have to scan every frame.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeEntries, EntryEncoder } from '../../core/entry-codec.ts';
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
  /** The tail cache of a partition also stops at this many bytes of encoded records (default 8 MiB). */
  cacheBytes?: number;
  /** Delete processed segments whose last append is older than this (ms; default 0: never by age). */
  retentionMs?: number;
  /** Delete the oldest processed segments while the log (all topics together) holds more than this (default 0: no cap). */
  retentionBytes?: number;
  /** How often retention runs in the background (default 1 s; a pass without deletions costs microseconds). */
  retentionCheckMs?: number;
  /** The clock retention ages segments by (tests inject one). */
  now?: () => number;
}

/** What one retention pass deleted. */
export interface RetentionResult {
  segments: number;
  bytes: number;
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
const FORMAT_VERSION = 2;
const FLAG_OFFSETS = 1;
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

/**
 * Columns locating each section of a partition on disk; one row per frame that touched it. Rows are
 * appended, and dropped from the front when retention deletes their segment.
 */
class SectionIndex {
  /** The first live row; rows before it point into deleted segments. */
  start = 0;
  length = 0;
  #firstOffset = new Float64Array(16);
  #segment = new Uint32Array(16);
  #position = new Float64Array(16);
  #bytes = new Uint32Array(16);
  #version = new Uint8Array(16);

  push(firstOffset: number, segment: number, position: number, bytes: number, version: number): void {
    if (this.length === this.#firstOffset.length) this.#grow();
    const i = this.length++;
    this.#firstOffset[i] = firstOffset;
    this.#segment[i] = segment;
    this.#position[i] = position;
    this.#bytes[i] = bytes;
    this.#version[i] = version;
  }

  /** The row whose section holds `offset` (the last one starting at or before it), or -1. */
  find(offset: number): number {
    let low = this.start;
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

  /** Forgets the rows of segments below `segment`; returns how many rows moved down (for cached row numbers). */
  dropSegmentsBelow(segment: number): number {
    while (this.start < this.length && this.#segment[this.start]! < segment) this.start++;
    if (this.start < 1_024 || this.start * 2 < this.length) return 0;
    const moved = this.start;
    this.#firstOffset.copyWithin(0, moved, this.length);
    this.#segment.copyWithin(0, moved, this.length);
    this.#position.copyWithin(0, moved, this.length);
    this.#bytes.copyWithin(0, moved, this.length);
    this.#version.copyWithin(0, moved, this.length);
    this.length -= moved;
    this.start = 0;
    return moved;
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
  version(i: number): number {
    return this.#version[i]!;
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
    const version = new Uint8Array(size);
    version.set(this.#version);
    this.#version = version;
  }
}

interface CacheChunk {
  firstOffset: number;
  /** The appended records themselves: LogRecords are made on read, so they die young if unkept. */
  records: readonly AppendRecord<unknown>[];
  /** Their encoded size, the measure of the cache's byte bound. */
  bytes: number;
}

/**
 * The newest records of a partition, kept as the chunks they were appended in (no per-record copying).
 * Holds at least `limit` records when that many were appended since open (unless that would pass
 * `limitBytes` of encoded records), and at most one chunk more than either bound.
 */
class TailCache {
  readonly #partition: number;
  readonly #limit: number;
  readonly #limitBytes: number;
  #chunks: CacheChunk[] = [];
  #head = 0;
  #size = 0;
  #bytes = 0;

  constructor(partition: number, limit: number, limitBytes: number) {
    this.#partition = partition;
    this.#limit = limit;
    this.#limitBytes = limitBytes;
  }

  /** The first cached offset, or Infinity when empty. */
  get startOffset(): number {
    return this.#chunks[this.#head]?.firstOffset ?? Number.POSITIVE_INFINITY;
  }

  /** Encoded bytes of the records held. */
  get bytes(): number {
    return this.#bytes;
  }

  push(firstOffset: number, records: readonly AppendRecord<unknown>[], bytes: number): void {
    if (this.#limit <= 0 || this.#limitBytes <= 0) return;
    this.#chunks.push({ firstOffset, records, bytes });
    this.#size += records.length;
    this.#bytes += bytes;
    while (this.#head < this.#chunks.length - 1) {
      const oldest = this.#chunks[this.#head]!;
      if (this.#size - oldest.records.length < this.#limit && this.#bytes <= this.#limitBytes) break;
      this.#size -= oldest.records.length;
      this.#bytes -= oldest.bytes;
      this.#chunks[this.#head] = undefined as unknown as CacheChunk;
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
  /** The first offset still held: records below it were deleted by retention. */
  startOffset = 0;
  endOffset = 0;
  /** Records below this are processed (`markProcessed`); -1 until the first mark. */
  processedOffset = -1;
  readonly index = new SectionIndex();
  readonly cache: TailCache;
  /** The last section decoded from disk, so a consumer reading it in small steps parses it once. */
  decodedRow = -1;
  decoded: LogRecord<unknown>[] = [];

  constructor(partition: number, cacheRecords: number, cacheBytes: number) {
    this.partition = partition;
    this.cache = new TailCache(partition, cacheRecords, cacheBytes);
  }
}

interface Segment {
  file: string;
  size: number;
  /** Each partition's end offset when the segment started: where its records in this segment begin. */
  baseOffsets: number[];
  /** When its last frame was appended (file mtime after a restart): retention's age. */
  lastAppendMs: number;
}

interface TopicState {
  name: string;
  dir: string;
  partitions: PartitionState[];
  /** The live segments, oldest first; `segments[0]` is segment number `firstSegment`. */
  segments: Segment[];
  firstSegment: number;
  /** Whether any partition has been marked processed: retention leaves other topics alone. */
  marked: boolean;
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
  readonly #cacheBytes: number;
  readonly #retentionMs: number;
  readonly #retentionBytes: number;
  readonly #retentionCheckMs: number;
  readonly #now: () => number;
  #retentionTimer: NodeJS.Timeout | undefined;
  readonly #encoder = new EntryEncoder();
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
    const cacheBytes = options.cacheBytes ?? 8 * 1024 * 1024;
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new LogError('LOG_BAD_ARGUMENT', `partitions must be an integer >= 1, got ${partitions}`);
    }
    if (!Number.isInteger(segmentBytes) || segmentBytes < 1) {
      throw new LogError('LOG_BAD_ARGUMENT', `segmentBytes must be an integer >= 1, got ${segmentBytes}`);
    }
    if (!Number.isInteger(cacheRecords) || cacheRecords < 0) {
      throw new LogError('LOG_BAD_ARGUMENT', `cacheRecords must be an integer >= 0, got ${cacheRecords}`);
    }
    for (const [name, value] of Object.entries({
      cacheBytes,
      retentionMs: options.retentionMs ?? 0,
      retentionBytes: options.retentionBytes ?? 0,
    })) {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new LogError('LOG_BAD_ARGUMENT', `${name} must be an integer >= 0, got ${value}`);
      }
    }
    this.#dir = options.dir;
    this.#defaultPartitions = partitions;
    this.#segmentBytes = segmentBytes;
    this.#fsync = options.fsync ?? false;
    this.#cacheRecords = cacheRecords;
    this.#cacheBytes = cacheBytes;
    this.#retentionMs = options.retentionMs ?? 0;
    this.#retentionBytes = options.retentionBytes ?? 0;
    this.#retentionCheckMs = options.retentionCheckMs ?? 1_000;
    this.#now = options.now ?? Date.now;
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
    if (this.#retentionMs > 0 || this.#retentionBytes > 0) {
      this.#retentionTimer = setInterval(() => {
        try {
          this.enforceRetention();
        } catch {
          // A segment that cannot be deleted now (permissions, a busy file) is tried again next time.
        }
      }, this.#retentionCheckMs);
      this.#retentionTimer.unref();
    }
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
    const keepRecords = this.#cacheRecords > 0 && this.#cacheBytes > 0;

    // Group by partition (copied, since the caller may reuse its array).
    const sectionPartitions: number[] = [];
    const sectionRecords: (readonly AppendRecord<unknown>[])[] = [];
    if (partitionCount === 1) {
      if (records.length > 0) {
        sectionPartitions.push(0);
        sectionRecords.push(records.slice());
      }
    } else {
      // Two passes, so each partition's array is allocated once at its final size.
      const partitionOf = new Uint32Array(records.length);
      const counts = new Uint32Array(partitionCount);
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!;
        const partition = record.partition ?? partitionFor(record.key, partitionCount);
        partitionOf[i] = partition;
        counts[partition]!++;
      }
      const recordsByPartition: AppendRecord<unknown>[][] = new Array(partitionCount);
      for (let partition = 0; partition < partitionCount; partition++) {
        const count = counts[partition]!;
        if (count > 0) recordsByPartition[partition] = new Array(count);
      }
      const filled = new Uint32Array(partitionCount);
      for (let i = 0; i < records.length; i++) {
        const partition = partitionOf[i]!;
        recordsByPartition[partition]![filled[partition]!++] = records[i]!;
      }
      for (let partition = 0; partition < partitionCount; partition++) {
        const list = recordsByPartition[partition];
        if (list === undefined) continue;
        sectionPartitions.push(partition);
        sectionRecords.push(list);
      }
    }

    // Encode the sections (copied out of the encoder's reused buffer).
    const sectionCount = sectionPartitions.length;
    const sectionBytes: Uint8Array[] = new Array(sectionCount);
    let sectionsLength = 0;
    for (let s = 0; s < sectionCount; s++) {
      sectionBytes[s] = this.#encoder.encode(sectionRecords[s]!).slice();
      sectionsLength += sectionBytes[s]!.length;
    }
    // The first frame of a segment carries every partition's offsets and the latest producer state,
    // so the segments before it can be deleted.
    const baseLength =
      FRAME_HEADER_BYTES + PAYLOAD_FIXED_BYTES + SECTION_HEADER_BYTES * sectionCount + sectionsLength;
    const startsSegment = this.#startsSegment(state, baseLength + (stateJson?.length ?? 0));
    const frameStateJson = stateJson ?? (startsSegment ? state.stateJson : undefined);
    const stateBytes = frameStateJson === undefined ? 0 : Buffer.byteLength(frameStateJson);
    const offsetsBytes = startsSegment ? 4 + 8 * partitionCount : 0;
    const payloadLength = baseLength - FRAME_HEADER_BYTES + offsetsBytes + stateBytes;
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
    frame.writeUInt8(startsSegment ? FLAG_OFFSETS : 0, at + 1);
    frame.writeUInt16LE(sectionCount, at + 2);
    frame.writeUInt32LE(stateBytes, at + 4);
    at += PAYLOAD_FIXED_BYTES;
    const baseOffsets = state.partitions.map((partitionState) => partitionState.endOffset);
    if (startsSegment) {
      frame.writeUInt32LE(partitionCount, at);
      at += 4;
      for (const offset of baseOffsets) at = frame.writeDoubleLE(offset, at);
    }
    for (let s = 0; s < sectionCount; s++) {
      frame.writeUInt32LE(sectionPartitions[s]!, at);
      frame.writeUInt32LE(sectionRecords[s]!.length, at + 4);
      frame.writeUInt32LE(sectionBytes[s]!.length, at + 8);
      at += SECTION_HEADER_BYTES;
    }
    if (frameStateJson !== undefined) at += frame.write(frameStateJson, at, 'utf8');
    const sectionStart: number[] = new Array(sectionCount);
    for (let s = 0; s < sectionCount; s++) {
      sectionStart[s] = at;
      frame.set(sectionBytes[s]!, at);
      at += sectionBytes[s]!.length;
    }
    frame.writeUInt32LE(payloadLength, 0);
    frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER_BYTES, frameLength)), 4);

    // Write it, then make it visible.
    const segmentNumber = this.#segmentFor(state, startsSegment, baseOffsets);
    const segment = state.segments[segmentNumber - state.firstSegment]!;
    this.#writeFrame(state, segment, frame, frameLength);
    const framePosition = segment.size;
    segment.size += frameLength;
    segment.lastAppendMs = this.#now();
    state.frameCount++;
    if (stateJson !== undefined) state.stateJson = stateJson;
    for (let s = 0; s < sectionCount; s++) {
      const partitionState = state.partitions[sectionPartitions[s]!]!;
      const firstOffset = partitionState.endOffset;
      partitionState.index.push(
        firstOffset,
        segmentNumber,
        framePosition + sectionStart[s]!,
        sectionBytes[s]!.length,
        FORMAT_VERSION,
      );
      partitionState.endOffset += sectionRecords[s]!.length;
      if (keepRecords) partitionState.cache.push(firstOffset, sectionRecords[s]!, sectionBytes[s]!.length);
    }
    for (let s = 0; s < sectionCount; s++) {
      const partition = sectionPartitions[s]!;
      this.#waiters.notify(topic, partition, state.partitions[partition]!.endOffset);
    }
  }

  /** Records below `offset` of the partition are processed: retention may delete them. Never moves back. */
  markProcessed(topic: string, partition: number, offset: number): void {
    this.#checkOpen();
    checkPartition(topic, partition, this.partitions(topic));
    const state = this.#topics.get(topic);
    if (state === undefined) return;
    const partitionState = state.partitions[partition]!;
    partitionState.processedOffset = Math.max(partitionState.processedOffset, offset);
    state.marked = true;
  }

  /** The first offset of the partition still held; records below it were deleted by retention. */
  startOffset(topic: string, partition: number): number {
    this.#checkOpen();
    checkPartition(topic, partition, this.partitions(topic));
    return this.#topics.get(topic)?.partitions[partition]?.startOffset ?? 0;
  }

  /** Bytes of segment files per topic, and the encoded bytes the tail caches hold. */
  diskUsage(): { topics: Record<string, { segments: number; bytes: number }>; cacheBytes: number } {
    const topics: Record<string, { segments: number; bytes: number }> = {};
    let cacheBytes = 0;
    for (const state of this.#topics.values()) {
      let bytes = 0;
      for (const segment of state.segments) bytes += segment.size;
      topics[state.name] = { segments: state.segments.length, bytes };
      for (const partitionState of state.partitions) cacheBytes += partitionState.cache.bytes;
    }
    return { topics, cacheBytes };
  }

  /**
   * Deletes, oldest first, the segments retention allows (see the file comment); runs in the
   * background every `retentionCheckMs`, and may be called directly.
   */
  enforceRetention(): RetentionResult {
    const result: RetentionResult = { segments: 0, bytes: 0 };
    if (this.#state !== 'open' || (this.#retentionMs <= 0 && this.#retentionBytes <= 0)) return result;
    const touched = new Set<TopicState>();
    // By age, topic by topic: each topic's oldest segments while they are old enough.
    if (this.#retentionMs > 0) {
      const before = this.#now() - this.#retentionMs;
      for (const state of this.#topics.values()) {
        while (this.#deletable(state) && state.segments[0]!.lastAppendMs < before) {
          this.#deleteOldestSegment(state, result);
          touched.add(state);
        }
      }
    }
    // By size, over the whole log (every topic's segments count against the one cap, so the
    // directory stays near it): the oldest deletable segment of any topic goes first.
    if (this.#retentionBytes > 0) {
      let total = 0;
      for (const state of this.#topics.values()) for (const segment of state.segments) total += segment.size;
      while (total > this.#retentionBytes) {
        let oldest: TopicState | undefined;
        for (const state of this.#topics.values()) {
          if (!this.#deletable(state)) continue;
          if (oldest === undefined || state.segments[0]!.lastAppendMs < oldest.segments[0]!.lastAppendMs) {
            oldest = state;
          }
        }
        if (oldest === undefined) break;
        total -= this.#deleteOldestSegment(oldest, result);
        touched.add(oldest);
      }
    }
    if (this.#fsync) for (const state of touched) fsyncPath(state.dir);
    return result;
  }

  /** Whether the topic's oldest segment may go: it is not the newest, and every record in it is processed. */
  #deletable(state: TopicState): boolean {
    if (!state.marked || state.segments.length < 2) return false;
    const next = state.segments[1]!;
    // The next segment's first frame must be written: it tells a restart where offsets stand.
    if (next.size === 0) return false;
    // Every record of the segment is below the next one's base offsets: all must be processed.
    return state.partitions.every(
      (partitionState) => next.baseOffsets[partitionState.partition]! <= partitionState.processedOffset,
    );
  }

  /** Deletes the topic's oldest segment (check `#deletable` first); returns its size. */
  #deleteOldestSegment(state: TopicState, result: RetentionResult): number {
    const segment = state.segments[0]!;
    const next = state.segments[1]!;
    if (state.readFdSegment === state.firstSegment) {
      fs.closeSync(state.readFd);
      state.readFd = -1;
      state.readFdSegment = -1;
    }
    fs.rmSync(segment.file, { force: true });
    // Forgotten at once (each step complete on its own), so no read reaches for the deleted file.
    state.segments.shift();
    state.firstSegment++;
    for (const partitionState of state.partitions) {
      partitionState.startOffset = next.baseOffsets[partitionState.partition]!;
      partitionState.index.dropSegmentsBelow(state.firstSegment);
      partitionState.decodedRow = -1;
    }
    result.bytes += segment.size;
    result.segments++;
    return segment.size;
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
    // Records below the start were deleted by retention: a read from there starts at the first kept one.
    const from = Math.max(fromOffset, partitionState.startOffset);
    const end = Math.min(partitionState.endOffset, from + maxRecords);
    let offset = from;
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
    clearInterval(this.#retentionTimer);
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
      partitions: Array.from(
        { length: partitionCount },
        (_, i) => new PartitionState(i, this.#cacheRecords, this.#cacheBytes),
      ),
      segments: [],
      firstSegment: 0,
      marked: false,
      frameCount: 0,
      stateJson: undefined,
      appendFd: -1,
      readFd: -1,
      readFdSegment: -1,
    };
  }

  /** Whether the next frame of `frameLength` bytes starts a segment (a new one, or an empty last one). */
  #startsSegment(state: TopicState, frameLength: number): boolean {
    const last = state.segments[state.segments.length - 1];
    return last === undefined || last.size === 0 || last.size + frameLength > this.#segmentBytes;
  }

  /** The number of the segment the next frame goes to, rolling to a new one when `startsSegment` says so. */
  #segmentFor(state: TopicState, startsSegment: boolean, baseOffsets: number[]): number {
    const last = state.segments[state.segments.length - 1];
    if (last !== undefined && (!startsSegment || last.size === 0)) {
      if (state.appendFd < 0) state.appendFd = this.#guardSpace(() => fs.openSync(last.file, 'a'), last.file);
      if (last.size === 0) last.baseOffsets = baseOffsets;
      return state.firstSegment + state.segments.length - 1;
    }
    if (state.appendFd >= 0) {
      if (this.#fsync) fs.fdatasyncSync(state.appendFd);
      fs.closeSync(state.appendFd);
      state.appendFd = -1;
    }
    const file = path.join(state.dir, segmentName(state.frameCount));
    state.appendFd = this.#guardSpace(() => fs.openSync(file, 'a'), file);
    if (this.#fsync) fsyncPath(state.dir);
    state.segments.push({ file, size: 0, baseOffsets, lastAppendMs: this.#now() });
    return state.firstSegment + state.segments.length - 1;
  }

  /** Runs a file operation, turning a full disk into LOG_NO_SPACE (which a writer may retry). */
  #guardSpace<T>(operation: () => T, file: string): T {
    try {
      return operation();
    } catch (error) {
      if (isNoSpace(error)) {
        throw new LogError('LOG_NO_SPACE', `no space left to write ${file}; free some and retry`, {
          cause: error,
        });
      }
      throw error;
    }
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
      if (isNoSpace(error) && this.#writeFailure === undefined) {
        throw new LogError(
          'LOG_NO_SPACE',
          `no space left to append to ${segment.file}; free some and retry`,
          {
            cause: error,
          },
        );
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
    const segmentNumber = index.segment(row);
    const segment = state.segments[segmentNumber - state.firstSegment]!;
    if (state.readFdSegment !== segmentNumber) {
      if (state.readFd >= 0) fs.closeSync(state.readFd);
      state.readFd = -1;
      state.readFd = fs.openSync(segment.file, 'r');
      state.readFdSegment = segmentNumber;
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
    const firstOffset = index.firstOffset(row);
    const records: LogRecord<unknown>[] = [];
    const unreadable = (cause?: unknown) =>
      new LogError(
        'LOG_CORRUPT',
        `section of partition ${partition} at byte ${index.position(row)} of ${segment.file} is unreadable ` +
          'although it passed its CRC at open: the file changed underneath the log',
        { cause },
      );
    if (read !== bytes) throw unreadable();
    if (index.version(row) === 1) {
      let flat: unknown;
      try {
        flat = JSON.parse(buffer.toString('utf8'));
      } catch (error) {
        throw unreadable(error);
      }
      if (!Array.isArray(flat) || flat.length % 2 !== 0 || flat.length === 0) throw unreadable();
      for (let i = 0; i < flat.length / 2; i++) {
        records.push({
          partition,
          offset: firstOffset + i,
          key: flat[2 * i] as string,
          value: flat[2 * i + 1],
        });
      }
    } else {
      try {
        decodeEntries(buffer, (key, value) => {
          records.push({ partition, offset: firstOffset + records.length, key, value });
        });
      } catch (error) {
        throw unreadable(error);
      }
      if (records.length === 0) throw unreadable();
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
      // Retention deletes the oldest segments: the first one left may start anywhere.
      if (i === 0) state.frameCount = baseFrame;
      if (baseFrame !== state.frameCount) {
        throw new LogError(
          'LOG_CORRUPT',
          `${file} should start at frame ${state.frameCount} but is named for frame ${baseFrame}: ` +
            'a segment file is missing or foreign; restore it',
        );
      }
      const stat = fs.statSync(file);
      const size = stat.size;
      const baseOffsets = state.partitions.map((partitionState) => partitionState.endOffset);
      const validSize = this.#scanSegment(state, i, file, size, scratch);
      // The first segment's offsets block (read by #indexFrame) says where its partitions start.
      if (i === 0)
        for (let p = 0; p < baseOffsets.length; p++) baseOffsets[p] = state.partitions[p]!.startOffset;
      if (i === 0 && baseFrame > 0 && validSize === 0) {
        throw new LogError(
          'LOG_CORRUPT',
          `${file} is the first segment left but holds no whole frame, so the offsets it starts at are ` +
            'unknown; restore the directory from a backup',
        );
      }
      state.segments.push({ file, size: validSize, baseOffsets, lastAppendMs: stat.mtimeMs });
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
    const version = buffer.readUInt8(payloadStart);
    if (version !== 1 && version !== FORMAT_VERSION) return false;
    const flags = buffer.readUInt8(payloadStart + 1);
    const sectionCount = buffer.readUInt16LE(payloadStart + 2);
    const stateBytes = buffer.readUInt32LE(payloadStart + 4);
    let headersAt = payloadStart + PAYLOAD_FIXED_BYTES;
    const payloadEnd = payloadStart + payloadLength;
    if (version === FORMAT_VERSION && (flags & FLAG_OFFSETS) !== 0) {
      if (headersAt + 4 > payloadEnd) return false;
      const count = buffer.readUInt32LE(headersAt);
      if (count !== state.partitions.length || headersAt + 4 + 8 * count > payloadEnd) return false;
      const firstFrameOfLog = segmentIndex === 0 && payloadStart - FRAME_HEADER_BYTES + fileDelta === 0;
      for (let p = 0; p < count; p++) {
        const offset = buffer.readDoubleLE(headersAt + 4 + 8 * p);
        const partitionState = state.partitions[p]!;
        if (firstFrameOfLog) {
          partitionState.startOffset = offset;
          partitionState.endOffset = offset;
        } else if (partitionState.endOffset !== offset) {
          return false;
        }
      }
      headersAt += 4 + 8 * count;
    }
    const headerEnd = headersAt + SECTION_HEADER_BYTES * sectionCount;
    let expected = headerEnd - payloadStart + stateBytes;
    let previousPartition = -1;
    for (let s = 0; s < sectionCount; s++) {
      const at = headersAt + SECTION_HEADER_BYTES * s;
      if (at + SECTION_HEADER_BYTES > payloadEnd) return false;
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
      const at = headersAt + SECTION_HEADER_BYTES * s;
      const partitionState = state.partitions[buffer.readUInt32LE(at)]!;
      const bytes = buffer.readUInt32LE(at + 8);
      partitionState.index.push(
        partitionState.endOffset,
        segmentIndex,
        sectionAt + fileDelta,
        bytes,
        version,
      );
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

function isNoSpace(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
