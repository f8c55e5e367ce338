/**
 * How a sink that fell behind catches up: it re-runs the processor over the log from the state in
 * its checkpoint. The processor is deterministic (a restart relies on it too), so what comes out
 * is exactly what was committed over those offsets. Lives here because sinks sit beside process
 * and may not import it; the pipeline hands each sink one of these.
 */
import { type IngestEntry, TOPIC_TICKS } from '../core/records.ts';
import type { Log } from '../log/log.ts';
import { emptyOutput, type ProcessConfig, Processor, type ProcessorSnapshot } from '../process/processor.ts';
import type { CommittedBatch, CommittedReplay, Offsets, SinkCheckpoint } from '../sinks/sink-stage.ts';

export class LogReplay implements CommittedReplay {
  readonly #log: Log;
  readonly #config: ProcessConfig;
  /** The processor after the last batch this replay returned, to continue without a restore. */
  #warm: { offsets: Offsets; processor: Processor } | undefined;

  constructor(log: Log, config: ProcessConfig) {
    this.#log = log;
    this.#config = config;
  }

  async holdsWholeLog(): Promise<boolean> {
    for (let partition = 0; partition < this.#log.partitions(TOPIC_TICKS); partition++) {
      const [first] = await this.#log.read(TOPIC_TICKS, partition, 0, 1);
      if (first !== undefined && first.offset > 0) return false;
    }
    return true;
  }

  async next(
    from: SinkCheckpoint | undefined,
    to: Offsets,
    maxEntries: number,
  ): Promise<CommittedBatch | undefined> {
    const start: Offsets = { ...(from?.offsets ?? {}) };
    const processor =
      this.#warm !== undefined && sameOffsets(this.#warm.offsets, start)
        ? this.#warm.processor
        : new Processor(this.#config, from?.state as ProcessorSnapshot | undefined);
    this.#warm = undefined;
    const out = emptyOutput();
    const offsets = { ...start };
    let read = 0;
    for (let partition = 0; partition < this.#log.partitions(TOPIC_TICKS) && read < maxEntries; partition++) {
      const end = to[partition] ?? 0;
      let offset = offsets[partition] ?? 0;
      while (offset < end && read < maxEntries) {
        const records = await this.#log.read<IngestEntry>(
          TOPIC_TICKS,
          partition,
          offset,
          Math.min(maxEntries - read, end - offset),
        );
        if (records.length > 0 && records[0]!.offset > offset && this.#log.markProcessed !== undefined) {
          // The embedded log's offsets never skip: entries are missing only when retention deleted them.
          throw new Error(
            `log entries ${offset} to ${records[0]!.offset - 1} of ${TOPIC_TICKS}[${partition}] were deleted before this sink delivered them`,
          );
        }
        if (records.length === 0) {
          // A distributed log's offsets skip (transaction markers): nothing left below `end`.
          offset = end;
          break;
        }
        for (const record of records) {
          if (record.offset >= end) break;
          processor.apply(record.value, record.offset, out);
          offset = record.offset + 1;
          read++;
        }
        if (records[records.length - 1]!.offset >= end) offset = end;
      }
      offsets[partition] = offset;
    }
    if (read === 0 && sameOffsets(offsets, start)) return undefined;
    this.#warm = { offsets, processor };
    return {
      batch: { ticks: out.ticks, candles: out.candles, indicators: out.indicators, alerts: out.alerts },
      from: start,
      to: offsets,
      state: processor.snapshot(),
    };
  }
}

function sameOffsets(a: Offsets, b: Offsets): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) if ((a[Number(key)] ?? 0) !== (b[Number(key)] ?? 0)) return false;
  return true;
}
