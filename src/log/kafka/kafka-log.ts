/**
 * The log stage on Apache Kafka (docs/kafka.md). Each Log topic is a Kafka topic; records go to their
 * explicit partition or the one `partitionFor(key)` picks, so every implementation agrees on where a
 * key lives. An append is one Kafka transaction holding its records and, when given, the producer state
 * (a record keyed `<topic>\0<transactionalId>` in the compacted `<topic>.producer-state` topic, so each
 * producer reads back only its own); reads are read_committed. The transactional producer is created by
 * the first append, so a log that only reads never registers (and never fences) its transactional id.
 *
 * An append's entries of one partition travel as one Kafka record (packed-records.ts), and a log
 * offset names an entry: its Kafka record's offset and its slot in that record. Each transaction's
 * commit marker also takes a Kafka offset, so a partition's offsets increase but skip. `endOffset` is
 * where the last stable offset starts, and `waitFor(offset)` waits for a committed entry at or past
 * `offset` (a marker does not count), so a reader that continues from its last entry's offset + 1
 * never spins on a marker.
 */

import { Producer, stringSerializers } from '@platformatic/kafka';
import { decodeEntries, EntryEncoder, type KeyedValue } from '../../core/entry-codec.ts';
import type { AppendRecord, Log, LogRecord } from '../log.ts';
import { partitionFor } from '../log.ts';
import { checkPartition } from '../log-error.ts';
import { type KafkaSaslConfig, type KafkaTlsConfig, resolveSasl, resolveTls } from './kafka-config.ts';
import { clientOptions, type KafkaConnection, KafkaWire } from './kafka-wire.ts';
import {
  entriesBefore,
  entryCount,
  entryOffset,
  type KafkaPosition,
  kafkaOffsetOf,
  kafkaPosition,
  packEntries,
  startOfRecord,
  unpackEntries,
} from './packed-records.ts';

/** Options of a Kafka-backed log. */
export interface KafkaLogOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  /** Partitions of the topics this log creates (existing topics keep theirs). Default 1. */
  partitions?: number;
  /** Kafka client id. Default `streamlines`. */
  clientId?: string;
  /**
   * Transactional id of the producer. One per writing process and stable across its restarts: a
   * restarted producer then fences its predecessor and aborts the transaction it left open.
   * Default `<clientId>-log`.
   */
  transactionalId?: string;
  /** Prefix of every Kafka topic name (to share a cluster). Default none. */
  topicPrefix?: string;
  /** Replication factor of the topics this log creates. Default 1. */
  replicationFactor?: number;
  /** `retention.ms` of the (not compacted) topics this log creates; 0 leaves the broker's default. */
  retentionMs?: number;
  /** `retention.bytes` (per partition, as Kafka counts it) of the topics this log creates; 0 leaves the default. */
  retentionBytes?: number;
  /** TLS to the brokers: true for the system CAs, or PEM files. Default none. */
  tls?: KafkaTlsConfig;
  /** SASL authentication (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), the password from the environment. */
  sasl?: KafkaSaslConfig;
}

type BytesProducer = Producer<string, Buffer, string, string>;

/** Record values go to Kafka as they are: packed entries (packed-records.ts), or a producer state's JSON. */
const bytesSerializers = { ...stringSerializers, value: (value?: Buffer) => value };

/** Suffix of the compacted topic that holds a topic's producer state. */
export const PRODUCER_STATE_SUFFIX = '.producer-state';
/** How often end offsets are refreshed from the cluster, for appends made by other processes. */
const REFRESH_MS = 500;
/** Longest single broker-side wait of `waitFor`, so closing and timeouts are noticed promptly. */
const WAIT_SLICE_MS = 100;

export class KafkaLog implements Log {
  readonly #options: Required<Omit<KafkaLogOptions, 'tls' | 'sasl'>>;
  readonly #security: Pick<KafkaLogOptions, 'tls' | 'sasl'>;
  #connection: KafkaConnection;
  /** Created by the first append (see #ensureProducer), so a log that only reads never registers the id. */
  #producer: BytesProducer | undefined;
  /** Reads and offsets; waits have their own connections, as a broker answers one request per connection at a time. */
  #wire: KafkaWire | undefined;
  #waitWire: KafkaWire | undefined;
  /** Partition counts of the topics known to exist. */
  readonly #topics = new Map<string, number>();
  /** State topics whose max.message.bytes this log has set (or made them with). */
  readonly #stateLimitRaised = new Set<string>();
  /** Last stable offset per `topic/partition`. */
  readonly #ends = new Map<string, number>();
  #appending: Promise<void> = Promise.resolve();
  #refreshTimer: NodeJS.Timeout | undefined;
  #refreshing = false;
  /** When the brokers last answered the background refresh (ms since the epoch), and its error since. */
  #answeredAt = 0;
  #unanswered: unknown;
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;
  /** Set once close() has let the queued appends finish: later appends reject. */
  #shut = false;
  readonly #encoder = new EntryEncoder();

  constructor(options: KafkaLogOptions) {
    const clientId = options.clientId ?? 'streamlines';
    this.#options = {
      brokers: options.brokers,
      partitions: options.partitions ?? 1,
      clientId,
      transactionalId: options.transactionalId ?? `${clientId}-log`,
      topicPrefix: options.topicPrefix ?? '',
      replicationFactor: options.replicationFactor ?? 1,
      retentionMs: options.retentionMs ?? 0,
      retentionBytes: options.retentionBytes ?? 0,
    };
    if (!Number.isInteger(this.#options.partitions) || this.#options.partitions < 1) {
      throw new Error(`kafka log: partitions must be a positive integer, got ${this.#options.partitions}`);
    }
    this.#security = { tls: options.tls, sasl: options.sasl };
    this.#connection = { brokers: options.brokers, clientId };
  }

  async open(): Promise<void> {
    // Files and the password are read when the log opens (a missing one is an error naming it).
    const tls = resolveTls(this.#security.tls);
    const sasl = resolveSasl(this.#security.sasl);
    this.#connection = {
      brokers: this.#options.brokers,
      clientId: this.#options.clientId,
      ...(tls === undefined ? {} : { tls }),
      ...(sasl === undefined ? {} : { sasl }),
    };
    this.#wire = new KafkaWire(this.#connection);
    this.#waitWire = new KafkaWire(this.#connection);
    await Promise.all([this.#wire.connect(), this.#waitWire.connect()]);
    await this.#refreshTopics();
    await this.#refreshEnds();
    this.#answeredAt = Date.now();
    this.#refreshTimer = setInterval(() => void this.#heartbeat(), REFRESH_MS);
    this.#refreshTimer.unref();
  }

  partitions(topic: string): number {
    return this.#topics.get(topic) ?? this.#options.partitions;
  }

  append<T>(topic: string, records: readonly AppendRecord<T>[], producerState?: unknown): Promise<void> {
    // Serialise now: the caller may change the objects once this returns.
    const packed = this.#pack(topic, records);
    const state = producerState === undefined ? undefined : Buffer.from(JSON.stringify(producerState));
    if (state !== undefined && state.length > STATE_MAX_BYTES) {
      return Promise.reject(
        new Error(
          `kafka log: a producer state of ${state.length} bytes is over the ${STATE_MAX_BYTES} bytes ` +
            `a record of ${topic}${PRODUCER_STATE_SUFFIX} may hold`,
        ),
      );
    }
    const next = this.#appending.then(() => this.#append(topic, packed, state));
    this.#appending = next.catch(() => {});
    return next;
  }

  /**
   * The append's records as packed values per partition (packed-records.ts). The partition of a
   * keyed record depends on the topic's real partition count, known once the topic is: until then
   * (the first append to a topic) the records are kept as one codec batch and packed by `#append`.
   */
  #pack<T>(topic: string, records: readonly AppendRecord<T>[]): PackedAppend {
    if (records.length === 0) return { kind: 'packed', values: new Map() };
    if (!this.#topics.has(topic)) {
      return {
        kind: 'deferred',
        bytes: Buffer.from(this.#encoder.encode(records)),
        partitions: records.map((record) => record.partition),
      };
    }
    try {
      return { kind: 'packed', values: this.#packInto(topic, records) };
    } catch (error) {
      return { kind: 'refused', error };
    }
  }

  /** Groups records by partition (their explicit one, checked, or their key's) and packs each group. */
  #packInto(
    topic: string,
    records: readonly { key: string; value: unknown; partition?: number | undefined }[],
  ): Map<number, Buffer[]> {
    const count = this.partitions(topic);
    const groups = new Map<number, KeyedValue[]>();
    for (const record of records) {
      const partition = record.partition ?? partitionFor(record.key, count);
      if (record.partition !== undefined) checkPartition(topic, partition, count);
      const group = groups.get(partition);
      if (group === undefined) groups.set(partition, [record]);
      else group.push(record);
    }
    const values = new Map<number, Buffer[]>();
    for (const [partition, group] of groups) values.set(partition, packEntries(this.#encoder, group));
    return values;
  }

  async #append(topic: string, packed: PackedAppend, state: Buffer | undefined): Promise<void> {
    const empty = packed.kind === 'packed' && packed.values.size === 0;
    if (empty && state === undefined) return;
    if (this.#shut) throw new Error('kafka log: closed');
    if (packed.kind === 'refused') throw packed.error;
    let deferred: { key: string; value: unknown; partition: number | undefined }[] | undefined;
    if (packed.kind === 'deferred') {
      // The topic's real partition count (another process may have created it), checked before the
      // topic is created or anything sent: a bad partition rejects the whole append.
      await this.#exists(topic);
      const count = this.partitions(topic);
      for (const partition of packed.partitions)
        if (partition !== undefined) checkPartition(topic, partition, count);
      deferred = [];
      const entries = deferred;
      decodeEntries(packed.bytes, (key, value) => {
        entries.push({ key, value, partition: packed.partitions[entries.length] });
      });
    }
    const producer = await this.#ensureProducer();
    if (!empty) await this.#ensureTopic(topic, this.partitions(topic), false);
    if (state !== undefined) await this.#ensureTopic(topic + PRODUCER_STATE_SUFFIX, 1, true);
    const values =
      deferred === undefined
        ? (packed as { values: Map<number, Buffer[]> }).values
        : this.#packInto(topic, deferred);
    const messages: { key: string; value: Buffer; partition: number }[] = [];
    for (const [partition, partitionValues] of values)
      for (const value of partitionValues) messages.push({ key: '', value, partition });

    const written: { topic: string; partition: number; last: number }[] = [];
    try {
      const transaction = await producer.beginTransaction();
      try {
        // A broker refuses a record batch over its message.max.bytes (1 MiB by default), and one
        // send makes one batch per partition: a big append goes as several sends of one transaction,
        // in order (one request in flight), so it stays atomic and ordered.
        // The producer state rides in the last send, so a small append is one produce request.
        const kafkaTopic = this.#kafkaTopic(topic);
        const stateTopic = topic + PRODUCER_STATE_SUFFIX;
        const kafkaStateTopic = this.#kafkaTopic(stateTopic);
        const parts = [...sendSizedParts(messages)];
        if (parts.length === 0) parts.push([]);
        const lastOf = new Map<number, number>();
        for (let index = 0; index < parts.length; index++) {
          const part = parts[index]!;
          const countOf = new Map<number, number>();
          for (const { partition } of part) countOf.set(partition, (countOf.get(partition) ?? 0) + 1);
          const batch: { topic: string; key: string; value: Buffer; partition: number }[] = part.map(
            ({ key, value, partition }) => ({ topic: kafkaTopic, key, value, partition }),
          );
          if (state !== undefined && index === parts.length - 1) {
            batch.push({ topic: kafkaStateTopic, key: this.#stateKey(topic), value: state, partition: 0 });
          }
          const result = await transaction.send({ messages: batch });
          for (const { topic: sentTopic, partition, offset } of result.offsets ?? []) {
            if (sentTopic === kafkaStateTopic) {
              written.push({ topic: stateTopic, partition: 0, last: Number(offset) });
              continue;
            }
            const last = Number(offset) + (countOf.get(partition) ?? 1) - 1;
            lastOf.set(partition, Math.max(last, lastOf.get(partition) ?? -1));
          }
        }
        for (const [partition, last] of lastOf) written.push({ topic, partition, last });
        await transaction.commit();
      } catch (error) {
        await transaction.abort().catch(() => {});
        throw error;
      }
    } catch (error) {
      // A producer that failed mid-transaction (fenced, or the broker went away) is not reused: the
      // next append registers a fresh one, which aborts whatever this one left open.
      this.#producer = undefined;
      await producer.close(true).catch(() => {});
      throw error;
    }
    // The commit is decided once commit() returns, but the broker writes the commit markers right
    // after; wait until read_committed readers see the records, so a read after append finds them.
    const byTopic = Map.groupBy(written, (entry) => entry.topic);
    await Promise.all(
      [...byTopic].map(([writtenTopic, entries]) => this.#awaitStable(writtenTopic, entries)),
    );
  }

  /**
   * The transactional producer, created and registered on first use: registering fences any earlier
   * producer with this id and aborts the transaction it left open, which would otherwise hold back the
   * stable offset (and so every read_committed reader) until it timed out. Runs inside the append chain.
   */
  async #ensureProducer(): Promise<BytesProducer> {
    if (this.#producer !== undefined) return this.#producer;
    const producer: BytesProducer = new Producer({
      ...clientOptions(this.#connection),
      transactionalId: this.#options.transactionalId,
      idempotent: true,
      autocreateTopics: false,
      serializers: bytesSerializers,
    });
    try {
      // The first transaction registers the id (InitProducerId), fencing and aborting what came before.
      // -1/-1 asks for the id as a new producer does; the client's default (0/0) claims to be producer
      // 0 at epoch 0, which a broker that knows the id already answers with PRODUCER_FENCED.
      await (await producer.beginTransaction({ producerId: -1n, producerEpoch: -1 })).cancel();
    } catch (error) {
      // Not kept: the next append tries again with a fresh producer.
      await producer.close(true).catch(() => {});
      throw error;
    }
    this.#producer = producer;
    return producer;
  }

  /** The key of this producer's records in `<topic>.producer-state`: states are per transactional id. */
  #stateKey(topic: string): string {
    return `${topic}\u0000${this.#options.transactionalId}`;
  }

  /** Waits until every written partition's last stable offset is past its last record: one ListOffsets per topic and try. */
  async #awaitStable(topic: string, written: readonly { partition: number; last: number }[]): Promise<void> {
    const wire = this.#require(this.#wire);
    let waiting = written;
    for (let attempt = 0; waiting.length > 0; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(attempt, 20)));
      const stable = await wire.lastStableOffsets(
        this.#kafkaTopic(topic),
        waiting.map(({ partition }) => partition),
      );
      for (const [partition, offset] of stable) this.#setEnd(topic, partition, offset);
      waiting = waiting.filter(({ partition, last }) => (stable.get(partition) ?? 0) <= last);
      if (attempt > 2_000 && waiting.length > 0) {
        throw new Error(`kafka log: ${topic}/${waiting[0]!.partition} not stable past ${waiting[0]!.last}`);
      }
    }
  }

  async producerState(topic: string): Promise<unknown> {
    const stateTopic = topic + PRODUCER_STATE_SUFFIX;
    if (!(await this.#exists(stateTopic))) return undefined;
    const wire = this.#require(this.#wire);
    const kafkaTopic = this.#kafkaTopic(stateTopic);
    const key = this.#stateKey(topic);
    const stable = (await wire.lastStableOffsets(kafkaTopic, [0])).get(0) ?? 0;
    // The latest state is the last committed record with this producer's key below the stable offset.
    // Other producers' states, commit markers and aborted transactions sit between, so look back in
    // growing windows, each scanning only what the previous ones did not: [start, end).
    let end = stable;
    for (let window = 8; end > 0; window *= 8) {
      const start = Math.max(0, stable - window);
      let from = start;
      let latest: Buffer | null | undefined;
      while (from < end) {
        const { records, next } = await wire.fetch(kafkaTopic, 0, from, 0);
        for (const record of records) if (record.offset < end && record.key === key) latest = record.value;
        if (next <= from) break;
        from = next;
      }
      if (latest !== undefined) return latest === null ? undefined : JSON.parse(latest.toString('utf8'));
      end = start;
    }
    return undefined;
  }

  async read<T>(
    topic: string,
    partition: number,
    fromOffset: number,
    maxRecords: number,
  ): Promise<LogRecord<T>[]> {
    if (maxRecords <= 0 || !(await this.#exists(topic))) return [];
    const wire = this.#require(this.#wire);
    const out: LogRecord<T>[] = [];
    const start = kafkaPosition(fromOffset);
    let from = start.kafkaOffset;
    // A fetch may hold only markers or aborted records; continue past them until records or the end.
    while (out.length < maxRecords) {
      const { records, next, lastStable } = await wire.fetch(this.#kafkaTopic(topic), partition, from, 0);
      this.#setEnd(topic, partition, lastStable);
      for (const record of records) {
        if (out.length === maxRecords) break;
        const count = entryCount(record.value);
        const skip = entriesBefore(start, record.offset, count);
        if (skip >= count) continue;
        unpackEntries(record.value, record.key, (index, key, value) => {
          if (index < skip || out.length === maxRecords) return;
          out.push({ partition, offset: entryOffset(record.offset, index, count), key, value: value as T });
        });
      }
      if (next <= from || next >= lastStable) break;
      from = next;
    }
    return out;
  }

  endOffset(topic: string, partition: number): number {
    return startOfRecord(this.#ends.get(endKey(topic, partition)) ?? 0);
  }

  async waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    const closing = this.#closing.signal;
    const closed = new Promise<false>((resolve) => {
      if (closing.aborted) resolve(false);
      closing.addEventListener('abort', () => resolve(false), { once: true });
    });
    const start = kafkaPosition(offset);
    let from = start.kafkaOffset;
    for (;;) {
      const left = deadline - performance.now();
      if (closing.aborted || left <= 0) return false;
      const slice = Math.max(1, Math.min(WAIT_SLICE_MS, Math.ceil(left)));
      const step = this.#waitStep(topic, partition, from, start, slice);
      step.catch(() => {}); // may settle after close, with the connection gone
      const result = await Promise.race([step, closed]).catch(() => 'retry' as const);
      if (result === false) return false;
      if (result === 'retry') {
        await Promise.race([new Promise((resolve) => setTimeout(resolve, slice)), closed]);
        continue;
      }
      if (result.found) return true;
      from = result.next;
    }
  }

  /**
   * One broker-side wait from Kafka offset `from`: a committed entry at or past `start`, or where to
   * look next (Kafka offsets).
   */
  async #waitStep(
    topic: string,
    partition: number,
    from: number,
    start: KafkaPosition,
    maxWaitMs: number,
  ): Promise<{ found: boolean; next: number } | 'retry'> {
    if (!(await this.#exists(topic))) return 'retry';
    const wire = this.#require(this.#waitWire);
    const { records, next, lastStable, outOfRange } = await wire.fetch(
      this.#kafkaTopic(topic),
      partition,
      from,
      maxWaitMs,
    );
    if (outOfRange) return 'retry';
    this.#setEnd(topic, partition, lastStable);
    const found = records.some((record) => {
      const count = entryCount(record.value);
      return entriesBefore(start, record.offset, count) < count;
    });
    return { found, next: Math.max(from, next) };
  }

  /**
   * Records `offsets` (next offset to read, per partition of `topic`) as the committed offsets of
   * consumer group `groupId`, so Kafka's own tools (kafka-consumer-groups.sh, lag exporters) show
   * how far its readers got. The group has no live members: these readers keep their real offsets
   * elsewhere (the processors, in the store) and only report them here.
   */
  async commitGroupOffsets(
    groupId: string,
    topic: string,
    offsets: readonly { partition: number; offset: number }[],
  ): Promise<void> {
    if (offsets.length === 0 || !(await this.#exists(topic))) return;
    // Kafka's tools count Kafka records: the record the reader is in (or starts next) is where it stands.
    const kafkaOffsets = offsets.map(({ partition, offset }) => ({
      partition,
      offset: kafkaOffsetOf(offset),
    }));
    await this.#require(this.#wire).commitOffsets(groupId, this.#kafkaTopic(topic), kafkaOffsets);
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing.abort();
    if (this.#refreshTimer !== undefined) clearInterval(this.#refreshTimer);
    await this.#appending;
    this.#shut = true;
    await Promise.allSettled([
      this.#producer?.close(true),
      this.#wire?.disconnect(),
      this.#waitWire?.disconnect(),
    ]);
  }

  /**
   * When the brokers last answered this log's background refresh (every 500 ms), and the error of
   * the refreshes since, if any: a role's health check calls Kafka unreachable from this.
   */
  reachability(): { answeredAt: number; error: unknown } {
    return { answeredAt: this.#answeredAt, error: this.#unanswered };
  }

  /** The background refresh of the partition ends, which also tells whether the brokers answer. */
  async #heartbeat(): Promise<void> {
    if (this.#refreshing || this.#closing.signal.aborted) return;
    try {
      // With no topic known yet (a reader started before ingest), listing the topics is the contact.
      if (this.#topics.size === 0) await this.#refreshTopics();
      else await this.#refreshEnds();
      this.#answeredAt = Date.now();
      this.#unanswered = undefined;
    } catch (error) {
      this.#unanswered = error;
    }
  }

  #kafkaTopic(topic: string): string {
    return this.#options.topicPrefix + topic;
  }

  #setEnd(topic: string, partition: number, stable: number): void {
    const key = endKey(topic, partition);
    if (stable > (this.#ends.get(key) ?? 0)) this.#ends.set(key, stable);
  }

  /** True when the topic exists; asks the cluster about topics not yet seen (another process may have made them). */
  async #exists(topic: string): Promise<boolean> {
    if (this.#topics.has(topic)) return true;
    await this.#refreshTopics([topic]);
    return this.#topics.has(topic);
  }

  /** Learns the partition counts of this log's topics that exist on the cluster (all, or `only`). */
  async #refreshTopics(only?: string[]): Promise<void> {
    const wire = this.#require(this.#wire);
    const prefix = this.#options.topicPrefix;
    const names = (await wire.listTopics())
      .filter((name) => name.startsWith(prefix) && !name.startsWith('__'))
      .map((name) => name.slice(prefix.length))
      .filter((name) => only === undefined || only.includes(name));
    if (names.length === 0) return;
    const counts = await wire.partitionCounts(names.map((name) => prefix + name));
    for (const [name, count] of counts) this.#topics.set(name.slice(prefix.length), count);
  }

  async #refreshEnds(): Promise<void> {
    if (this.#refreshing || this.#closing.signal.aborted) return;
    this.#refreshing = true;
    try {
      const wire = this.#require(this.#wire);
      for (const [topic, count] of this.#topics) {
        if (topic.endsWith(PRODUCER_STATE_SUFFIX)) continue;
        const partitions = Array.from({ length: count }, (_, partition) => partition);
        const stable = await wire.lastStableOffsets(this.#kafkaTopic(topic), partitions);
        for (const [partition, offset] of stable) this.#setEnd(topic, partition, offset);
      }
    } finally {
      this.#refreshing = false;
    }
  }

  /** docs/design.md, Retention and history: a topic keeps what `log.retention` / `log.retentionBytes` say (Kafka deletes on its own). */
  #retentionEntries(): { name: string; value: string }[] {
    const entries: { name: string; value: string }[] = [];
    if (this.#options.retentionMs > 0)
      entries.push({ name: 'retention.ms', value: String(this.#options.retentionMs) });
    if (this.#options.retentionBytes > 0)
      entries.push({ name: 'retention.bytes', value: String(this.#options.retentionBytes) });
    return entries;
  }

  async #ensureTopic(topic: string, partitions: number, compacted: boolean): Promise<void> {
    if (this.#topics.has(topic)) {
      if (compacted) await this.#raiseStateLimit(topic);
      return;
    }
    const wire = this.#require(this.#wire);
    const created = await wire.createTopic(
      this.#kafkaTopic(topic),
      partitions,
      this.#options.replicationFactor,
      compacted
        ? [{ name: 'cleanup.policy', value: 'compact' }, STATE_MESSAGE_BYTES]
        : this.#retentionEntries(),
    );
    if (created && compacted) this.#stateLimitRaised.add(topic);
    else if (compacted) await this.#raiseStateLimit(topic);
    // The topic may have existed already (made by another process): take its real partition count.
    // A new topic's metadata reaches the brokers shortly after the create answers.
    for (let attempt = 1; ; attempt++) {
      await this.#refreshTopics([topic]).catch(() => {});
      if (this.#topics.has(topic) || attempt >= 20) break;
      await new Promise((resolve) => setTimeout(resolve, 25 * attempt));
    }
    if (!this.#topics.has(topic)) this.#topics.set(topic, partitions);
  }

  /**
   * A state topic made before its records could outgrow 1 MiB gets the higher limit, once per log. A
   * principal without the right to alter configs keeps the old limit: a state over it then fails
   * its append with the broker's error.
   */
  async #raiseStateLimit(topic: string): Promise<void> {
    if (this.#stateLimitRaised.has(topic)) return;
    this.#stateLimitRaised.add(topic);
    await this.#require(this.#wire)
      .setTopicConfigs(this.#kafkaTopic(topic), [STATE_MESSAGE_BYTES])
      .catch(() => {});
  }

  #require<C>(client: C | undefined): C {
    if (client === undefined) throw new Error('kafka log: open() first');
    return client;
  }
}

/** An append's records, serialised when `append` is called (see `#pack`). */
type PackedAppend =
  | { kind: 'packed'; values: Map<number, Buffer[]> }
  | { kind: 'deferred'; bytes: Buffer; partitions: (number | undefined)[] }
  | { kind: 'refused'; error: unknown };

/**
 * Largest producer state, and the `max.message.bytes` of the compacted state topics. Ingest's state
 * holds its dedup ranges (docs/design.md, Duplicates), which outgrow the broker's default 1 MiB for a
 * feed whose integer ids have gaps; a state record over the topic's limit would be refused on every
 * retry and hold every later append behind it. 64 MiB stays under the broker's default
 * socket.request.max.bytes (100 MiB).
 */
const STATE_MAX_BYTES = 64 * 1024 * 1024;
const STATE_MESSAGE_BYTES = { name: 'max.message.bytes', value: String(STATE_MAX_BYTES) };

/** Bytes of keys and values per send: well below a broker's default message.max.bytes (1 MiB). */
const SEND_BYTES = 512 * 1024;

/** Consecutive runs of `messages` of at most SEND_BYTES each (a bigger single message goes alone). */
function* sendSizedParts<M extends { key: string; value: Buffer }>(messages: readonly M[]): Generator<M[]> {
  let part: M[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = message.value.length + Buffer.byteLength(message.key) + 64;
    if (part.length > 0 && bytes + size > SEND_BYTES) {
      yield part;
      part = [];
      bytes = 0;
    }
    part.push(message);
    bytes += size;
  }
  if (part.length > 0) yield part;
}

function endKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}
